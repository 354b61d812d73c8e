//! Loading plugins (SPEC §9): each `plugins[]` entry's library is read, checked against its
//! `sha256` when one is given, opened with `libloading`, and its entry symbol checked (ABI
//! version first, then the entry's size and hooks) before its `init` gets the entry's `config`.
//! Any failure stops the start with a [`LoadError`] naming the entry and the reason.
//!
//! - **Never unloaded.** A library's code may still run on a thread whose call timed out, and the
//!   instances point into it, so every loaded `Library` is leaked for the life of the process.
//! - **Read once, checked, loaded from a sealed copy.** The file is opened once (never blocking,
//!   so a FIFO cannot hang the start), must be a regular file, and is read whole into memory; its
//!   ELF headers must parse (a 64-bit shared object whose program headers, section headers and
//!   every segment lie inside the bytes read), since the loader maps segments past the end of a
//!   truncated file and the process then dies of SIGBUS. Those bytes are what `sha256` is
//!   compared with, and exactly they are loaded: written to a `memfd`, sealed against any change
//!   (`F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL`), and opened through
//!   `/proc/self/fd/N`, so replacing the path, a symlink swap or an in-place write after the read
//!   changes nothing.
//! - **The memfd stays open** for the life of the process: the loader knows a library by the name
//!   it was opened with, and a later plugin's memfd reusing the number `N` would otherwise be taken
//!   for the library already loaded under `/proc/self/fd/N`.
//! - **Loading runs the library's code** (its initialisers): only load files an operator
//!   controls, writable by root alone.
//!
//! With plugin-api's `ffi` and `host` modules and `export_plugin!`'s expansion, the only place
//! `unsafe` is allowed (each block says why it holds).
#![allow(unsafe_code)]

use std::io::{Read as _, Write as _};
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::OpenOptionsExt as _;
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
    #[error("it is not a regular file ({0})")]
    NotAFile(&'static str),
    #[error("it is larger than {} MiB", MAX_LIBRARY_BYTES >> 20)]
    TooLarge,
    #[error("it is not a sound ELF shared library: {0}")]
    Elf(String),
    #[error("cannot copy it into a sealed memory file: {0}")]
    Seal(std::io::Error),
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

/// The largest plugin file read (plugins are a few MiB at most).
const MAX_LIBRARY_BYTES: u64 = 256 << 20;

/// The bytes of the regular file at `path`, read once through one descriptor opened without
/// blocking (a FIFO would otherwise wait for a writer forever).
fn read_library(path: &Path) -> Result<Vec<u8>, LoadFailure> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(LoadFailure::Read)?;
    let meta = file.metadata().map_err(LoadFailure::Read)?;
    let kind = meta.file_type();
    if !kind.is_file() {
        use std::os::unix::fs::FileTypeExt as _;
        return Err(LoadFailure::NotAFile(if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "not a plain file"
        }));
    }
    if meta.len() > MAX_LIBRARY_BYTES {
        return Err(LoadFailure::TooLarge);
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // A file that grows while being read is cut at the limit and then refused.
    (&mut file)
        .take(MAX_LIBRARY_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(LoadFailure::Read)?;
    if bytes.len() as u64 > MAX_LIBRARY_BYTES {
        return Err(LoadFailure::TooLarge);
    }
    Ok(bytes)
}

/// Whether `bytes` are a shared library the loader can map without reading past their end: a
/// 64-bit ELF shared object of this machine's byte order whose headers parse and whose every
/// segment's file range lies inside `bytes`.
fn check_elf(bytes: &[u8]) -> Result<(), LoadFailure> {
    use object::read::elf::{ElfFile64, FileHeader as _, ProgramHeader as _};
    let bad = |why: String| LoadFailure::Elf(why);
    if bytes.is_empty() {
        return Err(bad("the file is empty".into()));
    }
    if bytes.len() < 4 || &bytes[..4] != b"\x7fELF" {
        return Err(bad("no ELF magic number at its start".into()));
    }
    let elf = ElfFile64::<object::Endianness>::parse(bytes).map_err(|e| bad(e.to_string()))?;
    let endian = elf.endian();
    let header = elf.elf_header();
    if header.e_type(endian) != object::elf::ET_DYN {
        return Err(bad(
            "it is not a shared object (ELF type is not ET_DYN)".into()
        ));
    }
    if endian != object::Endianness::default() {
        return Err(bad("its byte order is not this machine's".into()));
    }
    let segments = elf.elf_program_headers();
    if !segments
        .iter()
        .any(|ph| ph.p_type(endian) == object::elf::PT_LOAD)
    {
        return Err(bad("it has no loadable segment".into()));
    }
    for (i, ph) in segments.iter().enumerate() {
        let (offset, size) = ph.file_range(endian);
        if ph.data(endian, bytes).is_err() {
            return Err(bad(format!(
                "segment {i} (bytes {offset}..{}) lies outside the file's {} bytes",
                offset.saturating_add(size),
                bytes.len()
            )));
        }
        if ph.p_type(endian) == object::elf::PT_LOAD && size > ph.p_memsz(endian) {
            return Err(bad(format!(
                "segment {i} holds more bytes in the file than in memory"
            )));
        }
    }
    Ok(())
}

/// `bytes` in a memfd sealed against every change, left open for the life of the process (see
/// the module doc); the path the loader opens it by.
fn sealed_copy(bytes: &[u8]) -> Result<PathBuf, LoadFailure> {
    use rustix::fs::{MemfdFlags, SealFlags, fcntl_add_seals, memfd_create};
    let fd = memfd_create(
        "auth0-client-plugin",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )
    .map_err(|e| LoadFailure::Seal(e.into()))?;
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes).map_err(LoadFailure::Seal)?;
    fcntl_add_seals(
        &file,
        SealFlags::WRITE | SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL,
    )
    .map_err(|e| LoadFailure::Seal(e.into()))?;
    let path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
    // Never closed: the library is never unloaded, and its number must not be reused.
    std::mem::forget(file);
    Ok(path)
}

/// Reads the library once, checks it (regular file, sound ELF, the pinned hash), and loads
/// exactly the bytes checked from a sealed copy; then checks its entry symbol.
fn open(path: &Path, sha256: Option<&str>) -> Result<Entry, LoadFailure> {
    let bytes = read_library(path)?;
    check_elf(&bytes)?;
    if let Some(expected) = sha256 {
        let found = hex(&Sha256::digest(&bytes));
        if found != expected {
            return Err(LoadFailure::HashMismatch {
                expected: expected.to_owned(),
                found,
            });
        }
    }
    let through = sealed_copy(&bytes)?;
    drop(bytes);
    // SAFETY: loading a library runs its initialisers; the operator named this file in the
    // config (and pinned its hash, when `sha256` is set). Plugins built with
    // auth0-client-plugin-api have no initialisers of their own. The sealed copy cannot change
    // under the loader, and its segments were checked to lie inside it, so mapping them reads
    // no byte past its end (no SIGBUS).
    let library =
        unsafe { libloading::Library::new(&through) }.map_err(|e| LoadFailure::Open(detail(&e)))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(bytes: &[u8]) -> String {
        check_elf(bytes).expect_err("refused").to_string()
    }

    /// The head of this test binary (a position-independent ELF executable, `ET_DYN` like a
    /// shared library): its headers are sound, its segments lie far past 64 KiB.
    fn own_head(len: usize) -> Vec<u8> {
        let mut head = vec![0u8; len];
        let mut file = std::fs::File::open("/proc/self/exe").expect("own binary");
        file.read_exact(&mut head).expect("64 KiB of it");
        head
    }

    #[test]
    fn only_whole_elf_shared_objects_pass() {
        assert!(refusal(b"").contains("the file is empty"));
        assert!(refusal(b"\x7fEL").contains("no ELF magic"));
        assert!(refusal(b"not a library at all").contains("no ELF magic"));
        let head = own_head(64 * 1024);
        let cut = refusal(&head);
        assert!(cut.contains("not a sound ELF shared library"), "{cut}");
        // The ELF header alone: its program headers lie past the end.
        assert!(refusal(&head[..64]).contains("not a sound ELF shared library"));
    }

    #[test]
    fn a_directory_or_a_device_is_not_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = read_library(dir.path()).expect_err("a directory");
        assert!(err.to_string().contains("a directory"), "{err}");
        let err = read_library(Path::new("/dev/zero")).expect_err("a device");
        assert!(err.to_string().contains("a device"), "{err}");
        let err = read_library(&dir.path().join("missing.so")).expect_err("missing");
        assert!(err.to_string().starts_with("cannot read it"), "{err}");
    }
}
