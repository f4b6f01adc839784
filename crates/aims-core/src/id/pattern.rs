//! [`SpiffeIdPattern`]: exact or prefix matching of SPIFFE IDs.

use super::{IdError, SpiffeId};

/// Suffix that turns an ID into a prefix pattern.
const WILDCARD: &str = "/*";

/// A SPIFFE ID, or a prefix pattern ending in `/*`, for allow-lists such as the SPIFFE IDs an
/// OAuth client may authenticate as.
///
/// * `spiffe://td/agents/billing` matches that ID only.
/// * `spiffe://td/agents/*` matches `spiffe://td/agents/x` and any deeper path, but neither
///   `spiffe://td/agents` itself nor `spiffe://td/agentsX/y`: matching is by whole segments.
/// * `spiffe://td/*` matches every non-root ID of `td`.
///
/// `*` is allowed only as that final segment; anywhere else it is a bad character. The part
/// before `/*` must itself be a valid SPIFFE ID, and errors are reported as for it.
/// Serialises as its string form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpiffeIdPattern {
    base: SpiffeId,
    prefix: bool,
}

impl SpiffeIdPattern {
    /// Parses `spiffe://...` (exact) or `spiffe://.../*` (prefix).
    ///
    /// # Errors
    ///
    /// As [`SpiffeId::parse`] on the ID, or on the part before `/*` for a prefix pattern.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        match s.strip_suffix(WILDCARD) {
            Some(base) => Ok(Self::prefix(SpiffeId::parse(base)?)),
            None => Ok(Self::exact(SpiffeId::parse(s)?)),
        }
    }

    /// A pattern matching `id` only.
    pub fn exact(id: SpiffeId) -> Self {
        Self {
            base: id,
            prefix: false,
        }
    }

    /// A pattern matching every ID strictly below `base` (`base/*`).
    pub fn prefix(base: SpiffeId) -> Self {
        Self { base, prefix: true }
    }

    /// The ID, or for a prefix pattern the ID before `/*`.
    pub fn base(&self) -> &SpiffeId {
        &self.base
    }

    /// Whether this is a prefix (`/*`) pattern.
    pub fn is_prefix(&self) -> bool {
        self.prefix
    }

    /// Whether `id` matches.
    pub fn matches(&self, id: &SpiffeId) -> bool {
        if !self.prefix {
            return *id == self.base;
        }
        // Both strings are valid IDs, so a `/` right after the base starts a non-empty
        // segment: `id` is strictly below `base`.
        id.as_str()
            .strip_prefix(self.base.as_str())
            .is_some_and(|rest| rest.starts_with('/'))
    }
}

impl std::fmt::Display for SpiffeIdPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.base.as_str())?;
        if self.prefix {
            f.write_str(WILDCARD)?;
        }
        Ok(())
    }
}

impl std::str::FromStr for SpiffeIdPattern {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for SpiffeIdPattern {
    type Error = IdError;

    fn try_from(mut s: String) -> Result<Self, Self::Error> {
        if s.ends_with(WILDCARD) {
            s.truncate(s.len().saturating_sub(WILDCARD.len()));
            Ok(Self::prefix(SpiffeId::try_from(s)?))
        } else {
            Ok(Self::exact(SpiffeId::try_from(s)?))
        }
    }
}

impl serde::Serialize for SpiffeIdPattern {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for SpiffeIdPattern {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(deserializer)?;
        Self::try_from(s).map_err(|e| {
            <D::Error as serde::de::Error>::custom(format_args!("invalid SPIFFE ID pattern: {e}"))
        })
    }
}
