//! `aims serve`: run the server.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use aims_server::config::{Config, DEV_DATA_DIR, LogFormat};
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};

/// Log output formats on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum LogFormatArg {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line (for log collectors).
    Json,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  aims serve --dev                      # development server in ./aims-data\n  aims serve --config /etc/aims/aims.toml\n\nStop with Ctrl-C or SIGTERM: open requests finish, then the server exits."
)]
pub(crate) struct ServeArgs {
    /// Configuration file (TOML); `aims config check FILE` explains any error.
    #[arg(
        long,
        env = "AIMS_CONFIG",
        required_unless_present = "dev",
        conflicts_with = "dev"
    )]
    config: Option<PathBuf>,
    /// Development mode, no file needed: data in ./aims-data (created on first start,
    /// CA and keys kept there), trust domain `aims.localhost`, listeners on 127.0.0.1 only.
    #[arg(long)]
    dev: bool,
    /// Data directory of --dev (with --config, set [server] data_dir instead).
    #[arg(long, default_value = DEV_DATA_DIR, conflicts_with = "config")]
    data_dir: PathBuf,
    /// HTTP listener (health, readiness, metrics, bundle); overrides the file. With
    /// --dev the default is 127.0.0.1:8080; use 127.0.0.1:0 for any free port.
    #[arg(long)]
    http_listen: Option<SocketAddr>,
    /// Log format (overrides the file's [log] format). Logs go to standard error;
    /// `AIMS_LOG` sets the filter, e.g. `AIMS_LOG=debug`.
    #[arg(long, value_enum)]
    log_format: Option<LogFormatArg>,
}

fn load(args: &ServeArgs) -> Result<Config> {
    if args.dev {
        let http = args
            .http_listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        if !http.ip().is_loopback() {
            bail!(
                "--dev listens on loopback only; use an address like 127.0.0.1:{}",
                http.port()
            );
        }
        return Config::dev(args.data_dir.clone(), http)
            .map_err(|e| anyhow::anyhow!("development configuration: {e}"));
    }
    let Some(path) = &args.config else {
        bail!("pass --config FILE, or --dev to run without a file");
    };
    let mut config = Config::load(path).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a valid configuration:\n{}\n(run `aims config check {}` for the same report)",
            path.display(),
            crate::cmd_config::render(path, &e.0),
            path.display()
        )
    })?;
    if let Some(h) = args.http_listen {
        config.http.listen = h;
    }
    Ok(config)
}

pub(crate) fn run(args: &ServeArgs) -> Result<ExitCode> {
    let config = load(args)?;
    let format = match args.log_format {
        Some(LogFormatArg::Text) => LogFormat::Text,
        Some(LogFormatArg::Json) => LogFormat::Json,
        None => config.log.format,
    };
    aims_server::telemetry::init_logging(format, &config.log.level);
    raise_open_files_limit();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = config.server.worker_threads {
        rt.worker_threads(n.get());
    }
    let rt = rt
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let server = aims_server::start(config, Arc::new(aims_core::SystemClock))
            .await
            .context("the server could not start")?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", server.endpoints())?;
        out.flush()?;
        drop(out);
        server.run_until_signal().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// Raises the soft limit on open files to the hard limit, as Go programs (SPIRE among
/// them) do at start. The usual soft limit (1024) is what one local user may hold in
/// Workload API connections (`[workload_api] max_connections_per_uid`); at the soft limit
/// every listener, the database and attestation's `/proc` reads would fail together.
fn raise_open_files_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let (Some(soft), Some(hard)) = (limit.current, limit.maximum) else {
        return; // unlimited already, or a hard limit no soft limit may take (infinity)
    };
    if soft >= hard {
        return;
    }
    match setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        },
    ) {
        Ok(()) => tracing::debug!(from = soft, to = hard, "open files limit raised"),
        Err(e) => tracing::warn!(
            soft,
            hard,
            error = %e,
            "cannot raise the open files limit; raise it (ulimit -n) if clients are refused"
        ),
    }
}
