//! Verification of OpenID Connect Back-Channel Logout tokens (Back-Channel Logout 1.0 §2.4 and
//! §2.6; SPEC §5 `POST /backchannel-logout`).
//!
//! | rule | refused with |
//! |---|---|
//! | a JWT signed RS256 by a key (`kid`) of the issuing tenant's JWKS | [`LogoutTokenError::Malformed`], `UnsupportedAlgorithm`, `MissingKid`, `UnknownKey`, `BadSignature` |
//! | `iss` = a configured client's `<auth0Url>/` | `WrongIssuer` |
//! | `aud` (a string or a list) holds the `clientId` of a configured client of that tenant | `WrongAudience` |
//! | `iat` a number within the last [`MAX_AGE`] (60 s of clock skew ahead) | `Stale`, `InvalidClaim("iat")` |
//! | `exp`, when present, not past (60 s of leeway) | `Expired` |
//! | `events` an object with the member [`BACKCHANNEL_EVENT`] (an object) | `NoLogoutEvent` |
//! | `jti` a non-empty string | `InvalidClaim("jti")` |
//! | `sid` and/or `sub`, non-empty strings | `NoSubject` |
//! | no `nonce` | `Nonce` |
//!
//! The replay check (`jti` seen before) needs the store and is the caller's
//! ([`LogoutToken::accept_until_ms`] says how long to remember the `jti`). Choices where the
//! specifications are silent: only RS256 (Auth0 signs logout tokens with the tenant key, never a
//! client secret); the `typ` header is not checked (Auth0's say `JWT`); the token's tenant is read
//! from its unverified `iss` only to pick the keys it must then verify with.

use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};
use url::Url;

use super::jwks::{IdTokenError, JwksCache, JwksError, LEEWAY_SECONDS};
use crate::config::ClientSettings;

/// The `events` member that makes a JWT a logout token (§2.4).
pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// How old a logout token's `iat` may be (SPEC §5: "within the last 5 minutes").
pub const MAX_AGE: Duration = Duration::from_secs(300);

/// A verified logout token: what it ends, and until when its `jti` must be remembered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogoutToken {
    /// `iss`: the tenant's `<auth0Url>/`.
    pub issuer: String,
    /// The tenant (the `auth0Url` of the clients it may end sessions of).
    pub tenant: Url,
    pub jti: String,
    pub sid: Option<String>,
    pub sub: Option<String>,
    /// Past this (unix milliseconds) the token is refused anyway (`iat` too old or `exp` past):
    /// its replay record may go then.
    pub accept_until_ms: i64,
}

/// Why a logout token was refused: each a 400 naming the rule (SPEC §5).
#[derive(Debug, thiserror::Error)]
pub enum LogoutTokenError {
    #[error("logout_token is not a well-formed JWT")]
    Malformed,
    #[error("logout_token is signed with {0}; only RS256 is accepted")]
    UnsupportedAlgorithm(String),
    #[error("logout_token names no signing key (kid)")]
    MissingKid,
    #[error("logout_token's signing key {0:?} is not in the tenant's JWKS")]
    UnknownKey(String),
    #[error("logout_token's signature does not verify")]
    BadSignature,
    #[error("logout_token's issuer (iss) is not a configured tenant")]
    WrongIssuer,
    #[error("logout_token's audience (aud) is no configured client of its tenant")]
    WrongAudience,
    #[error("logout_token was issued (iat) more than 5 minutes ago or in the future")]
    Stale,
    #[error("logout_token has expired (exp)")]
    Expired,
    #[error("logout_token's `{0}` claim is missing or invalid")]
    InvalidClaim(String),
    #[error(
        "logout_token's events claim does not hold http://schemas.openid.net/event/backchannel-logout"
    )]
    NoLogoutEvent,
    #[error("logout_token has neither a sid nor a sub claim")]
    NoSubject,
    #[error("logout_token carries a nonce, which a logout token must not")]
    Nonce,
    #[error("logout_token was already received (jti replayed)")]
    Replayed,
    /// The tenant's keys could not be had: not the caller's fault (502/504 as for any Auth0
    /// outage).
    #[error(transparent)]
    Keys(JwksError),
}

impl LogoutTokenError {
    fn from_key_lookup(err: IdTokenError) -> Self {
        match err {
            IdTokenError::Keys(keys) => Self::Keys(keys),
            IdTokenError::UnknownKey { kid } => Self::UnknownKey(kid),
            _ => Self::BadSignature,
        }
    }
}

impl JwksCache {
    /// Verifies a logout token against the configured `clients` at `now_ms` (unix milliseconds,
    /// the daemon's clock; see the module doc); the replay check is left to the caller.
    pub async fn verify_logout_token<'c>(
        &self,
        token: &str,
        clients: impl IntoIterator<Item = &'c ClientSettings>,
        now_ms: i64,
    ) -> Result<LogoutToken, LogoutTokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| LogoutTokenError::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(LogoutTokenError::UnsupportedAlgorithm(format!(
                "{:?}",
                header.alg
            )));
        }
        let kid = header.kid.ok_or(LogoutTokenError::MissingKid)?;
        // The unverified `iss` only picks the tenant whose keys must then verify the token.
        let unverified: Map<String, Value> = jsonwebtoken::dangerous::insecure_decode_claims(token)
            .map_err(|_| LogoutTokenError::Malformed)?;
        let issuer = unverified
            .get("iss")
            .and_then(Value::as_str)
            .ok_or(LogoutTokenError::WrongIssuer)?
            .to_owned();
        let tenant_clients: Vec<&ClientSettings> = clients
            .into_iter()
            .filter(|c| c.issuer() == issuer)
            .collect();
        let Some(first) = tenant_clients.first() else {
            return Err(LogoutTokenError::WrongIssuer);
        };
        let tenant = first.auth0_url.clone();
        let key = self
            .key(&tenant, &kid)
            .await
            .map_err(LogoutTokenError::from_key_lookup)?;

        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = LEEWAY_SECONDS;
        validation.set_issuer(&[&issuer]);
        let audiences: Vec<&str> = tenant_clients
            .iter()
            .map(|c| c.client_id.as_str())
            .collect();
        validation.set_audience(&audiences);
        validation.set_required_spec_claims(&["iss", "aud"]);
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|err| match err.kind() {
                ErrorKind::InvalidSignature => LogoutTokenError::BadSignature,
                ErrorKind::ExpiredSignature => LogoutTokenError::Expired,
                ErrorKind::InvalidIssuer => LogoutTokenError::WrongIssuer,
                ErrorKind::InvalidAudience => LogoutTokenError::WrongAudience,
                ErrorKind::MissingRequiredClaim(claim) | ErrorKind::InvalidClaimFormat(claim) => {
                    LogoutTokenError::InvalidClaim(claim.clone())
                }
                _ => LogoutTokenError::Malformed,
            })?
            .claims;
        check_claims(issuer, tenant, &claims, now_ms)
    }
}

/// The rules of §2.6 beyond signature, `iss`, `aud` and `exp`.
fn check_claims(
    issuer: String,
    tenant: Url,
    claims: &Map<String, Value>,
    now_ms: i64,
) -> Result<LogoutToken, LogoutTokenError> {
    let iat = claims
        .get("iat")
        .and_then(Value::as_f64)
        .ok_or_else(|| LogoutTokenError::InvalidClaim("iat".into()))?;
    let now_seconds = now_ms as f64 / 1000.0;
    let age = now_seconds - iat;
    if age > MAX_AGE.as_secs_f64() || age < -(LEEWAY_SECONDS as f64) {
        return Err(LogoutTokenError::Stale);
    }
    let is_logout = claims
        .get("events")
        .and_then(Value::as_object)
        .and_then(|events| events.get(BACKCHANNEL_EVENT))
        .is_some_and(Value::is_object);
    if !is_logout {
        return Err(LogoutTokenError::NoLogoutEvent);
    }
    if claims.contains_key("nonce") {
        return Err(LogoutTokenError::Nonce);
    }
    let text = |name: &str| -> Result<Option<String>, LogoutTokenError> {
        match claims.get(name) {
            None => Ok(None),
            Some(Value::String(value)) if !value.is_empty() => Ok(Some(value.clone())),
            Some(_) => Err(LogoutTokenError::InvalidClaim(name.into())),
        }
    };
    let jti = text("jti")?.ok_or_else(|| LogoutTokenError::InvalidClaim("jti".into()))?;
    let (sid, sub) = (text("sid")?, text("sub")?);
    if sid.is_none() && sub.is_none() {
        return Err(LogoutTokenError::NoSubject);
    }
    let millis = |seconds: f64| (seconds * 1000.0) as i64;
    let mut accept_until_ms = millis(iat + MAX_AGE.as_secs_f64());
    if let Some(exp) = claims.get("exp").and_then(Value::as_f64) {
        accept_until_ms = accept_until_ms.min(millis(exp + LEEWAY_SECONDS as f64));
    }
    Ok(LogoutToken {
        issuer,
        tenant,
        jti,
        sid,
        sub,
        accept_until_ms,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn claims(overrides: Value) -> Map<String, Value> {
        let mut claims = json!({
            "iss": "https://tenant/",
            "aud": "client",
            "iat": NOW - 10,
            "jti": "j1",
            "sid": "s1",
            "sub": "auth0|1",
            "events": {BACKCHANNEL_EVENT: {}},
        })
        .as_object()
        .cloned()
        .unwrap_or_default();
        for (name, value) in overrides.as_object().cloned().unwrap_or_default() {
            if value.is_null() {
                claims.remove(&name);
            } else {
                claims.insert(name, value);
            }
        }
        claims
    }

    fn check(overrides: Value) -> Result<LogoutToken, LogoutTokenError> {
        let tenant = Url::parse("https://tenant/").expect("a url");
        check_claims(
            "https://tenant/".into(),
            tenant,
            &claims(overrides),
            NOW * 1000,
        )
    }

    #[test]
    fn a_valid_token_is_remembered_until_iat_plus_five_minutes_or_exp() {
        let token = check(json!({})).expect("valid");
        assert_eq!(
            (token.sid.as_deref(), token.sub.as_deref()),
            (Some("s1"), Some("auth0|1"))
        );
        assert_eq!(token.accept_until_ms, (NOW + 290) * 1000);
        let token = check(json!({"exp": NOW + 20})).expect("valid");
        assert_eq!(token.accept_until_ms, (NOW + 80) * 1000);
        assert!(check(json!({"sid": null})).is_ok(), "sub alone");
        assert!(check(json!({"sub": null})).is_ok(), "sid alone");
    }

    #[test]
    fn each_rule_refuses_its_token() {
        let refused = |overrides: Value| check(overrides).err().map(|e| e.to_string());
        let cases = [
            (json!({"iat": NOW - 301}), "more than 5 minutes"),
            (json!({"iat": NOW + 61}), "in the future"),
            (json!({"iat": "yesterday"}), "`iat`"),
            (json!({"iat": null}), "`iat`"),
            (json!({"events": null}), "events"),
            (json!({"events": {"other": {}}}), "events"),
            (json!({"events": {BACKCHANNEL_EVENT: "yes"}}), "events"),
            (json!({"nonce": "n"}), "nonce"),
            (json!({"sid": null, "sub": null}), "neither a sid nor a sub"),
            (json!({"sid": 5}), "`sid`"),
            (json!({"jti": null}), "`jti`"),
            (json!({"jti": ""}), "`jti`"),
        ];
        for (overrides, expected) in cases {
            let message = refused(overrides.clone()).unwrap_or_default();
            assert!(
                message.contains(expected),
                "{overrides}: {message:?} should name {expected:?}"
            );
        }
    }
}
