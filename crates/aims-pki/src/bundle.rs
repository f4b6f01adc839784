//! SPIFFE bundles: the trust material of a trust domain, and the [`TrustStore`] of all the
//! trust domains a workload trusts.
//!
//! Formats (specs.md 2.9):
//!
//! * **SPIFFE bundle** (SPIFFE Trust Domain and Bundle §4, X509-SVID §6, JWT-SVID §6,
//!   WIT-SVID): a JWK Set whose `keys` member is REQUIRED ([`BundleError::MissingKeys`]) but
//!   may be empty (the trust domain then has no valid SVID at all), plus the optional
//!   `spiffe_sequence` and `spiffe_refresh_hint` integers. Each key is classified by `use`
//!   (case-sensitive):
//!   * `x509-svid`: the first `x5c` entry is an X.509 authority (standard base64 DER);
//!     further entries are ignored; an entry with no or an empty `x5c` is ignored
//!     (X509-SVID §6.2); an `x5c` that does not decode to a certificate is
//!     [`BundleError::InvalidX5c`]. No `kid` is needed.
//!   * `jwt-svid`: a JWT-SVID signing key; `kid` is REQUIRED ([`BundleError::MissingKid`]).
//!   * `wit-svid`: a WIT-SVID signing key; `kid` is REQUIRED and unique bundle-wide.
//!   * a missing or unknown `use`, or an unknown `kty` (anything but `EC`, `RSA`, `OKP`): the
//!     key is ignored (§4.1.3, §4.2.1, §4.2.2).
//!
//!   Key IDs must be unique across the `jwt-svid` and `wit-svid` keys of a bundle
//!   ([`BundleError::DuplicateKid`]): a `kid` must name one key, so a token can never be
//!   checked against a key the issuer did not mean.
//! * **JWKS** (RFC 7517 §5, go-spiffe `jwtbundle`): every key is a JWT authority and needs a
//!   `kid`; unknown `kty` values are ignored.
//! * **X.509 bundle PEM** (go-spiffe `x509bundle`): concatenated `CERTIFICATE` sections.
//!
//! Keys are parsed once, when they enter the bundle: X.509 authorities into webpki trust
//! anchors, JWT/WIT keys into [`aims_crypto::VerifyingKey`]s, so validating a token or an
//! SVID never re-parses trust material.
//!
//! Deviation from go-spiffe: go-spiffe refuses an `x509-svid` key with more than one `x5c`
//! entry; we follow X509-SVID §6.2, which says the extra entries MUST be ignored.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock};

use aims_core::TrustDomain;
use aims_crypto::{CryptoError, Jwk, VerifyingKey, b64};
use rustls_pki_types::{CertificateDer, TrustAnchor};
use serde::Serialize;
use serde_json::Value;
use x509_parser::public_key::PublicKey;

use crate::pem::PemError;
use crate::x509::{self, KeyKind};

/// The `use` value of X.509 authorities.
pub const USE_X509_SVID: &str = "x509-svid";
/// The `use` value of JWT-SVID keys.
pub const USE_JWT_SVID: &str = "jwt-svid";
/// The `use` value of WIT-SVID keys.
pub const USE_WIT_SVID: &str = "wit-svid";

/// Errors of bundle parsing, building and lookup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The document is not valid JSON of the expected shape.
    #[error("invalid bundle JSON: {0}")]
    Json(String),
    /// The REQUIRED `keys` member is absent.
    #[error("bundle has no `keys` member")]
    MissingKeys,
    /// A `jwt-svid` or `wit-svid` key (or a JWKS key) has no `kid`.
    #[error("key has no `kid`")]
    MissingKid,
    /// Two keys share a `kid`.
    #[error("duplicate `kid` `{0}`")]
    DuplicateKid(String),
    /// A JWK's members have the wrong JSON types.
    #[error("malformed JWK: {0}")]
    MalformedJwk(String),
    /// A JWK's key material is unusable (bad point, private members, unsupported curve).
    #[error("invalid JWK: {0}")]
    InvalidJwk(CryptoError),
    /// An `x509-svid` key's `x5c` is not base64 of a usable certificate.
    #[error("invalid `x5c` certificate")]
    InvalidX5c,
    /// An X.509 authority is not a parseable certificate.
    #[error("invalid X.509 authority certificate")]
    InvalidCertificate,
    /// An X.509 authority is not a CA certificate (X509-SVID §6.1: an `x509-svid` entry
    /// holds exactly one CA certificate); a leaf listed here would let its key sign
    /// SVIDs for the whole trust domain.
    #[error("an X.509 authority must be a CA certificate (basicConstraints cA=true, keyCertSign)")]
    NotCa,
    /// A bundle entry carries private key material.
    #[error("a bundle entry carries private key members (d, p, q, dp, dq, qi, oth or k)")]
    PrivateKeyMaterial,
    /// An X.509 authority's public key type cannot be written as a JWK.
    #[error("unsupported X.509 authority key type")]
    UnsupportedAuthorityKey,
    /// PEM input holds no PEM section at all.
    #[error("not PEM data")]
    NotPem,
    /// PEM input is malformed.
    #[error("malformed PEM: {0}")]
    MalformedPem(String),
    /// PEM input holds no certificate.
    #[error("no certificates found")]
    NoCertificates,
    /// No bundle for the trust domain.
    #[error("no bundle for trust domain `{0}`")]
    NoBundle(TrustDomain),
    /// No key with this `kid` in the trust domain's bundle.
    #[error("no key `{kid}` in the bundle of `{trust_domain}`")]
    UnknownKid {
        /// The trust domain.
        trust_domain: TrustDomain,
        /// The requested key ID.
        kid: String,
    },
    /// An update carries a lower `spiffe_sequence` than the bundle it would replace.
    #[error("stale bundle: sequence {offered} < current {current}")]
    StaleSequence {
        /// The sequence number held.
        current: u64,
        /// The sequence number offered.
        offered: u64,
    },
}

impl From<PemError> for BundleError {
    fn from(e: PemError) -> Self {
        match e {
            PemError::NotPem => BundleError::NotPem,
            PemError::Malformed(m) => BundleError::MalformedPem(m),
        }
    }
}

#[derive(Debug, Clone)]
struct KeyedAuthority {
    jwk: Jwk,
    key: Arc<VerifyingKey>,
}

/// The trust material of one trust domain.
#[derive(Clone)]
pub struct SpiffeBundle {
    trust_domain: TrustDomain,
    x509_authorities: Vec<CertificateDer<'static>>,
    anchors: Vec<TrustAnchor<'static>>,
    jwt: BTreeMap<String, KeyedAuthority>,
    wit: BTreeMap<String, KeyedAuthority>,
    sequence: Option<u64>,
    refresh_hint: Option<u64>,
}

impl std::fmt::Debug for SpiffeBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpiffeBundle")
            .field("trust_domain", &self.trust_domain)
            .field("x509_authorities", &self.x509_authorities.len())
            .field("jwt_authorities", &self.jwt.keys().collect::<Vec<_>>())
            .field("wit_authorities", &self.wit.keys().collect::<Vec<_>>())
            .field("sequence", &self.sequence)
            .field("refresh_hint", &self.refresh_hint)
            .finish()
    }
}

/// The members of a bundle document this crate reads; others are ignored (§4.1).
struct BundleDoc {
    keys: Option<Vec<Value>>,
    spiffe_sequence: Option<u64>,
    spiffe_refresh_hint: Option<u64>,
}

impl BundleDoc {
    /// Parses a JSON object (anything else is an error); `null` members count as absent.
    fn parse(json: &[u8]) -> Result<Self, BundleError> {
        let mut obj: serde_json::Map<String, Value> =
            serde_json::from_slice(json).map_err(json_err)?;
        let keys = match obj.remove("keys") {
            None | Some(Value::Null) => None,
            Some(Value::Array(keys)) => Some(keys),
            Some(_) => return Err(BundleError::Json("`keys` must be an array".into())),
        };
        let uint = |v: Option<Value>, what: &str| match v {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| BundleError::Json(format!("`{what}` must be an unsigned integer"))),
        };
        Ok(Self {
            keys,
            spiffe_sequence: uint(obj.remove("spiffe_sequence"), "spiffe_sequence")?,
            spiffe_refresh_hint: uint(obj.remove("spiffe_refresh_hint"), "spiffe_refresh_hint")?,
        })
    }
}

#[derive(Serialize)]
struct BundleDocOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    spiffe_sequence: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    spiffe_refresh_hint: Option<u64>,
    keys: Vec<Jwk>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyUse {
    Jwt,
    Wit,
}

fn known_kty(v: &Value) -> bool {
    matches!(
        v.get("kty").and_then(Value::as_str),
        Some("EC" | "RSA" | "OKP")
    )
}

impl SpiffeBundle {
    /// An empty bundle for `trust_domain`.
    pub fn new(trust_domain: TrustDomain) -> Self {
        Self {
            trust_domain,
            x509_authorities: Vec::new(),
            anchors: Vec::new(),
            jwt: BTreeMap::new(),
            wit: BTreeMap::new(),
            sequence: None,
            refresh_hint: None,
        }
    }

    /// Parses a SPIFFE bundle document (see the [module documentation](self)).
    pub fn parse(trust_domain: TrustDomain, json: &[u8]) -> Result<Self, BundleError> {
        let doc = BundleDoc::parse(json)?;
        let keys = doc.keys.ok_or(BundleError::MissingKeys)?;
        let mut bundle = Self::new(trust_domain);
        bundle.sequence = doc.spiffe_sequence;
        bundle.refresh_hint = doc.spiffe_refresh_hint;
        for v in keys {
            if !known_kty(&v) {
                continue;
            }
            match v.get("use").and_then(Value::as_str) {
                Some(USE_X509_SVID) => bundle.add_x5c_entry(&v)?,
                Some(USE_JWT_SVID) => bundle.add_keyed(jwk_from_value(v)?, KeyUse::Jwt)?,
                Some(USE_WIT_SVID) => bundle.add_keyed(jwk_from_value(v)?, KeyUse::Wit)?,
                _ => {}
            }
        }
        Ok(bundle)
    }

    /// Parses a plain JWK Set of JWT-SVID keys (go-spiffe `jwtbundle`): every key needs a
    /// `kid`; keys of unknown `kty` are ignored (RFC 7517 §5).
    pub fn from_jwks(trust_domain: TrustDomain, json: &[u8]) -> Result<Self, BundleError> {
        let doc = BundleDoc::parse(json)?;
        let keys = doc.keys.ok_or(BundleError::MissingKeys)?;
        let mut bundle = Self::new(trust_domain);
        for v in keys {
            if known_kty(&v) {
                bundle.add_keyed(jwk_from_value(v)?, KeyUse::Jwt)?;
            }
        }
        Ok(bundle)
    }

    /// Parses PEM X.509 authorities (go-spiffe `x509bundle`): empty input or input without
    /// a certificate is [`BundleError::NoCertificates`].
    pub fn from_x509_pem(trust_domain: TrustDomain, pem: &[u8]) -> Result<Self, BundleError> {
        let certs = crate::pem::certificates(pem)?;
        if certs.is_empty() {
            return Err(BundleError::NoCertificates);
        }
        let mut bundle = Self::new(trust_domain);
        for cert in certs {
            bundle.add_x509_authority(cert)?;
        }
        Ok(bundle)
    }

    /// Parses concatenated DER X.509 authorities (the Workload API's `bundle` and
    /// `federated_bundles` encoding); input without a certificate is
    /// [`BundleError::NoCertificates`].
    pub fn from_x509_der(trust_domain: TrustDomain, der: &[u8]) -> Result<Self, BundleError> {
        let certs =
            crate::x509::split_concatenated(der).map_err(|_| BundleError::InvalidCertificate)?;
        if certs.is_empty() {
            return Err(BundleError::NoCertificates);
        }
        let mut bundle = Self::new(trust_domain);
        for cert in certs {
            bundle.add_x509_authority(cert)?;
        }
        Ok(bundle)
    }

    fn add_x5c_entry(&mut self, v: &Value) -> Result<(), BundleError> {
        if ["d", "p", "q", "dp", "dq", "qi", "oth", "k"]
            .iter()
            .any(|m| v.get(m).is_some())
        {
            return Err(BundleError::PrivateKeyMaterial);
        }
        let first = match v.get("x5c") {
            None | Some(Value::Null) => return Ok(()),
            Some(Value::Array(a)) => match a.first() {
                None => return Ok(()),
                Some(first) => first,
            },
            Some(_) => return Err(BundleError::InvalidX5c),
        };
        let der = first
            .as_str()
            .and_then(b64::decode_std)
            .ok_or(BundleError::InvalidX5c)?;
        // X509-SVID §6.1: exactly one CA certificate per `x509-svid` entry. (PEM and DER
        // bundles are taken as given, as go-spiffe does; JSON bundles are what federated
        // peers send.)
        let parsed = x509::parse(&der).ok_or(BundleError::InvalidX5c)?;
        let is_ca = x509::basic_constraints_ca(&parsed).map_err(|()| BundleError::NotCa)?;
        let key_usage = x509::key_usage(&parsed).map_err(|()| BundleError::NotCa)?;
        if is_ca != Some(true) || key_usage.is_some_and(|k| !k.key_cert_sign) {
            return Err(BundleError::NotCa);
        }
        self.add_x509_authority(CertificateDer::from(der))
            .map(|_| ())
            .map_err(|_| BundleError::InvalidX5c)
    }

    /// Adds an X.509 authority; returns `false` if it was already present.
    pub fn add_x509_authority(
        &mut self,
        cert: CertificateDer<'static>,
    ) -> Result<bool, BundleError> {
        if self.x509_authorities.contains(&cert) {
            return Ok(false);
        }
        x509::parse(&cert).ok_or(BundleError::InvalidCertificate)?;
        let anchor = webpki::anchor_from_trusted_cert(&cert)
            .map_err(|_| BundleError::InvalidCertificate)?
            .to_owned();
        self.anchors.push(anchor);
        self.x509_authorities.push(cert);
        Ok(true)
    }

    /// Removes an X.509 authority; returns whether it was present.
    pub fn remove_x509_authority(&mut self, cert: &CertificateDer<'_>) -> bool {
        match self
            .x509_authorities
            .iter()
            .position(|c| c.as_ref() == cert.as_ref())
        {
            Some(i) => {
                self.x509_authorities.remove(i);
                self.anchors.remove(i);
                true
            }
            None => false,
        }
    }

    /// Adds a JWT-SVID signing key (its `kid` is required and must be new to the bundle).
    pub fn add_jwt_authority(&mut self, jwk: Jwk) -> Result<(), BundleError> {
        self.add_keyed(jwk, KeyUse::Jwt)
    }

    /// Adds a WIT-SVID signing key (its `kid` is required and must be new to the bundle).
    pub fn add_wit_authority(&mut self, jwk: Jwk) -> Result<(), BundleError> {
        self.add_keyed(jwk, KeyUse::Wit)
    }

    /// Removes a JWT-SVID key; returns whether it was present.
    pub fn remove_jwt_authority(&mut self, kid: &str) -> bool {
        self.jwt.remove(kid).is_some()
    }

    /// Removes a WIT-SVID key; returns whether it was present.
    pub fn remove_wit_authority(&mut self, kid: &str) -> bool {
        self.wit.remove(kid).is_some()
    }

    fn add_keyed(&mut self, jwk: Jwk, use_: KeyUse) -> Result<(), BundleError> {
        let kid = jwk
            .kid
            .clone()
            .filter(|k| !k.is_empty())
            .ok_or(BundleError::MissingKid)?;
        if self.jwt.contains_key(&kid) || self.wit.contains_key(&kid) {
            return Err(BundleError::DuplicateKid(kid));
        }
        let key = VerifyingKey::from_jwk(&jwk).map_err(BundleError::InvalidJwk)?;
        let mut public = jwk.to_public();
        // A certificate chain on a JWT or WIT key is not checked against the key, and
        // clients that do check (go-jose) refuse the whole set when it does not match:
        // it is not kept.
        public.x5c = None;
        public.use_ = Some(
            match use_ {
                KeyUse::Jwt => USE_JWT_SVID,
                KeyUse::Wit => USE_WIT_SVID,
            }
            .to_owned(),
        );
        let entry = KeyedAuthority {
            jwk: public,
            key: Arc::new(key),
        };
        match use_ {
            KeyUse::Jwt => self.jwt.insert(kid, entry),
            KeyUse::Wit => self.wit.insert(kid, entry),
        };
        Ok(())
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The X.509 authorities (DER), in insertion order.
    pub fn x509_authorities(&self) -> &[CertificateDer<'static>] {
        &self.x509_authorities
    }

    /// The X.509 authorities as webpki trust anchors (parsed once).
    pub fn trust_anchors(&self) -> &[TrustAnchor<'static>] {
        &self.anchors
    }

    /// The JWT-SVID keys (public JWKs with `use` = `jwt-svid`), by `kid`.
    pub fn jwt_authorities(&self) -> impl Iterator<Item = &Jwk> {
        self.jwt.values().map(|a| &a.jwk)
    }

    /// The WIT-SVID keys (public JWKs with `use` = `wit-svid`), by `kid`.
    pub fn wit_authorities(&self) -> impl Iterator<Item = &Jwk> {
        self.wit.values().map(|a| &a.jwk)
    }

    /// The parsed JWT-SVID key with this `kid`.
    pub fn jwt_key(&self, kid: &str) -> Option<&Arc<VerifyingKey>> {
        self.jwt.get(kid).map(|a| &a.key)
    }

    /// The parsed WIT-SVID key with this `kid`.
    pub fn wit_key(&self, kid: &str) -> Option<&Arc<VerifyingKey>> {
        self.wit.get(kid).map(|a| &a.key)
    }

    /// `spiffe_sequence`.
    pub fn sequence(&self) -> Option<u64> {
        self.sequence
    }

    /// Sets `spiffe_sequence`.
    pub fn set_sequence(&mut self, sequence: Option<u64>) {
        self.sequence = sequence;
    }

    /// `spiffe_refresh_hint`, in seconds.
    pub fn refresh_hint(&self) -> Option<u64> {
        self.refresh_hint
    }

    /// Sets `spiffe_refresh_hint` (seconds).
    pub fn set_refresh_hint(&mut self, seconds: Option<u64>) {
        self.refresh_hint = seconds;
    }

    /// Whether the bundle holds no key of any kind.
    pub fn is_empty(&self) -> bool {
        self.x509_authorities.is_empty() && self.jwt.is_empty() && self.wit.is_empty()
    }

    /// The SPIFFE bundle document: X.509 authorities (`use` `x509-svid`, one `x5c` entry, the
    /// public key members, no `kid`), then JWT-SVID and WIT-SVID keys by `kid`.
    pub fn to_json(&self) -> Result<String, BundleError> {
        let mut keys =
            Vec::with_capacity(self.x509_authorities.len() + self.jwt.len() + self.wit.len());
        for cert in &self.x509_authorities {
            keys.push(authority_jwk(cert)?);
        }
        keys.extend(self.jwt.values().map(|a| a.jwk.clone()));
        keys.extend(self.wit.values().map(|a| a.jwk.clone()));
        let doc = BundleDocOut {
            spiffe_sequence: self.sequence,
            spiffe_refresh_hint: self.refresh_hint,
            keys,
        };
        serde_json::to_string(&doc).map_err(json_err)
    }

    /// The JWT-SVID keys as a plain JWK Set.
    pub fn to_jwks_json(&self) -> Result<String, BundleError> {
        let jwks = aims_crypto::Jwks {
            keys: self.jwt.values().map(|a| a.jwk.clone()).collect(),
        };
        serde_json::to_string(&jwks).map_err(json_err)
    }

    /// The X.509 authorities as PEM.
    pub fn to_x509_pem(&self) -> String {
        crate::pem::encode_certificates(&self.x509_authorities)
    }
}

fn json_err(e: serde_json::Error) -> BundleError {
    BundleError::Json(e.to_string())
}

fn jwk_from_value(v: Value) -> Result<Jwk, BundleError> {
    serde_json::from_value(v).map_err(|e| BundleError::MalformedJwk(e.to_string()))
}

/// A JWK of a certificate's public key with the certificate as its `x5c` (RFC 7517
/// §4.7), no `use`: how a client registers a certificate for RFC 8705
/// `self_signed_tls_client_auth`. EC (P-256/384/521), Ed25519 and RSA keys.
pub fn certificate_jwk(cert: &CertificateDer<'_>) -> Result<Jwk, BundleError> {
    let mut jwk = authority_jwk(cert)?;
    jwk.use_ = None;
    Ok(jwk)
}

/// The `x509-svid` JWK of an authority certificate.
fn authority_jwk(cert: &CertificateDer<'_>) -> Result<Jwk, BundleError> {
    let parsed = x509::parse(cert).ok_or(BundleError::InvalidCertificate)?;
    let mut jwk = match x509::key_kind(&parsed) {
        kind @ (KeyKind::P256 | KeyKind::P384 | KeyKind::P521) => {
            let (crv, n) = match kind {
                KeyKind::P256 => ("P-256", 32),
                KeyKind::P384 => ("P-384", 48),
                _ => ("P-521", 66),
            };
            let point = x509::public_key_bytes(&parsed);
            let (x, y) = match point.split_first() {
                Some((0x04, xy)) if xy.len() == 2 * n => xy.split_at(n),
                _ => return Err(BundleError::UnsupportedAuthorityKey),
            };
            Jwk {
                kty: "EC".into(),
                crv: Some(crv.into()),
                x: Some(b64::encode_url(x)),
                y: Some(b64::encode_url(y)),
                ..Jwk::default()
            }
        }
        KeyKind::Ed25519 => Jwk {
            kty: "OKP".into(),
            crv: Some("Ed25519".into()),
            x: Some(b64::encode_url(x509::public_key_bytes(&parsed))),
            ..Jwk::default()
        },
        KeyKind::Rsa => match parsed.public_key().parsed() {
            Ok(PublicKey::RSA(rsa)) => Jwk {
                kty: "RSA".into(),
                n: Some(b64::encode_url(strip_zeros(rsa.modulus))),
                e: Some(b64::encode_url(strip_zeros(rsa.exponent))),
                ..Jwk::default()
            },
            _ => return Err(BundleError::UnsupportedAuthorityKey),
        },
        KeyKind::Other => return Err(BundleError::UnsupportedAuthorityKey),
    };
    jwk.use_ = Some(USE_X509_SVID.into());
    jwk.x5c = Some(vec![b64::encode_std(cert)]);
    Ok(jwk)
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    b.get(start..).unwrap_or_default()
}

/// The bundles of every trusted trust domain, shared by validators and TLS verifiers.
///
/// Bundles are replaced whole (readers keep the `Arc` they got), so a rotation is atomic.
#[derive(Debug, Default)]
pub struct TrustStore {
    bundles: RwLock<HashMap<TrustDomain, Arc<SpiffeBundle>>>,
}

impl TrustStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding `bundles` (a later bundle of the same trust domain replaces an
    /// earlier one).
    pub fn from_bundles(bundles: impl IntoIterator<Item = SpiffeBundle>) -> Self {
        let store = Self::new();
        for b in bundles {
            store.insert(b);
        }
        store
    }

    /// Inserts or replaces the bundle of its trust domain; returns the previous one.
    pub fn insert(&self, bundle: SpiffeBundle) -> Option<Arc<SpiffeBundle>> {
        let mut map = self.bundles.write().unwrap_or_else(PoisonError::into_inner);
        map.insert(bundle.trust_domain().clone(), Arc::new(bundle))
    }

    /// Replaces the bundle of its trust domain unless the held bundle has a higher
    /// `spiffe_sequence` (§4.1.1: the sequence increases with every change).
    pub fn update(&self, bundle: SpiffeBundle) -> Result<(), BundleError> {
        let mut map = self.bundles.write().unwrap_or_else(PoisonError::into_inner);
        let held = map.get(bundle.trust_domain()).and_then(|b| b.sequence());
        if let (Some(current), Some(offered)) = (held, bundle.sequence())
            && offered < current
        {
            return Err(BundleError::StaleSequence { current, offered });
        }
        map.insert(bundle.trust_domain().clone(), Arc::new(bundle));
        Ok(())
    }

    /// Removes a trust domain's bundle.
    pub fn remove(&self, td: &TrustDomain) -> Option<Arc<SpiffeBundle>> {
        self.bundles
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(td)
    }

    /// The bundle of a trust domain.
    pub fn get(&self, td: &TrustDomain) -> Option<Arc<SpiffeBundle>> {
        self.bundles
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(td)
            .cloned()
    }

    /// The trust domains with a bundle, sorted.
    pub fn trust_domains(&self) -> Vec<TrustDomain> {
        let mut tds: Vec<_> = self
            .bundles
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        tds.sort();
        tds
    }

    /// The JWT-SVID verification key `kid` of trust domain `td`, parsed once when the bundle
    /// was built.
    pub fn jwt_key(&self, td: &TrustDomain, kid: &str) -> Result<Arc<VerifyingKey>, BundleError> {
        let bundle = self
            .get(td)
            .ok_or_else(|| BundleError::NoBundle(td.clone()))?;
        bundle
            .jwt_key(kid)
            .cloned()
            .ok_or_else(|| BundleError::UnknownKid {
                trust_domain: td.clone(),
                kid: kid.chars().take(128).collect(),
            })
    }

    /// The WIT-SVID verification key `kid` of trust domain `td`.
    pub fn wit_key(&self, td: &TrustDomain, kid: &str) -> Result<Arc<VerifyingKey>, BundleError> {
        let bundle = self
            .get(td)
            .ok_or_else(|| BundleError::NoBundle(td.clone()))?;
        bundle
            .wit_key(kid)
            .cloned()
            .ok_or_else(|| BundleError::UnknownKid {
                trust_domain: td.clone(),
                kid: kid.chars().take(128).collect(),
            })
    }
}
