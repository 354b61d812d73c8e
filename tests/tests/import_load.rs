//! Imports under load (SPEC §6): dozens of concurrent keep-alive clients against Auth0's
//! 2-active-jobs limit, a client whose multipart body stops coming while others import, and the
//! same import sent twice at once. The jobs loop is driven a round at a time, as in `import.rs`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::testkit::{TestApp, spawn_app_configured};

/// The jobs loop's timer is an hour: the tests run its rounds themselves.
fn quiet_loop(config: &mut Value) {
    config["jobs"] = json!({"pollIntervalMs": 3_600_000, "maxPollIntervalMs": 3_600_000});
}

async fn import(client: &reqwest::Client, app: &TestApp, body: &Value) -> reqwest::Response {
    client
        .post(app.url("/users/import"))
        .json(body)
        .send()
        .await
        .unwrap()
}

fn job_id(job: &Value) -> String {
    job["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{job}"))
        .to_owned()
}

/// Rounds of the jobs loop (the clock moved past each backoff) until none is unfinished.
async fn drive_jobs(app: &TestApp, pause: Duration) {
    for _ in 0..200 {
        tokio::time::sleep(pause).await;
        app.jobs.poll_once().await.expect("the jobs loop answers");
        app.clock.advance(Duration::from_secs(3_601));
        if app
            .jobs
            .poll_once()
            .await
            .expect("the jobs loop answers")
            .is_idle()
        {
            return;
        }
    }
    panic!("the jobs did not finish");
}

async fn listed_jobs(app: &TestApp) -> Vec<Value> {
    let (status, body) = app.get_json("/users/import/jobs").await;
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().clone()
}

#[actix_rt::test]
async fn dozens_of_concurrent_imports_are_accepted_or_told_to_retry_and_every_job_completes() {
    const CLIENTS: usize = 30;
    let app = std::sync::Arc::new(spawn_app_configured(quiet_loop, &[]).await);
    // Short jobs: some imports find 2 jobs active and get Auth0's 429.
    app.emulator.update_settings(|s| s.job_seconds = 0.05);
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let (app, client) = (app.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            // Each client imports its own users on its keep-alive connection, again after each
            // 429 (sooner than its Retry-After: the emulator's jobs are short) until accepted.
            let body = json!({"users": [
                {"email": format!("load{i}a@example.com")},
                {"email": format!("load{i}b@example.com")},
            ]});
            let mut answers = Vec::new();
            for _ in 0..200 {
                let response = import(&client, &app, &body).await;
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body: Value = response.json().await.unwrap_or(Value::Null);
                answers.push((i, status, retry_after, body));
                if status != 429 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            answers
        }));
    }
    let mut accepted = Vec::new();
    let mut refused = 0;
    for task in tasks {
        for (i, status, retry_after, body) in task.await.unwrap() {
            match status {
                202 => accepted.push((i, job_id(&body))),
                429 => {
                    refused += 1;
                    assert!(
                        retry_after.and_then(|v| v.parse::<u64>().ok()).is_some(),
                        "a 429 without Retry-After: {body}"
                    );
                    assert_eq!(body["statusCode"], 429, "{body}");
                }
                other => panic!("client {i}: {other} {body}"),
            }
        }
    }
    assert!(
        refused > 0,
        "Auth0's limit of 2 active jobs was never reached"
    );
    assert_eq!(
        accepted.len(),
        CLIENTS,
        "every client's import is accepted once"
    );

    drive_jobs(&app, Duration::from_millis(60)).await;
    let listed = listed_jobs(&app).await;
    let ids: Vec<String> = listed.iter().map(job_id).collect();
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a job listed twice: {ids:?}");
    assert_eq!(ids.len(), accepted.len(), "{ids:?}");
    for (i, id) in &accepted {
        let job = listed
            .iter()
            .find(|j| j["id"] == id.as_str())
            .unwrap_or_else(|| panic!("job {id} not listed"));
        assert_eq!(job["status"], "completed", "{job}");
        for tag in ["a", "b"] {
            let email = format!("load{i}{tag}@example.com");
            assert!(app.emulator.user(&email).is_some(), "{email} not imported");
        }
    }
}

/// Reads until an HTTP status line arrives (its code) or the connection closes (`None`).
async fn read_status(stream: &mut TcpStream, wait: Duration) -> Result<Option<u16>, String> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if let Some(line) = buffer
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|end| String::from_utf8_lossy(&buffer[..end]).into_owned())
        {
            return Ok(line.split(' ').nth(1).and_then(|c| c.parse().ok()));
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(None),
            Ok(Ok(n)) => buffer.extend_from_slice(&chunk[..n]),
            Err(_) => return Err(format!("neither answered nor closed within {wait:?}")),
        }
    }
}

#[actix_rt::test]
async fn a_stalled_multipart_import_is_cut_off_while_other_imports_are_answered() {
    let app = spawn_app_configured(
        |config| {
            quiet_loop(config);
            config["server"]["bodyTimeoutMs"] = json!(500);
        },
        &[],
    )
    .await;
    app.emulator.update_settings(|s| s.job_seconds = 0.0);
    let mut stalled = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let boundary = "XstalledX";
    let head = format!(
        "POST /users/import HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: 400000\r\n\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"users\"; filename=\"users.json\"\r\n\
         Content-Type: application/json\r\n\r\n[{{\"email\": \"stalled@example.com\"}},"
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    let sent = Instant::now();

    // Meanwhile other clients import.
    for i in 0..3 {
        let response = import(
            &app.client,
            &app,
            &json!({"users": [{"email": format!("beside{i}@example.com")}]}),
        )
        .await;
        assert_eq!(response.status(), 202, "{:?}", response.text().await);
    }
    assert!(
        sent.elapsed() < Duration::from_millis(500),
        "the other imports waited for the stalled one ({:?})",
        sent.elapsed()
    );

    let status = read_status(&mut stalled, Duration::from_secs(5))
        .await
        .unwrap();
    let took = sent.elapsed();
    assert!(
        matches!(status, Some(408) | None),
        "the stalled import got {status:?}"
    );
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(3),
        "cut off after {took:?}"
    );
    if status.is_some() {
        // After the 408 the connection closes.
        let mut rest = [0u8; 4096];
        let closed = loop {
            match tokio::time::timeout(Duration::from_secs(3), stalled.read(&mut rest)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break true,
                Ok(Ok(_)) => continue,
                Err(_) => break false,
            }
        };
        assert!(closed, "the connection stays open after the 408");
    }
    drive_jobs(&app, Duration::ZERO).await;
    assert!(app.emulator.user("stalled@example.com").is_none());
    assert!(app.emulator.user("beside2@example.com").is_some());
    assert_eq!(listed_jobs(&app).await.len(), 3);
}

#[actix_rt::test]
async fn the_same_import_sent_twice_at_once_inserts_each_user_once() {
    const USERS: usize = 5;
    let app = spawn_app_configured(quiet_loop, &[]).await;
    app.emulator.update_settings(|s| s.job_seconds = 0.0);
    let users: Vec<Value> = (0..USERS)
        .map(|i| json!({"email": format!("twin{i}@example.com")}))
        .collect();
    let body = json!({"users": users});
    let other = reqwest::Client::new();
    let (first, second) = tokio::join!(
        import(&app.client, &app, &body),
        import(&other, &app, &body)
    );
    let mut ids = Vec::new();
    for response in [first, second] {
        let status = response.status().as_u16();
        let job: Value = response.json().await.unwrap_or(Value::Null);
        match status {
            202 => ids.push(job_id(&job)),
            429 => {}
            other => panic!("{other}: {job}"),
        }
    }
    assert!(!ids.is_empty(), "neither import was accepted");
    drive_jobs(&app, Duration::ZERO).await;

    let (mut inserted, mut duplicates) = (0, 0);
    for id in &ids {
        let (status, job) = app.get_json(&format!("/users/import/status/{id}")).await;
        assert_eq!(status, 200, "{job}");
        assert_eq!(job["status"], "completed", "{job}");
        inserted += job["summary"]["inserted"].as_u64().unwrap();
        let response = app.get(&format!("/users/import/status/{id}/errors")).await;
        match response.status().as_u16() {
            // Auth0's answer for a job without errors.
            204 => {}
            200 => {
                let errors: Value = response.json().await.unwrap();
                for user in errors.as_array().unwrap() {
                    assert_eq!(user["errors"][0]["code"], "DUPLICATED_USER", "{user}");
                    duplicates += 1;
                }
            }
            other => panic!("errors of {id}: {other} {:?}", response.text().await),
        }
    }
    // Each user is inserted once; the other import reports each of them as a duplicate.
    assert_eq!(inserted, USERS as u64, "{ids:?}");
    assert_eq!(duplicates, USERS * (ids.len() - 1), "{ids:?}");
    for i in 0..USERS {
        assert!(app.emulator.user(&format!("twin{i}@example.com")).is_some());
    }
}
