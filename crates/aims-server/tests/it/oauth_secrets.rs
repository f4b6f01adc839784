//! Client keys by `jwks_uri` (served by a tiny HTTP server in the test) and legacy
//! client secrets (`[oauth] allow_client_secrets`), against the real server.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aims_core::{Clock as _, SystemClock};
use aims_crypto::{Algorithm, Jwks, Signer as _, SigningKey};
use aims_jose::client_assertion::{self, ClientAssertionClaims};
use aims_server::api::{AuthMethod, ClientMetadata};
use aims_server::testkit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::Value;

use crate::oauth::{As, error_of, pkjwt_client, start};

/// What the test's key server answers.
#[derive(Clone)]
pub(crate) enum Answer {
    Keys(Jwks),
    Raw(String),
}

/// A tiny server publishing a JWK set on 127.0.0.1 that the test can change.
pub(crate) struct KeyServer {
    pub(crate) url: String,
    answer: Arc<Mutex<Answer>>,
    pub(crate) hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl KeyServer {
    pub(crate) async fn start(answer: Answer) -> Self {
        let answer = Arc::new(Mutex::new(answer));
        let hits = Arc::new(AtomicUsize::new(0));
        let (a, h) = (answer.clone(), hits.clone());
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let (a, h) = (a.clone(), h.clone());
                async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    let body = match a.lock().unwrap().clone() {
                        Answer::Keys(j) => serde_json::to_string(&j).unwrap(),
                        Answer::Raw(s) => s,
                    };
                    (StatusCode::OK, [("content-type", "application/json")], body).into_response()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url,
            answer,
            hits,
            task,
        }
    }

    pub(crate) fn set(&self, a: Answer) {
        *self.answer.lock().unwrap() = a;
    }
}

impl Drop for KeyServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The public JWK set of `key` (its `kid` is its thumbprint, as in its assertions).
fn keys(key: &SigningKey) -> Jwks {
    Jwks {
        keys: vec![key.public_jwk().clone()],
    }
}

fn uri_client(id: &str, uri: &str) -> ClientMetadata {
    let dummy = SigningKey::generate(Algorithm::ES256).unwrap();
    let mut m = pkjwt_client(id, &dummy);
    m.jwks = None;
    m.jwks_uri = Some(uri.to_owned());
    m
}

fn assertion(issuer: &str, client_id: &str, key: &SigningKey, iat: i64) -> String {
    let claims = ClientAssertionClaims::new(client_id, issuer, iat, 60).unwrap();
    client_assertion::create(&claims, key).unwrap()
}

#[tokio::test]
async fn jwks_uri_client_gets_a_token_and_rotation_is_followed() {
    let t0 = SystemClock.now();
    let clock = aims_core::ManualClock::new(t0);
    let ts = testkit::start_with("example.org", Arc::new(clock.clone()), |c| {
        c.oauth.allow_http_jwks_uri = true;
    })
    .await
    .unwrap();
    let a = As {
        base: format!("http://{}", ts.server.endpoints().http),
        issuer: ts.server.endpoints().oauth_issuer.clone().unwrap(),
        http: reqwest::Client::new(),
        ts,
    };
    let k1 = SigningKey::generate(Algorithm::ES256).unwrap();
    let ks = KeyServer::start(Answer::Keys(keys(&k1))).await;
    a.ts.admin()
        .create_client(&uri_client("agent-u", &ks.url))
        .await
        .unwrap();

    let r = a
        .token(&assertion(&a.issuer, "agent-u", &k1, t0), &[], &[])
        .await;
    assert_eq!(r.status(), 200);
    // Cached: a second assertion with the same key does not fetch again.
    let r = a
        .token(&assertion(&a.issuer, "agent-u", &k1, t0), &[], &[])
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(ks.hits.load(Ordering::SeqCst), 1);

    // The client rotates to k2; after the minimum refresh interval an assertion naming
    // k2 makes the server fetch again.
    let k2 = SigningKey::generate(Algorithm::ES256).unwrap();
    ks.set(Answer::Keys(keys(&k2)));
    clock.set(t0 + 11);
    let r = a
        .token(&assertion(&a.issuer, "agent-u", &k2, t0 + 11), &[], &[])
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(ks.hits.load(Ordering::SeqCst), 2);
    // The retired key no longer verifies.
    let r = a
        .token(&assertion(&a.issuer, "agent-u", &k1, t0 + 11), &[], &[])
        .await;
    let (status, error, _) = error_of(r).await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));
    // Unknown kids cannot make the server fetch more than once per interval.
    assert_eq!(ks.hits.load(Ordering::SeqCst), 2);
    a.ts.server.shutdown().await;
}

#[tokio::test]
async fn bad_jwks_uris_give_invalid_client() {
    let a = start(|c| c.oauth.allow_http_jwks_uri = true).await;
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let now = SystemClock.now();

    // Unreachable: a port nothing listens on.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}/jwks", closed.local_addr().unwrap());
    drop(closed);
    // Oversized: more than 64 KiB.
    let mut big = keys(&key);
    big.keys[0]
        .extra
        .insert("pad".into(), Value::String("x".repeat(70 * 1024)));
    let huge = KeyServer::start(Answer::Keys(big)).await;
    // Invalid: not JSON, and a private key.
    let garbage = KeyServer::start(Answer::Raw("<html>no</html>".into())).await;
    let mut private = keys(&key);
    private.keys[0]
        .extra
        .insert("d".into(), Value::String("AAAA".into()));
    let private = KeyServer::start(Answer::Keys(private)).await;

    for (id, uri) in [
        ("dead", dead.as_str()),
        ("huge", huge.url.as_str()),
        ("garbage", garbage.url.as_str()),
        ("private", private.url.as_str()),
    ] {
        a.ts.admin()
            .create_client(&uri_client(id, uri))
            .await
            .unwrap();
        let r = a
            .token(&assertion(&a.issuer, id, &key, now), &[], &[])
            .await;
        let (status, error, _) = error_of(r).await;
        assert_eq!((status, error.as_str()), (401, "invalid_client"), "{id}");
    }
    a.ts.server.shutdown().await;
}

#[tokio::test]
async fn http_jwks_uri_is_refused_by_default() {
    let a = start(|_| {}).await;
    let e =
        a.ts.admin()
            .create_client(&uri_client("agent-h", "http://127.0.0.1:9/jwks"))
            .await
            .unwrap_err();
    assert_eq!(e.status(), Some(400));
    assert!(e.to_string().contains("https"), "{e}");
    a.ts.server.shutdown().await;
}

fn secret_client(id: &str, method: AuthMethod) -> ClientMetadata {
    let dummy = SigningKey::generate(Algorithm::ES256).unwrap();
    let mut m = pkjwt_client(id, &dummy);
    m.jwks = None;
    m.token_endpoint_auth_method = method;
    m
}

fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        aims_crypto::b64::encode_std(format!("{}:{}", enc(id), enc(secret)))
    )
}

#[tokio::test]
async fn client_secrets_are_refused_when_disabled() {
    let a = start(|_| {}).await;
    let metadata: Value = a
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();
    let methods = metadata["token_endpoint_auth_methods_supported"].to_string();
    assert!(!methods.contains("client_secret"), "{methods}");
    for m in [AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost] {
        let e =
            a.ts.admin()
                .create_client(&secret_client("legacy", m))
                .await
                .unwrap_err();
        assert_eq!(e.status(), Some(400));
        assert!(e.to_string().contains("allow_client_secrets"), "{e}");
    }
    let r = a
        .post(
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            &[("authorization", &basic("legacy", "whatever"))],
        )
        .await;
    let (status, error, headers) = error_of(r).await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));
    assert!(headers.contains_key("www-authenticate"));
    a.ts.server.shutdown().await;
}

#[tokio::test]
async fn legacy_secrets_basic_and_post_when_enabled() {
    let a = start(|c| c.oauth.allow_client_secrets = true).await;
    let metadata: Value = a
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();
    for field in [
        "token_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
    ] {
        let m = metadata[field].to_string();
        assert!(
            m.contains("client_secret_basic") && m.contains("client_secret_post"),
            "{m}"
        );
    }
    let admin = a.ts.admin();

    // An operator-chosen secret (hash) is refused.
    let mut chosen = secret_client("chosen", AuthMethod::ClientSecretBasic);
    chosen.client_secret_hash = Some(format!("sha256:{}", aims_crypto::sha256_b64url("pw")));
    assert_eq!(
        admin.create_client(&chosen).await.unwrap_err().status(),
        Some(400)
    );

    let created = admin
        .create_client(&secret_client("legacy-b", AuthMethod::ClientSecretBasic))
        .await
        .unwrap();
    assert!(created.legacy_secret);
    assert!(created.metadata.client_secret_hash.is_none());
    let secret = created.client_secret.clone().unwrap();
    let secret = secret.expose().to_owned();
    assert_eq!(aims_crypto::b64::decode_url(&secret).unwrap().len(), 32);
    assert!(!format!("{created:?}").contains(&secret));
    // Shown flagged, never with the secret again.
    let shown = admin.get_client("legacy-b").await.unwrap();
    assert!(shown.legacy_secret && shown.client_secret.is_none());
    let listed = admin.list_clients().await.unwrap();
    assert!(
        listed
            .iter()
            .all(|c| c.legacy_secret && c.client_secret.is_none())
    );

    // client_secret_basic gets a token.
    let r = a
        .post(
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            &[("authorization", &basic("legacy-b", &secret))],
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();

    // A wrong secret: 401 with WWW-Authenticate: Basic.
    let r = a
        .post(
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            &[("authorization", &basic("legacy-b", &format!("{secret}x")))],
        )
        .await;
    let (status, error, headers) = error_of(r).await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));
    let www = headers["www-authenticate"].to_str().unwrap();
    assert!(www.starts_with("Basic"), "{www}");

    // Two methods at once.
    let r = a
        .post(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_secret", &secret),
            ],
            &[("authorization", &basic("legacy-b", &secret))],
        )
        .await;
    let (status, error, _) = error_of(r).await;
    assert_eq!((status, error.as_str()), (400, "invalid_request"));

    // Introspection with Basic auth.
    let r = a
        .post(
            "/oauth/introspect",
            &[("token", &token)],
            &[("authorization", &basic("legacy-b", &secret))],
        )
        .await;
    assert_eq!(r.status(), 200);
    let i: Value = r.json().await.unwrap();
    assert_eq!(i["active"], true, "{i}");
    // Revocation with Basic auth.
    let r = a
        .post(
            "/oauth/revoke",
            &[("token", &token)],
            &[("authorization", &basic("legacy-b", &secret))],
        )
        .await;
    assert_eq!(r.status(), 200);

    // client_secret_post.
    let created = admin
        .create_client(&secret_client("legacy-p", AuthMethod::ClientSecretPost))
        .await
        .unwrap();
    let post_secret = created.client_secret.unwrap().expose().to_owned();
    let r = a
        .post(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "legacy-p"),
                ("client_secret", &post_secret),
            ],
            &[],
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = a
        .post(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "legacy-p"),
                ("client_secret", &secret),
            ],
            &[],
        )
        .await;
    let (status, error, _) = error_of(r).await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));

    // An update keeps the stored secret (none is returned).
    let mut m = shown.metadata.clone();
    m.scope = "api:read".into();
    let updated = admin.update_client(&m, Some(shown.revision)).await.unwrap();
    assert!(updated.legacy_secret && updated.client_secret.is_none());
    let r = a
        .post(
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            &[("authorization", &basic("legacy-b", &secret))],
        )
        .await;
    assert_eq!(r.status(), 200);

    // Rotation: a new secret, returned once; the old one is refused at once.
    let rotated = admin.rotate_client_secret("legacy-b").await.unwrap();
    assert!(rotated.legacy_secret && rotated.metadata.client_secret_hash.is_none());
    assert_eq!(rotated.revision, updated.revision + 1);
    assert_eq!(rotated.metadata.scope, "api:read", "the rest is unchanged");
    let new_secret = rotated.client_secret.unwrap().expose().to_owned();
    assert_ne!(new_secret, secret);
    let token_with = |s: String| {
        let a = &a;
        async move {
            a.post(
                "/oauth/token",
                &[("grant_type", "client_credentials")],
                &[("authorization", &basic("legacy-b", &s))],
            )
            .await
        }
    };
    let (status, error, _) = error_of(token_with(secret.clone()).await).await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));
    assert_eq!(token_with(new_secret).await.status(), 200);
    assert!(
        admin
            .get_client("legacy-b")
            .await
            .unwrap()
            .client_secret
            .is_none()
    );
    // Nothing to rotate on a key-based client, nor on an unknown one.
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    admin
        .create_client(&pkjwt_client("app", &key))
        .await
        .unwrap();
    let e = admin.rotate_client_secret("app").await.unwrap_err();
    assert!(e.to_string().contains("not a secret"), "{e}");
    let e = admin.rotate_client_secret("nobody").await.unwrap_err();
    assert!(e.to_string().contains("nobody"), "{e}");
    a.ts.server.shutdown().await;
}

/// Turning the flag off later: the stored legacy client is refused with a clear error.
#[tokio::test]
async fn legacy_clients_are_refused_once_secrets_are_disabled() {
    let dir = testkit::tempdir().unwrap();
    let mut c = testkit::config("example.org", dir.path()).unwrap();
    c.oauth.allow_client_secrets = true;
    let server = aims_server::server::start(c.clone(), Arc::new(SystemClock))
        .await
        .unwrap();
    let admin = aims_server::client::AdminClient::new(&server.endpoints().admin_socket);
    let created = admin
        .create_client(&secret_client("legacy-b", AuthMethod::ClientSecretBasic))
        .await
        .unwrap();
    let secret = created.client_secret.unwrap().expose().to_owned();
    server.shutdown().await;

    c.oauth.allow_client_secrets = false;
    let server = aims_server::server::start(c, Arc::new(SystemClock))
        .await
        .unwrap();
    let base = format!("http://{}", server.endpoints().http);
    let r = reqwest::Client::new()
        .post(format!("{base}/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", basic("legacy-b", &secret))
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    let (status, error, _) = error_of(r).await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));
    let r = reqwest::Client::new()
        .post(format!("{base}/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&client_id=legacy-b")
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("disabled"),
        "{body}"
    );
    // Nor is its secret rotated: the way out is a key-based method.
    let admin = aims_server::client::AdminClient::new(&server.endpoints().admin_socket);
    let e = admin.rotate_client_secret("legacy-b").await.unwrap_err();
    assert!(e.to_string().contains("allow_client_secrets"), "{e}");
    server.shutdown().await;
}
