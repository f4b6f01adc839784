//! Client authentication at the token, PAR, introspection and revocation endpoints.
//!
//! | Presented | Method | Checks |
//! |---|---|---|
//! | `client_assertion_type=…:jwt-bearer` + `client_assertion` | `private_key_jwt` (RFC 7523 §2.2, rfc7523bis) | `aims_jose::client_assertion` against the client's JWKS; `aud` = issuer alone; `jti` once (shared store across nodes) |
//! | `client_assertion_type=…:jwt-spiffe` + `client_assertion` | `spiffe_jwt` | JWT-SVID, `aud` = issuer alone, keys from the trust-domain bundle; `sub` matches the client's `spiffe_id` pattern; `jti`, when present, once |
//! | client certificate (verified SVID) + `client_id` | `spiffe_x509` | the SVID's SPIFFE ID matches the pattern and `client_id` is registered for it |
//! | client certificate + `client_id` | `tls_client_auth` | the certificate's URI SAN equals `tls_client_auth_san_uri` (chain verified by the SPIFFE verifier) |
//! | `OAuth-Client-Attestation` (WIT-SVID) + `OAuth-Client-Attestation-PoP` + `client_id` | `spiffe_wit` | WIT-SVID from the trust-domain bundle; PoP signed by its `cnf` key, `iss` = the WIT's `sub`, `aud` = issuer, `jti` once; `sub` matches the client's `spiffe_id` pattern |
//! | `client_id` only | `none` | public client (PKCE enforced by the grant) |
//!
//! RFC 6749 §2.3: a request using more than one method is refused (`invalid_request`).
//! Every failure is `invalid_client` (401) with a reason that names no secret.

use std::sync::Arc;

use aims_core::{Clock, SpiffeId};
use aims_guard::ReplayCache;
use aims_guard::keys::{KeyUse, TrustStoreKeys};
use aims_jose::client_assertion::{self, ASSERTION_TYPE, SPIFFE_ASSERTION_TYPE};
use aims_jose::{JoseError, StaticKeys, attestation, jwt_svid, wit};
use aims_pki::TrustStore;

use crate::client::{AuthMethod, Client};
use crate::token::{ClientAttestation, TokenRequest};
use crate::{Issuer, OAuthError};

/// What the transport knows about the TLS client certificate.
#[derive(Debug, Clone)]
pub struct TlsPeer {
    /// The leaf certificate, DER.
    pub leaf_der: Vec<u8>,
    /// Its SPIFFE ID, when the chain was verified as an X509-SVID of a trusted trust
    /// domain.
    pub spiffe_id: Option<SpiffeId>,
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
                    (AuthMethod::SpiffeX509, Some(peer)) => spiffe_x509(client, peer),
                    (AuthMethod::TlsClientAuth, Some(peer)) => tls_client_auth(client, peer),
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

fn spiffe_x509(client: Arc<Client>, peer: &TlsPeer) -> Result<AuthenticatedClient, OAuthError> {
    let id = peer
        .spiffe_id
        .clone()
        .ok_or_else(|| denied("the client certificate is not a verified X509-SVID"))?;
    check_pattern(&client, &id)?;
    Ok(AuthenticatedClient {
        client,
        method: AuthMethod::SpiffeX509,
        spiffe_id: Some(id),
        cert_thumbprint: Some(aims_crypto::sha256_b64url(&peer.leaf_der)),
    })
}

fn tls_client_auth(client: Arc<Client>, peer: &TlsPeer) -> Result<AuthenticatedClient, OAuthError> {
    // The chain was verified by the SPIFFE verifier: the URI SAN is its SPIFFE ID.
    let san = peer
        .spiffe_id
        .as_ref()
        .ok_or_else(|| denied("the client certificate was not verified"))?;
    if client.metadata().tls_client_auth_san_uri.as_deref() != Some(san.as_str()) {
        return Err(denied("the client certificate's URI SAN is not registered"));
    }
    Ok(AuthenticatedClient {
        spiffe_id: Some(san.clone()),
        client,
        method: AuthMethod::TlsClientAuth,
        cert_thumbprint: Some(aims_crypto::sha256_b64url(&peer.leaf_der)),
    })
}

/// A string claim of a JWT, unverified (only to select which keys must verify it).
pub(crate) fn unverified_claim(token: &str, claim: &str) -> Option<String> {
    aims_jose::Jws::unverified_claims(token)?
        .get(claim)?
        .as_str()
        .map(str::to_owned)
}
