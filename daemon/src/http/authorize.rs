//! The browser side of the authorization-code flow (SPEC §5): `GET /authorize` starts a login
//! and stores its state record; the code Auth0 sends back is exchanged either by
//! `POST /oauth/token` (behind a login site, see [`super::token`]) or by `GET /oauth/callback`
//! (standalone). The rules of the state records (what one holds, how it is issued, bound,
//! taken and exchanged) are [`crate::login::state`]'s; this module reads and answers HTTP.
//!
//! Choices where the spec is silent:
//! - Without `authorizeStateRequired` a caller's `state` is ignored and one is generated, as
//!   upstream did. With it, the caller's `state` must be 1 to [`MAX_STATE_LEN`] bytes without
//!   control characters, and one still live is refused (400) rather than overwriting the record
//!   of another login in progress.
//! - `redirect` and `redirectUri` are aliases; each one sent must be a safe relative path, and
//!   both with different values are 400.
//! - `prompt` and `action` are forwarded as sent: their values are Auth0's (and a custom
//!   Universal Login page's) to judge.
//! - A nonce mismatch is 403, like the PKCE mismatch Auth0 reports as `invalid_grant`: both say
//!   the code does not come from the login this state started (a tampered `/authorize`).
//! - `GET /oauth/callback` carries Auth0's `error` back to the application; a failed code
//!   exchange is answered with the JSON error body of every other route.
//! - Login CSRF (RFC 6749 §10.12): in the standalone deployment the daemon is the OAuth client,
//!   so it binds each login to the browser that started it. `/authorize` sets a cookie named
//!   after a hash of the state ([`state::binding_cookie_name`]; `HttpOnly`, `SameSite=Lax`,
//!   `Path=/`, `Max-Age` = `sessions.stateTtlSeconds`, and the `__Host-` prefix unless
//!   `server.insecureCookies`) holding a fresh 256-bit secret, whose SHA-256 the state record
//!   keeps. `/oauth/callback` (both branches) opens a session, or carries Auth0's `error` back,
//!   only when the browser presents the secret (compared in constant time; else 403), then clears
//!   the cookie. One cookie per state, so logins in several tabs do not undo each other. The
//!   browser must therefore reach `/authorize` and `/oauth/callback` on the same host.
//! - The same binding is required by the code exchange of `POST /oauth/token` when the state's
//!   client has the daemon's own callback as `redirectUrl` ([`state::is_own_callback`]: its
//!   path ends with `<SERVICE_PREFIX>/oauth/callback`, so a proxy may add a prefix in front): a
//!   callback URL that leaked (a log, a `Referer`) then logs nobody in. States of a login site's
//!   `redirectUrl` keep the server-to-server exchange without a cookie: the site binds the login
//!   with its own state, and the daemon's cookie, set there too, simply expires.
//! - A state record holds only what the exchange needs (client, redirect, PKCE verifier, nonce,
//!   binding hash), each bounded: a caller's `state` at [`MAX_STATE_LEN`] bytes, the `redirect`
//!   at [`MAX_REDIRECT_LEN`]. Logins in progress are counted per end-user IP and in total
//!   ([`crate::pending`]): past `sessions.maxPendingLoginsPerIp` or `sessions.maxPendingLogins`,
//!   429 with `Retry-After`, and nothing is stored.

use std::time::Duration;

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::Deserialize;
use url::Url;
use utoipa_actix_web::service_config::ServiceConfig;

use super::ApiError;
use super::extract::{
    BrowserClient, EndUser, OptionalBrowserClient, RelativeRedirect, binding_values, location_of,
    required,
};
use super::session_cookie;
use crate::actors::Actors;
use crate::actors::sessions::StatePut;
use crate::config::{ClientSettings, Settings};
use crate::echo::Quoted;
use crate::login::state::{self, MAX_STATE_LEN, NewLogin, Presentation};
use crate::login::{LoginFlow, choose_connection};
use crate::store::StateRecord;

/// Longest `redirect` a login keeps, in bytes (the state record stays small; other routes accept
/// up to [`RelativeRedirect::MAX_LEN`]).
pub const MAX_REDIRECT_LEN: usize = 2048;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(authorize).service(callback);
}

/// The query of `GET /authorize`. Unknown parameters (a login site's version, say) are ignored.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuthorizeQuery {
    /// A connection of the client's `supportedConnections`; else `defaultConnection`, else the
    /// single supported one, else none (Universal Login asks).
    connection: Option<String>,
    /// A relative path to land on after the login.
    redirect: Option<String>,
    /// Alias of `redirect`.
    #[serde(rename = "redirectUri")]
    redirect_uri: Option<String>,
    /// Required when the client has `authorizeStateRequired`; otherwise ignored and generated.
    state: Option<String>,
    /// Forwarded to Auth0 (`none`, `login`, `consent`, `select_account`).
    prompt: Option<String>,
    /// Forwarded to Auth0 (for a custom Universal Login page, e.g. `signup`).
    action: Option<String>,
}

/// The query Auth0 redirects to `GET /oauth/callback` with.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    /// The authorization code (on success).
    code: Option<String>,
    /// The `state` `/authorize` sent.
    #[param(required = true)]
    state: Option<String>,
    /// Auth0's error (`access_denied`, `unauthorized`, `login_required`, ...).
    error: Option<String>,
    error_description: Option<String>,
}

/// `None` for an absent or empty parameter.
fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

fn binding_cookie(state: &str, secret: &str, settings: &Settings) -> Cookie<'static> {
    let secure = !settings.server.insecure_cookies;
    Cookie::build(state::binding_cookie_name(state, secure), secret.to_owned())
        .path("/")
        .http_only(true)
        .secure(!settings.server.insecure_cookies)
        .same_site(SameSite::Lax)
        .max_age(CookieDuration::seconds(
            i64::try_from(settings.sessions.state_ttl_seconds).unwrap_or(i64::MAX),
        ))
        .finish()
}

/// Removes the binding cookie of `state`: empty, expired, no `Max-Age` (as the `sid` cookie is
/// cleared).
fn clear_binding_cookie(state: &str, settings: &Settings) -> Cookie<'static> {
    let secure = !settings.server.insecure_cookies;
    Cookie::build(state::binding_cookie_name(state, secure), "")
        .path("/")
        .http_only(true)
        .secure(!settings.server.insecure_cookies)
        .same_site(SameSite::Lax)
        .expires(actix_web::cookie::time::OffsetDateTime::UNIX_EPOCH)
        .finish()
}

/// A caller's `state` (with `authorizeStateRequired`).
fn check_state(state: &str) -> Result<(), ApiError> {
    if state.len() > MAX_STATE_LEN {
        return Err(ApiError::BadRequest(format!(
            "`state` must be at most {MAX_STATE_LEN} bytes"
        )));
    }
    if state.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "`state` must not contain control characters".into(),
        ));
    }
    Ok(())
}

/// The redirect of an `/authorize` request, from `redirect` or its alias `redirectUri`.
fn redirect_of(query: &AuthorizeQuery) -> Result<Option<RelativeRedirect>, ApiError> {
    let parse = |value: Option<&String>, field| -> Result<_, ApiError> {
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        if value.len() > MAX_REDIRECT_LEN {
            return Err(ApiError::BadRequest(format!(
                "`{field}` must be at most {MAX_REDIRECT_LEN} bytes at /authorize"
            )));
        }
        Ok(Some(RelativeRedirect::parse_field(value, field)?))
    };
    let redirect = parse(query.redirect.as_ref(), "redirect")?;
    let alias = parse(query.redirect_uri.as_ref(), "redirectUri")?;
    match (redirect, alias) {
        (Some(a), Some(b)) if a != b => Err(ApiError::BadRequest(
            "`redirect` and `redirectUri` differ: send one of them".into(),
        )),
        (Some(a), _) => Ok(Some(a)),
        (None, b) => Ok(b),
    }
}

/// Auth0's `/authorize` URL for the login `record` starts (SPEC §5).
fn auth0_authorize_url(
    client: &ClientSettings,
    record: &StateRecord,
    connection: Option<&str>,
    prompt: Option<&str>,
    action: Option<&str>,
) -> Result<Url, ApiError> {
    let mut url = Url::parse(&client.endpoint("authorize")).map_err(ApiError::internal)?;
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.client_id)
            .append_pair("redirect_uri", &client.redirect_url)
            .append_pair("scope", &client.auth0_scope())
            .append_pair("state", &record.state)
            .append_pair("nonce", &record.nonce)
            .append_pair(
                "code_challenge",
                &state::pkce_challenge(&record.pkce_verifier),
            )
            .append_pair("code_challenge_method", "S256");
        if let Some(audience) = &client.audience {
            query.append_pair("audience", audience);
        }
        if let Some(connection) = connection {
            query.append_pair("connection", connection);
        }
        if let Some(prompt) = prompt {
            query.append_pair("prompt", prompt);
        }
        if let Some(action) = action {
            query.append_pair("action", action);
        }
    }
    Ok(url)
}

/// `redirect` with Auth0's `error` and `error_description` appended to its query (kept), before
/// its fragment.
fn with_error(redirect: &str, error: &str, description: Option<&str>) -> String {
    let (base, fragment) = match redirect.split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (redirect, None),
    };
    let mut params = url::form_urlencoded::Serializer::new(String::new());
    params.append_pair("error", error);
    if let Some(description) = description {
        params.append_pair("error_description", description);
    }
    let params = params.finish();
    let separator = match base.find('?') {
        None => "?",
        Some(_) if base.ends_with('?') || base.ends_with('&') => "",
        Some(_) => "&",
    };
    let mut location = format!("{base}{separator}{params}");
    if let Some(fragment) = fragment {
        location.push('#');
        location.push_str(fragment);
    }
    location_of(&location)
}

/// Starts a browser login: stores a state record and redirects to the tenant's `/authorize`.
#[utoipa::path(
    tag = "authentication",
    params(AuthorizeQuery, super::openapi::ClientParams),
    responses(
        (status = 302, description = "to `{auth0Url}/authorize` with `response_type=code`, `client_id`, `redirect_uri`, `scope`, `state`, `nonce`, the PKCE challenge (`S256`) and `audience`, `connection`, `prompt`, `action` when set; sets the cookie binding the login to this browser",
            headers(("Location" = String, description = "the tenant's `/authorize`"), ("Set-Cookie" = String, description = "the login-binding cookie"))),
        super::openapi::StoreUnavailable,
        (status = 400, body = super::error::ErrorBody, description = "a bad `redirect` (or longer than 2048 bytes), `connection` or `state`"),
        (status = 401, body = super::error::ErrorBody, description = "no client"),
        (status = 429, body = super::error::ErrorBody, description = "too many logins in progress from this end user's IP (`sessions.maxPendingLoginsPerIp`) or in total (`sessions.maxPendingLogins`); `Retry-After` is the seconds until the oldest of them expires",
            headers(("Retry-After" = u64, description = "seconds"))),
        (status = 502, body = super::error::ErrorBody, description = "a `fail-closed` plugin's `map_connection` failed"),
    )
)]
#[get("/authorize")]
async fn authorize(
    query: web::Query<AuthorizeQuery>,
    client: BrowserClient,
    end_user: EndUser,
    settings: web::Data<Settings>,
    actors: web::Data<Actors>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let client = client.into_inner();
    let redirect = redirect_of(&query)?;
    let connection = choose_connection(
        &actors.plugins,
        client.name.as_str(),
        &client.settings,
        non_empty(query.connection).as_deref(),
        LoginFlow::Authorize,
        None,
    )
    .await?;
    let caller_state = client.settings.authorize_state_required;
    let state = if caller_state {
        let state = non_empty(query.state).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "missing field `state`: client `{}` has `authorizeStateRequired`",
                client.name
            ))
        })?;
        check_state(&state)?;
        state
    } else {
        state::random_token()
    };
    let NewLogin {
        record,
        binding_secret,
    } = NewLogin::issue(
        state,
        client.name.as_str(),
        redirect.map(RelativeRedirect::into_string),
        Duration::from_secs(settings.sessions.state_ttl_seconds),
        actors.clock.now(),
    );
    let location = auth0_authorize_url(
        &client.settings,
        &record,
        connection.as_deref(),
        non_empty(query.prompt).as_deref(),
        non_empty(query.action).as_deref(),
    )?;
    match actors.sessions.put_state(&record, end_user.ip).await? {
        StatePut::Stored => {}
        StatePut::InUse if caller_state => {
            return Err(ApiError::BadRequest(
                "`state` is already in use by a login in progress".into(),
            ));
        }
        StatePut::InUse => {
            return Err(ApiError::internal(
                "a generated state collided with a live one",
            ));
        }
        StatePut::TooMany(full) => {
            tracing::warn!(
                ip = ?end_user.ip,
                cap = ?full.cap,
                max = full.max,
                "a login refused: too many logins in progress"
            );
            return Err(full.into());
        }
    }
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, location.as_str()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(binding_cookie(&record.state, &binding_secret, &settings))
        .finish())
}

/// Where Auth0 sends the browser back (standalone deployments, `redirectUrl` pointing here):
/// exchanges the code, sets the `sid` cookie and redirects to the login's `redirect`.
#[utoipa::path(
    tag = "authentication",
    params(CallbackQuery, super::openapi::ClientParams),
    responses(
        (status = 302, description = "to the login's `redirect` (else `/`) with the `sid` cookie; with Auth0's `error`, to the `redirect` with `error` and `error_description` appended",
            headers(("Location" = String), ("Set-Cookie" = String, description = "`sid`, and the cleared binding cookie"))),
        super::openapi::Auth0Failures,
        super::openapi::StoreUnavailable,
        (status = 400, body = super::error::ErrorBody, description = "`state` missing, unknown, expired or used; `code` missing"),
        (status = 401, body = super::error::ErrorBody, description = "the request names another client than the login's"),
        (status = 403, body = super::error::ErrorBody, description = "the browser did not start this login (its binding cookie is missing or does not match; the state stays usable), Auth0 refused the code (PKCE), or the nonce does not match"),
    )
)]
#[get("/oauth/callback")]
async fn callback(
    req: HttpRequest,
    query: web::Query<CallbackQuery>,
    client: OptionalBrowserClient,
    settings: web::Data<Settings>,
    actors: web::Data<Actors>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let state = required(non_empty(query.state), "state")?;
    if let Some(error) = non_empty(query.error) {
        let binding = binding_values(&req, &state, &settings);
        let record = state::take_state(&actors, &settings, &state, Presentation::Callback, binding)
            .await
            .inspect_err(|_| {
                tracing::info!(
                    error = %Quoted(&error),
                    "Auth0 answered a login with an error, refused"
                );
            })?;
        tracing::info!(
            client = %record.client,
            error = %Quoted(&error),
            "Auth0 answered the login with an error"
        );
        let location = with_error(
            record.redirect.as_deref().unwrap_or("/"),
            &error,
            non_empty(query.error_description).as_deref(),
        );
        return Ok(HttpResponse::Found()
            .insert_header((header::LOCATION, location))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .cookie(clear_binding_cookie(&state, &settings))
            .finish());
    }
    let code = required(non_empty(query.code), "code")?;
    let binding = binding_values(&req, &state, &settings);
    let record =
        state::take_state(&actors, &settings, &state, Presentation::Callback, binding).await?;
    let client = client.for_session(&record.client)?;
    let session = state::exchange(
        &actors,
        client.name.as_str(),
        client.settings.clone(),
        &record,
        code,
    )
    .await?;
    let location = location_of(record.redirect.as_deref().unwrap_or("/"));
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(session_cookie::issue(&client.settings, &settings, &session))
        .cookie(clear_binding_cookie(&state, &settings))
        .finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::extract::test_support;

    #[test]
    fn errors_are_appended_to_the_redirects_query_before_its_fragment() {
        assert_eq!(
            with_error("/", "login_required", Some("Login required")),
            "/?error=login_required&error_description=Login+required"
        );
        assert_eq!(
            with_error("/app?tab=1#top", "access_denied", None),
            "/app?tab=1&error=access_denied#top"
        );
        assert_eq!(
            with_error("/app?", "a&b", Some("x=y")),
            "/app?error=a%26b&error_description=x%3Dy"
        );
    }

    #[test]
    fn binding_cookies_carry_the_new_logins_secret() {
        let settings = test_support::settings(test_support::doc());
        let login = NewLogin::issue(
            "st".into(),
            "web",
            None,
            Duration::from_secs(60),
            crate::store::Timestamp::now(),
        );
        let cookie = binding_cookie("st", &login.binding_secret, &settings);
        assert_eq!(cookie.name(), state::binding_cookie_name("st", true));
        assert!(cookie.name().starts_with("__Host-"));
        assert_eq!(cookie.value(), login.binding_secret);
        assert_eq!(cookie.path(), Some("/"));
        assert_eq!(cookie.domain(), None);
        assert_eq!(cookie.secure(), Some(true));
        assert_eq!(cookie.http_only(), Some(true));
    }

    #[test]
    fn both_redirect_fields_must_agree() {
        let query = |redirect: Option<&str>, alias: Option<&str>| AuthorizeQuery {
            redirect: redirect.map(str::to_owned),
            redirect_uri: alias.map(str::to_owned),
            ..AuthorizeQuery::default()
        };
        let found = |q| redirect_of(&q).map(|r| r.map(RelativeRedirect::into_string));
        assert_eq!(found(query(Some("/a"), None)).ok(), Some(Some("/a".into())));
        assert_eq!(found(query(None, Some("/b"))).ok(), Some(Some("/b".into())));
        assert_eq!(
            found(query(Some("/a"), Some("/a"))).ok(),
            Some(Some("/a".into()))
        );
        assert_eq!(found(query(Some(""), None)).ok(), Some(None));
        assert!(found(query(Some("/a"), Some("/b"))).is_err());
        let err = found(query(None, Some("//evil.example"))).err();
        assert!(
            err.is_some_and(|e| e.to_string().contains("redirectUri")),
            "the error names the field"
        );
    }

    #[test]
    fn a_kept_redirect_is_bounded() {
        let query = |redirect: String| AuthorizeQuery {
            redirect: Some(redirect),
            ..AuthorizeQuery::default()
        };
        let at_most = format!("/{}", "a".repeat(MAX_REDIRECT_LEN - 1));
        assert!(redirect_of(&query(at_most)).is_ok());
        let err = redirect_of(&query(format!("/{}", "a".repeat(MAX_REDIRECT_LEN))))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("`redirect`") && err.contains("2048"), "{err}");
    }

    #[test]
    fn caller_states_are_bounded() {
        assert!(check_state("abc-123").is_ok());
        assert!(check_state(&"s".repeat(MAX_STATE_LEN)).is_ok());
        assert!(check_state(&"s".repeat(MAX_STATE_LEN + 1)).is_err());
        assert!(check_state("a\nb").is_err());
    }
}
