//! Where verification keys come from: always configuration the verifier trusts (a
//! SPIFFE bundle, an issuer's JWKS), never the token.

use std::collections::HashMap;

use aims_crypto::{Algorithm, Jwks, VerifyingKey};

use crate::JoseError;

/// Finds the trusted key for a token.
///
/// `scope` names whose keys to search: a trust domain name for SVIDs and WITs
/// (taken from the unverified `sub`, which only selects the anchor set), or an issuer
/// identifier for access tokens, client assertions and SETs.
pub trait KeyResolver: Send + Sync {
    /// The key for (`scope`, `kid`) able to verify `alg`. Without a `kid` a resolver
    /// may answer only if exactly one key of the scope suits `alg` (no ambiguity).
    fn resolve(
        &self,
        scope: &str,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<VerifyingKey, JoseError>;
}

/// Keys parsed once from JWK sets, grouped by scope.
#[derive(Debug, Clone, Default)]
pub struct StaticKeys {
    by_scope: HashMap<String, Vec<(Option<String>, VerifyingKey)>>,
}

impl StaticKeys {
    /// An empty key store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the signature keys of `jwks` under `scope`: keys without `use` or with
    /// `use: sig`. Keys for another use (`enc`, or a SPIFFE bundle's `x509-svid`,
    /// `jwt-svid`, `wit-svid`) are skipped, as are keys that do not parse (unknown type,
    /// private members), as RFC 7517 section 5 allows. For SPIFFE bundles use
    /// [`StaticKeys::add_jwks_for_use`].
    pub fn add_jwks(&mut self, scope: impl Into<String>, jwks: &Jwks) -> &mut Self {
        self.add_filtered(scope.into(), jwks, |u| matches!(u, None | Some("sig")))
    }

    /// Adds only the keys of `jwks` whose `use` is exactly `use_` (case-sensitive), e.g.
    /// `jwt-svid` or `wit-svid` keys of a SPIFFE bundle.
    pub fn add_jwks_for_use(
        &mut self,
        scope: impl Into<String>,
        jwks: &Jwks,
        use_: &str,
    ) -> &mut Self {
        self.add_filtered(scope.into(), jwks, |u| u == Some(use_))
    }

    fn add_filtered(
        &mut self,
        scope: String,
        jwks: &Jwks,
        keep: impl Fn(Option<&str>) -> bool,
    ) -> &mut Self {
        let entry = self.by_scope.entry(scope).or_default();
        for jwk in jwks.keys.iter().filter(|k| keep(k.use_.as_deref())) {
            if let Ok(k) = VerifyingKey::from_jwk(jwk) {
                entry.push((jwk.kid.clone(), k));
            }
        }
        self
    }

    /// Adds one key under `scope`.
    pub fn add_key(
        &mut self,
        scope: impl Into<String>,
        kid: Option<String>,
        key: VerifyingKey,
    ) -> &mut Self {
        self.by_scope
            .entry(scope.into())
            .or_default()
            .push((kid, key));
        self
    }
}

impl KeyResolver for StaticKeys {
    fn resolve(
        &self,
        scope: &str,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<VerifyingKey, JoseError> {
        let keys = self.by_scope.get(scope).ok_or(JoseError::UnknownKey)?;
        let mut candidates = keys
            .iter()
            .filter(|(k, key)| key.supports(alg) && (kid.is_none() || k.as_deref() == kid));
        let first = candidates.next().ok_or(JoseError::UnknownKey)?;
        if kid.is_none() && candidates.next().is_some() {
            // Several keys could apply and the token does not say which: refuse rather
            // than try them all.
            return Err(JoseError::MissingKid);
        }
        Ok(first.1.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aims_crypto::{Signer, SigningKey};

    #[test]
    fn resolves_by_scope_kid_and_alg() {
        let a = SigningKey::generate(Algorithm::ES256).unwrap();
        let b = SigningKey::generate(Algorithm::ES256).unwrap();
        let mut s = StaticKeys::new();
        s.add_jwks(
            "td",
            &Jwks {
                keys: vec![a.public_jwk().clone(), b.public_jwk().clone()],
            },
        );
        assert!(s.resolve("td", Some(a.kid()), Algorithm::ES256).is_ok());
        assert_eq!(
            s.resolve("td", Some("nope"), Algorithm::ES256).unwrap_err(),
            JoseError::UnknownKey
        );
        assert_eq!(
            s.resolve("other", Some(a.kid()), Algorithm::ES256)
                .unwrap_err(),
            JoseError::UnknownKey
        );
        assert_eq!(
            s.resolve("td", Some(a.kid()), Algorithm::ES384)
                .unwrap_err(),
            JoseError::UnknownKey
        );
        assert_eq!(
            s.resolve("td", None, Algorithm::ES256).unwrap_err(),
            JoseError::MissingKid
        );
    }

    #[test]
    fn key_use_is_respected() {
        let a = SigningKey::generate(Algorithm::ES256).unwrap();
        let mut x509 = a.public_jwk().clone();
        x509.use_ = Some("x509-svid".into());
        let mut jwt = a.public_jwk().clone();
        jwt.use_ = Some("jwt-svid".into());
        let kid = a.kid();
        let mut s = StaticKeys::new();
        s.add_jwks(
            "plain",
            &Jwks {
                keys: vec![x509.clone(), jwt.clone()],
            },
        );
        assert_eq!(
            s.resolve("plain", Some(kid), Algorithm::ES256).unwrap_err(),
            JoseError::UnknownKey
        );
        s.add_jwks_for_use("bundle", &Jwks { keys: vec![x509] }, "jwt-svid");
        assert_eq!(
            s.resolve("bundle", Some(kid), Algorithm::ES256)
                .unwrap_err(),
            JoseError::UnknownKey
        );
        s.add_jwks_for_use("bundle", &Jwks { keys: vec![jwt] }, "jwt-svid");
        assert!(s.resolve("bundle", Some(kid), Algorithm::ES256).is_ok());
    }
}
