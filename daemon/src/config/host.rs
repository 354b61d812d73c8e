//! [`PublicHost`]: a host fit for an absolute URL, the one host parser of the daemon: the
//! entries of `server.allowedHosts` and `sessions.redis.hosts` are parsed with it once, at load,
//! and the hosts of requests (`Host`, `X-Forwarded-Host`, `Origin`) at each request.
//!
//! | choice | why |
//! |---|---|
//! | names compare case-insensitively, IP addresses by value (`[0:0::1]` is `[::1]`) | what a browser treats as the same host |
//! | names are ASCII (IDNs in their `xn--` form), labels of letters, digits, `-` and `_`, no trailing dot | what `server.allowedHosts` always accepted; `_` for container names |
//! | a name whose last label is numeric must be a dotted-quad IPv4 address | browsers read `1.2.3` or `0x7f.1` as an address |
//! | an `allowedHosts` entry without a port allows the host on any port | `app.example.com` allows `app.example.com:8443`; with a port, only that port |

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Decimal digits only (`u16::from_str` would also take `+80`), within `u16`.
pub fn is_port(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && text.parse::<u16>().is_ok()
}

/// A host fit for an absolute URL: `name[:port]`, IPv4`[:port]` or `[IPv6][:port]`, names in lower
/// case. Its `Display` is the URL's authority.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicHost {
    name: HostName,
    port: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostName {
    Domain(String),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl PublicHost {
    /// Parses `name[:port]`, IPv4`[:port]` or `[IPv6][:port]`; the error says what is expected.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        const EXPECTED: &str =
            "expected name[:port], an IPv4 address or [IPv6], optionally with a port";
        let (name, port) = if let Some(rest) = text.strip_prefix('[') {
            let (ip, after) = rest.split_once(']').ok_or(EXPECTED)?;
            let ip = ip.parse::<Ipv6Addr>().map_err(|_| EXPECTED)?;
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or(EXPECTED)?),
            };
            (HostName::V6(ip), port)
        } else {
            let (name, port) = match text.split_once(':') {
                Some((name, port)) => (name, Some(port)),
                None => (text, None),
            };
            (Self::parse_name(name).ok_or(EXPECTED)?, port)
        };
        let port = match port {
            None => None,
            Some(port) if is_port(port) => Some(
                port.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or(EXPECTED)?,
            ),
            Some(_) => return Err(EXPECTED),
        };
        Ok(Self { name, port })
    }

    fn parse_name(name: &str) -> Option<HostName> {
        if let Ok(ip) = name.parse::<Ipv4Addr>() {
            return Some(HostName::V4(ip));
        }
        let valid_label = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if name.is_empty() || name.len() > 253 || !name.split('.').all(valid_label) {
            return None;
        }
        // WHATWG URL parsing reads a name ending in a number as an IPv4 address.
        let last = name.rsplit('.').next().unwrap_or(name);
        let numeric = last.bytes().all(|b| b.is_ascii_digit())
            || last
                .get(..2)
                .is_some_and(|prefix| prefix.eq_ignore_ascii_case("0x"));
        if numeric {
            return None;
        }
        Some(HostName::Domain(name.to_ascii_lowercase()))
    }

    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The same host without its port.
    pub fn without_port(&self) -> Self {
        Self {
            name: self.name.clone(),
            port: None,
        }
    }

    /// Whether the `server.allowedHosts` entry `allowed` admits this host (see the module doc).
    pub fn allowed_by(&self, allowed: &PublicHost) -> bool {
        self.name == allowed.name && allowed.port.is_none_or(|port| self.port == Some(port))
    }
}

impl fmt::Display for PublicHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            HostName::Domain(name) => f.write_str(name)?,
            HostName::V4(ip) => write!(f, "{ip}")?,
            HostName::V6(ip) => write!(f, "[{ip}]")?,
        }
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_forms() {
        for (given, shown) in [
            ("app.example.com", "app.example.com"),
            ("App.Example.COM:8443", "app.example.com:8443"),
            ("localhost", "localhost"),
            ("localhost:8080", "localhost:8080"),
            ("your_host", "your_host"),
            ("xn--bcher-kva.example", "xn--bcher-kva.example"),
            ("a-b.c-d.example", "a-b.c-d.example"),
            ("10.0.0.5", "10.0.0.5"),
            ("10.0.0.5:80", "10.0.0.5:80"),
            ("[::1]", "[::1]"),
            ("[::1]:8080", "[::1]:8080"),
            ("[FE80:0::1]:65535", "[fe80::1]:65535"),
            ("[::ffff:10.0.0.1]", "[::ffff:10.0.0.1]"),
        ] {
            let host = PublicHost::parse(given).unwrap_or_else(|e| panic!("{given}: {e}"));
            assert_eq!(host.to_string(), shown, "{given}");
        }
        assert_eq!(
            PublicHost::parse("a.example:8443").expect("ok").port(),
            Some(8443)
        );

        let long_label = format!("{}.example", "a".repeat(64));
        let long_name = format!("{}example", "abcdefghi.".repeat(25));
        for bad in [
            "",
            ":80",
            "app.example.com:",
            "app.example.com:0",
            "app.example.com:65536",
            "app.example.com:+80",
            "app.example.com:8o",
            "host:80:80",
            "a..b",
            ".example.com",
            "example.com.",
            "-a.example",
            "a-.example",
            "evil.example/x",
            "evil.example?x",
            "evil.example#x",
            "evil.example\\@good.example",
            "user@good.example",
            "good.example@evil.example",
            "exa mple.com",
            "ex\tample.com",
            "bücher.example",
            "::1",
            "[::1",
            "[::1]x",
            "[::1]:",
            "[::1]:http",
            "[fe80::1%eth0]",
            "[10.0.0.1]",
            "999.1.1.1",
            "1.2.3",
            "0x7f.1",
            "example.0X1F",
            "app.123",
            "10.0.0.5:99999",
            &long_label,
            &long_name,
        ] {
            assert!(PublicHost::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn allowed_hosts_compare_names_case_insensitively_and_ports_when_given() {
        let api = |host: &str| PublicHost::parse(host).expect("valid");
        for (host, entry, allowed) in [
            ("app.example.com", "app.example.com", true),
            ("app.example.com:8443", "app.example.com", true),
            ("app.example.com", "app.example.com:8443", false),
            ("app.example.com:443", "app.example.com:8443", false),
            ("app.example.com:8443", "app.example.com:8443", true),
            ("APP.example.com", "app.EXAMPLE.com", true),
            ("evil.example.com", "example.com", false),
            ("app.example.com.evil", "app.example.com", false),
            ("[0:0::1]:8080", "[::1]", true),
            ("[::1]", "[::1]:8080", false),
            ("10.0.0.5:9000", "10.0.0.5", true),
            ("10.0.0.5", "10.0.0.50", false),
        ] {
            assert_eq!(
                api(host).allowed_by(&api(entry)),
                allowed,
                "{host} by {entry}"
            );
        }
    }
}
