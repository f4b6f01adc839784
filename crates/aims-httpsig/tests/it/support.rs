//! Helpers shared by the integration tests: vector files, PEM keys, HTTP messages in
//! their textual form.

use aims_crypto::{Jwk, VerifyingKey, b64};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::{PublicKey, RSAPublicKey};
use x509_parser::x509::SubjectPublicKeyInfo;

/// The DER inside a PEM document.
pub fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    b64::decode_std(body.trim()).unwrap()
}

fn unsigned(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

fn rsa_jwk(n: &[u8], e: &[u8]) -> Jwk {
    Jwk {
        kty: "RSA".into(),
        n: Some(b64::encode_url(unsigned(n))),
        e: Some(b64::encode_url(unsigned(e))),
        ..Jwk::default()
    }
}

/// A public key from a PEM `PUBLIC KEY` (SPKI: RSA, P-256 or Ed25519) or
/// `RSA PUBLIC KEY` (PKCS#1) document.
pub fn public_key_from_pem(pem: &str) -> VerifyingKey {
    let der = pem_der(pem);
    if pem.contains("BEGIN RSA PUBLIC KEY") {
        let (_, k) = RSAPublicKey::from_der(&der).unwrap();
        return VerifyingKey::from_jwk(&rsa_jwk(k.modulus, k.exponent)).unwrap();
    }
    let (_, spki) = SubjectPublicKeyInfo::from_der(&der).unwrap();
    // Ed25519 (OID 1.3.101.112) is not decoded by `parsed()`.
    if spki.algorithm.algorithm.to_id_string() == "1.3.101.112" {
        return VerifyingKey::from_ed25519_bytes(&spki.subject_public_key.data).unwrap();
    }
    let jwk = match spki.parsed().unwrap() {
        PublicKey::RSA(k) => rsa_jwk(k.modulus, k.exponent),
        PublicKey::EC(point) => {
            let data = point.data();
            assert_eq!(data.len(), 65, "uncompressed P-256 point");
            Jwk {
                kty: "EC".into(),
                crv: Some("P-256".into()),
                x: Some(b64::encode_url(&data[1..33])),
                y: Some(b64::encode_url(&data[33..])),
                ..Jwk::default()
            }
        }
        other => panic!("unexpected key {other:?}"),
    };
    VerifyingKey::from_jwk(&jwk).unwrap()
}

/// A message in its textual HTTP/1.1 form: start line, header lines, blank line, body.
pub struct HttpText {
    pub start: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

pub fn parse_http(text: &str) -> HttpText {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let start = lines.next().unwrap().to_owned();
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').unwrap();
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value.trim()).unwrap(),
        );
    }
    HttpText {
        start,
        headers,
        body: body.as_bytes().to_vec(),
    }
}

/// A request from its textual form (origin-form request line).
pub fn request_from_text(text: &str) -> http::Request<Vec<u8>> {
    let t = parse_http(text);
    let mut parts = t.start.split(' ');
    let method: Method = parts.next().unwrap().parse().unwrap();
    let uri: Uri = parts.next().unwrap().parse().unwrap();
    let mut req = http::Request::builder()
        .method(method)
        .uri(uri)
        .body(t.body)
        .unwrap();
    *req.headers_mut() = t.headers;
    req
}

/// A response from its textual form.
pub fn response_from_text(text: &str) -> http::Response<Vec<u8>> {
    let t = parse_http(text);
    let status: StatusCode = t.start.split(' ').nth(1).unwrap().parse().unwrap();
    let mut resp = http::Response::builder()
        .status(status)
        .body(t.body)
        .unwrap();
    *resp.headers_mut() = t.headers;
    resp
}

/// A copy of `headers` without the signature fields.
pub fn without_signatures(headers: &HeaderMap) -> HeaderMap {
    let mut h = headers.clone();
    h.remove("signature");
    h.remove("signature-input");
    h
}

/// The `label=` member value of a dictionary header given as one line.
pub fn member<'a>(line: &'a str, label: &str) -> &'a str {
    line.strip_prefix(label)
        .and_then(|r| r.strip_prefix('='))
        .unwrap()
}
