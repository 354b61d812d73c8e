//! Bulk user imports (SPEC §6, issue 15): the routes against the emulator's jobs, the poll loop
//! driven a round at a time (`TestApp::jobs.poll_once()`, the clock moved past each backoff), a
//! `kill -9` of a release daemon while a job is pending, and the `import` / `jobs` commands.

use std::collections::BTreeMap;
use std::time::Duration;

use auth0_client::actors::jobs::PollReport;
use auth0_emulator::seed::demo;
use serde_json::{Value, json};

use crate::testkit::{
    DaemonProcess, TestApp, assert_error_body, emulator_config, eventually, fault, release_daemon,
    spawn_app_configured,
};

pub(crate) const IMPORTS: &str = "/api/v2/jobs/users-imports";

/// The jobs loop's timer is an hour: the tests run its rounds themselves.
pub(crate) fn quiet_loop(config: &mut Value) {
    config["jobs"] = json!({"pollIntervalMs": 3_600_000, "maxPollIntervalMs": 3_600_000});
}

async fn spawn() -> TestApp {
    spawn_app_configured(quiet_loop, &[]).await
}

fn user(i: usize) -> Value {
    json!({"email": format!("imported{i}@example.com"), "email_verified": true})
}

impl TestApp {
    pub(crate) async fn import_json(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/users/import"))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn import_multipart(&self, form: reqwest::multipart::Form) -> reqwest::Response {
        self.client
            .post(self.url("/users/import"))
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    /// One round of the jobs loop, after moving the clock past any backoff. A round a submit
    /// started may be running: it ends first (the loop runs one round at a time, in order), so
    /// the clock moves after it.
    pub(crate) async fn poll_round(&self) -> PollReport {
        self.jobs.poll_once().await.expect("the jobs loop answers");
        self.clock.advance(Duration::from_secs(3_601));
        self.jobs.poll_once().await.expect("the jobs loop answers")
    }

    /// Rounds until no record is unfinished; each round waits `pause` first (the emulator's job
    /// time, when the test gives its jobs one). Returns every report.
    pub(crate) async fn drive_jobs(&self, pause: Duration) -> Vec<PollReport> {
        let mut reports = Vec::new();
        for _ in 0..200 {
            tokio::time::sleep(pause).await;
            let report = self.poll_round().await;
            let idle = report.is_idle();
            reports.push(report);
            if idle {
                return reports;
            }
        }
        panic!("the jobs did not finish: {reports:#?}");
    }

    async fn listed_jobs(&self) -> Vec<Value> {
        let (status, body) = self.get_json("/users/import/jobs").await;
        assert_eq!(status, 200, "{body}");
        body.as_array().unwrap().clone()
    }

    fn metric(&self, text: &str, name: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }
}

/// The fields of a multipart body as the emulator logged it (the `users` file included).
pub(crate) fn multipart_fields(
    request: &auth0_emulator::RecordedRequest,
) -> BTreeMap<String, String> {
    let content_type = request.header("content-type").unwrap();
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .unwrap()
        .trim_matches('"');
    let mut fields = BTreeMap::new();
    for part in request.body.split(&format!("--{boundary}")) {
        let Some((head, value)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let Some(name) = head
            .split("name=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
        else {
            continue;
        };
        fields.insert(
            name.to_owned(),
            value.strip_suffix("\r\n").unwrap_or(value).to_owned(),
        );
    }
    fields
}

#[actix_rt::test]
async fn the_json_and_multipart_forms_reach_auth0_as_its_users_imports_form() {
    let app = spawn().await;
    let users = json!([user(1), {"email": "imported2@example.com", "user_metadata": {"a": 1}}]);
    let response = app
        .import_json(&json!({"users": users, "upsert": false, "external_id": "ext-1", "send_completion_email": false}))
        .await;
    assert_eq!(response.status(), 202);
    let job: Value = response.json().await.unwrap();
    assert!(job["id"].as_str().unwrap().starts_with("job_"), "{job}");
    assert_eq!(job["type"], "users_import");
    assert_eq!(job["status"], "pending");
    assert_eq!(job["connection_id"], demo::CONNECTION_ID);
    assert_eq!(job["connection"], demo::CONNECTION);
    assert_eq!(job["external_id"], "ext-1");

    let sent = app.emulator.requests_to(IMPORTS);
    assert_eq!(sent.len(), 1);
    let fields = multipart_fields(&sent[0]);
    assert_eq!(fields["connection_id"], demo::CONNECTION_ID);
    assert_eq!(fields["upsert"], "false");
    assert_eq!(fields["external_id"], "ext-1");
    assert_eq!(fields["send_completion_email"], "false");
    assert_eq!(
        serde_json::from_str::<Value>(&fields["users"]).unwrap(),
        users
    );
    assert!(
        !fields["users"].contains(' ') && !fields["users"].contains('\n'),
        "compact JSON"
    );

    // Auth0's own multipart form, the connection named (here, its only connection).
    let form = reqwest::multipart::Form::new()
        .part(
            "users",
            reqwest::multipart::Part::bytes(json!([user(3)]).to_string().into_bytes())
                .file_name("users.json")
                .mime_str("application/json")
                .unwrap(),
        )
        .text("connection", demo::CONNECTION)
        .text("upsert", "true");
    let response = app.import_multipart(form).await;
    assert_eq!(response.status(), 202);
    let sent = app.emulator.requests_to(IMPORTS);
    let fields = multipart_fields(&sent[1]);
    assert_eq!(fields["connection_id"], demo::CONNECTION_ID);
    assert_eq!(fields["upsert"], "true");
    assert!(!fields.contains_key("external_id"));
    assert!(!fields.contains_key("send_completion_email"));

    // Both are recorded here, newest first.
    let listed = app.listed_jobs().await;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1]["id"], job["id"]);
    assert_eq!(listed[0]["type"], "users_import");
    assert_eq!(listed[0]["connection"], demo::CONNECTION);
}

#[actix_rt::test]
async fn every_refusal_comes_before_auth0_is_called() {
    let app = spawn().await;
    let multipart = |users: &str, extra: &[(&'static str, &'static str)]| {
        let mut form = reqwest::multipart::Form::new().part(
            "users",
            reqwest::multipart::Part::bytes(users.as_bytes().to_vec()).file_name("users.json"),
        );
        for (name, value) in extra {
            form = form.text(*name, *value);
        }
        form
    };
    let big = "x".repeat(512_000);
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            json!({"users": [user(1)], "connection_id": demo::CONNECTION_ID}),
            400,
            "connection_id",
        ),
        (
            json!({"users": [user(1)], "connection": "Elsewhere"}),
            400,
            "\"Elsewhere\"",
        ),
        (json!({"users": {"email": "a@b.c"}}), 400, "JSON array"),
        (json!({"users": "[]"}), 400, "JSON array"),
        (
            json!({"connection": demo::CONNECTION}),
            400,
            "`users` is required",
        ),
        (json!({"users": []}), 400, "empty"),
        (json!({"users": [user(1)], "upsert": "yes"}), 400, "upsert"),
        (json!([user(1)]), 400, "object"),
        (
            json!({"users": [user(1), {"email": "big@example.com", "name": big}]}),
            413,
            "users[1]",
        ),
    ];
    for (body, status, needle) in cases {
        let response = app.import_json(&body).await;
        assert_eq!(response.status(), status, "{needle}");
        assert_error_body(&response.json().await.unwrap(), status, needle);
    }
    let forms: Vec<(reqwest::multipart::Form, u16, &str)> = vec![
        (
            multipart(
                &json!([user(1)]).to_string(),
                &[("connection_id", demo::CONNECTION_ID)],
            ),
            400,
            "connection_id",
        ),
        (multipart("{not json", &[]), 400, "not JSON"),
        (multipart("{\"email\": \"a@b.c\"}", &[]), 400, "JSON array"),
        (
            multipart(&json!([user(1)]).to_string(), &[("upsert", "maybe")]),
            400,
            "upsert",
        ),
        (
            reqwest::multipart::Form::new().text("connection", demo::CONNECTION),
            400,
            "`users` is required",
        ),
    ];
    for (form, status, needle) in forms {
        let response = app.import_multipart(form).await;
        assert_eq!(response.status(), status, "{needle}");
        assert_error_body(&response.json().await.unwrap(), status, needle);
    }
    let response = app
        .client
        .post(app.url("/users/import"))
        .header("content-type", "text/plain")
        .body("[]")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    assert!(
        app.emulator.requests_to(IMPORTS).is_empty(),
        "nothing reached Auth0"
    );

    // No default connection configured and none named.
    let app = spawn_app_configured(
        |config| {
            quiet_loop(config);
            config["managementClient"]
                .as_object_mut()
                .unwrap()
                .remove("defaultManagementConnectionName");
        },
        &[],
    )
    .await;
    let response = app.import_json(&json!({"users": [user(1)]})).await;
    assert_eq!(response.status(), 400);
    assert_error_body(
        &response.json().await.unwrap(),
        400,
        "defaultManagementConnectionName",
    );

    // The deprecated management shape has no connection ids: 501, like no managementClient.
    let app = spawn_app_configured(
        |config| {
            quiet_loop(config);
            let management = config["managementClient"].as_object_mut().unwrap();
            management.remove("supportedConnectionsMap");
            management.remove("defaultManagementConnectionName");
            management.insert("supportedConnections".into(), json!([demo::CONNECTION]));
        },
        &[],
    )
    .await;
    let response = app.import_json(&json!({"users": [user(1)]})).await;
    assert_eq!(response.status(), 501);
    assert_error_body(
        &response.json().await.unwrap(),
        501,
        "supportedConnectionsMap",
    );
    let (status, _) = app.get_json("/users/import/jobs").await;
    assert_eq!(status, 501);
    assert!(app.emulator.requests_to(IMPORTS).is_empty());
}

#[actix_rt::test]
async fn a_job_is_polled_to_completion_with_nobody_asking_and_its_errors_are_kept() {
    let app = spawn().await;
    app.emulator.update_settings(|s| s.job_seconds = 0.0);
    let users = json!([user(1), user(2), {"email": demo::USER_EMAIL}]);
    let response = app.import_json(&json!({"users": users})).await;
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    app.drive_jobs(Duration::ZERO).await;
    assert!(app.emulator.user("imported1@example.com").is_some());
    let listed = app.listed_jobs().await;
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["status"], "completed");
    assert_eq!(
        listed[0]["summary"],
        json!({"failed": 1, "updated": 0, "inserted": 2, "total": 3})
    );

    // Auth0 forgets the job: the stored record and errors answer.
    app.emulator
        .update_settings(|s| s.job_retention_seconds = 0.0);
    let (status, job) = app.get_json(&format!("/users/import/status/{id}")).await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["status"], "completed");
    assert_eq!(job["summary"]["failed"], 1);
    assert_eq!(job["connection_id"], demo::CONNECTION_ID);
    let (status, errors) = app
        .get_json(&format!("/users/import/status/{id}/errors"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(errors[0]["user"]["email"], demo::USER_EMAIL);
    assert_eq!(errors[0]["errors"][0]["code"], "DUPLICATED_USER");
    // An id never recorded here: Auth0's 404 passes through.
    let (status, body) = app
        .get_json("/users/import/status/job_NeverRecorded01")
        .await;
    assert_eq!(status, 404, "{body}");

    let metrics = app.get("/-/metrics").await.text().await.unwrap();
    assert_eq!(
        app.metric(&metrics, "auth0_client_jobs{status=\"completed\"}"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        app.metric(&metrics, "auth0_client_jobs{status=\"pending\"}"),
        Some(0.0)
    );
}

#[actix_rt::test]
async fn auth0_failures_while_polling_do_not_lose_the_job() {
    let app = spawn().await;
    app.emulator.update_settings(|s| s.job_seconds = 0.0);
    // Auth0's job routes fail from the start: the import goes through, every poll fails.
    app.emulator.add_fault(auth0_emulator::Fault {
        method: Some("GET".into()),
        status: Some(503),
        ..fault("/api/v2/jobs/*")
    });
    let response = app.import_json(&json!({"users": [user(1)]})).await;
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..2 {
        let report = app.poll_round().await;
        assert!(
            report.failures.iter().any(|(job, _)| job == &id),
            "{report:#?}"
        );
        assert!(report.finished.is_empty());
    }
    app.emulator.clear_faults();
    app.emulator.add_fault(auth0_emulator::Fault {
        method: Some("GET".into()),
        status: Some(429),
        headers: [("retry-after".to_owned(), "1".to_owned())].into(),
        ..fault("/api/v2/jobs/*")
    });
    let report = app.poll_round().await;
    assert!(report.finished.is_empty(), "{report:#?}");
    assert!(!report.failures.is_empty(), "{report:#?}");
    let listed = app.listed_jobs().await;
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(
        listed[0]["status"], "pending",
        "still tracked, not finished"
    );

    app.emulator.clear_faults();
    app.drive_jobs(Duration::ZERO).await;
    assert_eq!(app.listed_jobs().await[0]["status"], "completed");
}

/// About `bytes` of users file: `count` users of about 1 KB each.
pub(crate) fn users_of(count: usize, prefix: &str) -> Value {
    Value::Array(
        (0..count)
            .map(|i| {
                json!({"email": format!("{prefix}{i}@example.com"), "user_metadata": {"bio": "b".repeat(1_000)}})
            })
            .collect(),
    )
}

#[actix_rt::test]
async fn a_large_import_is_split_into_parts_and_completed_within_two_active_jobs() {
    let app = spawn().await;
    app.emulator.update_settings(|s| s.job_seconds = 0.3);
    // Auth0 is busy once: the part it refuses goes back in the queue.
    app.emulator.add_fault(auth0_emulator::Fault {
        method: Some("POST".into()),
        status: Some(429),
        count: Some(1),
        body: Some(json!({"statusCode": 429, "error": "Too Many Requests", "message": "There are 2 active import users jobs, please wait until some of them are finished and try again"})),
        ..fault(IMPORTS)
    });
    let users = users_of(1_500, "bulk");
    assert!(users.to_string().len() > 1_500_000);
    let response = app.import_json(&json!({"users": users})).await;
    assert_eq!(response.status(), 202);
    let batch: Value = response.json().await.unwrap();
    let id = batch["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("batch_"), "{batch}");
    assert_eq!(batch["type"], "users_import_batch");
    assert_eq!(batch["status"], "pending");
    let parts = batch["jobs"].as_array().unwrap();
    assert!(parts.len() >= 3, "{batch}");
    assert!(
        parts
            .iter()
            .all(|p| p["status"] == "queued" && p["id"].is_null())
    );
    assert_eq!(
        parts
            .iter()
            .map(|p| p["users"].as_u64().unwrap())
            .sum::<u64>(),
        1_500
    );

    app.drive_jobs(Duration::from_millis(350)).await;
    let (status, done) = app.get_json(&format!("/users/import/status/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["summary"],
        json!({"failed": 0, "updated": 0, "inserted": 1_500, "total": 1_500})
    );
    assert!(app.emulator.user("bulk0@example.com").is_some());
    assert!(app.emulator.user("bulk1499@example.com").is_some());

    // Every file sent was within Auth0's limit, and the only 429 was the injected one: the
    // daemon never had more than 2 jobs active.
    let sent = app.emulator.requests_to(IMPORTS);
    let accepted: Vec<_> = sent.iter().filter(|r| r.status == Some(202)).collect();
    assert_eq!(accepted.len(), parts.len());
    for request in &accepted {
        assert!(multipart_fields(request)["users"].len() <= 512_000);
    }
    assert_eq!(
        sent.len(),
        parts.len() + 1,
        "one refused, each part accepted once"
    );
    assert_eq!(
        sent.iter().filter(|r| r.status == Some(429)).count(),
        1,
        "the refused part was sent again"
    );

    let (status, errors) = app
        .get_json(&format!("/users/import/status/{id}/errors"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(errors.as_array().unwrap().len(), parts.len());
    assert!(
        errors
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["errors"] == json!([]))
    );
    let listed = app.listed_jobs().await;
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["type"], "users_import_batch");
    assert_eq!(listed[0]["status"], "completed");
}

#[actix_rt::test]
async fn jobs_auth0_forgot_become_expired_and_their_batch_failed() {
    let app = spawn().await;
    // Jobs that never finish, forgotten by Auth0 as soon as they are made.
    app.emulator.update_settings(|s| {
        s.job_seconds = 1_000.0;
        s.job_retention_seconds = 0.0;
    });
    let response = app.import_json(&json!({"users": [user(1)]})).await;
    assert_eq!(response.status(), 202);
    let job = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = app
        .import_json(&json!({"users": users_of(600, "lost")}))
        .await;
    assert_eq!(response.status(), 202);
    let batch = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    app.drive_jobs(Duration::ZERO).await;
    let listed = app.listed_jobs().await;
    assert_eq!(listed[0]["id"], batch.as_str());
    assert_eq!(listed[0]["status"], "failed");
    assert_eq!(listed[1]["id"], job.as_str());
    assert_eq!(listed[1]["status"], "expired");
    let (status, body) = app.get_json(&format!("/users/import/status/{job}")).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "expired");
    let (status, body) = app.get_json(&format!("/users/import/status/{batch}")).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "failed");
    assert!(
        body["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["status"] == "expired")
    );
    let metrics = app.get("/-/metrics").await.text().await.unwrap();
    assert_eq!(
        app.metric(&metrics, "auth0_client_jobs{status=\"expired\"}"),
        Some(1.0)
    );
    assert_eq!(
        app.metric(&metrics, "auth0_client_jobs{status=\"failed\"}"),
        Some(1.0)
    );
}

#[actix_rt::test]
async fn finished_jobs_are_dropped_after_the_retention() {
    let app = spawn_app_configured(
        |config| {
            quiet_loop(config);
            config["jobs"]["retentionDays"] = json!(2);
        },
        &[],
    )
    .await;
    app.emulator.update_settings(|s| s.job_seconds = 0.0);
    let response = app.import_json(&json!({"users": [user(1)]})).await;
    assert_eq!(response.status(), 202);
    app.drive_jobs(Duration::ZERO).await;
    assert_eq!(app.listed_jobs().await.len(), 1);

    app.clock.advance(Duration::from_secs(86_400));
    let report = app.jobs.poll_once().await.unwrap();
    assert_eq!(report.deleted, 0, "kept within the retention");
    app.clock.advance(Duration::from_secs(2 * 86_400));
    let report = app.jobs.poll_once().await.unwrap();
    assert_eq!(report.deleted, 1);
    assert!(app.listed_jobs().await.is_empty());
}

#[actix_rt::test]
async fn the_listing_pages_with_its_cursor() {
    let app = spawn().await;
    // Each job completes at once, so the emulator's 2-active-jobs limit never refuses one.
    app.emulator.update_settings(|s| s.job_seconds = 0.0);
    let mut ids = Vec::new();
    for i in 0..5 {
        let response = app.import_json(&json!({"users": [user(i)]})).await;
        assert_eq!(response.status(), 202);
        ids.push(response.json::<Value>().await.unwrap()["id"].clone());
        app.poll_round().await;
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let mut url = app.url("/users/import/jobs?limit=2");
        if let Some(cursor) = &before {
            url.push_str(&format!("&before={}", urlencode(cursor)));
        }
        let page: Vec<Value> = app
            .client
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        before = Some(format!(
            "{},{}",
            last["created_at"].as_str().unwrap(),
            last["id"].as_str().unwrap()
        ));
        seen.extend(page.iter().map(|j| j["id"].clone()));
    }
    assert_eq!(seen, ids);
    for bad in ["limit=0", "limit=1001", "limit=x", "before=yesterday"] {
        let (status, body) = app.get_json(&format!("/users/import/jobs?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
}

fn urlencode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Polls `url` (a daemon process) until `done` holds, within `seconds`.
pub(crate) async fn wait_for(url: &str, seconds: u64, done: impl Fn(&Value) -> bool) -> Value {
    let client = reqwest::Client::new();
    eventually(
        &format!("{url} to get there"),
        Duration::from_secs(seconds),
        async || {
            if let Ok(response) = client.get(url).send().await
                && let Ok(body) = response.json::<Value>().await
                && done(&body)
            {
                Some(body)
            } else {
                None
            }
        },
    )
    .await
}

#[actix_rt::test]
async fn a_job_pending_at_a_kill_9_completes_after_the_restart() {
    let emulator = auth0_emulator::Emulator::start(crate::testkit::test_seed()).unwrap();
    emulator.update_settings(|s| s.job_seconds = 2.0);
    let mut config = emulator_config(&emulator);
    config["jobs"] = json!({"pollIntervalMs": 100, "maxPollIntervalMs": 200});
    config["server"]["auth0TimeoutMs"] = json!(1_000);
    let binary = release_daemon().to_str().unwrap().to_owned();
    let daemon = DaemonProcess::start(&binary, &config, &[]);
    let response = reqwest::Client::new()
        .post(daemon.url("/users/import"))
        .json(&json!({"users": [user(1), user(2)]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let daemon = daemon.kill9_and_restart(&binary, &[]);
    let listed = wait_for(&daemon.url("/users/import/jobs"), 30, |jobs| {
        jobs[0]["status"] == "completed"
    })
    .await;
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["summary"]["inserted"], 2);
    assert!(emulator.user("imported2@example.com").is_some());
    // The line is written once the record is: it may trail the listing by a moment.
    eventually(
        "a log line saying how the job ended",
        Duration::from_secs(5),
        async || {
            daemon
                .log_lines()
                .iter()
                .any(|l| l["message"] == "import finished" && l["job_id"] == id.as_str())
        },
    )
    .await;
}

/// Runs the daemon's command line with `args` and `env` (never the caller's API key); returns the
/// exit code, stdout and stderr.
pub(crate) async fn cli(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let output = tokio::process::Command::new(crate::DAEMON)
        .args(args)
        .env_remove("AUTH0_CLIENT_API_KEY")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[actix_rt::test]
async fn the_import_and_jobs_commands_follow_a_job_to_its_end() {
    let app = spawn_app_configured(
        |config| {
            quiet_loop(config);
            config["apiKeys"] =
                json!([{"key": "management-key-123", "clientType": "api", "management": true}]);
        },
        &[],
    )
    .await;
    app.emulator.update_settings(|s| s.job_seconds = 0.0);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.json");
    std::fs::write(
        &file,
        json!([user(1), {"email": demo::USER_EMAIL}]).to_string(),
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let key = [("AUTH0_CLIENT_API_KEY", "management-key-123")];

    // Without the key: refused, 1.
    let (code, _, stderr) = cli(&["import", file, "--url", &app.address, "--wait"], &[]).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("401"), "{stderr}");

    // Some users failed: 1, the summary and the error, plain lines (stdout is not a terminal).
    let (code, stdout, stderr) =
        cli(&["import", file, "--url", &app.address, "--wait"], &key).await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("submitted job_"), "{stdout}");
    assert!(stdout.contains(": completed\n"), "{stdout}");
    assert!(
        stdout.contains("completed: 1 inserted, 0 updated, 1 failed, 2 in all"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{}: DUPLICATED_USER", demo::USER_EMAIL)),
        "{stdout}"
    );
    assert!(!stdout.contains('\u{1b}'), "no terminal codes: {stdout:?}");

    // All imported: 0.
    std::fs::write(dir.path().join("new.json"), json!([user(7)]).to_string()).unwrap();
    let new = dir.path().join("new.json");
    let (code, stdout, stderr) = cli(
        &[
            "import",
            new.to_str().unwrap(),
            "--connection",
            demo::CONNECTION,
            "--url",
            &app.address,
            "--wait",
        ],
        &key,
    )
    .await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("1 inserted, 0 updated, 0 failed, 1 in all"));

    // The table of jobs, once the loop has stored their ends.
    app.poll_round().await;
    let (code, stdout, _) = cli(&["jobs", "--url", &app.address], &key).await;
    assert_eq!(code, 0);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(lines[0].starts_with("ID"), "{stdout}");
    assert!(
        lines[1].contains("completed") && lines[1].contains("1/0/0/1"),
        "{stdout}"
    );
    assert!(lines[2].contains("1/0/1/2"), "{stdout}");

    // Nobody listening: 2.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let (code, _, stderr) = cli(&["import", file, "--url", &url], &key).await;
    assert_eq!(code, 2, "{stderr}");
    let (code, _, _) = cli(&["jobs", "--url", &url], &key).await;
    assert_eq!(code, 2);
}

/// The daemon of `daemons` whose log says it took the lease of `job`.
fn lease_holder(daemons: &[&DaemonProcess], job: &str) -> Option<usize> {
    daemons.iter().position(|daemon| {
        daemon.log_lines().iter().any(|line| {
            line["job_id"] == job
                && line["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("import job lease taken"))
        })
    })
}

#[actix_rt::test]
async fn with_two_daemons_on_one_redis_the_other_takes_a_job_over_when_its_poller_dies() {
    let redis = auth0_client::store::redis::testing::RedisServer::start();
    let emulator = auth0_emulator::Emulator::start(crate::testkit::test_seed()).unwrap();
    emulator.update_settings(|s| s.job_seconds = 5.0);
    let mut config = emulator_config(&emulator);
    // A lease lasts maxPollIntervalMs + 3 × auth0TimeoutMs: 3.2 s here.
    config["jobs"] = json!({"pollIntervalMs": 100, "maxPollIntervalMs": 200});
    config["server"]["auth0TimeoutMs"] = json!(1_000);
    let hosts = redis.host_port();
    let env = [("REDIS_HOSTS", hosts.as_str())];
    let first = DaemonProcess::start(crate::DAEMON, &config, &env);
    let second = DaemonProcess::start(crate::DAEMON, &config, &env);
    let response = reqwest::Client::new()
        .post(first.url("/users/import"))
        .json(&json!({"users": [user(1)]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let holder = eventually(
        &format!("a daemon to poll {id}"),
        Duration::from_secs(10),
        async || lease_holder(&[&first, &second], &id),
    )
    .await;
    let (mut poller, other) = if holder == 0 {
        (first, second)
    } else {
        (second, first)
    };
    assert_eq!(
        lease_holder(&[&other], &id),
        None,
        "one daemon polls a job at a time"
    );
    // Both daemons list it, from the one store.
    let listed: Value = reqwest::get(other.url("/users/import/jobs"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["id"], id.as_str());
    assert_ne!(
        listed[0]["status"], "completed",
        "still pending at the kill"
    );

    poller.signal("KILL");
    poller.wait_exit(10);
    let listed = wait_for(&other.url("/users/import/jobs"), 30, |jobs| {
        jobs[0]["status"] == "completed"
    })
    .await;
    assert_eq!(listed[0]["summary"]["inserted"], 1);
    assert_eq!(
        lease_holder(&[&other], &id),
        Some(0),
        "the survivor took the job over"
    );
    assert!(emulator.user("imported1@example.com").is_some());
}

#[actix_rt::test]
async fn import_wait_follows_a_batch_part_by_part() {
    // The loop on its real timer this time: the command follows what the daemon does alone.
    let app = spawn_app_configured(
        |config| config["jobs"] = json!({"pollIntervalMs": 100, "maxPollIntervalMs": 200}),
        &[],
    )
    .await;
    app.emulator.update_settings(|s| s.job_seconds = 0.2);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("many.json");
    std::fs::write(&file, users_of(700, "cli").to_string()).unwrap();
    let (code, stdout, stderr) = cli(
        &[
            "import",
            file.to_str().unwrap(),
            "--url",
            &app.address,
            "--wait",
        ],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("submitted batch_"), "{stdout}");
    assert!(stdout.contains(", 2 parts)"), "{stdout}");
    for part in ["part 1/2", "part 2/2"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.contains(part) && l.ends_with(": completed")),
            "{part}: {stdout}"
        );
    }
    assert!(
        stdout.contains("completed: 700 inserted, 0 updated, 0 failed, 700 in all"),
        "{stdout}"
    );
}

#[actix_rt::test]
async fn auth0s_429_on_a_whole_import_passes_through_with_retry_after() {
    let app = spawn().await;
    let busy = json!({"statusCode": 429, "error": "Too Many Requests", "message": "There are 2 active import users jobs, please wait until some of them are finished and try again"});
    app.emulator.add_fault(auth0_emulator::Fault {
        method: Some("POST".into()),
        status: Some(429),
        count: Some(1),
        body: Some(busy.clone()),
        headers: [("retry-after".to_owned(), "7".to_owned())].into(),
        ..fault(IMPORTS)
    });
    let response = app.import_json(&json!({"users": [user(1)]})).await;
    assert_eq!(response.status(), 429);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("7")
    );
    assert_eq!(response.json::<Value>().await.unwrap(), busy);
    assert!(app.listed_jobs().await.is_empty(), "nothing was recorded");
    // Auth0's limit of active import jobs is no rate limit: the other management routes go on,
    // and so does the next import once a job has finished.
    let (status, users) = app.get_json("/users").await;
    assert_eq!(status, 200, "{users}");
    let response = app.import_json(&json!({"users": [user(2)]})).await;
    assert_eq!(response.status(), 202);
}

#[actix_rt::test]
async fn a_part_whose_answer_was_lost_is_sent_again_and_auth0_reports_the_duplicates() {
    let app = spawn_app_configured(
        |config| {
            quiet_loop(config);
            config["server"]["auth0TimeoutMs"] = json!(300);
        },
        &[],
    )
    .await;
    app.emulator.update_settings(|s| s.job_seconds = 0.0);
    // Auth0 takes the first part but answers after the daemon gave up waiting.
    app.emulator.add_fault(auth0_emulator::Fault {
        method: Some("POST".into()),
        delay_ms: 1_000,
        count: Some(1),
        ..fault(IMPORTS)
    });
    let response = app
        .import_json(&json!({"users": users_of(600, "twice")}))
        .await;
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.drive_jobs(Duration::from_millis(1_100)).await;
    let (_, batch) = app.get_json(&format!("/users/import/status/{id}")).await;
    assert_eq!(batch["status"], "completed", "{batch}");
    let sent = app.emulator.requests_to(IMPORTS);
    assert_eq!(sent.len(), 3, "the first part twice, the second once");
    let (_, errors) = app
        .get_json(&format!("/users/import/status/{id}/errors"))
        .await;
    let codes: Vec<&str> = errors
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|part| part["errors"].as_array().unwrap())
        .flat_map(|user| user["errors"].as_array().unwrap())
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert!(!codes.is_empty(), "{errors}");
    assert!(codes.iter().all(|c| *c == "DUPLICATED_USER"), "{codes:?}");
    // Every user is in the tenant once; the resent part counts its users as failed duplicates.
    let first = batch["jobs"][0]["users"].as_u64().unwrap();
    assert_eq!(codes.len() as u64, first);
    assert_eq!(batch["summary"]["failed"].as_u64(), Some(first), "{batch}");
    assert!(app.emulator.user("twice0@example.com").is_some());
    assert!(app.emulator.user("twice599@example.com").is_some());
}
