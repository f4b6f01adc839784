//! The admin API (JSON over HTTP): registration entries, bundles, OAuth clients and users.
//!
//! Served on a Unix socket (mode 0600: the file permission is the authentication) and,
//! optionally, on an mTLS listener where the caller's X509-SVID must belong to an entry
//! with `admin = true` ([`require_admin`]). Handlers are thin: parse, call the store or
//! the federation, refresh the in-memory caches, answer. See [`crate::api`] for the
//! routes and bodies.

use aims_core::{RegistrationEntry, SpiffeId, TrustDomain};
use aims_store::StoreError;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};

use crate::api::{
    BundleInfo, BundleList, ClientList, ClientMetadata, ClientSecret, ClientView, DisabledChange,
    EntryList, EntrySpec, ErrorBody, KeyList, KeyView, NewUser, PasswordChange, UserList, UserView,
};
use crate::federation::{FederationError, MAX_BUNDLE_BYTES};
use crate::state::AppState;

/// Why an admin request failed. Mapped to a status by one exhaustive `match`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or breaks a rule (400).
    #[error("{0}")]
    InvalidRequest(String),
    /// No such entry or bundle (404).
    #[error("{0}")]
    NotFound(String),
    /// The write clashes with stored state: stale revision, duplicate entry (409).
    #[error("{0}")]
    Conflict(String),
    /// The mTLS caller is not an admin (403).
    #[error("{0}")]
    Forbidden(String),
    /// A dependency is down (503); the cause is logged, not sent.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or corrupt data (500); the cause is logged, not sent.
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            StoreError::Conflict(why) => ApiError::Conflict(why),
            StoreError::Invalid(why) => ApiError::InvalidRequest(why),
            StoreError::Backend(why) => ApiError::Unavailable(why),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<FederationError> for ApiError {
    fn from(e: FederationError) -> Self {
        match e {
            FederationError::Store(s) => s.into(),
            e @ (FederationError::OwnTrustDomain(_) | FederationError::InvalidBundle(_)) => {
                ApiError::InvalidRequest(e.to_string())
            }
            e @ FederationError::NotConfigured(_) => ApiError::NotFound(e.to_string()),
            e @ FederationError::NoBootstrapBundle(_) => ApiError::Conflict(e.to_string()),
            e @ FederationError::Fetch { .. } => ApiError::Unavailable(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, detail) = match self {
            ApiError::InvalidRequest(d) => (StatusCode::BAD_REQUEST, "invalid_request", d),
            ApiError::NotFound(d) => (StatusCode::NOT_FOUND, "not_found", d),
            ApiError::Conflict(d) => (StatusCode::CONFLICT, "conflict", d),
            ApiError::Forbidden(d) => (StatusCode::FORBIDDEN, "forbidden", d),
            ApiError::Unavailable(cause) => {
                tracing::warn!(%cause, "admin request failed: dependency unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the database is unavailable; retry later (the server log has the cause)"
                        .to_owned(),
                )
            }
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "admin request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error (the server log has the cause)".to_owned(),
                )
            }
        };
        let body = ErrorBody {
            error: code.to_owned(),
            detail,
        };
        (status, Json(body)).into_response()
    }
}

/// The peer of an mTLS connection, put into request extensions by the TLS listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerId(pub SpiffeId);

/// The admin routes (no authentication: the Unix socket's mode guards them).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/entries", get(list_entries).post(create_entry))
        .route(
            "/v1/entries/{id}",
            get(get_entry).put(update_entry).delete(delete_entry),
        )
        .route("/v1/bundle", get(own_bundle))
        .route("/v1/bundles", get(list_bundles))
        .route(
            "/v1/bundles/{trust_domain}",
            put(set_bundle).delete(delete_bundle),
        )
        .route("/v1/keys", get(list_keys))
        .route("/v1/clients", get(list_clients).post(create_client))
        .route(
            "/v1/clients/{client_id}",
            get(get_client).put(update_client).delete(delete_client),
        )
        .route("/v1/clients/{client_id}/secret", post(rotate_client_secret))
        .route("/v1/users", get(list_users).post(create_user))
        .route("/v1/users/{username}", get(get_user).delete(delete_user))
        .route("/v1/users/{username}/password", put(set_password))
        .route("/v1/users/{username}/disabled", put(set_disabled))
        .fallback(not_found)
        .with_state(state)
}

/// Middleware of the mTLS listener: the caller's SPIFFE ID must have an entry with
/// `admin = true`.
pub async fn require_admin(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(PeerId(id)) = req.extensions().get::<PeerId>().cloned() else {
        return Err(ApiError::Forbidden(
            "a client X509-SVID is required".to_owned(),
        ));
    };
    if !state.entries.snapshot().is_admin(&id) {
        tracing::warn!(peer = %id, "admin API call refused: no admin entry");
        return Err(ApiError::Forbidden(format!(
            "`{id}` is not an admin: its registration entry needs `admin = true`"
        )));
    }
    Ok(next.run(req).await)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route; the admin API lives under /v1/".to_owned())
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::InvalidRequest(format!("invalid JSON body: {e}")))
}

/// Checks the rules the store does not know: the trust domain.
fn check_entry(state: &AppState, entry: &RegistrationEntry) -> Result<(), ApiError> {
    let td = state.trust_domain();
    if !entry.spiffe_id.is_member_of(td) {
        return Err(ApiError::InvalidRequest(format!(
            "SPIFFE ID `{}` is not in this server's trust domain `{td}`",
            entry.spiffe_id
        )));
    }
    if entry.federates_with.contains(td) {
        return Err(ApiError::InvalidRequest(format!(
            "federates_with names this server's own trust domain `{td}`"
        )));
    }
    entry
        .validate()
        .map_err(|e| ApiError::InvalidRequest(e.to_string()))
}

/// After a write: bring the entry cache up to date (a failure is only logged; the poller
/// catches up).
async fn refresh_entries(state: &AppState) {
    if let Err(e) = state.entries.refresh().await {
        tracing::warn!(error = %e, "entry cache refresh failed after a write");
    }
}

async fn create_entry(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<RegistrationEntry>), ApiError> {
    let spec: EntrySpec = parse_json(&body)?;
    if spec.revision.is_some() {
        return Err(ApiError::InvalidRequest(
            "`revision` is only for updates (PUT /v1/entries/{id})".to_owned(),
        ));
    }
    let entry = spec.into_entry(String::new());
    check_entry(&state, &entry)?;
    let stored = state.store.create_entry(entry, state.clock.now()).await?;
    tracing::info!(id = %stored.id, spiffe_id = %stored.spiffe_id, "entry created");
    refresh_entries(&state).await;
    Ok((StatusCode::CREATED, Json(stored)))
}

async fn list_entries(State(state): State<AppState>) -> Result<Json<EntryList>, ApiError> {
    Ok(Json(EntryList {
        entries: state.store.list_entries().await?,
    }))
}

async fn get_entry(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RegistrationEntry>, ApiError> {
    Ok(Json(state.store.get_entry(&id).await?))
}

async fn update_entry(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<RegistrationEntry>, ApiError> {
    let spec: EntrySpec = parse_json(&body)?;
    let Some(revision) = spec.revision else {
        return Err(ApiError::InvalidRequest(
            "`revision` is required: send the revision you read (GET /v1/entries/{id})".to_owned(),
        ));
    };
    let entry = spec.into_entry(id);
    check_entry(&state, &entry)?;
    let stored = state
        .store
        .update_entry(entry, revision, state.clock.now())
        .await?;
    tracing::info!(id = %stored.id, revision = stored.revision, "entry updated");
    refresh_entries(&state).await;
    Ok(Json(stored))
}

async fn delete_entry(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.store.delete_entry(&id).await?;
    tracing::info!(%id, "entry deleted");
    refresh_entries(&state).await;
    Ok(StatusCode::NO_CONTENT)
}

/// This trust domain's bundle document.
pub(crate) fn own_bundle_json(state: &AppState) -> Result<String, ApiError> {
    let keys = state
        .keys
        .current()
        .ok_or_else(|| ApiError::Unavailable("keys are not loaded yet".to_owned()))?;
    keys.bundle()
        .to_json()
        .map_err(|e| ApiError::Internal(format!("own bundle: {e}")))
}

async fn own_bundle(State(state): State<AppState>) -> Result<Response, ApiError> {
    let json = own_bundle_json(&state)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}

fn parse_td(s: &str) -> Result<TrustDomain, ApiError> {
    TrustDomain::new(s).map_err(|e| ApiError::InvalidRequest(format!("trust domain `{s}`: {e}")))
}

async fn list_bundles(State(state): State<AppState>) -> Result<Json<BundleList>, ApiError> {
    let bundles = state
        .store
        .list_bundles()
        .await?
        .into_iter()
        .map(|r| BundleInfo {
            bundle: serde_json::from_str(&r.bundle_json).unwrap_or(serde_json::Value::Null),
            trust_domain: r.trust_domain,
            sequence: r.sequence,
            refresh_hint: r.refresh_hint,
            endpoint_url: r.endpoint_url,
            updated_at: r.updated_at,
        })
        .collect();
    Ok(Json(BundleList { bundles }))
}

async fn set_bundle(
    State(state): State<AppState>,
    Path(td): Path<String>,
    body: Bytes,
) -> Result<Json<BundleInfo>, ApiError> {
    let td = parse_td(&td)?;
    if body.len() > MAX_BUNDLE_BYTES {
        return Err(ApiError::InvalidRequest(format!(
            "bundle larger than {MAX_BUNDLE_BYTES} bytes"
        )));
    }
    // Keep a configured endpoint URL on a bundle set by hand (bootstrap of https_spiffe).
    let url = state
        .federation
        .configured()
        .iter()
        .find(|p| p.name == td)
        .and_then(|p| p.bundle_endpoint_url.clone());
    let r = state.federation.set(&td, &body, url).await?;
    tracing::info!(trust_domain = %td, sequence = r.sequence, "federated bundle set");
    state
        .tls
        .refresh(&state)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(BundleInfo {
        bundle: parse_json(r.bundle_json.as_bytes())?,
        trust_domain: r.trust_domain,
        sequence: r.sequence,
        refresh_hint: r.refresh_hint,
        endpoint_url: r.endpoint_url,
        updated_at: r.updated_at,
    }))
}

async fn delete_bundle(
    State(state): State<AppState>,
    Path(td): Path<String>,
) -> Result<StatusCode, ApiError> {
    let td = parse_td(&td)?;
    state.federation.delete(&td).await?;
    tracing::info!(trust_domain = %td, "federated bundle deleted");
    // Its CAs leave the TLS trust store now, not at the next sync.
    state
        .tls
        .refresh(&state)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_keys(State(state): State<AppState>) -> Result<Json<KeyList>, ApiError> {
    let keys = state
        .keys
        .current()
        .ok_or_else(|| ApiError::Unavailable("keys are not loaded yet".to_owned()))?;
    let mut out = Vec::new();
    for (kind, infos) in crate::keys::describe(&keys) {
        for i in infos {
            out.push(KeyView {
                kind: kind.to_owned(),
                kid: i.kid,
                state: i.state.as_str().to_owned(),
                not_before: i.not_before,
                not_after: i.not_after,
            });
        }
    }
    Ok(Json(KeyList { keys: out }))
}

/// JWK members that only a private key has.
const PRIVATE_JWK_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

/// Parses and checks a client document with the authorization server's rules, plus the
/// server's own: legacy secrets only when enabled (generated here, or carried over from
/// `stored`), `jwks_uri` per the configuration, public keys only. Returns the
/// document to store and the secret generated, if one was.
fn check_client(
    state: &AppState,
    body: &[u8],
    stored: Option<&ClientMetadata>,
) -> Result<(ClientMetadata, String, Option<ClientSecret>), ApiError> {
    let mut meta: ClientMetadata = parse_json(body)?;
    let cfg = &state.config.oauth;
    if meta.client_secret_hash.is_some() {
        return Err(ApiError::InvalidRequest(
            "client_secret_hash is set by the server: leave it out (the server generates the secret and returns it once)".to_owned(),
        ));
    }
    let mut issued = None;
    if meta.token_endpoint_auth_method.uses_secret() {
        if !cfg.allow_client_secrets {
            return Err(ApiError::InvalidRequest(
                "client secrets are disabled on this server ([oauth] allow_client_secrets = false): register the client's public keys (private_key_jwt) or its SPIFFE ID (spiffe_jwt)".to_owned(),
            ));
        }
        match stored.and_then(|s| s.client_secret_hash.clone()) {
            Some(h) => meta.client_secret_hash = Some(h),
            None => {
                let secret = ClientSecret::generate()
                    .map_err(|e| ApiError::Internal(format!("client secret: {e}")))?;
                meta.client_secret_hash = Some(secret.hash());
                issued = Some(secret);
            }
        }
    }
    if let Some(uri) = &meta.jwks_uri {
        aims_oauth::jwks_uri::check_jwks_uri(uri, cfg.allow_http_jwks_uri)
            .map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    }
    let client = aims_oauth::client::Client::new(meta)
        .map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    let meta = client.metadata().clone();
    if let Some(jwks) = &meta.jwks
        && jwks
            .keys
            .iter()
            .any(|k| PRIVATE_JWK_MEMBERS.iter().any(|m| k.extra.contains_key(*m)))
    {
        return Err(ApiError::InvalidRequest(
            "jwks holds a private key: register only the public keys (drop d, p, q, dp, dq, qi, k)"
                .to_owned(),
        ));
    }
    let doc = serde_json::to_string(&meta)
        .map_err(|e| ApiError::Internal(format!("client document: {e}")))?;
    Ok((meta, doc, issued))
}

/// The stored client as the API shows it: flagged when it uses a secret, without the
/// secret's hash.
fn client_view(r: aims_store::OAuthClientRecord) -> Result<ClientView, ApiError> {
    let mut metadata: ClientMetadata = serde_json::from_str(&r.document)
        .map_err(|e| ApiError::Internal(format!("stored client {}: {e}", r.client_id)))?;
    metadata.client_secret_hash = None;
    Ok(ClientView {
        client_id: r.client_id,
        revision: r.revision,
        created_at: r.created_at,
        updated_at: r.updated_at,
        legacy_secret: metadata.token_endpoint_auth_method.uses_secret(),
        client_secret: None,
        metadata,
    })
}

fn log_secret_issued(meta: &ClientMetadata, issued: Option<&ClientSecret>) {
    if issued.is_some() {
        tracing::warn!(
            client_id = %meta.client_id,
            method = meta.token_endpoint_auth_method.as_str(),
            legacy_secret = true,
            "legacy client secret generated (returned once, stored hashed)"
        );
    }
}

async fn create_client(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<ClientView>), ApiError> {
    let (meta, doc, issued) = check_client(&state, &body, None)?;
    let r = match state
        .store
        .create_client(&meta.client_id, &doc, state.clock.now())
        .await
    {
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::Conflict(format!(
                "client `{}` already exists: change it with PUT /v1/clients/{{client_id}} (`aims client update`)",
                meta.client_id
            )));
        }
        other => other?,
    };
    tracing::info!(client_id = %r.client_id, method = meta.token_endpoint_auth_method.as_str(), "OAuth client created");
    log_secret_issued(&meta, issued.as_ref());
    let mut view = client_view(r)?;
    view.client_secret = issued;
    Ok((StatusCode::CREATED, Json(view)))
}

async fn list_clients(State(state): State<AppState>) -> Result<Json<ClientList>, ApiError> {
    let clients = state
        .store
        .list_clients()
        .await?
        .into_iter()
        .map(client_view)
        .collect::<Result<_, _>>()?;
    Ok(Json(ClientList { clients }))
}

async fn get_client(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
) -> Result<Json<ClientView>, ApiError> {
    client_view(state.store.get_client(&client_id).await?).map(Json)
}

/// `If-Match: "N"` (or `N`) as an expected revision.
fn if_match(headers: &axum::http::HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    v.to_str()
        .ok()
        .map(|s| s.trim().trim_start_matches("W/").trim_matches('"'))
        .and_then(|s| s.parse::<i64>().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::InvalidRequest(
                "If-Match must be the revision read, e.g. If-Match: \"3\"".to_owned(),
            )
        })
}

async fn update_client(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<Json<ClientView>, ApiError> {
    let (stored, read_revision): (Option<ClientMetadata>, Option<i64>) =
        match state.store.get_client(&client_id).await {
            Ok(r) => (serde_json::from_str(&r.document).ok(), Some(r.revision)),
            Err(StoreError::NotFound(_)) => (None, None),
            Err(e) => return Err(e.into()),
        };
    let (meta, doc, issued) = check_client(&state, &body, stored.as_ref())?;
    if meta.client_id != client_id {
        return Err(ApiError::InvalidRequest(format!(
            "the document's client_id `{}` differs from the path's `{client_id}`; a client id cannot change (create a new client instead)",
            meta.client_id
        )));
    }
    // Without If-Match, the revision this handler read: what it carries over from the
    // stored client (the secret's hash) must not overwrite a change made meanwhile (a
    // secret rotated at the same moment would otherwise be undone).
    let revision = if_match(&headers)?.or(read_revision);
    let r = match state
        .store
        .update_client(&client_id, &doc, revision, state.clock.now())
        .await
    {
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::Conflict(format!(
                "client `{client_id}` changed since revision {}: read it again and retry",
                revision.unwrap_or_default()
            )));
        }
        other => other?,
    };
    tracing::info!(client_id = %r.client_id, revision = r.revision, "OAuth client updated");
    log_secret_issued(&meta, issued.as_ref());
    let mut view = client_view(r)?;
    view.client_secret = issued;
    Ok(Json(view))
}

/// `POST /v1/clients/{client_id}/secret`: a new secret for a legacy client, returned
/// once; the old one stops working at once (on other nodes within the client cache's
/// few seconds). Refused for clients that do not use a secret, and while secrets are
/// disabled.
async fn rotate_client_secret(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
) -> Result<Json<ClientView>, ApiError> {
    if !state.config.oauth.allow_client_secrets {
        return Err(ApiError::InvalidRequest(
            "client secrets are disabled on this server ([oauth] allow_client_secrets = false): move the client to private_key_jwt or spiffe_jwt instead of rotating its secret".to_owned(),
        ));
    }
    let stored = state.store.get_client(&client_id).await?;
    let mut meta: ClientMetadata = serde_json::from_str(&stored.document)
        .map_err(|e| ApiError::Internal(format!("stored client {client_id}: {e}")))?;
    if !meta.token_endpoint_auth_method.uses_secret() {
        return Err(ApiError::InvalidRequest(format!(
            "client `{client_id}` authenticates with {}, not a secret: there is nothing to rotate",
            meta.token_endpoint_auth_method.as_str()
        )));
    }
    let secret =
        ClientSecret::generate().map_err(|e| ApiError::Internal(format!("client secret: {e}")))?;
    meta.client_secret_hash = Some(secret.hash());
    let doc = serde_json::to_string(&meta)
        .map_err(|e| ApiError::Internal(format!("client document: {e}")))?;
    let r = match state
        .store
        .update_client(&client_id, &doc, Some(stored.revision), state.clock.now())
        .await
    {
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::Conflict(format!(
                "client `{client_id}` changed while its secret was rotated: retry"
            )));
        }
        other => other?,
    };
    tracing::warn!(
        client_id = %r.client_id,
        revision = r.revision,
        legacy_secret = true,
        "legacy client secret rotated (the new one returned once, stored hashed)"
    );
    let mut view = client_view(r)?;
    view.client_secret = Some(secret);
    Ok(Json(view))
}

async fn delete_client(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let revoked = state.store.delete_client(&client_id).await?;
    tracing::info!(%client_id, revoked_grants = revoked, "OAuth client deleted");
    Ok(StatusCode::NO_CONTENT)
}

// ----- users -----

fn user_view(r: aims_store::UserRecord) -> Result<UserView, ApiError> {
    let attributes = serde_json::from_str(&r.attributes)
        .map_err(|e| ApiError::Internal(format!("stored user {}: {e}", r.username)))?;
    Ok(UserView {
        username: r.username,
        attributes,
        disabled: r.disabled,
        created_at: r.created_at,
        updated_at: r.updated_at,
    })
}

/// argon2id off the async threads.
async fn hash(password: String) -> Result<String, ApiError> {
    let password = zeroize::Zeroizing::new(password);
    tokio::task::spawn_blocking(move || aims_oauth::users::hash_password(&password))
        .await
        .map_err(|e| ApiError::Internal(format!("hashing task: {e}")))?
        .map_err(|e| match e {
            aims_oauth::users::UserError::WeakPassword(_) => {
                ApiError::InvalidRequest(e.to_string())
            }
            other => ApiError::Internal(other.to_string()),
        })
}

async fn create_user(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let new: NewUser = parse_json(&body)?;
    if !new.attributes.is_object() {
        return Err(ApiError::InvalidRequest(
            "attributes must be a JSON object, e.g. {\"name\": \"Alice\"}".to_owned(),
        ));
    }
    let hash = hash(new.password).await?;
    let r = match state
        .store
        .create_user(
            &new.username,
            &hash,
            &new.attributes.to_string(),
            state.clock.now(),
        )
        .await
    {
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::Conflict(format!(
                "user `{}` already exists",
                new.username
            )));
        }
        other => other?,
    };
    tracing::info!(username = %r.username, "user created");
    Ok((StatusCode::CREATED, Json(user_view(r)?)))
}

async fn list_users(State(state): State<AppState>) -> Result<Json<UserList>, ApiError> {
    let users = state
        .store
        .list_users()
        .await?
        .into_iter()
        .map(user_view)
        .collect::<Result<_, _>>()?;
    Ok(Json(UserList { users }))
}

async fn get_user(
    State(state): State<AppState>,
    Path(username): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    user_view(state.store.get_user(&username).await?).map(Json)
}

async fn delete_user(
    State(state): State<AppState>,
    Path(username): Path<String>,
) -> Result<StatusCode, ApiError> {
    let revoked = state.store.delete_user(&username).await?;
    tracing::info!(%username, revoked_grants = revoked, "user deleted");
    Ok(StatusCode::NO_CONTENT)
}

async fn set_password(
    State(state): State<AppState>,
    Path(username): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let change: PasswordChange = parse_json(&body)?;
    let hash = hash(change.password).await?;
    state
        .store
        .set_user_password(&username, &hash, state.clock.now())
        .await?;
    tracing::info!(%username, "user password changed");
    Ok(StatusCode::NO_CONTENT)
}

async fn set_disabled(
    State(state): State<AppState>,
    Path(username): Path<String>,
    body: Bytes,
) -> Result<Json<UserView>, ApiError> {
    let change: DisabledChange = parse_json(&body)?;
    state
        .store
        .set_user_disabled(&username, change.disabled, state.clock.now())
        .await?;
    tracing::info!(%username, disabled = change.disabled, "user disabled flag changed");
    user_view(state.store.get_user(&username).await?).map(Json)
}
