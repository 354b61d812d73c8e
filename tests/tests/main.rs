//! End-to-end tests: the real daemon over HTTP (DESIGN.md, Tests). One binary, one module per area.
#![allow(clippy::unwrap_used)]

mod process;
mod status;
