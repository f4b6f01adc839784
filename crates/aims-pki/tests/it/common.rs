//! Shared fixtures: a pinned clock, CAs, and rcgen-crafted certificates that break one rule.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aims_core::{Clock, ManualClock, SpiffeId, TrustDomain};
use aims_pki::{CertificateAuthority, TrustStore};
use rcgen::string::Ia5String;
use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};
use rustls_pki_types::CertificateDer;

/// The pinned test time: 2027-01-15T08:00:00Z.
pub const T0: i64 = 1_800_000_000;

pub fn td(s: &str) -> TrustDomain {
    TrustDomain::new(s).unwrap()
}

pub fn id(s: &str) -> SpiffeId {
    SpiffeId::parse(s).unwrap()
}

pub fn clock() -> ManualClock {
    ManualClock::new(T0)
}

pub fn arc(c: &ManualClock) -> Arc<dyn Clock> {
    Arc::new(c.clone())
}

/// A root CA for `name` valid 30 days from [`T0`].
pub fn root_ca(name: &str, c: &ManualClock) -> CertificateAuthority {
    CertificateAuthority::new_root(&td(name), Duration::from_secs(30 * 86400), arc(c)).unwrap()
}

pub fn store_of(cas: &[&CertificateAuthority]) -> Arc<TrustStore> {
    Arc::new(TrustStore::from_bundles(
        cas.iter().map(|ca| ca.bundle().unwrap()),
    ))
}

pub fn vector(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(rel)
}

pub fn read_vector(rel: &str) -> Vec<u8> {
    std::fs::read(vector(rel)).unwrap()
}

/// An rcgen issuer holding the CA's real key (read back from its PEM files).
pub fn rcgen_issuer(ca: &CertificateAuthority) -> Issuer<'static, KeyPair> {
    let dir = tempfile::tempdir().unwrap();
    ca.to_pem_files(dir.path()).unwrap();
    let key_pem = std::fs::read_to_string(dir.path().join("ca.key")).unwrap();
    let key = KeyPair::from_pem(&key_pem).unwrap();
    Issuer::from_ca_cert_der(&ca.chain()[0], key).unwrap()
}

fn dt(t: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(t).unwrap()
}

/// Parameters of a well-formed leaf X509-SVID for `spiffe_id`, valid around [`T0`].
pub fn good_leaf_params(spiffe_id: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::OrganizationName, "test");
    p.subject_alt_names = vec![SanType::URI(Ia5String::try_from(spiffe_id).unwrap())];
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    p.not_before = dt(T0 - 60);
    p.not_after = dt(T0 + 3600);
    p.use_authority_key_identifier_extension = true;
    p
}

/// Parameters of a well-formed signing (CA) certificate for trust domain `name`.
pub fn good_ca_params(name: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(DnType::CommonName, format!("crafted CA {name}"));
    p.subject_alt_names = vec![SanType::URI(
        Ia5String::try_from(format!("spiffe://{name}").as_str()).unwrap(),
    )];
    p.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = dt(T0 - 60);
    p.not_after = dt(T0 + 86400);
    p
}

/// A leaf signed by `issuer` after `edit` changed the good parameters: returns DER + key.
pub fn crafted_leaf(
    issuer: &Issuer<'_, KeyPair>,
    spiffe_id: &str,
    edit: impl FnOnce(&mut CertificateParams),
) -> (CertificateDer<'static>, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut p = good_leaf_params(spiffe_id);
    edit(&mut p);
    let cert = p.signed_by(&key, issuer).unwrap();
    (cert.der().clone(), key)
}

/// A self-signed leaf (cA=false) for `spiffe_id`.
pub fn self_signed_leaf(spiffe_id: &str) -> (CertificateDer<'static>, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let cert = good_leaf_params(spiffe_id).self_signed(&key).unwrap();
    (cert.der().clone(), key)
}

/// An intermediate CA signed by `issuer` after `edit`: returns DER and an issuer for it.
pub fn crafted_intermediate(
    issuer: &Issuer<'_, KeyPair>,
    name: &str,
    edit: impl FnOnce(&mut CertificateParams),
) -> (CertificateDer<'static>, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let mut p = good_ca_params(name);
    edit(&mut p);
    let cert = p.signed_by(&key, issuer).unwrap();
    (cert.der().clone(), Issuer::new(p, key))
}

pub fn pkcs8(key: &KeyPair) -> zeroize::Zeroizing<Vec<u8>> {
    zeroize::Zeroizing::new(key.serialize_der())
}
