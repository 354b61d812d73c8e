//! The Authentication API (wire reference §1 and §7): `/authorize` and its login form, `/oauth/token`,
//! `/oauth/revoke`, `/dbconnections/change_password`, `/userinfo`, `/v2/logout`, discovery and JWKS.
//!
//! Where the reference leaves a behaviour open, the code says so with the reference's tag (`[INF]` for a
//! guess) next to the choice.

pub mod authorize;
pub mod dbconnections;
pub mod logout;
pub mod revoke;
pub mod token;
pub mod userinfo;

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use serde_json::{Value, json};

use crate::state::{Client, Tenant, TenantData};

/// The `password-realm` extension grant (wire reference §1.3).
pub const PASSWORD_REALM_GRANT: &str = "http://auth0.com/oauth/grant-type/password-realm";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/authorize", web::get().to(authorize::authorize))
        .route("/u/login", web::post().to(authorize::login_form_submitted))
        .route("/oauth/token", web::post().to(token::token))
        .route("/oauth/revoke", web::post().to(revoke::revoke))
        .route(
            "/dbconnections/change_password",
            web::post().to(dbconnections::change_password),
        )
        .route("/userinfo", web::get().to(userinfo::userinfo))
        .route("/userinfo", web::post().to(userinfo::userinfo))
        .route("/v2/logout", web::get().to(logout::logout))
        .route(
            "/.well-known/openid-configuration",
            web::get().to(discovery),
        )
        .route("/.well-known/jwks.json", web::get().to(jwks));
}

/// Request parameters from a form or JSON body (or a query string), with `null` and `""` meaning absent
/// (auth0-python 4.x sends unset fields as `null`, wire reference §1.1).
#[derive(Debug, Default, Clone)]
pub(crate) struct Params(HashMap<String, String>);

impl Params {
    pub fn from_query(query: &str) -> Self {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
        Self(pairs.into_iter().collect())
    }

    /// Parses a body as JSON (`application/json`, or a body starting with `{` and no content type) or as a form.
    pub fn from_body(req: &HttpRequest, body: &[u8]) -> Result<Self, HttpResponse> {
        let content_type = req
            .headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let looks_like_json = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        if content_type.contains("json") || (content_type.is_empty() && looks_like_json) {
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(Self::default());
            }
            let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) else {
                // Auth0's answer to a malformed JSON body is not documented ([INF]).
                return Err(oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Invalid JSON body",
                ));
            };
            let map = object
                .into_iter()
                .filter_map(|(key, value)| {
                    let value = match value {
                        Value::Null => return None,
                        Value::String(text) => text,
                        other => other.to_string(),
                    };
                    Some((key, value))
                })
                .collect();
            return Ok(Self(map));
        }
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).map_err(|_| {
            oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Invalid form body",
            )
        })?;
        Ok(Self(pairs.into_iter().collect()))
    }

    /// The parameter, unless absent, `null` or `""`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|value| !value.is_empty())
    }
}

/// The OAuth error body `{"error", "error_description"}` (wire reference §1.1), `application/json`.
pub(crate) fn oauth_error(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    json_response(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .insert_header(("cache-control", "no-store"))
        .insert_header(("pragma", "no-cache"))
        .body(body.to_string())
}

/// `400 invalid_request "Missing required parameter: <name>"` ([DOC] OAS example, wire reference §1.3).
pub(crate) fn missing(name: &str) -> HttpResponse {
    oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        &format!("Missing required parameter: {name}"),
    )
}

/// Client credentials as sent: `client_id`/`client_secret` in the body, or HTTP Basic.
#[derive(Debug, Default, Clone)]
pub(crate) struct Credentials {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

impl Credentials {
    pub fn from_request(req: &HttpRequest, params: &Params) -> Self {
        let mut credentials = Self {
            client_id: params.get("client_id").map(str::to_string),
            client_secret: params.get("client_secret").map(str::to_string),
        };
        if let Some((id, secret)) = basic_auth(req) {
            // RFC 6749 §2.3.1: with both, the header authenticates; the body's client_id must not contradict it.
            if credentials.client_id.is_none()
                || credentials.client_id.as_deref() == Some(id.as_str())
            {
                credentials.client_id = Some(id);
                credentials.client_secret = Some(secret);
            }
        }
        credentials
    }
}

/// `Authorization: Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
fn basic_auth(req: &HttpRequest) -> Option<(String, String)> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_decode(id), form_decode(secret)))
}

fn form_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("v={text}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

/// How client authentication failed, rendered per endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientAuthError {
    MissingClientId,
    Refused,
}

/// Finds the client and checks its secret. A public client (no secret in the seed) needs none; a
/// confidential one must send its secret, in the body or with Basic.
pub(crate) fn authenticate_client(
    data: &TenantData,
    credentials: &Credentials,
) -> Result<Client, ClientAuthError> {
    let client_id = credentials
        .client_id
        .as_deref()
        .ok_or(ClientAuthError::MissingClientId)?;
    let client = data.client(client_id).ok_or(ClientAuthError::Refused)?;
    match (&client.client_secret, credentials.client_secret.as_deref()) {
        (None, _) => Ok(client.clone()),
        (Some(expected), Some(given))
            if constant_time_eq(expected.as_bytes(), given.as_bytes()) =>
        {
            Ok(client.clone())
        }
        _ => Err(ClientAuthError::Refused),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The end user's IP as Auth0 would see it: `auth0-forwarded-for` when sent (Auth0 trusts it when the
/// application has "Trust Token Endpoint IP Header", assumed on here), else the peer.
pub(crate) fn end_user_ip(req: &HttpRequest) -> String {
    req.headers()
        .get("auth0-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(',').next().unwrap_or_default().trim().to_string())
        .filter(|v| !v.is_empty())
        .or_else(|| req.peer_addr().map(|addr| addr.ip().to_string()))
        .unwrap_or_default()
}

/// Scope words, deduplicated, in order.
pub(crate) fn normalize_scope(scope: &str) -> String {
    let mut words: Vec<&str> = Vec::new();
    for word in scope.split_whitespace() {
        if !words.contains(&word) {
            words.push(word);
        }
    }
    words.join(" ")
}

pub(crate) fn has_scope(scope: &str, word: &str) -> bool {
    scope.split_whitespace().any(|w| w == word)
}

/// Whether `audience` is an API of the tenant: a seed API or the Management API.
pub(crate) fn audience_exists(tenant: &Tenant, data: &TenantData, audience: &str) -> bool {
    audience == tenant.management_audience() || data.apis.iter().any(|api| api == audience)
}

async fn discovery(tenant: web::Data<Tenant>) -> HttpResponse {
    let base = tenant.base_url();
    // The documented sample (wire reference §1.7) with this tenant's URLs; `issuer` ends with `/`.
    let body = json!({
        "issuer": tenant.issuer(),
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "device_authorization_endpoint": format!("{base}/oauth/device/code"),
        "userinfo_endpoint": format!("{base}/userinfo"),
        "mfa_challenge_endpoint": format!("{base}/mfa/challenge"),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "registration_endpoint": format!("{base}/oidc/register"),
        "revocation_endpoint": format!("{base}/oauth/revoke"),
        "end_session_endpoint": format!("{base}/oidc/logout"),
        "scopes_supported": ["openid", "profile", "offline_access", "name", "given_name", "family_name", "nickname",
            "email", "email_verified", "picture", "created_at", "identities", "phone", "address"],
        "response_types_supported": ["code", "token", "id_token", "code token", "code id_token", "token id_token",
            "code token id_token"],
        "code_challenge_methods_supported": ["S256", "plain"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["HS256", "RS256", "PS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "claims_supported": ["aud", "auth_time", "created_at", "email", "email_verified", "exp", "family_name",
            "given_name", "iat", "identities", "iss", "name", "nickname", "phone_number", "picture", "sub"],
        "request_uri_parameter_supported": false,
        "request_parameter_supported": false,
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "RS384", "PS256", "PS384", "ES256", "ES384"],
    });
    HttpResponse::Ok()
        .content_type("application/json; charset=utf-8")
        .body(body.to_string())
}

async fn jwks(tenant: web::Data<Tenant>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json; charset=utf-8")
        .body(tenant.jwks().to_string())
}

/// A minimal HTML page (Auth0 shows its errors to browsers as pages, not JSON).
pub(crate) fn html_page(status: StatusCode, title: &str, body: &str) -> HttpResponse {
    HttpResponse::build(status).content_type("text/html; charset=utf-8").body(format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{}</title></head><body>{body}</body></html>",
        escape_html(title)
    ))
}

/// An error page like Auth0's "Oops!, something went wrong" with `<error>: <description>`.
pub(crate) fn error_page(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    html_page(
        status,
        "Error",
        &format!(
            "<h1>Oops!, something went wrong</h1><p class=\"error\">{}: {}</p>",
            escape_html(error),
            escape_html(description)
        ),
    )
}

pub(crate) fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        assert_eq!(
            normalize_scope(" openid  email openid offline_access "),
            "openid email offline_access"
        );
        assert!(has_scope("openid email", "email"));
        assert!(!has_scope("openid emails", "email"));
    }

    #[test]
    fn form_decoding_of_basic_parts() {
        assert_eq!(form_decode("a%3Ab"), "a:b");
        assert_eq!(form_decode("plain"), "plain");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
