//! OAuth clients: the registered metadata (RFC 7591 names where they exist) and its
//! parsed, validated form.
//!
//! A client authenticates with exactly one method, and never with a static secret unless
//! an operator explicitly enabled one for a legacy client (stored hashed, flagged by
//! [`Client::uses_legacy_secret`]).

use std::collections::BTreeSet;

use aims_core::SpiffeIdPattern;
use aims_crypto::Jwks;
use serde::{Deserialize, Serialize};

/// How a client authenticates at the token, PAR, introspection and revocation endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// RFC 7523 §2.2 JWT assertion signed with a key of the client's JWKS.
    PrivateKeyJwt,
    /// draft-ietf-oauth-spiffe-client-auth: a JWT-SVID as the client assertion.
    SpiffeJwt,
    /// draft-ietf-oauth-spiffe-client-auth: an X509-SVID over mutual TLS.
    SpiffeX509,
    /// draft-ietf-oauth-spiffe-client-auth: a WIT-SVID with an attestation PoP.
    SpiffeWit,
    /// RFC 8705 §2.1: a CA-issued client certificate whose URI SAN is registered.
    TlsClientAuth,
    /// RFC 8705 §2.2: a self-signed certificate registered in the client's JWKS (`x5c`).
    SelfSignedTlsClientAuth,
    /// A public client: no authentication, PKCE required.
    None,
    /// A legacy shared secret (HTTP Basic). Off unless the server enables it.
    ClientSecretBasic,
    /// A legacy shared secret in the form body (`client_id` + `client_secret`). Off
    /// unless the server enables it.
    ClientSecretPost,
}

impl AuthMethod {
    /// The RFC 8414 / RFC 7591 name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
            AuthMethod::SpiffeJwt => "spiffe_jwt",
            AuthMethod::SpiffeX509 => "spiffe_x509",
            AuthMethod::SpiffeWit => "spiffe_wit",
            AuthMethod::TlsClientAuth => "tls_client_auth",
            AuthMethod::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
            AuthMethod::None => "none",
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
        }
    }

    /// Whether this is a legacy shared-secret method.
    pub fn uses_secret(self) -> bool {
        matches!(
            self,
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost
        )
    }
}

/// Grant types a client may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum GrantType {
    /// RFC 6749 §4.4.
    #[serde(rename = "client_credentials")]
    ClientCredentials,
    /// RFC 6749 §4.1 with PKCE.
    #[serde(rename = "authorization_code")]
    AuthorizationCode,
    /// RFC 6749 §6.
    #[serde(rename = "refresh_token")]
    RefreshToken,
    /// RFC 7523 §2.1.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:jwt-bearer")]
    JwtBearer,
    /// RFC 8693 (later issue).
    #[serde(rename = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange,
}

impl GrantType {
    /// The `grant_type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::ClientCredentials => "client_credentials",
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::JwtBearer => "urn:ietf:params:oauth:grant-type:jwt-bearer",
            GrantType::TokenExchange => "urn:ietf:params:oauth:grant-type:token-exchange",
        }
    }

    /// Parses a `grant_type` value.
    pub fn parse(s: &str) -> Option<Self> {
        [
            GrantType::ClientCredentials,
            GrantType::AuthorizationCode,
            GrantType::RefreshToken,
            GrantType::JwtBearer,
            GrantType::TokenExchange,
        ]
        .into_iter()
        .find(|g| g.as_str() == s)
    }
}

/// Access-token format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenFormat {
    /// RFC 9068 JWT, verifiable by resource servers with the JWKS.
    #[default]
    Jwt,
    /// A random handle, resolved by introspection.
    Opaque,
}

/// The client's registered metadata, as stored and as the admin API takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientMetadata {
    /// The client identifier.
    pub client_id: String,
    /// A human-readable name (shown on consent pages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// How the client authenticates.
    pub token_endpoint_auth_method: AuthMethod,
    /// Public keys (private_key_jwt, self_signed_tls_client_auth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Jwks>,
    /// Where the public keys are published (fetched by the server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// The SPIFFE ID (or `/*` prefix pattern) the client's SVIDs must carry (spiffe_*
    /// methods); also the `client_id` put in its tokens when it matches exactly one ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spiffe_id: Option<String>,
    /// RFC 8705 `tls_client_auth_san_uri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_uri: Option<String>,
    /// Grant types the client may use.
    pub grant_types: Vec<GrantType>,
    /// Space-separated scopes the client may request.
    #[serde(default)]
    pub scope: String,
    /// Resource indicators (RFC 8707) the client may target; tokens are audience-bound to
    /// one of them.
    #[serde(default)]
    pub resources: Vec<String>,
    /// Resource indicators whose tokens this client may introspect, as their resource
    /// server (RFC 7662 §2.1). A client always sees its own tokens; `resources` (what it
    /// may ask tokens for) gives no right to see other clients' tokens.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub introspect_resources: Vec<String>,
    /// Redirect URIs, compared exactly.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// RAR types the client may request (RFC 9396).
    #[serde(default)]
    pub authorization_details_types: Vec<String>,
    /// Access-token lifetime in seconds (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_lifetime: Option<u32>,
    /// Refresh-token lifetime in seconds (default 86400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_lifetime: Option<u32>,
    /// RFC 9449: every access token must be DPoP-bound.
    #[serde(default)]
    pub dpop_bound_access_tokens: bool,
    /// RFC 8705: access tokens are bound to the client certificate when one is used.
    #[serde(default)]
    pub tls_client_certificate_bound_access_tokens: bool,
    /// JWT (default) or opaque access tokens.
    #[serde(default)]
    pub access_token_format: TokenFormat,
    /// Legacy shared secret: `sha256:` + base64url(SHA-256(secret)) of the secret the
    /// server generated (never the secret; see [`crate::secret`] for why SHA-256), only
    /// with `client_secret_basic` and `client_secret_post`. Set by the server, never by
    /// the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_hash: Option<String>,
}

/// Default access-token lifetime (5 minutes: agents' tokens are short-lived).
pub const DEFAULT_ACCESS_TOKEN_LIFETIME: u32 = 300;
/// Default refresh-token lifetime (1 day).
pub const DEFAULT_REFRESH_TOKEN_LIFETIME: u32 = 86_400;
/// The longest access-token lifetime a client may be given (1 hour).
pub const MAX_ACCESS_TOKEN_LIFETIME: u32 = 3_600;

/// Why client metadata is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid client metadata: {0}")]
pub struct ClientError(pub String);

/// A registered client, validated.
#[derive(Debug, Clone)]
pub struct Client {
    meta: ClientMetadata,
    spiffe_pattern: Option<SpiffeIdPattern>,
    scopes: BTreeSet<String>,
    /// Its inline `jwks`, parsed once (scope: the client id).
    keys: Option<std::sync::Arc<aims_jose::StaticKeys>>,
    /// SHA-256 of the certificates its inline `jwks` registers (`x5c`), computed once.
    certificates: Option<std::sync::Arc<[[u8; 32]]>>,
}

/// Two clients are equal when their metadata is (everything else is derived from it).
impl PartialEq for Client {
    fn eq(&self, other: &Self) -> bool {
        self.meta == other.meta
    }
}

impl Client {
    /// Parses and checks stored metadata (JSON).
    pub fn from_json(json: &str) -> Result<Self, ClientError> {
        let meta: ClientMetadata =
            serde_json::from_str(json).map_err(|e| ClientError(e.to_string()))?;
        Self::new(meta)
    }

    /// Checks metadata: one coherent authentication method and the material it needs.
    pub fn new(meta: ClientMetadata) -> Result<Self, ClientError> {
        let err = |m: &str| Err(ClientError(m.to_owned()));
        if meta.client_id.is_empty()
            || meta.client_id.len() > 255
            || !meta.client_id.bytes().all(|b| (0x20..0x7f).contains(&b))
        {
            return err("client_id must be 1 to 255 printable ASCII characters");
        }
        if meta.grant_types.is_empty() {
            return err("grant_types must not be empty");
        }
        let spiffe_pattern = match &meta.spiffe_id {
            Some(p) => Some(
                SpiffeIdPattern::parse(p).map_err(|e| ClientError(format!("spiffe_id: {e}")))?,
            ),
            None => None,
        };
        use AuthMethod as M;
        match meta.token_endpoint_auth_method {
            M::PrivateKeyJwt | M::SelfSignedTlsClientAuth => {
                if meta.jwks.is_none() == meta.jwks_uri.is_none() {
                    return err("this method needs exactly one of jwks and jwks_uri");
                }
            }
            M::SpiffeJwt | M::SpiffeX509 | M::SpiffeWit => {
                if spiffe_pattern.is_none() {
                    return err("spiffe_* methods need spiffe_id");
                }
            }
            M::TlsClientAuth => {
                if meta.tls_client_auth_san_uri.is_none() {
                    return err("tls_client_auth needs tls_client_auth_san_uri");
                }
            }
            M::None => {
                if meta.grant_types.contains(&GrantType::ClientCredentials) {
                    return err("a public client cannot use client_credentials");
                }
            }
            M::ClientSecretBasic | M::ClientSecretPost => match &meta.client_secret_hash {
                None => return err("client secret methods need client_secret_hash"),
                Some(h) if !crate::secret::is_secret_hash(h) => {
                    return err("client_secret_hash is not a server-generated secret's hash");
                }
                Some(_) => {}
            },
        }
        if meta.client_secret_hash.is_some() && !meta.token_endpoint_auth_method.uses_secret() {
            return err(
                "client_secret_hash is only for client_secret_basic and client_secret_post",
            );
        }
        if let Some(jwks) = &meta.jwks {
            check_jwks(jwks)?;
        }
        if let Some(uri) = &meta.jwks_uri {
            // Whether plain http (loopback) is allowed is the server's configuration;
            // here only the form is checked.
            crate::jwks_uri::check_jwks_uri(uri, true)
                .map_err(|e| ClientError(format!("jwks_uri: {e}")))?;
        }
        if meta.token_endpoint_auth_method == M::SelfSignedTlsClientAuth
            && let Some(jwks) = &meta.jwks
        {
            // RFC 8705 §2.2: the certificates are registered as `x5c` of the JWKS.
            let with_x5c = jwks.keys.iter().filter(|k| k.x5c.is_some());
            let mut registered = 0;
            for k in with_x5c {
                if crate::authn::registered_certificate(k).is_none() {
                    return err("an x5c of jwks is not standard base64 of a DER certificate");
                }
                registered += 1;
            }
            if registered == 0 {
                return err(
                    "self_signed_tls_client_auth needs the client's certificate in jwks (x5c)",
                );
            }
        }
        if meta
            .access_token_lifetime
            .is_some_and(|l| l == 0 || l > MAX_ACCESS_TOKEN_LIFETIME)
        {
            return err("access_token_lifetime must be 1 to 3600 seconds");
        }
        if meta.refresh_token_lifetime == Some(0) {
            return err("refresh_token_lifetime must be positive");
        }
        for r in meta.resources.iter().chain(&meta.introspect_resources) {
            if !is_resource_indicator(r) {
                return Err(ClientError(format!(
                    "resource {r:?} must be an absolute URI without a fragment"
                )));
            }
        }
        for u in &meta.redirect_uris {
            if !u.contains("://") || u.contains('#') {
                return Err(ClientError(format!(
                    "redirect URI {u:?} must be absolute without a fragment"
                )));
            }
        }
        if meta.grant_types.contains(&GrantType::AuthorizationCode) && meta.redirect_uris.is_empty()
        {
            return err("authorization_code needs at least one redirect URI");
        }
        let scopes = meta
            .scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let keys = meta.jwks.as_ref().map(|jwks| {
            let mut keys = aims_jose::StaticKeys::new();
            keys.add_jwks(meta.client_id.clone(), jwks);
            std::sync::Arc::new(keys)
        });
        let certificates = meta.jwks.as_ref().map(crate::authn::certificate_digests);
        Ok(Self {
            meta,
            spiffe_pattern,
            scopes,
            keys,
            certificates,
        })
    }

    /// Its inline `jwks`, parsed once, under the scope of its client id.
    pub fn inline_keys(&self) -> Option<&std::sync::Arc<aims_jose::StaticKeys>> {
        self.keys.as_ref()
    }

    /// SHA-256 of the certificates its inline `jwks` registers for
    /// `self_signed_tls_client_auth` (the first `x5c` entry of each key), computed once.
    pub fn inline_certificates(&self) -> Option<&std::sync::Arc<[[u8; 32]]>> {
        self.certificates.as_ref()
    }

    /// The stored form.
    pub fn metadata(&self) -> &ClientMetadata {
        &self.meta
    }

    /// The client identifier.
    pub fn id(&self) -> &str {
        &self.meta.client_id
    }

    /// The authentication method.
    pub fn auth_method(&self) -> AuthMethod {
        self.meta.token_endpoint_auth_method
    }

    /// The SPIFFE ID pattern, for spiffe_* methods.
    pub fn spiffe_pattern(&self) -> Option<&SpiffeIdPattern> {
        self.spiffe_pattern.as_ref()
    }

    /// Whether the client may use `grant`.
    pub fn may_use(&self, grant: GrantType) -> bool {
        self.meta.grant_types.contains(&grant)
    }

    /// The scopes the client may request.
    pub fn allowed_scopes(&self) -> &BTreeSet<String> {
        &self.scopes
    }

    /// Whether tokens must be DPoP-bound.
    pub fn requires_dpop(&self) -> bool {
        self.meta.dpop_bound_access_tokens
    }

    /// Access-token lifetime in seconds.
    pub fn access_token_lifetime(&self) -> i64 {
        i64::from(
            self.meta
                .access_token_lifetime
                .unwrap_or(DEFAULT_ACCESS_TOKEN_LIFETIME),
        )
    }

    /// Refresh-token lifetime in seconds.
    pub fn refresh_token_lifetime(&self) -> i64 {
        i64::from(
            self.meta
                .refresh_token_lifetime
                .unwrap_or(DEFAULT_REFRESH_TOKEN_LIFETIME),
        )
    }

    /// Whether this client authenticates with a static secret (a flagged legacy client).
    pub fn uses_legacy_secret(&self) -> bool {
        self.meta.token_endpoint_auth_method.uses_secret()
    }
}

/// The most keys a client's JWK set may hold.
pub const MAX_CLIENT_KEYS: usize = 32;

/// The rules for a client's key set, inline (`jwks`) or fetched (`jwks_uri`): at most
/// [`MAX_CLIENT_KEYS`] keys, each a public (no private or symmetric members) signature
/// key (`use` absent or `sig`) of a supported type, whose `alg`, when present, is one
/// the server accepts for client assertions.
pub fn check_jwks(jwks: &Jwks) -> Result<(), ClientError> {
    if jwks.keys.is_empty() {
        return Err(ClientError("the JWK set holds no key".to_owned()));
    }
    if jwks.keys.len() > MAX_CLIENT_KEYS {
        return Err(ClientError(format!(
            "the JWK set holds more than {MAX_CLIENT_KEYS} keys"
        )));
    }
    for (i, k) in jwks.keys.iter().enumerate() {
        let name = k
            .kid
            .as_deref()
            .map_or_else(|| format!("key {i}"), |kid| format!("key {kid:?}"));
        if k.has_private_members() {
            return Err(ClientError(format!(
                "{name} holds a private key (or a symmetric one): register only public keys"
            )));
        }
        if !matches!(k.use_.as_deref(), None | Some("sig")) {
            return Err(ClientError(format!("{name}: use must be sig")));
        }
        if let Some(alg) = &k.alg
            && !crate::metadata::ASSERTION_ALGS.contains(&alg.as_str())
        {
            return Err(ClientError(format!("{name}: alg {alg:?} is not accepted")));
        }
        aims_crypto::VerifyingKey::from_jwk(k).map_err(|e| ClientError(format!("{name}: {e}")))?;
    }
    Ok(())
}

/// RFC 8707 §2: an absolute URI without a fragment.
pub(crate) fn is_resource_indicator(s: &str) -> bool {
    match s.split_once(':') {
        Some((scheme, rest)) => {
            !scheme.is_empty()
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
                && !rest.is_empty()
                && !s.contains('#')
                && s.bytes().all(|b| b.is_ascii_graphic())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn base() -> serde_json::Value {
        serde_json::json!({
            "client_id": "agent-a",
            "token_endpoint_auth_method": "spiffe_jwt",
            "spiffe_id": "spiffe://example.org/agent/*",
            "grant_types": ["client_credentials"],
            "scope": "api:read api:write",
            "resources": ["https://api.example.test/"]
        })
    }

    fn parse(v: serde_json::Value) -> Result<Client, ClientError> {
        Client::from_json(&v.to_string())
    }

    fn ec_jwk() -> serde_json::Value {
        let k = aims_crypto::SigningKey::generate(aims_crypto::Algorithm::ES256).unwrap();
        let mut j = serde_json::to_value(aims_crypto::Signer::public_jwk(&k)).unwrap();
        j["kid"] = "k1".into();
        j
    }

    fn private_jwk() -> serde_json::Value {
        with(ec_jwk(), "d", "AAAA")
    }

    fn with(mut v: serde_json::Value, k: &str, val: &str) -> serde_json::Value {
        v[k] = val.into();
        v
    }

    fn patched(patch: serde_json::Value) -> serde_json::Value {
        let mut v = base();
        for (k, val) in patch.as_object().unwrap() {
            v[k] = val.clone();
        }
        v
    }

    #[test]
    fn key_clients_parse_with_jwks_or_jwks_uri() {
        let c = parse(patched(serde_json::json!({
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [ec_jwk()]},
        })))
        .unwrap();
        assert!(c.metadata().jwks.is_some());
        for uri in ["https://agent.example/jwks", "http://127.0.0.1:8080/jwks"] {
            let c = parse(patched(serde_json::json!({
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks_uri": uri,
            })))
            .unwrap();
            assert_eq!(c.metadata().jwks_uri.as_deref(), Some(uri));
        }
    }

    #[test]
    fn secret_clients_parse_with_a_server_hash_and_are_flagged() {
        let s = crate::secret::ClientSecret::generate().unwrap();
        for m in ["client_secret_basic", "client_secret_post"] {
            let c = parse(patched(serde_json::json!({
                "token_endpoint_auth_method": m,
                "client_secret_hash": s.hash(),
            })))
            .unwrap();
            assert!(c.uses_legacy_secret());
            assert_eq!(c.auth_method().as_str(), m);
        }
    }

    #[test]
    fn a_spiffe_client_parses() {
        let c = parse(base()).unwrap();
        assert_eq!(c.id(), "agent-a");
        assert!(c.may_use(GrantType::ClientCredentials));
        assert!(!c.may_use(GrantType::AuthorizationCode));
        assert!(c.allowed_scopes().contains("api:write"));
        assert_eq!(c.access_token_lifetime(), 300);
        assert!(!c.uses_legacy_secret());
    }

    #[test]
    fn a_self_signed_client_parses() {
        let mut v = base();
        v["token_endpoint_auth_method"] = "self_signed_tls_client_auth".into();
        let k = aims_crypto::SigningKey::generate(aims_crypto::Algorithm::ES256).unwrap();
        let mut jwk = serde_json::to_value(aims_crypto::Signer::public_jwk(&k)).unwrap();
        jwk["x5c"] = serde_json::json!(["MIIB"]);
        v["jwks"] = serde_json::json!({ "keys": [jwk] });
        let c = parse(v).unwrap();
        assert_eq!(c.auth_method(), AuthMethod::SelfSignedTlsClientAuth);
    }

    #[test]
    fn each_rule_refuses() {
        let cases: Vec<(&str, serde_json::Value)> = vec![
            ("unknown field", serde_json::json!({"colour": "red"})),
            ("empty grants", serde_json::json!({"grant_types": []})),
            ("spiffe without id", serde_json::json!({"spiffe_id": null})),
            (
                "bad pattern",
                serde_json::json!({"spiffe_id": "spiffe://example.org/a*"}),
            ),
            (
                "pkjwt without keys",
                serde_json::json!({"token_endpoint_auth_method": "private_key_jwt"}),
            ),
            (
                "tls without san",
                serde_json::json!({"token_endpoint_auth_method": "tls_client_auth"}),
            ),
            (
                "public client_credentials",
                serde_json::json!({"token_endpoint_auth_method": "none"}),
            ),
            (
                "secret without hash",
                serde_json::json!({"token_endpoint_auth_method": "client_secret_basic"}),
            ),
            (
                "post secret without hash",
                serde_json::json!({"token_endpoint_auth_method": "client_secret_post"}),
            ),
            (
                "secret with an argon2 (operator) hash",
                serde_json::json!({"token_endpoint_auth_method": "client_secret_basic", "client_secret_hash": "$argon2id$x"}),
            ),
            (
                "secret with a short hash",
                serde_json::json!({"token_endpoint_auth_method": "client_secret_post", "client_secret_hash": "sha256:AAAA"}),
            ),
            (
                "pkjwt with both jwks and jwks_uri",
                serde_json::json!({"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://agent.example/jwks", "jwks": {"keys": [ec_jwk()]}}),
            ),
            (
                "plain http jwks_uri to a remote host",
                serde_json::json!({"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "http://agent.example/jwks"}),
            ),
            (
                "jwks_uri with a fragment",
                serde_json::json!({"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://agent.example/jwks#k"}),
            ),
            (
                "empty jwks",
                serde_json::json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": []}}),
            ),
            (
                "private jwk",
                serde_json::json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [private_jwk()]}}),
            ),
            (
                "symmetric jwk",
                serde_json::json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}),
            ),
            (
                "encryption jwk",
                serde_json::json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [with(ec_jwk(), "use", "enc")]}}),
            ),
            (
                "jwk with a refused alg",
                serde_json::json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [with(ec_jwk(), "alg", "HS256")]}}),
            ),
            (
                "hash on another method",
                serde_json::json!({"client_secret_hash": "$argon2id$x"}),
            ),
            (
                "lifetime 0",
                serde_json::json!({"access_token_lifetime": 0}),
            ),
            (
                "lifetime too long",
                serde_json::json!({"access_token_lifetime": 86400}),
            ),
            (
                "relative resource",
                serde_json::json!({"resources": ["/api"]}),
            ),
            (
                "fragment resource",
                serde_json::json!({"resources": ["https://a/#x"]}),
            ),
            (
                "code without redirect",
                serde_json::json!({"grant_types": ["authorization_code"]}),
            ),
            ("bad client id", serde_json::json!({"client_id": "a\nb"})),
            (
                "self-signed without x5c",
                serde_json::json!({
                    "token_endpoint_auth_method": "self_signed_tls_client_auth",
                    "jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]}
                }),
            ),
            (
                "self-signed x5c not base64",
                serde_json::json!({
                    "token_endpoint_auth_method": "self_signed_tls_client_auth",
                    "jwks": {"keys": [{"kty": "EC", "x5c": ["not base64!"]}]}
                }),
            ),
            (
                "self-signed empty x5c",
                serde_json::json!({
                    "token_endpoint_auth_method": "self_signed_tls_client_auth",
                    "jwks": {"keys": [{"kty": "EC", "x5c": []}]}
                }),
            ),
        ];
        for (name, patch) in cases {
            let mut v = base();
            for (k, val) in patch.as_object().unwrap() {
                if val.is_null() {
                    v.as_object_mut().unwrap().remove(k);
                } else {
                    v[k] = val.clone();
                }
            }
            assert!(parse(v).is_err(), "{name}");
        }
    }
}
