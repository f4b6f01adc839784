//! `aims policy check DIR`: validate a Cedar policy directory against its schema and run
//! its tests (format: `aims_pdp::check`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Check a policy directory: exactly one `*.cedarschema`, the `*.cedar` policy files,
    /// an optional `entities.json` (Cedar JSON entities) and test cases in
    /// `tests/*.json` (each a case or an array of cases: `{"name", "request": <AuthZEN
    /// evaluation request>, "decision": true|false, "reasons": [policy ids]?}`).
    /// Prints OK, or every problem with its file and line (exit code 1).
    Check {
        /// The policy directory.
        dir: PathBuf,
    },
}

pub(crate) fn run(cmd: &PolicyCommand) -> Result<ExitCode> {
    let PolicyCommand::Check { dir } = cmd;
    match aims_pdp::check::check_dir(dir) {
        Err(e) => {
            println!("error: {e}");
            Ok(ExitCode::FAILURE)
        }
        Ok(report) if report.failures.is_empty() => {
            println!(
                "{}: OK ({} policies valid against the schema, {} test cases in {} files passed)",
                dir.display(),
                report.policies,
                report.cases,
                report.files.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Ok(report) => {
            for f in &report.failures {
                println!("{}: error: {}", f.location, f.message);
            }
            println!(
                "{} of {} test cases failed",
                report.failures.len(),
                report.cases
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
