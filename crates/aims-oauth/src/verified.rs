//! This server's own JWT access tokens, verified once and remembered until they expire,
//! so that introspecting the same token again (resource servers ask about the same token
//! on every request they see it on) costs one hash lookup instead of a signature
//! verification, a store query and a JSON serialisation.
//!
//! What a cached entry may and may not skip:
//! * the signature, `typ`, `alg`, `iss` and `nbf` checks: they cannot change for the
//!   same bytes. The signing key is looked up again on each hit, so a key withdrawn from
//!   the key set takes its tokens with it at once;
//! * `exp`: checked against the clock on every hit (no leeway: it is our own clock);
//! * revocation: a revocation through this node marks the entry at once. A revocation
//!   written to the shared store by another node (or a refresh-token family revoked by
//!   reuse detection) is seen at the next store check, at most [`REVOCATION_RECHECK`]
//!   after the previous one.
//!
//! Bounded: at most `capacity` entries; when full, expired entries are dropped and, if
//! that frees nothing, the new token is simply not cached (verification still happens).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aims_crypto::Algorithm;
use aims_jose::KeyResolver;
use aims_jose::access_token::AccessTokenClaims;

/// How long a "not revoked" answer from the store is trusted.
pub const REVOCATION_RECHECK: Duration = Duration::from_millis(250);

/// Default number of tokens remembered.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// One verified token.
#[derive(Debug)]
pub(crate) struct Verified {
    pub(crate) claims: AccessTokenClaims,
    alg: Algorithm,
    kid: Option<String>,
    /// The RFC 7662 response body for it while active, serialised once.
    pub(crate) body: Arc<str>,
    /// When the store was last asked about revocation, and what it said.
    revocation: Mutex<RevocationState>,
}

#[derive(Debug, Clone, Copy)]
struct RevocationState {
    checked: Option<Instant>,
    revoked: bool,
}

impl Verified {
    pub(crate) fn new(
        claims: AccessTokenClaims,
        alg: Algorithm,
        kid: Option<String>,
        body: Arc<str>,
    ) -> Self {
        Self {
            claims,
            alg,
            kid,
            body,
            revocation: Mutex::new(RevocationState {
                checked: None,
                revoked: false,
            }),
        }
    }

    /// Whether the token is still usable: not expired, not yet-to-be-valid, and its
    /// signing key still in the key set.
    fn usable(&self, issuer: &str, now: i64, keys: &dyn KeyResolver) -> bool {
        now < self.claims.exp
            && self.claims.nbf.is_none_or(|nbf| nbf <= now)
            && keys.resolve(issuer, self.kid.as_deref(), self.alg).is_ok()
    }

    /// `Some(revoked)` when the last store answer is fresh enough to reuse.
    pub(crate) fn known_revocation(&self, recheck: Duration) -> Option<bool> {
        let s = *self
            .revocation
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if s.revoked {
            return Some(true);
        }
        s.checked.filter(|at| at.elapsed() < recheck).map(|_| false)
    }

    /// Records the store's answer.
    pub(crate) fn set_revocation(&self, revoked: bool) {
        let mut s = self
            .revocation
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        s.checked = Some(Instant::now());
        s.revoked = s.revoked || revoked;
    }
}

/// The cache.
#[derive(Debug)]
pub(crate) struct VerifiedTokens {
    map: Mutex<HashMap<[u8; 32], Arc<Verified>>>,
    capacity: usize,
    pub(crate) recheck: Duration,
}

impl VerifiedTokens {
    pub(crate) fn new(capacity: usize, recheck: Duration) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            capacity,
            recheck,
        }
    }

    fn key(token: &str) -> [u8; 32] {
        aims_crypto::sha256(token.as_bytes())
    }

    /// The entry for `token` if it is still usable; an unusable one is dropped.
    pub(crate) fn get(
        &self,
        token: &str,
        issuer: &str,
        now: i64,
        keys: &dyn KeyResolver,
    ) -> Option<Arc<Verified>> {
        let key = Self::key(token);
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let hit = map.get(&key)?;
        if hit.usable(issuer, now, keys) {
            Some(hit.clone())
        } else {
            map.remove(&key);
            None
        }
    }

    /// Remembers a freshly verified token (if there is room).
    pub(crate) fn insert(&self, token: &str, v: Arc<Verified>, now: i64) {
        if self.capacity == 0 {
            return;
        }
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= self.capacity {
            map.retain(|_, e| e.claims.exp > now);
            if map.len() >= self.capacity {
                return;
            }
        }
        map.insert(Self::key(token), v);
    }

    /// Marks `token` revoked, if it is cached.
    pub(crate) fn mark_revoked(&self, token: &str) {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(v) = map.get(&Self::key(token)) {
            v.set_revocation(true);
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}
