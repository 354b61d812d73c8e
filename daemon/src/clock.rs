//! [`Clock`]: where the daemon reads the time, so tests move time instead of sleeping.
//!
//! Every expiry the daemon decides (sessions, access tokens, state records, leases, grace
//! windows) is checked against the `Clock` the application was built with. Production uses the
//! system clock; a test builds the app with [`Clock::manual`] and calls [`Clock::advance`].
//! Auth0 (and the emulator) keep their own time: a token's signature and `exp` are theirs.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::store::Timestamp;

/// The system clock, plus an offset that only a manual clock moves. Cheap to clone; clones of a
/// manual clock move together.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_ms: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The machine's clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that starts at the machine's time and moves forward on [`Clock::advance`] too.
    pub fn manual() -> Self {
        Self {
            offset_ms: Some(Arc::default()),
        }
    }

    pub fn now(&self) -> Timestamp {
        let now = Timestamp::now();
        match &self.offset_ms {
            None => now,
            Some(offset) => Timestamp::from_millis(
                now.as_millis()
                    .saturating_add(offset.load(Ordering::Relaxed)),
            ),
        }
    }

    /// Moves a manual clock forward; does nothing to the system clock.
    pub fn advance(&self, by: Duration) {
        if let Some(offset) = &self.offset_ms {
            let millis = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
            offset.fetch_add(millis, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_with_its_clones_and_the_system_clock_does_not() {
        let clock = Clock::manual();
        let copy = clock.clone();
        let before = copy.now();
        clock.advance(Duration::from_secs(3_600));
        assert!(copy.now() >= before.saturating_add(Duration::from_secs(3_600)));

        let system = Clock::system();
        system.advance(Duration::from_secs(3_600));
        assert!(system.now() < before.saturating_add(Duration::from_secs(60)));
    }
}
