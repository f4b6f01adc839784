//! Component identifiers (RFC 9421 section 2): a derived component (`@method`, ...) or
//! a header field name, with parameters.

use sfv::{BareItem, FieldType as _, Item, Key, Parser, Version};

use crate::HttpSigError;
use crate::query::form_encode;

/// Derived components (RFC 9421 section 2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DerivedComponent {
    /// `@method` (section 2.2.1).
    Method,
    /// `@target-uri` (section 2.2.2).
    TargetUri,
    /// `@authority` (section 2.2.3).
    Authority,
    /// `@scheme` (section 2.2.4).
    Scheme,
    /// `@request-target` (section 2.2.5).
    RequestTarget,
    /// `@path` (section 2.2.6).
    Path,
    /// `@query` (section 2.2.7).
    Query,
    /// `@query-param` (section 2.2.8); needs the `name` parameter.
    QueryParam,
    /// `@status` (section 2.2.9); responses only.
    Status,
}

impl DerivedComponent {
    /// Every derived component, in RFC order.
    pub const ALL: [DerivedComponent; 9] = [
        DerivedComponent::Method,
        DerivedComponent::TargetUri,
        DerivedComponent::Authority,
        DerivedComponent::Scheme,
        DerivedComponent::RequestTarget,
        DerivedComponent::Path,
        DerivedComponent::Query,
        DerivedComponent::QueryParam,
        DerivedComponent::Status,
    ];

    /// The component name, with its `@`.
    pub fn name(self) -> &'static str {
        match self {
            DerivedComponent::Method => "@method",
            DerivedComponent::TargetUri => "@target-uri",
            DerivedComponent::Authority => "@authority",
            DerivedComponent::Scheme => "@scheme",
            DerivedComponent::RequestTarget => "@request-target",
            DerivedComponent::Path => "@path",
            DerivedComponent::Query => "@query",
            DerivedComponent::QueryParam => "@query-param",
            DerivedComponent::Status => "@status",
        }
    }

    /// The derived component called `name` (exact, lower case).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }
}

/// What a component identifier points at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Target {
    Derived(DerivedComponent),
    /// A lower-case field name.
    Field(String),
}

/// One covered component: a string item naming a derived component or a field, with
/// the parameters of RFC 9421 section 2.1 (`sf`, `key`, `bs`, `tr`), section 2.2.8
/// (`name`) and section 2.4 (`req`).
///
/// The identifier keeps the exact structured-field item it was parsed from (parameter
/// order included), because the signature base repeats it verbatim. Any other parameter
/// is refused ([`HttpSigError::UnsupportedComponentParameter`]): ignoring one would make
/// signer and verifier compute different values.
///
/// Two identifiers are equal when they name the same value (same target and parameters,
/// in any order).
#[derive(Debug, Clone)]
pub struct ComponentId {
    item: Item,
    target: Target,
    sf: bool,
    bs: bool,
    req: bool,
    tr: bool,
    key: Option<String>,
    name: Option<String>,
}

impl PartialEq for ComponentId {
    fn eq(&self, other: &Self) -> bool {
        self.target == other.target
            && self.sf == other.sf
            && self.bs == other.bs
            && self.req == other.req
            && self.tr == other.tr
            && self.key == other.key
            && self.name == other.name
    }
}

impl Eq for ComponentId {}

fn sf_string(s: &str) -> Result<BareItem, HttpSigError> {
    sfv::String::from_string(s.to_owned())
        .map(BareItem::String)
        .map_err(|_| HttpSigError::InvalidComponent {
            component: truncate(s),
            reason: "not printable ASCII",
        })
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

fn invalid(item: &Item, reason: &'static str) -> HttpSigError {
    HttpSigError::InvalidComponent {
        component: truncate(&item.serialize()),
        reason,
    }
}

impl ComponentId {
    /// Parses one component identifier in its structured-field form, e.g. `"@method"`,
    /// `"content-type"`, `"@query-param";name="Pet"` or `"@method";req`.
    pub fn parse(s: &str) -> Result<Self, HttpSigError> {
        let item: Item = Parser::new(s)
            .with_version(Version::Rfc8941)
            .parse()
            .map_err(|_| HttpSigError::InvalidComponent {
                component: truncate(s),
                reason: "not a structured-field item",
            })?;
        Self::from_item(item)
    }

    /// A derived component without parameters. `@query-param` needs a name: use
    /// [`ComponentId::query_param`].
    pub fn derived(component: DerivedComponent) -> Result<Self, HttpSigError> {
        Self::from_item(Item::new(sf_string(component.name())?))
    }

    /// A header field (the name is lower-cased).
    pub fn field(name: &str) -> Result<Self, HttpSigError> {
        Self::from_item(Item::new(sf_string(&name.to_ascii_lowercase())?))
    }

    /// `@query-param` for the (decoded) parameter `name`; the identifier carries it
    /// encoded as RFC 9421 section 2.2.8 requires.
    pub fn query_param(name: &str) -> Result<Self, HttpSigError> {
        let mut item = Item::new(sf_string(DerivedComponent::QueryParam.name())?);
        item.params
            .insert(key("name")?, sf_string(&form_encode(name.as_bytes()))?);
        Self::from_item(item)
    }

    /// The same component taken from the related request (`;req`, section 2.4).
    pub fn with_req(self) -> Result<Self, HttpSigError> {
        self.with_param("req", BareItem::Boolean(true))
    }

    /// The field re-serialized as a structured field (`;sf`, section 2.1.1).
    pub fn with_sf(self) -> Result<Self, HttpSigError> {
        self.with_param("sf", BareItem::Boolean(true))
    }

    /// Each field line wrapped as a byte sequence (`;bs`, section 2.1.3).
    pub fn with_bs(self) -> Result<Self, HttpSigError> {
        self.with_param("bs", BareItem::Boolean(true))
    }

    /// The field taken from the trailers (`;tr`, section 2.1.4).
    pub fn with_tr(self) -> Result<Self, HttpSigError> {
        self.with_param("tr", BareItem::Boolean(true))
    }

    /// One member of a dictionary field (`;key="..."`, section 2.1.2).
    pub fn with_key(self, member: &str) -> Result<Self, HttpSigError> {
        let v = sf_string(member)?;
        self.with_param("key", v)
    }

    fn with_param(self, name: &str, value: BareItem) -> Result<Self, HttpSigError> {
        let mut item = self.item;
        item.params.insert(key(name)?, value);
        Self::from_item(item)
    }

    /// Validates a parsed item.
    pub(crate) fn from_item(item: Item) -> Result<Self, HttpSigError> {
        let Some(name) = item.bare_item.as_string().map(|s| s.as_str().to_owned()) else {
            return Err(invalid(&item, "not a string"));
        };
        if name.is_empty() {
            return Err(invalid(&item, "empty name"));
        }
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(invalid(&item, "names must be lower case"));
        }
        let target = if name == "@signature-params" {
            return Err(invalid(&item, "@signature-params cannot be covered"));
        } else if name.starts_with('@') {
            Target::Derived(
                DerivedComponent::from_name(&name)
                    .ok_or_else(|| invalid(&item, "unknown derived component"))?,
            )
        } else {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(invalid(&item, "not a valid field name"));
            }
            Target::Field(name)
        };

        let (mut sf, mut bs, mut req, mut tr) = (false, false, false, false);
        let (mut member, mut qname) = (None, None);
        for (k, v) in &item.params {
            match k.as_str() {
                flag @ ("sf" | "bs" | "req" | "tr") => {
                    if v.as_boolean() != Some(true) {
                        return Err(invalid(&item, "flag parameters must be true"));
                    }
                    match flag {
                        "sf" => sf = true,
                        "bs" => bs = true,
                        "req" => req = true,
                        _ => tr = true,
                    }
                }
                s @ ("key" | "name") => {
                    let Some(v) = v.as_string() else {
                        return Err(invalid(&item, "`key` and `name` must be strings"));
                    };
                    if s == "key" {
                        member = Some(v.as_str().to_owned());
                    } else {
                        qname = Some(v.as_str().to_owned());
                    }
                }
                other => {
                    return Err(HttpSigError::UnsupportedComponentParameter(truncate(other)));
                }
            }
        }
        match &target {
            Target::Derived(d) => {
                if sf || bs || tr || member.is_some() {
                    return Err(invalid(
                        &item,
                        "derived components take only `req` (and `name` for @query-param)",
                    ));
                }
                match (d, &qname) {
                    (DerivedComponent::QueryParam, None) => {
                        return Err(invalid(&item, "@query-param needs `name`"));
                    }
                    (DerivedComponent::QueryParam, Some(_)) | (_, None) => {}
                    (_, Some(_)) => {
                        return Err(invalid(&item, "`name` is only for @query-param"));
                    }
                }
            }
            Target::Field(_) => {
                if qname.is_some() {
                    return Err(invalid(&item, "`name` is only for @query-param"));
                }
                if bs && (sf || member.is_some()) {
                    return Err(invalid(&item, "`bs` cannot be combined with `sf` or `key`"));
                }
            }
        }
        Ok(Self {
            item,
            target,
            sf,
            bs,
            req,
            tr,
            key: member,
            name: qname,
        })
    }

    pub(crate) fn item(&self) -> &Item {
        &self.item
    }

    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    /// The derived component, if this is one.
    pub fn derived_component(&self) -> Option<DerivedComponent> {
        match self.target {
            Target::Derived(d) => Some(d),
            Target::Field(_) => None,
        }
    }

    /// The (lower-case) field name, if this is a field.
    pub fn field_name(&self) -> Option<&str> {
        match &self.target {
            Target::Field(f) => Some(f),
            Target::Derived(_) => None,
        }
    }

    /// `;req`: taken from the related request.
    pub fn is_req(&self) -> bool {
        self.req
    }

    /// `;sf`: re-serialized as a structured field.
    pub fn is_sf(&self) -> bool {
        self.sf
    }

    /// `;bs`: byte-sequence wrapped.
    pub fn is_bs(&self) -> bool {
        self.bs
    }

    /// `;tr`: taken from the trailers.
    pub fn is_tr(&self) -> bool {
        self.tr
    }

    /// `;key`: the dictionary member.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// `;name`: the encoded query parameter name.
    pub fn query_name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Whether this is exactly `name` (a derived component or field) with no parameter
    /// other than, if `req`, `;req`.
    pub fn is_plain(&self, name: &str, req: bool) -> bool {
        let matches = match &self.target {
            Target::Derived(d) => d.name() == name,
            Target::Field(f) => f == name,
        };
        matches
            && self.req == req
            && !self.sf
            && !self.bs
            && !self.tr
            && self.key.is_none()
            && self.name.is_none()
    }
}

impl std::fmt::Display for ComponentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.item.serialize())
    }
}

pub(crate) fn key(name: &str) -> Result<Key, HttpSigError> {
    Key::from_string(name.to_owned()).map_err(|_| HttpSigError::MalformedParameter(truncate(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_reserializes_verbatim() {
        for s in [
            r#""@method""#,
            r#""content-type""#,
            r#""@query-param";name="Pet""#,
            r#""@method";req"#,
            r#""example-dict";key="a";sf"#,
            r#""example-dict";sf;key="a""#,
            r#""set-cookie";bs"#,
            r#""expires";tr"#,
        ] {
            assert_eq!(ComponentId::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn parameter_order_does_not_change_identity() {
        assert_eq!(
            ComponentId::parse(r#""x";key="a";sf"#).unwrap(),
            ComponentId::parse(r#""x";sf;key="a""#).unwrap()
        );
        assert_ne!(
            ComponentId::parse(r#""x";sf"#).unwrap(),
            ComponentId::parse(r#""x""#).unwrap()
        );
    }

    #[test]
    fn refuses_unknown_and_misplaced_parameters() {
        assert_eq!(
            ComponentId::parse(r#""content-type";foo"#).unwrap_err(),
            HttpSigError::UnsupportedComponentParameter("foo".into())
        );
        for bad in [
            r#""@method";sf"#,
            r#""@method";key="a""#,
            r#""@method";bs"#,
            r#""@method";tr"#,
            r#""@query-param""#,
            r#""@path";name="x""#,
            r#""content-type";name="x""#,
            r#""x";bs;sf"#,
            r#""x";bs;key="a""#,
            r#""x";sf=?0"#,
            r#""x";req=1"#,
            r#""x";key=a"#,
            r#""@signature-params""#,
            r#""@unknown""#,
            r#""Content-Type""#,
            r#""""#,
            r#""bad name""#,
            "content-type",
            "1",
            "(\"a\")",
        ] {
            assert!(
                matches!(
                    ComponentId::parse(bad),
                    Err(HttpSigError::InvalidComponent { .. })
                ),
                "{bad}: {:?}",
                ComponentId::parse(bad)
            );
        }
    }

    #[test]
    fn constructors() {
        assert_eq!(
            ComponentId::field("Content-Type").unwrap().to_string(),
            r#""content-type""#
        );
        assert_eq!(
            ComponentId::derived(DerivedComponent::Method)
                .unwrap()
                .with_req()
                .unwrap()
                .to_string(),
            r#""@method";req"#
        );
        assert_eq!(
            ComponentId::query_param("fa\u{e7}ade\": ")
                .unwrap()
                .to_string(),
            r#""@query-param";name="fa%C3%A7ade%22%3A%20""#
        );
        assert!(ComponentId::derived(DerivedComponent::QueryParam).is_err());
        assert_eq!(
            ComponentId::field("example-dict")
                .unwrap()
                .with_key("a")
                .unwrap()
                .with_sf()
                .unwrap()
                .to_string(),
            r#""example-dict";key="a";sf"#
        );
        assert!(
            ComponentId::field("x")
                .unwrap()
                .with_bs()
                .unwrap()
                .with_sf()
                .is_err()
        );
        let c = ComponentId::parse(r#""@method";req"#).unwrap();
        assert!(c.is_plain("@method", true));
        assert!(!c.is_plain("@method", false));
        assert_eq!(c.derived_component(), Some(DerivedComponent::Method));
    }
}
