//! The Authentication API calls of a login client (wire reference §1.3, §7): the password grant
//! (with or without a realm), the authorization-code exchange, the refresh grant, revocation and
//! the change-password e-mail. Each takes the client's [`ClientSettings`], so one
//! [`AuthenticationClient`] serves every tenant of the config.

use std::net::IpAddr;

use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use time::OffsetDateTime;

use super::{Auth0Answer, Auth0Error, Auth0Http};
use crate::config::ClientSettings;

/// Auth0's password grant with a connection (wire reference §1.3).
pub const PASSWORD_REALM_GRANT: &str = "http://auth0.com/oauth/grant-type/password-realm";

/// The header Auth0's brute-force protection reads the end user's IP from (SPEC §4).
const FORWARDED_FOR: &str = "auth0-forwarded-for";

/// The tokens of a successful grant. Tokens are `SecretString`s, so a `{:?}` of a `TokenSet`
/// shows none of them.
#[derive(Clone, Debug)]
pub struct TokenSet {
    pub access_token: SecretString,
    /// Absent without `offline_access`, and on a refresh of a client without rotation (then the
    /// current refresh token stays valid: keep it).
    pub refresh_token: Option<SecretString>,
    /// Absent without `openid`.
    pub id_token: Option<SecretString>,
    /// Lifetime of the access token, in seconds from [`TokenSet::received_at`].
    pub expires_in: u64,
    /// The granted scope, when Auth0 says it (it does when it differs from the request).
    pub scope: Option<String>,
    /// Always `Bearer` from Auth0.
    pub token_type: String,
    /// When the answer was received: the base of `expires_in`.
    pub received_at: OffsetDateTime,
}

impl TokenSet {
    /// When the access token expires (`received_at + expires_in`).
    pub fn expires_at(&self) -> OffsetDateTime {
        let seconds = i64::try_from(self.expires_in).unwrap_or(i64::MAX);
        self.received_at
            .checked_add(time::Duration::seconds(seconds))
            .unwrap_or(self.received_at)
    }
}

/// The `/oauth/token` success body (wire reference §1.3).
#[derive(Deserialize)]
struct GrantAnswer {
    access_token: SecretString,
    #[serde(default)]
    refresh_token: Option<SecretString>,
    #[serde(default)]
    id_token: Option<SecretString>,
    expires_in: u64,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    token_type: Option<String>,
}

impl GrantAnswer {
    fn into_token_set(self) -> TokenSet {
        let non_empty =
            |token: Option<SecretString>| token.filter(|t| !t.expose_secret().is_empty());
        TokenSet {
            access_token: self.access_token,
            refresh_token: non_empty(self.refresh_token),
            id_token: non_empty(self.id_token),
            expires_in: self.expires_in,
            scope: self.scope,
            token_type: self.token_type.unwrap_or_else(|| "Bearer".to_owned()),
            received_at: OffsetDateTime::now_utc(),
        }
    }
}

/// A password login (SPEC §5 `grant_type=password`).
#[derive(Debug)]
pub struct PasswordGrant<'a> {
    pub username: &'a str,
    pub password: &'a SecretString,
    /// The resolved connection: sent as `realm` with the password-realm grant; `None` sends the
    /// plain `password` grant (the tenant's default directory).
    pub connection: Option<&'a str>,
    /// The end user's IP, sent as `auth0-forwarded-for`.
    pub end_user_ip: Option<IpAddr>,
}

/// The Authentication API client. Cheap to clone; one serves every configured client.
#[derive(Clone, Debug)]
pub struct AuthenticationClient {
    http: Auth0Http,
}

impl AuthenticationClient {
    pub fn new(http: Auth0Http) -> Self {
        Self { http }
    }

    /// The shared HTTP client (for the JWKS cache and the management client).
    pub fn http(&self) -> &Auth0Http {
        &self.http
    }

    /// `POST /oauth/token` with the password grant: `password` without a connection,
    /// `password-realm` with `realm` with one; the client's credentials, `scope` =
    /// [`ClientSettings::auth0_scope`], and `audience` when configured.
    pub async fn password_grant(
        &self,
        client: &ClientSettings,
        grant: &PasswordGrant<'_>,
    ) -> Result<TokenSet, Auth0Error> {
        let scope = client.auth0_scope();
        let mut fields: Vec<(&str, &str)> = Vec::with_capacity(5);
        let grant_type = match grant.connection {
            Some(connection) => {
                fields.push(("realm", connection));
                PASSWORD_REALM_GRANT
            }
            None => "password",
        };
        fields.push(("username", grant.username));
        fields.push(("password", grant.password.expose_secret()));
        fields.push(("scope", &scope));
        if let Some(audience) = &client.audience {
            fields.push(("audience", audience));
        }
        self.token_request(client, grant_type, &fields, grant.end_user_ip)
            .await
    }

    /// `POST /oauth/token` with `authorization_code`: the code, the `redirect_uri` sent to
    /// `/authorize` (compared character by character), the PKCE verifier, and the client's
    /// credentials.
    pub async fn exchange_code(
        &self,
        client: &ClientSettings,
        code: &SecretString,
        redirect_uri: &str,
        code_verifier: &SecretString,
    ) -> Result<TokenSet, Auth0Error> {
        let fields = [
            ("code", code.expose_secret()),
            ("redirect_uri", redirect_uri),
            ("code_verifier", code_verifier.expose_secret()),
        ];
        self.token_request(client, "authorization_code", &fields, None)
            .await
    }

    /// `POST /oauth/token` with `refresh_token` (no `scope`: the original one is kept).
    pub async fn refresh(
        &self,
        client: &ClientSettings,
        refresh_token: &SecretString,
    ) -> Result<TokenSet, Auth0Error> {
        self.token_request(
            client,
            "refresh_token",
            &[("refresh_token", refresh_token.expose_secret())],
            None,
        )
        .await
    }

    /// `POST /oauth/revoke` of a refresh token (wire reference §7.1). Best effort: callers log a
    /// failure and go on; Auth0 answers 200 for unknown tokens too.
    pub async fn revoke(
        &self,
        client: &ClientSettings,
        refresh_token: &SecretString,
    ) -> Result<(), Auth0Error> {
        let form = [
            ("client_id", client.client_id.as_str()),
            ("client_secret", client.client_secret.expose_secret()),
            ("token", refresh_token.expose_secret()),
        ];
        let request = self
            .http
            .client()
            .post(client.endpoint("oauth/revoke"))
            .form(&form);
        self.http.send("/oauth/revoke", request).await.map(drop)
    }

    /// `POST /dbconnections/change_password` (wire reference §7.2): Auth0 e-mails `email` a reset
    /// link. Returns Auth0's message ("We've just sent you an email to reset your password."),
    /// the same whether or not the user exists.
    pub async fn change_password(
        &self,
        client: &ClientSettings,
        email: &str,
        connection: &str,
    ) -> Result<String, Auth0Error> {
        let body = serde_json::json!({
            "client_id": client.client_id,
            "email": email,
            "connection": connection,
        });
        let request = self
            .http
            .client()
            .post(client.endpoint("dbconnections/change_password"))
            .json(&body);
        let answer = self
            .http
            .send("/dbconnections/change_password", request)
            .await?;
        Ok(message_of(&answer))
    }

    /// `POST /oauth/token` of `grant_type`, the grant's `fields` and the client credentials, with
    /// the end user's IP when known, and reads the token answer.
    async fn token_request(
        &self,
        client: &ClientSettings,
        grant_type: &str,
        fields: &[(&str, &str)],
        end_user_ip: Option<IpAddr>,
    ) -> Result<TokenSet, Auth0Error> {
        let mut form = Vec::with_capacity(fields.len() + 3);
        form.push(("grant_type", grant_type));
        form.extend_from_slice(fields);
        form.push(("client_id", &client.client_id));
        form.push(("client_secret", client.client_secret.expose_secret()));
        let mut request = self.http.client().post(client.endpoint("oauth/token"));
        if let Some(ip) = end_user_ip {
            request = request.header(FORWARDED_FOR, ip.to_string());
        }
        let answer = self.http.send("/oauth/token", request.form(&form)).await?;
        Ok(answer.json::<GrantAnswer>()?.into_token_set())
    }
}

/// The message of a change-password answer: plain text per the docs; a JSON string or a
/// `{"message"}` object is read too.
fn message_of(answer: &Auth0Answer) -> String {
    match serde_json::from_slice::<serde_json::Value>(answer.body()) {
        Ok(serde_json::Value::String(text)) => text,
        Ok(serde_json::Value::Object(fields)) => fields
            .get("message")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| answer.text()),
        _ => answer.text().trim().to_owned(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use auth0_emulator::seed::demo;
    use auth0_emulator::{Emulator, EmulatorHandle, Fault, RateLimit, RecordedRequest, Seed};
    use url::Url;

    use super::*;
    use crate::auth0::GrantFailure;

    pub(crate) fn client_settings(base_url: &str, secret: &str) -> ClientSettings {
        ClientSettings::for_tests(
            &format!("{base_url}/"),
            demo::LOGIN_CLIENT_ID,
            secret,
            &["offline_access", "profile", "website"],
        )
    }

    fn start() -> (EmulatorHandle, ClientSettings, AuthenticationClient) {
        let emulator = Emulator::start(Seed::demo()).unwrap();
        let client = client_settings(emulator.base_url(), demo::LOGIN_CLIENT_SECRET);
        let auth = AuthenticationClient::new(Auth0Http::new(Duration::from_secs(5)).unwrap());
        (emulator, client, auth)
    }

    /// The password grant of the demo user with `password`, through `connection`.
    async fn grant(
        auth: &AuthenticationClient,
        client: &ClientSettings,
        password: &str,
        connection: Option<&str>,
    ) -> Result<TokenSet, Auth0Error> {
        let password = SecretString::from(password);
        auth.password_grant(client, &login(&password, connection, None))
            .await
    }

    /// The demo user's password login through the demo connection.
    async fn demo_login(
        auth: &AuthenticationClient,
        client: &ClientSettings,
    ) -> Result<TokenSet, Auth0Error> {
        grant(auth, client, demo::USER_PASSWORD, Some(demo::CONNECTION)).await
    }

    /// Asserts that `err` is `Unreachable`, failed before the request was sent or after.
    fn assert_unreachable(err: &Auth0Error, before_sending: bool) {
        assert!(
            matches!(err, Auth0Error::Unreachable { before_sending: b, .. } if *b == before_sending),
            "{err:?}"
        );
    }

    /// The refresh token of a password login of the demo user.
    async fn refresh_token_of_a_login(
        auth: &AuthenticationClient,
        client: &ClientSettings,
    ) -> SecretString {
        let tokens = demo_login(auth, client).await.unwrap();
        tokens.refresh_token.unwrap()
    }

    /// Asserts that `sent` carries the demo login client's credentials.
    fn assert_client_credentials(sent: &RecordedRequest) {
        assert_eq!(
            sent.param("client_id").as_deref(),
            Some(demo::LOGIN_CLIENT_ID)
        );
        assert_eq!(
            sent.param("client_secret").as_deref(),
            Some(demo::LOGIN_CLIENT_SECRET)
        );
    }

    fn login<'a>(
        password: &'a SecretString,
        connection: Option<&'a str>,
        ip: Option<IpAddr>,
    ) -> PasswordGrant<'a> {
        PasswordGrant {
            username: demo::USER_EMAIL,
            password,
            connection,
            end_user_ip: ip,
        }
    }

    #[tokio::test]
    async fn password_grant_with_a_realm_sends_what_spec_5_says() {
        let (emulator, mut client, auth) = start();
        client.audience = Some(demo::API.into());
        let password = SecretString::from(demo::USER_PASSWORD);
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let tokens = auth
            .password_grant(&client, &login(&password, Some(demo::CONNECTION), Some(ip)))
            .await
            .unwrap();
        assert!(!tokens.access_token.expose_secret().is_empty());
        assert!(tokens.refresh_token.is_some(), "offline_access was asked");
        assert!(tokens.id_token.is_some(), "openid is always asked");
        assert_eq!(tokens.token_type, "Bearer");
        assert!(tokens.expires_in > 0);
        assert!(tokens.expires_at() > tokens.received_at);
        assert_eq!(
            tokens.scope.as_deref(),
            Some("openid offline_access profile")
        );

        let sent = emulator.requests_to("/oauth/token");
        assert_eq!(sent.len(), 1);
        let sent = &sent[0];
        assert!(sent.form.is_some(), "a form body");
        assert_eq!(
            sent.param("grant_type").as_deref(),
            Some(PASSWORD_REALM_GRANT)
        );
        assert_eq!(sent.param("realm").as_deref(), Some(demo::CONNECTION));
        assert_eq!(sent.param("username").as_deref(), Some(demo::USER_EMAIL));
        assert_eq!(sent.param("password").as_deref(), Some(demo::USER_PASSWORD));
        assert_client_credentials(sent);
        assert_eq!(
            sent.param("scope").as_deref(),
            Some("openid offline_access profile")
        );
        assert_eq!(sent.param("audience").as_deref(), Some(demo::API));
        assert_eq!(sent.header("auth0-forwarded-for"), Some("203.0.113.7"));
    }

    #[tokio::test]
    async fn password_grant_without_a_connection_uses_the_plain_grant() {
        let (emulator, client, auth) = start();
        grant(&auth, &client, demo::USER_PASSWORD, None)
            .await
            .unwrap();
        let sent = &emulator.requests_to("/oauth/token")[0];
        assert_eq!(sent.param("grant_type").as_deref(), Some("password"));
        assert_eq!(sent.param("realm"), None);
        assert_eq!(sent.param("audience"), None);
        assert_eq!(sent.header("auth0-forwarded-for"), None);
    }

    #[tokio::test]
    async fn a_wrong_password_refuses_the_user_with_auth0s_message() {
        let (_emulator, client, auth) = start();
        let err = grant(&auth, &client, "not-the-password", Some(demo::CONNECTION))
            .await
            .unwrap_err();
        assert_eq!(
            err.classify(),
            GrantFailure::UserRefused {
                code: "invalid_grant".into(),
                message: "Wrong email or password.".into()
            }
        );
        assert!(!format!("{err:?}").contains("not-the-password"));
    }

    #[tokio::test]
    async fn a_blocked_user_is_refused() {
        let (emulator, client, auth) = start();
        assert!(emulator.set_blocked(demo::USER_EMAIL, true));
        let err = demo_login(&auth, &client).await.unwrap_err();
        assert_eq!(
            err.classify(),
            GrantFailure::UserRefused {
                code: "unauthorized".into(),
                message: "user is blocked".into()
            }
        );
    }

    #[tokio::test]
    async fn a_bad_client_secret_is_a_configuration_error() {
        let (emulator, _, auth) = start();
        let client = client_settings(emulator.base_url(), "wrong-secret");
        let err = demo_login(&auth, &client).await.unwrap_err();
        assert!(
            matches!(
                err.classify(),
                GrantFailure::ConfigurationRefused { status: 401, ref code, .. }
                    if code.as_deref() == Some("access_denied")
            ),
            "{:?}",
            err.classify()
        );
        // The answer is built from this error's text (http/error.rs): no secret in it.
        assert!(!err.to_string().contains("wrong-secret"));
        assert!(!format!("{err:?}").contains("wrong-secret"));
    }

    #[tokio::test]
    async fn a_429_carries_retry_after_or_the_reset_time() {
        let (emulator, client, auth) = start();

        let mut headers = std::collections::BTreeMap::new();
        headers.insert("Retry-After".to_owned(), "17".to_owned());
        emulator.add_fault(Fault {
            id: 0,
            route: "/oauth/token".into(),
            method: None,
            status: Some(429),
            body: Some(serde_json::json!({"error": "too_many_requests", "error_description": "Rate limit exceeded."})),
            headers,
            delay_ms: 0,
            count: Some(1),
            drop_connection: false,
            hits: 0,
        });
        let err = demo_login(&auth, &client).await.unwrap_err();
        assert_eq!(
            err.classify(),
            GrantFailure::TooManyRequests {
                retry_after: 17,
                code: Some("too_many_requests".into()),
                message: "Rate limit exceeded.".into()
            }
        );

        // The emulator's 429 mode announces only X-RateLimit-Reset (epoch seconds).
        emulator.set_rate_limit(Some(RateLimit {
            routes: vec!["/oauth/token".into()],
            reset_in_seconds: Some(40),
            ..RateLimit::default()
        }));
        let err = demo_login(&auth, &client).await.unwrap_err();
        match err.classify() {
            GrantFailure::TooManyRequests { retry_after, .. } => {
                assert!((38..=41).contains(&retry_after), "{retry_after}");
            }
            other => panic!("{other:?}"),
        }
        emulator.set_rate_limit(None);

        // Neither header: 60.
        emulator.fail(
            "/oauth/token",
            429,
            serde_json::json!({"error": "too_many_attempts", "error_description": "blocked"}),
            1,
        );
        let err = demo_login(&auth, &client).await.unwrap_err();
        assert!(matches!(
            err.classify(),
            GrantFailure::TooManyRequests {
                retry_after: 60,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn a_503_is_an_upstream_failure() {
        let (emulator, client, auth) = start();
        emulator.fail(
            "/oauth/token",
            503,
            serde_json::json!({"error": "temporarily_unavailable", "error_description": "down"}),
            1,
        );
        let err = grant(&auth, &client, demo::USER_PASSWORD, None)
            .await
            .unwrap_err();
        assert!(matches!(
            err.classify(),
            GrantFailure::Upstream5xx { status: 503, .. }
        ));
    }

    #[tokio::test]
    async fn a_slow_auth0_times_out() {
        let emulator = Emulator::start(Seed::demo()).unwrap();
        let client = client_settings(emulator.base_url(), demo::LOGIN_CLIENT_SECRET);
        let auth = AuthenticationClient::new(Auth0Http::new(Duration::from_millis(300)).unwrap());
        emulator.add_fault(Fault {
            id: 0,
            route: "/oauth/token".into(),
            method: None,
            status: None,
            body: None,
            headers: Default::default(),
            delay_ms: 2_000,
            count: Some(1),
            drop_connection: false,
            hits: 0,
        });
        let started = std::time::Instant::now();
        let err = grant(&auth, &client, demo::USER_PASSWORD, None)
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(1_500));
        assert!(matches!(
            err.classify(),
            GrantFailure::Timeout { timeout_ms: 300 }
        ));
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let client = client_settings(&format!("http://127.0.0.1:{port}"), "secret");
        let auth = AuthenticationClient::new(Auth0Http::new(Duration::from_secs(2)).unwrap());
        let err = grant(&auth, &client, demo::USER_PASSWORD, None)
            .await
            .unwrap_err();
        assert_unreachable(&err, true);
        assert_eq!(err.classify(), GrantFailure::Unreachable);
    }

    #[tokio::test]
    async fn a_connection_dropped_mid_answer_is_unreachable() {
        let (emulator, client, auth) = start();
        emulator.add_fault(Fault {
            id: 0,
            route: "/oauth/token".into(),
            method: None,
            status: Some(200),
            body: None,
            headers: Default::default(),
            delay_ms: 0,
            count: Some(1),
            drop_connection: true,
            hits: 0,
        });
        let err = grant(&auth, &client, demo::USER_PASSWORD, None)
            .await
            .unwrap_err();
        assert_unreachable(&err, false);
    }

    #[tokio::test]
    async fn an_unreadable_success_is_an_invalid_answer() {
        let (emulator, client, auth) = start();
        emulator.fail(
            "/oauth/token",
            200,
            serde_json::json!({"access_token": 12, "expires_in": "soon"}),
            1,
        );
        let err = grant(&auth, &client, demo::USER_PASSWORD, None)
            .await
            .unwrap_err();
        assert!(matches!(err, Auth0Error::InvalidAnswer { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn refresh_rotates_and_invalid_grant_ends_the_session() {
        let (emulator, client, auth) = start();
        let refresh_token = refresh_token_of_a_login(&auth, &client).await;
        let second = auth.refresh(&client, &refresh_token).await.unwrap();
        assert!(second.id_token.is_some());
        let rotated = second.refresh_token.clone().unwrap();
        assert_ne!(rotated.expose_secret(), refresh_token.expose_secret());

        let sent = emulator.requests_to("/oauth/token");
        let sent = sent.last().unwrap();
        assert_eq!(sent.param("grant_type").as_deref(), Some("refresh_token"));
        assert_eq!(
            sent.param("refresh_token").as_deref(),
            Some(refresh_token.expose_secret())
        );
        assert_client_credentials(sent);
        assert_eq!(sent.param("scope"), None);

        // The rotated-out token again: reuse, Auth0 ends the family.
        let err = auth.refresh(&client, &refresh_token).await.unwrap_err();
        assert!(err.is_invalid_grant(), "{err:?}");
        assert!(matches!(err.classify(), GrantFailure::UserRefused { .. }));
    }

    #[tokio::test]
    async fn revoke_sends_the_token_and_the_client_credentials() {
        let (emulator, client, auth) = start();
        let refresh_token = refresh_token_of_a_login(&auth, &client).await;
        auth.revoke(&client, &refresh_token).await.unwrap();
        let sent = emulator.requests_to("/oauth/revoke");
        assert_eq!(sent.len(), 1);
        assert_eq!(
            sent[0].param("token").as_deref(),
            Some(refresh_token.expose_secret())
        );
        assert_client_credentials(&sent[0]);
        let err = auth.refresh(&client, &refresh_token).await.unwrap_err();
        assert!(err.is_invalid_grant(), "{err:?}");
    }

    /// An authorization code from the emulator's non-interactive `/authorize` shortcut, issued
    /// for `redirect_uri` with a PKCE challenge of `verifier` and `nonce`.
    async fn authorization_code(
        emulator: &EmulatorHandle,
        redirect_uri: &str,
        verifier: &str,
        nonce: &str,
    ) -> String {
        use base64::Engine as _;
        use sha2::Digest as _;
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()));
        let http = Auth0Http::new(Duration::from_secs(5)).unwrap();
        let answer = http
            .client()
            .get(format!("{}/authorize", emulator.base_url()))
            .query(&[
                ("response_type", "code"),
                ("client_id", demo::LOGIN_CLIENT_ID),
                ("redirect_uri", redirect_uri),
                ("scope", "openid offline_access profile"),
                ("state", "st"),
                ("nonce", nonce),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
                ("connection", demo::CONNECTION),
                ("login_hint", demo::USER_EMAIL),
                ("password", demo::USER_PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), reqwest::StatusCode::FOUND);
        let location = answer.headers()["location"].to_str().unwrap();
        let location = Url::parse(location).unwrap();
        location
            .query_pairs()
            .find(|(name, _)| name == "code")
            .map(|(_, code)| code.into_owned())
            .unwrap()
    }

    #[tokio::test]
    async fn exchange_code_sends_the_verifier_and_the_redirect_uri() {
        let (emulator, client, auth) = start();
        let verifier = "v".repeat(43);
        let redirect_uri = "http://app.example/callback";
        let code = authorization_code(&emulator, redirect_uri, &verifier, "nonce-1").await;
        let tokens = auth
            .exchange_code(
                &client,
                &SecretString::from(code.clone()),
                redirect_uri,
                &SecretString::from(verifier.clone()),
            )
            .await
            .unwrap();
        assert!(tokens.refresh_token.is_some());
        let id_token = tokens.id_token.unwrap();
        let jwks = crate::auth0::JwksCache::new(auth.http().clone(), crate::clock::Clock::system());
        let claims = jwks
            .verify_id_token(id_token.expose_secret(), &client, Some("nonce-1"))
            .await
            .unwrap();
        assert_eq!(claims["sub"], demo::USER_ID);

        let sent = emulator.requests_to("/oauth/token");
        let sent = sent.last().unwrap();
        assert_eq!(
            sent.param("grant_type").as_deref(),
            Some("authorization_code")
        );
        assert_eq!(sent.param("code"), Some(code));
        assert_eq!(sent.param("redirect_uri").as_deref(), Some(redirect_uri));
        assert_eq!(sent.param("code_verifier"), Some(verifier.clone()));
        assert_client_credentials(sent);

        // A wrong verifier: Auth0 refuses the grant.
        let code = authorization_code(&emulator, redirect_uri, &verifier, "nonce-2").await;
        let err = auth
            .exchange_code(
                &client,
                &SecretString::from(code),
                redirect_uri,
                &SecretString::from("w".repeat(43)),
            )
            .await
            .unwrap_err();
        assert!(err.is_invalid_grant(), "{err:?}");
    }

    #[tokio::test]
    async fn change_password_returns_auth0s_message() {
        let (emulator, client, auth) = start();
        let message = auth
            .change_password(&client, demo::USER_EMAIL, demo::CONNECTION)
            .await
            .unwrap();
        assert!(message.contains("email"), "{message}");
        let sent = emulator.requests_to("/dbconnections/change_password");
        assert_eq!(sent.len(), 1);
        let body = sent[0].json.clone().unwrap();
        assert_eq!(
            body,
            serde_json::json!({"client_id": demo::LOGIN_CLIENT_ID, "email": demo::USER_EMAIL, "connection": demo::CONNECTION})
        );
    }
}
