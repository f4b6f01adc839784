//! Typed configuration of the guard, built with [`GuardConfig::builder`].

use std::collections::BTreeSet;
use std::sync::{Arc, PoisonError, RwLock};

use aims_core::{Clock, SystemClock, TrustDomain};
use aims_crypto::Signer;
use aims_httpsig::wimse::ResponseSigner;
use aims_jose::KeyResolver;
use aims_jose::dpop::normalize_http_uri;
use aims_jose::wit::WitProfile;
use aims_pki::TrustStore;

use crate::audit::{AuditSink, LogSink};
use crate::introspection::Introspector;
use crate::jwks::JwksCache;
use crate::{Mechanism, ReplayCache};

/// Default request body limit when a body must be buffered (HTTP signatures): 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;
/// Default [`GuardConfigBuilder::response_body_limit`]: 16 MiB.
pub const DEFAULT_RESPONSE_BODY_LIMIT: usize = 16 * 1024 * 1024;
/// Default DPoP nonce rotation interval, in seconds.
pub const DEFAULT_NONCE_INTERVAL: i64 = 300;

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No public authority configured: WPT `aud`, `wimse-aud` and DPoP `htu` could
    /// match nothing.
    #[error("at least one public authority (https://host[:port]) is required")]
    NoAuthority,
    /// An authority is not an absolute http(s) origin without path, query or fragment.
    #[error("`{0}` is not an origin (scheme://host[:port])")]
    InvalidAuthority(String),
    /// No mechanism enabled.
    #[error("no authentication mechanism enabled")]
    NoMechanism,
    /// DPoP or Bearer enabled without an access token issuer.
    #[error("the DPoP and Bearer mechanisms need an access token issuer (access_tokens)")]
    MissingIssuer,
    /// The access token issuer has no validation source (keys, JWKS, introspection).
    #[error("the access token issuer needs keys, a JWKS cache or an introspector")]
    NoTokenSource,
    /// The resource metadata URL is not an absolute https URL.
    #[error("`{0}` is not a valid resource metadata URL")]
    InvalidResourceMetadata(String),
    /// The random generator failed while creating the first DPoP nonce.
    #[error("random generator failed")]
    Random,
}

/// The access tokens the DPoP and Bearer mechanisms accept: issued by one
/// authorization server for this resource, validated locally as RFC 9068 JWTs (static
/// keys or a [`JwksCache`]) and/or by RFC 7662 introspection (opaque tokens).
#[derive(Clone)]
pub struct AccessTokenIssuer {
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) keys: Option<Arc<dyn KeyResolver>>,
    pub(crate) jwks: Option<JwksCache>,
    pub(crate) introspection: Option<Introspector>,
}

impl AccessTokenIssuer {
    /// Tokens whose `iss` is `issuer` and whose `aud` contains `audience` (the
    /// resource identifier). Add at least one source.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            keys: None,
            jwks: None,
            introspection: None,
        }
    }

    /// Validates JWTs locally with `keys` (looked up under the issuer).
    pub fn keys(mut self, keys: Arc<dyn KeyResolver>) -> Self {
        self.keys = Some(keys);
        self.jwks = None;
        self
    }

    /// Validates JWTs locally with the AS's JWKS, refreshed on rotation.
    pub fn jwks(mut self, cache: JwksCache) -> Self {
        self.keys = Some(Arc::new(cache.clone()));
        self.jwks = Some(cache);
        self
    }

    /// Introspects tokens that are not `at+jwt` JWTs (all tokens when no local keys).
    pub fn introspection(mut self, introspector: Introspector) -> Self {
        self.introspection = Some(introspector);
        self
    }

    /// The issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The audience (resource identifier) tokens must carry.
    pub fn audience(&self) -> &str {
        &self.audience
    }
}

impl std::fmt::Debug for AccessTokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTokenIssuer")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("local", &self.keys.is_some())
            .field("jwks", &self.jwks.is_some())
            .field("introspection", &self.introspection.is_some())
            .finish_non_exhaustive()
    }
}

/// The server's WIT and key for signing responses; replace them on rotation with
/// [`ResponseSigning::update`].
#[derive(Debug)]
pub struct ResponseSigning {
    clock: Arc<dyn Clock>,
    current: RwLock<Option<Arc<ResponseSigner>>>,
}

impl ResponseSigning {
    /// Empty until [`ResponseSigning::update`]: requests asking for a signed response
    /// are refused with 501 meanwhile.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            current: RwLock::new(None),
        }
    }

    /// Signs from now on with `wit` and `key` (the key `wit`'s `cnf.jwk` confirms).
    pub fn update(&self, wit: impl Into<String>, key: Arc<dyn Signer>) {
        let signer = Arc::new(ResponseSigner::new(wit, key, self.clock.clone()));
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(signer);
    }

    /// The current signer.
    pub(crate) fn current(&self) -> Option<Arc<ResponseSigner>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The guard's configuration. See [`GuardConfigBuilder`] for each item.
#[derive(Debug, Clone)]
pub struct GuardConfig {
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) mechanisms: BTreeSet<Mechanism>,
    pub(crate) authorities: Vec<String>,
    pub(crate) trust_domains: Vec<TrustDomain>,
    pub(crate) trust: Arc<TrustStore>,
    pub(crate) wit_profile: WitProfile,
    pub(crate) access_tokens: Option<AccessTokenIssuer>,
    pub(crate) resource_metadata: Option<String>,
    pub(crate) jwt_svid_audience: Option<String>,
    pub(crate) replay: ReplayCache,
    pub(crate) nonce_interval: i64,
    pub(crate) body_limit: usize,
    pub(crate) response_body_limit: usize,
    pub(crate) other_token_headers: Vec<http::HeaderName>,
    pub(crate) response_signing: Option<Arc<ResponseSigning>>,
    pub(crate) audit: Arc<dyn AuditSink>,
    pub(crate) leeway: i64,
    pub(crate) plain_client_ids: bool,
}

impl GuardConfig {
    /// A builder validating WITs, JWT-SVIDs and client certificates against `trust`
    /// (read live: bundle updates apply to the next request).
    pub fn builder(trust: Arc<TrustStore>) -> GuardConfigBuilder {
        GuardConfigBuilder {
            cfg: GuardConfig {
                clock: Arc::new(SystemClock),
                mechanisms: BTreeSet::new(),
                authorities: Vec::new(),
                trust_domains: Vec::new(),
                trust,
                wit_profile: WitProfile::WitSvid,
                access_tokens: None,
                resource_metadata: None,
                jwt_svid_audience: None,
                replay: ReplayCache::default(),
                nonce_interval: DEFAULT_NONCE_INTERVAL,
                body_limit: DEFAULT_BODY_LIMIT,
                response_body_limit: DEFAULT_RESPONSE_BODY_LIMIT,
                other_token_headers: Vec::new(),
                response_signing: None,
                audit: Arc::new(LogSink),
                leeway: aims_jose::time::DEFAULT_LEEWAY,
                plain_client_ids: false,
            },
            raw_authorities: Vec::new(),
        }
    }

    /// The normalised public origins.
    pub fn authorities(&self) -> &[String] {
        &self.authorities
    }

    /// The enabled mechanisms.
    pub fn mechanisms(&self) -> &BTreeSet<Mechanism> {
        &self.mechanisms
    }
}

/// Builds a [`GuardConfig`].
#[derive(Debug)]
pub struct GuardConfigBuilder {
    cfg: GuardConfig,
    raw_authorities: Vec<String>,
}

impl GuardConfigBuilder {
    /// The clock for every time check (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.cfg.clock = clock;
        self
    }

    /// Enables a mechanism (routes then choose among the enabled ones).
    pub fn enable(mut self, m: Mechanism) -> Self {
        self.cfg.mechanisms.insert(m);
        self
    }

    /// A public origin of the service (`https://svc-b.example.test`), as callers address
    /// it. WPT `aud`, `wimse-aud` and DPoP `htu` must be this origin plus the request
    /// path; the `Host` header is never used, so the guard works behind a TLS-terminating
    /// proxy.
    pub fn authority(mut self, origin: impl Into<String>) -> Self {
        self.raw_authorities.push(origin.into());
        self
    }

    /// Accepts callers of this trust domain (may be repeated). Without any, every trust
    /// domain with a bundle in the trust store is accepted.
    pub fn trust_domain(mut self, td: TrustDomain) -> Self {
        self.cfg.trust_domains.push(td);
        self
    }

    /// The WIT profile (default: WIT-SVID, whose keys come from the bundles' `wit-svid`
    /// keys).
    pub fn wit_profile(mut self, profile: WitProfile) -> Self {
        self.cfg.wit_profile = profile;
        self
    }

    /// The access tokens accepted with DPoP and Bearer: issued by `issuer` for
    /// `audience`, verified with `keys` (looked up under the issuer). Shorthand for
    /// [`GuardConfigBuilder::access_token_issuer`] with [`AccessTokenIssuer::keys`].
    pub fn access_tokens(
        self,
        issuer: impl Into<String>,
        audience: impl Into<String>,
        keys: Arc<dyn KeyResolver>,
    ) -> Self {
        self.access_token_issuer(AccessTokenIssuer::new(issuer, audience).keys(keys))
    }

    /// The access tokens accepted with DPoP and Bearer.
    pub fn access_token_issuer(mut self, issuer: AccessTokenIssuer) -> Self {
        self.cfg.access_tokens = Some(issuer);
        self
    }

    /// The RFC 9728 protected resource metadata URL put in every OAuth challenge
    /// (`resource_metadata`); routes may override it
    /// ([`crate::GuardLayer::resource_metadata`]).
    pub fn resource_metadata(mut self, url: impl Into<String>) -> Self {
        self.cfg.resource_metadata = Some(url.into());
        self
    }

    /// The audience JWT-SVID bearer tokens must carry (default: the first authority).
    pub fn jwt_svid_audience(mut self, audience: impl Into<String>) -> Self {
        self.cfg.jwt_svid_audience = Some(audience.into());
        self
    }

    /// Where proof `jti`s and signature nonces are remembered (default: memory, 100 000
    /// entries).
    pub fn replay_cache(mut self, replay: ReplayCache) -> Self {
        self.cfg.replay = replay;
        self
    }

    /// DPoP nonce rotation interval in seconds (current and previous accepted).
    pub fn dpop_nonce_interval(mut self, seconds: i64) -> Self {
        self.cfg.nonce_interval = seconds;
        self
    }

    /// The largest body buffered for signature verification (413 above).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.cfg.body_limit = bytes;
        self
    }

    /// The largest response body buffered to sign it (a caller asked for a signed
    /// response, `wimse-sign-response`): a larger answer is replaced by 500 `internal`
    /// rather than held in memory whole.
    pub fn response_body_limit(mut self, bytes: usize) -> Self {
        self.cfg.response_body_limit = bytes;
        self
    }

    /// A header carrying another context token a WPT must cover with `oth`.
    pub fn other_token_header(mut self, name: http::HeaderName) -> Self {
        self.cfg.other_token_headers.push(name);
        self
    }

    /// The source of the server's WIT and key for signing responses on request.
    pub fn response_signing(mut self, signing: Arc<ResponseSigning>) -> Self {
        self.cfg.response_signing = Some(signing);
        self
    }

    /// Where audit events go (default: [`LogSink`]).
    pub fn audit_sink(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.cfg.audit = sink;
        self
    }

    /// Clock-skew allowance in seconds for every token and signature.
    pub fn leeway(mut self, seconds: i64) -> Self {
        self.cfg.leeway = seconds.max(0);
        self
    }

    /// Whether access tokens whose `client_id` is not a workload identifier (clients the
    /// authorization server registered without a SPIFFE or WIMSE ID) are accepted; their
    /// agent is then [`AgentId::Client`](crate::AgentId::Client). Off by default: only
    /// agents with a workload identity pass.
    pub fn plain_client_ids(mut self, accept: bool) -> Self {
        self.cfg.plain_client_ids = accept;
        self
    }

    /// Checks and returns the configuration.
    pub fn build(mut self) -> Result<GuardConfig, ConfigError> {
        for raw in &self.raw_authorities {
            let origin =
                parse_origin(raw).ok_or_else(|| ConfigError::InvalidAuthority(raw.clone()))?;
            if !self.cfg.authorities.contains(&origin) {
                self.cfg.authorities.push(origin);
            }
        }
        if self.cfg.authorities.is_empty() {
            return Err(ConfigError::NoAuthority);
        }
        if self.cfg.mechanisms.is_empty() {
            return Err(ConfigError::NoMechanism);
        }
        let wants_tokens = self.cfg.mechanisms.contains(&Mechanism::Dpop)
            || self.cfg.mechanisms.contains(&Mechanism::Bearer);
        if wants_tokens && self.cfg.access_tokens.is_none() {
            return Err(ConfigError::MissingIssuer);
        }
        if let Some(a) = &self.cfg.access_tokens
            && a.keys.is_none()
            && a.introspection.is_none()
        {
            return Err(ConfigError::NoTokenSource);
        }
        if let Some(url) = &self.cfg.resource_metadata {
            check_resource_metadata(url)?;
        }
        Ok(self.cfg)
    }
}

/// A resource metadata URL fit for a challenge: an absolute https URL (see
/// [`crate::fetch`]) without the characters a quoted-string would need escaped.
pub(crate) fn check_resource_metadata(url: &str) -> Result<(), ConfigError> {
    if crate::fetch::check_url(url).is_err() || url.contains(['"', '\\']) {
        return Err(ConfigError::InvalidResourceMetadata(url.to_owned()));
    }
    Ok(())
}

/// `scheme://host[:port]` normalised (lower-case host, default port removed), or `None`
/// when `raw` has a path other than `/`, a query or a fragment.
fn parse_origin(raw: &str) -> Option<String> {
    if raw.contains(['?', '#']) {
        return None;
    }
    let n = normalize_http_uri(raw)?;
    let origin = n.strip_suffix('/')?;
    // A path would leave a '/' after the authority.
    let after_scheme = origin.split_once("://")?.1;
    (!after_scheme.contains('/')).then(|| origin.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert_eq!(
            parse_origin("HTTPS://Svc.Example:443").as_deref(),
            Some("https://svc.example")
        );
        assert_eq!(
            parse_origin("http://a:8080/").as_deref(),
            Some("http://a:8080")
        );
        assert_eq!(parse_origin("https://a/path"), None);
        assert_eq!(parse_origin("https://a?x"), None);
        assert_eq!(parse_origin("ftp://a"), None);
    }
}
