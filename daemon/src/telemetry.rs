//! Logging: JSON lines on stdout at `LOG_LEVEL`, in one of two shapes (`LOG_FORMAT`,
//! `server.logFormat`; SPEC §8):
//!
//! | format | shape |
//! |---|---|
//! | `json` (default) | tracing's JSON: `level` as a name, `message`, `target`, the request span's fields under `span` |
//! | `mia` | the upstream service's glogger shape: `{"level":30,"time":<unix ms>,"msg":...,"reqId":...}`, the event's fields beside them, a dotted field name (`http.request.method`) nested |
//!
//! Choices:
//! - The subscriber is installed before the config is loaded (so its warnings and errors are
//!   lines of the chosen shape), with the shape `LOG_FORMAT` names; [`set_format`] then applies
//!   the loaded `server.logFormat`. The shape is one atomic read per line.
//! - `mia` levels: trace 10, debug 20, info 30, warn 40, error 50 (tracing has no fatal, 60).
//! - A line written while a request is handled carries the request ([`RequestScope`]): its
//!   fields under `span` (`json`), its id as `reqId` (`mia`).
//! - actix-web writes some lines through the `log` crate (actix-http and actix-server use
//!   tracing): [`LogBridge`] hands them to tracing, so they take the chosen shape too, their
//!   `log` target as the `logger` field.
//! - Both shapes are written by hand, field by field, into the buffer `tracing-subscriber` reuses
//!   per thread, JSON-escaped on the way (no HTML escaping, as upstream 3.1.1), and handed to the
//!   writer in one write: no allocation per field. (tracing-subscriber's own JSON formatter
//!   re-parses the span's fields with serde_json on every line and allocates per field: with one
//!   access line per request it was the largest cost of `/userinfo`.) The `json` shape is
//!   tracing-subscriber's (`timestamp` RFC 3339 in µs, `level`, the event's fields, `target`,
//!   `span` with the request's fields and `name`), so what reads it keeps working.
//! - No tracing span is opened in the process (the request is a [`RequestScope`]; hyper's spans
//!   need a cfg this build does not set), so the formatter writes no span's fields: a span opened
//!   one day would need its fields written here.
//!
//! Lines are written by a background thread ([`queue`]), so a request never waits on the stdout
//! pipe: with one access line per request, writing in place halved the throughput of
//! `/-/healthz` in the benchmark. The queue blocks rather than drops when full: an
//! authentication service keeps its logs.

mod queue;
mod scope;

pub use queue::QueueGuard;
pub use scope::{InScope, MAX_LOGGED_PATH_CHARS, RequestScope};

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::LogFormat;

/// Whether lines take the `mia` shape.
static MIA: AtomicBool = AtomicBool::new(false);

/// The queue of the installed subscriber, where [`request_answered`] writes its line itself.
static ACCESS_LINES: OnceLock<queue::LineQueue> = OnceLock::new();

/// The access line's target: the middleware's module, whose `tracing::info!` it was, so that
/// `LOG_LEVEL` directives naming it apply as they did.
const ACCESS_TARGET: &str = "auth0_client::http::observe";

/// Installs the global subscriber with `format` (the `LOG_FORMAT` variable's, before the config
/// is loaded). Keep the returned guard until the process ends: dropping it flushes the lines
/// still queued. `None` when a subscriber was already installed.
#[must_use]
pub fn init(level: &str, format: LogFormat) -> Option<QueueGuard> {
    set_format(format);
    let filter = EnvFilter::try_new(level)
        .or_else(|_| EnvFilter::try_new("info"))
        .unwrap_or_default();
    let (writer, guard) = queue::spawn(std::io::stdout());
    tracing_subscriber::fmt()
        .event_format(Lines(None))
        .with_env_filter(filter)
        .with_writer(writer.clone())
        .finish()
        .try_init()
        .ok()?;
    let _ = ACCESS_LINES.set(writer);
    if log::set_logger(&LogBridge).is_ok() {
        log::set_max_level(match tracing::level_filters::LevelFilter::current() {
            tracing::level_filters::LevelFilter::TRACE => log::LevelFilter::Trace,
            tracing::level_filters::LevelFilter::DEBUG => log::LevelFilter::Debug,
            tracing::level_filters::LevelFilter::INFO => log::LevelFilter::Info,
            tracing::level_filters::LevelFilter::WARN => log::LevelFilter::Warn,
            tracing::level_filters::LevelFilter::ERROR => log::LevelFilter::Error,
            _ => log::LevelFilter::Off,
        });
    }
    Some(guard)
}

/// Hands `log` records (actix-web's) to tracing, under the target `log`.
struct LogBridge;

impl log::Log for LogBridge {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        let target = record.target();
        let text = record.args();
        match record.level() {
            log::Level::Error => tracing::error!(target: "log", logger = target, "{text}"),
            log::Level::Warn => tracing::warn!(target: "log", logger = target, "{text}"),
            log::Level::Info => tracing::info!(target: "log", logger = target, "{text}"),
            log::Level::Debug => tracing::debug!(target: "log", logger = target, "{text}"),
            log::Level::Trace => tracing::trace!(target: "log", logger = target, "{text}"),
        }
    }

    fn flush(&self) {}
}

/// Sets the shape of the lines from now on (the loaded `server.logFormat`).
pub fn set_format(format: LogFormat) {
    MIA.store(format == LogFormat::Mia, Ordering::Relaxed);
}

/// The shape lines take now.
pub fn format() -> LogFormat {
    if MIA.load(Ordering::Relaxed) {
        LogFormat::Mia
    } else {
        LogFormat::Json
    }
}

/// Where actix-http logs what went wrong with one connection: a request it could not parse (no
/// `Host`, a bad `Content-Length`, a control byte in a header, a head too large), a head that did
/// not arrive in time, a client that went away.
const CONNECTION_ERRORS_TARGET: &str = "actix_http::h1";

/// actix-http's per-connection `ERROR` lines are written as `WARN`: any client can cause them at
/// will (one malformed request each), so they must not page anyone, and they concern that
/// client's connection, not the daemon. actix-http has already answered (400, 408 or 431,
/// without a body) and closed the connection; it does not tell the peer's address.
fn is_connection_error(event: &Event<'_>) -> bool {
    let metadata = event.metadata();
    *metadata.level() == Level::ERROR && metadata.target().starts_with(CONNECTION_ERRORS_TARGET)
}

/// The event formatter: `mia` or tracing's JSON shape, as [`format`] says; a test pins one shape
/// (the global shape is shared by the tests running at once).
struct Lines(Option<LogFormat>);

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        match self.0.unwrap_or_else(format) {
            LogFormat::Mia => write_mia(writer, event),
            LogFormat::Json => write_json(writer, event),
        }
    }
}

/// One `json` line, tracing-subscriber's shape: `timestamp`, `level`, the event's fields
/// (`message` among them), `target`, and, in a request, its fields with `"name":"request"` as
/// `span`.
fn write_json(mut writer: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
    let metadata = event.metadata();
    writer.write_str("{\"timestamp\":\"")?;
    write_timestamp(&mut writer, SystemTime::now())?;
    let level = if is_connection_error(event) {
        "WARN"
    } else {
        metadata.level().as_str()
    };
    write!(writer, "\",\"level\":\"{level}\"")?;
    let mut fields = Members::new(&mut writer, false);
    event.record(&mut fields);
    fields.finish()?;
    writer.write_str(",\"target\":")?;
    write_json_str(&mut writer, metadata.target())?;
    write_span(&mut writer)?;
    writer.write_str("}\n")
}

/// A request's `json` access line (`request answered`), at INFO under [`ACCESS_TARGET`]. With the
/// daemon's subscriber installed, the line is written here, straight into a reused buffer and the
/// queue, byte for byte what the event would give ([`write_answered`]): going through tracing's
/// event, its field visitor and the message's formatting cost more than the rest of the line.
/// Without it (a test's own subscriber), it is the event.
pub fn request_answered(status: u16, route: &str, elapsed: Duration) {
    thread_local! {
        static LINE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    let duration_ms = elapsed.as_secs_f64() * 1000.0;
    let Some(queue) = ACCESS_LINES.get() else {
        tracing::info!(target: ACCESS_TARGET, status, route, duration_ms, "request answered");
        return;
    };
    if !tracing::enabled!(target: ACCESS_TARGET, Level::INFO) {
        return;
    }
    LINE.with_borrow_mut(|line| {
        line.clear();
        if write_answered(line, status, route, duration_ms).is_ok() {
            // As for every line: nowhere to report a failed write to.
            let _ =
                tracing_subscriber::fmt::MakeWriter::make_writer(queue).write_all(line.as_bytes());
        }
    });
}

/// The line [`write_json`] writes for the access event: the same members in the same order.
fn write_answered(
    line: &mut String,
    status: u16,
    route: &str,
    duration_ms: f64,
) -> std::fmt::Result {
    line.push_str("{\"timestamp\":\"");
    write_timestamp(line, SystemTime::now())?;
    line.push_str("\",\"level\":\"INFO\",\"message\":\"request answered\",\"status\":");
    line.push_str(itoa::Buffer::new().format(status));
    line.push_str(",\"route\":");
    write_json_str(line, route)?;
    line.push_str(",\"duration_ms\":");
    write_json_f64(line, duration_ms)?;
    line.push_str(",\"target\":\"");
    line.push_str(ACCESS_TARGET);
    line.push('"');
    write_span(line)?;
    line.push_str("}\n");
    Ok(())
}

/// The request's fields as tracing-subscriber's `span` member, when a request is handled.
fn write_span(writer: &mut impl std::fmt::Write) -> std::fmt::Result {
    scope::with_current(|request| match request {
        Some(request) => writer
            .write_str(",\"span\":{")
            .and_then(|()| request.write_members(writer))
            .and_then(|()| writer.write_str(",\"name\":\"request\"}")),
        None => Ok(()),
    })
}

/// A number as serde_json writes it (ryu: `1.0`, `2.5e-7`), `null` when not finite.
fn write_json_f64(writer: &mut impl std::fmt::Write, value: f64) -> std::fmt::Result {
    if value.is_finite() {
        writer.write_str(ryu::Buffer::new().format_finite(value))
    } else {
        writer.write_str("null")
    }
}

/// glogger's numeric level of an event.
fn mia_level(event: &Event<'_>) -> u8 {
    match *event.metadata().level() {
        Level::TRACE => 10,
        Level::DEBUG => 20,
        Level::INFO => 30,
        Level::WARN => 40,
        Level::ERROR if is_connection_error(event) => 40,
        Level::ERROR => 50,
    }
}

/// One `mia` line: `level`, `time`, the event's fields (`message` as `msg`), `reqId`.
fn write_mia(mut writer: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
    let time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    write!(writer, "{{\"level\":{},\"time\":{time}", mia_level(event))?;
    let mut fields = Members::new(&mut writer, true);
    event.record(&mut fields);
    fields.finish()?;
    scope::with_current(|request| match request {
        Some(request) => writer
            .write_str(",\"reqId\":")
            .and_then(|()| write_json_str(&mut writer, request.request_id())),
        None => Ok(()),
    })?;
    writer.write_str("}\n")
}

/// Writes an event's fields as JSON members after the ones already written. In the `mia` shape
/// (`nest`) a dotted name is a path: `http.request.method` then `http.response.statusCode` give
/// `"http":{"request":{"method":..},"response":{"statusCode":..}}`, as long as fields sharing a
/// prefix are recorded one after the other (as the access line declares them), and `message` is
/// `msg`; in the `json` shape names are written as they are.
struct Members<'w, 'b> {
    writer: &'w mut Writer<'b>,
    nest: bool,
    /// The previous field's name: its parent segments are the objects open now.
    open: Option<&'static str>,
    result: std::fmt::Result,
}

impl<'w, 'b> Members<'w, 'b> {
    fn new(writer: &'w mut Writer<'b>, nest: bool) -> Self {
        Self {
            writer,
            nest,
            open: None,
            result: Ok(()),
        }
    }

    /// Closes the objects still open; the first error met while recording.
    fn finish(mut self) -> std::fmt::Result {
        let depth = self.open.map_or(0, parents);
        for _ in 0..depth {
            self.write("}");
        }
        self.result
    }

    fn write(&mut self, text: &str) {
        if self.result.is_ok() {
            self.result = self.writer.write_str(text);
        }
    }

    /// Opens `name`'s member: closes the objects the previous field opened that `name` is not in,
    /// opens the ones it is in, and writes its key (the last segment; `message` as `msg`).
    fn key(&mut self, name: &'static str) {
        if !self.nest {
            self.write(",\"");
            self.write(name);
            self.write("\":");
            return;
        }
        let depth = self.open.map_or(0, parents);
        let shared = self.open.map_or(0, |open| {
            open.split('.')
                .take(depth)
                .zip(name.split('.').take(parents(name)))
                .take_while(|(a, b)| a == b)
                .count()
        });
        for _ in shared..depth {
            self.write("}");
        }
        // A member right after an object's `{` takes no comma.
        let mut fresh = false;
        for segment in name.split('.').skip(shared).take(parents(name) - shared) {
            self.write(if fresh { "\"" } else { ",\"" });
            self.write(segment);
            self.write("\":{");
            fresh = true;
        }
        let last = name.rsplit('.').next().unwrap_or(name);
        let last = if name == "message" { "msg" } else { last };
        self.write(if fresh { "\"" } else { ",\"" });
        self.write(last);
        self.write("\":");
        self.open = Some(name);
    }

    fn string(&mut self, value: &str) {
        if self.result.is_ok() {
            self.result = write_json_str(self.writer, value);
        }
    }
}

/// `now` as tracing-subscriber writes it: RFC 3339 in UTC to the microsecond
/// (`2026-12-07T13:14:00.123456Z`). The date and time of day (the `time` crate's) are formatted
/// once per second per thread, the microseconds into the same buffer; tracing-subscriber's
/// formatter took about 2,400 instructions a line.
fn write_timestamp(writer: &mut impl std::fmt::Write, now: SystemTime) -> std::fmt::Result {
    use std::cell::Cell;
    const SECOND_FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    thread_local! {
        static LINE: Cell<(u64, [u8; 27])> = const { Cell::new((u64::MAX, *b"0000-00-00T00:00:00.000000Z")) };
    }
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since.as_secs();
    let (cached, mut text) = LINE.get();
    if cached != seconds {
        let second = i64::try_from(seconds)
            .ok()
            .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
            .and_then(|t| t.format(SECOND_FORMAT).ok())
            .ok_or(std::fmt::Error)?;
        // A year past 9999 does not fit: written as it is, uncached.
        let Some(date) = text.get_mut(..19).filter(|_| second.len() == 19) else {
            return write!(writer, "{second}.{:06}Z", since.subsec_micros());
        };
        date.copy_from_slice(second.as_bytes());
        LINE.set((seconds, text));
    }
    let mut micros = since.subsec_micros();
    for digit in text[20..26].iter_mut().rev() {
        *digit = b'0' + u8::try_from(micros % 10).unwrap_or(0);
        micros /= 10;
    }
    writer.write_str(std::str::from_utf8(&text).map_err(|_| std::fmt::Error)?)
}

/// How many objects a dotted name is nested in.
fn parents(name: &str) -> usize {
    name.bytes().filter(|&b| b == b'.').count()
}

impl Visit for Members<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field.name());
        self.string(value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.key(field.name());
        if self.result.is_ok() {
            self.result = self
                .writer
                .write_char('"')
                .and_then(|()| write!(JsonEscaped(self.writer), "{value:?}"))
                .and_then(|()| self.writer.write_char('"'));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field.name());
        self.write(itoa::Buffer::new().format(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field.name());
        self.write(itoa::Buffer::new().format(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field.name());
        if self.result.is_ok() {
            self.result = write_json_f64(self.writer, value);
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field.name());
        self.write(if value { "true" } else { "false" });
    }
}

/// `value` as a JSON string, quotes included.
fn write_json_str(writer: &mut impl std::fmt::Write, value: &str) -> std::fmt::Result {
    writer.write_char('"')?;
    JsonEscaped(writer).write_str(value)?;
    writer.write_char('"')
}

/// A writer that JSON-escapes what goes through it (quotes, backslashes, control characters), in
/// runs: the text between two escapes is one write.
struct JsonEscaped<'a, W: std::fmt::Write + ?Sized>(&'a mut W);

impl<W: std::fmt::Write + ?Sized> std::fmt::Write for JsonEscaped<'_, W> {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        // Almost every value needs no escape: one scan, one write.
        if !text.bytes().any(needs_escape) {
            return self.0.write_str(text);
        }
        let mut start = 0;
        for (i, byte) in text.bytes().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f | 0x7f => "",
                _ => continue,
            };
            self.0.write_str(&text[start..i])?;
            if escape.is_empty() {
                write!(self.0, "\\u{byte:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            start = i + 1;
        }
        self.0.write_str(&text[start..])
    }
}

/// Whether a byte is written escaped in a JSON string.
fn needs_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\' || byte == 0x7f
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

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;
    use actix_web::http::{Method, Uri};

    use super::*;

    #[test]
    fn timestamps_are_rfc_3339_to_the_microsecond() {
        let at = |seconds: u64, micros: u64| {
            let mut text = String::new();
            let time = UNIX_EPOCH
                + std::time::Duration::from_secs(seconds)
                + std::time::Duration::from_micros(micros);
            write_timestamp(&mut text, time).expect("write");
            text
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400, 7), "2000-02-29T00:00:00.000007Z");
        assert_eq!(at(1_796_601_599, 999_999), "2026-12-06T23:59:59.999999Z");
        // The same second again (cached), then the next one.
        assert_eq!(at(1_796_601_599, 120_000), "2026-12-06T23:59:59.120000Z");
        assert_eq!(at(1_780_000_000, 123_456), "2026-05-28T20:26:40.123456Z");
        assert_eq!(at(4_102_444_800, 0), "2100-01-01T00:00:00.000000Z");
    }

    #[test]
    fn json_strings_are_escaped_in_runs() {
        let mut out = String::new();
        write_json_str(&mut out, "a\"b\\c\nd\u{1}é").expect("write");
        assert_eq!(out, r#""a\"b\\c\nd\u0001é""#);
        let parsed: String = serde_json::from_str(&out).expect("valid JSON");
        assert_eq!(parsed, "a\"b\\c\nd\u{1}é");
    }

    /// What a writer was given, and in how many writes (shared with the queue's tests).
    #[derive(Clone, Default)]
    pub(super) struct Captured(pub(super) std::sync::Arc<std::sync::Mutex<(Vec<u8>, usize)>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let mut captured = self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            captured.0.extend_from_slice(bytes);
            captured.1 += 1;
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What `emit` logs, written by one shape's formatter.
    fn text_of(format: LogFormat, emit: impl FnOnce()) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(Lines(Some(format)))
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let bytes = captured.0.lock().expect("lock").0.clone();
        String::from_utf8(bytes).expect("utf8")
    }

    /// The lines of `emit`, written by one shape's formatter.
    fn lines_of(format: LogFormat, emit: impl FnOnce()) -> Vec<serde_json::Value> {
        text_of(format, emit)
            .lines()
            .map(|line| serde_json::from_str(line).expect("each line is JSON"))
            .collect()
    }

    /// Runs `emit` in the scope of a GET of `uri` with the request id `id`.
    fn in_get_request(id: &'static str, uri: &'static str, emit: impl FnOnce()) {
        RequestScope::new(
            HeaderValue::from_static(id),
            Method::GET,
            Uri::from_static(uri),
        )
        .in_scope(emit);
    }

    #[test]
    fn dotted_names_nest_and_the_request_id_is_the_scopes() {
        let lines = lines_of(LogFormat::Mia, || {
            in_get_request("r-1", "/", || {
                tracing::warn!(
                    a.b.c = 1_u64,
                    a.b.d = "two",
                    a.e = true,
                    f.g = 2.5,
                    top = "x\"y",
                    "it \"happened\""
                );
            });
        });
        assert_eq!(lines.len(), 1, "one line: {lines:?}");
        let line = &lines[0];
        assert_eq!(line["level"], 40);
        assert!(
            line["time"].as_u64().is_some_and(|t| t > 1_700_000_000_000),
            "{line}"
        );
        assert_eq!(line["msg"], "it \"happened\"");
        assert_eq!(line["reqId"], "r-1");
        assert_eq!(
            line["a"],
            serde_json::json!({"b": {"c": 1, "d": "two"}, "e": true})
        );
        assert_eq!(line["f"]["g"], 2.5);
        assert_eq!(line["top"], "x\"y");
        assert_eq!(parents("http.request.userAgent.original"), 3);
    }

    #[test]
    fn json_lines_keep_tracing_subscribers_shape() {
        let lines = lines_of(LogFormat::Json, || {
            tracing::info!(plain = 1_u64, "outside any span");
            in_get_request("r-\"1", "/userinfo?x=1", || {
                tracing::info!(
                    status = 200_u64,
                    route = %"/userinfo",
                    duration_ms = 0.25,
                    neg = -3_i64,
                    ok = true,
                    http.request.method = "GET",
                    "request \"answered\"\n"
                );
            });
            tracing::error!(target: "actix_http::h1::dispatcher", "stream error: bad head");
        });
        assert_eq!(lines.len(), 3, "{lines:?}");
        let [outside, answered, connection] = [&lines[0], &lines[1], &lines[2]];
        assert_eq!(outside["level"], "INFO");
        assert_eq!(outside["message"], "outside any span");
        assert_eq!(outside["plain"], 1);
        assert!(outside.get("span").is_none(), "{outside}");
        let stamp = answered["timestamp"].as_str().expect("a timestamp");
        assert!(
            stamp.len() == 27 && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
            "RFC 3339 in microseconds: {stamp}"
        );
        assert_eq!(answered["message"], "request \"answered\"\n");
        assert_eq!(answered["status"], 200);
        assert_eq!(answered["route"], "/userinfo");
        assert_eq!(answered["duration_ms"], 0.25);
        assert_eq!(answered["neg"], -3);
        assert_eq!(answered["ok"], true);
        assert_eq!(answered["http.request.method"], "GET");
        assert_eq!(answered["target"], module_path!());
        assert_eq!(
            answered["span"],
            serde_json::json!({"name": "request", "request_id": "r-\"1", "method": "GET", "path": "/userinfo"})
        );
        assert_eq!(
            connection["level"], "WARN",
            "a client's bad request pages no one"
        );
    }

    #[test]
    fn the_access_line_written_directly_is_the_events_line_byte_for_byte() {
        // The 27 characters of the timestamp are the only ones that may differ.
        let masked = |line: &str| {
            let start = "{\"timestamp\":\"".len();
            format!("{}{}", &line[..start], &line[start + 27..])
        };
        let cases = [
            (200, "/userinfo", Duration::from_nanos(42_118)),
            (404, "unmatched", Duration::from_secs(2)),
            (503, "/users/{userID}", Duration::ZERO),
            (400, "/a\"b\\c\u{1}", Duration::from_micros(1_234_567)),
        ];
        for (status, route, elapsed) in cases {
            for in_request in [true, false] {
                let in_scope = |emit: &mut dyn FnMut()| {
                    if in_request {
                        in_get_request("r-\"1", "/users/a%20b?x=1", emit);
                    } else {
                        emit();
                    }
                };
                // Without the daemon's queue installed, `request_answered` sends the event.
                let event = text_of(LogFormat::Json, || {
                    in_scope(&mut || request_answered(status, route, elapsed));
                });
                let mut direct = String::new();
                in_scope(&mut || {
                    write_answered(&mut direct, status, route, elapsed.as_secs_f64() * 1000.0)
                        .expect("written");
                });
                assert_eq!(
                    masked(&direct),
                    masked(&event),
                    "{status} {route} {elapsed:?}"
                );
                let line: serde_json::Value = serde_json::from_str(&direct).expect("JSON");
                assert_eq!(line["route"], route);
                assert_eq!(line["target"], "auth0_client::http::observe");
                assert_eq!(line.get("span").is_some(), in_request, "{line}");
            }
        }
    }
}
