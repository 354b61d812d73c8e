//! The request-level rules every route shares (SPEC §4), built once at the edge as typed values:
//!
//! - [`client`]: which login client a request is for (`apiKeys`, `client-type`, `defaultClient`),
//!   and how that meets a session's own client;
//! - [`cross_site`]: [`CrossSiteCheck`], whether the browser says the request comes from a page
//!   of another site (refused for cookie-issuing logins, cookie refreshes and cookie logouts);
//! - [`guard`]: who may call the management routes when neither `apiKeys` nor
//!   `server.managementBind` protects them;
//! - [`forwarded`]: whom the request is from and how it was addressed: the end user's IP, the
//!   public host and scheme, each believing forwarding headers only from `server.trustedProxies`;
//! - [`redirect`]: [`RelativeRedirect`], the only form in which a caller's `redirect` is used;
//! - [`session`]: [`SessionCredential`], the Bearer token and `sid` cookie a session is found by.
//!
//! Each rule is a pure function of the request and the settings, so it is tested without a server;
//! the extractors ([`ApiClient`], [`EndUser`], [`SessionCredential`], ...) wrap them for handlers
//! and read `web::Data<Settings>` from the app data.

pub mod client;
pub mod cross_site;
pub mod forwarded;
pub mod guard;
pub mod payload;
pub mod redirect;
pub mod session;

use actix_web::HttpRequest;
use actix_web::http::header::AsHeaderName;
use actix_web::web;

use super::ApiError;
use crate::config::Settings;

pub use client::{
    ApiClient, ApiRoute, BrowserClient, BrowserRoute, Client, ClientSource, ClientType,
    ManagementClient, ManagementRoute, OptionalApiClient, OptionalBrowserClient, RequestedClient,
    Route, RouteKind, SelectedClient, resolve_session_client, select_client,
    select_client_optional,
};
pub use cross_site::{BrowserAction, CrossSite, CrossSiteCheck, cookie_key_allowed};
pub use forwarded::{
    AUTH0_FORWARDED_FOR, EndUser, PublicOrigin, Scheme, auth0_forwarded_for, end_user_ip,
    public_host, public_scheme, trusted_peer,
};
pub use guard::{guard_in_force, management_guard};
pub use redirect::{InvalidRedirect, RelativeRedirect, location_of};
pub use session::SessionCredential;

/// A field a request needs; 400 naming it when absent.
pub fn required(value: Option<String>, name: &str) -> Result<String, ApiError> {
    value.ok_or_else(|| ApiError::BadRequest(format!("missing field `{name}`")))
}

/// The settings the app registered; their absence is a wiring bug, answered 500.
fn settings(req: &HttpRequest) -> Result<web::Data<Settings>, ApiError> {
    req.app_data::<web::Data<Settings>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("web::Data<Settings> is not registered in the app"))
}

/// The first value of header `name` as text, trimmed; `None` when absent or empty. A value that
/// is not visible ASCII is present all the same, as [`UNREADABLE`], which matches no client name,
/// key or host: a header the caller sent is never taken as absent (that would select the default
/// client for `client-type: \xff`).
fn header<N: AsHeaderName>(req: &HttpRequest, name: N) -> Option<&str> {
    req.headers()
        .get(name)
        .map(|value| value.to_str().unwrap_or(UNREADABLE))
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

/// What [`header`] reads for a value that is not visible ASCII.
const UNREADABLE: &str = "\u{fffd}";

/// The value of the first cookie called `name` across every `Cookie` header, unquoted; `None`
/// when absent or empty.
///
/// Parsed by hand rather than with `HttpRequest::cookies`, which fails as a whole on one malformed
/// cookie: a stray cookie set by another application on the same domain must not hide `sid`.
/// Values are not percent-decoded: session ids and API keys are compared as sent.
fn cookie<'r>(req: &'r HttpRequest, name: &str) -> Option<&'r str> {
    cookies(req, name).next().filter(|value| !value.is_empty())
}

/// Every value of the cookies called `name` across every `Cookie` header, in order, unquoted
/// (empty ones included), parsed as [`cookie`] parses them.
fn cookies<'r, 'n>(req: &'r HttpRequest, name: &'n str) -> impl Iterator<Item = &'r str> + 'n
where
    'r: 'n,
{
    req.headers()
        .get_all(actix_web::http::header::COOKIE)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.split_once('='))
        .filter(move |(key, _)| key.trim() == name)
        .map(|(_, value)| {
            let value = value.trim();
            value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value)
        })
}

/// The values of the cookie binding the login of `state` to its browser (see
/// [`crate::login::state::binding_cookie_name`]) that the request presents.
pub fn binding_values<'r>(req: &'r HttpRequest, state: &str, settings: &Settings) -> Vec<&'r str> {
    let name = crate::login::state::binding_cookie_name(state, !settings.server.insecure_cookies);
    cookies(req, &name).collect()
}

/// A caller-supplied value fit for an error message (see [`crate::echo`]).
use crate::echo::quoted;

#[cfg(test)]
pub(crate) mod test_support {
    //! Settings and requests shared by the tests of every rule.

    use actix_web::test::TestRequest;
    use actix_web::{HttpRequest, web};
    use serde_json::{Value, json};

    use crate::config::{Env, Settings};

    pub fn client(id: &str) -> Value {
        json!({
            "auth0Url": "https://tenant.eu.auth0.com",
            "clientId": id,
            "clientSecret": format!("{id}-secret"),
            "redirectUrl": "https://app.example.com/web-login/callback",
            "scopes": ["offline_access", "website"]
        })
    }

    /// Clients `web` (the default) and `mobile`, no API keys.
    pub fn doc() -> Value {
        json!({
            "clients": {"web": client("web-id"), "mobile": client("mobile-id")},
            "defaultClient": "web"
        })
    }

    /// [`doc`] with `key-web` (web), `key-admin` (web, management) and `key-mobile` (mobile).
    pub fn doc_with_keys() -> Value {
        let mut doc = doc();
        doc["apiKeys"] = json!([
            {"key": "key-web", "clientType": "web"},
            {"key": "key-admin", "clientType": "web", "management": true},
            {"key": "key-mobile", "clientType": "mobile", "management": false}
        ]);
        doc
    }

    pub fn settings(doc: Value) -> Settings {
        settings_env(doc, &[])
    }

    pub fn settings_env(doc: Value, env: &[(&str, &str)]) -> Settings {
        Settings::from_value(doc, &Env::from_pairs(env.iter().copied())).expect("valid settings")
    }

    /// A request from `peer` (port 40000) with the app's settings registered.
    pub fn request(settings: &Settings, peer: &str) -> TestRequest {
        TestRequest::default()
            .peer_addr(
                format!("{peer}:40000")
                    .parse()
                    .or_else(|_| format!("[{peer}]:40000").parse())
                    .expect("peer address"),
            )
            .app_data(web::Data::new(settings.clone()))
    }

    /// `req` with `headers` appended in order: a name given twice is two header lines.
    pub fn with_headers(mut req: TestRequest, headers: &[(&str, &str)]) -> HttpRequest {
        for header in headers {
            req = req.append_header(*header);
        }
        req.to_http_request()
    }

    /// A request from `peer` with the app's settings registered and `headers` appended.
    pub fn request_with(settings: &Settings, peer: &str, headers: &[(&str, &str)]) -> HttpRequest {
        with_headers(request(settings, peer), headers)
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::test_support::with_headers;
    use super::*;

    #[test]
    fn binding_values_are_those_of_the_states_cookie_with_its_prefix() {
        let settings = test_support::settings(test_support::doc());
        let name = crate::login::state::binding_cookie_name("st", true);
        let bare = crate::login::state::binding_cookie_name("st", false);
        let req = actix_web::test::TestRequest::default()
            .append_header(("cookie", format!("broken; {name}=1; other=2")))
            .append_header(("cookie", format!("{bare}=3; {name}=4")))
            .to_http_request();
        assert_eq!(
            binding_values(&req, "st", &settings),
            ["1", "4"],
            "a cookie without the __Host- prefix, as a sibling domain could set it, is not read"
        );
        assert!(binding_values(&req, "other", &settings).is_empty());
    }

    #[test]
    fn headers_are_trimmed_and_empty_ones_absent() {
        let req = with_headers(
            TestRequest::default(),
            &[("client-type", "  web "), ("secret", "")],
        );
        assert_eq!(header(&req, "client-type"), Some("web"));
        assert_eq!(header(&req, "secret"), None);
        assert_eq!(header(&req, "client-key"), None);
        let unreadable = TestRequest::default()
            .insert_header((
                "client-type",
                actix_web::http::header::HeaderValue::from_bytes(b"api\xff").expect("bytes"),
            ))
            .to_http_request();
        assert_eq!(header(&unreadable, "client-type"), Some(UNREADABLE));
    }

    #[test]
    fn cookies_survive_malformed_neighbours() {
        let req = with_headers(
            TestRequest::default(),
            &[
                ("cookie", "broken; theme=dark; sid=abc"),
                ("cookie", "sid=second; mia_client_key=\"k 1\""),
            ],
        );
        assert_eq!(cookie(&req, "sid"), Some("abc"));
        assert_eq!(cookie(&req, "mia_client_key"), Some("k 1"));
        assert_eq!(cookie(&req, "theme"), Some("dark"));
        assert_eq!(cookie(&req, "missing"), None);

        let empty = with_headers(TestRequest::default(), &[("cookie", "sid=")]);
        assert_eq!(cookie(&empty, "sid"), None);
    }

    #[test]
    fn quoted_values_are_escaped_and_bounded() {
        assert_eq!(quoted("a\r\nb"), "\"a\\r\\nb\"");
        let long = "x".repeat(100);
        let shown = quoted(&long);
        assert!(shown.ends_with('…'));
        assert_eq!(shown.chars().filter(|c| *c == 'x').count(), 64);
    }

    #[test]
    fn missing_settings_are_a_wiring_error() {
        let req = TestRequest::default().to_http_request();
        let err = settings(&req).expect_err("no settings registered");
        assert!(matches!(err, ApiError::Internal(_)));
    }
}
