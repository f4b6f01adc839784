//! A [`KeyResolver`] over a live [`TrustStore`]: the WIT-SVID or JWT-SVID keys of the
//! trust domain named by the scope, looked up once per token.

use std::sync::Arc;

use crate::TrustStore;
use aims_core::TrustDomain;
use aims_crypto::{Algorithm, VerifyingKey};
use aims_jose::{JoseError, KeyResolver};

/// Which keys of a SPIFFE bundle a [`TrustStoreKeys`] serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUse {
    /// `use: wit-svid` keys (WITs).
    Wit,
    /// `use: jwt-svid` keys (JWT-SVIDs).
    Jwt,
}

/// Resolves token keys from the bundles of a [`TrustStore`] that callers update live.
///
/// The scope is a trust domain name (the validators pass the trust domain of the
/// unverified `sub`, which only selects the anchor set). Bundles require a `kid` on
/// every JWT/WIT key, so a token without `kid` is refused ([`JoseError::MissingKid`]).
#[derive(Debug, Clone)]
pub struct TrustStoreKeys {
    store: Arc<TrustStore>,
    use_: KeyUse,
}

impl TrustStoreKeys {
    /// A resolver of `use_` keys in `store`.
    pub fn new(store: Arc<TrustStore>, use_: KeyUse) -> Self {
        Self { store, use_ }
    }
}

impl KeyResolver for TrustStoreKeys {
    fn resolve(
        &self,
        scope: &str,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<VerifyingKey, JoseError> {
        let td = TrustDomain::new(scope).map_err(|_| JoseError::UnknownKey)?;
        let kid = kid.ok_or(JoseError::MissingKid)?;
        let key = match self.use_ {
            KeyUse::Wit => self.store.wit_key(&td, kid),
            KeyUse::Jwt => self.store.jwt_key(&td, kid),
        }
        .map_err(|_| JoseError::UnknownKey)?;
        if !key.supports(alg) {
            return Err(JoseError::UnknownKey);
        }
        Ok((*key).clone())
    }
}
