//! Client authentication at the token, PAR, introspection and revocation endpoints.
//!
//! | Presented | Method | Checks |
//! |---|---|---|
//! | `client_assertion_type=…:jwt-bearer` + `client_assertion` | `private_key_jwt` (RFC 7523 §2.2, rfc7523bis) | `aims_jose::client_assertion` against the client's JWKS; `aud` = issuer alone; `jti` once (shared store across nodes) |
//! | `client_assertion_type=…:jwt-spiffe` + `client_assertion` | `spiffe_jwt` | JWT-SVID, `aud` = issuer alone, keys from the trust-domain bundle; `sub` matches the client's `spiffe_id` pattern; `jti`, when present, once |
//! | client certificate + `client_id` | `spiffe_x509` | the chain verifies as an X509-SVID of a trusted trust domain (per request, against the live trust store); its SPIFFE ID matches the client's pattern |
//! | client certificate + `client_id` | `tls_client_auth` (RFC 8705 §2.1) | the chain verifies as for `spiffe_x509`; its URI SAN equals `tls_client_auth_san_uri` |
//! | client certificate + `client_id` | `self_signed_tls_client_auth` (RFC 8705 §2.2) | no chain validation; the leaf is one of the certificates registered in the client's JWKS (`x5c` first entries), compared by SHA-256 in constant time |
//! | `OAuth-Client-Attestation` (WIT-SVID) + `OAuth-Client-Attestation-PoP` + `client_id` | `spiffe_wit` | WIT-SVID from the trust-domain bundle; PoP signed by its `cnf` key, `iss` = the WIT's `sub`, `aud` = issuer, `jti` once; `sub` matches the client's `spiffe_id` pattern |
//! | `client_id` only | `none` | public client (PKCE enforced by the grant) |
//!
//! RFC 6749 §2.3: a request using more than one method is refused (`invalid_request`).
//!
//! The transport hands over the client certificate as [`TlsPeer`]: possession of the
//! leaf's key was proven by the TLS handshake, nothing else. A name in the certificate
//! counts only after this module verified the chain, so a certificate of an unknown CA
//! (or a self-signed one) never passes as an SVID.
//!
//! Certificate binding (RFC 8705 §3): a client that authenticated with its certificate
//! gets tokens bound to it (`cnf.x5t#S256`); a client of another method that presents a
//! certificate gets them bound too when it registered
//! `tls_client_certificate_bound_access_tokens`. DPoP (`cnf.jkt`) takes precedence.
//! Every failure is `invalid_client` (401) with a reason that names no secret.

use std::sync::Arc;

use aims_core::{Clock, SpiffeId};
use aims_guard::ReplayCache;
use aims_guard::keys::{KeyUse, TrustStoreKeys};
use aims_jose::client_assertion::{self, ASSERTION_TYPE, SPIFFE_ASSERTION_TYPE};
use aims_jose::{JoseError, StaticKeys, attestation, jwt_svid, wit};
use aims_pki::TrustStore;
use aims_pki::svid::{SvidUsage, VerifyOptions};
use rustls_pki_types::CertificateDer;

use crate::client::{AuthMethod, Client};
use crate::token::{ClientAttestation, TokenRequest};
use crate::{Issuer, OAuthError};

/// The TLS client certificate of a request, as the transport received it: the handshake
/// proved possession of the leaf's private key, and nothing else is assumed. The chain
/// is verified here, per request, by the methods that trust a CA.
#[derive(Debug, Clone)]
pub struct TlsPeer {
    chain: Vec<CertificateDer<'static>>,
}

impl TlsPeer {
    /// The presented chain, leaf first; `None` when it is empty.
    pub fn new(chain: Vec<CertificateDer<'static>>) -> Option<Self> {
        (!chain.is_empty()).then_some(Self { chain })
    }

    /// The presented chain, leaf first (never empty).
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The leaf certificate, DER.
    pub fn leaf_der(&self) -> &[u8] {
        self.chain.first().map_or(&[][..], |c| c.as_ref())
    }

    /// The RFC 8705 §3.1 thumbprint of the leaf (`cnf.x5t#S256`).
    pub fn x5t_s256(&self) -> String {
        aims_pki::x5t_s256(self.leaf_der())
    }
}

/// A client whose authentication succeeded.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    /// The client.
    pub client: Arc<Client>,
    /// How it authenticated.
    pub method: AuthMethod,
    /// The agent's SPIFFE ID proven by the credential (SVID methods).
    pub spiffe_id: Option<SpiffeId>,
    /// SHA-256 thumbprint (base64url) of the client certificate, when mTLS was used
    /// (for `cnf.x5t#S256`).
    pub cert_thumbprint: Option<String>,
}

impl AuthenticatedClient {
    /// The identifier to put in tokens' `client_id`: the agent's SPIFFE ID when the
    /// credential proved one, else the registered client id.
    pub fn token_client_id(&self) -> &str {
        self.spiffe_id
            .as_ref()
            .map(SpiffeId::as_str)
            .unwrap_or_else(|| self.client.id())
    }
}

/// Looks clients up (the store, or a fixed set in tests).
pub trait ClientDirectory: Send + Sync {
    /// The client with this id, `Ok(None)` if there is none.
    fn get(
        &self,
        client_id: &str,
    ) -> impl std::future::Future<Output = Result<Option<Arc<Client>>, OAuthError>> + Send;
}

/// Authenticates clients for one authorization server.
#[derive(Clone)]
pub struct ClientAuthenticator {
    issuer: Issuer,
    clock: Arc<dyn Clock>,
    trust: Arc<TrustStore>,
    replay: ReplayCache,
}

impl std::fmt::Debug for ClientAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAuthenticator")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

fn denied(reason: impl Into<String>) -> OAuthError {
    OAuthError::invalid_client(reason)
}

fn jose_reason(e: &JoseError) -> String {
    format!("client assertion rejected: {e}")
}

impl ClientAuthenticator {
    /// An authenticator for `issuer`, trusting SVIDs of the trust domains in `trust`,
    /// recording assertion `jti`s in `replay`.
    pub fn new(
        issuer: Issuer,
        clock: Arc<dyn Clock>,
        trust: Arc<TrustStore>,
        replay: ReplayCache,
    ) -> Self {
        Self {
            issuer,
            clock,
            trust,
            replay,
        }
    }

    /// Authenticates the client of a request.
    pub async fn authenticate<D: ClientDirectory>(
        &self,
        req: &TokenRequest<'_>,
        clients: &D,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let mut client = self.authenticate_method(req, clients).await?;
        // RFC 8705 §3: bind to a certificate presented alongside another method when
        // the client asked for certificate-bound tokens.
        if client.cert_thumbprint.is_none()
            && let Some(peer) = req.tls
            && client
                .client
                .metadata()
                .tls_client_certificate_bound_access_tokens
        {
            client.cert_thumbprint = Some(peer.x5t_s256());
        }
        Ok(client)
    }

    async fn authenticate_method<D: ClientDirectory>(
        &self,
        req: &TokenRequest<'_>,
        clients: &D,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let (params, tls, basic_auth) = (req.params, req.tls, req.basic_auth);
        let assertion_type = params.get("client_assertion_type");
        let assertion = params.get("client_assertion");
        if let Some(att) = req.attestation {
            if assertion.is_some() || basic_auth {
                return Err(OAuthError::invalid_request(
                    "more than one client authentication method",
                ));
            }
            return self.spiffe_wit(att, params.get("client_id"), clients).await;
        }
        if assertion_type.is_some() != assertion.is_some() {
            return Err(OAuthError::invalid_request(
                "client_assertion and client_assertion_type go together",
            ));
        }
        if basic_auth && assertion.is_some() {
            return Err(OAuthError::invalid_request(
                "more than one client authentication method",
            ));
        }
        if basic_auth {
            return Err(denied(
                "client secrets are disabled on this server: use private_key_jwt or an SVID",
            ));
        }
        let client_id_param = params.get("client_id");
        match (assertion_type, assertion) {
            (Some(ASSERTION_TYPE), Some(token)) => {
                self.private_key_jwt(token, client_id_param, clients).await
            }
            (Some(SPIFFE_ASSERTION_TYPE), Some(token)) => {
                self.spiffe_jwt(token, client_id_param, clients).await
            }
            (Some(other), Some(_)) => {
                Err(denied(format!("unsupported client_assertion_type {other}")))
            }
            _ => {
                let client_id = client_id_param
                    .ok_or_else(|| denied("no client authentication and no client_id"))?;
                let client = lookup(clients, client_id).await?;
                match (client.auth_method(), tls) {
                    (AuthMethod::SpiffeX509, Some(peer)) => self.spiffe_x509(client, peer),
                    (AuthMethod::TlsClientAuth, Some(peer)) => self.tls_client_auth(client, peer),
                    (AuthMethod::SelfSignedTlsClientAuth, Some(peer)) => {
                        self_signed_tls_client_auth(client, peer)
                    }
                    (
                        m @ (AuthMethod::SpiffeX509
                        | AuthMethod::TlsClientAuth
                        | AuthMethod::SelfSignedTlsClientAuth),
                        None,
                    ) => Err(denied(format!(
                        "client {client_id} authenticates with {} and sent no client certificate: use the mtls_endpoint_aliases endpoints",
                        m.as_str()
                    ))),
                    (AuthMethod::None, None) => Ok(AuthenticatedClient {
                        client,
                        method: AuthMethod::None,
                        spiffe_id: None,
                        cert_thumbprint: None,
                    }),
                    (AuthMethod::None, Some(_)) => Err(OAuthError::invalid_request(
                        "a public client must not present a client certificate",
                    )),
                    (m, _) => Err(denied(format!(
                        "client {client_id} must authenticate with {}",
                        m.as_str()
                    ))),
                }
            }
        }
    }

    async fn private_key_jwt<D: ClientDirectory>(
        &self,
        token: &str,
        client_id_param: Option<&str>,
        clients: &D,
    ) -> Result<AuthenticatedClient, OAuthError> {
        // Without a client_id parameter the unverified `iss` only selects the client
        // whose keys must have signed.
        let client_id = match client_id_param {
            Some(c) => c.to_owned(),
            None => unverified_claim(token, "iss")
                .ok_or_else(|| denied("client assertion has no iss"))?,
        };
        let client = lookup(clients, &client_id).await?;
        if client.auth_method() != AuthMethod::PrivateKeyJwt {
            return Err(denied(format!(
                "client {client_id} does not use private_key_jwt"
            )));
        }
        let jwks = client
            .metadata()
            .jwks
            .as_ref()
            .ok_or_else(|| denied("client keys by jwks_uri are not supported yet"))?;
        let mut keys = StaticKeys::new();
        keys.add_jwks(client.id(), jwks);
        let (guard, pending) = self.replay.begin();
        let validator = client_assertion::Validator::new(self.clock.clone(), self.issuer.as_str())
            .replay_guard(guard);
        validator
            .validate_for_client(token, client.id(), &keys)
            .map_err(|e| denied(jose_reason(&e)))?;
        pending
            .commit(self.clock.now())
            .await
            .map_err(|_| denied("client assertion rejected: jti already used"))?;
        Ok(AuthenticatedClient {
            client,
            method: AuthMethod::PrivateKeyJwt,
            spiffe_id: None,
            cert_thumbprint: None,
        })
    }

    /// `spiffe_wit`: the WIT-SVID in `OAuth-Client-Attestation`, a proof of possession
    /// of its `cnf` key in `OAuth-Client-Attestation-PoP` (`aud` = issuer, `jti` once).
    async fn spiffe_wit<D: ClientDirectory>(
        &self,
        att: ClientAttestation<'_>,
        client_id_param: Option<&str>,
        clients: &D,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let client_id =
            client_id_param.ok_or_else(|| OAuthError::invalid_request("client_id is required"))?;
        let keys = TrustStoreKeys::new(self.trust.clone(), KeyUse::Wit);
        let (guard, pending) = self.replay.begin();
        let validated = attestation::Validator::new(
            wit::Validator::new(wit::WitProfile::WitSvid, self.clock.clone()),
            self.clock.clone(),
            self.issuer.as_str(),
            guard,
        )
        .validate(att.attestation, att.pop, &keys)
        .map_err(|e| denied(format!("client attestation rejected: {e}")))?;
        let id = validated
            .wit
            .spiffe_id()
            .cloned()
            .ok_or_else(|| denied("the attestation's subject is not a SPIFFE ID"))?;
        let client = lookup(clients, client_id).await?;
        if client.auth_method() != AuthMethod::SpiffeWit {
            return Err(denied(format!(
                "client {client_id} does not use spiffe_wit"
            )));
        }
        check_pattern(&client, &id)?;
        pending
            .commit(self.clock.now())
            .await
            .map_err(|_| denied("client attestation rejected: PoP jti already used"))?;
        Ok(AuthenticatedClient {
            client,
            method: AuthMethod::SpiffeWit,
            spiffe_id: Some(id),
            cert_thumbprint: None,
        })
    }

    async fn spiffe_jwt<D: ClientDirectory>(
        &self,
        token: &str,
        client_id_param: Option<&str>,
        clients: &D,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let keys = TrustStoreKeys::new(self.trust.clone(), KeyUse::Jwt);
        let svid = jwt_svid::Validator::new(self.clock.clone(), self.issuer.as_str())
            .require_single_audience(true)
            .validate(token, &keys)
            .map_err(|e| denied(format!("JWT-SVID rejected: {e}")))?;
        let id = svid.spiffe_id().clone();
        // The client is named by client_id, else registered under the SPIFFE ID itself.
        let client_id = client_id_param.unwrap_or(id.as_str()).to_owned();
        let client = lookup(clients, &client_id).await?;
        if client.auth_method() != AuthMethod::SpiffeJwt {
            return Err(denied(format!(
                "client {client_id} does not use spiffe_jwt"
            )));
        }
        check_pattern(&client, &id)?;
        if let Some(jti) = &svid.claims.jti {
            let exp = svid.claims.exp;
            let (guard, pending) = self.replay.begin();
            guard
                .check_and_record(&format!("spiffe-jwt:{id}:{jti}"), exp, self.clock.now())
                .map_err(|e| denied(jose_reason(&e)))?;
            pending
                .commit(self.clock.now())
                .await
                .map_err(|_| denied("JWT-SVID rejected: jti already used"))?;
        }
        Ok(AuthenticatedClient {
            client,
            method: AuthMethod::SpiffeJwt,
            spiffe_id: Some(id),
            cert_thumbprint: None,
        })
    }
}

async fn lookup<D: ClientDirectory>(clients: &D, id: &str) -> Result<Arc<Client>, OAuthError> {
    clients
        .get(id)
        .await?
        .ok_or_else(|| denied(format!("unknown client {id}")))
}

fn check_pattern(client: &Client, id: &SpiffeId) -> Result<(), OAuthError> {
    match client.spiffe_pattern() {
        Some(p) if p.matches(id) => Ok(()),
        _ => Err(denied(format!(
            "SPIFFE ID {id} is not registered for client {}",
            client.id()
        ))),
    }
}

impl ClientAuthenticator {
    /// The SPIFFE ID of a presented chain that verifies, now, as an X509-SVID (client
    /// usage) of a trust domain in the live trust store. The only way a certificate's
    /// name counts.
    fn verified_svid(&self, peer: &TlsPeer) -> Result<SpiffeId, OAuthError> {
        let opts = VerifyOptions {
            usage: SvidUsage::ClientAuth,
            allowed_trust_domains: None,
        };
        aims_pki::svid::verify(peer.chain(), &self.trust, self.clock.now(), &opts)
            .map(|v| v.spiffe_id().clone())
            .map_err(|e| {
                denied(format!(
                    "the client certificate is not an X509-SVID of a trusted trust domain: {e}"
                ))
            })
    }

    fn spiffe_x509(
        &self,
        client: Arc<Client>,
        peer: &TlsPeer,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let id = self.verified_svid(peer)?;
        check_pattern(&client, &id)?;
        Ok(AuthenticatedClient {
            client,
            method: AuthMethod::SpiffeX509,
            spiffe_id: Some(id),
            cert_thumbprint: Some(peer.x5t_s256()),
        })
    }

    /// RFC 8705 §2.1 with the trust store as the PKI: the chain verifies, and its URI
    /// SAN (an SVID has exactly one: its SPIFFE ID) is the registered one.
    fn tls_client_auth(
        &self,
        client: Arc<Client>,
        peer: &TlsPeer,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let san = self.verified_svid(peer)?;
        let registered = client.metadata().tls_client_auth_san_uri.as_deref();
        if !registered.is_some_and(|r| aims_crypto::ct_eq(r.as_bytes(), san.as_str().as_bytes())) {
            return Err(denied("the client certificate's URI SAN is not registered"));
        }
        Ok(AuthenticatedClient {
            spiffe_id: Some(san),
            client,
            method: AuthMethod::TlsClientAuth,
            cert_thumbprint: Some(peer.x5t_s256()),
        })
    }
}

/// RFC 8705 §2.2: no chain validation; the presented leaf must be one of the
/// certificates the client registered (the first `x5c` entry of a key of its JWKS).
fn self_signed_tls_client_auth(
    client: Arc<Client>,
    peer: &TlsPeer,
) -> Result<AuthenticatedClient, OAuthError> {
    let jwks = client
        .metadata()
        .jwks
        .as_ref()
        .ok_or_else(|| denied("client certificates by jwks_uri are not supported yet"))?;
    let presented = aims_crypto::sha256(peer.leaf_der());
    // Every registered certificate is compared, so the time taken does not say which
    // (or whether one) matched.
    let mut matched = false;
    for der in jwks.keys.iter().filter_map(registered_certificate) {
        matched |= aims_crypto::ct_eq(&aims_crypto::sha256(&der), &presented);
    }
    if !matched {
        return Err(denied(
            "the client certificate is not one registered for this client",
        ));
    }
    Ok(AuthenticatedClient {
        client,
        method: AuthMethod::SelfSignedTlsClientAuth,
        spiffe_id: None,
        cert_thumbprint: Some(peer.x5t_s256()),
    })
}

/// The certificate a JWK registers for `self_signed_tls_client_auth`: its first `x5c`
/// entry (RFC 7517 §4.7: standard base64 of the DER), if it decodes.
pub(crate) fn registered_certificate(jwk: &aims_crypto::Jwk) -> Option<Vec<u8>> {
    let first = jwk.x5c.as_ref()?.first()?;
    aims_crypto::b64::decode_std(first).filter(|d| !d.is_empty())
}

/// A string claim of a JWT, unverified (only to select which keys must verify it).
pub(crate) fn unverified_claim(token: &str, claim: &str) -> Option<String> {
    aims_jose::Jws::unverified_claims(token)?
        .get(claim)?
        .as_str()
        .map(str::to_owned)
}
