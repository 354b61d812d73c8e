//! Example plugin `audit-log` (SPEC §9): appends each `on_tokens` and `on_job_finished` event to
//! a file as one JSON line. A line names who and what (client, `sub`, kind; job id, status,
//! connection, summary) and never carries a token or the user's other claims.
//!
//! Config: `{"path": "/var/log/auth0-client/audit.jsonl"}`. The file is opened (created if
//! missing, appended to) when the daemon starts: a path it cannot open stops the start. Lines:
//!
//! ```text
//! {"ts":1764480000123,"event":"tokens","kind":"login","client":"web","sub":"auth0|1"}
//! {"ts":1764480000456,"event":"job_finished","jobId":"job_1","status":"completed","connection":"DB","summary":{...}}
//! ```

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use auth0_client_plugin_api::{JobFinishedEvent, Plugin, PluginError, TokensEvent};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    path: PathBuf,
}

pub struct AuditLog {
    file: Mutex<File>,
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl AuditLog {
    /// Writes one line with one `write` call, so concurrent events never interleave.
    fn append(&self, line: Value) -> Result<(), PluginError> {
        let mut bytes = serde_json::to_vec(&line)?;
        bytes.push(b'\n');
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        file.write_all(&bytes)?;
        Ok(())
    }
}

impl Plugin for AuditLog {
    type Config = Config;

    fn new(config: Config) -> Result<Self, PluginError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&config.path)
            .map_err(|e| format!("cannot open {}: {e}", config.path.display()))?;
        Ok(Self {
            file: Mutex::new(file),
        })
    }

    fn on_tokens(&self, event: TokensEvent) -> Result<(), PluginError> {
        self.append(json!({
            "ts": now_ms(),
            "event": "tokens",
            "kind": event.kind,
            "client": event.client,
            "sub": event.sub,
        }))
    }

    fn on_job_finished(&self, event: JobFinishedEvent) -> Result<(), PluginError> {
        self.append(json!({
            "ts": now_ms(),
            "event": "job_finished",
            "jobId": event.job_id,
            "status": event.status,
            "connection": event.connection,
            "summary": event.summary,
        }))
    }
}

auth0_client_plugin_api::export_plugin!(AuditLog, hooks: [on_tokens, on_job_finished]);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use auth0_client_plugin_api::TokensKind;
    use auth0_client_plugin_api::testing::InProcess;

    use super::*;

    #[test]
    fn each_event_is_one_line_without_claims() {
        let dir = std::env::temp_dir().join(format!("audit-log-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.jsonl");
        let plugin = InProcess::new(&AUTH0_CLIENT_PLUGIN, json!({"path": path})).unwrap();
        plugin
            .on_tokens(&TokensEvent {
                client: "web".into(),
                sub: "auth0|1".into(),
                claims: json!({"email": "a@b.c"}).as_object().unwrap().clone(),
                kind: TokensKind::Refresh,
            })
            .unwrap();
        plugin
            .on_job_finished(&JobFinishedEvent {
                job_id: "job_1".into(),
                status: "completed".into(),
                summary: json!({"inserted": 2}),
                connection: Some("DB".into()),
            })
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["kind"], "refresh");
        assert_eq!(lines[0]["sub"], "auth0|1");
        assert!(!text.contains("a@b.c"), "{text}");
        assert_eq!(lines[1]["jobId"], "job_1");
        assert_eq!(lines[1]["summary"]["inserted"], 2);
    }

    #[test]
    fn a_path_it_cannot_open_stops_the_start() {
        let err = InProcess::new(
            &AUTH0_CLIENT_PLUGIN,
            json!({"path": "/nonexistent/dir/a.jsonl"}),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("cannot open /nonexistent/dir/a.jsonl"),
            "{err}"
        );
    }
}
