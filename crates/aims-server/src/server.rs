//! Starting, running and stopping the server.
//!
//! [`start`] opens the database, loads or creates the keys, fills the caches, binds every
//! listener and spawns the tasks; it returns a [`RunningServer`] whose [`Endpoints`] say
//! where everything listens. [`RunningServer::shutdown`] stops accepting, lets open
//! requests and streams finish (bounded by [`DRAIN_TIMEOUT`]), then closes the database.
//! [`shutdown_signal`] resolves on SIGTERM or SIGINT.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aims_core::{Clock, SpiffeId, TrustDomain};
use aims_store::Store;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{Config, endpoint_socket_env};
use crate::entries::EntryCache;
use crate::federation::Federation;
use crate::identity::ServerIdentity;
use crate::keys::{KeyManager, KeyPolicy};
use crate::listen::{self, DRAIN_TIMEOUT};
use crate::notify::Changes;
use crate::state::AppState;
use crate::tls::TlsIdentity;
use crate::{ServerError, admin, oauth, pdp, public, telemetry};

/// Where a running server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// The trust domain.
    pub trust_domain: TrustDomain,
    /// The server's own SPIFFE ID (its TLS listeners present it).
    pub server_id: SpiffeId,
    /// The plain HTTP listener.
    pub http: SocketAddr,
    /// The admin API's Unix socket.
    pub admin_socket: PathBuf,
    /// The admin API's mTLS listener, if configured.
    pub admin_mtls: Option<SocketAddr>,
    /// The Workload API's Unix socket.
    pub workload_socket: PathBuf,
    /// The `https_spiffe` bundle endpoint, if configured.
    pub bundle_endpoint: Option<SocketAddr>,
    /// The OAuth authorization server's issuer identifier, when it is enabled.
    pub oauth_issuer: Option<String>,
    /// The OAuth mTLS listener (RFC 8705 endpoint aliases), if configured.
    pub oauth_mtls: Option<SocketAddr>,
    /// The AuthZEN PDP's mTLS listener, if configured.
    pub pdp: Option<SocketAddr>,
    /// The AuthZEN PDP's identifier (base URL), when it is enabled.
    pub pdp_base_url: Option<String>,
    /// The data directory (absolute).
    pub data_dir: PathBuf,
    /// `sqlite` or `postgres`.
    pub storage: &'static str,
}

impl fmt::Display for Endpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "AIMS server running")?;
        writeln!(f, "  trust domain     {}", self.trust_domain)?;
        writeln!(f, "  server ID        {}", self.server_id)?;
        writeln!(
            f,
            "  HTTP             http://{}  (/healthz /readyz /metrics /bundle)",
            self.http
        )?;
        if let Some(i) = &self.oauth_issuer {
            writeln!(
                f,
                "  OAuth issuer     {i}  (/.well-known/oauth-authorization-server)"
            )?;
        }
        if let Some(a) = self.oauth_mtls {
            writeln!(
                f,
                "  OAuth mTLS       https://{a}  (token, introspection, revocation, PAR)"
            )?;
        }
        if let Some(p) = &self.pdp_base_url {
            writeln!(
                f,
                "  AuthZEN PDP      {p}  (/.well-known/authzen-configuration)"
            )?;
        }
        if let Some(b) = self.bundle_endpoint {
            writeln!(f, "  bundle endpoint  https://{b}  (https_spiffe)")?;
        }
        writeln!(f, "  admin socket     {}", self.admin_socket.display())?;
        if let Some(a) = self.admin_mtls {
            writeln!(f, "  admin mTLS       https://{a}")?;
        }
        writeln!(
            f,
            "  workload socket  SPIFFE_ENDPOINT_SOCKET={}",
            endpoint_socket_env(&self.workload_socket)
        )?;
        writeln!(f, "  data directory   {}", self.data_dir.display())?;
        write!(f, "  storage          {}", self.storage)
    }
}

/// A started server.
#[derive(Debug)]
pub struct RunningServer {
    endpoints: Endpoints,
    state: AppState,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl RunningServer {
    /// Where the server listens.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The shared state (for tests and embedding).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops accepting, drains open connections (at most [`DRAIN_TIMEOUT`] each),
    /// closes the database and removes the sockets.
    pub async fn shutdown(mut self) {
        tracing::info!("shutting down");
        self.state.shutting_down.store(true, Ordering::SeqCst);
        let _ = self.stop.send(true);
        let drained = tokio::time::timeout(DRAIN_TIMEOUT + Duration::from_secs(5), async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("some tasks did not stop in time; aborting them");
            self.tasks.abort_all();
            while self.tasks.join_next().await.is_some() {}
        }
        self.state.store.close().await;
        for p in [
            &self.endpoints.admin_socket,
            &self.endpoints.workload_socket,
        ] {
            let _ = std::fs::remove_file(p);
        }
        tracing::info!("stopped");
    }

    /// Runs until SIGTERM or SIGINT, then shuts down gracefully.
    pub async fn run_until_signal(self) {
        shutdown_signal().await;
        self.shutdown().await;
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the server");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Creates the data directory (mode 0700) and returns its absolute path.
fn prepare_data_dir(dir: &Path) -> Result<PathBuf, ServerError> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(ServerError::io("create the data directory", dir))?;
    }
    let abs = std::path::absolute(dir).map_err(ServerError::io("resolve", dir))?;
    let meta = std::fs::metadata(&abs).map_err(ServerError::io("inspect", &abs))?;
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(&abs, std::fs::Permissions::from_mode(0o700))
            .map_err(ServerError::io("restrict the mode of", &abs))?;
    }
    Ok(abs)
}

/// How long after their expiry store records are kept: the clock difference between
/// nodes that share a database this allows for. A node whose clock runs ahead must not
/// delete a proof's `jti` that a node behind it would still accept, replayed.
const SWEEP_MARGIN_SECS: i64 = 300;

/// Store upkeep: every `every` (`[storage] sweep_interval`), the single-use records
/// (proof `jti`s, nonces), grants and browser state (login sessions, pending
/// authorization requests) that expired more than [`SWEEP_MARGIN_SECS`] ago are deleted,
/// in chunks so that token requests interleave. Without it these tables would only grow.
/// Errors are logged and retried at the next tick.
async fn store_upkeep(
    store: Store,
    clock: Arc<dyn Clock>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|v| *v) => break,
        }
        let before = clock.now().saturating_sub(SWEEP_MARGIN_SECS);
        for (kind, swept) in [
            ("single_use", store.sweep_expired(before).await),
            ("grant", store.sweep_grants(before).await),
            ("browser_state", store.sweep_browser_state(before).await),
        ] {
            match swept {
                Ok(n) => {
                    metrics::counter!("aims_store_expired_deleted_total", "kind" => kind)
                        .increment(n);
                    tracing::debug!(kind, deleted = n, "expired store records deleted");
                }
                Err(e) => tracing::warn!(kind, error = %e, "store sweep failed; retrying later"),
            }
        }
    }
}

async fn bind_tcp(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })
}

fn local_addr(l: &TcpListener, addr: SocketAddr) -> Result<SocketAddr, ServerError> {
    l.local_addr()
        .map_err(|source| ServerError::Bind { addr, source })
}

/// Binds an optional listener: the listener and its address as bound, or `None`s.
async fn bind_optional(
    addr: Option<SocketAddr>,
) -> Result<(Option<TcpListener>, Option<SocketAddr>), ServerError> {
    let Some(addr) = addr else {
        return Ok((None, None));
    };
    let l = bind_tcp(addr).await?;
    let bound = local_addr(&l, addr)?;
    Ok((Some(l), Some(bound)))
}

/// Starts the server described by `config`, with `clock` driving every schedule.
pub async fn start(config: Config, clock: Arc<dyn Clock>) -> Result<RunningServer, ServerError> {
    // One crypto provider for every TLS client and server built without an explicit
    // one (reqwest). Already installed is fine.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();

    let problems = config.check_rules("");
    if !problems.is_empty() {
        return Err(ServerError::Config(crate::config::ConfigErrors(problems)));
    }
    // What `aims config check` warns about, in the running server's log too.
    for w in config.warnings() {
        tracing::warn!(help = w.help.as_deref().unwrap_or(""), "{}", w.message);
    }
    let mut config = config;
    config.server.data_dir = prepare_data_dir(&config.server.data_dir)?;
    let admin_socket = std::path::absolute(config.admin_socket())
        .map_err(ServerError::io("resolve", config.admin_socket()))?;
    let workload_socket = std::path::absolute(config.workload_socket())
        .map_err(ServerError::io("resolve", config.workload_socket()))?;
    listen::check_socket_path(&admin_socket)?;
    listen::check_socket_path(&workload_socket)?;
    let config = Arc::new(config);
    let td = config.server.trust_domain.clone();
    // Read before the store is opened: a bad key file stops the start before any key is
    // made or loaded.
    let kek = config.keys.load_kek()?.map(Arc::new);
    if kek.is_some() {
        tracing::info!("signing keys are sealed with [keys] encryption_key_file");
    }

    let store = Store::connect(&config.storage_url()).await?;
    let changes = Changes::new();
    let keys = Arc::new(
        KeyManager::new(
            td.clone(),
            store.clone(),
            Arc::clone(&clock),
            KeyPolicy::from_config(&config),
            changes.clone(),
        )
        .with_kek(kek),
    );
    keys.tick().await?;
    let entries = Arc::new(EntryCache::new(store.clone(), changes.clone()));
    entries.refresh().await?;
    let federation = Arc::new(Federation::new(
        td.clone(),
        store.clone(),
        Arc::clone(&clock),
        config.federated().cloned().collect(),
        changes.clone(),
    ));
    federation.reload().await?;
    let tls = Arc::new(TlsIdentity::new(
        td.clone(),
        config.federated().map(|f| f.name.clone()).collect(),
        Arc::clone(&clock),
    )?);
    let state = AppState {
        config: Arc::clone(&config),
        clock: Arc::clone(&clock),
        store,
        keys,
        entries,
        federation,
        tls,
        changes,
        metrics: telemetry::metrics_handle(),
        shutting_down: Arc::new(AtomicBool::new(false)),
        readiness: Arc::default(),
    };
    state.tls.refresh(&state)?;
    // How many threads serve requests (`[server] worker_threads`, applied by whoever
    // built the runtime).
    metrics::gauge!("aims_runtime_worker_threads")
        .set(tokio::runtime::Handle::current().metrics().num_workers() as f64);

    // Listeners: bind everything before spawning anything, so a failure leaves nothing
    // running.
    let http = bind_tcp(config.http.listen).await?;
    let http_addr = local_addr(&http, config.http.listen)?;
    let (admin_mtls, admin_mtls_addr) = bind_optional(config.admin.mtls_listen).await?;
    let (bundle_ep, bundle_ep_addr) = bind_optional(config.http.bundle_endpoint_listen).await?;
    let (oauth_mtls, oauth_mtls_addr) =
        bind_optional(config.oauth.mtls_listen.filter(|_| config.oauth.enabled)).await?;
    let (pdp_listener, pdp_addr) =
        bind_optional(config.pdp.listen.filter(|_| config.pdp.enabled)).await?;
    let admin_unix = listen::bind_unix(&admin_socket, 0o600)?;
    // Workloads of any user may connect: the Workload API authenticates by attestation.
    let workload_unix = match listen::bind_unix(&workload_socket, 0o666) {
        Ok(l) => l,
        Err(e) => {
            let _ = std::fs::remove_file(&admin_socket);
            return Err(e);
        }
    };

    let (stop, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };
    let mut tasks = JoinSet::new();

    let oauth_server = if config.oauth.enabled {
        let issuer = config.oauth_issuer(http_addr)?;
        let mtls_base = config
            .oauth
            .mtls_base_url
            .clone()
            .or_else(|| oauth_mtls_addr.map(|a| format!("https://{a}")));
        Some(Arc::new(oauth::OAuthServer::new(
            &state,
            issuer,
            mtls_base.as_deref(),
        )?))
    } else {
        None
    };
    let pdp_server = match (&config.pdp.policy_dir, config.pdp.enabled) {
        (Some(dir), true) => {
            let base_url = config
                .pdp
                .base_url
                .clone()
                .unwrap_or_else(|| match pdp_addr {
                    Some(a) => format!("https://{a}"),
                    None => format!("http://{http_addr}"),
                });
            Some(pdp::PdpServer::new(
                &state,
                dir,
                base_url,
                oauth_server.as_ref().map(|o| o.issuer().clone()),
                config.pdp.expose_reasons,
                &config.pdp.callers,
            )?)
        }
        _ => None,
    };
    let mut public_app = public::router(state.clone());
    if let Some(o) = &oauth_server {
        public_app = public_app.merge(oauth::router(Arc::clone(o)));
    }
    if let Some(p) = pdp_server.as_ref().filter(|_| config.pdp.on_http) {
        public_app = public_app.merge(p.router());
    }
    let public_app = public_app.layer(axum::middleware::from_fn(|r, n| {
        public::record_metrics("http", r, n)
    }));
    let connections = listen::ConnectionSettings {
        header_read_timeout: config.http.header_read_timeout.duration(),
        request_timeout: config.http.request_timeout.duration(),
        max_connections: config.http.max_connections.get(),
    };
    tasks.spawn(listen::serve_tcp(
        http,
        public_app,
        connections,
        stop_rx.clone(),
        "http",
    ));

    let admin_app = admin::router(state.clone()).layer(axum::middleware::from_fn(|r, n| {
        public::record_metrics("admin", r, n)
    }));
    tasks.spawn({
        let shutdown = stopped(stop_rx.clone());
        let app = admin_app.clone();
        async move {
            if let Err(e) = axum::serve(admin_unix, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %e, "admin socket failed");
            }
        }
    });

    if let Some(l) = admin_mtls {
        let app: Router = admin::router(state.clone())
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                admin::require_admin,
            ))
            .layer(axum::middleware::from_fn(|r, n| {
                public::record_metrics("admin_mtls", r, n)
            }));
        let tls = Arc::clone(&state.tls);
        tasks.spawn(listen::serve_tls(
            l,
            move || tls.admin_config(),
            app,
            listen::PeerInfo::VerifiedSpiffeId,
            connections,
            stop_rx.clone(),
            "admin_mtls",
        ));
    }

    if let (Some(l), Some(o)) = (oauth_mtls, &oauth_server)
        && let Some(base) = o.mtls_base()
    {
        let app: Router =
            oauth::mtls_router(Arc::clone(o), base).layer(axum::middleware::from_fn(|r, n| {
                public::record_metrics("oauth_mtls", r, n)
            }));
        let tls = Arc::clone(&state.tls);
        // Any client certificate passes the handshake; never read it as a PeerId: the
        // client authentication method verifies the chain per request.
        tasks.spawn(listen::serve_tls(
            l,
            move || tls.oauth_mtls_config(),
            app,
            listen::PeerInfo::UnverifiedChain,
            connections,
            stop_rx.clone(),
            "oauth_mtls",
        ));
    }

    if let (Some(l), Some(p)) = (pdp_listener, &pdp_server) {
        let app: Router = p.router().layer(axum::middleware::from_fn(|r, n| {
            public::record_metrics("pdp", r, n)
        }));
        let tls = Arc::clone(&state.tls);
        // The bundle endpoint's configuration: the server SVID, client SVIDs of this
        // and the federated trust domains optional (the PDP's caller check decides).
        tasks.spawn(listen::serve_tls(
            l,
            move || tls.bundle_config(),
            app,
            listen::PeerInfo::VerifiedSpiffeId,
            connections,
            stop_rx.clone(),
            "pdp",
        ));
    }
    if let Some(p) = &pdp_server {
        tasks.spawn(pdp::reload_on_hangup(p.clone(), stop_rx.clone()));
    }

    if let Some(l) = bundle_ep {
        let app: Router =
            public::bundle_router()
                .with_state(state.clone())
                .layer(axum::middleware::from_fn(|r, n| {
                    public::record_metrics("bundle_endpoint", r, n)
                }));
        let tls = Arc::clone(&state.tls);
        tasks.spawn(listen::serve_tls(
            l,
            move || tls.bundle_config(),
            app,
            listen::PeerInfo::VerifiedSpiffeId,
            connections,
            stop_rx.clone(),
            "bundle_endpoint",
        ));
    }

    let identity = ServerIdentity::new(
        Arc::clone(&state.keys),
        Arc::clone(&state.entries),
        Arc::clone(&state.federation),
        Arc::clone(&clock),
        state.changes.clone(),
    )
    .node_id(config.server.node_id.clone());
    tasks.spawn({
        let shutdown = stopped(stop_rx.clone());
        let api = aims_workload::WorkloadApi::new(Arc::new(identity))
            .clock(Arc::clone(&clock))
            .max_connections_per_uid(config.workload_api.max_connections_per_uid);
        async move {
            if let Err(e) = api.serve(workload_unix, shutdown).await {
                tracing::error!(error = %e, "Workload API failed");
            }
        }
    });

    // Maintenance: key schedule, entry and bundle polling, server SVID renewal.
    tasks.spawn({
        let state = state.clone();
        let mut rx = stop_rx.clone();
        let every = config.storage.poll_interval.duration();
        async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = rx.wait_for(|v| *v) => break,
                }
                if let Err(e) = state.sync().await {
                    tracing::warn!(error = %e, "background sync failed; retrying at the next poll");
                }
                state.metrics.run_upkeep();
            }
        }
    });

    tasks.spawn(store_upkeep(
        state.store.clone(),
        Arc::clone(&clock),
        config.storage.sweep_interval.duration(),
        stop_rx.clone(),
    ));

    // Federation: fetch each configured endpoint at its refresh hint.
    for peer in config.federated() {
        if peer.bundle_endpoint_url.is_none() {
            continue;
        }
        let federation = Arc::clone(&state.federation);
        let td = peer.name.clone();
        let mut rx = stop_rx.clone();
        tasks.spawn(async move {
            loop {
                let wait = match federation.fetch(&td).await {
                    Ok(next) => {
                        tracing::info!(trust_domain = %td, next_in_secs = next.as_secs(), "federated bundle fetched");
                        next
                    }
                    Err(e) => {
                        tracing::warn!(trust_domain = %td, error = %e, "federated bundle fetch failed");
                        Duration::from_secs(30)
                    }
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = rx.wait_for(|v| *v) => break,
                }
            }
        });
    }

    let endpoints = Endpoints {
        trust_domain: td,
        server_id: state.tls.spiffe_id().clone(),
        http: http_addr,
        admin_socket,
        admin_mtls: admin_mtls_addr,
        workload_socket,
        bundle_endpoint: bundle_ep_addr,
        oauth_issuer: oauth_server
            .as_ref()
            .map(|o| o.issuer().as_str().to_owned()),
        oauth_mtls: oauth_mtls_addr,
        pdp: pdp_addr,
        pdp_base_url: pdp_server.as_ref().map(|p| p.base_url().to_owned()),
        data_dir: config.server.data_dir.clone(),
        storage: state.store.backend_name(),
    };
    tracing::info!(
        trust_domain = %endpoints.trust_domain,
        http = %endpoints.http,
        admin_socket = %endpoints.admin_socket.display(),
        workload_socket = %endpoints.workload_socket.display(),
        "server started"
    );
    Ok(RunningServer {
        endpoints,
        state,
        stop,
        tasks,
    })
}
