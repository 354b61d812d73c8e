//! The browser side of the authorization-code flow (SPEC §5): `GET /authorize` starts a login
//! and stores its state record; the code Auth0 sends back is exchanged either by
//! `POST /oauth/token` (behind a login site, see [`super::token`]) or by `GET /oauth/callback`
//! (standalone). This module owns the state records: what one holds, how it is issued, taken
//! and turned into a session.
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
//! - A state presented for another client than the one it was issued for is consumed all the
//!   same: taking stays one atomic step, a state is never presented twice, and the login is
//!   over either way (Auth0's code is single-use too).
//! - The PKCE verifier, the nonce and generated states are 256 random bits in base64url (43
//!   characters, RFC 7636's minimum verifier length).
//! - A nonce mismatch is 403, like the PKCE mismatch Auth0 reports as `invalid_grant`: both say
//!   the code does not come from the login this state started (a tampered `/authorize`).
//! - `GET /oauth/callback` carries Auth0's `error` back to the application; a failed code
//!   exchange is answered with the JSON error body of every other route.
//! - Login CSRF (RFC 6749 §10.12): in the standalone deployment the daemon is the OAuth client,
//!   so it binds each login to the browser that started it. `/authorize` sets a cookie named
//!   after a hash of the state ([`binding_cookie_name`]; `HttpOnly`, `SameSite=Lax`, `Path=/`,
//!   `Max-Age` = `sessions.stateTtlSeconds`, and the `__Host-` prefix unless
//!   `server.insecureCookies`) holding a fresh 256-bit secret, whose SHA-256 the state record
//!   keeps. `/oauth/callback` (both branches) opens a session, or carries Auth0's `error` back,
//!   only when the browser presents the secret (compared in constant time; else 403), then clears
//!   the cookie. One cookie per state, so logins in several tabs do not undo each other. The
//!   browser must therefore reach `/authorize` and `/oauth/callback` on the same host.
//! - The same binding is required by the code exchange of `POST /oauth/token` when the state's
//!   client has the daemon's own callback as `redirectUrl` ([`is_own_callback`]: its path ends
//!   with `<SERVICE_PREFIX>/oauth/callback`, so a proxy may add a prefix in front): a callback URL
//!   that leaked (a log, a `Referer`) then logs nobody in. States of a login site's `redirectUrl`
//!   keep the server-to-server exchange without a cookie: the site binds the login with its own
//!   state, and the daemon's cookie, set there too, simply expires.
//! - A binding is checked before the state is spent: the record is read, the secret compared,
//!   and only then is the record taken, as read (atomically; a concurrent take wins and the other
//!   caller gets 400). A request without the binding therefore cannot spend another browser's
//!   login.
//! - A state record holds only what the exchange needs (client, redirect, PKCE verifier, nonce,
//!   binding hash), each bounded: a caller's `state` at [`MAX_STATE_LEN`] bytes, the `redirect`
//!   at [`MAX_REDIRECT_LEN`]. Logins in progress are counted per end-user IP and in total
//!   ([`crate::pending`]): past `sessions.maxPendingLoginsPerIp` or `sessions.maxPendingLogins`,
//!   429 with `Retry-After`, and nothing is stored.

use std::time::Duration;

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngExt as _;
use secrecy::SecretString;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use url::Url;
use utoipa_actix_web::service_config::ServiceConfig;

use super::ApiError;
use super::extract::{
    BrowserClient, EndUser, OptionalBrowserClient, RelativeRedirect, SelectedClient,
};
use super::session_cookie;
use super::token::required;
use crate::actors::Actors;
use crate::actors::sessions::StatePut;
use crate::actors::tokens::{CodeLogin, TokenError};
use crate::auth0::jwks::IdTokenError;
use crate::config::{ClientSettings, Settings};
use crate::echo::Quoted;
use crate::login::{LoginFlow, choose_connection};
use crate::store::{Session, StateRecord};

/// Longest `state` accepted, in bytes.
pub const MAX_STATE_LEN: usize = 512;

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

/// 256 random bits, base64url without padding (43 characters).
fn random_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The PKCE `S256` challenge of `verifier`: base64url(SHA-256(verifier)) (RFC 7636 §4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The name of the cookie binding the login of `state` to the browser that started it: a fixed
/// prefix and 96 bits of SHA-256(state), so the cookie names a login without carrying its state.
/// A `Secure` cookie (`secure`: unless `server.insecureCookies`) also gets the `__Host-` prefix,
/// which browsers accept only from a secure origin, with `Path=/` and no `Domain`: no sibling or
/// parent domain can plant or shadow it.
pub fn binding_cookie_name(state: &str, secure: bool) -> String {
    let digest = Sha256::digest(state.as_bytes());
    format!(
        "{}{BINDING_COOKIE_PREFIX}{}",
        if secure { HOST_PREFIX } else { "" },
        URL_SAFE_NO_PAD.encode(&digest[..12])
    )
}

/// Prefix of the login-binding cookies' names after `__Host-` (see the module doc).
pub const BINDING_COOKIE_PREFIX: &str = "auth0_client_login_";

/// The cookie-name prefix that browsers accept only with `Secure`, `Path=/` and no `Domain`.
pub const HOST_PREFIX: &str = "__Host-";

/// The secret of a new login's binding cookie, and its SHA-256 for the state record.
struct BindingSecret {
    /// 256 random bits, base64url: the cookie's value.
    secret: String,
    /// base64url(SHA-256(secret)): [`StateRecord::binding`].
    hash: String,
}

impl BindingSecret {
    fn generate() -> Self {
        let secret = random_token();
        let hash = URL_SAFE_NO_PAD.encode(Sha256::digest(secret.as_bytes()));
        Self { secret, hash }
    }
}

/// Whether the request presents the binding of `record`, and if not, why.
#[derive(Debug, PartialEq, Eq)]
enum Presented {
    Valid,
    Missing,
    Mismatch,
}

/// Compares every cookie of the binding's name (a browser may send several with one name: one
/// planted under another path, say) with the hash `record` keeps, in constant time. A record
/// without a hash (an earlier version's) matches nothing.
fn binding_presented(req: &HttpRequest, record: &StateRecord, settings: &Settings) -> Presented {
    let name = binding_cookie_name(&record.state, !settings.server.insecure_cookies);
    let expected = URL_SAFE_NO_PAD
        .decode(record.binding.as_bytes())
        .ok()
        .filter(|hash| hash.len() == 32);
    let mut found = Presented::Missing;
    for value in cookie_values(req, &name) {
        let digest = Sha256::digest(value.as_bytes());
        if expected
            .as_deref()
            .is_some_and(|hash| bool::from(digest.as_slice().ct_eq(hash)))
        {
            return Presented::Valid;
        }
        found = Presented::Mismatch;
    }
    found
}

/// Whether `client`'s `redirectUrl` is this daemon's own `<SERVICE_PREFIX>/oauth/callback`
/// (standalone): its path ends with it, so a proxy may serve the daemon under a longer path.
pub fn is_own_callback(client: &ClientSettings, settings: &Settings) -> bool {
    // Starts with `/`, so a match ends on a whole path segment.
    let own = format!("{}/oauth/callback", settings.service_prefix);
    Url::parse(&client.redirect_url).is_ok_and(|url| url.path().ends_with(&own))
}

/// Where a state is presented, which decides whether its binding is required.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Presentation {
    /// `GET /oauth/callback`, either branch: always (a browser is there, and it is this route's
    /// defence against login CSRF).
    Callback,
    /// The code exchange of `POST /oauth/token`: when the state's client has the daemon's own
    /// callback as `redirectUrl`.
    Exchange,
}

fn binding_cookie(state: &str, secret: &str, settings: &Settings) -> Cookie<'static> {
    let secure = !settings.server.insecure_cookies;
    Cookie::build(binding_cookie_name(state, secure), secret.to_owned())
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
    Cookie::build(binding_cookie_name(state, secure), "")
        .path("/")
        .http_only(true)
        .secure(!settings.server.insecure_cookies)
        .same_site(SameSite::Lax)
        .expires(actix_web::cookie::time::OffsetDateTime::UNIX_EPOCH)
        .finish()
}

/// The non-empty values of every cookie called `name`. Read by hand, like the `sid` cookie, so
/// one malformed cookie of another application does not hide it.
fn cookie_values<'r>(req: &'r HttpRequest, name: &'r str) -> impl Iterator<Item = &'r str> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.split_once('='))
        .filter(move |(key, _)| key.trim() == name)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
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
            .append_pair("code_challenge", &pkce_challenge(&record.pkce_verifier))
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

/// A relative redirect as a `Location` value: bytes outside visible ASCII (a space, a non-ASCII
/// character; control characters were refused when it was parsed) percent-encoded, so the
/// header is valid and the browser goes to the same place.
pub fn location_of(redirect: &str) -> String {
    let mut out = String::with_capacity(redirect.len());
    for byte in redirect.bytes() {
        if byte.is_ascii_graphic() {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
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

/// Takes (atomically, once) the live state record of `state`, presented on `route`; 400 when
/// there is none. When the route requires the login's binding (see [`Presentation`]), it is
/// checked first: without it, 403 and the state is left for its owner.
pub(super) async fn take_state(
    req: &HttpRequest,
    actors: &Actors,
    settings: &Settings,
    state: &str,
    route: Presentation,
) -> Result<StateRecord, ApiError> {
    let unknown = || {
        ApiError::BadRequest(
            "`state` is unknown, expired or already used: start the login again at /authorize"
                .into(),
        )
    };
    if state.len() > MAX_STATE_LEN {
        return Err(unknown());
    }
    let record = actors
        .sessions
        .get_state(state)
        .await?
        .filter(|record| record.is_live(actors.clock.now()))
        .ok_or_else(unknown)?;
    let bound = match route {
        Presentation::Callback => true,
        Presentation::Exchange => settings
            .clients
            .get(&record.client)
            .is_none_or(|client| is_own_callback(client, settings)),
    };
    if bound {
        let presented = binding_presented(req, &record, settings);
        if presented != Presented::Valid {
            return Err(unbound(route, presented, &record));
        }
    }
    if actors.sessions.take_state_if(&record).await? {
        Ok(record)
    } else {
        Err(unknown())
    }
}

/// The 403 of a state presented without its login's binding (see the module doc).
fn unbound(route: Presentation, presented: Presented, record: &StateRecord) -> ApiError {
    let why = match presented {
        Presented::Mismatch => "its login cookie does not match",
        _ => "its login cookie is missing",
    };
    tracing::warn!(
        client = %record.client,
        ?route,
        why,
        "a login's state presented without the binding of the browser that started it"
    );
    ApiError::Forbidden(match route {
        Presentation::Callback => format!(
            "this browser did not start the login of this `state` ({why}): start again at \
             /authorize, on the same host as /oauth/callback"
        ),
        Presentation::Exchange => format!(
            "the login of this `state` is bound to the browser that started it ({why}), since \
             client `{}` has this daemon's /oauth/callback as its redirectUrl: let the browser \
             finish it at /oauth/callback",
            record.client
        ),
    })
}

/// Exchanges `code` for the login `record` started, with `client`'s credentials, the same
/// `redirect_uri` and the stored PKCE verifier; the ID token must carry the stored nonce.
pub(super) async fn exchange(
    client: &SelectedClient,
    record: &StateRecord,
    code: String,
    actors: &Actors,
) -> Result<Session, ApiError> {
    let login = CodeLogin {
        client: client.name.as_str().to_owned(),
        code: SecretString::from(code),
        redirect_uri: client.settings.redirect_url.clone(),
        code_verifier: SecretString::from(record.pkce_verifier.clone()),
        nonce: record.nonce.clone(),
    };
    match actors.logins.code(login).await {
        Ok(session) => {
            tracing::info!(
                client = %client.name,
                sub = %session.sub,
                "user logged in (authorization code)"
            );
            Ok(session)
        }
        Err(TokenError::IdToken(IdTokenError::NonceMismatch)) => {
            tracing::warn!(client = %client.name, "ID token nonce mismatch in a code exchange");
            Err(ApiError::Forbidden(
                "the ID token's nonce is not the one /authorize sent: the code does not come \
                 from the login this `state` started"
                    .into(),
            ))
        }
        Err(err) => Err(err.into()),
    }
}

/// Starts a browser login: stores a state record and redirects to the tenant's `/authorize`.
#[utoipa::path(
    get,
    path = "/authorize",
    tag = "authentication",
    params(AuthorizeQuery, super::openapi::ClientHeaders, super::openapi::ClientCookie),
    responses(
        (status = 302, description = "to `{auth0Url}/authorize` with `response_type=code`, `client_id`, `redirect_uri`, `scope`, `state`, `nonce`, the PKCE challenge (`S256`) and `audience`, `connection`, `prompt`, `action` when set; sets the cookie binding the login to this browser",
            headers(("Location" = String, description = "the tenant's `/authorize`"), ("Set-Cookie" = String, description = "the login-binding cookie"))),
        (status = 400, body = super::error::ErrorBody, description = "a bad `redirect` (or longer than 2048 bytes), `connection` or `state`"),
        (status = 401, body = super::error::ErrorBody, description = "no client"),
        (status = 429, body = super::error::ErrorBody, description = "too many logins in progress from this end user's IP (`sessions.maxPendingLoginsPerIp`) or in total (`sessions.maxPendingLogins`); `Retry-After` is the seconds until the oldest of them expires",
            headers(("Retry-After" = u64, description = "seconds"))),
        (status = 502, body = super::error::ErrorBody, description = "a `fail-closed` plugin's `map_connection` failed"),
        (status = 503, body = super::error::ErrorBody, description = "the session store is unavailable"),
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
        random_token()
    };
    let ttl = Duration::from_secs(settings.sessions.state_ttl_seconds);
    let binding = BindingSecret::generate();
    let record = StateRecord {
        state,
        client: client.name.as_str().to_owned(),
        redirect: redirect.map(RelativeRedirect::into_string),
        pkce_verifier: random_token(),
        nonce: random_token(),
        binding: binding.hash,
        expires_at: actors.clock.now().saturating_add(ttl),
    };
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
        .cookie(binding_cookie(&record.state, &binding.secret, &settings))
        .finish())
}

/// Where Auth0 sends the browser back (standalone deployments, `redirectUrl` pointing here):
/// exchanges the code, sets the `sid` cookie and redirects to the login's `redirect`.
#[utoipa::path(
    get,
    path = "/oauth/callback",
    tag = "authentication",
    params(CallbackQuery, super::openapi::ClientHeaders, super::openapi::ClientCookie),
    responses(
        (status = 302, description = "to the login's `redirect` (else `/`) with the `sid` cookie; with Auth0's `error`, to the `redirect` with `error` and `error_description` appended",
            headers(("Location" = String), ("Set-Cookie" = String, description = "`sid`, and the cleared binding cookie"))),
        (status = 400, body = super::error::ErrorBody, description = "`state` missing, unknown, expired or used; `code` missing"),
        (status = 401, body = super::error::ErrorBody, description = "the request names another client than the login's"),
        (status = 403, body = super::error::ErrorBody, description = "the browser did not start this login (its binding cookie is missing or does not match; the state stays usable), Auth0 refused the code (PKCE), or the nonce does not match"),
        (status = 429, body = super::error::ErrorBody, description = "Auth0 rate-limited the code exchange", headers(("Retry-After" = u64, description = "seconds to wait"))),
        (status = 502, body = super::error::ErrorBody),
        (status = 503, body = super::error::ErrorBody, description = "the session store is unavailable"),
        (status = 504, body = super::error::ErrorBody),
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
        let record = take_state(&req, &actors, &settings, &state, Presentation::Callback)
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
    let record = take_state(&req, &actors, &settings, &state, Presentation::Callback).await?;
    let client = client.for_session(&record.client)?;
    let session = exchange(&client, &record, code, &actors).await?;
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
    fn the_challenge_is_rfc_7636s_example() {
        // RFC 7636 Appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn random_tokens_are_43_base64url_characters_and_differ() {
        let a = random_token();
        assert_eq!(a.len(), 43);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(a, random_token());
    }

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
    fn locations_are_visible_ascii() {
        assert_eq!(location_of("/café x"), "/caf%C3%A9%20x");
        assert_eq!(location_of("/a?b=%20"), "/a?b=%20");
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
    fn binding_cookies_are_named_after_the_state_without_carrying_it() {
        let name = binding_cookie_name("some-state", false);
        assert!(name.starts_with(BINDING_COOKIE_PREFIX));
        assert_eq!(name.len(), BINDING_COOKIE_PREFIX.len() + 16);
        assert!(!name.contains("some-state"));
        assert_ne!(name, binding_cookie_name("other-state", false));
        assert_eq!(
            binding_cookie_name("some-state", true),
            format!("__Host-{name}"),
            "a Secure cookie gets the __Host- prefix"
        );
    }

    #[test]
    fn binding_cookies_hold_a_fresh_secret_and_records_its_hash() {
        let settings = test_support::settings(test_support::doc());
        let binding = BindingSecret::generate();
        assert_eq!(binding.secret.len(), 43);
        assert_ne!(binding.secret, BindingSecret::generate().secret);
        assert_ne!(binding.hash, binding.secret);
        let cookie = binding_cookie("st", &binding.secret, &settings);
        assert!(cookie.name().starts_with("__Host-"));
        assert_eq!(cookie.value(), binding.secret);
        assert_eq!(cookie.path(), Some("/"));
        assert_eq!(cookie.domain(), None);
        assert_eq!(cookie.secure(), Some(true));
        assert_eq!(cookie.http_only(), Some(true));
    }

    #[test]
    fn a_binding_is_the_secret_whose_hash_the_record_keeps() {
        let settings = test_support::settings(test_support::doc());
        let binding = BindingSecret::generate();
        let record = StateRecord {
            state: "st".into(),
            client: "web".into(),
            redirect: None,
            pkce_verifier: "v".into(),
            nonce: "n".into(),
            binding: binding.hash.clone(),
            expires_at: crate::store::Timestamp::now(),
        };
        let name = binding_cookie_name("st", true);
        let presented = |cookies: &[String]| {
            let mut req = actix_web::test::TestRequest::default();
            for cookie in cookies {
                req = req.append_header(("cookie", cookie.as_str()));
            }
            binding_presented(&req.to_http_request(), &record, &settings)
        };
        assert_eq!(
            presented(&[format!("{name}={}", binding.secret)]),
            Presented::Valid
        );
        assert_eq!(presented(&[]), Presented::Missing);
        assert_eq!(presented(&[format!("{name}=")]), Presented::Missing);
        assert_eq!(presented(&[format!("{name}=1")]), Presented::Mismatch);
        assert_eq!(
            presented(&[format!("{name}={}", binding.hash)]),
            Presented::Mismatch,
            "the hash is no secret"
        );
        // Without the prefix, as a sibling domain could set it.
        let bare = binding_cookie_name("st", false);
        assert_eq!(
            presented(&[format!("{bare}={}", binding.secret)]),
            Presented::Missing
        );
        // A planted cookie beside the real one does not hide it.
        assert_eq!(
            presented(&[format!("{name}=1; {name}={}", binding.secret)]),
            Presented::Valid
        );
        let mut old = record.clone();
        old.binding = String::new();
        let req = actix_web::test::TestRequest::default()
            .append_header(("cookie", format!("{name}=1")))
            .to_http_request();
        assert_eq!(
            binding_presented(&req, &old, &settings),
            Presented::Mismatch,
            "a record without a hash matches nothing"
        );
    }

    #[test]
    fn the_own_callback_is_the_prefixed_oauth_callback_path() {
        let with = |redirect: &str, prefix: &[(&str, &str)]| {
            let mut doc = test_support::doc();
            doc["clients"]["web"]["redirectUrl"] = redirect.into();
            let settings = test_support::settings_env(doc, prefix);
            is_own_callback(&settings.clients["web"], &settings)
        };
        assert!(with("https://auth.example/oauth/callback", &[]));
        assert!(with("http://127.0.0.1:8080/oauth/callback", &[]));
        assert!(
            with("https://app.example/auth/oauth/callback", &[]),
            "behind a proxy path"
        );
        assert!(with(
            "https://app.example/auth/oauth/callback",
            &[("SERVICE_PREFIX", "/auth")]
        ));
        assert!(!with(
            "https://app.example/oauth/callback",
            &[("SERVICE_PREFIX", "/auth")]
        ));
        assert!(!with("https://app.example/web-login/callback", &[]));
        assert!(!with("https://app.example/xoauth/callback", &[]));
        assert!(!with("https://app.example/oauth/callback/x", &[]));
    }

    #[test]
    fn cookies_are_found_among_malformed_neighbours() {
        let req = actix_web::test::TestRequest::default()
            .append_header(("cookie", "broken; a=1"))
            .append_header(("cookie", "b=; c=2; a=3"))
            .to_http_request();
        let values = |name| cookie_values(&req, name).collect::<Vec<_>>();
        assert_eq!(values("a"), ["1", "3"]);
        assert_eq!(values("c"), ["2"]);
        assert!(values("b").is_empty(), "empty");
        assert!(values("d").is_empty());
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
