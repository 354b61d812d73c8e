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

/// A body format a route takes, as the messages of its parser's failures name it.
#[derive(Clone, Copy)]
struct BodyFormat {
    /// `JSON`, `form`.
    name: &'static str,
    content_type: &'static str,
}

const JSON: BodyFormat = BodyFormat {
    name: "JSON",
    content_type: "application/json",
};

const FORM: BodyFormat = BodyFormat {
    name: "form",
    content_type: "application/x-www-form-urlencoded",
};

impl BodyFormat {
    fn wrong_content_type(self) -> ApiError {
        ApiError::UnsupportedMediaType(format!(
            "expected a {} body (Content-Type: {})",
            self.name, self.content_type
        ))
    }

    fn malformed(self, err: &dyn std::fmt::Display) -> ApiError {
        ApiError::BadRequest(format!("malformed {} body: {}", self.name, detail(err)))
    }
}

/// 413 for a body over `limit` bytes, naming its length when the request declared it.
fn too_large(length: Option<usize>, limit: usize) -> ApiError {
    ApiError::PayloadTooLarge(match length {
        Some(length) => {
            format!("request body of {length} bytes is larger than the limit of {limit} bytes")
        }
        None => format!("request body is larger than the limit of {limit} bytes"),
    })
}

pub fn json_error(err: JsonPayloadError) -> ApiError {
    match err {
        JsonPayloadError::OverflowKnownLength { length, limit } => too_large(Some(length), limit),
        JsonPayloadError::Overflow { limit } => too_large(None, limit),
        JsonPayloadError::ContentType => JSON.wrong_content_type(),
        JsonPayloadError::Deserialize(e) => JSON.malformed(&e),
        JsonPayloadError::Payload(e) => payload_error(&e),
        other => JSON.malformed(&other),
    }
}

pub fn form_error(err: UrlencodedError) -> ApiError {
    match err {
        UrlencodedError::Overflow { size, limit } => too_large(Some(size), limit),
        UrlencodedError::ContentType => FORM.wrong_content_type(),
        UrlencodedError::Parse(e) => FORM.malformed(&e),
        UrlencodedError::Payload(e) => payload_error(&e),
        other => FORM.malformed(&other),
    }
}

pub fn query_error(err: QueryPayloadError) -> ApiError {
    // The parser's own error rather than actix's wrapping of it, when there is one.
    let detail = match &err {
        QueryPayloadError::Deserialize(e) => detail(e),
        other => detail(other),
    };
    ApiError::BadRequest(format!("invalid query string: {detail}"))
}
