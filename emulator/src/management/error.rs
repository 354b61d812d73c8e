//! The Management API's error body, `{statusCode, error, message, errorCode}` (wire reference §2.2),
//! and the errors the emulator answers with, worded as Auth0 words them.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::{Value, json};
use std::fmt;

/// An error of the Management API, rendered as Auth0 renders it.
#[derive(Debug, Clone, PartialEq)]
pub struct MgmtError {
    pub status: StatusCode,
    pub message: String,
    /// Absent on some of Auth0's answers (the 401s, the 2-active-jobs 429, the 413).
    pub error_code: Option<&'static str>,
    /// Auth0's 401s repeat the message under `attributes.error` [OBS].
    pub attributes: Option<Value>,
}

impl MgmtError {
    pub fn new(
        status: StatusCode,
        error_code: Option<&'static str>,
        message: impl Into<String>,
    ) -> Self {
        MgmtError {
            status,
            message: message.into(),
            error_code,
            attributes: None,
        }
    }

    /// The JSON body, keys in Auth0's order.
    pub fn body(&self) -> ErrorBody<'_> {
        ErrorBody {
            status_code: self.status.as_u16(),
            error: self.status.canonical_reason().unwrap_or("Error"),
            message: &self.message,
            error_code: self.error_code,
            attributes: self.attributes.as_ref(),
        }
    }

    /// No `Authorization` header. [INF]: Auth0 is hapi/Boom-style; the text is not verified.
    pub fn missing_authentication() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, None, "Missing authentication")
    }

    /// A token that is not a valid Management API token of this tenant [OBS].
    pub fn invalid_token() -> Self {
        Self::unauthorized("Invalid token")
    }

    /// A Management API token past its `exp` [OBS] (the shape of the invalid-token body [INF]).
    pub fn expired_token() -> Self {
        Self::unauthorized("Expired token received for JSON Web Token validation")
    }

    fn unauthorized(message: &str) -> Self {
        MgmtError {
            attributes: Some(json!({ "error": message })),
            ..Self::new(StatusCode::UNAUTHORIZED, None, message)
        }
    }

    /// The token lacks every scope the endpoint accepts [OBS].
    pub fn insufficient_scope(expected: &[&str]) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            Some("insufficient_scope"),
            format!(
                "Insufficient scope, expected any of: {}",
                expected.join(",")
            ),
        )
    }

    /// `GET`/`PATCH` of an unknown user [OBS].
    pub fn inexistent_user() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            Some("inexistent_user"),
            "The user does not exist.",
        )
    }

    /// `POST /users` of a user the connection already has [OBS].
    pub fn user_exists() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            Some("auth0_idp_error"),
            "The user already exists.",
        )
    }

    /// A request body that breaks the endpoint's schema, worded as Auth0's validator words it:
    /// `Payload validation error: '<detail>' on property <prop> (<description>).` [OBS]
    pub fn invalid_body_property(detail: &str, property: &str, description: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            Some("invalid_body"),
            format!("Payload validation error: '{detail}' on property {property} ({description})."),
        )
    }

    /// A body error not tied to one property: `Payload validation error: '<detail>'.` [OBS]
    pub fn invalid_body(detail: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            Some("invalid_body"),
            format!("Payload validation error: '{detail}'."),
        )
    }

    /// A 400 with a documented message and an error code [DOC] (the codes are [INF] unless noted).
    pub fn bad_request(error_code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some(error_code), message)
    }

    /// A query parameter that breaks the endpoint's schema, worded like a body error [INF]
    /// (the OAS names `invalid_query_string` for "Invalid request query string").
    pub fn invalid_query(detail: &str, property: &str, description: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            Some("invalid_query_string"),
            format!("Query validation error: '{detail}' on property {property} ({description})."),
        )
    }

    /// Paging beyond the 1000 results search returns [DOC] (`invalid_paging` [INF]).
    pub fn paging_limit() -> Self {
        Self::bad_request(
            "invalid_paging",
            "You can only page through the first 1000 records. See https://auth0.com/docs/users/search/v3/view-search-results-by-page#limitation.",
        )
    }

    /// A third active import job [DOC]: no `errorCode`, and Auth0's text as the docs quote it.
    pub fn too_many_jobs() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            None,
            "There are 2 active import users jobs, please wait until some of them are finished and try again",
        )
    }

    /// The control API's 429 mode [OBS].
    pub fn rate_limited() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            Some("too_many_requests"),
            "Global limit has been reached",
        )
    }

    /// A users file above 512000 bytes: hapi's 413, no `errorCode` [DOC].
    pub fn file_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            format!(
                "Payload content length greater than maximum allowed: {}.",
                crate::jobs::MAX_FILE_BYTES
            ),
        )
    }

    /// `GET /jobs/{id}` of an unknown or forgotten job [DOC] (`inexistent_job` [INF]).
    pub fn job_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            Some("inexistent_job"),
            "Job not found.",
        )
    }

    /// `GET /jobs/{id}/errors` of an unknown or forgotten job [DOC] (`inexistent_job` [INF]).
    pub fn job_errors_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            Some("inexistent_job"),
            "The job does not exist",
        )
    }
}

/// [`MgmtError`] as JSON.
#[derive(Debug, serde::Serialize)]
pub struct ErrorBody<'a> {
    #[serde(rename = "statusCode")]
    pub status_code: u16,
    pub error: &'a str,
    pub message: &'a str,
    #[serde(rename = "errorCode", skip_serializing_if = "Option::is_none")]
    pub error_code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<&'a Value>,
}

impl fmt::Display for MgmtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl std::error::Error for MgmtError {}

impl ResponseError for MgmtError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        super::json_response(self.status, &self.body())
    }
}
