//! `aims request`: one HTTP request signed with the caller's own identity, taken from the
//! Workload API, for operators and scripts.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use aims_agent::{AgentClient, Auth, WorkloadEndpoint, WorkloadSource};
use aims_core::SpiffeId;
use aims_pki::tls::Authorizer;
use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, ValueEnum};

/// How `aims request` authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum AuthArg {
    /// Mutual TLS with the caller's X509-SVID (https URLs).
    Mtls,
    /// WIT-SVID + Workload Proof Token (headers Workload-Identity-Token, Workload-Proof-Token).
    Wpt,
    /// WIT-SVID + WIMSE HTTP Message Signature (RFC 9421).
    Httpsig,
    /// A JWT-SVID bearer token (audience from --audience, default the URL's origin).
    JwtSvid,
    /// No authentication.
    None,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  aims request --url https://svc-b.example.test/orders --auth wpt
  aims request --url https://svc-b.example.test/orders -X POST --data '{\"qty\":1}' \\
      -H 'content-type: application/json' --auth httpsig
  aims request --url https://svc-b.example.test/ --auth mtls --server-id spiffe://example.org/svc-b

The identity comes from the Workload API: SPIFFE_ENDPOINT_SOCKET, --socket, or the dev
server's ./aims-data/workload.sock. The response body goes to standard output; the exit
status is 0 for 2xx/3xx, 1 for other statuses, 2 when no request could be made.")]
pub(crate) struct RequestArgs {
    /// The absolute http(s) URL.
    #[arg(long)]
    url: String,
    /// The HTTP method.
    #[arg(short = 'X', long, default_value = "GET")]
    method: String,
    /// The request body (use @FILE to read a file, @- for standard input).
    #[arg(short = 'd', long)]
    data: Option<String>,
    /// An extra header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// How to authenticate.
    #[arg(long, value_enum)]
    auth: AuthArg,
    /// Audience of the JWT-SVID (--auth jwt-svid).
    #[arg(long)]
    audience: Option<String>,
    /// The Workload API socket (default: $SPIFFE_ENDPOINT_SOCKET, else ./aims-data/workload.sock).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Require the TLS server to present exactly this SPIFFE ID (default: any ID of this
    /// agent's own trust domain; a server of a federated trust domain needs this flag).
    #[arg(long)]
    server_id: Option<String>,
    /// Verify the TLS server with these PEM roots (ordinary certificates) instead of
    /// as a SPIFFE workload.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Print the status line and response headers before the body.
    #[arg(short = 'i', long)]
    include: bool,
    /// Seconds to wait for the identity and for the response.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

pub(crate) fn run(args: &RequestArgs) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("start the async runtime")?;
    runtime.block_on(send(args))
}

fn endpoint(args: &RequestArgs) -> Result<WorkloadEndpoint> {
    if let Some(path) = &args.socket {
        let path =
            std::path::absolute(path).with_context(|| format!("resolve {}", path.display()))?;
        return Ok(WorkloadEndpoint::unix(path));
    }
    if let Some(e) = WorkloadEndpoint::from_env()? {
        return Ok(e);
    }
    let dev = std::path::absolute("aims-data/workload.sock").context("resolve ./aims-data")?;
    if !dev.exists() {
        bail!(
            "no Workload API: set SPIFFE_ENDPOINT_SOCKET, pass --socket, or start `aims serve --dev` here"
        );
    }
    Ok(WorkloadEndpoint::unix(dev))
}

fn body(data: Option<&str>) -> Result<bytes::Bytes> {
    Ok(match data {
        None => bytes::Bytes::new(),
        Some("@-") => {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).context("read stdin")?;
            buf.into()
        }
        Some(d) if d.starts_with('@') => {
            let path = &d[1..];
            std::fs::read(path)
                .with_context(|| format!("read {path}"))?
                .into()
        }
        Some(d) => bytes::Bytes::copy_from_slice(d.as_bytes()),
    })
}

async fn send(args: &RequestArgs) -> Result<ExitCode> {
    let timeout = Duration::from_secs(args.timeout.max(1));
    let mut builder = http::Request::builder()
        .method(args.method.as_str())
        .uri(args.url.as_str());
    for h in &args.headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| anyhow!("--header {h:?}: expected `Name: value`"))?;
        builder = builder.header(name.trim(), value.trim());
    }
    let request = builder
        .body(body(args.data.as_deref())?)
        .map_err(|e| anyhow!("invalid request: {e}"))?;
    if request.uri().scheme().is_none() {
        bail!("--url {}: must be an absolute http(s) URL", args.url);
    }

    let endpoint = endpoint(args)?;
    let source = WorkloadSource::connect_with(
        endpoint.clone(),
        std::sync::Arc::new(aims_core::SystemClock),
        timeout,
    )
    .await
    .with_context(|| format!("get this process's identity from {endpoint}"))?;

    let mut client = AgentClient::builder().timeout(timeout);
    if let Some(id) = &args.server_id {
        let id = SpiffeId::parse(id).with_context(|| format!("--server-id {id}"))?;
        client = client.server_authorizer(Authorizer::Exact(vec![id]));
    }
    if let Some(path) = &args.ca_file {
        let pem = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
        client = client.server_roots_pem(pem);
    }
    let client = client.build(&source)?;
    let auth = match args.auth {
        AuthArg::Mtls => Auth::Mtls,
        AuthArg::Wpt => Auth::Wpt,
        AuthArg::Httpsig => Auth::HttpSig,
        AuthArg::None => Auth::None,
        AuthArg::JwtSvid => Auth::JwtSvid {
            audience: match &args.audience {
                Some(a) => a.clone(),
                None => origin(request.uri()),
            },
        },
    };
    let response = client.send(request, &auth).await?;

    let mut out = std::io::stdout().lock();
    if args.include {
        writeln!(out, "{:?} {}", response.version(), response.status())?;
        for (name, value) in response.headers() {
            writeln!(out, "{name}: {}", String::from_utf8_lossy(value.as_bytes()))?;
        }
        writeln!(out)?;
    }
    out.write_all(response.body())?;
    out.flush()?;
    let status = response.status();
    if status.is_success() || status.is_redirection() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("aims request: the server answered {status}");
        Ok(ExitCode::from(1))
    }
}

fn origin(uri: &http::Uri) -> String {
    format!(
        "{}://{}",
        uri.scheme_str().unwrap_or("https"),
        uri.authority().map(|a| a.as_str()).unwrap_or_default()
    )
}
