//! `aims config check`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use aims_server::config::{Config, Diagnostic};
use anyhow::Result;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Check a server configuration file. Prints OK, or every error with its line and
    /// column and what to do about it (exit code 1).
    Check {
        /// The TOML file.
        file: PathBuf,
    },
}

/// `FILE:LINE:COLUMN: error: …` lines, each followed by its help.
pub(crate) fn render(path: &Path, problems: &[Diagnostic]) -> String {
    problems
        .iter()
        .map(|d| {
            let place = match d.location {
                Some((line, col)) => format!("{}:{line}:{col}", path.display()),
                None => path.display().to_string(),
            };
            let mut s = format!("{place}: error: {}", d.message);
            if let Some(help) = &d.help {
                s.push_str("\n  help: ");
                s.push_str(help);
            }
            s
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) fn run(cmd: &ConfigCommand) -> Result<ExitCode> {
    let ConfigCommand::Check { file } = cmd;
    // The key-encryption key file is read as the server would read it at start.
    match Config::load(file).and_then(|c| c.keys.load_kek().map(|_| c)) {
        Ok(c) => {
            println!(
                "{}: OK (trust domain {}, data directory {})",
                file.display(),
                c.server.trust_domain,
                c.server.data_dir.display()
            );
            if c.oauth.enabled {
                let issuer = c.oauth.issuer.as_ref().map_or_else(
                    || format!("http://{} (default: the HTTP listener)", c.http.listen),
                    |i| i.get_ref().clone(),
                );
                println!(
                    "  OAuth authorization server: issuer {issuer}, DPoP nonces {}, jti replay cache in {}",
                    if c.oauth.require_dpop_nonce {
                        "required"
                    } else {
                        "optional"
                    },
                    match c.oauth.replay {
                        aims_server::config::ReplayBackend::Store =>
                            "the store (shared by every node)",
                        aims_server::config::ReplayBackend::Memory => "memory (this node only)",
                    }
                );
                if let Some(a) = c.oauth.mtls_listen {
                    let base = c
                        .oauth
                        .mtls_base_url
                        .clone()
                        .unwrap_or_else(|| format!("https://{a} (default)"));
                    println!(
                        "  OAuth mTLS endpoint aliases: listen {a}, base URL {base} (tls_client_auth, self_signed_tls_client_auth, spiffe_x509; certificate-bound tokens)"
                    );
                }
            } else {
                println!("  OAuth authorization server: disabled");
            }
            for w in c.warnings() {
                println!("{}: warning: {}", file.display(), w.message);
                if let Some(help) = &w.help {
                    println!("  help: {help}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("{}", render(file, &e.0));
            println!(
                "{} error{} found",
                e.0.len(),
                if e.0.len() == 1 { "" } else { "s" }
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
