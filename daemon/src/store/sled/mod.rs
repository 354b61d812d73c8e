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

mod flusher;
mod parts;
mod pool;
mod record;

use std::fs::{File, TryLockError};
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt as _;
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

use self::flusher::GroupCommit;
use self::parts::PartFiles;
use self::pool::BlockingPool;
use super::{
    Auth0SessionHash, CasOutcome, JobCas, JobCursor, JobRecord, JobStore, LeaseStore, Session,
    SessionId, SessionStore, StateRecord, StateStore, Store, StoreError, StoreFuture, SweepReport,
    Timestamp, TokenHash,
};
use crate::clock::Clock;

/// The name of the lock file this module keeps in the folder.
const LOCK_FILE: &str = "auth0-client.lock";
/// Key of the layout version in sled's default tree; bumped when the layout changes.
const LAYOUT_KEY: &[u8] = b"auth0-client.layout";
const LAYOUT_VERSION: &[u8] = b"3";
/// Layout 1 indexed one session per access token (`hash` → id); layout 2 keys the index by
/// `hash ‖ id`, since one access token may belong to several sessions. Migrated at open.
const LAYOUT_V1: &[u8] = b"1";
/// Layout 2: no `session_counts` yet.
const LAYOUT_V2: &[u8] = b"2";
/// Shards of the session count: a session counts in the shard its key picks, so concurrent
/// logins seldom touch the same count (sled retries a transaction whose keys another changed).
const COUNT_SHARDS: u16 = 1024;
/// Length of a [`TokenHash`] in an index key (hex SHA-256).
const HASH_LEN: usize = 64;
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

#[derive(Clone)]
struct Trees {
    sessions: Tree,
    aliases: Tree,
    subs: Tree,
    expiry: Tree,
    auth0_sessions: Tree,
    states: Tree,
    jobs: Tree,
    jobs_by_created: Tree,
    leases: Tree,
    counts: Tree,
}

impl Trees {
    fn open(db: &Db) -> Result<Self, ::sled::Error> {
        Ok(Self {
            sessions: db.open_tree("sessions")?,
            aliases: db.open_tree("session_aliases")?,
            subs: db.open_tree("session_subs")?,
            expiry: db.open_tree("session_expiry")?,
            auth0_sessions: db.open_tree("session_auth0_sessions")?,
            states: db.open_tree("states")?,
            jobs: db.open_tree("jobs")?,
            jobs_by_created: db.open_tree("jobs_by_created")?,
            leases: db.open_tree("leases")?,
            counts: db.open_tree(COUNTS_TREE)?,
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

const COUNTS_TREE: &str = "session_counts";

/// Layout 1 → 2: each alias entry `hash` → id becomes `hash ‖ id` → empty.
fn migrate_v1_aliases(db: &Db) -> Result<(), StoreError> {
    let aliases = db.open_tree("session_aliases")?;
    for entry in aliases.iter() {
        let (key, id) = entry?;
        if key.len() == HASH_LEN {
            aliases.insert([key.as_ref(), id.as_ref()].concat(), &[][..])?;
            aliases.remove(&key)?;
        }
    }
    Ok(())
}

/// Layout 2 → 3: the sessions are counted once, into the first shard of `session_counts`.
fn migrate_v2_counts(db: &Db) -> Result<(), StoreError> {
    let mut count: i64 = 0;
    for key in db.open_tree("sessions")?.iter().keys() {
        key?;
        count += 1;
    }
    db.open_tree(COUNTS_TREE)?
        .insert(0u16.to_be_bytes(), &count.to_be_bytes()[..])?;
    db.insert(LAYOUT_KEY, LAYOUT_VERSION)?;
    db.flush()?;
    Ok(())
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

impl Engine {
    // Sessions.

    fn read_session(&self, id: &[u8], now: Timestamp) -> Result<Option<Session>, StoreError> {
        let Some(bytes) = self.trees.sessions.get(id)? else {
            return Ok(None);
        };
        let session = record::decode_session(&bytes)?;
        Ok(session.is_live(now).then_some(session))
    }

    /// Runs `work` in one sled transaction over the session tree and its index trees.
    fn session_transaction<T>(
        &self,
        work: impl Fn(&TransactionalTree, &Index<'_>) -> ConflictableTransactionResult<T, StoreError>,
    ) -> Result<T, StoreError> {
        let t = &self.trees;
        let result = (
            &t.sessions,
            &t.aliases,
            &t.subs,
            &t.expiry,
            &t.auth0_sessions,
            &t.counts,
        )
            .transaction(|(sessions, aliases, subs, expiry, auth0, counts)| {
                let index = Index {
                    aliases,
                    subs,
                    expiry,
                    auth0,
                    counts,
                };
                work(sessions, &index)
            });
        transaction_result(result)
    }

    /// Writes a new session and its index entries in one transaction.
    fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
        let id = session.id.as_str().as_bytes();
        let value = record::encode_session(session)?;
        self.session_transaction(|sessions, index| {
            if let Some(bytes) = sessions.get(id)? {
                let previous = record::decode_session(&bytes).map_err(abort)?;
                remove_session_entries(&previous, index)?;
            } else {
                count_session(index, id, 1)?;
            }
            add_session_entries(session, index)?;
            sessions.insert(id, value.as_slice())?;
            Ok(())
        })
    }

    /// Compare-and-swap: writes `session` with its revision bumped when the live stored record
    /// has `session.revision`, moving the index entries that changed.
    fn replace_session(&self, session: &Session, now: Timestamp) -> Result<CasOutcome, StoreError> {
        let id = session.id.as_str().as_bytes();
        let mut next = session.clone();
        next.revision = session.revision.wrapping_add(1);
        let value = record::encode_session(&next)?;
        self.session_transaction(|sessions, index| {
            let Some(bytes) = sessions.get(id)? else {
                return Ok(CasOutcome::Gone);
            };
            let previous = record::decode_session(&bytes).map_err(abort)?;
            if !previous.is_live(now) {
                return Ok(CasOutcome::Gone);
            }
            if previous.revision != session.revision {
                return Ok(CasOutcome::Conflict(Box::new(previous)));
            }
            remove_session_entries(&previous, index)?;
            add_session_entries(&next, index)?;
            sessions.insert(id, value.as_slice())?;
            Ok(CasOutcome::Written(Box::new(next.clone())))
        })
    }

    /// Every live session indexed under the access-token hash `hash`.
    fn sessions_by_token(
        &self,
        hash: &TokenHash,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        let mut sessions = Vec::new();
        for key in self.trees.aliases.scan_prefix(hash.as_str()).keys() {
            let key = key?;
            let id = key.get(HASH_LEN..).unwrap_or_default();
            sessions.extend(self.read_session(id, now)?);
        }
        Ok(sessions)
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
        self.session_transaction(|sessions, index| {
            if let Some(stale) = only_expired {
                index.expiry.remove(stale)?;
            }
            let Some(bytes) = sessions.get(key)? else {
                return Ok(None);
            };
            let session = record::decode_session(&bytes).map_err(abort)?;
            if only_expired.is_some() && session.is_live(now) {
                return Ok(None);
            }
            remove_session_entries(&session, index)?;
            count_session(index, key, -1)?;
            sessions.remove(key)?;
            Ok(Some(session))
        })
    }

    /// Every live session indexed under the Auth0 session hash `hash`.
    fn sessions_of_auth0_session(
        &self,
        hash: &Auth0SessionHash,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        let mut sessions = Vec::new();
        for key in self.trees.auth0_sessions.scan_prefix(hash.as_str()).keys() {
            let key = key?;
            let id = key.get(HASH_LEN..).unwrap_or_default();
            sessions.extend(self.read_session(id, now)?);
        }
        Ok(sessions)
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

    /// Removes up to `limit` sessions expired at `now`, oldest first, with their index entries.
    /// A record that does not decode is logged and its expiry key dropped, rather than stopping
    /// every later sweep; an outage stops the sweep.
    fn sweep_sessions(&self, now: Timestamp, limit: usize) -> Result<SessionBatch, StoreError> {
        let end = time_bytes(now.saturating_add(Duration::from_millis(1)));
        let expired: Vec<IVec> = self
            .trees
            .expiry
            .range(..end)
            .keys()
            .take(limit)
            .collect::<Result<_, _>>()?;
        let mut batch = SessionBatch {
            done: 0,
            more: expired.len() == limit,
        };
        for key in expired {
            let removed = parse_session_id(key.get(8..).unwrap_or_default())
                .and_then(|id| self.remove_session(&id, now, Some(&key)));
            match removed {
                Ok(Some(_)) => batch.done += 1,
                Ok(None) => {}
                Err(error) if error.is_unavailable() => return Err(error),
                Err(error) => {
                    tracing::warn!(error = %error, "the sweeper skipped a session");
                    self.trees.expiry.remove(&key)?;
                }
            }
        }
        Ok(batch)
    }

    /// Scans up to `limit` records of `tree` after `after` and removes those `expired` says are
    /// (with compare-and-swap, so a record rewritten meanwhile stays). Records that do not decode
    /// are logged and left for an operator.
    fn sweep_singles(
        &self,
        tree: &Tree,
        after: Option<IVec>,
        limit: usize,
        expired: impl Fn(&[u8]) -> Result<bool, StoreError>,
    ) -> Result<SinglesBatch, StoreError> {
        let entries = match &after {
            Some(after) => tree.range::<&[u8], _>((
                std::ops::Bound::Excluded(after.as_ref()),
                std::ops::Bound::Unbounded,
            )),
            None => tree.iter(),
        };
        let mut batch = SinglesBatch {
            removed: 0,
            next: None,
        };
        for (seen, entry) in entries.enumerate() {
            let (key, bytes) = entry?;
            match expired(&bytes) {
                Ok(true) => {
                    if remove_if_unchanged(tree, &key, &bytes)? {
                        batch.removed += 1;
                    }
                }
                Ok(false) => {}
                Err(error) if error.is_unavailable() => return Err(error),
                Err(error) => tracing::warn!(error = %error, "the sweeper skipped a record"),
            }
            if seen + 1 >= limit {
                batch.next = Some(key);
                break;
            }
        }
        Ok(batch)
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

    /// Compare-and-swap on `revision` (see [`JobStore::replace_job`]).
    fn replace_job_record(&self, job: &JobRecord) -> Result<JobCas, StoreError> {
        let id = job.id.as_bytes();
        let mut next = job.clone();
        next.revision = job.revision.wrapping_add(1);
        let value = encode("job record", &next)?;
        let index_key = created_key(job.created_at, &job.id);
        let written =
            (&self.trees.jobs, &self.trees.jobs_by_created).transaction(|(jobs, index)| {
                let Some(bytes) = jobs.get(id)? else {
                    return Ok(JobCas::Gone);
                };
                let current: JobRecord = decode("job record", &bytes).map_err(abort)?;
                if current.revision != job.revision {
                    return Ok(JobCas::Conflict(Box::new(current)));
                }
                index.remove(created_key(current.created_at, &current.id))?;
                index.insert(index_key.as_slice(), &[][..])?;
                jobs.insert(id, value.as_slice())?;
                Ok(JobCas::Written(Box::new(next.clone())))
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
        end: Option<Vec<u8>>,
    ) -> Result<Vec<JobRecord>, StoreError> {
        // Index keys are `created_at ‖ id`: everything below the cursor's key, newest first.
        let keys = match end {
            Some(end) => self.trees.jobs_by_created.range(..end),
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
                self.parts.delete_job(&job.id)?;
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
        let session = session.clone();
        Box::pin(async move {
            self.call("create session", move |e| e.insert_session(&session))
                .await?;
            self.durable().await
        })
    }

    fn get_session<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Session>> {
        let id = id.clone();
        let now = self.now();
        Box::pin(async move {
            self.call("get session", move |e| {
                e.read_session(id.as_str().as_bytes(), now)
            })
            .await
        })
    }

    fn sessions_by_token<'a>(&'a self, hash: &'a TokenHash) -> StoreFuture<'a, Vec<Session>> {
        let hash = hash.clone();
        let now = self.now();
        Box::pin(async move {
            self.call("sessions by token", move |e| {
                e.sessions_by_token(&hash, now)
            })
            .await
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
        Box::pin(async move {
            self.call("sessions of a user", move |e| {
                let mut sessions = Vec::new();
                for id in e.session_ids_of(&sub)? {
                    sessions.extend(e.read_session(id.as_str().as_bytes(), now)?);
                }
                Ok(sessions)
            })
            .await
        })
    }

    fn sessions_of_auth0_session<'a>(
        &'a self,
        hash: &'a Auth0SessionHash,
    ) -> StoreFuture<'a, Vec<Session>> {
        let hash = hash.clone();
        let now = self.now();
        Box::pin(async move {
            self.call("sessions of an Auth0 session", move |e| {
                e.sessions_of_auth0_session(&hash, now)
            })
            .await
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
        Box::pin(async move {
            self.call("active users", move |e| {
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
            .await
        })
    }

    fn count_live_sessions(&self) -> StoreFuture<'_, u64> {
        let now = self.now();
        Box::pin(async move {
            // The records counted as they were written, less those expired and not yet swept
            // (one sweep interval's worth): no scan of the live sessions.
            self.call("count live sessions", move |e| {
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
            .await
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
        Box::pin(async move {
            self.call("put state", move |e| e.insert_state(&record, now))
                .await
        })
    }

    fn take_state<'a>(&'a self, state: &'a str) -> StoreFuture<'a, Option<StateRecord>> {
        let state = state.to_owned();
        let now = self.now();
        // Not waited to disk either: a crash may bring a taken state back, but its code was
        // already redeemed, and Auth0 refuses a code twice.
        Box::pin(async move {
            self.call("take state", move |e| {
                // `remove` is atomic: of concurrent takes, one gets the value, the others `None`.
                live_state(e.trees.states.remove(state.as_bytes())?, now)
            })
            .await
        })
    }

    fn get_state<'a>(&'a self, state: &'a str) -> StoreFuture<'a, Option<StateRecord>> {
        let state = state.to_owned();
        let now = self.now();
        Box::pin(async move {
            self.call("get state", move |e| {
                live_state(e.trees.states.get(state.as_bytes())?, now)
            })
            .await
        })
    }

    fn take_state_if<'a>(&'a self, record: &'a StateRecord) -> StoreFuture<'a, bool> {
        let expected = record.clone();
        let now = self.now();
        // Not waited to disk, like `take_state`.
        Box::pin(async move {
            self.call("take state", move |e| {
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
            .await
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

    fn put_job_part<'a>(
        &'a self,
        job_id: &'a str,
        part: u32,
        users: &'a [u8],
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let (job_id, users) = (job_id.to_owned(), users.to_vec());
            // Durable on return: the file and its folder are synced.
            self.call("put job part", move |e| e.parts.put(&job_id, part, &users))
                .await
        })
    }

    fn get_job_part<'a>(&'a self, job_id: &'a str, part: u32) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let job_id = job_id.to_owned();
            self.call("get job part", move |e| e.parts.get(&job_id, part))
                .await
        })
    }

    fn delete_job_part<'a>(&'a self, job_id: &'a str, part: u32) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let job_id = job_id.to_owned();
            self.call("delete job part", move |e| e.parts.delete(&job_id, part))
                .await
        })
    }

    fn get_job<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<JobRecord>> {
        let id = id.to_owned();
        Box::pin(async move { self.call("get job", move |e| e.read_job(&id)).await })
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
        Box::pin(async move {
            self.call("list jobs", move |e| e.newest_jobs(limit, end))
                .await
        })
    }

    fn unfinished_jobs(&self) -> StoreFuture<'_, Vec<JobRecord>> {
        Box::pin(async move {
            self.call("unfinished jobs", |e| {
                let mut jobs: Vec<JobRecord> = e
                    .all_jobs()?
                    .into_iter()
                    .filter(|job| !job.status.is_final())
                    .collect();
                jobs.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
                Ok(jobs)
            })
            .await
        })
    }

    fn delete_finished_jobs(&self, finished_before: Timestamp) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            self.call("delete finished jobs", move |e| {
                e.remove_finished_jobs(finished_before)
            })
            .await
        })
    }
}

impl LeaseStore for SledStore {
    fn try_lease<'a>(
        &'a self,
        key: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        let (key, holder) = (key.to_owned(), holder.to_owned());
        let now = self.now();
        Box::pin(async move {
            self.call("take lease", move |e| e.lease(&key, &holder, ttl, now))
                .await
        })
    }

    fn release_lease<'a>(&'a self, key: &'a str, holder: &'a str) -> StoreFuture<'a, bool> {
        let (key, holder) = (key.to_owned(), holder.to_owned());
        let now = self.now();
        Box::pin(async move {
            self.call("release lease", move |e| e.unlease(&key, &holder, now))
                .await
        })
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
        Box::pin(async move {
            self.call("ping", |e| {
                e.db.get(LAYOUT_KEY)?;
                Ok(())
            })
            .await
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

/// One batch of the session sweep: how many it removed, and whether expired keys remain.
struct SessionBatch {
    done: u64,
    more: bool,
}

/// One batch of a sweep over single-key records: how many it removed, and the last key it saw
/// when the tree goes on after it.
struct SinglesBatch {
    removed: u64,
    next: Option<IVec>,
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

/// The index trees of sessions, inside a transaction.
struct Index<'t> {
    aliases: &'t TransactionalTree,
    subs: &'t TransactionalTree,
    expiry: &'t TransactionalTree,
    auth0: &'t TransactionalTree,
    /// The sharded count of the `sessions` tree's records.
    counts: &'t TransactionalTree,
}

/// Removes the session's index entries (not the record) inside a transaction.
fn remove_session_entries(
    session: &Session,
    index: &Index<'_>,
) -> ConflictableTransactionResult<(), StoreError> {
    let id = session.id.as_str().as_bytes();
    for hash in session.alias_hashes() {
        index.aliases.remove(alias_key(&hash, id))?;
    }
    index.subs.remove(sub_key(&session.sub, &session.id))?;
    index.expiry.remove(expiry_key(session.expires_at, id))?;
    if let Some(hash) = &session.auth0_session {
        index.auth0.remove(auth0_session_key(hash, id))?;
    }
    Ok(())
}

/// Adds the session's index entries inside a transaction.
fn add_session_entries(
    session: &Session,
    index: &Index<'_>,
) -> ConflictableTransactionResult<(), StoreError> {
    let id = session.id.as_str().as_bytes();
    for hash in session.alias_hashes() {
        index.aliases.insert(alias_key(&hash, id), &[][..])?;
    }
    index.subs.insert(
        sub_key(&session.sub, &session.id),
        &time_bytes(session.expires_at)[..],
    )?;
    index
        .expiry
        .insert(expiry_key(session.expires_at, id), &[][..])?;
    if let Some(hash) = &session.auth0_session {
        index.auth0.insert(auth0_session_key(hash, id), &[][..])?;
    }
    Ok(())
}

/// Adds `delta` to the count shard of the session `id`, inside a transaction.
fn count_session(
    index: &Index<'_>,
    id: &[u8],
    delta: i64,
) -> ConflictableTransactionResult<(), StoreError> {
    let shard = (id
        .iter()
        .fold(0u16, |h, b| h.wrapping_mul(31).wrapping_add(u16::from(*b)))
        % COUNT_SHARDS)
        .to_be_bytes();
    let count = match index.counts.get(shard)? {
        Some(bytes) => parse_count(&bytes).map_err(abort)?,
        None => 0,
    };
    index
        .counts
        .insert(&shard, &count.saturating_add(delta).to_be_bytes()[..])?;
    Ok(())
}

fn parse_count(bytes: &[u8]) -> Result<i64, StoreError> {
    let bytes: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("a session count is not 8 bytes".into()))?;
    Ok(i64::from_be_bytes(bytes))
}

fn auth0_session_key(hash: &Auth0SessionHash, id: &[u8]) -> Vec<u8> {
    [hash.as_str().as_bytes(), id].concat()
}

fn alias_key(hash: &TokenHash, id: &[u8]) -> Vec<u8> {
    [hash.as_str().as_bytes(), id].concat()
}

fn remove_if_unchanged(tree: &Tree, key: &[u8], value: &IVec) -> Result<bool, StoreError> {
    Ok(tree
        .compare_and_swap(key, Some(value), None::<&[u8]>)?
        .is_ok())
}

/// The state record in `bytes`, when there is one and it is live at `now`.
fn live_state(bytes: Option<IVec>, now: Timestamp) -> Result<Option<StateRecord>, StoreError> {
    let Some(bytes) = bytes else {
        return Ok(None);
    };
    let record: StateRecord = decode("state record", &bytes)?;
    Ok(record.is_live(now).then_some(record))
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
        clock: Clock,
    }

    fn fixture() -> SledFixture {
        SledFixture {
            dir: tempfile::tempdir().expect("a temporary folder"),
            clock: Clock::manual(),
        }
    }

    impl Fixture for SledFixture {
        fn open(&self) -> StoreFuture<'_, Arc<dyn Store>> {
            Box::pin(async move {
                let options = SledOptions {
                    clock: self.clock.clone(),
                    ..SledOptions::default()
                };
                Ok(Arc::new(SledStore::open(self.dir.path(), options)?) as Arc<dyn Store>)
            })
        }

        fn clock(&self) -> &Clock {
            &self.clock
        }
    }

    /// A temporary store on a manual clock.
    fn temporary() -> (SledStore, Clock) {
        let clock = Clock::manual();
        let options = SledOptions {
            clock: clock.clone(),
            ..SledOptions::default()
        };
        (
            SledStore::open_temporary_with(options).expect("open"),
            clock,
        )
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
        let t = &store.inner.engine.trees;
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
        let first = SledStore::open(dir.path(), SledOptions::default()).expect("first open");
        let second = SledStore::open(dir.path(), SledOptions::default());
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
        SledStore::open(dir.path(), SledOptions::default())
            .expect("the folder opens once released");
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
        let _store =
            SledStore::open(&path, SledOptions::default()).expect("the child opens the folder");
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
        let refused = SledStore::open(dir.path(), SledOptions::default());
        drop(child.stdin.take());
        // Read the child's last words, so it does not fail writing to a closed pipe.
        lines.for_each(drop);
        let status = child.wait().expect("the child exits");
        assert!(holding, "the child never held the folder ({status})");
        let Err(error) = refused else {
            panic!("the folder opened while another process held it");
        };
        assert!(matches!(error, StoreError::InUse { .. }), "{error:?}");
        SledStore::open(dir.path(), SledOptions::default())
            .expect("the folder opens once the other process exited");
    }

    #[tokio::test]
    async fn sweep_leaves_no_index_entry_behind() {
        let (store, clock) = temporary();
        let short = session("auth0|s", "short", Duration::from_millis(200));
        let long = session("auth0|s", "long", Duration::from_secs(3_600));
        store.create_session(&short).await.expect("create");
        store.create_session(&long).await.expect("create");
        assert_eq!(tree_sizes(&store), [2, 2, 2, 2]);

        clock.advance(Duration::from_millis(300));
        let report = store.sweep().await.expect("sweep");
        assert_eq!(report.sessions, 1);
        assert_eq!(tree_sizes(&store), [1, 1, 1, 1]);
        store.delete_session(&long.id).await.expect("delete");
        assert_eq!(tree_sizes(&store), [0, 0, 0, 0]);
    }

    #[tokio::test]
    async fn a_sweep_does_not_remove_a_session_extended_since_its_expiry_key_was_read() {
        let (store, clock) = temporary();
        let mut extended = session("auth0|e", "e", Duration::from_millis(100));
        store.create_session(&extended).await.expect("create");
        let stale_key = expiry_key(extended.expires_at, extended.id.as_str().as_bytes());
        extended.expires_at = Timestamp::now().saturating_add(Duration::from_secs(3_600));
        let CasOutcome::Written(extended) =
            store.replace_session(&extended).await.expect("replace")
        else {
            panic!("not written");
        };
        let extended = *extended;
        clock.advance(Duration::from_millis(150));

        let removed = store
            .inner
            .engine
            .remove_session(&extended.id, clock.now(), Some(&stale_key))
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
        assert!(matches!(
            store.replace_session(&s).await.expect("replace"),
            CasOutcome::Written(_)
        ));
        assert_eq!(tree_sizes(&store), [1, 2, 1, 1]);
    }

    #[tokio::test]
    async fn a_corrupt_record_is_reported_as_corruption_not_an_outage() {
        let store = SledStore::open_temporary().expect("open");
        let id = SessionId::generate();
        store
            .inner
            .engine
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
        let (store, clock) = temporary();
        store
            .inner
            .engine
            .trees
            .states
            .insert("broken", &b"{not json"[..])
            .expect("raw insert");
        let short = session("auth0|c", "c", Duration::from_millis(100));
        store.create_session(&short).await.expect("create");
        clock.advance(Duration::from_millis(150));
        let report = store.sweep().await.expect("the sweep goes on");
        assert_eq!(report.sessions, 1);
    }

    /// Many concurrent durable writes against the real backend all finish, sharing flushes
    /// (the pattern that wedged sled's `flush_async` for good).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn many_concurrent_durable_writers_all_finish() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let store = SledStore::open(dir.path(), SledOptions::default()).expect("open");
        let writers: Vec<_> = (0..256)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let s = session(
                        &format!("auth0|{i}"),
                        &format!("a{i}"),
                        Duration::from_secs(60),
                    );
                    store.create_session(&s).await?;
                    store.delete_session(&s.id).await?;
                    store.create_session(&s).await
                })
            })
            .collect();
        let all = futures_util::future::join_all(writers);
        let finished = tokio::time::timeout(Duration::from_secs(60), all)
            .await
            .expect("every writer finishes");
        for writer in finished {
            writer.expect("joined").expect("written");
        }
        assert_eq!(store.count_live_sessions().await.expect("count"), 256);
        assert!(store.stalled().is_none());
    }

    /// A hung flush makes durable writes wait, not hang their callers: a bounded caller gets a
    /// timeout (503), the watchdog reports the stall, non-durable writes and reads go on, and the
    /// writes complete once the flush does.
    #[tokio::test]
    async fn a_hung_flush_is_reported_and_bounded_callers_get_an_outage() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let options = SledOptions {
            stall_after: Duration::from_millis(100),
            ..SledOptions::default()
        };
        let store = SledStore::open(dir.path(), options).expect("open");
        store.hold_flushes(true);
        let s = session("auth0|h", "h", Duration::from_secs(60));
        let answer =
            crate::store::bounded(Duration::from_millis(300), store.create_session(&s)).await;
        assert!(
            answer.as_ref().is_err_and(StoreError::is_unavailable),
            "{answer:?}"
        );
        let why = store.stalled().expect("the watchdog sees the hung flush");
        assert!(why.contains("flush"), "{why}");
        // Reads and state records do not wait for the flusher.
        assert!(store.get_session(&s.id).await.expect("read").is_some());
        store.writable().await.expect("ping");

        store.hold_flushes(false);
        store.create_session(&s).await.expect("durable again");
        assert!(store.stalled().is_none());
    }

    /// Dropping a store whose flush hangs returns at once instead of flushing (sled's `Drop`
    /// would wait for the hung flush, and the process with it).
    #[tokio::test]
    async fn dropping_a_stuck_store_does_not_hang() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let options = SledOptions {
            stall_after: Duration::from_millis(50),
            ..SledOptions::default()
        };
        let store = SledStore::open(dir.path(), options).expect("open");
        store.hold_flushes(true);
        let s = session("auth0|d", "d", Duration::from_secs(60));
        let _ = crate::store::bounded(Duration::from_millis(200), store.create_session(&s)).await;
        assert!(store.stalled().is_some());
        let (done, dropped) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            drop(store);
            let _ = done.send(());
        });
        dropped
            .recv_timeout(Duration::from_secs(5))
            .expect("the drop returned");
    }

    #[test]
    fn the_folder_and_its_files_are_owner_only() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("sessions");
        let store = SledStore::open(&path, SledOptions::default()).expect("open");
        let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o700);
        let mut files = 0;
        for entry in std::fs::read_dir(&path).expect("list") {
            let entry = entry.expect("entry");
            if entry.file_type().expect("type").is_file() {
                files += 1;
                assert_eq!(mode(&entry.path()), 0o600, "{}", entry.path().display());
            }
        }
        assert!(files >= 2, "sled's files and the lock file");
        drop(store);
    }

    #[tokio::test]
    async fn a_sweep_in_batches_removes_every_expired_state() {
        let (store, clock) = temporary();
        let now = Timestamp::now();
        let total = SWEEP_BATCH * 2 + 7;
        for i in 0..total {
            let record = StateRecord {
                state: format!("state-{i}"),
                client: "web".into(),
                redirect: None,
                pkce_verifier: "v".into(),
                nonce: "n".into(),
                binding: String::new(),
                expires_at: if i % 2 == 0 {
                    now.saturating_add(Duration::from_millis(1))
                } else {
                    now.saturating_add(Duration::from_secs(600))
                },
            };
            assert!(store.put_state(&record).await.expect("put"));
        }
        clock.advance(Duration::from_millis(20));
        let report = store.sweep().await.expect("sweep");
        assert_eq!(report.states as usize, total.div_ceil(2));
        assert_eq!(store.inner.engine.trees.states.len(), total / 2);
    }

    /// A folder of layout 1 (one session per access token in the alias index) is migrated at
    /// open, and its sessions are found by token as before.
    #[tokio::test]
    async fn a_layout_1_folder_is_migrated() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let kept = session("auth0|m", "m-1", Duration::from_secs(3_600));
        {
            let store = SledStore::open(dir.path(), SledOptions::default()).expect("open");
            store.create_session(&kept).await.expect("create");
            let engine = &store.inner.engine;
            // Rewrite the index as layout 1 kept it.
            let hash = TokenHash::of("m-1");
            engine
                .trees
                .aliases
                .remove(alias_key(&hash, kept.id.as_str().as_bytes()))
                .expect("remove");
            engine
                .trees
                .aliases
                .insert(hash.as_str(), kept.id.as_str())
                .expect("insert");
            engine.db.insert(LAYOUT_KEY, LAYOUT_V1).expect("layout");
            store.flush().await.expect("flush");
        }
        let store = SledStore::open(dir.path(), SledOptions::default()).expect("reopen");
        let found = store
            .sessions_by_token(&TokenHash::of("m-1"))
            .await
            .expect("by token");
        assert_eq!(found, [kept]);
        assert_eq!(
            store
                .inner
                .engine
                .db
                .get(LAYOUT_KEY)
                .expect("layout")
                .as_deref(),
            Some(LAYOUT_VERSION)
        );
    }

    /// The same sessions written and deleted by many callers at once (a user on two devices, a
    /// logout sent twice): each session counts once while stored, never twice, never below zero.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_live_count_holds_when_the_same_sessions_are_written_and_deleted_at_once() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let store = SledStore::open(dir.path(), SledOptions::default()).expect("open");
        let sessions: Vec<Session> = (0..8)
            .map(|i| {
                session(
                    &format!("auth0|{i}"),
                    &format!("s-{i}"),
                    Duration::from_secs(60),
                )
            })
            .collect();
        let round = |delete: bool| {
            let tasks: Vec<_> = (0..64)
                .map(|i| {
                    let (store, s) = (store.clone(), sessions[i % 8].clone());
                    tokio::spawn(async move {
                        if delete {
                            store.delete_session(&s.id).await.map(drop)
                        } else {
                            store.create_session(&s).await
                        }
                    })
                })
                .collect();
            futures_util::future::join_all(tasks)
        };
        for (delete, expected) in [(false, 8), (true, 0), (false, 8)] {
            for task in round(delete).await {
                task.expect("joined").expect("written");
            }
            assert_eq!(
                store.count_live_sessions().await.expect("count"),
                expected,
                "after 64 {} of 8 sessions",
                if delete { "deletes" } else { "writes" }
            );
        }
    }

    /// The live count is kept as sessions are written, so a reopened folder answers it without a
    /// scan; a folder of layout 2 (no counts) is counted once when it is opened.
    #[tokio::test]
    async fn the_live_count_is_kept_across_reopens_and_a_layout_2_folder_is_counted_once() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let sessions: Vec<Session> = (0..5)
            .map(|i| {
                session(
                    &format!("auth0|{i}"),
                    &format!("c-{i}"),
                    Duration::from_secs(60),
                )
            })
            .collect();
        {
            let store = SledStore::open(dir.path(), SledOptions::default()).expect("open");
            for s in &sessions {
                store.create_session(s).await.expect("create");
            }
            // Written again (a re-login with the same id) and deleted: counted once, then not.
            store.create_session(&sessions[0]).await.expect("rewrite");
            store.delete_session(&sessions[1].id).await.expect("delete");
            store
                .delete_session(&sessions[1].id)
                .await
                .expect("delete again");
            assert_eq!(store.count_live_sessions().await.expect("count"), 4);
            store.flush().await.expect("flush");
        }
        {
            let store = SledStore::open(dir.path(), SledOptions::default()).expect("reopen");
            assert_eq!(store.count_live_sessions().await.expect("count"), 4);
            // Back to layout 2: no counts.
            store.inner.engine.trees.counts.clear().expect("clear");
            store
                .inner
                .engine
                .db
                .insert(LAYOUT_KEY, LAYOUT_V2)
                .expect("layout");
            assert_eq!(store.count_live_sessions().await.expect("count"), 0);
            store.flush().await.expect("flush");
        }
        let store = SledStore::open(dir.path(), SledOptions::default()).expect("migrated");
        assert_eq!(store.count_live_sessions().await.expect("count"), 4);
        store.delete_session(&sessions[2].id).await.expect("delete");
        assert_eq!(store.count_live_sessions().await.expect("count"), 3);
        assert_eq!(
            store
                .inner
                .engine
                .db
                .get(LAYOUT_KEY)
                .expect("layout")
                .as_deref(),
            Some(LAYOUT_VERSION)
        );
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
