//! The Management API v2 (`/api/v2`, wire reference §2 and §3): users and import jobs, behind a
//! Management API token checked on every call, with `X-RateLimit-*` headers on every response.
//!
//! The routes are mounted once the tenant state they read is in place.

pub mod error;
pub mod users;

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderValue};
use actix_web::{HttpResponse, web};

/// Every Management API response is `application/json; charset=utf-8` [OBS], the 204s included.
pub const JSON_UTF8: &str = "application/json; charset=utf-8";

/// A JSON response with the Management API's content type.
pub fn json_response(status: StatusCode, body: &impl serde::Serialize) -> HttpResponse {
    match serde_json::to_vec(body) {
        Ok(bytes) => HttpResponse::build(status)
            .insert_header((CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8)))
            .body(bytes),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

/// Mounts `/api/v2` (placeholder until the routes land).
pub fn configure(_cfg: &mut web::ServiceConfig) {}
