//! `Env`, the snapshot of environment variables the configuration is read from, and the variables
//! that exist only in the environment (SPEC §3): their defaults, validation and normalisation.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use super::error::ConfigError;
use super::types::LogFormat;

/// A snapshot of environment variables. The loader reads only this, never the process environment,
/// so tests build one with [`Env::from_pairs`] and never mutate global state.
///
/// An empty value means "unset" everywhere ([`Env::get`]), except in `${VAR}` interpolation, where a
/// variable set to the empty string interpolates as the empty string ([`Env::get_raw`]).
#[derive(Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// The environment of this process. Variables whose name is not UTF-8 are skipped; values that
    /// are not UTF-8 are read lossily (so a validated variable reports a readable error).
    pub fn from_process() -> Self {
        let vars = std::env::vars_os()
            .filter_map(|(name, value)| {
                Some((
                    name.into_string().ok()?,
                    value.to_string_lossy().into_owned(),
                ))
            })
            .collect();
        Self { vars }
    }

    /// An environment made of exactly these pairs (later pairs win).
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// This environment with `name` set to `value` (the demo pins its port this way).
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.vars.insert(name.into(), value.into());
        self
    }

    /// The value of `name`; `None` when it is unset or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_raw(name).filter(|v| !v.is_empty())
    }

    /// A comma-separated `name` as a JSON list of its trimmed, non-empty items; `None` when it is
    /// unset or has no item.
    pub(crate) fn get_list(&self, name: &str) -> Option<Value> {
        let items: Vec<Value> = self
            .get(name)?
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| Value::String(item.to_owned()))
            .collect();
        (!items.is_empty()).then_some(Value::Array(items))
    }

    /// The value of `name`, even when empty; `None` only when it is unset.
    pub fn get_raw(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Every non-empty variable whose name starts with `prefix`, in name order.
    pub(crate) fn with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.vars
            .range(prefix.to_owned()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl Env {
    /// `LOG_LEVEL` and `LOG_FORMAT` as logging needs them before the config is loaded: an invalid
    /// value counts as unset here (the load then refuses it by name).
    pub fn logging(&self) -> (String, LogFormat) {
        let level = self
            .get(LOG_LEVEL)
            .and_then(|v| parse_log_level(v).ok())
            .unwrap_or_else(|| "info".to_owned());
        let format = self
            .get(LOG_FORMAT)
            .and_then(LogFormat::parse)
            .unwrap_or_default();
        (level, format)
    }
}

/// Names only: values may be secrets.
impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Env")
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .finish()
    }
}

pub(crate) const LOG_LEVEL: &str = "LOG_LEVEL";
pub(crate) const HTTP_PORT: &str = "HTTP_PORT";
pub(crate) const SERVICE_PREFIX: &str = "SERVICE_PREFIX";
pub(crate) const SERVICE_VERSION: &str = "SERVICE_VERSION";
pub(crate) const SESSION_DURATION_SECONDS: &str = "SESSION_DURATION_SECONDS";
pub(crate) const SESSION_SCOPE: &str = "SESSION_SCOPE";
pub(crate) const ORIGINAL_PROTOCOL_HEADER: &str = "ORIGINAL_PROTOCOL_HEADER";
pub(crate) const SERVICE_CONFIG_PATH: &str = "SERVICE_CONFIG_PATH";
pub(crate) const SERVICE_CONFIG_FILE_NAME: &str = "SERVICE_CONFIG_FILE_NAME";
pub(crate) const AUTH0_LOGOUT_CLIENT_ID_ENABLED: &str = "AUTH0_LOGOUT_CLIENT_ID_ENABLED";
pub(crate) const DELAY_SHUTDOWN_SECONDS: &str = "DELAY_SHUTDOWN_SECONDS";
pub(crate) const LOG_FORMAT: &str = "LOG_FORMAT";
pub(crate) const REDIS_HOSTS: &str = "REDIS_HOSTS";
pub(crate) const REDIS_MODE: &str = "REDIS_MODE";
pub(crate) const REDIS_MASTER_NAME: &str = "REDIS_MASTER_NAME";
pub(crate) const REDIS_USERNAME: &str = "REDIS_USERNAME";
pub(crate) const REDIS_PASSWORD: &str = "REDIS_PASSWORD";
pub(crate) const REDIS_TLS: &str = "REDIS_TLS";
pub(crate) const REDIS_TLS_CACERT: &str = "REDIS_TLS_CACERT";
/// `sessions.encryptionKeys`, comma-separated (SPEC §3).
pub(crate) const SESSION_ENCRYPTION_KEYS: &str = "SESSION_ENCRYPTION_KEYS";

/// The upstream MongoDB user-sync variables, refused (SPEC §3).
pub(crate) const MONGO_VARS: [&str; 4] = [
    "MONGO_DB_URL",
    "USERS_DATABASE_NAME",
    "USERS_COLLECTION_NAME",
    "USERS_PROPERTIES_TO_SAVE",
];

/// The values that come only from the environment, validated and normalised.
#[derive(Debug)]
#[cfg_attr(test, derive(PartialEq))]
pub(crate) struct EnvSettings {
    pub log_level: String,
    pub http_port: u16,
    pub service_prefix: String,
    pub service_version: String,
    pub session_duration_seconds: u64,
    pub session_scope: String,
    pub original_protocol_header: Option<String>,
    pub log_format: Option<LogFormat>,
    pub logout_client_id_enabled: bool,
    pub delay_shutdown_seconds: u64,
}

impl EnvSettings {
    pub(crate) fn read(env: &Env) -> Result<Self, ConfigError> {
        refuse_mongo_sync(env)?;
        Ok(Self {
            log_level: env
                .get(LOG_LEVEL)
                .map(parse_log_level)
                .transpose()?
                .unwrap_or_else(|| "info".to_owned()),
            http_port: env
                .get(HTTP_PORT)
                .map(|v| {
                    v.trim().parse::<u16>().map_err(|_| ConfigError::InvalidEnv {
                        var: HTTP_PORT,
                        reason: format!(
                            "expected a port number from 0 to 65535 (0 picks a free port), found {v:?}"
                        ),
                    })
                })
                .transpose()?
                .unwrap_or(8080),
            service_prefix: env
                .get(SERVICE_PREFIX)
                .map(parse_service_prefix)
                .transpose()?
                .unwrap_or_default(),
            service_version: env
                .get(SERVICE_VERSION)
                .unwrap_or(env!("CARGO_PKG_VERSION"))
                .to_owned(),
            session_duration_seconds: positive_seconds(env, SESSION_DURATION_SECONDS, 86_400)?,
            session_scope: env.get(SESSION_SCOPE).unwrap_or_default().to_owned(),
            original_protocol_header: env
                .get(ORIGINAL_PROTOCOL_HEADER)
                .map(parse_header_name)
                .transpose()?,
            log_format: env.get(LOG_FORMAT).map(parse_log_format).transpose()?,
            logout_client_id_enabled: env
                .get(AUTH0_LOGOUT_CLIENT_ID_ENABLED)
                .map(|v| parse_bool(AUTH0_LOGOUT_CLIENT_ID_ENABLED, v))
                .transpose()?
                .unwrap_or(false),
            delay_shutdown_seconds: env
                .get(DELAY_SHUTDOWN_SECONDS)
                .map(|v| {
                    v.trim().parse::<u64>().map_err(|_| ConfigError::InvalidEnv {
                        var: DELAY_SHUTDOWN_SECONDS,
                        reason: format!("expected a whole number of seconds, found {v:?}"),
                    })
                })
                .transpose()?
                .unwrap_or(10),
        })
    }
}

/// Refuses the upstream MongoDB sync variables: silently ignoring them would lose data the
/// operator expects to be copied.
fn refuse_mongo_sync(env: &Env) -> Result<(), ConfigError> {
    let set: Vec<&'static str> = MONGO_VARS
        .into_iter()
        .filter(|v| env.get(v).is_some())
        .collect();
    if set.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::MongoSyncUnsupported { vars: set })
    }
}

/// `LOG_LEVEL`: a level name (the upstream logrus names are accepted: `warning` is `warn`, `fatal`
/// and `panic` are `error`), normalised to lower case; or a `tracing` filter directive such as
/// `info,auth0_client=debug` (recognised by its `=` or `,`).
fn parse_log_level(value: &str) -> Result<String, ConfigError> {
    let trimmed = value.trim();
    let level = match trimmed.to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warn" | "warning" => "warn",
        "error" | "fatal" | "panic" => "error",
        "off" => "off",
        _ if trimmed.contains(['=', ',']) => {
            return tracing_subscriber::EnvFilter::builder()
                .parse(trimmed)
                .map(|_| trimmed.to_owned())
                .map_err(|err| ConfigError::InvalidEnv {
                    var: LOG_LEVEL,
                    reason: format!("{trimmed:?} is not a valid filter directive: {err}"),
                });
        }
        _ => {
            return Err(ConfigError::InvalidEnv {
                var: LOG_LEVEL,
                reason: format!(
                    "expected trace, debug, info, warn, error or off (or a filter such as \
                     `info,auth0_client=debug`), found {value:?}"
                ),
            });
        }
    };
    Ok(level.to_owned())
}

/// `SERVICE_PREFIX`: `""` or `/a/b`: a leading `/` is added, trailing ones are dropped, `/` alone
/// is no prefix.
fn parse_service_prefix(value: &str) -> Result<String, ConfigError> {
    let trimmed = value.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    let prefix = if trimmed.starts_with('/') {
        trimmed.to_owned()
    } else {
        format!("/{trimmed}")
    };
    let valid_segment = |segment: &str| {
        !segment.is_empty()
            && segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@%".contains(c))
    };
    if prefix[1..].split('/').all(valid_segment) {
        Ok(prefix)
    } else {
        Err(ConfigError::InvalidEnv {
            var: SERVICE_PREFIX,
            reason: format!(
                "expected a URL path such as /auth (no spaces, `?`, `#` or empty segments), found {value:?}"
            ),
        })
    }
}

/// `ORIGINAL_PROTOCOL_HEADER`: an HTTP header name, stored in lower case (header names are
/// case-insensitive).
fn parse_header_name(value: &str) -> Result<String, ConfigError> {
    let name = value.trim();
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if !name.is_empty() && name.chars().all(token) {
        Ok(name.to_ascii_lowercase())
    } else {
        Err(ConfigError::InvalidEnv {
            var: ORIGINAL_PROTOCOL_HEADER,
            reason: format!(
                "expected the name of the header carrying the original scheme, such as x-forwarded-proto, found {value:?}"
            ),
        })
    }
}

/// `LOG_FORMAT`: `json` or `mia`.
pub(crate) fn parse_log_format(value: &str) -> Result<LogFormat, ConfigError> {
    LogFormat::parse(value).ok_or_else(|| ConfigError::InvalidEnv {
        var: LOG_FORMAT,
        reason: format!(
            "expected json (tracing's JSON lines) or mia (the upstream service's log shape), found {value:?}"
        ),
    })
}

/// A boolean as Go's `strconv.ParseBool` reads it (the upstream service's parser), ignoring case:
/// `true`/`t`/`1` and `false`/`f`/`0`.
pub(crate) fn parse_bool(var: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "t" | "1" => Ok(true),
        "false" | "f" | "0" => Ok(false),
        _ => Err(ConfigError::InvalidEnv {
            var,
            reason: format!("expected true or false, found {value:?}"),
        }),
    }
}

fn positive_seconds(env: &Env, var: &'static str, default: u64) -> Result<u64, ConfigError> {
    match env.get(var) {
        None => Ok(default),
        Some(v) => match v.trim().parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(ConfigError::InvalidEnv {
                var,
                reason: format!("expected a whole number of seconds greater than 0, found {v:?}"),
            }),
        },
    }
}

/// The `REDIS_*` variables as values for `sessions.redis`, each with the variable it came from.
/// They are written over the file's values (env wins) before the `AUTH0_CLIENT__` overrides.
pub(crate) fn redis_values(
    env: &Env,
) -> Result<Vec<(&'static str, &'static str, Value)>, ConfigError> {
    let mut values = Vec::new();
    if let Some(hosts) = env.get_list(REDIS_HOSTS) {
        values.push(("hosts", REDIS_HOSTS, hosts));
    }
    for (field, var) in [
        ("mode", REDIS_MODE),
        ("masterName", REDIS_MASTER_NAME),
        ("username", REDIS_USERNAME),
        ("password", REDIS_PASSWORD),
        ("tlsCaCert", REDIS_TLS_CACERT),
    ] {
        if let Some(value) = env.get(var) {
            values.push((field, var, Value::String(value.to_owned())));
        }
    }
    if let Some(tls) = env.get(REDIS_TLS) {
        values.push(("tls", REDIS_TLS, Value::Bool(parse_bool(REDIS_TLS, tls)?)));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let s = EnvSettings::read(&Env::default()).expect("defaults");
        assert_eq!(s.log_level, "info");
        assert_eq!(s.http_port, 8080);
        assert_eq!(s.service_prefix, "");
        assert_eq!(s.service_version, env!("CARGO_PKG_VERSION"));
        assert_eq!(s.session_duration_seconds, 86_400);
        assert_eq!(s.session_scope, "");
        assert_eq!(s.original_protocol_header, None);
        assert!(!s.logout_client_id_enabled);
        assert_eq!(s.delay_shutdown_seconds, 10);
    }

    #[test]
    fn empty_values_mean_unset() {
        let s = EnvSettings::read(&env(&[
            ("LOG_LEVEL", ""),
            ("HTTP_PORT", ""),
            ("SESSION_DURATION_SECONDS", ""),
            ("AUTH0_LOGOUT_CLIENT_ID_ENABLED", ""),
            ("MONGO_DB_URL", ""),
        ]))
        .expect("empty is unset");
        assert_eq!(s, EnvSettings::read(&Env::default()).expect("defaults"));
    }

    #[test]
    fn values_are_read_and_normalised() {
        let s = EnvSettings::read(&env(&[
            ("LOG_LEVEL", "WARNING"),
            ("HTTP_PORT", "3000"),
            ("SERVICE_PREFIX", "auth/"),
            ("SERVICE_VERSION", "9.9.9"),
            ("SESSION_DURATION_SECONDS", "3600"),
            ("SESSION_SCOPE", "tenant-a"),
            ("ORIGINAL_PROTOCOL_HEADER", "X-Forwarded-Proto"),
            ("AUTH0_LOGOUT_CLIENT_ID_ENABLED", "True"),
            ("DELAY_SHUTDOWN_SECONDS", "0"),
        ]))
        .expect("valid");
        assert_eq!(s.log_level, "warn");
        assert_eq!(s.http_port, 3000);
        assert_eq!(s.service_prefix, "/auth");
        assert_eq!(s.service_version, "9.9.9");
        assert_eq!(s.session_duration_seconds, 3600);
        assert_eq!(s.session_scope, "tenant-a");
        assert_eq!(
            s.original_protocol_header.as_deref(),
            Some("x-forwarded-proto")
        );
        assert!(s.logout_client_id_enabled);
        assert_eq!(s.delay_shutdown_seconds, 0);
    }

    #[test]
    fn log_levels() {
        for (given, expected) in [
            ("debug", "debug"),
            ("Fatal", "error"),
            ("panic", "error"),
            ("off", "off"),
            ("info,auth0_client=debug", "info,auth0_client=debug"),
        ] {
            assert_eq!(parse_log_level(given).expect(given), expected);
        }
        assert!(parse_log_level("verbose").is_err());
        assert!(parse_log_level("info,=[").is_err());
    }

    #[test]
    fn service_prefixes() {
        for (given, expected) in [
            ("/", ""),
            ("  ", ""),
            ("/api", "/api"),
            ("api", "/api"),
            ("/a/b//", "/a/b"),
        ] {
            assert_eq!(parse_service_prefix(given).expect(given), expected);
        }
        for bad in ["/a b", "/a?b", "/a//b", "/a#"] {
            let err = parse_service_prefix(bad).expect_err(bad).to_string();
            assert!(err.contains("SERVICE_PREFIX"), "{err}");
        }
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("HTTP_PORT", "abc"),
            ("HTTP_PORT", "70000"),
            ("HTTP_PORT", "-1"),
            ("SESSION_DURATION_SECONDS", "0"),
            ("SESSION_DURATION_SECONDS", "1d"),
            ("DELAY_SHUTDOWN_SECONDS", "-5"),
            ("AUTH0_LOGOUT_CLIENT_ID_ENABLED", "yes please"),
            ("ORIGINAL_PROTOCOL_HEADER", "x forwarded proto"),
            ("LOG_LEVEL", "loud"),
        ] {
            let err = EnvSettings::read(&env(&[(var, value)])).expect_err(var);
            assert_eq!(err.key(), Some(var));
            assert!(err.to_string().contains(var), "{err}");
        }
    }

    #[test]
    fn mongo_sync_variables_are_refused() {
        let err = EnvSettings::read(&env(&[
            ("MONGO_DB_URL", "mongodb://db/users"),
            ("USERS_COLLECTION_NAME", "users"),
        ]))
        .expect_err("refused")
        .to_string();
        assert!(err.contains("MONGO_DB_URL, USERS_COLLECTION_NAME"), "{err}");
        assert!(err.contains("on_tokens"), "{err}");
        for var in MONGO_VARS {
            let err = EnvSettings::read(&env(&[(var, "x")]))
                .expect_err(var)
                .to_string();
            assert!(err.contains(var) && err.contains("on_tokens"), "{err}");
        }
    }

    #[test]
    fn redis_variables_become_values() {
        let values = redis_values(&env(&[
            ("REDIS_HOSTS", " a:6379, ,b "),
            ("REDIS_MODE", "sentinel"),
            ("REDIS_TLS", "1"),
            ("REDIS_PASSWORD", ""),
        ]))
        .expect("valid");
        assert_eq!(
            values,
            vec![
                ("hosts", REDIS_HOSTS, serde_json::json!(["a:6379", "b"])),
                ("mode", REDIS_MODE, serde_json::json!("sentinel")),
                ("tls", REDIS_TLS, serde_json::json!(true)),
            ]
        );
        assert!(
            redis_values(&env(&[("REDIS_HOSTS", " , ")]))
                .expect("ok")
                .is_empty()
        );
        let err = redis_values(&env(&[("REDIS_TLS", "maybe")])).expect_err("bad bool");
        assert_eq!(err.key(), Some("REDIS_TLS"));
    }

    #[test]
    fn debug_shows_names_not_values() {
        let e = env(&[("REDIS_PASSWORD", "hunter2")]);
        let shown = format!("{e:?}");
        assert!(shown.contains("REDIS_PASSWORD") && !shown.contains("hunter2"));
    }

    #[test]
    fn prefix_iteration_skips_empty_values() {
        let e = env(&[
            ("AUTH0_CLIENT__A", "1"),
            ("AUTH0_CLIENT__B", ""),
            ("AUTH0_CLIENT_ID", "x"),
            ("AUTH0_CLIENT__C", "3"),
        ]);
        let found: Vec<_> = e.with_prefix("AUTH0_CLIENT__").collect();
        assert_eq!(
            found,
            vec![("AUTH0_CLIENT__A", "1"), ("AUTH0_CLIENT__C", "3")]
        );
    }
}
