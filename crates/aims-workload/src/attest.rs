//! Workload attestation: who is calling, expressed as selectors.
//!
//! The server reads the caller's process credentials from the Unix socket
//! (`SO_PEERCRED`, which the kernel records when the client calls `connect`) into a
//! [`PeerInfo`] and hands it to an [`Attestor`], which returns the caller's
//! [`SelectorSet`]. A registration entry matches when all of its selectors are in that
//! set (see [`aims_core::entry`]).
//!
//! # Selectors of the [`UnixAttestor`]
//!
//! | Selector | Value | Source |
//! |---|---|---|
//! | `unix:uid:N` | effective user id, decimal | `SO_PEERCRED` |
//! | `unix:gid:N` | effective group id, decimal | `SO_PEERCRED` |
//! | `unix:user:NAME` | the first `/etc/passwd` line with that uid | `/etc/passwd` |
//! | `unix:group:NAME` | the first `/etc/group` line with that gid | `/etc/group` |
//! | `unix:path:/abs/exe` | the executable's absolute path, only when it names the running file here too | `readlink /proc/PID/exe` |
//! | `unix:sha256:HEX` | SHA-256 of the executable's content, 64 lowercase hex digits | the file opened through `/proc/PID/exe` |
//!
//! A selector is left out (never guessed) when its value is unknown: a user or group
//! that has no line in the files (e.g. one known only through NSS/LDAP), an executable
//! the server may not read (e.g. another user's process while not running as root,
//! or `hidepid`), a path that is not a valid selector value (white space, or the
//! kernel's ` (deleted)` suffix for a removed file), or an executable larger than
//! [`UnixAttestor::max_executable_bytes`]. Leaving a selector out can only make fewer
//! entries match.
//!
//! `unix:path` is also left out when that path, resolved by the server, is not the file
//! the caller runs (same device and inode as the `/proc/PID/exe` link): the kernel gives
//! the exe path as the caller sees it, in its mount namespace, and a container can place
//! any program at a path that names a trusted binary on the host. Callers that see the
//! server's files (a systemd unit with a private `/tmp`) keep the selector.
//! `unix:sha256` does not depend on paths (the file is opened through the
//! `/proc/PID/exe` link itself) and stays.
//!
//! # PID reuse
//!
//! `uid` and `gid` come from the socket itself and cannot be raced. The path and digest
//! are read from `/proc/PID`, which names whatever process holds that pid *now*. The
//! attestor reads the process start time (`/proc/PID/stat`, field 22) before and after
//! reading the executable; if it changed, the pid was reused during attestation and the
//! call fails ([`AttestError::PidReused`]); if the process is gone,
//! [`AttestError::ProcessGone`].
//!
//! The start time is also read when the connection is accepted
//! ([`PeerInfo::started`]): a client that connects, hands the connection to a child and
//! exits, so that another program may get its pid before the first call, is refused
//! ([`AttestError::PidReused`]) instead of being attested as that program.
//!
//! Known limit (shared with other `SO_PEERCRED` attestors): a process that connects and
//! then `exec`s another program keeps its pid and start time, so a client that handed
//! the connection to a child before the `exec` is attested as the new program. Entries
//! should therefore combine `unix:sha256`/`unix:path` with `unix:uid`, so that the
//! caller must at least run as the expected user.
//!
//! # Cost
//!
//! Digests are cached by (device, inode, size, modification and change times), so a program is
//! hashed once, not on every call; the cache holds at most [`DIGEST_CACHE_CAPACITY`]
//! entries and, when full, forgets the least recently used one (so a caller that runs
//! many distinct programs does not make every other program be hashed again).
//! `/etc/passwd` and `/etc/group` are read on every attestation (small files;
//! no stale names after an account change).

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, Read as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use aims_core::{Selector, SelectorSet};

/// The selector type of the [`UnixAttestor`].
pub const UNIX: &str = "unix";

/// How many executable digests the [`UnixAttestor`] keeps.
pub const DIGEST_CACHE_CAPACITY: usize = 1024;

/// Executables larger than this are not hashed by default (no `unix:sha256` selector).
pub const DEFAULT_MAX_EXECUTABLE_BYTES: u64 = 512 * 1024 * 1024;

/// The caller's process credentials, as the kernel recorded them for the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerInfo {
    /// Process id, when the platform reports it (Linux does).
    pub pid: Option<i32>,
    /// Effective user id.
    pub uid: u32,
    /// Effective group id.
    pub gid: u32,
    /// The process's start time (`/proc/PID/stat` field 22) read when the connection was
    /// accepted. When given, a process with that pid that started at another time is
    /// not the caller (the pid was reused since) and attestation fails.
    pub started: Option<u64>,
}

/// Where the kernel shows processes.
const PROC: &str = "/proc";

/// The start time of process `pid` now (`/proc/PID/stat` field 22), if it can be read:
/// record it when a connection is accepted, into [`PeerInfo::started`].
pub fn process_start_time(pid: i32) -> Option<u64> {
    let dir = Path::new(PROC).join(pid.to_string());
    start_time(&dir, pid).ok()
}

/// Why a caller could not be attested.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttestError {
    /// The connection carries no process credentials (not a Unix socket?).
    #[error("the caller's process credentials are unavailable")]
    NoCredentials,
    /// The calling process exited before attestation finished.
    #[error("process {0} exited during attestation")]
    ProcessGone(i32),
    /// The pid now names another process than when attestation started.
    #[error("process {0} was replaced during attestation (pid reused)")]
    PidReused(i32),
    /// The executable changed while it was being hashed.
    #[error("the executable of process {0} changed while it was being measured")]
    ExecutableChanged(i32),
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A `/proc` file did not have the expected format.
    #[error("unexpected format of {0}")]
    Malformed(PathBuf),
}

impl AttestError {
    /// Whether retrying later may succeed (the server answers `Unavailable` for these and
    /// `PermissionDenied` otherwise).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            AttestError::ProcessGone(_)
                | AttestError::ExecutableChanged(_)
                | AttestError::Io { .. }
        )
    }
}

/// Derives a caller's selectors from its process credentials.
///
/// Called once per RPC (once per stream for streaming RPCs), on a blocking thread, so
/// implementations may do file I/O.
pub trait Attestor: Send + Sync + fmt::Debug {
    /// The selectors of the caller described by `peer`.
    fn attest(&self, peer: &PeerInfo) -> Result<SelectorSet, AttestError>;
}

impl<A: Attestor + ?Sized> Attestor for std::sync::Arc<A> {
    fn attest(&self, peer: &PeerInfo) -> Result<SelectorSet, AttestError> {
        (**self).attest(peer)
    }
}

/// Cache key of an executable's digest: device, inode, size, mtime and ctime (seconds,
/// nanoseconds). The ctime cannot be set by users, so content rewritten with a restored
/// mtime still gets a new key.
type FileKey = (u64, u64, u64, i64, i64, i64, i64);

/// The `unix` attestor (see the [module documentation](self) for its selectors).
pub struct UnixAttestor {
    proc_root: PathBuf,
    passwd: PathBuf,
    group: PathBuf,
    max_executable_bytes: u64,
    digests: Mutex<DigestCache>,
}

/// Executable digests by [`FileKey`], at most `capacity`, least recently used evicted
/// first. A changed file gets a new key, so entries never go stale; the ones evicted
/// are those of programs no caller ran lately (or files since replaced).
#[derive(Debug)]
struct DigestCache {
    capacity: usize,
    /// Digest and the `tick` of its last use.
    map: HashMap<FileKey, ([u8; 32], u64)>,
    tick: u64,
}

impl DigestCache {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            map: HashMap::new(),
            tick: 0,
        }
    }

    fn get(&mut self, key: &FileKey) -> Option<[u8; 32]> {
        self.tick = self.tick.wrapping_add(1);
        let tick = self.tick;
        self.map.get_mut(key).map(|(d, used)| {
            *used = tick;
            *d
        })
    }

    /// Adds `digest`, first evicting the least recently used entry if full. The scan
    /// is linear, but runs only after a file was hashed, which costs far more.
    fn insert(&mut self, key: FileKey, digest: [u8; 32]) {
        if self.map.len() >= self.capacity && !self.map.contains_key(&key) {
            let oldest = self.map.iter().min_by_key(|(_, (_, used))| *used);
            if let Some(oldest) = oldest.map(|(k, _)| *k) {
                self.map.remove(&oldest);
            }
        }
        self.tick = self.tick.wrapping_add(1);
        self.map.insert(key, (digest, self.tick));
    }
}

impl fmt::Debug for UnixAttestor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixAttestor")
            .field("proc_root", &self.proc_root)
            .field("passwd", &self.passwd)
            .field("group", &self.group)
            .field("max_executable_bytes", &self.max_executable_bytes)
            .finish_non_exhaustive()
    }
}

impl Default for UnixAttestor {
    fn default() -> Self {
        Self::new()
    }
}

impl UnixAttestor {
    /// An attestor reading `/proc`, `/etc/passwd` and `/etc/group`.
    pub fn new() -> Self {
        Self {
            proc_root: PathBuf::from(PROC),
            passwd: PathBuf::from("/etc/passwd"),
            group: PathBuf::from("/etc/group"),
            max_executable_bytes: DEFAULT_MAX_EXECUTABLE_BYTES,
            digests: Mutex::new(DigestCache::new(DIGEST_CACHE_CAPACITY)),
        }
    }

    /// Reads user names from `path` instead of `/etc/passwd`.
    pub fn passwd_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.passwd = path.into();
        self
    }

    /// Reads group names from `path` instead of `/etc/group`.
    pub fn group_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.group = path.into();
        self
    }

    /// Executables larger than `bytes` get no `unix:sha256` selector (default
    /// [`DEFAULT_MAX_EXECUTABLE_BYTES`]).
    pub fn max_executable_bytes(mut self, bytes: u64) -> Self {
        self.max_executable_bytes = bytes;
        self
    }

    /// How many executable digests are cached now.
    pub fn cached_digests(&self) -> usize {
        self.cache().map.len()
    }

    /// Reads `/proc` under `root` instead (tests fake processes there).
    #[cfg(test)]
    fn proc_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.proc_root = root.into();
        self
    }

    /// The SHA-256 of the file at `path` (opened by the caller's `/proc/PID/exe` link),
    /// from the cache when the file is unchanged. `None` if it is too large to hash.
    fn digest(&self, path: &Path, pid: i32) -> Result<Option<[u8; 32]>, AttestError> {
        let io_err = |source: io::Error| proc_error(pid, path, source);
        let mut file = File::open(path).map_err(io_err)?;
        let before = file_key(&file.metadata().map_err(io_err)?);
        if let Some(d) = self.cache().get(&before) {
            return Ok(Some(d));
        }
        let size = before.2;
        if size > self.max_executable_bytes {
            return Ok(None);
        }
        // Hashed as it is read: memory stays flat however many callers attest at once.
        let (digest, read) =
            aims_crypto::sha256_reader((&mut file).take(size.saturating_add(1))).map_err(io_err)?;
        let after = file_key(&file.metadata().map_err(io_err)?);
        if after != before || read != size {
            return Err(AttestError::ExecutableChanged(pid));
        }
        self.cache().insert(before, digest);
        Ok(Some(digest))
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, DigestCache> {
        self.digests.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `unix:path` and `unix:sha256` for `pid`, guarding against pid reuse: since
    /// `expected` (the start time when the connection was accepted), and during the
    /// reads.
    fn process_selectors(
        &self,
        pid: i32,
        expected: Option<u64>,
        out: &mut SelectorSet,
    ) -> Result<(), AttestError> {
        let dir = self.proc_root.join(pid.to_string());
        let started = start_time(&dir, pid)?;
        if expected.is_some_and(|e| e != started) {
            return Err(AttestError::PidReused(pid));
        }
        let exe = dir.join("exe");
        let (path, digest) = match std::fs::read_link(&exe) {
            Ok(path) => {
                let digest = match self.digest(&exe, pid) {
                    Ok(d) => d,
                    Err(AttestError::Io { source, .. })
                        if source.kind() == io::ErrorKind::PermissionDenied =>
                    {
                        None
                    }
                    Err(e) => return Err(e),
                };
                (Some(path), digest)
            }
            // Not ours to read (another user's process, hidepid): no path selectors.
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                tracing::debug!(pid, "cannot read /proc/PID/exe: permission denied");
                (None, None)
            }
            // A kernel thread, or the process is exiting: the second start-time read decides.
            Err(e) if is_gone(&e) => (None, None),
            Err(source) => return Err(AttestError::Io { path: exe, source }),
        };
        // Read between the two start-time reads, like the executable.
        let path = path.filter(|p| path_names_executable(p, &exe, pid));
        if start_time(&dir, pid)? != started {
            return Err(AttestError::PidReused(pid));
        }
        if let Some(path) = path {
            match path.to_str().filter(|p| p.starts_with('/')) {
                Some(p) => push(out, "path", p),
                None => tracing::debug!(pid, "executable path is not a selector value"),
            }
        }
        if let Some(d) = digest {
            push(out, "sha256", &hex(&d));
        }
        Ok(())
    }
}

impl Attestor for UnixAttestor {
    fn attest(&self, peer: &PeerInfo) -> Result<SelectorSet, AttestError> {
        let mut out = SelectorSet::new();
        push(&mut out, "uid", &peer.uid.to_string());
        push(&mut out, "gid", &peer.gid.to_string());
        if let Some(name) = lookup_name(&self.passwd, peer.uid)? {
            push(&mut out, "user", &name);
        }
        if let Some(name) = lookup_name(&self.group, peer.gid)? {
            push(&mut out, "group", &name);
        }
        if let Some(pid) = peer.pid.filter(|p| *p > 0) {
            self.process_selectors(pid, peer.started, &mut out)?;
        }
        Ok(out)
    }
}

/// Adds `unix:<kind>:<value>` unless it is not a valid selector (then it is left out).
fn push(out: &mut SelectorSet, kind: &str, value: &str) {
    match Selector::new(UNIX, &format!("{kind}:{value}")) {
        Ok(s) => {
            out.insert(s);
        }
        Err(_) => tracing::debug!(kind, "value is not a valid selector; left out"),
    }
}

/// Whether `path`, as this server resolves it, is the file the caller runs (`exe`, its
/// `/proc/PID/exe` link, which the kernel resolves to the file itself). The link's text
/// is a path in the *caller's* mount namespace: in a container it may name another file
/// here (any program placed at a trusted path), so it is a `unix:path` value only when
/// both name one file (device and inode). Callers that share the server's files (a
/// systemd unit with a private /tmp, the host's view of its own binaries) keep theirs.
fn path_names_executable(path: &Path, exe: &Path, pid: i32) -> bool {
    match (std::fs::metadata(path), std::fs::metadata(exe)) {
        (Ok(here), Ok(running)) if (here.dev(), here.ino()) == (running.dev(), running.ino()) => {
            true
        }
        (Ok(_), Ok(_)) => {
            tracing::debug!(
                pid,
                "the executable path names another file here: no unix:path selector"
            );
            false
        }
        (Err(e), _) | (_, Err(e)) => {
            tracing::debug!(pid, error = %e, "cannot compare the executable path: no unix:path selector");
            false
        }
    }
}

fn file_key(m: &std::fs::Metadata) -> FileKey {
    (
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
    )
}

fn is_gone(e: &io::Error) -> bool {
    // ESRCH (3) is what /proc answers for a process that exited after its directory
    // was opened.
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(3)
}

fn proc_error(pid: i32, path: &Path, source: io::Error) -> AttestError {
    if is_gone(&source) {
        AttestError::ProcessGone(pid)
    } else {
        AttestError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Field 22 (`starttime`, clock ticks since boot) of `/proc/PID/stat`.
fn start_time(dir: &Path, pid: i32) -> Result<u64, AttestError> {
    let path = dir.join("stat");
    let stat = std::fs::read_to_string(&path).map_err(|e| proc_error(pid, &path, e))?;
    parse_start_time(&stat).ok_or(AttestError::Malformed(path))
}

/// `comm` (field 2) is in parentheses and may itself hold spaces and parentheses, so the
/// fields are counted after the last `)`: field 3 is the first one there.
fn parse_start_time(stat: &str) -> Option<u64> {
    let close = stat.rfind(')')?;
    stat.get(close + 1..)?
        .split_ascii_whitespace()
        .nth(22 - 3)?
        .parse()
        .ok()
}

/// The name on the first line of a `/etc/passwd`- or `/etc/group`-format file whose
/// third field is `id`. A missing file means no names.
fn lookup_name(path: &Path, id: u32) -> Result<Option<String>, AttestError> {
    let content = match std::fs::read_to_string(path) {
        Ok(c) => c,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(AttestError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    Ok(find_name(&content, id))
}

fn find_name(content: &str, id: u32) -> Option<String> {
    content
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let _password = fields.next()?;
            let line_id: u32 = fields.next()?.parse().ok()?;
            (line_id == id && !name.is_empty()).then(|| name.to_owned())
        })
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn start_time_survives_odd_process_names() {
        let fields: Vec<String> = (3..=30).map(|n| n.to_string()).collect();
        let stat = format!("1234 (a b) (c)) {}\n", fields.join(" "));
        assert_eq!(parse_start_time(&stat), Some(22));
        assert_eq!(parse_start_time("1234 (short) R 1 2"), None);
        assert_eq!(parse_start_time("no parenthesis"), None);
    }

    #[test]
    fn names_from_passwd_and_group_lines() {
        let passwd = "# comment\nroot:x:0:0:root:/root:/bin/sh\n\
                      broken\nbad:x:notanumber:0::/:/bin/false\n\
                      alice:x:1000:1000::/home/alice:/bin/sh\nalias:x:1000:1000::/:/bin/sh\n";
        assert_eq!(find_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(find_name(passwd, 1000).as_deref(), Some("alice"));
        assert_eq!(find_name(passwd, 7), None);
        let group = "wheel:x:10:alice,bob\n:x:11:\n";
        assert_eq!(find_name(group, 10).as_deref(), Some("wheel"));
        assert_eq!(find_name(group, 11), None);
    }

    #[test]
    fn attests_this_process() {
        let dir = tempfile::tempdir().unwrap();
        let passwd = dir.path().join("passwd");
        let group = dir.path().join("group");
        std::fs::write(&passwd, "me:x:4242:4243::/:/bin/sh\n").unwrap();
        std::fs::write(&group, "us:x:4243:\n").unwrap();
        let a = UnixAttestor::new().passwd_file(&passwd).group_file(&group);
        let peer = PeerInfo {
            pid: Some(i32::try_from(std::process::id()).unwrap()),
            uid: 4242,
            gid: 4243,
            started: None,
        };
        let set = a.attest(&peer).unwrap();
        let strs: Vec<&str> = set.iter().map(Selector::as_str).collect();
        assert!(strs.contains(&"unix:uid:4242"), "{strs:?}");
        assert!(strs.contains(&"unix:gid:4243"));
        assert!(strs.contains(&"unix:user:me"));
        assert!(strs.contains(&"unix:group:us"));
        let exe = std::env::current_exe().unwrap();
        let want_path = format!("unix:path:{}", exe.display());
        assert!(strs.contains(&want_path.as_str()), "{strs:?}");
        let want_hash = format!(
            "unix:sha256:{}",
            hex(&aims_crypto::sha256(std::fs::read(&exe).unwrap()))
        );
        assert!(strs.contains(&want_hash.as_str()));
        assert_eq!(a.cached_digests(), 1);
        // The second attestation hits the cache.
        assert_eq!(a.attest(&peer).unwrap(), set);
        assert_eq!(a.cached_digests(), 1);
        // With the start time read at accept: the same process passes; a process that
        // started at another time holds the pid now, and is refused.
        let pid = i32::try_from(std::process::id()).unwrap();
        let started = process_start_time(pid).unwrap();
        let same = PeerInfo {
            started: Some(started),
            ..peer
        };
        assert_eq!(a.attest(&same).unwrap(), set);
        let reused = PeerInfo {
            started: Some(started + 1),
            ..peer
        };
        assert!(matches!(
            a.attest(&reused).unwrap_err(),
            AttestError::PidReused(p) if p == pid
        ));
    }

    #[test]
    fn large_executables_get_no_digest() {
        let a = UnixAttestor::new().max_executable_bytes(1);
        let peer = PeerInfo {
            pid: Some(i32::try_from(std::process::id()).unwrap()),
            uid: 1,
            gid: 1,
            started: None,
        };
        let set = a.attest(&peer).unwrap();
        assert!(set.iter().all(|s| !s.value().starts_with("sha256:")));
        assert!(set.iter().any(|s| s.value().starts_with("path:")));
    }

    #[test]
    fn missing_process_is_gone_and_no_pid_means_ids_only() {
        let a = UnixAttestor::new()
            .passwd_file("/nonexistent")
            .group_file("/nonexistent");
        // pid_max is at most 2^22 on Linux.
        let err = a
            .attest(&PeerInfo {
                pid: Some(i32::MAX),
                uid: 1,
                gid: 2,
                started: None,
            })
            .unwrap_err();
        assert!(matches!(err, AttestError::ProcessGone(_)), "{err}");
        assert!(err.is_transient());
        let set = a
            .attest(&PeerInfo {
                pid: None,
                uid: 1,
                gid: 2,
                started: None,
            })
            .unwrap();
        let strs: Vec<&str> = set.iter().map(Selector::as_str).collect();
        assert_eq!(strs, ["unix:gid:2", "unix:uid:1"]);
    }

    /// A fake `/proc` with this server (`self`) and process 42 running `bin/prog`
    /// (content `program`). Returns the directory and the executable's path.
    fn fake_proc() -> (tempfile::TempDir, PathBuf) {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let prog = bin.join("prog");
        std::fs::write(&prog, b"program").unwrap();
        let p42 = dir.path().join("proc").join("42");
        std::fs::create_dir_all(&p42).unwrap();
        let fields: Vec<String> = (3..=30).map(|n| n.to_string()).collect();
        std::fs::write(
            p42.join("stat"),
            format!("42 (prog) {}\n", fields.join(" ")),
        )
        .unwrap();
        symlink(&prog, p42.join("exe")).unwrap();
        (dir, prog)
    }

    #[test]
    fn path_and_digest_of_the_executable() {
        let (dir, prog) = fake_proc();
        let a = UnixAttestor::new()
            .proc_root(dir.path().join("proc"))
            .passwd_file("/nonexistent")
            .group_file("/nonexistent");
        let peer = PeerInfo {
            pid: Some(42),
            uid: 1,
            gid: 2,
            started: Some(22),
        };
        let strs: Vec<String> = a
            .attest(&peer)
            .unwrap()
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect();
        let digest = format!("unix:sha256:{}", hex(&aims_crypto::sha256(b"program")));
        assert!(strs.contains(&digest), "{strs:?}");
        assert!(
            strs.contains(&format!("unix:path:{}", prog.display())),
            "{strs:?}"
        );
    }

    /// The path from the caller's `exe` link counts only when it names, here, the very
    /// file the caller runs: a copy with the same bytes at that path (a container's
    /// program at a trusted host path) does not, nor does a path that is not here.
    #[test]
    fn a_path_must_name_the_running_file_here() {
        let dir = tempfile::tempdir().unwrap();
        let running = dir.path().join("running");
        let copy = dir.path().join("copy");
        std::fs::write(&running, b"program").unwrap();
        std::fs::write(&copy, b"program").unwrap();
        let exe = dir.path().join("exe");
        std::os::unix::fs::symlink(&running, &exe).unwrap();
        assert!(path_names_executable(&running, &exe, 42));
        assert!(!path_names_executable(&copy, &exe, 42));
        assert!(!path_names_executable(&dir.path().join("gone"), &exe, 42));
    }

    #[test]
    fn full_digest_cache_evicts_the_least_recently_used_only() {
        let key = |n: u64| -> FileKey { (1, n, 0, 0, 0, 0, 0) };
        let mut c = DigestCache::new(3);
        for n in 1..=3 {
            c.insert(key(n), [n as u8; 32]);
        }
        // 1 was used since; 2 is now the least recently used.
        assert_eq!(c.get(&key(1)), Some([1; 32]));
        c.insert(key(4), [4; 32]);
        assert_eq!(c.map.len(), 3);
        assert_eq!(c.get(&key(2)), None);
        assert_eq!(c.get(&key(1)), Some([1; 32]));
        assert_eq!(c.get(&key(3)), Some([3; 32]));
        assert_eq!(c.get(&key(4)), Some([4; 32]));
        // Replacing an entry that is there evicts nothing.
        c.insert(key(4), [5; 32]);
        assert_eq!(c.map.len(), 3);
        assert_eq!(c.get(&key(1)), Some([1; 32]));
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
    }
}
