//! [`Logins`]: the password grant and the code exchange, run on the HTTP workers through a
//! cloned handle (they touch no shared state, so they never queue behind one actor thread), and
//! the verification of back-channel logout tokens. Each takes the client's settings the request
//! resolved, and shares the `Tokens` actor's dependencies (`Deps`: the Auth0 client, the JWKS
//! cache, the sessions, the clock).

use std::net::IpAddr;
use std::sync::Arc;

use secrecy::SecretString;

use super::tokens::{Deps, TokenError};
use crate::auth0::authentication::PasswordGrant;
use crate::auth0::logout_token::{LogoutToken, LogoutTokenError};
use crate::config::ClientSettings;
use crate::store::Session;

/// A password login: Auth0's password grant, the ID token verified, the session stored.
pub struct PasswordLogin {
    /// The client's name, and its settings as the request resolved them.
    pub client: String,
    pub settings: Arc<ClientSettings>,
    pub username: String,
    pub password: SecretString,
    pub connection: Option<String>,
    pub end_user_ip: Option<IpAddr>,
}

/// A code-flow login: Auth0's `authorization_code` grant with the PKCE verifier and the
/// `redirect_uri` sent to `/authorize`, the ID token verified with the nonce sent there, the
/// session stored.
pub struct CodeLogin {
    /// The client's name, and its settings as the request resolved them.
    pub client: String,
    pub settings: Arc<ClientSettings>,
    pub code: SecretString,
    /// The `redirect_uri` `/authorize` sent (Auth0 compares them character by character).
    pub redirect_uri: String,
    pub code_verifier: SecretString,
    /// The nonce `/authorize` sent: the ID token must carry it.
    pub nonce: String,
}

/// The login flows, run on the HTTP workers. Cheap to clone.
#[derive(Clone)]
pub struct Logins {
    deps: Deps,
}

impl Logins {
    pub(super) fn new(deps: Deps) -> Self {
        Self { deps }
    }
}

impl Logins {
    pub async fn password(&self, login: PasswordLogin) -> Result<Session, TokenError> {
        let deps = &self.deps;
        let client = &*login.settings;
        let grant = PasswordGrant {
            username: &login.username,
            password: &login.password,
            connection: login.connection.as_deref(),
            end_user_ip: login.end_user_ip,
        };
        let tokens = deps.auth.password_grant(client, &grant).await?;
        deps.open_session(&login.client, client, tokens, None).await
    }

    /// Verifies a back-channel logout token against the configured clients (SPEC §5; the replay
    /// check is the caller's, through the store).
    pub async fn verify_logout_token(&self, token: &str) -> Result<LogoutToken, LogoutTokenError> {
        let deps = &self.deps;
        let clients = deps.settings.clients.values().map(|c| c.as_ref());
        deps.jwks
            .verify_logout_token(token, clients, deps.clock.now().as_millis())
            .await
    }

    pub async fn code(&self, login: CodeLogin) -> Result<Session, TokenError> {
        let deps = &self.deps;
        let client = &*login.settings;
        let tokens = deps
            .auth
            .exchange_code(
                client,
                &login.code,
                &login.redirect_uri,
                &login.code_verifier,
            )
            .await?;
        deps.open_session(&login.client, client, tokens, Some(&login.nonce))
            .await
    }
}
