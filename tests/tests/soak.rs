//! Soak tests (issue 10): the release binary under 64 concurrent keep-alive clients mixing
//! `/authorize`, password logins, refreshes, `/userinfo` and logouts. Every request must be
//! answered within 10 s, never with a 5xx, `/-/ready` must stay 200, and every login answered
//! before a `kill -9` must still work after the restart.
//!
//! They run one at a time (the `SOAK` lock): each one saturates the machine on its own.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::testkit::{DaemonProcess, release_daemon};
use auth0_emulator::seed::demo;
use auth0_emulator::{Emulator, EmulatorHandle, SeedUser};
use serde_json::{Value, json};

/// Concurrent clients, each with its own user and its own keep-alive connection.
const CLIENTS: usize = 64;
/// The longest any request may take to be answered.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the readiness probe asks.
const READY_EVERY: Duration = Duration::from_millis(250);
/// The daemon's environment: access logs off, so the load measures the store, not stdout; the
/// `listening` line `DaemonProcess` waits for stays on.
const ENV: &[(&str, &str)] = &[("LOG_LEVEL", "warn,auth0_client::app=info")];

const AUTHORIZE: &str = "GET /authorize";
const LOGIN: &str = "POST /oauth/token";
const REFRESH: &str = "POST /refreshtoken";
const USERINFO: &str = "GET /userinfo";
const LOGOUT: &str = "GET /logout";
const READY: &str = "GET /-/ready";

static SOAK: Mutex<()> = Mutex::new(());

/// One soak at a time; a soak that failed (and poisoned the lock) does not fail the next one.
/// Other tests that load the machine (`errors.rs`'s stalled connections) take it too.
pub(crate) fn one_soak_at_a_time() -> MutexGuard<'static, ()> {
    SOAK.lock().unwrap_or_else(PoisonError::into_inner)
}

#[test]
fn soak_64_clients_for_20_seconds_every_request_answered() {
    let _soak = one_soak_at_a_time();
    let release = release_daemon().to_str().unwrap();
    let (emulator, users) = soak_emulator();
    let daemon = DaemonProcess::start(release, &crate::testkit::emulator_config(&emulator), ENV);

    let report = runtime().block_on(load(daemon.port, &users, Duration::from_secs(20)));

    report.print(&format!("soak: {CLIENTS} clients for 20 s"));
    let mut failures = report.failures();
    if !failures.is_empty() {
        failures.extend(daemon_warnings(&daemon));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn soak_then_kill_9_every_answered_login_still_works() {
    let _soak = one_soak_at_a_time();
    let release = release_daemon().to_str().unwrap();
    let (emulator, users) = soak_emulator();
    let daemon = DaemonProcess::start(release, &crate::testkit::emulator_config(&emulator), ENV);
    let runtime = runtime();

    let report = runtime.block_on(load(daemon.port, &users, Duration::from_secs(10)));
    report.print(&format!("soak: {CLIENTS} clients for 10 s, then kill -9"));
    let warnings = daemon_warnings(&daemon);

    let daemon = daemon.kill9_and_restart(release, ENV);
    let lost = runtime.block_on(check_sessions(daemon.port, &report.sessions));
    println!(
        "after kill -9 and a restart: {} answered logins checked with GET /userinfo, {} lost",
        report.sessions.len(),
        lost.len()
    );

    let mut failures = report.failures();
    if report.sessions.is_empty() {
        failures.push("no login was answered 200 before the kill: nothing to check".into());
    }
    failures.extend(lost);
    if !failures.is_empty() {
        failures.extend(warnings);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The daemon's warnings and errors so far (it logs nothing else at `warn`): the first 20 and
/// how many there were, to tell why a request failed.
fn daemon_warnings(daemon: &DaemonProcess) -> Vec<String> {
    let lines: Vec<String> = daemon
        .log_lines()
        .into_iter()
        .filter(|line| line["level"] == "WARN" || line["level"] == "ERROR")
        .map(|line| line.to_string())
        .collect();
    let mut warnings = vec![format!(
        "the daemon logged {} warnings and errors",
        lines.len()
    )];
    warnings.extend(lines.into_iter().take(20));
    warnings
}

/// The emulator with `CLIENTS` extra users (one per client: until one access token may belong to
/// several sessions, no two clients share a user) and a refresh-token overlap period.
fn soak_emulator() -> (EmulatorHandle, Vec<(String, String)>) {
    let emulator = Emulator::start(crate::testkit::test_seed()).unwrap();
    let users: Vec<(String, String)> = (0..CLIENTS)
        .map(|i| {
            (
                format!("soak-{i:02}@example.com"),
                format!("soak-password-{i:02}"),
            )
        })
        .collect();
    for (email, password) in &users {
        emulator
            .add_user(&SeedUser {
                email: email.clone(),
                password: password.clone(),
                connection: demo::CONNECTION.into(),
                ..SeedUser::default()
            })
            .unwrap();
    }
    emulator.update_settings(|s| s.refresh_token_leeway_seconds = 60);
    (emulator, users)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A session as its client last saw it: the newest tokens it was given.
#[derive(Debug, Clone)]
struct Session {
    user: String,
    access: String,
    refresh: String,
}

/// What one client or the whole load saw.
#[derive(Debug, Default)]
struct Report {
    /// Answers by route and status.
    answers: BTreeMap<(&'static str, u16), u64>,
    /// Requests not answered within `REQUEST_TIMEOUT`, by route.
    timeouts: BTreeMap<&'static str, u64>,
    /// Requests that failed otherwise (connection refused or reset, a 200 without its JSON), by
    /// route, with the first error seen.
    errors: BTreeMap<&'static str, (u64, String)>,
    /// The first body of each 5xx answer, by route and status.
    first_bodies: BTreeMap<(&'static str, u16), String>,
    /// 200 answers without the tokens they must carry, by route, with the first body seen.
    malformed: BTreeMap<&'static str, (u64, String)>,
    /// The longest answer, by route.
    slowest: BTreeMap<&'static str, Duration>,
    /// Every `/-/ready` answer that was not 200, with when it came (seconds into the load).
    not_ready: Vec<String>,
    /// Sessions whose login was answered 200 and that were not logged out, newest tokens.
    sessions: Vec<Session>,
    elapsed: Duration,
}

impl Report {
    fn merge(&mut self, other: Report) {
        for (key, n) in other.answers {
            *self.answers.entry(key).or_default() += n;
        }
        for (route, n) in other.timeouts {
            *self.timeouts.entry(route).or_default() += n;
        }
        for (route, (n, first)) in other.errors {
            self.errors.entry(route).or_insert((0, first)).0 += n;
        }
        for (key, body) in other.first_bodies {
            self.first_bodies.entry(key).or_insert(body);
        }
        for (route, (n, first)) in other.malformed {
            self.malformed.entry(route).or_insert((0, first)).0 += n;
        }
        for (route, took) in other.slowest {
            let slowest = self.slowest.entry(route).or_default();
            *slowest = (*slowest).max(took);
        }
        self.not_ready.extend(other.not_ready);
        self.sessions.extend(other.sessions);
    }

    fn record<T: std::fmt::Debug>(
        &mut self,
        route: &'static str,
        started: Instant,
        result: &Result<(u16, T), reqwest::Error>,
    ) {
        let took = started.elapsed();
        let slowest = self.slowest.entry(route).or_default();
        *slowest = (*slowest).max(took);
        match result {
            Ok((status, body)) => {
                *self.answers.entry((route, *status)).or_default() += 1;
                if *status >= 500 {
                    self.first_bodies
                        .entry((route, *status))
                        .or_insert_with(|| format!("{body:?}"));
                }
            }
            Err(error) if error.is_timeout() => *self.timeouts.entry(route).or_default() += 1,
            Err(error) => {
                self.errors
                    .entry(route)
                    .or_insert((0, format!("{error:?}")))
                    .0 += 1;
            }
        }
    }

    fn malformed(&mut self, route: &'static str, body: &Value) {
        self.malformed
            .entry(route)
            .or_insert((0, body.to_string()))
            .0 += 1;
    }

    fn requests(&self, route: &str) -> u64 {
        let answered: u64 = self
            .answers
            .iter()
            .filter(|((r, _), _)| *r == route)
            .map(|(_, n)| n)
            .sum();
        answered
            + self.timeouts.get(route).copied().unwrap_or_default()
            + self.errors.get(route).map_or(0, |(n, _)| *n)
    }

    fn print(&self, title: &str) {
        let routes = [AUTHORIZE, LOGIN, REFRESH, USERINFO, LOGOUT, READY];
        let total: u64 = routes.iter().map(|r| self.requests(r)).sum();
        let per_route: Vec<String> = routes
            .iter()
            .map(|r| format!("{r} {}", self.requests(r)))
            .collect();
        println!(
            "{title}: {total} requests in {:.1} s ({:.0}/s): {}",
            self.elapsed.as_secs_f64(),
            total as f64 / self.elapsed.as_secs_f64().max(0.001),
            per_route.join(", ")
        );
        let statuses: Vec<String> = self
            .answers
            .iter()
            .map(|((route, status), n)| format!("{route} {status}: {n}"))
            .collect();
        println!("  answers: {}", statuses.join(", "));
        let slowest: Vec<String> = self
            .slowest
            .iter()
            .map(|(route, took)| format!("{route} {} ms", took.as_millis()))
            .collect();
        println!("  slowest: {}", slowest.join(", "));
        println!(
            "  timeouts: {:?}, errors: {:?}, /-/ready not 200: {}, sessions alive: {}",
            self.timeouts,
            self.errors,
            self.not_ready.len(),
            self.sessions.len()
        );
    }

    /// One line per broken promise: a request unanswered within 10 s, a 5xx, `/-/ready` not 200.
    fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        for (route, n) in &self.timeouts {
            failures.push(format!(
                "{n} {route} not answered within {} s",
                REQUEST_TIMEOUT.as_secs()
            ));
        }
        for (route, (n, first)) in &self.errors {
            failures.push(format!(
                "{n} {route} failed without an answer, first: {first}"
            ));
        }
        for (route, (n, first)) in &self.malformed {
            failures.push(format!(
                "{n} {route} answered 200 without tokens, first: {first}"
            ));
        }
        for ((route, status), n) in &self.answers {
            if !(200..500).contains(status) {
                let first = self
                    .first_bodies
                    .get(&(*route, *status))
                    .map(String::as_str)
                    .unwrap_or_default();
                failures.push(format!("{n} {route} answered {status}, first: {first}"));
            }
        }
        if !self.not_ready.is_empty() {
            failures.push(format!(
                "{} {READY} probes were not 200, the first ones: {}",
                self.not_ready.len(),
                self.not_ready
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        failures
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .build()
        .unwrap()
}

/// `CLIENTS` clients, each logging its own user in and out for `duration`, and a readiness probe
/// every `READY_EVERY`. Returns when every client's last request is answered (or timed out).
async fn load(port: u16, users: &[(String, String)], duration: Duration) -> Report {
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let deadline = started + duration;
    let probe = tokio::spawn(probe_ready(base.clone(), started, deadline));
    let clients: Vec<_> = users
        .iter()
        .cloned()
        .enumerate()
        .map(|(index, user)| tokio::spawn(client(base.clone(), index, user, deadline)))
        .collect();
    let mut report = Report::default();
    for client in clients {
        report.merge(client.await.unwrap());
    }
    report.merge(probe.await.unwrap());
    report.elapsed = started.elapsed();
    report
}

async fn probe_ready(base: String, started: Instant, deadline: Instant) -> Report {
    let http = http_client();
    let mut report = Report::default();
    let mut every = tokio::time::interval(READY_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while Instant::now() < deadline {
        every.tick().await;
        let sent = Instant::now();
        let result = match http.get(format!("{base}/-/ready")).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                response.text().await.map(|body| (status, body))
            }
            Err(error) => Err(error),
        };
        report.record(READY, sent, &result);
        let at = sent.duration_since(started).as_secs_f64();
        match result {
            Ok((200, _)) => {}
            Ok((status, body)) => report.not_ready.push(format!("{at:.2} s: {status} {body}")),
            Err(error) if error.is_timeout() => report.not_ready.push(format!(
                "{at:.2} s: no answer within {} s",
                REQUEST_TIMEOUT.as_secs()
            )),
            Err(error) => report.not_ready.push(format!("{at:.2} s: {error:?}")),
        }
    }
    report
}

/// One client: its own keep-alive connection and its own user. Without a session it alternates
/// anonymous `/authorize` calls and logins; with one it reads `/userinfo`, refreshes and calls
/// `/authorize`, and after a while logs out or, now and then, walks away from the session (a
/// closed tab), which the kill-9 test then checks.
async fn client(
    base: String,
    index: usize,
    (user, password): (String, String),
    deadline: Instant,
) -> Report {
    let http = http_client();
    let mut report = Report::default();
    let mut session: Option<Session> = None;
    // Steps done with the current session, and how many it gets before it ends.
    let mut steps = 0;
    let lifetime = |round: usize| 6 + (index + round) % 7;
    let mut round = 0;
    let mut step = index;
    while Instant::now() < deadline {
        step += 1;
        let Some(current) = session.clone() else {
            if step.is_multiple_of(2) {
                authorize(&http, &base, &mut report, step).await;
                continue;
            }
            let sent = Instant::now();
            let result = send_json(
                http.post(format!("{base}/oauth/token"))
                    .header("client-type", "api")
                    .form(&[
                        ("grant_type", "password"),
                        ("username", user.as_str()),
                        ("password", password.as_str()),
                    ]),
            )
            .await;
            report.record(LOGIN, sent, &result);
            if let Ok((200, Some(body))) = &result {
                session = tokens(&user, body);
                if session.is_none() {
                    report.malformed(LOGIN, body);
                }
                steps = 0;
            }
            continue;
        };
        steps += 1;
        if steps > lifetime(round) {
            round += 1;
            if round.is_multiple_of(4) {
                // Walks away: the session stays in the store until it expires.
                report.sessions.push(current);
                session = None;
                continue;
            }
            let sent = Instant::now();
            let result = send_text(
                http.get(format!("{base}/logout"))
                    .bearer_auth(&current.access),
            )
            .await;
            report.record(LOGOUT, sent, &result);
            // Answered or not, the session may be gone: it is not checked after a kill.
            session = None;
            continue;
        }
        match steps % 4 {
            0 => authorize(&http, &base, &mut report, step).await,
            2 => {
                let sent = Instant::now();
                let result = send_json(
                    http.post(format!("{base}/refreshtoken"))
                        .bearer_auth(&current.access)
                        .json(&json!({"refresh_token": current.refresh})),
                )
                .await;
                report.record(REFRESH, sent, &result);
                if let Ok((200, Some(body))) = &result {
                    match tokens(&user, body) {
                        Some(newest) => session = Some(newest),
                        None => {
                            report.malformed(REFRESH, body);
                        }
                    }
                }
            }
            _ => {
                let sent = Instant::now();
                let result = send_text(
                    http.get(format!("{base}/userinfo"))
                        .bearer_auth(&current.access),
                )
                .await;
                report.record(USERINFO, sent, &result);
            }
        }
    }
    report.sessions.extend(session);
    report
}

/// Anonymous `GET /authorize`, with the `client-type: api` header every other time.
async fn authorize(http: &reqwest::Client, base: &str, report: &mut Report, step: usize) {
    let mut request = http.get(format!("{base}/authorize"));
    if step % 4 < 2 {
        request = request.header("client-type", "api");
    }
    let sent = Instant::now();
    let result = send_text(request).await;
    report.record(AUTHORIZE, sent, &result);
}

/// Sends and reads the whole answer: its status and body.
async fn send_text(request: reqwest::RequestBuilder) -> Result<(u16, String), reqwest::Error> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

/// Like [`send_text`], the body parsed as JSON when it is.
async fn send_json(
    request: reqwest::RequestBuilder,
) -> Result<(u16, Option<Value>), reqwest::Error> {
    let (status, body) = send_text(request).await?;
    Ok((status, serde_json::from_str(&body).ok()))
}

/// The session of a token answer (`accessToken`, `refreshToken`).
fn tokens(user: &str, body: &Value) -> Option<Session> {
    let access = body["accessToken"].as_str().filter(|t| !t.is_empty())?;
    let refresh = body["refreshToken"].as_str().filter(|t| !t.is_empty())?;
    Some(Session {
        user: user.to_owned(),
        access: access.to_owned(),
        refresh: refresh.to_owned(),
    })
}

/// `GET /userinfo` with each session's newest access token, 8 at a time; one line per session
/// that is not answered 200.
async fn check_sessions(port: u16, sessions: &[Session]) -> Vec<String> {
    use futures_util::StreamExt;
    let http = http_client();
    let url = format!("http://127.0.0.1:{port}/userinfo");
    futures_util::stream::iter(sessions)
        .map(|session| {
            let request = http.get(&url).bearer_auth(&session.access);
            async move {
                match send_text(request).await {
                    Ok((200, _)) => None,
                    Ok((status, body)) => Some(format!(
                        "the session of {} (login answered 200 before the kill) now gets {status} {body}",
                        session.user
                    )),
                    Err(error) => Some(format!(
                        "the session of {} (login answered 200 before the kill): {error}",
                        session.user
                    )),
                }
            }
        })
        .buffer_unordered(8)
        .filter_map(std::future::ready)
        .collect()
        .await
}
