//! The records the store keeps ([`Session`], [`StateRecord`], [`JobRecord`]) and the small types
//! they are made of ([`SessionId`], [`TokenHash`]; time is the clock's [`Timestamp`]). Every
//! backend stores them as JSON, so a record written by one backend version reads the same on
//! Redis and on sled.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngExt as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

pub use crate::clock::Timestamp;

/// An opaque session id: 256 random bits, base64url without padding (43 characters). It is the
/// `sid` cookie's value, so it is a credential: its `Debug` shows only a prefix, and it has no
/// `Display` to keep it out of log lines by accident.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SessionId(String);

/// The error of [`SessionId::parse`]: anything that is not 43 base64url characters for 32 bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a session id: expected 43 base64url characters")]
pub struct InvalidSessionId;

impl SessionId {
    const BYTES: usize = 32;
    const CHARS: usize = 43;

    /// A fresh id from the thread-local CSPRNG.
    pub fn generate() -> Self {
        let bytes: [u8; Self::BYTES] = rand::rng().random();
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Accepts exactly the canonical encoding of 32 bytes, so a cookie value that parses names
    /// at most one store key and nothing else reaches the store.
    pub fn parse(value: &str) -> Result<Self, InvalidSessionId> {
        if value.len() != Self::CHARS {
            return Err(InvalidSessionId);
        }
        // The default engine rejects non-zero trailing bits: one encoding per id.
        match URL_SAFE_NO_PAD.decode(value) {
            Ok(bytes) if bytes.len() == Self::BYTES => Ok(Self(value.to_owned())),
            _ => Err(InvalidSessionId),
        }
    }

    /// The id as sent in the cookie.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({}…)", self.0.get(..6).unwrap_or_default())
    }
}

impl TryFrom<String> for SessionId {
    type Error = InvalidSessionId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<SessionId> for String {
    fn from(id: SessionId) -> Self {
        id.0
    }
}

/// SHA-256 of a token, lowercase hex (64 characters): how a token is named in store keys, so no
/// key ever holds a token in clear. Hex rather than base64url so keys read plainly in `redis-cli`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenHash(String);

impl TokenHash {
    pub fn of(token: &str) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let digest = Sha256::digest(token.as_bytes());
        let mut hex = String::with_capacity(64);
        for byte in digest.iter() {
            hex.push(char::from(HEX[usize::from(byte >> 4)]));
            hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        Self(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A verified ID token and its claims, as the token endpoint and the verifier hand them over.
#[derive(Clone)]
pub struct IdToken {
    pub token: String,
    pub claims: Map<String, Value>,
}

/// What a login (password grant or code exchange) obtained; [`Session::new`] turns it into a session.
#[derive(Clone)]
pub struct IssuedTokens {
    pub access_token: String,
    pub access_expires_at: Timestamp,
    pub refresh_token: Option<String>,
    pub id_token: IdToken,
}

/// What a `refresh_token` grant obtained; [`Session::apply_refresh`] folds it into the session.
#[derive(Clone)]
pub struct RefreshedTokens {
    pub access_token: String,
    pub access_expires_at: Timestamp,
    /// `None` when the client does not rotate refresh tokens: the current one is kept.
    pub refresh_token: Option<String>,
    /// `None` when Auth0 sent no new ID token: the current token and claims are kept.
    pub id_token: Option<IdToken>,
}

/// A refresh token a rotation replaced, kept (hashed) so a client still holding it is answered
/// with the session's current tokens instead of being stranded (SPEC §5).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotatedRefreshToken {
    pub hash: TokenHash,
    pub rotated_at: Timestamp,
    /// The hash of the access token that was current when this refresh token was rotated (the
    /// one issued beside it): an alias the session keeps while it keeps this record (SPEC §7).
    /// `None` in records written before aliases were paired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_alias: Option<TokenHash>,
}

/// How many superseded refresh tokens a session keeps (SPEC §5); an older one is 401.
pub const KEPT_REFRESH_TOKENS: usize = 16;

/// How many access-token aliases a session keeps, the current one included (SPEC §7: at most 16
/// in all), the oldest dropped first. The current alias and those paired with the newest 15 kept
/// superseded refresh tokens ([`RotatedRefreshToken::access_alias`]) are dropped last; the oldest
/// kept refresh token is still answered with any other access token of the session (SPEC §5).
pub const KEPT_ALIASES: usize = 16;

/// How a presented refresh token relates to a session ([`Session::check_refresh_token`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshTokenMatch {
    /// The session's current refresh token: the only one that calls Auth0.
    Current,
    /// One the session issued and later rotated (one of the last [`KEPT_REFRESH_TOKENS`]): the
    /// client missed a rotation (a concurrent caller, or a transparent refresh by `/userinfo`) and
    /// gets the current tokens without an Auth0 call.
    Superseded,
    /// Neither: 401, the session is kept.
    Unknown,
}

/// A server-side session (SPEC §7). Tokens are in the record (they are answered to clients) but
/// never in a key: the store indexes the session under the [`TokenHash`] of each access token it
/// issued and still keeps ([`Session::token_aliases`], bounded by [`KEPT_ALIASES`]).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub id: SessionId,
    /// The client type (a key of `clients`) that logged the user in.
    pub client: String,
    pub sub: String,
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub id_token: String,
    /// The verified ID-token claims, as `/userinfo` shapes them.
    pub claims: Map<String, Value>,
    pub access_expires_at: Timestamp,
    /// Login, or the last explicit `/refreshtoken`, plus `SESSION_DURATION_SECONDS`. Past it the
    /// session is never returned, and the sweeper removes it.
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
    /// Hashes of the access tokens the session answers to, the current one last, oldest first.
    /// Each is an index entry of the session, so a Bearer client holding a token from just
    /// before a rotation still finds the session. Capped at [`KEPT_ALIASES`] (SPEC §7: the current
    /// one plus those paired with the kept refresh tokens always, then the newest others), the
    /// oldest dropped, so a session refreshed every second for a day costs each write what a
    /// fresh one does.
    pub token_aliases: Vec<TokenHash>,
    /// The refresh tokens rotations replaced, oldest first, at most [`KEPT_REFRESH_TOKENS`].
    #[serde(default)]
    pub superseded_refresh_tokens: Vec<RotatedRefreshToken>,
    /// When the tokens were last refreshed (rotated or not): a cookie refresh within
    /// `sessions.refreshGraceSeconds` of it gets the current tokens without an Auth0 call.
    #[serde(default)]
    pub refreshed_at: Option<Timestamp>,
    /// Bumped by the store on every write: writes are compare-and-swap on it, so a writer holding
    /// an older copy can never put back what a newer write replaced.
    #[serde(default)]
    pub revision: u64,
    /// The hash ([`super::auth0_session::Auth0SessionHash`]) of the Auth0 session id (the `sid`
    /// claim of the login's ID token), when the login had one: the store indexes the session
    /// under it, so a back-channel logout finds it (SPEC §5). Set at login and never changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth0_session: Option<super::auth0_session::Auth0SessionHash>,
}

impl Session {
    /// A new session with a fresh id; it expires at `expires_at` (now + `SESSION_DURATION_SECONDS`).
    pub fn new(
        client: impl Into<String>,
        sub: impl Into<String>,
        tokens: IssuedTokens,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Self {
        Self {
            id: SessionId::generate(),
            client: client.into(),
            sub: sub.into(),
            auth0_session: super::auth0_session::Auth0SessionHash::of_claims(
                &tokens.id_token.claims,
            ),
            token_aliases: vec![TokenHash::of(&tokens.access_token)],
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            id_token: tokens.id_token.token,
            claims: tokens.id_token.claims,
            access_expires_at: tokens.access_expires_at,
            expires_at,
            created_at: now,
            superseded_refresh_tokens: Vec::new(),
            refreshed_at: None,
            revision: 0,
        }
    }

    /// Whether the session is still valid at `now`; the store never returns one that is not.
    pub fn is_live(&self, now: Timestamp) -> bool {
        now < self.expires_at
    }

    /// Whether the access token has expired at `now` (then `/userinfo` refreshes it).
    pub fn access_expired(&self, now: Timestamp) -> bool {
        now >= self.access_expires_at
    }

    /// Every hash the store must index for this session: the recorded aliases and, whatever a
    /// caller did to the fields, the current access token's.
    pub fn alias_hashes(&self) -> Vec<TokenHash> {
        let mut hashes = self.token_aliases.clone();
        // Empty in a sealed record (`super::sealed`): its aliases are already complete.
        if self.access_token.is_empty() {
            return hashes;
        }
        let current = TokenHash::of(&self.access_token);
        if !hashes.contains(&current) {
            hashes.push(current);
        }
        hashes
    }

    /// Folds a refresh grant's answer into the session: the new access token becomes current and
    /// one more alias; a rotated refresh token joins the superseded ones (hashed, the last
    /// [`KEPT_REFRESH_TOKENS`]). `expires_at` is left alone: an explicit `/refreshtoken` extends it,
    /// a transparent refresh does not. Then the owner writes it with
    /// [`super::SessionStore::replace_session`].
    pub fn apply_refresh(&mut self, tokens: RefreshedTokens, now: Timestamp) {
        let hash = TokenHash::of(&tokens.access_token);
        // The access token current until now: paired with the refresh token this rotates away.
        let previous_alias =
            (!self.access_token.is_empty()).then(|| TokenHash::of(&self.access_token));
        if !self.token_aliases.contains(&hash) {
            self.token_aliases.push(hash);
        }
        self.access_token = tokens.access_token;
        self.access_expires_at = tokens.access_expires_at;
        self.refreshed_at = Some(now);
        if let Some(new) = tokens.refresh_token
            && self.refresh_token.as_deref() != Some(new.as_str())
        {
            if let Some(previous) = self.refresh_token.as_deref() {
                self.superseded_refresh_tokens.push(RotatedRefreshToken {
                    hash: TokenHash::of(previous),
                    rotated_at: now,
                    access_alias: previous_alias,
                });
                let excess = self
                    .superseded_refresh_tokens
                    .len()
                    .saturating_sub(KEPT_REFRESH_TOKENS);
                self.superseded_refresh_tokens.drain(..excess);
            }
            self.refresh_token = Some(new);
        }
        if let Some(id_token) = tokens.id_token {
            self.id_token = id_token.token;
            self.claims = id_token.claims;
        }
        self.prune_aliases();
    }

    /// Drops aliases beyond [`KEPT_ALIASES`], oldest first, never the current one nor one paired
    /// with one of the newest `KEPT_ALIASES - 1` kept superseded refresh tokens.
    fn prune_aliases(&mut self) {
        let current = TokenHash::of(&self.access_token);
        let superseded = &self.superseded_refresh_tokens;
        let paired = &superseded[superseded.len().saturating_sub(KEPT_ALIASES - 1)..];
        let required = |hash: &TokenHash| {
            *hash == current
                || paired
                    .iter()
                    .any(|old| old.access_alias.as_ref() == Some(hash))
        };
        let needed = self.token_aliases.iter().filter(|h| required(h)).count();
        let mut room = KEPT_ALIASES.saturating_sub(needed);
        let mut keep = vec![false; self.token_aliases.len()];
        for (at, hash) in self.token_aliases.iter().enumerate().rev() {
            if required(hash) {
                keep[at] = true;
            } else if room > 0 {
                room -= 1;
                keep[at] = true;
            }
        }
        let mut keep = keep.into_iter();
        self.token_aliases.retain(|_| keep.next().unwrap_or(true));
    }

    /// Compares a presented refresh token with the current one and the superseded ones. Hashes
    /// are compared, so the time taken says nothing about the stored token.
    pub fn check_refresh_token(&self, presented: &str) -> RefreshTokenMatch {
        let presented = TokenHash::of(presented);
        if self
            .refresh_token
            .as_deref()
            .is_some_and(|current| TokenHash::of(current) == presented)
        {
            return RefreshTokenMatch::Current;
        }
        if self
            .superseded_refresh_tokens
            .iter()
            .any(|old| old.hash == presented)
        {
            return RefreshTokenMatch::Superseded;
        }
        RefreshTokenMatch::Unknown
    }

    /// When the refresh token was last rotated, if ever.
    pub fn last_rotated_at(&self) -> Option<Timestamp> {
        self.superseded_refresh_tokens.last().map(|r| r.rotated_at)
    }

    /// Whether the current refresh token hashes to `hash` (an idempotent retry of a save).
    pub fn refresh_token_is(&self, hash: Option<&TokenHash>) -> bool {
        self.refresh_token.as_deref().map(TokenHash::of).as_ref() == hash
    }
}

/// Tokens are left out, so a session can be logged whole.
impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("client", &self.client)
            .field("sub", &self.sub)
            .field("access_expires_at", &self.access_expires_at)
            .field("expires_at", &self.expires_at)
            .field("created_at", &self.created_at)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .field("token_aliases", &self.token_aliases.len())
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}

/// What `/authorize` remembers for `/oauth/token` or `/oauth/callback`: single use, short lived,
/// and only what the code exchange needs, each part bounded (the route checks the caller's
/// `state` and `redirect`; the rest is the daemon's own), so a record stays well under 4 KiB.
/// Records written by earlier versions also held the connection: it is ignored when read.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRecord {
    /// The `state` parameter: the record's key.
    pub state: String,
    /// The client type it was issued for (a key of `clients`).
    pub client: String,
    /// An already validated relative redirect.
    pub redirect: Option<String>,
    pub pkce_verifier: String,
    pub nonce: String,
    /// SHA-256 of the login-binding cookie's secret, base64url: the browser that started the
    /// login presents the secret. Empty in a record of an earlier version (no browser matches).
    #[serde(default)]
    pub binding: String,
    pub expires_at: Timestamp,
}

impl StateRecord {
    pub fn is_live(&self, now: Timestamp) -> bool {
        now < self.expires_at
    }
}

/// The PKCE verifier is left out.
impl fmt::Debug for StateRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateRecord")
            .field("state", &self.state)
            .field("client", &self.client)
            .field("redirect", &self.redirect)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Whether a job record is one Auth0 import job or a batch of parts the daemon submits itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    Job,
    Batch,
}

/// A job's last known status. `Expired` is also the daemon's verdict on a job Auth0 forgot
/// before it finished (SPEC §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Pending,
    Processing,
    Completed,
    Failed,
    Expired,
}

impl JobStatus {
    /// Completed, failed or expired: no longer polled, and dropped after `jobs.retentionDays`.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Expired)
    }
}

/// An import job or batch submitted through this store (SPEC §6).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Auth0's `job_…` id, or `batch_…` for a batch.
    pub id: String,
    pub kind: JobKind,
    pub status: JobStatus,
    /// The connection name the users were imported into.
    pub connection: String,
    /// When the job was submitted: the order of `GET /users/import/jobs` and its `before` cursor.
    pub created_at: Timestamp,
    /// When the record last changed; for a final record, when it finished (retention counts from it).
    pub updated_at: Timestamp,
    /// Auth0's `summary` once known.
    #[serde(default)]
    pub summary: Option<Value>,
    /// Auth0's per-user errors once known (when any user failed).
    #[serde(default)]
    pub errors: Option<Value>,
    /// Whatever else the jobs actor keeps (a batch's parts, Auth0's last body): opaque to the store.
    /// Small: a batch's users are part records of their own ([`JobStore::put_job_part`]).
    ///
    /// [`JobStore::put_job_part`]: super::JobStore::put_job_part
    #[serde(default)]
    pub detail: Value,
    /// Bumped by every [`JobStore::replace_job`](super::JobStore::replace_job), which writes only
    /// over this revision (compare-and-swap, as sessions are).
    #[serde(default)]
    pub revision: u64,
}

/// The address of one part's users ([`JobStore::put_job_part`](super::JobStore::put_job_part)):
/// the batch's id and the part's 1-based number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobPart<'a> {
    pub job_id: &'a str,
    pub number: u32,
}

impl<'a> JobPart<'a> {
    pub fn new(job_id: &'a str, number: u32) -> Self {
        Self { job_id, number }
    }
}

/// Where a page of [`JobStore::list_jobs`](super::JobStore::list_jobs) ends (SPEC §6
/// `before`): the last listed record's `created_at` and id. The listing is ordered by
/// `(created_at, id)` descending, and the next page starts strictly after the cursor in that
/// order, so records created in the same millisecond are never skipped. Without an `id` (a bare
/// `created_at`, still accepted) it starts at the records created strictly before `created_at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobCursor {
    pub created_at: Timestamp,
    pub id: Option<String>,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn tokens(access: &str, refresh: Option<&str>) -> IssuedTokens {
        IssuedTokens {
            access_token: access.into(),
            access_expires_at: Timestamp::from_millis(1_000),
            refresh_token: refresh.map(Into::into),
            id_token: IdToken {
                token: "id".into(),
                claims: Map::new(),
            },
        }
    }

    #[test]
    fn session_ids_are_43_url_safe_characters_and_parse_back() {
        let id = SessionId::generate();
        assert_eq!(id.as_str().len(), 43);
        assert_eq!(SessionId::parse(id.as_str()), Ok(id.clone()));
        assert_ne!(SessionId::generate(), id);
    }

    #[test]
    fn session_id_parse_rejects_everything_else() {
        let id = SessionId::generate();
        let padded = format!("{}=", id.as_str());
        let standard = id.as_str().replace(['-', '_'], "+");
        let bad = [
            "",
            "abc",
            padded.as_str(),
            &id.as_str()[..42],
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.",
            // Non-zero trailing bits: a second spelling of some id.
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB",
        ];
        for value in bad {
            assert_eq!(SessionId::parse(value), Err(InvalidSessionId), "{value:?}");
        }
        if standard != id.as_str() {
            assert!(SessionId::parse(&standard).is_err());
        }
        assert!(SessionId::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").is_ok());
    }

    #[test]
    fn session_ids_deserialize_through_parse() {
        let id = SessionId::generate();
        let json = serde_json::to_string(&id).expect("encodes");
        assert_eq!(serde_json::from_str::<SessionId>(&json).ok(), Some(id));
        assert!(serde_json::from_str::<SessionId>("\"not-an-id\"").is_err());
    }

    #[test]
    fn session_id_debug_shows_a_prefix_only() {
        let id = SessionId::generate();
        let shown = format!("{id:?}");
        assert!(!shown.contains(id.as_str()));
    }

    #[test]
    fn token_hash_is_sha256_hex() {
        assert_eq!(
            TokenHash::of("abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    fn rotate(session: &mut Session, access: &str, refresh: &str, now: Timestamp) {
        session.apply_refresh(
            RefreshedTokens {
                access_token: access.into(),
                access_expires_at: Timestamp::from_millis(2_000),
                refresh_token: Some(refresh.into()),
                id_token: None,
            },
            now,
        );
    }

    #[test]
    fn refresh_keeps_aliases_and_the_last_16_superseded_refresh_tokens() {
        let now = Timestamp::from_millis(10_000);
        let mut session = Session::new(
            "web",
            "auth0|1",
            tokens("a1", Some("r1")),
            now.saturating_add(Duration::from_secs(60)),
            now,
        );
        assert_eq!(session.last_rotated_at(), None);
        rotate(&mut session, "a2", "r2", now);
        assert_eq!(
            session.token_aliases,
            vec![TokenHash::of("a1"), TokenHash::of("a2")]
        );
        assert_eq!(session.refresh_token.as_deref(), Some("r2"));
        assert_eq!(session.last_rotated_at(), Some(now));
        assert_eq!(
            session.check_refresh_token("r2"),
            RefreshTokenMatch::Current
        );
        assert_eq!(
            session.check_refresh_token("r1"),
            RefreshTokenMatch::Superseded
        );
        assert_eq!(
            session.check_refresh_token("r0"),
            RefreshTokenMatch::Unknown
        );

        for i in 3..=20 {
            rotate(&mut session, &format!("a{i}"), &format!("r{i}"), now);
        }
        assert_eq!(session.superseded_refresh_tokens.len(), KEPT_REFRESH_TOKENS);
        // r20 is current; r4..=r19 are the 16 kept; r1..=r3 are gone.
        assert_eq!(
            session.check_refresh_token("r20"),
            RefreshTokenMatch::Current
        );
        assert_eq!(
            session.check_refresh_token("r4"),
            RefreshTokenMatch::Superseded
        );
        assert_eq!(
            session.check_refresh_token("r3"),
            RefreshTokenMatch::Unknown
        );
        assert!(session.refresh_token_is(Some(&TokenHash::of("r20"))));
        assert!(!session.refresh_token_is(Some(&TokenHash::of("r19"))));
    }

    #[test]
    fn rotations_keep_the_current_alias_and_those_paired_with_kept_refresh_tokens() {
        let now = Timestamp::from_millis(10_000);
        let mut session = Session::new("web", "s", tokens("a1", Some("r1")), now, now);
        for i in 2..=1_000 {
            rotate(&mut session, &format!("a{i}"), &format!("r{i}"), now);
        }
        // r984..=r999 are kept, each paired with the access token issued beside it; the aliases
        // of the newest 15 (a985..=a999) and the current one stay: 16 in all.
        let kept: Vec<TokenHash> = (985..=1_000)
            .map(|i| TokenHash::of(&format!("a{i}")))
            .collect();
        assert_eq!(session.token_aliases, kept, "15 paired + the current one");
        assert_eq!(session.token_aliases.len(), KEPT_ALIASES);
        assert_eq!(
            session.superseded_refresh_tokens[0].access_alias,
            Some(TokenHash::of("a984"))
        );
        assert_eq!(
            session.check_refresh_token("r984"),
            RefreshTokenMatch::Superseded
        );
    }

    #[test]
    fn non_rotating_refreshes_keep_the_newest_16_aliases() {
        let now = Timestamp::from_millis(0);
        let mut session = Session::new("web", "s", tokens("a1", Some("r1")), now, now);
        for i in 2..=40 {
            session.apply_refresh(
                RefreshedTokens {
                    access_token: format!("a{i}"),
                    access_expires_at: now,
                    refresh_token: None,
                    id_token: None,
                },
                now,
            );
        }
        let newest: Vec<TokenHash> = (25..=40).map(|i| TokenHash::of(&format!("a{i}"))).collect();
        assert_eq!(session.token_aliases, newest);
        assert_eq!(session.alias_hashes().len(), KEPT_ALIASES);
    }

    #[test]
    fn a_non_rotating_refresh_keeps_the_refresh_token() {
        let now = Timestamp::from_millis(0);
        let mut session = Session::new("web", "s", tokens("a1", Some("r1")), now, now);
        session.apply_refresh(
            RefreshedTokens {
                access_token: "a2".into(),
                access_expires_at: now,
                refresh_token: None,
                id_token: None,
            },
            now,
        );
        assert_eq!(session.refresh_token.as_deref(), Some("r1"));
        assert!(session.superseded_refresh_tokens.is_empty());
    }

    #[test]
    fn session_debug_leaves_tokens_out() {
        let now = Timestamp::from_millis(0);
        let session = Session::new(
            "web",
            "s",
            tokens("secret-access", Some("secret-r")),
            now,
            now,
        );
        let shown = format!("{session:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn timestamps_convert_to_offset_date_times() {
        let at = Timestamp::from_millis(1_700_000_000_123);
        let converted = at.to_offset_datetime().expect("in range");
        assert_eq!(converted.unix_timestamp(), 1_700_000_000);
        assert_eq!(converted.millisecond(), 123);
        assert_eq!(Timestamp::from(converted), at);
    }
}
