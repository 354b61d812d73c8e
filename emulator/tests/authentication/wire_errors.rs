//! The wire reference's documented errors, one row each, compared word for word (status and body).

use std::{future::Future, pin::Pin};

use auth0_emulator::{RateLimit, Seed, SeedClient};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::common::{CALLBACK, DB, Tenant, VERIFIER, s256};

type Request = for<'a> fn(&'a Tenant) -> Pin<Box<dyn Future<Output = Response> + 'a>>;

enum Body {
    Json(Value),
    /// Compared without the named keys, which must be present (a random `mfa_token`).
    JsonExcept(Value, &'static [&'static str]),
    Text(&'static str),
}

struct Row {
    /// The reference's row, with its tag.
    name: &'static str,
    request: Request,
    status: u16,
    body: Body,
}

fn post_token(tenant: &Tenant, body: Value) -> Pin<Box<dyn Future<Output = Response> + '_>> {
    Box::pin(async move {
        tenant
            .http
            .post(tenant.url("/oauth/token"))
            .json(&body)
            .send()
            .await
            .unwrap()
    })
}

fn realm_login(user: &str, password: &str) -> Value {
    json!({"grant_type": "http://auth0.com/oauth/grant-type/password-realm", "client_id": "web",
           "client_secret": "web-secret", "username": user, "password": password, "realm": DB,
           "scope": "openid offline_access"})
}

async fn refresh_token_of(tenant: &Tenant, user: &str, password: &str) -> String {
    let response = post_token(tenant, realm_login(user, password)).await;
    let body: Value = response.json().await.unwrap();
    body["refresh_token"].as_str().unwrap().to_string()
}

fn rows() -> Vec<Row> {
    vec![
        Row {
            name: "§1.3 wrong username or password [OBS]",
            request: |t| post_token(t, realm_login("alice@example.com", "wrong")),
            status: 403,
            body: Body::Json(
                json!({"error": "invalid_grant", "error_description": "Wrong email or password."}),
            ),
        },
        Row {
            name: "§1.3 unknown user, same answer [OBS]",
            request: |t| post_token(t, realm_login("nobody@example.com", "x")),
            status: 403,
            body: Body::Json(
                json!({"error": "invalid_grant", "error_description": "Wrong email or password."}),
            ),
        },
        Row {
            name: "§1.3 bad or used authorization code [OBS]",
            request: |t| {
                post_token(
                    t,
                    json!({"grant_type": "authorization_code", "client_id": "web",
                    "client_secret": "web-secret", "code": "not-a-code", "redirect_uri": CALLBACK}),
                )
            },
            status: 403,
            body: Body::Json(
                json!({"error": "invalid_grant", "error_description": "Invalid authorization code"}),
            ),
        },
        Row {
            name: "§1.3 wrong PKCE verifier [OBS]",
            request: |t| {
                Box::pin(async move {
                    let challenge = s256(VERIFIER);
                    let code = t
                        .code_for(&[
                            ("code_challenge", &challenge),
                            ("code_challenge_method", "S256"),
                        ])
                        .await;
                    post_token(t, json!({"grant_type": "authorization_code", "client_id": "web",
                        "client_secret": "web-secret", "code": code["code"], "redirect_uri": CALLBACK,
                        "code_verifier": "y".repeat(50)}))
                    .await
                })
            },
            status: 403,
            body: Body::Json(
                json!({"error": "invalid_grant", "error_description": "Failed to verify code verifier"}),
            ),
        },
        Row {
            name: "§1.3 unknown refresh token [OBS]",
            request: |t| {
                post_token(
                    t,
                    json!({"grant_type": "refresh_token", "client_id": "web",
                    "client_secret": "web-secret", "refresh_token": "v1.unknown"}),
                )
            },
            status: 403,
            body: Body::Json(
                json!({"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."}),
            ),
        },
        Row {
            name: "§1.4 reused rotated refresh token [INF]+[OBS]",
            request: |t| {
                Box::pin(async move {
                    let first = refresh_token_of(t, "alice@example.com", "alice-pw").await;
                    let body = json!({"grant_type": "refresh_token", "client_id": "web",
                        "client_secret": "web-secret", "refresh_token": first});
                    post_token(t, body.clone()).await;
                    post_token(t, body).await
                })
            },
            status: 403,
            body: Body::Json(
                json!({"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."}),
            ),
        },
        Row {
            name: "§1.3 blocked user on the refresh grant [OBS]",
            request: |t| {
                Box::pin(async move {
                    let token = refresh_token_of(t, "alice@example.com", "alice-pw").await;
                    t.emulator.set_blocked("alice@example.com", true);
                    let response = post_token(
                        t,
                        json!({"grant_type": "refresh_token", "client_id": "web",
                        "client_secret": "web-secret", "refresh_token": token}),
                    )
                    .await;
                    t.emulator.set_blocked("alice@example.com", false);
                    response
                })
            },
            status: 403,
            body: Body::Json(
                json!({"error": "invalid_grant", "error_description": "user is blocked"}),
            ),
        },
        Row {
            name: "§1.3 blocked user on a login grant [OBS]/[INF]",
            request: |t| post_token(t, realm_login("carol@example.com", "carol-pw")),
            status: 401,
            body: Body::Json(
                json!({"error": "unauthorized", "error_description": "user is blocked"}),
            ),
        },
        Row {
            name: "§1.3 grant not enabled: password-realm [OBS]",
            request: |t| {
                post_token(
                    t,
                    json!({"grant_type": "http://auth0.com/oauth/grant-type/password-realm",
                    "client_id": "m2m", "client_secret": "m2m-secret", "username": "alice", "password": "alice-pw",
                    "realm": DB}),
                )
            },
            status: 403,
            body: Body::Json(json!({"error": "unauthorized_client",
                "error_description": "Grant type 'http://auth0.com/oauth/grant-type/password-realm' not allowed for the client.",
                "error_uri": "https://auth0.com/docs/clients/client-grant-types"})),
        },
        Row {
            name: "§1.3 grant not enabled: client_credentials [OBS]",
            request: |t| {
                post_token(
                    t,
                    json!({"grant_type": "client_credentials", "client_id": "ropg",
                    "client_secret": "ropg-secret", "audience": t.emulator.management_audience()}),
                )
            },
            status: 403,
            body: Body::Json(json!({"error": "unauthorized_client",
                "error_description": "Grant type 'client_credentials' not allowed for the client.",
                "error_uri": "https://auth0.com/docs/clients/client-grant-types"})),
        },
        Row {
            name: "§1.3 grant not enabled: password [OBS]",
            request: |t| {
                post_token(
                    t,
                    json!({"grant_type": "password", "client_id": "m2m", "client_secret": "m2m-secret",
                    "username": "alice", "password": "alice-pw"}),
                )
            },
            status: 403,
            body: Body::Json(json!({"error": "unauthorized_client",
                "error_description": "Grant type 'password' not allowed for the client.",
                "error_uri": "https://auth0.com/docs/clients/client-grant-types"})),
        },
        Row {
            name: "§1.3 M2M client not authorized for the audience [OBS]",
            request: |t| {
                post_token(
                    t,
                    json!({"grant_type": "client_credentials", "client_id": "m2m",
                    "client_secret": "m2m-secret", "audience": "https://TENANT/api/v2/"}),
                )
            },
            status: 403,
            body: Body::Json(json!({"error": "access_denied",
                "error_description": "Client is not authorized to access \"https://TENANT/api/v2/\". You need to create a \"client-grant\" associated to this API. See: https://auth0.com/docs/api/v2#!/Client_Grants/post_client_grants"})),
        },
        Row {
            name: "§1.3 bad client secret [OBS]",
            request: |t| {
                post_token(
                    t,
                    json!({"grant_type": "password", "client_id": "web", "client_secret": "wrong",
                    "username": "alice", "password": "alice-pw"}),
                )
            },
            status: 401,
            body: Body::Json(
                json!({"error": "access_denied", "error_description": "Unauthorized"}),
            ),
        },
        Row {
            name: "§1.3 unknown realm [DOC]/[INF]",
            request: |t| {
                post_token(
                    t,
                    json!({"grant_type": "http://auth0.com/oauth/grant-type/password-realm",
                    "client_id": "web", "client_secret": "web-secret", "username": "alice", "password": "alice-pw",
                    "realm": "non-existent-connection"}),
                )
            },
            status: 400,
            body: Body::Json(json!({"error": "invalid_request",
                "error_description": "Unknown realm non-existent-connection."})),
        },
        Row {
            name: "§1.3 MFA required [DOC]",
            request: |t| {
                Box::pin(async move {
                    set_challenge(t, "alice", json!("mfa_required")).await;
                    let response =
                        post_token(t, realm_login("alice@example.com", "alice-pw")).await;
                    set_challenge(t, "alice", Value::Null).await;
                    response
                })
            },
            status: 403,
            body: Body::JsonExcept(
                json!({"error": "mfa_required", "error_description": "Multifactor authentication required"}),
                &["mfa_token"],
            ),
        },
        Row {
            name: "§1.3 brute-force block [DOC]",
            request: |t| {
                Box::pin(async move {
                    for _ in 0..10 {
                        post_token(t, realm_login("alice@example.com", "wrong")).await;
                    }
                    let response =
                        post_token(t, realm_login("alice@example.com", "alice-pw")).await;
                    t.http
                        .delete(t.url("/__emulator/brute-force"))
                        .send()
                        .await
                        .unwrap();
                    response
                })
            },
            status: 429,
            body: Body::Json(json!({"error": "too_many_attempts",
                "error_description": "Your account has been blocked after multiple consecutive login attempts. We've sent you a notification via your preferred contact method with instructions on how to unblock it."})),
        },
        Row {
            name: "§1.3 leaked password [DOC]",
            request: |t| {
                Box::pin(async move {
                    set_challenge(t, "alice", json!("password_leaked")).await;
                    let response =
                        post_token(t, realm_login("alice@example.com", "alice-pw")).await;
                    set_challenge(t, "alice", Value::Null).await;
                    response
                })
            },
            status: 401,
            body: Body::Json(json!({"error": "password_leaked",
                "error_description": "This login attempt has been blocked because the password you're using was previously disclosed through a data breach (not in this application)."})),
        },
        Row {
            name: "§1.3 unsupported grant [DOC]",
            request: |t| post_token(t, json!({"grant_type": "urn:nope", "client_id": "web"})),
            status: 400,
            body: Body::Json(
                json!({"error": "unsupported_grant_type", "error_description": "Grant type not supported"}),
            ),
        },
        Row {
            name: "§1.3 missing parameter [DOC]",
            request: |t| {
                post_token(
                    t,
                    json!({"grant_type": "authorization_code", "client_id": "web",
                    "client_secret": "web-secret"}),
                )
            },
            status: 400,
            body: Body::Json(
                json!({"error": "invalid_request", "error_description": "Missing required parameter: code"}),
            ),
        },
        Row {
            name: "§1.3 no default directory [OBS]",
            request: |_| {
                Box::pin(async move {
                    let bare = Tenant::with_seed(Seed {
                        clients: vec![SeedClient {
                            client_id: "c".into(),
                            ..SeedClient::default()
                        }],
                        ..Seed::default()
                    });
                    post_token(
                        &bare,
                        json!({"grant_type": "password", "client_id": "c", "username": "a",
                        "password": "b"}),
                    )
                    .await
                })
            },
            status: 500,
            body: Body::Json(json!({"error": "server_error",
                "error_description": "Authorization server not configured with default connection."})),
        },
        Row {
            name: "§1.1 rate limit on /oauth/token [DOC]",
            request: |t| {
                Box::pin(async move {
                    t.emulator.set_rate_limit(Some(RateLimit {
                        routes: vec!["/oauth/token".into()],
                        ..rate_limit()
                    }));
                    let response =
                        post_token(t, realm_login("alice@example.com", "alice-pw")).await;
                    t.emulator.set_rate_limit(None);
                    response
                })
            },
            status: 429,
            body: Body::Json(
                json!({"error": "too_many_requests", "error_description": "Rate limit exceeded."}),
            ),
        },
        Row {
            name: "§1.1 rate limit on /userinfo [DOC]",
            request: |t| {
                Box::pin(async move {
                    t.emulator.set_rate_limit(Some(rate_limit()));
                    let response = t.http.get(t.url("/userinfo")).send().await.unwrap();
                    t.emulator.set_rate_limit(None);
                    response
                })
            },
            status: 429,
            body: Body::Text("Rate limit exceed"),
        },
        Row {
            name: "§2.2 rate limit on the Management API [OBS]",
            request: |t| {
                Box::pin(async move {
                    t.emulator.set_rate_limit(Some(rate_limit()));
                    let response = t.http.get(t.url("/api/v2/users")).send().await.unwrap();
                    t.emulator.set_rate_limit(None);
                    response
                })
            },
            status: 429,
            body: Body::Json(json!({"statusCode": 429, "error": "Too Many Requests",
                "message": "Global limit has been reached", "errorCode": "too_many_requests"})),
        },
        Row {
            name: "§1.5 /userinfo with a bad token [OBS]",
            request: |t| {
                Box::pin(async move {
                    t.http
                        .get(t.url("/userinfo"))
                        .bearer_auth("x.y.z")
                        .send()
                        .await
                        .unwrap()
                })
            },
            status: 401,
            body: Body::Text("Unauthorized"),
        },
        Row {
            name: "§7.1 revoke without token [INF]",
            request: |t| {
                Box::pin(async move {
                    t.http
                        .post(t.url("/oauth/revoke"))
                        .json(&json!({"client_id": "web", "client_secret": "web-secret"}))
                        .send()
                        .await
                        .unwrap()
                })
            },
            status: 400,
            body: Body::Json(
                json!({"error": "invalid_request", "error_description": "Missing required parameter: token"}),
            ),
        },
        Row {
            name: "§7.1 revoke with a bad client secret [INF]",
            request: |t| {
                Box::pin(async move {
                    t.http
                        .post(t.url("/oauth/revoke"))
                        .json(
                            &json!({"client_id": "web", "client_secret": "nope", "token": "v1.x"}),
                        )
                        .send()
                        .await
                        .unwrap()
                })
            },
            status: 401,
            body: Body::Json(
                json!({"error": "invalid_client", "error_description": "Client authentication failed"}),
            ),
        },
        Row {
            name: "§7.2 change password [DOC]",
            request: |t| {
                Box::pin(async move {
                    t.http.post(t.url("/dbconnections/change_password"))
                        .json(&json!({"client_id": "web", "email": "alice@example.com", "connection": DB}))
                        .send().await.unwrap()
                })
            },
            status: 200,
            body: Body::Text("We've just sent you an email to reset your password."),
        },
    ]
}

fn rate_limit() -> RateLimit {
    RateLimit {
        routes: Vec::new(),
        reset_at: None,
        reset_in_seconds: Some(30),
        remaining: 0,
        retry_after: false,
        body: None,
        limited: 0,
    }
}

async fn set_challenge(tenant: &Tenant, user: &str, challenge: Value) {
    let response = tenant
        .http
        .put(tenant.url(&format!("/__emulator/users/{user}/login-challenge")))
        .json(&json!({"challenge": challenge}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn documented_errors_word_for_word() {
    let tenant = Tenant::start();
    let mut failures = Vec::new();
    for row in rows() {
        let response = (row.request)(&tenant).await;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body_matches = match &row.body {
            Body::Text(expected) => text == *expected,
            Body::Json(expected) => {
                serde_json::from_str::<Value>(&text).ok().as_ref() == Some(expected)
            }
            Body::JsonExcept(expected, extra) => match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(mut got)) => {
                    let present = extra.iter().all(|key| got.remove(*key).is_some());
                    present && Value::Object(got) == *expected
                }
                _ => false,
            },
        };
        if status != row.status || !body_matches {
            failures.push(format!("{}: got {status} {text}", row.name));
        }
    }
    assert!(
        failures.is_empty(),
        "rows that differ from the reference:\n{}",
        failures.join("\n")
    );
}
