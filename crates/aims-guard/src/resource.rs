//! RFC 9728 OAuth 2.0 Protected Resource Metadata: the document, its well-known URL
//! and an axum route serving it.
//!
//! - **Well-known URL** (RFC 9728 section 3.1): `/.well-known/oauth-protected-resource`
//!   inserted between the host and the path of the resource identifier, a terminating
//!   `/` removed first: `https://rs.example/api/v1` →
//!   `https://rs.example/.well-known/oauth-protected-resource/api/v1`.
//! - **`resource`** is the identifier exactly as configured (section 3.3: clients
//!   compare it with the identifier they built the URL from).
//! - **Identifier rules**: `https` (plain `http` only for loopback hosts, for local
//!   development), a host, no fragment (section 1.2); AIMS also refuses a query
//!   component (the RFC discourages it) so the well-known path is a plain route.

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::get;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use serde::Serialize;

/// The well-known path segment of RFC 9728.
pub const WELL_KNOWN_PROTECTED_RESOURCE: &str = "/.well-known/oauth-protected-resource";

/// Why a resource identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a resource identifier (https URL with a host, no query, no fragment)")]
pub struct ResourceError(pub String);

/// `(origin, path)` of a resource identifier, path without its terminating `/`.
fn split(resource: &str) -> Result<(String, String), ResourceError> {
    let err = || ResourceError(resource.to_owned());
    let url = crate::fetch::check_url(resource).map_err(|_| err())?;
    if url.query().is_some() || resource.contains(['?', '#', '{', '}', '"', '\\']) {
        return Err(err());
    }
    let origin = url.origin().ascii_serialization();
    // The path as written (after the authority), so the served route is exactly the
    // one the identifier names.
    let after_scheme = resource.split_once("://").map(|(_, r)| r).ok_or_else(err)?;
    let path = after_scheme
        .find('/')
        .map_or("", |i| after_scheme.get(i..).unwrap_or(""));
    Ok((origin, path.trim_end_matches('/').to_owned()))
}

/// The RFC 9728 metadata URL of `resource`.
pub fn protected_resource_metadata_url(resource: &str) -> Result<String, ResourceError> {
    let (origin, path) = split(resource)?;
    Ok(format!("{origin}{WELL_KNOWN_PROTECTED_RESOURCE}{path}"))
}

/// An RFC 9728 protected resource metadata document. Create it with
/// [`ProtectedResourceMetadata::new`] (which checks the identifier), then set the
/// optional members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ProtectedResourceMetadata {
    resource: String,
    /// Issuer identifiers of the authorization servers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub authorization_servers: Vec<String>,
    /// The resource's own JWKS (for signed responses), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// Scopes used in authorization requests for this resource.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    /// How bearer tokens may be sent: AIMS reads only `header`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bearer_methods_supported: Vec<String>,
    /// JWS algorithms of the resource's signed content.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resource_signing_alg_values_supported: Vec<String>,
    /// Human-readable name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    /// Developer documentation URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_documentation: Option<String>,
    /// Policy URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_policy_uri: Option<String>,
    /// Terms of service URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_tos_uri: Option<String>,
    /// Whether RFC 8705 certificate-bound tokens are supported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_certificate_bound_access_tokens: Option<bool>,
    /// RFC 9396 authorization details types understood.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub authorization_details_types_supported: Vec<String>,
    /// DPoP proof algorithms accepted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dpop_signing_alg_values_supported: Vec<String>,
    /// Whether every token must be DPoP-bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dpop_bound_access_tokens_required: Option<bool>,
}

impl ProtectedResourceMetadata {
    /// Metadata for the resource identified by `resource`, with
    /// `bearer_methods_supported: ["header"]` and the DPoP algorithms the guard accepts.
    pub fn new(resource: impl Into<String>) -> Result<Self, ResourceError> {
        let resource = resource.into();
        split(&resource)?;
        Ok(Self {
            resource,
            authorization_servers: Vec::new(),
            jwks_uri: None,
            scopes_supported: Vec::new(),
            bearer_methods_supported: vec!["header".to_owned()],
            resource_signing_alg_values_supported: Vec::new(),
            resource_name: None,
            resource_documentation: None,
            resource_policy_uri: None,
            resource_tos_uri: None,
            tls_client_certificate_bound_access_tokens: None,
            authorization_details_types_supported: Vec::new(),
            dpop_signing_alg_values_supported: aims_jose::dpop::DEFAULT_ALGORITHMS
                .iter()
                .map(|a| a.name().to_owned())
                .collect(),
            dpop_bound_access_tokens_required: None,
        })
    }

    /// The resource identifier.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The metadata URL (for `resource_metadata` in challenges).
    pub fn well_known_url(&self) -> String {
        protected_resource_metadata_url(&self.resource).unwrap_or_default()
    }

    /// The path the document is served at.
    pub fn well_known_path(&self) -> String {
        let path = split(&self.resource).map(|(_, p)| p).unwrap_or_default();
        format!("{WELL_KNOWN_PROTECTED_RESOURCE}{path}")
    }

    /// A router serving the document (`GET`, `application/json`) at
    /// [`ProtectedResourceMetadata::well_known_path`]; merge it into the service's
    /// router, outside any [`crate::GuardLayer`].
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        let body = serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"));
        Router::new().route(
            &self.well_known_path(),
            get(move || {
                let body = body.clone();
                async move {
                    (
                        [
                            (CONTENT_TYPE, "application/json"),
                            (CACHE_CONTROL, "max-age=3600"),
                        ],
                        body,
                    )
                        .into_response()
                }
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_urls() {
        let u = |r| protected_resource_metadata_url(r).unwrap();
        assert_eq!(
            u("https://ex.com/public/mcp"),
            "https://ex.com/.well-known/oauth-protected-resource/public/mcp"
        );
        assert_eq!(
            u("https://ex.com"),
            "https://ex.com/.well-known/oauth-protected-resource"
        );
        assert_eq!(
            u("https://ex.com/"),
            "https://ex.com/.well-known/oauth-protected-resource"
        );
        assert_eq!(
            u("https://ex.com:8443/a/"),
            "https://ex.com:8443/.well-known/oauth-protected-resource/a"
        );
        assert!(protected_resource_metadata_url("https://ex.com/a?b=c").is_err());
        assert!(protected_resource_metadata_url("https://ex.com/a#f").is_err());
        assert!(protected_resource_metadata_url("http://ex.com/a").is_err());
        let m = ProtectedResourceMetadata::new("https://ex.com/api/").unwrap();
        assert_eq!(m.resource(), "https://ex.com/api/");
        assert_eq!(
            m.well_known_path(),
            "/.well-known/oauth-protected-resource/api"
        );
    }
}
