//! [`SledStore`]: the embedded store (sled 0.34), the default for a daemon on one machine.
//!
//! Layout: one tree per record kind and one per index, records as JSON.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `sessions` | session id | [`Session`] |
//! | `session_aliases` | token hash (hex) | session id |
//! | `session_subs` | sub length (u64 BE), sub, session id | `expires_at` |
//! | `session_expiry` | `expires_at`, session id | empty |
//! | `states` | state | [`StateRecord`] |
//! | `jobs` | job id | [`JobRecord`] |
//! | `jobs_by_created` | `created_at`, job id | empty |
//! | `leases` | lease key | holder and `expires_at` |
//!
//! Times in keys are 8 big-endian bytes with the sign bit flipped, so byte order is time order.
//! A session and its index entries change together in one sled transaction, so an index never
//! points at nothing; the `session_subs` value and the `session_expiry` tree let
//! [`SessionStore::active_subs`], [`SessionStore::count_live_sessions`] and [`SessionStore::sweep`]
//! work on keys without decoding a session. State records and leases are single keys, changed with
//! compare-and-swap.
//!
//! sled calls are synchronous and, for the data this daemon keeps, served from memory in
//! microseconds, so they run inline on the caller's executor; only `flush_async` waits, on sled's
//! own thread pool. The folder is locked twice: by an `auth0-client.lock` file this module holds
//! (an OS lock, released when the process dies, even by `kill -9`), which yields a clear
//! [`StoreError::InUse`], and by sled's own lock on its `db` file.

use std::fs::{File, TryLockError};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ::sled::transaction::{
    ConflictableTransactionError, ConflictableTransactionResult, TransactionError,
    TransactionalTree,
};
use ::sled::{Db, IVec, Transactional, Tree};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{
    JobRecord, Session, SessionId, SessionStore, StateRecord, StoreError, StoreFuture, SweepReport,
    Timestamp, TokenHash,
};

/// The name of the lock file this module keeps in the folder.
const LOCK_FILE: &str = "auth0-client.lock";
/// Key of the layout version in sled's default tree; bumped when the layout changes.
const LAYOUT_KEY: &[u8] = b"auth0-client.layout";
const LAYOUT_VERSION: &[u8] = b"1";

/// The sled store. Cloning is cheap and shares the database.
#[derive(Clone)]
pub struct SledStore {
    db: Db,
    trees: Trees,
    /// Held for the store's lifetime; declared last so it is released after the database.
    _lock: Option<Arc<File>>,
}

#[derive(Clone)]
struct Trees {
    sessions: Tree,
    aliases: Tree,
    subs: Tree,
    expiry: Tree,
    states: Tree,
    jobs: Tree,
    jobs_by_created: Tree,
    leases: Tree,
}

impl Trees {
    fn open(db: &Db) -> Result<Self, ::sled::Error> {
        Ok(Self {
            sessions: db.open_tree("sessions")?,
            aliases: db.open_tree("session_aliases")?,
            subs: db.open_tree("session_subs")?,
            expiry: db.open_tree("session_expiry")?,
            states: db.open_tree("states")?,
            jobs: db.open_tree("jobs")?,
            jobs_by_created: db.open_tree("jobs_by_created")?,
            leases: db.open_tree("leases")?,
        })
    }
}

/// A lease's value.
#[derive(Serialize, Deserialize)]
struct Lease {
    holder: String,
    expires_at: Timestamp,
}

impl SledStore {
    /// Opens (creating it if needed) the store in the folder `path` (`sessions.path`).
    ///
    /// Fails with [`StoreError::InUse`] when another process, or another open store in this
    /// process, holds the folder.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let open_error = |message: String| StoreError::Open {
            path: path.to_path_buf(),
            message,
        };
        std::fs::create_dir_all(path)
            .map_err(|e| open_error(format!("cannot create the folder: {e}")))?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path.join(LOCK_FILE))
            .map_err(|e| open_error(format!("cannot open its {LOCK_FILE}: {e}")))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(StoreError::InUse {
                    path: path.to_path_buf(),
                });
            }
            Err(TryLockError::Error(e)) => {
                return Err(open_error(format!("cannot lock its {LOCK_FILE}: {e}")));
            }
        }
        let db = ::sled::Config::new()
            .path(path)
            .open()
            .map_err(|e| open_failure(path, e))?;
        Self::with_db(db, Some(lock)).map_err(|e| match e {
            StoreError::Open { message, .. } => open_error(message),
            other => open_error(other.to_string()),
        })
    }

    /// A store in a temporary folder sled deletes when the store is dropped (`demo`, tests).
    pub fn open_temporary() -> Result<Self, StoreError> {
        let db = ::sled::Config::new()
            .temporary(true)
            .open()
            .map_err(|e| StoreError::Open {
                path: PathBuf::from("<temporary>"),
                message: e.to_string(),
            })?;
        Self::with_db(db, None)
    }

    fn with_db(db: Db, lock: Option<File>) -> Result<Self, StoreError> {
        match db.get(LAYOUT_KEY)? {
            None => {
                db.insert(LAYOUT_KEY, LAYOUT_VERSION)?;
            }
            Some(version) if version == LAYOUT_VERSION => {}
            Some(version) => {
                return Err(StoreError::Open {
                    path: PathBuf::from("<sled>"),
                    message: format!(
                        "it holds layout version {} and this daemon reads version {}",
                        String::from_utf8_lossy(&version),
                        String::from_utf8_lossy(LAYOUT_VERSION)
                    ),
                });
            }
        }
        let trees = Trees::open(&db)?;
        Ok(Self {
            db,
            trees,
            _lock: lock.map(Arc::new),
        })
    }

    /// Waits until every write so far is on disk.
    async fn flush_durable(&self) -> Result<(), StoreError> {
        self.db.flush_async().await?;
        Ok(())
    }

    // Sessions.

    fn read_session(&self, id: &[u8], now: Timestamp) -> Result<Option<Session>, StoreError> {
        let Some(bytes) = self.trees.sessions.get(id)? else {
            return Ok(None);
        };
        let session: Session = decode("session", &bytes)?;
        Ok(session.is_live(now).then_some(session))
    }

    /// Writes `session` and its index entries in one transaction, replacing the previous record's
    /// entries. With `only_if_live`, writes nothing and returns `false` unless a live record exists.
    fn write_session(
        &self,
        session: &Session,
        only_if_live: bool,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let id = session.id.as_str().as_bytes();
        let value = encode("session", session)?;
        let aliases = session.alias_hashes();
        let t = &self.trees;
        let written = (&t.sessions, &t.aliases, &t.subs, &t.expiry).transaction(
            |(sessions, alias_tree, subs, expiry)| {
                let previous = match sessions.get(id)? {
                    Some(bytes) => Some(decode::<Session>("session", &bytes).map_err(abort)?),
                    None => None,
                };
                if only_if_live && !previous.as_ref().is_some_and(|p| p.is_live(now)) {
                    return Ok(false);
                }
                if let Some(previous) = &previous {
                    remove_session_entries(previous, alias_tree, subs, expiry)?;
                }
                for hash in &aliases {
                    alias_tree.insert(hash.as_str().as_bytes(), id)?;
                }
                subs.insert(
                    sub_key(&session.sub, &session.id),
                    &time_bytes(session.expires_at)[..],
                )?;
                expiry.insert(expiry_key(session.expires_at, id), &[][..])?;
                sessions.insert(id, value.as_slice())?;
                Ok(true)
            },
        );
        transaction_result(written)
    }

    /// Deletes a session and its entries in one transaction and returns what it deleted. With
    /// `only_expired` (the sweeper), deletes only a session expired at `now`, not one a refresh
    /// has just extended, and drops that expiry key, which may be stale.
    fn remove_session(
        &self,
        id: &SessionId,
        now: Timestamp,
        only_expired: Option<&[u8]>,
    ) -> Result<Option<Session>, StoreError> {
        let key = id.as_str().as_bytes();
        let t = &self.trees;
        let removed = (&t.sessions, &t.aliases, &t.subs, &t.expiry).transaction(
            |(sessions, alias_tree, subs, expiry)| {
                if let Some(stale) = only_expired {
                    expiry.remove(stale)?;
                }
                let Some(bytes) = sessions.get(key)? else {
                    return Ok(None);
                };
                let session: Session = decode("session", &bytes).map_err(abort)?;
                if only_expired.is_some() && session.is_live(now) {
                    return Ok(None);
                }
                remove_session_entries(&session, alias_tree, subs, expiry)?;
                sessions.remove(key)?;
                Ok(Some(session))
            },
        );
        transaction_result(removed)
    }

    fn session_ids_of(&self, sub: &str) -> Result<Vec<SessionId>, StoreError> {
        let prefix = sub_prefix(sub);
        let mut ids = Vec::new();
        for entry in self.trees.subs.scan_prefix(&prefix) {
            let (key, _) = entry?;
            let id = key.get(prefix.len()..).unwrap_or_default();
            ids.push(parse_session_id(id)?);
        }
        Ok(ids)
    }

    /// Removes what has expired at `now`. A record that does not decode is logged and left for
    /// an operator rather than stopping every later sweep; an outage stops the sweep.
    fn sweep_now(&self, now: Timestamp) -> Result<SweepReport, StoreError> {
        let mut report = SweepReport::default();
        let skip = |what: &str, error: StoreError| -> Result<(), StoreError> {
            if error.is_unavailable() {
                return Err(error);
            }
            tracing::warn!(error = %error, "the sweeper skipped a {what}");
            Ok(())
        };

        // Sessions: the expiry index up to now, oldest first.
        let end = time_bytes(now.saturating_add(Duration::from_millis(1)));
        let expired: Vec<IVec> = self
            .trees
            .expiry
            .range(..end)
            .keys()
            .collect::<Result<_, _>>()?;
        for key in expired {
            let removed = parse_session_id(key.get(8..).unwrap_or_default())
                .and_then(|id| self.remove_session(&id, now, Some(&key)));
            match removed {
                Ok(Some(_)) => report.sessions += 1,
                Ok(None) => {}
                Err(error) => skip("session", error)?,
            }
        }

        for entry in self.trees.states.iter() {
            let (key, bytes) = entry?;
            match decode::<StateRecord>("state record", &bytes) {
                Ok(record) if !record.is_live(now) => {
                    if remove_if_unchanged(&self.trees.states, &key, &bytes)? {
                        report.states += 1;
                    }
                }
                Ok(_) => {}
                Err(error) => skip("state record", error)?,
            }
        }

        for entry in self.trees.leases.iter() {
            let (key, bytes) = entry?;
            match decode::<Lease>("lease", &bytes) {
                Ok(lease) if now >= lease.expires_at => {
                    if remove_if_unchanged(&self.trees.leases, &key, &bytes)? {
                        report.leases += 1;
                    }
                }
                Ok(_) => {}
                Err(error) => skip("lease", error)?,
            }
        }
        Ok(report)
    }

    // Jobs.

    fn write_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        let id = job.id.as_bytes();
        let value = encode("job record", job)?;
        let index_key = created_key(job.created_at, &job.id);
        let written =
            (&self.trees.jobs, &self.trees.jobs_by_created).transaction(|(jobs, index)| {
                if let Some(bytes) = jobs.get(id)? {
                    let previous: JobRecord = decode("job record", &bytes).map_err(abort)?;
                    index.remove(created_key(previous.created_at, &previous.id))?;
                }
                index.insert(index_key.as_slice(), &[][..])?;
                jobs.insert(id, value.as_slice())?;
                Ok(())
            });
        transaction_result(written)
    }

    fn read_job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        self.trees
            .jobs
            .get(id)?
            .map(|bytes| decode("job record", &bytes))
            .transpose()
    }

    fn newest_jobs(
        &self,
        limit: usize,
        before: Option<Timestamp>,
    ) -> Result<Vec<JobRecord>, StoreError> {
        let keys = match before {
            Some(before) => self.trees.jobs_by_created.range(..time_bytes(before)),
            None => self.trees.jobs_by_created.iter(),
        };
        let mut jobs = Vec::new();
        for key in keys.keys().rev() {
            if jobs.len() >= limit {
                break;
            }
            let key = key?;
            let id = std::str::from_utf8(key.get(8..).unwrap_or_default())
                .map_err(|e| StoreError::undecodable("job index key", e))?;
            // Deleted between the index read and this one: skip it.
            if let Some(job) = self.read_job(id)? {
                jobs.push(job);
            }
        }
        Ok(jobs)
    }

    fn all_jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        self.trees
            .jobs
            .iter()
            .values()
            .map(|bytes| decode("job record", &bytes?))
            .collect()
    }

    fn remove_finished_jobs(&self, finished_before: Timestamp) -> Result<u64, StoreError> {
        let mut removed = 0;
        for job in self.all_jobs()? {
            if !(job.status.is_final() && job.updated_at < finished_before) {
                continue;
            }
            let id = job.id.as_bytes();
            let done =
                (&self.trees.jobs, &self.trees.jobs_by_created).transaction(|(jobs, index)| {
                    // Re-read inside the transaction: the record may have changed since the scan.
                    let Some(bytes) = jobs.get(id)? else {
                        return Ok(false);
                    };
                    let current: JobRecord = decode("job record", &bytes).map_err(abort)?;
                    if !(current.status.is_final() && current.updated_at < finished_before) {
                        return Ok(false);
                    }
                    index.remove(created_key(current.created_at, &current.id))?;
                    jobs.remove(id)?;
                    Ok(true)
                });
            if transaction_result(done)? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    // States and leases: single keys, compare-and-swap.

    fn insert_state(&self, record: &StateRecord, now: Timestamp) -> Result<bool, StoreError> {
        let value = encode("state record", record)?;
        loop {
            let current = self.trees.states.get(&record.state)?;
            if let Some(bytes) = &current {
                let existing: StateRecord = decode("state record", bytes)?;
                if existing.is_live(now) {
                    return Ok(false);
                }
            }
            let swapped = self.trees.states.compare_and_swap(
                &record.state,
                current,
                Some(value.as_slice()),
            )?;
            if swapped.is_ok() {
                return Ok(true);
            }
        }
    }

    fn lease(
        &self,
        key: &str,
        holder: &str,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let value = encode(
            "lease",
            &Lease {
                holder: holder.to_owned(),
                expires_at: now.saturating_add(ttl),
            },
        )?;
        loop {
            let current = self.trees.leases.get(key)?;
            if let Some(bytes) = &current {
                let lease: Lease = decode("lease", bytes)?;
                if lease.holder != holder && now < lease.expires_at {
                    return Ok(false);
                }
            }
            let swapped =
                self.trees
                    .leases
                    .compare_and_swap(key, current, Some(value.as_slice()))?;
            if swapped.is_ok() {
                return Ok(true);
            }
        }
    }

    fn unlease(&self, key: &str, holder: &str, now: Timestamp) -> Result<bool, StoreError> {
        loop {
            let Some(bytes) = self.trees.leases.get(key)? else {
                return Ok(false);
            };
            let lease: Lease = decode("lease", &bytes)?;
            if lease.holder != holder {
                return Ok(false);
            }
            let swapped = self
                .trees
                .leases
                .compare_and_swap(key, Some(&bytes), None::<&[u8]>)?;
            if swapped.is_ok() {
                // An expired lease is removed all the same, but was no longer held.
                return Ok(now < lease.expires_at);
            }
        }
    }
}

impl SessionStore for SledStore {
    fn create_session<'a>(&'a self, session: &'a Session) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.write_session(session, false, Timestamp::now())?;
            self.flush_durable().await
        })
    }

    fn get_session<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Session>> {
        Box::pin(async move { self.read_session(id.as_str().as_bytes(), Timestamp::now()) })
    }

    fn get_session_by_token<'a>(&'a self, hash: &'a TokenHash) -> StoreFuture<'a, Option<Session>> {
        Box::pin(async move {
            match self.trees.aliases.get(hash.as_str())? {
                Some(id) => self.read_session(&id, Timestamp::now()),
                None => Ok(None),
            }
        })
    }

    fn update_session<'a>(&'a self, session: &'a Session) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let updated = self.write_session(session, true, Timestamp::now())?;
            if updated {
                self.flush_durable().await?;
            }
            Ok(updated)
        })
    }

    fn delete_session<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Session>> {
        Box::pin(async move {
            let now = Timestamp::now();
            let removed = self.remove_session(id, now, None)?;
            if removed.is_some() {
                self.flush_durable().await?;
            }
            Ok(removed.filter(|s| s.is_live(now)))
        })
    }

    fn sessions_of<'a>(&'a self, sub: &'a str) -> StoreFuture<'a, Vec<Session>> {
        Box::pin(async move {
            let now = Timestamp::now();
            let mut sessions = Vec::new();
            for id in self.session_ids_of(sub)? {
                sessions.extend(self.read_session(id.as_str().as_bytes(), now)?);
            }
            Ok(sessions)
        })
    }

    fn delete_sessions_of<'a>(&'a self, sub: &'a str) -> StoreFuture<'a, Vec<Session>> {
        Box::pin(async move {
            let now = Timestamp::now();
            let mut removed = Vec::new();
            for id in self.session_ids_of(sub)? {
                removed.extend(
                    self.remove_session(&id, now, None)?
                        .filter(|s| s.is_live(now)),
                );
            }
            self.flush_durable().await?;
            Ok(removed)
        })
    }

    fn active_subs(&self) -> StoreFuture<'_, Vec<String>> {
        Box::pin(async move {
            let now = Timestamp::now();
            let mut subs: Vec<String> = Vec::new();
            for entry in self.trees.subs.iter() {
                let (key, expires_at) = entry?;
                if now >= parse_time(&expires_at)? {
                    continue;
                }
                let sub = parse_sub(&key)?;
                // Keys are grouped by sub, so a duplicate is always the last one pushed.
                if subs.last().map(String::as_str) != Some(sub) {
                    subs.push(sub.to_owned());
                }
            }
            subs.sort_unstable();
            Ok(subs)
        })
    }

    fn count_live_sessions(&self) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let start = time_bytes(Timestamp::now().saturating_add(Duration::from_millis(1)));
            let mut count = 0;
            for key in self.trees.expiry.range(start..).keys() {
                key?;
                count += 1;
            }
            Ok(count)
        })
    }

    fn put_state<'a>(&'a self, record: &'a StateRecord) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let inserted = self.insert_state(record, Timestamp::now())?;
            if inserted {
                self.flush_durable().await?;
            }
            Ok(inserted)
        })
    }

    fn take_state<'a>(&'a self, state: &'a str) -> StoreFuture<'a, Option<StateRecord>> {
        Box::pin(async move {
            // `remove` is atomic: of concurrent takes, one gets the value, the others `None`.
            let Some(bytes) = self.trees.states.remove(state)? else {
                return Ok(None);
            };
            // Durable, so a crash cannot bring a used state back.
            self.flush_durable().await?;
            let record: StateRecord = decode("state record", &bytes)?;
            Ok(record.is_live(Timestamp::now()).then_some(record))
        })
    }

    fn put_job<'a>(&'a self, job: &'a JobRecord) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.write_job(job)?;
            self.flush_durable().await
        })
    }

    fn get_job<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<JobRecord>> {
        Box::pin(async move { self.read_job(id) })
    }

    fn list_jobs(
        &self,
        limit: usize,
        before: Option<Timestamp>,
    ) -> StoreFuture<'_, Vec<JobRecord>> {
        Box::pin(async move { self.newest_jobs(limit, before) })
    }

    fn unfinished_jobs(&self) -> StoreFuture<'_, Vec<JobRecord>> {
        Box::pin(async move {
            let mut jobs: Vec<JobRecord> = self
                .all_jobs()?
                .into_iter()
                .filter(|job| !job.status.is_final())
                .collect();
            jobs.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
            Ok(jobs)
        })
    }

    fn delete_finished_jobs(&self, finished_before: Timestamp) -> StoreFuture<'_, u64> {
        Box::pin(async move { self.remove_finished_jobs(finished_before) })
    }

    fn try_lease<'a>(
        &'a self,
        key: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move { self.lease(key, holder, ttl, Timestamp::now()) })
    }

    fn release_lease<'a>(&'a self, key: &'a str, holder: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move { self.unlease(key, holder, Timestamp::now()) })
    }

    fn sweep(&self) -> StoreFuture<'_, SweepReport> {
        Box::pin(async move { self.sweep_now(Timestamp::now()) })
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.db.get(LAYOUT_KEY)?;
            Ok(())
        })
    }

    fn flush(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move { self.flush_durable().await })
    }
}

/// Turns sled's open error into the store's, recognising its lock error (an `Other` I/O error
/// whose message sled words "could not acquire lock"), which our own lock file normally preempts.
fn open_failure(path: &Path, error: ::sled::Error) -> StoreError {
    match error {
        ::sled::Error::Io(e)
            if e.kind() == ErrorKind::Other && e.to_string().contains("could not acquire lock") =>
        {
            StoreError::InUse {
                path: path.to_path_buf(),
            }
        }
        other => StoreError::Open {
            path: path.to_path_buf(),
            message: other.to_string(),
        },
    }
}

/// Removes the session's index entries (not the record) inside a transaction. An alias is
/// removed only while it points at this session.
fn remove_session_entries(
    session: &Session,
    aliases: &TransactionalTree,
    subs: &TransactionalTree,
    expiry: &TransactionalTree,
) -> ConflictableTransactionResult<(), StoreError> {
    let id = session.id.as_str().as_bytes();
    for hash in session.alias_hashes() {
        let key = hash.as_str().as_bytes();
        if aliases.get(key)?.is_some_and(|owner| owner == id) {
            aliases.remove(key)?;
        }
    }
    subs.remove(sub_key(&session.sub, &session.id))?;
    expiry.remove(expiry_key(session.expires_at, id))?;
    Ok(())
}

fn remove_if_unchanged(tree: &Tree, key: &[u8], value: &IVec) -> Result<bool, StoreError> {
    Ok(tree
        .compare_and_swap(key, Some(value), None::<&[u8]>)?
        .is_ok())
}

fn encode<T: Serialize>(what: &str, record: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(record).map_err(|e| StoreError::unencodable(what, e))
}

fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::undecodable(what, e))
}

fn abort(error: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(error)
}

fn transaction_result<T>(result: Result<T, TransactionError<StoreError>>) -> Result<T, StoreError> {
    result.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => e.into(),
    })
}

/// A time as 8 bytes whose byte order is time order.
fn time_bytes(at: Timestamp) -> [u8; 8] {
    (at.as_millis().cast_unsigned() ^ (1 << 63)).to_be_bytes()
}

fn parse_time(bytes: &[u8]) -> Result<Timestamp, StoreError> {
    let bytes: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| StoreError::undecodable("time", "fewer than 8 bytes"))?;
    Ok(Timestamp::from_millis(
        (u64::from_be_bytes(bytes) ^ (1 << 63)).cast_signed(),
    ))
}

fn expiry_key(at: Timestamp, id: &[u8]) -> Vec<u8> {
    [&time_bytes(at)[..], id].concat()
}

fn created_key(at: Timestamp, id: &str) -> Vec<u8> {
    [&time_bytes(at)[..], id.as_bytes()].concat()
}

/// The length prefix keeps one sub's keys apart from a longer sub's that starts the same way.
fn sub_prefix(sub: &str) -> Vec<u8> {
    [&(sub.len() as u64).to_be_bytes()[..], sub.as_bytes()].concat()
}

fn sub_key(sub: &str, id: &SessionId) -> Vec<u8> {
    [sub_prefix(sub).as_slice(), id.as_str().as_bytes()].concat()
}

fn parse_sub(key: &[u8]) -> Result<&str, StoreError> {
    let corrupt = || StoreError::undecodable("sub index key", "bad length prefix");
    let length: [u8; 8] = key
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(corrupt)?;
    let length = usize::try_from(u64::from_be_bytes(length)).map_err(|_| corrupt())?;
    let sub = key
        .get(8..8usize.saturating_add(length))
        .ok_or_else(corrupt)?;
    std::str::from_utf8(sub).map_err(|e| StoreError::undecodable("sub index key", e))
}

fn parse_session_id(bytes: &[u8]) -> Result<SessionId, StoreError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| SessionId::parse(s).ok())
        .ok_or_else(|| StoreError::undecodable("session id in an index", "not a session id"))
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead as _, BufReader};
    use std::process::{Command, Stdio};

    use super::*;
    use crate::store::conformance::{Fixture, conformance_suite};
    use crate::store::{IdToken, IssuedTokens};

    /// A sled store in its own temporary folder; `open` reopens the same folder.
    struct SledFixture {
        dir: tempfile::TempDir,
    }

    fn fixture() -> SledFixture {
        SledFixture {
            dir: tempfile::tempdir().expect("a temporary folder"),
        }
    }

    impl Fixture for SledFixture {
        fn open(&self) -> StoreFuture<'_, Arc<dyn SessionStore>> {
            Box::pin(async move {
                Ok(Arc::new(SledStore::open(self.dir.path())?) as Arc<dyn SessionStore>)
            })
        }
    }

    conformance_suite!(fixture());

    fn session(sub: &str, access_token: &str, lifetime: Duration) -> Session {
        let now = Timestamp::now();
        Session::new(
            "web",
            sub,
            IssuedTokens {
                access_token: access_token.into(),
                access_expires_at: now,
                refresh_token: None,
                id_token: IdToken {
                    token: "id".into(),
                    claims: serde_json::Map::new(),
                },
            },
            now.saturating_add(lifetime),
            now,
        )
    }

    fn tree_sizes(store: &SledStore) -> [usize; 4] {
        let t = &store.trees;
        [
            t.sessions.len(),
            t.aliases.len(),
            t.subs.len(),
            t.expiry.len(),
        ]
    }

    #[tokio::test]
    async fn a_second_open_of_the_folder_in_this_process_is_refused_clearly() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let first = SledStore::open(dir.path()).expect("first open");
        let second = SledStore::open(dir.path());
        let Err(error) = second else {
            panic!("a second open succeeded");
        };
        assert!(matches!(error, StoreError::InUse { .. }), "{error:?}");
        let message = error.to_string();
        assert!(
            message.contains(&format!(
                "the session folder {} is in use by another process",
                dir.path().display()
            )),
            "{message}"
        );
        drop(first);
        SledStore::open(dir.path()).expect("the folder opens once released");
    }

    #[test]
    fn sleds_own_lock_error_is_recognised() {
        let error = ::sled::Error::Io(std::io::Error::other(
            "could not acquire lock on \"/x/db\": Os { code: 11, kind: WouldBlock }",
        ));
        assert!(matches!(
            open_failure(Path::new("/x"), error),
            StoreError::InUse { .. }
        ));
    }

    /// Not a test by itself: the other process of the next test, started by it.
    #[test]
    #[ignore = "run by a_second_process_is_refused_clearly"]
    fn hold_the_folder_for_another_process() {
        let Some(path) = std::env::var_os("AUTH0_CLIENT_TEST_HOLD_FOLDER") else {
            return;
        };
        let _store = SledStore::open(&path).expect("the child opens the folder");
        println!("holding the folder");
        // Hold it until the parent closes our stdin.
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    }

    #[test]
    fn a_second_process_is_refused_clearly() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let mut child = Command::new(std::env::current_exe().expect("the test binary"))
            .args([
                "--exact",
                "store::sled::tests::hold_the_folder_for_another_process",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("AUTH0_CLIENT_TEST_HOLD_FOLDER", dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the child process starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
        let holding = lines.any(|line| line.contains("holding the folder"));
        let refused = SledStore::open(dir.path());
        drop(child.stdin.take());
        // Read the child's last words, so it does not fail writing to a closed pipe.
        lines.for_each(drop);
        let status = child.wait().expect("the child exits");
        assert!(holding, "the child never held the folder ({status})");
        let Err(error) = refused else {
            panic!("the folder opened while another process held it");
        };
        assert!(matches!(error, StoreError::InUse { .. }), "{error:?}");
        SledStore::open(dir.path()).expect("the folder opens once the other process exited");
    }

    #[tokio::test]
    async fn sweep_leaves_no_index_entry_behind() {
        let store = SledStore::open_temporary().expect("open");
        let short = session("auth0|s", "short", Duration::from_millis(200));
        let long = session("auth0|s", "long", Duration::from_secs(3_600));
        store.create_session(&short).await.expect("create");
        store.create_session(&long).await.expect("create");
        assert_eq!(tree_sizes(&store), [2, 2, 2, 2]);

        tokio::time::sleep(Duration::from_millis(300)).await;
        let report = store.sweep().await.expect("sweep");
        assert_eq!(report.sessions, 1);
        assert_eq!(tree_sizes(&store), [1, 1, 1, 1]);
        store.delete_session(&long.id).await.expect("delete");
        assert_eq!(tree_sizes(&store), [0, 0, 0, 0]);
    }

    #[tokio::test]
    async fn a_sweep_does_not_remove_a_session_extended_since_its_expiry_key_was_read() {
        let store = SledStore::open_temporary().expect("open");
        let mut extended = session("auth0|e", "e", Duration::from_millis(100));
        store.create_session(&extended).await.expect("create");
        let stale_key = expiry_key(extended.expires_at, extended.id.as_str().as_bytes());
        extended.expires_at = Timestamp::now().saturating_add(Duration::from_secs(3_600));
        assert!(store.update_session(&extended).await.expect("update"));
        tokio::time::sleep(Duration::from_millis(150)).await;

        let removed = store
            .remove_session(&extended.id, Timestamp::now(), Some(&stale_key))
            .expect("conditional remove");
        assert_eq!(removed, None);
        assert_eq!(
            store.get_session(&extended.id).await.expect("get"),
            Some(extended)
        );
        assert_eq!(tree_sizes(&store), [1, 1, 1, 1]);
    }

    #[tokio::test]
    async fn refresh_rotation_adds_an_alias_entry_per_access_token() {
        let store = SledStore::open_temporary().expect("open");
        let mut s = session("auth0|r", "a1", Duration::from_secs(3_600));
        store.create_session(&s).await.expect("create");
        s.apply_refresh(
            crate::store::RefreshedTokens {
                access_token: "a2".into(),
                access_expires_at: Timestamp::now(),
                refresh_token: None,
                id_token: None,
            },
            Timestamp::now(),
        );
        assert!(store.update_session(&s).await.expect("update"));
        assert_eq!(tree_sizes(&store), [1, 2, 1, 1]);
    }

    #[tokio::test]
    async fn a_corrupt_record_is_reported_as_corruption_not_an_outage() {
        let store = SledStore::open_temporary().expect("open");
        let id = SessionId::generate();
        store
            .trees
            .sessions
            .insert(id.as_str(), &b"{not json"[..])
            .expect("raw insert");
        let error = store
            .get_session(&id)
            .await
            .expect_err("a corrupt record is an error");
        assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
        assert!(!error.is_unavailable());
    }

    #[tokio::test]
    async fn a_corrupt_record_does_not_stop_the_sweeper() {
        let store = SledStore::open_temporary().expect("open");
        store
            .trees
            .states
            .insert("broken", &b"{not json"[..])
            .expect("raw insert");
        let short = session("auth0|c", "c", Duration::from_millis(100));
        store.create_session(&short).await.expect("create");
        tokio::time::sleep(Duration::from_millis(150)).await;
        let report = store.sweep().await.expect("the sweep goes on");
        assert_eq!(report.sessions, 1);
    }

    #[test]
    fn time_keys_sort_in_time_order() {
        let times = [i64::MIN, -1, 0, 1, 1_700_000_000_000, i64::MAX];
        for pair in times.windows(2) {
            let [a, b] = pair else { continue };
            let (a, b) = (Timestamp::from_millis(*a), Timestamp::from_millis(*b));
            assert!(time_bytes(a) < time_bytes(b));
            assert_eq!(parse_time(&time_bytes(a)).expect("parses"), a);
        }
    }

    #[test]
    fn sub_keys_round_trip_and_keep_prefixes_apart() {
        let id = SessionId::generate();
        let key = sub_key("auth0|a", &id);
        assert_eq!(parse_sub(&key).expect("parses"), "auth0|a");
        assert!(!key.starts_with(&sub_prefix("auth0|ab")));
        assert!(!sub_key("auth0|ab", &id).starts_with(&sub_prefix("auth0|a")));
    }
}
