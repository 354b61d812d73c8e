//! The index of sessions by Auth0 session, for OpenID Connect back-channel logout (SPEC §5, §7).
//!
//! - [`Auth0SessionHash`]: the key a session is indexed under, the SHA-256 of the `sid` claim of
//!   its login's ID token (like access tokens, the id is never a key in clear; the claim itself
//!   stays sealed with the other claims). Password-grant logins carry no `sid` (Auth0 opens no
//!   session for them) and are not in this index.
//! - [`replay_key`]: the key of the set-if-absent record of a logout token's `jti`
//!   ([`super::LeaseStore::record_once`]), per issuer.
//!
//! | backend | index |
//! |---|---|
//! | sled | tree `session_auth0_sessions`: hash (hex), session key → empty, changed in the session's transaction |
//! | Redis | sorted set `x:<hash>` of session keys scored by expiry; the session hash's `x` field names it |

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::TokenHash;

/// The SHA-256 (hex) of an Auth0 session id: what sessions are indexed by.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Auth0SessionHash(TokenHash);

impl Auth0SessionHash {
    /// The hash of the Auth0 session id `sid`.
    pub fn of(sid: &str) -> Self {
        Self(TokenHash::of(sid))
    }

    /// The hash of the `sid` claim of verified ID-token claims, when it is a non-empty string.
    pub fn of_claims(claims: &Map<String, Value>) -> Option<Self> {
        claims
            .get("sid")
            .and_then(Value::as_str)
            .filter(|sid| !sid.is_empty())
            .map(Self::of)
    }

    /// 64 lowercase hex characters.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// The record key of a logout token's `jti` from `issuer`: hashed, so neither a hostile `jti`'s
/// length nor its characters reach a store key, and two tenants' `jti`s never collide.
pub fn replay_key(issuer: &str, jti: &str) -> String {
    let hash = TokenHash::of(&format!("{issuer}\0{jti}"));
    format!("logout-jti:{}", hash.as_str())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_a_non_empty_string_sid_is_indexed() {
        let claims = |sid: Value| {
            let mut map = Map::new();
            map.insert("sid".into(), sid);
            map
        };
        assert_eq!(
            Auth0SessionHash::of_claims(&claims(json!("abc"))),
            Some(Auth0SessionHash::of("abc"))
        );
        assert_eq!(Auth0SessionHash::of("abc").as_str().len(), 64);
        assert_eq!(Auth0SessionHash::of_claims(&claims(json!(""))), None);
        assert_eq!(Auth0SessionHash::of_claims(&claims(json!(7))), None);
        assert_eq!(Auth0SessionHash::of_claims(&Map::new()), None);
    }

    #[test]
    fn replay_keys_are_per_issuer_and_bounded() {
        let long = "j".repeat(10_000);
        assert_eq!(
            replay_key("https://a/", &long).len(),
            "logout-jti:".len() + 64
        );
        assert_ne!(replay_key("https://a/", "1"), replay_key("https://b/", "1"));
        assert_eq!(replay_key("https://a/", "1"), replay_key("https://a/", "1"));
    }
}
