//! Error responses: RFC 9457 problem documents, and the `WWW-Authenticate` challenges of
//! RFC 6750 / RFC 9449 for 401s.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::response::Response;
use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};
use serde::Serialize;

use crate::error::{Challenge, PROBLEM_TYPE_BASE};
use crate::token::TokenScheme;
use crate::{GuardError, Mechanism};

/// The media type of problem documents.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    type_: String,
    title: &'a str,
    status: u16,
    detail: String,
    code: String,
}

/// The problem response for `e`, without challenges.
pub(crate) fn problem(e: &GuardError) -> Response {
    let status = e.status();
    let code = e.code();
    let body = serde_json::to_string(&Problem {
        type_: format!("{PROBLEM_TYPE_BASE}{code}"),
        title: e.title(),
        status: status.as_u16(),
        detail: e.detail(),
        code,
    })
    .unwrap_or_else(|_| String::from("{}"));
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_CONTENT_TYPE));
    r
}

/// What the challenges of a 401 / 403 need.
pub(crate) struct ChallengeContext<'a> {
    pub(crate) accepted: &'a BTreeSet<Mechanism>,
    pub(crate) dpop_algs: String,
    pub(crate) nonce: String,
    /// RFC 9728 `resource_metadata`, on every Bearer and DPoP challenge.
    pub(crate) resource_metadata: Option<&'a str>,
    /// The scope the route requires, hinted on challenges without error (RFC 6750
    /// section 3).
    pub(crate) scope: Option<&'a str>,
}

/// A quoted-string value as RFC 6750 section 3 allows in `error_description` and `scope`
/// (`%x20-21 / %x23-5B / %x5D-7E`): quotes and backslashes become `'`, anything else
/// outside printable ASCII `?`. Messages may quote parts of the presented token, and one
/// control character would otherwise make the whole header invalid.
fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

/// `Scheme a="b", c="d"` (RFC 7235 auth-params, values quoted).
fn challenge(scheme: &str, params: &[(&str, String)]) -> String {
    let params: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if params.is_empty() {
        scheme.to_owned()
    } else {
        format!("{scheme} {}", params.join(", "))
    }
}

fn oauth_tail(
    params: &mut Vec<(&'static str, String)>,
    scheme: TokenScheme,
    ctx: &ChallengeContext<'_>,
) {
    if scheme == TokenScheme::Dpop {
        params.push(("algs", ctx.dpop_algs.clone()));
    }
    if let Some(url) = ctx.resource_metadata {
        params.push(("resource_metadata", url.to_owned()));
    }
}

/// The OAuth scheme a mechanism's credentials come in, if it is one.
fn oauth_scheme(m: Mechanism) -> Option<TokenScheme> {
    match m {
        Mechanism::Dpop => Some(TokenScheme::Dpop),
        Mechanism::JwtSvid | Mechanism::Bearer => Some(TokenScheme::Bearer),
        Mechanism::WitWpt | Mechanism::WitHttpSig | Mechanism::Mtls => None,
    }
}

fn scheme_challenge(m: Mechanism, ctx: &ChallengeContext<'_>) -> String {
    let oauth = |scheme| {
        let mut params = Vec::new();
        if let Some(scope) = ctx.scope {
            params.push(("scope", scope.to_owned()));
        }
        oauth_tail(&mut params, scheme, ctx);
        challenge(scheme.as_str(), &params)
    };
    match m {
        Mechanism::Dpop => oauth(TokenScheme::Dpop),
        Mechanism::JwtSvid | Mechanism::Bearer => oauth(TokenScheme::Bearer),
        Mechanism::WitWpt => "WIMSE-WPT".to_owned(),
        Mechanism::WitHttpSig => "WIMSE-HTTP-Signature".to_owned(),
        Mechanism::Mtls => "Mutual-TLS".to_owned(),
    }
}

/// The full error response: problem body, challenges, and a fresh `DPoP-Nonce` when DPoP
/// is involved.
pub(crate) fn error_response(e: &GuardError, ctx: &ChallengeContext<'_>) -> Response {
    let mut r = problem(e);
    let mut with_nonce = false;
    let mut challenges: Vec<String> = Vec::new();
    match e.challenge() {
        None => {}
        Some(Challenge::Accepted) => {
            for m in ctx.accepted {
                let c = scheme_challenge(*m, ctx);
                if !challenges.contains(&c) {
                    challenges.push(c);
                }
                with_nonce |= *m == Mechanism::Dpop;
            }
        }
        Some(Challenge::AcceptedWithError(code)) => {
            for m in ctx.accepted {
                let c = match oauth_scheme(*m) {
                    Some(scheme) => {
                        let mut params = vec![
                            ("error", code.to_owned()),
                            ("error_description", e.detail()),
                        ];
                        oauth_tail(&mut params, scheme, ctx);
                        challenge(scheme.as_str(), &params)
                    }
                    None => scheme_challenge(*m, ctx),
                };
                if !challenges.contains(&c) {
                    challenges.push(c);
                }
                with_nonce |= *m == Mechanism::Dpop;
            }
        }
        Some(Challenge::Oauth(scheme, code)) => {
            with_nonce = scheme == TokenScheme::Dpop;
            let mut params = vec![
                ("error", code.to_owned()),
                ("error_description", e.detail()),
            ];
            match e {
                GuardError::InsufficientScope { scope, .. } => {
                    params.push(("scope", scope.clone()))
                }
                GuardError::InsufficientUserAuthentication {
                    acr_values,
                    max_age,
                    ..
                } => {
                    if let Some(a) = acr_values {
                        params.push(("acr_values", a.clone()));
                    }
                    if let Some(m) = max_age {
                        params.push(("max_age", m.to_string()));
                    }
                }
                _ => {}
            }
            oauth_tail(&mut params, scheme, ctx);
            challenges.push(challenge(scheme.as_str(), &params));
        }
    }
    for c in challenges {
        if let Ok(v) = HeaderValue::from_str(&c) {
            r.headers_mut().append(WWW_AUTHENTICATE, v);
        }
    }
    if with_nonce && let Ok(v) = HeaderValue::from_str(&ctx.nonce) {
        r.headers_mut().insert(crate::guard::DPOP_NONCE_HEADER, v);
    }
    debug_assert!(r.status() != StatusCode::OK);
    r
}
