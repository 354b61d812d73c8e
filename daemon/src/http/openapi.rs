//! The parts of the OpenAPI document that several routes share: the document itself, the
//! credentials a session route takes (security schemes), the headers and cookie that pick a
//! client ([`ClientParams`], SPEC §4), the answers several routes give alike ([`Auth0Failures`],
//! [`StoreUnavailable`], [`ManagementGuard`], [`BodyLimits`]) and the alias routes ([`ALIASES`]).
//! Each route's own parameters, body and statuses sit on its handler.
//!
//! schemathesis checks the document against the daemon in CI (`tests/schemathesis/run.sh`), so a
//! status, parameter or body the daemon serves and the document omits fails the build.

use std::collections::BTreeMap;

use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{IntoParams, IntoResponses, Modify, OpenApi, PartialSchema as _};

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

/// The headers and the cookie that pick the client a request is served for (SPEC §4): with
/// `apiKeys` configured, a key (`secret` or `client-key`, or the `mia_client_key` cookie) is
/// required and picks its client; else `client-type` names one; else `defaultClient`. None or an
/// unknown one is 401. Every route that serves a client takes them.
pub struct ClientParams;

impl IntoParams for ClientParams {
    fn into_params(parameter_in_provider: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let mut params = ClientHeaders::into_params(&parameter_in_provider);
        params.extend(ClientCookie::into_params(parameter_in_provider));
        params
    }
}

/// The headers of [`ClientParams`].
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
struct ClientHeaders {
    /// The client type to serve (a key of `clients`); ignored when an API key picks the client.
    #[param(rename = "client-type")]
    client_type: Option<String>,
    /// An API key of `apiKeys`, which picks its client.
    secret: Option<String>,
    /// An API key of `apiKeys` (the same as `secret`).
    #[param(rename = "client-key")]
    client_key: Option<String>,
}

/// The cookie of [`ClientParams`]: the API key, for browsers.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Cookie)]
#[allow(dead_code)]
struct ClientCookie {
    /// An API key of `apiKeys`, as a cookie (for browsers, which cannot send the headers).
    mia_client_key: Option<String>,
}

/// An `ErrorBody` answer.
fn error(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build(),
    )
}

/// `response` with the `Retry-After` header (seconds).
fn retry_after(response: ResponseBuilder) -> ResponseBuilder {
    response.header(
        "Retry-After",
        HeaderBuilder::new()
            .schema(Some(u64::schema()))
            .description(Some("seconds to wait"))
            .build(),
    )
}

/// The 413 of a body over `server.bodyLimitBytes`.
fn too_large() -> ResponseBuilder {
    error("the body is larger than `server.bodyLimitBytes`")
}

fn answers<const N: usize>(
    list: [(&str, ResponseBuilder); N],
) -> BTreeMap<String, RefOr<Response>> {
    list.into_iter()
        .map(|(status, response)| (status.to_owned(), RefOr::T(response.build())))
        .collect()
}

/// The answers of `sets` as one set; a later set's answer of a status replaces an earlier one's.
fn merged<const N: usize>(
    sets: [BTreeMap<String, RefOr<Response>>; N],
) -> BTreeMap<String, RefOr<Response>> {
    sets.into_iter().flatten().collect()
}

/// Declares a response set: a unit struct whose [`IntoResponses`] are `$answers`.
macro_rules! response_set {
    ($(#[$doc:meta])* pub struct $name:ident; $answers:expr) => {
        $(#[$doc])*
        pub struct $name;

        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                $answers
            }
        }
    };
}

response_set! {
    /// Auth0 rate-limited the call a request made (429, with its `Retry-After`), failed (502) or
    /// did not answer within `server.auth0TimeoutMs` (504) (SPEC §4): the routes that call Auth0.
    pub struct Auth0Failures;
    answers([
        ("429", retry_after(error("Auth0 rate-limited the call"))),
        ("502", error("Auth0 failed")),
        ("504", error("Auth0 did not answer in time")),
    ])
}

response_set! {
    /// The session store cannot be reached (SPEC §7): every route that reads or writes it.
    pub struct StoreUnavailable;
    answers([("503", error("the session store is unavailable"))])
}

response_set! {
    /// The management guard (SPEC §6): the routes of user management and imports.
    pub struct ManagementGuard;
    answers([
        (
            "401",
            error("no valid API key, when `apiKeys` are configured"),
        ),
        (
            "403",
            error(
                "an API key not flagged `management`, a key in the `mia_client_key` cookie \
                 from a page that is not same-origin, or (without `apiKeys` and \
                 `server.managementBind`) a caller other than a local end user; for a change, \
                 also a cross-site browser request",
            ),
        ),
        ("501", error("no `managementClient` configured")),
    ])
}

response_set! {
    /// The management guard of the import routes: [`ManagementGuard`], with the 501 also for a
    /// `managementClient` without `supportedConnectionsMap`.
    pub struct ImportGuard;
    merged([
        ManagementGuard::responses(),
        answers([(
            "501",
            error(
                "no `managementClient`, or its deprecated shape without \
                 `supportedConnectionsMap`",
            ),
        )]),
    ])
}

response_set! {
    /// Every answer of a job lookup (`/users/import/status/{jobID}…`) but its success: the import
    /// guard, the store and Auth0 failing, a bad id or Auth0's 400 (400), an unknown job (404).
    pub struct JobLookup;
    merged([
        ImportGuard::responses(),
        Auth0Failures::responses(),
        StoreUnavailable::responses(),
        answers([
            ("400", error("not a job id, or Auth0's 400 passed through")),
            ("404", error("a job neither Auth0 nor this store knows")),
        ]),
    ])
}

response_set! {
    /// A request body too slow (408) or too large (413): the routes that read one.
    pub struct BodyLimits;
    answers([
        (
            "408",
            error("the body did not arrive within `server.bodyTimeoutMs`"),
        ),
        ("413", too_large()),
    ])
}

response_set! {
    /// A JSON body too large (413) or not JSON (415): the management routes that read one.
    pub struct JsonBody;
    answers([
        ("413", too_large()),
        ("415", error("the body is not `application/json`")),
    ])
}

response_set! {
    /// The management guard of the `/users/{userID}` routes: [`ManagementGuard`], and the 400 of
    /// a bad id (or, where there is one, of the body or Auth0).
    pub struct UserGuard;
    merged([
        ManagementGuard::responses(),
        answers([(
            "400",
            error(
                "a `userID` that is empty, `.` or `..`, a malformed body, or Auth0's 400 \
                 passed through",
            ),
        )]),
    ])
}

/// Routes served at a second path for older callers, documented as copies of their primary
/// route (each with its own `operationId`), so the two descriptions cannot drift apart: `(alias,
/// primary, operationId)`.
pub const ALIASES: [(&str, &str, &str); 2] = [
    ("/users/me", "/userinfo", "users_me"),
    (
        "/oauth/refreshtoken",
        "/refreshtoken",
        "refresh_token_alias",
    ),
];

/// Adds the [`ALIASES`] of the routes `api` documents under `prefix`.
pub fn add_aliases(api: &mut utoipa::openapi::OpenApi, prefix: &str) {
    for (alias, primary, operation_id) in ALIASES {
        let Some(mut item) = api.paths.paths.get(&format!("{prefix}{primary}")).cloned() else {
            continue;
        };
        for operation in [&mut item.get, &mut item.post].into_iter().flatten() {
            operation.operation_id = Some(operation_id.to_owned());
            operation.summary = Some(format!(
                "The same as `{primary}`, kept at this path for older callers (prefer `{primary}`)."
            ));
        }
        api.paths.paths.insert(format!("{prefix}{alias}"), item);
    }
}
