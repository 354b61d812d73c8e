//! Writes the man pages and the shell completions of `auth0-client` from its clap definitions
//! (`src/cli/args.rs`, included here as is) to a fixed path beside the binary:
//! `target/<profile>/auth0-client-assets/{man/*.1, completions/*}`, where the Debian package's
//! assets (`[package.metadata.deb]`) take them. Outside `OUT_DIR` on purpose: a packager needs a
//! path that does not change with the build's hash.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

#[allow(dead_code)]
mod args {
    include!("src/cli/args.rs");
}

fn main() -> std::io::Result<()> {
    println!("cargo:rerun-if-changed=src/cli/args.rs");
    println!("cargo:rerun-if-changed=build.rs");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // OUT_DIR is target/<profile>/build/auth0-client-<hash>/out.
    let profile_dir = out_dir.ancestors().nth(3).unwrap_or(&out_dir);
    let assets = profile_dir.join("auth0-client-assets");
    let man = assets.join("man");
    let completions = assets.join("completions");
    // Pages of subcommands since removed must not linger.
    if man.exists() {
        std::fs::remove_dir_all(&man)?;
    }
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;

    let mut command = args::Cli::command();
    command.build();
    // auth0-client.1, and auth0-client-<subcommand>.1 for each subcommand (none for `help`).
    clap_mangen::generate_to(args::Cli::command().disable_help_subcommand(true), &man)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut command, "auth0-client", &completions)?;
    }
    // Deleting the folder runs this script again.
    println!(
        "cargo:rerun-if-changed={}",
        Path::new(&man).join("auth0-client.1").display()
    );
    Ok(())
}
