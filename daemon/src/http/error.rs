//! The one error type every route answers with: SPEC §4's JSON body
//! `{"statusCode", "error", "message", "errorCode"?}`, and every conversion of a domain error
//! (Auth0 and JWKS failures, store outages, token flights, login rules) into it: the layers
//! below `http/` know nothing of HTTP answers.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::auth0::{Auth0Error, GrantFailure, IdTokenError, JwksError};

/// An error answered to a client. The message names the field or the upstream failure and never
/// carries a secret; the full cause chain goes to the log once, where the error is answered.
#[derive(thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// Auth0 refused the end user (wrong password, blocked, MFA required): 403 with Auth0's
    /// message and `error` code.
    #[error("{message}")]
    UserRefused {
        message: String,
        error_code: Option<String>,
    },
    /// Auth0 refused a value the request itself supplied (a `connection` Auth0 does not know):
    /// 400 naming the field, with Auth0's `error` code. A client's mistake, never logged as an
    /// error.
    #[error("{message}")]
    InputRefused {
        message: String,
        error_code: Option<String>,
    },
    #[error("{0}")]
    NotFound(String),
    /// The path exists without this method: 405 with `Allow` listing the methods it has.
    #[error("{message}")]
    MethodNotAllowed { message: String, allow: HeaderValue },
    /// The request body did not arrive within `server.bodyTimeoutMs`: 408, and the connection
    /// closes (the rest of the body may still be on its way).
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after_seconds: u64,
        error_code: Option<String>,
    },
    /// Auth0 refused or failed in a way that is not the client's fault (5xx, our own credentials).
    #[error("{message}")]
    BadGateway {
        message: String,
        error_code: Option<String>,
    },
    #[error("{0}")]
    GatewayTimeout(String),
    #[error("{0}")]
    ServiceUnavailable(String),
    #[error("{0}")]
    NotImplemented(String),
    /// Auth0's own 4xx answer on a management route, passed through verbatim: its status, its
    /// body and content type, and `Retry-After` on a 429 (SPEC §6).
    #[error("Auth0 answered HTTP {}", status.as_u16())]
    Passthrough {
        status: StatusCode,
        content_type: String,
        body: Vec<u8>,
        retry_after_seconds: Option<u64>,
    },
    /// An error actix raised itself (before or around a handler), answered with its status.
    #[error("{message}")]
    Status { status: StatusCode, message: String },
    /// A bug or an unexpected failure: the client gets an opaque message, the log gets the cause.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The JSON body of every error answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// The HTTP status code, repeated.
    pub status_code: u16,
    /// The reason phrase of the status, e.g. `Bad Request`.
    pub error: String,
    /// What is wrong, naming the field or the upstream failure.
    pub message: String,
    /// Auth0's `error` code when Auth0 caused the failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
}

impl ApiError {
    pub fn internal(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(err.into())
    }

    /// The JSON answer to an error actix raised itself rather than one of ours: a raw body
    /// (`web::Bytes`) over `body_limit` bytes or cut short, an extractor without an error
    /// handler. Same status; the message is actix's, cut.
    pub fn from_actix(err: &actix_web::Error, body_limit: usize) -> Self {
        if let Some(payload) = err.as_error::<actix_web::error::PayloadError>() {
            return match payload {
                actix_web::error::PayloadError::Overflow => Self::PayloadTooLarge(format!(
                    "request body is larger than the limit of {body_limit} bytes"
                )),
                other => super::extract::payload::payload_error(other),
            };
        }
        Self::Status {
            status: err.as_response_error().status_code(),
            message: crate::echo::Clipped(
                &err.to_string(),
                super::extract::payload::MAX_DETAIL_CHARS,
            )
            .to_string(),
        }
    }

    fn error_code(&self) -> Option<&str> {
        match self {
            Self::TooManyRequests { error_code, .. }
            | Self::BadGateway { error_code, .. }
            | Self::UserRefused { error_code, .. }
            | Self::InputRefused { error_code, .. } => error_code.as_deref(),
            _ => None,
        }
    }

    pub fn body(&self) -> ErrorBody {
        let status = self.status_code();
        ErrorBody {
            status_code: status.as_u16(),
            error: status.canonical_reason().unwrap_or("Error").to_owned(),
            message: self.to_string(),
            error_code: self.error_code().map(str::to_owned),
        }
    }
}

/// Debug walks the whole `source()` chain, so one log line shows every cause.
impl std::fmt::Debug for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::telemetry::write_cause_chain(f, self)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::InputRefused { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::UserRefused { .. } => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::BadGateway { .. } => StatusCode::BAD_GATEWAY,
            Self::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::ServiceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            Self::Status { status, .. } | Self::Passthrough { status, .. } => *status,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = ?self, status = status.as_u16(), "request failed");
        } else {
            tracing::info!(error = %self, status = status.as_u16(), "request refused");
        }
        let mut response = HttpResponse::build(status);
        if let Self::Passthrough {
            content_type,
            body,
            retry_after_seconds,
            ..
        } = self
        {
            if let Some(seconds) = retry_after_seconds {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from(*seconds)));
            }
            return response
                .content_type(content_type.as_str())
                .body(body.clone());
        }
        match self {
            Self::TooManyRequests {
                retry_after_seconds,
                ..
            } => {
                response
                    .insert_header((header::RETRY_AFTER, HeaderValue::from(*retry_after_seconds)));
            }
            Self::MethodNotAllowed { allow, .. } => {
                response.insert_header((header::ALLOW, allow.clone()));
            }
            // The rest of the body may still come: nothing after it can be read as a request.
            Self::RequestTimeout(_) => {
                response.force_close();
            }
            _ => {}
        }
        response.json(self.body())
    }
}

/// A store outage is 503 (nobody is logged out by an outage: SPEC §7); anything else is a defect.
impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> Self {
        if err.is_unavailable() {
            tracing::error!(error = %err, "session store unavailable");
            Self::ServiceUnavailable("the session store is unavailable; try again shortly".into())
        } else {
            Self::internal(err)
        }
    }
}

/// The answer to a failed Authentication API call (SPEC §4, §5). The management routes, which
/// pass Auth0's 4xx bodies through, map their failures themselves.
impl From<Auth0Error> for ApiError {
    fn from(err: Auth0Error) -> Self {
        Self::from(&err)
    }
}

impl ApiError {
    /// The answer to `err` for a password grant whose `connection` the request named: Auth0's
    /// `invalid_request` about it ([`Auth0Error::refuses_realm`]) is the caller's mistake, 400
    /// naming the field; anything else as [`From<&Auth0Error>`] answers it (the same refusal of a
    /// connection from the config or a plugin stays a 502).
    pub fn from_auth0_for_named_connection(err: &Auth0Error) -> Self {
        match err.refuses_realm() {
            Some(description) => {
                tracing::info!(
                    target: "auth0_client::auth0",
                    "Auth0 refused the connection the request named"
                );
                Self::InputRefused {
                    message: format!(
                        "invalid `connection`: Auth0 refused it: {}",
                        crate::echo::Clipped(&description, 200)
                    ),
                    error_code: Some("invalid_request".to_owned()),
                }
            }
            _ => Self::from(err),
        }
    }
}

/// By reference, for errors shared between the callers of one single-flight refresh.
impl From<&Auth0Error> for ApiError {
    fn from(err: &Auth0Error) -> Self {
        match err.classify() {
            GrantFailure::TooManyRequests {
                retry_after,
                code,
                message,
            } => ApiError::TooManyRequests {
                message,
                retry_after_seconds: retry_after,
                error_code: code,
            },
            GrantFailure::UserRefused { message, code } => ApiError::UserRefused {
                message,
                error_code: Some(code),
            },
            GrantFailure::ConfigurationRefused {
                status,
                code,
                message,
            } => {
                tracing::error!(
                    target: "auth0_client::auth0",
                    kind = "configuration",
                    status,
                    code = code.as_deref().unwrap_or(""),
                    error = ?err,
                    "Auth0 refused the daemon's own credentials or configuration: check the \
                     client's clientId, clientSecret and auth0Url, its grant types and its API \
                     authorizations in the Auth0 dashboard"
                );
                ApiError::BadGateway {
                    message: format!(
                        "Auth0 refused the daemon's credentials or configuration: {message}"
                    ),
                    error_code: code,
                }
            }
            GrantFailure::Upstream5xx { status, code, .. } => {
                tracing::warn!(target: "auth0_client::auth0", error = ?err, "Auth0 failed");
                ApiError::BadGateway {
                    message: format!("Auth0 failed with HTTP {status}"),
                    error_code: code,
                }
            }
            GrantFailure::InvalidAnswer { .. } => {
                tracing::warn!(target: "auth0_client::auth0", error = ?err, "unreadable Auth0 answer");
                ApiError::BadGateway {
                    message: "Auth0 answered with an unexpected body".to_owned(),
                    error_code: None,
                }
            }
            GrantFailure::Unreachable => {
                tracing::warn!(target: "auth0_client::auth0", error = ?err, "Auth0 unreachable");
                ApiError::BadGateway {
                    message: "Auth0 is unreachable".to_owned(),
                    error_code: None,
                }
            }
            GrantFailure::Timeout { timeout_ms } => {
                ApiError::GatewayTimeout(format!("Auth0 did not answer within {timeout_ms} ms"))
            }
            GrantFailure::TimedOutUpstream => {
                tracing::warn!(target: "auth0_client::auth0", error = ?err, "Auth0 timed out (HTTP 408)");
                ApiError::GatewayTimeout("Auth0 timed out (HTTP 408 Request Timeout)".to_owned())
            }
        }
    }
}

/// A failed Management API call (SPEC §6): Auth0's 4xx pass through with their status and body;
/// a refusal of the daemon's own management token or scopes is a configuration error (502,
/// logged as such); the rate limit is 429 with `Retry-After`; 5xx and unreachable 502, timeout
/// 504; no `managementClient` 501.
impl From<crate::auth0::management::ManagementError> for ApiError {
    fn from(err: crate::auth0::management::ManagementError) -> Self {
        use crate::auth0::management::ManagementError;
        match err {
            ManagementError::NotConfigured => Self::NotImplemented(
                "the management routes need `managementClient` in the configuration".into(),
            ),
            ManagementError::Refused(failure) => Self::Passthrough {
                status: actix_status(failure.status),
                content_type: failure.passthrough_content_type().to_owned(),
                body: failure.body.clone(),
                retry_after_seconds: None,
            },
            ManagementError::RateLimited {
                retry_after,
                failure,
            } => {
                let retry_after_seconds = retry_after.as_secs().max(1);
                match failure {
                    Some(failure) => Self::Passthrough {
                        status: actix_status(failure.status),
                        content_type: failure.passthrough_content_type().to_owned(),
                        body: failure.body.clone(),
                        retry_after_seconds: Some(retry_after_seconds),
                    },
                    None => Self::TooManyRequests {
                        message: format!(
                            "Auth0's Management API rate limit is reached; retry in {retry_after_seconds} s"
                        ),
                        retry_after_seconds,
                        error_code: None,
                    },
                }
            }
            ManagementError::Credentials(failure) => {
                tracing::error!(
                    target: "auth0_client::auth0",
                    kind = "configuration",
                    status = failure.status.as_u16(),
                    code = failure.code.as_deref().unwrap_or(""),
                    error = ?failure,
                    "Auth0 refused the daemon's management token or its scopes: check \
                     managementClient's clientId, clientSecret and auth0Url, and that the \
                     application is authorized for the Management API with the scopes \
                     read:users, create:users, update:users and delete:users"
                );
                Self::BadGateway {
                    message: format!(
                        "Auth0 refused the daemon's management credentials (HTTP {}){}",
                        failure.status.as_u16(),
                        failure
                            .description
                            .as_deref()
                            .map(|d| format!(": {d}"))
                            .unwrap_or_default()
                    ),
                    error_code: failure.code.clone(),
                }
            }
            ManagementError::Upstream(err) => Self::from(err.as_ref()),
            ManagementError::InvalidAnswer { reason } => {
                tracing::warn!(target: "auth0_client::auth0", %reason, "unreadable Management API answer");
                Self::BadGateway {
                    message: "Auth0's Management API answered with an unexpected body".to_owned(),
                    error_code: None,
                }
            }
            ManagementError::Deadline {
                budget_ms,
                attempts,
            } => Self::GatewayTimeout(format!(
                "Auth0's Management API did not answer within {budget_ms} ms ({attempts} attempts)"
            )),
            ManagementError::Unavailable => {
                Self::ServiceUnavailable("the management client is stopping".to_owned())
            }
        }
    }
}

/// A `GET /users` parameter or `acl_rows` that cannot be translated: 400 naming it.
impl From<crate::auth0::user_query::UserQueryError> for ApiError {
    fn from(err: crate::auth0::user_query::UserQueryError) -> Self {
        Self::BadRequest(err.to_string())
    }
}

/// reqwest's status as actix's (two versions of the `http` crate); never fails for a status
/// Auth0 answered, 502 otherwise.
fn actix_status(status: reqwest::StatusCode) -> StatusCode {
    StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY)
}

/// An ID token Auth0 handed over that does not verify is Auth0's (or an attacker's) fault, not
/// the caller's: 502; keys that cannot be fetched answer as the fetch failed (502 or 504).
impl From<IdTokenError> for ApiError {
    fn from(err: IdTokenError) -> Self {
        Self::from(&err)
    }
}

/// By reference, for errors shared between the callers of one single-flight refresh.
impl From<&IdTokenError> for ApiError {
    fn from(err: &IdTokenError) -> Self {
        match err {
            IdTokenError::Keys(JwksError::Fetch { source, .. }) => ApiError::from(source),
            IdTokenError::Keys(keys) => {
                tracing::warn!(target: "auth0_client::auth0", error = %keys, "no signing keys");
                ApiError::BadGateway {
                    message: "the Auth0 tenant's signing keys are unavailable".to_owned(),
                    error_code: None,
                }
            }
            other => {
                tracing::warn!(target: "auth0_client::auth0", error = %other, "ID token refused");
                ApiError::BadGateway {
                    message: format!("the ID token from Auth0 failed verification: {other}"),
                    error_code: None,
                }
            }
        }
    }
}

/// A refused back-channel logout token is the caller's mistake: 400 naming the rule (SPEC §5);
/// keys that cannot be fetched answer as the fetch failed (502 or 504), as for an ID token.
impl From<crate::auth0::logout_token::LogoutTokenError> for ApiError {
    fn from(err: crate::auth0::logout_token::LogoutTokenError) -> Self {
        use crate::auth0::logout_token::LogoutTokenError;
        match err {
            LogoutTokenError::Keys(keys) => ApiError::from(IdTokenError::Keys(keys)),
            refused => {
                tracing::info!(reason = %refused, "back-channel logout token refused");
                ApiError::BadRequest(refused.to_string())
            }
        }
    }
}

/// Too many logins in progress (`sessions.maxPendingLogins*`): 429, `Retry-After` the seconds
/// until the oldest of them expires.
impl From<crate::pending::TooManyPendingLogins> for ApiError {
    fn from(err: crate::pending::TooManyPendingLogins) -> Self {
        Self::TooManyRequests {
            message: err.to_string(),
            retry_after_seconds: err.retry_after_seconds(),
            error_code: None,
        }
    }
}

/// A caller's `redirect` that is not a safe relative path: 400 naming the field.
impl From<super::extract::InvalidRedirect> for ApiError {
    fn from(err: super::extract::InvalidRedirect) -> Self {
        Self::BadRequest(err.to_string())
    }
}

/// A login rule refused the request before Auth0 was asked: the client's fault, 400.
impl From<crate::login::LoginError> for ApiError {
    fn from(err: crate::login::LoginError) -> Self {
        match err {
            crate::login::LoginError::UnsupportedConnection(_) => Self::BadRequest(err.to_string()),
            crate::login::LoginError::Plugin(failure) => Self::from(failure),
        }
    }
}

/// A login state refused (SPEC §5): unknown 400, without its binding or with another nonce 403;
/// the store's and the exchange's failures as theirs.
impl From<crate::login::state::StateError> for ApiError {
    fn from(err: crate::login::state::StateError) -> Self {
        use crate::login::state::StateError;
        match err {
            StateError::Unknown => Self::BadRequest(err.to_string()),
            StateError::Unbound { .. } | StateError::NonceMismatch => {
                Self::Forbidden(err.to_string())
            }
            StateError::Store(err) => Self::from(err),
            StateError::Login(err) => Self::from(err),
        }
    }
}

/// A `fail-closed` plugin failed (SPEC §9): 502 naming the plugin and the hook.
impl From<crate::actors::plugins::PluginFailure> for ApiError {
    fn from(failure: crate::actors::plugins::PluginFailure) -> Self {
        Self::BadGateway {
            message: failure.to_string(),
            error_code: None,
        }
    }
}

impl From<&crate::actors::tokens::TokenError> for ApiError {
    fn from(err: &crate::actors::tokens::TokenError) -> Self {
        use crate::actors::tokens::TokenError;
        match err {
            TokenError::Auth0(err) => Self::from(err),
            TokenError::IdToken(err) => Self::from(err),
            TokenError::Store(err) if err.is_unavailable() => {
                tracing::error!(error = %err, "session store unavailable");
                Self::ServiceUnavailable(
                    "the session store is unavailable; try again shortly".into(),
                )
            }
            TokenError::Store(err) => Self::internal(err.to_string()),
            TokenError::NoIdToken => Self::BadGateway {
                message: err.to_string(),
                error_code: None,
            },
            TokenError::UnknownClient(_) => Self::Unauthorized(err.to_string()),
        }
    }
}

impl From<crate::actors::tokens::TokenError> for ApiError {
    fn from(err: crate::actors::tokens::TokenError) -> Self {
        Self::from(&err)
    }
}

/// An import refused before Auth0 was called (413 for one user over Auth0's limit, naming its
/// index), or a failure of its Auth0 call or its record (SPEC §6).
impl From<crate::actors::jobs::ImportError> for ApiError {
    fn from(err: crate::actors::jobs::ImportError) -> Self {
        use crate::actors::jobs::ImportError;
        match err {
            ImportError::UserTooLarge { .. } => Self::PayloadTooLarge(err.to_string()),
            ImportError::NoUsers => Self::BadRequest(err.to_string()),
            ImportError::UnknownBatch(_) => Self::NotFound(err.to_string()),
            ImportError::Store(err) => Self::from(err),
            ImportError::Auth0(err) => Self::from(err),
            ImportError::InvalidAnswer(reason) => {
                tracing::warn!(target: "auth0_client::auth0", %reason, "unreadable import job answer");
                Self::BadGateway {
                    message: "Auth0 answered the import with an unexpected body".to_owned(),
                    error_code: None,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth0::error::test_support::{failure, oauth};

    #[test]
    fn body_has_status_reason_and_message() {
        let err = ApiError::BadRequest("missing field `username`".into());
        let body = serde_json::to_value(err.body()).expect("serializable");
        assert_eq!(
            body,
            serde_json::json!({"statusCode": 400, "error": "Bad Request", "message": "missing field `username`"})
        );
    }

    #[test]
    fn auth0_error_code_is_carried() {
        let err = ApiError::BadGateway {
            message: "Auth0 refused the client credentials".into(),
            error_code: Some("access_denied".into()),
        };
        let body = serde_json::to_value(err.body()).expect("serializable");
        assert_eq!(body["errorCode"], "access_denied");
        assert_eq!(body["statusCode"], 502);
    }

    #[test]
    fn internal_errors_hide_their_cause_from_clients_but_not_from_logs() {
        let err = ApiError::internal(std::io::Error::other("disk on fire"));
        assert_eq!(err.body().message, "internal error");
        assert!(format!("{err:?}").contains("disk on fire"));
    }

    #[test]
    fn answers_per_spec_section_4() {
        let answer = |err: Auth0Error| {
            let api = ApiError::from(err);
            (api.status_code().as_u16(), api.body())
        };
        let (status, body) = answer(failure(
            429,
            r#"{"error":"too_many_requests","error_description":"Rate limit exceeded."}"#,
            &[("retry-after", "12")],
        ));
        assert_eq!(status, 429);
        assert_eq!(body.error_code.as_deref(), Some("too_many_requests"));
        let api = ApiError::from(failure(429, "", &[("retry-after", "12")]));
        assert!(matches!(
            api,
            ApiError::TooManyRequests {
                retry_after_seconds: 12,
                ..
            }
        ));
        let response = api.error_response();
        assert_eq!(
            response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("12")
        );

        let (status, body) = answer(oauth(403, "invalid_grant", "Wrong email or password."));
        assert_eq!(status, 403);
        assert_eq!(body.message, "Wrong email or password.");

        let (status, body) = answer(oauth(401, "access_denied", "Unauthorized"));
        assert_eq!(status, 502);
        assert_eq!(body.error_code.as_deref(), Some("access_denied"));

        let (status, body) = answer(oauth(503, "temporarily_unavailable", "x"));
        assert_eq!(status, 502);
        assert_eq!(body.error_code.as_deref(), Some("temporarily_unavailable"));

        let (status, _) = answer(Auth0Error::Timeout {
            endpoint: "/oauth/token",
            timeout_ms: 5,
        });
        assert_eq!(status, 504);
        let (status, _) = answer(Auth0Error::InvalidAnswer {
            endpoint: "/oauth/token",
            reason: "x".into(),
        });
        assert_eq!(status, 502);
    }

    #[test]
    fn a_wrong_password_is_403_with_auth0s_message_and_code() {
        let api = ApiError::from(oauth(403, "invalid_grant", "Wrong email or password."));
        assert!(matches!(&api, ApiError::UserRefused { message, error_code }
                if message == "Wrong email or password." && error_code.as_deref() == Some("invalid_grant")));
        // A blocked user, as Auth0 answers a login grant for one.
        let api = ApiError::from(oauth(401, "unauthorized", "user is blocked"));
        assert_eq!(api.status_code().as_u16(), 403);
    }

    #[test]
    fn refused_credentials_are_502_and_name_auth0s_code() {
        let api = ApiError::from(oauth(401, "access_denied", "Unauthorized"));
        assert!(matches!(&api, ApiError::BadGateway { error_code, .. }
                if error_code.as_deref() == Some("access_denied")));
    }

    #[test]
    fn an_unreachable_auth0_is_502() {
        let source = reqwest::Client::new()
            .get("not a url")
            .build()
            .expect_err("an unparsable URL");
        let api = ApiError::from(Auth0Error::Unreachable {
            endpoint: "/oauth/token",
            before_sending: true,
            source,
        });
        assert!(matches!(api, ApiError::BadGateway { .. }));
    }

    #[test]
    fn id_tokens_that_do_not_verify_are_502_and_key_fetches_answer_as_fetched() {
        let api = ApiError::from(IdTokenError::BadSignature);
        assert!(matches!(api, ApiError::BadGateway { .. }));
        let api = ApiError::from(IdTokenError::Keys(JwksError::Unavailable {
            tenant: "https://tenant.example/".into(),
            reason: "down".into(),
        }));
        assert!(matches!(api, ApiError::BadGateway { .. }));
        let api = ApiError::from(IdTokenError::Keys(JwksError::Fetch {
            tenant: "https://tenant.example/".into(),
            source: Auth0Error::Timeout {
                endpoint: "/.well-known/jwks.json",
                timeout_ms: 5,
            },
        }));
        assert!(matches!(api, ApiError::GatewayTimeout(_)));
    }

    #[test]
    fn an_unsupported_connection_is_400_naming_it() {
        let api = ApiError::from(crate::login::LoginError::UnsupportedConnection("C".into()));
        assert_eq!(api.status_code().as_u16(), 400);
        assert_eq!(
            api.body().message,
            "connection \"C\" is not supported by this client"
        );
    }

    #[actix_rt::test]
    async fn management_failures_pass_auth0s_4xx_through_and_blame_the_daemons_token_with_502() {
        use crate::auth0::management::{ManagementError, failure_of};
        let body_of = |response: HttpResponse| async move {
            actix_web::body::to_bytes(response.into_body())
                .await
                .expect("body")
        };
        let conflict = r#"{"statusCode":409,"error":"Conflict","message":"The user already exists.","errorCode":"auth0_idp_error"}"#;
        let api = ApiError::from(failure_of(failure(
            409,
            conflict,
            &[("content-type", "application/json; charset=utf-8")],
        )));
        let response = api.error_response();
        assert_eq!(response.status().as_u16(), 409);
        assert_eq!(body_of(response).await, conflict.as_bytes());

        let limited = ApiError::from(failure_of(failure(
            429,
            r#"{"statusCode":429}"#,
            &[("retry-after", "12")],
        )));
        let response = limited.error_response();
        assert_eq!(response.status().as_u16(), 429);
        assert_eq!(
            response.headers().get("retry-after").expect("retry-after"),
            "12"
        );

        let paused = ApiError::from(ManagementError::RateLimited {
            retry_after: std::time::Duration::from_secs(5),
            failure: None,
        });
        assert_eq!(paused.status_code().as_u16(), 429);
        assert_eq!(
            paused
                .error_response()
                .headers()
                .get("retry-after")
                .expect("retry-after"),
            "5"
        );

        let scope = ApiError::from(failure_of(failure(
            403,
            r#"{"statusCode":403,"error":"Forbidden","message":"Insufficient scope, expected any of: read:users","errorCode":"insufficient_scope"}"#,
            &[],
        )));
        assert_eq!(scope.status_code().as_u16(), 502);
        assert_eq!(
            scope.body().error_code.as_deref(),
            Some("insufficient_scope")
        );
        assert_eq!(
            ApiError::from(failure_of(failure(503, "", &[])))
                .status_code()
                .as_u16(),
            502
        );
        let unconfigured = ApiError::from(ManagementError::NotConfigured);
        assert_eq!(unconfigured.status_code().as_u16(), 501);
        assert!(unconfigured.body().message.contains("managementClient"));
    }
}
