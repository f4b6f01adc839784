//! The authorization code flow over HTTP (issue 5 part 4): `/oauth/authorize`, the login
//! and consent pages driven like a browser (forms parsed from the HTML and posted back,
//! the session cookie kept), PAR, the code exchange with the `oauth2` crate, refresh
//! rotation, and one test per RFC 9700 attack that applies.

use aims_crypto::{Algorithm, Signer as _, SigningKey, random_token, sha256_b64url};
use aims_jose::client_assertion::ASSERTION_TYPE;
use aims_server::api::{GrantType, NewUser};
use serde_json::Value;

use crate::oauth::{As, error_of, pkjwt_client, start};

const API: &str = "https://api.example.test/";
const REDIRECT: &str = "https://agent.example.test/cb";
const USER: &str = "alice";
const PASSWORD: &str = "alice's long password";

/// A browser: no automatic redirects, one session cookie kept by hand (the cookie jar
/// of the test; reqwest's `cookies` feature is not enabled in this workspace).
pub(crate) struct Browser {
    http: reqwest::Client,
    cookie: Option<String>,
}

/// What a page's form holds.
#[derive(Debug)]
pub(crate) struct Form {
    action: String,
    request: String,
    csrf: String,
}

/// Undoes askama's HTML escaping of attribute values.
fn unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&#34;", "\"")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#47;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
        .replace("&#38;", "&")
}

fn attr(html: &str, after: &str, name: &str) -> String {
    let start = html
        .find(after)
        .unwrap_or_else(|| panic!("{after} in {html}"));
    let rest = &html[start..];
    let key = format!("{name}=\"");
    let i = rest.find(&key).unwrap() + key.len();
    let j = rest[i..].find('"').unwrap();
    unescape(&rest[i..i + j])
}

impl Form {
    fn parse(html: &str) -> Form {
        Form {
            action: attr(html, "<form", "action"),
            request: attr(html, "name=\"request\"", "value"),
            csrf: attr(html, "name=\"csrf\"", "value"),
        }
    }
}

/// The `role="alert"` message of a page, if any.
fn alert(html: &str) -> Option<String> {
    let i = html.find("role=\"alert\">")? + "role=\"alert\">".len();
    let j = html[i..].find('<')?;
    Some(html[i..i + j].to_owned())
}

/// The query parameters of a redirect.
fn query(location: &str) -> std::collections::HashMap<String, String> {
    let q = location.split_once('?').map_or("", |x| x.1);
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

impl Browser {
    pub(crate) fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    fn keep_cookie(&mut self, r: &reqwest::Response) {
        if let Some(c) = r.headers().get("set-cookie") {
            let c = c.to_str().unwrap();
            self.cookie = Some(c.split(';').next().unwrap().to_owned());
        }
    }

    async fn get(&mut self, url: &str) -> reqwest::Response {
        let mut req = self.http.get(url);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let r = req.send().await.unwrap();
        self.keep_cookie(&r);
        r
    }

    async fn post(&mut self, url: &str, pairs: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(crate::oauth::form(pairs));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let r = req.send().await.unwrap();
        self.keep_cookie(&r);
        r
    }

    /// GET the authorization endpoint with `pairs`.
    async fn authorize(&mut self, a: &As, pairs: &[(&str, &str)]) -> reqwest::Response {
        let url = format!("{}/oauth/authorize?{}", a.base, crate::oauth::form(pairs));
        self.get(&url).await
    }

    /// The page answering a code request by `agent-a` with the PKCE `challenge`.
    async fn page(&mut self, a: &As, challenge: &str) -> String {
        self.authorize(a, &code_params("agent-a", challenge))
            .await
            .text()
            .await
            .unwrap()
    }

    /// Logged in by a first flow: the consent page of a second request, waiting.
    async fn consent_when_logged_in(&mut self, a: &As, challenge: &str) -> String {
        self.run_flow(a, &code_params("agent-a", challenge)).await;
        let consent = self.page(a, challenge).await;
        assert!(consent.contains("value=\"approve\""), "{consent}");
        consent
    }

    /// The login page of a code request by `agent-a` with the PKCE `challenge`.
    async fn login_page(&mut self, a: &As, challenge: &str) -> String {
        let r = self.authorize(a, &code_params("agent-a", challenge)).await;
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    }

    async fn login(&mut self, page: &str, user: &str, password: &str) -> reqwest::Response {
        let f = Form::parse(page);
        self.post(
            &f.action,
            &[
                ("request", &f.request),
                ("csrf", &f.csrf),
                ("username", user),
                ("password", password),
            ],
        )
        .await
    }

    async fn decide(&mut self, page: &str, decision: &str) -> reqwest::Response {
        let f = Form::parse(page);
        self.post(
            &f.action,
            &[
                ("request", &f.request),
                ("csrf", &f.csrf),
                ("decision", decision),
            ],
        )
        .await
    }

    /// Authorize, log in, approve: the redirect's query.
    async fn run_flow(
        &mut self,
        a: &As,
        pairs: &[(&str, &str)],
    ) -> std::collections::HashMap<String, String> {
        let r = self.authorize(a, pairs).await;
        assert_eq!(r.status(), 200);
        let page = r.text().await.unwrap();
        let page = if page.contains("name=\"password\"") {
            let r = self.login(&page, USER, PASSWORD).await;
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        } else {
            page
        };
        assert!(page.contains("value=\"approve\""), "{page}");
        let r = self.decide(&page, "approve").await;
        assert_eq!(r.status(), 303);
        query(r.headers()["location"].to_str().unwrap())
    }
}

/// A PKCE verifier and its S256 challenge.
pub(crate) fn pkce() -> (String, String) {
    let verifier = format!("{}{}", random_token().unwrap(), random_token().unwrap());
    let challenge = sha256_b64url(&verifier);
    (verifier, challenge)
}

/// A code-flow client: private_key_jwt, code + refresh, one redirect URI.
pub(crate) fn code_client(id: &str, key: &SigningKey) -> aims_server::api::ClientMetadata {
    let mut m = pkjwt_client(id, key);
    m.client_name = Some(format!("Agent {id}"));
    m.grant_types = vec![GrantType::AuthorizationCode, GrantType::RefreshToken];
    m.redirect_uris = vec![REDIRECT.to_owned()];
    m
}

/// A server with user alice and the code client `agent-a`.
async fn setup(adjust: impl FnOnce(&mut aims_server::Config)) -> (As, SigningKey) {
    setup_with_clock(crate::common::system_clock(), adjust).await
}

/// [`setup`] with the server's clock.
async fn setup_with_clock(
    clock: std::sync::Arc<dyn aims_core::Clock>,
    adjust: impl FnOnce(&mut aims_server::Config),
) -> (As, SigningKey) {
    let a = crate::oauth::start_with_clock(clock, adjust).await;
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    a.ts.admin()
        .create_client(&code_client("agent-a", &key))
        .await
        .unwrap();
    a.ts.admin()
        .create_user(&NewUser {
            username: USER.to_owned(),
            password: PASSWORD.to_owned(),
            attributes: serde_json::json!({"name": "Alice"}),
        })
        .await
        .unwrap();
    (a, key)
}

fn code_params<'a>(client_id: &'a str, challenge: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", "api:read"),
        ("resource", API),
        ("state", "st-123"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
}

/// The token request of a code, authenticated as `client_id`.
async fn redeem(
    a: &As,
    client_id: &str,
    key: &SigningKey,
    code: &str,
    verifier: Option<&str>,
    redirect_uri: &str,
) -> reqwest::Response {
    let assertion = a.assertion(client_id, key);
    let mut pairs = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", &assertion),
    ];
    if let Some(v) = verifier {
        pairs.push(("code_verifier", v));
    }
    a.post("/oauth/token", &pairs, &[]).await
}

async fn refresh(a: &As, key: &SigningKey, token: &str) -> reqwest::Response {
    let assertion = a.assertion("agent-a", key);
    a.post(
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &assertion),
        ],
        &[],
    )
    .await
}

#[tokio::test]
async fn code_flow_with_pkce_login_consent_and_the_oauth2_crate() {
    use oauth2::TokenResponse as _;

    let (a, key) = setup(|_| {}).await;
    let m: Value = a
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(m["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        m["grant_types_supported"],
        serde_json::json!(["client_credentials", "authorization_code", "refresh_token"])
    );
    assert_eq!(
        m["pushed_authorization_request_endpoint"],
        format!("{}/oauth/par", a.issuer)
    );
    assert_eq!(m["require_pushed_authorization_requests"], false);
    assert_eq!(m["authorization_response_iss_parameter_supported"], true);

    let (verifier, challenge) = pkce();
    let mut b = Browser::new();
    let r = b.authorize(&a, &code_params("agent-a", &challenge)).await;
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let cookie = h["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("aims-session="), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    assert!(
        !cookie.contains("Secure"),
        "http loopback issuer: no Secure"
    );
    // A session without a user lasts as long as a pending request.
    assert!(cookie.contains("Max-Age=600"), "{cookie}");
    let login = r.text().await.unwrap();
    assert!(login.contains("Agent agent-a"));
    let before = b.cookie.clone();
    let r = b.login(&login, USER, PASSWORD).await;
    assert_eq!(r.status(), 200);
    assert_ne!(b.cookie, before, "the session id changes at login");
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("Max-Age=3600"), "{cookie}");
    // The session before login is gone: its cookie no longer carries a form.
    let old = Form::parse(&login);
    let stale = reqwest::Client::new()
        .post(&old.action)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", before.as_deref().unwrap())
        .body(crate::oauth::form(&[
            ("request", &old.request),
            ("csrf", &old.csrf),
            ("username", USER),
            ("password", PASSWORD),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 403);
    let consent = r.text().await.unwrap();
    assert!(consent.contains("agent-a") && consent.contains("api:read"));
    assert!(consent.contains(API));
    let r = b.decide(&consent, "approve").await;
    assert_eq!(r.status(), 303);
    let q = query(r.headers()["location"].to_str().unwrap());
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with(REDIRECT)
    );
    // RFC 9207 (mix-up defence): iss is the metadata's issuer, byte for byte.
    assert_eq!(q["iss"], m["issuer"].as_str().unwrap());
    assert_eq!(q["state"], "st-123");

    // The exchange with a third-party OAuth library.
    let client = oauth2::basic::BasicClient::new(oauth2::ClientId::new("agent-a".into()))
        .set_auth_type(oauth2::AuthType::RequestBody)
        .set_token_uri(oauth2::TokenUrl::new(format!("{}/oauth/token", a.base)).unwrap())
        .set_redirect_uri(oauth2::RedirectUrl::new(REDIRECT.into()).unwrap());
    let http = a.http.clone();
    let send = move |req: oauth2::HttpRequest| {
        let http = http.clone();
        async move {
            let resp = http.execute(reqwest::Request::try_from(req)?).await?;
            let mut out = http::Response::builder().status(resp.status());
            for (k, v) in resp.headers() {
                out = out.header(k, v);
            }
            let body = resp.bytes().await?.to_vec();
            Ok::<_, reqwest::Error>(out.body(body).unwrap())
        }
    };
    let token = client
        .exchange_code(oauth2::AuthorizationCode::new(q["code"].clone()))
        .set_pkce_verifier(oauth2::PkceCodeVerifier::new(verifier))
        .add_extra_param("client_assertion_type", ASSERTION_TYPE)
        .add_extra_param("client_assertion", a.assertion("agent-a", &key))
        .request_async(&send)
        .await
        .unwrap();
    let claims = a.verify(token.access_token().secret(), API).await;
    assert_eq!(claims.sub, USER);
    assert_eq!(claims.client_id, "agent-a");
    assert_eq!(claims.iss, a.issuer);
    assert_eq!(claims.acr.as_deref(), Some("urn:aims:acr:password"));
    let auth_time = claims.auth_time.unwrap();
    assert!((crate::common::now() - auth_time).abs() < 30);

    // A second authorization in the same session goes straight to consent.
    let (_, challenge) = pkce();
    let r = b.authorize(&a, &code_params("agent-a", &challenge)).await;
    let page = r.text().await.unwrap();
    assert!(page.contains("value=\"approve\"") && !page.contains("name=\"password\""));
    // prompt=login (and max_age exceeded) ask for the password again.
    let mut p = code_params("agent-a", &challenge);
    p.push(("prompt", "login"));
    let page = b.authorize(&a, &p).await.text().await.unwrap();
    assert!(page.contains("name=\"password\""));
    // prompt=none cannot be met: consent is asked each time.
    let mut p = code_params("agent-a", &challenge);
    p.push(("prompt", "none"));
    let r = b.authorize(&a, &p).await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        query(r.headers()["location"].to_str().unwrap())["error"],
        "consent_required"
    );

    // Refresh rotation over HTTP, then replay of the first refresh token: the family dies.
    let rt1 = token.refresh_token().unwrap().secret().clone();
    let r = refresh(&a, &key, &rt1).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let rt2 = body["refresh_token"].as_str().unwrap().to_owned();
    let at2 = body["access_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2);
    assert_eq!(a.verify(&at2, API).await.sub, USER);
    let (status, error, _) = error_of(refresh(&a, &key, &rt1).await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));
    let (status, error, _) = error_of(refresh(&a, &key, &rt2).await).await;
    assert_eq!(
        (status, error.as_str()),
        (400, "invalid_grant"),
        "refresh replay revokes the whole family"
    );
    assert_eq!(a.introspect("agent-a", &key, &at2).await["active"], false);
    a.ts.server.shutdown().await;
}

#[tokio::test]
async fn code_injection_code_of_client_a_redeemed_by_client_b() {
    let (a, _) = setup(|_| {}).await;
    let key_b = SigningKey::generate(Algorithm::ES256).unwrap();
    a.ts.admin()
        .create_client(&code_client("agent-b", &key_b))
        .await
        .unwrap();
    let (verifier, challenge) = pkce();
    let q = Browser::new()
        .run_flow(&a, &code_params("agent-a", &challenge))
        .await;
    let (status, error, _) =
        error_of(redeem(&a, "agent-b", &key_b, &q["code"], Some(&verifier), REDIRECT).await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));
    a.ts.server.shutdown().await;
}

#[tokio::test]
async fn code_reuse_is_refused_and_revokes_the_first_token() {
    let (a, key) = setup(|_| {}).await;
    let (verifier, challenge) = pkce();
    let q = Browser::new()
        .run_flow(&a, &code_params("agent-a", &challenge))
        .await;
    let r = redeem(&a, "agent-a", &key, &q["code"], Some(&verifier), REDIRECT).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let body: Value = r.json().await.unwrap();
    let at = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(a.introspect("agent-a", &key, &at).await["active"], true);
    let (status, error, _) =
        error_of(redeem(&a, "agent-a", &key, &q["code"], Some(&verifier), REDIRECT).await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));
    assert_eq!(a.introspect("agent-a", &key, &at).await["active"], false);
    a.ts.server.shutdown().await;
}

#[tokio::test]
async fn pkce_downgrade_is_refused() {
    let (a, key) = setup(|_| {}).await;
    let mut b = Browser::new();
    // No challenge: an error redirect, no login page.
    let params: Vec<_> = code_params("agent-a", "x")
        .into_iter()
        .filter(|(k, _)| !k.starts_with("code_challenge"))
        .collect();
    let r = b.authorize(&a, &params).await;
    assert_eq!(r.status(), 303);
    let q = query(r.headers()["location"].to_str().unwrap());
    assert_eq!(q["error"], "invalid_request");
    assert_eq!(q["state"], "st-123");
    assert_eq!(q["iss"], a.issuer);
    // `plain`.
    let (verifier, _) = pkce();
    let mut params = code_params("agent-a", &verifier);
    params.retain(|(k, _)| *k != "code_challenge_method");
    params.push(("code_challenge_method", "plain"));
    let r = b.authorize(&a, &params).await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        query(r.headers()["location"].to_str().unwrap())["error"],
        "invalid_request"
    );
    // A code with S256, redeemed without a verifier, then with a wrong one.
    let (verifier, challenge) = pkce();
    let q = b.run_flow(&a, &code_params("agent-a", &challenge)).await;
    let (status, error, _) =
        error_of(redeem(&a, "agent-a", &key, &q["code"], None, REDIRECT).await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_request"));
    let (other, _) = pkce();
    let (status, error, _) =
        error_of(redeem(&a, "agent-a", &key, &q["code"], Some(&other), REDIRECT).await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));
    // The code was used by that attempt: even the right verifier fails now.
    let (status, _, _) =
        error_of(redeem(&a, "agent-a", &key, &q["code"], Some(&verifier), REDIRECT).await).await;
    assert_eq!(status, 400);
    a.ts.server.shutdown().await;
}

#[tokio::test]
async fn redirect_uri_mismatch() {
    let (a, key) = setup(|_| {}).await;
    let mut b = Browser::new();
    let (verifier, challenge) = pkce();
    // Not registered: an error page, never a redirect to the attacker's URI.
    let mut params = code_params("agent-a", &challenge);
    params.retain(|(k, _)| *k != "redirect_uri");
    params.push(("redirect_uri", "https://attacker.example/cb"));
    let r = b.authorize(&a, &params).await;
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    let page = r.text().await.unwrap();
    assert!(page.contains("redirect_uri is not registered"), "{page}");
    assert!(!page.contains("attacker.example"));
    // A prefix of the registered URI is not it either (exact match).
    let mut params = code_params("agent-a", &challenge);
    params.retain(|(k, _)| *k != "redirect_uri");
    params.push(("redirect_uri", "https://agent.example.test/cb/../x"));
    assert_eq!(b.authorize(&a, &params).await.status(), 400);
    // Unknown client: the same.
    let r = b.authorize(&a, &code_params("nobody", &challenge)).await;
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    // At the token endpoint, another redirect_uri than the request's.
    let q = b.run_flow(&a, &code_params("agent-a", &challenge)).await;
    let (status, error, _) = error_of(
        redeem(
            &a,
            "agent-a",
            &key,
            &q["code"],
            Some(&verifier),
            "https://agent.example.test/other",
        )
        .await,
    )
    .await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));
    a.ts.server.shutdown().await;
}

#[tokio::test]
async fn consent_without_or_with_a_wrong_csrf_token_is_forbidden() {
    let (a, key) = setup(|_| {}).await;
    let mut b = Browser::new();
    let (verifier, challenge) = pkce();
    let r = b.authorize(&a, &code_params("agent-a", &challenge)).await;
    let login = r.text().await.unwrap();
    // The login form checks the token too.
    let f = Form::parse(&login);
    let r = b
        .post(
            &f.action,
            &[
                ("request", &f.request),
                ("username", USER),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status(), 403);
    let consent = b.login(&login, USER, PASSWORD).await.text().await.unwrap();
    let f = Form::parse(&consent);
    for csrf in [None, Some("wrong"), Some(f.csrf.as_str()).map(|_| "")] {
        let mut pairs = vec![("request", f.request.as_str()), ("decision", "approve")];
        if let Some(c) = csrf {
            pairs.push(("csrf", c));
        }
        let r = b.post(&f.action, &pairs).await;
        assert_eq!(r.status(), 403, "csrf {csrf:?}");
        assert!(r.headers().get("location").is_none(), "no code");
    }
    // Another browser (no session cookie) with the right token: 403 as well.
    let mut other = Browser::new();
    let r = other
        .post(
            &f.action,
            &[
                ("request", &f.request),
                ("csrf", &f.csrf),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(r.status(), 403);
    // The request is still pending and the real form works.
    let r = b.decide(&consent, "approve").await;
    assert_eq!(r.status(), 303);
    let q = query(r.headers()["location"].to_str().unwrap());
    assert_eq!(
        redeem(&a, "agent-a", &key, &q["code"], Some(&verifier), REDIRECT)
            .await
            .status(),
        200
    );
    // A decision is taken once.
    assert_eq!(b.decide(&consent, "approve").await.status(), 400);
    a.ts.server.shutdown().await;
}

#[tokio::test]
async fn login_failure_says_the_same_for_unknown_user_and_wrong_password() {
    let (a, _) = setup(|_| {}).await;
    let mut b = Browser::new();
    let (_, challenge) = pkce();
    let login = b.login_page(&a, &challenge).await;
    let unknown = b.login(&login, "mallory", PASSWORD).await;
    assert_eq!(unknown.status(), 200);
    let unknown = unknown.text().await.unwrap();
    let wrong = b.login(&login, USER, "not alice's password").await;
    assert_eq!(wrong.status(), 200);
    let wrong = wrong.text().await.unwrap();
    assert_eq!(alert(&unknown), alert(&wrong));
    assert_eq!(
        alert(&unknown).as_deref(),
        Some("Wrong user name or password.")
    );
    // Apart from the echoed nothing (the user name is not echoed), the pages are equal.
    assert_eq!(unknown, wrong);
    // A disabled user gets the same answer.
    a.ts.admin().set_user_disabled(USER, true).await.unwrap();
    let disabled = b.login(&login, USER, PASSWORD).await.text().await.unwrap();
    assert_eq!(disabled, wrong);
    a.ts.server.shutdown().await;
}

/// askama's escaping of `<script>alert(1)</script>`.
const ESCAPED: &str = "&#60;script&#62;alert(1)&#60;/script&#62;";

#[tokio::test]
async fn consent_page_escapes_the_client_name_and_shows_the_agent() {
    let a = start(|c| {
        c.oauth.authorization_details_types.insert(
            "payment".into(),
            serde_json::from_value(serde_json::json!({})).unwrap(),
        );
    })
    .await;
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let mut m = code_client("agent-x", &key);
    m.client_name = Some("<script>alert(1)</script>".into());
    m.authorization_details_types = vec!["payment".into()];
    a.ts.admin().create_client(&m).await.unwrap();
    a.ts.admin()
        .create_user(&NewUser {
            username: USER.to_owned(),
            password: PASSWORD.to_owned(),
            attributes: serde_json::json!({}),
        })
        .await
        .unwrap();
    let (_, challenge) = pkce();
    let mut params = code_params("agent-x", &challenge);
    let details = r#"[{"type":"payment","actions":["initiate"],"locations":["https://bank.example/"],"amount":"<b>42</b>"}]"#;
    params.push(("authorization_details", details));
    let mut b = Browser::new();
    let login = b.authorize(&a, &params).await.text().await.unwrap();
    assert!(!login.contains("<script>alert"), "{login}");
    assert!(login.contains(ESCAPED), "{login}");
    let consent = b.login(&login, USER, PASSWORD).await.text().await.unwrap();
    assert!(!consent.contains("<script>alert"), "{consent}");
    assert!(consent.contains(ESCAPED), "{consent}");
    assert!(consent.contains("payment") && consent.contains("initiate"));
    assert!(consent.contains("bank.example"));
    assert!(!consent.contains("<b>42</b>") && consent.contains("&#60;b&#62;42"));
    a.ts.server.shutdown().await;
}

#[tokio::test]
async fn pushed_authorization_requests() {
    let (a, key) = setup(|c| c.oauth.require_pushed_authorization_requests = true).await;
    let m: Value = a
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(m["require_pushed_authorization_requests"], true);
    let (verifier, challenge) = pkce();
    // Front-channel requests are refused when PAR is required.
    let mut b = Browser::new();
    let r = b.authorize(&a, &code_params("agent-a", &challenge)).await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        query(r.headers()["location"].to_str().unwrap())["error"],
        "invalid_request"
    );
    // PAR needs client authentication.
    let mut pairs = code_params("agent-a", &challenge);
    let (status, error, _) = error_of(a.post("/oauth/par", &pairs, &[]).await).await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));
    let assertion = a.assertion("agent-a", &key);
    pairs.push(("client_assertion_type", ASSERTION_TYPE));
    pairs.push(("client_assertion", &assertion));
    let r = a.post("/oauth/par", &pairs, &[]).await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    let uri = body["request_uri"].as_str().unwrap().to_owned();
    assert!(uri.starts_with("urn:ietf:params:oauth:request_uri:"));
    assert_eq!(body["expires_in"], 60);
    let q = b
        .run_flow(&a, &[("client_id", "agent-a"), ("request_uri", &uri)])
        .await;
    assert_eq!(q["state"], "st-123");
    assert_eq!(
        redeem(&a, "agent-a", &key, &q["code"], Some(&verifier), REDIRECT)
            .await
            .status(),
        200
    );
    // A request_uri is used once.
    let r = b
        .authorize(&a, &[("client_id", "agent-a"), ("request_uri", &uri)])
        .await;
    assert_eq!(r.status(), 400);
    a.ts.server.shutdown().await;
}

#[tokio::test]
async fn acr_values_the_login_cannot_meet_are_refused() {
    let (a, _) = setup(|_| {}).await;
    let (_, challenge) = pkce();
    let mut b = Browser::new();
    let mut params = code_params("agent-a", &challenge);
    params.push(("acr_values", "urn:example:acr:hwk"));
    let r = b.authorize(&a, &params).await;
    assert_eq!(r.status(), 303);
    let q = query(r.headers()["location"].to_str().unwrap());
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["iss"], a.issuer);
    // The password class is met.
    let mut params = code_params("agent-a", &challenge);
    params.push(("acr_values", "urn:example:acr:hwk urn:aims:acr:password"));
    // A fresh login for this request (no session yet) meets `max_age=0`.
    params.push(("max_age", "0"));
    let q = b.run_flow(&a, &params).await;
    assert!(q.contains_key("code"));
    // Deny: access_denied to the client.
    let (_, challenge) = pkce();
    let r = b.authorize(&a, &code_params("agent-a", &challenge)).await;
    let page = r.text().await.unwrap();
    let r = b.decide(&page, "deny").await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        query(r.headers()["location"].to_str().unwrap())["error"],
        "access_denied"
    );
    a.ts.server.shutdown().await;
}

#[tokio::test]
async fn users_admin_api_round_trip() {
    let (a, _) = setup(|_| {}).await;
    let admin = a.ts.admin();
    let users = admin.list_users().await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].attributes["name"], "Alice");
    let json = serde_json::to_string(&users[0]).unwrap();
    assert!(!json.contains("argon2"), "no hash in the API: {json}");
    // Weak passwords and duplicates are refused.
    let e = admin
        .create_user(&NewUser {
            username: "bob".into(),
            password: "short".into(),
            attributes: serde_json::json!({}),
        })
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400));
    let e = admin
        .create_user(&NewUser {
            username: USER.into(),
            password: PASSWORD.into(),
            attributes: serde_json::json!({}),
        })
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(409));
    assert!(admin.set_user_disabled(USER, true).await.unwrap().disabled);
    assert!(!admin.set_user_disabled(USER, false).await.unwrap().disabled);
    // A user name beyond ASCII is managed like any other.
    admin
        .create_user(&NewUser {
            username: "José".into(),
            password: PASSWORD.into(),
            attributes: serde_json::json!({}),
        })
        .await
        .unwrap();
    assert!(
        admin
            .set_user_disabled("José", true)
            .await
            .unwrap()
            .disabled
    );
    admin.delete_user("José").await.unwrap();
    assert_eq!(
        admin.get_user("José").await.unwrap_err().status(),
        Some(404)
    );
    admin
        .set_user_password(USER, "a brand new password")
        .await
        .unwrap();
    // The new password logs in.
    let (_, challenge) = pkce();
    let mut b = Browser::new();
    let login = b.login_page(&a, &challenge).await;
    let page = b
        .login(&login, USER, "a brand new password")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("value=\"approve\""));
    admin.delete_user(USER).await.unwrap();
    assert_eq!(admin.get_user(USER).await.unwrap_err().status(), Some(404));
    a.ts.server.shutdown().await;
}

#[tokio::test]
async fn jwt_bearer_grant_from_a_trusted_issuer() {
    use aims_jose::{HeaderSpec, sign};

    const IDP: &str = "https://idp.example.test";
    let idp_key = SigningKey::generate(Algorithm::ES256).unwrap();
    let idp_jwks = aims_crypto::Jwks {
        keys: vec![idp_key.public_jwk().clone()],
    };
    let dir = tempfile::tempdir().unwrap();
    let jwks_file = dir.path().join("idp.jwks");
    std::fs::write(&jwks_file, serde_json::to_vec(&idp_jwks).unwrap()).unwrap();
    let owned = start(|c| {
        c.oauth.trusted_issuers.insert(
            "idp".into(),
            aims_server::config::TrustedIssuer {
                issuer: IDP.into(),
                jwks_file: Some(jwks_file.clone()),
                jwks: None,
            },
        );
    })
    .await;
    let a = &owned;
    let m: Value = a
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        m["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&Value::from("urn:ietf:params:oauth:grant-type:jwt-bearer"))
    );
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let mut client = pkjwt_client("agent-j", &key);
    client.grant_types = vec![GrantType::JwtBearer];
    a.ts.admin().create_client(&client).await.unwrap();
    let now = crate::common::now();
    let grant = |iss: &str, signer: &SigningKey| {
        sign(
            &HeaderSpec {
                typ: Some("JWT"),
                kid: true,
                jwk: false,
            },
            &serde_json::json!({
                "iss": iss, "sub": "carol", "aud": a.issuer, "iat": now, "exp": now + 120,
                "jti": random_token().unwrap(),
            }),
            signer,
        )
        .unwrap()
    };
    let exchange = |assertion: String| {
        let client_assertion = a.assertion("agent-j", &key);
        async move {
            a.post(
                "/oauth/token",
                &[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", &assertion),
                    ("resource", API),
                    ("client_assertion_type", ASSERTION_TYPE),
                    ("client_assertion", &client_assertion),
                ],
                &[],
            )
            .await
        }
    };
    let assertion = grant(IDP, &idp_key);
    let r = exchange(assertion.clone()).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let claims = a.verify(body["access_token"].as_str().unwrap(), API).await;
    assert_eq!(
        (claims.sub.as_str(), claims.client_id.as_str()),
        ("carol", "agent-j")
    );
    // Replayed, from an untrusted issuer, or signed by another key: invalid_grant.
    let other = SigningKey::generate(Algorithm::ES256).unwrap();
    for bad in [
        assertion,
        grant("https://evil.example", &idp_key),
        grant(IDP, &other),
    ] {
        let (status, error, _) = error_of(exchange(bad).await).await;
        assert_eq!((status, error.as_str()), (400, "invalid_grant"));
    }
    owned.ts.server.shutdown().await;
}

/// `AIMS_TEST_PG_URL`, or `None` (with a notice) outside CI; under `CI=true` a missing
/// variable fails.
pub(crate) fn pg_url() -> Option<String> {
    match std::env::var("AIMS_TEST_PG_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        Some(u) => Some(u),
        None => {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "CI=true but AIMS_TEST_PG_URL is not set: run `eval \"$(bash scripts/pg-start)\"` first"
            );
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "NOTICE: AIMS_TEST_PG_URL is not set: the two-instance PostgreSQL replay test is skipped"
            );
            None
        }
    }
}

#[tokio::test]
async fn client_assertion_replay_across_two_instances_sharing_postgresql() {
    let Some(url) = pg_url() else {
        return;
    };
    let issuer = "http://localhost:9";
    let shared = |c: &mut aims_server::Config| {
        c.oauth.issuer = Some(toml::Spanned::new(0..0, issuer.into()));
        c.storage.url = Some(url.clone());
    };
    let one = start(shared).await;
    let two = start(shared).await;
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    // A fresh client id: the database may hold earlier runs' clients.
    let id = format!("agent-pg-{}", random_token().unwrap());
    one.ts
        .admin()
        .create_client(&pkjwt_client(&id, &key))
        .await
        .unwrap();
    let assertion = one.assertion(&id, &key);
    assert_eq!(one.token(&assertion, &[], &[]).await.status(), 200);
    let (status, error, _) = error_of(two.token(&assertion, &[], &[]).await).await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));
    // Instance two accepts a fresh assertion of the same client.
    assert_eq!(
        two.token(&two.assertion(&id, &key), &[], &[])
            .await
            .status(),
        200
    );
    two.ts.server.shutdown().await;
    one.ts.server.shutdown().await;
}

/// Two nodes sharing PostgreSQL behind one issuer, with a fresh code client and user.
struct Nodes {
    one: As,
    two: As,
    id: String,
    user: String,
    key: SigningKey,
}

/// The issuer of [`two_nodes_with_a_user`]'s nodes.
const SHARED_ISSUER: &str = "http://localhost:9";

/// The pages' forms name the issuer; this sends them to `node` instead.
fn to(node: &As, page: &str) -> String {
    page.replace(SHARED_ISSUER, &node.base)
}

/// `None` (with a notice) without `AIMS_TEST_PG_URL`.
async fn two_nodes_with_a_user() -> Option<Nodes> {
    let url = pg_url()?;
    let shared = |c: &mut aims_server::Config| {
        c.oauth.issuer = Some(toml::Spanned::new(0..0, SHARED_ISSUER.into()));
        c.storage.url = Some(url.clone());
    };
    let one = start(shared).await;
    let two = start(shared).await;
    // Fresh names: the database may hold earlier runs' clients and users.
    let id = format!("agent-pg-{}", random_token().unwrap());
    let user = format!("user-{}", random_token().unwrap());
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    one.ts
        .admin()
        .create_client(&code_client(&id, &key))
        .await
        .unwrap();
    one.ts
        .admin()
        .create_user(&NewUser {
            username: user.clone(),
            password: PASSWORD.to_owned(),
            attributes: serde_json::json!({}),
        })
        .await
        .unwrap();
    Some(Nodes {
        one,
        two,
        id,
        user,
        key,
    })
}

/// Two AIMS nodes behind one issuer, sharing PostgreSQL: each step of a login may reach
/// either node (no sticky sessions), and a consent form sent to both is decided once.
#[tokio::test]
async fn login_steps_may_reach_different_nodes_sharing_postgresql() {
    let Some(Nodes {
        one,
        two,
        id,
        user,
        key,
    }) = two_nodes_with_a_user().await
    else {
        return;
    };
    let (verifier, challenge) = pkce();
    let mut b = Browser::new();
    let r = b.authorize(&one, &code_params(&id, &challenge)).await;
    assert_eq!(r.status(), 200);
    let login = r.text().await.unwrap();
    let r = b.login(&to(&two, &login), &user, PASSWORD).await;
    assert_eq!(r.status(), 200);
    let consent = r.text().await.unwrap();
    assert!(consent.contains("value=\"approve\""), "{consent}");
    let r = b.decide(&to(&one, &consent), "approve").await;
    assert_eq!(r.status(), 303);
    let q = query(r.headers()["location"].to_str().unwrap());
    assert_eq!(q["iss"], SHARED_ISSUER);
    let r = redeem(&two, &id, &key, &q["code"], Some(&verifier), REDIRECT).await;
    assert_eq!(r.status(), 200);
    // The same consent form again, to the other node: already decided.
    let r = b.decide(&to(&two, &consent), "approve").await;
    assert_eq!(r.status(), 400);
    // The session made at login on node two is known to node one: straight to consent.
    let r = b.authorize(&one, &code_params(&id, &challenge)).await;
    let page = r.text().await.unwrap();
    assert!(page.contains("value=\"approve\""), "{page}");
    two.ts.server.shutdown().await;
    one.ts.server.shutdown().await;
}

/// Failed logins are counted by every node sharing PostgreSQL: failures spread over two
/// nodes lock the name on both.
#[tokio::test]
async fn failed_logins_on_two_nodes_sharing_postgresql_are_counted_together() {
    let Some(Nodes {
        one, two, id, user, ..
    }) = two_nodes_with_a_user().await
    else {
        return;
    };
    let (_, challenge) = pkce();
    let mut b = Browser::new();
    let login = b
        .authorize(&one, &code_params(&id, &challenge))
        .await
        .text()
        .await
        .unwrap();
    // Four failures, alternating nodes; the fifth (on node two) locks the name.
    for i in 0..4 {
        let node = if i % 2 == 0 { &one } else { &two };
        let r = b.login(&to(node, &login), &user, "wrong").await;
        assert_eq!(r.status(), 200, "failure {i}");
    }
    let r = b.login(&to(&two, &login), &user, "wrong").await;
    assert_eq!(r.status(), 429);
    // Node one refuses even the right password now.
    let r = b.login(&to(&one, &login), &user, PASSWORD).await;
    assert_eq!(r.status(), 429);
    two.ts.server.shutdown().await;
    one.ts.server.shutdown().await;
}

/// The login pages' state is in the database: a login started before a restart goes on
/// after it (same session cookie, same pending request).
#[tokio::test]
async fn a_login_in_progress_survives_a_restart() {
    let issuer = "http://localhost:9";
    let dir = aims_server::testkit::tempdir().unwrap();
    let mut config = aims_server::testkit::config("example.org", dir.path()).unwrap();
    config.oauth.issuer = Some(toml::Spanned::new(0..0, issuer.into()));
    let node = |server: aims_server::RunningServer, dir| As {
        base: format!("http://{}", server.endpoints().http),
        issuer: issuer.to_owned(),
        http: reqwest::Client::new(),
        ts: aims_server::testkit::TestServer { server, dir },
    };
    let clock = crate::common::system_clock();
    let first = node(
        aims_server::start(config.clone(), clock.clone())
            .await
            .unwrap(),
        dir,
    );
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    first
        .ts
        .admin()
        .create_client(&code_client("agent-a", &key))
        .await
        .unwrap();
    first
        .ts
        .admin()
        .create_user(&NewUser {
            username: USER.to_owned(),
            password: PASSWORD.to_owned(),
            attributes: serde_json::json!({}),
        })
        .await
        .unwrap();
    let (verifier, challenge) = pkce();
    let mut b = Browser::new();
    let login = b
        .authorize(&first, &code_params("agent-a", &challenge))
        .await
        .text()
        .await
        .unwrap();
    let aims_server::testkit::TestServer { server, dir } = first.ts;
    server.shutdown().await;

    let second = node(aims_server::start(config, clock).await.unwrap(), dir);
    let consent = b
        .login(&login.replace(issuer, &second.base), USER, PASSWORD)
        .await;
    assert_eq!(consent.status(), 200);
    let consent = consent.text().await.unwrap();
    let r = b
        .decide(&consent.replace(issuer, &second.base), "approve")
        .await;
    assert_eq!(r.status(), 303);
    let q = query(r.headers()["location"].to_str().unwrap());
    let r = redeem(
        &second,
        "agent-a",
        &key,
        &q["code"],
        Some(&verifier),
        REDIRECT,
    )
    .await;
    assert_eq!(r.status(), 200);
    second.ts.server.shutdown().await;
}

#[tokio::test]
async fn max_age_is_checked_again_when_the_consent_is_given() {
    let clock = std::sync::Arc::new(aims_core::ManualClock::new(crate::common::now()));
    let (a, _) = setup_with_clock(clock.clone(), |_| {}).await;
    let mut b = Browser::new();
    let (_, challenge) = pkce();
    b.run_flow(&a, &code_params("agent-a", &challenge)).await;
    // Logged in a moment ago: max_age=60 goes straight to consent...
    let mut params = code_params("agent-a", &challenge);
    params.push(("max_age", "60"));
    let consent = b.authorize(&a, &params).await.text().await.unwrap();
    assert!(consent.contains("value=\"approve\""), "{consent}");
    // ...but approved two minutes later, the login is too old: log in again.
    clock.advance(120);
    let r = b.decide(&consent, "approve").await;
    assert_eq!(r.status(), 200);
    let login = r.text().await.unwrap();
    assert!(login.contains("name=\"password\""), "{login}");
    let consent = b.login(&login, USER, PASSWORD).await.text().await.unwrap();
    let r = b.decide(&consent, "approve").await;
    assert_eq!(r.status(), 303);
    assert!(query(r.headers()["location"].to_str().unwrap()).contains_key("code"));
    a.ts.server.shutdown().await;
}

/// A user disabled after logging in: their session approves nothing more and a new
/// request asks for a login; their refresh token is refused while they are disabled (it
/// is not used up, so it works again once they are enabled).
#[tokio::test]
async fn a_disabled_user_neither_consents_nor_refreshes() {
    let (a, key) = setup(|_| {}).await;
    let mut b = Browser::new();
    let (verifier, challenge) = pkce();
    let q = b.run_flow(&a, &code_params("agent-a", &challenge)).await;
    let r = redeem(&a, "agent-a", &key, &q["code"], Some(&verifier), REDIRECT).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let rt = body["refresh_token"].as_str().unwrap().to_owned();
    // Logged in: a second request goes straight to consent, which then waits.
    let (_, challenge) = pkce();
    let consent = b.page(&a, &challenge).await;
    assert!(consent.contains("value=\"approve\""), "{consent}");
    a.ts.admin().set_user_disabled(USER, true).await.unwrap();
    let r = b.decide(&consent, "approve").await;
    assert_eq!(r.status(), 400);
    let page = b.page(&a, &challenge).await;
    assert!(page.contains("name=\"password\""), "{page}");
    let (status, error, _) = error_of(refresh(&a, &key, &rt).await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));
    a.ts.admin().set_user_disabled(USER, false).await.unwrap();
    assert_eq!(refresh(&a, &key, &rt).await.status(), 200);
    a.ts.server.shutdown().await;
}

/// "Not you? Sign out" on the consent page ends the session; the same request then asks
/// for a login (someone else may sign in) and can still be approved. Without a request,
/// signing out removes the cookie.
#[tokio::test]
async fn signing_out_from_the_consent_page() {
    let (a, _) = setup(|_| {}).await;
    let mut b = Browser::new();
    let (_, challenge) = pkce();
    let consent = b.consent_when_logged_in(&a, &challenge).await;
    let signed_in_cookie = b.cookie.clone();
    let sign_out = Form::parse(&consent[consent.rfind("<form").unwrap()..]);
    assert!(
        sign_out.action.ends_with("/oauth/logout"),
        "{}",
        sign_out.action
    );
    let r = b
        .post(
            &sign_out.action,
            &[("request", &sign_out.request), ("csrf", &sign_out.csrf)],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_ne!(b.cookie, signed_in_cookie, "a new session");
    let login = r.text().await.unwrap();
    assert!(login.contains("name=\"password\""), "{login}");
    // The old session is over: its consent form is refused.
    let mut old = Browser::new();
    old.cookie = signed_in_cookie;
    assert_eq!(old.decide(&consent, "approve").await.status(), 403);
    // The request itself goes on after a new login.
    let consent = b.login(&login, USER, PASSWORD).await.text().await.unwrap();
    let r = b.decide(&consent, "approve").await;
    assert_eq!(r.status(), 303);
    assert!(query(r.headers()["location"].to_str().unwrap()).contains_key("code"));

    // Without a request: signed out, cookie removed.
    let consent = b.page(&a, &challenge).await;
    let sign_out = Form::parse(&consent[consent.rfind("<form").unwrap()..]);
    let r = b.post(&sign_out.action, &[("csrf", &sign_out.csrf)]).await;
    assert_eq!(r.status(), 200);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set.contains("Max-Age=0"), "{set}");
    assert!(r.text().await.unwrap().contains("signed out"));
    // A sign-out without the CSRF token is refused.
    let r = b.post(&sign_out.action, &[]).await;
    assert_eq!(r.status(), 403);
    a.ts.server.shutdown().await;
}

/// A new password ends the sessions made with the old one: the next authorization
/// request asks for a login again.
#[tokio::test]
async fn a_new_password_ends_the_sessions_made_with_the_old_one() {
    let (a, _) = setup(|_| {}).await;
    let mut b = Browser::new();
    let (_, challenge) = pkce();
    let consent = b.consent_when_logged_in(&a, &challenge).await;
    a.ts.admin()
        .set_user_password(USER, "a brand new password")
        .await
        .unwrap();
    // The consent page shown before the reset approves nothing.
    assert_eq!(b.decide(&consent, "approve").await.status(), 400);
    let page = b.page(&a, &challenge).await;
    assert!(page.contains("name=\"password\""), "{page}");
    a.ts.server.shutdown().await;
}

/// A session without a user lasts as long as its newest pending request: a second
/// authorization request late in the first one's life extends it.
#[tokio::test]
async fn an_anonymous_session_lives_as_long_as_its_newest_request() {
    let clock = std::sync::Arc::new(aims_core::ManualClock::new(crate::common::now()));
    let (a, _) = setup_with_clock(clock.clone(), |_| {}).await;
    let mut b = Browser::new();
    let (_, challenge) = pkce();
    let first = b.login_page(&a, &challenge).await;
    clock.advance(540);
    let r = b.authorize(&a, &code_params("agent-a", &challenge)).await;
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("Max-Age=600"), "{cookie}");
    let second = r.text().await.unwrap();
    // 14 minutes after the session began: the first request has expired, the second
    // (and so the session) has not.
    clock.advance(300);
    assert_eq!(b.login(&first, USER, PASSWORD).await.status(), 400);
    let r = b.login(&second, USER, PASSWORD).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("value=\"approve\""));
    a.ts.server.shutdown().await;
}

/// `max_age=0` (a fresh login for this very request, as a step-up challenge may ask) is
/// met by the login made for the request, however long the user then takes to approve.
#[tokio::test]
async fn max_age_zero_is_met_by_the_login_made_for_the_request() {
    let clock = std::sync::Arc::new(aims_core::ManualClock::new(crate::common::now()));
    let (a, _) = setup_with_clock(clock.clone(), |_| {}).await;
    let mut b = Browser::new();
    let (_, challenge) = pkce();
    // Logged in already, in this very second: max_age=0 still asks for the password.
    b.run_flow(&a, &code_params("agent-a", &challenge)).await;
    let mut params = code_params("agent-a", &challenge);
    params.push(("max_age", "0"));
    let r = b.authorize(&a, &params).await;
    assert_eq!(r.status(), 200);
    let login = r.text().await.unwrap();
    assert!(login.contains("name=\"password\""), "{login}");
    let consent = b.login(&login, USER, PASSWORD).await.text().await.unwrap();
    assert!(consent.contains("value=\"approve\""), "{consent}");
    // The user reads the consent page for a while: the login was made for this request.
    clock.advance(30);
    let r = b.decide(&consent, "approve").await;
    assert_eq!(r.status(), 303);
    let q = query(r.headers()["location"].to_str().unwrap());
    assert!(q.contains_key("code"), "{q:?}");
    a.ts.server.shutdown().await;
}

#[tokio::test]
async fn failed_logins_lock_the_user_name_for_a_while() {
    let clock = std::sync::Arc::new(aims_core::ManualClock::new(crate::common::now()));
    let (a, _) = setup_with_clock(clock.clone(), |_| {}).await;
    let mut b = Browser::new();
    let (_, challenge) = pkce();
    let login = b.login_page(&a, &challenge).await;
    const LOCKED: &str =
        "Too many failed logins for this user name. Wait a few minutes, then try again.";
    // Four failures are answered as usual; the fifth locks the name for 60 s.
    for _ in 0..4 {
        let r = b.login(&login, USER, "not alice's password").await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            alert(&r.text().await.unwrap()).as_deref(),
            Some("Wrong user name or password.")
        );
    }
    let r = b.login(&login, USER, "not alice's password").await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "60");
    let alice_locked = r.text().await.unwrap();
    assert_eq!(alert(&alice_locked).as_deref(), Some(LOCKED));
    // While locked, even the right password is refused.
    clock.advance(30);
    let r = b.login(&login, USER, PASSWORD).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "30");
    // A name that does not exist locks the same way, with the same page.
    for _ in 0..4 {
        assert_eq!(b.login(&login, "mallory", PASSWORD).await.status(), 200);
    }
    let r = b.login(&login, "mallory", PASSWORD).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.text().await.unwrap(), alice_locked);
    // Once the lock has passed the right password logs in, and clears the count.
    clock.advance(31);
    let r = b.login(&login, USER, PASSWORD).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("value=\"approve\""));
    let mut again = code_params("agent-a", &challenge);
    again.push(("prompt", "login"));
    let login = b.authorize(&a, &again).await.text().await.unwrap();
    let r = b.login(&login, USER, "not alice's password").await;
    assert_eq!(r.status(), 200, "one failure after a success does not lock");
    a.ts.server.shutdown().await;
}

#[tokio::test]
async fn password_checks_per_address_are_bounded_across_user_names() {
    let clock = std::sync::Arc::new(aims_core::ManualClock::new(crate::common::now()));
    let (a, _) = setup_with_clock(clock.clone(), |c| {
        c.oauth.login_attempts_per_address = 3;
    })
    .await;
    let mut b = Browser::new();
    let (_, challenge) = pkce();
    let login = b.login_page(&a, &challenge).await;
    const SPENT: &str =
        "Too many logins have been tried from your network. Wait a few minutes, then try again.";
    // One guess on each of three names (no name is locked) ...
    for name in ["bob", "carol", "dave"] {
        let r = b.login(&login, name, PASSWORD).await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            alert(&r.text().await.unwrap()).as_deref(),
            Some("Wrong user name or password.")
        );
    }
    // ... and the address has used its checks: 3 per 600 s, one back every 200 s.
    let r = b.login(&login, "erin", PASSWORD).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "200");
    assert_eq!(alert(&r.text().await.unwrap()).as_deref(), Some(SPENT));
    // Even the right password is not checked now.
    let r = b.login(&login, USER, PASSWORD).await;
    assert_eq!(r.status(), 429);
    // One check is back after 200 s; a right password gives its check back ...
    clock.advance(200);
    let r = b.login(&login, USER, PASSWORD).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("value=\"approve\""));
    let mut again = code_params("agent-a", &challenge);
    again.push(("prompt", "login"));
    let login = b.authorize(&a, &again).await.text().await.unwrap();
    // ... so one wrong guess is still possible, and no more.
    assert_eq!(b.login(&login, "frank", PASSWORD).await.status(), 200);
    assert_eq!(b.login(&login, "grace", PASSWORD).await.status(), 429);
    a.ts.server.shutdown().await;
}

#[tokio::test]
async fn a_locked_name_costs_the_address_no_check() {
    let clock = std::sync::Arc::new(aims_core::ManualClock::new(crate::common::now()));
    let (a, _) = setup_with_clock(clock.clone(), |c| {
        c.oauth.login_attempts_per_address = 3;
        c.oauth.login_max_failures = 1;
    })
    .await;
    let mut b = Browser::new();
    let (_, challenge) = pkce();
    let login = b.login_page(&a, &challenge).await;
    // The first failure locks the name; tries on the locked name check no password.
    assert_eq!(b.login(&login, "bob", PASSWORD).await.status(), 429);
    for _ in 0..5 {
        assert_eq!(b.login(&login, "bob", PASSWORD).await.status(), 429);
    }
    // The address has two checks left.
    assert_eq!(b.login(&login, "carol", PASSWORD).await.status(), 429);
    let r = b.login(&login, USER, PASSWORD).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("value=\"approve\""));
    a.ts.server.shutdown().await;
}

#[tokio::test]
async fn authorization_requests_per_address_are_bounded() {
    let clock = std::sync::Arc::new(aims_core::ManualClock::new(crate::common::now()));
    let (a, key) = setup_with_clock(clock.clone(), |c| {
        c.oauth.authorization_requests_per_address = 20;
    })
    .await;
    let (_, challenge) = pkce();
    // A pushed request, to be sent once the budget is spent.
    let mut pairs = code_params("agent-a", &challenge);
    let assertion = a.assertion("agent-a", &key);
    pairs.push(("client_assertion_type", ASSERTION_TYPE));
    pairs.push(("client_assertion", &assertion));
    let pushed: Value = a
        .post("/oauth/par", &pairs, &[])
        .await
        .json()
        .await
        .unwrap();
    let uri = pushed["request_uri"].as_str().unwrap().to_owned();
    for _ in 0..20 {
        let r = Browser::new()
            .authorize(&a, &code_params("agent-a", &challenge))
            .await;
        assert_eq!(r.status(), 200);
    }
    // The 21st (a new browser: it would store a session too) is refused: 20 per 600 s,
    // one back every 30 s.
    let r = Browser::new()
        .authorize(&a, &code_params("agent-a", &challenge))
        .await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "30");
    assert!(r.headers().get("set-cookie").is_none());
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Too many sign-in requests have come from your network")
    );
    // A refused pushed request is not used up: it works once the wait is over.
    let par = [("client_id", "agent-a"), ("request_uri", uri.as_str())];
    assert_eq!(Browser::new().authorize(&a, &par).await.status(), 429);
    clock.advance(30);
    assert_eq!(Browser::new().authorize(&a, &par).await.status(), 200);
    a.ts.server.shutdown().await;
}
