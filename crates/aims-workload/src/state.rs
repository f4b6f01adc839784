//! What each streaming RPC sends: a [`Snapshot`] computes the complete current message
//! for one caller, and when it must be recomputed at the latest (rotation).
//!
//! Snapshots run on a blocking thread and call the provider directly.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use aims_core::{Clock, RegistrationEntry, SelectorSet, SpiffeId, TrustDomain, UnixTime};
use aims_pki::{SpiffeBundle, X509Svid};
use tonic::Status;
use zeroize::Zeroizing;

use crate::attest::Attestor;
use crate::convert::{td_key, wit_jwks, x509_der};
use crate::pb;
use crate::provider::{IdentityProvider, ProviderError};

/// Longest `hint` passed on (SPIFFE Workload API section 5.3: servers SHOULD NOT support
/// longer values).
pub(crate) const MAX_HINT_BYTES: usize = 1024;

/// What every call needs.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) provider: Arc<dyn IdentityProvider>,
    pub(crate) attestor: Arc<dyn Attestor>,
    pub(crate) clock: Arc<dyn Clock>,
    /// Bounds how many open streams recompute at once. One change (a CA rotation, an
    /// entry write) wakes every stream; without a bound, thousands of recomputations
    /// queue on the blocking pool at once and a new call's attestation waits behind all
    /// of them. First messages of new calls do not take a permit.
    pub(crate) recompute: tokio::sync::Semaphore,
    /// Bounds the attestations running at once per caller uid (see [`UidGate`]).
    pub(crate) attesting: UidGate,
}

/// Attestations that may run at once for one caller uid.
pub(crate) const MAX_ATTESTATIONS_PER_UID: usize = 4;

/// Per-uid semaphores. Attestation runs on the blocking pool (file reads, hashing an
/// executable of up to hundreds of MiB); without a bound, one local user opening many
/// streams at once could take every blocking thread and stall everyone else's calls.
/// Further callers of that uid wait (on the async side, holding no thread).
#[derive(Debug)]
pub(crate) struct UidGate {
    max: usize,
    /// Per uid: its semaphore and how many callers hold or wait for a permit; the
    /// entry is removed when that count returns to zero.
    gates: std::sync::Mutex<HashMap<u32, (Arc<tokio::sync::Semaphore>, usize)>>,
}

/// The right to attest one caller of `uid`, given back when dropped.
#[derive(Debug)]
pub(crate) struct UidPass<'a> {
    gate: &'a UidGate,
    uid: u32,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl UidGate {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            gates: std::sync::Mutex::default(),
        }
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<u32, (Arc<tokio::sync::Semaphore>, usize)>> {
        self.gates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits until fewer than the maximum attestations of `uid` run. Cancel-safe: the
    /// pass is registered before the wait, so a caller that goes away while waiting is
    /// counted out again.
    pub(crate) async fn enter(&self, uid: u32) -> Result<UidPass<'_>, Status> {
        let (semaphore, mut pass) = {
            let mut gates = self.lock();
            let (semaphore, users) = gates
                .entry(uid)
                .or_insert_with(|| (Arc::new(tokio::sync::Semaphore::new(self.max)), 0));
            *users = users.saturating_add(1);
            let pass = UidPass {
                gate: self,
                uid,
                permit: None,
            };
            (Arc::clone(semaphore), pass)
        };
        // The semaphore is never closed; if it were, no attestation runs.
        let permit = semaphore
            .acquire_owned()
            .await
            .map_err(|_| Status::unavailable("the Workload API is shutting down"))?;
        pass.permit = Some(permit);
        Ok(pass)
    }

    #[cfg(test)]
    fn uids(&self) -> usize {
        self.lock().len()
    }
}

impl Drop for UidPass<'_> {
    fn drop(&mut self) {
        drop(self.permit.take());
        let mut gates = self.gate.lock();
        if let Some((_, users)) = gates.get_mut(&self.uid) {
            *users = users.saturating_sub(1);
            if *users == 0 {
                gates.remove(&self.uid);
            }
        }
    }
}

/// How many streams may recompute at once: one per CPU, enough to keep every core busy
/// with re-issuing while leaving the blocking pool free for new calls. (A provider that
/// blocks on a remote KMS would want more; the server's provider signs in memory.)
pub(crate) fn recompute_permits() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

pub(crate) fn provider_status(e: ProviderError) -> Status {
    match e {
        ProviderError::Unsupported => {
            Status::unimplemented("the WIT-SVID profile is not supported by this server")
        }
        other => {
            tracing::warn!(error = %other, "identity provider error");
            Status::unavailable(other.to_string())
        }
    }
}

pub(crate) fn no_identity() -> Status {
    Status::permission_denied("no identity is registered for this workload")
}

/// The caller's view: its entries (own trust domain only, sorted by SPIFFE ID then entry
/// id, so the default identity is stable) and the bundles it may use (own first).
pub(crate) struct View {
    pub(crate) own: Arc<SpiffeBundle>,
    pub(crate) entries: Vec<RegistrationEntry>,
    pub(crate) federated: Vec<Arc<SpiffeBundle>>,
}

impl View {
    /// The bundles the caller may use, own first: what its bundle streams send, and
    /// the only keys `ValidateJWTSVID` accepts for it (as in SPIRE, a token of a trust
    /// domain the caller's entries do not federate with is not valid for that caller).
    pub(crate) fn bundles(self) -> Vec<Arc<SpiffeBundle>> {
        let mut bundles = Vec::with_capacity(1 + self.federated.len());
        bundles.push(self.own);
        bundles.extend(self.federated);
        bundles
    }
}

impl Ctx {
    pub(crate) fn view(&self, selectors: &SelectorSet) -> Result<View, Status> {
        let own = self.provider.bundle().map_err(provider_status)?;
        let td = own.trust_domain().clone();
        let mut entries = self
            .provider
            .entries_for(selectors)
            .map_err(provider_status)?;
        entries.retain(|e| {
            let ours = e.matches(selectors) && e.spiffe_id.trust_domain() == &td;
            if !ours {
                tracing::warn!(entry = %e.id, id = %e.spiffe_id, "entry skipped: not matching or not of the server's trust domain");
            }
            ours
        });
        entries.sort_by(|a, b| (&a.spiffe_id, &a.id).cmp(&(&b.spiffe_id, &b.id)));
        let wanted: BTreeSet<&TrustDomain> = entries
            .iter()
            .flat_map(|e| e.federates_with.iter())
            .filter(|f| **f != td)
            .collect();
        let federated = if wanted.is_empty() {
            Vec::new()
        } else {
            let mut all = self.provider.federated_bundles().map_err(provider_status)?;
            all.retain(|b| wanted.contains(b.trust_domain()));
            all.sort_by(|a, b| a.trust_domain().cmp(b.trust_domain()));
            all.dedup_by(|a, b| a.trust_domain() == b.trust_domain());
            all
        };
        Ok(View {
            own,
            entries,
            federated,
        })
    }
}

/// Clears repeated (after the first) and over-long hints: hints must be unique within a
/// response (Workload API section 5.2.1).
pub(crate) fn unique_hints<'a>(hints: impl Iterator<Item = &'a mut String>) {
    let mut seen = BTreeSet::new();
    for h in hints {
        if h.len() > MAX_HINT_BYTES || (!h.is_empty() && !seen.insert(h.clone())) {
            h.clear();
        }
    }
}

fn hint(entry: &RegistrationEntry) -> String {
    entry.hint.clone().unwrap_or_default()
}

/// Half of the remaining lifetime from `issued_at`, at least one second.
fn half_life(issued_at: UnixTime, expires_at: UnixTime) -> UnixTime {
    issued_at.saturating_add((expires_at.saturating_sub(issued_at) / 2).max(1))
}

fn earliest(a: Option<UnixTime>, b: UnixTime) -> Option<UnixTime> {
    Some(a.map_or(b, |a| a.min(b)))
}

/// One computed stream message and when to recompute it at the latest.
pub(crate) struct Computed<M> {
    pub(crate) msg: M,
    pub(crate) refresh_at: Option<UnixTime>,
}

/// The state of one stream.
pub(crate) trait Snapshot: Send + 'static {
    /// The response message.
    type Msg: Clone + PartialEq + Send + 'static;
    /// The complete current message; an error ends the stream with that status.
    fn compute(&mut self, ctx: &Ctx) -> Result<Computed<Self::Msg>, Status>;
}

// --- FetchX509SVID -------------------------------------------------------------------

struct CachedX509 {
    spiffe_id: SpiffeId,
    ttl: u32,
    dns_names: Vec<String>,
    authorities: Arc<Vec<u8>>,
    svid: X509Svid,
    rotate_at: UnixTime,
}

impl CachedX509 {
    fn reusable(&self, e: &RegistrationEntry, authorities: &[u8], now: UnixTime) -> bool {
        self.spiffe_id == e.spiffe_id
            && self.ttl == e.x509_ttl
            && self.dns_names == e.dns_names
            && self.authorities.as_slice() == authorities
            && now < self.rotate_at
    }
}

/// X509-SVIDs of one caller, re-issued at half-life, when the entry's SVID parameters
/// change, or when the trust domain's X.509 authorities change.
pub(crate) struct X509SvidState {
    selectors: SelectorSet,
    cache: HashMap<String, CachedX509>,
}

impl X509SvidState {
    pub(crate) fn new(selectors: SelectorSet) -> Self {
        Self {
            selectors,
            cache: HashMap::new(),
        }
    }
}

impl Snapshot for X509SvidState {
    type Msg = pb::X509svidResponse;

    fn compute(&mut self, ctx: &Ctx) -> Result<Computed<Self::Msg>, Status> {
        let view = ctx.view(&self.selectors)?;
        if view.entries.is_empty() {
            return Err(no_identity());
        }
        let authorities = Arc::new(x509_der(view.own.x509_authorities()));
        let mut cache = HashMap::with_capacity(view.entries.len());
        let mut svids = Vec::with_capacity(view.entries.len());
        let mut refresh_at = None;
        for e in &view.entries {
            let now = ctx.clock.now();
            let cached = match self.cache.remove(&e.id) {
                Some(c) if c.reusable(e, &authorities, now) => c,
                _ => {
                    let svid = ctx.provider.issue_x509_svid(e).map_err(provider_status)?;
                    CachedX509 {
                        spiffe_id: e.spiffe_id.clone(),
                        ttl: e.x509_ttl,
                        dns_names: e.dns_names.clone(),
                        authorities: Arc::clone(&authorities),
                        rotate_at: half_life(now, svid.not_after()),
                        svid,
                    }
                }
            };
            refresh_at = earliest(refresh_at, cached.rotate_at);
            svids.push(pb::X509svid {
                spiffe_id: cached.svid.spiffe_id().as_str().to_owned(),
                x509_svid: x509_der(cached.svid.chain()),
                x509_svid_key: cached.svid.private_key_pkcs8().to_vec(),
                bundle: authorities.as_ref().clone(),
                hint: hint(e),
            });
            cache.insert(e.id.clone(), cached);
        }
        self.cache = cache;
        unique_hints(svids.iter_mut().map(|s| &mut s.hint));
        let federated_bundles = view
            .federated
            .iter()
            .map(|b| (td_key(b), x509_der(b.x509_authorities())))
            .collect();
        Ok(Computed {
            msg: pb::X509svidResponse {
                svids,
                crl: Vec::new(),
                federated_bundles,
            },
            refresh_at,
        })
    }
}

// --- bundle streams --------------------------------------------------------------------

/// The bundles one caller may use: the own trust domain's and those its entries federate
/// with. A caller without entries still gets the own trust domain's bundle (bundles are
/// public trust material).
pub(crate) struct BundlesState<M> {
    selectors: SelectorSet,
    _msg: std::marker::PhantomData<fn() -> M>,
}

impl<M> BundlesState<M> {
    pub(crate) fn new(selectors: SelectorSet) -> Self {
        Self {
            selectors,
            _msg: std::marker::PhantomData,
        }
    }
}

fn bundle_error(e: impl std::fmt::Display) -> Status {
    tracing::warn!(error = %e, "cannot encode a bundle");
    Status::unavailable("cannot encode a trust bundle")
}

/// A bundle message type built from (trust domain key, encoded bundle) pairs.
pub(crate) trait BundleMsg: Clone + PartialEq + Send + 'static {
    /// Whether the message belongs to the WIT-SVID profile.
    const WIT: bool = false;
    fn build(bundles: &[Arc<SpiffeBundle>]) -> Result<Self, Status>;
}

impl BundleMsg for pb::X509BundlesResponse {
    fn build(bundles: &[Arc<SpiffeBundle>]) -> Result<Self, Status> {
        Ok(Self {
            crl: Vec::new(),
            bundles: bundles
                .iter()
                .map(|b| (td_key(b), x509_der(b.x509_authorities())))
                .collect(),
        })
    }
}

impl BundleMsg for pb::JwtBundlesResponse {
    fn build(bundles: &[Arc<SpiffeBundle>]) -> Result<Self, Status> {
        let mut map = HashMap::with_capacity(bundles.len());
        for b in bundles {
            map.insert(
                td_key(b),
                b.to_jwks_json().map_err(bundle_error)?.into_bytes(),
            );
        }
        Ok(Self { bundles: map })
    }
}

impl BundleMsg for pb::WitBundlesResponse {
    const WIT: bool = true;
    fn build(bundles: &[Arc<SpiffeBundle>]) -> Result<Self, Status> {
        let mut map = HashMap::with_capacity(bundles.len());
        for b in bundles {
            map.insert(td_key(b), wit_jwks(b).map_err(bundle_error)?);
        }
        Ok(Self { bundles: map })
    }
}

impl<M: BundleMsg> Snapshot for BundlesState<M> {
    type Msg = M;

    fn compute(&mut self, ctx: &Ctx) -> Result<Computed<M>, Status> {
        if M::WIT && !ctx.provider.supports_wit_svid() {
            return Err(provider_status(ProviderError::Unsupported));
        }
        let bundles = ctx.view(&self.selectors)?.bundles();
        Ok(Computed {
            msg: M::build(&bundles)?,
            refresh_at: None,
        })
    }
}

// --- FetchWITSVID ----------------------------------------------------------------------

struct CachedWit {
    spiffe_id: SpiffeId,
    ttl: u32,
    keys: Arc<String>,
    token: String,
    key_json: Zeroizing<String>,
    rotate_at: UnixTime,
}

/// WIT-SVIDs of one caller (all its identities, or the requested one), each with a fresh
/// ES256 key pair, re-issued at half-life or when the WIT-SVID signing keys change.
pub(crate) struct WitSvidState {
    selectors: SelectorSet,
    only: Option<SpiffeId>,
    cache: HashMap<String, CachedWit>,
}

impl WitSvidState {
    pub(crate) fn new(selectors: SelectorSet, only: Option<SpiffeId>) -> Self {
        Self {
            selectors,
            only,
            cache: HashMap::new(),
        }
    }
}

impl Snapshot for WitSvidState {
    type Msg = pb::WitsvidResponse;

    fn compute(&mut self, ctx: &Ctx) -> Result<Computed<Self::Msg>, Status> {
        if !ctx.provider.supports_wit_svid() {
            return Err(provider_status(ProviderError::Unsupported));
        }
        let mut view = ctx.view(&self.selectors)?;
        if let Some(only) = &self.only {
            view.entries.retain(|e| &e.spiffe_id == only);
            if view.entries.is_empty() {
                return Err(Status::permission_denied(format!(
                    "no identity {only} is registered for this workload"
                )));
            }
        }
        if view.entries.is_empty() {
            return Err(no_identity());
        }
        let keys = Arc::new(wit_jwks(&view.own).map_err(bundle_error)?);
        let mut cache = HashMap::with_capacity(view.entries.len());
        let mut svids = Vec::with_capacity(view.entries.len());
        let mut refresh_at = None;
        for e in &view.entries {
            let now = ctx.clock.now();
            let cached = match self.cache.remove(&e.id) {
                Some(c)
                    if c.spiffe_id == e.spiffe_id
                        && c.ttl == e.wit_ttl
                        && c.keys == keys
                        && now < c.rotate_at =>
                {
                    c
                }
                _ => {
                    let key = crate::wit_key::generate().map_err(provider_status)?;
                    let ttl = Duration::from_secs(u64::from(e.wit_ttl));
                    let token = ctx
                        .provider
                        .sign_wit_svid(&e.spiffe_id, &key.public, ttl)
                        .map_err(provider_status)?;
                    // The token's own `exp` (the signer may cut the lifetime to its key's
                    // end), else the lifetime asked for.
                    let exp = aims_jose::Jws::unverified_claims(&token)
                        .and_then(|c| c.get("exp").and_then(serde_json::Value::as_i64))
                        .unwrap_or_else(|| now.saturating_add(i64::from(e.wit_ttl)));
                    CachedWit {
                        spiffe_id: e.spiffe_id.clone(),
                        ttl: e.wit_ttl,
                        keys: Arc::clone(&keys),
                        token,
                        key_json: key.private_json,
                        rotate_at: half_life(now, exp),
                    }
                }
            };
            refresh_at = earliest(refresh_at, cached.rotate_at);
            svids.push(pb::Witsvid {
                spiffe_id: cached.spiffe_id.as_str().to_owned(),
                wit_svid: cached.token.clone(),
                wit_svid_key: cached.key_json.as_str().to_owned(),
                hint: hint(e),
            });
            cache.insert(e.id.clone(), cached);
        }
        self.cache = cache;
        unique_hints(svids.iter_mut().map(|s| &mut s.hint));
        Ok(Computed {
            msg: pb::WitsvidResponse { svids },
            refresh_at,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hints_are_unique_and_bounded() {
        let mut hints = vec![
            "a".to_owned(),
            String::new(),
            "a".to_owned(),
            "b".to_owned(),
            String::new(),
            "x".repeat(MAX_HINT_BYTES + 1),
        ];
        unique_hints(hints.iter_mut());
        assert_eq!(hints, ["a", "", "", "b", "", ""]);
    }

    #[tokio::test(start_paused = true)]
    async fn attestations_per_uid_are_bounded() {
        let gate = UidGate::new(MAX_ATTESTATIONS_PER_UID);
        let wait = Duration::from_secs(1);
        let mut held = Vec::new();
        for _ in 0..MAX_ATTESTATIONS_PER_UID {
            held.push(gate.enter(1).await.unwrap());
        }
        // One more of uid 1 waits (and, given up, is counted out again) ...
        assert!(tokio::time::timeout(wait, gate.enter(1)).await.is_err());
        // ... while another uid is not held up.
        let other = tokio::time::timeout(wait, gate.enter(2)).await;
        assert!(matches!(other, Ok(Ok(_))));
        drop(other);
        assert_eq!(gate.uids(), 1);
        // A finished attestation lets the next one in.
        held.pop();
        let next = tokio::time::timeout(wait, gate.enter(1)).await;
        assert!(matches!(next, Ok(Ok(_))));
        drop(next);
        held.clear();
        assert_eq!(gate.uids(), 0);
    }

    #[test]
    fn half_life_is_at_least_a_second() {
        assert_eq!(half_life(100, 110), 105);
        assert_eq!(half_life(100, 101), 101);
        assert_eq!(half_life(100, 90), 101);
    }
}
