//! [`BlockingPool`]: where sled's synchronous calls run, off the HTTP workers and bounded.
//!
//! sled's calls normally return in microseconds, but a sled bug can hang one forever. Each call
//! therefore runs on one of [`BlockingPool::THREADS`] threads of the store's own, fed by a bounded
//! queue: a hung call holds one of those threads and never an HTTP worker; callers bound their wait
//! (`sessions.timeoutMs`) and answer 503; a call whose caller gave up before it started is skipped;
//! a full queue is refused at once. The threads are the store's own rather than tokio's
//! `spawn_blocking` ones because a runtime waits for its blocking threads when it shuts down, and
//! a hung sled call would then hang the shutdown. Every running call is registered with its start
//! time, so [`BlockingPool::stalled`] can tell `/-/ready` that one has run past its deadline.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::store::StoreError;

type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Running {
    next: AtomicU64,
    calls: Mutex<HashMap<u64, (&'static str, Instant)>>,
}

impl Running {
    fn start(self: &Arc<Self>, what: &'static str) -> Registration {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, (what, Instant::now()));
        Registration {
            running: self.clone(),
            id,
        }
    }
}

/// A call's entry in [`Running`], removed when the call returns (or unwinds).
struct Registration {
    running: Arc<Running>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.running
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

pub(super) struct BlockingPool {
    queue: SyncSender<Job>,
    running: Arc<Running>,
}

impl BlockingPool {
    /// How many sled calls may run at once. sled serves this daemon's records from memory, so a
    /// handful of threads keeps two cores busy; more would only add hung threads in a wedge.
    pub(super) const THREADS: usize = 8;
    /// Calls that may wait for a thread; past that the store answers "busy" at once.
    const QUEUE: usize = 4_096;

    /// Starts the threads; they end once the pool is dropped and its queue is drained.
    pub(super) fn start() -> Result<Self, StoreError> {
        let (queue, jobs) = std::sync::mpsc::sync_channel::<Job>(Self::QUEUE);
        let jobs = Arc::new(Mutex::new(jobs));
        for i in 0..Self::THREADS {
            let jobs = jobs.clone();
            std::thread::Builder::new()
                .name(format!("store-{i}"))
                .spawn(move || work(&jobs))
                .map_err(|e| {
                    StoreError::Unavailable(format!("cannot start the store's threads: {e}"))
                })?;
        }
        Ok(Self {
            queue,
            running: Arc::default(),
        })
    }

    /// Runs `work` on one of the pool's threads. If the caller stops waiting before it starts, it
    /// never starts; once started, it runs to its end (sled calls cannot be cancelled).
    pub(super) async fn run<T: Send + 'static>(
        &self,
        what: &'static str,
        work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (answer, answered) = oneshot::channel();
        let running = self.running.clone();
        self.submit(Box::new(move || {
            if answer.is_closed() {
                return;
            }
            let registration = running.start(what);
            let result = work();
            drop(registration);
            let _ = answer.send(result);
        }))?;
        answered.await.map_err(|_| StoreError::panicked(what))?
    }

    /// Queues `work` for one of the pool's threads, which runs it whoever waits (a writer that
    /// answers its callers itself: [`super::inserts`]). Refused at once when the queue is full.
    pub(super) fn spawn(
        &self,
        what: &'static str,
        work: impl FnOnce() + Send + 'static,
    ) -> Result<(), StoreError> {
        let running = self.running.clone();
        self.submit(Box::new(move || {
            let _registration = running.start(what);
            work();
        }))
    }

    fn submit(&self, job: Job) -> Result<(), StoreError> {
        match self.queue.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(StoreError::Unavailable(format!(
                "the store is busy: {} calls are waiting",
                Self::QUEUE
            ))),
            Err(TrySendError::Disconnected(_)) => {
                Err(StoreError::Unavailable("the store is closed".into()))
            }
        }
    }

    /// The longest-running call, when it has run past `deadline`.
    pub(super) fn stalled(&self, deadline: Duration) -> Option<(&'static str, Duration)> {
        let calls = self.running.calls.lock().unwrap_or_else(|e| e.into_inner());
        calls
            .values()
            .map(|(what, since)| (*what, since.elapsed()))
            .filter(|(_, running)| *running > deadline)
            .max_by_key(|(_, running)| *running)
    }
}

fn work(jobs: &Mutex<Receiver<Job>>) {
    loop {
        let job = {
            let jobs = jobs.lock().unwrap_or_else(|e| e.into_inner());
            jobs.recv()
        };
        match job {
            // A panic inside sled drops the answer; the caller gets an error, the thread goes on.
            Ok(job) => {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hung_call_is_reported_and_bounds_the_others_not_the_caller() {
        let pool = Arc::new(BlockingPool::start().expect("threads"));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = Arc::new(Mutex::new(hold));
        // Every thread taken by a call that hangs until released.
        let hung: Vec<_> = (0..BlockingPool::THREADS)
            .map(|_| {
                let hold = hold.clone();
                let pool = pool.clone();
                tokio::spawn(async move {
                    pool.run("hang", move || {
                        let _ = hold.lock().map(|h| h.recv());
                        Ok(())
                    })
                    .await
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            pool.stalled(Duration::from_millis(50))
                .map(|(what, _)| what),
            Some("hang")
        );
        // A new call waits for a thread; its caller gives up at its own deadline, and the call
        // is then skipped rather than run late.
        let skipped = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let ran = skipped.clone();
        let waited = tokio::time::timeout(
            Duration::from_millis(100),
            pool.run("late", move || {
                ran.store(false, Ordering::SeqCst);
                Ok(())
            }),
        )
        .await;
        assert!(waited.is_err());
        for _ in 0..BlockingPool::THREADS {
            release.send(()).expect("a hung call listens");
        }
        for call in hung {
            call.await.expect("joined").expect("answered");
        }
        assert_eq!(pool.run("read", || Ok(2)).await.expect("runs"), 2);
        assert!(
            skipped.load(Ordering::SeqCst),
            "the abandoned call never ran"
        );
        assert!(pool.stalled(Duration::ZERO).is_none());
    }

    #[tokio::test]
    async fn a_panicking_call_is_an_error_and_the_pool_goes_on() {
        let pool = BlockingPool::start().expect("threads");
        for _ in 0..2 * BlockingPool::THREADS {
            let error = pool
                .run::<()>("panic", || panic!("inside sled"))
                .await
                .expect_err("a panic is an error");
            assert!(error.to_string().contains("panic"), "{error}");
        }
        assert_eq!(pool.run("read", || Ok(3)).await.expect("runs"), 3);
    }
}
