//! [`WorkloadSource`]: this agent's credentials and trust bundles, fed by the Workload API
//! and kept current as they rotate.
//!
//! Four server streams are held open (`FetchX509SVID`, `FetchX509Bundles`,
//! `FetchWITSVID`, `FetchWITBundles`); the server pushes a new message on every rotation,
//! so nothing polls. A stream that fails is re-opened with exponential backoff (100 ms up
//! to 5 s) while the last good credentials stay in use. JWT-SVIDs are fetched on demand
//! and cached per audience until half of their lifetime has passed.
//!
//! Revocation: each stream message is the whole current state, so a message without
//! SVIDs drops the credential it carried, and a stream that ends with `PermissionDenied`
//! (the caller matches no registration entry any more) drops it too, along with every
//! cached JWT-SVID. The stream keeps being re-opened, so a re-created entry brings the
//! identity back. No accessor ever hands out a credential past its expiry (by the
//! source's clock), whatever the streams did.
//!
//! Private keys are held here and in [`crate::AgentClient`] only: no public function
//! returns a key, so application code (or a language model driving the agent) can use
//! the identity without ever seeing the secret that proves it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use aims_core::{Clock, SpiffeId, SystemClock, TrustDomain, WorkloadId};
use aims_crypto::{Jwk, Jwks, SigningKey};
use aims_pki::{SpiffeBundle, TrustStore, X509Svid};
use aims_workload::pb;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::Code;
use zeroize::Zeroize;

use crate::AgentError;
use crate::endpoint::{Client, WorkloadEndpoint};

/// How long [`WorkloadSource::connect`] waits for the first credentials by default.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(15);

const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// A WIT-SVID and the key its `cnf.jwk` confirms.
#[derive(Debug)]
pub(crate) struct WitCredential {
    pub(crate) token: String,
    pub(crate) key: Arc<SigningKey>,
    /// The WIT-SVID's `exp` (Unix seconds).
    exp: i64,
}

/// Where one stream stands.
#[derive(Debug, Clone, Default)]
enum StreamState {
    /// Nothing received yet.
    #[default]
    Pending,
    /// At least one message received.
    Live,
    /// The server refused the call; `final` statuses stop waiting for it.
    Failed { code: Code, message: String },
}

impl StreamState {
    fn settled(&self) -> bool {
        match self {
            StreamState::Pending => false,
            StreamState::Live => true,
            StreamState::Failed { code, .. } => is_final(*code),
        }
    }
}

/// Statuses that will not change by retrying soon: stop waiting for the stream.
fn is_final(code: Code) -> bool {
    matches!(
        code,
        Code::PermissionDenied | Code::Unimplemented | Code::InvalidArgument
    )
}

#[derive(Debug, Default)]
struct State {
    x509: Option<Arc<X509Svid>>,
    wit: Option<Arc<WitCredential>>,
    x509_bundles: HashMap<TrustDomain, Vec<u8>>,
    wit_bundles: HashMap<TrustDomain, Jwks>,
    x509_stream: StreamState,
    x509_bundle_stream: StreamState,
    wit_stream: StreamState,
    wit_bundle_stream: StreamState,
}

struct Inner {
    client: Client,
    endpoint: WorkloadEndpoint,
    clock: Arc<dyn Clock>,
    state: RwLock<State>,
    trust: Arc<TrustStore>,
    updates: watch::Sender<u64>,
    jwt_cache: Mutex<HashMap<String, CachedJwt>>,
    /// Bumped by every [`Inner::clear_jwt_cache`]: a JWT-SVID fetched across a clear is
    /// not cached (it could outlive the revocation that cleared the cache).
    jwt_generation: std::sync::atomic::AtomicU64,
    /// Serialises trust-store rebuilds, so the last one reflects the latest state.
    trust_rebuild: Mutex<()>,
}

#[derive(Clone)]
struct CachedJwt {
    token: String,
    refresh_at: i64,
    exp: i64,
}

impl CachedJwt {
    /// Usable at `now`: before half-life (and so before `exp`).
    fn fresh(&self, now: i64) -> bool {
        now < self.refresh_at && now < self.exp
    }
}

struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// This agent's identity as the Workload API provisions it. Cheap to clone; the
/// background streams stop when the last clone is dropped.
#[derive(Clone)]
pub struct WorkloadSource {
    inner: Arc<Inner>,
    _tasks: Arc<Tasks>,
}

impl std::fmt::Debug for WorkloadSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkloadSource")
            .field("endpoint", &self.inner.endpoint)
            .field("spiffe_id", &self.spiffe_id())
            .finish_non_exhaustive()
    }
}

impl WorkloadSource {
    /// Connects to the Workload API named by `SPIFFE_ENDPOINT_SOCKET`.
    pub async fn from_env() -> Result<Self, AgentError> {
        let endpoint = WorkloadEndpoint::from_env()?.ok_or(AgentError::NoEndpoint)?;
        Self::connect(endpoint).await
    }

    /// Connects to `endpoint` and waits (at most [`DEFAULT_READY_TIMEOUT`]) for the first
    /// X509-SVID and bundles, and for the WIT-SVID if the server serves that profile.
    pub async fn connect(endpoint: WorkloadEndpoint) -> Result<Self, AgentError> {
        Self::connect_with(endpoint, Arc::new(SystemClock), DEFAULT_READY_TIMEOUT).await
    }

    /// [`WorkloadSource::connect`] with a clock (for JWT-SVID cache refresh) and a wait.
    pub async fn connect_with(
        endpoint: WorkloadEndpoint,
        clock: Arc<dyn Clock>,
        ready_timeout: Duration,
    ) -> Result<Self, AgentError> {
        let client = endpoint.connect()?;
        let (updates, mut rx) = watch::channel(0u64);
        let inner = Arc::new(Inner {
            client,
            endpoint,
            clock,
            state: RwLock::new(State::default()),
            trust: Arc::new(TrustStore::new()),
            updates,
            jwt_cache: Mutex::new(HashMap::new()),
            jwt_generation: std::sync::atomic::AtomicU64::new(0),
            trust_rebuild: Mutex::new(()),
        });
        let tasks = vec![
            tokio::spawn(run_stream(inner.clone(), Kind::X509Svid)),
            tokio::spawn(run_stream(inner.clone(), Kind::X509Bundles)),
            tokio::spawn(run_stream(inner.clone(), Kind::WitSvid)),
            tokio::spawn(run_stream(inner.clone(), Kind::WitBundles)),
        ];
        let source = Self {
            inner,
            _tasks: Arc::new(Tasks(tasks)),
        };
        let wait = async {
            loop {
                if let Some(result) = source.readiness() {
                    return result;
                }
                if rx.changed().await.is_err() {
                    return Err(AgentError::NoCredential("Workload API stream"));
                }
            }
        };
        match tokio::time::timeout(ready_timeout, wait).await {
            Ok(result) => result.map(|()| source),
            Err(_) => Err(AgentError::Timeout {
                what: "X509-SVID",
                seconds: ready_timeout.as_secs(),
            }),
        }
    }

    /// `None` while still waiting; `Some(Err)` when the X509-SVID was refused.
    fn readiness(&self) -> Option<Result<(), AgentError>> {
        let state = self.inner.read();
        if let StreamState::Failed { code, message } = &state.x509_stream
            && is_final(*code)
        {
            return Some(Err(AgentError::WorkloadApi {
                call: "FetchX509SVID",
                code: *code,
                message: message.clone(),
            }));
        }
        let ready = state.x509.is_some()
            && state.x509_bundle_stream.settled()
            && state.wit_stream.settled()
            && state.wit_bundle_stream.settled();
        ready.then_some(Ok(()))
    }

    /// This agent's SPIFFE ID (that of its default X509-SVID); `None` while it holds no
    /// unexpired X509-SVID (not yet received, revoked, or expired).
    pub fn spiffe_id(&self) -> Option<SpiffeId> {
        self.x509_svid().map(|s| s.spiffe_id().clone())
    }

    /// This agent's identifier, as a [`WorkloadId`].
    pub fn workload_id(&self) -> Option<WorkloadId> {
        self.spiffe_id()
            .and_then(|id| WorkloadId::parse(id.as_str()).ok())
    }

    /// When the current X509-SVID expires (Unix seconds); `None` without one.
    pub fn x509_expiry(&self) -> Option<i64> {
        self.x509_svid().map(|s| s.not_after())
    }

    /// Whether an unexpired WIT-SVID is held (the server serves the WIT profile to this
    /// agent, and has not revoked its identity).
    pub fn has_wit(&self) -> bool {
        self.wit().is_some()
    }

    /// The trust bundles delivered to this agent (X.509 authorities and WIT keys of its
    /// own and federated trust domains), kept current. Hand it to a verifier, such as
    /// `aims-guard`, to check callers.
    pub fn trust_store(&self) -> Arc<TrustStore> {
        self.inner.trust.clone()
    }

    /// A receiver that changes whenever a credential or bundle changes.
    pub fn updates(&self) -> watch::Receiver<u64> {
        self.inner.updates.subscribe()
    }

    /// The Workload API address.
    pub fn endpoint(&self) -> &WorkloadEndpoint {
        &self.inner.endpoint
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The X509-SVID, unless none is held or it has expired.
    pub(crate) fn x509_svid(&self) -> Option<Arc<X509Svid>> {
        let now = self.inner.clock.now();
        self.inner
            .read()
            .x509
            .clone()
            .filter(|s| now < s.not_after())
    }

    /// The WIT-SVID, unless none is held or it has expired.
    pub(crate) fn wit(&self) -> Option<Arc<WitCredential>> {
        let now = self.inner.clock.now();
        self.inner.read().wit.clone().filter(|w| now < w.exp)
    }

    /// A JWT-SVID for `audience`, from the cache while less than half of its lifetime has
    /// passed; never an expired one.
    pub(crate) async fn jwt_svid(&self, audience: &str) -> Result<String, AgentError> {
        let now = self.inner.clock.now();
        if let Some(hit) = self
            .inner
            .jwt_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(audience)
            .filter(|c| c.fresh(now))
        {
            return Ok(hit.token.clone());
        }
        let generation = self
            .inner
            .jwt_generation
            .load(std::sync::atomic::Ordering::SeqCst);
        let mut client = self.inner.client.clone();
        let resp = client
            .fetch_jwtsvid(pb::JwtsvidRequest {
                audience: vec![audience.to_owned()],
                spiffe_id: String::new(),
            })
            .await
            .map_err(|s| status_error("FetchJWTSVID", &s))?
            .into_inner();
        let token = resp
            .svids
            .into_iter()
            .next()
            .map(|s| s.svid)
            .ok_or_else(|| bad("FetchJWTSVID", "no SVID in the response"))?;
        let (iat, exp) = jwt_times(&token).ok_or_else(|| bad("FetchJWTSVID", "no exp"))?;
        if exp <= now {
            return Err(bad(
                "FetchJWTSVID",
                "the JWT-SVID has already expired (check this host's clock)",
            ));
        }
        let iat = iat.unwrap_or(now);
        let refresh_at = iat.saturating_add(exp.saturating_sub(iat) / 2);
        let mut cache = self
            .inner
            .jwt_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        cache.retain(|_, c| c.fresh(now));
        if self
            .inner
            .jwt_generation
            .load(std::sync::atomic::Ordering::SeqCst)
            != generation
        {
            // Revoked while this one was being fetched: used once, not kept.
            return Ok(token);
        }
        cache.insert(
            audience.to_owned(),
            CachedJwt {
                token: token.clone(),
                refresh_at,
                exp,
            },
        );
        Ok(token)
    }
}

impl Inner {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets every cached JWT-SVID.
    fn clear_jwt_cache(&self) {
        let mut cache = self
            .jwt_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.jwt_generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        cache.clear();
    }

    /// The server says this agent no longer has the identity `kind` delivers: drop that
    /// credential and every cached JWT-SVID. `answered`: the stream said so in a message
    /// (and is live), rather than by ending.
    fn revoke(&self, kind: Kind, answered: bool) {
        let held = {
            let state = self.read();
            match kind {
                Kind::X509Svid => state.x509.is_some(),
                Kind::WitSvid => state.wit.is_some(),
                Kind::X509Bundles | Kind::WitBundles => return,
            }
        };
        if held {
            tracing::warn!(
                call = kind.call(),
                "the Workload API withdrew this agent's identity; credential dropped"
            );
        }
        self.clear_jwt_cache();
        self.update(|s| {
            match kind {
                Kind::X509Svid => s.x509 = None,
                Kind::WitSvid => s.wit = None,
                Kind::X509Bundles | Kind::WitBundles => {}
            }
            if answered {
                *kind.stream_state(s) = StreamState::Live;
            }
        });
    }

    /// Applies `f`, then (for bundle changes) rebuilds the trust store, then wakes
    /// waiters: whoever sees the change sees the trust store that goes with it.
    fn update(&self, f: impl FnOnce(&mut State)) {
        self.update_inner(f, false);
    }

    fn update_bundles(&self, f: impl FnOnce(&mut State)) {
        self.update_inner(f, true);
    }

    fn update_inner(&self, f: impl FnOnce(&mut State), bundles: bool) {
        {
            let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
            f(&mut state);
        }
        if bundles {
            self.refresh_trust();
        }
        self.updates.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// Rebuilds the trust store from the latest X.509 and WIT bundles.
    fn refresh_trust(&self) {
        let _serial = self
            .trust_rebuild
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let state = self.read();
        let mut domains: Vec<&TrustDomain> = state
            .x509_bundles
            .keys()
            .chain(state.wit_bundles.keys())
            .collect();
        domains.sort();
        domains.dedup();
        for td in &domains {
            let mut bundle = match state.x509_bundles.get(*td) {
                Some(der) => match SpiffeBundle::from_x509_der((*td).clone(), der) {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!(trust_domain = %td, error = %e, "unusable X.509 bundle");
                        SpiffeBundle::new((*td).clone())
                    }
                },
                None => SpiffeBundle::new((*td).clone()),
            };
            if let Some(jwks) = state.wit_bundles.get(*td) {
                for jwk in &jwks.keys {
                    if let Err(e) = bundle.add_wit_authority(jwk.clone()) {
                        tracing::warn!(trust_domain = %td, error = %e, "unusable WIT key");
                    }
                }
            }
            self.trust.insert(bundle);
        }
        for td in self.trust.trust_domains() {
            if !domains.contains(&&td) {
                self.trust.remove(&td);
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    X509Svid,
    X509Bundles,
    WitSvid,
    WitBundles,
}

impl Kind {
    fn call(self) -> &'static str {
        match self {
            Kind::X509Svid => "FetchX509SVID",
            Kind::X509Bundles => "FetchX509Bundles",
            Kind::WitSvid => "FetchWITSVID",
            Kind::WitBundles => "FetchWITBundles",
        }
    }

    fn stream_state(self, state: &mut State) -> &mut StreamState {
        match self {
            Kind::X509Svid => &mut state.x509_stream,
            Kind::X509Bundles => &mut state.x509_bundle_stream,
            Kind::WitSvid => &mut state.wit_stream,
            Kind::WitBundles => &mut state.wit_bundle_stream,
        }
    }
}

/// Holds one stream open, re-opening it with backoff after failures.
async fn run_stream(inner: Arc<Inner>, kind: Kind) {
    let mut backoff = BACKOFF_START;
    loop {
        let status = match open_and_follow(&inner, kind).await {
            Ok(true) => {
                backoff = BACKOFF_START;
                None
            }
            Ok(false) => None,
            Err(status) => Some(status),
        };
        if let Some(status) = status {
            tracing::debug!(call = kind.call(), code = ?status.code(), "Workload API stream failed");
            if status.code() == Code::PermissionDenied {
                // A final answer: no registration entry matches this agent any more.
                // Keep re-opening the stream, so that a re-created entry brings it back.
                inner.revoke(kind, false);
            }
            inner.update(|s| {
                let st = kind.stream_state(s);
                // A stream that worked keeps its credentials through transient failures;
                // only a first failure is reported to waiters.
                if !matches!(st, StreamState::Live) {
                    *st = StreamState::Failed {
                        code: status.code(),
                        message: status.message().to_owned(),
                    };
                }
            });
            if status.code() == Code::Unimplemented {
                // This server does not serve the call (e.g. WIT on a plain SPIFFE server).
                return;
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Opens the stream and applies messages until it ends; `Ok(true)` if any arrived.
async fn open_and_follow(inner: &Inner, kind: Kind) -> Result<bool, tonic::Status> {
    let mut client = inner.client.clone();
    let mut got_any = false;
    macro_rules! follow {
        ($call:expr, $apply:expr) => {{
            let mut stream = $call.await?.into_inner();
            while let Some(msg) = stream.message().await? {
                match $apply(msg) {
                    Ok(()) => got_any = true,
                    Err(e) => tracing::warn!(call = kind.call(), error = %e, "ignored an unusable Workload API message"),
                }
            }
        }};
    }
    match kind {
        Kind::X509Svid => follow!(client.fetch_x509svid(pb::X509svidRequest {}), |m| {
            apply_x509(inner, m)
        }),
        Kind::X509Bundles => follow!(client.fetch_x509_bundles(pb::X509BundlesRequest {}), |m| {
            apply_x509_bundles(inner, m)
        }),
        Kind::WitSvid => follow!(
            client.fetch_witsvid(pb::WitsvidRequest {
                spiffe_id: String::new()
            }),
            |m| apply_wit(inner, m)
        ),
        Kind::WitBundles => follow!(client.fetch_wit_bundles(pb::WitBundlesRequest {}), |m| {
            apply_wit_bundles(inner, m)
        }),
    }
    Ok(got_any)
}

fn apply_x509(inner: &Inner, msg: pb::X509svidResponse) -> Result<(), AgentError> {
    let Some(first) = msg.svids.into_iter().next() else {
        // The whole current state, and it holds no identity.
        inner.revoke(Kind::X509Svid, true);
        return Ok(());
    };
    let mut key = first.x509_svid_key;
    let svid = X509Svid::parse_raw(&first.x509_svid, &key);
    key.zeroize();
    let svid = svid.map_err(|e| bad("FetchX509SVID", &e.to_string()))?;
    tracing::debug!(spiffe_id = %svid.spiffe_id(), not_after = svid.not_after(), "X509-SVID received");
    inner.update(|s| {
        s.x509 = Some(Arc::new(svid));
        s.x509_stream = StreamState::Live;
    });
    Ok(())
}

fn apply_x509_bundles(inner: &Inner, msg: pb::X509BundlesResponse) -> Result<(), AgentError> {
    let mut bundles = HashMap::new();
    for (td, der) in msg.bundles {
        bundles.insert(parse_td_key(&td, "FetchX509Bundles")?, der);
    }
    inner.update_bundles(|s| {
        s.x509_bundles = bundles;
        s.x509_bundle_stream = StreamState::Live;
    });
    Ok(())
}

fn apply_wit(inner: &Inner, msg: pb::WitsvidResponse) -> Result<(), AgentError> {
    let Some(first) = msg.svids.into_iter().next() else {
        // The whole current state, and it holds no identity.
        inner.revoke(Kind::WitSvid, true);
        return Ok(());
    };
    let mut key_json = first.wit_svid_key;
    let jwk = serde_json_jwk(&key_json);
    key_json.zeroize();
    let key = jwk
        .and_then(|mut jwk| {
            let key = SigningKey::from_private_jwk(&jwk).ok();
            wipe_private_members(&mut jwk);
            key
        })
        .ok_or_else(|| bad("FetchWITSVID", "wit_svid_key is not a usable private JWK"))?;
    let (_, exp) = jwt_times(&first.wit_svid).ok_or_else(|| bad("FetchWITSVID", "no exp"))?;
    let wit = WitCredential {
        token: first.wit_svid,
        key: Arc::new(key),
        exp,
    };
    inner.update(|s| {
        s.wit = Some(Arc::new(wit));
        s.wit_stream = StreamState::Live;
    });
    Ok(())
}

fn apply_wit_bundles(inner: &Inner, msg: pb::WitBundlesResponse) -> Result<(), AgentError> {
    let mut bundles = HashMap::new();
    for (td, jwks) in msg.bundles {
        let parsed: Jwks = serde_json::from_str(&jwks)
            .map_err(|e| bad("FetchWITBundles", &format!("bundle of {td}: {e}")))?;
        bundles.insert(parse_td_key(&td, "FetchWITBundles")?, parsed);
    }
    inner.update_bundles(|s| {
        s.wit_bundles = bundles;
        s.wit_bundle_stream = StreamState::Live;
    });
    Ok(())
}

fn serde_json_jwk(json: &str) -> Option<Jwk> {
    serde_json::from_str(json).ok()
}

/// Wipes a parsed private JWK's secret members. `Jwk` does not implement `Zeroize`;
/// every private member (`d`, and RSA's `p`, `q`, `dp`, `dq`, `qi`, `oth`) lives in its
/// `extra` map, so each string there is zeroized in place.
fn wipe_private_members(jwk: &mut Jwk) {
    fn wipe(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(s) => s.zeroize(),
            serde_json::Value::Array(items) => items.iter_mut().for_each(wipe),
            serde_json::Value::Object(map) => map.values_mut().for_each(wipe),
            _ => {}
        }
    }
    jwk.extra.values_mut().for_each(wipe);
    jwk.extra.clear();
}

/// A bundle map key: the trust domain's SPIFFE ID (`spiffe://example.org`), or its bare
/// name.
fn parse_td_key(key: &str, call: &'static str) -> Result<TrustDomain, AgentError> {
    SpiffeId::parse(key)
        .map(|id| id.trust_domain().clone())
        .or_else(|_| TrustDomain::new(key))
        .map_err(|e| bad(call, &format!("bundle key {key:?}: {e}")))
}

/// `iat` and `exp` of a JWT, unverified: the token comes from the local Workload API,
/// and is only cached, not trusted.
fn jwt_times(token: &str) -> Option<(Option<i64>, i64)> {
    let claims = aims_jose::Jws::unverified_claims(token)?;
    let exp = claims.get("exp")?.as_i64()?;
    Some((claims.get("iat").and_then(serde_json::Value::as_i64), exp))
}

fn bad(call: &'static str, reason: &str) -> AgentError {
    AgentError::BadResponse {
        call,
        reason: reason.to_owned(),
    }
}

pub(crate) fn status_error(call: &'static str, status: &tonic::Status) -> AgentError {
    AgentError::WorkloadApi {
        call,
        code: status.code(),
        message: status.message().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aims_crypto::{Algorithm, Signer as _};

    #[test]
    fn the_parsed_private_wit_key_is_wiped_after_use() {
        let key = SigningKey::generate(Algorithm::ES256).unwrap();
        let mut jwk = key.public_jwk().clone();
        jwk.extra.insert(
            "d".into(),
            serde_json::Value::String("c2VjcmV0LXNjYWxhcg".into()),
        );
        wipe_private_members(&mut jwk);
        assert!(jwk.extra.is_empty(), "{:?}", jwk.extra.keys());
        assert!(!jwk.has_private_members());
        // The public members are untouched.
        assert_eq!(jwk.x, key.public_jwk().x);
    }
}
