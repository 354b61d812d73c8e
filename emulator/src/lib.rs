//! auth0-emulator: a local Auth0 tenant (SPEC §10), faithful to `reference/auth0-api-wire.md`.
//!
//! ```no_run
//! use auth0_emulator::{Emulator, Seed};
//! let emulator = Emulator::start(Seed::demo())?;
//! println!("tenant at {}", emulator.base_url()); // http://127.0.0.1:PORT, no trailing slash
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The server runs on its own thread with its own actix `System`, so a handle works from any test runtime
//! (actix-rt, `#[tokio::test]`, plain threads). Dropping the handle stops the server.
//!
//! Modules: [`authentication`] (the Authentication API), [`backchannel`] (logout tokens to the applications), [`control`] (`/__emulator/*`), `management`,
//! `jobs` and `lucene` (the Management API v2 and import jobs), [`observe`] (request log, faults and 429 mode
//! applied to every route), [`state`] (the shared tenant), [`seed`], [`keys`] and [`jwt`].

// Handlers build their error answers early and return them as `Err(HttpResponse)`: the size is not a concern
// next to the network round trip, and it keeps each handler a straight line.
#![allow(clippy::result_large_err)]

pub mod authentication;
pub mod backchannel;
pub mod control;
pub mod jobs;
pub mod jwt;
pub mod keys;
pub mod lucene;
pub mod management;
pub mod observe;
pub mod seed;
pub mod state;

use std::{
    net::{SocketAddr, TcpListener},
    sync::{Arc, mpsc},
    thread::JoinHandle,
};

use actix_web::{App, HttpResponse, HttpServer, dev::ServerHandle, middleware::from_fn, web};
use serde_json::json;

pub use observe::{Fault, RateLimit, RecordedRequest};
pub use seed::{Seed, SeedApi, SeedClient, SeedConnection, SeedError, SeedUser};
pub use state::{ManagementError, Settings, Tenant, TenantData, TokenInfo, User};

/// Mounts every route: the Authentication API, the control API and the Management API.
pub fn configure(cfg: &mut web::ServiceConfig) {
    authentication::configure(cfg);
    control::configure(cfg);
    crate::management::configure(cfg);
}

/// Starts emulators: [`Emulator::start`], or [`Emulator::builder`] to choose the port or the workers.
#[derive(Debug, Clone, Copy)]
pub struct Emulator;

/// An emulator to configure before starting it.
#[derive(Debug, Clone)]
pub struct EmulatorBuilder {
    seed: Seed,
    port: u16,
    workers: usize,
    handle_signals: bool,
}

impl Emulator {
    /// Starts an emulator on `127.0.0.1` and a free port with `seed`.
    pub fn start(seed: Seed) -> std::io::Result<EmulatorHandle> {
        Self::builder(seed).start()
    }

    /// An emulator to configure before starting it.
    pub fn builder(seed: Seed) -> EmulatorBuilder {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
        EmulatorBuilder {
            seed,
            port: 0,
            workers,
            handle_signals: false,
        }
    }
}

impl EmulatorBuilder {
    /// The port to listen on (0, the default, picks a free one).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// HTTP worker threads (default: the available parallelism, at most 4).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// Stop on SIGINT/SIGTERM (the binary does; an in-process emulator must leave signals to its host).
    pub fn handle_signals(mut self, handle: bool) -> Self {
        self.handle_signals = handle;
        self
    }

    /// Binds `127.0.0.1:port` and starts serving on a dedicated thread.
    pub fn start(self) -> std::io::Result<EmulatorHandle> {
        let listener = TcpListener::bind(("127.0.0.1", self.port))?;
        let address = listener.local_addr()?;
        let base_url = format!("http://127.0.0.1:{}", address.port());
        let tenant = web::Data::new(Tenant::new(&base_url, &self.seed)?);

        let (ready_tx, ready_rx) = mpsc::channel::<std::io::Result<ServerHandle>>();
        let server_tenant = tenant.clone();
        let workers = self.workers;
        let handle_signals = self.handle_signals;
        let thread = std::thread::Builder::new()
            .name(format!("auth0-emulator-{}", address.port()))
            .spawn(move || {
                let system = actix_web::rt::System::new();
                let app_tenant = server_tenant.clone();
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(app_tenant.clone())
                        .app_data(web::PayloadConfig::new(observe::MAX_BODY_BYTES))
                        .wrap(from_fn(observe::observe))
                        .configure(configure)
                        .default_service(web::to(not_found))
                })
                .workers(workers)
                .shutdown_timeout(1);
                let server = if handle_signals {
                    server
                } else {
                    server.disable_signals()
                };
                let server = match server.listen(listener) {
                    Ok(server) => server,
                    Err(error) => {
                        let _ = ready_tx.send(Err(error));
                        return;
                    }
                };
                let server = server.run();
                let _ = ready_tx.send(Ok(server.handle()));
                if let Err(error) = system.block_on(server) {
                    tracing::error!(%error, "the emulator server stopped with an error");
                }
                server_tenant.release_keys();
            })?;
        let server = ready_rx.recv().map_err(|_| {
            std::io::Error::other("the emulator thread ended before its server started")
        })??;
        Ok(EmulatorHandle {
            tenant: tenant.into_inner(),
            base_url,
            address,
            server,
            thread: Some(thread),
        })
    }
}

async fn not_found() -> HttpResponse {
    // Auth0's unknown-path answer is not documented; a hapi-style 404 like the Management API's ([INF]).
    HttpResponse::NotFound()
        .content_type("application/json; charset=utf-8")
        .body(json!({"statusCode": 404, "error": "Not Found", "message": "Not Found"}).to_string())
}

/// A running emulator. Dropping it stops the server.
#[derive(Debug)]
pub struct EmulatorHandle {
    tenant: Arc<Tenant>,
    base_url: String,
    address: SocketAddr,
    server: ServerHandle,
    thread: Option<JoinHandle<()>>,
}

impl EmulatorHandle {
    /// `http://127.0.0.1:PORT` (no trailing slash): the daemon's `auth0Url`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// `<base>/`, the `iss` of every token.
    pub fn issuer(&self) -> String {
        self.tenant.issuer()
    }

    /// `<base>/api/v2/`, the Management API audience.
    pub fn management_audience(&self) -> String {
        self.tenant.management_audience()
    }

    /// The tenant's state, for everything the helpers below do not cover.
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// The requests received so far (oldest first), control API calls excluded.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.tenant.observer.requests()
    }

    /// The back-channel logout deliveries made so far (oldest first): each POST to a client's
    /// `backchannelLogoutUrls` with the daemon's answer, as the control API lists them.
    pub fn backchannel_deliveries(&self) -> Vec<serde_json::Value> {
        backchannel::delivery_log(&self.tenant)
    }

    /// The requests received on `path` (exact, or a prefix ending in `*`).
    pub fn requests_to(&self, path: &str) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| observe::route_matches(path, &r.path))
            .collect()
    }

    pub fn clear_requests(&self) {
        self.tenant.observer.clear_requests();
    }

    /// Injects a fault (see [`Fault`]); returns it with its id.
    pub fn add_fault(&self, fault: Fault) -> Fault {
        self.tenant.observer.add_fault(fault)
    }

    /// Shorthand: answer `count` requests to `route` with `status` and `body`.
    pub fn fail(&self, route: &str, status: u16, body: serde_json::Value, count: u32) -> Fault {
        self.add_fault(Fault {
            id: 0,
            route: route.into(),
            method: None,
            status: Some(status),
            body: Some(body),
            headers: Default::default(),
            delay_ms: 0,
            count: Some(count),
            drop_connection: false,
            hits: 0,
        })
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.tenant.observer.clear_faults(None);
    }

    /// Starts (`Some`) or ends (`None`) the 429 mode.
    pub fn set_rate_limit(&self, mode: Option<RateLimit>) -> Option<RateLimit> {
        self.tenant.observer.set_rate_limit(mode)
    }

    /// The current settings (lifetimes, job speed).
    pub fn settings(&self) -> Settings {
        self.tenant.data().settings.clone()
    }

    /// Changes settings: `emulator.update_settings(|s| s.access_token_seconds = 1)`.
    pub fn update_settings(&self, change: impl FnOnce(&mut Settings)) -> Settings {
        let settings = {
            let mut data = self.tenant.data();
            change(&mut data.settings);
            data.settings.clone()
        };
        self.tenant
            .observer
            .set_capacity(settings.request_log_capacity);
        settings
    }

    /// Makes a new signing key current (the previous stays in the JWKS when `keep_previous`); returns its kid.
    pub fn rotate_signing_key(&self, keep_previous: bool) -> String {
        self.tenant.rotate_signing_key(keep_previous)
    }

    /// The kid of the key signing new tokens.
    pub fn current_kid(&self) -> String {
        self.tenant.signing_key().kid().to_string()
    }

    /// Adds a user (seed format); returns its `user_id`.
    pub fn add_user(&self, user: &SeedUser) -> Result<String, SeedError> {
        self.tenant.add_seed_user(user)
    }

    /// Blocks or unblocks a user found by `user_id` or email; `false` when there is none.
    pub fn set_blocked(&self, id_or_email: &str, blocked: bool) -> bool {
        let mut data = self.tenant.data();
        let Some(user_id) = data
            .find_user_anywhere(id_or_email)
            .map(|u| u.user_id.clone())
        else {
            return false;
        };
        if let Some(user) = data.user_mut(&user_id) {
            user.blocked = blocked;
            user.updated_at = state::now();
        }
        true
    }

    /// A user's Auth0 JSON, by `user_id` or email.
    pub fn user(&self, id_or_email: &str) -> Option<serde_json::Value> {
        self.tenant
            .data()
            .find_user_anywhere(id_or_email)
            .map(User::to_json)
    }

    /// Replaces the tenant's content with `seed` (keys, settings, faults and the log are kept).
    pub fn reseed(&self, seed: &Seed) -> Result<(), SeedError> {
        self.tenant.reseed(seed)
    }

    /// A Management API token for `client_id` with every scope, without an HTTP round trip.
    pub fn management_token(&self, client_id: &str) -> String {
        self.tenant
            .issue_management_token(client_id, state::MANAGEMENT_SCOPES)
    }

    /// Blocks until the server stops (the binary's main loop).
    pub fn wait(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Stops the server and waits for its thread (dropping the handle stops it without waiting).
    pub fn stop(mut self) {
        drop(self.server.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        // `stop` sends the command at once; its future only waits for completion, which a drop cannot await.
        drop(self.server.stop(false));
    }
}
