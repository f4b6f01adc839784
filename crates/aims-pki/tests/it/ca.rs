//! The CA: certificate profiles of roots, intermediates and X509-SVIDs (X509-SVID §3–§4),
//! issuance guards, persistence.

use std::time::Duration;

use aims_core::Clock as _;
use aims_crypto::{Algorithm, SigningKey};
use aims_pki::ca::{BACKDATE_SECS, CA_CERT_FILE, CA_KEY_FILE};
use aims_pki::svid::{self, VerifyOptions};
use aims_pki::{CaError, CaOptions, CertificateAuthority, SvidError, X509Svid};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{
    OID_X509_EXT_BASIC_CONSTRAINTS, OID_X509_EXT_KEY_USAGE, OID_X509_EXT_SUBJECT_ALT_NAME,
};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::common::*;

fn parse(der: &[u8]) -> X509Certificate<'_> {
    let (rest, c) = X509Certificate::from_der(der).unwrap();
    assert!(rest.is_empty());
    c
}

fn uris<'a>(c: &'a X509Certificate<'_>) -> Vec<&'a str> {
    c.subject_alternative_name()
        .unwrap()
        .map(|s| {
            s.value
                .general_names
                .iter()
                .filter_map(|g| {
                    if let GeneralName::URI(u) = g {
                        Some(*u)
                    } else {
                        None
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

fn critical(c: &X509Certificate<'_>, oid: &x509_parser::der_parser::Oid<'_>) -> bool {
    c.get_extension_unique(oid).unwrap().unwrap().critical
}

fn ski(c: &X509Certificate<'_>) -> Vec<u8> {
    c.iter_extensions()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        })
        .expect("SKI")
}

fn aki(c: &X509Certificate<'_>) -> Vec<u8> {
    c.iter_extensions()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(k) => {
                k.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        })
        .expect("AKI")
}

#[test]
fn root_ca_certificate_profile() {
    let c = clock();
    let ca = root_ca("example.org", &c);
    assert_eq!(ca.chain().len(), 1);
    let cert = parse(&ca.chain()[0]);
    // Self-signed, with the trust domain root ID as its only URI SAN.
    assert_eq!(cert.subject().as_raw(), cert.issuer().as_raw());
    assert_eq!(uris(&cert), vec!["spiffe://example.org"]);
    // O=<td>, plus a CN.
    let subject = cert.subject().to_string();
    assert!(
        subject.contains("O=example.org") && subject.contains("CN="),
        "{subject}"
    );
    // cA=true with a path length, critical.
    let bc = cert.basic_constraints().unwrap().unwrap();
    assert!(bc.value.ca);
    assert_eq!(bc.value.path_len_constraint, Some(1));
    assert!(critical(&cert, &OID_X509_EXT_BASIC_CONSTRAINTS));
    // keyCertSign + cRLSign, critical, nothing else.
    let ku = cert.key_usage().unwrap().unwrap();
    assert!(ku.critical);
    assert!(ku.value.key_cert_sign() && ku.value.crl_sign());
    assert!(!ku.value.digital_signature());
    // Validity from the pinned clock.
    assert_eq!(cert.validity().not_before.timestamp(), T0 - BACKDATE_SECS);
    assert_eq!(cert.validity().not_after.timestamp(), T0 + 30 * 86400);
    assert_eq!(ca.not_after(), T0 + 30 * 86400);
    assert_eq!(ski(&cert).len(), 20);
    // P-256 by default.
    assert_eq!(
        cert.public_key()
            .algorithm
            .parameters
            .as_ref()
            .unwrap()
            .as_oid()
            .unwrap(),
        x509_parser::oid_registry::OID_EC_P256
    );
}

#[test]
fn x509_svid_certificate_profile() {
    let c = clock();
    let ca = root_ca("example.org", &c);
    let svid = ca
        .issue_x509_svid(
            &id("spiffe://example.org/agent/planner"),
            Duration::from_secs(3600),
            &[],
        )
        .unwrap();
    assert_eq!(svid.spiffe_id(), &id("spiffe://example.org/agent/planner"));
    // A root CA's SVID chain is the leaf alone (relying parties hold the root).
    assert_eq!(svid.chain().len(), 1);
    let leaf = parse(svid.leaf());
    // Exactly one URI SAN, the SPIFFE ID.
    assert_eq!(uris(&leaf), vec!["spiffe://example.org/agent/planner"]);
    // Subject is not empty, so the SAN extension need not be critical (RFC 5280 4.2.1.6).
    assert!(!leaf.subject().as_raw().is_empty());
    assert_eq!(leaf.subject().to_string(), "O=SPIFFE");
    let san_critical = critical(&leaf, &OID_X509_EXT_SUBJECT_ALT_NAME);
    assert!(!san_critical || leaf.subject().iter().next().is_none());
    // BasicConstraints present, critical, cA=false.
    let bc = leaf.basic_constraints().unwrap().unwrap();
    assert!(!bc.value.ca);
    assert!(bc.critical);
    // KeyUsage critical: digitalSignature, never keyCertSign / cRLSign.
    let ku = leaf.key_usage().unwrap().unwrap();
    assert!(critical(&leaf, &OID_X509_EXT_KEY_USAGE));
    assert!(ku.value.digital_signature());
    assert!(!ku.value.key_cert_sign() && !ku.value.crl_sign());
    // EKU serverAuth + clientAuth.
    let eku = leaf.extended_key_usage().unwrap().unwrap();
    assert!(eku.value.server_auth && eku.value.client_auth);
    // Explicit validity: backdated notBefore, notAfter = now + ttl.
    assert_eq!(leaf.validity().not_before.timestamp(), T0 - BACKDATE_SECS);
    assert_eq!(leaf.validity().not_after.timestamp(), T0 + 3600);
    assert_eq!(svid.not_after(), T0 + 3600);
    // Positive serial of 128 random bits (at most 17 octets with the sign byte).
    let serial = leaf.raw_serial();
    assert!(serial.len() <= 17 && serial.len() >= 8, "{}", serial.len());
    assert!(serial[0] & 0x80 == 0);
    // AKI = the CA's SKI; the leaf has its own SKI.
    let ca_cert = parse(&ca.chain()[0]);
    assert_eq!(aki(&leaf), ski(&ca_cert));
    assert_eq!(ski(&leaf).len(), 20);
    // Fresh P-256 key matching the certificate.
    let again = X509Svid::from_parts(
        svid.chain().to_vec(),
        zeroize::Zeroizing::new(svid.private_key_pkcs8().to_vec()),
    )
    .unwrap();
    assert_eq!(again.spiffe_id(), svid.spiffe_id());
    // And it validates against the CA's bundle.
    let v = svid::verify_with_bundle(
        svid.chain(),
        &ca.bundle().unwrap(),
        T0,
        &VerifyOptions::default(),
    )
    .unwrap();
    assert_eq!(v.spiffe_id(), svid.spiffe_id());
    assert_eq!(v.not_after(), T0 + 3600);
    assert_eq!(v.public_key_spki(), leaf.public_key().raw);
}

#[test]
fn every_svid_has_a_fresh_key_and_serial() {
    let c = clock();
    let ca = root_ca("example.org", &c);
    let a = ca
        .issue_x509_svid(&id("spiffe://example.org/a"), Duration::from_secs(60), &[])
        .unwrap();
    let b = ca
        .issue_x509_svid(&id("spiffe://example.org/a"), Duration::from_secs(60), &[])
        .unwrap();
    assert_ne!(a.private_key_pkcs8(), b.private_key_pkcs8());
    assert_ne!(parse(a.leaf()).raw_serial(), parse(b.leaf()).raw_serial());
}

#[test]
fn dns_names_become_dns_sans() {
    let c = clock();
    let ca = root_ca("example.org", &c);
    let svid = ca
        .issue_x509_svid(
            &id("spiffe://example.org/web"),
            Duration::from_secs(60),
            &["web.example.org".to_owned()],
        )
        .unwrap();
    let leaf = parse(svid.leaf());
    let san = leaf.subject_alternative_name().unwrap().unwrap();
    assert!(
        san.value
            .general_names
            .contains(&GeneralName::DNSName("web.example.org"))
    );
    assert_eq!(uris(&leaf).len(), 1);
    for bad in ["", "exa mple.org", "a..b", "spiffe://example.org"] {
        assert!(
            matches!(
                ca.issue_x509_svid(
                    &id("spiffe://example.org/web"),
                    Duration::from_secs(60),
                    &[bad.into()]
                ),
                Err(CaError::InvalidDnsName)
            ),
            "{bad}"
        );
    }
}

#[test]
fn svid_not_after_never_passes_the_ca() {
    let c = clock();
    let ca = root_ca("example.org", &c);
    let svid = ca
        .issue_x509_svid(
            &id("spiffe://example.org/a"),
            Duration::from_secs(365 * 86400),
            &[],
        )
        .unwrap();
    assert_eq!(svid.not_after(), ca.not_after());
    assert_eq!(
        parse(svid.leaf()).validity().not_after.timestamp(),
        ca.not_after()
    );
}

#[test]
fn issuance_guards() {
    let c = clock();
    let ca = root_ca("example.org", &c);
    let ttl = Duration::from_secs(60);
    assert!(matches!(
        ca.issue_x509_svid(&id("spiffe://example.org"), ttl, &[]),
        Err(CaError::RootId(_))
    ));
    assert!(matches!(
        ca.issue_x509_svid(&id("spiffe://other.org/a"), ttl, &[]),
        Err(CaError::WrongTrustDomain { .. })
    ));
    assert!(matches!(
        ca.issue_x509_svid(&id("spiffe://example.org/a"), Duration::ZERO, &[]),
        Err(CaError::InvalidValidity)
    ));
    c.set(ca.not_after());
    assert!(matches!(
        ca.issue_x509_svid(&id("spiffe://example.org/a"), ttl, &[]),
        Err(CaError::CaExpired)
    ));
    c.set(ca.not_before() - 1);
    assert!(matches!(
        ca.issue_x509_svid(&id("spiffe://example.org/a"), ttl, &[]),
        Err(CaError::CaNotYetValid)
    ));
}

#[test]
fn other_ca_algorithms() {
    for alg in [Algorithm::ES384, Algorithm::EdDSA] {
        let c = clock();
        let opts = CaOptions {
            algorithm: alg,
            ..CaOptions::default()
        };
        let ca = CertificateAuthority::new_root_with(&td("example.org"), &opts, arc(&c)).unwrap();
        let svid = ca
            .issue_x509_svid(&id("spiffe://example.org/a"), Duration::from_secs(60), &[])
            .unwrap();
        svid::verify_with_bundle(
            svid.chain(),
            &ca.bundle().unwrap(),
            T0,
            &VerifyOptions::default(),
        )
        .unwrap();
    }
    let opts = CaOptions {
        algorithm: Algorithm::RS256,
        ..CaOptions::default()
    };
    assert!(CertificateAuthority::new_root_with(&td("example.org"), &opts, arc(&clock())).is_err());
}

#[test]
fn intermediate_signed_by_root() {
    let c = clock();
    let root = root_ca("example.org", &c);
    let int = root
        .issue_intermediate(&td("example.org"), &CaOptions::default())
        .unwrap();
    // Chain = [intermediate, root]; SVIDs carry [leaf, intermediate].
    assert_eq!(int.chain().len(), 2);
    assert_eq!(int.chain()[1], root.chain()[0]);
    assert_eq!(int.x509_authority(), &root.chain()[0]);
    let int_cert = parse(&int.chain()[0]);
    assert_eq!(uris(&int_cert), vec!["spiffe://example.org"]);
    assert_eq!(
        int_cert
            .basic_constraints()
            .unwrap()
            .unwrap()
            .value
            .path_len_constraint,
        Some(0)
    );
    assert_eq!(aki(&int_cert), ski(&parse(&root.chain()[0])));
    // One year requested, clamped to the root's 30 days.
    assert_eq!(int.not_after(), root.not_after());
    let svid = int
        .issue_x509_svid(&id("spiffe://example.org/w"), Duration::from_secs(60), &[])
        .unwrap();
    assert_eq!(svid.chain().len(), 2);
    assert_eq!(svid.chain()[1], int.chain()[0]);
    // Validates against the root bundle only.
    let v = svid::verify_with_bundle(
        svid.chain(),
        &root.bundle().unwrap(),
        T0,
        &VerifyOptions::default(),
    )
    .unwrap();
    assert_eq!(v.spiffe_id(), &id("spiffe://example.org/w"));
    // Without the intermediate, the path is broken.
    assert_eq!(
        svid::verify_with_bundle(
            &svid.chain()[..1],
            &root.bundle().unwrap(),
            T0,
            &VerifyOptions::default()
        ),
        Err(SvidError::UnknownIssuer)
    );
}

/// Reads a CA's key back as an aims-crypto key (an "upstream" handed to us as files).
fn upstream_key(ca: &CertificateAuthority) -> SigningKey {
    let dir = tempfile::tempdir().unwrap();
    ca.to_pem_files(dir.path()).unwrap();
    let pem = std::fs::read(dir.path().join(CA_KEY_FILE)).unwrap();
    let der = aims_pki::pem::private_key_pkcs8(&pem).unwrap().unwrap();
    SigningKey::from_pkcs8(Algorithm::ES256, &der).unwrap()
}

#[test]
fn intermediate_from_external_upstream() {
    let c = clock();
    let upstream = root_ca("example.org", &c);
    let key = upstream_key(&upstream);
    let int = CertificateAuthority::new_intermediate(
        &td("example.org"),
        upstream.chain(),
        &key,
        &CaOptions {
            validity: Duration::from_secs(86400),
            ..CaOptions::default()
        },
        arc(&c),
    )
    .unwrap();
    assert_eq!(int.not_after(), T0 + 86400);
    let svid = int
        .issue_x509_svid(&id("spiffe://example.org/w"), Duration::from_secs(60), &[])
        .unwrap();
    svid::verify_with_bundle(
        svid.chain(),
        &upstream.bundle().unwrap(),
        T0,
        &VerifyOptions::default(),
    )
    .unwrap();

    // The key must match the upstream certificate.
    let other = SigningKey::generate(Algorithm::ES256).unwrap();
    assert!(matches!(
        CertificateAuthority::new_intermediate(
            &td("example.org"),
            upstream.chain(),
            &other,
            &CaOptions::default(),
            arc(&c)
        ),
        Err(CaError::KeyMismatch)
    ));
    // The upstream must be a CA: an SVID (cA=false) cannot sign an intermediate.
    let leaf_key = SigningKey::from_pkcs8(Algorithm::ES256, svid.private_key_pkcs8()).unwrap();
    assert!(matches!(
        CertificateAuthority::new_intermediate(
            &td("example.org"),
            svid.chain(),
            &leaf_key,
            &CaOptions::default(),
            arc(&c)
        ),
        Err(CaError::InvalidCaCertificate(_))
    ));
    assert!(matches!(
        CertificateAuthority::new_intermediate(
            &td("example.org"),
            &[],
            &key,
            &CaOptions::default(),
            arc(&c)
        ),
        Err(CaError::InvalidCaCertificate(_))
    ));
}

#[test]
fn persistence_round_trip() {
    let c = clock();
    let ca = root_ca("example.org", &c);
    let dir = tempfile::tempdir().unwrap();
    ca.to_pem_files(dir.path()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join(CA_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Writing again replaces the files.
    ca.to_pem_files(dir.path()).unwrap();
    let loaded = CertificateAuthority::load(dir.path(), arc(&c)).unwrap();
    assert_eq!(loaded.chain(), ca.chain());
    assert_eq!(loaded.trust_domain(), ca.trust_domain());
    assert_eq!(loaded.not_after(), ca.not_after());
    // The loaded CA issues SVIDs that the original bundle accepts, with the same AKI.
    let svid = loaded
        .issue_x509_svid(&id("spiffe://example.org/x"), Duration::from_secs(60), &[])
        .unwrap();
    svid::verify_with_bundle(
        svid.chain(),
        &ca.bundle().unwrap(),
        T0,
        &VerifyOptions::default(),
    )
    .unwrap();
    assert_eq!(aki(&parse(svid.leaf())), ski(&parse(&ca.chain()[0])));

    // An intermediate round-trips too, and keeps sending its intermediate.
    let int = ca
        .issue_intermediate(&td("example.org"), &CaOptions::default())
        .unwrap();
    let dir2 = tempfile::tempdir().unwrap();
    int.to_pem_files(dir2.path()).unwrap();
    let int2 = CertificateAuthority::load(dir2.path(), arc(&c)).unwrap();
    let svid = int2
        .issue_x509_svid(&id("spiffe://example.org/y"), Duration::from_secs(60), &[])
        .unwrap();
    assert_eq!(svid.chain().len(), 2);
    svid::verify_with_bundle(
        svid.chain(),
        &ca.bundle().unwrap(),
        T0,
        &VerifyOptions::default(),
    )
    .unwrap();
}

#[test]
fn load_refuses_a_foreign_key_and_missing_files() {
    let c = clock();
    let a = root_ca("example.org", &c);
    let b = root_ca("example.org", &c);
    let da = tempfile::tempdir().unwrap();
    let db = tempfile::tempdir().unwrap();
    a.to_pem_files(da.path()).unwrap();
    b.to_pem_files(db.path()).unwrap();
    std::fs::copy(db.path().join(CA_KEY_FILE), da.path().join(CA_KEY_FILE)).unwrap();
    assert!(matches!(
        CertificateAuthority::load(da.path(), arc(&c)),
        Err(CaError::KeyMismatch)
    ));
    std::fs::remove_file(da.path().join(CA_CERT_FILE)).unwrap();
    assert!(matches!(
        CertificateAuthority::load(da.path(), arc(&c)),
        Err(CaError::Io { .. })
    ));
    // A leaf certificate is not a CA.
    let svid = a
        .issue_x509_svid(&id("spiffe://example.org/x"), Duration::from_secs(60), &[])
        .unwrap();
    std::fs::write(da.path().join(CA_CERT_FILE), svid.chain_pem()).unwrap();
    std::fs::write(da.path().join(CA_KEY_FILE), svid.key_pem().as_bytes()).unwrap();
    assert!(matches!(
        CertificateAuthority::load(da.path(), arc(&c)),
        Err(CaError::InvalidCaCertificate(_))
    ));
}

/// The in-memory form a server stores: the chain and the PKCS#8 key come back as the
/// same CA (its SVIDs verify against the original bundle), checked like the files are.
#[test]
fn from_der_round_trips_to_pkcs8_and_refuses_a_foreign_key() {
    let c = clock();
    let a = root_ca("example.org", &c);
    let b = root_ca("example.org", &c);
    let again = CertificateAuthority::from_der(a.chain().to_vec(), &a.to_pkcs8().unwrap(), arc(&c))
        .unwrap();
    assert_eq!(again.x509_authority(), a.x509_authority());
    let svid = again
        .issue_x509_svid(&id("spiffe://example.org/x"), Duration::from_secs(60), &[])
        .unwrap();
    svid::verify_with_bundle(
        svid.chain(),
        &a.bundle().unwrap(),
        T0,
        &VerifyOptions::default(),
    )
    .unwrap();
    assert!(matches!(
        CertificateAuthority::from_der(a.chain().to_vec(), &b.to_pkcs8().unwrap(), arc(&c)),
        Err(CaError::KeyMismatch)
    ));
    assert!(matches!(
        CertificateAuthority::from_der(Vec::new(), &a.to_pkcs8().unwrap(), arc(&c)),
        Err(CaError::InvalidCaCertificate(_))
    ));
}

#[test]
fn debug_output_has_no_key_material() {
    let c = clock();
    let ca = root_ca("example.org", &c);
    let svid = ca
        .issue_x509_svid(&id("spiffe://example.org/x"), Duration::from_secs(60), &[])
        .unwrap();
    let key_b64 = aims_crypto::b64::encode_std(svid.private_key_pkcs8());
    let dbg = format!("{svid:?} {ca:?}");
    assert!(dbg.contains("spiffe://example.org/x"));
    assert!(dbg.contains("redacted"));
    assert!(!dbg.contains(&key_b64[..16]));
    let dir = tempfile::tempdir().unwrap();
    ca.to_pem_files(dir.path()).unwrap();
    let ca_key_pem = std::fs::read_to_string(dir.path().join(CA_KEY_FILE)).unwrap();
    let ca_key_line = ca_key_pem.lines().nth(1).unwrap();
    assert!(!dbg.contains(ca_key_line));
}

#[test]
fn pem_round_trip_of_issued_svid() {
    let c = clock();
    let ca = root_ca("example.org", &c);
    let svid = ca
        .issue_x509_svid(&id("spiffe://example.org/x"), Duration::from_secs(60), &[])
        .unwrap();
    // "cert then key" and "key then cert" in one file, and separate inputs.
    let cert_then_key = format!("{}{}", svid.chain_pem(), svid.key_pem().as_str());
    let key_then_cert = format!("{}{}", svid.key_pem().as_str(), svid.chain_pem());
    for both in [cert_then_key, key_then_cert] {
        let parsed = X509Svid::parse_pem(both.as_bytes(), both.as_bytes()).unwrap();
        assert_eq!(parsed.chain(), svid.chain());
        assert_eq!(parsed.private_key_pkcs8(), svid.private_key_pkcs8());
    }
    let parsed =
        X509Svid::parse_pem(svid.chain_pem().as_bytes(), svid.key_pem().as_bytes()).unwrap();
    assert_eq!(parsed.spiffe_id(), svid.spiffe_id());
    assert_eq!(parsed.not_after(), svid.not_after());
    // Raw (Workload API) form: concatenated DER.
    let raw: Vec<u8> = svid.chain().iter().flat_map(|c| c.to_vec()).collect();
    let parsed = X509Svid::parse_raw(&raw, svid.private_key_pkcs8()).unwrap();
    assert_eq!(parsed.chain(), svid.chain());
    assert_eq!(svid.x5t_s256(), aims_pki::x5t_s256(svid.leaf()));
    assert_eq!(svid.x5t_s256(), aims_crypto::sha256_b64url(svid.leaf()));
    let _ = c.now();
}
