//! [`GroupCommit`]: the one thread that makes sled's writes durable.
//!
//! sled 0.34 loses the wake-up of concurrent `flush_async` calls and then wedges every `sled-io`
//! thread (sled issues #1308 and #1241, fixed only on an unreleased branch), so this daemon never
//! calls it. Instead one thread owns the flush and calls the blocking `Db::flush()`:
//!
//! - a writer that must survive `kill -9` writes, then takes a ticket and waits for the first flush
//!   that *started* after its ticket, so its write is on disk when that flush completes;
//! - writers that arrive while a flush runs share the next one: one fsync for many writes;
//! - a flush cannot be cancelled, so the waiters are bounded (by the caller, with
//!   `sessions.timeoutMs`), never the flusher; a flush that runs past the deadline is reported by
//!   [`GroupCommit::stalled`] for `/-/ready` and the metrics.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::store::{FlushCounts, StoreError};

/// What the flusher has done: every ticket up to `through` is on disk, unless `error` says the
/// flush for them failed.
#[derive(Clone, Debug, Default)]
struct Flushed {
    through: u64,
    error: Option<Arc<str>>,
}

#[derive(Default)]
struct State {
    /// The last ticket handed out.
    requested: u64,
    /// The last ticket covered by a finished flush (so also how many durable writes were flushed).
    flushed: u64,
    /// How many flushes finished.
    flushes: u64,
    /// When the running flush started, if one runs.
    flushing_since: Option<Instant>,
    /// The store is gone: the thread ends once nothing is requested.
    closed: bool,
    /// Test hook: the flusher waits before flushing while this is set, as if sled hung.
    #[cfg(any(test, feature = "test-hooks"))]
    held: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    done: watch::Sender<Flushed>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Handle on the flusher thread; dropping it lets the thread end once its work is done, and
/// [`GroupCommit::close`] waits for that.
pub(super) struct GroupCommit {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl GroupCommit {
    /// Starts the thread; `flush` is the blocking flush of the database (`Db::flush`).
    pub(super) fn start(
        flush: impl Fn() -> Result<(), String> + Send + 'static,
    ) -> Result<Self, StoreError> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            done: watch::Sender::new(Flushed::default()),
        });
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("store-flusher".into())
            .spawn(move || run(&thread_shared, flush))
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot start the flusher thread: {e}"))
            })?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Ends the thread once what was requested is flushed, and waits for it, so that the
    /// database it flushes is released when this returns. Only for a flusher that is not stuck.
    pub(super) fn close(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Waits until every write made before this call is on disk. Unbounded by itself: callers
    /// bound it (a flush may hang inside sled; the waiter must not).
    pub(super) async fn durable(&self) -> Result<(), StoreError> {
        let mut done = self.shared.done.subscribe();
        let ticket = {
            let mut state = self.shared.lock();
            state.requested += 1;
            state.requested
        };
        self.shared.wake.notify_one();
        let flushed = done
            .wait_for(|f| f.through >= ticket)
            .await
            .map_err(|_| StoreError::Unavailable("the flusher thread is gone".into()))?;
        match &flushed.error {
            Some(error) => Err(StoreError::Unavailable(format!(
                "flushing to disk failed: {error}"
            ))),
            None => Ok(()),
        }
    }

    /// How many flushes finished, and how many durable writes they carried.
    pub(super) fn counts(&self) -> FlushCounts {
        let state = self.shared.lock();
        FlushCounts {
            flushes: state.flushes,
            writes: state.flushed,
        }
    }

    /// How long the running flush has been running, when that is more than `deadline`.
    pub(super) fn stalled(&self, deadline: Duration) -> Option<Duration> {
        let since = self.shared.lock().flushing_since?;
        let running = since.elapsed();
        (running > deadline).then_some(running)
    }

    /// Test hook: while held, the flusher does not flush (writers waiting for durability wait).
    #[cfg(any(test, feature = "test-hooks"))]
    pub(super) fn hold(&self, held: bool) {
        self.shared.lock().held = held;
        self.shared.wake.notify_all();
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_all();
    }
}

fn run(shared: &Shared, flush: impl Fn() -> Result<(), String>) {
    loop {
        let target = {
            let mut state = shared.lock();
            loop {
                #[cfg(any(test, feature = "test-hooks"))]
                let held = state.held;
                #[cfg(not(any(test, feature = "test-hooks")))]
                let held = false;
                if state.requested > state.flushed && !held {
                    break;
                }
                if state.closed && state.requested == state.flushed {
                    return;
                }
                if held && state.requested > state.flushed && state.flushing_since.is_none() {
                    // Held with writers waiting: report it as a running flush, like a hung sled.
                    state.flushing_since = Some(Instant::now());
                }
                state = shared.wake.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            if state.flushing_since.is_none() {
                state.flushing_since = Some(Instant::now());
            }
            state.requested
        };
        let result = flush();
        {
            let mut state = shared.lock();
            state.flushed = target;
            state.flushes += 1;
            state.flushing_since = None;
        }
        shared.done.send_replace(Flushed {
            through: target,
            error: result.err().map(Arc::from),
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    #[tokio::test]
    async fn concurrent_waiters_share_flushes_and_all_finish() {
        let flushes = Arc::new(AtomicU64::new(0));
        let counter = flushes.clone();
        let commit = Arc::new(
            GroupCommit::start(move || {
                std::thread::sleep(Duration::from_millis(5));
                counter.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
            .expect("start"),
        );
        let waiters: Vec<_> = (0..200)
            .map(|_| {
                let commit = commit.clone();
                tokio::spawn(async move { commit.durable().await })
            })
            .collect();
        for waiter in waiters {
            waiter.await.expect("joined").expect("durable");
        }
        let count = flushes.load(Ordering::SeqCst);
        assert!(
            (1..200).contains(&count),
            "200 waiters shared {count} flushes"
        );
        assert_eq!(
            commit.counts(),
            FlushCounts {
                flushes: count,
                writes: 200
            },
            "the counts the metrics show"
        );
    }

    #[tokio::test]
    async fn a_failed_flush_fails_its_waiters_and_the_next_one_succeeds() {
        let fail = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let failing = fail.clone();
        let commit = GroupCommit::start(move || {
            if failing.swap(false, Ordering::SeqCst) {
                Err("disk full".into())
            } else {
                Ok(())
            }
        })
        .expect("start");
        let error = commit.durable().await.expect_err("the flush failed");
        assert!(error.is_unavailable() && error.to_string().contains("disk full"));
        commit.durable().await.expect("the next flush works");
    }

    #[tokio::test]
    async fn a_held_flusher_is_reported_and_waiters_can_give_up() {
        let commit = GroupCommit::start(|| Ok(())).expect("start");
        commit.hold(true);
        let waited = tokio::time::timeout(Duration::from_millis(100), commit.durable()).await;
        assert!(waited.is_err(), "no flush while held");
        assert!(commit.stalled(Duration::from_millis(50)).is_some());
        assert!(commit.stalled(Duration::from_secs(60)).is_none());
        commit.hold(false);
        commit.durable().await.expect("flushes again once released");
        assert!(commit.stalled(Duration::ZERO).is_none());
    }
}
