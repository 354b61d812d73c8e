//! What the management route files (`users.rs`, `import.rs`) share: the `managementClient`
//! requirement and Auth0's answers passed through.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;

use super::ApiError;
use crate::auth0::management::ManagementAnswer;
use crate::config::{ManagementClientSettings, Settings};

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
