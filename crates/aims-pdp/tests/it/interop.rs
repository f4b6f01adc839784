//! The OpenID AuthZEN Authorization API 1.0 certification scenario
//! (`certification/authorization-api-1_0-scenario.md`), every numbered test, against
//! the shipped fixture `examples/authzen-interop` over real HTTP.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::interop;

fn eval(s: Value, a: Value, r: Value) -> Value {
    json!({"subject": s, "action": a, "resource": r})
}

fn user(id: &str) -> Value {
    json!({"type": "user", "id": id})
}

fn record(id: &str) -> Value {
    json!({"type": "record", "id": id})
}

fn act(name: &str) -> Value {
    json!({"name": name})
}

/// c-1-4: the eight mandated decisions (Basic Core c-2-2-1/2 and Properties c-2-2-4..7).
#[tokio::test]
async fn eight_mandated_decisions() {
    let s = interop().await;
    let cases = [
        (eval(user("alice"), act("read"), record("record-1")), true),
        (eval(user("alice"), act("write"), record("record-1")), true),
        (eval(user("bob"), act("read"), record("record-1")), true),
        (eval(user("bob"), act("write"), record("record-1")), false),
        (
            eval(
                user("alice"),
                act("write"),
                json!({"type": "record", "id": "record-2", "properties": {"status": "archived"}}),
            ),
            false,
        ),
        (
            eval(
                json!({"type": "user", "id": "bob", "properties": {"role": "admin"}}),
                act("write"),
                json!({"type": "record", "id": "record-2", "properties": {"status": "archived"}}),
            ),
            true,
        ),
        (
            eval(
                user("alice"),
                json!({"name": "delete", "properties": {"soft": true}}),
                record("record-1"),
            ),
            true,
        ),
        (
            eval(
                user("alice"),
                json!({"name": "delete", "properties": {"soft": false}}),
                record("record-1"),
            ),
            false,
        ),
    ];
    for (n, (req, expected)) in cases.iter().enumerate() {
        assert_eq!(s.decide(req).await, *expected, "rule {}: {req}", n + 1);
    }
    // A deny is 200 {"decision": false} with a JSON content type.
    let a = s
        .post(
            "/access/v1/evaluation",
            &eval(user("bob"), act("write"), record("record-1")),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body, json!({"decision": false}));
    assert!(
        a.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
}

/// c-2-2-3, c-2-2-8, c-2-2-9: optional context, extra properties, unknown fields.
#[tokio::test]
async fn context_extra_properties_and_unknown_fields_are_accepted() {
    let s = interop().await;
    let mut with_ctx = eval(user("alice"), act("read"), record("record-1"));
    with_ctx["context"] =
        json!({"time": "2025-06-27T18:03-07:00", "ip": "192.168.1.1", "score": 0.5, "n": null});
    assert!(s.decide(&with_ctx).await);
    let extra = eval(
        json!({"type": "user", "id": "alice", "properties": {"department": "Sales", "role": "manager"}}),
        json!({"name": "read", "properties": {"method": "GET"}}),
        json!({"type": "record", "id": "record-1", "properties": {"status": "active", "owner": "bob"}}),
    );
    assert!(s.decide(&extra).await);
    let mut unknown = eval(user("alice"), act("read"), record("record-1"));
    unknown["foo"] = json!("bar");
    unknown["futureField"] = json!({"nested": true});
    assert!(s.decide(&unknown).await);
}

/// c-2-4: missing fields, missing sub-fields, content type, malformed and empty bodies,
/// wrong field types: all 400.
#[tokio::test]
async fn malformed_requests_are_400() {
    let s = interop().await;
    let bad = [
        json!({"action": act("read"), "resource": record("record-1")}),
        json!({"subject": user("alice"), "resource": record("record-1")}),
        json!({"subject": user("alice"), "action": act("read")}),
        json!({"subject": {"id": "alice"}, "action": act("read"), "resource": record("record-1")}),
        json!({"subject": {"type": "user"}, "action": act("read"), "resource": record("record-1")}),
        json!({"subject": user("alice"), "action": {}, "resource": record("record-1")}),
        json!({"subject": user("alice"), "action": act("read"), "resource": {"id": "record-1"}}),
        json!({"subject": user("alice"), "action": act("read"), "resource": {"type": "record"}}),
        json!({"subject": "alice", "action": act("read"), "resource": record("record-1")}),
        json!({"subject": user("alice"), "action": {"name": 123}, "resource": record("record-1")}),
        json!({"subject": user("alice"), "action": act("read"), "resource": record("record-1"), "context": "x"}),
        json!([1, 2]),
    ];
    for body in &bad {
        let a = s.post("/access/v1/evaluation", body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}: {}", a.text);
        assert!(!a.text.is_empty(), "a string body says why");
    }
    let good = eval(user("alice"), act("read"), record("record-1")).to_string();
    for (ct, body) in [
        (Some("text/plain"), good.as_str()),
        (None, good.as_str()),
        (Some("application/json"), "{\"subject\": "),
        (Some("application/json"), ""),
    ] {
        let a = s.post_raw("/access/v1/evaluation", ct, body, None).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{ct:?} {body:?}");
    }
    // The valid twin passes, with a charset parameter too.
    let a = s
        .post_raw(
            "/access/v1/evaluation",
            Some("application/json; charset=utf-8"),
            &good,
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
}

/// c-2-5: X-Request-ID echoed; generated when absent (on errors too).
#[tokio::test]
async fn request_id_is_echoed() {
    let s = interop().await;
    let body = eval(user("alice"), act("read"), record("record-1")).to_string();
    for path in [
        "/access/v1/evaluation",
        "/access/v1/evaluations",
        "/access/v1/search/action",
    ] {
        let a = s
            .post_raw(path, Some("application/json"), &body, Some("bfe9eb29-ab87"))
            .await;
        assert_eq!(a.headers["x-request-id"], "bfe9eb29-ab87", "{path}");
    }
    let a = s
        .post_raw(
            "/access/v1/evaluation",
            Some("application/json"),
            "{",
            Some("err-1"),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.headers["x-request-id"], "err-1");
    let a = s
        .post_raw(
            "/access/v1/evaluation",
            Some("application/json"),
            &body,
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(!a.headers["x-request-id"].is_empty());
    // An id that is not a sane correlation id (too long, or with spaces) is still
    // echoed as sent (MUST); only the audit record gets a fresh id.
    for insane in ["x".repeat(129), "a b".to_owned()] {
        let a = s
            .post_raw(
                "/access/v1/evaluation",
                Some("application/json"),
                &body,
                Some(&insane),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.headers["x-request-id"], insane.as_str());
    }
}

/// c-2-6: the same request gives the same decision.
#[tokio::test]
async fn idempotent() {
    let s = interop().await;
    for req in [
        eval(user("alice"), act("read"), record("record-1")),
        eval(user("bob"), act("write"), record("record-1")),
    ] {
        let first = s.decide(&req).await;
        for _ in 0..5 {
            assert_eq!(s.decide(&req).await, first);
        }
    }
}

/// c-3-2-1..7, c-3-3: boxcars with defaults, ordering, per-entity override with
/// `type`/`id` fallback, context inheritance.
#[tokio::test]
async fn batch_scenario() {
    let s = interop().await;
    let d = s
        .decide_all(&json!({
            "subject": user("alice"), "action": act("read"),
            "evaluations": [{"resource": record("record-1")}, {"resource": record("record-2")}]
        }))
        .await;
    assert_eq!(d.len(), 2);
    assert_eq!(
        s.decide_all(&json!({
            "subject": user("bob"), "resource": record("record-1"),
            "evaluations": [{"action": act("read")}, {"action": act("write")}]
        }))
        .await,
        [true, false]
    );
    assert_eq!(
        s.decide_all(&json!({
            "subject": user("alice"), "action": act("write"),
            "evaluations": [
                {"resource": {"type": "record", "id": "record-1", "properties": {"status": "active"}}},
                {"resource": {"type": "record", "id": "record-2", "properties": {"status": "archived"}}}
            ]
        }))
        .await,
        [true, false]
    );
    assert_eq!(
        s.decide_all(&json!({
            "action": act("write"),
            "resource": {"type": "record", "id": "record-2", "properties": {"status": "archived"}},
            "evaluations": [
                {"subject": user("alice")},
                {"subject": {"type": "user", "id": "bob", "properties": {"role": "admin"}}}
            ]
        }))
        .await,
        [false, true]
    );
    assert_eq!(
        s.decide_all(&json!({"evaluations": [
            {"subject": user("alice"), "action": act("read"), "resource": record("record-1")},
            {"subject": user("bob"), "action": act("write"), "resource": record("record-1")}
        ]}))
        .await,
        [true, false]
    );
    let d = s
        .decide_all(&json!({
            "subject": user("alice"), "action": act("read"),
            "context": {"time": "2025-06-27T18:03-07:00"},
            "evaluations": [
                {"resource": record("record-1")},
                {"resource": record("record-2"), "context": {"time": "2025-06-27T19:00-07:00", "source": "batch-override"}}
            ]
        }))
        .await;
    assert_eq!(d.len(), 2);
    assert_eq!(
        s.decide_all(&json!({
            "subject": user("alice"), "action": act("write"), "resource": {"type": "record"},
            "evaluations": [
                {"resource": {"id": "record-1", "properties": {"status": "active"}}},
                {"resource": {"type": "record", "id": "record-2", "properties": {"status": "archived"}}}
            ]
        }))
        .await,
        [true, false]
    );
}

/// c-3-4: an item error is `decision: false` with `context.error`, the batch is 200;
/// missing or empty `evaluations` behaves as a single evaluation.
#[tokio::test]
async fn batch_errors_and_backwards_compatibility() {
    let s = interop().await;
    let a = s
        .post(
            "/access/v1/evaluations",
            &json!({
                "subject": user("alice"), "action": act("read"),
                "evaluations": [{"resource": record("record-1")}, {}]
            }),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let items = a.body["evaluations"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["decision"], true);
    assert_eq!(items[1]["decision"], false);
    assert_eq!(items[1]["context"]["error"]["status"], 400);
    assert!(items[1]["context"]["error"]["message"].is_string());

    for extra in [json!(null), json!([])] {
        let mut body = eval(user("alice"), act("read"), record("record-1"));
        if !extra.is_null() {
            body["evaluations"] = extra;
        }
        let a = s.post("/access/v1/evaluations", &body).await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.body, json!({"decision": true}));
    }
    // Whole-payload failures stay HTTP errors.
    let a = s
        .post_raw(
            "/access/v1/evaluations",
            Some("application/json"),
            "{",
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = s
        .post(
            "/access/v1/evaluations",
            &json!({"evaluations": [], "subject": user("alice")}),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
}

/// c-1-5 / c-4-2..4: search checks S1–S6 plus context acceptance.
#[tokio::test]
async fn search_scenario_s1_to_s6() {
    let s = interop().await;
    let has = |v: &[String], x: &str| v.iter().any(|i| i == x);
    // S1
    let r = s
        .search(
            "subject",
            &json!({"subject": {"type": "user"}, "action": act("read"), "resource": record("record-1")}),
        )
        .await;
    assert!(has(&r, "alice") && has(&r, "bob"), "{r:?}");
    // S1 with context (c-4-2-2)
    let r = s
        .search(
            "subject",
            &json!({"subject": {"type": "user"}, "action": act("read"), "resource": record("record-1"), "context": {"ip": "10.0.0.1"}}),
        )
        .await;
    assert!(has(&r, "alice") && has(&r, "bob"));
    // S2
    let r = s
        .search(
            "resource",
            &json!({"subject": user("alice"), "action": act("read"), "resource": {"type": "record"}}),
        )
        .await;
    assert!(has(&r, "record-1"), "{r:?}");
    // S3
    let r = s
        .search(
            "action",
            &json!({"subject": user("alice"), "resource": record("record-1")}),
        )
        .await;
    assert!(has(&r, "read") && has(&r, "write"), "{r:?}");
    let r2 = s
        .search(
            "action",
            &json!({"subject": user("alice"), "resource": record("record-1"), "context": {"x": 1}}),
        )
        .await;
    assert_eq!(r, r2);
    // S4
    let r = s
        .search(
            "subject",
            &json!({"subject": {"type": "user"}, "action": act("write"),
                    "resource": {"type": "record", "id": "record-2", "properties": {"status": "archived"}}}),
        )
        .await;
    assert!(has(&r, "bob"), "{r:?}");
    // S5
    let r = s
        .search(
            "resource",
            &json!({"subject": {"type": "user", "id": "bob", "properties": {"role": "admin"}},
                    "action": act("write"), "resource": {"type": "record"}}),
        )
        .await;
    assert!(has(&r, "record-2"), "{r:?}");
    // S6
    let r = s
        .search(
            "action",
            &json!({"subject": {"type": "user", "id": "bob", "properties": {"role": "admin"}},
                    "resource": {"type": "record", "id": "record-2", "properties": {"status": "archived"}}}),
        )
        .await;
    assert!(has(&r, "write"), "{r:?}");
    // Result shape: {type, id} of the searched type.
    let a = s
        .post(
            "/access/v1/search/subject",
            &json!({"subject": {"type": "user"}, "action": act("read"), "resource": record("record-1")}),
        )
        .await;
    for item in a.body["results"].as_array().unwrap() {
        assert_eq!(item["type"], "user");
        assert!(item["id"].is_string());
    }
}

/// c-4-5: `page.limit` and `page.token` accepted; `next_token` a string, `""` at the end.
#[tokio::test]
async fn search_pagination_scenario() {
    let s = interop().await;
    let body = json!({"subject": {"type": "user"}, "action": act("read"), "resource": record("record-1"), "page": {"limit": 1}});
    let a = s.post("/access/v1/search/subject", &body).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["results"].as_array().unwrap().len(), 1);
    let token = a.body["page"]["next_token"].as_str().unwrap().to_owned();
    assert!(!token.is_empty());
    let mut next = body.clone();
    next["page"] = json!({"token": token});
    let a = s.post("/access/v1/search/subject", &next).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body["page"].is_object());
    assert_eq!(a.body["page"]["next_token"], "");
    assert_eq!(a.body["results"].as_array().unwrap().len(), 1);
}

/// c-4-6: unknown identifier or unknown type: empty results, not an error.
#[tokio::test]
async fn search_empty_results() {
    let s = interop().await;
    assert!(
        s.search(
            "action",
            &json!({"subject": user("nonexistent-user"), "resource": record("record-1")})
        )
        .await
        .is_empty()
    );
    assert!(
        s.search(
            "subject",
            &json!({"subject": {"type": "spaceship"}, "action": act("read"), "resource": record("record-1")})
        )
        .await
        .is_empty()
    );
    assert!(
        s.search(
            "resource",
            &json!({"subject": user("alice"), "action": act("read"), "resource": {"type": "not-a-cedar-type!"}})
        )
        .await
        .is_empty()
    );
}

/// c-4-7: missing members and sub-members in searches are 400.
#[tokio::test]
async fn search_errors() {
    let s = interop().await;
    for (kind, body) in [
        (
            "subject",
            json!({"subject": {"type": "user"}, "resource": record("record-1")}),
        ),
        (
            "resource",
            json!({"action": act("read"), "resource": {"type": "record"}}),
        ),
        ("action", json!({"subject": user("alice")})),
        (
            "subject",
            json!({"subject": {"type": "user"}, "action": act("read"), "resource": {"type": "record"}}),
        ),
        (
            "resource",
            json!({"subject": {"type": "user"}, "action": act("read"), "resource": {"type": "record"}}),
        ),
    ] {
        let a = s.post(&format!("/access/v1/search/{kind}"), &body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{kind} {body}");
    }
}

/// c-6: metadata at the well-known URI, `policy_decision_point` equal to the base URL,
/// every endpoint listed.
#[tokio::test]
async fn discovery_metadata() {
    let s = interop().await;
    let resp = s
        .client
        .get(format!("{}/.well-known/authzen-configuration", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let m: Value = resp.json().await.unwrap();
    assert_eq!(m["policy_decision_point"], s.base);
    for (key, path) in [
        ("access_evaluation_endpoint", "/access/v1/evaluation"),
        ("access_evaluations_endpoint", "/access/v1/evaluations"),
        ("search_subject_endpoint", "/access/v1/search/subject"),
        ("search_resource_endpoint", "/access/v1/search/resource"),
        ("search_action_endpoint", "/access/v1/search/action"),
    ] {
        assert_eq!(m[key], format!("{}{path}", s.base));
    }
}
