//! The one error type of identifier parsing and generation.

use super::{MAX_ID_LEN, MAX_TRUST_DOMAIN_LEN};

/// Why a string is not a valid identifier.
///
/// The `Display` strings of the first nine variants are exactly go-spiffe's
/// (`spiffeid/errors.go`), so logs and parity tests line up with SPIRE deployments. The
/// remaining variants cover limits go-spiffe does not enforce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The input is the empty string.
    #[error("cannot be empty")]
    Empty,
    /// The input does not start with `spiffe://` (or `wimse://` where a [`WorkloadId`] is
    /// parsed). Scheme case is significant: `SPIFFE://` is rejected.
    ///
    /// [`WorkloadId`]: super::WorkloadId
    #[error("scheme is missing or invalid")]
    BadScheme,
    /// Nothing between `://` and the first `/`.
    #[error("trust domain is missing")]
    MissingTrustDomain,
    /// A trust domain byte outside `a-z 0-9 . - _` (this covers upper case, userinfo, ports,
    /// percent-encoding and IPv6 literals).
    #[error(
        "trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores"
    )]
    BadTrustDomainChar,
    /// A path byte outside `a-z A-Z 0-9 . - _ /` (this covers percent-encoding, queries and
    /// fragments), or a `/` inside a segment given to [`SpiffeId::from_segments`].
    ///
    /// [`SpiffeId::from_segments`]: super::SpiffeId::from_segments
    #[error(
        "path segment characters are limited to letters, numbers, dots, dashes, and underscores"
    )]
    BadPathSegmentChar,
    /// A path segment equal to `.` or `..`.
    #[error("path cannot contain dot segments")]
    DotSegment,
    /// Two consecutive slashes in the path, or an empty segment given to
    /// [`SpiffeId::from_segments`].
    ///
    /// [`SpiffeId::from_segments`]: super::SpiffeId::from_segments
    #[error("path cannot contain empty segments")]
    EmptySegment,
    /// The path ends with `/`.
    #[error("path cannot have a trailing slash")]
    TrailingSlash,
    /// A non-empty path given to [`SpiffeId::from_path`] that does not start with `/`.
    ///
    /// [`SpiffeId::from_path`]: super::SpiffeId::from_path
    #[error("path must have a leading slash")]
    NoLeadingSlash,
    /// The whole identifier is longer than [`MAX_ID_LEN`] bytes.
    #[error("identifier cannot exceed {} bytes", MAX_ID_LEN)]
    TooLong,
    /// The trust domain is longer than [`MAX_TRUST_DOMAIN_LEN`] bytes.
    #[error("trust domain cannot exceed {} bytes", MAX_TRUST_DOMAIN_LEN)]
    TrustDomainTooLong,
}
