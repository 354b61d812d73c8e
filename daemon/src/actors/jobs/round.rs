//! One polling round: every unfinished record whose time has come is leased, re-read, polled at
//! Auth0 or has its queued parts sent, and written back with compare-and-swap; retention runs at
//! most hourly. Rounds never overlap (they take the loop's state for their duration), and they
//! run as futures the actor spawns, never inside its handlers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::model::{
    AUTH0_ACTIVE_JOBS, BatchDetail, JobFinished, PartStatus, parse_status, status_name,
};
use super::service::{Failure, JobService, classify};
use crate::store::{
    JobCas, JobKind, JobPart, JobRecord, JobStatus, LeaseClaim, Timestamp, bounded,
};

/// How often finished records past `jobs.retentionDays` are looked for.
const RETENTION_EVERY: Duration = Duration::from_secs(3_600);

/// Called once per job or batch when it reaches `completed`, `failed` or `expired` (the plugins'
/// `on_job_finished`). Runs on the jobs arbiter: it must hand the event off, never block.
pub type JobFinishedHook = Arc<dyn Fn(JobFinished) + Send + Sync>;

/// What one round did.
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
    /// Records another daemon wrote since this one read them (a compare-and-swap conflict):
    /// left to it.
    pub written_elsewhere: Vec<String>,
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

/// What the loop remembers between rounds.
#[derive(Default)]
pub(super) struct LoopState {
    schedule: HashMap<String, Due>,
    last_retention: Option<Timestamp>,
}

/// The settings of the loop.
#[derive(Clone)]
pub(super) struct Settings {
    pub holder: String,
    pub poll_interval: Duration,
    pub max_interval: Duration,
    pub lease_ttl: Duration,
    pub retention: Duration,
}

/// Runs rounds; cheap to clone (what the actor spawns).
#[derive(Clone)]
pub(super) struct Runner {
    pub service: JobService,
    pub settings: Settings,
    pub state: Arc<tokio::sync::Mutex<LoopState>>,
    pub gauge: prometheus::IntGaugeVec,
    pub hook: Option<JobFinishedHook>,
}

impl Runner {
    /// One round (`wake`: every record due now); answers what it did and when the next round
    /// is worth running.
    pub async fn run(self, wake: bool) -> (PollReport, Duration) {
        let mut state = self.state.lock().await;
        if wake {
            state.schedule.clear();
        }
        let round = Round {
            service: self.service.clone(),
            settings: self.settings.clone(),
            schedule: std::mem::take(&mut state.schedule),
            last_retention: state.last_retention,
            report: PollReport::default(),
            finished: Vec::new(),
            counts: HashMap::new(),
        };
        let round = round.run().await;
        state.schedule = round.schedule;
        state.last_retention = round.last_retention;
        for status in [JobStatus::Pending, JobStatus::Processing] {
            let count = round.counts.get(&status).copied().unwrap_or(0);
            self.gauge
                .with_label_values(&[status_name(status)])
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        for record in &round.finished {
            self.finished(record);
        }
        let next = self.next_tick(&state.schedule);
        (round.report, next)
    }

    /// When the timer's next round is worth running: at the earliest record's turn, within
    /// `jobs.pollIntervalMs`..=`jobs.maxPollIntervalMs`; with nothing unfinished, the longest wait
    /// (a submit here wakes the loop at once; another daemon's jobs are polled by that daemon, and
    /// taken over within the wait if it dies).
    fn next_tick(&self, schedule: &HashMap<String, Due>) -> Duration {
        let now = self.service.clock.now().as_millis();
        schedule
            .values()
            .map(|due| Duration::from_millis(u64::try_from(due.at.as_millis() - now).unwrap_or(0)))
            .min()
            .unwrap_or(self.settings.max_interval)
            .clamp(self.settings.poll_interval, self.settings.max_interval)
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
}

/// One round's working state, moved out of the loop's state for the round's duration.
struct Round {
    service: JobService,
    settings: Settings,
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

impl Advance {
    const NOTHING: Self = Self {
        changed: false,
        retry_after: None,
    };
}

/// The outcome of a record write.
#[derive(PartialEq)]
enum Wrote {
    Yes,
    /// Not written (a store failure); retried next round.
    No,
    /// Another daemon wrote it since this one read it: leave it.
    Lost,
}

impl Round {
    async fn run(mut self) -> Self {
        let service = self.service.clone();
        let records = match bounded(service.limit, service.jobs.unfinished_jobs()).await {
            Ok(records) => records,
            Err(err) => {
                tracing::warn!(error = %err, "reading the unfinished import jobs failed");
                self.report.failures.push((String::new(), err.to_string()));
                return self;
            }
        };
        self.report.unfinished = records.len();
        self.schedule
            .retain(|id, _| records.iter().any(|r| &r.id == id));
        // What Auth0 runs for this store: unfinished whole jobs and sent batch parts.
        let mut active = records.iter().map(active_parts).sum::<usize>();
        for listed in records {
            let now = service.clock.now();
            let due = self.schedule.get(&listed.id).copied();
            if due.is_some_and(|d| d.at > now) {
                self.report.waiting += 1;
                *self.counts.entry(listed.status).or_insert(0) += 1;
                continue;
            }
            let interval = due.map_or(self.settings.poll_interval, |d| d.interval);
            let key = format!("job:{}", listed.id);
            let status = listed.status;
            match bounded(
                service.limit,
                service.leases.try_lease(
                    LeaseClaim::new(&key, &self.settings.holder),
                    self.settings.lease_ttl,
                ),
            )
            .await
            {
                Ok(true) if due.is_some_and(|d| d.held) => {}
                Ok(true) => tracing::info!(
                    job_id = %listed.id,
                    holder = %self.settings.holder,
                    "import job lease taken: this daemon polls it"
                ),
                Ok(false) => {
                    // Another daemon polls it: look again less and less often, in case it dies.
                    self.report.leased_elsewhere.push(listed.id.clone());
                    let interval = interval.saturating_mul(2).min(self.settings.max_interval);
                    self.schedule.insert(
                        listed.id.clone(),
                        Due::after(now, interval, interval, false),
                    );
                    *self.counts.entry(status).or_insert(0) += 1;
                    continue;
                }
                Err(err) => {
                    self.report
                        .failures
                        .push((listed.id.clone(), err.to_string()));
                    self.schedule.insert(
                        listed.id.clone(),
                        Due::after(now, interval, interval, false),
                    );
                    *self.counts.entry(status).or_insert(0) += 1;
                    continue;
                }
            }
            // The lease is ours: re-read, since the listing may predate another daemon's last
            // write (it held the lease until a moment ago).
            let mut record = match service.get(&listed.id).await {
                Ok(Some(record)) => record,
                Ok(None) => {
                    self.schedule.remove(&listed.id);
                    continue;
                }
                Err(err) => {
                    self.report
                        .failures
                        .push((listed.id.clone(), err.to_string()));
                    self.schedule
                        .insert(listed.id.clone(), Due::after(now, interval, interval, true));
                    *self.counts.entry(status).or_insert(0) += 1;
                    continue;
                }
            };
            if record.status.is_final() {
                // Another daemon finished it since the listing.
                self.schedule.remove(&record.id);
                active = active.saturating_sub(active_parts(&listed));
                continue;
            }
            let before = active_parts(&record);
            active = active.saturating_sub(active_parts(&listed)) + before;
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
                    service
                        .leases
                        .release_lease(LeaseClaim::new(&key, &self.settings.holder)),
                )
                .await;
                self.report
                    .finished
                    .push((record.id.clone(), record.status));
                self.finished.push(record);
                continue;
            }
            *self.counts.entry(record.status).or_insert(0) += 1;
            let next = if advance.changed {
                self.settings.poll_interval
            } else {
                interval.saturating_mul(2).min(self.settings.max_interval)
            };
            let wait = advance.retry_after.map_or(next, |r| r.max(next));
            self.schedule.insert(
                record.id.clone(),
                Due::after(service.clock.now(), wait, next, true),
            );
        }
        self.retention().await;
        self
    }

    async fn retention(&mut self) {
        let now = self.service.clock.now();
        if self
            .last_retention
            .is_some_and(|last| now < last.saturating_add(RETENTION_EVERY))
        {
            return;
        }
        let cutoff = now.saturating_sub(self.settings.retention);
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

    /// Writes `updated` over `record` (compare-and-swap on the revision read): on success
    /// `record` becomes the stored copy. Another daemon's newer write wins: nothing is
    /// overwritten, and this round leaves the record.
    async fn write(&mut self, record: &mut JobRecord, updated: JobRecord) -> Wrote {
        match self.service.replace(&updated).await {
            Ok(JobCas::Written(stored)) => {
                *record = *stored;
                Wrote::Yes
            }
            Ok(JobCas::Conflict(current)) => {
                tracing::warn!(
                    job_id = %record.id,
                    revision = updated.revision,
                    stored_revision = current.revision,
                    "another daemon wrote this import job since this one read it: left to it"
                );
                self.report.written_elsewhere.push(record.id.clone());
                Wrote::Lost
            }
            Ok(JobCas::Gone) => {
                self.report.written_elsewhere.push(record.id.clone());
                Wrote::Lost
            }
            Err(err) => {
                tracing::warn!(job_id = %record.id, error = %err, "storing an import job failed; retrying later");
                self.report
                    .failures
                    .push((record.id.clone(), err.to_string()));
                Wrote::No
            }
        }
    }

    async fn advance_job(&mut self, record: &mut JobRecord) -> Advance {
        match self.service.poll_auth0(&record.id).await {
            Ok(polled) => {
                self.report.polled.push((record.id.clone(), polled.status));
                if polled.status == record.status && polled.summary == record.summary {
                    return Advance::NOTHING;
                }
                let mut updated = record.clone();
                updated.status = polled.status;
                updated.summary = polled.summary.or(updated.summary);
                updated.errors = polled.errors.or(updated.errors);
                updated.updated_at = self.service.clock.now();
                if updated.status == JobStatus::Expired {
                    tracing::warn!(job_id = %record.id, "Auth0 no longer knows an unfinished import job: expired");
                }
                Advance {
                    changed: self.write(record, updated).await == Wrote::Yes,
                    retry_after: None,
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
            self.service.leases.try_lease(
                LeaseClaim::new(&key, &self.settings.holder),
                self.settings.lease_ttl,
            ),
        )
        .await;
        match taken {
            Ok(true) => true,
            Ok(false) => {
                tracing::warn!(
                    job_id = id,
                    "another daemon took this batch's lease: leaving it"
                );
                self.report.leased_elsewhere.push(id.to_owned());
                false
            }
            Err(err) => {
                self.report.failures.push((id.to_owned(), err.to_string()));
                false
            }
        }
    }

    /// The users of part `index`: its part record, or the users an older record kept inline.
    async fn part_users(
        &mut self,
        record: &JobRecord,
        detail: &BatchDetail,
        index: usize,
    ) -> Result<Option<Vec<u8>>, ()> {
        let part = &detail.parts[index];
        if let Some(users) = &part.legacy_users {
            return Ok(Some(users.clone().into_bytes()));
        }
        match bounded(
            self.service.limit,
            self.service
                .jobs
                .get_job_part(JobPart::new(&record.id, part.number())),
        )
        .await
        {
            Ok(users) => Ok(users),
            Err(err) => {
                let name = format!("{}/{}", record.id, part.part);
                self.report.failures.push((name, err.to_string()));
                Err(())
            }
        }
    }

    /// Deletes a part's users (Auth0 has them, or refused them for good); a failure only
    /// leaves them to retention.
    async fn drop_part_users(&mut self, id: &str, part: u32) {
        if let Err(err) = bounded(
            self.service.limit,
            self.service.jobs.delete_job_part(JobPart::new(id, part)),
        )
        .await
        {
            tracing::warn!(batch_id = id, part, error = %err, "deleting a sent import part's users failed: retention deletes them with the batch");
        }
    }

    async fn advance_batch(&mut self, record: &mut JobRecord, active: &mut usize) -> Advance {
        let Some(mut detail) = BatchDetail::of(record) else {
            tracing::error!(batch_id = %record.id, "an import batch record is unreadable: marked failed");
            let mut updated = record.clone();
            updated.status = JobStatus::Failed;
            updated.updated_at = self.service.clock.now();
            return Advance {
                changed: self.write(record, updated).await == Wrote::Yes,
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
                return Advance::NOTHING;
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
            let number = detail.parts[index].number();
            if !self.keep_lease(&record.id).await {
                return Advance::NOTHING;
            }
            let Ok(users) = self.part_users(record, &detail, index).await else {
                retry_after = Some(self.settings.poll_interval);
                break;
            };
            let Some(users) = users else {
                tracing::error!(batch_id = %record.id, part = number, "an import batch part's users are not stored: the part is failed");
                let part = &mut detail.parts[index];
                part.status = PartStatus::Failed;
                part.status_details = Some("the part's users were lost".into());
                continue;
            };
            // The intent, durably, before the call. Compare-and-swap: a daemon that stalled past
            // its lease finds another daemon's write here and sends nothing.
            detail.parts[index].status = PartStatus::Sending;
            detail.parts[index].attempts += 1;
            match self.store_detail(record, &detail).await {
                Wrote::Yes => {}
                Wrote::No | Wrote::Lost => return Advance::NOTHING,
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
                            part.legacy_users = None;
                            *active += 1;
                            tracing::info!(batch_id = %record.id, part = part.part, job_id = id, "import batch part submitted");
                            self.report.submitted.push(name);
                            // Auth0 has the users: record that, then drop them.
                            match self.store_detail(record, &detail).await {
                                Wrote::Yes => self.drop_part_users(&record.id, number).await,
                                Wrote::No | Wrote::Lost => return Advance::NOTHING,
                            }
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
                            part.legacy_users = None;
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
                            retry_after = Some(self.settings.poll_interval);
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
        let wrote = self.store_detail(record, &detail).await;
        if wrote == Wrote::Yes && record.status.is_final() {
            // What is left of the users (parts refused or lost) goes with the batch's end.
            for part in detail.parts.iter().filter(|p| p.id.is_none()) {
                self.drop_part_users(&record.id, part.number()).await;
            }
        }
        Advance {
            changed: wrote == Wrote::Yes,
            retry_after,
        }
    }

    /// Writes the batch with `detail`, its status and summary derived from it.
    async fn store_detail(&mut self, record: &mut JobRecord, detail: &BatchDetail) -> Wrote {
        let mut updated = record.clone();
        updated.detail = match serde_json::to_value(detail) {
            Ok(value) => value,
            Err(_) => return Wrote::No,
        };
        updated.status = detail.record_status();
        updated.summary = detail.summary();
        updated.updated_at = self.service.clock.now();
        self.write(record, updated).await
    }
}

/// How many Auth0 jobs a record has running: 1 for an unfinished job, a batch's sent parts.
fn active_parts(record: &JobRecord) -> usize {
    match record.kind {
        JobKind::Job => usize::from(!record.status.is_final()),
        JobKind::Batch => BatchDetail::of(record).map_or(0, |d| {
            d.parts
                .iter()
                .filter(|p| matches!(p.status, PartStatus::Pending | PartStatus::Processing))
                .count()
        }),
    }
}
