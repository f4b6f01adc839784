//! The `SpiffeWorkloadAPI` gRPC service: attestation per call and the stream driver.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::server::AcceptedPeer;
use aims_core::{SelectorSet, SpiffeId};
use aims_jose::jwt_svid::Validator;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::attest::{AttestError, PeerInfo};
use crate::convert::{BundleKeys, to_struct};
use crate::pb;
use crate::pb::spiffe_workload_api_server::SpiffeWorkloadApi;
use crate::provider::ProviderError;
use crate::state::{
    BundlesState, Computed, Ctx, Snapshot, WitSvidState, X509SvidState, no_identity,
    provider_status, unique_hints,
};

/// Most audiences one JWT-SVID request may ask for.
const MAX_AUDIENCES: usize = 32;
/// Longest audience value accepted.
const MAX_AUDIENCE_BYTES: usize = 2048;
/// Messages a stream may have queued for a slow client.
const STREAM_BUFFER: usize = 4;
/// The shortest wait between two timer-driven recomputations of a stream.
const MIN_RECHECK: Duration = Duration::from_secs(1);
/// The longest a stream sleeps before it looks at the wall clock again. Rotation times
/// are wall-clock times, but Tokio sleeps on the monotonic clock, which stands still
/// while the machine is suspended or the VM paused: one long sleep could wake after
/// the SVID expired.
const MAX_SLEEP: Duration = Duration::from_secs(60);

type Stream<M> = ReceiverStream<Result<M, Status>>;

/// The service behind the interceptor.
#[derive(Debug, Clone)]
pub(crate) struct Service {
    ctx: Arc<Ctx>,
    /// Becomes `true` when the server shuts down: open streams end with `Unavailable`.
    stop: watch::Receiver<bool>,
}

fn attest_status(e: &AttestError) -> Status {
    if e.is_transient() {
        Status::unavailable(format!("attestation failed: {e}"))
    } else {
        Status::permission_denied(format!("attestation failed: {e}"))
    }
}

fn shutting_down() -> Status {
    Status::unavailable("the Workload API is shutting down")
}

/// Runs blocking work (provider calls, attestation) off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| Status::internal("a worker task failed"))?
}

/// Computes a snapshot on a blocking thread; `None` if that thread panicked.
async fn compute<S: Snapshot>(
    mut state: S,
    ctx: &Arc<Ctx>,
) -> Option<(S, Result<Computed<S::Msg>, Status>)> {
    let ctx = Arc::clone(ctx);
    tokio::task::spawn_blocking(move || {
        let r = state.compute(&ctx);
        (state, r)
    })
    .await
    .ok()
}

/// Seconds until `t` on `ctx`'s clock, at least [`MIN_RECHECK`] and at most
/// [`MAX_SLEEP`].
fn wait_until(ctx: &Ctx, t: i64) -> Duration {
    let secs = u64::try_from(t.saturating_sub(ctx.clock.now())).unwrap_or(0);
    Duration::from_secs(secs).clamp(MIN_RECHECK, MAX_SLEEP)
}

impl Service {
    pub(crate) fn new(ctx: Arc<Ctx>, stop: watch::Receiver<bool>) -> Self {
        Self { ctx, stop }
    }

    fn require_wit(&self) -> Result<(), Status> {
        if self.ctx.provider.supports_wit_svid() {
            Ok(())
        } else {
            Err(provider_status(ProviderError::Unsupported))
        }
    }

    /// Attests the caller of `req` from the connection's `SO_PEERCRED` and the start
    /// time of its process, both recorded when the connection was accepted.
    async fn attest<T>(&self, req: &Request<T>) -> Result<SelectorSet, Status> {
        let accepted = req
            .extensions()
            .get::<Option<AcceptedPeer>>()
            .copied()
            .flatten()
            .ok_or_else(|| {
                Status::permission_denied(
                    "the caller's process credentials are unavailable (Unix socket connections only)",
                )
            })?;
        if accepted.pid.is_some_and(|p| p > 0) && accepted.started.is_none() {
            return Err(Status::unavailable(
                "the calling process had exited when its connection was accepted; connect again",
            ));
        }
        let peer = PeerInfo {
            pid: accepted.pid,
            uid: accepted.uid,
            gid: accepted.gid,
            started: accepted.started,
        };
        let _pass = self.ctx.attesting.enter(peer.uid).await?;
        let attestor = Arc::clone(&self.ctx.attestor);
        let selectors =
            blocking(move || attestor.attest(&peer).map_err(|e| attest_status(&e))).await?;
        tracing::debug!(?peer, selectors = selectors.len(), "caller attested");
        Ok(selectors)
    }

    /// Opens a stream: the first message is computed now (its error is the call's
    /// status), then a task pushes a new message whenever the provider signals a change
    /// or the snapshot's refresh time passes, and the content differs.
    async fn open<S: Snapshot>(&self, state: S) -> Result<Response<Stream<S::Msg>>, Status> {
        if *self.stop.borrow() {
            return Err(shutting_down());
        }
        // Subscribe before the first computation so that no change is missed.
        let mut changes = self.ctx.provider.subscribe();
        changes.borrow_and_update();
        let (state, first) = compute(state, &self.ctx)
            .await
            .ok_or_else(|| Status::internal("a worker task failed"))?;
        let Computed { msg, refresh_at } = first?;
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        tx.try_send(Ok(msg.clone()))
            .map_err(|_| Status::internal("stream buffer unavailable"))?;
        tokio::spawn(drive(
            state,
            msg,
            refresh_at,
            tx,
            changes,
            self.stop.clone(),
            Arc::clone(&self.ctx),
        ));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// The loop behind one stream. It ends when the client goes away, the server stops
/// (`Unavailable`), the provider goes away (`Unavailable`) or a recomputation fails (its
/// status, e.g. `PermissionDenied` once the caller has no entry left).
async fn drive<S: Snapshot>(
    mut state: S,
    mut last: S::Msg,
    mut refresh_at: Option<i64>,
    tx: mpsc::Sender<Result<S::Msg, Status>>,
    mut changes: watch::Receiver<u64>,
    mut stop: watch::Receiver<bool>,
    ctx: Arc<Ctx>,
) {
    loop {
        let timer = refresh_at.map(|t| wait_until(&ctx, t));
        tokio::select! {
            () = tx.closed() => return,
            () = stopped(&mut stop) => {
                let _ = tx.send(Err(shutting_down())).await;
                return;
            }
            changed = changes.changed() => {
                if changed.is_err() {
                    let _ = tx.send(Err(Status::unavailable("the identity provider stopped"))).await;
                    return;
                }
            }
            () = sleep_opt(timer) => {
                // A capped sleep ended before the refresh time: sleep again, measured
                // afresh on the wall clock.
                if refresh_at.is_some_and(|t| ctx.clock.now() < t) {
                    continue;
                }
            }
        }
        // Wait for a recompute permit (see `Ctx::recompute`), still ending promptly if
        // the client leaves or the server stops meanwhile.
        let permit = tokio::select! {
            p = ctx.recompute.acquire() => match p {
                Ok(p) => p,
                Err(_) => {
                    let _ = tx.send(Err(shutting_down())).await;
                    return;
                }
            },
            () = tx.closed() => return,
            () = stopped(&mut stop) => {
                let _ = tx.send(Err(shutting_down())).await;
                return;
            }
        };
        let computed = compute(state, &ctx).await;
        drop(permit);
        let Some((next, result)) = computed else {
            let _ = tx.send(Err(Status::internal("a worker task failed"))).await;
            return;
        };
        state = next;
        match result {
            Ok(c) => {
                refresh_at = c.refresh_at;
                if c.msg != last {
                    if tx.send(Ok(c.msg.clone())).await.is_err() {
                        return;
                    }
                    last = c.msg;
                }
            }
            Err(status) => {
                let _ = tx.send(Err(status)).await;
                return;
            }
        }
    }
}

/// Completes once the server is stopping (or its stop signal is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}

async fn sleep_opt(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

fn optional_spiffe_id(s: &str) -> Result<Option<SpiffeId>, Status> {
    if s.is_empty() {
        return Ok(None);
    }
    SpiffeId::parse(s)
        .map(Some)
        .map_err(|e| Status::invalid_argument(format!("spiffe_id: {e}")))
}

#[tonic::async_trait]
impl SpiffeWorkloadApi for Service {
    type FetchX509SVIDStream = Stream<pb::X509svidResponse>;
    type FetchX509BundlesStream = Stream<pb::X509BundlesResponse>;
    type FetchJWTBundlesStream = Stream<pb::JwtBundlesResponse>;
    type FetchWITSVIDStream = Stream<pb::WitsvidResponse>;
    type FetchWITBundlesStream = Stream<pb::WitBundlesResponse>;

    async fn fetch_x509svid(
        &self,
        request: Request<pb::X509svidRequest>,
    ) -> Result<Response<Self::FetchX509SVIDStream>, Status> {
        let selectors = self.attest(&request).await?;
        self.open(X509SvidState::new(selectors)).await
    }

    async fn fetch_x509_bundles(
        &self,
        request: Request<pb::X509BundlesRequest>,
    ) -> Result<Response<Self::FetchX509BundlesStream>, Status> {
        let selectors = self.attest(&request).await?;
        self.open(BundlesState::<pb::X509BundlesResponse>::new(selectors))
            .await
    }

    async fn fetch_jwtsvid(
        &self,
        request: Request<pb::JwtsvidRequest>,
    ) -> Result<Response<pb::JwtsvidResponse>, Status> {
        let req = request.get_ref();
        if req.audience.is_empty() {
            return Err(Status::invalid_argument("audience must be specified"));
        }
        if req.audience.len() > MAX_AUDIENCES {
            return Err(Status::invalid_argument(format!(
                "at most {MAX_AUDIENCES} audiences may be requested"
            )));
        }
        if req
            .audience
            .iter()
            .any(|a| a.is_empty() || a.len() > MAX_AUDIENCE_BYTES)
        {
            return Err(Status::invalid_argument(format!(
                "every audience must be 1 to {MAX_AUDIENCE_BYTES} bytes"
            )));
        }
        let only = optional_spiffe_id(&req.spiffe_id)?;
        let selectors = self.attest(&request).await?;
        let audience = request.into_inner().audience;
        let ctx = Arc::clone(&self.ctx);
        let svids = blocking(move || {
            let view = ctx.view(&selectors)?;
            let mut seen = BTreeSet::new();
            let mut entries: Vec<_> = view
                .entries
                .into_iter()
                .filter(|e| only.as_ref().is_none_or(|id| &e.spiffe_id == id))
                .filter(|e| seen.insert(e.spiffe_id.clone()))
                .collect();
            if entries.is_empty() {
                return Err(match only {
                    Some(id) => Status::permission_denied(format!(
                        "no identity {id} is registered for this workload"
                    )),
                    None => no_identity(),
                });
            }
            let mut svids = Vec::with_capacity(entries.len());
            for e in entries.drain(..) {
                let ttl = Duration::from_secs(u64::from(e.jwt_ttl));
                let token = ctx
                    .provider
                    .sign_jwt_svid(&e.spiffe_id, &audience, ttl)
                    .map_err(provider_status)?;
                svids.push(pb::Jwtsvid {
                    spiffe_id: e.spiffe_id.into_string(),
                    svid: token,
                    hint: e.hint.unwrap_or_default(),
                });
            }
            unique_hints(svids.iter_mut().map(|s| &mut s.hint));
            Ok(svids)
        })
        .await?;
        Ok(Response::new(pb::JwtsvidResponse { svids }))
    }

    async fn fetch_jwt_bundles(
        &self,
        request: Request<pb::JwtBundlesRequest>,
    ) -> Result<Response<Self::FetchJWTBundlesStream>, Status> {
        let selectors = self.attest(&request).await?;
        self.open(BundlesState::<pb::JwtBundlesResponse>::new(selectors))
            .await
    }

    async fn validate_jwtsvid(
        &self,
        request: Request<pb::ValidateJwtsvidRequest>,
    ) -> Result<Response<pb::ValidateJwtsvidResponse>, Status> {
        let req = request.get_ref();
        if req.audience.is_empty() {
            return Err(Status::invalid_argument("audience must be specified"));
        }
        if req.svid.is_empty() {
            return Err(Status::invalid_argument("svid must be specified"));
        }
        // The caller's bundle view decides which trust domains' tokens are valid for it;
        // a caller without entries still validates tokens of its own trust domain.
        let selectors = self.attest(&request).await?;
        let req = request.into_inner();
        let ctx = Arc::clone(&self.ctx);
        let (spiffe_id, claims) = blocking(move || {
            let keys = BundleKeys(ctx.view(&selectors)?.bundles());
            let validator = Validator::new(Arc::clone(&ctx.clock), req.audience);
            let valid = validator
                .validate(&req.svid, &keys)
                .map_err(|e| Status::invalid_argument(format!("invalid JWT-SVID: {e}")))?;
            let claims = match serde_json::to_value(&valid.claims) {
                Ok(serde_json::Value::Object(m)) => m,
                _ => return Err(Status::internal("cannot encode the claims")),
            };
            Ok((valid.claims.sub.into_string(), claims))
        })
        .await?;
        Ok(Response::new(pb::ValidateJwtsvidResponse {
            spiffe_id,
            claims: Some(to_struct(claims)),
        }))
    }

    async fn fetch_witsvid(
        &self,
        request: Request<pb::WitsvidRequest>,
    ) -> Result<Response<Self::FetchWITSVIDStream>, Status> {
        self.require_wit()?;
        let only = optional_spiffe_id(&request.get_ref().spiffe_id)?;
        let selectors = self.attest(&request).await?;
        self.open(WitSvidState::new(selectors, only)).await
    }

    async fn fetch_wit_bundles(
        &self,
        request: Request<pb::WitBundlesRequest>,
    ) -> Result<Response<Self::FetchWITBundlesStream>, Status> {
        self.require_wit()?;
        let selectors = self.attest(&request).await?;
        self.open(BundlesState::<pb::WitBundlesResponse>::new(selectors))
            .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use aims_core::{ManualClock, TrustDomain};
    use aims_crypto::{Algorithm, SigningKey};

    use super::*;
    use crate::state::recompute_permits;

    fn test_ctx(clock: &ManualClock) -> Ctx {
        let clock: Arc<dyn aims_core::Clock> = Arc::new(clock.clone());
        let td = TrustDomain::new("example.org").unwrap();
        let ca = aims_pki::CertificateAuthority::new_root(
            &td,
            Duration::from_secs(86_400),
            Arc::new(aims_core::SystemClock),
        )
        .unwrap();
        let jwt = SigningKey::generate(Algorithm::ES256).unwrap();
        let provider =
            crate::StaticProvider::new(ca, jwt, Arc::new(aims_core::SystemClock)).unwrap();
        Ctx {
            provider: Arc::new(provider),
            attestor: Arc::new(crate::UnixAttestor::new()),
            clock,
            recompute: tokio::sync::Semaphore::new(recompute_permits()),
            attesting: crate::state::UidGate::new(crate::state::MAX_ATTESTATIONS_PER_UID),
        }
    }

    /// A stream whose message is whether the wall clock has reached `at`, to be
    /// recomputed at `at`.
    struct Deadline {
        at: i64,
        computed: Arc<AtomicUsize>,
    }

    impl Snapshot for Deadline {
        type Msg = bool;
        fn compute(&mut self, ctx: &Ctx) -> Result<Computed<bool>, Status> {
            self.computed.fetch_add(1, Ordering::SeqCst);
            Ok(Computed {
                msg: ctx.clock.now() >= self.at,
                refresh_at: Some(self.at),
            })
        }
    }

    /// The machine sleeps (VM paused) for an hour: the wall clock jumps past the
    /// rotation time, Tokio's clock does not. The stream still rotates within one capped
    /// sleep, and before that it does not recompute on every wake.
    #[tokio::test(start_paused = true)]
    async fn rotation_follows_the_wall_clock_after_a_pause() {
        let clock = ManualClock::new(1_000);
        let ctx = Arc::new(test_ctx(&clock));
        let at = 1_000 + 3_600;
        let computed = Arc::new(AtomicUsize::new(0));
        let (tx, mut rx) = mpsc::channel(STREAM_BUFFER);
        let (_changes_tx, changes) = watch::channel(0u64);
        let (_stop_tx, stop) = watch::channel(false);
        let state = Deadline {
            at,
            computed: Arc::clone(&computed),
        };
        tokio::spawn(drive(state, false, Some(at), tx, changes, stop, ctx));
        // A wake before the refresh time (wall clock unchanged): nothing recomputed.
        tokio::time::sleep(MAX_SLEEP + Duration::from_secs(1)).await;
        assert_eq!(computed.load(Ordering::SeqCst), 0);
        assert!(rx.try_recv().is_err());
        // The pause: the wall clock is past the refresh time.
        clock.advance(3_600);
        let msg = tokio::time::timeout(MAX_SLEEP + Duration::from_secs(1), rx.recv())
            .await
            .expect("the stream rotates within one capped sleep")
            .expect("the stream is open")
            .unwrap();
        assert!(msg);
        assert_eq!(computed.load(Ordering::SeqCst), 1);
    }
}
