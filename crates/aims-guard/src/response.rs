//! Error responses: RFC 9457 problem documents, and the `WWW-Authenticate` challenges of
//! RFC 6750 / RFC 9449 for 401s.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::response::Response;
use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};
use serde::Serialize;

use crate::error::{Challenge, PROBLEM_TYPE_BASE};
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

/// What the challenges of a 401 need.
pub(crate) struct ChallengeContext<'a> {
    pub(crate) accepted: &'a BTreeSet<Mechanism>,
    pub(crate) dpop_algs: String,
    pub(crate) nonce: String,
}

fn scheme_challenge(m: Mechanism, ctx: &ChallengeContext<'_>) -> String {
    match m {
        Mechanism::Dpop => format!("DPoP algs=\"{}\"", ctx.dpop_algs),
        Mechanism::JwtSvid => "Bearer".to_owned(),
        Mechanism::WitWpt => "WIMSE-WPT".to_owned(),
        Mechanism::WitHttpSig => "WIMSE-HTTP-Signature".to_owned(),
        Mechanism::Mtls => "Mutual-TLS".to_owned(),
    }
}

fn escape(s: &str) -> String {
    s.replace(['"', '\\', '\r', '\n'], "'")
}

/// The full error response: problem body, challenges, and a fresh `DPoP-Nonce` when DPoP
/// is involved.
pub(crate) fn error_response(e: &GuardError, ctx: &ChallengeContext<'_>) -> Response {
    let mut r = problem(e);
    let mut with_nonce = false;
    let mut challenges = Vec::new();
    match e.challenge() {
        None => {}
        Some(Challenge::Accepted) => {
            for m in ctx.accepted {
                challenges.push(scheme_challenge(*m, ctx));
                with_nonce |= *m == Mechanism::Dpop;
            }
        }
        Some(Challenge::Dpop(code)) => {
            with_nonce = true;
            challenges.push(format!(
                "DPoP error=\"{code}\", error_description=\"{}\", algs=\"{}\"",
                escape(&e.detail()),
                ctx.dpop_algs
            ));
        }
        Some(Challenge::Bearer) => challenges.push(format!(
            "Bearer error=\"invalid_token\", error_description=\"{}\"",
            escape(&e.detail())
        )),
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
