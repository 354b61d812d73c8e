//! `Application::build` binds every listener (port 0 works, so tests ask for `port()`), starts the
//! actors, and returns a handle that runs until SIGTERM or [`ShutdownHandle::shutdown`].

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpServer, dev::ServerHandle, web};

use crate::actors::{Actors, SessionService, SessionSweeper};
use crate::auth0::authentication::AuthenticationClient;
use crate::auth0::jwks::JwksCache;
use crate::auth0::{Auth0Http, SetupError};
use crate::clock::Clock;
use crate::config::{Settings, StoreKind};
use crate::health::{FnProbe, Health, ProbeFuture};
use crate::http::{self, AppState, Listener, metrics::Metrics};
use crate::store::{RedisOptions, RedisStore, Sealed, SledOptions, SledStore, Store, StoreError};

/// Why the daemon could not start, in a sentence an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot set up metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("cannot open the session store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot set up the Auth0 client: {0}")]
    Auth0(#[from] SetupError),
    #[error(transparent)]
    Plugin(#[from] crate::plugin_host::LoadError),
}

/// Why the daemon stopped other than cleanly.
#[derive(Debug, thiserror::Error)]
pub enum StopError {
    #[error("serving failed: {0}")]
    Serve(#[from] std::io::Error),
    /// The store did not finish its writes at shutdown: the process must exit without closing
    /// it, since closing a stuck sled store waits for it forever.
    #[error(
        "the session store did not finish its writes at shutdown ({0}); exiting without closing it"
    )]
    StoreStuck(StoreError),
}

/// The backend, seen through [`Sealed`] (SPEC §7), and its `auth0_client_store_unopenable_total`.
/// Public for the benchmarks' tool that fills a folder as the daemon would
/// (`tests/src/bin/store-bench.rs`).
pub fn open_store(
    settings: &Settings,
    clock: &Clock,
) -> Result<(Arc<dyn Store>, prometheus::IntCounter), StartError> {
    let backend = open_backend(settings, clock)?;
    let ring = crate::store::seal::KeyRing::from_settings(settings)?;
    tracing::info!(keys = %ring.source(), "sealing session tokens and claims at rest with AES-256-GCM");
    let sealed = Sealed::new(backend, Arc::new(ring))?;
    let unopenable = sealed.unopenable_metric();
    Ok((Arc::new(sealed), unopenable))
}

fn open_backend(settings: &Settings, clock: &Clock) -> Result<Arc<dyn Store>, StartError> {
    let store: Arc<dyn Store> = match settings.sessions.store {
        StoreKind::Sled => Arc::new(SledStore::open(
            &settings.sessions.path,
            SledOptions::from_settings(&settings.sessions, clock.clone()),
        )?),
        // Does not wait for Redis: the daemon starts, `/-/ready` is 503 until Redis answers, and
        // the store connects by itself. Only settings that cannot work stop it here.
        StoreKind::Redis => Arc::new(RedisStore::open(RedisOptions::from_settings(
            settings,
            clock.clone(),
        ))?),
    };
    Ok(store)
}

/// Every distinct tenant the login clients use (for the JWKS check-up).
fn tenants(settings: &Settings) -> Vec<url::Url> {
    let mut tenants: Vec<url::Url> = settings
        .clients
        .values()
        .map(|c| c.auth0_url.clone())
        .collect();
    tenants.sort();
    tenants.dedup();
    tenants
}

pub struct Application {
    main_addr: SocketAddr,
    management_addr: Option<SocketAddr>,
    servers: Vec<actix_web::dev::Server>,
    shutdown: ShutdownHandle,
    sessions: SessionService,
    jobs: crate::actors::jobs::JobsHandle,
    #[cfg(feature = "test-hooks")]
    store_faults: crate::store::faults::StoreFaults,
}

/// Starts the graceful shutdown of SPEC §8: `/-/ready` turns 503, the daemon waits
/// `DELAY_SHUTDOWN_SECONDS` so load balancers notice, stops accepting, drains in-flight requests.
#[derive(Clone)]
pub struct ShutdownHandle {
    health: web::Data<Health>,
    servers: Arc<Vec<ServerHandle>>,
    delay: Duration,
}

impl ShutdownHandle {
    pub async fn shutdown(&self) {
        tracing::info!(
            delay_seconds = self.delay.as_secs(),
            "shutdown requested: readiness now fails"
        );
        self.health.begin_shutdown();
        tokio::time::sleep(self.delay).await;
        tracing::info!("stopping listeners and draining in-flight requests");
        for server in self.servers.iter() {
            server.stop(true).await;
        }
    }
}

fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr).map_err(|source| StartError::Bind { addr, source })
}

impl Application {
    /// Binds the listeners and starts the actors; must run inside an actix system.
    pub fn build(settings: Settings) -> Result<Self, StartError> {
        Self::build_with_clock(settings, Clock::system())
    }

    /// [`Application::build`] with the clock every expiry is checked against (tests pass a
    /// manual one and move it instead of sleeping).
    pub fn build_with_clock(settings: Settings, clock: Clock) -> Result<Self, StartError> {
        // Plugins first: a plugin that cannot load stops the start before anything is bound.
        let plugins = crate::plugin_host::load_all(&settings.plugins)?;
        let main_listener = bind(SocketAddr::new(
            settings.server.bind,
            settings.server.http_port,
        ))?;
        let management_listener = settings.server.management_bind.map(bind).transpose()?;
        let main_addr = main_listener
            .local_addr()
            .map_err(|source| StartError::Bind {
                addr: SocketAddr::new(settings.server.bind, settings.server.http_port),
                source,
            })?;
        let management_addr = management_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok());

        let (store, unopenable) = open_store(&settings, &clock)?;
        #[cfg(feature = "test-hooks")]
        let (store, store_faults) = {
            let faults = crate::store::faults::StoreFaults::default();
            faults.listen_for_signals();
            let store: Arc<dyn Store> = Arc::new(crate::store::faults::FaultyStore::new(
                store,
                faults.clone(),
            ));
            (store, faults)
        };
        // On Redis, other daemons write too: a cached copy is served only after a revision check
        // (see `SessionService::lookup`).
        let sessions = SessionService::new(
            store.clone(),
            settings.sessions.timeout,
            settings.sessions.cache_bytes,
            clock.clone(),
        )
        .shared_with_other_daemons(settings.sessions.store == StoreKind::Redis)
        .with_pending_logins(crate::pending::PendingLogins::new(
            settings.sessions.max_pending_logins,
            settings.sessions.max_pending_logins_per_ip,
        ));
        let http = Auth0Http::from_settings(&settings)?;
        let jwks = JwksCache::new(http.clone(), clock.clone());
        let metrics = Metrics::new()?;
        metrics.register(Box::new(http.requests_metric()))?;
        let sessions_live = prometheus::IntGauge::new(
            "auth0_client_sessions_live",
            "Sessions not yet expired, all clients (refreshed every 30 s).",
        )?;
        metrics.register(Box::new(sessions_live.clone()))?;
        metrics.register(Box::new(unopenable))?;
        metrics.register(Box::new(crate::actors::sessions::StallGauge::new(
            sessions.clone(),
        )?))?;
        if store.flush_counts().is_some() {
            metrics.register(Box::new(crate::actors::sessions::FlushCounters::new(
                sessions.clone(),
            )?))?;
        }

        let auth = AuthenticationClient::new(http.clone());
        let management = crate::actors::ManagementService::start(
            crate::auth0::management::ManagementApi::from_settings(&http, &settings),
            clock.clone(),
        )
        .with_authentication(auth.clone());
        let jobs_gauge = crate::actors::jobs::Jobs::gauge()?;
        metrics.register(Box::new(jobs_gauge.clone()))?;
        let plugins = crate::actors::Plugins::start(plugins, clock.clone())?;
        metrics.register(Box::new(plugins.calls_metric()))?;
        let settings = web::Data::new(settings);
        let (tokens, logins) = crate::actors::tokens_and_logins(
            auth,
            jwks.clone(),
            settings.clone(),
            sessions.clone(),
            clock,
            plugins.clone(),
        );
        let actors = Actors::start(
            sessions.clone(),
            SessionSweeper::new(sessions.clone(), sessions_live),
            tokens,
            logins,
            management.clone(),
            crate::actors::jobs::Jobs::new(
                crate::actors::jobs::JobService::new(
                    store.clone(),
                    store,
                    settings.sessions.timeout,
                    management,
                    sessions.clock().clone(),
                ),
                &settings.jobs,
                settings.server.auth0_timeout,
                sessions.is_shared(),
                jobs_gauge,
            )
            .with_finished_hook(plugins.job_finished_hook()),
            plugins.clone(),
        );
        let mut health = Health::default();
        health.add_readiness(actors.probe());
        health.add_readiness(FnProbe::new("plugins", move || {
            let ready = plugins.readiness();
            Box::pin(async move { ready }) as ProbeFuture
        }));
        health.add_readiness(FnProbe::new("store", move || {
            let sessions = sessions.clone();
            Box::pin(async move {
                // The watchdog first: a store stuck inside sled may still answer a ping from its
                // other threads.
                if let Some(why) = sessions.stalled() {
                    return Err(format!("the session store is stalled: {why}"));
                }
                sessions.writable().await.map_err(|e| e.to_string())
            }) as ProbeFuture
        }));
        for tenant in tenants(&settings) {
            let jwks = jwks.clone();
            health.add_checkup(FnProbe::new(format!("jwks {tenant}"), move || {
                let (jwks, tenant) = (jwks.clone(), tenant.clone());
                Box::pin(async move {
                    jwks.check(&tenant)
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string())
                }) as ProbeFuture
            }));
        }
        let delay = Duration::from_secs(settings.delay_shutdown_seconds);
        let state = AppState {
            settings,
            health: web::Data::new(health),
            metrics: web::Data::new(metrics),
            actors,
        };

        let mut servers = Vec::new();
        let main_kind = if management_listener.is_some() {
            Listener::Public
        } else {
            Listener::All
        };
        let limits = Limits::from_environment(1 + usize::from(management_listener.is_some()));
        tracing::info!(
            workers = limits.workers,
            connections_per_worker = limits.per_worker,
            open_files = limits.open_files,
            body_timeout_ms = state.settings.server.body_timeout.as_millis(),
            "connection limits"
        );
        servers.push(serve(&state, main_kind, main_listener, limits)?);
        if let Some(listener) = management_listener {
            servers.push(serve(&state, Listener::Management, listener, limits)?);
        }
        let shutdown = ShutdownHandle {
            health: state.health.clone(),
            servers: Arc::new(servers.iter().map(|s| s.handle()).collect()),
            delay,
        };
        tracing::info!(%main_addr, management = ?management_addr, "listening");
        Ok(Self {
            main_addr,
            management_addr,
            servers,
            shutdown,
            sessions: state.actors.sessions.clone(),
            jobs: state.actors.jobs.clone(),
            #[cfg(feature = "test-hooks")]
            store_faults,
        })
    }

    /// The switches of the store's test hook (see [`crate::store::faults`]).
    #[cfg(feature = "test-hooks")]
    pub fn store_faults(&self) -> crate::store::faults::StoreFaults {
        self.store_faults.clone()
    }

    /// The bulk-import jobs (their poll loop can be run a round at a time: `poll_once`).
    pub fn jobs(&self) -> crate::actors::jobs::JobsHandle {
        self.jobs.clone()
    }

    pub fn port(&self) -> u16 {
        self.main_addr.port()
    }

    pub fn management_port(&self) -> Option<u16> {
        self.management_addr.map(|a| a.port())
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// Serves until SIGTERM (or SIGINT, or a [`ShutdownHandle::shutdown`]) has drained every
    /// listener, then flushes the store within `sessions.timeoutMs`. Tells systemd the daemon is
    /// ready first. [`StopError::StoreStuck`] tells the caller to exit without dropping the store.
    pub async fn run_until_stopped(self) -> Result<(), StopError> {
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
        let shutdown = self.shutdown.clone();
        let signals = tokio::spawn(async move {
            wait_for_signal().await;
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
            shutdown.shutdown().await;
        });
        let results = futures_util::future::join_all(self.servers).await;
        signals.abort();
        if let Err(err) = self.sessions.flush().await {
            return Err(StopError::StoreStuck(err));
        }
        tracing::info!("stopped");
        results.into_iter().collect::<Result<(), _>>()?;
        Ok(())
    }
}

/// How the listeners treat connections (see the README, "Connections"). A connection holds a file
/// descriptor and some memory from accept to close, so each stage has a bound:
/// - the request head must arrive within [`HEAD_TIMEOUT`] (actix answers 408 otherwise);
/// - its body within `server.bodyTimeoutMs` (the middleware answers 408 and closes, see
///   `http::edge`);
/// - an idle keep-alive connection is closed after [`KEEP_ALIVE`], longer than the 60 s idle
///   timeout of the usual proxies and load balancers, so that they, not the daemon, close pooled
///   connections (a proxy sending on a connection the daemon is closing gets an error);
/// - after an answer that ends a connection (a body left unread), the daemon waits at most
///   [`LINGER`] for the client to read it and close, rather than resetting the connection
///   under the answer;
/// - each worker holds at most [`Limits::per_worker`] connections; past it, it stops accepting
///   and new connections wait in the listen backlog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub workers: usize,
    pub per_worker: usize,
    /// The soft open-file limit the caps were sized from.
    pub open_files: u64,
}

/// See [`Limits`].
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// See [`Limits`].
pub const KEEP_ALIVE: Duration = Duration::from_secs(75);
/// See [`Limits`].
pub const LINGER: Duration = Duration::from_secs(1);
/// The most connections one worker holds, whatever the open-file limit: 25,000 per worker is
/// 50,000 on the 2 workers of a 2-core machine, within the systemd unit's `LimitNOFILE=65536`
/// with room for the store, the log and the Auth0 connections; at about 25 KB per connection
/// (measured: 20,000 stalled connections took 460 MB) that is ~1.2 GB at worst.
pub const MAX_CONNECTIONS_PER_WORKER: usize = 25_000;
/// The fewest connections a worker holds even under a tiny open-file limit.
const MIN_CONNECTIONS_PER_WORKER: usize = 64;
/// The open-file limit the daemon raises its soft limit to (within the hard limit): the systemd
/// unit's `LimitNOFILE`.
const OPEN_FILES_WANTED: u64 = 65_536;

impl Limits {
    /// Raises the soft open-file limit towards [`OPEN_FILES_WANTED`] (within the hard limit, as
    /// systemd's `LimitNOFILE` sets both) and sizes the per-worker caps of `listeners` listeners
    /// from it.
    pub fn from_environment(listeners: usize) -> Self {
        let workers = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        let open_files = rlimit::increase_nofile_limit(OPEN_FILES_WANTED)
            .or_else(|_| rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft))
            .unwrap_or(1024);
        Self::sized(open_files, workers, listeners)
    }

    /// The caps for `open_files` descriptors shared by `listeners` listeners of `workers` workers
    /// each: an eighth of the descriptors (at least 256) is kept for everything that is not a
    /// client connection (the store's files, the log, Auth0 connections, the runtime), the rest
    /// is split evenly, within [`MIN_CONNECTIONS_PER_WORKER`]..=[`MAX_CONNECTIONS_PER_WORKER`].
    pub fn sized(open_files: u64, workers: usize, listeners: usize) -> Self {
        let reserved = (open_files / 8).max(256);
        let for_connections =
            usize::try_from(open_files.saturating_sub(reserved)).unwrap_or(usize::MAX);
        let per_worker = (for_connections / (workers.max(1) * listeners.max(1)))
            .clamp(MIN_CONNECTIONS_PER_WORKER, MAX_CONNECTIONS_PER_WORKER);
        Self {
            workers: workers.max(1),
            per_worker,
            open_files,
        }
    }
}

fn serve(
    state: &AppState,
    listener: Listener,
    socket: TcpListener,
    limits: Limits,
) -> Result<actix_web::dev::Server, StartError> {
    let addr = socket
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let state = state.clone();
    // `max_connection_rate` is not set: it bounds TLS handshakes only, and the daemon serves
    // plain HTTP behind its proxy.
    let server = HttpServer::new(move || http::app(state.clone(), listener))
        .disable_signals()
        .shutdown_timeout(30)
        .workers(limits.workers)
        .max_connections(limits.per_worker)
        .client_request_timeout(HEAD_TIMEOUT)
        .keep_alive(KEEP_ALIVE)
        .client_disconnect_timeout(LINGER)
        .listen(socket)
        .map_err(|source| StartError::Bind { addr, source })?
        .run();
    Ok(server)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
        }
        _ => {
            tracing::error!("cannot listen for signals; only a kill stops the daemon");
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_caps_follow_the_open_file_limit() {
        // The systemd unit: LimitNOFILE=65536, 2 workers.
        assert_eq!(
            Limits::sized(65_536, 2, 1).per_worker,
            MAX_CONNECTIONS_PER_WORKER
        );
        // Two listeners share the same descriptors.
        assert_eq!(Limits::sized(65_536, 2, 2).per_worker, (65_536 - 8_192) / 4);
        assert_eq!(Limits::sized(20_000, 2, 1).per_worker, (20_000 - 2_500) / 2);
        // The usual default soft limit: a quarter kept aside.
        assert_eq!(Limits::sized(1_024, 2, 1).per_worker, (1_024 - 256) / 2);
        assert_eq!(
            Limits::sized(256, 8, 1).per_worker,
            MIN_CONNECTIONS_PER_WORKER
        );
        assert_eq!(Limits::sized(u64::MAX, 0, 0).workers, 1);
    }
}
