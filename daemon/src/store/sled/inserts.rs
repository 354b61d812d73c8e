//! [`Inserts`]: new sessions that arrive together are written in one sled transaction.
//!
//! sled 0.34 rolls its io buffer twice in every transaction (`pin_log`, before and after the batch
//! manifest), and each roll is a `pwrite` and a `sync_file_range` that waits for the disk, on
//! sled's io threads. At 64 password logins in flight those two writes per login were the largest
//! cost of a login: sled's io threads took 37% of the daemon's CPU. So new sessions share
//! transactions as they share flushes ([`super::flusher`]):
//!
//! | choice | why |
//! |---|---|
//! | one writer at a time; what arrives while it writes waits for its next transaction | a batch grows with the load, and a lone login is written at once, as before |
//! | each transaction is its own call on the store's pool, the next started by the one before | the stall watchdog times each transaction, not a writer kept busy by a steady load |
//! | each session is written inside the batch exactly as alone (`insert_sessions`) | the same checks, index entries and count, N times |
//! | a batch that fails is written again one session at a time | one bad session cannot fail the others |
//! | a waiter that stopped waiting before its batch started is left out | as the pool skips a call nobody waits for |
//! | a writer that cannot start, or panics, answers what waits with an error and frees the queue | the next login starts a new writer instead of waiting forever |

use std::sync::{Mutex, MutexGuard};

use tokio::sync::oneshot;

use super::Engine;
use crate::store::{Session, StoreError};

type Answer = oneshot::Sender<Result<(), StoreError>>;

/// What the writer's pool calls are named (in stall reports and errors).
pub(super) const CREATE_SESSION: &str = "create session";

/// The sessions waiting to be written, and whether a writer runs.
#[derive(Default)]
pub(super) struct Inserts {
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<(Session, Answer)>,
    writing: bool,
}

impl Inserts {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `session`, to be answered on `answer`. True when no writer runs: the caller must
    /// start one ([`Inserts::write_batch`] on a pool thread), or [`Inserts::abandon`] if it cannot.
    pub(super) fn push(&self, session: Session, answer: Answer) -> bool {
        let mut queue = self.lock();
        queue.waiting.push((session, answer));
        !std::mem::replace(&mut queue.writing, true)
    }

    /// Answers everything waiting with `error` and frees the queue for a new writer.
    pub(super) fn abandon(&self, error: &StoreError) {
        let waiting = {
            let mut queue = self.lock();
            queue.writing = false;
            std::mem::take(&mut queue.waiting)
        };
        for (_, answer) in waiting {
            let _ = answer.send(Err(error.clone()));
        }
    }

    /// The writer: writes what waits in one transaction. True when more sessions arrived
    /// meanwhile, for the caller to run the writer again; false when the queue is free.
    pub(super) fn write_batch(&self, engine: &Engine) -> bool {
        let _unwinding = Unwinding(self);
        let batch: Vec<_> = std::mem::take(&mut self.lock().waiting)
            .into_iter()
            .filter(|(_, answer)| !answer.is_closed())
            .collect();
        if !batch.is_empty() {
            let together =
                engine.insert_sessions(&batch.iter().map(|(s, _)| s).collect::<Vec<_>>());
            let alone = together.is_err() && batch.len() > 1;
            for (session, answer) in batch {
                let result = if alone {
                    engine.insert_sessions(&[&session])
                } else {
                    together.clone()
                };
                let _ = answer.send(result);
            }
        }
        let mut queue = self.lock();
        queue.writing = !queue.waiting.is_empty();
        queue.writing
    }
}

/// Frees the queue when the writer panics (inside sled): its batch's answers are dropped, which
/// their callers see as an error, and the sessions still waiting are answered with one.
struct Unwinding<'a>(&'a Inserts);

impl Drop for Unwinding<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.abandon(&StoreError::panicked(CREATE_SESSION));
        }
    }
}
