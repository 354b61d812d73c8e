//! Nothing in the store is a usable credential (issue 21, SPEC §7): `MONITOR` on Redis during
//! logins, refreshes and `/userinfo` by cookie and Bearer never shows a session id, an access
//! token or a refresh token; the sled folder's bytes never contain them; a key rotation keeps
//! every session.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth0_client::store::redis::testing::RedisServer;
use serde_json::Value;

use crate::testkit::{TestApp, spawn_app, spawn_app_configured};

fn text(body: &Value, field: &str) -> String {
    body[field].as_str().unwrap_or_default().to_owned()
}

/// Every credential a daemon hands out in one session life: logins by Bearer and by cookie,
/// refreshes by both, `/userinfo` by both. Returns the secrets seen.
async fn session_life(app: &TestApp) -> Vec<String> {
    let mut secrets = Vec::new();
    let tokens = app.login_tokens().await;
    let access = text(&tokens, "accessToken");
    let refresh = text(&tokens, "refreshToken");
    assert_eq!(app.userinfo_bearer(&access).await.status(), 200);
    let refreshed = app.refresh_bearer(&access, &refresh).await;
    assert_eq!(refreshed.status(), 200);
    let refreshed: Value = refreshed.json().await.unwrap();
    let new_access = text(&refreshed, "accessToken");
    assert_eq!(app.userinfo_bearer(&new_access).await.status(), 200);
    secrets.extend([
        access,
        refresh,
        new_access,
        text(&refreshed, "refreshToken"),
    ]);

    let sid = app.login_cookie().await;
    assert_eq!(app.userinfo_cookie(&sid).await.status(), 200);
    assert_eq!(app.refresh_cookie(&sid).await.status(), 200);
    assert_eq!(app.userinfo_cookie(&sid).await.status(), 200);
    secrets.push(sid);
    secrets.retain(|s| !s.is_empty());
    assert!(secrets.len() >= 4, "{secrets:?}");
    secrets
}

/// Everything Redis receives, as `MONITOR` shows it, until the returned handle is read.
fn monitor(redis: &RedisServer) -> Arc<Mutex<String>> {
    let seen = Arc::new(Mutex::new(String::new()));
    let mut stream = TcpStream::connect(("127.0.0.1", redis.port())).expect("redis answers");
    stream.write_all(b"MONITOR\r\n").expect("MONITOR");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let sink = Arc::clone(&seen);
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stream);
        let mut line = String::new();
        while lines.read_line(&mut line).is_ok_and(|n| n > 0) {
            sink.lock().unwrap().push_str(&line);
            line.clear();
        }
    });
    seen
}

#[actix_rt::test]
async fn monitor_never_shows_a_session_id_or_a_token() {
    let redis = RedisServer::start();
    let hosts = redis.host_port();
    let app = spawn_app_configured(
        |_| {},
        &[("REDIS_HOSTS", &hosts), ("SESSION_SCOPE", "seal")],
    )
    .await;
    assert_eq!(app.get("/-/ready").await.status(), 200);
    let seen = monitor(&redis);
    let secrets = session_life(&app).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.contains("EVALSHA") || seen.contains("HGET"),
        "MONITOR saw the daemon: {seen}"
    );
    for secret in &secrets {
        assert!(!seen.contains(secret.as_str()), "MONITOR shows {secret:?}");
    }
    let keys = redis.keys().join("\n");
    for secret in &secrets {
        assert!(!keys.contains(secret.as_str()), "a key holds {secret:?}");
    }
}

/// Every file of the folder, read whole.
fn folder_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("the folder").flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if let Ok(content) = std::fs::read(&path) {
                bytes.extend(content);
            }
        }
    }
    bytes
}

#[actix_rt::test]
async fn the_sled_folder_never_holds_a_session_id_or_a_token() {
    let app = spawn_app().await;
    let secrets = session_life(&app).await;
    // Sessions are durable once answered (group commit): their bytes are on disk now.
    let bytes = folder_bytes(&app.sessions_dir());
    assert!(!bytes.is_empty());
    let key = std::fs::metadata(app.sessions_dir().join("encryption.key")).expect("a key file");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&key.permissions()) & 0o777,
        0o600
    );
    for secret in &secrets {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the sled folder holds {secret:?}"
        );
    }
}

/// A rotation: a second daemon with a new key first and the old one kept serves every session
/// the first made, by cookie and by Bearer.
#[actix_rt::test]
async fn a_key_rotation_keeps_every_session() {
    let redis = RedisServer::start();
    let hosts = redis.host_port();
    let old = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    let new = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";
    let env = |keys: &str| {
        [
            ("REDIS_HOSTS", hosts.clone()),
            ("SESSION_SCOPE", "rotation".to_owned()),
            ("SESSION_ENCRYPTION_KEYS", keys.to_owned()),
        ]
    };
    let first_env = env(old);
    let first = spawn_app_configured(
        |_| {},
        &first_env
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>(),
    )
    .await;
    let tokens = first.login_tokens().await;
    let sid = first.login_cookie().await;

    let rotated_env = env(&format!("{new}, {old}"));
    let rotated = spawn_app_configured(
        |_| {},
        &rotated_env
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(rotated.userinfo_cookie(&sid).await.status(), 200);
    assert_eq!(
        rotated
            .userinfo_bearer(&text(&tokens, "accessToken"))
            .await
            .status(),
        200
    );

    // A daemon with neither key: the sessions are absent (401), counted, never a 500.
    let stranger_env = env("AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=");
    let stranger = spawn_app_configured(
        |_| {},
        &stranger_env
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(stranger.userinfo_cookie(&sid).await.status(), 401);
    let metrics = stranger.get("/-/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("auth0_client_store_unopenable_total 1"),
        "{metrics}"
    );
}

/// SPEC §7: a session refreshed by Bearer again and again keeps a bounded set of aliases (the
/// current one plus those paired with the newest 15 kept superseded refresh tokens: 16), so the
/// thousandth refresh writes what the first did (every access token unique: the emulator's
/// `uniqueAccessTokens`): the session's stored bytes and alias keys after the thousandth refresh
/// are those after the twentieth, when the caps were reached. Times are printed, not asserted: on
/// a shared 2-core machine running the suite in parallel they moved 2.5x between blocks of
/// unchanged code (speed is judged in `tests/bench/`, not in a timed test).
#[actix_rt::test]
async fn a_thousand_bearer_refreshes_leave_at_most_16_aliases_and_the_size_of_the_twentieth() {
    let redis = RedisServer::start();
    let hosts = redis.host_port();
    let mut seed = crate::testkit::test_seed();
    seed.unique_access_tokens = true;
    let app = crate::testkit::spawn_app_seeded(
        seed,
        &[("REDIS_HOSTS", &hosts), ("SESSION_SCOPE", "aliases")],
    )
    .await;
    let tokens = app.login_tokens().await;
    let mut access = text(&tokens, "accessToken");
    let mut refresh = text(&tokens, "refreshToken");
    let mut took = Vec::with_capacity(1_000);
    let mut at_twenty = None;
    for i in 0..1_000 {
        if i == 20 {
            at_twenty = Some(footprint(&redis));
        }
        let started = std::time::Instant::now();
        let answer = app.refresh_bearer(&access, &refresh).await;
        took.push(started.elapsed());
        assert_eq!(answer.status(), 200, "refresh {i}");
        let body: Value = answer.json().await.unwrap();
        let next = text(&body, "accessToken");
        assert_ne!(next, access, "refresh {i}: a new access token");
        access = next;
        if let Some(rotated) = body["refreshToken"].as_str() {
            refresh = rotated.to_owned();
        }
    }
    let (aliases, bytes) = footprint(&redis);
    let (aliases_at_twenty, bytes_at_twenty) = at_twenty.unwrap();
    eprintln!(
        "after 20 refreshes: {aliases_at_twenty} alias keys, session {bytes_at_twenty} bytes; \
         after 1,000: {aliases} alias keys, session {bytes} bytes"
    );
    assert!(aliases <= 16, "{aliases} alias keys");
    assert_eq!(aliases, aliases_at_twenty, "alias keys after 20 and 1,000");
    // Sealed values vary by a few bytes of base64 with the tokens they hold.
    assert!(
        bytes <= bytes_at_twenty + 256,
        "the session grew from {bytes_at_twenty} to {bytes} bytes"
    );
    assert_eq!(app.userinfo_bearer(&access).await.status(), 200);
    // The 10th percentile of each block: a cost that grows with the refreshes raises it, while
    // the load of a shared machine mostly raises the slow tail (the medians moved 3x between two
    // runs of unchanged code at a load average of 9 on 2 cores).
    let low = |block: &[Duration]| {
        let mut block = block.to_vec();
        block.sort();
        block[block.len() / 10]
    };
    let (first, last) = (low(&took[..100]), low(&took[900..]));
    eprintln!("refresh 10th percentiles: first 100 {first:?}, last 100 {last:?}");
}

/// The alias keys of the test's scope, and the bytes Redis holds for its session records
/// (`MEMORY USAGE` of each `s:` key).
fn footprint(redis: &RedisServer) -> (usize, u64) {
    let keys = redis.keys();
    let aliases = keys
        .iter()
        .filter(|k| k.starts_with("auth0-client:7:aliases:t:"))
        .count();
    let bytes = keys
        .iter()
        .filter(|k| k.starts_with("auth0-client:7:aliases:s:"))
        .map(|k| {
            let usage = redis.command(&["MEMORY", "USAGE", k]);
            usage
                .trim_start_matches(':')
                .trim()
                .parse::<u64>()
                .unwrap_or(0)
        })
        .sum();
    (aliases, bytes)
}
