//! The management routes over users (SPEC §6). `GET /users/active` answers from the store.

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa_actix_web::service_config::ServiceConfig;

use super::ApiError;
use super::extract::ManagementClient;
use crate::actors::Actors;
use crate::config::Settings;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(active_users);
}

/// Management routes need a `managementClient` (SPEC §6): 501 naming the key otherwise.
pub fn require_management(settings: &Settings) -> Result<(), ApiError> {
    match settings.management_client {
        Some(_) => Ok(()),
        None => Err(ApiError::NotImplemented(
            "the management routes need `managementClient` in the configuration".into(),
        )),
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
    get,
    path = "/users/active",
    tag = "management",
    params(super::openapi::ClientHeaders, super::openapi::ClientCookie),
    responses(
        (status = 200, body = Vec<ActiveUser>),
        (status = 401, body = super::error::ErrorBody, description = "no valid API key, when `apiKeys` are configured"),
        (status = 403, body = super::error::ErrorBody, description = "an API key not flagged `management`"),
        (status = 501, body = super::error::ErrorBody, description = "no `managementClient` configured"),
        (status = 503, body = super::error::ErrorBody, description = "the session store is unavailable"),
    )
)]
#[get("/users/active")]
async fn active_users(
    _client: ManagementClient,
    settings: web::Data<Settings>,
    actors: web::Data<Actors>,
) -> Result<HttpResponse, ApiError> {
    require_management(&settings)?;
    let users: Vec<ActiveUser> = actors
        .sessions
        .active_subs()
        .await?
        .into_iter()
        .map(|user_id| ActiveUser { user_id })
        .collect();
    Ok(HttpResponse::Ok().json(users))
}
