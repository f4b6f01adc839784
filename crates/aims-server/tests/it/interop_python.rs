//! Interoperability with the Python SPIFFE library (PyPI `spiffe`, py-spiffe): the real
//! server in-process, entries whose selectors match the Python interpreter, and
//! `interop/python/workload_api_check.py` run against the Workload API socket. The
//! script fetches the X509-SVIDs, X.509 bundles, JWT-SVIDs and JWT bundles with the
//! library, verifies the chains and validates the JWT-SVIDs with the library's own
//! checks, and prints a JSON summary that is asserted here.
//!
//! Known difference (asserted by [`py_spiffe_as_shipped_is_refused_for_its_grpc_authority`]):
//! grpcio (grpc-core) sends the percent-encoded socket path as the HTTP/2 `:authority`
//! on a Unix socket, e.g. `tmp%2Faims-x%2Fworkload.sock`; the `h2` crate under tonic
//! refuses an authority with `%` in the host (the `http` crate's parser) and resets the
//! stream with PROTOCOL_ERROR before AIMS sees the call, so py-spiffe as shipped gets
//! `StatusCode.INTERNAL`. The other tests run the script with `--authority localhost`
//! (gRPC's `grpc.default_authority` option, what grpc-go and tonic clients send); every
//! SPIFFE-level check then runs in the library unchanged.
//!
//! `bash scripts/interop-setup` installs the library. Without it (or without Python)
//! the tests print a notice and pass, except when `CI=true`, where they fail.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aims_server::config::KeyType;
use aims_server::testkit::{self, TestServer};
use serde_json::Value;

use crate::common::{exe_selector, own_bundle, spec, system_clock, uid_selector};

const AUD: &str = "spiffe://example.org/interop";

/// The interpreter to use: `$AIMS_INTEROP_PYTHON`, else `python3` on `PATH`.
pub(crate) fn python_command() -> String {
    std::env::var("AIMS_INTEROP_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../interop/python/workload_api_check.py")
}

/// A required interoperability tool is missing: fail under `CI=true`, else say so and
/// let the test pass.
pub(crate) fn unavailable(what: &str) {
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
pub(crate) struct Finished {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs `cmd`, killing it after `limit`.
pub(crate) fn run(mut cmd: Command, limit: Duration) -> std::io::Result<Finished> {
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

/// The real executable of the Python interpreter (what `/proc/PID/exe` of the script's
/// process will name; `python3` may be a symlink or a pyenv shim). `None` if there is
/// no Python.
fn python_executable() -> Option<PathBuf> {
    let mut cmd = Command::new(python_command());
    cmd.args(["-c", "import os; print(os.readlink('/proc/self/exe'))"]);
    let done = run(cmd, Duration::from_secs(60)).ok()?;
    if done.code != Some(0) {
        return None;
    }
    let exe = PathBuf::from(done.stdout.trim());
    exe.is_absolute().then_some(exe)
}

/// `unix:sha256:<digest of the file at path>`.
fn sha256_selector(path: &Path) -> String {
    let digest: String = aims_crypto::sha256(std::fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("unix:sha256:{digest}")
}

/// Runs the check script against `ts` with `args`, under [`python_command`] (not the
/// resolved executable: a virtual environment's packages are found through the path it
/// was started with). `python` is that interpreter's real executable. `None` (after
/// [`unavailable`]) when the library is missing; else the exit code and the summary.
async fn run_check(ts: &TestServer, python: &Path, args: &[&str]) -> Option<(i32, Value)> {
    let mut cmd = Command::new(python_command());
    cmd.arg(script())
        .args(["--audience", AUD, "--timeout", "30"])
        .args(args)
        .env("SPIFFE_ENDPOINT_SOCKET", ts.workload_endpoint())
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let done = tokio::task::spawn_blocking(move || run(cmd, Duration::from_secs(120)))
        .await
        .unwrap()
        .unwrap();
    let code = done
        .code
        .unwrap_or_else(|| panic!("workload_api_check.py was killed:\n{}", done.stderr));
    if code == 3 {
        unavailable(&format!(
            "the Python package `spiffe` is not importable by {}",
            python.display()
        ));
        return None;
    }
    let summary: Value = serde_json::from_str(&done.stdout).unwrap_or_else(|e| {
        panic!(
            "workload_api_check.py printed no JSON ({e}), exit {code}\n--- stdout\n{}\n--- stderr\n{}",
            done.stdout, done.stderr
        )
    });
    eprintln!(
        "py-spiffe interop {args:?}: exit {code}, versions {}",
        summary["versions"]
    );
    if code != 0 {
        eprintln!("--- stderr of workload_api_check.py\n{}", done.stderr);
    }
    Some((code, summary))
}

fn strings(v: &Value) -> Vec<String> {
    let mut s: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap().to_owned())
        .collect();
    s.sort();
    s
}

/// A server with two entries for the Python interpreter and one for this test binary
/// (which Python must not get).
struct Setup {
    ts: TestServer,
    python: PathBuf,
    expected: [String; 2],
}

/// Starts a server adjusted by `adjust` and registers the entries; `None` without Python.
async fn setup(adjust: impl FnOnce(&mut aims_server::Config)) -> Option<Setup> {
    let Some(python) = python_executable() else {
        unavailable(&format!("no Python interpreter (`{}`)", python_command()));
        return None;
    };
    let ts = testkit::start_with("example.org", system_clock(), adjust)
        .await
        .unwrap();
    let admin = ts.admin();
    let uid = uid_selector();
    let path = format!("unix:path:{}", python.display());
    let digest = sha256_selector(&python);
    let a = admin
        .create_entry(&spec(
            "spiffe://example.org/interop/python-a",
            &[&uid, &path, &digest],
        ))
        .await
        .unwrap();
    let b = admin
        .create_entry(&spec(
            "spiffe://example.org/interop/python-b",
            &[&uid, &path],
        ))
        .await
        .unwrap();
    // This test binary matches it, the interpreter does not.
    admin
        .create_entry(&spec(
            "spiffe://example.org/interop/not-python",
            &[&uid, &exe_selector()],
        ))
        .await
        .unwrap();
    Some(Setup {
        ts,
        python,
        expected: [
            a.spiffe_id.as_str().to_owned(),
            b.spiffe_id.as_str().to_owned(),
        ],
    })
}

/// What the server's keys should look like to Python.
struct Expect {
    jwt_alg: &'static str,
    authority_key: &'static str,
    /// `None`: `cryptography`'s RFC 5280 path validation must pass; `Some(reason)`: it
    /// is only reported, and must fail with `reason`.
    path_refusal: Option<&'static str>,
}

/// Runs the script with `--authority localhost` and checks its summary.
async fn check_server(adjust: impl FnOnce(&mut aims_server::Config), expect: Expect) {
    let Some(Setup {
        ts,
        python,
        expected,
    }) = setup(adjust).await
    else {
        return;
    };
    let own = own_bundle(&ts).await;
    let mut args = vec!["--authority", "localhost"];
    if expect.path_refusal.is_some() {
        args.extend(["--path-validation", "report"]);
    }
    let Some((code, summary)) = run_check(&ts, &python, &args).await else {
        ts.server.shutdown().await;
        return;
    };
    assert_eq!(code, 0, "workload_api_check.py failed: {summary:#}");
    assert_eq!(summary["ok"], true, "{summary:#}");
    assert_eq!(
        summary["executable"].as_str(),
        Some(python.to_str().unwrap()),
        "the script ran under another interpreter"
    );

    // X.509: the library's one-shot client and X509Sources see both SVIDs, and only those.
    assert!(
        expected
            .iter()
            .any(|e| summary["x509_source"]["default_svid"] == e.as_str()),
        "{summary:#}"
    );
    assert_eq!(strings(&summary["x509_source"]["picked"]), expected);
    let svids = summary["x509"]["svids"].as_array().unwrap();
    let mut ids: Vec<&str> = svids
        .iter()
        .map(|s| s["spiffe_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, expected);
    for s in svids {
        assert_eq!(s["chain_verified"], true, "{s}");
        match expect.path_refusal {
            None => assert_eq!(s["path_validated"], true, "{s}"),
            Some(reason) => {
                assert_eq!(s["path_validated"], false, "{s}");
                let error = s["path_validation_error"].as_str().unwrap();
                assert!(error.contains(reason), "{s}");
            }
        }
        assert_eq!(s["key_matches_leaf"], true, "{s}");
        assert_eq!(s["authority_key"], expect.authority_key, "{s}");
        assert_eq!(s["leaf_key"], "ec-p256", "{s}");
    }
    let td = "example.org";
    let x509_count = own.x509_authorities().len();
    assert_eq!(summary["x509"]["bundles"][td], x509_count, "{summary:#}");
    assert_eq!(summary["x509_source"]["bundles"][td], x509_count);

    // JWT: one per identity, validated by the library and by the Workload API.
    let jwts = summary["jwt"].as_array().unwrap();
    assert_eq!(jwts.len(), 2);
    for j in jwts {
        assert!(expected.iter().any(|e| j["spiffe_id"] == e.as_str()), "{j}");
        assert_eq!(j["validated"], true, "{j}");
        assert_eq!(j["validated_by_workload_api"], true, "{j}");
        assert_eq!(j["wrong_audience_rejected"], true, "{j}");
        assert_eq!(j["alg"], expect.jwt_alg, "{j}");
        assert_eq!(j["typ"], "JWT", "{j}");
        assert_eq!(j["audience"], serde_json::json!([AUD]), "{j}");
    }
    let jwt_count = own.jwt_authorities().count();
    assert!(jwt_count > 0);
    assert_eq!(summary["jwt_bundles"][td], jwt_count, "{summary:#}");
    assert_eq!(summary["jwt_source_bundles"][td], jwt_count);

    ts.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn py_spiffe_fetches_and_validates_svids_with_default_keys() {
    check_server(
        |_| {},
        Expect {
            jwt_alg: "ES256",
            authority_key: "ec-p256",
            path_refusal: None,
        },
    )
    .await;
}

/// With an Ed25519 CA the chain verifies (signatures, validity, key), but the
/// `cryptography` package's path validation refuses it: its policy (CA/Browser Forum
/// profile) allows only RSA and ECDSA public keys. A known difference, asserted exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn py_spiffe_fetches_and_validates_svids_with_ed25519_ca_and_p384_jwt_keys() {
    check_server(
        |c| {
            c.ca.key_type = KeyType::Ed25519;
            c.jwt.key_type = toml::Spanned::new(0..0, KeyType::EcP384);
        },
        Expect {
            jwt_alg: "ES384",
            authority_key: "ed25519",
            path_refusal: Some("Forbidden public key algorithm"),
        },
    )
    .await;
}

/// The known difference (module documentation): py-spiffe as shipped, without
/// `--authority`, is refused at the HTTP/2 layer. When this starts to pass (a fixed `h2`,
/// or a server that accepts the authority), drop `--authority` from the tests above and
/// turn this into a plain success check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn py_spiffe_as_shipped_is_refused_for_its_grpc_authority() {
    let Some(Setup { ts, python, .. }) = setup(|_| {}).await else {
        return;
    };
    let Some((code, summary)) = run_check(&ts, &python, &[]).await else {
        ts.server.shutdown().await;
        return;
    };
    assert_ne!(
        code, 0,
        "py-spiffe now works as shipped: update the tests (see this test's documentation)"
    );
    let error = summary["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("FetchX509SvidError")
            && error.contains("RST_STREAM")
            && error.contains("StatusCode.INTERNAL"),
        "not the known :authority refusal: {summary:#}"
    );
    ts.server.shutdown().await;
}
