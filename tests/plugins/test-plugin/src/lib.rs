//! Test-only plugin for the e2e tests (`tests/tests/plugins.rs`): implements every hook and
//! misbehaves as its `config` says.
//!
//! ```json
//! {"connection": "X", "claims": {"k": "v"}, "panic": ["map_connection"], "fail": ["custom_claims"],
//!  "sleepMs": {"custom_claims": 500}, "eventsFile": "/tmp/events.jsonl"}
//! ```
//!
//! - `connection`: `map_connection`'s answer (`null` when absent);
//! - `claims`: `custom_claims`' answer;
//! - `panic` / `fail`: the hooks that panic / return an error;
//! - `sleepMs`: per hook, how long it sleeps before answering;
//! - `eventsFile`: where `on_tokens` and `on_job_finished` append their event as a JSON line.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;

use auth0_client_plugin_api::{
    Claims, CustomClaimsInput, CustomClaimsOutput, JobFinishedEvent, MapConnectionInput,
    MapConnectionOutput, Plugin, PluginError, TokensEvent,
};
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    #[serde(default)]
    connection: Option<String>,
    #[serde(default)]
    claims: Claims,
    #[serde(default)]
    panic: Vec<String>,
    #[serde(default)]
    fail: Vec<String>,
    #[serde(default)]
    sleep_ms: HashMap<String, u64>,
    #[serde(default)]
    events_file: Option<PathBuf>,
}

pub struct TestPlugin {
    config: Config,
}

impl TestPlugin {
    fn behave(&self, hook: &str) -> Result<(), PluginError> {
        if let Some(ms) = self.config.sleep_ms.get(hook) {
            std::thread::sleep(std::time::Duration::from_millis(*ms));
        }
        if self.config.panic.iter().any(|h| h == hook) {
            panic!("test-plugin was told to panic in {hook}");
        }
        if self.config.fail.iter().any(|h| h == hook) {
            return Err(format!("test-plugin was told to fail in {hook}").into());
        }
        Ok(())
    }

    fn record(&self, line: serde_json::Value) -> Result<(), PluginError> {
        if let Some(path) = &self.config.events_file {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            let mut bytes = serde_json::to_vec(&line)?;
            bytes.push(b'\n');
            file.write_all(&bytes)?;
        }
        Ok(())
    }
}

impl Plugin for TestPlugin {
    type Config = Config;

    fn new(config: Config) -> Result<Self, PluginError> {
        Ok(Self { config })
    }

    fn map_connection(&self, _: MapConnectionInput) -> Result<MapConnectionOutput, PluginError> {
        self.behave("map_connection")?;
        Ok(MapConnectionOutput {
            connection: self.config.connection.clone(),
        })
    }

    fn custom_claims(&self, _: CustomClaimsInput) -> Result<CustomClaimsOutput, PluginError> {
        self.behave("custom_claims")?;
        Ok(CustomClaimsOutput {
            claims: self.config.claims.clone(),
        })
    }

    fn on_tokens(&self, event: TokensEvent) -> Result<(), PluginError> {
        self.behave("on_tokens")?;
        self.record(serde_json::to_value(&event)?)
    }

    fn on_job_finished(&self, event: JobFinishedEvent) -> Result<(), PluginError> {
        self.behave("on_job_finished")?;
        self.record(serde_json::to_value(&event)?)
    }
}

auth0_client_plugin_api::export_plugin!(
    TestPlugin,
    hooks: [map_connection, custom_claims, on_tokens, on_job_finished]
);
