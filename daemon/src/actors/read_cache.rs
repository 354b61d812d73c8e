//! The read cache of `SessionService::lookup`: sessions read from the store, kept in memory
//! by the Bearer token they were found by and by session id, each with its `/userinfo` body
//! rendered on first use. In front of a store other daemons write too (Redis), `SessionService`
//! serves a copy only after reading the record's revision.
//!
//! **Bounded in bytes** (`sessions.cacheBytes`). Each entry weighs an estimate of what it holds
//! ([`weight_of`]: its tokens, ID token, claims, the body rendered from them, its keys). When an
//! insert would take the total past the budget, the least recently used entries are evicted
//! until the total is at most 90% of it, so evictions come in batches rather than on every
//! insert. The LRU is approximate, so that a hit never takes the write lock: a logical clock
//! advances on every insert, and a hit copies the clock into the entry's `last_used` (an atomic
//! store under the read lock, skipped when already current). Eviction (under the write lock)
//! sorts the entries by `last_used` and drops the oldest; entries used since the same insert tie.
//! The evicted sessions are freed after the lock is released. A typical session (an 800-byte
//! access token, a 900-byte ID token, a dozen profile claims) weighs about 5.8 KB, so the default
//! 64 MiB keeps about 11,000 sessions; an eviction then scans them all and frees a tenth, about a
//! millisecond under the write lock, once per thousand or so inserts.
//!
//! **Never a deleted or replaced session.** A reader that missed reads the store and then inserts
//! what it read; a write may land in between, after which the record read is stale. Every
//! [`ReadCache::forget`] / [`ReadCache::forget_id`] bumps a generation under the write lock, the
//! owner calls one after each store write (and one before), and a reader takes the
//! [`ReadCache::generation`] before its store read and hands it to [`ReadCache::insert`], which
//! keeps nothing when the generation moved. Either the reader's insert comes first in lock order
//! (and the writer's later forget drops it) or the forget comes first (and the insert is refused):
//! a stale copy is never served. The generation is global, so a write anywhere also refuses the
//! inserts in flight for other sessions: those reads are simply served uncached this once.

use std::collections::HashMap;
use std::mem::size_of;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use actix_web::web::Bytes;
use serde_json::Value;

use crate::store::{RotatedRefreshToken, Session, SessionId, TokenHash};

/// How a request names its session.
#[derive(Clone, Copy)]
pub enum SessionKey<'a> {
    /// A Bearer access token (any the session issued).
    AccessToken(&'a str),
    /// The `sid` cookie.
    Id(&'a SessionId),
}

/// A session as the read path holds it, with its `/userinfo` body rendered on first use.
pub struct ReadSession {
    pub session: Session,
    rendered: OnceLock<Bytes>,
    /// The cache's clock at the last insert or hit of this copy (see the module docs).
    last_used: AtomicU64,
}

impl ReadSession {
    pub fn new(session: Session) -> Arc<Self> {
        Arc::new(Self {
            session,
            rendered: OnceLock::new(),
            last_used: AtomicU64::new(0),
        })
    }

    /// The body kept for this copy, if any (see [`ReadSession::keep_body`]).
    pub fn cached_body(&self) -> Option<Bytes> {
        self.rendered.get().cloned()
    }

    /// Keeps `body` as this copy's `/userinfo` body (made once per copy, asynchronously when
    /// plugins add claims); the first body kept wins and is returned.
    pub fn keep_body(&self, body: Bytes) -> Bytes {
        self.rendered.get_or_init(|| body).clone()
    }

    fn touch(&self, now: u64) {
        // A load first: a hot entry's cache line is not written on every hit.
        if self.last_used.load(Ordering::Relaxed) < now {
            self.last_used.store(now, Ordering::Relaxed);
        }
    }

    fn last_used(&self) -> u64 {
        self.last_used.load(Ordering::Relaxed)
    }
}

/// The cache's write generation, read by [`ReadCache::generation`] before a store read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Generation(u64);

/// Sessions read, by every key they were read under (see the module docs).
pub struct ReadCache {
    entries: RwLock<Entries>,
    /// Bumped (under the write lock) by every forget.
    generation: AtomicU64,
    /// The LRU clock: advanced (under the write lock) by every insert, read by hits.
    clock: AtomicU64,
    budget: u64,
}

#[derive(Default)]
struct Entries {
    /// By the Bearer access token as presented: a hit hashes the token with a fast hasher instead
    /// of the SHA-256 the store indexes it by (that SHA-256 was 3% of `/userinfo`'s CPU). Only
    /// tokens that found a session are kept, so callers cannot fill the map with keys of their own.
    /// Every key is in the `tokens` of the `by_id` entry of the copy it names.
    by_token: HashMap<Box<str>, Arc<ReadSession>, foldhash::fast::RandomState>,
    /// By session id, with the tokens the copy is also kept under, so a write drops them all.
    by_id: HashMap<SessionId, Cached>,
    /// The sum of the `by_id` entries' weights: at most the budget.
    bytes: u64,
}

struct Cached {
    read: Arc<ReadSession>,
    tokens: Vec<Box<str>>,
    /// [`weight_of`] the session plus [`token_weight`] of each of `tokens`.
    weight: u64,
}

/// An entry heavier than this share of the budget is not kept (it would push out many others).
const MAX_ENTRY_SHARE: u64 = 8;

impl Entries {
    fn forget_id(&mut self, id: &SessionId) {
        if let Some(cached) = self.by_id.remove(id) {
            self.bytes -= cached.weight;
            for token in &cached.tokens {
                self.by_token.remove(token);
            }
        }
    }

    /// Evicts the least recently used entries until the total is at most `goal`, and hands them
    /// back, to be dropped once the lock is released.
    fn evict_to(&mut self, goal: u64) -> Vec<Cached> {
        if self.bytes <= goal {
            return Vec::new();
        }
        let need = self.bytes - goal;
        let mut ages: Vec<(u64, u64)> = self
            .by_id
            .values()
            .map(|c| (c.read.last_used(), c.weight))
            .collect();
        ages.sort_unstable_by_key(|&(used, _)| used);
        // The cut: every entry used before it goes, and ties at it until enough is freed.
        let (mut cut, mut below, mut through) = (0, 0, 0);
        for (used, weight) in ages {
            if through >= need {
                break;
            }
            if used != cut {
                below = through;
                cut = used;
            }
            through += weight;
        }
        let mut ties_needed = need.saturating_sub(below);
        let evicted: Vec<Cached> = self
            .by_id
            .extract_if(|_, cached| {
                let used = cached.read.last_used();
                if used == cut && ties_needed > 0 {
                    ties_needed = ties_needed.saturating_sub(cached.weight);
                    return true;
                }
                used < cut
            })
            .map(|(_, cached)| cached)
            .collect();
        for cached in &evicted {
            self.bytes -= cached.weight;
            for token in &cached.tokens {
                self.by_token.remove(token);
            }
        }
        evicted
    }
}

impl ReadCache {
    /// A cache holding at most `budget` bytes of entries (by [`weight_of`]'s estimate).
    pub fn new(budget: u64) -> Self {
        Self {
            entries: RwLock::default(),
            generation: AtomicU64::new(0),
            clock: AtomicU64::new(0),
            budget,
        }
    }

    /// The hit path: a read lock, one hash lookup, an atomic load and at most one atomic store.
    pub fn get(&self, key: SessionKey<'_>) -> Option<Arc<ReadSession>> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let read = match key {
            SessionKey::AccessToken(token) => entries.by_token.get(token),
            SessionKey::Id(id) => entries.by_id.get(id).map(|c| &c.read),
        }?;
        read.touch(self.clock.load(Ordering::Relaxed));
        Some(read.clone())
    }

    /// Read before the store read whose result goes to [`Self::insert`].
    pub fn generation(&self) -> Generation {
        Generation(self.generation.load(Ordering::SeqCst))
    }

    /// Keeps `read` under its id and, when it was found by one, under `token`; every token the
    /// id's copy was kept under now names this copy. Keeps nothing, and answers false, when a
    /// forget happened since `seen` was read (the record may predate that write) or when the entry
    /// alone would take more than an eighth of the budget.
    pub fn insert(&self, seen: Generation, token: Option<&str>, read: Arc<ReadSession>) -> bool {
        let new_token_weight = token.map_or(0, token_weight);
        let weight = weight_of(&read.session) + new_token_weight;
        if weight > self.budget / MAX_ENTRY_SHARE {
            return false;
        }
        let mut guard = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if self.generation.load(Ordering::SeqCst) != seen.0 {
            return false;
        }
        let entries = &mut *guard;
        let mut tokens = match entries.by_id.remove(&read.session.id) {
            Some(old) => {
                entries.bytes -= old.weight;
                old.tokens
            }
            None => Vec::new(),
        };
        let mut weight = weight - new_token_weight;
        if let Some(token) = token
            && !tokens.iter().any(|t| **t == *token)
        {
            tokens.push(token.into());
        }
        weight += tokens.iter().map(|t| token_weight(t)).sum::<u64>();
        let evicted = if entries.bytes + weight > self.budget {
            entries.evict_to((self.budget / 10 * 9).saturating_sub(weight))
        } else {
            Vec::new()
        };
        let now = self.clock.fetch_add(1, Ordering::Relaxed) + 1;
        read.touch(now);
        for token in &tokens {
            entries.by_token.insert(token.clone(), read.clone());
        }
        entries.bytes += weight;
        entries.by_id.insert(
            read.session.id.clone(),
            Cached {
                read,
                tokens,
                weight,
            },
        );
        drop(guard);
        // The evicted sessions' memory is freed outside the lock.
        drop(evicted);
        true
    }

    /// Drops every copy of `session`, and whatever copy its current access token names (an
    /// identical token may have indexed an older session).
    pub fn forget(&self, session: &Session) {
        let mut entries = self.write_for_forget();
        entries.forget_id(&session.id);
        if let Some(older) = entries.by_token.remove(session.access_token.as_str()) {
            entries.forget_id(&older.session.id);
        }
    }

    pub fn forget_id(&self, id: &SessionId) {
        self.write_for_forget().forget_id(id);
    }

    fn write_for_forget(&self) -> std::sync::RwLockWriteGuard<'_, Entries> {
        let entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries
    }

    /// The weight of the entries kept, and how many there are.
    #[cfg(test)]
    fn usage(&self) -> (u64, usize) {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        (entries.bytes, entries.by_id.len())
    }
}

/// What a kept session costs beyond its strings: the `ReadSession` and `Cached` structs, the
/// `by_id` key and slot, the `Arc`'s counts.
const ENTRY_OVERHEAD: usize = size_of::<ReadSession>()
    + size_of::<Cached>()
    + size_of::<SessionId>()
    + 2 * size_of::<usize>()
    + 16;

/// The estimated bytes a kept session holds: its strings, the hashes of its access tokens, its
/// claims (as a map in memory, and again as the `/userinfo` body rendered from them, counted up
/// front so the weight never changes while the entry is kept), plus fixed overheads.
pub fn weight_of(session: &Session) -> u64 {
    let (claims_heap, claims_text) = object_weight(&session.claims);
    let strings = 2 * session.id.as_str().len()
        + session.client.len()
        + session.sub.len()
        + session.access_token.len()
        + session.refresh_token.as_ref().map_or(0, String::len)
        + session.id_token.len()
        + session.token_aliases.len() * (size_of::<TokenHash>() + 64)
        + session.superseded_refresh_tokens.len() * (size_of::<RotatedRefreshToken>() + 64);
    let total = ENTRY_OVERHEAD + size_of::<Session>() + strings + claims_heap + claims_text;
    u64::try_from(total).unwrap_or(u64::MAX)
}

/// The cost of keeping a copy under a token: the key in `by_token`, its copy in `tokens`, the
/// `Arc` and the slot.
fn token_weight(token: &str) -> u64 {
    let total = 2 * (token.len() + size_of::<Box<str>>()) + size_of::<Arc<ReadSession>>() + 16;
    u64::try_from(total).unwrap_or(u64::MAX)
}

/// Heap bytes of a JSON value held in memory (beyond its own `Value`), and the length of its text.
fn json_weight(value: &Value) -> (usize, usize) {
    match value {
        Value::Null => (0, 4),
        Value::Bool(_) => (0, 5),
        Value::Number(_) => (0, 12),
        Value::String(s) => (s.len(), s.len() + 2),
        Value::Array(items) => items.iter().fold((0, 2), |(heap, text), item| {
            let (h, t) = json_weight(item);
            (heap + size_of::<Value>() + h, text + t + 1)
        }),
        Value::Object(map) => object_weight(map),
    }
}

fn object_weight(map: &serde_json::Map<String, Value>) -> (usize, usize) {
    // Per member: the key, the value, and a map node's share of pointers.
    map.iter().fold((0, 2), |(heap, text), (key, value)| {
        let (h, t) = json_weight(value);
        (
            heap + size_of::<String>() + key.len() + size_of::<Value>() + 16 + h,
            text + key.len() + 3 + t + 1,
        )
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Map, json};

    use super::*;
    use crate::store::{IdToken, IssuedTokens, Timestamp};

    fn session(access_token: &str) -> Session {
        let now = Timestamp::now();
        let claims = match json!({
            "sub": "auth0|5f7c8ec7c33c6c004bbafe82",
            "email": "someone@example.com",
            "email_verified": true,
            "name": "Someone Example",
            "nickname": "someone",
            "picture": "https://s.gravatar.com/avatar/0000000000000000000000000000000?s=480&r=pg",
            "updated_at": "2024-05-01T10:00:00.000Z",
            "iss": "https://tenant.eu.auth0.com/",
            "aud": "0123456789abcdefghijklmnopqrstuv",
            "iat": 1_714_557_600,
            "exp": 1_714_593_600,
        }) {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        Session::new(
            "web",
            "auth0|5f7c8ec7c33c6c004bbafe82",
            IssuedTokens {
                access_token: access_token.into(),
                access_expires_at: now.saturating_add(Duration::from_secs(3_600)),
                refresh_token: Some("v1.".to_owned() + &"r".repeat(128)),
                id_token: IdToken {
                    token: "i".repeat(900),
                    claims,
                },
            },
            now.saturating_add(Duration::from_secs(86_400)),
            now,
        )
    }

    /// An access token of the benchmark's size (804 bytes), distinct per `n`.
    fn token(n: usize) -> String {
        format!("{n:08}{}", "a".repeat(796))
    }

    fn entry_weight() -> u64 {
        let token = token(0);
        weight_of(&session(&token)) + token_weight(&token)
    }

    fn insert(cache: &ReadCache, token: &str) -> Arc<ReadSession> {
        let read = ReadSession::new(session(token));
        assert!(cache.insert(cache.generation(), Some(token), read.clone()));
        read
    }

    #[test]
    fn a_typical_session_weighs_a_few_kilobytes() {
        let weight = entry_weight();
        assert!((2_500..8_000).contains(&weight), "weight {weight}");
    }

    #[test]
    fn eviction_keeps_the_budget_and_evicts_the_least_recently_used_first() {
        let budget = 20 * entry_weight();
        let cache = ReadCache::new(budget);
        let tokens: Vec<String> = (0..40).map(token).collect();
        let first = insert(&cache, &tokens[0]);
        for token in &tokens[1..15] {
            insert(&cache, token);
        }
        assert_eq!(cache.usage().1, 15, "nothing evicted under the budget");

        // The first entry is used again: it is now more recent than entries 1..15, and is
        // used again every few inserts from then on.
        let hit = cache
            .get(SessionKey::AccessToken(&tokens[0]))
            .expect("kept");
        assert!(Arc::ptr_eq(&hit, &first));
        for (i, token) in tokens.iter().enumerate().skip(15) {
            insert(&cache, token);
            let (bytes, _) = cache.usage();
            assert!(bytes <= budget, "{bytes} > {budget}");
            if i == 20 {
                // The first eviction: the oldest not used since went, the one used stayed.
                assert!(cache.get(SessionKey::AccessToken(&tokens[1])).is_none());
                assert!(cache.get(SessionKey::AccessToken(&tokens[2])).is_none());
                assert!(cache.get(SessionKey::AccessToken(&tokens[14])).is_some());
            }
            if i % 4 == 0 {
                assert!(cache.get(SessionKey::AccessToken(&tokens[0])).is_some());
            }
        }

        assert!(
            cache.get(SessionKey::AccessToken(&tokens[0])).is_some(),
            "the entry hit survives"
        );
        assert!(
            cache.get(SessionKey::Id(&first.session.id)).is_some(),
            "under both keys"
        );
        assert!(
            cache.get(SessionKey::AccessToken(&tokens[1])).is_none(),
            "the least recently used went first"
        );
        assert!(
            cache.get(SessionKey::AccessToken(&tokens[39])).is_some(),
            "the newest stays"
        );
        // Evictions come in batches: after one, the total is at most 90% of the budget.
        let (bytes, count) = cache.usage();
        assert!(
            count < 20 && bytes <= budget,
            "{count} entries, {bytes} bytes"
        );
    }

    #[test]
    fn an_entry_above_an_eighth_of_the_budget_is_not_kept() {
        let cache = ReadCache::new(4 * entry_weight());
        let read = ReadSession::new(session(&token(1)));
        assert!(!cache.insert(cache.generation(), Some(&token(1)), read));
        assert_eq!(cache.usage(), (0, 0));
    }

    #[test]
    fn an_insert_after_a_concurrent_forget_is_refused() {
        let cache = ReadCache::new(64 << 20);
        let token = token(1);
        let stale = session(&token);

        // A reader takes the generation and reads the store; a writer then replaces the session
        // and drops the copies; the reader's insert of what it read must not be kept.
        let seen = cache.generation();
        cache.forget_id(&stale.id);
        assert!(!cache.insert(seen, Some(&token), ReadSession::new(stale.clone())));
        assert!(cache.get(SessionKey::AccessToken(&token)).is_none());
        assert!(cache.get(SessionKey::Id(&stale.id)).is_none());

        // The same with the forget of a new session reusing the access token.
        let seen = cache.generation();
        cache.forget(&session(&token));
        assert!(!cache.insert(seen, Some(&token), ReadSession::new(stale.clone())));
        assert!(cache.get(SessionKey::AccessToken(&token)).is_none());

        // A read that started after the write is kept.
        let seen = cache.generation();
        assert!(cache.insert(seen, Some(&token), ReadSession::new(stale.clone())));
        assert!(cache.get(SessionKey::AccessToken(&token)).is_some());

        // And a forget drops it with every key, freeing its weight.
        cache.forget_id(&stale.id);
        assert!(cache.get(SessionKey::AccessToken(&token)).is_none());
        assert_eq!(cache.usage(), (0, 0));
    }

    #[test]
    fn a_new_copy_replaces_the_old_under_every_token_it_was_kept_under() {
        let cache = ReadCache::new(64 << 20);
        let (t1, t2) = (token(1), token(2));
        let first = insert(&cache, &t1);
        let again = ReadSession::new(first.session.clone());
        assert!(cache.insert(cache.generation(), Some(&t2), again.clone()));
        for key in [
            SessionKey::AccessToken(&t1),
            SessionKey::AccessToken(&t2),
            SessionKey::Id(&first.session.id),
        ] {
            assert!(Arc::ptr_eq(&cache.get(key).expect("kept"), &again));
        }
        let (bytes, count) = cache.usage();
        assert_eq!(count, 1);
        assert_eq!(
            bytes,
            weight_of(&again.session) + token_weight(&t1) + token_weight(&t2),
            "the old copy's weight is released"
        );
        cache.forget(&first.session);
        assert_eq!(cache.usage(), (0, 0));
        assert!(cache.get(SessionKey::AccessToken(&t1)).is_none());
        assert!(cache.get(SessionKey::AccessToken(&t2)).is_none());
    }

    #[test]
    fn concurrent_hits_and_inserts_stay_under_the_budget() {
        const THREADS: usize = 4;
        const ROUNDS: usize = 300;
        let budget = 30 * entry_weight();
        let cache = Arc::new(ReadCache::new(budget));
        let handles: Vec<_> = (0..THREADS)
            .map(|thread| {
                let cache = cache.clone();
                std::thread::spawn(move || {
                    let mut kept = 0;
                    for round in 0..ROUNDS {
                        let mine = token(thread * ROUNDS + round);
                        let read = ReadSession::new(session(&mine));
                        if cache.insert(cache.generation(), Some(&mine), read.clone()) {
                            kept += 1;
                        }
                        // Hit a few recent ones, and forget one now and then.
                        for back in 1..4 {
                            let recent = token(thread * ROUNDS + round.saturating_sub(back));
                            if let Some(hit) = cache.get(SessionKey::AccessToken(&recent)) {
                                assert_eq!(hit.session.access_token, recent);
                            }
                        }
                        if round % 17 == 0 {
                            cache.forget_id(&read.session.id);
                        }
                        let (bytes, _) = cache.usage();
                        assert!(bytes <= budget, "{bytes} > {budget}");
                    }
                    kept
                })
            })
            .collect();
        let kept: usize = handles.into_iter().map(|h| h.join().expect("thread")).sum();
        assert!(kept > 0);
        let (bytes, count) = cache.usage();
        assert!(
            bytes <= budget && count <= 30,
            "{count} entries, {bytes} bytes"
        );
        // The accounting matches what is kept.
        let entries = cache.entries.read().expect("lock");
        let sum: u64 = entries.by_id.values().map(|c| c.weight).sum();
        assert_eq!(sum, entries.bytes);
        for (token, read) in &entries.by_token {
            let cached = entries.by_id.get(&read.session.id).expect("by id");
            assert!(Arc::ptr_eq(&cached.read, read));
            assert!(cached.tokens.contains(token));
        }
    }
}
