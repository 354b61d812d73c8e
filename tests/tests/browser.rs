//! The flows browsers drive, in a real headless Chromium (issue 12): `/authorize`, the emulator's
//! login form, the callback with its binding cookie, `/userinfo` with the `sid` cookie, a website
//! client's password login from a same-site page and its refusal from a cross-site one, and the
//! logout round trip back to the site. The browser, not a hand-built request, decides what
//! happens to `SameSite`, `Secure` and `__Host-` cookies.
//!
//! The daemon is set up like `auth0-client demo`: its clients' `redirectUrl` is its own
//! `http://127.0.0.1:PORT/oauth/callback`, and the emulator, like a tenant, allows exactly that
//! callback and `http://127.0.0.1:PORT/` as a logout URL. `defaultClient` is the `website` client
//! (`SameSite=Lax`), since a browser's form cannot send the `client-type` header. Cookies ignore
//! ports, so the cross-site page comes from `localhost`, the daemon from `127.0.0.1`.

use actix_web::{App, HttpResponse, HttpServer, web};
use auth0_emulator::seed::demo;
use serde_json::json;

use crate::chromedriver::{Browser, free_port};
use crate::testkit::{TestApp, spawn_app_configured, test_seed};

/// The daemon of a standalone site on `127.0.0.1`, plain http (`server.insecureCookies`) unless
/// `secure`.
async fn spawn_site(secure: bool) -> TestApp {
    let port = free_port();
    let origin = format!("http://127.0.0.1:{port}");
    let callback = format!("{origin}/oauth/callback");
    let app = spawn_app_configured(
        |config| {
            for client in ["api", "web", "plain"] {
                config["clients"][client]["redirectUrl"] = callback.clone().into();
            }
            // Like the demo's `website` client.
            config["clients"]["web"]["scopes"] =
                json!(["offline_access", "profile", "email", "website"]);
            config["defaultClient"] = "web".into();
            config["server"]["insecureCookies"] = (!secure).into();
            // The site is 127.0.0.1 on any port: its own pages may post logins; `localhost`'s not.
            config["server"]["allowedHosts"] = json!(["127.0.0.1"]);
        },
        &[("HTTP_PORT", &port.to_string())],
    )
    .await;
    assert_eq!(app.port, port);
    let mut seed = test_seed();
    let login = seed
        .clients
        .iter_mut()
        .find(|c| c.client_id == demo::LOGIN_CLIENT_ID)
        .unwrap();
    login.callbacks = vec![callback];
    login.logout_urls = vec![format!("{origin}/")];
    app.emulator.reseed(&seed).unwrap();
    app
}

/// A cookie's `SameSite` as the browser reports it (`""` when it has none).
fn same_site(cookie: &fantoccini::cookies::Cookie<'_>) -> String {
    cookie
        .same_site()
        .map(|s| s.to_string())
        .unwrap_or_default()
}

/// Whether `url` is the daemon's `path`.
fn at_daemon(app: &TestApp, url: &reqwest::Url, path: &str) -> bool {
    url.host_str() == Some("127.0.0.1") && url.port() == Some(app.port) && url.path() == path
}

/// The browser login: `/authorize?redirect=<redirect>`, the emulator's form filled and submitted
/// with the demo user, the callback, and the landing on `redirect`. Checks the binding cookie the
/// browser holds while on the form and the `sid` cookie it holds at the end, and returns the
/// latter.
async fn browser_login(
    browser: &Browser,
    app: &TestApp,
    redirect: &str,
    secure: bool,
) -> fantoccini::cookies::Cookie<'static> {
    let emulator_port = reqwest::Url::parse(app.emulator.base_url())
        .unwrap()
        .port()
        .unwrap();
    browser
        .goto(&app.url(&format!("/authorize?redirect={redirect}")))
        .await;
    browser
        .wait_for_url("the emulator's login form", |url| {
            url.port() == Some(emulator_port) && url.path() == "/authorize"
        })
        .await;
    browser.find("form input[name=username]").await;

    // On the form, the browser holds one cookie for 127.0.0.1 (the emulator's own SSO cookie
    // comes after the login): the daemon's binding of this login, a secret nobody can plant.
    let cookies = browser.cookies().await;
    assert_eq!(
        cookies.len(),
        1,
        "the browser should hold exactly the login's binding cookie: {cookies:?}"
    );
    let binding = &cookies[0];
    assert!(
        binding.value() != "1" && binding.value().len() >= 22,
        "the binding cookie must hold a random secret (at least 128 bits), not {:?}",
        binding.value()
    );
    assert_eq!(binding.http_only(), Some(true), "{binding:?}");
    assert_eq!(binding.path(), Some("/"), "{binding:?}");
    if secure {
        assert_eq!(binding.secure(), Some(true), "{binding:?}");
        assert!(
            binding.name().starts_with("__Host-"),
            "a Secure binding cookie carries the `__Host-` prefix: {binding:?}"
        );
    }

    browser.fill("input[name=username]", demo::USER_EMAIL).await;
    browser
        .fill("input[name=password]", demo::USER_PASSWORD)
        .await;
    browser.click("button[type=submit]").await;
    let path = redirect.split('?').next().unwrap();
    let landed = browser
        .wait_for_url(&format!("the login's redirect {redirect}"), |url| {
            at_daemon(app, url, path)
        })
        .await;
    assert_eq!(landed, app.url(redirect));

    let cookies = browser.cookies().await;
    let names: Vec<&str> = cookies.iter().map(|c| c.name()).collect();
    let mut daemon_cookies: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| *n != auth0_emulator::authentication::authorize::SSO_COOKIE)
        .collect();
    daemon_cookies.sort_unstable();
    assert_eq!(
        daemon_cookies,
        ["sid"],
        "after the callback the browser holds the session cookie and no binding cookie: {cookies:?}"
    );
    let sid = cookies.into_iter().find(|c| c.name() == "sid").unwrap();
    assert_eq!(sid.http_only(), Some(true), "{sid:?}");
    assert_eq!(sid.path(), Some("/"), "{sid:?}");
    assert_eq!(same_site(&sid), "Lax", "{sid:?}");
    assert_eq!(sid.secure().unwrap_or(false), secure, "{sid:?}");
    assert!(sid.value().len() >= 43, "{sid:?}");
    sid
}

/// `/userinfo` in the browser, which must show the demo user's claims.
async fn userinfo_shows_the_demo_user(browser: &Browser, app: &TestApp) {
    browser.goto(&app.url("/userinfo")).await;
    let claims = browser.json().await;
    assert_eq!(claims["sub"], demo::USER_ID, "{claims}");
    assert_eq!(claims["email"], demo::USER_EMAIL, "{claims}");
    assert!(claims["groups"].is_array(), "{claims}");
    assert!(claims.get("nonce").is_none(), "{claims}");
}

/// `/userinfo` in the browser, which must refuse: there is no session.
async fn userinfo_refuses(browser: &Browser, app: &TestApp) {
    browser.goto(&app.url("/userinfo")).await;
    let body = browser.json().await;
    assert_eq!(body["statusCode"], 401, "{body}");
}

#[actix_rt::test]
async fn a_browser_logs_in_through_the_emulator_form_and_reads_userinfo() {
    let app = spawn_site(false).await;
    let browser = Browser::start().await;
    browser_login(&browser, &app, "/somewhere?tab=1", false).await;
    userinfo_shows_the_demo_user(&browser, &app).await;
    // The code exchange happened once, server to server, with the daemon's callback.
    let exchanges: Vec<_> = app
        .token_calls()
        .into_iter()
        .filter(|f| f.get("grant_type").map(String::as_str) == Some("authorization_code"))
        .collect();
    assert_eq!(exchanges.len(), 1, "{exchanges:?}");
    assert_eq!(
        exchanges[0].get("redirect_uri"),
        Some(&app.url("/oauth/callback"))
    );
    browser.close().await;
}

#[actix_rt::test]
async fn a_browser_keeps_secure_and_host_prefixed_cookies_on_127_0_0_1() {
    // Without `server.insecureCookies` every cookie is `Secure` and the binding cookie is
    // `__Host-`: Chromium takes them from http://127.0.0.1, a secure context, and sends them back.
    let app = spawn_site(true).await;
    let browser = Browser::start().await;
    browser_login(&browser, &app, "/", true).await;
    userinfo_shows_the_demo_user(&browser, &app).await;
    browser.close().await;
}

/// A site's page with a password-login form posting to the daemon's `/oauth/token`, served on
/// `127.0.0.1`; reached as `localhost` it is another site. Returns its port.
fn serve_login_page(daemon: &str) -> u16 {
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Log in</title></head><body>\
         <form method=\"post\" action=\"{daemon}/oauth/token\">\
         <input type=\"hidden\" name=\"grant_type\" value=\"password\">\
         <label>Email <input name=\"username\"></label>\
         <label>Password <input name=\"password\" type=\"password\"></label>\
         <button id=\"login\" type=\"submit\">Log in</button></form></body></html>"
    );
    let server = HttpServer::new(move || {
        let page = page.clone();
        App::new().default_service(web::to(move || {
            let page = page.clone();
            async move {
                HttpResponse::Ok()
                    .content_type("text/html; charset=utf-8")
                    .body(page)
            }
        }))
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .unwrap();
    let port = server.addrs()[0].port();
    actix_rt::spawn(server.run());
    port
}

/// Opens the login page at `page`, fills it with the demo user and submits it; returns once the
/// browser shows the daemon's answer.
async fn submit_password_form(browser: &Browser, app: &TestApp, page: &str) {
    browser.goto(page).await;
    browser.fill("input[name=username]", demo::USER_EMAIL).await;
    browser
        .fill("input[name=password]", demo::USER_PASSWORD)
        .await;
    browser.click("#login").await;
    browser
        .wait_for_url("the daemon's /oauth/token answer", |url| {
            at_daemon(app, url, "/oauth/token")
        })
        .await;
}

fn password_logins(app: &TestApp) -> usize {
    app.token_calls()
        .iter()
        .filter(|f| f.get("grant_type").is_some_and(|g| g.contains("password")))
        .count()
}

#[actix_rt::test]
async fn a_website_password_login_works_from_a_same_site_page_and_is_refused_from_a_cross_site_one()
{
    let app = spawn_site(false).await;
    let page_port = serve_login_page(&app.address);

    // Cross-site: a page on `localhost` makes the browser post the login. Refused, before any
    // Auth0 call, and the browser holds no session.
    let browser = Browser::start().await;
    submit_password_form(&browser, &app, &format!("http://localhost:{page_port}/")).await;
    let body = browser.json().await;
    assert_eq!(body["statusCode"], 403, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        browser.cookie("sid").await.is_none(),
        "a cross-site login left a session cookie"
    );
    assert_eq!(password_logins(&app), 0, "the refused login reached Auth0");
    userinfo_refuses(&browser, &app).await;
    browser.close().await;

    // Same site (127.0.0.1, another port): the login sets the session cookie.
    let browser = Browser::start().await;
    submit_password_form(&browser, &app, &format!("http://127.0.0.1:{page_port}/")).await;
    assert_eq!(
        browser.text().await,
        "",
        "a website login answers an empty body"
    );
    let sid = browser
        .cookie("sid")
        .await
        .expect("a same-site website login sets the sid cookie");
    assert_eq!(sid.http_only(), Some(true), "{sid:?}");
    assert_eq!(same_site(&sid), "Lax", "{sid:?}");
    assert_eq!(password_logins(&app), 1);
    userinfo_shows_the_demo_user(&browser, &app).await;
    browser.close().await;
}

#[actix_rt::test]
async fn logout_sends_the_browser_through_the_emulator_back_to_the_plain_http_site() {
    let app = spawn_site(false).await;
    let browser = Browser::start().await;
    browser_login(&browser, &app, "/", false).await;
    userinfo_shows_the_demo_user(&browser, &app).await;

    browser.goto(&app.url("/logout?redirect=/")).await;
    let landed = browser
        .wait_for_url("the site after the logout", |url| {
            url.scheme() == "chrome-error" || at_daemon(&app, url, "/")
        })
        .await;
    let logouts = app.emulator.requests_to("/v2/logout");
    assert_eq!(
        logouts.len(),
        1,
        "the browser went through the emulator's /v2/logout once: {logouts:?}"
    );
    assert_eq!(
        landed,
        app.url("/"),
        "the browser must come back to the plain-http site (/v2/logout?{})",
        logouts[0].query
    );
    assert!(
        browser.cookie("sid").await.is_none(),
        "the sid cookie survived the logout"
    );
    userinfo_refuses(&browser, &app).await;
    browser.close().await;
}
