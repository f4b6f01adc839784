//! Limits of the HTTP client: response body caps, the overall timeout, sanitised server
//! text in errors, and `Debug` output without tokens.

use std::time::{Duration, Instant};

use aims_agent::oauth::{MAX_TOKEN_RESPONSE_BYTES, TokenRequestSpec};
use aims_agent::{AgentClient, AgentError, Auth};
use axum::routing::{get, post};
use bytes::Bytes;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use super::common::{server_with_agent, source};

/// A plain-HTTP server on a free loopback port; its base URL.
async fn serve(app: axum::Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// A raw TCP server that reads each request's head, writes `head` and then `chunks`, and
/// keeps the connection open (silent) for a minute; its base URL.
async fn raw(head: &'static str, chunks: Vec<Vec<u8>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            let chunks = chunks.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 1024];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tcp.write_all(head.as_bytes()).await;
                for c in chunks {
                    let _ = tcp.write_all(&c).await;
                }
                tokio::time::sleep(Duration::from_secs(60)).await;
            });
        }
    });
    format!("http://{addr}")
}

fn get_req(url: &str) -> http::Request<Bytes> {
    http::Request::get(url).body(Bytes::new()).unwrap()
}

fn token_spec(base: &str) -> TokenRequestSpec {
    TokenRequestSpec {
        issuer: base.to_owned(),
        token_endpoint: format!("{base}/token"),
        client_id: None,
        resource: None,
        scope: None,
        dpop: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_larger_than_the_cap_is_an_error_not_the_body() {
    let ts = server_with_agent("example.org", 3600, 600).await;
    let source = source(&ts).await;
    let base = serve(axum::Router::new().route("/big", get(|| async { "x".repeat(4096) }))).await;
    let url = format!("{base}/big");

    // Valid twin: within the (default) cap the body arrives whole.
    let client = AgentClient::new(&source).unwrap();
    let resp = client.send(get_req(&url), &Auth::None).await.unwrap();
    assert_eq!(resp.body().len(), 4096);

    let capped = AgentClient::builder()
        .max_response_bytes(1024)
        .build(&source)
        .unwrap();
    let err = capped.send(get_req(&url), &Auth::None).await.unwrap_err();
    assert!(
        matches!(err, AgentError::ResponseTooLarge { limit: 1024 }),
        "{err:?}"
    );
    assert!(!err.to_string().contains("xxxx"), "{err}");
    assert!(err.to_string().contains("max_response_bytes"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_response_without_length_is_cut_off_at_the_cap() {
    let ts = server_with_agent("example.org", 3600, 600).await;
    let source = source(&ts).await;
    // Eight 1 KiB chunks, then the terminating chunk: 8 KiB with no Content-Length.
    let mut chunks: Vec<Vec<u8>> = (0..8)
        .map(|_| {
            let mut c = b"400\r\n".to_vec();
            c.extend(std::iter::repeat_n(b'x', 1024));
            c.extend_from_slice(b"\r\n");
            c
        })
        .collect();
    chunks.push(b"0\r\n\r\n".to_vec());
    let base = raw(
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
        chunks,
    )
    .await;
    let client = AgentClient::builder()
        .max_response_bytes(8 * 1024)
        .build(&source)
        .unwrap();
    let resp = client.send(get_req(&base), &Auth::None).await.unwrap();
    assert_eq!(resp.body().len(), 8 * 1024);

    let capped = AgentClient::builder()
        .max_response_bytes(4 * 1024)
        .build(&source)
        .unwrap();
    let err = capped.send(get_req(&base), &Auth::None).await.unwrap_err();
    assert!(
        matches!(err, AgentError::ResponseTooLarge { limit: 4096 }),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_timeout_applies_to_the_response_and_its_body() {
    let ts = server_with_agent("example.org", 3600, 600).await;
    let source = source(&ts).await;
    let client = AgentClient::builder()
        .timeout(Duration::from_millis(300))
        .build(&source)
        .unwrap();
    // A server that never answers, and one that stops in the middle of the body.
    let silent = raw("", vec![]).await;
    let stalled = raw(
        "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial",
        vec![],
    )
    .await;
    for url in [silent, stalled] {
        let started = Instant::now();
        let err = client.send(get_req(&url), &Auth::None).await.unwrap_err();
        assert!(matches!(err, AgentError::RequestTimeout(_)), "{err:?}");
        assert!(
            err.to_string().contains("AgentClientBuilder::timeout"),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(5), "{url}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_response_larger_than_64_kib_is_refused() {
    let ts = server_with_agent("example.org", 3600, 600).await;
    let source = source(&ts).await;
    let padding = "p".repeat(MAX_TOKEN_RESPONSE_BYTES);
    let big = format!(r#"{{"access_token":"at","token_type":"Bearer","pad":"{padding}"}}"#);
    let app = axum::Router::new()
        .route("/token", post(move || async move { big }))
        .route(
            "/small/token",
            post(|| async { r#"{"access_token":"at","token_type":"Bearer"}"# }),
        );
    let base = serve(app).await;
    let client = AgentClient::new(&source).unwrap();

    // Valid twin: a normal token response is read.
    let token = client
        .client_credentials(&token_spec(&format!("{base}/small")))
        .await
        .unwrap();
    assert_eq!(token.access_token, "at");

    let err = client
        .client_credentials(&token_spec(&base))
        .await
        .unwrap_err();
    assert!(
        matches!(err, AgentError::ResponseTooLarge { limit } if limit == 64 * 1024),
        "{err:?}"
    );
    assert!(!err.to_string().contains("ppppp"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_errors_carry_only_sanitised_bounded_server_text() {
    let ts = server_with_agent("example.org", 3600, 600).await;
    let source = source(&ts).await;
    let noise = format!("\u{1b}[2Jfake\r\nprompt: {}", "A".repeat(10_000));
    let json_noise = serde_json::json!({
        "error": "invalid_client\nInjected: yes",
        "error_description": noise.clone(),
    })
    .to_string();
    let app = axum::Router::new()
        .route(
            "/text/token",
            post(move || async move { (http::StatusCode::BAD_REQUEST, noise) }),
        )
        .route(
            "/json/token",
            post(move || async move { (http::StatusCode::BAD_REQUEST, json_noise) }),
        );
    let base = serve(app).await;
    let client = AgentClient::new(&source).unwrap();
    for kind in ["text", "json"] {
        let err = client
            .client_credentials(&token_spec(&format!("{base}/{kind}")))
            .await
            .unwrap_err();
        let AgentError::TokenRefused {
            status,
            error,
            description,
        } = &err
        else {
            panic!("{kind}: {err:?}");
        };
        assert_eq!(*status, 400);
        for text in [error, description] {
            assert!(!text.chars().any(char::is_control), "{kind}: {text:?}");
            assert!(text.chars().count() <= 257, "{kind}: {} chars", text.len());
        }
        assert!(
            description.contains("fakeprompt: AAA"),
            "{kind}: {description}"
        );
        assert!(err.to_string().len() < 1024, "{kind}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_of_the_service_and_its_auth_shows_no_token() {
    let ts = server_with_agent("example.org", 3600, 600).await;
    let source = source(&ts).await;
    let secret = "eyJhbGciOiJFUzI1NiJ9.secret-access-token.sig";
    let auth = Auth::Dpop {
        access_token: secret.into(),
    };
    assert!(!format!("{auth:?}").contains(secret));
    let service = AgentClient::new(&source).unwrap().into_service(auth);
    let shown = format!("{service:?}");
    assert!(!shown.contains("secret-access-token"), "{shown}");
    assert!(shown.contains("Dpop"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_of_another_type_than_requested_is_refused() {
    let ts = server_with_agent("example.org", 3600, 600).await;
    let source = source(&ts).await;
    let answer = |token_type: &'static str| {
        post(move || async move {
            format!(r#"{{"access_token":"at","token_type":"{token_type}","expires_in":60}}"#)
        })
    };
    let app = axum::Router::new()
        .route("/dpop/token", answer("DPoP"))
        .route("/dpop-lower/token", answer("dpop"))
        .route("/bearer/token", answer("Bearer"))
        .route("/bearer-lower/token", answer("bearer"))
        .route("/mac/token", answer("mac"));
    let base = serve(app).await;
    let client = AgentClient::new(&source).unwrap();
    let ask = |kind: &str, dpop: bool| TokenRequestSpec {
        dpop,
        ..token_spec(&format!("{base}/{kind}"))
    };

    // Valid twins: the requested type, in any case (RFC 6749 §7.1).
    for (kind, dpop) in [
        ("dpop", true),
        ("dpop-lower", true),
        ("bearer", false),
        ("bearer-lower", false),
    ] {
        let token = client.client_credentials(&ask(kind, dpop)).await.unwrap();
        assert_eq!(token.access_token, "at", "{kind}");
    }
    // DPoP asked, Bearer (or anything else) given; and the other way round.
    for (kind, dpop) in [
        ("bearer", true),
        ("mac", true),
        ("dpop", false),
        ("mac", false),
    ] {
        let err = client
            .client_credentials(&ask(kind, dpop))
            .await
            .unwrap_err();
        assert!(matches!(err, AgentError::BadToken(_)), "{kind}: {err:?}");
        assert!(err.to_string().contains("token_type"), "{kind}: {err}");
    }
}
