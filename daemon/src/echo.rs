//! Caller-supplied values in answers and log lines: [`Quoted`] (and [`quoted`]) is the one way a
//! request value (a `grant_type`, a `connection`, a header, a path) is echoed. It is escaped and
//! between double quotes, so a hostile value can neither forge a log line nor pass for our own
//! words, and cut at [`MAX_ECHO_CHARS`] characters with `…`, so a 60 KB field does not come back
//! 60 KB long. [`Clipped`] cuts without quoting, for values logged as structured fields (the
//! JSON log escapes them already).

use std::fmt;

/// The most characters of a caller's value an answer or a log line repeats.
pub const MAX_ECHO_CHARS: usize = 64;

/// `value` escaped, quoted and cut at [`MAX_ECHO_CHARS`] characters: `"abc"`, `"a\nb"`,
/// `"aaaa…aaa"…`. Formats without allocating (for `tracing` fields: `%Quoted(value)`).
#[derive(Clone, Copy)]
pub struct Quoted<'a>(pub &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.char_indices().nth(MAX_ECHO_CHARS) {
            Some((cut, _)) => write!(f, "{:?}…", &self.0[..cut]),
            None => write!(f, "{:?}", self.0),
        }
    }
}

impl fmt::Debug for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// [`Quoted`] as a `String`, for `format!`-built messages.
pub fn quoted(value: &str) -> String {
    Quoted(value).to_string()
}

/// `value` cut at `max` characters with `…`, not quoted: for structured log fields and for
/// messages that are ours but may carry a caller's value inside (a parser's error).
#[derive(Clone, Copy)]
pub struct Clipped<'a>(pub &'a str, pub usize);

impl<'a> Clipped<'a> {
    /// What is kept of a value that is cut; `None` when it fits.
    fn kept(&self) -> Option<&'a str> {
        // No more bytes than `max`: no more characters either (the usual case, no walk).
        if self.0.len() <= self.1 {
            return None;
        }
        self.0
            .char_indices()
            .nth(self.1)
            .map(|(cut, _)| &self.0[..cut])
    }

    /// As a string: borrowed when it fits, as almost always (for a `&str` log field).
    pub fn as_cow(&self) -> std::borrow::Cow<'a, str> {
        match self.kept() {
            Some(kept) => std::borrow::Cow::Owned(format!("{kept}…")),
            None => std::borrow::Cow::Borrowed(self.0),
        }
    }
}

impl fmt::Display for Clipped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kept() {
            Some(kept) => write!(f, "{kept}…"),
            None => f.write_str(self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_escaped_and_cut() {
        let long = "é".repeat(200);
        let cut = format!("\"{}\"…", "é".repeat(MAX_ECHO_CHARS));
        let fits = "x".repeat(MAX_ECHO_CHARS);
        let whole = format!("\"{fits}\"");
        for (value, want) in [
            ("password", "\"password\""),
            ("a\nb\"c", "\"a\\nb\\\"c\""),
            ("", "\"\""),
            (&long, &cut),
            (&fits, &whole),
        ] {
            assert_eq!(quoted(value), want, "{value:?}");
        }
    }

    #[test]
    fn clipped_cuts_without_quoting() {
        for (value, max, want) in [
            ("/userinfo", 8, "/userinf…"),
            ("/userinfo", 9, "/userinfo"),
            ("ça", 1, "ç…"),
            ("çç", 2, "çç"),
        ] {
            let clipped = Clipped(value, max);
            assert_eq!(clipped.to_string(), want, "{value:?} at {max}");
            assert_eq!(clipped.as_cow(), want, "{value:?} at {max}");
        }
        assert!(matches!(
            Clipped("çç", 2).as_cow(),
            std::borrow::Cow::Borrowed("çç")
        ));
    }
}
