//! `Content-Digest` (RFC 9530): produce and verify.

use aims_crypto::{b64, ct_eq, sha256, sha512};
use http::HeaderMap;
use sfv::{BareItem, Dictionary, ListEntry, Parser, Version};

use crate::HttpSigError;

/// The `Content-Digest` header name.
pub const CONTENT_DIGEST: &str = "content-digest";

/// The largest `Content-Digest` accepted, in bytes.
const MAX_DIGEST_HEADER_BYTES: usize = 4096;

/// The digest algorithms AIMS produces and accepts (RFC 9530 section 5, status
/// "Active"). The deprecated ones (`md5`, `sha`, `unixsum`, `unixcksum`, `adler`,
/// `crc32c`) are ignored on input, as section 5 requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    /// `sha-256`.
    Sha256,
    /// `sha-512`.
    Sha512,
}

impl DigestAlgorithm {
    /// The registered key.
    pub fn name(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "sha-256",
            DigestAlgorithm::Sha512 => "sha-512",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha-256" => Some(DigestAlgorithm::Sha256),
            "sha-512" => Some(DigestAlgorithm::Sha512),
            _ => None,
        }
    }

    fn digest(self, body: &[u8]) -> Vec<u8> {
        match self {
            DigestAlgorithm::Sha256 => sha256(body).to_vec(),
            DigestAlgorithm::Sha512 => sha512(body).to_vec(),
        }
    }
}

/// The `Content-Digest` value for `body` with each of `algorithms`, in order, e.g.
/// `sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:`.
pub fn content_digest(body: &[u8], algorithms: &[DigestAlgorithm]) -> String {
    algorithms
        .iter()
        .map(|a| format!("{}=:{}:", a.name(), b64::encode_std(a.digest(body))))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks the `Content-Digest` of `headers` against `body` (the content as sent, before
/// any content coding is removed: RFC 9530 section 2).
///
/// Every `sha-256` and `sha-512` member must match (compared in constant time) and at
/// least one must be present; other algorithms are ignored. Returns the algorithms that
/// matched.
pub fn verify_content_digest(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<DigestAlgorithm>, HttpSigError> {
    let dict =
        crate::signature::header_dictionary(headers, CONTENT_DIGEST, MAX_DIGEST_HEADER_BYTES)
            .map_err(|e| match e {
                HttpSigError::HeaderTooLarge(n) => HttpSigError::HeaderTooLarge(n),
                _ => HttpSigError::MalformedContentDigest,
            })?
            .ok_or(HttpSigError::MissingContentDigest)?;
    verify_dictionary(&dict, body)
}

fn verify_dictionary(dict: &Dictionary, body: &[u8]) -> Result<Vec<DigestAlgorithm>, HttpSigError> {
    let mut matched = Vec::new();
    for (name, entry) in dict {
        let Some(alg) = DigestAlgorithm::from_name(name.as_str()) else {
            continue;
        };
        let ListEntry::Item(item) = entry else {
            return Err(HttpSigError::MalformedContentDigest);
        };
        let BareItem::ByteSequence(expected) = &item.bare_item else {
            return Err(HttpSigError::MalformedContentDigest);
        };
        if !ct_eq(expected, &alg.digest(body)) {
            return Err(HttpSigError::ContentDigestMismatch);
        }
        matched.push(alg);
    }
    if matched.is_empty() {
        return Err(HttpSigError::UnsupportedDigestAlgorithm);
    }
    Ok(matched)
}

/// Parses a `Content-Digest` value alone (for callers without a `HeaderMap`).
pub fn verify_content_digest_value(value: &str, body: &[u8]) -> Result<(), HttpSigError> {
    if value.len() > MAX_DIGEST_HEADER_BYTES {
        return Err(HttpSigError::HeaderTooLarge("content-digest"));
    }
    let dict: Dictionary = Parser::new(value)
        .with_version(Version::Rfc8941)
        .parse()
        .map_err(|_| HttpSigError::MalformedContentDigest)?;
    verify_dictionary(&dict, body).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"hello": "world"}"#;

    #[test]
    fn rfc9530_and_rfc9421_b2_digests() {
        assert_eq!(
            content_digest(BODY, &[DigestAlgorithm::Sha256]),
            "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
        );
        assert_eq!(
            content_digest(BODY, &[DigestAlgorithm::Sha512]),
            "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:"
        );
        assert_eq!(
            content_digest(br#"{"message": "good dog"}"#, &[DigestAlgorithm::Sha512]),
            "sha-512=:mEWXIS7MaLRuGgxOBdODa3xqM1XdEvxoYhvlCFJ41QJgJc4GTsPp29l5oGX69wWdXymyU0rjJuahq4l5aGgfLQ==:"
        );
        let both = content_digest(BODY, &[DigestAlgorithm::Sha256, DigestAlgorithm::Sha512]);
        let mut h = HeaderMap::new();
        h.insert(CONTENT_DIGEST, both.parse().unwrap());
        assert_eq!(
            verify_content_digest(&h, BODY).unwrap(),
            [DigestAlgorithm::Sha256, DigestAlgorithm::Sha512]
        );
    }

    #[test]
    fn mismatch_missing_malformed_unsupported() {
        let mut h = HeaderMap::new();
        assert_eq!(
            verify_content_digest(&h, BODY),
            Err(HttpSigError::MissingContentDigest)
        );
        h.insert(
            CONTENT_DIGEST,
            content_digest(BODY, &[DigestAlgorithm::Sha256])
                .parse()
                .unwrap(),
        );
        assert_eq!(
            verify_content_digest(&h, b"{\"hello\": \"World\"}"),
            Err(HttpSigError::ContentDigestMismatch)
        );
        // One good and one bad member: the bad one fails the message.
        let mixed = format!(
            "{}, sha-512=:AAAA:",
            content_digest(BODY, &[DigestAlgorithm::Sha256])
        );
        assert_eq!(
            verify_content_digest_value(&mixed, BODY),
            Err(HttpSigError::ContentDigestMismatch)
        );
        assert_eq!(
            verify_content_digest_value("md5=:AAAA:", BODY),
            Err(HttpSigError::UnsupportedDigestAlgorithm)
        );
        assert_eq!(
            verify_content_digest_value("sha-256=abc", BODY),
            Err(HttpSigError::MalformedContentDigest)
        );
        assert_eq!(
            verify_content_digest_value("sha-256=(:AAAA:)", BODY),
            Err(HttpSigError::MalformedContentDigest)
        );
        assert_eq!(
            verify_content_digest_value("not a dictionary", BODY),
            Err(HttpSigError::MalformedContentDigest)
        );
        // Unknown algorithms next to a good one are ignored.
        let with_unknown = format!(
            "md5=:AAAA:, {}",
            content_digest(BODY, &[DigestAlgorithm::Sha256])
        );
        assert_eq!(verify_content_digest_value(&with_unknown, BODY), Ok(()));
    }
}
