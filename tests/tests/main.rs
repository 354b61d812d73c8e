//! End-to-end tests: the real daemon over HTTP (DESIGN.md, Tests). One binary, one module per area.
#![allow(clippy::unwrap_used)]

/// The daemon's binary, built by cargo for this test package (see `src/bin/e2e-auth0-client.rs`).
pub const DAEMON: &str = env!("CARGO_BIN_EXE_e2e-auth0-client");

pub mod chromedriver;
pub mod netns;
pub mod testkit;

mod authorize;
mod backchannel;
mod bad_input;
mod browser;
mod errors;
mod gateway;
mod hostile_management;
mod import;
mod import_bounds;
mod import_load;
mod login_state;
mod ownership;
mod plugins;
mod process;
mod proxies;
mod redis_cluster;
mod redis_store;
mod sealing;
mod security;
mod sessions;
mod soak;
mod status;
mod users;
mod users_load;
