//! Attestation by executable: two different programs run by the same user get different
//! SPIFFE IDs through `unix:sha256` (and `unix:path`).
//!
//! The client programs are copies of this test binary with different bytes appended (the
//! ELF loader ignores trailing data), so their digests differ; each copy is run with
//! `--exact attest::helper_client_mode` and `AIMS_WL_HELPER_SOCKET`, which turns that test
//! into a Workload API client printing the SPIFFE IDs it receives. This works under both
//! `cargo test` and `cargo nextest` (the binary is a plain libtest harness).

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Server, entry, provider, raw_client, uid_selector};

const HELPER_ENV: &str = "AIMS_WL_HELPER_SOCKET";
const ID_PREFIX: &str = "AIMS_WL_SPIFFE_ID=";
const ERROR_PREFIX: &str = "AIMS_WL_ERROR=";

/// A no-op in a normal run; the Workload API client of [`different_executables_get_different_ids`]
/// when `AIMS_WL_HELPER_SOCKET` is set.
#[test]
fn helper_client_mode() {
    let Some(socket) = std::env::var_os(HELPER_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let endpoint = format!("unix://{}", Path::new(&socket).display());
        let client = spiffe::WorkloadApiClient::connect_to(endpoint)
            .await
            .unwrap();
        match client.fetch_all_x509_svids().await {
            Ok(svids) => {
                for s in svids {
                    println!("{ID_PREFIX}{}", s.spiffe_id());
                }
            }
            Err(e) => println!("{ERROR_PREFIX}{e:?}"),
        }
    });
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Copies this test binary to `dir/name` with `marker` appended; returns its path and
/// SHA-256.
fn variant(dir: &Path, name: &str, marker: &[u8]) -> (PathBuf, String) {
    let me = std::env::current_exe().unwrap();
    let path = dir.join(name);
    std::fs::copy(&me, &path).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(marker).unwrap();
    f.sync_all().unwrap();
    drop(f);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let digest = hex(&aims_crypto::sha256(std::fs::read(&path).unwrap()));
    (path, digest)
}

/// Runs a client copy against `socket`; returns the SPIFFE IDs it printed, or its error.
fn run_client(exe: &Path, socket: &Path) -> Result<Vec<String>, String> {
    let out = Command::new(exe)
        .args([
            "--exact",
            "attest::helper_client_mode",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, socket)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "client failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // libtest prints `test <name> ... ` on the same line as the first output.
    let after = |l: &str, prefix: &str| l.find(prefix).map(|i| l[i + prefix.len()..].to_owned());
    if let Some(e) = stdout.lines().find_map(|l| after(l, ERROR_PREFIX)) {
        return Err(e);
    }
    let ids: Vec<String> = stdout.lines().filter_map(|l| after(l, ID_PREFIX)).collect();
    assert!(!ids.is_empty(), "the client printed no SPIFFE ID: {stdout}");
    Ok(ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn different_executables_get_different_ids() {
    let dir = tempfile::tempdir().unwrap();
    let (a, hash_a) = variant(dir.path(), "client-a", b"\0aims-variant-a");
    let (b, hash_b) = variant(dir.path(), "client-b", b"\0aims-variant-b");
    assert_ne!(hash_a, hash_b);
    let uid = uid_selector();
    let sel_a = format!("unix:sha256:{hash_a}");
    let sel_b = format!("unix:sha256:{hash_b}");
    let path_b = format!("unix:path:{}", b.display());
    let p = provider(
        vec![
            entry("e1", "client/a", &[&uid, &sel_a]),
            entry("e2", "client/b", &[&uid, &sel_b]),
            entry("e3", "path/b", &[&uid, &path_b]),
            // Right program, wrong user: never matches.
            entry("e4", "client/a-as-nobody", &["unix:uid:4294967294", &sel_a]),
        ],
        false,
    );
    let server = Server::start(p).await;
    let socket = server.socket.clone();

    let (ids_a, ids_b) =
        tokio::task::spawn_blocking(move || (run_client(&a, &socket), run_client(&b, &socket)))
            .await
            .unwrap();
    assert_eq!(ids_a.unwrap(), ["spiffe://example.org/client/a"]);
    assert_eq!(
        ids_b.unwrap(),
        [
            "spiffe://example.org/client/b",
            "spiffe://example.org/path/b"
        ]
    );

    // This test process is neither program: no identity.
    let mut c = raw_client(&server.socket, true).await;
    let denied = c
        .fetch_x509svid(aims_workload::pb::X509svidRequest {})
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    server.shutdown().await;
}
