//! Loading plugins (SPEC §9): each `plugins[]` entry's library is read, checked against its
//! `sha256` when one is given, opened with `libloading`, and its entry symbol checked (ABI
//! version first, then the entry's size and hooks) before its `init` gets the entry's `config`.
//! Any failure stops the start with a [`LoadError`] naming the entry and the reason.
//!
//! - **Never unloaded.** A library's code may still run on a thread whose call timed out, and the
//!   instances point into it, so every loaded `Library` is leaked for the life of the process.
//! - **Pinned by hash.** With `sha256`, the file is opened once, hashed from that descriptor, and
//!   the library opened through `/proc/self/fd/N`: the bytes checked are the bytes loaded, even if
//!   the path is replaced in between.
//! - **Loading runs the library's code** (its initialisers): only load files an operator
//!   controls, writable by root alone.
//!
//! With plugin-api's `ffi` and `host` modules and `export_plugin!`'s expansion, the only place
//! `unsafe` is allowed (each block says why it holds).
#![allow(unsafe_code)]

use std::io::Read as _;
use std::path::{Path, PathBuf};

use auth0_client_plugin_api::PluginEntry;
use auth0_client_plugin_api::ffi::ENTRY_SYMBOL;
use auth0_client_plugin_api::host::{CallError, Entry, EntryError, Instance};
use sha2::{Digest as _, Sha256};

use crate::config::PluginSettings;

/// Why a library cannot be used as a plugin.
#[derive(Debug, thiserror::Error)]
pub enum LoadFailure {
    #[error("cannot read it: {0}")]
    Read(std::io::Error),
    #[error("its SHA-256 is {found}, the config pins {expected}")]
    HashMismatch { expected: String, found: String },
    #[error("it is not a loadable shared library: {0}")]
    Open(String),
    #[error("it exports no `AUTH0_CLIENT_PLUGIN` entry symbol (not an auth0-client plugin): {0}")]
    MissingSymbol(String),
    #[error("{0}")]
    Entry(#[from] EntryError),
    #[error("its init refused the config: {0}")]
    Init(CallError),
}

/// A plugin that stops the start: which entry, which file, and why.
#[derive(Debug, thiserror::Error)]
#[error("cannot load plugin `plugins.{index}` ({}): {reason}", .path.display())]
pub struct LoadError {
    pub index: usize,
    pub path: PathBuf,
    #[source]
    pub reason: LoadFailure,
}

/// A loaded, initialised plugin.
#[derive(Clone, Debug)]
pub struct LoadedPlugin {
    /// The name metrics and logs use: the plugin's declared name, with `#N` (its position in
    /// `plugins`) added when two entries load the same name.
    pub label: String,
    pub settings: PluginSettings,
    pub instance: Instance,
}

/// Loads every `plugins` entry in config order; the first failure stops.
pub fn load_all(plugins: &[PluginSettings]) -> Result<Vec<LoadedPlugin>, LoadError> {
    let mut loaded: Vec<LoadedPlugin> = Vec::with_capacity(plugins.len());
    for (index, settings) in plugins.iter().enumerate() {
        let fail = |reason| LoadError {
            index,
            path: settings.path.clone(),
            reason,
        };
        let entry = open(&settings.path, settings.sha256.as_deref()).map_err(fail)?;
        let config = serde_json::to_vec(&settings.config).unwrap_or_else(|_| b"{}".to_vec());
        let instance = entry
            .instantiate(&config)
            .map_err(|e| fail(LoadFailure::Init(e)))?;
        let name = entry.name();
        let label = if loaded.iter().any(|p| p.instance.entry().name() == name) {
            format!("{name}#{index}")
        } else {
            name
        };
        tracing::info!(
            plugin = %label,
            version = %entry.version(),
            path = %settings.path.display(),
            hooks = ?entry.hooks().iter().map(|h| h.name()).collect::<Vec<_>>(),
            "plugin loaded"
        );
        loaded.push(LoadedPlugin {
            label,
            settings: settings.clone(),
            instance,
        });
    }
    Ok(loaded)
}

/// Opens a library and checks its entry, without initialising it (`plugin-info`).
pub fn inspect(path: &Path) -> Result<Entry, LoadFailure> {
    open(path, None)
}

/// libloading's error with the loader's own message (`dlerror`), which it keeps as the source.
fn detail(err: &libloading::Error) -> String {
    match std::error::Error::source(err) {
        Some(source) => format!("{err}: {source}"),
        None => err.to_string(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Opens the library (checking its hash when pinned) and checks its entry symbol.
fn open(path: &Path, sha256: Option<&str>) -> Result<Entry, LoadFailure> {
    // The file must exist and be readable: dlopen's own message for a missing file is vaguer.
    let mut file = std::fs::File::open(path).map_err(LoadFailure::Read)?;
    let mut through = path.to_path_buf();
    if let Some(expected) = sha256 {
        let mut hasher = Sha256::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = file.read(&mut chunk).map_err(LoadFailure::Read)?;
            if n == 0 {
                break;
            }
            hasher.update(&chunk[..n]);
        }
        let found = hex(&hasher.finalize());
        if found != expected {
            return Err(LoadFailure::HashMismatch {
                expected: expected.to_owned(),
                found,
            });
        }
        let by_fd = PathBuf::from(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&file)
        ));
        if by_fd.exists() {
            through = by_fd;
        }
    }
    // SAFETY: loading a library runs its initialisers; the operator named this file in the
    // config (and pinned its hash, when `sha256` is set). Plugins built with
    // auth0-client-plugin-api have no initialisers of their own.
    let library =
        unsafe { libloading::Library::new(&through) }.map_err(|e| LoadFailure::Open(detail(&e)))?;
    drop(file);
    // Never unloaded (see the module docs): the entry and every instance point into it.
    let library: &'static libloading::Library = Box::leak(Box::new(library));
    // SAFETY: the symbol is looked up as the address of a static; nothing is read through it
    // until `Entry::check`.
    let symbol = unsafe { library.get::<*const PluginEntry>(ENTRY_SYMBOL) }
        .map_err(|e| LoadFailure::MissingSymbol(detail(&e)))?;
    let ptr: *const PluginEntry = *symbol;
    // SAFETY: `ptr` is the address of the library's `AUTH0_CLIENT_PLUGIN` static, whose first
    // two `u32` fields every ABI version keeps; the library is never unloaded.
    Ok(unsafe { Entry::check(ptr) }?)
}
