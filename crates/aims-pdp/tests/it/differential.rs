//! Indexed evaluation against full evaluation: random policy sets over a small entity
//! hierarchy (groups within groups, folders within folders, action groups), random
//! requests including unknown entities and property overlays. Decision, determining
//! policies and policy errors must be identical.

use aims_pdp::{Action, EntityRef, Evaluation, EvaluationRequest, Pdp, PolicyBundle, PolicySource};
use proptest::prelude::*;
use serde_json::{Map, json};

const SCHEMA: &str = r#"
entity Group in [Group];
entity User in [Group] { level: Long };
entity Folder in [Folder];
entity Res in [Folder] { owner: User };
action all;
action a0, a1 in [all] appliesTo { principal: [User], resource: [Res], context: { flag?: Bool } };
action a2, a3 appliesTo { principal: [User], resource: [Res], context: { flag?: Bool } };
"#;

fn entities() -> String {
    let mut e = vec![
        json!({"uid": {"type": "Group", "id": "g0"}, "attrs": {}, "parents": [{"type": "Group", "id": "g1"}]}),
        json!({"uid": {"type": "Group", "id": "g1"}, "attrs": {}, "parents": [{"type": "Group", "id": "g2"}]}),
        json!({"uid": {"type": "Group", "id": "g2"}, "attrs": {}, "parents": []}),
        json!({"uid": {"type": "Folder", "id": "f0"}, "attrs": {}, "parents": [{"type": "Folder", "id": "f1"}]}),
        json!({"uid": {"type": "Folder", "id": "f1"}, "attrs": {}, "parents": []}),
    ];
    for i in 0..6 {
        e.push(
            json!({"uid": {"type": "User", "id": format!("u{i}")}, "attrs": {"level": i},
                      "parents": [{"type": "Group", "id": format!("g{}", i % 3)}]}),
        );
        e.push(json!({"uid": {"type": "Res", "id": format!("r{i}")}, "attrs": {"owner": {"__entity": {"type": "User", "id": format!("u{}", (i + 1) % 6)}}},
                      "parents": [{"type": "Folder", "id": format!("f{}", i % 2)}]}));
    }
    serde_json::Value::Array(e).to_string()
}

fn principal(kind: u8, n: u8) -> String {
    match kind % 7 {
        0 => "principal".into(),
        1 => format!("principal == User::\"u{}\"", n % 7),
        2 => format!("principal in Group::\"g{}\"", n % 3),
        3 => "principal is User".into(),
        4 => format!("principal is User in Group::\"g{}\"", n % 3),
        5 => format!("principal in User::\"u{}\"", n % 7),
        _ => format!("principal is User in User::\"u{}\"", n % 7),
    }
}

fn action(kind: u8, n: u8) -> String {
    match kind % 5 {
        0 => "action".into(),
        1 => format!("action == Action::\"a{}\"", n % 4),
        2 => format!(
            "action in [Action::\"a{}\", Action::\"a{}\"]",
            n % 4,
            (n / 4) % 4
        ),
        3 => "action in Action::\"all\"".into(),
        _ => "action == Action::\"all\"".into(),
    }
}

fn resource(kind: u8, n: u8) -> String {
    match kind % 6 {
        0 => "resource".into(),
        1 => format!("resource == Res::\"r{}\"", n % 7),
        2 => format!("resource in Folder::\"f{}\"", n % 2),
        3 => "resource is Res".into(),
        4 => format!("resource is Res in Folder::\"f{}\"", n % 2),
        _ => format!("resource in Res::\"r{}\"", n % 7),
    }
}

fn condition(kind: u8, n: u8) -> String {
    match kind % 5 {
        0 => String::new(),
        1 => format!("when {{ principal.level >= {} }}", n % 6),
        2 => "when { context has flag && context.flag }".into(),
        3 => "when { resource.owner == principal }".into(),
        _ => "unless { resource.owner.level > 2 }".into(),
    }
}

type PolicySpec = (bool, (u8, u8), (u8, u8), (u8, u8), (u8, u8));

fn policy_text(policies: &[PolicySpec]) -> String {
    policies
        .iter()
        .enumerate()
        .map(|(i, (permit, p, a, r, c))| {
            format!(
                "@id(\"p{i}\") {} ({}, {}, {}) {};\n",
                if *permit { "permit" } else { "forbid" },
                principal(p.0, p.1),
                action(a.0, a.1),
                resource(r.0, r.1),
                condition(c.0, c.1)
            )
        })
        .collect()
}

fn pair() -> impl Strategy<Value = (u8, u8)> {
    (any::<u8>(), any::<u8>())
}

fn spec() -> impl Strategy<Value = PolicySpec> {
    (prop::bool::weighted(0.85), pair(), pair(), pair(), pair())
}

#[derive(Debug, Clone)]
struct Req {
    user: u8,
    action: u8,
    res: u8,
    flag: Option<bool>,
    level: Option<i64>,
}

fn req() -> impl Strategy<Value = Req> {
    (
        0u8..8,
        0u8..5,
        0u8..8,
        any::<Option<bool>>(),
        prop::option::of(0i64..8),
    )
        .prop_map(|(user, action, res, flag, level)| Req {
            user,
            action,
            res,
            flag,
            level,
        })
}

fn to_request(r: &Req) -> EvaluationRequest {
    let mut subject = EntityRef::new("User", format!("u{}", r.user));
    if let Some(l) = r.level {
        subject.properties.insert("level".into(), json!(l));
    }
    let mut context = Map::new();
    if let Some(f) = r.flag {
        context.insert("flag".into(), json!(f));
    }
    EvaluationRequest {
        subject,
        action: Action::new(if r.action == 4 {
            "all".to_owned()
        } else {
            format!("a{}", r.action)
        }),
        resource: EntityRef::new("Res", format!("r{}", r.res)),
        context,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn indexed_equals_full(policies in prop::collection::vec(spec(), 1..40),
                           requests in prop::collection::vec(req(), 1..24)) {
        let text = policy_text(&policies);
        let bundle = PolicyBundle {
            schema: PolicySource::new("schema", SCHEMA),
            policies: vec![PolicySource::new("random", text.clone())],
            entities: Some(PolicySource::new("entities", entities())),
        };
        let pdp = match Pdp::new(&bundle) {
            Ok(p) => p,
            // Strict validation refuses some generated combinations (e.g. an impossible
            // `is`); those sets are simply not interesting.
            Err(aims_pdp::PdpError::Validation { .. }) => return Ok(()),
            Err(e) => panic!("{e}\n{text}"),
        };
        for r in &requests {
            let request = to_request(r);
            let indexed = pdp.evaluate_with(&request, Evaluation::Indexed);
            let full = pdp.evaluate_with(&request, Evaluation::Full);
            match (indexed, full) {
                (Ok(i), Ok(f)) => prop_assert_eq!(i, f, "{:?}\n{}", r, text),
                (Err(i), Err(f)) => prop_assert_eq!(i.to_string(), f.to_string()),
                (i, f) => prop_assert!(false, "{:?} vs {:?}", i, f),
            }
        }
    }
}

/// The generator does produce sets that validate and decisions of both kinds (so the
/// property above is not vacuous).
#[test]
fn generator_is_not_vacuous() {
    let policies: Vec<PolicySpec> = (1u8..31)
        .map(|i| (i % 9 != 0, (i, i), (i / 2, i), (i / 3, i), (i / 4, i)))
        .collect();
    let bundle = PolicyBundle {
        schema: PolicySource::new("schema", SCHEMA),
        policies: vec![PolicySource::new("random", policy_text(&policies))],
        entities: Some(PolicySource::new("entities", entities())),
    };
    let pdp = Pdp::new(&bundle).unwrap();
    let mut permits = 0;
    let mut denies = 0;
    for user in 0..8 {
        for action in 0..5 {
            for res in 0..8 {
                let r = to_request(&Req {
                    user,
                    action,
                    res,
                    flag: Some(true),
                    level: None,
                });
                let i = pdp.evaluate_with(&r, Evaluation::Indexed).unwrap();
                assert_eq!(i, pdp.evaluate_with(&r, Evaluation::Full).unwrap());
                if i.decision {
                    permits += 1
                } else {
                    denies += 1
                }
            }
        }
    }
    assert!(
        permits > 10 && denies > 10,
        "{permits} permits, {denies} denies"
    );
}
