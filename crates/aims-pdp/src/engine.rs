//! The engine: a loaded policy set behind an atomic pointer, evaluated through the
//! scope index.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use cedar_policy::{
    Authorizer, Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicySet, Request,
    Schema,
};
use serde_json::{Map, Value, json};

use crate::audit;
use crate::error::PdpError;
use crate::index::ScopeIndex;
use crate::load::{Loaded, PolicyBundle, load};
use crate::model::{Action, Decision, EntityRef, EvaluationRequest, SearchPage, SearchQuery};

/// The context key action properties are placed under.
pub const ACTION_PROPERTIES_KEY: &str = "action_properties";

/// The fewest candidates one search page evaluates before it may end short of its
/// `limit` (see [`Pdp::search`]).
pub const SEARCH_SCAN_MIN: usize = 1000;

/// Engine options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdpOptions {
    /// The Cedar entity type of actions: AuthZEN action `read` becomes
    /// `<action_type>::"read"`. Default `Action`.
    pub action_type: String,
}

impl Default for PdpOptions {
    fn default() -> Self {
        Self {
            action_type: "Action".into(),
        }
    }
}

/// One loaded, validated and indexed policy set.
#[derive(Debug)]
struct Snapshot {
    schema: Schema,
    full: Arc<PolicySet>,
    index: ScopeIndex,
    entities: Entities,
    attributes: HashMap<String, HashSet<String>>,
    /// entity type → ids in the entity data, sorted
    by_type: HashMap<String, Vec<String>>,
    /// action names of the configured action type, sorted
    actions: Vec<String>,
    policy_count: usize,
}

impl Snapshot {
    fn build(loaded: Loaded, options: &PdpOptions) -> Self {
        let mut by_type: HashMap<String, BTreeSet<String>> = HashMap::new();
        for e in loaded.entities.iter() {
            let uid = e.uid();
            by_type
                .entry(uid.type_name().to_string())
                .or_default()
                .insert(uid.id().unescaped().to_owned());
        }
        let actions = by_type
            .remove(&options.action_type)
            .map(|s| s.into_iter().collect())
            .unwrap_or_default();
        let policy_count = loaded.policies.len();
        Self {
            schema: loaded.schema,
            full: Arc::new(loaded.full),
            index: ScopeIndex::new(loaded.policies),
            entities: loaded.entities,
            attributes: loaded.attributes,
            by_type: by_type
                .into_iter()
                .map(|(k, v)| (k, v.into_iter().collect()))
                .collect(),
            actions,
            policy_count,
        }
    }
}

/// The policy decision point.
///
/// Cheap to share (`Arc<Pdp>`); [`Pdp::reload`] swaps the whole policy set atomically:
/// an evaluation sees either the old set or the new one, never a mix.
#[derive(Debug)]
pub struct Pdp {
    current: ArcSwap<Snapshot>,
    options: PdpOptions,
    authorizer: Authorizer,
}

/// Evaluation path: through the scope index, or over the whole policy set (the
/// reference the index is tested against).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evaluation {
    /// Only the candidate policies (the normal path).
    Indexed,
    /// Every policy.
    Full,
}

impl Pdp {
    /// Loads and validates `bundle` with default options.
    pub fn new(bundle: &PolicyBundle) -> Result<Self, PdpError> {
        Self::with_options(bundle, PdpOptions::default())
    }

    /// Loads and validates `bundle`.
    pub fn with_options(bundle: &PolicyBundle, options: PdpOptions) -> Result<Self, PdpError> {
        let snapshot = Snapshot::build(load(bundle)?, &options);
        Ok(Self {
            current: ArcSwap::from_pointee(snapshot),
            options,
            authorizer: Authorizer::new(),
        })
    }

    /// Loads a policy directory (see [`PolicyBundle::from_dir`]).
    pub fn from_dir(dir: &Path) -> Result<Self, PdpError> {
        Self::new(&PolicyBundle::from_dir(dir)?)
    }

    /// Replaces the policy set. A set that does not load or validate is refused with
    /// the error and the current set stays in force.
    pub fn reload(&self, bundle: &PolicyBundle) -> Result<(), PdpError> {
        match load(bundle) {
            Ok(loaded) => {
                let snapshot = Snapshot::build(loaded, &self.options);
                let count = snapshot.policy_count;
                self.current.store(Arc::new(snapshot));
                tracing::info!(target: "aims::pdp", policies = count, "policy set reloaded");
                Ok(())
            }
            Err(e) => {
                tracing::error!(target: "aims::pdp", error = %e, "policy set refused, previous set kept");
                Err(e)
            }
        }
    }

    /// Number of policies in force.
    pub fn policy_count(&self) -> usize {
        self.current.load().policy_count
    }

    /// Evaluates one request and emits its audit event (target `aims::audit`) with
    /// `correlation_id`.
    pub fn evaluate(
        &self,
        request: &EvaluationRequest,
        correlation_id: &str,
    ) -> Result<Decision, PdpError> {
        let decision = self.evaluate_with(request, Evaluation::Indexed)?;
        audit::decision(request, &decision, correlation_id);
        Ok(decision)
    }

    /// Evaluates without auditing, along the chosen path (tests and benchmarks).
    pub fn evaluate_with(
        &self,
        request: &EvaluationRequest,
        path: Evaluation,
    ) -> Result<Decision, PdpError> {
        let snap = self.current.load();
        self.eval_in(&snap, request, path)
    }

    /// One page of a search: candidates are the entities of the searched type in the
    /// entity data (or the schema's actions), in id order, starting at position
    /// `start`; at most `limit` permitted ones are returned, and at most
    /// `max(20 × limit, SEARCH_SCAN_MIN)` candidates are evaluated (a page may then hold
    /// fewer than `limit` results and still have a next one). Emits one audit event.
    pub fn search(
        &self,
        query: &SearchQuery,
        start: usize,
        limit: usize,
        correlation_id: &str,
    ) -> Result<SearchPage, PdpError> {
        let snap = self.current.load();
        let empty: Vec<String> = Vec::new();
        let candidates: &Vec<String> = match query {
            SearchQuery::Subject { subject_type, .. } => {
                snap.by_type.get(subject_type).unwrap_or(&empty)
            }
            SearchQuery::Resource { resource_type, .. } => {
                snap.by_type.get(resource_type).unwrap_or(&empty)
            }
            SearchQuery::Action { .. } => &snap.actions,
        };
        let mut results = Vec::new();
        let mut next = None;
        // A page also ends after this many candidates, permitted or not: a search that
        // finds little cannot make one request evaluate every entity of a large type
        // (the caller follows `next_token`, as for a full page).
        let scan_limit = limit.max(1).saturating_mul(20).max(SEARCH_SCAN_MIN);
        for (scanned, (pos, candidate)) in candidates.iter().enumerate().skip(start).enumerate() {
            if results.len() >= limit.max(1) || scanned >= scan_limit {
                next = Some(pos);
                break;
            }
            let request = match query {
                SearchQuery::Subject {
                    subject_type,
                    action,
                    resource,
                    context,
                } => EvaluationRequest {
                    subject: EntityRef::new(subject_type.clone(), candidate.clone()),
                    action: action.clone(),
                    resource: resource.clone(),
                    context: context.clone(),
                },
                SearchQuery::Resource {
                    subject,
                    action,
                    resource_type,
                    context,
                } => EvaluationRequest {
                    subject: subject.clone(),
                    action: action.clone(),
                    resource: EntityRef::new(resource_type.clone(), candidate.clone()),
                    context: context.clone(),
                },
                SearchQuery::Action {
                    subject,
                    resource,
                    context,
                } => EvaluationRequest {
                    subject: subject.clone(),
                    action: Action::new(candidate.clone()),
                    resource: resource.clone(),
                    context: context.clone(),
                },
            };
            if self.eval_in(&snap, &request, Evaluation::Indexed)?.decision {
                results.push(candidate.clone());
            }
        }
        audit::search(query, results.len(), correlation_id);
        Ok(SearchPage { results, next })
    }

    fn uid(&self, entity_type: &str, id: &str) -> Result<EntityUid, PdpError> {
        let ty = EntityTypeName::from_str(entity_type)
            .map_err(|_| PdpError::InvalidEntityType(entity_type.to_owned()))?;
        Ok(EntityUid::from_type_name_and_id(ty, EntityId::new(id)))
    }

    fn eval_in(
        &self,
        snap: &Snapshot,
        request: &EvaluationRequest,
        path: Evaluation,
    ) -> Result<Decision, PdpError> {
        let principal = self.uid(&request.subject.entity_type, &request.subject.id)?;
        let action = self.uid(&self.options.action_type, &request.action.name)?;
        let resource = self.uid(&request.resource.entity_type, &request.resource.id)?;

        let mut ctx = sanitize_map(&request.context);
        if !request.action.properties.is_empty() {
            ctx.insert(
                ACTION_PROPERTIES_KEY.into(),
                Value::Object(sanitize_map(&request.action.properties)),
            );
        }
        let context = Context::from_json_value(Value::Object(ctx), None)
            .map_err(|e| PdpError::InvalidContext(e.to_string()))?;

        let mut overlays = Vec::new();
        for (entity, uid) in [
            (&request.subject, &principal),
            (&request.resource, &resource),
        ] {
            if let Some(e) = overlay(snap, entity, uid)? {
                overlays.push(e);
            }
        }
        let entities: Cow<'_, Entities> = if overlays.is_empty() {
            Cow::Borrowed(&snap.entities)
        } else {
            // Cost grows with the entity data (a copy of the map of shared entities);
            // taken only when the request carries properties the schema declares.
            Cow::Owned(
                snap.entities
                    .clone()
                    .upsert_entities(overlays, None)
                    .map_err(|e| PdpError::InvalidProperty {
                        entity: format!("{principal} / {resource}"),
                        message: e.to_string(),
                    })?,
            )
        };

        let policies = match path {
            Evaluation::Indexed => snap
                .index
                .candidates(&principal, &action, &resource, &entities),
            Evaluation::Full => Arc::clone(&snap.full),
        };
        let cedar_request = Request::new(principal, action, resource, context, None)
            .map_err(|e| PdpError::InvalidRequest(e.to_string()))?;
        let response = self
            .authorizer
            .is_authorized(&cedar_request, &policies, &entities);
        let mut reasons: Vec<String> = response
            .diagnostics()
            .reason()
            .map(ToString::to_string)
            .collect();
        reasons.sort();
        let mut forbid_failed = false;
        let mut errors: Vec<String> = response
            .diagnostics()
            .errors()
            .map(|e| match e {
                cedar_policy::AuthorizationError::PolicyEvaluationError(pe) => {
                    forbid_failed |= policies
                        .policy(pe.policy_id())
                        .is_none_or(|p| p.effect() == cedar_policy::Effect::Forbid);
                    format!("{}: {}", pe.policy_id(), pe.inner())
                }
            })
            .collect();
        errors.sort();
        // Fail closed: Cedar skips a policy that fails to evaluate, so a `forbid` that
        // errors (a context value of another type than its condition expects, an
        // overflow) would let a `permit` through. An erroring `forbid` makes the answer a
        // deny (an erroring `permit` is only not satisfied, as Cedar has it).
        let allowed = response.decision() == cedar_policy::Decision::Allow;
        let permit = allowed && !forbid_failed;
        if allowed && !permit {
            // The satisfied permits did not decide.
            reasons.clear();
        }
        Ok(Decision {
            decision: permit,
            reasons,
            errors,
        })
    }
}

/// The request entity with the caller's properties applied, if it has any the schema
/// declares for its type; `None` when the stored entity is used unchanged.
fn overlay(
    snap: &Snapshot,
    entity: &EntityRef,
    uid: &EntityUid,
) -> Result<Option<Entity>, PdpError> {
    if entity.properties.is_empty() {
        return Ok(None);
    }
    let Some(declared) = snap.attributes.get(&entity.entity_type) else {
        return Ok(None);
    };
    let props: Map<String, Value> = entity
        .properties
        .iter()
        .filter(|(k, _)| declared.contains(*k))
        .filter_map(|(k, v)| sanitize(v).map(|v| (k.clone(), v)))
        .collect();
    if props.is_empty() {
        return Ok(None);
    }
    let invalid = |message: String| PdpError::InvalidProperty {
        entity: uid.to_string(),
        message,
    };
    let mut base = match snap.entities.get(uid) {
        Some(stored) => stored.to_json_value().map_err(|e| invalid(e.to_string()))?,
        None => json!({
            "uid": {"type": entity.entity_type, "id": entity.id},
            "attrs": {},
            "parents": [],
        }),
    };
    if let Some(attrs) = base.get_mut("attrs").and_then(Value::as_object_mut) {
        attrs.extend(props);
    }
    Entity::from_json_value(base, Some(&snap.schema))
        .map(Some)
        .map_err(|e| invalid(e.to_string()))
}

/// JSON → Cedar-representable JSON: `null` members are dropped, numbers that are not
/// 64-bit integers become strings (Cedar has neither null nor floating point).
fn sanitize(value: &Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::Number(n) if n.as_i64().is_none() => Some(Value::String(n.to_string())),
        Value::Array(items) => Some(Value::Array(items.iter().filter_map(sanitize).collect())),
        Value::Object(map) => Some(Value::Object(sanitize_map(map))),
        other => Some(other.clone()),
    }
}

fn sanitize_map(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .filter_map(|(k, v)| sanitize(v).map(|v| (k.clone(), v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_drops_null_and_stringifies_floats() {
        let v = json!({"a": null, "b": 1.5, "c": [1, null], "d": {"e": null}});
        assert_eq!(sanitize(&v), Some(json!({"b": "1.5", "c": [1], "d": {}})));
    }
}
