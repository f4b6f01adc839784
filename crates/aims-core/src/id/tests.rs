//! Unit tests: one negative test per rule (every [`IdError`] variant is reached here), plus
//! the invariants of the shared-buffer layout. Public-API and vector tests live in
//! `tests/it/`.

use super::*;

fn td(name: &str) -> TrustDomain {
    TrustDomain::new(name).unwrap()
}

fn parse_err(s: &str) -> IdError {
    SpiffeId::parse(s).unwrap_err()
}

// --- one negative test per rule -------------------------------------------------------

#[test]
fn rejects_empty() {
    assert_eq!(parse_err(""), IdError::Empty);
    assert_eq!(WorkloadId::parse("").unwrap_err(), IdError::Empty);
}

#[test]
fn rejects_missing_or_wrong_scheme() {
    for s in [
        "example.org/a",
        "spiffe:/example.org",
        "spiffe:example.org",
        "SPIFFE://example.org",
        "Spiffe://example.org",
        "https://example.org/a",
        "wimse://example.org/a",
        " spiffe://example.org",
    ] {
        assert_eq!(parse_err(s), IdError::BadScheme, "{s:?}");
    }
    assert_eq!(
        WorkloadId::parse("WIMSE://example.org").unwrap_err(),
        IdError::BadScheme
    );
}

#[test]
fn rejects_missing_trust_domain() {
    assert_eq!(parse_err("spiffe://"), IdError::MissingTrustDomain);
    assert_eq!(parse_err("spiffe:///a"), IdError::MissingTrustDomain);
    assert_eq!(
        TrustDomain::new("").unwrap_err(),
        IdError::MissingTrustDomain
    );
    assert_eq!(
        WorkloadId::parse("wimse:///a").unwrap_err(),
        IdError::MissingTrustDomain
    );
}

#[test]
fn rejects_bad_trust_domain_chars() {
    for s in [
        "spiffe://Example.org",
        "spiffe://example.org:8443/a",
        "spiffe://user@example.org/a",
        "spiffe://ex%41mple.org/a",
        "spiffe://[::1]/a",
        "spiffe://exämple.org/a",
        "spiffe://example.org?x",
        "spiffe://example.org#x",
    ] {
        assert_eq!(parse_err(s), IdError::BadTrustDomainChar, "{s:?}");
    }
    assert_eq!(
        TrustDomain::new("spiffe://example.org").unwrap_err(),
        IdError::BadTrustDomainChar
    );
}

#[test]
fn rejects_bad_path_chars() {
    for s in [
        "spiffe://example.org/a b",
        "spiffe://example.org/a%2Fb",
        "spiffe://example.org/a?q=1",
        "spiffe://example.org/a#frag",
        "spiffe://example.org/a:b",
        "spiffe://example.org/ä",
        "spiffe://example.org/*",
    ] {
        assert_eq!(parse_err(s), IdError::BadPathSegmentChar, "{s:?}");
    }
    assert_eq!(
        SpiffeId::from_segments(&td("example.org"), &["a/b"]).unwrap_err(),
        IdError::BadPathSegmentChar
    );
}

#[test]
fn rejects_dot_segments() {
    for s in [
        "spiffe://example.org/.",
        "spiffe://example.org/..",
        "spiffe://example.org/a/./b",
        "spiffe://example.org/a/../b",
    ] {
        assert_eq!(parse_err(s), IdError::DotSegment, "{s:?}");
    }
    assert_eq!(
        SpiffeId::from_segments(&td("example.org"), &[".."]).unwrap_err(),
        IdError::DotSegment
    );
}

#[test]
fn rejects_empty_segments() {
    assert_eq!(parse_err("spiffe://example.org//a"), IdError::EmptySegment);
    assert_eq!(
        parse_err("spiffe://example.org/a//b"),
        IdError::EmptySegment
    );
    assert_eq!(
        SpiffeId::from_segments(&td("example.org"), &["a", ""]).unwrap_err(),
        IdError::EmptySegment
    );
}

#[test]
fn rejects_trailing_slash() {
    assert_eq!(parse_err("spiffe://example.org/"), IdError::TrailingSlash);
    assert_eq!(parse_err("spiffe://example.org/a/"), IdError::TrailingSlash);
    assert_eq!(
        SpiffeId::from_path(&td("example.org"), "/a/").unwrap_err(),
        IdError::TrailingSlash
    );
}

#[test]
fn rejects_path_without_leading_slash() {
    assert_eq!(
        SpiffeId::from_path(&td("example.org"), "a/b").unwrap_err(),
        IdError::NoLeadingSlash
    );
}

#[test]
fn rejects_identifier_over_2048_bytes() {
    let prefix = "spiffe://example.org/";
    let at_limit = format!("{prefix}{}", "a".repeat(MAX_ID_LEN - prefix.len()));
    assert_eq!(at_limit.len(), MAX_ID_LEN);
    assert!(SpiffeId::parse(&at_limit).is_ok());
    assert!(WorkloadId::parse(&at_limit).is_ok());

    let over = format!("{at_limit}a");
    assert_eq!(parse_err(&over), IdError::TooLong);
    assert_eq!(WorkloadId::parse(&over).unwrap_err(), IdError::TooLong);

    // Generation: the same limit, through both builders.
    let seg = "a".repeat(MAX_ID_LEN - prefix.len() + 1);
    assert_eq!(
        SpiffeId::from_segments(&td("example.org"), &[&seg]).unwrap_err(),
        IdError::TooLong
    );
    assert_eq!(
        SpiffeId::from_path(&td("example.org"), &format!("/{seg}")).unwrap_err(),
        IdError::TooLong
    );
    let seg = "a".repeat(MAX_ID_LEN - prefix.len());
    assert_eq!(
        SpiffeId::from_segments(&td("example.org"), &[&seg])
            .unwrap()
            .as_str()
            .len(),
        MAX_ID_LEN
    );
}

#[test]
fn rejects_trust_domain_over_255_bytes() {
    let name = "a".repeat(MAX_TRUST_DOMAIN_LEN);
    assert!(TrustDomain::new(&name).is_ok());
    assert!(SpiffeId::parse(&format!("spiffe://{name}/x")).is_ok());

    let name = "a".repeat(MAX_TRUST_DOMAIN_LEN + 1);
    assert_eq!(
        TrustDomain::new(&name).unwrap_err(),
        IdError::TrustDomainTooLong
    );
    assert_eq!(
        parse_err(&format!("spiffe://{name}/x")),
        IdError::TrustDomainTooLong
    );
}

// --- error precedence follows go-spiffe's left-to-right scan ---------------------------

#[test]
fn first_broken_rule_wins() {
    // A bad trust-domain character is seen before any path problem.
    assert_eq!(parse_err("spiffe://A//"), IdError::BadTrustDomainChar);
    // An empty segment is seen before a later bad character.
    assert_eq!(parse_err("spiffe://td//a?"), IdError::EmptySegment);
    // A bad character is seen before the segment it is in ends.
    assert_eq!(parse_err("spiffe://td/.?/a"), IdError::BadPathSegmentChar);
    // Length is checked before anything else.
    assert_eq!(parse_err(&"x".repeat(MAX_ID_LEN + 1)), IdError::TooLong);
}

#[test]
fn error_display_strings_are_go_spiffes() {
    let cases = [
        (IdError::Empty, "cannot be empty"),
        (IdError::BadScheme, "scheme is missing or invalid"),
        (IdError::MissingTrustDomain, "trust domain is missing"),
        (
            IdError::BadTrustDomainChar,
            "trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores",
        ),
        (
            IdError::BadPathSegmentChar,
            "path segment characters are limited to letters, numbers, dots, dashes, and underscores",
        ),
        (IdError::DotSegment, "path cannot contain dot segments"),
        (IdError::EmptySegment, "path cannot contain empty segments"),
        (IdError::TrailingSlash, "path cannot have a trailing slash"),
        (IdError::NoLeadingSlash, "path must have a leading slash"),
        (IdError::TooLong, "identifier cannot exceed 2048 bytes"),
        (
            IdError::TrustDomainTooLong,
            "trust domain cannot exceed 255 bytes",
        ),
    ];
    for (err, msg) in cases {
        assert_eq!(err.to_string(), msg);
    }
}

// --- shared-buffer layout -------------------------------------------------------------

#[test]
fn embedded_trust_domain_behaves_like_a_standalone_one() {
    let id = SpiffeId::parse("spiffe://example.org/a/b").unwrap();
    let embedded = id.trust_domain();
    let standalone = td("example.org");
    assert_eq!(*embedded, standalone);
    assert_eq!(embedded.as_str(), "example.org");
    assert_eq!(format!("{embedded:?}"), "TrustDomain(\"example.org\")");

    // Cloning copies only the name.
    let cloned = embedded.clone();
    assert_eq!(cloned.buf(), "example.org");
    assert_eq!(cloned, standalone);

    use std::hash::{BuildHasher, RandomState};
    let s = RandomState::new();
    assert_eq!(s.hash_one(embedded), s.hash_one(&standalone));
}

#[test]
fn clones_keep_layout() {
    let id = SpiffeId::parse("spiffe://example.org/a").unwrap();
    let c = id.clone();
    assert_eq!(c.trust_domain().as_str(), "example.org");
    assert_eq!(c.path(), "/a");

    let w = WorkloadId::parse("wimse://example.org/a").unwrap();
    let c = w.clone();
    assert_eq!(c.scheme(), IdScheme::Wimse);
    assert_eq!(c.trust_domain().as_str(), "example.org");
    assert_eq!(c.path(), "/a");
    assert_eq!(c, w);
}

#[test]
fn parse_from_string_reuses_the_buffer() {
    let s = String::from("spiffe://example.org/a");
    let ptr = s.as_ptr();
    let id = SpiffeId::try_from(s).unwrap();
    assert_eq!(id.as_str().as_ptr(), ptr);
    let back = id.into_string();
    assert_eq!(back.as_ptr(), ptr);
}
