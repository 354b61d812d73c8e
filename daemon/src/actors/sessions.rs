//! The `Sessions` actor: owns the session store's background work (the expiry sweeper and the
//! `auth0_client_sessions_live` gauge), and [`SessionRepo`], the store as everything else uses it:
//! every call bounded by `sessions.timeoutMs`, so an outage is a quick 503 and never a hang.
//!
//! Reads go through a cloned [`SessionRepo`] rather than a message to the actor: `/userinfo` is
//! the hot path, and a message round trip would add a cross-thread hop to the one store read the
//! route makes (DESIGN.md allows it for read-only lookups; see the README's benchmark figures).
//!
//! In front of the embedded sled store, [`SessionRepo::lookup`] also keeps the sessions it read in
//! memory, each with its rendered `/userinfo` body. A sled folder belongs to one process (the
//! store locks it), and every write of a session passes through this repo, which drops the copies
//! first, so a copy is never stale; expiry is checked on every hit. Decoding the session record
//! and shaping its claims were most of `/userinfo`'s cost in the benchmark. In front of a shared
//! store (Redis), where another daemon may write, nothing is kept.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use actix::prelude::*;
use prometheus::IntGauge;

use super::Alive;
use crate::store::{
    Session, SessionId, SessionStore, StateRecord, StoreError, Timestamp, TokenHash, bounded,
};

/// How often expired records are swept and the live-session gauge is refreshed.
const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// A session as the read path holds it, with its `/userinfo` body rendered on first use.
pub struct ReadSession {
    pub session: Session,
    rendered: OnceLock<actix_web::web::Bytes>,
}

impl ReadSession {
    fn new(session: Session) -> Arc<Self> {
        Arc::new(Self {
            session,
            rendered: OnceLock::new(),
        })
    }

    /// The body `render` makes from this session, made once per cached copy.
    pub fn rendered(
        &self,
        render: impl FnOnce(&Session) -> actix_web::web::Bytes,
    ) -> actix_web::web::Bytes {
        self.rendered.get_or_init(|| render(&self.session)).clone()
    }
}

/// Bound on the copies kept; past it the cache starts over (a day's sessions of a busy site fit).
const CACHE_CAPACITY: usize = 100_000;

/// Sessions read, by every key they were read under (see the module docs).
#[derive(Default)]
struct ReadCache {
    entries: RwLock<Entries>,
}

#[derive(Default)]
struct Entries {
    /// By the Bearer access token as presented: a hit hashes the token with a fast hasher instead
    /// of the SHA-256 the store indexes it by (that SHA-256 was 3% of `/userinfo`'s CPU). Only
    /// tokens that found a session are kept, so callers cannot fill the map with keys of their own.
    by_token: HashMap<Box<str>, Arc<ReadSession>, foldhash::fast::RandomState>,
    /// By session id, with the tokens the copy is also kept under, so a write drops them all.
    by_id: HashMap<SessionId, Cached>,
}

struct Cached {
    read: Arc<ReadSession>,
    tokens: Vec<Box<str>>,
}

impl Entries {
    fn forget_id(&mut self, id: &SessionId) {
        if let Some(cached) = self.by_id.remove(id) {
            for token in &cached.tokens {
                self.by_token.remove(token);
            }
        }
    }
}

impl ReadCache {
    fn get(&self, key: SessionKey<'_>) -> Option<Arc<ReadSession>> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        match key {
            SessionKey::AccessToken(token) => entries.by_token.get(token).cloned(),
            SessionKey::Id(id) => entries.by_id.get(id).map(|c| c.read.clone()),
        }
    }

    /// Keeps `read` under its id and, when it was found by one, under `token`; every token the
    /// id's copy was kept under now names this copy.
    fn insert(&self, token: Option<&str>, read: Arc<ReadSession>) {
        let mut guard = self.entries.write().unwrap_or_else(|e| e.into_inner());
        let entries = &mut *guard;
        if entries.by_id.len() + entries.by_token.len() >= CACHE_CAPACITY {
            entries.by_id.clear();
            entries.by_token.clear();
        }
        let cached = entries
            .by_id
            .entry(read.session.id.clone())
            .or_insert_with(|| Cached {
                read: read.clone(),
                tokens: Vec::new(),
            });
        cached.read = read.clone();
        if let Some(token) = token
            && !cached.tokens.iter().any(|t| **t == *token)
        {
            cached.tokens.push(token.into());
        }
        for token in &cached.tokens {
            entries.by_token.insert(token.clone(), read.clone());
        }
    }

    /// Drops every copy of `session`, and whatever copy its current access token names (an
    /// identical token may have indexed an older session).
    fn forget(&self, session: &Session) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        entries.forget_id(&session.id);
        if let Some(older) = entries.by_token.remove(session.access_token.as_str()) {
            entries.forget_id(&older.session.id);
        }
    }

    fn forget_id(&self, id: &SessionId) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        entries.forget_id(id);
    }
}

/// The session store with the per-operation bound applied. Cheap to clone.
#[derive(Clone)]
pub struct SessionRepo {
    store: Arc<dyn SessionStore>,
    limit: Duration,
    cache: Option<Arc<ReadCache>>,
}

impl SessionRepo {
    /// `cache_reads`: keep read sessions in memory; only for a store no other process writes.
    pub fn new(store: Arc<dyn SessionStore>, limit: Duration, cache_reads: bool) -> Self {
        Self {
            store,
            limit,
            cache: cache_reads.then(Arc::default),
        }
    }

    /// The live session of a Bearer access token or a `sid` (the read path of `/userinfo`,
    /// `/refreshtoken`, `/logout`), from memory when the store allows it.
    pub async fn lookup(
        &self,
        key: SessionKey<'_>,
    ) -> Result<Option<Arc<ReadSession>>, StoreError> {
        if let Some(cache) = &self.cache
            && let Some(hit) = cache.get(key)
            && hit.session.is_live(Timestamp::now())
        {
            return Ok(Some(hit));
        }
        let (found, token) = match key {
            SessionKey::AccessToken(token) => {
                let hash = TokenHash::of(token);
                let found = bounded(self.limit, self.store.get_session_by_token(&hash)).await?;
                (found, Some(token))
            }
            SessionKey::Id(id) => (bounded(self.limit, self.store.get_session(id)).await?, None),
        };
        Ok(found.map(|session| {
            let read = ReadSession::new(session);
            if let Some(cache) = &self.cache {
                cache.insert(token, read.clone());
            }
            read
        }))
    }

    /// The session with this id, read from the store itself (never from memory): for a refresh,
    /// which must start from the latest record.
    pub async fn by_id(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        bounded(self.limit, self.store.get_session(id)).await
    }

    pub async fn create(&self, session: &Session) -> Result<(), StoreError> {
        // An identical access token may index an older session: its copy must go.
        self.forget(session);
        bounded(self.limit, self.store.create_session(session)).await
    }

    /// False when the session no longer exists (ended meanwhile).
    pub async fn update(&self, session: &Session) -> Result<bool, StoreError> {
        self.forget_id(&session.id);
        let updated = bounded(self.limit, self.store.update_session(session)).await;
        // A read between the drop and the write may have cached the old record.
        self.forget_id(&session.id);
        updated
    }

    pub async fn delete(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        self.forget_id(id);
        let deleted = bounded(self.limit, self.store.delete_session(id)).await;
        self.forget_id(id);
        deleted
    }

    pub async fn delete_sessions_of(&self, sub: &str) -> Result<Vec<Session>, StoreError> {
        let deleted = bounded(self.limit, self.store.delete_sessions_of(sub)).await?;
        for session in &deleted {
            self.forget_id(&session.id);
        }
        Ok(deleted)
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

    pub async fn put_state(&self, record: &StateRecord) -> Result<bool, StoreError> {
        bounded(self.limit, self.store.put_state(record)).await
    }

    pub async fn take_state(&self, state: &str) -> Result<Option<StateRecord>, StoreError> {
        bounded(self.limit, self.store.take_state(state)).await
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        bounded(self.limit, self.store.ping()).await
    }

    /// Makes every write durable, within the bound (at shutdown).
    pub async fn flush(&self) -> Result<(), StoreError> {
        bounded(self.limit, self.store.flush()).await
    }

    /// The stall watchdog's finding (see [`SessionStore::stalled`]).
    pub fn stalled(&self) -> Option<String> {
        self.store.stalled()
    }

    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
    }
}

/// `auth0_client_store_stalled`: 1 while a store call or flush has been running past
/// `sessions.timeoutMs`, else 0. Computed when the metrics are read, so no timer runs and an idle
/// daemon stays idle.
pub struct StallGauge {
    repo: SessionRepo,
    gauge: IntGauge,
}

impl StallGauge {
    pub fn new(repo: SessionRepo) -> Result<Self, prometheus::Error> {
        let gauge = IntGauge::new(
            "auth0_client_store_stalled",
            "1 while a session store call or flush has been running past sessions.timeoutMs.",
        )?;
        Ok(Self { repo, gauge })
    }
}

impl prometheus::core::Collector for StallGauge {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.gauge.desc()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.gauge.set(i64::from(self.repo.stalled().is_some()));
        self.gauge.collect()
    }
}

/// How a request names its session.
#[derive(Clone, Copy)]
pub enum SessionKey<'a> {
    /// A Bearer access token (any the session issued).
    AccessToken(&'a str),
    /// The `sid` cookie.
    Id(&'a SessionId),
}

/// Sweeps expired records on an interval and keeps the live-session gauge current.
pub struct Sessions {
    repo: SessionRepo,
    live: IntGauge,
}

impl Sessions {
    pub fn new(repo: SessionRepo, live: IntGauge) -> Self {
        Self { repo, live }
    }

    fn sweep(&self, ctx: &mut Context<Self>) {
        let store = self.repo.store.clone();
        let limit = self.repo.limit;
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

impl Actor for Sessions {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.sweep(ctx);
        ctx.run_interval(SWEEP_INTERVAL, |actor, ctx| actor.sweep(ctx));
    }
}

impl Handler<Alive> for Sessions {
    type Result = ();
    fn handle(&mut self, _: Alive, _: &mut Context<Self>) {}
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::*;
    use crate::store::{IdToken, IssuedTokens, RefreshedTokens, SledStore};

    const DAY: Duration = Duration::from_secs(86_400);

    fn repo() -> SessionRepo {
        let store = SledStore::open_temporary().expect("temporary store");
        SessionRepo::new(Arc::new(store), Duration::from_secs(5), true)
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

    async fn by_token(repo: &SessionRepo, token: &str) -> Option<Arc<ReadSession>> {
        repo.lookup(SessionKey::AccessToken(token))
            .await
            .expect("lookup")
    }

    #[tokio::test]
    async fn reads_are_served_from_memory_until_a_write() {
        let repo = repo();
        let mut session = session("a1");
        repo.create(&session).await.expect("create");

        let first = by_token(&repo, "a1").await.expect("found by token");
        let again = by_token(&repo, "a1").await.expect("found again");
        assert!(
            Arc::ptr_eq(&first, &again),
            "the second read is the kept copy"
        );
        let by_id = repo
            .lookup(SessionKey::Id(&session.id))
            .await
            .expect("lookup")
            .expect("found by id");
        assert!(Arc::ptr_eq(&first, &by_id), "one copy under every key");

        // A refresh rotates the access token: the old one still finds the new record.
        session.apply_refresh(
            RefreshedTokens {
                access_token: "a2".into(),
                access_expires_at: Timestamp::now().saturating_add(Duration::from_secs(60)),
                refresh_token: None,
                id_token: None,
            },
            Timestamp::now(),
        );
        assert!(repo.update(&session).await.expect("update"));
        for token in ["a1", "a2"] {
            let read = by_token(&repo, token).await.expect("found after the write");
            assert_eq!(
                read.session.access_token, "a2",
                "{token} reads the new record"
            );
        }

        repo.delete(&session.id).await.expect("delete");
        assert!(by_token(&repo, "a1").await.is_none());
        assert!(by_token(&repo, "a2").await.is_none());
    }

    #[tokio::test]
    async fn a_new_session_with_a_kept_token_replaces_the_copy() {
        let repo = repo();
        let older = session("same");
        repo.create(&older).await.expect("create");
        assert_eq!(
            by_token(&repo, "same").await.expect("found").session.id,
            older.id
        );

        let newer = session("same");
        repo.create(&newer).await.expect("create");
        assert_eq!(
            by_token(&repo, "same").await.expect("found").session.id,
            newer.id,
            "the token names the session the store now indexes it under"
        );
        assert!(by_token(&repo, "unknown").await.is_none());
    }
}
