//! State records and leases in the sled store: single keys (`states`, `leases`), each changed
//! with compare-and-swap, and the sweep of such trees.
//!
//! | choice | why |
//! |---|---|
//! | a write loops on `compare_and_swap` of the bytes it read | one key needs no transaction; a concurrent write makes the swap fail, and the loop reads again |
//! | a state is put only over nothing or an expired state | a live state is never replaced (`put_state` answers `false`) |
//! | a lease is its holder and `expires_at` ([`Lease`]), judged by the store's clock | its holder takes it again before it expires; anyone else only after |
//! | only its holder removes a lease, expired or not | `release_lease` answers whether it was still held |
//! | swept `limit` keys per call ([`SinglesBatch`]), each removed only if unchanged | one call never holds a pool thread long, and a record rewritten meanwhile stays |
//! | a record that does not decode is logged and left | for an operator; an outage stops the sweep |

use std::time::Duration;

use ::sled::{IVec, Tree};
use serde::{Deserialize, Serialize};

use super::Engine;
use super::layout::{decode, encode};
use crate::store::{StateRecord, StoreError, Timestamp};

/// Writes `value` at `key` unless the record there `blocks` it (a live state, another holder's
/// lease); answers whether it wrote. Loops on `compare_and_swap` until the bytes it judged are
/// the bytes it replaces.
fn swap_in_unless(
    tree: &Tree,
    key: impl AsRef<[u8]>,
    value: &[u8],
    blocks: impl Fn(&[u8]) -> Result<bool, StoreError>,
) -> Result<bool, StoreError> {
    let key = key.as_ref();
    loop {
        let current = tree.get(key)?;
        if let Some(bytes) = &current
            && blocks(bytes)?
        {
            return Ok(false);
        }
        if tree.compare_and_swap(key, current, Some(value))?.is_ok() {
            return Ok(true);
        }
    }
}

impl Engine {
    pub(super) fn insert_state(
        &self,
        record: &StateRecord,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let value = encode("state record", record)?;
        swap_in_unless(&self.trees.states, &record.state, &value, |bytes| {
            let existing: StateRecord = decode("state record", bytes)?;
            Ok(existing.is_live(now))
        })
    }

    pub(super) fn lease(
        &self,
        key: &str,
        holder: &str,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let value = encode(
            "lease",
            &Lease {
                holder: holder.to_owned(),
                expires_at: now.saturating_add(ttl),
            },
        )?;
        swap_in_unless(&self.trees.leases, key, &value, |bytes| {
            let lease: Lease = decode("lease", bytes)?;
            Ok(lease.holder != holder && now < lease.expires_at)
        })
    }

    pub(super) fn unlease(
        &self,
        key: &str,
        holder: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        loop {
            let Some(bytes) = self.trees.leases.get(key)? else {
                return Ok(false);
            };
            let lease: Lease = decode("lease", &bytes)?;
            if lease.holder != holder {
                return Ok(false);
            }
            let swapped = self
                .trees
                .leases
                .compare_and_swap(key, Some(&bytes), None::<&[u8]>)?;
            if swapped.is_ok() {
                // An expired lease is removed all the same, but was no longer held.
                return Ok(now < lease.expires_at);
            }
        }
    }

    /// Scans up to `limit` records of `tree` after `after` and removes those `expired` says are
    /// (with compare-and-swap, so a record rewritten meanwhile stays). Records that do not decode
    /// are logged and left for an operator.
    pub(super) fn sweep_singles(
        &self,
        tree: &Tree,
        after: Option<IVec>,
        limit: usize,
        expired: impl Fn(&[u8]) -> Result<bool, StoreError>,
    ) -> Result<SinglesBatch, StoreError> {
        let entries = match &after {
            Some(after) => tree.range::<&[u8], _>((
                std::ops::Bound::Excluded(after.as_ref()),
                std::ops::Bound::Unbounded,
            )),
            None => tree.iter(),
        };
        let mut batch = SinglesBatch {
            removed: 0,
            next: None,
        };
        for (seen, entry) in entries.enumerate() {
            let (key, bytes) = entry?;
            match expired(&bytes) {
                Ok(true) => {
                    if remove_if_unchanged(tree, &key, &bytes)? {
                        batch.removed += 1;
                    }
                }
                Ok(false) => {}
                Err(error) if error.is_unavailable() => return Err(error),
                Err(error) => tracing::warn!(error = %error, "the sweeper skipped a record"),
            }
            if seen + 1 >= limit {
                batch.next = Some(key);
                break;
            }
        }
        Ok(batch)
    }
}

/// A lease's value.
#[derive(Serialize, Deserialize)]
pub(super) struct Lease {
    holder: String,
    pub(super) expires_at: Timestamp,
}

/// One batch of a sweep over single-key records: how many it removed, and the last key it saw
/// when the tree goes on after it.
pub(super) struct SinglesBatch {
    pub(super) removed: u64,
    pub(super) next: Option<IVec>,
}

fn remove_if_unchanged(tree: &Tree, key: &[u8], value: &IVec) -> Result<bool, StoreError> {
    Ok(tree
        .compare_and_swap(key, Some(value), None::<&[u8]>)?
        .is_ok())
}

/// The state record in `bytes`, when there is one and it is live at `now`.
pub(super) fn live_state(
    bytes: Option<IVec>,
    now: Timestamp,
) -> Result<Option<StateRecord>, StoreError> {
    let Some(bytes) = bytes else {
        return Ok(None);
    };
    let record: StateRecord = decode("state record", &bytes)?;
    Ok(record.is_live(now).then_some(record))
}
