//! A cache of the authorization server's JWKS for local validation of RFC 9068 access
//! tokens, following key rotation.
//!
//! - **Source.** A configured `jwks_uri`, or the one in the AS's RFC 8414 metadata
//!   (`/.well-known/oauth-authorization-server` inserted before the issuer's path),
//!   whose `issuer` must be byte-identical to the configured issuer (RFC 8414
//!   section 3.3). Metadata and JWKS are fetched without following redirects, with a
//!   capped body.
//! - **Hot path.** [`JwksCache`] implements [`KeyResolver`] over an immutable snapshot:
//!   no await, no lock held across I/O.
//! - **Refresh.** Before validation the guard calls [`JwksCache::prepare`]: when the
//!   token's key (`kid`, `alg`) is not in the snapshot the cache refreshes and waits,
//!   at most once per [`JwksCacheBuilder::min_refresh_interval`] (so tokens with
//!   made-up `kid`s cannot make the RS hammer the AS), and single-flight: concurrent
//!   callers wait for the one fetch in progress instead of starting their own. When the
//!   snapshot is older than the TTL, a background refresh runs and the current keys
//!   keep serving. A failed refresh keeps the previous keys.
//! - **Keys** are the JWKS's signature keys (`use` absent or `sig`), parsed once per
//!   refresh; keys that do not parse are skipped (RFC 7517 section 5).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use aims_core::{Clock, SystemClock};
use aims_crypto::{Algorithm, Jwks, VerifyingKey};
use aims_jose::{JoseError, Jws, KeyResolver, StaticKeys};

use crate::fetch::{DEFAULT_MAX_RESPONSE_BYTES, FetchError, check_url, get_json};

/// Default time a fetched JWKS is used before a background refresh: 5 minutes.
pub const DEFAULT_JWKS_TTL: i64 = 300;
/// Default minimum interval between two refreshes triggered by unknown keys: 30 s.
pub const DEFAULT_MIN_REFRESH_INTERVAL: i64 = 30;

/// The RFC 8414 well-known URL of `issuer`'s metadata.
pub fn authorization_server_metadata_url(issuer: &str) -> Result<String, FetchError> {
    let url = check_url(issuer)?;
    if url.query().is_some() {
        return Err(FetchError::InsecureUrl(issuer.to_owned()));
    }
    let path = url.path().trim_end_matches('/');
    let origin = url.origin().ascii_serialization();
    Ok(format!(
        "{origin}/.well-known/oauth-authorization-server{path}"
    ))
}

#[derive(Debug, Default)]
struct Snapshot {
    keys: StaticKeys,
    kids: Vec<String>,
    fetched_at: Option<i64>,
    generation: u64,
}

#[derive(Debug)]
struct Inner {
    issuer: String,
    metadata_url: Option<reqwest::Url>,
    jwks_uri: RwLock<Option<reqwest::Url>>,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    ttl: i64,
    min_refresh_interval: i64,
    max_bytes: usize,
    snapshot: RwLock<Arc<Snapshot>>,
    refresh: tokio::sync::Mutex<()>,
    last_attempt: AtomicI64,
    background: AtomicBool,
    fetches: AtomicU64,
}

/// The authorization server's signing keys, fetched and kept current. Cheap to clone.
#[derive(Debug, Clone)]
pub struct JwksCache {
    inner: Arc<Inner>,
}

/// Builds a [`JwksCache`].
#[derive(Debug)]
pub struct JwksCacheBuilder {
    issuer: String,
    jwks_uri: Option<String>,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    ttl: i64,
    min_refresh_interval: i64,
    max_bytes: usize,
}

impl JwksCacheBuilder {
    /// Fetches the keys from `uri` instead of discovering `jwks_uri` from the issuer's
    /// RFC 8414 metadata.
    pub fn jwks_uri(mut self, uri: impl Into<String>) -> Self {
        self.jwks_uri = Some(uri.into());
        self
    }

    /// The clock for TTL and rate limiting (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Seconds a fetched JWKS is used before a background refresh.
    pub fn ttl(mut self, seconds: i64) -> Self {
        self.ttl = seconds.max(1);
        self
    }

    /// Minimum seconds between two refreshes triggered by unknown keys.
    pub fn min_refresh_interval(mut self, seconds: i64) -> Self {
        self.min_refresh_interval = seconds.max(0);
        self
    }

    /// The largest metadata or JWKS body read.
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Checks the URLs and returns an empty cache (fetched on first use, or with
    /// [`JwksCache::refresh`]).
    pub fn build(self) -> Result<JwksCache, FetchError> {
        let (metadata_url, jwks_uri) = match &self.jwks_uri {
            Some(u) => (None, Some(check_url(u)?)),
            None => (
                Some(check_url(&authorization_server_metadata_url(
                    &self.issuer,
                )?)?),
                None,
            ),
        };
        Ok(JwksCache {
            inner: Arc::new(Inner {
                issuer: self.issuer,
                metadata_url,
                jwks_uri: RwLock::new(jwks_uri),
                http: self.http,
                clock: self.clock,
                ttl: self.ttl,
                min_refresh_interval: self.min_refresh_interval,
                max_bytes: self.max_bytes,
                snapshot: RwLock::new(Arc::new(Snapshot::default())),
                refresh: tokio::sync::Mutex::new(()),
                last_attempt: AtomicI64::new(i64::MIN),
                background: AtomicBool::new(false),
                fetches: AtomicU64::new(0),
            }),
        })
    }
}

impl JwksCache {
    /// A cache of `issuer`'s keys fetched with `http` (see [`crate::as_http_client`];
    /// a caller-provided client should not follow redirects: a redirected response is
    /// refused either way).
    pub fn builder(issuer: impl Into<String>, http: reqwest::Client) -> JwksCacheBuilder {
        JwksCacheBuilder {
            issuer: issuer.into(),
            jwks_uri: None,
            http,
            clock: Arc::new(SystemClock),
            ttl: DEFAULT_JWKS_TTL,
            min_refresh_interval: DEFAULT_MIN_REFRESH_INTERVAL,
            max_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }

    /// The issuer whose keys these are.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The `kid`s of the current snapshot.
    pub fn kids(&self) -> Vec<String> {
        self.snapshot().kids.clone()
    }

    /// How many JWKS fetches were attempted.
    pub fn fetch_count(&self) -> u64 {
        self.inner.fetches.load(Ordering::Relaxed)
    }

    /// Whether keys were fetched at least once.
    pub fn is_loaded(&self) -> bool {
        self.snapshot().fetched_at.is_some()
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.inner
            .snapshot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Fetches now (waiting for a refresh already in progress instead of starting a
    /// second one), ignoring the rate limit.
    pub async fn refresh(&self) -> Result<(), FetchError> {
        let seen = self.snapshot().generation;
        self.refresh_from(seen, false).await
    }

    /// Makes the key `token` names available if it can: refreshes (rate-limited,
    /// single-flight) when the key is unknown, and starts a background refresh when the
    /// snapshot is older than the TTL. The token header is read unverified; it only
    /// decides whether to refresh.
    pub async fn prepare(&self, token: &str) -> Result<(), FetchError> {
        let Ok(jws) = Jws::decode(token) else {
            return Ok(());
        };
        let (kid, alg) = (jws.header.kid.as_deref(), jws.header.alg);
        let snap = self.snapshot();
        let known = snap.keys.resolve(&self.inner.issuer, kid, alg).is_ok();
        if !known {
            return match self.refresh_from(snap.generation, true).await {
                Err(FetchError::RateLimited) if snap.fetched_at.is_some() => Ok(()),
                other => other,
            };
        }
        let now = self.inner.clock.now();
        let stale = snap
            .fetched_at
            .is_some_and(|t| now.saturating_sub(t) >= self.inner.ttl);
        if stale
            && let Ok(rt) = tokio::runtime::Handle::try_current()
            && !self.inner.background.swap(true, Ordering::AcqRel)
        {
            let this = self.clone();
            let seen = snap.generation;
            rt.spawn(async move {
                if let Err(e) = this.refresh_from(seen, false).await {
                    tracing::warn!(issuer = %this.inner.issuer, error = %e, "JWKS refresh failed; keeping the previous keys");
                }
                this.inner.background.store(false, Ordering::Release);
            });
        }
        Ok(())
    }

    /// Refreshes unless another refresh replaced generation `seen` meanwhile, or (when
    /// `rate_limited`) the last attempt is too recent.
    async fn refresh_from(&self, seen: u64, rate_limited: bool) -> Result<(), FetchError> {
        let i = &self.inner;
        let _flight = i.refresh.lock().await;
        if self.snapshot().generation != seen {
            return Ok(());
        }
        let now = i.clock.now();
        let last = i.last_attempt.load(Ordering::Acquire);
        if rate_limited && last != i64::MIN && now < last.saturating_add(i.min_refresh_interval) {
            return Err(FetchError::RateLimited);
        }
        i.last_attempt.store(now, Ordering::Release);
        i.fetches.fetch_add(1, Ordering::Relaxed);
        let jwks = self.fetch().await.inspect_err(|e| {
            tracing::warn!(issuer = %i.issuer, error = %e, "JWKS fetch failed");
        })?;
        let mut keys = StaticKeys::new();
        keys.add_jwks(i.issuer.clone(), &jwks);
        let kids = jwks
            .keys
            .iter()
            .filter(|k| matches!(k.use_.as_deref(), None | Some("sig")))
            .filter(|k| VerifyingKey::from_jwk(k).is_ok())
            .filter_map(|k| k.kid.clone())
            .collect();
        let next = Snapshot {
            keys,
            kids,
            fetched_at: Some(i.clock.now()),
            generation: seen.wrapping_add(1),
        };
        *i.snapshot.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(next);
        Ok(())
    }

    async fn fetch(&self) -> Result<Jwks, FetchError> {
        let i = &self.inner;
        let known = i
            .jwks_uri
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let uri = match known {
            Some(u) => u,
            None => {
                let meta_url = i.metadata_url.as_ref().ok_or(FetchError::Malformed(
                    "neither jwks_uri nor metadata configured",
                ))?;
                let meta = get_json(&i.http, meta_url, i.max_bytes).await?;
                // RFC 8414 section 3.3: byte-identical issuer.
                if meta.get("issuer").and_then(|v| v.as_str()) != Some(i.issuer.as_str()) {
                    return Err(FetchError::IssuerMismatch);
                }
                let raw = meta
                    .get("jwks_uri")
                    .and_then(|v| v.as_str())
                    .ok_or(FetchError::Malformed("metadata has no jwks_uri"))?;
                let uri = check_url(raw)?;
                *i.jwks_uri.write().unwrap_or_else(PoisonError::into_inner) = Some(uri.clone());
                uri
            }
        };
        let doc = get_json(&i.http, &uri, i.max_bytes).await?;
        serde_json::from_value::<Jwks>(doc).map_err(|_| FetchError::Malformed("not a JWK set"))
    }
}

impl KeyResolver for JwksCache {
    fn resolve(
        &self,
        scope: &str,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<VerifyingKey, JoseError> {
        if scope != self.inner.issuer {
            return Err(JoseError::UnknownKey);
        }
        self.snapshot().keys.resolve(scope, kid, alg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_urls() {
        assert_eq!(
            authorization_server_metadata_url("https://as.example").unwrap(),
            "https://as.example/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            authorization_server_metadata_url("https://as.example/tenant/1").unwrap(),
            "https://as.example/.well-known/oauth-authorization-server/tenant/1"
        );
        assert!(authorization_server_metadata_url("http://as.example").is_err());
    }
}
