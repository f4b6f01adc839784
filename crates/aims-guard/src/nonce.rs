//! Server-issued DPoP nonces (RFC 9449 section 9): random, rotated on an interval read
//! from the [`Clock`], the current and the previous one accepted.
//!
//! **Several replicas.** Each replica hands out its own nonces. With a shared [`Store`],
//! a replica records the nonces it hands out ([`NonceIssuer::publish`]) and accepts a
//! nonce that is not its own when the store has it for the same context
//! ([`NonceIssuer::shared`]), so a client may reach any replica.

use std::sync::{Arc, Mutex, PoisonError};

use aims_core::Clock;
use aims_crypto::{CryptoError, random_token, sha256_b64url};
use aims_store::{Store, StoreError};

/// The single-use scope under which shared nonces are recorded.
pub const SHARED_NONCE_SCOPE: &str = "dpop-nonce";

/// Issues and checks DPoP nonces. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct NonceIssuer {
    clock: Arc<dyn Clock>,
    interval: i64,
    state: Mutex<State>,
    /// The last nonce [`NonceIssuer::publish`] recorded.
    published: Mutex<Option<String>>,
}

#[derive(Debug)]
struct State {
    current: String,
    previous: Option<String>,
    issued_at: i64,
}

impl NonceIssuer {
    /// A nonce source rotating every `interval` seconds (at least 1).
    pub fn new(clock: Arc<dyn Clock>, interval: i64) -> Result<Self, CryptoError> {
        let now = clock.now();
        Ok(Self {
            clock,
            interval: interval.max(1),
            state: Mutex::new(State {
                current: random_token()?,
                previous: None,
                issued_at: now,
            }),
            published: Mutex::new(None),
        })
    }

    /// The store's key of `nonce` handed out for `context` (an issuer or an origin, so
    /// that services sharing a store do not accept each other's nonces).
    fn shared_key(context: &str, nonce: &str) -> String {
        sha256_b64url(format!("{context}\n{nonce}"))
    }

    /// Records the current nonce in `store` for `context` until it is no longer accepted
    /// (two intervals), unless this nonce was recorded already; a cheap comparison
    /// otherwise.
    pub async fn publish(&self, store: &Store, context: &str) -> Result<(), StoreError> {
        let nonce = self.current();
        let done = self
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_deref()
            == Some(nonce.as_str());
        if done {
            return Ok(());
        }
        let now = self.clock.now();
        let until = now.saturating_add(self.interval.saturating_mul(2));
        store
            .use_once(
                SHARED_NONCE_SCOPE,
                &Self::shared_key(context, &nonce),
                until,
                now,
            )
            .await?;
        *self
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(nonce);
        Ok(())
    }

    /// The nonce of the DPoP `proof` when it is not this issuer's but another replica
    /// recorded it in `store` for `context`. The nonce is read from the unverified proof
    /// only to look it up: the proof's validation then checks its signed claim.
    pub async fn shared(
        &self,
        store: &Store,
        context: &str,
        proof: &str,
    ) -> Result<Option<String>, StoreError> {
        let nonce = aims_jose::Jws::unverified_claims(proof)
            .and_then(|claims| claims.get("nonce")?.as_str().map(str::to_owned));
        let Some(nonce) = nonce.filter(|n| !n.is_empty() && !self.accepts(n)) else {
            return Ok(None);
        };
        let known = store
            .is_used(
                SHARED_NONCE_SCOPE,
                &Self::shared_key(context, &nonce),
                self.clock.now(),
            )
            .await?;
        Ok(known.then_some(nonce))
    }

    fn with_state<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = self.clock.now();
        let age = now.saturating_sub(s.issued_at);
        if age >= self.interval {
            // On a failing random generator keep the old nonce rather than stop serving;
            // it stays bounded by the `iat` window of the proofs.
            if let Ok(fresh) = random_token() {
                // Two intervals or more without a request: the previous nonce is stale too.
                let previous = (age < self.interval.saturating_mul(2))
                    .then(|| std::mem::replace(&mut s.current, fresh.clone()));
                s.current = fresh;
                s.previous = previous;
                s.issued_at = now;
            }
        }
        f(&s)
    }

    /// How often the nonce changes (seconds); a nonce is accepted for up to two of these.
    pub fn interval(&self) -> i64 {
        self.interval
    }

    /// The nonce to send in `DPoP-Nonce`.
    pub fn current(&self) -> String {
        self.with_state(|s| s.current.clone())
    }

    /// Whether `nonce` is the current or the previous nonce.
    pub fn accepts(&self, nonce: &str) -> bool {
        self.with_state(|s| {
            aims_crypto::ct_eq(nonce.as_bytes(), s.current.as_bytes())
                || s.previous
                    .as_deref()
                    .is_some_and(|p| aims_crypto::ct_eq(nonce.as_bytes(), p.as_bytes()))
        })
    }
}

#[cfg(test)]
mod tests {
    use aims_core::ManualClock;

    use super::*;

    #[test]
    fn rotates_and_accepts_current_and_previous() {
        let clock = ManualClock::new(1000);
        let n = NonceIssuer::new(Arc::new(clock.clone()), 60).unwrap();
        let a = n.current();
        assert!(n.accepts(&a));
        assert!(!n.accepts("other"));
        clock.advance(60);
        let b = n.current();
        assert_ne!(a, b);
        assert!(n.accepts(&a) && n.accepts(&b));
        clock.advance(60);
        let c = n.current();
        assert!(!n.accepts(&a) && n.accepts(&b) && n.accepts(&c));
        clock.advance(500);
        assert!(!n.accepts(&b) && !n.accepts(&c));
    }
}
