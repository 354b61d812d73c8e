//! The session routes (SPEC §5): `POST /refreshtoken` (and `/oauth/refreshtoken`, the path the
//! upstream page's curl uses), `GET /userinfo` (and `/users/me`, a legacy alias).

use actix_web::{HttpResponse, ResponseError as _, routes, web};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa_actix_web::service_config::ServiceConfig;

use super::ApiError;
use super::extract::{BrowserAction, CrossSiteCheck, OptionalApiClient, SessionCredential};
use super::session_cookie;
use super::token::TokenAnswer;

use auth0_client_plugin_api::host::Hook;

use crate::actors::Actors;
use crate::actors::sessions::Via;
use crate::actors::tokens::{Refresh, RefreshKind, RefreshOutcome};
use crate::config::Settings;
use crate::store::{RefreshTokenMatch, Session};

pub fn configure(cfg: &mut ServiceConfig) {
    // `/userinfo` first: it is the hot path, and actix-web tries routes in order. Each handler
    // also serves its alias (the second path of its `#[routes]`); the document describes the
    // aliases as copies (`openapi::ALIASES`).
    cfg.service(userinfo).service(refresh_token);
}

fn no_session() -> ApiError {
    ApiError::Unauthorized("no live session for this access token or `sid` cookie".into())
}

/// Runs (or joins) the single-flight refresh of `session`.
async fn refresh(
    actors: &Actors,
    session: &Session,
    kind: RefreshKind,
) -> Result<Session, ApiError> {
    let outcome = actors
        .tokens
        .send(Refresh {
            session: session.id.clone(),
            kind,
        })
        .await
        .map_err(ApiError::internal)?;
    match outcome {
        RefreshOutcome::Refreshed(session) => Ok(*session),
        RefreshOutcome::Ended => Err(ApiError::Unauthorized(
            "the session has ended: log in again".into(),
        )),
        RefreshOutcome::NoRefreshToken => Err(ApiError::Unauthorized(
            "the session has no refresh token to refresh with (the client's scopes lack `offline_access`)"
                .into(),
        )),
        RefreshOutcome::Failed(err) => Err(ApiError::from(&*err)),
    }
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct RefreshBody {
    /// The session's refresh token: required with Bearer, optional with the `sid` cookie.
    refresh_token: Option<String>,
}

fn refresh_body(body: &[u8]) -> Result<RefreshBody, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(RefreshBody::default());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => match map.get("refresh_token") {
            None | Some(Value::Null) => Ok(RefreshBody::default()),
            Some(Value::String(s)) if s.is_empty() => Ok(RefreshBody::default()),
            Some(Value::String(s)) => Ok(RefreshBody {
                refresh_token: Some(s.clone()),
            }),
            Some(_) => Err(ApiError::BadRequest(
                "field `refresh_token` must be a string".into(),
            )),
        },
        Ok(_) => Err(ApiError::BadRequest(
            "the JSON body must be an object".into(),
        )),
        Err(e) => Err(ApiError::BadRequest(format!("malformed JSON body: {e}"))),
    }
}

/// Refreshes the session's tokens at Auth0 and extends the session.
#[utoipa::path(
    tag = "sessions",
    params(super::openapi::ClientParams),
    security(("bearer" = []), ("sid" = [])),
    request_body(content = Option<RefreshBody>, content_type = "application/json",
        description = "required with Bearer; optional with the `sid` cookie"),
    responses(
        (status = 200, body = TokenAnswer, description = "token JSON with Bearer; an empty body and the re-issued `sid` cookie with the cookie",
            headers(("Set-Cookie" = String, description = "`sid` re-issued, for a cookie refresh"))),
        (status = 400, body = super::error::ErrorBody, description = "no `refresh_token` with Bearer, a body that is not a JSON object with a string `refresh_token`, or several `sid` cookies"),
        (status = 401, body = super::error::ErrorBody, description = "no session, a refresh token that is not the session's, or Auth0's `invalid_grant` (the session ended)"),
        (status = 403, body = super::error::ErrorBody, description = "a cookie refresh from a cross-site page (the session untouched)"),
        super::openapi::BodyLimits,
        super::openapi::Auth0Failures,
        (status = 503, body = super::error::ErrorBody, description = "the session store is unavailable, or storing Auth0's new tokens failed (retry)"),
    )
)]
#[routes]
#[post("/refreshtoken")]
#[post("/oauth/refreshtoken")]
async fn refresh_token(
    body: web::Bytes,
    credential: SessionCredential,
    client: OptionalApiClient,
    cross_site: CrossSiteCheck,
    settings: web::Data<Settings>,
    actors: web::Data<Actors>,
) -> Result<HttpResponse, ApiError> {
    let body = refresh_body(&body)?;
    let credential = credential.require()?;
    let (session, kind, via) = explicit_target(&actors, &credential, &body).await?;
    // The cookie is the browser's: a page of another site may not renew it (a Bearer caller
    // holds its token itself).
    if via == Via::Cookie {
        cross_site.refuse_cross_site(BrowserAction::Refresh)?;
    }
    let client = client.for_session(&session.client)?;
    // Every explicit kind extends, also when it joined a transparent refresh (see `Refresh`).
    let session = match refresh(&actors, &session, kind).await {
        Ok(session) => session,
        // The session is over: a cookie caller also loses the cookie.
        Err(err @ ApiError::Unauthorized(_))
            if via == Via::Cookie && !actors.sessions.is_live(&session.id).await? =>
        {
            let mut answer = err.error_response();
            answer
                .add_cookie(&session_cookie::clear(&client.settings, &settings))
                .map_err(ApiError::internal)?;
            return Ok(answer);
        }
        Err(err) => return Err(err),
    };
    Ok(match via {
        Via::Bearer => HttpResponse::Ok().json(TokenAnswer::of(&session)),
        // A cookie caller gets the cookie back with a full Max-Age, whatever the client's scopes.
        Via::Cookie => HttpResponse::Ok()
            .cookie(session_cookie::issue(&client.settings, &settings, &session))
            .finish(),
    })
}

/// Which session an explicit refresh is for, and what it asks of the flight.
///
/// - Bearer: the access token may open several sessions (two logins in one second); the
///   presented refresh token picks one. Its current refresh token calls Auth0; one it issued and
///   later rotated gets the current tokens (the client missed a rotation).
/// - Cookie: the `sid` session; a `refresh_token` in the body, when given, is checked the same way.
async fn explicit_target(
    actors: &Actors,
    credential: &SessionCredential,
    body: &RefreshBody,
) -> Result<(Session, RefreshKind, Via), ApiError> {
    let not_this =
        || ApiError::Unauthorized("`refresh_token` is not this session's refresh token".into());
    let kind_for = |session: &Session, presented: &str| match session.check_refresh_token(presented)
    {
        RefreshTokenMatch::Current => Some(RefreshKind::Rotate),
        RefreshTokenMatch::Superseded => Some(RefreshKind::Extend),
        RefreshTokenMatch::Unknown => None,
    };
    let (sessions, via) = actors
        .sessions
        .find_stored(credential.bearer(), credential.cookie_sid.as_ref())
        .await?;
    if via == Via::Bearer {
        let presented = body.refresh_token.as_deref().ok_or_else(|| {
            ApiError::BadRequest(
                "missing field `refresh_token` (required with a Bearer token)".into(),
            )
        })?;
        let mut matches: Vec<(Session, RefreshKind)> = sessions
            .into_iter()
            .filter_map(|s| kind_for(&s, presented).map(|k| (s, k)))
            .collect();
        // The session whose current token it is, before one that merely kept it.
        matches.sort_by_key(|(_, kind)| *kind != RefreshKind::Rotate);
        let (session, kind) = matches.into_iter().next().ok_or_else(not_this)?;
        return Ok((session, kind, Via::Bearer));
    }
    let session = sessions.into_iter().next().ok_or_else(no_session)?;
    let kind = match body.refresh_token.as_deref() {
        None => RefreshKind::Cookie,
        Some(presented) => kind_for(&session, presented).ok_or_else(not_this)?,
    };
    Ok((session, kind, Via::Cookie))
}

/// The claims `/userinfo` never shows: they describe the token, not the user.
const TOKEN_CLAIMS: [&str; 7] = ["iss", "aud", "iat", "exp", "nonce", "at_hash", "sid"];

/// The `/userinfo` body (SPEC §5): the ID-token claims without the token's own, each namespaced
/// claim of `customClaimsNamespaces` also under its last path segment, and `groups` from
/// `app_metadata.groups` (or `[]`).
pub fn user_claims(claims: &Map<String, Value>, namespaces: &[String]) -> Map<String, Value> {
    let mut out: Map<String, Value> = claims
        .iter()
        .filter(|(name, _)| !TOKEN_CLAIMS.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    for namespaced in namespaces {
        if let Some(value) = claims.get(namespaced) {
            let short = namespaced
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or(namespaced);
            out.insert(short.to_owned(), value.clone());
        }
    }
    let groups = out
        .get("app_metadata")
        .and_then(|m| m.get("groups"))
        .filter(|g| g.is_array())
        .cloned()
        .unwrap_or_else(|| Value::Array(Vec::new()));
    out.insert("groups".into(), groups);
    out
}

/// The `/userinfo` body: the session's claims shaped for gateways, with the plugins'
/// `custom_claims` merged in config order (when a plugin has that hook), and whether every plugin
/// answered. A complete body is kept with the session's cached copy, so the claims are shaped and
/// a plugin is asked once per session and token, not per request; it is made again when that copy
/// goes: a refresh or logout (any write to the session), eviction from the read cache, and on
/// every request when the cache is off (`sessions.cacheBytes: 0`). A body made after a fail-open
/// plugin's failure lacks its claims and is never kept, so the next request asks again.
async fn userinfo_body(
    actors: &Actors,
    settings: &Settings,
    session: &Session,
) -> Result<(web::Bytes, bool), ApiError> {
    let mut claims = user_claims(&session.claims, &settings.custom_claims_namespaces);
    let complete = !actors.plugins.has(Hook::CustomClaims)
        || actors
            .plugins
            .custom_claims(&session.client, &session.sub, &mut claims)
            .await?;
    let body = serde_json::to_vec(&claims)
        .map(web::Bytes::from)
        .unwrap_or_default();
    Ok((body, complete))
}

/// Who the session's user is: the verified ID-token claims, shaped for gateways.
#[utoipa::path(
    tag = "sessions",
    params(super::openapi::ClientParams),
    security(("bearer" = []), ("sid" = [])),
    responses(
        (status = 200, description = "the user's claims; `sub` and `groups` always present", body = Object),
        (status = 400, body = super::error::ErrorBody, description = "several `sid` cookies"),
        (status = 401, body = super::error::ErrorBody, description = "no session (or it ended), or the request names another client than the session's"),
        super::openapi::Auth0Failures,
        super::openapi::StoreUnavailable,
    )
)]
#[routes]
#[get("/userinfo")]
#[get("/users/me")]
async fn userinfo(
    credential: SessionCredential,
    client: OptionalApiClient,
    settings: web::Data<Settings>,
    actors: web::Data<Actors>,
) -> Result<HttpResponse, ApiError> {
    // The hot path: one store read, no write, no Auth0 call while the access token is valid.
    let credential = credential.require()?;
    let (found, _) = actors
        .sessions
        .find(credential.bearer(), credential.cookie_sid.as_ref())
        .await?
        .ok_or_else(no_session)?;
    client.check_session(&found.session.client)?;
    let body = if found.session.access_expired(actors.clock.now()) {
        let session = refresh(&actors, &found.session, RefreshKind::Transparent).await?;
        userinfo_body(&actors, &settings, &session).await?.0
    } else if let Some(body) = found.cached_body() {
        body
    } else {
        match userinfo_body(&actors, &settings, &found.session).await? {
            (body, true) => found.keep_body(body),
            (body, false) => body,
        }
    };
    Ok(HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claims_are_shaped_for_gateways() {
        let claims = json!({
            "sub": "auth0|1", "iss": "https://t/", "aud": "c", "iat": 1, "exp": 2, "nonce": "n",
            "at_hash": "h", "sid": "s", "email": "a@b.c",
            "https://ns/app_metadata": {"groups": ["admin"]},
            "https://ns/user_metadata": {"lang": "it"}
        });
        let namespaces = vec![
            "https://ns/app_metadata".to_owned(),
            "https://ns/user_metadata".to_owned(),
        ];
        let out = user_claims(claims.as_object().unwrap_or(&Map::new()), &namespaces);
        assert_eq!(
            Value::Object(out),
            json!({
                "sub": "auth0|1", "email": "a@b.c",
                "https://ns/app_metadata": {"groups": ["admin"]},
                "https://ns/user_metadata": {"lang": "it"},
                "app_metadata": {"groups": ["admin"]}, "user_metadata": {"lang": "it"},
                "groups": ["admin"]
            })
        );
    }

    #[test]
    fn groups_default_to_an_empty_list() {
        let claims = json!({"sub": "auth0|1"});
        let out = user_claims(claims.as_object().unwrap_or(&Map::new()), &[]);
        assert_eq!(out["groups"], json!([]));
        assert_eq!(out["sub"], "auth0|1");
    }
}
