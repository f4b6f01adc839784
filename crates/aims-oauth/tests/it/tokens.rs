//! Client credentials with private_key_jwt, the token rules, introspection and
//! revocation.

use aims_core::Clock as _;
use aims_crypto::{Algorithm, Jwks, Signer as _, SigningKey};
use aims_jose::client_assertion::{self, ASSERTION_TYPE, ClientAssertionClaims};
use aims_jose::{Audience, access_token};
use aims_oauth::introspect::Revoked;
use aims_oauth::{ErrorCode, Params};

use super::common::*;

struct Agent {
    key: SigningKey,
}

impl Agent {
    fn new() -> Self {
        Self {
            key: SigningKey::generate(Algorithm::ES256).unwrap(),
        }
    }

    fn client(&self, extra: serde_json::Value) -> serde_json::Value {
        let mut c = serde_json::json!({
            "client_id": "agent-a",
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": Jwks { keys: vec![self.key.public_jwk().clone()] },
            "grant_types": ["client_credentials"],
            "scope": "api:read api:write",
            "resources": [API, "https://other-api.example.test/"]
        });
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    }

    fn assertion(&self, aud: &str) -> String {
        let mut claims = ClientAssertionClaims::new("agent-a", ISSUER, T0, 60).unwrap();
        claims.aud = Audience::One(aud.to_owned());
        client_assertion::create(&claims, &self.key).unwrap()
    }
}

fn cc<'a>(assertion: &'a str, extra: &[(&'a str, &'a str)]) -> Params {
    let mut p = vec![
        ("grant_type", "client_credentials"),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", assertion),
        ("resource", API),
        ("scope", "api:read"),
    ];
    for (k, v) in extra {
        p.retain(|(key, _)| key != k);
        if !v.is_empty() {
            p.push((k, v));
        }
    }
    Params::from_pairs(p)
}

#[tokio::test]
async fn client_credentials_with_private_key_jwt_issues_an_rfc9068_token() {
    let agent = Agent::new();
    let h = harness(vec![agent.client(serde_json::json!({}))]).await;
    let a = agent.assertion(ISSUER);
    let (resp, issued) = h.svc.token(req(&cc(&a, &[]))).await.unwrap();
    assert_eq!(resp.token_type, "Bearer");
    assert_eq!(resp.expires_in, 300);
    let at = access_token::Validator::new(h.svc.clock().clone(), ISSUER, API)
        .validate(&resp.access_token, h.svc.keys().verifier().as_ref())
        .unwrap();
    assert_eq!(at.claims.client_id, "agent-a");
    assert_eq!(at.claims.sub, "agent-a");
    assert_eq!(at.claims.scope.to_string(), "api:read");
    assert_eq!(issued.audience, vec![API.to_owned()]);
    assert_eq!(issued.binding, "bearer");

    // The assertion's jti is single use.
    let e = h.svc.token(req(&cc(&a, &[]))).await.unwrap_err();
    assert_eq!(e.error.code, ErrorCode::InvalidClient);
}

#[tokio::test]
async fn each_token_rule_has_its_error() {
    let agent = Agent::new();
    let h = harness(vec![agent.client(serde_json::json!({})), public_client()]).await;
    let cases: Vec<(&str, Params, ErrorCode)> = vec![
        (
            "aud = token endpoint",
            cc(&agent.assertion(&format!("{ISSUER}/oauth/token")), &[]),
            ErrorCode::InvalidClient,
        ),
        (
            "unknown resource",
            cc(
                &agent.assertion(ISSUER),
                &[("resource", "https://evil.example/")],
            ),
            ErrorCode::InvalidTarget,
        ),
        (
            "resource with fragment",
            cc(
                &agent.assertion(ISSUER),
                &[("resource", "https://api.example.test/#x")],
            ),
            ErrorCode::InvalidTarget,
        ),
        (
            "no resource, two registered",
            cc(&agent.assertion(ISSUER), &[("resource", "")]),
            ErrorCode::InvalidTarget,
        ),
        (
            "scope not allowed",
            cc(&agent.assertion(ISSUER), &[("scope", "admin")]),
            ErrorCode::InvalidScope,
        ),
        (
            "grant not allowed",
            cc(
                &agent.assertion(ISSUER),
                &[("grant_type", "refresh_token"), ("refresh_token", "x")],
            ),
            ErrorCode::UnauthorizedClient,
        ),
        (
            "unknown grant",
            cc(&agent.assertion(ISSUER), &[("grant_type", "password")]),
            ErrorCode::UnsupportedGrantType,
        ),
        (
            "assertion type only",
            Params::from_pairs([
                ("grant_type", "client_credentials"),
                ("client_assertion_type", ASSERTION_TYPE),
            ]),
            ErrorCode::InvalidRequest,
        ),
        (
            "unknown assertion type",
            cc(
                &agent.assertion(ISSUER),
                &[("client_assertion_type", "urn:x")],
            ),
            ErrorCode::InvalidClient,
        ),
        (
            "public client",
            Params::from_pairs([("grant_type", "client_credentials"), ("client_id", "app")]),
            ErrorCode::UnauthorizedClient,
        ),
        (
            "no client at all",
            Params::from_pairs([("grant_type", "client_credentials")]),
            ErrorCode::InvalidClient,
        ),
        (
            "RAR without types",
            cc(
                &agent.assertion(ISSUER),
                &[("authorization_details", "[{\"type\":\"x\"}]")],
            ),
            ErrorCode::InvalidAuthorizationDetails,
        ),
    ];
    for (name, params, code) in cases {
        let e = h.svc.token(req(&params)).await.unwrap_err();
        assert_eq!(e.error.code, code, "{name}: {e:?}");
        assert_eq!(
            e.error.code.status(),
            if code == ErrorCode::InvalidClient {
                401
            } else {
                400
            }
        );
    }
    // The same client, right request: works (the rules above were the only difference).
    h.svc
        .token(req(&cc(&agent.assertion(ISSUER), &[])))
        .await
        .unwrap();
}

#[tokio::test]
async fn dpop_bound_client_credentials_and_the_dpop_requirement() {
    let agent = Agent::new();
    let h = harness(vec![
        agent.client(serde_json::json!({"dpop_bound_access_tokens": true})),
    ])
    .await;
    let e = h
        .svc
        .token(req(&cc(&agent.assertion(ISSUER), &[])))
        .await
        .unwrap_err();
    assert_eq!(e.error.code, ErrorCode::InvalidRequest);
    let dpop_key = SigningKey::generate(Algorithm::ES256).unwrap();
    let proof = post_proof(&dpop_key, "/oauth/token", None);
    let a = agent.assertion(ISSUER);
    let p = cc(&a, &[]);
    let (resp, issued) = h.svc.token(req_with_proof(&p, Some(&proof))).await.unwrap();
    assert_eq!(resp.token_type, "DPoP");
    assert_eq!(issued.binding, "dpop");
    // A proof for another URI is refused.
    let bad = post_proof(&dpop_key, "/other", None);
    let a = agent.assertion(ISSUER);
    let p = cc(&a, &[]);
    let e = h
        .svc
        .token(req_with_proof(&p, Some(&bad)))
        .await
        .unwrap_err();
    assert_eq!(e.error.code, ErrorCode::InvalidDpopProof);
}

#[tokio::test]
async fn introspection_and_revocation_of_jwt_and_opaque_tokens() {
    let agent = Agent::new();
    let peer_key = SigningKey::generate(Algorithm::ES256).unwrap();
    for format in ["jwt", "opaque"] {
        let h = harness(vec![
            agent.client(serde_json::json!({"access_token_format": format})),
            // Another agent allowed to ask tokens for the same resource: that does
            // not let it read agent-a's tokens.
            serde_json::json!({
                "client_id": "agent-b",
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks": Jwks { keys: vec![peer_key.public_jwk().clone()] },
                "grant_types": ["client_credentials"],
                "scope": "api:read",
                "resources": [API]
            }),
            // A public client for the same resource: no introspection for it.
            serde_json::json!({
                "client_id": "public-rs",
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code"],
                "redirect_uris": ["https://rs.example.test/cb"],
                "resources": [API]
            }),
        ])
        .await;
        let (resp, _) = h
            .svc
            .token(req(&cc(&agent.assertion(ISSUER), &[])))
            .await
            .unwrap();
        let tok = resp.access_token.as_str();
        // RFC 7662 §2.1: the endpoint needs an authenticated caller.
        let public = Params::from_pairs([("client_id", "public-rs"), ("token", tok)]);
        let e = h.svc.introspect(req(&public)).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidClient, "{format}");
        assert!(h.svc.introspect_jwt(req(&public)).await.is_err());
        let peer_assertion = client_assertion::create(
            &ClientAssertionClaims::new("agent-b", ISSUER, T0, 60).unwrap(),
            &peer_key,
        )
        .unwrap();
        let peer = Params::from_pairs([
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", peer_assertion.as_str()),
            ("token", tok),
        ]);
        assert_eq!(
            h.svc.introspect(req(&peer)).await.unwrap(),
            serde_json::json!({"active": false}),
            "{format}: another agent of the same resource"
        );
        let rs = || introspection(T0, tok);
        let body = h.svc.introspect(req(&rs())).await.unwrap();
        assert_eq!(body["active"], true, "{format}");
        assert_eq!(body["client_id"], "agent-a");
        assert_eq!(body["scope"], "api:read");
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["iss"], ISSUER);
        // RFC 9701 form.
        let (jwt, query) = h.svc.introspect_jwt(req(&rs())).await.unwrap();
        assert_eq!(jwt.split('.').count(), 3);
        // What the audit log gets: the caller, and the token's claims.
        assert_eq!(query.caller.client.id(), "rs");
        assert_eq!(
            query.active_claims().map(|c| c.client_id.as_str()),
            Some("agent-a")
        );
        // Revoked by its holder (a fresh assertion each time): inactive from then on.
        let revoke = || async {
            let a = agent.assertion(ISSUER);
            let form = cc(
                &a,
                &[
                    ("token", tok),
                    ("grant_type", ""),
                    ("resource", ""),
                    ("scope", ""),
                ],
            );
            h.svc.revoke(req(&form)).await.unwrap()
        };
        let revocation = revoke().await;
        assert_eq!(revocation.revoked, Revoked::AccessToken, "{format}");
        if format == "jwt" {
            assert_eq!(revocation.audience, [API]);
        }
        let body = h.svc.introspect(req(&rs())).await.unwrap();
        assert_eq!(body, serde_json::json!({"active": false}), "{format}");
        let (text, query) = h.svc.introspect_json(req(&rs())).await.unwrap();
        assert_eq!(&*text, r#"{"active":false}"#);
        assert!(query.active_claims().is_none());
        // Revoking it again revokes nothing (and still succeeds, RFC 7009 §2.2).
        let again = revoke().await;
        assert_eq!(again.revoked, Revoked::Nothing, "{format}");
        // Garbage and expired tokens are just inactive.
        let garbage = introspection(T0, "not-a-token");
        assert_eq!(
            h.svc.introspect(req(&garbage)).await.unwrap()["active"],
            false
        );
    }
}

/// Introspection remembers verified JWT access tokens: a revocation through this service
/// is seen at once, one written to the shared store by another node within the recheck
/// interval, and expiry on every call.
#[tokio::test]
async fn introspection_cache_follows_revocation_and_expiry() {
    let agent = Agent::new();
    let revoke_in_store = |h: &Harness, tok: &str| {
        let claims = aims_jose::Jws::unverified_claims(tok).unwrap();
        let jti = claims["jti"].as_str().unwrap().to_owned();
        let store = h.store.clone();
        async move {
            let handle = aims_crypto::sha256_b64url(format!("at-jti:{jti}"));
            store
                .put_grant(&aims_store::NewGrant {
                    handle: handle.clone(),
                    kind: aims_store::GrantKind::AccessToken,
                    client_id: "agent-a".into(),
                    subject: None,
                    family: jti,
                    expires_at: T0 + 3600,
                    created_at: T0,
                    data: "{}".into(),
                })
                .await
                .unwrap();
            store.revoke_grant(&handle).await.unwrap();
        }
    };
    let active = |v: serde_json::Value| v["active"] == true;

    for (recheck, other_node_seen) in [
        (std::time::Duration::ZERO, true),
        (std::time::Duration::from_secs(3600), false),
    ] {
        let h = harness_with(vec![agent.client(serde_json::json!({}))], |s| {
            s.introspection_cache(100, recheck)
        })
        .await;
        let mut tokens = Vec::new();
        for _ in 0..3 {
            let (resp, _) = h
                .svc
                .token(req(&cc(&agent.assertion(ISSUER), &[])))
                .await
                .unwrap();
            tokens.push(resp.access_token);
        }
        let introspect = |tok: &str| {
            let p = introspection(h.clock.now(), tok);
            let svc = &h.svc;
            async move { svc.introspect(req(&p)).await.unwrap() }
        };
        // Same answer twice (the second from the cache).
        let first = introspect(&tokens[0]).await;
        assert!(active(first.clone()));
        assert_eq!(introspect(&tokens[0]).await, first);
        assert!(active(introspect(&tokens[1]).await));

        // Another node revokes token 0 in the shared store.
        revoke_in_store(&h, &tokens[0]).await;
        assert_eq!(
            !active(introspect(&tokens[0]).await),
            other_node_seen,
            "recheck {recheck:?}"
        );

        // Revoked through this service: inactive at once, whatever the interval.
        assert!(active(introspect(&tokens[2]).await));
        let a = agent.assertion(ISSUER);
        let revoke = cc(
            &a,
            &[
                ("token", tokens[2].as_str()),
                ("grant_type", ""),
                ("resource", ""),
                ("scope", ""),
            ],
        );
        h.svc.revoke(req(&revoke)).await.unwrap();
        assert!(!active(introspect(&tokens[2]).await));

        // Expiry is checked on every call, cached or not.
        assert!(active(introspect(&tokens[1]).await));
        h.clock.advance(3600);
        assert!(!active(introspect(&tokens[1]).await));
    }

    // A full cache (here of one token) still answers for every token.
    let h = harness_with(vec![agent.client(serde_json::json!({}))], |s| {
        s.introspection_cache(1, std::time::Duration::from_secs(3600))
    })
    .await;
    for _ in 0..2 {
        let (resp, _) = h
            .svc
            .token(req(&cc(&agent.assertion(ISSUER), &[])))
            .await
            .unwrap();
        let p = introspection(h.clock.now(), resp.access_token.as_str());
        assert!(active(h.svc.introspect(req(&p)).await.unwrap()));
    }
}

#[tokio::test]
async fn jwt_bearer_grant_from_a_trusted_issuer() {
    use aims_jose::StaticKeys;
    const IDP: &str = "https://idp.example.test";
    let agent = Agent::new();
    let idp_key = SigningKey::generate(Algorithm::ES256)
        .unwrap()
        .with_kid("idp-1");
    let mut keys = StaticKeys::new();
    keys.add_key(IDP, Some("idp-1".into()), idp_key.verifying_key().clone());
    let keys: std::sync::Arc<dyn aims_jose::KeyResolver> = std::sync::Arc::new(keys);
    let h = harness_with(
        vec![agent.client(serde_json::json!({
            "grant_types": ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
        }))],
        |s| s.jwt_grant_issuers(vec![IDP.to_owned()], keys),
    )
    .await;
    let grant = |iss: &str, jti: &str| {
        let claims = serde_json::json!({
            "iss": iss, "sub": "alice", "aud": ISSUER, "exp": T0 + 300, "iat": T0,
            "jti": jti, "acr": "urn:aims:acr:mfa"
        });
        aims_jose::sign(
            &aims_jose::HeaderSpec {
                typ: Some("JWT"),
                kid: true,
                jwk: false,
            },
            &claims,
            &idp_key,
        )
        .unwrap()
    };
    let run_for = |assertion: String, resource: &'static str| {
        let svc = &h.svc;
        let client_assertion = agent.assertion(ISSUER);
        async move {
            let p = Params::from_pairs([
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.as_str()),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", client_assertion.as_str()),
                ("resource", resource),
            ]);
            svc.token(req(&p)).await
        }
    };
    let run = |assertion: String| run_for(assertion, API);
    // A refused request (here a resource the client may not target) does not use the
    // assertion up: the same assertion then succeeds.
    let first = grant(IDP, "j1");
    assert_eq!(
        run_for(first.clone(), "https://not-allowed.example.test/")
            .await
            .unwrap_err()
            .error
            .code,
        ErrorCode::InvalidTarget
    );
    let (resp, issued) = run(first).await.unwrap();
    assert!(resp.refresh_token.is_none());
    assert_eq!(issued.subject.as_deref(), Some("alice"));
    let at = access_token::Validator::new(h.svc.clock().clone(), ISSUER, API)
        .validate(&resp.access_token, h.svc.keys().verifier().as_ref())
        .unwrap();
    assert_eq!(
        (at.claims.sub.as_str(), at.claims.client_id.as_str()),
        ("alice", "agent-a")
    );
    assert_eq!(at.claims.acr.as_deref(), Some("urn:aims:acr:mfa"));
    // Replayed assertion, untrusted issuer: invalid_grant.
    assert_eq!(
        run(grant(IDP, "j1")).await.unwrap_err().error.code,
        ErrorCode::InvalidGrant
    );
    assert_eq!(
        run(grant("https://evil.example", "j2"))
            .await
            .unwrap_err()
            .error
            .code,
        ErrorCode::InvalidGrant
    );
    // An assertion naming another client (`client_id`) is not for this one.
    let for_other = aims_jose::sign(
        &aims_jose::HeaderSpec {
            typ: Some("JWT"),
            kid: true,
            jwk: false,
        },
        &serde_json::json!({
            "iss": IDP, "sub": "alice", "aud": ISSUER, "exp": T0 + 300, "iat": T0,
            "jti": "j3", "client_id": "agent-b"
        }),
        &idp_key,
    )
    .unwrap();
    let e = run(for_other).await.unwrap_err();
    assert_eq!(e.error.code, ErrorCode::InvalidGrant);
    assert!(
        e.error.description.contains("client_id"),
        "{}",
        e.error.description
    );
}

/// RFC 6749 §5.2: with no trusted assertion issuer, the JWT bearer grant is not
/// supported at all (`unsupported_grant_type`, not `invalid_grant`).
#[tokio::test]
async fn jwt_bearer_grant_without_trusted_issuers_is_unsupported() {
    let agent = Agent::new();
    let h = harness(vec![agent.client(serde_json::json!({
        "grant_types": ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    }))])
    .await;
    let client_assertion = agent.assertion(ISSUER);
    let p = Params::from_pairs([
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("assertion", "a.b.c"),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", client_assertion.as_str()),
        ("resource", API),
    ]);
    assert_eq!(
        h.svc.token(req(&p)).await.unwrap_err().error.code,
        ErrorCode::UnsupportedGrantType
    );
}

#[tokio::test]
async fn spiffe_wit_attestation_authenticates_the_agent() {
    use aims_core::{TrustDomain, WorkloadId};
    use aims_jose::attestation::POP_TYP;
    use aims_jose::wit::{self, WitClaims};
    use aims_oauth::token::{ClientAttestation, TokenRequest};
    use aims_pki::{SpiffeBundle, TrustStore};

    const AGENT: &str = "spiffe://example.org/agent/w";
    let wit_ca = SigningKey::generate(Algorithm::ES256)
        .unwrap()
        .with_kid("wit-1");
    let mut bundle = SpiffeBundle::new(TrustDomain::new("example.org").unwrap());
    bundle
        .add_wit_authority(wit_ca.public_jwk().clone())
        .unwrap();
    let trust = std::sync::Arc::new(TrustStore::new());
    trust.insert(bundle);
    let h = harness_full(
        vec![serde_json::json!({
            "client_id": AGENT,
            "token_endpoint_auth_method": "spiffe_wit",
            "spiffe_id": "spiffe://example.org/agent/*",
            "grant_types": ["client_credentials"],
            "scope": "api:read",
            "resources": [API]
        })],
        trust,
        |s| s,
    )
    .await;
    let agent_key = SigningKey::generate(Algorithm::ES256).unwrap();
    let wit = wit::create(
        &WitClaims::new(
            WorkloadId::parse(AGENT).unwrap(),
            agent_key.public_jwk(),
            T0,
            600,
        )
        .unwrap(),
        &wit_ca,
    )
    .unwrap();
    let pop = |jti: &str, aud: &str, key: &SigningKey| {
        aims_jose::sign(
            &aims_jose::HeaderSpec {
                typ: Some(POP_TYP),
                kid: false,
                jwk: false,
            },
            &serde_json::json!({"iss": AGENT, "aud": aud, "iat": T0, "jti": jti}),
            key,
        )
        .unwrap()
    };
    let p = Params::from_pairs([
        ("grant_type", "client_credentials"),
        ("client_id", AGENT),
        ("resource", API),
    ]);
    let run = |pop: String| {
        let (svc, p, wit) = (&h.svc, &p, wit.clone());
        async move {
            svc.token(TokenRequest {
                params: p,
                tls: None,
                basic_auth: None,
                dpop: None,
                attestation: Some(ClientAttestation {
                    attestation: &wit,
                    pop: &pop,
                }),
            })
            .await
        }
    };
    let (resp, issued) = run(pop("p1", ISSUER, &agent_key)).await.unwrap();
    assert_eq!(issued.agent, AGENT);
    let at = access_token::Validator::new(h.svc.clock().clone(), ISSUER, API)
        .validate(&resp.access_token, h.svc.keys().verifier().as_ref())
        .unwrap();
    assert_eq!(at.claims.client_id, AGENT);
    // Replayed PoP, PoP for another audience, PoP by another key: invalid_client.
    for bad in [
        pop("p1", ISSUER, &agent_key),
        pop("p2", &format!("{ISSUER}/oauth/token"), &agent_key),
        pop(
            "p3",
            ISSUER,
            &SigningKey::generate(Algorithm::ES256).unwrap(),
        ),
    ] {
        assert_eq!(
            run(bad).await.unwrap_err().error.code,
            ErrorCode::InvalidClient
        );
    }
}
