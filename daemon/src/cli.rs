//! The command line (SPEC §2): `serve` (default), `demo`, `check-config`. `demo` exists only in
//! builds with the default `demo` feature, which links the emulator. The definitions live in
//! `cli/args.rs`, which build.rs also compiles to write the man page and the shell completions.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

mod args;
pub use args::Cli;
use args::Command;

use crate::app::{Application, StopError};
use crate::config::{Env, Settings};
use crate::import_client;

/// Parses the command line and runs the command; the process exits with the returned code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = Env::from_process();
    match cli.command.unwrap_or(Command::Serve) {
        Command::CheckConfig => check_config(cli.config, &env),
        Command::PluginInfo { path } => plugin_info(&path),
        Command::Import {
            file,
            connection,
            url,
            insecure,
            wait,
        } => {
            if let Err(code) = import_client::check_given_url(url.as_deref(), insecure, "import") {
                return code;
            }
            let url =
                url.unwrap_or_else(|| import_client::default_url(cli.config.as_deref(), &env));
            import_client::import(&file, connection.as_deref(), &url, wait, &env)
        }
        Command::Jobs { url, insecure } => {
            if let Err(code) = import_client::check_given_url(url.as_deref(), insecure, "jobs") {
                return code;
            }
            let url =
                url.unwrap_or_else(|| import_client::default_url(cli.config.as_deref(), &env));
            import_client::jobs(&url, &env)
        }
        Command::Serve => {
            let log_writer = init_logging(&env);
            match Settings::load(cli.config.as_deref(), &env) {
                Ok(settings) => serve(settings, log_writer, |_| {}),
                Err(err) => {
                    tracing::error!("invalid configuration: {err}");
                    drop(log_writer);
                    eprintln!("auth0-client: {err}");
                    ExitCode::FAILURE
                }
            }
        }
        #[cfg(feature = "demo")]
        Command::Demo { port } => {
            let log_writer = init_logging(&env);
            match crate::demo::start(port, &env) {
                Ok(demo) => {
                    let emulator = demo.emulator.base_url().to_owned();
                    serve(demo.settings.clone(), log_writer, |port| {
                        print!("{}", crate::demo::curl_lines(port, &emulator));
                    })
                }
                Err(err) => {
                    drop(log_writer);
                    eprintln!("auth0-client demo: {err}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// `plugin-info PATH`: the library opened and its entry checked, not initialised (no config).
fn plugin_info(path: &std::path::Path) -> ExitCode {
    match crate::plugin_host::inspect(path) {
        Ok(entry) => {
            let hooks: Vec<&str> = entry.hooks().iter().map(|h| h.name()).collect();
            println!("name: {}", entry.name());
            println!("version: {}", entry.version());
            println!("abi: {}", entry.abi_version());
            println!("hooks: {}", hooks.join(", "));
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("auth0-client: cannot load plugin {}: {err}", path.display());
            ExitCode::FAILURE
        }
    }
}

fn check_config(path: Option<PathBuf>, env: &Env) -> ExitCode {
    match Settings::load(path.as_deref(), env) {
        Ok(settings) => {
            // Plugins are loaded (and initialised with their config) as `serve` would.
            match crate::plugin_host::load_all(&settings.plugins) {
                Ok(plugins) => {
                    for plugin in plugins {
                        let entry = plugin.instance.entry();
                        let hooks: Vec<&str> = entry.hooks().iter().map(|h| h.name()).collect();
                        eprintln!(
                            "plugin {} {} loaded from {} (hooks: {})",
                            plugin.label,
                            entry.version(),
                            plugin.settings.path.display(),
                            hooks.join(", ")
                        );
                    }
                }
                Err(err) => {
                    eprintln!("auth0-client: invalid configuration: {err}");
                    return ExitCode::FAILURE;
                }
            }
            eprintln!(
                "trusted proxies: {} ({})",
                list_or_none(&settings.server.trusted_proxies),
                settings.server.trusted_proxies_source.reason()
            );
            for warning in &settings.warnings {
                eprintln!("warning: {warning}");
            }
            match serde_json::to_string_pretty(&settings.redacted_json()) {
                Ok(text) => println!("{text}"),
                Err(err) => {
                    eprintln!("auth0-client: cannot print the config: {err}");
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("auth0-client: invalid configuration: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Logging from the start, before the config is loaded: `LOG_LEVEL` and `LOG_FORMAT` decide the
/// lines written until then (the config's warnings, its error).
fn init_logging(env: &Env) -> Option<crate::telemetry::QueueGuard> {
    let (level, format) = env.logging();
    crate::telemetry::init(&level, format)
}

fn list_or_none(nets: &[ipnet::IpNet]) -> String {
    if nets.is_empty() {
        return "none".to_owned();
    }
    nets.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs the daemon until it stops; `on_listening` gets the main port once the listeners are bound.
fn serve(
    settings: Settings,
    log_writer: Option<crate::telemetry::QueueGuard>,
    on_listening: impl FnOnce(u16),
) -> ExitCode {
    crate::telemetry::set_format(settings.server.log_format);
    crate::memory::spawn_trimmer();
    tracing::info!(
        trusted_proxies = %list_or_none(&settings.server.trusted_proxies),
        reason = settings.server.trusted_proxies_source.reason(),
        "forwarding headers are believed from these proxies"
    );
    // Kept until the end: dropping the system drops the store, which must not happen when the
    // store is stuck (see below).
    let system = actix_web::rt::System::new();
    let result = system.block_on(async move {
        let app = Application::build(settings)?;
        on_listening(app.port());
        app.run_until_stopped().await?;
        Ok::<(), Box<dyn std::error::Error>>(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "the daemon stopped on an error");
            eprintln!("auth0-client: {err}");
            if err
                .downcast_ref::<StopError>()
                .is_some_and(|e| matches!(e, StopError::StoreStuck(_)))
            {
                // Exit now, without destructors: dropping a stuck sled store flushes, which would
                // hang. What was acknowledged is on disk already (writes wait for their flush).
                drop(log_writer);
                std::process::exit(1);
            }
            ExitCode::FAILURE
        }
    }
}
