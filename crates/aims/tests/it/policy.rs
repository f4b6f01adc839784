//! `aims policy check`.

use std::path::{Path, PathBuf};

use crate::support::aims;

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../aims-pdp/examples")
        .join(name)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn passing_directories_print_ok() {
    for name in ["authzen-interop", "agents"] {
        let dir = example(name);
        let out = aims(&["policy", "check", dir.to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{name}: {stdout}");
        assert!(stdout.contains(": OK ("), "{stdout}");
    }
}

#[test]
fn a_failing_test_case_is_reported_with_its_file_and_case() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&example("authzen-interop"), tmp.path());
    // Expect the opposite of rule 4.
    std::fs::write(
        tmp.path().join("tests/wrong.json"),
        r#"{"name": "bob writes", "request": {"subject": {"type": "user", "id": "bob"},
            "action": {"name": "write"}, "resource": {"type": "record", "id": "record-1"}},
            "decision": true}"#,
    )
    .unwrap();
    let out = aims(&["policy", "check", tmp.path().to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("wrong.json: case 1 (bob writes): error: expected permit, got deny"),
        "{stdout}"
    );
    assert!(stdout.contains("1 of 10 test cases failed"), "{stdout}");
}

#[test]
fn a_policy_that_does_not_validate_is_located() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&example("authzen-interop"), tmp.path());
    std::fs::write(
        tmp.path().join("zz-extra.cedar"),
        "// extra\n@id(\"typo\")\npermit (principal, action, resource)\nwhen { resource.stauts == \"active\" };\n",
    )
    .unwrap();
    let out = aims(&["policy", "check", tmp.path().to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("zz-extra.cedar:4:"), "{stdout}");
    assert!(
        stdout.contains("policy `typo` does not validate"),
        "{stdout}"
    );
}
