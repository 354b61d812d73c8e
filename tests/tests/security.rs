//! Hostile browsers (issue 12): a page of another site may not log a browser in, nor renew or
//! end its session (login CSRF). Server-to-server callers and token clients are unaffected.
//!
//! In-process tests connect from 127.0.0.1, a trusted proxy by default, so `X-Forwarded-Host`
//! is believed.

use serde_json::{Value, json};

use crate::testkit::{
    TestApp, assert_error_body, set_cookie, sid_cookie, spawn_app, spawn_app_configured,
};

/// `POST /refreshtoken` with the `sid` cookie and `headers`.
async fn refresh_cookie_with(
    app: &TestApp,
    sid: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/refreshtoken"))
        .header("cookie", format!("sid={sid}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// `GET <path>` (a logout) with the `sid` cookie, when given, and `headers`.
async fn get_with(
    app: &TestApp,
    path: &str,
    sid: Option<&str>,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = app.client.get(app.url(path));
    if let Some(sid) = sid {
        request = request.header("cookie", format!("sid={sid}"));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// The `grant_type` of every `/oauth/token` call Auth0 received.
fn grants(app: &TestApp) -> Vec<String> {
    app.token_calls()
        .into_iter()
        .filter_map(|form| form.get("grant_type").cloned())
        .collect()
}

/// The header forms of a cross-site request, each with the reason the answer must name.
fn cross_site_forms(port: u16) -> Vec<(Vec<(&'static str, String)>, String)> {
    vec![
        (
            vec![("sec-fetch-site", "cross-site".to_owned())],
            "Sec-Fetch-Site is cross-site".to_owned(),
        ),
        (
            vec![("origin", "https://evil.example".to_owned())],
            "Origin \"https://evil.example\" is neither this site's host nor in `server.allowedHosts`"
                .to_owned(),
        ),
        (
            vec![("origin", "null".to_owned())],
            "Origin is null".to_owned(),
        ),
        // Cookies ignore ports, so the real attack comes from another host name: `localhost`
        // against `127.0.0.1`, even when the browser thinks it same-site.
        (
            vec![
                ("sec-fetch-site", "same-site".to_owned()),
                ("origin", format!("http://localhost:{port}")),
            ],
            format!("Origin \"http://localhost:{port}\" is neither"),
        ),
        // A sibling site the browser calls same-site, without an Origin to show it is this one.
        (
            vec![("sec-fetch-site", "same-site".to_owned())],
            "Sec-Fetch-Site is same-site and no Origin".to_owned(),
        ),
    ]
}

fn borrowed<'h>(headers: &'h [(&'static str, String)]) -> Vec<(&'static str, &'h str)> {
    headers.iter().map(|(n, v)| (*n, v.as_str())).collect()
}

#[actix_rt::test]
async fn cross_site_cookie_logins_are_refused_with_403_naming_the_reason() {
    let app = spawn_app().await;
    for (headers, reason) in cross_site_forms(app.port) {
        let response = app.login_with("web", &borrowed(&headers)).await;
        assert_eq!(response.status(), 403, "{headers:?}");
        assert_eq!(set_cookie(&response, "sid"), None, "{headers:?}");
        let body: Value = response.json().await.unwrap();
        assert_error_body(&body, 403, "a cross-site page may not log a browser in: ");
        assert_error_body(&body, 403, &reason);
    }
    // Refused before Auth0 was asked: no password reached it.
    assert!(grants(&app).is_empty(), "{:?}", app.token_calls());
}

#[actix_rt::test]
async fn same_site_and_server_to_server_cookie_logins_pass() {
    let app = spawn_app().await;
    let own = app.address.clone();
    for headers in [
        // Server to server: neither header.
        vec![],
        vec![("sec-fetch-site", "same-origin"), ("origin", own.as_str())],
        vec![("sec-fetch-site", "same-site"), ("origin", own.as_str())],
        vec![("sec-fetch-site", "none")],
        vec![("origin", own.as_str())],
    ] {
        let response = app.login_with("web", &headers).await;
        assert_eq!(response.status(), 200, "{headers:?}");
        assert!(sid_cookie(&response).is_some(), "{headers:?}");
    }
}

#[actix_rt::test]
async fn token_clients_are_not_held_to_the_cross_site_rule() {
    // Their answer is token JSON to the caller, not a cookie in the browser.
    let app = spawn_app().await;
    for (headers, _) in cross_site_forms(app.port) {
        let response = app.login_with("api", &borrowed(&headers)).await;
        assert_eq!(response.status(), 200, "{headers:?}");
        let body: Value = response.json().await.unwrap();
        assert!(body["accessToken"].as_str().is_some_and(|t| !t.is_empty()));
    }
}

#[actix_rt::test]
async fn an_origin_in_allowed_hosts_may_log_a_browser_in() {
    let app = spawn_app_configured(
        |c| c["server"]["allowedHosts"] = json!(["127.0.0.1", "login.example"]),
        &[],
    )
    .await;
    let response = app
        .login_with("web", &[("origin", "https://login.example")])
        .await;
    assert_eq!(response.status(), 200);
    assert!(sid_cookie(&response).is_some());
    let response = app
        .login_with("web", &[("origin", "https://evil.example")])
        .await;
    assert_eq!(response.status(), 403);
}

#[actix_rt::test]
async fn behind_a_trusted_proxy_the_origin_is_compared_with_the_forwarded_host() {
    let app = spawn_app().await;
    let proxied = |origin: &'static str| [("x-forwarded-host", "app.example"), ("origin", origin)];
    let response = app.login_with("web", &proxied("https://app.example")).await;
    assert_eq!(response.status(), 200);
    // The daemon's own address is not the site the user sees behind the proxy.
    let own = app.address.clone();
    let response = app
        .login_with(
            "web",
            &[
                ("x-forwarded-host", "app.example"),
                ("origin", own.as_str()),
            ],
        )
        .await;
    assert_eq!(response.status(), 403);
    // A client's own element of X-Forwarded-Host is not the public host.
    let response = app
        .login_with(
            "web",
            &[
                ("x-forwarded-host", "evil.example, app.example"),
                ("origin", "https://evil.example"),
            ],
        )
        .await;
    assert_eq!(response.status(), 403);
}

#[actix_rt::test]
async fn a_cross_site_cookie_refresh_is_refused_and_the_session_untouched() {
    let app = spawn_app().await;
    let sid = app.login_cookie().await;
    for (headers, reason) in cross_site_forms(app.port) {
        let response = refresh_cookie_with(&app, &sid, &borrowed(&headers)).await;
        assert_eq!(response.status(), 403, "{headers:?}");
        assert_eq!(set_cookie(&response, "sid"), None, "{headers:?}");
        let body: Value = response.json().await.unwrap();
        assert_error_body(
            &body,
            403,
            "a cross-site page may not refresh a browser's session: ",
        );
        assert_error_body(&body, 403, &reason);
    }
    assert!(
        !grants(&app).iter().any(|g| g == "refresh_token"),
        "Auth0 was asked to refresh: {:?}",
        app.token_calls()
    );
    assert_eq!(app.userinfo_cookie(&sid).await.status(), 200);

    // The same refresh from the site itself works.
    let response = refresh_cookie_with(&app, &sid, &[("sec-fetch-site", "same-origin")]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(sid_cookie(&response).as_deref(), Some(sid.as_str()));

    // A Bearer refresh is the caller's own token, whatever page it runs in.
    let tokens = app.login_tokens().await;
    let response = app
        .client
        .post(app.url("/refreshtoken"))
        .bearer_auth(tokens["accessToken"].as_str().unwrap())
        .header("sec-fetch-site", "cross-site")
        .json(&json!({"refresh_token": tokens["refreshToken"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[actix_rt::test]
async fn a_cross_site_logout_is_refused_and_ends_nothing() {
    let app = spawn_app().await;
    let sid = app.login_cookie().await;
    for (headers, reason) in cross_site_forms(app.port) {
        let response = get_with(&app, "/logout?redirect=/", Some(&sid), &borrowed(&headers)).await;
        assert_eq!(response.status(), 403, "{headers:?}");
        assert_eq!(set_cookie(&response, "sid"), None, "the cookie is kept");
        let body: Value = response.json().await.unwrap();
        assert_error_body(
            &body,
            403,
            "a cross-site page may not end a browser's session: ",
        );
        assert_error_body(&body, 403, &reason);
    }
    assert_eq!(app.userinfo_cookie(&sid).await.status(), 200);
    assert!(app.emulator.requests_to("/oauth/revoke").is_empty());

    // From the site itself (or typed in the address bar) the logout goes through.
    let response = get_with(
        &app,
        "/logout?redirect=/",
        Some(&sid),
        &[("sec-fetch-site", "none")],
    )
    .await;
    assert_eq!(response.status(), 302);
    assert_eq!(app.userinfo_cookie(&sid).await.status(), 401);

    // With no session to end, a cross-site logout is only a redirect.
    let response = get_with(
        &app,
        "/logout",
        Some(&sid),
        &[("sec-fetch-site", "cross-site")],
    )
    .await;
    assert_eq!(response.status(), 302);

    // A Bearer logout is not the browser's cookie: not held to the rule.
    let tokens = app.login_tokens().await;
    let access_token = tokens["accessToken"].as_str().unwrap();
    let response = app
        .client
        .get(app.url("/logout"))
        .bearer_auth(access_token)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(app.userinfo_bearer(access_token).await.status(), 401);
}
