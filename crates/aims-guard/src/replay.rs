//! Replay caches for proof `jti`s and signature nonces (issue 4 part 8).
//!
//! The token profiles call a synchronous [`ReplayGuard`] as their very last check. The
//! shared [`Store`] is asynchronous, so with a store the guard validates with a
//! [`DeferringGuard`] that only captures the `(key, expires_at)` the profile would record
//! and the time it validated at, then records it in the store as of that time; a key
//! already used there is a replay, the same outcome as with the memory guard.
//!
//! **Group commit.** Each record is a durable write (with SQLite, an fsync per commit),
//! so the keys of concurrent requests are written together: one task per cache takes
//! every key waiting and records them with one [`Store::use_once_many`] statement, then
//! answers each request with its own outcome. A request is answered only after the
//! commit holding its key returned, and a key given twice in a batch counts once (the
//! later request is a replay), so protection is exactly that of one
//! [`Store::use_once`] per key; it only saves commits. Without a runtime for the task
//! (or if it stopped) a request records its key alone.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use aims_crypto::sha256_b64url;
use aims_jose::JoseError;
use aims_jose::replay::{MemoryReplayGuard, ReplayGuard};
use aims_store::{Store, USE_ONCE_MAX_BATCH};
use tokio::sync::{mpsc, oneshot};

/// The `use_once` scope of the guard's records.
pub const STORE_SCOPE: &str = "aims-guard-replay";

/// Where one-time keys are remembered.
#[derive(Debug, Clone)]
pub enum ReplayCache {
    /// In this process only: bounded, fail closed when full.
    Memory(Arc<MemoryReplayGuard>),
    /// In the shared store: a replay to any node sharing it is refused.
    Store(Arc<StoreReplay>),
}

/// The store side of a [`ReplayCache`]: the store, and the task that writes keys in
/// batches (started on first use).
#[derive(Debug)]
pub struct StoreReplay {
    store: Arc<Store>,
    batcher: OnceLock<Option<mpsc::UnboundedSender<Job>>>,
}

/// One key waiting to be recorded.
#[derive(Debug)]
struct Job {
    item: String,
    expires_at: i64,
    now: i64,
    reply: oneshot::Sender<Result<bool, ()>>,
}

impl StoreReplay {
    /// The batching task's queue, started on first use in a Tokio runtime.
    fn queue(&self) -> Option<&mpsc::UnboundedSender<Job>> {
        self.batcher
            .get_or_init(|| {
                let handle = tokio::runtime::Handle::try_current().ok()?;
                let (tx, rx) = mpsc::unbounded_channel();
                handle.spawn(write_batches(Arc::clone(&self.store), rx));
                Some(tx)
            })
            .as_ref()
    }

    /// Records `item` until `expires_at`: `Ok(true)` the first time.
    async fn use_once(&self, item: String, expires_at: i64, now: i64) -> Result<bool, ()> {
        if let Some(queue) = self.queue() {
            let (reply, answer) = oneshot::channel();
            match queue.send(Job {
                item,
                expires_at,
                now,
                reply,
            }) {
                // No answer (the task stopped mid-batch): fail closed.
                Ok(()) => return answer.await.unwrap_or(Err(())),
                Err(mpsc::error::SendError(job)) => {
                    return self
                        .use_once_alone(&job.item, job.expires_at, job.now)
                        .await;
                }
            }
        }
        self.use_once_alone(&item, expires_at, now).await
    }

    async fn use_once_alone(&self, item: &str, expires_at: i64, now: i64) -> Result<bool, ()> {
        self.store
            .use_once(STORE_SCOPE, item, expires_at, now)
            .await
            .map_err(|e| tracing::warn!(error = %e, "replay store unavailable; request refused"))
    }
}

/// The batching task: records every waiting key in one statement, one batch at a time
/// (the keys arriving meanwhile make the next batch). Ends when the cache is dropped.
async fn write_batches(store: Arc<Store>, mut rx: mpsc::UnboundedReceiver<Job>) {
    let mut jobs: Vec<Job> = Vec::new();
    while rx.recv_many(&mut jobs, USE_ONCE_MAX_BATCH).await > 0 {
        // The earliest `now` of the batch decides whether a stored key has expired: a
        // later one could let a replay accepted at the last second of its window take
        // over the record of the first use (refusing a reused key a moment longer is
        // safe).
        let now = jobs.iter().map(|j| j.now).min().unwrap_or_default();
        let items: Vec<(&str, i64)> = jobs
            .iter()
            .map(|j| (j.item.as_str(), j.expires_at.max(now.saturating_add(1))))
            .collect();
        let outcome = store.use_once_many(STORE_SCOPE, &items, now).await;
        drop(items);
        match outcome {
            Ok(won) => {
                for (job, won) in jobs.drain(..).zip(won) {
                    let _ = job.reply.send(Ok(won));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, keys = jobs.len(), "replay store unavailable; requests refused");
                for job in jobs.drain(..) {
                    let _ = job.reply.send(Err(()));
                }
            }
        }
        jobs.clear();
    }
}

impl ReplayCache {
    /// An in-memory cache holding at most `max_entries` live keys.
    pub fn memory(max_entries: usize) -> Self {
        ReplayCache::Memory(Arc::new(MemoryReplayGuard::new(max_entries)))
    }

    /// The shared store, when the cache is one.
    pub(crate) fn shared_store(&self) -> Option<&Arc<Store>> {
        match self {
            ReplayCache::Memory(_) => None,
            ReplayCache::Store(s) => Some(&s.store),
        }
    }

    /// A cache in the shared store.
    pub fn store(store: Arc<Store>) -> Self {
        ReplayCache::Store(Arc::new(StoreReplay {
            store,
            batcher: OnceLock::new(),
        }))
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
                        replay: s.clone(),
                        captured: d,
                    },
                )
            }
        }
    }

    /// Like [`ReplayCache::begin`], but nothing is recorded until
    /// [`PendingReplay::commit`], with the memory cache too: for checks where more of the
    /// request must hold before a key may take a slot (a DPoP proof is recorded only
    /// once the access token it comes with is valid and bound to the proof's key, so
    /// proofs made with any key for a made-up token cannot fill the cache).
    pub fn begin_deferred(&self) -> (Arc<dyn ReplayGuard>, PendingReplay) {
        let d = Arc::new(DeferringGuard::default());
        let pending = match self {
            ReplayCache::Memory(m) => PendingReplay::Memory {
                guard: m.clone(),
                captured: d.clone(),
            },
            ReplayCache::Store(s) => PendingReplay::Store {
                replay: s.clone(),
                captured: d.clone(),
            },
        };
        (d, pending)
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
    /// Record the captured keys in the memory cache.
    Memory {
        /// Where to record.
        guard: Arc<MemoryReplayGuard>,
        /// What the validation captured.
        captured: Arc<DeferringGuard>,
    },
    /// Record the captured keys in the store.
    Store {
        /// Where to record.
        replay: Arc<StoreReplay>,
        /// What the validation captured.
        captured: Arc<DeferringGuard>,
    },
}

impl PendingReplay {
    /// Records the captured keys; a key already recorded is a replay.
    ///
    /// Each key is checked as of the validation that accepted it (`now` only if that is
    /// earlier): a proof accepted at the last second of its window is a replay however
    /// much later the commit runs, not a key that has since expired.
    pub async fn commit(self, now: i64) -> Result<(), ReplayFailure> {
        let (replay, captured) = match self {
            PendingReplay::Done => return Ok(()),
            PendingReplay::Memory { guard, captured } => {
                for (key, expires_at, validated_at) in captured.take() {
                    guard
                        .check_and_record(&key, expires_at, validated_at.min(now))
                        .map_err(|e| match e {
                            JoseError::Replayed => ReplayFailure::Replayed,
                            _ => ReplayFailure::Unavailable,
                        })?;
                }
                return Ok(());
            }
            PendingReplay::Store { replay, captured } => (replay, captured),
        };
        for (key, expires_at, validated_at) in captured.take() {
            let now = validated_at.min(now);
            if expires_at < now {
                // Same rule as the memory guard: nothing left to protect.
                continue;
            }
            // Keys carry attacker-chosen `jti`s of any length: store their digest.
            let item = sha256_b64url(key.as_bytes());
            // `expires_at` is the last second a proof is accepted (inclusive); the store
            // lets a record be taken over once its `expires_at <= now`: one second more,
            // so that a replay at that last second is still refused.
            let expires_at = expires_at.saturating_add(1).max(now.saturating_add(1));
            match replay.use_once(item, expires_at, now).await {
                Ok(true) => {}
                Ok(false) => return Err(ReplayFailure::Replayed),
                Err(()) => return Err(ReplayFailure::Unavailable),
            }
        }
        Ok(())
    }
}

/// A [`ReplayGuard`] that accepts and captures every key, for recording later.
#[derive(Debug, Default)]
pub struct DeferringGuard {
    captured: Mutex<Vec<(String, i64, i64)>>,
}

impl DeferringGuard {
    /// The captured `(key, expires_at, now)` triples, emptied: `now` is the time the
    /// validation accepted the key at, which [`PendingReplay::commit`] checks it as of.
    pub fn take(&self) -> Vec<(String, i64, i64)> {
        std::mem::take(&mut *self.captured.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl ReplayGuard for DeferringGuard {
    fn check_and_record(&self, key: &str, expires_at: i64, now: i64) -> Result<(), JoseError> {
        self.captured
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((key.to_owned(), expires_at, now));
        Ok(())
    }
}
