//! Whom a request is from and how it was addressed, believing the forwarding headers
//! (`X-Forwarded-For`, `X-Forwarded-Host`, `X-Forwarded-Proto` and the header named by
//! `ORIGINAL_PROTOCOL_HEADER`) only when the TCP peer is in `server.trustedProxies` (SPEC §3, §4).
//!
//! Choices where the spec is silent:
//! - An IPv4 address seen as IPv6 (`::ffff:10.0.0.1`, as a dual-stack listener reports it) is
//!   compared as the IPv4 address, so `10.0.0.0/8` trusts it.
//! - `X-Forwarded-For` is walked from the right over every header line; an entry may carry a port
//!   (`1.2.3.4:5678`, `[2001:db8::1]:443`). When every hop is trusted the leftmost is the user
//!   (a request from inside the trusted network). An entry that is not an address breaks the
//!   chain: the nearest hop vouched for (a trusted proxy, or the peer) is used, since nothing left
//!   of the break can be believed.
//! - `X-Forwarded-Host` and the protocol headers may carry a list (`a, b`, or several header
//!   lines) when proxies append: they are walked like `X-Forwarded-For`, and the value read is the
//!   rightmost one, which the peer (a trusted proxy) set. Anything left of it came from further
//!   out, where a client may have written it (`X-Forwarded-Host: evil.example` sent to a proxy
//!   that appends). The host is checked against `server.allowedHosts` whichever header it came
//!   from.
//! - A request from a peer outside `server.trustedProxies` that carries `X-Forwarded-For` (or
//!   another `X-Forwarded-*` header) is most likely behind a proxy nobody listed: its headers are
//!   ignored, a warning naming `server.trustedProxies` is logged once per peer address, and
//!   `/-/check-up` reports the peer ([`crate::health::UntrustedForwarders`]). This is noticed where
//!   the headers would be read: the end user's IP, the public host and scheme.
//! - Without a believed protocol header, a deployment that declares itself plain http with
//!   `server.insecureCookies` is `http`; any other is `https` (SPEC §5 `/logout`).
//! - `server.allowedHosts`: names compare case-insensitively and IP addresses by value
//!   (`[0:0::1]` is `[::1]`). An entry without a port allows the host on any port (`app.example.com`
//!   allows `app.example.com:8443`); an entry with a port allows only that port.
//! - A host name is ASCII (IDNs in their `xn--` form), labels of letters, digits, `-` and `_` (as
//!   `server.allowedHosts` accepts), no trailing dot; one whose last label is numeric must be a
//!   dotted-quad IPv4 address, since browsers would read `1.2.3` or `0x7f.1` as an address.
//! - `Forwarded` (RFC 7239) and `X-Real-IP` are not read: the spec names the `X-Forwarded-*`
//!   headers, and reading two conventions invites disagreements an attacker can pick from.

use std::fmt;
use std::future::{Ready, ready};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};

use super::redirect::RelativeRedirect;
use super::{quoted, settings};
use crate::config::host::is_port;
use crate::config::{PublicHost, Settings};
use crate::health::Health;
use crate::http::ApiError;

/// The header Auth0 reads the end user's IP from on token requests (password grants). Auth0 only
/// honours it for applications with "Trust Token Endpoint IP Header" enabled.
pub const AUTH0_FORWARDED_FOR: &str = "auth0-forwarded-for";

pub(super) const X_FORWARDED_FOR: &str = "x-forwarded-for";
const X_FORWARDED_HOST: &str = "x-forwarded-host";
const X_FORWARDED_PROTO: &str = "x-forwarded-proto";

/// The TCP peer's address, IPv4-mapped IPv6 addresses as IPv4.
pub(super) fn peer_ip(req: &HttpRequest) -> Option<IpAddr> {
    req.peer_addr().map(|addr| addr.ip().to_canonical())
}

pub(super) fn is_trusted(settings: &Settings, ip: IpAddr) -> bool {
    settings
        .server
        .trusted_proxies
        .iter()
        .any(|net| net.contains(&ip))
}

/// Whether the TCP peer is in `server.trustedProxies`, so its forwarding headers are believed.
/// An untrusted peer that sent forwarding headers anyway is noted (see the module doc).
pub fn trusted_peer(req: &HttpRequest, settings: &Settings) -> bool {
    match peer_ip(req) {
        Some(ip) if is_trusted(settings, ip) => true,
        Some(ip) => {
            note_untrusted_forwarding(req, ip);
            false
        }
        None => false,
    }
}

/// Notes `peer`, an untrusted peer, when its request carries forwarding headers: a warning once
/// per address, and the `proxies` entry of `/-/check-up`. Nothing when the app registered no
/// [`Health`] (unit tests of the rules).
fn note_untrusted_forwarding(req: &HttpRequest, peer: IpAddr) {
    let headers = req.headers();
    let forwarding = [X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_PROTO]
        .into_iter()
        .find(|name| headers.contains_key(*name));
    let Some(header) = forwarding else {
        return;
    };
    let Some(health) = req.app_data::<web::Data<Health>>() else {
        return;
    };
    if health.untrusted_forwarders().note(peer) {
        tracing::warn!(
            %peer,
            header,
            "a peer outside server.trustedProxies sent forwarding headers, which were ignored: \
             if it is a proxy, list it (or its network) in server.trustedProxies, else every user \
             behind it looks like one address to Auth0's brute-force protection"
        );
    }
}

/// The end user's IP: the first untrusted hop of `X-Forwarded-For`, walking from the right, when
/// the peer is a trusted proxy; else the peer. `None` only when the peer is unknown (no TCP peer,
/// as in some tests), since forwarding headers are believed only from a known peer.
pub fn end_user_ip(req: &HttpRequest, settings: &Settings) -> Option<IpAddr> {
    let peer = peer_ip(req)?;
    if !is_trusted(settings, peer) {
        note_untrusted_forwarding(req, peer);
        return Some(peer);
    }
    // A line that is not text is one unreadable hop: the walk stops there.
    const UNREADABLE: &str = "?";
    let mut hops: Vec<&str> = Vec::new();
    for line in req.headers().get_all(X_FORWARDED_FOR) {
        match line.to_str() {
            Ok(line) => hops.extend(line.split(',').map(str::trim).filter(|h| !h.is_empty())),
            Err(_) => hops.push(UNREADABLE),
        }
    }
    let mut nearest = peer;
    for hop in hops.iter().rev() {
        match parse_forwarded_ip(hop) {
            Some(ip) if is_trusted(settings, ip) => nearest = ip,
            Some(ip) => return Some(ip),
            None => return Some(nearest),
        }
    }
    Some(nearest)
}

/// The `auth0-forwarded-for` value for a password grant: [`end_user_ip`] as text.
pub fn auth0_forwarded_for(req: &HttpRequest, settings: &Settings) -> Option<String> {
    end_user_ip(req, settings).map(|ip| ip.to_string())
}

/// One `X-Forwarded-For` entry: an address, optionally with a port (`[v6]:port`, `v4:port`).
fn parse_forwarded_ip(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim().trim_matches('"');
    if let Some(rest) = entry.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(is_port);
        return port_ok
            .then(|| ip.parse::<Ipv6Addr>().ok())
            .flatten()
            .map(|ip| IpAddr::V6(ip).to_canonical());
    }
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    let (ip, port) = entry.split_once(':')?;
    is_port(port)
        .then(|| ip.parse::<Ipv4Addr>().ok())
        .flatten()
        .map(IpAddr::V4)
}

/// Extractor: the end user's IP ([`end_user_ip`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndUser {
    pub ip: Option<IpAddr>,
}

impl EndUser {
    /// The value of the `auth0-forwarded-for` header for this user.
    pub fn forwarded_for(&self) -> Option<String> {
        self.ip.map(|ip| ip.to_string())
    }
}

impl FromRequest for EndUser {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(settings(req).map(|settings| Self {
            ip: end_user_ip(req, &settings),
        }))
    }
}

/// The value of a forwarding header that the nearest proxy set: the rightmost non-empty element
/// over every line of header `name` (`a, b` and two lines `a` then `b` both give `b`). `None`
/// when absent or empty; 400 naming the header when a line that must be read is not text.
fn rightmost_value<'r>(req: &'r HttpRequest, name: &str) -> Result<Option<&'r str>, ApiError> {
    let lines: Vec<_> = req.headers().get_all(name).collect();
    for line in lines.into_iter().rev() {
        let line = line.to_str().map_err(|_| {
            ApiError::BadRequest(format!("the `{name}` header is not printable ASCII"))
        })?;
        if let Some(value) = line.rsplit(',').map(str::trim).find(|v| !v.is_empty()) {
            return Ok(Some(value));
        }
    }
    Ok(None)
}

/// The scheme of the URL the user sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }

    fn parse(value: &str, header: &str) -> Result<Self, ApiError> {
        if value.eq_ignore_ascii_case("https") {
            Ok(Self::Https)
        } else if value.eq_ignore_ascii_case("http") {
            Ok(Self::Http)
        } else {
            Err(ApiError::BadRequest(format!(
                "invalid protocol {} in the `{header}` header: expected http or https",
                quoted(value)
            )))
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The scheme the user reached us with (SPEC §5 `/logout`): the header named by
/// `ORIGINAL_PROTOCOL_HEADER`, else `X-Forwarded-Proto`, both only from a trusted peer (their
/// rightmost value); else `http` when `server.insecureCookies` declares a plain-http deployment;
/// else `https`. A value other than `http` or `https` (any case) is 400 naming the header.
pub fn public_scheme(req: &HttpRequest, settings: &Settings) -> Result<Scheme, ApiError> {
    if trusted_peer(req, settings) {
        let named = settings.original_protocol_header.as_deref();
        for name in named.into_iter().chain([X_FORWARDED_PROTO]) {
            if let Some(value) = rightmost_value(req, name)? {
                return Scheme::parse(value, name);
            }
        }
    }
    Ok(if settings.server.insecure_cookies {
        Scheme::Http
    } else {
        Scheme::Https
    })
}

/// The host the user reached us at, for absolute URLs (SPEC §4): `X-Forwarded-Host` from a
/// trusted peer (its rightmost value, which that peer set), else `Host` (else the HTTP/2
/// authority). It must parse as a [`PublicHost`] and be
/// allowed by `server.allowedHosts` when that is non-empty; otherwise 400 naming the host and the
/// header it came from.
pub fn public_host(req: &HttpRequest, settings: &Settings) -> Result<PublicHost, ApiError> {
    let forwarded = if trusted_peer(req, settings) {
        rightmost_value(req, X_FORWARDED_HOST)?
    } else {
        None
    };
    let (text, from) = match forwarded {
        Some(host) => (host, "`X-Forwarded-Host` header"),
        None => match req.headers().get(header::HOST) {
            Some(host) => (
                host.to_str()
                    .map_err(|_| {
                        ApiError::BadRequest("the `Host` header is not printable ASCII".into())
                    })?
                    .trim(),
                "`Host` header",
            ),
            None => match req.uri().authority() {
                Some(authority) => (authority.as_str(), "request's authority"),
                None => {
                    return Err(ApiError::BadRequest(
                        "missing `Host` header: an absolute URL cannot be built".into(),
                    ));
                }
            },
        },
    };
    let host = PublicHost::parse(text).map_err(|expected| {
        ApiError::BadRequest(format!(
            "invalid host {} in the {from}: {expected}",
            quoted(text)
        ))
    })?;
    let allowed = &settings.server.allowed_hosts;
    let admitted = allowed.is_empty() || allowed.iter().any(|entry| host.allowed_by(entry));
    if !admitted {
        return Err(ApiError::BadRequest(format!(
            "host `{host}` (from the {from}) is not in `server.allowedHosts`"
        )));
    }
    Ok(host)
}

/// `<scheme>://<host>` of the URL the user sees, for absolute URLs such as logout's `returnTo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicOrigin {
    pub scheme: Scheme,
    pub host: PublicHost,
}

impl PublicOrigin {
    /// [`public_scheme`] and [`public_host`] of the request.
    pub fn of(req: &HttpRequest, settings: &Settings) -> Result<Self, ApiError> {
        Ok(Self {
            scheme: public_scheme(req, settings)?,
            host: public_host(req, settings)?,
        })
    }

    /// The absolute URL of `redirect` on this origin: `<scheme>://<host><redirect>`, the redirect
    /// as the caller sent it (its query string included). Encode the whole when it goes into a
    /// query string (logout's `returnTo`).
    pub fn url(&self, redirect: &RelativeRedirect) -> String {
        format!("{self}{}", redirect.as_str())
    }
}

impl fmt::Display for PublicOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::StatusCode;
    use actix_web::http::header::HeaderValue;
    use actix_web::test::TestRequest;
    use actix_web::{FromRequest, ResponseError};
    use serde_json::{Value, json};

    use super::*;
    use crate::http::extract::test_support::{
        doc, request, request_with, settings, settings_env, with_headers,
    };

    /// The test document with the proxies these tests stand behind: loopback and private ranges.
    fn proxied() -> Value {
        let mut d = doc();
        d["server"] = json!({"trustedProxies": [
            "127.0.0.0/8", "::1", "10.0.0.0/8", "192.168.0.0/16", "fd00::/8"
        ]});
        d
    }

    #[test]
    fn end_user_ip_walks_x_forwarded_for_from_a_trusted_peer() {
        let s = settings(proxied());
        for (peer, xff, want) in [
            // An untrusted peer is the user, whatever it claims.
            ("203.0.113.7", vec!["1.1.1.1"], "203.0.113.7"),
            ("203.0.113.7", vec![], "203.0.113.7"),
            ("10.0.0.1", vec![], "10.0.0.1"),
            ("10.0.0.1", vec!["198.51.100.9"], "198.51.100.9"),
            // The leftmost entries are the client's own claims: skipped past the first untrusted hop.
            (
                "10.0.0.1",
                vec!["6.6.6.6, 198.51.100.9, 10.0.0.2"],
                "198.51.100.9",
            ),
            (
                "10.0.0.1",
                vec!["6.6.6.6,198.51.100.9,,10.0.0.2"],
                "198.51.100.9",
            ),
            ("10.0.0.1", vec!["6.6.6.6", "198.51.100.9"], "198.51.100.9"),
            ("10.0.0.1", vec!["198.51.100.9:5555"], "198.51.100.9"),
            ("10.0.0.1", vec!["[2001:db8::1]:443"], "2001:db8::1"),
            ("10.0.0.1", vec!["2001:db8::1"], "2001:db8::1"),
            ("10.0.0.1", vec!["\"[2001:db8::2]\""], "2001:db8::2"),
            ("10.0.0.1", vec!["::ffff:198.51.100.9"], "198.51.100.9"),
            // Every hop trusted: the request started inside; the furthest hop is the user.
            ("10.0.0.1", vec!["10.0.0.3, 192.168.1.1"], "10.0.0.3"),
            // A broken chain: the nearest hop vouched for.
            ("10.0.0.1", vec!["198.51.100.9, unknown"], "10.0.0.1"),
            ("10.0.0.1", vec!["garbage, 10.0.0.2"], "10.0.0.2"),
            ("10.0.0.1", vec!["198.51.100.9:99999"], "10.0.0.1"),
            ("10.0.0.1", vec!["198.51.100.9:"], "10.0.0.1"),
            // Dual-stack listeners report IPv4 peers as mapped IPv6 addresses.
            ("::ffff:10.0.0.1", vec!["198.51.100.9"], "198.51.100.9"),
            ("::1", vec!["198.51.100.9"], "198.51.100.9"),
            ("127.0.0.1", vec!["198.51.100.9"], "198.51.100.9"),
            ("fd00::5", vec!["2001:db8::7"], "2001:db8::7"),
            ("2001:db8::9", vec!["198.51.100.9"], "2001:db8::9"),
        ] {
            let headers: Vec<_> = xff.iter().map(|v| ("x-forwarded-for", *v)).collect();
            let req = with_headers(request(&s, peer), &headers);
            let got = end_user_ip(&req, &s).map(|ip| ip.to_string());
            assert_eq!(
                got.as_deref(),
                Some(want),
                "peer {peer}, X-Forwarded-For {xff:?}"
            );
            assert_eq!(auth0_forwarded_for(&req, &s).as_deref(), Some(want));
        }
    }

    #[test]
    fn an_unreadable_x_forwarded_for_line_stops_the_walk() {
        let s = settings(proxied());
        let req = request(&s, "10.0.0.1")
            .append_header(("x-forwarded-for", "6.6.6.6"))
            .append_header((
                "x-forwarded-for",
                HeaderValue::from_bytes(b"\xff\xfe").expect("opaque bytes"),
            ))
            .append_header(("x-forwarded-for", "10.0.0.2"))
            .to_http_request();
        assert_eq!(end_user_ip(&req, &s), Some("10.0.0.2".parse().expect("ip")));
    }

    #[test]
    fn trusted_proxies_come_from_the_settings() {
        let mut d = doc();
        d["server"] = json!({"trustedProxies": ["203.0.113.0/24"]});
        let s = settings(d);
        let req = with_headers(request(&s, "10.0.0.1"), &[("x-forwarded-for", "6.6.6.6")]);
        assert!(!trusted_peer(&req, &s));
        assert_eq!(auth0_forwarded_for(&req, &s).as_deref(), Some("10.0.0.1"));
        let req = with_headers(
            request(&s, "203.0.113.7"),
            &[("x-forwarded-for", "198.51.100.9, 203.0.113.8")],
        );
        assert!(trusted_peer(&req, &s));
        assert_eq!(
            auth0_forwarded_for(&req, &s).as_deref(),
            Some("198.51.100.9")
        );

        // An empty list trusts nobody, loopback included.
        let mut d = doc();
        d["server"] = json!({"trustedProxies": []});
        let s = settings(d);
        let req = with_headers(request(&s, "127.0.0.1"), &[("x-forwarded-for", "6.6.6.6")]);
        assert!(!trusted_peer(&req, &s));
        assert_eq!(auth0_forwarded_for(&req, &s).as_deref(), Some("127.0.0.1"));
    }

    #[test]
    fn without_a_peer_nothing_is_believed() {
        let s = settings(doc());
        let req = TestRequest::default()
            .insert_header(("x-forwarded-for", "198.51.100.9"))
            .insert_header(("x-forwarded-proto", "http"))
            .insert_header(("x-forwarded-host", "evil.example"))
            .insert_header(("host", "app.example.com"))
            .to_http_request();
        assert_eq!(end_user_ip(&req, &s), None);
        assert!(!trusted_peer(&req, &s));
        assert_eq!(public_scheme(&req, &s).expect("default"), Scheme::Https);
        assert_eq!(
            public_host(&req, &s).expect("Host").to_string(),
            "app.example.com"
        );
    }

    #[actix_web::test]
    async fn end_user_extractor() {
        let s = settings(proxied());
        let req = request(&s, "10.0.0.1")
            .insert_header(("x-forwarded-for", "198.51.100.9"))
            .to_http_request();
        let user = EndUser::extract(&req).await.expect("extracted");
        assert_eq!(user.ip, Some("198.51.100.9".parse().expect("ip")));
        assert_eq!(user.forwarded_for().as_deref(), Some("198.51.100.9"));
        assert_eq!(AUTH0_FORWARDED_FOR, "auth0-forwarded-for");

        let unwired = TestRequest::default().to_http_request();
        let err = EndUser::extract(&unwired).await.expect_err("no settings");
        assert_eq!(err.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    /// Checks one case of a rule that reads a value or answers 400: `want` is the value, or a
    /// piece of the 400's message.
    fn check<T, W>(case: &str, got: Result<T, ApiError>, want: Result<W, &str>)
    where
        T: PartialEq<W> + fmt::Debug,
        W: fmt::Debug,
    {
        match (got, want) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{case}"),
            (Err(err), Err(needle)) => {
                assert_eq!(err.status_code(), StatusCode::BAD_REQUEST, "{case}: {err}");
                assert!(
                    err.to_string().contains(needle),
                    "{case}: {err} should contain {needle:?}"
                );
            }
            (got, want) => panic!("{case}: wanted {want:?}, got {got:?}"),
        }
    }

    /// [`public_host`] of a request from `peer` with `headers`, checked against `want`.
    fn host_case(s: &Settings, peer: &str, headers: &[(&str, &str)], want: Result<&str, &str>) {
        let got = public_host(&request_with(s, peer, headers), s).map(|host| host.to_string());
        check(&format!("{peer} {headers:?}"), got, want);
    }

    /// [`public_scheme`] of a request from `peer` with `headers`, checked against `want`.
    fn scheme_case(s: &Settings, peer: &str, headers: &[(&str, &str)], want: Result<Scheme, &str>) {
        let got = public_scheme(&request_with(s, peer, headers), s);
        check(&format!("{peer} {headers:?}"), got, want);
    }

    #[test]
    fn public_host_believes_x_forwarded_host_from_trusted_peers_only() {
        let s = settings(proxied());
        for (peer, headers, want) in [
            (
                "10.0.0.1",
                vec![
                    ("host", "internal:8080"),
                    ("x-forwarded-host", "app.example.com"),
                ],
                Ok("app.example.com"),
            ),
            // A proxy that appends: the client's own claim is on the left, the proxy's last.
            (
                "10.0.0.1",
                vec![
                    ("host", "internal"),
                    ("x-forwarded-host", "evil.example, app.example.com"),
                ],
                Ok("app.example.com"),
            ),
            (
                "10.0.0.1",
                vec![
                    ("host", "internal"),
                    ("x-forwarded-host", "evil.example"),
                    ("x-forwarded-host", "app.example.com"),
                ],
                Ok("app.example.com"),
            ),
            (
                "10.0.0.1",
                vec![
                    ("host", "internal"),
                    ("x-forwarded-host", "app.example.com, "),
                    ("x-forwarded-host", ""),
                ],
                Ok("app.example.com"),
            ),
            // The rightmost value is the one read, so a client's bad first element is no error.
            (
                "10.0.0.1",
                vec![
                    ("host", "internal"),
                    ("x-forwarded-host", "evil.example/x, app.example.com"),
                ],
                Ok("app.example.com"),
            ),
            // An untrusted peer: no element is believed, the rightmost included.
            (
                "203.0.113.7",
                vec![
                    ("host", "app.example.com"),
                    ("x-forwarded-host", "other.example, evil.example"),
                ],
                Ok("app.example.com"),
            ),
            (
                "203.0.113.7",
                vec![
                    ("host", "app.example.com"),
                    ("x-forwarded-host", "evil.example"),
                ],
                Ok("app.example.com"),
            ),
            (
                "203.0.113.7",
                vec![("host", "App.Example.com:8443")],
                Ok("app.example.com:8443"),
            ),
            (
                "10.0.0.1",
                vec![("host", "app.example.com"), ("x-forwarded-host", "")],
                Ok("app.example.com"),
            ),
            // The upstream page's direct call: `x-forwarded-host: your_host` through a local proxy.
            (
                "127.0.0.1",
                vec![("x-forwarded-host", "your_host")],
                Ok("your_host"),
            ),
            (
                "10.0.0.1",
                vec![
                    ("host", "app.example.com"),
                    ("x-forwarded-host", "evil.example/x"),
                ],
                Err("`X-Forwarded-Host` header"),
            ),
            (
                "203.0.113.7",
                vec![("host", "good.example@evil.example")],
                Err("\"good.example@evil.example\" in the `Host` header"),
            ),
            ("203.0.113.7", vec![], Err("missing `Host` header")),
        ] {
            host_case(&s, peer, &headers, want);
        }
    }

    #[test]
    fn public_host_must_be_allowed_when_allowed_hosts_is_set() {
        let mut d = proxied();
        d["server"]["allowedHosts"] =
            json!(["App.Example.com", "admin.example.com:8443", "[::1]:8080"]);
        let s = settings(d);
        // A trusted proxy's `X-Forwarded-Host` (its rightmost value) must be allowed.
        for (headers, want) in [
            (
                vec![("x-forwarded-host", "app.example.com")],
                Ok("app.example.com"),
            ),
            (
                vec![("x-forwarded-host", "APP.EXAMPLE.COM:444")],
                Ok("app.example.com:444"),
            ),
            (
                vec![
                    ("host", "app.example.com"),
                    ("x-forwarded-host", "evil.example"),
                ],
                Err("host `evil.example` (from the `X-Forwarded-Host` header)"),
            ),
            (
                vec![
                    ("host", "app.example.com"),
                    ("x-forwarded-host", "app.example.com, evil.example"),
                ],
                Err("host `evil.example` (from the `X-Forwarded-Host` header)"),
            ),
            (
                vec![("x-forwarded-host", "evil.example, app.example.com")],
                Ok("app.example.com"),
            ),
        ] {
            host_case(&s, "10.0.0.1", &headers, want);
        }
        // So must an untrusted peer's `Host`.
        for (host, want) in [
            ("admin.example.com:8443", Ok("admin.example.com:8443")),
            ("[::1]:8080", Ok("[::1]:8080")),
            (
                "admin.example.com",
                Err(
                    "host `admin.example.com` (from the `Host` header) is not in `server.allowedHosts`",
                ),
            ),
            ("[::1]", Err("`[::1]`")),
        ] {
            host_case(&s, "203.0.113.7", &[("host", host)], want);
        }
    }

    #[test]
    fn scheme_from_the_original_protocol_header_then_x_forwarded_proto() {
        let plain = settings(proxied());
        let named = settings_env(
            proxied(),
            &[("ORIGINAL_PROTOCOL_HEADER", "X-Original-Proto")],
        );
        for (headers, want) in [
            (vec![("x-original-proto", "http")], Ok(Scheme::Http)),
            (
                vec![("x-original-proto", "http"), ("x-forwarded-proto", "https")],
                Ok(Scheme::Http),
            ),
            (vec![("X-Original-Proto", "HTTP")], Ok(Scheme::Http)),
            (vec![("x-forwarded-proto", "http")], Ok(Scheme::Http)),
            (vec![("x-original-proto", "")], Ok(Scheme::Https)),
            (vec![], Ok(Scheme::Https)),
            // Walked like X-Forwarded-For: the value the nearest proxy set, not a client's.
            (vec![("x-original-proto", "http, https")], Ok(Scheme::Https)),
            (
                vec![("x-original-proto", "ftp")],
                Err("`x-original-proto` header"),
            ),
        ] {
            scheme_case(&named, "10.0.0.1", &headers, want);
        }
        // Untrusted peers cannot downgrade the scheme.
        for (headers, want) in [
            (vec![("x-original-proto", "http")], Ok(Scheme::Https)),
            (vec![("x-forwarded-proto", "http")], Ok(Scheme::Https)),
            (vec![("x-original-proto", "javascript")], Ok(Scheme::Https)),
        ] {
            scheme_case(&named, "203.0.113.7", &headers, want);
        }
        // Without ORIGINAL_PROTOCOL_HEADER the header means nothing.
        for (headers, want) in [
            (
                vec![
                    ("x-forwarded-proto", "http"),
                    ("x-forwarded-proto", "https"),
                ],
                Ok(Scheme::Https),
            ),
            (
                vec![("x-forwarded-proto", "javascript, http")],
                Ok(Scheme::Http),
            ),
            (vec![("x-original-proto", "http")], Ok(Scheme::Https)),
            (
                vec![("x-original-proto", "http"), ("x-forwarded-proto", "HTTPS")],
                Ok(Scheme::Https),
            ),
            (vec![("x-forwarded-proto", "http")], Ok(Scheme::Http)),
            (
                vec![("x-forwarded-proto", "javascript")],
                Err("`x-forwarded-proto` header"),
            ),
            (
                vec![("x-forwarded-proto", "https:")],
                Err("expected http or https"),
            ),
        ] {
            scheme_case(&plain, "10.0.0.1", &headers, want);
        }
    }

    #[test]
    fn a_plain_http_deployment_is_http_unless_a_trusted_proxy_says_otherwise() {
        let mut d = proxied();
        d["server"]["insecureCookies"] = json!(true);
        let s = settings_env(d, &[("ORIGINAL_PROTOCOL_HEADER", "x-original-proto")]);
        for (peer, headers, want) in [
            ("127.0.0.1", vec![], Scheme::Http),
            ("203.0.113.7", vec![], Scheme::Http),
            // An untrusted peer cannot upgrade or downgrade it either.
            (
                "203.0.113.7",
                vec![("x-forwarded-proto", "https")],
                Scheme::Http,
            ),
            (
                "10.0.0.1",
                vec![("x-forwarded-proto", "https")],
                Scheme::Https,
            ),
            (
                "10.0.0.1",
                vec![("x-original-proto", "https")],
                Scheme::Https,
            ),
            (
                "10.0.0.1",
                vec![("x-original-proto", "http"), ("x-forwarded-proto", "https")],
                Scheme::Http,
            ),
        ] {
            scheme_case(&s, peer, &headers, Ok(want));
        }
        // Without insecureCookies the same bare request is https.
        let s = settings(proxied());
        scheme_case(&s, "127.0.0.1", &[], Ok(Scheme::Https));
    }

    #[test]
    fn by_default_only_loopback_is_a_proxy() {
        let s = settings(doc());
        for (peer, want) in [
            ("127.0.0.1", "198.51.100.9"),
            ("::1", "198.51.100.9"),
            ("10.0.0.1", "10.0.0.1"),
            ("192.168.1.1", "192.168.1.1"),
            ("172.16.0.1", "172.16.0.1"),
            ("fd00::5", "fd00::5"),
        ] {
            let req = with_headers(
                request(&s, peer),
                &[
                    ("x-forwarded-for", "198.51.100.9"),
                    ("x-forwarded-host", "evil.example"),
                    ("host", "app.example.com"),
                ],
            );
            let got = end_user_ip(&req, &s).map(|ip| ip.to_string());
            assert_eq!(got.as_deref(), Some(want), "peer {peer}");
            let host = public_host(&req, &s).expect("host").to_string();
            let believed = want == "198.51.100.9";
            assert_eq!(
                host,
                if believed {
                    "evil.example"
                } else {
                    "app.example.com"
                },
                "peer {peer}"
            );
        }
    }

    #[test]
    fn untrusted_peers_sending_forwarding_headers_are_noted_once_each() {
        let s = settings(doc());
        let health = web::Data::new(Health::default());
        let req = |peer: &str, headers: &[(&str, &str)]| {
            with_headers(request(&s, peer).app_data(health.clone()), headers)
        };
        // A trusted proxy, and an untrusted peer without forwarding headers: nothing noted.
        end_user_ip(&req("127.0.0.1", &[("x-forwarded-for", "1.2.3.4")]), &s);
        end_user_ip(&req("10.0.0.1", &[]), &s);
        assert!(health.untrusted_forwarders().peers().is_empty());

        end_user_ip(&req("10.0.0.1", &[("x-forwarded-for", "1.2.3.4")]), &s);
        end_user_ip(&req("10.0.0.1", &[("x-forwarded-for", "5.6.7.8")]), &s);
        public_host(
            &req(
                "10.0.0.2",
                &[("x-forwarded-host", "a.example"), ("host", "b.example")],
            ),
            &s,
        )
        .expect("Host");
        public_scheme(&req("10.0.0.3", &[("x-forwarded-proto", "http")]), &s).expect("https");
        let peers: Vec<String> = health
            .untrusted_forwarders()
            .peers()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(peers, ["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
        // Noted once: a second note of the same peer is not new.
        assert!(
            !health
                .untrusted_forwarders()
                .note("10.0.0.1".parse().expect("ip"))
        );
    }

    #[test]
    fn origin_and_absolute_urls() {
        let s = settings_env(
            proxied(),
            &[("ORIGINAL_PROTOCOL_HEADER", "x-original-proto")],
        );
        let redirect = RelativeRedirect::parse("/web-login?redirect=/backoffice").expect("valid");

        let req = with_headers(
            request(&s, "10.0.0.1"),
            &[
                ("x-forwarded-host", "mia-project.example.org"),
                ("host", "auth0-client:8080"),
            ],
        );
        let origin = PublicOrigin::of(&req, &s).expect("origin");
        assert_eq!(origin.to_string(), "https://mia-project.example.org");
        assert_eq!(
            origin.url(&redirect),
            "https://mia-project.example.org/web-login?redirect=/backoffice"
        );

        let req = with_headers(
            request(&s, "127.0.0.1"),
            &[("host", "127.0.0.1:8080"), ("x-original-proto", "http")],
        );
        let origin = PublicOrigin::of(&req, &s).expect("origin");
        assert_eq!(origin.scheme, Scheme::Http);
        let logout_page = RelativeRedirect::parse("/logout-page").expect("valid");
        assert_eq!(
            origin.url(&logout_page),
            "http://127.0.0.1:8080/logout-page"
        );

        let req = with_headers(request(&s, "127.0.0.1"), &[("host", "bad host")]);
        let err = PublicOrigin::of(&req, &s).expect_err("bad host");
        assert_eq!(err.status_code(), StatusCode::BAD_REQUEST);
        let req = with_headers(
            request(&s, "127.0.0.1"),
            &[("host", "app.example.com"), ("x-original-proto", "gopher")],
        );
        let err = PublicOrigin::of(&req, &s).expect_err("bad scheme");
        assert!(err.to_string().contains("x-original-proto"), "{err}");
    }

    #[test]
    fn non_text_forwarding_headers_are_400() {
        let s = settings(proxied());
        let req = request(&s, "10.0.0.1")
            .insert_header((
                "x-forwarded-host",
                HeaderValue::from_bytes(b"caf\xe9.example").expect("opaque bytes"),
            ))
            .to_http_request();
        let err = public_host(&req, &s).expect_err("not text");
        assert!(err.to_string().contains("x-forwarded-host"), "{err}");
    }
}
