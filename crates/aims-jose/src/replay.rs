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
use std::sync::atomic::{AtomicUsize, Ordering};
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
///
/// The entries are split over [`SHARDS`] independently locked shards (by the digest's
/// first byte), so that neither one lock nor the growth of one large table (a rehash of
/// a million entries stalls every caller for tens of milliseconds) sits on the path of
/// every request; the capacity is one count over all shards.
pub struct MemoryReplayGuard {
    max_entries: usize,
    /// Live entries over all shards (expired ones until evicted).
    held: AtomicUsize,
    shards: Box<[Mutex<State>]>,
}

/// How many shards a [`MemoryReplayGuard`] has.
pub const SHARDS: usize = 64;

#[derive(Default)]
struct State {
    /// Live keys and when they expire.
    live: HashMap<Digest, i64>,
    /// The same entries ordered by expiry, earliest first.
    by_expiry: BinaryHeap<Reverse<(i64, Digest)>>,
}

impl State {
    /// Drops every entry whose last acceptable instant is before `now`; answers how
    /// many were dropped.
    fn evict_expired(&mut self, now: i64) -> usize {
        let mut dropped = 0;
        while let Some(Reverse((exp, _))) = self.by_expiry.peek() {
            if *exp >= now {
                break;
            }
            if let Some(Reverse((exp, digest))) = self.by_expiry.pop()
                && self.live.get(&digest) == Some(&exp)
            {
                self.live.remove(&digest);
                dropped += 1;
            }
        }
        dropped
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
            held: AtomicUsize::new(0),
            shards: (0..SHARDS).map(|_| Mutex::new(State::default())).collect(),
        }
    }

    /// The number of keys currently held (expired ones included until a call evicts
    /// them).
    pub fn len(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The configured capacity.
    pub fn capacity(&self) -> usize {
        self.max_entries
    }

    fn lock(&self, shard: usize) -> std::sync::MutexGuard<'_, State> {
        // The critical sections below cannot panic half-way through an update, so a
        // poisoned lock still guards a consistent state.
        self.shards[shard % SHARDS]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Evicts the expired entries of every shard (when the count says full: entries of
    /// shards no call touched lately may have expired).
    fn sweep(&self, now: i64) {
        for shard in 0..SHARDS {
            let dropped = self.lock(shard).evict_expired(now);
            self.held.fetch_sub(dropped, Ordering::AcqRel);
        }
    }

    /// Takes one slot of the capacity, or says there is none.
    fn reserve(&self) -> bool {
        let mut held = self.held.load(Ordering::Acquire);
        loop {
            if held >= self.max_entries {
                return false;
            }
            match self.held.compare_exchange_weak(
                held,
                held + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(now_held) => held = now_held,
            }
        }
    }
}

impl ReplayGuard for MemoryReplayGuard {
    fn check_and_record(&self, key: &str, expires_at: i64, now: i64) -> Result<(), JoseError> {
        // Hash outside the lock: the critical section is a few map and heap operations.
        let digest = aims_crypto::sha256(key.as_bytes());
        let shard = usize::from(digest[0]);
        let mut state = self.lock(shard);
        let dropped = state.evict_expired(now);
        self.held.fetch_sub(dropped, Ordering::AcqRel);
        if state.live.contains_key(&digest) {
            return Err(JoseError::Replayed);
        }
        if expires_at < now {
            return Ok(());
        }
        if !self.reserve() {
            // Full by the count: drop what expired anywhere, then ask again. The shard
            // lock is released meanwhile; the key is checked again under it.
            drop(state);
            self.sweep(now);
            state = self.lock(shard);
            if state.live.contains_key(&digest) {
                return Err(JoseError::Replayed);
            }
            if !self.reserve() {
                return Err(JoseError::ReplayCacheFull);
            }
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
        // `a` (expired at 200) is evicted when its shard is next used, and the key is
        // usable again; the count follows.
        g.check_and_record("a", 400, 250).unwrap();
        assert_eq!(g.len(), 2);
    }

    /// When the count says full, expired entries of every shard are swept before a
    /// new key is refused.
    #[test]
    fn a_full_count_sweeps_expired_entries_of_all_shards() {
        let g = MemoryReplayGuard::new(SHARDS);
        for i in 0..SHARDS {
            g.check_and_record(&format!("k{i}"), 100, 0).unwrap();
        }
        assert_eq!(g.len(), SHARDS);
        assert_eq!(
            g.check_and_record("new", 300, 100),
            Err(JoseError::ReplayCacheFull)
        );
        // At 101 all have expired, wherever they are: a full set of new keys fits,
        // although the new keys do not touch every shard the old ones are in.
        for i in 0..SHARDS {
            g.check_and_record(&format!("new{i}"), 300, 101).unwrap();
        }
        assert_eq!(g.len(), SHARDS);
        assert_eq!(
            g.check_and_record("one-more", 300, 101),
            Err(JoseError::ReplayCacheFull)
        );
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
