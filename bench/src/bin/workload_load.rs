//! Load harness for the SPIFFE Workload API of a real `aims serve` process.
//!
//! The harness starts the `aims` binary as a child process (its own PID, so its RSS is
//! the server's alone) on a fresh temporary data directory, registers entries through
//! the admin socket, and drives the Workload API over its Unix socket with the generated
//! tonic client. Nothing leaves the machine: Unix sockets, and the server's HTTP listener
//! on `127.0.0.1:0`. Every loop is bounded by a count and a deadline.
//!
//! ```sh
//! cargo build --release -p aims -p aims-bench
//! target/release/workload_load throughput --entries 1000 --entries 10000
//! target/release/workload_load rotate --entries 10000
//! ```
//!
//! # Workloads
//!
//! Entry `i` is the workload "uid `BASE + i` running this harness binary": selectors
//! `unix:uid:<BASE+i>` and `unix:sha256:<digest of this executable>`. With
//! `--identities distinct` (the default; needs root) workload `k` connects from a thread
//! whose effective uid is `BASE + k`, so the server's `SO_PEERCRED` attestation sees K
//! different workloads, each matching exactly one entry among N. With
//! `--identities same` every connection is this process's own uid and one entry (entry 0)
//! matches it.
//!
//! See `bench/README.md` for the definitions of every figure.
#![forbid(unsafe_code)]

use std::io::{self, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aims_core::{Selector, SpiffeId};
use aims_server::api::EntrySpec;
use aims_server::client::AdminClient;
use aims_workload::SECURITY_HEADER;
use aims_workload::pb;
use aims_workload::pb::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use hyper_util::rt::TokioIo;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

const TRUST_DOMAIN: &str = "bench.test";
const AUDIENCE: &str = "spiffe://bench.test/api";
/// Uid of workload 0 (uids `BASE..BASE+N` have no account; that is fine for `unix:uid`).
const BASE_UID: u32 = 200_000;
/// Largest message the harness accepts (a stream holding thousands of SVIDs).
const MAX_MESSAGE: usize = 256 << 20;

#[derive(Debug, Parser)]
#[command(about = "Workload API load harness against a real `aims serve` child process")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// X509-SVIDs/s and JWT-SVIDs/s with N entries, and the server's RSS.
    Throughput(ThroughputArgs),
    /// Time for the server to re-issue the SVIDs of N streams on a CA rotation, with a
    /// concurrent fetcher measuring its latency.
    Rotate(RotateArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Identities {
    /// One workload identity (effective uid) per connection; needs root.
    Distinct,
    /// Every connection is this process's own uid.
    Same,
}

#[derive(Debug, Args)]
struct Common {
    /// The `aims` binary (default: `aims` next to this executable).
    #[arg(long)]
    aims: Option<PathBuf>,
    /// How connections are attested.
    #[arg(long, value_enum, default_value_t = Identities::Distinct)]
    identities: Identities,
    /// Parallel admin API calls while registering entries.
    #[arg(long, default_value_t = 4)]
    register_parallel: usize,
    /// Write every figure as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ThroughputArgs {
    #[command(flatten)]
    common: Common,
    /// Registered entries (repeat for several runs, each on a fresh server).
    #[arg(long, default_values_t = vec![1000usize, 10000])]
    entries: Vec<usize>,
    /// Concurrent client connections (workloads).
    #[arg(long, default_value_t = 8)]
    conns: usize,
    /// Calls per repetition (spread over the connections).
    #[arg(long, default_value_t = 4000)]
    calls: usize,
    /// Repetitions of each measurement; the median is reported.
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Upper bound of one repetition, seconds.
    #[arg(long, default_value_t = 120)]
    rep_timeout: u64,
}

#[derive(Debug, Args)]
struct RotateArgs {
    #[command(flatten)]
    common: Common,
    /// Registered entries, and streams held open (one per entry with distinct
    /// identities; all on entry 0 with `--identities same`).
    #[arg(long, default_value_t = 10_000)]
    entries: usize,
    /// Connections carrying the streams with `--identities same` (distinct identities
    /// need one connection per stream).
    #[arg(long, default_value_t = 100)]
    same_conns: usize,
    /// The server's CA lifetime, seconds: the successor CA is published at half of it
    /// (every stream re-issues) and takes over at five sixths (every stream re-issues).
    #[arg(long, default_value_t = 120)]
    ca_ttl: u64,
    /// Streams opened in parallel during setup.
    #[arg(long, default_value_t = 16)]
    open_parallel: usize,
    /// Pause between two calls of the concurrent fetcher, milliseconds.
    #[arg(long, default_value_t = 20)]
    fetch_every_ms: u64,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    match cli.cmd {
        Cmd::Throughput(a) => rt.block_on(throughput(a)),
        Cmd::Rotate(a) => rt.block_on(rotate(a)),
    }
}

// --- the server process ----------------------------------------------------------------

/// A running `aims serve` child and its temporary directory.
struct ServerProc {
    child: Child,
    dir: tempfile::TempDir,
    admin: AdminClient,
    workload: PathBuf,
}

struct ServerOptions {
    ca_ttl: u64,
    refresh_hint: u64,
    poll_interval: u64,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            ca_ttl: 365 * 86_400,
            refresh_hint: 300,
            poll_interval: 5,
        }
    }
}

fn aims_binary(c: &Common) -> Result<PathBuf> {
    if let Some(p) = &c.aims {
        return Ok(p.clone());
    }
    let exe = std::env::current_exe().context("current executable")?;
    let p = exe
        .parent()
        .context("executable has no directory")?
        .join("aims");
    if !p.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p aims` or pass --aims",
            p.display()
        );
    }
    Ok(p)
}

impl ServerProc {
    async fn start(aims: &Path, opts: &ServerOptions) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("aims-load-")
            .tempdir()
            .context("temporary directory")?;
        // Workloads of other uids must reach the socket: the directory is 0755 and the
        // socket lives outside the (0700) data directory.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        let data = dir.path().join("data");
        let workload = dir.path().join("workload.sock");
        let admin_sock = dir.path().join("admin.sock");
        let config = format!(
            "version = 1\n\
             [server]\ntrust_domain = \"{TRUST_DOMAIN}\"\ndata_dir = \"{}\"\n\
             [storage]\npoll_interval = {}\n\
             [workload_api]\nsocket_path = \"{}\"\n\
             [admin]\nsocket_path = \"{}\"\n\
             [http]\nlisten = \"127.0.0.1:0\"\n\
             [ca]\nttl = {}\n\
             [bundle]\nrefresh_hint = {}\n\
             [log]\nlevel = \"warn\"\n",
            data.display(),
            opts.poll_interval,
            workload.display(),
            admin_sock.display(),
            opts.ca_ttl,
            opts.refresh_hint,
        );
        let config_path = dir.path().join("aims.toml");
        std::fs::write(&config_path, config)?;
        let log = std::fs::File::create(dir.path().join("server.log"))?;
        let child = Command::new(aims)
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {}", aims.display()))?;
        let mut s = Self {
            child,
            admin: AdminClient::new(&admin_sock),
            workload,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = s.child.try_wait()? {
                bail!(
                    "the server exited ({status}); log: {}",
                    std::fs::read_to_string(s.dir.path().join("server.log")).unwrap_or_default()
                );
            }
            if s.workload.exists() && s.admin.keys().await.is_ok() {
                return Ok(s);
            }
            if Instant::now() > deadline {
                s.stop().await;
                bail!("the server did not become ready within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn memory(&self) -> Memory {
        Memory::of(self.pid())
    }

    /// SIGTERM, then SIGKILL after 30 s.
    async fn stop(&mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `VmRSS` and `VmHWM` (peak) of a process, in MiB.
#[derive(Debug, Clone, Copy, Default)]
struct Memory {
    rss_mib: f64,
    hwm_mib: f64,
}

impl Memory {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({ "rss_mib": self.rss_mib, "hwm_mib": self.hwm_mib })
    }

    fn of(pid: u32) -> Self {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| -> f64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|kb| kb.parse::<f64>().ok())
                .map_or(f64::NAN, |kb| kb / 1024.0)
        };
        Self {
            rss_mib: field("VmRSS:"),
            hwm_mib: field("VmHWM:"),
        }
    }
}

// --- entries -----------------------------------------------------------------------------

/// `unix:sha256:<digest of this executable>`.
fn exe_selector() -> Result<Selector> {
    let exe = std::fs::read("/proc/self/exe").context("read own executable")?;
    let hex: String = aims_crypto::sha256(&exe)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(Selector::parse(&format!("unix:sha256:{hex}"))?)
}

fn own_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// The uid workload `k` connects as (`None`: this process's own).
fn workload_uid(identities: Identities, k: usize) -> Option<u32> {
    match identities {
        Identities::Distinct => Some(BASE_UID + u32::try_from(k).unwrap_or(u32::MAX - BASE_UID)),
        Identities::Same => None,
    }
}

fn entry_spec(i: usize, identities: Identities, exe: &Selector) -> Result<EntrySpec> {
    let uid = match (identities, i) {
        (Identities::Same, 0) => own_uid(),
        _ => BASE_UID + u32::try_from(i)?,
    };
    Ok(EntrySpec {
        spiffe_id: SpiffeId::parse(&format!("spiffe://{TRUST_DOMAIN}/workload/{i}"))?,
        selectors: vec![Selector::parse(&format!("unix:uid:{uid}"))?, exe.clone()],
        x509_ttl: 3600,
        jwt_ttl: 300,
        wit_ttl: 3600,
        dns_names: vec![],
        hint: None,
        federates_with: vec![],
        parent_id: None,
        admin: false,
        revision: None,
    })
}

/// Registers entries `0..n` through the admin API; returns the elapsed time.
async fn register(
    admin: &AdminClient,
    n: usize,
    identities: Identities,
    parallel: usize,
) -> Result<Duration> {
    let exe = Arc::new(exe_selector()?);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..parallel.max(1) {
        let (admin, exe, next) = (admin.clone(), Arc::clone(&exe), Arc::clone(&next));
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, anyhow::Error>(());
                }
                let spec = entry_spec(i, identities, &exe)?;
                admin
                    .create_entry(&spec)
                    .await
                    .with_context(|| format!("create entry {i}"))?;
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(started.elapsed())
}

// --- clients -----------------------------------------------------------------------------

/// Adds `workload.spiffe.io: true` to every call.
#[derive(Debug, Clone, Copy)]
struct Header;

impl tonic::service::Interceptor for Header {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut()
            .insert(SECURITY_HEADER, MetadataValue::from_static("true"));
        Ok(req)
    }
}

type Client = SpiffeWorkloadApiClient<InterceptedService<Channel, Header>>;

/// Connects to `path` from a fresh thread whose effective uid is `uid` (Linux keeps
/// credentials per thread; `SO_PEERCRED` records the connecting thread's).
fn connect_as(path: &Path, uid: Option<u32>) -> io::Result<std::os::unix::net::UnixStream> {
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        if let Some(uid) = uid {
            rustix::thread::set_thread_res_uid(
                None::<rustix::process::Uid>,
                Some(rustix::process::Uid::from_raw(uid)),
                None::<rustix::process::Uid>,
            )?;
        }
        std::os::unix::net::UnixStream::connect(path)
    })
    .join()
    .map_err(|_| io::Error::other("connect thread panicked"))?
}

/// A Workload API client on its own connection, attested as `uid`.
async fn client(socket: &Path, uid: Option<u32>) -> Result<Client> {
    let path = socket.to_path_buf();
    let channel = Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                let std = tokio::task::spawn_blocking(move || connect_as(&path, uid))
                    .await
                    .map_err(io::Error::other)??;
                std.set_nonblocking(true)?;
                Ok::<_, io::Error>(TokioIo::new(tokio::net::UnixStream::from_std(std)?))
            }
        }))
        .await
        .context("connect to the Workload API")?;
    Ok(SpiffeWorkloadApiClient::with_interceptor(channel, Header)
        .max_decoding_message_size(MAX_MESSAGE))
}

/// One `FetchX509SVID` call: the first message; the stream is then dropped (cancelled).
async fn fetch_x509(c: &mut Client) -> Result<usize> {
    let mut s = c.fetch_x509svid(pb::X509svidRequest {}).await?.into_inner();
    let msg = s.message().await?.context("stream ended")?;
    Ok(msg.svids.len())
}

/// One `FetchJWTSVID` call.
async fn fetch_jwt(c: &mut Client) -> Result<usize> {
    let r = c
        .fetch_jwtsvid(pb::JwtsvidRequest {
            audience: vec![AUDIENCE.to_owned()],
            spiffe_id: String::new(),
        })
        .await?;
    Ok(r.into_inner().svids.len())
}

// --- statistics --------------------------------------------------------------------------

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    percentile(&s, 50.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

// --- throughput --------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    X509,
    Jwt,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::X509 => "x509",
            Kind::Jwt => "jwt",
        }
    }
}

struct Rep {
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
    /// Server CPU time (user + system) per SVID, microseconds.
    server_cpu_us: f64,
    /// The kernel's (system time) share of the server's CPU time.
    server_sys_share: f64,
    /// This harness's CPU time per SVID, microseconds.
    client_cpu_us: f64,
}

/// User + system CPU time of a process so far, seconds (`/proc/PID/stat` fields 14, 15).
fn cpu_seconds(pid: &str) -> f64 {
    let (user, system) = cpu_split(pid);
    user + system
}

/// (user, system) CPU time of a process so far, seconds.
fn cpu_split(pid: &str) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<u64> = stat
        .rfind(')')
        .and_then(|i| stat.get(i + 1..))
        .map(|rest| {
            rest.split_ascii_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|v| v.parse::<u64>().ok())
                .collect()
        })
        .unwrap_or_default();
    let hz = rustix::param::clock_ticks_per_second() as f64;
    let at = |i: usize| fields.get(i).copied().unwrap_or(0) as f64 / hz;
    (at(0), at(1))
}

/// `calls` calls of `kind` spread over `clients`, all started at once; SVIDs per second
/// of wall time and per-call latency percentiles.
async fn run_rep(
    clients: &[Client],
    kind: Kind,
    calls: usize,
    timeout: Duration,
    server_pid: u32,
) -> Result<Rep> {
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + timeout;
    let server_pid = server_pid.to_string();
    let (server_cpu0, client_cpu0) = (cpu_split(&server_pid), cpu_seconds("self"));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in clients {
        let (mut c, next) = (c.clone(), Arc::clone(&next));
        tasks.spawn(async move {
            let mut lat = Vec::new();
            let (mut svids, mut errors) = (0usize, 0usize);
            while next.fetch_add(1, Ordering::Relaxed) < calls && Instant::now() < deadline {
                let t = Instant::now();
                let r = match kind {
                    Kind::X509 => fetch_x509(&mut c).await,
                    Kind::Jwt => fetch_jwt(&mut c).await,
                };
                match r {
                    Ok(n) => {
                        svids += n;
                        lat.push(ms(t.elapsed()));
                    }
                    Err(e) => {
                        if errors == 0 {
                            eprintln!("{} call failed: {e:#}", kind.name());
                        }
                        errors += 1;
                    }
                }
            }
            (lat, svids, errors)
        });
    }
    let (mut lat, mut svids, mut errors) = (Vec::new(), 0, 0);
    while let Some(r) = tasks.join_next().await {
        let (l, s, e) = r?;
        lat.extend(l);
        svids += s;
        errors += e;
    }
    let wall = started.elapsed();
    let server_now = cpu_split(&server_pid);
    let server_sys = server_now.1 - server_cpu0.1;
    let server_cpu = server_now.0 + server_now.1 - server_cpu0.0 - server_cpu0.1;
    let client_cpu = cpu_seconds("self") - client_cpu0;
    lat.sort_by(f64::total_cmp);
    let per_svid = |cpu: f64| cpu * 1e6 / svids.max(1) as f64;
    Ok(Rep {
        per_sec: svids as f64 / wall.as_secs_f64(),
        p50_ms: percentile(&lat, 50.0),
        p99_ms: percentile(&lat, 99.0),
        errors,
        server_cpu_us: per_svid(server_cpu),
        server_sys_share: if server_cpu > 0.0 {
            server_sys / server_cpu
        } else {
            f64::NAN
        },
        client_cpu_us: per_svid(client_cpu),
    })
}

async fn throughput(a: ThroughputArgs) -> Result<()> {
    let aims = aims_binary(&a.common)?;
    check_identities(a.common.identities)?;
    let mut report = Vec::new();
    for &n in &a.entries {
        if n < a.conns && a.common.identities == Identities::Distinct {
            bail!("--entries {n} is smaller than --conns {}", a.conns);
        }
        let mut server = ServerProc::start(&aims, &ServerOptions::default()).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let idle = server.memory();
        println!(
            "[entries={n}] server pid {} idle: RSS {:.1} MiB (peak {:.1})",
            server.pid(),
            idle.rss_mib,
            idle.hwm_mib
        );
        let reg = register(
            &server.admin,
            n,
            a.common.identities,
            a.common.register_parallel,
        )
        .await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let with_entries = server.memory();
        println!(
            "[entries={n}] registered in {:.1} s ({:.0} entries/s); RSS {:.1} MiB (peak {:.1})",
            reg.as_secs_f64(),
            n as f64 / reg.as_secs_f64(),
            with_entries.rss_mib,
            with_entries.hwm_mib
        );
        let mut clients = Vec::with_capacity(a.conns);
        for k in 0..a.conns {
            let mut c = client(&server.workload, workload_uid(a.common.identities, k)).await?;
            // Warm-up, and a check that the workload gets exactly its entry.
            let got = fetch_x509(&mut c).await?;
            if got != 1 {
                bail!("workload {k} received {got} X509-SVIDs, expected 1");
            }
            fetch_jwt(&mut c).await?;
            clients.push(c);
        }
        let mut figures = serde_json::Map::new();
        for kind in [Kind::X509, Kind::Jwt] {
            let mut reps = Vec::new();
            for r in 0..a.reps {
                let rep = run_rep(
                    &clients,
                    kind,
                    a.calls,
                    Duration::from_secs(a.rep_timeout),
                    server.pid(),
                )
                .await?;
                println!(
                    "[entries={n}] {} rep {}: {:.0} SVIDs/s  p50 {:.2} ms  p99 {:.2} ms  errors {}  CPU per SVID: server {:.0} us, harness {:.0} us",
                    kind.name(),
                    r + 1,
                    rep.per_sec,
                    rep.p50_ms,
                    rep.p99_ms,
                    rep.errors,
                    rep.server_cpu_us,
                    rep.client_cpu_us
                );
                reps.push(rep);
            }
            let rates: Vec<f64> = reps.iter().map(|r| r.per_sec).collect();
            let (lo, hi) = rates
                .iter()
                .fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(*v), h.max(*v)));
            let med = median(&rates);
            let server_cpu = median(&reps.iter().map(|r| r.server_cpu_us).collect::<Vec<_>>());
            let client_cpu = median(&reps.iter().map(|r| r.client_cpu_us).collect::<Vec<_>>());
            let sys_share = median(&reps.iter().map(|r| r.server_sys_share).collect::<Vec<_>>());
            let mem = server.memory();
            println!(
                "[entries={n}] {} median {:.0} SVIDs/s (min {:.0}, max {:.0}; {} reps of {} calls on {} connections), p50 {:.2} ms, p99 {:.2} ms; RSS {:.1} MiB (peak {:.1})",
                kind.name(),
                med,
                lo,
                hi,
                a.reps,
                a.calls,
                a.conns,
                median(&reps.iter().map(|r| r.p50_ms).collect::<Vec<_>>()),
                median(&reps.iter().map(|r| r.p99_ms).collect::<Vec<_>>()),
                mem.rss_mib,
                mem.hwm_mib
            );
            println!(
                "[entries={n}] {} server CPU {:.0} us per SVID ({:.0}% in the kernel; harness {:.0} us): the server alone on 2 cores would sustain ~{:.0} SVIDs/s",
                kind.name(),
                server_cpu,
                sys_share * 100.0,
                client_cpu,
                2e6 / server_cpu
            );
            figures.insert(
                kind.name().to_owned(),
                serde_json::json!({
                    "per_sec": rates,
                    "median_per_sec": med,
                    "p50_ms": reps.iter().map(|r| r.p50_ms).collect::<Vec<_>>(),
                    "p99_ms": reps.iter().map(|r| r.p99_ms).collect::<Vec<_>>(),
                    "errors": reps.iter().map(|r| r.errors).sum::<usize>(),
                    "server_cpu_us_per_svid": reps.iter().map(|r| r.server_cpu_us).collect::<Vec<_>>(),
                    "harness_cpu_us_per_svid": reps.iter().map(|r| r.client_cpu_us).collect::<Vec<_>>(),
                    "server_system_share": reps.iter().map(|r| r.server_sys_share).collect::<Vec<_>>(),
                    "memory_after": mem.json(),
                }),
            );
        }
        drop(clients);
        server.stop().await;
        report.push(serde_json::json!({
            "entries": n,
            "conns": a.conns,
            "calls": a.calls,
            "reps": a.reps,
            "identities": format!("{:?}", a.common.identities),
            "register_secs": reg.as_secs_f64(),
            "memory_idle": idle.json(),
            "memory_with_entries": with_entries.json(),
            "figures": figures,
        }));
    }
    write_json(&a.common, &serde_json::Value::Array(report))
}

fn check_identities(identities: Identities) -> Result<()> {
    if identities == Identities::Distinct && own_uid() != 0 {
        bail!(
            "--identities distinct needs root (per-thread effective uids); use --identities same"
        );
    }
    Ok(())
}

fn write_json(c: &Common, v: &serde_json::Value) -> Result<()> {
    if let Some(path) = &c.json {
        let mut f = std::fs::File::create(path)?;
        serde_json::to_writer_pretty(&mut f, v)?;
        f.write_all(b"\n")?;
        println!("figures written to {}", path.display());
    }
    Ok(())
}

// --- rotation ----------------------------------------------------------------------------

/// Per stream, (arrival, hash of the X.509 authorities carried) of each update.
type Updates = Vec<Vec<(Instant, u64)>>;

/// One call of the concurrent fetcher.
struct Sample {
    at: Instant,
    kind: Kind,
    latency_ms: f64,
    ok: bool,
}

impl Sample {
    fn end(&self) -> Instant {
        self.at + Duration::from_secs_f64(self.latency_ms / 1000.0)
    }

    /// Whether the call was in flight at some time in `[from, to]`.
    fn overlaps(&self, from: Instant, to: Instant) -> bool {
        self.at <= to && self.end() >= from
    }
}

async fn rotate(a: RotateArgs) -> Result<()> {
    let aims = aims_binary(&a.common)?;
    check_identities(a.common.identities)?;
    let n = a.entries;
    let opts = ServerOptions {
        ca_ttl: a.ca_ttl,
        refresh_hint: 5,
        poll_interval: 1,
    };
    let mut server = ServerProc::start(&aims, &opts).await?;
    let t_start = Instant::now();
    // The key schedule counts from the CA's notBefore, which is backdated.
    let backdate = aims_pki::ca::BACKDATE_SECS.unsigned_abs();
    let stage_at = Duration::from_secs((a.ca_ttl / 2).saturating_sub(backdate));
    let promote_at = Duration::from_secs(
        (a.ca_ttl / 6 * 5)
            .max(a.ca_ttl / 2 + 5)
            .saturating_sub(backdate),
    );
    let hard_deadline = t_start + promote_at + Duration::from_secs(60);
    let idle = server.memory();
    println!(
        "[rotate] server pid {}; CA ttl {} s: successor published at ~{} s, hand-over at ~{} s",
        server.pid(),
        a.ca_ttl,
        stage_at.as_secs(),
        promote_at.as_secs()
    );
    let reg = register(
        &server.admin,
        n,
        a.common.identities,
        a.common.register_parallel,
    )
    .await?;
    println!(
        "[rotate] {n} entries registered in {:.1} s; RSS {:.1} MiB",
        reg.as_secs_f64(),
        server.memory().rss_mib
    );

    // The streams: one per entry (distinct identities), or n on entry 0 over a few
    // connections (same identity).
    let same_clients = if a.common.identities == Identities::Same {
        let mut v = Vec::new();
        for _ in 0..a.same_conns.max(1) {
            v.push(client(&server.workload, None).await?);
        }
        Arc::new(v)
    } else {
        Arc::new(Vec::new())
    };
    let opened = Instant::now();
    // Per stream: (arrival, hash of the X.509 authorities it carries) of every message
    // after the first.
    let updates: Arc<std::sync::Mutex<Updates>> =
        Arc::new(std::sync::Mutex::new(vec![Vec::new(); n]));
    let next = Arc::new(AtomicUsize::new(0));
    let mut openers = tokio::task::JoinSet::new();
    let mut holders = tokio::task::JoinSet::new();
    let (held_tx, mut held_rx) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..a.open_parallel.max(1) {
        let (next, socket, same, held_tx) = (
            Arc::clone(&next),
            server.workload.clone(),
            Arc::clone(&same_clients),
            held_tx.clone(),
        );
        let identities = a.common.identities;
        openers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, anyhow::Error>(());
                }
                let mut c = if same.is_empty() {
                    client(&socket, workload_uid(identities, i)).await?
                } else {
                    same[i % same.len()].clone()
                };
                let mut s = c
                    .fetch_x509svid(pb::X509svidRequest {})
                    .await
                    .with_context(|| format!("open stream {i}"))?
                    .into_inner();
                let first = s.message().await?.context("stream ended")?;
                if first.svids.len() != 1 {
                    bail!("stream {i} holds {} SVIDs, expected 1", first.svids.len());
                }
                let _ = held_tx.send((i, c, s, hash(&first.svids[0].bundle)));
            }
        });
    }
    drop(held_tx);
    while let Some(r) = openers.join_next().await {
        r??;
    }
    let mut initial_bundle = None;
    while let Some((i, c, mut s, h)) = held_rx.recv().await {
        initial_bundle.get_or_insert(h);
        let updates = Arc::clone(&updates);
        holders.spawn(async move {
            let _keep = c;
            while let Ok(Ok(Some(m))) =
                tokio::time::timeout_at(hard_deadline.into(), s.message()).await
            {
                let h = m.svids.first().map_or(0, |s| hash(&s.bundle));
                if let Ok(mut u) = updates.lock() {
                    u[i].push((Instant::now(), h));
                }
            }
        });
    }
    let initial_bundle = initial_bundle.unwrap_or(0);
    let open_time = opened.elapsed();
    let with_streams = server.memory();
    println!(
        "[rotate] {n} streams open after {:.1} s ({:.1} s since start); RSS {:.1} MiB (peak {:.1})",
        open_time.as_secs_f64(),
        t_start.elapsed().as_secs_f64(),
        with_streams.rss_mib,
        with_streams.hwm_mib
    );
    if t_start.elapsed() + Duration::from_secs(5) > stage_at {
        bail!("setup took longer than half the CA lifetime; raise --ca-ttl");
    }

    // The bundle watcher: sees each CA schedule step.
    let mut watcher = client(&server.workload, None).await?;
    let mut bundles = watcher
        .fetch_x509_bundles(pb::X509BundlesRequest {})
        .await?
        .into_inner();
    let _ = bundles.message().await?;
    let own_key = format!("spiffe://{TRUST_DOMAIN}");
    let bundle_changes = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Ok(Ok(Some(m))) =
            tokio::time::timeout_at(hard_deadline.into(), bundles.message()).await
        {
            seen.push((
                Instant::now(),
                m.bundles.get(&own_key).map_or(0, |b| hash(b)),
            ));
            if seen.len() == 2 {
                break;
            }
        }
        seen
    });

    // The concurrent fetcher: another workload (entry 0's identity) on its own
    // connection, fetching an X509-SVID and a JWT-SVID every few milliseconds.
    let mut fetcher = client(&server.workload, workload_uid(a.common.identities, 0)).await?;
    let fetch_every = Duration::from_millis(a.fetch_every_ms);
    let fetcher_stop = Arc::new(tokio::sync::Notify::new());
    let fetcher_task = {
        let stop = Arc::clone(&fetcher_stop);
        tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                for kind in [Kind::X509, Kind::Jwt] {
                    let at = Instant::now();
                    let r = tokio::time::timeout(Duration::from_secs(30), async {
                        match kind {
                            Kind::X509 => fetch_x509(&mut fetcher).await,
                            Kind::Jwt => fetch_jwt(&mut fetcher).await,
                        }
                    })
                    .await;
                    samples.push(Sample {
                        at,
                        kind,
                        latency_ms: ms(at.elapsed()),
                        ok: matches!(r, Ok(Ok(1))),
                    });
                }
                tokio::select! {
                    () = tokio::time::sleep(fetch_every) => {}
                    () = stop.notified() => return samples,
                }
                if Instant::now() > hard_deadline {
                    return samples;
                }
            }
        })
    };

    // RSS sampler.
    let pid = server.pid();
    let sampler_stop = Arc::new(tokio::sync::Notify::new());
    let sampler = {
        let stop = Arc::clone(&sampler_stop);
        tokio::spawn(async move {
            let mut peak = 0f64;
            loop {
                peak = peak.max(Memory::of(pid).rss_mib);
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(250)) => {}
                    () = stop.notified() => return peak,
                }
            }
        })
    };

    let changes = bundle_changes.await?;
    println!(
        "[rotate] bundle changes seen at {:?} s",
        changes
            .iter()
            .map(|(t, _)| (t.duration_since(t_start).as_secs_f64() * 10.0).round() / 10.0)
            .collect::<Vec<_>>()
    );
    // Give the last event time to finish (bounded by the hard deadline).
    let settle_until = (Instant::now() + Duration::from_secs(30)).min(hard_deadline);
    loop {
        let done = changes.last().is_some_and(|(_, last)| {
            updates
                .lock()
                .is_ok_and(|u| u.iter().all(|v| v.iter().any(|(_, h)| h == last)))
        });
        if done || Instant::now() > settle_until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    fetcher_stop.notify_one();
    sampler_stop.notify_one();
    let samples = fetcher_task.await?;
    let peak_rss = sampler.await?;
    let after = server.memory();
    holders.abort_all();
    server.stop().await;

    // Analysis: for each bundle change, the first update of every stream in its window.
    let updates = updates
        .lock()
        .map_err(|_| anyhow::anyhow!("updates lock poisoned"))?
        .clone();
    let mut events = Vec::new();
    // A stream's update belongs to CA event j when it carries event j's authorities for
    // the first time; an update that carries the same authorities as the stream's
    // previous message is a half-life re-issue.
    let mut half_life = Vec::new();
    for v in &updates {
        let mut prev = initial_bundle;
        for (t, h) in v {
            if *h == prev {
                half_life.push(*t);
            }
            prev = *h;
        }
    }
    let mut windows = Vec::new();
    for (j, (b, h)) in changes.iter().enumerate() {
        let firsts: Vec<Instant> = updates
            .iter()
            .filter_map(|v| v.iter().find(|(_, uh)| uh == h).map(|(t, _)| *t))
            .collect();
        let t0 = firsts.iter().copied().chain([*b]).min().unwrap_or(*b);
        let t_last = firsts.iter().copied().max().unwrap_or(t0);
        windows.push((t0, t_last));
        let mut lat: Vec<f64> = firsts.iter().map(|t| ms(t.duration_since(t0))).collect();
        lat.sort_by(f64::total_cmp);
        let during = fetch_stats(&samples, |s| s.overlaps(t0, t_last));
        let name = if j == 0 {
            "successor CA published"
        } else {
            "CA hand-over"
        };
        println!(
            "[rotate] event {} ({name}): {}/{} streams re-issued in {:.2} s (p50 {:.0} ms, p99 {:.0} ms after the first); fetcher meanwhile: {}",
            j + 1,
            firsts.len(),
            n,
            t_last.duration_since(t0).as_secs_f64(),
            percentile(&lat, 50.0),
            percentile(&lat, 99.0),
            during.describe()
        );
        events.push(serde_json::json!({
            "event": name,
            "at_secs": t0.duration_since(t_start).as_secs_f64(),
            "streams_updated": firsts.len(),
            "seconds": t_last.duration_since(t0).as_secs_f64(),
            "per_stream_p50_ms": percentile(&lat, 50.0),
            "per_stream_p99_ms": percentile(&lat, 99.0),
            "fetcher_during": during.json(),
        }));
    }
    half_life.sort();
    if let (Some(lo), Some(hi)) = (half_life.first(), half_life.last()) {
        let during = fetch_stats(&samples, |s| s.overlaps(*lo, *hi));
        println!(
            "[rotate] half-life re-issues (timer-driven, same authorities): {} from {:.1} s to {:.1} s; fetcher meanwhile: {}",
            half_life.len(),
            lo.duration_since(t_start).as_secs_f64(),
            hi.duration_since(t_start).as_secs_f64(),
            during.describe()
        );
        events.push(serde_json::json!({
            "event": "half-life re-issues",
            "at_secs": lo.duration_since(t_start).as_secs_f64(),
            "streams_updated": half_life.len(),
            "seconds": hi.duration_since(*lo).as_secs_f64(),
            "fetcher_during": during.json(),
        }));
    }
    let baseline_end = windows.first().map_or(Instant::now(), |(t0, _)| *t0);
    let baseline = fetch_stats(&samples, |s| s.end() < baseline_end);
    println!(
        "[rotate] fetcher before the first rotation: {}",
        baseline.describe()
    );
    let whole = fetch_stats(&samples, |_| true);
    println!("[rotate] fetcher over the whole run: {}", whole.describe());
    println!(
        "[rotate] RSS idle {:.1} MiB; with {n} entries and streams {:.1} MiB; sampled peak {:.1} MiB; at the end {:.1} MiB (VmHWM {:.1})",
        idle.rss_mib, with_streams.rss_mib, peak_rss, after.rss_mib, after.hwm_mib
    );
    write_json(
        &a.common,
        &serde_json::json!({
            "entries": n,
            "identities": format!("{:?}", a.common.identities),
            "ca_ttl": a.ca_ttl,
            "register_secs": reg.as_secs_f64(),
            "open_secs": open_time.as_secs_f64(),
            "events": events,
            "fetcher_baseline": baseline.json(),
            "fetcher_whole": whole.json(),
            "memory_idle": idle.json(),
            "memory_with_streams": with_streams.json(),
            "rss_peak_sampled_mib": peak_rss,
            "memory_end": after.json(),
        }),
    )
}

fn hash(bytes: &[u8]) -> u64 {
    use std::hash::{Hash as _, Hasher as _};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

struct FetchStats {
    x509: (usize, f64, f64, f64),
    jwt: (usize, f64, f64, f64),
    failures: usize,
}

fn fetch_stats(samples: &[Sample], pick: impl Fn(&Sample) -> bool) -> FetchStats {
    let of = |kind: Kind| {
        let mut v: Vec<f64> = samples
            .iter()
            .filter(|s| s.kind == kind && s.ok && pick(s))
            .map(|s| s.latency_ms)
            .collect();
        v.sort_by(f64::total_cmp);
        (
            v.len(),
            percentile(&v, 50.0),
            percentile(&v, 99.0),
            v.last().copied().unwrap_or(f64::NAN),
        )
    };
    FetchStats {
        x509: of(Kind::X509),
        jwt: of(Kind::Jwt),
        failures: samples.iter().filter(|s| !s.ok && pick(s)).count(),
    }
}

impl FetchStats {
    fn describe(&self) -> String {
        format!(
            "X509 n={} p50 {:.1} ms p99 {:.1} ms max {:.1} ms; JWT n={} p50 {:.1} ms p99 {:.1} ms max {:.1} ms; failures {}",
            self.x509.0,
            self.x509.1,
            self.x509.2,
            self.x509.3,
            self.jwt.0,
            self.jwt.1,
            self.jwt.2,
            self.jwt.3,
            self.failures
        )
    }

    fn json(&self) -> serde_json::Value {
        let one = |t: (usize, f64, f64, f64)| serde_json::json!({ "n": t.0, "p50_ms": t.1, "p99_ms": t.2, "max_ms": t.3 });
        serde_json::json!({ "x509": one(self.x509), "jwt": one(self.jwt), "failures": self.failures })
    }
}
