//! RFC 9421 interoperability with two widely used libraries: the Python package
//! `http-message-signatures` (`interop/python/httpsig_check.py`) and the npm package
//! `http-message-signatures` (`interop/node/httpsig_check.mjs`).
//!
//! - Both directions, for `ed25519` and `ecdsa-p256-sha256`, over plain RFC 9421
//!   components (`@method`, `@authority`, `@path`, `content-digest`, `content-type`)
//!   and over every derived request component: AIMS signs and each library verifies
//!   (and refuses the request with another method, body or path); each library signs
//!   and AIMS verifies the signature and the Content-Digest.
//! - Each derived component's value, AIMS against both libraries, on URIs in and out
//!   of normal form: equal except for [`KNOWN_DIFFERENCES`].
//! - A WIMSE-profile signature: what each library makes of it (known differences).
//!
//! Requests travel as JSON files (the format is documented in the Python script).
//! `bash scripts/interop-setup` installs both libraries. Without one (or without its
//! runtime) its tests print a notice and pass, except when `CI=true`, where they fail.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aims_core::SystemClock;
use aims_crypto::{Algorithm, Signer as _, SigningKey, b64};
use aims_httpsig::{
    ComponentId, DigestAlgorithm, FieldTypes, HttpSigError, Message, Options, RequestMessage,
    SignatureAlgorithm, SignatureParams, component_value, content_digest, find_signature, sign,
    verify_content_digest, verify_with_key, wimse,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use serde_json::{Value, json};

/// The covered components (serialized identifiers): the plain RFC 9421 set an API
/// request signs, and every derived request component on top of it.
const COVERED: [&str; 5] = [
    r#""@method""#,
    r#""@authority""#,
    r#""@path""#,
    r#""content-digest""#,
    r#""content-type""#,
];
const COVERED_ALL_DERIVED: [&str; 10] = [
    r#""@method""#,
    r#""@target-uri""#,
    r#""@authority""#,
    r#""@scheme""#,
    r#""@request-target""#,
    r#""@path""#,
    r#""@query""#,
    r#""@query-param";name="q""#,
    r#""content-digest""#,
    r#""content-type""#,
];
const COVERED_SETS: [&[&str]; 2] = [&COVERED, &COVERED_ALL_DERIVED];
const URL: &str = "https://api.example.com/v1/tools/search?q=agents&limit=3";
const BODY: &str = r#"{"query":"weather in Paris","max_results":3}"#;
const LABEL: &str = "sig1";
const ALGS: [SignatureAlgorithm; 2] = [
    SignatureAlgorithm::Ed25519,
    SignatureAlgorithm::EcdsaP256Sha256,
];

// Exit codes of the scripts.
const EXIT_REJECTED: i32 = 1;
const EXIT_MISSING: i32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lib {
    Python,
    Node,
}

impl Lib {
    fn name(self) -> &'static str {
        match self {
            Lib::Python => "Python http-message-signatures",
            Lib::Node => "npm http-message-signatures",
        }
    }

    /// The runtime: `$AIMS_INTEROP_PYTHON` / `$AIMS_INTEROP_NODE`, else `python3` / `node`.
    fn runtime(self) -> String {
        let (var, default) = match self {
            Lib::Python => ("AIMS_INTEROP_PYTHON", "python3"),
            Lib::Node => ("AIMS_INTEROP_NODE", "node"),
        };
        std::env::var(var).unwrap_or_else(|_| default.into())
    }

    fn script(self) -> PathBuf {
        let rel = match self {
            Lib::Python => "interop/python/httpsig_check.py",
            Lib::Node => "interop/node/httpsig_check.mjs",
        };
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(rel)
    }
}

/// A required interoperability tool is missing: fail under `CI=true`, else say so and
/// let the test pass.
fn unavailable(what: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{what}; CI=true requires it (install with `bash scripts/interop-setup`)"
    );
    eprintln!(
        "NOTICE: interop test skipped: {what} (install with `bash scripts/interop-setup`; \
         this fails when CI=true)"
    );
}

/// Output of a finished child process.
struct Finished {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `cmd`, killing it after `limit`.
fn run(mut cmd: Command, limit: Duration) -> std::io::Result<Finished> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait()?;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(Finished {
        code: status.code(),
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    })
}

/// A case file in the system temporary directory, removed on drop (it may hold a
/// private key generated for the test).
struct CaseFile(PathBuf);

impl CaseFile {
    fn write(case: &Value) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "aims-httpsig-interop-{}-{}.json",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&path).unwrap();
        std::io::Write::write_all(&mut f, case.to_string().as_bytes()).unwrap();
        Self(path)
    }
}

impl Drop for CaseFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs `lib`'s script in `mode` on `case`. `None` (after [`unavailable`]) when the
/// runtime or the library is missing; else the exit code and the JSON it printed.
fn run_lib(lib: Lib, mode: &str, case: &Value) -> Option<(i32, Value)> {
    let file = CaseFile::write(case);
    let mut cmd = Command::new(lib.runtime());
    cmd.arg(lib.script()).arg(mode).arg(&file.0);
    let done = match run(cmd, Duration::from_secs(60)) {
        Ok(done) => done,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            unavailable(&format!("{}: no `{}` runtime", lib.name(), lib.runtime()));
            return None;
        }
        Err(e) => panic!("cannot run {}: {e}", lib.runtime()),
    };
    let code = done
        .code
        .unwrap_or_else(|| panic!("{} was killed:\n{}", lib.name(), done.stderr));
    if code == EXIT_MISSING {
        unavailable(&format!("{} is not installed", lib.name()));
        return None;
    }
    let out: Value = serde_json::from_str(done.stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{} {mode} printed no JSON ({e}), exit {code}\n--- stdout\n{}\n--- stderr\n{}",
            lib.name(),
            done.stdout,
            done.stderr
        )
    });
    Some((code, out))
}

fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// DER `SubjectPublicKeyInfo` of an AIMS key (Ed25519 or P-256).
fn spki_der(key: &SigningKey) -> Vec<u8> {
    let prefix: &[u8] = match key.public_key_bytes().len() {
        // SEQUENCE { SEQUENCE { id-Ed25519 }, BIT STRING (32 bytes) }
        32 => &[
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ],
        // SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (65 bytes) }
        65 => &[
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ],
        n => panic!("unexpected public key length {n}"),
    };
    [prefix, key.public_key_bytes()].concat()
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = b64::encode_std(der);
    let mut s = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(line).unwrap());
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

/// A fresh key for `alg` with a readable key id.
fn key_for(alg: SignatureAlgorithm) -> (SigningKey, String) {
    let keyid = format!("aims-interop-{}", alg.name());
    let key = SigningKey::generate(alg.jws())
        .unwrap()
        .with_kid(keyid.clone());
    (key, keyid)
}

/// The private key as PKCS#8 that OpenSSL 3.0 (Node 20) and pyca/cryptography load:
/// AIMS exports v1 (RFC 8410 section 7 for Ed25519), which both accept.
fn portable_pkcs8(key: &SigningKey) -> Vec<u8> {
    let der = key.to_pkcs8().unwrap();
    if key.algorithm() == Algorithm::EdDSA {
        assert_eq!(
            der.len(),
            48,
            "Ed25519 PKCS#8 must be v1 (no public key member)"
        );
    }
    der.to_vec()
}

/// The unsigned request: `content-type` and `content-digest` (SHA-256, by AIMS).
fn base_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h.insert(
        "content-digest",
        HeaderValue::from_str(&content_digest(BODY.as_bytes(), &[DigestAlgorithm::Sha256]))
            .unwrap(),
    );
    h
}

fn header_pairs(h: &HeaderMap) -> Value {
    Value::Array(
        h.iter()
            .map(|(n, v)| json!([n.as_str(), v.to_str().unwrap()]))
            .collect(),
    )
}

fn headers_from_pairs(v: &Value) -> HeaderMap {
    let mut h = HeaderMap::new();
    for pair in v.as_array().unwrap() {
        h.append(
            HeaderName::from_bytes(pair[0].as_str().unwrap().as_bytes()).unwrap(),
            HeaderValue::from_str(pair[1].as_str().unwrap()).unwrap(),
        );
    }
    h
}

fn component_ids(covered: &[&str]) -> Vec<ComponentId> {
    covered
        .iter()
        .map(|c| ComponentId::parse(c).unwrap())
        .collect()
}

/// A request signed by AIMS over `covered`, as a case file for `verify`.
fn aims_signed_case(alg: SignatureAlgorithm, covered: &[&str]) -> Value {
    let (key, keyid) = key_for(alg);
    let method = Method::POST;
    let uri: Uri = URL.parse().unwrap();
    let mut headers = base_headers();
    let params = SignatureParams::new(component_ids(covered))
        .with_created(now())
        .unwrap()
        .with_keyid(&keyid)
        .unwrap()
        .with_alg(alg)
        .unwrap();
    let signed = sign(
        &Message::Request(RequestMessage::new(&method, &uri, &headers)),
        LABEL,
        &params,
        &key,
        &Options::default(),
    )
    .unwrap();
    signed.apply(&mut headers).unwrap();
    json!({
        "method": method.as_str(),
        "url": URL,
        "headers": header_pairs(&headers),
        "body": BODY,
        "alg": alg.name(),
        "keyid": keyid,
        "label": LABEL,
        "covered": covered,
        "public_key_pem": pem("PUBLIC KEY", &spki_der(&key)),
        "public_jwk": serde_json::to_value(key.public_jwk().to_public()).unwrap(),
    })
}

/// AIMS signs; `lib` verifies, and refuses the request with another method or body.
fn aims_signs_lib_verifies(lib: Lib) {
    for alg in ALGS {
        for covered in COVERED_SETS {
            let case = aims_signed_case(alg, covered);
            let Some((code, out)) = run_lib(lib, "verify", &case) else {
                return;
            };
            assert_eq!(
                (code, &out["ok"]),
                (0, &Value::Bool(true)),
                "{} did not verify an AIMS {alg} signature: {out:#}\ncase: {case:#}",
                lib.name()
            );
            assert_eq!(out["body_verified"], true, "{out}");
            if lib == Lib::Python {
                assert_eq!(out["covered"], json!(covered), "{out}");
                assert_eq!(out["parameters"]["keyid"], case["keyid"], "{out}");
                assert_eq!(out["parameters"]["alg"], alg.name(), "{out}");
            } else {
                assert_eq!(out["keyids"], json!([case["keyid"]]), "{out}");
            }
            eprintln!(
                "{} {} verified an AIMS {alg} signature over {covered:?}",
                lib.name(),
                out["version"]
            );
        }

        let case = aims_signed_case(alg, &COVERED);
        for (what, field, value) in [
            ("another method", "method", json!("PUT")),
            ("another body", "body", json!(BODY.replace("Paris", "Lyon"))),
            (
                "another path",
                "url",
                json!(URL.replace("/search", "/delete")),
            ),
        ] {
            let mut tampered = case.clone();
            tampered[field] = value;
            let (code, out) = run_lib(lib, "verify", &tampered).unwrap();
            assert_eq!(
                (code, &out["ok"]),
                (EXIT_REJECTED, &Value::Bool(false)),
                "{} accepted an AIMS {alg} signature on a request with {what}: {out}",
                lib.name()
            );
        }
    }
}

/// `lib` signs with a key AIMS generated; AIMS verifies the signature and the digest.
fn lib_signs_aims_verifies(lib: Lib) {
    for (alg, covered) in ALGS.into_iter().flat_map(|a| COVERED_SETS.map(|c| (a, c))) {
        let (key, keyid) = key_for(alg);
        let mut unsigned = base_headers();
        // The Python library adds Content-Digest itself (from the body).
        if lib == Lib::Python {
            unsigned.remove("content-digest");
        }
        let case = json!({
            "method": "POST",
            "url": URL,
            "headers": header_pairs(&unsigned),
            "body": BODY,
            "alg": alg.name(),
            "keyid": keyid,
            "label": LABEL,
            "covered": covered,
            "private_key_pem": pem("PRIVATE KEY", &portable_pkcs8(&key)),
        });
        let Some((code, out)) = run_lib(lib, "sign", &case) else {
            return;
        };
        assert_eq!(
            (code, &out["ok"]),
            (0, &Value::Bool(true)),
            "{} could not sign with {alg}: {out:#}",
            lib.name()
        );
        let headers = headers_from_pairs(&out["headers"]);
        let method = Method::POST;
        let uri: Uri = URL.parse().unwrap();
        let message = Message::Request(RequestMessage::new(&method, &uri, &headers));
        let entry = verify_with_key(
            &message,
            LABEL,
            key.verifying_key(),
            alg.jws(),
            &Options::default(),
        )
        .unwrap_or_else(|e| {
            panic!(
                "AIMS refused the {} {alg} signature: {e}\nheaders: {:#}",
                lib.name(),
                out["headers"]
            )
        });
        assert_eq!(
            entry.params().components(),
            component_ids(covered).as_slice()
        );
        assert_eq!(entry.params().keyid(), Some(keyid.as_str()));
        assert_eq!(entry.params().alg(), Some(alg.name()));
        let created = entry.params().created().expect("created");
        assert!((created - now()).abs() < 60, "created {created}");
        assert_eq!(
            verify_content_digest(&headers, BODY.as_bytes()).unwrap(),
            [DigestAlgorithm::Sha256]
        );
        eprintln!(
            "AIMS verified a {} {} {alg} signature: {}",
            lib.name(),
            out["version"],
            headers.get("signature-input").unwrap().to_str().unwrap()
        );

        // The same headers on another method or body are refused.
        let put = Method::PUT;
        assert!(matches!(
            verify_with_key(
                &Message::Request(RequestMessage::new(&put, &uri, &headers)),
                LABEL,
                key.verifying_key(),
                alg.jws(),
                &Options::default(),
            ),
            Err(HttpSigError::BadSignature)
        ));
        assert!(verify_content_digest(&headers, b"{}").is_err());
    }
}

#[test]
fn aims_signed_requests_verify_with_python_http_message_signatures() {
    aims_signs_lib_verifies(Lib::Python);
}

#[test]
fn aims_signed_requests_verify_with_node_http_message_signatures() {
    aims_signs_lib_verifies(Lib::Node);
}

#[test]
fn python_http_message_signatures_requests_verify_with_aims() {
    lib_signs_aims_verifies(Lib::Python);
}

#[test]
fn node_http_message_signatures_requests_verify_with_aims() {
    lib_signs_aims_verifies(Lib::Node);
}

/// Request URIs for the derived-component comparison: the first three are in normal
/// form, the others are not (case, default port, empty path, dot segments, empty query,
/// query characters that encoders treat differently).
const COMPONENT_URLS: [&str; 8] = [
    URL,
    "https://api.example.com:8443/v1/items/%7Euser?q=a%20b&empty=",
    "http://api.example.com/",
    "https://API.Example.COM:443/v1/Tools?q=1",
    "http://api.example.com:80",
    "https://api.example.com/a/./b/../c?q=x",
    "https://api.example.com/v1?",
    "https://api.example.com/search?q=a+b%2Fc~d!",
];

const DERIVED: [&str; 8] = [
    r#""@method""#,
    r#""@target-uri""#,
    r#""@authority""#,
    r#""@scheme""#,
    r#""@request-target""#,
    r#""@path""#,
    r#""@query""#,
    r#""@query-param";name="q""#,
];

/// The derived-component values on which a library and AIMS disagree, exactly: (URL,
/// component, library, AIMS's value, the library's value). Everything else agrees (an
/// absent `@query-param` is refused by all three).
///
/// - `@target-uri` of a URI not in normal form: AIMS applies RFC 9110 section 4.2.3
///   (lower-case host, no default port, `/` for an empty path); both libraries use the
///   URL as given (Python adds the `/` for an empty path; Node does not).
/// - Node takes `@path` and `@request-target` from WHATWG `URL`, which removes dot
///   segments and drops a bare `?` (its `@query` is still `?`).
/// - Node encodes `@query-param` with `encodeURIComponent`, which leaves `~` and `!`
///   as they are; RFC 9421 section 2.2.8 (and AIMS, and Python) percent-encode them.
const KNOWN_DIFFERENCES: [(&str, &str, Lib, &str, &str); 8] = [
    (
        "https://API.Example.COM:443/v1/Tools?q=1",
        r#""@target-uri""#,
        Lib::Python,
        "https://api.example.com/v1/Tools?q=1",
        "https://API.Example.COM:443/v1/Tools?q=1",
    ),
    (
        "https://API.Example.COM:443/v1/Tools?q=1",
        r#""@target-uri""#,
        Lib::Node,
        "https://api.example.com/v1/Tools?q=1",
        "https://API.Example.COM:443/v1/Tools?q=1",
    ),
    (
        "http://api.example.com:80",
        r#""@target-uri""#,
        Lib::Python,
        "http://api.example.com/",
        "http://api.example.com:80/",
    ),
    (
        "http://api.example.com:80",
        r#""@target-uri""#,
        Lib::Node,
        "http://api.example.com/",
        "http://api.example.com:80",
    ),
    (
        "https://api.example.com/a/./b/../c?q=x",
        r#""@request-target""#,
        Lib::Node,
        "/a/./b/../c?q=x",
        "/a/c?q=x",
    ),
    (
        "https://api.example.com/a/./b/../c?q=x",
        r#""@path""#,
        Lib::Node,
        "/a/./b/../c",
        "/a/c",
    ),
    (
        "https://api.example.com/v1?",
        r#""@request-target""#,
        Lib::Node,
        "/v1?",
        "/v1",
    ),
    (
        "https://api.example.com/search?q=a+b%2Fc~d!",
        r#""@query-param";name="q""#,
        Lib::Node,
        "a%20b%2Fc%7Ed%21",
        "a%20b%2Fc~d!",
    ),
];

/// A component's value, or `None` when the side refuses it (for example an absent
/// `@query-param`).
fn outcome(v: &Value) -> Option<String> {
    match (v.get("value"), v.get("error")) {
        (Some(Value::String(s)), _) => Some(s.clone()),
        (_, Some(Value::String(_))) => None,
        _ => panic!("unexpected component result {v}"),
    }
}

fn aims_component(url: &str, component: &str) -> Option<String> {
    let method = Method::POST;
    let uri: Uri = url.parse().unwrap();
    let headers = HeaderMap::new();
    let message = Message::Request(RequestMessage::new(&method, &uri, &headers));
    let id = ComponentId::parse(component).unwrap();
    component_value(&message, &id, &FieldTypes::default()).ok()
}

/// Every derived component of [`COMPONENT_URLS`] as AIMS, the Python library and the
/// npm library compute it: they agree except for [`KNOWN_DIFFERENCES`], exactly.
#[test]
fn derived_component_values_match_the_libraries_except_known_differences() {
    let case = json!({
        "requests": COMPONENT_URLS
            .iter()
            .map(|u| json!({"method": "POST", "url": u, "headers": []}))
            .collect::<Vec<_>>(),
        "components": DERIVED,
    });
    let mut libs = Vec::new();
    for lib in [Lib::Python, Lib::Node] {
        let Some((code, out)) = run_lib(lib, "components", &case) else {
            continue;
        };
        assert_eq!(code, 0, "{} components: {out:#}", lib.name());
        libs.push((lib, out));
    }
    let mut found = Vec::new();
    for (i, url) in COMPONENT_URLS.iter().enumerate() {
        for component in DERIVED {
            let aims = aims_component(url, component);
            for (lib, out) in &libs {
                let theirs = outcome(&out["values"][i][component]);
                if theirs != aims {
                    found.push((
                        url.to_string(),
                        component.to_owned(),
                        *lib,
                        aims.clone().unwrap_or_else(|| "<refused>".into()),
                        theirs.unwrap_or_else(|| "<refused>".into()),
                    ));
                }
            }
        }
    }
    let expected: Vec<_> = KNOWN_DIFFERENCES
        .iter()
        .filter(|k| libs.iter().any(|(lib, _)| *lib == k.2))
        .map(|&(u, c, l, a, t)| (u.to_owned(), c.to_owned(), l, a.to_owned(), t.to_owned()))
        .collect();
    for d in &found {
        eprintln!("derived component difference: {d:?}");
    }
    let mut found_sorted = found.clone();
    let mut expected_sorted = expected.clone();
    found_sorted.sort_by_key(|d| format!("{d:?}"));
    expected_sorted.sort_by_key(|d| format!("{d:?}"));
    assert_eq!(
        found_sorted, expected_sorted,
        "the derived-component differences changed: update KNOWN_DIFFERENCES and the report"
    );
}

/// A stand-in WIT: the libraries treat `Workload-Identity-Token` as an opaque covered
/// field (validating the WIT and taking the key from its `cnf.jwk` is the profile's job,
/// done here by passing the key directly).
const WIT: &str = "eyJhbGciOiJFUzI1NiIsInR5cCI6IndpdCtqd3QifQ.eyJzdWIiOiJ3aW1zZTovL2V4YW1wbGUub3JnL2FnZW50In0.c2ln";

/// A WIMSE workload-to-workload signature (`aims_httpsig::wimse::RequestSigner`) at the
/// RFC 9421 layer. The profile forbids `keyid` and `alg` and adds the `wimse-aud`
/// parameter. Known differences, asserted exactly: the npm library verifies it; the
/// Python library refuses it twice over, since it requires `keyid` and refuses any
/// parameter outside RFC 9421's six (`alg`, `created`, `expires`, `keyid`, `nonce`,
/// `tag`), so even with a `keyid` added it stops at `wimse-aud`.
#[test]
fn wimse_profile_signatures_verify_with_node_and_are_refused_by_python() {
    let key = Arc::new(SigningKey::generate(Algorithm::ES256).unwrap());
    let signer = wimse::RequestSigner::new(WIT, key.clone(), Arc::new(SystemClock));
    let mut request = http::Request::post(URL)
        .header("content-type", "application/json")
        .body(BODY.as_bytes().to_vec())
        .unwrap();
    signer
        .sign(&mut request, "https://api.example.com/v1/tools")
        .unwrap();
    let entry = find_signature(request.headers(), wimse::LABEL, &Options::default()).unwrap();
    let covered: Vec<String> = entry
        .params()
        .components()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(entry.params().keyid().is_none() && entry.params().alg().is_none());
    let case = |headers: &HeaderMap, keyid: Option<&str>| {
        json!({
            "method": "POST",
            "url": URL,
            "headers": header_pairs(headers),
            "body": BODY,
            "alg": SignatureAlgorithm::EcdsaP256Sha256.name(),
            "keyid": keyid,
            "label": wimse::LABEL,
            "covered": covered,
            "required_params": ["created", "expires", "nonce", "tag"],
            "public_key_pem": pem("PUBLIC KEY", &spki_der(&key)),
            "public_jwk": serde_json::to_value(key.public_jwk().to_public()).unwrap(),
        })
    };
    let as_profiled = case(request.headers(), None);

    // The same signature parameters plus a `keyid` (outside the profile).
    let mut with_keyid = request.headers().clone();
    with_keyid.remove("signature");
    with_keyid.remove("signature-input");
    let params = entry.params().clone().with_keyid("wimse-key").unwrap();
    let method = Method::POST;
    let uri: Uri = URL.parse().unwrap();
    sign(
        &Message::Request(RequestMessage::new(&method, &uri, &with_keyid)),
        wimse::LABEL,
        &params,
        key.as_ref(),
        &Options::default(),
    )
    .unwrap()
    .apply(&mut with_keyid)
    .unwrap();
    let with_keyid = case(&with_keyid, Some("wimse-key"));

    if let Some((code, out)) = run_lib(Lib::Node, "verify", &as_profiled) {
        assert_eq!(
            (code, &out["ok"]),
            (0, &Value::Bool(true)),
            "npm http-message-signatures refused a WIMSE signature: {out:#}"
        );
        assert_eq!(out["body_verified"], true, "{out}");
    }
    for (case, refusal) in [
        (
            &as_profiled,
            r#"Signature is missing a required "keyid" parameter"#,
        ),
        (
            &with_keyid,
            r#"Unexpected signature metadata parameter "wimse-aud""#,
        ),
    ] {
        let Some((code, out)) = run_lib(Lib::Python, "verify", case) else {
            break;
        };
        assert_eq!(code, EXIT_REJECTED, "{out:#}");
        assert!(
            out["error"].as_str().unwrap_or_default().contains(refusal),
            "not the known refusal ({refusal}): {out:#}"
        );
    }
}
