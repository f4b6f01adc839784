//! Outbound HTTP to the authorization server (RFC 8414 metadata, JWKS, RFC 7662
//! introspection): https only (http for loopback hosts), redirects never followed,
//! response bodies capped.

use std::sync::Arc;
use std::time::Duration;

use aims_core::Clock;
use aims_jose::JoseError;
use aims_pki::tls::ServerTrust;

/// Default cap on a metadata, JWKS or introspection response body: 64 KiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Default timeout of one request to the authorization server.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a request to the authorization server failed. Display strings never contain
/// tokens or keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The URL is not `https` (plain `http` is allowed only for loopback hosts), or has
    /// a fragment, or does not parse.
    #[error("`{0}` is not an https URL without fragment")]
    InsecureUrl(String),
    /// The connection or request failed.
    #[error("request to the authorization server failed")]
    Transport,
    /// The server answered a redirect; redirects are never followed.
    #[error("the authorization server answered a redirect (not followed)")]
    Redirect,
    /// The server answered another status than 200.
    #[error("the authorization server answered status {0}")]
    Status(u16),
    /// The body is larger than the configured cap.
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
    /// The body is not the expected JSON document.
    #[error("malformed response: {0}")]
    Malformed(&'static str),
    /// RFC 8414 section 3.3: the metadata's `issuer` is not byte-identical to the
    /// configured issuer.
    #[error("metadata issuer does not equal the configured issuer")]
    IssuerMismatch,
    /// A refresh was skipped: the previous one is too recent.
    #[error("refresh rate-limited")]
    RateLimited,
    /// The HTTP client could not be built (TLS configuration).
    #[error("HTTP client could not be built")]
    Client,
    /// The client assertion could not be signed.
    #[error("client assertion could not be created: {0}")]
    Assertion(JoseError),
}

/// A `reqwest` client for the authorization server: TLS built by aims-pki (`trust`:
/// WebPKI roots or SPIFFE), no redirects, a 10 s timeout.
pub fn as_http_client(
    trust: ServerTrust,
    clock: Arc<dyn Clock>,
) -> Result<reqwest::Client, FetchError> {
    let tls = aims_pki::tls::client_config_with_resolver(None, trust, clock)
        .map_err(|_| FetchError::Client)?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(DEFAULT_TIMEOUT)
        .build()
        .map_err(|_| FetchError::Client)
}

/// Checks `raw` is an absolute `https` URL (or `http` to a loopback host) without
/// fragment, and returns it parsed.
pub(crate) fn check_url(raw: &str) -> Result<reqwest::Url, FetchError> {
    let bad = || FetchError::InsecureUrl(raw.to_owned());
    let url = reqwest::Url::parse(raw).map_err(|_| bad())?;
    if url.fragment().is_some() || url.host_str().is_none() || !url.username().is_empty() {
        return Err(bad());
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        _ => Err(bad()),
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Sends `request`, refuses redirects (even when the client follows them) and any
/// status but 200, and reads at most `max_bytes` of the body.
pub(crate) async fn send_capped(
    request: reqwest::RequestBuilder,
    url: &reqwest::Url,
    max_bytes: usize,
) -> Result<Vec<u8>, FetchError> {
    let mut response = request.send().await.map_err(|_| FetchError::Transport)?;
    let status = response.status();
    if status.is_redirection() || response.url() != url {
        return Err(FetchError::Redirect);
    }
    if status != reqwest::StatusCode::OK {
        return Err(FetchError::Status(status.as_u16()));
    }
    if response
        .content_length()
        .is_some_and(|n| n > max_bytes as u64)
    {
        return Err(FetchError::TooLarge(max_bytes));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|_| FetchError::Transport)? {
        if body.len().saturating_add(chunk.len()) > max_bytes {
            return Err(FetchError::TooLarge(max_bytes));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// GETs a JSON document.
pub(crate) async fn get_json(
    http: &reqwest::Client,
    url: &reqwest::Url,
    max_bytes: usize,
) -> Result<serde_json::Value, FetchError> {
    let body = send_capped(
        http.get(url.clone()).header("accept", "application/json"),
        url,
        max_bytes,
    )
    .await?;
    serde_json::from_slice(&body).map_err(|_| FetchError::Malformed("not JSON"))
}

/// `application/x-www-form-urlencoded` encoding of `pairs`.
pub(crate) fn form(pairs: &[(&str, &str)]) -> String {
    fn enc(out: &mut String, s: &str) {
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        enc(&mut out, k);
        out.push('=');
        enc(&mut out, v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(check_url("https://as.example/jwks").is_ok());
        assert!(check_url("http://127.0.0.1:8080/jwks").is_ok());
        assert!(check_url("http://localhost/jwks").is_ok());
        assert!(check_url("http://as.example/jwks").is_err());
        assert!(check_url("https://as.example/jwks#f").is_err());
        assert!(check_url("ftp://as.example/").is_err());
    }

    #[test]
    fn form_encoding() {
        assert_eq!(form(&[("a", "b c"), ("d", "e=&")]), "a=b%20c&d=e%3D%26");
    }
}
