//! An upstream deployment behind its gateway (issue 23): the daemon listens on `0.0.0.0` and is
//! called from a peer on a private address (a network namespace, [`PeerNamespace`]) that sets
//! `X-Forwarded-Host`, `X-Forwarded-Proto` and `X-Forwarded-For`, as the platform's API gateway
//! does. With `ORIGINAL_PROTOCOL_HEADER` set (every upstream deployment sets it) and no
//! `server.trustedProxies`, the private ranges are trusted: the logout's `returnTo` is the public
//! origin, a website login from the public origin is a same-site one, Auth0 is told the end
//! user's IP, and the check-up stays OK. Without the variable, the same headers are ignored and
//! the check-up warns, still 200.

use std::sync::Arc;

use serde_json::json;

use crate::netns::{CurlAnswer, PeerNamespace};
use crate::testkit::{TestApp, assert_proxies_warning, query_param, spawn_app_configured};
use auth0_emulator::seed::demo;

const PUBLIC_HOST: &str = "app.example.com";
const END_USER: &str = "203.0.113.9";

/// `curl` from the peer, off the runtime's thread (the daemon's actors run on it).
async fn curl(peer: &Arc<PeerNamespace>, args: Vec<String>) -> CurlAnswer {
    let peer = peer.clone();
    actix_web::rt::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        peer.curl(&args)
    })
    .await
    .unwrap()
}

/// The gateway's headers for a request to the public origin `https://app.example.com`.
fn gateway_headers() -> Vec<String> {
    [
        format!("X-Forwarded-Host: {PUBLIC_HOST}"),
        "X-Forwarded-Proto: https".to_owned(),
        format!("X-Forwarded-For: {END_USER}"),
    ]
    .into_iter()
    .flat_map(|h| ["-H".to_owned(), h])
    .collect()
}

/// A header's value in a `curl -i` answer.
fn header_of(answer: &CurlAnswer, name: &str) -> Option<String> {
    answer.body.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}

/// The daemon on `0.0.0.0`, with `env`, and a peer on a private address.
async fn behind_a_gateway(env: &[(&str, &str)]) -> (TestApp, Arc<PeerNamespace>) {
    let app = spawn_app_configured(|c| c["server"]["bind"] = json!("0.0.0.0"), env).await;
    (app, Arc::new(PeerNamespace::create()))
}

/// The logout through the gateway: the `returnTo` Auth0 is sent.
async fn logout_return_to(app: &TestApp, peer: &Arc<PeerNamespace>) -> String {
    let mut args = vec![
        "-i".to_owned(),
        "-H".to_owned(),
        "client-type: api".to_owned(),
    ];
    args.extend(gateway_headers());
    args.push(peer.url(app.port, "/logout?redirect=/logout-page"));
    let answer = curl(peer, args).await;
    assert_eq!(answer.status, 302, "{answer:?}");
    let location = header_of(&answer, "location").expect("Location");
    query_param(&location, "returnTo").expect("returnTo")
}

/// A website (cookie) password login through the gateway from a page of the public origin.
async fn website_login(app: &TestApp, peer: &Arc<PeerNamespace>) -> CurlAnswer {
    let headers = [
        "client-type: web".to_owned(),
        format!("Origin: https://{PUBLIC_HOST}"),
        "Sec-Fetch-Site: same-origin".to_owned(),
    ];
    password_login(app, peer, &headers, &["-i"]).await
}

/// The demo user's password grant from the peer, through the gateway, with `headers` and extra
/// curl `flags`.
async fn password_login(
    app: &TestApp,
    peer: &Arc<PeerNamespace>,
    headers: &[String],
    flags: &[&str],
) -> CurlAnswer {
    let mut args: Vec<String> = flags.iter().map(|flag| (*flag).to_owned()).collect();
    for header in headers {
        args.extend(["-H".to_owned(), header.clone()]);
    }
    args.extend(gateway_headers());
    for field in [
        "grant_type=password".to_owned(),
        format!("username={}", demo::USER_EMAIL),
        format!("password={}", demo::USER_PASSWORD),
    ] {
        args.extend(["--data-urlencode".to_owned(), field]);
    }
    args.push(peer.url(app.port, "/oauth/token"));
    curl(peer, args).await
}

/// What the daemon told Auth0 of the user on its last password grant.
fn auth0_forwarded_for(app: &TestApp) -> String {
    let calls = app.emulator.requests_to("/oauth/token");
    let last = calls.last().expect("a token call");
    last.headers["auth0-forwarded-for"].clone()
}

#[actix_rt::test]
async fn with_original_protocol_header_the_gateway_on_a_private_address_is_believed() {
    let (app, peer) = behind_a_gateway(&[("ORIGINAL_PROTOCOL_HEADER", "x-forwarded-proto")]).await;

    // The public origin, not the internal host name Auth0 would refuse.
    assert_eq!(
        logout_return_to(&app, &peer).await,
        format!("https://{PUBLIC_HOST}/logout-page")
    );

    // A login page of the public origin is same-site: 200 and the cookie, not 403.
    let answer = website_login(&app, &peer).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let cookie = header_of(&answer, "set-cookie").expect("Set-Cookie");
    assert!(cookie.starts_with("sid="), "{cookie}");
    // Auth0's brute-force protection sees the user, not the gateway.
    assert_eq!(auth0_forwarded_for(&app), END_USER);

    let (status, body) = app.get_json("/-/check-up").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "OK");
    assert_eq!(body["checks"]["proxies"], "OK");
    assert!(body.get("warnings").is_none(), "{body}");
}

#[actix_rt::test]
async fn without_original_protocol_header_the_gateway_is_ignored_and_reported() {
    let (app, peer) = behind_a_gateway(&[]).await;
    let internal = format!("{}:{}", peer.host_addr, app.port);

    // The forwarded host is ignored: the returnTo is built on the Host the peer reached.
    assert_eq!(
        logout_return_to(&app, &peer).await,
        format!("https://{internal}/logout-page")
    );

    // The public origin is not this daemon's host when X-Forwarded-Host is not believed.
    let answer = website_login(&app, &peer).await;
    assert_eq!(answer.status, 403, "{answer:?}");
    // A token login (no cookie, no cross-site rule) shows what Auth0 is told: the peer itself.
    let answer = password_login(&app, &peer, &["client-type: api".to_owned()], &[]).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(auth0_forwarded_for(&app), peer.peer_addr.to_string());

    // A warning naming the peer, the status still OK.
    assert_proxies_warning(&app, &peer.peer_addr.to_string()).await;
}
