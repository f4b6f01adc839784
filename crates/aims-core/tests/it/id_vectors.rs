//! The go-spiffe SPIFFE ID vectors (`tests/vectors/`, see its README), replayed against
//! `SpiffeId`, `WorkloadId`, and `WorkloadId` with the scheme swapped to `wimse://`.

use aims_core::id::{IdScheme, SpiffeId, WorkloadId};
use serde::Deserialize;

const CASES_JSON: &str = include_str!("../vectors/spiffe_id_cases.json");
const EXPECTED_CASES: usize = 543;

#[derive(Debug, Deserialize)]
struct File {
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    input: String,
    valid: bool,
    trust_domain: Option<String>,
    path: Option<String>,
    error: Option<String>,
}

fn cases() -> Vec<Case> {
    let file: File = serde_json::from_str(CASES_JSON).expect("vector file parses");
    assert_eq!(file.cases.len(), EXPECTED_CASES, "vector count");
    file.cases
}

/// Checks one parse outcome against a case. `what` names the parser in failure messages.
fn check<T>(
    what: &str,
    case: &Case,
    input: &str,
    result: Result<T, aims_core::IdError>,
    parts: impl Fn(&T) -> (String, String, String),
) {
    match (&result, case.valid) {
        (Ok(v), true) => {
            let (td, path, display) = parts(v);
            assert_eq!(
                Some(td),
                case.trust_domain,
                "{what} trust domain of {input:?}"
            );
            assert_eq!(Some(path), case.path, "{what} path of {input:?}");
            assert_eq!(display, input, "{what} display of {input:?}");
        }
        (Err(e), false) => {
            assert_eq!(
                Some(e.to_string()),
                case.error,
                "{what} error for {input:?}"
            );
        }
        (Ok(_), false) => panic!("{what} accepted {input:?}; expected {:?}", case.error),
        (Err(e), true) => panic!("{what} rejected {input:?}: {e}"),
    }
}

#[test]
fn spiffe_id_agrees_with_go_spiffe_vectors() {
    let cases = cases();
    let valid = cases.iter().filter(|c| c.valid).count();
    assert!(valid > 0 && valid < cases.len());
    for case in &cases {
        check(
            "SpiffeId",
            case,
            &case.input,
            SpiffeId::parse(&case.input),
            |id| {
                (
                    id.trust_domain().to_string(),
                    id.path().to_owned(),
                    id.to_string(),
                )
            },
        );
        // The String path must agree with the &str path.
        let owned = SpiffeId::try_from(case.input.clone());
        assert_eq!(
            owned.map(String::from),
            SpiffeId::parse(&case.input).map(String::from)
        );
    }
}

#[test]
fn workload_id_agrees_with_go_spiffe_vectors() {
    for case in &cases() {
        let parsed = WorkloadId::parse(&case.input);
        if let Ok(id) = &parsed {
            assert_eq!(id.scheme(), IdScheme::Spiffe);
            assert_eq!(
                id.as_spiffe().map(|s| s.as_str()),
                Some(case.input.as_str())
            );
        }
        check("WorkloadId", case, &case.input, parsed, |id| {
            (
                id.trust_domain().to_string(),
                id.path().to_owned(),
                id.to_string(),
            )
        });
    }
}

#[test]
fn wimse_scheme_follows_the_same_rules() {
    let mut replayed = 0;
    for case in &cases() {
        let Some(rest) = case.input.strip_prefix("spiffe://") else {
            continue;
        };
        let input = format!("wimse://{rest}");
        let parsed = WorkloadId::parse(&input);
        if let Ok(id) = &parsed {
            assert_eq!(id.scheme(), IdScheme::Wimse);
            assert!(id.as_spiffe().is_none());
        }
        check("WorkloadId(wimse)", case, &input, parsed, |id| {
            (
                id.trust_domain().to_string(),
                id.path().to_owned(),
                id.to_string(),
            )
        });
        replayed += 1;
    }
    assert!(
        replayed > 500,
        "only {replayed} cases had the spiffe scheme"
    );
}
