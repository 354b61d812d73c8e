//! `POST /oauth/token` (wire reference §1.3, §1.4, §1.8, §2.1): every grant the daemon uses, with Auth0's
//! error codes, statuses and messages, and the tokens Auth0 issues.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use serde_json::{Map, Value, json};

use super::{
    ClientAuthError, Credentials, PASSWORD_REALM_GRANT, Params, audience_exists,
    authenticate_client, end_user_ip, has_scope, json_response, missing, normalize_scope,
    oauth_error,
};
use crate::state::{
    Client, MANAGEMENT_SCOPES, OpaqueToken, RefreshFamily, Settings, Tenant, User, epoch, new_id,
    now, random_token, timestamp,
};

/// Scope granted to a password grant that asks for none: what Auth0 answered in the go-auth0 recording
/// ([OBS] wire reference §1.3; Auth0 grants "all scopes defined for the audience").
const DEFAULT_PASSWORD_SCOPE: &str = "openid profile email address phone";

pub async fn token(req: HttpRequest, body: web::Bytes, tenant: web::Data<Tenant>) -> HttpResponse {
    let params = match Params::from_body(&req, &body) {
        Ok(params) => params,
        Err(response) => return response,
    };
    let Some(grant_type) = params.get("grant_type") else {
        return missing("grant_type");
    };
    if !matches!(
        grant_type,
        "authorization_code"
            | "password"
            | PASSWORD_REALM_GRANT
            | "refresh_token"
            | "client_credentials"
    ) {
        // [DOC] OAS example; the exact Auth0 wording is unverified (wire reference §1.3).
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Grant type not supported",
        );
    }
    let credentials = Credentials::from_request(&req, &params);
    let authenticated = authenticate_client(&tenant.data(), &credentials);
    let client = match authenticated {
        Ok(client) => client,
        // Auth0's answer to a missing client_id is not documented ([INF]).
        Err(ClientAuthError::MissingClientId) => return missing("client_id"),
        // [OBS] for a bad secret (wire reference §1.3); an unknown client_id is answered alike ([INF]).
        Err(ClientAuthError::Refused) => return unauthorized_client_credentials(),
    };
    let public_client_credentials =
        grant_type == "client_credentials" && client.client_secret.is_none();
    if !client.allows_grant(grant_type) || public_client_credentials {
        return grant_not_allowed(grant_type);
    }
    match grant_type {
        "password" | PASSWORD_REALM_GRANT => {
            password_grant(&req, &params, &tenant, &client, grant_type)
        }
        "refresh_token" => refresh_grant(&params, &tenant, &client),
        "client_credentials" => client_credentials_grant(&params, &tenant, &client),
        _ => authorization_code_grant(&params, &tenant, &client),
    }
}

/// `401 access_denied "Unauthorized"`: client authentication failed ([OBS] node-auth0#582).
pub(crate) fn unauthorized_client_credentials() -> HttpResponse {
    oauth_error(StatusCode::UNAUTHORIZED, "access_denied", "Unauthorized")
}

/// `403 unauthorized_client` with Auth0's `error_uri` ([OBS] wire reference §1.3).
fn grant_not_allowed(grant: &str) -> HttpResponse {
    json_response(
        StatusCode::FORBIDDEN,
        &json!({
            "error": "unauthorized_client",
            "error_description": format!("Grant type '{grant}' not allowed for the client."),
            "error_uri": "https://auth0.com/docs/clients/client-grant-types",
        }),
    )
}

fn wrong_credentials() -> HttpResponse {
    oauth_error(
        StatusCode::FORBIDDEN,
        "invalid_grant",
        "Wrong email or password.",
    )
}

fn invalid_refresh_token() -> HttpResponse {
    oauth_error(
        StatusCode::FORBIDDEN,
        "invalid_grant",
        "Unknown or invalid refresh token.",
    )
}

fn invalid_code() -> HttpResponse {
    oauth_error(
        StatusCode::FORBIDDEN,
        "invalid_grant",
        "Invalid authorization code",
    )
}

/// `access_denied "Service not found: <audience>"`: an audience no API of the tenant has ([OBS] in
/// /authorize redirects of several public issues, e.g. auth0/lock#842; the status on `/oauth/token` is [INF]).
pub(crate) fn service_not_found(audience: &str) -> HttpResponse {
    oauth_error(
        StatusCode::FORBIDDEN,
        "access_denied",
        &format!("Service not found: {audience}"),
    )
}

/// What a login or refresh hands to the token minting.
pub(crate) struct Grant<'a> {
    pub client_id: &'a str,
    pub user: &'a User,
    pub scope: &'a str,
    pub audience: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub session_id: Option<&'a str>,
    /// The access token's `gty` claim (absent for the code flow).
    pub gty: Option<&'a str>,
}

/// The claims describing the user for `scope` (ID token and `/userinfo`): `sub`, then `profile`, `email` and
/// `phone` claims, then the namespaced metadata claims of the upstream post-login Action (SPEC §10).
pub(crate) fn user_claims(user: &User, scope: &str, namespace: Option<&str>) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("sub".into(), Value::String(user.user_id.clone()));
    let mut put = |key: &str, value: &Option<String>| {
        if let Some(value) = value {
            claims.insert(key.into(), Value::String(value.clone()));
        }
    };
    if has_scope(scope, "profile") {
        put("name", &user.name);
        put("nickname", &user.nickname);
        put("given_name", &user.given_name);
        put("family_name", &user.family_name);
        put("picture", &user.picture);
        put("updated_at", &Some(timestamp(user.updated_at)));
    }
    if has_scope(scope, "email") {
        put("email", &user.email);
        if user.email.is_some() {
            claims.insert("email_verified".into(), Value::Bool(user.email_verified));
        }
    }
    if has_scope(scope, "phone") && user.phone_number.is_some() {
        claims.insert(
            "phone_number".into(),
            Value::from(user.phone_number.clone()),
        );
        claims.insert(
            "phone_verified".into(),
            Value::Bool(user.phone_verified.unwrap_or(false)),
        );
    }
    if let Some(namespace) = namespace {
        // api.idToken.setCustomClaim(`${NS}app_metadata`, ...) and `${NS}user_metadata` (mia reference §7).
        claims.insert(
            format!("{namespace}app_metadata"),
            Value::Object(user.app_metadata.clone()),
        );
        claims.insert(
            format!("{namespace}user_metadata"),
            Value::Object(user.user_metadata.clone()),
        );
    }
    claims
}

/// Mints the access token (a JWT for an API audience, else an opaque token good at `/userinfo` only, as
/// Auth0 does without an audience [INF] wire reference §1.8) and, with `openid`, the ID token.
pub(crate) fn mint(
    tenant: &Tenant,
    grant: &Grant<'_>,
    settings: &Settings,
    namespace: Option<&str>,
) -> Map<String, Value> {
    let now = epoch();
    let expires_in = settings.access_token_seconds;
    let openid = has_scope(grant.scope, "openid");
    let access_token = match grant.audience {
        Some(audience) => {
            let aud = if openid {
                json!([audience, tenant.userinfo_audience()])
            } else {
                json!(audience)
            };
            let mut claims = json!({
                "iss": tenant.issuer(),
                "sub": grant.user.user_id,
                "aud": aud,
                "iat": now,
                "exp": now + expires_in as i64,
                "scope": grant.scope,
                "azp": grant.client_id,
            });
            if let Some(gty) = grant.gty {
                claims["gty"] = json!(gty);
            }
            if settings.unique_access_tokens {
                claims["jti"] = json!(random_token(16));
            }
            tenant.sign(&claims)
        }
        None => {
            let token = random_token(32);
            let mut grants = tenant.grants();
            grants.maybe_sweep(now);
            grants.opaque.insert(
                token.clone(),
                OpaqueToken {
                    user_id: grant.user.user_id.clone(),
                    scope: grant.scope.to_string(),
                    expires_at: now + expires_in as i64,
                },
            );
            token
        }
    };
    let mut response = Map::new();
    response.insert("access_token".into(), Value::String(access_token));
    if openid {
        let mut claims = user_claims(grant.user, grant.scope, namespace);
        claims.insert("iss".into(), json!(tenant.issuer()));
        claims.insert("aud".into(), json!(grant.client_id));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now + settings.id_token_seconds as i64));
        if let Some(nonce) = grant.nonce {
            claims.insert("nonce".into(), json!(nonce));
        }
        if let Some(session_id) = grant.session_id {
            claims.insert("sid".into(), json!(session_id));
        }
        let claims = Value::Object(claims);
        let hs256_secret = tenant
            .data()
            .clients
            .iter()
            .find(|c| c.client_id == grant.client_id)
            .and_then(|c| c.id_token_hs256_secret.clone());
        let id_token = match hs256_secret {
            Some(secret) => crate::jwt::sign_hs256(secret.as_bytes(), &claims),
            None => tenant.sign(&claims),
        };
        response.insert("id_token".into(), Value::String(id_token));
    }
    response.insert("scope".into(), json!(grant.scope));
    response.insert("expires_in".into(), json!(expires_in));
    response.insert("token_type".into(), json!("Bearer"));
    response
}

/// Starts a refresh-token family (a login with `offline_access`); returns the first token.
pub(crate) fn start_family(tenant: &Tenant, grant: &Grant<'_>, settings: &Settings) -> String {
    let now = epoch();
    let token = format!("v1.{}", random_token(48));
    let family_id = new_id("rtf_", 16);
    let mut grants = tenant.grants();
    grants
        .refresh_tokens
        .insert(token.clone(), family_id.clone());
    grants.families.insert(
        family_id,
        RefreshFamily {
            client_id: grant.client_id.to_string(),
            user_id: grant.user.user_id.clone(),
            scope: grant.scope.to_string(),
            audience: grant.audience.map(str::to_string),
            session_id: grant.session_id.map(str::to_string),
            created_at: now,
            expires_at: now + settings.refresh_token_seconds as i64,
            current: token.clone(),
            previous: None,
            tokens: vec![token.clone()],
            ended: None,
        },
    );
    token
}

/// The answer to a successful login: tokens, plus a refresh token when `offline_access` was granted and the
/// client may use the `refresh_token` grant (Auth0 silently omits it otherwise, [DOC] §1.3).
pub(crate) fn login_response(tenant: &Tenant, client: &Client, grant: &Grant<'_>) -> HttpResponse {
    let (settings, namespace) = {
        let data = tenant.data();
        (data.settings.clone(), data.custom_claims_namespace.clone())
    };
    let mut response = mint(tenant, grant, &settings, namespace.as_deref());
    if has_scope(grant.scope, "offline_access") && client.allows_grant("refresh_token") {
        let refresh_token = start_family(tenant, grant, &settings);
        response.insert("refresh_token".into(), Value::String(refresh_token));
    }
    json_response(StatusCode::OK, &Value::Object(response))
}

/// Records a successful login on the user (`last_login`, `logins_count`, `last_ip`).
pub(crate) fn record_login(tenant: &Tenant, user_id: &str, ip: &str) {
    let mut data = tenant.data();
    if let Some(user) = data.user_mut(user_id) {
        user.last_login = Some(now());
        user.logins_count += 1;
        if !ip.is_empty() {
            user.last_ip = Some(ip.to_string());
        }
    }
}

/// Why a username/password pair did not log in.
pub(crate) enum LoginRefused {
    WrongCredentials,
    Blocked,
    TooManyAttempts,
    Challenge(String),
}

impl LoginRefused {
    /// The `/oauth/token` answer.
    pub fn token_response(&self) -> HttpResponse {
        match self {
            Self::WrongCredentials => wrong_credentials(),
            // [OBS] auth0/docs PR #4767; [INF] for the password grants (wire reference §1.3).
            Self::Blocked => {
                oauth_error(StatusCode::UNAUTHORIZED, "unauthorized", "user is blocked")
            }
            // [DOC] brute-force protection (wire reference §1.3).
            Self::TooManyAttempts => oauth_error(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                "Your account has been blocked after multiple consecutive login attempts. We've sent you a \
                 notification via your preferred contact method with instructions on how to unblock it.",
            ),
            Self::Challenge(kind) if kind == "mfa_required" => json_response(
                StatusCode::FORBIDDEN,
                &json!({"error": "mfa_required", "error_description": "Multifactor authentication required",
                        "mfa_token": format!("Fe26.2**{}", random_token(24))}),
            ),
            Self::Challenge(_) => oauth_error(
                StatusCode::UNAUTHORIZED,
                "password_leaked",
                "This login attempt has been blocked because the password you're using was previously disclosed \
                 through a data breach (not in this application).",
            ),
        }
    }
}

/// Checks a username (email or username) and password in `connection`, with brute-force counting per user
/// and IP. Returns the user on success.
pub(crate) fn check_password(
    tenant: &Tenant,
    connection: &str,
    login: &str,
    password: &str,
    ip: &str,
) -> Result<User, LoginRefused> {
    let (found, threshold) = {
        let data = tenant.data();
        (
            data.find_user(connection, login).cloned(),
            data.settings.brute_force_threshold,
        )
    };
    let Some(user) = found else {
        return Err(LoginRefused::WrongCredentials);
    };
    let key = (user.user_id.clone(), ip.to_string());
    let mut grants = tenant.grants();
    let failures = grants.failures.get(&key).copied().unwrap_or(0);
    if threshold > 0 && failures >= threshold {
        return Err(LoginRefused::TooManyAttempts);
    }
    if user.password.as_deref() != Some(password) {
        grants.failures.insert(key, failures + 1);
        return Err(LoginRefused::WrongCredentials);
    }
    grants.failures.remove(&key);
    if let Some(challenge) = grants.login_challenges.get(&user.user_id) {
        return Err(LoginRefused::Challenge(challenge.clone()));
    }
    drop(grants);
    if user.blocked {
        return Err(LoginRefused::Blocked);
    }
    Ok(user)
}

fn password_grant(
    req: &HttpRequest,
    params: &Params,
    tenant: &Tenant,
    client: &Client,
    grant_type: &str,
) -> HttpResponse {
    let Some(username) = params.get("username") else {
        return missing("username");
    };
    let Some(password) = params.get("password") else {
        return missing("password");
    };
    let audience = params.get("audience");
    let connection = {
        let data = tenant.data();
        if let Some(audience) = audience
            && !audience_exists(tenant, &data, audience)
        {
            return service_not_found(audience);
        }
        if grant_type == PASSWORD_REALM_GRANT {
            let Some(realm) = params.get("realm") else {
                return missing("realm");
            };
            if data.connection_by_name(realm).is_none() {
                // [DOC] for /co/authenticate, [INF] that /oauth/token matches (wire reference §1.3).
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    &format!("Unknown realm {realm}."),
                );
            }
            realm.to_string()
        } else {
            match &data.default_directory {
                Some(directory) => directory.clone(),
                // [OBS] third-party probe (wire reference §1.3).
                None => {
                    return oauth_error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "server_error",
                        "Authorization server not configured with default connection.",
                    );
                }
            }
        }
    };
    let ip = end_user_ip(req);
    let user = match check_password(tenant, &connection, username, password, &ip) {
        Ok(user) => user,
        Err(refused) => return refused.token_response(),
    };
    record_login(tenant, &user.user_id, &ip);
    let scope = normalize_scope(params.get("scope").unwrap_or(DEFAULT_PASSWORD_SCOPE));
    let grant = Grant {
        client_id: &client.client_id,
        user: &user,
        scope: &scope,
        audience,
        nonce: None,
        session_id: None,
        gty: Some("password"),
    };
    login_response(tenant, client, &grant)
}

fn authorization_code_grant(params: &Params, tenant: &Tenant, client: &Client) -> HttpResponse {
    let Some(code) = params.get("code") else {
        return missing("code");
    };
    let now = epoch();
    let record = tenant.grants().codes.remove(code);
    let Some(record) = record.filter(|r| r.expires_at > now && r.client_id == client.client_id)
    else {
        return invalid_code();
    };
    if let Some(expected) = &record.redirect_uri {
        match params.get("redirect_uri") {
            // [OBS] auth0-samples/auth0-python-web-app#53.
            None => {
                return oauth_error(
                    StatusCode::FORBIDDEN,
                    "invalid_grant",
                    "redirect_uri is required if it was included in the authorization request.",
                );
            }
            // Auth0's wording for a different redirect_uri is not documented ([INF]).
            Some(given) if given != expected => {
                return oauth_error(
                    StatusCode::FORBIDDEN,
                    "invalid_grant",
                    "Invalid redirect_uri",
                );
            }
            Some(_) => {}
        }
    }
    if let Some((challenge, method)) = &record.code_challenge {
        let verified = params
            .get("code_verifier")
            .is_some_and(|verifier| verify_pkce(verifier, challenge, method));
        if !verified {
            // [OBS] go-auth0 tests; a missing verifier is answered alike ([INF]).
            return oauth_error(
                StatusCode::FORBIDDEN,
                "invalid_grant",
                "Failed to verify code verifier",
            );
        }
    }
    let user = tenant.data().user(&record.user_id).cloned();
    let Some(user) = user else {
        return invalid_code();
    };
    if user.blocked {
        return LoginRefused::Blocked.token_response();
    }
    let grant = Grant {
        client_id: &client.client_id,
        user: &user,
        scope: &record.scope,
        audience: record.audience.as_deref(),
        nonce: record.nonce.as_deref(),
        session_id: Some(&record.session_id),
        gty: None,
    };
    login_response(tenant, client, &grant)
}

/// RFC 7636: `S256` is `BASE64URL(SHA256(verifier)) == challenge`; `plain` compares as is. The verifier must
/// be 43 to 128 unreserved characters.
pub(crate) fn verify_pkce(verifier: &str, challenge: &str, method: &str) -> bool {
    use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
    use sha2::{Digest as _, Sha256};
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if !well_formed {
        return false;
    }
    match method {
        "S256" => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge,
        "plain" => verifier == challenge,
        _ => false,
    }
}

enum RefreshCheck {
    Valid {
        family_id: String,
        family: Box<RefreshFamily>,
    },
    Invalid,
}

/// Looks a presented refresh token up; a rotated token presented again (outside the overlap period) is reuse
/// and ends its whole family, the newest token included ([DOC] refresh-token rotation, wire reference §1.4).
fn check_refresh(tenant: &Tenant, presented: &str, client_id: &str, leeway: u64) -> RefreshCheck {
    let now = epoch();
    let mut grants = tenant.grants();
    let Some(family_id) = grants.refresh_tokens.get(presented).cloned() else {
        return RefreshCheck::Invalid;
    };
    let Some(family) = grants.families.get(&family_id) else {
        return RefreshCheck::Invalid;
    };
    if family.ended.is_some() || family.expires_at <= now || family.client_id != client_id {
        return RefreshCheck::Invalid;
    }
    if family.current != presented {
        let within_overlap = leeway > 0
            && family
                .previous
                .as_ref()
                .is_some_and(|(token, at)| token == presented && now - at <= leeway as i64);
        if !within_overlap {
            grants.end_family(&family_id, "reuse detected");
            return RefreshCheck::Invalid;
        }
    }
    let family = Box::new(family.clone());
    RefreshCheck::Valid { family_id, family }
}

fn refresh_grant(params: &Params, tenant: &Tenant, client: &Client) -> HttpResponse {
    let Some(presented) = params.get("refresh_token") else {
        return missing("refresh_token");
    };
    let (settings, namespace) = {
        let data = tenant.data();
        (data.settings.clone(), data.custom_claims_namespace.clone())
    };
    let (family_id, family) = match check_refresh(
        tenant,
        presented,
        &client.client_id,
        settings.refresh_token_leeway_seconds,
    ) {
        RefreshCheck::Valid { family_id, family } => (family_id, family),
        RefreshCheck::Invalid => return invalid_refresh_token(),
    };
    let user = tenant.data().user(&family.user_id).cloned();
    let Some(user) = user else {
        // Deleting a user revokes their refresh tokens.
        tenant.grants().end_family(&family_id, "user deleted");
        return invalid_refresh_token();
    };
    if user.blocked {
        // [OBS] ionic demo-authconnect-auth0#4 (wire reference §1.3).
        return oauth_error(StatusCode::FORBIDDEN, "invalid_grant", "user is blocked");
    }
    let scope = match params.get("scope") {
        None => family.scope.clone(),
        Some(requested) => {
            if requested
                .split_whitespace()
                .any(|word| !has_scope(&family.scope, word))
            {
                // The scope may only narrow ([DOC] §1.4); Auth0's wording for a wider one is not documented ([INF]).
                return oauth_error(
                    StatusCode::FORBIDDEN,
                    "invalid_scope",
                    "The requested scope is not a subset of the originally granted scope.",
                );
            }
            normalize_scope(requested)
        }
    };
    let rotated = if client.refresh_token_rotation {
        let mut grants = tenant.grants();
        let now = epoch();
        // Re-check under the lock: a concurrent exchange of the same token made this one a reuse.
        let still_valid = grants.families.get(&family_id).is_some_and(|f| {
            f.ended.is_none()
                && (f.current == presented
                    || f.previous
                        .as_ref()
                        .is_some_and(|(token, _)| token == presented))
        });
        if !still_valid {
            grants.end_family(&family_id, "reuse detected");
            return invalid_refresh_token();
        }
        let token = format!("v1.{}", random_token(48));
        grants
            .refresh_tokens
            .insert(token.clone(), family_id.clone());
        if let Some(f) = grants.families.get_mut(&family_id) {
            let replaced = std::mem::replace(&mut f.current, token.clone());
            // Within the overlap period the previous token keeps its place; otherwise the replaced one takes it.
            if replaced == presented {
                f.previous = Some((replaced, now));
            }
            f.tokens.push(token.clone());
        }
        Some(token)
    } else {
        None
    };
    let grant = Grant {
        client_id: &client.client_id,
        user: &user,
        scope: &scope,
        audience: family.audience.as_deref(),
        nonce: None,
        session_id: family.session_id.as_deref(),
        gty: Some("refresh_token"),
    };
    let mut response = mint(tenant, &grant, &settings, namespace.as_deref());
    if let Some(token) = rotated {
        response.insert("refresh_token".into(), Value::String(token));
    }
    json_response(StatusCode::OK, &Value::Object(response))
}

fn client_credentials_grant(params: &Params, tenant: &Tenant, client: &Client) -> HttpResponse {
    let Some(audience) = params.get("audience") else {
        // [INF]: Auth0's answer without an audience and no tenant default audience.
        return oauth_error(
            StatusCode::FORBIDDEN,
            "access_denied",
            "No audience parameter was provided, and no default audience has been configured",
        );
    };
    let management = audience == tenant.management_audience();
    let (known, seconds) = {
        let data = tenant.data();
        let seconds = if management {
            data.settings.management_token_seconds
        } else {
            data.settings.access_token_seconds
        };
        (audience_exists(tenant, &data, audience), seconds)
    };
    if !known {
        // The emulator has no client grants: an audience no API has is the one way a client lacks a grant for
        // it, answered with the documented body ([OBS] ruby-auth0#610, wire reference §1.3). A real tenant may
        // answer `Service not found: <audience>` for an identifier that no API has ([INF]).
        return json_response(
            StatusCode::FORBIDDEN,
            &json!({
                "error": "access_denied",
                "error_description": format!(
                    "Client is not authorized to access \"{audience}\". You need to create a \"client-grant\" \
                     associated to this API. See: https://auth0.com/docs/api/v2#!/Client_Grants/post_client_grants"
                ),
            }),
        );
    }
    let scope = if management {
        match params.get("scope") {
            // A narrower scope may be asked for (handy to test `insufficient_scope`).
            Some(requested) => normalize_scope(
                &requested
                    .split_whitespace()
                    .filter(|s| MANAGEMENT_SCOPES.contains(s))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            None => MANAGEMENT_SCOPES.join(" "),
        }
    } else {
        normalize_scope(params.get("scope").unwrap_or_default())
    };
    let now = epoch();
    let access_token = tenant.sign(&json!({
        "iss": tenant.issuer(),
        "sub": format!("{}@clients", client.client_id),
        "aud": audience,
        "iat": now,
        "exp": now + seconds as i64,
        "scope": scope,
        "gty": "client-credentials",
        "azp": client.client_id,
    }));
    json_response(
        StatusCode::OK,
        &json!({"access_token": access_token, "expires_in": seconds, "scope": scope, "token_type": "Bearer"}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce() {
        // RFC 7636 appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(verify_pkce(verifier, challenge, "S256"));
        assert!(!verify_pkce(verifier, challenge, "plain"));
        assert!(!verify_pkce("short", "short", "plain"));
        assert!(!verify_pkce(verifier, challenge, "S512"));
    }
}
