//! The signed request and response of draft-ietf-wimse-http-signature section 3.6
//! (Figures 1-4): signature bases, byte-exact Ed25519 re-signing, verification with the
//! WITs' `cnf.jwk`, and the profile's rules. The example WITs are signed by an issuer
//! key that is not published, so the full flow (WIT validation included) is tested
//! with WITs minted in `wimse_profile.rs`. Sources: `tests/vectors/wimse/README.md`.

use std::sync::Arc;

use aims_core::ManualClock;
use aims_crypto::{Algorithm, Jwk, Signer, SigningKey, VerifyingKey, b64};
use aims_httpsig::wimse::{
    self, RequestSignatureParams, RequestVerifier, ResponseSignatureParams, ResponseVerifier,
};
use aims_httpsig::{
    HttpSigError, Message, Options, RequestMessage, ResponseMessage, find_signature,
    signature_base, verify_with_key,
};
use aims_jose::JoseError;
use aims_jose::StaticKeys;
use aims_jose::replay::MemoryReplayGuard;
use aims_jose::wit::{Validator, WitProfile};
use serde_json::Value;

use crate::support::{member, request_from_text, response_from_text, without_signatures};

const REQUEST: &str = include_str!("../vectors/wimse/sigs-request.http");
const RESPONSE: &str = include_str!("../vectors/wimse/sigs-response.http");
const KEYS: &str = include_str!("../vectors/wimse/sigs-keys.json");

const REQUEST_SIGNATURE: &str = "wimse=:zSK+kx5EnoZct9FZ6LMYzfx0mk32oI/hHpB7y4rgHxkRDcAA72yBW5xgzA03nKviXLjL7nphq840Uwznp6IKAw==:";
const RESPONSE_SIGNATURE: &str = "wimse=:57ZChndLoz5toS+/0RGeQJG53gLrZD/bBterOWnHF1vb0cdceeUOKH/t4A+/bvquC/0VCb5DYFRdFNz4CW8yBQ==:";
const CREATED: i64 = 1785155797;

fn private_key(name: &str) -> SigningKey {
    let keys: Value = serde_json::from_str(KEYS).unwrap();
    let jwk: Jwk = serde_json::from_value(keys[name].clone()).unwrap();
    SigningKey::from_private_jwk(&jwk).unwrap()
}

/// The `cnf.jwk` of a WIT, read without verifying the WIT.
fn cnf_key(headers: &http::HeaderMap) -> VerifyingKey {
    let wit = headers["workload-identity-token"].to_str().unwrap();
    let payload = wit.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&b64::decode_url(payload).unwrap()).unwrap();
    let jwk: Jwk = serde_json::from_value(claims["cnf"]["jwk"].clone()).unwrap();
    assert_eq!(jwk.alg.as_deref(), Some("EdDSA"));
    VerifyingKey::from_jwk(&jwk).unwrap()
}

fn header<'a>(headers: &'a http::HeaderMap, name: &str) -> &'a str {
    headers[name].to_str().unwrap()
}

#[test]
fn wimse_keys_match_the_example_wits() {
    let request = request_from_text(REQUEST);
    let response = response_from_text(RESPONSE);
    let a = private_key("svc-a");
    let b = private_key("svc-b");
    assert_eq!(
        a.verifying_key().key_type(),
        cnf_key(request.headers()).key_type()
    );
    let wit_x = |h: &http::HeaderMap| {
        let wit = header(h, "workload-identity-token");
        let claims: Value =
            serde_json::from_slice(&b64::decode_url(wit.split('.').nth(1).unwrap()).unwrap())
                .unwrap();
        claims["cnf"]["jwk"]["x"].as_str().unwrap().to_owned()
    };
    assert_eq!(Some(wit_x(request.headers())), a.public_jwk().x.clone());
    assert_eq!(Some(wit_x(response.headers())), b.public_jwk().x.clone());
}

#[test]
fn wimse_request_example_signature_base() {
    let request = request_from_text(REQUEST);
    let msg = Message::Request(RequestMessage::from_request(&request));
    let entry = find_signature(msg.headers(), "wimse", &Options::default()).unwrap();
    let expected = format!(
        "\"@method\": GET\n\"@request-target\": /gimme-ice-cream?flavor=vanilla\n\
         \"workload-identity-token\": {}\n\"@signature-params\": {}",
        header(request.headers(), "workload-identity-token"),
        member(header(request.headers(), "signature-input"), "wimse"),
    );
    assert_eq!(
        signature_base(&msg, entry.params(), &Options::default().field_types).unwrap(),
        expected
    );
}

#[test]
fn wimse_request_example_is_reproduced_byte_exactly() {
    let example = request_from_text(REQUEST);
    let (mut parts, body) = request_from_text(REQUEST).into_parts();
    parts.headers = without_signatures(&parts.headers);
    let wit = header(example.headers(), "workload-identity-token");
    let out = wimse::sign_request(
        &mut parts,
        &body,
        wit,
        &private_key("svc-a"),
        &RequestSignatureParams {
            created: CREATED,
            expires: 1785156097,
            nonce: "abcd1111",
            audience: "https://svcb.example.com/gimme-ice-cream",
            sign_response: true,
        },
    )
    .unwrap();
    assert_eq!(out.signature(), REQUEST_SIGNATURE);
    assert_eq!(out.signature(), header(example.headers(), "signature"));
    assert_eq!(
        out.signature_input(),
        header(example.headers(), "signature-input")
    );
    assert_eq!(parts.headers, *example.headers());
}

#[test]
fn wimse_request_example_verifies_with_the_wit_cnf_key() {
    let request = request_from_text(REQUEST);
    let msg = Message::Request(RequestMessage::from_request(&request));
    let key = cnf_key(request.headers());
    verify_with_key(&msg, "wimse", &key, Algorithm::EdDSA, &Options::default()).unwrap();
    // The callee's key does not verify it.
    let other = cnf_key(response_from_text(RESPONSE).headers());
    assert_eq!(
        verify_with_key(&msg, "wimse", &other, Algorithm::EdDSA, &Options::default()).unwrap_err(),
        HttpSigError::BadSignature
    );
}

fn request_verifier(clock: &ManualClock) -> RequestVerifier {
    let clock = Arc::new(clock.clone());
    RequestVerifier::new(
        Validator::new(WitProfile::Wimse, clock.clone()),
        Arc::new(StaticKeys::new()),
        Arc::new(MemoryReplayGuard::new(100)),
        clock,
    )
    .origin("https://svcb.example.com")
}

#[test]
fn wimse_request_example_passes_every_profile_rule_with_the_cnf_key() {
    let clock = ManualClock::new(CREATED + 10);
    let request = request_from_text(REQUEST);
    let key = cnf_key(request.headers());
    let v = request_verifier(&clock);
    let ok = v
        .verify_signature_with_key(
            RequestMessage::from_request(&request),
            request.body(),
            &key,
            Algorithm::EdDSA,
            "svc-a",
        )
        .unwrap();
    assert_eq!(ok.nonce(), "abcd1111");
    assert!(ok.sign_response());
    assert_eq!(
        ok.audience(),
        Some("https://svcb.example.com/gimme-ice-cream")
    );
    assert_eq!((ok.created(), ok.expires()), (CREATED, 1785156097));
    // The same message again is a replay.
    assert_eq!(
        v.verify_signature_with_key(
            RequestMessage::from_request(&request),
            request.body(),
            &key,
            Algorithm::EdDSA,
            "svc-a",
        )
        .unwrap_err(),
        HttpSigError::Replayed
    );
    // After `expires` (300 s later, plus leeway) it is refused.
    clock.set(1785156097 + 30);
    assert!(matches!(
        request_verifier(&clock).verify_signature_with_key(
            RequestMessage::from_request(&request),
            request.body(),
            &key,
            Algorithm::EdDSA,
            "svc-a",
        ),
        Err(HttpSigError::Expired { .. })
    ));
}

#[test]
fn wimse_request_example_wit_is_not_trusted_here() {
    // Its issuer key is unpublished: with no anchors for example.com the WIT fails
    // first, before the (valid) signature is looked at.
    let clock = ManualClock::new(CREATED + 10);
    let request = request_from_text(REQUEST);
    assert_eq!(
        request_verifier(&clock).verify(&request).unwrap_err(),
        HttpSigError::InvalidWit(JoseError::UnknownKey)
    );
}

fn request_parts() -> http::request::Parts {
    request_from_text(REQUEST).into_parts().0
}

#[test]
fn wimse_response_example_signature_base() {
    let req = request_parts();
    let response = response_from_text(RESPONSE);
    let msg = Message::Response(
        ResponseMessage::from_response(&response).with_request(RequestMessage::from_parts(&req)),
    );
    let entry = find_signature(msg.headers(), "wimse", &Options::default()).unwrap();
    let expected = format!(
        "\"@status\": 404\n\"workload-identity-token\": {}\n\"content-type\": text/plain\n\
         \"content-digest\": sha-256=:UHKweBl9cpjdVqgTB65El8SexXlJYGG+XIslAYqC1mY=:\n\
         \"@method\";req: GET\n\"@request-target\";req: /gimme-ice-cream?flavor=vanilla\n\
         \"@signature-params\": {}",
        header(response.headers(), "workload-identity-token"),
        member(header(response.headers(), "signature-input"), "wimse"),
    );
    assert_eq!(
        signature_base(&msg, entry.params(), &Options::default().field_types).unwrap(),
        expected
    );
    // The body is the two-line "No ice cream today.\n\n" the digest was made over.
    aims_httpsig::verify_content_digest(response.headers(), response.body()).unwrap();
}

#[test]
fn wimse_response_example_is_reproduced_byte_exactly() {
    let req = request_parts();
    let example = response_from_text(RESPONSE);
    let (mut parts, body) = response_from_text(RESPONSE).into_parts();
    parts.headers = without_signatures(&parts.headers);
    let out = wimse::sign_response(
        &mut parts,
        &body,
        RequestMessage::from_parts(&req),
        header(example.headers(), "workload-identity-token"),
        &private_key("svc-b"),
        &ResponseSignatureParams {
            created: CREATED,
            expires: 1785156099,
            nonce: "abcd2222",
            request_nonce: "abcd1111",
        },
    )
    .unwrap();
    assert_eq!(out.signature(), RESPONSE_SIGNATURE);
    assert_eq!(
        out.signature_input(),
        header(example.headers(), "signature-input")
    );
    // The digest the signer set is the example's.
    assert_eq!(parts.headers, *example.headers());
}

#[test]
fn wimse_response_example_verifies_and_passes_the_profile_rules() {
    let req = request_parts();
    let response = response_from_text(RESPONSE);
    let key = cnf_key(response.headers());
    let msg = Message::Response(
        ResponseMessage::from_response(&response).with_request(RequestMessage::from_parts(&req)),
    );
    verify_with_key(&msg, "wimse", &key, Algorithm::EdDSA, &Options::default()).unwrap();

    let clock = Arc::new(ManualClock::new(CREATED + 10));
    let v = ResponseVerifier::new(
        Validator::new(WitProfile::Wimse, clock.clone()),
        Arc::new(StaticKeys::new()),
        Arc::new(MemoryReplayGuard::new(100)),
        clock,
    );
    let run = |nonce: &str| {
        v.verify_signature_with_key(
            ResponseMessage::from_response(&response)
                .with_request(RequestMessage::from_parts(&req)),
            response.body(),
            nonce,
            &key,
            Algorithm::EdDSA,
            "svc-b",
        )
    };
    assert_eq!(
        run("abcd9999").unwrap_err(),
        HttpSigError::RequestNonceMismatch
    );
    let ok = run("abcd1111").unwrap();
    assert_eq!(ok.nonce(), "abcd2222");
    // Against another request (other target), the `;req` components differ.
    let mut other = request_parts();
    other.uri = "/gimme-ice-cream?flavor=chocolate".parse().unwrap();
    assert_eq!(
        v.verify_signature_with_key(
            ResponseMessage::from_response(&response)
                .with_request(RequestMessage::from_parts(&other)),
            response.body(),
            "abcd1111",
            &key,
            Algorithm::EdDSA,
            "svc-b",
        )
        .unwrap_err(),
        HttpSigError::BadSignature
    );
    // The example's response WIT is not trusted here either.
    assert_eq!(
        v.verify(&response, RequestMessage::from_parts(&req), "abcd1111")
            .unwrap_err(),
        HttpSigError::InvalidWit(JoseError::UnknownKey)
    );
}
