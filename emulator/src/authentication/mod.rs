//! The Authentication API (wire reference §1 and §7): `/authorize` and its login form, `/oauth/token`,
//! `/oauth/revoke`, `/dbconnections/change_password`, `/userinfo`, `/v2/logout`, discovery and JWKS.

pub mod authorize;

use actix_web::web;

/// The `password-realm` extension grant (wire reference §1.3).
pub const PASSWORD_REALM_GRANT: &str = "http://auth0.com/oauth/grant-type/password-realm";

pub fn configure(_cfg: &mut web::ServiceConfig) {}
