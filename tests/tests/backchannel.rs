//! OpenID Connect Back-Channel Logout (issue 25; SPEC §5 `POST /backchannel-logout`, §7): a user
//! whose Auth0 session ends elsewhere is logged out here. The emulator plays Auth0: it puts a `sid`
//! in the ID tokens of browser logins (one Auth0 session per SSO cookie), and POSTs a logout token
//! to the application's back-channel URL when `/v2/logout` or the Management API ends a session.
//!
//! - Two browser logins (two real Chromium profiles, two Auth0 sessions) and a password login of
//!   one user, on two daemons sharing one Redis: a logout in another application ends exactly the
//!   first browser's session on both daemons; an administrator's end-of-sessions ends the other
//!   browser's; a `sub`-only token ends the password login.
//! - Each refusal of the specification's §2.6 is a 400 that ends nothing; garbage bodies are 400.
//! - A token replayed to another daemon sharing the store is refused.
//! - Endings survive `kill -9` and a restart.
//! - Under load: one token posted by 40 concurrent keep-alive clients is taken once, 40 distinct
//!   tokens at once are each taken, and a stalled client holds nothing up.

use std::time::{Duration, Instant};

use auth0_client::clock::Clock;
use auth0_client::store::redis::testing::RedisServer;
use auth0_emulator::seed::demo;
use auth0_emulator::{Emulator, EmulatorHandle};
use serde_json::{Value, json};

use crate::DAEMON;
use crate::chromedriver::{Browser, free_port};
use crate::testkit::{
    DaemonProcess, TestApp, emulator_config, eventually, spawn_app, spawn_app_configured, start_on,
    test_seed,
};

/// How long an ending may take to be seen everywhere: SPEC §5 says "at once"; the bound is loose
/// for a loaded shared machine, and the time taken is printed.
const PROPAGATION: Duration = Duration::from_secs(5);

fn epoch() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A logout token minted by the emulator's control API for the login client (`sub` and `sid`,
/// then `claims` applied, `null` removing one).
async fn mint(
    emulator: &EmulatorHandle,
    sub: Option<&str>,
    sid: Option<&str>,
    claims: Value,
) -> String {
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/__emulator/logout-token", emulator.base_url()))
        .json(
            &json!({"client_id": demo::LOGIN_CLIENT_ID, "sub": sub, "sid": sid, "claims": claims}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["logout_token"].as_str().unwrap().to_owned()
}

/// `POST /backchannel-logout` with `logout_token=<token>`, as Auth0 sends it (no key, no cookie).
async fn post_token(app: &TestApp, token: &str) -> (u16, Value, Option<String>) {
    post_on(&app.client, &app.url("/backchannel-logout"), token)
        .await
        .expect("an answer")
}

/// The same on `client`'s own keep-alive connection to `url`: the status, the body and the
/// `Cache-Control` header; `None` when no answer came (the daemon was killed).
async fn post_on(
    client: &reqwest::Client,
    url: &str,
    token: &str,
) -> Option<(u16, Value, Option<String>)> {
    let response = client
        .post(url)
        .form(&[("logout_token", token)])
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    let cache = response
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.ok()?;
    Some((
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        cache,
    ))
}

async fn bearer_status(app: &TestApp, access: &str) -> u16 {
    app.userinfo_bearer(access).await.status().as_u16()
}

async fn cookie_status(app: &TestApp, sid: &str) -> u16 {
    app.userinfo_cookie(sid).await.status().as_u16()
}

/// Waits until `check` answers `expected` (at most [`PROPAGATION`]); returns the time it took.
async fn until<F, Fut>(what: &str, expected: u16, check: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = u16>,
{
    let started = Instant::now();
    eventually(
        &format!("{what} to answer {expected}"),
        PROPAGATION,
        async || match check().await {
            status if status == expected => Ok(()),
            status => Err(format!("still {status}")),
        },
    )
    .await;
    started.elapsed()
}

fn access_of(tokens: &Value) -> String {
    tokens["accessToken"].as_str().unwrap().to_owned()
}

async fn password_login(app: &TestApp, client: &str, email: &str, password: &str) -> String {
    let response = app.login(client, email, password).await;
    assert_eq!(response.status(), 200);
    access_of(&response.json().await.unwrap())
}

#[actix_rt::test]
async fn each_refusal_of_the_spec_is_a_400_that_ends_nothing() {
    let app = spawn_app().await;
    let access = password_login(&app, "api", demo::USER_EMAIL, demo::USER_PASSWORD).await;
    let emulator = &app.emulator;
    let user = Some(demo::USER_ID);

    let valid = mint(emulator, user, None, json!({})).await;
    let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
    let signature = parts[2].clone();
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    parts[2] = format!("{flipped}{}", &signature[1..]);
    let bad_signature = parts.join(".");

    let now = epoch();
    let cases: Vec<(&str, String, &str)> = vec![
        ("bad signature", bad_signature, "signature"),
        (
            "other issuer",
            mint(
                emulator,
                user,
                None,
                json!({"iss": "https://other-tenant.example/"}),
            )
            .await,
            "issuer",
        ),
        (
            "other audience",
            mint(emulator, user, None, json!({"aud": "someone-else"})).await,
            "audience",
        ),
        (
            "old iat",
            mint(
                emulator,
                user,
                None,
                json!({"iat": now - 400, "exp": now + 60}),
            )
            .await,
            "5 minutes",
        ),
        (
            "expired",
            mint(
                emulator,
                user,
                None,
                json!({"iat": now - 200, "exp": now - 120}),
            )
            .await,
            "expired",
        ),
        (
            "no events",
            mint(emulator, user, None, json!({"events": null})).await,
            "events",
        ),
        (
            "events without the back-channel member",
            mint(emulator, user, None, json!({"events": {"urn:other": {}}})).await,
            "events",
        ),
        (
            "a nonce",
            mint(emulator, user, None, json!({"nonce": "n-1"})).await,
            "nonce",
        ),
        (
            "neither sid nor sub",
            mint(emulator, None, None, json!({})).await,
            "neither a sid nor a sub",
        ),
        (
            "no jti",
            mint(emulator, user, None, json!({"jti": null})).await,
            "jti",
        ),
    ];
    for (what, token, needle) in cases {
        let (status, body, _) = post_token(&app, &token).await;
        assert_eq!(status, 400, "{what}: {body}");
        assert_eq!(body["statusCode"], 400, "{what}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(needle),
            "{what}: the message should name {needle:?}: {message}"
        );
        assert_eq!(
            bearer_status(&app, &access).await,
            200,
            "{what} ended the session"
        );
    }

    // A replayed `jti`: the first delivery (of another user, so this session stays) is served,
    // the same token again is refused.
    let other = mint(emulator, Some("auth0|nobody"), None, json!({})).await;
    let (status, _, cache) = post_token(&app, &other).await;
    assert_eq!(status, 200);
    assert_eq!(cache.as_deref(), Some("no-store"));
    let (status, body, _) = post_token(&app, &other).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("replayed"),
        "{body}"
    );
    assert_eq!(bearer_status(&app, &access).await, 200);

    // The valid token itself still works after all those refusals.
    let (status, _, _) = post_token(&app, &valid).await;
    assert_eq!(status, 200);
    assert_eq!(
        bearer_status(&app, &access).await,
        401,
        "the valid token ends the session"
    );
}

#[actix_rt::test]
async fn garbage_bodies_are_400_never_5xx_and_no_key_is_needed() {
    // With `apiKeys` set, every other route needs a key; Auth0 sends none here.
    let app = spawn_app_configured(
        |config| {
            config["apiKeys"] = json!([{"key": "key-api", "clientType": "api"}]);
        },
        &[],
    )
    .await;
    let url = app.url("/backchannel-logout");
    let form = "application/x-www-form-urlencoded";
    let bodies: Vec<(Option<&str>, Vec<u8>)> = vec![
        (Some(form), Vec::new()),
        (Some(form), b"logout_token=".to_vec()),
        (Some(form), b"logout_token=garbage".to_vec()),
        (Some(form), b"logout_token=a.b.c".to_vec()),
        (Some(form), b"logout_token=%FF%FE.%00.%01".to_vec()),
        (
            Some(form),
            b"logout_token=eyJhbGciOiJub25lIn0.e30.".to_vec(),
        ),
        (Some(form), b"logout_token=x&logout_token=y".to_vec()),
        (Some(form), b"other=1".to_vec()),
        (Some(form), vec![0xff, 0x00, 0x80, b'=', 0x01]),
        (
            Some("application/json"),
            br#"{"logout_token":"a.b.c"}"#.to_vec(),
        ),
        (Some("text/plain"), b"logout_token=a.b.c".to_vec()),
        (None, b"logout_token=a.b.c".to_vec()),
        (
            Some(form),
            format!("logout_token={}", "A".repeat(20_000)).into_bytes(),
        ),
    ];
    for (content_type, body) in bodies {
        let mut request = app.client.post(&url).body(body.clone());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        let shown = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
        assert_eq!(status, 400, "{content_type:?} {shown:?}: {answer}");
        assert_eq!(answer["statusCode"], 400, "{shown:?}: {answer}");
        assert!(
            answer["message"]
                .as_str()
                .unwrap_or_default()
                .contains("logout_token"),
            "{shown:?}: {answer}"
        );
    }
    // A valid token needs no key either, and neither the management guard nor the cross-site
    // check applies: the signed token is the credential (SPEC §5).
    let token = mint(&app.emulator, Some("auth0|nobody"), None, json!({})).await;
    assert_eq!(post_token(&app, &token).await.0, 200);
    let token = mint(&app.emulator, Some("auth0|nobody"), None, json!({})).await;
    let response = app
        .client
        .post(&url)
        .header("sec-fetch-site", "cross-site")
        .header("origin", "https://elsewhere.example")
        .header("x-forwarded-for", "203.0.113.7")
        .form(&[("logout_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The route is a POST: a GET is 405, not a 5xx.
    let response = app.client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 405);
}

/// As the internet sends them: while a client holds a connection with a body that stops coming,
/// 40 clients on their own keep-alive connections post one token at the same moment (Auth0
/// retrying, or a replay): it is taken exactly once, the 39 others are refused as a replay; then
/// 40 distinct tokens at once, each taken. Nothing answers 5xx, the user's sessions end each time,
/// and the stalled client gets its 408 within `server.bodyTimeoutMs`.
#[actix_rt::test]
async fn concurrent_tokens_are_each_taken_once_and_a_stalled_client_holds_nothing_up() {
    use futures_util::future::join_all;

    let app = spawn_app_configured(|c| c["server"]["bodyTimeoutMs"] = json!(1_500), &[]).await;
    let port = app.port;
    let stalled = actix_rt::spawn(async move {
        let request =
            crate::errors::stalled_post("/backchannel-logout", "application/x-www-form-urlencoded");
        crate::errors::raw_request(
            port,
            &request,
            Duration::from_secs(10),
            Duration::from_secs(3),
        )
        .await
    });
    let clients: Vec<reqwest::Client> = (0..40).map(|_| reqwest::Client::new()).collect();

    let access = password_login(&app, "api", demo::USER_EMAIL, demo::USER_PASSWORD).await;
    let url = app.url("/backchannel-logout");
    let token = mint(&app.emulator, Some(demo::USER_ID), None, json!({})).await;
    let answers: Vec<_> = join_all(clients.iter().map(|c| post_on(c, &url, &token)))
        .await
        .into_iter()
        .map(|answer| answer.expect("an answer"))
        .collect();
    let taken = answers.iter().filter(|(status, ..)| *status == 200).count();
    let replays = answers
        .iter()
        .filter(|(status, body, _)| {
            *status == 400 && body["message"].as_str().is_some_and(|m| m.contains("jti"))
        })
        .count();
    assert_eq!((taken, replays), (1, 39), "{answers:?}");
    assert_eq!(bearer_status(&app, &access).await, 401);

    // The same connections again, each with a token of its own.
    let access = password_login(&app, "api", demo::USER_EMAIL, demo::USER_PASSWORD).await;
    let tokens = join_all(
        (0..clients.len()).map(|_| mint(&app.emulator, Some(demo::USER_ID), None, json!({}))),
    )
    .await;
    let answers = join_all(
        clients
            .iter()
            .zip(&tokens)
            .map(|(client, token)| post_on(client, &url, token)),
    )
    .await;
    assert!(
        answers
            .iter()
            .all(|answer| matches!(answer, Some((200, ..)))),
        "{answers:?}"
    );
    assert_eq!(bearer_status(&app, &access).await, 401);

    let stalled = stalled
        .await
        .unwrap()
        .expect("the stalled client is answered");
    assert_eq!(stalled.status, 408, "{:?}", stalled.json());
    assert!(stalled.took < Duration::from_secs(5), "{:?}", stalled.took);
    assert!(stalled.closed);
}

#[actix_rt::test]
async fn a_sub_only_token_ends_every_session_of_the_user_and_revokes_their_refresh_tokens() {
    let app = spawn_app().await;
    let first = password_login(&app, "api", demo::USER_EMAIL, demo::USER_PASSWORD).await;
    let second = password_login(&app, "plain", demo::USER_EMAIL, demo::USER_PASSWORD).await;
    let cookie = app.login_cookie().await;
    let admin = password_login(&app, "api", demo::ADMIN_EMAIL, demo::ADMIN_PASSWORD).await;
    app.emulator.clear_requests();

    // A `sid` nobody's login carried ends nothing, even with the right `sub`.
    let token = mint(
        &app.emulator,
        Some(demo::USER_ID),
        Some("no-such-session"),
        json!({}),
    )
    .await;
    assert_eq!(post_token(&app, &token).await.0, 200);
    assert_eq!(
        bearer_status(&app, &first).await,
        200,
        "password logins have no Auth0 session"
    );

    let token = mint(&app.emulator, Some(demo::USER_ID), None, json!({})).await;
    let (status, body, cache) = post_token(&app, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(cache.as_deref(), Some("no-store"));
    assert_eq!(bearer_status(&app, &first).await, 401);
    assert_eq!(bearer_status(&app, &second).await, 401);
    assert_eq!(cookie_status(&app, &cookie).await, 401);
    assert_eq!(
        bearer_status(&app, &admin).await,
        200,
        "another user keeps hers"
    );

    // Each ended session's refresh token is revoked at Auth0, as a logout does (in the background).
    eventually(
        "the three refresh tokens revoked at Auth0",
        PROPAGATION,
        async || app.emulator.requests_to("/oauth/revoke").len() >= 3,
    )
    .await;
    assert_eq!(app.emulator.requests_to("/oauth/revoke").len(), 3);
}

/// A code-flow login of the demo user through the `api` client (the login-site exchange, no
/// browser): the access token and the `sid` of its ID token.
async fn code_login(app: &TestApp) -> (String, String) {
    let started = app
        .authorize(Some("api"), &[("redirectUri", "/home")])
        .await;
    assert_eq!(started.status(), 302);
    let to_auth0 = crate::testkit::location(&started);
    let back = app
        .emulator_login(&to_auth0, demo::USER_EMAIL, demo::USER_PASSWORD)
        .await;
    let code = crate::testkit::query_param(&back, "code").unwrap();
    let state = crate::testkit::query_param(&back, "state").unwrap();
    let response = app.exchange_code("api", &code, &state).await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    let id_token = tokens["idToken"].as_str().unwrap();
    let claims = auth0_emulator::jwt::decode_unverified(id_token).unwrap();
    (
        access_of(&tokens),
        claims["sid"].as_str().unwrap().to_owned(),
    )
}

#[actix_rt::test]
async fn a_sid_ends_its_auth0_session_only_and_sid_with_sub_must_match_both() {
    let app = spawn_app().await;
    let (first, first_sid) = code_login(&app).await;
    let (second, second_sid) = code_login(&app).await;
    assert_ne!(
        first_sid, second_sid,
        "two logins without the SSO cookie: two Auth0 sessions"
    );
    let password = password_login(&app, "api", demo::USER_EMAIL, demo::USER_PASSWORD).await;

    // The right `sid` with another user's `sub` matches both of nothing.
    let token = mint(
        &app.emulator,
        Some(demo::ADMIN_ID),
        Some(&first_sid),
        json!({}),
    )
    .await;
    assert_eq!(post_token(&app, &token).await.0, 200);
    assert_eq!(bearer_status(&app, &first).await, 200);

    // A `sid` alone ends that Auth0 session's login, and nothing else.
    let token = mint(&app.emulator, None, Some(&first_sid), json!({})).await;
    assert_eq!(post_token(&app, &token).await.0, 200);
    assert_eq!(bearer_status(&app, &first).await, 401);
    assert_eq!(bearer_status(&app, &second).await, 200);
    assert_eq!(bearer_status(&app, &password).await, 200);

    // `sid` and `sub` (what Auth0 sends) end the other one.
    let token = mint(
        &app.emulator,
        Some(demo::USER_ID),
        Some(&second_sid),
        json!({}),
    )
    .await;
    assert_eq!(post_token(&app, &token).await.0, 200);
    assert_eq!(bearer_status(&app, &second).await, 401);
    assert_eq!(
        bearer_status(&app, &password).await,
        200,
        "password logins have no Auth0 session"
    );

    // The route is in the OpenAPI document.
    let (status, document) = app.get_json("/documentation/json").await;
    assert_eq!(status, 200);
    assert!(
        document["paths"]["/backchannel-logout"]["post"].is_object(),
        "{document}"
    );
}

/// A daemon of the site on `port` (fixed, so its callback is known before it starts), on `redis`.
fn site_config(emulator: &EmulatorHandle, callback: &str) -> Value {
    let mut config = emulator_config(emulator);
    for client in ["api", "web", "plain"] {
        config["clients"][client]["redirectUrl"] = callback.into();
    }
    config["clients"]["web"]["scopes"] = json!(["offline_access", "profile", "email", "website"]);
    config["defaultClient"] = "web".into();
    config["server"]["insecureCookies"] = true.into();
    config["server"]["allowedHosts"] = json!(["127.0.0.1"]);
    config
}

/// A browser login on `app` through the emulator's form (a fresh Chromium profile: no SSO
/// cookie, so a new Auth0 session); returns the daemon's `sid` cookie.
async fn browser_login(browser: &Browser, app: &TestApp) -> String {
    let emulator_port = reqwest::Url::parse(app.emulator.base_url())
        .unwrap()
        .port()
        .unwrap();
    browser.goto(&app.url("/authorize?redirect=/landed")).await;
    browser
        .wait_for_url("the emulator's login form", |url| {
            url.port() == Some(emulator_port) && url.path() == "/authorize"
        })
        .await;
    browser.fill("input[name=username]", demo::USER_EMAIL).await;
    browser
        .fill("input[name=password]", demo::USER_PASSWORD)
        .await;
    browser.click("button[type=submit]").await;
    browser
        .wait_for_url("the landing page", |url| {
            url.port() == Some(app.port) && url.path() == "/landed"
        })
        .await;
    browser
        .cookie("sid")
        .await
        .expect("the daemon's sid cookie")
        .value()
        .to_owned()
}

#[actix_rt::test]
async fn a_logout_elsewhere_ends_exactly_that_auth0_session_on_two_daemons_sharing_redis() {
    let redis = RedisServer::start();
    let hosts = redis.host_port();
    let emulator = std::sync::Arc::new(Emulator::start(test_seed()).unwrap());
    let port = free_port();
    let callback = format!("http://127.0.0.1:{port}/oauth/callback");
    let config = site_config(&emulator, &callback);
    let clock = Clock::manual();
    let shared = [("REDIS_HOSTS", hosts.as_str()), ("SESSION_SCOPE", "bcl")];
    let port_text = port.to_string();
    let mut first_env = shared.to_vec();
    first_env.push(("HTTP_PORT", &port_text));
    let first = start_on(emulator.clone(), config.clone(), &first_env, clock.clone()).await;
    let second = start_on(emulator.clone(), config, &shared, clock).await;
    let daemons = [&first, &second];

    // The tenant: the site's callback, and the back-channel URL of the application set once the
    // second daemon listens (Auth0 posts to one URL; the load balancer picks a daemon).
    let mut seed = test_seed();
    let login = seed
        .clients
        .iter_mut()
        .find(|c| c.client_id == demo::LOGIN_CLIENT_ID)
        .unwrap();
    login.callbacks = vec![callback];
    emulator.reseed(&seed).unwrap();
    let http = reqwest::Client::new();
    let set = http
        .put(format!(
            "{}/__emulator/clients/{}/backchannel-logout-urls",
            emulator.base_url(),
            demo::LOGIN_CLIENT_ID
        ))
        .json(&json!({"urls": [second.url("/backchannel-logout")]}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);

    // Two browsers, two Auth0 sessions; and a password login of the same user on the other daemon.
    let one = Browser::start().await;
    let two = Browser::start().await;
    let sid_one = browser_login(&one, &first).await;
    let sid_two = browser_login(&two, &first).await;
    assert_ne!(sid_one, sid_two);
    let password = password_login(&second, "api", demo::USER_EMAIL, demo::USER_PASSWORD).await;
    for app in daemons {
        assert_eq!(cookie_status(app, &sid_one).await, 200);
        assert_eq!(cookie_status(app, &sid_two).await, 200);
        assert_eq!(bearer_status(app, &password).await, 200);
    }

    // The user logs out in another application of the tenant: Auth0 ends the first browser's
    // session and tells this application.
    one.goto(&format!("{}/v2/logout", emulator.base_url()))
        .await;
    for app in daemons {
        let took = until("the first browser's session", 401, || {
            cookie_status(app, &sid_one)
        })
        .await;
        println!("back-channel logout seen on :{} after {took:?}", app.port);
    }
    for app in daemons {
        assert_eq!(
            cookie_status(app, &sid_two).await,
            200,
            "another Auth0 session stays"
        );
        assert_eq!(
            bearer_status(app, &password).await,
            200,
            "a password login has no Auth0 session"
        );
    }

    // An administrator ends the user's sessions in Auth0: every browser session ends here.
    let ended = http
        .delete(format!(
            "{}/api/v2/users/{}/sessions",
            emulator.base_url(),
            demo::USER_ID
        ))
        .bearer_auth(emulator.management_token(demo::MANAGEMENT_CLIENT_ID))
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 204);
    for app in daemons {
        until("the second browser's session", 401, || {
            cookie_status(app, &sid_two)
        })
        .await;
    }
    for app in daemons {
        assert_eq!(
            bearer_status(app, &password).await,
            200,
            "SPEC §5: a sid never ends it"
        );
    }

    // A `sub`-only token (delivered by the emulator to the application) ends the password login.
    let sent: Value = http
        .post(format!("{}/__emulator/logout-token", emulator.base_url()))
        .json(&json!({"client_id": demo::LOGIN_CLIENT_ID, "sub": demo::USER_ID, "send": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(sent["logout_token"].is_string());
    for app in daemons {
        until("the password login", 401, || bearer_status(app, &password)).await;
    }

    // Every delivery was answered 200 (one per Auth0 session ended, one minted). The emulator
    // records a delivery once it has the daemon's answer, which may be after the daemon acted.
    let deliveries = eventually(
        "three back-channel deliveries recorded by the emulator",
        Duration::from_secs(5),
        async || {
            let deliveries = emulator.backchannel_deliveries();
            if deliveries.len() >= 3 {
                Ok(deliveries)
            } else {
                Err(Value::from(deliveries))
            }
        },
    )
    .await;
    let statuses: Vec<&Value> = deliveries.iter().map(|d| &d["status"]).collect();
    assert_eq!(statuses, [&json!(200); 3], "{deliveries:?}");

    // A token delivered to one daemon is refused by the other: the `jti` is in the shared store.
    let token = mint(&emulator, Some("auth0|nobody"), None, json!({})).await;
    assert_eq!(post_token(&first, &token).await.0, 200);
    let (status, body, _) = post_token(&second, &token).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("replayed"),
        "{body}"
    );

    one.close().await;
    two.close().await;
}

/// SPEC §7 on Redis, failed as production fails it: a master and its replica, the replica
/// promoted and the old master demoted while logout tokens keep coming. Each is answered 200 or
/// 503 (the store refused the write: Auth0 may send it again), never another 5xx and never a
/// replay refusal of a fresh token; tokens are taken again within 10 s, the user is logged out,
/// and a token taken after the failover is refused as a replay: its `jti` is on the new master.
#[actix_rt::test]
async fn tokens_sent_through_a_redis_failover_are_taken_or_refused_503_and_replays_still_caught() {
    let master = RedisServer::start();
    let replica = RedisServer::builder().replica_of(&master).start();
    let hosts = format!("{},{}", master.host_port(), replica.host_port());
    let app = spawn_app_configured(
        |_| {},
        &[
            ("REDIS_HOSTS", &hosts),
            ("AUTH0_CLIENT__SESSIONS__TIMEOUTMS", "1000"),
        ],
    )
    .await;
    let access = password_login(&app, "api", demo::USER_EMAIL, demo::USER_PASSWORD).await;

    replica.command(&["REPLICAOF", "NO", "ONE"]);
    master.command(&["REPLICAOF", "127.0.0.1", &replica.port().to_string()]);
    let started = Instant::now();
    let mut answers = Vec::new();
    let taken = loop {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no token taken within 10 s of the failover: {answers:?}"
        );
        let token = mint(&app.emulator, Some(demo::USER_ID), None, json!({})).await;
        let (status, body, _) = post_token(&app, &token).await;
        assert!(matches!(status, 200 | 503), "{status} {body}");
        answers.push((started.elapsed().as_millis(), status));
        if status == 200 {
            break token;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("answers through the failover (ms, status): {answers:?}");
    assert_eq!(bearer_status(&app, &access).await, 401);
    let (status, body, _) = post_token(&app, &taken).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| m.contains("jti")),
        "{body}"
    );
}

/// SPEC §7: an ending acknowledged to Auth0 survives `kill -9` of the daemon, here in the middle
/// of a burst of 40 tokens on their own connections: every answer before the kill is a 200 (none
/// is a 5xx), the user stays logged out after the restart, another user keeps her session, and
/// the restarted daemon takes tokens again.
#[test]
fn backchannel_endings_survive_kill_9_and_a_restart() {
    let emulator = Emulator::start(test_seed()).unwrap();
    let config = emulator_config(&emulator);
    let daemon = DaemonProcess::start(DAEMON, &config, &[]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    let login = |port: u16, email: &'static str, password: &'static str| {
        let client = client.clone();
        async move {
            let response = client
                .post(format!("http://127.0.0.1:{port}/oauth/token"))
                .form(&[
                    ("grant_type", "password"),
                    ("username", email),
                    ("password", password),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            access_of(&response.json().await.unwrap())
        }
    };
    let userinfo = |port: u16, access: String| {
        let client = client.clone();
        async move {
            client
                .get(format!("http://127.0.0.1:{port}/userinfo"))
                .bearer_auth(access)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let url = daemon.url("/backchannel-logout");
    let (user, admin, burst) = runtime.block_on(async {
        let user = login(daemon.port, demo::USER_EMAIL, demo::USER_PASSWORD).await;
        let admin = login(daemon.port, demo::ADMIN_EMAIL, demo::ADMIN_PASSWORD).await;
        let tokens = futures_util::future::join_all(
            (0..40).map(|_| mint(&emulator, Some(demo::USER_ID), None, json!({}))),
        )
        .await;
        let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let burst: Vec<_> = tokens
            .into_iter()
            .map(|token| {
                let (client, url, answered) =
                    (reqwest::Client::new(), url.clone(), answered.clone());
                tokio::spawn(async move {
                    let answer = post_on(&client, &url, &token).await;
                    answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    answer
                })
            })
            .collect();
        // Killed once the first answers are in, the others in flight.
        let started = Instant::now();
        while answered.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            assert!(started.elapsed() < PROPAGATION, "no answer to the burst");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        (user, admin, burst)
    });

    let daemon = daemon.kill9_and_restart(DAEMON, &[]);
    runtime.block_on(async {
        let mut statuses = Vec::new();
        for answer in futures_util::future::join_all(burst).await {
            statuses.extend(answer.unwrap().map(|(status, ..)| status));
        }
        println!(
            "{} of 40 answered around the kill: {statuses:?}",
            statuses.len()
        );
        assert!(
            !statuses.is_empty() && statuses.iter().all(|status| *status == 200),
            "{statuses:?}"
        );
        assert_eq!(
            userinfo(daemon.port, user).await,
            401,
            "the ending survived kill -9"
        );
        assert_eq!(
            userinfo(daemon.port, admin).await,
            200,
            "the store did survive"
        );
        let token = mint(&emulator, Some(demo::USER_ID), None, json!({})).await;
        let answer = post_on(&client, &daemon.url("/backchannel-logout"), &token)
            .await
            .expect("an answer");
        assert_eq!(answer.0, 200, "{answer:?}");
    });
}
