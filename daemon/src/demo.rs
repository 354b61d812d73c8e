//! `auth0-client demo`: the daemon on `127.0.0.1:PORT` against an embedded Auth0 emulator seeded
//! with demo users, sessions in a temporary folder, plain-http cookies allowed. No config file,
//! no network.

use auth0_emulator::{Emulator, EmulatorHandle, Seed, seed::demo};
use serde_json::json;

use crate::config::{ConfigError, Env, Settings};

/// Everything the demo runs on; dropping it stops the emulator and deletes the sessions.
pub struct Demo {
    pub settings: Settings,
    pub emulator: EmulatorHandle,
    _sessions: tempfile::TempDir,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot start the embedded Auth0 emulator: {0}")]
    Emulator(std::io::Error),
    #[error("cannot create a temporary session folder: {0}")]
    TempDir(std::io::Error),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// The client types of the demo: token JSON (the default) and the `website` cookie.
pub const CLIENT: &str = "demo";
pub const WEB_CLIENT: &str = "demo-web";

/// Starts the emulator and derives the daemon's settings from it. `env` still applies
/// (`LOG_LEVEL`, `SERVICE_PREFIX`, ...), except `HTTP_PORT`, which is `port`.
pub fn start(port: u16, env: &Env) -> Result<Demo, DemoError> {
    let emulator = Emulator::start(Seed::demo()).map_err(DemoError::Emulator)?;
    let sessions = tempfile::tempdir().map_err(DemoError::TempDir)?;
    let base = emulator.base_url().to_owned();
    let config = json!({
        "clients": {
            CLIENT: {
                "auth0Url": base,
                "clientId": demo::LOGIN_CLIENT_ID,
                "clientSecret": demo::LOGIN_CLIENT_SECRET,
                "redirectUrl": format!("http://127.0.0.1:{port}/oauth/callback"),
                "scopes": ["offline_access", "profile", "email"],
                "audience": demo::API,
                "supportedConnections": [demo::CONNECTION],
                "defaultConnection": demo::CONNECTION
            },
            WEB_CLIENT: {
                "auth0Url": base,
                "clientId": demo::LOGIN_CLIENT_ID,
                "clientSecret": demo::LOGIN_CLIENT_SECRET,
                "redirectUrl": format!("http://127.0.0.1:{port}/oauth/callback"),
                "scopes": ["offline_access", "profile", "email", "website"],
                "supportedConnections": [demo::CONNECTION],
                "sameSite": "Lax"
            }
        },
        "defaultClient": CLIENT,
        "customClaimsNamespaces": [
            format!("{}app_metadata", demo::NAMESPACE),
            format!("{}user_metadata", demo::NAMESPACE)
        ],
        "managementClient": {
            "auth0Url": base,
            "clientId": demo::MANAGEMENT_CLIENT_ID,
            "clientSecret": demo::MANAGEMENT_CLIENT_SECRET,
            "supportedConnectionsMap": {demo::CONNECTION: {"connectionId": demo::CONNECTION_ID}},
            "defaultManagementConnectionName": demo::CONNECTION
        },
        "server": {"bind": "127.0.0.1", "insecureCookies": true},
        "sessions": {"store": "sled", "path": sessions.path().join("sessions")}
    });
    let env = env
        .clone()
        .with("HTTP_PORT", port.to_string())
        .with("REDIS_HOSTS", "");
    let settings = Settings::from_value(config, &env)?;
    Ok(Demo {
        settings,
        emulator,
        _sessions: sessions,
    })
}

/// The ready-to-paste lines printed once the daemon listens on `port`. Each `curl` line works
/// as printed, in order (a test runs them): the JSON login keeps its tokens in shell variables,
/// the cookie login in a cookie jar. The browser login uses the default client [`CLIENT`]: a
/// browser cannot send the `client-type` header that would pick [`WEB_CLIENT`], and
/// `/oauth/callback` sets the `sid` cookie for any client.
pub fn curl_lines(port: u16, emulator: &str) -> String {
    let base = format!("http://127.0.0.1:{port}");
    let user = demo::USER_EMAIL;
    let password = demo::USER_PASSWORD;
    let jar = std::env::temp_dir().join("auth0-client-demo.cookies");
    let jar = jar.display();
    let field = |name: &str| format!(r#"sed -E 's/.*"{name}":"([^"]*)".*/\1/'"#);
    format!(
        "\
auth0-client demo: listening on {base}
  Auth0 emulator: {emulator} (users {user} / {password}, {admin} / {admin_password})

  # Is it up? Ready? What does it serve?
  curl -s {base}/-/healthz
  curl -s {base}/-/ready
  curl -s {base}/documentation/json

  # Password login, token JSON (client `{CLIENT}`, the default); keep the tokens in variables:
  curl -s -X POST {base}/oauth/token -d grant_type=password -d username={user} -d password={password}
  TOKENS=$(curl -s -X POST {base}/oauth/token -d grant_type=password -d username={user} -d password={password})
  ACCESS_TOKEN=$(echo \"$TOKENS\" | {access}); REFRESH_TOKEN=$(echo \"$TOKENS\" | {refresh})
  curl -s {base}/userinfo -H \"Authorization: Bearer $ACCESS_TOKEN\"
  curl -s -X POST {base}/refreshtoken -H \"Authorization: Bearer $ACCESS_TOKEN\" -H 'Content-Type: application/json' -d \"{{\\\"refresh_token\\\": \\\"$REFRESH_TOKEN\\\"}}\"

  # Password login, session cookie (client `{WEB_CLIENT}`, a `website` client):
  curl -s -c {jar} -X POST {base}/oauth/token -H 'client-type: {WEB_CLIENT}' -d grant_type=password -d username={user} -d password={password} -D -
  curl -s -b {jar} {base}/userinfo
  curl -s -b {jar} -c {jar} -X POST {base}/refreshtoken -D -
  curl -s -b {jar} '{base}/logout?redirect=/' -D -

  # Browser login (authorization code with PKCE, client `{CLIENT}`): open this URL in a browser, log in
  # with the emulator's form, and land on /userinfo with a session cookie:
  {base}/authorize?redirect=/userinfo
  # The same from the shell, through the emulator's non-interactive login (login_hint + password):
  curl -s -L -b {jar} -c {jar} \"$(curl -s -c {jar} -o /dev/null -w '%{{redirect_url}}' '{base}/authorize?redirect=/userinfo')&login_hint={user}&password={password}\"

  # User management (Auth0's Management API through the daemon: keep these routes private, see the README):
  curl -s '{base}/users?email=demo*&_l=10'
  curl -s {base}/users/{user_id}
  curl -s -X POST {base}/users -H 'Content-Type: application/json' -d '{{\"email\": \"new@example.com\", \"password\": \"N3w-user-passw0rd!\"}}'
  curl -s -X PATCH {base}/users/{admin_id} -H 'Content-Type: application/json' -d '{{\"app_metadata\": {{\"groups\": [\"admin\", \"staff\"]}}}}'
  curl -s -X POST {base}/change-password -H 'Content-Type: application/json' -d '{{\"email\": \"{user}\"}}'
  curl -s {base}/users/active
  curl -s -X DELETE {base}/users/{user_id}/sessions -D -

  # Bulk user import (a management route): one user as JSON, then the jobs the daemon follows:
  curl -s -X POST {base}/users/import -H 'Content-Type: application/json' -d '{{\"users\": [{{\"email\": \"imported@example.com\", \"email_verified\": true}}]}}'
  curl -s {base}/users/import/jobs

  # Metrics after all that:
  curl -s {base}/-/metrics | grep -E 'auth0_client_(http_requests|auth0_requests)_total'

Press Ctrl-C to stop (sessions are kept in a temporary folder and deleted).
",
        admin = demo::ADMIN_EMAIL,
        user_id = demo::USER_ID.replace('|', "%7C"),
        admin_id = demo::ADMIN_ID.replace('|', "%7C"),
        admin_password = demo::ADMIN_PASSWORD,
        access = field("accessToken"),
        refresh = field("refreshToken"),
    )
}
