//! RS256 signing keys: a per-process pool of RSA key pairs, each lent to one running emulator at a time,
//! and the per-instance key ring (current key first) behind the JWKS and every signed token.
//!
//! RSA generation is slow (tens to hundreds of milliseconds, more in debug builds) and tests start many
//! emulators, so key pairs are generated once per process and recycled: an emulator takes keys from the
//! pool when it starts or rotates, and gives them back when its handle is dropped. A key is never held by
//! two running instances, so rotating one instance's key never affects another.

use std::sync::{Arc, Mutex, PoisonError};

use aws_lc_rs::{
    rand::SystemRandom,
    rsa::{KeyPair, KeySize},
    signature::{self, KeyPair as _, RSA_PKCS1_SHA256, UnparsedPublicKey},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// One RSA-2048 key pair with its JWK and a ready-made verifier.
pub struct SigningKey {
    kid: String,
    key_pair: KeyPair,
    public_der: Vec<u8>,
    jwk: Value,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    fn generate() -> Self {
        // Generation only fails when the crypto library is broken: nothing a request can cause.
        let key_pair =
            KeyPair::generate(KeySize::Rsa2048).expect("aws-lc-rs generates an RSA-2048 key pair");
        let public = key_pair.public_key();
        let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
        let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
        // The kid is the RFC 7638 JWK thumbprint: stable for the key, opaque like Auth0's.
        let thumbprint_input = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(thumbprint_input.as_bytes()));
        // x5c/x5t are left out: they need an X.509 certificate, and wire reference §6 item 4 makes them optional.
        let jwk = json!({"alg": "RS256", "kty": "RSA", "use": "sig", "n": n, "e": e, "kid": kid});
        let public_der = public.as_ref().to_vec();
        Self {
            kid,
            key_pair,
            public_der,
            jwk,
        }
    }

    /// The key id carried in every token header this key signs.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public JWK as served at `/.well-known/jwks.json`.
    pub fn jwk(&self) -> &Value {
        &self.jwk
    }

    /// RS256 (RSASSA-PKCS1-v1_5 with SHA-256) signature of `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let mut signature = vec![0; self.key_pair.public_modulus_len()];
        // Signing with a valid key into a buffer of the modulus length cannot fail.
        self.key_pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut signature,
            )
            .expect("RS256 signing with a generated key");
        signature
    }

    /// Whether `signature` is this key's RS256 signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &self.public_der)
            .verify(message, signature)
            .is_ok()
    }
}

/// Keys generated in this process and not lent to a running emulator.
static POOL: Mutex<Vec<Arc<SigningKey>>> = Mutex::new(Vec::new());

/// Takes a key no running emulator holds: a recycled one, else a freshly generated one.
pub fn take_key() -> Arc<SigningKey> {
    let recycled = POOL.lock().unwrap_or_else(PoisonError::into_inner).pop();
    recycled.unwrap_or_else(|| Arc::new(SigningKey::generate()))
}

/// Returns keys to the pool once their emulator has stopped.
pub fn give_back(keys: impl IntoIterator<Item = Arc<SigningKey>>) {
    POOL.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .extend(keys);
}

impl Default for KeyRing {
    /// A ring with one fresh key from the pool.
    fn default() -> Self {
        Self::new()
    }
}

/// One emulator's keys: the current signing key first, then the earlier ones still published in the JWKS.
#[derive(Debug)]
pub struct KeyRing {
    keys: Vec<Arc<SigningKey>>,
    /// Keys rotated out and no longer published: kept only to hand back to the pool.
    retired: Vec<Arc<SigningKey>>,
}

impl KeyRing {
    pub fn new() -> Self {
        Self {
            keys: vec![take_key()],
            retired: Vec::new(),
        }
    }

    /// A ring holding no key (what is left once the keys went back to the pool).
    pub fn empty() -> Self {
        Self {
            keys: Vec::new(),
            retired: Vec::new(),
        }
    }

    /// The key that signs new tokens.
    pub fn current(&self) -> Arc<SigningKey> {
        // Only an emulator whose keys went back to the pool has none; it signs with a throw-away key.
        self.keys
            .first()
            .cloned()
            .unwrap_or_else(|| Arc::new(SigningKey::generate()))
    }

    /// The published keys, current first.
    pub fn published(&self) -> &[Arc<SigningKey>] {
        &self.keys
    }

    pub fn find(&self, kid: &str) -> Option<&Arc<SigningKey>> {
        self.keys.iter().find(|key| key.kid == kid)
    }

    /// Makes a new key current. With `keep_previous`, the old keys stay in the JWKS (Auth0 keeps the previous
    /// key published until it is revoked), so tokens they signed still verify; without, they are unpublished.
    pub fn rotate(&mut self, keep_previous: bool) -> Arc<SigningKey> {
        let key = take_key();
        if !keep_previous {
            self.retired.append(&mut self.keys);
        }
        self.keys.insert(0, Arc::clone(&key));
        key
    }

    /// All keys, for the pool once the emulator is gone.
    pub fn into_all(self) -> Vec<Arc<SigningKey>> {
        let mut all = self.keys;
        all.extend(self.retired);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_verifies_with_its_key_only() {
        let mut ring = KeyRing::new();
        let first = ring.current();
        let signature = first.sign(b"payload");
        assert!(first.verify(b"payload", &signature));
        assert!(!first.verify(b"tampered", &signature));
        let second = ring.rotate(true);
        assert_ne!(first.kid(), second.kid());
        assert!(!second.verify(b"payload", &signature));
        assert_eq!(ring.published().len(), 2);
        assert_eq!(ring.current().kid(), second.kid());
        ring.rotate(false);
        assert_eq!(ring.published().len(), 1);
        give_back(ring.into_all());
    }
}
