// The command line's definitions, alone in this file so that build.rs includes it too and writes
// the man page and the shell completions from them (no `//!`: `include!` refuses inner doc).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "auth0-client",
    version,
    about = "Fronts an Auth0 tenant: logins, sessions, /userinfo, user management"
)]
pub struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    /// Config file (.json, .toml, .yaml); default: $SERVICE_CONFIG_PATH/$SERVICE_CONFIG_FILE_NAME.json,
    /// else config/auth0-client.json.
    #[arg(long, global = true)]
    pub(crate) config: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Run the daemon (the default command).
    Serve,
    /// Run the daemon on 127.0.0.1 against an embedded Auth0 emulator; prints curl lines to try it.
    #[cfg(feature = "demo")]
    Demo {
        #[arg(long, default_value_t = 8080)]
        port: u16,
    },
    /// Load and validate the config as `serve` would; print the effective config, secrets redacted.
    CheckConfig,
    /// Load one plugin library; print its name, version, ABI version and hooks.
    PluginInfo {
        /// The plugin's shared library (`lib<name>.so`).
        path: PathBuf,
    },
    /// Send a users file to a running daemon's POST /users/import (the API key from
    /// $AUTH0_CLIENT_API_KEY). Exit 0 all imported, 1 some users failed, 2 the daemon or Auth0
    /// could not be reached.
    Import {
        /// A JSON array of users, as Auth0's users files.
        file: PathBuf,
        /// A key of managementClient.supportedConnectionsMap (default: the daemon's default).
        #[arg(long)]
        connection: Option<String>,
        /// The daemon (default: server.managementBind, else http://127.0.0.1:$HTTP_PORT, plus
        /// $SERVICE_PREFIX).
        #[arg(long)]
        url: Option<String>,
        /// Allow a `--url` of plain `http://` to a host other than loopback (the API key then
        /// crosses the network in clear).
        #[arg(long)]
        insecure: bool,
        /// Follow the job or batch to its end, then print the summary and the first errors.
        #[arg(long)]
        wait: bool,
    },
    /// Recent import jobs and batches of a running daemon, as a table.
    Jobs {
        /// The daemon (default as for `import`).
        #[arg(long)]
        url: Option<String>,
        /// As for `import`.
        #[arg(long)]
        insecure: bool,
    },
}
