//! auth0-client: a daemon that fronts an Auth0 tenant: logins, server-side sessions, `/userinfo`,
//! and a guarded part of the Auth0 Management API.

pub mod actors;
pub mod app;
pub mod auth0;
pub mod cli;
pub mod clock;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod echo;
pub mod health;
pub mod http;
pub mod import_client;
pub mod login;
pub mod memory;
pub mod pending;
pub mod plugin_host;
pub mod store;
pub mod telemetry;

pub use app::Application;
