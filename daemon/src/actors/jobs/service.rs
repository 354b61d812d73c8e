//! [`JobService`]: what the routes do on the HTTP workers (submit an import, a status, the
//! errors, the listing), and the Auth0 and store calls the polling round shares with them.

use std::sync::Arc;
use std::time::Duration;

use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::model::{
    BatchDetail, ImportError, ImportOptions, Part, new_id, parse_status, part_file, split_users,
};
use crate::actors::management::ManagementService;
use crate::auth0::management::{
    ManagementAnswer, ManagementBody, ManagementError, ManagementRequest, encode_segment,
};
use crate::clock::Clock;
use crate::store::{
    JobCas, JobCursor, JobKind, JobPart, JobRecord, JobStatus, JobStore, LeaseStore, StoreError,
    bounded,
};

/// What an import answered: Auth0's 202 for a whole job, the batch record for a split one
/// (`http/import.rs` shows it).
pub enum Submitted {
    Job(ManagementAnswer),
    Batch(Box<JobRecord>),
}

/// What a status or errors request answers (`http/import.rs` shapes the JSON).
pub enum Answer {
    /// Auth0's answer, passed through.
    Auth0(ManagementAnswer),
    /// A record of this store: a batch, or a job Auth0 forgot.
    Record(Box<JobRecord>),
    /// The errors of a batch's finished parts.
    BatchErrors(Vec<Part>),
    /// Stored errors of a job Auth0 forgot.
    Errors(Value),
    /// 204: no errors.
    NoContent,
}

/// How an Auth0 failure is treated by the poll loop.
pub(super) enum Failure {
    /// Auth0 answered 404: it does not know the job.
    NotFound,
    /// Busy or rate limited: retry after this long.
    RetryAfter(Duration),
    /// A 4xx refusal of the request itself: not worth sending again.
    Refused(String),
    /// Anything else (5xx, 408, network, timeout, configuration): retry with backoff.
    Transient(String),
}

pub(super) fn classify(err: &ManagementError) -> Failure {
    match err {
        ManagementError::Refused(failure) if failure.status == reqwest::StatusCode::NOT_FOUND => {
            Failure::NotFound
        }
        ManagementError::RateLimited { retry_after, .. } => Failure::RetryAfter(*retry_after),
        ManagementError::Refused(_) => Failure::Refused(err.to_string()),
        _ => Failure::Transient(err.to_string()),
    }
}

/// What one poll of an Auth0 job found.
pub(super) struct Polled {
    pub status: JobStatus,
    pub summary: Option<Value>,
    pub errors: Option<Value>,
}

/// The part of the jobs machinery the routes use on the workers, and the poll loop's helpers.
/// Cheap to clone.
#[derive(Clone)]
pub struct JobService {
    /// The roles of the store this part needs: job records, and leases on them.
    pub(super) jobs: Arc<dyn JobStore>,
    pub(super) leases: Arc<dyn LeaseStore>,
    pub(super) limit: Duration,
    pub(super) management: ManagementService,
    pub(super) clock: Clock,
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

    pub(super) async fn get(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        bounded(self.limit, self.jobs.get_job(id)).await
    }

    /// Compare-and-swap write of a record this daemon holds the lease of.
    pub(super) async fn replace(&self, record: &JobRecord) -> Result<JobCas, StoreError> {
        bounded(self.limit, self.jobs.replace_job(record)).await
    }

    /// Submits an import: one Auth0 job when the users fit in one file (Auth0's 202 answered),
    /// else a durable batch the poll loop sends (the batch record answered).
    ///
    /// `users` are the users as they came (slices of the request body): each part's file is
    /// built once, written as its own part record, and dropped before the next is built, so an
    /// import costs its body and one part in memory.
    pub async fn submit(
        &self,
        users: &[&RawValue],
        options: ImportOptions,
    ) -> Result<Submitted, ImportError> {
        let ranges = split_users(users)?;
        let now = self.clock.now();
        let mut file = Vec::with_capacity(ranges.first().map_or(0, |r| {
            users[r.clone()]
                .iter()
                .map(|u| u.get().len() + 1)
                .sum::<usize>()
                + 1
        }));
        if ranges.len() == 1 {
            part_file(users, &mut file);
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
                revision: 0,
            };
            if let Err(err) = bounded(self.limit, self.jobs.put_job(&record)).await {
                tracing::error!(job_id = id, error = %err, "Auth0 accepted an import job that could not be recorded: it will not be tracked");
                return Err(err.into());
            }
            tracing::info!(job_id = id, connection = %options.connection, users = users.len(), "import job submitted");
            return Ok(Submitted::Job(answer));
        }
        let id = new_id("batch_");
        let mut parts = Vec::with_capacity(ranges.len());
        // The parts first, then the record that names them: a record never points at a part
        // that is not stored.
        for (index, range) in ranges.into_iter().enumerate() {
            let part = Part::queued(index + 1, range.len());
            part_file(&users[range], &mut file);
            let written = bounded(
                self.limit,
                self.jobs
                    .put_job_part(JobPart::new(&id, part.number()), &file),
            )
            .await;
            if let Err(err) = written {
                self.forget_parts(&id, &parts).await;
                return Err(err.into());
            }
            parts.push(part);
        }
        drop(file);
        let detail = BatchDetail { parts, options };
        let record = JobRecord {
            id,
            kind: JobKind::Batch,
            status: JobStatus::Pending,
            connection: detail.options.connection.clone(),
            created_at: now,
            updated_at: now,
            summary: None,
            errors: None,
            detail: serde_json::to_value(&detail)
                .map_err(|e| ImportError::InvalidAnswer(e.to_string()))?,
            revision: 0,
        };
        if let Err(err) = bounded(self.limit, self.jobs.put_job(&record)).await {
            self.forget_parts(&record.id, &detail.parts).await;
            return Err(err.into());
        }
        tracing::info!(batch_id = %record.id, connection = %record.connection, users = users.len(), parts = detail.parts.len(), "import batch recorded");
        Ok(Submitted::Batch(Box::new(record)))
    }

    /// Deletes the part records of a batch that will not be recorded (best effort: the store
    /// just failed).
    async fn forget_parts(&self, id: &str, parts: &[Part]) {
        for part in parts {
            let _ = bounded(
                self.limit,
                self.jobs.delete_job_part(JobPart::new(id, part.number())),
            )
            .await;
        }
    }

    /// `GET /users/import/status/{id}` (SPEC §6). `true` with it: the loop should look at the
    /// record now (Auth0 forgot a job the record says is unfinished).
    pub async fn status(&self, id: &str) -> Result<(Answer, bool), ImportError> {
        if id.starts_with("batch_") {
            let record = self
                .get(id)
                .await?
                .ok_or_else(|| ImportError::UnknownBatch(id.to_owned()))?;
            return Ok((Answer::Record(Box::new(record)), false));
        }
        let request = get_request(format!("jobs/{}", encode_segment(id)));
        match self.management.send(request).await {
            Ok(answer) => Ok((Answer::Auth0(answer), false)),
            Err(err) if matches!(classify(&err), Failure::NotFound) => match self.get(id).await? {
                Some(record) if record.status.is_final() => {
                    Ok((Answer::Record(Box::new(record)), false))
                }
                Some(mut record) => {
                    // Auth0 forgot a job it never finished: `expired`. The poll loop, which owns
                    // the record, stores that on its next look (the caller wakes it).
                    record.status = JobStatus::Expired;
                    Ok((Answer::Record(Box::new(record)), true))
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
            return Ok(Answer::BatchErrors(parts));
        }
        let request = get_request(format!("jobs/{}/errors", encode_segment(id)));
        match self.management.send(request).await {
            Ok(answer) => Ok(Answer::Auth0(answer)),
            Err(err) if matches!(classify(&err), Failure::NotFound) => match self.get(id).await? {
                Some(record) => Ok(match record.errors {
                    Some(errors) => Answer::Errors(errors),
                    None => Answer::NoContent,
                }),
                None => Err(err.into()),
            },
            Err(err) => Err(err.into()),
        }
    }

    /// `GET /users/import/jobs`: newest first (small records: no part payload is read).
    pub async fn list(
        &self,
        limit: usize,
        before: Option<&JobCursor>,
    ) -> Result<Vec<JobRecord>, ImportError> {
        Ok(bounded(self.limit, self.jobs.list_jobs(limit, before)).await?)
    }

    /// Polls one Auth0 job: its new status, summary, and errors once finished with failures.
    pub(super) async fn poll_auth0(&self, id: &str) -> Result<Polled, Failure> {
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
