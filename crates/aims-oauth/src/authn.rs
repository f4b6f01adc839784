//! Client authentication at the token, PAR, introspection and revocation endpoints.
//!
//! | Presented | Method | Checks |
//! |---|---|---|
//! | `client_assertion_type=…:jwt-bearer` + `client_assertion` | `private_key_jwt` (RFC 7523 §2.2, rfc7523bis) | `aims_jose::client_assertion` against the client's JWKS; `aud` = issuer alone; `jti` once (shared store across nodes) |
//! | `client_assertion_type=…:jwt-spiffe` + `client_assertion` | `spiffe_jwt` | JWT-SVID, `aud` = issuer alone, keys from the trust-domain bundle; `sub` matches the client's `spiffe_id` pattern; `jti`, when present, once |
//! | client certificate + `client_id` | `spiffe_x509` | the chain verifies as an X509-SVID of a trusted trust domain (per request, against the live trust store); its SPIFFE ID matches the client's pattern |
//! | client certificate + `client_id` | `tls_client_auth` (RFC 8705 §2.1) | the chain verifies as for `spiffe_x509`, or (when configured) against the operator's client CAs ([`ClientCaRoots`]: path to a root, validity, `clientAuth`); one of its URI SANs equals `tls_client_auth_san_uri` |
//! | client certificate + `client_id` | `self_signed_tls_client_auth` (RFC 8705 §2.2) | no chain validation; the leaf is one of the certificates registered in the client's JWKS, inline or by `jwks_uri` (`x5c` first entries), compared by SHA-256 in constant time |
//! | `OAuth-Client-Attestation` (WIT-SVID) + `OAuth-Client-Attestation-PoP` + `client_id` | `spiffe_wit` | WIT-SVID from the trust-domain bundle; PoP signed by its `cnf` key, `iss` = the WIT's `sub`, `aud` = issuer, `jti` once; `sub` matches the client's `spiffe_id` pattern |
//! | `client_id` only | `none` | public client (PKCE enforced by the grant) |
//! | `Authorization: Basic` (RFC 6749 §2.3.1, form-urlencoded parts) | `client_secret_basic` | only with [`ClientAuthenticator::allow_client_secrets`]; SHA-256 of the secret equals the stored hash (constant time); a warning is logged at the first use and then at most every 10 minutes per client |
//! | `client_id` + `client_secret` in the body | `client_secret_post` | as `client_secret_basic` |
//!
//! `private_key_jwt` keys and `self_signed_tls_client_auth` certificates come from the
//! client's inline `jwks`, or from its `jwks_uri` through the [`JwksUriCache`] (fetch
//! failures are `invalid_client`).
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
use aims_pki::svid::{SvidUsage, VerifyOptions};
use aims_pki::{ClientCaRoots, TrustStore};
use rustls_pki_types::CertificateDer;

use crate::client::{AuthMethod, Client};
use crate::jwks_uri::JwksUriCache;
use crate::secret::{ClientSecret, verify_secret};
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
    /// Legacy client secrets accepted (`[oauth] allow_client_secrets`).
    allow_client_secrets: bool,
    /// Fetched client key sets (`jwks_uri`); `None`: `jwks_uri` clients are refused.
    jwks_uris: Option<JwksUriCache>,
    /// An operator's CAs for `tls_client_auth` certificates outside SPIFFE (RFC 8705
    /// §2.1); `None`: only X509-SVIDs of the trust store.
    client_cas: Option<Arc<ClientCaRoots>>,
    /// When each legacy-secret client was last warned about (so a busy client does not
    /// flood the log with one warning per request).
    secret_warned: Arc<std::sync::Mutex<std::collections::HashMap<String, i64>>>,
}

/// How often a legacy-secret client's use is logged as a warning, at most.
const SECRET_WARNING_INTERVAL: i64 = 600;

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
            allow_client_secrets: false,
            secret_warned: Arc::default(),
            jwks_uris: None,
            client_cas: None,
        }
    }

    /// Also accepts `tls_client_auth` certificates that verify against `roots`, an
    /// operator's PKI outside SPIFFE (default: only X509-SVIDs of the trust store).
    pub fn tls_client_auth_cas(mut self, roots: Arc<ClientCaRoots>) -> Self {
        self.client_cas = Some(roots);
        self
    }

    /// Accepts `client_secret_basic` and `client_secret_post` for clients registered with
    /// them (default: refused, even for such clients).
    pub fn allow_client_secrets(mut self, allow: bool) -> Self {
        self.allow_client_secrets = allow;
        self
    }

    /// Whether legacy client secrets are accepted.
    pub fn client_secrets_allowed(&self) -> bool {
        self.allow_client_secrets
    }

    /// Fetches the keys of clients registered with a `jwks_uri` through `cache`
    /// (default: such clients are refused).
    pub fn jwks_uri_cache(mut self, cache: JwksUriCache) -> Self {
        self.jwks_uris = Some(cache);
        self
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
        let (params, tls, basic_auth) = (req.params, req.tls, req.basic_auth.is_some());
        let assertion_type = params.get("client_assertion_type");
        let assertion = params.get("client_assertion");
        let secret_post = params.get("client_secret");
        // RFC 6749 §2.3: exactly one method per request.
        let presented = [
            req.attestation.is_some(),
            assertion.is_some() || assertion_type.is_some(),
            basic_auth,
            secret_post.is_some(),
        ];
        if presented.iter().filter(|p| **p).count() > 1 {
            return Err(OAuthError::invalid_request(
                "more than one client authentication method",
            ));
        }
        if let Some(basic) = req.basic_auth {
            if params
                .get("client_id")
                .is_some_and(|id| id != basic.client_id)
            {
                return Err(OAuthError::invalid_request(
                    "client_id differs from the Basic authorization's client",
                ));
            }
            return self
                .client_secret(
                    &basic.client_id,
                    &basic.secret,
                    AuthMethod::ClientSecretBasic,
                    clients,
                )
                .await;
        }
        if let Some(secret) = secret_post {
            let client_id = params
                .get("client_id")
                .ok_or_else(|| OAuthError::invalid_request("client_secret needs client_id"))?;
            let secret = ClientSecret::from_presented(secret);
            return self
                .client_secret(client_id, &secret, AuthMethod::ClientSecretPost, clients)
                .await;
        }
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
                        self.self_signed_tls_client_auth(client, peer).await
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
                    (m, _) if m.uses_secret() && !self.allow_client_secrets => {
                        Err(secrets_disabled(client_id))
                    }
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
        let meta = client.metadata();
        let keys: Arc<StaticKeys> = match (client.inline_keys(), &meta.jwks_uri) {
            (Some(keys), _) => Arc::clone(keys),
            (None, Some(uri)) => {
                let cache = self.jwks_uris.as_ref().ok_or_else(|| {
                    denied("client keys by jwks_uri are not enabled on this server")
                })?;
                cache
                    .keys_for(client.id(), uri, token)
                    .await
                    .map_err(|e| denied(format!("client keys unavailable: {e}")))?
            }
            (None, None) => return Err(denied("the client has no registered keys")),
        };
        let (guard, pending) = self.replay.begin();
        let validator = client_assertion::Validator::new(self.clock.clone(), self.issuer.as_str())
            .replay_guard(guard);
        validator
            .validate_for_client(token, client.id(), keys.as_ref())
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
            // Remembered for as long as the validator accepts the SVID: `exp` plus the
            // leeway.
            let exp = svid
                .claims
                .exp
                .saturating_add(aims_jose::time::DEFAULT_LEEWAY);
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

impl ClientAuthenticator {
    /// Whether this use of `client_id`'s legacy secret is to be logged: the first, then
    /// one per [`SECRET_WARNING_INTERVAL`].
    fn should_warn_secret(&self, client_id: &str) -> bool {
        let now = self.clock.now();
        let mut warned = self
            .secret_warned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match warned.get_mut(client_id) {
            Some(last) if now.saturating_sub(*last) < SECRET_WARNING_INTERVAL => false,
            Some(last) => {
                *last = now;
                true
            }
            None => {
                // Bounded by the registered clients (only a correct secret gets here).
                warned.insert(client_id.to_owned(), now);
                true
            }
        }
    }

    /// `client_secret_basic` / `client_secret_post`: the hash of the presented secret
    /// equals the stored one (constant-time comparison); the method used is the one
    /// registered.
    async fn client_secret<D: ClientDirectory>(
        &self,
        client_id: &str,
        secret: &ClientSecret,
        used: AuthMethod,
        clients: &D,
    ) -> Result<AuthenticatedClient, OAuthError> {
        if !self.allow_client_secrets {
            return Err(denied(
                "client secrets are disabled on this server: use private_key_jwt or an SVID",
            ));
        }
        let failed = || denied("client authentication failed");
        let Some(client) = clients.get(client_id).await? else {
            // Spend the same work as for a known client.
            let _ = verify_secret(secret, "sha256:");
            return Err(failed());
        };
        let stored = client.metadata().client_secret_hash.as_deref();
        let ok = stored.is_some_and(|h| verify_secret(secret, h));
        if !ok || client.auth_method() != used {
            tracing::warn!(
                target: "aims::oauth",
                client_id,
                method = used.as_str(),
                "legacy client secret authentication failed"
            );
            return Err(if ok {
                denied(format!(
                    "client {client_id} must authenticate with {}",
                    client.auth_method().as_str()
                ))
            } else {
                failed()
            });
        }
        if self.should_warn_secret(client_id) {
            tracing::warn!(
                target: "aims::oauth",
                client_id,
                method = used.as_str(),
                legacy_secret = true,
                "legacy client secret used (logged at most every 10 minutes per client): move this client to private_key_jwt or an SVID"
            );
        }
        Ok(AuthenticatedClient {
            client,
            method: used,
            spiffe_id: None,
            cert_thumbprint: None,
        })
    }
}

fn secrets_disabled(client_id: &str) -> OAuthError {
    denied(format!(
        "client {client_id} is a legacy client-secret client, and client secrets are disabled on this server"
    ))
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

    /// RFC 8705 §2.2: no chain validation; the presented leaf must be one of the
    /// certificates the client registered (the first `x5c` entry of a key of its JWKS,
    /// inline or fetched from its `jwks_uri`).
    async fn self_signed_tls_client_auth(
        &self,
        client: Arc<Client>,
        peer: &TlsPeer,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let presented = aims_crypto::sha256(peer.leaf_der());
        let meta = client.metadata();
        let registered: Arc<[[u8; 32]]> = match (client.inline_certificates(), &meta.jwks_uri) {
            (Some(certificates), _) => Arc::clone(certificates),
            (None, Some(uri)) => {
                let cache = self.jwks_uris.as_ref().ok_or_else(|| {
                    denied("client certificates by jwks_uri are not enabled on this server")
                })?;
                cache
                    .certificates_for(client.id(), uri, &presented)
                    .await
                    .map_err(|e| denied(format!("client certificates unavailable: {e}")))?
            }
            (None, None) => return Err(denied("the client has no registered certificates")),
        };
        // Every registered certificate is compared, so the time taken does not say which
        // (or whether one) matched.
        let mut matched = false;
        for digest in registered.iter() {
            matched |= aims_crypto::ct_eq(digest, &presented);
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

    /// RFC 8705 §2.1: the chain verifies as an X509-SVID of the trust store (its one URI
    /// SAN is its SPIFFE ID) or, when configured, against the operator's client CAs; one
    /// of its URI SANs is the registered one (each compared in constant time).
    fn tls_client_auth(
        &self,
        client: Arc<Client>,
        peer: &TlsPeer,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let (sans, spiffe_id) = match (self.verified_svid(peer), &self.client_cas) {
            (Ok(id), _) => (vec![id.as_str().to_owned()], Some(id)),
            (Err(_), Some(cas)) => {
                let sans = cas.verify(peer.chain(), self.clock.now()).map_err(|e| {
                    denied(format!(
                        "the client certificate is neither an X509-SVID of a trusted trust domain nor issued by a configured client CA: {e}"
                    ))
                })?;
                (sans, None)
            }
            (Err(e), None) => return Err(e),
        };
        let registered = client.metadata().tls_client_auth_san_uri.as_deref();
        let mut matched = false;
        if let Some(r) = registered {
            for san in &sans {
                matched |= aims_crypto::ct_eq(r.as_bytes(), san.as_bytes());
            }
        }
        if !matched {
            return Err(denied("the client certificate's URI SAN is not registered"));
        }
        Ok(AuthenticatedClient {
            spiffe_id,
            client,
            method: AuthMethod::TlsClientAuth,
            cert_thumbprint: Some(peer.x5t_s256()),
        })
    }
}

/// SHA-256 of each certificate a key set registers for `self_signed_tls_client_auth`.
pub(crate) fn certificate_digests(jwks: &aims_crypto::Jwks) -> Arc<[[u8; 32]]> {
    jwks.keys
        .iter()
        .filter_map(registered_certificate)
        .map(aims_crypto::sha256)
        .collect()
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashMap;

    use aims_core::ManualClock;

    use super::*;
    use crate::secret::BasicCredentials;
    use crate::{ErrorCode, Params};

    const ISSUER: &str = "https://as.example.test";

    struct Clients(HashMap<String, Arc<Client>>);

    impl ClientDirectory for Clients {
        async fn get(&self, id: &str) -> Result<Option<Arc<Client>>, OAuthError> {
            Ok(self.0.get(id).cloned())
        }
    }

    fn client(json: serde_json::Value) -> (String, Arc<Client>) {
        let c = Client::from_json(&json.to_string()).unwrap();
        (c.id().to_owned(), Arc::new(c))
    }

    fn secret_client(id: &str, method: &str, secret: &ClientSecret) -> (String, Arc<Client>) {
        client(serde_json::json!({
            "client_id": id,
            "token_endpoint_auth_method": method,
            "client_secret_hash": secret.hash(),
            "grant_types": ["client_credentials"],
        }))
    }

    struct Fixture {
        secret: ClientSecret,
        clients: Clients,
    }

    fn fixture() -> Fixture {
        let secret = ClientSecret::generate().unwrap();
        let clients = Clients(
            [
                secret_client("basic", "client_secret_basic", &secret),
                secret_client("post", "client_secret_post", &secret),
                client(serde_json::json!({
                    "client_id": "by-uri",
                    "token_endpoint_auth_method": "private_key_jwt",
                    "jwks_uri": "http://127.0.0.1:9/jwks",
                    "grant_types": ["client_credentials"],
                })),
            ]
            .into_iter()
            .collect(),
        );
        Fixture { secret, clients }
    }

    fn authn(allow: bool) -> ClientAuthenticator {
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(1_800_000_000));
        ClientAuthenticator::new(
            Issuer::parse(ISSUER).unwrap(),
            clock,
            Arc::new(TrustStore::new()),
            ReplayCache::memory(100),
        )
        .allow_client_secrets(allow)
    }

    #[test]
    fn legacy_secret_warnings_are_rate_limited_per_client() {
        let clock = Arc::new(ManualClock::new(1_800_000_000));
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let a = ClientAuthenticator::new(
            Issuer::parse(ISSUER).unwrap(),
            dyn_clock,
            Arc::new(TrustStore::new()),
            ReplayCache::memory(100),
        );
        assert!(a.should_warn_secret("rs"));
        assert!(!a.should_warn_secret("rs"));
        assert!(a.should_warn_secret("other"));
        clock.advance(SECRET_WARNING_INTERVAL - 1);
        assert!(!a.should_warn_secret("rs"));
        clock.advance(1);
        assert!(a.should_warn_secret("rs"));
        assert!(!a.should_warn_secret("rs"));
    }

    fn basic(id: &str, secret: &str) -> BasicCredentials {
        BasicCredentials {
            client_id: id.to_owned(),
            secret: ClientSecret::from_presented(secret),
        }
    }

    async fn run(
        a: &ClientAuthenticator,
        f: &Fixture,
        pairs: &[(&str, &str)],
        basic: Option<&BasicCredentials>,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let params = Params::from_pairs(pairs.iter().copied());
        let req = TokenRequest {
            params: &params,
            tls: None,
            basic_auth: basic,
            dpop: None,
            attestation: None,
        };
        a.authenticate(&req, &f.clients).await
    }

    #[tokio::test]
    async fn basic_and_post_secrets_authenticate_when_enabled() {
        let f = fixture();
        let a = authn(true);
        let b = basic("basic", f.secret.expose());
        let ok = run(&a, &f, &[], Some(&b)).await.unwrap();
        assert_eq!(ok.method, AuthMethod::ClientSecretBasic);
        assert!(ok.client.uses_legacy_secret());
        let ok = run(&a, &f, &[("client_id", "basic")], Some(&b))
            .await
            .unwrap();
        assert_eq!(ok.client.id(), "basic");
        let ok = run(
            &a,
            &f,
            &[("client_id", "post"), ("client_secret", f.secret.expose())],
            None,
        )
        .await
        .unwrap();
        assert_eq!(ok.method, AuthMethod::ClientSecretPost);
    }

    #[tokio::test]
    async fn secrets_are_refused_when_disabled() {
        let f = fixture();
        let a = authn(false);
        let b = basic("basic", f.secret.expose());
        let e = run(&a, &f, &[], Some(&b)).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidClient);
        let e = run(
            &a,
            &f,
            &[("client_id", "post"), ("client_secret", f.secret.expose())],
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidClient);
        // A legacy client naming itself without a secret gets the clear reason.
        let e = run(&a, &f, &[("client_id", "basic")], None)
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidClient);
        assert!(e.description.contains("disabled"), "{}", e.description);
    }

    #[tokio::test]
    async fn a_wrong_secret_is_invalid_client() {
        let f = fixture();
        let a = authn(true);
        let wrong = format!("{}A", f.secret.expose());
        let e = run(&a, &f, &[], Some(&basic("basic", &wrong)))
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidClient);
        assert!(!e.description.contains(&wrong));
        let e = run(
            &a,
            &f,
            &[("client_id", "post"), ("client_secret", &wrong)],
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidClient);
    }

    #[tokio::test]
    async fn an_unknown_secret_client_is_invalid_client() {
        let f = fixture();
        let e = run(
            &authn(true),
            &f,
            &[],
            Some(&basic("nobody", f.secret.expose())),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidClient);
    }

    #[tokio::test]
    async fn the_registered_secret_method_is_enforced() {
        let f = fixture();
        let a = authn(true);
        // A client_secret_basic client posting its secret in the body.
        let e = run(
            &a,
            &f,
            &[("client_id", "basic"), ("client_secret", f.secret.expose())],
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidClient);
        let e = run(&a, &f, &[], Some(&basic("post", f.secret.expose())))
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidClient);
    }

    #[tokio::test]
    async fn two_methods_are_invalid_request() {
        let f = fixture();
        let a = authn(true);
        let b = basic("basic", f.secret.expose());
        type Case<'a> = (Vec<(&'a str, &'a str)>, Option<&'a BasicCredentials>);
        let cases: Vec<Case<'_>> = vec![
            (vec![("client_secret", f.secret.expose())], Some(&b)),
            (
                vec![
                    ("client_id", "post"),
                    ("client_secret", f.secret.expose()),
                    ("client_assertion_type", client_assertion::ASSERTION_TYPE),
                    ("client_assertion", "a.b.c"),
                ],
                None,
            ),
            (
                vec![
                    ("client_assertion_type", client_assertion::ASSERTION_TYPE),
                    ("client_assertion", "a.b.c"),
                ],
                Some(&b),
            ),
        ];
        for (pairs, basic) in cases {
            let e = run(&a, &f, &pairs, basic).await.unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidRequest, "{pairs:?}");
        }
    }

    #[tokio::test]
    async fn basic_with_another_client_id_is_invalid_request() {
        let f = fixture();
        let b = basic("basic", f.secret.expose());
        let e = run(&authn(true), &f, &[("client_id", "post")], Some(&b))
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
    }

    #[tokio::test]
    async fn client_secret_without_client_id_is_invalid_request() {
        let f = fixture();
        let e = run(
            &authn(true),
            &f,
            &[("client_secret", f.secret.expose())],
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
    }

    fn assertion_for(client_id: &str) -> String {
        let key = aims_crypto::SigningKey::generate(aims_crypto::Algorithm::ES256).unwrap();
        let claims =
            client_assertion::ClientAssertionClaims::new(client_id, ISSUER, 1_800_000_000, 60)
                .unwrap();
        client_assertion::create(&claims, &key).unwrap()
    }

    #[tokio::test]
    async fn a_jwks_uri_client_without_a_cache_is_invalid_client() {
        let f = fixture();
        let token = assertion_for("by-uri");
        let e = run(
            &authn(false),
            &f,
            &[
                ("client_assertion_type", client_assertion::ASSERTION_TYPE),
                ("client_assertion", &token),
            ],
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidClient);
    }

    #[tokio::test]
    async fn an_unreachable_jwks_uri_is_invalid_client() {
        let f = fixture();
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(1_800_000_000));
        let cache = JwksUriCache::new(crate::jwks_uri::test_http_client(), clock, true);
        let token = assertion_for("by-uri");
        let e = run(
            &authn(false).jwks_uri_cache(cache),
            &f,
            &[
                ("client_assertion_type", client_assertion::ASSERTION_TYPE),
                ("client_assertion", &token),
            ],
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidClient);
        assert!(e.description.contains("jwks_uri"), "{}", e.description);
    }

    #[tokio::test]
    async fn an_http_jwks_uri_is_refused_unless_allowed() {
        let f = fixture();
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(1_800_000_000));
        let cache = JwksUriCache::new(crate::jwks_uri::test_http_client(), clock, false);
        let token = assertion_for("by-uri");
        let e = run(
            &authn(false).jwks_uri_cache(cache),
            &f,
            &[
                ("client_assertion_type", client_assertion::ASSERTION_TYPE),
                ("client_assertion", &token),
            ],
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidClient);
        assert!(e.description.contains("https"), "{}", e.description);
    }

    /// A JWT-SVID assertion with a `jti` is single-use for as long as the validator
    /// accepts it: past `exp`, inside the leeway, a second presentation is a replay.
    #[tokio::test]
    async fn a_jwt_svid_jti_is_remembered_through_the_leeway() {
        const T0: i64 = 1_800_000_000;
        let key = aims_crypto::SigningKey::generate(aims_crypto::Algorithm::ES256).unwrap();
        let td = aims_core::TrustDomain::new("example.org").unwrap();
        let mut bundle = aims_pki::SpiffeBundle::new(td);
        bundle
            .add_jwt_authority(aims_crypto::Signer::public_jwk(&key).clone())
            .unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let a = ClientAuthenticator::new(
            Issuer::parse(ISSUER).unwrap(),
            dyn_clock,
            Arc::new(TrustStore::from_bundles([bundle])),
            ReplayCache::memory(100),
        );
        let f = Fixture {
            secret: ClientSecret::generate().unwrap(),
            clients: Clients(
                [client(serde_json::json!({
                    "client_id": "agent-s",
                    "token_endpoint_auth_method": "spiffe_jwt",
                    "spiffe_id": "spiffe://example.org/agent/a",
                    "grant_types": ["client_credentials"],
                }))]
                .into_iter()
                .collect(),
            ),
        };
        let claims = jwt_svid::JwtSvidClaims {
            sub: SpiffeId::parse("spiffe://example.org/agent/a").unwrap(),
            aud: aims_jose::Audience::One(ISSUER.into()),
            exp: T0 + 60,
            iat: Some(T0),
            nbf: None,
            jti: Some("svid-1".into()),
            extra: serde_json::Map::new(),
        };
        let svid = jwt_svid::create(&claims, &key).unwrap();
        let pairs = [
            ("client_id", "agent-s"),
            ("client_assertion_type", SPIFFE_ASSERTION_TYPE),
            ("client_assertion", svid.as_str()),
        ];
        // Expired by 10 s: still inside the 30 s leeway.
        clock.set(T0 + 70);
        let ok = run(&a, &f, &pairs, None).await.unwrap();
        assert_eq!(ok.method, AuthMethod::SpiffeJwt);
        let e = run(&a, &f, &pairs, None).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidClient);
        assert!(e.description.contains("jti"), "{}", e.description);
    }
}
