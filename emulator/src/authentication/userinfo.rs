//! `GET /userinfo` (wire reference §1.5): the profile of the access token's user, by the token's scope.

use actix_web::{HttpRequest, HttpResponse, http::header, web};
use serde_json::Value;

use super::{has_scope, token::user_claims};
use crate::state::{Tenant, epoch};

/// Why a token is refused: the `WWW-Authenticate` error description.
enum Refusal {
    Missing,
    Invalid,
    Expired,
}

/// `401` with the plain-text body `Unauthorized` and `WWW-Authenticate` ([OBS] react-native-auth0#241,
/// Auth0.Android#629 for the expired case; the other descriptions are [INF]).
fn unauthorized(refusal: Refusal) -> HttpResponse {
    let challenge = match refusal {
        Refusal::Missing => r#"Bearer realm="Users""#.to_string(),
        Refusal::Invalid => r#"Bearer realm="Users", error="invalid_token", error_description="Invalid token""#.into(),
        Refusal::Expired => {
            r#"Bearer realm="Users", error="invalid_token", error_description="The token has expired""#.into()
        }
    };
    HttpResponse::Unauthorized()
        .insert_header((header::WWW_AUTHENTICATE, challenge))
        .content_type("text/plain; charset=utf-8")
        .body("Unauthorized")
}

pub async fn userinfo(req: HttpRequest, tenant: web::Data<Tenant>) -> HttpResponse {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_string());
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return unauthorized(Refusal::Missing);
    };
    let now = epoch();
    let (user_id, scope) = if token.split('.').count() == 3 {
        let Ok(claims) = tenant.verify(&token) else {
            return unauthorized(Refusal::Invalid);
        };
        // Only tokens issued with `openid` carry the `/userinfo` audience (wire reference §1.8).
        let userinfo = tenant.userinfo_audience();
        let for_userinfo = match claims.get("aud") {
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(userinfo.as_str())),
            Some(Value::String(aud)) => *aud == userinfo,
            _ => false,
        };
        if !for_userinfo
            || claims.get("iss").and_then(Value::as_str) != Some(tenant.issuer().as_str())
        {
            return unauthorized(Refusal::Invalid);
        }
        if claims
            .get("exp")
            .and_then(Value::as_i64)
            .is_none_or(|exp| exp <= now)
        {
            return unauthorized(Refusal::Expired);
        }
        let text = |key: &str| {
            claims
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        (text("sub"), text("scope"))
    } else {
        let found = tenant.grants().opaque.get(&token).cloned();
        let Some(found) = found else {
            return unauthorized(Refusal::Invalid);
        };
        if found.expires_at <= now {
            return unauthorized(Refusal::Expired);
        }
        (found.user_id, found.scope)
    };
    if !has_scope(&scope, "openid") {
        return unauthorized(Refusal::Invalid);
    }
    let (user, namespace) = {
        let data = tenant.data();
        (
            data.user(&user_id).cloned(),
            data.custom_claims_namespace.clone(),
        )
    };
    // A deleted user's token no longer describes anyone ([INF]).
    let Some(user) = user else {
        return unauthorized(Refusal::Invalid);
    };
    // The current profile, not a snapshot: Auth0 reads the user at each call. The namespaced claims the
    // post-login Action adds to the ID token are returned too ([INF]).
    let claims = user_claims(&user, &scope, namespace.as_deref());
    HttpResponse::Ok()
        .content_type("application/json; charset=utf-8")
        .body(Value::Object(claims).to_string())
}
