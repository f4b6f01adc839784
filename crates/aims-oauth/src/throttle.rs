//! Failed-login throttling for the built-in password login: after
//! [`LoginPolicy::max_failures`] consecutive failures for one user name, that name is
//! locked for [`LoginPolicy::lockout_secs`], doubling with every further failure up to
//! [`LoginPolicy::max_lockout_secs`]. A success clears the count; so does a quiet spell
//! of [`LoginPolicy::forget_after_secs`] after the last failure and the end of any lock.
//!
//! Names that do not exist are counted like names that do, so a lock tells an attacker
//! nothing about which names exist; while locked, no password is checked at all (no
//! argon2 work spent on a guessing run). The counts are in the store (keyed by a SHA-256
//! of the name), so every node sharing it counts every failure and sees every lock; a
//! count is updated by compare and swap, so concurrent failures on several nodes are
//! all counted. Forgotten counts expire and are swept by the server's upkeep task.
//!
//! The usual trade-off of per-account locking holds: someone who knows a user name can
//! keep that user locked out by failing on purpose. [`LoginPolicy::max_lockout_secs`]
//! bounds how long one failure costs the user.

use std::sync::Arc;

use aims_store::{BrowserStateKind, Store, StoreError};
use serde::{Deserialize, Serialize};

/// How often a failure is retried when concurrent failures for the same name changed the
/// count in between.
const CAS_ATTEMPTS: usize = 8;

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

/// A name's failures, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Failures {
    count: u32,
    last: i64,
    locked_until: i64,
}

impl Failures {
    /// When the record is forgotten (it expires in the store then).
    fn forgotten_at(&self, policy: &LoginPolicy) -> i64 {
        self.last
            .max(self.locked_until)
            .saturating_add(policy.forget_after_secs.max(1))
    }

    /// The record after one more failure at `now` (starting from `prev`, if still
    /// remembered), and the lock it starts, if any.
    fn after_failure(
        prev: Option<Failures>,
        policy: &LoginPolicy,
        now: i64,
    ) -> (Self, Option<i64>) {
        let mut f = prev
            .filter(|f| f.forgotten_at(policy) > now)
            .unwrap_or(Failures {
                count: 0,
                last: now,
                locked_until: i64::MIN,
            });
        f.count = f.count.saturating_add(1);
        f.last = now;
        if f.count < policy.max_failures {
            return (f, None);
        }
        let doublings = (f.count - policy.max_failures).min(30);
        let secs = policy
            .lockout_secs
            .saturating_mul(1_i64 << doublings)
            .min(policy.max_lockout_secs);
        f.locked_until = now.saturating_add(secs);
        (f, Some(secs))
    }
}

/// Failed-login counts by user name, in the store.
#[derive(Debug, Clone)]
pub struct LoginThrottle {
    policy: LoginPolicy,
    store: Arc<Store>,
}

/// The store's key of a user name.
fn key(username: &str) -> String {
    aims_crypto::sha256_b64url(username)
}

fn corrupt(e: &serde_json::Error) -> StoreError {
    StoreError::Invalid(format!("stored failed-login count: {e}"))
}

impl LoginThrottle {
    /// A throttle with `policy`, counting in `store`.
    pub fn new(policy: LoginPolicy, store: Arc<Store>) -> Self {
        Self { policy, store }
    }

    async fn read(&self, k: &str, now: i64) -> Result<Option<(String, Failures)>, StoreError> {
        let Some(record) = self
            .store
            .get_browser_state(BrowserStateKind::LoginFailures, k, now)
            .await?
        else {
            return Ok(None);
        };
        let f = serde_json::from_str(&record.data).map_err(|e| corrupt(&e))?;
        Ok(Some((record.data, f)))
    }

    /// `Err(seconds)` while `username` is locked: how long until it may try again.
    pub async fn check(&self, username: &str, now: i64) -> Result<Result<(), i64>, StoreError> {
        if self.policy.max_failures == 0 {
            return Ok(Ok(()));
        }
        Ok(match self.read(&key(username), now).await? {
            Some((_, f)) if f.locked_until > now => Err(f.locked_until - now),
            _ => Ok(()),
        })
    }

    /// Starts a login attempt for `username`: `Err(seconds)` while the name is locked
    /// (check no password then), else the attempt is counted **as a failure before the
    /// password is checked**, and `Ok(Some(seconds))` says that this attempt started a
    /// lock (shown if the password turns out wrong). [`LoginThrottle::succeeded`] clears
    /// the count after a right password.
    ///
    /// Counting first is what bounds concurrent guessing: of many logins sent at once
    /// for one name, only the first [`LoginPolicy::max_failures`] get a password check;
    /// the others find the name locked. (Counting after the check would let every
    /// request that arrived before the fifth failure was recorded make its guess.)
    pub async fn attempt(
        &self,
        username: &str,
        now: i64,
    ) -> Result<Result<Option<i64>, i64>, StoreError> {
        let p = self.policy;
        if p.max_failures == 0 {
            return Ok(Ok(None));
        }
        let k = key(username);
        for _ in 0..CAS_ATTEMPTS {
            let current = self.read(&k, now).await?;
            if let Some((_, f)) = &current
                && f.locked_until > now
            {
                return Ok(Err(f.locked_until - now));
            }
            let (next, lock) = Failures::after_failure(current.as_ref().map(|c| c.1), &p, now);
            let data = serde_json::to_string(&next).map_err(|e| corrupt(&e))?;
            let expires_at = next.forgotten_at(&p);
            let stored = match &current {
                None => match self
                    .store
                    .put_browser_state(
                        BrowserStateKind::LoginFailures,
                        &k,
                        None,
                        &data,
                        expires_at,
                        now,
                    )
                    .await
                {
                    Ok(()) => true,
                    // Another attempt for the name was stored meanwhile: count on top.
                    Err(StoreError::Conflict(_)) => false,
                    Err(e) => return Err(e),
                },
                Some((read, _)) => {
                    self.store
                        .replace_browser_state(
                            BrowserStateKind::LoginFailures,
                            &k,
                            read,
                            &data,
                            expires_at,
                            now,
                        )
                        .await?
                }
            };
            if stored {
                return Ok(Ok(lock));
            }
        }
        // Only a flood of concurrent attempts for one name gets here: refuse this one.
        tracing::warn!(
            target: "aims::oauth",
            "login attempt not counted after {CAS_ATTEMPTS} concurrent updates; refused as if the name were locked"
        );
        Ok(Err(p.lockout_secs))
    }

    /// A successful login clears the name's count.
    pub async fn succeeded(&self, username: &str) -> Result<(), StoreError> {
        self.store
            .delete_browser_state(BrowserStateKind::LoginFailures, &key(username))
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000;

    async fn throttle(policy: LoginPolicy) -> LoginThrottle {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        LoginThrottle::new(policy, Arc::new(store))
    }

    #[tokio::test]
    async fn the_fifth_failure_locks_and_further_failures_double_the_lock() {
        let t = throttle(LoginPolicy::default()).await;
        for i in 0..4 {
            assert_eq!(t.check("alice", T0 + i).await.unwrap(), Ok(()));
            assert_eq!(t.attempt("alice", T0 + i).await.unwrap(), Ok(None));
        }
        assert_eq!(t.attempt("alice", T0 + 4).await.unwrap(), Ok(Some(60)));
        // While locked, an attempt is refused (and not counted).
        assert_eq!(t.attempt("alice", T0 + 5).await.unwrap(), Err(59));
        assert_eq!(t.check("alice", T0 + 4).await.unwrap(), Err(60));
        assert_eq!(t.check("alice", T0 + 63).await.unwrap(), Err(1));
        // Another name is not affected.
        assert_eq!(t.check("bob", T0 + 5).await.unwrap(), Ok(()));
        // After the lock, one more failure locks again, for twice as long.
        assert_eq!(t.check("alice", T0 + 64).await.unwrap(), Ok(()));
        assert_eq!(t.attempt("alice", T0 + 64).await.unwrap(), Ok(Some(120)));
        assert_eq!(t.attempt("alice", T0 + 200).await.unwrap(), Ok(Some(240)));
        assert_eq!(t.attempt("alice", T0 + 500).await.unwrap(), Ok(Some(480)));
        assert_eq!(t.attempt("alice", T0 + 1000).await.unwrap(), Ok(Some(900)));
        assert_eq!(
            t.attempt("alice", T0 + 2000).await.unwrap(),
            Ok(Some(900)),
            "capped"
        );
    }

    #[tokio::test]
    async fn success_or_a_quiet_spell_clears_the_count() {
        let t = throttle(LoginPolicy::default()).await;
        for i in 0..4 {
            assert!(t.attempt("alice", T0 + i).await.unwrap().is_ok());
        }
        t.succeeded("alice").await.unwrap();
        assert_eq!(
            t.attempt("alice", T0 + 5).await.unwrap(),
            Ok(None),
            "count restarted"
        );
        for i in 0..3 {
            assert!(t.attempt("alice", T0 + 6 + i).await.unwrap().is_ok());
        }
        // 15 minutes without a failure: forgotten (the record has expired).
        assert_eq!(t.attempt("alice", T0 + 8 + 900).await.unwrap(), Ok(None));
        assert_eq!(t.check("alice", T0 + 8 + 900).await.unwrap(), Ok(()));
    }

    #[tokio::test]
    async fn unknown_and_very_long_names_are_counted_alike_and_zero_turns_it_off() {
        let t = throttle(LoginPolicy::default()).await;
        let long = "x".repeat(10_000);
        for i in 0..5 {
            assert!(t.attempt(&long, T0 + i).await.unwrap().is_ok());
        }
        assert!(t.check(&long, T0 + 5).await.unwrap().is_err());
        let off = throttle(LoginPolicy {
            max_failures: 0,
            ..LoginPolicy::default()
        })
        .await;
        for i in 0..50 {
            assert_eq!(off.attempt("alice", T0 + i).await.unwrap(), Ok(None));
        }
        assert_eq!(off.check("alice", T0 + 50).await.unwrap(), Ok(()));
    }

    /// Concurrent failures for one name are all counted (compare and swap).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_failures_are_all_counted() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Arc::new(Store::connect(&url).await.unwrap());
        let policy = LoginPolicy {
            max_failures: 100,
            ..LoginPolicy::default()
        };
        let t = LoginThrottle::new(policy, store);
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let t = t.clone();
                tokio::spawn(async move { t.attempt("alice", T0).await.unwrap() })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), Ok(None));
        }
        let (_, f) = t.read(&key("alice"), T0).await.unwrap().unwrap();
        assert_eq!(f.count, 6);
    }

    /// Of many logins sent at once for one name, at most `max_failures` may go on to a
    /// password check: each is counted before its check.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_attempts_beyond_the_limit_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Arc::new(Store::connect(&url).await.unwrap());
        let t = LoginThrottle::new(LoginPolicy::default(), store);
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let t = t.clone();
                tokio::spawn(async move { t.attempt("alice", T0).await.unwrap() })
            })
            .collect();
        let mut checked = 0;
        for task in tasks {
            if task.await.unwrap().is_ok() {
                checked += 1;
            }
        }
        assert!((1..=5).contains(&checked), "{checked} attempts went on");
        assert!(t.check("alice", T0).await.unwrap().is_err(), "locked");
    }
}
