//! AuthZEN load harness: decisions per second over HTTP against the real `aims-pdp`
//! router on loopback, single evaluations and boxcars, with per-request and
//! per-evaluation latency percentiles.
//!
//! ```sh
//! cargo run --release -p aims-bench --bin pdp_load -- --policies 10000 --seconds 5
//! ```
//!
//! The server runs in this process (tokio multi-thread runtime) and shares the cores
//! with the load generator, so throughput is a lower bound of the server alone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aims_bench::pdp_fixture::{bundle, request};
use aims_pdp::Pdp;
use aims_pdp::authzen::{AuthzenConfig, router};
use anyhow::{Context, Result, bail};
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

#[derive(Debug, Parser)]
#[command(about = "AuthZEN decisions per second against the aims-pdp router")]
struct Opts {
    /// Policies in the set (all but a few cannot apply to the request).
    #[arg(long, default_value_t = 10_000)]
    policies: usize,
    /// Concurrent client connections.
    #[arg(long, default_value_t = 16)]
    conns: usize,
    /// Measured seconds per mode (after one second of warm-up).
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Boxcar sizes to measure; 1 = the single Access Evaluation endpoint.
    #[arg(long = "boxcar", default_values_t = vec![1usize, 10])]
    boxcars: Vec<usize>,
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

async fn call(client: &HttpClient, uri: &str, body: &Bytes) -> Result<Value> {
    let req = hyper::Request::post(uri)
        .header("content-type", "application/json")
        .body(Full::new(body.clone()))?;
    let resp = client.request(req).await?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        bail!("{status}: {}", String::from_utf8_lossy(&bytes));
    }
    Ok(serde_json::from_slice(&bytes)?)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> Result<()> {
    let opts = Opts::parse();
    let pdp = Arc::new(Pdp::new(&bundle(opts.policies)).context("policy set")?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = router(pdp, AuthzenConfig::new(base.clone()));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();

    println!(
        "policies={} conns={} seconds={} (server and load generator share this machine)",
        opts.policies, opts.conns, opts.seconds
    );
    println!(
        "| mode | requests/s | decisions/s | request p50 | request p99 | per-eval p50 | per-eval p99 |"
    );
    println!("|---|---|---|---|---|---|---|");
    let single = serde_json::to_value(request())?;
    for &size in &opts.boxcars {
        let (uri, body) = if size <= 1 {
            (format!("{base}/access/v1/evaluation"), single.clone())
        } else {
            let items: Vec<Value> = (0..size)
                .map(|_| json!({"resource": single["resource"], "action": single["action"]}))
                .collect();
            (
                format!("{base}/access/v1/evaluations"),
                json!({"subject": single["subject"], "context": single["context"], "evaluations": items}),
            )
        };
        let body = Bytes::from(body.to_string());
        let check = call(&client, &uri, &body).await?;
        let permitted = if size <= 1 {
            check["decision"] == true
        } else {
            check["evaluations"]
                .as_array()
                .is_some_and(|a| a.len() == size && a.iter().all(|d| d["decision"] == true))
        };
        if !permitted {
            bail!("unexpected answer: {check}");
        }
        let run = |secs: f64| {
            let mut tasks = Vec::new();
            for _ in 0..opts.conns {
                let client = client.clone();
                let uri = uri.clone();
                let body = body.clone();
                tasks.push(tokio::spawn(async move {
                    let deadline = Instant::now() + Duration::from_secs_f64(secs);
                    let mut lat = Vec::new();
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        call(&client, &uri, &body).await?;
                        lat.push(t.elapsed());
                    }
                    anyhow::Ok(lat)
                }));
            }
            tasks
        };
        for t in run(1.0) {
            t.await??;
        }
        let start = Instant::now();
        let mut lat = Vec::new();
        for t in run(opts.seconds) {
            lat.extend(t.await??);
        }
        let elapsed = start.elapsed().as_secs_f64();
        lat.sort();
        let rps = lat.len() as f64 / elapsed;
        let per = |d: Duration| d / u32::try_from(size.max(1)).unwrap_or(1);
        let (p50, p99) = (percentile(&lat, 0.50), percentile(&lat, 0.99));
        println!(
            "| {} | {:.0} | {:.0} | {:.0} µs | {:.0} µs | {:.1} µs | {:.1} µs |",
            if size <= 1 {
                "single".to_owned()
            } else {
                format!("boxcar of {size}")
            },
            rps,
            rps * size.max(1) as f64,
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6,
            per(p50).as_secs_f64() * 1e6,
            per(p99).as_secs_f64() * 1e6,
        );
    }
    Ok(())
}
