//! Authorization server metadata (RFC 8414), also served as the OpenID discovery alias.

use serde::Serialize;

use crate::Issuer;
use crate::client::{AuthMethod, GrantType};

/// Endpoint paths under the issuer.
pub mod paths {
    /// RFC 6749 §3.1.
    pub const AUTHORIZE: &str = "/oauth/authorize";
    /// RFC 6749 §3.2.
    pub const TOKEN: &str = "/oauth/token";
    /// RFC 9126.
    pub const PAR: &str = "/oauth/par";
    /// RFC 7662.
    pub const INTROSPECT: &str = "/oauth/introspect";
    /// RFC 7009.
    pub const REVOKE: &str = "/oauth/revoke";
    /// RFC 7517 key set of the token-signing keys.
    pub const JWKS: &str = "/oauth/jwks";
}

/// The metadata document. Every URL derives from the one issuer string, so it is
/// byte-identical wherever it appears.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerMetadata {
    /// RFC 8414 §2 `issuer`.
    pub issuer: String,
    /// Always published (RFC 8414 §2 makes it required when any grant uses it).
    pub authorization_endpoint: String,
    /// Token endpoint.
    pub token_endpoint: String,
    /// JWKS.
    pub jwks_uri: String,
    /// RFC 9126.
    pub pushed_authorization_request_endpoint: String,
    /// RFC 9126.
    pub require_pushed_authorization_requests: bool,
    /// RFC 7662.
    pub introspection_endpoint: String,
    /// RFC 7009.
    pub revocation_endpoint: String,
    /// Only the code flow.
    pub response_types_supported: Vec<&'static str>,
    /// Only query responses (RFC 8414 §2; the default would also claim `fragment`).
    pub response_modes_supported: Vec<&'static str>,
    /// Grant types.
    pub grant_types_supported: Vec<&'static str>,
    /// Client authentication methods, also used for introspection and revocation.
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    /// Algorithms for private_key_jwt and JWT-SVID assertions.
    pub token_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    /// RFC 7662 / RFC 8414.
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    /// RFC 7009 / RFC 8414.
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    /// RFC 7636: S256 only (plain is refused).
    pub code_challenge_methods_supported: Vec<&'static str>,
    /// RFC 9207.
    pub authorization_response_iss_parameter_supported: bool,
    /// RFC 9449.
    pub dpop_signing_alg_values_supported: Vec<&'static str>,
    /// RFC 8705.
    pub tls_client_certificate_bound_access_tokens: bool,
    /// RFC 9396.
    pub authorization_details_types_supported: Vec<String>,
    /// RFC 9701.
    pub introspection_signing_alg_values_supported: Vec<&'static str>,
    /// Scopes the server knows of.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    /// RFC 8705 §5: where the endpoints are served with mutual TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtls_endpoint_aliases: Option<MtlsEndpointAliases>,
}

/// RFC 8705 §5 `mtls_endpoint_aliases`: the endpoints that accept client certificates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MtlsEndpointAliases {
    /// Token endpoint.
    pub token_endpoint: String,
    /// RFC 7662.
    pub introspection_endpoint: String,
    /// RFC 7009.
    pub revocation_endpoint: String,
    /// RFC 9126.
    pub pushed_authorization_request_endpoint: String,
}

impl MtlsEndpointAliases {
    /// The aliases under `base` (the mTLS listener's URL, parsed like an issuer).
    pub fn new(base: &Issuer) -> Self {
        Self {
            token_endpoint: base.endpoint(paths::TOKEN),
            introspection_endpoint: base.endpoint(paths::INTROSPECT),
            revocation_endpoint: base.endpoint(paths::REVOKE),
            pushed_authorization_request_endpoint: base.endpoint(paths::PAR),
        }
    }
}

/// Algorithms accepted for client assertions and DPoP proofs.
pub const ASSERTION_ALGS: [&str; 9] = [
    "ES256", "ES384", "ES512", "EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384",
];

impl ServerMetadata {
    /// The metadata of `issuer`.
    pub fn new(
        issuer: &Issuer,
        auth_methods: &[AuthMethod],
        grant_types: &[GrantType],
        token_signing_alg: &'static str,
        authorization_details_types: Vec<String>,
        scopes: Vec<String>,
    ) -> Self {
        let methods: Vec<&'static str> = auth_methods.iter().map(|m| m.as_str()).collect();
        Self {
            issuer: issuer.as_str().to_owned(),
            authorization_endpoint: issuer.endpoint(paths::AUTHORIZE),
            token_endpoint: issuer.endpoint(paths::TOKEN),
            jwks_uri: issuer.endpoint(paths::JWKS),
            pushed_authorization_request_endpoint: issuer.endpoint(paths::PAR),
            require_pushed_authorization_requests: false,
            introspection_endpoint: issuer.endpoint(paths::INTROSPECT),
            revocation_endpoint: issuer.endpoint(paths::REVOKE),
            response_types_supported: vec!["code"],
            response_modes_supported: vec!["query"],
            grant_types_supported: grant_types.iter().map(|g| g.as_str()).collect(),
            token_endpoint_auth_methods_supported: methods.clone(),
            token_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGS.to_vec(),
            introspection_endpoint_auth_methods_supported: methods.clone(),
            revocation_endpoint_auth_methods_supported: methods,
            code_challenge_methods_supported: vec!["S256"],
            authorization_response_iss_parameter_supported: true,
            // Exactly what the token endpoint's DPoP validator accepts.
            dpop_signing_alg_values_supported: aims_jose::dpop::DEFAULT_ALGORITHMS
                .iter()
                .map(|a| a.name())
                .collect(),
            tls_client_certificate_bound_access_tokens: true,
            authorization_details_types_supported: authorization_details_types,
            introspection_signing_alg_values_supported: vec![token_signing_alg],
            scopes_supported: scopes,
            mtls_endpoint_aliases: None,
        }
    }
}
