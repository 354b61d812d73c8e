//! Prometheus metrics (SPEC §8), served by `/-/metrics` from an actix route rather than an
//! exporter's own server, so the daemon listens on its configured sockets only.

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

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}
