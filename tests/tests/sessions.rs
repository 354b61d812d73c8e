//! Sessions end to end (SPEC §5, §7): password login, /userinfo, refresh, logout, against the
//! emulator, asserting what the daemon answered and what the emulator received.

use std::time::Duration;

use crate::testkit::{
    assert_error_body, eventually, fault, sample_value, set_cookie, sid_cookie, spawn_app,
    spawn_app_configured,
};
use auth0_emulator::Fault;
use auth0_emulator::seed::demo;
use futures_util::future::join_all;
use serde_json::{Value, json};

#[actix_rt::test]
async fn password_login_answers_tokens_and_sends_auth0_the_realm_scope_and_user_ip() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .header("client-type", "api")
        .header("x-forwarded-for", "203.0.113.7")
        .form(&[
            ("grant_type", "password"),
            ("username", demo::USER_EMAIL),
            ("password", demo::USER_PASSWORD),
            ("connection", demo::CONNECTION),
            ("login_site_version", "7"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    for field in ["accessToken", "refreshToken", "idToken"] {
        assert!(
            !tokens[field].as_str().unwrap().is_empty(),
            "{field}: {tokens}"
        );
    }
    let expire_at = tokens["expireAt"].as_str().unwrap();
    assert_eq!(
        expire_at.len(),
        "2021-07-16T08:28:24.568365226Z".len(),
        "{expire_at}"
    );
    assert!(expire_at.ends_with('Z'));

    let calls = app.emulator.requests_to("/oauth/token");
    assert_eq!(calls.len(), 1);
    let form = calls[0].form.clone().unwrap();
    assert_eq!(
        form["grant_type"],
        "http://auth0.com/oauth/grant-type/password-realm"
    );
    assert_eq!(form["realm"], demo::CONNECTION);
    assert_eq!(form["scope"], "openid offline_access profile email");
    assert_eq!(form["client_id"], demo::LOGIN_CLIENT_ID);
    assert!(!form.contains_key("login_site_version"));
    // The peer (loopback) is a trusted proxy, so the forwarded client address is the user's.
    assert_eq!(calls[0].headers["auth0-forwarded-for"], "203.0.113.7");
}

#[actix_rt::test]
async fn the_curl_lines_of_the_upstream_page_work_as_written() {
    // JSON body, the query string, and the default client: the variants callers use.
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .json(
            &json!({"grant_type": "password", "username": demo::USER_EMAIL,
            "password": demo::USER_PASSWORD, "connection": null, "code": ""}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    let response = app
        .client
        .post(app.url("/oauth/refreshtoken"))
        .header("content-type", "application/json")
        .header(
            "authorization",
            format!("Bearer {}", tokens["accessToken"].as_str().unwrap()),
        )
        .body(format!(
            r#"{{ "refresh_token": "{}" }}"#,
            tokens["refreshToken"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let query = format!(
        "/oauth/token?grant_type=password&username={}&password={}",
        demo::USER_EMAIL,
        demo::USER_PASSWORD
    );
    let response = app.client.post(app.url(&query)).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[actix_rt::test]
async fn website_login_sets_an_opaque_session_cookie() {
    let app = spawn_app().await;
    let response = app
        .login("web", demo::USER_EMAIL, demo::USER_PASSWORD)
        .await;
    assert_eq!(response.status(), 200);
    let cookie = set_cookie(&response, "sid").expect("Set-Cookie sid");
    let sid = sid_cookie(&response).unwrap();
    assert_eq!(sid.len(), 43, "256 bits in base64url: {sid}");
    assert!(!sid.contains('.'), "never a JWT: {sid}");
    for attribute in [
        "Path=/",
        "HttpOnly",
        "Secure",
        "Max-Age=86400",
        "SameSite=Lax",
    ] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(response.text().await.unwrap().is_empty());

    let response = app.userinfo_cookie(&sid).await;
    assert_eq!(response.status(), 200);
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["sub"], demo::USER_ID);
}

#[actix_rt::test]
async fn userinfo_shapes_the_claims_from_the_store_without_calling_auth0() {
    let app = spawn_app().await;
    let tokens = app.login_tokens().await;
    app.emulator.clear_requests();
    let access = tokens["accessToken"].as_str().unwrap();
    for _ in 0..3 {
        let response = app.userinfo_bearer(access).await;
        assert_eq!(response.status(), 200);
        let user: Value = response.json().await.unwrap();
        assert_eq!(user["sub"], demo::USER_ID);
        assert_eq!(user["email"], demo::USER_EMAIL);
        assert_eq!(user["groups"], json!(["users"]));
        assert_eq!(user["app_metadata"]["groups"], json!(["users"]));
        for hidden in ["iss", "aud", "iat", "exp", "nonce", "at_hash", "sid"] {
            assert!(user.get(hidden).is_none(), "{hidden} shown: {user}");
        }
    }
    assert!(
        app.emulator.requests().is_empty(),
        "{:?}",
        app.emulator.requests()
    );
    let legacy = app
        .client
        .get(app.url("/users/me"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(legacy.status(), 200);
}

#[actix_rt::test]
async fn auth0_refusals_map_to_403_429_and_502() {
    let app = spawn_app().await;
    let response = app.login("api", demo::USER_EMAIL, "wrong").await;
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_error_body(&body, 403, "Wrong email or password.");
    assert_eq!(body["errorCode"], "invalid_grant");

    app.emulator.set_blocked(demo::USER_EMAIL, true);
    let response = app
        .login("api", demo::USER_EMAIL, demo::USER_PASSWORD)
        .await;
    assert_eq!(response.status(), 403);
    app.emulator.set_blocked(demo::USER_EMAIL, false);

    app.emulator.add_fault(Fault {
        status: Some(429),
        body: Some(json!({"error": "too_many_requests", "error_description": "Slow down"})),
        headers: [("Retry-After".to_owned(), "17".to_owned())].into(),
        count: Some(1),
        ..fault("/oauth/token")
    });
    let response = app
        .login("api", demo::USER_EMAIL, demo::USER_PASSWORD)
        .await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "17");

    app.emulator
        .fail("/oauth/token", 503, json!({"error": "server_error"}), 1);
    let response = app
        .login("api", demo::USER_EMAIL, demo::USER_PASSWORD)
        .await;
    assert_eq!(response.status(), 502);
    assert_error_body(&response.json().await.unwrap(), 502, "");

    app.emulator.fail(
        "/oauth/token",
        401,
        json!({"error": "access_denied", "error_description": "Unauthorized"}),
        1,
    );
    let response = app
        .login("api", demo::USER_EMAIL, demo::USER_PASSWORD)
        .await;
    assert_eq!(
        response.status(),
        502,
        "our own credentials refused is a configuration error"
    );
}

#[actix_rt::test]
async fn slow_or_unreachable_auth0_is_504_or_502() {
    let app = spawn_app_configured(|c| c["server"]["auth0TimeoutMs"] = json!(300), &[]).await;
    app.emulator.add_fault(Fault {
        delay_ms: 1500,
        count: Some(1),
        ..fault("/oauth/token")
    });
    let response = app
        .login("api", demo::USER_EMAIL, demo::USER_PASSWORD)
        .await;
    assert_eq!(response.status(), 504);

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let app = spawn_app_configured(
        |c| c["clients"]["api"]["auth0Url"] = json!(format!("http://127.0.0.1:{port}")),
        &[],
    )
    .await;
    let response = app
        .login("api", demo::USER_EMAIL, demo::USER_PASSWORD)
        .await;
    assert_eq!(response.status(), 502);
}

#[actix_rt::test]
async fn refresh_rotates_and_keeps_old_tokens_working() {
    let app = spawn_app().await;
    let first = app.login_tokens().await;
    let (access, refresh) = (
        first["accessToken"].as_str().unwrap(),
        first["refreshToken"].as_str().unwrap(),
    );
    let response = app.refresh_bearer(access, refresh).await;
    assert_eq!(response.status(), 200);
    let second: Value = response.json().await.unwrap();
    assert_ne!(second["accessToken"], first["accessToken"]);
    assert_ne!(second["refreshToken"], first["refreshToken"], "rotation");

    // The old access token is still an alias of the session.
    assert_eq!(app.userinfo_bearer(access).await.status(), 200);
    // The previous refresh token within the grace window: the current tokens, no Auth0 call.
    let calls = app.token_calls().len();
    let response = app.refresh_bearer(access, refresh).await;
    assert_eq!(response.status(), 200);
    let again: Value = response.json().await.unwrap();
    assert_eq!(again["accessToken"], second["accessToken"]);
    assert_eq!(app.token_calls().len(), calls);
    // A refresh token that is neither: 401, the session kept.
    let response = app.refresh_bearer(access, "not-this-session's").await;
    assert_eq!(response.status(), 401);
    assert_eq!(app.userinfo_bearer(access).await.status(), 200);
}

#[actix_rt::test]
async fn fifty_concurrent_refreshes_make_one_auth0_call() {
    let app = spawn_app().await;
    let tokens = app.login_tokens().await;
    let access = tokens["accessToken"].as_str().unwrap().to_owned();
    let refresh = tokens["refreshToken"].as_str().unwrap().to_owned();
    app.emulator.clear_requests();
    app.emulator.add_fault(Fault {
        delay_ms: 300,
        ..fault("/oauth/token")
    });
    let answers = join_all((0..50).map(|_| app.refresh_bearer(&access, &refresh))).await;
    let mut access_tokens = std::collections::BTreeSet::new();
    for response in answers {
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        access_tokens.insert(body["accessToken"].as_str().unwrap().to_owned());
    }
    assert_eq!(access_tokens.len(), 1, "everyone got the same new tokens");
    // Stored before anyone was answered: the new token finds the session at once.
    let new_access = access_tokens.first().unwrap();
    assert_eq!(app.userinfo_bearer(new_access).await.status(), 200);
    let refreshes: Vec<_> = app
        .token_calls()
        .into_iter()
        .filter(|f| f["grant_type"] == "refresh_token")
        .collect();
    assert_eq!(refreshes.len(), 1);
}

#[actix_rt::test]
async fn userinfo_refreshes_an_expired_access_token_once_for_racing_callers() {
    let app = spawn_app().await;
    app.access_tokens_last(1);
    let tokens = app.login_tokens().await;
    let access = tokens["accessToken"].as_str().unwrap().to_owned();
    let refresh = tokens["refreshToken"].as_str().unwrap().to_owned();
    app.access_tokens_last(3600);
    app.clock.advance(Duration::from_millis(1200));
    app.emulator.clear_requests();
    // Bearer /userinfo, cookie-less explicit refresh and more /userinfo race each other.
    let userinfos = join_all((0..10).map(|_| app.userinfo_bearer(&access)));
    let explicit = app.refresh_bearer(&access, &refresh);
    let (userinfos, explicit) = tokio::join!(userinfos, explicit);
    for response in userinfos {
        assert_eq!(response.status(), 200);
    }
    assert_eq!(explicit.status(), 200);
    let refreshes = app
        .token_calls()
        .into_iter()
        .filter(|f| f["grant_type"] == "refresh_token")
        .count();
    assert_eq!(refreshes, 1);
    // The stored tokens are the new ones: no further refresh.
    assert_eq!(app.userinfo_bearer(&access).await.status(), 200);
    assert_eq!(app.token_calls().len(), 1);
}

#[actix_rt::test]
async fn a_non_rotating_client_keeps_its_refresh_token() {
    let app = spawn_app().await;
    let response = app
        .login("plain", demo::USER_EMAIL, demo::USER_PASSWORD)
        .await;
    assert_eq!(response.status(), 200);
    let first: Value = response.json().await.unwrap();
    let response = app
        .refresh_bearer(
            first["accessToken"].as_str().unwrap(),
            first["refreshToken"].as_str().unwrap(),
        )
        .await;
    assert_eq!(response.status(), 200);
    let second: Value = response.json().await.unwrap();
    assert_eq!(second["refreshToken"], first["refreshToken"]);
    assert_ne!(second["accessToken"], first["accessToken"]);
}

#[actix_rt::test]
async fn invalid_grant_ends_the_session_but_an_outage_keeps_it() {
    let app = spawn_app().await;
    let tokens = app.login_tokens().await;
    let access = tokens["accessToken"].as_str().unwrap();
    let refresh = tokens["refreshToken"].as_str().unwrap();

    app.emulator
        .fail("/oauth/token", 503, json!({"error": "server_error"}), 1);
    let response = app.refresh_bearer(access, refresh).await;
    assert_eq!(response.status(), 502);
    assert_eq!(
        app.userinfo_bearer(access).await.status(),
        200,
        "nobody is logged out by an outage"
    );

    app.emulator.fail(
        "/oauth/token",
        403,
        json!({"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."}),
        1,
    );
    let response = app.refresh_bearer(access, refresh).await;
    assert_eq!(response.status(), 401);
    assert_eq!(app.userinfo_bearer(access).await.status(), 401);
}

#[actix_rt::test]
async fn cookie_and_bearer_refreshes_of_one_session_share_one_flight() {
    let app = spawn_app().await;
    app.access_tokens_last(1);
    let response = app
        .login("web", demo::USER_EMAIL, demo::USER_PASSWORD)
        .await;
    let sid = sid_cookie(&response).unwrap();
    app.access_tokens_last(3600);
    app.clock.advance(Duration::from_millis(1200));
    app.emulator.clear_requests();
    app.emulator.add_fault(Fault {
        delay_ms: 200,
        ..fault("/oauth/token")
    });
    let cookies = join_all((0..5).map(|_| app.refresh_cookie(&sid)));
    let userinfos = join_all((0..5).map(|_| app.userinfo_cookie(&sid)));
    let (cookies, userinfos) = tokio::join!(cookies, userinfos);
    for response in cookies.into_iter().chain(userinfos) {
        assert_eq!(response.status(), 200);
    }
    assert_eq!(app.token_calls().len(), 1, "one refresh for every caller");
}

#[actix_rt::test]
async fn cookie_refresh_reissues_the_cookie() {
    let app = spawn_app().await;
    let sid = app.login_cookie().await;
    let response = app.refresh_cookie(&sid).await;
    assert_eq!(response.status(), 200);
    let cookie = set_cookie(&response, "sid").unwrap();
    assert!(cookie.contains("Max-Age=86400"), "{cookie}");
    assert_eq!(sid_cookie(&response).unwrap(), sid);
}

#[actix_rt::test]
async fn logout_ends_the_session_revokes_and_redirects_to_auth0() {
    let app = spawn_app().await;
    let sid = app.login_cookie().await;
    // Read once, so a copy kept for the read path must be dropped by the logout.
    assert_eq!(app.userinfo_cookie(&sid).await.status(), 200);
    let response = app
        .client
        .get(app.url("/logout?redirect=/web-login?redirect=/backoffice"))
        .header("cookie", format!("sid={sid}"))
        .header("x-forwarded-host", "app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let expected = format!(
        "{}/v2/logout?returnTo=https%3A%2F%2Fapp.example%2Fweb-login%3Fredirect%3D%2Fbackoffice",
        app.emulator.base_url()
    );
    assert_eq!(location, expected);
    let cleared = set_cookie(&response, "sid").unwrap();
    assert!(cleared.starts_with("sid=;"), "{cleared}");
    assert!(cleared.contains("Expires="), "{cleared}");
    assert!(!cleared.contains("Max-Age"), "{cleared}");
    // The clearing cookie keeps the client's SameSite (the web client is Lax), so the browser
    // replaces the cookie it holds.
    assert!(cleared.contains("SameSite=Lax"), "{cleared}");
    assert_eq!(app.userinfo_cookie(&sid).await.status(), 401);
    // The revocation runs in the background.
    eventually(
        "the refresh token revoked at Auth0",
        Duration::from_millis(2_500),
        async || !app.emulator.requests_to("/oauth/revoke").is_empty(),
    )
    .await;
    assert_eq!(app.emulator.requests_to("/oauth/revoke").len(), 1);

    // Without a redirect, no returnTo; with AUTH0_LOGOUT_CLIENT_ID_ENABLED, client_id.
    let response = app.get("/logout").await;
    assert_eq!(response.status(), 302);
    assert_eq!(
        response.headers()["location"].to_str().unwrap(),
        format!("{}/v2/logout", app.emulator.base_url())
    );
}

#[actix_rt::test]
async fn logout_refuses_open_redirects_and_bad_hosts() {
    let app = spawn_app_configured(
        |c| c["server"]["allowedHosts"] = json!(["app.example"]),
        &[],
    )
    .await;
    for redirect in [
        "//evil.example",
        "/\\evil.example",
        "https://evil.example",
        "/%2F%2Fevil.example",
        "/%252F%252Fevil.example",
        "%2F%2Fevil.example",
        "/%5Cevil.example",
        "javascript:alert(1)",
    ] {
        let response = app
            .client
            .get(app.url("/logout"))
            .query(&[("redirect", redirect)])
            .header("x-forwarded-host", "app.example")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{redirect}");
        assert_error_body(&response.json().await.unwrap(), 400, "redirect");
    }
    let response = app
        .client
        .get(app.url("/logout?redirect=/home"))
        .header("x-forwarded-host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[actix_rt::test]
async fn bad_input_is_a_4xx_naming_the_problem() {
    let app = spawn_app().await;
    let post = |body: &'static str, content_type: &'static str| {
        app.client
            .post(app.url("/oauth/token"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let cases = [
        (
            post("{not json", "application/json").await.unwrap(),
            400,
            "malformed JSON",
        ),
        (
            post("[1,2]", "application/json").await.unwrap(),
            400,
            "object",
        ),
        (
            post(
                r#"{"grant_type":"password","username":7}"#,
                "application/json",
            )
            .await
            .unwrap(),
            400,
            "username",
        ),
        (
            post(
                "grant_type=password&password=x",
                "application/x-www-form-urlencoded",
            )
            .await
            .unwrap(),
            400,
            "username",
        ),
        (
            post(
                "grant_type=password&username=x",
                "application/x-www-form-urlencoded",
            )
            .await
            .unwrap(),
            400,
            "password",
        ),
        (
            post(
                "grant_type=client_credentials",
                "application/x-www-form-urlencoded",
            )
            .await
            .unwrap(),
            400,
            "grant_type",
        ),
        (
            post("grant_type=password", "text/plain").await.unwrap(),
            415,
            "Content-Type",
        ),
        (
            post("code=abc", "application/x-www-form-urlencoded")
                .await
                .unwrap(),
            400,
            "state",
        ),
        (
            post(
                "code=abc&state=never-issued",
                "application/x-www-form-urlencoded",
            )
            .await
            .unwrap(),
            400,
            "state",
        ),
    ];
    for (response, status, needle) in cases {
        assert_eq!(response.status(), status, "{needle}");
        assert_error_body(&response.json().await.unwrap(), status, needle);
    }
    let big = "x".repeat(70 * 1024);
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .form(&[("grant_type", "password"), ("username", big.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);

    let response = app
        .client
        .post(app.url("/oauth/token"))
        .header("client-type", "nobody")
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_error_body(&response.json().await.unwrap(), 401, "nobody");

    let response = app
        .login("api", demo::USER_EMAIL, demo::USER_PASSWORD)
        .await;
    let tokens: Value = response.json().await.unwrap();
    let access = tokens["accessToken"].as_str().unwrap();
    // A forged token, a token of an ended session, no credential at all.
    assert_eq!(
        app.userinfo_bearer("eyJhbGciOiJub25lIn0.e30.")
            .await
            .status(),
        401
    );
    assert_eq!(app.get("/userinfo").await.status(), 401);
    assert_eq!(app.userinfo_cookie("not-a-session-id").await.status(), 401);
    // The session used with another client.
    let response = app
        .client
        .get(app.url("/userinfo"))
        .bearer_auth(access)
        .header("client-type", "web")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // A Bearer refresh without its refresh token; another session's refresh token.
    let response = app
        .client
        .post(app.url("/refreshtoken"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_error_body(&response.json().await.unwrap(), 400, "refresh_token");
    let other = app.login_tokens().await;
    let response = app
        .refresh_bearer(access, other["refreshToken"].as_str().unwrap())
        .await;
    assert_eq!(response.status(), 401);
}

#[actix_rt::test]
async fn api_keys_pick_the_client_and_guard_management_routes() {
    let app = spawn_app_configured(
        |c| {
            c["apiKeys"] = json!([
                {"key": "web-key", "clientType": "web"},
                {"key": "admin-key", "clientType": "api", "management": true}
            ])
        },
        &[],
    )
    .await;
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .header("secret", "web-key")
        .form(&[
            ("grant_type", "password"),
            ("username", demo::USER_EMAIL),
            ("password", demo::USER_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        sid_cookie(&response).is_some(),
        "the web client answers with the cookie"
    );
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .header("secret", "wrong-key")
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_error_body(&response.json().await.unwrap(), 401, "not valid");
    let response = app
        .client
        .get(app.url("/users/active"))
        .header("client-key", "web-key")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = app
        .client
        .get(app.url("/users/active"))
        .header("cookie", "mia_client_key=admin-key")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let users: Value = response.json().await.unwrap();
    assert_eq!(users, json!([{"userId": demo::USER_ID}]));
}

#[actix_rt::test]
async fn expired_sessions_are_never_returned() {
    let app = spawn_app_configured(|_| {}, &[("SESSION_DURATION_SECONDS", "1")]).await;
    let tokens = app.login_tokens().await;
    let access = tokens["accessToken"].as_str().unwrap();
    assert_eq!(app.userinfo_bearer(access).await.status(), 200);
    app.clock.advance(Duration::from_millis(1100));
    assert_eq!(app.userinfo_bearer(access).await.status(), 401);
}

#[actix_rt::test]
async fn metrics_and_check_up_cover_auth0_and_sessions() {
    let app = spawn_app().await;
    app.login_tokens().await;
    let text = app.get("/-/metrics").await.text().await.unwrap();
    assert!(
        text.contains(
            r#"auth0_client_auth0_requests_total{endpoint="/oauth/token",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains("auth0_client_sessions_live"), "{text}");
    // The login's session was a durable write, carried by a flush of the group commit.
    let counter =
        |name: &str| sample_value(&text, name).unwrap_or_else(|| panic!("no {name} in {text}"));
    let flushes = counter("auth0_client_store_flushes_total");
    let writes = counter("auth0_client_store_flushed_writes_total");
    assert!(
        flushes >= 1.0 && writes >= flushes,
        "{flushes} flushes, {writes} writes"
    );

    let (status, body) = app.get_json("/-/check-up").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.get_json("/-/ready").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["store"], "OK");

    // The JWKS check-up fails when the tenant's keys cannot be fetched.
    let app = spawn_app_configured(
        |c| c["clients"]["api"]["auth0Url"] = json!("http://127.0.0.1:9"),
        &[],
    )
    .await;
    let (status, body) = app.get_json("/-/check-up").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "KO");
}
