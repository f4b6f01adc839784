//! `aims user …` against a running `aims serve`: the password comes from stdin or a file,
//! never from an option value.

use std::io::Write as _;
use std::process::Stdio;

use crate::daemon::{Daemon, aims, write_config};

/// Runs `aims ARGS` with `stdin` as standard input.
fn run(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = aims()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn user_commands_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let d = Daemon::start(
        &["serve", "--config", config.to_str().unwrap()],
        dir.path(),
        &dir.path().join("server.log"),
    );
    let s = d.admin_socket.to_str().unwrap().to_owned();
    let s = s.as_str();

    let (code, out, err) = run(
        &[
            "user",
            "create",
            "alice",
            "--attributes",
            r#"{"name": "Alice"}"#,
            "--admin-socket",
            s,
        ],
        "alice's long password\n",
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("user alice") && out.contains("Alice"), "{out}");
    // A weak password is refused with advice.
    let (code, _, err) = run(&["user", "create", "bob", "--admin-socket", s], "short\n");
    assert_ne!(code, 0);
    assert!(err.contains("12 characters"), "{err}");
    // From a file.
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "bob's long password\n").unwrap();
    let (code, _, err) = run(
        &[
            "user",
            "create",
            "bob",
            "--password-file",
            pw.to_str().unwrap(),
            "--admin-socket",
            s,
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = run(&["user", "list", "--admin-socket", s], "");
    assert_eq!(code, 0);
    assert!(out.contains("alice") && out.contains("bob"), "{out}");
    assert!(!out.contains("argon2"), "{out}");
    let (code, out, _) = run(
        &["user", "disable", "bob", "--admin-socket", s, "--json"],
        "",
    );
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["disabled"], true);
    let (code, out, _) = run(&["user", "enable", "bob", "--admin-socket", s], "");
    assert_eq!(code, 0);
    assert!(out.contains("disabled        no"), "{out}");
    let (code, _, err) = run(
        &["user", "passwd", "bob", "--admin-socket", s],
        "another long password\n",
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = run(&["user", "show", "alice", "--admin-socket", s], "");
    assert_eq!(code, 0);
    assert!(out.contains("user alice"), "{out}");
    let (code, _, _) = run(&["user", "delete", "alice", "--admin-socket", s], "");
    assert_eq!(code, 0);
    let (code, _, err) = run(&["user", "show", "alice", "--admin-socket", s], "");
    assert_ne!(code, 0);
    assert!(err.contains("aims user list"), "{err}");
    drop(d);
}
