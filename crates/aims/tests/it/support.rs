//! Running the `aims` binary.

use std::process::{Command, Output};

/// Runs `aims` with `args`; returns the output.
pub fn aims(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aims"))
        .args(args)
        .output()
        .expect("run aims")
}

/// Runs `aims`, asserting success; returns stdout.
pub fn aims_ok(args: &[&str]) -> String {
    let out = aims(args);
    assert!(
        out.status.success(),
        "aims {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// Runs `openssl`, returning (success, stdout + stderr).
pub fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl (is it installed?)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
