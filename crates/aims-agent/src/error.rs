//! The one error type of this crate.

use std::path::PathBuf;

/// Why an agent could not obtain a credential or send an authenticated request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// `SPIFFE_ENDPOINT_SOCKET` (or the given address) is not a usable Workload API address.
    #[error("invalid Workload API address {address:?}: {reason} (expected unix:///absolute/path)")]
    InvalidEndpoint {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No Workload API address was given and `SPIFFE_ENDPOINT_SOCKET` is not set.
    #[error(
        "no Workload API address: set SPIFFE_ENDPOINT_SOCKET=unix:///path/to/workload.sock or pass one"
    )]
    NoEndpoint,
    /// The Workload API socket could not be reached.
    #[error("cannot connect to the Workload API at {path}: {source}")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// The transport error.
        source: tonic::transport::Error,
    },
    /// The Workload API answered with an error status.
    #[error("Workload API {call} failed: {code:?}: {message}")]
    WorkloadApi {
        /// The RPC.
        call: &'static str,
        /// The gRPC status code (`PermissionDenied`: no registration entry matches this process).
        code: tonic::Code,
        /// The server's message.
        message: String,
    },
    /// The Workload API sent something this crate cannot use.
    #[error("Workload API {call} sent an unusable response: {reason}")]
    BadResponse {
        /// The RPC.
        call: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The first credentials did not arrive in time.
    #[error("no {what} from the Workload API within {seconds} s")]
    Timeout {
        /// The credential waited for.
        what: &'static str,
        /// The wait.
        seconds: u64,
    },
    /// The agent has no credential of the kind the request needs (for example no WIT-SVID
    /// from a Workload API that does not serve the WIT profile).
    #[error("no {0} is available to this agent")]
    NoCredential(&'static str),
    /// The request cannot be signed (not an absolute `http(s)` URL, body too large, ...).
    #[error("cannot authenticate this request: {0}")]
    Request(String),
    /// Signing failed.
    #[error("signing failed: {0}")]
    Signing(String),
    /// TLS configuration failed.
    #[error("TLS configuration failed: {0}")]
    Tls(String),
    /// The authorization server refused the token request.
    #[error("the authorization server refused the token request ({status} {error}): {description}")]
    TokenRefused {
        /// HTTP status.
        status: u16,
        /// The OAuth `error`.
        error: String,
        /// The `error_description`.
        description: String,
    },
    /// The token response could not be read.
    #[error("unusable token response: {0}")]
    BadToken(String),
    /// The HTTP exchange failed.
    #[error("HTTP request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// No complete response arrived within the client's timeout.
    #[error(
        "no complete response within {0:?} (raise AgentClientBuilder::timeout if the server is expected to be slower)"
    )]
    RequestTimeout(std::time::Duration),
    /// The response to a signed request failed the WIMSE response signature check (or
    /// was unsigned although the client requires signed responses); it was not kept.
    #[error("the response signature check failed, the response was discarded: {0}")]
    ResponseSignature(String),
    /// The response body is larger than the client accepts; it was not kept.
    #[error(
        "the response body exceeds {limit} bytes and was dropped (AgentClientBuilder::max_response_bytes sets the limit; token responses are capped at 64 KiB)"
    )]
    ResponseTooLarge {
        /// The limit that applied, in bytes.
        limit: usize,
    },
}

/// What `Debug` shows instead of a token.
pub(crate) const REDACTED: &str = "<redacted>";

/// The most characters of server-supplied text put into an error message.
pub(crate) const MAX_SERVER_TEXT: usize = 256;

/// Server-supplied text made fit for an error message or a log line: control and
/// invisible bidirectional / zero-width characters dropped, at most [`MAX_SERVER_TEXT`]
/// characters kept (a cut is marked with `…`).
pub(crate) fn server_text(text: &str) -> String {
    let mut kept = text.chars().filter(|c| !is_unprintable(*c));
    let mut out: String = kept.by_ref().take(MAX_SERVER_TEXT).collect();
    if kept.next().is_some() {
        out.push('…');
    }
    out
}

fn is_unprintable(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_text_drops_control_characters_and_is_bounded() {
        let hostile = format!(
            "bad\r\nSet-Cookie: x\u{1b}[31m\u{202E}{}",
            "A".repeat(10_000)
        );
        let clean = server_text(&hostile);
        assert!(clean.starts_with("badSet-Cookie: x[31mAAA"), "{clean}");
        assert!(!clean.chars().any(is_unprintable));
        assert_eq!(clean.chars().count(), MAX_SERVER_TEXT + 1);
        assert!(clean.ends_with('…'));
        assert_eq!(server_text("short ok"), "short ok");
    }
}
