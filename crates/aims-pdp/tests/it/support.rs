//! Starting the real router on loopback and talking to it.

use std::path::PathBuf;
use std::sync::Arc;

use aims_pdp::Pdp;
use aims_pdp::authzen::{AuthzenConfig, router};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

/// `crates/aims-pdp/examples/<name>`.
pub fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

/// A running PDP.
pub struct Server {
    pub base: String,
    pub client: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `pdp` on 127.0.0.1:0 with `config` (its `base_url` is replaced by the real one
/// when it is empty).
pub async fn serve(pdp: Arc<Pdp>, mut config: AuthzenConfig) -> Server {
    // reqwest is built without a default TLS provider; install ours (plain HTTP here).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    if config.base_url.is_empty() {
        config.base_url = base.clone();
    }
    let app = router(pdp, config);
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Server {
        base,
        client: reqwest::Client::new(),
        task,
    }
}

/// The certification fixture, served.
pub async fn interop() -> Server {
    let pdp = Arc::new(Pdp::from_dir(&example("authzen-interop")).unwrap());
    serve(pdp, AuthzenConfig::new("")).await
}

/// An answer.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Server {
    /// POSTs `body` (raw text) with `content_type` to `path`.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: &str,
        request_id: Option<&str>,
    ) -> Answer {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .body(body.to_owned());
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(id) = request_id {
            req = req.header("x-request-id", id);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
            text,
        }
    }

    /// POSTs JSON.
    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.post_raw(path, Some("application/json"), &body.to_string(), None)
            .await
    }

    /// The `decision` of an Access Evaluation, asserting 200.
    pub async fn decide(&self, body: &Value) -> bool {
        let a = self.post("/access/v1/evaluation", body).await;
        assert_eq!(a.status, StatusCode::OK, "{body}: {}", a.text);
        a.body["decision"].as_bool().expect("boolean decision")
    }

    /// Boxcar decisions, asserting 200.
    pub async fn decide_all(&self, body: &Value) -> Vec<bool> {
        let a = self.post("/access/v1/evaluations", body).await;
        assert_eq!(a.status, StatusCode::OK, "{body}: {}", a.text);
        assert!(a.body.get("decision").is_none(), "no top-level decision");
        a.body["evaluations"]
            .as_array()
            .expect("evaluations array")
            .iter()
            .map(|e| e["decision"].as_bool().expect("boolean decision"))
            .collect()
    }

    /// Search result ids (or action names), asserting 200.
    pub async fn search(&self, kind: &str, body: &Value) -> Vec<String> {
        let a = self.post(&format!("/access/v1/search/{kind}"), body).await;
        assert_eq!(a.status, StatusCode::OK, "{body}: {}", a.text);
        a.body["results"]
            .as_array()
            .expect("results array")
            .iter()
            .map(|r| {
                r.get("id")
                    .or_else(|| r.get("name"))
                    .and_then(Value::as_str)
                    .expect("id or name")
                    .to_owned()
            })
            .collect()
    }
}
