//! `aims bundle show|list|set|delete`: trust bundles through the admin socket.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use aims_server::client::AdminClient;
use anyhow::{Context, Result, anyhow};
use clap::Subcommand;

use crate::cmd_entry::{Conn, explain};

#[derive(Debug, Subcommand)]
pub(crate) enum BundleCommand {
    /// Print this trust domain's SPIFFE bundle (or a federated one with --trust-domain).
    Show {
        /// A federated trust domain whose stored bundle to print.
        #[arg(long)]
        trust_domain: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// List the federated trust domains' bundles.
    List {
        #[command(flatten)]
        conn: Conn,
    },
    /// Set a federated trust domain's bundle from a SPIFFE bundle document (JSON).
    Set {
        /// The federated trust domain.
        #[arg(long)]
        trust_domain: String,
        /// The bundle file, or `-` for standard input.
        #[arg(long)]
        file: PathBuf,
        #[command(flatten)]
        conn: Conn,
    },
    /// Forget a federated trust domain's bundle.
    Delete {
        /// The federated trust domain.
        #[arg(long)]
        trust_domain: String,
        #[command(flatten)]
        conn: Conn,
    },
}

fn read_file(path: &PathBuf) -> Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut v = Vec::new();
        std::io::stdin()
            .read_to_end(&mut v)
            .context("cannot read the bundle from standard input")?;
        Ok(v)
    } else {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    }
}

fn pretty(json: &str) -> String {
    serde_json::from_str::<serde_json::Value>(json)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| json.to_owned())
}

pub(crate) fn run(cmd: &BundleCommand) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        match cmd {
            BundleCommand::Show {
                trust_domain: None,
                conn,
            } => {
                let doc = AdminClient::new(&conn.admin_socket)
                    .bundle()
                    .await
                    .map_err(explain)?;
                println!("{}", pretty(&doc));
            }
            BundleCommand::Show {
                trust_domain: Some(td),
                conn,
            } => {
                let list = AdminClient::new(&conn.admin_socket)
                    .bundles()
                    .await
                    .map_err(explain)?;
                let b = list
                    .bundles
                    .into_iter()
                    .find(|b| b.trust_domain.as_str() == td)
                    .ok_or_else(|| {
                        anyhow!("no bundle for `{td}`; set one with `aims bundle set --trust-domain {td} --file BUNDLE.json`")
                    })?;
                println!("{}", serde_json::to_string_pretty(&b.bundle)?);
            }
            BundleCommand::List { conn } => {
                let list = AdminClient::new(&conn.admin_socket)
                    .bundles()
                    .await
                    .map_err(explain)?;
                if conn.json {
                    println!("{}", serde_json::to_string_pretty(&list)?);
                } else if list.bundles.is_empty() {
                    println!("no federated bundles");
                } else {
                    println!("{:<32}  {:>12}  ENDPOINT", "TRUST DOMAIN", "SEQUENCE");
                    for b in &list.bundles {
                        println!(
                            "{:<32}  {:>12}  {}",
                            b.trust_domain.as_str(),
                            b.sequence,
                            b.endpoint_url.as_deref().unwrap_or("(set by hand)")
                        );
                    }
                }
            }
            BundleCommand::Set {
                trust_domain,
                file,
                conn,
            } => {
                let doc = read_file(file)?;
                let info = AdminClient::new(&conn.admin_socket)
                    .set_bundle(trust_domain, doc)
                    .await
                    .map_err(explain)?;
                if conn.json {
                    println!("{}", serde_json::to_string_pretty(&info)?);
                } else {
                    println!(
                        "bundle of {} set (sequence {})",
                        info.trust_domain, info.sequence
                    );
                }
            }
            BundleCommand::Delete { trust_domain, conn } => {
                AdminClient::new(&conn.admin_socket)
                    .delete_bundle(trust_domain)
                    .await
                    .map_err(explain)?;
                if !conn.json {
                    println!("bundle of {trust_domain} deleted");
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
