//! Sessions in the sled store: the `sessions` tree and its index trees, kept in step.
//!
//! | choice | why |
//! |---|---|
//! | a session, its index entries and its count in one sled transaction (`session_transaction`) | an index never points at nothing, and a session written again counts once |
//! | new sessions that arrive together share one transaction (`insert_sessions`, fed by [`super::inserts`]) | each sled transaction costs two synchronous writes of sled's io buffer |
//! | a write removes the previous record's index entries, then adds the new one's | a changed expiry, alias list or Auth0 session leaves no stale entry behind |
//! | replace is compare-and-swap on `revision`, on a live record only | of concurrent writers of one session one wins; the others get the record that won |
//! | the expiry in the `session_subs` value | `active_subs` reads keys and values, never a session |
//! | the sweep reads `session_expiry`, oldest first, `limit` keys per call | no session is decoded to find the expired ones, and one call never holds a pool thread long |
//! | the sweep deletes a session only if still expired inside its transaction | a refresh may have extended it since its expiry key was read; that stale key is dropped |
//! | a record that does not decode is logged and its expiry key dropped | one bad record never stops every later sweep; an outage does stop it |

use std::time::Duration;

use ::sled::transaction::{ConflictableTransactionResult, TransactionalTree};
use ::sled::{IVec, Transactional, Tree};

use super::counts::count_session;
use super::layout::{
    HASH_LEN, Index, abort, alias_key, auth0_session_key, expiry_key, parse_session_id, sub_key,
    sub_prefix, time_bytes, transaction_result,
};
use super::{Engine, record};
use crate::store::{CasOutcome, Session, SessionId, StoreError, Timestamp};

impl Engine {
    pub(super) fn read_session(
        &self,
        id: &[u8],
        now: Timestamp,
    ) -> Result<Option<Session>, StoreError> {
        let Some(bytes) = self.trees.sessions.get(id)? else {
            return Ok(None);
        };
        let session = record::decode_session(&bytes)?;
        Ok(session.is_live(now).then_some(session))
    }

    /// Runs `work` in one sled transaction over the session tree and its index trees.
    fn session_transaction<T>(
        &self,
        work: impl Fn(&TransactionalTree, &Index<'_>) -> ConflictableTransactionResult<T, StoreError>,
    ) -> Result<T, StoreError> {
        let t = &self.trees;
        let result = (
            &t.sessions,
            &t.aliases,
            &t.subs,
            &t.expiry,
            &t.auth0_sessions,
            &t.counts,
        )
            .transaction(|(sessions, aliases, subs, expiry, auth0, counts)| {
                let index = Index {
                    aliases,
                    subs,
                    expiry,
                    auth0,
                    counts,
                };
                work(sessions, &index)
            });
        transaction_result(result)
    }

    /// Writes new sessions and their index entries in one transaction: each as it would be
    /// alone (a session written again replaces its entries and counts once).
    pub(super) fn insert_sessions(&self, sessions: &[&Session]) -> Result<(), StoreError> {
        let values = sessions
            .iter()
            .map(|session| record::encode_session(session))
            .collect::<Result<Vec<_>, _>>()?;
        self.session_transaction(|tree, index| {
            for (session, value) in sessions.iter().zip(&values) {
                let id = session.id.as_str().as_bytes();
                if let Some(bytes) = tree.get(id)? {
                    let previous = record::decode_session(&bytes).map_err(abort)?;
                    remove_session_entries(&previous, index)?;
                } else {
                    count_session(index, id, 1)?;
                }
                add_session_entries(session, index)?;
                tree.insert(id, value.as_slice())?;
            }
            Ok(())
        })
    }

    /// Compare-and-swap: writes `session` with its revision bumped when the live stored record
    /// has `session.revision`, moving the index entries that changed.
    pub(super) fn replace_session(
        &self,
        session: &Session,
        now: Timestamp,
    ) -> Result<CasOutcome, StoreError> {
        let id = session.id.as_str().as_bytes();
        let mut next = session.clone();
        next.revision = session.revision.wrapping_add(1);
        let value = record::encode_session(&next)?;
        self.session_transaction(|sessions, index| {
            let Some(bytes) = sessions.get(id)? else {
                return Ok(CasOutcome::Gone);
            };
            let previous = record::decode_session(&bytes).map_err(abort)?;
            if !previous.is_live(now) {
                return Ok(CasOutcome::Gone);
            }
            if previous.revision != session.revision {
                return Ok(CasOutcome::Conflict(Box::new(previous)));
            }
            remove_session_entries(&previous, index)?;
            add_session_entries(&next, index)?;
            sessions.insert(id, value.as_slice())?;
            Ok(CasOutcome::Written(Box::new(next.clone())))
        })
    }

    /// Deletes a session and its entries in one transaction and returns what it deleted. With
    /// `only_expired` (the sweeper), deletes only a session expired at `now`, not one a refresh
    /// has just extended, and drops that expiry key, which may be stale.
    pub(super) fn remove_session(
        &self,
        id: &SessionId,
        now: Timestamp,
        only_expired: Option<&[u8]>,
    ) -> Result<Option<Session>, StoreError> {
        let key = id.as_str().as_bytes();
        self.session_transaction(|sessions, index| {
            if let Some(stale) = only_expired {
                index.expiry.remove(stale)?;
            }
            let Some(bytes) = sessions.get(key)? else {
                return Ok(None);
            };
            let session = record::decode_session(&bytes).map_err(abort)?;
            if only_expired.is_some() && session.is_live(now) {
                return Ok(None);
            }
            remove_session_entries(&session, index)?;
            count_session(index, key, -1)?;
            sessions.remove(key)?;
            Ok(Some(session))
        })
    }

    /// Every live session with an entry `hash ‖ id` in `index`: the access-token hash in
    /// `aliases`, the Auth0 session hash in `auth0_sessions`.
    pub(super) fn sessions_in_index(
        &self,
        index: &Tree,
        hash: &str,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        let mut sessions = Vec::new();
        for key in index.scan_prefix(hash).keys() {
            let key = key?;
            let id = key.get(HASH_LEN..).unwrap_or_default();
            sessions.extend(self.read_session(id, now)?);
        }
        Ok(sessions)
    }

    pub(super) fn session_ids_of(&self, sub: &str) -> Result<Vec<SessionId>, StoreError> {
        let prefix = sub_prefix(sub);
        let mut ids = Vec::new();
        for entry in self.trees.subs.scan_prefix(&prefix) {
            let (key, _) = entry?;
            let id = key.get(prefix.len()..).unwrap_or_default();
            ids.push(parse_session_id(id)?);
        }
        Ok(ids)
    }

    /// Removes up to `limit` sessions expired at `now`, oldest first, with their index entries.
    /// A record that does not decode is logged and its expiry key dropped, rather than stopping
    /// every later sweep; an outage stops the sweep.
    pub(super) fn sweep_sessions(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<SessionBatch, StoreError> {
        let end = time_bytes(now.saturating_add(Duration::from_millis(1)));
        let expired: Vec<IVec> = self
            .trees
            .expiry
            .range(..end)
            .keys()
            .take(limit)
            .collect::<Result<_, _>>()?;
        let mut batch = SessionBatch {
            done: 0,
            more: expired.len() == limit,
        };
        for key in expired {
            let removed = parse_session_id(key.get(8..).unwrap_or_default())
                .and_then(|id| self.remove_session(&id, now, Some(&key)));
            match removed {
                Ok(Some(_)) => batch.done += 1,
                Ok(None) => {}
                Err(error) if error.is_unavailable() => return Err(error),
                Err(error) => {
                    tracing::warn!(error = %error, "the sweeper skipped a session");
                    self.trees.expiry.remove(&key)?;
                }
            }
        }
        Ok(batch)
    }
}

/// One batch of the session sweep: how many it removed, and whether expired keys remain.
pub(super) struct SessionBatch {
    pub(super) done: u64,
    pub(super) more: bool,
}

/// Every index entry of a session, as (tree, key, value): its access-token aliases, its sub (with
/// its expiry as the value, for `active_subs`), its expiry, its Auth0 session. One list, so the
/// entries a write adds are the entries a delete removes.
fn session_entries<'t>(
    session: &Session,
    index: &Index<'t>,
) -> Vec<(&'t TransactionalTree, Vec<u8>, Vec<u8>)> {
    let id = session.id.as_str().as_bytes();
    let mut entries: Vec<_> = session
        .alias_hashes()
        .into_iter()
        .map(|hash| (index.aliases, alias_key(&hash, id), Vec::new()))
        .collect();
    entries.push((
        index.subs,
        sub_key(&session.sub, &session.id),
        time_bytes(session.expires_at).to_vec(),
    ));
    entries.push((index.expiry, expiry_key(session.expires_at, id), Vec::new()));
    if let Some(hash) = &session.auth0_session {
        entries.push((index.auth0, auth0_session_key(hash, id), Vec::new()));
    }
    entries
}

/// Removes the session's index entries (not the record) inside a transaction.
fn remove_session_entries(
    session: &Session,
    index: &Index<'_>,
) -> ConflictableTransactionResult<(), StoreError> {
    for (tree, key, _) in session_entries(session, index) {
        tree.remove(key)?;
    }
    Ok(())
}

/// Adds the session's index entries inside a transaction.
fn add_session_entries(
    session: &Session,
    index: &Index<'_>,
) -> ConflictableTransactionResult<(), StoreError> {
    for (tree, key, value) in session_entries(session, index) {
        tree.insert(key, value)?;
    }
    Ok(())
}
