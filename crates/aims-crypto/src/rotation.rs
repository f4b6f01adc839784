//! Key rotation: previous, current and next keys, each with its own `kid`.
//!
//! The *next* key is published before it signs anything, so verifiers that cache the
//! key set already trust it when it becomes current; the *previous* key stays
//! published until tokens it signed have expired.

use std::sync::Arc;

use crate::{Jwks, Signer};

/// A signing key with its successor and predecessor.
#[derive(Debug, Clone)]
pub struct KeyRing {
    previous: Option<Arc<dyn Signer>>,
    current: Arc<dyn Signer>,
    next: Option<Arc<dyn Signer>>,
}

impl KeyRing {
    /// A ring with only a current key.
    pub fn new(current: Arc<dyn Signer>) -> Self {
        Self {
            previous: None,
            current,
            next: None,
        }
    }

    /// A ring with all three positions given.
    pub fn from_parts(
        previous: Option<Arc<dyn Signer>>,
        current: Arc<dyn Signer>,
        next: Option<Arc<dyn Signer>>,
    ) -> Self {
        Self {
            previous,
            current,
            next,
        }
    }

    /// The key that signs now.
    pub fn current(&self) -> &Arc<dyn Signer> {
        &self.current
    }
    /// The key that signed before the last rotation.
    pub fn previous(&self) -> Option<&Arc<dyn Signer>> {
        self.previous.as_ref()
    }
    /// The key that will sign after the next rotation (already published).
    pub fn next(&self) -> Option<&Arc<dyn Signer>> {
        self.next.as_ref()
    }

    /// Stages `next` (published from now on, not yet signing).
    pub fn stage(&mut self, next: Arc<dyn Signer>) {
        self.next = Some(next);
    }

    /// Rotates: current becomes previous, next becomes current, and `new_next` is staged.
    /// Returns `false` (and changes nothing) when no next key was staged.
    pub fn rotate(&mut self, new_next: Option<Arc<dyn Signer>>) -> bool {
        let Some(next) = self.next.take() else {
            return false;
        };
        self.previous = Some(std::mem::replace(&mut self.current, next));
        self.next = new_next;
        true
    }

    /// Drops the previous key once nothing it signed can still be valid.
    pub fn retire_previous(&mut self) {
        self.previous = None;
    }

    /// The public keys to publish: current, next, previous (each once).
    pub fn jwks(&self) -> Jwks {
        let mut keys = vec![self.current.public_jwk().clone()];
        keys.extend(self.next.iter().map(|k| k.public_jwk().clone()));
        keys.extend(self.previous.iter().map(|k| k.public_jwk().clone()));
        Jwks { keys }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Algorithm, SigningKey};

    fn key() -> Arc<dyn Signer> {
        Arc::new(SigningKey::generate(Algorithm::ES256).unwrap())
    }

    #[test]
    fn next_is_published_before_it_signs_and_previous_after() {
        let (a, b, c) = (key(), key(), key());
        let mut ring = KeyRing::new(a.clone());
        assert!(
            !ring.rotate(None),
            "rotation without a staged key is refused"
        );
        ring.stage(b.clone());
        let kids: Vec<_> = ring.jwks().keys.into_iter().filter_map(|k| k.kid).collect();
        assert_eq!(kids, [a.kid(), b.kid()]);
        assert_eq!(ring.current().kid(), a.kid());
        assert!(ring.rotate(Some(c.clone())));
        assert_eq!(ring.current().kid(), b.kid());
        let kids: Vec<_> = ring.jwks().keys.into_iter().filter_map(|k| k.kid).collect();
        assert_eq!(kids, [b.kid(), c.kid(), a.kid()]);
        ring.retire_previous();
        assert_eq!(ring.jwks().keys.len(), 2);
    }
}
