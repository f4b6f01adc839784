//! A client of the admin API over its Unix socket (what `aims entry …` and
//! `aims bundle …` use).

use std::path::{Path, PathBuf};

use aims_core::RegistrationEntry;
use axum::body::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Method, Request, header};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;

use crate::api::{
    BundleInfo, BundleList, ClientList, ClientMetadata, ClientView, DisabledChange, EntryList,
    EntrySpec, ErrorBody, KeyList, NewUser, PasswordChange, UserList, UserView,
};

/// Why an admin call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Nothing answers on the socket.
    #[error("cannot reach the admin socket {}: {source}", path.display())]
    Connect {
        /// The socket.
        path: PathBuf,
        /// The cause (`NotFound`: no server; `PermissionDenied`: another user's server).
        source: std::io::Error,
    },
    /// The server refused the request.
    #[error("{detail} (HTTP {status}, {error})")]
    Api {
        /// HTTP status.
        status: u16,
        /// The error code (see [`ErrorBody`]).
        error: String,
        /// The server's explanation.
        detail: String,
    },
    /// The argument cannot appear in a URL path.
    #[error("`{0}` is not a valid identifier here (letters, digits, `.`, `_`, `-`)")]
    BadPathSegment(String),
    /// A client id or user name that cannot be named at all (empty, or with control
    /// characters: the server refuses those too).
    #[error(
        "{0:?} is empty or holds control characters; name the client or user exactly as created"
    )]
    Unnameable(String),
    /// The HTTP exchange failed.
    #[error("admin API call failed: {0}")]
    Http(String),
    /// The answer was not what the API promises.
    #[error("unexpected answer from the admin API: {0}")]
    Decode(String),
}

impl ClientError {
    /// The HTTP status of an API refusal.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// An admin API client bound to one socket path. Each call opens one connection.
#[derive(Debug, Clone)]
pub struct AdminClient {
    socket: PathBuf,
}

fn segment(s: &str) -> Result<&str, ClientError> {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Ok(s)
    } else {
        Err(ClientError::BadPathSegment(s.to_owned()))
    }
}

impl AdminClient {
    /// A client for the admin socket at `socket`.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
        }
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Bytes, ClientError> {
        self.call_with(method, path, body, None).await
    }

    async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        if_match: Option<i64>,
    ) -> Result<Bytes, ClientError> {
        let stream =
            UnixStream::connect(&self.socket)
                .await
                .map_err(|source| ClientError::Connect {
                    path: self.socket.clone(),
                    source,
                })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let driver = tokio::spawn(conn);
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "aims-admin");
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        if let Some(r) = if_match {
            req = req.header(header::IF_MATCH, format!("\"{r}\""));
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?
            .to_bytes();
        drop(sender);
        driver.abort();
        if status.is_success() {
            return Ok(bytes);
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(e) => Err(ClientError::Api {
                status: status.as_u16(),
                error: e.error,
                detail: e.detail,
            }),
            Err(_) => Err(ClientError::Api {
                status: status.as_u16(),
                error: status
                    .canonical_reason()
                    .unwrap_or("error")
                    .to_lowercase()
                    .replace(' ', "_"),
                detail: String::from_utf8_lossy(&bytes).trim().to_owned(),
            }),
        }
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, ClientError> {
        let bytes = self.call(method, path, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))
    }

    fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, ClientError> {
        serde_json::to_vec(v).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// `POST /v1/entries`.
    pub async fn create_entry(&self, spec: &EntrySpec) -> Result<RegistrationEntry, ClientError> {
        self.json(Method::POST, "/v1/entries", Some(Self::encode(spec)?))
            .await
    }

    /// `GET /v1/entries`.
    pub async fn list_entries(&self) -> Result<Vec<RegistrationEntry>, ClientError> {
        let l: EntryList = self.json(Method::GET, "/v1/entries", None).await?;
        Ok(l.entries)
    }

    /// `GET /v1/entries/{id}`.
    pub async fn get_entry(&self, id: &str) -> Result<RegistrationEntry, ClientError> {
        let path = format!("/v1/entries/{}", segment(id)?);
        self.json(Method::GET, &path, None).await
    }

    /// `PUT /v1/entries/{id}`; `spec.revision` must be the revision read.
    pub async fn update_entry(
        &self,
        id: &str,
        spec: &EntrySpec,
    ) -> Result<RegistrationEntry, ClientError> {
        let path = format!("/v1/entries/{}", segment(id)?);
        self.json(Method::PUT, &path, Some(Self::encode(spec)?))
            .await
    }

    /// `DELETE /v1/entries/{id}`.
    pub async fn delete_entry(&self, id: &str) -> Result<(), ClientError> {
        let path = format!("/v1/entries/{}", segment(id)?);
        self.call(Method::DELETE, &path, None).await.map(drop)
    }

    /// `GET /v1/bundle`: this trust domain's bundle document.
    pub async fn bundle(&self) -> Result<String, ClientError> {
        let b = self.call(Method::GET, "/v1/bundle", None).await?;
        String::from_utf8(b.to_vec()).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// `GET /v1/bundles`: the federated bundles.
    pub async fn bundles(&self) -> Result<BundleList, ClientError> {
        self.json(Method::GET, "/v1/bundles", None).await
    }

    /// `PUT /v1/bundles/{trust_domain}`.
    pub async fn set_bundle(
        &self,
        trust_domain: &str,
        document: Vec<u8>,
    ) -> Result<BundleInfo, ClientError> {
        let path = format!("/v1/bundles/{}", segment(trust_domain)?);
        self.json(Method::PUT, &path, Some(document)).await
    }

    /// `DELETE /v1/bundles/{trust_domain}`.
    pub async fn delete_bundle(&self, trust_domain: &str) -> Result<(), ClientError> {
        let path = format!("/v1/bundles/{}", segment(trust_domain)?);
        self.call(Method::DELETE, &path, None).await.map(drop)
    }

    /// `GET /v1/keys`.
    pub async fn keys(&self) -> Result<KeyList, ClientError> {
        self.json(Method::GET, "/v1/keys", None).await
    }

    /// `POST /v1/clients`.
    pub async fn create_client(&self, meta: &ClientMetadata) -> Result<ClientView, ClientError> {
        self.json(Method::POST, "/v1/clients", Some(Self::encode(meta)?))
            .await
    }

    /// `GET /v1/clients`.
    pub async fn list_clients(&self) -> Result<Vec<ClientView>, ClientError> {
        let l: ClientList = self.json(Method::GET, "/v1/clients", None).await?;
        Ok(l.clients)
    }

    /// `GET /v1/clients/{client_id}`.
    pub async fn get_client(&self, client_id: &str) -> Result<ClientView, ClientError> {
        let path = format!("/v1/clients/{}", percent_encode(client_id)?);
        self.json(Method::GET, &path, None).await
    }

    /// `PUT /v1/clients/{client_id}`; with `revision`, only if the stored client is still
    /// at that revision.
    pub async fn update_client(
        &self,
        meta: &ClientMetadata,
        revision: Option<i64>,
    ) -> Result<ClientView, ClientError> {
        let path = format!("/v1/clients/{}", percent_encode(&meta.client_id)?);
        let bytes = self
            .call_with(Method::PUT, &path, Some(Self::encode(meta)?), revision)
            .await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// `POST /v1/clients/{client_id}/secret`: a new secret for a legacy client, in the
    /// returned view's `client_secret` (shown this once); the old one stops working.
    pub async fn rotate_client_secret(&self, client_id: &str) -> Result<ClientView, ClientError> {
        let path = format!("/v1/clients/{}/secret", percent_encode(client_id)?);
        self.json(Method::POST, &path, None).await
    }

    /// `DELETE /v1/clients/{client_id}` (the client's grants are revoked).
    pub async fn delete_client(&self, client_id: &str) -> Result<(), ClientError> {
        let path = format!("/v1/clients/{}", percent_encode(client_id)?);
        self.call(Method::DELETE, &path, None).await.map(drop)
    }

    /// `POST /v1/users`.
    pub async fn create_user(&self, user: &NewUser) -> Result<UserView, ClientError> {
        self.json(Method::POST, "/v1/users", Some(Self::encode(user)?))
            .await
    }

    /// `GET /v1/users`.
    pub async fn list_users(&self) -> Result<Vec<UserView>, ClientError> {
        let l: UserList = self.json(Method::GET, "/v1/users", None).await?;
        Ok(l.users)
    }

    /// `GET /v1/users/{username}`.
    pub async fn get_user(&self, username: &str) -> Result<UserView, ClientError> {
        let path = format!("/v1/users/{}", percent_encode(username)?);
        self.json(Method::GET, &path, None).await
    }

    /// `DELETE /v1/users/{username}`.
    pub async fn delete_user(&self, username: &str) -> Result<(), ClientError> {
        let path = format!("/v1/users/{}", percent_encode(username)?);
        self.call(Method::DELETE, &path, None).await.map(drop)
    }

    /// `PUT /v1/users/{username}/password`.
    pub async fn set_user_password(
        &self,
        username: &str,
        password: &str,
    ) -> Result<(), ClientError> {
        let path = format!("/v1/users/{}/password", percent_encode(username)?);
        let body = Self::encode(&PasswordChange {
            password: password.to_owned(),
        })?;
        self.call(Method::PUT, &path, Some(body)).await.map(drop)
    }

    /// `PUT /v1/users/{username}/disabled`.
    pub async fn set_user_disabled(
        &self,
        username: &str,
        disabled: bool,
    ) -> Result<UserView, ClientError> {
        let path = format!("/v1/users/{}/disabled", percent_encode(username)?);
        let body = Self::encode(&DisabledChange { disabled })?;
        self.json(Method::PUT, &path, Some(body)).await
    }
}

/// A client id or user name as one path segment: unreserved characters kept, every other
/// byte percent-encoded (client ids may be any printable ASCII, e.g. a SPIFFE ID; user
/// names may be any UTF-8 without control characters).
fn percent_encode(s: &str) -> Result<String, ClientError> {
    if s.is_empty() || s.chars().any(char::is_control) {
        return Err(ClientError::Unnameable(s.to_owned()));
    }
    // `.` and `..` would be path navigation: encode their dots.
    let dots_only = s.bytes().all(|c| c == b'.');
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~') || (b == b'.' && !dots_only)
        {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(percent_encode("agent-a_1.x~").unwrap(), "agent-a_1.x~");
        assert_eq!(
            percent_encode("spiffe://td/a b").unwrap(),
            "spiffe%3A%2F%2Ftd%2Fa%20b"
        );
        // UTF-8 user names, byte by byte.
        assert_eq!(percent_encode("José").unwrap(), "Jos%C3%A9");
        // Dots alone would be path navigation.
        assert_eq!(percent_encode("..").unwrap(), "%2E%2E");
        for bad in ["", "a\nb", "tab\there", "del\u{7f}"] {
            assert!(
                matches!(percent_encode(bad), Err(ClientError::Unnameable(_))),
                "{bad:?}"
            );
        }
    }
}
