//! HTTP tests of the emulator's Management API v2 users routes, and of its documented errors word for
//! word against `reference/auth0-api-wire.md` §2.
#![allow(clippy::unwrap_used)]

use auth0_emulator::{
    Emulator, EmulatorHandle, RateLimit, Seed, SeedApi, SeedClient, SeedConnection, SeedUser,
};
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{Map, Value, json};

const DB: &str = "Username-Password-Authentication";
const DB_ID: &str = "con_TestDatabase0001";
const PARTNERS: &str = "Partners";

fn user(email: &str, connection: &str, app_metadata: Value) -> SeedUser {
    SeedUser {
        email: email.into(),
        password: format!("{email}-password"),
        connection: connection.into(),
        app_metadata: app_metadata.as_object().cloned(),
        ..SeedUser::default()
    }
}

fn seed() -> Seed {
    Seed {
        clients: vec![
            SeedClient {
                client_id: "login".into(),
                client_secret: Some("login-secret".into()),
                ..SeedClient::default()
            },
            SeedClient {
                client_id: "m2m".into(),
                client_secret: Some("m2m-secret".into()),
                grants: Some(vec!["client_credentials".into()]),
                ..SeedClient::default()
            },
        ],
        apis: vec![SeedApi {
            identifier: "https://api.test/".into(),
        }],
        connections: vec![
            SeedConnection {
                name: DB.into(),
                id: DB_ID.into(),
            },
            SeedConnection {
                name: PARTNERS.into(),
                id: "con_TestPartners0001".into(),
            },
        ],
        users: vec![
            SeedUser {
                user_id: Some("alice".into()),
                username: Some("alice".into()),
                user_metadata: Some(Map::from_iter([("theme".to_string(), json!("dark"))])),
                ..user(
                    "Alice@Example.com",
                    DB,
                    json!({"groups": ["admins", "editors"], "plan": {"tier": "gold"}}),
                )
            },
            user("bob@example.com", DB, json!({"groups": ["editors"]})),
            SeedUser {
                blocked: Some(true),
                ..user("carl@example.com", DB, json!({"groups": ["admins"]}))
            },
            user(
                "dora@partner.example",
                PARTNERS,
                json!({"groups": ["admins"]}),
            ),
        ],
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
        Self::with_seed(seed())
    }

    fn with_seed(seed: Seed) -> Self {
        let emulator = Emulator::start(seed).unwrap();
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

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        let mut request = self
            .http
            .request(method, self.url(path))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    async fn get(&self, path: &str) -> Response {
        self.call(Method::GET, path, None).await
    }
}

/// The status and the body, checked as JSON (and, where it matters, as text).
async fn read(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    };
    (status, body)
}

fn assert_rate_limit_headers(response: &Response) {
    for name in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ] {
        let value = response
            .headers()
            .get(name)
            .unwrap_or_else(|| panic!("no {name} on {}", response.url()));
        assert!(
            value.to_str().unwrap().parse::<u64>().is_ok(),
            "{name}: {value:?}"
        );
    }
}

fn emails(users: &Value) -> Vec<String> {
    let mut list: Vec<String> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap().to_string())
        .collect();
    list.sort();
    list
}

#[tokio::test]
async fn every_call_needs_a_valid_unexpired_management_token() {
    let tenant = TestTenant::start();
    let bare = tenant
        .http
        .get(tenant.url("/api/v2/users"))
        .send()
        .await
        .unwrap();
    assert_rate_limit_headers(&bare);
    assert_eq!(
        bare.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    assert_eq!(
        bare.text().await.unwrap(),
        r#"{"statusCode":401,"error":"Unauthorized","message":"Missing authentication"}"#
    );

    let forged = tenant
        .http
        .get(tenant.url("/api/v2/users"))
        .bearer_auth("eyJhbGciOiJSUzI1NiJ9.e30.c2ln")
        .send()
        .await
        .unwrap();
    assert_eq!(
        read(forged).await,
        (
            StatusCode::UNAUTHORIZED,
            json!({"statusCode": 401, "error": "Unauthorized", "message": "Invalid token", "attributes": {"error": "Invalid token"}})
        )
    );

    // A user's access token (another audience) is not a Management API token.
    let other = tenant.emulator.tenant().sign(&json!({
        "iss": tenant.emulator.issuer(), "aud": "https://api.test/", "exp": 4_000_000_000_i64, "scope": "read:users"
    }));
    let response = tenant
        .http
        .get(tenant.url("/api/v2/users"))
        .bearer_auth(other)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // The control API sets the lifetime of management tokens: 0 s means expired at once.
    tenant
        .emulator
        .update_settings(|s| s.management_token_seconds = 0);
    let expired = tenant.emulator.management_token("m2m");
    let response = tenant
        .http
        .get(tenant.url("/api/v2/users/auth0%7Calice"))
        .bearer_auth(expired)
        .send()
        .await
        .unwrap();
    assert_eq!(
        read(response).await,
        (
            StatusCode::UNAUTHORIZED,
            json!({"statusCode": 401, "error": "Unauthorized",
                   "message": "Expired token received for JSON Web Token validation",
                   "attributes": {"error": "Expired token received for JSON Web Token validation"}})
        )
    );
    // Tokens issued before the change keep their own lifetime.
    assert_eq!(tenant.get("/api/v2/users").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_token_obtained_with_client_credentials_works() {
    let tenant = TestTenant::start();
    let response = tenant
        .http
        .post(tenant.url("/oauth/token"))
        .json(&json!({
            "grant_type": "client_credentials", "client_id": "m2m", "client_secret": "m2m-secret",
            "audience": tenant.emulator.management_audience()
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let token: Value = response.json().await.unwrap();
    let response = tenant
        .http
        .get(tenant.url("/api/v2/users"))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn scopes_are_checked_per_route() {
    let tenant = TestTenant::start();
    let reader = tenant
        .emulator
        .tenant()
        .issue_management_token("m2m", &["read:users"]);
    let response = tenant
        .http
        .post(tenant.url("/api/v2/users"))
        .bearer_auth(&reader)
        .json(&json!({"email": "x@example.com", "password": "p", "connection": DB}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        read(response).await,
        (
            StatusCode::FORBIDDEN,
            json!({"statusCode": 403, "error": "Forbidden", "message": "Insufficient scope, expected any of: create:users", "errorCode": "insufficient_scope"})
        )
    );
    let response = tenant
        .http
        .get(tenant.url("/api/v2/users"))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn lists_users_as_a_bare_array_or_with_totals() {
    let tenant = TestTenant::start();
    let response = tenant.get("/api/v2/users").await;
    assert_rate_limit_headers(&response);
    let (status, users) = read(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(users.as_array().unwrap().len(), 4);
    let alice = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user_id"] == "auth0|alice")
        .unwrap();
    assert_eq!(
        alice["identities"],
        json!([{"connection": DB, "user_id": "alice", "provider": "auth0", "isSocial": false}])
    );
    assert!(alice.get("password").is_none());

    let response = tenant
        .get("/api/v2/users?page=1&per_page=3&include_totals=true")
        .await;
    let text = response.text().await.unwrap();
    assert!(
        text.starts_with(r#"{"start":3,"limit":3,"length":1,"users":["#)
            && text.ends_with(r#"],"total":4}"#),
        "{text}"
    );

    let (_, page) = read(
        tenant
            .get("/api/v2/users?page=5&per_page=3&include_totals=true")
            .await,
    )
    .await;
    assert_eq!(
        page,
        json!({"start": 15, "limit": 3, "length": 0, "users": [], "total": 4})
    );
    let (_, fields) = read(
        tenant
            .get("/api/v2/users?fields=email,user_id&include_fields=true&per_page=1")
            .await,
    )
    .await;
    assert_eq!(fields.as_array().unwrap()[0].as_object().unwrap().len(), 2);
}

#[tokio::test]
async fn searches_with_the_lucene_subset() {
    let tenant = TestTenant::start();
    let table: &[(&str, &[&str])] = &[
        (r#"email:"alice@example.com""#, &["Alice@Example.com"]),
        ("email:ALICE@EXAMPLE.COM", &["Alice@Example.com"]),
        ("email:b*", &["bob@example.com"]),
        (
            "email.domain:example.com",
            &["Alice@Example.com", "bob@example.com", "carl@example.com"],
        ),
        (
            r#"app_metadata.groups:"admins""#,
            &[
                "Alice@Example.com",
                "carl@example.com",
                "dora@partner.example",
            ],
        ),
        (r#"app_metadata.groups:"Admins""#, &[]),
        (r#"app_metadata.plan.tier:gold"#, &["Alice@Example.com"]),
        (r#"user_metadata.theme:"dark""#, &["Alice@Example.com"]),
        (
            r#"app_metadata.groups:"admins" AND NOT blocked:true AND (identities.connection:"Username-Password-Authentication" OR identities.connection:"Other")"#,
            &["Alice@Example.com"],
        ),
        (
            r#"identities.connection:"Partners""#,
            &["dora@partner.example"],
        ),
        (r#"_exists_:username"#, &["Alice@Example.com"]),
        (
            r#"username:alice OR email:bob\@example.com"#,
            &["Alice@Example.com", "bob@example.com"],
        ),
        (
            r#"name:("bob@example.com" OR "carl@example.com")"#,
            &["bob@example.com", "carl@example.com"],
        ),
    ];
    for (q, expected) in table {
        let url = format!(
            "/api/v2/users?search_engine=v3&q={}",
            url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
        );
        let (status, users) = read(tenant.get(&url).await).await;
        assert_eq!(status, StatusCode::OK, "{q}: {users}");
        assert_eq!(emails(&users), *expected, "{q}");
    }
}

#[tokio::test]
async fn get_create_patch_delete() {
    let tenant = TestTenant::start();
    let (status, alice) = read(tenant.get("/api/v2/users/auth0%7Calice").await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(alice["email"], "Alice@Example.com");
    let (_, only) = read(tenant.get("/api/v2/users/auth0%7Calice?fields=email").await).await;
    assert_eq!(only, json!({"email": "Alice@Example.com"}));

    let response = tenant
        .call(
            Method::POST,
            "/api/v2/users",
            Some(json!({
                "email": "erin@example.com", "password": "Erin-passw0rd", "connection": DB,
                "given_name": "Erin", "user_metadata": {"lang": "en", "theme": "light"},
                "app_metadata": {"groups": ["editors"], "plan": "free"}
            })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    let created: Value = response.json().await.unwrap();
    let id = created["user_id"].as_str().unwrap().to_string();
    let local = id.strip_prefix("auth0|").unwrap();
    assert!(
        local.len() == 24 && local.chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );
    assert_eq!(created["email_verified"], false);
    assert_eq!(created["blocked"], false);
    assert_eq!(created["name"], "erin@example.com");
    assert_eq!(created["nickname"], "erin");
    assert_eq!(created["identities"][0]["connection"], DB);
    assert_eq!(created["created_at"], created["updated_at"]);
    assert!(created.get("password").is_none());
    let path = format!("/api/v2/users/{}", id.replace('|', "%7C"));

    let (status, patched) = read(
        tenant
            .call(
                Method::PATCH,
                &path,
                Some(json!({"given_name": null, "nickname": "ez",
                    "app_metadata": {"plan": "pro", "groups": null},
                    "user_metadata": {"lang": null}})),
            )
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(patched.get("given_name").is_none());
    assert_eq!(patched["nickname"], "ez");
    assert_eq!(patched["app_metadata"], json!({"plan": "pro"}));
    assert_eq!(patched["user_metadata"], json!({"theme": "light"}));
    assert!(patched["updated_at"].as_str() >= created["updated_at"].as_str());

    let (_, cleared) = read(
        tenant
            .call(
                Method::PATCH,
                &path,
                Some(json!({"user_metadata": {}, "password": "N3w-password"})),
            )
            .await,
    )
    .await;
    assert!(cleared.get("user_metadata").is_none());
    assert!(cleared["last_password_reset"].is_string());

    let response = tenant.call(Method::DELETE, &path, None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    assert_rate_limit_headers(&response);
    assert_eq!(response.text().await.unwrap(), "");
    assert_eq!(tenant.get(&path).await.status(), StatusCode::NOT_FOUND);
    // Deleting again is still a 204 (the OAS lists no 404 for this route).
    assert_eq!(
        tenant.call(Method::DELETE, &path, None).await.status(),
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn a_created_user_can_log_in_and_a_blocked_one_cannot() {
    let tenant = TestTenant::start();
    let response = tenant
        .call(
            Method::POST,
            "/api/v2/users",
            Some(json!({"email": "fay@example.com", "password": "Fay-passw0rd", "connection": DB})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let id: Value = response.json().await.unwrap();
    let login = || {
        tenant
            .http
            .post(tenant.url("/oauth/token"))
            .json(&json!({
                "grant_type": "http://auth0.com/oauth/grant-type/password-realm", "client_id": "login",
                "client_secret": "login-secret", "username": "fay@example.com", "password": "Fay-passw0rd",
                "realm": DB, "scope": "openid"
            }))
            .send()
    };
    assert_eq!(login().await.unwrap().status(), StatusCode::OK);
    let path = format!(
        "/api/v2/users/{}",
        id["user_id"].as_str().unwrap().replace('|', "%7C")
    );
    let response = tenant
        .call(Method::PATCH, &path, Some(json!({"blocked": true})))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_ne!(login().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn the_429_mode_of_the_control_api_applies_with_its_headers() {
    let tenant = TestTenant::start();
    let reset = 4_000_000_000_i64;
    tenant.emulator.set_rate_limit(Some(RateLimit {
        routes: vec!["/api/v2/*".into()],
        reset_at: Some(reset),
        reset_in_seconds: None,
        remaining: 0,
        retry_after: false,
        body: None,
        limited: 0,
    }));
    let response = tenant.get("/api/v2/users").await;
    assert_eq!(response.headers()["x-ratelimit-remaining"], "0");
    assert_eq!(
        response.headers()["x-ratelimit-reset"],
        reset.to_string().as_str()
    );
    assert_eq!(
        read(response).await,
        (
            StatusCode::TOO_MANY_REQUESTS,
            json!({"statusCode": 429, "error": "Too Many Requests", "message": "Global limit has been reached", "errorCode": "too_many_requests"})
        )
    );
    tenant.emulator.set_rate_limit(None);
    assert_eq!(tenant.get("/api/v2/users").await.status(), StatusCode::OK);
}

/// The documented errors of `/api/v2/users`, word for word (wire reference §2.2, §2.4, §2.5).
#[tokio::test]
async fn documented_errors_word_for_word() {
    let tenant = TestTenant::start();
    let existing = json!({"email": "bob@example.com", "password": "x", "connection": DB});
    let cases: Vec<(Method, &str, Option<Value>, u16, Value)> = vec![
        (
            Method::GET,
            "/api/v2/users/auth0%7Cnobody",
            None,
            404,
            json!({"statusCode": 404, "error": "Not Found", "message": "The user does not exist.", "errorCode": "inexistent_user"}),
        ),
        (
            Method::PATCH,
            "/api/v2/users/auth0%7Cnobody",
            Some(json!({"nickname": "x"})),
            404,
            json!({"statusCode": 404, "error": "Not Found", "message": "The user does not exist.", "errorCode": "inexistent_user"}),
        ),
        (
            Method::POST,
            "/api/v2/users",
            Some(existing),
            409,
            json!({"statusCode": 409, "error": "Conflict", "message": "The user already exists.", "errorCode": "auth0_idp_error"}),
        ),
        (
            Method::POST,
            "/api/v2/users",
            Some(json!({"email": "BOB@example.com", "password": "x", "connection": DB})),
            409,
            json!({"statusCode": 409, "error": "Conflict", "message": "The user already exists.", "errorCode": "auth0_idp_error"}),
        ),
        (
            Method::POST,
            "/api/v2/users",
            Some(json!({"email": "new@example.com", "password": "x"})),
            400,
            json!({"statusCode": 400, "error": "Bad Request", "message": "Payload validation error: 'Missing required property: connection'.", "errorCode": "invalid_body"}),
        ),
        (
            Method::POST,
            "/api/v2/users",
            Some(json!({"email": "x", "password": "x", "connection": DB})),
            400,
            json!({"statusCode": 400, "error": "Bad Request", "message": "Payload validation error: 'Object didn't pass validation for format email: x' on property email (The user's email).", "errorCode": "invalid_body"}),
        ),
        (
            Method::POST,
            "/api/v2/users",
            Some(json!({"email": "new@example.com", "password": "x", "connection": "Nope"})),
            400,
            json!({"statusCode": 400, "error": "Bad Request", "message": "Connection does not exist.", "errorCode": "inexistent_connection"}),
        ),
        (
            Method::PATCH,
            "/api/v2/users/auth0%7Calice",
            Some(json!({"password": "x", "email": "a@b.c"})),
            400,
            json!({"statusCode": 400, "error": "Bad Request", "message": "Cannot update password and email simultaneously.", "errorCode": "operation_not_supported"}),
        ),
        (
            Method::GET,
            "/api/v2/users?per_page=101",
            None,
            400,
            json!({"statusCode": 400, "error": "Bad Request", "message": "Query validation error: 'Value 101 is greater than maximum 100' on property per_page (Number of results per page).", "errorCode": "invalid_query_string"}),
        ),
        (
            Method::GET,
            "/api/v2/users?page=10&per_page=100",
            None,
            400,
            json!({"statusCode": 400, "error": "Bad Request", "message": "You can only page through the first 1000 records. See https://auth0.com/docs/users/search/v3/view-search-results-by-page#limitation.", "errorCode": "invalid_paging"}),
        ),
    ];
    for (method, path, body, status, expected) in cases {
        let response = tenant.call(method.clone(), path, body).await;
        assert_rate_limit_headers(&response);
        assert_eq!(
            response.headers()["content-type"],
            "application/json; charset=utf-8"
        );
        let text = response.text().await.unwrap();
        // Keys in Auth0's order: statusCode, error, message, errorCode.
        let actual: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            (actual["statusCode"].as_u64(), &actual),
            (Some(status as u64), &expected),
            "{method} {path}"
        );
        assert!(
            text.starts_with(&format!(r#"{{"statusCode":{status},"error":"#)),
            "{text}"
        );
    }
}

#[tokio::test]
async fn an_unparsable_query_is_a_400() {
    let tenant = TestTenant::start();
    for q in [
        r#"email:"open"#,
        "email:a AND",
        "(email:a",
        "name:*ab",
        "user_metadata.theme:da*",
    ] {
        let url = format!(
            "/api/v2/users?q={}",
            url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
        );
        let (status, body) = read(tenant.get(&url).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}");
        assert_eq!(body["errorCode"], "invalid_query_string", "{q}");
        assert_eq!(body["error"], "Bad Request");
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_is_hapis_400() {
    let tenant = TestTenant::start();
    let response = tenant
        .http
        .post(tenant.url("/api/v2/users"))
        .bearer_auth(&tenant.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        read(response).await,
        (
            StatusCode::BAD_REQUEST,
            json!({"statusCode": 400, "error": "Bad Request", "message": "Invalid request payload JSON format"})
        )
    );
}

#[tokio::test]
async fn the_thousand_result_window() {
    let mut seed = seed();
    seed.users = (0..1005)
        .map(|i| user(&format!("u{i:04}@bulk.example"), DB, json!({})))
        .collect();
    let tenant = TestTenant::with_seed(seed);
    let (status, page) = read(
        tenant
            .get("/api/v2/users?page=9&per_page=100&include_totals=true")
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (page["start"].as_u64(), page["length"].as_u64()),
        (Some(900), Some(100))
    );
    assert_eq!(page["total"], 1005);
    assert_eq!(
        tenant
            .get("/api/v2/users?page=20&per_page=50")
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
}
