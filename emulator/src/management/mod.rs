//! The Management API v2 (`/api/v2`, wire reference §2 and §3): users and import jobs, behind a
//! Management API token checked on every call. The `X-RateLimit-*` headers, the 429 mode, faults and
//! the request log come from `crate::observe`, which wraps every route.

pub mod error;
pub mod jobs;
pub mod store;
pub mod users;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use actix_web::middleware::{Next, from_fn};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use error::MgmtError;
use std::future::{Ready, ready};

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

/// A 204 with the Management API's content type and no body [OBS].
pub fn no_content() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header((CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8)))
        .finish()
}

/// Mounts `/api/v2`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v2")
            .wrap(from_fn(advance_jobs))
            .configure(crate::backchannel::management)
            .configure(users::configure)
            .configure(jobs::configure)
            .default_service(web::to(not_found)),
    );
}

/// An unknown Management API path: hapi's 404 [INF].
async fn not_found() -> HttpResponse {
    MgmtError::new(StatusCode::NOT_FOUND, None, "Not Found").error_response()
}

/// Finishes due import jobs before any Management API request reads the tenant, so a job's status
/// and its users never depend on whether its wake-up has fired yet.
async fn advance_jobs(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    if let Some(tenant) = store::tenant(req.request()) {
        store::run_due_jobs(&tenant, std::time::Instant::now());
    }
    next.call(req).await
}

/// A request that carried a valid Management API token of this tenant; extracting it answers
/// Auth0's 401 otherwise (§2.2).
#[derive(Debug, Clone)]
pub struct Authorized {
    /// The token's `scope`, split.
    pub scopes: Vec<String>,
}

impl Authorized {
    /// Auth0's 403 unless the token has one of `any_of` (§2.1's table).
    pub fn require(&self, any_of: &[&str]) -> Result<(), MgmtError> {
        if any_of
            .iter()
            .any(|s| self.scopes.iter().any(|have| have == s))
        {
            Ok(())
        } else {
            Err(MgmtError::insufficient_scope(any_of))
        }
    }
}

impl FromRequest for Authorized {
    type Error = MgmtError;
    type Future = Ready<Result<Self, MgmtError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authorize(req))
    }
}

fn authorize(req: &HttpRequest) -> Result<Authorized, MgmtError> {
    let tenant = store::tenant(req).ok_or_else(MgmtError::invalid_token)?;
    let header = match req.headers().get(AUTHORIZATION) {
        None => None,
        Some(value) => Some(value.to_str().map_err(|_| MgmtError::invalid_token())?),
    };
    store::authorize(&tenant, header)
}
