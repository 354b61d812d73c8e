//! Plugins (SPEC §9) loaded from the built `.so` files through the real loader: the three
//! examples change what a user sees, misbehaving plugins (panic, timeout, a connection outside
//! the supported list) leave the daemon serving and follow `onError`, and libraries that are not
//! loadable plugins stop the start naming the plugin and the reason.

use std::time::Duration;

use auth0_client::Application;
use auth0_client::config::{Env, Settings};
use auth0_emulator::EmulatorHandle;
use auth0_emulator::seed::demo;
use auth0_emulator::seed::{SeedConnection, SeedUser};
use serde_json::{Value, json};

use crate::testkit::{
    TestApp, assert_error_body, base_config, eventually, location, metric_value, plugin_library,
    query_param, spawn_app_configured, test_seed,
};

const PARTNERS: &str = "Partners";
const PARTNER_EMAIL: &str = "ann@partner.example";
const PARTNER_PASSWORD: &str = "partner-password";

/// A plugins entry for a workspace plugin package.
fn plugin(package: &str, config: Value) -> Value {
    json!({"path": plugin_library(package), "config": config})
}

/// The app with `plugins`; the `api` client supports the demo connection (its default) and
/// `Partners`.
async fn app_with(plugins: Value) -> TestApp {
    let app = spawn_app_configured(
        |config| {
            config["plugins"] = plugins;
            config["clients"]["api"]["supportedConnections"] = json!([demo::CONNECTION, PARTNERS]);
            config["clients"]["api"]["defaultConnection"] = json!(demo::CONNECTION);
        },
        &[],
    )
    .await;
    add_partner_connection(&app.emulator);
    app
}

/// A `Partners` connection in the emulator with one user.
fn add_partner_connection(emulator: &EmulatorHandle) {
    let mut seed = test_seed();
    seed.connections.push(SeedConnection {
        name: PARTNERS.into(),
        id: "con_Partners000001".into(),
    });
    seed.users.push(SeedUser {
        email: PARTNER_EMAIL.into(),
        password: PARTNER_PASSWORD.into(),
        connection: PARTNERS.into(),
        ..SeedUser::default()
    });
    emulator.reseed(&seed).unwrap();
}

/// The `realm` of the last password grant the emulator received (`None`: no realm).
fn last_realm(app: &TestApp) -> Option<String> {
    app.token_calls().last().unwrap().get("realm").cloned()
}

fn calls(plugin: &str, hook: &str, outcome: &str) -> String {
    format!(
        "auth0_client_plugin_calls_total{{hook=\"{hook}\",outcome=\"{outcome}\",plugin=\"{plugin}\"}}"
    )
}

async fn userinfo(app: &TestApp, access_token: &str) -> (u16, Value) {
    let response = app.userinfo_bearer(access_token).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn access_token(app: &TestApp, username: &str, password: &str) -> String {
    let response = app.login("api", username, password).await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    tokens["accessToken"].as_str().unwrap().to_owned()
}

#[actix_rt::test]
async fn email_domain_connection_picks_the_realm_auth0_receives() {
    let app = app_with(json!([plugin(
        "email-domain-connection",
        json!({"domains": {"partner.example": PARTNERS}})
    )]))
    .await;

    let response = app.login("api", PARTNER_EMAIL, PARTNER_PASSWORD).await;
    assert_eq!(response.status(), 200);
    assert_eq!(last_realm(&app).as_deref(), Some(PARTNERS));

    // Another domain: the client's default connection.
    let response = app
        .login("api", demo::USER_EMAIL, demo::USER_PASSWORD)
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(last_realm(&app).as_deref(), Some(demo::CONNECTION));

    // A request naming its connection is not asked about.
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", PARTNER_EMAIL),
            ("password", PARTNER_PASSWORD),
            ("connection", demo::CONNECTION),
        ])
        .send()
        .await
        .unwrap();
    assert_ne!(
        response.status(),
        200,
        "Partners' user is not in that realm"
    );
    assert_eq!(last_realm(&app).as_deref(), Some(demo::CONNECTION));
    assert_eq!(
        metric_value(
            &app,
            &calls("email-domain-connection", "map_connection", "ok")
        )
        .await,
        2.0
    );
}

#[actix_rt::test]
async fn map_connection_is_asked_on_authorize_without_a_username() {
    let events = tempfile::tempdir().unwrap();
    let app = app_with(json!([plugin(
        "test-plugin",
        json!({"connection": PARTNERS, "eventsFile": events.path().join("e.jsonl")})
    )]))
    .await;
    let response = app.authorize(Some("api"), &[]).await;
    assert_eq!(response.status(), 302);
    assert_eq!(
        query_param(&location(&response), "connection").as_deref(),
        Some(PARTNERS)
    );
    // Named by the request: the plugin is not asked.
    let response = app
        .authorize(Some("api"), &[("connection", demo::CONNECTION)])
        .await;
    assert_eq!(
        query_param(&location(&response), "connection").as_deref(),
        Some(demo::CONNECTION)
    );
    assert_eq!(
        metric_value(&app, &calls("test-plugin", "map_connection", "ok")).await,
        1.0
    );
}

#[actix_rt::test]
async fn groups_to_permissions_adds_the_permissions_claim_once_per_session() {
    let app = app_with(json!([plugin(
        "groups-to-permissions",
        json!({"permissions": {"admin": ["users:write", "users:read"], "users": ["profile:read"]}})
    )]))
    .await;
    let user = access_token(&app, demo::USER_EMAIL, demo::USER_PASSWORD).await;
    let admin = access_token(&app, demo::ADMIN_EMAIL, demo::ADMIN_PASSWORD).await;

    let (status, body) = userinfo(&app, &user).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["permissions"], json!(["profile:read"]));
    assert_eq!(body["sub"], demo::USER_ID);
    assert_eq!(body["groups"], json!(["users"]));
    let (_, body) = userinfo(&app, &admin).await;
    assert_eq!(body["permissions"], json!(["users:read", "users:write"]));

    // The body is kept with the session's cached copy: the plugin is not asked again.
    for _ in 0..3 {
        let (_, body) = userinfo(&app, &user).await;
        assert_eq!(body["permissions"], json!(["profile:read"]));
    }
    assert_eq!(
        metric_value(&app, &calls("groups-to-permissions", "custom_claims", "ok")).await,
        2.0
    );
}

/// Reads the lines of `path` once `count` are there (events are written after the answer).
async fn lines_of(path: &std::path::Path, count: usize) -> Vec<Value> {
    eventually(
        &format!("{count} lines in {}", path.display()),
        Duration::from_secs(5),
        async || {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            if lines.len() >= count {
                Ok(lines)
            } else {
                Err(format!("{} lines", lines.len()))
            }
        },
    )
    .await
}

#[actix_rt::test]
async fn audit_log_writes_one_line_per_login_and_refresh_without_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let app = app_with(json!([plugin("audit-log", json!({"path": path}))])).await;
    let tokens = app.login_tokens().await;
    let access = tokens["accessToken"].as_str().unwrap();
    let refresh = tokens["refreshToken"].as_str().unwrap();
    let response = app.refresh_bearer(access, refresh).await;
    assert_eq!(response.status(), 200);
    let refreshed: Value = response.json().await.unwrap();

    let lines = lines_of(&path, 2).await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["event"], "tokens");
    assert_eq!(lines[0]["kind"], "login");
    assert_eq!(lines[0]["client"], "api");
    assert_eq!(lines[0]["sub"], demo::USER_ID);
    assert_eq!(lines[1]["kind"], "refresh");
    let text = std::fs::read_to_string(&path).unwrap();
    for token in [&tokens, &refreshed]
        .iter()
        .flat_map(|t| ["accessToken", "refreshToken", "idToken"].map(|k| t[k].clone()))
        .filter_map(|t| t.as_str().map(str::to_owned))
    {
        assert!(!text.contains(&token), "a token in the audit log: {text}");
    }
}

#[actix_rt::test]
async fn a_panicking_plugin_is_ignored_when_fail_open_and_counted() {
    let mut entry = plugin(
        "test-plugin",
        json!({"connection": PARTNERS, "claims": {"extra": 1},
               "panic": ["map_connection", "custom_claims", "on_tokens"]}),
    );
    // Room for the panic message (and a backtrace under RUST_BACKTRACE) to be printed.
    entry["timeoutMs"] = json!(5000);
    let app = app_with(json!([entry])).await;
    let token = access_token(&app, demo::USER_EMAIL, demo::USER_PASSWORD).await;
    assert_eq!(last_realm(&app).as_deref(), Some(demo::CONNECTION));
    // A body made after a plugin failure is never cached: each request asks again.
    for _ in 0..3 {
        let (status, body) = userinfo(&app, &token).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["sub"], demo::USER_ID);
        assert!(body.get("extra").is_none(), "{body}");
    }
    assert_eq!(
        metric_value(&app, &calls("test-plugin", "map_connection", "panic")).await,
        1.0
    );
    assert_eq!(
        metric_value(&app, &calls("test-plugin", "custom_claims", "panic")).await,
        3.0
    );
    let (status, _) = app.get_json("/-/ready").await;
    assert_eq!(status, 200);
}

#[actix_rt::test]
async fn a_failing_fail_closed_plugin_fails_the_request_with_502() {
    let mut entry = plugin(
        "test-plugin",
        json!({"panic": ["map_connection"], "fail": ["custom_claims"]}),
    );
    entry["onError"] = json!("fail-closed");
    entry["timeoutMs"] = json!(5000);
    let app = app_with(json!([entry])).await;
    let response = app
        .login("api", demo::USER_EMAIL, demo::USER_PASSWORD)
        .await;
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert_error_body(
        &body,
        502,
        "plugin `test-plugin` failed in `map_connection` (panic)",
    );
    assert!(
        app.token_calls().is_empty(),
        "Auth0 was called: {:?}",
        app.token_calls()
    );

    // A request naming its connection does not ask the plugin; /userinfo then fails closed.
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", demo::USER_EMAIL),
            ("password", demo::USER_PASSWORD),
            ("connection", demo::CONNECTION),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    let (status, body) = userinfo(&app, tokens["accessToken"].as_str().unwrap()).await;
    assert_eq!(status, 502, "{body}");
    assert_error_body(&body, 502, "failed in `custom_claims` (error)");
    // And it keeps serving.
    let (status, _) = app.get_json("/-/healthz").await;
    assert_eq!(status, 200);
}

#[actix_rt::test]
async fn a_plugin_that_keeps_timing_out_is_skipped_for_a_cool_down() {
    let mut entry = plugin(
        "test-plugin",
        json!({"claims": {"extra": 1}, "sleepMs": {"custom_claims": 400}}),
    );
    entry["timeoutMs"] = json!(50);
    entry["onError"] = json!("fail-closed");
    let app = app_with(json!([entry])).await;
    let token = access_token(&app, demo::USER_EMAIL, demo::USER_PASSWORD).await;
    for _ in 0..3 {
        let (status, body) = userinfo(&app, &token).await;
        assert_eq!(status, 502, "{body}");
        assert_error_body(&body, 502, "(timeout)");
    }
    // Three timeouts in a row: skipped without a call, and not ready (it fails closed).
    let (status, body) = userinfo(&app, &token).await;
    assert_eq!(status, 502);
    assert_error_body(&body, 502, "(skipped)");
    let (status, body) = app.get_json("/-/ready").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["checks"]["plugins"]
            .as_str()
            .unwrap()
            .contains("test-plugin"),
        "{body}"
    );
    assert_eq!(
        metric_value(&app, &calls("test-plugin", "custom_claims", "timeout")).await,
        3.0
    );
    assert_eq!(
        metric_value(&app, &calls("test-plugin", "custom_claims", "skipped")).await,
        1.0
    );
    // After the cool-down it is tried again.
    app.clock.advance(Duration::from_secs(31));
    let (status, body) = userinfo(&app, &token).await;
    assert_eq!(status, 502);
    assert_error_body(&body, 502, "(timeout)");
    assert_eq!(
        metric_value(&app, &calls("test-plugin", "custom_claims", "timeout")).await,
        4.0
    );
    // Other routes never waited on it.
    let (status, _) = app.get_json("/-/healthz").await;
    assert_eq!(status, 200);
}

#[actix_rt::test]
async fn a_connection_outside_the_supported_list_is_a_plugin_error() {
    let open = app_with(json!([plugin(
        "test-plugin",
        json!({"connection": "Elsewhere"})
    )]))
    .await;
    let response = open
        .login("api", demo::USER_EMAIL, demo::USER_PASSWORD)
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(last_realm(&open).as_deref(), Some(demo::CONNECTION));
    assert_eq!(
        metric_value(&open, &calls("test-plugin", "map_connection", "invalid")).await,
        1.0
    );

    let mut entry = plugin("test-plugin", json!({"connection": "Elsewhere"}));
    entry["onError"] = json!("fail-closed");
    let closed = app_with(json!([entry])).await;
    let response = closed
        .login("api", demo::USER_EMAIL, demo::USER_PASSWORD)
        .await;
    assert_eq!(response.status(), 502);
}

#[actix_rt::test]
async fn plugins_on_one_hook_run_in_config_order() {
    let app = app_with(json!([
        plugin(
            "test-plugin",
            json!({"claims": {"tier": "gold", "first": true}})
        ),
        plugin(
            "test-plugin",
            json!({"connection": PARTNERS, "claims": {"tier": "silver"}})
        ),
        plugin(
            "test-plugin",
            json!({"connection": "Never", "claims": {"first": null}})
        ),
    ]))
    .await;
    // The first plugin answers null, the second's answer wins, the third is not asked.
    let token = access_token(&app, PARTNER_EMAIL, PARTNER_PASSWORD).await;
    assert_eq!(last_realm(&app).as_deref(), Some(PARTNERS));
    assert_eq!(
        metric_value(&app, &calls("test-plugin#2", "map_connection", "ok")).await,
        0.0
    );
    // Claims merge in order: a later plugin replaces a claim, `null` removes one.
    let (_, body) = userinfo(&app, &token).await;
    assert_eq!(body["tier"], "silver", "{body}");
    assert!(body.get("first").is_none(), "{body}");
}

#[actix_rt::test]
async fn a_plugin_may_not_change_sub() {
    let app = app_with(json!([plugin(
        "test-plugin",
        json!({"claims": {"sub": "auth0|someone-else", "extra": 1}})
    )]))
    .await;
    let token = access_token(&app, demo::USER_EMAIL, demo::USER_PASSWORD).await;
    let (status, body) = userinfo(&app, &token).await;
    assert_eq!(status, 200);
    assert_eq!(body["sub"], demo::USER_ID);
    assert!(body.get("extra").is_none(), "{body}");
    assert_eq!(
        metric_value(&app, &calls("test-plugin", "custom_claims", "invalid")).await,
        1.0
    );
}

/// Why `Application::build` refuses `plugins`.
fn start_error(plugins: Value) -> String {
    let mut config = base_config();
    config["plugins"] = plugins;
    let data = tempfile::tempdir().unwrap();
    let env = Env::from_pairs([
        ("HTTP_PORT".to_owned(), "0".to_owned()),
        (
            "AUTH0_CLIENT__SESSIONS__PATH".to_owned(),
            data.path().join("s").display().to_string(),
        ),
    ]);
    let settings = Settings::from_value(config, &env).unwrap();
    match Application::build(settings) {
        Ok(_) => panic!("the daemon started"),
        Err(err) => err.to_string(),
    }
}

fn sha256_of(path: &std::path::Path) -> String {
    let output = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8(output.stdout).unwrap()[..64].to_owned()
}

#[actix_rt::test]
async fn libraries_that_are_not_loadable_plugins_stop_the_start_by_name() {
    let good = plugin_library("groups-to-permissions");
    let config = json!({"permissions": {}});

    let foreign = plugin_library("foreign-abi-plugin");
    let err = start_error(json!([{"path": foreign}]));
    assert!(err.contains("plugins.0"), "{err}");
    assert!(err.contains(&foreign.display().to_string()), "{err}");
    assert!(err.contains("plugin ABI version 2"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("libjunk.so");
    std::fs::write(&junk, b"not a library").unwrap();
    let err = start_error(json!([{"path": good, "config": config}, {"path": junk}]));
    assert!(err.contains("plugins.1"), "{err}");
    assert!(err.contains("not a sound ELF shared library"), "{err}");

    let wrong = "0".repeat(64);
    let err = start_error(json!([{"path": good, "sha256": wrong, "config": config}]));
    assert!(err.contains("plugins.0"), "{err}");
    assert!(
        err.contains(&format!("its SHA-256 is {}", sha256_of(&good))),
        "{err}"
    );

    let err = start_error(json!([{"path": dir.path().join("missing.so")}]));
    assert!(err.contains("cannot read it"), "{err}");

    let err = start_error(json!([{"path": good, "config": {"permissions": "admin"}}]));
    assert!(err.contains("its init refused the config"), "{err}");
}

#[actix_rt::test]
async fn a_pinned_hash_that_matches_loads() {
    let good = plugin_library("groups-to-permissions");
    let app = app_with(json!([{
        "path": good, "sha256": sha256_of(&good).to_uppercase(),
        "config": {"permissions": {"users": ["profile:read"]}}
    }]))
    .await;
    let token = access_token(&app, demo::USER_EMAIL, demo::USER_PASSWORD).await;
    let (_, body) = userinfo(&app, &token).await;
    assert_eq!(body["permissions"], json!(["profile:read"]));
}

#[test]
fn plugin_info_and_check_config_load_the_library() {
    let output = std::process::Command::new(crate::DAEMON)
        .arg("plugin-info")
        .arg(plugin_library("audit-log"))
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        format!(
            "name: audit-log\nversion: {}\nabi: 1\nhooks: on_tokens, on_job_finished\n",
            env!("CARGO_PKG_VERSION")
        )
    );

    // check-config loads and initialises the plugins, and says so on stderr.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.json");
    let mut config = base_config();
    config["plugins"] = json!([plugin("groups-to-permissions", json!({"permissions": {}}))]);
    std::fs::write(&file, config.to_string()).unwrap();
    let output = std::process::Command::new(crate::DAEMON)
        .arg("check-config")
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    assert!(output.status.success());
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed["plugins"][0]["onError"], "fail-open");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(&format!(
            "plugin groups-to-permissions {} loaded from",
            env!("CARGO_PKG_VERSION")
        )) && stderr.contains("(hooks: custom_claims)"),
        "{stderr}"
    );

    let foreign = plugin_library("foreign-abi-plugin");
    let output = std::process::Command::new(crate::DAEMON)
        .arg("plugin-info")
        .arg(&foreign)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("ABI version 2"), "{stderr}");

    let mut config = base_config();
    config["plugins"] = json!([{"path": foreign}]);
    std::fs::write(&file, config.to_string()).unwrap();
    let output = std::process::Command::new(crate::DAEMON)
        .arg("check-config")
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("plugins.0") && stderr.contains("ABI version 2"),
        "{stderr}"
    );
}

#[actix_rt::test]
async fn on_job_finished_reaches_the_plugin_once_per_import() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let app = spawn_app_configured(
        |config| {
            config["plugins"] = json!([plugin("audit-log", json!({"path": path}))]);
            // No background rounds: the test drives them.
            config["jobs"] = json!({"pollIntervalMs": 3_600_000, "maxPollIntervalMs": 3_600_000});
        },
        &[],
    )
    .await;
    app.emulator.update_settings(|s| s.job_seconds = 0.0);
    let response = app
        .client
        .post(app.url("/users/import"))
        .json(&json!({"users": [{"email": "imported@example.com", "email_verified": true}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..20 {
        app.jobs.poll_once().await.unwrap();
        app.clock.advance(Duration::from_secs(3_601));
        if app.jobs.poll_once().await.unwrap().is_idle() {
            break;
        }
    }
    let lines = lines_of(&path, 1).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["event"], "job_finished");
    assert_eq!(lines[0]["jobId"], id.as_str());
    assert_eq!(lines[0]["status"], "completed");
    assert_eq!(lines[0]["connection"], demo::CONNECTION);
    assert_eq!(lines[0]["summary"]["inserted"], 1);
}

#[actix_rt::test]
async fn calls_to_one_plugin_are_bounded() {
    let mut entry = plugin(
        "test-plugin",
        json!({"claims": {"extra": 1}, "sleepMs": {"custom_claims": 1000}}),
    );
    entry["timeoutMs"] = json!(10_000);
    let app = app_with(json!([entry])).await;
    let token = access_token(&app, demo::USER_EMAIL, demo::USER_PASSWORD).await;
    // The login's on_tokens event counts against the bound too: let it finish first.
    eventually(
        "the login's on_tokens call to finish",
        Duration::from_secs(5),
        async || metric_value(&app, &calls("test-plugin", "on_tokens", "ok")).await == 1.0,
    )
    .await;
    // Five requests at once, none cached yet: four calls are admitted, the fifth is refused at
    // once (fail-open: answered without the plugin's claims).
    let answers = futures_util::future::join_all((0..5).map(|_| userinfo(&app, &token))).await;
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );
    let without = answers
        .iter()
        .filter(|(_, body)| body.get("extra").is_none())
        .count();
    assert_eq!(without, 1, "{answers:?}");
    assert_eq!(
        metric_value(&app, &calls("test-plugin", "custom_claims", "busy")).await,
        1.0
    );
    assert_eq!(
        metric_value(&app, &calls("test-plugin", "custom_claims", "ok")).await,
        4.0
    );
}

/// `auth0-client ARGS` run to its end (killed after 30 s: a hang fails the test), with its exit
/// status and stderr.
fn run_daemon(args: &[&std::ffi::OsStr]) -> (std::process::ExitStatus, String) {
    let mut child = std::process::Command::new(crate::DAEMON)
        .args(args)
        .env("HTTP_PORT", "0")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("auth0-client {args:?} hangs");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status, stderr)
}

/// `plugin-info`, `check-config` and `serve` on a config naming `path` as `plugins.0`: each exits 1
/// with one line naming the plugin entry (not `plugin-info`, which has none), the file and
/// `reason`; never a signal (SIGBUS) nor a hang.
fn assert_refused_everywhere(path: &std::path::Path, reason: &str) {
    use std::os::unix::process::ExitStatusExt as _;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.json");
    let mut config = base_config();
    config["plugins"] = json!([{"path": path}]);
    config["sessions"] = json!({"path": dir.path().join("sessions")});
    std::fs::write(&file, config.to_string()).unwrap();
    let runs: [(&str, Vec<&std::ffi::OsStr>); 3] = [
        (
            "plugin-info",
            vec!["plugin-info".as_ref(), path.as_os_str()],
        ),
        (
            "check-config",
            vec![
                "check-config".as_ref(),
                "--config".as_ref(),
                file.as_os_str(),
            ],
        ),
        (
            "serve",
            vec!["serve".as_ref(), "--config".as_ref(), file.as_os_str()],
        ),
    ];
    for (command, args) in runs {
        let (status, stderr) = run_daemon(&args);
        assert_eq!(
            (status.code(), status.signal()),
            (Some(1), None),
            "{command} {}: {stderr}",
            path.display()
        );
        let line = stderr
            .lines()
            .find(|line| line.contains(&path.display().to_string()) && line.contains(reason))
            .unwrap_or_else(|| {
                panic!("{command}: no line naming the file and {reason:?}: {stderr}")
            });
        if command != "plugin-info" {
            assert!(line.contains("plugins.0"), "{command}: {line}");
        }
    }
}

#[test]
fn damaged_plugin_files_exit_1_naming_the_plugin_never_sigbus_or_a_hang() {
    let good = std::fs::read(plugin_library("groups-to-permissions")).unwrap();
    assert!(
        good.len() > 100 * 1024,
        "the plugin is {} bytes",
        good.len()
    );
    let dir = tempfile::tempdir().unwrap();

    // Cut to 1..100 KB: segments now lie past the end of the file.
    for kb in [1, 4, 16, 40, 64, 100] {
        let cut = dir.path().join(format!("cut-{kb}k.so"));
        std::fs::write(&cut, &good[..kb * 1024]).unwrap();
        assert_refused_everywhere(&cut, "is not a sound ELF shared library");
    }
    // Random bytes, and random bytes behind a valid ELF magic.
    let mut random = vec![0u8; 64 * 1024];
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for byte in &mut random {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *byte = state as u8;
    }
    let noise = dir.path().join("random.so");
    std::fs::write(&noise, &random).unwrap();
    assert_refused_everywhere(&noise, "no ELF magic number");
    random[..good.len().min(64)].copy_from_slice(&good[..64]);
    std::fs::write(&noise, &random).unwrap();
    assert_refused_everywhere(&noise, "is not a sound ELF shared library");
    // Empty.
    let empty = dir.path().join("empty.so");
    std::fs::write(&empty, b"").unwrap();
    assert_refused_everywhere(&empty, "the file is empty");
    // A FIFO (nobody writes to it: reading it would wait forever).
    let fifo = dir.path().join("fifo.so");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    assert_refused_everywhere(&fifo, "is not a regular file (a FIFO)");
    // A symlink swapped to point at a device, a directory, a truncated copy.
    let link = dir.path().join("link.so");
    std::os::unix::fs::symlink(plugin_library("groups-to-permissions"), &link).unwrap();
    let (status, stderr) = run_daemon(&["plugin-info".as_ref(), link.as_os_str()]);
    assert!(status.success(), "{stderr}");
    for (target, reason) in [
        (
            std::path::PathBuf::from("/dev/zero"),
            "is not a regular file (a device)",
        ),
        (
            dir.path().to_path_buf(),
            "is not a regular file (a directory)",
        ),
        (
            dir.path().join("cut-16k.so"),
            "is not a sound ELF shared library",
        ),
    ] {
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_refused_everywhere(&link, reason);
    }
}

#[actix_rt::test]
async fn the_bytes_hashed_are_the_bytes_loaded() {
    // A pinned plugin loads from its sealed copy: overwriting the file once the daemon runs
    // changes nothing, and the next start sees the new bytes refused by the pin.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("libpinned.so");
    std::fs::copy(plugin_library("groups-to-permissions"), &copy).unwrap();
    let pin = sha256_of(&copy);
    let app = app_with(json!([{
        "path": copy, "sha256": pin, "config": {"permissions": {"users": ["profile:read"]}}
    }]))
    .await;
    let good = std::fs::read(&copy).unwrap();
    std::fs::write(&copy, &good[..8 * 1024]).unwrap();
    let token = access_token(&app, demo::USER_EMAIL, demo::USER_PASSWORD).await;
    let (status, body) = userinfo(&app, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["permissions"], json!(["profile:read"]));
    let err = start_error(json!([{"path": copy, "sha256": pin}]));
    assert!(
        err.contains("plugins.0") && err.contains("not a sound ELF"),
        "{err}"
    );
}

#[actix_rt::test]
async fn sub_and_groups_survive_every_plugin_answer() {
    let app = app_with(json!([
        plugin(
            "test-plugin",
            json!({"claims": {"sub": null, "groups": null, "extra": 1}})
        ),
        plugin("test-plugin", json!({"claims": {"groups": "admin"}})),
    ]))
    .await;
    let token = access_token(&app, demo::USER_EMAIL, demo::USER_PASSWORD).await;
    let (status, body) = userinfo(&app, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sub"], demo::USER_ID, "{body}");
    assert!(body["groups"].is_array(), "{body}");
    assert_eq!(body["extra"], 1, "{body}");
    // A `groups` that is not an array is the second plugin's error, its answer dropped.
    assert_eq!(
        metric_value(&app, &calls("test-plugin#1", "custom_claims", "invalid")).await,
        1.0
    );
}
