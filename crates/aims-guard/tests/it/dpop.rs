//! DPoP (RFC 9449) at the resource server, and JWT-SVID bearer tokens.

use aims_crypto::{Algorithm, SigningKey};
use aims_jose::dpop::create_proof;
use serde_json::Value;

use crate::common::{AGENT, AUTHORITY, Env, app, client, problem_code, serve};

fn www(r: &reqwest::Response) -> String {
    r.headers()["www-authenticate"].to_str().unwrap().to_owned()
}

/// One of the response's `WWW-Authenticate` challenges is `scheme` with
/// `error="invalid_request"`.
fn assert_invalid_request(r: &reqwest::Response, scheme: &str) {
    let challenges: Vec<&str> = r
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        challenges
            .iter()
            .any(|c| c.starts_with(scheme) && c.contains("error=\"invalid_request\"")),
        "{challenges:?}"
    );
}

#[tokio::test]
async fn dpop_flow_and_rules() {
    let env = Env::new();
    let guard = env.guard();
    let addr = serve(app(&guard)).await;
    let url = format!("http://{addr}/whoami");
    let htu = format!("{AUTHORITY}/whoami");
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let at = env.access_token("user:alice", AGENT, &key);
    let send = |proof: String, at: String| {
        client()
            .get(&url)
            .header("authorization", format!("DPoP {at}"))
            .header("dpop", proof)
            .send()
    };

    // No nonce: use_dpop_nonce with a fresh DPoP-Nonce.
    let proof = create_proof(&key, "GET", &htu, Some(&at), None, env.now()).unwrap();
    let r = send(proof, at.clone()).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(www(&r).contains("error=\"use_dpop_nonce\""), "{}", www(&r));
    let nonce = r.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    assert_eq!(problem_code(r).await, "dpop-use-nonce");

    // With the nonce: accepted; agent = client_id, delegated subject = sub.
    let proof = create_proof(&key, "GET", &htu, Some(&at), Some(&nonce), env.now()).unwrap();
    let r = send(proof.clone(), at.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("dpop-nonce"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"], AGENT);
    assert_eq!(v["mechanism"], "dpop");
    assert_eq!(v["delegated"], "user:alice");

    // Replay of that proof.
    let r = send(proof, at.clone()).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(www(&r).contains("error=\"invalid_dpop_proof\""));
    assert_eq!(problem_code(r).await, "dpop-replayed");

    // Wrong htu: the address the client connected to, not the configured authority.
    let proof = create_proof(&key, "GET", &url, Some(&at), Some(&nonce), env.now()).unwrap();
    let r = send(proof, at.clone()).await.unwrap();
    assert!(www(&r).contains("error=\"invalid_dpop_proof\""));
    assert_eq!(problem_code(r).await, "dpop-htu-mismatch");

    // Token bound to another key than the proof's.
    let other = SigningKey::generate(Algorithm::ES256).unwrap();
    let other_at = env.access_token("user:alice", AGENT, &other);
    let proof = create_proof(&key, "GET", &htu, Some(&other_at), Some(&nonce), env.now()).unwrap();
    let r = send(proof, other_at).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(www(&r).contains("error=\"invalid_token\""));
    assert_eq!(problem_code(r).await, "dpop-binding-mismatch");

    // Invalid token: signed by a key the issuer resolver does not know.
    let mut bad = aims_jose::access_token::AccessTokenClaims::new(
        crate::common::AT_ISSUER,
        "user:alice",
        AGENT,
        AUTHORITY,
        env.now(),
        600,
    )
    .unwrap();
    bad.cnf = Some(
        aims_jose::access_token::Confirmation::dpop(aims_crypto::Signer::public_jwk(&key)).unwrap(),
    );
    let rogue = SigningKey::generate(Algorithm::ES256)
        .unwrap()
        .with_kid("at-1");
    let bad = aims_jose::access_token::issue(&bad, &rogue).unwrap();
    let proof = create_proof(&key, "GET", &htu, Some(&bad), Some(&nonce), env.now()).unwrap();
    let r = send(proof, bad).await.unwrap();
    assert!(www(&r).contains("error=\"invalid_token\""));
    assert_eq!(problem_code(r).await, "access-token-bad-signature");

    // A stale nonce (two rotations later) asks for a new one.
    env.clock
        .advance(2 * aims_guard::DEFAULT_NONCE_INTERVAL + 1);
    let at = env.access_token("user:alice", AGENT, &key);
    let proof = create_proof(&key, "GET", &htu, Some(&at), Some(&nonce), env.now()).unwrap();
    let r = send(proof, at).await.unwrap();
    assert!(www(&r).contains("error=\"use_dpop_nonce\""));
    assert_ne!(r.headers()["dpop-nonce"].to_str().unwrap(), nonce);
}

#[tokio::test]
async fn jwt_svid_bearer_is_accepted_and_checked() {
    let env = Env::new();
    let guard = env.guard();
    let addr = serve(app(&guard)).await;
    let url = format!("http://{addr}/whoami");
    let ok = env.jwt_svid(AGENT, AUTHORITY);
    let r = client().get(&url).bearer_auth(&ok).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"], AGENT);
    assert_eq!(v["mechanism"], "jwt-svid");
    let wrong = env.jwt_svid(AGENT, "https://elsewhere.example.test");
    let r = client().get(&url).bearer_auth(&wrong).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(www(&r).starts_with("Bearer error=\"invalid_token\""));
    assert_eq!(problem_code(r).await, "jwt-svid-audience-mismatch");
}

/// RFC 6750 section 3.1: a repeated or malformed `Authorization` field is answered 400
/// `invalid_request`, with a challenge per accepted OAuth scheme.
#[tokio::test]
async fn malformed_authorization_is_invalid_request_with_challenges() {
    let env = Env::new();
    let guard = env.guard();
    let addr = serve(app(&guard)).await;
    let url = format!("http://{addr}/whoami");
    let r = client()
        .get(&url)
        .header("authorization", "Bearer a")
        .header("authorization", "Bearer b")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_invalid_request(&r, "DPoP ");
    assert!(r.headers().contains_key("dpop-nonce"));
    // Not visible ASCII: the field cannot be read at all.
    let r = client()
        .get(&url)
        .header(
            "authorization",
            reqwest::header::HeaderValue::from_bytes(b"Bearer \xff").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_invalid_request(&r, "Bearer ");
}

/// Error descriptions quote parts of the presented token; whatever they hold, the
/// challenge stays a valid header of RFC 6750 characters.
#[tokio::test]
async fn challenges_survive_control_characters_in_the_token() {
    let env = Env::new();
    let guard = env.guard();
    let addr = serve(app(&guard)).await;
    let b64 = |v: &str| aims_crypto::b64::encode_url(v);
    let token = format!(
        "{}.{}.AA",
        b64(r#"{"alg":"\u0001\u00e9\"x","typ":"at+jwt"}"#),
        b64("{}")
    );
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let htu = format!("{AUTHORITY}/whoami");
    let proof = create_proof(
        &key,
        "GET",
        &htu,
        Some(&token),
        Some(&guard.dpop_nonce()),
        env.now(),
    )
    .unwrap();
    let r = client()
        .get(format!("http://{addr}/whoami"))
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", proof)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let c = www(&r);
    assert!(c.contains("error=\"invalid_token\""), "{c}");
    assert!(
        c.bytes().all(|b| (0x20..=0x7e).contains(&b)),
        "only printable ASCII: {c:?}"
    );
}
