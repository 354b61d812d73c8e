//! Login state end to end (issue 12): logins in progress are capped per end-user IP and in total
//! (429 with `Retry-After`, counted until a state is taken or expires), and a login's binding
//! cookie holds a secret that nobody can plant, required on every step of the daemon's own
//! callback and of the code exchange of its states.

use std::time::Duration;

use crate::authorize::{
    CALLBACK, Started, code_and_state, login_at_auth0, spawn_standalone, start_login,
};
use crate::testkit::{
    TestApp, assert_error_body, binding_cookie, location, query_param, set_cookie, sid_cookie,
    spawn_app, spawn_app_configured,
};
use auth0_emulator::seed::demo;
use serde_json::{Value, json};

/// `GET /authorize` for `client` as the end user at `ip` (the daemon's peer is loopback, a
/// trusted proxy, so `X-Forwarded-For` names the user).
async fn authorize_from(app: &TestApp, ip: &str, query: &[(&str, &str)]) -> reqwest::Response {
    app.client
        .get(app.url("/authorize"))
        .header("client-type", "api")
        .header("x-forwarded-for", ip)
        .query(query)
        .send()
        .await
        .unwrap()
}

/// Asserts `response` is the 429 of a cap, naming `key`, and returns its `Retry-After`.
async fn assert_capped(response: reqwest::Response, key: &str) -> u64 {
    assert_eq!(response.status(), 429);
    assert!(response.headers().get("location").is_none());
    assert!(binding_cookie(&response).is_none(), "no cookie either");
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_error_body(&body, 429, key);
    assert_eq!(body["error"], "Too Many Requests");
    retry_after
}

/// The daemon with the `sessions` settings `caps` (on the login-site deployment).
async fn spawn_capped(caps: Value) -> TestApp {
    spawn_app_configured(|config| config["sessions"] = caps, &[]).await
}

#[actix_rt::test]
async fn the_per_ip_cap_answers_429_until_that_ips_oldest_login_expires() {
    let app = spawn_capped(json!({"maxPendingLoginsPerIp": 3, "maxPendingLogins": 100})).await;
    for _ in 0..3 {
        let response = authorize_from(&app, "198.51.100.1", &[]).await;
        assert_eq!(response.status(), 302);
        app.clock.advance(Duration::from_secs(10));
    }
    // The oldest was started 30 s ago and lives 600 s.
    let retry_after = assert_capped(
        authorize_from(&app, "198.51.100.1", &[]).await,
        "maxPendingLoginsPerIp",
    )
    .await;
    assert!((568..=570).contains(&retry_after), "{retry_after}");
    // Another address is not affected, nor is a request without a forwarded address.
    assert_eq!(
        authorize_from(&app, "198.51.100.2", &[]).await.status(),
        302
    );
    assert_eq!(app.authorize(Some("api"), &[]).await.status(), 302);
    // A state that was never stored is not counted: the address is still at its cap.
    assert_eq!(
        authorize_from(&app, "198.51.100.1", &[]).await.status(),
        429
    );

    // Once the oldest expires, one more login may start, and no more.
    app.clock.advance(Duration::from_secs(retry_after));
    assert_eq!(
        authorize_from(&app, "198.51.100.1", &[]).await.status(),
        302
    );
    let retry_after = assert_capped(
        authorize_from(&app, "198.51.100.1", &[]).await,
        "maxPendingLoginsPerIp",
    )
    .await;
    assert!((8..=10).contains(&retry_after), "{retry_after}");
    // Nothing refused reached Auth0's side either: the redirects were never followed.
    assert!(app.emulator.requests_to("/authorize").is_empty());
}

#[actix_rt::test]
async fn the_total_cap_answers_429_until_the_oldest_login_of_all_expires() {
    let app = spawn_capped(json!({"maxPendingLogins": 3, "maxPendingLoginsPerIp": 10})).await;
    for ip in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        assert_eq!(authorize_from(&app, ip, &[]).await.status(), 302, "{ip}");
        app.clock.advance(Duration::from_secs(100));
    }
    let retry_after = assert_capped(
        authorize_from(&app, "203.0.113.4", &[]).await,
        "maxPendingLogins`",
    )
    .await;
    assert!((298..=300).contains(&retry_after), "{retry_after}");
    app.clock.advance(Duration::from_secs(retry_after));
    assert_eq!(authorize_from(&app, "203.0.113.4", &[]).await.status(), 302);
    assert_eq!(authorize_from(&app, "203.0.113.5", &[]).await.status(), 429);
}

#[actix_rt::test]
async fn an_expired_login_leaves_the_count() {
    let app = spawn_capped(json!({"maxPendingLoginsPerIp": 1, "stateTtlSeconds": 60})).await;
    assert_eq!(authorize_from(&app, "192.0.2.7", &[]).await.status(), 302);
    let retry_after = assert_capped(authorize_from(&app, "192.0.2.7", &[]).await, "PerIp").await;
    assert!((59..=60).contains(&retry_after), "{retry_after}");
    app.clock.advance(Duration::from_secs(59));
    assert_eq!(authorize_from(&app, "192.0.2.7", &[]).await.status(), 429);
    app.clock.advance(Duration::from_millis(1_100));
    assert_eq!(authorize_from(&app, "192.0.2.7", &[]).await.status(), 302);
}

/// `POST /oauth/token?code&state` for `client`, with `cookie` when given (a browser's request).
async fn exchange(
    app: &TestApp,
    client: &str,
    back: &str,
    cookie: Option<&str>,
) -> reqwest::Response {
    let (code, state) = code_and_state(back);
    let mut request = app
        .client
        .post(app.url("/oauth/token"))
        .header("client-type", client)
        .query(&[("code", &code), ("state", &state)]);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.unwrap()
}

/// Asserts loopback's one login in progress is counted: a new one is 429.
async fn full(app: &TestApp) {
    assert_eq!(app.authorize(Some("web"), &[]).await.status(), 429);
}

#[actix_rt::test]
async fn a_taken_login_leaves_the_count_on_every_route_and_a_refused_one_does_not() {
    // One login at a time from loopback; `plain` keeps the login site's redirectUrl.
    let app = spawn_standalone(|config| {
        config["sessions"] = json!({"maxPendingLoginsPerIp": 1});
    })
    .await;

    // The callback.
    let (back, cookie) = login_at_auth0(&app, Some("web"), &[]).await;
    full(&app).await;
    assert_eq!(app.callback(&back, None).await.status(), 403);
    full(&app).await;
    assert_eq!(app.callback(&back, Some(&cookie)).await.status(), 302);

    // Auth0's error, through the callback.
    let Started { to_auth0, cookie } = start_login(&app, Some("web"), &[("prompt", "none")]).await;
    full(&app).await;
    let back = app.emulator_redirect(&to_auth0).await;
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("login_required")
    );
    let response = app.callback(&back, Some(&cookie)).await;
    assert_eq!(response.status(), 302);
    assert!(location(&response).contains("error=login_required"));

    // The code exchange of an own-callback state, with its binding.
    let (back, cookie) = login_at_auth0(&app, Some("web"), &[]).await;
    full(&app).await;
    assert_eq!(exchange(&app, "web", &back, None).await.status(), 403);
    full(&app).await;
    assert_eq!(
        exchange(&app, "web", &back, Some(&cookie)).await.status(),
        200
    );

    // The code exchange of a login site's state.
    let (back, _) = login_at_auth0(&app, Some("plain"), &[]).await;
    full(&app).await;
    assert_eq!(exchange(&app, "plain", &back, None).await.status(), 200);

    start_login(&app, Some("web"), &[]).await;
    full(&app).await;
    assert_eq!(app.token_calls().len(), 3);
}

#[actix_rt::test]
async fn a_planted_constant_cookie_is_refused_and_the_owner_still_logs_in() {
    let app = spawn_standalone(|_| {}).await;
    let (back, cookie) = login_at_auth0(&app, Some("web"), &[("redirect", "/mine")]).await;
    let (name, secret) = cookie.split_once('=').unwrap();
    assert!(name.starts_with("__Host-auth0_client_login_"), "{name}");
    assert_eq!(secret.len(), 43, "256 bits, base64url: {secret}");
    assert_ne!(secret, "1");

    // What the old daemon accepted: the constant `1` under the state's cookie name, which a
    // parent domain could plant. And the bare name, which the `__Host-` prefix replaces.
    let bare = name.strip_prefix("__Host-").unwrap();
    for planted in [
        format!("{name}=1"),
        format!("{bare}={secret}"),
        format!("{name}={}", "A".repeat(43)),
    ] {
        let response = app.callback(&back, Some(&planted)).await;
        assert_eq!(response.status(), 403, "{planted}");
        assert!(sid_cookie(&response).is_none());
        let body: Value = response.json().await.unwrap();
        assert_error_body(&body, 403, "login cookie");
    }
    let response = app.callback(&back, Some(&format!("{name}=1"))).await;
    let body: Value = response.json().await.unwrap();
    assert_error_body(&body, 403, "does not match");
    let response = app.callback(&back, None).await;
    let body: Value = response.json().await.unwrap();
    assert_error_body(&body, 403, "is missing");
    assert!(app.token_calls().is_empty(), "the code was not spent");

    // The browser that started it, even with a planted cookie beside the real one.
    let response = app
        .callback(&back, Some(&format!("{name}=1; {cookie}")))
        .await;
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), "/mine");
    let sid = sid_cookie(&response).unwrap();
    assert_eq!(app.userinfo_cookie(&sid).await.status(), 200);
    let cleared = set_cookie(&response, name).unwrap();
    assert!(cleared.starts_with(&format!("{name}=;")), "{cleared}");
}

#[actix_rt::test]
async fn the_code_exchange_needs_the_binding_of_an_own_callback_state_only() {
    // Standalone: a leaked callback URL (code and state) logs nobody in through /oauth/token.
    let app = spawn_standalone(|_| {}).await;
    let (back, cookie) = login_at_auth0(&app, Some("api"), &[("redirect", "/x")]).await;
    assert!(back.starts_with(CALLBACK), "{back}");
    let (name, _) = cookie.split_once('=').unwrap();
    for planted in [None, Some(format!("{name}=1"))] {
        let response = exchange(&app, "api", &back, planted.as_deref()).await;
        assert_eq!(response.status(), 403, "{planted:?}");
        let body: Value = response.json().await.unwrap();
        assert_error_body(&body, 403, "bound to the browser");
        assert!(
            body["message"].as_str().unwrap().contains("`api`"),
            "{body}"
        );
    }
    assert!(app.token_calls().is_empty());
    // The state stayed usable: the owner's browser exchanges it.
    let response = exchange(&app, "api", &back, Some(&cookie)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(location(&response), "/x");
    let tokens: Value = response.json().await.unwrap();
    assert!(
        tokens["accessToken"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    // Spent: a second use is 400, with or without the cookie.
    let response = exchange(&app, "api", &back, Some(&cookie)).await;
    assert_eq!(response.status(), 400);

    // Behind a login site: the server-to-server exchange needs no cookie.
    let app = spawn_app().await;
    let (back, _) = login_at_auth0(&app, Some("api"), &[]).await;
    assert_eq!(exchange(&app, "api", &back, None).await.status(), 200);
}

#[actix_rt::test]
async fn auth0s_error_needs_the_binding_too() {
    let app = spawn_standalone(|_| {}).await;
    let Started { to_auth0, cookie } = start_login(
        &app,
        Some("web"),
        &[("redirect", "/app"), ("prompt", "none")],
    )
    .await;
    let back = app.emulator_redirect(&to_auth0).await;
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("login_required")
    );
    let (name, _) = cookie.split_once('=').unwrap();
    for planted in [None, Some(format!("{name}=1"))] {
        let response = app.callback(&back, planted.as_deref()).await;
        assert_eq!(response.status(), 403, "{planted:?}");
        assert!(response.headers().get("location").is_none());
        let body: Value = response.json().await.unwrap();
        assert_error_body(&body, 403, "did not start the login");
    }
    // The state is still there for its owner.
    let response = app.callback(&back, Some(&cookie)).await;
    assert_eq!(response.status(), 302);
    assert!(
        location(&response).starts_with("/app?error=login_required"),
        "{}",
        location(&response)
    );
    assert_eq!(app.callback(&back, Some(&cookie)).await.status(), 400);
}

#[actix_rt::test]
async fn the_binding_cookie_has_the_host_prefix_unless_cookies_are_insecure() {
    let app = spawn_standalone(|_| {}).await;
    let response = app.authorize(Some("web"), &[]).await;
    let set = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(set.starts_with("__Host-auth0_client_login_"), "{set}");
    for attribute in ["Secure", "Path=/", "HttpOnly", "SameSite=Lax"] {
        assert!(set.contains(attribute), "{attribute} in {set}");
    }
    assert!(!set.to_ascii_lowercase().contains("domain"), "{set}");

    let app = spawn_standalone(|config| config["server"]["insecureCookies"] = true.into()).await;
    let response = app.authorize(Some("web"), &[("redirect", "/plain")]).await;
    let set = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(set.starts_with("auth0_client_login_"), "{set}");
    assert!(!set.contains("Secure"), "{set}");
    // The whole login works with it.
    let cookie = binding_cookie(&response).unwrap();
    let back = app
        .emulator_login(&location(&response), demo::USER_EMAIL, demo::USER_PASSWORD)
        .await;
    let response = app.callback(&back, Some(&cookie)).await;
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), "/plain");
    // The prefixed name is not what an insecure deployment looks for.
    let (_, secret) = cookie.split_once('=').unwrap();
    let (back, cookie) = login_at_auth0(&app, Some("web"), &[]).await;
    let prefixed = format!("__Host-{}", cookie.split_once('=').unwrap().0);
    let response = app
        .callback(&back, Some(&format!("{prefixed}={secret}")))
        .await;
    assert_eq!(response.status(), 403);
}

#[actix_rt::test]
async fn several_sid_cookies_are_refused_not_guessed() {
    let app = spawn_app().await;
    let mine = app.login_cookie().await;
    let tossed = app.login_cookie().await;
    assert_ne!(mine, tossed);
    let both = format!("sid={tossed}; sid={mine}");
    for path in ["/userinfo", "/users/me"] {
        let response = app
            .client
            .get(app.url(path))
            .header("cookie", &both)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_error_body(&body, 400, "`sid`");
    }
    let response = app
        .client
        .post(app.url("/refreshtoken"))
        .header("cookie", &both)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    // In two headers too, as HTTP/2 sends them.
    let response = app
        .client
        .get(app.url("/userinfo"))
        .header("cookie", format!("sid={tossed}"))
        .header("cookie", format!("theme=dark; sid={mine}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    // One of them is fine.
    assert_eq!(app.userinfo_cookie(&mine).await.status(), 200);
}

#[actix_rt::test]
async fn a_login_keeps_a_redirect_of_at_most_2_kib() {
    let app = spawn_app().await;
    let longest = format!("/{}", "a".repeat(2047));
    for field in ["redirect", "redirectUri"] {
        let response = app
            .authorize(Some("api"), &[(field, &format!("{longest}b"))])
            .await;
        assert_eq!(response.status(), 400, "{field}");
        let body: Value = response.json().await.unwrap();
        assert_error_body(&body, 400, &format!("`{field}`"));
        assert_error_body(&body, 400, "2048");
    }
    let Started { to_auth0, .. } = start_login(&app, Some("api"), &[("redirect", &longest)]).await;
    let back = app
        .emulator_login(&to_auth0, demo::USER_EMAIL, demo::USER_PASSWORD)
        .await;
    let response = exchange(&app, "api", &back, None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(location(&response), longest);
}
