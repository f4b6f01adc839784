//! `aims client create|list|show|update|delete`: OAuth clients (agents) through the admin
//! socket.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use aims_crypto::{Jwk, Jwks};
use aims_server::api::{
    AuthMethod, ClientList, ClientMetadata, ClientView, GrantType, MAX_ACCESS_TOKEN_LIFETIME,
    TokenFormat,
};
use aims_server::client::{AdminClient, ClientError};
use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand, ValueEnum};

use crate::cmd_entry::{Conn, human_secs};
use crate::duration::parse_duration;

#[derive(Debug, Subcommand)]
pub(crate) enum ClientCommand {
    /// Register an OAuth client: an agent authenticating with its SPIFFE ID
    /// (--spiffe-id, a JWT-SVID) or its public keys (--jwks-file, private_key_jwt).
    Create(CreateArgs),
    /// List every client.
    List {
        #[command(flatten)]
        conn: Conn,
    },
    /// Show one client.
    Show {
        /// The client id.
        client_id: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Change a client; options given replace the stored values.
    Update(UpdateArgs),
    /// LEGACY: give a client_secret_basic/post client a new secret (printed once); the
    /// old one stops working at once.
    RotateSecret {
        /// The client id.
        client_id: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Delete a client and revoke every token and grant issued to it.
    Delete {
        /// The client id.
        client_id: String,
        #[command(flatten)]
        conn: Conn,
    },
}

/// Client authentication methods the CLI registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Method {
    /// A JWT signed with a key of the client's JWKS (RFC 7523).
    #[value(name = "private_key_jwt")]
    PrivateKeyJwt,
    /// A JWT-SVID whose SPIFFE ID matches --spiffe-id.
    #[value(name = "spiffe_jwt")]
    SpiffeJwt,
    /// A WIT-SVID with a proof of possession (OAuth-Client-Attestation headers).
    #[value(name = "spiffe_wit")]
    SpiffeWit,
    /// An X509-SVID over mutual TLS (the `[oauth] mtls_listen` endpoints).
    #[value(name = "spiffe_x509")]
    SpiffeX509,
    /// LEGACY: a server-generated secret in HTTP Basic (needs [oauth]
    /// allow_client_secrets = true; the secret is printed once).
    #[value(name = "client_secret_basic")]
    ClientSecretBasic,
    /// LEGACY: a server-generated secret in the form body (needs [oauth]
    /// allow_client_secrets = true; the secret is printed once).
    #[value(name = "client_secret_post")]
    ClientSecretPost,
    /// RFC 8705: a certificate of a trusted CA whose URI SAN is --tls-client-auth-san-uri
    /// (over mutual TLS).
    #[value(name = "tls_client_auth")]
    TlsClientAuth,
    /// RFC 8705: a self-signed certificate registered with --certificate-file, or as the
    /// `x5c` of a key published at --jwks-uri (over mutual TLS).
    #[value(name = "self_signed_tls_client_auth")]
    SelfSignedTlsClientAuth,
}

impl Method {
    fn auth_method(self) -> AuthMethod {
        match self {
            Method::PrivateKeyJwt => AuthMethod::PrivateKeyJwt,
            Method::SpiffeJwt => AuthMethod::SpiffeJwt,
            Method::SpiffeWit => AuthMethod::SpiffeWit,
            Method::SpiffeX509 => AuthMethod::SpiffeX509,
            Method::ClientSecretBasic => AuthMethod::ClientSecretBasic,
            Method::ClientSecretPost => AuthMethod::ClientSecretPost,
            Method::TlsClientAuth => AuthMethod::TlsClientAuth,
            Method::SelfSignedTlsClientAuth => AuthMethod::SelfSignedTlsClientAuth,
        }
    }
}

/// Grant types the CLI registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Grant {
    /// RFC 6749 §4.4.
    #[value(name = "client_credentials")]
    ClientCredentials,
    /// RFC 6749 §4.1 with PKCE (needs --redirect-uri).
    #[value(name = "authorization_code")]
    AuthorizationCode,
    /// RFC 6749 §6.
    #[value(name = "refresh_token")]
    RefreshToken,
}

impl Grant {
    fn grant_type(self) -> GrantType {
        match self {
            Grant::ClientCredentials => GrantType::ClientCredentials,
            Grant::AuthorizationCode => GrantType::AuthorizationCode,
            Grant::RefreshToken => GrantType::RefreshToken,
        }
    }
}

/// Access-token formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// RFC 9068 JWT (resource servers verify it with the JWKS).
    Jwt,
    /// A random handle (resource servers introspect it).
    Opaque,
}

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// The client id, e.g. agent-a.
    #[arg(long)]
    client_id: String,
    /// The SPIFFE ID (or `/*` prefix pattern) the agent's SVIDs carry, e.g.
    /// spiffe://example.org/agent/* (default method spiffe_jwt).
    #[arg(long)]
    spiffe_id: Option<String>,
    /// A JWKS (or single JWK) file with the client's PUBLIC keys (default method
    /// private_key_jwt).
    #[arg(long, conflicts_with = "jwks_uri")]
    jwks_file: Option<PathBuf>,
    /// The https URL where the client publishes its public keys (RFC 7591 jwks_uri;
    /// default method private_key_jwt). The server fetches and caches it.
    #[arg(long)]
    jwks_uri: Option<String>,
    /// How the client authenticates (default: from --spiffe-id, --jwks-file or
    /// --jwks-uri).
    #[arg(long, value_enum)]
    auth_method: Option<Method>,
    /// A PEM certificate the client presents over mutual TLS (repeatable): registered in
    /// its JWKS as `x5c`, for self_signed_tls_client_auth.
    #[arg(long = "certificate-file")]
    certificate_files: Vec<PathBuf>,
    /// The URI SAN of the client's certificate, for tls_client_auth.
    #[arg(long)]
    tls_client_auth_san_uri: Option<String>,
    /// Bind access tokens to the TLS client certificate even when the client
    /// authenticates another way (RFC 8705 §3; certificate methods always bind).
    #[arg(long)]
    certificate_bound_tokens: bool,
    /// A grant type the client may use (repeatable; default client_credentials).
    #[arg(long = "grant-type", value_enum)]
    grant_types: Vec<Grant>,
    /// A scope the client may request (repeatable, or space-separated).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// A resource (RFC 8707 audience) the client's tokens may target (repeatable).
    #[arg(long = "resource")]
    resources: Vec<String>,
    /// A resource whose tokens this client may introspect as its resource server
    /// (repeatable; a client always sees its own tokens).
    #[arg(long = "introspect-resource")]
    introspect_resources: Vec<String>,
    /// A redirect URI (authorization_code only; repeatable).
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    /// An authorization_details type the client may request (repeatable).
    #[arg(long = "authorization-details-type")]
    authorization_details_types: Vec<String>,
    /// A human-readable name.
    #[arg(long)]
    name: Option<String>,
    /// Access-token lifetime, e.g. 5m (at most 1h; default 5m).
    #[arg(long, value_parser = parse_duration)]
    access_token_lifetime: Option<u64>,
    /// Every access token must be DPoP-bound (RFC 9449).
    #[arg(long)]
    dpop_required: bool,
    /// Access-token format.
    #[arg(long, value_enum, default_value = "jwt")]
    token_format: Format,
    #[command(flatten)]
    conn: Conn,
}

#[derive(Debug, Args)]
pub(crate) struct UpdateArgs {
    /// The client id.
    client_id: String,
    /// New SPIFFE ID pattern.
    #[arg(long)]
    spiffe_id: Option<String>,
    /// New public keys (JWKS or single JWK file); replaces a jwks_uri.
    #[arg(long, conflicts_with = "jwks_uri")]
    jwks_file: Option<PathBuf>,
    /// New jwks_uri; replaces inline keys.
    #[arg(long)]
    jwks_uri: Option<String>,
    /// New authentication method.
    #[arg(long, value_enum)]
    auth_method: Option<Method>,
    /// Replace the registered certificates (repeatable PEM files; self_signed_tls_client_auth).
    #[arg(long = "certificate-file")]
    certificate_files: Vec<PathBuf>,
    /// New URI SAN for tls_client_auth.
    #[arg(long)]
    tls_client_auth_san_uri: Option<String>,
    /// Whether access tokens are bound to a TLS client certificate presented with
    /// another method.
    #[arg(long)]
    certificate_bound_tokens: Option<bool>,
    /// Replace the grant types (repeatable).
    #[arg(long = "grant-type", value_enum)]
    grant_types: Vec<Grant>,
    /// Replace the scopes (repeatable, or space-separated).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// Replace the resources (repeatable).
    #[arg(long = "resource")]
    resources: Vec<String>,
    /// Replace the resources whose tokens the client may introspect (repeatable).
    #[arg(long = "introspect-resource")]
    introspect_resources: Vec<String>,
    /// Replace the redirect URIs (repeatable).
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    /// Replace the authorization_details types (repeatable).
    #[arg(long = "authorization-details-type")]
    authorization_details_types: Vec<String>,
    /// New name (an empty string removes it).
    #[arg(long)]
    name: Option<String>,
    /// New access-token lifetime.
    #[arg(long, value_parser = parse_duration)]
    access_token_lifetime: Option<u64>,
    /// Whether access tokens must be DPoP-bound.
    #[arg(long)]
    dpop_required: Option<bool>,
    /// New access-token format.
    #[arg(long, value_enum)]
    token_format: Option<Format>,
    #[command(flatten)]
    conn: Conn,
}

/// Reads a JWKS or a single JWK; refuses private keys.
fn read_jwks(path: &Path) -> Result<Jwks> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --jwks-file {}", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("--jwks-file {} is not JSON", path.display()))?;
    let jwks = if value.get("keys").is_some() {
        serde_json::from_value::<Jwks>(value)
    } else {
        serde_json::from_value::<Jwk>(value).map(|k| Jwks { keys: vec![k] })
    }
    .with_context(|| {
        format!(
            "--jwks-file {} is neither a JWKS ({{\"keys\": [...]}}) nor a JWK",
            path.display()
        )
    })?;
    if jwks.keys.is_empty() {
        bail!("--jwks-file {} holds no key", path.display());
    }
    if jwks.keys.iter().any(|k| {
        ["d", "p", "q", "dp", "dq", "qi", "k"]
            .iter()
            .any(|m| k.extra.contains_key(*m))
    }) {
        bail!(
            "--jwks-file {} holds a PRIVATE key: register only the public keys (remove \"d\" and the other private members) and keep the private key with the agent",
            path.display()
        );
    }
    Ok(jwks)
}

/// A JWKS registering the certificates of PEM files (each key carries its certificate
/// as `x5c`).
fn read_certificates(paths: &[PathBuf]) -> Result<Jwks> {
    let mut keys = Vec::new();
    for path in paths {
        let pem = std::fs::read(path)
            .with_context(|| format!("cannot read --certificate-file {}", path.display()))?;
        let certs = aims_pki::pem::certificates(&pem).map_err(|e| {
            anyhow!(
                "--certificate-file {} holds no PEM certificate: {e}",
                path.display()
            )
        })?;
        // The leaf: the certificate the client presents.
        let leaf = certs
            .first()
            .ok_or_else(|| anyhow!("--certificate-file {} holds no certificate", path.display()))?;
        keys.push(aims_pki::certificate_jwk(leaf).map_err(|e| {
            anyhow!(
                "--certificate-file {}: {e} (EC, Ed25519 or RSA keys only)",
                path.display()
            )
        })?);
    }
    Ok(Jwks { keys })
}

fn scope_string(v: &[String]) -> String {
    v.iter()
        .flat_map(|s| s.split(' '))
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn lifetime(v: Option<u64>) -> Result<Option<u32>> {
    v.map(|s| {
        u32::try_from(s)
            .ok()
            .filter(|s| *s <= MAX_ACCESS_TOKEN_LIFETIME)
            .ok_or_else(|| {
                anyhow!(
                    "--access-token-lifetime must be at most 1h (agents' tokens are short-lived)"
                )
            })
    })
    .transpose()
}

fn format_of(f: Format) -> TokenFormat {
    match f {
        Format::Jwt => TokenFormat::Jwt,
        Format::Opaque => TokenFormat::Opaque,
    }
}

fn explain(e: ClientError) -> anyhow::Error {
    match &e {
        ClientError::Api { status: 409, .. } => {
            anyhow!("{e}\nread the client again (`aims client show ID`) and retry")
        }
        ClientError::Api { status: 400, .. } => {
            anyhow!("{e}\nfix the options above; `aims client create --help` lists them")
        }
        _ => crate::cmd_entry::explain(e),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn or_dash<'a>(v: impl IntoIterator<Item = &'a str>) -> String {
    let v: Vec<&str> = v.into_iter().collect();
    if v.is_empty() {
        "-".into()
    } else {
        v.join(", ")
    }
}

fn print_client(c: &ClientView) {
    let m = &c.metadata;
    println!("client {}", c.client_id);
    if let Some(n) = &m.client_name {
        println!("  name            {n}");
    }
    println!(
        "  auth method     {}{}",
        m.token_endpoint_auth_method.as_str(),
        if c.legacy_secret {
            " (LEGACY SECRET)"
        } else {
            ""
        }
    );
    if let Some(u) = &m.jwks_uri {
        println!("  jwks_uri        {u}");
    }
    if let Some(id) = &m.spiffe_id {
        println!("  SPIFFE ID       {id}");
    }
    if let Some(uri) = &m.tls_client_auth_san_uri {
        println!("  TLS SAN URI     {uri}");
    }
    if let Some(j) = &m.jwks {
        println!(
            "  keys            {}",
            or_dash(
                j.keys
                    .iter()
                    .map(|k| k.kid.as_deref().unwrap_or("(no kid)"))
            )
        );
    }
    println!(
        "  grant types     {}",
        or_dash(m.grant_types.iter().map(|g| g.as_str()))
    );
    println!(
        "  scopes          {}",
        if m.scope.is_empty() { "-" } else { &m.scope }
    );
    println!(
        "  resources       {}",
        or_dash(m.resources.iter().map(String::as_str))
    );
    if !m.introspect_resources.is_empty() {
        println!(
            "  introspects     {}",
            or_dash(m.introspect_resources.iter().map(String::as_str))
        );
    }
    println!(
        "  access tokens   {}, {}{}",
        match m.access_token_format {
            TokenFormat::Jwt => "JWT",
            TokenFormat::Opaque => "opaque",
        },
        human_secs(m.access_token_lifetime.unwrap_or(300)),
        if m.dpop_bound_access_tokens {
            ", DPoP-bound"
        } else {
            ""
        }
    );
    println!("  revision        {}", c.revision);
    if let Some(secret) = &c.client_secret {
        println!("  client secret   {}", secret.expose());
        println!("  (shown once: the server keeps only its hash; give it to the client now)");
    }
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn show(c: &ClientView, json: bool) -> Result<ExitCode> {
    if json {
        print_json(c)?;
    } else {
        print_client(c);
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn run(cmd: &ClientCommand) -> Result<ExitCode> {
    let rt = runtime()?;
    rt.block_on(async {
        match cmd {
            ClientCommand::Create(a) => create(a).await,
            ClientCommand::List { conn } => {
                let clients = AdminClient::new(&conn.admin_socket)
                    .list_clients()
                    .await
                    .map_err(explain)?;
                if conn.json {
                    print_json(&ClientList { clients })?;
                } else if clients.is_empty() {
                    println!(
                        "no clients; add one with `aims client create --client-id ID --spiffe-id spiffe://TD/agent/*`"
                    );
                } else {
                    println!("{:<32}  {:<16}  {:<32}  RESOURCES", "CLIENT ID", "AUTH", "SCOPES");
                    for c in &clients {
                        let m = &c.metadata;
                        let auth = if c.legacy_secret {
                            format!("{} (legacy)", m.token_endpoint_auth_method.as_str())
                        } else {
                            m.token_endpoint_auth_method.as_str().to_owned()
                        };
                        println!(
                            "{:<32}  {:<16}  {:<32}  {}",
                            c.client_id,
                            auth,
                            if m.scope.is_empty() { "-" } else { &m.scope },
                            or_dash(m.resources.iter().map(String::as_str))
                        );
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            ClientCommand::Show { client_id, conn } => {
                let c = AdminClient::new(&conn.admin_socket)
                    .get_client(client_id)
                    .await
                    .map_err(explain)?;
                show(&c, conn.json)
            }
            ClientCommand::Update(a) => update(a).await,
            ClientCommand::RotateSecret { client_id, conn } => {
                let c = AdminClient::new(&conn.admin_socket)
                    .rotate_client_secret(client_id)
                    .await
                    .map_err(explain)?;
                show(&c, conn.json)
            }
            ClientCommand::Delete { client_id, conn } => {
                AdminClient::new(&conn.admin_socket)
                    .delete_client(client_id)
                    .await
                    .map_err(explain)?;
                if !conn.json {
                    println!("deleted client {client_id} (its tokens and grants are revoked)");
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

/// The method: chosen, or implied by the credential given.
fn method(
    chosen: Option<Method>,
    spiffe_id: Option<&str>,
    jwks: Option<&Jwks>,
    jwks_uri: Option<&str>,
) -> Result<AuthMethod> {
    if let Some(m) = chosen {
        return Ok(m.auth_method());
    }
    if jwks_uri.is_some() && spiffe_id.is_none() {
        return Ok(AuthMethod::PrivateKeyJwt);
    }
    if jwks.is_some_and(|j| j.keys.iter().any(|k| k.x5c.is_some())) && spiffe_id.is_none() {
        return Ok(AuthMethod::SelfSignedTlsClientAuth);
    }
    match (spiffe_id, jwks) {
        (Some(_), None) => Ok(AuthMethod::SpiffeJwt),
        (None, Some(_)) => Ok(AuthMethod::PrivateKeyJwt),
        (Some(_), Some(_)) => bail!(
            "both --spiffe-id and --jwks-file given: choose how the client authenticates with --auth-method spiffe_jwt or --auth-method private_key_jwt"
        ),
        (None, None) => bail!(
            "say how the client authenticates: --spiffe-id spiffe://TD/agent/NAME (an agent with SVIDs) or --jwks-file PUBLIC.jwks (private_key_jwt)"
        ),
    }
}

async fn create(a: &CreateArgs) -> Result<ExitCode> {
    let mut jwks = a.jwks_file.as_deref().map(read_jwks).transpose()?;
    if !a.certificate_files.is_empty() {
        let certs = read_certificates(&a.certificate_files)?;
        jwks.get_or_insert_with(|| Jwks { keys: Vec::new() })
            .keys
            .extend(certs.keys);
    }
    let auth = match (a.auth_method, &a.tls_client_auth_san_uri) {
        (None, Some(_)) => AuthMethod::TlsClientAuth,
        (chosen, _) => method(
            chosen,
            a.spiffe_id.as_deref(),
            jwks.as_ref(),
            a.jwks_uri.as_deref(),
        )?,
    };
    let grant_types = if a.grant_types.is_empty() {
        vec![GrantType::ClientCredentials]
    } else {
        a.grant_types.iter().map(|g| g.grant_type()).collect()
    };
    let meta = ClientMetadata {
        client_id: a.client_id.clone(),
        client_name: a.name.clone(),
        token_endpoint_auth_method: auth,
        jwks,
        jwks_uri: a.jwks_uri.clone(),
        spiffe_id: a.spiffe_id.clone(),
        tls_client_auth_san_uri: a.tls_client_auth_san_uri.clone(),
        grant_types,
        scope: scope_string(&a.scopes),
        resources: a.resources.clone(),
        introspect_resources: a.introspect_resources.clone(),
        redirect_uris: a.redirect_uris.clone(),
        authorization_details_types: a.authorization_details_types.clone(),
        access_token_lifetime: lifetime(a.access_token_lifetime)?,
        refresh_token_lifetime: None,
        dpop_bound_access_tokens: a.dpop_required,
        tls_client_certificate_bound_access_tokens: a.certificate_bound_tokens,
        access_token_format: format_of(a.token_format),
        client_secret_hash: None,
    };
    let c = AdminClient::new(&a.conn.admin_socket)
        .create_client(&meta)
        .await
        .map_err(explain)?;
    show(&c, a.conn.json)
}

async fn update(a: &UpdateArgs) -> Result<ExitCode> {
    let admin = AdminClient::new(&a.conn.admin_socket);
    let current = admin.get_client(&a.client_id).await.map_err(explain)?;
    let mut m = current.metadata;
    if let Some(id) = &a.spiffe_id {
        m.spiffe_id = Some(id.clone());
    }
    if let Some(p) = &a.jwks_file {
        m.jwks = Some(read_jwks(p)?);
        m.jwks_uri = None;
    }
    if let Some(u) = &a.jwks_uri {
        m.jwks_uri = Some(u.clone());
        m.jwks = None;
    }
    if !a.certificate_files.is_empty() {
        m.jwks = Some(read_certificates(&a.certificate_files)?);
    }
    if let Some(uri) = &a.tls_client_auth_san_uri {
        m.tls_client_auth_san_uri = Some(uri.clone());
    }
    if let Some(b) = a.certificate_bound_tokens {
        m.tls_client_certificate_bound_access_tokens = b;
    }
    if let Some(method) = a.auth_method {
        m.token_endpoint_auth_method = method.auth_method();
    }
    if !a.grant_types.is_empty() {
        m.grant_types = a.grant_types.iter().map(|g| g.grant_type()).collect();
    }
    if !a.scopes.is_empty() {
        m.scope = scope_string(&a.scopes);
    }
    if !a.resources.is_empty() {
        m.resources = a.resources.clone();
    }
    if !a.introspect_resources.is_empty() {
        m.introspect_resources = a.introspect_resources.clone();
    }
    if !a.redirect_uris.is_empty() {
        m.redirect_uris = a.redirect_uris.clone();
    }
    if !a.authorization_details_types.is_empty() {
        m.authorization_details_types = a.authorization_details_types.clone();
    }
    if let Some(n) = &a.name {
        m.client_name = if n.is_empty() { None } else { Some(n.clone()) };
    }
    if a.access_token_lifetime.is_some() {
        m.access_token_lifetime = lifetime(a.access_token_lifetime)?;
    }
    if let Some(d) = a.dpop_required {
        m.dpop_bound_access_tokens = d;
    }
    if let Some(f) = a.token_format {
        m.access_token_format = format_of(f);
    }
    let c = admin
        .update_client(&m, Some(current.revision))
        .await
        .map_err(explain)?;
    show(&c, a.conn.json)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use aims_core::{SpiffeId, SystemClock, TrustDomain};
    use aims_pki::CertificateAuthority;

    use super::*;

    #[test]
    fn certificate_files_become_x5c_keys_and_imply_self_signed() {
        let ca = CertificateAuthority::new_root(
            &TrustDomain::new("example.org").unwrap(),
            Duration::from_secs(3600),
            Arc::new(SystemClock),
        )
        .unwrap();
        let svid = ca
            .issue_x509_svid(
                &SpiffeId::parse("spiffe://example.org/a").unwrap(),
                Duration::from_secs(600),
                &[],
            )
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("client.pem");
        std::fs::write(&pem, svid.chain_pem()).unwrap();
        let jwks = read_certificates(std::slice::from_ref(&pem)).unwrap();
        assert_eq!(jwks.keys.len(), 1);
        let x5c = jwks.keys[0].x5c.as_ref().unwrap();
        // The leaf only, the certificate the client presents.
        assert_eq!(
            aims_crypto::b64::decode_std(&x5c[0]).unwrap(),
            svid.leaf().as_ref()
        );
        assert!(jwks.keys[0].use_.is_none());
        assert_eq!(
            method(None, None, Some(&jwks), None).unwrap(),
            AuthMethod::SelfSignedTlsClientAuth
        );
        // Not PEM: a clear error.
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "hello").unwrap();
        assert!(read_certificates(&[junk]).is_err());
    }

    #[test]
    fn certificate_methods_parse_by_name() {
        for (name, m) in [
            ("tls_client_auth", AuthMethod::TlsClientAuth),
            (
                "self_signed_tls_client_auth",
                AuthMethod::SelfSignedTlsClientAuth,
            ),
            ("spiffe_x509", AuthMethod::SpiffeX509),
        ] {
            let parsed = Method::from_str(name, false).unwrap();
            assert_eq!(parsed.auth_method(), m);
            assert_eq!(m.as_str(), name);
        }
    }
}
