//! The authorization-code flow end to end (SPEC §5): `GET /authorize`, the code exchange in
//! `POST /oauth/token` (behind a login site) and `GET /oauth/callback` (standalone), against the
//! emulator's login, asserting what the daemon answered and what the emulator received.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::testkit::{
    TestApp, assert_error_body, binding_cookie, location, query_param, set_cookie, sid_cookie,
    spawn_app, spawn_app_configured, test_seed,
};
use auth0_client::login::state::pkce_challenge;
use auth0_emulator::seed::demo;
use futures_util::future::join;
use serde_json::{Value, json};

/// `redirectUrl` of the login-site deployment (`emulator_config`'s).
pub(crate) const LOGIN_SITE_CALLBACK: &str = "https://app.example/web-login/callback";
/// `redirectUrl` of the standalone deployment: the daemon's own callback behind its proxy.
pub(crate) const CALLBACK: &str = "https://auth.example/oauth/callback";

/// Every query parameter of `url`, which must not repeat any.
fn params(url: &str) -> BTreeMap<String, String> {
    let url = reqwest::Url::parse(url).unwrap();
    let mut params = BTreeMap::new();
    for (key, value) in url.query_pairs() {
        let repeated = params.insert(key.to_string(), value.into_owned());
        assert!(repeated.is_none(), "{key} repeated in {url}");
    }
    params
}

/// `url` with parameter `name` set to `value` (a browser, or an attacker, editing it).
fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut url = reqwest::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == name {
                value.into()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url.to_string()
}

/// Makes the emulator check `redirect_uri` against `callback`, as a tenant's Allowed Callback
/// URLs do.
pub(crate) fn allow_only_callback(app: &TestApp, callback: &str) {
    let mut seed = test_seed();
    let login = seed
        .clients
        .iter_mut()
        .find(|c| c.client_id == demo::LOGIN_CLIENT_ID)
        .unwrap();
    login.callbacks = vec![callback.into()];
    app.emulator.reseed(&seed).unwrap();
}

/// The standalone deployment: `redirectUrl` is the daemon's `/oauth/callback`.
pub(crate) async fn spawn_standalone(change: impl FnOnce(&mut Value)) -> TestApp {
    let app = spawn_app_configured(
        |config| {
            for client in ["api", "web"] {
                config["clients"][client]["redirectUrl"] = CALLBACK.into();
            }
            change(config);
        },
        &[],
    )
    .await;
    allow_only_callback(&app, CALLBACK);
    app
}

/// A login started at `/authorize`: where the browser goes next, and the login-binding cookie
/// (`name=value`) it was given.
pub(crate) struct Started {
    pub to_auth0: String,
    pub cookie: String,
}

/// `GET /authorize`, which must redirect to the emulator and set the binding cookie.
pub(crate) async fn start_login(
    app: &TestApp,
    client: Option<&str>,
    query: &[(&str, &str)],
) -> Started {
    let response = app.authorize(client, query).await;
    let status = response.status();
    if status != 302 {
        panic!(
            "/authorize answered {status}: {}",
            response.text().await.unwrap()
        );
    }
    let to_auth0 = location(&response);
    assert!(
        to_auth0.starts_with(&format!("{}/authorize?", app.emulator.base_url())),
        "{to_auth0}"
    );
    let cookie = binding_cookie(&response).expect("a login-binding cookie");
    Started { to_auth0, cookie }
}

/// Starts a login and logs the demo user in at the emulator; returns Auth0's redirect back and
/// the browser's binding cookie.
pub(crate) async fn login_at_auth0(
    app: &TestApp,
    client: Option<&str>,
    query: &[(&str, &str)],
) -> (String, String) {
    let Started { to_auth0, cookie } = start_login(app, client, query).await;
    let back = app
        .emulator_login(&to_auth0, demo::USER_EMAIL, demo::USER_PASSWORD)
        .await;
    (back, cookie)
}

/// The `code` and `state` of Auth0's redirect back.
pub(crate) fn code_and_state(back: &str) -> (String, String) {
    (
        query_param(back, "code").unwrap_or_else(|| panic!("no code in {back}")),
        query_param(back, "state").unwrap(),
    )
}

async fn json_body(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

/// Asserts the one `/oauth/token` call the emulator received is the code exchange of `code`
/// with the verifier of `challenge`, and returns its form.
fn assert_one_code_exchange(
    app: &TestApp,
    code: &str,
    redirect_uri: &str,
    challenge: &str,
) -> BTreeMap<String, String> {
    let calls = app.token_calls();
    assert_eq!(calls.len(), 1, "{calls:#?}");
    let form = calls[0].clone();
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["code"], code);
    assert_eq!(form["redirect_uri"], redirect_uri);
    assert_eq!(form["client_id"], demo::LOGIN_CLIENT_ID);
    assert_eq!(form["client_secret"], demo::LOGIN_CLIENT_SECRET);
    let verifier = &form["code_verifier"];
    assert!(verifier.len() >= 43, "{verifier}");
    assert_eq!(pkce_challenge(verifier), challenge, "S256 of the verifier");
    form
}

#[actix_rt::test]
async fn behind_a_login_site_a_website_client_gets_the_cookie_and_the_location() {
    let app = spawn_app_configured(
        |config| config["clients"]["web"]["authorizeStateRequired"] = true.into(),
        &[],
    )
    .await;
    allow_only_callback(&app, LOGIN_SITE_CALLBACK);

    let response = app
        .authorize(
            Some("web"),
            &[
                ("redirect", "/backoffice?tab=users"),
                ("state", "site-state-1"),
                ("prompt", "login"),
                ("action", "signup"),
            ],
        )
        .await;
    assert_eq!(response.status(), 302);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let to_auth0 = location(&response);
    let sent = params(&to_auth0);
    assert_eq!(
        sent.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "action",
            "client_id",
            "code_challenge",
            "code_challenge_method",
            "connection",
            "nonce",
            "prompt",
            "redirect_uri",
            "response_type",
            "scope",
            "state"
        ]
    );
    assert_eq!(sent["response_type"], "code");
    assert_eq!(sent["client_id"], demo::LOGIN_CLIENT_ID);
    assert_eq!(sent["redirect_uri"], LOGIN_SITE_CALLBACK);
    assert_eq!(
        sent["scope"], "openid offline_access",
        "`website` is not sent"
    );
    assert_eq!(sent["state"], "site-state-1", "the login site's state");
    assert_eq!(sent["code_challenge_method"], "S256");
    assert_eq!(sent["code_challenge"].len(), 43);
    assert!(sent["nonce"].len() >= 43);
    assert_eq!(sent["connection"], demo::CONNECTION, "the one supported");
    assert_eq!(sent["prompt"], "login");
    assert_eq!(sent["action"], "signup");

    let back = app
        .emulator_login(&to_auth0, demo::USER_EMAIL, demo::USER_PASSWORD)
        .await;
    assert!(back.starts_with(LOGIN_SITE_CALLBACK), "{back}");
    let (code, state) = code_and_state(&back);
    assert_eq!(state, "site-state-1");

    let response = app.exchange_code("web", &code, &state).await;
    assert_eq!(response.status(), 200);
    assert_eq!(location(&response), "/backoffice?tab=users");
    let cookie = set_cookie(&response, "sid").unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let sid = sid_cookie(&response).unwrap();
    assert_eq!(response.text().await.unwrap(), "");

    let me = json_body(app.userinfo_cookie(&sid).await).await;
    assert_eq!(me["sub"], demo::USER_ID);
    assert_one_code_exchange(&app, &code, LOGIN_SITE_CALLBACK, &sent["code_challenge"]);

    // The emulator's /authorize got the daemon's parameters as they were.
    let seen = app.emulator.requests_to("/authorize");
    assert_eq!(seen.len(), 1);
    let seen = params(&format!("http://x/?{}", seen[0].query));
    assert_eq!(seen["nonce"], sent["nonce"]);
    assert_eq!(seen["code_challenge"], sent["code_challenge"]);
}

#[actix_rt::test]
async fn behind_a_login_site_a_json_client_gets_tokens_and_the_location() {
    let app = spawn_app_configured(
        |config| config["clients"]["api"]["audience"] = demo::API.into(),
        &[],
    )
    .await;
    // Without `authorizeStateRequired` the caller's state is ignored and one generated.
    let Started { to_auth0, .. } = start_login(
        &app,
        Some("api"),
        &[("redirectUri", "/home"), ("state", "ignored")],
    )
    .await;
    let sent = params(&to_auth0);
    assert_ne!(sent["state"], "ignored");
    assert_eq!(sent["state"].len(), 43);
    assert_eq!(sent["audience"], demo::API);
    assert_eq!(sent["scope"], "openid offline_access profile email");

    let back = app
        .emulator_login(&to_auth0, demo::USER_EMAIL, demo::USER_PASSWORD)
        .await;
    let (code, state) = code_and_state(&back);
    assert_eq!(state, sent["state"]);
    let response = app.exchange_code("api", &code, &state).await;
    assert_eq!(response.status(), 200);
    assert_eq!(location(&response), "/home");
    assert!(set_cookie(&response, "sid").is_none());
    let tokens = json_body(response).await;
    for field in ["accessToken", "refreshToken", "idToken", "expireAt"] {
        assert!(
            !tokens[field].as_str().unwrap().is_empty(),
            "{field}: {tokens}"
        );
    }
    let me = json_body(
        app.userinfo_bearer(tokens["accessToken"].as_str().unwrap())
            .await,
    )
    .await;
    assert_eq!(me["sub"], demo::USER_ID);
    assert_eq!(me["groups"], json!(["users"]));
    assert_one_code_exchange(&app, &code, LOGIN_SITE_CALLBACK, &sent["code_challenge"]);
}

#[actix_rt::test]
async fn standalone_a_website_client_lands_on_its_redirect_with_the_cookie() {
    let app = spawn_standalone(|_| {}).await;
    let Started { to_auth0, cookie } =
        start_login(&app, Some("web"), &[("redirect", "/after?x=1")]).await;
    assert_eq!(params(&to_auth0)["redirect_uri"], CALLBACK);
    let back = app
        .emulator_login(&to_auth0, demo::USER_EMAIL, demo::USER_PASSWORD)
        .await;
    assert!(back.starts_with(&format!("{CALLBACK}?")), "{back}");

    let response = app.callback(&back, Some(&cookie)).await;
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), "/after?x=1");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let cookie = set_cookie(&response, "sid").unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("Secure") && cookie.contains("Path=/"),
        "{cookie}"
    );
    let sid = sid_cookie(&response).unwrap();
    let me = json_body(app.userinfo_cookie(&sid).await).await;
    assert_eq!(me["sub"], demo::USER_ID);
    let (code, _) = code_and_state(&back);
    assert_one_code_exchange(&app, &code, CALLBACK, &params(&to_auth0)["code_challenge"]);
}

#[actix_rt::test]
async fn standalone_a_json_client_also_gets_the_cookie_and_lands_on_the_root() {
    // The default client, `api`, has no `website` scope: a browser still needs the cookie.
    let app = spawn_standalone(|_| {}).await;
    let (back, cookie) = login_at_auth0(&app, None, &[]).await;
    let response = app.callback(&back, Some(&cookie)).await;
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), "/");
    let sid = sid_cookie(&response).unwrap();
    let me = json_body(app.userinfo_cookie(&sid).await).await;
    assert_eq!(me["sub"], demo::USER_ID);
    assert_eq!(app.token_calls().len(), 1);
}

#[actix_rt::test]
async fn the_emulators_login_form_completes_a_browser_login() {
    // What a person does with the URL `auth0-client demo` prints: the form, then the callback.
    let app = spawn_standalone(|_| {}).await;
    let Started { to_auth0, cookie } = start_login(&app, None, &[("redirect", "/userinfo")]).await;
    let page = app.client.get(&to_auth0).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let transaction = html
        .split("name=\"state\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no login transaction in {html}"))
        .to_owned();
    let posted = app
        .client
        .post(format!("{}/u/login", app.emulator.base_url()))
        .form(&[
            ("state", transaction.as_str()),
            ("username", demo::USER_EMAIL),
            ("password", demo::USER_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 302);
    let response = app.callback(&location(&posted), Some(&cookie)).await;
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), "/userinfo");
    let sid = sid_cookie(&response).unwrap();
    assert_eq!(app.userinfo_cookie(&sid).await.status(), 200);
}

#[actix_rt::test]
async fn the_callback_opens_a_session_only_in_the_browser_that_started_the_login() {
    let app = spawn_standalone(|_| {}).await;
    let response = app.authorize(Some("web"), &[("redirect", "/mine")]).await;
    assert_eq!(response.status(), 302);
    let set = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("__Host-auth0_client_login_"))
        .unwrap();
    for attribute in [
        "HttpOnly",
        "SameSite=Lax",
        "Secure",
        "Path=/",
        "Max-Age=600",
    ] {
        assert!(set.contains(attribute), "{attribute} in {set}");
    }
    let state = query_param(&location(&response), "state").unwrap();
    assert!(!set.contains(&state), "the cookie does not carry the state");
    let cookie = binding_cookie(&response).unwrap();
    let back = app
        .emulator_login(&location(&response), demo::USER_EMAIL, demo::USER_PASSWORD)
        .await;

    // The attacker's link, opened in the victim's browser: no cookie, or another login's.
    let (_, other_cookie) = login_at_auth0(&app, Some("web"), &[]).await;
    for cookie in [None, Some(other_cookie.as_str())] {
        let response = app.callback(&back, cookie).await;
        assert_eq!(response.status(), 403, "{cookie:?}");
        assert!(sid_cookie(&response).is_none());
        assert_error_body(&json_body(response).await, 403, "browser");
    }
    assert!(app.token_calls().is_empty(), "the code was not spent");

    // The browser that started it: the state was left alone, and the cookie is cleared.
    let response = app.callback(&back, Some(&cookie)).await;
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), "/mine");
    assert!(sid_cookie(&response).is_some());
    let name = cookie.split('=').next().unwrap();
    let cleared = set_cookie(&response, name).unwrap();
    assert!(cleared.starts_with(&format!("{name}=;")), "{cleared}");
    assert!(cleared.contains("1970"), "{cleared}");
}

#[actix_rt::test]
async fn a_state_is_single_use_even_when_raced() {
    let app = spawn_app().await;
    let (back, _) = login_at_auth0(&app, Some("api"), &[]).await;
    let (code, state) = code_and_state(&back);
    let (first, second) = join(
        app.exchange_code("api", &code, &state),
        app.exchange_code("api", &code, &state),
    )
    .await;
    let mut statuses = [first.status().as_u16(), second.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400]);
    let refused = if first.status() == 400 { first } else { second };
    assert_error_body(&json_body(refused).await, 400, "`state`");
    assert_eq!(app.token_calls().len(), 1, "one exchange reached Auth0");

    let again = app.exchange_code("api", &code, &state).await;
    assert_eq!(again.status(), 400);
    assert_eq!(app.token_calls().len(), 1);
}

#[actix_rt::test]
async fn an_expired_state_is_refused() {
    let app = spawn_app_configured(
        |config| config["sessions"] = json!({"stateTtlSeconds": 1}),
        &[],
    )
    .await;
    let (back, _) = login_at_auth0(&app, Some("api"), &[]).await;
    let (code, state) = code_and_state(&back);
    app.clock.advance(Duration::from_millis(1300));
    let response = app.exchange_code("api", &code, &state).await;
    assert_eq!(response.status(), 400);
    assert_error_body(&json_body(response).await, 400, "expired");
    assert!(app.token_calls().is_empty(), "Auth0 is not asked");
}

#[actix_rt::test]
async fn another_clients_state_is_refused_and_consumed() {
    let app = spawn_app().await;
    let (back, _) = login_at_auth0(&app, Some("web"), &[]).await;
    let (code, state) = code_and_state(&back);
    let response = app.exchange_code("api", &code, &state).await;
    assert_eq!(response.status(), 400);
    assert_error_body(&json_body(response).await, 400, "another client");
    // Consumed: the right client cannot use it afterwards either.
    let response = app.exchange_code("web", &code, &state).await;
    assert_eq!(response.status(), 400);
    assert_error_body(&json_body(response).await, 400, "already used");
    assert!(app.token_calls().is_empty());
}

#[actix_rt::test]
async fn a_required_state_must_be_sent_and_not_in_use() {
    let app = spawn_app_configured(
        |config| config["clients"]["web"]["authorizeStateRequired"] = true.into(),
        &[],
    )
    .await;
    for query in [vec![], vec![("state", "")], vec![("redirect", "/x")]] {
        let response = app.authorize(Some("web"), &query).await;
        assert_eq!(response.status(), 400, "{query:?}");
        assert_error_body(&json_body(response).await, 400, "`state`");
    }
    let long = "s".repeat(513);
    let response = app.authorize(Some("web"), &[("state", &long)]).await;
    assert_eq!(response.status(), 400);

    start_login(&app, Some("web"), &[("state", "mine")]).await;
    let response = app.authorize(Some("web"), &[("state", "mine")]).await;
    assert_eq!(
        response.status(),
        400,
        "a login in progress keeps its state"
    );
    assert_error_body(&json_body(response).await, 400, "already in use");
    // Clients without the flag never need one.
    start_login(&app, Some("api"), &[]).await;
}

#[actix_rt::test]
async fn a_pkce_mismatch_is_refused_by_auth0_and_opens_no_session() {
    let app = spawn_app().await;
    let Started { to_auth0, .. } = start_login(&app, Some("api"), &[]).await;
    // A tampered /authorize: the code is bound to someone else's challenge.
    let forged = with_param(
        &to_auth0,
        "code_challenge",
        &pkce_challenge(&"x".repeat(43)),
    );
    let back = app
        .emulator_login(&forged, demo::USER_EMAIL, demo::USER_PASSWORD)
        .await;
    let (code, state) = code_and_state(&back);
    let response = app.exchange_code("api", &code, &state).await;
    assert_eq!(response.status(), 403);
    let body = json_body(response).await;
    assert_error_body(&body, 403, "code verifier");
    assert_eq!(body["errorCode"], "invalid_grant");
    assert_eq!(app.token_calls().len(), 1);
    let (status, active) = app.get_json("/users/active").await;
    assert_eq!((status, active), (200, json!([])));
}

#[actix_rt::test]
async fn a_nonce_mismatch_is_refused_and_opens_no_session() {
    let app = spawn_standalone(|_| {}).await;
    let Started { to_auth0, cookie } = start_login(&app, Some("web"), &[]).await;
    let forged = with_param(&to_auth0, "nonce", "forged-nonce");
    let back = app
        .emulator_login(&forged, demo::USER_EMAIL, demo::USER_PASSWORD)
        .await;
    let response = app.callback(&back, Some(&cookie)).await;
    assert_eq!(response.status(), 403);
    assert!(sid_cookie(&response).is_none());
    assert_error_body(&json_body(response).await, 403, "nonce");
    assert_eq!(app.token_calls().len(), 1, "the code was exchanged");
    let (status, active) = app.get_json("/users/active").await;
    assert_eq!((status, active), (200, json!([])));
}

#[actix_rt::test]
async fn every_open_redirect_form_is_refused_at_authorize() {
    let app = spawn_app().await;
    let forms = [
        "//evil.example",
        "//evil.example/path",
        "/\\evil.example",
        "\\\\evil.example",
        "\\/evil.example",
        "https://evil.example",
        "HTTPS://evil.example",
        "http:evil.example",
        "javascript:alert(1)",
        "data:text/html,hi",
        "evil.example",
        "%2F%2Fevil.example",
        "/%2F%2Fevil.example",
        "/%2fevil.example",
        "/%252F%252Fevil.example",
        "/%5Cevil.example",
        "/%255Cevil.example",
        "/\t/evil.example",
        "/%09/evil.example",
        "/\n/evil.example",
        "/x%0d%0aSet-Cookie:%20a=b",
        "/x%00",
        "/.//evil.example",
        "/%2E//evil.example",
        "/a/..//evil.example",
    ];
    for field in ["redirect", "redirectUri"] {
        for form in forms {
            let response = app.authorize(Some("web"), &[(field, form)]).await;
            assert_eq!(response.status(), 400, "{field}={form:?}");
            assert!(response.headers().get("location").is_none());
            assert_error_body(&json_body(response).await, 400, &format!("`{field}`"));
        }
    }
    let response = app
        .authorize(Some("web"), &[("redirect", "/a"), ("redirectUri", "/b")])
        .await;
    assert_eq!(response.status(), 400);
    assert_error_body(&json_body(response).await, 400, "redirectUri");
    assert!(app.emulator.requests_to("/authorize").is_empty());
}

#[actix_rt::test]
async fn an_unsupported_connection_is_refused_at_authorize() {
    let app = spawn_app().await;
    let response = app
        .authorize(Some("web"), &[("connection", "google-oauth2")])
        .await;
    assert_eq!(response.status(), 400);
    assert_error_body(&json_body(response).await, 400, "connection");
}

#[actix_rt::test]
async fn prompt_none_without_a_session_comes_back_as_login_required() {
    let app = spawn_standalone(|_| {}).await;
    let Started { to_auth0, cookie } = start_login(
        &app,
        Some("web"),
        &[("redirect", "/app?tab=1#top"), ("prompt", "none")],
    )
    .await;
    assert_eq!(params(&to_auth0)["prompt"], "none");
    // No SSO session at the emulator: it answers at once, with an error.
    let back = app.emulator_redirect(&to_auth0).await;
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("login_required")
    );

    let response = app.callback(&back, Some(&cookie)).await;
    assert_eq!(response.status(), 302);
    assert!(sid_cookie(&response).is_none());
    let to_app = location(&response);
    assert!(
        to_app.starts_with("/app?tab=1&error=login_required&"),
        "{to_app}"
    );
    assert!(to_app.ends_with("#top"), "{to_app}");
    assert_eq!(query_param(&to_app, "tab").as_deref(), Some("1"));
    assert_eq!(
        query_param(&to_app, "error_description").as_deref(),
        Some("Login required")
    );
    // The state is consumed.
    let response = app.callback(&back, Some(&cookie)).await;
    assert_eq!(response.status(), 400);
    assert!(app.token_calls().is_empty());
}

#[actix_rt::test]
async fn a_blocked_users_error_is_carried_back_to_the_root() {
    let app = spawn_standalone(|_| {}).await;
    assert!(app.emulator.set_blocked(demo::USER_EMAIL, true));
    let (back, cookie) = login_at_auth0(&app, None, &[]).await;
    let response = app.callback(&back, Some(&cookie)).await;
    assert_eq!(response.status(), 302);
    assert_eq!(
        location(&response),
        "/?error=unauthorized&error_description=user+is+blocked"
    );
}

#[actix_rt::test]
async fn unknown_parameters_are_ignored_on_every_step() {
    let app = spawn_app().await;
    let Started { to_auth0, .. } = start_login(
        &app,
        Some("api"),
        &[
            ("login_site_version", "8.0.0"),
            ("redirect", "/x"),
            ("foo", "bar"),
        ],
    )
    .await;
    let sent = params(&to_auth0);
    assert!(!sent.contains_key("login_site_version") && !sent.contains_key("foo"));
    let back = app
        .emulator_login(&to_auth0, demo::USER_EMAIL, demo::USER_PASSWORD)
        .await;
    let (code, state) = code_and_state(&back);
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .header("client-type", "api")
        .query(&[
            ("code", code.as_str()),
            ("state", state.as_str()),
            ("login_site_version", "8.0.0"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(location(&response), "/x");
    let form = &app.token_calls()[0];
    assert!(!form.contains_key("login_site_version"));

    // The callback too (standalone).
    let app = spawn_standalone(|_| {}).await;
    let (back, cookie) = login_at_auth0(&app, None, &[]).await;
    let response = app
        .callback(&format!("{back}&session_state=abc&v=2"), Some(&cookie))
        .await;
    assert_eq!(response.status(), 302);
    assert!(sid_cookie(&response).is_some());
}

#[actix_rt::test]
async fn the_callback_refuses_what_it_cannot_trust() {
    let app = spawn_standalone(|_| {}).await;
    // A never-issued state's binding cookie, as an attacker who chose the state could craft.
    let forged = format!(
        "{}=1",
        auth0_client::login::state::binding_cookie_name("never-issued", true)
    );
    let cases = [
        ("/oauth/callback", None, 400, "`state`"),
        ("/oauth/callback?code=abc", None, 400, "`state`"),
        ("/oauth/callback?state=abc", None, 400, "`code`"),
        (
            "/oauth/callback?code=abc&state=never-issued",
            None,
            400,
            "`state`",
        ),
        (
            "/oauth/callback?code=abc&state=never-issued",
            Some(forged.as_str()),
            400,
            "`state`",
        ),
        (
            "/oauth/callback?error=access_denied&state=never-issued",
            None,
            400,
            "`state`",
        ),
    ];
    for (path, cookie, status, needle) in cases {
        let mut request = app.client.get(app.url(path));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{path} {cookie:?}");
        assert_error_body(&json_body(response).await, status, needle);
    }

    // A request naming another client than the login's: 401 (and the state is spent).
    let (back, cookie) = login_at_auth0(&app, Some("web"), &[]).await;
    let query = reqwest::Url::parse(&back)
        .unwrap()
        .query()
        .unwrap()
        .to_owned();
    let response = app
        .client
        .get(app.url(&format!("/oauth/callback?{query}")))
        .header("client-type", "api")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(app.token_calls().is_empty());
}

#[actix_rt::test]
async fn browser_routes_need_no_api_key_but_the_exchange_does() {
    let app = spawn_standalone(|config| {
        config["apiKeys"] = json!([{"key": "key-api", "clientType": "api"}]);
    })
    .await;
    // Standalone: /authorize and /oauth/callback without a key (the default client).
    let (back, cookie) = login_at_auth0(&app, None, &[("redirect", "/in")]).await;
    let response = app.callback(&back, Some(&cookie)).await;
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), "/in");

    // The exchange is an API call (here with the browser's binding too, as the state's client
    // has the daemon's own callback).
    let (back, cookie) = login_at_auth0(&app, None, &[]).await;
    let (code, state) = code_and_state(&back);
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .header("cookie", &cookie)
        .query(&[("code", &code), ("state", &state)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // Refused before the state was looked at: the keyed retry works.
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .header("secret", "key-api")
        .header("cookie", &cookie)
        .query(&[("code", &code), ("state", &state)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[actix_rt::test]
async fn the_flow_is_in_the_openapi_document() {
    let app = spawn_app().await;
    let (status, document) = app.get_json("/documentation/json").await;
    assert_eq!(status, 200);
    for path in ["/authorize", "/oauth/callback", "/oauth/token"] {
        assert!(
            document["paths"][path]["get"].is_object()
                || document["paths"][path]["post"].is_object(),
            "{path}"
        );
    }
}

/// An application whose ID tokens Auth0 signs with HS256 (its "JSON Web Token Signature
/// Algorithm"), listed in `supportedSigningAlgs` as upstream configs do: logins through the code
/// flow and the password grant work, verified with the client's secret; the same client listing
/// RS256 only refuses the token (502, no session).
#[actix_rt::test]
async fn an_hs256_client_logs_in_through_the_code_flow_and_the_password_grant() {
    use crate::testkit::{HS256_CLIENT_ID, HS256_CLIENT_SECRET};
    let app = spawn_app_configured(
        |config| {
            let mut hs = config["clients"]["api"].clone();
            hs["clientId"] = HS256_CLIENT_ID.into();
            hs["clientSecret"] = HS256_CLIENT_SECRET.into();
            hs["supportedSigningAlgs"] = json!(["RS256", "HS256"]);
            config["clients"]["hs"] = hs.clone();
            hs["supportedSigningAlgs"] = json!(["RS256"]);
            config["clients"]["rs-only"] = hs;
        },
        &[],
    )
    .await;

    let Started { to_auth0, .. } = start_login(&app, Some("hs"), &[("redirect", "/home")]).await;
    let back = app
        .emulator_login(&to_auth0, demo::USER_EMAIL, demo::USER_PASSWORD)
        .await;
    let (code, state) = code_and_state(&back);
    let response = app.exchange_code("hs", &code, &state).await;
    assert_eq!(response.status(), 200);
    let tokens = json_body(response).await;
    assert!(!tokens["idToken"].as_str().unwrap().is_empty());
    let me = json_body(
        app.userinfo_bearer(tokens["accessToken"].as_str().unwrap())
            .await,
    )
    .await;
    assert_eq!(me["sub"], demo::USER_ID);

    let response = app.login("hs", demo::USER_EMAIL, demo::USER_PASSWORD).await;
    assert_eq!(response.status(), 200);

    let response = app
        .login("rs-only", demo::USER_EMAIL, demo::USER_PASSWORD)
        .await;
    assert_eq!(response.status(), 502);
    let body = json_body(response).await;
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("HS256"), "{message}");
}
