//! Client selection (SPEC §4): which login client (`clients.<client type>`) a request is for.
//!
//! In order: an API key from `apiKeys` picks its `clientType`; else the `client-type` header; else
//! `defaultClient`; a name that is not a configured client, or no client at all, is 401. With
//! `apiKeys` configured, every route needs a valid key (401) except the browser-navigated ones
//! ([`RouteKind::Browser`]), and a management route needs a key flagged `management` (403).
//! A management route first passes [`management_checks`]: the default guard without `apiKeys`
//! and `server.managementBind`, and the cross-site refusal on the routes that change anything;
//! a management key in the `mia_client_key` cookie counts only from a same-origin page or a
//! caller without browser headers (403 otherwise).
//!
//! Choices where the spec is silent:
//! - The key is read from the `secret` header, else the `client-key` header, else the
//!   `mia_client_key` cookie, and the first of them present decides: a wrong `secret` is refused
//!   even when a right cookie follows, so a caller always learns which credential was wrong.
//! - Without `apiKeys`, the key headers and cookie are ignored (an API gateway in front may use
//!   `secret` for itself and pass `client-type` on, as upstream deployments do).
//! - On browser routes an unrecognised key is ignored rather than refused: it is most likely a
//!   stale `mia_client_key` cookie, and those routes need no key; a user must always be able to
//!   log out.
//! - A valid key wins over a `client-type` header naming another client: the key is the
//!   credential, the header only a hint.
//! - Keys are compared as SHA-256 digests in constant time, against every configured key without
//!   stopping at a match, so neither the key's content nor its length shows in the timing.

use std::fmt;
use std::future::{Ready, ready};
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::cross_site::{BrowserAction, cookie_key_allowed};
use super::guard::management_guard;
use super::{cookie, header, quoted, settings};
use crate::config::{ApiKey, ClientSettings, Settings};
use crate::http::ApiError;

/// The header naming the client when no API key does (set by the API gateway, or by hand).
pub const CLIENT_TYPE_HEADER: &str = "client-type";
/// The headers and cookie an API key is read from, in order of precedence.
pub const SECRET_HEADER: &str = "secret";
pub const CLIENT_KEY_HEADER: &str = "client-key";
pub const CLIENT_KEY_COOKIE: &str = "mia_client_key";

/// How a route treats API keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteKind {
    /// Called by programs (`/oauth/token`, `/refreshtoken`, `/oauth/refreshtoken`, `/userinfo`,
    /// `/users/me`): needs a valid key when `apiKeys` is configured.
    Api,
    /// Navigated to by browsers (`/authorize`, `/oauth/callback`, `/logout`), which cannot send a
    /// key header: no key needed, but one sent still picks the client. `/oauth/callback` takes
    /// its client from the state record: resolve it like a session's
    /// ([`RequestedClient::for_session`]).
    Browser,
    /// The management routes (`/users...`, `/change-password`): with `apiKeys`, a key flagged
    /// `management`.
    Management,
}

/// A [`RouteKind`] at the type level, so a handler states its route's kind in its signature.
pub trait Route {
    const KIND: RouteKind;
}

/// Marker of [`RouteKind::Api`].
#[derive(Clone, Copy, Debug)]
pub struct ApiRoute;
/// Marker of [`RouteKind::Browser`].
#[derive(Clone, Copy, Debug)]
pub struct BrowserRoute;
/// Marker of [`RouteKind::Management`].
#[derive(Clone, Copy, Debug)]
pub struct ManagementRoute;

impl Route for ApiRoute {
    const KIND: RouteKind = RouteKind::Api;
}
impl Route for BrowserRoute {
    const KIND: RouteKind = RouteKind::Browser;
}
impl Route for ManagementRoute {
    const KIND: RouteKind = RouteKind::Management;
}

/// The name of a configured login client (a key of `clients`). Only built from a name found in
/// the settings, so holding one means the client exists.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientType(String);

impl ClientType {
    /// `name` when it is a configured client.
    pub fn known(settings: &Settings, name: &str) -> Option<Self> {
        settings
            .clients
            .contains_key(name)
            .then(|| Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ClientType {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for ClientType {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

/// What picked the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientSource {
    /// A key from `apiKeys`; `management` is its flag.
    ApiKey { management: bool },
    /// The `client-type` header.
    Header,
    /// `defaultClient`: the request named no client.
    Default,
    /// The session's own client ([`resolve_session_client`]).
    Session,
}

/// The client a request is served for, with its settings.
#[derive(Clone, Debug)]
pub struct SelectedClient {
    pub name: ClientType,
    pub settings: Arc<ClientSettings>,
    pub source: ClientSource,
}

impl SelectedClient {
    fn new(settings: &Settings, name: &str, source: ClientSource) -> Option<Self> {
        let client = settings.client(name)?;
        Some(Self {
            name: ClientType(name.to_owned()),
            settings: client.clone(),
            source,
        })
    }

    /// Whether the request itself named this client (an API key or the `client-type` header).
    /// `defaultClient` does not count: session routes then use the session's own client.
    pub fn named(&self) -> bool {
        matches!(
            self.source,
            ClientSource::ApiKey { .. } | ClientSource::Header
        )
    }

    /// Whether the request carried a key flagged `management`.
    pub fn management_key(&self) -> bool {
        matches!(self.source, ClientSource::ApiKey { management: true })
    }
}

/// The client of a request on a route of `kind`; 401 when there is none (SPEC §4).
pub fn select_client(
    req: &HttpRequest,
    settings: &Settings,
    kind: RouteKind,
) -> Result<SelectedClient, ApiError> {
    select_client_optional(req, settings, kind)?.ok_or_else(no_client)
}

/// Like [`select_client`], but `Ok(None)` when the request names no client and `defaultClient`
/// is not set, for the session routes, which then use the session's client. Every other failure
/// (missing or wrong key, unknown `client-type`, a non-management key on a management route) is
/// still an error.
pub fn select_client_optional(
    req: &HttpRequest,
    settings: &Settings,
    kind: RouteKind,
) -> Result<Option<SelectedClient>, ApiError> {
    Ok(select_named_client(req, settings, kind)?.or_else(|| default_client(settings)))
}

/// The client the request names by an API key or the `client-type` header, with every check of
/// [`select_client_optional`]; `Ok(None)` when it names none.
fn select_named_client(
    req: &HttpRequest,
    settings: &Settings,
    kind: RouteKind,
) -> Result<Option<SelectedClient>, ApiError> {
    if !settings.api_keys.is_empty() {
        match presented_key(req) {
            Some((place, presented)) => match find_key(&settings.api_keys, presented) {
                Some(key) => {
                    if kind == RouteKind::Management
                        && matches!(place, KeyPlace::Cookie)
                        && !cookie_key_allowed(req)
                    {
                        return Err(ApiError::Forbidden(format!(
                            "the API key in the {place} is accepted on the management routes only \
                             from a same-origin page (`Sec-Fetch-Site: same-origin`) or a caller \
                             that sends no browser headers: send it in the `{SECRET_HEADER}` header"
                        )));
                    }
                    if kind == RouteKind::Management && !key.management {
                        return Err(ApiError::Forbidden(format!(
                            "the API key in the {place} may not call the management routes: \
                             use a key flagged `management`"
                        )));
                    }
                    let source = ClientSource::ApiKey {
                        management: key.management,
                    };
                    // The loader checked every key's clientType; refuse rather than panic if not.
                    return SelectedClient::new(settings, &key.client_type, source)
                        .map(Some)
                        .ok_or_else(|| unknown_client(&key.client_type, "API key's clientType"));
                }
                None if kind == RouteKind::Browser => {
                    tracing::debug!(%place, "ignoring an unrecognised API key on a browser route");
                }
                None => {
                    return Err(ApiError::Unauthorized(format!(
                        "the API key in the {place} is not valid"
                    )));
                }
            },
            None if kind == RouteKind::Browser => {}
            None => {
                return Err(ApiError::Unauthorized(format!(
                    "missing API key: send it in the `{SECRET_HEADER}` or `{CLIENT_KEY_HEADER}` \
                     header (or the `{CLIENT_KEY_COOKIE}` cookie)"
                )));
            }
        }
    }
    if let Some(name) = header(req, CLIENT_TYPE_HEADER) {
        return SelectedClient::new(settings, name, ClientSource::Header)
            .map(Some)
            .ok_or_else(|| unknown_client(name, "`client-type` header"));
    }
    Ok(None)
}

/// `defaultClient`, when set.
fn default_client(settings: &Settings) -> Option<SelectedClient> {
    settings
        .default_client
        .as_deref()
        .and_then(|name| SelectedClient::new(settings, name, ClientSource::Default))
}

/// The client a session route serves: the request's when it named one (which must then be the
/// session's, else 401), else the session's own (SPEC §4). `selected` is what
/// [`select_client_optional`] found; `session_client` is the client stored in the session.
pub fn resolve_session_client(
    selected: Option<&SelectedClient>,
    session_client: &str,
    settings: &Settings,
) -> Result<SelectedClient, ApiError> {
    check_session_client(selected, session_client, settings)?;
    match selected {
        Some(selected) if selected.named() => Ok(selected.clone()),
        _ => SelectedClient::new(settings, session_client, ClientSource::Session)
            .ok_or_else(|| client_gone(session_client)),
    }
}

/// What [`resolve_session_client`] checks, without building the client.
fn check_session_client(
    selected: Option<&SelectedClient>,
    session_client: &str,
    settings: &Settings,
) -> Result<(), ApiError> {
    match selected {
        Some(selected) if selected.named() && selected.name != *session_client => {
            Err(ApiError::Unauthorized(format!(
                "the session belongs to another client than `{}`, the one the request names",
                selected.name
            )))
        }
        Some(selected) if selected.named() => Ok(()),
        _ if settings.clients.contains_key(session_client) => Ok(()),
        _ => Err(client_gone(session_client)),
    }
}

fn client_gone(session_client: &str) -> ApiError {
    ApiError::Unauthorized(format!(
        "the session's client {} is no longer configured",
        quoted(session_client)
    ))
}

fn no_client() -> ApiError {
    ApiError::Unauthorized(format!(
        "no client: the request names none (an API key or the `{CLIENT_TYPE_HEADER}` header) \
         and `defaultClient` is not set"
    ))
}

fn unknown_client(name: &str, from: &str) -> ApiError {
    ApiError::Unauthorized(format!(
        "unknown client type {} in the {from}",
        quoted(name)
    ))
}

/// Where a key was found, for messages.
#[derive(Clone, Copy, Debug)]
enum KeyPlace {
    SecretHeader,
    ClientKeyHeader,
    Cookie,
}

impl fmt::Display for KeyPlace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SecretHeader => write!(f, "`{SECRET_HEADER}` header"),
            Self::ClientKeyHeader => write!(f, "`{CLIENT_KEY_HEADER}` header"),
            Self::Cookie => write!(f, "`{CLIENT_KEY_COOKIE}` cookie"),
        }
    }
}

/// The key the request presents, from the first place that has one.
fn presented_key(req: &HttpRequest) -> Option<(KeyPlace, &str)> {
    header(req, SECRET_HEADER)
        .map(|key| (KeyPlace::SecretHeader, key))
        .or_else(|| header(req, CLIENT_KEY_HEADER).map(|key| (KeyPlace::ClientKeyHeader, key)))
        .or_else(|| cookie(req, CLIENT_KEY_COOKIE).map(|key| (KeyPlace::Cookie, key)))
}

/// The configured key equal to `presented`, compared in constant time (see the module doc).
fn find_key<'k>(keys: &'k [ApiKey], presented: &str) -> Option<&'k ApiKey> {
    let presented = Sha256::digest(presented.as_bytes());
    let mut found = None;
    for key in keys {
        let candidate = Sha256::digest(key.key.expose_secret().as_bytes());
        let equal: bool = presented.as_slice().ct_eq(candidate.as_slice()).into();
        if equal && found.is_none() {
            found = Some(key);
        }
    }
    found
}

/// What every management route checks before its client (SPEC §6), so nothing reaches Auth0
/// otherwise: the default guard ([`management_guard`]), then, on a route that changes anything
/// (any method but GET, HEAD and OPTIONS), the cross-site refusal of [`same_site`], the rule of
/// [`super::CrossSiteCheck`].
pub fn management_checks(req: &HttpRequest, settings: &Settings) -> Result<(), ApiError> {
    management_guard(req, settings)?;
    if !req.method().is_safe() {
        super::CrossSiteCheck::of(req, settings).refuse_cross_site(BrowserAction::Manage)?;
    }
    Ok(())
}

/// Extractor: the client of a route of kind `R`, or the error [`select_client`] answers.
/// Use the aliases [`ApiClient`], [`BrowserClient`], [`ManagementClient`].
#[derive(Debug)]
pub struct Client<R: Route> {
    selected: SelectedClient,
    route: PhantomData<R>,
}

pub type ApiClient = Client<ApiRoute>;
pub type BrowserClient = Client<BrowserRoute>;
pub type ManagementClient = Client<ManagementRoute>;

impl<R: Route> Client<R> {
    pub fn into_inner(self) -> SelectedClient {
        self.selected
    }
}

impl<R: Route> Deref for Client<R> {
    type Target = SelectedClient;
    fn deref(&self) -> &SelectedClient {
        &self.selected
    }
}

impl<R: Route> FromRequest for Client<R> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(settings(req).and_then(|settings| {
            if R::KIND == RouteKind::Management {
                management_checks(req, &settings)?;
            }
            Ok(Self {
                selected: select_client(req, &settings, R::KIND)?,
                route: PhantomData,
            })
        }))
    }
}

/// Extractor for the session routes: the client the request names, if any (see
/// [`select_client_optional`]), resolved against the session once it is found. Use the aliases
/// [`OptionalApiClient`] (`/userinfo`, `/refreshtoken`) and [`OptionalBrowserClient`] (`/logout`).
///
/// `defaultClient` is only looked up when asked for ([`RequestedClient::required`]): a session
/// route serves the session's client unless the request named one, and `/userinfo` builds no
/// client at all ([`RequestedClient::check_session`]).
#[derive(Debug)]
pub struct RequestedClient<R: Route> {
    named: Option<SelectedClient>,
    settings: web::Data<Settings>,
    route: PhantomData<R>,
}

pub type OptionalApiClient = RequestedClient<ApiRoute>;
pub type OptionalBrowserClient = RequestedClient<BrowserRoute>;

impl<R: Route> RequestedClient<R> {
    /// The client to serve a session of `session_client` with ([`resolve_session_client`]).
    pub fn for_session(&self, session_client: &str) -> Result<SelectedClient, ApiError> {
        resolve_session_client(self.named.as_ref(), session_client, &self.settings)
    }

    /// Whether a session of `session_client` may be served here: [`RequestedClient::for_session`]
    /// without building the client.
    pub fn check_session(&self, session_client: &str) -> Result<(), ApiError> {
        check_session_client(self.named.as_ref(), session_client, &self.settings)
    }

    /// The request's client when there is no session to take one from; 401 without one.
    pub fn required(self) -> Result<SelectedClient, ApiError> {
        self.named
            .or_else(|| default_client(&self.settings))
            .ok_or_else(no_client)
    }
}

impl<R: Route> FromRequest for RequestedClient<R> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(settings(req).and_then(|settings| {
            Ok(Self {
                named: select_named_client(req, &settings, R::KIND)?,
                settings,
                route: PhantomData,
            })
        }))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::StatusCode;
    use actix_web::test::TestRequest;
    use actix_web::{FromRequest, ResponseError};
    use serde_json::json;

    use super::*;
    use crate::http::extract::test_support::{
        client, doc, doc_with_keys, request, request_with, settings, with_headers,
    };

    /// What a selection should come to.
    #[derive(Debug)]
    enum Want {
        Client(&'static str, ClientSource),
        Nothing,
        Status(u16, &'static str),
    }
    use Want::{Client as Is, Nothing, Status};

    const KEY_WEB: ClientSource = ClientSource::ApiKey { management: false };
    const KEY_ADMIN: ClientSource = ClientSource::ApiKey { management: true };
    const HEADER: ClientSource = ClientSource::Header;
    const DEFAULT: ClientSource = ClientSource::Default;

    fn run(settings: &Settings, kind: RouteKind, headers: &[(&str, &str)], want: &Want) {
        let req = with_headers(TestRequest::default(), headers);
        let got = select_client_optional(&req, settings, kind);
        let case = format!("{kind:?} {headers:?}");
        match (want, got) {
            (Is(name, source), Ok(Some(selected))) => {
                assert_eq!(selected.name.as_str(), *name, "{case}");
                assert_eq!(selected.source, *source, "{case}");
                assert_eq!(
                    selected.settings.client_id,
                    format!("{name}-id"),
                    "{case}: settings of the selected client"
                );
                // The strict form agrees.
                let strict = select_client(&req, settings, kind).expect("strict agrees");
                assert_eq!(strict.name, selected.name, "{case}");
            }
            (Nothing, Ok(None)) => {
                let err = select_client(&req, settings, kind).expect_err("strict: 401");
                assert_eq!(err.status_code(), StatusCode::UNAUTHORIZED, "{case}");
                assert!(err.to_string().contains("defaultClient"), "{case}: {err}");
            }
            (Status(status, needle), Err(err)) => {
                assert_eq!(err.status_code().as_u16(), *status, "{case}: {err}");
                assert!(
                    err.to_string().contains(needle),
                    "{case}: {err} should contain {needle:?}"
                );
                let strict = select_client(&req, settings, kind).expect_err("strict agrees");
                assert_eq!(strict.status_code().as_u16(), *status, "{case}");
            }
            (want, got) => panic!("{case}: wanted {want:?}, got {got:?}"),
        }
    }

    #[test]
    fn without_api_keys_the_header_then_the_default_pick_the_client() {
        let s = settings(doc());
        for kind in [RouteKind::Api, RouteKind::Browser, RouteKind::Management] {
            for (headers, want) in [
                (vec![], Is("web", DEFAULT)),
                (vec![("client-type", "mobile")], Is("mobile", HEADER)),
                (vec![("Client-Type", "web")], Is("web", HEADER)),
                (vec![("client-type", "")], Is("web", DEFAULT)),
                (vec![("client-type", "Mobile")], Status(401, "\"Mobile\"")),
                (
                    vec![("client-type", "admin")],
                    Status(401, "`client-type` header"),
                ),
                // Keys mean nothing without `apiKeys`: a gateway may use `secret` itself.
                (vec![("secret", "whatever")], Is("web", DEFAULT)),
                (
                    vec![("secret", "whatever"), ("client-type", "mobile")],
                    Is("mobile", HEADER),
                ),
                (
                    vec![("cookie", "mia_client_key=key-web")],
                    Is("web", DEFAULT),
                ),
            ] {
                run(&s, kind, &headers, &want);
            }
        }
    }

    #[test]
    fn without_a_default_client_naming_none_is_nothing_then_401() {
        let mut d = doc();
        d["defaultClient"] = json!("");
        let s = settings(d);
        run(&s, RouteKind::Api, &[], &Nothing);
        run(&s, RouteKind::Browser, &[], &Nothing);
        run(
            &s,
            RouteKind::Api,
            &[("client-type", "mobile")],
            &Is("mobile", HEADER),
        );
    }

    #[test]
    fn with_api_keys_api_routes_need_a_valid_key() {
        let s = settings(doc_with_keys());
        for (headers, want) in [
            (vec![("secret", "key-web")], Is("web", KEY_WEB)),
            (vec![("secret", "key-mobile")], Is("mobile", KEY_WEB)),
            (vec![("client-key", "key-mobile")], Is("mobile", KEY_WEB)),
            (
                vec![("cookie", "mia_client_key=key-mobile")],
                Is("mobile", KEY_WEB),
            ),
            (vec![("secret", "key-admin")], Is("web", KEY_ADMIN)),
            // The key is the credential; the header only a hint.
            (
                vec![("secret", "key-web"), ("client-type", "mobile")],
                Is("web", KEY_WEB),
            ),
            (vec![], Status(401, "missing API key")),
            (vec![("client-type", "web")], Status(401, "missing API key")),
            (vec![("secret", "")], Status(401, "missing API key")),
            (
                vec![("secret", "nope")],
                Status(401, "`secret` header is not valid"),
            ),
            (
                vec![("client-key", "nope")],
                Status(401, "`client-key` header"),
            ),
            (
                vec![("cookie", "mia_client_key=nope")],
                Status(401, "`mia_client_key` cookie"),
            ),
            // Prefixes, extensions and case variants of a key are other keys.
            (vec![("secret", "key-we")], Status(401, "not valid")),
            (vec![("secret", "key-web2")], Status(401, "not valid")),
            (vec![("secret", "KEY-WEB")], Status(401, "not valid")),
            // The first place holding a key decides.
            (
                vec![("secret", "nope"), ("client-key", "key-web")],
                Status(401, "`secret` header"),
            ),
            (
                vec![
                    ("client-key", "key-mobile"),
                    ("cookie", "mia_client_key=nope"),
                ],
                Is("mobile", KEY_WEB),
            ),
        ] {
            run(&s, RouteKind::Api, &headers, &want);
        }
    }

    #[test]
    fn with_api_keys_management_routes_need_a_management_key() {
        let s = settings(doc_with_keys());
        for (headers, want) in [
            (vec![("secret", "key-admin")], Is("web", KEY_ADMIN)),
            (vec![("client-key", "key-admin")], Is("web", KEY_ADMIN)),
            (vec![("secret", "key-web")], Status(403, "`management`")),
            (
                vec![("secret", "key-mobile")],
                Status(403, "`secret` header"),
            ),
            (vec![], Status(401, "missing API key")),
            (vec![("secret", "nope")], Status(401, "not valid")),
            (vec![("client-type", "web")], Status(401, "missing API key")),
        ] {
            run(&s, RouteKind::Management, &headers, &want);
        }
    }

    #[test]
    fn with_api_keys_browser_routes_need_none_but_a_key_still_picks() {
        let s = settings(doc_with_keys());
        for (headers, want) in [
            (vec![], Is("web", DEFAULT)),
            (
                vec![("cookie", "mia_client_key=key-mobile")],
                Is("mobile", KEY_WEB),
            ),
            (vec![("secret", "key-admin")], Is("web", KEY_ADMIN)),
            // A stale cookie must not lock anyone out of /logout.
            (
                vec![("cookie", "mia_client_key=rotated-away")],
                Is("web", DEFAULT),
            ),
            (
                vec![("secret", "nope"), ("client-type", "mobile")],
                Is("mobile", HEADER),
            ),
            (vec![("client-type", "mobile")], Is("mobile", HEADER)),
            (
                vec![("client-type", "nope")],
                Status(401, "unknown client type"),
            ),
        ] {
            run(&s, RouteKind::Browser, &headers, &want);
        }
    }

    /// The upstream page's curl lines (reference §14) select as written.
    #[test]
    fn curl_examples_from_the_upstream_docs() {
        // `--header 'secret: YOUR_SECRET'`, with a key configured as such.
        let mut d = doc();
        d["clients"]["your_client_type"] = client("your_client_type-id");
        d["apiKeys"] = json!([{"key": "YOUR_SECRET", "clientType": "your_client_type"}]);
        let s = settings(d);
        for kind in [RouteKind::Api, RouteKind::Browser] {
            run(
                &s,
                kind,
                &[
                    ("secret", "YOUR_SECRET"),
                    ("content-type", "application/x-www-form-urlencoded"),
                ],
                &Is("your_client_type", KEY_WEB),
            );
        }
        run(
            &s,
            RouteKind::Api,
            &[
                ("secret", "YOUR_SECRET"),
                ("content-type", "application/json"),
                ("authorization", "Bearer your_access_token"),
            ],
            &Is("your_client_type", KEY_WEB),
        );

        // The direct call: `client-type` and `x-forwarded-host`, no keys configured.
        let mut d = doc();
        d["clients"]["your_client_type"] = client("your_client_type-id");
        let s = settings(d);
        run(
            &s,
            RouteKind::Api,
            &[
                ("client-type", "your_client_type"),
                ("x-forwarded-host", "your_host"),
            ],
            &Is("your_client_type", HEADER),
        );
    }

    #[test]
    fn named_is_a_key_or_the_header_never_the_default() {
        let s = settings(doc());
        let pick = |source| SelectedClient::new(&s, "web", source).expect("web exists");
        assert!(pick(KEY_WEB).named());
        assert!(pick(HEADER).named());
        assert!(!pick(DEFAULT).named());
        assert!(!pick(ClientSource::Session).named());
        assert!(pick(KEY_ADMIN).management_key());
        assert!(!pick(KEY_WEB).management_key());
        assert!(SelectedClient::new(&s, "nope", HEADER).is_none());
        assert_eq!(
            ClientType::known(&s, "mobile").expect("known").as_str(),
            "mobile"
        );
        assert_eq!(ClientType::known(&s, "nope"), None);
    }

    #[test]
    fn session_routes_use_the_session_client_unless_the_request_names_another() {
        let mut d = doc();
        d["clients"]["gone"] = client("gone-id");
        let with_gone = settings(d);
        let s = settings(doc());
        let pick = |name, source| SelectedClient::new(&with_gone, name, source).expect("exists");
        let web_default = pick("web", DEFAULT);
        let web_header = pick("web", HEADER);
        let mobile_header = pick("mobile", HEADER);
        let web_key = pick("web", KEY_WEB);

        for (selected, session, want) in [
            (None, "mobile", Ok(("mobile", ClientSource::Session))),
            (
                Some(&web_default),
                "mobile",
                Ok(("mobile", ClientSource::Session)),
            ),
            (
                Some(&web_default),
                "web",
                Ok(("web", ClientSource::Session)),
            ),
            (Some(&mobile_header), "mobile", Ok(("mobile", HEADER))),
            (Some(&web_key), "web", Ok(("web", KEY_WEB))),
            (
                Some(&web_header),
                "mobile",
                Err("another client than `web`"),
            ),
            (Some(&web_key), "mobile", Err("another client")),
            (None, "gone", Err("no longer configured")),
            (Some(&web_default), "gone", Err("\"gone\"")),
        ] {
            let case = format!("{selected:?} / {session}");
            match (resolve_session_client(selected, session, &s), want) {
                (Ok(got), Ok((name, source))) => {
                    assert_eq!(got.name.as_str(), name, "{case}");
                    assert_eq!(got.source, source, "{case}");
                    assert_eq!(got.settings.client_id, format!("{name}-id"), "{case}");
                }
                (Err(err), Err(needle)) => {
                    assert_eq!(err.status_code(), StatusCode::UNAUTHORIZED, "{case}");
                    assert!(err.to_string().contains(needle), "{case}: {err}");
                }
                (got, want) => panic!("{case}: wanted {want:?}, got {got:?}"),
            }
        }
    }

    #[actix_web::test]
    async fn extractors_read_the_app_settings() {
        let s = settings(doc_with_keys());

        let req = request_with(&s, "203.0.113.7", &[("secret", "key-mobile")]);
        let client = ApiClient::extract(&req).await.expect("selected");
        assert_eq!(client.name.as_str(), "mobile");
        assert!(client.named());
        let err = ManagementClient::extract(&req)
            .await
            .expect_err("not a management key");
        assert_eq!(err.status_code(), StatusCode::FORBIDDEN);

        let req = request(&s, "203.0.113.7").to_http_request();
        let err = ApiClient::extract(&req).await.expect_err("no key");
        assert_eq!(err.status_code(), StatusCode::UNAUTHORIZED);
        let client = BrowserClient::extract(&req)
            .await
            .expect("browser: no key needed");
        assert_eq!(client.into_inner().source, DEFAULT);

        // /logout without a key: the default client is not "named", so the session's wins.
        let requested = OptionalBrowserClient::extract(&req)
            .await
            .expect("no key needed");
        let resolved = requested.for_session("mobile").expect("session's client");
        assert_eq!(resolved.name.as_str(), "mobile");
        requested.check_session("mobile").expect("session's client");
        let err = requested.check_session("gone").expect_err("not configured");
        assert_eq!(err.status_code(), StatusCode::UNAUTHORIZED);
        assert_eq!(requested.required().expect("default").name.as_str(), "web");

        // /userinfo with web's key and a mobile session: 401.
        let req = request_with(&s, "203.0.113.7", &[("client-key", "key-web")]);
        let requested = OptionalApiClient::extract(&req).await.expect("valid key");
        let err = requested.for_session("mobile").expect_err("other client");
        assert_eq!(err.status_code(), StatusCode::UNAUTHORIZED);
        let err = requested.check_session("mobile").expect_err("other client");
        assert_eq!(err.status_code(), StatusCode::UNAUTHORIZED);
        requested
            .check_session("web")
            .expect("the named client's session");

        let mut d = doc();
        d["defaultClient"] = json!("");
        let bare = settings(d);
        let req = request(&bare, "203.0.113.7").to_http_request();
        let requested = OptionalApiClient::extract(&req)
            .await
            .expect("nothing named");
        assert_eq!(
            requested
                .for_session("mobile")
                .expect("session")
                .name
                .as_str(),
            "mobile"
        );
        let err = requested.required().expect_err("no client at all");
        assert_eq!(err.status_code(), StatusCode::UNAUTHORIZED);

        let unwired = TestRequest::default().to_http_request();
        let err = ApiClient::extract(&unwired).await.expect_err("no settings");
        assert_eq!(err.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
