//! Logging: JSON lines on stdout at `LOG_LEVEL`, each carrying the fields of the request span
//! (`request_id`, method, path) it was written in.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls (tests start many apps) are no-ops.
pub fn init(level: &str) {
    let filter = EnvFilter::try_new(level)
        .or_else(|_| EnvFilter::try_new("info"))
        .unwrap_or_default();
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(true)
        .with_writer(std::io::stdout)
        .try_init();
}
