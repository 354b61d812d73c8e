//! The records of an import as the jobs machinery keeps them: the options Auth0 gets, a batch's
//! parts (ids, statuses, summaries: never their users, which are part records of their own), how
//! users are cut into parts, and the finished event.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::auth0::management::{ManagementBody, ManagementError, ManagementRequest};
use crate::store::{JobRecord, JobStatus, StoreError, Timestamp};

/// The largest users file Auth0 accepts, in bytes of the JSON array it gets (wire reference §3.1).
pub const AUTH0_FILE_LIMIT: usize = 512_000;
/// Auth0's limit of import jobs active at once in a tenant.
pub const AUTH0_ACTIVE_JOBS: usize = 2;

/// The options of one import, as Auth0's multipart form takes them, with the connection resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportOptions {
    /// The connection name (a key of `supportedConnectionsMap`).
    pub connection: String,
    /// Its Auth0 id (`con_…`), which Auth0 gets.
    pub connection_id: String,
    #[serde(default)]
    pub upsert: Option<bool>,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub send_completion_email: Option<bool>,
}

impl ImportOptions {
    /// The text parts of the multipart form, only those given (Auth0 applies its defaults).
    fn fields(&self) -> Vec<(String, String)> {
        let mut fields = vec![("connection_id".to_owned(), self.connection_id.clone())];
        if let Some(upsert) = self.upsert {
            fields.push(("upsert".to_owned(), upsert.to_string()));
        }
        if let Some(external_id) = &self.external_id {
            fields.push(("external_id".to_owned(), external_id.clone()));
        }
        if let Some(send) = self.send_completion_email {
            fields.push(("send_completion_email".to_owned(), send.to_string()));
        }
        fields
    }

    /// `POST /api/v2/jobs/users-imports` with `users` (a JSON array, sent as given).
    pub(super) fn request(&self, users: Vec<u8>) -> ManagementRequest {
        ManagementRequest {
            method: reqwest::Method::POST,
            path: "jobs/users-imports".to_owned(),
            query: Vec::new(),
            body: ManagementBody::Multipart {
                file_name: "users.json".to_owned(),
                file: users,
                fields: self.fields(),
            },
        }
    }
}

/// Why an import or a status request failed; `http/error.rs` answers each.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(
        "users[{index}] is {bytes} bytes of JSON; one user may be at most {max} bytes, since Auth0 accepts users files of at most {AUTH0_FILE_LIMIT} bytes",
        max = AUTH0_FILE_LIMIT - 2
    )]
    UserTooLarge { index: usize, bytes: usize },
    #[error("`users` is an empty array: there is nobody to import")]
    NoUsers,
    #[error("no import batch {0} is recorded here")]
    UnknownBatch(String),
    #[error("the job store is unavailable: {0}")]
    Store(#[from] StoreError),
    #[error("Auth0 refused or failed the call: {0}")]
    Auth0(#[from] ManagementError),
    #[error("Auth0 answered the import with a body that is not a job: {0}")]
    InvalidAnswer(String),
}

/// Where `users` are cut into Auth0 files: each part is `users[start..end]`, in order, its
/// compact array (`[` + users joined by `,` + `]`, each user's bytes as they came) at most
/// [`AUTH0_FILE_LIMIT`] bytes. A user too large to fit alone is refused by index. Nothing is
/// copied: [`part_file`] builds one part's bytes when it is written.
pub fn split_users(users: &[&RawValue]) -> Result<Vec<std::ops::Range<usize>>, ImportError> {
    if users.is_empty() {
        return Err(ImportError::NoUsers);
    }
    let mut parts = Vec::new();
    let (mut start, mut len) = (0, 1);
    for (index, user) in users.iter().enumerate() {
        let bytes = user.get().len();
        if bytes + 2 > AUTH0_FILE_LIMIT {
            return Err(ImportError::UserTooLarge { index, bytes });
        }
        let separator = usize::from(index > start);
        if len + separator + bytes + 1 > AUTH0_FILE_LIMIT {
            parts.push(start..index);
            (start, len) = (index, 1);
        }
        len += usize::from(index > start) + bytes;
    }
    parts.push(start..users.len());
    Ok(parts)
}

/// The users file of one part: `[` + users joined by `,` + `]`, into `file` (cleared first, so
/// one buffer serves every part).
pub fn part_file(users: &[&RawValue], file: &mut Vec<u8>) {
    file.clear();
    file.push(b'[');
    for (i, user) in users.iter().enumerate() {
        if i > 0 {
            file.push(b',');
        }
        file.extend_from_slice(user.get().as_bytes());
    }
    file.push(b']');
}

/// A batch part's status: the daemon's two before Auth0 has the part, then Auth0's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartStatus {
    Queued,
    Sending,
    Pending,
    Processing,
    Completed,
    Failed,
    Expired,
}

impl PartStatus {
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Expired)
    }

    pub(super) fn from_job(status: JobStatus) -> Self {
        match status {
            JobStatus::Pending => Self::Pending,
            JobStatus::Processing => Self::Processing,
            JobStatus::Completed => Self::Completed,
            JobStatus::Failed => Self::Failed,
            JobStatus::Expired => Self::Expired,
        }
    }
}

/// One slice of a batch (see the module doc of [`super`]). Its users are a part record of their
/// own (`JobStore::put_job_part`), deleted once Auth0 accepted or refused them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// 1-based.
    pub part: usize,
    pub status: PartStatus,
    /// Auth0's job id once it accepted the part.
    pub id: Option<String>,
    /// The users of a batch recorded before parts were records of their own; read once to send
    /// them, never written again.
    #[serde(default, rename = "users", skip_serializing)]
    pub legacy_users: Option<String>,
    /// How many users the part holds.
    pub count: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Value>,
    /// Auth0's errors body of the part, once finished with failed users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Value>,
    /// Why Auth0 refused the part, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_details: Option<String>,
    /// How many times it was sent.
    #[serde(default)]
    pub attempts: u32,
}

impl Part {
    /// A part not sent yet.
    pub fn queued(part: usize, count: usize) -> Self {
        Self {
            part,
            status: PartStatus::Queued,
            id: None,
            legacy_users: None,
            count,
            summary: None,
            errors: None,
            status_details: None,
            attempts: 0,
        }
    }

    /// Its number as the store keys it.
    pub fn number(&self) -> u32 {
        u32::try_from(self.part).unwrap_or(u32::MAX)
    }
}

/// A batch record's `detail`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchDetail {
    pub options: ImportOptions,
    pub parts: Vec<Part>,
}

impl BatchDetail {
    pub fn of(record: &JobRecord) -> Option<Self> {
        Self::deserialize(&record.detail).ok()
    }

    /// SPEC §6: `pending` until a part is sent, `failed` once any part failed or expired,
    /// `completed` when all completed, else `processing`.
    pub fn status(&self) -> &'static str {
        let statuses = || self.parts.iter().map(|p| p.status);
        if statuses().any(|s| matches!(s, PartStatus::Failed | PartStatus::Expired)) {
            "failed"
        } else if statuses().all(|s| s == PartStatus::Completed) {
            "completed"
        } else if statuses().all(|s| matches!(s, PartStatus::Queued | PartStatus::Sending)) {
            "pending"
        } else {
            "processing"
        }
    }

    /// The record status this detail means (final only when every part is).
    pub(super) fn record_status(&self) -> JobStatus {
        if self.parts.iter().all(|p| p.status.is_final()) {
            if self.parts.iter().all(|p| p.status == PartStatus::Completed) {
                JobStatus::Completed
            } else {
                JobStatus::Failed
            }
        } else if self.parts.iter().any(|p| p.id.is_some()) {
            JobStatus::Processing
        } else {
            JobStatus::Pending
        }
    }

    /// The sum of the parts' summaries, once any part has one.
    pub fn summary(&self) -> Option<Value> {
        let mut sum: Option<Map<String, Value>> = None;
        for summary in self.parts.iter().filter_map(|p| p.summary.as_ref()) {
            let total = sum.get_or_insert_with(Map::new);
            for key in ["failed", "updated", "inserted", "total"] {
                let add = summary.get(key).and_then(Value::as_u64).unwrap_or(0);
                let now = total.get(key).and_then(Value::as_u64).unwrap_or(0);
                total.insert(key.to_owned(), json!(now + add));
            }
        }
        sum.map(Value::Object)
    }
}

pub(super) fn parse_status(value: &Value) -> Option<JobStatus> {
    JobStatus::deserialize(value.get("status")?).ok()
}

pub fn status_name(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Pending => "pending",
        JobStatus::Processing => "processing",
        JobStatus::Completed => "completed",
        JobStatus::Failed => "failed",
        JobStatus::Expired => "expired",
    }
}

/// Auth0's own format of times: RFC 3339, milliseconds, `Z`.
pub fn format_time(at: Timestamp) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    at.to_offset_datetime()
        .and_then(|at| at.format(FORMAT).ok())
        .unwrap_or_default()
}

/// A random id of Auth0's shape: `prefix` and 16 alphanumerics.
pub(super) fn new_id(prefix: &str) -> String {
    use rand::RngExt as _;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..16)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!("{prefix}{tail}")
}

/// The event `on_job_finished` carries (SPEC §9): `{jobId, status, summary, connection}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobFinished {
    pub job_id: String,
    pub status: JobStatus,
    pub summary: Option<Value>,
    pub connection: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(i: usize, pad: usize) -> Box<RawValue> {
        serde_json::value::to_raw_value(
            &json!({"email": format!("user{i}@example.com"), "name": "x".repeat(pad)}),
        )
        .expect("raw")
    }

    fn files(users: &[&RawValue]) -> Vec<Vec<u8>> {
        split_users(users)
            .expect("splits")
            .into_iter()
            .map(|range| {
                let mut file = Vec::new();
                part_file(&users[range], &mut file);
                file
            })
            .collect()
    }

    #[test]
    fn splits_at_user_boundaries_within_the_limit() {
        let owned: Vec<Box<RawValue>> = (0..40).map(|i| user(i, 40_000)).collect();
        let users: Vec<&RawValue> = owned.iter().map(AsRef::as_ref).collect();
        let parts = files(&users);
        assert!(parts.len() > 1);
        let mut back = Vec::new();
        for part in &parts {
            assert!(part.len() <= AUTH0_FILE_LIMIT, "{}", part.len());
            let users: Vec<Value> = serde_json::from_slice(part).expect("a JSON array");
            back.extend(users);
        }
        let expected: Vec<Value> = users
            .iter()
            .map(|u| serde_json::from_str(u.get()).expect("json"))
            .collect();
        assert_eq!(back, expected, "every user once, in order");
        // Filled: no two neighbours would fit together.
        assert!(
            parts
                .windows(2)
                .all(|w| w[0].len() + w[1].len() > AUTH0_FILE_LIMIT)
        );
    }

    #[test]
    fn users_keep_their_bytes_as_they_came() {
        let body = br#"[ {"email" : "a@example.com",  "n": 1.50} ,{"b":"\u00e9"}]"#;
        let users: Vec<&RawValue> = serde_json::from_slice(body).expect("users");
        let parts = files(&users);
        assert_eq!(
            parts,
            [br#"[{"email" : "a@example.com",  "n": 1.50},{"b":"\u00e9"}]"#.to_vec()]
        );
    }

    #[test]
    fn a_file_at_the_limit_is_one_part_and_one_byte_more_is_two() {
        // `[` + user + `]` of exactly the limit.
        let overhead = user(0, 0).get().len() + 2;
        let exact = user(0, AUTH0_FILE_LIMIT - overhead);
        assert_eq!(split_users(&[exact.as_ref()]).expect("fits").len(), 1);
        let (a, b) = (user(0, 100), user(1, AUTH0_FILE_LIMIT - overhead - 100));
        assert_eq!(
            split_users(&[a.as_ref(), b.as_ref()]).expect("fits").len(),
            2
        );
    }

    #[test]
    fn one_user_over_the_limit_is_refused_by_index() {
        let (a, b) = (user(0, 10), user(1, AUTH0_FILE_LIMIT));
        match split_users(&[a.as_ref(), b.as_ref()]) {
            Err(ImportError::UserTooLarge { index, .. }) => assert_eq!(index, 1),
            _ => panic!("expected UserTooLarge"),
        }
        assert!(matches!(split_users(&[]), Err(ImportError::NoUsers)));
    }

    fn part(status: PartStatus) -> Part {
        Part {
            status,
            summary: Some(json!({"failed": 1, "updated": 0, "inserted": 2, "total": 3})),
            ..Part::queued(1, 1)
        }
    }

    #[test]
    fn a_batch_status_follows_its_parts() {
        let options = ImportOptions {
            connection: "db".into(),
            connection_id: "con_x".into(),
            upsert: None,
            external_id: None,
            send_completion_email: None,
        };
        let batch = |statuses: &[PartStatus]| BatchDetail {
            options: options.clone(),
            parts: statuses.iter().map(|s| part(*s)).collect(),
        };
        use PartStatus::*;
        assert_eq!(batch(&[Queued, Sending]).status(), "pending");
        assert_eq!(batch(&[Pending, Queued]).status(), "processing");
        assert_eq!(batch(&[Completed, Processing]).status(), "processing");
        assert_eq!(batch(&[Completed, Completed]).status(), "completed");
        assert_eq!(batch(&[Completed, Expired]).status(), "failed");
        assert_eq!(batch(&[Failed, Queued]).status(), "failed");
        assert_eq!(batch(&[Failed, Queued]).record_status(), JobStatus::Pending);
        assert_eq!(
            batch(&[Failed, Completed]).record_status(),
            JobStatus::Failed
        );
        assert_eq!(
            batch(&[Completed, Completed]).summary(),
            Some(json!({"failed": 2, "updated": 0, "inserted": 4, "total": 6}))
        );
    }

    #[test]
    fn a_part_written_before_parts_were_records_keeps_its_users_until_sent() {
        let old = json!({"part": 1, "status": "queued", "id": null, "users": "[{}]", "count": 1});
        let part: Part = serde_json::from_value(old).expect("reads");
        assert_eq!(part.legacy_users.as_deref(), Some("[{}]"));
        let written = serde_json::to_value(&part).expect("writes");
        assert!(written.get("users").is_none(), "{written}");
    }

    #[test]
    fn ids_and_times_look_like_auth0s() {
        let id = new_id("batch_");
        assert_eq!(id.len(), 22);
        assert!(id[6..].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(
            format_time(Timestamp::from_millis(1_674_668_896_543)),
            "2023-01-25T17:48:16.543Z"
        );
    }
}
