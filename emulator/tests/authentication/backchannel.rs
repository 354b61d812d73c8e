//! Back-channel logout (`src/backchannel.rs`): one Auth0 session per login without the SSO cookie,
//! joined by a login presenting it; logout tokens POSTed to the client's URLs when `/v2/logout` or
//! the Management API ends a session; the control routes.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{CALLBACK, Tenant, claims, header, redirect_params};

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A tiny HTTP server that answers 200 to every request and keeps each body.
fn receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/backchannel-logout",
        listener.local_addr().unwrap()
    );
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            kept.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&body).into_owned());
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, bodies)
}

/// The logout tokens received, waiting up to 5 s for `count` of them.
fn received(bodies: &Arc<Mutex<Vec<String>>>, count: usize) -> Vec<Value> {
    let started = Instant::now();
    while bodies.lock().unwrap().len() < count && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    bodies
        .lock()
        .unwrap()
        .iter()
        .map(|body| {
            let token = body.strip_prefix("logout_token=").unwrap();
            claims(token)
        })
        .collect()
}

fn cookie_of(response: &reqwest::Response) -> String {
    response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// A code-flow login of alice with the shortcut, presenting `cookie` when given: the SSO cookie and
/// the ID token's `sid`.
async fn login(tenant: &Tenant, cookie: Option<&str>) -> (String, String) {
    let mut request = tenant.http.get(tenant.url("/authorize")).query(&[
        ("response_type", "code"),
        ("client_id", "web"),
        ("redirect_uri", CALLBACK),
        ("login_hint", "alice@example.com"),
        ("password", "alice-pw"),
    ]);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.unwrap();
    let sso = cookie_of(&response);
    let params = redirect_params(&response, CALLBACK);
    let (status, body) = tenant
        .token(json!({"grant_type": "authorization_code", "client_id": "web", "client_secret": "web-secret",
            "code": params["code"], "redirect_uri": CALLBACK}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sid = claims(body["id_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    (sso, sid)
}

async fn set_urls(tenant: &Tenant, urls: &[&str]) {
    let response = tenant
        .http
        .put(tenant.url("/__emulator/clients/web/backchannel-logout-urls"))
        .json(&json!({"urls": urls}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_login_with_the_sso_cookie_joins_its_session_and_v2_logout_tells_the_client() {
    let tenant = Tenant::start();
    let (url, bodies) = receiver();
    set_urls(&tenant, &[&url]).await;

    let (first_cookie, first) = login(&tenant, None).await;
    let (_, second) = login(&tenant, None).await;
    assert_ne!(
        first, second,
        "a login without the SSO cookie opens a new Auth0 session"
    );
    let (_, joined) = login(&tenant, Some(&first_cookie)).await;
    assert_eq!(joined, first, "a login presenting it joins that session");

    let logout = tenant
        .http
        .get(tenant.url("/v2/logout"))
        .header("cookie", &first_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::OK);
    let tokens = received(&bodies, 1);
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    let token = &tokens[0];
    assert_eq!(token["sid"], first);
    assert_eq!(token["sub"], "auth0|alice");
    assert_eq!(token["aud"], "web");
    assert_eq!(token["iss"], tenant.emulator.issuer());
    assert!(token["events"][EVENT].is_object(), "{token}");
    assert!(
        token["jti"].is_string() && token.get("nonce").is_none(),
        "{token}"
    );
    let raw = bodies.lock().unwrap()[0].clone();
    let signed = raw.strip_prefix("logout_token=").unwrap();
    assert_eq!(header(signed)["alg"], "RS256");
    assert_eq!(header(signed)["kid"], tenant.emulator.current_kid());

    // The receiver has the token before the emulator has its answer and records the delivery.
    let started = Instant::now();
    let deliveries = loop {
        let deliveries = tenant.get_json("/__emulator/backchannel-deliveries").await;
        if !deliveries[0]["status"].is_null() || started.elapsed() > Duration::from_secs(5) {
            break deliveries;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(deliveries[0]["status"], 200, "{deliveries}");
    assert_eq!(deliveries[0]["url"], url.as_str());
}

#[tokio::test]
async fn the_management_api_ends_every_session_of_a_user_and_tells_the_client() {
    let tenant = Tenant::start();
    let (url, bodies) = receiver();
    set_urls(&tenant, &[&url]).await;
    let (cookie, first) = login(&tenant, None).await;
    let (_, second) = login(&tenant, None).await;
    let token = tenant.emulator.management_token("m2m");

    let ended = tenant
        .http
        .delete(tenant.url("/api/v2/users/auth0%7Calice/sessions"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::NO_CONTENT);
    let mut sids: Vec<String> = received(&bodies, 2)
        .iter()
        .map(|t| t["sid"].as_str().unwrap().to_owned())
        .collect();
    sids.sort();
    let mut expected = vec![first, second];
    expected.sort();
    assert_eq!(sids, expected);

    // The SSO cookie no longer logs in silently.
    let silent = tenant
        .http
        .get(tenant.url("/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", CALLBACK),
            ("prompt", "none"),
        ])
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        redirect_params(&silent, CALLBACK)["error"],
        "login_required"
    );

    let unknown = tenant
        .http
        .delete(tenant.url("/api/v2/users/auth0%7Cnobody/sessions"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let unauthenticated = tenant
        .http
        .delete(tenant.url("/api/v2/users/auth0%7Calice/sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_control_api_mints_logout_tokens_with_claims_replaced_or_removed() {
    let tenant = Tenant::start();
    let minted: Value = tenant
        .http
        .post(tenant.url("/__emulator/logout-token"))
        .json(&json!({"client_id": "web", "sub": "auth0|alice", "claims": {"nonce": "n", "events": null}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = claims(minted["logout_token"].as_str().unwrap());
    assert_eq!(token["sub"], "auth0|alice");
    assert_eq!(token["nonce"], "n");
    assert!(
        token.get("events").is_none() && token.get("sid").is_none(),
        "{token}"
    );
    assert_eq!(
        token["exp"].as_i64().unwrap() - token["iat"].as_i64().unwrap(),
        120
    );

    let bad = tenant
        .http
        .put(tenant.url("/__emulator/clients/web/backchannel-logout-urls"))
        .json(&json!({"urls": ["not a url"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let missing = tenant
        .http
        .put(tenant.url("/__emulator/clients/nobody/backchannel-logout-urls"))
        .json(&json!({"urls": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}
