//! The built binary: SIGTERM, exit codes, log lines, `check-config`.

use std::process::Command;
use std::time::Duration;

use crate::testkit::{DaemonProcess, base_config, blocking_get};

use crate::DAEMON;

#[test]
fn sigterm_turns_ready_503_then_drains_and_exits_0() {
    let mut daemon =
        DaemonProcess::start(DAEMON, &base_config(), &[("DELAY_SHUTDOWN_SECONDS", "1")]);
    let client = blocking_get(&daemon.url("/-/ready"), None);
    assert_eq!(client, 200);

    daemon.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));
    // During DELAY_SHUTDOWN_SECONDS the daemon still answers, but is no longer ready.
    assert_eq!(blocking_get(&daemon.url("/-/ready"), None), 503);
    let status = daemon.wait_exit(20);
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
}

#[test]
fn log_lines_are_json_and_carry_the_request_id() {
    let daemon = DaemonProcess::start(DAEMON, &base_config(), &[]);
    let status = blocking_get(&daemon.url("/-/healthz"), Some("trace-me-42"));
    assert_eq!(status, 200);
    std::thread::sleep(Duration::from_millis(200));
    let lines = daemon.log_lines();
    let line = lines
        .iter()
        .find(|l| l["message"] == "request answered" && l["span"]["request_id"] == "trace-me-42")
        .unwrap_or_else(|| panic!("no access log line with the request id in {lines:#?}"));
    assert_eq!(line["status"], 200);
    assert_eq!(line["level"], "INFO");
}

/// A GET with a request id and a user agent, from synchronous test code; the status.
fn get_as(url: &str, request_id: &str, user_agent: &str) -> u16 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        reqwest::Client::new()
            .get(url)
            .header("x-request-id", request_id)
            .header("user-agent", user_agent)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    })
}

/// The daemon's stdout lines until one satisfies `found` (at most 5 s), every one parsed.
fn lines_until(
    daemon: &DaemonProcess,
    found: impl Fn(&serde_json::Value) -> bool,
) -> Vec<serde_json::Value> {
    for _ in 0..50 {
        let lines = daemon.log_lines();
        if lines.iter().any(&found) {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no such line in {:#?}", daemon.log_lines());
}

/// `LOG_FORMAT=mia`: every line is upstream's glogger shape (numeric level, time in ms, msg),
/// from the config's warnings written before the config was loaded to actix's own, and each
/// request has one `request completed` line with its nested fields and the request id.
#[test]
fn mia_log_lines_take_the_upstream_shape() {
    let mut config = base_config();
    // A warning of the config load, written before the config's own logFormat could apply.
    config["server"]["insecureCookies"] = true.into();
    let daemon = DaemonProcess::start(DAEMON, &config, &[("LOG_FORMAT", "mia")]);
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let status = get_as(
        &daemon.url("/-/healthz"),
        "mia-req-7",
        "probe/1.0 (\"quoted\")",
    );
    assert_eq!(status, 200);
    let lines = lines_until(&daemon, |l| l["reqId"] == "mia-req-7");
    let raw = daemon.stdout.lock().unwrap().clone();
    assert_eq!(raw.len(), lines.len(), "every line is JSON: {raw:#?}");
    for line in &lines {
        let level = line["level"].as_u64().unwrap_or_else(|| panic!("{line}"));
        assert!([10, 20, 30, 40, 50, 60].contains(&level), "{line}");
        let time = line["time"].as_u64().unwrap_or_else(|| panic!("{line}"));
        assert!(time.abs_diff(started) < 120_000, "unix ms: {line}");
        assert!(line["msg"].is_string(), "{line}");
        assert!(line.get("message").is_none(), "{line}");
    }
    // Before the config was loaded: its warning, as a warn (40).
    assert!(
        lines
            .iter()
            .any(|l| l["level"] == 40 && l["msg"].as_str().unwrap().contains("insecureCookies")),
        "{lines:#?}"
    );
    // The trusted proxies in force and why, at start.
    let proxies = lines
        .iter()
        .find(|l| l["msg"] == "forwarding headers are believed from these proxies")
        .unwrap_or_else(|| panic!("{lines:#?}"));
    assert_eq!(proxies["trusted_proxies"], "127.0.0.0/8, ::1/128");
    assert!(
        proxies["reason"]
            .as_str()
            .unwrap()
            .contains("loopback only")
    );
    // actix's own lines take the shape too.
    assert!(
        lines
            .iter()
            .any(|l| l["target"].is_null()
                && l["msg"].as_str().is_some_and(|m| m.contains("workers"))),
        "{lines:#?}"
    );

    let completed: Vec<_> = lines
        .iter()
        .filter(|l| l["msg"] == "request completed")
        .collect();
    assert_eq!(completed.len(), 1, "one line per request: {completed:#?}");
    let line = completed[0];
    assert_eq!(line["level"], 30);
    assert_eq!(line["reqId"], "mia-req-7");
    assert_eq!(line["http"]["request"]["method"], "GET");
    assert_eq!(
        line["http"]["request"]["userAgent"]["original"],
        "probe/1.0 (\"quoted\")"
    );
    assert_eq!(line["http"]["response"]["statusCode"], 200);
    let bytes = line["http"]["response"]["body"]["bytes"].as_u64().unwrap();
    assert!(bytes > 10, "the healthz JSON's length: {line}");
    assert_eq!(line["url"]["path"], "/-/healthz");
    assert_eq!(line["host"]["hostname"], "127.0.0.1");
    assert_eq!(line["host"]["ip"], "127.0.0.1");
    let response_time = line["responseTime"].as_f64().unwrap();
    assert!((0.0..10_000.0).contains(&response_time), "{line}");
}

/// `server.logFormat: mia` in the file: the lines after the load take the shape.
#[test]
fn the_config_file_can_choose_the_mia_shape() {
    let mut config = base_config();
    config["server"]["logFormat"] = "mia".into();
    let daemon = DaemonProcess::start(DAEMON, &config, &[]);
    assert_eq!(get_as(&daemon.url("/-/ready"), "file-mia", "t"), 200);
    let lines = lines_until(&daemon, |l| l["reqId"] == "file-mia");
    let listening = lines
        .iter()
        .find(|l| l["msg"] == "listening")
        .unwrap_or_else(|| panic!("{lines:#?}"));
    assert_eq!(listening["level"], 30);
    assert!(lines.iter().any(|l| l["msg"] == "request completed"
        && l["url"]["path"] == "/-/ready"
        && l["reqId"] == "file-mia"));
}

#[test]
fn check_config_prints_the_effective_config_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.json");
    std::fs::write(&path, base_config().to_string()).unwrap();
    let out = Command::new(DAEMON)
        .args(["check-config", "--config"])
        .arg(&path)
        .env("HTTP_PORT", "9123")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let effective: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(!stdout.contains("web-client-secret"), "{stdout}");
    assert!(stdout.contains("<redacted>"), "{stdout}");
    assert!(
        stdout.contains("9123"),
        "env-derived values are shown: {stdout}"
    );
    assert!(effective.is_object());
}

/// Behind a gateway (`ORIGINAL_PROTOCOL_HEADER` set, no `server.trustedProxies`): `check-config`
/// names the list in force and why, and warns while `server.allowedHosts` is empty.
#[test]
fn check_config_names_the_trusted_proxies_in_force_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.json");
    std::fs::write(&path, base_config().to_string()).unwrap();
    let run = |env: &[(&str, &str)]| {
        let out = Command::new(DAEMON)
            .args(["check-config", "--config"])
            .arg(&path)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let effective: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (effective, String::from_utf8(out.stderr).unwrap())
    };
    let (effective, stderr) = run(&[("ORIGINAL_PROTOCOL_HEADER", "x-forwarded-proto")]);
    assert_eq!(
        effective["server"]["trustedProxies"],
        serde_json::json!([
            "127.0.0.0/8",
            "::1/128",
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "fc00::/7"
        ])
    );
    let reason = effective["sources"]["server.trustedProxies"]
        .as_str()
        .unwrap();
    assert!(
        reason.contains("ORIGINAL_PROTOCOL_HEADER is set"),
        "{reason}"
    );
    assert!(
        stderr.contains("trusted proxies: 127.0.0.0/8, ::1/128, 10.0.0.0/8"),
        "{stderr}"
    );
    assert!(
        stderr.contains("warning:") && stderr.contains("server.allowedHosts"),
        "{stderr}"
    );

    let (effective, stderr) = run(&[]);
    assert_eq!(
        effective["server"]["trustedProxies"],
        serde_json::json!(["127.0.0.0/8", "::1/128"])
    );
    assert!(stderr.contains("loopback only"), "{stderr}");
    assert!(!stderr.contains("server.allowedHosts"), "{stderr}");
}

#[test]
fn check_config_names_the_offending_key_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.json");
    let mut config = base_config();
    config["clients"]["web"]["audiance"] = "typo".into();
    std::fs::write(&path, config.to_string()).unwrap();
    let out = Command::new(DAEMON)
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("clients.web.audiance"), "{stderr}");
}

#[test]
fn serve_refuses_a_bad_port_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.json");
    std::fs::write(&path, base_config().to_string()).unwrap();
    let out = Command::new(DAEMON)
        .args(["serve", "--config"])
        .arg(&path)
        .env("HTTP_PORT", "abc")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8(out.stderr).unwrap().contains("HTTP_PORT"));
}

/// `auth0-client demo` serves on the port it is given, and its curl lines, run in order as a
/// newcomer would paste them, log in both ways, ask who the user is, refresh and log out.
#[test]
fn demo_serves_on_its_port_and_its_curl_lines_work() {
    use std::io::BufRead;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(DAEMON)
        .args(["demo", "--port", &port.to_string()])
        .env("LOG_LEVEL", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut script = vec!["set -eo pipefail".to_owned()];
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .expect("the demo printed its curl lines");
        if line.starts_with("Press Ctrl-C") {
            break;
        }
        let line = line.trim();
        if line.starts_with("curl ") || line.contains("=$(") {
            assert!(
                !line.starts_with("curl ") || line.contains(&format!("127.0.0.1:{port}")),
                "{line}"
            );
            // Each call must succeed: a 4xx/5xx fails the script.
            script.push(line.replace("curl -s", "curl --fail-with-body -s"));
        }
    }
    assert!(script.len() >= 12, "{script:#?}");
    let out = Command::new("bash")
        .arg("-c")
        .arg(script.join("\n"))
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{script:#?}\n{out:?}");
    assert!(text.contains(r#""status":"OK""#), "{text}");
    let sub = format!(r#""sub":"{}""#, auth0_emulator::seed::demo::USER_ID);
    assert!(
        text.matches(&sub).count() >= 2,
        "userinfo by Bearer and by cookie: {text}"
    );
    assert!(text.contains("HTTP/1.1 302"), "the logout redirect: {text}");
    assert!(text.contains("set-cookie: sid="), "{text}");
    assert!(
        text.contains(r#"auth0_client_auth0_requests_total{endpoint="/oauth/token",status="200"}"#),
        "{text}"
    );
}

/// A session acknowledged to a client survives `kill -9` of the daemon (SPEC §7).
#[test]
fn sessions_survive_kill_9() {
    let emulator = auth0_emulator::Emulator::start(crate::testkit::test_seed()).unwrap();
    let config = crate::testkit::emulator_config(&emulator);
    let daemon = DaemonProcess::start(DAEMON, &config, &[]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    let login = |port: u16| {
        client
            .post(format!("http://127.0.0.1:{port}/oauth/token"))
            .form(&[
                ("grant_type", "password"),
                ("username", auth0_emulator::seed::demo::USER_EMAIL),
                ("password", auth0_emulator::seed::demo::USER_PASSWORD),
            ])
            .send()
    };
    let tokens: serde_json::Value = runtime.block_on(async {
        let response = login(daemon.port).await.unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    });
    let access = tokens["accessToken"].as_str().unwrap().to_owned();

    let daemon = daemon.kill9_and_restart(DAEMON, &[]);
    let status = runtime.block_on(async {
        client
            .get(format!("http://127.0.0.1:{}/userinfo", daemon.port))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200, "the session was acknowledged before the kill");
}

/// A daemon whose store is stuck (the test hook stalls every store call, as a wedged sled did)
/// says so on `/-/ready` and in the metrics, answers 503 instead of hanging, and still ends on
/// SIGTERM within `DELAY_SHUTDOWN_SECONDS` + the drain + a few seconds, with a non-zero status and
/// a log line saying why.
#[test]
fn a_stuck_store_is_seen_answered_503_and_sigterm_still_ends_the_process() {
    let mut config = base_config();
    config["sessions"] = serde_json::json!({"timeoutMs": 500});
    let mut daemon = DaemonProcess::start(DAEMON, &config, &[("DELAY_SHUTDOWN_SECONDS", "1")]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let get = |path: &str| {
        let request = client.get(daemon.url(path));
        runtime.block_on(async {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        })
    };
    assert_eq!(get("/-/ready").0, 200);
    assert_eq!(get("/authorize").0, 302);

    daemon.signal("USR1");
    std::thread::sleep(Duration::from_millis(200));
    let (status, body) = get("/-/ready");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("stalled"), "{body}");
    let (_, metrics) = get("/-/metrics");
    assert!(
        metrics.contains("auth0_client_store_stalled 1"),
        "{metrics}"
    );
    let started = std::time::Instant::now();
    let (status, body) = get("/authorize");
    assert_eq!(status, 503, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered within sessions.timeoutMs, not hung: {:?}",
        started.elapsed()
    );
    crate::testkit::assert_error_body(&serde_json::from_str(&body).unwrap(), 503, "store");

    let stopping = std::time::Instant::now();
    daemon.signal("TERM");
    let status = daemon.wait_exit(15);
    assert_ne!(status.code(), Some(0), "{status:?}");
    assert!(
        stopping.elapsed() < Duration::from_secs(8),
        "exited {:?} after SIGTERM",
        stopping.elapsed()
    );
    std::thread::sleep(Duration::from_millis(100));
    let lines = daemon.log_lines();
    assert!(
        lines.iter().any(|l| l["error"]
            .as_str()
            .is_some_and(|e| e.contains("did not finish its writes at shutdown"))),
        "{lines:#?}"
    );
}
