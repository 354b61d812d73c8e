//! The default guard of the management routes (SPEC §6): who may call them when neither
//! `apiKeys` nor `server.managementBind` protects them.
//!
//! - With `ORIGINAL_PROTOCOL_HEADER` set (upstream mode, behind the platform's gateway, which
//!   decides what is exposed): a TCP peer on loopback or in `server.trustedProxies`, the list in
//!   force as the settings hold it (the default included).
//! - Without it (a VM install): only a local end user, a loopback peer that forwarded no
//!   `X-Forwarded-For`, so an nginx on the same machine cannot expose the routes to the internet.
//!
//! Anyone else gets 403 naming `apiKeys` and `server.managementBind`, before Auth0 is called.
//! With either key set the guard stands aside: keys decide, or the private listener does.
//!
//! Choice where the spec is silent: an empty `X-Forwarded-For` line counts as one, since a proxy
//! that writes the header at all is in front.

use actix_web::HttpRequest;

use super::forwarded::{X_FORWARDED_FOR, is_trusted, peer_ip};
use crate::config::Settings;
use crate::http::ApiError;

/// Whether the default guard holds the management routes: neither `apiKeys` nor
/// `server.managementBind` is configured.
pub fn guard_in_force(settings: &Settings) -> bool {
    settings.api_keys.is_empty() && settings.server.management_bind.is_none()
}

/// `Ok` when `req` may call a management route under the default guard (see the module doc).
pub fn management_guard(req: &HttpRequest, settings: &Settings) -> Result<(), ApiError> {
    if !guard_in_force(settings) {
        return Ok(());
    }
    let peer = peer_ip(req);
    let admitted = match (peer, &settings.original_protocol_header) {
        (Some(peer), Some(_)) => peer.is_loopback() || is_trusted(settings, peer),
        (Some(peer), None) => peer.is_loopback() && !req.headers().contains_key(X_FORWARDED_FOR),
        (None, _) => false,
    };
    if admitted {
        return Ok(());
    }
    let who = if settings.original_protocol_header.is_some() {
        "a peer on loopback or in `server.trustedProxies`"
    } else {
        "a local caller (a loopback peer that forwarded no X-Forwarded-For)"
    };
    Err(ApiError::Forbidden(format!(
        "the management routes answer only {who} while neither `apiKeys` nor \
         `server.managementBind` is configured: add `apiKeys` with a key flagged `management`, \
         or set `server.managementBind` to serve them on a private address"
    )))
}

#[cfg(test)]
mod tests {
    use actix_web::ResponseError;
    use actix_web::http::StatusCode;
    use serde_json::json;

    use super::*;
    use crate::http::extract::test_support::{
        doc, doc_with_keys, request_with, settings, settings_env,
    };

    fn verdict(s: &Settings, peer: &str, headers: &[(&str, &str)]) -> Result<(), ApiError> {
        management_guard(&request_with(s, peer, headers), s)
    }

    const XFF: (&str, &str) = ("x-forwarded-for", "203.0.113.9");

    #[test]
    fn on_a_vm_only_a_local_end_user_is_served() {
        let s = settings(doc());
        assert!(guard_in_force(&s));
        assert!(verdict(&s, "127.0.0.1", &[]).is_ok());
        assert!(verdict(&s, "::1", &[]).is_ok());
        assert!(verdict(&s, "::ffff:127.0.0.1", &[]).is_ok());
        for (peer, headers) in [
            ("127.0.0.1", vec![XFF]),
            ("127.0.0.1", vec![("x-forwarded-for", "127.0.0.1")]),
            ("127.0.0.1", vec![("x-forwarded-for", "")]),
            ("10.1.2.3", vec![]),
            ("203.0.113.7", vec![]),
            ("::ffff:10.1.2.3", vec![]),
        ] {
            let err = verdict(&s, peer, &headers).expect_err(peer);
            assert_eq!(
                err.status_code(),
                StatusCode::FORBIDDEN,
                "{peer} {headers:?}"
            );
            let text = err.to_string();
            assert!(
                text.contains("`apiKeys`") && text.contains("`server.managementBind`"),
                "{text}"
            );
        }
    }

    #[test]
    fn upstream_the_trusted_proxies_in_force_are_served() {
        let env = [("ORIGINAL_PROTOCOL_HEADER", "X-Original-Proto")];
        let s = settings_env(doc(), &env);
        assert!(verdict(&s, "127.0.0.1", &[XFF]).is_ok());
        assert!(verdict(&s, "203.0.113.7", &[]).is_err());
        let mut d = doc();
        d["server"] = json!({"trustedProxies": ["10.0.0.0/8"]});
        let s = settings_env(d, &env);
        assert!(verdict(&s, "10.1.2.3", &[XFF]).is_ok());
        assert!(verdict(&s, "127.0.0.1", &[]).is_ok());
        let err = verdict(&s, "192.168.1.1", &[]).expect_err("not a proxy");
        assert!(err.to_string().contains("`server.trustedProxies`"), "{err}");
    }

    #[test]
    fn api_keys_or_a_management_listener_stand_the_guard_aside() {
        let s = settings(doc_with_keys());
        assert!(!guard_in_force(&s));
        assert!(verdict(&s, "203.0.113.7", &[XFF]).is_ok());
        let mut d = doc();
        d["server"] = json!({"managementBind": "127.0.0.1:0"});
        let s = settings(d);
        assert!(!guard_in_force(&s));
        assert!(verdict(&s, "203.0.113.7", &[]).is_ok());
    }
}
