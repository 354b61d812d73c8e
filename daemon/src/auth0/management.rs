//! The Management API v2 client (wire reference §2, §3): the management token by client
//! credentials, and one call to `/api/v2/...` with a given token. What a failure means for the
//! caller (retry, pause, pass through, configuration error) is decided by the pure functions
//! here; the `Management` actor (`actors/management.rs`) owns the token cache and the pause, and
//! its cloned [`ManagementService`](crate::actors::management::ManagementService) runs the calls
//! on the workers.
//!
//! Nothing here knows actix or HTTP answers: `http/error.rs` maps [`ManagementError`] to the
//! answers of SPEC §6 (Auth0's 4xx passed through, the daemon's own token refused: 502, …).

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use super::error::{HttpFailure, retry_after_seconds};
use super::{Auth0Error, Auth0Http};
use crate::config::Settings;

/// How many more times a call may be tried after the first (SPEC §6).
pub const MAX_RETRIES: u32 = 3;

/// The budget of a call and its retries, in units of `server.auth0TimeoutMs` (SPEC §6).
pub const BUDGET_TIMEOUTS: u32 = 3;

/// One Management API request. Built once, sent possibly several times (retries, a renewed
/// token): the body is rebuilt per attempt.
#[derive(Clone, Debug)]
pub struct ManagementRequest {
    pub method: Method,
    /// The path after `/api/v2/`, its segments already percent-encoded
    /// (`users/auth0%7C123`, `jobs/users-imports`): see [`encode_segment`].
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: ManagementBody,
}

/// The body of a [`ManagementRequest`].
#[derive(Clone)]
pub enum ManagementBody {
    Empty,
    Json(serde_json::Value),
    /// `multipart/form-data` as `POST /jobs/users-imports` takes it: the file under the field
    /// name `users` with content type `application/json`, then the text `fields`.
    Multipart {
        file_name: String,
        file: Vec<u8>,
        fields: Vec<(String, String)>,
    },
}

/// Bodies hold user data (passwords in a create or a patch): `Debug` shows their kind only.
impl std::fmt::Debug for ManagementBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("Empty"),
            Self::Json(_) => f.write_str("Json(..)"),
            Self::Multipart { file, .. } => write!(f, "Multipart({} bytes)", file.len()),
        }
    }
}

impl ManagementRequest {
    /// A request without query and body.
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            query: Vec::new(),
            body: ManagementBody::Empty,
        }
    }

    pub fn with_query(mut self, query: Vec<(String, String)>) -> Self {
        self.query = query;
        self
    }

    pub fn with_json(mut self, body: serde_json::Value) -> Self {
        self.body = ManagementBody::Json(body);
        self
    }

    /// Whether a failed attempt may be sent again (SPEC §6): a GET on a 5xx or a network error;
    /// anything else only when the connection failed before the request was sent.
    pub fn may_retry(&self, err: &Auth0Error) -> bool {
        match err {
            Auth0Error::Unreachable {
                before_sending: true,
                ..
            } => true,
            _ if self.method != Method::GET => false,
            Auth0Error::Unreachable { .. } | Auth0Error::Timeout { .. } => true,
            Auth0Error::Status(failure) => failure.status.is_server_error(),
            Auth0Error::InvalidAnswer { .. } => false,
        }
    }
}

/// A 2xx answer of the Management API.
pub struct ManagementAnswer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for ManagementAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagementAnswer")
            .field("status", &self.status)
            .field("body_bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl ManagementAnswer {
    /// The body as JSON (`null` for an empty body, as a 204's).
    pub fn json(&self) -> Result<serde_json::Value, ManagementError> {
        if self.body.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&self.body).map_err(|err| ManagementError::InvalidAnswer {
            reason: format!(
                "the body is not JSON (line {}, column {})",
                err.line(),
                err.column()
            ),
        })
    }
}

/// Why a management call failed. Cheap to clone: the callers of one token flight share it.
#[derive(Clone, thiserror::Error)]
pub enum ManagementError {
    /// No `managementClient` in the configuration (501).
    #[error("the management routes need `managementClient` in the configuration")]
    NotConfigured,
    /// Auth0 refused the request itself (a 4xx other than 429 and other than a refusal of the
    /// daemon's own token): passed through with its status, headers and body.
    #[error("{0}")]
    Refused(Arc<HttpFailure>),
    /// Auth0's rate limit: an Auth0 429 (`failure` is its answer), or the pause it started
    /// (`failure` is `None`): answer 429 with `Retry-After`.
    #[error("Auth0's Management API rate limit is reached; retry in {} s", retry_after.as_secs())]
    RateLimited {
        retry_after: Duration,
        failure: Option<Arc<HttpFailure>>,
    },
    /// Auth0 refused the daemon's own management credentials, token or scopes (a configuration
    /// error, 502): the token grant failed, a 401 came back with a fresh token, or a 403 named
    /// a missing scope.
    #[error("Auth0 refused the daemon's management credentials: {0}")]
    Credentials(Arc<HttpFailure>),
    /// Auth0 failed, was unreachable or timed out (5xx → 502, unreachable → 502, timeout → 504).
    #[error(transparent)]
    Upstream(Arc<Auth0Error>),
    /// A 2xx answer the daemon cannot read.
    #[error("Auth0's Management API answered with an unexpected body: {reason}")]
    InvalidAnswer { reason: String },
    /// The retries did not end within `3 × server.auth0TimeoutMs` (504).
    #[error("Auth0 did not answer within {budget_ms} ms ({attempts} attempts)")]
    Deadline { budget_ms: u64, attempts: u32 },
    /// The `Management` actor is gone (the daemon is stopping).
    #[error("the management token cache is unavailable")]
    Unavailable,
}

impl std::fmt::Debug for ManagementError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::telemetry::write_cause_chain(f, self)
    }
}

/// A management token, as the grant answered it.
pub struct ManagementToken {
    pub access_token: SecretString,
    pub expires_in: Duration,
}

impl std::fmt::Debug for ManagementToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagementToken")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct ClientCredentialsAnswer {
    access_token: SecretString,
    #[serde(default = "default_expires_in")]
    expires_in: u64,
}

/// Auth0's default management token lifetime (wire reference §2.1).
fn default_expires_in() -> u64 {
    86_400
}

/// The Management API of the `managementClient`'s tenant. Cheap to clone.
#[derive(Clone)]
pub struct ManagementApi {
    http: Auth0Http,
    token_url: String,
    /// `<auth0TenantUrl, else managementClient.auth0Url>/api/v2/`: the base and the audience.
    api_base: String,
    client_id: String,
    client_secret: SecretString,
}

impl std::fmt::Debug for ManagementApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagementApi")
            .field("api_base", &self.api_base)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl ManagementApi {
    /// The client of the configured `managementClient`; `None` without one.
    pub fn from_settings(http: &Auth0Http, settings: &Settings) -> Option<Self> {
        let management = settings.management_client.as_ref()?;
        Some(Self {
            http: http.clone(),
            token_url: management.endpoint("oauth/token"),
            api_base: settings.management_api_base()?,
            client_id: management.client_id.clone(),
            client_secret: management.client_secret.clone(),
        })
    }

    /// The tenant's key (the audience `…/api/v2/`): one token per tenant.
    pub fn tenant(&self) -> &str {
        &self.api_base
    }

    /// The bound on one call (`server.auth0TimeoutMs`).
    pub fn timeout(&self) -> Duration {
        self.http.timeout()
    }

    /// A management token by client credentials. Auth0 refusing the grant (4xx other than 429)
    /// is [`ManagementError::Credentials`].
    pub async fn fetch_token(&self) -> Result<ManagementToken, ManagementError> {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose_secret()),
            ("audience", self.api_base.as_str()),
        ];
        let request = self.http.client().post(&self.token_url).form(&form);
        let answer = match self.http.send("/oauth/token", request).await {
            Ok(answer) => answer,
            Err(Auth0Error::Status(failure)) if failure.status == StatusCode::TOO_MANY_REQUESTS => {
                return Err(ManagementError::RateLimited {
                    retry_after: Duration::from_secs(failure.retry_after.unwrap_or(60)),
                    failure: None,
                });
            }
            // A 408 is Auth0 timing out, not a refusal of the credentials.
            Err(Auth0Error::Status(failure))
                if failure.status.is_client_error()
                    && failure.status != StatusCode::REQUEST_TIMEOUT =>
            {
                return Err(ManagementError::Credentials(Arc::from(failure)));
            }
            Err(err) => return Err(ManagementError::Upstream(Arc::new(err))),
        };
        let token: ClientCredentialsAnswer = answer
            .json()
            .map_err(|err| ManagementError::Upstream(Arc::new(err)))?;
        Ok(ManagementToken {
            access_token: token.access_token,
            expires_in: Duration::from_secs(token.expires_in),
        })
    }

    /// One attempt of `request` with `token`.
    pub async fn call(
        &self,
        token: &SecretString,
        request: &ManagementRequest,
    ) -> Result<ManagementAnswer, Auth0Error> {
        let url = format!("{}{}", self.api_base, request.path);
        let mut builder = self
            .http
            .client()
            .request(request.method.clone(), url)
            .bearer_auth(token.expose_secret());
        if !request.query.is_empty() {
            builder = builder.query(&request.query);
        }
        builder = match &request.body {
            ManagementBody::Empty => builder,
            ManagementBody::Json(body) => builder.json(body),
            ManagementBody::Multipart {
                file_name,
                file,
                fields,
            } => {
                let part = reqwest::multipart::Part::bytes(file.clone())
                    .file_name(file_name.clone())
                    .mime_str("application/json")
                    .map_err(|err| Auth0Error::InvalidAnswer {
                        endpoint: endpoint_label(&request.path),
                        reason: format!("cannot build the multipart body: {err}"),
                    })?;
                let mut form = reqwest::multipart::Form::new().part("users", part);
                for (name, value) in fields {
                    form = form.text(name.clone(), value.clone());
                }
                builder.multipart(form)
            }
        };
        let answer = self
            .http
            .send(endpoint_label(&request.path), builder)
            .await?;
        let status = answer.status;
        let headers = answer.headers.clone();
        Ok(ManagementAnswer {
            status,
            headers,
            body: answer.body().to_vec(),
        })
    }
}

/// The metric and log label of a Management API path: a fixed string, never the user id.
pub fn endpoint_label(path: &str) -> &'static str {
    let first = path.split(['/', '?']).next().unwrap_or_default();
    match first {
        "users" if path.contains('/') => "/api/v2/users/{id}",
        "users" => "/api/v2/users",
        "jobs" if path.starts_with("jobs/users-imports") => "/api/v2/jobs/users-imports",
        "jobs" => "/api/v2/jobs/{id}",
        _ => "/api/v2",
    }
}

/// One path segment, percent-encoded for the Management API path (`auth0|1` → `auth0%7C1`).
/// Everything but RFC 3986's unreserved characters is encoded, so a user id can never add a
/// segment (`/`), a query (`?`) or climb up (`..` stays a literal segment only when whole: see
/// [`valid_segment`]).
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Whether `segment` may be a path segment at all: not empty, not `.` or `..` (which an HTTP
/// client or proxy may resolve away however they are encoded).
pub fn valid_segment(segment: &str) -> bool {
    !matches!(segment, "" | "." | "..")
}

/// How long the Management API asks the daemon to hold off, from an answer: an Auth0 429
/// (`Retry-After`, else `X-RateLimit-Reset`, else 60 s), or any answer with
/// `X-RateLimit-Remaining: 0` (until `X-RateLimit-Reset`). `now` is the unix time in seconds.
pub fn pause_from(status: StatusCode, headers: &HeaderMap, now: i64) -> Option<Duration> {
    let exhausted = headers
        .get("x-ratelimit-remaining")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        == Some(0);
    (status == StatusCode::TOO_MANY_REQUESTS || exhausted)
        .then(|| Duration::from_secs(retry_after_seconds(headers, now)))
}

/// How long an attempt's outcome asks the daemon to hold off every management call (see
/// [`pause_from`]): never for a failure that did not reach Auth0, nor for Auth0's limit of active
/// import jobs, which concerns only the next import.
pub fn pause_of(result: &Result<ManagementAnswer, Auth0Error>, now: i64) -> Option<Duration> {
    match result {
        Ok(answer) => pause_from(answer.status, &answer.headers, now),
        Err(Auth0Error::Status(failure)) if !is_active_jobs_limit(failure) => {
            pause_from(failure.status, &failure.headers, now)
        }
        Err(_) => None,
    }
}

/// Whether a 429 is Auth0's limit of active import jobs per tenant ("There are 2 active import
/// users jobs, please wait until some of them are finished and try again") rather than a rate
/// limit: it concerns only the next import, so it must not pause every management route.
pub fn is_active_jobs_limit(failure: &HttpFailure) -> bool {
    failure.status == StatusCode::TOO_MANY_REQUESTS
        && failure
            .description
            .as_deref()
            .is_some_and(|d| d.to_ascii_lowercase().contains("active import users jobs"))
}

/// Whether a refusal is about the daemon's own token or its scopes rather than the request: any
/// 401, or a 403 naming a scope (`insufficient_scope`, "Insufficient scope, expected any of…").
pub fn is_credentials_refusal(failure: &HttpFailure) -> bool {
    match failure.status {
        StatusCode::UNAUTHORIZED => true,
        StatusCode::FORBIDDEN => {
            failure.code.as_deref() == Some("insufficient_scope")
                || failure
                    .description
                    .as_deref()
                    .is_some_and(|d| d.to_ascii_lowercase().contains("scope"))
        }
        _ => false,
    }
}

/// The wait before retry `n` (1-based): 100 ms doubling (100, 200, 400 ms), as Auth0's SDKs do.
pub fn backoff(retry: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << retry.saturating_sub(1).min(6)))
}

/// What a failed attempt becomes for the caller (when it is not retried).
pub fn failure_of(err: Auth0Error) -> ManagementError {
    match err {
        Auth0Error::Status(failure) if failure.status == StatusCode::TOO_MANY_REQUESTS => {
            ManagementError::RateLimited {
                retry_after: Duration::from_secs(failure.retry_after.unwrap_or(60)),
                failure: Some(Arc::from(failure)),
            }
        }
        Auth0Error::Status(failure) if is_credentials_refusal(&failure) => {
            ManagementError::Credentials(Arc::from(failure))
        }
        // Auth0 timing out (408) is a timeout (504), never passed through as a refusal.
        Auth0Error::Status(failure)
            if failure.status.is_client_error()
                && failure.status != StatusCode::REQUEST_TIMEOUT =>
        {
            ManagementError::Refused(Arc::from(failure))
        }
        other => ManagementError::Upstream(Arc::new(other)),
    }
}

/// The `Content-Type` to pass an Auth0 body through with (Auth0's JSON one when it gave none).
fn passthrough_content_type(headers: &HeaderMap) -> &str {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json; charset=utf-8")
}

impl HttpFailure {
    /// The `Content-Type` to pass through with the body.
    pub fn passthrough_content_type(&self) -> &str {
        passthrough_content_type(&self.headers)
    }
}

impl ManagementAnswer {
    /// The `Content-Type` to pass through with the body.
    pub fn passthrough_content_type(&self) -> &str {
        passthrough_content_type(&self.headers)
    }
}

/// The settings of a daemon with one client and a management client on the tenant at `base`.
#[cfg(test)]
pub mod test_support {
    #![allow(clippy::unwrap_used)]

    use crate::config::{Env, Settings};

    pub fn settings(base: &str, secret: &str) -> Settings {
        Settings::from_value(
            serde_json::json!({
                "clients": {"web": {
                    "auth0Url": base, "clientId": "c", "clientSecret": "s",
                    "redirectUrl": "https://app.example/cb", "scopes": ["offline_access"]
                }},
                "managementClient": {
                    "auth0Url": base, "clientId": auth0_emulator::seed::demo::MANAGEMENT_CLIENT_ID,
                    "clientSecret": secret
                }
            }),
            &Env::from_pairs(Vec::<(String, String)>::new()),
        )
        .unwrap()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use auth0_emulator::seed::demo;
    use auth0_emulator::{Emulator, Seed};
    use reqwest::header::HeaderValue;

    use super::*;

    fn status(code: u16, body: &str, headers: &[(&'static str, &str)]) -> Auth0Error {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        Auth0Error::Status(Box::new(HttpFailure::new(
            "/api/v2/users",
            StatusCode::from_u16(code).unwrap(),
            &map,
            body.as_bytes(),
            1_000_000,
        )))
    }

    fn timeout() -> Auth0Error {
        Auth0Error::Timeout {
            endpoint: "/api/v2/users",
            timeout_ms: 10,
        }
    }

    #[test]
    fn gets_are_retried_on_5xx_and_network_errors_and_writes_only_before_sending() {
        let get = ManagementRequest::new(Method::GET, "users");
        let post = ManagementRequest::new(Method::POST, "users");
        let patch = ManagementRequest::new(Method::PATCH, "users/x");
        assert!(get.may_retry(&status(503, "", &[])));
        assert!(get.may_retry(&timeout()));
        assert!(!get.may_retry(&status(404, "", &[])));
        assert!(!get.may_retry(&status(429, "", &[])));
        for write in [&post, &patch] {
            assert!(!write.may_retry(&status(503, "", &[])));
            assert!(!write.may_retry(&timeout()));
        }
    }

    #[tokio::test]
    async fn a_connection_refused_is_retryable_for_every_method() {
        // Nothing listens on port 9 of loopback: the connection fails before anything is sent.
        let http = Auth0Http::new(Duration::from_secs(2)).unwrap();
        let request = http.client().post("http://127.0.0.1:9/api/v2/users");
        let err = http.send("/api/v2/users", request).await.unwrap_err();
        assert!(ManagementRequest::new(Method::POST, "users").may_retry(&err));
        assert!(ManagementRequest::new(Method::DELETE, "users/x").may_retry(&err));
    }

    #[test]
    fn the_active_import_jobs_limit_is_told_apart_from_a_rate_limit() {
        let jobs = HttpFailure::new(
            "/api/v2/jobs/users-imports",
            StatusCode::TOO_MANY_REQUESTS,
            &HeaderMap::new(),
            br#"{"statusCode":429,"error":"Too Many Requests","message":"There are 2 active import users jobs, please wait until some of them are finished and try again"}"#,
            0,
        );
        assert!(is_active_jobs_limit(&jobs));
        let rate = HttpFailure::new(
            "/api/v2/users",
            StatusCode::TOO_MANY_REQUESTS,
            &HeaderMap::new(),
            br#"{"statusCode":429,"error":"Too Many Requests","message":"Global limit has been reached"}"#,
            0,
        );
        assert!(!is_active_jobs_limit(&rate));
        // Only the rate limit pauses every management call.
        assert_eq!(pause_of(&Err(Auth0Error::Status(Box::new(jobs))), 0), None);
        assert_eq!(
            pause_of(&Err(Auth0Error::Status(Box::new(rate))), 0),
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn a_429_or_an_exhausted_bucket_pauses() {
        let now = 1_000_000;
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_str(value).unwrap());
            }
            map
        };
        assert_eq!(
            pause_from(
                StatusCode::TOO_MANY_REQUESTS,
                &headers(&[("retry-after", "7")]),
                now
            ),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            pause_from(
                StatusCode::OK,
                &headers(&[
                    ("x-ratelimit-remaining", "0"),
                    ("x-ratelimit-reset", "1000012")
                ]),
                now
            ),
            Some(Duration::from_secs(12))
        );
        assert_eq!(
            pause_from(
                StatusCode::OK,
                &headers(&[
                    ("x-ratelimit-remaining", "3"),
                    ("x-ratelimit-reset", "1000012")
                ]),
                now
            ),
            None
        );
        assert_eq!(pause_from(StatusCode::OK, &headers(&[]), now), None);
    }

    #[test]
    fn refusals_of_the_daemons_token_are_told_apart_from_the_requests() {
        let scope = status(
            403,
            r#"{"statusCode":403,"error":"Forbidden","message":"Insufficient scope, expected any of: read:users","errorCode":"insufficient_scope"}"#,
            &[],
        );
        assert!(matches!(failure_of(scope), ManagementError::Credentials(_)));
        assert!(matches!(
            failure_of(status(401, r#"{"message":"Invalid token"}"#, &[])),
            ManagementError::Credentials(_)
        ));
        let other = status(
            403,
            r#"{"statusCode":403,"error":"Forbidden","message":"User to be acted on does not match subject in bearer token."}"#,
            &[],
        );
        assert!(matches!(failure_of(other), ManagementError::Refused(_)));
        let conflict = status(
            409,
            r#"{"statusCode":409,"error":"Conflict","message":"The user already exists.","errorCode":"auth0_idp_error"}"#,
            &[],
        );
        let ManagementError::Refused(failure) = failure_of(conflict) else {
            panic!("passed through")
        };
        assert_eq!(failure.status, StatusCode::CONFLICT);
        assert!(String::from_utf8_lossy(&failure.body).contains("already exists"));
        assert!(matches!(
            failure_of(status(429, "", &[("retry-after", "9")])),
            ManagementError::RateLimited { retry_after, failure: Some(_) } if retry_after == Duration::from_secs(9)
        ));
        assert!(matches!(
            failure_of(status(503, "", &[])),
            ManagementError::Upstream(_)
        ));
        // Auth0 timing out (408) is a timeout (504), not a refusal and not the credentials.
        let timed_out = failure_of(status(408, "", &[]));
        assert!(matches!(timed_out, ManagementError::Upstream(_)));
        assert!(
            !timed_out.to_string().contains("credentials"),
            "{timed_out}"
        );
    }

    #[test]
    fn segments_are_encoded_so_an_id_cannot_add_a_segment_or_a_query() {
        assert_eq!(encode_segment("auth0|123"), "auth0%7C123");
        assert_eq!(encode_segment("a/b?c#d e"), "a%2Fb%3Fc%23d%20e");
        assert_eq!(encode_segment("é"), "%C3%A9");
        assert_eq!(encode_segment("A-z_0.~"), "A-z_0.~");
        assert!(!valid_segment(".."));
        assert!(!valid_segment(""));
        assert!(valid_segment("auth0|1"));
    }

    #[test]
    fn labels_never_carry_ids_and_backoff_doubles() {
        assert_eq!(endpoint_label("users"), "/api/v2/users");
        assert_eq!(endpoint_label("users/auth0%7C1"), "/api/v2/users/{id}");
        assert_eq!(
            endpoint_label("jobs/users-imports"),
            "/api/v2/jobs/users-imports"
        );
        assert_eq!(endpoint_label("jobs/job_1/errors"), "/api/v2/jobs/{id}");
        assert_eq!(
            (backoff(1), backoff(2), backoff(3)),
            (
                Duration::from_millis(100),
                Duration::from_millis(200),
                Duration::from_millis(400)
            )
        );
    }

    fn api(base: &str, secret: &str) -> ManagementApi {
        let settings = test_support::settings(base, secret);
        ManagementApi::from_settings(&Auth0Http::new(Duration::from_secs(5)).unwrap(), &settings)
            .unwrap()
    }

    #[tokio::test]
    async fn a_token_by_client_credentials_then_a_call_with_it() {
        let emulator = Emulator::start(Seed::demo()).unwrap();
        let api = api(emulator.base_url(), demo::MANAGEMENT_CLIENT_SECRET);
        let token = api.fetch_token().await.unwrap();
        assert_eq!(token.expires_in, Duration::from_secs(86_400));
        let sent = emulator.requests_to("/oauth/token");
        assert_eq!(
            sent[0].param("grant_type").as_deref(),
            Some("client_credentials")
        );
        assert_eq!(
            sent[0].param("audience"),
            Some(emulator.management_audience())
        );

        let id = encode_segment(demo::USER_ID);
        let request = ManagementRequest::new(Method::GET, format!("users/{id}"));
        let answer = api.call(&token.access_token, &request).await.unwrap();
        assert_eq!(answer.json().unwrap()["user_id"], demo::USER_ID);
        let sent = emulator.requests_to("/api/v2/users*");
        assert_eq!(sent[0].path, format!("/api/v2/users/{id}"));

        let missing = ManagementRequest::new(Method::GET, "users/auth0%7Cnobody");
        let err = api.call(&token.access_token, &missing).await.unwrap_err();
        assert!(
            matches!(failure_of(err), ManagementError::Refused(f) if f.status == StatusCode::NOT_FOUND)
        );
    }

    #[tokio::test]
    async fn a_wrong_secret_is_a_credentials_error() {
        let emulator = Emulator::start(Seed::demo()).unwrap();
        let api = api(emulator.base_url(), "wrong");
        assert!(matches!(
            api.fetch_token().await.unwrap_err(),
            ManagementError::Credentials(_)
        ));
    }
}
