//! `POST /backchannel-logout` (SPEC §5; OpenID Connect Back-Channel Logout 1.0): Auth0 tells the
//! daemon that a user's Auth0 session ended elsewhere, and the sessions it opened here end too.
//!
//! Flow: the form body's `logout_token` is verified ([`crate::auth0::logout_token`]: every rule of
//! the specification's §2.6), its `jti` is recorded set-if-absent in the store until the token
//! could no longer be accepted (a replay, on any daemon sharing the store, is 400), then the
//! sessions it names end as a logout ends them (refresh tokens revoked in the background).
//!
//! | token carries | ends |
//! |---|---|
//! | `sid` | every session whose login's ID token carried that `sid` (password-grant sessions never do) |
//! | `sub` | every session of that user |
//! | both | the sessions matching both |
//!
//! Choices where the spec is silent:
//! - Only sessions of clients of the token's tenant (`auth0Url` = its issuer) end, whichever of
//!   that tenant's clients the token names in `aud`: one Auth0 session spans the tenant's
//!   applications, and Auth0 sends one token per application.
//! - No API key, client or cookie is asked for (Auth0 sends none), and no cross-site check
//!   applies: the signed token is the credential. The route is public, never a management route.
//! - Any body that is not a form with one `logout_token` is 400, whatever its content type.
//! - A `jti` is recorded before the sessions end: a store failure after it (503) leaves the token
//!   spent, which only matters if Auth0 retried, which it does not.

use std::time::Duration;

use actix_web::http::header::{self, CacheDirective};
use actix_web::{HttpRequest, HttpResponse, post, web};
use utoipa_actix_web::service_config::ServiceConfig;

use super::ApiError;
use crate::actors::Actors;
use crate::auth0::logout_token::{LogoutToken, LogoutTokenError};
use crate::config::Settings;
use crate::store::Session;
use crate::store::auth0_session::replay_key;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(backchannel_logout);
}

/// The form Auth0 posts.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct BackchannelForm {
    /// The logout token: a JWT signed by the tenant (RS256), with `iss`, `aud`, `iat`, `jti`,
    /// `events`, and `sid` and/or `sub`.
    logout_token: String,
}

/// A replay record outlives the token's acceptance by this much (clock differences).
const REPLAY_MARGIN: Duration = Duration::from_secs(5);

/// Ends the sessions of an Auth0 session that ended elsewhere.
#[utoipa::path(
    tag = "sessions",
    request_body(content = BackchannelForm, content_type = "application/x-www-form-urlencoded"),
    security(()),
    responses(
        (status = 200, description = "the token verified; the sessions it names (if any) ended",
            headers(("Cache-Control" = String, description = "`no-store`"))),
        super::openapi::StoreUnavailable,
        (status = 400, body = super::error::ErrorBody, description = "no `logout_token`, or one that fails a rule of OpenID Connect Back-Channel Logout §2.6 (signature, `iss`, `aud`, `iat`, `exp`, `events`, `jti` replayed, neither `sid` nor `sub`, a `nonce`): nothing ended"),
        (status = 502, body = super::error::ErrorBody, description = "the tenant's signing keys cannot be fetched"),
    )
)]
#[post("/backchannel-logout")]
async fn backchannel_logout(
    req: HttpRequest,
    body: web::Bytes,
    settings: web::Data<Settings>,
    actors: web::Data<Actors>,
) -> Result<HttpResponse, ApiError> {
    let raw = logout_token_field(&req, &body)?;
    let token = actors.logins.verify_logout_token(&raw).await?;
    let now = actors.clock.now();
    let ttl = Duration::from_millis(
        u64::try_from(token.accept_until_ms.saturating_sub(now.as_millis())).unwrap_or(0),
    )
    .max(Duration::from_secs(1))
        + REPLAY_MARGIN;
    if !actors
        .sessions
        .record_once(&replay_key(&token.issuer, &token.jti), ttl)
        .await?
    {
        return Err(LogoutTokenError::Replayed.into());
    }

    let mut ended = 0_usize;
    for session in sessions_named(&actors, &settings, &token).await? {
        if actors.end_session(&session.id).await?.is_some() {
            ended += 1;
        }
    }
    if ended == 0 {
        // The 200 tells the IdP the sessions are ended. A concurrent logout may have ended them
        // a moment ago, its deletion still on its way to disk (an ending this request did itself
        // was durable before `end_session` returned): wait for it, so a kill -9 cannot bring back
        // a session this answer called ended.
        actors.sessions.flush().await?;
    }
    tracing::info!(
        sessions = ended,
        by_sid = token.sid.is_some(),
        sub = token.sub.as_deref().unwrap_or_default(),
        "back-channel logout"
    );
    Ok(HttpResponse::Ok()
        .insert_header(header::CacheControl(vec![CacheDirective::NoStore]))
        .finish())
}

/// The one `logout_token` of an `application/x-www-form-urlencoded` body.
fn logout_token_field(req: &HttpRequest, body: &[u8]) -> Result<String, ApiError> {
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form {
        return Err(ApiError::BadRequest(
            "the body must be an application/x-www-form-urlencoded form with `logout_token`".into(),
        ));
    }
    let mut tokens = url::form_urlencoded::parse(body)
        .filter(|(name, _)| name == "logout_token")
        .map(|(_, value)| value.into_owned());
    match (tokens.next(), tokens.next()) {
        (Some(token), None) if !token.is_empty() => Ok(token),
        (Some(_), Some(_)) => Err(ApiError::BadRequest(
            "field `logout_token` is given more than once".into(),
        )),
        _ => Err(ApiError::BadRequest(
            "field `logout_token` is required".into(),
        )),
    }
}

/// The live sessions the token names, among the clients of its tenant (see the module doc).
async fn sessions_named(
    actors: &Actors,
    settings: &Settings,
    token: &LogoutToken,
) -> Result<Vec<Session>, ApiError> {
    let candidates = match (&token.sid, &token.sub) {
        (Some(sid), sub) => {
            let mut found = actors.sessions.sessions_of_auth0_session(sid).await?;
            if let Some(sub) = sub {
                found.retain(|s| &s.sub == sub);
            }
            found
        }
        (None, Some(sub)) => actors.sessions.sessions_of(sub).await?,
        (None, None) => Vec::new(),
    };
    Ok(candidates
        .into_iter()
        .filter(|s| {
            settings
                .clients
                .get(&s.client)
                .is_some_and(|c| c.auth0_url == token.tenant)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn field(content_type: Option<&str>, body: &str) -> Result<String, String> {
        let mut req = TestRequest::post();
        if let Some(content_type) = content_type {
            req = req.insert_header((header::CONTENT_TYPE, content_type));
        }
        logout_token_field(&req.to_http_request(), body.as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn the_body_is_a_form_with_one_logout_token() {
        let form = Some("application/x-www-form-urlencoded; charset=UTF-8");
        assert_eq!(field(form, "logout_token=a.b.c&x=1"), Ok("a.b.c".into()));
        assert_eq!(field(form, "logout_token=a%2Eb"), Ok("a.b".into()));
        for (content_type, body) in [
            (form, ""),
            (form, "logout_token="),
            (form, "token=a.b.c"),
            (form, "logout_token=a&logout_token=b"),
            (Some("application/json"), r#"{"logout_token":"a.b.c"}"#),
            (None, "logout_token=a.b.c"),
        ] {
            let refused = field(content_type, body).expect_err(body);
            assert!(refused.contains("logout_token"), "{refused}");
        }
    }
}
