//! The control API: faults, the 429 mode, the request log, settings, key rotation, users and the seed;
//! plus `/oauth/revoke`, `/dbconnections/change_password` and the binary.

use std::{io::BufRead as _, time::Instant};

use auth0_emulator::{Emulator, Seed};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{DB, Tenant, claims, header, json_of};

#[tokio::test]
async fn faults_answer_delay_count_and_drop() {
    let tenant = Tenant::start();
    let fault = |body: Value| {
        let request = tenant
            .http
            .post(tenant.url("/__emulator/faults"))
            .json(&body);
        async move { json_of(request.send().await.unwrap()).await }
    };
    let (status, created) = fault(
        json!({"route": "/oauth/token", "method": "POST", "status": 503,
        "body": {"error": "temporarily_unavailable", "error_description": "down"}, "count": 2,
        "headers": {"Retry-After": "7"}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["id"], 1);
    for _ in 0..2 {
        let response = tenant
            .http
            .post(tenant.url("/oauth/token"))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["retry-after"], "7");
        assert_eq!(
            response.json::<Value>().await.unwrap()["error_description"],
            "down"
        );
    }
    // Used up: the handler answers again.
    let (status, _) = tenant.token(json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A delay without a status delays the real answer.
    fault(json!({"route": "/.well-known/jwks.json", "delayMs": 300, "count": 1})).await;
    let started = Instant::now();
    let response = tenant
        .http
        .get(tenant.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(started.elapsed().as_millis() >= 300);

    // A prefix route applies to the Management API too, with a Management-shaped default body.
    fault(json!({"route": "/api/v2/users*", "status": 500})).await;
    let (status, body) = json_of(
        tenant
            .http
            .get(tenant.url("/api/v2/users/auth0%7C1"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        body,
        json!({"statusCode": 500, "error": "Internal Server Error", "message": "Internal Server Error"})
    );
    let faults: Value = tenant
        .http
        .get(tenant.url("/__emulator/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The counted faults are used up and gone; the open-ended one stays.
    assert_eq!(faults.as_array().unwrap().len(), 1);
    assert_eq!(faults[0]["hits"], 1);

    // A dropped connection is a network error for the client.
    fault(json!({"route": "/userinfo", "dropConnection": true, "count": 1})).await;
    let dropped = async {
        tenant
            .http
            .get(tenant.url("/userinfo"))
            .send()
            .await?
            .text()
            .await
    }
    .await;
    assert!(dropped.is_err(), "{dropped:?}");

    let (status, body) = json_of(
        tenant
            .http
            .delete(tenant.url("/__emulator/faults"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["removed"].as_u64()),
        (StatusCode::OK, Some(1))
    );
    let (status, _) = fault(json!({"route": "oauth/token", "status": 500})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = fault(json!({"route": "/oauth/token"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_429_mode_counts_down_then_limits_until_the_reset() {
    let tenant = Tenant::start();
    let (status, mode) = json_of(
        tenant
            .http
            .put(tenant.url("/__emulator/rate-limit"))
            .json(&json!({"routes": ["/api/v2/*"], "resetInSeconds": 2, "remaining": 1, "retryAfter": true}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let reset = mode["resetAt"].as_i64().unwrap();

    // Other routes are not limited and announce the usual headers.
    let jwks = tenant
        .http
        .get(tenant.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(jwks.status(), StatusCode::OK);
    assert_eq!(jwks.headers()["x-ratelimit-limit"], "50");

    let first = tenant
        .http
        .get(tenant.url("/api/v2/users"))
        .send()
        .await
        .unwrap();
    assert_ne!(first.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(first.headers()["x-ratelimit-remaining"], "0");
    assert_eq!(
        first.headers()["x-ratelimit-reset"],
        reset.to_string().as_str()
    );
    let limited = tenant
        .http
        .get(tenant.url("/api/v2/users"))
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        limited.headers()["x-ratelimit-reset"],
        reset.to_string().as_str()
    );
    let retry_after: i64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after));

    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let after = tenant
        .http
        .get(tenant.url("/api/v2/users"))
        .send()
        .await
        .unwrap();
    assert_ne!(after.status(), StatusCode::TOO_MANY_REQUESTS);
    let (_, mode) = json_of(
        tenant
            .http
            .get(tenant.url("/__emulator/rate-limit"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(mode, Value::Null);
}

#[tokio::test]
async fn the_request_log_records_what_was_sent() {
    let tenant = Tenant::start();
    tenant
        .http
        .post(tenant.url("/oauth/token?x=1"))
        .header("auth0-forwarded-for", "203.0.113.9")
        .basic_auth("web", Some("web-secret"))
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "alice-pw"),
        ])
        .send()
        .await
        .unwrap();
    tenant
        .http
        .post(tenant.url("/oauth/revoke"))
        .json(&json!({"client_id": "spa", "token": null}))
        .send()
        .await
        .unwrap();
    tenant
        .http
        .get(tenant.url("/__emulator/users"))
        .send()
        .await
        .unwrap();

    let log = tenant.emulator.requests();
    assert_eq!(log.len(), 2, "control calls are not logged");
    let token = &log[0];
    assert_eq!(
        (
            token.method.as_str(),
            token.path.as_str(),
            token.query.as_str()
        ),
        ("POST", "/oauth/token", "x=1")
    );
    assert_eq!(token.header("Auth0-Forwarded-For"), Some("203.0.113.9"));
    assert!(token.header("authorization").unwrap().starts_with("Basic "));
    assert_eq!(token.param("grant_type").as_deref(), Some("password"));
    assert_eq!(
        token.body,
        "grant_type=password&username=alice&password=alice-pw"
    );
    assert_eq!(token.status, Some(200));
    assert_eq!(log[1].json.as_ref().unwrap()["token"], Value::Null);
    assert_eq!(log[1].param("token"), None);
    assert_eq!(log[1].status, Some(400));

    let (_, filtered) = json_of(
        tenant
            .http
            .get(tenant.url("/__emulator/requests?path=/oauth/revoke"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(filtered.as_array().unwrap().len(), 1);
    assert_eq!(filtered[0]["json"]["client_id"], "spa");
    let (_, since) = json_of(
        tenant
            .http
            .get(tenant.url(&format!("/__emulator/requests?since={}", log[0].seq)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(since[0]["path"], "/oauth/revoke");
    assert_eq!(tenant.emulator.requests_to("/oauth/*").len(), 2);

    // The form fields of the logged password grant, and the end user's IP recorded on the user.
    assert_eq!(
        tenant.emulator.user("alice").unwrap()["last_ip"],
        "203.0.113.9"
    );
    tenant
        .http
        .delete(tenant.url("/__emulator/requests"))
        .send()
        .await
        .unwrap();
    assert!(tenant.emulator.requests().is_empty());
}

#[tokio::test]
async fn settings_change_lifetimes_and_refuse_unknown_keys() {
    let tenant = Tenant::start();
    let patch = |body: Value| {
        let request = tenant
            .http
            .patch(tenant.url("/__emulator/settings"))
            .json(&body);
        async move { json_of(request.send().await.unwrap()).await }
    };
    let (status, settings) =
        patch(json!({"accessTokenSeconds": 2, "idTokenSeconds": 3, "jobSeconds": 0.25})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            settings["accessTokenSeconds"].as_u64(),
            settings["managementTokenSeconds"].as_u64()
        ),
        (Some(2), Some(86400))
    );
    assert_eq!(tenant.emulator.settings().job_seconds, 0.25);
    let body = tenant.login("alice@example.com", "alice-pw").await;
    assert_eq!(body["expires_in"], 2);
    let id = claims(body["id_token"].as_str().unwrap());
    assert_eq!(id["exp"].as_i64().unwrap() - id["iat"].as_i64().unwrap(), 3);
    assert_eq!(
        patch(json!({"accessTokenLifetime": 2})).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        patch(json!({"accessTokenSeconds": -1})).await.0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn rotating_the_key_changes_the_kid_of_new_tokens_only_on_this_instance() {
    let tenant = Tenant::start();
    let other = Emulator::start(Seed::demo()).unwrap();
    let other_kid = other.current_kid();
    let before = tenant.login("alice@example.com", "alice-pw").await;
    let old_kid = tenant.emulator.current_kid();
    assert_ne!(old_kid, other_kid, "instances have their own keys");

    let (status, rotated) = json_of(
        tenant
            .http
            .post(tenant.url("/__emulator/keys/rotate"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rotated["previous"], old_kid.as_str());
    let new_kid = rotated["current"].as_str().unwrap().to_string();
    assert_ne!(new_kid, old_kid);
    assert_eq!(rotated["published"], json!([new_kid, old_kid]));
    assert_eq!(
        other.current_kid(),
        other_kid,
        "rotating one instance leaves the other alone"
    );

    let after = tenant.login("alice@example.com", "alice-pw").await;
    assert_eq!(
        header(after["id_token"].as_str().unwrap())["kid"],
        new_kid.as_str()
    );
    let jwks: Value = tenant
        .http
        .get(tenant.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    // Tokens signed before still verify while the old key is published...
    assert!(
        tenant
            .emulator
            .tenant()
            .verify(before["id_token"].as_str().unwrap())
            .is_ok()
    );
    // ...and no longer once it is not.
    let (_, rotated) = json_of(
        tenant
            .http
            .post(tenant.url("/__emulator/keys/rotate"))
            .json(&json!({"keepPrevious": false}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(rotated["published"].as_array().unwrap().len(), 1);
    assert!(
        tenant
            .emulator
            .tenant()
            .verify(before["id_token"].as_str().unwrap())
            .is_err()
    );
}

#[tokio::test]
async fn users_can_be_seeded_added_blocked_and_listed() {
    let tenant = Tenant::start();
    let (status, users) = json_of(
        tenant
            .http
            .get(tenant.url("/__emulator/users"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(users.as_array().unwrap().len(), 3);

    let (status, dave) = json_of(
        tenant
            .http
            .post(tenant.url("/__emulator/users"))
            .json(&json!({"email": "dave@example.com", "password": "dave-pw", "connection": DB}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let dave_id = dave["user_id"].as_str().unwrap();
    assert!(
        dave_id.starts_with("auth0|") && dave_id.len() == 30,
        "{dave_id}"
    );
    assert_eq!(dave["identities"][0]["provider"], "auth0");
    tenant.login("dave@example.com", "dave-pw").await;

    let encoded = dave_id.replace('|', "%7C");
    let (status, blocked) = json_of(
        tenant
            .http
            .post(tenant.url(&format!("/__emulator/users/{encoded}/block")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, blocked["blocked"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    let (status, _) = tenant
        .token(
            json!({"grant_type": "password", "client_id": "web", "client_secret": "web-secret",
            "username": "dave@example.com", "password": "dave-pw"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, unblocked) = json_of(
        tenant
            .http
            .post(tenant.url("/__emulator/users/dave@example.com/unblock"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(unblocked["blocked"], false);
    let (status, _) = json_of(
        tenant
            .http
            .get(tenant.url("/__emulator/users/nobody"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A whole new seed replaces the tenant.
    let response = tenant
        .http
        .post(tenant.url("/__emulator/seed"))
        .json(&Seed::demo())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(tenant.emulator.user("alice@example.com").is_none());
    let response = tenant
        .http
        .post(tenant.url("/__emulator/seed"))
        .json(&json!({"clients": [], "connectionz": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn revocation_ends_the_family_and_never_leaks() {
    let tenant = Tenant::start();
    let token = tenant.login("alice@example.com", "alice-pw").await["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let revoke = |body: Value| {
        let request = tenant.http.post(tenant.url("/oauth/revoke")).json(&body);
        async move { request.send().await.unwrap() }
    };
    // Another client's attempt is answered 200 and changes nothing.
    let response =
        revoke(json!({"client_id": "plain", "client_secret": "plain-secret", "token": token}))
            .await;
    assert_eq!(response.status(), StatusCode::OK);
    let (status, body) = tenant.refresh("web", Some("web-secret"), &token).await;
    assert_eq!(status, StatusCode::OK);
    let token = body["refresh_token"].as_str().unwrap().to_string();

    let response =
        revoke(json!({"client_id": "web", "client_secret": "web-secret", "token": token})).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "");
    let (status, _) = tenant.refresh("web", Some("web-secret"), &token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Unknown and already revoked tokens: 200 too. Form bodies and Basic auth work.
    let response = tenant
        .http
        .post(tenant.url("/oauth/revoke"))
        .basic_auth("web", Some("web-secret"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // A public client revokes with its client_id alone.
    let (_, body) = tenant
        .token(json!({"grant_type": "password", "client_id": "spa", "username": "alice", "password": "alice-pw",
            "scope": "openid offline_access"}))
        .await;
    let spa_token = body["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(
        revoke(json!({"client_id": "spa", "token": spa_token}))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        tenant.refresh("spa", None, &spa_token).await.0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn change_password_records_an_email_for_known_users_only() {
    let tenant = Tenant::start();
    for email in ["alice@example.com", "nobody@example.com"] {
        let response = tenant
            .http
            .post(tenant.url("/dbconnections/change_password"))
            .json(&json!({"client_id": "web", "email": email, "connection": DB}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().contains_key("x-ratelimit-reset"));
        assert_eq!(
            response.text().await.unwrap(),
            "We've just sent you an email to reset your password."
        );
    }
    let (_, emails) = json_of(
        tenant
            .http
            .get(tenant.url("/__emulator/emails"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(emails.as_array().unwrap().len(), 1);
    assert_eq!(emails[0]["email"], "alice@example.com");
    assert_eq!(emails[0]["userId"], "auth0|alice");
    let response = tenant
        .http
        .post(tenant.url("/dbconnections/change_password"))
        .json(&json!({"client_id": "web", "connection": DB}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[test]
fn the_binary_prints_its_url_first() {
    let dir = std::env::temp_dir().join(format!("auth0-emulator-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let seed = dir.join("seed.json");
    std::fs::write(
        &seed,
        serde_json::to_string(&crate::common::seed()).unwrap(),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_auth0-emulator"))
        .args(["--port", "0", "--seed"])
        .arg(&seed)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    let discovery = std::process::Command::new("curl")
        .args(["-s", &format!("{url}/.well-known/openid-configuration")])
        .output();
    child.kill().unwrap();
    child.wait().unwrap();
    if let Ok(output) = discovery {
        let body: Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
        assert_eq!(body["issuer"], format!("{url}/"));
    }

    let bad = dir.join("bad.json");
    std::fs::write(
        &bad,
        r#"{"clients": [], "users": [{"email": "a", "password": "b", "connection": "x"}]}"#,
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_auth0-emulator"))
        .args(["--port", "0", "--seed"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("connection x"));
    std::fs::remove_dir_all(&dir).unwrap();
}
