//! How a session record is kept in sled: its JSON without `id_token`, then `id_token` with its
//! base64url tail as bytes. Through [`crate::store::Sealed`], as the daemon uses the store,
//! `id_token` holds the seal (`s1.<key id>.<base64url>`, about three quarters of the record), so
//! this keeps a quarter of it off the disk; any other text is kept as it is.
//!
//! Layout: `0xB1`, the JSON's length (u32 LE), the JSON, then `1`, the prefix's length (u16 LE), the
//! prefix (up to the last `.`) and the tail's bytes; or `0` and the text (a tail that is not
//! canonical base64url, or none). A record that starts with `{` was written as JSON before this
//! envelope, and is read as such.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::store::secrets::canonical_base64url;
use crate::store::{Session, StoreError};

const ENVELOPE: u8 = 0xB1;
const TEXT: u8 = 0;
const TAIL_BYTES: u8 = 1;

pub(super) fn encode_session(session: &Session) -> Result<Vec<u8>, StoreError> {
    let mut head = session.clone();
    let id_token = std::mem::take(&mut head.id_token);
    let json = serde_json::to_vec(&head).map_err(|e| StoreError::unencodable("session", e))?;
    let json_len = u32::try_from(json.len())
        .map_err(|_| StoreError::Corrupt("a session record is over 4 GiB".into()))?;
    let mut out = Vec::with_capacity(json.len() + id_token.len() + 8);
    out.push(ENVELOPE);
    out.extend_from_slice(&json_len.to_le_bytes());
    out.extend_from_slice(&json);
    let split = id_token.rfind('.').map_or(0, |dot| dot + 1);
    let (prefix, tail) = id_token.split_at(split);
    let decoded = canonical_base64url(tail).filter(|bytes| !bytes.is_empty());
    match (decoded, u16::try_from(prefix.len())) {
        (Some(bytes), Ok(prefix_len)) => {
            out.push(TAIL_BYTES);
            out.extend_from_slice(&prefix_len.to_le_bytes());
            out.extend_from_slice(prefix.as_bytes());
            out.extend_from_slice(&bytes);
        }
        _ => {
            out.push(TEXT);
            out.extend_from_slice(id_token.as_bytes());
        }
    }
    Ok(out)
}

pub(super) fn decode_session(bytes: &[u8]) -> Result<Session, StoreError> {
    let broken = || StoreError::Corrupt("a stored session does not decode".into());
    match bytes.first() {
        Some(b'{') => {
            serde_json::from_slice(bytes).map_err(|e| StoreError::undecodable("session", e))
        }
        Some(&ENVELOPE) => {
            let len_bytes: [u8; 4] = bytes
                .get(1..5)
                .ok_or_else(broken)?
                .try_into()
                .map_err(|_| broken())?;
            let json_end = 5usize
                .checked_add(usize::try_from(u32::from_le_bytes(len_bytes)).map_err(|_| broken())?)
                .ok_or_else(broken)?;
            let json = bytes.get(5..json_end).ok_or_else(broken)?;
            let mut session: Session =
                serde_json::from_slice(json).map_err(|e| StoreError::undecodable("session", e))?;
            let rest = bytes.get(json_end..).ok_or_else(broken)?;
            session.id_token = match rest.split_first() {
                Some((&TEXT, text)) => std::str::from_utf8(text).map_err(|_| broken())?.to_owned(),
                Some((&TAIL_BYTES, rest)) => {
                    let prefix_len: [u8; 2] = rest
                        .get(..2)
                        .ok_or_else(broken)?
                        .try_into()
                        .map_err(|_| broken())?;
                    let prefix_end = 2 + usize::from(u16::from_le_bytes(prefix_len));
                    let prefix = rest.get(2..prefix_end).ok_or_else(broken)?;
                    let tail = rest.get(prefix_end..).ok_or_else(broken)?;
                    let prefix = std::str::from_utf8(prefix).map_err(|_| broken())?;
                    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(tail))
                }
                _ => return Err(broken()),
            };
            Ok(session)
        }
        _ => Err(broken()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use serde_json::{Map, json};

    use super::*;
    use crate::store::{IdToken, IssuedTokens, Timestamp};

    fn session(id_token: &str) -> Session {
        let now = Timestamp::now();
        let mut claims = Map::new();
        claims.insert("name".into(), json!("Ada"));
        Session::new(
            "api",
            "auth0|1",
            IssuedTokens {
                access_token: "at".into(),
                access_expires_at: now.saturating_add(Duration::from_secs(60)),
                refresh_token: Some("rt".into()),
                id_token: IdToken {
                    token: id_token.into(),
                    claims,
                },
            },
            now.saturating_add(Duration::from_secs(3600)),
            now,
        )
    }

    #[test]
    fn a_sealed_id_token_is_kept_as_bytes_and_everything_round_trips() {
        let seal = format!("s1.0a1b2c3d.{}", URL_SAFE_NO_PAD.encode([9u8; 1500]));
        for id_token in [
            seal.as_str(),
            "h.p.c2ln",
            "plain text",
            "",
            "a.b.",
            "trailing.AB",
            "é.x",
        ] {
            let session = session(id_token);
            let bytes = encode_session(&session).unwrap();
            assert_eq!(decode_session(&bytes).unwrap(), session, "{id_token:?}");
        }
        let sealed = session(&seal);
        let json = serde_json::to_vec(&sealed).unwrap();
        let bytes = encode_session(&sealed).unwrap();
        assert!(
            json.len() - bytes.len() > 450,
            "{} bytes against {} as JSON",
            bytes.len(),
            json.len()
        );
    }

    #[test]
    fn json_records_are_still_read_and_damaged_ones_are_refused() {
        let session = session("s1.00000000.AAAA");
        let json = serde_json::to_vec(&session).unwrap();
        assert_eq!(decode_session(&json).unwrap(), session);
        let bytes = encode_session(&session).unwrap();
        let kind_at = 5 + serde_json::to_vec(&Session {
            id_token: String::new(),
            ..session.clone()
        })
        .unwrap()
        .len();
        // (A cut inside the tail's bytes is not seen here: the seal's tag refuses it when opened.)
        for cut in [0, 1, 4, 5, 20, kind_at, kind_at + 2] {
            assert!(decode_session(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut wrong_kind = bytes.clone();
        wrong_kind[kind_at] = 7;
        assert!(decode_session(&wrong_kind).is_err());
        assert!(decode_session(&[0x42, 1, 2]).is_err());
    }
}
