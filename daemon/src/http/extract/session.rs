//! [`SessionCredential`]: what a request presents to find its session (SPEC §5): an
//! `Authorization: Bearer <access token>` and the `sid` cookie, both kept, since `/userinfo` falls
//! back to the cookie when the Bearer token names no session.
//!
//! Choices where the spec is silent:
//! - The scheme is matched case-insensitively (`bearer`, `BEARER`); another scheme (`Basic`), an
//!   empty token, a token with whitespace or non-ASCII, or one over [`MAX_BEARER_LEN`] bytes is no
//!   Bearer token at all (as if absent), never an error by itself: the route answers 401 when
//!   nothing names a session.
//! - Only the first `Authorization` header is read.
//! - A `sid` cookie that is not a well-formed session id ([`SessionId::parse`]) is ignored: it
//!   cannot name a session, and nothing else reaches the store.
//! - Several `sid` cookies with different values (one tossed by a sibling domain with a longer
//!   `Path`, which browsers send first) are 400 naming the cookie: picking one would be a guess,
//!   and the attacker's would win.

use std::fmt;
use std::future::{Ready, ready};
use std::ops::Range;

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpRequest};

use crate::http::ApiError;
use crate::store::SessionId;

/// The session cookie's name.
pub const SID_COOKIE: &str = "sid";

/// Longest Bearer token read, in bytes (access tokens carrying many permissions run to a few KiB).
pub const MAX_BEARER_LEN: usize = 16 * 1024;

/// The credentials a request presents for a session; either, both or neither. Its `Debug` hides
/// the token.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SessionCredential {
    /// The `Authorization` header and where its token starts: a share of the request's own
    /// bytes rather than a copy of the token.
    bearer: Option<(HeaderValue, Range<usize>)>,
    /// The `sid` cookie, when it is a well-formed session id.
    pub cookie_sid: Option<SessionId>,
}

impl SessionCredential {
    /// The credentials `req` presents; 400 when it carries several different `sid` cookies.
    pub fn of(req: &HttpRequest) -> Result<Self, ApiError> {
        let mut sids = sid_cookies(req);
        let sid = sids.next();
        if let Some(first) = sid
            && sids.any(|other| other != first)
        {
            return Err(ApiError::BadRequest(format!(
                "several `{SID_COOKIE}` cookies: the request carries more than one session \
                 cookie (one may be set for another path or a parent domain); clear them and \
                 log in again"
            )));
        }
        Ok(Self {
            bearer: bearer_token(req),
            cookie_sid: sid.and_then(|sid| SessionId::parse(sid).ok()),
        })
    }

    /// The access token of `Authorization: Bearer <token>`.
    pub fn bearer(&self) -> Option<&str> {
        let (header, token) = self.bearer.as_ref()?;
        // Checked printable ASCII when read, so this cannot fail.
        std::str::from_utf8(header.as_bytes().get(token.clone())?).ok()
    }

    /// Whether the request presents nothing that could name a session.
    pub fn is_empty(&self) -> bool {
        self.bearer.is_none() && self.cookie_sid.is_none()
    }

    /// These credentials, or 401 when there are none (`/userinfo`, `/refreshtoken`).
    pub fn require(self) -> Result<Self, ApiError> {
        if self.is_empty() {
            Err(ApiError::Unauthorized(format!(
                "no session: send `Authorization: Bearer <access token>` or the `{SID_COOKIE}` cookie"
            )))
        } else {
            Ok(self)
        }
    }
}

impl fmt::Debug for SessionCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionCredential")
            .field("bearer", &self.bearer.as_ref().map(|_| "<redacted>"))
            .field("cookie_sid", &self.cookie_sid)
            .finish()
    }
}

/// Extractor: fails only on several `sid` cookies; use [`SessionCredential::require`] where a
/// session is mandatory.
impl FromRequest for SessionCredential {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::of(req))
    }
}

/// Every non-empty `sid` cookie value across every `Cookie` header, unquoted (read by hand like
/// [`super::cookie`], so one malformed cookie of another application does not hide it).
fn sid_cookies(req: &HttpRequest) -> impl Iterator<Item = &str> {
    super::cookies(req, SID_COOKIE).filter(|value| !value.is_empty())
}

/// The `Authorization` header and where its token is when it is `Bearer <token>` (see the module
/// doc for what is not one).
///
/// This runs on every `/userinfo`, with tokens of a few hundred bytes to a few KiB: it reads the
/// header's raw bytes once, in a loop without early exit that the compiler vectorises
/// (`HeaderValue::to_str` plus a second check per byte were 6% of the route's CPU).
fn bearer_token(req: &HttpRequest) -> Option<(HeaderValue, Range<usize>)> {
    let header = req.headers().get(header::AUTHORIZATION)?;
    let value = header.as_bytes();
    let end = value.trim_ascii_end().len();
    let start = value.len() - value.trim_ascii_start().len();
    let trimmed = value.get(start..end)?;
    let space = trimmed.iter().position(|&b| b == b' ')?;
    let scheme = &trimmed[..space];
    let skip = trimmed[space..].iter().position(|&b| b != b' ')?;
    let token = start + space + skip..end;
    let bytes = &value[token.clone()];
    // Printable ASCII other than the space: `!` (0x21) to `~` (0x7e).
    let printable = bytes
        .iter()
        .fold(true, |all, &b| all & (b.wrapping_sub(0x21) < 0x5e));
    (scheme.eq_ignore_ascii_case(b"bearer") && printable && bytes.len() <= MAX_BEARER_LEN)
        .then(|| (header.clone(), token))
}

#[cfg(test)]
mod tests {
    use actix_web::http::StatusCode;
    use actix_web::http::header::HeaderValue;
    use actix_web::test::TestRequest;
    use actix_web::{FromRequest, ResponseError};

    use super::*;

    fn credential(headers: &[(&str, &str)]) -> SessionCredential {
        let mut req = TestRequest::default();
        for header in headers {
            req = req.append_header(*header);
        }
        SessionCredential::of(&req.to_http_request()).expect("one sid at most")
    }

    #[test]
    fn bearer_tokens() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhdXRoMHwxIn0.c2ln-_";
        let long = format!("Bearer {}", "a".repeat(MAX_BEARER_LEN + 1));
        for (header, want) in [
            (format!("Bearer {jwt}"), Some(jwt)),
            (format!("bearer {jwt}"), Some(jwt)),
            (format!("BEARER   {jwt}  "), Some(jwt)),
            // The upstream page's curl line: `authorization: Bearer your_access_token`.
            (
                "Bearer your_access_token".to_owned(),
                Some("your_access_token"),
            ),
            ("Bearer abc==".to_owned(), Some("abc==")),
            ("Bearer".to_owned(), None),
            ("Bearer ".to_owned(), None),
            ("Bearer a b".to_owned(), None),
            ("Bearer\tabc".to_owned(), None),
            ("Basic dXNlcjpwYXNz".to_owned(), None),
            ("Bearertoken abc".to_owned(), None),
            ("abc".to_owned(), None),
            ("".to_owned(), None),
            (long, None),
        ] {
            let got = credential(&[("authorization", &header)]);
            assert_eq!(got.bearer(), want, "{header:?}");
        }
        let req = TestRequest::default()
            .insert_header((
                "authorization",
                HeaderValue::from_bytes(b"Bearer caf\xe9").expect("opaque bytes"),
            ))
            .to_http_request();
        assert_eq!(SessionCredential::of(&req).expect("no sid").bearer(), None);
    }

    #[test]
    fn sid_cookie() {
        let sid = SessionId::generate();
        let both = credential(&[
            ("authorization", "Bearer tok"),
            ("cookie", &format!("theme=dark; sid={}", sid.as_str())),
        ]);
        assert_eq!(both.bearer(), Some("tok"));
        assert_eq!(both.cookie_sid.as_ref(), Some(&sid));

        for cookie in ["sid=not-a-session-id", "sid=", "sids=x", "other=1"] {
            let got = credential(&[("cookie", cookie)]);
            assert_eq!(got.cookie_sid, None, "{cookie}");
            assert!(got.is_empty(), "{cookie}");
        }
        // The same value twice is one cookie.
        let got = credential(&[
            (
                "cookie",
                &format!("sid={}; sid={}", sid.as_str(), sid.as_str()),
            ),
            ("cookie", &format!("sid=\"{}\"", sid.as_str())),
        ]);
        assert_eq!(got.cookie_sid, Some(sid.clone()));
    }

    #[actix_web::test]
    async fn several_sid_cookies_are_refused_naming_the_cookie() {
        let sid = SessionId::generate();
        let other = SessionId::generate();
        for cookies in [
            vec![format!("sid={}; sid={}", sid.as_str(), other.as_str())],
            vec![
                format!("sid={}", sid.as_str()),
                format!("a=1; sid={}", other.as_str()),
            ],
            vec![format!("sid={}; sid=not-a-session-id", sid.as_str())],
        ] {
            let mut req = TestRequest::default();
            for cookie in &cookies {
                req = req.append_header(("cookie", cookie.as_str()));
            }
            let req = req.to_http_request();
            let err = SessionCredential::extract(&req)
                .await
                .expect_err("two sid cookies");
            assert_eq!(err.status_code(), StatusCode::BAD_REQUEST, "{cookies:?}");
            assert!(err.to_string().contains("`sid`"), "{err}");
        }
        // An empty one beside is no second cookie.
        let got = credential(&[("cookie", &format!("sid=; sid={}", sid.as_str()))]);
        assert_eq!(got.cookie_sid, Some(sid));
    }

    #[test]
    fn require_and_debug() {
        let err = credential(&[]).require().expect_err("nothing presented");
        assert_eq!(err.status_code(), StatusCode::UNAUTHORIZED);
        assert!(err.to_string().contains("Bearer"), "{err}");
        let got = credential(&[("authorization", "Bearer very-secret-token")])
            .require()
            .expect("bearer presented");
        let shown = format!("{got:?}");
        assert!(!shown.contains("very-secret-token"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[actix_web::test]
    async fn extractor_never_fails() {
        let req = TestRequest::default().to_http_request();
        let got = SessionCredential::extract(&req).await.expect("infallible");
        assert!(got.is_empty());
    }
}
