//! `aims serve` as a child process: start, read the startup summary, stop.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

/// The binary under test.
pub fn aims() -> Command {
    Command::new(env!("CARGO_BIN_EXE_aims"))
}

/// A running `aims serve`.
pub struct Daemon {
    pub child: Child,
    pub admin_socket: PathBuf,
    pub workload_socket: PathBuf,
    pub http: String,
    pub banner: String,
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `aims ARGS` in `cwd` (stderr to `log`) and waits for the startup summary.
    pub fn start(args: &[&str], cwd: &Path, log: &Path) -> Daemon {
        let mut child = aims()
            .args(args)
            .current_dir(cwd)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut banner = String::new();
        loop {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap() == 0 {
                let status = child.wait().unwrap();
                panic!(
                    "aims exited ({status}) before it was ready; log:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            banner.push_str(&line);
            if line.trim_start().starts_with("storage") {
                break;
            }
        }
        let field = |name: &str| -> String {
            banner
                .lines()
                .find_map(|l| l.trim_start().strip_prefix(name))
                .unwrap()
                .trim()
                .to_owned()
        };
        let admin_socket = PathBuf::from(field("admin socket"));
        let workload_socket = PathBuf::from(
            field("workload socket")
                .strip_prefix("SPIFFE_ENDPOINT_SOCKET=unix://")
                .unwrap(),
        );
        let http = field("HTTP").split_whitespace().next().unwrap().to_owned();
        Daemon {
            child,
            admin_socket,
            workload_socket,
            http,
            banner,
            log: log.to_path_buf(),
        }
    }

    /// `kill -9`.
    pub fn kill9(&mut self) -> ExitStatus {
        self.child.kill().unwrap();
        self.child.wait().unwrap()
    }

    /// SIGTERM (through the `kill` program), then waits for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(ok.success());
        self.child.wait().unwrap()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A configuration file in `dir` for trust domain example.org: sockets and data in
/// `dir`, HTTP on a free loopback port.
pub fn write_config(dir: &Path) -> PathBuf {
    let path = dir.join("aims.toml");
    let text = format!(
        r#"version = 1

[server]
trust_domain = "example.org"
data_dir = "{d}/data"

[http]
listen = "127.0.0.1:0"

[admin]
socket_path = "{d}/admin.sock"

[workload_api]
socket_path = "{d}/workload.sock"
"#,
        d = dir.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}
