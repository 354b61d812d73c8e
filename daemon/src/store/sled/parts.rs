//! The users of import parts, on the embedded store: one file per part in `import-parts/` beside
//! sled's files, not a sled record.
//!
//! Why files: sled 0.34 writes a value over a quarter of its 512 KiB segment as a blob of its
//! own, and rewrites the whole leaf holding it, neighbours included, at each of that leaf's
//! consolidations; half-MB parts sharing leaves cost several times their size on disk until sled
//! rewrites its segments, which it does lazily (measured: 6 x one file of folder growth over two
//! 17 MB imports). A file costs its bytes while the part waits for Auth0 and nothing once deleted.
//!
//! A part is written to `<name>.tmp`, synced, renamed, and the folder synced: once
//! [`PartFiles::put`] returns the part survives `kill -9` (the batch record naming it is written
//! after). Names are the job id in hex, `.`, the part number, so no id can name a path. Files are
//! 0600 in a 0700 folder. At open, `.tmp` files (a write cut by a crash) are removed, and parts of
//! jobs with no record (a submit cut between its parts and its batch record) by
//! [`PartFiles::retain_jobs`].

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use super::super::StoreError;

/// The folder, inside the store's, that holds the parts.
pub(super) const FOLDER: &str = "import-parts";

pub(super) struct PartFiles {
    dir: PathBuf,
    /// For a temporary store: the folder, deleted with it.
    _temporary: Option<tempfile::TempDir>,
}

impl PartFiles {
    /// The parts folder inside the store folder `store` (created 0700 when missing), with any
    /// write a crash cut short removed.
    pub(super) fn open(store: &Path) -> Result<Self, StoreError> {
        let dir = store.join(FOLDER);
        Self::at(dir, None)
    }

    /// A parts folder deleted when the store is dropped (temporary stores).
    pub(super) fn temporary() -> Result<Self, StoreError> {
        let temporary = tempfile::Builder::new()
            .prefix("auth0-client-parts-")
            .tempdir()
            .map_err(|e| failed("create a temporary parts folder", &e))?;
        Self::at(temporary.path().to_path_buf(), Some(temporary))
    }

    fn at(dir: PathBuf, temporary: Option<tempfile::TempDir>) -> Result<Self, StoreError> {
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(failed("create the parts folder", &e)),
        }
        let files = Self {
            dir,
            _temporary: temporary,
        };
        for name in files.names()? {
            if name.ends_with(".tmp") {
                files.remove(&name)?;
            }
        }
        Ok(files)
    }

    /// Stores part `part` of job `job_id`, durably.
    pub(super) fn put(&self, job_id: &str, part: u32, users: &[u8]) -> Result<(), StoreError> {
        let name = file_name(job_id, part);
        let temporary = self.dir.join(format!("{name}.tmp"));
        let write = || -> std::io::Result<()> {
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&temporary)?;
            file.write_all(users)?;
            file.sync_data()?;
            fs::rename(&temporary, self.dir.join(&name))?;
            File::open(&self.dir)?.sync_all()
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&temporary);
            failed("write an import part", &e)
        })
    }

    /// The users of a part, when still stored.
    pub(super) fn get(&self, job_id: &str, part: u32) -> Result<Option<Vec<u8>>, StoreError> {
        match fs::read(self.dir.join(file_name(job_id, part))) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(failed("read an import part", &e)),
        }
    }

    /// Deletes a part; no error when absent.
    pub(super) fn delete(&self, job_id: &str, part: u32) -> Result<(), StoreError> {
        self.remove(&file_name(job_id, part))
    }

    /// Deletes every part of a job.
    pub(super) fn delete_job(&self, job_id: &str) -> Result<(), StoreError> {
        let prefix = format!("{}.", hex(job_id));
        for name in self.names()? {
            if name.starts_with(&prefix) {
                self.remove(&name)?;
            }
        }
        Ok(())
    }

    /// Deletes the parts of every job `known` says has no record; returns how many.
    pub(super) fn retain_jobs(
        &self,
        mut known: impl FnMut(&str) -> Result<bool, StoreError>,
    ) -> Result<usize, StoreError> {
        let mut removed = 0;
        for name in self.names()? {
            let job = name.split_once('.').and_then(|(job, _)| unhex(job));
            let keep = match job {
                Some(job) => known(&job)?,
                None => false,
            };
            if !keep {
                self.remove(&name)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// The bytes the stored parts take.
    #[cfg(test)]
    pub(super) fn bytes(&self) -> u64 {
        fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| entry.metadata().ok())
            .map(|m| m.len())
            .sum()
    }

    fn names(&self) -> Result<Vec<String>, StoreError> {
        let entries = fs::read_dir(&self.dir).map_err(|e| failed("list the parts folder", &e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| failed("list the parts folder", &e))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        Ok(names)
    }

    fn remove(&self, name: &str) -> Result<(), StoreError> {
        match fs::remove_file(self.dir.join(name)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(failed("delete an import part", &e)),
        }
    }
}

fn file_name(job_id: &str, part: u32) -> String {
    format!("{}.{part}", hex(job_id))
}

/// A job id as file-name characters (its bytes in hex).
fn hex(job_id: &str) -> String {
    job_id.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(name: &str) -> Option<String> {
    if !name.len().is_multiple_of(2) {
        return None;
    }
    let bytes = (0..name.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(name.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

fn failed(what: &str, err: &std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("cannot {what}: {err}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parts_round_trip_and_go_with_their_job() {
        let files = PartFiles::temporary().unwrap();
        files.put("job/../1", 0, b"[1]").unwrap();
        files.put("job/../1", 1, b"[2]").unwrap();
        files.put("job2", 0, b"[3]").unwrap();
        assert_eq!(
            files.get("job/../1", 1).unwrap().as_deref(),
            Some(&b"[2]"[..])
        );
        assert_eq!(files.get("job/../1", 2).unwrap(), None);
        assert_eq!(files.bytes(), 9);
        files.delete("job/../1", 0).unwrap();
        files.delete("job/../1", 0).unwrap();
        files.delete_job("job/../1").unwrap();
        assert_eq!(files.get("job/../1", 1).unwrap(), None);
        assert_eq!(files.get("job2", 0).unwrap().as_deref(), Some(&b"[3]"[..]));
        assert_eq!(files.retain_jobs(|job| Ok(job != "job2")).unwrap(), 1);
        assert_eq!(files.bytes(), 0);
    }

    #[test]
    fn a_write_cut_by_a_crash_is_removed_at_open() {
        let store = tempfile::tempdir().unwrap();
        let files = PartFiles::open(store.path()).unwrap();
        files.put("job", 0, b"[1]").unwrap();
        fs::write(store.path().join(FOLDER).join("6a6f62.1.tmp"), b"[2").unwrap();
        drop(files);
        let files = PartFiles::open(store.path()).unwrap();
        assert_eq!(files.get("job", 0).unwrap().as_deref(), Some(&b"[1]"[..]));
        assert_eq!(files.names().unwrap(), vec!["6a6f62.0".to_owned()]);
        let mode = fs::metadata(store.path().join(FOLDER)).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o700
        );
    }
}
