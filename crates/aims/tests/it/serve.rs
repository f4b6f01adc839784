//! `aims serve`: crash safety under `kill -9`, graceful SIGTERM, and `--dev`.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::process::ExitStatusExt as _;
use std::sync::{Arc, Mutex};

use aims_core::{Selector, SpiffeId};
use aims_server::api::EntrySpec;
use aims_server::client::AdminClient;

use crate::daemon::{Daemon, aims, write_config};

const BURST: usize = 400;
const KILL_AFTER: usize = 60;
const WORKERS: usize = 8;

fn burst_spec(i: usize) -> EntrySpec {
    EntrySpec {
        spiffe_id: SpiffeId::parse(&format!("spiffe://example.org/burst/{i}")).unwrap(),
        selectors: vec![Selector::parse(&format!("unix:uid:{}", 100_000 + i)).unwrap()],
        x509_ttl: 3600 + u32::try_from(i).unwrap(),
        jwt_ttl: 300,
        wit_ttl: 600,
        dns_names: vec![format!("n{i}.example")],
        hint: Some(format!("burst-{i}")),
        federates_with: vec![],
        parent_id: None,
        admin: false,
        revision: None,
    }
}

fn selectors_of_this_process() -> Vec<Selector> {
    let uid = std::fs::metadata("/proc/self").unwrap().uid();
    let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let hex: String = aims_crypto::sha256(&exe)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    vec![
        Selector::parse(&format!("unix:uid:{uid}")).unwrap(),
        Selector::parse(&format!("unix:sha256:{hex}")).unwrap(),
    ]
}

/// Serial numbers of `n` X509-SVIDs fetched from the Workload API.
async fn serials(workload_socket: &std::path::Path, n: usize) -> Vec<Vec<u8>> {
    let client =
        spiffe::WorkloadApiClient::connect_to(format!("unix://{}", workload_socket.display()))
            .await
            .unwrap();
    let mut out = Vec::new();
    for _ in 0..n {
        let svid = client.fetch_x509_svid().await.unwrap();
        let leaf = svid.cert_chain()[0].as_bytes().to_vec();
        let (_, cert) = x509_parser::parse_x509_certificate(&leaf).unwrap();
        out.push(cert.raw_serial().to_vec());
    }
    out
}

async fn ca_authorities(admin: &AdminClient) -> Vec<Vec<u8>> {
    let json = admin.bundle().await.unwrap();
    let td = aims_core::TrustDomain::new("example.org").unwrap();
    aims_pki::SpiffeBundle::parse(td, json.as_bytes())
        .unwrap()
        .x509_authorities()
        .iter()
        .map(|c| c.to_vec())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_burst_of_entry_writes_keeps_entries_whole_and_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let args = ["serve", "--config", config.to_str().unwrap()];
    let mut first = Daemon::start(&args, dir.path(), &dir.path().join("first.log"));
    let admin = AdminClient::new(&first.admin_socket);

    // An entry for this test process, and SVIDs before the crash.
    let me = EntrySpec {
        selectors: selectors_of_this_process(),
        ..burst_spec(0)
    };
    let me = EntrySpec {
        spiffe_id: SpiffeId::parse("spiffe://example.org/test/me").unwrap(),
        hint: None,
        dns_names: vec![],
        ..me
    };
    admin.create_entry(&me).await.unwrap();
    let mut all_serials = serials(&first.workload_socket, 3).await;
    let ca_before = ca_authorities(&admin).await;

    // A burst of concurrent creates; kill -9 once KILL_AFTER were acknowledged.
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let (enough_tx, mut enough_rx) = tokio::sync::watch::channel(false);
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..WORKERS {
        let admin = admin.clone();
        let acked = Arc::clone(&acked);
        let enough_tx = enough_tx.clone();
        workers.spawn(async move {
            for i in (1 + w..=BURST).step_by(WORKERS) {
                match admin.create_entry(&burst_spec(i)).await {
                    Ok(e) => {
                        assert_eq!(e.spiffe_id, burst_spec(i).spiffe_id);
                        let n = {
                            let mut a = acked.lock().unwrap();
                            a.insert(i);
                            a.len()
                        };
                        if n >= KILL_AFTER {
                            let _ = enough_tx.send(true);
                        }
                    }
                    // The server is gone.
                    Err(_) => break,
                }
            }
        });
    }
    drop(enough_tx);
    let _ = enough_rx.wait_for(|v| *v).await;
    let status = first.kill9();
    assert_eq!(status.signal(), Some(9), "{status}");
    while workers.join_next().await.is_some() {}
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= KILL_AFTER);
    assert!(acked.len() < BURST, "the kill must land mid-burst");

    // Restart on the same data.
    let mut second = Daemon::start(&args, dir.path(), &dir.path().join("second.log"));
    let admin = AdminClient::new(&second.admin_socket);
    let listed = admin.list_entries().await.unwrap();
    let mut burst: BTreeMap<usize, _> = BTreeMap::new();
    for e in &listed {
        e.validate().unwrap();
        if let Some(i) = e.spiffe_id.path().strip_prefix("/burst/") {
            let i: usize = i.parse().unwrap();
            let want = burst_spec(i);
            // Whole: every field as written.
            assert_eq!(e.selectors, want.selectors.iter().cloned().collect());
            assert_eq!(e.x509_ttl, want.x509_ttl);
            assert_eq!(e.dns_names, want.dns_names);
            assert_eq!(e.hint, want.hint);
            assert_eq!(e.revision, 1);
            assert!(burst.insert(i, e.id.clone()).is_none(), "entry {i} twice");
        }
    }
    let present: BTreeSet<usize> = burst.keys().copied().collect();
    eprintln!(
        "kill -9 after {} acknowledged creates; {} entries present after restart",
        acked.len(),
        present.len()
    );
    // Acknowledged writes survived; nothing appeared that was not attempted.
    assert!(
        acked.is_subset(&present),
        "lost: {:?}",
        acked.difference(&present).collect::<Vec<_>>()
    );
    assert!(present.iter().all(|i| (1..=BURST).contains(i)));

    // The CA is unchanged, and serial numbers never repeat.
    assert_eq!(ca_authorities(&admin).await, ca_before);
    all_serials.extend(serials(&second.workload_socket, 3).await);
    let distinct: BTreeSet<_> = all_serials.iter().collect();
    assert_eq!(
        distinct.len(),
        all_serials.len(),
        "a serial number repeated"
    );

    // Graceful stop: exit 0, sockets removed.
    let status = second.terminate();
    assert!(status.success(), "{status}\n{}", second.log());
    assert!(!second.admin_socket.exists());
    assert!(!second.workload_socket.exists());
    assert!(second.log().contains("stopped"));
}

#[test]
fn dev_mode_needs_no_file_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "serve",
        "--dev",
        "--http-listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
    ];
    let mut d = Daemon::start(&args, dir.path(), &dir.path().join("dev.log"));
    assert!(d.banner.contains("aims.localhost"), "{}", d.banner);
    assert!(
        d.banner.contains("SPIFFE_ENDPOINT_SOCKET=unix:///"),
        "{}",
        d.banner
    );
    assert!(d.http.starts_with("http://127.0.0.1:"), "{}", d.http);
    let data = dir.path().join("aims-data");
    assert_eq!(
        std::fs::metadata(&data).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(
        std::fs::metadata(data.join("admin.sock"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert_eq!(d.admin_socket, data.join("admin.sock"));

    // The CLI finds the dev server's admin socket by default.
    let out = aims()
        .args([
            "entry",
            "create",
            "--spiffe-id",
            "spiffe://aims.localhost/agent/a",
            "--selector",
            "unix:uid:1000",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bundle_before = aims()
        .args(["bundle", "show"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(bundle_before.status.success());
    assert!(d.terminate().success());
    // Logs are JSON lines.
    let log = d.log();
    let first = log.lines().next().unwrap();
    let v: serde_json::Value = serde_json::from_str(first).unwrap();
    assert!(v.get("level").is_some(), "{first}");

    // A second start reuses the CA and the entries.
    let mut again = Daemon::start(&args, dir.path(), &dir.path().join("dev2.log"));
    let list = aims()
        .args(["entry", "list", "--json"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(list["entries"].as_array().unwrap().len(), 1);
    let bundle_after = aims()
        .args(["bundle", "show"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let x509 = |o: &std::process::Output| -> Vec<serde_json::Value> {
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["use"] == "x509-svid")
            .cloned()
            .collect()
    };
    assert_eq!(x509(&bundle_before), x509(&bundle_after));
    assert!(again.terminate().success());
}

/// `[server] worker_threads` sets how many threads serve requests; `/metrics` says how
/// many do. The value is one the default (one per CPU) cannot give on this machine.
#[tokio::test(flavor = "current_thread")]
async fn worker_threads_sets_how_many_threads_serve() {
    let cpus = std::thread::available_parallelism().unwrap().get();
    let wanted = cpus + 1;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let text = std::fs::read_to_string(&config).unwrap().replacen(
        "[server]\n",
        &format!("[server]\nworker_threads = {wanted}\n"),
        1,
    );
    std::fs::write(&config, text).unwrap();
    let args = ["serve", "--config", config.to_str().unwrap()];
    let mut d = Daemon::start(&args, dir.path(), &dir.path().join("workers.log"));
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let metrics = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{}/metrics", d.http))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(d.terminate().success());
    let line = metrics
        .lines()
        .find(|l| l.starts_with("aims_runtime_worker_threads "))
        .unwrap_or_else(|| panic!("no worker gauge in:\n{metrics}"));
    assert_eq!(line, format!("aims_runtime_worker_threads {wanted}"));
}

/// `aims serve` raises its soft limit on open files to the hard limit: started with a
/// low soft limit (inherited from this test), it runs with the hard one.
#[tokio::test(flavor = "current_thread")]
async fn serve_raises_its_open_files_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    const LOW: u64 = 256;
    let ours = getrlimit(Resource::Nofile);
    let hard = ours.maximum.filter(|h| *h > LOW).unwrap_or_else(|| {
        panic!(
            "this test needs a finite hard limit on open files above {LOW}, got {:?}",
            ours.maximum
        )
    });
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(LOW),
            maximum: Some(hard),
        },
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let args = ["serve", "--config", config.to_str().unwrap()];
    let mut d = Daemon::start(&args, dir.path(), &dir.path().join("nofile.log"));
    // The server has inherited the low limit; this process (and any test sharing it
    // under `cargo test`) gets its own back.
    setrlimit(Resource::Nofile, ours).unwrap();
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", d.child.id())).unwrap();
    assert!(d.terminate().success());
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or_else(|| panic!("no open files line in:\n{limits}"));
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers, [hard.to_string(), hard.to_string()], "{line}");
}
