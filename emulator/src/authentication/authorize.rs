//! `GET /authorize` (wire reference §1.2): the authorization-code flow with PKCE, a small HTML login form
//! posted to `POST /u/login`, the non-interactive `login_hint` + `password` shortcut for tests, an SSO
//! cookie (`auth0`) so `prompt=none` works after a login, and Auth0's error redirects.
//!
//! Until the redirect URI is known to be allowed, errors are HTML pages (Auth0 never redirects to an
//! unverified URI); after that, they are redirects with `error`, `error_description` and `state`.

use actix_web::{
    HttpRequest, HttpResponse,
    cookie::{Cookie, SameSite},
    http::{StatusCode, header},
    web,
};

use super::{Params, audience_exists, error_page, escape_html, html_page, normalize_scope};
use crate::{
    authentication::token::{LoginRefused, check_password, record_login},
    state::{AuthorizationCode, LoginTransaction, Tenant, User, epoch, random_token},
};

/// Name of the emulator's SSO cookie (Auth0's session cookie is also called `auth0`).
pub const SSO_COOKIE: &str = "auth0";

/// How long the login form's transaction lives (Auth0's is not documented; [INF]).
const TRANSACTION_SECONDS: i64 = 600;

/// A validated `/authorize` request, kept while the login form is shown.
#[derive(Debug, Clone, Default)]
pub struct AuthorizeRequest {
    pub client_id: String,
    /// Where the answer goes: the `redirect_uri` sent, else the client's first callback.
    pub redirect_uri: String,
    /// Whether `redirect_uri` was sent (then `/oauth/token` must get the same one).
    pub redirect_uri_sent: bool,
    pub scope: String,
    pub state: Option<String>,
    pub audience: Option<String>,
    /// The connection the user logs in with (the request's, else the default directory).
    pub connection: String,
    pub nonce: Option<String>,
    /// `(code_challenge, code_challenge_method)`.
    pub code_challenge: Option<(String, String)>,
    /// `query` (default) or `form_post`.
    pub response_mode: String,
}

impl AuthorizeRequest {
    /// The answer carrying `params` to the client: a redirect, or an auto-submitting form for `form_post`.
    fn answer(&self, mut params: Vec<(&str, String)>) -> HttpResponse {
        if let Some(state) = &self.state {
            params.push(("state", state.clone()));
        }
        if self.response_mode == "form_post" {
            let inputs: String = params
                .iter()
                .map(|(name, value)| {
                    format!(
                        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                        escape_html(name),
                        escape_html(value)
                    )
                })
                .collect();
            return html_page(
                StatusCode::OK,
                "Submit This Form",
                &format!(
                    "<form method=\"post\" action=\"{}\">{inputs}<noscript><button>Continue</button></noscript></form>\
                     <script>document.forms[0].submit()</script>",
                    escape_html(&self.redirect_uri)
                ),
            );
        }
        let query = serde_urlencoded::to_string(&params).unwrap_or_default();
        let separator = if self.redirect_uri.contains('?') {
            '&'
        } else {
            '?'
        };
        HttpResponse::Found()
            .insert_header((
                header::LOCATION,
                format!("{}{separator}{query}", self.redirect_uri),
            ))
            .finish()
    }

    /// The error redirect Auth0 sends once the redirect URI is trusted.
    fn error(&self, error: &str, description: &str) -> HttpResponse {
        self.answer(vec![
            ("error", error.to_string()),
            ("error_description", description.to_string()),
        ])
    }
}

/// Parses and checks an `/authorize` query; `Err` is the answer to send.
fn validate(tenant: &Tenant, params: &Params) -> Result<AuthorizeRequest, HttpResponse> {
    let data = tenant.data();
    let Some(client_id) = params.get("client_id") else {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: client_id",
        ));
    };
    let Some(client) = data.client(client_id) else {
        // Auth0 shows an error page for an unknown client ([INF] wire reference §1.2).
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("Unknown client: {client_id}"),
        ));
    };
    let (redirect_uri, redirect_uri_sent) = match params.get("redirect_uri") {
        Some(uri) => {
            let allowed = url::Url::parse(uri).is_ok()
                && (client.callbacks.is_empty() || client.callbacks.iter().any(|cb| cb == uri));
            if !allowed {
                // The page Auth0 shows ([OBS] in public issues, e.g. auth0-samples/auth0-nodejs-webapp-sample#80);
                // callbacks are checked only when the client lists some (SPEC §10).
                return Err(html_page(
                    StatusCode::BAD_REQUEST,
                    "Callback URL mismatch",
                    "<h1>Callback URL mismatch.</h1><p class=\"error\">The provided redirect_uri is not in the list of \
                     allowed callback URLs.</p><p>Please go to the Application Settings page and make sure you are \
                     sending a valid callback url from your application.</p>",
                ));
            }
            (uri.to_string(), true)
        }
        None => match client.callbacks.first() {
            Some(first) => (first.clone(), false),
            None => {
                return Err(error_page(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Missing required parameter: redirect_uri",
                ));
            }
        },
    };
    let mut request = AuthorizeRequest {
        client_id: client_id.to_string(),
        redirect_uri,
        redirect_uri_sent,
        // Without `scope`, `openid` ([INF]).
        scope: normalize_scope(params.get("scope").unwrap_or("openid")),
        state: params.get("state").map(str::to_string),
        audience: params.get("audience").map(str::to_string),
        connection: String::new(),
        nonce: params.get("nonce").map(str::to_string),
        code_challenge: None,
        response_mode: params.get("response_mode").unwrap_or("query").to_string(),
    };
    if !matches!(request.response_mode.as_str(), "query" | "form_post") {
        let mode = std::mem::replace(&mut request.response_mode, "query".into());
        // The emulator serves `query` and `form_post` only ([INF] wording).
        return Err(request.error(
            "invalid_request",
            &format!("Unsupported response_mode: {mode}"),
        ));
    }
    match params.get("response_type") {
        None => {
            return Err(request.error(
                "invalid_request",
                "Missing required parameter: response_type",
            ));
        }
        Some("code") => {}
        // Implicit and hybrid flows are out of scope; the wording is [INF].
        Some(other) => {
            return Err(request.error(
                "unsupported_response_type",
                &format!("Unsupported response type: {other}"),
            ));
        }
    }
    if !client.allows_grant("authorization_code") {
        return Err(request.error(
            "unauthorized_client",
            "Grant type 'authorization_code' not allowed for the client.",
        ));
    }
    if let Some(audience) = &request.audience
        && !audience_exists(tenant, &data, audience)
    {
        return Err(request.error("access_denied", &format!("Service not found: {audience}")));
    }
    request.connection = match params.get("connection") {
        Some(name) if data.connection_by_name(name).is_some() => name.to_string(),
        // [INF] wording.
        Some(_) => return Err(request.error("invalid_request", "the connection is not enabled")),
        None => match &data.default_directory {
            Some(directory) => directory.clone(),
            None => return Err(request.error("invalid_request", "the connection is not enabled")),
        },
    };
    if let Some(challenge) = params.get("code_challenge") {
        // RFC 7636 §4.3: no method means `plain`. Discovery lists `S256` and `plain` (wire reference §1.2).
        let method = params.get("code_challenge_method").unwrap_or("plain");
        if !matches!(method, "S256" | "plain") {
            return Err(request.error(
                "invalid_request",
                &format!("Unsupported code_challenge_method: {method}"),
            ));
        }
        request.code_challenge = Some((challenge.to_string(), method.to_string()));
    }
    Ok(request)
}

/// The user of a live SSO session, when the browser has one.
fn sso_user(tenant: &Tenant, req: &HttpRequest) -> Option<(String, User)> {
    let cookie = req.cookie(SSO_COOKIE)?;
    let (user_id, _) = tenant.grants().sessions.get(cookie.value()).cloned()?;
    let user = tenant.data().user(&user_id).cloned()?;
    Some((cookie.value().to_string(), user))
}

/// Issues the code and redirects, (re)setting the SSO cookie.
fn complete(
    tenant: &Tenant,
    request: &AuthorizeRequest,
    user: &User,
    sso: Option<String>,
) -> HttpResponse {
    let now = epoch();
    let code_seconds = tenant.data().settings.authorization_code_seconds;
    let code = random_token(24);
    let cookie_value = {
        let mut grants = tenant.grants();
        grants.maybe_sweep(now);
        let existing = sso.and_then(|cookie| {
            let (user_id, sid) = grants.sessions.get(&cookie)?.clone();
            (user_id == user.user_id).then_some((cookie, sid))
        });
        let (cookie, sid) = existing.unwrap_or_else(|| {
            let cookie = random_token(24);
            let sid = random_token(16);
            grants
                .sessions
                .insert(cookie.clone(), (user.user_id.clone(), sid.clone()));
            (cookie, sid)
        });
        grants.codes.insert(
            code.clone(),
            AuthorizationCode {
                client_id: request.client_id.clone(),
                user_id: user.user_id.clone(),
                redirect_uri: request
                    .redirect_uri_sent
                    .then(|| request.redirect_uri.clone()),
                scope: request.scope.clone(),
                audience: request.audience.clone(),
                nonce: request.nonce.clone(),
                code_challenge: request.code_challenge.clone(),
                session_id: sid.clone(),
                expires_at: now + code_seconds as i64,
            },
        );
        (cookie, sid)
    };
    let (cookie_value, sid) = cookie_value;
    crate::backchannel::joined(tenant, &sid, &request.client_id);
    let mut response = request.answer(vec![("code", code)]);
    let cookie = Cookie::build(SSO_COOKIE, cookie_value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .finish();
    let _ = response.add_cookie(&cookie);
    response
}

/// Logs in with a username and password, answering as the login page does: the code redirect, an error
/// redirect for a blocked user, or the form again with the error.
fn login(
    tenant: &Tenant,
    req: &HttpRequest,
    request: &AuthorizeRequest,
    txn: &str,
    login: &str,
    password: &str,
) -> HttpResponse {
    let ip = req
        .peer_addr()
        .map(|addr| addr.ip().to_string())
        .unwrap_or_default();
    match check_password(tenant, &request.connection, login, password, &ip) {
        Ok(user) => {
            record_login(tenant, &user.user_id, &ip);
            tenant.grants().transactions.remove(txn);
            let sso = req.cookie(SSO_COOKIE).map(|c| c.value().to_string());
            complete(tenant, request, &user, sso)
        }
        // [DOC] block-and-unblock docs, [OBS] nuxt-auth-utils#456 (wire reference §1.2).
        Err(LoginRefused::Blocked) => {
            tenant.grants().transactions.remove(txn);
            request.error("unauthorized", "user is blocked")
        }
        // The login page shows these and stays (no redirect).
        Err(LoginRefused::WrongCredentials) => {
            login_form(tenant, request, txn, Some("Wrong email or password."))
        }
        Err(LoginRefused::TooManyAttempts) => login_form(
            tenant,
            request,
            txn,
            Some("Your account has been blocked after multiple consecutive login attempts."),
        ),
        Err(LoginRefused::Challenge(kind)) => login_form(tenant, request, txn, Some(&kind)),
    }
}

/// The login page, with a transaction id so the form does not carry the whole request.
fn login_form(
    tenant: &Tenant,
    request: &AuthorizeRequest,
    txn: &str,
    error: Option<&str>,
) -> HttpResponse {
    tenant.grants().transactions.insert(
        txn.to_string(),
        LoginTransaction {
            request: request.clone(),
            expires_at: epoch() + TRANSACTION_SECONDS,
        },
    );
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape_html(e)))
        .unwrap_or_default();
    html_page(
        StatusCode::OK,
        "Log in",
        &format!(
            "<h1>Log in</h1><p>to continue to {client}</p>{error}\
             <form method=\"post\" action=\"/u/login\">\
             <input type=\"hidden\" name=\"state\" value=\"{txn}\">\
             <label>Email or username <input name=\"username\" autocomplete=\"username\" required></label>\
             <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
             <button type=\"submit\">Continue</button></form>",
            client = escape_html(&request.client_id),
            txn = escape_html(txn),
        ),
    )
}

pub async fn authorize(req: HttpRequest, tenant: web::Data<Tenant>) -> HttpResponse {
    let params = Params::from_query(req.query_string());
    let request = match validate(&tenant, &params) {
        Ok(request) => request,
        Err(response) => return response,
    };
    let prompt = params.get("prompt").unwrap_or_default();
    let txn = random_token(18);
    if let (Some(login_hint), Some(password)) = (params.get("login_hint"), params.get("password")) {
        // The non-interactive shortcut (SPEC §10): the form, filled and posted at once.
        return login(&tenant, &req, &request, &txn, login_hint, password);
    }
    let sso = sso_user(&tenant, &req);
    if prompt != "login" {
        match sso {
            Some((_, user)) if user.blocked => {
                return request.error("unauthorized", "user is blocked");
            }
            Some((cookie, user))
                if user.connection == request.connection || params.get("connection").is_none() =>
            {
                return complete(&tenant, &request, &user, Some(cookie));
            }
            // [DOC] configure-silent-authentication (wire reference §1.2).
            _ if prompt == "none" => return request.error("login_required", "Login required"),
            _ => {}
        }
    }
    login_form(&tenant, &request, &txn, None)
}

#[derive(Debug, serde::Deserialize)]
pub struct LoginFormBody {
    #[serde(default)]
    state: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

pub async fn login_form_submitted(
    req: HttpRequest,
    form: web::Form<LoginFormBody>,
    tenant: web::Data<Tenant>,
) -> HttpResponse {
    let now = epoch();
    let transaction = tenant
        .grants()
        .transactions
        .get(&form.state)
        .filter(|t| t.expires_at > now)
        .cloned();
    let Some(transaction) = transaction else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The login transaction is unknown or expired.",
        );
    };
    if form.username.is_empty() || form.password.is_empty() {
        return login_form(
            &tenant,
            &transaction.request,
            &form.state,
            Some("Wrong email or password."),
        );
    }
    login(
        &tenant,
        &req,
        &transaction.request,
        &form.state,
        &form.username,
        &form.password,
    )
}
