//! OpenID Connect Back-Channel Logout, as Auth0 does it: when an Auth0 session ends, a logout token is
//! POSTed to the back-channel logout URLs of the applications that took part in it.
//!
//! - An Auth0 session (`sid`) is opened by a login through `/authorize` without the SSO cookie and joined by
//!   one that presents it ([`crate::authentication::authorize`]); each application that got a code in it
//!   takes part ([`joined`]).
//! - It ends at `GET /v2/logout` (the browser's SSO cookie) and at the Management API's
//!   `DELETE /api/v2/users/{id}/sessions` (every session of the user, scope `delete:sessions`): then each
//!   taking part application with URLs gets, per URL, `POST <url>` with the form
//!   `logout_token=<JWT>` (`application/x-www-form-urlencoded`), in the background.
//! - The logout token ([DOC] Auth0 "OIDC Back-Channel Logout", [INF] exact claims): RS256 by the tenant key,
//!   `{"iss", "aud": <client_id>, "sub", "sid", "iat", "exp": iat + 120, "jti", "events":
//!   {"http://schemas.openid.net/event/backchannel-logout": {}}}`.
//! - Control routes (`/__emulator/`): `PUT /clients/{client_id}/backchannel-logout-urls` `{"urls": [...]}`
//!   (a daemon's port is known only once it listens); `POST /logout-token` `{"client_id", "sub"?, "sid"?,
//!   "claims"?: {name: value | null}}` mints a token (`null` removes a claim), `"send": true` also POSTs it
//!   to the client's URLs; `GET /backchannel-deliveries` lists what was POSTed and the answers.
//!
//! The seed's clients take `"backchannelLogoutUrls": [...]`. Tokens go to `http://` and `https://` URLs
//! alike; a URL that does not answer is recorded with status 0.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, PoisonError};

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::management::{Authorized, error::MgmtError, no_content, store};
use crate::state::{Tenant, epoch, random_token};

/// The `events` member of a logout token.
pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// A logout token's lifetime ([INF]).
const LOGOUT_TOKEN_SECONDS: i64 = 120;
/// How many deliveries the log keeps.
const DELIVERY_LOG: usize = 1_000;

/// Per-tenant state: who took part in each Auth0 session, and the deliveries made.
#[derive(Default)]
pub struct Backchannel {
    participants: Mutex<HashMap<String, BTreeSet<String>>>,
    deliveries: Mutex<Vec<Value>>,
    http: std::sync::OnceLock<reqwest::Client>,
}

impl Backchannel {
    fn http(&self) -> reqwest::Client {
        self.http
            .get_or_init(|| {
                reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(10))
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .unwrap_or_default()
            })
            .clone()
    }
}

/// Records that `client_id` got a code in the Auth0 session `sid`.
pub fn joined(tenant: &Tenant, sid: &str, client_id: &str) {
    let state = tenant.extension::<Backchannel>();
    state
        .participants
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(sid.to_string())
        .or_default()
        .insert(client_id.to_string());
}

/// A logout token for `client_id` with `sub` and `sid`, `overrides` applied (`null` removes a claim).
pub fn logout_token(
    tenant: &Tenant,
    client_id: &str,
    sub: Option<&str>,
    sid: Option<&str>,
    overrides: &Map<String, Value>,
) -> String {
    let now = epoch();
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(tenant.issuer()));
    claims.insert("aud".into(), json!(client_id));
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now + LOGOUT_TOKEN_SECONDS));
    claims.insert("jti".into(), json!(random_token(16)));
    claims.insert("events".into(), json!({BACKCHANNEL_EVENT: {}}));
    if let Some(sub) = sub {
        claims.insert("sub".into(), json!(sub));
    }
    if let Some(sid) = sid {
        claims.insert("sid".into(), json!(sid));
    }
    for (name, value) in overrides {
        if value.is_null() {
            claims.remove(name);
        } else {
            claims.insert(name.clone(), value.clone());
        }
    }
    tenant.sign(&Value::Object(claims))
}

/// The Auth0 session `sid` of `user_id` ended: tells the applications that took part in it.
pub fn session_ended(tenant: &web::Data<Tenant>, user_id: &str, sid: &str) {
    let state = tenant.extension::<Backchannel>();
    let clients = state
        .participants
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(sid)
        .unwrap_or_default();
    for client_id in clients {
        let token = logout_token(tenant, &client_id, Some(user_id), Some(sid), &Map::new());
        deliver(tenant, &client_id, token);
    }
}

/// POSTs `token` to each back-channel URL of `client_id`, in the background.
fn deliver(tenant: &web::Data<Tenant>, client_id: &str, token: String) {
    let urls = tenant
        .data()
        .client(client_id)
        .map(|c| c.backchannel_logout_urls.clone())
        .unwrap_or_default();
    let state = tenant.extension::<Backchannel>();
    for url in urls {
        let http = state.http();
        let state = state.clone();
        let token = token.clone();
        let client_id = client_id.to_string();
        actix_web::rt::spawn(async move {
            let sent = http
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("logout_token={token}"))
                .send()
                .await;
            let status = sent.map(|r| r.status().as_u16()).unwrap_or(0);
            let mut log = state
                .deliveries
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if log.len() >= DELIVERY_LOG {
                log.remove(0);
            }
            log.push(json!({"client_id": client_id, "url": url, "status": status, "at": epoch()}));
        });
    }
}

/// Ends every Auth0 session of `user_id` (the SSO cookies stop working) and tells the applications.
pub fn end_user_sessions(tenant: &web::Data<Tenant>, user_id: &str) -> usize {
    let ended: Vec<String> = {
        let mut grants = tenant.grants();
        let cookies: Vec<String> = grants
            .sessions
            .iter()
            .filter(|(_, (user, _))| user == user_id)
            .map(|(cookie, _)| cookie.clone())
            .collect();
        cookies
            .into_iter()
            .filter_map(|cookie| grants.sessions.remove(&cookie).map(|(_, sid)| sid))
            .collect()
    };
    for sid in &ended {
        session_ended(tenant, user_id, sid);
    }
    ended.len()
}

/// Mounts the Management API route (inside `/api/v2`).
pub fn management(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/users/{id}/sessions",
        web::delete().to(delete_user_sessions),
    );
}

/// `DELETE /api/v2/users/{id}/sessions`: 204, every Auth0 session of the user ended.
async fn delete_user_sessions(
    auth: Authorized,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, MgmtError> {
    auth.require(&["delete:sessions"])?;
    let tenant = store::tenant(&req).ok_or_else(MgmtError::invalid_token)?;
    if tenant.data().user(&id).is_none() {
        return Err(MgmtError::new(
            StatusCode::NOT_FOUND,
            Some("inexistent_user"),
            "The user does not exist.",
        ));
    }
    end_user_sessions(&tenant, &id);
    Ok(no_content())
}

/// Mounts the control routes (inside `/__emulator`).
pub fn control(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/clients/{client_id}/backchannel-logout-urls",
        web::put().to(set_urls),
    )
    .route("/logout-token", web::post().to(mint))
    .route("/backchannel-deliveries", web::get().to(deliveries));
}

fn problem(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({"message": message}))
}

#[derive(Deserialize)]
struct Urls {
    urls: Vec<String>,
}

async fn set_urls(
    tenant: web::Data<Tenant>,
    client_id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let Ok(urls) = serde_json::from_slice::<Urls>(&body) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "the body must be {\"urls\": [...]}",
        );
    };
    if let Some(bad) = urls.urls.iter().find(|u| url::Url::parse(u).is_err()) {
        return problem(StatusCode::BAD_REQUEST, &format!("not a URL: {bad}"));
    }
    let mut data = tenant.data();
    let Some(client) = data.clients.iter_mut().find(|c| c.client_id == *client_id) else {
        return problem(StatusCode::NOT_FOUND, "no such client");
    };
    client.backchannel_logout_urls = urls.urls;
    HttpResponse::Ok()
        .json(json!({"client_id": client.client_id, "urls": client.backchannel_logout_urls}))
}

#[derive(Deserialize)]
struct MintRequest {
    client_id: String,
    sub: Option<String>,
    sid: Option<String>,
    #[serde(default)]
    claims: Map<String, Value>,
    #[serde(default)]
    send: bool,
}

async fn mint(tenant: web::Data<Tenant>, body: web::Bytes) -> HttpResponse {
    let request = match serde_json::from_slice::<MintRequest>(&body) {
        Ok(request) => request,
        Err(error) => return problem(StatusCode::BAD_REQUEST, &format!("invalid body: {error}")),
    };
    let token = logout_token(
        &tenant,
        &request.client_id,
        request.sub.as_deref(),
        request.sid.as_deref(),
        &request.claims,
    );
    if request.send {
        deliver(&tenant, &request.client_id, token.clone());
    }
    HttpResponse::Ok().json(json!({"logout_token": token}))
}

async fn deliveries(tenant: web::Data<Tenant>) -> HttpResponse {
    HttpResponse::Ok().json(delivery_log(&tenant))
}

/// The deliveries made so far (oldest first), as `GET /__emulator/backchannel-deliveries` lists
/// them.
pub fn delivery_log(tenant: &Tenant) -> Vec<Value> {
    tenant
        .extension::<Backchannel>()
        .deliveries
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}
