//! [`SingleFlight`]: at most one run of a job per key at a time; whoever asks while it runs joins
//! it and gets its outcome. The refresh flights of the `Tokens` actor use it (one Auth0 call per
//! session however many callers ask), and the management token cache will.
//!
//! The map belongs to one owner (an actor), which starts a flight, spawns it so it runs whether
//! or not its callers stay, and calls [`SingleFlight::finish`] when it ends.

use std::collections::HashMap;
use std::hash::Hash;

use futures_util::FutureExt as _;
use futures_util::future::{BoxFuture, Shared};

/// A running job that several callers may await; each gets a clone of its outcome.
pub type Flight<V> = Shared<BoxFuture<'static, V>>;

pub struct SingleFlight<K, V: Clone> {
    flights: HashMap<K, Flight<V>>,
}

impl<K: Eq + Hash + Clone, V: Clone + Send + Sync + 'static> Default for SingleFlight<K, V> {
    fn default() -> Self {
        Self {
            flights: HashMap::new(),
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone + Send + Sync + 'static> SingleFlight<K, V> {
    /// The running flight for `key`, else a new one made by `start`; the flag says whether it is
    /// new (then the owner spawns it and calls [`SingleFlight::finish`] when it ends). A flight
    /// that has ended but was not finished yet is not joined: its outcome may be stale.
    pub fn join_or_start(
        &mut self,
        key: &K,
        start: impl FnOnce() -> BoxFuture<'static, V>,
    ) -> (Flight<V>, bool) {
        if let Some(flight) = self.flights.get(key)
            && flight.peek().is_none()
        {
            return (flight.clone(), false);
        }
        let flight = start().shared();
        self.flights.insert(key.clone(), flight.clone());
        (flight, true)
    }

    /// Forgets `flight` under `key` (when it is still the one there).
    pub fn finish(&mut self, key: &K, flight: &Flight<V>) {
        if self.flights.get(key).is_some_and(|f| f.ptr_eq(flight)) {
            self.flights.remove(key);
        }
    }

    /// How many flights run.
    pub fn len(&self) -> usize {
        self.flights.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flights.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn callers_join_the_running_flight_and_a_finished_one_is_not_joined() {
        let mut flights: SingleFlight<&str, u32> = SingleFlight::default();
        let runs = Arc::new(AtomicU32::new(0));
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let counter = runs.clone();
        let (first, started) = flights.join_or_start(&"s", move || {
            Box::pin(async move {
                let _ = released.await;
                counter.fetch_add(1, Ordering::SeqCst) + 1
            })
        });
        assert!(started);
        let (second, started) = flights.join_or_start(&"s", || Box::pin(async { 99 }));
        assert!(!started, "a second caller joins");
        let (other, started) = flights.join_or_start(&"t", || Box::pin(async { 7 }));
        assert!(started, "another key has its own flight");
        assert_eq!(other.await, 7);

        let _ = release.send(());
        assert_eq!((first.clone().await, second.await), (1, 1));
        assert_eq!(runs.load(Ordering::SeqCst), 1, "one run for both callers");

        // Ended but not finished: a new caller starts afresh rather than reading a stale outcome.
        let (third, started) = flights.join_or_start(&"s", || Box::pin(async { 3 }));
        assert!(started);
        flights.finish(&"s", &first);
        assert_eq!(
            flights.len(),
            2,
            "finishing an older flight leaves the newer one"
        );
        flights.finish(&"s", &third);
        assert_eq!(third.await, 3);
    }
}
