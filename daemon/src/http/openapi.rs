//! The parts of the OpenAPI document that several routes share: the document itself, the
//! credentials a session route takes (security schemes), and the headers and cookie that pick a
//! client (SPEC §4). Each route's own parameters, body and statuses sit on its handler.
//!
//! schemathesis checks the document against the daemon in CI (`tests/schemathesis/run.sh`), so a
//! status, parameter or body the daemon serves and the document omits fails the build.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::error::ErrorBody;

/// The security scheme of `Authorization: Bearer <access token>` (session routes).
pub const BEARER: &str = "bearer";
/// The security scheme of the `sid` session cookie (session routes).
pub const SID: &str = "sid";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "auth0-client",
        description = "Fronts an Auth0 tenant: logins, server-side sessions, /userinfo, guarded user management.\n\n\
            Every answer that is not 2xx or 3xx carries the JSON `ErrorBody`. A method a route does not \
            have is 405 with `Allow`; `HEAD` answers like `GET` without a body. Requests that the HTTP \
            layer refuses before routing (no `Host`, a bad `Content-Length`, headers too large) may get \
            a bare status without a body."
    ),
    components(schemas(ErrorBody)),
    modifiers(&Credentials)
)]
pub struct ApiDoc;

/// Adds the session credentials as security schemes.
struct Credentials;

impl Modify for Credentials {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token a login through this daemon issued (expired ones are \
                         accepted by `/refreshtoken`)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            SID,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "sid",
                "The session cookie a `website` login or `/oauth/callback` set: an opaque session id",
            ))),
        );
    }
}

/// The headers that pick the client a request is served for (SPEC §4): with `apiKeys`
/// configured, a key (`secret` or `client-key`, or the `mia_client_key` cookie) is required and
/// picks its client; else `client-type` names one; else `defaultClient`. None or an unknown one
/// is 401.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct ClientHeaders {
    /// The client type to serve (a key of `clients`); ignored when an API key picks the client.
    #[param(rename = "client-type")]
    client_type: Option<String>,
    /// An API key of `apiKeys`, which picks its client.
    secret: Option<String>,
    /// An API key of `apiKeys` (the same as `secret`).
    #[param(rename = "client-key")]
    client_key: Option<String>,
}

/// The cookie form of the API key.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Cookie)]
#[allow(dead_code)]
pub struct ClientCookie {
    /// An API key of `apiKeys`, as a cookie (for browsers, which cannot send the headers).
    mia_client_key: Option<String>,
}
