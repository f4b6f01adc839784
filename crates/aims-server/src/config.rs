//! The server configuration: one versioned TOML file, every table `deny_unknown_fields`.
//!
//! ```toml
//! version = 1
//!
//! [server]
//! trust_domain = "example.org"
//! data_dir = "/var/lib/aims"
//! worker_threads = 2                                # default: one per CPU the process may use
//! node_id = "spiffe://example.org/node/a"           # optional: entries with another parent_id are not served here
//!
//! [storage]
//! url = "sqlite:///var/lib/aims/aims.db?mode=rwc"   # default: <data_dir>/aims.db
//! poll_interval = "5s"                              # how often other nodes' writes are picked up
//! sweep_interval = "10s"                            # how often expired jti records and grants go
//!
//! [workload_api]
//! socket_path = "/run/aims/workload.sock"           # default: <data_dir>/workload.sock
//! max_connections_per_uid = 1024                    # open connections per caller uid (0: no limit)
//!
//! [admin]
//! socket_path = "/var/lib/aims/admin.sock"          # default: <data_dir>/admin.sock (mode 0600)
//! mtls_listen = "127.0.0.1:8444"                    # optional: admin API for admin SVIDs
//!
//! [http]
//! listen = "127.0.0.1:8080"                         # /healthz /readyz /metrics /bundle
//! bundle_endpoint_listen = "127.0.0.1:8443"         # optional: https_spiffe bundle endpoint
//! header_read_timeout = "30s"                       # request headers within this; idle connections close after it
//! request_timeout = "60s"                           # a whole request (body included) within this, else 408
//! max_connections = 4096                            # open connections per TCP listener; more wait to be accepted
//!
//! [ca]
//! ttl = "365d"
//! key_type = "ec-p256"                              # ec-p256, ec-p384 or ed25519
//!
//! [jwt]                                             # JWT-SVID and WIT-SVID signing keys
//! key_type = "ec-p256"                              # ec-p256 or ec-p384
//! rotation_period = "24h"
//!
//! [bundle]
//! refresh_hint = "5m"
//!
//! [keys]                                            # the signing keys kept in the store
//! encryption_key_file = "/etc/aims/kek"             # optional: seal them with this key-encryption key
//!                                                   # (32 random bytes, base64, mode 0600)
//!
//! [log]
//! level = "info"                                    # a tracing filter, e.g. "info,aims_server=debug"
//! format = "text"                                   # text or json
//!
//! [oauth]                                          # the OAuth 2.0 authorization server (on [http] listen)
//! enabled = true
//! issuer = "https://as.example.org"                 # default: http://<[http] listen as bound> (loopback only)
//! require_dpop_nonce = false                        # RFC 9449 §8 server nonces at the token endpoint
//! scopes = ["api:read", "api:write"]                # scopes_supported in the metadata
//! replay = "store"                                  # store (shared by every node) or memory
//! replay_memory_entries = 2000000                    # memory: live jtis kept (fail closed when full)
//! require_pushed_authorization_requests = false     # RFC 9126: refuse front-channel requests
//! allow_client_secrets = false                      # legacy client_secret_basic/_post clients (server-generated, hashed)
//! allow_http_jwks_uri = false                       # clients' jwks_uri may be http to a loopback host (testing only)
//! mtls_listen = "127.0.0.1:8445"                    # optional: RFC 8705 mTLS endpoint aliases (token,
//!                                                   # introspection, revocation, PAR); client certificate requested
//! mtls_base_url = "https://as-mtls.example.org"     # default: https://<mtls_listen as bound>
//! tls_client_auth_ca_file = "/etc/aims/client-cas.pem"  # optional: CAs of tls_client_auth certificates besides SVIDs
//! login_max_failures = 5                            # failed logins per user name before a lock (0: off)
//! login_lockout_seconds = 60                        # the first lock; doubles per further failure, up to 15 min (or the first lock, if longer)
//! login_attempts_per_address = 30                   # password checks per client address (IPv6: /64) per 10 min; a right one is given back (0: off)
//! authorization_requests_per_address = 300          # authorization requests per client address per 10 min (0: off)
//!
//! [oauth.trusted_issuers.idp]                       # RFC 7523 §2.1 JWT authorization grants
//! issuer = "https://idp.example.org"                # the assertions' `iss`
//! jwks_file = "/etc/aims/idp.jwks"                  # its public keys (or inline: jwks = { keys = [...] })
//!
//! [oauth.authorization_details_types.payment]       # RFC 9396 types clients may request
//! required = ["actions"]
//! allowed = ["amount"]                              # extra members allowed (default: any)
//! actions = ["initiate"]                            # allowed actions (default: any)
//!
//! [pdp]                                             # the AuthZEN 1.0 policy decision point (Cedar)
//! enabled = true
//! policy_dir = "/etc/aims/policies"                 # checked by `aims policy check`; reloaded on SIGHUP
//! listen = "127.0.0.1:8446"                         # mTLS (PEPs present an SVID, or an access token)
//! callers = ["spiffe://example.org/gateway/*"]      # the PEPs that may ask (default: every workload of the trust domain)
//!
//! [[federation.trust_domains]]
//! name = "partner.example"
//! bundle_endpoint_url = "https://partner.example:8443/"
//! profile = "https_spiffe"                          # https_web or https_spiffe
//! endpoint_spiffe_id = "spiffe://partner.example/aims/server"   # https_spiffe only
//! ```
//!
//! [`Config::parse`] reports every error it can find, each with its line and column
//! (syntax errors, then one error per table, then the rules between fields), and says
//! what to do about it. Secrets never appear in the configuration: a PostgreSQL URL may
//! carry a password, and [`Config`]'s `Debug` hides the storage URL.

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::ops::Range;
use std::path::{Path, PathBuf};

use aims_core::{SpiffeId, TrustDomain};
use aims_crypto::Algorithm;
use serde::Deserialize;
use toml::Spanned;

/// The configuration format version this server reads.
pub const CONFIG_VERSION: u32 = 1;

/// The trust domain of `aims serve --dev` (`.localhost` is reserved, RFC 6761, so it
/// can never be a real organisation's trust domain).
pub const DEV_TRUST_DOMAIN: &str = "aims.localhost";

/// The data directory of `aims serve --dev`, relative to the working directory.
pub const DEV_DATA_DIR: &str = "aims-data";

/// The admin socket's file name inside the data directory.
pub const ADMIN_SOCKET_FILE: &str = "admin.sock";

/// The Workload API socket's file name inside the data directory.
pub const WORKLOAD_SOCKET_FILE: &str = "workload.sock";

/// The SQLite database's file name inside the data directory.
pub const DATABASE_FILE: &str = "aims.db";

/// The whole configuration.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Format version; must be [`CONFIG_VERSION`].
    pub version: Spanned<u32>,
    /// Identity of this server.
    pub server: ServerSection,
    /// The database.
    #[serde(default)]
    pub storage: StorageSection,
    /// The SPIFFE Workload API.
    #[serde(default)]
    pub workload_api: WorkloadApiSection,
    /// The admin API.
    #[serde(default)]
    pub admin: AdminSection,
    /// The plain HTTP listener (health, readiness, metrics, bundle).
    #[serde(default)]
    pub http: HttpSection,
    /// The X.509 certificate authority.
    #[serde(default)]
    pub ca: CaSection,
    /// JWT-SVID and WIT-SVID signing keys.
    #[serde(default)]
    pub jwt: JwtSection,
    /// The trust bundle this server publishes.
    #[serde(default)]
    pub bundle: BundleSection,
    /// The signing keys kept in the store.
    #[serde(default)]
    pub keys: KeysSection,
    /// Logging.
    #[serde(default)]
    pub log: LogSection,
    /// Federated trust domains.
    #[serde(default)]
    pub federation: FederationSection,
    /// The OAuth 2.0 authorization server.
    #[serde(default)]
    pub oauth: OAuthSection,
    /// The AuthZEN policy decision point.
    #[serde(default)]
    pub pdp: PdpSection,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("trust_domain", &self.server.trust_domain)
            .field("data_dir", &self.server.data_dir)
            .field("storage", &"[url hidden]")
            .field("http", &self.http.listen)
            .finish_non_exhaustive()
    }
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// This server's trust domain.
    pub trust_domain: TrustDomain,
    /// Where the database and sockets live by default (created with mode 0700).
    pub data_dir: PathBuf,
    /// How many threads serve requests (the async runtime's workers); default: one per
    /// CPU the process may use. Fewer can be cheaper per request where the machine is
    /// shared with other busy processes (see bench/README.md).
    #[serde(default)]
    pub worker_threads: Option<NonZeroUsize>,
    /// This node's SPIFFE ID (its agent identity, as in SPIRE). With it, an entry with a
    /// `parent_id` is served over this node's Workload API only if it is this ID; entries
    /// without one are served by every node. Unix selectors (uids, paths) name things of
    /// one host, so on nodes sharing a database, entries for one host should name that
    /// host's node. Without it, every entry is served (`parent_id` only informational).
    #[serde(default)]
    pub node_id: Option<SpiffeId>,
}

/// `[storage]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// `sqlite://PATH?mode=rwc` or `postgres://…`; default: SQLite in the data directory.
    pub url: Option<String>,
    /// How often the entry cache asks the database for changes made by other nodes.
    #[serde(default = "default_poll_interval")]
    pub poll_interval: Seconds,
    /// How often expired single-use records (proof `jti`s, nonces) and grants are
    /// deleted.
    #[serde(default = "default_sweep_interval")]
    pub sweep_interval: Seconds,
}

impl Default for StorageSection {
    fn default() -> Self {
        Self {
            url: None,
            poll_interval: default_poll_interval(),
            sweep_interval: default_sweep_interval(),
        }
    }
}

impl fmt::Debug for StorageSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageSection")
            .field("url", &self.url.as_ref().map(|_| "[hidden]"))
            .field("poll_interval", &self.poll_interval)
            .field("sweep_interval", &self.sweep_interval)
            .finish()
    }
}

/// `[workload_api]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadApiSection {
    /// The Unix socket; default `<data_dir>/workload.sock`.
    pub socket_path: Option<PathBuf>,
    /// The most connections open at once from processes of one uid (0: no limit).
    #[serde(default = "default_max_connections_per_uid")]
    pub max_connections_per_uid: usize,
}

impl Default for WorkloadApiSection {
    fn default() -> Self {
        Self {
            socket_path: None,
            max_connections_per_uid: default_max_connections_per_uid(),
        }
    }
}

fn default_max_connections_per_uid() -> usize {
    aims_workload::DEFAULT_MAX_CONNECTIONS_PER_UID
}

/// `[admin]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    /// The Unix socket (mode 0600); default `<data_dir>/admin.sock`.
    pub socket_path: Option<PathBuf>,
    /// An mTLS listener for callers holding an X509-SVID of an `admin = true` entry.
    pub mtls_listen: Option<SocketAddr>,
}

/// `[http]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// Plain HTTP: `/healthz`, `/readyz`, `/metrics`, `/bundle`.
    #[serde(default = "default_http_listen")]
    pub listen: SocketAddr,
    /// TLS with this server's X509-SVID, serving the bundle (SPIFFE `https_spiffe`).
    pub bundle_endpoint_listen: Option<SocketAddr>,
    /// On every TCP listener (this one and the TLS ones): a client must send a request's
    /// headers within this time, and an idle keep-alive connection closes after it.
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout: Seconds,
    /// On every TCP listener: a request, from its headers to the answer (its body read
    /// included), must be done within this time (408 otherwise).
    #[serde(default = "default_request_timeout")]
    pub request_timeout: Seconds,
    /// On every TCP listener: the most connections it keeps open (more clients wait to
    /// be accepted).
    #[serde(default = "default_max_connections")]
    pub max_connections: NonZeroUsize,
}

impl Default for HttpSection {
    fn default() -> Self {
        Self {
            listen: default_http_listen(),
            bundle_endpoint_listen: None,
            header_read_timeout: default_header_read_timeout(),
            request_timeout: default_request_timeout(),
            max_connections: default_max_connections(),
        }
    }
}

/// A warning when a PostgreSQL URL reaches a host over the network without verifying
/// its certificate: the store holds the CA and signing keys, and sqlx's default
/// (`sslmode=prefer`) lets someone on the path strip TLS or present any certificate.
fn postgres_tls_warning(url: &str) -> Option<Diagnostic> {
    let parsed = reqwest::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return None;
    }
    let param = |k: &str| {
        parsed
            .query_pairs()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.into_owned())
    };
    // A Unix socket (`?host=/run/postgresql`) or a loopback address stays on the machine.
    let host = param("host").or_else(|| parsed.host_str().map(str::to_owned))?;
    let local = host.starts_with('/')
        || host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let mode = param("sslmode").unwrap_or_else(|| "prefer".into());
    if local || matches!(mode.as_str(), "verify-ca" | "verify-full") {
        return None;
    }
    Some(Diagnostic {
        location: None,
        message: format!(
            "[storage] url: PostgreSQL at {host} with sslmode={mode}: the server's certificate is not verified (and with prefer or allow, TLS can be stripped)"
        ),
        help: Some("add sslmode=verify-full (and sslrootcert=PATH if the server's CA is not in the system store): the database holds the CA and signing keys".into()),
    })
}

fn default_request_timeout() -> Seconds {
    Seconds(60)
}

fn default_max_connections() -> NonZeroUsize {
    NonZeroUsize::new(4096).unwrap_or(NonZeroUsize::MIN)
}

/// `[ca]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaSection {
    /// Validity of each CA certificate; a successor is prepared at half of it and takes
    /// over at five sixths.
    #[serde(default = "default_ca_ttl")]
    pub ttl: Spanned<Seconds>,
    /// The CA key type.
    #[serde(default)]
    pub key_type: KeyType,
}

impl Default for CaSection {
    fn default() -> Self {
        Self {
            ttl: default_ca_ttl(),
            key_type: KeyType::default(),
        }
    }
}

/// `[jwt]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSection {
    /// Key type of JWT-SVID and WIT-SVID signing keys (`ec-p256` or `ec-p384`).
    #[serde(default = "default_key_type")]
    pub key_type: Spanned<KeyType>,
    /// How long a signing key signs before its successor takes over.
    #[serde(default = "default_rotation_period")]
    pub rotation_period: Spanned<Seconds>,
}

impl Default for JwtSection {
    fn default() -> Self {
        Self {
            key_type: default_key_type(),
            rotation_period: Spanned::new(0..0, default_rotation_period_value()),
        }
    }
}

/// `[bundle]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleSection {
    /// `spiffe_refresh_hint`; a new key is published this long, plus `[storage]
    /// poll_interval` (so every node serves it by then), before it signs.
    #[serde(default = "default_refresh_hint")]
    pub refresh_hint: Seconds,
}

impl Default for BundleSection {
    fn default() -> Self {
        Self {
            refresh_hint: default_refresh_hint(),
        }
    }
}

/// `[keys]`: how the signing keys kept in the store (CA, JWT-SVID, WIT-SVID, OAuth
/// token keys) are protected there.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysSection {
    /// A file holding a key-encryption key: 32 random bytes, base64 (standard or
    /// URL-safe), readable only by its owner (mode 0600). With it, every key the server
    /// stores is sealed with AES-256-GCM; keys stored before it was set are still read.
    /// Make one with `(umask 077; head -c 32 /dev/urandom | base64 > kek)`. Read at
    /// start. Without it the sealed keys cannot be loaded: back it up apart from the
    /// database.
    #[serde(default)]
    pub encryption_key_file: Option<PathBuf>,
}

impl KeysSection {
    /// The key-encryption key of `encryption_key_file`, if set. Refuses a file that its
    /// group or others may access, and anything but 32 bytes in base64.
    pub fn load_kek(&self) -> Result<Option<aims_crypto::Kek>, ConfigErrors> {
        let Some(path) = &self.encryption_key_file else {
            return Ok(None);
        };
        read_kek_file(path).map(Some).map_err(|(message, help)| {
            ConfigErrors(vec![Diagnostic {
                location: None,
                message: format!("[keys] encryption_key_file {}: {message}", path.display()),
                help: Some(help),
            }])
        })
    }
}

/// The largest key-encryption key file read (32 bytes in base64 are 44 characters).
const KEK_FILE_MAX: u64 = 1024;

/// Reads a key-encryption key file: (what is wrong, what to do) on failure. The file's
/// text is never part of a message.
fn read_kek_file(path: &Path) -> Result<aims_crypto::Kek, (String, String)> {
    use std::io::Read as _;
    use std::os::unix::fs::PermissionsExt as _;
    let make = format!(
        "make one with `(umask 077; head -c 32 /dev/urandom | base64 > {})`",
        path.display()
    );
    let file =
        std::fs::File::open(path).map_err(|e| (format!("cannot open it: {e}"), make.clone()))?;
    // The mode of the file opened, not of whatever the path names a moment later.
    let meta = file
        .metadata()
        .map_err(|e| (format!("cannot inspect it: {e}"), make.clone()))?;
    if !meta.is_file() {
        return Err(("is not a regular file".into(), make));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err((
            format!("is accessible to its group or others (mode {mode:04o})"),
            format!(
                "chmod 600 {}: the key-encryption key must be readable only by the server's user",
                path.display()
            ),
        ));
    }
    // Room for the largest file accepted, so the buffer never grows (a grown buffer
    // would leave a copy of the key behind).
    let mut text = zeroize::Zeroizing::new(Vec::with_capacity(2 * KEK_FILE_MAX as usize));
    file.take(KEK_FILE_MAX + 1)
        .read_to_end(&mut text)
        .map_err(|e| (format!("cannot read it: {e}"), make.clone()))?;
    if text.len() as u64 > KEK_FILE_MAX {
        return Err((
            format!(
                "is longer than {KEK_FILE_MAX} bytes; a key-encryption key is 32 bytes in base64"
            ),
            make,
        ));
    }
    let text = std::str::from_utf8(&text).map_err(|_| {
        (
            "does not hold 32 bytes in base64 (it is not text)".to_owned(),
            make.clone(),
        )
    })?;
    aims_crypto::Kek::from_base64(text).map_err(|_| {
        (
            "does not hold 32 bytes in base64 (standard or URL-safe)".into(),
            make,
        )
    })
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// A tracing filter (`info`, `aims_server=debug,info`, …); `AIMS_LOG` overrides it.
    #[serde(default = "default_log_level")]
    pub level: String,
    /// Text for people, JSON for log collectors.
    #[serde(default)]
    pub format: LogFormat,
}

impl Default for LogSection {
    fn default() -> Self {
        Self {
            level: default_log_level(),
            format: LogFormat::default(),
        }
    }
}

/// `[federation]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationSection {
    /// `[[federation.trust_domains]]`.
    #[serde(default)]
    pub trust_domains: Vec<Spanned<FederatedTrustDomain>>,
}

/// One `[[federation.trust_domains]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederatedTrustDomain {
    /// The foreign trust domain.
    pub name: TrustDomain,
    /// Its bundle endpoint (`https://…`); without it the bundle is only set by hand.
    pub bundle_endpoint_url: Option<String>,
    /// How the endpoint authenticates.
    #[serde(default)]
    pub profile: EndpointProfile,
    /// The endpoint server's SPIFFE ID (`https_spiffe` only).
    pub endpoint_spiffe_id: Option<SpiffeId>,
}

/// `[oauth]`: the OAuth 2.0 authorization server served on the HTTP listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthSection {
    /// Serve the authorization server (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The issuer identifier (RFC 8414 §2): `https://…`, or `http://` on a loopback host.
    /// Default: `http://<[http] listen address as bound>`, which needs a loopback listen
    /// address.
    #[serde(default)]
    pub issuer: Option<Spanned<String>>,
    /// Require server-provided nonces in DPoP proofs at the token endpoint (RFC 9449 §8).
    /// Each node hands out its own nonces and records them in the store, so nodes sharing
    /// it accept each other's.
    #[serde(default)]
    pub require_dpop_nonce: bool,
    /// `scopes_supported` in the metadata.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// RFC 9396 `authorization_details` types, by name.
    #[serde(default)]
    pub authorization_details_types: std::collections::BTreeMap<String, aims_oauth::rar::RarType>,
    /// Where client-assertion and DPoP proof `jti`s are remembered.
    #[serde(default)]
    pub replay: ReplayBackend,
    /// With `replay = "memory"`: how many live `jti`s are remembered at most. When full,
    /// new assertions and proofs are refused (fail closed), so size it for the peak rate
    /// times the longest accepted lifetime (300 s): the default, 2,000,000, holds
    /// 6,600 per second; each entry takes about 100 bytes while it lives.
    #[serde(default = "default_replay_memory_entries")]
    pub replay_memory_entries: usize,
    /// RFC 9126 §5: accept authorization requests only through PAR (default false).
    #[serde(default)]
    pub require_pushed_authorization_requests: bool,
    /// Issuers whose JWTs are accepted as authorization grants (RFC 7523 §2.1), by name.
    #[serde(default)]
    pub trusted_issuers: std::collections::BTreeMap<String, TrustedIssuer>,
    /// Legacy clients with a server-generated secret (`client_secret_basic`,
    /// `client_secret_post`) may be registered and authenticate (default false; `aims
    /// config check` warns when on). Turned off later, such clients are refused.
    #[serde(default)]
    pub allow_client_secrets: bool,
    /// Clients' `jwks_uri` may be plain `http` to a loopback host (default false: https
    /// only). For tests and local development.
    #[serde(default)]
    pub allow_http_jwks_uri: bool,
    /// An HTTPS listener (the server's X509-SVID) serving the token, introspection,
    /// revocation and PAR endpoints with a client certificate requested: the RFC 8705
    /// `mtls_endpoint_aliases`, where `spiffe_x509`, `tls_client_auth` and
    /// `self_signed_tls_client_auth` work and tokens get bound to the certificate.
    #[serde(default)]
    pub mtls_listen: Option<SocketAddr>,
    /// The URL clients reach the mTLS listener at (the aliases are built on it).
    /// Default: `https://<mtls_listen as bound>`.
    #[serde(default)]
    pub mtls_base_url: Option<String>,
    /// A PEM file of certificate authorities whose client certificates `tls_client_auth`
    /// clients may also present (RFC 8705 §2.1 with an operator's PKI; read at start).
    /// Without it only X509-SVIDs of the trust store are accepted for that method.
    #[serde(default)]
    pub tls_client_auth_ca_file: Option<PathBuf>,
    /// Consecutive failed logins for one user name before it is locked (default 5; 0
    /// turns throttling off).
    #[serde(default = "default_login_max_failures")]
    pub login_max_failures: u32,
    /// The first lock's length in seconds (default 60); each further failure doubles
    /// it, up to 15 minutes.
    #[serde(default = "default_login_lockout_seconds")]
    pub login_lockout_seconds: u32,
    /// Password checks one client address (an IPv6 /64) may cause per 10 minutes, in a
    /// burst or spread out (default 30; 0: no limit); a login that succeeds gives its
    /// check back. Bounds guessing one password across many user names. Counted per
    /// node; behind a reverse proxy every request comes from the proxy, so raise it or
    /// turn it off there.
    #[serde(default = "default_login_attempts_per_address")]
    pub login_attempts_per_address: u32,
    /// Authorization requests (each stores a pending request, and a session for a new
    /// browser) one client address may make per 10 minutes (default 300; 0: no limit).
    #[serde(default = "default_authorization_requests_per_address")]
    pub authorization_requests_per_address: u32,
}

fn default_login_attempts_per_address() -> u32 {
    30
}

fn default_authorization_requests_per_address() -> u32 {
    300
}

fn default_login_max_failures() -> u32 {
    aims_oauth::throttle::LoginPolicy::default().max_failures
}

fn default_login_lockout_seconds() -> u32 {
    60
}

/// `[oauth.trusted_issuers.<name>]`: an issuer of JWT authorization grants and its keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedIssuer {
    /// The `iss` of its assertions.
    pub issuer: String,
    /// A file holding its public JWKS (read at start).
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// Its public JWKS, inline.
    #[serde(default)]
    pub jwks: Option<aims_crypto::Jwks>,
}

impl TrustedIssuer {
    /// The issuer's key set: inline, or read from `jwks_file`.
    pub fn load_jwks(&self) -> Result<aims_crypto::Jwks, String> {
        match (&self.jwks, &self.jwks_file) {
            (Some(j), None) => Ok(j.clone()),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                serde_json::from_str(&text)
                    .map_err(|e| format!("{} is not a JWKS: {e}", path.display()))
            }
            _ => Err("set exactly one of jwks_file and jwks".to_owned()),
        }
    }
}

impl Default for OAuthSection {
    fn default() -> Self {
        Self {
            enabled: true,
            issuer: None,
            require_dpop_nonce: false,
            scopes: Vec::new(),
            authorization_details_types: std::collections::BTreeMap::new(),
            replay: ReplayBackend::default(),
            replay_memory_entries: default_replay_memory_entries(),
            require_pushed_authorization_requests: false,
            trusted_issuers: std::collections::BTreeMap::new(),
            allow_client_secrets: false,
            allow_http_jwks_uri: false,
            mtls_listen: None,
            mtls_base_url: None,
            tls_client_auth_ca_file: None,
            login_max_failures: default_login_max_failures(),
            login_lockout_seconds: default_login_lockout_seconds(),
            login_attempts_per_address: default_login_attempts_per_address(),
            authorization_requests_per_address: default_authorization_requests_per_address(),
        }
    }
}

/// `[pdp]`: the AuthZEN 1.0 policy decision point (aims-pdp over Cedar).
///
/// Callers (PEPs) authenticate with an X509-SVID of this trust domain on the mTLS
/// listener, or an access token of this server's OAuth issuer whose audience is
/// `base_url` (on either listener).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PdpSection {
    /// Serve the PDP (default false).
    #[serde(default)]
    pub enabled: bool,
    /// The policy directory: `schema.cedarschema`, `*.cedar`, optional `entities.json`
    /// (checked by `aims policy check`). Reloaded on SIGHUP (a bad set is refused and
    /// the current one stays).
    #[serde(default)]
    pub policy_dir: Option<PathBuf>,
    /// The mTLS listener (presents the server's X509-SVID; client SVID optional, an
    /// access token then needed).
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// Also mount the PDP on the plain HTTP listener (access tokens only; allowed only
    /// when `[http] listen` is a loopback address: development).
    #[serde(default)]
    pub on_http: bool,
    /// The PDP identifier for the well-known document and the access-token audience.
    /// Default: `https://<listen as bound>`, else `http://<[http] listen as bound>`.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Put the determining policy ids in decisions (`context.reason_admin.policies`)
    /// for the PEPs' audit (default true; callers are authenticated).
    #[serde(default = "default_true")]
    pub expose_reasons: bool,
    /// The PEPs that may ask: SPIFFE IDs, exact or with the `/*` prefix rule (e.g.
    /// `spiffe://example.org/gateway/*`), matched against the client SVID or the access
    /// token's `client_id`. Empty (the default): every workload of this trust domain,
    /// agents included, may ask, and `aims config check` warns.
    #[serde(default)]
    pub callers: Vec<String>,
}

impl Default for PdpSection {
    fn default() -> Self {
        Self {
            enabled: false,
            policy_dir: None,
            listen: None,
            on_http: false,
            base_url: None,
            expose_reasons: true,
            callers: Vec::new(),
        }
    }
}

fn default_replay_memory_entries() -> usize {
    2_000_000
}

/// Where one-time `jti`s are recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplayBackend {
    /// In the shared store: a replay to any node sharing the database is refused.
    #[default]
    Store,
    /// In this process only (a single node).
    Memory,
}

/// SPIFFE bundle endpoint profiles (SPIFFE Federation §5).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointProfile {
    /// The endpoint presents a Web PKI certificate for its host name.
    #[default]
    HttpsWeb,
    /// The endpoint presents an X509-SVID of the foreign trust domain, checked against
    /// that trust domain's bundle (set it once by hand: `aims bundle set`).
    HttpsSpiffe,
}

/// Key types in the configuration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum KeyType {
    /// ECDSA P-256 (ES256).
    #[default]
    #[serde(rename = "ec-p256")]
    EcP256,
    /// ECDSA P-384 (ES384).
    #[serde(rename = "ec-p384")]
    EcP384,
    /// Ed25519 (CA only).
    #[serde(rename = "ed25519")]
    Ed25519,
}

impl KeyType {
    /// The JOSE algorithm of keys of this type.
    pub fn algorithm(self) -> Algorithm {
        match self {
            KeyType::EcP256 => Algorithm::ES256,
            KeyType::EcP384 => Algorithm::ES384,
            KeyType::Ed25519 => Algorithm::EdDSA,
        }
    }
}

/// Log output formats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// A duration in whole seconds, written `90s`, `15m`, `1h`, `7d` or `1h30m` (a bare
/// number means seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seconds(pub u64);

impl Seconds {
    /// As a [`std::time::Duration`].
    pub fn duration(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.0)
    }
    /// As signed seconds (saturating).
    pub fn as_i64(self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Str(String),
        }
        match Raw::deserialize(d) {
            Ok(Raw::Int(0)) => Err(serde::de::Error::custom(
                "a duration must be greater than zero",
            )),
            Ok(Raw::Int(n)) => Ok(Seconds(n)),
            Ok(Raw::Str(s)) => parse_duration(&s)
                .map(Seconds)
                .map_err(serde::de::Error::custom),
            Err(_) => Err(serde::de::Error::custom(
                "expected a duration such as \"90s\", \"15m\", \"1h\" or \"7d\"",
            )),
        }
    }
}

/// Parses `90s`, `15m`, `1h`, `7d`, `1h30m` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration; use e.g. \"90s\", \"15m\", \"1h\" or \"7d\"".into());
    }
    if let Ok(n) = s.parse::<u64>() {
        return if n == 0 {
            Err("a duration must be greater than zero".into())
        } else {
            Ok(n)
        };
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => {
                return Err(format!(
                    "unknown unit `{c}` in duration \"{s}\"; use s, m, h or d (e.g. \"1h30m\")"
                ));
            }
        };
        let n: u64 = num
            .parse()
            .map_err(|_| format!("missing number before `{c}` in duration \"{s}\""))?;
        num.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("duration \"{s}\" is too large"))?;
    }
    if !num.is_empty() {
        return Err(format!(
            "number without unit at the end of duration \"{s}\"; add s, m, h or d"
        ));
    }
    if total == 0 {
        return Err("a duration must be greater than zero".into());
    }
    Ok(total)
}

fn default_poll_interval() -> Seconds {
    Seconds(5)
}
fn default_sweep_interval() -> Seconds {
    Seconds(10)
}
fn default_header_read_timeout() -> Seconds {
    Seconds(30)
}
fn default_http_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_ca_ttl() -> Spanned<Seconds> {
    Spanned::new(0..0, Seconds(365 * 86_400))
}
fn default_key_type() -> Spanned<KeyType> {
    Spanned::new(0..0, KeyType::default())
}
fn default_rotation_period_value() -> Seconds {
    Seconds(86_400)
}
fn default_rotation_period() -> Spanned<Seconds> {
    Spanned::new(0..0, default_rotation_period_value())
}
fn default_refresh_hint() -> Seconds {
    Seconds(300)
}
fn default_true() -> bool {
    true
}
fn default_log_level() -> String {
    "info".to_owned()
}

/// One problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line and column, when the problem has a place in the file.
    pub location: Option<(usize, usize)>,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub help: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((line, col)) = self.location {
            write!(f, "line {line}, column {col}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// Every problem found in a configuration, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.0))]
pub struct ConfigErrors(pub Vec<Diagnostic>);

fn render(d: &[Diagnostic]) -> String {
    d.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Byte offset → 1-based (line, column in characters).
fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = src.get(..offset).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before.get(line_start..).map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn located(
    src: &str,
    span: Option<Range<usize>>,
    message: String,
    help: Option<String>,
) -> Diagnostic {
    Diagnostic {
        location: span.map(|s| line_col(src, s.start)),
        message,
        help,
    }
}

/// A diagnostic from a toml error, with advice chosen by the kind of error.
fn from_toml(src: &str, e: &toml::de::Error) -> Diagnostic {
    let message = e.message().trim().to_owned();
    let help = if message.starts_with("unknown field") {
        Some(
            "remove the key or fix its spelling; the keys this table accepts are listed above"
                .into(),
        )
    } else if message.starts_with("missing field") {
        Some("add the key; `aims config check` lists every key with its default in the docs of `aims serve --help`".into())
    } else if message.starts_with("unknown variant") {
        Some("use one of the values listed above".into())
    } else if message.contains("duration") {
        Some("write durations as strings: \"90s\", \"15m\", \"1h\", \"7d\"".into())
    } else if message.contains("invalid socket address") {
        Some("write an address with a port, e.g. \"127.0.0.1:8080\"".into())
    } else if message.starts_with("invalid trust domain") {
        Some(
            "a trust domain is lowercase letters, digits, `.`, `-` and `_`, e.g. \"example.org\""
                .into(),
        )
    } else if message.starts_with("invalid type") {
        Some("check the value's type (strings need quotes)".into())
    } else {
        None
    };
    located(src, e.span(), message, help)
}

/// The top-level tables and keys, with a checker that deserialises one of them alone.
type SectionCheck = fn(toml::de::ValueDeserializer<'_>) -> Result<(), toml::de::Error>;

fn check_as<T: serde::de::DeserializeOwned>(
    d: toml::de::ValueDeserializer<'_>,
) -> Result<(), toml::de::Error> {
    T::deserialize(d).map(drop)
}

const SECTIONS: &[(&str, SectionCheck)] = &[
    ("version", check_as::<u32>),
    ("server", check_as::<ServerSection>),
    ("storage", check_as::<StorageSection>),
    ("workload_api", check_as::<WorkloadApiSection>),
    ("admin", check_as::<AdminSection>),
    ("http", check_as::<HttpSection>),
    ("ca", check_as::<CaSection>),
    ("jwt", check_as::<JwtSection>),
    ("bundle", check_as::<BundleSection>),
    ("keys", check_as::<KeysSection>),
    ("log", check_as::<LogSection>),
    ("federation", check_as::<FederationSection>),
    ("oauth", check_as::<OAuthSection>),
    ("pdp", check_as::<PdpSection>),
];

impl Config {
    /// Parses and checks a configuration file's text.
    ///
    /// On failure, every problem found is returned: all syntax errors; otherwise the first
    /// error of each table (tables are checked independently); otherwise every broken rule
    /// between fields.
    pub fn parse(src: &str) -> Result<Self, ConfigErrors> {
        let (table, syntax) = toml::de::DeTable::parse_recoverable(src);
        if !syntax.is_empty() {
            return Err(ConfigErrors(
                syntax.iter().map(|e| from_toml(src, e)).collect(),
            ));
        }
        match toml::from_str::<Config>(src) {
            Ok(config) => {
                let problems = config.check_rules(src);
                if problems.is_empty() {
                    Ok(config)
                } else {
                    Err(ConfigErrors(problems))
                }
            }
            Err(whole) => {
                let mut problems = Vec::new();
                for (key, value) in table.into_inner() {
                    let name = key.get_ref().as_ref();
                    match SECTIONS.iter().find(|(n, _)| *n == name) {
                        Some((_, check)) => {
                            if let Err(e) = check(toml::de::ValueDeserializer::from(value)) {
                                problems.push(from_toml(src, &e));
                            }
                        }
                        None => {
                            let known: Vec<&str> = SECTIONS.iter().map(|(n, _)| *n).collect();
                            problems.push(located(
                                src,
                                Some(key.span()),
                                format!("unknown table or key `{name}`"),
                                Some(format!(
                                    "remove it or fix its spelling; the top level accepts {}",
                                    known.join(", ")
                                )),
                            ));
                        }
                    }
                }
                if problems.is_empty() {
                    problems.push(from_toml(src, &whole));
                }
                problems.sort_by_key(|d| d.location);
                Err(ConfigErrors(problems))
            }
        }
    }

    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        let src = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![Diagnostic {
                location: None,
                message: format!("cannot read {}: {e}", path.display()),
                help: Some("check the path given to --config".into()),
            }])
        })?;
        Self::parse(&src)
    }

    /// The configuration of `aims serve --dev`: trust domain [`DEV_TRUST_DOMAIN`], data in
    /// `data_dir`, every listener on 127.0.0.1 (HTTP on `http_listen`).
    pub fn dev(data_dir: PathBuf, http_listen: SocketAddr) -> Result<Self, ConfigErrors> {
        let trust_domain = TrustDomain::new(DEV_TRUST_DOMAIN).map_err(|e| {
            ConfigErrors(vec![Diagnostic {
                location: None,
                message: e.to_string(),
                help: None,
            }])
        })?;
        let mut config = Self::minimal(trust_domain, data_dir);
        config.http.listen = http_listen;
        let problems = config.check_rules("");
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(problems))
        }
    }

    /// A configuration with every default, for `trust_domain` and `data_dir`.
    pub fn minimal(trust_domain: TrustDomain, data_dir: PathBuf) -> Self {
        Self {
            version: Spanned::new(0..0, CONFIG_VERSION),
            server: ServerSection {
                trust_domain,
                data_dir,
                worker_threads: None,
                node_id: None,
            },
            storage: StorageSection::default(),
            workload_api: WorkloadApiSection::default(),
            admin: AdminSection::default(),
            http: HttpSection::default(),
            ca: CaSection::default(),
            jwt: JwtSection::default(),
            bundle: BundleSection::default(),
            keys: KeysSection::default(),
            log: LogSection::default(),
            federation: FederationSection::default(),
            oauth: OAuthSection::default(),
            pdp: PdpSection::default(),
        }
    }

    /// The rules between fields; `src` locates the problems (empty: no locations).
    pub fn check_rules(&self, src: &str) -> Vec<Diagnostic> {
        let at = |span: Range<usize>| {
            if src.is_empty() || span == (0..0) {
                None
            } else {
                Some(span)
            }
        };
        let mut out = Vec::new();
        if *self.version.get_ref() != CONFIG_VERSION {
            out.push(located(
                src,
                at(self.version.span()),
                format!(
                    "unsupported configuration version {}; this AIMS reads version {CONFIG_VERSION}",
                    self.version.get_ref()
                ),
                Some(format!("set `version = {CONFIG_VERSION}`")),
            ));
        }
        if *self.jwt.key_type.get_ref() == KeyType::Ed25519 {
            out.push(located(
                src,
                at(self.jwt.key_type.span()),
                "[jwt] key_type \"ed25519\" is not allowed: JWT-SVIDs and WIT-SVIDs are signed with ECDSA".into(),
                Some("use \"ec-p256\" or \"ec-p384\"".into()),
            ));
        }
        if let Some(node) = &self.server.node_id
            && node.trust_domain() != &self.server.trust_domain
        {
            out.push(located(
                src,
                None,
                format!(
                    "[server] node_id {node} is not in this server's trust domain {}",
                    self.server.trust_domain
                ),
                Some(format!(
                    "use an ID of {}, for example spiffe://{}/node/NAME",
                    self.server.trust_domain, self.server.trust_domain
                )),
            ));
        }
        let hint = self.bundle.refresh_hint.0;
        let period = self.jwt.rotation_period.get_ref().0;
        if period <= hint {
            out.push(located(
                src,
                at(self.jwt.rotation_period.span()),
                format!(
                    "[jwt] rotation_period ({period}s) must be longer than [bundle] refresh_hint ({hint}s): a new key is published one refresh before it signs"
                ),
                Some("raise rotation_period or lower refresh_hint".into()),
            ));
        }
        if self.ca.ttl.get_ref().0 < hint.saturating_mul(6) {
            out.push(located(
                src,
                at(self.ca.ttl.span()),
                format!(
                    "[ca] ttl ({}s) must be at least six times [bundle] refresh_hint ({hint}s) so a successor CA can be published in time",
                    self.ca.ttl.get_ref().0
                ),
                Some("raise [ca] ttl (e.g. \"365d\") or lower refresh_hint".into()),
            ));
        }
        self.check_oauth(src, &at, &mut out);
        self.check_pdp(&mut out);
        let mut seen = std::collections::BTreeSet::new();
        for ftd in &self.federation.trust_domains {
            let span = at(ftd.span());
            let f = ftd.get_ref();
            if f.name == self.server.trust_domain {
                out.push(located(
                    src,
                    span.clone(),
                    format!(
                        "`{}` is this server's own trust domain; it cannot be federated",
                        f.name
                    ),
                    Some("remove this [[federation.trust_domains]] entry".into()),
                ));
            }
            if !seen.insert(f.name.clone()) {
                out.push(located(
                    src,
                    span.clone(),
                    format!(
                        "trust domain `{}` is listed twice in [[federation.trust_domains]]",
                        f.name
                    ),
                    Some("keep one entry per trust domain".into()),
                ));
            }
            if let Some(url) = &f.bundle_endpoint_url
                && !url.starts_with("https://")
            {
                out.push(located(
                    src,
                    span.clone(),
                    format!(
                        "bundle_endpoint_url \"{url}\" of `{}` must start with https://",
                        f.name
                    ),
                    Some("bundle endpoints are served over TLS (SPIFFE Federation §5)".into()),
                ));
            }
            match (f.profile, &f.endpoint_spiffe_id) {
                (EndpointProfile::HttpsSpiffe, None) => out.push(located(
                    src,
                    span.clone(),
                    format!("`{}` uses profile \"https_spiffe\" but has no endpoint_spiffe_id", f.name),
                    Some(format!(
                        "add endpoint_spiffe_id = \"spiffe://{}/…\", the SPIFFE ID of the endpoint's server",
                        f.name
                    )),
                )),
                (EndpointProfile::HttpsSpiffe, Some(id)) if !id.is_member_of(&f.name) => {
                    out.push(located(
                        src,
                        span.clone(),
                        format!("endpoint_spiffe_id `{id}` is not in trust domain `{}`", f.name),
                        Some("the endpoint's server belongs to the federated trust domain".into()),
                    ));
                }
                (EndpointProfile::HttpsWeb, Some(_)) => out.push(located(
                    src,
                    span.clone(),
                    format!("endpoint_spiffe_id of `{}` is only used with profile \"https_spiffe\"", f.name),
                    Some("remove endpoint_spiffe_id or set profile = \"https_spiffe\"".into()),
                )),
                _ => {}
            }
        }
        out
    }

    fn check_pdp(&self, out: &mut Vec<Diagnostic>) {
        let p = &self.pdp;
        if !p.enabled {
            return;
        }
        let mut problem = |message: String, help: &str| {
            out.push(Diagnostic {
                location: None,
                message,
                help: Some(help.to_owned()),
            })
        };
        if p.policy_dir.is_none() {
            problem(
                "[pdp] is enabled without a policy_dir".into(),
                "set [pdp] policy_dir to a directory `aims policy check` accepts",
            );
        }
        if p.listen.is_none() && !p.on_http {
            problem(
                "[pdp] is enabled but served nowhere".into(),
                "set [pdp] listen (mTLS), or on_http = true for a loopback development server",
            );
        }
        if p.on_http && !self.http.listen.ip().is_loopback() {
            problem(
                format!(
                    "[pdp] on_http = true but [http] listen {} is not a loopback address: decisions would be served over plain HTTP on the network",
                    self.http.listen
                ),
                "use [pdp] listen (mTLS) instead",
            );
        }
        if p.listen.is_none() && !self.oauth.enabled {
            problem(
                "[pdp] without an mTLS listener needs [oauth] enabled: callers authenticate with access tokens".into(),
                "set [pdp] listen, or enable [oauth]",
            );
        }
        for c in &p.callers {
            if let Err(e) = aims_core::SpiffeIdPattern::parse(c) {
                problem(
                    format!("[pdp] callers: {c:?} is not a SPIFFE ID pattern: {e}"),
                    "list SPIFFE IDs, exact or ending in /* (e.g. spiffe://example.org/gateway/*)",
                );
            }
        }
        if let Some(u) = &p.base_url {
            let ok = u.starts_with("https://")
                || (u.starts_with("http://") && p.on_http && p.listen.is_none());
            if !ok || u.contains(['?', '#']) {
                problem(
                    format!("[pdp] base_url {u:?} is not a valid PDP identifier"),
                    "use the https URL PEPs reach, without query or fragment",
                );
            }
        }
    }

    fn check_oauth(
        &self,
        src: &str,
        at: &dyn Fn(Range<usize>) -> Option<Range<usize>>,
        out: &mut Vec<Diagnostic>,
    ) {
        let o = &self.oauth;
        if !o.enabled {
            if o.mtls_listen.is_some() || o.mtls_base_url.is_some() {
                out.push(located(
                    src,
                    None,
                    "[oauth] mtls_listen / mtls_base_url are set but [oauth] enabled = false"
                        .into(),
                    Some("remove them, or enable [oauth]".into()),
                ));
            }
            return;
        }
        if let Some(u) = &o.mtls_base_url {
            if o.mtls_listen.is_none() {
                out.push(located(
                    src,
                    None,
                    "[oauth] mtls_base_url is set without [oauth] mtls_listen".into(),
                    Some(
                        "set [oauth] mtls_listen = \"ADDRESS:PORT\", or remove mtls_base_url"
                            .into(),
                    ),
                ));
            }
            if !u.starts_with("https://")
                || u.contains(['?', '#'])
                || aims_oauth::Issuer::parse(u).is_err()
            {
                out.push(located(
                    src,
                    None,
                    format!("[oauth] mtls_base_url {u:?} is not an https URL without query or fragment"),
                    Some("write the https URL clients reach the mTLS listener at, e.g. \"https://as-mtls.example.org\"".into()),
                ));
            }
        }
        match &o.issuer {
            Some(i) => {
                if let Err(e) = aims_oauth::Issuer::parse(i.get_ref()) {
                    out.push(located(
                        src,
                        at(i.span()),
                        format!("[oauth] issuer: {e}"),
                        Some("write the URL clients use to reach this server, e.g. \"https://as.example.org\" (http only on a loopback host)".into()),
                    ));
                }
            }
            None if !self.http.listen.ip().is_loopback() => out.push(located(
                src,
                None,
                format!(
                    "[oauth] issuer is not set and [http] listen {} is not a loopback address: the default issuer http://{} would be plain HTTP on the network",
                    self.http.listen, self.http.listen
                ),
                Some("set [oauth] issuer = \"https://…\" (the URL clients reach, e.g. through a TLS proxy), or [oauth] enabled = false".into()),
            )),
            None => {}
        }
        for s in &o.scopes {
            if s.is_empty()
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
            {
                out.push(located(
                    src,
                    None,
                    format!("[oauth] scopes: {s:?} is not a valid scope token (RFC 6749 §3.3)"),
                    Some("use printable ASCII without spaces, quotes or backslashes, e.g. \"api:read\"".into()),
                ));
            }
        }
        for (name, t) in &o.trusted_issuers {
            if t.issuer.is_empty() {
                out.push(located(
                    src,
                    None,
                    format!("[oauth.trusted_issuers.{name}] issuer is empty"),
                    Some("write the `iss` value of that issuer's assertions".into()),
                ));
            }
            if t.jwks.is_some() == t.jwks_file.is_some() {
                out.push(located(
                    src,
                    None,
                    format!(
                        "[oauth.trusted_issuers.{name}]: set exactly one of jwks_file and jwks"
                    ),
                    Some("jwks_file = \"/path/to/issuer.jwks\" (public keys only)".into()),
                ));
            }
        }
    }

    /// Settings that are valid but weaken security, each with what to do about it
    /// (`aims config check` prints them as warnings).
    pub fn warnings(&self) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        if self.oauth.enabled && self.oauth.allow_client_secrets {
            out.push(Diagnostic {
                location: None,
                message: "[oauth] allow_client_secrets = true: legacy clients may authenticate with a static shared secret".into(),
                help: Some("move those clients to private_key_jwt or an SVID, then set allow_client_secrets = false (they are refused from then on)".into()),
            });
        }
        if let Some(w) = self.storage.url.as_deref().and_then(postgres_tls_warning) {
            out.push(w);
        }
        if self.pdp.enabled && self.pdp.callers.is_empty() {
            out.push(Diagnostic {
                location: None,
                message: "[pdp] callers is empty: every workload of the trust domain, agents included, may ask the PDP (and search what others may do)".into(),
                help: Some("list the PEPs' SPIFFE IDs in [pdp] callers, e.g. callers = [\"spiffe://example.org/gateway/*\"]".into()),
            });
        }
        if self.oauth.enabled && self.oauth.allow_http_jwks_uri {
            out.push(Diagnostic {
                location: None,
                message: "[oauth] allow_http_jwks_uri = true: client keys may be fetched over plain http (loopback hosts only)".into(),
                help: Some("for tests and local development only; register https jwks_uri values in production".into()),
            });
        }
        out
    }

    /// The OAuth issuer for an HTTP listener bound at `bound`: the configured one, or
    /// `http://<bound>`.
    pub fn oauth_issuer(&self, bound: SocketAddr) -> Result<aims_oauth::Issuer, ConfigErrors> {
        let raw = match &self.oauth.issuer {
            Some(i) => i.get_ref().clone(),
            None => format!("http://{bound}"),
        };
        aims_oauth::Issuer::parse(&raw).map_err(|e| {
            ConfigErrors(vec![Diagnostic {
                location: None,
                message: format!("[oauth] issuer: {e}"),
                help: Some("set [oauth] issuer to the https URL clients reach".into()),
            }])
        })
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.server.data_dir
    }

    /// The storage URL: the configured one, or SQLite in the data directory.
    pub fn storage_url(&self) -> String {
        match &self.storage.url {
            Some(u) => u.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.server.data_dir.join(DATABASE_FILE).display()
            ),
        }
    }

    /// The admin socket path.
    pub fn admin_socket(&self) -> PathBuf {
        self.admin
            .socket_path
            .clone()
            .unwrap_or_else(|| self.server.data_dir.join(ADMIN_SOCKET_FILE))
    }

    /// The Workload API socket path.
    pub fn workload_socket(&self) -> PathBuf {
        self.workload_api
            .socket_path
            .clone()
            .unwrap_or_else(|| self.server.data_dir.join(WORKLOAD_SOCKET_FILE))
    }

    /// The federated trust domains, without spans.
    pub fn federated(&self) -> impl Iterator<Item = &FederatedTrustDomain> {
        self.federation.trust_domains.iter().map(Spanned::get_ref)
    }
}

/// The `SPIFFE_ENDPOINT_SOCKET` value for a socket path: `unix://` + the absolute path.
pub fn endpoint_socket_env(path: &Path) -> String {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    format!("unix://{}", abs.display())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
version = 1

[server]
trust_domain = "example.org"
data_dir = "/var/lib/aims"

[jwt]
rotation_period = "12h"

[[federation.trust_domains]]
name = "partner.example"
bundle_endpoint_url = "https://partner.example/bundle"
profile = "https_spiffe"
endpoint_spiffe_id = "spiffe://partner.example/aims/server"
"#;

    #[test]
    fn good_config_parses_with_defaults() {
        let c = Config::parse(GOOD).unwrap();
        assert_eq!(c.server.trust_domain.as_str(), "example.org");
        assert_eq!(c.jwt.rotation_period.get_ref().0, 43_200);
        assert_eq!(c.bundle.refresh_hint.0, 300);
        assert_eq!(c.http.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.admin_socket(), PathBuf::from("/var/lib/aims/admin.sock"));
        assert_eq!(c.storage_url(), "sqlite:///var/lib/aims/aims.db?mode=rwc");
        let f: Vec<_> = c.federated().collect();
        assert_eq!(f[0].profile, EndpointProfile::HttpsSpiffe);
    }

    #[test]
    fn every_table_error_is_reported_with_its_line() {
        let src = "version = 1\n\n[server]\ntrust_domain = \"Bad Domain\"\ndata_dir = \"/d\"\n\n[http]\nlisten = \"nowhere\"\n\n[ca]\nttl = \"5x\"\n\n[bogus]\nx = 1\n";
        let errs = Config::parse(src).unwrap_err().0;
        let lines: Vec<_> = errs.iter().map(|d| d.location.unwrap().0).collect();
        assert_eq!(lines, [4, 8, 11, 13], "{errs:#?}");
        assert!(errs[0].message.contains("trust domain"));
        assert!(errs[2].message.contains("unknown unit `x`"));
        assert!(errs[3].message.contains("unknown table or key `bogus`"));
        assert!(errs.iter().all(|d| d.help.is_some()), "{errs:#?}");
    }

    #[test]
    fn unknown_key_in_a_table_is_refused() {
        let src = "version = 1\n[server]\ntrust_domain = \"a.org\"\ndata_dir = \"/d\"\ndatadir = \"/e\"\n";
        let errs = Config::parse(src).unwrap_err().0;
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].location, Some((5, 1)));
        assert!(
            errs[0].message.contains("unknown field `datadir`"),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn worker_threads_is_a_positive_count() {
        let base = "version = 1\n[server]\ntrust_domain = \"a.org\"\ndata_dir = \"/d\"\n";
        assert_eq!(Config::parse(base).unwrap().server.worker_threads, None);
        let two = Config::parse(&format!("{base}worker_threads = 2\n")).unwrap();
        assert_eq!(two.server.worker_threads.map(NonZeroUsize::get), Some(2));
        for bad in ["0", "-1", "\"2\""] {
            let errs = Config::parse(&format!("{base}worker_threads = {bad}\n"))
                .unwrap_err()
                .0;
            assert_eq!(errs[0].location.map(|l| l.0), Some(5), "{bad}: {errs:#?}");
        }
    }

    #[test]
    fn node_id_is_of_the_trust_domain() {
        let base = "version = 1\n[server]\ntrust_domain = \"a.org\"\ndata_dir = \"/d\"\n";
        assert_eq!(Config::parse(base).unwrap().server.node_id, None);
        let c = Config::parse(&format!("{base}node_id = \"spiffe://a.org/node/1\"\n")).unwrap();
        assert_eq!(
            c.server.node_id.map(|n| n.to_string()).as_deref(),
            Some("spiffe://a.org/node/1")
        );
        let errs = Config::parse(&format!("{base}node_id = \"spiffe://b.org/node/1\"\n"))
            .unwrap_err()
            .0;
        assert!(
            errs[0]
                .message
                .contains("not in this server's trust domain"),
            "{errs:#?}"
        );
        assert!(Config::parse(&format!("{base}node_id = \"not an id\"\n")).is_err());
    }

    #[test]
    fn workload_api_connections_per_uid() {
        let base = "version = 1\n[server]\ntrust_domain = \"a.org\"\ndata_dir = \"/d\"\n";
        let c = Config::parse(base).unwrap();
        assert_eq!(c.workload_api.max_connections_per_uid, 1024);
        let c = Config::parse(&format!(
            "{base}[workload_api]\nmax_connections_per_uid = 0\n"
        ))
        .unwrap();
        assert_eq!(c.workload_api.max_connections_per_uid, 0);
        assert!(
            Config::parse(&format!(
                "{base}[workload_api]\nmax_connections_per_uid = -1\n"
            ))
            .is_err()
        );
    }

    #[test]
    fn pdp_callers() {
        let base = "version = 1\n[server]\ntrust_domain = \"a.org\"\ndata_dir = \"/d\"\n[pdp]\nenabled = true\npolicy_dir = \"/p\"\nlisten = \"127.0.0.1:9\"\n";
        let open = Config::parse(base).unwrap();
        assert!(open.pdp.callers.is_empty());
        assert!(
            open.warnings()
                .iter()
                .any(|w| w.message.contains("[pdp] callers is empty")),
            "{:?}",
            open.warnings()
        );
        let listed =
            Config::parse(&format!("{base}callers = [\"spiffe://a.org/pep/*\"]\n")).unwrap();
        assert_eq!(listed.pdp.callers, ["spiffe://a.org/pep/*"]);
        assert!(listed.warnings().is_empty(), "{:?}", listed.warnings());
        let errs = Config::parse(&format!("{base}callers = [\"not a spiffe id\"]\n"))
            .unwrap_err()
            .0;
        assert!(errs[0].message.contains("[pdp] callers"), "{errs:?}");
    }

    #[test]
    fn syntax_errors_are_located() {
        let errs = Config::parse("version = 1\n[server\n").unwrap_err().0;
        assert_eq!(errs[0].location.unwrap().0, 2);
    }

    #[test]
    fn rules_between_fields() {
        let src = "version = 2\n[server]\ntrust_domain = \"a.org\"\ndata_dir = \"/d\"\n[bundle]\nrefresh_hint = \"1d\"\n[jwt]\nrotation_period = \"1h\"\n[[federation.trust_domains]]\nname = \"a.org\"\nbundle_endpoint_url = \"http://x\"\nprofile = \"https_spiffe\"\n";
        let errs = Config::parse(src).unwrap_err().0;
        let text = ConfigErrors(errs.clone()).to_string();
        assert!(
            text.contains("line 1, column 11: unsupported configuration version 2"),
            "{text}"
        );
        assert!(
            text.contains("line 8, column 19: [jwt] rotation_period"),
            "{text}"
        );
        assert!(text.contains("own trust domain"), "{text}");
        assert!(text.contains("must start with https://"), "{text}");
        assert!(text.contains("no endpoint_spiffe_id"), "{text}");
        let src = "version = 1\n[server]\ntrust_domain = \"a.org\"\ndata_dir = \"/d\"\n[ca]\nttl = \"10m\"\n[jwt]\nkey_type = \"ed25519\"\n";
        let text = Config::parse(src).unwrap_err().to_string();
        assert!(
            text.contains("line 6, column 7: [ca] ttl (600s) must be at least six times"),
            "{text}"
        );
        assert!(
            text.contains("line 8, column 12: [jwt] key_type \"ed25519\" is not allowed"),
            "{text}"
        );
    }

    #[test]
    fn oauth_section() {
        let base = "version = 1\n[server]\ntrust_domain = \"a.org\"\ndata_dir = \"/d\"\n";
        let c = Config::parse(&format!(
            "{base}[oauth]\nissuer = \"https://as.a.org\"\nrequire_dpop_nonce = true\nscopes = [\"api:read\"]\nreplay = \"memory\"\n[oauth.authorization_details_types.payment]\nrequired = [\"actions\"]\n"
        ))
        .unwrap();
        assert!(c.oauth.enabled && c.oauth.require_dpop_nonce);
        assert_eq!(c.oauth.replay, ReplayBackend::Memory);
        assert_eq!(
            c.oauth.authorization_details_types["payment"].required,
            ["actions"]
        );
        let bound = "127.0.0.1:9".parse().unwrap();
        assert_eq!(c.oauth_issuer(bound).unwrap().as_str(), "https://as.a.org");
        assert!(!c.oauth.allow_client_secrets && !c.oauth.allow_http_jwks_uri);
        assert!(c.warnings().is_empty());
        let w = Config::parse(&format!(
            "{base}[oauth]\nallow_client_secrets = true\nallow_http_jwks_uri = true\n"
        ))
        .unwrap();
        assert!(w.oauth.allow_client_secrets && w.oauth.allow_http_jwks_uri);
        let warnings = w.warnings();
        assert_eq!(warnings.len(), 2);
        assert!(warnings[0].message.contains("allow_client_secrets"));
        // An absurd refresh hint is refused, not overflowed into a pass.
        let huge = Config::parse(&format!(
            "{base}[bundle]\nrefresh_hint = \"3074457345618258603s\"\n[ca]\nttl = \"3650d\"\n"
        ));
        assert!(huge.is_err(), "{huge:?}");
        // PostgreSQL over the network without certificate verification: a warning.
        for (url, warned) in [
            ("postgres://u:pw@db.internal/aims", true),
            ("postgres://u:pw@db.internal/aims?sslmode=require", true),
            (
                "postgres://u:pw@db.internal/aims?sslmode=verify-full",
                false,
            ),
            ("postgresql://u@10.0.0.5:5432/aims?sslmode=verify-ca", false),
            ("postgres://u:pw@127.0.0.1:5432/aims", false),
            ("postgres://u@[::1]/aims", false),
            ("postgres://u@localhost/aims?host=/run/postgresql", false),
            ("sqlite:///var/lib/aims/aims.db?mode=rwc", false),
        ] {
            let mut c = Config::parse(base).unwrap();
            c.storage.url = Some(url.into());
            let w = c.warnings();
            assert_eq!(w.len(), usize::from(warned), "{url}: {w:?}");
            if warned {
                assert!(!w[0].message.contains("pw"), "no password in the warning");
                assert!(w[0].help.as_deref().unwrap_or("").contains("verify-full"));
            }
        }
        let d = Config::parse(base).unwrap();
        assert_eq!(d.oauth.replay, ReplayBackend::Store);
        assert_eq!(d.storage.sweep_interval, Seconds(10));
        let s = Config::parse(&format!("{base}[storage]\nsweep_interval = \"2m\"\n")).unwrap();
        assert_eq!(s.storage.sweep_interval, Seconds(120));
        assert!(Config::parse(&format!("{base}[storage]\nsweep_interval = \"0s\"\n")).is_err());
        assert_eq!(d.oauth.replay_memory_entries, 2_000_000);
        assert_eq!(
            (d.oauth.login_max_failures, d.oauth.login_lockout_seconds),
            (5, 60)
        );
        let l = Config::parse(&format!(
            "{base}[oauth]\nlogin_max_failures = 0\nlogin_lockout_seconds = 300\n"
        ))
        .unwrap();
        assert_eq!(
            (l.oauth.login_max_failures, l.oauth.login_lockout_seconds),
            (0, 300)
        );
        let m = Config::parse(&format!(
            "{base}[oauth]\nreplay = \"memory\"\nreplay_memory_entries = 10\n"
        ))
        .unwrap();
        assert_eq!(m.oauth.replay_memory_entries, 10);
        assert_eq!(
            d.oauth_issuer(bound).unwrap().as_str(),
            "http://127.0.0.1:9"
        );

        let text = Config::parse(&format!("{base}[oauth]\nissuer = \"http://as.a.org\"\n"))
            .unwrap_err()
            .to_string();
        assert!(text.contains("line 6, column 10: [oauth] issuer"), "{text}");
        let text = Config::parse(&format!("{base}[oauth]\nreplay = \"redis\"\n"))
            .unwrap_err()
            .to_string();
        assert!(text.contains("unknown variant"), "{text}");
        let text = Config::parse(&format!("{base}[oauth]\nissuers = \"x\"\n"))
            .unwrap_err()
            .to_string();
        assert!(text.contains("unknown field `issuers`"), "{text}");
        let text = Config::parse(&format!("{base}[http]\nlisten = \"0.0.0.0:8080\"\n"))
            .unwrap_err()
            .to_string();
        assert!(text.contains("[oauth] issuer is not set"), "{text}");
        Config::parse(&format!(
            "{base}[http]\nlisten = \"0.0.0.0:8080\"\n[oauth]\nenabled = false\n"
        ))
        .unwrap();
    }

    #[test]
    fn oauth_par_and_trusted_issuers() {
        let base = "version = 1\n[server]\ntrust_domain = \"a.org\"\ndata_dir = \"/d\"\n[oauth]\nissuer = \"https://as.a.org\"\n";
        let c = Config::parse(&format!(
            "{base}require_pushed_authorization_requests = true\n[oauth.trusted_issuers.idp]\nissuer = \"https://idp.a.org\"\njwks = {{ keys = [{{ kty = \"EC\", crv = \"P-256\", x = \"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\", y = \"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\" }}] }}\n"
        ))
        .unwrap();
        assert!(c.oauth.require_pushed_authorization_requests);
        let t = &c.oauth.trusted_issuers["idp"];
        assert_eq!(t.issuer, "https://idp.a.org");
        assert_eq!(t.load_jwks().unwrap().keys.len(), 1);
        assert!(!OAuthSection::default().require_pushed_authorization_requests);
        // Neither or both key sources: refused.
        let text = Config::parse(&format!(
            "{base}[oauth.trusted_issuers.idp]\nissuer = \"https://idp.a.org\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            text.contains("set exactly one of jwks_file and jwks"),
            "{text}"
        );
    }

    #[test]
    fn oauth_mtls_listener() {
        let base = "version = 1\n[server]\ntrust_domain = \"a.org\"\ndata_dir = \"/d\"\n";
        let c = Config::parse(&format!(
            "{base}[oauth]\nmtls_listen = \"127.0.0.1:8445\"\nmtls_base_url = \"https://mtls.a.org\"\n"
        ))
        .unwrap();
        assert_eq!(c.oauth.mtls_listen, Some("127.0.0.1:8445".parse().unwrap()));
        assert_eq!(c.oauth.mtls_base_url.as_deref(), Some("https://mtls.a.org"));
        assert!(OAuthSection::default().mtls_listen.is_none());
        // One diagnostic per rule.
        let cases = [
            (
                "[oauth]\nmtls_base_url = \"https://mtls.a.org\"\n",
                "mtls_base_url is set without [oauth] mtls_listen",
            ),
            (
                "[oauth]\nmtls_listen = \"127.0.0.1:8445\"\nmtls_base_url = \"http://127.0.0.1:8445\"\n",
                "is not an https URL",
            ),
            (
                "[oauth]\nmtls_listen = \"127.0.0.1:8445\"\nmtls_base_url = \"https://mtls.a.org/?x=1\"\n",
                "is not an https URL",
            ),
            (
                "[oauth]\nenabled = false\nmtls_listen = \"127.0.0.1:8445\"\n",
                "[oauth] enabled = false",
            ),
            (
                "[oauth]\nmtls_listen = \"nowhere\"\n",
                "invalid socket address",
            ),
        ];
        for (extra, expected) in cases {
            let text = Config::parse(&format!("{base}{extra}"))
                .unwrap_err()
                .to_string();
            assert!(text.contains(expected), "{extra}: {text}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("45"), Ok(45));
        for bad in ["", "0", "0s", "h", "1x", "1h30"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dev_config_is_valid_and_loopback_only() {
        let c = Config::dev(PathBuf::from("aims-data"), "127.0.0.1:0".parse().unwrap()).unwrap();
        assert!(c.http.listen.ip().is_loopback());
        assert_eq!(
            c.workload_socket(),
            PathBuf::from("aims-data/workload.sock")
        );
        assert!(endpoint_socket_env(&c.workload_socket()).starts_with("unix:///"));
    }

    #[test]
    fn keys_table_names_the_kek_file() {
        let base = "version = 1\n[server]\ntrust_domain = \"a.org\"\ndata_dir = \"/d\"\n";
        let c = Config::parse(base).unwrap();
        assert_eq!(c.keys.encryption_key_file, None);
        assert!(c.keys.load_kek().unwrap().is_none());
        let c = Config::parse(&format!(
            "{base}[keys]\nencryption_key_file = \"/etc/aims/kek\"\n"
        ))
        .unwrap();
        assert_eq!(
            c.keys.encryption_key_file.as_deref(),
            Some(Path::new("/etc/aims/kek"))
        );
        let errs = Config::parse(&format!("{base}[keys]\nkek_file = \"/k\"\n"))
            .unwrap_err()
            .0;
        assert!(
            errs[0].message.contains("unknown field `kek_file`"),
            "{errs:#?}"
        );
    }

    #[test]
    fn kek_file_must_be_private_and_hold_32_bytes_in_base64() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek");
        let keys = KeysSection {
            encryption_key_file: Some(path.clone()),
        };
        let load = |text: &[u8], mode: u32| {
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            keys.load_kek().map_err(|e| e.to_string())
        };
        let good = aims_crypto::b64::encode_std([0x5au8; 32]);
        assert!(
            load(format!("{good}\n").as_bytes(), 0o600)
                .unwrap()
                .is_some()
        );
        assert!(load(good.as_bytes(), 0o400).unwrap().is_some());
        // URL-safe, unpadded.
        let url = aims_crypto::b64::encode_url([0xfbu8; 32]);
        assert!(load(url.as_bytes(), 0o600).unwrap().is_some());

        // Readable or writable by group or others: refused, with the fix.
        for mode in [0o640, 0o604, 0o644, 0o620, 0o602, 0o610] {
            let e = load(good.as_bytes(), mode).unwrap_err();
            assert!(e.contains("[keys] encryption_key_file"), "{e}");
            assert!(e.contains("chmod 600"), "{mode:o}: {e}");
            assert!(!e.contains(&good), "the key must not be in the message");
        }
        // Anything but 32 bytes in base64: refused, the text not repeated.
        let short = aims_crypto::b64::encode_std([0x5au8; 31]);
        let long = aims_crypto::b64::encode_std([0x5au8; 33]);
        let raw = [0x5au8; 32];
        let hex = "5a".repeat(32);
        let huge = "A".repeat(4096);
        for bad in [
            short.as_bytes(),
            long.as_bytes(),
            &raw[..],
            hex.as_bytes(),
            huge.as_bytes(),
            b"",
            b"\xff\xfe",
        ] {
            let e = load(bad, 0o600).unwrap_err();
            assert!(e.contains("32 bytes"), "{e}");
            assert!(e.contains("head -c 32 /dev/urandom | base64"), "{e}");
        }
        assert!(!load(short.as_bytes(), 0o600).unwrap_err().contains(&short));
        // A long file is not read whole.
        assert!(
            load(huge.as_bytes(), 0o600)
                .unwrap_err()
                .contains("longer than 1024 bytes")
        );
        // Missing, or a directory.
        std::fs::remove_file(&path).unwrap();
        assert!(
            keys.load_kek()
                .unwrap_err()
                .to_string()
                .contains("cannot open")
        );
        std::fs::create_dir(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(
            keys.load_kek()
                .unwrap_err()
                .to_string()
                .contains("not a regular file")
        );
    }

    #[test]
    fn debug_hides_the_storage_url() {
        let mut c = Config::minimal(TrustDomain::new("a.org").unwrap(), "/d".into());
        c.storage.url = Some("postgres://u:secret@h/db".into());
        assert!(!format!("{c:?}").contains("secret"));
        assert!(!format!("{:?}", c.storage).contains("secret"));
    }
}
