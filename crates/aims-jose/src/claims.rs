//! Claim value types shared by profiles.

use serde::{Deserialize, Serialize};

/// The `aud` claim: one string or an array of strings (RFC 7519 section 4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `aud` contains `value` (exact string comparison).
    pub fn contains(&self, value: &str) -> bool {
        match self {
            Audience::One(a) => a == value,
            Audience::Many(v) => v.iter().any(|a| a == value),
        }
    }
    /// Whether any of `accepted` is in `aud`.
    pub fn contains_any(&self, accepted: &[String]) -> bool {
        accepted.iter().any(|a| self.contains(a))
    }
    /// Iterates the audiences.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let s: &[String] = match self {
            Audience::One(a) => std::slice::from_ref(a),
            Audience::Many(v) => v,
        };
        s.iter().map(String::as_str)
    }
    /// Number of audiences.
    pub fn len(&self) -> usize {
        match self {
            Audience::One(_) => 1,
            Audience::Many(v) => v.len(),
        }
    }
    /// Whether there is no audience (an empty array).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<&str> for Audience {
    fn from(s: &str) -> Self {
        Audience::One(s.to_owned())
    }
}

/// Claim extraction with precise errors, for profiles that parse the payload once into
/// a map, take the members they know ([`JoseError::MissingClaim`] when absent,
/// [`JoseError::InvalidClaim`] when of the wrong JSON type) and keep the rest as `extra`.
pub(crate) mod take {
    use std::fmt;

    use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
    use serde_json::{Map, Value};

    use super::Audience;
    use crate::JoseError;

    /// Parses a JWT Claims Set: a JSON object whose member names are unique. RFC 7519
    /// section 4 lets a parser either reject duplicates or keep the last one; keeping
    /// the last one lets two parsers disagree on a token, so duplicates are rejected.
    pub(crate) fn claims_set(payload: &[u8]) -> Result<Map<String, Value>, JoseError> {
        let parsed: UniqueObject = serde_json::from_slice(payload)
            .map_err(|_| JoseError::Malformed("claims are not a valid JSON object"))?;
        if parsed.duplicate {
            return Err(JoseError::Malformed("duplicate claim name"));
        }
        Ok(parsed.map)
    }

    /// Parses a JOSE Header the same way: RFC 7515 section 4 leaves the choice, and a
    /// header read two ways (`typ` once `JWT`, once `at+jwt`) is as dangerous as claims.
    pub(crate) fn header(bytes: &[u8]) -> Result<Map<String, Value>, JoseError> {
        let parsed: UniqueObject = serde_json::from_slice(bytes)
            .map_err(|_| JoseError::Malformed("header is not a JSON object"))?;
        if parsed.duplicate {
            return Err(JoseError::Malformed("duplicate header parameter name"));
        }
        Ok(parsed.map)
    }

    struct UniqueObject {
        map: Map<String, Value>,
        duplicate: bool,
    }

    impl<'de> Deserialize<'de> for UniqueObject {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = UniqueObject;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<UniqueObject, A::Error> {
                    let mut out = UniqueObject {
                        map: Map::new(),
                        duplicate: false,
                    };
                    while let Some(k) = a.next_key::<String>()? {
                        if out.map.contains_key(&k) {
                            out.duplicate = true;
                            a.next_value::<IgnoredAny>()?;
                        } else {
                            let v: Value = a.next_value()?;
                            out.map.insert(k, v);
                        }
                    }
                    Ok(out)
                }
            }
            d.deserialize_map(V)
        }
    }

    /// Fails with [`JoseError::MissingClaim`] if `v` is `None`.
    pub(crate) fn required<T>(v: Option<T>, name: &'static str) -> Result<T, JoseError> {
        v.ok_or(JoseError::MissingClaim(name))
    }

    /// Removes `name`; it must be a JSON string.
    pub(crate) fn string(
        m: &mut Map<String, Value>,
        name: &'static str,
    ) -> Result<Option<String>, JoseError> {
        match m.remove(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(JoseError::InvalidClaim {
                claim: name,
                reason: "must be a string",
            }),
        }
    }

    /// Removes `name`; it must be a non-empty JSON string.
    pub(crate) fn non_empty_string(
        m: &mut Map<String, Value>,
        name: &'static str,
    ) -> Result<Option<String>, JoseError> {
        match string(m, name)? {
            Some(s) if s.is_empty() => Err(JoseError::InvalidClaim {
                claim: name,
                reason: "must not be empty",
            }),
            other => Ok(other),
        }
    }

    /// Removes `name`; it must be a NumericDate (RFC 7519 section 2): a JSON number of
    /// seconds. A fractional value is rounded down; values outside `i64` are refused.
    pub(crate) fn numeric_date(
        m: &mut Map<String, Value>,
        name: &'static str,
    ) -> Result<Option<i64>, JoseError> {
        let Some(v) = m.remove(name) else {
            return Ok(None);
        };
        numeric_date_value(&v)
            .map(Some)
            .ok_or(JoseError::InvalidClaim {
                claim: name,
                reason: "must be a NumericDate",
            })
    }

    /// The NumericDate value of `v`, if it is one.
    pub(crate) fn numeric_date_value(v: &Value) -> Option<i64> {
        let n = v.as_number()?;
        if let Some(i) = n.as_i64() {
            return Some(i);
        }
        if n.is_u64() {
            return None;
        }
        let f = n.as_f64()?.floor();
        // i64::MIN is exactly representable; i64::MAX rounds up to 2^63, hence `<`.
        let in_range = f.is_finite() && f >= i64::MIN as f64 && f < i64::MAX as f64;
        in_range.then_some(f as i64)
    }

    /// Removes `aud`: a string or an array of strings (RFC 7519 section 4.1.3).
    pub(crate) fn audience(m: &mut Map<String, Value>) -> Result<Option<Audience>, JoseError> {
        let bad = JoseError::InvalidClaim {
            claim: "aud",
            reason: "must be a string or an array of strings",
        };
        match m.remove("aud") {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(Audience::One(s))),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(bad.clone()),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|v| Some(Audience::Many(v))),
            Some(_) => Err(bad),
        }
    }

    /// Removes `name`; it must be a JSON object.
    pub(crate) fn object(
        m: &mut Map<String, Value>,
        name: &'static str,
    ) -> Result<Option<Map<String, Value>>, JoseError> {
        match m.remove(name) {
            None => Ok(None),
            Some(Value::Object(o)) => Ok(Some(o)),
            Some(_) => Err(JoseError::InvalidClaim {
                claim: name,
                reason: "must be a JSON object",
            }),
        }
    }

    /// Removes `name`; it must be an array of strings.
    pub(crate) fn string_array(
        m: &mut Map<String, Value>,
        name: &'static str,
    ) -> Result<Option<Vec<String>>, JoseError> {
        match m.remove(name) {
            None => Ok(None),
            Some(v) => string_array_value(v)
                .map(Some)
                .ok_or(JoseError::InvalidClaim {
                    claim: name,
                    reason: "must be an array of strings",
                }),
        }
    }

    /// Before signing: `extra` must not repeat a claim the profile's struct has a field
    /// for, or the serialized claims would carry that name twice.
    pub(crate) fn no_shadowing(extra: &Map<String, Value>, own: &[&str]) -> Result<(), JoseError> {
        if own.iter().any(|n| extra.contains_key(*n)) {
            Err(JoseError::InvalidClaim {
                claim: "extra",
                reason: "repeats a claim that has its own field",
            })
        } else {
            Ok(())
        }
    }

    /// Signs arbitrary header and claims JSON, for tests that need a token which is
    /// valid except for exactly one thing.
    #[cfg(test)]
    pub(crate) fn sign_raw(
        header: &Value,
        claims: &Value,
        signer: &dyn aims_crypto::Signer,
    ) -> String {
        sign_text(&header.to_string(), &claims.to_string(), signer)
    }

    /// As [`sign_raw`], from JSON text (which may repeat a member name).
    #[cfg(test)]
    pub(crate) fn sign_text(
        header: &str,
        claims: &str,
        signer: &dyn aims_crypto::Signer,
    ) -> String {
        use aims_crypto::b64;
        let mut out = b64::encode_url(header);
        out.push('.');
        out.push_str(&b64::encode_url(claims));
        let sig = signer.sign(out.as_bytes()).unwrap();
        out.push('.');
        out.push_str(&b64::encode_url(sig));
        out
    }

    /// `v` as an array of strings, if it is one.
    pub(crate) fn string_array_value(v: Value) -> Option<Vec<String>> {
        let Value::Array(items) = v else {
            return None;
        };
        items
            .into_iter()
            .map(|i| match i {
                Value::String(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn duplicates_are_rejected_at_top_level() {
            assert_eq!(
                claims_set(br#"{"a":1,"b":2,"a":3}"#).unwrap_err(),
                JoseError::Malformed("duplicate claim name")
            );
            assert!(claims_set(br#"{"a":{"x":1},"b":{"x":2}}"#).is_ok());
            assert!(matches!(claims_set(b"[1]"), Err(JoseError::Malformed(_))));
            assert!(matches!(claims_set(b"{} x"), Err(JoseError::Malformed(_))));
        }

        #[test]
        fn numeric_dates() {
            let v = |s: &str| numeric_date_value(&serde_json::from_str(s).unwrap());
            assert_eq!(v("1700000000"), Some(1_700_000_000));
            assert_eq!(v("-5"), Some(-5));
            assert_eq!(v("1700000000.9"), Some(1_700_000_000));
            assert_eq!(v("1e300"), None);
            assert_eq!(v("18446744073709551615"), None);
            assert_eq!(v("\"1700000000\""), None);
        }

        #[test]
        fn typed_members() {
            let mut m =
                claims_set(br#"{"s":"x","e":"","n":5,"a":["p",1],"o":{},"l":["q"]}"#).unwrap();
            assert_eq!(string(&mut m, "s").unwrap().as_deref(), Some("x"));
            assert!(matches!(
                non_empty_string(&mut m, "e"),
                Err(JoseError::InvalidClaim { claim: "e", .. })
            ));
            assert!(matches!(
                string(&mut m, "n"),
                Err(JoseError::InvalidClaim { claim: "n", .. })
            ));
            assert!(matches!(
                string_array(&mut m, "a"),
                Err(JoseError::InvalidClaim { claim: "a", .. })
            ));
            assert!(object(&mut m, "o").unwrap().is_some());
            assert_eq!(
                string_array(&mut m, "l").unwrap(),
                Some(vec!["q".to_owned()])
            );
            assert_eq!(string(&mut m, "missing").unwrap(), None);
            assert_eq!(
                required::<()>(None, "x").unwrap_err(),
                JoseError::MissingClaim("x")
            );
            assert!(m.is_empty());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn aud_forms() {
        let one: Audience = serde_json::from_str(r#""a""#).unwrap();
        let many: Audience = serde_json::from_str(r#"["a","b"]"#).unwrap();
        assert!(one.contains("a") && !one.contains("b"));
        assert!(many.contains("b") && many.len() == 2);
        assert!(serde_json::from_str::<Audience>("5").is_err());
        let empty: Audience = serde_json::from_str("[]").unwrap();
        assert!(empty.is_empty());
    }
}
