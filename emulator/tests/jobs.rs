//! HTTP tests of the emulator's import jobs (`/api/v2/jobs`, wire reference §3): the multipart
//! request as the SDKs send it, the 202 body, the lifecycle over the control API's job time, per-user
//! errors, the limits (2 active jobs, 512000 bytes), retention, and the documented errors word for word.
#![allow(clippy::unwrap_used)]

use auth0_emulator::{Emulator, EmulatorHandle, Seed, SeedClient, SeedConnection, SeedUser};
use reqwest::multipart::{Form, Part};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const DB: &str = "Username-Password-Authentication";
const DB_ID: &str = "con_TestDatabase0001";

fn seed() -> Seed {
    Seed {
        clients: vec![SeedClient {
            client_id: "m2m".into(),
            client_secret: Some("m2m-secret".into()),
            ..SeedClient::default()
        }],
        connections: vec![SeedConnection {
            name: DB.into(),
            id: DB_ID.into(),
        }],
        users: vec![SeedUser {
            email: "existing@example.com".into(),
            password: "existing-password".into(),
            connection: DB.into(),
            user_id: Some("existing".into()),
            app_metadata: json!({"a": 1, "b": 2}).as_object().cloned(),
            ..SeedUser::default()
        }],
        job_seconds: Some(0.6),
        ..Seed::default()
    }
}

struct TestTenant {
    emulator: EmulatorHandle,
    http: Client,
    token: String,
}

impl TestTenant {
    fn start() -> Self {
        let emulator = Emulator::start(seed()).unwrap();
        let token = emulator.management_token("m2m");
        TestTenant {
            emulator,
            http: Client::new(),
            token,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.emulator.base_url())
    }

    /// `POST /api/v2/jobs/users-imports` as auth0-python 4.x sends it: text parts, booleans as
    /// `"true"`/`"false"`, and a file part without a content type.
    async fn import(
        &self,
        users: &[u8],
        connection_id: &str,
        upsert: bool,
        external_id: Option<&str>,
    ) -> Response {
        let mut form = Form::new()
            .text("connection_id", connection_id.to_string())
            .text("upsert", upsert.to_string())
            .text("send_completion_email", "false")
            .part("users", Part::bytes(users.to_vec()).file_name("users.json"));
        if let Some(external_id) = external_id {
            form = form.text("external_id", external_id.to_string());
        }
        self.send_form(form).await
    }

    async fn send_form(&self, form: Form) -> Response {
        self.http
            .post(self.url("/api/v2/jobs/users-imports"))
            .bearer_auth(&self.token)
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    async fn import_json(&self, users: Value) -> Value {
        let response = self
            .import(users.to_string().as_bytes(), DB_ID, false, None)
            .await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        response.json().await.unwrap()
    }

    async fn get(&self, path: &str) -> Response {
        self.http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
    }

    async fn job(&self, id: &str) -> Value {
        let response = self.get(&format!("/api/v2/jobs/{id}")).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// Polls until the job is final; returns every status seen and the final body.
    async fn wait(&self, id: &str) -> (Vec<String>, Value) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        loop {
            let job = self.job(id).await;
            let status = job["status"].as_str().unwrap().to_string();
            if seen.last() != Some(&status) {
                seen.push(status.clone());
            }
            if status == "completed" || status == "failed" {
                return (seen, job);
            }
            assert!(Instant::now() < deadline, "job {id} is still {status}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn read(response: Response) -> (StatusCode, String) {
    let status = response.status();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn an_import_is_accepted_with_auth0s_202_body() {
    let tenant = TestTenant::start();
    let response = tenant
        .import(
            br#"[{"email": "new@example.com"}]"#,
            DB_ID,
            false,
            Some("batch-7"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    for name in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ] {
        assert!(response.headers().contains_key(name), "{name}");
    }
    let text = response.text().await.unwrap();
    let prefix = format!(
        r#"{{"type":"users_import","status":"pending","connection_id":"{DB_ID}","external_id":"batch-7","connection":"{DB}","created_at":""#
    );
    assert!(text.starts_with(&prefix), "{text}");
    let job: Value = serde_json::from_str(&text).unwrap();
    let id = job["id"].as_str().unwrap();
    assert!(
        id.len() == 20
            && id.starts_with("job_")
            && id[4..].chars().all(|c| c.is_ascii_alphanumeric()),
        "{id}"
    );
    let created_at = job["created_at"].as_str().unwrap();
    assert_eq!(created_at.len(), 24, "{created_at}");
    assert!(created_at.ends_with('Z'));
    assert_eq!(job.as_object().unwrap().len(), 7, "{job}");
}

#[tokio::test]
async fn a_job_goes_pending_processing_completed_and_imports_for_real() {
    let tenant = TestTenant::start();
    tenant.emulator.update_settings(|s| s.job_seconds = 1.0);
    let job = tenant
        .import_json(json!([
            {"email": "dave@example.com", "user_id": "dave", "email_verified": true,
             "app_metadata": {"groups": ["imported"]}, "given_name": "Dave"},
            {"email": "EXISTING@example.com"},
            {"email": "not-an-email"},
            {"email": "dave@example.com"},
            {"email": "erin@example.com", "password_hash": "$2b$10$abcdefghijklmnopqrstuv", "custom_password_hash": {"algorithm": "md5", "hash": {"value": "x"}}}
        ]))
        .await;
    let id = job["id"].as_str().unwrap();
    let (seen, done) = tenant.wait(id).await;
    assert_eq!(seen, ["pending", "processing", "completed"]);
    assert_eq!(
        done["summary"],
        json!({"failed": 4, "updated": 0, "inserted": 1, "total": 5})
    );
    assert!(done.get("percentage_done").is_none());

    let response = tenant.get(&format!("/api/v2/jobs/{id}/errors")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let errors: Value = response.json().await.unwrap();
    assert_eq!(
        errors,
        json!([
            {"user": {"email": "EXISTING@example.com"},
             "errors": [{"code": "DUPLICATED_USER", "message": "The user already exist and upsert parameter is false"}]},
            {"user": {"email": "not-an-email"},
             "errors": [{"code": "FORMAT", "message": "Error in email property - Object didn't pass validation for format email: not-an-email", "path": "email"}]},
            {"user": {"email": "dave@example.com"},
             "errors": [{"code": "DUPLICATED_USER", "message": "A user with this email was already provided."}]},
            {"user": {"email": "erin@example.com", "password_hash": "*****", "custom_password_hash": {"algorithm": "md5", "hash": {"value": "*****"}}},
             "errors": [{"code": "NOT_PASSED", "message": "Error in custom_password_hash property - Data matches schema from 'not'", "path": "custom_password_hash"}]}
        ])
    );

    let response = tenant.get("/api/v2/users/auth0%7Cdave").await;
    assert_eq!(response.status(), StatusCode::OK);
    let dave: Value = response.json().await.unwrap();
    assert_eq!(dave["email_verified"], true);
    assert_eq!(dave["given_name"], "Dave");
    assert_eq!(dave["app_metadata"], json!({"groups": ["imported"]}));
    assert_eq!(
        dave["identities"][0],
        json!({"connection": DB, "user_id": "dave", "provider": "auth0", "isSocial": false})
    );
    let search = tenant
        .get("/api/v2/users?q=app_metadata.groups%3A%22imported%22&search_engine=v3")
        .await;
    let found: Value = search.json().await.unwrap();
    assert_eq!(found.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_processing_body_has_progress() {
    let tenant = TestTenant::start();
    tenant.emulator.update_settings(|s| s.job_seconds = 4.0);
    let job = tenant
        .import_json(json!([{"email": "p@example.com"}]))
        .await;
    let id = job["id"].as_str().unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let processing = tenant.job(id).await;
    assert_eq!(processing["status"], "processing");
    let done = processing["percentage_done"].as_u64().unwrap();
    assert!((10..=60).contains(&done), "{processing}");
    assert!(
        (1..=2).contains(&processing["time_left_seconds"].as_u64().unwrap()),
        "{processing}"
    );
    // No errors yet: 204.
    let response = tenant.get(&format!("/api/v2/jobs/{id}/errors")).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn imported_users_appear_on_time_without_polling() {
    let tenant = TestTenant::start();
    tenant
        .import_json(json!([{"email": "quiet@example.com"}]))
        .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Read through the handle, not the Management API: the job finished on its own.
    assert!(tenant.emulator.user("quiet@example.com").is_some());
}

#[tokio::test]
async fn a_clean_job_has_no_errors_and_upsert_overwrites_metadata() {
    let tenant = TestTenant::start();
    let response = tenant
        .import(
            br#"[{"email": "existing@example.com", "app_metadata": {"c": 3}, "nickname": "ex"}, {"email": "fresh@example.com"}]"#,
            DB_ID,
            true,
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let job: Value = response.json().await.unwrap();
    let id = job["id"].as_str().unwrap();
    let (_, done) = tenant.wait(id).await;
    assert_eq!(
        done["summary"],
        json!({"failed": 0, "updated": 1, "inserted": 1, "total": 2})
    );
    let (status, body) = read(tenant.get(&format!("/api/v2/jobs/{id}/errors")).await).await;
    assert_eq!((status, body.as_str()), (StatusCode::NO_CONTENT, ""));
    let existing: Value = tenant
        .get("/api/v2/users/auth0%7Cexisting")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        existing["app_metadata"],
        json!({"c": 3}),
        "upserts replace metadata"
    );
    assert_eq!(existing["nickname"], "ex");
}

#[tokio::test]
async fn an_unreadable_file_fails_the_job_and_errors_return_the_job() {
    let tenant = TestTenant::start();
    let response = tenant.import(b"[{\"email\": ", DB_ID, false, None).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let job: Value = response.json().await.unwrap();
    let id = job["id"].as_str().unwrap();
    let (_, done) = tenant.wait(id).await;
    assert_eq!(done["status"], "failed");
    let errors: Value = tenant
        .get(&format!("/api/v2/jobs/{id}/errors"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(errors["status"], "failed");
    assert_eq!(errors["type"], "users_import");
    assert_eq!(errors["id"], id);
    assert_eq!(errors["connection_id"], DB_ID);
    assert!(errors["status_details"].is_string());
}

#[tokio::test]
async fn the_fail_jobs_setting_fails_whole_jobs() {
    let tenant = TestTenant::start();
    tenant.emulator.update_settings(|s| s.fail_jobs = true);
    let job = tenant
        .import_json(json!([{"email": "never@example.com"}]))
        .await;
    let (_, done) = tenant.wait(job["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "failed");
    assert_eq!(
        done["summary"],
        json!({"failed": 1, "updated": 0, "inserted": 0, "total": 1})
    );
    assert!(tenant.emulator.user("never@example.com").is_none());
}

#[tokio::test]
async fn jobs_are_forgotten_after_the_retention_time() {
    let tenant = TestTenant::start();
    tenant.emulator.update_settings(|s| {
        s.job_seconds = 0.0;
        s.job_retention_seconds = 1.0;
    });
    let job = tenant
        .import_json(json!([{"email": "gone@example.com"}]))
        .await;
    let id = job["id"].as_str().unwrap();
    assert_eq!(tenant.job(id).await["status"], "completed");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = read(tenant.get(&format!("/api/v2/jobs/{id}")).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        r#"{"statusCode":404,"error":"Not Found","message":"Job not found.","errorCode":"inexistent_job"}"#
    );
    let (status, body) = read(tenant.get(&format!("/api/v2/jobs/{id}/errors")).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        r#"{"statusCode":404,"error":"Not Found","message":"The job does not exist","errorCode":"inexistent_job"}"#
    );
    // The users it imported stay.
    assert!(tenant.emulator.user("gone@example.com").is_some());
}

#[tokio::test]
async fn a_third_active_job_is_a_429_with_rate_limit_headers() {
    let tenant = TestTenant::start();
    tenant.emulator.update_settings(|s| s.job_seconds = 30.0);
    for i in 0..2 {
        tenant
            .import_json(json!([{"email": format!("j{i}@example.com")}]))
            .await;
    }
    let response = tenant
        .import(br#"[{"email": "third@example.com"}]"#, DB_ID, false, None)
        .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    for name in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ] {
        let value = response
            .headers()
            .get(name)
            .unwrap_or_else(|| panic!("no {name}"));
        assert!(value.to_str().unwrap().parse::<u64>().is_ok());
    }
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"statusCode":429,"error":"Too Many Requests","message":"There are 2 active import users jobs, please wait until some of them are finished and try again"}"#
    );
    // Once one finishes, a new job is accepted.
    tenant.emulator.update_settings(|s| s.job_seconds = 0.0);
    let response = tenant
        .import(br#"[{"email": "third@example.com"}]"#, DB_ID, false, None)
        .await;
    assert_eq!(
        response.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "jobs keep the time they were created with"
    );
}

#[tokio::test]
async fn go_auth0_style_multipart_is_accepted_too() {
    // go-auth0 sends every part, an empty external_id, and the file as application/json.
    let tenant = TestTenant::start();
    let form = Form::new()
        .text("connection_id", DB_ID)
        .text("upsert", "false")
        .text("external_id", "")
        .text("send_completion_email", "true")
        .part(
            "users",
            Part::bytes(br#"[{"email": "go@example.com"}]"#.to_vec())
                .file_name("users.json")
                .mime_str("application/json")
                .unwrap(),
        );
    let response = tenant.send_form(form).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let job: Value = response.json().await.unwrap();
    assert!(
        job.get("external_id").is_none(),
        "an empty external_id is not echoed"
    );
}

/// The documented errors of `POST /jobs/users-imports`, word for word (wire reference §3.1).
#[tokio::test]
async fn documented_errors_word_for_word() {
    let tenant = TestTenant::start();
    let users = br#"[{"email": "x@example.com"}]"#;
    let cases: Vec<(Form, u16, &str)> = vec![
        (
            Form::new()
                .text("connection_id", "con_short")
                .part("users", Part::bytes(users.to_vec()).file_name("u.json")),
            400,
            r#"{"statusCode":400,"error":"Bad Request","message":"Payload validation error: 'String does not match pattern ^con_[A-Za-z0-9]{16}$' on property connection_id","errorCode":"invalid_body"}"#,
        ),
        (
            Form::new().text("connection_id", DB_ID),
            400,
            r#"{"statusCode":400,"error":"Bad Request","message":"Must provide 'users' file as multipart part.","errorCode":"invalid_body"}"#,
        ),
        (
            Form::new()
                .text("connection_id", DB_ID)
                .part("users", Part::bytes(Vec::new()).file_name("u.json")),
            400,
            r#"{"statusCode":400,"error":"Bad Request","message":"Users file must not be empty.","errorCode":"invalid_body"}"#,
        ),
        (
            Form::new().part("users", Part::bytes(users.to_vec()).file_name("u.json")),
            400,
            r#"{"statusCode":400,"error":"Bad Request","message":"Must provide 'connection_id' as multipart part.","errorCode":"invalid_body"}"#,
        ),
        (
            Form::new()
                .text("connection_id", "con_0000000000000000")
                .part("users", Part::bytes(users.to_vec()).file_name("u.json")),
            400,
            r#"{"statusCode":400,"error":"Bad Request","message":"The connection does not exist.","errorCode":"inexistent_connection"}"#,
        ),
        (
            Form::new().text("connection_id", DB_ID).part(
                "users",
                Part::bytes(vec![b' '; 512_001]).file_name("u.json"),
            ),
            413,
            r#"{"statusCode":413,"error":"Payload Too Large","message":"Payload content length greater than maximum allowed: 512000."}"#,
        ),
    ];
    for (form, status, body) in cases {
        let response = tenant.send_form(form).await;
        assert!(response.headers().contains_key("x-ratelimit-reset"));
        assert_eq!(
            read(response).await,
            (StatusCode::from_u16(status).unwrap(), body.to_string())
        );
    }
    // Exactly 512000 bytes is allowed.
    let mut file = br#"[{"email": "edge@example.com"}]"#.to_vec();
    file.resize(512_000, b' ');
    assert_eq!(
        tenant.import(&file, DB_ID, false, None).await.status(),
        StatusCode::ACCEPTED
    );

    let response = tenant
        .http
        .post(tenant.url("/api/v2/jobs/users-imports"))
        .bearer_auth(&tenant.token)
        .json(&json!({"users": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        read(response).await,
        (
            StatusCode::BAD_REQUEST,
            r#"{"statusCode":400,"error":"Bad Request","message":"Payload validation error: 'Invalid multipart payload format'.","errorCode":"invalid_body"}"#.to_string()
        )
    );

    let response = tenant.get("/api/v2/jobs/job_0000000000000000").await;
    assert_eq!(
        read(response).await,
        (
            StatusCode::NOT_FOUND,
            r#"{"statusCode":404,"error":"Not Found","message":"Job not found.","errorCode":"inexistent_job"}"#.to_string()
        )
    );
    let response = tenant
        .http
        .get(tenant.url("/api/v2/jobs/job_0000000000000000"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}
