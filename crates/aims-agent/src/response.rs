//! Checking signed responses (draft-ietf-wimse-http-signature): a client that signed its
//! request MUST validate a response signature when one is present, including
//! `wimse-req-nonce` = its request's nonce.
//!
//! * A response to an [`crate::Auth::HttpSig`] request that carries a signature labelled
//!   `wimse` is verified with [`ResponseVerifier`]: the server's WIT-SVID against the
//!   agent's trust bundles, then the signature with the WIT's key, the covered
//!   components, `Content-Digest` and the request nonce. The signer must also pass the
//!   client's server authorizer (by default: any workload of the agent's own trust
//!   domain). A response that fails is an error; its body is not returned.
//! * With [`crate::AgentClientBuilder::sign_responses`] the request asks for a signed
//!   response (`wimse-sign-response`) and an unsigned response is refused too.
//! * Responses to requests authenticated otherwise are not checked: without a signed
//!   request there is no nonce to bind them to.

use std::sync::Arc;

use aims_core::Clock;
use aims_httpsig::wimse::{LABEL, ResponseVerifier, SentRequest};
use aims_httpsig::{Options, RequestMessage, SIGNATURE, SIGNATURE_INPUT, signature_labels};
use aims_jose::replay::MemoryReplayGuard;
use aims_jose::wit::{self, WitProfile};
use aims_pki::TrustStore;
use aims_pki::keys::{KeyUse, TrustStoreKeys};
use aims_pki::tls::Authorizer;
use bytes::Bytes;

use crate::AgentError;
use crate::error::server_text;

/// Response nonces remembered (for the signature lifetime) against replays.
const REPLAY_CAPACITY: usize = 100_000;

/// The request as sent, kept to compute the response's `;req` components.
#[derive(Debug)]
pub(crate) struct SentParts {
    pub(crate) method: http::Method,
    pub(crate) uri: http::Uri,
    pub(crate) headers: http::HeaderMap,
    pub(crate) sent: SentRequest,
}

/// Verifies response signatures for one [`crate::AgentClient`].
#[derive(Debug, Clone)]
pub(crate) struct ResponseCheck {
    verifier: Arc<ResponseVerifier>,
    /// Who may sign responses.
    authorizer: Authorizer,
    /// Ask for signed responses and refuse unsigned ones.
    required: bool,
}

impl ResponseCheck {
    pub(crate) fn new(
        trust: Arc<TrustStore>,
        clock: Arc<dyn Clock>,
        authorizer: Authorizer,
        required: bool,
    ) -> Self {
        let verifier = ResponseVerifier::new(
            wit::Validator::new(WitProfile::WitSvid, clock.clone()),
            Arc::new(TrustStoreKeys::new(trust, KeyUse::Wit)),
            Arc::new(MemoryReplayGuard::new(REPLAY_CAPACITY)),
            clock,
        );
        Self {
            verifier: Arc::new(verifier),
            authorizer,
            required,
        }
    }

    /// Whether requests ask for signed responses.
    pub(crate) fn required(&self) -> bool {
        self.required
    }

    /// Checks `response` to the signed request `request`.
    pub(crate) fn check(
        &self,
        request: &SentParts,
        response: &http::Response<Bytes>,
    ) -> Result<(), AgentError> {
        let fail = |reason: String| AgentError::ResponseSignature(reason);
        let headers = response.headers();
        let signed = if headers.contains_key(SIGNATURE_INPUT) || headers.contains_key(SIGNATURE) {
            signature_labels(headers, &Options::default())
                .map_err(|e| fail(server_text(&e.to_string())))?
                .iter()
                .any(|l| l == LABEL)
        } else {
            false
        };
        if !signed {
            return if self.required {
                Err(fail(
                    "the server did not sign its response, and this client requires signed responses (AgentClientBuilder::sign_responses)".into(),
                ))
            } else {
                Ok(())
            };
        }
        let message = RequestMessage::new(&request.method, &request.uri, &request.headers);
        let verified = self
            .verifier
            .verify(response, message, request.sent.nonce())
            .map_err(|e| fail(server_text(&e.to_string())))?;
        let id = verified.wit().spiffe_id().ok_or_else(|| {
            fail("the response was signed by a workload without a SPIFFE ID".into())
        })?;
        self.authorizer.authorize(id).map_err(|_| {
            fail(format!(
                "the response was signed by {id}, not a server this client accepts (AgentClientBuilder::server_authorizer)"
            ))
        })?;
        Ok(())
    }
}
