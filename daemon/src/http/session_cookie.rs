//! The `sid` cookie: an opaque 256-bit session id, never a token, so a stolen cookie jar holds no
//! JWT and a session can be ended server-side (the upstream service put the JWT itself there).

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};

use super::extract::session::SID_COOKIE;
use crate::config::{self, ClientSettings, Settings};
use crate::store::Session;

/// `sid=<id>; Path=/; HttpOnly; Secure; Max-Age=<SESSION_DURATION_SECONDS>` plus the client's
/// `SameSite`; `Secure` only dropped with `server.insecureCookies` (plain-http development).
pub fn issue(client: &ClientSettings, settings: &Settings, session: &Session) -> Cookie<'static> {
    let mut cookie = Cookie::build(SID_COOKIE, session.id.as_str().to_owned())
        .path("/")
        .http_only(true)
        .secure(!settings.server.insecure_cookies)
        .max_age(CookieDuration::seconds(
            i64::try_from(settings.session_duration_seconds).unwrap_or(i64::MAX),
        ))
        .finish();
    set_same_site(&mut cookie, client);
    cookie
}

/// Clears `sid`: an empty value and an `Expires` in the past, without `Max-Age` (the upstream
/// service's 2.0.0 fix: some clients mishandle `Max-Age=0`), with the same `SameSite` as the
/// cookie it replaces (SPEC §5): a browser may otherwise not send or apply it in the context the
/// cookie was set for, and a `SameSite=None` cookie is only replaced by another one.
pub fn clear(client: &ClientSettings, settings: &Settings) -> Cookie<'static> {
    let mut cookie = Cookie::build(SID_COOKIE, "")
        .path("/")
        .http_only(true)
        .secure(!settings.server.insecure_cookies)
        .expires(actix_web::cookie::time::OffsetDateTime::UNIX_EPOCH)
        .finish();
    set_same_site(&mut cookie, client);
    cookie
}

fn set_same_site(cookie: &mut Cookie<'static>, client: &ClientSettings) {
    if let Some(same_site) = client.same_site {
        cookie.set_same_site(match same_site {
            config::SameSite::Lax => SameSite::Lax,
            config::SameSite::Strict => SameSite::Strict,
            config::SameSite::None => SameSite::None,
        });
    }
}
