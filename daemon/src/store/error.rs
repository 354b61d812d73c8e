//! [`StoreError`]: the one error type of every store operation, whatever the backend.

use std::path::PathBuf;
use std::time::Duration;

/// Why a store operation failed.
///
/// Callers decide on one question: is the store [unavailable](StoreError::is_unavailable) (answer
/// 503, log nobody out: SPEC §7) or is something broken that retrying will not fix (answer 500)?
/// The two opening errors only happen at start, where they stop the daemon with their message.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be reached or an I/O operation failed; it may succeed later.
    #[error("the session store is unavailable: {0}")]
    Unavailable(String),
    /// The operation did not finish within its bound (`sessions.timeoutMs`); see [`super::bounded`].
    #[error("the session store did not answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The backend answered, but a record, an index or the engine itself is broken: retrying will not help.
    #[error("the session store is corrupt: {0}")]
    Corrupt(String),
    /// Another process holds the sled folder (sled supports one process per folder).
    #[error(
        "the session folder {} is in use by another process (is another auth0-client running? \
         give each daemon its own sessions.path, or use the redis store to share sessions)",
        path.display()
    )]
    InUse { path: PathBuf },
    /// The sled folder cannot be opened for another reason (permissions, disk, foreign layout).
    #[error("the session folder {} cannot be opened: {message}", path.display())]
    Open { path: PathBuf, message: String },
    /// The store's settings cannot work (a Redis host that is not `host:port`, an unreadable CA
    /// file): found at start, where it stops the daemon.
    #[error("the session store settings are invalid: {0}")]
    Invalid(String),
}

impl StoreError {
    /// True when the failure is an outage rather than a defect: the request is answered 503.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Timeout(_))
    }

    /// A store call that panicked (inside sled): its caller's answer was dropped.
    pub(crate) fn panicked(what: &str) -> Self {
        Self::Corrupt(format!("a store call ({what}) panicked"))
    }

    /// A record that does not decode: corruption, or a layout written by another version.
    pub(crate) fn undecodable(what: &str, error: impl std::fmt::Display) -> Self {
        Self::Corrupt(format!("a stored {what} does not decode: {error}"))
    }

    /// A record that does not encode; not expected to happen with the record types here.
    pub(crate) fn unencodable(what: &str, error: impl std::fmt::Display) -> Self {
        Self::Corrupt(format!("a {what} cannot be encoded: {error}"))
    }
}

impl From<::sled::Error> for StoreError {
    fn from(error: ::sled::Error) -> Self {
        match error {
            ::sled::Error::Io(e) => Self::Unavailable(format!("sled I/O error: {e}")),
            other => Self::Corrupt(format!("sled: {other}")),
        }
    }
}
