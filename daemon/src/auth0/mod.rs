//! The typed Auth0 client: every HTTP call the daemon makes to an Auth0 tenant goes through the one
//! [`Auth0Http`] built here (one `reqwest::Client`, the `server.auth0TimeoutMs` timeout, the
//! `auth0_client_auth0_requests_total` counter), and every failure is an [`Auth0Error`].
//!
//! - [`authentication`]: the Authentication API (`/oauth/token` grants, `/oauth/revoke`,
//!   `/dbconnections/change_password`) as [`AuthenticationClient`], answering [`TokenSet`]s.
//! - [`jwks`]: the per-tenant JWKS cache and ID-token verification ([`JwksCache`]).
//! - [`logout_token`]: verification of back-channel logout tokens (SPEC §5).
//! - [`error`]: [`Auth0Error`] and its classification for token grants ([`GrantFailure`], SPEC §5).
//!
//! Nothing here knows actix or HTTP answers: the actors own these values, and `http/error.rs`
//! maps their failures to the answers of SPEC §4, so the routes only see `ApiError`s.
//! Secrets (client secrets, passwords, tokens) are `SecretString`s until the request body is
//! built, and neither logs nor errors ever carry one.

pub mod authentication;
pub mod error;
pub mod jwks;
pub mod logout_token;
pub mod management;
pub mod user_query;

use std::time::{Duration, Instant};

use prometheus::{IntCounterVec, Opts};
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};

use crate::config::Settings;

pub use authentication::{AuthenticationClient, PasswordGrant, TokenSet};
pub use error::{Auth0Error, GrantFailure, HttpFailure};
pub use jwks::{IdTokenError, JwksCache, JwksError};

/// Answers larger than this are cut off as invalid: Auth0's are a few kilobytes, and a broken
/// proxy must not make the daemon buffer without bound.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// Why the Auth0 client could not be built (at start, never per request).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot build the HTTP client for Auth0: {0}")]
    Client(#[source] reqwest::Error),
    #[error("cannot create the Auth0 request counter: {0}")]
    Metric(#[source] prometheus::Error),
}

/// The one HTTP client of every Auth0 call. Cheap to clone (the connection pool and the counter
/// are shared), so the authentication client, the JWKS cache and the management client all hold
/// one built once at start.
#[derive(Clone, Debug)]
pub struct Auth0Http {
    client: reqwest::Client,
    timeout: Duration,
    requests: IntCounterVec,
}

/// A successful (2xx) Auth0 answer, body read in full. Its `Debug` shows the body's length only:
/// token answers are credentials.
pub struct Auth0Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    body: Vec<u8>,
    /// The endpoint label of the call, for errors about the body.
    endpoint: &'static str,
}

impl std::fmt::Debug for Auth0Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth0Answer")
            .field("endpoint", &self.endpoint)
            .field("status", &self.status)
            .field("body_bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// How long an idle connection to Auth0 is kept (see [`Auth0Http::new`]).
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(4);

impl Auth0Http {
    /// A client whose every call (connect, send, read the answer) is bounded by `timeout`.
    pub fn new(timeout: Duration) -> Result<Self, SetupError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // Auth0's APIs do not redirect; following one would send a client secret elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            // Idle connections are dropped before a server's usual keep-alive (5 s for actix,
            // nginx's default is 75 s) can close them: a request sent on a connection the server
            // is closing fails with "connection closed before message completed" (a 502), and
            // retrying it is not safe (a refresh may have rotated at Auth0). Reconnecting after 4 s
            // idle costs one handshake; under load connections never idle that long.
            .pool_idle_timeout(IDLE_CONNECTION_TIMEOUT)
            .user_agent(concat!("auth0-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(SetupError::Client)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "auth0_client_auth0_requests_total",
                "Calls to Auth0, by endpoint and status (or `timeout`, `unreachable`).",
            ),
            &["endpoint", "status"],
        )
        .map_err(SetupError::Metric)?;
        Ok(Self {
            client,
            timeout,
            requests,
        })
    }

    /// The client of the daemon: timeout `server.auth0TimeoutMs`.
    pub fn from_settings(settings: &Settings) -> Result<Self, SetupError> {
        Self::new(settings.server.auth0_timeout)
    }

    /// The underlying client, for requests this module has no helper for.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The bound on one call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The `auth0_client_auth0_requests_total{endpoint,status}` counter, to register once in the
    /// daemon's metrics registry (`Metrics::register(Box::new(http.requests_metric()))`).
    pub fn requests_metric(&self) -> IntCounterVec {
        self.requests.clone()
    }

    /// Sends `request` and reads the whole answer. `endpoint` is a fixed label (`/oauth/token`),
    /// used for the metric and in errors, never a URL with user data in it. A non-2xx answer is
    /// [`Auth0Error::Status`]; transport failures are [`Auth0Error::Timeout`] or
    /// [`Auth0Error::Unreachable`].
    pub async fn send(
        &self,
        endpoint: &'static str,
        request: RequestBuilder,
    ) -> Result<Auth0Answer, Auth0Error> {
        let started = Instant::now();
        let result = self.exchange(endpoint, request).await;
        let status_label = match &result {
            Ok(answer) => answer.status.as_u16().to_string(),
            Err(Auth0Error::Status(failure)) => failure.status.as_u16().to_string(),
            Err(Auth0Error::Timeout { .. }) => "timeout".to_owned(),
            Err(Auth0Error::Unreachable { .. }) => "unreachable".to_owned(),
            Err(Auth0Error::InvalidAnswer { .. }) => "invalid".to_owned(),
        };
        self.requests
            .with_label_values(&[endpoint, status_label.as_str()])
            .inc();
        tracing::debug!(
            target: "auth0_client::auth0",
            endpoint,
            status = %status_label,
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "Auth0 call"
        );
        result
    }

    async fn exchange(
        &self,
        endpoint: &'static str,
        request: RequestBuilder,
    ) -> Result<Auth0Answer, Auth0Error> {
        let mut response = request
            .send()
            .await
            .map_err(|err| self.transport_error(endpoint, err))?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| self.transport_error(endpoint, err))?
        {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(Auth0Error::InvalidAnswer {
                    endpoint,
                    reason: format!("the answer is larger than {MAX_ANSWER_BYTES} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        if status.is_success() {
            Ok(Auth0Answer {
                status,
                headers,
                body,
                endpoint,
            })
        } else {
            Err(Auth0Error::Status(Box::new(HttpFailure::new(
                endpoint,
                status,
                &headers,
                &body,
                time::OffsetDateTime::now_utc().unix_timestamp(),
            ))))
        }
    }

    fn transport_error(&self, endpoint: &'static str, err: reqwest::Error) -> Auth0Error {
        if err.is_timeout() {
            Auth0Error::Timeout {
                endpoint,
                timeout_ms: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
            }
        } else {
            Auth0Error::Unreachable {
                endpoint,
                before_sending: err.is_connect(),
                // reqwest's Display includes the URL: tenant URLs carry no secret, and our
                // requests put none in the query string.
                source: err,
            }
        }
    }
}

impl Auth0Answer {
    /// The body as JSON of type `T`; an answer that is not is [`Auth0Error::InvalidAnswer`].
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Auth0Error> {
        serde_json::from_slice(&self.body).map_err(|err| Auth0Error::InvalidAnswer {
            endpoint: self.endpoint,
            reason: json_error_reason(&err),
        })
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

/// What is wrong with a JSON answer, without quoting it: serde_json's "invalid type" messages
/// repeat the offending value, which in a token answer may be a token.
fn json_error_reason(err: &serde_json::Error) -> String {
    let message = err.to_string();
    if message.starts_with("missing field") {
        return format!("the body is not the expected JSON: {message}");
    }
    let kind = match err.classify() {
        serde_json::error::Category::Io => "could not be read",
        serde_json::error::Category::Syntax => "is not JSON",
        serde_json::error::Category::Data => "has a field of the wrong type",
        serde_json::error::Category::Eof => "is truncated JSON",
    };
    format!(
        "the body {kind} (line {}, column {})",
        err.line(),
        err.column()
    )
}
