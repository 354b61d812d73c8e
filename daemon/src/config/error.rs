//! `ConfigError`: why the configuration cannot be used, in a sentence an operator can act on.

use std::path::PathBuf;

/// Why the configuration was refused. Every message names the offending key (dotted path, as in
/// the file: `clients.web.defaultConnection`, list entries by index: `plugins.0.path`) or the
/// environment variable, and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "the config file {} ({origin}) does not exist; pass --config PATH, or set both \
         SERVICE_CONFIG_PATH and SERVICE_CONFIG_FILE_NAME to load $SERVICE_CONFIG_PATH/$SERVICE_CONFIG_FILE_NAME.json",
        path.display()
    )]
    NotFound { path: PathBuf, origin: &'static str },

    #[error(
        "{set} is set but {unset} is not: set both (the file read is \
         $SERVICE_CONFIG_PATH/$SERVICE_CONFIG_FILE_NAME.json) or neither (then config/auth0-client.json is read)"
    )]
    IncompleteLocation {
        set: &'static str,
        unset: &'static str,
    },

    #[error("cannot read the config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "cannot tell the format of the config file {}: its name must end in .json, .toml, .yaml or .yml",
        path.display()
    )]
    UnknownFormat { path: PathBuf },

    #[error("the config file {} is not valid {format}: {detail}", path.display())]
    Parse {
        path: PathBuf,
        format: &'static str,
        /// The parser's message, with the line and column.
        detail: String,
    },

    #[error("the configuration must be an object of keys at the top level, found {found}")]
    NotAnObject { found: &'static str },

    #[error(
        "the config file is still a template: fill {} (each value starting with `{}`); the file's comments say what goes there",
        keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "),
        super::PLACEHOLDER
    )]
    Placeholders { keys: Vec<String> },

    #[error(
        "unknown key `{key}`{}{}; remove it or correct its name (keys are case-sensitive)",
        origin_note(origin),
        hint_note(hint)
    )]
    UnknownKey {
        key: String,
        origin: Option<String>,
        /// A known key the operator probably meant.
        hint: Option<String>,
    },

    #[error(
        "missing required key `{key}`{}; add it to the config file",
        origin_note(origin)
    )]
    MissingKey { key: String, origin: Option<String> },

    #[error("invalid value for `{key}`{}: {reason}", origin_note(origin))]
    Invalid {
        key: String,
        origin: Option<String>,
        reason: String,
    },

    #[error(
        "`{key}` refers to the environment variable {var}, which is not set; set it (an empty value is \
         allowed), or write `$${{` or `{{{{{{{{` for a literal `${{` or `{{{{`"
    )]
    UnsetVariable { key: String, var: String },

    #[error("cannot interpolate `{key}`: {reason}")]
    Interpolation { key: String, reason: String },

    #[error("the environment variable {var} is invalid: {reason}")]
    InvalidEnv { var: &'static str, reason: String },

    #[error("the environment variable {var} cannot be applied: {reason}")]
    Override { var: String, reason: String },

    #[error(
        "{} set, but the MongoDB user sync of auth0-client 3.x is not supported; unset {} and, to copy user \
         data on every login and refresh, load a plugin implementing the `on_tokens` hook (see `plugins` in the README)",
        vars.join(", "),
        if vars.len() == 1 { "it" } else { "them" }
    )]
    MongoSyncUnsupported { vars: Vec<&'static str> },
}

impl ConfigError {
    /// The config key (dotted path) or environment variable the error is about, if any: what
    /// `check-config` names.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::UnknownKey { key, .. }
            | Self::MissingKey { key, .. }
            | Self::Invalid { key, .. }
            | Self::UnsetVariable { key, .. }
            | Self::Interpolation { key, .. } => Some(key),
            Self::InvalidEnv { var, .. } => Some(var),
            Self::Override { var, .. } => Some(var),
            Self::IncompleteLocation { set, .. } => Some(set),
            Self::Placeholders { keys } => keys.first().map(String::as_str),
            _ => None,
        }
    }
}

fn origin_note(origin: &Option<String>) -> String {
    origin
        .as_deref()
        .map(|o| format!(" ({o})"))
        .unwrap_or_default()
}

fn hint_note(hint: &Option<String>) -> String {
    hint.as_deref()
        .map(|h| format!(" (did you mean `{h}`?)"))
        .unwrap_or_default()
}
