//! Wire types of the admin API, shared by the server and [`crate::client`].
//!
//! | Method and path | Body | Answer |
//! |---|---|---|
//! | `POST /v1/entries` | [`EntrySpec`] | 201, the stored [`RegistrationEntry`] |
//! | `GET /v1/entries` | | [`EntryList`] |
//! | `GET /v1/entries/{id}` | | the entry |
//! | `PUT /v1/entries/{id}` | [`EntrySpec`] with `revision` | the entry, revision + 1 |
//! | `DELETE /v1/entries/{id}` | | 204 |
//! | `GET /v1/bundle` | | this trust domain's SPIFFE bundle document |
//! | `GET /v1/bundles` | | [`BundleList`] (federated bundles) |
//! | `PUT /v1/bundles/{trust_domain}` | a SPIFFE bundle document | [`BundleInfo`] |
//! | `DELETE /v1/bundles/{trust_domain}` | | 204 |
//! | `GET /v1/keys` | | [`KeyList`] |
//! | `POST /v1/clients` | [`ClientMetadata`] | 201, the stored [`ClientView`] |
//! | `GET /v1/clients` | | [`ClientList`] |
//! | `GET /v1/clients/{client_id}` | | the [`ClientView`] |
//! | `PUT /v1/clients/{client_id}` | [`ClientMetadata`]; optional `If-Match: "<revision>"` | the client, revision + 1 |
//! | `DELETE /v1/clients/{client_id}` | | 204 (its grants are revoked) |
//!
//! | `POST /v1/users` | [`NewUser`] | 201, the [`UserView`] |
//! | `GET /v1/users` | | [`UserList`] |
//! | `GET /v1/users/{username}` | | the [`UserView`] |
//! | `DELETE /v1/users/{username}` | | 204 |
//! | `PUT /v1/users/{username}/password` | [`PasswordChange`] | 204 |
//! | `PUT /v1/users/{username}/disabled` | [`DisabledChange`] | the [`UserView`] |
//!
//! Users are the people agents act for (the login page of the authorization endpoint);
//! passwords are stored as argon2id hashes and never returned.
//!
//! OAuth client ids may hold any printable ASCII: clients percent-encode them in the path.
//!
//! Client keys: inline `jwks` or a `jwks_uri` (https; http to loopback only with `[oauth]
//! allow_http_jwks_uri`). Legacy secrets: with `[oauth] allow_client_secrets = true`, a
//! client created (or switched) to `client_secret_basic` or `client_secret_post` gets a
//! server-generated secret, returned once in [`ClientView::client_secret`]; only its
//! hash is stored and it is never shown again (`client_secret_hash` is not returned).
//! A document carrying `client_secret_hash` is refused: the server chooses secrets.
//!
//! Errors are `4xx`/`5xx` with an [`ErrorBody`].

use aims_core::{RegistrationEntry, Selector, SpiffeId, TrustDomain};
pub use aims_oauth::client::{
    AuthMethod, ClientMetadata, GrantType, MAX_ACCESS_TOKEN_LIFETIME, TokenFormat,
};
pub use aims_oauth::secret::ClientSecret;
use serde::{Deserialize, Serialize};

/// Default X509-SVID lifetime of a new entry (1 hour).
pub const DEFAULT_X509_TTL: u32 = 3600;
/// Default JWT-SVID lifetime of a new entry (5 minutes).
pub const DEFAULT_JWT_TTL: u32 = 300;
/// Default WIT-SVID lifetime of a new entry (1 hour).
pub const DEFAULT_WIT_TTL: u32 = 3600;

fn default_x509_ttl() -> u32 {
    DEFAULT_X509_TTL
}
fn default_jwt_ttl() -> u32 {
    DEFAULT_JWT_TTL
}
fn default_wit_ttl() -> u32 {
    DEFAULT_WIT_TTL
}

/// A registration entry as a client writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntrySpec {
    /// The SPIFFE ID (in the server's trust domain, with a path).
    pub spiffe_id: SpiffeId,
    /// All must match the workload.
    pub selectors: Vec<Selector>,
    /// X509-SVID lifetime, seconds.
    #[serde(default = "default_x509_ttl")]
    pub x509_ttl: u32,
    /// JWT-SVID lifetime, seconds.
    #[serde(default = "default_jwt_ttl")]
    pub jwt_ttl: u32,
    /// WIT-SVID lifetime, seconds.
    #[serde(default = "default_wit_ttl")]
    pub wit_ttl: u32,
    /// DNS SANs of the X509-SVID.
    #[serde(default)]
    pub dns_names: Vec<String>,
    /// The Workload API `hint`.
    #[serde(default)]
    pub hint: Option<String>,
    /// Trust domains whose bundles the workload also receives.
    #[serde(default)]
    pub federates_with: Vec<TrustDomain>,
    /// Parent entry's SPIFFE ID.
    #[serde(default)]
    pub parent_id: Option<SpiffeId>,
    /// May call the admin API over mTLS.
    #[serde(default)]
    pub admin: bool,
    /// `PUT` only: the revision being replaced (optimistic concurrency).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
}

impl EntrySpec {
    /// The spec of an existing entry (for read-modify-write updates).
    pub fn of(e: &RegistrationEntry) -> Self {
        Self {
            spiffe_id: e.spiffe_id.clone(),
            selectors: e.selectors.iter().cloned().collect(),
            x509_ttl: e.x509_ttl,
            jwt_ttl: e.jwt_ttl,
            wit_ttl: e.wit_ttl,
            dns_names: e.dns_names.clone(),
            hint: e.hint.clone(),
            federates_with: e.federates_with.iter().cloned().collect(),
            parent_id: e.parent_id.clone(),
            admin: e.admin,
            revision: Some(e.revision),
        }
    }

    /// The entry this spec describes, with id `id` (timestamps and revision zero: the
    /// store sets them).
    pub fn into_entry(self, id: String) -> RegistrationEntry {
        RegistrationEntry {
            id,
            spiffe_id: self.spiffe_id,
            selectors: self.selectors.into_iter().collect(),
            x509_ttl: self.x509_ttl,
            jwt_ttl: self.jwt_ttl,
            wit_ttl: self.wit_ttl,
            dns_names: self.dns_names,
            hint: self.hint,
            federates_with: self.federates_with.into_iter().collect(),
            parent_id: self.parent_id,
            admin: self.admin,
            revision: 0,
            created_at: 0,
            updated_at: 0,
        }
    }
}

/// `GET /v1/entries`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryList {
    /// Every entry, oldest first.
    pub entries: Vec<RegistrationEntry>,
}

/// A stored federated bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BundleInfo {
    /// The federated trust domain.
    pub trust_domain: TrustDomain,
    /// `spiffe_sequence` (0 if the document has none).
    pub sequence: u64,
    /// `spiffe_refresh_hint`, seconds.
    pub refresh_hint: Option<u64>,
    /// Where it is fetched from, if it is.
    pub endpoint_url: Option<String>,
    /// When it was stored (Unix seconds).
    pub updated_at: i64,
    /// The SPIFFE bundle document.
    pub bundle: serde_json::Value,
}

/// `GET /v1/bundles`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BundleList {
    /// By trust domain.
    pub bundles: Vec<BundleInfo>,
}

/// A key's place in its rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyView {
    /// `x509_ca`, `jwt_svid`, `wit_svid` or `oauth_token`.
    pub kind: String,
    /// Key id.
    pub kid: String,
    /// `next`, `current` or `previous`.
    pub state: String,
    /// Start of validity (Unix seconds).
    pub not_before: i64,
    /// End of validity and publication (Unix seconds).
    pub not_after: i64,
}

/// `GET /v1/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyList {
    /// Published keys.
    pub keys: Vec<KeyView>,
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A short machine-readable code: `invalid_request`, `not_found`, `conflict`,
    /// `forbidden`, `unavailable`, `internal`.
    pub error: String,
    /// What went wrong and what to do, for people.
    pub detail: String,
}

/// An OAuth client as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientView {
    /// The client identifier.
    pub client_id: String,
    /// 1 when created, + 1 at each update.
    pub revision: i64,
    /// When it was created (Unix seconds).
    pub created_at: i64,
    /// When it was last written (Unix seconds).
    pub updated_at: i64,
    /// The registered metadata.
    pub metadata: ClientMetadata,
    /// The client authenticates with a static secret (`client_secret_basic` or
    /// `client_secret_post`): a flagged legacy client.
    #[serde(default)]
    pub legacy_secret: bool,
    /// The secret the server just generated: in the answer that created it only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<ClientSecret>,
}

/// `GET /v1/clients`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientList {
    /// Every client, by client id.
    pub clients: Vec<ClientView>,
}

/// `POST /v1/users`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// The user name (token `sub`): 1 to 128 bytes, no control characters.
    pub username: String,
    /// The password (at least 12 characters); hashed with argon2id, never stored.
    pub password: String,
    /// Attributes, a JSON object (e.g. `name`, `email`).
    #[serde(default = "empty_object")]
    pub attributes: serde_json::Value,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("username", &self.username)
            .field("attributes", &self.attributes)
            .finish_non_exhaustive()
    }
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

/// A user as the admin API shows it (never the password hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserView {
    /// The user name.
    pub username: String,
    /// Attributes, a JSON object.
    pub attributes: serde_json::Value,
    /// A disabled user cannot log in.
    pub disabled: bool,
    /// When the user was created (Unix seconds).
    pub created_at: i64,
    /// When the user was last written (Unix seconds).
    pub updated_at: i64,
}

/// `GET /v1/users`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserList {
    /// Every user, by name.
    pub users: Vec<UserView>,
}

/// `PUT /v1/users/{username}/password`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The new password.
    pub password: String,
}

impl std::fmt::Debug for PasswordChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordChange { .. }")
    }
}

/// `PUT /v1/users/{username}/disabled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisabledChange {
    /// Whether the user is disabled.
    pub disabled: bool,
}
