//! [`RedisStore`]: the store shared by several daemons behind a load balancer (SPEC §7), on a
//! standalone Redis (one host, or several tried in order) or the master a sentinel names.
//!
//! Layout, every key under the scope's prefix `auth0-client:<length of scope>:<SESSION_SCOPE>:`
//! (the length makes the prefix unambiguous, so two scopes never share a key whatever their
//! names; an ACL can confine a daemon with `~auth0-client:4:shop:*`):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `s:<session key>` | hash | `d` the [`Session`] as JSON, `r` revision, `e` expiry, `u` sub, `a` alias hashes; through [`super::Sealed`] (as the daemon uses it) the key is the SHA-256 of the session id and the record's tokens and claims are sealed |
//! | `t:<token hash>` | sorted set | session ids the access token opened, scored by their expiry (one token may open several sessions) |
//! | `u:<sub>` | sorted set | session ids of a user, scored by expiry |
//! | `x:<Auth0 session hash>` | sorted set | session ids whose login carried that Auth0 session (`x` in the session hash), scored by expiry (back-channel logout) |
//! | `expiry` | sorted set | every session id, scored by expiry: the live count and the sweep |
//! | `active` | sorted set | each sub, scored by the latest expiry of its sessions (`GET /users/active`) |
//! | `st:<state>` | hash | `d` the [`StateRecord`] as JSON, `e` expiry |
//! | `l:<lease key>` | string | the holder, with `PX` the lease's ttl (Redis's clock judges it) |
//! | `j:<job id>` | hash | `d` the [`JobRecord`] as JSON, `m` its member in `jobs`, `r` its revision |
//! | `jp:<job id>` | hash | a batch's part payloads by part number, sealed by [`Sealed`](super::sealed::Sealed) |
//! | `jobs` | sorted set | `created_at` (16 hex digits, order-preserving) ‖ id, all scored 0: listed newest first by `ZREVRANGEBYLEX` |
//! | `jobs:open` / `jobs:done` | set / sorted set | ids of unfinished jobs / of final ones scored by `updated_at` |
//!
//! Rules (SPEC §7, DESIGN.md "Store"):
//! - Every record but a lease keeps its own expiry, checked against the store's [`Clock`]; Redis's own TTLs
//!   (`PEXPIREAT` the record's expiry plus [`GC_MARGIN`]) only collect garbage, so a record past
//!   its expiry is never returned even before Redis drops it, and tests that move the clock see it.
//! - A session and its index entries change together in one Lua script (`scripts.rs`); writes
//!   are compare-and-swap on `revision`. Index entries of a session that expired are pruned as
//!   the indexes are written and by [`Store::sweep`]; reads skip them by their score.
//! - No token is in a key: access tokens are named by their [`TokenHash`].
//! - Every hot read is one round trip (`GET`-like command or one script).
//! - Durability is Redis's own configuration (`appendonly`, `appendfsync`, replication): a write
//!   returns once Redis acknowledged it, and [`Store::flush`] has nothing to wait for.
//!
//! The connection (failover, sentinel, TLS, timeouts, reconnection) is [`link`]'s.

mod link;
mod scripts;
#[cfg(any(test, feature = "test-hooks"))]
pub mod testing;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use self::link::{Call, Link, LinkOptions, Retry};
use self::scripts::*;
use super::{
    Auth0SessionHash, CasOutcome, JobCas, JobCursor, JobPart, JobRecord, JobStore, LeaseClaim,
    LeaseStore, Session, SessionId, SessionStore, StateRecord, StateStore, Store, StoreError,
    StoreFuture, SweepReport, Timestamp, TokenHash,
};
use crate::clock::Clock;
use crate::config::{RedisMode, RedisSettings, Settings};

/// How long past a record's own expiry Redis keeps it (garbage collection only): longer than the
/// sweep interval, so the sweeper normally finds a record to tidy its indexes with, and than any
/// sane clock skew between the daemons and Redis.
pub const GC_MARGIN: Duration = Duration::from_secs(300);
/// Sessions one sweep script handles, so one call never holds Redis for long.
const SWEEP_BATCH: usize = 500;
/// The largest time used as a score: 2^52 ms (year 144 683), exact in Lua's and Redis's doubles.
const MAX_SCORE: i64 = 1 << 52;

/// How the store is opened (`sessions.redis`, `SESSION_SCOPE`, `sessions.timeoutMs`).
#[derive(Clone, Debug)]
pub struct RedisOptions {
    pub redis: RedisSettings,
    /// `SESSION_SCOPE`: the namespace of every key.
    pub scope: String,
    /// Bound on connecting and on each call (`sessions.timeoutMs`).
    pub timeout: Duration,
    /// What "now" is for expiry.
    pub clock: Clock,
}

impl RedisOptions {
    pub fn from_settings(settings: &Settings, clock: Clock) -> Self {
        Self {
            redis: settings.sessions.redis.clone(),
            scope: settings.session_scope.clone(),
            timeout: settings.sessions.timeout,
            clock,
        }
    }
}

/// The Redis store. Opening it does not wait for Redis: calls answer
/// [`StoreError::Unavailable`] until it answers, and the store reconnects by itself.
pub struct RedisStore {
    link: Link,
    /// `auth0-client:<len>:<scope>:`.
    prefix: String,
    clock: Clock,
}

impl RedisStore {
    /// Checks the settings, reads the CA file, and starts connecting in the background. Fails
    /// only when the settings themselves are unusable ([`StoreError::Invalid`]).
    pub fn open(options: RedisOptions) -> Result<Self, StoreError> {
        let redis = &options.redis;
        if redis.hosts.is_empty() {
            return Err(StoreError::Invalid(
                "sessions.redis.hosts (REDIS_HOSTS) is empty".into(),
            ));
        }
        let endpoints = redis
            .hosts
            .iter()
            .map(|host| parse_host(host))
            .collect::<Result<Vec<_>, _>>()?;
        let master_name = match redis.mode {
            RedisMode::Normal => None,
            RedisMode::Sentinel => Some(redis.master_name.clone().ok_or_else(|| {
                StoreError::Invalid(
                    "sentinel mode needs sessions.redis.masterName (REDIS_MASTER_NAME)".into(),
                )
            })?),
        };
        let tls = if redis.tls {
            Some(redis.tls_ca_cert.as_deref().map(read_ca).transpose()?)
        } else {
            None
        };
        let prefix = scope_prefix(&options.scope);
        let link = Link::start(LinkOptions {
            probe_key: format!("{prefix}probe"),
            endpoints,
            master_name,
            username: redis.username.clone(),
            password: redis.password.clone(),
            tls,
            timeout: options.timeout,
        })?;
        link.warm_up();
        Ok(Self {
            link,
            prefix,
            clock: options.clock,
        })
    }

    /// The prefix of every key of this store (for operators and tests).
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn key(&self, kind: &str, name: &str) -> String {
        format!("{}{kind}:{name}", self.prefix)
    }

    async fn read<T: redis::FromRedisValue>(
        &self,
        what: &'static str,
        call: Call<'_>,
    ) -> Result<T, StoreError> {
        self.link.run(what, Retry::Read, call).await
    }

    async fn write<T: redis::FromRedisValue>(
        &self,
        what: &'static str,
        call: Call<'_>,
    ) -> Result<T, StoreError> {
        self.link.run(what, Retry::Write, call).await
    }

    /// The live sessions among the records of an index (`t:<hash>` or `u:<sub>`).
    async fn sessions_in(&self, index: String) -> Result<Vec<Session>, StoreError> {
        let now = self.now();
        let mut invocation = SESSIONS_IN_INDEX.prepare_invoke();
        invocation
            .arg(&self.prefix)
            .arg(&index)
            .arg(score(now).to_string());
        let records: Vec<String> = self
            .read("sessions by index", Call::Script(&invocation))
            .await?;
        live_sessions(records, now)
    }

    /// The arguments every session-writing script starts with: prefix, margin, now.
    fn session_script<'s>(
        &self,
        script: &'s redis::Script,
        now: Timestamp,
    ) -> redis::ScriptInvocation<'s> {
        let mut invocation = script.prepare_invoke();
        invocation
            .arg(&self.prefix)
            .arg(GC_MARGIN.as_millis().to_string())
            .arg(score(now).to_string());
        invocation
    }

    /// What the scripts index a session by: its expiry (a score), its sub, and its alias hashes
    /// (space-separated; hex never contains a space).
    fn session_fields(session: &Session) -> (String, String, String) {
        let aliases = session
            .alias_hashes()
            .iter()
            .map(|h| h.as_str().to_owned())
            .collect::<Vec<_>>()
            .join(" ");
        (
            score(session.expires_at).to_string(),
            session.sub.clone(),
            aliases,
        )
    }

    async fn read_state(&self, state: &str) -> Result<Option<String>, StoreError> {
        let mut cmd = redis::cmd("HGET");
        cmd.arg(self.key("st", state)).arg("d");
        self.read("get state", Call::Cmd(&cmd)).await
    }
}

impl SessionStore for RedisStore {
    fn create_session<'a>(&'a self, session: &'a Session) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let data = encode("session", session)?;
            let (expires, sub, aliases) = Self::session_fields(session);
            let mut invocation = self.session_script(&CREATE_SESSION, self.now());
            invocation
                .arg(session.id.as_str())
                .arg(data)
                .arg(session.revision.to_string())
                .arg(expires)
                .arg(sub)
                .arg(aliases)
                .arg(auth0_session_field(session));
            let _: i64 = self
                .write("create session", Call::Script(&invocation))
                .await?;
            Ok(())
        })
    }

    fn get_session<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Session>> {
        Box::pin(async move {
            let now = self.now();
            let mut cmd = redis::cmd("HGET");
            cmd.arg(self.key("s", id.as_str())).arg("d");
            let record: Option<String> = self.read("get session", Call::Cmd(&cmd)).await?;
            live_session(record.as_deref(), now)
        })
    }

    /// Two small fields instead of the record: the read cache's check on a shared store.
    fn session_revision<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<u64>> {
        Box::pin(async move {
            let now = self.now();
            let mut cmd = redis::cmd("HMGET");
            cmd.arg(self.key("s", id.as_str())).arg("r").arg("e");
            let (revision, expires): (Option<u64>, Option<i64>) =
                self.read("session revision", Call::Cmd(&cmd)).await?;
            Ok(match (revision, expires) {
                (Some(revision), Some(expires)) if score(now) < expires => Some(revision),
                _ => None,
            })
        })
    }

    fn sessions_by_token<'a>(&'a self, hash: &'a TokenHash) -> StoreFuture<'a, Vec<Session>> {
        Box::pin(async move { self.sessions_in(format!("t:{}", hash.as_str())).await })
    }

    fn replace_session<'a>(&'a self, session: &'a Session) -> StoreFuture<'a, CasOutcome> {
        Box::pin(async move {
            let mut next = session.clone();
            next.revision = session.revision.wrapping_add(1);
            let data = encode("session", &next)?;
            let (expires, sub, aliases) = Self::session_fields(&next);
            let mut invocation = self.session_script(&REPLACE_SESSION, self.now());
            invocation
                .arg(session.id.as_str())
                .arg(session.revision.to_string())
                .arg(data)
                .arg(next.revision.to_string())
                .arg(expires)
                .arg(sub)
                .arg(aliases)
                .arg(auth0_session_field(&next));
            let answer: Vec<String> = self
                .write("replace session", Call::Script(&invocation))
                .await?;
            match answer.as_slice() {
                [status] if status == "written" => Ok(CasOutcome::Written(Box::new(next))),
                [status] if status == "gone" => Ok(CasOutcome::Gone),
                [status, stored] if status == "conflict" => {
                    Ok(CasOutcome::Conflict(Box::new(decode("session", stored)?)))
                }
                _ => Err(StoreError::Corrupt(format!(
                    "Redis answered a session replace with {answer:?}"
                ))),
            }
        })
    }

    fn delete_session<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Session>> {
        Box::pin(async move {
            let now = self.now();
            let mut invocation = self.session_script(&DELETE_SESSION, now);
            invocation.arg(id.as_str());
            let removed: Option<String> = self
                .write("delete session", Call::Script(&invocation))
                .await?;
            live_session(removed.as_deref(), now)
        })
    }

    fn sessions_of<'a>(&'a self, sub: &'a str) -> StoreFuture<'a, Vec<Session>> {
        Box::pin(async move { self.sessions_in(format!("u:{sub}")).await })
    }

    fn sessions_of_auth0_session<'a>(
        &'a self,
        hash: &'a Auth0SessionHash,
    ) -> StoreFuture<'a, Vec<Session>> {
        Box::pin(async move { self.sessions_in(format!("x:{}", hash.as_str())).await })
    }

    fn delete_sessions_of<'a>(&'a self, sub: &'a str) -> StoreFuture<'a, Vec<Session>> {
        Box::pin(async move {
            let now = self.now();
            let mut invocation = self.session_script(&DELETE_SESSIONS_OF, now);
            invocation.arg(sub);
            let removed: Vec<String> = self
                .write("delete sessions of a user", Call::Script(&invocation))
                .await?;
            live_sessions(removed, now)
        })
    }

    fn active_subs(&self) -> StoreFuture<'_, Vec<String>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("ZRANGEBYSCORE");
            cmd.arg(format!("{}active", self.prefix))
                .arg(format!("({}", score(self.now())))
                .arg("+inf");
            let mut subs: Vec<String> = self.read("active users", Call::Cmd(&cmd)).await?;
            subs.sort_unstable();
            Ok(subs)
        })
    }

    fn count_live_sessions(&self) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let mut cmd = redis::cmd("ZCOUNT");
            cmd.arg(format!("{}expiry", self.prefix))
                .arg(format!("({}", score(self.now())))
                .arg("+inf");
            self.read("count live sessions", Call::Cmd(&cmd)).await
        })
    }
}

impl StateStore for RedisStore {
    fn put_state<'a>(&'a self, record: &'a StateRecord) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let data = encode("state record", record)?;
            let mut invocation = PUT_STATE.prepare_invoke();
            invocation
                .key(self.key("st", &record.state))
                .arg(data)
                .arg(score(record.expires_at).to_string())
                .arg(score(self.now()).to_string())
                .arg(gc_at(record.expires_at).to_string());
            let stored: i64 = self.write("put state", Call::Script(&invocation)).await?;
            Ok(stored == 1)
        })
    }

    fn take_state<'a>(&'a self, state: &'a str) -> StoreFuture<'a, Option<StateRecord>> {
        Box::pin(async move {
            let now = self.now();
            let mut invocation = TAKE_STATE.prepare_invoke();
            invocation.key(self.key("st", state));
            let taken: Option<String> = self.write("take state", Call::Script(&invocation)).await?;
            live_state(taken, now)
        })
    }

    fn get_state<'a>(&'a self, state: &'a str) -> StoreFuture<'a, Option<StateRecord>> {
        Box::pin(async move {
            let now = self.now();
            live_state(self.read_state(state).await?, now)
        })
    }

    fn take_state_if<'a>(&'a self, record: &'a StateRecord) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let now = self.now();
            loop {
                // Read, compare as records (a record written by another version may differ in
                // its bytes), then delete exactly the bytes read: a concurrent take or
                // replacement makes the delete miss, and the loop reads again.
                let Some(stored) = self.read_state(&record.state).await? else {
                    return Ok(false);
                };
                let current: StateRecord = decode("state record", &stored)?;
                if current != *record || !current.is_live(now) {
                    return Ok(false);
                }
                let mut invocation = TAKE_STATE_IF.prepare_invoke();
                invocation.key(self.key("st", &record.state)).arg(&stored);
                let taken: i64 = self.write("take state", Call::Script(&invocation)).await?;
                if taken == 1 {
                    return Ok(true);
                }
            }
        })
    }
}

impl RedisStore {
    /// The arguments the job scripts take first: the prefix, the id, the record, its member in
    /// `jobs`, whether it is final, its score and its revision.
    fn job_args(
        &self,
        invocation: &mut redis::ScriptInvocation<'_>,
        job: &JobRecord,
    ) -> Result<(), StoreError> {
        invocation
            .arg(&self.prefix)
            .arg(&job.id)
            .arg(encode("job record", job)?)
            .arg(job_member(job.created_at, &job.id))
            .arg(if job.status.is_final() { "1" } else { "0" })
            .arg(score(job.updated_at).to_string())
            .arg(job.revision.to_string());
        Ok(())
    }
}

impl JobStore for RedisStore {
    fn put_job<'a>(&'a self, job: &'a JobRecord) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut invocation = PUT_JOB.prepare_invoke();
            self.job_args(&mut invocation, job)?;
            let _: i64 = self.write("put job", Call::Script(&invocation)).await?;
            Ok(())
        })
    }

    fn replace_job<'a>(&'a self, job: &'a JobRecord) -> StoreFuture<'a, JobCas> {
        Box::pin(async move {
            let mut next = job.clone();
            next.revision = job.revision.wrapping_add(1);
            let mut invocation = REPLACE_JOB.prepare_invoke();
            self.job_args(&mut invocation, &next)?;
            invocation.arg(job.revision.to_string());
            let (code, current): (i64, Option<String>) =
                self.write("replace job", Call::Script(&invocation)).await?;
            match (code, current) {
                (2, _) => Ok(JobCas::Written(Box::new(next))),
                (1, Some(current)) => {
                    Ok(JobCas::Conflict(Box::new(decode("job record", &current)?)))
                }
                _ => Ok(JobCas::Gone),
            }
        })
    }

    fn put_job_part<'a>(&'a self, part: JobPart<'a>, users: &'a [u8]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut cmd = redis::cmd("HSET");
            cmd.arg(self.key("jp", part.job_id))
                .arg(part.number)
                .arg(users);
            let _: i64 = self.write("put job part", Call::Cmd(&cmd)).await?;
            Ok(())
        })
    }

    fn get_job_part<'a>(&'a self, part: JobPart<'a>) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("HGET");
            cmd.arg(self.key("jp", part.job_id)).arg(part.number);
            self.read("get job part", Call::Cmd(&cmd)).await
        })
    }

    fn delete_job_part<'a>(&'a self, part: JobPart<'a>) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut cmd = redis::cmd("HDEL");
            cmd.arg(self.key("jp", part.job_id)).arg(part.number);
            let _: i64 = self.write("delete job part", Call::Cmd(&cmd)).await?;
            Ok(())
        })
    }

    fn get_job<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<JobRecord>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("HGET");
            cmd.arg(self.key("j", id)).arg("d");
            let record: Option<String> = self.read("get job", Call::Cmd(&cmd)).await?;
            record.map(|r| decode("job record", &r)).transpose()
        })
    }

    fn list_jobs<'a>(
        &'a self,
        limit: usize,
        before: Option<&'a JobCursor>,
    ) -> StoreFuture<'a, Vec<JobRecord>> {
        Box::pin(async move {
            if limit == 0 {
                return Ok(Vec::new());
            }
            // Members are `created_at ‖ id`: everything below the cursor's member, newest first.
            let max = match before {
                None => "+".to_owned(),
                Some(JobCursor {
                    created_at,
                    id: Some(id),
                }) => format!("({}", job_member(*created_at, id)),
                Some(JobCursor {
                    created_at,
                    id: None,
                }) => format!("({}", time_hex(*created_at)),
            };
            let mut invocation = LIST_JOBS.prepare_invoke();
            invocation.arg(&self.prefix).arg(max).arg(limit.to_string());
            let records: Vec<String> = self.read("list jobs", Call::Script(&invocation)).await?;
            records.iter().map(|r| decode("job record", r)).collect()
        })
    }

    fn unfinished_jobs(&self) -> StoreFuture<'_, Vec<JobRecord>> {
        Box::pin(async move {
            let mut invocation = UNFINISHED_JOBS.prepare_invoke();
            invocation.arg(&self.prefix);
            let records: Vec<String> = self
                .read("unfinished jobs", Call::Script(&invocation))
                .await?;
            let mut jobs = records
                .iter()
                .map(|r| decode::<JobRecord>("job record", r))
                .collect::<Result<Vec<_>, _>>()?;
            jobs.retain(|job| !job.status.is_final());
            jobs.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
            Ok(jobs)
        })
    }

    fn delete_finished_jobs(&self, finished_before: Timestamp) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let mut invocation = DELETE_FINISHED_JOBS.prepare_invoke();
            invocation
                .arg(&self.prefix)
                .arg(score(finished_before).to_string());
            self.write("delete finished jobs", Call::Script(&invocation))
                .await
        })
    }
}

/// Leases are judged by Redis's clock alone (SPEC §7): the value is the holder, the expiry is
/// `PX`, so a daemon whose clock runs ahead can never take a live lease.
impl LeaseStore for RedisStore {
    fn try_lease<'a>(&'a self, claim: LeaseClaim<'a>, ttl: Duration) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let LeaseClaim { key, holder } = claim;
            let ttl_ms = ttl.as_millis().clamp(1, u128::from(u32::MAX)).to_string();
            let lease_key = self.key("l", key);
            // The free case: one SET NX PX.
            let mut set = redis::cmd("SET");
            set.arg(&lease_key)
                .arg(holder)
                .arg("NX")
                .arg("PX")
                .arg(&ttl_ms);
            let taken: Option<String> = self.write("take lease", Call::Cmd(&set)).await?;
            if taken.is_some() {
                return Ok(true);
            }
            // Held: extended when it is ours.
            let mut invocation = TAKE_LEASE.prepare_invoke();
            invocation.key(&lease_key).arg(holder).arg(&ttl_ms);
            let taken: i64 = self.write("take lease", Call::Script(&invocation)).await?;
            Ok(taken == 1)
        })
    }

    fn release_lease<'a>(&'a self, claim: LeaseClaim<'a>) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut invocation = RELEASE_LEASE.prepare_invoke();
            invocation.key(self.key("l", claim.key)).arg(claim.holder);
            let released: i64 = self
                .write("release lease", Call::Script(&invocation))
                .await?;
            Ok(released == 1)
        })
    }
}

impl Store for RedisStore {
    /// Sessions expired by the clock are removed with their index entries, in batches; state
    /// records and leases are left to Redis's own expiry (they are never returned once expired
    /// by the clock, and a state expired by the clock may be replaced), so those counts are 0.
    fn sweep(&self) -> StoreFuture<'_, SweepReport> {
        Box::pin(async move {
            let now = self.now();
            let mut report = SweepReport::default();
            loop {
                let mut invocation = self.session_script(&SWEEP_SESSIONS, now);
                invocation.arg(SWEEP_BATCH.to_string());
                let (removed, seen): (u64, usize) = self
                    .write("sweep sessions", Call::Script(&invocation))
                    .await?;
                report.sessions += removed;
                if seen < SWEEP_BATCH {
                    return Ok(report);
                }
            }
        })
    }

    /// The link's verdict, not a `PING` (which a replica answers too): a connection to the
    /// master, checked within the last half second, with calls not failing.
    fn writable(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move { self.link.writable().await })
    }

    /// Nothing to do: a write returns once Redis acknowledged it, and what Redis keeps across its
    /// own restart is its configuration's (`appendonly yes` with `appendfsync everysec` or
    /// `always`, replicas). No `WAIT`: it would make every write wait for replicas an operator
    /// may not have.
    fn flush(&self) -> StoreFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    /// Redis has not answered a call for longer than `sessions.timeoutMs` (a frozen or
    /// unreachable server): see [`link`]. A refused connection shows in `writable` instead.
    fn stalled(&self) -> Option<String> {
        self.link.stalled()
    }
}

/// `auth0-client:<length>:<scope>:`.
/// The session hash's `x` field: its Auth0 session hash, or `""` (no index entry).
fn auth0_session_field(session: &Session) -> &str {
    session
        .auth0_session
        .as_ref()
        .map_or("", Auth0SessionHash::as_str)
}

fn scope_prefix(scope: &str) -> String {
    format!("auth0-client:{}:{scope}:", scope.len())
}

/// A time as a sorted-set score or a script argument: clamped to `0..=2^52` ms.
fn score(at: Timestamp) -> i64 {
    at.as_millis().clamp(0, MAX_SCORE)
}

/// When Redis may drop a record that expires at `at`.
fn gc_at(at: Timestamp) -> i64 {
    score(at.saturating_add(GC_MARGIN))
}

/// A time as 16 lowercase hex digits whose text order is time order (sign bit flipped).
fn time_hex(at: Timestamp) -> String {
    format!("{:016x}", at.as_millis().cast_unsigned() ^ (1 << 63))
}

fn job_member(created_at: Timestamp, id: &str) -> String {
    format!("{}{id}", time_hex(created_at))
}

/// `host:port` (the config layer adds `:6379`), `[v6]:port` included.
fn parse_host(host: &str) -> Result<(String, u16), StoreError> {
    let invalid = || {
        StoreError::Invalid(format!(
            "sessions.redis.hosts: {host:?} is not host:port (REDIS_HOSTS)"
        ))
    };
    let (name, port) = host.rsplit_once(':').ok_or_else(invalid)?;
    let port: u16 = port.parse().map_err(|_| invalid())?;
    let name = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    if name.is_empty() {
        return Err(invalid());
    }
    Ok((name.to_owned(), port))
}

fn read_ca(path: &Path) -> Result<Vec<u8>, StoreError> {
    let pem = std::fs::read(path).map_err(|e| {
        StoreError::Invalid(format!(
            "sessions.redis.tlsCaCert (REDIS_TLS_CACERT) {} cannot be read: {e}",
            path.display()
        ))
    })?;
    if !pem.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(StoreError::Invalid(format!(
            "sessions.redis.tlsCaCert (REDIS_TLS_CACERT) {} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(pem)
}

fn live_sessions(records: Vec<String>, now: Timestamp) -> Result<Vec<Session>, StoreError> {
    let mut sessions = Vec::with_capacity(records.len());
    for record in records {
        let session: Session = decode("session", &record)?;
        if session.is_live(now) {
            sessions.push(session);
        }
    }
    Ok(sessions)
}

fn live_state(record: Option<String>, now: Timestamp) -> Result<Option<StateRecord>, StoreError> {
    let Some(record) = record else {
        return Ok(None);
    };
    let record: StateRecord = decode("state record", &record)?;
    Ok(record.is_live(now).then_some(record))
}

fn encode<T: Serialize>(what: &str, record: &T) -> Result<String, StoreError> {
    serde_json::to_string(record).map_err(|e| StoreError::unencodable(what, e))
}

/// The session a record holds, when there is one and it is live by `now`.
fn live_session(record: Option<&str>, now: Timestamp) -> Result<Option<Session>, StoreError> {
    let Some(record) = record else {
        return Ok(None);
    };
    let session: Session = decode("session", record)?;
    Ok(session.is_live(now).then_some(session))
}

fn decode<T: DeserializeOwned>(what: &str, record: &str) -> Result<T, StoreError> {
    serde_json::from_str(record).map_err(|e| StoreError::undecodable(what, e))
}
