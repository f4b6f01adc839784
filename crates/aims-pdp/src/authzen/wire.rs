//! AuthZEN 1.0 wire types (JSON), and their conversion to the engine's types.
//!
//! Every member is optional at the serde level so that a missing member is reported by
//! name (400) rather than as a generic parse error; unknown members are ignored, as the
//! specification requires.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::PdpError;
use crate::model::{Action, EntityRef, EvaluationRequest};

/// Subject or resource as sent.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WireEntity {
    /// `type`
    #[serde(rename = "type")]
    pub entity_type: Option<String>,
    /// `id`
    pub id: Option<String>,
    /// `properties`
    pub properties: Option<Map<String, Value>>,
}

/// Action as sent.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WireAction {
    /// `name`
    pub name: Option<String>,
    /// `properties`
    pub properties: Option<Map<String, Value>>,
}

/// An Access Evaluation request body (also one item of a boxcar).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EvaluationBody {
    /// `subject`
    pub subject: Option<WireEntity>,
    /// `action`
    pub action: Option<WireAction>,
    /// `resource`
    pub resource: Option<WireEntity>,
    /// `context`
    pub context: Option<Map<String, Value>>,
}

/// `options.evaluations_semantic`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Semantic {
    /// Evaluate every item (default).
    #[default]
    ExecuteAll,
    /// Stop after the first deny (or failed item).
    DenyOnFirstDeny,
    /// Stop after the first permit.
    PermitOnFirstPermit,
}

/// `options`
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EvaluationsOptions {
    /// `evaluations_semantic`
    pub evaluations_semantic: Option<Semantic>,
}

/// An Access Evaluations (boxcar) request body.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EvaluationsBody {
    /// default `subject`
    pub subject: Option<WireEntity>,
    /// default `action`
    pub action: Option<WireAction>,
    /// default `resource`
    pub resource: Option<WireEntity>,
    /// default `context`
    pub context: Option<Map<String, Value>>,
    /// the items
    pub evaluations: Option<Vec<EvaluationBody>>,
    /// `options`
    pub options: Option<EvaluationsOptions>,
}

/// `page` in a search request.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PageRequest {
    /// `token` from a previous response.
    pub token: Option<String>,
    /// Maximum results in this page.
    pub limit: Option<u32>,
}

/// A Search request body (all three searches).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SearchBody {
    /// `subject`
    pub subject: Option<WireEntity>,
    /// `action`
    pub action: Option<WireAction>,
    /// `resource`
    pub resource: Option<WireEntity>,
    /// `context`
    pub context: Option<Map<String, Value>>,
    /// `page`
    pub page: Option<PageRequest>,
}

/// One decision as answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionBody {
    /// `decision`
    pub decision: bool,
    /// `context`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
}

/// Boxcar response.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvaluationsResponse {
    /// in request order
    pub evaluations: Vec<DecisionBody>,
}

/// `page` in a search response.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PageResponse {
    /// `""` on the last page.
    pub next_token: String,
    /// results in this page
    pub count: usize,
}

/// Search response.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchResponse {
    /// `{type, id}` or `{name}` objects
    pub results: Vec<Value>,
    /// pagination
    pub page: PageResponse,
}

/// `GET /.well-known/authzen-configuration`
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metadata {
    /// the PDP identifier (base URL)
    pub policy_decision_point: String,
    /// endpoint URLs
    pub access_evaluation_endpoint: String,
    /// endpoint URLs
    pub access_evaluations_endpoint: String,
    /// endpoint URLs
    pub search_subject_endpoint: String,
    /// endpoint URLs
    pub search_resource_endpoint: String,
    /// endpoint URLs
    pub search_action_endpoint: String,
}

impl WireEntity {
    /// Entity-level override (the certification scenario's rule): `item` replaces
    /// `default` as a whole, but a missing `type` or `id` falls back to the default's.
    pub fn merged(item: Option<&Self>, default: Option<&Self>) -> Option<Self> {
        match (item, default) {
            (Some(i), Some(d)) => Some(Self {
                entity_type: i.entity_type.clone().or_else(|| d.entity_type.clone()),
                id: i.id.clone().or_else(|| d.id.clone()),
                properties: i.properties.clone(),
            }),
            (Some(i), None) => Some(i.clone()),
            (None, d) => d.cloned(),
        }
    }

    /// A complete entity, or which member is missing.
    pub fn complete(&self, what: &'static str) -> Result<EntityRef, PdpError> {
        let (type_field, id_field) = match what {
            "subject" => ("subject.type", "subject.id"),
            _ => ("resource.type", "resource.id"),
        };
        Ok(EntityRef {
            entity_type: self
                .entity_type
                .clone()
                .ok_or(PdpError::MissingField(type_field))?,
            id: self.id.clone().ok_or(PdpError::MissingField(id_field))?,
            properties: self.properties.clone().unwrap_or_default(),
        })
    }

    /// Only the type (the searched entity: its `id` is ignored, as the spec says).
    pub fn type_only(&self, field: &'static str) -> Result<String, PdpError> {
        self.entity_type
            .clone()
            .ok_or(PdpError::MissingField(field))
    }
}

impl WireAction {
    /// Same override rule as [`WireEntity::merged`], with `name` as the fallback.
    pub fn merged(item: Option<&Self>, default: Option<&Self>) -> Option<Self> {
        match (item, default) {
            (Some(i), Some(d)) => Some(Self {
                name: i.name.clone().or_else(|| d.name.clone()),
                properties: i.properties.clone(),
            }),
            (Some(i), None) => Some(i.clone()),
            (None, d) => d.cloned(),
        }
    }

    /// A complete action.
    pub fn complete(&self) -> Result<Action, PdpError> {
        Ok(Action {
            name: self
                .name
                .clone()
                .ok_or(PdpError::MissingField("action.name"))?,
            properties: self.properties.clone().unwrap_or_default(),
        })
    }
}

fn subject(s: Option<&WireEntity>) -> Result<EntityRef, PdpError> {
    s.ok_or(PdpError::MissingField("subject"))?
        .complete("subject")
}

fn resource(r: Option<&WireEntity>) -> Result<EntityRef, PdpError> {
    r.ok_or(PdpError::MissingField("resource"))?
        .complete("resource")
}

fn action(a: Option<&WireAction>) -> Result<Action, PdpError> {
    a.ok_or(PdpError::MissingField("action"))?.complete()
}

impl EvaluationBody {
    /// The engine request, or the first missing member.
    pub fn to_request(&self) -> Result<EvaluationRequest, PdpError> {
        Ok(EvaluationRequest {
            subject: subject(self.subject.as_ref())?,
            action: action(self.action.as_ref())?,
            resource: resource(self.resource.as_ref())?,
            context: self.context.clone().unwrap_or_default(),
        })
    }
}

impl EvaluationsBody {
    /// Item `item` with the top-level defaults applied.
    pub fn item(&self, item: &EvaluationBody) -> EvaluationBody {
        EvaluationBody {
            subject: WireEntity::merged(item.subject.as_ref(), self.subject.as_ref()),
            action: WireAction::merged(item.action.as_ref(), self.action.as_ref()),
            resource: WireEntity::merged(item.resource.as_ref(), self.resource.as_ref()),
            context: item.context.clone().or_else(|| self.context.clone()),
        }
    }

    /// The top-level members as one evaluation (no or empty `evaluations`).
    pub fn single(&self) -> EvaluationBody {
        EvaluationBody {
            subject: self.subject.clone(),
            action: self.action.clone(),
            resource: self.resource.clone(),
            context: self.context.clone(),
        }
    }
}

impl SearchBody {
    /// The members that identify the search across pages (everything but `page`),
    /// canonicalised (object keys sorted) for the page-token fingerprint.
    pub fn fingerprint_source(raw: &Value) -> String {
        fn canon(v: &Value) -> Value {
            match v {
                Value::Object(m) => {
                    let mut keys: Vec<_> = m.keys().collect();
                    keys.sort();
                    let mut out = Map::new();
                    for k in keys {
                        if let Some(x) = m.get(k) {
                            out.insert(k.clone(), canon(x));
                        }
                    }
                    Value::Object(out)
                }
                Value::Array(a) => Value::Array(a.iter().map(canon).collect()),
                other => other.clone(),
            }
        }
        let mut v = raw.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("page");
        }
        canon(&v).to_string()
    }
}
