//! Replay caches for proof `jti`s and signature nonces (issue 4 part 8).
//!
//! The token profiles call a synchronous [`ReplayGuard`] as their very last check. The
//! shared [`Store`] is asynchronous, so with a store the guard validates with a
//! [`DeferringGuard`] that only captures the `(key, expires_at)` the profile would record,
//! then records it with [`Store::use_once`]; a key already used there is a replay, the
//! same outcome as with the memory guard.

use std::sync::{Arc, Mutex, PoisonError};

use aims_crypto::sha256_b64url;
use aims_jose::JoseError;
use aims_jose::replay::{MemoryReplayGuard, ReplayGuard};
use aims_store::Store;

/// The `use_once` scope of the guard's records.
pub const STORE_SCOPE: &str = "aims-guard-replay";

/// Where one-time keys are remembered.
#[derive(Debug, Clone)]
pub enum ReplayCache {
    /// In this process only: bounded, fail closed when full.
    Memory(Arc<MemoryReplayGuard>),
    /// In the shared store: a replay to any node sharing it is refused.
    Store(Arc<Store>),
}

impl ReplayCache {
    /// An in-memory cache holding at most `max_entries` live keys.
    pub fn memory(max_entries: usize) -> Self {
        ReplayCache::Memory(Arc::new(MemoryReplayGuard::new(max_entries)))
    }

    /// A cache in the shared store.
    pub fn store(store: Arc<Store>) -> Self {
        ReplayCache::Store(store)
    }

    /// A guard for one request's validation, and what must happen after it.
    pub fn begin(&self) -> (Arc<dyn ReplayGuard>, PendingReplay) {
        match self {
            ReplayCache::Memory(m) => (m.clone(), PendingReplay::Done),
            ReplayCache::Store(s) => {
                let d = Arc::new(DeferringGuard::default());
                (
                    d.clone(),
                    PendingReplay::Store {
                        store: s.clone(),
                        captured: d,
                    },
                )
            }
        }
    }
}

impl Default for ReplayCache {
    fn default() -> Self {
        Self::memory(100_000)
    }
}

/// Why recording a key failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayFailure {
    /// The key was used before within its window.
    Replayed,
    /// The cache cannot record (full, or the store failed): fail closed.
    Unavailable,
}

/// What is left to do after a validation that used [`ReplayCache::begin`].
#[derive(Debug)]
pub enum PendingReplay {
    /// Nothing: the memory guard already recorded.
    Done,
    /// Record the captured keys in the store.
    Store {
        /// Where to record.
        store: Arc<Store>,
        /// What the validation captured.
        captured: Arc<DeferringGuard>,
    },
}

impl PendingReplay {
    /// Records the captured keys; a key already recorded is a replay.
    pub async fn commit(self, now: i64) -> Result<(), ReplayFailure> {
        let PendingReplay::Store { store, captured } = self else {
            return Ok(());
        };
        for (key, expires_at) in captured.take() {
            if expires_at < now {
                // Same rule as the memory guard: nothing left to protect.
                continue;
            }
            // Keys carry attacker-chosen `jti`s of any length: store their digest.
            let item = sha256_b64url(key.as_bytes());
            let expires_at = expires_at.max(now.saturating_add(1));
            match store.use_once(STORE_SCOPE, &item, expires_at, now).await {
                Ok(true) => {}
                Ok(false) => return Err(ReplayFailure::Replayed),
                Err(e) => {
                    tracing::warn!(error = %e, "replay store unavailable; request refused");
                    return Err(ReplayFailure::Unavailable);
                }
            }
        }
        Ok(())
    }
}

/// A [`ReplayGuard`] that accepts and captures every key, for recording later.
#[derive(Debug, Default)]
pub struct DeferringGuard {
    captured: Mutex<Vec<(String, i64)>>,
}

impl DeferringGuard {
    /// The captured `(key, expires_at)` pairs, emptied.
    pub fn take(&self) -> Vec<(String, i64)> {
        std::mem::take(&mut *self.captured.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl ReplayGuard for DeferringGuard {
    fn check_and_record(&self, key: &str, expires_at: i64, _now: i64) -> Result<(), JoseError> {
        self.captured
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((key.to_owned(), expires_at));
        Ok(())
    }
}
