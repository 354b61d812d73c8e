//! HTTP tests of the emulator's Authentication API and control API (one test binary).
#![allow(clippy::unwrap_used)]

mod authorize;
mod backchannel;
mod common;
mod control;
mod token;
mod wire_errors;
