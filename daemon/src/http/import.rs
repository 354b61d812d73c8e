//! Bulk user imports (SPEC §6): `POST /users/import`, `GET /users/import/status/{jobID}`,
//! `GET /users/import/status/{jobID}/errors`, `GET /users/import/jobs`. The handlers parse and
//! refuse; the jobs machinery ([`crate::actors::jobs`]) submits, records and tracks.
//!
//! Every refusal comes before Auth0 is called, in this order: no `managementClient` or the
//! deprecated connection shape (501), a body that is neither `multipart/form-data` nor JSON (415),
//! over `server.importBodyLimitBytes` (413), `connection_id` given (400), an unknown or missing
//! connection (400), `users` missing or not a JSON array or empty (400), a boolean that is not one
//! (400), one user over Auth0's limit (413 naming its index).
//!
//! Choices where SPEC is silent: a `connection` part is accepted in the multipart form too (the
//! JSON form's field); `users` must hold at least one user; `limit` of the listing is 1..=1000.
//!
//! What an import costs: the body is read once into one buffer (its first MiB reserved from
//! `Content-Length`, then grown as bytes arrive, which glibc does in place with `mremap`: a caller
//! that announces 20 MB and stalls holds 1 MiB, not 20), the users are parsed once into slices of it (`RawValue`: each user's bytes as
//! they came, no `Value` tree, no re-serialising), and the buffer is dropped when the submit has
//! written the parts. The JSON views of the job records (the batch object, a forgotten job, a
//! listing item, a batch's errors) are built here.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, get, post, web};
use futures_util::StreamExt as _;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use utoipa_actix_web::service_config::ServiceConfig;

use super::ApiError;
use super::management::{Management, passthrough, require_management};
use crate::actors::jobs::{
    Answer, BatchDetail, ImportOptions, JobsHandle, Part, Submitted, format_time, status_name,
};
use crate::config::{ManagementClientSettings, Settings};
use crate::echo::quoted;
use crate::store::{JobCursor, JobKind, JobRecord, Timestamp};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(import)
        .service(list_jobs)
        .service(job_status)
        .service(job_errors);
}

/// Imports need `supportedConnectionsMap` (SPEC §6): 501 naming what is missing otherwise.
fn import_client(settings: &Settings) -> Result<&ManagementClientSettings, ApiError> {
    let client = require_management(settings)?;
    if !client.supports_import() {
        return Err(ApiError::NotImplemented(
            "bulk imports need `managementClient.supportedConnectionsMap` (with \
             `defaultManagementConnectionName`); the deprecated `supportedConnections` shape \
             has no connection ids"
                .into(),
        ));
    }
    Ok(client)
}

/// The longest text part of the multipart form read (`external_id`, `connection`, booleans).
const MAX_TEXT_PART: usize = 4096;

/// Where the users are in a request body.
#[derive(Debug)]
enum UsersAt {
    /// The whole buffer (the multipart `users` file).
    Whole,
    /// This range of the buffer (the JSON form's `users` member).
    Range(std::ops::Range<usize>),
}

/// An import request as read, before its rules are checked.
#[derive(Debug, Default)]
struct ImportForm {
    /// The bytes the users are in (the multipart file, or the whole JSON body), and where.
    body: Vec<u8>,
    users: Option<UsersAt>,
    connection: Option<String>,
    connection_id: bool,
    upsert: Option<bool>,
    external_id: Option<String>,
    send_completion_email: Option<bool>,
}

fn too_large(limit: usize) -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "the import body is larger than `server.importBodyLimitBytes` ({limit} bytes)"
    ))
}

fn body_error(err: &actix_web::error::PayloadError) -> ApiError {
    super::extract::payload::payload_error(err)
}

/// A boolean of the multipart form: `true` or `false`, as Auth0 takes them.
fn form_bool(name: &str, text: &str) -> Result<bool, ApiError> {
    match text.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(ApiError::BadRequest(format!(
            "`{name}` must be true or false, not {}",
            quoted(other)
        ))),
    }
}

/// The users, parsed once: each one's bytes as they came.
fn parse_users(bytes: &[u8]) -> Result<Vec<&RawValue>, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        // A type error is met before a syntax error further on: which it is costs a second
        // look, on this path only.
        if e.classify() == serde_json::error::Category::Data
            && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
        {
            ApiError::BadRequest("`users` must be a JSON array of users".into())
        } else {
            ApiError::BadRequest(format!(
                "`users` is not JSON (line {}, column {}): it must be a JSON array of users",
                e.line(),
                e.column()
            ))
        }
    })
}

/// At most this much of a body is reserved before its bytes arrive.
const RESERVED_AHEAD: usize = 1024 * 1024;

/// A buffer for a body of `Content-Length` bytes (within `limit`), of which at most
/// [`RESERVED_AHEAD`] is reserved before the bytes come: what a stalled caller holds is bounded by
/// what it sent.
fn body_buffer(req: &HttpRequest, limit: usize) -> Vec<u8> {
    let length = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    Vec::with_capacity(length.min(limit).min(RESERVED_AHEAD))
}

async fn read_multipart(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<ImportForm, ApiError> {
    let mut multipart = actix_multipart::Multipart::new(req.headers(), payload);
    let mut form = ImportForm::default();
    let mut total = 0usize;
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(|e| multipart_error(&e))?;
        let name = field.name().unwrap_or_default().to_owned();
        let part_limit = if name == "users" {
            limit
        } else {
            MAX_TEXT_PART
        };
        let mut bytes = if name == "users" {
            body_buffer(req, limit)
        } else {
            Vec::new()
        };
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| multipart_error(&e))?;
            total += chunk.len();
            if total > limit {
                return Err(too_large(limit));
            }
            if bytes.len() + chunk.len() > part_limit {
                return Err(ApiError::PayloadTooLarge(format!(
                    "the multipart part {} is longer than {MAX_TEXT_PART} bytes",
                    quoted(&name)
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        let text = || {
            String::from_utf8(bytes.clone()).map_err(|_| {
                ApiError::BadRequest(format!("the multipart part `{name}` is not UTF-8"))
            })
        };
        match name.as_str() {
            "users" => {
                form.body = bytes;
                form.users = Some(UsersAt::Whole);
            }
            "connection" => form.connection = Some(text()?),
            "connection_id" => form.connection_id = true,
            "upsert" => form.upsert = Some(form_bool("upsert", &text()?)?),
            "external_id" => form.external_id = Some(text()?),
            "send_completion_email" => {
                form.send_completion_email = Some(form_bool("send_completion_email", &text()?)?);
            }
            // Unknown parts are ignored, as unknown parameters are everywhere (SPEC §4).
            _ => {}
        }
    }
    Ok(form)
}

fn multipart_error(err: &actix_multipart::MultipartError) -> ApiError {
    use actix_multipart::MultipartError;
    match err {
        MultipartError::Payload(payload) => body_error(payload),
        other => ApiError::BadRequest(format!(
            "malformed multipart body: {}",
            crate::echo::Clipped(
                &other.to_string(),
                super::extract::payload::MAX_DETAIL_CHARS
            )
        )),
    }
}

async fn read_json(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<ImportForm, ApiError> {
    let mut bytes = body_buffer(req, limit);
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| body_error(&e))?;
        if bytes.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        bytes.extend_from_slice(&chunk);
    }
    let malformed = |e: serde_json::Error| {
        ApiError::BadRequest(format!(
            "malformed JSON body (line {}, column {})",
            e.line(),
            e.column()
        ))
    };
    // Members as they came: the users are read in place later, the small ones here.
    let raw: std::collections::BTreeMap<String, &RawValue> = match serde_json::from_slice(&bytes) {
        Ok(members) => members,
        Err(e)
            if e.classify() == serde_json::error::Category::Data
                && serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok() =>
        {
            return Err(ApiError::BadRequest(
                "the JSON body must be an object: {\"users\": [...], \"connection\": ...}".into(),
            ));
        }
        Err(e) => return Err(malformed(e)),
    };
    let value = |name: &str| -> Result<Value, ApiError> {
        raw.get(name)
            .map_or(Ok(Value::Null), |v| serde_json::from_str(v.get()))
            .map_err(malformed)
    };
    let string = |name: &str| match value(name)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        _ => Err(ApiError::BadRequest(format!("`{name}` must be a string"))),
    };
    let boolean = |name: &str| match value(name)? {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(b)),
        _ => Err(ApiError::BadRequest(format!(
            "`{name}` must be true or false"
        ))),
    };
    let users = raw.get("users").map(|users| {
        // A slice of `bytes`: where it starts is its address's offset in the buffer.
        let start = users.get().as_ptr() as usize - bytes.as_ptr() as usize;
        UsersAt::Range(start..start + users.get().len())
    });
    let form = ImportForm {
        connection_id: raw.contains_key("connection_id"),
        connection: string("connection")?,
        upsert: boolean("upsert")?,
        external_id: string("external_id")?,
        send_completion_email: boolean("send_completion_email")?,
        users,
        body: Vec::new(),
    };
    drop(raw);
    Ok(ImportForm {
        body: bytes,
        ..form
    })
}

/// Checks the rules of SPEC §6 and resolves the connection; the users are then parsed (once)
/// from `form.body`.
fn validate(
    form: ImportForm,
    client: &ManagementClientSettings,
) -> Result<(Vec<u8>, std::ops::Range<usize>, ImportOptions), ApiError> {
    if form.connection_id {
        return Err(ApiError::BadRequest(
            "`connection_id` is not accepted: name the connection with `connection`, a key of \
             `managementClient.supportedConnectionsMap`"
                .into(),
        ));
    }
    let connection = match form.connection.filter(|c| !c.is_empty()) {
        Some(name) => name,
        None => client
            .default_connection()
            .map(str::to_owned)
            .ok_or_else(|| {
                ApiError::BadRequest(
                "no `connection` given and no `managementClient.defaultManagementConnectionName` \
                 configured"
                    .into(),
            )
            })?,
    };
    let connection_id = client.connection_id(&connection).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "connection {} is not in `managementClient.supportedConnectionsMap`",
            quoted(&connection)
        ))
    })?;
    let users = match form.users {
        None => return Err(ApiError::BadRequest("`users` is required".into())),
        Some(UsersAt::Whole) => 0..form.body.len(),
        Some(UsersAt::Range(range)) => range,
    };
    let options = ImportOptions {
        connection_id: connection_id.to_owned(),
        connection,
        upsert: form.upsert,
        external_id: form.external_id.filter(|e| !e.is_empty()),
        send_completion_email: form.send_completion_email,
    };
    Ok((form.body, users, options))
}

fn answer(answer: Answer) -> HttpResponse {
    match answer {
        Answer::Auth0(answer) => passthrough(&answer),
        Answer::Record(record) => HttpResponse::Ok().json(record_or_batch_view(&record)),
        Answer::BatchErrors(parts) => HttpResponse::Ok().json(batch_errors_view(&parts)),
        Answer::Errors(errors) => HttpResponse::Ok().json(errors),
        Answer::NoContent => HttpResponse::NoContent().finish(),
    }
}

/// The batch object of SPEC §6.
fn batch_view(record: &JobRecord, detail: &BatchDetail) -> Value {
    let mut view = json!({
        "id": record.id,
        "type": "users_import_batch",
        "status": detail.status(),
        "connection": record.connection,
        "created_at": format_time(record.created_at),
        "jobs": detail.parts.iter().map(|p| {
            let mut part = json!({"part": p.part, "status": p.status, "id": p.id, "users": p.count});
            if let Some(summary) = &p.summary {
                part["summary"] = summary.clone();
            }
            part
        }).collect::<Vec<_>>(),
    });
    if let Some(summary) = detail.summary() {
        view["summary"] = summary;
    }
    view
}

/// A job record as Auth0 shapes a job (the status route once Auth0 forgot it).
fn record_view(record: &JobRecord) -> Value {
    let mut view = json!({
        "type": "users_import",
        "status": status_name(record.status),
        "connection": record.connection,
        "created_at": format_time(record.created_at),
        "id": record.id,
    });
    if let Some(id) = record.detail.get("connection_id") {
        view["connection_id"] = id.clone();
    }
    if let Some(summary) = &record.summary {
        view["summary"] = summary.clone();
    }
    view
}

/// A batch as the batch object, any other record as Auth0 shapes a job.
fn record_or_batch_view(record: &JobRecord) -> Value {
    match BatchDetail::of(record) {
        Some(detail) if record.kind == JobKind::Batch => batch_view(record, &detail),
        _ => record_view(record),
    }
}

/// A batch's errors: one `{part, id, errors}` per finished part.
fn batch_errors_view(parts: &[Part]) -> Value {
    parts
        .iter()
        .filter(|p| p.status.is_final())
        .map(|p| {
            let errors = match &p.errors {
                Some(errors) => errors.clone(),
                None => match &p.status_details {
                    Some(details) => json!({"status": "failed", "status_details": details}),
                    None => json!([]),
                },
            };
            json!({"part": p.part, "id": p.id, "errors": errors})
        })
        .collect()
}

/// One entry of `GET /users/import/jobs`.
fn list_item(record: &JobRecord) -> Value {
    let (kind, status) = match record.kind {
        JobKind::Job => ("users_import", status_name(record.status)),
        JobKind::Batch => (
            "users_import_batch",
            BatchDetail::of(record).map_or(status_name(record.status), |d| d.status()),
        ),
    };
    let mut item = json!({
        "id": record.id,
        "type": kind,
        "status": status,
        "connection": record.connection,
        "created_at": format_time(record.created_at),
    });
    if let Some(summary) = &record.summary {
        item["summary"] = summary.clone();
    }
    item
}

/// The JSON form of `POST /users/import`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct ImportJson {
    /// The users, as in an Auth0 users file.
    #[schema(min_items = 1)]
    users: Vec<Map<String, Value>>,
    /// A key of `managementClient.supportedConnectionsMap`; default
    /// `defaultManagementConnectionName`.
    connection: Option<String>,
    upsert: Option<bool>,
    external_id: Option<String>,
    send_completion_email: Option<bool>,
}

/// The multipart form of `POST /users/import`, as Auth0's `POST /api/v2/jobs/users-imports`
/// takes it (`connection` instead of `connection_id`).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct ImportMultipart {
    /// The users file: a JSON array of users.
    #[schema(value_type = String, format = Binary)]
    users: Vec<u8>,
    connection: Option<String>,
    /// `true` or `false`.
    upsert: Option<String>,
    external_id: Option<String>,
    /// `true` or `false`.
    send_completion_email: Option<String>,
}

/// Sends users to Auth0's bulk import. Up to 512000 bytes (the compact JSON array): one Auth0 job,
/// Auth0's 202 answered. Larger: split at user boundaries into a batch of parts sent in the
/// background within Auth0's 2-active-jobs limit; 202 with the batch object.
#[utoipa::path(
    tag = "management",
    params(super::openapi::ClientParams),
    request_body(content(
        (ImportJson = "application/json"),
        (ImportMultipart = "multipart/form-data"),
    )),
    responses(
        (status = 202, description = "Auth0's job, or the batch object", body = Object),
        super::openapi::Auth0Failures,
        super::openapi::StoreUnavailable,
        super::openapi::ImportGuard,
        super::openapi::BodyLimits,
        (status = 400, body = super::error::ErrorBody, description = "`connection_id` given, an unknown or missing connection, `users` missing, empty or not a JSON array, a malformed body or boolean; or Auth0's 400, passed through"),
        (status = 404, body = super::error::ErrorBody, description = "Auth0's 404, passed through"),
        (status = 413, body = super::error::ErrorBody, description = "the body is over `server.importBodyLimitBytes`, or one user is over Auth0's 512000 bytes (named by index)"),
        (status = 415, body = super::error::ErrorBody, description = "neither multipart/form-data nor JSON"),
        (status = 429, body = super::error::ErrorBody, description = "Auth0's rate limit or its 2-active-jobs limit", headers(("Retry-After" = u64, description = "seconds"))),
    )
)]
#[post("/users/import")]
async fn import(
    management: Management,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let client = import_client(&management.settings)?;
    let limit = management.settings.server.import_body_limit_bytes;
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let form = if content_type.starts_with("multipart/form-data") {
        read_multipart(&req, payload, limit).await?
    } else if content_type.starts_with("application/json") {
        read_json(&req, payload, limit).await?
    } else {
        return Err(ApiError::UnsupportedMediaType(
            "expected multipart/form-data (a `users` file, like Auth0's users-imports) or \
             application/json ({\"users\": [...]})"
                .into(),
        ));
    };
    let (body, range, options) = validate(form, client)?;
    let users = parse_users(&body[range])?;
    match management.actors.jobs.submit(&users, options).await? {
        Submitted::Job(answer) => Ok(passthrough(&answer)),
        Submitted::Batch(record) => {
            Ok(HttpResponse::Accepted().json(record_or_batch_view(&record)))
        }
    }
}

/// A job's status: Auth0's job body, or the stored record once Auth0 forgot the job (`expired` if
/// it never finished). A `batch_…` id answers the batch object.
#[utoipa::path(
    tag = "management",
    params(JobPath, super::openapi::ClientParams),
    responses(
        (status = 200, description = "Auth0's job, the stored record, or the batch object", body = Object),
        super::openapi::JobLookup,
    )
)]
#[get("/users/import/status/{jobID}")]
async fn job_status(job: JobRoute) -> Result<HttpResponse, ApiError> {
    Ok(answer(job.jobs().status(&job.id).await?))
}

/// A job's errors: Auth0's (200 array, 200 job object when the whole job failed, 204 none), the
/// stored ones once Auth0 forgot the job; for a batch, one `{part, id, errors}` per finished part.
#[utoipa::path(
    tag = "management",
    params(JobPath, super::openapi::ClientParams),
    responses(
        (status = 200, description = "the errors", body = Object),
        (status = 204, description = "the job has no errors (or has not finished)"),
        super::openapi::JobLookup,
    )
)]
#[get("/users/import/status/{jobID}/errors")]
async fn job_errors(job: JobRoute) -> Result<HttpResponse, ApiError> {
    Ok(answer(job.jobs().errors(&job.id).await?))
}

/// The `{jobID}` of the job routes.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
struct JobPath {
    /// Auth0's `job_…` id, or a `batch_…` id.
    #[serde(rename = "jobID")]
    job_id: String,
}

/// Extractor of the job routes (`/users/import/status/{jobID}…`): the management guard passed
/// ([`Management`]), imports configured ([`import_client`]), then the id checked ([`job_id`]).
struct JobRoute {
    id: String,
    management: Management,
}

impl JobRoute {
    fn jobs(&self) -> &JobsHandle {
        &self.management.actors.jobs
    }
}

impl FromRequest for JobRoute {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let management = Management::of(req, payload);
        ready(management.and_then(|management| {
            let path = web::Path::<JobPath>::from_request(req, payload).into_inner()?;
            import_client(&management.settings)?;
            Ok(Self {
                id: job_id(&path.job_id)?.to_owned(),
                management,
            })
        }))
    }
}

/// A job id must be a path segment Auth0 can be asked about.
fn job_id(id: &str) -> Result<&str, ApiError> {
    if crate::auth0::management::valid_segment(id) && id.len() <= 256 {
        Ok(id)
    } else {
        Err(ApiError::BadRequest(format!(
            "{} is not a job id",
            quoted(&crate::echo::Clipped(id, 64).to_string())
        )))
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// How many (1 to 1000, default 50; empty is the default).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// The last item's `created_at` and `id` joined by `,` (a bare `created_at` is accepted;
    /// empty is none).
    before: Option<String>,
}

/// The most items one page of the listing holds.
const MAX_LIMIT: usize = 1000;

/// Parses `before`: `<created_at>[,<id>]`, `created_at` as RFC 3339.
fn parse_cursor(before: &str) -> Result<JobCursor, ApiError> {
    let (at, id) = match before.split_once(',') {
        Some((at, id)) => (at, Some(id.to_owned())),
        None => (before, None),
    };
    let at = time::OffsetDateTime::parse(at.trim(), &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            ApiError::BadRequest(format!(
                "`before` must be an item's `created_at` (RFC 3339) and `id` joined by `,`, not {}",
                quoted(&crate::echo::Clipped(before, 64).to_string())
            ))
        })?;
    Ok(JobCursor {
        created_at: Timestamp::from(at),
        id: id.filter(|id| !id.is_empty()),
    })
}

/// The jobs and batches submitted through this store (every daemon sharing it), newest first,
/// each with its last known status.
#[utoipa::path(
    tag = "management",
    params(ListQuery, super::openapi::ClientParams),
    responses(
        (status = 200, description = "`[{id, type, status, connection, created_at, summary?}]`", body = Vec<Object>),
        super::openapi::StoreUnavailable,
        super::openapi::ImportGuard,
        (status = 400, body = super::error::ErrorBody, description = "a bad `limit` or `before`"),
    )
)]
#[get("/users/import/jobs")]
async fn list_jobs(
    management: Management,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    import_client(&management.settings)?;
    let limit = match query.limit.as_deref().filter(|l| !l.is_empty()) {
        None => 50,
        Some(text) => text
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::BadRequest(format!("`limit` must be an integer from 1 to {MAX_LIMIT}"))
            })?,
    };
    let before = query
        .before
        .as_deref()
        .filter(|b| !b.is_empty())
        .map(parse_cursor)
        .transpose()?;
    let records = management.actors.jobs.list(limit, before.as_ref()).await?;
    Ok(HttpResponse::Ok().json(records.iter().map(list_item).collect::<Vec<_>>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_parse_with_and_without_an_id() {
        let cursor = parse_cursor("2023-01-25T17:48:16.543Z,job_abc").expect("parses");
        assert_eq!(cursor.created_at, Timestamp::from_millis(1_674_668_896_543));
        assert_eq!(cursor.id.as_deref(), Some("job_abc"));
        assert_eq!(
            parse_cursor("2023-01-25T17:48:16.543Z").expect("parses").id,
            None
        );
        assert!(parse_cursor("yesterday").is_err());
        assert!(parse_cursor("").is_err());
    }

    #[test]
    fn multipart_booleans_are_true_or_false() {
        assert!(form_bool("upsert", "true").expect("bool"));
        assert!(!form_bool("upsert", " false ").expect("bool"));
        assert!(form_bool("upsert", "yes").is_err());
    }
}
