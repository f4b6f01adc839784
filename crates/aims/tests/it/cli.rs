//! `aims config check`, `aims entry …` and `aims bundle …` against a running server.

use std::time::Duration;

use crate::daemon::{Daemon, aims, write_config};

fn run(args: &[&str]) -> (i32, String, String) {
    let out = aims().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn config_check_explains_every_error_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_config(dir.path());
    let (code, out, _) = run(&["config", "check", good.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(": OK (trust domain example.org"), "{out}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "version = 1\n\n[server]\ntrust_domain = \"Example.ORG\"\ndata_dir = \"/d\"\n\n[http]\nlisten = \"8080\"\n\n[jwt]\nrotaton_period = \"1h\"\n",
    )
    .unwrap();
    let (code, out, _) = run(&["config", "check", bad.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    let b = bad.display();
    assert!(
        out.contains(&format!("{b}:4:16: error: invalid trust domain")),
        "{out}"
    );
    assert!(out.contains(&format!("{b}:8:10: error:")), "{out}");
    assert!(
        out.contains(&format!("{b}:11:1: error: unknown field `rotaton_period`")),
        "{out}"
    );
    assert!(out.contains("help: "), "{out}");
    assert!(out.contains("3 errors found"), "{out}");

    // serve refuses the same file with the same report.
    let (code, _, err) = run(&["serve", "--config", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("is not a valid configuration"), "{err}");
    assert!(err.contains(":11:1:"), "{err}");
}

/// `aims config check` reads `[keys] encryption_key_file` as `aims serve` would: a file
/// others may read is an error naming the fix, a private one is OK.
#[test]
fn config_check_reads_the_key_encryption_key_file() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let kek = dir.path().join("kek");
    std::fs::write(&kek, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n").unwrap();
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o644)).unwrap();
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!(
            "{text}\n[keys]\nencryption_key_file = \"{}\"\n",
            kek.display()
        ),
    )
    .unwrap();
    let (code, out, _) = run(&["config", "check", config.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("chmod 600"), "{out}");
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, out, _) = run(&["config", "check", config.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn entry_and_bundle_commands_round_trip_through_the_admin_socket() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let mut d = Daemon::start(
        &["serve", "--config", config.to_str().unwrap()],
        dir.path(),
        &dir.path().join("server.log"),
    );
    let sock = d.admin_socket.to_str().unwrap().to_owned();
    let s = sock.as_str();

    let (code, out, err) = run(&[
        "entry",
        "create",
        "--admin-socket",
        s,
        "--spiffe-id",
        "spiffe://example.org/agent/a",
        "--selector",
        "unix:uid:1000",
        "--selector",
        "unix:sha256:abcd",
        "--x509-ttl",
        "1h",
        "--jwt-ttl",
        "5m",
        "--dns",
        "a.example",
        "--hint",
        "main",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let e: serde_json::Value = serde_json::from_str(&out).unwrap();
    let id = e["id"].as_str().unwrap().to_owned();
    assert_eq!(e["x509_ttl"], 3600);
    assert_eq!(
        e["selectors"],
        serde_json::json!(["unix:sha256:abcd", "unix:uid:1000"])
    );

    let (code, out, _) = run(&["entry", "list", "--admin-socket", s]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&id) && out.contains("spiffe://example.org/agent/a"),
        "{out}"
    );

    let (code, out, _) = run(&["entry", "show", &id, "--admin-socket", s]);
    assert_eq!(code, 0);
    assert!(out.contains("X.509 1h, JWT 5m, WIT 1h"), "{out}");
    assert!(out.contains("a.example"), "{out}");

    let (code, out, err) = run(&[
        "entry",
        "update",
        &id,
        "--admin-socket",
        s,
        "--x509-ttl",
        "2h",
        "--admin",
        "true",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("X.509 2h") && out.contains("admin           yes"),
        "{out}"
    );
    assert!(out.contains("revision        2"), "{out}");

    // Errors say why.
    let (code, _, err) = run(&[
        "entry",
        "create",
        "--admin-socket",
        s,
        "--spiffe-id",
        "spiffe://other.org/x",
        "--selector",
        "unix:uid:1",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("not in this server's trust domain `example.org`"),
        "{err}"
    );
    let (code, _, err) = run(&[
        "entry",
        "create",
        "--admin-socket",
        s,
        "--spiffe-id",
        "spiffe://example.org/x",
        "--selector",
        "uid=1",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("--selector uid=1"), "{err}");

    // Bundles: ours, and a partner's set from a file.
    let (code, out, _) = run(&["bundle", "show", "--admin-socket", s]);
    assert_eq!(code, 0);
    let own: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        own["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["use"] == "x509-svid")
    );
    let partner_td = aims_core::TrustDomain::new("partner.example").unwrap();
    let ca = aims_pki::CertificateAuthority::new_root(
        &partner_td,
        Duration::from_secs(3600),
        std::sync::Arc::new(aims_core::SystemClock),
    )
    .unwrap();
    let file = dir.path().join("partner.json");
    std::fs::write(&file, ca.bundle().unwrap().to_json().unwrap()).unwrap();
    let (code, out, err) = run(&[
        "bundle",
        "set",
        "--trust-domain",
        "partner.example",
        "--file",
        file.to_str().unwrap(),
        "--admin-socket",
        s,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("bundle of partner.example set"), "{out}");
    let (code, out, _) = run(&["bundle", "list", "--admin-socket", s]);
    assert_eq!(code, 0);
    assert!(out.contains("partner.example"), "{out}");
    let (code, out, _) = run(&[
        "bundle",
        "show",
        "--trust-domain",
        "partner.example",
        "--admin-socket",
        s,
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("x509-svid"), "{out}");

    let (code, out, _) = run(&["entry", "delete", &id, "--admin-socket", s]);
    assert_eq!(code, 0);
    assert!(out.contains("deleted"), "{out}");
    let (code, _, err) = run(&["entry", "show", &id, "--admin-socket", s]);
    assert_eq!(code, 2);
    assert!(err.contains("not found"), "{err}");
    assert!(d.terminate().success());
}

#[test]
fn entry_commands_without_a_server_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = aims()
        .args(["entry", "list"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach the admin socket aims-data/admin.sock"),
        "{err}"
    );
    assert!(err.contains("is `aims serve --dev` running?"), "{err}");
}
