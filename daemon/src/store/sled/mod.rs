//! [`SledStore`]: the embedded store (sled 0.34), the default for a daemon on one machine.
//!
//! Layout: one tree per record kind and one per index, records as JSON (a session's in a binary
//! envelope that keeps its sealed part as bytes: [`record`]).
//!
//! | tree | key | value |
//! |---|---|---|
//! | `sessions` | session key | [`Session`], whose `revision` every write compares and bumps (through [`super::Sealed`], as the daemon uses it, the key is the SHA-256 of the session id and the tokens and claims are sealed) |
//! | `session_aliases` | token hash (hex), session id | empty (one access token may open several sessions) |
//! | `session_subs` | sub length (u64 BE), sub, session id | `expires_at` |
//! | `session_expiry` | `expires_at`, session id | empty |
//! | `session_auth0_sessions` | Auth0 session hash (hex), session id | empty (back-channel logout, [`super::auth0_session`]) |
//! | `session_counts` | shard (u16 BE, from the session key) | the shard's count of `sessions` records (i64 BE), changed in the transaction that adds or removes one |
//! | `states` | state | [`StateRecord`] |
//! | `jobs` | job id | [`JobRecord`] |
//! | `jobs_by_created` | `created_at`, job id | empty |
//! | `leases` | lease key | holder and `expires_at` |
//!
//! The users of import parts are not in sled: they are files in `import-parts/` ([`parts`]).
//!
//! Times in keys are 8 big-endian bytes with the sign bit flipped, so byte order is time order.
//! A session and its index entries change together in one sled transaction, so an index never
//! points at nothing; the `session_subs` value and the `session_expiry` tree let
//! [`SessionStore::active_subs`] and [`Store::sweep`] work on keys without decoding a session, and
//! [`SessionStore::count_live_sessions`] is the sum of `session_counts` less the expired sessions
//! not yet swept: it reads a thousand small keys, not a key per session, at a million sessions
//! as at ten, and after `kill -9` too (the counts are as durable as the sessions they count).
//! State records and leases are single keys, changed with compare-and-swap.
//!
//! How sled is used so that it cannot wedge the daemon (sled 0.34 hangs when `flush_async` is
//! called concurrently: sled #1308, #1241):
//!
//! | what | how |
//! |---|---|
//! | durability | never `flush_async`: one flusher thread calls the blocking `Db::flush()`, and a write that must survive `kill -9` waits for the next flush after it ([`flusher`], group commit) |
//! | which writes wait | sessions (create, update, delete) and job records; state records, leases and sweeps do not (they expire in minutes; a crash costs a retry) |
//! | sled calls | on a bounded pool of blocking threads ([`pool`]), never inline on an HTTP worker |
//! | a hung flush or call | reported by [`Store::stalled`] past `sessions.timeoutMs`; callers stop waiting at that bound and answer 503 |
//! | dropping a hung store | the database is leaked rather than dropped: sled's `Drop` flushes, and would hang the process |
//! | files | the folder is made 0700 and its files 0600 at open and after each sweep (they hold refresh tokens) |
//! | memory | sled's page cache is `sessions.sledCacheBytes` (sled's own default is 1 GiB) |
//!
//! sled also runs its own background thread every 500 ms, which writes its buffers and cleans
//! segments (rewriting live pages out of mostly-empty segments); that is sled's, not ours.
//!
//! The folder is locked twice: by an `auth0-client.lock` file this module holds (an OS lock,
//! released when the process dies, even by `kill -9`), which yields a clear
//! [`StoreError::InUse`], and by sled's own lock on its `db` file.
//!
//! Its parts: `layout.rs` the trees, their keys and the layout version; `sessions.rs` a session
//! and its indexes; `counts.rs` the live count's shards; `jobs.rs` batch jobs; `singles.rs` state
//! records and leases; `record.rs` a session's envelope; `parts.rs` import parts; `flusher.rs` the
//! group commit; `inserts.rs` new sessions sharing a transaction; `pool.rs` the blocking threads.
//! This file: the store, its opening, and the trait impls.

mod counts;
mod flusher;
mod inserts;
mod jobs;
mod layout;
mod parts;
mod pool;
mod record;
mod sessions;
mod singles;
#[cfg(test)]
mod tests;

use std::fs::{File, TryLockError};
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ::sled::{Db, IVec, Tree};

use self::counts::{migrate_v2_counts, parse_count};
use self::flusher::GroupCommit;
use self::inserts::Inserts;
use self::layout::{
    LAYOUT_KEY, LAYOUT_V1, LAYOUT_V2, LAYOUT_VERSION, Trees, created_key, decode,
    migrate_v1_aliases, parse_sub, parse_time, time_bytes,
};
use self::parts::PartFiles;
use self::pool::BlockingPool;
use self::singles::{Lease, live_state};
use super::{
    Auth0SessionHash, CasOutcome, JobCas, JobCursor, JobPart, JobRecord, JobStore, LeaseClaim,
    LeaseStore, Session, SessionId, SessionStore, StateRecord, StateStore, Store, StoreError,
    StoreFuture, SweepReport, Timestamp, TokenHash,
};
use crate::clock::Clock;

/// The name of the lock file this module keeps in the folder.
const LOCK_FILE: &str = "auth0-client.lock";

/// How many records one sweep call handles before giving its pool thread back, so a sweep of
/// 100k expired records never holds a thread past the stall deadline, nor the store for long.
const SWEEP_BATCH: usize = 1_000;

/// How the store is opened (from `sessions.*`).
#[derive(Clone, Debug)]
pub struct SledOptions {
    /// sled's page cache (`sessions.sledCacheBytes`).
    pub cache_bytes: u64,
    /// Past this, a running flush or sled call counts as stalled (`sessions.timeoutMs`).
    pub stall_after: Duration,
    /// What "now" is for expiry.
    pub clock: Clock,
}

impl Default for SledOptions {
    fn default() -> Self {
        Self {
            cache_bytes: 64 << 20,
            stall_after: Duration::from_secs(2),
            clock: Clock::system(),
        }
    }
}

impl SledOptions {
    pub fn from_settings(sessions: &crate::config::SessionSettings, clock: Clock) -> Self {
        Self {
            cache_bytes: sessions.sled_cache_bytes,
            stall_after: sessions.timeout,
            clock,
        }
    }
}

/// The sled store. Cloning is cheap and shares the database.
#[derive(Clone)]
pub struct SledStore {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Arc<Engine>,
    commit: GroupCommit,
    pool: BlockingPool,
    /// New sessions waiting to share a transaction.
    inserts: Inserts,
    stall_after: Duration,
    clock: Clock,
    /// The folder, to keep its modes owner-only; `None` for a temporary store.
    path: Option<PathBuf>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(why) = self.stall_report() {
            // sled's `Drop` flushes, and a hung flush would hang whoever drops the last handle
            // (at shutdown: the process). Leak the database instead; the OS reclaims it at exit.
            tracing::error!(
                "the session store is stuck ({why}); leaving it without flushing what it holds"
            );
            std::mem::forget(self.engine.clone());
        } else {
            // The flusher holds a handle on the database: release it now, so that the folder
            // can be opened again as soon as this store is gone.
            self.commit.close();
        }
    }
}

impl Inner {
    fn stall_report(&self) -> Option<String> {
        if let Some(running) = self.commit.stalled(self.stall_after) {
            return Some(format!(
                "a flush to disk has been running for {} ms",
                running.as_millis()
            ));
        }
        self.pool.stalled(self.stall_after).map(|(what, running)| {
            format!(
                "a store call ({what}) has been running for {} ms",
                running.as_millis()
            )
        })
    }
}

/// The database and its trees: what the blocking calls work on.
struct Engine {
    db: Db,
    trees: Trees,
    /// The users of import parts, as files beside sled's ([`parts`]).
    parts: PartFiles,
    /// Held for the store's lifetime; declared last so it is released after the database.
    _lock: Option<File>,
}

impl SledStore {
    /// Opens (creating it if needed) the store in the folder `path` (`sessions.path`).
    ///
    /// Fails with [`StoreError::InUse`] when another process, or another open store in this
    /// process, holds the folder.
    pub fn open(path: impl AsRef<Path>, options: SledOptions) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let open_error = |message: String| StoreError::Open {
            path: path.to_path_buf(),
            message,
        };
        std::fs::create_dir_all(path)
            .map_err(|e| open_error(format!("cannot create the folder: {e}")))?;
        secure_folder(path).map_err(|e| open_error(format!("cannot make it owner-only: {e}")))?;
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
            .cache_capacity(options.cache_bytes)
            .open()
            .map_err(|e| open_failure(path, e))?;
        // sled created its files with the process umask.
        secure_folder(path).map_err(|e| open_error(format!("cannot make it owner-only: {e}")))?;
        let parts = PartFiles::open(path).map_err(|e| open_error(e.to_string()))?;
        Self::with_db(db, parts, Some(lock), Some(path.to_path_buf()), options).map_err(|e| match e
        {
            StoreError::Open { message, .. } => open_error(message),
            other => open_error(other.to_string()),
        })
    }

    /// A store in a temporary folder sled deletes when the store is dropped (tests).
    pub fn open_temporary() -> Result<Self, StoreError> {
        Self::open_temporary_with(SledOptions::default())
    }

    /// [`SledStore::open_temporary`] with `options` (a manual clock, say).
    pub fn open_temporary_with(options: SledOptions) -> Result<Self, StoreError> {
        let db = ::sled::Config::new()
            .temporary(true)
            .cache_capacity(options.cache_bytes)
            .open()
            .map_err(|e| StoreError::Open {
                path: PathBuf::from("<temporary>"),
                message: e.to_string(),
            })?;
        Self::with_db(db, PartFiles::temporary()?, None, None, options)
    }

    fn with_db(
        db: Db,
        parts: PartFiles,
        lock: Option<File>,
        path: Option<PathBuf>,
        options: SledOptions,
    ) -> Result<Self, StoreError> {
        match db.get(LAYOUT_KEY)? {
            None => {
                db.insert(LAYOUT_KEY, LAYOUT_VERSION)?;
            }
            Some(version) if version == LAYOUT_VERSION => {}
            Some(version) if version == LAYOUT_V2 => migrate_v2_counts(&db)?,
            Some(version) if version == LAYOUT_V1 => {
                migrate_v1_aliases(&db)?;
                migrate_v2_counts(&db)?;
            }
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
        // Parts whose batch record was never written (a submit cut by a crash): nobody sends them.
        parts.retain_jobs(|job| Ok(trees.jobs.contains_key(job)?))?;
        let flushed = db.clone();
        let commit =
            GroupCommit::start(move || flushed.flush().map(drop).map_err(|e| e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                engine: Arc::new(Engine {
                    db,
                    trees,
                    parts,
                    _lock: lock,
                }),
                commit,
                pool: BlockingPool::start()?,
                inserts: Inserts::default(),
                stall_after: options.stall_after,
                clock: options.clock,
                path,
            }),
        })
    }

    fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// Runs `work` on the engine in the blocking pool.
    async fn call<T: Send + 'static>(
        &self,
        what: &'static str,
        work: impl FnOnce(&Engine) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let engine = self.inner.engine.clone();
        self.inner.pool.run(what, move || work(&engine)).await
    }

    /// [`Self::call`] as the future a store method returns: a read, or a write that need not
    /// wait for the disk (durable writes call [`Self::durable`] after it).
    fn run<T: Send + 'static>(
        &self,
        what: &'static str,
        work: impl FnOnce(&Engine) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<'_, T> {
        Box::pin(self.call(what, work))
    }

    /// Sweeps a tree of single-key records in batches of [`SWEEP_BATCH`], each its own pool call,
    /// removing those `expired` says are; returns how many it removed.
    async fn sweep_tree(
        &self,
        what: &'static str,
        tree: fn(&Engine) -> &Tree,
        expired: impl Fn(&[u8]) -> Result<bool, StoreError> + Clone + Send + 'static,
    ) -> Result<u64, StoreError> {
        let mut removed = 0;
        let mut after: Option<IVec> = None;
        loop {
            let (cursor, expired) = (after.take(), expired.clone());
            let batch = self
                .call(what, move |e| {
                    e.sweep_singles(tree(e), cursor, SWEEP_BATCH, expired)
                })
                .await?;
            removed += batch.removed;
            match batch.next {
                Some(next) => after = Some(next),
                None => return Ok(removed),
            }
        }
    }

    /// Runs the writer of the queued new sessions on the pool ([`inserts`]): one transaction per
    /// pool call, each starting the next while sessions wait.
    fn write_inserts(&self) {
        let store = self.clone();
        let started = self.inner.pool.spawn(inserts::CREATE_SESSION, move || {
            if store.inner.inserts.write_batch(&store.inner.engine) {
                store.write_inserts();
            }
        });
        if let Err(error) = started {
            self.inner.inserts.abandon(&error);
        }
    }

    /// Waits until every write so far is on disk (group commit, see [`flusher`]).
    async fn durable(&self) -> Result<(), StoreError> {
        self.inner.commit.durable().await
    }

    /// What each tree holds: its records and their key and value bytes (the benchmarks' breakdown
    /// of the folder's size; reads every record, so not for a serving daemon's hot path).
    pub fn census(&self) -> Result<Vec<TreeCensus>, StoreError> {
        let db = &self.inner.engine.db;
        let mut census = Vec::new();
        for name in db.tree_names() {
            let tree = db.open_tree(&name)?;
            let mut counted = TreeCensus {
                tree: String::from_utf8_lossy(&name).into_owned(),
                ..TreeCensus::default()
            };
            for entry in tree.iter() {
                let (key, value) = entry?;
                counted.records += 1;
                counted.key_bytes += key.len() as u64;
                counted.value_bytes += value.len() as u64;
            }
            census.push(counted);
        }
        Ok(census)
    }

    /// Test hook: holds the flusher (as a hung sled flush would) until released.
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn hold_flushes(&self, held: bool) {
        self.inner.commit.hold(held);
    }
}

/// Makes the folder 0700 and everything in it owner-only (0700 folders, 0600 files), changing
/// only what differs, so that calling it again writes nothing.
fn secure_folder(path: &Path) -> std::io::Result<()> {
    let set = |path: &Path, mode: u32| -> std::io::Result<()> {
        let permissions = std::fs::symlink_metadata(path)?.permissions();
        if permissions.mode() & 0o7777 != mode {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        }
        Ok(())
    };
    set(path, 0o700)?;
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let secured = match entry.file_type()? {
            kind if kind.is_dir() => secure_folder(&entry.path()),
            kind if kind.is_file() => set(&entry.path(), 0o600),
            _ => Ok(()),
        };
        match secured {
            // An import part deleted meanwhile.
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}

impl SessionStore for SledStore {
    fn create_session<'a>(&'a self, session: &'a Session) -> StoreFuture<'a, ()> {
        let session = session.clone();
        Box::pin(async move {
            let (answer, answered) = tokio::sync::oneshot::channel();
            if self.inner.inserts.push(session, answer) {
                self.write_inserts();
            }
            answered
                .await
                .map_err(|_| StoreError::panicked(inserts::CREATE_SESSION))??;
            self.durable().await
        })
    }

    fn get_session<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Session>> {
        let id = id.clone();
        let now = self.now();
        self.run("get session", move |e| {
            e.read_session(id.as_str().as_bytes(), now)
        })
    }

    fn sessions_by_token<'a>(&'a self, hash: &'a TokenHash) -> StoreFuture<'a, Vec<Session>> {
        let hash = hash.clone();
        let now = self.now();
        self.run("sessions by token", move |e| {
            e.sessions_in_index(&e.trees.aliases, hash.as_str(), now)
        })
    }

    fn replace_session<'a>(&'a self, session: &'a Session) -> StoreFuture<'a, CasOutcome> {
        let session = session.clone();
        let now = self.now();
        Box::pin(async move {
            let outcome = self
                .call("replace session", move |e| e.replace_session(&session, now))
                .await?;
            if matches!(outcome, CasOutcome::Written(_)) {
                self.durable().await?;
            }
            Ok(outcome)
        })
    }

    fn delete_session<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Session>> {
        let id = id.clone();
        let now = self.now();
        Box::pin(async move {
            let removed = self
                .call("delete session", move |e| e.remove_session(&id, now, None))
                .await?;
            if removed.is_some() {
                self.durable().await?;
            }
            Ok(removed.filter(|s| s.is_live(now)))
        })
    }

    fn sessions_of<'a>(&'a self, sub: &'a str) -> StoreFuture<'a, Vec<Session>> {
        let sub = sub.to_owned();
        let now = self.now();
        self.run("sessions of a user", move |e| {
            let mut sessions = Vec::new();
            for id in e.session_ids_of(&sub)? {
                sessions.extend(e.read_session(id.as_str().as_bytes(), now)?);
            }
            Ok(sessions)
        })
    }

    fn sessions_of_auth0_session<'a>(
        &'a self,
        hash: &'a Auth0SessionHash,
    ) -> StoreFuture<'a, Vec<Session>> {
        let hash = hash.clone();
        let now = self.now();
        self.run("sessions of an Auth0 session", move |e| {
            e.sessions_in_index(&e.trees.auth0_sessions, hash.as_str(), now)
        })
    }

    fn delete_sessions_of<'a>(&'a self, sub: &'a str) -> StoreFuture<'a, Vec<Session>> {
        let sub = sub.to_owned();
        let now = self.now();
        Box::pin(async move {
            let removed = self
                .call("delete sessions of a user", move |e| {
                    let mut removed = Vec::new();
                    for id in e.session_ids_of(&sub)? {
                        removed
                            .extend(e.remove_session(&id, now, None)?.filter(|s| s.is_live(now)));
                    }
                    Ok(removed)
                })
                .await?;
            self.durable().await?;
            Ok(removed)
        })
    }

    fn active_subs(&self) -> StoreFuture<'_, Vec<String>> {
        let now = self.now();
        self.run("active users", move |e| {
            let mut subs: Vec<String> = Vec::new();
            for entry in e.trees.subs.iter() {
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
        let now = self.now();
        // The records counted as they were written, less those expired and not yet swept
        // (one sweep interval's worth): no scan of the live sessions.
        self.run("count live sessions", move |e| {
            let mut count: i64 = 0;
            for shard in e.trees.counts.iter().values() {
                count = count.saturating_add(parse_count(&shard?)?);
            }
            let end = time_bytes(now.saturating_add(Duration::from_millis(1)));
            for key in e.trees.expiry.range(..end).keys() {
                key?;
                count -= 1;
            }
            Ok(u64::try_from(count).unwrap_or(0))
        })
    }
}

impl StateStore for SledStore {
    fn put_state<'a>(&'a self, record: &'a StateRecord) -> StoreFuture<'a, bool> {
        let record = record.clone();
        let now = self.now();
        // Not waited to disk: a state lives for minutes, and losing it to a crash costs the user
        // a retry of the login, while an fsync per anonymous `/authorize` would let anyone slow
        // every real login down.
        self.run("put state", move |e| e.insert_state(&record, now))
    }

    fn take_state<'a>(&'a self, state: &'a str) -> StoreFuture<'a, Option<StateRecord>> {
        let state = state.to_owned();
        let now = self.now();
        // Not waited to disk either: a crash may bring a taken state back, but its code was
        // already redeemed, and Auth0 refuses a code twice.
        self.run("take state", move |e| {
            // `remove` is atomic: of concurrent takes, one gets the value, the others `None`.
            live_state(e.trees.states.remove(state.as_bytes())?, now)
        })
    }

    fn get_state<'a>(&'a self, state: &'a str) -> StoreFuture<'a, Option<StateRecord>> {
        let state = state.to_owned();
        let now = self.now();
        self.run("get state", move |e| {
            live_state(e.trees.states.get(state.as_bytes())?, now)
        })
    }

    fn take_state_if<'a>(&'a self, record: &'a StateRecord) -> StoreFuture<'a, bool> {
        let expected = record.clone();
        let now = self.now();
        // Not waited to disk, like `take_state`.
        self.run("take state", move |e| {
            loop {
                let Some(bytes) = e.trees.states.get(expected.state.as_bytes())? else {
                    return Ok(false);
                };
                let current: StateRecord = decode("state record", &bytes)?;
                if current != expected || !current.is_live(now) {
                    return Ok(false);
                }
                // Removes exactly the bytes read: a concurrent take or replacement makes the
                // swap fail, and the loop reads again.
                let swapped = e.trees.states.compare_and_swap(
                    expected.state.as_bytes(),
                    Some(bytes),
                    None as Option<&[u8]>,
                )?;
                if swapped.is_ok() {
                    return Ok(true);
                }
            }
        })
    }
}

impl JobStore for SledStore {
    fn put_job<'a>(&'a self, job: &'a JobRecord) -> StoreFuture<'a, ()> {
        let job = job.clone();
        Box::pin(async move {
            self.call("put job", move |e| e.write_job(&job)).await?;
            self.durable().await
        })
    }

    fn replace_job<'a>(&'a self, job: &'a JobRecord) -> StoreFuture<'a, JobCas> {
        let job = job.clone();
        Box::pin(async move {
            let outcome = self
                .call("replace job", move |e| e.replace_job_record(&job))
                .await?;
            if matches!(outcome, JobCas::Written(_)) {
                self.durable().await?;
            }
            Ok(outcome)
        })
    }

    fn put_job_part<'a>(&'a self, part: JobPart<'a>, users: &'a [u8]) -> StoreFuture<'a, ()> {
        let (job_id, number, users) = (part.job_id.to_owned(), part.number, users.to_vec());
        // Durable on return: the file and its folder are synced.
        self.run("put job part", move |e| {
            e.parts.put(&job_id, number, &users)
        })
    }

    fn get_job_part<'a>(&'a self, part: JobPart<'a>) -> StoreFuture<'a, Option<Vec<u8>>> {
        let (job_id, number) = (part.job_id.to_owned(), part.number);
        self.run("get job part", move |e| e.parts.get(&job_id, number))
    }

    fn delete_job_part<'a>(&'a self, part: JobPart<'a>) -> StoreFuture<'a, ()> {
        let (job_id, number) = (part.job_id.to_owned(), part.number);
        self.run("delete job part", move |e| e.parts.delete(&job_id, number))
    }

    fn get_job<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<JobRecord>> {
        let id = id.to_owned();
        self.run("get job", move |e| e.read_job(&id))
    }

    fn list_jobs<'a>(
        &'a self,
        limit: usize,
        before: Option<&'a JobCursor>,
    ) -> StoreFuture<'a, Vec<JobRecord>> {
        let end = before.map(|cursor| match &cursor.id {
            Some(id) => created_key(cursor.created_at, id),
            None => time_bytes(cursor.created_at).to_vec(),
        });
        self.run("list jobs", move |e| e.newest_jobs(limit, end))
    }

    fn unfinished_jobs(&self) -> StoreFuture<'_, Vec<JobRecord>> {
        self.run("unfinished jobs", |e| {
            let mut jobs: Vec<JobRecord> = e
                .all_jobs()?
                .into_iter()
                .filter(|job| !job.status.is_final())
                .collect();
            jobs.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
            Ok(jobs)
        })
    }

    fn delete_finished_jobs(&self, finished_before: Timestamp) -> StoreFuture<'_, u64> {
        self.run("delete finished jobs", move |e| {
            e.remove_finished_jobs(finished_before)
        })
    }
}

impl LeaseStore for SledStore {
    fn try_lease<'a>(&'a self, claim: LeaseClaim<'a>, ttl: Duration) -> StoreFuture<'a, bool> {
        let (key, holder) = (claim.key.to_owned(), claim.holder.to_owned());
        let now = self.now();
        self.run("take lease", move |e| e.lease(&key, &holder, ttl, now))
    }

    fn release_lease<'a>(&'a self, claim: LeaseClaim<'a>) -> StoreFuture<'a, bool> {
        let (key, holder) = (claim.key.to_owned(), claim.holder.to_owned());
        let now = self.now();
        self.run("release lease", move |e| e.unlease(&key, &holder, now))
    }
}

impl Store for SledStore {
    fn sweep(&self) -> StoreFuture<'_, SweepReport> {
        let now = self.now();
        Box::pin(async move {
            let mut report = SweepReport::default();
            // In batches, each its own pool call, so the sweep shares the store with requests.
            loop {
                let removed = self
                    .call("sweep sessions", move |e| {
                        e.sweep_sessions(now, SWEEP_BATCH)
                    })
                    .await?;
                report.sessions += removed.done;
                if !removed.more {
                    break;
                }
            }
            report.states = self
                .sweep_tree(
                    "sweep states",
                    |e| &e.trees.states,
                    move |bytes| {
                        decode::<StateRecord>("state record", bytes).map(|r| !r.is_live(now))
                    },
                )
                .await?;
            report.leases = self
                .sweep_tree(
                    "sweep leases",
                    |e| &e.trees.leases,
                    move |bytes| decode::<Lease>("lease", bytes).map(|l| now >= l.expires_at),
                )
                .await?;
            if let Some(path) = &self.inner.path
                && let Err(error) = secure_folder(path)
            {
                tracing::warn!(%error, "cannot keep the session folder owner-only");
            }
            Ok(report)
        })
    }

    fn writable(&self) -> StoreFuture<'_, ()> {
        self.run("ping", |e| {
            e.db.get(LAYOUT_KEY)?;
            Ok(())
        })
    }

    fn flush(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move { self.durable().await })
    }

    fn stalled(&self) -> Option<String> {
        self.inner.stall_report()
    }

    fn flush_counts(&self) -> Option<super::FlushCounts> {
        Some(self.inner.commit.counts())
    }
}

/// What one sled tree holds ([`SledStore::census`]).
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct TreeCensus {
    pub tree: String,
    pub records: u64,
    pub key_bytes: u64,
    pub value_bytes: u64,
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
