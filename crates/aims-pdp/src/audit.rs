//! Audit events: one `tracing` event per decision, target `aims::audit`, carrying the
//! seven fields the agent-auth draft requires of every authorization audit record.
//!
//! | Field | Source |
//! |---|---|
//! | `agent` | the subject, `type:id` |
//! | `delegated_subject` | `context.user` (a string, or an object's `id`); `none` if absent |
//! | `delegation_chain` | `context.act`, the RFC 8693 actor chain (`{sub, act: {sub, …}}`), as `a > b`; `none` if absent |
//! | `resource` | the resource, `type:id` |
//! | `action`, `decision` | the action name; `permit` / `deny` |
//! | `time`, `correlation_id` | RFC 3339 UTC time of the decision; the caller's `X-Request-ID` or a generated id |
//! | `risk` | `subject.properties.risk`, else `context.risk`, else `unknown` |
//! | `remediation` | `none` (remediation events come with the signals work) |
//! | `policies` | ids of the determining policies, comma-separated |
//!
//! Search requests emit one event per page with `decision = search` and the count.

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::model::{Decision, EntityRef, EvaluationRequest, SearchQuery};

/// Tracing target of audit events.
pub const AUDIT_TARGET: &str = "aims::audit";

fn now() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| "unknown".into())
}

fn entity(e: &EntityRef) -> String {
    log_safe(format!("{}:{}", e.entity_type, e.id))
}

/// `s` with control characters escaped (`\n`, `\u{1b}`, ...): request data cannot
/// start a new log line or a terminal escape in a text-format audit record.
fn log_safe(s: String) -> String {
    if s.chars().any(char::is_control) {
        s.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect()
    } else {
        s
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(log_safe(s.clone())),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `context.user` as a string or an object's `id`.
pub fn delegated_subject(context: &Map<String, Value>) -> Option<String> {
    match context.get("user")? {
        Value::Object(o) => o.get("id").and_then(scalar),
        other => scalar(other),
    }
}

/// `context.act` as `sub > sub > …` (outermost, i.e. most recent, actor first).
pub fn delegation_chain(context: &Map<String, Value>) -> Option<String> {
    let mut chain = Vec::new();
    let mut act = context.get("act");
    while let Some(Value::Object(o)) = act {
        if chain.len() >= 16 {
            break;
        }
        chain.push(o.get("sub").and_then(scalar).unwrap_or_else(|| "?".into()));
        act = o.get("act");
    }
    (!chain.is_empty()).then(|| chain.join(" > "))
}

fn risk(subject: &EntityRef, context: &Map<String, Value>) -> String {
    subject
        .properties
        .get("risk")
        .and_then(scalar)
        .or_else(|| context.get("risk").and_then(scalar))
        .unwrap_or_else(|| "unknown".into())
}

/// Emits the audit event of one decision.
pub(crate) fn decision(request: &EvaluationRequest, decision: &Decision, correlation_id: &str) {
    if !tracing::event_enabled!(target: AUDIT_TARGET, tracing::Level::INFO) {
        return;
    }
    tracing::info!(
        target: AUDIT_TARGET,
        agent = %entity(&request.subject),
        delegated_subject = %delegated_subject(&request.context).unwrap_or_else(|| "none".into()),
        delegation_chain = %delegation_chain(&request.context).unwrap_or_else(|| "none".into()),
        resource = %entity(&request.resource),
        action = %log_safe(request.action.name.clone()),
        decision = if decision.decision { "permit" } else { "deny" },
        time = %now(),
        correlation_id = %correlation_id,
        risk = %risk(&request.subject, &request.context),
        remediation = "none",
        policies = %decision.reasons.join(","),
        errors = decision.errors.len(),
        "authorization decision"
    );
}

/// Emits the audit event of one search page.
pub(crate) fn search(query: &SearchQuery, results: usize, correlation_id: &str) {
    if !tracing::event_enabled!(target: AUDIT_TARGET, tracing::Level::INFO) {
        return;
    }
    let (agent, resource, action, context, risk_v) = match query {
        SearchQuery::Subject {
            subject_type,
            action,
            resource,
            context,
        } => (
            log_safe(format!("{subject_type}:*")),
            entity(resource),
            log_safe(action.name.clone()),
            context,
            context.get("risk").and_then(scalar),
        ),
        SearchQuery::Resource {
            subject,
            action,
            resource_type,
            context,
        } => (
            entity(subject),
            log_safe(format!("{resource_type}:*")),
            log_safe(action.name.clone()),
            context,
            Some(risk(subject, context)),
        ),
        SearchQuery::Action {
            subject,
            resource,
            context,
        } => (
            entity(subject),
            entity(resource),
            "*".to_owned(),
            context,
            Some(risk(subject, context)),
        ),
    };
    tracing::info!(
        target: AUDIT_TARGET,
        agent = %agent,
        delegated_subject = %delegated_subject(context).unwrap_or_else(|| "none".into()),
        delegation_chain = %delegation_chain(context).unwrap_or_else(|| "none".into()),
        resource = %resource,
        action = %action,
        decision = "search",
        results = results,
        time = %now(),
        correlation_id = %correlation_id,
        risk = %risk_v.unwrap_or_else(|| "unknown".into()),
        remediation = "none",
        "authorization search"
    );
}

#[cfg(test)]
mod log_safe_tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(log_safe("spiffe://td/a".into()), "spiffe://td/a");
        assert_eq!(
            log_safe("a\nINFO decision=permit\u{1b}[0m".into()),
            "a\\nINFO decision=permit\\u{1b}[0m"
        );
        let e = EntityRef::new("Agent", "x\r\ny");
        assert_eq!(entity(&e), "Agent:x\\r\\ny");
        let ctx = serde_json::json!({"user": "eve\nmallory", "act": {"sub": "b\tc"}});
        let ctx = ctx.as_object().unwrap();
        assert_eq!(delegated_subject(ctx).unwrap(), "eve\\nmallory");
        assert_eq!(delegation_chain(ctx).unwrap(), "b\\tc");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn delegation_conventions() {
        let ctx =
            json!({"user": {"id": "alice"}, "act": {"sub": "agent-b", "act": {"sub": "agent-c"}}});
        let ctx = ctx.as_object().cloned().unwrap_or_default();
        assert_eq!(delegated_subject(&ctx).as_deref(), Some("alice"));
        assert_eq!(delegation_chain(&ctx).as_deref(), Some("agent-b > agent-c"));
        assert_eq!(delegated_subject(&Map::new()), None);
    }
}
