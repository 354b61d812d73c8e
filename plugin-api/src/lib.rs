//! The plugin ABI of auth0-client (SPEC §9): what a plugin implements, how it is exported, and
//! how the daemon calls it.
//!
//! A plugin is a `cdylib` crate that implements the safe [`Plugin`] trait and calls
//! [`export_plugin!`] once:
//!
//! ```
//! use auth0_client_plugin_api::{MapConnectionInput, MapConnectionOutput, Plugin, PluginError};
//!
//! pub struct EveryoneToPartners;
//!
//! impl Plugin for EveryoneToPartners {
//!     type Config = serde_json::Value;
//!     fn new(_config: serde_json::Value) -> Result<Self, PluginError> {
//!         Ok(Self)
//!     }
//!     fn map_connection(&self, _: MapConnectionInput) -> Result<MapConnectionOutput, PluginError> {
//!         Ok(MapConnectionOutput { connection: Some("Partners".into()) })
//!     }
//! }
//!
//! auth0_client_plugin_api::export_plugin!(EveryoneToPartners, hooks: [map_connection]);
//! ```
//!
//! | module | holds |
//! |---|---|
//! | [`payload`] | the hooks' JSON payloads (serde types, tolerant of unknown fields) |
//! | [`ffi`] | the `#[repr(C)]` entry symbol and the plugin-side shims (the only `unsafe` here, with [`host`]) |
//! | [`host`] | the calling side: entry checks, instances, calls (used by the daemon's loader) |
//! | [`testing`] | [`testing::InProcess`]: drives a plugin's exported C functions in-process, for unit tests |

pub mod ffi;
pub mod host;
pub mod payload;
pub mod testing;

pub use ffi::{ABI_VERSION, PluginEntry};
pub use payload::{
    Claims, CustomClaimsInput, CustomClaimsOutput, JobFinishedEvent, LoginFlow, MapConnectionInput,
    MapConnectionOutput, TokensEvent, TokensKind,
};

/// A plugin's failure: a message the daemon logs (so never a secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginError(String);

impl PluginError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl std::fmt::Display for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PluginError {}

impl From<String> for PluginError {
    fn from(message: String) -> Self {
        Self(message)
    }
}

impl From<&str> for PluginError {
    fn from(message: &str) -> Self {
        Self(message.to_owned())
    }
}

impl From<std::io::Error> for PluginError {
    fn from(err: std::io::Error) -> Self {
        Self(err.to_string())
    }
}

impl From<serde_json::Error> for PluginError {
    fn from(err: serde_json::Error) -> Self {
        Self(err.to_string())
    }
}

/// What a plugin implements. The daemon calls only the hooks listed in [`export_plugin!`]; the
/// others keep their default bodies. Calls come from several threads at once (hence `Sync`), each
/// bounded by the plugin's `timeoutMs`: a hook should answer in milliseconds.
pub trait Plugin: Send + Sync + Sized + 'static {
    /// The plugin's `config` from the daemon's config (`{}` when not set), parsed with serde.
    type Config: serde::de::DeserializeOwned;

    /// Builds the plugin at the daemon's start; an error stops the start with its message.
    fn new(config: Self::Config) -> Result<Self, PluginError>;

    /// Picks the login's connection when the request names none; `None` lets the next plugin,
    /// then the client's `defaultConnection`, decide.
    fn map_connection(
        &self,
        input: MapConnectionInput,
    ) -> Result<MapConnectionOutput, PluginError> {
        let _ = input;
        Ok(MapConnectionOutput::default())
    }

    /// Claims to merge into the `/userinfo` body.
    fn custom_claims(&self, input: CustomClaimsInput) -> Result<CustomClaimsOutput, PluginError> {
        let _ = input;
        Ok(CustomClaimsOutput::default())
    }

    /// A session was opened (login) or got new tokens (refresh).
    fn on_tokens(&self, event: TokensEvent) -> Result<(), PluginError> {
        let _ = event;
        Ok(())
    }

    /// An import job finished.
    fn on_job_finished(&self, event: JobFinishedEvent) -> Result<(), PluginError> {
        let _ = event;
        Ok(())
    }
}

/// Exports `$plugin` as the library's entry symbol `AUTH0_CLIENT_PLUGIN`, declaring the hooks it
/// implements (any of `map_connection`, `custom_claims`, `on_tokens`, `on_job_finished`). The
/// plugin's name and version are its package's. Every exported function catches panics.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty, hooks: [$($hook:ident),* $(,)?]) => {
        #[cfg(panic = "abort")]
        compile_error!(
            "auth0-client plugins must be built with panic = \"unwind\": the daemon's safety net \
             against a panicking plugin is catch_unwind"
        );

        /// The entry symbol auth0-client loads (see `auth0_client_plugin_api::ffi`).
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub static AUTH0_CLIENT_PLUGIN: $crate::ffi::PluginEntry =
            $crate::ffi::PluginEntry::new::<$plugin>(
                0 $(| $crate::__hook_bit!($hook))*,
                env!("CARGO_PKG_NAME"),
                env!("CARGO_PKG_VERSION"),
            );
    };
}

/// The `HOOK_*` bit of a hook's name (used by [`export_plugin!`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __hook_bit {
    (map_connection) => {
        $crate::ffi::HOOK_MAP_CONNECTION
    };
    (custom_claims) => {
        $crate::ffi::HOOK_CUSTOM_CLAIMS
    };
    (on_tokens) => {
        $crate::ffi::HOOK_ON_TOKENS
    };
    (on_job_finished) => {
        $crate::ffi::HOOK_ON_JOB_FINISHED
    };
}
