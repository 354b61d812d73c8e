//! Forwarding headers (issue 12): believed only from the proxies `server.trustedProxies` names
//! (loopback by default), walked from the right, and an unlisted proxy reported; a plain-http
//! deployment's logout comes back over http.
//!
//! In-process tests connect from 127.0.0.1, a trusted proxy by default; an untrusted peer is a
//! config with `server.trustedProxies: []`.

use serde_json::{Value, json};

use crate::testkit::{
    TestApp, assert_error_body, assert_proxies_warning, location, query_param, spawn_app,
    spawn_app_configured,
};

/// `GET <path>` with the `sid` cookie, when given, and `headers`.
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

/// The `returnTo` of a logout's redirect to Auth0.
fn return_to(response: &reqwest::Response) -> Option<String> {
    query_param(&location(response), "returnTo")
}

#[actix_rt::test]
async fn forwarded_for_from_an_untrusted_peer_is_ignored_and_reported() {
    let app = spawn_app_configured(|c| c["server"]["trustedProxies"] = json!([]), &[]).await;
    let (status, body) = app.get_json("/-/check-up").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["proxies"], "OK");

    let response = app
        .login_with("api", &[("x-forwarded-for", "203.0.113.7")])
        .await;
    assert_eq!(response.status(), 200);
    let calls = app.emulator.requests_to("/oauth/token");
    assert_eq!(calls.len(), 1);
    // Auth0 sees the peer, not the address the request claims.
    assert_eq!(calls[0].headers["auth0-forwarded-for"], "127.0.0.1");

    // A forwarded host is ignored too: the returnTo is built on Host.
    let response = get_with(
        &app,
        "/logout?redirect=/home",
        None,
        &[("client-type", "api"), ("x-forwarded-host", "evil.example")],
    )
    .await;
    assert_eq!(response.status(), 302);
    assert_eq!(
        return_to(&response).as_deref(),
        Some(format!("https://127.0.0.1:{}/home", app.port).as_str())
    );

    // A warning: the daemon works, so the check-up stays 200 OK (SPEC §8).
    let proxies = assert_proxies_warning(&app, "127.0.0.1").await;
    assert!(proxies.contains("server.trustedProxies"), "{proxies}");
    // Each peer once, however many requests.
    assert_eq!(proxies.matches("127.0.0.1").count(), 1, "{proxies}");
}

#[actix_rt::test]
async fn a_listed_proxy_is_believed_and_its_own_values_read() {
    let app = spawn_app().await;
    // Loopback is listed by default: the first untrusted hop from the right is the user.
    let response = app
        .login_with("api", &[("x-forwarded-for", "6.6.6.6, 203.0.113.7")])
        .await;
    assert_eq!(response.status(), 200);
    let calls = app.emulator.requests_to("/oauth/token");
    assert_eq!(calls[0].headers["auth0-forwarded-for"], "203.0.113.7");

    // X-Forwarded-Host and -Proto: the value the proxy set (rightmost), not the client's first.
    for (headers, want) in [
        (
            vec![("x-forwarded-host", "evil.example, app.example")],
            "https://app.example/home",
        ),
        (
            vec![
                ("x-forwarded-host", "evil.example"),
                ("x-forwarded-host", "app.example"),
            ],
            "https://app.example/home",
        ),
        (
            vec![
                ("x-forwarded-host", "app.example"),
                ("x-forwarded-proto", "http, https"),
            ],
            "https://app.example/home",
        ),
        (
            vec![
                ("x-forwarded-host", "app.example:8443"),
                ("x-forwarded-proto", "https, http"),
            ],
            "http://app.example:8443/home",
        ),
    ] {
        let mut request = app
            .client
            .get(app.url("/logout?redirect=/home"))
            .header("client-type", "api");
        for (name, value) in &headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 302, "{headers:?}");
        assert_eq!(return_to(&response).as_deref(), Some(want), "{headers:?}");
    }
    // Nothing untrusted was seen.
    let (status, body) = app.get_json("/-/check-up").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["proxies"], "OK");
}

#[actix_rt::test]
async fn a_forwarded_host_outside_allowed_hosts_is_400() {
    let app = spawn_app_configured(
        |c| c["server"]["allowedHosts"] = json!(["app.example"]),
        &[],
    )
    .await;
    for forwarded in ["evil.example", "app.example, evil.example"] {
        let response = get_with(
            &app,
            "/logout?redirect=/",
            None,
            &[("client-type", "api"), ("x-forwarded-host", forwarded)],
        )
        .await;
        assert_eq!(response.status(), 400, "{forwarded}");
        let body: Value = response.json().await.unwrap();
        assert_error_body(
            &body,
            400,
            "host `evil.example` (from the `X-Forwarded-Host` header) is not in `server.allowedHosts`",
        );
    }
    // The proxy's own value is allowed, whatever the client put before it.
    let response = get_with(
        &app,
        "/logout?redirect=/",
        None,
        &[
            ("client-type", "api"),
            ("x-forwarded-host", "evil.example, app.example"),
        ],
    )
    .await;
    assert_eq!(response.status(), 302);
    assert_eq!(
        return_to(&response).as_deref(),
        Some("https://app.example/")
    );
}

#[actix_rt::test]
async fn a_plain_http_deployment_logs_out_back_over_http() {
    // The demo's settings: plain http, declared with insecureCookies.
    let app = spawn_app_configured(|c| c["server"]["insecureCookies"] = json!(true), &[]).await;
    let sid = app.login_cookie().await;
    let response = get_with(&app, "/logout?redirect=/", Some(&sid), &[]).await;
    assert_eq!(response.status(), 302);
    assert_eq!(
        return_to(&response).as_deref(),
        Some(format!("http://127.0.0.1:{}/", app.port).as_str())
    );
    assert_eq!(app.userinfo_cookie(&sid).await.status(), 401);

    // A trusted proxy that says https is believed.
    let response = get_with(
        &app,
        "/logout?redirect=/",
        None,
        &[
            ("client-type", "api"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "app.example"),
        ],
    )
    .await;
    assert_eq!(
        return_to(&response).as_deref(),
        Some("https://app.example/")
    );

    // Without insecureCookies the same logout is https.
    let app = spawn_app().await;
    let response = get_with(&app, "/logout?redirect=/", None, &[("client-type", "api")]).await;
    assert_eq!(
        return_to(&response).as_deref(),
        Some(format!("https://127.0.0.1:{}/", app.port).as_str())
    );
}
