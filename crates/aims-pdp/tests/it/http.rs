//! Transport behaviour beyond the scenario: boxcar semantics, multi-page searches,
//! the caller-authentication hook, reasons in the response.

use std::sync::Arc;

use aims_pdp::authzen::{AuthzenConfig, CallerRejection};
use aims_pdp::{Pdp, PolicyBundle, PolicySource};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{example, interop, serve};

/// read on record-1 (permit), write on record-1 as bob (deny), read on record-2
/// (permit): `[true, false, true]` under execute_all.
fn three(semantic: Option<&str>) -> Value {
    let mut body = json!({
        "subject": {"type": "user", "id": "bob"},
        "evaluations": [
            {"action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}},
            {"action": {"name": "write"}, "resource": {"type": "record", "id": "record-1"}},
            {"action": {"name": "read"}, "resource": {"type": "record", "id": "record-2"}}
        ]
    });
    if let Some(s) = semantic {
        body["options"] = json!({"evaluations_semantic": s});
    }
    body
}

#[tokio::test]
async fn boxcar_execute_all_is_the_default() {
    let s = interop().await;
    assert_eq!(s.decide_all(&three(None)).await, [true, false, true]);
    assert_eq!(
        s.decide_all(&three(Some("execute_all"))).await,
        [true, false, true]
    );
}

#[tokio::test]
async fn boxcar_deny_on_first_deny_stops_after_the_deny() {
    let s = interop().await;
    assert_eq!(
        s.decide_all(&three(Some("deny_on_first_deny"))).await,
        [true, false]
    );
    // An item error counts as a deny.
    let mut body = three(Some("deny_on_first_deny"));
    body["evaluations"][0] = json!({"action": {}});
    let d = s.decide_all(&body).await;
    assert_eq!(d, [false]);
}

#[tokio::test]
async fn boxcar_permit_on_first_permit_stops_after_the_permit() {
    let s = interop().await;
    assert_eq!(
        s.decide_all(&three(Some("permit_on_first_permit"))).await,
        [true]
    );
    let mut body = three(Some("permit_on_first_permit"));
    body["evaluations"].as_array_mut().unwrap().swap(0, 1);
    assert_eq!(s.decide_all(&body).await, [false, true]);
}

#[tokio::test]
async fn boxcar_unknown_semantic_and_oversize_are_400() {
    let s = interop().await;
    let a = s
        .post("/access/v1/evaluations", &three(Some("majority_vote")))
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let pdp = Arc::new(Pdp::from_dir(&example("authzen-interop")).unwrap());
    let mut config = AuthzenConfig::new("");
    config.max_evaluations = 2;
    config.max_body_bytes = 4096;
    let small = serve(pdp, config).await;
    let a = small.post("/access/v1/evaluations", &three(None)).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    // Counted before the items are parsed: empty items are refused for their number.
    let empty = json!({"evaluations": [{}, {}, {}]});
    let a = small.post("/access/v1/evaluations", &empty).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.text.contains("at most 2 evaluations"), "{}", a.text);
    // A body over `max_body_bytes` is refused before it is parsed, on every endpoint.
    let mut big = three(None);
    big["context"] = json!({"padding": "x".repeat(5000)});
    for path in ["/access/v1/evaluations", "/access/v1/evaluation"] {
        let a = small.post(path, &big).await;
        assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
    }
}

fn many_users(n: usize) -> Arc<Pdp> {
    let mut entities =
        vec![json!({"uid": {"type": "group", "id": "staff"}, "attrs": {}, "parents": []})];
    for i in 0..n {
        // every third user is not staff, so pages skip candidates
        let parents = if i % 3 == 2 {
            json!([])
        } else {
            json!([{"type": "group", "id": "staff"}])
        };
        entities.push(json!({"uid": {"type": "user", "id": format!("u{i:03}")}, "attrs": {}, "parents": parents}));
    }
    entities.push(json!({"uid": {"type": "record", "id": "record-1"}, "attrs": {"status": "active"}, "parents": []}));
    let dir = example("authzen-interop");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    let bundle = PolicyBundle {
        schema: PolicySource::new("schema.cedarschema", read("schema.cedarschema")),
        policies: vec![PolicySource::new("policies.cedar", read("policies.cedar"))],
        entities: Some(PolicySource::new(
            "entities",
            Value::Array(entities).to_string(),
        )),
    };
    Arc::new(Pdp::new(&bundle).unwrap())
}

/// A search that finds little ends a page after a bounded number of candidates, with a
/// `next_token`, instead of evaluating the whole type in one request.
#[tokio::test]
async fn a_search_page_evaluates_a_bounded_number_of_candidates() {
    // 2,400 users; only alice writes active records, and she is not among them.
    let s = serve(many_users(2400), AuthzenConfig::new("")).await;
    let mut body = json!({"subject": {"type": "user"}, "action": {"name": "write"},
        "resource": {"type": "record", "id": "record-1"}, "page": {"limit": 10}});
    let mut pages = Vec::new();
    loop {
        let a = s.post("/access/v1/search/subject", &body).await;
        assert_eq!(a.status, StatusCode::OK);
        let token = a.body["page"]["next_token"].as_str().unwrap().to_owned();
        pages.push(a.body["results"].as_array().unwrap().len());
        if token.is_empty() {
            break;
        }
        body["page"]["token"] = json!(token);
    }
    // At most max(20 × 10, 1,000) candidates per page: 1,000 + 1,000 + 400.
    assert_eq!(pages, [0, 0, 0]);
}

#[tokio::test]
async fn pagination_walks_every_result_once() {
    let s = serve(many_users(50), AuthzenConfig::new("")).await;
    let base = json!({"subject": {"type": "user"}, "action": {"name": "read"},
                      "resource": {"type": "record", "id": "record-1"}, "page": {"limit": 7}});
    let mut seen = Vec::new();
    let mut body = base.clone();
    let mut pages = 0;
    loop {
        let a = s.post("/access/v1/search/subject", &body).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        let results = a.body["results"].as_array().unwrap();
        assert!(results.len() <= 7);
        assert_eq!(a.body["page"]["count"], results.len());
        seen.extend(results.iter().map(|r| r["id"].as_str().unwrap().to_owned()));
        pages += 1;
        let token = a.body["page"]["next_token"].as_str().unwrap();
        if token.is_empty() {
            break;
        }
        body["page"] = json!({"token": token, "limit": 7});
        assert!(pages < 20);
    }
    let expected: Vec<String> = (0..50)
        .filter(|i| i % 3 != 2)
        .map(|i| format!("u{i:03}"))
        .collect();
    assert_eq!(seen, expected);
    assert_eq!(pages, expected.len().div_ceil(7));

    // Without a limit, the default page size (50) returns everything at once.
    let mut all = base.clone();
    all.as_object_mut().unwrap().remove("page");
    let a = s.post("/access/v1/search/subject", &all).await;
    assert_eq!(a.body["results"].as_array().unwrap().len(), expected.len());
    assert_eq!(a.body["page"]["next_token"], "");
}

#[tokio::test]
async fn page_token_is_bound_to_the_request() {
    let s = serve(many_users(10), AuthzenConfig::new("")).await;
    let body = json!({"subject": {"type": "user"}, "action": {"name": "read"},
                      "resource": {"type": "record", "id": "record-1"}, "page": {"limit": 2}});
    let a = s.post("/access/v1/search/subject", &body).await;
    let token = a.body["page"]["next_token"].as_str().unwrap().to_owned();
    // Same request, keys reordered: still accepted.
    let reordered = json!({"page": {"token": token}, "resource": {"id": "record-1", "type": "record"},
                           "action": {"name": "read"}, "subject": {"type": "user"}});
    assert_eq!(
        s.post("/access/v1/search/subject", &reordered).await.status,
        StatusCode::OK
    );
    // A different action with that token: 400.
    let other = json!({"subject": {"type": "user"}, "action": {"name": "write"},
                       "resource": {"type": "record", "id": "record-1"}, "page": {"token": token}});
    assert_eq!(
        s.post("/access/v1/search/subject", &other).await.status,
        StatusCode::BAD_REQUEST
    );
    let garbage = json!({"subject": {"type": "user"}, "action": {"name": "read"},
                         "resource": {"type": "record", "id": "record-1"}, "page": {"token": "%%%"}});
    assert_eq!(
        s.post("/access/v1/search/subject", &garbage).await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn caller_authorizer_guards_access_routes_only() {
    let pdp = Arc::new(Pdp::from_dir(&example("authzen-interop")).unwrap());
    let mut config = AuthzenConfig::new("");
    config.authorizer = Some(Arc::new(|parts: &http::request::Parts| {
        match parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
        {
            None => Err(CallerRejection::Unauthenticated("no credentials".into())),
            Some("Bearer pep") => Ok(()),
            Some(_) => Err(CallerRejection::Forbidden("not a PEP".into())),
        }
    }));
    let s = serve(pdp, config).await;
    let body = json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
                      "resource": {"type": "record", "id": "record-1"}});
    let url = format!("{}/access/v1/evaluation", s.base);
    let r = s
        .client
        .post(&url)
        .json(&body)
        .header("x-request-id", "a1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["x-request-id"], "a1");
    let r = s
        .client
        .post(&url)
        .json(&body)
        .bearer_auth("other")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = s
        .client
        .post(&url)
        .json(&body)
        .bearer_auth("pep")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = s
        .client
        .get(format!("{}/.well-known/authzen-configuration", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "metadata is public");
}

#[tokio::test]
async fn reasons_are_exposed_only_when_configured() {
    let pdp = Arc::new(Pdp::from_dir(&example("authzen-interop")).unwrap());
    let mut config = AuthzenConfig::new("https://pdp.example.com/");
    config.expose_reasons = true;
    let s = serve(pdp, config).await;
    let a = s
        .post(
            "/access/v1/evaluation",
            &json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
                    "resource": {"type": "record", "id": "record-1"}}),
        )
        .await;
    assert_eq!(
        a.body,
        json!({"decision": true, "context": {"reason_admin": {"policies": ["staff-read"]}}})
    );
    let m: Value = s
        .client
        .get(format!("{}/.well-known/authzen-configuration", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["policy_decision_point"], "https://pdp.example.com");
    assert_eq!(
        m["access_evaluation_endpoint"],
        "https://pdp.example.com/access/v1/evaluation"
    );
}
