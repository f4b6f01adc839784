//! `aims client …` against a running `aims serve`, then a token for the client it made.

use aims_core::Clock as _;
use aims_crypto::{Algorithm, Jwks, Signer as _, SigningKey};
use aims_jose::client_assertion::{self, ASSERTION_TYPE, ClientAssertionClaims};

use crate::daemon::{Daemon, aims, write_config};

fn run(args: &[&str]) -> (i32, String, String) {
    let out = aims().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn client_commands_round_trip_and_the_client_gets_a_token() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let (code, out, _) = run(&["config", "check", config.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("OAuth authorization server: issuer http://127.0.0.1:0"),
        "{out}"
    );

    let d = Daemon::start(
        &["serve", "--config", config.to_str().unwrap()],
        dir.path(),
        &dir.path().join("server.log"),
    );
    assert!(
        d.banner.contains("OAuth issuer     http://127.0.0.1:"),
        "{}",
        d.banner
    );
    let sock = d.admin_socket.to_str().unwrap().to_owned();
    let s = sock.as_str();

    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let public = dir.path().join("pub.jwks");
    std::fs::write(
        &public,
        serde_json::to_string(&Jwks {
            keys: vec![key.public_jwk().clone()],
        })
        .unwrap(),
    )
    .unwrap();
    let p = public.to_str().unwrap();

    let (code, out, err) = run(&[
        "client",
        "create",
        "--admin-socket",
        s,
        "--client-id",
        "agent-a",
        "--jwks-file",
        p,
        "--grant-type",
        "client_credentials",
        "--scope",
        "api:read",
        "--resource",
        "https://api.example.test/",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let c: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        c["metadata"]["token_endpoint_auth_method"],
        "private_key_jwt"
    );
    assert_eq!(c["revision"], 1);

    let (code, out, err) = run(&[
        "client",
        "create",
        "--admin-socket",
        s,
        "--client-id",
        "agent-s",
        "--spiffe-id",
        "spiffe://example.org/agent/*",
        "--scope",
        "api:read api:write",
        "--resource",
        "https://api.example.test/",
        "--access-token-lifetime",
        "2m",
        "--dpop-required",
        "--token-format",
        "opaque",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("auth method     spiffe_jwt"), "{out}");
    assert!(out.contains("opaque, 2m, DPoP-bound"), "{out}");

    let (code, out, _) = run(&["client", "list", "--admin-socket", s]);
    assert_eq!(code, 0);
    assert!(out.contains("agent-a") && out.contains("agent-s"), "{out}");

    let (code, out, err) = run(&[
        "client",
        "update",
        "agent-a",
        "--admin-socket",
        s,
        "--scope",
        "api:read",
        "--scope",
        "api:write",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("scopes          api:read api:write"), "{out}");
    assert!(out.contains("revision        2"), "{out}");
    assert!(!out.contains("introspects"), "{out}");

    // A resource server that may introspect tokens for its API.
    let (code, out, err) = run(&[
        "client",
        "update",
        "agent-a",
        "--admin-socket",
        s,
        "--introspect-resource",
        "https://api.example.test/",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("introspects     https://api.example.test/"),
        "{out}"
    );
    let (code, _, err) = run(&[
        "client",
        "update",
        "agent-a",
        "--admin-socket",
        s,
        "--introspect-resource",
        "not a uri",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("absolute URI"), "{err}");

    let (code, out, _) = run(&["client", "show", "agent-a", "--admin-socket", s]);
    assert_eq!(code, 0);
    assert!(
        out.contains("private_key_jwt") && out.contains(key.kid()),
        "{out}"
    );
    assert!(out.contains("revision        3"), "{out}");

    // The client registered by the CLI gets a token.
    let issuer = d.http.clone();
    let now = aims_core::SystemClock.now();
    let claims = ClientAssertionClaims::new("agent-a", &issuer, now, 60).unwrap();
    let assertion = client_assertion::create(&claims, &key).unwrap();
    let body = format!(
        "grant_type=client_credentials&client_assertion_type={}&client_assertion={assertion}",
        ASSERTION_TYPE.replace(':', "%3A")
    );
    let r = reqwest::Client::new()
        .post(format!("{issuer}/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t: serde_json::Value = r.json().await.unwrap();
    assert_eq!(t["scope"], "api:read api:write");

    // Errors say what to do.
    let (code, _, err) = run(&["client", "create", "--admin-socket", s, "--client-id", "x"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--spiffe-id") && err.contains("--jwks-file"),
        "{err}"
    );
    let private = dir.path().join("private.jwk");
    let mut jwk = serde_json::to_value(key.public_jwk()).unwrap();
    jwk["d"] = "AAAA".into();
    std::fs::write(&private, jwk.to_string()).unwrap();
    let (code, _, err) = run(&[
        "client",
        "create",
        "--admin-socket",
        s,
        "--client-id",
        "x",
        "--jwks-file",
        private.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("PRIVATE key"), "{err}");
    let (code, _, err) = run(&[
        "client",
        "create",
        "--admin-socket",
        s,
        "--client-id",
        "agent-a",
        "--jwks-file",
        p,
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("already exists"), "{err}");
    let (code, _, err) = run(&[
        "client",
        "create",
        "--admin-socket",
        s,
        "--client-id",
        "y",
        "--spiffe-id",
        "spiffe://example.org/a*",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("spiffe_id"), "{err}");
    // Legacy secrets are off by default.
    let (code, _, err) = run(&[
        "client",
        "create",
        "--admin-socket",
        s,
        "--client-id",
        "legacy",
        "--auth-method",
        "client_secret_post",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("allow_client_secrets"), "{err}");

    let (code, out, _) = run(&["client", "delete", "agent-a", "--admin-socket", s]);
    assert_eq!(code, 0);
    assert!(out.contains("deleted client agent-a"), "{out}");
    let (code, _, err) = run(&["client", "show", "agent-a", "--admin-socket", s]);
    assert_eq!(code, 2);
    assert!(err.contains("not found"), "{err}");
}

/// Legacy secrets through the CLI: refused by default; with `[oauth]
/// allow_client_secrets = true`, `config check` warns, `client create` prints the
/// server-generated secret once, `list`/`show` flag the client, and the secret works
/// with HTTP Basic.
#[tokio::test]
async fn legacy_secret_clients_through_the_cli() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[oauth]\nallow_client_secrets = true\n");
    std::fs::write(&config, text).unwrap();
    let (code, out, _) = run(&["config", "check", config.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("warning: [oauth] allow_client_secrets = true"),
        "{out}"
    );

    let d = Daemon::start(
        &["serve", "--config", config.to_str().unwrap()],
        dir.path(),
        &dir.path().join("server.log"),
    );
    let sock = d.admin_socket.to_str().unwrap().to_owned();
    let s = sock.as_str();
    let (code, out, err) = run(&[
        "client",
        "create",
        "--admin-socket",
        s,
        "--client-id",
        "legacy-app",
        "--auth-method",
        "client_secret_basic",
        "--scope",
        "api:read",
        "--resource",
        "https://api.example.test/",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("client_secret_basic (LEGACY SECRET)"), "{out}");
    let secret = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("client secret"))
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(aims_crypto::b64::decode_url(&secret).unwrap().len(), 32);

    let (code, out, _) = run(&["client", "list", "--admin-socket", s]);
    assert_eq!(code, 0);
    assert!(out.contains("(legacy)") && !out.contains(&secret), "{out}");
    let (code, out, _) = run(&[
        "client",
        "show",
        "legacy-app",
        "--admin-socket",
        s,
        "--json",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["legacy_secret"], true);
    assert!(
        !out.contains(&secret) && !out.contains("client_secret_hash"),
        "{out}"
    );

    let issuer = d.http.clone();
    let basic = aims_crypto::b64::encode_std(format!("legacy-app:{secret}"));
    let r = reqwest::Client::new()
        .post(format!("{issuer}/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", format!("Basic {basic}"))
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // `client rotate-secret` prints a new secret once; the old one stops working.
    let (code, out, err) = run(&["client", "rotate-secret", "legacy-app", "--admin-socket", s]);
    assert_eq!(code, 0, "{err}");
    let rotated = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("client secret"))
        .map(|v| v.trim().to_owned())
        .unwrap();
    assert_ne!(rotated, secret);
    let token = |secret: &str| {
        let basic = aims_crypto::b64::encode_std(format!("legacy-app:{secret}"));
        reqwest::Client::new()
            .post(format!("{issuer}/oauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", format!("Basic {basic}"))
            .body("grant_type=client_credentials")
            .send()
    };
    assert_eq!(token(&secret).await.unwrap().status(), 401);
    assert_eq!(token(&rotated).await.unwrap().status(), 200);

    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
    assert!(!log.contains(&secret), "the secret reached the log");
    assert!(!log.contains(&rotated), "the new secret reached the log");
}
