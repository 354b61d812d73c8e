//! Prometheus metrics (SPEC §8), served by `/-/metrics` from an actix route rather than an
//! exporter's own server, so the daemon listens on its configured sockets only.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use actix_web::http::StatusCode;
use prometheus::local::{LocalHistogram, LocalIntCounter};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};

/// Every metric of the daemon, registered once in one registry per application. A clone shares
/// the registry and every metric.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_request_duration: HistogramVec,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new(
                "auth0_client_http_requests_total",
                "HTTP requests answered, by route pattern and status.",
            ),
            &["route", "status"],
        )?;
        let http_request_duration = HistogramVec::new(
            HistogramOpts::new(
                "auth0_client_http_request_duration_seconds",
                "Time to answer an HTTP request, by route pattern.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
            &["route"],
        )?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_request_duration.clone()))?;
        Ok(Self {
            registry,
            http_requests,
            http_request_duration,
        })
    }

    /// Registers a collector added by a later part of the daemon (Auth0 calls, sessions, jobs).
    pub fn register(
        &self,
        collector: Box<dyn prometheus::core::Collector>,
    ) -> prometheus::Result<()> {
        self.registry.register(collector)
    }

    /// The recorder of the HTTP metrics for one worker (see [`HttpRecorder`]).
    pub fn recorder(&self) -> HttpRecorder {
        HttpRecorder {
            requests: self.http_requests.clone(),
            duration: self.http_request_duration.clone(),
            children: RefCell::default(),
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}

/// How often a worker publishes the HTTP metrics it has counted.
pub const HTTP_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Records the HTTP metrics of the requests one worker answers (each worker has its own: it is
/// not `Sync`). It counts in the worker's own memory and publishes to the shared metrics every
/// [`HTTP_FLUSH_INTERVAL`] ([`HttpRecorder::flush`]): updating counters shared by every worker on
/// each request made the cores fight over their cache lines, a cost the `/userinfo` profile
/// showed. `/-/metrics` is therefore up to a second behind.
pub struct HttpRecorder {
    requests: IntCounterVec,
    duration: HistogramVec,
    children: RefCell<HashMap<(String, u16), (LocalIntCounter, LocalHistogram)>>,
}

impl HttpRecorder {
    pub fn record(&self, route: String, status: StatusCode, elapsed: Duration) {
        let mut children = self.children.borrow_mut();
        let (requests, duration) =
            children
                .entry((route, status.as_u16()))
                .or_insert_with_key(|(route, _)| {
                    (
                        self.requests
                            .with_label_values(&[route.as_str(), status.as_str()])
                            .local(),
                        self.duration.with_label_values(&[route.as_str()]).local(),
                    )
                });
        requests.inc();
        duration.observe(elapsed.as_secs_f64());
    }

    /// Publishes what this worker counted since the last flush.
    pub fn flush(&self) {
        for (requests, duration) in self.children.borrow().values() {
            requests.flush();
            duration.flush();
        }
    }
}
