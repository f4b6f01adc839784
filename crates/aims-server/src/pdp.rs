//! The AuthZEN 1.0 policy decision point served by `aims serve` (`[pdp]`): aims-pdp's
//! engine and router, with the caller check the server can do.
//!
//! * **Where.** An mTLS listener (`[pdp] listen`) presenting the server's X509-SVID
//!   (client certificate optional), and/or the plain HTTP listener (`on_http`, loopback
//!   only: development).
//! * **Who may ask.** A PEP with an X509-SVID of this trust domain (mTLS peer), or an
//!   RFC 9068 access token of this server's OAuth issuer, validated against the
//!   server's own `oauth_token` keys, whose audience is the PDP identifier
//!   (`base_url`) and which is a plain bearer token (no `cnf`). Anyone else: 401. The
//!   metadata document needs no authentication.
//! * **Policies** from `policy_dir`, loaded at start (a bad set stops the start) and on
//!   SIGHUP (a bad set is refused and the current one stays).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aims_core::{Clock, SpiffeId, SpiffeIdPattern, TrustDomain};
use aims_jose::access_token;
use aims_oauth::Issuer;
use aims_oauth::token::TokenKeys as _;
use aims_pdp::authzen::http::{AuthzenConfig, CallerAuthorizer, CallerRejection};
use aims_pdp::{Pdp, PolicyBundle};
use axum::Router;
use axum::http::request::Parts;

use crate::ServerError;
use crate::admin::PeerId;
use crate::config::{ConfigErrors, Diagnostic};
use crate::oauth::OAuthKeys;
use crate::state::AppState;

/// The served PDP: the engine, its identifier, its router.
#[derive(Debug, Clone)]
pub struct PdpServer {
    pdp: Arc<Pdp>,
    policy_dir: PathBuf,
    base_url: String,
    router: Router,
}

fn config_error(message: String) -> ServerError {
    ServerError::Config(ConfigErrors(vec![Diagnostic {
        location: None,
        message,
        help: Some("check the directory with `aims policy check <dir>`".into()),
    }]))
}

impl PdpServer {
    /// Loads the policies of `policy_dir` and builds the router for `base_url`.
    /// `oauth`: the issuer whose access tokens callers may present (none: SVIDs only).
    pub fn new(
        state: &AppState,
        policy_dir: &Path,
        base_url: String,
        oauth: Option<Issuer>,
        expose_reasons: bool,
        callers: &[String],
    ) -> Result<Self, ServerError> {
        let callers = callers
            .iter()
            .map(|c| {
                SpiffeIdPattern::parse(c)
                    .map_err(|e| config_error(format!("[pdp] callers: {c:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let pdp = Pdp::from_dir(policy_dir)
            .map_err(|e| config_error(format!("[pdp] policy_dir: {e}")))?;
        let pdp = Arc::new(pdp);
        let mut cfg = AuthzenConfig::new(base_url.clone());
        cfg.expose_reasons = expose_reasons;
        cfg.authorizer = Some(caller_check(
            state.trust_domain().clone(),
            callers,
            oauth.map(|issuer| TokenCheck {
                keys: Arc::new(OAuthKeys::new(Arc::clone(&state.keys), &issuer)),
                issuer: issuer.as_str().to_owned(),
                audience: base_url.clone(),
                clock: Arc::clone(&state.clock),
            }),
        ));
        let router = aims_pdp::authzen::http::router(Arc::clone(&pdp), cfg);
        tracing::info!(target: "aims::pdp", policies = pdp.policy_count(), base_url = %base_url, "policy decision point ready");
        Ok(Self {
            pdp,
            policy_dir: policy_dir.to_owned(),
            base_url,
            router,
        })
    }

    /// The PDP identifier.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Pdp> {
        &self.pdp
    }

    /// The AuthZEN routes.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Reloads the policy directory; a set that does not load is refused and the current
    /// one stays.
    pub fn reload(&self) -> Result<(), String> {
        let bundle = PolicyBundle::from_dir(&self.policy_dir).map_err(|e| e.to_string())?;
        self.pdp.reload(&bundle).map_err(|e| e.to_string())
    }
}

/// What a caller's access token must be.
struct TokenCheck {
    keys: Arc<OAuthKeys>,
    issuer: String,
    audience: String,
    clock: Arc<dyn Clock>,
}

impl TokenCheck {
    fn check(&self, token: &str) -> Result<String, String> {
        let verifier = self.keys.verifier();
        let v = access_token::Validator::new(
            Arc::clone(&self.clock),
            self.issuer.clone(),
            self.audience.clone(),
        )
        .validate(token, verifier.as_ref())
        .map_err(|e| e.to_string())?;
        v.check_bearer_use().map_err(|e| e.to_string())?;
        Ok(v.claims.client_id)
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    let mut values = parts
        .headers
        .get_all(axum::http::header::AUTHORIZATION)
        .iter();
    let v = values.next()?.to_str().ok()?;
    if values.next().is_some() {
        return None;
    }
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Whether `id` may ask: of this trust domain, and listed in `callers` when any are.
fn may_ask(td: &TrustDomain, callers: &[SpiffeIdPattern], id: &SpiffeId) -> bool {
    id.trust_domain() == td && (callers.is_empty() || callers.iter().any(|c| c.matches(id)))
}

fn caller_check(
    td: TrustDomain,
    callers: Vec<SpiffeIdPattern>,
    tokens: Option<TokenCheck>,
) -> CallerAuthorizer {
    Arc::new(move |parts: &Parts| {
        if let Some(PeerId(id)) = parts.extensions.get::<PeerId>() {
            if id.trust_domain() != &td {
                return Err(CallerRejection::Forbidden(
                    "the client SVID is not of this trust domain".into(),
                ));
            }
            if !may_ask(&td, &callers, id) {
                tracing::info!(target: "aims::pdp", caller = %id, "PEP refused: not in [pdp] callers");
                return Err(CallerRejection::Forbidden(
                    "this workload is not one of the PDP's callers ([pdp] callers)".into(),
                ));
            }
            return Ok(());
        }
        let Some(token) = bearer(parts) else {
            return Err(CallerRejection::Unauthenticated(
                "a client X509-SVID or a Bearer access token is required".into(),
            ));
        };
        let Some(check) = &tokens else {
            return Err(CallerRejection::Unauthenticated(
                "access tokens are not accepted here (no OAuth issuer)".into(),
            ));
        };
        match check.check(token) {
            Ok(client) => {
                // The token's client_id: a SPIFFE ID for agents with one, else a client
                // id, which only passes when no callers are listed.
                let listed = callers.is_empty()
                    || SpiffeId::parse(&client).is_ok_and(|id| may_ask(&td, &callers, &id));
                if !listed {
                    tracing::info!(target: "aims::pdp", caller = %client, "PEP refused: not in [pdp] callers");
                    return Err(CallerRejection::Forbidden(
                        "this client is not one of the PDP's callers ([pdp] callers)".into(),
                    ));
                }
                tracing::debug!(target: "aims::pdp", caller = %client, "PEP authenticated by access token");
                Ok(())
            }
            Err(e) => {
                tracing::info!(target: "aims::pdp", error = %e, "PEP access token refused");
                Err(CallerRejection::Unauthenticated(
                    "invalid access token".into(),
                ))
            }
        }
    })
}

/// Reloads `server`'s policies on every SIGHUP until `stop` turns true.
pub async fn reload_on_hangup(server: PdpServer, mut stop: tokio::sync::watch::Receiver<bool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(target: "aims::pdp", error = %e, "cannot listen for SIGHUP; policies reload only on restart");
            return;
        }
    };
    loop {
        tokio::select! {
            r = hup.recv() => {
                if r.is_none() {
                    return;
                }
                match server.reload() {
                    Ok(()) => tracing::info!(target: "aims::pdp", "policies reloaded on SIGHUP"),
                    Err(e) => tracing::error!(target: "aims::pdp", error = %e, "policy reload refused; the current set stays"),
                }
            }
            _ = stop.wait_for(|v| *v) => return,
        }
    }
}
