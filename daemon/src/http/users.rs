//! The management routes over users (SPEC §6): `GET /users/active` answers from the store; the
//! rest forward to Auth0's Management API through [`ManagementService`] (token cache, rate-limit
//! pause, retries), with the query translation of [`crate::auth0::user_query`].
//!
//! Route precedence: `/users/me` (session routes), `/users/active` and `/users/import…` are
//! registered before `/users/{userID}`, and a `{userID}` that is one of those words is not taken
//! as a user id (405 or 404, never a call to Auth0), since actix tries the next route when a
//! method does not match.
//!
//! Choices where SPEC is silent: Auth0's 2xx bodies pass through (`_id` added on reads); the
//! sessions of a deleted, blocked or re-passworded user end after Auth0 accepted the change (a
//! refused change logs nobody out), and the refresh tokens of a blocked or re-passworded user's
//! sessions are revoked at Auth0, best effort; `POST /change-password` answers `{"message"}`.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::{FromRequest, HttpRequest, HttpResponse, delete, get, patch, post, web};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa_actix_web::service_config::ServiceConfig;

use super::ApiError;
use super::management::{Management, passthrough, require_management, status};
use crate::auth0::management::{
    ManagementAnswer, ManagementRequest, encode_segment, valid_segment,
};
use crate::auth0::user_query::{self, ACL_ROWS};
use crate::echo::quoted;

pub fn configure(cfg: &mut ServiceConfig) {
    // Fixed paths first: `/users/{userID}` would take them otherwise.
    cfg.service(active_users)
        .service(list_users)
        .service(create_user)
        .service(change_password)
        .service(end_user_sessions)
        .service(get_user)
        .service(patch_user)
        .service(delete_user);
}

/// The `{userID}` of the `/users/{userID}` routes.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
struct UserPath {
    /// The Auth0 `user_id`, the user's `sub` (`auth0|…`), percent-encoded or not.
    #[serde(rename = "userID")]
    user_id: String,
}

/// Words of fixed `/users/<word>` routes, never user ids.
const RESERVED_IDS: [&str; 3] = ["active", "me", "import"];

/// The `{userID}` of the path, checked: not a word of a fixed route, not `.`/`..`, not empty.
fn user_id(req: &HttpRequest, id: &str) -> Result<String, ApiError> {
    if RESERVED_IDS.contains(&id) {
        if req.method() == Method::GET && id == "me" {
            return Err(ApiError::NotFound(format!(
                "{} is not served on this listener",
                quoted(req.path())
            )));
        }
        let allow = if id == "import" { "POST" } else { "GET, HEAD" };
        return Err(ApiError::MethodNotAllowed {
            message: format!(
                "{} is not allowed on {}: use {allow}",
                crate::echo::Clipped(req.method().as_str(), 16),
                quoted(req.path())
            ),
            allow: actix_web::http::header::HeaderValue::from_static(allow),
        });
    }
    if !valid_segment(id) {
        return Err(ApiError::BadRequest(
            "invalid `userID`: it may not be empty, `.` or `..`".into(),
        ));
    }
    Ok(id.to_owned())
}

/// The path of a user at the Management API (`users/auth0%7C1`).
fn user_path(id: &str) -> String {
    format!("users/{}", encode_segment(id))
}

/// A JSON answer of Auth0 with `_id` = `user_id` added to each user.
fn with_ids(answer: &ManagementAnswer) -> Result<HttpResponse, ApiError> {
    let mut body = answer.json()?;
    let add = |user: &mut Value| {
        if let Some(fields) = user.as_object_mut()
            && let Some(id) = fields.get("user_id").cloned()
        {
            fields.insert("_id".to_owned(), id);
        }
    };
    match &mut body {
        Value::Array(users) => users.iter_mut().for_each(add),
        user => add(user),
    }
    Ok(HttpResponse::build(status(answer)).json(body))
}

/// Extractor of the `/users/{userID}` routes: the management guard passed ([`Management`]),
/// then the id checked ([`user_id`]).
struct UserRoute {
    id: String,
    management: Management,
}

impl UserRoute {
    /// The user's path at the Management API ([`user_path`]).
    fn path(&self) -> String {
        user_path(&self.id)
    }

    /// Ends every session of the user here, revoking their refresh tokens at Auth0 when `revoke`.
    async fn end_sessions(&self, revoke: bool) -> Result<usize, ApiError> {
        let ended = self.management.actors.end_user(&self.id, revoke).await?;
        tracing::info!(sessions = ended.len(), "ended the sessions of a user");
        Ok(ended.len())
    }
}

impl FromRequest for UserRoute {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let path = web::Path::<UserPath>::from_request(req, payload).into_inner();
        ready(path.and_then(|path| {
            let management = Management::of(req, payload)?;
            Ok(Self {
                id: user_id(req, &path.user_id)?,
                management,
            })
        }))
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActiveUser {
    /// The user's `sub`.
    user_id: String,
}

/// One entry per distinct user with a live session, all clients.
#[utoipa::path(
    tag = "management",
    params(super::openapi::ClientParams),
    responses(
        (status = 200, body = Vec<ActiveUser>),
        super::openapi::StoreUnavailable,
        super::openapi::ManagementGuard,
    )
)]
#[get("/users/active")]
async fn active_users(management: Management) -> Result<HttpResponse, ApiError> {
    require_management(&management.settings)?;
    let users: Vec<ActiveUser> = management
        .actors
        .sessions
        .active_subs()
        .await?
        .into_iter()
        .map(|user_id| ActiveUser { user_id })
        .collect();
    Ok(HttpResponse::Ok().json(users))
}

/// The query parameters of `GET /users` (documentation only: the handler reads the raw query,
/// since `connection` and `app_metadata.<path>` repeat).
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ListUsersQuery {
    /// Page size (Auth0 `per_page`), 1 to 100.
    #[param(minimum = 1, maximum = 100, default = 25)]
    _l: Option<u32>,
    /// Users to skip (Auth0 `page` = `_sk / _l`), 0 to 2147483647.
    #[param(minimum = 0, maximum = 2147483647, default = 0)]
    _sk: Option<u32>,
    /// Exact e-mail, or a prefix ending in `*`.
    email: Option<String>,
    /// Exact nickname, or a prefix ending in `*`.
    nickname: Option<String>,
    /// Exact username, or a prefix ending in `*`.
    username: Option<String>,
    /// A connection (repeatable); each must be supported. Default: every supported connection.
    connection: Option<Vec<String>>,
}

/// Auth0 users matching the filters (SPEC §6), each with `_id` = `user_id`. Besides the listed
/// parameters, `app_metadata.<path>=<value>` (repeatable) filters on app metadata, and the
/// `acl_rows` header (a Mongo-style JSON filter with `$and $or $in $eq $ne $exists`) restricts
/// the rows.
#[utoipa::path(
    tag = "management",
    params(
        ListUsersQuery,
        ("acl_rows" = Option<String>, Header, description = "a Mongo-style JSON row filter"),
        super::openapi::ClientParams
    ),
    responses(
        (status = 200, description = "Auth0's users, each with `_id`", body = Vec<Object>),
        super::openapi::Auth0Failures,
        super::openapi::ManagementGuard,
        (status = 400, body = super::error::ErrorBody, description = "a bad parameter or `acl_rows`, naming it; or Auth0's 400 passed through"),
    )
)]
#[get("/users")]
async fn list_users(req: HttpRequest, management: Management) -> Result<HttpResponse, ApiError> {
    let service = management.service()?;
    let params: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string())
        .map_err(|_| ApiError::BadRequest("the query string is not valid".into()))?;
    // An empty header is no filter, as an empty value means "unset" everywhere in SPEC.
    let acl = match req.headers().get(ACL_ROWS).filter(|v| !v.is_empty()) {
        None => None,
        Some(value) => Some(value.to_str().map_err(|_| {
            ApiError::BadRequest("invalid `acl_rows`: the header is not visible ASCII".into())
        })?),
    };
    let supported = management
        .settings
        .management_client
        .as_ref()
        .map(|m| m.supported_connection_names())
        .unwrap_or_default();
    let search = user_query::translate(&params, acl, &supported)?;
    let request =
        ManagementRequest::new(reqwest::Method::GET, "users").with_query(search.to_query());
    with_ids(&service.send(request).await?)
}

/// One Auth0 user, with `_id` = `user_id`.
#[utoipa::path(
    tag = "management",
    params(UserPath, super::openapi::ClientParams),
    responses(
        (status = 200, description = "Auth0's user, with `_id`", body = Object),
        super::openapi::Auth0Failures,
        super::openapi::UserGuard,
        (status = 404, body = super::error::ErrorBody, description = "Auth0's 404 passed through"),
    )
)]
#[get("/users/{userID}")]
async fn get_user(user: UserRoute) -> Result<HttpResponse, ApiError> {
    let request = ManagementRequest::new(reqwest::Method::GET, user.path());
    with_ids(&user.management.service()?.send(request).await?)
}

/// Creates a user: Auth0's create body; `connection` defaults to
/// `defaultManagementConnectionName`, else `defaultCreateUserConnection`, and must be supported.
/// Auth0's 201 and body pass through.
#[utoipa::path(
    tag = "management",
    params(super::openapi::ClientParams),
    request_body(content = Object, description = "Auth0's `POST /api/v2/users` body; `connection` optional", content_type = "application/json"),
    responses(
        (status = 201, description = "Auth0's new user", body = Object),
        super::openapi::Auth0Failures,
        super::openapi::ManagementGuard,
        (status = 400, body = super::error::ErrorBody, description = "no connection and no default, an unsupported connection, or Auth0's 400 passed through"),
        (status = 409, body = super::error::ErrorBody, description = "the user exists (Auth0's 409 passed through)"),
        super::openapi::JsonBody,
    )
)]
#[post("/users")]
async fn create_user(
    management: Management,
    body: web::Json<Map<String, Value>>,
) -> Result<HttpResponse, ApiError> {
    let service = management.service()?;
    let mut body = body.into_inner();
    let config = management
        .settings
        .management_client
        .as_ref()
        .ok_or_else(|| ApiError::NotImplemented("no `managementClient`".into()))?;
    let connection = match body.get("connection") {
        None | Some(Value::Null) => {
            config
                .default_connection()
                .map(str::to_owned)
                .ok_or_else(|| {
                    ApiError::BadRequest(
                        "`connection` is required: no `defaultManagementConnectionName` (or \
                 `defaultCreateUserConnection`) is configured"
                            .into(),
                    )
                })?
        }
        Some(Value::String(name)) => {
            let supported = config.supported_connection_names();
            if !supported.is_empty() && !supported.contains(&name.as_str()) {
                return Err(ApiError::BadRequest(format!(
                    "`connection` {} is not a supported connection",
                    quoted(name)
                )));
            }
            name.clone()
        }
        Some(_) => return Err(ApiError::BadRequest("`connection` must be a string".into())),
    };
    body.insert("connection".to_owned(), Value::String(connection));
    let request =
        ManagementRequest::new(reqwest::Method::POST, "users").with_json(Value::Object(body));
    Ok(passthrough(&service.send(request).await?))
}

/// Updates a user (Auth0's patch body, passed through). Setting `blocked: true` or a `password`
/// also ends every session of the user.
#[utoipa::path(
    tag = "management",
    params(UserPath, super::openapi::ClientParams),
    request_body(content = Object, description = "Auth0's `PATCH /api/v2/users/{id}` body", content_type = "application/json"),
    responses(
        (status = 200, description = "Auth0's updated user", body = Object),
        super::openapi::Auth0Failures,
        super::openapi::UserGuard,
        (status = 404, body = super::error::ErrorBody),
        (status = 405, body = super::error::ErrorBody, description = "a fixed route's word (`active`, `me`, `import`) as the id"),
        super::openapi::JsonBody,
        (status = 503, body = super::error::ErrorBody, description = "Auth0 accepted the change but the sessions could not be ended (store unavailable): retry"),
    )
)]
#[patch("/users/{userID}")]
async fn patch_user(
    req: HttpRequest,
    path: web::Path<UserPath>,
    management: Management,
    body: web::Json<Map<String, Value>>,
) -> Result<HttpResponse, ApiError> {
    // Not a `UserRoute`: the id is checked after the body is read, as the extractors come.
    let user = UserRoute {
        id: user_id(&req, &path.user_id)?,
        management,
    };
    let service = user.management.service()?;
    let body = body.into_inner();
    let ends_sessions = body.get("blocked") == Some(&Value::Bool(true))
        || body.get("password").is_some_and(|p| !p.is_null());
    let request =
        ManagementRequest::new(reqwest::Method::PATCH, user.path()).with_json(Value::Object(body));
    let answer = service.send(request).await?;
    if ends_sessions {
        user.end_sessions(true).await?;
    }
    Ok(passthrough(&answer))
}

/// Deletes a user at Auth0 and ends every session of theirs here; Auth0's 204 passes through.
#[utoipa::path(
    tag = "management",
    params(UserPath, super::openapi::ClientParams),
    responses(
        (status = 204, description = "deleted (also when Auth0 had no such user)"),
        super::openapi::Auth0Failures,
        super::openapi::UserGuard,
        (status = 405, body = super::error::ErrorBody, description = "a fixed route's word (`active`, `me`, `import`) as the id"),
        (status = 503, body = super::error::ErrorBody, description = "the user is deleted but the sessions could not be ended (store unavailable): retry"),
    )
)]
#[delete("/users/{userID}")]
async fn delete_user(user: UserRoute) -> Result<HttpResponse, ApiError> {
    let request = ManagementRequest::new(reqwest::Method::DELETE, user.path());
    let answer = user.management.service()?.send(request).await?;
    user.end_sessions(false).await?;
    Ok(passthrough(&answer))
}

/// Ends every session of the user here (no Auth0 call).
#[utoipa::path(
    tag = "management",
    params(UserPath, super::openapi::ClientParams),
    responses(
        (status = 204, description = "every session of the user is ended (also when there was none)"),
        super::openapi::StoreUnavailable,
        super::openapi::UserGuard,
    )
)]
#[delete("/users/{userID}/sessions")]
async fn end_user_sessions(user: UserRoute) -> Result<HttpResponse, ApiError> {
    require_management(&user.management.settings)?;
    user.end_sessions(true).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The body of `POST /change-password`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct ChangePassword {
    /// The user's e-mail address.
    email: String,
    /// The database connection; default: the client's, as for the password grant.
    connection: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ChangePasswordAnswer {
    /// Auth0's message ("We've just sent you an email to reset your password.").
    message: String,
}

/// Asks Auth0 to e-mail the user a password-reset link (Auth0's
/// `POST /dbconnections/change_password` with the client's `clientId`).
#[utoipa::path(
    tag = "management",
    params(super::openapi::ClientParams),
    request_body(content = ChangePassword, content_type = "application/json"),
    responses(
        (status = 200, body = ChangePasswordAnswer),
        super::openapi::Auth0Failures,
        super::openapi::ManagementGuard,
        (status = 400, body = super::error::ErrorBody, description = "no e-mail, an unsupported or missing connection, or Auth0's 400 passed through"),
        super::openapi::JsonBody,
    )
)]
#[post("/change-password")]
async fn change_password(
    management: Management,
    body: web::Json<ChangePassword>,
) -> Result<HttpResponse, ApiError> {
    let service = management.service()?;
    let client = &management.client;
    let body = body.into_inner();
    if body.email.trim().is_empty() {
        return Err(ApiError::BadRequest("`email` may not be empty".into()));
    }
    let requested = body.connection.as_deref().filter(|c| !c.is_empty());
    let connection =
        crate::login::resolve_connection(&client.settings, requested)?.ok_or_else(|| {
            ApiError::BadRequest(
                "`connection` is required: the client has no `defaultConnection`".into(),
            )
        })?;
    let message = service
        .change_password(&client.settings, &body.email, &connection)
        .await?;
    Ok(HttpResponse::Ok().json(ChangePasswordAnswer { message }))
}
