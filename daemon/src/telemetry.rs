//! Logging: JSON lines on stdout at `LOG_LEVEL`, each carrying the fields of the request span
//! (`request_id`, method, path) it was written in.
//!
//! Lines are written by a background thread (`tracing-appender`), so a request never waits on
//! the stdout pipe: with one `request answered` line per request, writing in place halved the
//! throughput of `/-/healthz` in the benchmark. The queue blocks rather than drops when full:
//! an authentication service keeps its logs.

use tracing::{Event, Level, Subscriber};
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, JsonFields, Writer};
use tracing_subscriber::registry::LookupSpan;

/// Installs the global subscriber. Keep the returned guard until the process ends: dropping it
/// flushes the lines still queued. `None` when a subscriber was already installed.
#[must_use]
pub fn init(level: &str) -> Option<WorkerGuard> {
    let filter = EnvFilter::try_new(level)
        .or_else(|_| EnvFilter::try_new("info"))
        .unwrap_or_default();
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::stdout());
    let format = tracing_subscriber::fmt::format()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(true);
    tracing_subscriber::fmt()
        .fmt_fields(JsonFields::new())
        .event_format(ConnectionErrorsAsWarnings(format))
        .with_env_filter(filter)
        .with_writer(writer)
        .try_init()
        .ok()
        .map(|()| guard)
}

/// Where actix-http logs what went wrong with one connection: a request it could not parse (no
/// `Host`, a bad `Content-Length`, a control byte in a header, a head too large), a head that did
/// not arrive in time, a client that went away.
const CONNECTION_ERRORS_TARGET: &str = "actix_http::h1";

/// Writes actix-http's per-connection `ERROR` lines as `WARN`: any client can cause them at will
/// (one malformed request each), so they must not page anyone, and they concern that client's
/// connection, not the daemon. actix-http has already answered (400, 408 or 431, without a
/// body) and closed the connection; it does not tell the peer's address.
struct ConnectionErrorsAsWarnings<F>(F);

impl<S, N, F> FormatEvent<S, N> for ConnectionErrorsAsWarnings<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let metadata = event.metadata();
        if *metadata.level() != Level::ERROR
            || !metadata.target().starts_with(CONNECTION_ERRORS_TARGET)
        {
            return self.0.format_event(ctx, writer, event);
        }
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        writer.write_str(&line.replacen(r#""level":"ERROR""#, r#""level":"WARN""#, 1))
    }
}

/// Writes `error` and every `source()` below it on one line (`a: b: c`), for the `Debug` of the
/// daemon's error types, so one log line shows the whole cause chain.
pub fn write_cause_chain(
    f: &mut std::fmt::Formatter<'_>,
    error: &dyn std::error::Error,
) -> std::fmt::Result {
    write!(f, "{error}")?;
    let mut source = error.source();
    while let Some(cause) = source {
        write!(f, ": {cause}")?;
        source = cause.source();
    }
    Ok(())
}
