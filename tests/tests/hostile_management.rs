//! The management routes against hostile callers (SPEC §6, issue 22): the cross-site refusal on
//! every route that changes anything, the `mia_client_key` cookie rule, and the default guard with
//! neither `apiKeys` nor `server.managementBind` (a peer on another address through
//! [`PeerNamespace`]). Each refusal is shown beside the legitimate call that still works.

use auth0_emulator::seed::demo;
use serde_json::{Value, json};

use std::sync::Arc;

use crate::import::cli;
use crate::netns::{CurlAnswer, PeerNamespace};
use crate::testkit::{TestApp, answer, assert_error_body, spawn_app, spawn_app_configured};

const ENCODED_USER_ID: &str = "auth0%7C64b0c0ffee0000000000d001";

/// Every call the emulator received that a management write would make.
fn auth0_writes(app: &TestApp) -> usize {
    app.emulator.requests_to("/api/v2/*").len() + app.emulator.requests_to("/dbconnections/*").len()
}

/// One management write per route that changes anything, each a request a page elsewhere could
/// make the browser send.
fn writes(app: &TestApp) -> Vec<(&'static str, reqwest::RequestBuilder)> {
    let admin_groups = json!({"app_metadata": {"groups": ["admin"]}});
    let users = json!([{"email": "demo@example.com", "app_metadata": {"groups": ["admin"]}}]);
    let form = reqwest::multipart::Form::new().text("upsert", "true").part(
        "users",
        reqwest::multipart::Part::bytes(users.to_string().into_bytes()).file_name("users.json"),
    );
    let c = &app.client;
    vec![
        (
            "POST /users",
            c.post(app.url("/users")).json(&json!({
                "email": "forged@example.com", "password": "Forged-password-1"
            })),
        ),
        (
            "PATCH /users/{id}",
            c.patch(app.url(&format!("/users/{ENCODED_USER_ID}")))
                .json(&admin_groups),
        ),
        (
            "DELETE /users/{id}/sessions",
            c.delete(app.url(&format!("/users/{ENCODED_USER_ID}/sessions"))),
        ),
        (
            "POST /change-password",
            c.post(app.url("/change-password"))
                .json(&json!({"email": demo::USER_EMAIL})),
        ),
        (
            "POST /users/import",
            c.post(app.url("/users/import")).multipart(form),
        ),
        (
            "DELETE /users/{id}",
            c.delete(app.url(&format!("/users/{ENCODED_USER_ID}"))),
        ),
    ]
}

/// What a browser on another site sends, each with the reason the 403 must name.
fn cross_site_headers(port: u16) -> Vec<(Vec<(&'static str, String)>, String)> {
    vec![
        (
            vec![
                ("sec-fetch-site", "cross-site".into()),
                ("origin", "https://evil.example".into()),
            ],
            "Sec-Fetch-Site is cross-site".into(),
        ),
        (
            vec![("origin", "https://evil.example".into())],
            "Origin \"https://evil.example\" is neither".into(),
        ),
        (vec![("origin", "null".into())], "Origin is null".into()),
        (
            vec![
                ("sec-fetch-site", "same-site".into()),
                ("origin", format!("http://localhost:{port}")),
            ],
            format!("Origin \"http://localhost:{port}\" is neither"),
        ),
        (
            vec![("sec-fetch-site", "same-site".into())],
            "Sec-Fetch-Site is same-site and no Origin".into(),
        ),
    ]
}

#[actix_rt::test]
async fn cross_site_management_writes_are_refused_before_auth0_is_called() {
    let app = spawn_app().await;
    app.emulator.clear_requests();
    for (headers, reason) in cross_site_headers(app.port) {
        for (route, request) in writes(&app) {
            let mut request = request;
            for (name, value) in &headers {
                request = request.header(*name, value);
            }
            let (status, body) = answer(request.send().await.unwrap()).await;
            assert_eq!(status, 403, "{route} {headers:?}: {body}");
            assert_error_body(
                &body,
                403,
                "a cross-site page may not call a management route that changes anything: ",
            );
            assert_error_body(&body, 403, &reason);
        }
    }
    assert_eq!(auth0_writes(&app), 0, "{:#?}", app.emulator.requests());
    let user = app
        .emulator
        .user(demo::USER_ID)
        .expect("the demo user is still there");
    assert_ne!(user["app_metadata"]["groups"], json!(["admin"]), "{user}");

    // Reads stay open to a browser on another site (no change, and CORS keeps the answer).
    let (status, body) = answer(
        app.client
            .get(app.url("/users/active"))
            .header("sec-fetch-site", "cross-site")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[actix_rt::test]
async fn same_origin_and_server_to_server_management_writes_are_served() {
    let app = spawn_app().await;
    let own = app.address.clone();
    for headers in [
        vec![],
        vec![("sec-fetch-site", "same-origin"), ("origin", own.as_str())],
        vec![("origin", own.as_str())],
        vec![("sec-fetch-site", "same-site"), ("origin", own.as_str())],
    ] {
        let mut request = app
            .client
            .patch(app.url(&format!("/users/{ENCODED_USER_ID}")))
            .json(&json!({"user_metadata": {"headers": headers.len()}}));
        for (name, value) in &headers {
            request = request.header(*name, *value);
        }
        let (status, body) = answer(request.send().await.unwrap()).await;
        assert_eq!(status, 200, "{headers:?}: {body}");
    }
    // Every write of the refusal test, server to server, reaches Auth0.
    for (route, request) in writes(&app) {
        let (status, body) = answer(request.send().await.unwrap()).await;
        assert!(
            (200..300).contains(&status),
            "{route} server to server: {status} {body}"
        );
    }
    assert!(
        app.emulator.user(demo::USER_ID).is_none(),
        "the delete went through"
    );
}

#[actix_rt::test]
async fn a_management_key_in_the_cookie_needs_a_same_origin_page() {
    let app = spawn_app_configured(
        |config| {
            config["apiKeys"] = json!([
                {"key": "admin-key-0123456789", "clientType": "api", "management": true}
            ]);
        },
        &[],
    )
    .await;
    let own = app.address.clone();
    let cookie = "mia_client_key=admin-key-0123456789";
    let call = |headers: Vec<(&'static str, String)>| {
        let mut request = app
            .client
            .get(app.url("/users/active"))
            .header("cookie", cookie);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request
    };
    for headers in [
        vec![
            ("sec-fetch-site", "same-site".to_owned()),
            ("origin", own.clone()),
        ],
        vec![("sec-fetch-site", "none".to_owned())],
        vec![("sec-fetch-site", "cross-site".to_owned())],
        vec![("origin", own.clone())],
    ] {
        let (status, body) = answer(call(headers.clone()).send().await.unwrap()).await;
        assert_eq!(status, 403, "{headers:?}: {body}");
        assert_error_body(
            &body,
            403,
            "`mia_client_key` cookie is accepted on the management routes only from a same-origin page",
        );
    }
    for headers in [
        vec![],
        vec![
            ("sec-fetch-site", "same-origin".to_owned()),
            ("origin", own.clone()),
        ],
    ] {
        let (status, body) = answer(call(headers.clone()).send().await.unwrap()).await;
        assert_eq!(status, 200, "{headers:?}: {body}");
    }
    // The same key in the `secret` header is a program's credential: served whatever the headers.
    let (status, body) = answer(
        app.client
            .get(app.url("/users/active"))
            .header("secret", "admin-key-0123456789")
            .header("sec-fetch-site", "none")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// `curl` from `peer` off the test's runtime thread, which also runs the daemon.
async fn curl(peer: &Arc<PeerNamespace>, args: &[&str]) -> CurlAnswer {
    let peer = peer.clone();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    actix_rt::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        peer.curl(&args)
    })
    .await
    .expect("curl ran")
}

fn is_guard_refusal(body: &Value) {
    assert_error_body(body, 403, "`apiKeys`");
    assert_error_body(body, 403, "`server.managementBind`");
}

#[actix_rt::test]
async fn without_keys_or_a_private_listener_only_a_local_end_user_is_served() {
    let app = spawn_app_configured(|config| config["server"]["bind"] = json!("0.0.0.0"), &[]).await;
    let peer = Arc::new(PeerNamespace::create());
    app.emulator.clear_requests();

    // Another machine: refused, read or write, and Auth0 never called.
    let read = curl(&peer, &[&peer.url(app.port, "/users/active")]).await;
    assert_eq!(read.status, 403, "{read:?}");
    is_guard_refusal(&read.json());
    let delete = curl(
        &peer,
        &[
            "-X",
            "DELETE",
            &peer.url(app.port, &format!("/users/{ENCODED_USER_ID}")),
        ],
    )
    .await;
    assert_eq!(delete.status, 403, "{delete:?}");
    is_guard_refusal(&delete.json());
    let list = curl(&peer, &[&peer.url(app.port, "/users")]).await;
    assert_eq!(list.status, 403, "{list:?}");
    assert_eq!(auth0_writes(&app), 0, "{:#?}", app.emulator.requests());
    assert!(app.emulator.user(demo::USER_ID).is_some());
    // The public routes still answer the peer.
    let health = curl(&peer, &[&peer.url(app.port, "/-/healthz")]).await;
    assert_eq!(health.status, 200, "{health:?}");

    // An nginx on this machine forwarding a user: refused too.
    let (status, body) = answer(
        app.client
            .get(app.url("/users/active"))
            .header("x-forwarded-for", "203.0.113.9")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    is_guard_refusal(&body);

    // The local administrator: served.
    let (status, body) = app.get_json("/users/active").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.get_json(&format!("/users/{ENCODED_USER_ID}")).await;
    assert_eq!(status, 200, "{body}");
}

#[actix_rt::test]
async fn upstream_the_trusted_proxies_are_served_and_others_refused() {
    let peer = Arc::new(PeerNamespace::create());
    let peer_addr = peer.peer_addr.to_string();
    // The gateway's network is trusted: its peer is served, with or without X-Forwarded-For.
    let app = spawn_app_configured(
        |config| {
            config["server"]["bind"] = json!("0.0.0.0");
            config["server"]["trustedProxies"] = json!([format!("{peer_addr}/32"), "127.0.0.1/8"]);
        },
        &[("ORIGINAL_PROTOCOL_HEADER", "x-original-proto")],
    )
    .await;
    let served = curl(
        &peer,
        &[
            "-H",
            "x-forwarded-for: 203.0.113.9",
            &peer.url(app.port, "/users/active"),
        ],
    )
    .await;
    assert_eq!(served.status, 200, "{served:?}");
    let (status, body) = app.get_json("/users/active").await;
    assert_eq!(status, 200, "{body}");
    drop(app);

    // A peer outside the trusted proxies: refused.
    let app = spawn_app_configured(
        |config| {
            config["server"]["bind"] = json!("0.0.0.0");
            config["server"]["trustedProxies"] = json!(["127.0.0.1/8"]);
        },
        &[("ORIGINAL_PROTOCOL_HEADER", "x-original-proto")],
    )
    .await;
    let refused = curl(&peer, &[&peer.url(app.port, "/users/active")]).await;
    assert_eq!(refused.status, 403, "{refused:?}");
    let body = refused.json();
    is_guard_refusal(&body);
    assert_error_body(&body, 403, "`server.trustedProxies`");
}

#[actix_rt::test]
async fn api_keys_open_the_management_routes_to_another_machine() {
    let app = spawn_app_configured(
        |config| {
            config["server"]["bind"] = json!("0.0.0.0");
            config["apiKeys"] = json!([
                {"key": "admin-key-0123456789", "clientType": "api", "management": true}
            ]);
        },
        &[],
    )
    .await;
    let peer = Arc::new(PeerNamespace::create());
    let served = curl(
        &peer,
        &[
            "-H",
            "secret: admin-key-0123456789",
            &peer.url(app.port, "/users/active"),
        ],
    )
    .await;
    assert_eq!(served.status, 200, "{served:?}");
    let missing = curl(&peer, &[&peer.url(app.port, "/users/active")]).await;
    assert_eq!(missing.status, 401, "{missing:?}");
}

/// A password login naming a connection Auth0 does not know, on a client without
/// `supportedConnections`: the caller's mistake, 400 naming `connection`, no ERROR line; the same
/// unknown connection from the config (`defaultConnection`) is the daemon's, 502 and an ERROR.
#[test]
fn an_unknown_connection_the_caller_named_is_a_400_not_a_5xx() {
    use crate::testkit::{DaemonProcess, emulator_config, test_seed};
    let emulator = auth0_emulator::Emulator::start(test_seed()).unwrap();
    let mut config = emulator_config(&emulator);
    config["clients"]["api"]["supportedConnections"] = json!([]);
    config["clients"]["plain"]["supportedConnections"] = json!([]);
    config["clients"]["plain"]["defaultConnection"] = json!("Not-A-Realm");
    let daemon = DaemonProcess::start(crate::DAEMON, &config, &[]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let login = |client: &str, connection: Option<&str>| {
        let mut form = vec![
            ("grant_type", "password"),
            ("username", demo::USER_EMAIL),
            ("password", demo::USER_PASSWORD),
        ];
        if let Some(connection) = connection {
            form.push(("connection", connection));
        }
        runtime.block_on(async {
            let response = reqwest::Client::new()
                .post(daemon.url("/oauth/token"))
                .header("client-type", client)
                .form(&form)
                .send()
                .await
                .unwrap();
            answer(response).await
        })
    };
    let (status, body) = login("api", Some("Not-A-Realm"));
    assert_eq!(status, 400, "{body}");
    assert_error_body(
        &body,
        400,
        "invalid `connection`: Auth0 refused it: Unknown realm",
    );
    assert_eq!(body["errorCode"], "invalid_request", "{body}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let errors: Vec<Value> = daemon
        .log_lines()
        .into_iter()
        .filter(|line| line["level"] == "ERROR")
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // The legitimate login on the same client still works.
    let (status, body) = login("api", Some(demo::CONNECTION));
    assert_eq!(status, 200, "{body}");

    // The configuration's connection: a 502 and an ERROR line for the operator.
    let (status, body) = login("plain", None);
    assert_eq!(status, 502, "{body}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        daemon
            .log_lines()
            .iter()
            .any(|line| line["level"] == "ERROR"),
        "no ERROR line for a configuration fault"
    );
}

/// A plain HTTP server on `addr` that records every request it receives (head and body, as
/// bytes) and answers each with `answer`.
fn recording_server(
    addr: &str,
    answer: String,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind(addr).unwrap();
    let local = listener.local_addr().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            stream
                .set_read_timeout(Some(std::time::Duration::from_millis(300)))
                .unwrap();
            let mut request = Vec::new();
            let mut chunk = [0u8; 16 * 1024];
            while let Ok(n) = stream.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&chunk[..n]);
            }
            record
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&request).into_owned());
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    (local, seen)
}

const KEY: (&str, &str) = ("AUTH0_CLIENT_API_KEY", "management-key-never-elsewhere");

#[actix_rt::test]
async fn the_import_cli_follows_no_redirect_and_the_key_stays_home() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.json");
    std::fs::write(&file, json!([{"email": "a@example.com"}]).to_string()).unwrap();
    let file = file.to_str().unwrap();
    let ok = "HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\
              connection: close\r\n\r\n[]";
    // Where a redirect points: another host name for the same machine.
    let (target, target_seen) = recording_server("127.0.0.1:0", ok.to_owned());
    let moved = format!(
        "HTTP/1.1 302 Found\r\nlocation: http://localhost:{}/users/import\r\ncontent-length: 0\r\n\
         connection: close\r\n\r\n",
        target.port()
    );
    let (redirector, redirector_seen) = recording_server("127.0.0.1:0", moved);
    for args in [vec!["import", file, "--url"], vec!["jobs", "--url"]] {
        let url = format!("http://{redirector}");
        let mut args = args.clone();
        args.push(&url);
        let (code, _, stderr) = cli(&args, &[KEY]).await;
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(
            stderr.contains("answered 302, a redirect to")
                && stderr.contains("which is not followed"),
            "{stderr}"
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert_eq!(redirector_seen.lock().unwrap().len(), 2);
    assert!(
        target_seen.lock().unwrap().is_empty(),
        "the redirect target received {:?}",
        target_seen.lock().unwrap()
    );

    // Plain http off loopback: refused without --insecure, before any connection.
    let (open, open_seen) = recording_server("0.0.0.0:0", ok.to_owned());
    let url = format!("http://0.0.0.0:{}", open.port());
    let (code, _, stderr) = cli(&["import", file, "--url", &url], &[KEY]).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("--insecure"), "{stderr}");
    let (code, _, stderr) = cli(&["jobs", "--url", &url], &[KEY]).await;
    assert_eq!(code, 1, "{stderr}");
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert!(open_seen.lock().unwrap().is_empty());
    // With --insecure it goes, the key with it.
    let (_, _, stderr) = cli(&["jobs", "--insecure", "--url", &url], &[KEY]).await;
    std::thread::sleep(std::time::Duration::from_millis(400));
    let seen = open_seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{stderr}");
    assert!(
        seen[0].contains("management-key-never-elsewhere"),
        "{seen:?}"
    );
}

/// Every numeric bound the OpenAPI document gives a query parameter is enforced: one past it is
/// a 400 naming the parameter (Auth0 never asked), the bound itself is served (or passed on).
#[actix_rt::test]
async fn every_documented_query_bound_is_enforced() {
    let app = spawn_app().await;
    let (status, document) = app.get_json("/documentation/json").await;
    assert_eq!(status, 200);
    let mut checked = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        let Some(get) = item.get("get") else { continue };
        if path.contains('{') {
            continue;
        }
        for parameter in get["parameters"].as_array().into_iter().flatten() {
            if parameter["in"] != "query" {
                continue;
            }
            let name = parameter["name"].as_str().unwrap();
            let schema = &parameter["schema"];
            let mut cases = Vec::new();
            if let Some(max) = schema["maximum"].as_i64() {
                cases.push((max + 1, 400));
                cases.push((max, 200));
            }
            if let Some(min) = schema["minimum"].as_i64() {
                cases.push((min - 1, 400));
                cases.push((min, 200));
            }
            for (value, want) in cases {
                app.emulator.clear_requests();
                let (status, body) = app.get_json(&format!("{path}?{name}={value}")).await;
                let asked_auth0 = !app.emulator.requests_to("/api/v2/*").is_empty();
                if want == 200 {
                    // Served: answered, or passed on to Auth0 (which pages through 1000 users
                    // at most, and may say so with its own 400).
                    assert!(
                        status == 200 || asked_auth0,
                        "{path}?{name}={value}: {status} {body}"
                    );
                } else {
                    assert_eq!(status, want, "{path}?{name}={value}: {body}");
                    assert!(!asked_auth0, "{path}?{name}={value}");
                }
                if want == 400 {
                    assert_error_body(&body, 400, &format!("`{name}`"));
                }
                checked.push(format!("{path}?{name}={value}"));
            }
        }
    }
    for expected in [
        "/users?_sk=2147483648",
        "/users?_l=101",
        "/users/import/jobs?limit=1001",
    ] {
        assert!(
            checked.iter().any(|c| c == expected),
            "{expected} not checked: {checked:?}"
        );
    }
}
