//! Compact JWS (RS256, and HS256 for the ID tokens of a client seeded with `idTokenAlg: HS256`)
//! encoding and verification of the tokens this emulator issues.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};

use crate::keys::{KeyRing, SigningKey};

/// Signs `claims` with `key`: header `{"alg":"RS256","typ":"JWT","kid":...}` (wire reference §1.7).
pub fn sign(key: &SigningKey, claims: &Value) -> String {
    sign_payload(key, &claims.to_string())
}

/// Signs an already serialized claims object.
pub fn sign_payload(key: &SigningKey, payload: &str) -> String {
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": key.kid()});
    let mut token = String::with_capacity(1024);
    token.push_str(&URL_SAFE_NO_PAD.encode(header.to_string()));
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(payload));
    let signature = key.sign(token.as_bytes());
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature));
    token
}

/// Signs `claims` with HMAC-SHA256 under `secret` (a client's secret): header
/// `{"alg":"HS256","typ":"JWT"}`, no `kid`, as Auth0 signs an HS256 application's ID tokens.
pub fn sign_hs256(secret: &[u8], claims: &Value) -> String {
    let header = json!({"alg": "HS256", "typ": "JWT"});
    let mut token = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, token.as_bytes());
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(tag.as_ref()));
    token
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token is not a compact JWS")]
    Malformed,
    #[error("the token's kid is not one of this tenant's keys")]
    UnknownKey,
    #[error("the token's signature does not verify")]
    BadSignature,
}

/// Verifies an RS256 token against the published keys and returns its claims (no time checks).
pub fn verify(keys: &KeyRing, token: &str) -> Result<Map<String, Value>, JwtError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let header: Value = decode_json(header)?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(JwtError::Malformed);
    }
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or(JwtError::Malformed)?;
    let key = keys.find(kid).ok_or(JwtError::UnknownKey)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| JwtError::Malformed)?;
    let signed_len = header_len(token, payload);
    if !key.verify(&token.as_bytes()[..signed_len], &signature) {
        return Err(JwtError::BadSignature);
    }
    match decode_json(payload)? {
        Value::Object(claims) => Ok(claims),
        _ => Err(JwtError::Malformed),
    }
}

/// Length of `header.payload`, the signed part of the token.
fn header_len(token: &str, payload: &str) -> usize {
    token.find('.').map_or(0, |dot| dot + 1 + payload.len())
}

fn decode_json(part: &str) -> Result<Value, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)
}

/// The claims of a token, unverified (for tests and the request log).
pub fn decode_unverified(token: &str) -> Option<Map<String, Value>> {
    let payload = token.split('.').nth(1)?;
    match decode_json(payload).ok()? {
        Value::Object(claims) => Some(claims),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hs256_is_an_hmac_of_header_and_payload_with_the_secret() {
        let token = sign_hs256(b"secret", &json!({"sub": "auth0|1"}));
        let (signed, signature) = token.rsplit_once('.').expect("three parts");
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, b"secret");
        let signature = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
        assert!(aws_lc_rs::hmac::verify(&key, signed.as_bytes(), &signature).is_ok());
        let header = decode_json(signed.split('.').next().expect("header")).expect("json");
        assert_eq!(header, json!({"alg": "HS256", "typ": "JWT"}));
        assert_eq!(decode_unverified(&token).expect("claims")["sub"], "auth0|1");
    }

    #[test]
    fn round_trip_and_tampering() {
        let ring = KeyRing::new();
        let token = sign(&ring.current(), &json!({"sub": "auth0|1", "exp": 10}));
        let claims = verify(&ring, &token).expect("verifies");
        assert_eq!(claims["sub"], "auth0|1");
        let mut tampered = token.clone();
        tampered.replace_range(token.len() - 5.., "AAAAA");
        assert_eq!(verify(&ring, &tampered), Err(JwtError::BadSignature));
        assert_eq!(verify(&ring, "a.b"), Err(JwtError::Malformed));
        let other = KeyRing::new();
        assert_eq!(verify(&other, &token), Err(JwtError::UnknownKey));
        assert_eq!(
            decode_unverified(&token).map(|c| c["exp"].clone()),
            Some(json!(10))
        );
        crate::keys::give_back(ring.into_all());
        crate::keys::give_back(other.into_all());
    }
}
