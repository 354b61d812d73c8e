//! One daemon on Redis (issue 13; SPEC §7): the whole session life on a real `redis-server`, an
//! upstream config with `REDIS_HOSTS` that now starts, and an outage (Redis frozen with SIGSTOP)
//! answered 503, never 401, with the daemon recovering by itself. Several daemons on one Redis
//! are `redis_cluster.rs`.

use std::time::{Duration, Instant};

use auth0_client::store::redis::testing::RedisServer;
use auth0_emulator::seed::demo;
use auth0_emulator::{Emulator, SeedApi};
use serde_json::Value;

use crate::DAEMON;
use crate::testkit::{
    DaemonProcess, TestApp, eventually, sid_cookie, spawn_app_configured, test_seed,
};

/// `sessions.timeoutMs` of the outage test: the bound every store call is given.
const STORE_TIMEOUT_MS: u64 = 500;

/// The key prefix of `scope` (see `store/redis/mod.rs`).
fn prefix(scope: &str) -> String {
    format!("auth0-client:{}:{scope}:", scope.len())
}

async fn on_redis(redis: &RedisServer, scope: &str) -> TestApp {
    let hosts = redis.host_port();
    let timeout = STORE_TIMEOUT_MS.to_string();
    spawn_app_configured(
        |_| {},
        &[
            ("REDIS_HOSTS", &hosts),
            ("SESSION_SCOPE", scope),
            ("AUTH0_CLIENT__SESSIONS__TIMEOUTMS", &timeout),
        ],
    )
    .await
}

fn text(body: &Value, field: &str) -> String {
    body[field].as_str().unwrap_or_default().to_owned()
}

#[actix_rt::test]
async fn a_daemon_on_redis_logs_in_serves_userinfo_refreshes_and_logs_out() {
    let redis = RedisServer::start();
    let app = on_redis(&redis, "life").await;
    assert_eq!(app.get("/-/ready").await.status(), 200);
    let live = ["ZCARD", &format!("{}expiry", prefix("life"))].map(str::to_owned);
    let live = || redis.command(&live.iter().map(String::as_str).collect::<Vec<_>>());

    let tokens = app.login_tokens().await;
    let access = text(&tokens, "accessToken");
    assert_eq!(live(), "1", "the session is in Redis, under the scope");
    let claims: Value = app.userinfo_bearer(&access).await.json().await.unwrap();
    assert_eq!(claims["email"], demo::USER_EMAIL);

    let refreshed = app
        .refresh_bearer(&access, &text(&tokens, "refreshToken"))
        .await;
    assert_eq!(refreshed.status(), 200);
    let new_access = text(&refreshed.json::<Value>().await.unwrap(), "accessToken");
    assert_ne!(new_access, access);
    assert_eq!(app.userinfo_bearer(&new_access).await.status(), 200);
    assert_eq!(
        app.userinfo_bearer(&access).await.status(),
        200,
        "the earlier access token still finds the session"
    );

    // A cookie session beside it, ended by a logout.
    let sid = app.login_cookie().await;
    assert_eq!(live(), "2");
    assert_eq!(app.userinfo_cookie(&sid).await.status(), 200);
    let logout = app
        .client
        .get(app.url("/logout"))
        .header("cookie", format!("sid={sid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 302);
    assert_eq!(app.userinfo_cookie(&sid).await.status(), 401);
    assert_eq!(live(), "1", "the logout removed the record from Redis");
    assert_eq!(app.userinfo_bearer(&new_access).await.status(), 200);

    // Time passes past the session's life on the daemon's clock: gone, although Redis still keeps
    // the record until its own TTL (garbage collection only).
    app.clock.advance(Duration::from_secs(86_400 + 1));
    assert_eq!(app.userinfo_bearer(&new_access).await.status(), 401);
}

/// The canonical example of the upstream documentation, verbatim
/// (`shared/reference/mia-auth0-client-reference.md` §3.4).
const UPSTREAM_CONFIG: &str = r#"{
  "clients": {
    "cms": {
      "auth0Url": "my auth0 url",
      "clientId": "{{AUTH0_CLIENT_ID}}",
      "clientSecret": "{{AUTH0_CLIENT_SECRET}}",
      "redirectUrl": "https://my-host/web-login/callback",
      "scopes": ["offline_access", "profile", "email", "website"],
      "audience": "https://my-host.test.mia-platform.eu",
      "supportedConnections": [],
      "defaultConnection": ""
    }
  },
  "defaultClient": "",
  "managementClient": {
    "auth0Url": "my auth0 url",
    "clientId": "{{AUTH0_MANAGEMENT_CLIENT_ID}}",
    "clientSecret": "{{AUTH0_MANAGEMENT_CLIENT_SECRET}}",
    "supportedConnectionsMap": { "foo": { "connectionId": "bar" } },
    "defaultManagementConnectionName": "foo"
  },
  "customClaimsNamespaces": ["https://mia-platform.eu/app_metadata", "https://mia-platform.eu/user_metadata"]
}"#;

/// An upstream config (the reference's canonical example, §3.4, as published) with the upstream
/// environment (`REDIS_HOSTS` and the rest of the marketplace list) starts the built binary on
/// Redis: before issue 13 it stopped at start.
#[test]
fn an_upstream_config_with_redis_hosts_starts_and_keeps_sessions_in_redis() {
    // The tenant has the API the example names as its audience, as the operator's tenant would.
    let mut seed = test_seed();
    seed.apis.push(SeedApi {
        identifier: "https://my-host.test.mia-platform.eu".into(),
    });
    let emulator = Emulator::start(seed).unwrap();
    // The one placeholder an operator replaces by hand; `{{VAR}}`s come from the environment.
    let config: Value =
        serde_json::from_str(&UPSTREAM_CONFIG.replace("my auth0 url", emulator.base_url()))
            .unwrap();

    let redis = RedisServer::start();
    let hosts = redis.host_port();
    let daemon = DaemonProcess::start(
        DAEMON,
        &config,
        &[
            ("AUTH0_CLIENT_ID", demo::LOGIN_CLIENT_ID),
            ("AUTH0_CLIENT_SECRET", demo::LOGIN_CLIENT_SECRET),
            ("AUTH0_MANAGEMENT_CLIENT_ID", demo::MANAGEMENT_CLIENT_ID),
            (
                "AUTH0_MANAGEMENT_CLIENT_SECRET",
                demo::MANAGEMENT_CLIENT_SECRET,
            ),
            ("SESSION_SCOPE", "upstream"),
            ("REDIS_HOSTS", &hosts),
            ("REDIS_MODE", "normal"),
            ("REDIS_MASTER_NAME", ""),
            ("REDIS_TLS", ""),
            ("REDIS_TLS_CACERT", ""),
            ("SERVICE_CONFIG_FILE_NAME", "config"),
            ("LOG_LEVEL", "info"),
        ],
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        eventually(
            "the daemon to be ready on Redis",
            Duration::from_secs(5),
            async || {
                let ready = client
                    .get(daemon.url("/-/ready"))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16();
                if ready == 200 {
                    Ok(())
                } else {
                    Err(format!("/-/ready {ready}"))
                }
            },
        )
        .await;

        // The `cms` client has the `website` scope: a cookie session, kept in Redis.
        let login = client
            .post(daemon.url("/oauth/token"))
            .header("client-type", "cms")
            .form(&[
                ("grant_type", "password"),
                ("username", demo::USER_EMAIL),
                ("password", demo::USER_PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), 200, "{:?}", login.text().await);
        let sid = sid_cookie(&login).expect("a sid cookie");
        let userinfo = client
            .get(daemon.url("/userinfo"))
            .header("cookie", format!("sid={sid}"))
            .send()
            .await
            .unwrap();
        assert_eq!(userinfo.status(), 200);
    });
    let keys = redis.keys();
    assert!(
        keys.iter()
            .any(|k| k.starts_with(&format!("{}s:", prefix("upstream")))),
        "the session is in Redis under SESSION_SCOPE: {keys:?}"
    );
    let logged = daemon.log_lines();
    assert!(
        logged.iter().any(|l| l["message"] == "connected to Redis"),
        "the daemon says where its sessions are: {logged:?}"
    );
}

#[actix_rt::test]
async fn a_frozen_redis_is_503_never_401_and_the_daemon_recovers_by_itself() {
    let redis = RedisServer::start();
    let app = on_redis(&redis, "outage").await;
    let tokens = app.login_tokens().await;
    let access = text(&tokens, "accessToken");
    let sid = app.login_cookie().await;
    assert_eq!(app.userinfo_bearer(&access).await.status(), 200);

    redis.pause();
    // Every answer within the store's bound plus a margin for the request itself.
    let bound = Duration::from_millis(STORE_TIMEOUT_MS + 1_500);
    for round in 0..4 {
        for what in ["bearer", "cookie"] {
            let started = Instant::now();
            let response = match what {
                "bearer" => app.userinfo_bearer(&access).await,
                _ => app.userinfo_cookie(&sid).await,
            };
            let took = started.elapsed();
            assert_eq!(
                response.status(),
                503,
                "round {round}, {what}: an outage never logs anyone out"
            );
            assert!(
                took < bound,
                "round {round}, {what}: answered after {took:?}"
            );
        }
        let started = Instant::now();
        assert_eq!(app.get("/-/ready").await.status(), 503);
        assert!(started.elapsed() < bound, "{:?}", started.elapsed());
    }
    let refused = app
        .login("api", demo::USER_EMAIL, demo::USER_PASSWORD)
        .await;
    assert_eq!(refused.status(), 503, "a login cannot be stored: 503");

    redis.resume();
    eventually(
        "the same daemon to answer again after SIGCONT",
        Duration::from_secs(5),
        async || {
            let status = app.userinfo_bearer(&access).await.status().as_u16();
            if status == 200 {
                return true;
            }
            assert_eq!(status, 503, "while Redis comes back: 503, never 401");
            false
        },
    )
    .await;
    assert_eq!(
        app.userinfo_cookie(&sid).await.status(),
        200,
        "nothing was lost"
    );
    assert_eq!(app.get("/-/ready").await.status(), 200);
}

#[actix_rt::test]
async fn a_wrong_redis_password_starts_the_daemon_not_ready_and_says_why() {
    let redis = RedisServer::builder().password("right-password").start();
    let hosts = redis.host_port();
    let app = spawn_app_configured(
        |_| {},
        &[
            ("REDIS_HOSTS", &hosts),
            ("REDIS_PASSWORD", "wrong-password"),
        ],
    )
    .await;
    let (status, body) = app.get_json("/-/ready").await;
    assert_eq!(status, 503);
    let store = body["checks"]["store"].as_str().unwrap_or_default();
    assert!(store.contains("REDIS_PASSWORD"), "{body}");
    assert!(!body.to_string().contains("wrong-password"), "{body}");
    let login = app
        .login("api", demo::USER_EMAIL, demo::USER_PASSWORD)
        .await;
    assert_eq!(
        login.status(),
        503,
        "nothing can be stored: 503, not a crash"
    );
}

/// Issue 21: a master and its replica in `REDIS_HOSTS`, a failover under traffic (the replica
/// promoted, the old master made its replica). Logins are back within 10 s, `/-/ready` is not 200
/// while logins fail, and the session made before the failover is still served.
#[actix_rt::test]
async fn a_failover_under_traffic_brings_logins_back_and_ready_tells_the_truth() {
    let master = RedisServer::start();
    let replica = RedisServer::builder().replica_of(&master).start();
    let hosts = format!("{},{}", master.host_port(), replica.host_port());
    let app = spawn_app_configured(
        |_| {},
        &[
            ("REDIS_HOSTS", &hosts),
            ("SESSION_SCOPE", "failover"),
            ("AUTH0_CLIENT__SESSIONS__TIMEOUTMS", "1000"),
        ],
    )
    .await;
    assert_eq!(app.get("/-/ready").await.status(), 200);
    let before = app.login_cookie().await;
    // Replicated (not `WAIT` on a connection of its own: it waits for that connection's writes).
    let expiry = format!("{}expiry", prefix("failover"));
    eventually(
        "the session replicated",
        Duration::from_secs(10),
        async || replica.command(&["ZCARD", &expiry]) == "1",
    )
    .await;

    replica.command(&["REPLICAOF", "NO", "ONE"]);
    master.command(&["REPLICAOF", "127.0.0.1", &replica.port().to_string()]);
    let started = Instant::now();
    let mut back = None;
    let mut ready_while_failing = Vec::new();
    while started.elapsed() < Duration::from_secs(15) {
        let ready = app.get("/-/ready").await.status().as_u16();
        let login = app
            .login("web", demo::USER_EMAIL, demo::USER_PASSWORD)
            .await
            .status()
            .as_u16();
        assert_ne!(login, 401, "an outage is never a 401");
        if login == 200 {
            back.get_or_insert(started.elapsed());
        } else if ready == 200 {
            ready_while_failing.push((started.elapsed(), login));
        }
        if back.is_some() && started.elapsed() > Duration::from_secs(3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let back = back.expect("logins work again after the failover");
    assert!(back < Duration::from_secs(10), "logins back after {back:?}");
    // A probe may land just before the demotion and the login just after it: one such pair at
    // most, where the issue saw 30 of 30.
    assert!(
        ready_while_failing.len() <= 1,
        "/-/ready answered 200 while logins failed: {ready_while_failing:?}"
    );
    assert_eq!(app.get("/-/ready").await.status(), 200);
    assert_eq!(
        app.userinfo_cookie(&before).await.status(),
        200,
        "the session made before the failover is still served"
    );
    let keys = replica.keys();
    assert!(
        keys.iter().any(|k| k.starts_with(&prefix("failover"))),
        "the writes went to the promoted replica: {keys:?}"
    );
}
