//! The scope index: flat evaluation cost however many policies cannot apply.
//!
//! Every policy goes into exactly one *bucket* keyed by the most selective part of its
//! scope, chosen in this order: `principal ==`, `resource ==`, `principal in` (also
//! `principal is T in G`), `resource in`, `action ==`, `action in [..]` (one bucket per
//! listed action), `principal is`, `resource is`; a policy whose scope constrains
//! nothing goes into the *always* bucket.
//!
//! For a request the candidate keys are derived from the request entities and their
//! ancestors in the entity store the request is evaluated against (the same store Cedar
//! uses, so `in` follows the same hierarchy): `principal == P`, `principal in X` for X
//! in {P} ∪ ancestors(P), `principal is type(P)`, likewise for the resource, and
//! `action == A`, `action in X` for X in {A} ∪ ancestors(A). A policy outside every
//! matched bucket has a scope that cannot be satisfied, so it can neither permit nor
//! forbid: dropping it does not change the decision. `forbid` policies follow the same
//! rule (a forbid whose scope matches is always among the candidates).
//!
//! The union of the matched buckets is turned into a Cedar `PolicySet` once and cached,
//! keyed by the list of matched buckets (the cache is bounded and lives in the loaded
//! set, so a reload starts a fresh one).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use cedar_policy::{
    ActionConstraint, Entities, EntityTypeName, EntityUid, Policy, PolicySet, PrincipalConstraint,
    ResourceConstraint,
};

/// How many candidate sets are cached before the cache is emptied.
const CACHE_CAPACITY: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    PrincipalEq(EntityUid),
    PrincipalIn(EntityUid),
    PrincipalIs(EntityTypeName),
    ResourceEq(EntityUid),
    ResourceIn(EntityUid),
    ResourceIs(EntityTypeName),
    ActionEq(EntityUid),
    ActionIn(EntityUid),
}

/// Policies grouped by scope, with the cache of candidate policy sets.
#[derive(Debug)]
pub(crate) struct ScopeIndex {
    policies: Vec<Policy>,
    buckets: HashMap<Key, u32>,
    /// bucket number → policy positions
    members: Vec<Vec<u32>>,
    /// policies with an unconstrained scope
    always: Vec<u32>,
    cache: RwLock<HashMap<Vec<u32>, Arc<PolicySet>>>,
}

fn keys_of(policy: &Policy) -> Vec<Key> {
    let principal = policy.principal_constraint();
    let resource = policy.resource_constraint();
    let action = policy.action_constraint();
    if let PrincipalConstraint::Eq(uid) = &principal {
        return vec![Key::PrincipalEq(uid.clone())];
    }
    if let ResourceConstraint::Eq(uid) = &resource {
        return vec![Key::ResourceEq(uid.clone())];
    }
    if let PrincipalConstraint::In(uid) | PrincipalConstraint::IsIn(_, uid) = &principal {
        return vec![Key::PrincipalIn(uid.clone())];
    }
    if let ResourceConstraint::In(uid) | ResourceConstraint::IsIn(_, uid) = &resource {
        return vec![Key::ResourceIn(uid.clone())];
    }
    match &action {
        ActionConstraint::Eq(uid) => return vec![Key::ActionEq(uid.clone())],
        // `action in []` can never hold: no key, no bucket, never a candidate.
        ActionConstraint::In(uids) => return uids.iter().cloned().map(Key::ActionIn).collect(),
        ActionConstraint::Any => {}
    }
    if let PrincipalConstraint::Is(ty) = &principal {
        return vec![Key::PrincipalIs(ty.clone())];
    }
    if let ResourceConstraint::Is(ty) = &resource {
        return vec![Key::ResourceIs(ty.clone())];
    }
    Vec::new()
}

impl ScopeIndex {
    pub(crate) fn new(policies: Vec<Policy>) -> Self {
        let mut buckets: HashMap<Key, u32> = HashMap::new();
        let mut members: Vec<Vec<u32>> = Vec::new();
        let mut always = Vec::new();
        for (pos, policy) in policies.iter().enumerate() {
            let pos = u32::try_from(pos).unwrap_or(u32::MAX);
            let keys = keys_of(policy);
            let unconstrained = matches!(policy.principal_constraint(), PrincipalConstraint::Any)
                && matches!(policy.resource_constraint(), ResourceConstraint::Any)
                && matches!(policy.action_constraint(), ActionConstraint::Any);
            if unconstrained {
                always.push(pos);
                continue;
            }
            for key in keys {
                let next = u32::try_from(members.len()).unwrap_or(u32::MAX);
                let bucket = *buckets.entry(key).or_insert(next);
                if bucket == next {
                    members.push(Vec::new());
                }
                if let Some(m) = members.get_mut(bucket as usize) {
                    m.push(pos);
                }
            }
        }
        Self {
            policies,
            buckets,
            members,
            always,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// The candidate policy set for a request against `entities`.
    pub(crate) fn candidates(
        &self,
        principal: &EntityUid,
        action: &EntityUid,
        resource: &EntityUid,
        entities: &Entities,
    ) -> Arc<PolicySet> {
        let mut matched: Vec<u32> = Vec::with_capacity(8);
        let mut probe = |key: Key| {
            if let Some(b) = self.buckets.get(&key) {
                matched.push(*b);
            }
        };
        probe(Key::PrincipalEq(principal.clone()));
        probe(Key::PrincipalIs(principal.type_name().clone()));
        probe(Key::PrincipalIn(principal.clone()));
        if let Some(ancestors) = entities.ancestors(principal) {
            for a in ancestors {
                probe(Key::PrincipalIn(a.clone()));
            }
        }
        probe(Key::ResourceEq(resource.clone()));
        probe(Key::ResourceIs(resource.type_name().clone()));
        probe(Key::ResourceIn(resource.clone()));
        if let Some(ancestors) = entities.ancestors(resource) {
            for a in ancestors {
                probe(Key::ResourceIn(a.clone()));
            }
        }
        probe(Key::ActionEq(action.clone()));
        probe(Key::ActionIn(action.clone()));
        if let Some(ancestors) = entities.ancestors(action) {
            for a in ancestors {
                probe(Key::ActionIn(a.clone()));
            }
        }
        matched.sort_unstable();
        matched.dedup();
        if let Ok(cache) = self.cache.read()
            && let Some(set) = cache.get(&matched)
        {
            return Arc::clone(set);
        }
        let set = Arc::new(self.build(&matched));
        if let Ok(mut cache) = self.cache.write() {
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
            cache.insert(matched, Arc::clone(&set));
        }
        set
    }

    fn build(&self, buckets: &[u32]) -> PolicySet {
        let mut positions: Vec<u32> = self.always.clone();
        for b in buckets {
            if let Some(m) = self.members.get(*b as usize) {
                positions.extend_from_slice(m);
            }
        }
        positions.sort_unstable();
        positions.dedup();
        let policies = positions
            .iter()
            .filter_map(|p| self.policies.get(*p as usize).cloned());
        // Ids are unique in the loaded set, so this cannot fail; if it ever did, the
        // full set is the correct (slower) answer.
        PolicySet::from_policies(policies).unwrap_or_else(|_| {
            PolicySet::from_policies(self.policies.iter().cloned()).unwrap_or_default()
        })
    }
}
