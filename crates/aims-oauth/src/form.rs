//! `application/x-www-form-urlencoded` request parameters, with RFC 6749's rules: a
//! parameter sent without a value counts as absent (§3.1), and none may appear twice
//! (§3.1, §3.2).

use std::collections::BTreeMap;

use crate::OAuthError;

/// The parsed parameters of one request. `Debug` shows the values of
/// [`SECRET_PARAMS`] as `<redacted>`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Params(BTreeMap<String, Vec<String>>);

/// Parameters whose values are credentials or grants, never shown by `Debug`.
pub const SECRET_PARAMS: [&str; 10] = [
    "client_secret",
    "client_assertion",
    "assertion",
    "code",
    "code_verifier",
    "refresh_token",
    "token",
    "password",
    "subject_token",
    "actor_token",
];

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in &self.0 {
            if SECRET_PARAMS.contains(&k.as_str()) {
                m.entry(k, &"<redacted>");
            } else {
                m.entry(k, v);
            }
        }
        m.finish()
    }
}

/// The largest body accepted.
const LIMIT: usize = 64 * 1024;

/// Parameters that may be repeated: RFC 8707 §2 `resource`, RFC 8693 §2.1 `audience`.
const MULTI: [&str; 2] = ["resource", "audience"];

impl Params {
    /// Parses a form body (or a query string).
    pub fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        if body.len() > LIMIT {
            return Err(OAuthError::invalid_request("request body too large"));
        }
        let mut map = BTreeMap::new();
        for (k, v) in form_urlencoded::parse(body) {
            if v.is_empty() {
                continue;
            }
            let values: &mut Vec<String> = map.entry(k.to_string()).or_default();
            if !values.is_empty() && !MULTI.contains(&k.as_ref()) {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {k} is repeated"
                )));
            }
            values.push(v.into_owned());
        }
        Ok(Self(map))
    }

    /// A parameter, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.first()).map(String::as_str)
    }

    /// Every value of a repeatable parameter (`resource`, `audience`).
    pub fn get_all(&self, name: &str) -> &[String] {
        self.0.get(name).map(Vec::as_slice).unwrap_or_default()
    }

    /// A required parameter.
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("missing parameter {name}")))
    }

    /// Builds parameters from pairs (tests, and requests the server assembles itself).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self(pairs.into_iter().filter(|(_, v)| !v.is_empty()).fold(
            BTreeMap::new(),
            |mut m: BTreeMap<String, Vec<String>>, (k, v)| {
                m.entry(k.to_owned()).or_default().push(v.to_owned());
                m
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn empty_values_are_absent_and_repeats_refused() {
        let p = Params::parse(b"grant_type=client_credentials&scope=&resource=https%3A%2F%2Fa%2F")
            .unwrap();
        assert_eq!(p.get("grant_type"), Some("client_credentials"));
        assert_eq!(p.get("scope"), None);
        assert_eq!(p.get("resource"), Some("https://a/"));
        let e = Params::parse(b"scope=a&scope=b").unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::InvalidRequest);
        assert!(p.require("code").is_err());
        let p = Params::parse(b"resource=https%3A%2F%2Fa%2F&resource=https%3A%2F%2Fb%2F").unwrap();
        assert_eq!(p.get_all("resource").len(), 2);
    }

    #[test]
    fn debug_redacts_credentials() {
        let p =
            Params::parse(b"client_id=legacy&client_secret=s3cr3t-value&code=c0de-value").unwrap();
        let d = format!("{p:?}");
        assert!(d.contains("legacy"), "{d}");
        assert!(!d.contains("s3cr3t") && !d.contains("c0de"), "{d}");
    }
}
