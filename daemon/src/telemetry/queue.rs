//! The queue log lines wait in for the thread that writes them: a line is appended to one shared
//! buffer (a lock and a copy, no allocation once the buffer has grown), and the writer thread
//! takes the whole buffer at once and hands it to stdout in one write.
//!
//! Choices:
//! - Not `tracing-appender`: it allocates a `Vec` per line, sends it through a channel (waking
//!   the writer thread for most lines under load) and writes each line with its own syscall.
//! - The writer thread is woken only when it waits, and gathers for [`GATHER`] before each take
//!   of the buffer (unless [`GATHER_BYTES`] are already there): at most about a thousand writes a
//!   second whatever the rate of lines, each carrying every line of its millisecond; a line
//!   waits about that long (plus the write) before it is on stdout.
//! - A full queue ([`MAX_QUEUED`] bytes) blocks the caller until the writer has taken it: an
//!   authentication service keeps its logs rather than dropping them.
//! - After the guard is dropped (the process is ending) a line is written in place, so nothing
//!   logged late is lost.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How long the writer thread lets lines gather before it writes them.
const GATHER: Duration = Duration::from_millis(1);
/// Queued bytes written at once, without gathering longer.
const GATHER_BYTES: usize = 64 << 10;
/// The most bytes queued before a caller waits for the writer.
const MAX_QUEUED: usize = 4 << 20;
/// The buffer capacity kept between writes (a burst's larger buffer is given back).
const KEPT_CAPACITY: usize = 256 << 10;

#[derive(Default)]
struct State {
    lines: Vec<u8>,
    /// The writer thread waits for lines (a new line must wake it).
    idle: bool,
    /// The guard was dropped: lines are written in place.
    closed: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Lines were queued while the writer was idle, or the queue closed.
    filled: Condvar,
    /// The writer took the buffer: there is room again.
    drained: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The `MakeWriter` of the log lines: each line is one `write_all` into the queue.
#[derive(Clone)]
pub struct LineQueue {
    shared: Arc<Shared>,
}

/// Keep it for as long as lines are logged: dropping it writes what is queued, and from then on
/// lines are written in place.
pub struct QueueGuard {
    shared: Arc<Shared>,
    writer: Option<std::thread::JoinHandle<()>>,
}

/// Starts the writer thread over `out`.
pub fn spawn(out: impl Write + Send + 'static) -> (LineQueue, QueueGuard) {
    let shared = Arc::new(Shared::default());
    let for_thread = shared.clone();
    let writer = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || write_lines(&for_thread, out))
        .ok();
    // Without its thread the queue is closed from the start: lines are written in place.
    shared.lock().closed = writer.is_none();
    (
        LineQueue {
            shared: shared.clone(),
        },
        QueueGuard { shared, writer },
    )
}

fn write_lines(shared: &Shared, mut out: impl Write) {
    let mut taken = Vec::new();
    loop {
        {
            let mut state = shared.lock();
            while state.lines.is_empty() && !state.closed {
                state.idle = true;
                state = shared
                    .filled
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            state.idle = false;
            if state.lines.is_empty() {
                return;
            }
            if !state.closed && state.lines.len() < GATHER_BYTES {
                drop(state);
                std::thread::sleep(GATHER);
                state = shared.lock();
            }
            std::mem::swap(&mut state.lines, &mut taken);
            shared.drained.notify_all();
        }
        // Nowhere to report a failed write to: the lines are lost, the daemon goes on.
        let _ = out.write_all(&taken).and_then(|()| out.flush());
        taken.clear();
        taken.shrink_to(KEPT_CAPACITY);
    }
}

impl Drop for QueueGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.filled.notify_all();
        self.shared.drained.notify_all();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// One line's writer.
pub struct LineWriter<'a>(&'a Shared);

impl<'a> MakeWriter<'a> for LineQueue {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(&self.shared)
    }
}

impl Write for LineWriter<'_> {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut state = self.0.lock();
        while !state.closed && !state.lines.is_empty() && state.lines.len() >= MAX_QUEUED {
            state = self
                .0
                .drained
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if state.closed {
            drop(state);
            return std::io::stdout().write_all(line).map(|()| line.len());
        }
        state.lines.extend_from_slice(line);
        if state.idle {
            state.idle = false;
            self.0.filled.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    use crate::telemetry::tests::Captured;

    #[test]
    fn every_line_of_every_thread_is_written_whole_in_few_writes() {
        let out = Captured::default();
        let started = std::time::Instant::now();
        let (queue, guard) = spawn(out.clone());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let queue = queue.clone();
                std::thread::spawn(move || {
                    for i in 0..5_000 {
                        let line = format!("{{\"thread\":{t},\"line\":{i}}}\n");
                        queue.make_writer().write_all(line.as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        drop(guard);
        let elapsed = started.elapsed();
        let (bytes, writes) = out.0.lock().unwrap().clone();
        let text = String::from_utf8(bytes).unwrap();
        let mut next = [0; 4];
        for line in text.lines() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let t = usize::try_from(value["thread"].as_u64().unwrap()).unwrap();
            assert_eq!(value["line"], next[t], "each thread's lines in order");
            next[t] += 1;
        }
        assert_eq!(next, [5_000; 4], "no line lost");
        // Each write follows a gathering of a millisecond (the lines here never fill 64 KB in one).
        assert!(
            u128::try_from(writes).unwrap() <= elapsed.as_millis() + 2,
            "{writes} writes for 20,000 lines in {elapsed:?}"
        );
    }

    #[test]
    fn a_line_after_the_guard_is_gone_is_still_written() {
        let out = Captured::default();
        let (queue, guard) = spawn(out.clone());
        queue.make_writer().write_all(b"before\n").unwrap();
        drop(guard);
        assert_eq!(out.0.lock().unwrap().0, b"before\n");
        // Written in place to the process's stdout: accepted, not lost in a closed queue.
        assert!(queue.make_writer().write_all(b"after\n").is_ok());
    }
}
