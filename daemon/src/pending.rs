//! [`PendingLogins`]: the logins in progress this daemon has started at `GET /authorize`, counted in
//! memory per end-user address and in total, so that anonymous requests cannot fill the store
//! with state records (SPEC §3, `sessions.maxPendingLogins` and `sessions.maxPendingLoginsPerIp`).
//!
//! A login counts from the moment its state record is written until the record is taken (the
//! callback, the code exchange, Auth0's `error` answer) or expires, at the time of the app's
//! [`Clock`](crate::clock::Clock) that the caller hands in. Past a cap, [`PendingLogins::admit`]
//! refuses with the time until a slot frees up: the expiry of that address's oldest login (or,
//! for the total, of the oldest login of all).
//!
//! Choices where the spec is silent:
//! - An IPv6 address counts by its /64 prefix: one subscriber usually holds a whole /64, so
//!   counting single addresses would not bound anybody. IPv4-mapped IPv6 addresses count as the
//!   IPv4 address. Requests with no known address (no peer address) share one count.
//! - Logins are keyed by a hash of their `state` (SipHash with a per-process random key), not the
//!   state itself: 8 bytes per login instead of up to 512. A collision would only make two logins
//!   share one slot.
//! - The count is this process's: a restart forgets it (the records it counted then expire
//!   uncounted), and with Redis each daemon counts its own logins.
//! - Memory is bounded by the caps: at most `maxPendingLogins` entries, each in three small maps.
//!   Expired entries are dropped whenever a login is admitted or the count is read.

use std::collections::{BTreeSet, HashMap};
use std::hash::BuildHasher as _;
use std::hash::RandomState;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::clock::Timestamp;

/// Who a login is counted against: an IPv4 address, an IPv6 /64, or nobody known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    V4(u32),
    /// The first 64 bits of an IPv6 address.
    V6(u64),
    Unknown,
}

impl Source {
    pub fn of(ip: Option<IpAddr>) -> Self {
        match ip.map(|ip| ip.to_canonical()) {
            Some(IpAddr::V4(v4)) => Self::V4(u32::from(v4)),
            Some(IpAddr::V6(v6)) => Self::V6((u128::from(v6) >> 64) as u64),
            None => Self::Unknown,
        }
    }
}

/// Which cap refused a login.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cap {
    /// `sessions.maxPendingLoginsPerIp`.
    PerIp,
    /// `sessions.maxPendingLogins`.
    Total,
}

/// A login refused because a cap is reached.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct TooManyPendingLogins {
    pub cap: Cap,
    /// The cap's value.
    pub max: usize,
    /// Until the oldest login counted against this cap expires.
    pub retry_after: Duration,
}

impl TooManyPendingLogins {
    /// `retry_after` in whole seconds, rounded up, at least 1 (the `Retry-After` header).
    pub fn retry_after_seconds(&self) -> u64 {
        let secs = self.retry_after.as_secs();
        let rounded = if self.retry_after.subsec_nanos() > 0 {
            secs.saturating_add(1)
        } else {
            secs
        };
        rounded.max(1)
    }

    fn message(&self) -> String {
        let seconds = self.retry_after_seconds();
        match self.cap {
            Cap::PerIp => format!(
                "too many logins in progress from this address (at most {} at once, \
                 `sessions.maxPendingLoginsPerIp`): finish one, or retry in {seconds} s",
                self.max
            ),
            Cap::Total => format!(
                "too many logins in progress (at most {} at once, `sessions.maxPendingLogins`): \
                 retry in {seconds} s",
                self.max
            ),
        }
    }
}

/// The counter (see the module doc). Shared by every worker behind one mutex, held for a few
/// map operations and never across an await.
pub struct PendingLogins {
    max_total: usize,
    max_per_ip: usize,
    hasher: RandomState,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Every counted login by the hash of its state: whom it counts against, when it expires.
    by_state: HashMap<u64, (Source, Timestamp)>,
    /// The same logins ordered by expiry (the oldest first).
    by_expiry: BTreeSet<(Timestamp, u64)>,
    /// The same logins per source, ordered by expiry; a source with none is removed.
    per_source: HashMap<Source, BTreeSet<(Timestamp, u64)>>,
}

impl Inner {
    fn remove(&mut self, key: u64) -> bool {
        let Some((source, expires_at)) = self.by_state.remove(&key) else {
            return false;
        };
        self.by_expiry.remove(&(expires_at, key));
        if let Some(set) = self.per_source.get_mut(&source) {
            set.remove(&(expires_at, key));
            if set.is_empty() {
                self.per_source.remove(&source);
            }
        }
        true
    }

    /// Drops every login whose expiry is `now` or earlier (a state is live while `now <
    /// expires_at`).
    fn prune(&mut self, now: Timestamp) {
        while let Some(&(expires_at, key)) = self.by_expiry.first() {
            if expires_at > now {
                break;
            }
            self.remove(key);
        }
    }
}

impl PendingLogins {
    /// Caps below 1 are raised to 1 (the configuration refuses 0).
    pub fn new(max_total: u64, max_per_ip: u64) -> Self {
        let cap = |n: u64| usize::try_from(n).unwrap_or(usize::MAX).max(1);
        Self {
            max_total: cap(max_total),
            max_per_ip: cap(max_per_ip),
            hasher: RandomState::new(),
            inner: Mutex::default(),
        }
    }

    fn key(&self, state: &str) -> u64 {
        self.hasher.hash_one(state)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The maps stay consistent between statements, so a panic elsewhere leaves them usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts the login of `state`, from `from`, live until `expires_at`, unless a cap is
    /// reached at `now`. Returns `true` when it was counted now, `false` when a live login of
    /// that `state` was counted already (a caller's `state` still in use: the store will refuse
    /// it, and the caller must not [`release`](Self::release) the other login's count).
    pub fn admit(
        &self,
        state: &str,
        from: Option<IpAddr>,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool, TooManyPendingLogins> {
        let key = self.key(state);
        let source = Source::of(from);
        let mut inner = self.lock();
        inner.prune(now);
        if inner.by_state.contains_key(&key) {
            return Ok(false);
        }
        let wait = |oldest: Option<&(Timestamp, u64)>| {
            let millis = oldest.map_or(0, |(at, _)| at.as_millis().saturating_sub(now.as_millis()));
            Duration::from_millis(u64::try_from(millis).unwrap_or(0))
        };
        if let Some(set) = inner.per_source.get(&source)
            && set.len() >= self.max_per_ip
        {
            return Err(TooManyPendingLogins {
                cap: Cap::PerIp,
                max: self.max_per_ip,
                retry_after: wait(set.first()),
            });
        }
        if inner.by_state.len() >= self.max_total {
            return Err(TooManyPendingLogins {
                cap: Cap::Total,
                max: self.max_total,
                retry_after: wait(inner.by_expiry.first()),
            });
        }
        inner.by_state.insert(key, (source, expires_at));
        inner.by_expiry.insert((expires_at, key));
        inner
            .per_source
            .entry(source)
            .or_default()
            .insert((expires_at, key));
        Ok(true)
    }

    /// Stops counting the login of `state` (taken, or never stored). Returns whether it was
    /// counted.
    pub fn release(&self, state: &str) -> bool {
        let key = self.key(state);
        self.lock().remove(key)
    }

    /// How many logins are live at `now`, in total and from `from`.
    pub fn live(&self, from: Option<IpAddr>, now: Timestamp) -> (usize, usize) {
        let mut inner = self.lock();
        inner.prune(now);
        let from = inner
            .per_source
            .get(&Source::of(from))
            .map_or(0, BTreeSet::len);
        (inner.by_state.len(), from)
    }
}

impl Default for PendingLogins {
    /// The caps of the default `sessions` settings.
    fn default() -> Self {
        let defaults = crate::config::SessionSettings::default();
        Self::new(
            defaults.max_pending_logins,
            defaults.max_pending_logins_per_ip,
        )
    }
}

impl std::fmt::Debug for PendingLogins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogins")
            .field("max_total", &self.max_total)
            .field("max_per_ip", &self.max_per_ip)
            .field("counted", &self.lock().by_state.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_millis(1_700_000_000_000 + seconds * 1000)
    }

    #[test]
    fn the_per_ip_cap_names_the_wait_until_that_addresss_oldest_login_expires() {
        let pending = PendingLogins::new(100, 3);
        let a = ip("198.51.100.7");
        for (i, expiry) in [(0, 600), (1, 610), (2, 620)] {
            assert_eq!(
                pending.admit(&format!("s{i}"), a, at(expiry), at(i)),
                Ok(true)
            );
        }
        let refused = pending.admit("s3", a, at(630), at(30)).unwrap_err();
        assert_eq!(refused.cap, Cap::PerIp);
        assert_eq!(refused.max, 3);
        assert_eq!(refused.retry_after, Duration::from_secs(570));
        assert_eq!(refused.retry_after_seconds(), 570);
        assert!(refused.to_string().contains("maxPendingLoginsPerIp"));
        // Another address is not affected.
        assert_eq!(
            pending.admit("t0", ip("198.51.100.8"), at(630), at(30)),
            Ok(true)
        );
        assert_eq!(pending.live(a, at(30)), (4, 3));
    }

    #[test]
    fn the_total_cap_names_the_wait_until_the_oldest_login_of_all_expires() {
        let pending = PendingLogins::new(3, 10);
        pending.admit("a", ip("10.0.0.1"), at(100), at(0)).unwrap();
        pending.admit("b", ip("10.0.0.2"), at(50), at(0)).unwrap();
        pending.admit("c", ip("10.0.0.3"), at(200), at(0)).unwrap();
        let refused = pending
            .admit("d", ip("10.0.0.4"), at(300), at(10))
            .unwrap_err();
        assert_eq!(refused.cap, Cap::Total);
        assert_eq!(refused.retry_after, Duration::from_secs(40));
        assert!(refused.to_string().contains("maxPendingLogins`"));
    }

    #[test]
    fn a_taken_login_frees_its_slot_at_once() {
        let pending = PendingLogins::new(10, 1);
        let a = ip("203.0.113.1");
        pending.admit("one", a, at(600), at(0)).unwrap();
        assert!(pending.admit("two", a, at(600), at(0)).is_err());
        assert!(pending.release("one"));
        assert!(!pending.release("one"), "released once");
        assert!(!pending.release("never-counted"));
        assert_eq!(pending.admit("two", a, at(600), at(0)), Ok(true));
        assert_eq!(pending.live(a, at(0)), (1, 1));
    }

    #[test]
    fn an_expired_login_frees_its_slot_when_its_time_is_reached() {
        let pending = PendingLogins::new(10, 2);
        let a = ip("203.0.113.1");
        pending.admit("one", a, at(600), at(0)).unwrap();
        pending.admit("two", a, at(601), at(1)).unwrap();
        assert!(pending.admit("three", a, at(610), at(599)).is_err());
        // Live while now < expires_at: at 600 the first one is gone.
        assert_eq!(pending.admit("three", a, at(1200), at(600)), Ok(true));
        assert_eq!(pending.live(a, at(600)), (2, 2));
        assert_eq!(pending.live(a, at(5000)), (0, 0));
        let inner = pending.lock();
        assert!(inner.by_expiry.is_empty() && inner.per_source.is_empty());
    }

    #[test]
    fn a_state_counted_twice_is_one_login() {
        let pending = PendingLogins::new(10, 10);
        let a = ip("203.0.113.1");
        assert_eq!(pending.admit("same", a, at(600), at(0)), Ok(true));
        assert_eq!(pending.admit("same", a, at(700), at(5)), Ok(false));
        assert_eq!(pending.live(a, at(5)), (1, 1));
        // Once expired, the same state starts a new login.
        assert_eq!(pending.admit("same", a, at(1300), at(600)), Ok(true));
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let pending = PendingLogins::new(10, 2);
        pending
            .admit("a", ip("2001:db8:1:2::1"), at(600), at(0))
            .unwrap();
        pending
            .admit("b", ip("2001:db8:1:2:ffff::9"), at(600), at(0))
            .unwrap();
        let refused = pending
            .admit("c", ip("2001:db8:1:2:abcd::1"), at(600), at(0))
            .unwrap_err();
        assert_eq!(refused.cap, Cap::PerIp);
        pending
            .admit("d", ip("2001:db8:1:3::1"), at(600), at(0))
            .unwrap();
        assert_eq!(
            Source::of(ip("::ffff:192.0.2.1")),
            Source::of(ip("192.0.2.1"))
        );
        assert_eq!(Source::of(None), Source::Unknown);
    }

    #[test]
    fn the_wait_is_rounded_up_to_at_least_a_second() {
        let refused = |millis| TooManyPendingLogins {
            cap: Cap::Total,
            max: 1,
            retry_after: Duration::from_millis(millis),
        };
        assert_eq!(refused(0).retry_after_seconds(), 1);
        assert_eq!(refused(1).retry_after_seconds(), 1);
        assert_eq!(refused(1000).retry_after_seconds(), 1);
        assert_eq!(refused(1001).retry_after_seconds(), 2);
    }

    #[test]
    fn memory_stays_within_the_caps_under_a_flood() {
        let pending = PendingLogins::new(1000, 1000);
        let mut refused = 0;
        for i in 0..20_000u32 {
            let from = Some(IpAddr::from(i.to_be_bytes()));
            if pending
                .admit(&format!("s{i}"), from, at(600), at(0))
                .is_err()
            {
                refused += 1;
            }
        }
        assert_eq!(refused, 19_000);
        let inner = pending.lock();
        assert_eq!(inner.by_state.len(), 1000);
        assert_eq!(inner.by_expiry.len(), 1000);
        assert_eq!(inner.per_source.len(), 1000);
    }
}
