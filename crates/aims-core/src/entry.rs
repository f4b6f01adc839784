//! Registration entries and selectors: which workloads get which SPIFFE ID.
//!
//! An entry maps a set of selectors to one SPIFFE ID. A workload receives the entry's
//! SVIDs when **all** of the entry's selectors are among the selectors attestation
//! derived for it.
//!
//! Selector grammar: `<type>:<value>`, where `type` is a lowercase attestor name
//! (`[a-z0-9_-]+`, e.g. `unix`, `k8s`, `tpm`) and `value` is a non-empty string of
//! printable ASCII without white space (it may itself contain `:`), at most 512 bytes.
//! The `unix` attestor produces `unix:uid:N`, `unix:gid:N`, `unix:user:NAME`,
//! `unix:group:NAME`, `unix:path:/abs/exe` and `unix:sha256:HEX` (lowercase hex).

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{SpiffeId, TrustDomain};

/// Why a selector or an entry is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// The selector is not `type:value`.
    #[error("selector `{0}` must have the form type:value, e.g. unix:uid:1000")]
    SelectorForm(String),
    /// The selector type has characters outside `[a-z0-9_-]`.
    #[error("selector type `{0}` must be lowercase letters, digits, `_` or `-`")]
    SelectorType(String),
    /// The selector value is empty, too long, or has white space or control characters.
    #[error("selector value in `{0}` must be 1 to 512 printable characters without spaces")]
    SelectorValue(String),
    /// An entry needs at least one selector.
    #[error("an entry needs at least one selector")]
    NoSelectors,
    /// An entry's SPIFFE ID must have a path (a root ID names the trust domain itself).
    #[error("an entry's SPIFFE ID must have a path, e.g. spiffe://example.org/agent/a")]
    RootId,
    /// A lifetime is zero or above the maximum.
    #[error("{0} lifetime must be between 1 second and 30 days")]
    Lifetime(&'static str),
    /// A DNS name is not a valid host name.
    #[error("`{0}` is not a valid DNS name")]
    DnsName(String),
}

/// One selector, e.g. `unix:uid:1000`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Selector {
    s: String,
    colon: usize,
}

impl Selector {
    /// Parses `type:value`.
    pub fn parse(s: &str) -> Result<Self, EntryError> {
        let colon = s
            .find(':')
            .ok_or_else(|| EntryError::SelectorForm(s.to_owned()))?;
        let (ty, value) = (&s[..colon], &s[colon + 1..]);
        if ty.is_empty()
            || !ty
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            return Err(EntryError::SelectorType(ty.to_owned()));
        }
        if value.is_empty() || value.len() > 512 || !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(EntryError::SelectorValue(s.to_owned()));
        }
        Ok(Self {
            s: s.to_owned(),
            colon,
        })
    }

    /// Builds a selector from its type and value.
    pub fn new(ty: &str, value: &str) -> Result<Self, EntryError> {
        Self::parse(&format!("{ty}:{value}"))
    }

    /// The attestor type, e.g. `unix`.
    pub fn kind(&self) -> &str {
        self.s.get(..self.colon).unwrap_or_default()
    }

    /// The value after the type, e.g. `uid:1000`.
    pub fn value(&self) -> &str {
        self.s.get(self.colon + 1..).unwrap_or_default()
    }

    /// The whole selector.
    pub fn as_str(&self) -> &str {
        &self.s
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.s)
    }
}

impl std::str::FromStr for Selector {
    type Err = EntryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Selector {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.s)
    }
}

impl<'de> Deserialize<'de> for Selector {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The selectors attestation derived for one caller.
pub type SelectorSet = BTreeSet<Selector>;

/// Upper bound for every SVID lifetime (30 days).
pub const MAX_TTL_SECS: u32 = 30 * 24 * 3600;

/// A registration entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationEntry {
    /// Stable identifier (assigned by the server, 32 lowercase hex characters).
    pub id: String,
    /// The SPIFFE ID workloads matching this entry receive.
    pub spiffe_id: SpiffeId,
    /// All of these must match the caller (sorted, unique).
    pub selectors: BTreeSet<Selector>,
    /// X509-SVID lifetime in seconds.
    pub x509_ttl: u32,
    /// JWT-SVID lifetime in seconds.
    pub jwt_ttl: u32,
    /// WIT-SVID lifetime in seconds.
    pub wit_ttl: u32,
    /// DNS names to put in the X509-SVID.
    #[serde(default)]
    pub dns_names: Vec<String>,
    /// A hint for workloads holding several SVIDs (Workload API `hint`).
    #[serde(default)]
    pub hint: Option<String>,
    /// Trust domains whose bundles workloads of this entry also receive.
    #[serde(default)]
    pub federates_with: BTreeSet<TrustDomain>,
    /// The node that serves this entry (a server's `[server] node_id`, as an agent's ID in
    /// SPIRE): nodes with another node ID do not serve it. Without it every node does.
    #[serde(default)]
    pub parent_id: Option<SpiffeId>,
    /// Whether SVIDs of this entry may call the admin API over mTLS.
    #[serde(default)]
    pub admin: bool,
    /// Incremented on every update.
    #[serde(default)]
    pub revision: u64,
    /// Creation time (Unix seconds).
    #[serde(default)]
    pub created_at: i64,
    /// Last update time (Unix seconds).
    #[serde(default)]
    pub updated_at: i64,
}

impl RegistrationEntry {
    /// Checks the invariants the store and the server rely on.
    pub fn validate(&self) -> Result<(), EntryError> {
        if self.selectors.is_empty() {
            return Err(EntryError::NoSelectors);
        }
        if self.spiffe_id.is_root() {
            return Err(EntryError::RootId);
        }
        for (name, ttl) in [
            ("X.509", self.x509_ttl),
            ("JWT", self.jwt_ttl),
            ("WIT", self.wit_ttl),
        ] {
            if ttl == 0 || ttl > MAX_TTL_SECS {
                return Err(EntryError::Lifetime(name));
            }
        }
        for d in &self.dns_names {
            if !is_dns_name(d) {
                return Err(EntryError::DnsName(d.clone()));
            }
        }
        Ok(())
    }

    /// Whether every selector of the entry is in `caller`. An entry without selectors
    /// matches no caller (it would match every one; [`RegistrationEntry::validate`]
    /// refuses it, but an entry built another way must not fail open).
    pub fn matches(&self, caller: &SelectorSet) -> bool {
        !self.selectors.is_empty() && self.selectors.is_subset(caller)
    }
}

fn is_dns_name(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'*')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> RegistrationEntry {
        RegistrationEntry {
            id: "0123456789abcdef0123456789abcdef".into(),
            spiffe_id: SpiffeId::parse("spiffe://example.org/agent/a").unwrap(),
            selectors: ["unix:uid:1000", "unix:sha256:ab"]
                .iter()
                .map(|s| Selector::parse(s).unwrap())
                .collect(),
            x509_ttl: 3600,
            jwt_ttl: 300,
            wit_ttl: 3600,
            dns_names: vec![],
            hint: None,
            federates_with: BTreeSet::new(),
            parent_id: None,
            admin: false,
            revision: 0,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn selector_grammar() {
        let s = Selector::parse("unix:path:/usr/bin/a:b").unwrap();
        assert_eq!(s.kind(), "unix");
        assert_eq!(s.value(), "path:/usr/bin/a:b");
        assert!(matches!(
            Selector::parse("unix"),
            Err(EntryError::SelectorForm(_))
        ));
        assert!(matches!(
            Selector::parse("Unix:uid:1"),
            Err(EntryError::SelectorType(_))
        ));
        assert!(matches!(
            Selector::parse(":uid:1"),
            Err(EntryError::SelectorType(_))
        ));
        assert!(matches!(
            Selector::parse("unix:"),
            Err(EntryError::SelectorValue(_))
        ));
        assert!(matches!(
            Selector::parse("unix:a b"),
            Err(EntryError::SelectorValue(_))
        ));
        assert!(matches!(
            Selector::parse(&format!("unix:{}", "a".repeat(513))),
            Err(EntryError::SelectorValue(_))
        ));
    }

    #[test]
    fn all_selectors_must_match() {
        let e = entry();
        let mut caller: SelectorSet = e.selectors.clone();
        caller.insert(Selector::parse("unix:gid:5").unwrap());
        assert!(e.matches(&caller));
        caller.remove(&Selector::parse("unix:sha256:ab").unwrap());
        assert!(!e.matches(&caller));
        // An entry without selectors matches nobody, not everybody.
        let mut empty = entry();
        empty.selectors.clear();
        assert!(!empty.matches(&caller));
        assert!(!empty.matches(&SelectorSet::new()));
    }

    #[test]
    fn entry_rules() {
        assert!(entry().validate().is_ok());
        let mut e = entry();
        e.selectors.clear();
        assert_eq!(e.validate(), Err(EntryError::NoSelectors));
        let mut e = entry();
        e.spiffe_id = SpiffeId::parse("spiffe://example.org").unwrap();
        assert_eq!(e.validate(), Err(EntryError::RootId));
        let mut e = entry();
        e.x509_ttl = 0;
        assert_eq!(e.validate(), Err(EntryError::Lifetime("X.509")));
        let mut e = entry();
        e.jwt_ttl = MAX_TTL_SECS + 1;
        assert_eq!(e.validate(), Err(EntryError::Lifetime("JWT")));
        let mut e = entry();
        e.dns_names = vec!["bad name".into()];
        assert!(matches!(e.validate(), Err(EntryError::DnsName(_))));
        let json = serde_json::to_string(&entry()).unwrap();
        let back: RegistrationEntry = serde_json::from_str(&json).unwrap();
        assert_eq!(back, entry());
    }
}
