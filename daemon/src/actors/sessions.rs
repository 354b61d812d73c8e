//! The `Sessions` actor: owns the session store's background work (the expiry sweeper and the
//! `auth0_client_sessions_live` gauge), and [`SessionRepo`], the store as everything else uses it:
//! every call bounded by `sessions.timeoutMs`, so an outage is a quick 503 and never a hang.
//!
//! Reads go through a cloned [`SessionRepo`] rather than a message to the actor: `/userinfo` is
//! the hot path, and a message round trip would add a cross-thread hop to the one store read the
//! route makes (DESIGN.md allows it for read-only lookups; see the README's benchmark figures).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use prometheus::IntGauge;

use super::Alive;
use crate::store::{Session, SessionId, SessionStore, StateRecord, StoreError, TokenHash, bounded};

/// How often expired records are swept and the live-session gauge is refreshed.
const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// The session store with the per-operation bound applied. Cheap to clone.
#[derive(Clone)]
pub struct SessionRepo {
    store: Arc<dyn SessionStore>,
    limit: Duration,
}

impl SessionRepo {
    pub fn new(store: Arc<dyn SessionStore>, limit: Duration) -> Self {
        Self { store, limit }
    }

    pub async fn by_id(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        bounded(self.limit, self.store.get_session(id)).await
    }

    /// The session that issued this access token (current or earlier).
    pub async fn by_access_token(&self, token: &str) -> Result<Option<Session>, StoreError> {
        let hash = TokenHash::of(token);
        bounded(self.limit, self.store.get_session_by_token(&hash)).await
    }

    pub async fn create(&self, session: &Session) -> Result<(), StoreError> {
        bounded(self.limit, self.store.create_session(session)).await
    }

    /// False when the session no longer exists (ended meanwhile).
    pub async fn update(&self, session: &Session) -> Result<bool, StoreError> {
        bounded(self.limit, self.store.update_session(session)).await
    }

    pub async fn delete(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        bounded(self.limit, self.store.delete_session(id)).await
    }

    pub async fn delete_sessions_of(&self, sub: &str) -> Result<Vec<Session>, StoreError> {
        bounded(self.limit, self.store.delete_sessions_of(sub)).await
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
