//! [`RelativeRedirect`]: a caller's `redirect` (SPEC §4), the only form in which one is stored,
//! sent in a `Location` or joined to our origin. Open redirects hide in encodings, so the checks
//! run on the value as sent and on each percent-decoding of it until it no longer changes.
//!
//! Every form must: start with exactly one `/` (not `//`, not `/\`), hold no `\` and no control
//! character (C0, DEL, C1: browsers drop tabs and newlines from URLs, turning `/\t/x` into `//x`),
//! have no scheme, and be valid UTF-8 once decoded. Choices where the spec is silent:
//! - Dot segments are resolved as a browser would before the `//` check, so `/.//x` and
//!   `/a/..//x` (which a browser normalises to `//x`) are refused; `/./x` and `/a/../x` are fine.
//! - At most [`RelativeRedirect::MAX_LEN`] bytes, and at most [`MAX_DECODINGS`] rounds of
//!   percent-decoding before the value must be stable.
//! - The value kept is the one the caller sent, unchanged: its query string and fragment survive
//!   (`/web-login?redirect=/backoffice`), and whoever puts it in a URL encodes it there.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::http::ApiError;

/// Rounds of percent-decoding after which a still-changing value is refused.
pub const MAX_DECODINGS: usize = 8;

/// A path on our own origin, safe to redirect a browser to. Built only by [`RelativeRedirect::parse`].
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RelativeRedirect(String);

/// Why a redirect was refused, naming the field it came in.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` must be a relative path such as /home: {reason}")]
pub struct InvalidRedirect {
    pub field: &'static str,
    pub reason: &'static str,
}

/// A relative redirect as a `Location` value: bytes outside visible ASCII (a space, a non-ASCII
/// character; control characters were refused when it was parsed) percent-encoded, so the
/// header is valid and the browser goes to the same place.
pub fn location_of(redirect: &str) -> String {
    let mut out = String::with_capacity(redirect.len());
    for byte in redirect.bytes() {
        if byte.is_ascii_graphic() {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl RelativeRedirect {
    /// Longest redirect accepted, in bytes.
    pub const MAX_LEN: usize = 4096;

    /// Parses the `redirect` field; 400 naming it when it is not a safe relative path.
    pub fn parse(value: &str) -> Result<Self, ApiError> {
        Ok(Self::parse_field(value, "redirect")?)
    }

    /// Parses a redirect that came in field `field` (`redirectUri`, say), whose name the error
    /// carries.
    pub fn parse_field(value: &str, field: &'static str) -> Result<Self, InvalidRedirect> {
        check(value).map_err(|reason| InvalidRedirect { field, reason })?;
        Ok(Self(value.to_owned()))
    }

    /// `None` for an absent or empty field, which means "no redirect"; else [`Self::parse`].
    pub fn parse_optional(value: Option<&str>) -> Result<Option<Self>, ApiError> {
        value.filter(|v| !v.is_empty()).map(Self::parse).transpose()
    }

    /// The redirect as the caller sent it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for RelativeRedirect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RelativeRedirect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RelativeRedirect({:?})", self.0)
    }
}

impl AsRef<str> for RelativeRedirect {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RelativeRedirect {
    type Error = InvalidRedirect;
    fn try_from(value: String) -> Result<Self, InvalidRedirect> {
        check(&value).map_err(|reason| InvalidRedirect {
            field: "redirect",
            reason,
        })?;
        Ok(Self(value))
    }
}

impl From<RelativeRedirect> for String {
    fn from(redirect: RelativeRedirect) -> Self {
        redirect.0
    }
}

/// Checks `value` and each of its percent-decodings until stable.
fn check(value: &str) -> Result<(), &'static str> {
    if value.len() > RelativeRedirect::MAX_LEN {
        return Err("it is longer than 4096 bytes");
    }
    let mut current = value.as_bytes().to_vec();
    for _ in 0..=MAX_DECODINGS {
        let text =
            std::str::from_utf8(&current).map_err(|_| "it is not valid UTF-8 once decoded")?;
        check_form(text)?;
        let decoded = percent_decode(&current);
        if decoded == current {
            return Ok(());
        }
        current = decoded;
    }
    Err("it is percent-encoded too many times")
}

/// The rules on one form of the value.
fn check_form(text: &str) -> Result<(), &'static str> {
    if text.is_empty() {
        return Err("it is empty");
    }
    if text.chars().any(char::is_control) {
        return Err("it contains a control character");
    }
    if text.contains('\\') {
        return Err("it contains a backslash");
    }
    if has_scheme(text) {
        return Err("it has a scheme");
    }
    if !text.starts_with('/') {
        return Err("it does not start with /");
    }
    if text[1..].starts_with('/') {
        return Err("it starts with //, a URL on another host");
    }
    if resolves_to_another_host(text) {
        return Err("its dot segments resolve to //, a URL on another host");
    }
    Ok(())
}

/// Whether `text` starts with `scheme:` (RFC 3986: a letter, then letters, digits, `+-.`).
fn has_scheme(text: &str) -> bool {
    let Some((scheme, _)) = text.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
}

/// Whether the path, once `.` and `..` segments are removed (RFC 3986 §5.2.4), starts with `//`.
fn resolves_to_another_host(text: &str) -> bool {
    let end = text.find(['?', '#']).unwrap_or(text.len());
    let path = &text[..end];
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let last = segments.len() - 1;
    let mut output: Vec<&str> = Vec::new();
    for (i, segment) in segments.into_iter().enumerate() {
        match segment {
            "." => {}
            ".." => {
                output.pop();
            }
            other => {
                output.push(other);
                continue;
            }
        }
        // A trailing `.` or `..` leaves the path ending in `/`.
        if i == last {
            output.push("");
        }
    }
    output.len() > 1 && output[0].is_empty()
}

/// One round of percent-decoding: `%XX` becomes the byte; any other `%` stays.
fn percent_decode(input: &[u8]) -> Vec<u8> {
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%'
            && let (Some(Some(hi)), Some(Some(lo))) = (
                input.get(i + 1).map(|b| hex(*b)),
                input.get(i + 2).map(|b| hex(*b)),
            )
        {
            // Two hex digits are at most 0xFF.
            out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'%'));
            i += 3;
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use actix_web::ResponseError;
    use actix_web::http::StatusCode;

    use super::*;

    #[test]
    fn locations_are_visible_ascii() {
        assert_eq!(location_of("/café x"), "/caf%C3%A9%20x");
        assert_eq!(location_of("/a?b=%20"), "/a?b=%20");
    }

    #[test]
    fn safe_relative_paths_are_kept_as_sent() {
        for good in [
            "/",
            "/home",
            "/web-login?redirect=/backoffice",
            "/a/b?c=d&e=f#frag",
            "/logout-page",
            "/search?q=%2F%2Fnot-a-host",
            "/a?next=https://elsewhere.example",
            "/a/./b",
            "/./x",
            "/a/../x",
            "/..",
            "/a/..",
            "/a//b",
            "/path%20with%20spaces",
            "/caf%C3%A9",
            "/café",
            "/100%",
            "/%zz",
            "/a:b",
            "/%25",
            "/#/x",
            "/?//x",
        ] {
            let parsed = RelativeRedirect::parse(good).unwrap_or_else(|e| panic!("{good:?}: {e}"));
            assert_eq!(parsed.as_str(), good, "kept as sent");
        }
    }

    #[test]
    fn open_redirects_are_refused_naming_the_field() {
        let long = format!("/{}", "a".repeat(4096));
        for (bad, reason) in [
            ("//x", "//"),
            ("/\\x", "backslash"),
            ("\\\\x", "backslash"),
            ("\\/x", "backslash"),
            ("https://x", "scheme"),
            ("http:x", "scheme"),
            ("javascript:alert(1)", "scheme"),
            ("JavaScript:alert(1)", "scheme"),
            ("data:text/html,hi", "scheme"),
            ("/%2F%2Fx", "//"),
            ("/%2f/x", "//"),
            ("/%252F%252Fx", "//"),
            ("/%25252F/x", "//"),
            ("%2F%2Fx", "does not start with /"),
            ("%2Fx", "does not start with /"),
            ("/%5Cx", "backslash"),
            ("/%255Cx", "backslash"),
            ("/x?y=%5C", "backslash"),
            ("/\t/x", "control"),
            ("/%09/x", "control"),
            ("/%2509/x", "control"),
            ("/\n/x", "control"),
            ("/x%0d%0aSet-Cookie:", "control"),
            ("/x%0D%0ASet-Cookie: a=b", "control"),
            ("/x%00", "control"),
            ("/x%7f", "control"),
            ("/x%C2%85", "control"),
            ("/x%ff", "UTF-8"),
            ("/.//x", "dot segments"),
            ("/%2E//x", "dot segments"),
            ("/a/..//x", "dot segments"),
            ("/a/b/../..//x", "dot segments"),
            ("/..//x", "dot segments"),
            ("x", "does not start with /"),
            ("", "empty"),
            (" /x", "does not start with /"),
            ("./x", "does not start with /"),
            ("?x=/y", "does not start with /"),
            (long.as_str(), "longer than"),
        ] {
            let err = RelativeRedirect::parse(bad).expect_err(bad);
            assert_eq!(err.status_code(), StatusCode::BAD_REQUEST, "{bad:?}");
            let message = err.to_string();
            assert!(message.contains("`redirect`"), "{bad:?}: {message}");
            assert!(
                message.contains(reason),
                "{bad:?}: {message} should say {reason:?}"
            );
        }
    }

    #[test]
    fn the_encoding_depth_limit() {
        // `/` then `%2F` encoded n more times: refused as `//` at any depth within the limit.
        let mut encoded = String::from("%2F");
        for _ in 1..MAX_DECODINGS {
            encoded = encoded.replace('%', "%25");
        }
        let err = RelativeRedirect::parse(&format!("/{encoded}x")).expect_err("decodes to //x");
        assert!(err.to_string().contains("//"), "{err}");
        // A harmless value encoded that deep is fine; one level more is refused.
        let mut space = String::from("%20");
        for _ in 1..MAX_DECODINGS {
            space = space.replace('%', "%25");
        }
        assert!(RelativeRedirect::parse(&format!("/a{space}")).is_ok());
        let deeper = format!("/a{}", space.replace('%', "%25"));
        let err = RelativeRedirect::parse(&deeper).expect_err("too deep");
        assert!(err.to_string().contains("too many times"), "{err}");
    }

    #[test]
    fn field_names_optional_values_and_serde() {
        let err = RelativeRedirect::parse_field("//x", "redirectUri").expect_err("open");
        assert_eq!(err.field, "redirectUri");
        let api: ApiError = err.into();
        assert!(
            api.to_string()
                .starts_with("`redirectUri` must be a relative path"),
            "{api}"
        );

        assert_eq!(RelativeRedirect::parse_optional(None).expect("none"), None);
        assert_eq!(
            RelativeRedirect::parse_optional(Some("")).expect("empty"),
            None
        );
        assert_eq!(
            RelativeRedirect::parse_optional(Some("/a"))
                .expect("valid")
                .map(RelativeRedirect::into_string),
            Some("/a".to_owned())
        );
        assert!(RelativeRedirect::parse_optional(Some("//a")).is_err());

        #[derive(Deserialize)]
        struct Query {
            redirect: Option<RelativeRedirect>,
        }
        let q: Query =
            serde_urlencoded::from_str("redirect=%2Fweb-login%3Fredirect%3D%2Fbackoffice")
                .expect("valid");
        assert_eq!(
            q.redirect.as_ref().map(RelativeRedirect::as_str),
            Some("/web-login?redirect=/backoffice")
        );
        let bad = serde_urlencoded::from_str::<Query>("redirect=%2F%2Fevil.example");
        assert!(bad.is_err());
        let json = serde_json::to_string(&RelativeRedirect::parse("/a?b=c").expect("valid"))
            .expect("serialises");
        assert_eq!(json, "\"/a?b=c\"");
        assert!(serde_json::from_str::<RelativeRedirect>("\"https://x\"").is_err());
    }

    #[test]
    fn dot_segment_resolution() {
        for (path, another_host) in [
            ("/", false),
            ("/.", false),
            ("/..", false),
            ("/./", false),
            ("/.//x", true),
            ("/a/..//x", true),
            ("/a/../b//x", false),
            ("/a/./../..//x", true),
            ("/x/..?//y", false),
            ("/.%2F/x", false),
        ] {
            assert_eq!(resolves_to_another_host(path), another_host, "{path}");
        }
    }

    #[test]
    fn percent_decoding_one_round() {
        assert_eq!(percent_decode(b"/%2F%2fx"), b"///x");
        assert_eq!(percent_decode(b"/%252F"), b"/%2F");
        assert_eq!(percent_decode(b"/100%"), b"/100%");
        assert_eq!(percent_decode(b"/%zz%4"), b"/%zz%4");
        assert_eq!(percent_decode(b"%ff"), [0xff]);
    }
}
