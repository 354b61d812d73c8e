//! Unit-testing a plugin through its C boundary without building a `.so`: [`InProcess`] takes the
//! entry static [`crate::export_plugin!`] generated and calls its exported functions exactly as
//! the daemon's loader does (ABI check, `init` with the config JSON, hooks with JSON bytes,
//! buffers handed back to the plugin to free), so a test also proves the export, the payload
//! encoding and the panic catching.
//!
//! ```ignore
//! #[test]
//! fn maps_partners() {
//!     let plugin = InProcess::new(&crate::AUTH0_CLIENT_PLUGIN, json!({"domains": {"p.example": "P"}})).unwrap();
//!     let out = plugin.map_connection(&input).unwrap();
//! }
//! ```

use serde_json::Value;

use crate::ffi::PluginEntry;
use crate::host::{CallError, Entry, EntryError, Hook, Instance};
use crate::payload::{
    CustomClaimsInput, CustomClaimsOutput, JobFinishedEvent, MapConnectionInput,
    MapConnectionOutput, TokensEvent,
};

/// Why [`InProcess::new`] failed.
#[derive(Debug, PartialEq, Eq)]
pub enum InProcessError {
    Entry(EntryError),
    Init(CallError),
}

impl std::fmt::Display for InProcessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InProcessError::Entry(e) => write!(f, "entry refused: {e}"),
            InProcessError::Init(e) => write!(f, "init failed: {e}"),
        }
    }
}

impl std::error::Error for InProcessError {}

/// One instance of a plugin linked into the test binary, called through its C functions.
#[derive(Debug)]
pub struct InProcess {
    instance: Instance,
}

impl InProcess {
    /// Checks `entry` like the loader does and builds an instance from `config`.
    pub fn new(entry: &'static PluginEntry, config: Value) -> Result<Self, InProcessError> {
        let entry = Entry::from_static(entry).map_err(InProcessError::Entry)?;
        let config = serde_json::to_vec(&config)
            .map_err(|e| InProcessError::Init(CallError::Error(e.to_string())))?;
        let instance = entry.instantiate(&config).map_err(InProcessError::Init)?;
        Ok(Self { instance })
    }

    /// The checked entry: name, version, hooks.
    pub fn entry(&self) -> &Entry {
        self.instance.entry()
    }

    pub fn map_connection(
        &self,
        input: &MapConnectionInput,
    ) -> Result<MapConnectionOutput, CallError> {
        self.instance.call(Hook::MapConnection, input)
    }

    pub fn custom_claims(
        &self,
        input: &CustomClaimsInput,
    ) -> Result<CustomClaimsOutput, CallError> {
        self.instance.call(Hook::CustomClaims, input)
    }

    pub fn on_tokens(&self, event: &TokensEvent) -> Result<(), CallError> {
        self.instance
            .call::<_, Value>(Hook::OnTokens, event)
            .map(drop)
    }

    pub fn on_job_finished(&self, event: &JobFinishedEvent) -> Result<(), CallError> {
        self.instance
            .call::<_, Value>(Hook::OnJobFinished, event)
            .map(drop)
    }

    /// A hook called with raw bytes (to test what a plugin does with input it cannot parse).
    pub fn call_raw(&self, hook: Hook, input: &[u8]) -> Result<Vec<u8>, CallError> {
        self.instance.call_raw(hook, input)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde::Deserialize;
    use serde_json::json;

    use super::*;
    use crate::payload::{LoginFlow, TokensKind};
    use crate::{Plugin, PluginError};

    #[derive(Deserialize)]
    struct Config {
        connection: Option<String>,
    }

    struct Probe {
        connection: Option<String>,
    }

    impl Plugin for Probe {
        type Config = Config;
        fn new(config: Config) -> Result<Self, PluginError> {
            if config.connection.as_deref() == Some("") {
                return Err("connection must not be empty".into());
            }
            Ok(Self {
                connection: config.connection,
            })
        }
        fn map_connection(
            &self,
            input: MapConnectionInput,
        ) -> Result<MapConnectionOutput, PluginError> {
            match input.username.as_deref() {
                Some("panic") => panic!("asked to panic"),
                Some("fail") => Err("asked to fail".into()),
                _ => Ok(MapConnectionOutput {
                    connection: self.connection.clone(),
                }),
            }
        }
        fn custom_claims(
            &self,
            input: CustomClaimsInput,
        ) -> Result<CustomClaimsOutput, PluginError> {
            let mut claims = crate::Claims::new();
            claims.insert("seen".into(), json!(input.claims.len()));
            Ok(CustomClaimsOutput { claims })
        }
    }

    crate::export_plugin!(Probe, hooks: [map_connection, custom_claims]);

    fn ask(username: Option<&str>) -> MapConnectionInput {
        MapConnectionInput {
            client: "web".into(),
            flow: LoginFlow::Password,
            username: username.map(str::to_owned),
            supported_connections: vec![],
            default_connection: None,
        }
    }

    #[test]
    fn the_entry_declares_the_abi_its_hooks_and_the_package() {
        let plugin = InProcess::new(&AUTH0_CLIENT_PLUGIN, json!({"connection": "A"})).unwrap();
        let entry = plugin.entry();
        assert_eq!(entry.abi_version(), crate::ABI_VERSION);
        assert_eq!(entry.hooks(), vec![Hook::MapConnection, Hook::CustomClaims]);
        assert!(!entry.implements(Hook::OnTokens));
        assert_eq!(entry.name(), "auth0-client-plugin-api");
        assert_eq!(entry.version(), env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn hooks_answer_through_the_c_boundary() {
        let plugin = InProcess::new(&AUTH0_CLIENT_PLUGIN, json!({"connection": "A"})).unwrap();
        assert_eq!(
            plugin.map_connection(&ask(Some("x"))).unwrap().connection,
            Some("A".into())
        );
        let out = plugin
            .custom_claims(&CustomClaimsInput {
                client: "web".into(),
                sub: "s".into(),
                claims: json!({"a": 1, "b": 2}).as_object().unwrap().clone(),
            })
            .unwrap();
        assert_eq!(out.claims["seen"], 2);
        // A hook not declared is not called, whatever the trait's default body would do.
        let event = TokensEvent {
            client: "web".into(),
            sub: "s".into(),
            claims: crate::Claims::new(),
            kind: TokensKind::Login,
        };
        assert!(plugin.on_tokens(&event).is_err());
    }

    #[test]
    fn a_panic_is_caught_and_reported_and_the_plugin_keeps_answering() {
        let plugin = InProcess::new(&AUTH0_CLIENT_PLUGIN, json!({"connection": "A"})).unwrap();
        assert_eq!(
            plugin.map_connection(&ask(Some("panic"))),
            Err(CallError::Panic("asked to panic".into()))
        );
        assert_eq!(
            plugin.map_connection(&ask(Some("fail"))),
            Err(CallError::Error("asked to fail".into()))
        );
        assert!(plugin.map_connection(&ask(None)).is_ok());
    }

    #[test]
    fn bad_config_and_bad_input_are_errors_with_a_message() {
        let err = InProcess::new(&AUTH0_CLIENT_PLUGIN, json!({"connection": 5})).unwrap_err();
        assert!(err.to_string().contains("invalid config"), "{err}");
        let err = InProcess::new(&AUTH0_CLIENT_PLUGIN, json!({"connection": ""})).unwrap_err();
        assert_eq!(
            err,
            InProcessError::Init(CallError::Error("connection must not be empty".into()))
        );
        let plugin = InProcess::new(&AUTH0_CLIENT_PLUGIN, json!({})).unwrap();
        let err = plugin
            .call_raw(Hook::MapConnection, b"not json")
            .unwrap_err();
        assert!(matches!(err, CallError::Error(m) if m.starts_with("invalid input")));
    }

    static FOREIGN: crate::ffi::PluginEntry = crate::ffi::PluginEntry {
        abi_version: 99,
        ..crate::ffi::PluginEntry::new::<Probe>(0, "foreign", "0")
    };

    #[test]
    fn a_foreign_abi_version_is_refused_before_anything_else() {
        let err = InProcess::new(&FOREIGN, json!({})).unwrap_err();
        assert_eq!(
            err,
            InProcessError::Entry(EntryError::AbiVersion { found: 99 })
        );
        assert!(err.to_string().contains("ABI version 99"), "{err}");
    }

    static HOLLOW: crate::ffi::PluginEntry = crate::ffi::PluginEntry {
        custom_claims: None,
        ..crate::ffi::PluginEntry::new::<Probe>(crate::ffi::HOOK_CUSTOM_CLAIMS, "hollow", "0")
    };

    #[test]
    fn a_declared_hook_without_its_function_is_refused() {
        let err = InProcess::new(&HOLLOW, json!({})).unwrap_err();
        assert_eq!(
            err,
            InProcessError::Entry(EntryError::MissingFunction("custom_claims"))
        );
    }

    #[test]
    fn an_undeclared_hook_is_not_called() {
        let plugin = InProcess::new(&AUTH0_CLIENT_PLUGIN, json!({})).unwrap();
        let err = plugin.call_raw(Hook::OnTokens, b"{}").unwrap_err();
        assert_eq!(
            err,
            CallError::Error("the plugin does not implement on_tokens".into())
        );
    }

    #[test]
    fn two_instances_of_one_library_keep_their_own_config() {
        let a = InProcess::new(&AUTH0_CLIENT_PLUGIN, json!({"connection": "A"})).unwrap();
        let b = InProcess::new(&AUTH0_CLIENT_PLUGIN, json!({"connection": "B"})).unwrap();
        assert_eq!(
            a.map_connection(&ask(None)).unwrap().connection,
            Some("A".into())
        );
        assert_eq!(
            b.map_connection(&ask(None)).unwrap().connection,
            Some("B".into())
        );
    }
}
