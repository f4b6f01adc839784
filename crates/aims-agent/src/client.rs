//! [`AgentClient`]: sends HTTP requests authenticated with this agent's own identity.
//!
//! | [`Auth`] | what is added to the request |
//! |---|---|
//! | `Mtls` | nothing: the TLS client certificate is the current X509-SVID |
//! | `Wpt` | `Workload-Identity-Token` (WIT-SVID) and `Workload-Proof-Token` (WPT, `aud` = the request URI without query, bound to the WIT and to any `Authorization` / `Txn-Token` already on the request) |
//! | `HttpSig` | `Workload-Identity-Token`, `Signature-Input`, `Signature` and `Content-Digest` (WIMSE HTTP signature profile, `wimse-aud` = the request URI without query) |
//! | `JwtSvid` | `Authorization: Bearer <JWT-SVID>` for the given audience |
//! | `Dpop` | `Authorization: DPoP <access token>` and a `DPoP` proof signed by a key of this client; a `use_dpop_nonce` challenge is answered once with the server's nonce |
//!
//! TLS servers are verified as SPIFFE workloads against the agent's bundles. By default
//! only servers of the agent's own trust domain are accepted: a federated bundle makes
//! its workloads verifiable, not trusted as servers, until
//! [`AgentClientBuilder::server_authorizer`] names them. PEM roots may replace SPIFFE
//! verification. The TLS client certificate follows rotation: each handshake presents
//! the SVID held at that moment.
//!
//! Every request has an overall timeout ([`DEFAULT_TIMEOUT`] unless configured) and a
//! cap on the response body ([`DEFAULT_MAX_RESPONSE_BYTES`] unless configured).
//!
//! A response to an `HttpSig` request that carries a WIMSE signature is verified (the
//! server's WIT-SVID against the agent's bundles, `wimse-req-nonce` = the request's
//! nonce) and refused if it does not verify; [`AgentClientBuilder::sign_responses`]
//! asks servers to sign and refuses unsigned responses. See `crate::response`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aims_crypto::{Algorithm, Signer as _, SigningKey};
use aims_httpsig::wimse::{RequestSigner, WIT_HEADER, default_audience};
use aims_jose::{dpop, wpt};
use aims_pki::tls::{Authorizer, ServerTrust, client_config_with_resolver};
use bytes::Bytes;
use http::header::{AUTHORIZATION, HeaderName, HeaderValue, WWW_AUTHENTICATE};

use crate::AgentError;
use crate::response::{ResponseCheck, SentParts};
use crate::source::WorkloadSource;
use crate::tls::SvidResolver;

/// The WPT header.
pub const WPT_HEADER: &str = "workload-proof-token";
/// The DPoP proof header.
pub const DPOP_HEADER: &str = "dpop";
/// The header carrying a server's DPoP nonce.
pub const DPOP_NONCE_HEADER: &str = "dpop-nonce";
const TXN_TOKEN_HEADER: &str = "txn-token";

/// Lifetime of the WPTs and HTTP signatures this client makes, in seconds.
pub const PROOF_LIFETIME: i64 = 60;

/// The overall time a request may take (connect, send, whole response) unless
/// [`AgentClientBuilder::timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest response body read unless [`AgentClientBuilder::max_response_bytes`] says
/// otherwise: 16 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// How a request is authenticated. `Debug` shows the kind, never a token.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Auth {
    /// Unauthenticated (TLS still verifies the server).
    None,
    /// Mutual TLS with the agent's X509-SVID.
    Mtls,
    /// WIT-SVID + Workload Proof Token.
    Wpt,
    /// WIT-SVID + WIMSE HTTP Message Signature.
    HttpSig,
    /// A JWT-SVID bearer token for `audience`.
    JwtSvid {
        /// The audience asked of the Workload API.
        audience: String,
    },
    /// A DPoP-bound access token with a proof from this client's DPoP key.
    Dpop {
        /// The access token (from the authorization server, bound to [`AgentClient::dpop_jkt`]).
        access_token: String,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Mtls => f.write_str("Mtls"),
            Auth::Wpt => f.write_str("Wpt"),
            Auth::HttpSig => f.write_str("HttpSig"),
            Auth::JwtSvid { audience } => f
                .debug_struct("JwtSvid")
                .field("audience", audience)
                .finish(),
            Auth::Dpop { .. } => f
                .debug_struct("Dpop")
                .field("access_token", &crate::error::REDACTED)
                .finish(),
        }
    }
}

impl Auth {
    /// Parses the CLI names `none`, `mtls`, `wpt`, `httpsig`.
    pub fn parse_simple(name: &str) -> Option<Self> {
        match name {
            "none" => Some(Auth::None),
            "mtls" => Some(Auth::Mtls),
            "wpt" => Some(Auth::Wpt),
            "httpsig" => Some(Auth::HttpSig),
            _ => None,
        }
    }
}

/// An HTTP client speaking with this agent's identity. Cheap to clone.
#[derive(Clone)]
pub struct AgentClient {
    source: WorkloadSource,
    /// Presents the X509-SVID as client certificate.
    mtls: reqwest::Client,
    /// Presents no client certificate.
    plain: reqwest::Client,
    dpop_key: Arc<SigningKey>,
    dpop_nonces: Arc<Mutex<HashMap<String, String>>>,
    timeout: Duration,
    max_response_bytes: usize,
    responses: ResponseCheck,
}

impl std::fmt::Debug for AgentClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentClient")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// Options of an [`AgentClient`].
///
/// Defaults: TLS servers must present an SVID of the agent's own trust domain (that of
/// its X509-SVID), requests time out after [`DEFAULT_TIMEOUT`], response bodies larger
/// than [`DEFAULT_MAX_RESPONSE_BYTES`] are refused, and signed responses are not asked
/// for (but verified when present).
#[derive(Debug, Clone)]
pub struct AgentClientBuilder {
    server_authorizer: Option<Authorizer>,
    root_pem: Option<Vec<u8>>,
    timeout: Duration,
    max_response_bytes: usize,
    sign_responses: bool,
}

impl Default for AgentClientBuilder {
    fn default() -> Self {
        Self {
            server_authorizer: None,
            root_pem: None,
            timeout: DEFAULT_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            sign_responses: false,
        }
    }
}

impl AgentClientBuilder {
    /// Accept only TLS servers (and signers of responses) whose SVID passes `authorizer`.
    ///
    /// Default: any SPIFFE ID of the agent's own trust domain. Servers of a federated
    /// trust domain are refused unless named here, for example
    /// `Authorizer::Exact(vec![server_id])` or
    /// `Authorizer::AnyInTrustDomains(vec![own_td, partner_td])`: holding a partner's
    /// bundle means its workloads can be verified, not that any of them may act as any
    /// server.
    pub fn server_authorizer(mut self, authorizer: Authorizer) -> Self {
        self.server_authorizer = Some(authorizer);
        self
    }

    /// Verify TLS servers with these PEM root certificates (ordinary web PKI names)
    /// instead of as SPIFFE workloads.
    pub fn server_roots_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_pem = Some(pem.into());
        self
    }

    /// The overall time a request may take, from connecting to the end of the response
    /// body (default [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest response body accepted, in bytes (default
    /// [`DEFAULT_MAX_RESPONSE_BYTES`]); a larger one fails the request with
    /// [`AgentError::ResponseTooLarge`] and is not kept. Token endpoint responses are
    /// capped at 64 KiB in any case.
    pub fn max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = limit;
        self
    }

    /// Ask servers to sign their responses to [`Auth::HttpSig`] requests
    /// (`wimse-sign-response`) and refuse unsigned responses to them with
    /// [`AgentError::ResponseSignature`]. Default: off; a signed response is verified
    /// either way.
    pub fn sign_responses(mut self, yes: bool) -> Self {
        self.sign_responses = yes;
        self
    }

    /// Builds the client.
    pub fn build(self, source: &WorkloadSource) -> Result<AgentClient, AgentError> {
        let trust = source.trust_store();
        let server_trust = match &self.root_pem {
            Some(pem) => ServerTrust::WebPki(
                aims_pki::pem::certificates(pem).map_err(|e| AgentError::Tls(e.to_string()))?,
            ),
            None => ServerTrust::Spiffe(
                trust.clone(),
                match &self.server_authorizer {
                    Some(a) => a.clone(),
                    None => default_server_authorizer(source)?,
                },
            ),
        };
        // Response signers pass the same authorizer as TLS servers; with web PKI roots
        // and no SVID yet (no own trust domain to default to), none: name the servers
        // with `server_authorizer` to accept their signed responses.
        let response_authorizer = match &self.server_authorizer {
            Some(a) => a.clone(),
            None => default_server_authorizer(source).unwrap_or(Authorizer::Exact(Vec::new())),
        };
        let responses = ResponseCheck::new(
            trust.clone(),
            source.clock().clone(),
            response_authorizer,
            self.sign_responses,
        );
        let tls = |client_cert: bool| -> Result<rustls::ClientConfig, AgentError> {
            let resolver = client_cert.then(|| {
                Arc::new(SvidResolver::new(source.clone()))
                    as Arc<dyn rustls::client::ResolvesClientCert>
            });
            client_config_with_resolver(resolver, server_trust.clone(), source.clock().clone())
                .map_err(|e| AgentError::Tls(e.to_string()))
        };
        let http = |client_cert: bool| -> Result<reqwest::Client, AgentError> {
            Ok(reqwest::Client::builder()
                .tls_backend_preconfigured(tls(client_cert)?)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(self.timeout)
                .build()?)
        };
        let dpop_key = SigningKey::generate(Algorithm::ES256)
            .map_err(|e| AgentError::Signing(e.to_string()))?;
        Ok(AgentClient {
            source: source.clone(),
            mtls: http(true)?,
            plain: http(false)?,
            dpop_key: Arc::new(dpop_key),
            dpop_nonces: Arc::new(Mutex::new(HashMap::new())),
            timeout: self.timeout,
            max_response_bytes: self.max_response_bytes,
            responses,
        })
    }
}

/// The default server authorizer: any ID of the trust domain of the agent's own SVID.
fn default_server_authorizer(source: &WorkloadSource) -> Result<Authorizer, AgentError> {
    let own = source
        .spiffe_id()
        .ok_or(AgentError::NoCredential("X509-SVID"))?;
    Ok(Authorizer::AnyInTrustDomains(vec![
        own.trust_domain().clone(),
    ]))
}

impl AgentClient {
    /// A client with default options.
    pub fn new(source: &WorkloadSource) -> Result<Self, AgentError> {
        AgentClientBuilder::default().build(source)
    }

    /// Options.
    pub fn builder() -> AgentClientBuilder {
        AgentClientBuilder::default()
    }

    /// The credential source.
    pub fn source(&self) -> &WorkloadSource {
        &self.source
    }

    /// The largest response body this client reads, in bytes.
    pub fn max_response_bytes(&self) -> usize {
        self.max_response_bytes
    }

    /// The RFC 7638 thumbprint of this client's DPoP key: the `dpop_jkt` to ask an
    /// authorization server to bind tokens to.
    pub fn dpop_jkt(&self) -> Result<String, AgentError> {
        self.dpop_key
            .public_jwk()
            .thumbprint()
            .map_err(|e| AgentError::Signing(e.to_string()))
    }

    /// Sends `request` (absolute `http`/`https` URI) authenticated with `auth`.
    pub async fn send(
        &self,
        request: http::Request<Bytes>,
        auth: &Auth,
    ) -> Result<http::Response<Bytes>, AgentError> {
        self.send_capped(request, auth, self.max_response_bytes)
            .await
    }

    /// [`AgentClient::send`] reading at most `limit` bytes of response body.
    pub(crate) async fn send_capped(
        &self,
        request: http::Request<Bytes>,
        auth: &Auth,
        limit: usize,
    ) -> Result<http::Response<Bytes>, AgentError> {
        let resp = self.send_once(request.clone(), auth, limit).await?;
        if matches!(auth, Auth::Dpop { .. }) && is_use_dpop_nonce(&resp) {
            // RFC 9449 §9: retry once with the nonce the server just gave.
            return self.send_once(request, auth, limit).await;
        }
        Ok(resp)
    }

    async fn send_once(
        &self,
        mut request: http::Request<Bytes>,
        auth: &Auth,
        limit: usize,
    ) -> Result<http::Response<Bytes>, AgentError> {
        let url = request.uri().to_string();
        let target = default_audience(request.uri())
            .ok_or_else(|| AgentError::Request(format!("{url} is not an absolute http(s) URL")))?;
        let origin = origin_of(request.uri());
        // The signed request as sent, to check the response against.
        let mut signed: Option<SentParts> = None;
        match auth {
            Auth::None => {}
            Auth::Mtls => {
                // Refuse here rather than connect without a client certificate.
                if self.source.x509_svid().is_none() {
                    return Err(AgentError::NoCredential("X509-SVID"));
                }
            }
            Auth::Wpt => self.add_wpt(&mut request, &target)?,
            Auth::HttpSig => {
                let wit = self
                    .source
                    .wit()
                    .ok_or(AgentError::NoCredential("WIT-SVID"))?;
                let signer = RequestSigner::new(
                    wit.token.clone(),
                    wit.key.clone(),
                    self.source.clock().clone(),
                )
                .lifetime(PROOF_LIFETIME)
                .request_signed_responses(self.responses.required());
                let sent = signer
                    .sign(&mut request, &target)
                    .map_err(|e| AgentError::Signing(e.to_string()))?;
                signed = Some(SentParts {
                    method: request.method().clone(),
                    uri: request.uri().clone(),
                    headers: request.headers().clone(),
                    sent,
                });
            }
            Auth::JwtSvid { audience } => {
                let token = self.source.jwt_svid(audience).await?;
                set(&mut request, AUTHORIZATION, &format!("Bearer {token}"))?;
            }
            Auth::Dpop { access_token } => {
                let nonce = self
                    .dpop_nonces
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(&origin)
                    .cloned();
                let proof = self.dpop_proof(
                    request.method().as_str(),
                    &url,
                    Some(access_token),
                    nonce.as_deref(),
                )?;
                set(&mut request, AUTHORIZATION, &format!("DPoP {access_token}"))?;
                set(&mut request, HeaderName::from_static(DPOP_HEADER), &proof)?;
            }
        }
        let client = if matches!(auth, Auth::Mtls) {
            &self.mtls
        } else {
            &self.plain
        };
        let req = reqwest::Request::try_from(request)?;
        let resp = client.execute(req).await.map_err(|e| self.http_error(e))?;
        if let Some(nonce) = resp
            .headers()
            .get(DPOP_NONCE_HEADER)
            .and_then(|v| v.to_str().ok())
        {
            self.dpop_nonces
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(origin, nonce.to_owned());
        }
        let status = resp.status();
        let headers = resp.headers().clone();
        let version = resp.version();
        let body = self.read_body(resp, limit).await?;
        let mut out = http::Response::new(body);
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        *out.version_mut() = version;
        if let Some(request) = &signed {
            self.responses.check(request, &out)?;
        }
        Ok(out)
    }

    /// Reads the whole body, refusing it as soon as it is known to exceed `limit` bytes.
    async fn read_body(
        &self,
        mut resp: reqwest::Response,
        limit: usize,
    ) -> Result<Bytes, AgentError> {
        let too_large = AgentError::ResponseTooLarge { limit };
        if resp
            .content_length()
            .is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX))
        {
            return Err(too_large);
        }
        let mut body = bytes::BytesMut::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.http_error(e))? {
            if chunk.len() > limit.saturating_sub(body.len()) {
                return Err(too_large);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }

    /// A timeout reported as such (with the setting to change), anything else as is.
    fn http_error(&self, e: reqwest::Error) -> AgentError {
        if e.is_timeout() {
            AgentError::RequestTimeout(self.timeout)
        } else {
            AgentError::Http(e)
        }
    }

    /// A DPoP proof by this client's key.
    pub(crate) fn dpop_proof(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&str>,
        nonce: Option<&str>,
    ) -> Result<String, AgentError> {
        dpop::create_proof(
            self.dpop_key.as_ref(),
            method,
            url,
            access_token,
            nonce,
            self.source.clock().now(),
        )
        .map_err(|e| AgentError::Signing(e.to_string()))
    }

    fn add_wpt(&self, request: &mut http::Request<Bytes>, target: &str) -> Result<(), AgentError> {
        let wit = self
            .source
            .wit()
            .ok_or(AgentError::NoCredential("WIT-SVID"))?;
        let header_str = |name: &HeaderName| -> Result<Option<String>, AgentError> {
            let mut values = request.headers().get_all(name).iter();
            match (values.next(), values.next()) {
                (None, _) => Ok(None),
                (Some(v), None) => v
                    .to_str()
                    .map(|s| Some(s.to_owned()))
                    .map_err(|_| AgentError::Request(format!("{name} is not visible ASCII"))),
                (Some(_), Some(_)) => Err(AgentError::Request(format!("more than one {name}"))),
            }
        };
        let access_token = header_str(&AUTHORIZATION)?.and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("dpop"))
                .then(|| token.trim().to_owned())
        });
        let txn = header_str(&HeaderName::from_static(TXN_TOKEN_HEADER))?;
        let mut req = wpt::WptRequest::new(&wit.token, target);
        if let Some(at) = access_token.as_deref() {
            req = req.with_access_token(at);
        }
        if let Some(tt) = txn.as_deref() {
            req = req.with_txn_token(tt);
        }
        let exp = self.source.clock().now().saturating_add(PROOF_LIFETIME);
        let token = wpt::WptClaims::new(&req, exp)
            .and_then(|claims| wpt::create(&claims, wit.key.as_ref()))
            .map_err(|e| AgentError::Signing(e.to_string()))?;
        set(request, HeaderName::from_static(WIT_HEADER), &wit.token)?;
        set(request, HeaderName::from_static(WPT_HEADER), &token)?;
        Ok(())
    }
}

fn set(
    request: &mut http::Request<Bytes>,
    name: HeaderName,
    value: &str,
) -> Result<(), AgentError> {
    let value = HeaderValue::from_str(value)
        .map_err(|_| AgentError::Request(format!("{name} value is not a valid header")))?;
    request.headers_mut().insert(name, value);
    Ok(())
}

fn origin_of(uri: &http::Uri) -> String {
    format!(
        "{}://{}",
        uri.scheme_str().unwrap_or_default(),
        uri.authority().map(|a| a.as_str()).unwrap_or_default()
    )
    .to_ascii_lowercase()
}

/// RFC 9449 §9: `401` with `WWW-Authenticate: DPoP error="use_dpop_nonce"`.
fn is_use_dpop_nonce(resp: &http::Response<Bytes>) -> bool {
    resp.status() == http::StatusCode::UNAUTHORIZED
        && resp.headers().contains_key(DPOP_NONCE_HEADER)
        && resp
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("use_dpop_nonce"))
}

impl AgentClient {
    /// This client as a [`tower::Service`] that authenticates every request with `auth`,
    /// for stacks built from tower layers (retries, timeouts, rate limits).
    pub fn into_service(self, auth: Auth) -> AgentService {
        AgentService {
            client: self,
            auth: Arc::new(auth),
        }
    }
}

/// [`AgentClient`] as a [`tower::Service`]; see [`AgentClient::into_service`]. `Debug`
/// shows the kind of [`Auth`], never a token.
#[derive(Debug, Clone)]
pub struct AgentService {
    client: AgentClient,
    auth: Arc<Auth>,
}

impl tower::Service<http::Request<Bytes>> for AgentService {
    type Response = http::Response<Bytes>;
    type Error = AgentError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Bytes>) -> Self::Future {
        let client = self.client.clone();
        let auth = self.auth.clone();
        Box::pin(async move { client.send(request, &auth).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_debug_redacts_the_access_token() {
        let auth = Auth::Dpop {
            access_token: "eyJsecret.token.value".into(),
        };
        let shown = format!("{auth:?}");
        assert!(!shown.contains("eyJsecret"), "{shown}");
        assert!(shown.contains("Dpop"), "{shown}");
        let jwt = format!(
            "{:?}",
            Auth::JwtSvid {
                audience: "spiffe://example.org/api".into()
            }
        );
        assert!(jwt.contains("spiffe://example.org/api"), "{jwt}");
    }

    #[test]
    fn the_builder_defaults_to_a_timeout_and_a_body_cap() {
        let b = AgentClientBuilder::default();
        assert_eq!(b.timeout, DEFAULT_TIMEOUT);
        assert_eq!(DEFAULT_TIMEOUT, Duration::from_secs(30));
        assert_eq!(b.max_response_bytes, DEFAULT_MAX_RESPONSE_BYTES);
        assert!(b.server_authorizer.is_none());
        assert!(!b.sign_responses);
    }
}
