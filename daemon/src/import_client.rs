//! `auth0-client import` and `auth0-client jobs` (SPEC §2): the shell side of the import routes.
//! They talk to a running daemon over HTTP, like any other client of it.
//!
//! - The API key comes from `AUTH0_CLIENT_API_KEY` (sent as the `secret` header), never from
//!   argv, which `ps` shows to every user of the machine.
//! - `--url` defaults to `http://<server.managementBind>` when the config sets it (an unspecified
//!   address means this machine), else `http://127.0.0.1:$HTTP_PORT`, plus `SERVICE_PREFIX`. The
//!   config is read only for that; without a readable config the environment alone decides.
//! - No redirect is followed: a 3xx is a failure naming where it pointed, so the API key is never
//!   sent to another host (SPEC §2). A `--url` of plain `http://` to a host that is not loopback
//!   is refused unless `--insecure` is given, since the key would cross the network in clear; the
//!   URL the config yields is trusted (the operator wrote it).
//! - `--wait` follows the job or batch every [`WAIT_EVERY`]: a progress bar per part on a
//!   terminal, else one plain line per change of status; then the summary and the first
//!   [`SHOWN_ERRORS`] errors.
//! - Exit codes: 0 all imported (or, without `--wait`, accepted); 1 some users failed, the job
//!   failed or expired, or the daemon refused the import (a 4xx: the file or an option is wrong);
//!   2 the daemon or Auth0 could not be reached (no connection, 429, 5xx).

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;

use crate::config::{Env, Settings};

/// How often `--wait` asks for the status.
pub const WAIT_EVERY: Duration = Duration::from_millis(500);
/// How many errors `--wait` prints at the end.
pub const SHOWN_ERRORS: usize = 10;
/// The environment variable holding the API key.
pub const API_KEY_VAR: &str = "AUTH0_CLIENT_API_KEY";
/// How many failed status requests in a row `--wait` tolerates before giving up.
const WAIT_RETRIES: u32 = 5;

const ALL_IMPORTED: u8 = 0;
const NOT_ALL_IMPORTED: u8 = 1;
const UNREACHABLE: u8 = 2;

/// The daemon's base URL, as `--url` defaults (see the module doc).
pub fn default_url(config: Option<&Path>, env: &Env) -> String {
    match Settings::load(config, env) {
        Ok(settings) => {
            let base = match settings.server.management_bind {
                Some(mut addr) => {
                    if addr.ip().is_unspecified() {
                        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                    }
                    format!("http://{addr}")
                }
                None => format!("http://127.0.0.1:{}", settings.server.http_port),
            };
            format!("{base}{}", settings.service_prefix)
        }
        Err(_) => {
            let port = env.get("HTTP_PORT").unwrap_or("8080");
            let prefix = env.get("SERVICE_PREFIX").unwrap_or_default();
            format!("http://127.0.0.1:{port}{}", prefix.trim_end_matches('/'))
        }
    }
}

/// `--url` as given (`None`: the default from the config, trusted): a plain `http://` URL to a
/// host other than loopback needs `insecure`; otherwise the message on stderr and exit 1.
pub fn check_given_url(url: Option<&str>, insecure: bool, command: &str) -> Result<(), ExitCode> {
    let Some(url) = url else {
        return Ok(());
    };
    match given_url_refusal(url, insecure) {
        None => Ok(()),
        Some(message) => {
            eprintln!("auth0-client {command}: {message}");
            Err(ExitCode::from(NOT_ALL_IMPORTED))
        }
    }
}

/// Why `url`, given with `--url`, is refused; `None` when it may be used.
fn given_url_refusal(url: &str, insecure: bool) -> Option<String> {
    let parsed = match reqwest::Url::parse(url) {
        Ok(parsed) => parsed,
        Err(e) => return Some(format!("--url {url:?} is not a URL: {e}")),
    };
    match parsed.scheme() {
        "https" => None,
        "http" => {
            let loopback = match parsed.host() {
                Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            (!loopback && !insecure).then(|| {
                format!(
                    "--url {url:?} is plain http to a host that is not loopback: the API key \
                     would cross the network in clear; use https, or add --insecure"
                )
            })
        }
        other => Some(format!(
            "--url {url:?} has the scheme {other:?}: use http or https"
        )),
    }
}

/// A failure of the command, with its exit code.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn refused(message: impl Into<String>) -> Self {
        Self {
            code: NOT_ALL_IMPORTED,
            message: message.into(),
        }
    }

    fn unreachable(message: impl Into<String>) -> Self {
        Self {
            code: UNREACHABLE,
            message: message.into(),
        }
    }
}

/// The daemon, as the commands talk to it.
struct Daemon {
    base: String,
    api_key: Option<String>,
    http: reqwest::Client,
}

impl Daemon {
    fn new(base: &str, env: &Env) -> Result<Self, Failure> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            // Never resend the API key to wherever a 3xx points (see the module doc).
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Failure::unreachable(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            api_key: env
                .get(API_KEY_VAR)
                .filter(|k| !k.is_empty())
                .map(str::to_owned),
            http,
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.api_key {
            Some(key) => request.header("secret", key),
            None => request,
        }
    }

    /// Sends `request`; a 2xx answers its status and JSON body (`null` when empty), anything
    /// else the failure with the daemon's message.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<(u16, Value), Failure> {
        let response = request.send().await.map_err(|e| {
            Failure::unreachable(format!("cannot reach the daemon at {}: {e}", self.base))
        })?;
        let status = response.status().as_u16();
        let response_location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Failure::unreachable(format!("the daemon's answer was cut off: {e}")))?;
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        if (200..300).contains(&status) {
            return Ok((status, body));
        }
        if (300..400).contains(&status) {
            let location = response_location.as_deref().unwrap_or("nowhere");
            return Err(Failure::unreachable(format!(
                "the daemon at {} answered {status}, a redirect to {location:?}, which is not \
                 followed (the API key goes only to --url): point --url at the daemon itself",
                self.base
            )));
        }
        let message = body
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| body.to_string(), str::to_owned);
        let message = format!("the daemon answered {status}: {message}");
        Err(if status == 429 || status >= 500 {
            Failure::unreachable(message)
        } else {
            Failure::refused(message)
        })
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::unreachable(format!("cannot start a runtime: {e}")))
}

fn exit(result: Result<u8, Failure>, command: &str) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("auth0-client {command}: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// `auth0-client import FILE [--connection NAME] [--url URL] [--wait]`.
pub fn import(file: &Path, connection: Option<&str>, url: &str, wait: bool, env: &Env) -> ExitCode {
    let run = || -> Result<u8, Failure> {
        let users = std::fs::read(file)
            .map_err(|e| Failure::refused(format!("cannot read {}: {e}", file.display())))?;
        let daemon = Daemon::new(url, env)?;
        runtime()?.block_on(run_import(&daemon, file, users, connection, wait))
    };
    exit(run(), "import")
}

async fn run_import(
    daemon: &Daemon,
    file: &Path,
    users: Vec<u8>,
    connection: Option<&str>,
    wait: bool,
) -> Result<u8, Failure> {
    let file_name = file.file_name().map_or_else(
        || "users.json".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    let part = reqwest::multipart::Part::bytes(users)
        .file_name(file_name)
        .mime_str("application/json")
        .map_err(|e| Failure::refused(e.to_string()))?;
    let mut form = reqwest::multipart::Form::new().part("users", part);
    if let Some(connection) = connection {
        form = form.text("connection", connection.to_owned());
    }
    let (_, accepted) = daemon
        .send(
            daemon
                .request(reqwest::Method::POST, "/users/import")
                .multipart(form),
        )
        .await?;
    let id = accepted
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| Failure::unreachable(format!("the daemon's answer has no id: {accepted}")))?
        .to_owned();
    let parts = accepted
        .get("jobs")
        .and_then(Value::as_array)
        .map_or(1, Vec::len);
    println!(
        "submitted {id} ({}{})",
        accepted
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("pending"),
        if parts > 1 {
            format!(", {parts} parts")
        } else {
            String::new()
        }
    );
    if !wait {
        return Ok(ALL_IMPORTED);
    }
    let finished = follow(daemon, &id).await?;
    report(daemon, &id, &finished).await
}

/// The statuses a job or batch ends in.
fn is_final(status: &str) -> bool {
    matches!(status, "completed" | "failed" | "expired")
}

/// One part of a status answer (the one part of a job).
struct PartView {
    /// `batch_… part 1/3`, or the job id.
    label: String,
    /// Auth0's job id, once it has the part.
    job: Option<String>,
    status: String,
    percentage: Option<u64>,
}

impl PartView {
    /// The plain line of its status.
    fn line(&self) -> String {
        match &self.job {
            Some(job) if *job != self.label => format!("{} ({job}): {}", self.label, self.status),
            _ => format!("{}: {}", self.label, self.status),
        }
    }
}

/// The parts of a status answer: one per batch part, or the job itself.
fn parts_of(id: &str, body: &Value) -> Vec<PartView> {
    let status = |v: &Value| {
        v.get("status")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned()
    };
    match body.get("jobs").and_then(Value::as_array) {
        Some(parts) => parts
            .iter()
            .map(|p| PartView {
                label: format!(
                    "{id} part {}/{}",
                    p.get("part").and_then(Value::as_u64).unwrap_or(0),
                    parts.len()
                ),
                job: p.get("id").and_then(Value::as_str).map(str::to_owned),
                status: status(p),
                percentage: None,
            })
            .collect(),
        None => vec![PartView {
            label: id.to_owned(),
            job: Some(id.to_owned()),
            status: status(body),
            percentage: body.get("percentage_done").and_then(Value::as_u64),
        }],
    }
}

/// What `--wait` shows while it waits: bars on a terminal, else a line per change.
enum Progress {
    Bars {
        _multi: indicatif::MultiProgress,
        bars: Vec<indicatif::ProgressBar>,
    },
    Lines {
        last: BTreeMap<String, String>,
    },
}

impl Progress {
    fn new(parts: &[PartView]) -> Self {
        if !std::io::stdout().is_terminal() {
            return Self::Lines {
                last: BTreeMap::new(),
            };
        }
        let multi = indicatif::MultiProgress::new();
        let style = indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos:>3}% {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> ");
        let bars = parts
            .iter()
            .map(|part| {
                let bar = multi.add(indicatif::ProgressBar::new(100));
                bar.set_style(style.clone());
                bar.set_prefix(part.label.clone());
                bar
            })
            .collect();
        Self::Bars {
            _multi: multi,
            bars,
        }
    }

    fn show(&mut self, parts: &[PartView]) {
        match self {
            Self::Bars { bars, .. } => {
                for (part, bar) in parts.iter().zip(bars.iter()) {
                    let position = match part.status.as_str() {
                        s if is_final(s) => 100,
                        "processing" => part.percentage.unwrap_or(50),
                        _ => 0,
                    };
                    bar.set_position(position);
                    bar.set_message(match &part.job {
                        Some(job) if *job != part.label => format!("{} {job}", part.status),
                        _ => part.status.clone(),
                    });
                    if is_final(&part.status) && !bar.is_finished() {
                        bar.finish();
                    }
                }
            }
            Self::Lines { last } => {
                for part in parts {
                    let line = part.line();
                    if last.get(&part.label) != Some(&line) {
                        println!("{line}");
                        last.insert(part.label.clone(), line);
                    }
                }
            }
        }
    }
}

/// Asks for the status until it is final; answers the final body.
async fn follow(daemon: &Daemon, id: &str) -> Result<Value, Failure> {
    let path = format!("/users/import/status/{id}");
    let mut progress: Option<Progress> = None;
    let mut failures = 0;
    loop {
        match daemon
            .send(daemon.request(reqwest::Method::GET, &path))
            .await
        {
            Ok((_, body)) => {
                failures = 0;
                let parts = parts_of(id, &body);
                progress
                    .get_or_insert_with(|| Progress::new(&parts))
                    .show(&parts);
                let status = body.get("status").and_then(Value::as_str).unwrap_or("");
                if is_final(status) {
                    return Ok(body);
                }
            }
            Err(failure) if failure.code == UNREACHABLE && failures < WAIT_RETRIES => {
                failures += 1;
            }
            Err(failure) => return Err(failure),
        }
        tokio::time::sleep(WAIT_EVERY).await;
    }
}

/// Prints the summary and the first errors; answers the exit code.
async fn report(daemon: &Daemon, id: &str, finished: &Value) -> Result<u8, Failure> {
    let status = finished
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let count = |key: &str| {
        finished
            .get("summary")
            .and_then(|s| s.get(key))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    println!(
        "{id} {status}: {} inserted, {} updated, {} failed, {} in all",
        count("inserted"),
        count("updated"),
        count("failed"),
        count("total")
    );
    let all_imported = status == "completed" && count("failed") == 0;
    if !all_imported {
        let path = format!("/users/import/status/{id}/errors");
        match daemon
            .send(daemon.request(reqwest::Method::GET, &path))
            .await
        {
            Ok((_, errors)) => {
                for line in error_lines(&errors).into_iter().take(SHOWN_ERRORS) {
                    println!("  {line}");
                }
            }
            Err(failure) => eprintln!("cannot read the errors: {}", failure.message),
        }
    }
    Ok(if all_imported {
        ALL_IMPORTED
    } else {
        NOT_ALL_IMPORTED
    })
}

/// One line per failed user (or failed job) of an errors answer, a job's or a batch's.
fn error_lines(errors: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    let user_lines = |prefix: &str, errors: &Value, lines: &mut Vec<String>| match errors {
        Value::Array(users) => {
            for entry in users {
                let user = entry
                    .get("user")
                    .and_then(|u| u.get("email").or_else(|| u.get("user_id")))
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                for error in entry
                    .get("errors")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    lines.push(format!(
                        "{prefix}{user}: {} {}",
                        error.get("code").and_then(Value::as_str).unwrap_or(""),
                        error.get("message").and_then(Value::as_str).unwrap_or("")
                    ));
                }
            }
        }
        Value::Object(job) => lines.push(format!(
            "{prefix}the job failed: {}",
            job.get("status_details")
                .and_then(Value::as_str)
                .unwrap_or("no details")
        )),
        _ => {}
    };
    match errors {
        Value::Array(entries) if entries.iter().any(|e| e.get("part").is_some()) => {
            for entry in entries {
                let prefix = format!(
                    "part {}: ",
                    entry.get("part").and_then(Value::as_u64).unwrap_or(0)
                );
                if let Some(errors) = entry.get("errors") {
                    user_lines(&prefix, errors, &mut lines);
                }
            }
        }
        other => user_lines("", other, &mut lines),
    }
    lines
}

/// `auth0-client jobs [--url URL]`.
pub fn jobs(url: &str, env: &Env) -> ExitCode {
    let run = || -> Result<u8, Failure> {
        let daemon = Daemon::new(url, env)?;
        let (_, list) = runtime()?
            .block_on(daemon.send(daemon.request(reqwest::Method::GET, "/users/import/jobs")))?;
        print!(
            "{}",
            table(list.as_array().map(Vec::as_slice).unwrap_or_default())
        );
        Ok(ALL_IMPORTED)
    };
    exit(run(), "jobs")
}

/// The listing as a table with aligned columns.
pub fn table(items: &[Value]) -> String {
    let text = |item: &Value, key: &str| {
        item.get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let mut rows = vec![[
        "ID".to_owned(),
        "TYPE".to_owned(),
        "STATUS".to_owned(),
        "CONNECTION".to_owned(),
        "CREATED".to_owned(),
        "INSERTED/UPDATED/FAILED/TOTAL".to_owned(),
    ]];
    for item in items {
        let summary = item.get("summary").map_or_else(String::new, |s| {
            let n = |k: &str| s.get(k).and_then(Value::as_u64).unwrap_or(0);
            format!(
                "{}/{}/{}/{}",
                n("inserted"),
                n("updated"),
                n("failed"),
                n("total")
            )
        });
        let kind = match text(item, "type").as_str() {
            "users_import_batch" => "batch".to_owned(),
            "users_import" => "job".to_owned(),
            other => other.to_owned(),
        };
        rows.push([
            text(item, "id"),
            kind,
            text(item, "status"),
            text(item, "connection"),
            text(item, "created_at"),
            summary,
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_given_url_of_plain_http_off_loopback_needs_insecure() {
        for url in [
            "https://auth.example.com",
            "http://127.0.0.1:8080",
            "http://127.8.9.10",
            "http://localhost:9090/prefix",
            "http://[::1]:8080",
        ] {
            assert_eq!(given_url_refusal(url, false), None, "{url}");
        }
        for url in [
            "http://10.0.0.5:8080",
            "http://auth.example.com",
            "http://0.0.0.0:80",
        ] {
            let refusal = given_url_refusal(url, false).expect(url);
            assert!(refusal.contains("--insecure"), "{refusal}");
            assert_eq!(given_url_refusal(url, true), None, "{url}");
        }
        assert!(given_url_refusal("ftp://x", true).is_some());
        assert!(given_url_refusal("not a url", true).is_some());
        assert!(check_given_url(None, false, "import").is_ok());
    }

    #[test]
    fn the_default_url_follows_the_environment_without_a_config() {
        let env = Env::from_pairs([
            ("HTTP_PORT", "9000"),
            ("SERVICE_PREFIX", "/auth"),
            ("SERVICE_CONFIG_PATH", "/nonexistent"),
            ("SERVICE_CONFIG_FILE_NAME", "none"),
        ]);
        assert_eq!(default_url(None, &env), "http://127.0.0.1:9000/auth");
    }

    #[test]
    fn the_table_aligns_its_columns() {
        let table = table(&[
            json!({"id": "job_a", "type": "users_import", "status": "completed", "connection": "db", "created_at": "2026-11-30T05:00:00.000Z", "summary": {"inserted": 2, "updated": 0, "failed": 1, "total": 3}}),
            json!({"id": "batch_bb", "type": "users_import_batch", "status": "pending", "connection": "db", "created_at": "2026-11-30T05:00:01.000Z"}),
        ]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("ID        TYPE   STATUS"), "{table}");
        assert!(lines[1].ends_with("2/0/1/3"), "{table}");
        assert!(lines[2].starts_with("batch_bb  batch  pending"), "{table}");
    }

    #[test]
    fn error_lines_name_the_user_and_the_part() {
        let job = json!([{"user": {"email": "a@x.io"}, "errors": [{"code": "DUPLICATED_USER", "message": "exists"}]}]);
        assert_eq!(error_lines(&job), ["a@x.io: DUPLICATED_USER exists"]);
        let batch = json!([{"part": 2, "id": "job_b", "errors": job}, {"part": 1, "id": "job_a", "errors": []}]);
        assert_eq!(
            error_lines(&batch),
            ["part 2: a@x.io: DUPLICATED_USER exists"]
        );
        let failed = json!({"status": "failed", "status_details": "bad file"});
        assert_eq!(error_lines(&failed), ["the job failed: bad file"]);
    }
}
