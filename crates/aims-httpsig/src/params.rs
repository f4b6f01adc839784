//! Signature parameters: the covered components and the metadata of one signature
//! (RFC 9421 section 2.3), i.e. one member of `Signature-Input`.

use sfv::{BareItem, FieldType as _, InnerList, Integer, ListEntry, Parameters};

use crate::HttpSigError;
use crate::alg::SignatureAlgorithm;
use crate::component::{ComponentId, key};

/// The most components one signature may cover. Each is computed before the signature
/// can be checked, and some (`@query-param`, `;key`) parse a whole field: without a cap,
/// a few kilobytes of `Signature-Input` make the server do millions of steps for anyone
/// holding a WIT (RFC 9421 section 7.3).
pub const MAX_COVERED_COMPONENTS: usize = 64;

/// The parameters RFC 9421 section 2.3 defines, with their structured-field types.
const INTEGER_PARAMS: [&str; 2] = ["created", "expires"];
const STRING_PARAMS: [&str; 4] = ["nonce", "alg", "keyid", "tag"];

/// The covered components and the signature parameters of one signature.
///
/// Parameters keep their order (the `@signature-params` line repeats them as they
/// appear). `created`, `expires` are integers and `nonce`, `alg`, `keyid`, `tag` strings;
/// a parsed `Signature-Input` with another type is refused. Any other parameter (such as
/// the WIMSE `wimse-aud`) is preserved as received.
#[derive(Debug, Clone, PartialEq)]
pub struct SignatureParams {
    components: Vec<ComponentId>,
    params: Parameters,
}

impl SignatureParams {
    /// Parameters covering `components`, in order, with no metadata yet.
    pub fn new(components: impl IntoIterator<Item = ComponentId>) -> Self {
        Self {
            components: components.into_iter().collect(),
            params: Parameters::new(),
        }
    }

    /// Reads one `Signature-Input` member.
    pub(crate) fn from_inner_list(list: InnerList) -> Result<Self, HttpSigError> {
        if list.items.len() > MAX_COVERED_COMPONENTS {
            return Err(HttpSigError::HeaderTooLarge("signature-input"));
        }
        let components = list
            .items
            .into_iter()
            .map(ComponentId::from_item)
            .collect::<Result<Vec<_>, _>>()?;
        for (k, v) in &list.params {
            let name = k.as_str();
            let ok = if INTEGER_PARAMS.contains(&name) {
                v.as_integer().is_some()
            } else if STRING_PARAMS.contains(&name) {
                v.as_string().is_some()
            } else {
                true
            };
            if !ok {
                return Err(HttpSigError::MalformedParameter(name.to_owned()));
            }
        }
        Ok(Self {
            components,
            params: list.params,
        })
    }

    /// The covered components, in order.
    pub fn components(&self) -> &[ComponentId] {
        &self.components
    }

    /// Whether `component` is covered (compared as [`ComponentId`] equality).
    pub fn covers(&self, component: &ComponentId) -> bool {
        self.components.contains(component)
    }

    /// Sets `created`.
    pub fn with_created(self, t: i64) -> Result<Self, HttpSigError> {
        self.with_integer_param("created", t)
    }

    /// Sets `expires`.
    pub fn with_expires(self, t: i64) -> Result<Self, HttpSigError> {
        self.with_integer_param("expires", t)
    }

    /// Sets `nonce`.
    pub fn with_nonce(self, nonce: &str) -> Result<Self, HttpSigError> {
        self.with_string_param("nonce", nonce)
    }

    /// Sets `alg`.
    pub fn with_alg(self, alg: SignatureAlgorithm) -> Result<Self, HttpSigError> {
        self.with_string_param("alg", alg.name())
    }

    /// Sets `keyid`.
    pub fn with_keyid(self, keyid: &str) -> Result<Self, HttpSigError> {
        self.with_string_param("keyid", keyid)
    }

    /// Sets `tag`.
    pub fn with_tag(self, tag: &str) -> Result<Self, HttpSigError> {
        self.with_string_param("tag", tag)
    }

    /// Sets a string parameter (printable ASCII). Setting an existing parameter
    /// replaces its value in place.
    pub fn with_string_param(mut self, name: &str, value: &str) -> Result<Self, HttpSigError> {
        let v = sfv::String::from_string(value.to_owned())
            .map_err(|_| HttpSigError::MalformedParameter(name.to_owned()))?;
        self.params.insert(key(name)?, BareItem::String(v));
        Ok(self)
    }

    /// Sets an integer parameter (at most 15 digits).
    pub fn with_integer_param(mut self, name: &str, value: i64) -> Result<Self, HttpSigError> {
        let v = Integer::try_from(value)
            .map_err(|_| HttpSigError::MalformedParameter(name.to_owned()))?;
        self.params.insert(key(name)?, BareItem::Integer(v));
        Ok(self)
    }

    /// Sets a boolean parameter (`true` serializes as the bare name).
    pub fn with_boolean_param(mut self, name: &str, value: bool) -> Result<Self, HttpSigError> {
        self.params.insert(key(name)?, BareItem::Boolean(value));
        Ok(self)
    }

    /// `created`, if present.
    pub fn created(&self) -> Option<i64> {
        self.integer_param("created")
    }

    /// `expires`, if present.
    pub fn expires(&self) -> Option<i64> {
        self.integer_param("expires")
    }

    /// `nonce`, if present.
    pub fn nonce(&self) -> Option<&str> {
        self.string_param("nonce")
    }

    /// `alg`, if present (not checked against the algorithms AIMS supports).
    pub fn alg(&self) -> Option<&str> {
        self.string_param("alg")
    }

    /// `keyid`, if present.
    pub fn keyid(&self) -> Option<&str> {
        self.string_param("keyid")
    }

    /// `tag`, if present.
    pub fn tag(&self) -> Option<&str> {
        self.string_param("tag")
    }

    /// Whether the parameter `name` is present, whatever its type.
    pub fn has_param(&self, name: &str) -> bool {
        self.params.contains_key(name)
    }

    /// The parameter `name` if it is a string.
    pub fn string_param(&self, name: &str) -> Option<&str> {
        self.params
            .get(name)
            .and_then(|v| v.as_string())
            .map(|s| s.as_str())
    }

    /// The parameter `name` if it is an integer.
    pub fn integer_param(&self, name: &str) -> Option<i64> {
        self.params
            .get(name)
            .and_then(BareItem::as_integer)
            .map(i64::from)
    }

    /// The parameter `name` if it is a boolean.
    pub fn boolean_param(&self, name: &str) -> Option<bool> {
        self.params.get(name).and_then(BareItem::as_boolean)
    }

    /// The names of every parameter, in order.
    pub fn param_names(&self) -> impl Iterator<Item = &str> {
        self.params.keys().map(|k| k.as_str())
    }

    /// The serialized inner list: the value of the `@signature-params` line and of the
    /// `Signature-Input` member.
    pub fn serialize(&self) -> Result<String, HttpSigError> {
        let list = vec![ListEntry::InnerList(InnerList::with_params(
            self.components.iter().map(|c| c.item().clone()).collect(),
            self.params.clone(),
        ))];
        list.serialize()
            .ok_or(HttpSigError::MalformedHeader("signature-input"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_64_covered_components() {
        let list = |n: usize| {
            let items = (0..n)
                .map(|i| {
                    ComponentId::parse(&format!(r#""@query-param";name="a{i}""#))
                        .unwrap()
                        .item()
                        .clone()
                })
                .collect();
            InnerList::with_params(items, Parameters::new())
        };
        assert_eq!(
            SignatureParams::from_inner_list(list(MAX_COVERED_COMPONENTS))
                .unwrap()
                .components()
                .len(),
            64
        );
        assert_eq!(
            SignatureParams::from_inner_list(list(MAX_COVERED_COMPONENTS + 1)).unwrap_err(),
            HttpSigError::HeaderTooLarge("signature-input")
        );
    }

    #[test]
    fn builds_in_order_and_serializes() {
        let p = SignatureParams::new([
            ComponentId::parse(r#""@method""#).unwrap(),
            ComponentId::parse(r#""@query-param";name="Pet""#).unwrap(),
        ])
        .with_created(1618884473)
        .unwrap()
        .with_keyid("test-key-rsa-pss")
        .unwrap()
        .with_boolean_param("wimse-sign-response", true)
        .unwrap();
        assert_eq!(
            p.serialize().unwrap(),
            r#"("@method" "@query-param";name="Pet");created=1618884473;keyid="test-key-rsa-pss";wimse-sign-response"#
        );
        assert_eq!(p.created(), Some(1618884473));
        assert_eq!(p.keyid(), Some("test-key-rsa-pss"));
        assert_eq!(p.boolean_param("wimse-sign-response"), Some(true));
        assert_eq!(p.nonce(), None);
        assert_eq!(
            p.param_names().collect::<Vec<_>>(),
            ["created", "keyid", "wimse-sign-response"]
        );
        let empty = SignatureParams::new([]);
        assert_eq!(empty.serialize().unwrap(), "()");
    }

    #[test]
    fn refuses_values_that_cannot_be_serialized() {
        let p = SignatureParams::new([]);
        assert!(p.clone().with_nonce("line\nbreak").is_err());
        assert!(p.clone().with_created(i64::MAX).is_err());
        assert!(p.with_string_param("Upper", "x").is_err());
    }
}
