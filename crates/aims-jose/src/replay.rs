//! One-time-use enforcement for proof tokens (`jti` of WPTs, DPoP proofs and client
//! assertions).
//!
//! A [`ReplayGuard`] remembers a key until the token it belongs to can no longer be
//! accepted, and refuses the key a second time within that window. Profiles call it as
//! their very last check, so a token that fails any other rule never takes a slot.
//!
//! [`MemoryReplayGuard`] is the in-process implementation: bounded, thread-safe, and
//! fail-closed when full. A deployment with several replicas needs a shared store
//! behind the same trait, since a proof replayed to another replica is otherwise
//! accepted there.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Mutex, PoisonError};

use crate::JoseError;

/// Records one-time keys and refuses them a second time while they are live.
pub trait ReplayGuard: Send + Sync + std::fmt::Debug {
    /// Records `key` as used until `expires_at` inclusive (Unix seconds: the last
    /// instant at which the token could still be accepted, leeway included; a later
    /// value only keeps the key longer), or fails with [`JoseError::Replayed`] if `key`
    /// is already recorded with `now <= expires_at`.
    ///
    /// Implementations must be atomic: of two concurrent calls with the same live key,
    /// exactly one succeeds. An implementation that cannot record the key must fail
    /// (fail closed) rather than accept it; [`MemoryReplayGuard`] returns
    /// [`JoseError::ReplayCacheFull`].
    fn check_and_record(&self, key: &str, expires_at: i64, now: i64) -> Result<(), JoseError>;
}

type Digest = [u8; 32];

/// A bounded in-memory [`ReplayGuard`].
///
/// Keys are stored as SHA-256 digests, so an entry takes a fixed amount of memory
/// however long the attacker-chosen `jti` is. Expired entries are evicted on every call
/// (amortised `O(log n)` each, through an expiry-ordered heap).
///
/// **Fail closed.** When `max_entries` unexpired entries are held, a new key is
/// *refused* with [`JoseError::ReplayCacheFull`] instead of evicting a live entry:
/// forgetting a live key would let that token be replayed. Size `max_entries` for the
/// peak rate of accepted proofs times their acceptance window (for example 1 000
/// proofs per second over a 5-minute window needs 300 000 entries, about 20 MB).
/// With `max_entries == 0` every key is refused.
///
/// A key whose `expires_at` is before `now` is accepted without being recorded: the
/// token it belongs to can no longer be accepted, so there is nothing to protect.
pub struct MemoryReplayGuard {
    max_entries: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Live keys and when they expire.
    live: HashMap<Digest, i64>,
    /// The same entries ordered by expiry, earliest first.
    by_expiry: BinaryHeap<Reverse<(i64, Digest)>>,
}

impl State {
    /// Drops every entry whose last acceptable instant is before `now`.
    fn evict_expired(&mut self, now: i64) {
        while let Some(Reverse((exp, _))) = self.by_expiry.peek() {
            if *exp >= now {
                break;
            }
            if let Some(Reverse((exp, digest))) = self.by_expiry.pop()
                && self.live.get(&digest) == Some(&exp)
            {
                self.live.remove(&digest);
            }
        }
    }
}

impl std::fmt::Debug for MemoryReplayGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the entries: the cache can be large, and its keys are token identifiers.
        f.debug_struct("MemoryReplayGuard")
            .field("max_entries", &self.max_entries)
            .finish_non_exhaustive()
    }
}

impl MemoryReplayGuard {
    /// A guard holding at most `max_entries` live keys.
    pub fn new(max_entries: usize) -> Self {
        Self {
            max_entries,
            state: Mutex::new(State::default()),
        }
    }

    /// The number of keys currently held (expired ones included until the next call
    /// evicts them).
    pub fn len(&self) -> usize {
        self.lock().live.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The configured capacity.
    pub fn capacity(&self) -> usize {
        self.max_entries
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The critical sections below cannot panic half-way through an update, so a
        // poisoned lock still guards a consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ReplayGuard for MemoryReplayGuard {
    fn check_and_record(&self, key: &str, expires_at: i64, now: i64) -> Result<(), JoseError> {
        // Hash outside the lock: the critical section is a few map and heap operations.
        let digest = aims_crypto::sha256(key.as_bytes());
        let mut state = self.lock();
        state.evict_expired(now);
        if state.live.contains_key(&digest) {
            return Err(JoseError::Replayed);
        }
        if expires_at < now {
            return Ok(());
        }
        if state.live.len() >= self.max_entries {
            return Err(JoseError::ReplayCacheFull);
        }
        state.live.insert(digest, expires_at);
        state.by_expiry.push(Reverse((expires_at, digest)));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn second_use_within_window_is_replay() {
        let g = MemoryReplayGuard::new(10);
        g.check_and_record("a", 100, 50).unwrap();
        assert_eq!(g.check_and_record("a", 100, 60), Err(JoseError::Replayed));
        assert_eq!(g.check_and_record("a", 200, 99), Err(JoseError::Replayed));
        // Another key is independent.
        g.check_and_record("b", 100, 60).unwrap();
        assert_eq!(g.len(), 2);
    }

    #[test]
    fn expired_entries_are_evicted_and_keys_reusable() {
        let g = MemoryReplayGuard::new(10);
        g.check_and_record("a", 100, 50).unwrap();
        // `expires_at` is the last acceptable instant: still live then, gone after.
        assert_eq!(g.check_and_record("a", 200, 100), Err(JoseError::Replayed));
        g.check_and_record("a", 200, 101).unwrap();
        assert_eq!(g.check_and_record("a", 200, 150), Err(JoseError::Replayed));
        g.check_and_record("z", 300, 250).unwrap();
        assert_eq!(g.len(), 1, "`a` evicted at 250");
    }

    #[test]
    fn already_expired_keys_are_not_recorded() {
        let g = MemoryReplayGuard::new(1);
        g.check_and_record("a", 10, 11).unwrap();
        g.check_and_record("a", 10, 11).unwrap();
        assert!(g.is_empty());
        // Live at `expires_at` itself.
        g.check_and_record("b", 10, 10).unwrap();
        assert_eq!(g.check_and_record("b", 10, 10), Err(JoseError::Replayed));
    }

    #[test]
    fn full_of_live_entries_fails_closed() {
        let g = MemoryReplayGuard::new(2);
        g.check_and_record("a", 100, 0).unwrap();
        g.check_and_record("b", 200, 0).unwrap();
        assert_eq!(
            g.check_and_record("c", 100, 1),
            Err(JoseError::ReplayCacheFull)
        );
        // Live keys are still remembered: nothing was forgotten to make room.
        assert_eq!(g.check_and_record("a", 100, 1), Err(JoseError::Replayed));
        // Once `a` expires there is room again.
        assert_eq!(
            g.check_and_record("c", 300, 100),
            Err(JoseError::ReplayCacheFull)
        );
        g.check_and_record("c", 300, 101).unwrap();
        assert_eq!(g.check_and_record("b", 200, 150), Err(JoseError::Replayed));
        assert_eq!(g.capacity(), 2);
    }

    #[test]
    fn debug_does_not_list_entries() {
        let g = MemoryReplayGuard::new(3);
        g.check_and_record("secret-jti", 100, 0).unwrap();
        let dbg = format!("{g:?}");
        assert!(dbg.contains("max_entries: 3"));
        assert!(!dbg.contains("secret") && !dbg.contains("live"));
    }

    #[test]
    fn zero_capacity_refuses_everything() {
        let g = MemoryReplayGuard::new(0);
        assert_eq!(
            g.check_and_record("a", 100, 0),
            Err(JoseError::ReplayCacheFull)
        );
    }

    #[test]
    fn concurrent_use_admits_exactly_one() {
        let g = Arc::new(MemoryReplayGuard::new(1000));
        let ok = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (g, ok) = (Arc::clone(&g), Arc::clone(&ok));
                std::thread::spawn(move || {
                    for i in 0..50 {
                        if g.check_and_record(&format!("k{i}"), 100, 0).is_ok() {
                            ok.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(ok.load(Ordering::SeqCst), 50);
    }
}
