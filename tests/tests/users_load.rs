//! The management write routes (SPEC §6) under load: concurrent keep-alive clients creating,
//! patching and logging out users; a `POST /users` whose body stops coming; the same user twice
//! at once; and a `kill -9` in the middle of `DELETE /users/{id}/sessions`.

use std::time::{Duration, Instant};

use auth0_emulator::seed::demo;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::testkit::{
    DaemonProcess, answer, assert_error_body, emulator_config, release_daemon, spawn_app,
    spawn_app_configured, test_seed,
};

const ENCODED_USER_ID: &str = "auth0%7C64b0c0ffee0000000000d001";
const PASSWORD: &str = "Str0ng-password!";

fn encoded(user_id: &str) -> String {
    user_id.replace('|', "%7C")
}

/// 40 keep-alive clients (one pooled reqwest client) each create a user, rename it and log it
/// out, while 10 more patch the demo user and ask for password-change emails: every answer is the expected one, every created user
/// is in Auth0 with its new nickname, and one management token served them all.
#[actix_rt::test]
async fn dozens_of_concurrent_writers_get_their_answers_and_their_users() {
    const CREATORS: usize = 40;
    let app = spawn_app().await;
    let creators = (0..CREATORS).map(|i| {
        let app = &app;
        async move {
            let email = format!("load{i}@example.com");
            let (status, user) = answer(
                app.client
                    .post(app.url("/users"))
                    .json(&json!({"email": email, "password": PASSWORD}))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, 201, "create {email}: {user}");
            let path = format!("/users/{}", encoded(user["user_id"].as_str().unwrap()));
            let (status, patched) = answer(
                app.client
                    .patch(app.url(&path))
                    .json(&json!({"nickname": format!("n{i}")}))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, 200, "patch {email}: {patched}");
            assert_eq!(patched["nickname"], format!("n{i}"));
            let (status, body) = answer(
                app.client
                    .delete(app.url(&format!("{path}/sessions")))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, 204, "sessions of {email}: {body}");
            email
        }
    });
    let patchers = (0..10).map(|i| {
        let app = &app;
        async move {
            let (status, body) = answer(
                app.client
                    .patch(app.url(&format!("/users/{ENCODED_USER_ID}")))
                    .json(&json!({"user_metadata": {"round": i}}))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, 200, "patch demo: {body}");
            // An invalid body is a 4xx naming it, never a 5xx, even under load.
            let (status, body) = answer(
                app.client
                    .post(app.url("/users"))
                    .json(&json!({"email": "x@example.com", "password": PASSWORD, "connection": "google-oauth2"}))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_error_body(&body, 400, "google-oauth2");
            assert_eq!(status, 400);
            let (status, body) = answer(
                app.client
                    .post(app.url("/change-password"))
                    .json(&json!({"email": format!("load{i}@example.com")}))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, 200, "change-password: {body}");
        }
    });
    let (emails, _) = futures_util::future::join(
        futures_util::future::join_all(creators),
        futures_util::future::join_all(patchers),
    )
    .await;
    for (i, email) in emails.iter().enumerate() {
        let user = app
            .emulator
            .user(email)
            .unwrap_or_else(|| panic!("{email} is not in Auth0"));
        assert_eq!(user["nickname"], format!("n{i}"), "{user}");
    }
    assert!(app.emulator.user("x@example.com").is_none());
    assert_eq!(
        app.emulator
            .requests_to("/dbconnections/change_password")
            .len(),
        10
    );
    assert_eq!(app.management_token_fetches(), 1);
}

/// What a raw connection was answered: status, body, whether it then closed, and when.
#[derive(Debug)]
struct Raw {
    status: u16,
    body: Vec<u8>,
    closed: bool,
    took: Duration,
}

/// Reads one HTTP/1.1 answer (head and `Content-Length` body) within `wait`; `None` if the
/// connection closed or nothing complete came.
async fn read_raw(stream: &mut TcpStream, sent: Instant, wait: Duration) -> Option<Raw> {
    let deadline = tokio::time::Instant::from_std(sent + wait);
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
            let status = head.split(' ').nth(1)?.parse().ok()?;
            let length = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buffer.len() >= end + 4 + length {
                let took = sent.elapsed();
                let body = buffer[end + 4..end + 4 + length].to_vec();
                let closed = matches!(
                    tokio::time::timeout(Duration::from_secs(3), stream.read(&mut chunk)).await,
                    Ok(Ok(0)) | Ok(Err(_))
                );
                return Some(Raw {
                    status,
                    body,
                    closed,
                    took,
                });
            }
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
            Ok(Ok(n)) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A `POST /users` whose body stops after a few bytes holds nobody up: other clients create
/// their users meanwhile, and the stalled one is answered 408 (naming `server.bodyTimeoutMs`)
/// and closed once the body timeout has passed — and creates nobody.
#[actix_rt::test]
async fn a_stalled_create_is_answered_408_while_others_create_users() {
    const TIMEOUT_MS: u64 = 1500;
    let app = spawn_app_configured(|c| c["server"]["bodyTimeoutMs"] = json!(TIMEOUT_MS), &[]).await;
    let body = json!({"email": "stalled@example.com", "password": PASSWORD}).to_string();
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let head = format!(
        "POST /users HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{}",
        body.len(),
        &body[..10]
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let sent = Instant::now();

    let creations = (0..5).map(|i| {
        app.client
            .post(app.url("/users"))
            .json(&json!({"email": format!("meanwhile{i}@example.com"), "password": PASSWORD}))
            .send()
    });
    for response in futures_util::future::join_all(creations).await {
        let (status, user) = answer(response.unwrap()).await;
        assert_eq!(status, 201, "{user}");
    }
    let others_took = sent.elapsed();
    assert!(
        others_took < Duration::from_millis(TIMEOUT_MS),
        "the other creations waited for the stalled body: {others_took:?}"
    );
    for i in 0..5 {
        assert!(
            app.emulator
                .user(&format!("meanwhile{i}@example.com"))
                .is_some()
        );
    }

    let raw = read_raw(&mut stream, sent, Duration::from_secs(10))
        .await
        .expect("the stalled create was neither answered nor closed within 10 s");
    assert_eq!(raw.status, 408, "{raw:?}");
    assert_error_body(
        &serde_json::from_slice(&raw.body).unwrap(),
        408,
        "server.bodyTimeoutMs",
    );
    assert!(raw.closed, "the stalled connection stays open");
    assert!(
        raw.took >= Duration::from_millis(TIMEOUT_MS - 50),
        "answered before the body timeout: {:?}",
        raw.took
    );
    assert!(app.emulator.user("stalled@example.com").is_none());
}

/// The same user twice at once: one 201 and Auth0's 409; one logged-in user deleted twice at
/// once: both 204, the user gone from Auth0 and every session of theirs ended.
#[actix_rt::test]
async fn the_same_user_twice_at_once() {
    let app = spawn_app().await;
    let create = || {
        app.client
            .post(app.url("/users"))
            .json(&json!({"email": "twice@example.com", "password": PASSWORD}))
            .send()
    };
    let (first, second) = futures_util::future::join(create(), create()).await;
    let mut answers = vec![answer(first.unwrap()).await, answer(second.unwrap()).await];
    answers.sort_by_key(|(status, _)| *status);
    assert_eq!(answers[0].0, 201, "{answers:?}");
    assert_eq!(answers[1].0, 409, "{answers:?}");
    assert_eq!(answers[1].1["message"], "The user already exists.");
    assert_eq!(
        app.emulator.user("twice@example.com").unwrap()["user_id"],
        answers[0].1["user_id"]
    );

    let access = app.login_tokens().await["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let sid = app.login_cookie().await;
    assert_eq!(app.userinfo_bearer(&access).await.status(), 200);
    assert_eq!(app.userinfo_cookie(&sid).await.status(), 200);
    let delete = || {
        app.client
            .delete(app.url(&format!("/users/{ENCODED_USER_ID}")))
            .send()
    };
    let (first, second) = futures_util::future::join(delete(), delete()).await;
    for response in [first, second] {
        let (status, body) = answer(response.unwrap()).await;
        assert_eq!(status, 204, "{body}");
    }
    assert!(app.emulator.user(demo::USER_ID).is_none());
    assert_eq!(app.userinfo_bearer(&access).await.status(), 401);
    assert_eq!(app.userinfo_cookie(&sid).await.status(), 401);
}

const QUIET: &[(&str, &str)] = &[("LOG_LEVEL", "warn,auth0_client::app=info")];

async fn login(client: &reqwest::Client, base: &str, email: &str, password: &str) -> String {
    let response = client
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", email),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    tokens["accessToken"].as_str().unwrap().to_owned()
}

async fn userinfo(client: &reqwest::Client, base: &str, access: &str) -> u16 {
    client
        .get(format!("{base}/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// `kill -9` while `DELETE /users/{id}/sessions` calls run on the release binary: once one of
/// them was acknowledged (204), every session of that user stays ended after the restart; a
/// bystander's session survives; and the restarted daemon answers the write routes normally.
#[test]
fn a_kill_9_during_session_ends_keeps_acknowledged_ends() {
    const SESSIONS: usize = 5;
    let emulator = auth0_emulator::Emulator::start(test_seed()).unwrap();
    let release = release_daemon().to_str().unwrap().to_owned();
    let daemon = DaemonProcess::start(&release, &emulator_config(&emulator), QUIET);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    runtime.block_on(async move {
        let old = format!("http://127.0.0.1:{}", daemon.port);
        let (status, _) = answer(
            client
                .post(format!("{old}/users"))
                .json(&json!({"email": "bystander@example.com", "password": PASSWORD}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 201);
        let bystander = login(&client, &old, "bystander@example.com", PASSWORD).await;
        let mut sessions = Vec::new();
        for _ in 0..SESSIONS {
            sessions.push(login(&client, &old, demo::USER_EMAIL, demo::USER_PASSWORD).await);
        }
        for access in &sessions {
            assert_eq!(userinfo(&client, &old, access).await, 200);
        }

        let (acked_tx, mut acked_rx) = tokio::sync::mpsc::unbounded_channel();
        let enders: Vec<_> = (0..8)
            .map(|_| {
                let (client, old, acked_tx) = (client.clone(), old.clone(), acked_tx.clone());
                tokio::spawn(async move {
                    let sent = client
                        .delete(format!("{old}/users/{ENCODED_USER_ID}/sessions"))
                        .send()
                        .await;
                    let status = sent.ok().map(|r| r.status().as_u16());
                    if status == Some(204) {
                        let _ = acked_tx.send(());
                    }
                    status
                })
            })
            .collect();
        drop(acked_tx);
        // Kill as soon as the first end is acknowledged, with the others still in flight.
        acked_rx
            .recv()
            .await
            .expect("no `DELETE /users/{id}/sessions` was acknowledged");
        let daemon = tokio::task::spawn_blocking(move || daemon.kill9_and_restart(&release, QUIET))
            .await
            .unwrap();
        let mut statuses = Vec::new();
        for ender in enders {
            statuses.push(ender.await.unwrap());
        }
        for status in statuses.iter().flatten() {
            assert_eq!(*status, 204, "an end was answered {status}: {statuses:?}");
        }

        let new = format!("http://127.0.0.1:{}", daemon.port);
        for (i, access) in sessions.iter().enumerate() {
            assert_eq!(
                userinfo(&client, &new, access).await,
                401,
                "session {i} came back after the restart"
            );
        }
        assert_eq!(
            userinfo(&client, &new, &bystander).await,
            200,
            "the bystander's session was lost"
        );
        // The restarted daemon answers every write route normally.
        let access = login(&client, &new, demo::USER_EMAIL, demo::USER_PASSWORD).await;
        assert_eq!(userinfo(&client, &new, &access).await, 200);
        let (status, body) = answer(
            client
                .patch(format!("{new}/users/{ENCODED_USER_ID}"))
                .json(&json!({"nickname": "after"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = answer(
            client
                .post(format!("{new}/users"))
                .json(&json!({"email": "after@example.com", "password": PASSWORD}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        let (status, body) = answer(
            client
                .delete(format!("{new}/users/{ENCODED_USER_ID}/sessions"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 204, "{body}");
        assert_eq!(userinfo(&client, &new, &access).await, 401);
        drop(daemon);
    });
    assert!(emulator.user("after@example.com").is_some());
}
