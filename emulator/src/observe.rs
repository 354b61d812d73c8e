//! What the control API injects into and records from every route but its own: the request log, the
//! 429 mode and per-route faults, applied by one middleware ([`observe`]) in front of all handlers.
//!
//! A route is named by its path: `/oauth/token`, `/api/v2/users`. A name ending in `*` matches every path
//! starting with what precedes it (`/api/v2/users*` covers `/api/v2/users/auth0%7C1`).

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use actix_web::{
    Error, HttpMessage as _, HttpResponse,
    body::{BodyStream, BoxBody, MessageBody},
    dev::{Payload, ServiceRequest, ServiceResponse},
    http::{
        StatusCode,
        header::{HeaderName, HeaderValue},
    },
    middleware::Next,
    web::{self, Bytes, BytesMut},
};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::state::{Tenant, epoch, now, timestamp};

/// Bodies above this are refused before any handler sees them.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// The request log drops its oldest entries beyond this many body bytes in all.
const MAX_LOGGED_BYTES: usize = 64 * 1024 * 1024;

/// One request as the emulator received it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedRequest {
    /// Arrival order, from 1, never reused by one emulator.
    pub seq: u64,
    pub method: String,
    /// Path as received (percent-encoding kept).
    pub path: String,
    /// Raw query string, `""` when none.
    pub query: String,
    /// Lowercase header names; repeated headers joined with `, `.
    pub headers: BTreeMap<String, String>,
    /// The body as text (lossy UTF-8).
    pub body: String,
    /// The body's fields when it is `application/x-www-form-urlencoded`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub form: Option<BTreeMap<String, String>>,
    /// The body when it is JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json: Option<Value>,
    /// Status answered, once answered.
    pub status: Option<u16>,
    pub received_at: String,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// A body field, from a form or a JSON object body (JSON strings as they are, other values as JSON text).
    pub fn param(&self, name: &str) -> Option<String> {
        if let Some(form) = &self.form {
            return form.get(name).cloned();
        }
        match self.json.as_ref()?.get(name)? {
            Value::String(text) => Some(text.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// The decoded query parameters.
    pub fn query_params(&self) -> BTreeMap<String, String> {
        serde_urlencoded::from_str(&self.query).unwrap_or_default()
    }
}

/// A fault injected on a route (`POST /__emulator/faults`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fault {
    /// Assigned by the emulator.
    #[serde(default)]
    pub id: u64,
    /// Path, or path prefix ending in `*`.
    pub route: String,
    /// Only this method (any when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Answer this status instead of calling the handler; absent: the handler answers (after `delayMs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The answer's body: JSON, sent as `application/json` (a JSON string is sent as plain text). Absent: an
    /// Auth0-shaped body for the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// Extra response headers (`Retry-After`, say).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Wait this long before answering (or before calling the handler).
    #[serde(default)]
    pub delay_ms: u64,
    /// Apply to this many matching requests, then disappear; absent: until cleared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Send the status line and headers, then close the connection mid-body (a network failure).
    #[serde(default)]
    pub drop_connection: bool,
    /// Requests this fault has applied to.
    #[serde(default)]
    pub hits: u64,
}

/// The 429 mode (`PUT /__emulator/rate-limit`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimit {
    /// Routes it applies to (same syntax as faults); empty: every route.
    #[serde(default)]
    pub routes: Vec<String>,
    /// `X-RateLimit-Reset`, epoch seconds; the mode ends at this time. Give it or `resetInSeconds`.
    #[serde(default)]
    pub reset_at: Option<i64>,
    #[serde(default, skip_serializing)]
    pub reset_in_seconds: Option<i64>,
    /// Requests still answered normally (with `X-RateLimit-Remaining` counting down) before the 429s start.
    #[serde(default)]
    pub remaining: u64,
    /// Add `Retry-After` (seconds to the reset) to the 429s, as Auth0's per-application policies do.
    #[serde(default)]
    pub retry_after: bool,
    /// Body of the 429s; absent: Auth0's for the route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// Requests answered 429 so far.
    #[serde(default)]
    pub limited: u64,
}

#[derive(Debug, Default)]
struct RequestLog {
    entries: VecDeque<RecordedRequest>,
    next_seq: u64,
    bytes: usize,
}

/// The control API's per-tenant instruments.
#[derive(Debug)]
pub struct Observer {
    log: Mutex<RequestLog>,
    faults: Mutex<(u64, Vec<Fault>)>,
    rate_limit: Mutex<Option<RateLimit>>,
    capacity: std::sync::atomic::AtomicUsize,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether `route` (a path or `prefix*`) names `path`.
pub fn route_matches(route: &str, path: &str) -> bool {
    match route.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => {
            route == path
                || route.strip_suffix('/') == Some(path)
                || path.strip_suffix('/') == Some(route)
        }
    }
}

impl Observer {
    pub fn new(capacity: usize) -> Self {
        Self {
            log: Mutex::new(RequestLog {
                next_seq: 1,
                ..RequestLog::default()
            }),
            faults: Mutex::new((1, Vec::new())),
            rate_limit: Mutex::new(None),
            capacity: std::sync::atomic::AtomicUsize::new(capacity),
        }
    }

    pub fn set_capacity(&self, capacity: usize) {
        self.capacity
            .store(capacity, std::sync::atomic::Ordering::Relaxed);
    }

    /// Every logged request, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.log).entries.iter().cloned().collect()
    }

    pub fn clear_requests(&self) {
        let mut log = lock(&self.log);
        log.entries.clear();
        log.bytes = 0;
    }

    fn record(&self, mut entry: RecordedRequest) -> u64 {
        let capacity = self.capacity.load(std::sync::atomic::Ordering::Relaxed);
        let mut log = lock(&self.log);
        entry.seq = log.next_seq;
        log.next_seq += 1;
        log.bytes += entry.body.len();
        let seq = entry.seq;
        log.entries.push_back(entry);
        while log.entries.len() > capacity.max(1)
            || (log.bytes > MAX_LOGGED_BYTES && log.entries.len() > 1)
        {
            if let Some(dropped) = log.entries.pop_front() {
                log.bytes -= dropped.body.len();
            }
        }
        seq
    }

    fn set_status(&self, seq: u64, status: u16) {
        let mut log = lock(&self.log);
        // Entries are in seq order: search from the newest, where a just-answered request almost always is.
        if let Some(entry) = log.entries.iter_mut().rev().find(|e| e.seq == seq) {
            entry.status = Some(status);
        }
    }

    /// Adds a fault; returns it with its id.
    pub fn add_fault(&self, mut fault: Fault) -> Fault {
        let mut faults = lock(&self.faults);
        fault.id = faults.0;
        fault.hits = 0;
        faults.0 += 1;
        faults.1.push(fault.clone());
        fault
    }

    pub fn faults(&self) -> Vec<Fault> {
        lock(&self.faults).1.clone()
    }

    /// Removes one fault (by id) or, with `None`, all; returns how many went.
    pub fn clear_faults(&self, id: Option<u64>) -> usize {
        let mut faults = lock(&self.faults);
        let before = faults.1.len();
        match id {
            Some(id) => faults.1.retain(|f| f.id != id),
            None => faults.1.clear(),
        }
        before - faults.1.len()
    }

    /// The first fault matching the request, counted as applied (and removed when its count is used up).
    fn take_fault(&self, method: &str, path: &str) -> Option<Fault> {
        let mut faults = lock(&self.faults);
        let index = faults.1.iter().position(|f| {
            route_matches(&f.route, path)
                && f.method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
        })?;
        let fault = &mut faults.1[index];
        fault.hits += 1;
        let applied = fault.clone();
        if let Some(count) = fault.count.as_mut() {
            *count = count.saturating_sub(1);
            if *count == 0 {
                faults.1.remove(index);
            }
        }
        Some(applied)
    }

    /// Starts (`Some`) or ends (`None`) the 429 mode.
    pub fn set_rate_limit(&self, mode: Option<RateLimit>) -> Option<RateLimit> {
        let mode = mode.map(|mut mode| {
            if mode.reset_at.is_none() {
                mode.reset_at = Some(epoch() + mode.reset_in_seconds.unwrap_or(60));
            }
            mode.reset_in_seconds = None;
            mode.limited = 0;
            mode
        });
        *lock(&self.rate_limit) = mode.clone();
        mode
    }

    pub fn rate_limit(&self) -> Option<RateLimit> {
        let mut mode = lock(&self.rate_limit);
        if mode
            .as_ref()
            .is_some_and(|m| m.reset_at.unwrap_or(0) <= epoch())
        {
            *mode = None;
        }
        mode.clone()
    }

    /// Applies the 429 mode to one request: `Err(response)` when it is limited, else the rate-limit headers
    /// (limit, remaining, reset) to announce.
    fn check_rate_limit(&self, path: &str, limit: u64) -> Result<(u64, u64, i64), HttpResponse> {
        let now = epoch();
        let mut guard = lock(&self.rate_limit);
        let Some(mode) = guard.as_mut() else {
            return Ok((limit, limit.saturating_sub(1), now + 1));
        };
        let reset_at = mode.reset_at.unwrap_or(now);
        if reset_at <= now {
            *guard = None;
            return Ok((limit, limit.saturating_sub(1), now + 1));
        }
        if !mode.routes.is_empty() && !mode.routes.iter().any(|r| route_matches(r, path)) {
            return Ok((limit, limit.saturating_sub(1), now + 1));
        }
        if mode.remaining > 0 {
            mode.remaining -= 1;
            return Ok((limit, mode.remaining, reset_at));
        }
        mode.limited += 1;
        let mut response = HttpResponse::TooManyRequests();
        response
            .insert_header(("x-ratelimit-limit", limit.to_string()))
            .insert_header(("x-ratelimit-remaining", "0"))
            .insert_header(("x-ratelimit-reset", reset_at.to_string()));
        if mode.retry_after {
            response.insert_header(("retry-after", (reset_at - now).max(1).to_string()));
        }
        Err(match &mode.body {
            Some(body) => body_response(&mut response, body),
            None => rate_limited_body(&mut response, path),
        })
    }
}

/// Auth0's 429 for a route family: Management API JSON ([OBS] wire reference §2.2), the plain text of
/// `/userinfo` and the JWKS ([DOC] §1.1), else the Authentication API's JSON ([DOC] §1.1).
fn rate_limited_body(response: &mut actix_web::HttpResponseBuilder, path: &str) -> HttpResponse {
    if path.starts_with("/api/v2") {
        response.content_type("application/json; charset=utf-8").body(
            json!({"statusCode": 429, "error": "Too Many Requests", "message": "Global limit has been reached",
                   "errorCode": "too_many_requests"})
            .to_string(),
        )
    } else if path == "/userinfo" || path == "/.well-known/jwks.json" {
        response
            .content_type("text/plain; charset=utf-8")
            .body("Rate limit exceed")
    } else {
        response.content_type("application/json").body(
            json!({"error": "too_many_requests", "error_description": "Rate limit exceeded."})
                .to_string(),
        )
    }
}

fn body_response(response: &mut actix_web::HttpResponseBuilder, body: &Value) -> HttpResponse {
    match body {
        Value::String(text) => response
            .content_type("text/plain; charset=utf-8")
            .body(text.clone()),
        other => response
            .content_type("application/json; charset=utf-8")
            .body(other.to_string()),
    }
}

/// A fault's answer when it gives no body: Auth0's error shape for the route family.
fn default_fault_body(path: &str, status: StatusCode) -> Value {
    let reason = status.canonical_reason().unwrap_or("Error");
    if path.starts_with("/api/v2") {
        json!({"statusCode": status.as_u16(), "error": reason, "message": reason})
    } else {
        let code = match status.as_u16() {
            401 => "access_denied",
            403 => "unauthorized_client",
            429 => "too_many_requests",
            503 => "temporarily_unavailable",
            500..=599 => "server_error",
            _ => "invalid_request",
        };
        json!({"error": code, "error_description": reason})
    }
}

fn fault_response(fault: &Fault, path: &str) -> HttpResponse {
    let status = fault
        .status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = HttpResponse::build(status);
    for (name, value) in &fault.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::from_str(value),
        ) {
            builder.insert_header((name, value));
        }
    }
    if fault.drop_connection {
        let broken = futures_util::stream::once(async {
            Err::<Bytes, std::io::Error>(std::io::Error::other(
                "connection dropped by an injected fault",
            ))
        });
        return builder.body(BodyStream::new(broken));
    }
    let body = fault
        .body
        .clone()
        .unwrap_or_else(|| default_fault_body(path, status));
    body_response(&mut builder, &body)
}

fn parse_form(body: &[u8]) -> Option<BTreeMap<String, String>> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
    Some(pairs.into_iter().collect())
}

/// The middleware: reads the body (and puts it back), logs the request, applies the 429 mode and faults,
/// calls the handler, adds the rate-limit headers and records the status. `/__emulator/*` is left alone.
pub async fn observe(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let tenant = req.app_data::<web::Data<Tenant>>().cloned();
    let Some(tenant) = tenant.filter(|_| !req.path().starts_with("/__emulator")) else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };

    let mut payload = req.take_payload();
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            let response = HttpResponse::PayloadTooLarge()
                .content_type("text/plain; charset=utf-8")
                .body(format!(
                    "the emulator accepts bodies up to {MAX_BODY_BYTES} bytes"
                ));
            return Ok(req.into_response(response));
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    req.set_payload(Payload::from(body.clone()));

    let path = req.path().to_string();
    let method = req.method().to_string();
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in req.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_string())
            .and_modify(|v| (*v).push_str(&format!(", {value}")))
            .or_insert(value);
    }
    let content_type = headers
        .get("content-type")
        .map(|c| c.to_ascii_lowercase())
        .unwrap_or_default();
    let form = if content_type.starts_with("application/x-www-form-urlencoded") {
        parse_form(&body)
    } else {
        None
    };
    let json = if content_type.contains("json") {
        serde_json::from_slice(&body).ok()
    } else {
        None
    };
    let seq = tenant.observer.record(RecordedRequest {
        seq: 0,
        method: method.clone(),
        path: path.clone(),
        query: req.query_string().to_string(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        form,
        json,
        status: None,
        received_at: timestamp(now()),
    });

    let limit = tenant.data().settings.rate_limit_limit;
    let (limit, remaining, reset) = match tenant.observer.check_rate_limit(&path, limit) {
        Ok(headers) => headers,
        Err(response) => {
            tenant.observer.set_status(seq, response.status().as_u16());
            return Ok(req.into_response(response));
        }
    };

    if let Some(fault) = tenant.observer.take_fault(&method, &path) {
        if fault.delay_ms > 0 {
            actix_web::rt::time::sleep(Duration::from_millis(fault.delay_ms)).await;
        }
        if fault.status.is_some() || fault.drop_connection {
            let response = fault_response(&fault, &path);
            tenant.observer.set_status(seq, response.status().as_u16());
            return Ok(req.into_response(response));
        }
    }

    let mut response = next.call(req).await?.map_into_boxed_body();
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-ratelimit-limit", limit.to_string()),
        ("x-ratelimit-remaining", remaining.to_string()),
        ("x-ratelimit-reset", reset.to_string()),
    ] {
        let name = HeaderName::from_static(name);
        if !headers.contains_key(&name)
            && let Ok(value) = HeaderValue::from_str(&value)
        {
            headers.insert(name, value);
        }
    }
    tenant.observer.set_status(seq, response.status().as_u16());
    Ok(response)
}

/// A JSON object of the form fields, for callers that want `form` and `json` alike.
pub fn form_as_json(form: &BTreeMap<String, String>) -> Value {
    Value::Object(
        form.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<_, _>>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert!(route_matches("/oauth/token", "/oauth/token"));
        assert!(!route_matches("/oauth/token", "/oauth/tokens"));
        assert!(route_matches("/api/v2/users*", "/api/v2/users/auth0%7C1"));
        assert!(route_matches("/api/v2/users*", "/api/v2/users"));
        assert!(!route_matches("/api/v2/users", "/api/v2/users/x"));
    }

    #[test]
    fn counted_faults_expire() {
        let observer = Observer::new(10);
        observer.add_fault(Fault {
            id: 0,
            route: "/oauth/token".into(),
            method: Some("POST".into()),
            status: Some(503),
            body: None,
            headers: BTreeMap::new(),
            delay_ms: 0,
            count: Some(2),
            drop_connection: false,
            hits: 0,
        });
        assert!(observer.take_fault("GET", "/oauth/token").is_none());
        assert!(observer.take_fault("POST", "/oauth/token").is_some());
        assert_eq!(observer.faults()[0].hits, 1);
        assert!(observer.take_fault("POST", "/oauth/token").is_some());
        assert!(observer.take_fault("POST", "/oauth/token").is_none());
    }

    #[test]
    fn log_is_bounded() {
        let observer = Observer::new(2);
        for _ in 0..3 {
            observer.record(RecordedRequest {
                seq: 0,
                method: "GET".into(),
                path: "/".into(),
                query: String::new(),
                headers: BTreeMap::new(),
                body: String::new(),
                form: None,
                json: None,
                status: None,
                received_at: String::new(),
            });
        }
        let seqs: Vec<u64> = observer.requests().iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [2, 3]);
    }
}
