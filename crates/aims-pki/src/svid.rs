//! X509-SVIDs: the [`X509Svid`] credential (certificate chain + private key) and the
//! validation of a presented chain against a trust domain bundle.
//!
//! Implements the validating side of the SPIFFE X509-SVID standard (specs.md 2.7):
//!
//! * **Leaf validation** (X509-SVID §5.2, §3.1, §4.1, §4.3): exactly one URI SAN
//!   ([`SvidError::LeafNoUriSan`], [`SvidError::LeafMultipleUriSans`]) that is a valid
//!   `spiffe://` ID ([`SvidError::LeafInvalidSpiffeId`]) with a non-root path
//!   ([`SvidError::LeafRootId`]); not a CA ([`SvidError::LeafIsCa`]); KeyUsage present
//!   ([`SvidError::LeafKeyUsageMissing`]) with `digitalSignature`
//!   ([`SvidError::LeafMissingDigitalSignature`]) and without `keyCertSign` or `cRLSign`
//!   ([`SvidError::LeafHasKeyCertSign`], [`SvidError::LeafHasCrlSign`]).
//! * **Signing certificates** in the presented chain (X509-SVID §3.2, §4.1, §4.3): cA=true
//!   ([`SvidError::IntermediateNotCa`]), `keyCertSign` ([`SvidError::IntermediateNoKeyCertSign`]),
//!   and a URI SAN, if any, that is a trust domain root ID
//!   ([`SvidError::IntermediateBadSpiffeId`]).
//! * **Path validation** (X509-SVID §5.1): RFC 5280 path validation by rustls-webpki with the
//!   X.509 authorities of **the leaf's own trust domain** as the only trust anchors, at a time
//!   the caller pins (from an `aims_core::Clock`). The important webpki failures have their
//!   own variants ([`SvidError::Expired`], [`SvidError::NotYetValid`],
//!   [`SvidError::UnknownIssuer`], [`SvidError::BadSignature`]).
//! * Trust domain policy: an optional allow-list ([`SvidError::TrustDomainNotAllowed`]),
//!   checked before the bundle lookup ([`SvidError::NoBundle`],
//!   [`SvidError::NoX509Authorities`] when the bundle revoked every X.509 authority).
//!
//! The SPIFFE rules are checked, in the order above, before any signature is verified, so a
//! malformed SVID is rejected cheaply and with the most specific error; the order within the
//! leaf rules is go-spiffe's, so its test vectors give the same verdicts.
//!
//! Parsing ([`X509Svid::parse_pem`], [`X509Svid::parse_raw`], [`X509Svid::load`]) mirrors
//! go-spiffe's `x509svid.Parse`/`ParseRaw`/`Load`: the chain is leaf first, PEM sections of
//! other types are skipped (so one file may hold "cert then key" or "key then cert"), the
//! SPIFFE rules are checked (without path validation), and the private key must match the
//! leaf's public key.

use std::path::Path;
use std::time::Duration;

use aims_core::{SpiffeId, TrustDomain};
use aims_crypto::{Algorithm, SigningKey};
use rustls_pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, SignatureVerificationAlgorithm, UnixTime,
};
use webpki::{ExtendedKeyUsageValidator, KeyPurposeIdIter};
use x509_parser::certificate::X509Certificate;
use zeroize::Zeroizing;

use crate::bundle::{SpiffeBundle, TrustStore};
use crate::pem::PemError;
use crate::x509;

/// Why an X509-SVID was rejected: one variant per rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SvidError {
    /// The certificate chain is empty.
    #[error("empty certificate chain")]
    EmptyChain,
    /// PEM input holds no PEM section at all.
    #[error("not PEM data")]
    NotPem,
    /// PEM input is malformed (bad base64, missing END line).
    #[error("malformed PEM: {0}")]
    MalformedPem(String),
    /// PEM input holds no `CERTIFICATE` section.
    #[error("no certificates found")]
    NoCertificates,
    /// The certificate at `index` (0 = leaf) is not a well-formed DER X.509 certificate, or
    /// one of its SPIFFE-relevant extensions is malformed or duplicated.
    #[error("certificate {index} cannot be parsed")]
    Unparseable {
        /// Position in the chain, leaf = 0.
        index: usize,
    },
    /// The leaf has no URI SAN (X509-SVID §2).
    #[error("leaf certificate has no URI SAN")]
    LeafNoUriSan,
    /// The leaf has more than one URI SAN (X509-SVID §5.2: MUST be rejected).
    #[error("leaf certificate has {count} URI SANs; exactly one is allowed")]
    LeafMultipleUriSans {
        /// How many URI SANs the leaf has.
        count: usize,
    },
    /// The leaf's URI SAN is not a valid SPIFFE ID.
    #[error("leaf URI SAN is not a valid SPIFFE ID: {0}")]
    LeafInvalidSpiffeId(aims_core::IdError),
    /// The leaf's SPIFFE ID is a trust domain root ID (X509-SVID §3.1: non-root path).
    #[error("leaf SPIFFE ID has no path")]
    LeafRootId,
    /// The leaf has BasicConstraints cA=true (X509-SVID §4.1, §5.2).
    #[error("leaf certificate must not have CA flag set to true")]
    LeafIsCa,
    /// The leaf has no KeyUsage extension (X509-SVID §4.3: it MUST be present).
    #[error("leaf certificate has no key usage extension")]
    LeafKeyUsageMissing,
    /// The leaf's KeyUsage lacks `digitalSignature` (X509-SVID §4.3).
    #[error("leaf certificate must have 'digitalSignature' set as key usage")]
    LeafMissingDigitalSignature,
    /// The leaf's KeyUsage has `keyCertSign` (X509-SVID §4.3, §5.2).
    #[error("leaf certificate must not have 'keyCertSign' set as key usage")]
    LeafHasKeyCertSign,
    /// The leaf's KeyUsage has `cRLSign` (X509-SVID §4.3, §5.2).
    #[error("leaf certificate must not have 'cRLSign' set as key usage")]
    LeafHasCrlSign,
    /// A signing certificate in the chain is not a CA (X509-SVID §4.1).
    #[error("signing certificate {index} must have CA flag set to true")]
    IntermediateNotCa {
        /// Position in the chain.
        index: usize,
    },
    /// A signing certificate in the chain lacks `keyCertSign` (X509-SVID §4.3).
    #[error("signing certificate {index} must have 'keyCertSign' set as key usage")]
    IntermediateNoKeyCertSign {
        /// Position in the chain.
        index: usize,
    },
    /// A signing certificate has a URI SAN that is not a trust domain root ID
    /// (X509-SVID §3.2).
    #[error("signing certificate {index} has a URI SAN that is not a trust domain ID")]
    IntermediateBadSpiffeId {
        /// Position in the chain.
        index: usize,
    },
    /// The leaf's trust domain is not in the caller's allow-list.
    #[error("trust domain `{0}` is not allowed")]
    TrustDomainNotAllowed(TrustDomain),
    /// The SPIFFE ID is valid but the authorizer does not accept it.
    #[error("SPIFFE ID `{0}` is not authorized")]
    NotAuthorized(SpiffeId),
    /// There is no bundle for the leaf's trust domain.
    #[error("no bundle for trust domain `{0}`")]
    NoBundle(TrustDomain),
    /// The trust domain's bundle holds no X.509 authority (every SVID is then invalid).
    #[error("the bundle of trust domain `{0}` has no X.509 authorities")]
    NoX509Authorities(TrustDomain),
    /// A certificate of the path has expired at the verification time.
    #[error("certificate expired: notAfter {not_after} < now {now}")]
    Expired {
        /// The certificate's notAfter (Unix seconds).
        not_after: u64,
        /// The verification time (Unix seconds).
        now: u64,
    },
    /// A certificate of the path is not valid yet at the verification time.
    #[error("certificate not valid yet: notBefore {not_before} > now {now}")]
    NotYetValid {
        /// The certificate's notBefore (Unix seconds).
        not_before: u64,
        /// The verification time (Unix seconds).
        now: u64,
    },
    /// No path leads from the leaf to an X.509 authority of its trust domain.
    #[error("certificate signed by unknown authority")]
    UnknownIssuer,
    /// A signature in the path does not verify.
    #[error("invalid certificate signature")]
    BadSignature,
    /// The extended key usage does not allow the requested use (client/server auth).
    #[error("extended key usage does not permit this use")]
    ExtendedKeyUsage,
    /// Any other path validation failure (webpki's reason).
    #[error("path validation failed: {0}")]
    PathValidation(String),
    /// No PKCS#8 `PRIVATE KEY` section in the key input.
    #[error("no private key found")]
    NoPrivateKey,
    /// The private key cannot be parsed (PKCS#8 of P-256, P-384, P-521, Ed25519 or RSA).
    #[error("cannot parse private key")]
    InvalidPrivateKey,
    /// The private key does not belong to the leaf certificate.
    #[error("leaf certificate does not match private key")]
    KeyMismatch,
    /// A file could not be read.
    #[error("cannot read {path}: {kind}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        kind: std::io::ErrorKind,
    },
}

impl From<PemError> for SvidError {
    fn from(e: PemError) -> Self {
        match e {
            PemError::NotPem => SvidError::NotPem,
            PemError::Malformed(m) => SvidError::MalformedPem(m),
        }
    }
}

/// The extended key usage a verification requires of every certificate in the path
/// (RFC 5280 §4.2.1.12; a certificate without the EKU extension passes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SvidUsage {
    /// No EKU requirement.
    #[default]
    Any,
    /// `id-kp-clientAuth` if EKU is present (a TLS server verifying a client).
    ClientAuth,
    /// `id-kp-serverAuth` if EKU is present (a TLS client verifying a server).
    ServerAuth,
}

impl ExtendedKeyUsageValidator for SvidUsage {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        match self {
            SvidUsage::Any => {
                for id in iter {
                    id?;
                }
                Ok(())
            }
            SvidUsage::ClientAuth => webpki::KeyUsage::client_auth().validate(iter),
            SvidUsage::ServerAuth => webpki::KeyUsage::server_auth().validate(iter),
        }
    }
}

/// Options of [`verify`].
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyOptions<'a> {
    /// The EKU to require.
    pub usage: SvidUsage,
    /// If set, only SVIDs of these trust domains are accepted.
    pub allowed_trust_domains: Option<&'a [TrustDomain]>,
}

/// The result of a successful verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSvid {
    spiffe_id: SpiffeId,
    not_before: i64,
    not_after: i64,
    spki: Vec<u8>,
}

impl VerifiedSvid {
    /// The authenticated SPIFFE ID.
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.spiffe_id
    }
    /// The leaf's `notBefore`, Unix seconds.
    pub fn not_before(&self) -> i64 {
        self.not_before
    }
    /// The leaf's `notAfter`, Unix seconds.
    pub fn not_after(&self) -> i64 {
        self.not_after
    }
    /// The leaf's SubjectPublicKeyInfo, DER.
    pub fn public_key_spki(&self) -> &[u8] {
        &self.spki
    }
}

/// What the SPIFFE rules extract from a leaf.
struct LeafInfo {
    id: SpiffeId,
    not_before: i64,
    not_after: i64,
    spki: Vec<u8>,
    public_key: Vec<u8>,
}

/// Checks the leaf rules of X509-SVID §5.2 and the signing-certificate rules of §3.2/§4
/// for the certificates of the chain (no signature is verified here).
fn check_rules(
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
) -> Result<LeafInfo, SvidError> {
    let bad = |index| SvidError::Unparseable { index };
    let cert = x509::parse(leaf).ok_or(bad(0))?;
    // Parse every certificate before judging any, so a corrupt chain is reported as such.
    let parsed = intermediates
        .iter()
        .enumerate()
        .map(|(i, der)| x509::parse(der).ok_or(bad(i + 1)))
        .collect::<Result<Vec<_>, _>>()?;

    let id = leaf_id(&cert)?;
    if x509::basic_constraints_ca(&cert).map_err(|()| bad(0))? == Some(true) {
        return Err(SvidError::LeafIsCa);
    }
    let ku = x509::key_usage(&cert)
        .map_err(|()| bad(0))?
        .ok_or(SvidError::LeafKeyUsageMissing)?;
    if !ku.digital_signature {
        return Err(SvidError::LeafMissingDigitalSignature);
    }
    if ku.key_cert_sign {
        return Err(SvidError::LeafHasKeyCertSign);
    }
    if ku.crl_sign {
        return Err(SvidError::LeafHasCrlSign);
    }

    for (i, c) in parsed.iter().enumerate() {
        let index = i + 1;
        if x509::basic_constraints_ca(c).map_err(|()| bad(index))? != Some(true) {
            return Err(SvidError::IntermediateNotCa { index });
        }
        let ku = x509::key_usage(c).map_err(|()| bad(index))?;
        if !ku.is_some_and(|k| k.key_cert_sign) {
            return Err(SvidError::IntermediateNoKeyCertSign { index });
        }
        for uri in x509::uri_sans(c).map_err(|()| bad(index))? {
            if !SpiffeId::parse(uri).is_ok_and(|id| id.is_root()) {
                return Err(SvidError::IntermediateBadSpiffeId { index });
            }
        }
    }

    Ok(LeafInfo {
        id,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        spki: cert.public_key().raw.to_vec(),
        public_key: x509::public_key_bytes(&cert).to_vec(),
    })
}

/// The leaf's SPIFFE ID: its only URI SAN, with a non-root path.
fn leaf_id(cert: &X509Certificate<'_>) -> Result<SpiffeId, SvidError> {
    let uris = x509::uri_sans(cert).map_err(|()| SvidError::Unparseable { index: 0 })?;
    let uri = match uris.as_slice() {
        [] => return Err(SvidError::LeafNoUriSan),
        [uri] => *uri,
        more => return Err(SvidError::LeafMultipleUriSans { count: more.len() }),
    };
    let id = SpiffeId::parse(uri).map_err(SvidError::LeafInvalidSpiffeId)?;
    if id.is_root() {
        return Err(SvidError::LeafRootId);
    }
    Ok(id)
}

/// Verifies an X509-SVID chain (leaf first) against the bundles in `store` at time `now`
/// (Unix seconds; take it from an `aims_core::Clock`).
pub fn verify(
    chain: &[CertificateDer<'_>],
    store: &TrustStore,
    now: i64,
    opts: &VerifyOptions<'_>,
) -> Result<VerifiedSvid, SvidError> {
    let (leaf, intermediates) = chain.split_first().ok_or(SvidError::EmptyChain)?;
    verify_parts(
        leaf,
        intermediates,
        |td| store.get(td),
        now,
        opts,
        webpki::ALL_VERIFICATION_ALGS,
    )
}

/// Verifies an X509-SVID chain against a single bundle (the SVID's trust domain must be the
/// bundle's).
pub fn verify_with_bundle(
    chain: &[CertificateDer<'_>],
    bundle: &SpiffeBundle,
    now: i64,
    opts: &VerifyOptions<'_>,
) -> Result<VerifiedSvid, SvidError> {
    let (leaf, intermediates) = chain.split_first().ok_or(SvidError::EmptyChain)?;
    verify_parts(
        leaf,
        intermediates,
        |td| (td == bundle.trust_domain()).then_some(bundle),
        now,
        opts,
        webpki::ALL_VERIFICATION_ALGS,
    )
}

/// The verification core shared with the TLS verifiers.
pub(crate) fn verify_parts<B: std::ops::Deref<Target = SpiffeBundle>>(
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    lookup: impl FnOnce(&TrustDomain) -> Option<B>,
    now: i64,
    opts: &VerifyOptions<'_>,
    algs: &[&dyn SignatureVerificationAlgorithm],
) -> Result<VerifiedSvid, SvidError> {
    let info = check_rules(leaf, intermediates)?;
    let td = info.id.trust_domain();
    if let Some(allowed) = opts.allowed_trust_domains
        && !allowed.contains(td)
    {
        return Err(SvidError::TrustDomainNotAllowed(td.clone()));
    }
    let bundle = lookup(td).ok_or_else(|| SvidError::NoBundle(td.clone()))?;
    let anchors = bundle.trust_anchors();
    if anchors.is_empty() {
        return Err(SvidError::NoX509Authorities(td.clone()));
    }
    let ee =
        webpki::EndEntityCert::try_from(leaf).map_err(|_| SvidError::Unparseable { index: 0 })?;
    let time = UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(now).unwrap_or(0)));
    ee.verify_for_usage(algs, anchors, intermediates, time, opts.usage, None, None)
        .map_err(map_webpki_error)?;
    Ok(VerifiedSvid {
        spiffe_id: info.id,
        not_before: info.not_before,
        not_after: info.not_after,
        spki: info.spki,
    })
}

fn map_webpki_error(e: webpki::Error) -> SvidError {
    use webpki::Error as E;
    match e {
        E::CertExpired { time, not_after } => SvidError::Expired {
            not_after: not_after.as_secs(),
            now: time.as_secs(),
        },
        E::CertNotValidYet { time, not_before } => SvidError::NotYetValid {
            not_before: not_before.as_secs(),
            now: time.as_secs(),
        },
        E::UnknownIssuer => SvidError::UnknownIssuer,
        E::InvalidSignatureForPublicKey => SvidError::BadSignature,
        E::CaUsedAsEndEntity => SvidError::LeafIsCa,
        E::RequiredEkuNotFoundContext(_) => SvidError::ExtendedKeyUsage,
        other => SvidError::PathValidation(format!("{other:?}").chars().take(160).collect()),
    }
}

/// Extracts the SPIFFE ID of an already verified peer: the leaf's single URI SAN. Use it on
/// `Connection::peer_certificates()` after a handshake with the [`tls`](crate::tls)
/// verifiers, which checked every rule.
pub fn peer_spiffe_id(
    peer_certificates: Option<&[CertificateDer<'_>]>,
) -> Result<SpiffeId, SvidError> {
    let leaf = peer_certificates
        .and_then(|c| c.first())
        .ok_or(SvidError::EmptyChain)?;
    let cert = x509::parse(leaf).ok_or(SvidError::Unparseable { index: 0 })?;
    leaf_id(&cert)
}

/// An X509-SVID with its private key: what a workload presents.
///
/// Invariants (checked by every constructor): the chain is non-empty and leaf first, the
/// leaf and signing certificates obey the SPIFFE rules, and the key matches the leaf.
/// `Debug` never prints the key.
#[derive(Clone)]
pub struct X509Svid {
    spiffe_id: SpiffeId,
    chain: Vec<CertificateDer<'static>>,
    key: Zeroizing<Vec<u8>>,
    not_after: i64,
}

impl std::fmt::Debug for X509Svid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X509Svid")
            .field("spiffe_id", &self.spiffe_id)
            .field("chain_len", &self.chain.len())
            .field("not_after", &self.not_after)
            .field("key", &"[redacted]")
            .finish()
    }
}

static EMPTY_CERT: CertificateDer<'static> = CertificateDer::from_slice(&[]);

impl X509Svid {
    /// Built by the CA, which already guarantees the invariants.
    pub(crate) fn from_issued(
        spiffe_id: SpiffeId,
        chain: Vec<CertificateDer<'static>>,
        key: Zeroizing<Vec<u8>>,
        not_after: i64,
    ) -> Self {
        Self {
            spiffe_id,
            chain,
            key,
            not_after,
        }
    }

    /// Parses PEM certificates (leaf first) and a PEM PKCS#8 private key, like go-spiffe's
    /// `x509svid.Parse`. Both inputs may be the same file, in either order.
    pub fn parse_pem(certs_pem: &[u8], key_pem: &[u8]) -> Result<Self, SvidError> {
        let chain = crate::pem::certificates(certs_pem)?;
        if chain.is_empty() {
            return Err(SvidError::NoCertificates);
        }
        let key = crate::pem::private_key_pkcs8(key_pem)?.ok_or(SvidError::NoPrivateKey)?;
        Self::from_parts(chain, key)
    }

    /// Parses concatenated DER certificates (leaf first) and a DER PKCS#8 key: the Workload
    /// API `X509SVID` form (go-spiffe's `x509svid.ParseRaw`).
    pub fn parse_raw(certs_der: &[u8], key_pkcs8: &[u8]) -> Result<Self, SvidError> {
        let chain = crate::x509::split_concatenated(certs_der)
            .map_err(|index| SvidError::Unparseable { index })?;
        if chain.is_empty() {
            return Err(SvidError::NoCertificates);
        }
        Self::from_parts(chain, Zeroizing::new(key_pkcs8.to_vec()))
    }

    /// Reads a certificate file and a key file (which may be the same file), like go-spiffe's
    /// `x509svid.Load`.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, SvidError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| SvidError::Io {
                path: p.display().to_string(),
                kind: e.kind(),
            })
        };
        let certs = read(cert_path)?;
        let key = Zeroizing::new(read(key_path)?);
        Self::parse_pem(&certs, &key)
    }

    /// Builds an SVID from DER parts, checking the SPIFFE rules and the key.
    pub fn from_parts(
        chain: Vec<CertificateDer<'static>>,
        key_pkcs8: Zeroizing<Vec<u8>>,
    ) -> Result<Self, SvidError> {
        let (leaf, intermediates) = chain.split_first().ok_or(SvidError::NoCertificates)?;
        for (index, der) in chain.iter().enumerate() {
            x509::parse(der).ok_or(SvidError::Unparseable { index })?;
        }
        let key_public = private_key_public_bytes(&key_pkcs8)?;
        let info = check_rules(leaf, intermediates)?;
        if key_public != info.public_key {
            return Err(SvidError::KeyMismatch);
        }
        Ok(Self {
            spiffe_id: info.id,
            chain,
            key: key_pkcs8,
            not_after: info.not_after,
        })
    }

    /// The SPIFFE ID of the leaf.
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.spiffe_id
    }

    /// The certificate chain, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The leaf certificate.
    pub fn leaf(&self) -> &CertificateDer<'static> {
        // The chain is never empty (type invariant).
        self.chain.first().unwrap_or(&EMPTY_CERT)
    }

    /// The leaf's `notAfter`, Unix seconds.
    pub fn not_after(&self) -> i64 {
        self.not_after
    }

    /// The private key, PKCS#8 DER.
    pub fn private_key_pkcs8(&self) -> &[u8] {
        &self.key
    }

    /// A copy of the private key for rustls.
    pub fn private_key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.to_vec()))
    }

    /// The chain as PEM, leaf first.
    pub fn chain_pem(&self) -> String {
        crate::pem::encode_certificates(&self.chain)
    }

    /// The private key as PKCS#8 PEM (zeroized on drop).
    pub fn key_pem(&self) -> Zeroizing<String> {
        crate::pem::encode_private_key(&self.key)
    }

    /// The RFC 8705 `x5t#S256` thumbprint of the leaf.
    pub fn x5t_s256(&self) -> String {
        crate::x5t_s256(self.leaf())
    }
}

/// The public key (in the certificate's subjectPublicKey form) of a PKCS#8 private key.
fn private_key_public_bytes(pkcs8: &[u8]) -> Result<Vec<u8>, SvidError> {
    for alg in [Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA] {
        if let Ok(k) = SigningKey::from_pkcs8(alg, pkcs8) {
            return Ok(k.public_key_bytes().to_vec());
        }
    }
    // RSA and P-521 keys (e.g. SVIDs from other issuers) are parsed by rcgen's aws-lc-rs
    // backend. rcgen keeps a copy of the PKCS#8 that is not zeroized when dropped; the
    // original stays in our `Zeroizing` buffer.
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8));
    let kp = rcgen::KeyPair::try_from(&der).map_err(|_| SvidError::InvalidPrivateKey)?;
    Ok(kp.public_key_raw().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_inputs() {
        assert_eq!(
            verify(&[], &TrustStore::new(), 0, &VerifyOptions::default()).unwrap_err(),
            SvidError::EmptyChain
        );
        assert_eq!(
            X509Svid::parse_raw(&[], &[]).unwrap_err(),
            SvidError::NoCertificates
        );
        assert_eq!(
            X509Svid::parse_raw(b"not-DER-encoded", &[]).unwrap_err(),
            SvidError::Unparseable { index: 0 }
        );
        assert_eq!(peer_spiffe_id(None).unwrap_err(), SvidError::EmptyChain);
        assert_eq!(
            peer_spiffe_id(Some(&[])).unwrap_err(),
            SvidError::EmptyChain
        );
    }

    #[test]
    fn garbage_key_is_invalid() {
        assert_eq!(
            private_key_public_bytes(b"nope").unwrap_err(),
            SvidError::InvalidPrivateKey
        );
    }
}
