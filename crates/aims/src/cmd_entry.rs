//! `aims entry create|list|show|update|delete`: registration entries through the admin
//! socket.

use std::path::PathBuf;
use std::process::ExitCode;

use aims_core::{RegistrationEntry, Selector, SpiffeId, TrustDomain};
use aims_server::api::{DEFAULT_JWT_TTL, DEFAULT_WIT_TTL, DEFAULT_X509_TTL, EntrySpec};
use aims_server::client::{AdminClient, ClientError};
use anyhow::{Context, Result, anyhow};
use clap::{Args, Subcommand};

use crate::duration::parse_duration;

/// Where the admin socket is and how to print.
#[derive(Debug, Args)]
pub(crate) struct Conn {
    /// The server's admin socket (`aims serve --dev` makes ./aims-data/admin.sock).
    #[arg(
        long,
        env = "AIMS_ADMIN_SOCKET",
        default_value = "aims-data/admin.sock"
    )]
    pub(crate) admin_socket: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum EntryCommand {
    /// Register a workload: every --selector must match it to receive --spiffe-id.
    Create(CreateArgs),
    /// List every entry.
    List {
        #[command(flatten)]
        conn: Conn,
    },
    /// Show one entry.
    Show {
        /// The entry id.
        id: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Change an entry; options given replace the stored values.
    Update(UpdateArgs),
    /// Delete an entry (its workloads stop receiving SVIDs for it).
    Delete {
        /// The entry id.
        id: String,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// The SPIFFE ID, e.g. spiffe://aims.localhost/agent/a.
    #[arg(long)]
    spiffe_id: String,
    /// A selector (repeatable; all must match), e.g. unix:uid:1000 or unix:sha256:HEX.
    #[arg(long = "selector", required = true)]
    selectors: Vec<String>,
    /// X509-SVID lifetime, e.g. 1h.
    #[arg(long, value_parser = parse_duration)]
    x509_ttl: Option<u64>,
    /// JWT-SVID lifetime, e.g. 5m.
    #[arg(long, value_parser = parse_duration)]
    jwt_ttl: Option<u64>,
    /// WIT-SVID lifetime, e.g. 1h.
    #[arg(long, value_parser = parse_duration)]
    wit_ttl: Option<u64>,
    /// A DNS name for the X509-SVID (repeatable).
    #[arg(long = "dns")]
    dns: Vec<String>,
    /// A hint telling the workload's SVIDs apart.
    #[arg(long)]
    hint: Option<String>,
    /// A trust domain whose bundle the workload also receives (repeatable).
    #[arg(long = "federates-with")]
    federates_with: Vec<String>,
    /// The node that serves this entry (a server's `[server] node_id`); nodes with
    /// another node ID do not serve it. Without it every node does.
    #[arg(long)]
    parent_id: Option<String>,
    /// SVIDs of this entry may call the admin API over mTLS.
    #[arg(long)]
    admin: bool,
    #[command(flatten)]
    conn: Conn,
}

#[derive(Debug, Args)]
pub(crate) struct UpdateArgs {
    /// The entry id.
    id: String,
    /// New SPIFFE ID.
    #[arg(long)]
    spiffe_id: Option<String>,
    /// Replace every selector with these (repeatable).
    #[arg(long = "selector")]
    selectors: Vec<String>,
    /// New X509-SVID lifetime.
    #[arg(long, value_parser = parse_duration)]
    x509_ttl: Option<u64>,
    /// New JWT-SVID lifetime.
    #[arg(long, value_parser = parse_duration)]
    jwt_ttl: Option<u64>,
    /// New WIT-SVID lifetime.
    #[arg(long, value_parser = parse_duration)]
    wit_ttl: Option<u64>,
    /// Replace the DNS names (repeatable).
    #[arg(long = "dns")]
    dns: Vec<String>,
    /// New hint (an empty string removes it).
    #[arg(long)]
    hint: Option<String>,
    /// Replace the federated trust domains (repeatable).
    #[arg(long = "federates-with")]
    federates_with: Vec<String>,
    /// Whether SVIDs of this entry may call the admin API over mTLS.
    #[arg(long)]
    admin: Option<bool>,
    #[command(flatten)]
    conn: Conn,
}

fn ttl(v: Option<u64>, default: u32, what: &str) -> Result<u32> {
    match v {
        None => Ok(default),
        Some(s) => u32::try_from(s).map_err(|_| anyhow!("{what} lifetime is too large")),
    }
}

fn selectors(v: &[String]) -> Result<Vec<Selector>> {
    v.iter()
        .map(|s| Selector::parse(s).map_err(|e| anyhow!("--selector {s}: {e}")))
        .collect()
}

fn trust_domains(v: &[String]) -> Result<Vec<TrustDomain>> {
    v.iter()
        .map(|s| TrustDomain::new(s).map_err(|e| anyhow!("--federates-with {s}: {e}")))
        .collect()
}

fn spiffe_id(s: &str, flag: &str) -> Result<SpiffeId> {
    SpiffeId::parse(s).map_err(|e| anyhow!("{flag} {s}: {e}"))
}

/// Turns a client error into advice.
pub(crate) fn explain(e: ClientError) -> anyhow::Error {
    match &e {
        ClientError::Connect { path, source } => match source.kind() {
            std::io::ErrorKind::PermissionDenied => anyhow!(
                "{e}\nthe socket belongs to another user: run this command as the user running the server"
            ),
            _ => anyhow!(
                "cannot reach the admin socket {}: is `aims serve --dev` running? (start it, or pass --admin-socket PATH)\ncause: {source}",
                path.display()
            ),
        },
        ClientError::Api { status: 409, .. } => {
            anyhow!("{e}\nread the entry again (`aims entry show ID`) and retry")
        }
        _ => anyhow!(e),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Seconds as `1h30m`, `5m`, `45s`.
pub(crate) fn human_secs(s: u32) -> String {
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    let mut out = String::new();
    for (v, u) in [(d, "d"), (h, "h"), (m, "m"), (sec, "s")] {
        if v > 0 {
            out.push_str(&format!("{v}{u}"));
        }
    }
    if out.is_empty() { "0s".into() } else { out }
}

fn or_dash(v: impl IntoIterator<Item = String>) -> String {
    let v: Vec<String> = v.into_iter().collect();
    if v.is_empty() {
        "-".into()
    } else {
        v.join(", ")
    }
}

fn print_entry(e: &RegistrationEntry) {
    println!("entry {}", e.id);
    println!("  SPIFFE ID       {}", e.spiffe_id);
    println!(
        "  selectors       {}",
        or_dash(e.selectors.iter().map(ToString::to_string))
    );
    println!(
        "  lifetimes       X.509 {}, JWT {}, WIT {}",
        human_secs(e.x509_ttl),
        human_secs(e.jwt_ttl),
        human_secs(e.wit_ttl)
    );
    println!("  DNS names       {}", or_dash(e.dns_names.iter().cloned()));
    println!("  hint            {}", e.hint.as_deref().unwrap_or("-"));
    println!(
        "  federates with  {}",
        or_dash(e.federates_with.iter().map(ToString::to_string))
    );
    println!(
        "  parent          {}",
        e.parent_id.as_ref().map_or("-".into(), ToString::to_string)
    );
    println!("  admin           {}", if e.admin { "yes" } else { "no" });
    println!("  revision        {}", e.revision);
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub(crate) fn run(cmd: &EntryCommand) -> Result<ExitCode> {
    let rt = runtime()?;
    rt.block_on(async {
        match cmd {
            EntryCommand::Create(a) => create(a).await,
            EntryCommand::List { conn } => {
                let list = AdminClient::new(&conn.admin_socket)
                    .list_entries()
                    .await
                    .map_err(explain)?;
                if conn.json {
                    print_json(&aims_server::api::EntryList { entries: list })?;
                } else if list.is_empty() {
                    println!("no entries; add one with `aims entry create --spiffe-id ID --selector TYPE:VALUE`");
                } else {
                    println!("{:<32}  {:<48}  SELECTORS", "ID", "SPIFFE ID");
                    for e in &list {
                        println!(
                            "{:<32}  {:<48}  {}",
                            e.id,
                            e.spiffe_id.as_str(),
                            or_dash(e.selectors.iter().map(ToString::to_string))
                        );
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            EntryCommand::Show { id, conn } => {
                let e = AdminClient::new(&conn.admin_socket)
                    .get_entry(id)
                    .await
                    .map_err(explain)?;
                if conn.json {
                    print_json(&e)?;
                } else {
                    print_entry(&e);
                }
                Ok(ExitCode::SUCCESS)
            }
            EntryCommand::Update(a) => update(a).await,
            EntryCommand::Delete { id, conn } => {
                AdminClient::new(&conn.admin_socket)
                    .delete_entry(id)
                    .await
                    .map_err(explain)?;
                if !conn.json {
                    println!("deleted entry {id}");
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

async fn create(a: &CreateArgs) -> Result<ExitCode> {
    let spec = EntrySpec {
        spiffe_id: spiffe_id(&a.spiffe_id, "--spiffe-id")?,
        selectors: selectors(&a.selectors)?,
        x509_ttl: ttl(a.x509_ttl, DEFAULT_X509_TTL, "X.509")?,
        jwt_ttl: ttl(a.jwt_ttl, DEFAULT_JWT_TTL, "JWT")?,
        wit_ttl: ttl(a.wit_ttl, DEFAULT_WIT_TTL, "WIT")?,
        dns_names: a.dns.clone(),
        hint: a.hint.clone(),
        federates_with: trust_domains(&a.federates_with)?,
        parent_id: a
            .parent_id
            .as_deref()
            .map(|p| spiffe_id(p, "--parent-id"))
            .transpose()?,
        admin: a.admin,
        revision: None,
    };
    let e = AdminClient::new(&a.conn.admin_socket)
        .create_entry(&spec)
        .await
        .map_err(explain)?;
    if a.conn.json {
        print_json(&e)?;
    } else {
        print_entry(&e);
    }
    Ok(ExitCode::SUCCESS)
}

async fn update(a: &UpdateArgs) -> Result<ExitCode> {
    let client = AdminClient::new(&a.conn.admin_socket);
    let current = client.get_entry(&a.id).await.map_err(explain)?;
    let mut spec = EntrySpec::of(&current);
    if let Some(id) = &a.spiffe_id {
        spec.spiffe_id = spiffe_id(id, "--spiffe-id")?;
    }
    if !a.selectors.is_empty() {
        spec.selectors = selectors(&a.selectors)?;
    }
    if a.x509_ttl.is_some() {
        spec.x509_ttl = ttl(a.x509_ttl, 0, "X.509")?;
    }
    if a.jwt_ttl.is_some() {
        spec.jwt_ttl = ttl(a.jwt_ttl, 0, "JWT")?;
    }
    if a.wit_ttl.is_some() {
        spec.wit_ttl = ttl(a.wit_ttl, 0, "WIT")?;
    }
    if !a.dns.is_empty() {
        spec.dns_names = a.dns.clone();
    }
    if let Some(h) = &a.hint {
        spec.hint = if h.is_empty() { None } else { Some(h.clone()) };
    }
    if !a.federates_with.is_empty() {
        spec.federates_with = trust_domains(&a.federates_with)?;
    }
    if let Some(admin) = a.admin {
        spec.admin = admin;
    }
    let e = client.update_entry(&a.id, &spec).await.map_err(explain)?;
    if a.conn.json {
        print_json(&e)?;
    } else {
        print_entry(&e);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::human_secs;

    #[test]
    fn human_durations() {
        assert_eq!(human_secs(3600), "1h");
        assert_eq!(human_secs(5400), "1h30m");
        assert_eq!(human_secs(45), "45s");
        assert_eq!(human_secs(90_061), "1d1h1m1s");
        assert_eq!(human_secs(0), "0s");
    }
}
