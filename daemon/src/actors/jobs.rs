//! Bulk user imports tracked to completion in the background (SPEC §6, DESIGN.md "Jobs").
//!
//! | part | owns | runs on |
//! |---|---|---|
//! | [`JobService`] | submitting an import (sizes, split, the durable record, the single Auth0 job), the status and list answers | the HTTP workers (a cloned handle) |
//! | [`Jobs`] | the poll loop: per-job backoff, batch parts queued within Auth0's 2-active-jobs limit, leases, retention, the finished event | its own arbiter |
//! | [`JobsHandle`] | both, as the routes see them (`Actors::jobs`) | |
//!
//! Every Auth0 call goes through the management service (its token cache, pause and retries).
//!
//! **Records.** A job submitted whole is a [`JobRecord`] of kind `job` under Auth0's id; a larger
//! import is one record of kind `batch` (`batch_…`) whose `detail` is a [`BatchDetail`]: the options
//! and one [`Part`] per slice of at most [`AUTH0_FILE_LIMIT`] bytes (the compact JSON array Auth0
//! gets), each holding its users until Auth0 accepted it. Only the daemon holding a record's lease
//! writes it, so two daemons on one Redis never interleave their writes.
//!
//! **A part's life.** `queued` → `sending` (written durably *before* the POST: the intent) →
//! Auth0's `pending` / `processing` → `completed`, `failed` or `expired`. A part found `sending`
//! (a crash or a failed call between the intent and Auth0's answer) is sent again: Auth0 then
//! reports the users it already imported as `DUPLICATED_USER`, or updates them with `upsert`. An
//! Auth0 429 (its 2-active-jobs limit, a rate limit) or a 5xx puts the part back to `queued`.
//!
//! **Choices where SPEC is silent.**
//! - A batch shows `failed` as soon as a part failed or expired, but its other parts are still sent
//!   and polled: the record becomes final (and its finished event fires) when every part is.
//! - `on_job_finished` fires once per job or batch submitted through the route, never per part;
//!   [`JobFinished::summary`] of a batch is the sum of its parts' summaries.
//! - `auth0_client_jobs{status}`: `pending` and `processing` are the unfinished records in the store
//!   (every daemon's) at the last poll round; `completed`, `failed` and `expired` count the records
//!   this daemon saw finish since it started.
//! - The lease of a record lasts `jobs.maxPollIntervalMs` + 3 × `server.auth0TimeoutMs` (longer
//!   than one poll, retries included) and is renewed at each poll, so the daemon polling a job keeps
//!   it, and another daemon takes it over at most that long after the first one died. On sled (one
//!   process per folder) the holder's name is fixed, so a restarted daemon takes its leases back
//!   at once.
//! - Retention runs at most hourly, from the poll loop.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use rand::RngExt as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::Alive;
use super::management::ManagementService;
use crate::auth0::management::{
    ManagementAnswer, ManagementBody, ManagementError, ManagementRequest, encode_segment,
};
use crate::clock::Clock;
use crate::config::JobSettings;
use crate::store::{
    JobCursor, JobKind, JobRecord, JobStatus, JobStore, LeaseStore, StoreError, Timestamp, bounded,
};

/// The largest users file Auth0 accepts, in bytes of the JSON array it gets (wire reference §3.1).
pub const AUTH0_FILE_LIMIT: usize = 512_000;
/// Auth0's limit of import jobs active at once in a tenant.
pub const AUTH0_ACTIVE_JOBS: usize = 2;
/// How often finished records past `jobs.retentionDays` are looked for.
const RETENTION_EVERY: Duration = Duration::from_secs(3_600);

/// The options of one import, as Auth0's multipart form takes them, with the connection resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportOptions {
    /// The connection name (a key of `supportedConnectionsMap`).
    pub connection: String,
    /// Its Auth0 id (`con_…`), which Auth0 gets.
    pub connection_id: String,
    #[serde(default)]
    pub upsert: Option<bool>,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub send_completion_email: Option<bool>,
}

impl ImportOptions {
    /// The text parts of the multipart form, only those given (Auth0 applies its defaults).
    fn fields(&self) -> Vec<(String, String)> {
        let mut fields = vec![("connection_id".to_owned(), self.connection_id.clone())];
        if let Some(upsert) = self.upsert {
            fields.push(("upsert".to_owned(), upsert.to_string()));
        }
        if let Some(external_id) = &self.external_id {
            fields.push(("external_id".to_owned(), external_id.clone()));
        }
        if let Some(send) = self.send_completion_email {
            fields.push(("send_completion_email".to_owned(), send.to_string()));
        }
        fields
    }

    /// `POST /api/v2/jobs/users-imports` with `users` (a compact JSON array).
    fn request(&self, users: String) -> ManagementRequest {
        ManagementRequest {
            method: reqwest::Method::POST,
            path: "jobs/users-imports".to_owned(),
            query: Vec::new(),
            body: ManagementBody::Multipart {
                file_name: "users.json".to_owned(),
                file: users.into_bytes(),
                fields: self.fields(),
            },
        }
    }
}

/// Why an import or a status request failed; `http/error.rs` answers each.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(
        "users[{index}] is {bytes} bytes of JSON; one user may be at most {max} bytes, since Auth0 accepts users files of at most {AUTH0_FILE_LIMIT} bytes",
        max = AUTH0_FILE_LIMIT - 2
    )]
    UserTooLarge { index: usize, bytes: usize },
    #[error("`users` is an empty array: there is nobody to import")]
    NoUsers,
    #[error("no import batch {0} is recorded here")]
    UnknownBatch(String),
    #[error("the job store is unavailable: {0}")]
    Store(#[from] StoreError),
    #[error("Auth0 refused or failed the call: {0}")]
    Auth0(#[from] ManagementError),
    #[error("Auth0 answered the import with a body that is not a job: {0}")]
    InvalidAnswer(String),
}

/// Splits `users` at user boundaries into compact JSON arrays of at most [`AUTH0_FILE_LIMIT`]
/// bytes each, in order; a user too large to fit alone is refused by index.
pub fn split_users(users: &[Value]) -> Result<Vec<String>, ImportError> {
    if users.is_empty() {
        return Err(ImportError::NoUsers);
    }
    let mut parts = Vec::new();
    let mut current = String::from("[");
    for (index, user) in users.iter().enumerate() {
        // `Display` of a `Value` is its compact JSON.
        let json = user.to_string();
        if json.len() + 2 > AUTH0_FILE_LIMIT {
            return Err(ImportError::UserTooLarge {
                index,
                bytes: json.len(),
            });
        }
        let separator = usize::from(current.len() > 1);
        if current.len() + separator + json.len() + 1 > AUTH0_FILE_LIMIT {
            current.push(']');
            parts.push(std::mem::replace(&mut current, String::from("[")));
        }
        if current.len() > 1 {
            current.push(',');
        }
        current.push_str(&json);
    }
    current.push(']');
    parts.push(current);
    Ok(parts)
}

/// A batch part's status: the daemon's two before Auth0 has the part, then Auth0's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartStatus {
    Queued,
    Sending,
    Pending,
    Processing,
    Completed,
    Failed,
    Expired,
}

impl PartStatus {
    fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Expired)
    }

    fn from_job(status: JobStatus) -> Self {
        match status {
            JobStatus::Pending => Self::Pending,
            JobStatus::Processing => Self::Processing,
            JobStatus::Completed => Self::Completed,
            JobStatus::Failed => Self::Failed,
            JobStatus::Expired => Self::Expired,
        }
    }
}

/// One slice of a batch (see the module doc).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// 1-based.
    pub part: usize,
    pub status: PartStatus,
    /// Auth0's job id once it accepted the part.
    pub id: Option<String>,
    /// The compact JSON array to send; dropped once Auth0 has the part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<String>,
    /// How many users the part holds.
    pub count: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Value>,
    /// Auth0's errors body of the part, once finished with failed users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Value>,
    /// Why Auth0 refused the part, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_details: Option<String>,
    /// How many times it was sent.
    #[serde(default)]
    pub attempts: u32,
}

/// A batch record's `detail`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchDetail {
    pub options: ImportOptions,
    pub parts: Vec<Part>,
}

impl BatchDetail {
    fn of(record: &JobRecord) -> Option<Self> {
        serde_json::from_value(record.detail.clone()).ok()
    }

    /// SPEC §6: `pending` until a part is sent, `failed` once any part failed or expired,
    /// `completed` when all completed, else `processing`.
    pub fn status(&self) -> &'static str {
        let statuses = || self.parts.iter().map(|p| p.status);
        if statuses().any(|s| matches!(s, PartStatus::Failed | PartStatus::Expired)) {
            "failed"
        } else if statuses().all(|s| s == PartStatus::Completed) {
            "completed"
        } else if statuses().all(|s| matches!(s, PartStatus::Queued | PartStatus::Sending)) {
            "pending"
        } else {
            "processing"
        }
    }

    /// The record status this detail means (final only when every part is).
    fn record_status(&self) -> JobStatus {
        if self.parts.iter().all(|p| p.status.is_final()) {
            if self.parts.iter().all(|p| p.status == PartStatus::Completed) {
                JobStatus::Completed
            } else {
                JobStatus::Failed
            }
        } else if self.parts.iter().any(|p| p.id.is_some()) {
            JobStatus::Processing
        } else {
            JobStatus::Pending
        }
    }

    /// The sum of the parts' summaries, once any part has one.
    fn summary(&self) -> Option<Value> {
        let mut sum: Option<Map<String, Value>> = None;
        for summary in self.parts.iter().filter_map(|p| p.summary.as_ref()) {
            let total = sum.get_or_insert_with(Map::new);
            for key in ["failed", "updated", "inserted", "total"] {
                let add = summary.get(key).and_then(Value::as_u64).unwrap_or(0);
                let now = total.get(key).and_then(Value::as_u64).unwrap_or(0);
                total.insert(key.to_owned(), json!(now + add));
            }
        }
        sum.map(Value::Object)
    }
}

fn parse_status(value: &Value) -> Option<JobStatus> {
    serde_json::from_value(value.get("status")?.clone()).ok()
}

fn status_name(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Pending => "pending",
        JobStatus::Processing => "processing",
        JobStatus::Completed => "completed",
        JobStatus::Failed => "failed",
        JobStatus::Expired => "expired",
    }
}

/// Auth0's own format of times: RFC 3339, milliseconds, `Z`.
pub fn format_time(at: Timestamp) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    at.to_offset_datetime()
        .and_then(|at| at.format(FORMAT).ok())
        .unwrap_or_default()
}

/// A random id of Auth0's shape: `prefix` and 16 alphanumerics.
fn new_id(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..16)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!("{prefix}{tail}")
}

/// What an import answered: Auth0's 202 for a whole job, the batch object for a split one.
pub enum Submitted {
    Job(ManagementAnswer),
    Batch(Value),
}

/// What a status or errors request answers.
pub enum Answer {
    /// Auth0's answer, passed through.
    Auth0(ManagementAnswer),
    /// 200 with this JSON (a batch, or a record Auth0 forgot).
    Json(Value),
    /// 204: no errors.
    NoContent,
}

/// The event `on_job_finished` carries (SPEC §9): `{jobId, status, summary, connection}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobFinished {
    pub job_id: String,
    pub status: JobStatus,
    pub summary: Option<Value>,
    pub connection: String,
}

/// Called once per job or batch when it reaches `completed`, `failed` or `expired` (the plugins'
/// `on_job_finished`). Runs on the jobs arbiter: it must hand the event off, never block.
pub type JobFinishedHook = Arc<dyn Fn(JobFinished) + Send + Sync>;

/// How an Auth0 failure is treated by the poll loop.
enum Failure {
    /// Auth0 answered 404: it does not know the job.
    NotFound,
    /// Busy or rate limited: retry after this long.
    RetryAfter(Duration),
    /// A 4xx refusal of the request itself: not worth sending again.
    Refused(String),
    /// Anything else (5xx, network, timeout, configuration): retry with backoff.
    Transient(String),
}

fn classify(err: &ManagementError) -> Failure {
    match err {
        ManagementError::Refused(failure) if failure.status == reqwest::StatusCode::NOT_FOUND => {
            Failure::NotFound
        }
        ManagementError::RateLimited { retry_after, .. } => Failure::RetryAfter(*retry_after),
        ManagementError::Refused(_) => Failure::Refused(err.to_string()),
        _ => Failure::Transient(err.to_string()),
    }
}

/// The part of the jobs machinery the routes use on the workers, and the poll loop's helpers.
/// Cheap to clone.
#[derive(Clone)]
pub struct JobService {
    /// The roles of the store this part needs: job records, and leases on them.
    jobs: Arc<dyn JobStore>,
    leases: Arc<dyn LeaseStore>,
    limit: Duration,
    management: ManagementService,
    clock: Clock,
}

impl JobService {
    /// `limit`: `sessions.timeoutMs`, the bound of one store call.
    pub fn new(
        jobs: Arc<dyn JobStore>,
        leases: Arc<dyn LeaseStore>,
        limit: Duration,
        management: ManagementService,
        clock: Clock,
    ) -> Self {
        Self {
            jobs,
            leases,
            limit,
            management,
            clock,
        }
    }

    async fn put(&self, record: &JobRecord) -> Result<(), StoreError> {
        bounded(self.limit, self.jobs.put_job(record)).await
    }

    async fn get(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        bounded(self.limit, self.jobs.get_job(id)).await
    }

    /// Submits an import: one Auth0 job when the users fit in one file (Auth0's 202 answered),
    /// else a durable batch the poll loop sends (the batch object answered).
    pub async fn submit(
        &self,
        users: &[Value],
        options: ImportOptions,
    ) -> Result<Submitted, ImportError> {
        let mut parts = split_users(users)?;
        let now = self.clock.now();
        if parts.len() == 1 {
            let file = parts.pop().unwrap_or_default();
            let answer = self.management.send(options.request(file)).await?;
            let body: Value = serde_json::from_slice(&answer.body)
                .map_err(|e| ImportError::InvalidAnswer(e.to_string()))?;
            let Some(id) = body.get("id").and_then(Value::as_str) else {
                return Err(ImportError::InvalidAnswer("no `id`".into()));
            };
            let record = JobRecord {
                id: id.to_owned(),
                kind: JobKind::Job,
                status: parse_status(&body)
                    .filter(|s| !s.is_final())
                    .unwrap_or(JobStatus::Pending),
                connection: options.connection.clone(),
                created_at: now,
                updated_at: now,
                summary: None,
                errors: None,
                detail: json!({"connection_id": options.connection_id}),
            };
            if let Err(err) = self.put(&record).await {
                tracing::error!(job_id = id, error = %err, "Auth0 accepted an import job that could not be recorded: it will not be tracked");
                return Err(err.into());
            }
            tracing::info!(job_id = id, connection = %options.connection, users = users.len(), "import job submitted");
            return Ok(Submitted::Job(answer));
        }
        let counts = count_users(users, &parts);
        let detail = BatchDetail {
            parts: parts
                .into_iter()
                .zip(counts)
                .enumerate()
                .map(|(i, (users, count))| Part {
                    part: i + 1,
                    status: PartStatus::Queued,
                    id: None,
                    users: Some(users),
                    count,
                    summary: None,
                    errors: None,
                    status_details: None,
                    attempts: 0,
                })
                .collect(),
            options,
        };
        let record = JobRecord {
            id: new_id("batch_"),
            kind: JobKind::Batch,
            status: JobStatus::Pending,
            connection: detail.options.connection.clone(),
            created_at: now,
            updated_at: now,
            summary: None,
            errors: None,
            detail: serde_json::to_value(&detail)
                .map_err(|e| ImportError::InvalidAnswer(e.to_string()))?,
        };
        self.put(&record).await?;
        tracing::info!(batch_id = %record.id, connection = %record.connection, users = users.len(), parts = detail.parts.len(), "import batch recorded");
        Ok(Submitted::Batch(batch_view(&record, &detail)))
    }

    /// `GET /users/import/status/{id}` (SPEC §6).
    pub async fn status(&self, id: &str) -> Result<(Answer, bool), ImportError> {
        if id.starts_with("batch_") {
            let record = self
                .get(id)
                .await?
                .ok_or_else(|| ImportError::UnknownBatch(id.to_owned()))?;
            let view = BatchDetail::of(&record)
                .map_or_else(|| record_view(&record), |d| batch_view(&record, &d));
            return Ok((Answer::Json(view), false));
        }
        let request = get_request(format!("jobs/{}", encode_segment(id)));
        match self.management.send(request).await {
            Ok(answer) => Ok((Answer::Auth0(answer), false)),
            Err(err) if matches!(classify(&err), Failure::NotFound) => match self.get(id).await? {
                Some(record) if record.status.is_final() => {
                    Ok((Answer::Json(record_view(&record)), false))
                }
                Some(mut record) => {
                    // Auth0 forgot a job it never finished: `expired`. The poll loop, which owns
                    // the record, stores that on its next look (the caller wakes it).
                    record.status = JobStatus::Expired;
                    Ok((Answer::Json(record_view(&record)), true))
                }
                None => Err(err.into()),
            },
            Err(err) => Err(err.into()),
        }
    }

    /// `GET /users/import/status/{id}/errors` (SPEC §6).
    pub async fn errors(&self, id: &str) -> Result<Answer, ImportError> {
        if id.starts_with("batch_") {
            let record = self
                .get(id)
                .await?
                .ok_or_else(|| ImportError::UnknownBatch(id.to_owned()))?;
            let parts = BatchDetail::of(&record)
                .map(|d| d.parts)
                .unwrap_or_default();
            let list: Vec<Value> = parts
                .iter()
                .filter(|p| p.status.is_final())
                .map(|p| {
                    let errors = match &p.errors {
                        Some(errors) => errors.clone(),
                        None => match &p.status_details {
                            Some(details) => json!({"status": "failed", "status_details": details}),
                            None => json!([]),
                        },
                    };
                    json!({"part": p.part, "id": p.id, "errors": errors})
                })
                .collect();
            return Ok(Answer::Json(Value::Array(list)));
        }
        let request = get_request(format!("jobs/{}/errors", encode_segment(id)));
        match self.management.send(request).await {
            Ok(answer) => Ok(Answer::Auth0(answer)),
            Err(err) if matches!(classify(&err), Failure::NotFound) => match self.get(id).await? {
                Some(record) => Ok(match record.errors {
                    Some(errors) => Answer::Json(errors),
                    None => Answer::NoContent,
                }),
                None => Err(err.into()),
            },
            Err(err) => Err(err.into()),
        }
    }

    /// `GET /users/import/jobs`: newest first, each with its last known status.
    pub async fn list(
        &self,
        limit: usize,
        before: Option<&JobCursor>,
    ) -> Result<Vec<Value>, ImportError> {
        let records = bounded(self.limit, self.jobs.list_jobs(limit, before)).await?;
        Ok(records.iter().map(list_item).collect())
    }

    /// Polls one Auth0 job: its new status, summary, and errors once finished with failures.
    async fn poll_auth0(&self, id: &str) -> Result<Polled, Failure> {
        let answer = self
            .management
            .send(get_request(format!("jobs/{}", encode_segment(id))))
            .await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(err) => {
                return match classify(&err) {
                    Failure::NotFound => Ok(Polled {
                        status: JobStatus::Expired,
                        summary: None,
                        errors: None,
                    }),
                    Failure::Refused(why) => Err(Failure::Transient(why)),
                    other => Err(other),
                };
            }
        };
        let body: Value = serde_json::from_slice(&answer.body)
            .map_err(|e| Failure::Transient(format!("unreadable job body: {e}")))?;
        let status = parse_status(&body)
            .ok_or_else(|| Failure::Transient("a job body without a known `status`".into()))?;
        let summary = body.get("summary").cloned();
        let failed_users = summary
            .as_ref()
            .and_then(|s| s.get("failed"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let mut errors = None;
        if status == JobStatus::Failed || (status.is_final() && failed_users > 0) {
            let answer = self
                .management
                .send(get_request(format!("jobs/{}/errors", encode_segment(id))))
                .await;
            match answer {
                Ok(answer) if answer.body.is_empty() => {}
                Ok(answer) => {
                    errors =
                        Some(serde_json::from_slice(&answer.body).map_err(|e| {
                            Failure::Transient(format!("unreadable errors body: {e}"))
                        })?);
                }
                Err(err) => {
                    return Err(Failure::Transient(format!("fetching the errors: {err}")));
                }
            }
        }
        Ok(Polled {
            status,
            summary,
            errors,
        })
    }
}

fn get_request(path: String) -> ManagementRequest {
    ManagementRequest {
        method: reqwest::Method::GET,
        path,
        query: Vec::new(),
        body: ManagementBody::Empty,
    }
}

/// How many users each part of `parts` holds (they are `users`, in order).
fn count_users(users: &[Value], parts: &[String]) -> Vec<usize> {
    let mut counts = Vec::with_capacity(parts.len());
    let mut users = users.iter().map(|u| u.to_string().len());
    for part in parts {
        // A part is `[` + users joined by `,` + `]`.
        let mut room = part.len().saturating_sub(2);
        let mut count = 0;
        while room > 0 {
            let Some(len) = users.next() else { break };
            room = room.saturating_sub(len + usize::from(count > 0));
            count += 1;
        }
        counts.push(count);
    }
    counts
}

/// What one poll of an Auth0 job found.
struct Polled {
    status: JobStatus,
    summary: Option<Value>,
    errors: Option<Value>,
}

/// The batch object of SPEC §6.
pub fn batch_view(record: &JobRecord, detail: &BatchDetail) -> Value {
    let mut view = json!({
        "id": record.id,
        "type": "users_import_batch",
        "status": detail.status(),
        "connection": record.connection,
        "created_at": format_time(record.created_at),
        "jobs": detail.parts.iter().map(|p| {
            let mut part = json!({"part": p.part, "status": p.status, "id": p.id, "users": p.count});
            if let Some(summary) = &p.summary {
                part["summary"] = summary.clone();
            }
            part
        }).collect::<Vec<_>>(),
    });
    if let Some(summary) = detail.summary() {
        view["summary"] = summary;
    }
    view
}

/// A job record as Auth0 shapes a job (the status route once Auth0 forgot it).
fn record_view(record: &JobRecord) -> Value {
    let mut view = json!({
        "type": "users_import",
        "status": status_name(record.status),
        "connection": record.connection,
        "created_at": format_time(record.created_at),
        "id": record.id,
    });
    if let Some(id) = record.detail.get("connection_id") {
        view["connection_id"] = id.clone();
    }
    if let Some(summary) = &record.summary {
        view["summary"] = summary.clone();
    }
    view
}

/// One entry of `GET /users/import/jobs`.
fn list_item(record: &JobRecord) -> Value {
    let (kind, status) = match record.kind {
        JobKind::Job => ("users_import", status_name(record.status)),
        JobKind::Batch => (
            "users_import_batch",
            BatchDetail::of(record).map_or(status_name(record.status), |d| d.status()),
        ),
    };
    let mut item = json!({
        "id": record.id,
        "type": kind,
        "status": status,
        "connection": record.connection,
        "created_at": format_time(record.created_at),
    });
    if let Some(summary) = &record.summary {
        item["summary"] = summary.clone();
    }
    item
}

// ---------------------------------------------------------------------------------------------
// The actor

/// Polls every unfinished job whose time has come, sends queued batch parts, and sweeps
/// retention, once; answers what it did. The loop sends itself one on a timer; tests send it
/// instead of sleeping.
#[derive(Message)]
#[rtype(result = "PollReport")]
pub struct PollOnce;

/// Makes every unfinished job due now and runs a round (after a submit, or a status request that
/// found a job Auth0 forgot).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Wake;

/// The timer's round, which schedules the next one when it ends.
#[derive(Message)]
#[rtype(result = "()")]
struct Tick;

/// What one [`PollOnce`] did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PollReport {
    /// Unfinished records found in the store.
    pub unfinished: usize,
    /// Jobs (or batch parts, as `batch_…/N`) polled at Auth0, with the status found.
    pub polled: Vec<(String, JobStatus)>,
    /// Batch parts Auth0 accepted this round, as `batch_…/N`.
    pub submitted: Vec<String>,
    /// Batch parts put back in the queue (Auth0 busy or failing).
    pub requeued: Vec<String>,
    /// Records that reached a final status, with it.
    pub finished: Vec<(String, JobStatus)>,
    /// Records another daemon holds the lease of.
    pub leased_elsewhere: Vec<String>,
    /// Records whose turn has not come yet (backoff).
    pub waiting: usize,
    /// Failures met (Auth0 or the store), by record.
    pub failures: Vec<(String, String)>,
    /// Finished records deleted by retention.
    pub deleted: u64,
}

impl PollReport {
    /// Whether nothing is left to do: no unfinished record.
    pub fn is_idle(&self) -> bool {
        self.unfinished == self.finished.len()
    }
}

/// When a record is next looked at, and the backoff interval that got it there.
#[derive(Clone, Copy, Debug)]
struct Due {
    at: Timestamp,
    interval: Duration,
    /// Whether this daemon held the record's lease at its last look.
    held: bool,
}

impl Due {
    /// The next look `wait` after `now`, then backing off from `interval`.
    fn after(now: Timestamp, wait: Duration, interval: Duration, held: bool) -> Self {
        Self {
            at: now.saturating_add(wait),
            interval,
            held,
        }
    }
}

/// The poll loop (see the module doc). Build with [`Jobs::new`], optionally
/// [`Jobs::with_finished_hook`], then start it with [`Jobs::start_in_own_arbiter`].
pub struct Jobs {
    service: JobService,
    holder: String,
    poll_interval: Duration,
    max_interval: Duration,
    lease_ttl: Duration,
    retention: Duration,
    schedule: HashMap<String, Due>,
    last_retention: Option<Timestamp>,
    gauge: prometheus::IntGaugeVec,
    hook: Option<JobFinishedHook>,
    /// The timer's next round.
    tick: Option<SpawnHandle>,
}

impl Jobs {
    /// `shared`: whether other daemons use the store (Redis); `auth0_timeout`:
    /// `server.auth0TimeoutMs`; `gauge`: `auth0_client_jobs{status}` ([`Jobs::gauge`]).
    pub fn new(
        service: JobService,
        settings: &JobSettings,
        auth0_timeout: Duration,
        shared: bool,
        gauge: prometheus::IntGaugeVec,
    ) -> Self {
        let max_interval = Duration::from_millis(settings.max_poll_interval_ms);
        Self {
            service,
            holder: if shared {
                format!("jobs-{}", uuid::Uuid::new_v4())
            } else {
                "jobs-local".to_owned()
            },
            poll_interval: Duration::from_millis(settings.poll_interval_ms),
            max_interval,
            lease_ttl: max_interval.saturating_add(auth0_timeout.saturating_mul(3)),
            retention: Duration::from_secs(settings.retention_days.saturating_mul(86_400)),
            schedule: HashMap::new(),
            last_retention: None,
            gauge,
            hook: None,
            tick: None,
        }
    }

    /// `auth0_client_jobs{status}`, to register with the metrics and hand to [`Jobs::new`].
    pub fn gauge() -> Result<prometheus::IntGaugeVec, prometheus::Error> {
        prometheus::IntGaugeVec::new(
            prometheus::Opts::new(
                "auth0_client_jobs",
                "Import jobs and batches by status: pending and processing are the unfinished \
                 records in the store at the last poll round; completed, failed and expired count \
                 the records this daemon saw finish since it started.",
            ),
            &["status"],
        )
    }

    /// The `on_job_finished` hook point: `hook` is called once per job or batch that finishes
    /// (see [`JobFinished`]). The plugins wire their event here.
    pub fn with_finished_hook(mut self, hook: Box<dyn Fn(JobFinished) + Send + Sync>) -> Self {
        self.hook = Some(Arc::from(hook));
        self
    }

    /// Starts the loop on an arbiter of its own (its polls wait on Auth0 and the store).
    pub fn start_in_own_arbiter(self) -> JobsHandle {
        let service = self.service.clone();
        let arbiter = Arbiter::new();
        let actor = Self::start_in_arbiter(&arbiter.handle(), move |_| self);
        JobsHandle { service, actor }
    }

    /// When the timer's next round is worth running: at the earliest record's turn, within
    /// `jobs.pollIntervalMs`..=`jobs.maxPollIntervalMs`; with nothing unfinished, the longest wait
    /// (a submit here wakes the loop at once; another daemon's jobs are polled by that daemon, and
    /// taken over within the wait if it dies).
    fn next_tick(&self) -> Duration {
        let now = self.service.clock.now().as_millis();
        self.schedule
            .values()
            .map(|due| Duration::from_millis(u64::try_from(due.at.as_millis() - now).unwrap_or(0)))
            .min()
            .unwrap_or(self.max_interval)
            .clamp(self.poll_interval, self.max_interval)
    }

    /// (Re)sets the timer to [`Jobs::next_tick`].
    fn schedule_tick(&mut self, ctx: &mut Context<Self>) {
        if let Some(tick) = self.tick.take() {
            ctx.cancel_future(tick);
        }
        self.tick = Some(ctx.run_later(self.next_tick(), |_, ctx| ctx.notify(Tick)));
    }

    fn finished(&self, record: &JobRecord) {
        let status = status_name(record.status);
        self.gauge.with_label_values(&[status]).inc();
        let summary = record.summary.clone().unwrap_or(Value::Null);
        match record.status {
            JobStatus::Completed => {
                tracing::info!(job_id = %record.id, kind = ?record.kind, status, connection = %record.connection, %summary, "import finished")
            }
            _ => {
                tracing::warn!(job_id = %record.id, kind = ?record.kind, status, connection = %record.connection, %summary, "import finished without success")
            }
        }
        if let Some(hook) = &self.hook {
            hook(JobFinished {
                job_id: record.id.clone(),
                status: record.status,
                summary: record.summary.clone(),
                connection: record.connection.clone(),
            });
        }
    }

    /// One round; the actor's state is moved into the future and back (the round is atomic).
    fn round(&mut self) -> impl ActorFuture<Self, Output = PollReport> + use<> {
        let round = Round {
            service: self.service.clone(),
            holder: self.holder.clone(),
            poll_interval: self.poll_interval,
            max_interval: self.max_interval,
            lease_ttl: self.lease_ttl,
            retention: self.retention,
            schedule: std::mem::take(&mut self.schedule),
            last_retention: self.last_retention,
            report: PollReport::default(),
            finished: Vec::new(),
        };
        round.run().into_actor(self).map(|round, actor, _| {
            actor.schedule = round.schedule;
            actor.last_retention = round.last_retention;
            for status in [JobStatus::Pending, JobStatus::Processing] {
                let count = round.counts.get(&status).copied().unwrap_or(0);
                actor
                    .gauge
                    .with_label_values(&[status_name(status)])
                    .set(i64::try_from(count).unwrap_or(i64::MAX));
            }
            for record in &round.finished {
                actor.finished(record);
            }
            round.report
        })
    }
}

impl Actor for Jobs {
    type Context = Context<Self>;

    /// Resumes the unfinished work at once, then polls on a timer.
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.notify(Tick);
    }
}

impl Handler<PollOnce> for Jobs {
    type Result = AtomicResponse<Self, PollReport>;

    fn handle(&mut self, _: PollOnce, _: &mut Context<Self>) -> Self::Result {
        AtomicResponse::new(Box::pin(self.round()))
    }
}

impl Handler<Tick> for Jobs {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _: Tick, _: &mut Context<Self>) -> Self::Result {
        AtomicResponse::new(Box::pin(
            self.round().map(|_, actor, ctx| actor.schedule_tick(ctx)),
        ))
    }
}

impl Handler<Wake> for Jobs {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _: Wake, _: &mut Context<Self>) -> Self::Result {
        self.schedule.clear();
        // The round may have found work due sooner than the timer's next round.
        AtomicResponse::new(Box::pin(
            self.round().map(|_, actor, ctx| actor.schedule_tick(ctx)),
        ))
    }
}

impl Handler<Alive> for Jobs {
    type Result = ();
    fn handle(&mut self, _: Alive, _: &mut Context<Self>) {}
}

/// One round's working state, moved out of the actor for the round's duration.
struct Round {
    service: JobService,
    holder: String,
    poll_interval: Duration,
    max_interval: Duration,
    lease_ttl: Duration,
    retention: Duration,
    schedule: HashMap<String, Due>,
    last_retention: Option<Timestamp>,
    report: PollReport,
    finished: Vec<JobRecord>,
}

/// A finished round.
struct Done {
    schedule: HashMap<String, Due>,
    last_retention: Option<Timestamp>,
    report: PollReport,
    finished: Vec<JobRecord>,
    counts: HashMap<JobStatus, usize>,
}

/// What advancing one record did.
struct Advance {
    /// The record changed and was written.
    changed: bool,
    /// Look again after this long rather than the backoff's interval.
    retry_after: Option<Duration>,
}

impl Round {
    async fn run(mut self) -> Done {
        let service = self.service.clone();
        let mut counts = HashMap::new();
        let records = match bounded(service.limit, service.jobs.unfinished_jobs()).await {
            Ok(records) => records,
            Err(err) => {
                tracing::warn!(error = %err, "reading the unfinished import jobs failed");
                self.report.failures.push((String::new(), err.to_string()));
                return self.done(counts);
            }
        };
        self.report.unfinished = records.len();
        self.schedule
            .retain(|id, _| records.iter().any(|r| &r.id == id));
        // What Auth0 runs for this store: unfinished whole jobs and sent batch parts.
        let mut active = records
            .iter()
            .map(|r| match r.kind {
                JobKind::Job => 1,
                JobKind::Batch => BatchDetail::of(r).map_or(0, |d| {
                    d.parts
                        .iter()
                        .filter(|p| {
                            matches!(p.status, PartStatus::Pending | PartStatus::Processing)
                        })
                        .count()
                }),
            })
            .sum::<usize>();
        for record in records {
            let now = service.clock.now();
            let due = self.schedule.get(&record.id).copied();
            if due.is_some_and(|d| d.at > now) {
                self.report.waiting += 1;
                *counts.entry(record.status).or_insert(0) += 1;
                continue;
            }
            let interval = due.map_or(self.poll_interval, |d| d.interval);
            let key = format!("job:{}", record.id);
            match bounded(
                service.limit,
                service.leases.try_lease(&key, &self.holder, self.lease_ttl),
            )
            .await
            {
                Ok(true) if due.is_some_and(|d| d.held) => {}
                Ok(true) => tracing::info!(
                    job_id = %record.id,
                    holder = %self.holder,
                    "import job lease taken: this daemon polls it"
                ),
                Ok(false) => {
                    // Another daemon polls it: look again less and less often, in case it dies.
                    self.report.leased_elsewhere.push(record.id.clone());
                    let interval = interval.saturating_mul(2).min(self.max_interval);
                    self.schedule.insert(
                        record.id.clone(),
                        Due::after(now, interval, interval, false),
                    );
                    *counts.entry(record.status).or_insert(0) += 1;
                    continue;
                }
                Err(err) => {
                    self.report
                        .failures
                        .push((record.id.clone(), err.to_string()));
                    self.schedule.insert(
                        record.id.clone(),
                        Due::after(now, interval, interval, false),
                    );
                    *counts.entry(record.status).or_insert(0) += 1;
                    continue;
                }
            }
            let mut record = record;
            let advance = match record.kind {
                JobKind::Job => {
                    let advance = self.advance_job(&mut record).await;
                    if record.status.is_final() {
                        active = active.saturating_sub(1);
                    }
                    advance
                }
                JobKind::Batch => self.advance_batch(&mut record, &mut active).await,
            };
            if record.status.is_final() {
                self.schedule.remove(&record.id);
                let _ = bounded(
                    service.limit,
                    service.leases.release_lease(&key, &self.holder),
                )
                .await;
                self.report
                    .finished
                    .push((record.id.clone(), record.status));
                self.finished.push(record);
                continue;
            }
            *counts.entry(record.status).or_insert(0) += 1;
            let next = if advance.changed {
                self.poll_interval
            } else {
                interval.saturating_mul(2).min(self.max_interval)
            };
            let wait = advance.retry_after.map_or(next, |r| r.max(next));
            self.schedule.insert(
                record.id.clone(),
                Due::after(service.clock.now(), wait, next, true),
            );
        }
        self.retention().await;
        self.done(counts)
    }

    fn done(self, counts: HashMap<JobStatus, usize>) -> Done {
        Done {
            schedule: self.schedule,
            last_retention: self.last_retention,
            report: self.report,
            finished: self.finished,
            counts,
        }
    }

    async fn retention(&mut self) {
        let now = self.service.clock.now();
        if self
            .last_retention
            .is_some_and(|last| now < last.saturating_add(RETENTION_EVERY))
        {
            return;
        }
        let cutoff = now.saturating_sub(self.retention);
        match bounded(
            self.service.limit,
            self.service.jobs.delete_finished_jobs(cutoff),
        )
        .await
        {
            Ok(deleted) => {
                self.last_retention = Some(now);
                self.report.deleted = deleted;
                if deleted > 0 {
                    tracing::info!(
                        deleted,
                        "finished import jobs past jobs.retentionDays deleted"
                    );
                }
            }
            Err(err) => tracing::warn!(error = %err, "deleting old import jobs failed"),
        }
    }

    /// Writes `record` (the lease holder's write); a failure is reported and retried next round.
    async fn write(&mut self, record: &JobRecord) -> bool {
        match self.service.put(record).await {
            Ok(()) => true,
            Err(err) => {
                tracing::warn!(job_id = %record.id, error = %err, "storing an import job failed; retrying later");
                self.report
                    .failures
                    .push((record.id.clone(), err.to_string()));
                false
            }
        }
    }

    async fn advance_job(&mut self, record: &mut JobRecord) -> Advance {
        match self.service.poll_auth0(&record.id).await {
            Ok(polled) => {
                self.report.polled.push((record.id.clone(), polled.status));
                if polled.status == record.status && polled.summary == record.summary {
                    return Advance {
                        changed: false,
                        retry_after: None,
                    };
                }
                let mut updated = record.clone();
                updated.status = polled.status;
                updated.summary = polled.summary.or(updated.summary);
                updated.errors = polled.errors.or(updated.errors);
                updated.updated_at = self.service.clock.now();
                if updated.status == JobStatus::Expired {
                    tracing::warn!(job_id = %record.id, "Auth0 no longer knows an unfinished import job: expired");
                }
                if self.write(&updated).await {
                    *record = updated;
                    Advance {
                        changed: true,
                        retry_after: None,
                    }
                } else {
                    Advance {
                        changed: false,
                        retry_after: None,
                    }
                }
            }
            Err(failure) => self.failed_poll(&record.id, failure),
        }
    }

    fn failed_poll(&mut self, id: &str, failure: Failure) -> Advance {
        let (why, retry_after) = match failure {
            Failure::RetryAfter(after) => (
                format!("Auth0 asked to wait {} s", after.as_secs()),
                Some(after),
            ),
            Failure::NotFound => ("not found".to_owned(), None),
            Failure::Refused(why) | Failure::Transient(why) => (why, None),
        };
        tracing::warn!(job_id = id, error = %why, "polling an import job failed; it stays tracked");
        self.report.failures.push((id.to_owned(), why));
        Advance {
            changed: false,
            retry_after,
        }
    }

    /// Renews this daemon's lease of `id` before one more Auth0 call of a batch, so a round over
    /// many parts never outlives it; `false` (stop here) when another daemon has it now.
    async fn keep_lease(&mut self, id: &str) -> bool {
        let key = format!("job:{id}");
        let taken = bounded(
            self.service.limit,
            self.service
                .leases
                .try_lease(&key, &self.holder, self.lease_ttl),
        )
        .await;
        match taken {
            Ok(true) => true,
            Ok(false) => {
                tracing::warn!(
                    job_id = id,
                    "another daemon took this batch's lease: leaving it"
                );
                false
            }
            Err(err) => {
                self.report.failures.push((id.to_owned(), err.to_string()));
                false
            }
        }
    }

    async fn advance_batch(&mut self, record: &mut JobRecord, active: &mut usize) -> Advance {
        let Some(mut detail) = BatchDetail::of(record) else {
            tracing::error!(batch_id = %record.id, "an import batch record is unreadable: marked failed");
            record.status = JobStatus::Failed;
            record.updated_at = self.service.clock.now();
            let changed = self.write(record).await;
            return Advance {
                changed,
                retry_after: None,
            };
        };
        let before = detail.clone();
        let mut retry_after = None;
        // Poll the parts Auth0 has.
        for index in 0..detail.parts.len() {
            let part = &detail.parts[index];
            let (Some(id), false) = (part.id.clone(), part.status.is_final()) else {
                continue;
            };
            if matches!(part.status, PartStatus::Queued | PartStatus::Sending) {
                continue;
            }
            let name = format!("{}/{}", record.id, part.part);
            if !self.keep_lease(&record.id).await {
                break;
            }
            match self.service.poll_auth0(&id).await {
                Ok(polled) => {
                    self.report.polled.push((name, polled.status));
                    let part = &mut detail.parts[index];
                    let status = PartStatus::from_job(polled.status);
                    if status.is_final() {
                        *active = active.saturating_sub(1);
                    }
                    part.status = status;
                    part.summary = polled.summary.or(part.summary.take());
                    part.errors = polled.errors.or(part.errors.take());
                }
                Err(failure) => {
                    let advance = self.failed_poll(&name, failure);
                    retry_after = retry_after.or(advance.retry_after);
                }
            }
        }
        // Send queued parts (and parts a crash left half-sent) within Auth0's limit.
        for index in 0..detail.parts.len() {
            if !matches!(
                detail.parts[index].status,
                PartStatus::Queued | PartStatus::Sending
            ) {
                continue;
            }
            if *active >= AUTH0_ACTIVE_JOBS || retry_after.is_some() {
                break;
            }
            let name = format!("{}/{}", record.id, detail.parts[index].part);
            let Some(users) = detail.parts[index].users.clone() else {
                detail.parts[index].status = PartStatus::Failed;
                detail.parts[index].status_details = Some("the part's users were lost".into());
                continue;
            };
            if !self.keep_lease(&record.id).await {
                break;
            }
            // The intent, durably, before the call.
            detail.parts[index].status = PartStatus::Sending;
            detail.parts[index].attempts += 1;
            if !self.store_detail(record, &detail).await {
                return Advance {
                    changed: false,
                    retry_after: None,
                };
            }
            match self
                .service
                .management
                .send(detail.options.request(users))
                .await
            {
                Ok(answer) => {
                    let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
                    let part = &mut detail.parts[index];
                    match body.get("id").and_then(Value::as_str) {
                        Some(id) => {
                            part.id = Some(id.to_owned());
                            part.status = parse_status(&body)
                                .map_or(PartStatus::Pending, PartStatus::from_job);
                            part.users = None;
                            *active += 1;
                            tracing::info!(batch_id = %record.id, part = part.part, job_id = id, "import batch part submitted");
                            self.report.submitted.push(name);
                        }
                        None => {
                            part.status = PartStatus::Queued;
                            self.report.requeued.push(name.clone());
                            self.report
                                .failures
                                .push((name, "Auth0's answer has no job id".into()));
                            break;
                        }
                    }
                }
                Err(err) => {
                    let part = &mut detail.parts[index];
                    match classify(&err) {
                        Failure::Refused(why) => {
                            tracing::warn!(batch_id = %record.id, part = part.part, error = %why, "Auth0 refused an import batch part");
                            part.status = PartStatus::Failed;
                            part.status_details = Some(why);
                            part.users = None;
                        }
                        Failure::RetryAfter(after) => {
                            tracing::info!(batch_id = %record.id, part = part.part, retry_after_seconds = after.as_secs(), "Auth0 is busy: import batch part queued again");
                            part.status = PartStatus::Queued;
                            retry_after = Some(after);
                            self.report.requeued.push(name);
                        }
                        Failure::NotFound | Failure::Transient(_) => {
                            tracing::warn!(batch_id = %record.id, part = part.part, error = %err, "sending an import batch part failed: queued again");
                            part.status = PartStatus::Queued;
                            self.report.failures.push((name.clone(), err.to_string()));
                            self.report.requeued.push(name);
                            retry_after = Some(self.poll_interval);
                        }
                    }
                }
            }
        }
        if detail == before {
            return Advance {
                changed: false,
                retry_after,
            };
        }
        let changed = self.store_detail(record, &detail).await;
        Advance {
            changed,
            retry_after,
        }
    }

    /// Writes the batch with `detail`, its status and summary derived from it.
    async fn store_detail(&mut self, record: &mut JobRecord, detail: &BatchDetail) -> bool {
        let mut updated = record.clone();
        updated.detail = match serde_json::to_value(detail) {
            Ok(value) => value,
            Err(_) => return false,
        };
        updated.status = detail.record_status();
        updated.summary = detail.summary();
        updated.updated_at = self.service.clock.now();
        if self.write(&updated).await {
            *record = updated;
            true
        } else {
            false
        }
    }
}

/// The jobs machinery as the routes see it (`Actors::jobs`).
#[derive(Clone)]
pub struct JobsHandle {
    pub service: JobService,
    pub actor: Addr<Jobs>,
}

impl JobsHandle {
    /// Submits an import and wakes the loop so a batch's first parts go out at once.
    pub async fn submit(
        &self,
        users: &[Value],
        options: ImportOptions,
    ) -> Result<Submitted, ImportError> {
        let submitted = self.service.submit(users, options).await?;
        self.actor.do_send(Wake);
        Ok(submitted)
    }

    pub async fn status(&self, id: &str) -> Result<Answer, ImportError> {
        let (answer, wake) = self.service.status(id).await?;
        if wake {
            self.actor.do_send(Wake);
        }
        Ok(answer)
    }

    pub async fn errors(&self, id: &str) -> Result<Answer, ImportError> {
        self.service.errors(id).await
    }

    /// Runs one round of the poll loop now and answers what it did (`None` once the loop has
    /// stopped): how tests drive the loop instead of sleeping.
    pub async fn poll_once(&self) -> Option<PollReport> {
        self.actor.send(PollOnce).await.ok()
    }

    pub async fn list(
        &self,
        limit: usize,
        before: Option<&JobCursor>,
    ) -> Result<Vec<Value>, ImportError> {
        self.service.list(limit, before).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(i: usize, pad: usize) -> Value {
        json!({"email": format!("user{i}@example.com"), "name": "x".repeat(pad)})
    }

    #[test]
    fn splits_at_user_boundaries_within_the_limit() {
        let users: Vec<Value> = (0..40).map(|i| user(i, 40_000)).collect();
        let parts = split_users(&users).expect("splits");
        assert!(parts.len() > 1);
        let mut back = Vec::new();
        for part in &parts {
            assert!(part.len() <= AUTH0_FILE_LIMIT, "{}", part.len());
            let users: Vec<Value> = serde_json::from_str(part).expect("a JSON array");
            back.extend(users);
        }
        assert_eq!(back, users, "every user once, in order");
        let counts = count_users(&users, &parts);
        assert_eq!(counts.iter().sum::<usize>(), 40);
        assert_eq!(counts.len(), parts.len());
        // Filled: no two neighbours would fit together.
        assert!(
            parts
                .windows(2)
                .all(|w| w[0].len() + w[1].len() > AUTH0_FILE_LIMIT)
        );
    }

    #[test]
    fn a_file_at_the_limit_is_one_part_and_one_byte_more_is_two() {
        // `[` + user + `]` of exactly the limit.
        let overhead = user(0, 0).to_string().len() + 2;
        let exact = vec![user(0, AUTH0_FILE_LIMIT - overhead)];
        assert_eq!(split_users(&exact).expect("fits").len(), 1);
        let users = vec![user(0, 100), user(1, AUTH0_FILE_LIMIT - overhead - 100)];
        assert_eq!(split_users(&users).expect("fits").len(), 2);
    }

    #[test]
    fn one_user_over_the_limit_is_refused_by_index() {
        let users = vec![user(0, 10), user(1, AUTH0_FILE_LIMIT)];
        match split_users(&users) {
            Err(ImportError::UserTooLarge { index, .. }) => assert_eq!(index, 1),
            _ => panic!("expected UserTooLarge"),
        }
        assert!(matches!(split_users(&[]), Err(ImportError::NoUsers)));
    }

    fn part(status: PartStatus) -> Part {
        Part {
            part: 1,
            status,
            id: None,
            users: None,
            count: 1,
            summary: Some(json!({"failed": 1, "updated": 0, "inserted": 2, "total": 3})),
            errors: None,
            status_details: None,
            attempts: 0,
        }
    }

    #[test]
    fn a_batch_status_follows_its_parts() {
        let options = ImportOptions {
            connection: "db".into(),
            connection_id: "con_x".into(),
            upsert: None,
            external_id: None,
            send_completion_email: None,
        };
        let batch = |statuses: &[PartStatus]| BatchDetail {
            options: options.clone(),
            parts: statuses.iter().map(|s| part(*s)).collect(),
        };
        use PartStatus::*;
        assert_eq!(batch(&[Queued, Sending]).status(), "pending");
        assert_eq!(batch(&[Pending, Queued]).status(), "processing");
        assert_eq!(batch(&[Completed, Processing]).status(), "processing");
        assert_eq!(batch(&[Completed, Completed]).status(), "completed");
        assert_eq!(batch(&[Completed, Expired]).status(), "failed");
        assert_eq!(batch(&[Failed, Queued]).status(), "failed");
        assert_eq!(batch(&[Failed, Queued]).record_status(), JobStatus::Pending);
        assert_eq!(
            batch(&[Failed, Completed]).record_status(),
            JobStatus::Failed
        );
        assert_eq!(
            batch(&[Completed, Completed]).summary(),
            Some(json!({"failed": 2, "updated": 0, "inserted": 4, "total": 6}))
        );
    }

    #[test]
    fn ids_and_times_look_like_auth0s() {
        let id = new_id("batch_");
        assert_eq!(id.len(), 22);
        assert!(id[6..].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(
            format_time(Timestamp::from_millis(1_674_668_896_543)),
            "2023-01-25T17:48:16.543Z"
        );
    }
}
