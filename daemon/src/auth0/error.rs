//! [`Auth0Error`]: how a call to Auth0 failed (unreachable, timed out, refused with a status, or
//! answered something unreadable); [`GrantFailure`]: what that failure means for a token grant
//! (SPEC §5). The HTTP answer each gets is `http/error.rs`'s business (SPEC §4).

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

/// The wait announced when Auth0 says neither `Retry-After` nor `X-RateLimit-Reset` (SPEC §4).
pub const DEFAULT_RETRY_AFTER_SECONDS: u64 = 60;

/// A description longer than this (a non-JSON body, say) is cut: it ends up in logs and answers.
const MAX_DESCRIPTION_CHARS: usize = 300;

/// A failed call to Auth0. Its `Display` and `Debug` carry no secret and no token: not the request
/// (which holds the client secret or the password) and not the raw body of a refusal (an
/// `mfa_required` answer holds an `mfa_token`).
#[derive(thiserror::Error)]
pub enum Auth0Error {
    /// No connection (refused, DNS, TLS) or the connection broke before the whole answer came.
    #[error("Auth0 is unreachable ({endpoint})")]
    Unreachable {
        endpoint: &'static str,
        /// The connection could not be established, so nothing was sent: safe to retry any call.
        before_sending: bool,
        #[source]
        source: reqwest::Error,
    },
    /// No whole answer within `server.auth0TimeoutMs`.
    #[error("Auth0 did not answer {endpoint} within {timeout_ms} ms")]
    Timeout {
        endpoint: &'static str,
        timeout_ms: u64,
    },
    /// Auth0 answered with a status other than 2xx.
    #[error("{0}")]
    Status(Box<HttpFailure>),
    /// A 2xx answer the daemon cannot read (not JSON, a field missing or of the wrong type).
    #[error("Auth0 answered {endpoint} with an unexpected body: {reason}")]
    InvalidAnswer {
        endpoint: &'static str,
        reason: String,
    },
}

/// Debug walks the whole `source()` chain, so one log line shows every cause.
impl std::fmt::Debug for Auth0Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::telemetry::write_cause_chain(f, self)
    }
}

/// A non-2xx answer of Auth0, parsed once.
pub struct HttpFailure {
    /// The endpoint label of the call (`/oauth/token`).
    pub endpoint: &'static str,
    pub status: StatusCode,
    /// Auth0's machine-readable code: `error` of the Authentication API
    /// (`{"error", "error_description"}`), `errorCode` of the Management API
    /// (`{"statusCode", "error", "message", "errorCode"}`), else its `error`.
    pub code: Option<String>,
    /// Auth0's human-readable text: `error_description`, else `message`, else the text of a
    /// non-JSON, non-HTML body (cut to a few hundred characters).
    pub description: Option<String>,
    /// Seconds to wait, for a 429: `Retry-After`, else `X-RateLimit-Reset` minus now, else 60.
    /// `None` for other statuses.
    pub retry_after: Option<u64>,
    /// The answer's headers (rate-limit headers, for the management client).
    pub headers: HeaderMap,
    /// The raw body, for routes that pass Auth0's answer through; never logged.
    pub body: Vec<u8>,
}

impl HttpFailure {
    /// Parses a refusal; `now` is the current unix time in seconds (for `X-RateLimit-Reset`).
    pub fn new(
        endpoint: &'static str,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Self {
        let (code, description) = parse_error_body(headers, body);
        let retry_after =
            (status == StatusCode::TOO_MANY_REQUESTS).then(|| retry_after_seconds(headers, now));
        Self {
            endpoint,
            status,
            code,
            description,
            retry_after,
            headers: headers.clone(),
            body: body.to_vec(),
        }
    }

    /// The `Content-Type` of the answer, when it had one.
    pub fn content_type(&self) -> Option<&str> {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
    }
}

impl std::fmt::Display for HttpFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Auth0 answered {} with HTTP {}",
            self.endpoint,
            self.status.as_u16()
        )?;
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        if let Some(description) = &self.description {
            write!(f, ": {description}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for HttpFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpFailure")
            .field("endpoint", &self.endpoint)
            .field("status", &self.status.as_u16())
            .field("code", &self.code)
            .field("description", &self.description)
            .field("retry_after", &self.retry_after)
            .field("body_bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// Auth0's `error` code and description from a JSON error body of either API, or the text of a
/// plain-text one (`Rate limit exceed`). HTML error pages give neither.
fn parse_error_body(headers: &HeaderMap, body: &[u8]) -> (Option<String>, Option<String>) {
    if let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) {
        let text = |name: &str| {
            fields
                .get(name)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(cut)
        };
        let code = text("errorCode").or_else(|| text("error"));
        let description = text("error_description").or_else(|| text("message"));
        return (code, description);
    }
    let is_html = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("html"));
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if is_html || text.starts_with('<') || text.is_empty() {
        return (None, None);
    }
    (None, Some(cut(text)))
}

fn cut(text: &str) -> String {
    match text.char_indices().nth(MAX_DESCRIPTION_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// Seconds a caller should wait after a 429 (SPEC §4): Auth0's `Retry-After` (seconds or an HTTP
/// date), else `X-RateLimit-Reset` (epoch seconds) minus `now`, else 60; never less than 1.
pub fn retry_after_seconds(headers: &HeaderMap, now: i64) -> u64 {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let until = |at: i64| u64::try_from(at.saturating_sub(now)).unwrap_or(0).max(1);
    if let Some(value) = header(RETRY_AFTER.as_str()) {
        if let Ok(seconds) = value.parse::<u64>() {
            return seconds.max(1);
        }
        if let Ok(date) = OffsetDateTime::parse(value, &Rfc2822) {
            return until(date.unix_timestamp());
        }
    }
    if let Some(reset) = header("x-ratelimit-reset").and_then(|v| v.parse::<i64>().ok()) {
        return until(reset);
    }
    DEFAULT_RETRY_AFTER_SECONDS
}

/// What a failed token grant (password, code exchange, refresh) means, on Auth0's status and
/// `error` together (SPEC §5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrantFailure {
    /// Any 429 (`too_many_attempts`, `too_many_requests`, the global limit's `access_denied`).
    TooManyRequests {
        retry_after: u64,
        code: Option<String>,
        message: String,
    },
    /// The end user was refused: `invalid_grant` ("Wrong email or password.", a bad code, a
    /// revoked refresh token, a blocked user on refresh), `mfa_required`, `password_leaked`,
    /// 401 `unauthorized` (a blocked user), and the legacy `invalid_user_password` /
    /// `blocked_user`.
    UserRefused {
        code: String,
        message: String,
    },
    /// The daemon's own credentials or configuration were refused: 401 `access_denied` or
    /// `invalid_client` (client secret), `unauthorized_client` (grant not enabled), 403
    /// `access_denied` (audience), any other 4xx, and a redirect (a wrong `auth0Url`).
    ConfigurationRefused {
        status: u16,
        code: Option<String>,
        message: String,
    },
    /// Auth0 failed (5xx).
    Upstream5xx {
        status: u16,
        code: Option<String>,
        message: String,
    },
    /// A 2xx answer the daemon cannot read.
    InvalidAnswer {
        message: String,
    },
    Unreachable,
    Timeout {
        timeout_ms: u64,
    },
    /// Auth0 answered 408: it timed out on its side (a timeout, not a refusal of anything).
    TimedOutUpstream,
}

/// `error` codes that refuse the end user rather than the daemon, whatever their 4xx status.
const USER_REFUSALS: &[&str] = &[
    "invalid_grant",
    "mfa_required",
    "password_leaked",
    // Older Auth0 answers for a wrong password and a blocked user (wire reference §1.3).
    "invalid_user_password",
    "blocked_user",
];

impl Auth0Error {
    /// Auth0's `error` code, when Auth0 answered with one.
    pub fn auth0_code(&self) -> Option<&str> {
        match self {
            Self::Status(failure) => failure.code.as_deref(),
            _ => None,
        }
    }

    /// The HTTP status Auth0 answered, when it answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Status(failure) => Some(failure.status),
            _ => None,
        }
    }

    /// Auth0 refused the grant itself (`invalid_grant`): on a refresh, the session is over.
    pub fn is_invalid_grant(&self) -> bool {
        matches!(self, Self::Status(f) if f.status.is_client_error() && f.status != StatusCode::TOO_MANY_REQUESTS && f.code.as_deref() == Some("invalid_grant"))
    }

    /// The meaning of this failure for a token grant (SPEC §5).
    /// Auth0's description when it refused the grant's connection: a 400 `invalid_request`
    /// whose text names the realm (`Unknown realm x.`) or the connection. Whose mistake that is
    /// depends on who chose the connection, which the caller knows.
    pub fn refuses_realm(&self) -> Option<String> {
        let Self::Status(failure) = self else {
            return None;
        };
        let description = failure.description.as_deref()?;
        let lower = description.to_ascii_lowercase();
        (failure.status == StatusCode::BAD_REQUEST
            && failure.code.as_deref() == Some("invalid_request")
            && (lower.contains("realm") || lower.contains("connection")))
        .then(|| description.to_owned())
    }

    pub fn classify(&self) -> GrantFailure {
        let failure = match self {
            Self::Unreachable { .. } => return GrantFailure::Unreachable,
            Self::Timeout { timeout_ms, .. } => {
                return GrantFailure::Timeout {
                    timeout_ms: *timeout_ms,
                };
            }
            Self::InvalidAnswer { reason, .. } => {
                return GrantFailure::InvalidAnswer {
                    message: reason.clone(),
                };
            }
            Self::Status(failure) => failure,
        };
        let status = failure.status;
        let code = failure.code.clone();
        let message = |fallback: &str| {
            failure
                .description
                .clone()
                .unwrap_or_else(|| fallback.to_owned())
        };
        if status == StatusCode::TOO_MANY_REQUESTS {
            return GrantFailure::TooManyRequests {
                retry_after: failure.retry_after.unwrap_or(DEFAULT_RETRY_AFTER_SECONDS),
                message: message("Too many requests to Auth0; retry later."),
                code,
            };
        }
        if status == StatusCode::REQUEST_TIMEOUT {
            return GrantFailure::TimedOutUpstream;
        }
        if status.is_server_error() {
            return GrantFailure::Upstream5xx {
                status: status.as_u16(),
                message: message("Auth0 failed."),
                code,
            };
        }
        let user_refusal = match code.as_deref() {
            Some(c) if USER_REFUSALS.contains(&c) => true,
            // A blocked user on a login grant ([OBS] wire reference §1.3).
            Some("unauthorized") => matches!(status.as_u16(), 401 | 403),
            _ => false,
        };
        match code {
            Some(code) if user_refusal => GrantFailure::UserRefused {
                message: message("Auth0 refused the login."),
                code,
            },
            code => GrantFailure::ConfigurationRefused {
                status: status.as_u16(),
                message: message("Auth0 refused the request."),
                code,
            },
        }
    }
}

/// Auth0 failures as the HTTP client reports them, for the tests of whoever maps them.
#[cfg(test)]
pub mod test_support {
    use reqwest::StatusCode;
    use reqwest::header::{HeaderMap, HeaderValue};

    use super::{Auth0Error, HttpFailure};

    /// A failed `/oauth/token` call answered `status` with `body` and `headers`.
    pub fn failure(status: u16, body: &str, headers: &[(&'static str, &str)]) -> Auth0Error {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, HeaderValue::from_str(value).expect("header"));
        }
        Auth0Error::Status(Box::new(HttpFailure::new(
            "/oauth/token",
            StatusCode::from_u16(status).expect("status"),
            &map,
            body.as_bytes(),
            1_000_000,
        )))
    }

    pub fn oauth(status: u16, code: &str, description: &str) -> Auth0Error {
        failure(
            status,
            &serde_json::json!({"error": code, "error_description": description}).to_string(),
            &[("content-type", "application/json")],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{failure, oauth};
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_prefers_retry_after_then_reset_then_sixty() {
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_str(value).expect("header"));
            }
            map
        };
        let now = 1_700_000_000;
        assert_eq!(
            retry_after_seconds(
                &headers(&[("retry-after", "7"), ("x-ratelimit-reset", "1700000030")]),
                now
            ),
            7
        );
        assert_eq!(
            retry_after_seconds(&headers(&[("x-ratelimit-reset", "1700000030")]), now),
            30
        );
        // A reset already past: retry at once (1 s, never 0).
        assert_eq!(
            retry_after_seconds(&headers(&[("x-ratelimit-reset", "1699999990")]), now),
            1
        );
        assert_eq!(retry_after_seconds(&headers(&[]), now), 60);
        assert_eq!(
            retry_after_seconds(&headers(&[("retry-after", "soon")]), now),
            60
        );
        // 1700000000 is Tue, 14 Nov 2023 22:13:20 GMT.
        assert_eq!(
            retry_after_seconds(
                &headers(&[("retry-after", "Tue, 14 Nov 2023 22:13:40 GMT")]),
                now
            ),
            20
        );
    }

    #[test]
    fn error_bodies_of_both_apis_and_plain_text() {
        let Auth0Error::Status(f) = oauth(403, "invalid_grant", "Wrong email or password.") else {
            panic!("status")
        };
        assert_eq!(f.code.as_deref(), Some("invalid_grant"));
        assert_eq!(f.description.as_deref(), Some("Wrong email or password."));
        assert_eq!(f.retry_after, None);

        let management = failure(
            400,
            r#"{"statusCode":400,"error":"Bad Request","message":"Payload validation error","errorCode":"invalid_body"}"#,
            &[],
        );
        let Auth0Error::Status(f) = management else {
            panic!("status")
        };
        assert_eq!(f.code.as_deref(), Some("invalid_body"));
        assert_eq!(f.description.as_deref(), Some("Payload validation error"));

        let Auth0Error::Status(f) = failure(429, "Rate limit exceed", &[]) else {
            panic!("status")
        };
        assert_eq!(f.code, None);
        assert_eq!(f.description.as_deref(), Some("Rate limit exceed"));
        assert_eq!(f.retry_after, Some(60));

        let Auth0Error::Status(f) = failure(
            502,
            "<html><body>Bad gateway</body></html>",
            &[("content-type", "text/html")],
        ) else {
            panic!("status")
        };
        assert_eq!((f.code, f.description), (None, None));

        let long = "x".repeat(1000);
        let Auth0Error::Status(f) = failure(500, &long, &[]) else {
            panic!("status")
        };
        assert!(f.description.expect("text").chars().count() <= MAX_DESCRIPTION_CHARS + 1);
    }

    #[test]
    fn classification_follows_status_and_code() {
        /// Whose doing a refusal is: the user's (credentials, account) or the configuration's.
        #[derive(Debug, PartialEq)]
        enum Refused {
            User,
            Configuration,
        }
        let refused = |err: Auth0Error| match err.classify() {
            GrantFailure::UserRefused { .. } => Some(Refused::User),
            GrantFailure::ConfigurationRefused { .. } => Some(Refused::Configuration),
            _ => None,
        };
        for (status, code, description, expected) in [
            (
                403,
                "invalid_grant",
                "Wrong email or password.",
                Refused::User,
            ),
            (
                403,
                "mfa_required",
                "Multifactor authentication required",
                Refused::User,
            ),
            (401, "password_leaked", "leaked", Refused::User),
            (401, "unauthorized", "user is blocked", Refused::User),
            (401, "access_denied", "Unauthorized", Refused::Configuration),
            (
                401,
                "invalid_client",
                "Client authentication failed",
                Refused::Configuration,
            ),
            (
                403,
                "unauthorized_client",
                "Grant type",
                Refused::Configuration,
            ),
            (
                403,
                "access_denied",
                "Service not found",
                Refused::Configuration,
            ),
            // Whoever chose the connection: as a grant failure, a configuration error (502); the
            // route turns it into a 400 when the request named the connection.
            (
                400,
                "invalid_request",
                "Unknown realm x.",
                Refused::Configuration,
            ),
        ] {
            let err = oauth(status, code, description);
            assert_eq!(
                refused(err),
                Some(expected),
                "{status} {code} {description:?}"
            );
        }
        assert_eq!(
            oauth(400, "invalid_request", "Unknown realm x.").refuses_realm(),
            Some("Unknown realm x.".to_owned())
        );
        assert_eq!(
            oauth(
                400,
                "invalid_request",
                "Missing required parameter: client_id"
            )
            .refuses_realm(),
            None
        );
        assert_eq!(
            oauth(403, "invalid_grant", "Wrong realm password.").refuses_realm(),
            None
        );
        assert_eq!(refused(failure(404, "", &[])), Some(Refused::Configuration));
        // Auth0 timing out is a timeout, never a refusal of the daemon's configuration.
        assert_eq!(
            failure(408, "", &[]).classify(),
            GrantFailure::TimedOutUpstream
        );
        assert!(matches!(
            oauth(429, "too_many_attempts", "blocked").classify(),
            GrantFailure::TooManyRequests {
                retry_after: 60,
                ..
            }
        ));
        assert!(matches!(
            oauth(429, "access_denied", "Global rate limit exceeded").classify(),
            GrantFailure::TooManyRequests { .. }
        ));
        assert!(matches!(
            oauth(503, "temporarily_unavailable", "down").classify(),
            GrantFailure::Upstream5xx { status: 503, .. }
        ));
        assert!(
            oauth(403, "invalid_grant", "Unknown or invalid refresh token.").is_invalid_grant()
        );
        assert!(!oauth(403, "access_denied", "x").is_invalid_grant());
    }

    #[test]
    fn debug_never_shows_the_raw_body() {
        let err = failure(
            403,
            r#"{"error":"mfa_required","error_description":"Multifactor authentication required","mfa_token":"Fe26.2**secret"}"#,
            &[],
        );
        assert!(!format!("{err:?}").contains("Fe26"));
        assert!(!format!("{err}").contains("Fe26"));
        let Auth0Error::Status(f) = err else {
            panic!("status")
        };
        assert!(!format!("{f:?}").contains("Fe26"));
    }
}
