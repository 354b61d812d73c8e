//! The `Tokens` actor: owns the Authentication API client, the JWKS cache and the map of refreshes
//! in flight. Logins (password grant, code exchange) and refreshes go through it; a refresh of one session is
//! single-flight: whoever asks while one is running (Bearer, cookie, an old alias, `/userinfo`'s
//! transparent refresh) joins it and gets its outcome, and the new tokens are stored before the
//! flight resolves, so no caller is answered with tokens the store does not have.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_web::web;
use futures_util::FutureExt as _;
use futures_util::future::{BoxFuture, Shared};
use secrecy::{ExposeSecret as _, SecretString};

use super::Alive;
use super::sessions::SessionRepo;
use crate::auth0::authentication::{AuthenticationClient, PasswordGrant, TokenSet};
use crate::auth0::error::Auth0Error;
use crate::auth0::jwks::{IdTokenError, JwksCache};
use crate::config::{ClientSettings, Settings};
use crate::store::{
    IdToken, IssuedTokens, RefreshedTokens, Session, SessionId, StoreError, Timestamp,
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

/// A password login: Auth0's password grant, the ID token verified, the session stored.
#[derive(Message)]
#[rtype(result = "Result<Session, TokenError>")]
pub struct PasswordLogin {
    pub client: String,
    pub username: String,
    pub password: SecretString,
    pub connection: Option<String>,
    pub end_user_ip: Option<IpAddr>,
}

/// A code-flow login: Auth0's `authorization_code` grant with the PKCE verifier and the
/// `redirect_uri` sent to `/authorize`, the ID token verified with the nonce sent there, the
/// session stored.
#[derive(Message)]
#[rtype(result = "Result<Session, TokenError>")]
pub struct CodeLogin {
    pub client: String,
    pub code: SecretString,
    /// The `redirect_uri` `/authorize` sent (Auth0 compares them character by character).
    pub redirect_uri: String,
    pub code_verifier: SecretString,
    /// The nonce `/authorize` sent: the ID token must carry it.
    pub nonce: String,
}

/// Why a refresh is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshKind {
    /// `POST /refreshtoken`: always calls Auth0 and extends the session.
    Explicit,
    /// `/userinfo` with an expired access token: calls Auth0 only if the token is still expired
    /// when the flight starts, and does not extend the session.
    Transparent,
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
    /// The session with its new (stored) tokens.
    Refreshed(Box<Session>),
    /// The session is over (Auth0 refused its refresh token, it had none, or it was ended
    /// meanwhile) and was deleted: 401.
    Ended,
    /// Auth0 or the store failed; the session is kept.
    Failed(Arc<TokenError>),
}

type Flight = Shared<BoxFuture<'static, RefreshOutcome>>;

/// Everything a login or a refresh needs, cloned into each future.
#[derive(Clone)]
struct Deps {
    auth: AuthenticationClient,
    jwks: JwksCache,
    settings: web::Data<Settings>,
    repo: SessionRepo,
}

pub struct Tokens {
    deps: Deps,
    in_flight: HashMap<SessionId, Flight>,
}

impl Tokens {
    pub fn new(
        auth: AuthenticationClient,
        jwks: JwksCache,
        settings: web::Data<Settings>,
        repo: SessionRepo,
    ) -> Self {
        Self {
            deps: Deps {
                auth,
                jwks,
                settings,
                repo,
            },
            in_flight: HashMap::new(),
        }
    }
}

impl Actor for Tokens {
    type Context = Context<Self>;
}

impl Handler<Alive> for Tokens {
    type Result = ();
    fn handle(&mut self, _: Alive, _: &mut Context<Self>) {}
}

impl Handler<PasswordLogin> for Tokens {
    type Result = ResponseFuture<Result<Session, TokenError>>;

    fn handle(&mut self, login: PasswordLogin, _: &mut Context<Self>) -> Self::Result {
        let deps = self.deps.clone();
        Box::pin(async move { deps.password_login(login).await })
    }
}

impl Handler<CodeLogin> for Tokens {
    type Result = ResponseFuture<Result<Session, TokenError>>;

    fn handle(&mut self, login: CodeLogin, _: &mut Context<Self>) -> Self::Result {
        let deps = self.deps.clone();
        Box::pin(async move { deps.code_login(login).await })
    }
}

impl Handler<Refresh> for Tokens {
    type Result = ResponseFuture<RefreshOutcome>;

    fn handle(&mut self, refresh: Refresh, ctx: &mut Context<Self>) -> Self::Result {
        if let Some(flight) = self.in_flight.get(&refresh.session) {
            return Box::pin(flight.clone());
        }
        let deps = self.deps.clone();
        let id = refresh.session.clone();
        let flight: Flight = async move { deps.refresh(&id, refresh.kind).await }
            .boxed()
            .shared();
        self.in_flight
            .insert(refresh.session.clone(), flight.clone());
        // The flight runs on the actor, not in the caller: a caller that goes away (a closed
        // connection) does not cancel a refresh others are waiting for.
        let session = refresh.session;
        ctx.spawn(flight.clone().into_actor(self).map(move |_, actor, _| {
            actor.in_flight.remove(&session);
        }));
        Box::pin(flight)
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

impl Deps {
    fn client(&self, name: &str) -> Result<&ClientSettings, TokenError> {
        self.settings
            .client(name)
            .map(Arc::as_ref)
            .ok_or_else(|| TokenError::UnknownClient(name.to_owned()))
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
    async fn open_session(
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
        let now = Timestamp::now();
        let session = Session::new(
            client_name,
            sub,
            {
                let (access_token, access_expires_at, refresh_token) = stored_tokens(&tokens);
                IssuedTokens {
                    access_token,
                    access_expires_at,
                    refresh_token,
                    id_token,
                }
            },
            now.saturating_add(Duration::from_secs(self.settings.session_duration_seconds)),
            now,
        );
        self.repo.create(&session).await?;
        Ok(session)
    }

    async fn password_login(&self, login: PasswordLogin) -> Result<Session, TokenError> {
        let client = self.client(&login.client)?;
        let grant = PasswordGrant {
            username: &login.username,
            password: &login.password,
            connection: login.connection.as_deref(),
            end_user_ip: login.end_user_ip,
        };
        let tokens = self.auth.password_grant(client, &grant).await?;
        self.open_session(&login.client, client, tokens, None).await
    }

    async fn code_login(&self, login: CodeLogin) -> Result<Session, TokenError> {
        let client = self.client(&login.client)?;
        let tokens = self
            .auth
            .exchange_code(
                client,
                &login.code,
                &login.redirect_uri,
                &login.code_verifier,
            )
            .await?;
        self.open_session(&login.client, client, tokens, Some(&login.nonce))
            .await
    }

    async fn refresh(&self, id: &SessionId, kind: RefreshKind) -> RefreshOutcome {
        match self.try_refresh(id, kind).await {
            Ok(Some(session)) => RefreshOutcome::Refreshed(Box::new(session)),
            Ok(None) => RefreshOutcome::Ended,
            Err(TokenError::Auth0(err)) if err.is_invalid_grant() => {
                tracing::info!("Auth0 refused the session's refresh token: ending the session");
                match self.repo.delete(id).await {
                    Ok(_) => RefreshOutcome::Ended,
                    Err(store) => RefreshOutcome::Failed(Arc::new(store.into())),
                }
            }
            Err(err) => RefreshOutcome::Failed(Arc::new(err)),
        }
    }

    /// `Ok(None)`: the session is over (gone, or no refresh token: then deleted).
    async fn try_refresh(
        &self,
        id: &SessionId,
        kind: RefreshKind,
    ) -> Result<Option<Session>, TokenError> {
        // Re-read: the caller's copy may predate a refresh that just finished.
        let Some(mut session) = self.repo.by_id(id).await? else {
            return Ok(None);
        };
        let now = Timestamp::now();
        if kind == RefreshKind::Transparent && !session.access_expired(now) {
            return Ok(Some(session));
        }
        let Some(refresh_token) = session.refresh_token.clone() else {
            self.repo.delete(id).await?;
            return Ok(None);
        };
        let client = self.client(&session.client)?;
        let tokens = self
            .auth
            .refresh(client, &SecretString::from(refresh_token))
            .await?;
        let id_token = match &tokens.id_token {
            Some(token) => Some(self.verify(client, token, None).await?),
            None => None,
        };
        let now = Timestamp::now();
        let (access_token, access_expires_at, refresh_token) = stored_tokens(&tokens);
        session.apply_refresh(
            RefreshedTokens {
                access_token,
                access_expires_at,
                refresh_token,
                id_token,
            },
            now,
        );
        if kind == RefreshKind::Explicit {
            session.expires_at =
                now.saturating_add(Duration::from_secs(self.settings.session_duration_seconds));
        }
        if !self.repo.update(&session).await? {
            return Ok(None);
        }
        Ok(Some(session))
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
