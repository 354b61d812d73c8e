//! The actix actors that own the daemon's long-lived state (DESIGN.md, "Actors and flows"), and
//! the cloned handles that run on the HTTP workers.
//!
//! | part | owns | runs on |
//! |---|---|---|
//! | [`SessionService`] | every session and state write (compare-and-swap), the read cache | the workers (a cloned handle) |
//! | [`Logins`] | nothing: the password grant and the code exchange | the workers (a cloned handle) |
//! | [`Tokens`] | the refresh flights ([`single_flight::SingleFlight`]), token sets whose save failed | its own actor |
//! | [`SessionSweeper`] | the expiry sweeper and the live-session gauge | its own arbiter |
//! | [`ManagementService`] | the management token per tenant (single flight) and the rate-limit pause, in its `Management` actor | the calls on the workers (a cloned handle), the token and pause on its own actor |
//! | [`Plugins`] | the loaded plugins, their concurrency bounds and cool-downs | a `SyncArbiter` pool (a cloned handle) |
//!
//! `/-/ready` asks [`Alive`] of the actors whose handlers never wait on Auth0, and reads the
//! [`Heartbeat`] of the one that calls Auth0 in the background (`Jobs`, whose rounds are spawned
//! futures): a slow tenant never makes the daemon unready.

pub mod jobs;
pub mod logins;
pub mod management;
pub mod plugins;
mod read_cache;
pub mod sessions;
pub mod single_flight;
pub mod tokens;

use std::time::Duration;

use actix::prelude::*;

use crate::clock::Clock;
use crate::health::{FnProbe, ProbeFuture};
use crate::store::{Session, SessionId, StoreError};
pub use logins::Logins;
pub use management::ManagementService;
pub use plugins::Plugins;
pub use sessions::{SessionService, SessionSweeper};
pub use tokens::Tokens;

/// The `Tokens` actor and the [`Logins`] handle, sharing their dependencies (the Auth0 client,
/// the JWKS cache, the settings, the sessions, the clock, the plugins).
pub fn tokens_and_logins(
    auth: crate::auth0::authentication::AuthenticationClient,
    jwks: crate::auth0::jwks::JwksCache,
    settings: actix_web::web::Data<crate::config::Settings>,
    sessions: SessionService,
    clock: Clock,
    plugins: Plugins,
) -> (Tokens, Logins) {
    let deps = tokens::Deps::new(auth, jwks, settings, sessions, clock, plugins);
    (Tokens::new(deps.clone()), Logins::new(deps))
}

/// Asks an actor whether its mailbox is served: an actor stuck in a handler stops answering.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Alive;

/// The handles and actor addresses, cloned into each HTTP worker.
#[derive(Clone)]
pub struct Actors {
    /// Session and state reads and writes (see [`sessions`]).
    pub sessions: SessionService,
    pub logins: Logins,
    pub tokens: Addr<Tokens>,
    pub sweeper: Addr<SessionSweeper>,
    /// Management API calls (token cache, rate-limit pause, retries: see [`management`]).
    pub management: ManagementService,
    /// Bulk imports: submit, status, list, and the poll loop (see [`jobs`]).
    pub jobs: jobs::JobsHandle,
    /// The loaded plugins' hooks (see [`plugins`]).
    pub plugins: Plugins,
    /// What "now" is (a manual clock in tests).
    pub clock: Clock,
}

const ALIVE_TIMEOUT: Duration = Duration::from_secs(2);

/// How old a heartbeat may be before `/-/ready` reports its actor stuck: a few beats missed.
pub const HEARTBEAT_STALE: Duration = Duration::from_secs(5);

/// When an actor last showed its mailbox is served (it beats on a timer), read without a
/// message: an actor whose thread is blocked stops beating. Cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct Heartbeat {
    /// Milliseconds since [`Heartbeat::origin`] at the last beat.
    last: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Heartbeat {
    fn origin() -> std::time::Instant {
        static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        *ORIGIN.get_or_init(std::time::Instant::now)
    }

    fn elapsed_ms() -> u64 {
        u64::try_from(Self::origin().elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A heartbeat that has just beaten.
    pub fn new() -> Self {
        Self {
            last: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(Self::elapsed_ms())),
        }
    }

    pub fn beat(&self) {
        self.last
            .store(Self::elapsed_ms(), std::sync::atomic::Ordering::Relaxed);
    }

    /// How long ago the last beat was (real time: the `Clock` tests move does not stop it).
    pub fn age(&self) -> Duration {
        let last = self.last.load(std::sync::atomic::Ordering::Relaxed);
        Duration::from_millis(Self::elapsed_ms().saturating_sub(last))
    }
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self::new()
    }
}

impl Actors {
    /// Starts every actor on the current actix system; the sweeper gets an arbiter of its own.
    pub fn start(
        sessions: SessionService,
        sweeper: SessionSweeper,
        tokens: Tokens,
        logins: Logins,
        management: ManagementService,
        jobs: jobs::Jobs,
        plugins: Plugins,
    ) -> Self {
        let arbiter = Arbiter::new();
        let sweeper = SessionSweeper::start_in_arbiter(&arbiter.handle(), move |_| sweeper);
        Self {
            clock: sessions.clock().clone(),
            sessions,
            logins,
            tokens: tokens.start(),
            sweeper,
            management,
            jobs: jobs.start_in_own_arbiter(),
            plugins,
        }
    }

    /// Ends session `id` and revokes its refresh token at Auth0, best effort and off the caller's
    /// path (the session is gone already; a failure is logged). `None`: it had ended.
    pub async fn end_session(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        let ended = self.sessions.end(id).await?;
        if let Some(session) = &ended {
            self.revoke(session);
        }
        Ok(ended)
    }

    /// Ends every session of `sub`, revoking their refresh tokens as [`Self::end_session`] does
    /// when `revoke` (not for a user deleted at Auth0, whose tokens died with it).
    pub async fn end_user(&self, sub: &str, revoke: bool) -> Result<Vec<Session>, StoreError> {
        let ended = self.sessions.end_user(sub).await?;
        if revoke {
            ended.iter().for_each(|session| self.revoke(session));
        }
        Ok(ended)
    }

    fn revoke(&self, session: &Session) {
        if let Some(refresh_token) = &session.refresh_token {
            self.tokens.do_send(tokens::Revoke {
                client: session.client.clone(),
                refresh_token: refresh_token.clone().into(),
            });
        }
    }

    /// The readiness probe: every actor answers [`Alive`] in time, and the `Jobs` heartbeat is
    /// fresh (never a message to it: its rounds wait on Auth0).
    pub fn probe(&self) -> FnProbe<impl Fn() -> ProbeFuture + Send + Sync + use<>> {
        let actors = self.clone();
        FnProbe::new("actors", move || {
            let actors = actors.clone();
            Box::pin(async move {
                let answers = [
                    (
                        "SessionSweeper",
                        actors.sweeper.send(Alive).timeout(ALIVE_TIMEOUT).await,
                    ),
                    (
                        "Tokens",
                        actors.tokens.send(Alive).timeout(ALIVE_TIMEOUT).await,
                    ),
                ];
                for (name, answer) in answers {
                    answer.map_err(|e| format!("actor {name} does not answer: {e}"))?;
                }
                let age = actors.jobs.heartbeat.age();
                if age > HEARTBEAT_STALE {
                    return Err(format!(
                        "actor Jobs has not beaten its heartbeat for {} ms",
                        age.as_millis()
                    ));
                }
                if let Some(management) = actors.management.actor() {
                    let answer = management.send(Alive).timeout(ALIVE_TIMEOUT).await;
                    answer.map_err(|e| format!("actor Management does not answer: {e}"))?;
                }
                Ok(())
            }) as ProbeFuture
        })
    }
}
