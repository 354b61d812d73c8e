//! [`CrossSiteCheck`]: whether the browser says a request comes from a page of another site, so
//! that a cookie-issuing login, a cookie refresh and a cookie logout can be refused (login CSRF:
//! a page elsewhere must not make the victim's browser log in as the attacker, nor end or renew
//! the victim's session), and so can every management route that changes anything (SPEC §6: a
//! page elsewhere must not make an administrator's browser create, change or import users). One
//! rule, used by `/oauth/token`, `/refreshtoken`, `/logout` and the management writes.
//!
//! A request is cross-site when
//! - `Sec-Fetch-Site: cross-site` (the browser's own verdict); or
//! - `Sec-Fetch-Site: same-site` without an `Origin` (a sibling subdomain is another site to the
//!   daemon unless its `Origin` says it is the public host or in `server.allowedHosts`); or
//! - it has an `Origin` whose `host[:port]` is neither the daemon's public host (as
//!   [`super::public_host`] resolves it: `X-Forwarded-Host` from a trusted proxy, else `Host`) nor
//!   allowed by `server.allowedHosts`. `Origin: null` (sandboxed frames, `file:` pages, some
//!   redirects), and one that is not `scheme://host[:port]`, count as cross-site.
//!
//! Server-to-server callers send neither header and pass; so do `Sec-Fetch-Site: same-origin`
//! and `none` (a typed URL, a bookmark) when the `Origin`, if any, passes.
//!
//! The management key in the `mia_client_key` cookie is a browser's credential, which travels with
//! any request the browser makes: [`cookie_key_allowed`] accepts it only from a same-origin page
//! (`Sec-Fetch-Site: same-origin`) or a caller that sends no browser header at all.
//!
//! Choices where the spec is silent:
//! - The scheme of the `Origin` is not compared (the rule is about hosts), but it gives the
//!   default port: `https://app.example.com:443` is `app.example.com`.
//! - When the public host cannot be resolved (no `Host`, or one outside `server.allowedHosts`), an
//!   `Origin` passes only by `server.allowedHosts`; the route itself answers the bad host where it
//!   needs one.
//! - `Sec-Fetch-Site` values other than `cross-site` pass: an unknown future value is not a
//!   reason to refuse a login.

use std::fmt;
use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};

use super::forwarded::public_host;
use super::{header, quoted, settings};
use crate::config::PublicHost;
use crate::config::Settings;
use crate::http::ApiError;

const SEC_FETCH_SITE: &str = "sec-fetch-site";

/// Why the browser's request counts as cross-site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CrossSite {
    /// `Sec-Fetch-Site: cross-site`.
    FetchSite,
    /// `Sec-Fetch-Site: same-site` with no `Origin` to show it is this site.
    SameSiteWithoutOrigin,
    /// `Origin: null`.
    NullOrigin,
    /// An `Origin` that is not `scheme://host[:port]`.
    BadOrigin(String),
    /// An `Origin` on another host than the daemon's and outside `server.allowedHosts`.
    ForeignOrigin(String),
}

impl fmt::Display for CrossSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FetchSite => f.write_str("Sec-Fetch-Site is cross-site"),
            Self::SameSiteWithoutOrigin => f.write_str(
                "Sec-Fetch-Site is same-site and no Origin shows this site's host or one in \
                 `server.allowedHosts`",
            ),
            Self::NullOrigin => f.write_str("Origin is null"),
            Self::BadOrigin(origin) => write!(f, "Origin {} is not a valid origin", quoted(origin)),
            Self::ForeignOrigin(origin) => write!(
                f,
                "Origin {} is neither this site's host nor in `server.allowedHosts`",
                quoted(origin)
            ),
        }
    }
}

/// What a refused request would have done to the browser, for the answer's message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrowserAction {
    /// A login whose answer is the `sid` cookie.
    LogIn,
    /// A refresh of the session the `sid` cookie names.
    Refresh,
    /// The end of the session the `sid` cookie names.
    LogOut,
    /// A management route that changes something (POST, PATCH, DELETE, an import).
    Manage,
}

impl BrowserAction {
    fn describe(self) -> &'static str {
        match self {
            Self::LogIn => "log a browser in",
            Self::Refresh => "refresh a browser's session",
            Self::LogOut => "end a browser's session",
            Self::Manage => "call a management route that changes anything",
        }
    }
}

/// Whether `req` comes from a page of another site (see the module doc); `Err` says why.
pub fn same_site(req: &HttpRequest, settings: &Settings) -> Result<(), CrossSite> {
    if header(req, SEC_FETCH_SITE).is_some_and(|site| site.eq_ignore_ascii_case("cross-site")) {
        return Err(CrossSite::FetchSite);
    }
    let Some(origin) = req.headers().get(actix_web::http::header::ORIGIN) else {
        if header(req, SEC_FETCH_SITE).is_some_and(|site| site.eq_ignore_ascii_case("same-site")) {
            return Err(CrossSite::SameSiteWithoutOrigin);
        }
        return Ok(());
    };
    let text = origin.to_str().map(str::trim).unwrap_or("\u{FFFD}");
    if text.eq_ignore_ascii_case("null") {
        return Err(CrossSite::NullOrigin);
    }
    let host = origin_host(text).ok_or_else(|| CrossSite::BadOrigin(text.to_owned()))?;
    let ours = public_host(req, settings)
        .ok()
        .is_some_and(|ours| same_host(&host, &ours, default_port(text)));
    let allowed = settings
        .server
        .allowed_hosts
        .iter()
        .any(|entry| host.allowed_by(entry));
    if ours || allowed {
        Ok(())
    } else {
        Err(CrossSite::ForeignOrigin(text.to_owned()))
    }
}

/// Whether a management key read from the `mia_client_key` cookie may be used: the request says
/// `Sec-Fetch-Site: same-origin`, or carries no browser header (`Sec-Fetch-Site`, `Origin`) at
/// all, as a server or a script does. Any other browser request may have been made by a page of
/// another site riding on the cookie.
pub fn cookie_key_allowed(req: &HttpRequest) -> bool {
    match header(req, SEC_FETCH_SITE) {
        Some(site) => site.eq_ignore_ascii_case("same-origin"),
        None => !req.headers().contains_key(actix_web::http::header::ORIGIN),
    }
}

/// The port a scheme implies: 80 for `http`, 443 for `https`.
fn default_port(origin: &str) -> Option<u16> {
    let scheme = origin.split_once("://")?.0;
    if scheme.eq_ignore_ascii_case("https") {
        Some(443)
    } else if scheme.eq_ignore_ascii_case("http") {
        Some(80)
    } else {
        None
    }
}

/// The `host[:port]` of an origin `scheme://host[:port]`, the scheme's default port dropped; `None`
/// when it is not of that form (a path, a user, a query).
fn origin_host(origin: &str) -> Option<PublicHost> {
    let (scheme, authority) = origin.split_once("://")?;
    let scheme_ok = !scheme.is_empty()
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !scheme_ok {
        return None;
    }
    let host = PublicHost::parse(authority).ok()?;
    Some(match (host.port(), default_port(origin)) {
        (Some(port), Some(default)) if port == default => host.without_port(),
        _ => host,
    })
}

/// Whether the origin's host is the daemon's public host; a port the origin's scheme implies
/// equals no port on the public host.
fn same_host(origin: &PublicHost, ours: &PublicHost, default: Option<u16>) -> bool {
    let ours = match (ours.port(), default) {
        (Some(port), Some(default)) if port == default => ours.without_port(),
        _ => ours.clone(),
    };
    *origin == ours
}

/// Extractor: the verdict of [`same_site`], kept for the route to apply where the rule holds
/// (a `website` client's login, a cookie refresh or logout), since extraction alone cannot
/// know whether the request will touch a browser's session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrossSiteCheck {
    verdict: Result<(), CrossSite>,
}

impl CrossSiteCheck {
    /// The verdict of [`same_site`] on `req`.
    pub fn of(req: &HttpRequest, settings: &Settings) -> Self {
        Self {
            verdict: same_site(req, settings),
        }
    }

    /// The reason the request is cross-site, if it is.
    pub fn cross_site(&self) -> Option<&CrossSite> {
        self.verdict.as_ref().err()
    }

    /// 403 naming the reason when the request is cross-site and would `action` a browser.
    pub fn refuse_cross_site(&self, action: BrowserAction) -> Result<(), ApiError> {
        match &self.verdict {
            Ok(()) => Ok(()),
            Err(why) => Err(ApiError::Forbidden(format!(
                "a cross-site page may not {}: {why}",
                action.describe()
            ))),
        }
    }
}

impl FromRequest for CrossSiteCheck {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(settings(req).map(|settings| Self::of(req, &settings)))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::StatusCode;
    use actix_web::http::header::HeaderValue;
    use actix_web::{FromRequest, ResponseError};
    use serde_json::json;

    use super::*;
    use crate::http::extract::test_support::{doc, request, request_with, settings};

    fn verdict(s: &Settings, peer: &str, headers: &[(&str, &str)]) -> Result<(), CrossSite> {
        same_site(&request_with(s, peer, headers), s)
    }

    #[test]
    fn server_to_server_and_same_site_requests_pass() {
        let s = settings(doc());
        for headers in [
            vec![],
            vec![("host", "auth.example.com")],
            vec![("sec-fetch-site", "same-origin")],
            vec![
                ("host", "auth.example.com"),
                ("sec-fetch-site", "same-site"),
                ("origin", "https://auth.example.com"),
            ],
            vec![("sec-fetch-site", "none")],
            vec![("sec-fetch-site", "something-new")],
            vec![
                ("host", "auth.example.com"),
                ("origin", "https://auth.example.com"),
            ],
            vec![
                ("host", "Auth.Example.com"),
                ("origin", "https://auth.example.COM"),
                ("sec-fetch-site", "same-origin"),
            ],
            vec![
                ("host", "auth.example.com:8443"),
                ("origin", "https://auth.example.com:8443"),
            ],
            vec![
                ("host", "auth.example.com"),
                ("origin", "https://auth.example.com:443"),
            ],
            vec![
                ("host", "auth.example.com:443"),
                ("origin", "https://auth.example.com"),
            ],
            vec![
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:8080"),
            ],
            vec![("host", "[::1]:8080"), ("origin", "http://[::1]:8080")],
        ] {
            assert_eq!(verdict(&s, "203.0.113.7", &headers), Ok(()), "{headers:?}");
        }
    }

    #[test]
    fn a_browser_saying_cross_site_is_refused() {
        let s = settings(doc());
        let host = ("host", "auth.example.com");
        for (headers, want) in [
            (
                vec![host, ("sec-fetch-site", "cross-site")],
                CrossSite::FetchSite,
            ),
            (
                vec![host, ("sec-fetch-site", "Cross-Site")],
                CrossSite::FetchSite,
            ),
            // The browser's verdict wins over a matching Origin.
            (
                vec![
                    host,
                    ("sec-fetch-site", "cross-site"),
                    ("origin", "https://auth.example.com"),
                ],
                CrossSite::FetchSite,
            ),
            (
                vec![host, ("sec-fetch-site", "same-site")],
                CrossSite::SameSiteWithoutOrigin,
            ),
            (vec![host, ("origin", "null")], CrossSite::NullOrigin),
            (
                vec![host, ("sec-fetch-site", "same-origin"), ("origin", "null")],
                CrossSite::NullOrigin,
            ),
            (
                vec![
                    host,
                    ("sec-fetch-site", "same-site"),
                    ("origin", "https://www.example.com"),
                ],
                CrossSite::ForeignOrigin("https://www.example.com".into()),
            ),
            // Without a Host there is no public host: only allowedHosts could admit it.
            (
                vec![("origin", "https://auth.example.com")],
                CrossSite::ForeignOrigin("https://auth.example.com".into()),
            ),
        ] {
            assert_eq!(
                verdict(&s, "203.0.113.7", &headers),
                Err(want),
                "{headers:?}"
            );
        }
        let foreign: fn(String) -> CrossSite = CrossSite::ForeignOrigin;
        let bad: fn(String) -> CrossSite = CrossSite::BadOrigin;
        for (origin, why) in [
            ("https://evil.example", foreign),
            // Another port is another origin; so is a parent or sibling domain.
            ("https://auth.example.com:8443", foreign),
            ("http://auth.example.com:443", foreign),
            ("https://auth.example.com.evil.example", foreign),
            ("auth.example.com", bad),
            ("https://auth.example.com/path", bad),
            ("https://user@auth.example.com", bad),
            ("https://a.example https://auth.example.com", bad),
        ] {
            let got = verdict(&s, "203.0.113.7", &[host, ("origin", origin)]);
            assert_eq!(got, Err(why(origin.into())), "{origin}");
        }
        let req = request(&s, "203.0.113.7")
            .insert_header(("host", "auth.example.com"))
            .insert_header((
                "origin",
                HeaderValue::from_bytes(b"https://caf\xe9.example").expect("opaque bytes"),
            ))
            .to_http_request();
        assert!(matches!(same_site(&req, &s), Err(CrossSite::BadOrigin(_))));
    }

    #[test]
    fn a_cookie_key_needs_a_same_origin_page_or_no_browser_at_all() {
        let s = settings(doc());
        for (headers, allowed) in [
            (vec![], true),
            (vec![("sec-fetch-site", "same-origin")], true),
            (
                vec![
                    ("sec-fetch-site", "Same-Origin"),
                    ("origin", "https://auth.example.com"),
                ],
                true,
            ),
            (vec![("sec-fetch-site", "same-site")], false),
            (vec![("sec-fetch-site", "cross-site")], false),
            (vec![("sec-fetch-site", "none")], false),
            (vec![("origin", "https://auth.example.com")], false),
        ] {
            let req = request_with(&s, "127.0.0.1", &headers);
            assert_eq!(cookie_key_allowed(&req), allowed, "{headers:?}");
        }
    }

    #[test]
    fn the_public_host_is_the_one_a_trusted_proxy_forwarded() {
        let s = settings(doc());
        let behind = |peer: &str, origin: &str| {
            verdict(
                &s,
                peer,
                &[
                    ("host", "auth0-client:8080"),
                    ("x-forwarded-host", "app.example.com"),
                    ("origin", origin),
                ],
            )
        };
        // Loopback is a trusted proxy by default.
        assert_eq!(behind("127.0.0.1", "https://app.example.com"), Ok(()));
        assert!(behind("127.0.0.1", "http://auth0-client:8080").is_err());
        // An untrusted peer's X-Forwarded-Host means nothing: its Host is the public host.
        assert!(behind("203.0.113.7", "https://app.example.com").is_err());
        assert_eq!(behind("203.0.113.7", "http://auth0-client:8080"), Ok(()));
    }

    #[test]
    fn allowed_hosts_admit_other_origins() {
        let mut d = doc();
        d["server"] = json!({"allowedHosts": ["auth.example.com", "login.example.com", "admin.example.com:8443"]});
        let s = settings(d);
        let host = ("host", "auth.example.com");
        for (origin, passes) in [
            ("https://auth.example.com", true),
            ("https://login.example.com", true),
            ("https://login.example.com:444", true),
            ("https://admin.example.com:8443", true),
            ("https://admin.example.com", false),
            ("https://evil.example", false),
        ] {
            assert_eq!(
                verdict(&s, "203.0.113.7", &[host, ("origin", origin)]).is_ok(),
                passes,
                "{origin}"
            );
        }
        // A Host outside the list is no public host; a listed Origin still passes.
        assert_eq!(
            verdict(
                &s,
                "203.0.113.7",
                &[
                    ("host", "other.example"),
                    ("origin", "https://login.example.com")
                ]
            ),
            Ok(())
        );
        assert!(
            verdict(
                &s,
                "203.0.113.7",
                &[
                    ("host", "other.example"),
                    ("origin", "https://other.example")
                ]
            )
            .is_err()
        );
    }

    #[actix_web::test]
    async fn the_extractor_answers_403_naming_the_reason_and_the_action() {
        let s = settings(doc());
        let req = request_with(&s, "203.0.113.7", &[("sec-fetch-site", "cross-site")]);
        let check = CrossSiteCheck::extract(&req).await.expect("extracted");
        assert_eq!(check.cross_site(), Some(&CrossSite::FetchSite));
        let err = check
            .refuse_cross_site(BrowserAction::LogIn)
            .expect_err("cross-site");
        assert_eq!(err.status_code(), StatusCode::FORBIDDEN);
        assert_eq!(
            err.to_string(),
            "a cross-site page may not log a browser in: Sec-Fetch-Site is cross-site"
        );
        let err = check
            .refuse_cross_site(BrowserAction::Refresh)
            .expect_err("cross-site");
        assert!(err.to_string().contains("refresh a browser's session"));
        let err = check
            .refuse_cross_site(BrowserAction::LogOut)
            .expect_err("cross-site");
        assert!(err.to_string().contains("end a browser's session"));
        let err = check
            .refuse_cross_site(BrowserAction::Manage)
            .expect_err("cross-site");
        assert!(
            err.to_string()
                .contains("may not call a management route that changes anything")
        );

        let req = request_with(
            &s,
            "203.0.113.7",
            &[
                ("host", "auth.example.com"),
                ("origin", "https://evil.example"),
            ],
        );
        let check = CrossSiteCheck::extract(&req).await.expect("extracted");
        let err = check
            .refuse_cross_site(BrowserAction::LogIn)
            .expect_err("cross-site");
        assert!(
            err.to_string()
                .contains("Origin \"https://evil.example\" is neither this site's host"),
            "{err}"
        );

        let same = request_with(&s, "203.0.113.7", &[]);
        let check = CrossSiteCheck::extract(&same).await.expect("extracted");
        assert_eq!(check.cross_site(), None);
        assert!(check.refuse_cross_site(BrowserAction::LogIn).is_ok());
    }
}
