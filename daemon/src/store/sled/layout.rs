//! The on-disk layout of the sled store: the trees by name, how their keys are made, the records'
//! JSON, and the layout version a folder is migrated from at open.
//!
//! | choice | why |
//! |---|---|
//! | one tree per record kind and one per index ([`Trees`]) | a scan or a transaction reads only the trees it needs; the names are the folder's format |
//! | times as 8 big-endian bytes with the sign bit flipped ([`time_bytes`]) | byte order is time order, so `session_expiry` and `jobs_by_created` are read as time ranges |
//! | `hash ‖ id` keys in `session_aliases` and `session_auth0_sessions` ([`alias_key`], [`auth0_session_key`]) | one access token or Auth0 session may open several sessions; the hex hash has a fixed length ([`HASH_LEN`]), so the id is the rest of the key |
//! | `session_subs` keys prefixed by the sub's length ([`sub_prefix`]) | one sub's keys never start another, longer sub's |
//! | records as JSON ([`encode`], [`decode`]), a session in its own envelope ([`super::record`]) | the records' own serde form; the envelope keeps a session's sealed part as bytes |
//! | the session index trees as one [`Index`] inside a transaction | a session and its index entries change together, so an index never points at nothing |
//! | a layout version in sled's default tree ([`LAYOUT_KEY`]) | an older folder is migrated at open (layout 1's aliases here: [`migrate_v1_aliases`]; layout 2's counts: [`super::counts`]), an unknown one refused |

use ::sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use ::sled::{Db, Tree};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::store::{Auth0SessionHash, SessionId, StoreError, Timestamp, TokenHash};

/// Key of the layout version in sled's default tree; bumped when the layout changes.
pub(super) const LAYOUT_KEY: &[u8] = b"auth0-client.layout";
pub(super) const LAYOUT_VERSION: &[u8] = b"3";
/// Layout 1 indexed one session per access token (`hash` → id); layout 2 keys the index by
/// `hash ‖ id`, since one access token may belong to several sessions. Migrated at open.
pub(super) const LAYOUT_V1: &[u8] = b"1";
/// Layout 2: no `session_counts` yet.
pub(super) const LAYOUT_V2: &[u8] = b"2";

/// Length of a [`TokenHash`] in an index key (hex SHA-256).
pub(super) const HASH_LEN: usize = 64;

pub(super) const COUNTS_TREE: &str = "session_counts";

/// The store's trees, opened by the names the folder keeps them under.
#[derive(Clone)]
pub(super) struct Trees {
    pub(super) sessions: Tree,
    pub(super) aliases: Tree,
    pub(super) subs: Tree,
    pub(super) expiry: Tree,
    pub(super) auth0_sessions: Tree,
    pub(super) states: Tree,
    pub(super) jobs: Tree,
    pub(super) jobs_by_created: Tree,
    pub(super) leases: Tree,
    pub(super) counts: Tree,
}

impl Trees {
    pub(super) fn open(db: &Db) -> Result<Self, ::sled::Error> {
        Ok(Self {
            sessions: db.open_tree("sessions")?,
            aliases: db.open_tree("session_aliases")?,
            subs: db.open_tree("session_subs")?,
            expiry: db.open_tree("session_expiry")?,
            auth0_sessions: db.open_tree("session_auth0_sessions")?,
            states: db.open_tree("states")?,
            jobs: db.open_tree("jobs")?,
            jobs_by_created: db.open_tree("jobs_by_created")?,
            leases: db.open_tree("leases")?,
            counts: db.open_tree(COUNTS_TREE)?,
        })
    }
}

/// The index trees of sessions, inside a transaction.
pub(super) struct Index<'t> {
    pub(super) aliases: &'t TransactionalTree,
    pub(super) subs: &'t TransactionalTree,
    pub(super) expiry: &'t TransactionalTree,
    pub(super) auth0: &'t TransactionalTree,
    /// The sharded count of the `sessions` tree's records.
    pub(super) counts: &'t TransactionalTree,
}

/// Layout 1 → 2: each alias entry `hash` → id becomes `hash ‖ id` → empty.
pub(super) fn migrate_v1_aliases(db: &Db) -> Result<(), StoreError> {
    let aliases = db.open_tree("session_aliases")?;
    for entry in aliases.iter() {
        let (key, id) = entry?;
        if key.len() == HASH_LEN {
            aliases.insert([key.as_ref(), id.as_ref()].concat(), &[][..])?;
            aliases.remove(&key)?;
        }
    }
    Ok(())
}

pub(super) fn auth0_session_key(hash: &Auth0SessionHash, id: &[u8]) -> Vec<u8> {
    [hash.as_str().as_bytes(), id].concat()
}

pub(super) fn alias_key(hash: &TokenHash, id: &[u8]) -> Vec<u8> {
    [hash.as_str().as_bytes(), id].concat()
}

pub(super) fn encode<T: Serialize>(what: &str, record: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(record).map_err(|e| StoreError::unencodable(what, e))
}

pub(super) fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::undecodable(what, e))
}

pub(super) fn abort(error: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(error)
}

pub(super) fn transaction_result<T>(
    result: Result<T, TransactionError<StoreError>>,
) -> Result<T, StoreError> {
    result.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => e.into(),
    })
}

/// A time as 8 bytes whose byte order is time order.
pub(super) fn time_bytes(at: Timestamp) -> [u8; 8] {
    (at.as_millis().cast_unsigned() ^ (1 << 63)).to_be_bytes()
}

pub(super) fn parse_time(bytes: &[u8]) -> Result<Timestamp, StoreError> {
    let bytes: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| StoreError::undecodable("time", "fewer than 8 bytes"))?;
    Ok(Timestamp::from_millis(
        (u64::from_be_bytes(bytes) ^ (1 << 63)).cast_signed(),
    ))
}

pub(super) fn expiry_key(at: Timestamp, id: &[u8]) -> Vec<u8> {
    [&time_bytes(at)[..], id].concat()
}

pub(super) fn created_key(at: Timestamp, id: &str) -> Vec<u8> {
    [&time_bytes(at)[..], id.as_bytes()].concat()
}

/// The length prefix keeps one sub's keys apart from a longer sub's that starts the same way.
pub(super) fn sub_prefix(sub: &str) -> Vec<u8> {
    [&(sub.len() as u64).to_be_bytes()[..], sub.as_bytes()].concat()
}

pub(super) fn sub_key(sub: &str, id: &SessionId) -> Vec<u8> {
    [sub_prefix(sub).as_slice(), id.as_str().as_bytes()].concat()
}

pub(super) fn parse_sub(key: &[u8]) -> Result<&str, StoreError> {
    let corrupt = || StoreError::undecodable("sub index key", "bad length prefix");
    let length: [u8; 8] = key
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(corrupt)?;
    let length = usize::try_from(u64::from_be_bytes(length)).map_err(|_| corrupt())?;
    let sub = key
        .get(8..8usize.saturating_add(length))
        .ok_or_else(corrupt)?;
    std::str::from_utf8(sub).map_err(|e| StoreError::undecodable("sub index key", e))
}

pub(super) fn parse_session_id(bytes: &[u8]) -> Result<SessionId, StoreError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| SessionId::parse(s).ok())
        .ok_or_else(|| StoreError::undecodable("session id in an index", "not a session id"))
}
