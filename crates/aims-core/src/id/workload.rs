//! [`WorkloadId`]: a WIMSE Workload Identifier (draft-ietf-wimse-identifier).

use super::rules::{SPIFFE_PREFIX, WIMSE_PREFIX, check_uri};
use super::{IdError, SpiffeId, TrustDomain, impl_string_type};

/// The URI scheme of a [`WorkloadId`].
///
/// Deliberately exhaustive: authorisation code should match every scheme, so adding one
/// forces a review of each match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdScheme {
    /// `spiffe://`: a SPIFFE ID.
    Spiffe,
    /// `wimse://`: the scheme registered by draft-ietf-wimse-identifier.
    Wimse,
}

impl IdScheme {
    /// The scheme name, `spiffe` or `wimse`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Spiffe => "spiffe",
            Self::Wimse => "wimse",
        }
    }

    /// `scheme://`.
    const fn prefix(self) -> &'static str {
        match self {
            Self::Spiffe => SPIFFE_PREFIX,
            Self::Wimse => WIMSE_PREFIX,
        }
    }
}

impl std::fmt::Display for IdScheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Workload Identifier (draft-ietf-wimse-identifier): either a [`SpiffeId`] or a
/// `wimse://<trust-domain>[/<path>]` URI.
///
/// The draft asks for an absolute URI with a non-empty authority (the trust domain) and no
/// query, fragment, userinfo or port. For `wimse` we apply the SPIFFE character rules to the
/// trust domain and path as well, strictly, so both schemes accept the same shapes and
/// report the same [`IdError`]s. Like a SPIFFE ID, a `wimse` identifier may have an empty
/// path (`wimse://example.org`).
///
/// Consumers MUST compare identifiers on the complete URI: equality, ordering and hashing
/// are on [`as_str`](Self::as_str), so `spiffe://a/b` and `wimse://a/b` differ.
pub struct WorkloadId {
    repr: Repr,
}

enum Repr {
    Spiffe(SpiffeId),
    /// The trust domain embedded in the whole `wimse://` URI (see [`TrustDomain::embedded`]).
    Wimse(TrustDomain),
}

impl WorkloadId {
    /// Parses a `spiffe://` or `wimse://` identifier.
    ///
    /// # Errors
    ///
    /// [`IdError::BadScheme`] for any other scheme, otherwise as [`SpiffeId::parse`].
    pub fn parse(s: &str) -> Result<Self, IdError> {
        Self::from_str_checked(s)
    }

    /// The scheme.
    pub fn scheme(&self) -> IdScheme {
        match self.repr {
            Repr::Spiffe(_) => IdScheme::Spiffe,
            Repr::Wimse(_) => IdScheme::Wimse,
        }
    }

    /// The trust domain (the URI's authority).
    pub fn trust_domain(&self) -> &TrustDomain {
        match &self.repr {
            Repr::Spiffe(id) => id.trust_domain(),
            Repr::Wimse(td) => td,
        }
    }

    /// The path with its leading slash, or `""` when there is none.
    pub fn path(&self) -> &str {
        match &self.repr {
            Repr::Spiffe(id) => id.path(),
            // Invariant: `end()` is an ASCII boundary inside the buffer.
            Repr::Wimse(td) => td.buf().get(td.end()..).unwrap_or_default(),
        }
    }

    /// Whether the path is empty.
    pub fn is_root(&self) -> bool {
        self.path().is_empty()
    }

    /// The complete URI.
    pub fn as_str(&self) -> &str {
        match &self.repr {
            Repr::Spiffe(id) => id.as_str(),
            Repr::Wimse(td) => td.buf(),
        }
    }

    /// The SPIFFE ID, if the scheme is `spiffe`.
    pub fn as_spiffe(&self) -> Option<&SpiffeId> {
        match &self.repr {
            Repr::Spiffe(id) => Some(id),
            Repr::Wimse(_) => None,
        }
    }

    /// The Workload Identifier Origin: scheme and trust domain without the path, e.g.
    /// `spiffe://prod.example.org`.
    pub fn origin(&self) -> &str {
        let (buf, end) = match &self.repr {
            Repr::Spiffe(id) => (id.as_str(), id.trust_domain().end()),
            Repr::Wimse(td) => (td.buf(), td.end()),
        };
        // Invariant: `end` is an ASCII boundary inside the buffer.
        buf.get(..end).unwrap_or_default()
    }

    /// The complete URI, giving up the buffer without copying.
    pub fn into_string(self) -> String {
        match self.repr {
            Repr::Spiffe(id) => id.into_string(),
            Repr::Wimse(td) => td.into_buf(),
        }
    }

    fn check(s: &str) -> Result<(IdScheme, usize), IdError> {
        // Anything not `wimse://` is held to the SPIFFE rules, which report the empty
        // string, excess length and wrong schemes.
        let scheme = if s.starts_with(WIMSE_PREFIX) {
            IdScheme::Wimse
        } else {
            IdScheme::Spiffe
        };
        Ok((scheme, check_uri(s, scheme.prefix())?))
    }

    fn from_checked(buf: String, scheme: IdScheme, td_end: usize) -> Self {
        let repr = match scheme {
            IdScheme::Spiffe => Repr::Spiffe(SpiffeId::from_checked(buf, td_end)),
            IdScheme::Wimse => Repr::Wimse(TrustDomain::embedded(buf, WIMSE_PREFIX.len(), td_end)),
        };
        Self { repr }
    }

    fn from_str_checked(s: &str) -> Result<Self, IdError> {
        let (scheme, td_end) = Self::check(s)?;
        Ok(Self::from_checked(s.to_owned(), scheme, td_end))
    }

    fn from_string_checked(s: String) -> Result<Self, IdError> {
        let (scheme, td_end) = Self::check(&s)?;
        Ok(Self::from_checked(s, scheme, td_end))
    }
}

impl Clone for WorkloadId {
    fn clone(&self) -> Self {
        let end = self.trust_domain().end();
        Self::from_checked(self.as_str().to_owned(), self.scheme(), end)
    }
}

impl From<SpiffeId> for WorkloadId {
    fn from(id: SpiffeId) -> Self {
        Self {
            repr: Repr::Spiffe(id),
        }
    }
}

impl From<WorkloadId> for String {
    fn from(id: WorkloadId) -> Self {
        id.into_string()
    }
}

impl_string_type!(WorkloadId, "workload identifier");
