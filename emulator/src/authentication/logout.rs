//! `GET /v2/logout` (wire reference §1.6): ends the SSO session and redirects to an allowed `returnTo`.

use actix_web::{
    HttpRequest, HttpResponse,
    cookie::Cookie,
    http::{StatusCode, header},
    web,
};

use super::{Params, authorize::SSO_COOKIE, error_page};
use crate::state::Tenant;

/// Whether `url` is allowed by `pattern` from a logout list: the same URL ignoring its query string and
/// fragment (not documented, [INF]), with `*` as a subdomain wildcard (`http://*.example.com`, [DOC]).
fn allowed(pattern: &str, url: &str) -> bool {
    let strip = |u: &str| {
        u.split(['?', '#'])
            .next()
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_string()
    };
    let (pattern, url) = (strip(pattern), strip(url));
    if pattern == url {
        return true;
    }
    let Some((before, after)) = pattern.split_once('*') else {
        return false;
    };
    url.len() > before.len() + after.len()
        && url.starts_with(before)
        && url.ends_with(after)
        && !url[before.len()..url.len() - after.len()].contains(['/', ':'])
}

pub async fn logout(req: HttpRequest, tenant: web::Data<Tenant>) -> HttpResponse {
    let params = Params::from_query(req.query_string());
    let return_to = params.get("returnTo");
    let target = {
        let data = tenant.data();
        match params.get("client_id") {
            Some(client_id) => {
                let Some(client) = data.client(client_id) else {
                    // [INF] wording.
                    return error_page(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        &format!("Unknown client: {client_id}"),
                    );
                };
                match return_to {
                    // Checked against the client's list when it lists some (SPEC §10).
                    Some(url)
                        if client.logout_urls.is_empty()
                            || client.logout_urls.iter().any(|p| allowed(p, url)) =>
                    {
                        Ok(Some(url.to_string()))
                    }
                    Some(url) => Err(url.to_string()),
                    // No returnTo: the client's first Allowed Logout URL ([DOC] §1.6).
                    None => Ok(client.logout_urls.first().cloned()),
                }
            }
            None => match return_to {
                // Without client_id Auth0 checks the tenant-level list, which the seed does not have: the union
                // of the clients' lists stands in for it, and no list at all allows any URL ([INF]).
                Some(url) => {
                    let patterns: Vec<&String> =
                        data.clients.iter().flat_map(|c| &c.logout_urls).collect();
                    if patterns.is_empty() || patterns.iter().any(|p| allowed(p, url)) {
                        Ok(Some(url.to_string()))
                    } else {
                        Err(url.to_string())
                    }
                }
                None => Ok(None),
            },
        }
    };
    let mut response = match target {
        // An HTML 400 ([INF] wire reference §1.6); the text is the one Auth0's error page shows.
        Err(url) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!(
                    "The \"returnTo\" querystring parameter \"{url}\" is not defined as a valid URL in \"Allowed \
                     Logout URLs\". To add a new URL, please do it here: https://manage.auth0.com/#/account/advanced"
                ),
            );
        }
        Ok(Some(url)) => HttpResponse::Found()
            .insert_header((header::LOCATION, url))
            .finish(),
        // [DOC] lists a 200 for a logout without a redirect; the body text is [INF].
        Ok(None) => HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body("OK"),
    };
    if let Some(cookie) = req.cookie(SSO_COOKIE) {
        let ended = tenant.grants().sessions.remove(cookie.value());
        // Auth0 tells the applications that took part in the session (OIDC Back-Channel Logout).
        if let Some((user_id, sid)) = ended {
            crate::backchannel::session_ended(&tenant, &user_id, &sid);
        }
        let mut removal = Cookie::build(SSO_COOKIE, "").path("/").finish();
        removal.make_removal();
        let _ = response.add_cookie(&removal);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::allowed;

    #[test]
    fn logout_url_matching() {
        assert!(allowed("https://app.example/", "https://app.example"));
        assert!(allowed(
            "https://app.example/web-login",
            "https://app.example/web-login?redirect=/x"
        ));
        assert!(!allowed(
            "https://app.example/web-login",
            "https://app.example/other"
        ));
        assert!(allowed("https://*.example.com", "https://a.example.com"));
        assert!(!allowed(
            "https://*.example.com",
            "https://a.b/.example.com"
        ));
        assert!(!allowed(
            "https://*.example.com",
            "https://evil.com/x.example.com"
        ));
    }
}
