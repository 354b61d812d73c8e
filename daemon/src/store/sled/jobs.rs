//! Batch import jobs in the sled store: the `jobs` tree and its `jobs_by_created` index.
//!
//! | choice | why |
//! |---|---|
//! | a job and its `created_at ‖ id` index key in one sled transaction | the index never points at nothing, and jobs are listed newest first by a range of keys below the cursor |
//! | replace is compare-and-swap on `revision` | of concurrent writers of one job one wins; the others get the record that won |
//! | an index key whose job is gone is skipped | the job was deleted between the index read and its own |
//! | a finished job is read again inside the transaction that deletes it | it may have changed since the scan that chose it |
//! | a deleted job's part files go after its record | a crash between them leaves parts of no job, which the next open removes ([`super::parts`]) |

use ::sled::Transactional;

use super::Engine;
use super::layout::{abort, created_key, decode, encode, transaction_result};
use crate::store::{JobCas, JobRecord, StoreError, Timestamp};

impl Engine {
    pub(super) fn write_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        let id = job.id.as_bytes();
        let value = encode("job record", job)?;
        let index_key = created_key(job.created_at, &job.id);
        let written =
            (&self.trees.jobs, &self.trees.jobs_by_created).transaction(|(jobs, index)| {
                if let Some(bytes) = jobs.get(id)? {
                    let previous: JobRecord = decode("job record", &bytes).map_err(abort)?;
                    index.remove(created_key(previous.created_at, &previous.id))?;
                }
                index.insert(index_key.as_slice(), &[][..])?;
                jobs.insert(id, value.as_slice())?;
                Ok(())
            });
        transaction_result(written)
    }

    /// Compare-and-swap on `revision` (see
    /// [`JobStore::replace_job`](crate::store::JobStore::replace_job)).
    pub(super) fn replace_job_record(&self, job: &JobRecord) -> Result<JobCas, StoreError> {
        let id = job.id.as_bytes();
        let mut next = job.clone();
        next.revision = job.revision.wrapping_add(1);
        let value = encode("job record", &next)?;
        let index_key = created_key(job.created_at, &job.id);
        let written =
            (&self.trees.jobs, &self.trees.jobs_by_created).transaction(|(jobs, index)| {
                let Some(bytes) = jobs.get(id)? else {
                    return Ok(JobCas::Gone);
                };
                let current: JobRecord = decode("job record", &bytes).map_err(abort)?;
                if current.revision != job.revision {
                    return Ok(JobCas::Conflict(Box::new(current)));
                }
                index.remove(created_key(current.created_at, &current.id))?;
                index.insert(index_key.as_slice(), &[][..])?;
                jobs.insert(id, value.as_slice())?;
                Ok(JobCas::Written(Box::new(next.clone())))
            });
        transaction_result(written)
    }

    pub(super) fn read_job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        self.trees
            .jobs
            .get(id)?
            .map(|bytes| decode("job record", &bytes))
            .transpose()
    }

    pub(super) fn newest_jobs(
        &self,
        limit: usize,
        end: Option<Vec<u8>>,
    ) -> Result<Vec<JobRecord>, StoreError> {
        // Index keys are `created_at ‖ id`: everything below the cursor's key, newest first.
        let keys = match end {
            Some(end) => self.trees.jobs_by_created.range(..end),
            None => self.trees.jobs_by_created.iter(),
        };
        let mut jobs = Vec::new();
        for key in keys.keys().rev() {
            if jobs.len() >= limit {
                break;
            }
            let key = key?;
            let id = std::str::from_utf8(key.get(8..).unwrap_or_default())
                .map_err(|e| StoreError::undecodable("job index key", e))?;
            // Deleted between the index read and this one: skip it.
            if let Some(job) = self.read_job(id)? {
                jobs.push(job);
            }
        }
        Ok(jobs)
    }

    pub(super) fn all_jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        self.trees
            .jobs
            .iter()
            .values()
            .map(|bytes| decode("job record", &bytes?))
            .collect()
    }

    pub(super) fn remove_finished_jobs(
        &self,
        finished_before: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut removed = 0;
        for job in self.all_jobs()? {
            if !(job.status.is_final() && job.updated_at < finished_before) {
                continue;
            }
            let id = job.id.as_bytes();
            let done =
                (&self.trees.jobs, &self.trees.jobs_by_created).transaction(|(jobs, index)| {
                    // Re-read inside the transaction: the record may have changed since the scan.
                    let Some(bytes) = jobs.get(id)? else {
                        return Ok(false);
                    };
                    let current: JobRecord = decode("job record", &bytes).map_err(abort)?;
                    if !(current.status.is_final() && current.updated_at < finished_before) {
                        return Ok(false);
                    }
                    index.remove(created_key(current.created_at, &current.id))?;
                    jobs.remove(id)?;
                    Ok(true)
                });
            if transaction_result(done)? {
                removed += 1;
                self.parts.delete_job(&job.id)?;
            }
        }
        Ok(removed)
    }
}
