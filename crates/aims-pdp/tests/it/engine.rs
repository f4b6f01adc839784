//! The engine: loading rules with located errors, atomic reload, the policy test
//! runner, audit events.

use std::io::Write;
use std::sync::{Arc, Mutex};

use aims_pdp::check::check_dir;
use aims_pdp::{Action, EntityRef, EvaluationRequest, Pdp, PdpError, PolicyBundle, PolicySource};
use serde_json::{Map, json};

use crate::support::example;

fn bundle(policies: &str) -> PolicyBundle {
    let dir = example("authzen-interop");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    PolicyBundle {
        schema: PolicySource::new("schema.cedarschema", read("schema.cedarschema")),
        policies: vec![PolicySource::new("store:policies", policies)],
        entities: Some(PolicySource::new("entities.json", read("entities.json"))),
    }
}

fn req(s: &str, a: &str, r: &str) -> EvaluationRequest {
    EvaluationRequest {
        subject: EntityRef::new("user", s),
        action: Action::new(a),
        resource: EntityRef::new("record", r),
        context: Map::new(),
    }
}

#[test]
fn reload_swaps_a_good_set_and_refuses_a_bad_one() {
    let pdp = Pdp::from_dir(&example("authzen-interop")).unwrap();
    let alice_read = req("alice", "read", "record-1");
    assert!(pdp.evaluate(&alice_read, "t").unwrap().decision);
    assert_eq!(pdp.policy_count(), 4);

    // Syntax error: refused, old set still answers.
    let err = pdp
        .reload(&bundle("permit (principal, action, resource"))
        .unwrap_err();
    assert!(matches!(err, PdpError::PolicySyntax { .. }), "{err}");
    assert!(pdp.evaluate(&alice_read, "t").unwrap().decision);
    // Does not validate (unknown attribute): refused, with the policy and line.
    let err = pdp
        .reload(&bundle(
            "@id(\"p\")\npermit (principal, action, resource)\nwhen { principal.nope == 1 };",
        ))
        .unwrap_err();
    let PdpError::Validation {
        location, policy, ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(policy, "p");
    assert_eq!(location.source, "store:policies");
    assert_eq!(location.line, Some(3), "{err}");
    assert!(pdp.evaluate(&alice_read, "t").unwrap().decision);
    assert_eq!(pdp.policy_count(), 4);

    // A good set replaces it.
    pdp.reload(&bundle(
        "@id(\"deny-all\") forbid (principal, action, resource);",
    ))
    .unwrap();
    let d = pdp.evaluate(&alice_read, "t").unwrap();
    assert!(!d.decision);
    assert_eq!(d.reasons, ["deny-all"]);
    assert_eq!(pdp.policy_count(), 1);
}

#[test]
fn load_errors_are_located() {
    let err = Pdp::new(&bundle(
        "permit (principal, action, resource);\n\npermit (principal action, resource);",
    ))
    .unwrap_err();
    let PdpError::PolicySyntax { location, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(location.line, Some(3), "{err}");
    assert!(err.to_string().starts_with("store:policies:3:"), "{err}");

    let err = Pdp::new(&bundle(
        "@id(\"a\") permit (principal, action, resource);\n@id(\"a\") forbid (principal, action, resource);",
    ))
    .unwrap_err();
    assert!(matches!(err, PdpError::DuplicatePolicyId { .. }), "{err}");

    let err = Pdp::new(&bundle(
        "permit (principal == ?principal, action, resource);",
    ))
    .unwrap_err();
    assert!(matches!(err, PdpError::Template { .. }), "{err}");

    let mut b = bundle("");
    b.entities = Some(PolicySource::new(
        "bad.json",
        r#"[{"uid": {"type": "user", "id": "x"}, "attrs": {"role": 5}, "parents": []}]"#,
    ));
    let err = Pdp::new(&b).unwrap_err();
    assert!(matches!(err, PdpError::Entities { .. }), "{err}");

    let mut b = bundle("");
    b.schema = PolicySource::new("s.cedarschema", "entity user {");
    assert!(matches!(Pdp::new(&b).unwrap_err(), PdpError::Schema { .. }));
}

#[test]
fn default_policy_ids_name_the_source() {
    let pdp = Pdp::new(&bundle(
        "permit (principal, action == Action::\"read\", resource);\npermit (principal, action == Action::\"write\", resource);",
    ))
    .unwrap();
    let d = pdp
        .evaluate(&req("alice", "write", "record-1"), "t")
        .unwrap();
    assert_eq!(d.reasons, ["store:policies#1"]);
}

#[test]
fn properties_follow_the_schema() {
    let pdp = Pdp::from_dir(&example("authzen-interop")).unwrap();
    // A declared property with the wrong type is a request error.
    let mut r = req("alice", "write", "record-1");
    r.resource.properties = json!({"status": 7}).as_object().unwrap().clone();
    assert!(matches!(
        pdp.evaluate(&r, "t").unwrap_err(),
        PdpError::InvalidProperty { .. }
    ));
    // An undeclared one is ignored.
    let mut r = req("alice", "write", "record-1");
    r.resource.properties = json!({"colour": [1, 2]}).as_object().unwrap().clone();
    assert!(pdp.evaluate(&r, "t").unwrap().decision);
    // An entity unknown to the data gets its properties.
    let mut r = req("carol", "write", "record-9");
    r.subject.properties = json!({"role": "admin"}).as_object().unwrap().clone();
    r.resource.properties = json!({"status": "archived"}).as_object().unwrap().clone();
    assert!(pdp.evaluate(&r, "t").unwrap().decision);
    // An entity type that is not a Cedar name is a request error.
    let mut r = req("alice", "read", "record-1");
    r.subject.entity_type = "no such type".into();
    assert!(matches!(
        pdp.evaluate(&r, "t").unwrap_err(),
        PdpError::InvalidEntityType(_)
    ));
}

#[test]
fn shipped_examples_pass_their_own_tests() {
    for name in ["authzen-interop", "agents"] {
        let report = check_dir(&example(name)).unwrap();
        assert!(report.cases >= 8, "{name}: {} cases", report.cases);
        assert!(report.failures.is_empty(), "{name}: {:?}", report.failures);
    }
}

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn every_decision_is_audited_with_the_seven_fields() {
    let pdp = Pdp::from_dir(&example("agents")).unwrap();
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .finish();
    let request = EvaluationRequest {
        subject: EntityRef::new("Agent", "spiffe://example.org/agent/planner"),
        action: Action::new("invoke"),
        resource: EntityRef::new("Tool", "payments"),
        context: json!({"user": "alice", "act": {"sub": "spiffe://example.org/agent/orchestrator"},
                        "scope": ["payments.write"], "risk": "medium"})
        .as_object()
        .unwrap()
        .clone(),
    };
    tracing::subscriber::with_default(subscriber, || {
        pdp.evaluate(&request, "req-42").unwrap();
    });
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("aims::audit"))
        .expect(&text);
    let event: serde_json::Value = serde_json::from_str(line).unwrap();
    let f = &event["fields"];
    assert_eq!(event["target"], "aims::audit");
    assert_eq!(f["agent"], "Agent:spiffe://example.org/agent/planner");
    assert_eq!(f["delegated_subject"], "alice");
    assert_eq!(
        f["delegation_chain"],
        "spiffe://example.org/agent/orchestrator"
    );
    assert_eq!(f["resource"], "Tool:payments");
    assert_eq!(f["action"], "invoke");
    assert_eq!(f["decision"], "permit");
    assert_eq!(f["correlation_id"], "req-42");
    assert_eq!(f["risk"], "medium");
    assert_eq!(f["remediation"], "none");
    assert_eq!(f["policies"], "invoke-with-scope");
    assert!(f["time"].as_str().unwrap().ends_with('Z'));
}

/// A `forbid` that fails to evaluate must not let a `permit` through (Cedar skips an
/// erroring policy): a context value of another type than the condition expects makes
/// the answer a deny, with the error reported and no determining policy.
#[test]
fn a_forbid_that_fails_to_evaluate_denies() {
    let pdp = Pdp::from_dir(&example("agents")).unwrap();
    let payment = |tctx: serde_json::Value, extra: Option<(&str, serde_json::Value)>| {
        let mut context = json!({"user": "alice", "scope": ["payments.write"], "tctx": tctx});
        if let Some((k, v)) = extra {
            context[k] = v;
        }
        EvaluationRequest {
            subject: EntityRef::new("Agent", "spiffe://example.org/agent/planner"),
            action: Action::new("invoke"),
            resource: EntityRef::new("Tool", "payments"),
            context: context.as_object().unwrap().clone(),
        }
    };
    // The ordinary cases: a small payment passes, a large one without RAR is forbidden.
    assert!(
        pdp.evaluate(&payment(json!({"amount": 50}), None), "t")
            .unwrap()
            .decision
    );
    let d = pdp
        .evaluate(&payment(json!({"amount": 5000}), None), "t")
        .unwrap();
    assert!(!d.decision);
    assert_eq!(d.reasons, ["large-payment-needs-rar"]);
    // The forbid errors (`>` on a string; `.contains` on a string, not a set): deny.
    for (tctx, extra) in [
        (json!({"amount": 5000.5}), None),
        (json!({"amount": "5000"}), None),
        (
            json!({"amount": 5000}),
            Some(("authorization_detail_types", json!("payment_initiation"))),
        ),
    ] {
        let d = pdp
            .evaluate(&payment(tctx.clone(), extra.clone()), "t")
            .unwrap();
        assert!(!d.decision, "{tctx} {extra:?}: {d:?}");
        assert!(d.reasons.is_empty(), "{d:?}");
        assert!(
            d.errors
                .iter()
                .any(|e| e.starts_with("large-payment-needs-rar")),
            "{d:?}"
        );
    }
}

/// A `permit` that fails to evaluate is only not satisfied: another satisfied permit
/// still decides (fail closed applies to failed forbids, not to every error).
#[test]
fn a_permit_that_fails_to_evaluate_is_only_not_satisfied() {
    let dir = example("agents");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    let pdp = Pdp::new(&PolicyBundle {
        schema: PolicySource::new("schema.cedarschema", read("schema.cedarschema")),
        policies: vec![PolicySource::new(
            "store:policies",
            "@id(\"small-amount\") permit (principal, action == Action::\"invoke\", resource)\n\
             when { context has tctx.amount && context.tctx.amount < 100 };\n\
             @id(\"any-invoke\") permit (principal, action == Action::\"invoke\", resource);",
        )],
        entities: Some(PolicySource::new("entities.json", read("entities.json"))),
    })
    .unwrap();
    let r = EvaluationRequest {
        subject: EntityRef::new("Agent", "spiffe://example.org/agent/planner"),
        action: Action::new("invoke"),
        resource: EntityRef::new("Tool", "payments"),
        context: json!({"tctx": {"amount": "not a number"}})
            .as_object()
            .unwrap()
            .clone(),
    };
    let d = pdp.evaluate(&r, "t").unwrap();
    assert!(d.decision, "{d:?}");
    assert_eq!(d.reasons, ["any-invoke"]);
    assert!(
        d.errors.iter().any(|e| e.starts_with("small-amount")),
        "{d:?}"
    );
}
