//! [`Clock`]: where the daemon reads the time, so tests move time instead of sleeping.
//!
//! Every expiry the daemon decides (sessions, access tokens, state records, leases, grace
//! windows) is checked against the `Clock` the application was built with. Production uses the
//! system clock; a test builds the app with [`Clock::manual`] and calls [`Clock::advance`].
//! Auth0 (and the emulator) keep their own time: a token's signature and `exp` are theirs.
//!
//! **Time** is [`Timestamp`], unix milliseconds in UTC, everywhere in the daemon and its store.
//! Milliseconds rather than `OffsetDateTime`: they compare and sort as plain integers (sled index
//! keys, Redis `PEXPIREAT` and sorted-set scores use them as they are), they need no `serde`
//! feature of `time`, and they are fine-grained enough for the short TTLs tests use and for
//! Auth0's job `created_at` (also milliseconds). The HTTP layer formats them with
//! [`Timestamp::to_offset_datetime`].

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A point in time: milliseconds since the unix epoch, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The current time of this machine's clock.
    pub fn now() -> Self {
        let millis = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(since) => i64::try_from(since.as_millis()).unwrap_or(i64::MAX),
            // A clock before 1970: negative milliseconds, still ordered correctly.
            Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |m| -m),
        };
        Self(millis)
    }

    pub const fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// This time plus `duration`, saturating instead of overflowing.
    pub fn saturating_add(self, duration: Duration) -> Self {
        let millis = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(millis))
    }

    /// This time minus `duration`, saturating instead of overflowing.
    pub fn saturating_sub(self, duration: Duration) -> Self {
        let millis = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        Self(self.0.saturating_sub(millis))
    }

    /// The same instant as an `OffsetDateTime` in UTC (for RFC 3339 formatting), or `None` past
    /// the range `time` supports.
    pub fn to_offset_datetime(self) -> Option<OffsetDateTime> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000).ok()
    }
}

impl From<OffsetDateTime> for Timestamp {
    /// Truncates to the millisecond.
    fn from(at: OffsetDateTime) -> Self {
        let millis = at.unix_timestamp_nanos().div_euclid(1_000_000);
        Self(i64::try_from(millis).unwrap_or(if millis < 0 { i64::MIN } else { i64::MAX }))
    }
}

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
