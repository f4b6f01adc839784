//! RFC 7662 token introspection for opaque access tokens, with `private_key_jwt`
//! client authentication (RFC 7523, aims-jose `client_assertion`) and a response cache.
//!
//! - **Request.** `POST` form `token`, `token_type_hint=access_token`,
//!   `client_assertion_type`, `client_assertion` (a fresh assertion per call, `aud` =
//!   the AS issuer identifier as rfc7523bis asks), `client_id`. No redirects, capped
//!   body.
//! - **Cache.** Keyed by the SHA-256 of the token (the token itself is never kept).
//!   An active response is reused until the token's `exp` or the maximum TTL, whichever
//!   comes first; an inactive one for the maximum TTL. So a revocation is seen at most
//!   [`IntrospectorBuilder::max_cache_ttl`] late. Inactive answers are kept apart, in
//!   an eighth of the room: anyone can make them (random strings are inactive tokens),
//!   so they must not crowd out the answers for real tokens. Both parts are bounded:
//!   when one is full after dropping expired entries, the entry that expires first
//!   makes room. Concurrent misses for one token make one request (single flight).
//! - **Response checks** are the guard's ([`crate::AccessTokenIssuer`]): `active`,
//!   `exp`, `iss`, `aud`, `client_id`, `cnf`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use aims_core::{Clock, SystemClock};
use aims_crypto::Signer;
use aims_jose::Audience;
use aims_jose::access_token::{Actor, AuthorizationDetail, Confirmation, MAX_ACTOR_DEPTH};
use aims_jose::client_assertion::{self, ASSERTION_TYPE, ClientAssertionClaims};
use serde::Deserialize;
use serde_json::Value;

use crate::fetch::{DEFAULT_MAX_RESPONSE_BYTES, FetchError, check_url, form, send_capped};

/// Default longest time an introspection response is reused: 60 s.
pub const DEFAULT_INTROSPECTION_CACHE_TTL: i64 = 60;
/// Default number of cached introspection responses.
pub const DEFAULT_INTROSPECTION_CACHE_ENTRIES: usize = 10_000;
/// Lifetime of the client assertions sent to the AS.
const ASSERTION_LIFETIME: i64 = 60;

/// An RFC 7662 introspection response (the members AIMS uses).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[non_exhaustive]
pub struct Introspection {
    /// Whether the token is active.
    pub active: bool,
    /// Granted scope, space-separated.
    #[serde(default)]
    pub scope: Option<String>,
    /// The client the token was issued to (the agent).
    #[serde(default)]
    pub client_id: Option<String>,
    /// The resource owner (the user for delegated tokens).
    #[serde(default)]
    pub sub: Option<String>,
    /// Human-readable resource owner name.
    #[serde(default)]
    pub username: Option<String>,
    /// `Bearer` or `DPoP`.
    #[serde(default)]
    pub token_type: Option<String>,
    /// Expiry (Unix seconds).
    #[serde(default)]
    pub exp: Option<i64>,
    /// Issued at.
    #[serde(default)]
    pub iat: Option<i64>,
    /// Not before.
    #[serde(default)]
    pub nbf: Option<i64>,
    /// Audiences.
    #[serde(default)]
    pub aud: Option<Audience>,
    /// Issuer.
    #[serde(default)]
    pub iss: Option<String>,
    /// Token id.
    #[serde(default)]
    pub jti: Option<String>,
    /// Confirmation (RFC 9449 `jkt`, RFC 8705 `x5t#S256`).
    #[serde(default)]
    pub cnf: Option<Confirmation>,
    /// RFC 9396 authorization details.
    #[serde(default)]
    pub authorization_details: Option<Vec<AuthorizationDetail>>,
    /// Authentication context class (RFC 9470).
    #[serde(default)]
    pub acr: Option<String>,
    /// Time of the user authentication (RFC 9470).
    #[serde(default)]
    pub auth_time: Option<i64>,
    /// RFC 8693 actor chain, as sent.
    #[serde(default)]
    pub act: Option<Value>,
}

impl Introspection {
    /// The `act` chain, outermost (current actor) first; `None` when malformed.
    pub fn actors(&self) -> Option<Vec<Actor>> {
        let mut chain = Vec::new();
        let mut next = self.act.clone();
        while let Some(v) = next.take() {
            if chain.len() == MAX_ACTOR_DEPTH {
                return None;
            }
            let Value::Object(mut o) = v else {
                return None;
            };
            let Some(Value::String(sub)) = o.remove("sub") else {
                return None;
            };
            if sub.is_empty() {
                return None;
            }
            let iss = match o.remove("iss") {
                None => None,
                Some(Value::String(s)) => Some(s),
                Some(_) => return None,
            };
            next = o.remove("act");
            let mut a = Actor::new(sub);
            a.iss = iss;
            a.extra = o;
            chain.push(a);
        }
        Some(chain)
    }
}

/// A cached response and until when (exclusive) it is reused.
type Cached = (i64, Arc<Introspection>);

#[derive(Debug)]
struct Inner {
    endpoint: reqwest::Url,
    as_issuer: String,
    client_id: String,
    signer: Arc<dyn Signer>,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    max_ttl: i64,
    max_entries: usize,
    max_bytes: usize,
    cache: Mutex<Cache>,
    /// One lock per token being introspected: concurrent misses for one token wait for
    /// the first answer instead of each asking the authorization server.
    inflight: Mutex<HashMap<[u8; 32], Arc<tokio::sync::Mutex<()>>>>,
    calls: std::sync::atomic::AtomicU64,
}

/// Removes a token's in-flight lock when the last caller that took it is done (also if
/// that caller's future is dropped).
struct InflightTurn<'a> {
    inflight: &'a Mutex<HashMap<[u8; 32], Arc<tokio::sync::Mutex<()>>>>,
    key: [u8; 32],
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl Drop for InflightTurn<'_> {
    fn drop(&mut self) {
        let mut map = self.inflight.lock().unwrap_or_else(PoisonError::into_inner);
        // The map's reference and ours: nobody else waits for this token.
        if Arc::strong_count(&self.lock) <= 2 {
            map.remove(&self.key);
        }
    }
}

impl Inner {
    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Active and inactive answers, each part bounded.
#[derive(Debug, Default)]
struct Cache {
    active: HashMap<[u8; 32], Cached>,
    inactive: HashMap<[u8; 32], Cached>,
}

impl Cache {
    fn get(&self, key: &[u8; 32], now: i64) -> Option<Arc<Introspection>> {
        self.active
            .get(key)
            .or_else(|| self.inactive.get(key))
            .filter(|(until, _)| now < *until)
            .map(|(_, r)| r.clone())
    }

    /// Stores an answer in its part (holding at most `max` entries).
    fn put(&mut self, key: [u8; 32], entry: Cached, max_entries: usize, now: i64) {
        let (part, max) = if entry.1.active {
            (&mut self.active, max_entries)
        } else {
            (&mut self.inactive, (max_entries / 8).max(1))
        };
        if max_entries == 0 {
            return;
        }
        if part.len() >= max && !part.contains_key(&key) {
            part.retain(|_, (until, _)| *until > now);
            if part.len() >= max
                && let Some(first) = part
                    .iter()
                    .min_by_key(|(_, (until, _))| *until)
                    .map(|(k, _)| *k)
            {
                part.remove(&first);
            }
        }
        part.insert(key, entry);
    }
}

/// An RFC 7662 client with a response cache. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Introspector {
    inner: Arc<Inner>,
}

/// Builds an [`Introspector`].
#[derive(Debug)]
pub struct IntrospectorBuilder {
    endpoint: String,
    as_issuer: String,
    client_id: String,
    signer: Arc<dyn Signer>,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    max_ttl: i64,
    max_entries: usize,
    max_bytes: usize,
}

impl IntrospectorBuilder {
    /// The clock for assertions and the cache (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Longest time a response is reused, in seconds (0: no cache).
    pub fn max_cache_ttl(mut self, seconds: i64) -> Self {
        self.max_ttl = seconds.max(0);
        self
    }

    /// Most cached responses.
    pub fn max_cache_entries(mut self, n: usize) -> Self {
        self.max_entries = n;
        self
    }

    /// The largest response body read.
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Checks the endpoint URL.
    pub fn build(self) -> Result<Introspector, FetchError> {
        Ok(Introspector {
            inner: Arc::new(Inner {
                endpoint: check_url(&self.endpoint)?,
                as_issuer: self.as_issuer,
                client_id: self.client_id,
                signer: self.signer,
                http: self.http,
                clock: self.clock,
                max_ttl: self.max_ttl,
                max_entries: self.max_entries,
                max_bytes: self.max_bytes,
                cache: Mutex::new(Cache::default()),
                inflight: Mutex::new(HashMap::new()),
                calls: std::sync::atomic::AtomicU64::new(0),
            }),
        })
    }
}

impl Introspector {
    /// Introspects at `endpoint` of the AS `as_issuer` (the assertion audience),
    /// authenticating as `client_id` with `private_key_jwt` signed by `signer`.
    pub fn builder(
        endpoint: impl Into<String>,
        as_issuer: impl Into<String>,
        client_id: impl Into<String>,
        signer: Arc<dyn Signer>,
        http: reqwest::Client,
    ) -> IntrospectorBuilder {
        IntrospectorBuilder {
            endpoint: endpoint.into(),
            as_issuer: as_issuer.into(),
            client_id: client_id.into(),
            signer,
            http,
            clock: Arc::new(SystemClock),
            max_ttl: DEFAULT_INTROSPECTION_CACHE_TTL,
            max_entries: DEFAULT_INTROSPECTION_CACHE_ENTRIES,
            max_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }

    /// Forgets the cached answer for `token` (on a revocation signal, say): its next use
    /// asks the authorization server again.
    pub fn forget(&self, token: &str) {
        let key = aims_crypto::sha256(token);
        let mut cache = self.inner.cache();
        cache.active.remove(&key);
        cache.inactive.remove(&key);
    }

    /// Forgets every cached answer.
    pub fn forget_all(&self) {
        *self.inner.cache() = Cache::default();
    }

    /// How many introspection requests were sent (cache misses).
    pub fn request_count(&self) -> u64 {
        self.inner.calls.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The AS's answer for `token`, from the cache when still fresh.
    pub async fn introspect(&self, token: &str) -> Result<Arc<Introspection>, FetchError> {
        let i = &self.inner;
        let key = aims_crypto::sha256(token);
        if let Some(r) = i.cache().get(&key, i.clock.now()) {
            return Ok(r);
        }
        // Single flight: one request per token at a time; those that waited find the
        // answer in the cache (unless it was an error or not cacheable: then they ask).
        let turn = {
            let mut map = i.inflight.lock().unwrap_or_else(PoisonError::into_inner);
            InflightTurn {
                inflight: &i.inflight,
                key,
                lock: Arc::clone(map.entry(key).or_default()),
            }
        };
        let _held = turn.lock.lock().await;
        let now = i.clock.now();
        if let Some(r) = i.cache().get(&key, now) {
            return Ok(r);
        }
        i.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let claims =
            ClientAssertionClaims::new(&i.client_id, &i.as_issuer, now, ASSERTION_LIFETIME)
                .map_err(FetchError::Assertion)?;
        let assertion =
            client_assertion::create(&claims, i.signer.as_ref()).map_err(FetchError::Assertion)?;
        let body = form(&[
            ("token", token),
            ("token_type_hint", "access_token"),
            ("client_id", &i.client_id),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &assertion),
        ]);
        let request = i
            .http
            .post(i.endpoint.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body);
        let bytes = send_capped(request, &i.endpoint, i.max_bytes).await?;
        let r: Introspection = serde_json::from_slice(&bytes)
            .map_err(|_| FetchError::Malformed("not an RFC 7662 response"))?;
        let r = Arc::new(r);
        let until = match (r.active, r.exp) {
            (true, Some(exp)) => exp.min(now.saturating_add(i.max_ttl)),
            _ => now.saturating_add(i.max_ttl),
        };
        if until > now {
            i.cache().put(key, (until, r.clone()), i.max_entries, now);
        }
        Ok(r)
    }
}

#[cfg(test)]
mod cache_tests {
    use super::*;

    fn answer(active: bool) -> Arc<Introspection> {
        Arc::new(Introspection {
            active,
            ..Introspection::default()
        })
    }

    /// Junk tokens (inactive answers) fill only their own eighth: answers for real
    /// tokens are still cached, and a full part makes room by dropping the entry that
    /// expires first.
    #[test]
    fn inactive_answers_cannot_crowd_out_active_ones() {
        let mut c = Cache::default();
        for n in 0u8..100 {
            c.put([n; 32], (10 + i64::from(n), answer(false)), 16, 0);
        }
        assert_eq!(c.inactive.len(), 2, "an eighth of 16");
        assert!(c.get(&[99; 32], 0).is_some(), "the newest junk is kept");
        for n in 0u8..16 {
            c.put([200 - n; 32], (100, answer(true)), 16, 0);
        }
        assert_eq!(c.active.len(), 16);
        // Full of live entries: the one expiring first goes.
        c.put([1; 32], (50, answer(true)), 16, 0);
        c.put([2; 32], (60, answer(true)), 16, 0);
        assert_eq!(c.active.len(), 16);
        assert!(c.get(&[1; 32], 0).is_none(), "evicted: it expired first");
        assert!(c.get(&[2; 32], 0).is_some());
        // Expired entries are not answered.
        assert!(c.get(&[2; 32], 60).is_none());
        // No room at all: nothing is kept.
        let mut none = Cache::default();
        none.put([0; 32], (10, answer(true)), 0, 0);
        assert!(none.get(&[0; 32], 0).is_none());
    }
}
