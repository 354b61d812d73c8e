//! [`Secrets`]: what [`super::sealed`] seals of a session, and its bytes.
//!
//! Layout 2 (written since issue 24), the smallest that opens to the same session:
//! - a `0x02` byte, then each field as a LEB128 length and its bytes;
//! - the session id; the access token; a `0`/`1` byte and the refresh token; the ID token;
//! - each token as a kind byte: `1` a JWT kept as its three base64url parts decoded (a quarter
//!   smaller; only when encoding them again gives back the same text), `0` the text as it came;
//! - the claims: empty when they are the ID token's payload (as a login or refresh stores them),
//!   else their JSON.
//!
//! Layout 1 (a JSON object, so its first byte is `{`) is still read: sessions sealed before it
//! open as they did.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::SessionId;

const LAYOUT_2: u8 = 2;
const TEXT: u8 = 0;
const JWT: u8 = 1;

/// What is sealed of a session (no `Debug`: it holds the tokens).
#[derive(PartialEq, Deserialize)]
pub struct Secrets {
    pub id: SessionId,
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub id_token: String,
    pub claims: Map<String, Value>,
}

/// Bytes that are not a sealed session's.
#[derive(Debug)]
pub struct Undecodable;

impl Secrets {
    pub fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut out = Vec::with_capacity(
            16 + self.id.as_str().len()
                + self.access_token.len()
                + self.refresh_token.as_ref().map_or(0, String::len)
                + self.id_token.len(),
        );
        out.push(LAYOUT_2);
        put(&mut out, self.id.as_str().as_bytes());
        put_token(&mut out, &self.access_token);
        match &self.refresh_token {
            Some(token) => {
                out.push(1);
                put_token(&mut out, token);
            }
            None => out.push(0),
        }
        put_token(&mut out, &self.id_token);
        if payload(&self.id_token).as_ref() == Some(&self.claims) {
            put(&mut out, b"");
        } else {
            put(&mut out, &serde_json::to_vec(&self.claims)?);
        }
        Ok(out)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, Undecodable> {
        match bytes.first() {
            Some(b'{') => serde_json::from_slice(bytes).map_err(|_| Undecodable),
            Some(&LAYOUT_2) => {
                let mut input = Reader(&bytes[1..]);
                let id = SessionId::parse(input.text()?).map_err(|_| Undecodable)?;
                let access_token = input.token()?;
                let refresh_token = match input.byte()? {
                    0 => None,
                    1 => Some(input.token()?),
                    _ => return Err(Undecodable),
                };
                let id_token = input.token()?;
                let claims = match input.field()? {
                    [] => payload(&id_token).ok_or(Undecodable)?,
                    json => serde_json::from_slice(json).map_err(|_| Undecodable)?,
                };
                if !input.0.is_empty() {
                    return Err(Undecodable);
                }
                Ok(Self {
                    id,
                    access_token,
                    refresh_token,
                    id_token,
                    claims,
                })
            }
            _ => Err(Undecodable),
        }
    }
}

/// The claims of a JWT's payload, when it is one whose payload is a JSON object.
fn payload(token: &str) -> Option<Map<String, Value>> {
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

/// The bytes of `text` when it is base64url without padding that encodes back to the same text
/// (so that the bytes can stand for it), else `None`. Also the sled record's rule for its seal.
pub(crate) fn canonical_base64url(text: &str) -> Option<Vec<u8>> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    (URL_SAFE_NO_PAD.encode(&bytes) == text).then_some(bytes)
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut len = bytes.len();
    while len >= 0x80 {
        out.push((len as u8 & 0x7f) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(bytes);
}

fn put_token(out: &mut Vec<u8>, token: &str) {
    let parts: Vec<&str> = token.split('.').collect();
    let decoded: Option<Vec<Vec<u8>>> = (parts.len() == 3)
        .then(|| parts.iter().map(|part| canonical_base64url(part)).collect())
        .flatten();
    match decoded {
        Some(parts) => {
            out.push(JWT);
            for part in parts {
                put(out, &part);
            }
        }
        None => {
            out.push(TEXT);
            put(out, token.as_bytes());
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, Undecodable> {
        let (&first, rest) = self.0.split_first().ok_or(Undecodable)?;
        self.0 = rest;
        Ok(first)
    }

    fn field(&mut self) -> Result<&'a [u8], Undecodable> {
        let mut len = 0usize;
        for shift in (0..35).step_by(7) {
            let byte = self.byte()?;
            len |= usize::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                if len > self.0.len() {
                    return Err(Undecodable);
                }
                let (field, rest) = self.0.split_at(len);
                self.0 = rest;
                return Ok(field);
            }
        }
        Err(Undecodable)
    }

    fn text(&mut self) -> Result<&'a str, Undecodable> {
        std::str::from_utf8(self.field()?).map_err(|_| Undecodable)
    }

    fn token(&mut self) -> Result<String, Undecodable> {
        match self.byte()? {
            TEXT => Ok(self.text()?.to_owned()),
            JWT => {
                let parts = [self.field()?, self.field()?, self.field()?];
                Ok(parts.map(|part| URL_SAFE_NO_PAD.encode(part)).join("."))
            }
            _ => Err(Undecodable),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn jwt(claims: &Value) -> String {
        let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
        format!(
            "{}.{}.{}",
            part(&json!({"alg": "RS256", "kid": "k1"})),
            part(claims),
            URL_SAFE_NO_PAD.encode([7u8; 256])
        )
    }

    fn secrets(claims: Map<String, Value>, id_token: String) -> Secrets {
        Secrets {
            id: SessionId::generate(),
            access_token: jwt(&json!({"sub": "auth0|1", "scope": "openid"})),
            refresh_token: Some("v1.MRrT2opaque-refresh".into()),
            id_token,
            claims,
        }
    }

    fn claims() -> Map<String, Value> {
        json!({"sub": "auth0|1", "email": "a@example.com", "email_verified": true, "n": 1.5})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn a_login_s_secrets_round_trip_without_their_claims_twice() {
        let claims = claims();
        let with = secrets(claims.clone(), jwt(&Value::Object(claims.clone())));
        let bytes = with.encode().unwrap();
        assert!(Secrets::decode(&bytes).unwrap() == with);
        let json = serde_json::to_vec(&json!({
            "id": with.id, "access_token": with.access_token, "refresh_token": with.refresh_token,
            "id_token": with.id_token, "claims": with.claims,
        }))
        .unwrap();
        // The JSON of layout 1 holds the tokens as text and the claims twice.
        assert!(
            bytes.len() * 10 < json.len() * 7,
            "{} bytes against {} as JSON",
            bytes.len(),
            json.len()
        );
    }

    #[test]
    fn claims_that_differ_from_the_id_token_and_tokens_that_are_not_jwts_are_kept_as_they_are() {
        let mut changed = claims();
        changed.insert("name".into(), json!("New Name"));
        for (claims, id_token) in [
            (changed.clone(), jwt(&Value::Object(claims()))),
            (changed.clone(), "not-a-jwt".to_owned()),
            (Map::new(), "a.b.c".to_owned()),
            // Base64url that does not encode back to the same text (a non-zero trailing bit).
            (changed, "eyJ.eyJ9.AB".to_owned()),
        ] {
            let mut secrets = secrets(claims, id_token);
            secrets.access_token = "opaque".into();
            secrets.refresh_token = None;
            assert!(Secrets::decode(&secrets.encode().unwrap()).unwrap() == secrets);
        }
    }

    #[test]
    fn layout_1_json_is_still_read_and_damaged_bytes_are_refused() {
        let old = secrets(claims(), "opaque".into());
        let json = serde_json::to_vec(&json!({
            "id": old.id, "access_token": old.access_token, "refresh_token": old.refresh_token,
            "id_token": old.id_token, "claims": old.claims,
        }))
        .unwrap();
        assert!(Secrets::decode(&json).unwrap() == old);
        let bytes = old.encode().unwrap();
        for cut in [0, 1, 5, bytes.len() - 1] {
            assert!(Secrets::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Secrets::decode(&longer).is_err());
        assert!(Secrets::decode(&[9, 1, 2]).is_err());
    }
}
