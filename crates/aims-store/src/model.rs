//! Records the store keeps besides [`RegistrationEntry`]: signing keys, federated bundles,
//! the entry change feed, and the OAuth authorization server's clients, grants and users.

use std::fmt;

use aims_core::{RegistrationEntry, TrustDomain};
use zeroize::Zeroizing;

use crate::StoreError;

/// What a signing key signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyKind {
    /// The trust domain's X.509 CA key (signs X509-SVIDs).
    X509Ca,
    /// A JWT-SVID signing key.
    JwtSvid,
    /// A WIT-SVID signing key.
    WitSvid,
    /// An OAuth authorization server key: signs JWT access tokens and introspection
    /// responses.
    OAuthToken,
}

impl KeyKind {
    /// Every kind, in a fixed order.
    pub const ALL: [KeyKind; 4] = [
        KeyKind::X509Ca,
        KeyKind::JwtSvid,
        KeyKind::WitSvid,
        KeyKind::OAuthToken,
    ];

    /// The stored name: `x509_ca`, `jwt_svid`, `wit_svid` or `oauth_token`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::X509Ca => "x509_ca",
            KeyKind::JwtSvid => "jwt_svid",
            KeyKind::WitSvid => "wit_svid",
            KeyKind::OAuthToken => "oauth_token",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Self, StoreError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| StoreError::corrupt(format!("unknown key kind `{s}`")))
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a key is in its rotation.
///
/// `Next` is published (so verifiers learn it) but does not sign yet; `Current` signs;
/// `Previous` no longer signs but is still published until what it signed expires;
/// `Retired` is neither used nor published. At most one key per [`KeyKind`] is `Current`
/// and at most one is `Next` (the database enforces both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyState {
    /// Prepared and published, not yet signing.
    Next,
    /// The signing key.
    Current,
    /// Replaced; still published for verification.
    Previous,
    /// Out of use.
    Retired,
}

impl KeyState {
    /// Every state, in rotation order.
    pub const ALL: [KeyState; 4] = [
        KeyState::Next,
        KeyState::Current,
        KeyState::Previous,
        KeyState::Retired,
    ];

    /// The stored name: `next`, `current`, `previous` or `retired`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Current => "current",
            KeyState::Previous => "previous",
            KeyState::Retired => "retired",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Self, StoreError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| StoreError::corrupt(format!("unknown key state `{s}`")))
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signing key with its certificates and rotation state.
///
/// The private key is held in a [`Zeroizing`] buffer (wiped on drop), and `Debug` does not
/// print it. `(kind, kid)` identifies the key.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// What the key signs.
    pub kind: KeyKind,
    /// Key identifier, unique per kind (1 to 255 printable ASCII characters).
    pub kid: String,
    /// JOSE algorithm name, e.g. `ES256`.
    pub alg: String,
    /// The private key, PKCS#8 DER.
    pub pkcs8: Zeroizing<Vec<u8>>,
    /// DER certificates for the key, leaf first (empty for JWT and WIT keys without one).
    pub cert_chain_der: Vec<Vec<u8>>,
    /// Rotation state.
    pub state: KeyState,
    /// Start of validity (Unix seconds).
    pub not_before: i64,
    /// End of validity (Unix seconds).
    pub not_after: i64,
    /// When the key was created (Unix seconds).
    pub created_at: i64,
}

impl fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRecord")
            .field("kind", &self.kind)
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("pkcs8", &"<redacted>")
            .field(
                "cert_chain_der",
                &format_args!("[{} certificates]", self.cert_chain_der.len()),
            )
            .field("state", &self.state)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("created_at", &self.created_at)
            .finish()
    }
}

impl KeyRecord {
    pub(crate) fn validate(&self) -> Result<(), StoreError> {
        check_kid(&self.kid)?;
        if self.alg.is_empty()
            || self.alg.len() > 32
            || !self.alg.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(StoreError::Invalid(format!(
                "key `{}`: bad algorithm name",
                self.kid
            )));
        }
        if self.pkcs8.is_empty() {
            return Err(StoreError::Invalid(format!(
                "key `{}`: empty private key",
                self.kid
            )));
        }
        if self.cert_chain_der.iter().any(Vec::is_empty) {
            return Err(StoreError::Invalid(format!(
                "key `{}`: empty certificate",
                self.kid
            )));
        }
        if self.not_before > self.not_after {
            return Err(StoreError::Invalid(format!(
                "key `{}`: not_before is after not_after",
                self.kid
            )));
        }
        Ok(())
    }
}

pub(crate) fn check_kid(kid: &str) -> Result<(), StoreError> {
    if kid.is_empty() || kid.len() > 255 || !kid.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(StoreError::Invalid(
            "a kid must be 1 to 255 printable ASCII characters".to_owned(),
        ));
    }
    Ok(())
}

/// The stored bundle of a federated trust domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleRecord {
    /// The federated trust domain.
    pub trust_domain: TrustDomain,
    /// The SPIFFE bundle document (JSON), exactly as received.
    pub bundle_json: String,
    /// The bundle's `spiffe_sequence`; a stored bundle is never replaced by a lower one.
    pub sequence: u64,
    /// The bundle's `spiffe_refresh_hint` in seconds, if any.
    pub refresh_hint: Option<u64>,
    /// Where the bundle is fetched from, if it is fetched.
    pub endpoint_url: Option<String>,
    /// When the bundle was stored (Unix seconds).
    pub updated_at: i64,
}

/// One change to registration entries, as seen by [`crate::Store::entry_changes_since`].
// Most changes are puts, so boxing the entry would only add an allocation per change.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryChange {
    /// The entry was created or updated; this is its state at `seq`.
    Put {
        /// Position in the change sequence.
        seq: u64,
        /// The entry.
        entry: RegistrationEntry,
    },
    /// The entry was deleted.
    Delete {
        /// Position in the change sequence.
        seq: u64,
        /// The deleted entry's id.
        id: String,
    },
}

impl EntryChange {
    /// Position of the change in the global sequence.
    pub fn seq(&self) -> u64 {
        match self {
            EntryChange::Put { seq, .. } | EntryChange::Delete { seq, .. } => *seq,
        }
    }

    /// The id of the entry the change is about.
    pub fn id(&self) -> &str {
        match self {
            EntryChange::Put { entry, .. } => &entry.id,
            EntryChange::Delete { id, .. } => id,
        }
    }
}

/// The answer of [`crate::Store::entry_changes_since`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EntryChanges {
    /// The latest state of every entry changed after the requested position, in `seq`
    /// order. Intermediate states of an entry changed several times are not kept.
    pub changes: Vec<EntryChange>,
    /// The position these changes bring the caller to: pass it to the next call.
    pub seq: u64,
}

/// A registered OAuth client: an opaque JSON document (defined by `aims-oauth`) under a
/// client id, with an optimistic revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClientRecord {
    /// The client id: 1 to 255 bytes of printable ASCII (space included, as RFC 6749's
    /// `VSCHAR`).
    pub client_id: String,
    /// The client's metadata, a JSON object, kept exactly as written.
    pub document: String,
    /// 1 when created, + 1 at each update.
    pub revision: i64,
    /// When the client was created (Unix seconds).
    pub created_at: i64,
    /// When the client was last written (Unix seconds).
    pub updated_at: i64,
}

/// What an OAuth grant record stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GrantKind {
    /// An authorization code (RFC 6749 §4.1).
    AuthorizationCode,
    /// A refresh token.
    RefreshToken,
    /// An opaque access token.
    AccessToken,
    /// A pushed authorization request's `request_uri` (RFC 9126).
    PushedRequest,
    /// A device code (RFC 8628).
    DeviceCode,
}

impl GrantKind {
    /// Every kind, in a fixed order.
    pub const ALL: [GrantKind; 5] = [
        GrantKind::AuthorizationCode,
        GrantKind::RefreshToken,
        GrantKind::AccessToken,
        GrantKind::PushedRequest,
        GrantKind::DeviceCode,
    ];

    /// The stored name: `authorization_code`, `refresh_token`, `access_token`,
    /// `pushed_request` or `device_code`.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantKind::AuthorizationCode => "authorization_code",
            GrantKind::RefreshToken => "refresh_token",
            GrantKind::AccessToken => "access_token",
            GrantKind::PushedRequest => "pushed_request",
            GrantKind::DeviceCode => "device_code",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Self, StoreError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| StoreError::corrupt(format!("unknown grant kind `{s}`")))
    }
}

impl fmt::Display for GrantKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a browser-state record is (the state of the authorization endpoint's login pages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BrowserStateKind {
    /// A browser's login session, named by its cookie.
    Session,
    /// An authorization request waiting for login and consent, bound to a session.
    PendingRequest,
    /// The failed-login count of a user name.
    LoginFailures,
}

impl BrowserStateKind {
    /// The stored name: `session`, `pending_request` or `login_failures`.
    pub fn as_str(self) -> &'static str {
        match self {
            BrowserStateKind::Session => "session",
            BrowserStateKind::PendingRequest => "pending_request",
            BrowserStateKind::LoginFailures => "login_failures",
        }
    }
}

impl fmt::Display for BrowserStateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A live browser-state record, as [`crate::Store::get_browser_state`] returns it.
#[derive(Clone, PartialEq, Eq)]
pub struct BrowserState {
    /// The handle of the record it belongs to (a pending request's session), if any.
    pub binding: Option<String>,
    /// When it expires (Unix seconds); it is not returned from then on.
    pub expires_at: i64,
    /// The caller's JSON object, exactly as written.
    pub data: String,
}

impl fmt::Debug for BrowserState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the data: a session's holds its CSRF token.
        f.debug_struct("BrowserState")
            .field("binding", &self.binding)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Where a grant is in its life. Expiry is not a state: the caller compares
/// [`GrantRecord::expires_at`] with its clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GrantState {
    /// Usable until it expires.
    Active,
    /// Used once by [`crate::Store::consume_grant`]; a second use is a replay.
    Consumed,
    /// Revoked; never usable again.
    Revoked,
}

impl GrantState {
    /// Every state, in a fixed order.
    pub const ALL: [GrantState; 3] = [
        GrantState::Active,
        GrantState::Consumed,
        GrantState::Revoked,
    ];

    /// The stored name: `active`, `consumed` or `revoked`.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantState::Active => "active",
            GrantState::Consumed => "consumed",
            GrantState::Revoked => "revoked",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Self, StoreError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| StoreError::corrupt(format!("unknown grant state `{s}`")))
    }
}

impl fmt::Display for GrantState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A grant to store with [`crate::Store::put_grant`]; it starts [`GrantState::Active`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGrant {
    /// The lookup key: a hash of the secret (e.g. SHA-256, encoded), never the secret.
    /// 16 to 128 printable ASCII characters.
    pub handle: String,
    /// What the grant is.
    pub kind: GrantKind,
    /// The client it was issued to (same rule as [`OAuthClientRecord::client_id`]; the
    /// client need not be stored).
    pub client_id: String,
    /// The resource owner, if any: 1 to 2048 bytes without control characters.
    pub subject: Option<String>,
    /// The family the grant belongs to (a code and the tokens issued from it), revoked
    /// together by [`crate::Store::revoke_family`]: 1 to 255 printable ASCII characters.
    pub family: String,
    /// When the grant stops being usable (Unix seconds); after `created_at`.
    pub expires_at: i64,
    /// When the grant was issued (Unix seconds).
    pub created_at: i64,
    /// What the caller needs back (scopes, PKCE challenge, …), a JSON object, kept exactly
    /// as written.
    pub data: String,
}

/// A stored grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    /// See [`NewGrant::handle`].
    pub handle: String,
    /// See [`NewGrant::kind`].
    pub kind: GrantKind,
    /// See [`NewGrant::client_id`].
    pub client_id: String,
    /// See [`NewGrant::subject`].
    pub subject: Option<String>,
    /// See [`NewGrant::family`].
    pub family: String,
    /// See [`NewGrant::expires_at`].
    pub expires_at: i64,
    /// See [`NewGrant::created_at`].
    pub created_at: i64,
    /// The state as stored (an `Active` grant may have expired).
    pub state: GrantState,
    /// See [`NewGrant::data`].
    pub data: String,
}

/// The answer of [`crate::Store::consume_grant`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumeOutcome {
    /// This call used the grant: it was active, unexpired and of the asked kind. It is now
    /// [`GrantState::Consumed`] (the record shows that state).
    Consumed(GrantRecord),
    /// The grant had already been consumed: a replay. The caller should revoke
    /// [`GrantRecord::family`]. Reported even if the grant has expired since.
    Reused(GrantRecord),
    /// The grant is revoked.
    Revoked,
    /// The grant is active but expired at `now`.
    Expired,
    /// No grant with this handle and kind.
    NotFound,
}

/// A user of the built-in user store.
///
/// `Debug` does not print the password hash.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The user name: 1 to 128 bytes without control characters, compared bytewise.
    pub username: String,
    /// The password hash as made by the caller (a PHC string such as `$argon2id$…`):
    /// 1 to 1024 printable ASCII characters.
    pub password_hash: String,
    /// Claims and other attributes, a JSON object, kept exactly as written.
    pub attributes: String,
    /// A disabled user cannot log in.
    pub disabled: bool,
    /// When the user was created (Unix seconds).
    pub created_at: i64,
    /// When the user was last written (Unix seconds).
    pub updated_at: i64,
}

impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("username", &self.username)
            .field("password_hash", &"<redacted>")
            .field("attributes", &self.attributes)
            .field("disabled", &self.disabled)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}
