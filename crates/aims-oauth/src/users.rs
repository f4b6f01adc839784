//! The built-in user store: the people agents act for, who log in on the authorization
//! page. Passwords are kept as argon2id PHC strings (RFC 9106 parameters of the
//! `argon2` crate's defaults), salted with 128 random bits from aws-lc-rs.
//!
//! [`UserStore::authenticate`] spends the same argon2 work whether the user exists or
//! not, so response time does not tell which user names exist.

use std::sync::Arc;

use aims_store::{Store, StoreError, UserRecord};
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use zeroize::Zeroizing;

/// Why a login or a user operation failed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// Unknown user, wrong password or disabled account: deliberately one variant.
    #[error("wrong user name or password")]
    BadCredentials,
    /// The password does not meet the policy.
    #[error("password refused: {0}")]
    WeakPassword(&'static str),
    /// The store failed.
    #[error("user store: {0}")]
    Store(#[from] StoreError),
    /// Hashing failed.
    #[error("password hashing failed")]
    Hash,
    /// Every password-hashing slot stayed taken for [`SLOT_WAIT`]: try again shortly.
    #[error("too many logins at once; try again in a moment")]
    Busy,
}

/// How long a login waits for a password-hashing slot before it is refused with
/// [`UserError::Busy`].
pub const SLOT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A password-hashing slot: while it is held, one argon2 computation (19 MiB of memory
/// with the default parameters) may run. See [`UserStore::slot`].
#[derive(Debug)]
pub struct HashSlot {
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// The shortest accepted password.
pub const MIN_PASSWORD_LEN: usize = 12;

/// `password` in Unicode normalization form NFKC (NIST SP 800-63B §5.1.1.2): the same
/// password entered as composed or decomposed characters, or in full-width forms, is
/// the same password.
fn normalized(password: &str) -> Zeroizing<String> {
    use unicode_normalization::UnicodeNormalization as _;
    Zeroizing::new(password.nfkc().collect())
}

/// Hashes `password` (normalized to NFKC) with argon2id and a fresh salt.
pub fn hash_password(password: &str) -> Result<String, UserError> {
    let password = normalized(password);
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(UserError::WeakPassword("at least 12 characters"));
    }
    if password.len() > 1024 {
        return Err(UserError::WeakPassword("at most 1024 bytes"));
    }
    let salt = Zeroizing::new(aims_crypto::random_bytes::<16>().map_err(|_| UserError::Hash)?);
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), salt.as_ref())
        .map(|h| h.to_string())
        .map_err(|_| UserError::Hash)
}

/// Whether `password`, normalized to NFKC, matches the PHC string `hash` (constant time
/// in the comparison). One argon2 run, whatever the input: a hash made before passwords
/// were normalized, of a password whose NFKC form differs, no longer verifies (such a
/// user sets the password again).
pub fn verify_password(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    Argon2::default()
        .verify_password(normalized(password).as_bytes(), &parsed)
        .is_ok()
}

/// A logged-in user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user name (token `sub`).
    pub username: String,
    /// Attributes (a JSON object), e.g. `name`, `email`, `acr`.
    pub attributes: serde_json::Value,
    /// A stamp of the password the user logged in with (a digest of its stored hash,
    /// not of the password): a session keeps it, and a new password ends the session
    /// ([`UserStore::session_holds`]).
    pub credential: String,
}

/// The stamp of a stored password hash (see [`User::credential`]).
fn credential_stamp(password_hash: &str) -> String {
    aims_crypto::sha256_b64url(format!("aims-session-credential:{password_hash}"))
}

/// Users in the shared store.
#[derive(Debug, Clone)]
pub struct UserStore {
    store: Arc<Store>,
    /// Bounds how many argon2 computations run at once (two per CPU): each takes
    /// 19 MiB and a blocking thread for tens of milliseconds, and logins need no
    /// credential, so without a bound a burst of them exhausts memory and threads.
    slots: Arc<tokio::sync::Semaphore>,
    /// A hash to verify against when the user does not exist, so both paths cost the
    /// same.
    decoy: Arc<str>,
}

impl UserStore {
    /// Users of `store`.
    pub fn new(store: Arc<Store>) -> Result<Self, UserError> {
        let decoy = hash_password("decoy password not used by anyone")?;
        let cpus = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        Ok(Self {
            store,
            slots: Arc::new(tokio::sync::Semaphore::new(cpus.saturating_mul(2))),
            decoy: decoy.into(),
        })
    }

    /// Waits up to [`SLOT_WAIT`] for a password-hashing slot ([`UserError::Busy`] if
    /// none frees up). Take it before counting a login attempt, so that a login refused
    /// for load is not counted as a failure.
    pub async fn slot(&self) -> Result<HashSlot, UserError> {
        match tokio::time::timeout(SLOT_WAIT, Arc::clone(&self.slots).acquire_owned()).await {
            Ok(Ok(permit)) => Ok(HashSlot { _permit: permit }),
            Ok(Err(_)) | Err(_) => Err(UserError::Busy),
        }
    }

    /// Checks a login, taking a hashing slot first.
    pub async fn authenticate(&self, username: &str, password: &str) -> Result<User, UserError> {
        let slot = self.slot().await?;
        self.authenticate_in(slot, username, password).await
    }

    /// Checks a login in `slot` (released when the hash is done, even if the caller
    /// went away meanwhile).
    pub async fn authenticate_in(
        &self,
        slot: HashSlot,
        username: &str,
        password: &str,
    ) -> Result<User, UserError> {
        let record = match self.store.get_user(username).await {
            Ok(r) => Some(r),
            Err(StoreError::NotFound(_) | StoreError::Invalid(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let hash = record
            .as_ref()
            .map_or(&*self.decoy, |r| r.password_hash.as_str())
            .to_owned();
        let password = Zeroizing::new(password.to_owned());
        let ok = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            verify_password(&password, &hash)
        })
        .await
        .unwrap_or(false);
        match record {
            Some(r) if ok && !r.disabled => Ok(user(&r)),
            _ => Err(UserError::BadCredentials),
        }
    }

    /// Whether a session of `username` logged in with `credential` still stands: the
    /// user exists, is not disabled, and has the password it logged in with (a password
    /// reset ends every session made with the old one).
    pub async fn session_holds(&self, username: &str, credential: &str) -> Result<bool, UserError> {
        match self.store.get_user(username).await {
            Ok(r) => Ok(!r.disabled
                && aims_crypto::ct_eq(
                    credential_stamp(&r.password_hash).as_bytes(),
                    credential.as_bytes(),
                )),
            Err(StoreError::NotFound(_) | StoreError::Invalid(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates a user.
    pub async fn create(
        &self,
        username: &str,
        password: &str,
        attributes: &serde_json::Value,
        now: i64,
    ) -> Result<User, UserError> {
        let hash = self.hash(password).await?;
        let attrs = attributes.to_string();
        let r = self.store.create_user(username, &hash, &attrs, now).await?;
        Ok(user(&r))
    }

    /// Sets a new password.
    pub async fn set_password(
        &self,
        username: &str,
        password: &str,
        now: i64,
    ) -> Result<(), UserError> {
        let hash = self.hash(password).await?;
        Ok(self.store.set_user_password(username, &hash, now).await?)
    }

    /// [`hash_password`] in a hashing slot, on a blocking thread.
    async fn hash(&self, password: &str) -> Result<String, UserError> {
        let slot = self.slot().await?;
        let password = Zeroizing::new(password.to_owned());
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            hash_password(&password)
        })
        .await
        .map_err(|_| UserError::Hash)?
    }
}

/// Whether `username` exists and is not disabled: a refresh token of a user who is not
/// active any more must not act for them.
pub(crate) async fn user_is_active(store: &Store, username: &str) -> Result<bool, StoreError> {
    match store.get_user(username).await {
        Ok(r) => Ok(!r.disabled),
        Err(StoreError::NotFound(_) | StoreError::Invalid(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

fn user(r: &UserRecord) -> User {
    User {
        username: r.username.clone(),
        attributes: serde_json::from_str(&r.attributes).unwrap_or_default(),
        credential: credential_stamp(&r.password_hash),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hashes_verify_and_salts_differ() {
        let a = hash_password("correct horse battery").unwrap();
        let b = hash_password("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b);
        assert!(verify_password("correct horse battery", &a));
        assert!(!verify_password("correct horse battery!", &a));
        assert!(!verify_password(
            "correct horse battery",
            "not a phc string"
        ));
        assert!(matches!(
            hash_password("short"),
            Err(UserError::WeakPassword(_))
        ));
    }

    #[test]
    fn passwords_are_compared_in_nfkc() {
        // "café" composed (U+00E9) and decomposed (e + U+0301), and full-width digits.
        let composed = "caf\u{e9} au lait 12";
        let decomposed = "cafe\u{301} au lait 12";
        let fullwidth = "caf\u{e9} au lait \u{ff11}\u{ff12}";
        let h = hash_password(decomposed).unwrap();
        assert!(verify_password(composed, &h));
        assert!(verify_password(decomposed, &h));
        assert!(verify_password(fullwidth, &h));
        assert!(!verify_password("cafe au lait 12", &h));
        // The length rule counts the normalized characters: 11 composed ones are short
        // even when typed as 12 code points.
        assert!(matches!(
            hash_password("cafe\u{301}1234567"),
            Err(UserError::WeakPassword(_))
        ));
    }

    /// Logins beyond the hashing slots wait, then are refused as busy; a slot comes back
    /// when its hash is done.
    #[tokio::test]
    async fn hashing_slots_are_bounded() {
        let store = Arc::new(Store::connect("sqlite::memory:").await.unwrap());
        let users = UserStore::new(store).unwrap();
        let n = users.slots.available_permits();
        assert!(n >= 2);
        let mut held = Vec::new();
        for _ in 0..n {
            held.push(users.slot().await.unwrap());
        }
        tokio::time::pause();
        assert!(matches!(
            users.authenticate("alice", "any password at all").await,
            Err(UserError::Busy)
        ));
        tokio::time::resume();
        held.pop();
        assert!(matches!(
            users.authenticate("alice", "any password at all").await,
            Err(UserError::BadCredentials)
        ));
        assert_eq!(users.slots.available_permits(), 1);
    }

    #[tokio::test]
    async fn login_refuses_unknown_wrong_and_disabled_alike() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("u.db").display());
        let store = Arc::new(Store::connect(&url).await.unwrap());
        let users = UserStore::new(store.clone()).unwrap();
        users
            .create(
                "alice",
                "alice's long password",
                &serde_json::json!({"name": "Alice"}),
                1,
            )
            .await
            .unwrap();
        let u = users
            .authenticate("alice", "alice's long password")
            .await
            .unwrap();
        assert_eq!(u.attributes["name"], "Alice");
        for (name, pw) in [
            ("alice", "wrong password here"),
            ("bob", "alice's long password"),
        ] {
            assert!(matches!(
                users.authenticate(name, pw).await,
                Err(UserError::BadCredentials)
            ));
        }
        store.set_user_disabled("alice", true, 2).await.unwrap();
        assert!(matches!(
            users.authenticate("alice", "alice's long password").await,
            Err(UserError::BadCredentials)
        ));
    }
}
