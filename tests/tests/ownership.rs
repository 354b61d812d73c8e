//! Write ownership end to end (issue 11; SPEC §5's refresh rules, §7): the real daemon over HTTP
//! against the real emulator, asserting what a user would notice. A refresh racing another never
//! puts back rotated tokens, a logout is final for readers, a store outage after Auth0 rotated is a
//! 503 that loses nothing, one access token may open two sessions, a client is never stranded by
//! a rotation it did not ask for, a cookie storm makes one Auth0 call, and a `kill -9` during
//! refreshes loses no session once the tenant's reuse interval is set.
//!
//! "The emulator saw no reused token" is read from `GET /__emulator/refresh-tokens`: a rotated
//! refresh token presented again ends its family with `"ended": "reuse detected"`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::DAEMON;
use crate::testkit::{
    DaemonProcess, TestApp, answer, assert_error_body, emulator_config, eventually, fault,
    sample_value, set_cookie, sid_cookie, spawn_app, spawn_app_configured, test_seed,
};
use auth0_emulator::Fault;
use auth0_emulator::seed::demo;
use futures_util::future::join_all;
use serde_json::{Value, json};

/// Makes the login clients ask for the demo API: access tokens are then JWTs, signed
/// deterministically within a second (no `jti`), as a real tenant's default-profile tokens are.
fn jwt_access_tokens(config: &mut Value) {
    for client in ["api", "web"] {
        config["clients"][client]["audience"] = json!(demo::API);
    }
}

/// Every refresh-token family the emulator knows (`GET /__emulator/refresh-tokens`).
async fn families(client: &reqwest::Client, emulator_base: &str) -> Vec<Value> {
    let response = client
        .get(format!("{emulator_base}/__emulator/refresh-tokens"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn app_families(app: &TestApp) -> Vec<Value> {
    families(&app.client, app.emulator.base_url()).await
}

/// Fails when Auth0 took any refresh token as reused (and so revoked its family).
fn assert_no_reuse(families: &[Value], when: &str) {
    let reused: Vec<&Value> = families
        .iter()
        .filter(|f| f["ended"] == "reuse detected")
        .collect();
    assert!(
        reused.is_empty(),
        "{when}: the emulator saw a reused refresh token and revoked the family: {reused:#?}"
    );
}

/// The family whose current refresh token is `refresh`.
fn family_of<'a>(families: &'a [Value], refresh: &str) -> Option<&'a Value> {
    families.iter().find(|f| f["current"] == refresh)
}

/// The `/oauth/token` calls with `grant_type=refresh_token` the emulator received.
fn refresh_calls(app: &TestApp) -> usize {
    app.token_calls()
        .iter()
        .filter(|f| f.get("grant_type").map(String::as_str) == Some("refresh_token"))
        .count()
}

/// `(accessToken, refreshToken)` of a token answer.
fn tokens(body: &Value) -> (String, String) {
    let field = |name: &str| {
        body[name]
            .as_str()
            .unwrap_or_else(|| panic!("no {name} in {body}"))
            .to_owned()
    };
    (field("accessToken"), field("refreshToken"))
}

async fn logout_bearer(app: &TestApp, access: &str) -> reqwest::Response {
    app.client
        .get(app.url("/logout"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
}

async fn logout_cookie(app: &TestApp, sid: &str) -> reqwest::Response {
    app.client
        .get(app.url("/logout"))
        .header("cookie", format!("sid={sid}"))
        .send()
        .await
        .unwrap()
}

/// Rounds of a grace-path refresh racing a second rotation. Each round, the client holding
/// `(access, refresh)` rotates, and at once rotates again with what it got; meanwhile, after a
/// delay that varies with the round, it refreshes presenting a superseded refresh token (the one
/// it started the round with, or an older one), sometimes with the access token of the round
/// before (an old alias, kept while the refresh token issued beside it is: SPEC §7). After
/// every round: every answer was 200, Auth0's newest refresh token is one the daemon answered,
/// it works, and the emulator saw no reuse.
async fn grace_path_races_rotation(app: &TestApp, rounds: u32) {
    // Auth0 answers a little slowly, so the grace refresh lands before, during and after flights.
    app.emulator.add_fault(Fault {
        delay_ms: 25,
        ..fault("/oauth/token")
    });
    let login = app.login_tokens().await;
    let (login_access, mut refresh) = tokens(&login);
    let mut access = login_access.clone();
    let mut older: Option<String> = None;
    let mut older_access = login_access;
    for round in 0..rounds {
        let start = refresh.clone();
        let superseded = match (&older, round % 2) {
            (Some(older), 1) => older.clone(),
            _ => start.clone(),
        };
        let grace_access = if round % 3 == 0 {
            older_access.clone()
        } else {
            access.clone()
        };
        let delay = Duration::from_millis(u64::from(round * 7 % 60));
        let rotate_twice = async {
            let (status, first) = answer(app.refresh_bearer(&access, &start).await).await;
            assert_eq!(status, 200, "round {round}, the rotation: {first}");
            let (next_access, next_refresh) = tokens(&first);
            let (status, second) =
                answer(app.refresh_bearer(&next_access, &next_refresh).await).await;
            assert_eq!(status, 200, "round {round}, the second rotation: {second}");
            vec![first, second]
        };
        let grace = async {
            actix_rt::time::sleep(delay).await;
            answer(app.refresh_bearer(&grace_access, &superseded).await).await
        };
        let (mut answered, (status, grace_body)) = tokio::join!(rotate_twice, grace);
        assert_eq!(
            status, 200,
            "round {round}, the superseded refresh token: {grace_body}"
        );
        answered.push(grace_body);

        let families = app_families(app).await;
        assert_no_reuse(&families, &format!("round {round}"));
        assert_eq!(families.len(), 1, "{families:#?}");
        assert_eq!(families[0]["ended"], Value::Null, "{families:#?}");
        let newest = families[0]["current"].as_str().unwrap().to_owned();
        let holder = answered
            .iter()
            .find(|body| body["refreshToken"] == newest.as_str())
            .unwrap_or_else(|| {
                panic!(
                    "round {round}: Auth0's newest refresh token was never answered; the answers: {answered:#?}"
                )
            });
        let (holder_access, _) = tokens(holder);
        // The newest refresh token the client got works (and rotates: the next round's start).
        let (status, body) = answer(app.refresh_bearer(&holder_access, &newest).await).await;
        assert_eq!(
            status, 200,
            "round {round}: the newest refresh token was refused: {body}"
        );
        assert_no_reuse(&app_families(app).await, &format!("after round {round}"));
        older_access = std::mem::replace(&mut access, tokens(&body).0);
        refresh = tokens(&body).1;
        older = Some(start);
    }
    app.emulator.clear_faults();
    eprintln!(
        "{rounds} rounds, {} Auth0 refresh calls",
        refresh_calls(app)
    );
}

/// Test 1, with opaque access tokens (no API audience): every rotation's access token differs.
#[actix_rt::test]
async fn a_grace_path_refresh_racing_a_second_rotation_never_loses_the_newest_token() {
    let app = spawn_app().await;
    grace_path_races_rotation(&app, 30).await;
}

/// Test 1 with JWT access tokens, as a tenant with an API audience issues them: two rotations
/// within one second get the same access token.
#[actix_rt::test]
async fn a_grace_path_refresh_racing_a_second_rotation_with_jwt_access_tokens() {
    let app = spawn_app_configured(jwt_access_tokens, &[]).await;
    grace_path_races_rotation(&app, 30).await;
}

/// Two rotations in a row within one second, with JWT access tokens: Auth0 answers the second
/// with the same access token as the first (same claims, same second, deterministic RS256) but
/// a new refresh token, which the daemon must store and answer. Each rotation uses what the one
/// before answered, as a client does; none may be refused, and Auth0 must never see a reuse.
#[actix_rt::test]
async fn two_rotations_within_one_second_keep_the_newest_refresh_token() {
    let app = spawn_app_configured(jwt_access_tokens, &[]).await;
    let (mut access, mut refresh) = tokens(&app.login_tokens().await);
    let mut stale_answers = Vec::new();
    for rotation in 1..=6 {
        let (status, body) = answer(app.refresh_bearer(&access, &refresh).await).await;
        let families = app_families(&app).await;
        assert_eq!(
            status, 200,
            "rotation {rotation} with the tokens the daemon answered last was refused \
             (answers before it that were not Auth0's newest refresh token: {stale_answers:?}); \
             the emulator's families: {families:#?}"
        );
        assert_no_reuse(&families, &format!("rotation {rotation}"));
        let (next_access, next_refresh) = tokens(&body);
        if families[0]["current"] != next_refresh.as_str() {
            stale_answers.push(format!(
                "rotation {rotation} (same access token as the one before: {})",
                next_access == access
            ));
        }
        (access, refresh) = (next_access, next_refresh);
    }
    assert!(
        stale_answers.is_empty(),
        "answers that were not Auth0's newest refresh token: {stale_answers:?}"
    );
}

/// Test 2: `/userinfo` readers racing a logout, by Bearer and by cookie. A reader that started
/// after the logout was answered gets 401, then and later.
#[actix_rt::test]
async fn after_a_logout_is_answered_no_userinfo_reader_succeeds_now_or_later() {
    let app = spawn_app().await;
    let (access, _) = tokens(&app.login_tokens().await);
    let sid = app.login_cookie().await;
    // Read once each, so the read cache holds both sessions.
    assert_eq!(app.userinfo_bearer(&access).await.status(), 200);
    assert_eq!(app.userinfo_cookie(&sid).await.status(), 200);

    let bearer_out: Mutex<Option<Instant>> = Mutex::new(None);
    let cookie_out: Mutex<Option<Instant>> = Mutex::new(None);
    let deadline = Instant::now() + Duration::from_millis(1500);
    let reader = |by_cookie: bool| {
        let (app, access, sid) = (&app, &access, &sid);
        async move {
            let mut seen = Vec::new();
            while Instant::now() < deadline {
                let started = Instant::now();
                let response = if by_cookie {
                    app.userinfo_cookie(sid).await
                } else {
                    app.userinfo_bearer(access).await
                };
                seen.push((started, response.status().as_u16()));
                // A few hundred reads per reader: enough to straddle the logout, gently.
                actix_rt::time::sleep(Duration::from_millis(5)).await;
            }
            (by_cookie, seen)
        }
    };
    let readers = join_all((0..8).map(|i| reader(i % 2 == 1)));
    let logouts = async {
        actix_rt::time::sleep(Duration::from_millis(400)).await;
        let (bearer, cookie) = tokio::join!(
            async {
                let response = logout_bearer(&app, &access).await;
                *bearer_out.lock().unwrap() = Some(Instant::now());
                response.status()
            },
            async {
                let response = logout_cookie(&app, &sid).await;
                *cookie_out.lock().unwrap() = Some(Instant::now());
                response.status()
            }
        );
        assert_eq!(bearer, 302);
        assert_eq!(cookie, 302);
    };
    let (readers, ()) = tokio::join!(readers, logouts);
    let bearer_out = bearer_out.lock().unwrap().unwrap();
    let cookie_out = cookie_out.lock().unwrap().unwrap();
    let (mut before, mut after) = (0, 0);
    for (by_cookie, seen) in readers {
        let out = if by_cookie { cookie_out } else { bearer_out };
        for (started, status) in seen {
            if started > out {
                after += 1;
                assert_eq!(
                    status,
                    401,
                    "a /userinfo (cookie: {by_cookie}) started {:?} after the logout was answered",
                    started - out
                );
            } else {
                assert!(status == 200 || status == 401, "{status}");
                before += usize::from(status == 200);
            }
        }
    }
    eprintln!("{before} reads answered 200 before the logouts, {after} reads after them");
    assert!(
        before > 0 && after > 0,
        "the readers raced the logouts: {before} before, {after} after"
    );
    // Later: the read cache must not bring the sessions back.
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..5 {
        assert_eq!(app.userinfo_bearer(&access).await.status(), 401);
        assert_eq!(app.userinfo_cookie(&sid).await.status(), 401);
    }
    app.clock.advance(Duration::from_secs(60));
    assert_eq!(app.userinfo_bearer(&access).await.status(), 401);
    assert_eq!(app.userinfo_cookie(&sid).await.status(), 401);
}

/// Test 3, Bearer: the store write fails right after Auth0 rotated. The caller gets 503 (never
/// 401); the same old refresh token then gets the rotated tokens, without a second Auth0 call, and
/// Auth0 never sees the rotated token again.
#[actix_rt::test]
async fn a_store_failure_right_after_auth0_rotated_is_503_and_loses_no_token() {
    let app = spawn_app().await;
    let (access, refresh) = tokens(&app.login_tokens().await);
    app.emulator.clear_requests();
    app.store_faults.fail_writes(1);
    let (status, body) = answer(app.refresh_bearer(&access, &refresh).await).await;
    assert_eq!(status, 503, "{body}");
    assert_error_body(&body, 503, "store");
    assert_eq!(refresh_calls(&app), 1);
    let rotated = app_families(&app).await[0]["current"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(rotated, refresh, "Auth0 rotated");
    // Nobody is logged out by an outage.
    assert_eq!(app.userinfo_bearer(&access).await.status(), 200);

    let body = eventually(
        "the kept tokens to be saved (a refresh answered 200, not 503)",
        Duration::from_secs(5),
        async || {
            let (status, body) = answer(app.refresh_bearer(&access, &refresh).await).await;
            if status == 200 {
                return Some(body);
            }
            assert_eq!(status, 503, "{body}");
            None
        },
    )
    .await;
    let (new_access, new_refresh) = tokens(&body);
    assert_eq!(new_refresh, rotated, "the tokens Auth0 rotated to");
    assert_eq!(
        refresh_calls(&app),
        1,
        "the rotation only: the kept tokens were saved without asking Auth0 again"
    );
    assert_no_reuse(&app_families(&app).await, "after the saved retry");
    // The rotated tokens are the session's: they refresh at Auth0 without a reuse.
    let (status, body) = answer(app.refresh_bearer(&new_access, &new_refresh).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(refresh_calls(&app), 2);
    assert_no_reuse(&app_families(&app).await, "after the next rotation");
    assert_eq!(app.userinfo_bearer(&access).await.status(), 200);
}

/// Test 3, cookie: the same outage after a cookie refresh's rotation.
#[actix_rt::test]
async fn a_store_failure_after_a_cookie_refresh_rotated_is_503_and_loses_no_token() {
    let app = spawn_app().await;
    let sid = app.login_cookie().await;
    app.emulator.clear_requests();
    app.store_faults.fail_writes(1);
    let response = app.refresh_cookie(&sid).await;
    let cleared = set_cookie(&response, "sid");
    let (status, body) = answer(response).await;
    assert_eq!(status, 503, "{body}");
    assert_error_body(&body, 503, "store");
    assert!(
        cleared.is_none(),
        "an outage must not clear the cookie: {cleared:?}"
    );
    assert_eq!(refresh_calls(&app), 1);
    assert_eq!(app.userinfo_cookie(&sid).await.status(), 200);

    eventually(
        "a cookie refresh answered 200, not 503",
        Duration::from_secs(5),
        async || {
            let response = app.refresh_cookie(&sid).await;
            if response.status() == 200 {
                assert_eq!(sid_cookie(&response).as_deref(), Some(sid.as_str()));
                return true;
            }
            assert_eq!(response.status(), 503);
            false
        },
    )
    .await;
    assert_eq!(refresh_calls(&app), 1, "the kept tokens were saved");
    assert_no_reuse(&app_families(&app).await, "after the saved retry");
    // Past the cookie grace, the next cookie refresh calls Auth0 with the rotated token.
    app.clock.advance(Duration::from_secs(31));
    let response = app.refresh_cookie(&sid).await;
    assert_eq!(response.status(), 200);
    assert_eq!(refresh_calls(&app), 2);
    assert_no_reuse(&app_families(&app).await, "after the next rotation");
}

/// Test 4: the same user logged in twice through the same client within one second gets one
/// access token for two sessions. Both refresh, each picked by its refresh token; both are
/// listed; a Bearer logout with the shared token ends both and revokes both refresh tokens.
#[actix_rt::test]
async fn two_logins_in_one_second_share_an_access_token_and_both_sessions_work() {
    let app = spawn_app_configured(jwt_access_tokens, &[]).await;
    let mut attempts = 0;
    let (first, second) = loop {
        attempts += 1;
        let (first, second) = tokio::join!(app.login_tokens(), app.login_tokens());
        if first["accessToken"] == second["accessToken"] {
            break (first, second);
        }
        assert!(attempts < 10, "10 pairs of logins never shared a token");
        for body in [&first, &second] {
            let response = logout_bearer(&app, &tokens(body).0).await;
            assert_eq!(response.status(), 302);
        }
    };
    eprintln!("the logins shared an access token at attempt {attempts}");
    let (shared, refresh_a) = tokens(&first);
    let (_, refresh_b) = tokens(&second);
    assert_ne!(refresh_a, refresh_b);
    assert_eq!(app.userinfo_bearer(&shared).await.status(), 200);

    // Each session refreshes through the shared token, picked by its refresh token.
    let (status, body_b) = answer(app.refresh_bearer(&shared, &refresh_b).await).await;
    assert_eq!(status, 200, "the second login's session: {body_b}");
    let (status, body_a) = answer(app.refresh_bearer(&shared, &refresh_a).await).await;
    assert_eq!(status, 200, "the first login's session: {body_a}");
    let (access_a, refresh_a2) = tokens(&body_a);
    let (access_b, refresh_b2) = tokens(&body_b);
    assert_ne!(refresh_a2, refresh_b2);
    let families = app_families(&app).await;
    assert_no_reuse(&families, "after both refreshes");
    for (name, refresh) in [("first", &refresh_a2), ("second", &refresh_b2)] {
        let family = family_of(&families, refresh).unwrap_or_else(|| {
            panic!("the {name} session's answer is not its family's newest token: {families:#?}")
        });
        assert_eq!(family["ended"], Value::Null, "{family}");
        assert_eq!(family["tokens"], 2, "rotated exactly once: {family}");
    }
    // Each old refresh token, superseded now, still picks its own session.
    let (status, body) = answer(app.refresh_bearer(&shared, &refresh_a).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["refreshToken"], refresh_a2.as_str());
    let (status, body) = answer(app.refresh_bearer(&shared, &refresh_b).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["refreshToken"], refresh_b2.as_str());

    let (status, active) = app.get_json("/users/active").await;
    assert_eq!(status, 200, "{active}");
    assert_eq!(active, json!([{"userId": demo::USER_ID}]));

    app.emulator.clear_requests();
    let response = logout_bearer(&app, &shared).await;
    assert_eq!(response.status(), 302);
    // Both refresh tokens are revoked (in the background).
    eventually(
        "both sessions' refresh tokens revoked",
        Duration::from_secs(3),
        async || {
            let families = app_families(&app).await;
            let ended: Vec<Value> = [&refresh_a2, &refresh_b2]
                .iter()
                .map(|r| family_of(&families, r).map_or(Value::Null, |f| f["ended"].clone()))
                .collect();
            if ended.iter().all(|e| e == "revoked") {
                return Ok(());
            }
            Err(format!(
                "their families ended: {ended:?}; /oauth/revoke calls: {}",
                app.emulator.requests_to("/oauth/revoke").len()
            ))
        },
    )
    .await;
    assert_eq!(app.emulator.requests_to("/oauth/revoke").len(), 2);
    assert_eq!(app.userinfo_bearer(&shared).await.status(), 401);
    assert_eq!(app.userinfo_bearer(&access_a).await.status(), 401);
    assert_eq!(app.userinfo_bearer(&access_b).await.status(), 401);
    assert_eq!(app.refresh_bearer(&shared, &refresh_a2).await.status(), 401);
    assert_eq!(
        app.refresh_bearer(&access_b, &refresh_b2).await.status(),
        401
    );
    let (status, active) = app.get_json("/users/active").await;
    assert_eq!(status, 200);
    assert_eq!(active, json!([]));
}

/// Test 5: a token client whose access token expired calls `/userinfo`, which refreshes and
/// rotates; its old tokens, well past the 30 s grace, still get the current tokens without an
/// Auth0 call. A refresh token older than the last 16 superseded ones is 401.
#[actix_rt::test]
async fn a_client_is_never_stranded_by_a_refresh_it_did_not_ask_for() {
    let app = spawn_app().await;
    app.access_tokens_last(1);
    let (old_access, old_refresh) = tokens(&app.login_tokens().await);
    app.access_tokens_last(3600);
    app.clock.advance(Duration::from_secs(60));
    app.emulator.clear_requests();

    let response = app.userinfo_bearer(&old_access).await;
    assert_eq!(response.status(), 200);
    assert_eq!(refresh_calls(&app), 1, "the transparent refresh");
    let rotated = app_families(&app).await[0]["current"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(rotated, old_refresh);

    // Long past the grace window.
    app.clock.advance(Duration::from_secs(120));
    let (status, body) = answer(app.refresh_bearer(&old_access, &old_refresh).await).await;
    assert_eq!(status, 200, "the client was stranded: {body}");
    let (access, refresh) = tokens(&body);
    assert_eq!(refresh, rotated, "the current tokens");
    assert_ne!(access, old_access);
    assert_eq!(
        refresh_calls(&app),
        1,
        "no Auth0 call for a superseded token"
    );
    assert_no_reuse(&app_families(&app).await, "after the old tokens");

    // The answered tokens are current: they rotate. `answered[i]` was answered beside `issued[i]`.
    let mut issued = vec![old_refresh.clone(), refresh];
    let mut answered = vec![old_access.clone(), access.clone()];
    let mut access = access;
    while issued.len() < 19 {
        let (status, body) =
            answer(app.refresh_bearer(&access, issued.last().unwrap()).await).await;
        assert_eq!(status, 200, "rotation {}: {body}", issued.len());
        let (next_access, next_refresh) = tokens(&body);
        assert!(!issued.contains(&next_refresh), "rotated");
        access = next_access;
        answered.push(access.clone());
        issued.push(next_refresh);
    }
    let calls = refresh_calls(&app);
    assert_eq!(calls, 1 + 17);
    assert_no_reuse(&app_families(&app).await, "after 17 rotations");
    let current = issued.last().unwrap().clone();
    // The 15th superseded refresh token with the access token answered beside it (an alias kept
    // while that refresh token is among the newest 15, SPEC §7): the current tokens, no Auth0 call.
    let (status, body) = answer(
        app.refresh_bearer(&answered[answered.len() - 16], &issued[issued.len() - 16])
            .await,
    )
    .await;
    assert_eq!(status, 200, "the 15th superseded refresh token: {body}");
    assert_eq!(body["refreshToken"], current.as_str());
    // The oldest of the 16 kept: its access token left the 16 aliases, so it opens nothing (401),
    // but with any access token of the session it is answered (SPEC §5).
    let kept = &issued[issued.len() - 17];
    let dropped = &answered[answered.len() - 17];
    let (status, body) = answer(app.refresh_bearer(dropped, kept).await).await;
    assert_eq!(status, 401, "an alias beyond the 16: {body}");
    let (status, body) = answer(app.refresh_bearer(&access, kept).await).await;
    assert_eq!(status, 200, "the 16th superseded refresh token: {body}");
    assert_eq!(body["refreshToken"], current.as_str());
    // One older: 401, the session kept.
    for (age, stale) in [
        (17, &issued[issued.len() - 18]),
        (18, &issued[issued.len() - 19]),
    ] {
        let (status, body) = answer(app.refresh_bearer(&access, stale).await).await;
        assert_eq!(status, 401, "superseded {age} rotations ago: {body}");
    }
    assert_eq!(refresh_calls(&app), calls);
    assert_eq!(app.userinfo_bearer(&access).await.status(), 200);
    let (status, body) = answer(app.refresh_bearer(&access, &current).await).await;
    assert_eq!(status, 200, "{body}");
    assert_no_reuse(&app_families(&app).await, "at the end");
}

/// Test 6: 50 concurrent cookie refreshes of one session make one Auth0 call; every one is 200
/// with the cookie re-issued, and the session is extended.
#[actix_rt::test]
async fn fifty_concurrent_cookie_refreshes_make_one_auth0_call_and_extend_the_session() {
    let app = spawn_app().await;
    let sid = app.login_cookie().await;
    // An hour later the session has 23 h left; a refresh makes it a full day again.
    app.clock.advance(Duration::from_secs(3600));
    app.emulator.clear_requests();
    let answers = join_all((0..50).map(|_| app.refresh_cookie(&sid))).await;
    for response in &answers {
        assert_eq!(response.status(), 200);
        let cookie = set_cookie(response, "sid").expect("the cookie re-issued");
        assert!(cookie.starts_with(&format!("sid={sid};")), "{cookie}");
        assert!(cookie.contains("Max-Age=86400"), "{cookie}");
    }
    assert_eq!(refresh_calls(&app), 1, "one Auth0 call for the storm");
    assert_no_reuse(&app_families(&app).await, "after the storm");

    // Past the login's expiry (login + 24 h), the session lives on: the storm extended it.
    app.clock.advance(Duration::from_secs(86_400 - 3600 + 60));
    let response = app.userinfo_cookie(&sid).await;
    assert_eq!(
        response.status(),
        200,
        "the session ended at the login's expiry: the storm did not extend it"
    );
    // And past the extended expiry it is over.
    app.clock.advance(Duration::from_secs(3600));
    assert_eq!(app.userinfo_cookie(&sid).await.status(), 401);
}

/// Cookie refreshes that join `/userinfo`'s transparent refresh of an expired access token
/// (a flight that does not extend the session) still extend it: 25 `/userinfo` start the
/// transparent refresh (Auth0 answers it 300 ms late), 25 cookie refreshes arrive while it runs;
/// one Auth0 call, every answer 200, and the session lives past the login's expiry.
#[actix_rt::test]
async fn cookie_refreshes_joining_a_transparent_refresh_still_extend_the_session() {
    let app = spawn_app().await;
    app.access_tokens_last(60);
    let sid = app.login_cookie().await;
    // An hour later the access token has expired and the session has 23 h left.
    app.clock.advance(Duration::from_secs(3600));
    app.emulator.clear_requests();
    app.emulator.add_fault(Fault {
        delay_ms: 300,
        ..fault("/oauth/token")
    });
    let (userinfos, refreshes) = tokio::join!(
        join_all((0..25).map(|_| app.userinfo_cookie(&sid))),
        async {
            // The transparent flight is waiting on Auth0: every cookie refresh joins it.
            eventually(
                "/userinfo's refresh reaching Auth0",
                Duration::from_secs(5),
                async || refresh_calls(&app) == 1,
            )
            .await;
            join_all((0..25).map(|_| app.refresh_cookie(&sid))).await
        },
    );
    for response in userinfos.iter().chain(&refreshes) {
        assert_eq!(response.status(), 200, "{}", response.url());
    }
    for response in &refreshes {
        let cookie = set_cookie(response, "sid").expect("the cookie re-issued");
        assert!(cookie.contains("Max-Age=86400"), "{cookie}");
    }
    assert_eq!(refresh_calls(&app), 1, "one Auth0 call for both kinds");

    // Past the login's expiry (login + 24 h) the session lives on: the refreshes extended it.
    app.clock.advance(Duration::from_secs(86_400 - 3600 + 60));
    assert_eq!(
        app.userinfo_cookie(&sid).await.status(),
        200,
        "the session ended at the login's expiry: a refresh that joined /userinfo's did not extend it"
    );
}

/// The daemon's environment in the process test: access logs off, the `listening` line on.
const QUIET: &[(&str, &str)] = &[("LOG_LEVEL", "warn,auth0_client::app=info")];

/// What one storm client holds: the tokens it was last answered, and how its loop ended.
struct Held {
    access: String,
    refresh: String,
    answered: usize,
    in_flight_at_kill: bool,
}

/// Test 7: with the tenant's reuse interval (overlap) set above the daemon's Auth0 timeout, a
/// `kill -9` in the middle of a refresh storm loses no session: every client refreshes with the
/// tokens it was last answered, gets 200, and `/userinfo` works.
#[test]
fn a_kill_9_during_refreshes_loses_no_session_with_the_overlap_set() {
    const SESSIONS: usize = 20;
    let emulator = auth0_emulator::Emulator::start(test_seed()).unwrap();
    emulator.update_settings(|s| s.refresh_token_leeway_seconds = 60);
    let config = emulator_config(&emulator);
    let daemon = DaemonProcess::start(DAEMON, &config, QUIET);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let base = emulator.base_url().to_owned();
    runtime.block_on(async move {
        let old = format!("http://127.0.0.1:{}", daemon.port);
        let mut logins = Vec::new();
        for _ in 0..SESSIONS {
            let response = client
                .post(format!("{old}/oauth/token"))
                .form(&[
                    ("grant_type", "password"),
                    ("username", demo::USER_EMAIL),
                    ("password", demo::USER_PASSWORD),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            logins.push(tokens(&response.json().await.unwrap()));
        }
        let killed = Arc::new(AtomicBool::new(false));
        let storm: Vec<_> = logins
            .into_iter()
            .enumerate()
            .map(|(i, (access, refresh))| {
                let (client, old, killed) = (client.clone(), old.clone(), killed.clone());
                tokio::spawn(async move {
                    let mut held = Held {
                        access,
                        refresh,
                        answered: 0,
                        in_flight_at_kill: false,
                    };
                    while !killed.load(Ordering::SeqCst) {
                        let sent = client
                            .post(format!("{old}/refreshtoken"))
                            .bearer_auth(&held.access)
                            .json(&json!({"refresh_token": held.refresh}))
                            .send()
                            .await;
                        let body = match sent {
                            Ok(response) => {
                                let status = response.status();
                                match response.text().await {
                                    Ok(text) if status == 200 => text,
                                    Ok(text) => {
                                        panic!("session {i}: a refresh answered {status}: {text}")
                                    }
                                    Err(_) => {
                                        held.in_flight_at_kill = true;
                                        break;
                                    }
                                }
                            }
                            Err(_) => {
                                held.in_flight_at_kill = true;
                                break;
                            }
                        };
                        (held.access, held.refresh) = tokens(&serde_json::from_str(&body).unwrap());
                        held.answered += 1;
                    }
                    held
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(2500)).await;
        killed.store(true, Ordering::SeqCst);
        let daemon = tokio::task::spawn_blocking(move || daemon.kill9_and_restart(DAEMON, QUIET))
            .await
            .unwrap();
        let mut held = Vec::new();
        for client in storm {
            held.push(client.await.unwrap());
        }
        let answered: usize = held.iter().map(|h| h.answered).sum();
        let in_flight = held.iter().filter(|h| h.in_flight_at_kill).count();
        let rotations = emulator
            .requests_to("/oauth/token")
            .iter()
            .filter(|r| {
                r.status == Some(200)
                    && r.form.as_ref().is_some_and(|f| {
                        f.get("grant_type").map(String::as_str) == Some("refresh_token")
                    })
            })
            .count();
        eprintln!(
            "before the kill: {answered} refreshes answered, {rotations} rotations at Auth0, \
             {in_flight} of {SESSIONS} clients had a refresh in flight"
        );
        assert!(answered > 0, "the storm ran");
        assert!(
            in_flight > 0,
            "the kill landed between refreshes: nothing was in flight"
        );

        let new = format!("http://127.0.0.1:{}", daemon.port);
        let mut lost = Vec::new();
        for (i, held) in held.iter().enumerate() {
            let response = client
                .post(format!("{new}/refreshtoken"))
                .bearer_auth(&held.access)
                .json(&json!({"refresh_token": held.refresh}))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let text = response.text().await.unwrap();
            if status != 200 {
                lost.push(format!(
                    "session {i} (in flight at the kill: {}): {status} {text}",
                    held.in_flight_at_kill
                ));
                continue;
            }
            let (access, _) = tokens(&serde_json::from_str(&text).unwrap());
            let status = client
                .get(format!("{new}/userinfo"))
                .bearer_auth(&access)
                .send()
                .await
                .unwrap()
                .status();
            if status != 200 {
                lost.push(format!("session {i}: /userinfo {status}"));
            }
        }
        let families = families(&client, &base).await;
        assert!(lost.is_empty(), "sessions lost to the kill: {lost:#?}");
        assert_no_reuse(&families, "after the restart");
        let ended: Vec<&Value> = families.iter().filter(|f| !f["ended"].is_null()).collect();
        assert!(ended.is_empty(), "{ended:#?}");

        // The live-session gauge counts every session after the kill as before it (sled keeps
        // the count in the writes' own transactions: nothing is recounted at the start).
        eventually(
            &format!("auth0_client_sessions_live to be {SESSIONS}"),
            Duration::from_secs(10),
            async || {
                let metrics = client.get(format!("{new}/-/metrics")).send().await.unwrap();
                let live =
                    sample_value(&metrics.text().await.unwrap(), "auth0_client_sessions_live");
                if live == Some(SESSIONS as f64) {
                    Ok(())
                } else {
                    Err(format!("auth0_client_sessions_live {live:?}"))
                }
            },
        )
        .await;
        drop(daemon);
    });
}
