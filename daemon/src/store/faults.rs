//! [`FaultyStore`]: a wrapper around a real backend that fails or stalls on demand, for the
//! tests of what the daemon does when its store misbehaves. Compiled only with the `test-hooks`
//! cargo feature, which the test package turns on for its test builds and release builds never
//! carry (`cargo build --release` of the daemon or of the workspace does not enable it).
//!
//! | control | effect |
//! |---|---|
//! | [`StoreFaults::stall`] | every call, and [`Store::flush`], waits forever (as a hung sled would), and [`Store::stalled`] says so |
//! | [`StoreFaults::fail_writes`] | the next N writes fail as an outage ([`StoreError::Unavailable`]) without reaching the backend |
//! | [`StoreFaults::stall_job_write`] | the job record write after the next N waits until [`StoreFaults::release_job_writes`] (a daemon stalled between two record writes) |
//!
//! A daemon process built with the feature also listens for `SIGUSR1` (stall) and `SIGUSR2`
//! (release), so process tests can wedge a running daemon's store.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{
    CasOutcome, JobCas, JobCursor, JobPart, JobRecord, JobStore, LeaseClaim, LeaseStore, Session,
    SessionId, SessionStore, StateRecord, StateStore, Store, StoreError, StoreFuture, SweepReport,
    Timestamp, TokenHash,
};

/// The switches of a [`FaultyStore`]; clones share them.
#[derive(Clone, Default)]
pub struct StoreFaults {
    inner: Arc<Switches>,
}

struct Switches {
    stalled: AtomicBool,
    stalled_since: Mutex<Option<Instant>>,
    failing_writes: AtomicU64,
    /// Job record writes to let through before one stalls; negative: none stalls.
    job_stall_countdown: AtomicI64,
    /// Whether a job record write is stalled now.
    job_stall_holding: AtomicBool,
}

impl Default for Switches {
    fn default() -> Self {
        Self {
            stalled: AtomicBool::new(false),
            stalled_since: Mutex::new(None),
            failing_writes: AtomicU64::new(0),
            job_stall_countdown: AtomicI64::new(-1),
            job_stall_holding: AtomicBool::new(false),
        }
    }
}

impl StoreFaults {
    /// Stalls (or releases) every call.
    pub fn stall(&self, on: bool) {
        let mut since = self
            .inner
            .stalled_since
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *since = on.then(Instant::now);
        self.inner.stalled.store(on, Ordering::SeqCst);
    }

    /// Lets `after` more job record writes ([`JobStore::replace_job`]) through, then stalls the
    /// next one (before it reaches the backend) until [`Self::release_job_writes`].
    pub fn stall_job_write(&self, after: u64) {
        self.inner
            .job_stall_countdown
            .store(i64::try_from(after).unwrap_or(i64::MAX), Ordering::SeqCst);
    }

    /// Releases a stalled job record write, and stalls no more.
    pub fn release_job_writes(&self) {
        self.inner.job_stall_countdown.store(-1, Ordering::SeqCst);
        self.inner.job_stall_holding.store(false, Ordering::SeqCst);
    }

    /// Whether a job record write is stalled now.
    pub fn job_write_stalled(&self) -> bool {
        self.inner.job_stall_holding.load(Ordering::SeqCst)
    }

    async fn job_write_gate(&self) {
        let previous =
            self.inner
                .job_stall_countdown
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                    (n >= 0).then(|| n - 1)
                });
        if previous == Ok(0) {
            self.inner.job_stall_holding.store(true, Ordering::SeqCst);
            tracing::warn!("test hook: a job record write stalls");
            while self.inner.job_stall_holding.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// Makes the next `count` writes fail as an outage.
    pub fn fail_writes(&self, count: u64) {
        self.inner.failing_writes.store(count, Ordering::SeqCst);
    }

    fn stalled_for(&self) -> Option<Duration> {
        let since = *self
            .inner
            .stalled_since
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        since.map(|s| s.elapsed())
    }

    /// Waits while stalled; then fails a write when writes are set to fail.
    async fn gate(&self, write: bool) -> Result<(), StoreError> {
        while self.inner.stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if write
            && self
                .inner
                .failing_writes
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            return Err(StoreError::Unavailable(
                "a failure injected by the test hook".into(),
            ));
        }
        Ok(())
    }

    /// Listens for `SIGUSR1` (stall) and `SIGUSR2` (release) on the current runtime.
    pub fn listen_for_signals(&self) {
        use tokio::signal::unix::{SignalKind, signal};
        let faults = self.clone();
        tokio::spawn(async move {
            let (Ok(mut stall), Ok(mut release)) = (
                signal(SignalKind::user_defined1()),
                signal(SignalKind::user_defined2()),
            ) else {
                tracing::error!("the store test hook cannot listen for SIGUSR1/SIGUSR2");
                return;
            };
            loop {
                tokio::select! {
                    _ = stall.recv() => {
                        tracing::warn!("test hook: the session store now stalls");
                        faults.stall(true);
                    }
                    _ = release.recv() => {
                        tracing::warn!("test hook: the session store is released");
                        faults.stall(false);
                    }
                }
            }
        });
    }
}

/// A backend behind [`StoreFaults`].
pub struct FaultyStore {
    store: Arc<dyn Store>,
    faults: StoreFaults,
}

impl FaultyStore {
    pub fn new(store: Arc<dyn Store>, faults: StoreFaults) -> Self {
        Self { store, faults }
    }

    fn read<'a, T: Send + 'a>(
        &'a self,
        call: impl Future<Output = Result<T, StoreError>> + Send + 'a,
    ) -> StoreFuture<'a, T> {
        Box::pin(async move {
            self.faults.gate(false).await?;
            call.await
        })
    }

    fn write<'a, T: Send + 'a>(
        &'a self,
        call: impl Future<Output = Result<T, StoreError>> + Send + 'a,
    ) -> StoreFuture<'a, T> {
        Box::pin(async move {
            self.faults.gate(true).await?;
            call.await
        })
    }
}

impl SessionStore for FaultyStore {
    fn create_session<'a>(&'a self, session: &'a Session) -> StoreFuture<'a, ()> {
        self.write(self.store.create_session(session))
    }

    fn get_session<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Session>> {
        self.read(self.store.get_session(id))
    }

    fn session_revision<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<u64>> {
        self.read(self.store.session_revision(id))
    }

    fn sessions_by_token<'a>(&'a self, hash: &'a TokenHash) -> StoreFuture<'a, Vec<Session>> {
        self.read(self.store.sessions_by_token(hash))
    }

    fn replace_session<'a>(&'a self, session: &'a Session) -> StoreFuture<'a, CasOutcome> {
        self.write(self.store.replace_session(session))
    }

    fn delete_session<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Session>> {
        self.write(self.store.delete_session(id))
    }

    fn sessions_of<'a>(&'a self, sub: &'a str) -> StoreFuture<'a, Vec<Session>> {
        self.read(self.store.sessions_of(sub))
    }

    fn sessions_of_auth0_session<'a>(
        &'a self,
        hash: &'a super::auth0_session::Auth0SessionHash,
    ) -> StoreFuture<'a, Vec<Session>> {
        self.read(self.store.sessions_of_auth0_session(hash))
    }

    fn delete_sessions_of<'a>(&'a self, sub: &'a str) -> StoreFuture<'a, Vec<Session>> {
        self.write(self.store.delete_sessions_of(sub))
    }

    fn active_subs(&self) -> StoreFuture<'_, Vec<String>> {
        self.read(self.store.active_subs())
    }

    fn count_live_sessions(&self) -> StoreFuture<'_, u64> {
        self.read(self.store.count_live_sessions())
    }
}

impl StateStore for FaultyStore {
    fn put_state<'a>(&'a self, record: &'a StateRecord) -> StoreFuture<'a, bool> {
        self.write(self.store.put_state(record))
    }

    fn take_state<'a>(&'a self, state: &'a str) -> StoreFuture<'a, Option<StateRecord>> {
        self.write(self.store.take_state(state))
    }

    fn get_state<'a>(&'a self, state: &'a str) -> StoreFuture<'a, Option<StateRecord>> {
        self.read(self.store.get_state(state))
    }

    fn take_state_if<'a>(&'a self, record: &'a StateRecord) -> StoreFuture<'a, bool> {
        self.write(self.store.take_state_if(record))
    }
}

impl JobStore for FaultyStore {
    fn put_job<'a>(&'a self, job: &'a JobRecord) -> StoreFuture<'a, ()> {
        self.write(self.store.put_job(job))
    }

    fn replace_job<'a>(&'a self, job: &'a JobRecord) -> StoreFuture<'a, JobCas> {
        let faults = self.faults.clone();
        let write = self.write(self.store.replace_job(job));
        Box::pin(async move {
            faults.job_write_gate().await;
            write.await
        })
    }

    fn put_job_part<'a>(&'a self, part: JobPart<'a>, users: &'a [u8]) -> StoreFuture<'a, ()> {
        self.write(self.store.put_job_part(part, users))
    }

    fn get_job_part<'a>(&'a self, part: JobPart<'a>) -> StoreFuture<'a, Option<Vec<u8>>> {
        self.read(self.store.get_job_part(part))
    }

    fn delete_job_part<'a>(&'a self, part: JobPart<'a>) -> StoreFuture<'a, ()> {
        self.write(self.store.delete_job_part(part))
    }

    fn get_job<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<JobRecord>> {
        self.read(self.store.get_job(id))
    }

    fn list_jobs<'a>(
        &'a self,
        limit: usize,
        before: Option<&'a JobCursor>,
    ) -> StoreFuture<'a, Vec<JobRecord>> {
        self.read(self.store.list_jobs(limit, before))
    }

    fn unfinished_jobs(&self) -> StoreFuture<'_, Vec<JobRecord>> {
        self.read(self.store.unfinished_jobs())
    }

    fn delete_finished_jobs(&self, finished_before: Timestamp) -> StoreFuture<'_, u64> {
        self.write(self.store.delete_finished_jobs(finished_before))
    }
}

impl LeaseStore for FaultyStore {
    fn try_lease<'a>(&'a self, claim: LeaseClaim<'a>, ttl: Duration) -> StoreFuture<'a, bool> {
        self.write(self.store.try_lease(claim, ttl))
    }

    fn release_lease<'a>(&'a self, claim: LeaseClaim<'a>) -> StoreFuture<'a, bool> {
        self.write(self.store.release_lease(claim))
    }
}

impl Store for FaultyStore {
    fn sweep(&self) -> StoreFuture<'_, SweepReport> {
        self.write(self.store.sweep())
    }

    fn writable(&self) -> StoreFuture<'_, ()> {
        self.read(self.store.writable())
    }

    fn flush(&self) -> StoreFuture<'_, ()> {
        self.read(self.store.flush())
    }

    fn flush_counts(&self) -> Option<super::FlushCounts> {
        self.store.flush_counts()
    }

    fn stalled(&self) -> Option<String> {
        match self.faults.stalled_for() {
            Some(running) => Some(format!(
                "stalled by the test hook for {} ms",
                running.as_millis()
            )),
            None => self.store.stalled(),
        }
    }
}
