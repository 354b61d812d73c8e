//! [`Sealed`]: the store every backend is used through, so that nothing a backend holds is a
//! usable credential (SPEC §7, DESIGN.md "Secrecy at rest"). Nothing above `store/` sees what it
//! stores.
//!
//! A session goes to the backend as a session whose
//! - id is the SHA-256 of the session id (base64url, the shape of an id, so backends key and index
//!   it as before): a key, a dump or `MONITOR` shows no cookie;
//! - access, refresh and ID tokens and claims are empty, and `id_token` holds instead the
//!   [`KeyRing`] seal of `{id, tokens, claims}` ([`super::secrets`]: the tokens in binary, the
//!   claims only when they are not the ID token's), bound to the hashed id and the client (a sealed
//!   value moved to another record does not open);
//! - aliases, sub, client, times and revision are as they were (hashes and metadata, which the
//!   backend indexes).
//!
//! Reading opens it again. A record that does not open is treated as absent: one sealed under a
//! key no longer configured, or altered, is counted in `auth0_client_store_unopenable_total`,
//! logged once and deleted; one written before sealing existed (SPEC §7: not read, the upgrade logs
//! users out once) is skipped and left to expire.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use prometheus::IntCounter;
use serde_json::Map;
use sha2::{Digest as _, Sha256};

use super::auth0_session::Auth0SessionHash;
use super::seal::{KeyRing, PART_OWNER, Unopenable};
use super::secrets::Secrets;
use super::{
    CasOutcome, JobCas, JobCursor, JobPart, JobRecord, JobStore, LeaseClaim, LeaseStore, Session,
    SessionId, SessionStore, StateRecord, StateStore, Store, StoreError, StoreFuture, SweepReport,
    Timestamp, TokenHash,
};

/// A backend seen through a [`KeyRing`].
pub struct Sealed {
    inner: Arc<dyn Store>,
    ring: Arc<KeyRing>,
    unopenable: IntCounter,
    warned_unopenable: AtomicBool,
    warned_unsealed: AtomicBool,
}

/// The key a session is stored under: SHA-256 of its id, base64url (43 characters, like an id).
pub fn stored_id(id: &SessionId) -> SessionId {
    let digest = Sha256::digest(id.as_str().as_bytes());
    SessionId::parse(&URL_SAFE_NO_PAD.encode(digest)).unwrap_or_else(|_| id.clone())
}

fn aad(stored: &SessionId, client: &str) -> Vec<u8> {
    [stored.as_str().as_bytes(), b"\0", client.as_bytes()].concat()
}

impl Sealed {
    pub fn new(inner: Arc<dyn Store>, ring: Arc<KeyRing>) -> Result<Self, prometheus::Error> {
        Ok(Self {
            inner,
            ring,
            unopenable: IntCounter::new(
                "auth0_client_store_unopenable_total",
                "Stored records no configured key opens (treated as absent and deleted).",
            )?,
            warned_unopenable: AtomicBool::new(false),
            warned_unsealed: AtomicBool::new(false),
        })
    }

    /// `auth0_client_store_unopenable_total`, for the registry.
    pub fn unopenable_metric(&self) -> IntCounter {
        self.unopenable.clone()
    }

    /// The backend, for tests that look at what it holds.
    pub fn backend(&self) -> &Arc<dyn Store> {
        &self.inner
    }

    fn seal(&self, session: &Session) -> Result<Session, StoreError> {
        let stored = stored_id(&session.id);
        let secrets = Secrets {
            id: session.id.clone(),
            access_token: session.access_token.clone(),
            refresh_token: session.refresh_token.clone(),
            id_token: session.id_token.clone(),
            claims: session.claims.clone(),
        };
        let plain = secrets
            .encode()
            .map_err(|e| StoreError::unencodable("session", e))?;
        let sealed = self
            .ring
            .seal(&session.client, &aad(&stored, &session.client), &plain)?;
        Ok(Session {
            id: stored,
            client: session.client.clone(),
            sub: session.sub.clone(),
            access_token: String::new(),
            refresh_token: None,
            id_token: sealed,
            claims: Map::new(),
            access_expires_at: session.access_expires_at,
            expires_at: session.expires_at,
            created_at: session.created_at,
            token_aliases: session.alias_hashes(),
            superseded_refresh_tokens: session.superseded_refresh_tokens.clone(),
            refreshed_at: session.refreshed_at,
            revision: session.revision,
            auth0_session: session.auth0_session.clone(),
        })
    }

    /// The session, or why not.
    fn try_open(&self, stored: &Session) -> Result<Session, Unopenable> {
        if !stored.access_token.is_empty() {
            return Err(Unopenable::NotSealed);
        }
        let plain = self
            .ring
            .open(&aad(&stored.id, &stored.client), &stored.id_token)?;
        let secrets = Secrets::decode(&plain).map_err(|_| Unopenable::Broken("?".into()))?;
        if stored_id(&secrets.id) != stored.id {
            return Err(Unopenable::Broken("?".into()));
        }
        Ok(Session {
            id: secrets.id,
            client: stored.client.clone(),
            sub: stored.sub.clone(),
            access_token: secrets.access_token,
            refresh_token: secrets.refresh_token,
            id_token: secrets.id_token,
            claims: secrets.claims,
            access_expires_at: stored.access_expires_at,
            expires_at: stored.expires_at,
            created_at: stored.created_at,
            token_aliases: stored.token_aliases.clone(),
            superseded_refresh_tokens: stored.superseded_refresh_tokens.clone(),
            refreshed_at: stored.refreshed_at,
            revision: stored.revision,
            auth0_session: stored.auth0_session.clone(),
        })
    }

    /// Opens a stored session; `None` (counted and logged once, or skipped as written before
    /// sealing) when it does not open. The second value: whether to delete it.
    fn open(&self, stored: &Session) -> (Option<Session>, bool) {
        match self.try_open(stored) {
            Ok(session) => (Some(session), false),
            Err(Unopenable::NotSealed) => {
                if !self.warned_unsealed.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "the store holds sessions written before sealing: they are not read (their users log in again once)"
                    );
                }
                (None, false)
            }
            Err(why) => {
                self.unopenable.inc();
                if !self.warned_unopenable.swap(true, Ordering::Relaxed) {
                    tracing::warn!(reason = %why, "a stored session does not open with the configured keys (sessions.encryptionKeys): treated as absent and deleted; auth0_client_store_unopenable_total counts them");
                }
                (None, true)
            }
        }
    }

    /// Opens every session, deleting those that do not open.
    async fn open_all(&self, stored: Vec<Session>) -> Vec<Session> {
        let mut sessions = Vec::with_capacity(stored.len());
        for record in stored {
            let (session, delete) = self.open(&record);
            if delete {
                let _ = self.inner.delete_session(&record.id).await;
            }
            sessions.extend(session);
        }
        sessions
    }

    async fn open_one(&self, stored: Option<Session>) -> Option<Session> {
        self.open_all(stored.into_iter().collect()).await.pop()
    }
}

impl SessionStore for Sealed {
    fn create_session<'a>(&'a self, session: &'a Session) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.inner.create_session(&self.seal(session)?).await })
    }

    fn get_session<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Session>> {
        Box::pin(async move {
            let stored = self.inner.get_session(&stored_id(id)).await?;
            Ok(self.open_one(stored).await)
        })
    }

    fn session_revision<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<u64>> {
        Box::pin(async move { self.inner.session_revision(&stored_id(id)).await })
    }

    fn sessions_by_token<'a>(&'a self, hash: &'a TokenHash) -> StoreFuture<'a, Vec<Session>> {
        Box::pin(async move {
            let stored = self.inner.sessions_by_token(hash).await?;
            Ok(self.open_all(stored).await)
        })
    }

    fn replace_session<'a>(&'a self, session: &'a Session) -> StoreFuture<'a, CasOutcome> {
        Box::pin(async move {
            let sealed = self.seal(session)?;
            Ok(match self.inner.replace_session(&sealed).await? {
                CasOutcome::Written(written) => {
                    let mut next = session.clone();
                    next.revision = written.revision;
                    next.token_aliases = written.token_aliases;
                    CasOutcome::Written(Box::new(next))
                }
                CasOutcome::Conflict(stored) => match self.open_one(Some(*stored)).await {
                    Some(current) => CasOutcome::Conflict(Box::new(current)),
                    None => CasOutcome::Gone,
                },
                CasOutcome::Gone => CasOutcome::Gone,
            })
        })
    }

    fn delete_session<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Session>> {
        Box::pin(async move {
            let removed = self.inner.delete_session(&stored_id(id)).await?;
            Ok(removed.and_then(|stored| self.open(&stored).0))
        })
    }

    fn sessions_of<'a>(&'a self, sub: &'a str) -> StoreFuture<'a, Vec<Session>> {
        Box::pin(async move {
            let stored = self.inner.sessions_of(sub).await?;
            Ok(self.open_all(stored).await)
        })
    }

    fn sessions_of_auth0_session<'a>(
        &'a self,
        hash: &'a Auth0SessionHash,
    ) -> StoreFuture<'a, Vec<Session>> {
        Box::pin(async move {
            let stored = self.inner.sessions_of_auth0_session(hash).await?;
            Ok(self.open_all(stored).await)
        })
    }

    fn delete_sessions_of<'a>(&'a self, sub: &'a str) -> StoreFuture<'a, Vec<Session>> {
        Box::pin(async move {
            let removed = self.inner.delete_sessions_of(sub).await?;
            Ok(removed.iter().filter_map(|s| self.open(s).0).collect())
        })
    }

    fn active_subs(&self) -> StoreFuture<'_, Vec<String>> {
        self.inner.active_subs()
    }

    fn count_live_sessions(&self) -> StoreFuture<'_, u64> {
        self.inner.count_live_sessions()
    }
}

impl StateStore for Sealed {
    fn put_state<'a>(&'a self, record: &'a StateRecord) -> StoreFuture<'a, bool> {
        self.inner.put_state(record)
    }
    fn take_state<'a>(&'a self, state: &'a str) -> StoreFuture<'a, Option<StateRecord>> {
        self.inner.take_state(state)
    }
    fn get_state<'a>(&'a self, state: &'a str) -> StoreFuture<'a, Option<StateRecord>> {
        self.inner.get_state(state)
    }
    fn take_state_if<'a>(&'a self, record: &'a StateRecord) -> StoreFuture<'a, bool> {
        self.inner.take_state_if(record)
    }
}

impl JobStore for Sealed {
    fn put_job<'a>(&'a self, job: &'a JobRecord) -> StoreFuture<'a, ()> {
        self.inner.put_job(job)
    }
    fn get_job<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<JobRecord>> {
        self.inner.get_job(id)
    }
    fn list_jobs<'a>(
        &'a self,
        limit: usize,
        before: Option<&'a JobCursor>,
    ) -> StoreFuture<'a, Vec<JobRecord>> {
        self.inner.list_jobs(limit, before)
    }
    fn unfinished_jobs(&self) -> StoreFuture<'_, Vec<JobRecord>> {
        self.inner.unfinished_jobs()
    }
    fn delete_finished_jobs(&self, finished_before: Timestamp) -> StoreFuture<'_, u64> {
        self.inner.delete_finished_jobs(finished_before)
    }
    fn replace_job<'a>(&'a self, job: &'a JobRecord) -> StoreFuture<'a, JobCas> {
        self.inner.replace_job(job)
    }
    /// A part's users (emails, password hashes) are sealed like a session's tokens, under the
    /// management client's key on Redis, bound to the batch and the part number.
    fn put_job_part<'a>(&'a self, part: JobPart<'a>, users: &'a [u8]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let sealed = self.ring.seal(PART_OWNER, &part_aad(part), users)?;
            self.inner.put_job_part(part, sealed.as_bytes()).await
        })
    }
    fn get_job_part<'a>(&'a self, part: JobPart<'a>) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let Some(stored) = self.inner.get_job_part(part).await? else {
                return Ok(None);
            };
            let opened = std::str::from_utf8(&stored)
                .map_err(|_| Unopenable::NotSealed)
                .and_then(|sealed| self.ring.open(&part_aad(part), sealed));
            match opened {
                Ok(users) => Ok(Some(users)),
                Err(why) => {
                    self.unopenable.inc();
                    let JobPart { job_id, number } = part;
                    Err(StoreError::Invalid(format!(
                        "the users of part {number} of {job_id} do not open: {why}"
                    )))
                }
            }
        })
    }
    fn delete_job_part<'a>(&'a self, part: JobPart<'a>) -> StoreFuture<'a, ()> {
        self.inner.delete_job_part(part)
    }
}

fn part_aad(JobPart { job_id, number }: JobPart<'_>) -> Vec<u8> {
    format!("part\0{job_id}\0{number}").into_bytes()
}

impl LeaseStore for Sealed {
    fn try_lease<'a>(&'a self, claim: LeaseClaim<'a>, ttl: Duration) -> StoreFuture<'a, bool> {
        self.inner.try_lease(claim, ttl)
    }
    fn release_lease<'a>(&'a self, claim: LeaseClaim<'a>) -> StoreFuture<'a, bool> {
        self.inner.release_lease(claim)
    }
}

impl Store for Sealed {
    fn sweep(&self) -> StoreFuture<'_, SweepReport> {
        self.inner.sweep()
    }
    fn writable(&self) -> StoreFuture<'_, ()> {
        self.inner.writable()
    }
    fn flush(&self) -> StoreFuture<'_, ()> {
        self.inner.flush()
    }
    fn stalled(&self) -> Option<String> {
        self.inner.stalled()
    }

    fn flush_counts(&self) -> Option<super::FlushCounts> {
        self.inner.flush_counts()
    }
}
