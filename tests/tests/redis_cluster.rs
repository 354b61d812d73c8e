//! Several daemons on one Redis (issue 13; SPEC §7): two daemons with one config, one emulator and
//! one clock, as behind a load balancer. A session created on one is seen, refreshed and ended on
//! the other; a logout on one is honoured by the other at once; concurrent refreshes across both,
//! by mixed routes, make one Auth0 call (the refresh lease), also when Auth0 is slow; and the
//! write-ownership cases (one access token for two sessions, kept refresh tokens) hold across
//! daemons. The Redis server is a real `redis-server` the harness starts on a free port.

use std::time::Duration;

use crate::testkit::{TestApp, fault, sid_cookie, spawn_pair};
use auth0_client::store::redis::testing::RedisServer;
use auth0_emulator::Fault;
use futures_util::future::join_all;
use serde_json::Value;

/// Two daemons sharing `redis` under one `SESSION_SCOPE`.
async fn pair_on(redis: &RedisServer) -> (TestApp, TestApp) {
    let hosts = redis.host_port();
    spawn_pair(
        |_| {},
        &[("REDIS_HOSTS", &hosts), ("SESSION_SCOPE", "pair")],
    )
    .await
}

fn refresh_calls(app: &TestApp) -> usize {
    app.token_calls()
        .into_iter()
        .filter(|f| f["grant_type"] == "refresh_token")
        .count()
}

fn text(body: &Value, field: &str) -> String {
    body[field].as_str().unwrap_or_default().to_owned()
}

#[actix_rt::test]
async fn a_session_from_one_daemon_is_served_refreshed_and_ended_by_the_other() {
    let redis = RedisServer::start();
    let (a, b) = pair_on(&redis).await;
    let tokens = a.login_tokens().await;
    let access = text(&tokens, "accessToken");
    let refresh = text(&tokens, "refreshToken");

    let on_b = b.userinfo_bearer(&access).await;
    assert_eq!(on_b.status(), 200, "a session made on A is seen on B");
    let claims: Value = on_b.json().await.unwrap();
    assert_eq!(claims["email"], auth0_emulator::seed::demo::USER_EMAIL);

    // Refreshed on B; A serves the new access token at once and the old one stays an alias.
    let refreshed = b.refresh_bearer(&access, &refresh).await;
    assert_eq!(refreshed.status(), 200);
    let refreshed: Value = refreshed.json().await.unwrap();
    let new_access = text(&refreshed, "accessToken");
    assert_ne!(new_access, access);
    assert_eq!(a.userinfo_bearer(&new_access).await.status(), 200);
    assert_eq!(a.userinfo_bearer(&access).await.status(), 200);

    // Both daemons have read the session (and may hold a copy); a logout on B ends it on A at once.
    let logout = b
        .client
        .get(b.url("/logout"))
        .bearer_auth(&new_access)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 302);
    for token in [&access, &new_access] {
        assert_eq!(a.userinfo_bearer(token).await.status(), 401);
        assert_eq!(b.userinfo_bearer(token).await.status(), 401);
    }
}

#[actix_rt::test]
async fn a_cookie_session_moves_between_daemons_and_a_logout_on_one_ends_it_on_both() {
    let redis = RedisServer::start();
    let (a, b) = pair_on(&redis).await;
    let sid = b.login_cookie().await;
    for _ in 0..3 {
        assert_eq!(a.userinfo_cookie(&sid).await.status(), 200);
        assert_eq!(b.userinfo_cookie(&sid).await.status(), 200);
    }
    let refreshed = a.refresh_cookie(&sid).await;
    assert_eq!(refreshed.status(), 200);
    assert_eq!(sid_cookie(&refreshed).as_deref(), Some(sid.as_str()));
    let logout = a
        .client
        .get(a.url("/logout"))
        .header("cookie", format!("sid={sid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 302);
    assert_eq!(b.userinfo_cookie(&sid).await.status(), 401);
    assert_eq!(a.userinfo_cookie(&sid).await.status(), 401);
}

/// Bearer refreshes, cookie-less and cookie ones, and `/userinfo`'s transparent refreshes race
/// on both daemons while Auth0 answers slowly: one refresh reaches Auth0, and every caller gets
/// the new tokens or the session, never a 401 and never a reused refresh token.
#[actix_rt::test]
async fn concurrent_refreshes_across_daemons_by_mixed_routes_make_one_auth0_call() {
    let redis = RedisServer::start();
    let (a, b) = pair_on(&redis).await;
    a.access_tokens_last(1);
    let tokens = a.login_tokens().await;
    let access = text(&tokens, "accessToken");
    let refresh = text(&tokens, "refreshToken");
    a.access_tokens_last(3600);
    a.clock.advance(Duration::from_millis(1_500));
    a.emulator.clear_requests();
    a.emulator.add_fault(Fault {
        delay_ms: 400,
        count: Some(1),
        ..fault("/oauth/token")
    });

    let explicit = join_all(
        [&a, &b, &a, &b]
            .into_iter()
            .map(|app| app.refresh_bearer(&access, &refresh)),
    );
    let transparent = join_all(
        [&b, &a, &b, &a, &b, &a]
            .into_iter()
            .map(|app| app.userinfo_bearer(&access)),
    );
    let (explicit, transparent) = tokio::join!(explicit, transparent);
    let mut new_tokens = std::collections::BTreeSet::new();
    for response in explicit {
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        new_tokens.insert(text(&body, "refreshToken"));
    }
    for response in transparent {
        assert_eq!(response.status(), 200);
    }
    assert_eq!(
        new_tokens.len(),
        1,
        "every caller got the one new refresh token"
    );
    assert_eq!(refresh_calls(&a), 1, "one refresh reached Auth0");
    let families: Vec<Value> = a
        .client
        .get(format!(
            "{}/__emulator/refresh-tokens",
            a.emulator.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        families.iter().all(|f| f["ended"] != "reuse detected"),
        "no refresh token was presented twice: {families:#?}"
    );
}

/// A client that missed a rotation made on the other daemon presents its kept refresh token:
/// it gets the current tokens without an Auth0 call, on either daemon.
#[actix_rt::test]
async fn a_refresh_token_rotated_on_one_daemon_is_answered_on_the_other() {
    let redis = RedisServer::start();
    let (a, b) = pair_on(&redis).await;
    let tokens = a.login_tokens().await;
    let access = text(&tokens, "accessToken");
    let refresh = text(&tokens, "refreshToken");
    let rotated: Value = a
        .refresh_bearer(&access, &refresh)
        .await
        .json()
        .await
        .unwrap();
    a.emulator.clear_requests();
    let missed = b.refresh_bearer(&access, &refresh).await;
    assert_eq!(missed.status(), 200);
    let missed: Value = missed.json().await.unwrap();
    assert_eq!(missed["refreshToken"], rotated["refreshToken"]);
    assert_eq!(refresh_calls(&a), 0, "answered without Auth0");
}

/// Two logins within one second through one client get one access token (no `jti`): one login on
/// each daemon, both sessions work on both, and a Bearer logout on one ends both on both.
#[actix_rt::test]
async fn two_logins_on_two_daemons_sharing_an_access_token_both_work_and_end_together() {
    let redis = RedisServer::start();
    let hosts = redis.host_port();
    let (a, b) = spawn_pair(
        |config| {
            for client in ["api", "web"] {
                config["clients"][client]["audience"] = auth0_emulator::seed::demo::API.into();
            }
        },
        &[("REDIS_HOSTS", &hosts), ("SESSION_SCOPE", "pair")],
    )
    .await;
    let mut attempts = 0;
    let (first, second) = loop {
        attempts += 1;
        let (first, second) = tokio::join!(a.login_tokens(), b.login_tokens());
        if first["accessToken"] == second["accessToken"] {
            break (first, second);
        }
        // The logins fell on both sides of a second: end them and try again.
        assert!(attempts < 10, "10 pairs of logins never shared a token");
        for body in [&first, &second] {
            let logout = a
                .client
                .get(a.url("/logout"))
                .bearer_auth(text(body, "accessToken"))
                .send()
                .await
                .unwrap();
            assert_eq!(logout.status(), 302);
        }
    };
    let access = text(&first, "accessToken");
    for (app, tokens) in [(&a, &first), (&b, &second)] {
        let refreshed = app
            .refresh_bearer(&access, &text(tokens, "refreshToken"))
            .await;
        assert_eq!(
            refreshed.status(),
            200,
            "each session refreshes by its own refresh token"
        );
    }
    assert_eq!(a.userinfo_bearer(&access).await.status(), 200);
    let logout = b
        .client
        .get(b.url("/logout"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 302);
    assert_eq!(a.userinfo_bearer(&access).await.status(), 401);
    assert_eq!(b.userinfo_bearer(&access).await.status(), 401);
}
