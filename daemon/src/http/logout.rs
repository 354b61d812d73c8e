//! `GET /logout` (SPEC §5): ends the session, revokes its refresh token at Auth0 in the
//! background, clears the cookie and sends the browser to Auth0's `/v2/logout`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::Deserialize;
use utoipa_actix_web::service_config::ServiceConfig;

use super::ApiError;
use super::extract::{
    BrowserAction, CrossSiteCheck, OptionalBrowserClient, PublicOrigin, RelativeRedirect,
    SessionCredential,
};
use super::session_cookie;
use crate::actors::Actors;
use crate::actors::sessions::Via;
use crate::config::Settings;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(logout);
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogoutQuery {
    /// A relative path to come back to after Auth0's logout (`returnTo`).
    redirect: Option<String>,
}

/// Ends the session (if any) and redirects to the tenant's logout.
#[utoipa::path(
    tag = "sessions",
    params(LogoutQuery, super::openapi::ClientParams),
    security((), ("bearer" = []), ("sid" = [])),
    responses(
        (status = 302, description = "to `{auth0Url}/v2/logout`, the `sid` cookie cleared",
            headers(("Location" = String, description = "the tenant's `/v2/logout`, with `returnTo` when `redirect` was given"), ("Set-Cookie" = String, description = "`sid` cleared"))),
        super::openapi::StoreUnavailable,
        (status = 400, body = super::error::ErrorBody, description = "a `redirect` that is not a relative path, a host not in `server.allowedHosts`, or several `sid` cookies"),
        (status = 401, body = super::error::ErrorBody, description = "no session and no client"),
        (status = 403, body = super::error::ErrorBody, description = "the `sid` cookie's session, from a cross-site page: nothing ended"),
    )
)]
#[get("/logout")]
async fn logout(
    req: HttpRequest,
    query: web::Query<LogoutQuery>,
    credential: SessionCredential,
    client: OptionalBrowserClient,
    cross_site: CrossSiteCheck,
    settings: web::Data<Settings>,
    actors: web::Data<Actors>,
) -> Result<HttpResponse, ApiError> {
    let redirect = RelativeRedirect::parse_optional(query.redirect.as_deref())?;
    let origin = match &redirect {
        Some(_) => Some(PublicOrigin::of(&req, &settings)?),
        None => None,
    };
    // Every session a Bearer access token opens (two logins in one second may share one), else
    // the `sid` cookie's session; read from the store, never from memory.
    let (sessions, via) = actors
        .sessions
        .find_stored(credential.bearer(), credential.cookie_sid.as_ref())
        .await?;
    // A page of another site may not end the browser's session (a Bearer caller holds its token
    // itself); refused, nothing is ended and the cookie stays.
    if via == Via::Cookie && !sessions.is_empty() {
        cross_site.refuse_cross_site(BrowserAction::LogOut)?;
    }
    let client = match sessions.first() {
        Some(session) => client.for_session(&session.client)?,
        None => client.required()?,
    };
    for session in sessions {
        if let Some(session) = actors.end_session(&session.id).await? {
            tracing::info!(client = %session.client, sub = %session.sub, "user logged out");
        }
    }

    let mut location =
        url::Url::parse(&client.settings.endpoint("v2/logout")).map_err(ApiError::internal)?;
    {
        let mut query = location.query_pairs_mut();
        if let (Some(redirect), Some(origin)) = (&redirect, &origin) {
            query.append_pair("returnTo", &origin.url(redirect));
        }
        if settings.logout_client_id_enabled {
            query.append_pair("client_id", &client.settings.client_id);
        }
    }
    if location.query() == Some("") {
        location.set_query(None);
    }
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, location.as_str()))
        .cookie(session_cookie::clear(&client.settings, &settings))
        .finish())
}
