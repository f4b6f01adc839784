//! Client keys published at a `jwks_uri` (RFC 7591 §2), fetched and cached for
//! `private_key_jwt` verification and for the certificates of
//! `self_signed_tls_client_auth` (RFC 8705 §2.2: the first `x5c` entry of each key).
//!
//! | Rule | Failure |
//! |---|---|
//! | `https` only; `http` only when the operator allows it, and then only to a loopback host; no fragment, no userinfo | [`JwksUriError::Url`] |
//! | redirects are never followed | [`JwksUriError::Redirect`] |
//! | status 200 only | [`JwksUriError::Status`] |
//! | a body of at most [`MAX_JWKS_BYTES`]; the client's timeouts bound the time | [`JwksUriError::TooLarge`], [`JwksUriError::Transport`] |
//! | a JWK set whose keys pass the rules of inline `jwks` ([`crate::client::check_jwks`]: public, signature keys of an accepted algorithm) | [`JwksUriError::Invalid`] |
//! | the fetched set is used at most [`DEFAULT_MAX_AGE`] seconds, then fetched again | the fetch's error |
//! | an assertion naming a key the set lacks, or a client certificate the set does not register, triggers one refetch (rotation), at most once per [`DEFAULT_MIN_REFRESH_INTERVAL`] per client; concurrent callers wait for the one fetch in flight | [`JwksUriError::RateLimited`] when no fresh set exists |
//!
//! Every error maps to `invalid_client` at the endpoint; errors name no key material.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use aims_core::Clock;
use aims_crypto::Jwks;
use aims_jose::{Jws, KeyResolver, StaticKeys};

/// The largest JWK set body read: 64 KiB.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
/// Seconds a fetched key set is used before it is fetched again: 5 minutes.
pub const DEFAULT_MAX_AGE: i64 = 300;
/// Minimum seconds between two fetches of one client's set (unknown `kid`s, failures).
pub const DEFAULT_MIN_REFRESH_INTERVAL: i64 = 10;
/// Timeout of one fetch.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Connect timeout of one fetch.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The most clients whose sets are cached (the map starts over when full).
const MAX_ENTRIES: usize = 10_000;

/// Why a client's `jwks_uri` could not give keys. Display strings hold no key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwksUriError {
    /// The URL is not acceptable.
    #[error("jwks_uri {0}")]
    Url(&'static str),
    /// Connecting or reading failed (including timeouts).
    #[error("jwks_uri could not be fetched")]
    Transport,
    /// A redirect was answered (never followed).
    #[error("jwks_uri answered a redirect (not followed)")]
    Redirect,
    /// Another status than 200.
    #[error("jwks_uri answered status {0}")]
    Status(u16),
    /// The body exceeds [`MAX_JWKS_BYTES`].
    #[error("jwks_uri answered more than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    /// The body is not an acceptable JWK set.
    #[error("jwks_uri did not answer an acceptable JWK set: {0}")]
    Invalid(String),
    /// The last fetch is too recent to fetch again, and no fresh set is cached.
    #[error("jwks_uri fetched too recently to fetch again")]
    RateLimited,
}

/// Checks a `jwks_uri`: absolute `https` (or `http` to a loopback host when
/// `allow_http`), no fragment, no userinfo.
pub fn check_jwks_uri(raw: &str, allow_http: bool) -> Result<reqwest::Url, JwksUriError> {
    let url = reqwest::Url::parse(raw).map_err(|_| JwksUriError::Url("is not a URL"))?;
    if url.fragment().is_some() {
        return Err(JwksUriError::Url("must not have a fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(JwksUriError::Url("must not carry credentials"));
    }
    let Some(host) = url.host_str() else {
        return Err(JwksUriError::Url("has no host"));
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if !allow_http => Err(JwksUriError::Url(
            "must be https ([oauth] allow_http_jwks_uri is off)",
        )),
        "http" => {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = host.eq_ignore_ascii_case("localhost")
                || bare
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if loopback {
                Ok(url)
            } else {
                Err(JwksUriError::Url("may be http only for a loopback host"))
            }
        }
        _ => Err(JwksUriError::Url("must be https")),
    }
}

/// An HTTP client fit for [`JwksUriCache`]: no redirects, [`FETCH_TIMEOUT`],
/// [`CONNECT_TIMEOUT`]. TLS uses the process-default rustls crypto provider, which the
/// caller installs first (`aims serve` does at start).
pub fn http_client() -> Result<reqwest::Client, JwksUriError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(FETCH_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .map_err(|_| JwksUriError::Transport)
}

#[derive(Debug, Default)]
struct Snapshot {
    keys: Arc<StaticKeys>,
    /// SHA-256 of the certificate each key registers (its first `x5c` entry).
    certificates: Arc<[[u8; 32]]>,
    fetched_at: Option<i64>,
    generation: u64,
}

#[derive(Debug)]
struct Entry {
    snapshot: RwLock<Arc<Snapshot>>,
    flight: tokio::sync::Mutex<()>,
    last_attempt: AtomicI64,
}

impl Entry {
    fn new() -> Self {
        Self {
            snapshot: RwLock::default(),
            flight: tokio::sync::Mutex::new(()),
            last_attempt: AtomicI64::new(i64::MIN),
        }
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Fetched client key sets, by client and `jwks_uri`. Cheap to clone.
#[derive(Clone)]
pub struct JwksUriCache {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    allow_http: bool,
    max_age: i64,
    min_refresh_interval: i64,
    entries: Mutex<HashMap<(String, String), Arc<Entry>>>,
}

impl std::fmt::Debug for JwksUriCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksUriCache")
            .field("allow_http", &self.inner.allow_http)
            .field("max_age", &self.inner.max_age)
            .finish_non_exhaustive()
    }
}

impl JwksUriCache {
    /// A cache fetching with `http` (see [`http_client`]), `https` only unless
    /// `allow_http` (then `http` to loopback hosts too).
    pub fn new(http: reqwest::Client, clock: Arc<dyn Clock>, allow_http: bool) -> Self {
        Self::with_limits(
            http,
            clock,
            allow_http,
            DEFAULT_MAX_AGE,
            DEFAULT_MIN_REFRESH_INTERVAL,
        )
    }

    /// A cache with its own max age and minimum refresh interval (seconds).
    pub fn with_limits(
        http: reqwest::Client,
        clock: Arc<dyn Clock>,
        allow_http: bool,
        max_age: i64,
        min_refresh_interval: i64,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                http,
                clock,
                allow_http,
                max_age: max_age.max(1),
                min_refresh_interval: min_refresh_interval.max(0),
                entries: Mutex::default(),
            }),
        }
    }

    /// Whether `http` URLs (to loopback hosts) are allowed.
    pub fn allows_http(&self) -> bool {
        self.inner.allow_http
    }

    fn entry(&self, client_id: &str, uri: &str) -> Arc<Entry> {
        let mut entries = self
            .inner
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let key = (client_id.to_owned(), uri.to_owned());
        if let Some(e) = entries.get(&key) {
            return Arc::clone(e);
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        let e = Arc::new(Entry::new());
        entries.insert(key, Arc::clone(&e));
        e
    }

    /// The keys of `client_id` published at `uri`, under the scope `client_id`, able to
    /// verify `assertion` if the set has its key: the cached set while fresh and
    /// holding the assertion's key, else a fetch (single-flight, rate-limited). The
    /// assertion's header is read unverified; it only decides whether to fetch.
    pub async fn keys_for(
        &self,
        client_id: &str,
        uri: &str,
        assertion: &str,
    ) -> Result<Arc<StaticKeys>, JwksUriError> {
        let header = Jws::decode(assertion).ok().map(|j| j.header);
        let snapshot = self
            .snapshot_for(client_id, uri, |snap| {
                header.as_ref().is_none_or(|h| {
                    snap.keys
                        .resolve(client_id, h.kid.as_deref(), h.alg)
                        .is_ok()
                })
            })
            .await?;
        Ok(Arc::clone(&snapshot.keys))
    }

    /// SHA-256 digests of the certificates `client_id` registers at `uri` (the first
    /// `x5c` entry of each key, RFC 8705 §2.2): the cached set while fresh and holding
    /// `presented`, else a fetch (single-flight, rate-limited). The caller compares
    /// `presented` with every digest itself; here the digest only decides whether to
    /// fetch.
    pub async fn certificates_for(
        &self,
        client_id: &str,
        uri: &str,
        presented: &[u8; 32],
    ) -> Result<Arc<[[u8; 32]]>, JwksUriError> {
        let snapshot = self
            .snapshot_for(client_id, uri, |snap| {
                snap.certificates.iter().any(|c| c == presented)
            })
            .await?;
        Ok(Arc::clone(&snapshot.certificates))
    }

    /// The cached set of `client_id` at `uri` while fresh and `satisfies` it, else a
    /// fetch: single-flight, at most once per minimum refresh interval.
    async fn snapshot_for(
        &self,
        client_id: &str,
        uri: &str,
        satisfies: impl Fn(&Snapshot) -> bool,
    ) -> Result<Arc<Snapshot>, JwksUriError> {
        let url = check_jwks_uri(uri, self.inner.allow_http)?;
        let entry = self.entry(client_id, uri);
        let now = self.inner.clock.now();
        let fresh = |snap: &Snapshot| {
            snap.fetched_at
                .is_some_and(|t| now.saturating_sub(t) < self.inner.max_age)
        };
        let seen = entry.snapshot();
        if fresh(&seen) && satisfies(&seen) {
            return Ok(seen);
        }
        let _flight = entry.flight.lock().await;
        let current = entry.snapshot();
        if current.generation != seen.generation {
            // Another request fetched while this one waited.
            return Ok(current);
        }
        let last = entry.last_attempt.load(Ordering::Acquire);
        if last != i64::MIN && now < last.saturating_add(self.inner.min_refresh_interval) {
            return if fresh(&current) {
                // The key or certificate is unknown and the set was fetched just now:
                // the credential fails against the current set.
                Ok(current)
            } else {
                Err(JwksUriError::RateLimited)
            };
        }
        entry.last_attempt.store(now, Ordering::Release);
        let jwks = self.fetch(&url).await.inspect_err(|e| {
            tracing::warn!(target: "aims::oauth", client_id, error = %e, "client jwks_uri fetch failed");
        })?;
        let mut keys = StaticKeys::new();
        keys.add_jwks(client_id.to_owned(), &jwks);
        let certificates = crate::authn::certificate_digests(&jwks);
        let next = Arc::new(Snapshot {
            keys: Arc::new(keys),
            certificates,
            fetched_at: Some(self.inner.clock.now()),
            generation: current.generation.wrapping_add(1),
        });
        *entry
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::clone(&next);
        tracing::debug!(target: "aims::oauth", client_id, keys = jwks.keys.len(), "client jwks_uri fetched");
        Ok(next)
    }

    async fn fetch(&self, url: &reqwest::Url) -> Result<Jwks, JwksUriError> {
        let mut response = self
            .inner
            .http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|_| JwksUriError::Transport)?;
        let status = response.status();
        if status.is_redirection() || response.url() != url {
            return Err(JwksUriError::Redirect);
        }
        if status != reqwest::StatusCode::OK {
            return Err(JwksUriError::Status(status.as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
        {
            return Err(JwksUriError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|_| JwksUriError::Transport)?
        {
            if body.len().saturating_add(chunk.len()) > MAX_JWKS_BYTES {
                return Err(JwksUriError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let jwks: Jwks = serde_json::from_slice(&body)
            .map_err(|_| JwksUriError::Invalid("not a JWK set".to_owned()))?;
        crate::client::check_jwks(&jwks).map_err(|e| JwksUriError::Invalid(e.0))?;
        Ok(jwks)
    }
}

/// Installs the process-default rustls provider reqwest needs (tests only).
#[cfg(test)]
pub(crate) fn test_http_client() -> reqwest::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    #[allow(clippy::unwrap_used)]
    http_client().unwrap()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn uri_rules() {
        assert!(check_jwks_uri("https://agent.example/jwks", false).is_ok());
        assert!(check_jwks_uri("http://127.0.0.1:8080/jwks", true).is_ok());
        assert!(check_jwks_uri("http://[::1]:8080/jwks", true).is_ok());
        assert!(check_jwks_uri("http://localhost/jwks", true).is_ok());
        let refused = [
            ("http://127.0.0.1:8080/jwks", false),
            ("http://agent.example/jwks", true),
            ("https://agent.example/jwks#k", false),
            ("https://user:pw@agent.example/jwks", false),
            ("ftp://agent.example/jwks", true),
            ("/jwks", false),
            ("not a url", false),
        ];
        for (u, allow) in refused {
            assert!(check_jwks_uri(u, allow).is_err(), "{u}");
        }
    }

    #[tokio::test]
    async fn a_refused_uri_is_never_fetched() {
        let cache = JwksUriCache::new(test_http_client(), Arc::new(aims_core::SystemClock), false);
        let e = cache
            .keys_for("c", "http://127.0.0.1:9/jwks", "x.y.z")
            .await
            .unwrap_err();
        assert!(matches!(e, JwksUriError::Url(_)));
    }

    #[tokio::test]
    async fn an_unreachable_uri_fails_then_is_rate_limited() {
        // Port 9 (discard) on loopback: nothing listens in the test environment.
        let cache = JwksUriCache::new(
            test_http_client(),
            Arc::new(aims_core::ManualClock::new(1_000)),
            true,
        );
        let e = cache
            .keys_for("c", "http://127.0.0.1:9/jwks", "x.y.z")
            .await
            .unwrap_err();
        assert_eq!(e, JwksUriError::Transport);
        let e = cache
            .keys_for("c", "http://127.0.0.1:9/jwks", "x.y.z")
            .await
            .unwrap_err();
        assert_eq!(e, JwksUriError::RateLimited);
    }
}
