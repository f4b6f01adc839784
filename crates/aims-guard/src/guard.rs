//! The authentication logic: which mechanism a request uses, and its validation with the
//! aims-jose / aims-httpsig profiles. No axum types here; [`crate::layer`] is the thin
//! transport adapter.

use std::collections::BTreeSet;
use std::sync::Arc;

use aims_core::{SpiffeId, WorkloadId};
use aims_httpsig::wimse::{RequestVerifier, WIT_HEADER};
use aims_httpsig::{RequestMessage, SIGNATURE, SIGNATURE_INPUT};
use aims_jose::wit::{self, ValidatedWit};
use aims_jose::{JoseError, KeyResolver, access_token, dpop, jwt_svid, wpt};
use http::HeaderMap;
use http::request::Parts;

use crate::GuardError;
use crate::agent::{AgentId, AuthenticatedAgent, BoundKey, Mechanism};
use crate::config::{ConfigError, GuardConfig};
use crate::keys::{KeyUse, TrustStoreKeys};
use crate::nonce::NonceIssuer;
use crate::replay::{PendingReplay, ReplayFailure};
use crate::token::{AccessTokenInfo, TokenScheme};

/// The `Workload-Proof-Token` header.
pub const WPT_HEADER: &str = "workload-proof-token";
/// The `Txn-Token` header.
pub const TXN_TOKEN_HEADER: &str = "txn-token";
/// The `DPoP` proof header.
pub const DPOP_HEADER: &str = "dpop";
/// The `DPoP-Nonce` response header.
pub const DPOP_NONCE_HEADER: &str = "dpop-nonce";

/// The verified identity of an mTLS peer, put into the request extensions by
/// [`crate::tls::serve`]. Only the TLS listener creates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    pub(crate) spiffe_id: SpiffeId,
    pub(crate) spki_sha256: String,
    pub(crate) cert_sha256: String,
    pub(crate) not_after: i64,
}

impl PeerIdentity {
    /// The peer's SPIFFE ID.
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.spiffe_id
    }

    /// base64url SHA-256 of the leaf's SubjectPublicKeyInfo.
    pub fn spki_sha256(&self) -> &str {
        &self.spki_sha256
    }

    /// base64url SHA-256 of the leaf certificate's DER: what a certificate-bound access
    /// token's `cnf.x5t#S256` must equal (RFC 8705 section 3.1).
    pub fn certificate_sha256(&self) -> &str {
        &self.cert_sha256
    }
}

/// What a successful authentication produced besides the agent.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) agent: AuthenticatedAgent,
    /// The verified request nonce when the caller asked for a signed response.
    pub(crate) sign_response_nonce: Option<String>,
}

/// The guard: configuration plus the validators built from it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Guard {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) cfg: GuardConfig,
    wit: wit::Validator,
    wit_keys: Arc<TrustStoreKeys>,
    jwt_keys: Arc<TrustStoreKeys>,
    pub(crate) nonces: Arc<NonceIssuer>,
}

impl Guard {
    /// A guard for `cfg`.
    pub fn new(cfg: GuardConfig) -> Result<Self, ConfigError> {
        let mut wit = wit::Validator::new(cfg.wit_profile, cfg.clock.clone()).leeway(cfg.leeway);
        for td in &cfg.trust_domains {
            wit = wit.trust_domain(td.as_str());
        }
        let nonces = NonceIssuer::new(cfg.clock.clone(), cfg.nonce_interval)
            .map_err(|_| ConfigError::Random)?;
        Ok(Self {
            inner: Arc::new(Inner {
                wit,
                wit_keys: Arc::new(TrustStoreKeys::new(cfg.trust.clone(), KeyUse::Wit)),
                jwt_keys: Arc::new(TrustStoreKeys::new(cfg.trust.clone(), KeyUse::Jwt)),
                nonces: Arc::new(nonces),
                cfg,
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &GuardConfig {
        &self.inner.cfg
    }

    /// The current DPoP nonce (for a `DPoP-Nonce` header).
    pub fn dpop_nonce(&self) -> String {
        self.inner.nonces.current()
    }
}

/// Reads a header that must appear at most once.
fn single<'a>(h: &'a HeaderMap, name: &'static str) -> Result<Option<&'a str>, GuardError> {
    let mut values = h.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(GuardError::DuplicateHeader(name));
    }
    first
        .to_str()
        .map(|s| Some(s.trim()))
        .map_err(|_| GuardError::MalformedHeader(name))
}

/// `Authorization: <scheme> <token>`, scheme lower-cased.
fn authorization(h: &HeaderMap) -> Result<Option<(String, &str)>, GuardError> {
    let Some(v) = single(h, "authorization")? else {
        return Ok(None);
    };
    let (scheme, token) = v
        .split_once(' ')
        .ok_or(GuardError::MalformedHeader("authorization"))?;
    let token = token.trim();
    if token.is_empty() {
        return Err(GuardError::MalformedHeader("authorization"));
    }
    Ok(Some((scheme.to_ascii_lowercase(), token)))
}

/// The mechanisms whose credentials the request carries, in precedence order.
pub(crate) fn presented(parts: &Parts) -> Vec<Mechanism> {
    let h = &parts.headers;
    let mut out = Vec::new();
    let has_wit = h.contains_key(WIT_HEADER);
    if h.contains_key(WPT_HEADER) {
        out.push(Mechanism::WitWpt);
    } else if has_wit || h.contains_key(SIGNATURE_INPUT) || h.contains_key(SIGNATURE) {
        out.push(Mechanism::WitHttpSig);
    }
    let auth = h.get("authorization");
    let scheme = auth
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("dpop") => out.push(Mechanism::Dpop),
        Some("bearer") => out.push(bearer_kind(h)),
        // A field that is not even visible ASCII: the bearer path refuses it as
        // malformed (RFC 6750 §3.1 `invalid_request`) rather than as no credentials.
        None if auth.is_some_and(|v| v.to_str().is_err()) => out.push(Mechanism::Bearer),
        _ if h.contains_key(DPOP_HEADER) => out.push(Mechanism::Dpop),
        _ => {}
    }
    if parts.extensions.get::<PeerIdentity>().is_some() {
        out.push(Mechanism::Mtls);
    }
    out
}

/// A bearer token is a JWT-SVID when it is a JWS whose `typ` is not `at+jwt` (read
/// unverified: it only selects the validator, which checks `typ` itself); an `at+jwt`
/// or opaque token is an OAuth access token.
fn bearer_kind(h: &HeaderMap) -> Mechanism {
    let token = h
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .map(|(_, t)| t.trim());
    match token.and_then(|t| aims_jose::Jws::decode(t).ok()) {
        Some(jws) if !jws.header.typ_is(access_token::TYP) => Mechanism::JwtSvid,
        _ => Mechanism::Bearer,
    }
}

/// The request's URI as the client sent it: under a nested axum router, the route's own
/// URI lacks the prefix (`/x` for `/admin/x`), while the client signed (`@path`,
/// `@request-target`, `wimse-aud`, WPT `aud`, DPoP `htu`) the whole path, and
/// authorization decides on it ([`crate::authz::request_path`]). Every proof is checked
/// against this URI, so that a proof made for `/x` is not accepted at `/admin/x`.
/// `OriginalUri` is set by the router only; a client cannot supply it.
pub(crate) fn request_uri(parts: &Parts) -> &http::Uri {
    original_uri(&parts.extensions, &parts.uri)
}

/// [`request_uri`] from a request's extensions and its (route's) URI.
pub(crate) fn original_uri<'a>(
    extensions: &'a http::Extensions,
    uri: &'a http::Uri,
) -> &'a http::Uri {
    extensions
        .get::<axum::extract::OriginalUri>()
        .map_or(uri, |u| &u.0)
}

/// Whether the request's body is needed (an HTTP signature may cover it).
pub(crate) fn needs_body(parts: &Parts) -> bool {
    let h = &parts.headers;
    !h.contains_key(WPT_HEADER) && (h.contains_key(SIGNATURE_INPUT) || h.contains_key(SIGNATURE))
}

fn replay_err(f: ReplayFailure, replayed: GuardError) -> GuardError {
    match f {
        ReplayFailure::Replayed => replayed,
        ReplayFailure::Unavailable => GuardError::ReplayUnavailable,
    }
}

/// A request's credentials as far as [`Guard::prepare`] checks them before the body is
/// read; [`Guard::authenticate`] finishes.
pub(crate) enum Prepared {
    /// No credentials at all.
    Nothing,
    /// A WIMSE HTTP signature whose WIT is valid: only now may the body (which the
    /// signature may cover) be read.
    Signed(Box<SignedRequest>),
    /// Another mechanism: the body is not needed.
    Other(Mechanism),
}

/// A WIMSE-signed request whose WIT is valid, and the verifier to finish with.
pub(crate) struct SignedRequest {
    verifier: RequestVerifier,
    pending: PendingReplay,
    wit: ValidatedWit,
}

impl Guard {
    /// Chooses the mechanism among `accepted` (already narrowed to the enabled ones)
    /// and, for a WIMSE HTTP signature, validates the WIT from its header. The layer
    /// calls it before it reads the body: a caller without a valid WIT must not make
    /// the guard buffer one (up to the body limit, at the caller's pace).
    pub(crate) fn prepare(
        &self,
        parts: &Parts,
        accepted: &BTreeSet<Mechanism>,
    ) -> Result<Prepared, GuardError> {
        let presented = presented(parts);
        let Some(first) = presented.first().copied() else {
            return Ok(Prepared::Nothing);
        };
        let Some(m) = presented.iter().copied().find(|m| accepted.contains(m)) else {
            return Err(GuardError::MechanismNotAccepted(first));
        };
        if m != Mechanism::WitHttpSig {
            return Ok(Prepared::Other(m));
        }
        let i = &self.inner;
        let (guard, pending) = i.cfg.replay.begin();
        let keys: Arc<dyn KeyResolver> = i.wit_keys.clone();
        let mut verifier = RequestVerifier::new(i.wit.clone(), keys, guard, i.cfg.clock.clone())
            .leeway(i.cfg.leeway);
        for a in &i.cfg.authorities {
            verifier = verifier.origin(a);
        }
        // The WIT first: nothing else is looked at before it is valid.
        let wit = verifier
            .validate_wit(&parts.headers)
            .map_err(GuardError::HttpSig)?;
        Ok(Prepared::Signed(Box::new(SignedRequest {
            verifier,
            pending,
            wit,
        })))
    }

    /// Authenticates a request [`Guard::prepare`] prepared; `body` is the body read
    /// for a [`Prepared::Signed`] request that carries a signature ([`needs_body`]),
    /// else empty. `Ok(None)`: no credentials at all.
    pub(crate) async fn authenticate(
        &self,
        parts: &Parts,
        prepared: Prepared,
        body: &[u8],
    ) -> Result<Option<Outcome>, GuardError> {
        let m = match prepared {
            Prepared::Nothing => return Ok(None),
            Prepared::Signed(signed) => {
                return self.wit_httpsig(parts, *signed, body).await.map(Some);
            }
            Prepared::Other(m) => m,
        };
        let sign_response_nonce = None;
        let agent = match m {
            Mechanism::WitWpt => self.wit_wpt(parts).await?,
            // Only as `Prepared::Signed`, whose WIT was checked before the body was read.
            Mechanism::WitHttpSig => return Err(GuardError::Internal),
            Mechanism::Dpop => self.dpop(parts).await?,
            Mechanism::JwtSvid => self.jwt_svid(parts)?,
            Mechanism::Bearer => self.bearer(parts).await?,
            Mechanism::Mtls => self.mtls(parts)?,
        };
        Ok(Some(Outcome {
            agent,
            sign_response_nonce,
        }))
    }

    fn wit_agent(wit: &ValidatedWit, mechanism: Mechanism) -> AuthenticatedAgent {
        AuthenticatedAgent {
            id: AgentId::Workload(wit.subject().clone()),
            mechanism,
            expires_at: wit.exp(),
            bound_key: Some(BoundKey::JwkThumbprint(wit.confirmation_jkt().to_owned())),
            delegated_subject: None,
            access_token: None,
        }
    }

    async fn wit_wpt(&self, parts: &Parts) -> Result<AuthenticatedAgent, GuardError> {
        let i = &self.inner;
        let h = &parts.headers;
        let wpt_token = single(h, WPT_HEADER)?.ok_or(GuardError::MalformedHeader(WPT_HEADER))?;
        let wit_token = single(h, WIT_HEADER)?.ok_or(GuardError::MissingWit)?;
        // The WIT first: nothing else is looked at before it is valid.
        let wit = i
            .wit
            .validate(wit_token, i.wit_keys.as_ref())
            .map_err(GuardError::Wit)?;
        let access = authorization(h)?
            .filter(|(s, _)| s == "bearer" || s == "dpop")
            .map(|(_, t)| t);
        let txn = single(h, TXN_TOKEN_HEADER)?;
        let mut others: Vec<(&str, &str)> = Vec::new();
        for name in &i.cfg.other_token_headers {
            let mut values = h.get_all(name).iter();
            if let Some(v) = values.next() {
                if values.next().is_some() {
                    return Err(GuardError::Wpt(JoseError::InvalidClaim {
                        claim: "oth",
                        reason: "repeated header fields are not supported",
                    }));
                }
                let v = v
                    .to_str()
                    .map_err(|_| GuardError::MalformedHeader("other token"))?;
                others.push((name.as_str(), v));
            }
        }
        let mut request = wpt::WptRequest::new(wit_token, "").with_other_tokens(&others);
        if let Some(a) = access {
            request = request.with_access_token(a);
        }
        if let Some(t) = txn {
            request = request.with_txn_token(t);
        }
        let (guard, pending) = i.cfg.replay.begin();
        let validator = wpt::Validator::new(&i.cfg.authorities, i.cfg.clock.clone(), guard)
            .leeway(i.cfg.leeway);
        let authority = pick_authority(&i.cfg.authorities, wpt_token, "aud");
        let audience = format!("{authority}{}", request_uri(parts).path());
        let result = validator.validate(
            wpt_token,
            &wit,
            &wpt::WptRequest {
                audience: &audience,
                ..request
            },
        );
        match result {
            Ok(_) => {}
            Err(JoseError::ReplayCacheFull) => return Err(GuardError::ReplayUnavailable),
            Err(e) => return Err(GuardError::Wpt(e)),
        }
        pending
            .commit(i.cfg.clock.now())
            .await
            .map_err(|f| replay_err(f, GuardError::Wpt(JoseError::Replayed)))?;
        Ok(Self::wit_agent(&wit, Mechanism::WitWpt))
    }

    async fn wit_httpsig(
        &self,
        parts: &Parts,
        signed: SignedRequest,
        body: &[u8],
    ) -> Result<Outcome, GuardError> {
        let i = &self.inner;
        let SignedRequest {
            verifier,
            pending,
            wit,
        } = signed;
        let uri = request_uri(parts);
        let mut message = RequestMessage::new(&parts.method, uri, &parts.headers);
        if let Some(scheme) = request_scheme(&i.cfg.authorities, uri, &parts.headers) {
            message = message.with_scheme(scheme);
        }
        let sig = verifier
            .verify_signature_with_key(
                message,
                body,
                wit.confirmation_key(),
                wit.confirmation_alg(),
                wit.confirmation_jkt(),
            )
            .map_err(GuardError::HttpSig)?;
        pending.commit(i.cfg.clock.now()).await.map_err(|f| {
            replay_err(f, GuardError::HttpSig(aims_httpsig::HttpSigError::Replayed))
        })?;
        let sign_response_nonce = sig.sign_response().then(|| sig.nonce().to_owned());
        if sign_response_nonce.is_some()
            && i.cfg
                .response_signing
                .as_ref()
                .and_then(|s| s.current())
                .is_none()
        {
            return Err(GuardError::ResponseSigningUnavailable);
        }
        Ok(Outcome {
            agent: Self::wit_agent(&wit, Mechanism::WitHttpSig),
            sign_response_nonce,
        })
    }

    /// The DPoP proof validator with the guard's nonce policy; `shared` is one more nonce
    /// to accept (another replica's, found in the shared store).
    fn dpop_validator(
        &self,
        replay: Arc<dyn aims_jose::replay::ReplayGuard>,
        shared: Option<String>,
    ) -> dpop::Validator {
        let nonces = self.inner.nonces.clone();
        dpop::Validator::new(self.inner.cfg.clock.clone(), replay)
            .leeway(self.inner.cfg.leeway)
            .require_nonce(move |n| nonces.accepts(n) || shared.as_deref() == Some(n))
    }

    /// What the guard's nonces are recorded under in a shared store: its first origin.
    fn nonce_context(&self) -> &str {
        self.inner
            .cfg
            .authorities
            .first()
            .map_or("", String::as_str)
    }

    /// The nonce to send in `DPoP-Nonce`, first recorded in the shared store when the
    /// replay cache is one, so that the other replicas accept it too. A failure to record
    /// it is logged: the nonce still works here.
    pub(crate) async fn dpop_nonce_to_send(&self) -> String {
        if let Some(store) = self.inner.cfg.replay.shared_store()
            && let Err(e) = self.inner.nonces.publish(store, self.nonce_context()).await
        {
            tracing::warn!(error = %e, "could not record the DPoP nonce in the shared store; other replicas refuse it until a retry succeeds");
        }
        self.inner.nonces.current()
    }

    async fn dpop(&self, parts: &Parts) -> Result<AuthenticatedAgent, GuardError> {
        let i = &self.inner;
        let h = &parts.headers;
        let issuer = i.cfg.access_tokens.as_ref().ok_or(GuardError::Internal)?;
        let token = match authorization(h)? {
            Some((s, t)) if s == "dpop" => t,
            _ => {
                return Err(GuardError::AccessToken(JoseError::Malformed(
                    "expected `Authorization: DPoP <token>`",
                )));
            }
        };
        let mut proofs = h.get_all(DPOP_HEADER).iter();
        let proof = match (proofs.next(), proofs.next()) {
            (Some(p), None) => p.to_str().map_err(|_| {
                GuardError::DpopProof(JoseError::Malformed("DPoP header is not ASCII"))
            })?,
            (None, _) => {
                return Err(GuardError::DpopProof(JoseError::Malformed(
                    "missing DPoP header",
                )));
            }
            (Some(_), Some(_)) => {
                return Err(GuardError::DpopProof(JoseError::Malformed(
                    "more than one DPoP header",
                )));
            }
        };
        let authority = pick_authority(&i.cfg.authorities, proof, "htu");
        let uri = format!("{authority}{}", request_uri(parts).path());
        let request = dpop::DpopRequest::new(parts.method.as_str(), &uri).with_access_token(token);
        // The proof's `jti` takes a replay slot only once the token it comes with is
        // valid and bound to the proof's key (below): a proof for a made-up token, made
        // with any key, must not use up the cache.
        let (guard, mut pending) = i.cfg.replay.begin_deferred();
        let mut result = self.dpop_validator(guard, None).validate(proof, &request);
        // Not this replica's nonce: maybe another's (nothing was recorded yet).
        if let (Err(JoseError::BindingMismatch("nonce")), Some(store)) =
            (&result, i.cfg.replay.shared_store())
        {
            let shared = i
                .nonces
                .shared(store, self.nonce_context(), proof)
                .await
                .map_err(|_| GuardError::ReplayUnavailable)?;
            if shared.is_some() {
                let (guard, p) = i.cfg.replay.begin_deferred();
                pending = p;
                result = self.dpop_validator(guard, shared).validate(proof, &request);
            }
        }
        let proof = match result {
            Ok(p) => p,
            Err(JoseError::NonceRequired | JoseError::BindingMismatch("nonce")) => {
                return Err(GuardError::UseDpopNonce);
            }
            Err(JoseError::ReplayCacheFull) => return Err(GuardError::ReplayUnavailable),
            Err(e) => return Err(GuardError::DpopProof(e)),
        };
        let info = issuer
            .validate(token, TokenScheme::Dpop, &i.cfg.clock, i.cfg.leeway)
            .await?;
        let cnf = info.cnf.as_ref().ok_or(GuardError::DpopBinding)?;
        let jkt = cnf.jkt.as_deref().ok_or(GuardError::DpopBinding)?;
        proof
            .check_binding(jkt)
            .map_err(|_| GuardError::DpopBinding)?;
        // Bound to a certificate too: that binding holds as well.
        if let Some(x5t) = cnf.x5t_s256.as_deref() {
            check_certificate(parts, x5t)?;
        }
        pending
            .commit(i.cfg.clock.now())
            .await
            .map_err(|f| replay_err(f, GuardError::DpopProof(JoseError::Replayed)))?;
        let id = self.token_agent_id(&info.client_id, TokenScheme::Dpop)?;
        Ok(token_agent(
            id,
            Mechanism::Dpop,
            BoundKey::JwkThumbprint(proof.jkt().to_owned()),
            info,
        ))
    }

    /// `Authorization: Bearer <access token>`: refused when the token is DPoP-bound;
    /// a certificate-bound token needs the matching client certificate.
    async fn bearer(&self, parts: &Parts) -> Result<AuthenticatedAgent, GuardError> {
        let i = &self.inner;
        let issuer = i.cfg.access_tokens.as_ref().ok_or(GuardError::Internal)?;
        let token = match authorization(&parts.headers)? {
            Some((s, t)) if s == "bearer" => t,
            _ => return Err(GuardError::MalformedHeader("authorization")),
        };
        let info = issuer
            .validate(token, TokenScheme::Bearer, &i.cfg.clock, i.cfg.leeway)
            .await?;
        let bound_key = match info.cnf.as_ref() {
            None => None,
            Some(c) if c.jkt.is_some() => return Err(GuardError::BoundTokenAsBearer),
            Some(c) => {
                let x5t = c
                    .x5t_s256
                    .as_deref()
                    .ok_or(GuardError::BoundTokenAsBearer)?;
                check_certificate(parts, x5t)?;
                Some(BoundKey::CertificateSha256(x5t.to_owned()))
            }
        };
        let id = self.token_agent_id(&info.client_id, TokenScheme::Bearer)?;
        let mut agent = token_agent(
            id,
            Mechanism::Bearer,
            BoundKey::SpkiSha256(String::new()),
            info,
        );
        agent.bound_key = bound_key;
        Ok(agent)
    }

    fn jwt_svid(&self, parts: &Parts) -> Result<AuthenticatedAgent, GuardError> {
        let i = &self.inner;
        let token = match authorization(&parts.headers)? {
            Some((s, t)) if s == "bearer" => t,
            _ => return Err(GuardError::MalformedHeader("authorization")),
        };
        let audience = i
            .cfg
            .jwt_svid_audience
            .clone()
            .or_else(|| i.cfg.authorities.first().cloned())
            .ok_or(GuardError::Internal)?;
        let mut v = jwt_svid::Validator::new(i.cfg.clock.clone(), audience).leeway(i.cfg.leeway);
        for td in &i.cfg.trust_domains {
            v = v.trust_domain(td.clone());
        }
        let svid = v
            .validate(token, i.jwt_keys.as_ref())
            .map_err(GuardError::JwtSvid)?;
        Ok(AuthenticatedAgent {
            id: WorkloadId::from(svid.spiffe_id().clone()).into(),
            mechanism: Mechanism::JwtSvid,
            expires_at: svid.claims.exp,
            bound_key: None,
            delegated_subject: None,
            access_token: None,
        })
    }

    /// The agent an access token names by `client_id`: a workload identifier, or a
    /// plain client id when the configuration accepts those.
    /// Refused with the error of the token's scheme, so that the challenge names it.
    fn token_agent_id(&self, client_id: &str, scheme: TokenScheme) -> Result<AgentId, GuardError> {
        match WorkloadId::parse(client_id) {
            Ok(id) => Ok(AgentId::Workload(id)),
            Err(_) if self.inner.cfg.plain_client_ids && !client_id.is_empty() => {
                Ok(AgentId::Client(client_id.to_owned()))
            }
            Err(_) => Err(match scheme {
                TokenScheme::Dpop => GuardError::ClientIdNotWorkload,
                TokenScheme::Bearer => GuardError::BearerToken(JoseError::InvalidClaim {
                    claim: "client_id",
                    reason: "not a workload identifier",
                }),
            }),
        }
    }

    fn mtls(&self, parts: &Parts) -> Result<AuthenticatedAgent, GuardError> {
        let peer = parts
            .extensions
            .get::<PeerIdentity>()
            .ok_or(GuardError::MissingCredentials)?;
        let tds = &self.inner.cfg.trust_domains;
        if !tds.is_empty() && !tds.contains(peer.spiffe_id.trust_domain()) {
            return Err(GuardError::MtlsTrustDomain);
        }
        Ok(AuthenticatedAgent {
            id: WorkloadId::from(peer.spiffe_id.clone()).into(),
            mechanism: Mechanism::Mtls,
            expires_at: peer.not_after,
            bound_key: Some(BoundKey::SpkiSha256(peer.spki_sha256.clone())),
            delegated_subject: None,
            access_token: None,
        })
    }
}

/// RFC 8705 section 3: the client certificate of this connection hashes to `x5t`.
fn check_certificate(parts: &Parts, x5t: &str) -> Result<(), GuardError> {
    let peer = parts
        .extensions
        .get::<PeerIdentity>()
        .ok_or(GuardError::CertificateBinding)?;
    if aims_crypto::ct_eq(peer.cert_sha256.as_bytes(), x5t.as_bytes()) {
        Ok(())
    } else {
        Err(GuardError::CertificateBinding)
    }
}

fn token_agent(
    id: AgentId,
    mechanism: Mechanism,
    bound_key: BoundKey,
    info: AccessTokenInfo,
) -> AuthenticatedAgent {
    AuthenticatedAgent {
        id,
        mechanism,
        expires_at: info.expires_at.unwrap_or(i64::MAX),
        bound_key: Some(bound_key),
        delegated_subject: info.delegated_subject().map(str::to_owned),
        access_token: Some(Arc::new(info)),
    }
}

/// The scheme of an origin-form request (HTTP/1.1: the URI has none), for `@scheme`
/// and `@target-uri`: the scheme of the configured authority the request's `Host`
/// names, as clients address it (TLS may end at a proxy in front). `None` when the URI
/// carries its own scheme, or no authority matches (those components then fail).
pub(crate) fn request_scheme<'a>(
    authorities: &'a [String],
    uri: &http::Uri,
    headers: &HeaderMap,
) -> Option<&'a str> {
    if uri.scheme().is_some() {
        return None;
    }
    let mut hosts = headers.get_all(http::header::HOST).iter();
    let host = hosts.next()?.to_str().ok()?.to_ascii_lowercase();
    if hosts.next().is_some() {
        return None;
    }
    authorities.iter().find_map(|a| {
        let (scheme, authority) = a.split_once("://")?;
        let default = match scheme {
            "https" => ":443",
            _ => ":80",
        };
        let matches = host == authority || host.strip_suffix(default) == Some(authority);
        matches.then_some(scheme)
    })
}

/// The configured authority a proof names in `claim` (WPT `aud`, DPoP `htu`), so that its
/// one signature is verified against the right target. The claim is read unverified and
/// only *selects* among configured authorities (never adds one); the validator then
/// checks the claim exactly. When no configured authority matches, the first one is
/// used and validation fails with the profile's own mismatch error.
fn pick_authority<'a>(authorities: &'a [String], token: &str, claim: &str) -> &'a str {
    let named = aims_jose::Jws::unverified_claims(token)
        .and_then(|claims| match claims.get(claim)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Array(values) => {
                values.first().and_then(|v| v.as_str()).map(str::to_owned)
            }
            _ => None,
        })
        .and_then(|uri| aims_jose::dpop::normalize_http_uri(&uri));
    let matching = named.as_deref().and_then(|named| {
        authorities.iter().find(|a| {
            named
                .strip_prefix(a.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    });
    matching
        .or_else(|| authorities.first())
        .map(String::as_str)
        .unwrap_or_default()
}
