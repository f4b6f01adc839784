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
