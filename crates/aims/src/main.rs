//! `aims`: the Agent Identity Management System command line.
#![forbid(unsafe_code)]

mod cmd_bundle;
mod cmd_ca;
mod cmd_client;
mod cmd_config;
mod cmd_entry;
mod cmd_policy;
mod cmd_request;
mod cmd_serve;
mod cmd_token;
mod cmd_user;
mod duration;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// mimalloc instead of the system allocator: the token endpoint allocates and frees
/// many small buffers per request (form, JWT parts, JSON), and glibc's allocator showed
/// up as 6 % of the server's CPU samples under load (bench/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// AIMS gives every AI agent a verifiable SPIFFE/WIMSE identity and short-lived
/// credentials, and checks them at every hop.
#[derive(Debug, Parser)]
#[command(name = "aims", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Manage a trust domain's certificate authority.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Issue SPIFFE verifiable identity documents (SVIDs).
    #[command(subcommand)]
    Svid(SvidCommand),
    /// Inspect or verify JSON Web Tokens (JWT-SVID, WIT, access tokens, DPoP proofs).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Run the AIMS server (`--dev` for a development server with no configuration).
    Serve(cmd_serve::ServeArgs),
    /// Check a server configuration file.
    #[command(subcommand)]
    Config(cmd_config::ConfigCommand),
    /// Manage registration entries through the server's admin socket.
    #[command(subcommand)]
    Entry(cmd_entry::EntryCommand),
    /// Manage OAuth clients (agents) of the authorization server through the admin socket.
    #[command(subcommand)]
    Client(cmd_client::ClientCommand),
    /// Manage users (the people agents act for, who log in at the authorization
    /// endpoint) through the admin socket.
    #[command(subcommand)]
    User(cmd_user::UserCommand),
    /// Show or set trust bundles through the server's admin socket.
    #[command(subcommand)]
    Bundle(cmd_bundle::BundleCommand),
    /// Send one HTTP request authenticated with this process's own identity (from the
    /// Workload API): mTLS, WIT + WPT, WIT + HTTP signature or a JWT-SVID.
    Request(cmd_request::RequestArgs),
    /// Check Cedar policies (for the AuthZEN policy decision point).
    #[command(subcommand)]
    Policy(cmd_policy::PolicyCommand),
}

#[derive(Debug, Subcommand)]
enum CaCommand {
    /// Create a trust-domain CA: a self-signed root, or an intermediate under an
    /// upstream CA. Writes ca.pem (chain), ca.key (PKCS#8, mode 0600), bundle.pem
    /// (the X.509 trust anchors) and bundle.json (the SPIFFE bundle document).
    Init(CaInit),
}

#[derive(Debug, Args)]
pub(crate) struct CaInit {
    /// Trust domain name, e.g. `example.org` (lowercase letters, digits, `.`, `-`, `_`).
    #[arg(long)]
    trust_domain: String,
    /// Directory to write the CA into (created if missing). Refused if any of ca.pem,
    /// ca.key, bundle.pem or bundle.json is already there, unless --force.
    #[arg(long)]
    out: PathBuf,
    /// Replace existing CA files in --out. Each file is written anew and renamed into
    /// place: a symbolic link there is replaced, never followed.
    #[arg(long)]
    force: bool,
    /// Validity of the CA certificate, e.g. `8760h` or `365d`.
    #[arg(long, default_value = "365d", value_parser = duration::parse_duration)]
    ttl: u64,
    /// Upstream CA certificate (PEM) to sign an intermediate CA with, instead of a
    /// self-signed root. Requires --upstream-key.
    #[arg(long, requires = "upstream_key")]
    upstream_cert: Option<PathBuf>,
    /// Upstream CA private key (PKCS#8 PEM).
    #[arg(long, requires = "upstream_cert")]
    upstream_key: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum SvidCommand {
    /// Issue an X509-SVID from a CA directory made by `aims ca init`. Writes svid.pem
    /// (leaf first, then intermediates), svid.key (PKCS#8, mode 0600) and bundle.pem.
    Issue(SvidIssue),
}

#[derive(Debug, Args)]
pub(crate) struct SvidIssue {
    /// The CA directory (from `aims ca init`).
    #[arg(long)]
    ca: PathBuf,
    /// The SPIFFE ID to certify, e.g. `spiffe://example.org/agent/planner`. It must be
    /// in the CA's trust domain and have a path.
    #[arg(long)]
    spiffe_id: String,
    /// Lifetime, e.g. `1h` (capped at the CA's own expiry).
    #[arg(long, default_value = "1h", value_parser = duration::parse_duration)]
    ttl: u64,
    /// DNS names to add as SANs (repeatable), for SVIDs that also serve TLS by name.
    #[arg(long = "dns")]
    dns: Vec<String>,
    /// Directory to write the SVID into (created if missing).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Decode a JWT and print its header and claims. Verifies nothing and trusts
    /// nothing: use `verify` to check a token.
    Inspect {
        /// The token, or `-` to read it from standard input.
        token: String,
    },
    /// Verify a token for one profile against a JWKS, print its claims (exit 0) or the
    /// exact reason it was rejected (exit 1).
    Verify(TokenVerify),
}

/// Token profiles `aims token verify` knows.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Profile {
    /// SPIFFE JWT-SVID (needs --audience and --trust-domain).
    JwtSvid,
    /// WIMSE Workload Identity Token (needs --trust-domain).
    Wit,
    /// SPIFFE WIT-SVID, the stricter WIT profile (needs --trust-domain).
    WitSvid,
    /// RFC 9068 JWT access token (needs --issuer and --audience).
    At,
    /// RFC 9449 DPoP proof (needs --htm and --htu; the key is the proof's own `jwk`).
    Dpop,
}

#[derive(Debug, Args)]
pub(crate) struct TokenVerify {
    /// The token, or `-` to read it from standard input.
    token: String,
    /// The token profile to apply.
    #[arg(long, value_enum)]
    profile: Profile,
    /// JWKS or SPIFFE bundle file with the trusted public keys (not needed for dpop).
    #[arg(long)]
    jwks: Option<PathBuf>,
    /// Trust domain the JWKS belongs to; required for jwt-svid, wit and wit-svid. Only
    /// tokens whose `sub` is in this trust domain are accepted: the token itself never
    /// chooses which trust domain the keys count for.
    #[arg(long)]
    trust_domain: Option<String>,
    /// Expected audience (jwt-svid, at).
    #[arg(long)]
    audience: Option<String>,
    /// Expected issuer (at).
    #[arg(long)]
    issuer: Option<String>,
    /// HTTP method the DPoP proof must be bound to.
    #[arg(long)]
    htm: Option<String>,
    /// HTTP target URI the DPoP proof must be bound to.
    #[arg(long)]
    htu: Option<String>,
    /// Evaluate time windows at this Unix time instead of now.
    #[arg(long)]
    now: Option<i64>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Ca(CaCommand::Init(args)) => cmd_ca::init(&args),
        Command::Svid(SvidCommand::Issue(args)) => cmd_ca::issue(&args),
        Command::Token(TokenCommand::Inspect { token }) => cmd_token::inspect(&token),
        Command::Token(TokenCommand::Verify(args)) => cmd_token::verify(&args),
        Command::Serve(args) => cmd_serve::run(&args),
        Command::Config(cmd) => cmd_config::run(&cmd),
        Command::Entry(cmd) => cmd_entry::run(&cmd),
        Command::Bundle(cmd) => cmd_bundle::run(&cmd),
        Command::Client(cmd) => cmd_client::run(&cmd),
        Command::User(cmd) => cmd_user::run(&cmd),
        Command::Request(args) => cmd_request::run(&args),
        Command::Policy(cmd) => cmd_policy::run(&cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
