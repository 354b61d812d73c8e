//! Sealing at rest (SPEC §7 "Nothing in the store is a usable credential", §3
//! `sessions.encryptionKeys`): a [`KeyRing`] of AES-256-GCM keys (aws-lc-rs) that seals and opens
//! arbitrary bytes, so every record kind can use it (sessions through [`super::sealed`], import
//! part payloads later).
//!
//! A sealed value is text: `s1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`. The key id is the
//! first 4 bytes (hex) of SHA-256 over a label and the key: it names the key without revealing it,
//! so a ring opens what any of its keys sealed (rotation), and a record names the key that sealed
//! it. The nonce is 12 random bytes per seal (a key seals far fewer than 2^32 records between
//! rotations). The caller's associated data binds a sealed value to where it is stored (a session's
//! key), so values cannot be swapped between records.
//!
//! Where the keys come from ([`KeyRing::from_settings`]), choices where the spec is silent:
//! - `sessions.encryptionKeys` set: the first seals, all open.
//! - sled, none set: `encryption.key` in the sled folder (base64, 0600), made at the first start.
//! - Redis, none set: one key per client, HKDF-SHA256 over its `clientSecret` with the info
//!   `auth0-client/seal/v1 ‖ clientId ‖ SESSION_SCOPE` (NUL-separated), so daemons sharing a config
//!   agree and the key is never stored beside the records.

use std::collections::HashMap;
use std::fmt;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngExt as _;
use secrecy::ExposeSecret as _;
use sha2::{Digest as _, Sha256};

use super::StoreError;
use crate::config::{Settings, StoreKind};

/// The owner whose key seals import parts (`managementClient`'s on Redis; see [`KeyRing::from_settings`]).
pub const PART_OWNER: &str = "managementClient";

/// The version tag every sealed value starts with.
const VERSION: &str = "s1";
/// The key file made in the sled folder when no key is configured.
pub const KEY_FILE: &str = "encryption.key";

/// One AES-256-GCM key and its id.
struct Key {
    id: String,
    aead: LessSafeKey,
}

impl Key {
    fn new(bytes: &[u8; 32]) -> Result<Self, StoreError> {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| StoreError::Invalid("an encryption key was refused".into()))?;
        let digest = Sha256::new()
            .chain_update(b"auth0-client key id\0")
            .chain_update(bytes)
            .finalize();
        let id = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self {
            id,
            aead: LessSafeKey::new(unbound),
        })
    }
}

/// Which key seals.
enum Sealing {
    /// One key for every record.
    Shared(Arc<Key>),
    /// A key per owner (the client type of a session, on Redis without configured keys); an
    /// owner without one seals with `fallback`.
    PerOwner {
        keys: HashMap<String, Arc<Key>>,
        fallback: Arc<Key>,
    },
}

/// Why a sealed value could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unopenable {
    /// Not a sealed value at all (a record written before sealing existed).
    #[error("not a sealed value (written before sealing)")]
    NotSealed,
    /// Sealed under a key no longer in the ring.
    #[error("sealed with key {0}, which is not configured")]
    UnknownKey(String),
    /// The key is known but the value does not open (altered, or bound to another record).
    #[error("sealed with key {0} but does not open (altered or moved)")]
    Broken(String),
}

/// The keys that seal and open records.
pub struct KeyRing {
    sealing: Sealing,
    by_id: HashMap<String, Arc<Key>>,
    /// What the start-up line says about where the keys come from.
    source: String,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("keys", &self.by_id.keys().collect::<Vec<_>>())
            .field("source", &self.source)
            .finish()
    }
}

impl KeyRing {
    /// A ring of configured keys: the first seals, every one opens.
    pub fn from_keys(keys: &[[u8; 32]], source: impl Into<String>) -> Result<Self, StoreError> {
        let keys = keys
            .iter()
            .map(|k| Key::new(k).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let first = keys
            .first()
            .cloned()
            .ok_or_else(|| StoreError::Invalid("no encryption key".into()))?;
        let by_id = keys.iter().map(|k| (k.id.clone(), Arc::clone(k))).collect();
        Ok(Self {
            sealing: Sealing::Shared(first),
            by_id,
            source: source.into(),
        })
    }

    /// One key per owner, derived with HKDF-SHA256 from each owner's secret: `(owner, client id,
    /// secret)` each. `fallback_ikm` derives the key of an owner not in the list.
    pub fn per_owner<'a>(
        owners: impl IntoIterator<Item = (&'a str, &'a str, &'a [u8])>,
        scope: &str,
        source: impl Into<String>,
    ) -> Result<Self, StoreError> {
        let mut keys = HashMap::new();
        let mut by_id = HashMap::new();
        for (owner, client_id, secret) in owners {
            let key = Arc::new(Key::new(&derive(secret, client_id, scope)?)?);
            by_id.insert(key.id.clone(), Arc::clone(&key));
            keys.insert(owner.to_owned(), key);
        }
        // An owner without a secret of its own never happens in the daemon (a session's client is
        // a configured one); its records are sealed under a key derived from the scope alone.
        let fallback = Arc::new(Key::new(&derive(b"", "", scope)?)?);
        by_id.insert(fallback.id.clone(), Arc::clone(&fallback));
        Ok(Self {
            sealing: Sealing::PerOwner { keys, fallback },
            by_id,
            source: source.into(),
        })
    }

    /// The ring SPEC §3 describes for these settings (see the module docs); `sled_folder` is
    /// where a generated key file lives (sled only). Returns it with its start-up line.
    pub fn from_settings(settings: &Settings) -> Result<Self, StoreError> {
        let configured = &settings.sessions.encryption_keys;
        if !configured.is_empty() {
            let keys = configured
                .iter()
                .map(|k| decode_key(k.expose_secret()))
                .collect::<Result<Vec<_>, _>>()?;
            return Self::from_keys(
                &keys,
                format!(
                    "{} configured key(s) (sessions.encryptionKeys / SESSION_ENCRYPTION_KEYS)",
                    keys.len()
                ),
            );
        }
        match settings.sessions.store {
            StoreKind::Sled => {
                let path = settings.sessions.path.join(KEY_FILE);
                let key = key_file(&path)?;
                Self::from_keys(
                    &[key],
                    format!(
                        "the key file {} (a backup of the folder carries it: set SESSION_ENCRYPTION_KEYS instead)",
                        path.display()
                    ),
                )
            }
            StoreKind::Redis => {
                // Import parts are sealed under the management client's key (`Sealed`).
                let management = settings.management_client.iter().map(|m| {
                    (
                        PART_OWNER,
                        m.client_id.as_str(),
                        m.client_secret.expose_secret().as_bytes(),
                    )
                });
                let owners: Vec<(&str, &str, &[u8])> = settings
                    .clients
                    .iter()
                    .map(|(name, client)| {
                        (
                            name.as_str(),
                            client.client_id.as_str(),
                            client.client_secret.expose_secret().as_bytes(),
                        )
                    })
                    .chain(management)
                    .collect();
                Self::per_owner(
                    owners,
                    &settings.session_scope,
                    "a key per client derived from its clientSecret (rotating a client's secret ends that client's sessions)",
                )
            }
        }
    }

    /// Where the keys come from, for the start-up line.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Seals `plaintext` for `owner` (the client type of a session), bound to `aad`.
    pub fn seal(&self, owner: &str, aad: &[u8], plaintext: &[u8]) -> Result<String, StoreError> {
        let key = match &self.sealing {
            Sealing::Shared(key) => key,
            Sealing::PerOwner { keys, fallback } => keys.get(owner).unwrap_or(fallback),
        };
        let nonce: [u8; NONCE_LEN] = rand::rng().random();
        let mut in_out = plaintext.to_vec();
        key.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut in_out,
            )
            .map_err(|_| StoreError::Invalid("sealing a record failed".into()))?;
        let mut body = Vec::with_capacity(NONCE_LEN + in_out.len());
        body.extend_from_slice(&nonce);
        body.extend_from_slice(&in_out);
        Ok(format!(
            "{VERSION}.{}.{}",
            key.id,
            URL_SAFE_NO_PAD.encode(body)
        ))
    }

    /// Opens what [`Self::seal`] made with any key of the ring, bound to the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &str) -> Result<Vec<u8>, Unopenable> {
        let mut parts = sealed.splitn(3, '.');
        let (Some(VERSION), Some(id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(Unopenable::NotSealed);
        };
        let key = self
            .by_id
            .get(id)
            .ok_or_else(|| Unopenable::UnknownKey(id.to_owned()))?;
        let broken = || Unopenable::Broken(id.to_owned());
        let body = URL_SAFE_NO_PAD.decode(body).map_err(|_| broken())?;
        if body.len() < NONCE_LEN {
            return Err(broken());
        }
        let (nonce, ciphertext) = body.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| broken())?;
        let mut in_out = ciphertext.to_vec();
        let plain_len = key
            .aead
            .open_in_place(nonce, Aad::from(aad), &mut in_out)
            .map_err(|_| broken())?
            .len();
        in_out.truncate(plain_len);
        Ok(in_out)
    }
}

/// A key of `sessions.encryptionKeys` (checked by the config already).
fn decode_key(text: &str) -> Result<[u8; 32], StoreError> {
    STANDARD
        .decode(text.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| {
            StoreError::Invalid(
                "sessions.encryptionKeys: a key is not the base64 of 32 bytes".into(),
            )
        })
}

/// HKDF-SHA256 of `secret`, info `auth0-client/seal/v1 ‖ client id ‖ scope`.
fn derive(secret: &[u8], client_id: &str, scope: &str) -> Result<[u8; 32], StoreError> {
    let failed = |_| StoreError::Invalid("deriving an encryption key failed".into());
    let prk = Salt::new(HKDF_SHA256, b"auth0-client sessions").extract(secret);
    let info: [&[u8]; 5] = [
        b"auth0-client/seal/v1\0",
        client_id.as_bytes(),
        b"\0",
        scope.as_bytes(),
        b"\0",
    ];
    let okm = prk.expand(&info, HKDF_SHA256).map_err(failed)?;
    let mut key = [0; 32];
    okm.fill(&mut key).map_err(failed)?;
    Ok(key)
}

/// Reads the key file, or makes it (0600, never replacing one another process just made).
fn key_file(path: &Path) -> Result<[u8; 32], StoreError> {
    let unreadable = |e: std::io::Error| {
        StoreError::Invalid(format!(
            "the session encryption key file {} cannot be used: {e}",
            path.display()
        ))
    };
    match std::fs::read_to_string(path) {
        Ok(text) => decode_key(&text).map_err(|_| {
            StoreError::Invalid(format!(
                "the session encryption key file {} does not hold the base64 of 32 bytes",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(folder) = path.parent() {
                std::fs::create_dir_all(folder).map_err(unreadable)?;
            }
            let key: [u8; 32] = rand::rng().random();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(unreadable)?;
            writeln!(file, "{}", STANDARD.encode(key)).map_err(unreadable)?;
            file.sync_all().map_err(unreadable)?;
            tracing::info!(path = %path.display(), "made a session encryption key file");
            Ok(key)
        }
        Err(e) => Err(unreadable(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_with_the_same_aad_only_and_name_their_key() {
        let ring = KeyRing::from_keys(&[[7; 32]], "test").expect("ring");
        let sealed = ring
            .seal("web", b"record-1", b"secret token")
            .expect("seal");
        assert!(sealed.starts_with("s1."), "{sealed}");
        assert!(!sealed.contains("secret"));
        assert_eq!(
            ring.open(b"record-1", &sealed).as_deref(),
            Ok(&b"secret token"[..])
        );
        assert!(matches!(
            ring.open(b"record-2", &sealed),
            Err(Unopenable::Broken(_))
        ));
        assert_ne!(
            sealed,
            ring.seal("web", b"record-1", b"secret token")
                .expect("seal")
        );
        assert_eq!(ring.open(b"x", "{\"json\":1}"), Err(Unopenable::NotSealed));
    }

    #[test]
    fn rotation_opens_with_every_key_and_seals_with_the_first() {
        let old = KeyRing::from_keys(&[[1; 32]], "old").expect("ring");
        let sealed_old = old.seal("web", b"r", b"v").expect("seal");
        let rotated = KeyRing::from_keys(&[[2; 32], [1; 32]], "rotated").expect("ring");
        assert_eq!(rotated.open(b"r", &sealed_old).as_deref(), Ok(&b"v"[..]));
        let sealed_new = rotated.seal("web", b"r", b"v").expect("seal");
        assert!(matches!(
            old.open(b"r", &sealed_new),
            Err(Unopenable::UnknownKey(_))
        ));
        let dropped = KeyRing::from_keys(&[[2; 32]], "dropped").expect("ring");
        assert!(matches!(
            dropped.open(b"r", &sealed_old),
            Err(Unopenable::UnknownKey(_))
        ));
    }

    #[test]
    fn per_client_keys_differ_by_secret_client_and_scope_and_agree_across_daemons() {
        let a = KeyRing::per_owner(
            [("web", "id-1", &b"s1"[..]), ("app", "id-2", &b"s2"[..])],
            "",
            "t",
        )
        .expect("ring");
        let b = KeyRing::per_owner([("web", "id-1", &b"s1"[..])], "", "t").expect("ring");
        let sealed = a.seal("web", b"r", b"v").expect("seal");
        assert_eq!(
            b.open(b"r", &sealed).as_deref(),
            Ok(&b"v"[..]),
            "another daemon opens it"
        );
        let rotated = KeyRing::per_owner([("web", "id-1", &b"new"[..])], "", "t").expect("ring");
        assert!(
            rotated.open(b"r", &sealed).is_err(),
            "a new secret ends that client's records"
        );
        let other_scope =
            KeyRing::per_owner([("web", "id-1", &b"s1"[..])], "shop", "t").expect("ring");
        assert!(other_scope.open(b"r", &sealed).is_err());
        let app = a.seal("app", b"r", b"v").expect("seal");
        assert!(b.open(b"r", &app).is_err(), "each client its own key");
    }

    #[test]
    fn the_key_file_is_made_once_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join(KEY_FILE);
        let first = key_file(&path).expect("made");
        assert_eq!(key_file(&path).expect("read"), first);
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
