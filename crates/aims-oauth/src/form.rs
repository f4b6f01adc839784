//! `application/x-www-form-urlencoded` request parameters, with RFC 6749's rules: a
//! parameter sent without a value counts as absent (§3.1), and none may appear twice
//! (§3.1, §3.2).

use std::ops::Range;

use crate::OAuthError;

/// The parsed parameters of one request: every name and value decoded into one buffer,
/// in the order sent, with the empty ones dropped. Requests carry a handful of
/// parameters, so lookups scan; [`MAX_PARAMS`] bounds the scan. `Debug` shows the
/// values of [`SECRET_PARAMS`] as `<redacted>`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Params {
    text: String,
    pairs: Vec<(Range<usize>, Range<usize>)>,
}

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
        for (k, v) in self.iter() {
            if SECRET_PARAMS.contains(&k) {
                m.entry(&k, &"<redacted>");
            } else {
                m.entry(&k, &v);
            }
        }
        m.finish()
    }
}

/// The largest body accepted.
const LIMIT: usize = 64 * 1024;

/// The most parameters one request may carry (OAuth requests send a dozen at most).
pub const MAX_PARAMS: usize = 128;

/// Parameters that may be repeated: RFC 8707 §2 `resource`, RFC 8693 §2.1 `audience`.
const MULTI: [&str; 2] = ["resource", "audience"];

/// The value of one hexadecimal digit.
fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Appends `raw` decoded as in the WHATWG URL standard's
/// `application/x-www-form-urlencoded` parser: `+` is a space, `%XX` a byte, and a `%`
/// not followed by two hexadecimal digits stands for itself.
fn decode_into(mut raw: &[u8], out: &mut Vec<u8>) {
    // Runs without `%` or `+` (all of a base64url assertion or token) are copied whole.
    while let Some(at) = raw.iter().position(|&b| b == b'%' || b == b'+') {
        let (run, rest) = raw.split_at(at);
        out.extend_from_slice(run);
        match rest {
            [b'+', tail @ ..] => {
                out.push(b' ');
                raw = tail;
            }
            [b'%', h, l, tail @ ..] if let (Some(h), Some(l)) = (hex(*h), hex(*l)) => {
                out.push(h << 4 | l);
                raw = tail;
            }
            // `%` without two hexadecimal digits stands for itself.
            [b, tail @ ..] => {
                out.push(*b);
                raw = tail;
            }
            [] => return,
        }
    }
    out.extend_from_slice(raw);
}

impl Params {
    /// Parses a form body (or a query string). Names and values must be UTF-8 once
    /// decoded (RFC 6749 Appendix B); a parameter sent without a value counts as absent
    /// (RFC 6749 §3.1); only the `MULTI` parameters may repeat.
    pub fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        if body.len() > LIMIT {
            return Err(OAuthError::invalid_request("request body too large"));
        }
        let mut text = Vec::with_capacity(body.len());
        let mut pairs: Vec<(Range<usize>, Range<usize>)> = Vec::new();
        for item in body.split(|&b| b == b'&') {
            if item.is_empty() {
                continue;
            }
            let (k, v) = match item.iter().position(|&b| b == b'=') {
                Some(eq) => (&item[..eq], &item[eq + 1..]),
                None => (item, &[][..]),
            };
            if v.is_empty() {
                continue;
            }
            if pairs.len() == MAX_PARAMS {
                return Err(OAuthError::invalid_request(format!(
                    "more than {MAX_PARAMS} parameters"
                )));
            }
            let ks = text.len();
            decode_into(k, &mut text);
            let vs = text.len();
            decode_into(v, &mut text);
            let ve = text.len();
            let (Some(name), Some(value)) = (text.get(ks..vs), text.get(vs..ve)) else {
                continue;
            };
            let (Ok(name), true) = (
                std::str::from_utf8(name),
                std::str::from_utf8(value).is_ok(),
            ) else {
                return Err(OAuthError::invalid_request(
                    "parameter names and values must be UTF-8",
                ));
            };
            if !MULTI.contains(&name)
                && pairs
                    .iter()
                    .any(|(pk, _)| text.get(pk.clone()) == Some(name.as_bytes()))
            {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {name} is repeated"
                )));
            }
            pairs.push((ks..vs, vs..ve));
        }
        let text = String::from_utf8(text)
            .map_err(|_| OAuthError::invalid_request("parameter names and values must be UTF-8"))?;
        Ok(Self { text, pairs })
    }

    /// The parameters in the order sent.
    fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.pairs
            .iter()
            .filter_map(|(k, v)| Some((self.text.get(k.clone())?, self.text.get(v.clone())?)))
    }

    /// A parameter, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    /// Every value of a repeatable parameter (`resource`, `audience`), in the order sent.
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.iter()
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v)
            .collect()
    }

    /// A required parameter.
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("missing parameter {name}")))
    }

    /// Builds parameters from pairs (tests, and requests the server assembles itself).
    /// Empty values are dropped, as [`Params::parse`] does.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut p = Self::default();
        for (k, v) in pairs {
            if v.is_empty() {
                continue;
            }
            let ks = p.text.len();
            p.text.push_str(k);
            let vs = p.text.len();
            p.text.push_str(v);
            p.pairs.push((ks..vs, vs..p.text.len()));
        }
        p
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

    #[test]
    fn decoding_follows_the_form_urlencoded_rules() {
        let p = Params::parse(b"a=x+y%2By&b=%41%4a%zz%4&c%5Fd=%E2%82%AC&&=v&e").unwrap();
        assert_eq!(p.get("a"), Some("x y+y"));
        assert_eq!(p.get("b"), Some("AJ%zz%4"));
        assert_eq!(p.get("c_d"), Some("\u{20ac}"));
        assert_eq!(p.get(""), Some("v"));
        assert_eq!(p.get("e"), None);
        // The names are compared decoded: an escaped repeat is still a repeat.
        let e = Params::parse(b"scope=a&sc%6Fpe=b").unwrap_err();
        assert!(
            e.description.contains("scope is repeated"),
            "{}",
            e.description
        );
    }

    #[test]
    fn invalid_utf8_is_refused_not_replaced() {
        for body in [&b"a=%FF"[..], b"%C3=x", b"a=%E2%82", b"a=\xff"] {
            let e = Params::parse(body).unwrap_err();
            assert_eq!(e.code, crate::ErrorCode::InvalidRequest, "{body:?}");
        }
    }

    #[test]
    fn parameter_count_and_size_are_bounded() {
        let body: Vec<String> = (0..MAX_PARAMS).map(|i| format!("p{i}=v")).collect();
        assert!(Params::parse(body.join("&").as_bytes()).is_ok());
        let body = format!("{}&one=more", body.join("&"));
        let e = Params::parse(body.as_bytes()).unwrap_err();
        assert!(e.description.contains("parameters"), "{}", e.description);
        assert!(Params::parse(&vec![b'a'; LIMIT + 1]).is_err());
    }

    #[test]
    fn repeatable_parameters_keep_their_order_and_from_pairs_matches_parse() {
        let p =
            Params::parse(b"resource=https%3A%2F%2Fb%2F&x=1&resource=https%3A%2F%2Fa%2F").unwrap();
        assert_eq!(p.get_all("resource"), ["https://b/", "https://a/"]);
        assert_eq!(p.get("resource"), Some("https://b/"));
        let q = Params::from_pairs([
            ("resource", "https://b/"),
            ("x", "1"),
            ("empty", ""),
            ("resource", "https://a/"),
        ]);
        assert_eq!(p, q);
    }
}
