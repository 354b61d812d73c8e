//! The C ABI: the entry symbol a plugin exports, and the plugin side of every call (the shims
//! [`crate::export_plugin!`] points the entry at). Only C types cross: integers, pointers to
//! bytes, and function pointers. Rust types (trait objects, `String`, `Vec`) have no layout that
//! two compiler builds agree on.
//!
//! **Calls.** Every hook is `fn(instance, input_ptr, input_len, out) -> status`: the input is
//! JSON bytes owned by the host for the duration of the call; the plugin writes a [`Buffer`] it
//! allocated into `out` (JSON on [`STATUS_OK`], a UTF-8 message otherwise), which the host copies
//! and hands back to the plugin's `free_buffer`: memory is freed by the side that allocated it.
//!
//! **Panics.** A panic unwinding out of an `extern "C"` function aborts the process, so every
//! shim runs the plugin's code inside `catch_unwind` and reports [`STATUS_PANIC`] instead. Plugins
//! must be built with `panic = "unwind"` (the default; the export macro refuses `abort`).
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Plugin, PluginError};

/// The version of this ABI. The host refuses a plugin declaring another one before reading any
/// other field of its entry.
pub const ABI_VERSION: u32 = 1;

/// The name of the exported entry static (a [`PluginEntry`]), as `dlsym` wants it.
pub const ENTRY_SYMBOL: &[u8] = b"AUTH0_CLIENT_PLUGIN\0";

/// Bits of [`PluginEntry::hooks`]: the hooks the plugin implements (the host calls no other).
pub const HOOK_MAP_CONNECTION: u32 = 1 << 0;
pub const HOOK_CUSTOM_CLAIMS: u32 = 1 << 1;
pub const HOOK_ON_TOKENS: u32 = 1 << 2;
pub const HOOK_ON_JOB_FINISHED: u32 = 1 << 3;
/// Every hook this ABI version knows.
pub const ALL_HOOKS: u32 =
    HOOK_MAP_CONNECTION | HOOK_CUSTOM_CLAIMS | HOOK_ON_TOKENS | HOOK_ON_JOB_FINISHED;

/// The call succeeded: `out` holds the answer's JSON.
pub const STATUS_OK: i32 = 0;
/// The plugin returned an error: `out` holds its message.
pub const STATUS_ERROR: i32 = 1;
/// The plugin panicked (caught): `out` holds the panic message.
pub const STATUS_PANIC: i32 = 2;

/// Bytes allocated by the plugin (a `Vec<u8>` taken apart), freed only by its `free_buffer`.
#[repr(C)]
#[derive(Debug)]
pub struct Buffer {
    pub ptr: *mut u8,
    pub len: usize,
    pub cap: usize,
}

impl Buffer {
    /// No allocation: what the host passes in for the plugin to fill.
    pub const fn empty() -> Self {
        Self {
            ptr: std::ptr::null_mut(),
            len: 0,
            cap: 0,
        }
    }

    fn from_vec(bytes: Vec<u8>) -> Self {
        let mut bytes = std::mem::ManuallyDrop::new(bytes);
        Self {
            ptr: bytes.as_mut_ptr(),
            len: bytes.len(),
            cap: bytes.capacity(),
        }
    }
}

/// A `'static` UTF-8 string in the plugin's read-only data (its name and version).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct StaticStr {
    pub ptr: *const u8,
    pub len: usize,
}

impl StaticStr {
    pub const fn new(s: &'static str) -> Self {
        Self {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }
}

/// `init(config_ptr, config_len, instance_out, error_out) -> status`: builds one instance from the
/// `config` JSON. The same library listed twice gets two instances.
pub type InitFn = unsafe extern "C" fn(*const u8, usize, *mut *mut c_void, *mut Buffer) -> i32;
/// `hook(instance, input_ptr, input_len, out) -> status` (see the module docs).
pub type HookFn = unsafe extern "C" fn(*mut c_void, *const u8, usize, *mut Buffer) -> i32;
/// Frees a [`Buffer`] the plugin allocated.
pub type FreeFn = unsafe extern "C" fn(Buffer);

/// The entry symbol ([`ENTRY_SYMBOL`]). `abi_version` and `struct_size` come first and keep
/// their place in every ABI version, so a host can read them from any plugin.
#[repr(C)]
pub struct PluginEntry {
    pub abi_version: u32,
    /// `size_of::<PluginEntry>()` as the plugin was built.
    pub struct_size: u32,
    /// The `HOOK_*` bits of the hooks implemented.
    pub hooks: u32,
    pub name: StaticStr,
    pub version: StaticStr,
    /// Function pointers are nullable (`None` is a null pointer), so the host can refuse an entry
    /// that lacks one instead of calling through null; `export_plugin!` fills them all.
    pub init: Option<InitFn>,
    pub map_connection: Option<HookFn>,
    pub custom_claims: Option<HookFn>,
    pub on_tokens: Option<HookFn>,
    pub on_job_finished: Option<HookFn>,
    pub free_buffer: Option<FreeFn>,
}

// SAFETY: the entry is immutable, and its pointers point to `'static` read-only strings and to
// functions; sharing it between threads shares nothing mutable.
unsafe impl Sync for PluginEntry {}

impl PluginEntry {
    /// The entry of plugin type `P` (used by [`crate::export_plugin!`]).
    pub const fn new<P: Plugin>(hooks: u32, name: &'static str, version: &'static str) -> Self {
        Self {
            abi_version: ABI_VERSION,
            struct_size: size_of::<Self>() as u32,
            hooks,
            name: StaticStr::new(name),
            version: StaticStr::new(version),
            init: Some(init::<P>),
            map_connection: Some(map_connection::<P>),
            custom_claims: Some(custom_claims::<P>),
            on_tokens: Some(on_tokens::<P>),
            on_job_finished: Some(on_job_finished::<P>),
            free_buffer: Some(free_buffer),
        }
    }
}

/// The message of a caught panic.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// Runs `body` inside `catch_unwind` and writes its answer (or error, or panic) to `out`.
///
/// # Safety
/// `out` is null or valid for one write of a [`Buffer`].
unsafe fn answer(out: *mut Buffer, body: impl FnOnce() -> Result<Vec<u8>, PluginError>) -> i32 {
    let (status, bytes) = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(bytes)) => (STATUS_OK, bytes),
        Ok(Err(err)) => (STATUS_ERROR, err.to_string().into_bytes()),
        Err(payload) => (STATUS_PANIC, panic_message(&*payload).into_bytes()),
    };
    if !out.is_null() {
        // SAFETY: the caller guarantees `out` is valid for a write; the host owns the slot and
        // hands the buffer back to `free_buffer`.
        unsafe { out.write(Buffer::from_vec(bytes)) };
    }
    status
}

/// The input bytes as a slice.
///
/// # Safety
/// `ptr` is null (then `len` is ignored) or valid for reads of `len` bytes during the call.
unsafe fn input<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() {
        &[]
    } else {
        // SAFETY: the caller guarantees `ptr..ptr+len` is readable for the call's duration.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, PluginError> {
    serde_json::from_slice(bytes).map_err(|e| PluginError::new(format!("invalid input: {e}")))
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, PluginError> {
    serde_json::to_vec(value).map_err(|e| PluginError::new(format!("cannot encode: {e}")))
}

unsafe extern "C" fn init<P: Plugin>(
    config: *const u8,
    config_len: usize,
    instance: *mut *mut c_void,
    out: *mut Buffer,
) -> i32 {
    // SAFETY: the host passes its config bytes, alive for the call.
    let config = unsafe { input(config, config_len) };
    let mut made = None;
    // SAFETY: the host passes a valid `out` slot.
    let status = unsafe {
        answer(out, || {
            let config: P::Config = serde_json::from_slice(config)
                .map_err(|e| PluginError::new(format!("invalid config: {e}")))?;
            made = Some(P::new(config)?);
            Ok(Vec::new())
        })
    };
    if let Some(plugin) = made
        && !instance.is_null()
    {
        // SAFETY: the host passes a valid slot for the instance pointer. The instance is never
        // freed: the host never unloads a plugin.
        unsafe { instance.write(Box::into_raw(Box::new(plugin)).cast()) };
    }
    status
}

/// Runs one hook of the instance behind `instance`.
///
/// # Safety
/// `instance` came from `init::<P>` of this library; the input and `out` as in [`HookFn`].
unsafe fn hook<P: Plugin, I: DeserializeOwned, O: Serialize>(
    instance: *mut c_void,
    ptr: *const u8,
    len: usize,
    out: *mut Buffer,
    call: impl FnOnce(&P, I) -> Result<O, PluginError>,
) -> i32 {
    // SAFETY: the host passes its input bytes, alive for the call.
    let bytes = unsafe { input(ptr, len) };
    // SAFETY: `out` is the host's slot; `instance` is a `Box<P>` leaked by `init::<P>`, shared
    // (`P: Sync`) and never freed.
    unsafe {
        answer(out, || {
            if instance.is_null() {
                return Err(PluginError::new("no plugin instance"));
            }
            let plugin = &*instance.cast::<P>();
            to_json(&call(plugin, parse(bytes)?)?)
        })
    }
}

unsafe extern "C" fn map_connection<P: Plugin>(
    instance: *mut c_void,
    ptr: *const u8,
    len: usize,
    out: *mut Buffer,
) -> i32 {
    // SAFETY: forwarded from the host's call, see `HookFn`.
    unsafe { hook(instance, ptr, len, out, P::map_connection) }
}

unsafe extern "C" fn custom_claims<P: Plugin>(
    instance: *mut c_void,
    ptr: *const u8,
    len: usize,
    out: *mut Buffer,
) -> i32 {
    // SAFETY: forwarded from the host's call, see `HookFn`.
    unsafe { hook(instance, ptr, len, out, P::custom_claims) }
}

unsafe extern "C" fn on_tokens<P: Plugin>(
    instance: *mut c_void,
    ptr: *const u8,
    len: usize,
    out: *mut Buffer,
) -> i32 {
    // SAFETY: forwarded from the host's call, see `HookFn`.
    unsafe { hook(instance, ptr, len, out, P::on_tokens) }
}

unsafe extern "C" fn on_job_finished<P: Plugin>(
    instance: *mut c_void,
    ptr: *const u8,
    len: usize,
    out: *mut Buffer,
) -> i32 {
    // SAFETY: forwarded from the host's call, see `HookFn`.
    unsafe { hook(instance, ptr, len, out, P::on_job_finished) }
}

unsafe extern "C" fn free_buffer(buffer: Buffer) {
    if buffer.ptr.is_null() {
        return;
    }
    // Dropping cannot panic here (a `Vec<u8>` frees plain bytes), but keep the boundary sealed.
    let _ = catch_unwind(|| {
        // SAFETY: `buffer` is a `Vec<u8>` taken apart by `Buffer::from_vec` in this library and
        // handed back exactly once by the host.
        drop(unsafe { Vec::from_raw_parts(buffer.ptr, buffer.len, buffer.cap) });
    });
}
