//! The `auth0-client` binary: everything lives in the library, so the tests run the same code.

fn main() -> std::process::ExitCode {
    auth0_client::cli::main()
}
