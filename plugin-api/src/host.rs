//! The calling side of the ABI, shared by auth0-client's loader and by [`crate::testing`]: checks
//! an entry (ABI version first, then its size and hooks), builds an instance from a config, calls
//! hooks with JSON bytes and copies the answer out before handing the plugin's buffer back to it.
#![allow(unsafe_code)]

use std::ffi::c_void;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ffi::{
    ABI_VERSION, ALL_HOOKS, Buffer, HOOK_CUSTOM_CLAIMS, HOOK_MAP_CONNECTION, HOOK_ON_JOB_FINISHED,
    HOOK_ON_TOKENS, HookFn, PluginEntry, STATUS_ERROR, STATUS_OK, STATUS_PANIC, StaticStr,
};

/// One hook of ABI v1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hook {
    MapConnection,
    CustomClaims,
    OnTokens,
    OnJobFinished,
}

impl Hook {
    pub const ALL: [Hook; 4] = [
        Hook::MapConnection,
        Hook::CustomClaims,
        Hook::OnTokens,
        Hook::OnJobFinished,
    ];

    /// Its bit in [`PluginEntry::hooks`].
    pub fn bit(self) -> u32 {
        match self {
            Hook::MapConnection => HOOK_MAP_CONNECTION,
            Hook::CustomClaims => HOOK_CUSTOM_CLAIMS,
            Hook::OnTokens => HOOK_ON_TOKENS,
            Hook::OnJobFinished => HOOK_ON_JOB_FINISHED,
        }
    }

    /// Its name in the config, logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Hook::MapConnection => "map_connection",
            Hook::CustomClaims => "custom_claims",
            Hook::OnTokens => "on_tokens",
            Hook::OnJobFinished => "on_job_finished",
        }
    }

    /// The hooks whose bits are set in `bits`.
    pub fn from_bits(bits: u32) -> Vec<Hook> {
        Hook::ALL
            .into_iter()
            .filter(|h| bits & h.bit() != 0)
            .collect()
    }
}

impl std::fmt::Display for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an entry is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryError {
    /// The plugin was built against another ABI version.
    AbiVersion { found: u32 },
    /// The entry's size is not this ABI's (a mismatched or corrupt build).
    StructSize { found: u32, expected: u32 },
    /// Hook bits this ABI version does not know.
    UnknownHooks(u32),
    /// A function the entry must have (init, free_buffer, a declared hook) is null.
    MissingFunction(&'static str),
}

impl std::fmt::Display for EntryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EntryError::AbiVersion { found } => write!(
                f,
                "it was built for plugin ABI version {found}, this daemon speaks version {ABI_VERSION} \
                 (rebuild it against auth0-client-plugin-api {})",
                env!("CARGO_PKG_VERSION")
            ),
            EntryError::StructSize { found, expected } => write!(
                f,
                "its entry is {found} bytes, ABI version {ABI_VERSION} has {expected} \
                 (a mismatched build of auth0-client-plugin-api)"
            ),
            EntryError::UnknownHooks(bits) => {
                write!(
                    f,
                    "it declares hooks unknown to this daemon (bits {bits:#x})"
                )
            }
            EntryError::MissingFunction(name) => write!(f, "its entry has no `{name}` function"),
        }
    }
}

impl std::error::Error for EntryError {}

/// Why a call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The plugin returned an error (its message).
    Error(String),
    /// The plugin panicked; the panic was caught at the boundary (its message).
    Panic(String),
    /// The plugin answered something that is not the hook's JSON.
    BadAnswer(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Error(m) => write!(f, "the plugin failed: {m}"),
            CallError::Panic(m) => write!(f, "the plugin panicked: {m}"),
            CallError::BadAnswer(m) => write!(f, "the plugin's answer is invalid: {m}"),
        }
    }
}

impl std::error::Error for CallError {}

/// A checked entry: its name, version and hooks are readable.
#[derive(Clone, Copy)]
pub struct Entry {
    entry: &'static PluginEntry,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("name", &self.name())
            .field("version", &self.version())
            .field("hooks", &self.hooks())
            .finish()
    }
}

/// Reads a static string of the entry.
fn read_str(s: StaticStr) -> String {
    if s.ptr.is_null() {
        return String::new();
    }
    // SAFETY: `Entry::check` accepted the entry, whose strings point to the plugin's `'static`
    // read-only data (the library is never unloaded).
    let bytes = unsafe { std::slice::from_raw_parts(s.ptr, s.len) };
    String::from_utf8_lossy(bytes).into_owned()
}

impl Entry {
    /// Checks the entry at `ptr`: its ABI version before anything else, then its size and hooks.
    ///
    /// # Safety
    /// `ptr` points to the plugin's entry static (at least its first two `u32` fields readable),
    /// in a library that stays loaded for the rest of the process.
    pub unsafe fn check(ptr: *const PluginEntry) -> Result<Self, EntryError> {
        let words = ptr.cast::<u32>();
        // SAFETY: every ABI version starts with `abi_version: u32, struct_size: u32`, which the
        // caller guarantees readable; nothing past them is read before the version matches.
        let (version, size) = unsafe { (words.read_unaligned(), words.add(1).read_unaligned()) };
        if version != ABI_VERSION {
            return Err(EntryError::AbiVersion { found: version });
        }
        let expected = size_of::<PluginEntry>() as u32;
        if size != expected {
            return Err(EntryError::StructSize {
                found: size,
                expected,
            });
        }
        // SAFETY: the version and size match this ABI, so the whole `PluginEntry` is there, and
        // it lives as long as the library (for ever).
        let entry: &'static PluginEntry = unsafe { &*ptr };
        if entry.hooks & !ALL_HOOKS != 0 {
            return Err(EntryError::UnknownHooks(entry.hooks & !ALL_HOOKS));
        }
        if entry.init.is_none() {
            return Err(EntryError::MissingFunction("init"));
        }
        if entry.free_buffer.is_none() {
            return Err(EntryError::MissingFunction("free_buffer"));
        }
        let checked = Self { entry };
        for hook in checked.hooks() {
            if checked.function(hook).is_none() {
                return Err(EntryError::MissingFunction(hook.name()));
            }
        }
        Ok(checked)
    }

    /// Checks an entry linked into this process (an `InProcess` test of a plugin crate).
    pub fn from_static(entry: &'static PluginEntry) -> Result<Self, EntryError> {
        // SAFETY: a `&'static PluginEntry` is readable in whole, for ever.
        unsafe { Self::check(entry) }
    }

    /// The entry's function for `hook`.
    fn function(&self, hook: Hook) -> Option<HookFn> {
        match hook {
            Hook::MapConnection => self.entry.map_connection,
            Hook::CustomClaims => self.entry.custom_claims,
            Hook::OnTokens => self.entry.on_tokens,
            Hook::OnJobFinished => self.entry.on_job_finished,
        }
    }

    /// The plugin's package name.
    pub fn name(&self) -> String {
        read_str(self.entry.name)
    }

    pub fn version(&self) -> String {
        read_str(self.entry.version)
    }

    pub fn abi_version(&self) -> u32 {
        self.entry.abi_version
    }

    pub fn hooks(&self) -> Vec<Hook> {
        Hook::from_bits(self.entry.hooks)
    }

    pub fn implements(&self, hook: Hook) -> bool {
        self.entry.hooks & hook.bit() != 0
    }

    /// One instance built from `config` (JSON bytes); `Err` carries the plugin's message.
    pub fn instantiate(&self, config: &[u8]) -> Result<Instance, CallError> {
        let Some(init) = self.entry.init else {
            return Err(CallError::Error("the entry has no init function".into()));
        };
        let mut instance: *mut c_void = std::ptr::null_mut();
        let mut out = Buffer::empty();
        // SAFETY: `init` is the checked entry's; the config bytes and both out-slots live across
        // the call.
        let status = unsafe { init(config.as_ptr(), config.len(), &mut instance, &mut out) };
        let message = self.take(out);
        match status {
            STATUS_OK if !instance.is_null() => Ok(Instance {
                entry: *self,
                instance: InstancePtr(instance),
            }),
            STATUS_OK => Err(CallError::Error("init returned no instance".into())),
            status => Err(failure(status, message)),
        }
    }

    /// Copies a buffer the plugin filled and hands it back to the plugin to free.
    fn take(&self, out: Buffer) -> Vec<u8> {
        if out.ptr.is_null() {
            return Vec::new();
        }
        // SAFETY: a non-null buffer was filled by the plugin with `len` initialised bytes.
        let bytes = unsafe { std::slice::from_raw_parts(out.ptr, out.len) }.to_vec();
        if let Some(free) = self.entry.free_buffer {
            // SAFETY: the buffer is the plugin's and is handed back exactly once.
            unsafe { free(out) };
        }
        bytes
    }
}

fn failure(status: i32, message: Vec<u8>) -> CallError {
    let message = String::from_utf8_lossy(&message).into_owned();
    match status {
        STATUS_ERROR => CallError::Error(message),
        STATUS_PANIC => CallError::Panic(message),
        other => CallError::Error(format!("unknown status {other}: {message}")),
    }
}

/// The opaque instance pointer of a plugin.
#[derive(Clone, Copy)]
struct InstancePtr(*mut c_void);

// SAFETY: the instance is a `P: Plugin` (`Send + Sync`) that the plugin only reads through
// shared references, and it is never freed.
unsafe impl Send for InstancePtr {}
// SAFETY: as above.
unsafe impl Sync for InstancePtr {}

/// One instance of a plugin; calls may run from any thread, concurrently.
#[derive(Clone, Copy)]
pub struct Instance {
    entry: Entry,
    instance: InstancePtr,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.entry.fmt(f)
    }
}

impl Instance {
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// Calls `hook` with `input` (JSON bytes); `Ok` is the answer's JSON bytes.
    pub fn call_raw(&self, hook: Hook, input: &[u8]) -> Result<Vec<u8>, CallError> {
        // A hook the plugin does not declare is not called (its function may be absent).
        let function = match self.entry.function(hook) {
            Some(function) if self.entry.implements(hook) => function,
            _ => {
                return Err(CallError::Error(format!(
                    "the plugin does not implement {hook}"
                )));
            }
        };
        let mut out = Buffer::empty();
        // SAFETY: the function is the checked entry's; the instance came from its `init`; the
        // input bytes and the out-slot live across the call.
        let status = unsafe { function(self.instance.0, input.as_ptr(), input.len(), &mut out) };
        let bytes = self.entry.take(out);
        match status {
            STATUS_OK => Ok(bytes),
            status => Err(failure(status, bytes)),
        }
    }

    /// Calls `hook` with `input` serialised, and parses the answer.
    pub fn call<I: Serialize, O: DeserializeOwned>(
        &self,
        hook: Hook,
        input: &I,
    ) -> Result<O, CallError> {
        let bytes = serde_json::to_vec(input)
            .map_err(|e| CallError::Error(format!("cannot encode the input: {e}")))?;
        let answer = self.call_raw(hook, &bytes)?;
        serde_json::from_slice(&answer).map_err(|e| CallError::BadAnswer(e.to_string()))
    }
}
