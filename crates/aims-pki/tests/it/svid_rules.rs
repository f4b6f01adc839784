//! One test per X509-SVID validation rule (X509-SVID §3–§5), with certificates crafted by
//! rcgen so that exactly one rule is broken. Rules that webpki would also catch are checked
//! through `X509Svid::from_parts`, which runs the SPIFFE rules without path validation, so
//! each test fails if our own rule is removed.

use std::time::Duration;

use aims_pki::svid::{self, SvidUsage, VerifyOptions};
use aims_pki::{SpiffeBundle, SvidError, TrustStore, X509Svid};
use rcgen::string::Ia5String;
use rcgen::{ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose, SanType};
use rustls_pki_types::CertificateDer;

use crate::common::*;

const ID: &str = "spiffe://example.org/workload";

fn verify(
    chain: &[CertificateDer<'_>],
    store: &TrustStore,
) -> Result<svid::VerifiedSvid, SvidError> {
    svid::verify(chain, store, T0, &VerifyOptions::default())
}

/// The SPIFFE-rule verdict alone (no path validation).
fn rules(chain: Vec<CertificateDer<'static>>, key: &rcgen::KeyPair) -> Result<X509Svid, SvidError> {
    X509Svid::from_parts(chain, pkcs8(key))
}

struct Fixture {
    ca: aims_pki::CertificateAuthority,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    store: TrustStore,
}

fn fixture() -> Fixture {
    let c = clock();
    let ca = root_ca("example.org", &c);
    let issuer = rcgen_issuer(&ca);
    let store = TrustStore::from_bundles([ca.bundle().unwrap()]);
    Fixture { ca, issuer, store }
}

#[test]
fn crafted_good_leaf_passes_every_rule() {
    let f = fixture();
    let (leaf, key) = crafted_leaf(&f.issuer, ID, |_| {});
    assert_eq!(
        rules(vec![leaf.clone()], &key).unwrap().spiffe_id(),
        &id(ID)
    );
    assert_eq!(verify(&[leaf], &f.store).unwrap().spiffe_id(), &id(ID));
}

#[test]
fn empty_chain() {
    assert_eq!(verify(&[], &TrustStore::new()), Err(SvidError::EmptyChain));
}

#[test]
fn unparseable_leaf_and_intermediate() {
    let f = fixture();
    let garbage = CertificateDer::from(vec![0x30, 0x03, 1, 2, 3]);
    assert_eq!(
        verify(std::slice::from_ref(&garbage), &f.store),
        Err(SvidError::Unparseable { index: 0 })
    );
    let (leaf, _) = crafted_leaf(&f.issuer, ID, |_| {});
    assert_eq!(
        verify(&[leaf.clone(), garbage], &f.store),
        Err(SvidError::Unparseable { index: 1 })
    );
    // Trailing bytes after the certificate are refused too.
    let mut padded = leaf.to_vec();
    padded.push(0);
    assert_eq!(
        verify(&[padded.into()], &f.store),
        Err(SvidError::Unparseable { index: 0 })
    );
}

#[test]
fn leaf_without_uri_san() {
    let f = fixture();
    let (leaf, key) = crafted_leaf(&f.issuer, ID, |p| {
        p.subject_alt_names = vec![SanType::DnsName(
            Ia5String::try_from("example.org").unwrap(),
        )];
    });
    assert_eq!(
        rules(vec![leaf.clone()], &key).unwrap_err(),
        SvidError::LeafNoUriSan
    );
    assert_eq!(verify(&[leaf], &f.store), Err(SvidError::LeafNoUriSan));
}

#[test]
fn leaf_with_two_uri_sans() {
    let f = fixture();
    let (leaf, key) = crafted_leaf(&f.issuer, ID, |p| {
        p.subject_alt_names.push(SanType::URI(
            Ia5String::try_from("spiffe://example.org/other").unwrap(),
        ));
    });
    assert_eq!(
        rules(vec![leaf.clone()], &key).unwrap_err(),
        SvidError::LeafMultipleUriSans { count: 2 }
    );
    assert_eq!(
        verify(&[leaf], &f.store),
        Err(SvidError::LeafMultipleUriSans { count: 2 })
    );
}

#[test]
fn leaf_uri_san_not_a_spiffe_id() {
    let f = fixture();
    for (uri, why) in [
        (
            "https://example.org/workload",
            aims_core::IdError::BadScheme,
        ),
        (
            "SPIFFE://example.org/workload",
            aims_core::IdError::BadScheme,
        ),
        (
            "spiffe://Example.org/workload",
            aims_core::IdError::BadTrustDomainChar,
        ),
        (
            "spiffe://example.org/a/../b",
            aims_core::IdError::DotSegment,
        ),
    ] {
        let (leaf, key) = crafted_leaf(&f.issuer, uri, |_| {});
        assert_eq!(
            rules(vec![leaf.clone()], &key).unwrap_err(),
            SvidError::LeafInvalidSpiffeId(why),
            "{uri}"
        );
        assert_eq!(
            verify(&[leaf], &f.store),
            Err(SvidError::LeafInvalidSpiffeId(why))
        );
    }
}

#[test]
fn leaf_with_root_id() {
    let f = fixture();
    let (leaf, key) = crafted_leaf(&f.issuer, "spiffe://example.org", |_| {});
    assert_eq!(
        rules(vec![leaf.clone()], &key).unwrap_err(),
        SvidError::LeafRootId
    );
    assert_eq!(verify(&[leaf], &f.store), Err(SvidError::LeafRootId));
}

#[test]
fn leaf_that_is_a_ca() {
    let f = fixture();
    let (leaf, key) = crafted_leaf(&f.issuer, ID, |p| {
        p.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    });
    assert_eq!(
        rules(vec![leaf.clone()], &key).unwrap_err(),
        SvidError::LeafIsCa
    );
    assert_eq!(verify(&[leaf], &f.store), Err(SvidError::LeafIsCa));
}

#[test]
fn leaf_without_key_usage() {
    let f = fixture();
    let (leaf, key) = crafted_leaf(&f.issuer, ID, |p| p.key_usages.clear());
    assert_eq!(
        rules(vec![leaf.clone()], &key).unwrap_err(),
        SvidError::LeafKeyUsageMissing
    );
    assert_eq!(
        verify(&[leaf], &f.store),
        Err(SvidError::LeafKeyUsageMissing)
    );
}

#[test]
fn leaf_without_digital_signature() {
    let f = fixture();
    let (leaf, key) = crafted_leaf(&f.issuer, ID, |p| {
        p.key_usages = vec![KeyUsagePurpose::KeyAgreement];
    });
    assert_eq!(
        rules(vec![leaf.clone()], &key).unwrap_err(),
        SvidError::LeafMissingDigitalSignature
    );
    assert_eq!(
        verify(&[leaf], &f.store),
        Err(SvidError::LeafMissingDigitalSignature)
    );
}

#[test]
fn leaf_with_key_cert_sign() {
    let f = fixture();
    let (leaf, key) = crafted_leaf(&f.issuer, ID, |p| {
        p.key_usages.push(KeyUsagePurpose::KeyCertSign);
    });
    assert_eq!(
        rules(vec![leaf.clone()], &key).unwrap_err(),
        SvidError::LeafHasKeyCertSign
    );
    assert_eq!(
        verify(&[leaf], &f.store),
        Err(SvidError::LeafHasKeyCertSign)
    );
}

#[test]
fn leaf_with_crl_sign() {
    let f = fixture();
    let (leaf, key) = crafted_leaf(&f.issuer, ID, |p| {
        p.key_usages.push(KeyUsagePurpose::CrlSign);
    });
    assert_eq!(
        rules(vec![leaf.clone()], &key).unwrap_err(),
        SvidError::LeafHasCrlSign
    );
    assert_eq!(verify(&[leaf], &f.store), Err(SvidError::LeafHasCrlSign));
}

#[test]
fn intermediate_that_is_not_a_ca() {
    let f = fixture();
    let (int, int_issuer) = crafted_intermediate(&f.issuer, "example.org", |p| {
        p.is_ca = IsCa::ExplicitNoCa;
    });
    let (leaf, key) = crafted_leaf(&int_issuer, ID, |_| {});
    let chain = vec![leaf, int];
    assert_eq!(
        rules(chain.clone(), &key).unwrap_err(),
        SvidError::IntermediateNotCa { index: 1 }
    );
    assert_eq!(
        verify(&chain, &f.store),
        Err(SvidError::IntermediateNotCa { index: 1 })
    );
}

#[test]
fn intermediate_without_key_cert_sign() {
    let f = fixture();
    let (int, int_issuer) = crafted_intermediate(&f.issuer, "example.org", |p| {
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::CrlSign];
    });
    let (leaf, key) = crafted_leaf(&int_issuer, ID, |_| {});
    let chain = vec![leaf, int];
    assert_eq!(
        rules(chain.clone(), &key).unwrap_err(),
        SvidError::IntermediateNoKeyCertSign { index: 1 }
    );
    assert_eq!(
        verify(&chain, &f.store),
        Err(SvidError::IntermediateNoKeyCertSign { index: 1 })
    );
}

#[test]
fn intermediate_with_a_non_root_spiffe_id() {
    let f = fixture();
    for uri in ["spiffe://example.org/ca", "https://example.org"] {
        let (int, int_issuer) = crafted_intermediate(&f.issuer, "example.org", |p| {
            p.subject_alt_names = vec![SanType::URI(Ia5String::try_from(uri).unwrap())];
        });
        let (leaf, key) = crafted_leaf(&int_issuer, ID, |_| {});
        let chain = vec![leaf, int];
        assert_eq!(
            rules(chain.clone(), &key).unwrap_err(),
            SvidError::IntermediateBadSpiffeId { index: 1 }
        );
        assert_eq!(
            verify(&chain, &f.store),
            Err(SvidError::IntermediateBadSpiffeId { index: 1 })
        );
    }
    // An intermediate with the root ID, or without URI SAN, is fine.
    let (int, int_issuer) =
        crafted_intermediate(&f.issuer, "example.org", |p| p.subject_alt_names.clear());
    let (leaf, _) = crafted_leaf(&int_issuer, ID, |_| {});
    assert!(verify(&[leaf, int], &f.store).is_ok());
    let (int, int_issuer) = crafted_intermediate(&f.issuer, "example.org", |_| {});
    let (leaf, _) = crafted_leaf(&int_issuer, ID, |_| {});
    assert!(verify(&[leaf, int], &f.store).is_ok());
}

#[test]
fn trust_domain_not_allowed() {
    let f = fixture();
    let (leaf, _) = crafted_leaf(&f.issuer, ID, |_| {});
    let other = [td("other.org")];
    let opts = VerifyOptions {
        allowed_trust_domains: Some(&other),
        ..VerifyOptions::default()
    };
    assert_eq!(
        svid::verify(std::slice::from_ref(&leaf), &f.store, T0, &opts),
        Err(SvidError::TrustDomainNotAllowed(td("example.org")))
    );
    let ok = [td("example.org")];
    let opts = VerifyOptions {
        allowed_trust_domains: Some(&ok),
        ..VerifyOptions::default()
    };
    assert!(svid::verify(&[leaf], &f.store, T0, &opts).is_ok());
}

#[test]
fn no_bundle_for_the_trust_domain() {
    let f = fixture();
    let (leaf, _) = crafted_leaf(&f.issuer, ID, |_| {});
    assert_eq!(
        verify(&[leaf], &TrustStore::new()),
        Err(SvidError::NoBundle(td("example.org")))
    );
}

#[test]
fn bundle_without_x509_authorities_rejects_everything() {
    let f = fixture();
    let (leaf, _) = crafted_leaf(&f.issuer, ID, |_| {});
    // `"keys": []`: the trust domain revoked all its keys.
    let empty = SpiffeBundle::parse(td("example.org"), br#"{"keys":[]}"#).unwrap();
    let store = TrustStore::from_bundles([empty]);
    assert_eq!(
        verify(&[leaf], &store),
        Err(SvidError::NoX509Authorities(td("example.org")))
    );
}

#[test]
fn expired_and_not_yet_valid() {
    let f = fixture();
    let svid =
        f.ca.issue_x509_svid(&id(ID), Duration::from_secs(3600), &[])
            .unwrap();
    let opts = VerifyOptions::default();
    assert!(svid::verify(svid.chain(), &f.store, T0 + 3600, &opts).is_ok());
    assert_eq!(
        svid::verify(svid.chain(), &f.store, T0 + 3601, &opts),
        Err(SvidError::Expired {
            not_after: (T0 + 3600) as u64,
            now: (T0 + 3601) as u64
        })
    );
    assert!(matches!(
        svid::verify(svid.chain(), &f.store, T0 - 3600, &opts),
        Err(SvidError::NotYetValid { .. })
    ));
}

#[test]
fn unknown_issuer() {
    let f = fixture();
    // Self-signed leaf.
    let (leaf, _) = self_signed_leaf(ID);
    assert_eq!(verify(&[leaf], &f.store), Err(SvidError::UnknownIssuer));
    // A leaf claiming example.org, signed by another trust domain's CA that the store also
    // trusts: only example.org's authorities are anchors for it.
    let c = clock();
    let evil = root_ca("evil.org", &c);
    let (leaf, _) = crafted_leaf(&rcgen_issuer(&evil), ID, |_| {});
    let store = TrustStore::from_bundles([f.ca.bundle().unwrap(), evil.bundle().unwrap()]);
    assert_eq!(verify(&[leaf], &store), Err(SvidError::UnknownIssuer));
}

#[test]
fn bad_signature() {
    let f = fixture();
    let svid =
        f.ca.issue_x509_svid(&id(ID), Duration::from_secs(3600), &[])
            .unwrap();
    let mut der = svid.leaf().to_vec();
    let last = der.len() - 1;
    der[last] ^= 0x01;
    assert_eq!(
        verify(&[der.into()], &f.store),
        Err(SvidError::BadSignature)
    );
}

#[test]
fn extended_key_usage_must_permit_the_use() {
    let f = fixture();
    let (leaf, _) = crafted_leaf(&f.issuer, ID, |p| {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    });
    let chain = [leaf];
    let client = VerifyOptions {
        usage: SvidUsage::ClientAuth,
        ..VerifyOptions::default()
    };
    let server = VerifyOptions {
        usage: SvidUsage::ServerAuth,
        ..VerifyOptions::default()
    };
    assert_eq!(
        svid::verify(&chain, &f.store, T0, &client),
        Err(SvidError::ExtendedKeyUsage)
    );
    assert!(svid::verify(&chain, &f.store, T0, &server).is_ok());
    assert!(svid::verify(&chain, &f.store, T0, &VerifyOptions::default()).is_ok());
}

#[test]
fn key_must_match_the_leaf() {
    let f = fixture();
    let (leaf, _) = crafted_leaf(&f.issuer, ID, |_| {});
    let other = rcgen::KeyPair::generate().unwrap();
    assert_eq!(
        rules(vec![leaf], &other).unwrap_err(),
        SvidError::KeyMismatch
    );
}

#[test]
fn peer_id_extraction() {
    let f = fixture();
    let svid =
        f.ca.issue_x509_svid(&id(ID), Duration::from_secs(60), &[])
            .unwrap();
    assert_eq!(svid::peer_spiffe_id(Some(svid.chain())).unwrap(), id(ID));
}
