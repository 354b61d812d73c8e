//! User management (SPEC §6, issue 14) against the emulator, asserting what Auth0 received: the
//! query translation, `POST /users`' connection rules, percent-encoded ids, the management token
//! cache, retries, the rate-limit pause, Auth0's refusals, sessions that follow their users, the
//! guard and route precedence.

use std::time::Duration;

use auth0_emulator::seed::demo;
use auth0_emulator::{Fault, RateLimit, RecordedRequest};
use serde_json::{Value, json};

use crate::testkit::{TestApp, assert_error_body, fault, spawn_app, spawn_app_configured};

const ENCODED_USER_ID: &str = "auth0%7C64b0c0ffee0000000000d001";

/// The Management API calls to `/api/v2/users…` the emulator received.
fn users_calls(app: &TestApp) -> Vec<RecordedRequest> {
    app.emulator.requests_to("/api/v2/users*")
}

async fn send(
    app: &TestApp,
    request: reqwest::RequestBuilder,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let _ = app;
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (status, body, headers)
}

#[actix_rt::test]
async fn list_users_translates_every_filter_into_one_lucene_query() {
    let app = spawn_app().await;
    let request = app
        .client
        .get(app.url(
            "/users?_l=10&_sk=20&email=demo%40example.com&nickname=de*&username=demo\
             &app_metadata.groups=users&connection=Username-Password-Authentication&unknown=x",
        ))
        .header("acl_rows", r#"{"$or": [{"app_metadata.groups": {"$in": ["users", "staff"]}}, {"email": {"$ne": "x\"y"}}]}"#);
    let (status, body, _) = send(&app, request).await;
    assert_eq!(status, 200, "{body}");
    let sent = users_calls(&app);
    assert_eq!(sent.len(), 1);
    let query = sent[0].query_params();
    assert_eq!(query["search_engine"], "v3");
    assert_eq!(query["per_page"], "10");
    assert_eq!(query["page"], "2");
    assert_eq!(
        query["q"],
        r#"email:"demo@example.com" AND nickname:de* AND username:"demo" AND app_metadata.groups:"users" AND ((app_metadata.groups:"users" OR app_metadata.groups:"staff") OR (NOT email:"x\"y")) AND (identities.connection:"Username\-Password\-Authentication")"#
    );
    // Page 2 of 10 is empty; the same filters on page 0 find the demo user, with `_id`.
    app.emulator.clear_requests();
    let (status, users, _) = send(
        &app,
        app.client
            .get(app.url("/users?email=demo%40example.com&app_metadata.groups=users")),
    )
    .await;
    assert_eq!(status, 200);
    let users = users.as_array().unwrap();
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users[0]["user_id"], demo::USER_ID);
    assert_eq!(users[0]["_id"], demo::USER_ID);
    assert_eq!(
        users_calls(&app)[0].query_params()["q"],
        r#"email:"demo@example.com" AND app_metadata.groups:"users" AND (identities.connection:"Username\-Password\-Authentication")"#
    );

    // No filter: every supported connection, 25 per page.
    app.emulator.clear_requests();
    let (status, users, _) = send(&app, app.client.get(app.url("/users"))).await;
    assert_eq!(status, 200);
    assert_eq!(users.as_array().unwrap().len(), 2);
    let query = users_calls(&app)[0].query_params();
    assert_eq!(query["per_page"], "25");
    assert_eq!(query["page"], "0");
    assert_eq!(
        query["q"],
        r#"(identities.connection:"Username\-Password\-Authentication")"#
    );
}

#[actix_rt::test]
async fn hostile_filter_values_are_escaped_and_bad_names_refused_before_auth0() {
    let app = spawn_app().await;
    // A value that tries to close the phrase and add an OR clause only ever searches for itself.
    let (status, users, _) = send(
        &app,
        app.client
            .get(app.url("/users"))
            .query(&[("email", r#"x" OR email:"demo@example.com"#)]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(users, json!([]));
    assert_eq!(
        users_calls(&app)[0].query_params()["q"],
        r#"email:"x\" OR email\:\"demo@example.com" AND (identities.connection:"Username\-Password\-Authentication")"#
    );
    app.emulator.clear_requests();
    for (path, acl, named) in [
        ("/users?_l=0", None, "_l"),
        ("/users?_l=101", None, "_l"),
        ("/users?_sk=-1", None, "_sk"),
        ("/users?connection=Other", None, "connection"),
        ("/users?app_metadata.a%20b=x", None, "app_metadata.a b"),
        ("/users", Some(r#"{"a": {"$where": "1"}}"#), "acl_rows"),
        ("/users", Some(r#"{"a) OR (b": 1}"#), "acl_rows"),
        ("/users", Some("not json"), "acl_rows"),
    ] {
        let mut request = app.client.get(app.url(path));
        if let Some(acl) = acl {
            request = request.header("acl_rows", acl);
        }
        let (status, body, _) = send(&app, request).await;
        assert_error_body(&body, 400, named);
        assert_eq!(status, 400, "{path} {acl:?}");
    }
    assert!(users_calls(&app).is_empty(), "refused before Auth0");

    // Auth0's own 400 (past its 1000-user search window) passes through, body and all.
    let (status, body, _) = send(&app, app.client.get(app.url("/users?_l=100&_sk=1000"))).await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("You can only page through the first 1000 records"),
        "{body}"
    );
    assert_eq!(users_calls(&app)[0].query_params()["page"], "10");
}

#[actix_rt::test]
async fn create_user_defaults_the_connection_refuses_others_and_passes_conflicts_through() {
    let app = spawn_app().await;
    let (status, user, _) = send(
        &app,
        app.client.post(app.url("/users")).json(&json!({
            "email": "new@example.com", "password": "Str0ng-password!", "app_metadata": {"groups": ["users"]}
        })),
    )
    .await;
    assert_eq!(status, 201, "{user}");
    assert_eq!(user["email"], "new@example.com");
    let sent = app.emulator.requests_to("/api/v2/users");
    assert_eq!(sent[0].method, "POST");
    assert_eq!(
        sent[0].json.as_ref().unwrap()["connection"],
        demo::CONNECTION
    );

    let (status, body, _) = send(
        &app,
        app.client
            .post(app.url("/users"))
            .json(&json!({"email": "x@example.com", "password": "Str0ng-password!", "connection": "google-oauth2"})),
    )
    .await;
    assert_error_body(&body, 400, "google-oauth2");
    assert_eq!(status, 400);
    assert_eq!(app.emulator.requests_to("/api/v2/users").len(), 1);

    // The same user again: Auth0's 409, body and all.
    let (status, body, _) = send(
        &app,
        app.client
            .post(app.url("/users"))
            .json(&json!({"email": "new@example.com", "password": "Str0ng-password!"})),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(body["statusCode"], 409);
    assert_eq!(body["message"], "The user already exists.");

    // A config with no default connection: 400 before Auth0.
    let app = spawn_app_configured(
        |config| {
            config["managementClient"]["defaultManagementConnectionName"] = Value::Null;
        },
        &[],
    )
    .await;
    let (status, body, _) = send(
        &app,
        app.client
            .post(app.url("/users"))
            .json(&json!({"email": "y@example.com"})),
    )
    .await;
    assert_eq!(status, 400);
    assert_error_body(&body, 400, "connection");
    assert!(app.emulator.requests_to("/api/v2/users").is_empty());
}

#[actix_rt::test]
async fn user_ids_are_percent_encoded_when_forwarded() {
    let app = spawn_app().await;
    for path in [
        format!("/users/{}", demo::USER_ID),
        format!("/users/{ENCODED_USER_ID}"),
    ] {
        let (status, user, _) = send(&app, app.client.get(app.url(&path))).await;
        assert_eq!(status, 200, "{path}: {user}");
        assert_eq!(user["_id"], demo::USER_ID);
    }
    for call in users_calls(&app) {
        assert_eq!(call.path, format!("/api/v2/users/{ENCODED_USER_ID}"));
    }
    let (status, body, _) = send(&app, app.client.get(app.url("/users/auth0%7Cnobody"))).await;
    assert_eq!(status, 404);
    assert_eq!(body["errorCode"], "inexistent_user");
    // A `/` inside an id stays inside the segment.
    send(&app, app.client.get(app.url("/users/a%2F..%2Fjobs"))).await;
    assert!(
        users_calls(&app)
            .iter()
            .all(|c| c.path.starts_with("/api/v2/users/") && c.path.matches('/').count() == 4),
        "{:?}",
        users_calls(&app)
            .iter()
            .map(|c| &c.path)
            .collect::<Vec<_>>()
    );
}

#[actix_rt::test]
async fn one_management_token_for_concurrent_calls_and_a_new_one_when_it_expires() {
    let app = spawn_app().await;
    let path = format!("/users/{ENCODED_USER_ID}");
    let calls = (0..30).map(|_| app.client.get(app.url(&path)).send());
    for response in futures_util::future::join_all(calls).await {
        assert_eq!(response.unwrap().status(), 200);
    }
    assert_eq!(users_calls(&app).len(), 30);
    assert_eq!(app.management_token_fetches(), 1);

    // The token's lifetime (by the daemon's clock): renewed before the next call.
    app.clock.advance(Duration::from_secs(86_400));
    assert_eq!(app.get(&path).await.status(), 200);
    assert_eq!(app.management_token_fetches(), 2);

    // Auth0 stops accepting it (its signing key changed): one 401, one new token, one retry.
    app.emulator.rotate_signing_key(false);
    app.emulator.clear_requests();
    assert_eq!(app.get(&path).await.status(), 200);
    let statuses: Vec<Option<u16>> = users_calls(&app).iter().map(|c| c.status).collect();
    assert_eq!(statuses, [Some(401), Some(200)]);
    assert_eq!(app.management_token_fetches(), 1);
}

#[actix_rt::test]
async fn gets_are_retried_through_503s_writes_are_not_and_persistent_failure_is_502() {
    let app = spawn_app().await;
    let path = format!("/users/{ENCODED_USER_ID}");
    app.emulator.add_fault(Fault {
        status: Some(503),
        count: Some(2),
        method: Some("GET".into()),
        ..fault("/api/v2/users*")
    });
    assert_eq!(app.get(&path).await.status(), 200);
    let statuses: Vec<Option<u16>> = users_calls(&app).iter().map(|c| c.status).collect();
    assert_eq!(statuses, [Some(503), Some(503), Some(200)]);

    app.emulator.clear_requests();
    app.emulator.add_fault(Fault {
        status: Some(503),
        count: Some(1),
        ..fault("/api/v2/users*")
    });
    let (status, body, _) = send(
        &app,
        app.client
            .patch(app.url(&path))
            .json(&json!({"nickname": "renamed"})),
    )
    .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(
        users_calls(&app).len(),
        1,
        "a PATCH Auth0 received is not sent again"
    );

    app.emulator.clear_requests();
    app.emulator.add_fault(Fault {
        status: Some(503),
        ..fault("/api/v2/users*")
    });
    let (status, body, _) = send(&app, app.client.get(app.url(&path))).await;
    assert_eq!(status, 502);
    assert_error_body(&body, 502, "503");
    assert_eq!(users_calls(&app).len(), 4, "one try and 3 retries");
    app.emulator.clear_faults();
}

#[actix_rt::test]
async fn a_429_pauses_management_calls_without_reaching_auth0() {
    let app = spawn_app().await;
    let path = format!("/users/{ENCODED_USER_ID}");
    assert_eq!(app.get(&path).await.status(), 200);
    app.emulator.set_rate_limit(Some(RateLimit {
        routes: vec!["/api/v2/*".into()],
        reset_at: None,
        reset_in_seconds: Some(40),
        remaining: 0,
        retry_after: true,
        body: None,
        limited: 0,
    }));
    let (status, body, headers) = send(&app, app.client.get(app.url(&path))).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["statusCode"], 429, "Auth0's body passes through");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=40).contains(&retry_after));

    // Auth0 would answer again, but the pause holds: 429 at once, Auth0 not called.
    app.emulator.set_rate_limit(None);
    app.emulator.clear_requests();
    let (status, body, headers) = send(&app, app.client.get(app.url("/users"))).await;
    assert_eq!(status, 429);
    assert_error_body(&body, 429, "rate limit");
    assert!(headers.contains_key("retry-after"));
    assert!(users_calls(&app).is_empty());

    // Past the reset by the daemon's clock: calls go through again.
    app.clock.advance(Duration::from_secs(41));
    assert_eq!(app.get(&path).await.status(), 200);
}

#[actix_rt::test]
async fn an_exhausted_rate_limit_bucket_pauses_before_any_429() {
    let app = spawn_app().await;
    let path = format!("/users/{ENCODED_USER_ID}");
    assert_eq!(app.get(&path).await.status(), 200);
    // One request left in Auth0's bucket: it is answered, with X-RateLimit-Remaining: 0.
    app.emulator.set_rate_limit(Some(RateLimit {
        routes: vec!["/api/v2/*".into()],
        reset_at: None,
        reset_in_seconds: Some(20),
        remaining: 1,
        retry_after: false,
        body: None,
        limited: 0,
    }));
    app.emulator.clear_requests();
    assert_eq!(app.get(&path).await.status(), 200);
    let (status, _, headers) = send(&app, app.client.get(app.url(&path))).await;
    assert_eq!(status, 429);
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    assert_eq!(
        users_calls(&app).len(),
        1,
        "the daemon waited instead of collecting a 429"
    );
    app.emulator.set_rate_limit(None);
}

#[actix_rt::test]
async fn auth0_refusing_the_daemons_own_credentials_is_502() {
    let app = spawn_app_configured(
        |config| config["managementClient"]["clientSecret"] = "wrong".into(),
        &[],
    )
    .await;
    let (status, body, _) = send(&app, app.client.get(app.url("/users"))).await;
    assert_eq!(status, 502);
    assert_error_body(&body, 502, "management credentials");
    assert!(users_calls(&app).is_empty());

    // A token without the scope the call needs: Auth0's 403 is the daemon's configuration, not
    // the caller's request.
    let app = spawn_app().await;
    app.emulator.add_fault(Fault {
        status: Some(403),
        body: Some(json!({
            "statusCode": 403, "error": "Forbidden", "errorCode": "insufficient_scope",
            "message": "Insufficient scope, expected any of: delete:users"
        })),
        ..fault("/api/v2/users*")
    });
    let (status, body, _) = send(
        &app,
        app.client
            .delete(app.url(&format!("/users/{ENCODED_USER_ID}"))),
    )
    .await;
    assert_eq!(status, 502);
    assert_eq!(body["errorCode"], "insufficient_scope");
    assert_error_body(&body, 502, "Insufficient scope");
}

/// Logs the demo user in twice (Bearer and cookie) and warms the read cache of both.
async fn logged_in(app: &TestApp) -> (String, String) {
    let tokens = app.login_tokens().await;
    let access = tokens["accessToken"].as_str().unwrap().to_owned();
    let sid = app.login_cookie().await;
    for _ in 0..2 {
        assert_eq!(app.userinfo_bearer(&access).await.status(), 200);
        assert_eq!(app.userinfo_cookie(&sid).await.status(), 200);
    }
    (access, sid)
}

async fn assert_logged_out(app: &TestApp, access: &str, sid: &str) {
    assert_eq!(app.userinfo_bearer(access).await.status(), 401);
    assert_eq!(app.userinfo_cookie(sid).await.status(), 401);
}

#[actix_rt::test]
async fn deleting_blocking_or_repasswording_a_user_ends_their_sessions_at_once() {
    let app = spawn_app().await;
    let path = format!("/users/{ENCODED_USER_ID}");

    // A harmless patch keeps the sessions.
    let (access, sid) = logged_in(&app).await;
    let (status, _, _) = send(
        &app,
        app.client
            .patch(app.url(&path))
            .json(&json!({"nickname": "d"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(app.userinfo_bearer(&access).await.status(), 200);

    // Blocked: every session ends, the cached copies included.
    let (status, user, _) = send(
        &app,
        app.client
            .patch(app.url(&path))
            .json(&json!({"blocked": true})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(user["blocked"], true);
    assert_logged_out(&app, &access, &sid).await;
    let (status, active, _) = send(&app, app.client.get(app.url("/users/active"))).await;
    assert_eq!((status, active), (200, json!([])));
    app.emulator.set_blocked(demo::USER_ID, false);

    // A new password.
    let (access, sid) = logged_in(&app).await;
    let (status, _, _) = send(
        &app,
        app.client
            .patch(app.url(&path))
            .json(&json!({"password": "An0ther-password!"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_logged_out(&app, &access, &sid).await;
    app.emulator.clear_requests();

    // On demand, without Auth0.
    let tokens = app
        .login("api", demo::USER_EMAIL, "An0ther-password!")
        .await;
    let access: String = tokens.json::<Value>().await.unwrap()["accessToken"]
        .as_str()
        .unwrap()
        .into();
    assert_eq!(app.userinfo_bearer(&access).await.status(), 200);
    let (status, _, _) = send(
        &app,
        app.client.delete(app.url(&format!("{path}/sessions"))),
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(app.userinfo_bearer(&access).await.status(), 401);
    assert!(users_calls(&app).is_empty());

    // Deleted.
    let tokens = app
        .login("api", demo::USER_EMAIL, "An0ther-password!")
        .await;
    let access: String = tokens.json::<Value>().await.unwrap()["accessToken"]
        .as_str()
        .unwrap()
        .into();
    assert_eq!(app.userinfo_bearer(&access).await.status(), 200);
    let (status, _, _) = send(&app, app.client.delete(app.url(&path))).await;
    assert_eq!(status, 204);
    assert_eq!(app.userinfo_bearer(&access).await.status(), 401);
    assert_eq!(users_calls(&app)[0].method, "DELETE");
    assert!(app.emulator.user(demo::USER_ID).is_none());
}

#[actix_rt::test]
async fn a_refused_change_logs_nobody_out() {
    let app = spawn_app().await;
    let (access, _) = logged_in(&app).await;
    app.emulator.add_fault(Fault {
        status: Some(400),
        count: Some(1),
        ..fault("/api/v2/users*")
    });
    let (status, _, _) = send(
        &app,
        app.client
            .patch(app.url(&format!("/users/{ENCODED_USER_ID}")))
            .json(&json!({"blocked": true})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(app.userinfo_bearer(&access).await.status(), 200);
}

#[actix_rt::test]
async fn change_password_asks_auth0_with_the_clients_id_and_connection() {
    let app = spawn_app().await;
    let (status, body, _) = send(
        &app,
        app.client
            .post(app.url("/change-password"))
            .json(&json!({"email": demo::USER_EMAIL})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["message"].as_str().unwrap().contains("email"));
    let sent = app.emulator.requests_to("/dbconnections/change_password");
    assert_eq!(
        sent[0].json.clone().unwrap(),
        json!({"client_id": demo::LOGIN_CLIENT_ID, "email": demo::USER_EMAIL, "connection": demo::CONNECTION})
    );
    let (status, body, _) = send(
        &app,
        app.client
            .post(app.url("/change-password"))
            .json(&json!({"email": demo::USER_EMAIL, "connection": "other"})),
    )
    .await;
    assert_eq!(status, 400);
    assert_error_body(&body, 400, "other");
    let (status, _, _) = send(
        &app,
        app.client
            .post(app.url("/change-password"))
            .json(&json!({})),
    )
    .await;
    assert_eq!(status, 400);
}

#[actix_rt::test]
async fn management_bind_serves_the_routes_only_on_the_management_listener() {
    let app = spawn_app_configured(
        |config| config["server"]["managementBind"] = "127.0.0.1:0".into(),
        &[],
    )
    .await;
    let management = format!("http://127.0.0.1:{}", app.management_port.unwrap());
    for path in [
        "/users",
        "/users/active",
        &format!("/users/{ENCODED_USER_ID}"),
    ] {
        assert_eq!(
            app.get(path).await.status(),
            404,
            "{path} on the main listener"
        );
        let response = app
            .client
            .get(format!("{management}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path} on the management listener");
    }
    let response = app
        .client
        .post(app.url("/change-password"))
        .json(&json!({"email": demo::USER_EMAIL}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    // `/users/me` stays a session route of the main listener.
    let tokens = app.login_tokens().await;
    let me = app
        .client
        .get(app.url("/users/me"))
        .bearer_auth(tokens["accessToken"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(users_calls(&app).len(), 2);
}

#[actix_rt::test]
async fn api_keys_guard_the_routes() {
    let app = spawn_app_configured(
        |config| {
            config["apiKeys"] = json!([
                {"key": "key-web", "clientType": "api", "management": false},
                {"key": "key-admin", "clientType": "api", "management": true}
            ]);
        },
        &[],
    )
    .await;
    let path = format!("/users/{ENCODED_USER_ID}");
    let (status, body, _) = send(&app, app.client.get(app.url(&path))).await;
    assert_eq!(status, 401);
    assert_error_body(&body, 401, "API key");
    let (status, body, _) = send(
        &app,
        app.client
            .delete(app.url(&path))
            .header("secret", "key-web"),
    )
    .await;
    assert_eq!(status, 403);
    assert_error_body(&body, 403, "management");
    assert!(users_calls(&app).is_empty());
    assert!(app.emulator.user(demo::USER_ID).is_some());
    let (status, _, _) = send(
        &app,
        app.client.get(app.url(&path)).header("secret", "key-admin"),
    )
    .await;
    assert_eq!(status, 200);
}

#[actix_rt::test]
async fn fixed_user_routes_take_precedence_over_user_ids() {
    let app = spawn_app().await;
    let tokens = app.login_tokens().await;
    let access = tokens["accessToken"].as_str().unwrap();
    let me = app
        .client
        .get(app.url("/users/me"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(me.json::<Value>().await.unwrap()["sub"], demo::USER_ID);
    let (status, active, _) = send(&app, app.client.get(app.url("/users/active"))).await;
    assert_eq!((status, active), (200, json!([{"userId": demo::USER_ID}])));
    for (method, path) in [
        (reqwest::Method::DELETE, "/users/active"),
        (reqwest::Method::PATCH, "/users/me"),
        (reqwest::Method::DELETE, "/users/import"),
        (reqwest::Method::GET, "/users/import"),
    ] {
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
    }
    assert!(
        users_calls(&app).is_empty(),
        "no fixed word reached Auth0 as a user id"
    );
    assert_eq!(app.userinfo_bearer(access).await.status(), 200);
}

#[actix_rt::test]
async fn without_a_management_client_the_routes_answer_501() {
    let app = spawn_app_configured(
        |config| {
            config.as_object_mut().unwrap().remove("managementClient");
        },
        &[],
    )
    .await;
    for (method, path) in [
        (reqwest::Method::GET, "/users".to_owned()),
        (reqwest::Method::GET, format!("/users/{ENCODED_USER_ID}")),
        (
            reqwest::Method::DELETE,
            format!("/users/{ENCODED_USER_ID}/sessions"),
        ),
    ] {
        let (status, body, _) = send(&app, app.client.request(method, app.url(&path))).await;
        assert_eq!(status, 501, "{path}");
        assert_error_body(&body, 501, "managementClient");
    }
}
