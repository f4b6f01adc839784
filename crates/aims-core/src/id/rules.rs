//! The character and structure rules, shared by every identifier type.
//!
//! All checks work on bytes and accept only ASCII, so every offset they return is a char
//! boundary of the checked string.

use super::{IdError, MAX_ID_LEN, MAX_TRUST_DOMAIN_LEN};

/// Scheme and authority marker of a SPIFFE ID.
pub(super) const SPIFFE_PREFIX: &str = "spiffe://";

/// Scheme and authority marker of a `wimse` Workload Identifier.
pub(super) const WIMSE_PREFIX: &str = "wimse://";

/// `a-z 0-9 . - _` (SPIFFE-ID section 2.1).
const fn is_trust_domain_byte(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_')
}

/// `a-z A-Z 0-9 . - _` (SPIFFE-ID section 2.2).
const fn is_path_byte(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_')
}

/// Checks a bare trust domain name.
pub(super) fn check_trust_domain(td: &str) -> Result<(), IdError> {
    if !td.bytes().all(is_trust_domain_byte) {
        return Err(IdError::BadTrustDomainChar);
    }
    if td.is_empty() {
        return Err(IdError::MissingTrustDomain);
    }
    if td.len() > MAX_TRUST_DOMAIN_LEN {
        return Err(IdError::TrustDomainTooLong);
    }
    Ok(())
}

/// Checks one path segment (without its slash). `last` tells an empty final segment (a
/// trailing slash) from an empty inner one.
pub(super) fn check_segment(segment: &str, last: bool) -> Result<(), IdError> {
    // Characters first: go-spiffe reports a bad character before the segment ends.
    if !segment.bytes().all(is_path_byte) {
        return Err(IdError::BadPathSegmentChar);
    }
    match segment {
        "" if last => Err(IdError::TrailingSlash),
        "" => Err(IdError::EmptySegment),
        "." | ".." => Err(IdError::DotSegment),
        _ => Ok(()),
    }
}

/// Checks a path: empty, or `/segment` repeated.
pub(super) fn check_path(path: &str) -> Result<(), IdError> {
    let Some(rest) = path.strip_prefix('/') else {
        return if path.is_empty() {
            Ok(())
        } else {
            Err(IdError::NoLeadingSlash)
        };
    };
    let mut segments = rest.split('/').peekable();
    while let Some(segment) = segments.next() {
        check_segment(segment, segments.peek().is_none())?;
    }
    Ok(())
}

/// Checks a complete identifier whose scheme prefix (`scheme://`) is `prefix`, and returns
/// the offset where its trust domain ends and its path begins.
pub(super) fn check_uri(s: &str, prefix: &str) -> Result<usize, IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong);
    }
    let rest = s.strip_prefix(prefix).ok_or(IdError::BadScheme)?;
    let td_len = rest.find('/').unwrap_or(rest.len());
    // `td_len` is the offset of an ASCII `/` or the end, so the split cannot fail; the error
    // is only there to avoid a panic path.
    let (td, path) = rest
        .split_at_checked(td_len)
        .ok_or(IdError::BadTrustDomainChar)?;
    check_trust_domain(td)?;
    check_path(path)?;
    Ok(prefix.len() + td_len)
}
