//! Rich authorization requests (RFC 9396): the types this server knows, each with a
//! small schema (required and allowed members), checked on every request.

use std::collections::BTreeMap;

use aims_jose::access_token::{AuthorizationDetail, parse_authorization_details};
use serde::{Deserialize, Serialize};

use crate::{ErrorCode, OAuthError};

/// The schema of one `authorization_details` type.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RarType {
    /// Members every entry of this type must carry (besides `type`).
    #[serde(default)]
    pub required: Vec<String>,
    /// Type-specific members allowed besides the common ones (`locations`, `actions`,
    /// `datatypes`, `identifier`, `privileges`); `None` allows any.
    #[serde(default)]
    pub allowed: Option<Vec<String>>,
    /// Allowed values of `actions`; `None` allows any.
    #[serde(default)]
    pub actions: Option<Vec<String>>,
}

/// The types the server accepts, by name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RarTypes(BTreeMap<String, RarType>);

const MAX_ENTRIES: usize = 32;

impl RarTypes {
    /// Types and their schemas.
    pub fn new(types: BTreeMap<String, RarType>) -> Self {
        Self(types)
    }

    /// The type names (for `authorization_details_types_supported`).
    pub fn names(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    /// Parses and checks a request's `authorization_details` for a client allowed
    /// `client_types`.
    pub fn parse(
        &self,
        param: Option<&str>,
        client_types: &[String],
    ) -> Result<Option<Vec<AuthorizationDetail>>, OAuthError> {
        let Some(param) = param else {
            return Ok(None);
        };
        let bad = |m: String| OAuthError::new(ErrorCode::InvalidAuthorizationDetails, m);
        let value: serde_json::Value =
            serde_json::from_str(param).map_err(|e| bad(format!("not JSON: {e}")))?;
        let details = parse_authorization_details(value).map_err(|e| bad(e.to_string()))?;
        if details.is_empty() || details.len() > MAX_ENTRIES {
            return Err(bad(format!("1 to {MAX_ENTRIES} entries")));
        }
        for d in &details {
            let schema = self
                .0
                .get(&d.type_)
                .ok_or_else(|| bad(format!("unknown type {}", d.type_)))?;
            if !client_types.contains(&d.type_) {
                return Err(bad(format!(
                    "type {} is not allowed for this client",
                    d.type_
                )));
            }
            for r in &schema.required {
                let present = match r.as_str() {
                    "locations" => d.locations.is_some(),
                    "actions" => d.actions.is_some(),
                    "datatypes" => d.datatypes.is_some(),
                    "identifier" => d.identifier.is_some(),
                    "privileges" => d.privileges.is_some(),
                    other => d.extra.contains_key(other),
                };
                if !present {
                    return Err(bad(format!("type {} requires {r}", d.type_)));
                }
            }
            if let Some(allowed) = &schema.allowed
                && let Some(extra) = d.extra.keys().find(|k| !allowed.contains(k))
            {
                return Err(bad(format!("type {} does not allow {extra}", d.type_)));
            }
            if let (Some(allowed), Some(actions)) = (&schema.actions, &d.actions)
                && let Some(a) = actions.iter().find(|a| !allowed.contains(a))
            {
                return Err(bad(format!("type {} does not allow action {a}", d.type_)));
            }
        }
        Ok(Some(details))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn types() -> RarTypes {
        let mut m = BTreeMap::new();
        m.insert(
            "payment_initiation".to_owned(),
            RarType {
                required: vec!["instructedAmount".into()],
                allowed: Some(vec!["instructedAmount".into(), "creditorName".into()]),
                actions: Some(vec!["initiate".into(), "status".into()]),
            },
        );
        RarTypes::new(m)
    }

    #[test]
    fn accepts_a_well_formed_request_and_refuses_each_rule() {
        let client = vec!["payment_initiation".to_owned()];
        let ok = r#"[{"type":"payment_initiation","actions":["initiate"],"instructedAmount":{"currency":"EUR","amount":"1"}}]"#;
        assert_eq!(types().parse(Some(ok), &client).unwrap().unwrap().len(), 1);
        assert_eq!(types().parse(None, &client).unwrap(), None);
        for bad in [
            "not json",
            "{}",
            "[]",
            r#"[{"actions":["initiate"]}]"#,
            r#"[{"type":"account_information"}]"#,
            r#"[{"type":"payment_initiation"}]"#,
            r#"[{"type":"payment_initiation","instructedAmount":{},"debtor":"x"}]"#,
            r#"[{"type":"payment_initiation","instructedAmount":{},"actions":["refund"]}]"#,
            r#"[{"type":"payment_initiation","instructedAmount":{},"actions":"initiate"}]"#,
        ] {
            let e = types().parse(Some(bad), &client).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidAuthorizationDetails, "{bad}");
        }
        // A known type the client may not use.
        assert!(types().parse(Some(ok), &[]).is_err());
    }
}
