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

#[derive(Clone, PartialEq, Eq, Hash)]
enum CacheKey {
    Token(TokenHash),
    Id(SessionId),
}

/// Bound on the copies kept; past it the cache starts over (a day's sessions of a busy site fit).
const CACHE_CAPACITY: usize = 100_000;

/// Sessions read, by every key they were read under (see the module docs).
#[derive(Default)]
struct ReadCache {
    entries: RwLock<HashMap<CacheKey, Arc<ReadSession>>>,
}

impl ReadCache {
    fn get(&self, key: &CacheKey) -> Option<Arc<ReadSession>> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.get(key).cloned()
    }

    /// Keeps `value` under `key` and under its id, so [`ReadCache::forget_id`] finds every copy.
    fn insert(&self, key: CacheKey, value: Arc<ReadSession>) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CACHE_CAPACITY {
            entries.clear();
        }
        entries.insert(CacheKey::Id(value.session.id.clone()), value.clone());
        entries.insert(key, value);
    }

    /// Drops every copy of `session`: by id and by each access token it issued.
    fn forget(&self, session: &Session) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        entries.remove(&CacheKey::Id(session.id.clone()));
        for hash in session.alias_hashes() {
            entries.remove(&CacheKey::Token(hash));
        }
    }

    fn forget_id(&self, id: &SessionId) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if let Some(cached) = entries.remove(&CacheKey::Id(id.clone())) {
            for hash in cached.session.alias_hashes() {
                entries.remove(&CacheKey::Token(hash));
            }
        }
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
        let cache_key = match key {
            SessionKey::AccessToken(token) => CacheKey::Token(TokenHash::of(token)),
            SessionKey::Id(id) => CacheKey::Id(id.clone()),
        };
        let now = Timestamp::now();
        if let Some(cache) = &self.cache
            && let Some(hit) = cache.get(&cache_key)
            && hit.session.is_live(now)
        {
            return Ok(Some(hit));
        }
        let found = match &cache_key {
            CacheKey::Token(hash) => {
                bounded(self.limit, self.store.get_session_by_token(hash)).await?
            }
            CacheKey::Id(id) => bounded(self.limit, self.store.get_session(id)).await?,
        };
        Ok(found.map(|session| {
            let read = ReadSession::new(session);
            if let Some(cache) = &self.cache {
                cache.insert(cache_key, read.clone());
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

    pub async fn flush(&self) -> Result<(), StoreError> {
        self.store.flush().await
    }

    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
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
