//! OpenID AuthZEN Authorization API 1.0: wire types ([`wire`]) apart from the HTTP
//! transport ([`http`]).

pub mod http;
pub mod wire;

pub use http::{AuthzenConfig, CallerAuthorizer, CallerRejection, RequestId, router};
