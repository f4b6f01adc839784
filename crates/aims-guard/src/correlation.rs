//! Correlation ids: the caller's `X-Request-ID` when it is a sane one, else a fresh id.
//!
//! A fresh id only has to be unique (it ties log lines and audit events together; it
//! grants nothing), so it is a per-process random prefix, drawn once, and a counter:
//! no random draw per request.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use http::HeaderMap;

use crate::REQUEST_ID_HEADER;

/// The longest caller-supplied id reused as is.
const MAX_LEN: usize = 128;

/// The request's correlation id.
pub fn correlation_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= MAX_LEN && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(fresh, str::to_owned)
}

/// A new id, unique within this process (and, by its random prefix, across processes).
pub fn fresh() -> String {
    static PREFIX: OnceLock<String> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| {
        aims_crypto::random_token()
            .map(|t| t.chars().take(16).collect())
            .unwrap_or_else(|_| format!("p{}", std::process::id()))
    });
    format!("{prefix}-{:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sane_request_id_is_kept_else_fresh_unique_ids() {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID_HEADER, "abc-123".parse().unwrap());
        assert_eq!(correlation_id(&h), "abc-123");
        for bad in ["", "a b", &"x".repeat(MAX_LEN + 1)] {
            let mut h = HeaderMap::new();
            h.insert(REQUEST_ID_HEADER, bad.parse().unwrap());
            let id = correlation_id(&h);
            assert_ne!(id, bad);
            assert!(id.len() > 16 && id.contains('-'), "{id}");
        }
        let a = correlation_id(&HeaderMap::new());
        let b = correlation_id(&HeaderMap::new());
        assert_ne!(a, b);
        assert_eq!(a.split('-').next(), b.split('-').next());
    }
}
