//! The `Management` actor and its cloned [`ManagementService`] (DESIGN.md, "Actors and flows").
//!
//! The actor owns the management token of each tenant (cached, renewed before it expires and once
//! on a 401, fetched by one [`SingleFlight`] so concurrent callers never fetch it twice) and the
//! rate-limit pause (started by an Auth0 429 or `X-RateLimit-Remaining: 0`; while it lasts every
//! call is answered [`ManagementError::RateLimited`] without reaching Auth0). The calls
//! themselves run on the HTTP workers, in [`ManagementService::send`], which applies SPEC §6's
//! retry rules: a GET is tried up to 3 more times on a 5xx or a network error, with backoff; a
//! POST, PATCH or DELETE again only when the connection failed before anything was sent; all
//! within `3 × server.auth0TimeoutMs`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures_util::FutureExt as _;
use secrecy::SecretString;

use super::Alive;
use super::single_flight::{Flight, SingleFlight};
use crate::auth0::Auth0Error;
use crate::auth0::authentication::AuthenticationClient;
use crate::auth0::management::{
    BUDGET_TIMEOUTS, MAX_RETRIES, ManagementAnswer, ManagementApi, ManagementError,
    ManagementRequest, backoff, failure_of, pause_of,
};
use crate::clock::Clock;
use crate::config::ClientSettings;
use crate::store::Timestamp;

/// A token is renewed this long before it expires (at most half its lifetime).
const RENEW_AHEAD: Duration = Duration::from_secs(60);

/// A cached management token.
#[derive(Clone)]
pub struct Grant {
    pub token: Arc<SecretString>,
    /// Told back with [`Acquire::stale`] when Auth0 answered 401 to this token.
    serial: u64,
}

#[derive(Clone)]
struct Cached {
    grant: Grant,
    renew_at: Timestamp,
}

type TokenResult = Result<Cached, ManagementError>;

/// The actor: tokens by tenant, their flights, the pause.
pub struct Management {
    api: ManagementApi,
    clock: Clock,
    tokens: HashMap<String, Cached>,
    flights: SingleFlight<String, TokenResult>,
    /// The running flight of each tenant, kept to read its outcome as soon as it has one (so a
    /// caller arriving between its end and its bookkeeping does not fetch again).
    running: HashMap<String, Flight<TokenResult>>,
    paused_until: Option<Timestamp>,
    serial: u64,
}

impl Management {
    pub fn new(api: ManagementApi, clock: Clock) -> Self {
        Self {
            api,
            clock,
            tokens: HashMap::new(),
            flights: SingleFlight::default(),
            running: HashMap::new(),
            paused_until: None,
            serial: 0,
        }
    }

    /// Stores the outcome of a finished flight of `tenant`, if there is one.
    fn settle(&mut self, tenant: &str) {
        let Some(flight) = self.running.get(tenant) else {
            return;
        };
        let Some(outcome) = flight.peek().cloned() else {
            return;
        };
        let flight = flight.clone();
        self.running.remove(tenant);
        self.flights.finish(&tenant.to_owned(), &flight);
        if let Ok(cached) = outcome
            && self
                .tokens
                .get(tenant)
                .is_none_or(|have| have.grant.serial < cached.grant.serial)
        {
            self.tokens.insert(tenant.to_owned(), cached);
        }
    }
}

impl Actor for Management {
    type Context = Context<Self>;
}

impl Handler<Alive> for Management {
    type Result = ();
    fn handle(&mut self, _: Alive, _: &mut Context<Self>) {}
}

/// A token to call with, unless the pause is on. `stale`: the serial of a token Auth0 answered
/// 401 to, which must not be handed out again.
#[derive(Message)]
#[rtype(result = "Result<Grant, ManagementError>")]
pub struct Acquire {
    pub stale: Option<u64>,
}

impl Handler<Acquire> for Management {
    type Result = ResponseFuture<Result<Grant, ManagementError>>;

    fn handle(&mut self, acquire: Acquire, ctx: &mut Context<Self>) -> Self::Result {
        let now = self.clock.now();
        if let Some(until) = self.paused_until {
            if until > now {
                let left = u64::try_from(until.as_millis() - now.as_millis()).unwrap_or(0);
                let retry_after = Duration::from_secs(left.div_ceil(1000).max(1));
                return Box::pin(async move {
                    Err(ManagementError::RateLimited {
                        retry_after,
                        failure: None,
                    })
                });
            }
            self.paused_until = None;
        }
        let tenant = self.api.tenant().to_owned();
        self.settle(&tenant);
        if let Some(cached) = self.tokens.get(&tenant) {
            let stale = acquire.stale.is_some_and(|s| s >= cached.grant.serial);
            if !stale && now < cached.renew_at {
                let grant = cached.grant.clone();
                return Box::pin(async move { Ok(grant) });
            }
            if stale {
                self.tokens.remove(&tenant);
            }
        }
        let api = self.api.clone();
        let clock = self.clock.clone();
        self.serial += 1;
        let serial = self.serial;
        let (flight, started) = self.flights.join_or_start(&tenant, move || {
            Box::pin(async move {
                let token = api.fetch_token().await?;
                let ahead = RENEW_AHEAD.min(token.expires_in / 2);
                Ok(Cached {
                    grant: Grant {
                        token: Arc::new(token.access_token),
                        serial,
                    },
                    renew_at: clock.now().saturating_add(token.expires_in - ahead),
                })
            })
        });
        if started {
            tracing::debug!(target: "auth0_client::auth0", %tenant, "fetching a management token");
            self.running.insert(tenant.clone(), flight.clone());
            // Bookkeeping once it ends, whether or not its callers are still there.
            ctx.spawn(
                flight
                    .clone()
                    .into_actor(self)
                    .map(move |_, actor, _| actor.settle(&tenant)),
            );
        }
        Box::pin(flight.map(|outcome| outcome.map(|cached| cached.grant)))
    }
}

/// Starts (or lengthens) the rate-limit pause until `until`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Pause {
    pub until: Timestamp,
}

impl Handler<Pause> for Management {
    type Result = ();

    fn handle(&mut self, pause: Pause, _: &mut Context<Self>) {
        if self.paused_until.is_none_or(|until| until < pause.until) {
            tracing::warn!(
                target: "auth0_client::auth0",
                until_ms = pause.until.as_millis(),
                "Auth0's Management API rate limit reached: management routes answer 429 until it resets"
            );
            self.paused_until = Some(pause.until);
        }
    }
}

/// The handle the routes (and the jobs) call the Management API through. Cheap to clone; the
/// calls run on the caller's worker.
#[derive(Clone)]
pub struct ManagementService {
    inner: Option<Inner>,
}

#[derive(Clone)]
struct Inner {
    api: ManagementApi,
    actor: Addr<Management>,
    clock: Clock,
    /// For `POST /change-password`, which is the Authentication API's.
    auth: Option<AuthenticationClient>,
}

impl ManagementService {
    /// The service of a started [`Management`] actor.
    pub fn new(api: ManagementApi, actor: Addr<Management>, clock: Clock) -> Self {
        Self {
            inner: Some(Inner {
                api,
                actor,
                clock,
                auth: None,
            }),
        }
    }

    /// Without a `managementClient`: every call is [`ManagementError::NotConfigured`].
    pub fn unconfigured() -> Self {
        Self { inner: None }
    }

    /// Starts the actor for `api` (`None`: no `managementClient`).
    pub fn start(api: Option<ManagementApi>, clock: Clock) -> Self {
        match api {
            Some(api) => {
                let actor = Management::new(api.clone(), clock.clone()).start();
                Self::new(api, actor, clock)
            }
            None => Self::unconfigured(),
        }
    }

    /// With the Authentication API client `POST /change-password` calls.
    pub fn with_authentication(mut self, auth: AuthenticationClient) -> Self {
        if let Some(inner) = &mut self.inner {
            inner.auth = Some(auth);
        }
        self
    }

    /// `POST /dbconnections/change_password` for `email` in `connection` with `client`'s id:
    /// Auth0's message. Its refusals are handled like the Management API's (4xx passed through,
    /// the client's own credentials refused: a configuration error).
    pub async fn change_password(
        &self,
        client: &ClientSettings,
        email: &str,
        connection: &str,
    ) -> Result<String, ManagementError> {
        let auth = self
            .inner
            .as_ref()
            .and_then(|inner| inner.auth.as_ref())
            .ok_or(ManagementError::NotConfigured)?;
        auth.change_password(client, email, connection)
            .await
            .map_err(failure_of)
    }

    /// The actor's address, for the readiness probe (`None` without a `managementClient`).
    pub fn actor(&self) -> Option<&Addr<Management>> {
        self.inner.as_ref().map(|inner| &inner.actor)
    }

    pub fn is_configured(&self) -> bool {
        self.inner.is_some()
    }

    /// Sends `request` with the tenant's management token, under the pause and the retry rules
    /// of SPEC §6 (see the module docs). A 401 renews the token and tries once more.
    pub async fn send(
        &self,
        request: ManagementRequest,
    ) -> Result<ManagementAnswer, ManagementError> {
        let inner = self.inner.as_ref().ok_or(ManagementError::NotConfigured)?;
        let budget = inner.api.timeout().saturating_mul(BUDGET_TIMEOUTS);
        let deadline = Instant::now() + budget;
        let budget_ms = u64::try_from(budget.as_millis()).unwrap_or(u64::MAX);
        let mut stale = None;
        let mut renewed = false;
        let mut retries = 0;
        let mut attempts = 0;
        loop {
            let grant = inner
                .actor
                .send(Acquire { stale })
                .await
                .map_err(|_| ManagementError::Unavailable)??;
            attempts += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            let result =
                match tokio::time::timeout(left, inner.api.call(&grant.token, &request)).await {
                    Ok(result) => result,
                    Err(_) => {
                        return Err(ManagementError::Deadline {
                            budget_ms,
                            attempts,
                        });
                    }
                };
            inner.observe_rate_limit(&result);
            let err = match result {
                Ok(answer) => return Ok(answer),
                Err(err) => err,
            };
            if let Auth0Error::Status(failure) = &err
                && failure.status == reqwest::StatusCode::UNAUTHORIZED
                && !renewed
            {
                // The token expired early or was invalidated: one new token, one more try.
                tracing::info!(
                    target: "auth0_client::auth0",
                    "Auth0 refused the management token; fetching a new one"
                );
                renewed = true;
                stale = Some(grant.serial);
                continue;
            }
            if retries < MAX_RETRIES && request.may_retry(&err) {
                retries += 1;
                let wait = backoff(retries);
                if Instant::now() + wait < deadline {
                    tracing::info!(
                        target: "auth0_client::auth0",
                        error = %err,
                        retry = retries,
                        "retrying a Management API call"
                    );
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            return Err(failure_of(err));
        }
    }
}

impl Inner {
    /// Starts the pause when an answer says so.
    fn observe_rate_limit(&self, result: &Result<ManagementAnswer, Auth0Error>) {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if let Some(wait) = pause_of(result, now) {
            self.actor.do_send(Pause {
                until: self.clock.now().saturating_add(wait),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use auth0_emulator::seed::demo;
    use auth0_emulator::{Emulator, EmulatorHandle, RateLimit, Seed};
    use reqwest::Method;

    use super::*;
    use crate::auth0::Auth0Http;
    use crate::auth0::management::encode_segment;

    fn service(emulator: &EmulatorHandle, clock: &Clock) -> ManagementService {
        let settings = crate::auth0::management::test_support::settings(
            emulator.base_url(),
            demo::MANAGEMENT_CLIENT_SECRET,
        );
        let http = Auth0Http::new(Duration::from_secs(5)).unwrap();
        ManagementService::start(
            ManagementApi::from_settings(&http, &settings),
            clock.clone(),
        )
    }

    fn get_user() -> ManagementRequest {
        ManagementRequest::new(
            Method::GET,
            format!("users/{}", encode_segment(demo::USER_ID)),
        )
    }

    #[actix_rt::test]
    async fn one_token_for_concurrent_calls_renewed_before_expiry_and_on_a_401() {
        let emulator = Emulator::start(Seed::demo()).unwrap();
        let clock = Clock::manual();
        let service = service(&emulator, &clock);
        let calls = (0..20).map(|_| service.send(get_user()));
        for answer in futures_util::future::join_all(calls).await {
            assert_eq!(answer.unwrap().json().unwrap()["user_id"], demo::USER_ID);
        }
        assert_eq!(emulator.requests_to("/oauth/token").len(), 1);

        // Past its lifetime (less the renewal margin) by the daemon's clock: a new one.
        clock.advance(Duration::from_secs(86_400 - 30));
        service.send(get_user()).await.unwrap();
        assert_eq!(emulator.requests_to("/oauth/token").len(), 2);

        // Auth0 no longer accepts the token (its signing key changed): one new token, one retry.
        emulator.rotate_signing_key(false);
        service.send(get_user()).await.unwrap();
        assert_eq!(emulator.requests_to("/oauth/token").len(), 3);
        service.send(get_user()).await.unwrap();
        assert_eq!(emulator.requests_to("/oauth/token").len(), 3);
    }

    #[actix_rt::test]
    async fn unconfigured_is_not_configured() {
        let err = ManagementService::unconfigured()
            .send(get_user())
            .await
            .unwrap_err();
        assert!(matches!(err, ManagementError::NotConfigured));
    }

    #[actix_rt::test]
    async fn gets_retry_through_503s_and_posts_do_not() {
        let emulator = Emulator::start(Seed::demo()).unwrap();
        let clock = Clock::manual();
        let service = service(&emulator, &clock);
        emulator.fail(
            "/api/v2/users*",
            503,
            serde_json::json!({"statusCode": 503, "error": "Service Unavailable", "message": "down"}),
            2,
        );
        service.send(get_user()).await.unwrap();
        assert_eq!(emulator.requests_to("/api/v2/users*").len(), 3);

        emulator.clear_requests();
        emulator.fail(
            "/api/v2/users",
            503,
            serde_json::json!({"statusCode": 503, "error": "Service Unavailable", "message": "down"}),
            1,
        );
        let create = ManagementRequest::new(Method::POST, "users").with_json(
            serde_json::json!({"connection": demo::CONNECTION, "email": "new@example.com", "password": "x-Strong-1234"}),
        );
        let err = service.send(create).await.unwrap_err();
        assert!(matches!(err, ManagementError::Upstream(_)), "{err:?}");
        assert_eq!(emulator.requests_to("/api/v2/users").len(), 1);
    }

    #[actix_rt::test]
    async fn a_429_pauses_every_call_without_reaching_auth0() {
        let emulator = Emulator::start(Seed::demo()).unwrap();
        let clock = Clock::manual();
        let service = service(&emulator, &clock);
        service.send(get_user()).await.unwrap();
        emulator.set_rate_limit(Some(RateLimit {
            routes: vec!["/api/v2/*".into()],
            reset_in_seconds: Some(30),
            retry_after: true,
            ..RateLimit::default()
        }));
        let err = service.send(get_user()).await.unwrap_err();
        assert!(
            matches!(
                err,
                ManagementError::RateLimited {
                    failure: Some(_),
                    ..
                }
            ),
            "{err:?}"
        );
        emulator.set_rate_limit(None);
        emulator.clear_requests();
        let err = service.send(get_user()).await.unwrap_err();
        let ManagementError::RateLimited {
            retry_after,
            failure: None,
        } = err
        else {
            panic!("paused: {err:?}")
        };
        assert!(retry_after <= Duration::from_secs(30) && retry_after >= Duration::from_secs(1));
        assert!(emulator.requests_to("/api/v2/*").is_empty());
        // The pause ends with the reset.
        clock.advance(Duration::from_secs(31));
        service.send(get_user()).await.unwrap();
    }
}
