//! The HTTP layer: one `configure` per route group, the app factory shared by every listener,
//! and the OpenAPI document generated from the route definitions.

pub mod authorize;
pub mod backchannel;
pub mod edge;
pub mod error;
pub mod extract;
pub mod import;
pub mod logout;
pub mod management;
pub mod metrics;
pub mod observe;
pub mod openapi;
pub mod session;
pub mod session_cookie;
pub mod status;
pub mod token;
pub mod users;

use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::{App, HttpResponse, body::MessageBody, web};
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;

pub use error::ApiError;

use crate::actors::Actors;
use crate::config::Settings;
use crate::health::Health;
use metrics::Metrics;
use openapi::ApiDoc;
use status::ServiceVersion;

/// Which routes a listener serves: the main listener serves everything unless
/// `server.managementBind` moves the management routes to a listener of their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    /// Every route (no `server.managementBind`).
    All,
    /// Every route but the management ones.
    Public,
    /// The management routes only (plus the status routes).
    Management,
}

/// State shared by every worker of every listener.
#[derive(Clone)]
pub struct AppState {
    pub settings: web::Data<Settings>,
    pub health: web::Data<Health>,
    pub metrics: web::Data<Metrics>,
    pub actors: Actors,
}

/// The OpenAPI document of every route served under `prefix`.
pub fn openapi(prefix: &str) -> utoipa::openapi::OpenApi {
    let (_, api) = routes(App::new(), prefix, Listener::All);
    api
}

/// Registers the routes a listener serves on `app`, returning it with its OpenAPI document.
///
/// actix-web tries routes in registration order, so the session routes (`/userinfo` is the hot
/// path) come first, and without a `SERVICE_PREFIX` they sit on the app itself rather than in a
/// scope: each layer and each route tried before the right one is work on every request.
fn routes<T>(app: App<T>, prefix: &str, listener: Listener) -> (App<T>, utoipa::openapi::OpenApi)
where
    T: ServiceFactory<ServiceRequest, Config = (), Error = actix_web::Error, InitError = ()>,
{
    let groups = move |cfg: &mut utoipa_actix_web::service_config::ServiceConfig| {
        if listener != Listener::Management {
            cfg.configure(session::configure)
                .configure(token::configure)
                .configure(authorize::configure)
                .configure(logout::configure)
                .configure(backchannel::configure);
        }
        if listener != Listener::Public {
            cfg.configure(users::configure);
            cfg.configure(import::configure);
        }
    };
    let app = app.into_utoipa_app().openapi(ApiDoc::openapi());
    let app = if prefix.is_empty() {
        app.configure(groups)
    } else {
        // From the path itself, so the OpenAPI paths carry the prefix too.
        app.service(utoipa_actix_web::scope(prefix).configure(groups))
    };
    let (app, mut api) = app
        .service(utoipa_actix_web::scope("/-").configure(status::configure))
        .route(DOCUMENTATION, web::get().to(documentation))
        .split_for_parts();
    openapi::add_aliases(&mut api, prefix);
    (app, api)
}

/// The OpenAPI document's own route (which the document does not describe).
const DOCUMENTATION: &str = "/documentation/json";

/// The actix-web application of one listener.
pub fn app(
    state: AppState,
    listener: Listener,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let settings = state.settings.clone();
    // Each worker gets its own `Data` of the settings and metrics (same contents): extractors
    // clone a `Data` per request, and a reference count shared by every worker is a cache line
    // the cores fight over on every request.
    let base = App::new()
        .app_data(web::Data::new(Settings::clone(&state.settings)))
        .app_data(state.health.clone())
        .app_data(web::Data::new(Metrics::clone(&state.metrics)))
        .app_data(web::Data::new(state.actors))
        .app_data(web::Data::new(ServiceVersion(
            settings.service_version.clone(),
        )))
        .app_data(extract::payload::json_config(
            settings.server.body_limit_bytes,
        ))
        .app_data(extract::payload::form_config(
            settings.server.body_limit_bytes,
        ))
        .app_data(extract::payload::payload_config(
            settings.server.body_limit_bytes,
        ))
        .app_data(extract::payload::query_config())
        .app_data(extract::payload::path_config());
    let (app, api) = routes(base, &settings.service_prefix, listener);
    let methods = web::Data::new(edge::MethodTable::new(
        &api,
        &[(DOCUMENTATION, Method::GET)],
    ));
    let document = web::Data::new(api);
    let limits = edge::EdgeLimits {
        body_timeout: settings.server.body_timeout,
        body_limit: settings.server.body_limit_bytes,
    };
    app.app_data(document)
        .app_data(methods)
        .default_service(web::to(edge::unrouted))
        .wrap(observe::Observe::new(state.metrics.recorder(), limits))
}

/// The OpenAPI 3 document of every route.
async fn documentation(api: web::Data<utoipa::openapi::OpenApi>) -> HttpResponse {
    HttpResponse::Ok().json(api.get_ref())
}
