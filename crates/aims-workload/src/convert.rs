//! Conversions between AIMS types and Workload API messages.

use std::collections::BTreeMap;
use std::sync::Arc;

use aims_crypto::{Algorithm, Jwks, VerifyingKey};
use aims_jose::{JoseError, KeyResolver};
use aims_pki::SpiffeBundle;
use prost_types::value::Kind;
use serde_json::Value;

/// The key of a trust domain in Workload API maps: its SPIFFE ID, `spiffe://<td>`.
pub(crate) fn td_key(bundle: &SpiffeBundle) -> String {
    bundle.trust_domain().id().into_string()
}

/// Concatenated DER certificates (the Workload API's bundle encoding).
pub(crate) fn x509_der(certs: impl IntoIterator<Item = impl AsRef<[u8]>>) -> Vec<u8> {
    let mut out = Vec::new();
    for c in certs {
        out.extend_from_slice(c.as_ref());
    }
    out
}

/// The JWK Set of a bundle's `wit-svid` keys.
pub(crate) fn wit_jwks(bundle: &SpiffeBundle) -> Result<String, serde_json::Error> {
    serde_json::to_string(&Jwks {
        keys: bundle.wit_authorities().cloned().collect(),
    })
}

/// A JSON object as a `google.protobuf.Struct` (numbers become doubles, as in JSON).
pub(crate) fn to_struct(map: serde_json::Map<String, Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: map
            .into_iter()
            .map(|(k, v)| (k, to_value(v)))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn to_value(v: Value) -> prost_types::Value {
    let kind = match v {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => Kind::StringValue(s),
        Value::Array(a) => Kind::ListValue(prost_types::ListValue {
            values: a.into_iter().map(to_value).collect(),
        }),
        Value::Object(o) => Kind::StructValue(to_struct(o)),
    };
    prost_types::Value { kind: Some(kind) }
}

/// JWT-SVID keys of a set of bundles, looked up by trust domain name and `kid`.
pub(crate) struct BundleKeys(pub(crate) Vec<Arc<SpiffeBundle>>);

impl KeyResolver for BundleKeys {
    fn resolve(
        &self,
        scope: &str,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<VerifyingKey, JoseError> {
        let bundle = self
            .0
            .iter()
            .find(|b| b.trust_domain().as_str() == scope)
            .ok_or(JoseError::UnknownKey)?;
        let kid = kid.ok_or(JoseError::MissingKid)?;
        let key = bundle.jwt_key(kid).ok_or(JoseError::UnknownKey)?;
        if !key.supports(alg) {
            return Err(JoseError::UnknownKey);
        }
        Ok(VerifyingKey::clone(key))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_to_struct() {
        let Value::Object(m) =
            json!({"sub": "spiffe://a/b", "aud": ["x"], "exp": 5, "n": null, "o": {"t": true}})
        else {
            unreachable!()
        };
        let s = to_struct(m);
        assert_eq!(
            s.fields["sub"].kind,
            Some(Kind::StringValue("spiffe://a/b".into()))
        );
        assert_eq!(s.fields["exp"].kind, Some(Kind::NumberValue(5.0)));
        assert_eq!(s.fields["n"].kind, Some(Kind::NullValue(0)));
        let Some(Kind::ListValue(l)) = &s.fields["aud"].kind else {
            unreachable!()
        };
        assert_eq!(l.values.len(), 1);
        let Some(Kind::StructValue(o)) = &s.fields["o"].kind else {
            unreachable!()
        };
        assert_eq!(o.fields["t"].kind, Some(Kind::BoolValue(true)));
    }

    #[test]
    fn der_is_concatenated() {
        let a: Vec<u8> = vec![1, 2];
        let b: Vec<u8> = vec![3];
        assert_eq!(x509_der([&a, &b]), vec![1, 2, 3]);
    }
}
