//! The control API under `/__emulator/` (SPEC §10): seed, inspect and block users; inject faults and the
//! 429 mode; change token lifetimes and job speed; rotate the signing key; read the request log. It is not
//! part of Auth0, is never logged, faulted or rate-limited, and answers its errors as `{"message": "..."}`.
//! The README's "Authentication API and control API" section documents every route.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    observe::{Fault, RateLimit, route_matches},
    seed::{Seed, SeedUser},
    state::{Settings, Tenant, User, now, timestamp},
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/__emulator")
            .route("/health", web::get().to(health))
            .route("/reset", web::post().to(reset))
            .route("/seed", web::post().to(seed))
            .route("/users", web::get().to(list_users))
            .route("/users", web::post().to(add_user))
            .route("/users/{id}", web::get().to(get_user))
            .route("/users/{id}/block", web::post().to(block_user))
            .route("/users/{id}/unblock", web::post().to(unblock_user))
            .route(
                "/users/{id}/login-challenge",
                web::put().to(login_challenge),
            )
            .route("/brute-force", web::delete().to(clear_brute_force))
            .route("/faults", web::get().to(list_faults))
            .route("/faults", web::post().to(add_fault))
            .route("/faults", web::delete().to(clear_faults))
            .route("/faults/{id}", web::delete().to(remove_fault))
            .route("/rate-limit", web::get().to(get_rate_limit))
            .route("/rate-limit", web::put().to(set_rate_limit))
            .route("/rate-limit", web::delete().to(clear_rate_limit))
            .route("/settings", web::get().to(get_settings))
            .route("/settings", web::patch().to(patch_settings))
            .route("/keys", web::get().to(keys))
            .route("/keys/rotate", web::post().to(rotate_keys))
            .route("/requests", web::get().to(requests))
            .route("/requests", web::delete().to(clear_requests))
            .route("/emails", web::get().to(emails))
            .route("/refresh-tokens", web::get().to(refresh_tokens))
            .configure(crate::backchannel::control),
    );
}

fn ok(body: &Value) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body.to_string())
}

fn problem(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .body(json!({"message": message}).to_string())
}

/// Parses a JSON body, `{}` when empty.
fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, HttpResponse> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(bytes)
        .map_err(|error| problem(StatusCode::BAD_REQUEST, &format!("invalid body: {error}")))
}

/// Percent-decodes a path segment (`auth0%7C1` → `auth0|1`; a `+` stays a `+`, emails have them).
fn decode_segment(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((high * 16 + low) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `{id}` of a users route: a `user_id` or an email, from the raw path so encoded `|` and `+` survive.
fn user_key(req: &HttpRequest) -> String {
    let raw = req.match_info().get("id").unwrap_or_default();
    decode_segment(raw)
}

async fn health(tenant: web::Data<Tenant>) -> HttpResponse {
    ok(&json!({"status": "ok", "baseUrl": tenant.base_url()}))
}

/// Clears faults, the 429 mode, the request log and brute-force counters (users and keys are kept).
async fn reset(tenant: web::Data<Tenant>) -> HttpResponse {
    tenant.observer.clear_faults(None);
    tenant.observer.set_rate_limit(None);
    tenant.observer.clear_requests();
    tenant.grants().failures.clear();
    HttpResponse::NoContent().finish()
}

async fn seed(bytes: web::Bytes, tenant: web::Data<Tenant>) -> HttpResponse {
    let seed: Seed = match body(&bytes) {
        Ok(seed) => seed,
        Err(response) => return response,
    };
    match tenant.reseed(&seed) {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(error) => problem(StatusCode::BAD_REQUEST, &error.to_string()),
    }
}

async fn list_users(tenant: web::Data<Tenant>) -> HttpResponse {
    let users: Vec<Value> = tenant.data().users().map(User::to_json).collect();
    ok(&Value::Array(users))
}

async fn add_user(bytes: web::Bytes, tenant: web::Data<Tenant>) -> HttpResponse {
    let user: SeedUser = match body(&bytes) {
        Ok(user) => user,
        Err(response) => return response,
    };
    match tenant.add_seed_user(&user) {
        Ok(id) => {
            let json = tenant
                .data()
                .user(&id)
                .map(User::to_json)
                .unwrap_or(Value::Null);
            HttpResponse::Created()
                .content_type("application/json")
                .body(json.to_string())
        }
        Err(error) => problem(StatusCode::BAD_REQUEST, &error.to_string()),
    }
}

fn no_user(key: &str) -> HttpResponse {
    problem(
        StatusCode::NOT_FOUND,
        &format!("no user has the id or email {key}"),
    )
}

async fn get_user(req: HttpRequest, tenant: web::Data<Tenant>) -> HttpResponse {
    let key = user_key(&req);
    match tenant.data().find_user_anywhere(&key) {
        Some(user) => ok(&user.to_json()),
        None => no_user(&key),
    }
}

fn set_blocked(req: &HttpRequest, tenant: &Tenant, blocked: bool) -> HttpResponse {
    let key = user_key(req);
    let mut data = tenant.data();
    let Some(user_id) = data.find_user_anywhere(&key).map(|u| u.user_id.clone()) else {
        return no_user(&key);
    };
    let Some(user) = data.user_mut(&user_id) else {
        return no_user(&key);
    };
    user.blocked = blocked;
    user.updated_at = now();
    ok(&user.to_json())
}

async fn block_user(req: HttpRequest, tenant: web::Data<Tenant>) -> HttpResponse {
    set_blocked(&req, &tenant, true)
}

async fn unblock_user(req: HttpRequest, tenant: web::Data<Tenant>) -> HttpResponse {
    set_blocked(&req, &tenant, false)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChallengeBody {
    challenge: Option<String>,
}

/// Makes the user's next correct passwords answer `mfa_required` or `password_leaked` (null clears).
async fn login_challenge(
    req: HttpRequest,
    bytes: web::Bytes,
    tenant: web::Data<Tenant>,
) -> HttpResponse {
    let request: ChallengeBody = match body(&bytes) {
        Ok(request) => request,
        Err(response) => return response,
    };
    let key = user_key(&req);
    let Some(user_id) = tenant
        .data()
        .find_user_anywhere(&key)
        .map(|u| u.user_id.clone())
    else {
        return no_user(&key);
    };
    let mut grants = tenant.grants();
    match request.challenge.as_deref() {
        None => {
            grants.login_challenges.remove(&user_id);
        }
        Some(kind @ ("mfa_required" | "password_leaked")) => {
            grants.login_challenges.insert(user_id, kind.to_string());
        }
        Some(other) => {
            return problem(
                StatusCode::BAD_REQUEST,
                &format!("challenge must be mfa_required, password_leaked or null, not {other}"),
            );
        }
    }
    HttpResponse::NoContent().finish()
}

async fn clear_brute_force(tenant: web::Data<Tenant>) -> HttpResponse {
    tenant.grants().failures.clear();
    HttpResponse::NoContent().finish()
}

async fn list_faults(tenant: web::Data<Tenant>) -> HttpResponse {
    ok(&json!(tenant.observer.faults()))
}

async fn add_fault(bytes: web::Bytes, tenant: web::Data<Tenant>) -> HttpResponse {
    let fault: Fault = match body(&bytes) {
        Ok(fault) => fault,
        Err(response) => return response,
    };
    if !fault.route.starts_with('/') {
        return problem(
            StatusCode::BAD_REQUEST,
            "route must be a path starting with /",
        );
    }
    if let Some(status) = fault.status
        && StatusCode::from_u16(status).is_err()
    {
        return problem(
            StatusCode::BAD_REQUEST,
            &format!("{status} is not an HTTP status"),
        );
    }
    if fault.status.is_none() && fault.delay_ms == 0 && !fault.drop_connection {
        return problem(
            StatusCode::BAD_REQUEST,
            "a fault needs a status, a delayMs or dropConnection",
        );
    }
    let fault = tenant.observer.add_fault(fault);
    HttpResponse::Created()
        .content_type("application/json")
        .body(json!(fault).to_string())
}

async fn clear_faults(tenant: web::Data<Tenant>) -> HttpResponse {
    ok(&json!({"removed": tenant.observer.clear_faults(None)}))
}

async fn remove_fault(path: web::Path<u64>, tenant: web::Data<Tenant>) -> HttpResponse {
    match tenant.observer.clear_faults(Some(path.into_inner())) {
        0 => problem(StatusCode::NOT_FOUND, "no such fault"),
        removed => ok(&json!({"removed": removed})),
    }
}

async fn get_rate_limit(tenant: web::Data<Tenant>) -> HttpResponse {
    ok(&json!(tenant.observer.rate_limit()))
}

async fn set_rate_limit(bytes: web::Bytes, tenant: web::Data<Tenant>) -> HttpResponse {
    let mode: RateLimit = match body(&bytes) {
        Ok(mode) => mode,
        Err(response) => return response,
    };
    if mode.routes.iter().any(|route| !route.starts_with('/')) {
        return problem(
            StatusCode::BAD_REQUEST,
            "routes must be paths starting with /",
        );
    }
    ok(&json!(tenant.observer.set_rate_limit(Some(mode))))
}

async fn clear_rate_limit(tenant: web::Data<Tenant>) -> HttpResponse {
    tenant.observer.set_rate_limit(None);
    HttpResponse::NoContent().finish()
}

async fn get_settings(tenant: web::Data<Tenant>) -> HttpResponse {
    ok(&json!(tenant.data().settings))
}

/// Merges the given keys into the settings (unknown keys and bad values are a 400).
async fn patch_settings(bytes: web::Bytes, tenant: web::Data<Tenant>) -> HttpResponse {
    let patch: serde_json::Map<String, Value> = match body(&bytes) {
        Ok(patch) => patch,
        Err(response) => return response,
    };
    let mut data = tenant.data();
    let mut merged = json!(data.settings);
    if let Value::Object(current) = &mut merged {
        current.extend(patch);
    }
    let settings: Settings = match serde_json::from_value(merged) {
        Ok(settings) => settings,
        Err(error) => {
            return problem(
                StatusCode::BAD_REQUEST,
                &format!("invalid settings: {error}"),
            );
        }
    };
    if !(settings.job_seconds.is_finite() && settings.job_seconds >= 0.0) {
        return problem(
            StatusCode::BAD_REQUEST,
            "jobSeconds must be a non-negative number",
        );
    }
    data.settings = settings.clone();
    drop(data);
    tenant.observer.set_capacity(settings.request_log_capacity);
    ok(&json!(settings))
}

fn key_summary(tenant: &Tenant) -> Value {
    let keys = tenant.keys();
    let kids: Vec<&str> = keys.published().iter().map(|k| k.kid()).collect();
    json!({"current": kids.first(), "published": kids})
}

async fn keys(tenant: web::Data<Tenant>) -> HttpResponse {
    ok(&key_summary(&tenant))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RotateBody {
    #[serde(default = "yes")]
    keep_previous: bool,
}

fn yes() -> bool {
    true
}

/// Makes a new key current. With `keepPrevious` (default true) the old keys stay in the JWKS.
async fn rotate_keys(bytes: web::Bytes, tenant: web::Data<Tenant>) -> HttpResponse {
    let request: RotateBody = match body(&bytes) {
        Ok(request) => request,
        Err(response) => return response,
    };
    let previous = tenant.signing_key().kid().to_string();
    // Key generation can take a while when the process pool is empty: keep it off the async worker.
    let rotating = tenant.clone();
    let rotated = web::block(move || rotating.rotate_signing_key(request.keep_previous)).await;
    if rotated.is_err() {
        return problem(StatusCode::INTERNAL_SERVER_ERROR, "key rotation failed");
    }
    let mut summary = key_summary(&tenant);
    summary["previous"] = json!(previous);
    ok(&summary)
}

#[derive(Debug, Deserialize)]
struct RequestFilter {
    path: Option<String>,
    method: Option<String>,
    since: Option<u64>,
}

/// The request log, oldest first; `?path=` (exact or `prefix*`), `?method=`, `?since=<seq>` filter it.
async fn requests(filter: web::Query<RequestFilter>, tenant: web::Data<Tenant>) -> HttpResponse {
    let entries: Vec<_> = tenant
        .observer
        .requests()
        .into_iter()
        .filter(|r| {
            filter
                .path
                .as_deref()
                .is_none_or(|p| route_matches(p, &r.path))
        })
        .filter(|r| {
            filter
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(&r.method))
        })
        .filter(|r| filter.since.is_none_or(|since| r.seq > since))
        .collect();
    ok(&json!(entries))
}

async fn clear_requests(tenant: web::Data<Tenant>) -> HttpResponse {
    tenant.observer.clear_requests();
    HttpResponse::NoContent().finish()
}

async fn emails(tenant: web::Data<Tenant>) -> HttpResponse {
    ok(&json!(tenant.data().emails))
}

/// Every refresh-token family: its client, user, scope, current token, size and why it ended.
async fn refresh_tokens(tenant: web::Data<Tenant>) -> HttpResponse {
    let grants = tenant.grants();
    let mut families: Vec<Value> = grants
        .families
        .iter()
        .map(|(id, family)| {
            let at = |epoch: i64| {
                time::OffsetDateTime::from_unix_timestamp(epoch)
                    .map(timestamp)
                    .unwrap_or_default()
            };
            json!({
                "familyId": id,
                "clientId": family.client_id,
                "userId": family.user_id,
                "scope": family.scope,
                "audience": family.audience,
                "current": family.current,
                "tokens": family.tokens.len(),
                "ended": family.ended,
                "createdAt": at(family.created_at),
                "expiresAt": at(family.expires_at),
            })
        })
        .collect();
    families.sort_by(|a, b| a["createdAt"].as_str().cmp(&b["createdAt"].as_str()));
    ok(&Value::Array(families))
}

#[cfg(test)]
mod tests {
    use super::decode_segment;

    #[test]
    fn segments_decode_like_paths() {
        assert_eq!(decode_segment("auth0%7C1"), "auth0|1");
        assert_eq!(decode_segment("a+b%40c.d"), "a+b@c.d");
        assert_eq!(decode_segment("bad%zz%"), "bad%zz%");
    }
}
