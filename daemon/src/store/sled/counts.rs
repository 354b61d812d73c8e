//! The live session count of the sled store: `session_counts`, the count of the `sessions` tree's
//! records in shards, changed in the transaction that adds or removes a session.
//!
//! | choice | why |
//! |---|---|
//! | a count kept as sessions are written, not a scan | `count_live_sessions` reads [`COUNT_SHARDS`] small keys (less the expired sessions not yet swept), at a million sessions as at ten |
//! | [`COUNT_SHARDS`] shards, the session key picking its own ([`count_session`]) | concurrent logins seldom touch the same count (sled retries a transaction whose keys another changed) |
//! | changed inside the session's own transaction | the counts are as durable as the sessions they count, after `kill -9` too |
//! | signed counts (i64 BE, [`parse_count`]) | a shard may go below zero once layout 2's sessions, all counted into shard 0, are removed from theirs: only the sum means anything |
//! | a layout 2 folder counted once at open ([`migrate_v2_counts`]) | then the layout version is bumped and flushed, so it is never counted twice |

use ::sled::Db;
use ::sled::transaction::ConflictableTransactionResult;

use super::layout::{COUNTS_TREE, Index, LAYOUT_KEY, LAYOUT_VERSION, abort};
use crate::store::StoreError;

/// Shards of the session count: a session counts in the shard its key picks, so concurrent
/// logins seldom touch the same count (sled retries a transaction whose keys another changed).
const COUNT_SHARDS: u16 = 1024;

/// Adds `delta` to the count shard of the session `id`, inside a transaction.
pub(super) fn count_session(
    index: &Index<'_>,
    id: &[u8],
    delta: i64,
) -> ConflictableTransactionResult<(), StoreError> {
    let shard = (id
        .iter()
        .fold(0u16, |h, b| h.wrapping_mul(31).wrapping_add(u16::from(*b)))
        % COUNT_SHARDS)
        .to_be_bytes();
    let count = match index.counts.get(shard)? {
        Some(bytes) => parse_count(&bytes).map_err(abort)?,
        None => 0,
    };
    index
        .counts
        .insert(&shard, &count.saturating_add(delta).to_be_bytes()[..])?;
    Ok(())
}

pub(super) fn parse_count(bytes: &[u8]) -> Result<i64, StoreError> {
    let bytes: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("a session count is not 8 bytes".into()))?;
    Ok(i64::from_be_bytes(bytes))
}

/// Layout 2 → 3: the sessions are counted once, into the first shard of `session_counts`.
pub(super) fn migrate_v2_counts(db: &Db) -> Result<(), StoreError> {
    let mut count: i64 = 0;
    for key in db.open_tree("sessions")?.iter().keys() {
        key?;
        count += 1;
    }
    db.open_tree(COUNTS_TREE)?
        .insert(0u16.to_be_bytes(), &count.to_be_bytes()[..])?;
    db.insert(LAYOUT_KEY, LAYOUT_VERSION)?;
    db.flush()?;
    Ok(())
}
