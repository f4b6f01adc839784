//! SPIFFE mutual TLS: the one place where AIMS builds rustls configurations.
//!
//! Implements draft-ietf-wimse-mutual-tls as summarised in specs.md 2.6, on X509-SVIDs
//! (specs.md 2.7):
//!
//! * The peer chain is validated against the trust anchors **of the peer's own trust
//!   domain** (taken from its SPIFFE ID) and never against a union of all bundles, so one
//!   trust domain's CA cannot vouch for another's identities. This is why the server side
//!   does not use rustls's `WebPkiClientVerifier` (one root store for everything): both
//!   verifiers call [`svid::verify_parts`](crate::svid) directly, which runs every SPIFFE rule
//!   and then rustls-webpki path validation.
//! * The trust domain must be allowed, and the full SPIFFE ID is then checked by an
//!   [`Authorizer`] ("authorization MUST NOT use only the path").
//! * A server that wants the client identity requires a client certificate
//!   ([`ClientAuth::Required`]); EKU `clientAuth`/`serverAuth` is required when present.
//! * Endpoints that authenticate clients per request (the OAuth token endpoint on its mTLS
//!   alias: `spiffe_x509`, RFC 8705 `tls_client_auth` and `self_signed_tls_client_auth`)
//!   use [`DeferredClientCertVerifier`] instead: any well-formed client certificate passes
//!   the handshake (which proves possession of its key), and the chain is verified per
//!   request by the method that trusts it. Such a connection carries no identity by itself.
//! * SVIDs carry no DNS name: the client-side verifier ignores the `ServerName` and checks the
//!   server's SPIFFE ID with the authorizer instead (the client is configured with the
//!   expected server identity). Any `ServerName` may be passed to `connect`.
//!
//! Configurations use the aws-lc-rs provider explicitly and TLS 1.3 and 1.2 only. Time comes
//! from an `aims_core::Clock` (the system clock by default), so tests can pin it.
//!
//! Failures reach rustls as follows: expiry, not-yet-valid, unknown issuer, bad signature
//! and unparseable certificates become the standard [`CertificateError`] variants (and
//! their standard alerts); every other rule, the trust domain allow-list and the authorizer
//! become [`CertificateError::Other`] wrapping the [`SvidError`].

use std::sync::Arc;
use std::time::Duration;

use aims_core::id::SpiffeIdPattern;
use aims_core::{Clock, SpiffeId, SystemClock, TrustDomain};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::time_provider::TimeProvider;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, OtherError,
    ServerConfig, SignatureScheme,
};

use crate::bundle::TrustStore;
use crate::svid::{self, SvidError, SvidUsage, VerifyOptions, X509Svid};

/// Extracts the SPIFFE ID from `Connection::peer_certificates()` after a handshake with the
/// verifiers of this module (which checked every rule).
pub use crate::svid::peer_spiffe_id;

/// Errors building a TLS configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// rustls refused the configuration (for example the SVID key).
    #[error("TLS configuration error: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Which peer SPIFFE IDs a TLS endpoint accepts, after the chain has been validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorizer {
    /// Any SPIFFE ID of these trust domains.
    AnyInTrustDomains(Vec<TrustDomain>),
    /// Exactly these SPIFFE IDs.
    Exact(Vec<SpiffeId>),
    /// IDs matching any of these patterns (exact IDs or `/*` prefixes).
    Pattern(Vec<SpiffeIdPattern>),
}

impl Authorizer {
    /// The trust domains this authorizer can ever accept: SVIDs of other trust domains are
    /// refused before their bundle is even looked up.
    pub fn trust_domains(&self) -> Vec<TrustDomain> {
        let mut tds: Vec<TrustDomain> = match self {
            Authorizer::AnyInTrustDomains(tds) => tds.clone(),
            Authorizer::Exact(ids) => ids.iter().map(|i| i.trust_domain().clone()).collect(),
            Authorizer::Pattern(ps) => ps.iter().map(|p| p.base().trust_domain().clone()).collect(),
        };
        tds.sort();
        tds.dedup();
        tds
    }

    /// Checks a validated peer ID: [`SvidError::TrustDomainNotAllowed`] or
    /// [`SvidError::NotAuthorized`] on refusal.
    pub fn authorize(&self, id: &SpiffeId) -> Result<(), SvidError> {
        let ok = match self {
            Authorizer::AnyInTrustDomains(tds) => {
                if !tds.contains(id.trust_domain()) {
                    return Err(SvidError::TrustDomainNotAllowed(id.trust_domain().clone()));
                }
                true
            }
            Authorizer::Exact(ids) => ids.contains(id),
            Authorizer::Pattern(ps) => ps.iter().any(|p| p.matches(id)),
        };
        if ok {
            Ok(())
        } else {
            Err(SvidError::NotAuthorized(id.clone()))
        }
    }
}

/// Whether a server requires a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// The handshake fails without a valid client SVID.
    Required,
    /// A client may connect without a certificate; one it sends is fully verified.
    Optional,
}

/// The provider every AIMS TLS configuration uses.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

#[derive(Debug)]
struct ClockTime(Arc<dyn Clock>);

impl TimeProvider for ClockTime {
    fn current_time(&self) -> Option<UnixTime> {
        u64::try_from(self.0.now())
            .ok()
            .map(|s| UnixTime::since_unix_epoch(Duration::from_secs(s)))
    }
}

/// The checks shared by both verifiers.
#[derive(Debug)]
struct SpiffePeerCheck {
    store: Arc<TrustStore>,
    authorizer: Authorizer,
    allowed: Vec<TrustDomain>,
    usage: SvidUsage,
    algs: WebPkiSupportedAlgorithms,
}

impl SpiffePeerCheck {
    fn new(
        store: Arc<TrustStore>,
        authorizer: Authorizer,
        usage: SvidUsage,
        p: &CryptoProvider,
    ) -> Self {
        let allowed = authorizer.trust_domains();
        Self {
            store,
            authorizer,
            allowed,
            usage,
            algs: p.signature_verification_algorithms,
        }
    }

    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<SpiffeId, rustls::Error> {
        let opts = VerifyOptions {
            usage: self.usage,
            allowed_trust_domains: Some(&self.allowed),
        };
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let verified = svid::verify_parts(
            end_entity,
            intermediates,
            |td| self.store.get(td),
            now,
            &opts,
            self.algs.all,
        )
        .map_err(to_rustls_error)?;
        self.authorizer
            .authorize(verified.spiffe_id())
            .map_err(to_rustls_error)?;
        Ok(verified.spiffe_id().clone())
    }
}

/// Maps an SVID failure to the rustls error (and so the TLS alert) the peer gets.
pub fn to_rustls_error(e: SvidError) -> rustls::Error {
    let ce = match e {
        SvidError::Expired { not_after, now } => CertificateError::ExpiredContext {
            time: UnixTime::since_unix_epoch(Duration::from_secs(now)),
            not_after: UnixTime::since_unix_epoch(Duration::from_secs(not_after)),
        },
        SvidError::NotYetValid { not_before, now } => CertificateError::NotValidYetContext {
            time: UnixTime::since_unix_epoch(Duration::from_secs(now)),
            not_before: UnixTime::since_unix_epoch(Duration::from_secs(not_before)),
        },
        SvidError::UnknownIssuer => CertificateError::UnknownIssuer,
        SvidError::BadSignature => CertificateError::BadSignature,
        SvidError::Unparseable { .. } => CertificateError::BadEncoding,
        other => CertificateError::Other(OtherError(Arc::new(other))),
    };
    rustls::Error::InvalidCertificate(ce)
}

/// The server side: verifies client X509-SVIDs.
#[derive(Debug)]
pub struct SpiffeClientCertVerifier {
    check: SpiffePeerCheck,
    mandatory: bool,
}

impl SpiffeClientCertVerifier {
    /// A verifier accepting client SVIDs that chain to their trust domain's bundle in `store`
    /// and pass `authorizer`.
    pub fn new(store: Arc<TrustStore>, authorizer: Authorizer, client_auth: ClientAuth) -> Self {
        Self {
            check: SpiffePeerCheck::new(store, authorizer, SvidUsage::ClientAuth, &provider()),
            mandatory: client_auth == ClientAuth::Required,
        }
    }
}

impl ClientCertVerifier for SpiffeClientCertVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // No CA names are sent: a client has one SVID and presents it whatever the hints.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check.check(end_entity, intermediates, now)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.check.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.check.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.check.algs.supported_schemes()
    }
}

/// The client side: verifies server X509-SVIDs (the `ServerName` is ignored).
#[derive(Debug)]
pub struct SpiffeServerCertVerifier {
    check: SpiffePeerCheck,
}

impl SpiffeServerCertVerifier {
    /// A verifier accepting server SVIDs that chain to their trust domain's bundle in `store`
    /// and pass `authorizer`.
    pub fn new(store: Arc<TrustStore>, authorizer: Authorizer) -> Self {
        Self {
            check: SpiffePeerCheck::new(store, authorizer, SvidUsage::ServerAuth, &provider()),
        }
    }
}

impl ServerCertVerifier for SpiffeServerCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check.check(end_entity, intermediates, now)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.check.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.check.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.check.algs.supported_schemes()
    }
}

/// The most certificates a client may present on a listener with deferred client
/// authentication (leaf and intermediates).
pub const MAX_DEFERRED_CHAIN: usize = 8;

/// The server side for endpoints that decide client authentication per request (the
/// OAuth token endpoint's `spiffe_x509`, RFC 8705 `tls_client_auth` and
/// `self_signed_tls_client_auth`): a client certificate is requested but optional, and
/// any well-formed certificate is accepted at the TLS layer (a self-signed one
/// included). The handshake still proves possession of the leaf's private key: rustls
/// verifies the client's `CertificateVerify` signature with the leaf's public key.
///
/// **Nothing about the chain is verified here.** A connection accepted by this verifier
/// carries no identity: the caller must verify the chain per request (for example with
/// [`crate::svid::verify`]) before trusting any name in it, and must never read it with
/// [`peer_spiffe_id`], which assumes a verified chain.
#[derive(Debug)]
pub struct DeferredClientCertVerifier {
    algs: WebPkiSupportedAlgorithms,
}

impl DeferredClientCertVerifier {
    /// A verifier with the aws-lc-rs signature algorithms.
    pub fn new() -> Self {
        Self {
            algs: provider().signature_verification_algorithms,
        }
    }
}

impl Default for DeferredClientCertVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientCertVerifier for DeferredClientCertVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // No CA names: self-signed certificates are welcome, so no issuer is preferred.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if intermediates.len() >= MAX_DEFERRED_CHAIN {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::BadEncoding,
            ));
        }
        // Only well-formedness: the per-request check parses the chain again and
        // verifies it as its method requires.
        let well_formed = crate::x509::parse(end_entity).is_some()
            && intermediates
                .iter()
                .all(|c| crate::x509::parse(c).is_some());
        if well_formed {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::BadEncoding,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// A server configuration presenting `svid` and requesting (not requiring) a client
/// certificate that it does not verify beyond possession of its key
/// ([`DeferredClientCertVerifier`]): for endpoints that authenticate clients per
/// request.
pub fn server_config_deferred_client_auth(
    svid: &X509Svid,
    clock: Arc<dyn Clock>,
) -> Result<ServerConfig, TlsError> {
    let config = ServerConfig::builder_with_details(provider(), Arc::new(ClockTime(clock)))
        .with_protocol_versions(VERSIONS)?
        .with_client_cert_verifier(Arc::new(DeferredClientCertVerifier::new()))
        .with_single_cert(svid.chain().to_vec(), svid.private_key_der())?;
    Ok(without_resumption(config))
}

/// `config` without session resumption: a resumed session is not verified again, so a
/// peer certificate that has expired since, or whose trust domain's bundle changed,
/// would keep being accepted (and a server would hand out tickets carrying it for a
/// day). Every connection does a full handshake.
fn without_resumption(mut config: ServerConfig) -> ServerConfig {
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    config
}

static VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// A server configuration presenting `svid` and verifying client SVIDs, on the system clock.
pub fn server_config(
    svid: &X509Svid,
    bundles: Arc<TrustStore>,
    authorizer: Authorizer,
    client_auth: ClientAuth,
) -> Result<ServerConfig, TlsError> {
    server_config_with_clock(
        svid,
        bundles,
        authorizer,
        client_auth,
        Arc::new(SystemClock),
    )
}

/// [`server_config`] with an explicit clock for certificate validity checks.
pub fn server_config_with_clock(
    svid: &X509Svid,
    bundles: Arc<TrustStore>,
    authorizer: Authorizer,
    client_auth: ClientAuth,
    clock: Arc<dyn Clock>,
) -> Result<ServerConfig, TlsError> {
    let verifier = SpiffeClientCertVerifier::new(bundles, authorizer, client_auth);
    let config = ServerConfig::builder_with_details(provider(), Arc::new(ClockTime(clock)))
        .with_protocol_versions(VERSIONS)?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(svid.chain().to_vec(), svid.private_key_der())?;
    Ok(without_resumption(config))
}

/// A client configuration verifying server SVIDs and presenting `svid` (if any) for client
/// authentication, on the system clock.
pub fn client_config(
    svid: Option<&X509Svid>,
    bundles: Arc<TrustStore>,
    authorizer: Authorizer,
) -> Result<ClientConfig, TlsError> {
    client_config_with_clock(svid, bundles, authorizer, Arc::new(SystemClock))
}

/// [`client_config`] with an explicit clock for certificate validity checks.
pub fn client_config_with_clock(
    svid: Option<&X509Svid>,
    bundles: Arc<TrustStore>,
    authorizer: Authorizer,
    clock: Arc<dyn Clock>,
) -> Result<ClientConfig, TlsError> {
    let verifier = SpiffeServerCertVerifier::new(bundles, authorizer);
    let builder = ClientConfig::builder_with_details(provider(), Arc::new(ClockTime(clock)))
        .with_protocol_versions(VERSIONS)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let mut config = match svid {
        Some(svid) => {
            builder.with_client_auth_cert(svid.chain().to_vec(), svid.private_key_der())?
        }
        None => builder.with_no_client_auth(),
    };
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

/// The rustls key of an X509-SVID (chain and private key), loaded by the aws-lc-rs
/// provider; for certificate resolvers that present a rotating SVID.
pub fn certified_key(svid: &X509Svid) -> Result<Arc<rustls::sign::CertifiedKey>, TlsError> {
    let key = provider()
        .key_provider
        .load_private_key(svid.private_key_der())?;
    Ok(Arc::new(rustls::sign::CertifiedKey::new(
        svid.chain().to_vec(),
        key,
    )))
}

/// A server configuration whose certificate `resolver` gives at every handshake (an SVID
/// that rotates without a restart), verifying client SVIDs against `bundles` (read live)
/// with `authorizer`.
pub fn server_config_with_resolver(
    resolver: Arc<dyn rustls::server::ResolvesServerCert>,
    bundles: Arc<TrustStore>,
    authorizer: Authorizer,
    client_auth: ClientAuth,
    clock: Arc<dyn Clock>,
) -> Result<ServerConfig, TlsError> {
    let verifier = SpiffeClientCertVerifier::new(bundles, authorizer, client_auth);
    Ok(without_resumption(
        ServerConfig::builder_with_details(provider(), Arc::new(ClockTime(clock)))
            .with_protocol_versions(VERSIONS)?
            .with_client_cert_verifier(Arc::new(verifier))
            .with_cert_resolver(resolver),
    ))
}

/// How a client verifies servers.
#[derive(Debug, Clone)]
pub enum ServerTrust {
    /// As SPIFFE workloads: SVIDs chaining to their trust domain's bundle, passing the
    /// authorizer.
    Spiffe(Arc<TrustStore>, Authorizer),
    /// As ordinary web servers: these roots and the DNS name or IP in the URL.
    WebPki(Vec<CertificateDer<'static>>),
}

/// A client configuration verifying servers per `trust` and presenting the certificate
/// `resolver` gives at each handshake (a rotating SVID), or none.
pub fn client_config_with_resolver(
    resolver: Option<Arc<dyn rustls::client::ResolvesClientCert>>,
    trust: ServerTrust,
    clock: Arc<dyn Clock>,
) -> Result<ClientConfig, TlsError> {
    let builder = ClientConfig::builder_with_details(provider(), Arc::new(ClockTime(clock)))
        .with_protocol_versions(VERSIONS)?;
    let builder = match trust {
        ServerTrust::Spiffe(store, authorizer) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(SpiffeServerCertVerifier::new(
                store, authorizer,
            ))),
        ServerTrust::WebPki(roots) => {
            let mut store = rustls::RootCertStore::empty();
            for root in roots {
                store.add(root)?;
            }
            builder.with_root_certificates(store)
        }
    };
    let mut config = match resolver {
        Some(r) => builder.with_client_cert_resolver(r),
        None => builder.with_no_client_auth(),
    };
    // A resumed session presents no certificate: neither side's would be checked again.
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorizer_rules() {
        let a = SpiffeId::parse("spiffe://a.org/x").unwrap();
        let b = SpiffeId::parse("spiffe://b.org/x").unwrap();
        let a_td = a.trust_domain().clone();
        let any = Authorizer::AnyInTrustDomains(vec![a_td.clone()]);
        assert_eq!(any.authorize(&a), Ok(()));
        assert_eq!(
            any.authorize(&b),
            Err(SvidError::TrustDomainNotAllowed(b.trust_domain().clone()))
        );
        let exact = Authorizer::Exact(vec![a.clone()]);
        assert_eq!(exact.authorize(&a), Ok(()));
        let a2 = SpiffeId::parse("spiffe://a.org/y").unwrap();
        assert_eq!(
            exact.authorize(&a2),
            Err(SvidError::NotAuthorized(a2.clone()))
        );
        let pat = Authorizer::Pattern(vec![SpiffeIdPattern::parse("spiffe://a.org/*").unwrap()]);
        assert_eq!(pat.authorize(&a2), Ok(()));
        assert_eq!(pat.authorize(&b), Err(SvidError::NotAuthorized(b.clone())));
        assert_eq!(pat.trust_domains(), vec![a_td.clone()]);
        assert_eq!(exact.trust_domains(), vec![a_td]);
    }

    #[test]
    fn error_mapping() {
        assert_eq!(
            to_rustls_error(SvidError::UnknownIssuer),
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
        );
        let rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) =
            to_rustls_error(SvidError::LeafIsCa)
        else {
            panic!("expected Other");
        };
        assert_eq!(
            inner.downcast_ref::<SvidError>(),
            Some(&SvidError::LeafIsCa)
        );
    }
}
