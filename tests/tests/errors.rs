//! One error shape everywhere, and connections that always finish (issue 12): the body deadline
//! (`server.bodyTimeoutMs`, 408 and the connection closed), JSON 413s on raw bodies, 405 with
//! `Allow`, `HEAD` as `GET` without a body, requests actix refuses before routing, echoed values
//! quoted and cut, the start-up warnings, and thousands of stalled bodies against the release
//! binary while real logins go on.

use std::time::{Duration, Instant};

use auth0_emulator::Emulator;
use auth0_emulator::seed::demo;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::DAEMON;
use crate::testkit::{
    DaemonProcess, assert_error_body, base_config, emulator_config, release_daemon,
    spawn_app_configured, test_seed,
};

/// An answer read off a raw connection.
#[derive(Debug)]
pub(crate) struct RawAnswer {
    pub(crate) status: u16,
    /// Lower-cased names.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The server closed the connection after the answer.
    pub(crate) closed: bool,
    /// From the last byte sent to the answer's end.
    pub(crate) took: Duration,
}

impl RawAnswer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {:?} {}",
                self.headers,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// The complete answer (head and `Content-Length` body) at the start of `buffer`, if there is
/// one (`closed` and `took` left for the caller).
fn parse_answer(buffer: &[u8]) -> Option<RawAnswer> {
    let end = buffer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buffer[..end]);
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let body = &buffer[end + 4..];
    (body.len() >= length).then(|| RawAnswer {
        status,
        headers,
        body: body[..length].to_vec(),
        closed: false,
        took: Duration::ZERO,
    })
}

/// Sends `request` on a new connection to `port` and reads one answer within `wait`, then
/// whether the server closes the connection within `close_wait`.
pub(crate) async fn raw_request(
    port: u16,
    request: &[u8],
    wait: Duration,
    close_wait: Duration,
) -> Option<RawAnswer> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    // The server may answer and close before reading all of a request it refuses.
    let _ = stream.write_all(request).await;
    let sent = Instant::now();
    read_answer(&mut stream, sent, wait, close_wait).await
}

async fn read_answer(
    stream: &mut TcpStream,
    sent: Instant,
    wait: Duration,
    close_wait: Duration,
) -> Option<RawAnswer> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::from_std(sent + wait);
    let mut answer = loop {
        if let Some(answer) = parse_answer(&buffer) {
            break RawAnswer {
                took: sent.elapsed(),
                ..answer
            };
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
            Ok(Ok(n)) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    answer.closed = matches!(
        tokio::time::timeout(close_wait, stream.read(&mut chunk)).await,
        Ok(Ok(0)) | Ok(Err(_))
    );
    Some(answer)
}

/// A request head announcing `Content-Length: 100`, with one byte of the body.
pub(crate) fn stalled_post(path: &str, content_type: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n\
         Content-Length: 100\r\n\r\ng"
    )
    .into_bytes()
}

#[actix_rt::test]
async fn a_body_that_stops_coming_is_answered_408_in_json_and_the_connection_closes() {
    let app = spawn_app_configured(|c| c["server"]["bodyTimeoutMs"] = json!(500), &[]).await;
    for (path, content_type) in [
        // Read as raw bytes (`web::Bytes`).
        ("/oauth/token", "application/x-www-form-urlencoded"),
        ("/refreshtoken", "application/json"),
        ("/oauth/refreshtoken", "application/json"),
    ] {
        let answer = raw_request(
            app.port,
            &stalled_post(path, content_type),
            Duration::from_secs(5),
            Duration::from_secs(3),
        )
        .await
        .unwrap_or_else(|| panic!("{path}: no answer within 5 s"));
        assert_eq!(answer.status, 408, "{path}: {answer:?}");
        assert_error_body(&answer.json(), 408, "server.bodyTimeoutMs");
        assert_eq!(answer.header("connection"), Some("close"), "{path}");
        assert!(answer.closed, "{path}: the connection stays open");
        assert!(
            answer.took >= Duration::from_millis(450) && answer.took < Duration::from_secs(3),
            "{path}: answered after {:?}",
            answer.took
        );
    }

    // A route that does not read the body answers at once, and the connection still closes:
    // its unread body cannot be told from the next request.
    let answer = raw_request(
        app.port,
        &stalled_post("/-/healthz", "application/json"),
        Duration::from_secs(5),
        Duration::from_secs(3),
    )
    .await
    .expect("an answer");
    assert_eq!(answer.status, 405, "{answer:?}");
    assert!(answer.closed);

    // A body that arrives in time, slowly, is read.
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let body = br#"{"refresh_token": "rt"}"#;
    let head = format!(
        "POST /refreshtoken HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for byte in body {
        stream.write_all(&[*byte]).await.unwrap();
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
    let answer = read_answer(
        &mut stream,
        Instant::now(),
        Duration::from_secs(5),
        Duration::from_millis(100),
    )
    .await
    .expect("an answer");
    assert_eq!(answer.status, 401, "no session: {answer:?}");

    assert_eq!(app.get("/-/healthz").await.status(), 200);
}

#[actix_rt::test]
async fn raw_bodies_over_the_limit_are_json_413s() {
    let app = spawn_app_configured(|c| c["server"]["bodyLimitBytes"] = json!(1024), &[]).await;
    let big_form = format!("grant_type=password&username={}", "u".repeat(2048));
    let big_json = json!({"refresh_token": "r".repeat(2048)}).to_string();
    for (path, content_type, body) in [
        (
            "/oauth/token",
            "application/x-www-form-urlencoded",
            big_form.clone(),
        ),
        ("/oauth/token", "application/json", big_json.clone()),
        ("/refreshtoken", "application/json", big_json.clone()),
        ("/oauth/refreshtoken", "application/json", big_json.clone()),
    ] {
        let response = app
            .client
            .post(app.url(path))
            .header("content-type", content_type)
            .header("cookie", "sid=whatever")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 413, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_error_body(&body, 413, "limit of 1024 bytes");
    }
    // Without a Content-Length (chunked), the limit is found while reading.
    let mut request = b"POST /refreshtoken HTTP/1.1\r\nHost: 127.0.0.1\r\n\
        Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        .to_vec();
    for _ in 0..4 {
        request.extend_from_slice(format!("200\r\n{}\r\n", "a".repeat(512)).as_bytes());
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let answer = raw_request(
        app.port,
        &request,
        Duration::from_secs(5),
        Duration::from_millis(100),
    )
    .await
    .expect("an answer");
    assert_eq!(answer.status, 413, "{answer:?}");
    assert_error_body(&answer.json(), 413, "limit of 1024 bytes");
}

#[actix_rt::test]
async fn a_method_a_route_lacks_is_405_with_allow() {
    let app = spawn_app_configured(|_| {}, &[]).await;
    for (method, path, allow) in [
        ("DELETE", "/userinfo", "GET, HEAD"),
        ("POST", "/userinfo", "GET, HEAD"),
        ("PUT", "/oauth/token", "POST"),
        ("GET", "/oauth/token", "POST"),
        ("POST", "/-/healthz", "GET, HEAD"),
        ("PATCH", "/-/ready", "GET, HEAD"),
        ("OPTIONS", "/refreshtoken", "POST"),
        ("POST", "/logout", "GET, HEAD"),
        ("DELETE", "/users/active", "GET, HEAD"),
        ("POST", "/documentation/json", "GET, HEAD"),
    ] {
        let response = app
            .client
            .request(method.parse().unwrap(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
        assert_eq!(
            response.headers()["allow"].to_str().unwrap(),
            allow,
            "{method} {path}"
        );
        let body: Value = response.json().await.unwrap();
        assert_error_body(&body, 405, allow);
        assert_eq!(body["error"], "Method Not Allowed");
    }
    // An unknown path stays 404.
    let response = app.client.delete(app.url("/nowhere")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert!(response.headers().get("allow").is_none());
}

#[actix_rt::test]
async fn head_answers_like_get_without_a_body() {
    let app = spawn_app_configured(|_| {}, &[]).await;
    let tokens = app.login_tokens().await;
    let access = tokens["accessToken"].as_str().unwrap();
    for (path, bearer) in [
        ("/-/healthz", None),
        ("/-/ready", None),
        ("/-/metrics", None),
        ("/documentation/json", None),
        ("/userinfo", Some(access)),
        ("/userinfo", None),
        ("/users/me", Some(access)),
    ] {
        let send = |method: reqwest::Method| {
            let mut request = app.client.request(method, app.url(path));
            if let Some(token) = bearer {
                request = request.bearer_auth(token);
            }
            request.send()
        };
        let get = send(reqwest::Method::GET).await.unwrap();
        let head = send(reqwest::Method::HEAD).await.unwrap();
        assert_eq!(head.status(), get.status(), "HEAD {path}");
        assert_eq!(
            head.headers().get("content-type"),
            get.headers().get("content-type"),
            "HEAD {path}"
        );
        assert!(
            head.bytes().await.unwrap().is_empty(),
            "HEAD {path}: a body"
        );
        assert!(
            !get.bytes().await.unwrap().is_empty(),
            "GET {path}: no body"
        );
    }
    // HEAD on a route without GET is a 405 too, without a body.
    let head = app
        .client
        .head(app.url("/oauth/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 405);
    assert_eq!(head.headers()["allow"], "POST");
}

#[actix_rt::test]
async fn echoed_values_are_quoted_and_cut() {
    let app = spawn_app_configured(|_| {}, &[]).await;
    let long = format!("{}\u{1b}[31m\n{}", "g".repeat(100), "h".repeat(1000));
    for (field, extra) in [
        ("grant_type", vec![]),
        (
            "connection",
            vec![
                ("grant_type", "password"),
                ("username", "u"),
                ("password", "p"),
            ],
        ),
    ] {
        let mut form = extra.clone();
        form.push((field, long.as_str()));
        let response = app
            .client
            .post(app.url("/oauth/token"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{field}");
        let body: Value = response.json().await.unwrap();
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("\"{}\"…", "g".repeat(64))),
            "{field}: {message}"
        );
        assert!(!message.contains("hhh"), "{field}: not cut: {message}");
        assert!(message.len() < 200, "{field}: {message}");
    }
    // The content type and an unknown path too.
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .header("content-type", format!("text/{}", "x".repeat(500)))
        .body("a=b")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    let body: Value = response.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().len() < 250, "{body}");
    let response = app.get(&format!("/{}", "p".repeat(3000))).await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().len() < 120, "{body}");
}

/// Requests that actix-http refuses while parsing them, before any route: it answers them itself
/// (without a body), nothing is logged as an ERROR, and the daemon goes on serving.
#[test]
fn requests_refused_before_routing_are_answered_and_never_logged_as_errors() {
    let emulator = Emulator::start(test_seed()).unwrap();
    let daemon = DaemonProcess::start(DAEMON, &emulator_config(&emulator), &[]);
    let port = daemon.port;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let head = |extra: &str| format!("GET /-/healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n");
    let many_headers: String = (0..120).map(|i| format!("X-H{i}: {i}\r\n")).collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a control byte in a header", head("X-Evil: a\u{1}b\r\n").into_bytes()),
        ("a NUL in a header", head("X-Evil: a\0b\r\n").into_bytes()),
        (
            "a bad Content-Length",
            b"POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ten\r\n\r\n".to_vec(),
        ),
        (
            "two different Content-Lengths",
            b"POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"
                .to_vec(),
        ),
        ("no Host on HTTP/1.1", b"GET /-/healthz HTTP/1.1\r\n\r\n".to_vec()),
        ("too many headers", head(&many_headers).into_bytes()),
        (
            "a head of 256 KiB",
            head(&format!("X-Big: {}\r\n", "b".repeat(256 * 1024))).into_bytes(),
        ),
        ("not HTTP", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec()),
    ];
    runtime.block_on(async {
        for (case, request) in &cases {
            let answer = raw_request(
                port,
                request,
                Duration::from_secs(5),
                Duration::from_secs(2),
            )
            .await
            .unwrap_or_else(|| panic!("{case}: no answer"));
            assert!((400..500).contains(&answer.status), "{case}: {answer:?}");
            assert!(answer.closed, "{case}: the connection stays open");
            // Still serving.
            let fine = raw_request(
                port,
                head("").as_bytes(),
                Duration::from_secs(5),
                Duration::from_millis(10),
            )
            .await
            .unwrap_or_else(|| panic!("after {case}: no answer"));
            assert_eq!(fine.status, 200, "after {case}");
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let lines = daemon.log_lines();
    let errors: Vec<&Value> = lines.iter().filter(|l| l["level"] == "ERROR").collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // actix-http's own line for a refused request comes as a warning.
    assert!(
        lines.iter().any(|l| l["level"] == "WARN"
            && l["target"]
                .as_str()
                .is_some_and(|t| t.starts_with("actix_http::h1"))),
        "{lines:#?}"
    );
}

/// Echoed values are quoted and cut in the log too.
#[test]
fn refused_values_are_quoted_and_cut_in_the_log() {
    let emulator = Emulator::start(test_seed()).unwrap();
    let daemon = DaemonProcess::start(DAEMON, &emulator_config(&emulator), &[]);
    let long = format!("{}\n{}", "g".repeat(100), "h".repeat(1000));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = runtime.block_on(async {
        reqwest::Client::new()
            .post(daemon.url("/oauth/token"))
            .form(&[("grant_type", long.as_str())])
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 400);
    std::thread::sleep(Duration::from_millis(300));
    let lines = daemon.log_lines();
    let refused = lines
        .iter()
        .find(|l| l["message"] == "request refused")
        .unwrap_or_else(|| panic!("no `request refused` line in {lines:#?}"));
    let error = refused["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("\"{}\"…", "g".repeat(64))),
        "{error}"
    );
    assert!(!error.contains("hhh"), "{error}");
    let text: String = lines.iter().map(Value::to_string).collect();
    assert!(
        !text.contains(&"h".repeat(100)),
        "the whole value reached the log"
    );
}

#[test]
fn insecure_cookies_and_open_management_routes_warn_at_start() {
    let warnings = |config: &Value| {
        let daemon = DaemonProcess::start(DAEMON, config, &[]);
        std::thread::sleep(Duration::from_millis(100));
        daemon
            .log_lines()
            .into_iter()
            .filter(|l| l["level"] == "WARN")
            .filter_map(|l| l["message"].as_str().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    let mut config = base_config();
    config["server"]["insecureCookies"] = json!(true);
    config["managementClient"] = json!({
        "auth0Url": "https://tenant.example",
        "clientId": "mgmt-id",
        "clientSecret": "mgmt-secret",
    });
    let found = warnings(&config);
    assert!(
        found
            .iter()
            .any(|w| w.contains("`server.insecureCookies` is true")),
        "{found:#?}"
    );
    assert!(
        found.iter().any(|w| w.contains(
            "neither `apiKeys` nor `server.managementBind` guards the management routes: \
                 they answer local callers only"
        )),
        "{found:#?}"
    );

    // Behind `server.managementBind`, with Secure cookies: neither.
    config["server"]["insecureCookies"] = json!(false);
    config["server"]["managementBind"] = json!("127.0.0.1:0");
    let found = warnings(&config);
    assert!(
        !found
            .iter()
            .any(|w| w.contains("insecureCookies") || w.contains("management routes")),
        "{found:#?}"
    );
}

/// One stalled connection as its client saw it.
#[derive(Debug)]
enum Stalled {
    /// Answered (with this status) after this long, then closed or not.
    Answered(u16, Duration, bool),
    /// Closed without an answer after this long.
    Closed(Duration),
    /// Neither within the test's bound.
    Hanging,
    /// Could not connect or send.
    Failed(String),
}

/// The release binary under `STALLED` connections that each announce a 100-byte body, send one
/// byte and stall: real logins, `/userinfo` and `/-/healthz` are answered meanwhile, every stalled
/// connection is answered 408 (or closed) within `bodyTimeoutMs` plus slack, and the daemon's
/// descriptors come back down.
#[test]
fn thousands_of_stalled_bodies_neither_block_logins_nor_stay_open() {
    const STALLED: usize = 3000;
    const BODY_TIMEOUT: Duration = Duration::from_millis(3000);
    const SLACK: Duration = Duration::from_secs(10);
    let _soak = crate::soak::one_soak_at_a_time();
    // The client's descriptors, one per connection; the daemon, spawned after, inherits the limit
    // (and raises its own within the hard limit).
    let open_files = rlimit::increase_nofile_limit(16_384).unwrap();
    assert!(
        open_files >= STALLED as u64 + 512,
        "the open-file limit is {open_files}: too low for {STALLED} connections"
    );
    let release = release_daemon().to_str().unwrap();
    let emulator = Emulator::start(test_seed()).unwrap();
    let mut config = emulator_config(&emulator);
    config["server"]["bodyTimeoutMs"] = json!(BODY_TIMEOUT.as_millis() as u64);
    let daemon = DaemonProcess::start(
        release,
        &config,
        &[("LOG_LEVEL", "warn,auth0_client::app=info")],
    );
    let pid = daemon.child.id();
    let descriptors = || std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count);
    let rss_kb = || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .unwrap_or(0)
    };
    let (fds_before, rss_before) = (descriptors(), rss_kb());
    let port = daemon.port;
    let started = Instant::now();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (outcomes, during, peak_fds, peak_rss) = runtime.block_on(async move {
        let sent = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
        let mut tasks = Vec::with_capacity(STALLED);
        for i in 0..STALLED {
            let sent = sent.clone();
            tasks.push(tokio::spawn(async move {
                let mut stream = match TcpStream::connect(("127.0.0.1", port)).await {
                    Ok(stream) => stream,
                    Err(e) => {
                        sent.add_permits(1);
                        return Stalled::Failed(e.to_string());
                    }
                };
                if let Err(e) = stream
                    .write_all(&stalled_post(
                        "/oauth/token",
                        "application/x-www-form-urlencoded",
                    ))
                    .await
                {
                    sent.add_permits(1);
                    return Stalled::Failed(e.to_string());
                }
                let at = Instant::now();
                sent.add_permits(1);
                match read_answer(
                    &mut stream,
                    at,
                    BODY_TIMEOUT + SLACK,
                    Duration::from_secs(3),
                )
                .await
                {
                    Some(answer) => Stalled::Answered(answer.status, answer.took, answer.closed),
                    None if at.elapsed() < BODY_TIMEOUT + SLACK => Stalled::Closed(at.elapsed()),
                    None => Stalled::Hanging,
                }
            }));
            // Connect in waves, within the listen backlog.
            if i % 200 == 199 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        // Every stalled connection has sent its head and its one byte.
        let _all = tokio::time::timeout(
            Duration::from_secs(20),
            sent.acquire_many(u32::try_from(STALLED).unwrap()),
        )
        .await
        .expect("the stalled connections were not all open within 20 s");
        let opened = started.elapsed();
        let (peak_fds, peak_rss) = (descriptors(), rss_kb());

        // Real traffic meanwhile, each answered within 5 s.
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
        let mut during = Vec::new();
        for _ in 0..5 {
            let at = Instant::now();
            let login = client
                .post(url("/oauth/token"))
                .form(&[
                    ("grant_type", "password"),
                    ("username", demo::USER_EMAIL),
                    ("password", demo::USER_PASSWORD),
                ])
                .send()
                .await
                .expect("a login during the stall");
            assert_eq!(login.status(), 200);
            let tokens: Value = login.json().await.unwrap();
            let userinfo = client
                .get(url("/userinfo"))
                .bearer_auth(tokens["accessToken"].as_str().unwrap())
                .send()
                .await
                .expect("/userinfo during the stall");
            assert_eq!(userinfo.status(), 200);
            let healthz = client
                .get(url("/-/healthz"))
                .send()
                .await
                .expect("/-/healthz during the stall");
            assert_eq!(healthz.status(), 200);
            during.push(at.elapsed());
        }
        println!(
            "{STALLED} stalled connections open after {:.1} s; 5 × (login, /userinfo, /-/healthz) \
             answered by {:.1} s, slowest round {:?}",
            opened.as_secs_f64(),
            started.elapsed().as_secs_f64(),
            during.iter().max()
        );
        let mut outcomes = Vec::with_capacity(STALLED);
        for task in tasks {
            outcomes.push(task.await.unwrap());
        }
        (outcomes, during, peak_fds, peak_rss)
    });
    let logins_done = during.len();

    let mut answered_408 = 0;
    let mut slowest = Duration::ZERO;
    let mut problems = Vec::new();
    for outcome in &outcomes {
        match outcome {
            Stalled::Answered(408, took, true) if *took < BODY_TIMEOUT + SLACK => {
                answered_408 += 1;
                slowest = slowest.max(*took);
            }
            Stalled::Closed(took) => slowest = slowest.max(*took),
            Stalled::Failed(why) => problems.push(format!("could not stall: {why}")),
            other => problems.push(format!("{other:?}")),
        }
    }
    // The daemon lets go of the connections.
    let deadline = Instant::now() + Duration::from_secs(10);
    while descriptors() > fds_before + 50 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let (fds_after, rss_after) = (descriptors(), rss_kb());
    println!(
        "stalled: {answered_408} answered 408 and closed, {} closed without an answer, {} other, \
         the last after {slowest:?}; the daemon's descriptors {fds_before} → {peak_fds} → \
         {fds_after}, RSS {rss_before} → {peak_rss} → {rss_after} kB; {:.1} s in all",
        outcomes
            .iter()
            .filter(|o| matches!(o, Stalled::Closed(_)))
            .count(),
        problems.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(logins_done, 5);
    assert!(
        peak_fds >= STALLED,
        "the stalled connections were not open at once"
    );
    assert!(
        problems.is_empty(),
        "{} stalled connections neither answered 408 nor closed in time, e.g. {:?}",
        problems.len(),
        &problems[..problems.len().min(5)]
    );
    assert!(
        answered_408 >= STALLED * 9 / 10,
        "only {answered_408} of {STALLED} got the 408"
    );
    assert!(
        fds_after <= fds_before + 50,
        "the daemon still holds {fds_after} descriptors (before: {fds_before})"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}
