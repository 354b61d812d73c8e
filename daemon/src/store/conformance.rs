//! The one conformance suite every [`SessionStore`] backend passes (SPEC §7: "one trait, one
//! conformance suite").
//!
//! Each check is an `async fn` taking a [`Fixture`], which opens the backend under test; a
//! backend's test module runs them all with one line, `conformance_suite!(its_fixture());`,
//! which expands to one `#[tokio::test]` per check. Each test gets a fresh fixture (a new folder,
//! a new Redis scope), so the checks may assume an empty store.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::seal::KeyRing;
use super::sealed::{Sealed, stored_id};
use super::{
    CasOutcome, IdToken, IssuedTokens, JobCas, JobCursor, JobKind, JobPart, JobRecord, JobStatus,
    LeaseClaim, RefreshTokenMatch, RefreshedTokens, Session, SessionId, SessionStore as _,
    StateRecord, Store, StoreError, StoreFuture, Timestamp, TokenHash,
};
use crate::clock::Clock;

/// Opens the backend under test. A second `open` after every store it returned was dropped
/// reopens the same data (the persistence check). Every store it opens reads the time from
/// [`Fixture::clock`], a manual clock the checks move instead of sleeping.
pub trait Fixture: Send + Sync {
    fn open(&self) -> StoreFuture<'_, Arc<dyn Store>>;
    fn clock(&self) -> &Clock;

    /// Lets `duration` pass for leases. A backend whose leases follow the [`Clock`] (sled) only
    /// moves it; one whose leases expire by the server's own clock (Redis `PX`, SPEC §7) waits
    /// for real as well.
    fn pass_lease_time(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.clock().advance(duration);
        Box::pin(async {})
    }
}

/// A record's lifetime in the expiry checks, which then move the fixture's clock past it.
const SHORT: Duration = Duration::from_millis(800);
const PAST_SHORT: Duration = Duration::from_millis(1_100);
const DAY: Duration = Duration::from_secs(86_400);

/// One `#[tokio::test]` per check, for the fixture expression given (evaluated once per test).
macro_rules! conformance_suite {
    ($fixture:expr) => {
        $crate::store::conformance::conformance_suite!(
            @tests $fixture;
            // SessionStore
            sessions_create_get_update_delete,
            sessions_are_found_by_every_access_token_they_issued,
            aliases_are_capped_keeping_those_paired_with_kept_refresh_tokens,
            no_session_id_token_or_claim_reaches_the_backend,
            a_key_rotation_keeps_every_session,
            a_stale_revision_is_refused,
            concurrent_extend_and_rotate_both_land_after_a_reread,
            one_access_token_may_open_several_sessions,
            sessions_are_listed_and_deleted_by_sub,
            active_subs_and_live_count,
            expired_sessions_are_never_returned,
            // StateStore
            states_are_single_use_and_expire,
            a_state_is_taken_once_by_concurrent_takers,
            a_state_is_read_in_place_and_taken_only_as_read,
            // LeaseStore
            leases_are_exclusive_expire_and_are_released_by_their_holder,
            leases_are_extended_only_by_their_holder,
            an_expired_lease_is_no_longer_held_by_its_holder,
            one_of_concurrent_holders_gets_a_lease,
            // JobStore
            jobs_list_newest_first_with_before,
            job_pages_never_skip_records_created_in_one_millisecond,
            finished_jobs_past_retention_are_deleted,
            unfinished_jobs_are_oldest_first_and_leave_once_final,
            job_writes_are_compare_and_swap_on_the_revision,
            job_parts_are_written_once_read_and_deleted,
            a_parts_users_never_reach_the_backend_in_clear,
            // Store: maintenance and durability across roles
            sweep_removes_expired_records_and_keeps_live_ones,
            records_survive_a_reopen,
            writable_and_flush_answer,
            // Back-channel logout: the Auth0-session index and set-if-absent replay records
            sessions_are_found_by_auth0_session_until_they_end,
            record_once_is_set_if_absent_and_expires,
        );
    };
    (@tests $fixture:expr; $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let fixture = $fixture;
                $crate::store::conformance::$check(&fixture).await;
            }
        )+
    };
}
pub(crate) use conformance_suite;

/// The backend as the daemon uses it: through [`Sealed`], with a fixed test key (so a reopen
/// opens what the first store sealed).
async fn open(fixture: &dyn Fixture) -> Arc<dyn Store> {
    sealed(fixture.open().await.expect("the store opens"))
}

fn sealed(backend: Arc<dyn Store>) -> Arc<dyn Store> {
    let ring = KeyRing::from_keys(&[[9; 32]], "conformance").expect("a key ring");
    Arc::new(Sealed::new(backend, Arc::new(ring)).expect("a metric"))
}

/// Issue 20 / SPEC §7: an import part's users (emails, password hashes) are sealed before the
/// backend stores them, bound to their batch and part: moved to another part they do not open.
pub async fn a_parts_users_never_reach_the_backend_in_clear(fixture: &dyn Fixture) {
    let backend = fixture.open().await.expect("the store opens");
    let store = sealed(Arc::clone(&backend));
    let users = br#"[{"email":"sealed-part@example.com","password_hash":"$2b$10$sealedhash"}]"#;
    store
        .put_job_part(JobPart::new("batch_sealed", 1), users)
        .await
        .expect("put part");
    let held = backend
        .get_job_part(JobPart::new("batch_sealed", 1))
        .await
        .expect("get")
        .expect("stored");
    let text = String::from_utf8_lossy(&held);
    assert!(!text.contains("sealed-part@example.com"), "{text}");
    assert!(!text.contains("sealedhash"), "{text}");
    assert_eq!(
        store
            .get_job_part(JobPart::new("batch_sealed", 1))
            .await
            .expect("opens"),
        Some(users.to_vec())
    );
    backend
        .put_job_part(JobPart::new("batch_sealed", 2), &held)
        .await
        .expect("moved");
    assert!(
        store
            .get_job_part(JobPart::new("batch_sealed", 2))
            .await
            .is_err(),
        "a sealed part moved to another part does not open"
    );
}

/// SPEC §7: what a backend holds names a session by the hash of its id and holds no token, no
/// claim and no session id, whatever route wrote it (create, refresh); the daemon reads it back.
pub async fn no_session_id_token_or_claim_reaches_the_backend(fixture: &dyn Fixture) {
    let backend = fixture.open().await.expect("the store opens");
    let store = sealed(Arc::clone(&backend));
    let mut current = session("auth0|sealed", "sealed-access-1", DAY);
    current
        .claims
        .insert("email".into(), json!("secret-claim@example.com"));
    store.create_session(&current).await.expect("create");
    rotate(
        &mut current,
        "sealed-access-2",
        "sealed-refresh-2",
        Timestamp::now(),
    );
    current = replace(&store, &current).await;

    assert_eq!(
        backend.get_session(&current.id).await.expect("get"),
        None,
        "not keyed by the id"
    );
    let held = backend
        .get_session(&stored_id(&current.id))
        .await
        .expect("get")
        .expect("keyed by the hash of the id");
    let by_token = backend
        .sessions_by_token(&by_token("sealed-access-2"))
        .await
        .expect("by token");
    let by_sub = backend.sessions_of("auth0|sealed").await.expect("by sub");
    for record in std::iter::once(&held).chain(&by_token).chain(&by_sub) {
        let text = serde_json::to_string(record).expect("encodes");
        for secret in [
            current.id.as_str(),
            "sealed-access-1",
            "sealed-access-2",
            "refresh-sealed-access-1",
            "sealed-refresh-2",
            "id-sealed-access-1",
            "secret-claim",
        ] {
            assert!(
                !text.contains(secret),
                "the backend holds {secret:?}: {text}"
            );
        }
    }
    let read = stored_session(&store, &current.id).await.expect("live");
    assert_eq!(read, current, "the daemon opens what it sealed");
    assert_eq!(
        ids_by_token(&store, "sealed-access-1").await,
        vec![current.id.clone()]
    );

    // Another key (a key dropped from the ring, or another deployment's): absent, then deleted.
    let ring = KeyRing::from_keys(&[[8; 32]], "other").expect("a key ring");
    let other = Sealed::new(Arc::clone(&backend), Arc::new(ring)).expect("a metric");
    let counter = other.unopenable_metric();
    assert_eq!(other.get_session(&current.id).await.expect("get"), None);
    assert_eq!(counter.get(), 1);
    assert_eq!(
        backend
            .get_session(&stored_id(&current.id))
            .await
            .expect("get"),
        None,
        "an unopenable record is deleted"
    );
}

/// A rotation (a new key first, the old one kept) keeps every session; new writes use the new
/// key, and dropping the old key then keeps the rewritten ones.
pub async fn a_key_rotation_keeps_every_session(fixture: &dyn Fixture) {
    let backend = fixture.open().await.expect("the store opens");
    let ring = |keys: &[[u8; 32]]| Arc::new(KeyRing::from_keys(keys, "t").expect("a key ring"));
    let old = Sealed::new(Arc::clone(&backend), ring(&[[1; 32]])).expect("a metric");
    let kept = session("auth0|rotation", "rotation-1", DAY);
    let rewritten = session("auth0|rotation", "rotation-2", DAY);
    old.create_session(&kept).await.expect("create");
    old.create_session(&rewritten).await.expect("create");
    let rotated = Sealed::new(Arc::clone(&backend), ring(&[[2; 32], [1; 32]])).expect("a metric");
    assert_eq!(
        rotated.get_session(&kept.id).await.expect("get"),
        Some(kept.clone())
    );
    let mut changed = rotated
        .get_session(&rewritten.id)
        .await
        .expect("get")
        .expect("live");
    changed.expires_at = changed.expires_at.saturating_add(Duration::from_secs(60));
    let CasOutcome::Written(changed) = rotated.replace_session(&changed).await.expect("replace")
    else {
        panic!("written");
    };
    let new_only = Sealed::new(Arc::clone(&backend), ring(&[[2; 32]])).expect("a metric");
    assert_eq!(
        new_only.get_session(&changed.id).await.expect("get"),
        Some(*changed)
    );
}

/// A session of client `web` for `sub` whose access token is `access_token` (its refresh and ID
/// tokens named after it), live for `lifetime`: the backends' own tests use it too.
pub(super) fn session(sub: &str, access_token: &str, lifetime: Duration) -> Session {
    let mut claims = Map::new();
    claims.insert("email".into(), json!("user@example.com"));
    session_with_claims(sub, access_token, lifetime, claims)
}

/// [`session`] with the ID token's `claims` (its `sub` added).
fn session_with_claims(
    sub: &str,
    access_token: &str,
    lifetime: Duration,
    mut claims: Map<String, Value>,
) -> Session {
    let now = Timestamp::now();
    claims.insert("sub".into(), Value::String(sub.into()));
    Session::new(
        "web",
        sub,
        IssuedTokens {
            access_token: access_token.into(),
            access_expires_at: now.saturating_add(Duration::from_secs(3_600)),
            refresh_token: Some(format!("refresh-{access_token}")),
            id_token: IdToken {
                token: format!("id-{access_token}"),
                claims,
            },
        },
        now.saturating_add(lifetime),
        now,
    )
}

/// Rotates `session`'s tokens at `now` as a refresh does: `access_token` (live for an hour) and
/// `refresh_token` replace the current ones.
pub(super) fn rotate(
    session: &mut Session,
    access_token: &str,
    refresh_token: &str,
    now: Timestamp,
) {
    session.apply_refresh(
        RefreshedTokens {
            access_token: access_token.into(),
            access_expires_at: now.saturating_add(Duration::from_secs(3_600)),
            refresh_token: Some(refresh_token.into()),
            id_token: None,
        },
        now,
    );
}

fn state(value: &str, lifetime: Duration) -> StateRecord {
    StateRecord {
        state: value.into(),
        client: "web".into(),
        redirect: Some("/home?tab=1".into()),
        pkce_verifier: format!("verifier-{value}"),
        nonce: format!("nonce-{value}"),
        binding: format!("binding-{value}"),
        expires_at: Timestamp::now().saturating_add(lifetime),
    }
}

fn job(id: &str, created_at: i64, status: JobStatus) -> JobRecord {
    JobRecord {
        id: id.into(),
        kind: if id.starts_with("batch_") {
            JobKind::Batch
        } else {
            JobKind::Job
        },
        status,
        connection: "Username-Password-Authentication".into(),
        created_at: Timestamp::from_millis(created_at),
        updated_at: Timestamp::from_millis(created_at),
        summary: None,
        errors: None,
        detail: json!({"parts": [1, 2]}),
        revision: 0,
    }
}

pub async fn job_writes_are_compare_and_swap_on_the_revision(fixture: &dyn Fixture) {
    let store = open(fixture).await;
    let base = 1_700_000_000_000;
    let first = job("batch_cas", base, JobStatus::Pending);
    assert_eq!(
        store.replace_job(&first).await.expect("replace"),
        JobCas::Gone,
        "nothing to replace yet"
    );
    store.put_job(&first).await.expect("put");
    let mut a = first.clone();
    a.status = JobStatus::Processing;
    a.detail = json!({"parts": ["a"]});
    let JobCas::Written(written) = store.replace_job(&a).await.expect("replace") else {
        panic!("the current revision is written");
    };
    assert_eq!(written.revision, 1);
    assert_eq!(
        stored_job(&store, "batch_cas").await.as_ref(),
        Some(written.as_ref())
    );
    // A stale copy (revision 0) is refused and handed the current record: no rollback.
    let mut stale = first.clone();
    stale.status = JobStatus::Pending;
    stale.detail = json!({"parts": ["stale"]});
    match store.replace_job(&stale).await.expect("replace") {
        JobCas::Conflict(current) => assert_eq!(current.as_ref(), written.as_ref()),
        other => panic!("expected a conflict, got {other:?}"),
    }
    // Final through a replace: it leaves the unfinished ones, and the listing has it once.
    let mut done = *written;
    done.status = JobStatus::Completed;
    assert!(matches!(
        store.replace_job(&done).await.expect("replace"),
        JobCas::Written(w) if w.revision == 2
    ));
    assert!(
        store
            .unfinished_jobs()
            .await
            .expect("unfinished")
            .is_empty()
    );
    let listed = store.list_jobs(10, None).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, JobStatus::Completed);
}

pub async fn job_parts_are_written_once_read_and_deleted(fixture: &dyn Fixture) {
    let store = open(fixture).await;
    let base = 1_700_000_000_000;
    let users = |n: u8| {
        let mut bytes = b"[{\"email\":\"a@example.com\",\"pad\":\"".to_vec();
        bytes.extend(std::iter::repeat_n(b'a' + n, 400_000));
        bytes.extend_from_slice(b"\"}]");
        bytes
    };
    let mut batch = job("batch_parts", base, JobStatus::Pending);
    for part in 1..=3 {
        store
            .put_job_part(
                JobPart::new("batch_parts", part),
                &users(u8::try_from(part).unwrap_or(0)),
            )
            .await
            .expect("put part");
    }
    store.put_job(&batch).await.expect("put");
    assert_eq!(stored_part(&store, "batch_parts", 2).await, Some(users(2)));
    assert_eq!(stored_part(&store, "batch_parts", 4).await, None);
    assert_eq!(stored_part(&store, "batch_other", 1).await, None);
    store
        .delete_job_part(JobPart::new("batch_parts", 2))
        .await
        .expect("delete part");
    store
        .delete_job_part(JobPart::new("batch_parts", 2))
        .await
        .expect("deleting an absent part is no error");
    assert_eq!(stored_part(&store, "batch_parts", 2).await, None);
    assert_eq!(stored_part(&store, "batch_parts", 3).await, Some(users(3)));
    // Records stay small: the parts are not in the record, nor in the listing.
    let record = stored_job(&store, "batch_parts").await.expect("stored");
    assert!(serde_json::to_vec(&record).expect("json").len() < 1_000);
    // Retention deletes what is left of a batch's parts with it.
    batch.status = JobStatus::Failed;
    batch.updated_at = Timestamp::from_millis(base + 1);
    store.put_job(&batch).await.expect("put");
    assert_eq!(
        store
            .delete_finished_jobs(Timestamp::from_millis(base + 10))
            .await
            .expect("retention"),
        1
    );
    for part in 1..=3 {
        assert_eq!(stored_part(&store, "batch_parts", part).await, None);
    }
}

/// The users of part `number` of `job_id`, when stored.
async fn stored_part(store: &Arc<dyn Store>, job_id: &str, number: u32) -> Option<Vec<u8>> {
    store
        .get_job_part(JobPart::new(job_id, number))
        .await
        .expect("get part")
}

/// The live session with this id, if any.
async fn stored_session(store: &Arc<dyn Store>, id: &SessionId) -> Option<Session> {
    store.get_session(id).await.expect("get")
}

/// Creates each of `sessions`.
async fn create_all(store: &Arc<dyn Store>, sessions: &[&Session]) {
    for session in sessions {
        store.create_session(session).await.expect("create");
    }
}

/// Takes the live state record of `state`, if any.
async fn taken_state(store: &Arc<dyn Store>, state: &str) -> Option<StateRecord> {
    store.take_state(state).await.expect("take")
}

/// The job record with this id, if stored.
async fn stored_job(store: &Arc<dyn Store>, id: &str) -> Option<JobRecord> {
    store.get_job(id).await.expect("get")
}

/// The live sessions of `sub`.
async fn sessions_of(store: &Arc<dyn Store>, sub: &str) -> Vec<Session> {
    store.sessions_of(sub).await.expect("sessions of")
}

fn by_token(token: &str) -> TokenHash {
    TokenHash::of(token)
}

/// Replaces `session` and returns the stored copy (with its new revision); panics otherwise.
async fn replace(store: &Arc<dyn Store>, session: &Session) -> Session {
    match store.replace_session(session).await.expect("replace") {
        CasOutcome::Written(stored) => *stored,
        other => panic!("the replace was not written: {other:?}"),
    }
}

/// The ids of the live sessions `token` opens, sorted.
async fn ids_by_token(store: &Arc<dyn Store>, token: &str) -> Vec<SessionId> {
    let mut ids: Vec<SessionId> = store
        .sessions_by_token(&by_token(token))
        .await
        .expect("sessions by token")
        .into_iter()
        .map(|s| s.id)
        .collect();
    ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    ids
}

pub async fn sessions_create_get_update_delete(fixture: &dyn Fixture) {
    let store = open(fixture).await;
    let mut created = session("auth0|crud", "access-1", DAY);
    store.create_session(&created).await.expect("create");

    let found = stored_session(&store, &created.id).await;
    assert_eq!(found.as_ref(), Some(&created));
    let unknown = SessionId::generate();
    assert_eq!(stored_session(&store, &unknown).await, None);

    created.expires_at = created.expires_at.saturating_add(Duration::from_secs(60));
    created.claims.insert("name".into(), json!("New Name"));
    let stale = created.clone();
    created = replace(&store, &created).await;
    assert_eq!(
        created.revision,
        stale.revision + 1,
        "a write bumps the revision"
    );
    assert_eq!(
        stored_session(&store, &created.id).await,
        Some(created.clone())
    );

    let deleted = store.delete_session(&created.id).await.expect("delete");
    assert_eq!(deleted, Some(created.clone()));
    assert_eq!(stored_session(&store, &created.id).await, None);
    assert!(ids_by_token(&store, "access-1").await.is_empty());
    assert_eq!(
        store.delete_session(&created.id).await.expect("delete"),
        None
    );
    assert_eq!(
        store.replace_session(&created).await.expect("replace"),
        CasOutcome::Gone,
        "a write never brings a deleted session back"
    );
    assert_eq!(stored_session(&store, &created.id).await, None);
}

pub async fn sessions_are_found_by_every_access_token_they_issued(fixture: &dyn Fixture) {
    let store = open(fixture).await;
    let mut current = session("auth0|alias", "access-1", DAY);
    store.create_session(&current).await.expect("create");
    assert_eq!(
        ids_by_token(&store, "access-1").await,
        vec![current.id.clone()]
    );

    let now = Timestamp::now();
    for (access, refresh) in [("access-2", "refresh-2"), ("access-3", "refresh-3")] {
        rotate(&mut current, access, refresh, now);
        current = replace(&store, &current).await;
    }

    for token in ["access-1", "access-2", "access-3"] {
        let found = store
            .sessions_by_token(&by_token(token))
            .await
            .expect("sessions by token");
        assert_eq!(found, [current.clone()], "{token} finds the current tokens");
    }
    let stored = stored_session(&store, &current.id).await.expect("live");
    assert_eq!(stored.access_token, "access-3");
    assert_eq!(
        stored.check_refresh_token("refresh-2"),
        RefreshTokenMatch::Superseded
    );
    assert_eq!(
        stored.check_refresh_token("refresh-3"),
        RefreshTokenMatch::Current
    );
    assert!(ids_by_token(&store, "never-issued").await.is_empty());

    store.delete_session(&current.id).await.expect("delete");
    for token in ["access-1", "access-2", "access-3"] {
        assert!(
            ids_by_token(&store, token).await.is_empty(),
            "{token} no longer finds a deleted session"
        );
    }
}

/// SPEC §7: a session refreshed again and again keeps the current alias and those paired with
/// the kept superseded refresh tokens (16), each rotation read back from the store as the daemon
/// does; a dropped alias no longer finds it, and the backend's index shrinks with it.
pub async fn aliases_are_capped_keeping_those_paired_with_kept_refresh_tokens(
    fixture: &dyn Fixture,
) {
    let store = open(fixture).await;
    let first = session("auth0|capped", "cap-access-0", DAY);
    store.create_session(&first).await.expect("create");
    let now = Timestamp::now();
    for i in 1..=40 {
        let mut current = stored_session(&store, &first.id).await.expect("live");
        rotate(
            &mut current,
            &format!("cap-access-{i}"),
            &format!("cap-refresh-{i}"),
            now,
        );
        replace(&store, &current).await;
    }
    let stored = stored_session(&store, &first.id).await.expect("live");
    assert_eq!(stored.token_aliases.len(), super::KEPT_ALIASES);
    // cap-refresh-24..=39 are the kept superseded ones; cap-access-25..=39 were issued beside the
    // newest 15 of them and stay with the current cap-access-40: 16 in all (SPEC §7).
    assert_eq!(
        stored.check_refresh_token("cap-refresh-24"),
        RefreshTokenMatch::Superseded
    );
    for i in 25..=40 {
        let token = format!("cap-access-{i}");
        assert_eq!(
            ids_by_token(&store, &token).await,
            vec![first.id.clone()],
            "{token} still finds the session"
        );
    }
    for i in [0, 1, 23, 24] {
        let token = format!("cap-access-{i}");
        assert!(
            ids_by_token(&store, &token).await.is_empty(),
            "{token} was dropped from the index"
        );
    }
}

pub async fn a_stale_revision_is_refused(fixture: &dyn Fixture) {
    let store = open(fixture).await;
    let created = session("auth0|cas", "cas-1", DAY);
    store.create_session(&created).await.expect("create");

    let mut first = created.clone();
    first.claims.insert("name".into(), json!("first"));
    let written = replace(&store, &first).await;

    // A writer still holding the copy read before that write is refused, and told what is stored.
    let mut stale = created.clone();
    stale.claims.insert("name".into(), json!("stale"));
    match store.replace_session(&stale).await.expect("replace") {
        CasOutcome::Conflict(current) => assert_eq!(*current, written),
        other => panic!("a stale revision was not refused: {other:?}"),
    }
    assert_eq!(
        stored_session(&store, &created.id).await,
        Some(written),
        "nothing was overwritten"
    );
}

pub async fn concurrent_extend_and_rotate_both_land_after_a_reread(fixture: &dyn Fixture) {
    let store = open(fixture).await;
    let created = session("auth0|race", "race-1", DAY);
    store.create_session(&created).await.expect("create");
    let later = created
        .expires_at
        .saturating_add(Duration::from_secs(3_600));
    let now = Timestamp::now();
    let mut extended = created.clone();
    extended.expires_at = later;
    let mut rotated = created.clone();
    rotate(&mut rotated, "race-2", "refresh-race-2", now);

    let (a, b) = tokio::join!(
        store.replace_session(&extended),
        store.replace_session(&rotated)
    );
    let outcomes = [a.expect("extend"), b.expect("rotate")];
    let written = outcomes
        .iter()
        .filter(|o| matches!(o, CasOutcome::Written(_)))
        .count();
    assert_eq!(
        written, 1,
        "exactly one of two writers from one revision wins: {outcomes:?}"
    );

    // The loser re-reads and re-applies its own change; it never writes its stale copy.
    let [extend_outcome, _] = &outcomes;
    let mut current = stored_session(&store, &created.id).await.expect("live");
    if matches!(extend_outcome, CasOutcome::Written(_)) {
        rotate(&mut current, "race-2", "refresh-race-2", now);
    } else {
        current.expires_at = later;
    }
    let last = replace(&store, &current).await;
    assert_eq!(last.expires_at, later, "the extension landed");
    assert_eq!(
        last.refresh_token.as_deref(),
        Some("refresh-race-2"),
        "the rotation landed"
    );
    assert_eq!(last.revision, created.revision + 2);
    assert_eq!(
        ids_by_token(&store, "race-2").await,
        vec![created.id.clone()]
    );
    assert_eq!(ids_by_token(&store, "race-1").await, [created.id]);
}

pub async fn one_access_token_may_open_several_sessions(fixture: &dyn Fixture) {
    let store = open(fixture).await;
    // Two logins of one user within a second: Auth0 issued the same access token twice.
    let phone = session("auth0|twice", "same-token", DAY);
    let laptop = session("auth0|twice", "same-token", DAY);
    create_all(&store, &[&phone, &laptop]).await;
    let mut both = vec![phone.id.clone(), laptop.id.clone()];
    both.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(ids_by_token(&store, "same-token").await, both);

    // Each rotates on its own; the shared token still finds both.
    let now = Timestamp::now();
    let mut rotated = phone.clone();
    rotate(&mut rotated, "phone-2", "refresh-phone-2", now);
    replace(&store, &rotated).await;
    assert_eq!(ids_by_token(&store, "same-token").await, both);
    assert_eq!(
        ids_by_token(&store, "phone-2").await,
        vec![phone.id.clone()]
    );

    // Ending one leaves the other found by the token.
    store.delete_session(&phone.id).await.expect("delete");
    assert_eq!(
        ids_by_token(&store, "same-token").await,
        vec![laptop.id.clone()]
    );
    assert!(ids_by_token(&store, "phone-2").await.is_empty());
    assert_eq!(store.sessions_of("auth0|twice").await.expect("of").len(), 1);
}

pub async fn sessions_are_listed_and_deleted_by_sub(fixture: &dyn Fixture) {
    let store = open(fixture).await;
    let first = session("auth0|a", "a-1", DAY);
    let second = session("auth0|a", "a-2", DAY);
    // A sub that starts like the other must not be confused with it.
    let other = session("auth0|ab", "ab-1", DAY);
    create_all(&store, &[&first, &second, &other]).await;

    let ids = |sessions: Vec<Session>| -> BTreeSet<String> {
        sessions
            .into_iter()
            .map(|s| s.id.as_str().to_owned())
            .collect()
    };
    let of_a = sessions_of(&store, "auth0|a").await;
    assert_eq!(
        ids(of_a),
        BTreeSet::from([first.id.as_str().to_owned(), second.id.as_str().to_owned()])
    );
    assert!(sessions_of(&store, "auth0|none").await.is_empty());

    let deleted = store
        .delete_sessions_of("auth0|a")
        .await
        .expect("delete by sub");
    assert_eq!(deleted.len(), 2);
    assert!(sessions_of(&store, "auth0|a").await.is_empty());
    assert_eq!(stored_session(&store, &first.id).await, None);
    assert!(ids_by_token(&store, "a-2").await.is_empty());
    assert_eq!(
        stored_session(&store, &other.id).await,
        Some(other.clone()),
        "another user's sessions stay"
    );
    assert!(
        store
            .delete_sessions_of("auth0|a")
            .await
            .expect("delete by sub")
            .is_empty()
    );

    // A sub moved by an update is indexed under its new value only.
    let mut moved = other.clone();
    moved.sub = "auth0|moved".into();
    replace(&store, &moved).await;
    assert!(sessions_of(&store, "auth0|ab").await.is_empty());
    assert_eq!(sessions_of(&store, "auth0|moved").await.len(), 1);
}

pub async fn active_subs_and_live_count(fixture: &dyn Fixture) {
    let store = open(fixture).await;
    assert!(store.active_subs().await.expect("active subs").is_empty());
    assert_eq!(store.count_live_sessions().await.expect("count"), 0);

    for s in [
        session("auth0|b", "b-1", DAY),
        session("auth0|a", "a-1", DAY),
        session("auth0|a", "a-2", DAY),
        session("auth0|short", "short-1", SHORT),
    ] {
        store.create_session(&s).await.expect("create");
    }
    assert_eq!(
        store.active_subs().await.expect("active subs"),
        ["auth0|a", "auth0|b", "auth0|short"]
    );
    assert_eq!(store.count_live_sessions().await.expect("count"), 4);

    fixture.clock().advance(PAST_SHORT);
    assert_eq!(
        store.active_subs().await.expect("active subs"),
        ["auth0|a", "auth0|b"]
    );
    assert_eq!(store.count_live_sessions().await.expect("count"), 3);
}

pub async fn expired_sessions_are_never_returned(fixture: &dyn Fixture) {
    let store = open(fixture).await;
    let short = session("auth0|expiring", "expiring-1", SHORT);
    store.create_session(&short).await.expect("create");
    assert!(stored_session(&store, &short.id).await.is_some());

    fixture.clock().advance(PAST_SHORT);
    assert_eq!(stored_session(&store, &short.id).await, None);
    assert!(ids_by_token(&store, "expiring-1").await.is_empty());
    assert!(sessions_of(&store, "auth0|expiring").await.is_empty());
    assert!(store.active_subs().await.expect("active subs").is_empty());
    assert_eq!(store.count_live_sessions().await.expect("count"), 0);
    assert_eq!(
        store.replace_session(&short).await.expect("replace"),
        CasOutcome::Gone,
        "an expired session is not written back to life"
    );
    assert_eq!(stored_session(&store, &short.id).await, None);
    assert!(
        store
            .delete_sessions_of("auth0|expiring")
            .await
            .expect("delete by sub")
            .is_empty()
    );
    assert_eq!(store.delete_session(&short.id).await.expect("delete"), None);
}

pub async fn sweep_removes_expired_records_and_keeps_live_ones(fixture: &dyn Fixture) {
    let store = open(fixture).await;
    let short = session("auth0|sweep", "sweep-short", SHORT);
    let long = session("auth0|sweep", "sweep-long", DAY);
    create_all(&store, &[&short, &long]).await;
    assert!(
        store
            .put_state(&state("sweep-short", SHORT))
            .await
            .expect("put state")
    );
    assert!(
        store
            .put_state(&state("sweep-long", DAY))
            .await
            .expect("put state")
    );
    assert!(take(&store, "sweep-short", "h", SHORT).await);
    assert!(take(&store, "sweep-long", "h", DAY).await);

    fixture.pass_lease_time(PAST_SHORT).await;
    store.sweep().await.expect("sweep");
    // Backends with native expiry may report nothing removed; what matters is what remains.
    assert_eq!(stored_session(&store, &short.id).await, None);
    assert_eq!(stored_session(&store, &long.id).await, Some(long.clone()));
    assert_eq!(
        ids_by_token(&store, "sweep-long").await,
        vec![long.id.clone()]
    );
    assert_eq!(sessions_of(&store, "auth0|sweep").await, [long]);
    assert_eq!(store.count_live_sessions().await.expect("count"), 1);
    assert_eq!(taken_state(&store, "sweep-short").await, None);
    assert!(taken_state(&store, "sweep-long").await.is_some());
    assert!(!take(&store, "sweep-long", "other", DAY).await);
    assert!(take(&store, "sweep-short", "other", DAY).await);
    // A second sweep finds nothing more to do.
    let again = store.sweep().await.expect("sweep");
    assert_eq!((again.sessions, again.states), (0, 0));
}

pub async fn states_are_single_use_and_expire(fixture: &dyn Fixture) {
    let store = open(fixture).await;
    let record = state("state-1", DAY);
    assert!(store.put_state(&record).await.expect("put"));
    let mut other = state("state-1", DAY);
    other.client = "another".into();
    assert!(
        !store.put_state(&other).await.expect("put"),
        "a live state is never replaced"
    );
    assert_eq!(taken_state(&store, "state-1").await, Some(record));
    assert_eq!(taken_state(&store, "state-1").await, None);
    assert_eq!(taken_state(&store, "never-put").await, None);

    let short = state("state-2", SHORT);
    assert!(store.put_state(&short).await.expect("put"));
    fixture.clock().advance(PAST_SHORT);
    let fresh = state("state-2", DAY);
    assert!(
        store.put_state(&fresh).await.expect("put"),
        "an expired state may be replaced"
    );
    assert_eq!(taken_state(&store, "state-2").await, Some(fresh));

    assert!(
        store
            .put_state(&state("state-3", SHORT))
            .await
            .expect("put")
    );
    fixture.clock().advance(PAST_SHORT);
    assert_eq!(
        taken_state(&store, "state-3").await,
        None,
        "an expired state is never returned"
    );
}

pub async fn a_state_is_taken_once_by_concurrent_takers(fixture: &dyn Fixture) {
    let store = open(fixture).await;
    assert!(
        store
            .put_state(&state("contended", DAY))
            .await
            .expect("put")
    );
    let winners = concurrent_winners(20, |_| {
        let store = Arc::clone(&store);
        async move { Ok(store.take_state("contended").await?.is_some()) }
    })
    .await;
    assert_eq!(winners, 1, "exactly one concurrent take gets the state");
}

pub async fn a_state_is_read_in_place_and_taken_only_as_read(fixture: &dyn Fixture) {
    let store = open(fixture).await;
    let record = state("peeked", DAY);
    assert!(store.put_state(&record).await.expect("put"));
    for _ in 0..2 {
        assert_eq!(
            store.get_state("peeked").await.expect("get"),
            Some(record.clone()),
            "a read leaves the record"
        );
    }
    assert_eq!(store.get_state("never-put").await.expect("get"), None);

    let mut replaced = record.clone();
    replaced.binding = "someone-else".into();
    assert!(
        !store.take_state_if(&replaced).await.expect("take"),
        "another record under the same state is left alone"
    );
    let winners = concurrent_winners(20, |_| {
        let (store, record) = (Arc::clone(&store), record.clone());
        async move { store.take_state_if(&record).await }
    })
    .await;
    assert_eq!(winners, 1, "exactly one concurrent take gets the state");
    assert_eq!(store.get_state("peeked").await.expect("get"), None);
    assert_eq!(taken_state(&store, "peeked").await, None);

    let short = state("peeked-short", SHORT);
    assert!(store.put_state(&short).await.expect("put"));
    fixture.clock().advance(PAST_SHORT);
    assert_eq!(
        store.get_state("peeked-short").await.expect("get"),
        None,
        "an expired state is never returned"
    );
    assert!(
        !store.take_state_if(&short).await.expect("take"),
        "nor taken"
    );
}

pub async fn leases_are_exclusive_expire_and_are_released_by_their_holder(fixture: &dyn Fixture) {
    play_leases(
        fixture,
        &[
            Take("job:1", "daemon-a", DAY, true, "a free lease is taken"),
            Take("job:1", "daemon-b", DAY, false, "a held lease is refused"),
            Take(
                "job:1",
                "daemon-a",
                DAY,
                true,
                "the holder extends its lease",
            ),
            Take(
                "job:2",
                "daemon-b",
                DAY,
                true,
                "another key is another lease",
            ),
            Release("job:1", "daemon-b", false, "only the holder releases"),
            Take("job:1", "daemon-b", DAY, false, "still held"),
            Release("job:1", "daemon-a", true, "the holder releases"),
            Release("job:1", "daemon-a", false, "a released lease is not held"),
            Take("job:1", "daemon-b", DAY, true, "a released lease is free"),
            Take(
                "refresh:x",
                "daemon-a",
                SHORT,
                true,
                "a free lease is taken",
            ),
            Take(
                "refresh:x",
                "daemon-b",
                SHORT,
                false,
                "a held lease is refused",
            ),
            Pass(PAST_SHORT),
            Take(
                "refresh:x",
                "daemon-b",
                DAY,
                true,
                "an expired lease is free",
            ),
            Release(
                "refresh:x",
                "daemon-a",
                false,
                "a holder whose lease expired cannot release the next holder's",
            ),
            Take(
                "refresh:x",
                "daemon-a",
                DAY,
                false,
                "the next holder holds it",
            ),
        ],
    )
    .await;
}

pub async fn leases_are_extended_only_by_their_holder(fixture: &dyn Fixture) {
    let half = Duration::from_millis(500);
    play_leases(
        fixture,
        &[
            Take("job:x", "a", SHORT, true, "a free lease is taken"),
            Pass(half),
            Take("job:x", "a", SHORT, true, "the holder extends its lease"),
            Take(
                "job:x",
                "b",
                DAY,
                false,
                "another holder's attempt neither takes nor extends it",
            ),
            // Past the first term, within the extension: still held.
            Pass(half),
            Take(
                "job:x",
                "b",
                SHORT,
                false,
                "the extension counts from when it was made",
            ),
            // Past the extension: free, although b asked for a day while a held it.
            Pass(PAST_SHORT),
            Take(
                "job:x",
                "c",
                SHORT,
                true,
                "a refused attempt extended nothing",
            ),
            Release("job:x", "b", false, "only the holder releases"),
            Release("job:x", "c", true, "the holder releases"),
        ],
    )
    .await;
}

pub async fn an_expired_lease_is_no_longer_held_by_its_holder(fixture: &dyn Fixture) {
    play_leases(
        fixture,
        &[
            Take("refresh:y", "a", SHORT, true, "a free lease is taken"),
            Pass(PAST_SHORT),
            Release(
                "refresh:y",
                "a",
                false,
                "a lease past its expiry is not held any more, even by nobody else",
            ),
            Take("refresh:y", "b", SHORT, true, "and another holder takes it"),
            Take(
                "refresh:y",
                "a",
                SHORT,
                false,
                "its old holder does not get it back while it is held",
            ),
            Pass(PAST_SHORT),
            Take(
                "refresh:y",
                "a",
                SHORT,
                true,
                "once it expired again, anyone gets it",
            ),
        ],
    )
    .await;
}

/// One step of a lease scenario ([`play_leases`]): a call and the answer it must get, with why,
/// or lease time passing.
#[derive(Debug)]
enum LeaseStep {
    /// `try_lease((key, holder), ttl)` answers whether the holder holds the lease.
    Take(&'static str, &'static str, Duration, bool, &'static str),
    /// `release_lease((key, holder))` answers whether it released it.
    Release(&'static str, &'static str, bool, &'static str),
    /// [`Fixture::pass_lease_time`].
    Pass(Duration),
}
use LeaseStep::{Pass, Release, Take};

/// Plays `steps` in order on a fresh store; a step answered otherwise fails naming its number,
/// the step and why it must answer so.
async fn play_leases(fixture: &dyn Fixture, steps: &[LeaseStep]) {
    let store = open(fixture).await;
    for (number, step) in steps.iter().enumerate() {
        let (answer, expected, why) = match *step {
            Take(key, holder, ttl, held, why) => (take(&store, key, holder, ttl).await, held, why),
            Release(key, holder, released, why) => {
                (release(&store, key, holder).await, released, why)
            }
            Pass(duration) => {
                fixture.pass_lease_time(duration).await;
                continue;
            }
        };
        assert_eq!(answer, expected, "step {number} {step:?}: {why}");
    }
}

pub async fn one_of_concurrent_holders_gets_a_lease(fixture: &dyn Fixture) {
    let store = open(fixture).await;
    let winners = concurrent_winners(20, |i| {
        let store = Arc::clone(&store);
        async move {
            let holder = format!("daemon-{i}");
            store
                .try_lease(LeaseClaim::new("contended", &holder), DAY)
                .await
        }
    })
    .await;
    assert_eq!(
        winners, 1,
        "exactly one of concurrent holders gets the lease"
    );
}

/// `try_lease(key, holder, ttl)`: whether `holder` holds the lease now.
async fn take(store: &Arc<dyn Store>, key: &str, holder: &str, ttl: Duration) -> bool {
    store
        .try_lease(LeaseClaim::new(key, holder), ttl)
        .await
        .expect("lease")
}

/// `release_lease(key, holder)`: whether it released it.
async fn release(store: &Arc<dyn Store>, key: &str, holder: &str) -> bool {
    store
        .release_lease(LeaseClaim::new(key, holder))
        .await
        .expect("release")
}

/// Runs `attempt(0..n)` at once, each on a task of its own, and counts those that answered
/// `true` (one of concurrent takers of a state, a lease, a replay record).
async fn concurrent_winners<F>(n: usize, attempt: impl Fn(usize) -> F) -> usize
where
    F: Future<Output = Result<bool, StoreError>> + Send + 'static,
{
    let takers: Vec<_> = (0..n).map(|i| tokio::spawn(attempt(i))).collect();
    let mut winners = 0;
    for taker in takers {
        if taker.await.expect("joins").expect("the attempt answers") {
            winners += 1;
        }
    }
    winners
}

pub async fn job_pages_never_skip_records_created_in_one_millisecond(fixture: &dyn Fixture) {
    let store = open(fixture).await;
    let at = 1_700_000_000_000;
    for id in ["job_a", "job_b", "job_c", "job_d", "job_e"] {
        store
            .put_job(&job(id, at, JobStatus::Pending))
            .await
            .expect("put");
    }
    store
        .put_job(&job("job_z", at - 1, JobStatus::Pending))
        .await
        .expect("put");
    // Page through two at a time, each page starting after the last item of the one before.
    let mut seen = Vec::new();
    let mut cursor: Option<JobCursor> = None;
    loop {
        let page = store.list_jobs(2, cursor.as_ref()).await.expect("list");
        let Some(last) = page.last() else { break };
        cursor = Some(JobCursor {
            created_at: last.created_at,
            id: Some(last.id.clone()),
        });
        seen.extend(page.into_iter().map(|j| j.id));
    }
    assert_eq!(seen, ["job_e", "job_d", "job_c", "job_b", "job_a", "job_z"]);
}

pub async fn jobs_list_newest_first_with_before(fixture: &dyn Fixture) {
    let store = open(fixture).await;
    assert!(store.list_jobs(10, None).await.expect("list").is_empty());
    let base = 1_700_000_000_000;
    let statuses = [
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Processing,
        JobStatus::Pending,
        JobStatus::Expired,
    ];
    // Put out of order, so the order comes from `created_at`, not from insertion.
    for i in [3i64, 0, 4, 1, 2] {
        let id = if i == 2 {
            "batch_2".to_owned()
        } else {
            format!("job_{i}")
        };
        let status = statuses[usize::try_from(i).expect("small")];
        store
            .put_job(&job(&id, base + i * 1_000, status))
            .await
            .expect("put");
    }
    let ids = |jobs: Vec<JobRecord>| jobs.into_iter().map(|j| j.id).collect::<Vec<_>>();

    assert_eq!(
        ids(store.list_jobs(3, None).await.expect("list")),
        ["job_4", "job_3", "batch_2"]
    );
    let next = JobCursor {
        created_at: Timestamp::from_millis(base + 2_000),
        id: Some("batch_2".into()),
    };
    assert_eq!(
        ids(store.list_jobs(3, Some(&next)).await.expect("list")),
        ["job_1", "job_0"]
    );
    assert_eq!(
        ids(store.list_jobs(1, Some(&next)).await.expect("list")),
        ["job_1"]
    );
    assert!(store.list_jobs(0, None).await.expect("list").is_empty());
    let bare = JobCursor {
        created_at: Timestamp::from_millis(base),
        id: None,
    };
    assert!(
        store
            .list_jobs(10, Some(&bare))
            .await
            .expect("list")
            .is_empty()
    );
    let bare = JobCursor {
        created_at: Timestamp::from_millis(base + 2_000),
        id: None,
    };
    assert_eq!(
        ids(store.list_jobs(10, Some(&bare)).await.expect("list")),
        ["job_1", "job_0"]
    );

    // An update changes the record in place: no duplicate in the listing.
    let mut updated = job("job_3", base + 3_000, JobStatus::Completed);
    updated.updated_at = Timestamp::from_millis(base + 60_000);
    updated.summary = Some(json!({"failed": 0, "updated": 0, "inserted": 1, "total": 1}));
    store.put_job(&updated).await.expect("put");
    assert_eq!(stored_job(&store, "job_3").await, Some(updated.clone()));
    assert_eq!(stored_job(&store, "job_none").await, None);
    assert_eq!(store.list_jobs(10, None).await.expect("list").len(), 5);
    let batch = stored_job(&store, "batch_2").await.expect("stored");
    assert_eq!(
        (batch.kind, batch.detail),
        (JobKind::Batch, json!({"parts": [1, 2]}))
    );

    assert_eq!(
        ids(store.unfinished_jobs().await.expect("unfinished")),
        ["batch_2"],
        "job_3 completed, the others are final"
    );
    store
        .put_job(&job("job_5", base + 5_000, JobStatus::Pending))
        .await
        .expect("put");
    assert_eq!(
        ids(store.unfinished_jobs().await.expect("unfinished")),
        ["batch_2", "job_5"]
    );
}

pub async fn finished_jobs_past_retention_are_deleted(fixture: &dyn Fixture) {
    let store = open(fixture).await;
    let base = 1_700_000_000_000;
    let cutoff = Timestamp::from_millis(base + 10_000);
    let mut old_done = job("job_old_done", base, JobStatus::Completed);
    old_done.updated_at = Timestamp::from_millis(base + 5_000);
    let mut recent_done = job("job_recent_done", base, JobStatus::Failed);
    recent_done.updated_at = Timestamp::from_millis(base + 20_000);
    let old_running = job("job_old_running", base, JobStatus::Processing);
    for j in [&old_done, &recent_done, &old_running] {
        store.put_job(j).await.expect("put");
    }

    assert_eq!(
        store.delete_finished_jobs(cutoff).await.expect("retention"),
        1
    );
    assert_eq!(stored_job(&store, "job_old_done").await, None);
    assert!(stored_job(&store, "job_recent_done").await.is_some());
    assert!(stored_job(&store, "job_old_running").await.is_some());
    let listed: BTreeSet<String> = store
        .list_jobs(10, None)
        .await
        .expect("list")
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(
        listed,
        BTreeSet::from(["job_recent_done".to_owned(), "job_old_running".to_owned()])
    );
    assert_eq!(
        store.delete_finished_jobs(cutoff).await.expect("retention"),
        0
    );
}

/// What the jobs loop resumes from: unfinished records oldest first (ties in any order), a
/// record leaving the set once a write makes it final, and a batch's large `detail` round-tripped.
pub async fn unfinished_jobs_are_oldest_first_and_leave_once_final(fixture: &dyn Fixture) {
    let store = open(fixture).await;
    let base = 1_700_000_000_000;
    let mut batch = job("batch_c", base - 5_000, JobStatus::Pending);
    batch.detail =
        json!({"parts": [{"part": 1, "status": "queued", "users": "x".repeat(600_000)}]});
    for record in [
        job("job_b", base, JobStatus::Pending),
        job("job_a", base, JobStatus::Processing),
        batch.clone(),
        job("job_d", base + 5_000, JobStatus::Completed),
        job("job_e", base + 6_000, JobStatus::Pending),
    ] {
        store.put_job(&record).await.expect("put");
    }
    let ids = |jobs: &[JobRecord]| jobs.iter().map(|j| j.id.clone()).collect::<Vec<_>>();
    let unfinished = store.unfinished_jobs().await.expect("unfinished");
    let order = ids(&unfinished);
    assert_eq!(order.len(), 4, "{order:?}");
    assert_eq!(order[0], "batch_c");
    assert_eq!(
        BTreeSet::from([order[1].clone(), order[2].clone()]),
        BTreeSet::from(["job_a".to_owned(), "job_b".to_owned()])
    );
    assert_eq!(order[3], "job_e");
    assert_eq!(unfinished[0], batch, "the detail round-trips");

    let mut done = job("job_a", base, JobStatus::Completed);
    done.updated_at = Timestamp::from_millis(base + 9_000);
    store.put_job(&done).await.expect("put");
    let mut expired = batch.clone();
    expired.status = JobStatus::Expired;
    expired.detail = json!({"parts": []});
    store.put_job(&expired).await.expect("put");
    assert_eq!(
        ids(&store.unfinished_jobs().await.expect("unfinished")),
        ["job_b", "job_e"]
    );
    assert_eq!(stored_job(&store, "batch_c").await, Some(expired));
    assert_eq!(store.list_jobs(10, None).await.expect("list").len(), 5);
}

pub async fn records_survive_a_reopen(fixture: &dyn Fixture) {
    let kept = session("auth0|persist", "persist-1", DAY);
    let ended = session("auth0|persist", "persist-2", DAY);
    let record = state("persist-state", DAY);
    let submitted = job("job_persist", 1_700_000_000_000, JobStatus::Processing);
    {
        let store = open(fixture).await;
        store.create_session(&kept).await.expect("create");
        store.create_session(&ended).await.expect("create");
        store.delete_session(&ended.id).await.expect("delete");
        assert!(store.put_state(&record).await.expect("put state"));
        store.put_job(&submitted).await.expect("put job");
    }

    let store = open(fixture).await;
    assert_eq!(stored_session(&store, &kept.id).await, Some(kept.clone()));
    assert_eq!(
        ids_by_token(&store, "persist-1").await,
        vec![kept.id.clone()]
    );
    assert_eq!(stored_session(&store, &ended.id).await, None);
    assert_eq!(sessions_of(&store, "auth0|persist").await, [kept]);
    assert_eq!(taken_state(&store, "persist-state").await, Some(record));
    assert_eq!(
        store.unfinished_jobs().await.expect("unfinished"),
        [submitted]
    );
}

pub async fn writable_and_flush_answer(fixture: &dyn Fixture) {
    let store = open(fixture).await;
    store.writable().await.expect("ping");
    store.flush().await.expect("flush");
}

/// A session whose login carried the Auth0 session id `sid` (the ID token's `sid` claim).
fn session_in_auth0_session(
    sub: &str,
    access_token: &str,
    sid: &str,
    lifetime: Duration,
) -> Session {
    let mut claims = Map::new();
    claims.insert("sid".into(), Value::String(sid.into()));
    session_with_claims(sub, access_token, lifetime, claims)
}

/// SPEC §5, §7: sessions are found by the hash of their login's Auth0 session id, through a
/// refresh, until they are deleted or expire; a session without one is in no such index; the
/// backend holds the hash, never the id.
pub async fn sessions_are_found_by_auth0_session_until_they_end(fixture: &dyn Fixture) {
    use super::Auth0SessionHash;
    let backend = fixture.open().await.expect("the store opens");
    let store = sealed(Arc::clone(&backend));
    let first = session_in_auth0_session("auth0|x", "x-1", "sso-A", DAY);
    let second = session_in_auth0_session("auth0|x", "x-2", "sso-A", DAY);
    let other = session_in_auth0_session("auth0|x", "x-3", "sso-B", DAY);
    let short = session_in_auth0_session("auth0|y", "y-1", "sso-C", SHORT);
    let password = session("auth0|x", "x-4", DAY);
    assert_eq!(
        password.auth0_session, None,
        "no `sid` claim, no index entry"
    );
    create_all(&store, &[&first, &second, &other, &short, &password]).await;
    let ids_of = |sid: &'static str| {
        let store = Arc::clone(&store);
        async move {
            store
                .sessions_of_auth0_session(&Auth0SessionHash::of(sid))
                .await
                .expect("sessions of an Auth0 session")
                .into_iter()
                .map(|s| s.id.as_str().to_owned())
                .collect::<BTreeSet<String>>()
        }
    };
    let both = BTreeSet::from([first.id.as_str().to_owned(), second.id.as_str().to_owned()]);
    assert_eq!(ids_of("sso-A").await, both);
    assert_eq!(
        ids_of("sso-B").await,
        BTreeSet::from([other.id.as_str().to_owned()])
    );
    assert!(ids_of("sso-none").await.is_empty());

    // The backend is indexed by the hash: asking it directly (no sealing) finds the stored keys,
    // and the id itself is nowhere in what it returns.
    let stored = backend
        .sessions_of_auth0_session(&Auth0SessionHash::of("sso-A"))
        .await
        .expect("backend read");
    assert_eq!(stored.len(), 2);
    let raw = serde_json::to_string(&stored).expect("serialises");
    assert!(
        !raw.contains("sso-A"),
        "the Auth0 session id reached the backend: {raw}"
    );

    // A refresh keeps the entry.
    let mut refreshed = first.clone();
    rotate(&mut refreshed, "x-1b", "refresh-x-1b", Timestamp::now());
    replace(&store, &refreshed).await;
    assert_eq!(ids_of("sso-A").await, both);

    // Deleting one drops its entry only; expiry hides another.
    store.delete_session(&first.id).await.expect("delete");
    assert_eq!(
        ids_of("sso-A").await,
        BTreeSet::from([second.id.as_str().to_owned()])
    );
    assert_eq!(ids_of("sso-C").await.len(), 1);
    fixture.clock().advance(PAST_SHORT);
    assert!(
        ids_of("sso-C").await.is_empty(),
        "an expired session is never returned"
    );
    store.sweep().await.expect("sweep");
    assert!(ids_of("sso-C").await.is_empty());
    assert_eq!(ids_of("sso-A").await.len(), 1);
}

/// The replay record of a logout token's `jti` (SPEC §5): set-if-absent, exactly one of
/// concurrent callers records it, and it can be recorded again once it expired.
pub async fn record_once_is_set_if_absent_and_expires(fixture: &dyn Fixture) {
    let store = open(fixture).await;
    assert!(store.record_once("jti:1", SHORT).await.expect("record"));
    assert!(
        !store.record_once("jti:1", SHORT).await.expect("record"),
        "a live record refuses a second one"
    );
    assert!(store.record_once("jti:2", SHORT).await.expect("record"));

    let first = concurrent_winners(16, |_| {
        let store = Arc::clone(&store);
        async move { store.record_once("jti:contended", DAY).await }
    })
    .await;
    assert_eq!(first, 1, "exactly one of concurrent callers records it");

    fixture.pass_lease_time(PAST_SHORT).await;
    assert!(
        store.record_once("jti:1", SHORT).await.expect("record"),
        "an expired record is absent"
    );
    assert!(
        !store
            .record_once("jti:contended", DAY)
            .await
            .expect("record"),
        "a live one is kept"
    );
}
