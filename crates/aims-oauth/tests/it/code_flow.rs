//! The authorization code flow, PAR and refresh tokens, through the service's API.

use aims_core::Clock as _;
use aims_crypto::{Algorithm, Signer as _, SigningKey};
use aims_jose::access_token;
use aims_oauth::code::{Approval, AuthorizeError};
use aims_oauth::introspect::Revoked;
use aims_oauth::{ErrorCode, Params};

use super::common::*;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn authz_params<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut p = vec![
        ("response_type", "code"),
        ("client_id", "app"),
        ("redirect_uri", REDIRECT),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("scope", "api:read"),
        ("state", "xyz"),
    ];
    for (k, v) in extra {
        p.retain(|(key, _)| key != k);
        p.push((k, v));
    }
    p
}

fn query(url: &str, name: &str) -> Option<String> {
    let q = url.split_once('?')?.1;
    form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn approve(h: &Harness, extra: &[(&str, &str)]) -> String {
    approve_params(h, authz_params(extra)).await
}

/// An authorization request of `params`, approved by alice: the code.
async fn approve_params(h: &Harness, params: Vec<(&str, &str)>) -> String {
    let (_, request) = h
        .svc
        .authorization_request(&Params::from_pairs(params))
        .await
        .unwrap();
    let url = h
        .svc
        .issue_code(
            &request,
            &Approval {
                subject: "alice".into(),
                auth_time: T0,
                acr: Some("urn:aims:acr:pwd".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(query(&url, "iss").as_deref(), Some(ISSUER), "RFC 9207 iss");
    assert_eq!(query(&url, "state").as_deref(), Some("xyz"));
    assert!(url.starts_with(REDIRECT));
    query(&url, "code").unwrap()
}

fn code_params<'a>(code: &'a str, extra: &[(&'a str, &'a str)]) -> Params {
    let mut p = vec![
        ("grant_type", "authorization_code"),
        ("client_id", "app"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    for (k, v) in extra {
        p.retain(|(key, _)| key != k);
        if !v.is_empty() {
            p.push((k, v));
        }
    }
    Params::from_pairs(p)
}

fn verify(h: &Harness, token: &str) -> access_token::ValidatedAccessToken {
    access_token::Validator::new(h.svc.clock().clone(), ISSUER, API)
        .validate(token, h.svc.keys().verifier().as_ref())
        .unwrap()
}

async fn introspect_active(h: &Harness, token: &str) -> bool {
    let p = introspection(h.clock.now(), token);
    h.svc.introspect(req(&p)).await.unwrap()["active"] == true
}

#[tokio::test]
async fn code_flow_issues_user_tokens_with_pkce_and_iss() {
    let h = harness(vec![public_client()]).await;
    let code = approve(&h, &[]).await;
    let p = code_params(&code, &[]);
    let (resp, issued) = h.svc.token(req(&p)).await.unwrap();
    assert_eq!(resp.token_type, "Bearer");
    assert_eq!(resp.scope.as_deref(), Some("api:read"));
    assert!(resp.refresh_token.is_some());
    let at = verify(&h, &resp.access_token);
    assert_eq!(at.claims.sub, "alice");
    assert_eq!(at.claims.client_id, "app");
    assert_eq!(at.claims.acr.as_deref(), Some("urn:aims:acr:pwd"));
    assert_eq!(at.claims.auth_time, Some(T0));
    assert_eq!(issued.subject.as_deref(), Some("alice"));
    assert!(introspect_active(&h, &resp.access_token).await);
}

#[tokio::test]
async fn a_reused_code_is_refused_and_revokes_what_it_issued() {
    let h = harness(vec![public_client()]).await;
    let code = approve(&h, &[]).await;
    let p = code_params(&code, &[]);
    let (first, _) = h.svc.token(req(&p)).await.unwrap();
    let e = h.svc.token(req(&p)).await.unwrap_err();
    assert_eq!(e.error.code, ErrorCode::InvalidGrant);
    assert!(!introspect_active(&h, &first.access_token).await);
    let rt = first.refresh_token.unwrap();
    let p = Params::from_pairs([
        ("grant_type", "refresh_token"),
        ("client_id", "app"),
        ("refresh_token", &rt),
    ]);
    assert_eq!(
        h.svc.token(req(&p)).await.unwrap_err().error.code,
        ErrorCode::InvalidGrant
    );
}

#[tokio::test]
async fn token_request_rules() {
    let h = harness(vec![public_client()]).await;
    // Wrong verifier, missing verifier, other redirect_uri, expired code: each its own code.
    let code = approve(&h, &[]).await;
    let p = code_params(
        &code,
        &[(
            "code_verifier",
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl",
        )],
    );
    assert_eq!(
        h.svc.token(req(&p)).await.unwrap_err().error.code,
        ErrorCode::InvalidGrant
    );
    let code = approve(&h, &[]).await;
    let p = code_params(&code, &[("code_verifier", "")]);
    assert_eq!(
        h.svc.token(req(&p)).await.unwrap_err().error.code,
        ErrorCode::InvalidRequest
    );
    let code = approve(&h, &[]).await;
    let p = code_params(&code, &[("redirect_uri", "https://app.example.test/other")]);
    assert_eq!(
        h.svc.token(req(&p)).await.unwrap_err().error.code,
        ErrorCode::InvalidGrant
    );
    let code = approve(&h, &[]).await;
    h.clock.advance(61);
    let p = code_params(&code, &[]);
    assert_eq!(
        h.svc.token(req(&p)).await.unwrap_err().error.code,
        ErrorCode::InvalidGrant
    );
}

#[tokio::test]
async fn authorization_request_rules() {
    let h = harness(vec![public_client()]).await;
    let run = |extra: Vec<(&'static str, &'static str)>| {
        let svc = &h.svc;
        async move {
            svc.authorization_request(&Params::from_pairs(authz_params(&extra)))
                .await
        }
    };
    // Not redirected: unknown client, unregistered redirect URI (exact match).
    for extra in [
        vec![("client_id", "nobody")],
        vec![("redirect_uri", "https://app.example.test/cb/")],
        vec![("redirect_uri", "https://evil.example/cb")],
        // A state too long to keep.
        vec![("state", &*"s".repeat(2049).leak())],
    ] {
        assert!(
            matches!(run(extra.clone()).await, Err(AuthorizeError::NoRedirect(_))),
            "{extra:?}"
        );
    }
    // The longest state is kept, and response_mode=query is the default.
    assert!(
        run(vec![
            ("state", &*"s".repeat(2048).leak()),
            ("response_mode", "query")
        ])
        .await
        .is_ok()
    );
    // Redirected with the error and state.
    for (extra, code) in [
        (vec![("code_challenge", "")], ErrorCode::InvalidRequest),
        (
            vec![("code_challenge_method", "plain")],
            ErrorCode::InvalidRequest,
        ),
        (vec![("code_challenge", "short")], ErrorCode::InvalidRequest),
        (
            vec![("response_type", "token")],
            ErrorCode::UnsupportedResponseType,
        ),
        (vec![("scope", "admin")], ErrorCode::InvalidScope),
        (
            vec![("resource", "https://other.example/")],
            ErrorCode::InvalidTarget,
        ),
        (vec![("max_age", "-1")], ErrorCode::InvalidRequest),
        (vec![("dpop_jkt", "nope")], ErrorCode::InvalidRequest),
        (
            vec![("response_mode", "fragment")],
            ErrorCode::InvalidRequest,
        ),
        (
            vec![("response_mode", "form_post")],
            ErrorCode::InvalidRequest,
        ),
    ] {
        match run(extra.clone()).await {
            Err(AuthorizeError::Redirect {
                error,
                redirect_uri,
                state,
            }) => {
                assert_eq!(error.code, code, "{extra:?}");
                assert_eq!(redirect_uri, REDIRECT);
                assert_eq!(state.as_deref(), Some("xyz"));
                let url = h
                    .svc
                    .error_redirect(&redirect_uri, state.as_deref(), &error);
                assert_eq!(query(&url, "iss").as_deref(), Some(ISSUER));
                assert_eq!(query(&url, "error").as_deref(), Some(code.as_str()));
            }
            other => panic!("{extra:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let h = harness(vec![public_client()]).await;
    let code = approve(&h, &[("scope", "api:read api:write")]).await;
    let (first, _) = h.svc.token(req(&code_params(&code, &[]))).await.unwrap();
    let rt1 = first.refresh_token.unwrap();
    let refresh = |rt: String, scope: Option<&'static str>| {
        let svc = &h.svc;
        async move {
            let mut p = vec![("grant_type", "refresh_token"), ("client_id", "app")];
            p.push(("refresh_token", Box::leak(rt.into_boxed_str())));
            if let Some(s) = scope {
                p.push(("scope", s));
            }
            svc.token(req(&Params::from_pairs(p))).await
        }
    };
    // Narrowing is allowed; the new token carries the narrower scope.
    let (second, _) = refresh(rt1.clone(), Some("api:read")).await.unwrap();
    assert_eq!(second.scope.as_deref(), Some("api:read"));
    let rt2 = second.refresh_token.unwrap();
    assert_ne!(rt1, rt2);
    // Widening is refused.
    assert_eq!(
        refresh(rt2.clone(), Some("api:read api:write"))
            .await
            .unwrap_err()
            .error
            .code,
        ErrorCode::InvalidScope
    );
    // A refused request does not consume the token. Reuse of rt1: refused, and the whole family is revoked.
    assert_eq!(
        refresh(rt1, None).await.unwrap_err().error.code,
        ErrorCode::InvalidGrant
    );
    assert!(!introspect_active(&h, &second.access_token).await);
    assert_eq!(
        refresh(rt2, None).await.unwrap_err().error.code,
        ErrorCode::InvalidGrant
    );
}

/// A refresh token acts for its user only while the user exists and is enabled; a
/// refusal for that reason does not use the token up.
#[tokio::test]
async fn refresh_needs_an_active_user() {
    let h = harness(vec![public_client()]).await;
    let code = approve(&h, &[]).await;
    let (first, _) = h.svc.token(req(&code_params(&code, &[]))).await.unwrap();
    let rt = first.refresh_token.unwrap();
    let refresh = Params::from_pairs([
        ("grant_type", "refresh_token"),
        ("client_id", "app"),
        ("refresh_token", rt.as_str()),
    ]);
    h.store.set_user_disabled("alice", true, T0).await.unwrap();
    let e = h.svc.token(req(&refresh)).await.unwrap_err();
    assert_eq!(e.error.code, ErrorCode::InvalidGrant);
    assert!(
        e.error.description.contains("disabled"),
        "{}",
        e.error.description
    );
    h.store.set_user_disabled("alice", false, T0).await.unwrap();
    let (second, _) = h.svc.token(req(&refresh)).await.unwrap();
    h.store.delete_user("alice").await.unwrap();
    let next = second.refresh_token.unwrap();
    let refresh = Params::from_pairs([
        ("grant_type", "refresh_token"),
        ("client_id", "app"),
        ("refresh_token", next.as_str()),
    ]);
    let e = h.svc.token(req(&refresh)).await.unwrap_err();
    assert_eq!(e.error.code, ErrorCode::InvalidGrant);
}

/// RFC 7009 §2.1: revoking a refresh token revokes its family, with the access tokens
/// issued from it; revoking it again revokes nothing (and still succeeds).
#[tokio::test]
async fn revoking_a_refresh_token_revokes_its_family() {
    let h = harness(vec![public_client()]).await;
    let code = approve(&h, &[]).await;
    let (first, _) = h.svc.token(req(&code_params(&code, &[]))).await.unwrap();
    let rt = first.refresh_token.unwrap();
    assert!(introspect_active(&h, &first.access_token).await);
    let revoke = Params::from_pairs([("client_id", "app"), ("token", rt.as_str())]);
    let r = h.svc.revoke(req(&revoke)).await.unwrap();
    assert_eq!(r.revoked, Revoked::RefreshFamily);
    assert_eq!(r.caller.client.id(), "app");
    assert!(r.subject.is_some());
    assert!(!introspect_active(&h, &first.access_token).await);
    let again = h.svc.revoke(req(&revoke)).await.unwrap();
    assert_eq!(again.revoked, Revoked::Nothing);
}

#[tokio::test]
async fn pushed_requests_are_used_once() {
    let h = harness(vec![public_client()]).await;
    let p = Params::from_pairs(authz_params(&[]));
    let (uri, expires_in) = h.svc.push_authorization_request(req(&p)).await.unwrap();
    assert!(uri.starts_with("urn:ietf:params:oauth:request_uri:"));
    assert_eq!(expires_in, 60);
    let front = Params::from_pairs([("client_id", "app"), ("request_uri", uri.as_str())]);
    let (_, request) = h.svc.authorization_request(&front).await.unwrap();
    assert_eq!(request.code_challenge, CHALLENGE);
    assert_eq!(request.state.as_deref(), Some("xyz"));
    assert!(matches!(
        h.svc.authorization_request(&front).await,
        Err(AuthorizeError::NoRedirect(_))
    ));
    // Another client cannot use it; an unknown reference neither.
    let (uri, _) = h.svc.push_authorization_request(req(&p)).await.unwrap();
    let bad = Params::from_pairs([
        ("client_id", "app"),
        ("request_uri", "urn:ietf:params:oauth:request_uri:nope"),
    ]);
    assert!(matches!(
        h.svc.authorization_request(&bad).await,
        Err(AuthorizeError::NoRedirect(_))
    ));
    h.clock.advance(61);
    let late = Params::from_pairs([("client_id", "app"), ("request_uri", uri.as_str())]);
    assert!(matches!(
        h.svc.authorization_request(&late).await,
        Err(AuthorizeError::NoRedirect(_))
    ));
}

#[tokio::test]
async fn dpop_jkt_binds_the_code_to_the_key() {
    let h = harness(vec![public_client()]).await;
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let jkt = key.public_jwk().thumbprint().unwrap();
    let code = approve(&h, &[("dpop_jkt", Box::leak(jkt.clone().into_boxed_str()))]).await;
    // Without a proof: refused.
    let p = code_params(&code, &[]);
    assert_eq!(
        h.svc.token(req(&p)).await.unwrap_err().error.code,
        ErrorCode::InvalidDpopProof
    );
    // With a proof by that key (a fresh code: the first was consumed).
    let code = approve(&h, &[("dpop_jkt", Box::leak(jkt.clone().into_boxed_str()))]).await;
    let proof = post_proof(&key, "/oauth/token", None);
    let p = code_params(&code, &[]);
    let (resp, _) = h.svc.token(req_with_proof(&p, Some(&proof))).await.unwrap();
    assert_eq!(resp.token_type, "DPoP");
    assert_eq!(
        verify(&h, &resp.access_token)
            .claims
            .cnf
            .unwrap()
            .jkt
            .as_deref(),
        Some(jkt.as_str())
    );
}

/// RFC 9449 §8: a code redeemed with a proof that lacks the server's nonce is answered
/// `use_dpop_nonce`, and the retry with the nonce still finds the code unused.
#[tokio::test]
async fn a_dpop_nonce_retry_redeems_the_same_code() {
    let h = harness_with(vec![public_client()], |s| s.require_dpop_nonce(true)).await;
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let code = approve(&h, &[]).await;
    let p = code_params(&code, &[]);
    let proof = post_proof(&key, "/oauth/token", None);
    let e = h
        .svc
        .token(req_with_proof(&p, Some(&proof)))
        .await
        .unwrap_err();
    assert_eq!(e.error.code, ErrorCode::UseDpopNonce);
    let nonce = e.dpop_nonce.unwrap();
    let proof = post_proof(&key, "/oauth/token", Some(&nonce));
    let (resp, _) = h.svc.token(req_with_proof(&p, Some(&proof))).await.unwrap();
    assert_eq!(resp.token_type, "DPoP");
}

/// RFC 9449 §10.1: a DPoP proof at PAR binds the code to its key (as `dpop_jkt`), and a
/// `dpop_jkt` that is not the proof key's thumbprint is refused.
#[tokio::test]
async fn a_dpop_proof_at_par_binds_the_code() {
    let h = harness(vec![public_client()]).await;
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let jkt = key.public_jwk().thumbprint().unwrap();
    let p = Params::from_pairs(authz_params(&[]));
    let proof = post_proof(&key, "/oauth/par", None);
    let (uri, _) = h
        .svc
        .push_authorization_request(req_with_proof(&p, Some(&proof)))
        .await
        .unwrap();
    let front = Params::from_pairs([("client_id", "app"), ("request_uri", uri.as_str())]);
    let (_, request) = h.svc.authorization_request(&front).await.unwrap();
    assert_eq!(request.dpop_jkt.as_deref(), Some(jkt.as_str()));

    // dpop_jkt of another key.
    let other = SigningKey::generate(Algorithm::ES256).unwrap();
    let other_jkt = other.public_jwk().thumbprint().unwrap();
    let p = Params::from_pairs(authz_params(&[("dpop_jkt", other_jkt.as_str())]));
    let proof = post_proof(&key, "/oauth/par", None);
    let e = h
        .svc
        .push_authorization_request(req_with_proof(&p, Some(&proof)))
        .await
        .unwrap_err();
    assert_eq!(e.error.code, ErrorCode::InvalidDpopProof);
    // A proof made for the token endpoint is not one for PAR.
    let p = Params::from_pairs(authz_params(&[]));
    let wrong = post_proof(&key, "/oauth/token", None);
    let e = h
        .svc
        .push_authorization_request(req_with_proof(&p, Some(&wrong)))
        .await
        .unwrap_err();
    assert_eq!(e.error.code, ErrorCode::InvalidDpopProof);
}

/// RFC 8707 §2.2: at the token endpoint, `resource` narrows the audience to some of the
/// resources the grant was approved for; any other is `invalid_target`.
#[tokio::test]
async fn resource_at_the_token_endpoint_narrows_the_audience() {
    const OTHER: &str = "https://other.example.test/";
    let mut client = public_client();
    client["resources"] = serde_json::json!([API, OTHER]);
    let h = harness(vec![client]).await;
    let approve_both = || {
        let mut p = authz_params(&[]);
        p.push(("resource", API));
        p.push(("resource", OTHER));
        approve_params(&h, p)
    };
    let aud = |token: &str| {
        let claims = aims_jose::Jws::unverified_claims(token).unwrap();
        claims["aud"].clone()
    };
    let code = approve_both().await;
    let e = h
        .svc
        .token(req(&code_params(
            &code,
            &[("resource", "https://never.example.test/")],
        )))
        .await
        .unwrap_err();
    assert_eq!(e.error.code, ErrorCode::InvalidTarget);

    let code = approve_both().await;
    let (resp, _) = h
        .svc
        .token(req(&code_params(&code, &[("resource", OTHER)])))
        .await
        .unwrap();
    assert_eq!(aud(&resp.access_token), serde_json::json!(OTHER));
    let rt = resp.refresh_token.unwrap();
    let refresh = |resource: &'static str| {
        Params::from_pairs([
            ("grant_type", "refresh_token"),
            ("client_id", "app"),
            ("refresh_token", rt.as_str()),
            ("resource", resource),
        ])
    };
    // Not part of the grant: refused, and the refresh token is not used up.
    let e = h
        .svc
        .token(req(&refresh("https://never.example.test/")))
        .await
        .unwrap_err();
    assert_eq!(e.error.code, ErrorCode::InvalidTarget);
    let (resp, _) = h.svc.token(req(&refresh(API))).await.unwrap();
    assert_eq!(aud(&resp.access_token), serde_json::json!(API));
}

/// RFC 9449 §5.2: a confidential client registered for DPoP-bound tokens gets none
/// without a proof, on a refresh too.
#[tokio::test]
async fn a_dpop_bound_client_cannot_refresh_without_a_proof() {
    use aims_jose::client_assertion::{self, ASSERTION_TYPE, ClientAssertionClaims};
    let client_key = SigningKey::generate(Algorithm::ES256).unwrap();
    let dpop_key = SigningKey::generate(Algorithm::ES256).unwrap();
    let h = harness(vec![serde_json::json!({
        "client_id": "app",
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": aims_crypto::Jwks { keys: vec![client_key.public_jwk().clone()] },
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "api:read",
        "resources": [API],
        "redirect_uris": [REDIRECT],
        "dpop_bound_access_tokens": true
    })])
    .await;
    let assertion = || {
        let c = ClientAssertionClaims::new("app", ISSUER, T0, 60).unwrap();
        client_assertion::create(&c, &client_key).unwrap()
    };
    let proof = || post_proof(&dpop_key, "/oauth/token", None);
    let code = approve(&h, &[]).await;
    let a = assertion();
    let p = code_params(
        &code,
        &[
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", a.as_str()),
        ],
    );
    let pr = proof();
    let (resp, _) = h.svc.token(req_with_proof(&p, Some(&pr))).await.unwrap();
    assert_eq!(resp.token_type, "DPoP");
    let rt = resp.refresh_token.unwrap();
    let a = assertion();
    let refresh = Params::from_pairs([
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", a.as_str()),
    ]);
    let e = h.svc.token(req(&refresh)).await.unwrap_err();
    assert_eq!(e.error.code, ErrorCode::InvalidRequest);
    // With a proof: refreshed (the refusal did not use the token up).
    let a = assertion();
    let refresh = Params::from_pairs([
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", a.as_str()),
    ]);
    let pr = proof();
    let (resp, _) = h
        .svc
        .token(req_with_proof(&refresh, Some(&pr)))
        .await
        .unwrap();
    assert_eq!(resp.token_type, "DPoP");
}
