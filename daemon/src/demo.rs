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

/// The client type the demo's curl lines use.
pub const CLIENT: &str = "demo";

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

/// The ready-to-paste lines printed once the daemon listens on `port`.
pub fn curl_lines(port: u16, emulator: &str) -> String {
    let base = format!("http://127.0.0.1:{port}");
    format!(
        "\
auth0-client demo: listening on {base}
  Auth0 emulator: {emulator} (demo users {user} / {user_password}, {admin} / {admin_password})

  # Is it up? Ready? What does it serve?
  curl -s {base}/-/healthz
  curl -s {base}/-/ready
  curl -s {base}/-/metrics | grep auth0_client_http_requests_total
  curl -s {base}/documentation/json

Press Ctrl-C to stop (sessions are kept in a temporary folder and deleted).
",
        user = demo::USER_EMAIL,
        user_password = demo::USER_PASSWORD,
        admin = demo::ADMIN_EMAIL,
        admin_password = demo::ADMIN_PASSWORD,
    )
}
