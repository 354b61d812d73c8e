//! `POST /oauth/token` (SPEC §5): the password grant and the code exchange, answered as token
//! JSON or, for `website` clients, as the `sid` cookie.

use actix_web::http::header::{self, ContentType};
use actix_web::{HttpRequest, HttpResponse, post, web};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa_actix_web::service_config::ServiceConfig;

use super::ApiError;
use super::extract::{
    ApiClient, BrowserAction, CrossSiteCheck, EndUser, SelectedClient, binding_values, location_of,
    required,
};
use super::session_cookie;
use crate::actors::Actors;
use crate::actors::logins::PasswordLogin;
use crate::actors::tokens::TokenError;
use crate::config::{ClientSettings, Settings};
use crate::echo::quoted;
use crate::login::state::{self, Presentation};
use crate::login::{LoginFlow, choose_connection};
use crate::store::{Session, Timestamp};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(token);
}

/// The fields `/oauth/token` reads, from the query string and a form or JSON body (body wins).
/// Unknown fields are ignored; `null` and `""` are absent.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenFields {
    /// `password`, or `authorization_code` (the default when absent).
    pub grant_type: Option<String>,
    pub username: Option<String>,
    #[schema(format = Password)]
    pub password: Option<String>,
    /// A connection of the client's `supportedConnections`.
    pub connection: Option<String>,
    /// The code from Auth0's redirect (code exchange).
    pub code: Option<String>,
    /// The `state` `/authorize` issued (code exchange).
    pub state: Option<String>,
}

impl TokenFields {
    /// Reads the known fields of a JSON object or a form, naming a field of the wrong type.
    fn from_map(map: &serde_json::Map<String, Value>) -> Result<Self, ApiError> {
        let field = |name: &str| match map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::BadRequest(format!(
                "field `{name}` must be a string"
            ))),
        };
        Ok(Self {
            grant_type: field("grant_type")?,
            username: field("username")?,
            password: field("password")?,
            connection: field("connection")?,
            code: field("code")?,
            state: field("state")?,
        })
    }
}

fn form_map(bytes: &[u8]) -> Result<serde_json::Map<String, Value>, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(bytes)
        .map_err(|e| ApiError::BadRequest(format!("malformed form body: {e}")))?;
    // The first occurrence of a field wins, as in most form parsers.
    let mut map = serde_json::Map::new();
    for (k, v) in pairs {
        map.entry(k).or_insert(Value::String(v));
    }
    Ok(map)
}

/// The fields of a request: query string, then the body by its content type.
fn read_fields(req: &HttpRequest, body: &[u8]) -> Result<TokenFields, ApiError> {
    let mut fields = form_map(req.query_string().as_bytes())?;
    if body.is_empty() {
        return TokenFields::from_map(&fields);
    }
    let mime = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let map = match mime.as_str() {
        "application/x-www-form-urlencoded" => form_map(body)?,
        "application/json" => match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(ApiError::BadRequest(
                    "the JSON body must be an object".into(),
                ));
            }
            Err(e) => return Err(ApiError::BadRequest(format!("malformed JSON body: {e}"))),
        },
        other => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "unsupported Content-Type {}: send application/x-www-form-urlencoded or \
                 application/json",
                quoted(other)
            )));
        }
    };
    // The body wins over the query string, field by field; an empty body field does not count.
    for (name, value) in map {
        if !matches!(&value, Value::Null) && value != Value::String(String::new()) {
            fields.insert(name, value);
        }
    }
    TokenFields::from_map(&fields)
}

/// The token JSON of non-`website` clients (SPEC §5).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenAnswer {
    pub refresh_token: String,
    pub access_token: String,
    pub id_token: String,
    /// The access token's expiry, RFC 3339 UTC with 9 fractional digits.
    pub expire_at: String,
}

const EXPIRE_AT_FORMAT: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z"
);

pub fn expire_at(at: Timestamp) -> String {
    at.to_offset_datetime()
        .and_then(|t| t.format(EXPIRE_AT_FORMAT).ok())
        .unwrap_or_default()
}

impl TokenAnswer {
    pub fn of(session: &Session) -> Self {
        Self {
            refresh_token: session.refresh_token.clone().unwrap_or_default(),
            access_token: session.access_token.clone(),
            id_token: session.id_token.clone(),
            expire_at: expire_at(session.access_expires_at),
        }
    }
}

/// The answer to a login or an explicit refresh: the token JSON, or for a `website` client an
/// empty 200 with the `sid` cookie.
pub fn session_answer(
    client: &ClientSettings,
    settings: &Settings,
    session: &Session,
) -> HttpResponse {
    if client.is_website() {
        HttpResponse::Ok()
            .cookie(session_cookie::issue(client, settings, session))
            .finish()
    } else {
        HttpResponse::Ok()
            .content_type(ContentType::json())
            .json(TokenAnswer::of(session))
    }
}

/// Logs a user in: the password grant, or the exchange of the code Auth0's redirect carried.
#[utoipa::path(
    tag = "authentication",
    params(TokenFields, super::openapi::ClientParams),
    request_body(description = "form or JSON; the query string works too, and the body wins",
        content((Option<TokenFields> = "application/x-www-form-urlencoded"), (Option<TokenFields> = "application/json"))),
    responses(
        (status = 200, body = TokenAnswer, description = "token JSON, or an empty body and the `sid` cookie for `website` clients; after a code exchange whose `/authorize` had a `redirect`, also `Location: <redirect>`",
            headers(("Set-Cookie" = String, description = "`sid`, for `website` clients"), ("Location" = String, description = "the login's `redirect`, after a code exchange"))),
        super::openapi::Auth0Failures,
        super::openapi::StoreUnavailable,
        super::openapi::BodyLimits,
        (status = 400, body = super::error::ErrorBody, description = "a missing or malformed field, an unknown `grant_type`, a `connection` not supported, a `state` unknown, expired or used, a malformed body"),
        (status = 401, body = super::error::ErrorBody, description = "no client (an unknown `client-type`, or no valid API key when `apiKeys` are configured)"),
        (status = 403, body = super::error::ErrorBody, description = "Auth0 refused the user; or a `website` client's login from a cross-site page (`Sec-Fetch-Site: cross-site`, or an `Origin` neither this host nor in `server.allowedHosts`); or a code exchange without the login's binding cookie, when the client's `redirectUrl` is this daemon's `/oauth/callback` (the state stays usable)"),
        (status = 415, body = super::error::ErrorBody, description = "a body that is neither a form nor JSON"),
    )
)]
#[post("/oauth/token")]
async fn token(
    req: HttpRequest,
    body: web::Bytes,
    client: ApiClient,
    end_user: EndUser,
    cross_site: CrossSiteCheck,
    settings: web::Data<Settings>,
    actors: web::Data<Actors>,
) -> Result<HttpResponse, ApiError> {
    let fields = read_fields(&req, &body)?;
    let client = client.into_inner();
    // A `website` client's login answers with the `sid` cookie: a page of another site must not
    // plant its own session in the browser (login CSRF). Token clients answer JSON to their caller.
    let login = matches!(
        fields.grant_type.as_deref(),
        None | Some("password" | "authorization_code")
    );
    if login && client.settings.is_website() {
        cross_site.refuse_cross_site(BrowserAction::LogIn)?;
    }
    match fields.grant_type.as_deref() {
        Some("password") => password(fields, client, end_user, &settings, &actors).await,
        None | Some("authorization_code") => {
            code_exchange(&req, fields, client, &settings, &actors).await
        }
        Some(other) => Err(ApiError::BadRequest(format!(
            "unsupported grant_type {}: use `password` or `authorization_code`",
            quoted(other)
        ))),
    }
}

/// The code exchange of the login-site deployment: the site got `code` and `state` from Auth0's
/// redirect and passes them on (SPEC §5). The state must be one `/authorize` issued for this
/// client, live and unused; it is consumed even when issued for another client (see
/// [`crate::login::state`]). A state whose client has the daemon's own callback as `redirectUrl`
/// also needs the login's binding cookie (else 403, the state kept). The answer is a login's,
/// plus `Location: <redirect>` when the login carried one.
async fn code_exchange(
    req: &HttpRequest,
    fields: TokenFields,
    client: SelectedClient,
    settings: &Settings,
    actors: &Actors,
) -> Result<HttpResponse, ApiError> {
    let code = required(fields.code, "code")?;
    let state = required(fields.state, "state")?;
    let binding = binding_values(req, &state, settings);
    let record =
        state::take_state(actors, settings, &state, Presentation::Exchange, binding).await?;
    if record.client != client.name.as_str() {
        tracing::warn!(
            client = %client.name,
            issued_for = %record.client,
            "a state issued for another client was presented (and consumed)"
        );
        return Err(ApiError::BadRequest(format!(
            "`state` was issued for another client than `{}`",
            client.name
        )));
    }
    let session = state::exchange(
        actors,
        client.name.as_str(),
        client.settings.clone(),
        &record,
        code,
    )
    .await?;
    let mut answer = session_answer(&client.settings, settings, &session);
    if let Some(redirect) = &record.redirect {
        let location = location_of(redirect);
        let value = header::HeaderValue::from_str(&location).map_err(ApiError::internal)?;
        answer.headers_mut().insert(header::LOCATION, value);
    }
    Ok(answer)
}

async fn password(
    fields: TokenFields,
    client: SelectedClient,
    end_user: EndUser,
    settings: &Settings,
    actors: &Actors,
) -> Result<HttpResponse, ApiError> {
    let username = required(fields.username, "username")?;
    let password = SecretString::from(required(fields.password, "password")?);
    // A connection the request named that Auth0 does not know is the caller's mistake (400);
    // one from the config or a plugin is the daemon's (502).
    let named_connection = fields.connection.is_some();
    let connection = choose_connection(
        &actors.plugins,
        client.name.as_str(),
        &client.settings,
        fields.connection.as_deref(),
        LoginFlow::Password,
        Some(&username),
    )
    .await?;
    let session = actors
        .logins
        .password(PasswordLogin {
            client: client.name.as_str().to_owned(),
            settings: client.settings.clone(),
            username,
            password,
            connection,
            end_user_ip: end_user.ip,
        })
        .await
        .map_err(|err| match &err {
            TokenError::Auth0(auth0) if named_connection => {
                ApiError::from_auth0_for_named_connection(auth0)
            }
            _ => ApiError::from(err),
        })?;
    tracing::info!(client = %client.name, sub = %session.sub, "user logged in");
    Ok(session_answer(&client.settings, settings, &session))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expire_at_has_nine_fractional_digits() {
        let at = Timestamp::from_millis(1_626_424_104_568);
        assert_eq!(expire_at(at), "2021-07-16T08:28:24.568000000Z");
    }
}
