//! A trust-domain certificate authority that issues X509-SVIDs.
//!
//! Implements the issuing side of the SPIFFE X509-SVID standard (specs.md 2.7):
//!
//! * **Signing certificates** (X509-SVID §3.2, §4.1, §4.3): the CA certificate carries exactly
//!   one URI SAN, the trust domain's root ID `spiffe://<td>` (no path); BasicConstraints
//!   `cA=true` (critical) with a `pathLenConstraint` (1 for a root, 0 for an intermediate by
//!   default); a critical KeyUsage of `keyCertSign` + `cRLSign`; a subject of `O=<td>` and a
//!   `CN`; SKI, and AKI.
//! * **Leaf SVIDs** (X509-SVID §3.1, §4.1, §4.3, §4.4): a fresh P-256 key per SVID; exactly one
//!   URI SAN, the SPIFFE ID, which must have a non-root path and belong to the CA's trust
//!   domain; optional DNS SANs; BasicConstraints present with `cA=false` (critical); a critical
//!   KeyUsage of `digitalSignature` only (never `keyCertSign`/`cRLSign`); EKU
//!   `id-kp-serverAuth` + `id-kp-clientAuth`; subject `O=SPIFFE` (non-empty, so the SAN
//!   extension may be non-critical, RFC 5280 §4.2.1.6); a random positive 128-bit serial;
//!   SKI and AKI; `notBefore` = now − [`BACKDATE_SECS`] and `notAfter` = now + ttl, both
//!   clamped to the CA's own validity.
//!
//! # Keys
//!
//! CA and SVID keys are [`aims_crypto::SigningKey`]s: generation, signing and PKCS#8 export go
//! through the one crate that calls aws-lc-rs, exported PKCS#8 is [`Zeroizing`], and a later
//! KMS/HSM-backed [`aims_crypto::Signer`] can take the CA key's place. rcgen only builds and
//! serialises the certificates, through a small adapter implementing `rcgen::SigningKey`
//! (aims-crypto signs ECDSA in the fixed-width JWS form; the adapter re-encodes it as the DER
//! `ECDSA-Sig-Value` X.509 needs). We do not use `rcgen::KeyPair` because it keeps a copy of
//! the PKCS#8 that is not zeroized on drop.
//!
//! # Cost
//!
//! One issuance is one P-256 key generation, one signature by the CA key and the DER
//! serialisation; the issuer (name, key identifier, key) is built once per CA and reused, and
//! nothing is re-parsed.
//!
//! # Persistence
//!
//! [`CertificateAuthority::to_pem_files`] writes `ca.pem` (the CA chain, CA first) and
//! `ca.key` (PKCS#8 PEM, created with mode 0600 and renamed into place);
//! [`CertificateAuthority::load`] reads them back and re-checks every rule above.

use std::borrow::Borrow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aims_core::{Clock, SpiffeId, TrustDomain};
use aims_crypto::{Algorithm, Signer as _, SigningKey};
use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyIdMethod, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use zeroize::Zeroizing;

use crate::svid::X509Svid;
use crate::x509::{self, KeyKind};

/// How far `notBefore` is moved into the past, to tolerate clock skew between the CA and
/// relying parties.
pub const BACKDATE_SECS: i64 = 10;

/// The file name of the CA certificate chain written by [`CertificateAuthority::to_pem_files`].
pub const CA_CERT_FILE: &str = "ca.pem";
/// The file name of the CA private key written by [`CertificateAuthority::to_pem_files`].
pub const CA_KEY_FILE: &str = "ca.key";

/// Errors of CA creation, loading and issuance.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// The CA key algorithm is not one AIMS signs certificates with (ES256, ES384, EdDSA).
    #[error("unsupported CA key algorithm {0}")]
    UnsupportedAlgorithm(Algorithm),
    /// A validity or TTL of zero, or one too large to represent.
    #[error("invalid validity period")]
    InvalidValidity,
    /// The SPIFFE ID to issue for is a trust domain root ID (X509-SVID §3.1: leaf SVIDs
    /// need a non-root path).
    #[error("cannot issue an X509-SVID for the root ID `{0}`")]
    RootId(SpiffeId),
    /// The SPIFFE ID belongs to another trust domain than the CA's.
    #[error("SPIFFE ID `{id}` is not in the CA's trust domain `{ca}`")]
    WrongTrustDomain {
        /// The CA's trust domain.
        ca: TrustDomain,
        /// The requested ID.
        id: SpiffeId,
    },
    /// A requested DNS SAN is not a valid DNS name.
    #[error("invalid DNS name SAN")]
    InvalidDnsName,
    /// The CA certificate has expired at the clock's current time.
    #[error("the CA certificate has expired")]
    CaExpired,
    /// The CA certificate is not valid yet at the clock's current time.
    #[error("the CA certificate is not valid yet")]
    CaNotYetValid,
    /// Key generation, signing or key export failed in aims-crypto.
    #[error("key operation failed: {0}")]
    Crypto(#[from] aims_crypto::CryptoError),
    /// rcgen could not build the certificate.
    #[error("certificate generation failed: {0}")]
    Certificate(#[from] rcgen::Error),
    /// A CA certificate (loaded, or an upstream) is unusable; the reason is static text.
    #[error("invalid CA certificate: {0}")]
    InvalidCaCertificate(&'static str),
    /// The private key does not belong to the CA certificate.
    #[error("the private key does not match the CA certificate")]
    KeyMismatch,
    /// The PEM files are malformed.
    #[error("{0}")]
    Pem(#[from] crate::pem::PemError),
    /// The key file holds no PKCS#8 `PRIVATE KEY` section.
    #[error("no PKCS#8 private key in the key file")]
    NoPrivateKey,
    /// Reading or writing a CA file failed.
    #[error("cannot read or write {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Options for a new CA. `Default` is a P-256 (ES256) CA valid for one year.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaOptions {
    /// How long the CA certificate is valid.
    pub validity: Duration,
    /// The CA key algorithm (ES256, ES384 or EdDSA).
    pub algorithm: Algorithm,
    /// The BasicConstraints `pathLenConstraint`; `None` uses 1 for a root and 0 for an
    /// intermediate.
    pub path_len: Option<u8>,
}

impl Default for CaOptions {
    fn default() -> Self {
        Self {
            validity: Duration::from_secs(365 * 24 * 3600),
            algorithm: Algorithm::ES256,
            path_len: None,
        }
    }
}

/// Adapter letting rcgen sign with, and read the public key of, an aims-crypto key.
struct RcgenKey<K> {
    key: K,
    alg: &'static rcgen::SignatureAlgorithm,
}

impl<K: Borrow<SigningKey>> RcgenKey<K> {
    fn new(key: K) -> Result<Self, CaError> {
        let alg = match key.borrow().algorithm() {
            Algorithm::ES256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Algorithm::ES384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            Algorithm::EdDSA => &rcgen::PKCS_ED25519,
            other => return Err(CaError::UnsupportedAlgorithm(other)),
        };
        Ok(Self { key, alg })
    }
}

impl<K: Borrow<SigningKey>> rcgen::PublicKeyData for RcgenKey<K> {
    fn der_bytes(&self) -> &[u8] {
        self.key.borrow().public_key_bytes()
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.alg
    }
}

impl<K: Borrow<SigningKey>> rcgen::SigningKey for RcgenKey<K> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let key = self.key.borrow();
        let sig = key.sign(msg).map_err(|_| rcgen::Error::RemoteKeyError)?;
        match key.algorithm() {
            Algorithm::ES256 | Algorithm::ES384 => {
                x509::ecdsa_fixed_to_der(&sig).ok_or(rcgen::Error::RemoteKeyError)
            }
            _ => Ok(sig),
        }
    }
}

/// A trust domain's X.509 certificate authority.
///
/// `Debug` shows the trust domain and validity only, never key material.
pub struct CertificateAuthority {
    trust_domain: TrustDomain,
    issuer: Issuer<'static, RcgenKey<SigningKey>>,
    /// `[this CA, upstream certificates...]`.
    chain: Vec<CertificateDer<'static>>,
    /// The certificates sent after a leaf: the chain without a self-issued root at its end.
    svid_tail: Vec<CertificateDer<'static>>,
    not_before: i64,
    not_after: i64,
    clock: Arc<dyn Clock>,
    leaf_dn: DistinguishedName,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("trust_domain", &self.trust_domain)
            .field("chain_len", &self.chain.len())
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// A new self-signed root CA for `td` with a fresh P-256 key, valid for `validity` from
    /// the clock's current time.
    pub fn new_root(
        td: &TrustDomain,
        validity: Duration,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CaError> {
        Self::new_root_with(
            td,
            &CaOptions {
                validity,
                ..CaOptions::default()
            },
            clock,
        )
    }

    /// A new self-signed root CA with explicit options.
    pub fn new_root_with(
        td: &TrustDomain,
        opts: &CaOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CaError> {
        let key = RcgenKey::new(SigningKey::generate(opts.algorithm)?)?;
        let now = clock.now();
        let not_before = now.saturating_sub(BACKDATE_SECS);
        let not_after = now.saturating_add(secs(opts.validity)?);
        let params = ca_params(
            td,
            "AIMS root CA",
            not_before,
            not_after,
            opts.path_len.unwrap_or(1),
            &key,
        )?;
        let cert = params.self_signed(&key)?;
        let issuer = Issuer::new(params, key);
        Ok(Self::assemble(
            td.clone(),
            issuer,
            vec![cert.der().clone()],
            not_before,
            not_after,
            clock,
        ))
    }

    /// A new intermediate CA for `td`, signed by an upstream CA given as its certificate
    /// chain (`upstream_chain[0]` is the signing certificate, then its own issuers) and key.
    ///
    /// The upstream certificate must be a CA with `keyCertSign` whose public key matches
    /// `upstream_key`. The new CA's `notAfter` never passes the upstream's. Its chain is
    /// `[intermediate, upstream_chain...]`.
    pub fn new_intermediate(
        td: &TrustDomain,
        upstream_chain: &[CertificateDer<'static>],
        upstream_key: &SigningKey,
        opts: &CaOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CaError> {
        let upstream_der = upstream_chain
            .first()
            .ok_or(CaError::InvalidCaCertificate("the upstream chain is empty"))?;
        let upstream = x509::parse(upstream_der).ok_or(CaError::InvalidCaCertificate(
            "cannot parse the upstream certificate",
        ))?;
        check_signing_cert(&upstream)?;
        if x509::public_key_bytes(&upstream) != upstream_key.public_key_bytes() {
            return Err(CaError::KeyMismatch);
        }
        let upstream_not_after = upstream.validity().not_after.timestamp();
        let issuer = Issuer::from_ca_cert_der(upstream_der, RcgenKey::new(upstream_key)?)?;
        Self::intermediate_under(td, &issuer, upstream_chain, upstream_not_after, opts, clock)
    }

    /// A new intermediate CA for `td` signed by this CA (for example a per-region CA under an
    /// offline root). The new CA shares this CA's clock.
    pub fn issue_intermediate(&self, td: &TrustDomain, opts: &CaOptions) -> Result<Self, CaError> {
        Self::intermediate_under(
            td,
            &self.issuer,
            &self.chain,
            self.not_after,
            opts,
            Arc::clone(&self.clock),
        )
    }

    fn intermediate_under<K: rcgen::SigningKey>(
        td: &TrustDomain,
        issuer: &Issuer<'_, K>,
        upstream_chain: &[CertificateDer<'static>],
        upstream_not_after: i64,
        opts: &CaOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CaError> {
        let key = RcgenKey::new(SigningKey::generate(opts.algorithm)?)?;
        let now = clock.now();
        if now >= upstream_not_after {
            return Err(CaError::CaExpired);
        }
        let not_before = now.saturating_sub(BACKDATE_SECS);
        let not_after = now
            .saturating_add(secs(opts.validity)?)
            .min(upstream_not_after);
        let params = ca_params(
            td,
            "AIMS intermediate CA",
            not_before,
            not_after,
            opts.path_len.unwrap_or(0),
            &key,
        )?;
        let cert = params.signed_by(&key, issuer)?;
        let issuer = Issuer::new(params, key);
        let mut chain = Vec::with_capacity(upstream_chain.len() + 1);
        chain.push(cert.der().clone());
        chain.extend(upstream_chain.iter().cloned());
        Ok(Self::assemble(
            td.clone(),
            issuer,
            chain,
            not_before,
            not_after,
            clock,
        ))
    }

    fn assemble(
        trust_domain: TrustDomain,
        issuer: Issuer<'static, RcgenKey<SigningKey>>,
        chain: Vec<CertificateDer<'static>>,
        not_before: i64,
        not_after: i64,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let svid_tail = svid_tail(&chain);
        let mut leaf_dn = DistinguishedName::new();
        leaf_dn.push(DnType::OrganizationName, "SPIFFE");
        Self {
            trust_domain,
            issuer,
            chain,
            svid_tail,
            not_before,
            not_after,
            clock,
            leaf_dn,
        }
    }

    /// The CA's trust domain.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The CA certificate chain: this CA's certificate first, then its upstream certificates.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The certificate relying parties should trust for this CA's SVIDs (the X.509 authority
    /// of the trust domain bundle): the last certificate of [`chain`](Self::chain), i.e. this
    /// CA itself for a root.
    pub fn x509_authority(&self) -> &CertificateDer<'static> {
        // The chain is never empty: it is built with this CA's certificate first.
        match self.chain.last() {
            Some(c) => c,
            None => &EMPTY_CERT,
        }
    }

    /// A SPIFFE bundle for the trust domain holding [`x509_authority`](Self::x509_authority).
    pub fn bundle(&self) -> Result<crate::SpiffeBundle, crate::BundleError> {
        let mut b = crate::SpiffeBundle::new(self.trust_domain.clone());
        b.add_x509_authority(self.x509_authority().clone())?;
        Ok(b)
    }

    /// The CA certificate's `notAfter`, in Unix seconds.
    pub fn not_after(&self) -> i64 {
        self.not_after
    }

    /// The CA certificate's `notBefore`, in Unix seconds.
    pub fn not_before(&self) -> i64 {
        self.not_before
    }

    /// Issues an X509-SVID for `id`, valid for `ttl` (clamped to the CA's own validity),
    /// with a fresh P-256 key and the given extra DNS SANs.
    pub fn issue_x509_svid(
        &self,
        id: &SpiffeId,
        ttl: Duration,
        dns_names: &[String],
    ) -> Result<X509Svid, CaError> {
        if id.is_root() {
            return Err(CaError::RootId(id.clone()));
        }
        if id.trust_domain() != &self.trust_domain {
            return Err(CaError::WrongTrustDomain {
                ca: self.trust_domain.clone(),
                id: id.clone(),
            });
        }
        let ttl = secs(ttl)?;
        let now = self.clock.now();
        if now < self.not_before {
            return Err(CaError::CaNotYetValid);
        }
        if now >= self.not_after {
            return Err(CaError::CaExpired);
        }
        let not_before = now.saturating_sub(BACKDATE_SECS).max(self.not_before);
        let not_after = now.saturating_add(ttl).min(self.not_after);

        let mut sans = Vec::with_capacity(1 + dns_names.len());
        sans.push(SanType::URI(Ia5String::try_from(id.as_str())?));
        for name in dns_names {
            rustls_pki_types::DnsName::try_from(name.as_str())
                .map_err(|_| CaError::InvalidDnsName)?;
            sans.push(SanType::DnsName(
                Ia5String::try_from(name.as_str()).map_err(|_| CaError::InvalidDnsName)?,
            ));
        }

        let key = RcgenKey::new(SigningKey::generate(Algorithm::ES256)?)?;
        let mut params = CertificateParams::default();
        params.not_before = to_datetime(not_before)?;
        params.not_after = to_datetime(not_after)?;
        params.serial_number = Some(random_serial()?);
        params.distinguished_name = self.leaf_dn.clone();
        params.subject_alt_names = sans;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer)?;

        let mut chain = Vec::with_capacity(1 + self.svid_tail.len());
        chain.push(cert.der().clone());
        chain.extend(self.svid_tail.iter().cloned());
        let pkcs8 = key.key.to_pkcs8()?;
        Ok(X509Svid::from_issued(id.clone(), chain, pkcs8, not_after))
    }

    /// The CA's private key, PKCS#8 DER (for storing it; see [`from_der`](Self::from_der)).
    pub fn to_pkcs8(&self) -> Result<Zeroizing<Vec<u8>>, CaError> {
        Ok(self.issuer.key().key.to_pkcs8()?)
    }

    /// Writes `ca.pem` (the chain) and `ca.key` (PKCS#8 PEM, mode 0600) into `dir`, which
    /// must exist. Each file is written to a temporary name and renamed into place.
    pub fn to_pem_files(&self, dir: &Path) -> Result<(), CaError> {
        let key_pem = crate::pem::encode_private_key(&self.to_pkcs8()?);
        write_file(&dir.join(CA_KEY_FILE), key_pem.as_bytes(), true)?;
        let chain_pem = crate::pem::encode_certificates(&self.chain);
        write_file(&dir.join(CA_CERT_FILE), chain_pem.as_bytes(), false)
    }

    /// Loads a CA written by [`to_pem_files`](Self::to_pem_files) (or prepared by hand in the
    /// same layout) and checks it: the first certificate must be a CA with `keyCertSign`
    /// whose only URI SAN is a trust domain root ID, and the key must match it.
    pub fn load(dir: &Path, clock: Arc<dyn Clock>) -> Result<Self, CaError> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let chain_pem = std::fs::read(&cert_path).map_err(|source| CaError::Io {
            path: cert_path.clone(),
            source,
        })?;
        let key_pem = Zeroizing::new(std::fs::read(&key_path).map_err(|source| CaError::Io {
            path: key_path.clone(),
            source,
        })?);
        let chain = crate::pem::certificates(&chain_pem)?;
        let pkcs8 = crate::pem::private_key_pkcs8(&key_pem)?.ok_or(CaError::NoPrivateKey)?;
        Self::from_der(chain, &pkcs8, clock)
    }

    /// A CA from its chain (`[this CA, upstream certificates...]`, DER) and its private
    /// key (PKCS#8 DER), checked as [`load`](Self::load) checks the files: the first
    /// certificate must be a CA with `keyCertSign` whose only URI SAN is a trust domain
    /// root ID, and the key must match it.
    pub fn from_der(
        chain: Vec<CertificateDer<'static>>,
        pkcs8: &[u8],
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CaError> {
        let ca_der = chain
            .first()
            .ok_or(CaError::InvalidCaCertificate("no certificate in ca.pem"))?;
        for der in chain.iter().skip(1) {
            x509::parse(der).ok_or(CaError::InvalidCaCertificate(
                "cannot parse an upstream certificate",
            ))?;
        }
        let ca = x509::parse(ca_der).ok_or(CaError::InvalidCaCertificate(
            "cannot parse the CA certificate",
        ))?;
        check_signing_cert(&ca)?;
        let uris = x509::uri_sans(&ca)
            .map_err(|()| CaError::InvalidCaCertificate("malformed subjectAltName"))?;
        let [uri] = uris.as_slice() else {
            return Err(CaError::InvalidCaCertificate(
                "the CA needs exactly one URI SAN",
            ));
        };
        let id = SpiffeId::parse(uri)
            .map_err(|_| CaError::InvalidCaCertificate("the URI SAN is not a SPIFFE ID"))?;
        if !id.is_root() {
            return Err(CaError::InvalidCaCertificate(
                "the CA's SPIFFE ID must be a trust domain root ID",
            ));
        }
        let alg = match x509::key_kind(&ca) {
            KeyKind::P256 => Algorithm::ES256,
            KeyKind::P384 => Algorithm::ES384,
            KeyKind::Ed25519 => Algorithm::EdDSA,
            _ => return Err(CaError::InvalidCaCertificate("unsupported CA key type")),
        };
        let key = SigningKey::from_pkcs8(alg, pkcs8).map_err(|_| CaError::KeyMismatch)?;
        if key.public_key_bytes() != x509::public_key_bytes(&ca) {
            return Err(CaError::KeyMismatch);
        }
        let not_before = ca.validity().not_before.timestamp();
        let not_after = ca.validity().not_after.timestamp();
        let issuer = Issuer::from_ca_cert_der(ca_der, RcgenKey::new(key)?)?;
        let td = id.trust_domain().clone();
        Ok(Self::assemble(
            td, issuer, chain, not_before, not_after, clock,
        ))
    }
}

static EMPTY_CERT: CertificateDer<'static> = CertificateDer::from_slice(&[]);

/// The certificates to send after a leaf: the CA chain, minus a self-issued root at its end
/// (relying parties hold it in their bundle).
fn svid_tail(chain: &[CertificateDer<'static>]) -> Vec<CertificateDer<'static>> {
    let mut tail = chain.to_vec();
    let ends_with_root = tail
        .last()
        .and_then(|c| x509::parse(c))
        .is_some_and(|c| x509::is_self_issued(&c));
    if ends_with_root {
        tail.pop();
    }
    tail
}

/// A signing certificate must be a CA with `keyCertSign` (X509-SVID §4.1, §4.3).
fn check_signing_cert(cert: &x509_parser::certificate::X509Certificate<'_>) -> Result<(), CaError> {
    let ca = x509::basic_constraints_ca(cert)
        .map_err(|()| CaError::InvalidCaCertificate("malformed basicConstraints"))?;
    if ca != Some(true) {
        return Err(CaError::InvalidCaCertificate("not a CA (cA is not true)"));
    }
    let ku =
        x509::key_usage(cert).map_err(|()| CaError::InvalidCaCertificate("malformed keyUsage"))?;
    if !ku.is_some_and(|k| k.key_cert_sign) {
        return Err(CaError::InvalidCaCertificate("keyCertSign is not set"));
    }
    Ok(())
}

fn ca_params(
    td: &TrustDomain,
    cn: &str,
    not_before: i64,
    not_after: i64,
    path_len: u8,
    key: &RcgenKey<SigningKey>,
) -> Result<CertificateParams, CaError> {
    use rcgen::PublicKeyData as _;
    let mut params = CertificateParams::default();
    params.not_before = to_datetime(not_before)?;
    params.not_after = to_datetime(not_after)?;
    params.serial_number = Some(random_serial()?);
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, td.as_str());
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.subject_alt_names = vec![SanType::URI(Ia5String::try_from(td.id().as_str())?)];
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.use_authority_key_identifier_extension = true;
    // RFC 5280 §4.2.1.2 method (1) style, with SHA-256 truncated to 160 bits; computed once
    // and pre-specified so every SVID's AKI is copied, not re-hashed.
    let spki_hash = aims_crypto::sha256(key.subject_public_key_info());
    let ski = spki_hash.get(..20).unwrap_or(&spki_hash).to_vec();
    params.key_identifier_method = KeyIdMethod::PreSpecified(ski);
    Ok(params)
}

/// A random positive serial of 128 bits (RFC 5280 §4.1.2.2: at most 20 octets).
fn random_serial() -> Result<SerialNumber, CaError> {
    let mut bytes = aims_crypto::random_bytes::<16>()?;
    if bytes.iter().all(|b| *b == 0) {
        bytes[15] = 1;
    }
    // A leading 0x00 keeps the INTEGER positive whatever the first random bit.
    let mut serial = Vec::with_capacity(17);
    serial.push(0);
    serial.extend_from_slice(&bytes);
    Ok(SerialNumber::from_slice(&serial))
}

fn secs(d: Duration) -> Result<i64, CaError> {
    match i64::try_from(d.as_secs()) {
        Ok(s) if s > 0 => Ok(s),
        _ => Err(CaError::InvalidValidity),
    }
}

fn to_datetime(t: i64) -> Result<time::OffsetDateTime, CaError> {
    time::OffsetDateTime::from_unix_timestamp(t).map_err(|_| CaError::InvalidValidity)
}

fn write_file(path: &Path, contents: &[u8], secret: bool) -> Result<(), CaError> {
    use std::io::Write as _;
    let io_err = |source| CaError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(if secret { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut f = opts.open(&tmp).map_err(io_err)?;
    f.write_all(contents).map_err(io_err)?;
    f.sync_all().map_err(io_err)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io_err)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn serial_is_positive_and_at_most_17_octets() {
        for _ in 0..64 {
            let s = random_serial().unwrap().to_bytes();
            assert_eq!(s.len(), 17);
            assert_eq!(s[0], 0);
        }
    }

    #[test]
    fn durations_must_be_positive() {
        assert!(matches!(
            secs(Duration::ZERO),
            Err(CaError::InvalidValidity)
        ));
        assert!(matches!(
            secs(Duration::from_secs(u64::MAX)),
            Err(CaError::InvalidValidity)
        ));
        assert_eq!(secs(Duration::from_millis(1500)).unwrap(), 1);
    }
}
