//! What the management route files (`users.rs`, `import.rs`) share: the [`Management`]
//! extractor, the `managementClient` requirement and Auth0's answers passed through.

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use std::future::{Ready, ready};

use super::ApiError;
use super::extract::ManagementClient;
use crate::actors::{Actors, ManagementService};
use crate::auth0::management::ManagementAnswer;
use crate::config::{ManagementClientSettings, Settings};

/// Extractor of the management routes: the management guard passed ([`ManagementClient`]), and
/// what the handlers serve with. The `managementClient` requirement (501) is the handler's to
/// check ([`Management::service`], [`require_management`]), after what it reads of the request.
pub struct Management {
    pub client: ManagementClient,
    pub settings: web::Data<Settings>,
    pub actors: web::Data<Actors>,
}

impl Management {
    /// The extractors it bundles, each ready at once, in the order the handlers took them.
    pub fn of(req: &HttpRequest, payload: &mut Payload) -> Result<Self, actix_web::Error> {
        Ok(Self {
            client: ManagementClient::from_request(req, payload).into_inner()?,
            settings: web::Data::from_request(req, payload).into_inner()?,
            actors: web::Data::from_request(req, payload).into_inner()?,
        })
    }

    /// The Management API, once [`require_management`] passed.
    pub fn service(&self) -> Result<&ManagementService, ApiError> {
        require_management(&self.settings)?;
        Ok(&self.actors.management)
    }
}

impl FromRequest for Management {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        ready(Self::of(req, payload))
    }
}

/// Management routes need a `managementClient` (SPEC §6): 501 naming the key otherwise.
pub fn require_management(settings: &Settings) -> Result<&ManagementClientSettings, ApiError> {
    settings.management_client.as_ref().ok_or_else(|| {
        ApiError::NotImplemented(
            "the management routes need `managementClient` in the configuration".into(),
        )
    })
}

/// Auth0's status as actix's.
pub fn status(answer: &ManagementAnswer) -> StatusCode {
    StatusCode::from_u16(answer.status.as_u16()).unwrap_or(StatusCode::OK)
}

/// Auth0's answer as it came: its status, its body with its `Content-Type` (JSON when it gave
/// none); no body for a 204 or an empty one.
pub fn passthrough(answer: &ManagementAnswer) -> HttpResponse {
    let mut response = HttpResponse::build(status(answer));
    if answer.body.is_empty() || answer.status.as_u16() == 204 {
        return response.finish();
    }
    response
        .content_type(answer.passthrough_content_type())
        .body(answer.body.clone())
}
