//! Test-only: a library exporting `AUTH0_CLIENT_PLUGIN` with ABI version 2, as a plugin built
//! for a later daemon would. The daemon must refuse it after reading the version alone.
// The export attribute is unsafe; this test crate has no other code.
#![allow(unsafe_code)]

/// The two fields every ABI version starts with.
#[repr(C)]
pub struct ForeignEntry {
    pub abi_version: u32,
    pub struct_size: u32,
}

#[unsafe(no_mangle)]
pub static AUTH0_CLIENT_PLUGIN: ForeignEntry = ForeignEntry {
    abi_version: 2,
    struct_size: 8,
};
