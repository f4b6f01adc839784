//! RFC 9421 Appendix B.2 vectors (keys from Appendix B.1), the RFC 9530 digest of the
//! B.2 body, an OpenSSL-made `rsa-v1_5-sha256` vector, and tampering. Sources:
//! `tests/vectors/rfc9421/README.md`.

use aims_crypto::{Algorithm, SigningKey, VerifyingKey};
use aims_httpsig::{
    ComponentId, HttpSigError, Message, Options, RequestMessage, ResponseMessage,
    SignatureAlgorithm, SignatureParams, find_signature, sign, signature_base,
    verify_content_digest, verify_with_key,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use serde_json::Value;

use crate::support::{member, pem_der, public_key_from_pem};

const VECTORS: &str = include_str!("../vectors/rfc9421/rfc9421_b2_vectors.json");
const RSA15: &str = include_str!("../vectors/rfc9421/generated/rsa-v1_5-sha256.json");

fn vectors() -> Value {
    serde_json::from_str(VECTORS).unwrap()
}

fn expected_base(id: &str) -> &'static str {
    match id {
        "B.2.1" => include_str!("../vectors/rfc9421/bases/B.2.1.txt"),
        "B.2.2" => include_str!("../vectors/rfc9421/bases/B.2.2.txt"),
        "B.2.3" => include_str!("../vectors/rfc9421/bases/B.2.3.txt"),
        "B.2.4" => include_str!("../vectors/rfc9421/bases/B.2.4.txt"),
        "B.2.5" => include_str!("../vectors/rfc9421/bases/B.2.5.txt"),
        "B.2.6" => include_str!("../vectors/rfc9421/bases/B.2.6.txt"),
        _ => unreachable!("{id}"),
    }
}

fn key(keyid: &str) -> VerifyingKey {
    public_key_from_pem(match keyid {
        "test-key-rsa-pss" => include_str!("../vectors/rfc9421/keys/test-key-rsa-pss.pem"),
        "test-key-ecc-p256" => include_str!("../vectors/rfc9421/keys/test-key-ecc-p256.pem"),
        "test-key-ed25519" => include_str!("../vectors/rfc9421/keys/test-key-ed25519.pem"),
        "test-key-rsa" => include_str!("../vectors/rfc9421/keys/test-key-rsa.pem"),
        _ => unreachable!("{keyid}"),
    })
}

fn jws_alg(name: &str) -> Algorithm {
    SignatureAlgorithm::from_name(name).unwrap().jws()
}

/// The B.2 test messages, owned, so tests can tamper with them.
#[derive(Clone)]
struct Fixture {
    method: Method,
    uri: Uri,
    req_headers: HeaderMap,
    req_body: Vec<u8>,
    status: StatusCode,
    resp_headers: HeaderMap,
    resp_body: Vec<u8>,
}

fn headers_of(v: &Value) -> HeaderMap {
    let mut h = HeaderMap::new();
    for pair in v.as_array().unwrap() {
        let name = pair[0].as_str().unwrap();
        let value = pair[1].as_str().unwrap();
        h.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    h
}

impl Fixture {
    fn new() -> Self {
        let v = vectors();
        let req = &v["request"];
        let resp = &v["response"];
        Self {
            method: req["method"].as_str().unwrap().parse().unwrap(),
            uri: req["url"].as_str().unwrap().parse().unwrap(),
            req_headers: headers_of(&req["headers"]),
            req_body: req["body"].as_str().unwrap().as_bytes().to_vec(),
            status: StatusCode::from_u16(resp["status"].as_u64().unwrap() as u16).unwrap(),
            resp_headers: headers_of(&resp["headers"]),
            resp_body: resp["body"].as_str().unwrap().as_bytes().to_vec(),
        }
    }

    /// Adds a case's `Signature-Input` and `Signature` to the message it signs.
    fn with_signature(mut self, case: &Value) -> Self {
        let h = if case["message"] == "response" {
            &mut self.resp_headers
        } else {
            &mut self.req_headers
        };
        for (name, field) in [
            ("signature-input", "signature_input"),
            ("signature", "signature"),
        ] {
            h.append(name, case[field].as_str().unwrap().parse().unwrap());
        }
        self
    }

    fn request(&self) -> RequestMessage<'_> {
        RequestMessage::new(&self.method, &self.uri, &self.req_headers)
    }

    fn message(&self, kind: &str) -> Message<'_> {
        if kind == "response" {
            Message::Response(
                ResponseMessage::new(self.status, &self.resp_headers).with_request(self.request()),
            )
        } else {
            Message::Request(self.request())
        }
    }
}

fn label(case: &Value) -> &str {
    case["signature"]
        .as_str()
        .unwrap()
        .split_once('=')
        .unwrap()
        .0
}

fn cases() -> Vec<Value> {
    vectors()["cases"].as_array().unwrap().clone()
}

fn asymmetric_cases() -> Vec<Value> {
    cases()
        .into_iter()
        .filter(|c| c["alg"] != "hmac-sha256")
        .collect()
}

fn verify_case(fx: &Fixture, case: &Value) -> Result<(), HttpSigError> {
    verify_with_key(
        &fx.message(case["message"].as_str().unwrap()),
        label(case),
        &key(case["keyid"].as_str().unwrap()),
        jws_alg(case["alg"].as_str().unwrap()),
        &Options::default(),
    )
    .map(|_| ())
}

#[test]
fn rfc9421_b2_every_signature_base_is_reproduced() {
    let cases = cases();
    assert_eq!(cases.len(), 6);
    for case in &cases {
        let fx = Fixture::new().with_signature(case);
        let msg = fx.message(case["message"].as_str().unwrap());
        let entry = find_signature(msg.headers(), label(case), &Options::default()).unwrap();
        let base = signature_base(&msg, entry.params(), &Options::default().field_types).unwrap();
        assert_eq!(
            base,
            expected_base(case["id"].as_str().unwrap()),
            "{}",
            case["id"]
        );
        // The parsed Signature-Input re-serializes to itself.
        let input = case["signature_input"].as_str().unwrap();
        assert_eq!(
            entry.params().serialize().unwrap(),
            member(input, label(case))
        );
    }
}

#[test]
fn rfc9421_b2_every_asymmetric_signature_verifies() {
    let cases = asymmetric_cases();
    let ids: Vec<_> = cases.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["B.2.1", "B.2.2", "B.2.3", "B.2.4", "B.2.6"]);
    for case in &cases {
        let fx = Fixture::new().with_signature(case);
        verify_case(&fx, case).unwrap_or_else(|e| panic!("{}: {e}", case["id"]));
    }
}

#[test]
fn rfc9421_b2_6_ed25519_signature_is_reproduced_byte_exactly() {
    let case = cases().into_iter().find(|c| c["id"] == "B.2.6").unwrap();
    let pkcs8 = pem_der(include_str!("../vectors/rfc9421/keys/test-key-ed25519.key"));
    let signer = SigningKey::from_pkcs8(Algorithm::EdDSA, &pkcs8).unwrap();
    let params = SignatureParams::new(
        [
            r#""date""#,
            r#""@method""#,
            r#""@path""#,
            r#""@authority""#,
            r#""content-type""#,
            r#""content-length""#,
        ]
        .map(|c| ComponentId::parse(c).unwrap()),
    )
    .with_created(1618884473)
    .unwrap()
    .with_keyid("test-key-ed25519")
    .unwrap();
    let fx = Fixture::new();
    let out = sign(
        &fx.message("request"),
        "sig-b26",
        &params,
        &signer,
        &Options::default(),
    )
    .unwrap();
    assert_eq!(
        out.signature_input(),
        case["signature_input"].as_str().unwrap()
    );
    assert_eq!(
        out.signature(),
        "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:"
    );
    assert_eq!(out.signature(), case["signature"].as_str().unwrap());
    // Applied to the message, it verifies.
    let mut fx = fx;
    out.apply(&mut fx.req_headers).unwrap();
    verify_case(&fx, &case).unwrap();
    // The label is now taken.
    assert_eq!(
        out.apply(&mut fx.req_headers),
        Err(HttpSigError::LabelInUse("sig-b26".into()))
    );
}

#[test]
fn rfc9421_b2_5_hmac_is_not_applicable() {
    // AIMS never accepts symmetric keys: hmac-sha256 is not an algorithm here and
    // aims-crypto has no HMAC. B.2.5's signature base is still reproduced (see
    // rfc9421_b2_every_signature_base_is_reproduced; the README records the HMAC
    // check made outside the test suite).
    assert_eq!(
        SignatureAlgorithm::from_name("hmac-sha256"),
        Err(HttpSigError::UnsupportedAlgorithm("hmac-sha256".into()))
    );
    // A B.2.5 message that names hmac-sha256 is refused before any key is used.
    let case = cases().into_iter().find(|c| c["id"] == "B.2.5").unwrap();
    let mut fx = Fixture::new();
    fx.req_headers.append(
        "signature-input",
        r#"sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret";alg="hmac-sha256""#
            .parse()
            .unwrap(),
    );
    fx.req_headers.append(
        "signature",
        case["signature"].as_str().unwrap().parse().unwrap(),
    );
    assert_eq!(
        verify_with_key(
            &fx.message("request"),
            "sig-b25",
            &key("test-key-ed25519"),
            Algorithm::EdDSA,
            &Options::default()
        )
        .unwrap_err(),
        HttpSigError::UnsupportedAlgorithm("hmac-sha256".into())
    );
}

#[test]
fn rfc9421_b2_body_digests() {
    let fx = Fixture::new();
    assert_eq!(
        aims_httpsig::content_digest(&fx.req_body, &[aims_httpsig::DigestAlgorithm::Sha512]),
        fx.req_headers["content-digest"].to_str().unwrap()
    );
    verify_content_digest(&fx.req_headers, &fx.req_body).unwrap();
    verify_content_digest(&fx.resp_headers, &fx.resp_body).unwrap();
    assert_eq!(
        verify_content_digest(&fx.req_headers, b"{\"hello\": \"world!\"}"),
        Err(HttpSigError::ContentDigestMismatch)
    );
}

/// Applies `tamper` to a signed copy and expects every asymmetric case that covers what
/// was changed to fail with a bad signature.
fn expect_tampering_detected(what: &str, covered_by: &[&str], tamper: impl Fn(&mut Fixture)) {
    for case in asymmetric_cases() {
        let id = case["id"].as_str().unwrap();
        let mut fx = Fixture::new().with_signature(&case);
        verify_case(&fx, &case).unwrap();
        tamper(&mut fx);
        let result = verify_case(&fx, &case);
        if covered_by.contains(&id) {
            assert_eq!(result, Err(HttpSigError::BadSignature), "{what}: {id}");
        } else {
            assert_eq!(result, Ok(()), "{what} is not covered by {id}");
        }
    }
}

#[test]
fn rfc9421_b2_tampered_method_fails() {
    expect_tampering_detected("method", &["B.2.3", "B.2.6"], |fx| fx.method = Method::PUT);
}

#[test]
fn rfc9421_b2_tampered_path_fails() {
    expect_tampering_detected("path", &["B.2.3", "B.2.6"], |fx| {
        fx.uri = "https://example.com/bar?param=Value&Pet=dog"
            .parse()
            .unwrap();
    });
}

#[test]
fn rfc9421_b2_tampered_query_parameter_fails() {
    expect_tampering_detected("query", &["B.2.2", "B.2.3"], |fx| {
        fx.uri = "https://example.com/foo?param=Value&Pet=cat"
            .parse()
            .unwrap();
    });
}

#[test]
fn rfc9421_b2_tampered_covered_header_fails() {
    expect_tampering_detected("content-type", &["B.2.3", "B.2.4", "B.2.6"], |fx| {
        fx.req_headers
            .insert("content-type", "text/plain".parse().unwrap());
        fx.resp_headers
            .insert("content-type", "text/plain".parse().unwrap());
    });
    expect_tampering_detected("content-digest", &["B.2.2", "B.2.3", "B.2.4"], |fx| {
        let d = aims_httpsig::content_digest(b"other", &[aims_httpsig::DigestAlgorithm::Sha512]);
        fx.req_headers.insert("content-digest", d.parse().unwrap());
        fx.resp_headers.insert("content-digest", d.parse().unwrap());
    });
    // An uncovered header can change freely.
    expect_tampering_detected("x-extra", &[], |fx| {
        fx.req_headers.insert("x-extra", "1".parse().unwrap());
    });
}

#[test]
fn rfc9421_b2_tampered_body_fails_its_digest() {
    // The signatures cover Content-Digest, not the body: a changed body is caught by
    // the digest check, and a digest changed to match it by the signature.
    let mut fx = Fixture::new();
    fx.req_body = b"{\"hello\": \"there\"}".to_vec();
    fx.resp_body = b"{\"message\": \"bad dog\"}".to_vec();
    assert_eq!(
        verify_content_digest(&fx.req_headers, &fx.req_body),
        Err(HttpSigError::ContentDigestMismatch)
    );
    assert_eq!(
        verify_content_digest(&fx.resp_headers, &fx.resp_body),
        Err(HttpSigError::ContentDigestMismatch)
    );
}

#[test]
fn rfc9421_b2_tampered_params_fail() {
    for case in asymmetric_cases() {
        let mut fx = Fixture::new();
        let input = case["signature_input"]
            .as_str()
            .unwrap()
            .replace("created=1618884473", "created=1618884474");
        let h = if case["message"] == "response" {
            &mut fx.resp_headers
        } else {
            &mut fx.req_headers
        };
        h.append("signature-input", input.parse().unwrap());
        h.append(
            "signature",
            case["signature"].as_str().unwrap().parse().unwrap(),
        );
        assert_eq!(
            verify_case(&fx, &case),
            Err(HttpSigError::BadSignature),
            "{}",
            case["id"]
        );
    }
}

#[test]
fn rfc9421_b2_wrong_key_or_algorithm_fails() {
    let case = cases().into_iter().find(|c| c["id"] == "B.2.1").unwrap();
    let fx = Fixture::new().with_signature(&case);
    let msg = fx.message("request");
    // Right key, other RSA algorithm.
    assert_eq!(
        verify_with_key(
            &msg,
            "sig-b21",
            &key("test-key-rsa-pss"),
            Algorithm::PS256,
            &Options::default()
        )
        .unwrap_err(),
        HttpSigError::BadSignature
    );
    // Another RSA key.
    assert_eq!(
        verify_with_key(
            &msg,
            "sig-b21",
            &key("test-key-rsa"),
            Algorithm::PS512,
            &Options::default()
        )
        .unwrap_err(),
        HttpSigError::BadSignature
    );
    // A key of another family is refused before verification.
    assert!(matches!(
        verify_with_key(
            &msg,
            "sig-b21",
            &key("test-key-ed25519"),
            Algorithm::PS512,
            &Options::default()
        ),
        Err(HttpSigError::Key(_))
    ));
    assert_eq!(
        verify_with_key(
            &msg,
            "sig-b99",
            &key("test-key-rsa-pss"),
            Algorithm::PS512,
            &Options::default()
        )
        .unwrap_err(),
        HttpSigError::LabelNotFound("sig-b99".into())
    );
}

#[test]
fn rsa_v1_5_sha256_vector_verifies() {
    let v: Value = serde_json::from_str(RSA15).unwrap();
    let mut fx = Fixture::new();
    fx.req_headers.append(
        "signature-input",
        v["signature_input"].as_str().unwrap().parse().unwrap(),
    );
    fx.req_headers.append(
        "signature",
        v["signature"].as_str().unwrap().parse().unwrap(),
    );
    let msg = fx.message("request");
    let entry = find_signature(msg.headers(), "sig-rsa15", &Options::default()).unwrap();
    assert_eq!(
        signature_base(&msg, entry.params(), &Options::default().field_types).unwrap(),
        v["signature_base"].as_str().unwrap()
    );
    verify_with_key(
        &msg,
        "sig-rsa15",
        &key("test-key-rsa"),
        Algorithm::RS256,
        &Options::default(),
    )
    .unwrap();
    // The `alg` parameter must match the algorithm the verifier uses.
    assert_eq!(
        verify_with_key(
            &msg,
            "sig-rsa15",
            &key("test-key-rsa"),
            Algorithm::PS512,
            &Options::default()
        )
        .unwrap_err(),
        HttpSigError::AlgorithmMismatch {
            alg: "rsa-v1_5-sha256".into()
        }
    );
}

#[test]
fn sign_and_verify_every_signing_algorithm() {
    for alg in [Algorithm::EdDSA, Algorithm::ES256, Algorithm::ES384] {
        let signer = SigningKey::generate(alg).unwrap();
        let fx = Fixture::new();
        let params = SignatureParams::new(
            [r#""@method""#, r#""@target-uri""#, r#""content-digest""#]
                .map(|c| ComponentId::parse(c).unwrap()),
        )
        .with_created(1618884473)
        .unwrap()
        .with_alg(SignatureAlgorithm::from_jws(alg).unwrap())
        .unwrap();
        let out = sign(
            &fx.message("request"),
            "s",
            &params,
            &signer,
            &Options::default(),
        )
        .unwrap();
        let mut fx = fx;
        out.apply(&mut fx.req_headers).unwrap();
        let entry = verify_with_key(
            &fx.message("request"),
            "s",
            signer.verifying_key(),
            alg,
            &Options::default(),
        )
        .unwrap();
        assert_eq!(
            entry.params().alg(),
            Some(SignatureAlgorithm::from_jws(alg).unwrap().name())
        );
        // A signer whose algorithm contradicts `alg` is refused.
        let other = SigningKey::generate(if alg == Algorithm::EdDSA {
            Algorithm::ES256
        } else {
            Algorithm::EdDSA
        })
        .unwrap();
        assert!(matches!(
            sign(
                &fx.message("request"),
                "t",
                &params,
                &other,
                &Options::default()
            ),
            Err(HttpSigError::AlgorithmMismatch { .. })
        ));
    }
}

#[test]
fn malformed_signature_fields_are_refused() {
    let case = cases().into_iter().find(|c| c["id"] == "B.2.6").unwrap();
    let run = |input: &str, sig: &str| {
        let mut fx = Fixture::new();
        fx.req_headers
            .append("signature-input", input.parse().unwrap());
        fx.req_headers.append("signature", sig.parse().unwrap());
        verify_case(&fx, &case)
    };
    let good_input = case["signature_input"].as_str().unwrap();
    let good_sig = case["signature"].as_str().unwrap();
    assert_eq!(run(good_input, good_sig), Ok(()));
    assert_eq!(
        run("sig-b26=(\"date\"", good_sig),
        Err(HttpSigError::MalformedHeader("signature-input"))
    );
    assert_eq!(
        run("sig-b26=\"date\"", good_sig),
        Err(HttpSigError::MalformedHeader("signature-input"))
    );
    assert_eq!(
        run(good_input, "sig-b26=\"not bytes\""),
        Err(HttpSigError::MalformedHeader("signature"))
    );
    assert_eq!(
        run(
            &good_input.replace("created=1618884473", "created=\"x\""),
            good_sig
        ),
        Err(HttpSigError::MalformedParameter("created".into()))
    );
    assert_eq!(
        run(&good_input.replace("\"date\"", "\"date\";foo"), good_sig),
        Err(HttpSigError::UnsupportedComponentParameter("foo".into()))
    );
    assert_eq!(
        run(good_input, "other=:AAAA:"),
        Err(HttpSigError::LabelNotFound("sig-b26".into()))
    );
    // Signature fields split over several lines are combined (RFC 9110 section 5.3).
    let mut fx = Fixture::new();
    fx.req_headers
        .append("signature-input", "other=()".parse().unwrap());
    fx.req_headers
        .append("signature-input", good_input.parse().unwrap());
    fx.req_headers
        .append("signature", "other=:AAAA:".parse().unwrap());
    fx.req_headers
        .append("signature", good_sig.parse().unwrap());
    verify_case(&fx, &case).unwrap();
    // Oversized fields are refused before parsing.
    let mut fx = Fixture::new();
    fx.req_headers.append(
        "signature-input",
        format!("{good_input}, pad=(\"{}\")", "a".repeat(9000))
            .parse()
            .unwrap(),
    );
    fx.req_headers
        .append("signature", good_sig.parse().unwrap());
    assert_eq!(
        verify_case(&fx, &case),
        Err(HttpSigError::HeaderTooLarge("signature-input"))
    );
}
