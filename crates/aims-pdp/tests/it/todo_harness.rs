//! The OpenID AuthZEN interop "Todo" scenario (AuthZEN 1.0 draft 02 payloads) replayed
//! over real HTTP against the Todo example directories, the way the interop harness
//! (`openid/authzen` `interop/authzen-todo-backend/test/runner.ts`) does it:
//!
//! * every `evaluation` case is POSTed as is to `/access/v1/evaluation` with
//!   `Content-Type: application/json` (and the `Authorization` header the runner sends
//!   when no API key is set: the string `undefined`); the result is `decision`, or
//!   `false` when absent;
//! * every `evaluations` case is POSTed to `/access/v1/evaluations`; the result is the
//!   response's `evaluations` array, compared with `expected` as JSON text (so a
//!   response item carrying anything besides `decision` would fail, as in the harness).
//!
//! The tables are in `tests/vectors/` (see the README there for their provenance):
//! the harness's own `decisions-authorization-api-1_0-02.json`, vendored unmodified,
//! against `examples/authzen-todo-harness`, and a table transcribed from the published
//! payload spec against `examples/authzen-todo`. The two directories share schema and
//! policies; only the users' addresses differ, as they do between the two sources.

use std::path::PathBuf;
use std::sync::Arc;

use aims_pdp::Pdp;
use aims_pdp::authzen::AuthzenConfig;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{Server, example, serve};

/// A harness decision table, the example directory that must answer it, and how many
/// cases of each kind it must hold.
struct Table {
    file: &'static str,
    example: &'static str,
    evaluation: usize,
    evaluations: usize,
}

const TABLES: &[Table] = &[
    // The harness's table, unmodified.
    Table {
        file: "decisions-authorization-api-1_0-02.json",
        example: "authzen-todo-harness",
        evaluation: 40,
        evaluations: 3,
    },
    // Transcribed from the payload spec.
    Table {
        file: "authzen-todo-payload-spec-1_0-02.json",
        example: "authzen-todo",
        evaluation: 40,
        evaluations: 5,
    },
];

fn vectors(file: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("vectors")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// POSTs `request` as the harness does; answers the body as JSON.
async fn harness_post(s: &Server, endpoint: &str, request: &Value) -> Value {
    let resp = s
        .client
        .post(format!("{}/access/v1/{endpoint}", s.base))
        .header("authorization", "undefined")
        .header("content-type", "application/json")
        .body(serde_json::to_string(request).unwrap())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{endpoint} {request}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{endpoint} {request}: {e}: {text}"))
}

#[tokio::test]
async fn todo_tables_pass_as_the_harness_checks_them() {
    for table in TABLES {
        let pdp = Arc::new(Pdp::from_dir(&example(table.example)).unwrap());
        let s = serve(pdp, AuthzenConfig::new("")).await;
        let v = vectors(table.file);
        let single = v["evaluation"].as_array().expect("evaluation array");
        let boxcars = v["evaluations"].as_array().expect("evaluations array");
        assert_eq!(
            single.len(),
            table.evaluation,
            "{}: evaluation cases",
            table.file
        );
        assert_eq!(
            boxcars.len(),
            table.evaluations,
            "{}: evaluations cases",
            table.file
        );

        let mut passed = 0;
        let mut failures = Vec::new();
        for (n, case) in single.iter().enumerate() {
            let body = harness_post(&s, "evaluation", &case["request"]).await;
            // runner: `data.decision || false`
            let got = body["decision"].as_bool().unwrap_or(false);
            let expected = case["expected"].as_bool().expect("boolean expected");
            if got == expected {
                passed += 1;
            } else {
                failures.push(format!("evaluation #{n}: expected {expected}, got {body}"));
            }
        }
        for (n, case) in boxcars.iter().enumerate() {
            let body = harness_post(&s, "evaluations", &case["request"]).await;
            // runner: `JSON.stringify(EXP) === JSON.stringify(data.evaluations || [])`
            let got = body
                .get("evaluations")
                .cloned()
                .unwrap_or(Value::Array(vec![]));
            let expected = &case["expected"];
            assert!(expected.as_array().is_some_and(|a| !a.is_empty()));
            // Textual, like the runner (member order and extra members count).
            let (got_text, expected_text) = (got.to_string(), expected.to_string());
            if got_text == expected_text {
                passed += 1;
            } else {
                failures.push(format!("evaluations #{n}: expected {expected}, got {got}"));
            }
        }
        assert!(
            failures.is_empty(),
            "{} against examples/{}:\n{}",
            table.file,
            table.example,
            failures.join("\n")
        );
        assert_eq!(passed, table.evaluation + table.evaluations);
    }
}

/// The table is not one-sided: both decisions occur, in single and boxcar cases.
#[test]
fn tables_have_both_decisions() {
    for table in TABLES {
        let v = vectors(table.file);
        let single: Vec<bool> = v["evaluation"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["expected"].as_bool().unwrap())
            .collect();
        assert!(
            single.contains(&true) && single.contains(&false),
            "{}",
            table.file
        );
        let boxed: Vec<bool> = v["evaluations"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["expected"].as_array().unwrap().clone())
            .map(|d| d["decision"].as_bool().unwrap())
            .collect();
        assert!(
            boxed.contains(&true) && boxed.contains(&false),
            "{}",
            table.file
        );
    }
}

/// `aims policy check` passes on both Todo directories: every case of their
/// `tests/rules.json` (the table decisions, plus an unknown user and the pre-1.0
/// top-level `ownerID` shape, which is not read as a property).
#[test]
fn policy_check_passes() {
    for name in ["authzen-todo", "authzen-todo-harness"] {
        let report = aims_pdp::check::check_dir(&example(name)).unwrap();
        assert_eq!(report.policies, 5, "{name}");
        assert_eq!(report.cases, 42, "{name}");
        assert!(report.failures.is_empty(), "{name}: {:?}", report.failures);
    }
}

/// The two Todo directories differ only in their entity data: schema and policies are
/// the same files.
#[test]
fn todo_examples_share_schema_and_policies() {
    for file in ["schema.cedarschema", "policies.cedar"] {
        let read = |name: &str| {
            let path = example(name).join(file);
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"))
        };
        assert_eq!(
            read("authzen-todo"),
            read("authzen-todo-harness"),
            "{file} differs"
        );
    }
}

/// The vendored harness table is kept byte for byte (no reformatting): its length as
/// recorded in `tests/vectors/README.md` (which also gives its SHA-256).
#[test]
fn harness_table_is_the_vendored_copy() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors/decisions-authorization-api-1_0-02.json");
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len(), 19_117, "{path:?}");
}
