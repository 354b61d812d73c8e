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
