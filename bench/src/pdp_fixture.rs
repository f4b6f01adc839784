//! A policy set of a chosen size for the PDP benchmarks: the `agents` example schema and
//! entities, the example's four policies, and `n - 4` more policies that cannot apply to
//! the benchmark request (each scoped to another agent or another tool, alternately).

use aims_pdp::{Action, EntityRef, EvaluationRequest, PolicyBundle, PolicySource};
use serde_json::json;

const SCHEMA: &str = include_str!("../../crates/aims-pdp/examples/agents/schema.cedarschema");
const POLICIES: &str = include_str!("../../crates/aims-pdp/examples/agents/policies.cedar");
const ENTITIES: &str = include_str!("../../crates/aims-pdp/examples/agents/entities.json");

/// The bundle with `n` policies (at least the example's four).
pub fn bundle(n: usize) -> PolicyBundle {
    let mut extra = String::new();
    for i in 0..n.saturating_sub(4) {
        if i % 2 == 0 {
            extra.push_str(&format!(
                "@id(\"agent-{i}\") permit (principal == Agent::\"spiffe://example.org/agent/a{i}\", \
                 action == Action::\"invoke\", resource is Tool) \
                 when {{ context has scope && context.scope.contains(resource.required_scope) }};\n"
            ));
        } else {
            extra.push_str(&format!(
                "@id(\"tool-{i}\") forbid (principal is Agent, action, resource == Tool::\"t{i}\") \
                 unless {{ context has user }};\n"
            ));
        }
    }
    PolicyBundle {
        schema: PolicySource::new("schema.cedarschema", SCHEMA),
        policies: vec![
            PolicySource::new("policies.cedar", POLICIES),
            PolicySource::new("generated.cedar", extra),
        ],
        entities: Some(PolicySource::new("entities.json", ENTITIES)),
    }
}

/// The benchmark request: the planner agent invokes the calendar tool with the right
/// scope on behalf of a user (a permit).
pub fn request() -> EvaluationRequest {
    EvaluationRequest {
        subject: EntityRef::new("Agent", "spiffe://example.org/agent/planner"),
        action: Action::new("invoke"),
        resource: EntityRef::new("Tool", "calendar"),
        context: json!({"user": "alice", "scope": ["calendar.read", "mail.read"]})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    }
}
