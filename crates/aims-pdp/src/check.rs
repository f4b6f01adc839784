//! `aims policy check DIR`: load and validate a policy directory, then run its tests.
//!
//! ## Test files
//!
//! Every `DIR/tests/*.json` holds one test case or an array of them:
//!
//! ```json
//! [
//!   {
//!     "name": "alice may read record-1",
//!     "request": {
//!       "subject": {"type": "user", "id": "alice"},
//!       "action": {"name": "read"},
//!       "resource": {"type": "record", "id": "record-1"},
//!       "context": {}
//!     },
//!     "decision": true,
//!     "reasons": ["staff-read"]
//!   }
//! ]
//! ```
//!
//! `request` is an AuthZEN Access Evaluation request (same parsing and mapping as the
//! HTTP API); `decision` is the expected decision; `reasons` (optional) the exact set of
//! determining policy ids. A case fails when the decision or the reasons differ, when
//! the request is malformed, or when a policy errors during its evaluation (a policy
//! error is never what a test wants).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::authzen::wire::EvaluationBody;
use crate::engine::{Evaluation, Pdp};
use crate::error::PdpError;

#[derive(Debug, Deserialize)]
struct Case {
    name: Option<String>,
    request: Value,
    decision: bool,
    reasons: Option<Vec<String>>,
}

/// One failed test case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseFailure {
    /// `file` and case number/name.
    pub location: String,
    /// What went wrong.
    pub message: String,
}

impl std::fmt::Display for CaseFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Outcome of a policy check.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// Policies loaded.
    pub policies: usize,
    /// Test files read.
    pub files: Vec<PathBuf>,
    /// Cases run.
    pub cases: usize,
    /// Failed cases.
    pub failures: Vec<CaseFailure>,
}

/// Loads `dir` (an error if it does not load or validate) and runs `dir/tests/*.json`.
pub fn check_dir(dir: &Path) -> Result<CheckReport, PdpError> {
    let pdp = Pdp::from_dir(dir)?;
    let mut report = CheckReport {
        policies: pdp.policy_count(),
        ..CheckReport::default()
    };
    let tests = dir.join("tests");
    if !tests.is_dir() {
        return Ok(report);
    }
    let io = |path: &Path, source| PdpError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&tests).map_err(|e| io(&tests, e))? {
        let path = entry.map_err(|e| io(&tests, e))?.path();
        if path.extension().is_some_and(|e| e == "json") {
            files.push(path);
        }
    }
    files.sort();
    for file in &files {
        let text = std::fs::read_to_string(file).map_err(|e| io(file, e))?;
        let shown = file.display().to_string();
        let cases: Vec<Case> = match serde_json::from_str::<Value>(&text) {
            Ok(Value::Array(items)) => match items
                .into_iter()
                .map(serde_json::from_value)
                .collect::<Result<Vec<Case>, _>>()
            {
                Ok(c) => c,
                Err(e) => {
                    report.failures.push(CaseFailure {
                        location: shown,
                        message: format!("invalid test case: {e}"),
                    });
                    continue;
                }
            },
            Ok(single) => match serde_json::from_value(single) {
                Ok(c) => vec![c],
                Err(e) => {
                    report.failures.push(CaseFailure {
                        location: shown,
                        message: format!("invalid test case: {e}"),
                    });
                    continue;
                }
            },
            Err(e) => {
                report.failures.push(CaseFailure {
                    location: format!("{shown}:{}:{}", e.line(), e.column()),
                    message: format!("invalid JSON: {e}"),
                });
                continue;
            }
        };
        for (n, case) in cases.into_iter().enumerate() {
            report.cases += 1;
            let location = match &case.name {
                Some(name) => format!("{shown}: case {} ({name})", n + 1),
                None => format!("{shown}: case {}", n + 1),
            };
            if let Some(message) = run_case(&pdp, &case) {
                report.failures.push(CaseFailure { location, message });
            }
        }
    }
    report.files = files;
    Ok(report)
}

fn run_case(pdp: &Pdp, case: &Case) -> Option<String> {
    let request = match serde_json::from_value::<EvaluationBody>(case.request.clone())
        .map_err(|e| PdpError::InvalidRequest(e.to_string()))
        .and_then(|b| b.to_request())
    {
        Ok(r) => r,
        Err(e) => return Some(format!("invalid request: {e}")),
    };
    let decision = match pdp.evaluate_with(&request, Evaluation::Indexed) {
        Ok(d) => d,
        Err(e) => return Some(format!("request refused: {e}")),
    };
    let word = |b: bool| if b { "permit" } else { "deny" };
    if decision.decision != case.decision {
        return Some(format!(
            "expected {}, got {} (determining policies: [{}])",
            word(case.decision),
            word(decision.decision),
            decision.reasons.join(", ")
        ));
    }
    if let Some(expected) = &case.reasons {
        let mut expected = expected.clone();
        expected.sort();
        if expected != decision.reasons {
            return Some(format!(
                "expected determining policies [{}], got [{}]",
                expected.join(", "),
                decision.reasons.join(", ")
            ));
        }
    }
    if !decision.errors.is_empty() {
        return Some(format!("policy errors: {}", decision.errors.join("; ")));
    }
    None
}
