//! The authorization server's issuer identifier (RFC 8414 §2).

use std::fmt;

/// An issuer identifier: an `https` URL with no query or fragment (RFC 8414 §2), or an
/// `http` URL on a loopback host for development. It appears byte-identical in the
/// metadata, in every token's `iss`, in authorization responses (RFC 9207) and as the
/// only accepted client-assertion audience (rfc7523bis), so it is kept exactly as
/// configured, never normalised.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Issuer(String);

/// Why a string is not an issuer identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid issuer {0:?}: {1}")]
pub struct IssuerError(String, &'static str);

impl Issuer {
    /// Parses an issuer identifier.
    pub fn parse(s: &str) -> Result<Self, IssuerError> {
        let bad = |why| Err(IssuerError(s.to_owned(), why));
        let (scheme, rest) = match s.split_once("://") {
            Some(x) => x,
            None => return bad("must be an absolute https URL"),
        };
        if s.contains(['?', '#']) {
            return bad("must not have a query or fragment");
        }
        if s.bytes().any(|b| !b.is_ascii_graphic()) {
            return bad("must be printable ASCII without spaces");
        }
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() || authority.contains('@') {
            return bad("must have a host and no user information");
        }
        let host = match authority.rsplit_once(':') {
            Some((h, port)) if !h.ends_with(']') || authority.starts_with('[') => {
                if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
                    h
                } else if authority.starts_with('[') && authority.ends_with(']') {
                    authority
                } else {
                    return bad("has an invalid port");
                }
            }
            _ => authority,
        };
        match scheme {
            "https" => {}
            "http" if is_loopback(host) => {}
            "http" => return bad("must use https (http only on a loopback host)"),
            _ => return bad("must be an https URL"),
        }
        Ok(Self(s.to_owned()))
    }

    /// The identifier as configured.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An endpoint URL under the issuer: the issuer with `path` appended.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.0.trim_end_matches('/'), path)
    }

    /// The RFC 8414 §3 metadata URL: `/.well-known/oauth-authorization-server` inserted
    /// between the host and the issuer's path.
    pub fn metadata_url(&self) -> String {
        well_known(&self.0, "oauth-authorization-server")
    }

    /// The well-known path (RFC 8414 §3.1) at which this issuer's metadata is served:
    /// `/.well-known/oauth-authorization-server` plus the issuer's own path, if any.
    pub fn metadata_path(&self) -> String {
        let path = path_of(&self.0);
        format!(
            "/.well-known/oauth-authorization-server{}",
            path.trim_end_matches('/')
        )
    }
}

fn path_of(url: &str) -> &str {
    let after = url.split_once("://").map(|x| x.1).unwrap_or(url);
    after.find('/').map(|i| &after[i..]).unwrap_or("")
}

fn well_known(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    format!(
        "{scheme}://{authority}/.well-known/{name}{}",
        path.trim_end_matches('/')
    )
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|a| a.is_loopback())
}

impl fmt::Display for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn accepts_https_and_loopback_http() {
        for s in [
            "https://as.example.org",
            "https://as.example.org/tenant/a",
            "https://as.example.org:8443",
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://aims.localhost:8080",
            "http://[::1]:8080",
        ] {
            assert_eq!(Issuer::parse(s).unwrap().as_str(), s);
        }
    }

    #[test]
    fn refuses_what_rfc8414_forbids() {
        for s in [
            "as.example.org",
            "https://as.example.org/?x=1",
            "https://as.example.org/#f",
            "http://as.example.org",
            "ftp://as.example.org",
            "https://user@as.example.org",
            "https://",
            "https://as.example.org:port",
            "https://as example.org",
        ] {
            assert!(Issuer::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn metadata_url_inserts_the_well_known_segment_before_the_path() {
        let i = Issuer::parse("https://as.example.org/tenant/a").unwrap();
        assert_eq!(
            i.metadata_url(),
            "https://as.example.org/.well-known/oauth-authorization-server/tenant/a"
        );
        assert_eq!(
            i.metadata_path(),
            "/.well-known/oauth-authorization-server/tenant/a"
        );
        let i = Issuer::parse("https://as.example.org").unwrap();
        assert_eq!(
            i.metadata_url(),
            "https://as.example.org/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            i.endpoint("/oauth/token"),
            "https://as.example.org/oauth/token"
        );
    }
}
