//! The plain HTTP listener: health, readiness, metrics, the bundle.

use aims_server::testkit;

use crate::common::{own_bundle, spec, uid_selector};

/// The Prometheus text the server at `base` serves now.
async fn metrics(http: &reqwest::Client, base: &str) -> String {
    let r = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_metrics_and_bundle() {
    let ts = testkit::start_default("example.org").await.unwrap();
    let base = format!("http://{}", ts.server.endpoints().http);
    let http = reqwest::Client::new();

    let r = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ok\n");

    let r = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["status"], "ready");

    // An entry and an issued SVID show up in the metrics.
    ts.admin()
        .create_entry(&spec("spiffe://example.org/agent/m", &[&uid_selector()]))
        .await
        .unwrap();
    // An invented method is counted as `other`: clients cannot add label values.
    let brew = reqwest::Method::from_bytes(b"BREW").unwrap();
    let r = http
        .request(brew, format!("{base}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let client = spiffe::WorkloadApiClient::connect_to(ts.workload_endpoint())
        .await
        .unwrap();
    client.fetch_x509_svid().await.unwrap();
    let text = metrics(&http, &base).await;
    for name in [
        "aims_http_requests_total",
        "aims_entries",
        "aims_svids_issued_total{type=\"x509\"}",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    let requests = |method: &str, status: &str| {
        text.lines().any(|l| {
            l.starts_with("aims_http_requests_total{")
                && l.contains("route=\"/healthz\"")
                && l.contains(&format!("method=\"{method}\""))
                && l.contains(&format!("status=\"{status}\""))
                && l.ends_with(" 1")
        })
    };
    assert!(requests("GET", "200"), "{text}");
    assert!(requests("other", "405"), "{text}");
    assert!(!text.contains("BREW"), "{text}");

    for path in ["/bundle", "/.well-known/spiffe-bundle"] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["content-type"].to_str().unwrap(),
            "application/json"
        );
        let body = r.bytes().await.unwrap();
        let b = aims_pki::SpiffeBundle::parse(ts.server.endpoints().trust_domain.clone(), &body)
            .unwrap();
        let own = own_bundle(&ts).await;
        assert_eq!(b.x509_authorities(), own.x509_authorities());
        assert_eq!(b.refresh_hint(), Some(300));
        assert!(b.jwt_authorities().count() >= 1);
        assert!(b.wit_authorities().count() >= 1);
    }

    // Readiness turns off when shutdown begins; the server then stops.
    let state = ts.server.state().clone();
    ts.server.shutdown().await;
    assert!(state.is_shutting_down());
    assert!(http.get(format!("{base}/healthz")).send().await.is_err());
}

/// The server deletes expired single-use records and grants by itself every
/// `[storage] sweep_interval`, counts them in the metrics, and leaves live ones and
/// those expired less than five minutes ago (a node whose clock is behind still takes
/// them for live).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_single_use_records_are_swept() {
    let t0 = crate::common::now();
    let clock = aims_core::ManualClock::new(t0);
    let ts = testkit::start_with("example.org", std::sync::Arc::new(clock.clone()), |c| {
        c.storage.sweep_interval = aims_server::config::Seconds(1)
    })
    .await
    .unwrap();
    // Another connection to the same database, as a second node would have.
    let url = format!(
        "sqlite://{}",
        ts.server.endpoints().data_dir.join("aims.db").display()
    );
    let store = aims_store::Store::connect(&url).await.unwrap();
    for item in ["a", "b", "c"] {
        assert!(store.use_once("jti", item, t0 + 5, t0).await.unwrap());
    }
    assert!(store.use_once("jti", "live", t0 + 900, t0).await.unwrap());
    assert!(store.use_once("jti", "recent", t0 + 100, t0).await.unwrap());
    clock.advance(310);

    let base = format!("http://{}", ts.server.endpoints().http);
    let http = reqwest::Client::new();
    let swept = "aims_store_expired_deleted_total{kind=\"single_use\"} 3";
    let mut text = String::new();
    for _ in 0..100 {
        text = metrics(&http, &base).await;
        if text.contains(swept) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(text.contains(swept), "{swept} missing from:\n{text}");
    // Gone already; the live record still counts as used, and so does the recently
    // expired one on a node whose clock says it is live.
    assert_eq!(store.sweep_expired(t0 + 10).await.unwrap(), 0);
    assert!(
        !store
            .use_once("jti", "live", t0 + 900, t0 + 310)
            .await
            .unwrap()
    );
    assert!(
        !store
            .use_once("jti", "recent", t0 + 100, t0 + 50)
            .await
            .unwrap()
    );
    store.close().await;
}

/// `[http] header_read_timeout`: a client that starts a request and never finishes its
/// headers, or leaves a keep-alive connection idle, is disconnected after it; a client
/// that sends its request in time is served on the same kind of connection; an HTTP/2
/// preface is not served (HTTP/1.1 only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_closed_after_the_header_read_timeout() {
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let ts = testkit::start_with(
        "example.org",
        std::sync::Arc::new(aims_core::SystemClock),
        |c| c.http.header_read_timeout = aims_server::config::Seconds(1),
    )
    .await
    .unwrap();
    let addr = ts.server.endpoints().http;
    // Waits for the server to end the connection; how long that took.
    async fn closed_after(s: &mut tokio::net::TcpStream) -> Duration {
        let start = Instant::now();
        let mut buf = [0u8; 4096];
        loop {
            match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => return start.elapsed(),
                Ok(Ok(_)) => {}
                Err(_) => panic!("the server kept the connection open for 10 s"),
            }
        }
    }

    // A connection that has sent `bytes`.
    let sent = |bytes: &'static [u8]| async move {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(bytes).await.unwrap();
        s
    };
    // Headers started, never finished; an HTTP/2 preface (prior knowledge), which is not
    // served: HTTP/2 would escape the timeout.
    for start in [
        &b"GET /healthz HTTP/1.1\r\nHost: aims\r\n"[..],
        &b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..],
    ] {
        let waited = closed_after(&mut sent(start).await).await;
        assert!(waited < Duration::from_secs(5), "{waited:?}");
    }

    // A request in time is answered; the idle keep-alive connection then closes.
    let mut idle = sent(b"GET /healthz HTTP/1.1\r\nHost: aims\r\n\r\n").await;
    let mut buf = [0u8; 1024];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
    let waited = closed_after(&mut idle).await;
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    ts.server.shutdown().await;
}

/// `[http] request_timeout`: a request whose body trickles in (headers in time, then one
/// byte and silence) is answered 408 after it, instead of holding the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_is_answered_408_after_the_request_timeout() {
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let ts = testkit::start_with(
        "example.org",
        std::sync::Arc::new(aims_core::SystemClock),
        |c| {
            c.http.request_timeout = aims_server::config::Seconds(1);
            c.http.header_read_timeout = aims_server::config::Seconds(30);
        },
    )
    .await
    .unwrap();
    let addr = ts.server.endpoints().http;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"POST /oauth/token HTTP/1.1\r\nHost: aims\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ng",
    )
    .await
    .unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("answered before 10 s")
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 408"), "{:?}", &buf[..n]);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    ts.server.shutdown().await;
}

/// `[http] max_connections`: with one slot, a second client is not served while the
/// first keeps its connection open, and is served once it closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_max_connections_wait_to_be_accepted() {
    use std::time::Duration;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let ts = testkit::start_with(
        "example.org",
        std::sync::Arc::new(aims_core::SystemClock),
        |c| c.http.max_connections = std::num::NonZeroUsize::MIN,
    )
    .await
    .unwrap();
    let addr = ts.server.endpoints().http;
    const REQUEST: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: aims\r\n\r\n";
    let mut first = tokio::net::TcpStream::connect(addr).await.unwrap();
    first.write_all(REQUEST).await.unwrap();
    let mut buf = [0u8; 1024];
    let n = first.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
    // The first connection stays open (keep-alive): the second waits.
    let mut second = tokio::net::TcpStream::connect(addr).await.unwrap();
    second.write_all(REQUEST).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(500), second.read(&mut buf))
            .await
            .is_err(),
        "served while the only slot was taken"
    );
    drop(first);
    let n = tokio::time::timeout(Duration::from_secs(10), second.read(&mut buf))
        .await
        .expect("served once the slot was free")
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
    ts.server.shutdown().await;
}

/// A flood of `/readyz` probes checks the database about once a second, not once per
/// probe (the listener is unauthenticated; the database connections are for requests).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_probes_share_one_database_check() {
    let ts = testkit::start_default("example.org").await.unwrap();
    let base = format!("http://{}", ts.server.endpoints().http);
    let http = reqwest::Client::new();
    let checks = |text: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix("aims_readiness_database_checks_total "))
            .map_or(0, |v| v.trim().parse().unwrap())
    };
    let before = checks(&metrics(&http, &base).await);
    let probes = (0..50).map(|_| {
        let http = http.clone();
        let url = format!("{base}/readyz");
        tokio::spawn(async move { http.get(url).send().await.unwrap().status() })
    });
    for p in probes.collect::<Vec<_>>() {
        assert_eq!(p.await.unwrap(), 200);
    }
    let after = checks(&metrics(&http, &base).await);
    // 50 probes within about a second: one check, two if a second boundary passed.
    assert!(
        (1..=2).contains(&(after - before)),
        "{} database checks for 50 probes",
        after - before
    );
    ts.server.shutdown().await;
}
