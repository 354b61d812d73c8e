//! The configuration (SPEC §2 file lookup, §3 keys and environment): the one `Settings` struct every
//! other module reads, built once at start by [`Settings::load`] (or [`Settings::from_value`] for an
//! in-memory document) from the config file and an [`Env`] snapshot.
//!
//! The pipeline, in order (each later step wins over the earlier ones):
//! 1. the file, found as SPEC §2 says and parsed by extension (JSON, TOML, YAML) with figment;
//! 2. `${VAR}` / `{{VAR}}` interpolation of every string value from the `Env`;
//! 3. empty strings and `null`s dropped, so the key takes its default (SPEC: "empty means unset");
//! 4. `managementClient.authorizeStateRequired` (found in upstream examples) dropped with a warning;
//! 5. the `REDIS_*` variables written over `sessions.redis`;
//! 6. the `AUTH0_CLIENT__<path>` overrides;
//! 7. deserialisation with every unknown key refused by its full path, then the checks of SPEC §3.
//!
//! The variables that exist only in the environment (`LOG_LEVEL`, `HTTP_PORT`, `SERVICE_PREFIX`, ...)
//! are validated first; an empty variable is an unset one everywhere. Errors are [`ConfigError`]s
//! naming the key (and the variable that set it, or the file); secrets are `secrecy` types, so
//! `Debug` never shows them, and [`Settings::redacted_json`] prints them as `"<redacted>"`.

mod build;
mod env;
mod error;
pub mod host;
mod interpolate;
mod overrides;
mod source;
mod types;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use figment::Figment;
use figment::error::Kind;
use figment::providers::Serialized;
use serde::Serialize;
use serde_json::{Value, json};
use url::Url;

pub use env::Env;
pub use error::ConfigError;
pub use host::PublicHost;
pub use source::DEFAULT_CONFIG_FILE;
pub use types::{
    ApiKey, ClientSettings, JobSettings, LogFormat, ManagementClientSettings,
    ManagementConnections, OnError, PRIVATE_RANGES, PluginSettings, REDACTED, RedisMode,
    RedisSettings, SameSite, ServerSettings, SessionSettings, StoreKind, TrustedProxiesSource,
};

use overrides::{Provenance, ROOT};

/// The daemon's whole configuration. Keys of the file are camelCase (`defaultClient`); fields here
/// are their snake_case (`default_client`). The `#[serde(skip)]` fields come from the environment
/// only and appear under `environment` in [`Settings::redacted_json`].
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// Login clients by client type (the `client-type` header's values).
    /// Shared, so a request's selected client is a pointer copy, not a deep clone.
    pub clients: BTreeMap<String, Arc<ClientSettings>>,
    /// The client used when a request names none; `""` in the file is `None`.
    pub default_client: Option<String>,
    /// Namespaced ID-token claims also exposed under their last path segment in `/userinfo`.
    pub custom_claims_namespaces: Vec<String>,
    /// `None`: a login-only deployment; the management routes answer 501.
    pub management_client: Option<ManagementClientSettings>,
    /// Management API base and audience for custom domains, normalised to end with `/`.
    #[serde(serialize_with = "types::ser::url_opt")]
    pub auth0_tenant_url: Option<Url>,
    pub server: ServerSettings,
    pub api_keys: Vec<ApiKey>,
    pub sessions: SessionSettings,
    pub jobs: JobSettings,
    pub plugins: Vec<PluginSettings>,

    /// `LOG_LEVEL`: a lower-case level name or a `tracing` filter directive (default `info`).
    #[serde(skip)]
    pub log_level: String,
    /// `SERVICE_PREFIX`: `""` or `/a/b` (leading `/`, no trailing `/`).
    #[serde(skip)]
    pub service_prefix: String,
    /// `SERVICE_VERSION`, default the crate version.
    #[serde(skip)]
    pub service_version: String,
    /// `SESSION_DURATION_SECONDS` (86400).
    #[serde(skip)]
    pub session_duration_seconds: u64,
    /// `SESSION_SCOPE`: namespace of the store's keys (default `""`).
    #[serde(skip)]
    pub session_scope: String,
    /// `ORIGINAL_PROTOCOL_HEADER`, lower-cased: the header carrying the original scheme.
    #[serde(skip)]
    pub original_protocol_header: Option<String>,
    /// `AUTH0_LOGOUT_CLIENT_ID_ENABLED` (false).
    #[serde(skip)]
    pub logout_client_id_enabled: bool,
    /// `DELAY_SHUTDOWN_SECONDS` (10).
    #[serde(skip)]
    pub delay_shutdown_seconds: u64,

    /// The file the settings were loaded from (`None` from [`Settings::from_value`]).
    #[serde(skip)]
    pub config_file: Option<PathBuf>,
    /// What was accepted but is probably not meant (an ignored key, a setting with no effect).
    /// Each was logged with `tracing::warn!` at load; since the subscriber may not be installed
    /// yet then, the caller should log them again once it is.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

impl Settings {
    /// Finds the config file (`path` from `--config`; else
    /// `$SERVICE_CONFIG_PATH/$SERVICE_CONFIG_FILE_NAME.json` when both are set; else
    /// [`DEFAULT_CONFIG_FILE`] in the working directory), reads it by its extension (`.json`,
    /// `.toml`, `.yaml`/`.yml`) and builds the settings with `env`.
    ///
    /// A `SERVICE_CONFIG_FILE_NAME` that already ends in a supported extension is used as is.
    /// Only one of the two `SERVICE_CONFIG_*` variables set is an error rather than a silent
    /// fallback to the default file.
    pub fn load(path: Option<&Path>, env: &Env) -> Result<Settings, ConfigError> {
        let (file, origin) = source::locate(path, env)?;
        let doc = source::read(&file, origin)?;
        let mut settings = Self::build(doc, env, Some(&file))?;
        settings.config_file = Some(file);
        Ok(settings)
    }

    /// Builds the settings from an in-memory document (the parsed config file), through the same
    /// pipeline as [`Settings::load`].
    pub fn from_value(file: Value, env: &Env) -> Result<Settings, ConfigError> {
        Self::build(file, env, None)
    }

    /// The effective configuration for `check-config`: every key with its value after defaults,
    /// environment and overrides, plus an `environment` object with the environment-only values
    /// by variable name and a `sources` object saying why a derived default is what it is (the
    /// trusted proxies in force); every secret (client secrets, Redis password, API keys) is `"<redacted>"`.
    pub fn redacted_json(&self) -> Value {
        let mut doc =
            serde_json::to_value(self).unwrap_or_else(|err| json!({ "error": err.to_string() }));
        if let Value::Object(members) = &mut doc {
            members.insert(
                "environment".to_owned(),
                json!({
                    env::LOG_LEVEL: self.log_level,
                    env::HTTP_PORT: self.server.http_port,
                    env::SERVICE_PREFIX: self.service_prefix,
                    env::SERVICE_VERSION: self.service_version,
                    env::SESSION_DURATION_SECONDS: self.session_duration_seconds,
                    env::SESSION_SCOPE: self.session_scope,
                    env::ORIGINAL_PROTOCOL_HEADER: self.original_protocol_header,
                    env::AUTH0_LOGOUT_CLIENT_ID_ENABLED: self.logout_client_id_enabled,
                    env::DELAY_SHUTDOWN_SECONDS: self.delay_shutdown_seconds,
                }),
            );
            members.insert(
                "sources".to_owned(),
                json!({ "server.trustedProxies": self.server.trusted_proxies_source.reason() }),
            );
        }
        doc
    }

    /// The client of type `name`.
    pub fn client(&self, name: &str) -> Option<&Arc<ClientSettings>> {
        self.clients.get(name)
    }

    /// The Management API base, which is also its audience: `<auth0TenantUrl, else
    /// managementClient.auth0Url>/api/v2/`; `None` without a `managementClient`.
    pub fn management_api_base(&self) -> Option<String> {
        let management = self.management_client.as_ref()?;
        let base = self
            .auth0_tenant_url
            .as_ref()
            .unwrap_or(&management.auth0_url);
        Some(format!("{}api/v2/", base.as_str()))
    }

    fn build(doc: Value, env: &Env, file: Option<&Path>) -> Result<Settings, ConfigError> {
        let env_settings = env::EnvSettings::read(env)?;
        let mut doc = doc;
        if !doc.is_object() {
            return Err(ConfigError::NotAnObject {
                found: json_kind(&doc),
            });
        }
        let unfilled = placeholders(&doc);
        if !unfilled.is_empty() {
            return Err(ConfigError::Placeholders { keys: unfilled });
        }
        interpolate::interpolate_document(&mut doc, env)?;
        overrides::prune(&mut doc, &ROOT);

        let mut warnings = Vec::new();
        if let Some(management) = doc
            .get_mut("managementClient")
            .and_then(Value::as_object_mut)
            && management.remove("authorizeStateRequired").is_some()
        {
            warnings.push(
                "`managementClient.authorizeStateRequired` is ignored: state is required per login \
                 client; set `clients.<name>.authorizeStateRequired` instead"
                    .to_owned(),
            );
        }

        let mut provenance = Provenance::new(file.map(|f| f.display().to_string()));
        if let Value::Object(members) = &mut doc {
            overrides::apply_redis_env(members, env, &mut provenance)?;
        }
        overrides::apply_overrides(&mut doc, env, &mut provenance)?;

        let raw: build::RawSettings = Figment::from(Serialized::defaults(&doc))
            .extract()
            .map_err(|err| figment_error(err, &provenance))?;
        let mut settings = build::build(raw, env_settings, &provenance, &mut warnings)?;
        for warning in &warnings {
            tracing::warn!(target: "auth0_client::config", "{warning}");
        }
        settings.warnings = warnings;
        Ok(settings)
    }
}

/// The prefix of a value the packaged config template leaves for the operator to fill
/// (`/etc/auth0-client/auth0-client.toml`): such a file fails to load, naming every key still to
/// fill at once rather than the first one a later check would stumble on.
pub const PLACEHOLDER: &str = "FILL-ME";

/// The dotted paths of the string values starting with [`PLACEHOLDER`].
fn placeholders(doc: &Value) -> Vec<String> {
    fn walk(value: &Value, path: &mut Vec<String>, found: &mut Vec<String>) {
        match value {
            Value::String(s) if s.trim_start().starts_with(PLACEHOLDER) => {
                found.push(path.join("."))
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    path.push(i.to_string());
                    walk(item, path, found);
                    path.pop();
                }
            }
            Value::Object(members) => {
                for (key, item) in members {
                    path.push(key.clone());
                    walk(item, path, found);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    walk(doc, &mut Vec::new(), &mut found);
    found
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Translates a deserialisation error into one naming the key by its full path.
fn figment_error(err: figment::Error, provenance: &Provenance) -> ConfigError {
    let path = err.path.join(".");
    match err.kind {
        Kind::UnknownField(field, expected) => ConfigError::UnknownKey {
            origin: provenance.origin(&path),
            hint: suggest(&field, expected),
            key: path,
        },
        Kind::MissingField(field) => {
            let key = if path.is_empty() {
                field.into_owned()
            } else {
                format!("{path}.{field}")
            };
            ConfigError::MissingKey {
                origin: provenance.origin(&key),
                key,
            }
        }
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => provenance
            .invalid(
                path,
                format!("expected {}, found {actual}", describe(&expected)),
            ),
        other => provenance.invalid(path, other.to_string()),
    }
}

/// serde's names of expected types, in an operator's words.
fn describe(expected: &str) -> String {
    match expected {
        "u16" => "a whole number from 0 to 65535".to_owned(),
        "u8" | "u32" | "u64" | "usize" => "a whole number (0 or more)".to_owned(),
        "a sequence" => "a list".to_owned(),
        "a map" => "an object".to_owned(),
        "a boolean" => "true or false".to_owned(),
        other => other.to_owned(),
    }
}

/// The known key an unknown one probably meant: the same but for case, else the closest by edit
/// distance (at most 2, or a third of its length).
fn suggest(unknown: &str, known: &[&str]) -> Option<String> {
    if let Some(same) = known.iter().find(|k| k.eq_ignore_ascii_case(unknown)) {
        return Some((*same).to_owned());
    }
    let limit = (unknown.chars().count() / 3).max(2);
    known
        .iter()
        .map(|k| {
            (
                edit_distance(&unknown.to_ascii_lowercase(), &k.to_ascii_lowercase()),
                *k,
            )
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.to_owned())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}
