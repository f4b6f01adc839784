//! `aims ca init` and `aims svid issue`, checked by OpenSSL.

use std::os::unix::fs::PermissionsExt as _;

use crate::support::{aims, aims_ok, openssl};

fn p(dir: &std::path::Path, f: &str) -> String {
    dir.join(f).to_str().expect("utf-8 path").to_owned()
}

/// Asserts the X509-SVID profile (X509-SVID.md section 4) as `openssl x509 -text` shows it.
fn assert_svid_profile(text: &str, id: &str) {
    assert!(
        text.contains(&format!("URI:{id}")),
        "URI SAN missing:\n{text}"
    );
    assert_eq!(
        text.matches("URI:").count(),
        1,
        "exactly one URI SAN:\n{text}"
    );
    assert!(text.contains("CA:FALSE"), "cA=false missing:\n{text}");
    assert!(
        text.contains("X509v3 Key Usage: critical"),
        "key usage not critical:\n{text}"
    );
    assert!(
        text.contains("Digital Signature"),
        "digitalSignature missing:\n{text}"
    );
    assert!(
        !text.contains("Certificate Sign"),
        "leaf must not have keyCertSign:\n{text}"
    );
    assert!(
        !text.contains("CRL Sign"),
        "leaf must not have cRLSign:\n{text}"
    );
    assert!(
        text.contains("TLS Web Server Authentication, TLS Web Client Authentication"),
        "EKU server+client auth missing:\n{text}"
    );
    assert!(
        text.contains("Not After"),
        "explicit expiry missing:\n{text}"
    );
}

#[test]
fn root_ca_and_svid_verify_with_openssl() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = tmp.path().join("ca");
    let out = tmp.path().join("planner");
    aims_ok(&[
        "ca",
        "init",
        "--trust-domain",
        "example.org",
        "--out",
        &p(&ca, ""),
    ]);
    let mode = std::fs::metadata(ca.join("ca.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "CA key must be owner-only");

    // The CA certificate: a CA with keyCertSign and the trust domain's root ID.
    let (ok, text) = openssl(&["x509", "-in", &p(&ca, "ca.pem"), "-noout", "-text"]);
    assert!(ok, "{text}");
    assert!(
        text.contains("CA:TRUE") && text.contains("Certificate Sign"),
        "{text}"
    );
    assert!(
        text.contains("URI:spiffe://example.org\n") || text.contains("URI:spiffe://example.org "),
        "{text}"
    );

    let id = "spiffe://example.org/agent/planner";
    aims_ok(&[
        "svid",
        "issue",
        "--ca",
        &p(&ca, ""),
        "--spiffe-id",
        id,
        "--ttl",
        "1h",
        "--out",
        &p(&out, ""),
    ]);
    let mode = std::fs::metadata(out.join("svid.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "SVID key must be owner-only");

    let (ok, text) = openssl(&[
        "verify",
        "-CAfile",
        &p(&ca, "bundle.pem"),
        &p(&out, "svid.pem"),
    ]);
    assert!(ok && text.contains("OK"), "openssl verify failed: {text}");
    let (ok, text) = openssl(&["x509", "-in", &p(&out, "svid.pem"), "-noout", "-text"]);
    assert!(ok, "{text}");
    assert_svid_profile(&text, id);
    // The key is PKCS#8 and matches the certificate.
    let (ok, key) = openssl(&["pkey", "-in", &p(&out, "svid.key"), "-pubout"]);
    assert!(ok, "{key}");
    let (ok, cert_pub) = openssl(&["x509", "-in", &p(&out, "svid.pem"), "-noout", "-pubkey"]);
    assert!(ok);
    assert_eq!(key.trim(), cert_pub.trim());
    let pem = std::fs::read_to_string(out.join("svid.key")).unwrap();
    assert!(
        pem.starts_with("-----BEGIN PRIVATE KEY-----"),
        "PKCS#8 PEM expected"
    );

    // A different trust domain's CA does not verify it.
    let other = tmp.path().join("other");
    aims_ok(&[
        "ca",
        "init",
        "--trust-domain",
        "other.org",
        "--out",
        &p(&other, ""),
    ]);
    let (ok, _) = openssl(&[
        "verify",
        "-CAfile",
        &p(&other, "bundle.pem"),
        &p(&out, "svid.pem"),
    ]);
    assert!(
        !ok,
        "an SVID must not verify against another trust domain's CA"
    );
}

#[test]
fn intermediate_ca_chain_verifies_with_openssl() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let inter = tmp.path().join("inter");
    let out = tmp.path().join("svid");
    aims_ok(&[
        "ca",
        "init",
        "--trust-domain",
        "example.org",
        "--out",
        &p(&root, ""),
    ]);
    aims_ok(&[
        "ca",
        "init",
        "--trust-domain",
        "example.org",
        "--out",
        &p(&inter, ""),
        "--upstream-cert",
        &p(&root, "ca.pem"),
        "--upstream-key",
        &p(&root, "ca.key"),
    ]);
    let id = "spiffe://example.org/agent/b";
    aims_ok(&[
        "svid",
        "issue",
        "--ca",
        &p(&inter, ""),
        "--spiffe-id",
        id,
        "--out",
        &p(&out, ""),
    ]);
    // svid.pem = leaf + intermediate; the root comes from the bundle.
    let (ok, text) = openssl(&[
        "verify",
        "-CAfile",
        &p(&root, "bundle.pem"),
        "-untrusted",
        &p(&out, "svid.pem"),
        &p(&out, "svid.pem"),
    ]);
    assert!(ok && text.contains("OK"), "{text}");
    let (_, text) = openssl(&["x509", "-in", &p(&out, "svid.pem"), "-noout", "-text"]);
    assert_svid_profile(&text, id);
}

#[test]
fn errors_say_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = tmp.path().join("ca");
    let out = aims(&[
        "ca",
        "init",
        "--trust-domain",
        "Example.org",
        "--out",
        &p(&ca, ""),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid trust domain"));

    aims_ok(&[
        "ca",
        "init",
        "--trust-domain",
        "example.org",
        "--out",
        &p(&ca, ""),
    ]);
    let again = aims(&[
        "ca",
        "init",
        "--trust-domain",
        "example.org",
        "--out",
        &p(&ca, ""),
    ]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a CA"));

    for (id, msg) in [
        ("spiffe://other.org/a", "trust domain"),
        ("spiffe://example.org", "root"),
        ("spiffe://example.org/a/../b", "invalid spiffe id"),
    ] {
        let out = aims(&[
            "svid",
            "issue",
            "--ca",
            &p(&ca, ""),
            "--spiffe-id",
            id,
            "--out",
            &p(tmp.path(), "x"),
        ]);
        assert_eq!(out.status.code(), Some(2), "{id}");
        let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
        assert!(err.contains(msg), "{id}: {err}");
    }
}

#[test]
fn help_is_available_everywhere() {
    for args in [
        vec!["--help"],
        vec!["ca", "init", "--help"],
        vec!["svid", "issue", "--help"],
        vec!["token", "inspect", "--help"],
        vec!["token", "verify", "--help"],
    ] {
        let out = aims_ok(&args);
        assert!(out.contains("Usage: aims"), "{args:?}: {out}");
    }
}

/// A symbolic link at `dir/name` pointing at a file outside `dir`; that file.
#[cfg(unix)]
fn plant_link(dir: &std::path::Path, outside: &std::path::Path, name: &str) -> std::path::PathBuf {
    let victim = outside.join(format!("victim-{name}"));
    std::fs::write(&victim, "precious\n").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::symlink(&victim, dir.join(name)).unwrap();
    victim
}

#[cfg(unix)]
fn assert_untouched(victim: &std::path::Path, link: &std::path::Path) {
    assert_eq!(
        std::fs::read_to_string(victim).unwrap(),
        "precious\n",
        "{} was written through the link",
        victim.display()
    );
    let mode = std::fs::metadata(victim).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o644, "{} changed mode", victim.display());
    let meta = std::fs::symlink_metadata(link).unwrap();
    assert!(
        meta.file_type().is_file(),
        "{} is not a new file",
        link.display()
    );
}

#[cfg(unix)]
#[test]
fn output_files_replace_planted_symlinks_without_writing_through_them() {
    let help = aims_ok(&["ca", "init", "--help"]);
    assert!(help.contains("--force"), "{help}");
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();

    // `ca init` refuses a directory where any of its files exists, even as a link...
    let ca = tmp.path().join("ca");
    std::fs::create_dir(&ca).unwrap();
    let victim = plant_link(&ca, &outside, "bundle.json");
    let init = |force: bool| {
        let mut args = vec!["ca", "init", "--trust-domain", "example.org"];
        let out = p(&ca, "");
        args.extend(["--out", out.as_str()]);
        if force {
            args.push("--force");
        }
        aims(&args)
    };
    let refused = init(false);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("bundle.json") && stderr.contains("--force"),
        "{stderr}"
    );
    assert!(!ca.join("ca.key").exists());
    // ...and with --force replaces the link by a new file, leaving its target alone.
    assert!(init(true).status.success());
    assert_untouched(&victim, &ca.join("bundle.json"));
    let mode = std::fs::metadata(ca.join("bundle.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);

    // `svid issue` replaces its files the same way: the key is never written elsewhere.
    let out = tmp.path().join("svid");
    std::fs::create_dir(&out).unwrap();
    let links: Vec<_> = ["svid.pem", "svid.key", "bundle.pem"]
        .into_iter()
        .map(|name| (plant_link(&out, &outside, name), out.join(name)))
        .collect();
    aims_ok(&[
        "svid",
        "issue",
        "--ca",
        &p(&ca, ""),
        "--spiffe-id",
        "spiffe://example.org/agent/planner",
        "--out",
        &p(&out, ""),
    ]);
    for (victim, link) in &links {
        assert_untouched(victim, link);
    }
    let mode = std::fs::metadata(out.join("svid.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
}
