//! `/api/v2/jobs` routes (wire reference §3): `POST /jobs/users-imports` (multipart), `GET
//! /jobs/{id}` and `GET /jobs/{id}/errors`. The records and their lifecycle live in
//! [`crate::jobs`].

use super::error::MgmtError;
use super::{Authorized, json_response, no_content, store};
use crate::jobs::{CreateJobError, JobErrors, MAX_FILE_BYTES, NewJob};
use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde_json::Value;
use std::time::Instant;

/// `/jobs/...`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/jobs/users-imports", web::post().to(create_import))
        .route("/jobs/{id}", web::get().to(get_job))
        .route("/jobs/{id}/errors", web::get().to(get_job_errors));
}

/// The parts of an import request, as read.
#[derive(Debug, Default)]
struct ImportForm {
    users: Option<Vec<u8>>,
    users_too_large: bool,
    connection_id: Option<String>,
    upsert: Option<String>,
    external_id: Option<String>,
    send_completion_email: Option<String>,
}

/// The other parts are short; anything longer is read no further [INF].
const MAX_TEXT_PART: usize = 4096;

fn invalid_multipart() -> MgmtError {
    MgmtError::invalid_body("Invalid multipart payload format")
}

/// Reads every part, the whole payload included: a users file above the limit is drained rather
/// than cut off, so the client reads the 413 instead of a reset connection.
async fn read_form(mut payload: Multipart) -> Result<ImportForm, MgmtError> {
    let mut form = ImportForm::default();
    while let Some(field) = payload.next().await {
        let mut field = field.map_err(|_| invalid_multipart())?;
        let name = field.name().unwrap_or_default().to_string();
        let limit = if name == "users" {
            MAX_FILE_BYTES
        } else {
            MAX_TEXT_PART
        };
        let mut bytes = Vec::new();
        let mut over = false;
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|_| invalid_multipart())?;
            if bytes.len() + chunk.len() > limit {
                over = true;
            } else {
                bytes.extend_from_slice(&chunk);
            }
        }
        let text = || String::from_utf8_lossy(&bytes).into_owned();
        match name.as_str() {
            "users" => {
                form.users_too_large = over;
                form.users = Some(bytes);
            }
            "connection_id" => form.connection_id = Some(text()),
            "upsert" => form.upsert = Some(text()),
            "external_id" => form.external_id = Some(text()),
            "send_completion_email" => form.send_completion_email = Some(text()),
            // Other parts are ignored, as the SDKs send none [INF].
            _ => {}
        }
    }
    Ok(form)
}

/// A multipart boolean: the SDKs send `"true"` / `"false"` [SDK].
fn form_bool(value: Option<&str>, property: &str, default: bool) -> Result<bool, MgmtError> {
    match value.map(str::trim) {
        None | Some("") => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(_) => Err(MgmtError::invalid_body_property(
            "Expected type boolean but found type string",
            property,
            match property {
                "upsert" => {
                    "Whether to update users if they already exist (true) or to ignore them (false)"
                }
                _ => {
                    "Whether to send a completion email to all tenant owners when the job is finished (true) or not (false)"
                }
            },
        )),
    }
}

fn is_connection_id(id: &str) -> bool {
    id.strip_prefix("con_")
        .is_some_and(|rest| rest.len() == 16 && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Parses the users file: a JSON array, else the reason the job will fail [INF].
fn parse_users(bytes: &[u8]) -> Result<Vec<Value>, String> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Array(users)) => Ok(users),
        Ok(_) => Err("The users file must contain a JSON array of users.".into()),
        Err(_) => Err("Failed to parse users file JSON when importing users.".into()),
    }
}

async fn create_import(
    auth: Authorized,
    req: HttpRequest,
    payload: Multipart,
) -> Result<HttpResponse, MgmtError> {
    auth.require(&["create:users"])?;
    let form = read_form(payload).await?;
    if form.users_too_large {
        return Err(MgmtError::file_too_large());
    }
    // The checks in the order of the OAS's list of 400s [DOC]; `invalid_body` for each [INF]
    // except the connection one (`inexistent_connection` [INF]).
    let users = form.users.ok_or_else(|| {
        MgmtError::bad_request(
            "invalid_body",
            "Must provide 'users' file as multipart part.",
        )
    })?;
    if users.iter().all(u8::is_ascii_whitespace) {
        return Err(MgmtError::bad_request(
            "invalid_body",
            "Users file must not be empty.",
        ));
    }
    let connection_id = form.connection_id.ok_or_else(|| {
        MgmtError::bad_request(
            "invalid_body",
            "Must provide 'connection_id' as multipart part.",
        )
    })?;
    if !is_connection_id(&connection_id) {
        // The exact body seen from Auth0, without a final period [OBS].
        return Err(MgmtError::bad_request(
            "invalid_body",
            "Payload validation error: 'String does not match pattern ^con_[A-Za-z0-9]{16}$' on property connection_id",
        ));
    }
    let upsert = form_bool(form.upsert.as_deref(), "upsert", false)?;
    let send_completion_email = form_bool(
        form.send_completion_email.as_deref(),
        "send_completion_email",
        true,
    )?;
    let tenant = store::tenant(&req).ok_or_else(MgmtError::invalid_token)?;
    let connection = store::connection_name(&tenant, &connection_id).ok_or_else(|| {
        MgmtError::bad_request("inexistent_connection", "The connection does not exist.")
    })?;
    let now = Instant::now();
    store::run_due_jobs(&tenant, now);
    let job = NewJob {
        connection_id,
        connection,
        external_id: form.external_id.filter(|e| !e.is_empty()),
        upsert,
        send_completion_email,
        users: parse_users(&users),
    };
    let settings = store::job_settings(&tenant);
    let view = store::jobs(&tenant)
        .create(job, now, &settings)
        .map_err(|e| match e {
            CreateJobError::TooManyActive => MgmtError::too_many_jobs(),
        })?;
    store::wake_when_due(&tenant);
    Ok(json_response(StatusCode::ACCEPTED, &view))
}

async fn get_job(
    auth: Authorized,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, MgmtError> {
    auth.require(&["create:users", "read:users"])?;
    let tenant = store::tenant(&req).ok_or_else(MgmtError::invalid_token)?;
    let now = Instant::now();
    store::run_due_jobs(&tenant, now);
    let view = store::jobs(&tenant)
        .get(&id, now)
        .ok_or_else(MgmtError::job_not_found)?;
    Ok(json_response(StatusCode::OK, &view))
}

async fn get_job_errors(
    auth: Authorized,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, MgmtError> {
    auth.require(&["create:users", "read:users"])?;
    let tenant = store::tenant(&req).ok_or_else(MgmtError::invalid_token)?;
    store::run_due_jobs(&tenant, Instant::now());
    match store::jobs(&tenant).errors(&id) {
        None => Err(MgmtError::job_errors_not_found()),
        Some(JobErrors::None) => Ok(no_content()),
        Some(JobErrors::Users(users)) => Ok(json_response(StatusCode::OK, &users)),
        Some(JobErrors::JobFailed(job)) => Ok(json_response(StatusCode::OK, &job)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_ids_follow_auth0s_pattern() {
        assert!(is_connection_id("con_ftSSLHb0O7rcUGmF"));
        assert!(!is_connection_id("con_ftSSLHb0O7rcUGm"));
        assert!(!is_connection_id("con_ftSSLHb0O7rcUGmF1"));
        assert!(!is_connection_id("con_ftSSLHb0O7rc-GmF"));
        assert!(!is_connection_id("cxn_ftSSLHb0O7rcUGmF"));
    }

    #[test]
    fn a_file_that_is_not_an_array_fails_its_job() {
        assert_eq!(parse_users(b"[]"), Ok(vec![]));
        assert!(parse_users(b"{\"email\": \"a@b.c\"}").is_err());
        assert!(parse_users(b"[{").is_err());
    }
}
