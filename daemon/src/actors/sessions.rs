//! Sessions: [`SessionService`], the one owner of every session and state write, and the
//! [`SessionSweeper`] actor, which sweeps expired records (in batches, on its own arbiter) and
//! keeps the `auth0_client_sessions_live` gauge.
//!
//! [`SessionService`] is a cloned handle that runs on the HTTP workers (logins never queue behind
//! one actor thread). Every call is bounded by `sessions.timeoutMs`, so an outage is a quick 503
//! and never a hang. Writes are the store's compare-and-swap (the refresh flights of the `Tokens`
//! actor are the only callers of [`SessionService::replace`]); each write drops the read cache's
//! copies before and after it.
//!
//! Reads go through the handle too rather than a message to an actor: `/userinfo` is the hot
//! path, and a message round trip would add a cross-thread hop to its one store read (DESIGN.md
//! allows direct reads there; see the README's benchmark figures). In front of the embedded sled
//! store, [`SessionService::lookup`] keeps the sessions it read in memory, with their rendered
//! `/userinfo` body ([`super::read_cache`]): a sled folder belongs to one process (the store
//! locks it), and every write passes through this handle. In front of a shared store (Redis),
//! where another daemon may write, a copy is served only after reading the record's revision
//! (`SessionService::still_stored`): 2.2 times the throughput of no copies at all, measured in the
//! README's "Across daemons".

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use prometheus::{IntCounter, IntGauge};

use super::Alive;
use super::read_cache::ReadCache;
pub use super::read_cache::{ReadSession, SessionKey};
use crate::clock::Clock;
use crate::pending::{PendingLogins, TooManyPendingLogins};
use crate::store::{
    Auth0SessionHash, CasOutcome, LeaseClaim, Session, SessionId, StateRecord, Store, StoreError,
    TokenHash, bounded,
};

/// How often expired records are swept and the live-session gauge is refreshed.
const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// The owner of session and state writes, and the read path. Cheap to clone.
#[derive(Clone)]
pub struct SessionService {
    store: Arc<dyn Store>,
    limit: Duration,
    cache: Option<Arc<ReadCache>>,
    clock: Clock,
    /// The live `/authorize` states this process wrote, per end-user address and in total.
    pending: Arc<PendingLogins>,
    /// Whether other daemons write the store too (Redis): refresh flights then take a lease.
    shared: bool,
}

/// How a request found its session: by its Bearer access token or by its `sid` cookie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Bearer,
    Cookie,
}

/// What [`SessionService::put_state`] did.
#[derive(Debug)]
pub enum StatePut {
    Stored,
    /// A live state with that `state` exists (a caller's `state` in use): nothing was written.
    InUse,
    /// A cap on logins in progress is reached: nothing was written.
    TooMany(TooManyPendingLogins),
}

impl SessionService {
    /// `cache_bytes`: the read cache's budget (`sessions.cacheBytes`); 0 keeps nothing, and so
    /// must a store other processes write.
    pub fn new(store: Arc<dyn Store>, limit: Duration, cache_bytes: u64, clock: Clock) -> Self {
        Self {
            store,
            limit,
            cache: (cache_bytes > 0).then(|| Arc::new(ReadCache::new(cache_bytes))),
            clock,
            pending: Arc::default(),
            shared: false,
        }
    }

    /// Declares the store written by other daemons too (Redis).
    pub fn shared_with_other_daemons(mut self, shared: bool) -> Self {
        self.shared = shared;
        self
    }

    /// Whether other daemons write the store (see [`Self::shared_with_other_daemons`]).
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// Counts logins in progress with `pending`'s caps (`sessions.maxPendingLogins` and
    /// `sessions.maxPendingLoginsPerIp`) instead of the defaults.
    pub fn with_pending_logins(mut self, pending: PendingLogins) -> Self {
        self.pending = Arc::new(pending);
        self
    }

    /// The count of logins in progress.
    pub fn pending_logins(&self) -> &PendingLogins {
        &self.pending
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The live session of a Bearer access token or a `sid` (the read path of `/userinfo`), from
    /// memory when the store allows it. A token that opens several sessions (two logins in one
    /// second) answers one of them: they are the same user with the same claims.
    pub async fn lookup(
        &self,
        key: SessionKey<'_>,
    ) -> Result<Option<Arc<ReadSession>>, StoreError> {
        let now = self.clock.now();
        if let Some(cache) = &self.cache
            && let Some(hit) = cache.get(key)
        {
            if hit.session.is_live(now) && self.still_stored(&hit.session).await? {
                return Ok(Some(hit));
            }
            // Expired, or changed by another daemon: drop the copy (so a client that keeps
            // sending an expired one does not keep it warm) and read the store.
            cache.forget_id(&hit.session.id);
        }
        let seen = self.cache.as_ref().map(|c| c.generation());
        let (found, token) = match key {
            SessionKey::AccessToken(token) => {
                let found = self.sessions_by_token(token).await?;
                (found.into_iter().max_by_key(|s| s.created_at), Some(token))
            }
            SessionKey::Id(id) => (self.by_id(id).await?, None),
        };
        Ok(found.map(|session| {
            let read = ReadSession::new(session);
            if let (Some(cache), Some(seen)) = (&self.cache, seen) {
                cache.insert(seen, token, read.clone());
            }
            read
        }))
    }

    /// The live session a request presents ([`Self::lookup`]): by its Bearer access token (any
    /// the session has issued, expired or not), else by its `sid` cookie. `None` when neither
    /// finds one.
    pub async fn find(
        &self,
        bearer: Option<&str>,
        sid: Option<&SessionId>,
    ) -> Result<Option<(Arc<ReadSession>, Via)>, StoreError> {
        if let Some(token) = bearer
            && let Some(session) = self.lookup(SessionKey::AccessToken(token)).await?
        {
            return Ok(Some((session, Via::Bearer)));
        }
        if let Some(sid) = sid
            && let Some(session) = self.lookup(SessionKey::Id(sid)).await?
        {
            return Ok(Some((session, Via::Cookie)));
        }
        Ok(None)
    }

    /// Every session a request presents, from the store itself (never from memory): all those
    /// its Bearer access token opens (two logins in one second may share one), else its `sid`
    /// cookie's ([`Via::Cookie`], also when neither finds one).
    pub async fn find_stored(
        &self,
        bearer: Option<&str>,
        sid: Option<&SessionId>,
    ) -> Result<(Vec<Session>, Via), StoreError> {
        if let Some(token) = bearer {
            let sessions = self.sessions_by_token(token).await?;
            if !sessions.is_empty() {
                return Ok((sessions, Via::Bearer));
            }
        }
        let session = match sid {
            Some(sid) => self.by_id(sid).await?,
            None => None,
        };
        Ok((session.into_iter().collect(), Via::Cookie))
    }

    /// Whether a copy from the read cache is the stored record. Every write of this process
    /// drops its copies, so on a store only this process writes (sled) a copy is always current;
    /// on a shared store (Redis) another daemon may have refreshed or ended the session, so the
    /// record's revision is read first (one small read instead of the record), and a logout on
    /// any daemon is honoured at once.
    async fn still_stored(&self, copy: &Session) -> Result<bool, StoreError> {
        if !self.shared {
            return Ok(true);
        }
        let stored = bounded(self.limit, self.store.session_revision(&copy.id)).await?;
        Ok(stored == Some(copy.revision))
    }

    /// The session with this id, from the store itself (never from memory).
    pub async fn by_id(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        bounded(self.limit, self.store.get_session(id)).await
    }

    /// Every live session a Bearer access token opens, from the store itself.
    pub async fn sessions_by_token(&self, token: &str) -> Result<Vec<Session>, StoreError> {
        let hash = TokenHash::of(token);
        bounded(self.limit, self.store.sessions_by_token(&hash)).await
    }

    /// Whether the session is still live (after a failed refresh: is the cookie still good?).
    pub async fn is_live(&self, id: &SessionId) -> Result<bool, StoreError> {
        Ok(self.by_id(id).await?.is_some())
    }

    /// Stores a new session (a login).
    pub async fn create(&self, session: &Session) -> Result<(), StoreError> {
        // An identical access token may index an older session: its copy must go.
        self.forget(session);
        bounded(self.limit, self.store.create_session(session)).await
    }

    /// Compare-and-swap of a session (the refresh flights only: see the module docs).
    pub async fn replace(&self, session: &Session) -> Result<CasOutcome, StoreError> {
        self.forget(session);
        let written = bounded(self.limit, self.store.replace_session(session)).await;
        // A read between the drop and the write may have read the old record: the generation
        // check refuses its insert, and this drops anything older.
        self.forget(session);
        written
    }

    /// Ends a session; returns it when it was live (to revoke its refresh token).
    pub async fn end(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        self.forget_id(id);
        let deleted = bounded(self.limit, self.store.delete_session(id)).await;
        self.forget_id(id);
        deleted
    }

    /// Ends every session of a user (user deleted, blocked, password changed).
    pub async fn end_user(&self, sub: &str) -> Result<Vec<Session>, StoreError> {
        let deleted = bounded(self.limit, self.store.delete_sessions_of(sub)).await?;
        for session in &deleted {
            self.forget_id(&session.id);
        }
        Ok(deleted)
    }

    /// The live sessions of a user, all clients, from the store itself.
    pub async fn sessions_of(&self, sub: &str) -> Result<Vec<Session>, StoreError> {
        bounded(self.limit, self.store.sessions_of(sub)).await
    }

    /// The live sessions whose login carried the Auth0 session id `sid` (back-channel logout).
    pub async fn sessions_of_auth0_session(&self, sid: &str) -> Result<Vec<Session>, StoreError> {
        let hash = Auth0SessionHash::of(sid);
        bounded(self.limit, self.store.sessions_of_auth0_session(&hash)).await
    }

    /// Records `key` for `ttl` unless it is recorded already (set-if-absent, on every daemon
    /// sharing the store); whether this call recorded it.
    pub async fn record_once(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        bounded(self.limit, self.store.record_once(key, ttl)).await
    }

    fn forget(&self, session: &Session) {
        if let Some(cache) = &self.cache {
            cache.forget(session);
        }
    }

    fn forget_id(&self, id: &SessionId) {
        if let Some(cache) = &self.cache {
            cache.forget_id(id);
        }
    }

    pub async fn active_subs(&self) -> Result<Vec<String>, StoreError> {
        bounded(self.limit, self.store.active_subs()).await
    }

    /// Remembers an `/authorize` state started by the end user at `from`, unless a cap on
    /// logins in progress is reached or a live state has that `state` already.
    pub async fn put_state(
        &self,
        record: &StateRecord,
        from: Option<IpAddr>,
    ) -> Result<StatePut, StoreError> {
        let counted =
            match self
                .pending
                .admit(&record.state, from, record.expires_at, self.clock.now())
            {
                Ok(counted) => counted,
                Err(full) => return Ok(StatePut::TooMany(full)),
            };
        let stored = bounded(self.limit, self.store.put_state(record)).await;
        // A write that failed or timed out may still land: it stays counted until it expires.
        if counted && matches!(stored, Ok(false)) {
            self.pending.release(&record.state);
        }
        Ok(if stored? {
            StatePut::Stored
        } else {
            StatePut::InUse
        })
    }

    /// Reads an `/authorize` state without taking it (to check its binding first).
    pub async fn get_state(&self, state: &str) -> Result<Option<StateRecord>, StoreError> {
        bounded(self.limit, self.store.get_state(state)).await
    }

    /// Takes the state `record` when it is still the stored one; `false` when it was taken (or
    /// replaced) meanwhile.
    pub async fn take_state_if(&self, record: &StateRecord) -> Result<bool, StoreError> {
        let taken = bounded(self.limit, self.store.take_state_if(record)).await?;
        if taken {
            self.pending.release(&record.state);
        }
        Ok(taken)
    }

    /// Takes (or extends) the lease `key` for `holder` for `ttl`; whether `holder` holds it.
    pub async fn try_lease(
        &self,
        key: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        bounded(
            self.limit,
            self.store.try_lease(LeaseClaim::new(key, holder), ttl),
        )
        .await
    }

    /// Releases the lease `key` when `holder` holds it.
    pub async fn release_lease(&self, key: &str, holder: &str) -> Result<bool, StoreError> {
        bounded(
            self.limit,
            self.store.release_lease(LeaseClaim::new(key, holder)),
        )
        .await
    }

    pub async fn writable(&self) -> Result<(), StoreError> {
        bounded(self.limit, self.store.writable()).await
    }

    /// Makes every write durable, within the bound (at shutdown).
    pub async fn flush(&self) -> Result<(), StoreError> {
        bounded(self.limit, self.store.flush()).await
    }

    /// The stall watchdog's finding (see [`Store::stalled`]).
    pub fn stalled(&self) -> Option<String> {
        self.store.stalled()
    }
}

/// `auth0_client_store_stalled`: 1 while a store call or flush has been running past
/// `sessions.timeoutMs`, else 0. Computed when the metrics are read, so no timer runs and an idle
/// daemon stays idle.
pub struct StallGauge {
    sessions: SessionService,
    gauge: IntGauge,
}

impl StallGauge {
    pub fn new(sessions: SessionService) -> Result<Self, prometheus::Error> {
        let gauge = IntGauge::new(
            "auth0_client_store_stalled",
            "1 while a session store call or flush has been running past sessions.timeoutMs.",
        )?;
        Ok(Self { sessions, gauge })
    }
}

impl prometheus::core::Collector for StallGauge {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.gauge.desc()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.gauge.set(i64::from(self.sessions.stalled().is_some()));
        self.gauge.collect()
    }
}

/// `auth0_client_store_flushes_total` and `auth0_client_store_flushed_writes_total`: the sled
/// group commit's flushes and the durable writes (session and job writes) they carried, read when
/// the metrics are. Their ratio is how many writes share one flush.
pub struct FlushCounters {
    sessions: SessionService,
    flushes: IntCounter,
    writes: IntCounter,
}

impl FlushCounters {
    pub fn new(sessions: SessionService) -> Result<Self, prometheus::Error> {
        Ok(Self {
            sessions,
            flushes: IntCounter::new(
                "auth0_client_store_flushes_total",
                "Flushes of the sled store to disk (the group commit).",
            )?,
            writes: IntCounter::new(
                "auth0_client_store_flushed_writes_total",
                "Durable writes the sled store's flushes carried (many writes share one flush).",
            )?,
        })
    }
}

impl prometheus::core::Collector for FlushCounters {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        [self.flushes.desc(), self.writes.desc()].concat()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let counts = self.sessions.store.flush_counts().unwrap_or_default();
        self.flushes
            .inc_by(counts.flushes.saturating_sub(self.flushes.get()));
        self.writes
            .inc_by(counts.writes.saturating_sub(self.writes.get()));
        [self.flushes.collect(), self.writes.collect()].concat()
    }
}

/// Sweeps expired records on an interval and keeps the live-session gauge current. Runs on its
/// own arbiter (see `Actors::start`), and the store sweeps in batches, so a large sweep never
/// delays refreshes or logins.
pub struct SessionSweeper {
    sessions: SessionService,
    live: IntGauge,
}

impl SessionSweeper {
    pub fn new(sessions: SessionService, live: IntGauge) -> Self {
        Self { sessions, live }
    }

    fn sweep(&self, ctx: &mut Context<Self>) {
        let store = self.sessions.store.clone();
        let limit = self.sessions.limit;
        let live = self.live.clone();
        ctx.spawn(
            async move {
                match store.sweep().await {
                    Ok(report) if report.sessions + report.states + report.leases > 0 => {
                        tracing::debug!(?report, "swept expired records");
                    }
                    Ok(_) => {}
                    Err(err) => tracing::warn!(error = %err, "sweeping expired records failed"),
                }
                match bounded(limit, store.count_live_sessions()).await {
                    Ok(count) => live.set(i64::try_from(count).unwrap_or(i64::MAX)),
                    Err(err) => tracing::warn!(error = %err, "counting live sessions failed"),
                }
            }
            .into_actor(self),
        );
    }
}

impl Actor for SessionSweeper {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.sweep(ctx);
        ctx.run_interval(SWEEP_INTERVAL, |actor, ctx| actor.sweep(ctx));
    }
}

impl Handler<Alive> for SessionSweeper {
    type Result = ();
    fn handle(&mut self, _: Alive, _: &mut Context<Self>) {}
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::*;
    use crate::store::{IdToken, IssuedTokens, RefreshedTokens, SledStore, Timestamp};

    const DAY: Duration = Duration::from_secs(86_400);

    /// A session service with a 64 MiB read cache on `store`.
    fn service(store: Arc<dyn Store>) -> SessionService {
        SessionService::new(store, Duration::from_secs(5), 64 << 20, Clock::system())
    }

    fn sessions() -> SessionService {
        service(Arc::new(
            SledStore::open_temporary().expect("temporary store"),
        ))
    }

    fn session(access_token: &str) -> Session {
        let now = Timestamp::now();
        Session::new(
            "web",
            "auth0|1",
            IssuedTokens {
                access_token: access_token.into(),
                access_expires_at: now.saturating_add(Duration::from_secs(3_600)),
                refresh_token: Some("r1".into()),
                id_token: IdToken {
                    token: "id".into(),
                    claims: Map::new(),
                },
            },
            now.saturating_add(DAY),
            now,
        )
    }

    /// A refresh that rotates `session`'s access token to `access_token`, written through
    /// `sessions`.
    async fn rotate(sessions: &SessionService, session: &mut Session, access_token: &str) {
        session.apply_refresh(
            RefreshedTokens {
                access_token: access_token.into(),
                access_expires_at: Timestamp::now().saturating_add(Duration::from_secs(60)),
                refresh_token: None,
                id_token: None,
            },
            Timestamp::now(),
        );
        assert!(matches!(
            sessions.replace(session).await.expect("replace"),
            CasOutcome::Written(_)
        ));
    }

    /// Reads `token` twice through `sessions`, asserts that the second read is the kept copy of
    /// the first (an unchanged record is served from memory), and returns it.
    async fn read_twice(sessions: &SessionService, token: &str) -> Arc<ReadSession> {
        let first = by_token(sessions, token).await.expect("found by token");
        let again = by_token(sessions, token).await.expect("found again");
        assert!(
            Arc::ptr_eq(&first, &again),
            "the second read of {token} is the kept copy"
        );
        first
    }

    async fn by_token(sessions: &SessionService, token: &str) -> Option<Arc<ReadSession>> {
        sessions
            .lookup(SessionKey::AccessToken(token))
            .await
            .expect("lookup")
    }

    #[tokio::test]
    async fn reads_are_served_from_memory_until_a_write() {
        let sessions = sessions();
        let mut session = session("a1");
        sessions.create(&session).await.expect("create");

        let first = read_twice(&sessions, "a1").await;
        let by_id = sessions
            .lookup(SessionKey::Id(&session.id))
            .await
            .expect("lookup")
            .expect("found by id");
        assert!(Arc::ptr_eq(&first, &by_id), "one copy under every key");

        // A refresh rotates the access token: the old one still finds the new record.
        rotate(&sessions, &mut session, "a2").await;
        for token in ["a1", "a2"] {
            let read = by_token(&sessions, token)
                .await
                .expect("found after the write");
            assert_eq!(
                read.session.access_token, "a2",
                "{token} reads the new record"
            );
        }

        sessions.end(&session.id).await.expect("end");
        assert!(by_token(&sessions, "a1").await.is_none());
        assert!(by_token(&sessions, "a2").await.is_none());
    }

    /// Two daemons on one store, each with its read cache: what one writes, the other never
    /// serves from an old copy.
    #[tokio::test]
    async fn on_a_shared_store_a_copy_another_daemon_changed_or_ended_is_never_served() {
        let store: Arc<dyn Store> = Arc::new(SledStore::open_temporary().expect("temporary store"));
        let daemon =
            |store: &Arc<dyn Store>| service(store.clone()).shared_with_other_daemons(true);
        let (a, b) = (daemon(&store), daemon(&store));
        let mut session = session("a1");
        a.create(&session).await.expect("create");
        // B reads A's session.
        read_twice(&b, "a1").await;

        rotate(&a, &mut session, "a2").await;
        let read = by_token(&b, "a1").await.expect("found after A's write");
        assert_eq!(
            read.session.access_token, "a2",
            "B reads A's refresh at once"
        );

        a.end(&session.id).await.expect("end");
        assert!(
            by_token(&b, "a1").await.is_none(),
            "A's logout is honoured by B at once"
        );
        assert!(
            b.lookup(SessionKey::Id(&session.id))
                .await
                .expect("lookup")
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_session_sharing_a_kept_token_never_revives_an_ended_copy() {
        let sessions = sessions();
        let older = session("same");
        sessions.create(&older).await.expect("create");
        assert_eq!(
            by_token(&sessions, "same").await.expect("found").session.id,
            older.id
        );

        // Two logins within a second may get one access token: either session may answer, but
        // once the older one ends, its kept copy must not.
        let newer = session("same");
        sessions.create(&newer).await.expect("create");
        let found = by_token(&sessions, "same")
            .await
            .expect("found")
            .session
            .id
            .clone();
        assert!(found == older.id || found == newer.id);
        sessions.end(&older.id).await.expect("end");
        assert_eq!(
            by_token(&sessions, "same").await.expect("found").session.id,
            newer.id,
            "the token names a session the store still indexes it under"
        );
        assert!(by_token(&sessions, "unknown").await.is_none());
    }
}
