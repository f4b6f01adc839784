//! The engine's own request and decision types, shaped like AuthZEN 1.0 entities.
//!
//! No Cedar type appears here: the HTTP layer parses the wire JSON into these, the engine
//! turns them into Cedar requests (see the crate documentation for the mapping rules).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A subject or a resource: AuthZEN `{type, id, properties}`.
///
/// `entity_type` is used verbatim as the Cedar entity type name (it may carry a
/// namespace, `Aims::Agent`); `id` is the Cedar entity id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityRef {
    /// The entity type (`type` on the wire).
    #[serde(rename = "type")]
    pub entity_type: String,
    /// The entity identifier.
    pub id: String,
    /// Properties sent by the caller; see the crate documentation for which become
    /// Cedar attributes.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub properties: Map<String, Value>,
}

impl EntityRef {
    /// An entity without properties.
    pub fn new(entity_type: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            entity_type: entity_type.into(),
            id: id.into(),
            properties: Map::new(),
        }
    }

    /// The same entity with `properties`.
    #[must_use]
    pub fn with_properties(mut self, properties: Map<String, Value>) -> Self {
        self.properties = properties;
        self
    }
}

/// The AuthZEN subject: for AIMS usually the calling agent.
pub type Subject = EntityRef;
/// The AuthZEN resource.
pub type Resource = EntityRef;

/// The AuthZEN action `{name, properties}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// The action name; the Cedar action is `Action::"<name>"`.
    pub name: String,
    /// Action properties; they reach Cedar as `context.action_properties`.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub properties: Map<String, Value>,
}

impl Action {
    /// An action without properties.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            properties: Map::new(),
        }
    }
}

/// One access evaluation: subject, action, resource and context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationRequest {
    /// Who asks (the agent).
    pub subject: Subject,
    /// What it wants to do.
    pub action: Action,
    /// On what.
    pub resource: Resource,
    /// The AuthZEN context object (delegation, scopes, authorization details,
    /// transaction context…); see the crate documentation for the conventions.
    #[serde(default)]
    pub context: Map<String, Value>,
}

/// The outcome of one evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// `true` = permit, `false` = deny (Cedar's default deny included). A `forbid` that
    /// failed to evaluate makes the decision a deny (fail closed); a `permit` that failed
    /// is not satisfied.
    pub decision: bool,
    /// Ids of the policies that determined the decision: the satisfied `permit`s for a
    /// permit, the satisfied `forbid`s for an explicit deny (empty for a default deny
    /// and for a deny caused only by a failed `forbid`).
    pub reasons: Vec<String>,
    /// Policies that failed to evaluate, as `policy id: message`.
    pub errors: Vec<String>,
}

/// Which entities a search enumerates.
#[derive(Debug, Clone, PartialEq)]
pub enum SearchQuery {
    /// Subjects of `subject_type` allowed to do `action` on `resource`.
    Subject {
        /// The searched type.
        subject_type: String,
        /// The action.
        action: Action,
        /// The resource.
        resource: Resource,
        /// The context.
        context: Map<String, Value>,
    },
    /// Resources of `resource_type` on which `subject` may do `action`.
    Resource {
        /// The subject.
        subject: Subject,
        /// The action.
        action: Action,
        /// The searched type.
        resource_type: String,
        /// The context.
        context: Map<String, Value>,
    },
    /// Actions `subject` may do on `resource`.
    Action {
        /// The subject.
        subject: Subject,
        /// The resource.
        resource: Resource,
        /// The context.
        context: Map<String, Value>,
    },
}

/// One page of search results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPage {
    /// Permitted ids (subject/resource search) or action names, in id order.
    pub results: Vec<String>,
    /// Where the next page starts (a position in the sorted candidate list), `None` on
    /// the last page.
    pub next: Option<usize>,
}
