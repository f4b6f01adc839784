//! go-spiffe's X509-SVID vectors (`svid/x509svid/testdata`, copied in
//! `tests/vectors/x509svid`): every file gives go-spiffe's verdict (`TestParse` in
//! `svid/x509svid/svid_test.go`), with the matching `SvidError` variant.

use aims_pki::svid::{self, VerifyOptions};
use aims_pki::{SpiffeBundle, SvidError, X509Svid};

use crate::common::*;

fn v(name: &str) -> Vec<u8> {
    read_vector(&format!("x509svid/{name}"))
}

const KEY_RSA: &str = "key-pkcs8-rsa.pem";
const KEY_ECDSA: &str = "key-pkcs8-ecdsa.pem";

fn parse(certs: &str, key: &str) -> Result<X509Svid, SvidError> {
    X509Svid::parse_pem(&v(certs), &v(key))
}

#[test]
fn go_spiffe_parse_table() {
    let workload_1 = id("spiffe://example.org/workload-1");
    // (certificates file, key file, expected number of certificates or error)
    let good: [(&str, &str, usize); 4] = [
        ("good-leaf-only.pem", KEY_RSA, 1),
        ("good-leaf-and-intermediate.pem", KEY_ECDSA, 2),
        ("good-key-and-cert.pem", "good-key-and-cert.pem", 1),
        ("good-cert-and-key.pem", "good-cert-and-key.pem", 1),
    ];
    for (certs, key, n) in good {
        let svid = parse(certs, key).unwrap_or_else(|e| panic!("{certs}: {e}"));
        assert_eq!(svid.spiffe_id(), &workload_1, "{certs}");
        assert_eq!(svid.chain().len(), n, "{certs}");
    }

    let bad: [(&str, &str, SvidError); 15] = [
        (KEY_RSA, KEY_RSA, SvidError::NoCertificates),
        (
            "good-leaf-only.pem",
            "good-leaf-only.pem",
            SvidError::NoPrivateKey,
        ),
        ("good-leaf-only.pem", "not-pem", SvidError::NotPem),
        ("not-pem", KEY_RSA, SvidError::NotPem),
        (
            "good-leaf-only.pem",
            "corrupt-key.pem",
            SvidError::InvalidPrivateKey,
        ),
        (
            "corrupt-cert.pem",
            KEY_RSA,
            SvidError::Unparseable { index: 0 },
        ),
        (
            "good-leaf-and-intermediate.pem",
            KEY_RSA,
            SvidError::KeyMismatch,
        ),
        ("wrong-leaf-empty-id.pem", KEY_RSA, SvidError::LeafNoUriSan),
        ("wrong-leaf-ca-true.pem", KEY_RSA, SvidError::LeafIsCa),
        (
            "wrong-leaf-no-digital-signature.pem",
            KEY_RSA,
            SvidError::LeafMissingDigitalSignature,
        ),
        (
            "wrong-leaf-cert-sign.pem",
            KEY_RSA,
            SvidError::LeafHasKeyCertSign,
        ),
        (
            "wrong-leaf-crl-sign.pem",
            KEY_RSA,
            SvidError::LeafHasCrlSign,
        ),
        (
            "wrong-intermediate-no-ca.pem",
            KEY_RSA,
            SvidError::IntermediateNotCa { index: 1 },
        ),
        (
            "wrong-intermediate-no-key-cert-sign.pem",
            KEY_RSA,
            SvidError::IntermediateNoKeyCertSign { index: 1 },
        ),
        // The ECDSA key does not belong to the RSA leaf.
        ("good-leaf-only.pem", KEY_ECDSA, SvidError::KeyMismatch),
    ];
    for (certs, key, expected) in bad {
        assert_eq!(parse(certs, key).unwrap_err(), expected, "{certs} + {key}");
    }
}

#[test]
fn go_spiffe_load_from_files() {
    let svid = X509Svid::load(
        &vector("x509svid/good-leaf-only.pem"),
        &vector("x509svid/key-pkcs8-rsa.pem"),
    )
    .unwrap();
    assert_eq!(svid.spiffe_id(), &id("spiffe://example.org/workload-1"));
    assert!(matches!(
        X509Svid::load(
            &vector("x509svid/non-existent.pem"),
            &vector("x509svid/key-pkcs8-rsa.pem")
        ),
        Err(SvidError::Io {
            kind: std::io::ErrorKind::NotFound,
            ..
        })
    ));
}

#[test]
fn go_spiffe_parse_raw() {
    let pem = v("good-leaf-and-intermediate.pem");
    let raw: Vec<u8> = aims_pki::pem::certificates(&pem)
        .unwrap()
        .iter()
        .flat_map(|c| c.to_vec())
        .collect();
    let key = aims_pki::pem::private_key_pkcs8(&v(KEY_ECDSA))
        .unwrap()
        .unwrap();
    let svid = X509Svid::parse_raw(&raw, &key).unwrap();
    assert_eq!(svid.chain().len(), 2);
    assert_eq!(
        X509Svid::parse_raw(b"not-DER-encoded", &key).unwrap_err(),
        SvidError::Unparseable { index: 0 }
    );
    assert_eq!(
        X509Svid::parse_raw(&raw, b"not-DER-encoded").unwrap_err(),
        SvidError::InvalidPrivateKey
    );
}

#[test]
fn go_spiffe_wrong_vectors_fail_verification_with_the_same_rule() {
    // The SPIFFE rules run before the bundle lookup, so no bundle is needed to reject these.
    let store = aims_pki::TrustStore::new();
    for (file, expected) in [
        ("wrong-leaf-empty-id.pem", SvidError::LeafNoUriSan),
        ("wrong-leaf-ca-true.pem", SvidError::LeafIsCa),
        (
            "wrong-leaf-no-digital-signature.pem",
            SvidError::LeafMissingDigitalSignature,
        ),
        ("wrong-leaf-cert-sign.pem", SvidError::LeafHasKeyCertSign),
        ("wrong-leaf-crl-sign.pem", SvidError::LeafHasCrlSign),
        (
            "wrong-intermediate-no-ca.pem",
            SvidError::IntermediateNotCa { index: 1 },
        ),
        (
            "wrong-intermediate-no-key-cert-sign.pem",
            SvidError::IntermediateNoKeyCertSign { index: 1 },
        ),
    ] {
        let chain = aims_pki::pem::certificates(&v(file)).unwrap();
        assert_eq!(
            svid::verify(&chain, &store, T0, &VerifyOptions::default()).unwrap_err(),
            expected,
            "{file}"
        );
    }
}

/// `good-leaf-and-intermediate.pem`: the second certificate signed the leaf, so with it as
/// the trust domain's X.509 authority the chain path-validates, at a pinned time inside the
/// leaf's validity (2020-03-24 14:07:30 – 15:07:40 UTC).
#[test]
fn go_spiffe_chain_path_validation_at_pinned_time() {
    let chain = aims_pki::pem::certificates(&v("good-leaf-and-intermediate.pem")).unwrap();
    let mut bundle = SpiffeBundle::new(td("example.org"));
    bundle.add_x509_authority(chain[1].clone()).unwrap();
    let opts = VerifyOptions::default();
    let inside = 1_585_060_200; // 2020-03-24T14:30:00Z
    let verified = svid::verify_with_bundle(&chain, &bundle, inside, &opts).unwrap();
    assert_eq!(verified.spiffe_id(), &id("spiffe://example.org/workload-1"));
    assert_eq!(verified.not_after(), 1_585_062_460);
    assert!(matches!(
        svid::verify_with_bundle(&chain, &bundle, 1_585_062_461, &opts),
        Err(SvidError::Expired {
            not_after: 1_585_062_460,
            now: 1_585_062_461
        })
    ));
    assert!(matches!(
        svid::verify_with_bundle(&chain, &bundle, 1_585_058_849, &opts),
        Err(SvidError::NotYetValid {
            not_before: 1_585_058_850,
            ..
        })
    ));
    // The leaf alone validates too (the intermediate is the anchor).
    assert!(svid::verify_with_bundle(&chain[..1], &bundle, inside, &opts).is_ok());
    // Another trust domain's bundle is not used.
    let mut other = SpiffeBundle::new(td("other.org"));
    other.add_x509_authority(chain[1].clone()).unwrap();
    assert_eq!(
        svid::verify_with_bundle(&chain, &other, inside, &opts),
        Err(SvidError::NoBundle(td("example.org")))
    );
    // A bundle with an unrelated authority.
    let c = clock();
    let unrelated = root_ca("example.org", &c).bundle().unwrap();
    assert_eq!(
        svid::verify_with_bundle(&chain, &unrelated, inside, &opts),
        Err(SvidError::UnknownIssuer)
    );
}
