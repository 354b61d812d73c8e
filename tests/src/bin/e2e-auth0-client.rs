//! The daemon's command line, built inside the test package so the tests can spawn the real
//! binary (SIGTERM, `kill -9`, `check-config`) without a second `cargo build`.

fn main() -> std::process::ExitCode {
    auth0_client::cli::main()
}
