//! Refreshes, and what logins share with them.
//!
//! - [`Logins`](super::logins::Logins) (in `logins.rs`) shares this module's dependencies
//!   (`Deps`) and [`TokenError`].
//! - The `Tokens` actor owns the refresh flights ([`SingleFlight`] per session: whoever asks while
//!   one runs, by Bearer, cookie or an old alias, or `/userinfo`'s transparent refresh, joins it)
//!   and the token sets Auth0 issued whose save failed, which it keeps and saves again.
//!
//! A refresh flight is the only writer of a session's tokens and of its expiry: it reads the
//! record, asks Auth0 when it must, and writes with compare-and-swap; a conflict is resolved by
//! re-reading, never by overwriting. New tokens are stored before any caller is answered.
//!
//! | kind | Auth0 call | extends the session |
//! |---|---|---|
//! | [`RefreshKind::Rotate`]: `/refreshtoken` with the current refresh token | yes | yes |
//! | [`RefreshKind::Cookie`]: `/refreshtoken` with the `sid` cookie | unless refreshed within `sessions.refreshGraceSeconds` | yes |
//! | [`RefreshKind::Extend`]: a superseded refresh token (the client missed a rotation) | no | yes |
//! | [`RefreshKind::Transparent`]: `/userinfo` with an expired access token | if still expired | no |
//!
//! **Outage after rotation.** When Auth0 rotated the refresh token and the store write then
//! fails, the new token set stays with the actor: the callers get 503 (never 401), the actor
//! retries the save with backoff, and the session's next flight saves it before anything else,
//! without calling Auth0 with the now-rotated token (Auth0 would take it as reuse and revoke the
//! family). A save that timed out may have landed: a conflict whose stored refresh token is the
//! one being saved counts as saved.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_web::web;
use auth0_client_plugin_api::TokensKind;
use futures_util::FutureExt as _;
use secrecy::{ExposeSecret as _, SecretString};

use super::Alive;
use super::sessions::SessionService;
use super::single_flight::{Flight, SingleFlight};
use crate::auth0::authentication::{AuthenticationClient, TokenSet};
use crate::auth0::error::Auth0Error;
use crate::auth0::jwks::{IdTokenError, JwksCache};
use crate::clock::Clock;
use crate::config::{ClientSettings, Settings};
use crate::store::{
    CasOutcome, IdToken, IssuedTokens, RefreshedTokens, Session, SessionId, StoreError, Timestamp,
    TokenHash,
};

/// Why a login or a refresh failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Auth0(#[from] Auth0Error),
    #[error(transparent)]
    IdToken(#[from] IdTokenError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("Auth0 issued no ID token (is `openid` in the granted scope?)")]
    NoIdToken,
    #[error("the session's client `{0}` is no longer configured")]
    UnknownClient(String),
}

/// What a refresh is asked for (see the module docs' table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshKind {
    Rotate,
    Cookie,
    Extend,
    Transparent,
}

impl RefreshKind {
    /// Every explicit `/refreshtoken` extends the session; `/userinfo` never does.
    pub fn extends(self) -> bool {
        self != Self::Transparent
    }
}

/// Refreshes a session's tokens, single-flight per session.
#[derive(Message)]
#[rtype(result = "RefreshOutcome")]
pub struct Refresh {
    pub session: SessionId,
    pub kind: RefreshKind,
}

/// What a refresh flight ended with; shared by every caller that joined it.
#[derive(Clone, Debug)]
pub enum RefreshOutcome {
    /// The session with its current (stored) tokens.
    Refreshed(Box<Session>),
    /// The session is over (Auth0 refused its refresh token, or it was ended meanwhile): 401.
    Ended,
    /// An explicit refresh of a session that has no refresh token: 401, the session kept.
    NoRefreshToken,
    /// Auth0 or the store failed; the session is kept.
    Failed(Arc<TokenError>),
}

/// A token set Auth0 issued whose save failed, kept to be saved again.
#[derive(Clone)]
struct Unsaved {
    tokens: RefreshedTokens,
    /// The refresh token Auth0 rotated (the session's current one until the save lands).
    presented: TokenHash,
    extend: bool,
    attempts: u32,
}

#[derive(Clone)]
struct FlightResult {
    outcome: RefreshOutcome,
    /// Tokens still to save, when the flight could not.
    unsaved: Option<Unsaved>,
}

/// How many times a flight re-reads and re-applies after compare-and-swap conflicts.
const CAS_ATTEMPTS: usize = 5;
/// An explicit refresh extends the session unless it already expires within this of a full one.
const EXTEND_SLACK: Duration = Duration::from_secs(5);

/// Everything a login or a refresh needs; cheap to clone.
#[derive(Clone)]
pub(super) struct Deps {
    pub(super) auth: AuthenticationClient,
    pub(super) jwks: JwksCache,
    pub(super) settings: web::Data<Settings>,
    sessions: SessionService,
    pub(super) clock: Clock,
    /// `on_tokens` after a login or a refresh (fire and forget).
    plugins: super::Plugins,
    /// This daemon's name as a lease holder (random per start, so a restarted daemon does not
    /// take a dead one's lease for its own).
    holder: Arc<str>,
}

/// A refresh lease this daemon holds on a session (shared store only).
struct LeaseHeld {
    key: String,
}

/// The first pause of a flight waiting for another daemon's lease; doubles up to 8 times this.
const LEASE_POLL: Duration = Duration::from_millis(25);

pub struct Tokens {
    deps: Deps,
    flights: SingleFlight<SessionId, FlightResult>,
    unsaved: HashMap<SessionId, Unsaved>,
}

impl Deps {
    pub(super) fn new(
        auth: AuthenticationClient,
        jwks: JwksCache,
        settings: web::Data<Settings>,
        sessions: SessionService,
        clock: Clock,
        plugins: super::Plugins,
    ) -> Self {
        Self {
            auth,
            jwks,
            settings,
            sessions,
            clock,
            plugins,
            holder: uuid::Uuid::new_v4().to_string().into(),
        }
    }
}

impl Tokens {
    pub(super) fn new(deps: Deps) -> Self {
        Self {
            deps,
            flights: SingleFlight::default(),
            unsaved: HashMap::new(),
        }
    }

    /// Joins the session's flight or starts one; a new flight runs on the actor, so a caller
    /// that goes away (a closed connection) does not cancel a refresh others wait for.
    fn fly(
        &mut self,
        id: SessionId,
        kind: RefreshKind,
        ctx: &mut Context<Self>,
    ) -> Flight<FlightResult> {
        let deps = self.deps.clone();
        let unsaved = self.unsaved.get(&id).cloned();
        let flight_id = id.clone();
        let (flight, started) = self.flights.join_or_start(&id, move || {
            Box::pin(async move { deps.refresh(&flight_id, kind, unsaved).await })
        });
        if started {
            let finished = flight.clone();
            ctx.spawn(
                flight
                    .clone()
                    .into_actor(self)
                    .map(move |result, actor, ctx| {
                        actor.flights.finish(&id, &finished);
                        match result.unsaved {
                            Some(unsaved) => {
                                let wait = retry_delay(unsaved.attempts);
                                actor.unsaved.insert(id.clone(), unsaved);
                                ctx.run_later(wait, move |actor, ctx| {
                                    if actor.unsaved.contains_key(&id) {
                                        drop(actor.fly(id, RefreshKind::Transparent, ctx));
                                    }
                                });
                            }
                            None => {
                                actor.unsaved.remove(&id);
                            }
                        }
                    }),
            );
        }
        flight
    }
}

/// Backoff of the retries of an unsaved token set: 0.5 s doubling to 30 s.
fn retry_delay(attempts: u32) -> Duration {
    Duration::from_millis(500)
        .saturating_mul(1 << attempts.min(6))
        .min(Duration::from_secs(30))
}

impl Actor for Tokens {
    type Context = Context<Self>;
}

impl Handler<Alive> for Tokens {
    type Result = ();
    fn handle(&mut self, _: Alive, _: &mut Context<Self>) {}
}

impl Handler<Refresh> for Tokens {
    type Result = ResponseFuture<RefreshOutcome>;

    /// A caller whose kind extends and that joined a flight which does not (a transparent
    /// refresh) has the session extended after the flight, before its answer.
    fn handle(&mut self, refresh: Refresh, ctx: &mut Context<Self>) -> Self::Result {
        let flight = self.fly(refresh.session, refresh.kind, ctx);
        if !refresh.kind.extends() {
            return Box::pin(flight.map(|result| result.outcome));
        }
        let deps = self.deps.clone();
        Box::pin(async move {
            match flight.await.outcome {
                RefreshOutcome::Refreshed(session) => match deps.extend(*session).await {
                    Ok(Some(session)) => RefreshOutcome::Refreshed(Box::new(session)),
                    Ok(None) => RefreshOutcome::Ended,
                    Err(error) => RefreshOutcome::Failed(Arc::new(error.into())),
                },
                other => other,
            }
        })
    }
}

/// What a session stores of a grant's answer: the access token, its expiry, the refresh token.
fn stored_tokens(tokens: &TokenSet) -> (String, Timestamp, Option<String>) {
    (
        tokens.access_token.expose_secret().to_owned(),
        Timestamp::from(tokens.expires_at()),
        tokens
            .refresh_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned()),
    )
}

/// A failed flight: the error, and the tokens still to save if Auth0 had rotated.
struct Failure {
    error: TokenError,
    unsaved: Option<Unsaved>,
}

impl<E: Into<TokenError>> From<E> for Failure {
    fn from(error: E) -> Self {
        Self {
            error: error.into(),
            unsaved: None,
        }
    }
}

impl Deps {
    fn client(&self, name: &str) -> Result<&ClientSettings, TokenError> {
        self.settings
            .client(name)
            .map(Arc::as_ref)
            .ok_or_else(|| TokenError::UnknownClient(name.to_owned()))
    }

    fn session_duration(&self) -> Duration {
        Duration::from_secs(self.settings.session_duration_seconds)
    }

    fn grace(&self) -> Duration {
        Duration::from_secs(self.settings.sessions.refresh_grace_seconds)
    }

    /// How long a refresh lease lasts: longer than a flight can run (the Auth0 call and a JWKS
    /// fetch, each within `server.auth0TimeoutMs`, and two store writes within
    /// `sessions.timeoutMs`), so it never lapses while its holder still works; a holder that died
    /// delays the session's next refresh by at most this.
    fn lease_ttl(&self) -> Duration {
        let auth0 = self.settings.server.auth0_timeout;
        let store = self.settings.sessions.timeout;
        auth0.saturating_mul(2) + store.saturating_mul(2)
    }

    /// Takes the refresh lease of session `id`: `None` while another daemon holds it.
    async fn take_lease(&self, id: &SessionId) -> Result<Option<LeaseHeld>, StoreError> {
        let key = format!("refresh:{}", TokenHash::of(id.as_str()).as_str());
        let taken = self
            .sessions
            .try_lease(&key, &self.holder, self.lease_ttl())
            .await?;
        Ok(taken.then_some(LeaseHeld { key }))
    }

    /// Releases a refresh lease, best effort: one left behind lapses after [`Self::lease_ttl`].
    async fn release_lease(&self, held: LeaseHeld) {
        if let Err(error) = self.sessions.release_lease(&held.key, &self.holder).await {
            tracing::warn!(error = %error, "releasing a refresh lease failed; it lapses by itself");
        }
    }

    async fn verify(
        &self,
        client: &ClientSettings,
        id_token: &SecretString,
        nonce: Option<&str>,
    ) -> Result<IdToken, TokenError> {
        let claims = self
            .jwks
            .verify_id_token(id_token.expose_secret(), client, nonce)
            .await?;
        Ok(IdToken {
            token: id_token.expose_secret().to_owned(),
            claims,
        })
    }

    /// Turns a login grant's answer into a stored session.
    pub(super) async fn open_session(
        &self,
        client_name: &str,
        client: &ClientSettings,
        tokens: TokenSet,
        nonce: Option<&str>,
    ) -> Result<Session, TokenError> {
        let id_token = tokens.id_token.as_ref().ok_or(TokenError::NoIdToken)?;
        let id_token = self.verify(client, id_token, nonce).await?;
        let sub = id_token
            .claims
            .get("sub")
            .and_then(|s| s.as_str())
            .unwrap_or_default()
            .to_owned();
        let now = self.clock.now();
        let (access_token, access_expires_at, refresh_token) = stored_tokens(&tokens);
        let session = Session::new(
            client_name,
            sub,
            IssuedTokens {
                access_token,
                access_expires_at,
                refresh_token,
                id_token,
            },
            now.saturating_add(self.session_duration()),
            now,
        );
        self.sessions.create(&session).await?;
        self.plugins.session_tokens(&session, TokensKind::Login);
        Ok(session)
    }

    async fn refresh(
        &self,
        id: &SessionId,
        kind: RefreshKind,
        unsaved: Option<Unsaved>,
    ) -> FlightResult {
        match self.try_refresh(id, kind, unsaved).await {
            Ok(outcome) => FlightResult {
                outcome,
                unsaved: None,
            },
            Err(Failure {
                error: TokenError::Auth0(err),
                ..
            }) if err.is_invalid_grant() => {
                tracing::info!("Auth0 refused the session's refresh token: ending the session");
                let outcome = match self.sessions.end(id).await {
                    Ok(_) => RefreshOutcome::Ended,
                    Err(store) => RefreshOutcome::Failed(Arc::new(store.into())),
                };
                FlightResult {
                    outcome,
                    unsaved: None,
                }
            }
            Err(Failure { error, unsaved }) => FlightResult {
                outcome: RefreshOutcome::Failed(Arc::new(error)),
                unsaved,
            },
        }
    }

    async fn try_refresh(
        &self,
        id: &SessionId,
        kind: RefreshKind,
        unsaved: Option<Unsaved>,
    ) -> Result<RefreshOutcome, Failure> {
        let keep = |unsaved: &Option<Unsaved>| {
            let unsaved = unsaved.clone();
            move |error: StoreError| Failure {
                error: error.into(),
                unsaved: unsaved.map(|u| Unsaved {
                    attempts: u.attempts + 1,
                    ..u
                }),
            }
        };
        // Always from the store: the caller's copy may predate a refresh that just finished.
        let Some(session) = self.sessions.by_id(id).await.map_err(keep(&unsaved))? else {
            return Ok(RefreshOutcome::Ended);
        };
        let extend = kind.extends();
        if let Some(pending) = &unsaved {
            // Auth0 already rotated: save that first, and never call it with the old token. The
            // lease was kept for this; extend it for the save, and release it once saved. A
            // lease another daemon holds now (ours lapsed during the outage) stops the save:
            // its flight is under way, and the tokens are kept for the next attempt.
            let held = if self.sessions.is_shared() {
                match self.take_lease(id).await.map_err(keep(&unsaved))? {
                    Some(held) => Some(held),
                    None => {
                        return Err(keep(&unsaved)(StoreError::Unavailable(
                            "the session's refresh lease is held by another daemon; the kept \
                             tokens are saved once it is free"
                                .into(),
                        )));
                    }
                }
            } else {
                None
            };
            let saved = self
                .save(
                    session,
                    &pending.tokens,
                    &pending.presented,
                    extend || pending.extend,
                )
                .await
                .map_err(keep(&unsaved))?;
            if let Some(held) = held {
                self.release_lease(held).await;
            }
            tracing::info!("saved a token set kept after a failed store write");
            return Ok(saved.map_or(RefreshOutcome::Ended, |s| {
                RefreshOutcome::Refreshed(Box::new(s))
            }));
        }
        // Across daemons (a shared store), the Auth0 call is made under the session's lease;
        // whoever waits for it re-reads, and a refresh another daemon made meanwhile serves.
        let first_refresh = session.refreshed_at;
        let mut session = session;
        let mut lease: Option<LeaseHeld> = None;
        let (mut polls, mut waited) = (0u32, Duration::ZERO);
        let outcome = loop {
            // Refreshed by another daemon since this flight's first read: those tokens serve.
            let refreshed_elsewhere = session.refreshed_at != first_refresh;
            if refreshed_elsewhere || !self.needs_auth0(&session, kind) {
                let session = if extend {
                    self.extend(session).await
                } else {
                    Ok(Some(session))
                };
                break session.map_err(Failure::from).map(|s| {
                    s.map_or(RefreshOutcome::Ended, |s| {
                        RefreshOutcome::Refreshed(Box::new(s))
                    })
                });
            }
            if session.refresh_token.is_none() {
                break Ok(RefreshOutcome::NoRefreshToken);
            }
            if !self.sessions.is_shared() || lease.is_some() {
                break self.rotate(session, extend).await;
            }
            match self.take_lease(id).await {
                Ok(held) => lease = held,
                Err(error) => break Err(error.into()),
            }
            // Taken: re-read, since another daemon may have refreshed between the first read and
            // the lease. Not taken: another daemon's flight runs; wait a little and look again.
            if lease.is_none() {
                if waited >= self.lease_ttl() {
                    break Err(StoreError::Unavailable(
                        "another daemon's refresh of this session did not finish in time".into(),
                    )
                    .into());
                }
                let pause = LEASE_POLL.saturating_mul(1 << polls.min(3));
                polls += 1;
                waited += pause;
                tokio::time::sleep(pause).await;
            }
            session = match self.sessions.by_id(id).await {
                Ok(Some(session)) => session,
                Ok(None) => break Ok(RefreshOutcome::Ended),
                Err(error) => break Err(error.into()),
            };
        };
        if let Some(held) = lease {
            // Kept while Auth0's new tokens wait to be saved: another daemon would otherwise
            // present the rotated refresh token (reuse, which revokes the whole family).
            let unsaved = matches!(
                &outcome,
                Err(Failure {
                    unsaved: Some(_),
                    ..
                })
            );
            if !unsaved {
                self.release_lease(held).await;
            }
        }
        if let Ok(RefreshOutcome::NoRefreshToken) = outcome
            && kind == RefreshKind::Transparent
        {
            self.sessions.end(id).await?;
            return Ok(RefreshOutcome::Ended);
        }
        outcome
    }

    /// Whether a refresh of `kind` must ask Auth0 for new tokens (see the module docs' table).
    fn needs_auth0(&self, session: &Session, kind: RefreshKind) -> bool {
        let now = self.clock.now();
        match kind {
            RefreshKind::Rotate => true,
            // Refreshed within the grace window: a storm of cookie callers gets those tokens.
            RefreshKind::Cookie => session
                .refreshed_at
                .is_none_or(|at| now > at.saturating_add(self.grace())),
            RefreshKind::Extend => false,
            RefreshKind::Transparent => session.access_expired(now),
        }
    }

    /// The refresh token grant for `session`, and the new tokens saved.
    async fn rotate(&self, session: Session, extend: bool) -> Result<RefreshOutcome, Failure> {
        let Some(refresh_token) = session.refresh_token.clone() else {
            return Ok(RefreshOutcome::NoRefreshToken);
        };
        let client = self.client(&session.client)?;
        let tokens = self
            .auth
            .refresh(client, &SecretString::from(refresh_token.clone()))
            .await?;
        let id_token = match &tokens.id_token {
            Some(token) => Some(self.verify(client, token, None).await?),
            None => None,
        };
        let (access_token, access_expires_at, refresh_token_new) = stored_tokens(&tokens);
        let refreshed = RefreshedTokens {
            access_token,
            access_expires_at,
            refresh_token: refresh_token_new,
            id_token,
        };
        let presented = TokenHash::of(&refresh_token);
        match self.save(session, &refreshed, &presented, extend).await {
            Ok(saved) => Ok(saved
                .inspect(|s| self.plugins.session_tokens(s, TokensKind::Refresh))
                .map_or(RefreshOutcome::Ended, |s| {
                    RefreshOutcome::Refreshed(Box::new(s))
                })),
            Err(error) => {
                tracing::warn!(
                    error = %error,
                    "Auth0 refreshed a session but storing the tokens failed: keeping them to save again"
                );
                Err(Failure {
                    error: error.into(),
                    unsaved: Some(Unsaved {
                        tokens: refreshed,
                        presented,
                        extend,
                        attempts: 0,
                    }),
                })
            }
        }
    }

    /// Writes a refresh's tokens over `session` with compare-and-swap. `presented` is the refresh
    /// token Auth0 was given: the tokens apply only while it is still the session's current one.
    /// `Ok(None)`: the session ended meanwhile.
    async fn save(
        &self,
        session: Session,
        tokens: &RefreshedTokens,
        presented: &TokenHash,
        extend: bool,
    ) -> Result<Option<Session>, StoreError> {
        self.replace_while_changing(session, "its refresh was saved", |session| {
            // Already saved (a write that timed out had landed)? Judged by the refresh token
            // when Auth0 rotated it: two refreshes within one second get the same access token
            // (no `jti`, deterministic RS256), so only a non-rotating answer is judged by that.
            let saved = match tokens.refresh_token.as_deref() {
                Some(new) => session.refresh_token_is(Some(&TokenHash::of(new))),
                None => session.access_token == tokens.access_token,
            };
            if saved {
                return None;
            }
            if !session.refresh_token_is(Some(presented)) {
                // Another writer rotated meanwhile (another daemon): its tokens stand.
                return None;
            }
            let now = self.clock.now();
            let mut next = session.clone();
            next.apply_refresh(tokens.clone(), now);
            if extend {
                next.expires_at = next
                    .expires_at
                    .max(now.saturating_add(self.session_duration()));
            }
            Some(next)
        })
        .await
    }

    /// Moves the session's expiry to now + `SESSION_DURATION_SECONDS` (an explicit refresh that
    /// made no Auth0 call), with compare-and-swap. `Ok(None)`: the session ended meanwhile.
    async fn extend(&self, session: Session) -> Result<Option<Session>, StoreError> {
        self.replace_while_changing(session, "it was extended", |session| {
            let full = self.clock.now().saturating_add(self.session_duration());
            if session.expires_at.saturating_add(EXTEND_SLACK) >= full {
                return None;
            }
            let mut next = session.clone();
            next.expires_at = full;
            Some(next)
        })
        .await
    }

    /// Writes `change(session)` with compare-and-swap, and again over the current record after a
    /// conflict, up to [`CAS_ATTEMPTS`] times. `change` answers `None` when the record needs no
    /// write: it is returned as it is. `Ok(None)`: the session ended meanwhile.
    async fn replace_while_changing(
        &self,
        mut session: Session,
        doing: &str,
        change: impl Fn(&Session) -> Option<Session>,
    ) -> Result<Option<Session>, StoreError> {
        for _ in 0..CAS_ATTEMPTS {
            let Some(next) = change(&session) else {
                return Ok(Some(session));
            };
            match self.sessions.replace(&next).await? {
                CasOutcome::Written(stored) => return Ok(Some(*stored)),
                CasOutcome::Conflict(current) => session = *current,
                CasOutcome::Gone => return Ok(None),
            }
        }
        Err(StoreError::Unavailable(format!(
            "the session kept changing while {doing}"
        )))
    }
}

/// Revokes a refresh token at Auth0 (`/logout`), best effort: a failure is logged, never answered.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Revoke {
    pub client: String,
    pub refresh_token: SecretString,
}

impl Handler<Revoke> for Tokens {
    type Result = ();

    fn handle(&mut self, revoke: Revoke, ctx: &mut Context<Self>) {
        let deps = self.deps.clone();
        ctx.spawn(
            async move {
                let result = match deps.client(&revoke.client) {
                    Ok(client) => deps
                        .auth
                        .revoke(client, &revoke.refresh_token)
                        .await
                        .map_err(TokenError::from),
                    Err(err) => Err(err),
                };
                if let Err(err) = result {
                    tracing::warn!(error = %err, "revoking a refresh token at logout failed");
                }
            }
            .into_actor(self),
        );
    }
}
