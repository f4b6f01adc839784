//! The WIMSE profile end to end, with WITs minted here, and one negative test per rule.
//! Each negative test builds a message that is valid except for the one rule under test,
//! checks that its valid twin passes, and asserts the precise [`HttpSigError`].

use std::sync::Arc;

use aims_core::{ManualClock, WorkloadId};
use aims_crypto::{Algorithm, Signer, SigningKey};
use aims_httpsig::wimse::{
    self, RequestSigner, RequestVerifier, ResponseSigner, ResponseVerifier, VerifiedRequest,
};
use aims_httpsig::{
    ComponentId, DigestAlgorithm, HttpSigError, Message, Options, RequestMessage, ResponseMessage,
    SignatureParams, content_digest, sign,
};
use aims_jose::replay::MemoryReplayGuard;
use aims_jose::wit::{self, Validator, WitClaims, WitProfile};
use aims_jose::{JoseError, StaticKeys};
use http::Method;

const NOW: i64 = 1_800_000_000;
const TD: &str = "example.org";
const ORIGIN: &str = "https://server.example.org";
const PATH: &str = "/api/transfer";
const AUD: &str = "https://server.example.org/api/transfer";
const BODY: &[u8] = br#"{"amount": 10}"#;

struct Fx {
    clock: ManualClock,
    issuer: SigningKey,
    keys: Arc<StaticKeys>,
    client_key: Arc<SigningKey>,
    client_wit: String,
    server_key: Arc<SigningKey>,
    server_wit: String,
    replay: Arc<MemoryReplayGuard>,
}

impl Fx {
    fn new() -> Self {
        let clock = ManualClock::new(NOW);
        let issuer = SigningKey::generate(Algorithm::ES256)
            .unwrap()
            .with_kid("issuer-1");
        let mut keys = StaticKeys::new();
        keys.add_key(TD, Some("issuer-1".into()), issuer.verifying_key().clone());
        let client_key = Arc::new(SigningKey::generate(Algorithm::EdDSA).unwrap());
        let server_key = Arc::new(SigningKey::generate(Algorithm::ES256).unwrap());
        let mut fx = Self {
            clock,
            issuer,
            keys: Arc::new(keys),
            client_wit: String::new(),
            server_wit: String::new(),
            client_key,
            server_key,
            replay: Arc::new(MemoryReplayGuard::new(1000)),
        };
        fx.client_wit = fx.mint("wimse://example.org/client", fx.client_key.as_ref(), 3600);
        fx.server_wit = fx.mint("wimse://example.org/server", fx.server_key.as_ref(), 3600);
        fx
    }

    fn mint(&self, sub: &str, key: &SigningKey, lifetime: i64) -> String {
        let claims = WitClaims::new(
            WorkloadId::try_from(sub).unwrap(),
            key.public_jwk(),
            NOW,
            lifetime,
        )
        .unwrap();
        wit::create(&claims, &self.issuer).unwrap()
    }

    fn clock(&self) -> Arc<ManualClock> {
        Arc::new(self.clock.clone())
    }

    fn validator(&self) -> Validator {
        Validator::new(WitProfile::Wimse, self.clock()).trust_domain(TD)
    }

    /// A verifier with a fresh replay cache, accepting the draft's default audience.
    fn verifier(&self) -> RequestVerifier {
        RequestVerifier::new(
            self.validator(),
            self.keys.clone(),
            Arc::new(MemoryReplayGuard::new(1000)),
            self.clock(),
        )
        .origin(ORIGIN)
    }

    /// A verifier sharing the fixture's replay cache.
    fn verifier_with_shared_replay(&self) -> RequestVerifier {
        RequestVerifier::new(
            self.validator(),
            self.keys.clone(),
            self.replay.clone(),
            self.clock(),
        )
        .origin(ORIGIN)
    }

    fn response_verifier(&self) -> ResponseVerifier {
        ResponseVerifier::new(
            self.validator(),
            self.keys.clone(),
            Arc::new(MemoryReplayGuard::new(1000)),
            self.clock(),
        )
    }

    /// The unsigned request every test starts from: a POST with a body, a content type,
    /// an access token and a Txn-Token.
    fn request(&self) -> http::Request<Vec<u8>> {
        http::Request::builder()
            .method(Method::POST)
            .uri(format!("{PATH}?dry-run=1"))
            .header("host", "server.example.org")
            .header("content-type", "application/json")
            .header("authorization", "Bearer at-123")
            .header("txn-token", "txn.token.value")
            .body(BODY.to_vec())
            .unwrap()
    }
}

/// Everything a test may change in a request signature.
#[derive(Clone)]
struct Spec {
    components: Vec<&'static str>,
    created: Option<i64>,
    expires: Option<i64>,
    nonce: Option<&'static str>,
    tag: Option<&'static str>,
    aud: Option<&'static str>,
    keyid: Option<&'static str>,
    alg: Option<&'static str>,
    sign_response: Option<&'static str>,
    label: &'static str,
    /// `Workload-Identity-Token` field lines.
    wits: Vec<String>,
    /// The Content-Digest to send (`None`: no Content-Digest header).
    digest: Option<String>,
}

impl Spec {
    fn valid(fx: &Fx) -> Self {
        Self {
            components: vec![
                "\"@method\"",
                "\"@request-target\"",
                "\"content-type\"",
                "\"content-digest\"",
                "\"authorization\"",
                "\"txn-token\"",
                "\"workload-identity-token\"",
            ],
            created: Some(NOW),
            expires: Some(NOW + 60),
            nonce: Some("n-0123456789abcdefghij"),
            tag: Some(wimse::TAG),
            aud: Some(AUD),
            keyid: None,
            alg: None,
            sign_response: None,
            label: "wimse",
            wits: vec![fx.client_wit.clone()],
            digest: Some(content_digest(BODY, &[DigestAlgorithm::Sha256])),
        }
    }

    fn without(mut self, component: &str) -> Self {
        self.components.retain(|c| *c != component);
        self
    }
}

/// Signs `req` as `spec` says, with `signer`.
fn sign_spec(req: &mut http::Request<Vec<u8>>, spec: &Spec, signer: &dyn Signer) {
    let h = req.headers_mut();
    h.remove(wimse::WIT_HEADER);
    for w in &spec.wits {
        h.append(wimse::WIT_HEADER, w.parse().unwrap());
    }
    h.remove("content-digest");
    if let Some(d) = &spec.digest {
        h.insert("content-digest", d.parse().unwrap());
    }
    let mut p = SignatureParams::new(
        spec.components
            .iter()
            .map(|c| ComponentId::parse(c).unwrap()),
    );
    if let Some(v) = spec.created {
        p = p.with_created(v).unwrap();
    }
    if let Some(v) = spec.expires {
        p = p.with_expires(v).unwrap();
    }
    if let Some(v) = spec.nonce {
        p = p.with_nonce(v).unwrap();
    }
    if let Some(v) = spec.tag {
        p = p.with_tag(v).unwrap();
    }
    if let Some(v) = spec.aud {
        p = p.with_string_param(wimse::PARAM_AUD, v).unwrap();
    }
    if let Some(v) = spec.keyid {
        p = p.with_keyid(v).unwrap();
    }
    if let Some(v) = spec.alg {
        p = p.with_string_param("alg", v).unwrap();
    }
    match spec.sign_response {
        Some("true") => {
            p = p
                .with_boolean_param(wimse::PARAM_SIGN_RESPONSE, true)
                .unwrap()
        }
        Some(other) => {
            p = p
                .with_string_param(wimse::PARAM_SIGN_RESPONSE, other)
                .unwrap()
        }
        None => {}
    }
    let out = {
        let msg = Message::Request(RequestMessage::from_request(req));
        sign(&msg, spec.label, &p, signer, &Options::default()).unwrap()
    };
    out.apply(req.headers_mut()).unwrap();
}

fn signed(fx: &Fx, spec: &Spec) -> http::Request<Vec<u8>> {
    let mut req = fx.request();
    sign_spec(&mut req, spec, fx.client_key.as_ref());
    req
}

/// The valid twin passes; `mutate` makes it fail with `expected`.
#[track_caller]
fn assert_rule(mutate: impl FnOnce(&Fx, &mut Spec), expected: HttpSigError) {
    let fx = Fx::new();
    let valid = Spec::valid(&fx);
    fx.verifier().verify(&signed(&fx, &valid)).unwrap();
    let mut bad = valid;
    mutate(&fx, &mut bad);
    assert_eq!(
        fx.verifier().verify(&signed(&fx, &bad)).unwrap_err(),
        expected
    );
}

// ---------------------------------------------------------------------------------------
// End to end
// ---------------------------------------------------------------------------------------

#[test]
fn request_and_response_round_trip() {
    let fx = Fx::new();
    let signer = RequestSigner::new(fx.client_wit.clone(), fx.client_key.clone(), fx.clock())
        .request_signed_responses(true);
    let mut req = fx.request();
    let sent = signer.sign(&mut req, AUD).unwrap();
    assert_eq!(sent.nonce().len(), 22, "128 random bits, base64url");
    assert_eq!(sent.expires() - sent.created(), wimse::DEFAULT_LIFETIME);
    assert!(sent.sign_response());
    let input = req.headers()["signature-input"].to_str().unwrap();
    assert!(
        input.starts_with(
            "wimse=(\"@method\" \"@request-target\" \"content-type\" \"content-digest\" \
         \"authorization\" \"txn-token\" \"workload-identity-token\");created=1800000000;\
         expires=1800000060;nonce=\""
        ),
        "{input}"
    );
    assert!(input.ends_with(
        "\";tag=\"wimse-workload-to-workload\";wimse-aud=\"https://server.example.org/api/transfer\";wimse-sign-response"
    ), "{input}");
    assert!(!input.contains("keyid") && !input.contains("alg="));

    // Server side.
    let verified: VerifiedRequest = fx.verifier().verify(&req).unwrap();
    assert_eq!(
        verified.wit().subject().as_str(),
        "wimse://example.org/client"
    );
    assert_eq!(verified.signature().nonce(), sent.nonce());
    assert_eq!(verified.signature().audience(), Some(AUD));
    assert!(verified.signature().sign_response());
    assert_eq!(verified.signature().label(), "wimse");

    let mut resp = http::Response::builder()
        .status(201)
        .header("content-type", "application/json")
        .body(br#"{"ok": true}"#.to_vec())
        .unwrap();
    ResponseSigner::new(fx.server_wit.clone(), fx.server_key.clone(), fx.clock())
        .sign(
            &mut resp,
            RequestMessage::from_request(&req),
            verified.signature().nonce(),
        )
        .unwrap();
    let rinput = resp.headers()["signature-input"].to_str().unwrap();
    assert!(
        rinput.starts_with(
            "wimse=(\"@status\" \"workload-identity-token\" \"content-type\" \"content-digest\" \
         \"@method\";req \"@request-target\";req);created="
        ),
        "{rinput}"
    );
    assert!(rinput.ends_with(&format!("wimse-req-nonce=\"{}\"", sent.nonce())));

    // Client side.
    assert!(wimse::is_signed(resp.headers()));
    let ok = fx
        .response_verifier()
        .verify(&resp, RequestMessage::from_request(&req), sent.nonce())
        .unwrap();
    assert_eq!(ok.wit().subject().as_str(), "wimse://example.org/server");
    assert_eq!(ok.wit().confirmation_alg(), Algorithm::ES256);
}

#[test]
fn request_without_body_or_optional_headers() {
    let fx = Fx::new();
    let signer = RequestSigner::new(fx.client_wit.clone(), fx.client_key.clone(), fx.clock());
    let mut req = http::Request::builder()
        .method(Method::GET)
        .uri("https://server.example.org/api/transfer")
        .body(Vec::new())
        .unwrap();
    let aud = wimse::default_audience(req.uri()).unwrap();
    signer.sign(&mut req, &aud).unwrap();
    assert!(!req.headers().contains_key("content-digest"));
    let input = req.headers()["signature-input"].to_str().unwrap();
    assert!(
        input.starts_with("wimse=(\"@method\" \"@request-target\" \"workload-identity-token\");")
    );
    let v = fx.verifier().verify(&req).unwrap();
    assert!(!v.signature().sign_response());
}

#[test]
fn exact_audience_configuration() {
    let fx = Fx::new();
    let spec = Spec {
        aud: Some("spiffe://example.org/server"),
        ..Spec::valid(&fx)
    };
    let req = signed(&fx, &spec);
    assert_eq!(
        fx.verifier().verify(&req).unwrap_err(),
        HttpSigError::AudienceMismatch
    );
    let v = RequestVerifier::new(
        fx.validator(),
        fx.keys.clone(),
        Arc::new(MemoryReplayGuard::new(10)),
        fx.clock(),
    )
    .audience("spiffe://example.org/server");
    v.verify(&req).unwrap();
    // http(s) audiences compare after normalization.
    let spec = Spec {
        aud: Some("HTTPS://Server.Example.org:443/api/transfer"),
        ..Spec::valid(&fx)
    };
    let v = RequestVerifier::new(
        fx.validator(),
        fx.keys.clone(),
        Arc::new(MemoryReplayGuard::new(10)),
        fx.clock(),
    )
    .audience(AUD);
    v.verify(&signed(&fx, &spec)).unwrap();
    // No audience configured: nothing is accepted.
    let none = RequestVerifier::new(
        fx.validator(),
        fx.keys.clone(),
        Arc::new(MemoryReplayGuard::new(10)),
        fx.clock(),
    );
    assert_eq!(
        none.verify(&signed(&fx, &Spec::valid(&fx))).unwrap_err(),
        HttpSigError::AudienceMismatch
    );
}

#[test]
fn errors_map_to_400_problem_documents() {
    let fx = Fx::new();
    let mut spec = Spec::valid(&fx);
    spec.keyid = Some("k");
    let err = fx.verifier().verify(&signed(&fx, &spec)).unwrap_err();
    let problem = err.problem();
    assert_eq!(problem.status, 400);
    let json: serde_json::Value = serde_json::from_str(&problem.to_json()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "type": "https://example.invalid/aims/problems/httpsig/forbidden-parameter",
            "title": "Invalid HTTP message signature",
            "status": 400,
            "detail": "signature parameter `keyid` is not allowed",
        })
    );
    let resp = err.problem_with_type_base("urn:example:").to_response();
    assert_eq!(resp.status(), 400);
    assert!(resp.body().contains("urn:example:forbidden-parameter"));
}

// ---------------------------------------------------------------------------------------
// Request rules
// ---------------------------------------------------------------------------------------

#[test]
fn rule_method_must_be_covered() {
    assert_rule(
        |_, s| *s = s.clone().without("\"@method\""),
        HttpSigError::UncoveredComponent("\"@method\"".into()),
    );
}

#[test]
fn rule_request_target_must_be_covered() {
    assert_rule(
        |_, s| *s = s.clone().without("\"@request-target\""),
        HttpSigError::UncoveredComponent("\"@request-target\"".into()),
    );
    // `@path` and `@query` do not replace it.
    assert_rule(
        |_, s| {
            *s = s.clone().without("\"@request-target\"");
            s.components.extend(["\"@path\"", "\"@query\""]);
        },
        HttpSigError::UncoveredComponent("\"@request-target\"".into()),
    );
}

#[test]
fn rule_present_headers_must_be_covered() {
    for h in [
        "content-type",
        "content-digest",
        "authorization",
        "txn-token",
        "workload-identity-token",
    ] {
        let quoted: &'static str = Box::leak(format!("\"{h}\"").into_boxed_str());
        assert_rule(
            move |_, s| *s = s.clone().without(quoted),
            HttpSigError::UncoveredComponent(quoted.to_owned()),
        );
    }
}

#[test]
fn rule_covered_with_other_parameters_does_not_count() {
    assert_rule(
        |_, s| {
            *s = s.clone().without("\"content-digest\"");
            s.components.push("\"content-digest\";sf");
        },
        HttpSigError::UncoveredComponent("\"content-digest\"".into()),
    );
}

#[test]
fn rule_keyid_forbidden() {
    assert_rule(
        |_, s| s.keyid = Some("svc-a-key"),
        HttpSigError::ForbiddenParameter("keyid"),
    );
}

#[test]
fn rule_alg_forbidden() {
    assert_rule(
        |_, s| s.alg = Some("ed25519"),
        HttpSigError::ForbiddenParameter("alg"),
    );
}

#[test]
fn rule_tag_required_and_exact() {
    assert_rule(
        |_, s| s.tag = Some("wimse-workload-to-workload2"),
        HttpSigError::WrongTag,
    );
    assert_rule(
        |_, s| s.tag = Some("WIMSE-workload-to-workload"),
        HttpSigError::WrongTag,
    );
    assert_rule(|_, s| s.tag = None, HttpSigError::MissingParameter("tag"));
}

#[test]
fn rule_created_expires_nonce_required() {
    assert_rule(
        |_, s| s.created = None,
        HttpSigError::MissingParameter("created"),
    );
    assert_rule(
        |_, s| s.expires = None,
        HttpSigError::MissingParameter("expires"),
    );
    assert_rule(
        |_, s| s.nonce = None,
        HttpSigError::MissingParameter("nonce"),
    );
}

#[test]
fn rule_nonce_minimum_length() {
    assert_rule(
        |_, s| s.nonce = Some("1234567"),
        HttpSigError::NonceTooShort,
    );
    // Eight characters (the draft's example length) pass.
    let fx = Fx::new();
    let spec = Spec {
        nonce: Some("12345678"),
        ..Spec::valid(&fx)
    };
    fx.verifier().verify(&signed(&fx, &spec)).unwrap();
    assert_eq!(
        fx.verifier()
            .min_nonce_len(22)
            .verify(&signed(&fx, &spec))
            .unwrap_err(),
        HttpSigError::NonceTooShort
    );
}

#[test]
fn rule_expired() {
    let fx = Fx::new();
    let req = signed(&fx, &Spec::valid(&fx));
    // Valid up to `expires + leeway` (exclusive).
    fx.clock.set(NOW + 60 + 29);
    fx.verifier().verify(&req).unwrap();
    fx.clock.set(NOW + 60 + 30);
    assert_eq!(
        fx.verifier().verify(&req).unwrap_err(),
        HttpSigError::Expired {
            expires: NOW + 60,
            now: NOW + 90
        }
    );
    // Without leeway it expires at `expires`.
    fx.clock.set(NOW + 60);
    assert!(matches!(
        fx.verifier().leeway(0).verify(&req),
        Err(HttpSigError::Expired { .. })
    ));
}

#[test]
fn rule_created_in_future() {
    assert_rule(
        |_, s| {
            s.created = Some(NOW + 31);
            s.expires = Some(NOW + 91);
        },
        HttpSigError::CreatedInFuture {
            created: NOW + 31,
            now: NOW,
        },
    );
    // Within the leeway it passes.
    let fx = Fx::new();
    let spec = Spec {
        created: Some(NOW + 30),
        expires: Some(NOW + 90),
        ..Spec::valid(&fx)
    };
    fx.verifier().verify(&signed(&fx, &spec)).unwrap();
}

#[test]
fn rule_validity_must_be_short() {
    assert_rule(
        |_, s| s.expires = Some(NOW + 601),
        HttpSigError::ValidityTooLong {
            validity: 601,
            max: 600,
        },
    );
    assert_rule(
        |_, s| s.expires = Some(NOW - 1),
        HttpSigError::ExpiresBeforeCreated,
    );
    let fx = Fx::new();
    let spec = Spec {
        expires: Some(NOW + 600),
        ..Spec::valid(&fx)
    };
    fx.verifier().verify(&signed(&fx, &spec)).unwrap();
    assert!(matches!(
        fx.verifier().max_validity(120).verify(&signed(&fx, &spec)),
        Err(HttpSigError::ValidityTooLong { .. })
    ));
}

#[test]
fn rule_wimse_aud_required_and_matching() {
    assert_rule(
        |_, s| s.aud = None,
        HttpSigError::MissingParameter("wimse-aud"),
    );
    assert_rule(
        |_, s| s.aud = Some("https://other.example.org/api/transfer"),
        HttpSigError::AudienceMismatch,
    );
    assert_rule(
        |_, s| s.aud = Some("https://server.example.org/api/other"),
        HttpSigError::AudienceMismatch,
    );
    // With a query or fragment it is not the target URI "without query or fragment".
    assert_rule(
        |_, s| s.aud = Some("https://server.example.org/api/transfer?dry-run=1"),
        HttpSigError::AudienceMismatch,
    );
}

#[test]
fn rule_wimse_aud_never_derived_from_host() {
    // The attacker's Host names the audience they signed for; the verifier compares
    // with its configured origin only.
    assert_rule(
        |_, s| s.aud = Some("https://evil.example/api/transfer"),
        HttpSigError::AudienceMismatch,
    );
    let fx = Fx::new();
    let spec = Spec {
        aud: Some("https://evil.example/api/transfer"),
        ..Spec::valid(&fx)
    };
    let mut req = fx.request();
    req.headers_mut()
        .insert("host", "evil.example".parse().unwrap());
    sign_spec(&mut req, &spec, fx.client_key.as_ref());
    assert_eq!(
        fx.verifier().verify(&req).unwrap_err(),
        HttpSigError::AudienceMismatch
    );
    // A Host header that differs from the configured origin does not matter either way.
    let mut req = fx.request();
    req.headers_mut()
        .insert("host", "internal-lb:8080".parse().unwrap());
    sign_spec(&mut req, &Spec::valid(&fx), fx.client_key.as_ref());
    fx.verifier().verify(&req).unwrap();
}

#[test]
fn rule_wimse_aud_must_be_a_string() {
    let fx = Fx::new();
    let mut req = fx.request();
    // Sign with an integer wimse-aud.
    sign_with_params(&fx, &mut req, |p| {
        p.with_integer_param("wimse-aud", 1).unwrap()
    });
    assert_eq!(
        fx.verifier().verify(&req).unwrap_err(),
        HttpSigError::MalformedParameter("wimse-aud".into())
    );
}

/// Signs the valid spec's components with custom parameters.
fn sign_with_params(
    fx: &Fx,
    req: &mut http::Request<Vec<u8>>,
    params: impl FnOnce(SignatureParams) -> SignatureParams,
) {
    let spec = Spec::valid(fx);
    req.headers_mut()
        .insert(wimse::WIT_HEADER, fx.client_wit.parse().unwrap());
    req.headers_mut().insert(
        "content-digest",
        spec.digest.clone().unwrap().parse().unwrap(),
    );
    let p = SignatureParams::new(
        spec.components
            .iter()
            .map(|c| ComponentId::parse(c).unwrap()),
    )
    .with_created(NOW)
    .unwrap()
    .with_expires(NOW + 60)
    .unwrap()
    .with_nonce("n-0123456789abcdefghij")
    .unwrap()
    .with_tag(wimse::TAG)
    .unwrap();
    let p = params(p);
    let out = sign(
        &Message::Request(RequestMessage::from_request(req)),
        "wimse",
        &p,
        fx.client_key.as_ref(),
        &Options::default(),
    )
    .unwrap();
    out.apply(req.headers_mut()).unwrap();
}

#[test]
fn rule_wimse_sign_response_must_be_boolean() {
    let fx = Fx::new();
    let spec = Spec {
        sign_response: Some("true"),
        ..Spec::valid(&fx)
    };
    assert!(
        fx.verifier()
            .verify(&signed(&fx, &spec))
            .unwrap()
            .signature()
            .sign_response()
    );
    assert_rule(
        |_, s| s.sign_response = Some("yes"),
        HttpSigError::MalformedParameter("wimse-sign-response".into()),
    );
    // `;wimse-sign-response=?0` is a valid "no".
    let mut req = fx.request();
    sign_with_params(&fx, &mut req, |p| {
        p.with_string_param("wimse-aud", AUD)
            .unwrap()
            .with_boolean_param("wimse-sign-response", false)
            .unwrap()
    });
    assert!(
        !fx.verifier()
            .verify(&req)
            .unwrap()
            .signature()
            .sign_response()
    );
}

#[test]
fn rule_body_requires_content_digest() {
    assert_rule(
        |_, s| {
            s.digest = None;
            *s = s.clone().without("\"content-digest\"");
        },
        HttpSigError::MissingContentDigest,
    );
}

#[test]
fn rule_content_digest_must_match_the_body() {
    assert_rule(
        |_, s| {
            s.digest = Some(content_digest(
                b"{\"amount\": 10000}",
                &[DigestAlgorithm::Sha256],
            ))
        },
        HttpSigError::ContentDigestMismatch,
    );
    assert_rule(
        |_, s| s.digest = Some("md5=:AAAA:".into()),
        HttpSigError::UnsupportedDigestAlgorithm,
    );
    // Also on an empty body, a present digest is checked.
    let fx = Fx::new();
    let mut req = fx.request();
    req.body_mut().clear();
    sign_spec(&mut req, &Spec::valid(&fx), fx.client_key.as_ref());
    assert_eq!(
        fx.verifier().verify(&req).unwrap_err(),
        HttpSigError::ContentDigestMismatch
    );
}

#[test]
fn rule_changed_body_fails() {
    let fx = Fx::new();
    let mut req = signed(&fx, &Spec::valid(&fx));
    fx.verifier().verify(&req).unwrap();
    *req.body_mut() = br#"{"amount": 99}"#.to_vec();
    assert_eq!(
        fx.verifier().verify(&req).unwrap_err(),
        HttpSigError::ContentDigestMismatch
    );
    // A digest recomputed for the new body breaks the signature.
    req.headers_mut().insert(
        "content-digest",
        content_digest(br#"{"amount": 99}"#, &[DigestAlgorithm::Sha256])
            .parse()
            .unwrap(),
    );
    assert_eq!(
        fx.verifier().verify(&req).unwrap_err(),
        HttpSigError::BadSignature
    );
}

#[test]
fn rule_changed_method_fails() {
    let fx = Fx::new();
    let mut req = signed(&fx, &Spec::valid(&fx));
    *req.method_mut() = Method::PUT;
    assert_eq!(
        fx.verifier().verify(&req).unwrap_err(),
        HttpSigError::BadSignature
    );
}

#[test]
fn rule_changed_path_or_query_fails() {
    let fx = Fx::new();
    let mut req = signed(&fx, &Spec::valid(&fx));
    *req.uri_mut() = format!("{PATH}?dry-run=0").parse().unwrap();
    assert_eq!(
        fx.verifier().verify(&req).unwrap_err(),
        HttpSigError::BadSignature
    );
    // Another path no longer matches the audience (checked before the signature)...
    let mut req = signed(&fx, &Spec::valid(&fx));
    *req.uri_mut() = "/api/other?dry-run=1".parse().unwrap();
    assert_eq!(
        fx.verifier().verify(&req).unwrap_err(),
        HttpSigError::AudienceMismatch
    );
    // ...and with an explicit audience it fails the signature.
    let v = RequestVerifier::new(
        fx.validator(),
        fx.keys.clone(),
        Arc::new(MemoryReplayGuard::new(10)),
        fx.clock(),
    )
    .audience(AUD);
    assert_eq!(v.verify(&req).unwrap_err(), HttpSigError::BadSignature);
}

#[test]
fn rule_changed_covered_header_fails() {
    for (name, value) in [
        ("content-type", "text/plain"),
        ("authorization", "Bearer other"),
        ("txn-token", "other.txn.token"),
    ] {
        let fx = Fx::new();
        let mut req = signed(&fx, &Spec::valid(&fx));
        req.headers_mut().insert(name, value.parse().unwrap());
        assert_eq!(
            fx.verifier().verify(&req).unwrap_err(),
            HttpSigError::BadSignature,
            "{name}"
        );
    }
}

#[test]
fn rule_changed_params_fail() {
    let fx = Fx::new();
    let mut req = signed(&fx, &Spec::valid(&fx));
    let input = req.headers()["signature-input"]
        .to_str()
        .unwrap()
        .replace("expires=1800000060", "expires=1800000120");
    req.headers_mut()
        .insert("signature-input", input.parse().unwrap());
    assert_eq!(
        fx.verifier().verify(&req).unwrap_err(),
        HttpSigError::BadSignature
    );
}

#[test]
fn rule_signature_by_another_key_fails() {
    let fx = Fx::new();
    let valid = Spec::valid(&fx);
    fx.verifier().verify(&signed(&fx, &valid)).unwrap();
    // Same algorithm, another key.
    let other = SigningKey::generate(Algorithm::EdDSA).unwrap();
    let mut req = fx.request();
    sign_spec(&mut req, &valid, &other);
    assert_eq!(
        fx.verifier().verify(&req).unwrap_err(),
        HttpSigError::BadSignature
    );
    // Another algorithm than cnf.jwk.alg.
    let mut req = fx.request();
    sign_spec(&mut req, &valid, fx.server_key.as_ref());
    assert!(matches!(
        fx.verifier().verify(&req),
        Err(HttpSigError::BadSignature | HttpSigError::Key(_))
    ));
}

#[test]
fn rule_nonce_replay_rejected() {
    let fx = Fx::new();
    let req = signed(&fx, &Spec::valid(&fx));
    let v = fx.verifier_with_shared_replay();
    v.verify(&req).unwrap();
    assert_eq!(v.verify(&req).unwrap_err(), HttpSigError::Replayed);
    // The same nonce from another sender key is not a replay (keys are per sender).
    let other_key = SigningKey::generate(Algorithm::EdDSA).unwrap();
    let other_wit = fx.mint("wimse://example.org/other", &other_key, 3600);
    let spec = Spec {
        wits: vec![other_wit],
        ..Spec::valid(&fx)
    };
    let mut req2 = fx.request();
    sign_spec(&mut req2, &spec, &other_key);
    v.verify(&req2).unwrap();
    // A message that fails another rule does not take the nonce.
    let fx = Fx::new();
    let v = fx.verifier_with_shared_replay();
    let mut bad = signed(&fx, &Spec::valid(&fx));
    *bad.method_mut() = Method::PUT;
    assert_eq!(v.verify(&bad).unwrap_err(), HttpSigError::BadSignature);
    v.verify(&signed(&fx, &Spec::valid(&fx))).unwrap();
}

#[test]
fn rule_replay_cache_full_fails_closed() {
    let fx = Fx::new();
    let v = RequestVerifier::new(
        fx.validator(),
        fx.keys.clone(),
        Arc::new(MemoryReplayGuard::new(0)),
        fx.clock(),
    )
    .origin(ORIGIN);
    let err = v.verify(&signed(&fx, &Spec::valid(&fx))).unwrap_err();
    assert_eq!(err, HttpSigError::ReplayCacheFull);
    assert_eq!(err.status(), 503);
}

#[test]
fn rule_exactly_one_wit_header() {
    assert_rule(
        |fx, s| s.wits = vec![fx.client_wit.clone(), fx.client_wit.clone()],
        HttpSigError::DuplicateWit,
    );
    assert_rule(
        |fx, s| {
            s.wits = vec![fx.client_wit.clone(), fx.server_wit.clone()];
        },
        HttpSigError::DuplicateWit,
    );
    assert_rule(
        |_, s| {
            s.wits = vec![];
            *s = s.clone().without("\"workload-identity-token\"");
        },
        HttpSigError::MissingWit,
    );
}

#[test]
fn rule_wit_must_be_valid() {
    assert_rule(
        |_, s| s.wits = vec!["not.a.jwt".into()],
        HttpSigError::InvalidWit(JoseError::Malformed("header is not base64url")),
    );
}

#[test]
fn rule_wit_must_not_be_expired() {
    let fx = Fx::new();
    let wit = fx.mint("wimse://example.org/client", fx.client_key.as_ref(), 60);
    let spec = Spec {
        wits: vec![wit],
        ..Spec::valid(&fx)
    };
    let req = signed(&fx, &spec);
    fx.verifier().verify(&req).unwrap();
    // Later, with a fresh signature but the same (now expired) WIT.
    fx.clock.set(NOW + 120);
    let spec = Spec {
        created: Some(NOW + 120),
        expires: Some(NOW + 180),
        ..spec
    };
    let req = signed(&fx, &spec);
    assert_eq!(
        fx.verifier().verify(&req).unwrap_err(),
        HttpSigError::InvalidWit(JoseError::Expired {
            exp: NOW + 60,
            now: NOW + 120
        })
    );
}

#[test]
fn rule_wit_from_untrusted_trust_domain_rejected() {
    // The verifier accepts example.org only.
    assert_rule(
        |fx, s| s.wits = vec![fx.mint("wimse://other.org/client", fx.client_key.as_ref(), 3600)],
        HttpSigError::InvalidWit(JoseError::SubjectRejected("trust domain not accepted")),
    );
    // Without the allow-list, there are no anchors for other.org.
    let fx = Fx::new();
    let spec = Spec {
        wits: vec![fx.mint("wimse://other.org/client", fx.client_key.as_ref(), 3600)],
        ..Spec::valid(&fx)
    };
    let v = RequestVerifier::new(
        Validator::new(WitProfile::Wimse, fx.clock()),
        fx.keys.clone(),
        Arc::new(MemoryReplayGuard::new(10)),
        fx.clock(),
    )
    .origin(ORIGIN);
    assert_eq!(
        v.verify(&signed(&fx, &spec)).unwrap_err(),
        HttpSigError::InvalidWit(JoseError::UnknownKey)
    );
}

#[test]
fn rule_wit_signed_by_another_issuer_rejected() {
    assert_rule(
        |fx, s| {
            let rogue = SigningKey::generate(Algorithm::ES256)
                .unwrap()
                .with_kid("issuer-1");
            let claims = WitClaims::new(
                WorkloadId::try_from("wimse://example.org/client").unwrap(),
                fx.client_key.public_jwk(),
                NOW,
                3600,
            )
            .unwrap();
            s.wits = vec![wit::create(&claims, &rogue).unwrap()];
        },
        HttpSigError::InvalidWit(JoseError::BadSignature),
    );
}

#[test]
fn rule_wit_is_validated_first() {
    // Invalid WIT and a broken signature: the WIT error wins.
    let fx = Fx::new();
    let spec = Spec {
        wits: vec!["not.a.jwt".into()],
        keyid: Some("x"),
        ..Spec::valid(&fx)
    };
    let mut req = signed(&fx, &spec);
    *req.method_mut() = Method::DELETE;
    assert!(matches!(
        fx.verifier().verify(&req),
        Err(HttpSigError::InvalidWit(_))
    ));
}

#[test]
fn rule_signature_required_and_label_selection() {
    let fx = Fx::new();
    let mut req = fx.request();
    req.headers_mut()
        .insert(wimse::WIT_HEADER, fx.client_wit.parse().unwrap());
    assert_eq!(
        fx.verifier().verify(&req).unwrap_err(),
        HttpSigError::MissingSignature
    );

    // One signature under another label is accepted.
    let spec = Spec {
        label: "sig1",
        ..Spec::valid(&fx)
    };
    fx.verifier().verify(&signed(&fx, &spec)).unwrap();

    // Two signatures, none labelled `wimse`: ambiguous.
    let mut req = signed(&fx, &spec);
    let spec2 = Spec {
        label: "sig2",
        ..Spec::valid(&fx)
    };
    sign_spec(&mut req, &spec2, fx.client_key.as_ref());
    assert_eq!(
        fx.verifier().verify(&req).unwrap_err(),
        HttpSigError::AmbiguousSignature("wimse")
    );

    // With a `wimse` signature, that one is checked and others are ignored.
    let mut req = signed(&fx, &Spec::valid(&fx));
    let proxy = Spec {
        label: "proxy",
        components: vec!["\"@method\""],
        ..Spec::valid(&fx)
    };
    let proxy_key = SigningKey::generate(Algorithm::ES256).unwrap();
    sign_spec(&mut req, &proxy, &proxy_key);
    let ok = fx.verifier().verify(&req).unwrap();
    assert_eq!(ok.signature().label(), "wimse");
}

// ---------------------------------------------------------------------------------------
// Response rules
// ---------------------------------------------------------------------------------------

/// A signed request the server has verified, and its nonce.
struct Exchange {
    req: http::Request<Vec<u8>>,
    nonce: String,
}

fn exchange(fx: &Fx) -> Exchange {
    let signer = RequestSigner::new(fx.client_wit.clone(), fx.client_key.clone(), fx.clock());
    let mut req = fx.request();
    let sent = signer.sign(&mut req, AUD).unwrap();
    fx.verifier().verify(&req).unwrap();
    Exchange {
        req,
        nonce: sent.nonce().to_owned(),
    }
}

fn response() -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(200)
        .header("content-type", "text/plain")
        .body(b"No ice cream today.\n\n".to_vec())
        .unwrap()
}

/// Signs a response with explicit components and parameters.
fn sign_response_custom(
    fx: &Fx,
    ex: &Exchange,
    resp: &mut http::Response<Vec<u8>>,
    components: &[&str],
    params: impl FnOnce(SignatureParams) -> SignatureParams,
) {
    resp.headers_mut()
        .insert(wimse::WIT_HEADER, fx.server_wit.parse().unwrap());
    let digest = content_digest(resp.body(), &[DigestAlgorithm::Sha256]);
    resp.headers_mut()
        .insert("content-digest", digest.parse().unwrap());
    let p = SignatureParams::new(components.iter().map(|c| ComponentId::parse(c).unwrap()))
        .with_created(NOW)
        .unwrap()
        .with_expires(NOW + 60)
        .unwrap()
        .with_nonce("resp-nonce-0123456789a")
        .unwrap()
        .with_tag(wimse::TAG)
        .unwrap();
    let p = params(p);
    let out = sign(
        &Message::Response(
            ResponseMessage::from_response(resp)
                .with_request(RequestMessage::from_request(&ex.req)),
        ),
        "wimse",
        &p,
        fx.server_key.as_ref(),
        &Options::default(),
    )
    .unwrap();
    out.apply(resp.headers_mut()).unwrap();
}

const RESPONSE_COMPONENTS: [&str; 6] = [
    "\"@status\"",
    "\"workload-identity-token\"",
    "\"content-type\"",
    "\"content-digest\"",
    "\"@method\";req",
    "\"@request-target\";req",
];

fn verify_response(
    fx: &Fx,
    ex: &Exchange,
    resp: &http::Response<Vec<u8>>,
) -> Result<(), HttpSigError> {
    fx.response_verifier()
        .verify(resp, RequestMessage::from_request(&ex.req), &ex.nonce)
        .map(|_| ())
}

#[test]
fn response_rule_req_nonce_required_and_matching() {
    let fx = Fx::new();
    let ex = exchange(&fx);
    let nonce = ex.nonce.clone();
    let mut ok = response();
    sign_response_custom(&fx, &ex, &mut ok, &RESPONSE_COMPONENTS, |p| {
        p.with_string_param(wimse::PARAM_REQ_NONCE, &nonce).unwrap()
    });
    verify_response(&fx, &ex, &ok).unwrap();

    let mut missing = response();
    sign_response_custom(&fx, &ex, &mut missing, &RESPONSE_COMPONENTS, |p| p);
    assert_eq!(
        verify_response(&fx, &ex, &missing).unwrap_err(),
        HttpSigError::MissingParameter("wimse-req-nonce")
    );
    let mut wrong = response();
    sign_response_custom(&fx, &ex, &mut wrong, &RESPONSE_COMPONENTS, |p| {
        p.with_string_param(wimse::PARAM_REQ_NONCE, "another-request-nonce")
            .unwrap()
    });
    assert_eq!(
        verify_response(&fx, &ex, &wrong).unwrap_err(),
        HttpSigError::RequestNonceMismatch
    );
}

#[test]
fn response_rule_required_components() {
    for (missing, shown) in [
        ("\"@status\"", "\"@status\""),
        ("\"@method\";req", "\"@method\";req"),
        ("\"@request-target\";req", "\"@request-target\";req"),
        ("\"workload-identity-token\"", "\"workload-identity-token\""),
        ("\"content-type\"", "\"content-type\""),
        ("\"content-digest\"", "\"content-digest\""),
    ] {
        let fx = Fx::new();
        let ex = exchange(&fx);
        let nonce = ex.nonce.clone();
        let comps: Vec<&str> = RESPONSE_COMPONENTS
            .iter()
            .copied()
            .filter(|c| *c != missing)
            .collect();
        let mut resp = response();
        sign_response_custom(&fx, &ex, &mut resp, &comps, |p| {
            p.with_string_param(wimse::PARAM_REQ_NONCE, &nonce).unwrap()
        });
        assert_eq!(
            verify_response(&fx, &ex, &resp).unwrap_err(),
            HttpSigError::UncoveredComponent(shown.into()),
            "{missing}"
        );
    }
}

type ParamsFn = Box<dyn Fn(SignatureParams) -> SignatureParams>;

#[test]
fn response_rule_forbidden_params_tag_and_windows() {
    let fx = Fx::new();
    let ex = exchange(&fx);
    let nonce = ex.nonce.clone();
    let cases: Vec<(ParamsFn, HttpSigError)> = vec![
        (
            Box::new(|p: SignatureParams| p.with_keyid("k").unwrap()),
            HttpSigError::ForbiddenParameter("keyid"),
        ),
        (
            Box::new(|p: SignatureParams| p.with_string_param("alg", "ecdsa-p256-sha256").unwrap()),
            HttpSigError::ForbiddenParameter("alg"),
        ),
        (
            Box::new(|p: SignatureParams| p.with_tag("other").unwrap()),
            HttpSigError::WrongTag,
        ),
        (
            Box::new(|p: SignatureParams| {
                p.with_expires(NOW - 100)
                    .unwrap()
                    .with_created(NOW - 200)
                    .unwrap()
            }),
            HttpSigError::Expired {
                expires: NOW - 100,
                now: NOW,
            },
        ),
    ];
    for (mutate, expected) in cases {
        let mut resp = response();
        let n = nonce.clone();
        sign_response_custom(&fx, &ex, &mut resp, &RESPONSE_COMPONENTS, move |p| {
            mutate(p.with_string_param(wimse::PARAM_REQ_NONCE, &n).unwrap())
        });
        assert_eq!(verify_response(&fx, &ex, &resp).unwrap_err(), expected);
    }
}

#[test]
fn response_tampering_and_replay() {
    let fx = Fx::new();
    let ex = exchange(&fx);
    let signer = ResponseSigner::new(fx.server_wit.clone(), fx.server_key.clone(), fx.clock());
    let signed_response = || {
        let mut r = response();
        signer
            .sign(&mut r, RequestMessage::from_request(&ex.req), &ex.nonce)
            .unwrap();
        r
    };
    verify_response(&fx, &ex, &signed_response()).unwrap();

    let mut r = signed_response();
    *r.status_mut() = http::StatusCode::NOT_FOUND;
    assert_eq!(
        verify_response(&fx, &ex, &r).unwrap_err(),
        HttpSigError::BadSignature
    );

    let mut r = signed_response();
    *r.body_mut() = b"Ice cream for everyone!".to_vec();
    assert_eq!(
        verify_response(&fx, &ex, &r).unwrap_err(),
        HttpSigError::ContentDigestMismatch
    );

    // Replayed to the client that sent another request (another target).
    let r = signed_response();
    let mut other = fx.request();
    *other.uri_mut() = "/api/transfer?dry-run=0".parse().unwrap();
    assert_eq!(
        fx.response_verifier()
            .verify(&r, RequestMessage::from_request(&other), &ex.nonce)
            .unwrap_err(),
        HttpSigError::BadSignature
    );

    // The same response twice to one verifier.
    let v = fx.response_verifier();
    let r = signed_response();
    v.verify(&r, RequestMessage::from_request(&ex.req), &ex.nonce)
        .unwrap();
    assert_eq!(
        v.verify(&r, RequestMessage::from_request(&ex.req), &ex.nonce)
            .unwrap_err(),
        HttpSigError::Replayed
    );

    // The server's WIT must be valid, and must be the one whose key signed.
    let mut r = signed_response();
    r.headers_mut()
        .insert(wimse::WIT_HEADER, fx.client_wit.parse().unwrap());
    assert_eq!(
        verify_response(&fx, &ex, &r).unwrap_err(),
        HttpSigError::BadSignature
    );
    let mut r = signed_response();
    r.headers_mut().remove(wimse::WIT_HEADER);
    assert_eq!(
        verify_response(&fx, &ex, &r).unwrap_err(),
        HttpSigError::MissingWit
    );
    let mut r = signed_response();
    let rogue = fx.mint("wimse://example.org/server", fx.server_key.as_ref(), 3600);
    fx.clock.set(NOW + 3700);
    assert!(matches!(
        verify_response(&fx, &ex, &r),
        Err(HttpSigError::InvalidWit(JoseError::Expired { .. }))
    ));
    fx.clock.set(NOW);
    r.headers_mut()
        .append(wimse::WIT_HEADER, rogue.parse().unwrap());
    assert_eq!(
        verify_response(&fx, &ex, &r).unwrap_err(),
        HttpSigError::DuplicateWit
    );
}

#[test]
fn response_signing_sets_digest_and_wit() {
    let fx = Fx::new();
    let ex = exchange(&fx);
    let mut resp = http::Response::builder()
        .status(204)
        .body(Vec::new())
        .unwrap();
    ResponseSigner::new(fx.server_wit.clone(), fx.server_key.clone(), fx.clock())
        .lifetime(30)
        .sign(&mut resp, RequestMessage::from_request(&ex.req), &ex.nonce)
        .unwrap();
    assert!(!resp.headers().contains_key("content-digest"));
    assert_eq!(resp.headers()[wimse::WIT_HEADER], fx.server_wit.as_str());
    let input = resp.headers()["signature-input"].to_str().unwrap();
    assert!(input.starts_with(
        "wimse=(\"@status\" \"workload-identity-token\" \"@method\";req \"@request-target\";req);"
    ));
    assert!(input.contains(&format!("expires={}", NOW + 30)));
    verify_response(&fx, &ex, &resp).unwrap();
    // Signing twice is refused (the label is taken).
    let mut parts = resp.into_parts().0;
    assert_eq!(
        ResponseSigner::new(fx.server_wit.clone(), fx.server_key.clone(), fx.clock())
            .sign_parts(
                &mut parts,
                &[],
                RequestMessage::from_request(&ex.req),
                &ex.nonce
            )
            .unwrap_err(),
        HttpSigError::LabelInUse("wimse".into())
    );
}

#[test]
fn unsigned_response_is_detected() {
    let fx = Fx::new();
    let ex = exchange(&fx);
    let resp = response();
    assert!(!wimse::is_signed(resp.headers()));
    assert_eq!(
        verify_response(&fx, &ex, &resp).unwrap_err(),
        HttpSigError::MissingWit
    );
    let mut resp = response();
    resp.headers_mut()
        .insert(wimse::WIT_HEADER, fx.server_wit.parse().unwrap());
    assert_eq!(
        verify_response(&fx, &ex, &resp).unwrap_err(),
        HttpSigError::MissingSignature
    );
}
