//! Failed-login throttling for the built-in password login: after
//! [`LoginPolicy::max_failures`] consecutive failures for one user name, that name is
//! locked for [`LoginPolicy::lockout_secs`], doubling with every further failure up to
//! [`LoginPolicy::max_lockout_secs`]. A success clears the count; so does a quiet spell
//! of [`LoginPolicy::forget_after_secs`] after the last failure and the end of any lock.
//!
//! Names that do not exist are counted like names that do, so a lock tells an attacker
//! nothing about which names exist; while locked, no password is checked at all (no
//! argon2 work spent on a guessing run). The count lives in this process's memory, like
//! the login sessions: with several nodes each node counts its own failures.
//!
//! The usual trade-off of per-account locking holds: someone who knows a user name can
//! keep that user locked out by failing on purpose. [`LoginPolicy::max_lockout_secs`]
//! bounds how long one failure costs the user.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// How many user names are tracked at most (about 100 bytes each). When full, expired
/// records are dropped; if none is, a new name is not tracked (its failures are not
/// counted) rather than refusing logins for everyone.
pub const MAX_TRACKED: usize = 100_000;

/// User names longer than this are tracked by their SHA-256.
const MAX_KEY_LEN: usize = 256;

/// The throttling policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginPolicy {
    /// Consecutive failures before a lock (0 turns throttling off).
    pub max_failures: u32,
    /// The first lock's length, in seconds.
    pub lockout_secs: i64,
    /// The longest lock, in seconds.
    pub max_lockout_secs: i64,
    /// A record with no failure for this long after its last failure and the end of its
    /// lock is forgotten.
    pub forget_after_secs: i64,
}

impl Default for LoginPolicy {
    fn default() -> Self {
        Self {
            max_failures: 5,
            lockout_secs: 60,
            max_lockout_secs: 900,
            forget_after_secs: 900,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: i64,
    locked_until: i64,
}

impl Failures {
    fn forgotten(&self, policy: &LoginPolicy, now: i64) -> bool {
        now.saturating_sub(self.last.max(self.locked_until)) >= policy.forget_after_secs
    }
}

/// Failed-login counts by user name.
#[derive(Debug)]
pub struct LoginThrottle {
    policy: LoginPolicy,
    names: Mutex<HashMap<String, Failures>>,
}

fn key(username: &str) -> String {
    if username.len() > MAX_KEY_LEN {
        aims_crypto::sha256_b64url(username)
    } else {
        username.to_owned()
    }
}

impl LoginThrottle {
    /// A throttle with `policy`.
    pub fn new(policy: LoginPolicy) -> Self {
        Self {
            policy,
            names: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds)` while `username` is locked: how long until it may try again.
    pub fn check(&self, username: &str, now: i64) -> Result<(), i64> {
        if self.policy.max_failures == 0 {
            return Ok(());
        }
        let names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
        match names.get(&key(username)) {
            Some(f) if f.locked_until > now => Err(f.locked_until - now),
            _ => Ok(()),
        }
    }

    /// Counts a failed login; `Some(seconds)` when this failure locked the name.
    pub fn failed(&self, username: &str, now: i64) -> Option<i64> {
        let p = self.policy;
        if p.max_failures == 0 {
            return None;
        }
        let k = key(username);
        let mut names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
        if !names.contains_key(&k) && names.len() >= MAX_TRACKED {
            names.retain(|_, f| !f.forgotten(&p, now));
            if names.len() >= MAX_TRACKED {
                tracing::warn!(
                    tracked = names.len(),
                    "login throttle full: a failed login for a new user name is not counted"
                );
                return None;
            }
        }
        let f = names.entry(k).or_insert(Failures {
            count: 0,
            last: now,
            locked_until: i64::MIN,
        });
        if f.forgotten(&p, now) {
            f.count = 0;
        }
        f.count = f.count.saturating_add(1);
        f.last = now;
        if f.count < p.max_failures {
            return None;
        }
        let doublings = (f.count - p.max_failures).min(30);
        let secs = p
            .lockout_secs
            .saturating_mul(1_i64 << doublings)
            .min(p.max_lockout_secs);
        f.locked_until = now.saturating_add(secs);
        Some(secs)
    }

    /// A successful login clears the name's count.
    pub fn succeeded(&self, username: &str) {
        self.names
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key(username));
    }

    /// How many names are tracked now.
    pub fn tracked(&self) -> usize {
        self.names
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000;

    #[test]
    fn the_fifth_failure_locks_and_further_failures_double_the_lock() {
        let t = LoginThrottle::new(LoginPolicy::default());
        for i in 0..4 {
            assert_eq!(t.check("alice", T0 + i), Ok(()));
            assert_eq!(t.failed("alice", T0 + i), None);
        }
        assert_eq!(t.failed("alice", T0 + 4), Some(60));
        assert_eq!(t.check("alice", T0 + 4), Err(60));
        assert_eq!(t.check("alice", T0 + 63), Err(1));
        // Another name is not affected.
        assert_eq!(t.check("bob", T0 + 5), Ok(()));
        // After the lock, one more failure locks again, for twice as long.
        assert_eq!(t.check("alice", T0 + 64), Ok(()));
        assert_eq!(t.failed("alice", T0 + 64), Some(120));
        assert_eq!(t.failed("alice", T0 + 200), Some(240));
        assert_eq!(t.failed("alice", T0 + 500), Some(480));
        assert_eq!(t.failed("alice", T0 + 1000), Some(900));
        assert_eq!(t.failed("alice", T0 + 2000), Some(900), "capped");
    }

    #[test]
    fn success_or_a_quiet_spell_clears_the_count() {
        let t = LoginThrottle::new(LoginPolicy::default());
        for i in 0..4 {
            t.failed("alice", T0 + i);
        }
        t.succeeded("alice");
        assert_eq!(t.failed("alice", T0 + 5), None, "count restarted");
        for i in 0..3 {
            t.failed("alice", T0 + 6 + i);
        }
        // 15 minutes without a failure: forgotten.
        assert_eq!(t.failed("alice", T0 + 8 + 900), None);
        assert_eq!(t.check("alice", T0 + 8 + 900), Ok(()));
    }

    #[test]
    fn unknown_and_very_long_names_are_counted_alike_and_zero_turns_it_off() {
        let t = LoginThrottle::new(LoginPolicy::default());
        let long = "x".repeat(10_000);
        for i in 0..5 {
            t.failed(&long, T0 + i);
        }
        assert!(t.check(&long, T0 + 5).is_err());
        assert!(
            t.names
                .lock()
                .unwrap()
                .keys()
                .all(|k| k.len() <= MAX_KEY_LEN)
        );
        let off = LoginThrottle::new(LoginPolicy {
            max_failures: 0,
            ..LoginPolicy::default()
        });
        for i in 0..50 {
            assert_eq!(off.failed("alice", T0 + i), None);
        }
        assert_eq!(off.check("alice", T0 + 50), Ok(()));
        assert_eq!(off.tracked(), 0);
    }

    #[test]
    fn a_full_table_drops_forgotten_names_before_refusing_to_track() {
        let t = LoginThrottle::new(LoginPolicy::default());
        {
            let mut names = t.names.lock().unwrap();
            for i in 0..MAX_TRACKED {
                names.insert(
                    format!("n{i}"),
                    Failures {
                        count: 1,
                        last: T0,
                        locked_until: i64::MIN,
                    },
                );
            }
        }
        // Nothing forgettable yet: the new name is not tracked, the old ones stay.
        assert_eq!(t.failed("new", T0 + 1), None);
        assert_eq!(t.tracked(), MAX_TRACKED);
        // Later they are forgotten, and the new name is counted.
        assert_eq!(t.failed("new", T0 + 1000), None);
        assert_eq!(t.tracked(), 1);
    }
}
