//! The one test harness: `spawn_app()` starts the real daemon in-process on port 0 against its own
//! settings, and `TestApp` has one helper per kind of request.

use std::collections::BTreeMap;

use auth0_client::Application;
use auth0_client::app::ShutdownHandle;
use auth0_client::clock::Clock;
use auth0_client::config::{Env, Settings};
use auth0_client::store::faults::StoreFaults;
use auth0_emulator::seed::demo;
use auth0_emulator::{Emulator, EmulatorHandle, Seed, SeedClient};
use serde_json::{Value, json};

/// The login client of the emulator's seed that does not rotate refresh tokens.
pub const NON_ROTATING_CLIENT_ID: &str = "non-rotating-client";
/// The login client of the emulator's seed whose ID tokens are HS256, signed with its secret.
pub const HS256_CLIENT_ID: &str = "hs256-client";
pub const HS256_CLIENT_SECRET: &str = "hs256-client-secret";

pub struct TestApp {
    /// The Auth0 emulator the daemon talks to (shared by the daemons of a [`spawn_pair`]).
    pub emulator: std::sync::Arc<EmulatorHandle>,
    /// `http://127.0.0.1:PORT` of the main listener.
    pub address: String,
    pub port: u16,
    pub management_port: Option<u16>,
    pub client: reqwest::Client,
    pub shutdown: ShutdownHandle,
    /// The daemon's clock: tests move it instead of sleeping (Auth0's own time does not move).
    pub clock: Clock,
    /// The store's test hook: make writes fail or every call stall.
    pub store_faults: StoreFaults,
    /// The bulk-import jobs: `jobs.poll_once()` runs one round of their poll loop.
    pub jobs: auth0_client::actors::jobs::JobsHandle,
    _data: tempfile::TempDir,
}

/// The emulator's seed for the tests: the demo tenant plus a login client without rotation and
/// one whose ID tokens are HS256.
pub fn test_seed() -> Seed {
    let mut seed = Seed::demo();
    seed.clients.push(SeedClient {
        client_id: NON_ROTATING_CLIENT_ID.into(),
        client_secret: Some("non-rotating-secret".into()),
        refresh_token_rotation: Some(false),
        ..SeedClient::default()
    });
    seed.clients.push(SeedClient {
        client_id: HS256_CLIENT_ID.into(),
        client_secret: Some(HS256_CLIENT_SECRET.into()),
        id_token_alg: Some("HS256".into()),
        ..SeedClient::default()
    });
    seed
}

/// Settings against `emulator`: `api` (token JSON, the default), `web` (the `website` cookie,
/// `SameSite=Lax`) and `plain` (no rotation), all on the demo tenant.
pub fn emulator_config(emulator: &EmulatorHandle) -> Value {
    let base = emulator.base_url();
    let client = |client_id: &str, secret: &str, scopes: Value| {
        json!({
            "auth0Url": base,
            "clientId": client_id,
            "clientSecret": secret,
            "redirectUrl": "https://app.example/web-login/callback",
            "scopes": scopes,
            "supportedConnections": [demo::CONNECTION],
        })
    };
    let mut web = client(
        demo::LOGIN_CLIENT_ID,
        demo::LOGIN_CLIENT_SECRET,
        json!(["offline_access", "website"]),
    );
    web["sameSite"] = "Lax".into();
    json!({
        "clients": {
            "api": client(demo::LOGIN_CLIENT_ID, demo::LOGIN_CLIENT_SECRET, json!(["offline_access", "profile", "email"])),
            "web": web,
            "plain": client(NON_ROTATING_CLIENT_ID, "non-rotating-secret", json!(["offline_access"])),
        },
        "defaultClient": "api",
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
        "server": {"bind": "127.0.0.1"}
    })
}

/// Settings every test of the status routes starts from: one login client on a tenant nobody
/// answers at, everything on loopback and an ephemeral port.
pub fn base_config() -> Value {
    json!({
        "clients": {
            "web": {
                "auth0Url": "https://tenant.example",
                "clientId": "web-client-id",
                "clientSecret": "web-client-secret",
                "redirectUrl": "https://app.example/callback",
                "scopes": ["offline_access", "website"],
                "supportedConnections": ["Username-Password-Authentication"]
            }
        },
        "defaultClient": "web",
        "server": {"bind": "127.0.0.1"}
    })
}

/// Starts an emulator and the daemon against it with `emulator_config`.
pub async fn spawn_app() -> TestApp {
    spawn_app_configured(|_| {}, &[]).await
}

/// Like [`spawn_app`], after `change` has edited the config.
pub async fn spawn_app_configured(
    change: impl FnOnce(&mut Value),
    env: &[(&str, &str)],
) -> TestApp {
    let emulator = Emulator::start(test_seed()).unwrap();
    let mut config = emulator_config(&emulator);
    change(&mut config);
    start(emulator, config, env).await
}

/// Like [`spawn_app_configured`], against an emulator started with `seed`.
pub async fn spawn_app_seeded(seed: Seed, env: &[(&str, &str)]) -> TestApp {
    let emulator = Emulator::start(seed).unwrap();
    let config = emulator_config(&emulator);
    start(emulator, config, env).await
}

/// Starts the daemon with `config` (the settings document) and `env` (its environment), with an
/// emulator beside it that `config` may ignore.
pub async fn spawn_app_with(config: Value, env: &[(&str, &str)]) -> TestApp {
    let emulator = Emulator::start(test_seed()).unwrap();
    start(emulator, config, env).await
}

/// Two daemons with one config and one environment (say, one Redis in `REDIS_HOSTS`), one
/// emulator and one clock: what two daemons behind a load balancer look like.
pub async fn spawn_pair(
    change: impl FnOnce(&mut Value),
    env: &[(&str, &str)],
) -> (TestApp, TestApp) {
    let emulator = std::sync::Arc::new(Emulator::start(test_seed()).unwrap());
    let mut config = emulator_config(&emulator);
    change(&mut config);
    let clock = Clock::manual();
    let first = start_on(emulator.clone(), config.clone(), env, clock.clone()).await;
    let second = start_on(emulator, config, env, clock).await;
    (first, second)
}

async fn start(emulator: EmulatorHandle, config: Value, env: &[(&str, &str)]) -> TestApp {
    start_on(std::sync::Arc::new(emulator), config, env, Clock::manual()).await
}

/// Starts a daemon on `emulator` with `config`, `env` and `clock`: several daemons on one
/// emulator, each with its own environment (say, a fixed `HTTP_PORT` for one of them).
pub async fn start_on(
    emulator: std::sync::Arc<EmulatorHandle>,
    config: Value,
    env: &[(&str, &str)],
    clock: Clock,
) -> TestApp {
    let data = tempfile::tempdir().unwrap();
    let mut vars: BTreeMap<String, String> = BTreeMap::from([
        ("HTTP_PORT".to_owned(), "0".to_owned()),
        ("DELAY_SHUTDOWN_SECONDS".to_owned(), "0".to_owned()),
        (
            "AUTH0_CLIENT__SESSIONS__PATH".to_owned(),
            data.path().join("sessions").display().to_string(),
        ),
    ]);
    for (k, v) in env {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    let settings = Settings::from_value(config, &Env::from_pairs(vars)).unwrap();
    let app = Application::build_with_clock(settings, clock.clone()).unwrap();
    let store_faults = app.store_faults();
    let jobs = app.jobs();
    let port = app.port();
    let management_port = app.management_port();
    let shutdown = app.shutdown_handle();
    actix_rt::spawn(app.run_until_stopped());
    TestApp {
        emulator,
        address: format!("http://127.0.0.1:{port}"),
        port,
        management_port,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        shutdown,
        clock,
        store_faults,
        jobs,
        _data: data,
    }
}

impl TestApp {
    /// The folder the daemon's sled store lives in (`sessions.path`).
    pub fn sessions_dir(&self) -> std::path::PathBuf {
        self._data.path().join("sessions")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// `POST /oauth/token` with the password grant as a form, for `client` (`client-type`).
    pub async fn login(&self, client: &str, username: &str, password: &str) -> reqwest::Response {
        self.client
            .post(self.url("/oauth/token"))
            .header("client-type", client)
            .form(&[
                ("grant_type", "password"),
                ("username", username),
                ("password", password),
            ])
            .send()
            .await
            .unwrap()
    }

    /// The demo user's password grant for `client`, with extra request `headers`.
    pub async fn login_with(&self, client: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.url("/oauth/token"))
            .header("client-type", client)
            .form(&[
                ("grant_type", "password"),
                ("username", demo::USER_EMAIL),
                ("password", demo::USER_PASSWORD),
            ]);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap()
    }

    /// Logs the demo user in with the `api` client and returns the token JSON.
    pub async fn login_tokens(&self) -> Value {
        let response = self
            .login("api", demo::USER_EMAIL, demo::USER_PASSWORD)
            .await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Logs the demo user in with the `web` client and returns the `sid` cookie's value.
    pub async fn login_cookie(&self) -> String {
        let response = self
            .login("web", demo::USER_EMAIL, demo::USER_PASSWORD)
            .await;
        assert_eq!(response.status(), 200);
        sid_cookie(&response).expect("a sid cookie")
    }

    pub async fn userinfo_bearer(&self, access_token: &str) -> reqwest::Response {
        self.client
            .get(self.url("/userinfo"))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
    }

    pub async fn userinfo_cookie(&self, sid: &str) -> reqwest::Response {
        self.client
            .get(self.url("/userinfo"))
            .header("cookie", format!("sid={sid}"))
            .send()
            .await
            .unwrap()
    }

    pub async fn refresh_bearer(
        &self,
        access_token: &str,
        refresh_token: &str,
    ) -> reqwest::Response {
        self.client
            .post(self.url("/refreshtoken"))
            .bearer_auth(access_token)
            .json(&json!({"refresh_token": refresh_token}))
            .send()
            .await
            .unwrap()
    }

    pub async fn refresh_cookie(&self, sid: &str) -> reqwest::Response {
        self.client
            .post(self.url("/refreshtoken"))
            .header("cookie", format!("sid={sid}"))
            .send()
            .await
            .unwrap()
    }

    /// The form fields of every `/oauth/token` call the emulator received.
    pub fn token_calls(&self) -> Vec<std::collections::BTreeMap<String, String>> {
        self.emulator
            .requests_to("/oauth/token")
            .into_iter()
            .filter_map(|r| r.form)
            .collect()
    }

    /// How many management tokens the daemon fetched (client-credentials grants).
    pub fn management_token_fetches(&self) -> usize {
        self.token_calls()
            .iter()
            .filter(|form| form.get("grant_type").map(String::as_str) == Some("client_credentials"))
            .count()
    }

    /// Makes the emulator issue access tokens that expire after `seconds`.
    pub fn access_tokens_last(&self, seconds: u64) {
        self.emulator
            .update_settings(|s| s.access_token_seconds = seconds);
    }

    /// GET returning the status and the JSON body.
    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let response = self.get(path).await;
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }
}

/// How often [`eventually`] checks again.
const EVENTUALLY_EVERY: std::time::Duration = std::time::Duration::from_millis(10);

/// What an [`eventually`] check answers: `true`, `Some(value)` or `Ok(value)` once its condition
/// holds; `false`, `None` or `Err(what it saw instead)` before (the last of which goes into the
/// failure message).
pub trait Outcome {
    type Value;
    fn held(self) -> Result<Self::Value, Option<String>>;
}

impl Outcome for bool {
    type Value = ();
    fn held(self) -> Result<(), Option<String>> {
        if self { Ok(()) } else { Err(None) }
    }
}

impl<T> Outcome for Option<T> {
    type Value = T;
    fn held(self) -> Result<T, Option<String>> {
        self.ok_or(None)
    }
}

impl<T, E: std::fmt::Display> Outcome for Result<T, E> {
    type Value = T;
    fn held(self) -> Result<T, Option<String>> {
        self.map_err(|seen| Some(seen.to_string()))
    }
}

/// Waits until `check` answers that its condition holds (see [`Outcome`]) and returns what it
/// found: checks at once, then every few milliseconds, the last time at the deadline. Panics
/// naming `what` (what was awaited) when `within` has passed without it.
pub async fn eventually<O: Outcome>(
    what: &str,
    within: std::time::Duration,
    mut check: impl AsyncFnMut() -> O,
) -> O::Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let seen = match check().await.held() {
            Ok(value) => return value,
            Err(seen) => seen,
        };
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            match seen {
                Some(seen) => {
                    panic!("timed out after {within:?} waiting for {what}; last seen: {seen}")
                }
                None => panic!("timed out after {within:?} waiting for {what}"),
            }
        }
        tokio::time::sleep(left.min(EVENTUALLY_EVERY)).await;
    }
}

/// The value of the `sid` cookie a response sets.
/// The status and the body of an answer (JSON when it is, else the text).
pub async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

pub fn sid_cookie(response: &reqwest::Response) -> Option<String> {
    set_cookie(response, "sid").and_then(|c| {
        c.split(';')
            .next()
            .and_then(|pair| pair.strip_prefix("sid="))
            .map(str::to_owned)
    })
}

/// The whole `Set-Cookie` header a response sets for cookie `name`.
pub fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// Asserts `body` is SPEC §4's error body with `status` and a message containing `needle`.
pub fn assert_error_body(body: &Value, status: u16, needle: &str) {
    assert_eq!(body["statusCode"], status, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(needle),
        "message {message:?} should contain {needle:?}"
    );
}

/// The daemon as a separate process (the binary built from the daemon's command line), for what
/// only a process shows: signals, exit codes, log lines.
pub struct DaemonProcess {
    pub child: std::process::Child,
    pub port: u16,
    /// Every stdout line so far (JSON log lines).
    pub stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl DaemonProcess {
    /// Writes `config` to a file, starts `binary serve` on an ephemeral port and waits for its
    /// `listening` log line. `binary` is the test binary's `env!("CARGO_BIN_EXE_e2e-auth0-client")`.
    pub fn start(binary: &str, config: &Value, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth0-client.json");
        std::fs::write(&path, serde_json::to_vec_pretty(config).unwrap()).unwrap();
        Self::spawn(binary, dir, env)
    }

    /// `kill -9`, then the same binary again on the same config and session folder.
    pub fn kill9_and_restart(mut self, binary: &str, env: &[(&str, &str)]) -> Self {
        self.signal("KILL");
        self.wait_exit(10);
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().unwrap());
        Self::spawn(binary, dir, env)
    }

    fn spawn(binary: &str, dir: tempfile::TempDir, env: &[(&str, &str)]) -> Self {
        use std::io::BufRead;
        let path = dir.path().join("auth0-client.json");
        let mut child = std::process::Command::new(binary)
            .arg("serve")
            .arg("--config")
            .arg(&path)
            .env("HTTP_PORT", "0")
            .env("AUTH0_CLIENT__SESSIONS__PATH", dir.path().join("sessions"))
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let reader = std::io::BufReader::new(child.stdout.take().unwrap());
        let lines = stdout.clone();
        std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                // `message` in tracing's JSON lines, `msg` in upstream's (LOG_FORMAT=mia).
                if let Ok(json) = serde_json::from_str::<Value>(&line)
                    && (json["message"] == "listening" || json["msg"] == "listening")
                    && let Some(addr) = json["main_addr"].as_str()
                    && let Ok(addr) = addr.parse::<std::net::SocketAddr>()
                {
                    let _ = port_tx.send(addr.port());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let port = port_rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the daemon printed no `listening` line within 30 s");
        Self {
            child,
            port,
            stdout,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// The folder of its config file and its session store (`sessions/`).
    pub fn folder(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// `kill -9`, then the same binary again on the same config and session folder; answers it
    /// with the instant the new process was started.
    pub fn kill9_and_restart_timed(
        mut self,
        binary: &str,
        env: &[(&str, &str)],
    ) -> (Self, std::time::Instant) {
        self.signal("KILL");
        self.wait_exit(10);
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().unwrap());
        let started = std::time::Instant::now();
        (Self::spawn(binary, dir, env), started)
    }

    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit, at most `seconds`.
    pub fn wait_exit(&mut self, seconds: u64) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the daemon did not exit within {seconds} s"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    pub fn log_lines(&self) -> Vec<Value> {
        self.stdout
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A GET from synchronous test code (process tests run no async runtime); returns the status.
pub fn blocking_get(url: &str, request_id: Option<&str>) -> u16 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut request = reqwest::Client::new().get(url);
        if let Some(id) = request_id {
            request = request.header("x-request-id", id);
        }
        request.send().await.unwrap().status().as_u16()
    })
}

/// A fault on `route` that does nothing yet: set the fields the test needs with `..fault(route)`.
pub fn fault(route: &str) -> auth0_emulator::Fault {
    auth0_emulator::Fault {
        id: 0,
        route: route.into(),
        method: None,
        status: None,
        body: None,
        headers: Default::default(),
        delay_ms: 0,
        count: None,
        drop_connection: false,
        hits: 0,
    }
}

/// The `Location` header of a response (a redirect, or a code exchange with a `redirect`).
pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location in a {} answer", response.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

/// The first value of query parameter `name` in `url`, an absolute URL or a path.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let url = reqwest::Url::parse(url)
        .or_else(|_| reqwest::Url::parse("http://relative.invalid").and_then(|base| base.join(url)))
        .unwrap();
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

impl TestApp {
    /// `GET /authorize` with `query`, for `client` (the `client-type` header) or, with `None`, for
    /// whichever client the request picks without one (`defaultClient`).
    pub async fn authorize(
        &self,
        client: Option<&str>,
        query: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self.client.get(self.url("/authorize")).query(query);
        if let Some(client) = client {
            request = request.header("client-type", client);
        }
        request.send().await.unwrap()
    }

    /// Follows the daemon's redirect to the emulator's `/authorize` as a browser would, logging
    /// in at once with the emulator's `login_hint` + `password` shortcut; returns where Auth0
    /// sends the browser back (`<redirectUrl>?code=…&state=…`, or with `error`).
    pub async fn emulator_login(
        &self,
        authorize_url: &str,
        username: &str,
        password: &str,
    ) -> String {
        let mut url = reqwest::Url::parse(authorize_url).unwrap();
        url.query_pairs_mut()
            .append_pair("login_hint", username)
            .append_pair("password", password);
        self.emulator_redirect(url.as_str()).await
    }

    /// Follows a redirect to the emulator, which must answer with a redirect; returns its target.
    pub async fn emulator_redirect(&self, url: &str) -> String {
        let response = self.client.get(url).send().await.unwrap();
        let status = response.status();
        if status != 302 {
            panic!(
                "the emulator answered {status}: {}",
                response.text().await.unwrap()
            );
        }
        location(&response)
    }

    /// `GET /oauth/callback` with the query of `back`, Auth0's redirect to `redirectUrl` (which a
    /// proxy forwards to the daemon in a standalone deployment), sending `cookie` (`name=value`,
    /// the login-binding cookie `/authorize` set) as the browser would.
    pub async fn callback(&self, back: &str, cookie: Option<&str>) -> reqwest::Response {
        let back = reqwest::Url::parse(back).unwrap();
        let url = self.url(&format!(
            "/oauth/callback?{}",
            back.query().unwrap_or_default()
        ));
        let mut request = self.client.get(url);
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.send().await.unwrap()
    }

    /// `POST /oauth/token?code=…&state=…` for `client`, as the upstream login site sends it.
    pub async fn exchange_code(&self, client: &str, code: &str, state: &str) -> reqwest::Response {
        self.client
            .post(self.url("/oauth/token"))
            .header("client-type", client)
            .query(&[("code", code), ("state", state)])
            .send()
            .await
            .unwrap()
    }
}

/// The `name=value` of the cookie binding a login to its browser, which `/authorize` sets
/// (named `__Host-auth0_client_login_…`, or without `__Host-` with `server.insecureCookies`).
pub fn binding_cookie(response: &reqwest::Response) -> Option<String> {
    use auth0_client::login::state::{BINDING_COOKIE_PREFIX, HOST_PREFIX};
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| {
            v.strip_prefix(HOST_PREFIX)
                .unwrap_or(v)
                .starts_with(BINDING_COOKIE_PREFIX)
        })
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
}

/// The daemon's release binary (`target/release/auth0-client`), built once per test process with
/// `$CARGO build --release -p auth0-client --bin auth0-client` into the target directory this test
/// binary was built in. The soak tests measure the daemon as it ships, not a debug build.
///
/// The target directory is found from the running test binary (`<target>/debug/deps/e2e-…`):
/// `CARGO_BIN_EXE_*` is only set for integration tests, not for this library.
pub fn release_daemon() -> &'static std::path::Path {
    static BINARY: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BINARY.get_or_init(|| {
        let target_dir = test_target_dir();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let started = std::time::Instant::now();
        let output = std::process::Command::new(&cargo)
            .args([
                "build",
                "--release",
                "-p",
                "auth0-client",
                "--bin",
                "auth0-client",
            ])
            .arg("--target-dir")
            .arg(&target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cargo:?}: {e}"));
        if !output.status.success() {
            panic!(
                "`cargo build --release -p auth0-client` failed ({}):\n{}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let binary = target_dir
            .join("release")
            .join(format!("auth0-client{}", std::env::consts::EXE_SUFFIX));
        assert!(
            binary.is_file(),
            "cargo built no {}:\n{}",
            binary.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        eprintln!(
            "release daemon {} ready in {:.1} s",
            binary.display(),
            started.elapsed().as_secs_f64()
        );
        binary
    })
}

/// The target directory of the running test binary, `<target>/<profile>/deps/<test>-<hash>`.
fn test_target_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    assert_eq!(
        deps.file_name().and_then(|n| n.to_str()),
        Some("deps"),
        "the test binary {} is not in a cargo `deps` folder",
        exe.display()
    );
    deps.parent().unwrap().parent().unwrap().to_path_buf()
}

/// The shared library of a plugin package of the workspace (`email-domain-connection`,
/// `groups-to-permissions`, `audit-log`, and the test-only `test-plugin` and
/// `foreign-abi-plugin`), built once per test process with `$CARGO build -p ...` (debug) into
/// the target directory of this test binary: `cargo test` builds no other package's cdylib.
pub fn plugin_library(package: &str) -> std::path::PathBuf {
    const PACKAGES: [&str; 5] = [
        "email-domain-connection",
        "groups-to-permissions",
        "audit-log",
        "test-plugin",
        "foreign-abi-plugin",
    ];
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    assert!(PACKAGES.contains(&package), "no plugin package {package}");
    let dir = DIR.get_or_init(|| {
        let target_dir = test_target_dir();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = std::process::Command::new(&cargo);
        command.arg("build");
        for p in PACKAGES {
            command.args(["-p", p]);
        }
        let output = command
            .arg("--target-dir")
            .arg(&target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cargo:?}: {e}"));
        assert!(
            output.status.success(),
            "building the plugins failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        target_dir.join("debug")
    });
    let file = dir.join(format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        package.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    ));
    assert!(file.is_file(), "cargo built no {}", file.display());
    file
}

/// The value of one sample of `/-/metrics` (`name{labels}` as the exposition prints it), 0 when
/// absent.
pub async fn metric_value(app: &TestApp, sample: &str) -> f64 {
    let text = app.get("/-/metrics").await.text().await.unwrap();
    sample_value(&text, sample).unwrap_or(0.0)
}

/// The value of one sample in a `/-/metrics` text, when it is there.
pub fn sample_value(metrics: &str, sample: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        line.strip_prefix(sample)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// `/-/check-up` reports untrusted forwarders as a warning naming `peer`, with the status still
/// `OK` and 200 (SPEC §8); returns the warning for further checks.
pub async fn assert_proxies_warning(app: &TestApp, peer: &str) -> String {
    let (status, body) = app.get_json("/-/check-up").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "OK");
    assert_eq!(body["warnings"], json!(["proxies"]));
    let proxies = body["checks"]["proxies"].as_str().unwrap().to_owned();
    assert!(proxies.starts_with("warning: "), "{proxies}");
    assert!(proxies.contains(peer), "{proxies}");
    proxies
}
