//! Maps actix's extractor failures (bad JSON, bad form, bad query, oversized or late body) to
//! `ApiError`, so a malformed request gets SPEC §4's body and never actix's plain-text default.
//! A parser's message may quote the caller's value: it is cut at [`MAX_DETAIL_CHARS`].

use crate::echo::Clipped;
use crate::http::ApiError;
use actix_web::error::{JsonPayloadError, PayloadError, QueryPayloadError, UrlencodedError};
use actix_web::{HttpRequest, web};

/// The most characters of a parser's error message an answer repeats.
pub const MAX_DETAIL_CHARS: usize = 160;

fn detail(err: &dyn std::fmt::Display) -> String {
    Clipped(&err.to_string(), MAX_DETAIL_CHARS).to_string()
}

pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, _req| json_error(err).into())
}

pub fn form_config(limit: usize) -> web::FormConfig {
    web::FormConfig::default()
        .limit(limit)
        .error_handler(|err, _req| form_error(err).into())
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| query_error(err).into())
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, _req: &HttpRequest| {
        ApiError::BadRequest(format!("invalid path parameter: {}", detail(&err))).into()
    })
}

/// The limit of raw bodies (`web::Bytes`), whose extractor takes no error handler: the
/// middleware answers its errors in JSON ([`super::ApiError::from_actix`]).
pub fn payload_config(limit: usize) -> web::PayloadConfig {
    web::PayloadConfig::new(limit)
}

/// What the body deadline (`server.bodyTimeoutMs`) makes the body stream fail with.
pub fn body_timed_out() -> PayloadError {
    PayloadError::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "the request body did not arrive in time",
    ))
}

pub fn payload_error(err: &PayloadError) -> ApiError {
    match err {
        PayloadError::Overflow => {
            ApiError::PayloadTooLarge("request body is larger than allowed".into())
        }
        PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
            ApiError::RequestTimeout(
                "the request body did not arrive within `server.bodyTimeoutMs`".into(),
            )
        }
        other => ApiError::BadRequest(format!("could not read the request body: {other}")),
    }
}

pub fn json_error(err: JsonPayloadError) -> ApiError {
    match err {
        JsonPayloadError::OverflowKnownLength { length, limit } => ApiError::PayloadTooLarge(
            format!("request body of {length} bytes is larger than the limit of {limit} bytes"),
        ),
        JsonPayloadError::Overflow { limit } => ApiError::PayloadTooLarge(format!(
            "request body is larger than the limit of {limit} bytes"
        )),
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType(
            "expected a JSON body (Content-Type: application/json)".into(),
        ),
        JsonPayloadError::Deserialize(e) => {
            ApiError::BadRequest(format!("malformed JSON body: {}", detail(&e)))
        }
        JsonPayloadError::Payload(e) => payload_error(&e),
        other => ApiError::BadRequest(format!("malformed JSON body: {}", detail(&other))),
    }
}

pub fn form_error(err: UrlencodedError) -> ApiError {
    match err {
        UrlencodedError::Overflow { size, limit } => ApiError::PayloadTooLarge(format!(
            "request body of {size} bytes is larger than the limit of {limit} bytes"
        )),
        UrlencodedError::ContentType => ApiError::UnsupportedMediaType(
            "expected a form body (Content-Type: application/x-www-form-urlencoded)".into(),
        ),
        UrlencodedError::Parse(e) => {
            ApiError::BadRequest(format!("malformed form body: {}", detail(&e)))
        }
        UrlencodedError::Payload(e) => payload_error(&e),
        other => ApiError::BadRequest(format!("malformed form body: {}", detail(&other))),
    }
}

pub fn query_error(err: QueryPayloadError) -> ApiError {
    match err {
        QueryPayloadError::Deserialize(e) => {
            ApiError::BadRequest(format!("invalid query string: {}", detail(&e)))
        }
        other => ApiError::BadRequest(format!("invalid query string: {}", detail(&other))),
    }
}
