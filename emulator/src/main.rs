//! `auth0-emulator [--port N] [--seed FILE]`: a local Auth0 tenant (SPEC §10).

use std::{io::Write as _, path::PathBuf, process::ExitCode};

use auth0_emulator::{Emulator, Seed};
use clap::Parser;

/// A local Auth0 tenant: Authentication API, Management API v2, import jobs and a control API under
/// /__emulator/. The first stdout line is `listening on http://127.0.0.1:PORT`.
#[derive(Debug, Parser)]
#[command(name = "auth0-emulator", version)]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8089)]
    port: u16,
    /// Seed file (SPEC §10 JSON); without one, a demo tenant (see the README).
    #[arg(long)]
    seed: Option<PathBuf>,
    /// HTTP worker threads (default: the available parallelism, at most 4).
    #[arg(long)]
    workers: Option<usize>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let seed = match &args.seed {
        Some(path) => match Seed::from_file(path) {
            Ok(seed) => seed,
            Err(error) => {
                eprintln!("auth0-emulator: {error}");
                return ExitCode::FAILURE;
            }
        },
        None => Seed::demo(),
    };
    let mut emulator = Emulator::builder(seed).port(args.port).handle_signals(true);
    if let Some(workers) = args.workers {
        emulator = emulator.workers(workers);
    }
    let handle = match emulator.start() {
        Ok(handle) => handle,
        Err(error) => {
            eprintln!(
                "auth0-emulator: cannot listen on 127.0.0.1:{}: {error}",
                args.port
            );
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    // A closed stdout must not stop the tenant: the line is for whoever reads it.
    let _ = writeln!(stdout, "listening on {}", handle.base_url());
    let _ = stdout.flush();
    drop(stdout);
    handle.wait();
    ExitCode::SUCCESS
}
