//! The signature base (RFC 9421 section 2.5) and component values (sections 2.1, 2.2).

use std::collections::HashMap;

use aims_crypto::b64;
use sfv::{Dictionary, FieldType as _, Item, List, ListEntry, Parser, Version};

use crate::HttpSigError;
use crate::component::{ComponentId, DerivedComponent, Target};
use crate::message::{Message, RequestMessage};
use crate::params::SignatureParams;
use crate::query::query_param_values;

/// The structured-field type of a header field (RFC 8941 section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SfType {
    /// An Item.
    Item,
    /// A List.
    List,
    /// A Dictionary.
    Dictionary,
}

/// Which header fields are structured fields, and of which type: needed for `;sf`
/// (RFC 9421 section 2.1.1), which re-serializes a field only if its type is known.
///
/// The default knows the structured fields AIMS meets: `signature`, `signature-input`,
/// `accept-signature` (RFC 9421), `content-digest`, `repr-digest`, `want-content-digest`,
/// `want-repr-digest` (RFC 9530), `priority` (RFC 9218), `cdn-cache-control` (RFC 9213)
/// as dictionaries; `cache-status` (RFC 9211), `proxy-status` (RFC 9209) as lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldTypes {
    types: HashMap<String, SfType>,
}

impl Default for FieldTypes {
    fn default() -> Self {
        let mut types = HashMap::new();
        for d in [
            "accept-signature",
            "cdn-cache-control",
            "content-digest",
            "priority",
            "repr-digest",
            "signature",
            "signature-input",
            "want-content-digest",
            "want-repr-digest",
        ] {
            types.insert(d.to_owned(), SfType::Dictionary);
        }
        for l in ["cache-status", "proxy-status"] {
            types.insert(l.to_owned(), SfType::List);
        }
        Self { types }
    }
}

impl FieldTypes {
    /// No structured fields known.
    pub fn none() -> Self {
        Self {
            types: HashMap::new(),
        }
    }

    /// Declares `name` (any case) a structured field of type `ty`.
    pub fn with(mut self, name: &str, ty: SfType) -> Self {
        self.types.insert(name.to_ascii_lowercase(), ty);
        self
    }

    /// The type of `name` (lower case), if known.
    pub fn get(&self, name: &str) -> Option<SfType> {
        self.types.get(name).copied()
    }
}

/// Builds the signature base of `message` for `params` (RFC 9421 section 2.5): one line
/// `<component identifier>: <value>` per covered component, in order, then the
/// `"@signature-params"` line, with no final newline.
///
/// Fails if a component is covered twice, is absent from the message, or has no valid
/// value (see [`HttpSigError`]). The base is US-ASCII.
pub fn signature_base(
    message: &Message<'_>,
    params: &SignatureParams,
    field_types: &FieldTypes,
) -> Result<String, HttpSigError> {
    let components = params.components();
    let mut base = String::new();
    for (i, c) in components.iter().enumerate() {
        if components.iter().take(i).any(|earlier| earlier == c) {
            return Err(HttpSigError::DuplicateComponent(c.to_string()));
        }
        let value = component_value(message, c, field_types)?;
        base.push_str(&c.to_string());
        base.push_str(": ");
        base.push_str(&value);
        base.push('\n');
    }
    base.push_str("\"@signature-params\": ");
    base.push_str(&params.serialize()?);
    Ok(base)
}

/// The value of one component (no identifier, no newline).
pub fn component_value(
    message: &Message<'_>,
    component: &ComponentId,
    field_types: &FieldTypes,
) -> Result<String, HttpSigError> {
    let message = if component.is_req() {
        match message {
            Message::Response(r) => Message::Request(
                r.request()
                    .ok_or_else(|| HttpSigError::MissingComponent(component.to_string()))?,
            ),
            Message::Request(_) => {
                return Err(HttpSigError::InvalidComponent {
                    component: component.to_string(),
                    reason: "`req` applies only to responses",
                });
            }
        }
    } else {
        *message
    };
    let value = match component.target() {
        Target::Derived(d) => derived_value(&message, *d, component)?,
        Target::Field(name) => field_value(&message, name, component, field_types)?,
    };
    if !is_field_text(value.as_bytes()) {
        return Err(value_error(component, "not visible ASCII (use `bs`)"));
    }
    Ok(value)
}

/// Visible ASCII, space and horizontal tab: the only bytes a base line can hold.
fn is_field_text(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
}

fn value_error(c: &ComponentId, reason: &'static str) -> HttpSigError {
    HttpSigError::ComponentValue {
        component: c.to_string(),
        reason,
    }
}

fn request_of<'a>(
    message: &Message<'a>,
    c: &ComponentId,
) -> Result<RequestMessage<'a>, HttpSigError> {
    match message {
        Message::Request(r) => Ok(*r),
        Message::Response(_) => Err(value_error(
            c,
            "a request component on a response needs `req`",
        )),
    }
}

fn derived_value(
    message: &Message<'_>,
    d: DerivedComponent,
    c: &ComponentId,
) -> Result<String, HttpSigError> {
    if d == DerivedComponent::Status {
        return match message {
            Message::Response(r) => Ok(r.status().as_str().to_owned()),
            Message::Request(_) => Err(value_error(c, "@status applies only to responses")),
        };
    }
    let r = request_of(message, c)?;
    Ok(match d {
        DerivedComponent::Method => r.method().as_str().to_owned(),
        DerivedComponent::TargetUri => r.target_uri()?,
        DerivedComponent::Authority => r.authority()?,
        DerivedComponent::Scheme => r
            .scheme()
            .ok_or_else(|| value_error(c, "the scheme is unknown"))?,
        DerivedComponent::RequestTarget => r.request_target()?,
        DerivedComponent::Path => r.path().to_owned(),
        DerivedComponent::Query => format!("?{}", r.query().unwrap_or("")),
        DerivedComponent::QueryParam => {
            let name = c
                .query_name()
                .ok_or_else(|| value_error(c, "@query-param needs `name`"))?;
            let mut values = query_param_values(r.query().unwrap_or(""), name).into_iter();
            let value = values
                .next()
                .ok_or_else(|| HttpSigError::MissingComponent(c.to_string()))?;
            if values.next().is_some() {
                // Which occurrence was meant is ambiguous; cover `@query` instead.
                return Err(value_error(c, "the query parameter occurs more than once"));
            }
            value
        }
        // Handled above.
        DerivedComponent::Status => {
            return Err(value_error(c, "@status applies only to responses"));
        }
    })
}

/// Strips leading and trailing spaces and tabs (RFC 9421 section 2.1, step 3).
fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| !matches!(b, b' ' | b'\t'));
    let end = v.iter().rposition(|b| !matches!(b, b' ' | b'\t'));
    match (start, end) {
        (Some(s), Some(e)) => v.get(s..=e).unwrap_or_default(),
        _ => &[],
    }
}

fn field_value(
    message: &Message<'_>,
    name: &str,
    c: &ComponentId,
    field_types: &FieldTypes,
) -> Result<String, HttpSigError> {
    let fields = if c.is_tr() {
        message
            .trailers()
            .ok_or_else(|| HttpSigError::MissingComponent(c.to_string()))?
    } else {
        message.headers()
    };
    let lines: Vec<&[u8]> = fields
        .get_all(name)
        .iter()
        .map(|v| trim_ows(v.as_bytes()))
        .collect();
    if lines.is_empty() {
        return Err(HttpSigError::MissingComponent(c.to_string()));
    }
    if c.is_bs() {
        // Section 2.1.3: each field line separately, as a byte sequence.
        return Ok(lines
            .iter()
            .map(|l| format!(":{}:", b64::encode_std(l)))
            .collect::<Vec<_>>()
            .join(", "));
    }
    let combined = lines.join(&b", "[..]);
    if !is_field_text(&combined) {
        return Err(value_error(c, "not visible ASCII (use `bs`)"));
    }
    let combined =
        String::from_utf8(combined).map_err(|_| value_error(c, "not visible ASCII (use `bs`)"))?;
    if let Some(member) = c.key() {
        // Section 2.1.2: the field is a dictionary; sign one member, re-serialized.
        let dict: Dictionary = Parser::new(&combined)
            .parse()
            .map_err(|_| value_error(c, "the field is not a dictionary"))?;
        let entry = dict
            .get(member)
            .ok_or_else(|| HttpSigError::MissingComponent(c.to_string()))?;
        return serialize_entry(entry).ok_or_else(|| value_error(c, "cannot serialize"));
    }
    if c.is_sf() {
        // Section 2.1.1: parse as the field's known type and re-serialize.
        let ty = field_types
            .get(name)
            .ok_or_else(|| value_error(c, "not a known structured field"))?;
        let bad = || value_error(c, "not a valid structured field of its type");
        let parser = Parser::new(&combined).with_version(Version::Rfc9651);
        return match ty {
            SfType::Item => parser
                .parse::<Item>()
                .map(|i| i.serialize())
                .map_err(|_| bad()),
            SfType::List => parser
                .parse::<List>()
                .map_err(|_| bad())?
                .serialize()
                .ok_or_else(bad),
            SfType::Dictionary => parser
                .parse::<Dictionary>()
                .map_err(|_| bad())?
                .serialize()
                .ok_or_else(bad),
        };
    }
    Ok(combined)
}

fn serialize_entry(entry: &ListEntry) -> Option<String> {
    match entry {
        ListEntry::Item(item) => Some(item.serialize()),
        ListEntry::InnerList(_) => vec![entry.clone()].serialize(),
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, Method, StatusCode, Uri};

    use super::*;
    use crate::message::ResponseMessage;

    fn value(msg: &Message<'_>, c: &str) -> Result<String, HttpSigError> {
        component_value(
            msg,
            &ComponentId::parse(c).unwrap(),
            &FieldTypes::default().with("example-dict", SfType::Dictionary),
        )
    }

    // RFC 9421 section 2.2 examples: POST /path?param=value HTTP/1.1, Host: www.example.com.
    #[test]
    fn rfc9421_section_2_2_derived_components() {
        let mut h = HeaderMap::new();
        h.insert("host", "www.example.com".parse().unwrap());
        let u: Uri = "/path?param=value".parse().unwrap();
        let r = RequestMessage::new(&Method::POST, &u, &h).with_scheme("https");
        let m = Message::Request(r);
        assert_eq!(value(&m, r#""@method""#).unwrap(), "POST");
        assert_eq!(
            value(&m, r#""@target-uri""#).unwrap(),
            "https://www.example.com/path?param=value"
        );
        assert_eq!(value(&m, r#""@authority""#).unwrap(), "www.example.com");
        assert_eq!(value(&m, r#""@scheme""#).unwrap(), "https");
        assert_eq!(
            value(&m, r#""@request-target""#).unwrap(),
            "/path?param=value"
        );
        assert_eq!(value(&m, r#""@path""#).unwrap(), "/path");
        assert_eq!(value(&m, r#""@query""#).unwrap(), "?param=value");
        assert_eq!(
            value(&m, r#""@query-param";name="param""#).unwrap(),
            "value"
        );
        assert!(matches!(
            value(&m, r#""@status""#),
            Err(HttpSigError::ComponentValue { .. })
        ));
        assert_eq!(
            value(&m, r#""@query-param";name="nope""#).unwrap_err(),
            HttpSigError::MissingComponent(r#""@query-param";name="nope""#.into())
        );
        // @query without a query is a lone "?" (section 2.2.7).
        let u: Uri = "/path".parse().unwrap();
        let m = Message::Request(RequestMessage::new(&Method::GET, &u, &h));
        assert_eq!(value(&m, r#""@query""#).unwrap(), "?");
        // Section 2.2.7 example keeps the encoding as received.
        let u: Uri = "/path?param=value&foo=bar&baz=bat%2Dman".parse().unwrap();
        let m = Message::Request(RequestMessage::new(&Method::GET, &u, &h));
        assert_eq!(
            value(&m, r#""@query""#).unwrap(),
            "?param=value&foo=bar&baz=bat%2Dman"
        );
        // A repeated query parameter is ambiguous.
        let u: Uri = "/p?a=1&a=2".parse().unwrap();
        let m = Message::Request(RequestMessage::new(&Method::GET, &u, &h));
        assert!(matches!(
            value(&m, r#""@query-param";name="a""#),
            Err(HttpSigError::ComponentValue { .. })
        ));
    }

    // RFC 9421 section 2.1 examples.
    #[test]
    fn rfc9421_section_2_1_fields() {
        let mut h = HeaderMap::new();
        h.insert("host", "www.example.com".parse().unwrap());
        h.insert(
            "x-ows-header",
            "   Leading and trailing whitespace.   ".parse().unwrap(),
        );
        h.append(
            "x-obs-fold-header",
            "Obsolete line folding.".parse().unwrap(),
        );
        h.insert("cache-control", "max-age=60".parse().unwrap());
        h.append("cache-control", "   must-revalidate".parse().unwrap());
        h.insert(
            "example-dict",
            " a=1,    b=2;x=1;y=2,   c=(a   b   c)".parse().unwrap(),
        );
        h.insert("x-empty-header", "".parse().unwrap());
        let u: Uri = "/".parse().unwrap();
        let m = Message::Request(RequestMessage::new(&Method::GET, &u, &h));
        assert_eq!(
            value(&m, r#""x-ows-header""#).unwrap(),
            "Leading and trailing whitespace."
        );
        assert_eq!(
            value(&m, r#""cache-control""#).unwrap(),
            "max-age=60, must-revalidate"
        );
        assert_eq!(value(&m, r#""x-empty-header""#).unwrap(), "");
        assert_eq!(
            value(&m, r#""example-dict""#).unwrap(),
            "a=1,    b=2;x=1;y=2,   c=(a   b   c)"
        );
        assert_eq!(
            value(&m, r#""example-dict";sf"#).unwrap(),
            "a=1, b=2;x=1;y=2, c=(a b c)"
        );
        // Section 2.1.2.
        assert_eq!(value(&m, r#""example-dict";key="a""#).unwrap(), "1");
        assert_eq!(value(&m, r#""example-dict";key="b""#).unwrap(), "2;x=1;y=2");
        assert_eq!(value(&m, r#""example-dict";key="c""#).unwrap(), "(a b c)");
        assert_eq!(
            value(&m, r#""example-dict";key="d""#).unwrap_err(),
            HttpSigError::MissingComponent(r#""example-dict";key="d""#.into())
        );
        assert!(matches!(
            value(&m, r#""cache-control";sf"#),
            Err(HttpSigError::ComponentValue { .. })
        ));
        assert_eq!(
            value(&m, r#""x-missing""#).unwrap_err(),
            HttpSigError::MissingComponent(r#""x-missing""#.into())
        );
        assert!(matches!(
            value(&m, r#""x-ows-header";tr"#),
            Err(HttpSigError::MissingComponent(_))
        ));
    }

    // RFC 9421 section 2.1.3 example.
    #[test]
    fn rfc9421_section_2_1_3_byte_sequences() {
        let mut h = HeaderMap::new();
        h.append("example-header", "value, with, lots".parse().unwrap());
        h.append("example-header", "of, commas".parse().unwrap());
        let u: Uri = "/".parse().unwrap();
        let m = Message::Request(RequestMessage::new(&Method::GET, &u, &h));
        assert_eq!(
            value(&m, r#""example-header""#).unwrap(),
            "value, with, lots, of, commas"
        );
        assert_eq!(
            value(&m, r#""example-header";bs"#).unwrap(),
            ":dmFsdWUsIHdpdGgsIGxvdHM=:, :b2YsIGNvbW1hcw==:"
        );
        // Non-ASCII needs `bs`.
        let mut h = HeaderMap::new();
        h.insert(
            "x-latin1",
            http::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
        );
        let m = Message::Request(RequestMessage::new(&Method::GET, &u, &h));
        assert!(matches!(
            value(&m, r#""x-latin1""#),
            Err(HttpSigError::ComponentValue { .. })
        ));
        assert_eq!(value(&m, r#""x-latin1";bs"#).unwrap(), ":Y2Fm6Q==:");
    }

    #[test]
    fn req_and_trailers() {
        let mut rh = HeaderMap::new();
        rh.insert("host", "example.com".parse().unwrap());
        let u: Uri = "/foo?x=1".parse().unwrap();
        let request = RequestMessage::new(&Method::POST, &u, &rh);
        let mut h = HeaderMap::new();
        h.insert("content-type", "text/plain".parse().unwrap());
        let mut t = HeaderMap::new();
        t.insert("expires", "Wed, 9 Nov 2022 07:28:00 GMT".parse().unwrap());
        let resp = ResponseMessage::new(StatusCode::OK, &h).with_trailers(&t);
        let m = Message::Response(resp);
        // Without the related request, `;req` is missing.
        assert!(matches!(
            value(&m, r#""@method";req"#),
            Err(HttpSigError::MissingComponent(_))
        ));
        let m = Message::Response(resp.with_request(request));
        assert_eq!(value(&m, r#""@status""#).unwrap(), "200");
        assert_eq!(value(&m, r#""@method";req"#).unwrap(), "POST");
        assert_eq!(value(&m, r#""@request-target";req"#).unwrap(), "/foo?x=1");
        assert_eq!(value(&m, r#""host";req"#).unwrap(), "example.com");
        assert!(matches!(
            value(&m, r#""@method""#),
            Err(HttpSigError::ComponentValue { .. })
        ));
        assert_eq!(
            value(&m, r#""expires";tr"#).unwrap(),
            "Wed, 9 Nov 2022 07:28:00 GMT"
        );
        // `;req` on a request is invalid.
        let m = Message::Request(request);
        assert!(matches!(
            value(&m, r#""@method";req"#),
            Err(HttpSigError::InvalidComponent { .. })
        ));
    }

    #[test]
    fn duplicate_components_are_refused() {
        let h = HeaderMap::new();
        let u: Uri = "/".parse().unwrap();
        let m = Message::Request(RequestMessage::new(&Method::GET, &u, &h));
        let p = SignatureParams::new([
            ComponentId::parse(r#""@method""#).unwrap(),
            ComponentId::parse(r#""@method""#).unwrap(),
        ]);
        assert_eq!(
            signature_base(&m, &p, &FieldTypes::default()).unwrap_err(),
            HttpSigError::DuplicateComponent(r#""@method""#.into())
        );
    }
}
