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
}

/// The shortest accepted password.
pub const MIN_PASSWORD_LEN: usize = 12;

/// Hashes `password` with argon2id and a fresh salt.
pub fn hash_password(password: &str) -> Result<String, UserError> {
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

/// Whether `password` matches the PHC string `hash` (constant time in the comparison).
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A logged-in user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user name (token `sub`).
    pub username: String,
    /// Attributes (a JSON object), e.g. `name`, `email`, `acr`.
    pub attributes: serde_json::Value,
}

/// Users in the shared store.
#[derive(Debug, Clone)]
pub struct UserStore {
    store: Arc<Store>,
    /// A hash to verify against when the user does not exist, so both paths cost the
    /// same.
    decoy: Arc<str>,
}

impl UserStore {
    /// Users of `store`.
    pub fn new(store: Arc<Store>) -> Result<Self, UserError> {
        let decoy = hash_password("decoy password not used by anyone")?;
        Ok(Self {
            store,
            decoy: decoy.into(),
        })
    }

    /// Checks a login.
    pub async fn authenticate(&self, username: &str, password: &str) -> Result<User, UserError> {
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
        let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
            .await
            .unwrap_or(false);
        match record {
            Some(r) if ok && !r.disabled => Ok(user(&r)),
            _ => Err(UserError::BadCredentials),
        }
    }

    /// Whether `username` exists and is not disabled: a session or a refresh token of a
    /// user who is not active any more must not act for them.
    pub async fn is_active(&self, username: &str) -> Result<bool, UserError> {
        user_is_active(&self.store, username)
            .await
            .map_err(UserError::from)
    }

    /// Creates a user.
    pub async fn create(
        &self,
        username: &str,
        password: &str,
        attributes: &serde_json::Value,
        now: i64,
    ) -> Result<User, UserError> {
        let hash = hash_password(password)?;
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
        let hash = hash_password(password)?;
        Ok(self.store.set_user_password(username, &hash, now).await?)
    }
}

/// [`UserStore::is_active`] on a bare store.
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
