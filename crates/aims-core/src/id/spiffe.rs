//! [`SpiffeId`]: `spiffe://<trust-domain>[/<path>]`.

use super::rules::{SPIFFE_PREFIX, check_path, check_segment, check_uri};
use super::{IdError, MAX_ID_LEN, TrustDomain, impl_string_type};

/// A SPIFFE ID (SPIFFE-ID section 2), such as `spiffe://example.org/agents/billing`.
///
/// See the [module documentation](super) for the exact rules and for how case and length
/// are handled. The string is stored once; [`trust_domain`](Self::trust_domain) and
/// [`path`](Self::path) are views into it. Equality, ordering and hashing are on the
/// complete URI.
pub struct SpiffeId {
    /// `td.buf()` is the whole ID; the name sits right after the `spiffe://` prefix.
    td: TrustDomain,
}

impl SpiffeId {
    /// Parses a SPIFFE ID.
    ///
    /// # Errors
    ///
    /// The [`IdError`] of the first rule broken, as go-spiffe would report it, or
    /// [`IdError::TooLong`] beyond [`MAX_ID_LEN`] bytes.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        Self::from_str_checked(s)
    }

    /// Builds `spiffe://<td><path>`, where `path` is empty (the root ID) or starts with `/`.
    ///
    /// # Errors
    ///
    /// [`IdError::NoLeadingSlash`] if a non-empty `path` lacks its leading `/`, any other
    /// path error [`parse`](Self::parse) would give, or [`IdError::TooLong`].
    pub fn from_path(td: &TrustDomain, path: &str) -> Result<Self, IdError> {
        check_path(path)?;
        Self::build(td, path.len(), |buf| buf.push_str(path))
    }

    /// Builds `spiffe://<td>/<segment>/<segment>...`; no segments gives the root ID.
    ///
    /// Generation is strict: each segment must be non-empty, not `.` or `..`, made only of
    /// `a-z A-Z 0-9 . - _` (so it cannot contain `/`), and the result may not exceed
    /// [`MAX_ID_LEN`] bytes (SPIFFE-ID: implementations SHOULD NOT generate longer IDs).
    ///
    /// # Errors
    ///
    /// [`IdError::EmptySegment`], [`IdError::DotSegment`], [`IdError::BadPathSegmentChar`]
    /// or [`IdError::TooLong`].
    pub fn from_segments(td: &TrustDomain, segments: &[&str]) -> Result<Self, IdError> {
        let mut path_len = 0usize;
        for segment in segments {
            check_segment(segment, false)?;
            path_len = path_len.saturating_add(segment.len()).saturating_add(1);
        }
        Self::build(td, path_len, |buf| {
            for segment in segments {
                buf.push('/');
                buf.push_str(segment);
            }
        })
    }

    /// The root ID of `td`; never fails because a trust domain is at most 255 bytes.
    pub(super) fn root(td: &TrustDomain) -> Self {
        let mut buf = String::with_capacity(SPIFFE_PREFIX.len() + td.as_str().len());
        buf.push_str(SPIFFE_PREFIX);
        buf.push_str(td.as_str());
        Self::from_checked(buf, SPIFFE_PREFIX.len() + td.as_str().len())
    }

    /// The trust domain, e.g. `example.org` for `spiffe://example.org/a`.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.td
    }

    /// The path, with its leading slash: `/a/b` for `spiffe://example.org/a/b`, and `""` for
    /// the root ID `spiffe://example.org`.
    pub fn path(&self) -> &str {
        // Invariant: `end()` is an ASCII boundary inside the buffer.
        self.td.buf().get(self.td.end()..).unwrap_or_default()
    }

    /// The path segments, without slashes; none for the root ID.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.path().split('/').skip(1)
    }

    /// Whether this is a trust domain's root ID (empty path). Leaf SVIDs need a non-root ID.
    pub fn is_root(&self) -> bool {
        self.path().is_empty()
    }

    /// Whether this ID belongs to `td`.
    pub fn is_member_of(&self, td: &TrustDomain) -> bool {
        self.td == *td
    }

    /// The complete ID.
    pub fn as_str(&self) -> &str {
        self.td.buf()
    }

    /// The complete ID, giving up the buffer without copying.
    pub fn into_string(self) -> String {
        self.td.into_buf()
    }

    /// Wraps an already checked ID whose trust domain ends at `td_end`.
    pub(super) fn from_checked(buf: String, td_end: usize) -> Self {
        Self {
            td: TrustDomain::embedded(buf, SPIFFE_PREFIX.len(), td_end),
        }
    }

    /// Checks the length, then writes `spiffe://<td>` followed by a path of `path_len`
    /// bytes written by `push_path`.
    fn build(
        td: &TrustDomain,
        path_len: usize,
        push_path: impl FnOnce(&mut String),
    ) -> Result<Self, IdError> {
        let td_end = SPIFFE_PREFIX.len() + td.as_str().len();
        let len = td_end.saturating_add(path_len);
        if len > MAX_ID_LEN {
            return Err(IdError::TooLong);
        }
        let mut buf = String::with_capacity(len);
        buf.push_str(SPIFFE_PREFIX);
        buf.push_str(td.as_str());
        push_path(&mut buf);
        Ok(Self::from_checked(buf, td_end))
    }

    fn from_str_checked(s: &str) -> Result<Self, IdError> {
        let td_end = check_uri(s, SPIFFE_PREFIX)?;
        Ok(Self::from_checked(s.to_owned(), td_end))
    }

    fn from_string_checked(s: String) -> Result<Self, IdError> {
        let td_end = check_uri(&s, SPIFFE_PREFIX)?;
        Ok(Self::from_checked(s, td_end))
    }
}

impl Clone for SpiffeId {
    fn clone(&self) -> Self {
        Self::from_checked(self.as_str().to_owned(), self.td.end())
    }
}

impl From<SpiffeId> for String {
    fn from(id: SpiffeId) -> Self {
        id.into_string()
    }
}

impl_string_type!(SpiffeId, "SPIFFE ID");
