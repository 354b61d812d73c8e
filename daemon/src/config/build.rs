//! The document as deserialised (keys the file may omit are optional), and its conversion into
//! [`Settings`] with every check of SPEC §3: values parsed, cross-references resolved.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::Settings;
use super::env::{EnvSettings, REDIS_HOSTS};
use super::error::ConfigError;
use super::host::PublicHost;
use super::overrides::Provenance;
use super::types::{
    ApiKey, ClientSettings, JobSettings, LogFormat, ManagementClientSettings,
    ManagementConnections, OnError, PluginSettings, RedisMode, RedisSettings, SameSite,
    ServerSettings, SessionSettings, StoreKind, TrustedProxiesSource,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawSettings {
    clients: BTreeMap<String, RawClient>,
    default_client: Option<String>,
    #[serde(default)]
    custom_claims_namespaces: Vec<String>,
    management_client: Option<RawManagementClient>,
    auth0_tenant_url: Option<String>,
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    api_keys: Vec<RawApiKey>,
    #[serde(default)]
    sessions: RawSessions,
    #[serde(default)]
    jobs: RawJobs,
    #[serde(default)]
    plugins: Vec<RawPlugin>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawClient {
    auth0_url: String,
    client_id: String,
    client_secret: String,
    redirect_url: String,
    scopes: Vec<String>,
    audience: Option<String>,
    #[serde(default)]
    supported_signing_algs: Vec<String>,
    #[serde(default)]
    supported_connections: Vec<String>,
    default_connection: Option<String>,
    same_site: Option<String>,
    #[serde(default)]
    authorize_state_required: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawManagementClient {
    auth0_url: String,
    client_id: String,
    client_secret: String,
    supported_connections: Option<Vec<String>>,
    default_create_user_connection: Option<String>,
    supported_connections_map: Option<BTreeMap<String, RawConnectionRef>>,
    default_management_connection_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawConnectionRef {
    connection_id: String,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawServer {
    bind: Option<String>,
    management_bind: Option<String>,
    trusted_proxies: Option<Vec<String>>,
    #[serde(default)]
    allowed_hosts: Vec<String>,
    #[serde(default)]
    insecure_cookies: bool,
    body_limit_bytes: Option<usize>,
    import_body_limit_bytes: Option<usize>,
    auth0_timeout_ms: Option<u64>,
    body_timeout_ms: Option<u64>,
    log_format: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawApiKey {
    key: String,
    client_type: String,
    #[serde(default)]
    management: bool,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSessions {
    store: Option<String>,
    path: Option<PathBuf>,
    #[serde(default)]
    redis: RawRedis,
    refresh_grace_seconds: Option<u64>,
    timeout_ms: Option<u64>,
    state_ttl_seconds: Option<u64>,
    cache_bytes: Option<u64>,
    sled_cache_bytes: Option<u64>,
    max_pending_logins: Option<u64>,
    max_pending_logins_per_ip: Option<u64>,
    #[serde(default)]
    encryption_keys: Vec<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRedis {
    #[serde(default)]
    hosts: Vec<String>,
    mode: Option<String>,
    master_name: Option<String>,
    username: Option<String>,
    password: Option<String>,
    #[serde(default)]
    tls: bool,
    tls_ca_cert: Option<PathBuf>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawJobs {
    poll_interval_ms: Option<u64>,
    max_poll_interval_ms: Option<u64>,
    retention_days: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawPlugin {
    path: PathBuf,
    sha256: Option<String>,
    config: Option<serde_json::Value>,
    timeout_ms: Option<u64>,
    on_error: Option<String>,
}

/// Builds the settings; `warnings` receives what is accepted but probably not meant.
pub(crate) fn build(
    raw: RawSettings,
    env: EnvSettings,
    p: &Provenance,
    warnings: &mut Vec<String>,
) -> Result<Settings, ConfigError> {
    let mut clients = BTreeMap::new();
    for (name, client) in raw.clients {
        let key = format!("clients.{name}");
        if name.trim().is_empty() {
            return Err(p.invalid("clients", "a client type name cannot be empty"));
        }
        clients.insert(name, Arc::new(build_client(&key, client, p)?));
    }

    let client_names = || {
        if clients.is_empty() {
            "none".to_owned()
        } else {
            clients.keys().cloned().collect::<Vec<_>>().join(", ")
        }
    };
    if let Some(default) = &raw.default_client
        && !clients.contains_key(default)
    {
        return Err(p.invalid(
            "defaultClient",
            format!(
                "`{default}` is not a key of `clients` (configured: {}); name one of them, or leave it empty",
                client_names()
            ),
        ));
    }

    let management_client = raw
        .management_client
        .map(|m| build_management_client(m, p))
        .transpose()?;
    let auth0_tenant_url = raw
        .auth0_tenant_url
        .as_deref()
        .map(|u| base_url(p, "auth0TenantUrl", u))
        .transpose()?;

    let server = build_server(raw.server, &env, p)?;
    if server.trusted_proxies_source == TrustedProxiesSource::Gateway
        && server.allowed_hosts.is_empty()
    {
        warnings.push(
            "ORIGINAL_PROTOCOL_HEADER is set, so the private ranges (10.0.0.0/8, 172.16.0.0/12, \
             192.168.0.0/16, fc00::/7) are trusted proxies by default, while \
             `server.allowedHosts` is empty: any pod in those ranges can choose the host of a \
             logout's returnTo with X-Forwarded-Host; list your public hosts in \
             `server.allowedHosts`, or your gateway's addresses in `server.trustedProxies`"
                .to_owned(),
        );
    }

    let mut api_keys: Vec<ApiKey> = Vec::new();
    for (i, api_key) in raw.api_keys.into_iter().enumerate() {
        if !clients.contains_key(&api_key.client_type) {
            return Err(p.invalid(
                format!("apiKeys.{i}.clientType"),
                format!(
                    "`{}` is not a key of `clients` (configured: {})",
                    api_key.client_type,
                    client_names()
                ),
            ));
        }
        if let Some(first) = api_keys
            .iter()
            .position(|k| k.key.expose_secret() == api_key.key)
        {
            return Err(p.invalid(
                format!("apiKeys.{i}.key"),
                format!("it is the same key as `apiKeys.{first}.key`; each key must be unique"),
            ));
        }
        api_keys.push(ApiKey {
            key: SecretString::from(api_key.key),
            client_type: api_key.client_type,
            management: api_key.management,
        });
    }

    let sessions = build_sessions(raw.sessions, p, warnings)?;
    let jobs = build_jobs(raw.jobs, p)?;
    let plugins = raw
        .plugins
        .into_iter()
        .enumerate()
        .map(|(i, plugin)| build_plugin(i, plugin, p))
        .collect::<Result<Vec<_>, _>>()?;

    if server.insecure_cookies {
        warnings.push(
            "`server.insecureCookies` is true: cookies go without `Secure`, so anyone on a \
             plain-http hop can read a session cookie; use it for plain-http development only"
                .to_owned(),
        );
        for (name, client) in &clients {
            if client.same_site == Some(SameSite::None) {
                warnings.push(format!(
                    "`clients.{name}.sameSite` is None while `server.insecureCookies` is true: browsers \
                     drop SameSite=None cookies without Secure"
                ));
            }
        }
    }

    // With `apiKeys`, a management route needs a key flagged `management` (none flagged: closed
    // to everyone); without `managementClient` it answers 501. Without either guard, the default
    // guard of SPEC §6 holds them (`http::extract::guard`).
    if management_client.is_some() && api_keys.is_empty() && server.management_bind.is_none() {
        let who = if env.original_protocol_header.is_some() {
            "peers on loopback or in `server.trustedProxies` (upstream mode: the gateway decides \
             what is exposed)"
        } else {
            "local callers only (a loopback peer that forwarded no X-Forwarded-For)"
        };
        warnings.push(format!(
            "neither `apiKeys` nor `server.managementBind` guards the management routes: they \
             answer {who}; set `server.managementBind` to serve them on a private address, or \
             add `apiKeys` with a key flagged `management`"
        ));
    }

    Ok(Settings {
        clients,
        default_client: raw.default_client,
        custom_claims_namespaces: raw.custom_claims_namespaces,
        management_client,
        auth0_tenant_url,
        server,
        api_keys,
        sessions,
        jobs,
        plugins,
        log_level: env.log_level,
        service_prefix: env.service_prefix,
        service_version: env.service_version,
        session_duration_seconds: env.session_duration_seconds,
        session_scope: env.session_scope,
        original_protocol_header: env.original_protocol_header,
        logout_client_id_enabled: env.logout_client_id_enabled,
        delay_shutdown_seconds: env.delay_shutdown_seconds,
        config_file: None,
        warnings: Vec::new(),
    })
}

/// The ID-token algorithms a client may list (SPEC §3, as upstream accepts).
const SIGNING_ALGS: [&str; 2] = ["RS256", "HS256"];

fn build_client(key: &str, raw: RawClient, p: &Provenance) -> Result<ClientSettings, ConfigError> {
    let auth0_url = base_url(p, &format!("{key}.auth0Url"), &raw.auth0_url)?;
    if let Err(err) = Url::parse(raw.redirect_url.trim()) {
        return Err(p.invalid(
            format!("{key}.redirectUrl"),
            format!(
                "`{}` is not an absolute URL ({err}); expected the callback Auth0 redirects to, such as \
                 https://app.example.com/web-login/callback",
                raw.redirect_url
            ),
        ));
    }
    let supported_signing_algs = if raw.supported_signing_algs.is_empty() {
        vec!["RS256".to_owned()]
    } else {
        if let Some(other) = raw
            .supported_signing_algs
            .iter()
            .find(|a| !SIGNING_ALGS.contains(&a.as_str()))
        {
            return Err(p.invalid(
                format!("{key}.supportedSigningAlgs"),
                format!(
                    "`{other}` is not supported: ID tokens are verified with RS256 and HS256 only \
                     (RS256 with the tenant's keys, HS256 with the client's secret); remove it"
                ),
            ));
        }
        let mut algs = raw.supported_signing_algs;
        algs.dedup();
        algs
    };
    if let Some(default) = &raw.default_connection
        && !raw.supported_connections.is_empty()
        && !raw.supported_connections.contains(default)
    {
        return Err(p.invalid(
            format!("{key}.defaultConnection"),
            format!(
                "`{default}` is not in `{key}.supportedConnections` ({}); add it there or pick one of them",
                raw.supported_connections.join(", ")
            ),
        ));
    }
    let same_site = raw
        .same_site
        .as_deref()
        .map(|s| match s {
            "Lax" => Ok(SameSite::Lax),
            "None" => Ok(SameSite::None),
            "Strict" => Ok(SameSite::Strict),
            other => Err(p.invalid(
                format!("{key}.sameSite"),
                format!("expected Lax, None or Strict (with this capitalisation), found `{other}`"),
            )),
        })
        .transpose()?;
    Ok(ClientSettings {
        auth0_url,
        client_id: raw.client_id,
        client_secret: SecretString::from(raw.client_secret),
        redirect_url: raw.redirect_url.trim().to_owned(),
        scopes: raw.scopes,
        audience: raw.audience,
        supported_signing_algs,
        supported_connections: raw.supported_connections,
        default_connection: raw.default_connection,
        same_site,
        authorize_state_required: raw.authorize_state_required,
    })
}

fn build_management_client(
    raw: RawManagementClient,
    p: &Provenance,
) -> Result<ManagementClientSettings, ConfigError> {
    let auth0_url = base_url(p, "managementClient.auth0Url", &raw.auth0_url)?;
    let deprecated =
        raw.supported_connections.is_some() || raw.default_create_user_connection.is_some();
    let mapped =
        raw.supported_connections_map.is_some() || raw.default_management_connection_name.is_some();
    let connections = match (deprecated, mapped) {
        (true, true) => {
            return Err(p.invalid(
                "managementClient",
                "it mixes the deprecated `supportedConnections`/`defaultCreateUserConnection` with \
                 `supportedConnectionsMap`/`defaultManagementConnectionName`; keep one pair (the map \
                 enables bulk imports)",
            ));
        }
        (false, false) => ManagementConnections::Unset,
        (true, false) => {
            let supported = raw.supported_connections.unwrap_or_default();
            if let Some(default) = &raw.default_create_user_connection
                && !supported.contains(default)
            {
                return Err(p.invalid(
                    "managementClient.defaultCreateUserConnection",
                    format!(
                        "`{default}` is not in `managementClient.supportedConnections` ({}); add it there",
                        if supported.is_empty() { "empty".to_owned() } else { supported.join(", ") }
                    ),
                ));
            }
            ManagementConnections::Deprecated {
                supported_connections: supported,
                default_create_user_connection: raw.default_create_user_connection,
            }
        }
        (false, true) => {
            let map: BTreeMap<String, String> = raw
                .supported_connections_map
                .unwrap_or_default()
                .into_iter()
                .map(|(name, r)| (name, r.connection_id))
                .collect();
            if let Some(default) = &raw.default_management_connection_name
                && !map.contains_key(default)
            {
                return Err(p.invalid(
                    "managementClient.defaultManagementConnectionName",
                    format!(
                        "`{default}` is not a key of `managementClient.supportedConnectionsMap` ({}); add it there",
                        if map.is_empty() {
                            "empty".to_owned()
                        } else {
                            map.keys().cloned().collect::<Vec<_>>().join(", ")
                        }
                    ),
                ));
            }
            ManagementConnections::Mapped {
                supported_connections_map: map,
                default_management_connection_name: raw.default_management_connection_name,
            }
        }
    };
    Ok(ManagementClientSettings {
        auth0_url,
        client_id: raw.client_id,
        client_secret: SecretString::from(raw.client_secret),
        connections,
    })
}

fn build_server(
    raw: RawServer,
    env: &EnvSettings,
    p: &Provenance,
) -> Result<ServerSettings, ConfigError> {
    let http_port = env.http_port;
    let defaults = ServerSettings::default();
    let bind = match raw.bind.as_deref() {
        None => defaults.bind,
        Some(text) => text.trim().parse::<IpAddr>().map_err(|_| {
            p.invalid(
                "server.bind",
                format!("expected an IP address such as 0.0.0.0, 127.0.0.1 or ::, found `{text}`"),
            )
        })?,
    };
    let management_bind = raw
        .management_bind
        .as_deref()
        .map(|text| {
            text.trim().parse::<SocketAddr>().map_err(|_| {
                p.invalid(
                    "server.managementBind",
                    format!(
                        "expected an IP address and a port such as 127.0.0.1:9090 or [::1]:9090, found `{text}`"
                    ),
                )
            })
        })
        .transpose()?;
    if let Some(addr) = management_bind {
        let overlaps = addr.ip() == bind || addr.ip().is_unspecified() || bind.is_unspecified();
        if addr.port() != 0 && addr.port() == http_port && overlaps {
            return Err(p.invalid(
                "server.managementBind",
                format!(
                    "{addr} collides with the main listener ({bind} port {http_port} from HTTP_PORT); \
                     give the management listener a port of its own"
                ),
            ));
        }
    }
    let (trusted_proxies, trusted_proxies_source) = match raw.trusted_proxies {
        None => {
            let source = if env.original_protocol_header.is_some() {
                TrustedProxiesSource::Gateway
            } else {
                TrustedProxiesSource::Loopback
            };
            (ServerSettings::default_trusted_proxies(source), source)
        }
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let text = text.trim();
                text.parse::<IpNet>()
                    .map(|net| net.trunc())
                    .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        p.invalid(
                            format!("server.trustedProxies.{i}"),
                            format!("expected a CIDR such as 10.0.0.0/8 or an IP address, found `{text}`"),
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|list| (list, TrustedProxiesSource::Configured))?,
    };
    // The variable wins over the file, as every environment variable does.
    let log_format = match (env.log_format, raw.log_format.as_deref()) {
        (Some(format), _) => format,
        (None, None) => defaults.log_format,
        (None, Some(text)) => LogFormat::parse(text).ok_or_else(|| {
            p.invalid(
                "server.logFormat",
                format!(
                    "expected json (tracing's JSON lines) or mia (the upstream service's log shape), found `{text}`"
                ),
            )
        })?,
    };
    let allowed_hosts = raw
        .allowed_hosts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            parse_host(text).map_err(|reason| p.invalid(format!("server.allowedHosts.{i}"), reason))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ServerSettings {
        bind,
        http_port,
        management_bind,
        trusted_proxies,
        trusted_proxies_source,
        allowed_hosts,
        insecure_cookies: raw.insecure_cookies,
        body_limit_bytes: positive(
            p,
            "server.bodyLimitBytes",
            raw.body_limit_bytes,
            defaults.body_limit_bytes,
        )?,
        import_body_limit_bytes: positive(
            p,
            "server.importBodyLimitBytes",
            raw.import_body_limit_bytes,
            defaults.import_body_limit_bytes,
        )?,
        auth0_timeout: positive_millis(
            p,
            "server.auth0TimeoutMs",
            raw.auth0_timeout_ms,
            defaults.auth0_timeout,
        )?,
        body_timeout: positive_millis(
            p,
            "server.bodyTimeoutMs",
            raw.body_timeout_ms,
            defaults.body_timeout,
        )?,
        log_format,
    })
}

/// Builds `sessions`. When `sessions.store` is not set, Redis is used as soon as a Redis host is
/// configured (by `REDIS_HOSTS` or `sessions.redis.hosts`), as the upstream service always did.
fn build_sessions(
    raw: RawSessions,
    p: &Provenance,
    warnings: &mut Vec<String>,
) -> Result<SessionSettings, ConfigError> {
    let defaults = SessionSettings::default();
    let redis = build_redis(raw.redis, p)?;
    let store = match raw.store.as_deref().map(str::trim) {
        None if redis.hosts.is_empty() => StoreKind::Sled,
        None => StoreKind::Redis,
        Some(s) if s.eq_ignore_ascii_case("sled") => StoreKind::Sled,
        Some(s) if s.eq_ignore_ascii_case("redis") => StoreKind::Redis,
        Some(other) => {
            return Err(p.invalid(
                "sessions.store",
                format!("expected `sled` or `redis`, found `{other}`"),
            ));
        }
    };
    match store {
        StoreKind::Redis if redis.hosts.is_empty() => {
            return Err(p.invalid(
                "sessions.redis.hosts",
                "`sessions.store` is redis but no Redis host is configured; set REDIS_HOSTS \
                 (comma-separated host:port) or `sessions.redis.hosts`",
            ));
        }
        StoreKind::Redis => {
            if let Some(ca) = &redis.tls_ca_cert {
                if !redis.tls {
                    warnings.push(format!(
                        "`sessions.redis.tlsCaCert` ({}) is ignored because TLS is off; set REDIS_TLS=true to use it",
                        ca.display()
                    ));
                } else if !ca.is_file() {
                    return Err(p.invalid(
                        "sessions.redis.tlsCaCert",
                        format!("the file {} does not exist", ca.display()),
                    ));
                }
            }
        }
        StoreKind::Sled if !redis.hosts.is_empty() => warnings.push(format!(
            "the Redis settings ({REDIS_HOSTS} or `sessions.redis`) are ignored because `sessions.store` is sled"
        )),
        StoreKind::Sled => {}
    }
    Ok(SessionSettings {
        store,
        path: raw.path.unwrap_or(defaults.path),
        redis,
        refresh_grace_seconds: raw
            .refresh_grace_seconds
            .unwrap_or(defaults.refresh_grace_seconds),
        timeout: positive_millis(p, "sessions.timeoutMs", raw.timeout_ms, defaults.timeout)?,
        state_ttl_seconds: positive(
            p,
            "sessions.stateTtlSeconds",
            raw.state_ttl_seconds,
            defaults.state_ttl_seconds,
        )?,
        cache_bytes: cache_bytes(p, raw.cache_bytes, defaults.cache_bytes)?,
        sled_cache_bytes: sled_cache_bytes(p, raw.sled_cache_bytes, defaults.sled_cache_bytes)?,
        max_pending_logins: positive(
            p,
            "sessions.maxPendingLogins",
            raw.max_pending_logins,
            defaults.max_pending_logins,
        )?,
        max_pending_logins_per_ip: positive(
            p,
            "sessions.maxPendingLoginsPerIp",
            raw.max_pending_logins_per_ip,
            defaults.max_pending_logins_per_ip,
        )?,
        encryption_keys: encryption_keys(p, raw.encryption_keys)?,
    })
}

/// `sessions.encryptionKeys` (`SESSION_ENCRYPTION_KEYS`): each the standard base64 of 32 bytes
/// (`openssl rand -base64 32`). The error names the entry by position, never its value.
fn encryption_keys(p: &Provenance, keys: Vec<String>) -> Result<Vec<SecretString>, ConfigError> {
    use base64::Engine as _;
    keys.into_iter()
        .enumerate()
        .map(|(i, key)| {
            match base64::engine::general_purpose::STANDARD.decode(key.trim()) {
                Ok(bytes) if bytes.len() == 32 => Ok(SecretString::from(key.trim().to_owned())),
                _ => Err(p.invalid(
                    "sessions.encryptionKeys",
                    format!(
                        "entry {} is not the base64 of 32 bytes (make one with `openssl rand -base64 32`)",
                        i + 1
                    ),
                )),
            }
        })
        .collect()
}

/// Builds `sessions.redis`. Hosts without a port get `:6379`, the upstream default (also in
/// sentinel mode, where sentinels usually listen on 26379: give their port explicitly).
fn build_redis(raw: RawRedis, p: &Provenance) -> Result<RedisSettings, ConfigError> {
    let hosts = raw
        .hosts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            if text.contains("://") {
                return Err(p.invalid(
                    format!("sessions.redis.hosts.{i}"),
                    format!(
                        "`{text}` is a URL; Redis hosts are host[:port], with TLS, user and password \
                         from REDIS_TLS, REDIS_USERNAME and REDIS_PASSWORD"
                    ),
                ));
            }
            parse_host(text)
                .map(|host| format!("{}:{}", host.without_port(), host.port().unwrap_or(6379)))
                .map_err(|reason| p.invalid(format!("sessions.redis.hosts.{i}"), reason))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mode = match raw.mode.as_deref().map(str::trim) {
        None => RedisMode::Normal,
        Some(m) if m.eq_ignore_ascii_case("normal") => RedisMode::Normal,
        Some(m) if m.eq_ignore_ascii_case("sentinel") => RedisMode::Sentinel,
        Some(other) => {
            return Err(p.invalid(
                "sessions.redis.mode",
                format!("expected `normal` or `sentinel`, found `{other}`"),
            ));
        }
    };
    if mode == RedisMode::Sentinel && raw.master_name.is_none() {
        return Err(p.invalid(
            "sessions.redis.masterName",
            "sentinel mode needs the name of the master; set REDIS_MASTER_NAME (or `sessions.redis.masterName`)",
        ));
    }
    Ok(RedisSettings {
        hosts,
        mode,
        master_name: raw.master_name,
        username: raw.username,
        password: raw.password.map(SecretString::from),
        tls: raw.tls,
        tls_ca_cert: raw.tls_ca_cert,
    })
}

fn build_jobs(raw: RawJobs, p: &Provenance) -> Result<JobSettings, ConfigError> {
    let defaults = JobSettings::default();
    let poll_interval = positive_millis(
        p,
        "jobs.pollIntervalMs",
        raw.poll_interval_ms,
        defaults.poll_interval,
    )?;
    let max_poll_interval = raw.max_poll_interval_ms.map_or(
        defaults.max_poll_interval.max(poll_interval),
        Duration::from_millis,
    );
    if max_poll_interval < poll_interval {
        return Err(p.invalid(
            "jobs.maxPollIntervalMs",
            format!(
                "{} is below `jobs.pollIntervalMs` ({})",
                max_poll_interval.as_millis(),
                poll_interval.as_millis()
            ),
        ));
    }
    Ok(JobSettings {
        poll_interval,
        max_poll_interval,
        retention_days: positive(
            p,
            "jobs.retentionDays",
            raw.retention_days,
            defaults.retention_days,
        )?,
    })
}

fn build_plugin(i: usize, raw: RawPlugin, p: &Provenance) -> Result<PluginSettings, ConfigError> {
    let sha256 = raw
        .sha256
        .map(|hash| {
            let hash = hash.trim().to_ascii_lowercase();
            if hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()) {
                Ok(hash)
            } else {
                Err(p.invalid(
                    format!("plugins.{i}.sha256"),
                    "expected 64 hexadecimal digits (the output of `sha256sum`)",
                ))
            }
        })
        .transpose()?;
    let on_error = match raw.on_error.as_deref().map(str::trim) {
        None | Some("fail-open") => OnError::FailOpen,
        Some("fail-closed") => OnError::FailClosed,
        Some(other) => {
            return Err(p.invalid(
                format!("plugins.{i}.onError"),
                format!("expected `fail-open` or `fail-closed`, found `{other}`"),
            ));
        }
    };
    Ok(PluginSettings {
        path: raw.path,
        sha256,
        config: raw
            .config
            .unwrap_or_else(|| serde_json::Value::Object(serde_json::Map::new())),
        timeout: positive_millis(
            p,
            &format!("plugins.{i}.timeoutMs"),
            raw.timeout_ms,
            Duration::from_millis(100),
        )?,
        on_error,
    })
}

/// `sessions.cacheBytes`: the byte budget of the in-memory session copies. 0 turns the cache off
/// (every `/userinfo` reads the store); otherwise at least 1 MiB, since below that the cache would
/// keep only a few hundred sessions and refuse any above an eighth of the budget. The ceiling only
/// catches a unit mistake, as for `sledCacheBytes`.
fn cache_bytes(p: &Provenance, value: Option<u64>, default: u64) -> Result<u64, ConfigError> {
    const MIN: u64 = 1 << 20;
    const MAX: u64 = 1 << 40;
    match value {
        None => Ok(default),
        Some(v) if v == 0 || (MIN..=MAX).contains(&v) => Ok(v),
        Some(v) => Err(p.invalid(
            "sessions.cacheBytes",
            format!("must be 0 (off) or between {MIN} (1 MiB) and {MAX} (1 TiB) bytes, found {v}"),
        )),
    }
}

/// `sessions.sledCacheBytes`: sled's page cache. Below 1 MiB sled thrashes its own pages; the
/// ceiling only catches a unit mistake (a value meant in KiB or bits), since memory is the
/// operator's to spend.
fn sled_cache_bytes(p: &Provenance, value: Option<u64>, default: u64) -> Result<u64, ConfigError> {
    const MIN: u64 = 1 << 20;
    const MAX: u64 = 1 << 40;
    match value {
        None => Ok(default),
        Some(v) if (MIN..=MAX).contains(&v) => Ok(v),
        Some(v) => Err(p.invalid(
            "sessions.sledCacheBytes",
            format!("must be between {MIN} (1 MiB) and {MAX} (1 TiB) bytes, found {v}"),
        )),
    }
}

/// A positive number of milliseconds (a `...Ms` key) as a duration.
fn positive_millis(
    p: &Provenance,
    key: &str,
    value: Option<u64>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let default = u64::try_from(default.as_millis()).unwrap_or(u64::MAX);
    positive(p, key, value, default).map(Duration::from_millis)
}

fn positive<T: PartialOrd + Default + std::fmt::Display>(
    p: &Provenance,
    key: &str,
    value: Option<T>,
    default: T,
) -> Result<T, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) if v > T::default() => Ok(v),
        Some(v) => Err(p.invalid(key, format!("must be greater than 0, found {v}"))),
    }
}

/// An Auth0 base URL: absolute http(s) with a host, no query, fragment or credentials; normalised
/// to end with `/` so that the issuer is always `<base>/`.
pub(crate) fn base_url(p: &Provenance, key: &str, text: &str) -> Result<Url, ConfigError> {
    let bad = |why: String| {
        p.invalid(
            key,
            format!("{why}; expected a base URL such as https://tenant.eu.auth0.com/"),
        )
    };
    let mut url =
        Url::parse(text.trim()).map_err(|err| bad(format!("`{text}` is not a URL ({err})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(bad(format!(
            "`{text}` is not an http or https URL with a host"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad(format!("`{text}` has a query or a fragment")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("the URL contains credentials".to_owned()));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// `name[:port]`, `IPv4[:port]` or `[IPv6][:port]` (see [`PublicHost`]), around blanks.
fn parse_host(text: &str) -> Result<PublicHost, String> {
    PublicHost::parse(text.trim()).map_err(|_| {
        format!(
            "expected a host such as app.example.com, app.example.com:8443, 10.0.0.5 or [::1]:6379, found `{text}`"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_trimmed_and_named_in_errors() {
        assert_eq!(
            parse_host(" App.Example.com:8443 ").map(|h| h.to_string()),
            Ok("app.example.com:8443".to_owned())
        );
        let err = parse_host("https://app.example.com")
            .err()
            .unwrap_or_default();
        assert!(err.contains("found `https://app.example.com`"), "{err}");
    }

    #[test]
    fn base_urls() {
        let p = Provenance::new(None);
        for (given, expected) in [
            (
                "https://tenant.eu.auth0.com",
                "https://tenant.eu.auth0.com/",
            ),
            (
                "https://tenant.eu.auth0.com/",
                "https://tenant.eu.auth0.com/",
            ),
            (
                "http://127.0.0.1:9000/tenant",
                "http://127.0.0.1:9000/tenant/",
            ),
        ] {
            assert_eq!(base_url(&p, "k", given).expect(given).as_str(), expected);
        }
        for bad in [
            "my auth0 url",
            "tenant.eu.auth0.com",
            "ftp://tenant/",
            "https://tenant/?a=1",
            "https://u:p@tenant/",
        ] {
            let err = base_url(&p, "clients.web.auth0Url", bad).expect_err(bad);
            assert_eq!(err.key(), Some("clients.web.auth0Url"));
        }
    }
}
