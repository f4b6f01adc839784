//! [`TrustDomain`]: the authority part of an identifier.

use super::rules::check_trust_domain;
use super::{IdError, SpiffeId, impl_string_type};

/// A trust domain name such as `example.org` (SPIFFE-ID section 2.1): 1 to 255 bytes of
/// `a-z 0-9 . - _`.
///
/// Equality, ordering and hashing are on the name. A `TrustDomain` borrowed from a
/// [`SpiffeId`] or [`WorkloadId`](super::WorkloadId) shares that identifier's buffer;
/// cloning it copies only the name.
pub struct TrustDomain {
    /// Holds the name at `start..end`. For a standalone trust domain this is the name
    /// alone; for one embedded in an identifier it is the whole identifier.
    buf: String,
    start: usize,
    end: usize,
}

impl TrustDomain {
    /// Parses a bare trust domain name (`example.org`, not `spiffe://example.org`).
    ///
    /// # Errors
    ///
    /// [`IdError::MissingTrustDomain`] for the empty string,
    /// [`IdError::BadTrustDomainChar`] for any byte outside `a-z 0-9 . - _`, and
    /// [`IdError::TrustDomainTooLong`] beyond 255 bytes.
    pub fn new(name: &str) -> Result<Self, IdError> {
        Self::from_str_checked(name)
    }

    /// The trust domain name, e.g. `example.org`.
    pub fn as_str(&self) -> &str {
        // Invariant: `start..end` lies inside `buf` on ASCII boundaries.
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    /// The trust domain's root SPIFFE ID, `spiffe://<name>`, with an empty path.
    pub fn id(&self) -> SpiffeId {
        SpiffeId::root(self)
    }

    /// Wraps part of an already checked identifier: `buf[start..end]` must be a valid trust
    /// domain name.
    pub(super) fn embedded(buf: String, start: usize, end: usize) -> Self {
        Self { buf, start, end }
    }

    /// The buffer this trust domain lives in (the whole identifier for an embedded one).
    pub(super) fn buf(&self) -> &str {
        &self.buf
    }

    /// Gives the buffer back.
    pub(super) fn into_buf(self) -> String {
        self.buf
    }

    /// Offset in [`buf`](Self::buf) just past the name.
    pub(super) fn end(&self) -> usize {
        self.end
    }

    fn from_str_checked(name: &str) -> Result<Self, IdError> {
        check_trust_domain(name)?;
        Ok(Self::whole(name.to_owned()))
    }

    fn from_string_checked(name: String) -> Result<Self, IdError> {
        check_trust_domain(&name)?;
        Ok(Self::whole(name))
    }

    fn whole(buf: String) -> Self {
        let end = buf.len();
        Self { buf, start: 0, end }
    }
}

impl Clone for TrustDomain {
    fn clone(&self) -> Self {
        Self::whole(self.as_str().to_owned())
    }
}

impl_string_type!(TrustDomain, "trust domain");
