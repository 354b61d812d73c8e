//! The control API under `/__emulator/`.

use actix_web::web;

pub fn configure(_cfg: &mut web::ServiceConfig) {}
