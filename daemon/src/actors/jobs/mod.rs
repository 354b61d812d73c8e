//! Bulk user imports tracked to completion in the background (SPEC §6, DESIGN.md "Jobs").
//!
//! | file | part | owns | runs on |
//! |---|---|---|---|
//! | `model.rs` | [`ImportOptions`], [`BatchDetail`], [`Part`], [`split_users`] | what a record holds, how users are cut into Auth0 files | |
//! | `service.rs` | [`JobService`] | submitting an import (sizes, split, the part records, the durable record, the single Auth0 job), the status, errors and list answers (records: `http/import.rs` shapes the JSON) | the HTTP workers (a cloned handle) |
//! | `round.rs` | [`PollReport`] and the round | one polling round: leases, re-reads, per-job backoff, batch parts sent within Auth0's 2-active-jobs limit, compare-and-swap writes, retention, the finished event | a future the actor spawns |
//! | `actor.rs` | [`Jobs`] | the timer, wake-ups, [`PollOnce`], the heartbeat | its own arbiter |
//! | `mod.rs` | [`JobsHandle`] | all of it, as the routes see it (`Actors::jobs`) | |
//!
//! Every Auth0 call goes through the management service (its token cache, pause and retries).
//!
//! **Records.** A job submitted whole is a [`JobRecord`](crate::store::JobRecord) of kind `job`
//! under Auth0's id; a larger import is one record of kind `batch` (`batch_…`) whose `detail` is a
//! [`BatchDetail`]: the options and one [`Part`] per slice of at most [`AUTH0_FILE_LIMIT`] bytes
//! (ids, statuses, summaries). Each part's users (the JSON array Auth0 gets, each user's bytes as
//! they came in the request) are a part record of their own, written once at submit and deleted
//! once Auth0 accepted (or refused) them, so listings and polls never read them. Only the daemon
//! holding a record's lease writes it; the lease is followed by a re-read, and every write is a
//! compare-and-swap on the record's `revision`, so a daemon that stalled past its lease finds
//! the newer record, writes nothing and sends nothing.
//!
//! **Memory.** The request body is read once; the users are parsed once into borrowed slices
//! of it (`serde_json::value::RawValue`, never a `Value` tree); each part's file is built, written
//! and dropped before the next; the body is dropped when the submit returns. A round holds one
//! part's users at a time.
//!
//! **A part's life.** `queued` → `sending` (written durably *before* the POST: the intent) →
//! Auth0's `pending` / `processing` → `completed`, `failed` or `expired`. A part found `sending`
//! (a crash or a failed call between the intent and Auth0's answer) is sent again: Auth0 then
//! reports the users it already imported as `DUPLICATED_USER`, or updates them with `upsert`. An
//! Auth0 429 (its 2-active-jobs limit, a rate limit), a 5xx, a 408 or a timeout puts the part
//! back to `queued`.
//!
//! **Readiness.** The actor's handlers spawn rounds and return: a slow Auth0 never holds its
//! mailbox. It beats a [`Heartbeat`] every second, which `/-/ready` reads (no message sent).
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

mod actor;
mod model;
mod round;
mod service;

use serde_json::value::RawValue;

pub use crate::actors::Heartbeat;
use crate::store::{JobCursor, JobRecord};
pub use actor::{Jobs, PollOnce, Wake};
pub use model::{
    AUTH0_ACTIVE_JOBS, AUTH0_FILE_LIMIT, BatchDetail, ImportError, ImportOptions, JobFinished,
    Part, PartStatus, format_time, part_file, split_users, status_name,
};
pub use round::{JobFinishedHook, PollReport};
pub use service::{Answer, JobService, Submitted};

/// The jobs machinery as the routes see it (`Actors::jobs`).
#[derive(Clone)]
pub struct JobsHandle {
    pub service: JobService,
    pub actor: actix::Addr<Jobs>,
    /// Beaten by the actor every second: what `/-/ready` reads.
    pub heartbeat: Heartbeat,
}

impl JobsHandle {
    /// Submits an import and wakes the loop so a batch's first parts go out at once.
    pub async fn submit(
        &self,
        users: &[&RawValue],
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

    /// Runs one round of the poll loop now (after the running one, if any) and answers what it
    /// did (`None` once the loop has stopped): how tests drive the loop instead of sleeping.
    pub async fn poll_once(&self) -> Option<PollReport> {
        self.actor.send(PollOnce).await.ok()
    }

    pub async fn list(
        &self,
        limit: usize,
        before: Option<&JobCursor>,
    ) -> Result<Vec<JobRecord>, ImportError> {
        self.service.list(limit, before).await
    }
}
