//! The session store (SPEC §7, DESIGN.md "Store"): sessions, `/authorize` state records, import job
//! records and leases, behind role traits so the embedded sled store and Redis are interchangeable.
//!
//! - `mod.rs`: the role traits [`SessionStore`], [`StateStore`], [`JobStore`], [`LeaseStore`] and
//!   [`Store`] (all four plus maintenance: what a backend implements), [`SweepReport`], [`bounded`]
//!   (the per-operation timeout).
//! - [`records`]: the record types and their ids ([`Session`], [`SessionId`], [`TokenHash`],
//!   [`StateRecord`], [`JobRecord`], [`Timestamp`]).
//! - [`error`]: [`StoreError`], the one error type.
//! - [`auth0_session`]: [`Auth0SessionHash`], the index key of sessions by Auth0 session id
//!   (back-channel logout), and the replay-record keys of logout tokens.
//! - [`seal`]: [`seal::KeyRing`], AES-256-GCM sealing of any bytes under `sessions.encryptionKeys`.
//! - [`sealed`]: [`Sealed`], the store every backend is used through: session keys are hashes of
//!   ids, tokens and claims are sealed (SPEC §7).
//! - [`sled`]: [`SledStore`], the embedded default.
//! - [`redis`]: [`RedisStore`], shared by several daemons.
//! - `faults.rs` (`test-hooks` feature only): a wrapper that fails or stalls on demand.
//! - `conformance.rs` (tests only): the one suite every backend passes.

pub mod auth0_session;
pub mod error;
#[cfg(feature = "test-hooks")]
pub mod faults;
pub mod records;
pub mod redis;
pub mod seal;
pub mod sealed;
mod secrets;
pub mod sled;

#[cfg(test)]
mod conformance;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use auth0_session::Auth0SessionHash;
pub use error::StoreError;
pub use records::{
    IdToken, InvalidSessionId, IssuedTokens, JobCursor, JobKind, JobPart, JobRecord, JobStatus,
    KEPT_ALIASES, KEPT_REFRESH_TOKENS, RefreshTokenMatch, RefreshedTokens, RotatedRefreshToken,
    Session, SessionId, StateRecord, Timestamp, TokenHash,
};
pub use redis::{RedisOptions, RedisStore};
pub use sealed::Sealed;
pub use sled::{SledOptions, SledStore, TreeCensus};

/// The future every store operation returns.
///
/// The traits are used as `Arc<dyn Store>` (and its roles), and `async fn` in traits is not object-safe, so
/// each method returns a boxed future, as [`crate::health::Probe`] does. This is what the
/// `async-trait` macro expands to, written out: no extra dependency, and the signatures a reader
/// sees are the real ones. Implementations write `Box::pin(async move { ... })`. The allocation
/// per call is noise next to a store round trip.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The sessions role: sessions by id, by the hash of every access token they issued, and by
/// `sub`, with compare-and-swap on `revision`. See [`Store`] for the rules every role follows.
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new session (as given, `revision` included) and indexes it by id, by the hash of
    /// every access token in [`Session::alias_hashes`], and by `sub`.
    fn create_session<'a>(&'a self, session: &'a Session) -> StoreFuture<'a, ()>;

    /// The live session with this id (the `sid` cookie).
    fn get_session<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Session>>;

    /// The `revision` of the live session with this id: whether a copy held in memory is still
    /// the stored record, for a daemon that shares the store with others (Redis). Backends answer
    /// it with a read smaller than the record where they can; the default reads the record.
    fn session_revision<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<u64>> {
        Box::pin(async move { Ok(self.get_session(id).await?.map(|s| s.revision)) })
    }

    /// Every live session that issued the access token with this hash (`Authorization: Bearer`),
    /// current or earlier. Usually one; several when one user logged in twice through one
    /// client within a second (Auth0's tokens carry no `jti`, and RS256 is deterministic). The
    /// hot path on a cache miss: one prefix scan and the records, no write.
    fn sessions_by_token<'a>(&'a self, hash: &'a TokenHash) -> StoreFuture<'a, Vec<Session>>;

    /// Compare-and-swap: replaces the live session when the stored record's `revision` is
    /// `session.revision`, storing it with the revision bumped and moving its index entries
    /// (new aliases, `sub`, expiry). A stale copy gets [`CasOutcome::Conflict`] with the current
    /// record, which the owner re-reads and re-applies to; a session ended or expired meanwhile
    /// gets [`CasOutcome::Gone`], so a refresh racing a logout never brings it back.
    fn replace_session<'a>(&'a self, session: &'a Session) -> StoreFuture<'a, CasOutcome>;

    /// Ends a session and removes every index entry of it. Returns the session when it was live
    /// (for the refresh-token revocation at logout).
    fn delete_session<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Session>>;

    /// The live sessions of a user, all clients, in no particular order.
    fn sessions_of<'a>(&'a self, sub: &'a str) -> StoreFuture<'a, Vec<Session>>;

    /// The live sessions whose login carried the Auth0 session id hashed as `hash` (the ID token's
    /// `sid`: [`Session::auth0_session`]), all clients, in no particular order: what an OpenID
    /// Connect back-channel logout ends (SPEC §5). The caller ends them one by one.
    fn sessions_of_auth0_session<'a>(
        &'a self,
        hash: &'a Auth0SessionHash,
    ) -> StoreFuture<'a, Vec<Session>>;

    /// Ends every session of a user (user deleted, blocked, password changed, or
    /// `DELETE /users/{id}/sessions`) and returns the live ones it ended. A session created
    /// while this runs may survive.
    fn delete_sessions_of<'a>(&'a self, sub: &'a str) -> StoreFuture<'a, Vec<Session>>;

    /// Each `sub` with at least one live session, sorted, without duplicates (`GET /users/active`).
    fn active_subs(&self) -> StoreFuture<'_, Vec<String>>;

    /// How many sessions are live (the `auth0_client_sessions_live` gauge).
    fn count_live_sessions(&self) -> StoreFuture<'_, u64>;
}

/// The state role: single-use `/authorize` state records, taken atomically.
pub trait StateStore: Send + Sync + 'static {
    /// Stores a state record until its `expires_at`, unless a live record with the same `state`
    /// exists: then returns `false` and keeps the existing one, so a client-chosen `state` can
    /// never replace another login's verifier and redirect.
    fn put_state<'a>(&'a self, record: &'a StateRecord) -> StoreFuture<'a, bool>;

    /// Removes and returns the live record of `state`. Atomic: of concurrent takes, exactly one
    /// gets the record. The caller checks its `client`.
    fn take_state<'a>(&'a self, state: &'a str) -> StoreFuture<'a, Option<StateRecord>>;

    /// The live record of `state`, left in place: a login's binding is checked before its state
    /// is spent, so that a request without it cannot spend another browser's login.
    fn get_state<'a>(&'a self, state: &'a str) -> StoreFuture<'a, Option<StateRecord>>;

    /// Removes the record of `record.state` when the stored one is `record` and still live;
    /// returns whether it did. Atomic like [`take_state`](Self::take_state): of concurrent
    /// takers of one record exactly one gets `true`, and a record replaced since it was read
    /// (a caller's `state`, reused once the first login ended) is left alone.
    fn take_state_if<'a>(&'a self, record: &'a StateRecord) -> StoreFuture<'a, bool>;
}

/// The job role: import job and batch records, listed newest first by a `(created_at, id)`
/// cursor, and the unfinished ones reloaded at start; and the users of a batch's parts, one
/// record per part, written once and deleted once Auth0 has them (DESIGN.md "Large payloads"),
/// so the records listed and polled stay small.
pub trait JobStore: Send + Sync + 'static {
    /// Stores a job record as given (`revision` included), replacing the one with the same id:
    /// the first write of a record. Later writes go through [`replace_job`](Self::replace_job).
    fn put_job<'a>(&'a self, job: &'a JobRecord) -> StoreFuture<'a, ()>;

    /// Compare-and-swap: replaces the stored record when its `revision` is `job.revision`,
    /// storing `job` with the revision bumped. A daemon holding a stale copy (it stalled past its
    /// lease, and another one wrote since) gets [`JobCas::Conflict`] and writes nothing, so a
    /// record never goes back in time. Durable like [`put_job`](Self::put_job).
    fn replace_job<'a>(&'a self, job: &'a JobRecord) -> StoreFuture<'a, JobCas>;

    /// Stores the users of a part of a batch (a compact JSON array, at most 512000 bytes),
    /// durably. Through [`Sealed`] the payload is sealed before a backend sees it.
    fn put_job_part<'a>(&'a self, part: JobPart<'a>, users: &'a [u8]) -> StoreFuture<'a, ()>;

    /// The users of a part, when still stored (opened by [`Sealed`]).
    fn get_job_part<'a>(&'a self, part: JobPart<'a>) -> StoreFuture<'a, Option<Vec<u8>>>;

    /// Deletes the users of a part (Auth0 has them, or refused them); no error when absent.
    fn delete_job_part<'a>(&'a self, part: JobPart<'a>) -> StoreFuture<'a, ()>;

    fn get_job<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<JobRecord>>;

    /// Up to `limit` records in descending `(created_at, id)` order, only those after `before`
    /// in that order when given (`GET /users/import/jobs?limit&before`, see [`JobCursor`]): a
    /// page boundary inside records created in one millisecond skips none of them.
    fn list_jobs<'a>(
        &'a self,
        limit: usize,
        before: Option<&'a JobCursor>,
    ) -> StoreFuture<'a, Vec<JobRecord>>;

    /// Every record whose status is not final, oldest first: what the jobs actor resumes at start.
    fn unfinished_jobs(&self) -> StoreFuture<'_, Vec<JobRecord>>;

    /// Deletes the final records whose `updated_at` is before `finished_before` (now minus
    /// `jobs.retentionDays`), with any part left of them; returns how many records.
    fn delete_finished_jobs(&self, finished_before: Timestamp) -> StoreFuture<'_, u64>;
}

/// The lease role: `try_lease(claim, ttl)`, released only by its holder or expiring, so one
/// daemon at a time does a piece of work (a session's refresh, a job's polling).
pub trait LeaseStore: Send + Sync + 'static {
    /// Takes the lease `claim.key` for `claim.holder` until now + `ttl` when it is free, expired,
    /// or already the holder's (which extends it). Returns whether the holder now holds it.
    fn try_lease<'a>(&'a self, claim: LeaseClaim<'a>, ttl: Duration) -> StoreFuture<'a, bool>;

    /// Releases the lease when `claim.holder` holds it; returns whether it did. Nobody else can.
    fn release_lease<'a>(&'a self, claim: LeaseClaim<'a>) -> StoreFuture<'a, bool>;

    /// Set-if-absent: records `key` until now + `ttl` unless a live record of it exists, and
    /// answers whether this call recorded it. Of concurrent callers, on every daemon sharing the
    /// store, exactly one gets `true` (the replay refusal of back-channel logout tokens, SPEC §5).
    ///
    /// A lease taken by a holder unique to the call and never released: so every backend has it
    /// with the lease's guarantees (atomic, expiring by the store's clock, `PX` on Redis), and
    /// like a lease it need not survive `kill -9` (see [`Store`]).
    fn record_once<'a>(&'a self, key: &'a str, ttl: Duration) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let holder = format!("once-{}", uuid::Uuid::new_v4());
            self.try_lease(LeaseClaim::new(key, &holder), ttl).await
        })
    }
}

/// A lease and who takes or releases it ([`LeaseStore`]): the lease's key (`job:…`,
/// `refresh:…`) and the holder's name (one per daemon).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseClaim<'a> {
    pub key: &'a str,
    pub holder: &'a str,
}

impl<'a> LeaseClaim<'a> {
    pub fn new(key: &'a str, holder: &'a str) -> Self {
        Self { key, holder }
    }
}

/// Everything the daemon keeps: sessions, state records, job records and leases, one role trait
/// each (an actor takes only the roles it needs: the jobs actor a [`JobStore`] and a
/// [`LeaseStore`]), and the maintenance of the whole store. A backend implements all five; the
/// conformance suite checks every role on every backend.
///
/// Rules every backend follows (the conformance suite checks them):
/// - A record past its expiry is never returned, swept or not; [`sweep`](Self::sweep) only
///   reclaims space. Reads never write.
/// - A write returns once it is durable (survives `kill -9`): session create, update and delete,
///   job put. State records, lease changes and sweeps need not be: states live for minutes, and
///   losing one to a crash costs the user a retry of the login.
/// - Tokens never appear in keys: sessions are indexed by [`TokenHash`].
/// - Operations are not bounded in time by the store; wrap calls in [`bounded`] with
///   `sessions.timeoutMs` so an outage answers 503 instead of hanging.
pub trait Store: SessionStore + StateStore + JobStore + LeaseStore {
    /// Removes expired sessions (with their index entries), state records and leases. The
    /// SessionSweeper actor calls it on an interval; backends with native expiry only tidy indexes.
    fn sweep(&self) -> StoreFuture<'_, SweepReport>;

    /// Whether the store accepts writes now (`/-/ready`): on Redis, a connection to the master
    /// (never a replica's answer to `PING`).
    fn writable(&self) -> StoreFuture<'_, ()>;

    /// Makes every acknowledged write durable (at shutdown).
    fn flush(&self) -> StoreFuture<'_, ()>;

    /// Why the store looks stuck, when a call or a flush has been running past its deadline
    /// (`sessions.timeoutMs`): the stall watchdog behind `/-/ready` and
    /// `auth0_client_store_stalled`. Reads in-memory bookkeeping only, so asking never touches
    /// the disk.
    fn stalled(&self) -> Option<String> {
        None
    }

    /// The group commit's flushes and the durable writes they carried (sled; `None` for a
    /// backend with no flush of its own): `auth0_client_store_flushes_total` and
    /// `auth0_client_store_flushed_writes_total`.
    fn flush_counts(&self) -> Option<FlushCounts> {
        None
    }
}

/// What a store's group commit has done ([`Store::flush_counts`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlushCounts {
    pub flushes: u64,
    /// Writes made durable: each flush carries every write waiting when it started.
    pub writes: u64,
}

/// The answer of [`SessionStore::replace_session`].
#[derive(Clone, Debug, PartialEq)]
pub enum CasOutcome {
    /// Written: the record as stored, with its new revision.
    Written(Box<Session>),
    /// The stored record has another revision: here it is; nothing was written.
    Conflict(Box<Session>),
    /// No live session with that id: nothing was written.
    Gone,
}

/// The answer of [`JobStore::replace_job`].
#[derive(Clone, Debug, PartialEq)]
pub enum JobCas {
    /// Written: the record as stored, with its new revision.
    Written(Box<JobRecord>),
    /// The stored record has another revision: here it is; nothing was written.
    Conflict(Box<JobRecord>),
    /// No record with that id: nothing was written.
    Gone,
}

/// What one [`SessionStore::sweep`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub sessions: u64,
    pub states: u64,
    pub leases: u64,
}

/// Runs one store operation within `limit` (`sessions.timeoutMs`); past it the operation is
/// abandoned and the answer is [`StoreError::Timeout`], which callers answer 503. Needs a tokio
/// runtime with timers (actix-rt is one).
pub async fn bounded<T>(
    limit: Duration,
    operation: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(limit, operation)
        .await
        .unwrap_or(Err(StoreError::Timeout(limit)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_turns_a_slow_operation_into_a_timeout() {
        let slow = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(())
        };
        let answer = bounded(Duration::from_millis(10), slow).await;
        assert!(matches!(answer, Err(StoreError::Timeout(_))));
        assert!(answer.err().is_some_and(|e| e.is_unavailable()));
        assert_eq!(
            bounded(Duration::from_secs(1), async { Ok(7) }).await.ok(),
            Some(7)
        );
    }
}
