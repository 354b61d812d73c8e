//! The typed settings the rest of the daemon reads. Built only by the loader (`Settings::load`,
//! `Settings::from_value`), so every value here has been validated; serialised only for
//! `check-config`, with secrets as `"<redacted>"`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use secrecy::SecretString;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use url::Url;

use super::host::PublicHost;

/// The placeholder every secret is serialised as.
pub const REDACTED: &str = "<redacted>";

/// One login client (`clients.<client type>`): an Auth0 application the daemon logs users in with.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientSettings {
    /// The tenant's base URL, normalised to end with `/` (a trailing `/` in the file is optional).
    #[serde(serialize_with = "ser::url")]
    pub auth0_url: Url,
    pub client_id: String,
    #[serde(serialize_with = "ser::redacted")]
    pub client_secret: SecretString,
    /// The `redirect_uri` sent to Auth0, exactly as written (validated as an absolute URL but not
    /// normalised, since Auth0 compares it with the application's callback URLs character by
    /// character).
    pub redirect_url: String,
    /// As configured, `website` included (see [`ClientSettings::is_website`]).
    pub scopes: Vec<String>,
    pub audience: Option<String>,
    /// The algorithms accepted for ID tokens: `RS256` (the tenant's JWKS) and/or `HS256` (this
    /// client's `clientSecret`); `["RS256"]` when the file lists none.
    pub supported_signing_algs: Vec<String>,
    /// Connections a request may name; empty = any.
    pub supported_connections: Vec<String>,
    /// Used when a request names no connection; `""` in the file is `None`.
    pub default_connection: Option<String>,
    /// `SameSite` of the `sid` cookie; `None` = attribute omitted.
    pub same_site: Option<SameSite>,
    /// `/authorize` requires the caller's `state` (else one is generated).
    pub authorize_state_required: bool,
}

impl ClientSettings {
    /// Whether `alg` (a JWS `alg`, such as `RS256`) is in `supportedSigningAlgs`.
    pub fn accepts_signing_alg(&self, alg: &str) -> bool {
        self.supported_signing_algs.iter().any(|a| a == alg)
    }

    /// The ID tokens' expected `iss`: `<base>/`.
    pub fn issuer(&self) -> String {
        self.auth0_url.as_str().to_owned()
    }

    /// An Auth0 endpoint of this client's tenant: `endpoint("oauth/token")` is
    /// `<base>/oauth/token`.
    pub fn endpoint(&self, path: &str) -> String {
        endpoint(&self.auth0_url, path)
    }

    /// Whether the client uses the `website` pseudo-scope: tokens stay server-side and the browser
    /// gets the `sid` cookie.
    pub fn is_website(&self) -> bool {
        self.scopes.iter().any(|s| s == "website")
    }

    /// The `scope` sent to Auth0: `openid`, then the configured scopes without `website`, without
    /// duplicates, space-separated.
    pub fn auth0_scope(&self) -> String {
        let mut scopes: Vec<&str> = vec!["openid"];
        for scope in &self.scopes {
            if scope != "website" && !scopes.contains(&scope.as_str()) {
                scopes.push(scope);
            }
        }
        scopes.join(" ")
    }
}

/// `SameSite` attribute of the session cookie (`clients.*.sameSite`: `Lax`, `None` or `Strict`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum SameSite {
    Lax,
    None,
    Strict,
}

impl SameSite {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lax => "Lax",
            Self::None => "None",
            Self::Strict => "Strict",
        }
    }
}

impl fmt::Display for SameSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `managementClient`: the machine-to-machine application used for the Management API.
#[derive(Clone, Debug)]
pub struct ManagementClientSettings {
    /// The tenant's base URL (token endpoint), normalised to end with `/`.
    pub auth0_url: Url,
    pub client_id: String,
    pub client_secret: SecretString,
    /// Which connections user management may use, in whichever of the two upstream shapes the
    /// file used.
    pub connections: ManagementConnections,
}

/// The two upstream shapes of `managementClient`'s connections (mixing them is refused at load).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManagementConnections {
    /// Neither shape: no connection restriction, no default, no bulk imports.
    Unset,
    /// The deprecated shape: names only, no bulk imports.
    Deprecated {
        supported_connections: Vec<String>,
        default_create_user_connection: Option<String>,
    },
    /// `supportedConnectionsMap` (connection name → connection id) and
    /// `defaultManagementConnectionName`: enables bulk imports.
    Mapped {
        supported_connections_map: BTreeMap<String, String>,
        default_management_connection_name: Option<String>,
    },
}

impl ManagementClientSettings {
    /// An Auth0 endpoint of the management client's tenant (`oauth/token`).
    pub fn endpoint(&self, path: &str) -> String {
        endpoint(&self.auth0_url, path)
    }

    /// The connection names user management accepts, in order (empty: none configured).
    pub fn supported_connection_names(&self) -> Vec<&str> {
        match &self.connections {
            ManagementConnections::Unset => Vec::new(),
            ManagementConnections::Deprecated {
                supported_connections,
                ..
            } => supported_connections.iter().map(String::as_str).collect(),
            ManagementConnections::Mapped {
                supported_connections_map,
                ..
            } => supported_connections_map
                .keys()
                .map(String::as_str)
                .collect(),
        }
    }

    /// The connection `POST /users` (and `/users/import`) uses when the request names none:
    /// `defaultManagementConnectionName`, else `defaultCreateUserConnection`.
    pub fn default_connection(&self) -> Option<&str> {
        match &self.connections {
            ManagementConnections::Unset => None,
            ManagementConnections::Deprecated {
                default_create_user_connection,
                ..
            } => default_create_user_connection.as_deref(),
            ManagementConnections::Mapped {
                default_management_connection_name,
                ..
            } => default_management_connection_name.as_deref(),
        }
    }

    /// The Auth0 connection id of `name`, from `supportedConnectionsMap`.
    pub fn connection_id(&self, name: &str) -> Option<&str> {
        match &self.connections {
            ManagementConnections::Mapped {
                supported_connections_map,
                ..
            } => supported_connections_map.get(name).map(String::as_str),
            _ => None,
        }
    }

    /// Whether bulk imports are available (they need `supportedConnectionsMap`).
    pub fn supports_import(&self) -> bool {
        matches!(self.connections, ManagementConnections::Mapped { .. })
    }
}

impl Serialize for ManagementClientSettings {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("auth0Url", self.auth0_url.as_str())?;
        map.serialize_entry("clientId", &self.client_id)?;
        map.serialize_entry("clientSecret", REDACTED)?;
        match &self.connections {
            ManagementConnections::Unset => {}
            ManagementConnections::Deprecated {
                supported_connections,
                default_create_user_connection,
            } => {
                map.serialize_entry("supportedConnections", supported_connections)?;
                map.serialize_entry(
                    "defaultCreateUserConnection",
                    default_create_user_connection,
                )?;
            }
            ManagementConnections::Mapped {
                supported_connections_map,
                default_management_connection_name,
            } => {
                let as_upstream: BTreeMap<&str, BTreeMap<&str, &str>> = supported_connections_map
                    .iter()
                    .map(|(name, id)| {
                        (
                            name.as_str(),
                            BTreeMap::from([("connectionId", id.as_str())]),
                        )
                    })
                    .collect();
                map.serialize_entry("supportedConnectionsMap", &as_upstream)?;
                map.serialize_entry(
                    "defaultManagementConnectionName",
                    default_management_connection_name,
                )?;
            }
        }
        map.end()
    }
}

/// `server`: listeners, proxies, limits.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerSettings {
    /// Listen address of the main listener (`server.bind`).
    pub bind: IpAddr,
    /// Port of the main listener: `HTTP_PORT` only (0 picks a free port).
    #[serde(skip)]
    pub http_port: u16,
    /// When set, the management routes are served only on this listener.
    pub management_bind: Option<SocketAddr>,
    /// Peers whose forwarding headers are believed; an empty list trusts nobody. The list in
    /// force: `server.trustedProxies` when set, else the default [`Self::trusted_proxies_source`]
    /// names. Every reader (the forwarded headers, the management guard) takes it from here.
    #[serde(serialize_with = "ser::display_all")]
    pub trusted_proxies: Vec<IpNet>,
    /// Why [`Self::trusted_proxies`] is what it is (under `sources` in `check-config`).
    #[serde(skip)]
    pub trusted_proxies_source: TrustedProxiesSource,
    /// Hosts accepted when building absolute URLs and as other origins of browser requests,
    /// parsed at load; empty = any valid host.
    #[serde(serialize_with = "ser::display_all")]
    pub allowed_hosts: Vec<PublicHost>,
    /// Drop `Secure` from cookies (plain-http development only).
    pub insecure_cookies: bool,
    pub body_limit_bytes: usize,
    pub import_body_limit_bytes: usize,
    /// Timeout of one Auth0 call (`server.auth0TimeoutMs`).
    #[serde(rename = "auth0TimeoutMs", serialize_with = "ser::millis")]
    pub auth0_timeout: Duration,
    /// Time allowed to receive a request body, counted from the end of its head; past it the
    /// answer is 408 and the connection closes (`server.bodyTimeoutMs`).
    #[serde(rename = "bodyTimeoutMs", serialize_with = "ser::millis")]
    pub body_timeout: Duration,
    /// The shape of log lines (`server.logFormat`, `LOG_FORMAT` wins).
    pub log_format: LogFormat,
}

impl ServerSettings {
    /// The default `server.trustedProxies` (SPEC §3), a function of `ORIGINAL_PROTOCOL_HEADER`:
    /// - unset: loopback only. A private address is not a proxy by itself (a client on the same
    ///   private network could forge its IP); a VM's own proxy is listed explicitly.
    /// - set: loopback plus the private ranges. Upstream requires that variable, so it marks a
    ///   deployment behind the platform's gateway, whose address is somewhere in the cluster's
    ///   private network and not known in advance; without this an unchanged upstream config
    ///   would log Auth0 the gateway's address and build logouts on the internal host name.
    pub fn default_trusted_proxies(source: TrustedProxiesSource) -> Vec<IpNet> {
        let loopback: &[&str] = &["127.0.0.0/8", "::1/128"];
        let private: &[&str] = match source {
            TrustedProxiesSource::Gateway => PRIVATE_RANGES,
            TrustedProxiesSource::Loopback | TrustedProxiesSource::Configured => &[],
        };
        loopback
            .iter()
            .chain(private)
            .filter_map(|net| net.parse().ok())
            .collect()
    }
}

/// The private ranges a gateway deployment trusts by default: RFC 1918 and IPv6 unique-local.
pub const PRIVATE_RANGES: &[&str] = &["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"];

/// Where the list of trusted proxies in force comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TrustedProxiesSource {
    /// `server.trustedProxies` is set (in the file or by an override): it always wins.
    Configured,
    /// The default without `ORIGINAL_PROTOCOL_HEADER`: loopback only.
    Loopback,
    /// The default with `ORIGINAL_PROTOCOL_HEADER` set: loopback plus the private ranges.
    Gateway,
}

impl TrustedProxiesSource {
    /// Why the list is in force, as the start-up log and `check-config` say it.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Configured => "server.trustedProxies is set",
            Self::Loopback => {
                "the default: loopback only, since server.trustedProxies and \
                 ORIGINAL_PROTOCOL_HEADER are not set"
            }
            Self::Gateway => {
                "the default behind a gateway: loopback and the private ranges, since \
                 ORIGINAL_PROTOCOL_HEADER is set and server.trustedProxies is not"
            }
        }
    }
}

/// The shape of log lines (SPEC §8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum LogFormat {
    /// tracing's JSON lines.
    #[default]
    Json,
    /// The upstream service's glogger shape (numeric `level`, `time` in ms, `msg`, `reqId`).
    Mia,
}

impl LogFormat {
    /// `json` or `mia`, any case; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "json" => Some(Self::Json),
            "mia" => Some(Self::Mia),
            _ => None,
        }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            http_port: 8080,
            management_bind: None,
            trusted_proxies: Self::default_trusted_proxies(TrustedProxiesSource::Loopback),
            trusted_proxies_source: TrustedProxiesSource::Loopback,
            allowed_hosts: Vec::new(),
            insecure_cookies: false,
            body_limit_bytes: 64 * 1024,
            import_body_limit_bytes: 20 * 1024 * 1024,
            auth0_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            log_format: LogFormat::Json,
        }
    }
}

/// One `apiKeys` entry: a key callers present, the client it selects, and whether it may call the
/// management routes.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    #[serde(serialize_with = "ser::redacted")]
    pub key: SecretString,
    pub client_type: String,
    pub management: bool,
}

/// `sessions`: where sessions, state records and job records live.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionSettings {
    pub store: StoreKind,
    /// The sled folder (relative paths are relative to the working directory).
    pub path: PathBuf,
    pub redis: RedisSettings,
    pub refresh_grace_seconds: u64,
    /// Bound on one store operation (`sessions.timeoutMs`).
    #[serde(rename = "timeoutMs", serialize_with = "ser::millis")]
    pub timeout: Duration,
    /// Lifetime of an `/authorize` state record.
    pub state_ttl_seconds: u64,
    /// Byte budget of the sessions kept in memory in front of sled (the least recently used are
    /// evicted); 0 = off. Not used with Redis.
    pub cache_bytes: u64,
    /// sled's own page cache (sled's default, 1 GiB, is far more than sessions need).
    pub sled_cache_bytes: u64,
    /// Live `/authorize` states this daemon keeps in total (past it: 429).
    pub max_pending_logins: u64,
    /// Live `/authorize` states per end-user IP (an IPv6 /64); past it: 429.
    pub max_pending_logins_per_ip: u64,
    /// `sessions.encryptionKeys` (`SESSION_ENCRYPTION_KEYS`): base64 of 32 bytes each, already
    /// checked; the first seals, all open. Empty: a key file on sled, per-client keys on Redis.
    #[serde(serialize_with = "ser::redacted_list")]
    pub encryption_keys: Vec<SecretString>,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            store: StoreKind::Sled,
            path: PathBuf::from("data"),
            redis: RedisSettings::default(),
            refresh_grace_seconds: 30,
            timeout: Duration::from_secs(2),
            state_ttl_seconds: 600,
            cache_bytes: 64 << 20,
            sled_cache_bytes: 64 << 20,
            max_pending_logins: 100_000,
            // An office behind one NAT starts many logins.
            max_pending_logins_per_ip: 1_000,
            encryption_keys: Vec::new(),
        }
    }
}

/// `sessions.store`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    Sled,
    Redis,
}

/// `sessions.redis`, filled by the `REDIS_*` variables.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RedisSettings {
    /// `host:port` each (`:6379` added when the port is missing); several = ordered failover, or
    /// the sentinels in sentinel mode.
    pub hosts: Vec<String>,
    pub mode: RedisMode,
    pub master_name: Option<String>,
    pub username: Option<String>,
    #[serde(serialize_with = "ser::redacted_opt")]
    pub password: Option<SecretString>,
    pub tls: bool,
    /// CA of the Redis server's certificate, when it is not a public one.
    pub tls_ca_cert: Option<PathBuf>,
}

/// `REDIS_MODE`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisMode {
    #[default]
    Normal,
    Sentinel,
}

/// `jobs`: background polling of import jobs.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSettings {
    #[serde(rename = "pollIntervalMs", serialize_with = "ser::millis")]
    pub poll_interval: Duration,
    #[serde(rename = "maxPollIntervalMs", serialize_with = "ser::millis")]
    pub max_poll_interval: Duration,
    pub retention_days: u64,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            max_poll_interval: Duration::from_secs(30),
            retention_days: 30,
        }
    }
}

/// One `plugins` entry.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginSettings {
    /// The shared library (relative paths are relative to the working directory).
    pub path: PathBuf,
    /// Expected SHA-256 of the library, 64 lower-case hex digits.
    pub sha256: Option<String>,
    /// Handed to the plugin as is; `{}` when not set.
    pub config: serde_json::Value,
    #[serde(rename = "timeoutMs", serialize_with = "ser::millis")]
    pub timeout: Duration,
    pub on_error: OnError,
}

/// What a failed `map_connection` or `custom_claims` call does to the request (`plugins[].onError`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnError {
    /// Ignored, logged and counted.
    #[default]
    FailOpen,
    /// The request fails with 502.
    FailClosed,
}

/// `<base>/<path>` for a base URL ending with `/`.
fn endpoint(base: &Url, path: &str) -> String {
    format!("{}{}", base.as_str(), path.trim_start_matches('/'))
}

/// Serialisers for types the derive cannot handle as we want.
pub(crate) mod ser {
    use std::fmt::Display;
    use std::time::Duration;

    use secrecy::SecretString;
    use serde::Serializer;
    use serde::ser::SerializeSeq;
    use url::Url;

    use super::REDACTED;

    pub fn url<S: Serializer>(url: &Url, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(url.as_str())
    }

    pub fn url_opt<S: Serializer>(url: &Option<Url>, s: S) -> Result<S::Ok, S::Error> {
        match url {
            Some(url) => s.serialize_str(url.as_str()),
            None => s.serialize_none(),
        }
    }

    pub fn redacted<S: Serializer>(_: &SecretString, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }

    pub fn redacted_list<S: Serializer>(secrets: &[SecretString], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(secrets.iter().map(|_| REDACTED))
    }

    pub fn redacted_opt<S: Serializer>(
        secret: &Option<SecretString>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match secret {
            Some(_) => s.serialize_str(REDACTED),
            None => s.serialize_none(),
        }
    }

    /// A duration as its whole milliseconds, as the config file writes it (`...Ms`).
    pub fn millis<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn display_all<S: Serializer, T: Display>(items: &[T], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(items.len()))?;
        for item in items {
            seq.serialize_element(&item.to_string())?;
        }
        seq.end()
    }
}

#[cfg(test)]
impl ClientSettings {
    /// A login client of the tenant at `auth0_url` for unit tests: RS256 ID tokens, no audience,
    /// any connection, no `SameSite`, state not required.
    pub(crate) fn for_tests(
        auth0_url: &str,
        client_id: &str,
        client_secret: &str,
        scopes: &[&str],
    ) -> Self {
        Self {
            auth0_url: Url::parse(auth0_url).expect("a test tenant URL"),
            client_id: client_id.to_owned(),
            client_secret: SecretString::from(client_secret),
            redirect_url: "http://app.example/callback".into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            audience: None,
            supported_signing_algs: vec!["RS256".into()],
            supported_connections: vec![],
            default_connection: None,
            same_site: None,
            authorize_state_required: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(scopes: &[&str]) -> ClientSettings {
        ClientSettings::for_tests("https://tenant.eu.auth0.com/", "id", "secret", scopes)
    }

    #[test]
    fn scope_sent_to_auth0() {
        let c = client(&["offline_access", "openid", "website", "email", "email"]);
        assert!(c.is_website());
        assert_eq!(c.auth0_scope(), "openid offline_access email");
        assert!(!client(&["profile"]).is_website());
    }

    #[test]
    fn endpoints_and_issuer() {
        let c = client(&[]);
        assert_eq!(c.issuer(), "https://tenant.eu.auth0.com/");
        assert_eq!(
            c.endpoint("/oauth/token"),
            "https://tenant.eu.auth0.com/oauth/token"
        );
        assert_eq!(
            c.endpoint("v2/logout"),
            "https://tenant.eu.auth0.com/v2/logout"
        );
    }

    #[test]
    fn management_connection_shapes() {
        let mut m = ManagementClientSettings {
            auth0_url: Url::parse("https://tenant.eu.auth0.com/").expect("url"),
            client_id: "id".into(),
            client_secret: SecretString::from("secret"),
            connections: ManagementConnections::Unset,
        };
        assert!(m.supported_connection_names().is_empty());
        assert_eq!(m.default_connection(), None);
        assert!(!m.supports_import());

        m.connections = ManagementConnections::Deprecated {
            supported_connections: vec!["b".into(), "a".into()],
            default_create_user_connection: Some("a".into()),
        };
        assert_eq!(m.supported_connection_names(), vec!["b", "a"]);
        assert_eq!(m.default_connection(), Some("a"));
        assert_eq!(m.connection_id("a"), None);
        assert!(!m.supports_import());

        m.connections = ManagementConnections::Mapped {
            supported_connections_map: BTreeMap::from([("db".into(), "con_1".into())]),
            default_management_connection_name: Some("db".into()),
        };
        assert_eq!(m.supported_connection_names(), vec!["db"]);
        assert_eq!(m.default_connection(), Some("db"));
        assert_eq!(m.connection_id("db"), Some("con_1"));
        assert!(m.supports_import());
        let json = serde_json::to_value(&m).expect("serialises");
        assert_eq!(
            json["supportedConnectionsMap"]["db"]["connectionId"],
            "con_1"
        );
        assert_eq!(json["clientSecret"], REDACTED);
    }

    #[test]
    fn defaults() {
        let server = ServerSettings::default();
        assert_eq!(server.trusted_proxies.len(), 2);
        assert_eq!(
            server.trusted_proxies_source,
            TrustedProxiesSource::Loopback
        );
        assert_eq!(
            ServerSettings::default_trusted_proxies(TrustedProxiesSource::Gateway).len(),
            6
        );
        assert_eq!(server.body_limit_bytes, 65_536);
        assert_eq!(server.import_body_limit_bytes, 20_971_520);
        assert_eq!(SessionSettings::default().path, PathBuf::from("data"));
        assert_eq!(
            JobSettings::default().max_poll_interval,
            Duration::from_secs(30)
        );
        assert_eq!(
            serde_json::to_value(OnError::FailClosed).expect("ok"),
            "fail-closed"
        );
    }
}
