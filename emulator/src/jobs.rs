//! Import jobs (`POST /api/v2/jobs/users-imports`, wire reference §3): the per-user validation of an
//! import file against Auth0's user schema (§3.4) with Auth0's error codes, and the job records with
//! their pending → processing → completed / failed lifecycle.
//!
//! Messages are guesses in the shape of the one real per-user error seen (tag [INF] from [OBS]):
//! `Error in <path> property - <validator message>`, the validator message worded like the Management
//! API's own schema errors (`Object didn't pass validation for format email: x`).

use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// One error of one user, as `GET /api/v2/jobs/{id}/errors` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UserError {
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl UserError {
    fn at(code: &'static str, path: &str, detail: impl std::fmt::Display) -> Self {
        UserError {
            code,
            message: format!("Error in {path} property - {detail}"),
            path: Some(path.to_string()),
        }
    }

    /// A user already in the tenant, and `upsert` is false. Exact text seen from Auth0 [OBS].
    pub fn duplicated_in_tenant() -> Self {
        UserError {
            code: "DUPLICATED_USER",
            message: "The user already exist and upsert parameter is false".into(),
            path: None,
        }
    }

    /// A user listed twice in one file. Auth0's text names the matching attribute [OBS]:
    /// "A user with this [email|username|user_id] was already provided."
    pub fn duplicated_in_file(attribute: &str) -> Self {
        UserError {
            code: "DUPLICATED_USER",
            message: format!("A user with this {attribute} was already provided."),
            path: None,
        }
    }

    /// With `upsert`, a user matched on username (or user id) but not on email cannot be updated.
    /// [INF]: the code is Auth0's, the text is not documented.
    pub fn conflict(code: &'static str, attribute: &str) -> Self {
        UserError {
            code,
            message: format!("Another user already has this {attribute}"),
            path: None,
        }
    }
}

/// `app_metadata` keys Auth0 refuses in an import (§3.4).
const FORBIDDEN_APP_METADATA: [&str; 18] = [
    "__tenant",
    "_id",
    "blocked",
    "clientID",
    "created_at",
    "email_verified",
    "email",
    "globalClientID",
    "global_client_id",
    "identities",
    "lastIP",
    "lastLogin",
    "loginsCount",
    "metadata",
    "multifactor_last_modified",
    "multifactor",
    "updated_at",
    "user_id",
];

const HASH_ALGORITHMS: [&str; 11] = [
    "argon2", "bcrypt", "hmac", "ldap", "md4", "md5", "sha1", "sha256", "sha512", "pbkdf2",
    "scrypt",
];
const ENCODINGS: [&str; 3] = ["base64", "hex", "utf8"];
const DIGESTS: [&str; 9] = [
    "md4",
    "md5",
    "ripemd160",
    "sha1",
    "sha224",
    "sha256",
    "sha384",
    "sha512",
    "whirlpool",
];
const PASSWORD_ENCODINGS: [&str; 6] = ["ascii", "utf8", "utf16le", "ucs2", "latin1", "binary"];

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn invalid_type(path: &str, expected: &str, value: &Value) -> UserError {
    UserError::at(
        "INVALID_TYPE",
        path,
        format!(
            "Expected type {expected} but found type {}",
            type_name(value)
        ),
    )
}

/// A pragmatic `format: email` check: one `@`, a non-empty local part, a dotted-or-not domain
/// without spaces. Auth0's validator is stricter in corner cases; this accepts what it accepts.
pub fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !value.chars().any(char::is_whitespace)
        && !local.contains('@')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain.chars().all(|c| {
            c.is_alphanumeric() || c == '.' || c == '-' || c == '[' || c == ']' || c == ':'
        })
}

/// `^\+[0-9]{1,15}$`.
pub fn is_e164(value: &str) -> bool {
    value.strip_prefix('+').is_some_and(|digits| {
        (1..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

fn check_string(
    user: &Map<String, Value>,
    key: &str,
    limits: Option<(usize, usize)>,
    errors: &mut Vec<UserError>,
) {
    match user.get(key) {
        None => {}
        Some(Value::String(s)) => {
            if let Some((min, max)) = limits {
                let len = s.chars().count();
                if len < min {
                    errors.push(UserError::at(
                        "MIN_LENGTH",
                        key,
                        format!("String is too short ({len} chars), minimum {min}"),
                    ));
                } else if len > max {
                    errors.push(UserError::at(
                        "MAX_LENGTH",
                        key,
                        format!("String is too long ({len} chars), maximum {max}"),
                    ));
                }
            }
        }
        Some(other) => errors.push(invalid_type(key, "string", other)),
    }
}

fn check_bool(user: &Map<String, Value>, key: &str, errors: &mut Vec<UserError>) {
    if let Some(value) = user.get(key)
        && !value.is_boolean()
    {
        errors.push(invalid_type(key, "boolean", value));
    }
}

fn check_enum(
    object: &Map<String, Value>,
    key: &str,
    path: &str,
    allowed: &[&str],
    errors: &mut Vec<UserError>,
) {
    match object.get(key) {
        None => {}
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => {}
        Some(Value::String(s)) => errors.push(UserError::at(
            "ENUM_MISMATCH",
            path,
            format!("No enum match for: {}", Value::String(s.clone())),
        )),
        Some(other) => errors.push(invalid_type(path, "string", other)),
    }
}

fn require(
    object: &Map<String, Value>,
    key: &str,
    path: &str,
    errors: &mut Vec<UserError>,
) -> bool {
    if object.contains_key(key) {
        true
    } else {
        errors.push(UserError::at(
            "OBJECT_REQUIRED",
            path,
            format!("Missing required property: {key}"),
        ));
        false
    }
}

fn check_integer(
    object: &Map<String, Value>,
    key: &str,
    path: &str,
    min: i64,
    errors: &mut Vec<UserError>,
) {
    let Some(value) = object.get(key) else {
        return;
    };
    match value.as_i64() {
        Some(v) if v < min => errors.push(UserError::at(
            "MINIMUM",
            path,
            format!("Value {v} is less than minimum {min}"),
        )),
        Some(_) => {}
        None if value.is_u64() => {}
        None => errors.push(invalid_type(path, "integer", value)),
    }
}

fn check_custom_password_hash(value: &Value, errors: &mut Vec<UserError>) {
    let base = "custom_password_hash";
    let Some(cph) = value.as_object() else {
        errors.push(invalid_type(base, "object", value));
        return;
    };
    if require(cph, "algorithm", base, errors) {
        check_enum(
            cph,
            "algorithm",
            &format!("{base}.algorithm"),
            &HASH_ALGORITHMS,
            errors,
        );
    }
    if require(cph, "hash", base, errors) {
        let path = format!("{base}.hash");
        match cph.get("hash") {
            Some(Value::Object(hash)) => {
                if let Some(v) = hash.get("value")
                    && !v.is_string()
                {
                    errors.push(invalid_type(&format!("{path}.value"), "string", v));
                }
                check_enum(
                    hash,
                    "encoding",
                    &format!("{path}.encoding"),
                    &ENCODINGS,
                    errors,
                );
                check_enum(hash, "digest", &format!("{path}.digest"), &DIGESTS, errors);
                match hash.get("key") {
                    None => {}
                    Some(Value::Object(key)) => {
                        let key_path = format!("{path}.key");
                        if require(key, "value", &key_path, errors)
                            && let Some(v) = key.get("value")
                            && !v.is_string()
                        {
                            errors.push(invalid_type(&format!("{key_path}.value"), "string", v));
                        }
                        check_enum(
                            key,
                            "encoding",
                            &format!("{key_path}.encoding"),
                            &ENCODINGS,
                            errors,
                        );
                    }
                    Some(other) => {
                        errors.push(invalid_type(&format!("{path}.key"), "object", other))
                    }
                }
            }
            Some(other) => errors.push(invalid_type(&path, "object", other)),
            None => {}
        }
    }
    match cph.get("salt") {
        None => {}
        Some(Value::Object(salt)) => {
            let path = format!("{base}.salt");
            require(salt, "value", &path, errors);
            check_enum(
                salt,
                "encoding",
                &format!("{path}.encoding"),
                &ENCODINGS,
                errors,
            );
            check_enum(
                salt,
                "position",
                &format!("{path}.position"),
                &["prefix", "suffix"],
                errors,
            );
        }
        Some(other) => errors.push(invalid_type(&format!("{base}.salt"), "object", other)),
    }
    match cph.get("password") {
        None => {}
        Some(Value::Object(password)) => check_enum(
            password,
            "encoding",
            &format!("{base}.password.encoding"),
            &PASSWORD_ENCODINGS,
            errors,
        ),
        Some(other) => errors.push(invalid_type(&format!("{base}.password"), "object", other)),
    }
    check_integer(cph, "keylen", &format!("{base}.keylen"), 1, errors);
    check_integer(cph, "cost", &format!("{base}.cost"), 2, errors);
    check_integer(cph, "blockSize", &format!("{base}.blockSize"), 1, errors);
    check_integer(
        cph,
        "parallelization",
        &format!("{base}.parallelization"),
        1,
        errors,
    );
    if cph.get("algorithm").and_then(Value::as_str) == Some("scrypt") && !cph.contains_key("keylen")
    {
        require(cph, "keylen", base, errors);
    }
}

/// Checks one MFA factor's value; `Some((code, detail))` when it fails.
type FactorCheck = fn(&str) -> Option<(&'static str, String)>;

fn check_mfa_factors(value: &Value, errors: &mut Vec<UserError>) {
    let base = "mfa_factors";
    let Some(factors) = value.as_array() else {
        errors.push(invalid_type(base, "array", value));
        return;
    };
    if factors.is_empty() {
        errors.push(UserError::at(
            "ARRAY_LENGTH_SHORT",
            base,
            "Array is too short (0), minimum 1",
        ));
    } else if factors.len() > 10 {
        errors.push(UserError::at(
            "ARRAY_LENGTH_LONG",
            base,
            format!("Array is too long ({}), maximum 10", factors.len()),
        ));
    }
    for (i, factor) in factors.iter().enumerate() {
        let path = format!("{base}[{i}]");
        let Some(factor) = factor.as_object() else {
            errors.push(invalid_type(&path, "object", factor));
            continue;
        };
        let kinds: Vec<&String> = factor.keys().collect();
        let known = ["totp", "phone", "email"];
        if kinds.len() != 1 || !known.contains(&kinds[0].as_str()) {
            errors.push(UserError::at(
                "ANY_OF_MISSING",
                &path,
                "Data does not match any schemas from 'anyOf'",
            ));
            continue;
        }
        let kind = kinds[0].as_str();
        let inner_path = format!("{path}.{kind}");
        let Some(inner) = factor.get(kind).and_then(Value::as_object) else {
            if let Some(v) = factor.get(kind) {
                errors.push(invalid_type(&inner_path, "object", v));
            }
            continue;
        };
        let (field, check): (&str, FactorCheck) = match kind {
            "totp" => ("secret", |s| {
                (s.is_empty()
                    || !s
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)))
                .then(|| {
                    (
                        "PATTERN",
                        format!("String does not match pattern ^[A-Z2-7]+$: {s}"),
                    )
                })
            }),
            "phone" => ("value", |s| {
                (!is_e164(s)).then(|| {
                    (
                        "PATTERN",
                        format!("String does not match pattern ^\\+[0-9]{{1,15}}$: {s}"),
                    )
                })
            }),
            _ => ("value", |s| {
                (!is_email(s)).then(|| {
                    (
                        "FORMAT",
                        format!("Object didn't pass validation for format email: {s}"),
                    )
                })
            }),
        };
        if !require(inner, field, &inner_path, errors) {
            continue;
        }
        let field_path = format!("{inner_path}.{field}");
        match inner.get(field) {
            Some(Value::String(s)) => {
                if let Some((code, detail)) = check(s) {
                    errors.push(UserError::at(code, &field_path, detail));
                }
            }
            Some(other) => errors.push(invalid_type(&field_path, "string", other)),
            None => {}
        }
    }
}

/// Validates one entry of an import file against Auth0's user schema (§3.4). An empty result means
/// the user may be imported. Properties the schema does not list are ignored [INF]: Auth0's schema
/// says `additionalProperties: false`, yet its documented error codes have none for an extra
/// property, which suggests the validator strips them.
pub fn validate_user(user: &Value) -> Vec<UserError> {
    let mut errors = Vec::new();
    let Some(object) = user.as_object() else {
        return vec![UserError {
            code: "INVALID_TYPE",
            message: format!("Expected type object but found type {}", type_name(user)),
            path: None,
        }];
    };
    if require(object, "email", "email", &mut errors) {
        match object.get("email") {
            Some(Value::String(email)) if is_email(email) => {}
            Some(Value::String(email)) => errors.push(UserError::at(
                "FORMAT",
                "email",
                format!("Object didn't pass validation for format email: {email}"),
            )),
            Some(other) => errors.push(invalid_type("email", "string", other)),
            None => {}
        }
    }
    for key in ["email_verified", "blocked", "phone_verified"] {
        check_bool(object, key, &mut errors);
    }
    // Lengths as in `POST /api/v2/users` (§2.5) [INF]: the import schema states none, but Auth0
    // lists MIN_LENGTH and MAX_LENGTH among its import error codes.
    check_string(object, "user_id", Some((1, 255)), &mut errors);
    check_string(object, "username", Some((1, 128)), &mut errors);
    check_string(object, "given_name", Some((1, 150)), &mut errors);
    check_string(object, "family_name", Some((1, 150)), &mut errors);
    check_string(object, "name", Some((1, 300)), &mut errors);
    check_string(object, "nickname", Some((1, 300)), &mut errors);
    check_string(object, "picture", None, &mut errors);
    check_string(object, "password_hash", None, &mut errors);
    match object.get("phone_number") {
        None => {}
        Some(Value::String(phone)) if is_e164(phone) => {}
        Some(Value::String(phone)) => errors.push(UserError::at(
            "PATTERN",
            "phone_number",
            format!("String does not match pattern ^\\+[0-9]{{1,15}}$: {phone}"),
        )),
        Some(other) => errors.push(invalid_type("phone_number", "string", other)),
    }
    if let Some(cph) = object.get("custom_password_hash") {
        if object.contains_key("password_hash") {
            // The two are mutually exclusive; a `not: {required: [both]}` in the schema [INF].
            errors.push(UserError::at(
                "NOT_PASSED",
                "custom_password_hash",
                "Data matches schema from 'not'",
            ));
        }
        check_custom_password_hash(cph, &mut errors);
    }
    for key in ["app_metadata", "user_metadata"] {
        if let Some(value) = object.get(key)
            && !value.is_object()
        {
            errors.push(invalid_type(key, "object", value));
        }
    }
    if let Some(Value::Object(app_metadata)) = object.get("app_metadata") {
        for forbidden in FORBIDDEN_APP_METADATA {
            if app_metadata.contains_key(forbidden) {
                // A `not` over the forbidden keys in Auth0's schema [INF].
                errors.push(UserError::at(
                    "NOT_PASSED",
                    &format!("app_metadata.{forbidden}"),
                    "Data matches schema from 'not'",
                ));
            }
        }
    }
    if let Some(factors) = object.get("mfa_factors") {
        check_mfa_factors(factors, &mut errors);
    }
    errors
}

/// The fields of a valid import entry that `upsert` may overwrite (§3.4).
pub const UPSERTABLE: [&str; 9] = [
    "app_metadata",
    "email_verified",
    "family_name",
    "given_name",
    "name",
    "nickname",
    "picture",
    "user_metadata",
    "custom_password_hash",
];

/// The user as `/errors` shows it: secrets replaced by `*****` (§3.3).
pub fn redact(user: &Value) -> Value {
    let mut user = user.clone();
    if let Some(object) = user.as_object_mut() {
        if object.get("password_hash").is_some_and(Value::is_string) {
            object.insert("password_hash".into(), Value::String("*****".into()));
        }
        if let Some(Value::Object(cph)) = object.get_mut("custom_password_hash") {
            for part in ["hash", "salt"] {
                if let Some(Value::Object(inner)) = cph.get_mut(part) {
                    if inner.contains_key("value") {
                        inner.insert("value".into(), Value::String("*****".into()));
                    }
                    if let Some(Value::Object(key)) = inner.get_mut("key")
                        && key.contains_key("value")
                    {
                        key.insert("value".into(), Value::String("*****".into()));
                    }
                }
            }
        }
        if let Some(Value::Array(factors)) = object.get_mut("mfa_factors") {
            for factor in factors {
                if let Some(Value::Object(totp)) = factor.get_mut("totp")
                    && totp.contains_key("secret")
                {
                    totp.insert("secret".into(), Value::String("*****".into()));
                }
            }
        }
    }
    user
}

// ---------------------------------------------------------------------------------------------
// Running an import against the tenant's users

/// How an import entry matches a user already in the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existing {
    /// Same email (case-insensitive): the user `upsert` updates.
    Email(String),
    Username(String),
    UserId(String),
    Phone(String),
}

/// The tenant's users, as an import sees them. The management module implements it over the
/// emulator's state; tests use a fake.
pub trait UserDirectory {
    /// A user of `connection` that `entry` collides with, email first.
    fn find(&self, connection: &str, entry: &Map<String, Value>) -> Option<Existing>;
    /// Creates the user `entry` describes (already validated), `auth0|` + its `user_id` when given.
    fn insert(&mut self, connection: &str, entry: &Map<String, Value>) -> Result<(), UserError>;
    /// Overwrites the upsertable fields `fields` holds on the user `user_id` (metadata is replaced,
    /// not merged, as Auth0 documents for upserts).
    fn update(&mut self, user_id: &str, fields: &Map<String, Value>);
}

/// `summary` of a finished job; Auth0's key order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub failed: u64,
    pub updated: u64,
    pub inserted: u64,
    pub total: u64,
}

/// One entry of `GET /api/v2/jobs/{id}/errors`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FailedUser {
    pub user: Value,
    pub errors: Vec<UserError>,
}

/// What importing a file did.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportReport {
    pub summary: Summary,
    pub failed: Vec<FailedUser>,
}

fn lowercase_str(entry: &Map<String, Value>, key: &str) -> Option<String> {
    entry
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_lowercase)
}

/// Imports `users` into `connection`, user by user: schema errors, duplicates inside the file, and
/// collisions with existing users fail that user only (§3.2: invalid users never fail the job).
pub fn import(
    users: &[Value],
    connection: &str,
    upsert: bool,
    directory: &mut dyn UserDirectory,
) -> ImportReport {
    let mut summary = Summary {
        total: users.len() as u64,
        ..Summary::default()
    };
    let mut failed = Vec::new();
    let mut seen_emails = std::collections::HashSet::new();
    let mut seen_usernames = std::collections::HashSet::new();
    let mut seen_ids = std::collections::HashSet::new();
    for user in users {
        let mut fail = |errors: Vec<UserError>| {
            summary.failed += 1;
            failed.push(FailedUser {
                user: redact(user),
                errors,
            });
        };
        let errors = validate_user(user);
        let Some(entry) = user.as_object().filter(|_| errors.is_empty()) else {
            fail(errors);
            continue;
        };
        // A user listed twice fails the second time; Auth0 never inserts then updates [DOC].
        let email = lowercase_str(entry, "email");
        let username = entry.get("username").and_then(Value::as_str);
        let user_id = entry.get("user_id").and_then(Value::as_str);
        if email.as_ref().is_some_and(|e| seen_emails.contains(e)) {
            fail(vec![UserError::duplicated_in_file("email")]);
            continue;
        }
        if username.is_some_and(|u| seen_usernames.contains(u)) {
            fail(vec![UserError::duplicated_in_file("username")]);
            continue;
        }
        if user_id.is_some_and(|u| seen_ids.contains(u)) {
            fail(vec![UserError::duplicated_in_file("user_id")]);
            continue;
        }
        seen_emails.extend(email);
        seen_usernames.extend(username.map(str::to_string));
        seen_ids.extend(user_id.map(str::to_string));

        match (directory.find(connection, entry), upsert) {
            (None, _) => match directory.insert(connection, entry) {
                Ok(()) => summary.inserted += 1,
                Err(error) => fail(vec![error]),
            },
            (Some(_), false) => fail(vec![UserError::duplicated_in_tenant()]),
            (Some(Existing::Email(existing)), true) => {
                let mut fields: Map<String, Value> = entry
                    .iter()
                    .filter(|(k, _)| UPSERTABLE.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                // "When an email is added or updated by an import, email_verified is set to false
                // unless the file sets it true" [DOC].
                fields.entry("email_verified").or_insert(Value::Bool(false));
                directory.update(&existing, &fields);
                summary.updated += 1;
            }
            (Some(Existing::Username(_)), true) => {
                fail(vec![UserError::conflict("CONFLICT_USERNAME", "username")])
            }
            (Some(Existing::UserId(_)), true) | (Some(Existing::Phone(_)), true) => {
                fail(vec![UserError::conflict("CONFLICT", "identifier")])
            }
        }
    }
    ImportReport { summary, failed }
}

// ---------------------------------------------------------------------------------------------
// Job records and their lifecycle

/// Most import jobs a tenant may have active at once [DOC].
pub const MAX_ACTIVE_JOBS: usize = 2;
/// Largest users file Auth0 accepts, in bytes [DOC].
pub const MAX_FILE_BYTES: usize = 512_000;

/// The control API's knobs for jobs (the tenant's settings: `jobSeconds`, `jobRetentionSeconds`,
/// `failJobs`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobSettings {
    /// Seconds from creation to completion: pending the first half, processing the second.
    pub job_seconds: f64,
    /// Seconds after creation when a job is forgotten (404), as Auth0 forgets jobs after a day.
    pub retention_seconds: f64,
    /// Jobs that finish while this is set fail as a whole (no user imported): an emulator fault.
    pub fail_jobs: bool,
}

impl Default for JobSettings {
    fn default() -> Self {
        JobSettings {
            job_seconds: 2.0,
            retention_seconds: 86_400.0,
            fail_jobs: false,
        }
    }
}

/// A submitted import.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub connection_id: String,
    pub connection: String,
    pub external_id: Option<String>,
    pub upsert: bool,
    pub send_completion_email: bool,
    /// The users file, or why it could not be read as a JSON array (the job then fails, as Auth0's
    /// does: the file is parsed after the 202 [DOC]).
    pub users: Result<Vec<Value>, String>,
}

#[derive(Debug, Clone)]
struct Job {
    id: String,
    new: NewJob,
    created_at: String,
    created: Instant,
    duration: Duration,
    outcome: Option<Outcome>,
}

#[derive(Debug, Clone)]
enum Outcome {
    Completed(ImportReport),
    Failed { summary: Summary, details: String },
}

/// A job's body, as `POST /jobs/users-imports` and `GET /jobs/{id}` answer it; the key order of
/// the real responses [OBS].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JobView {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub status: &'static str,
    pub connection_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percentage_done: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_left_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_details: Option<String>,
    pub connection: String,
    pub created_at: String,
    pub id: String,
}

/// What `GET /jobs/{id}/errors` answers.
#[derive(Debug, Clone, PartialEq)]
pub enum JobErrors {
    /// The job finished with failed users: 200 with the array.
    Users(Vec<FailedUser>),
    /// Not finished, or no user failed: 204.
    None,
    /// The whole job failed: 200 with a job object (`GetJobGenericErrorResponseContent`).
    JobFailed(Value),
}

/// Why a job could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateJobError {
    TooManyActive,
}

/// Every import job of one emulated tenant, behind one lock. Lock order: this store, then the
/// tenant's users (the import runs with both held), never the reverse.
#[derive(Debug, Default)]
pub struct JobStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    jobs: HashMap<String, Job>,
}

/// Runs an import for [`JobStore::advance`]: `(users, connection, upsert) -> report`.
pub type Importer<'a> = dyn FnMut(&[Value], &str, bool) -> ImportReport + 'a;

impl JobStore {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while importing leaves the records consistent enough to keep serving.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Finishes the jobs whose time has come (importing their users with `importer`) and forgets
    /// those past retention. Every read and write of jobs calls this first, so the lifecycle does
    /// not depend on a timer having fired.
    pub fn advance(&self, now: Instant, settings: &JobSettings, importer: &mut Importer<'_>) {
        let mut inner = self.lock();
        let retention = Duration::from_secs_f64(settings.retention_seconds.max(0.0));
        inner
            .jobs
            .retain(|_, job| now.saturating_duration_since(job.created) < retention);
        let mut due: Vec<&mut Job> = inner
            .jobs
            .values_mut()
            .filter(|job| job.outcome.is_none() && now >= job.created + job.duration)
            .collect();
        // Oldest first, so two due jobs touching the same users resolve in submission order.
        due.sort_by_key(|job| job.created);
        for job in due {
            job.outcome = Some(match &job.new.users {
                Err(details) => Outcome::Failed {
                    summary: Summary::default(),
                    details: details.clone(),
                },
                Ok(users) if settings.fail_jobs => Outcome::Failed {
                    summary: Summary {
                        failed: users.len() as u64,
                        total: users.len() as u64,
                        ..Summary::default()
                    },
                    details: "The job failed (fault injected by the emulator's control API)."
                        .into(),
                },
                Ok(users) => {
                    Outcome::Completed(importer(users, &job.new.connection, job.new.upsert))
                }
            });
        }
    }

    /// Records a job: `Err` when [`MAX_ACTIVE_JOBS`] are active. Call [`JobStore::advance`] first.
    pub fn create(
        &self,
        new: NewJob,
        now: Instant,
        settings: &JobSettings,
    ) -> Result<JobView, CreateJobError> {
        let mut inner = self.lock();
        let active = inner
            .jobs
            .values()
            .filter(|job| job.outcome.is_none())
            .count();
        if active >= MAX_ACTIVE_JOBS {
            return Err(CreateJobError::TooManyActive);
        }
        let id = loop {
            let id = format!("job_{}", random_alphanumeric(16));
            if !inner.jobs.contains_key(&id) {
                break id;
            }
        };
        let duration = Duration::from_secs_f64(settings.job_seconds.max(0.0));
        let job = Job {
            id: id.clone(),
            new,
            created_at: timestamp_now(),
            created: now,
            duration,
            outcome: None,
        };
        let view = view(&job, now);
        inner.jobs.insert(id, job);
        Ok(view)
    }

    /// The job's body, or `None` for an unknown or forgotten job.
    pub fn get(&self, id: &str, now: Instant) -> Option<JobView> {
        self.lock().jobs.get(id).map(|job| view(job, now))
    }

    /// The job's failed users, or `None` for an unknown or forgotten job.
    pub fn errors(&self, id: &str) -> Option<JobErrors> {
        let inner = self.lock();
        let job = inner.jobs.get(id)?;
        Some(match &job.outcome {
            None => JobErrors::None,
            Some(Outcome::Completed(report)) if report.failed.is_empty() => JobErrors::None,
            Some(Outcome::Completed(report)) => JobErrors::Users(report.failed.clone()),
            Some(Outcome::Failed { details, .. }) => JobErrors::JobFailed(serde_json::json!({
                "status": "failed",
                "type": "users_import",
                "id": job.id,
                "created_at": job.created_at,
                "connection_id": job.new.connection_id,
                "status_details": details,
            })),
        })
    }

    /// Active (pending or processing) jobs, for the control API and tests.
    pub fn active(&self) -> usize {
        self.lock()
            .jobs
            .values()
            .filter(|job| job.outcome.is_none())
            .count()
    }

    /// When the first active job is due, for a background wake-up.
    pub fn next_due(&self) -> Option<Instant> {
        self.lock()
            .jobs
            .values()
            .filter(|job| job.outcome.is_none())
            .map(|job| job.created + job.duration)
            .min()
    }
}

fn view(job: &Job, now: Instant) -> JobView {
    let mut view = JobView {
        kind: "users_import",
        status: "pending",
        connection_id: job.new.connection_id.clone(),
        external_id: job.new.external_id.clone().filter(|e| !e.is_empty()),
        summary: None,
        percentage_done: None,
        time_left_seconds: None,
        status_details: None,
        connection: job.new.connection.clone(),
        created_at: job.created_at.clone(),
        id: job.id.clone(),
    };
    match &job.outcome {
        Some(Outcome::Completed(report)) => {
            view.status = "completed";
            view.summary = Some(report.summary);
        }
        Some(Outcome::Failed { summary, details }) => {
            view.status = "failed";
            view.summary = Some(*summary);
            view.status_details = Some(details.clone());
        }
        None => {
            let elapsed = now.saturating_duration_since(job.created);
            let half = job.duration / 2;
            if elapsed >= half && !job.duration.is_zero() {
                view.status = "processing";
                let done = elapsed.saturating_sub(half).as_secs_f64()
                    / (job.duration - half).as_secs_f64().max(f64::EPSILON);
                view.percentage_done = Some((done.min(0.99) * 100.0) as u64);
                view.time_left_seconds =
                    Some(job.duration.saturating_sub(elapsed).as_secs_f64().ceil() as u64);
            }
        }
    }
    view
}

/// `2023-01-25T17:48:16.543Z`: ISO-8601 with milliseconds and `Z`, as Auth0 writes timestamps [OBS].
pub fn timestamp_now() -> String {
    timestamp(time::OffsetDateTime::now_utc())
}

pub fn timestamp(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

fn random_alphanumeric(len: usize) -> String {
    use rand::RngExt;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn codes(user: Value) -> Vec<(&'static str, Option<String>)> {
        validate_user(&user)
            .into_iter()
            .map(|e| (e.code, e.path))
            .collect()
    }

    #[test]
    fn accepts_a_full_valid_user() {
        let user = json!({
            "email": "a@example.com", "email_verified": true, "user_id": "123", "username": "alice",
            "given_name": "A", "family_name": "B", "name": "A B", "nickname": "ab",
            "picture": "https://example.com/a.png", "blocked": false,
            "phone_number": "+15555550100", "phone_verified": true,
            "custom_password_hash": {
                "algorithm": "hmac",
                "hash": {"value": "abc", "encoding": "hex", "digest": "sha256", "key": {"value": "k", "encoding": "utf8"}},
                "salt": {"value": "s", "encoding": "utf8", "position": "suffix"},
                "password": {"encoding": "utf8"}
            },
            "app_metadata": {"roles": ["admin"]}, "user_metadata": {"theme": "dark"},
            "mfa_factors": [{"totp": {"secret": "JBTWY3DPEHPK3PNP"}}, {"phone": {"value": "+12125550001"}}, {"email": {"value": "m@example.com"}}],
            "unknown_extra": 1
        });
        assert_eq!(validate_user(&user), vec![]);
    }

    #[test]
    fn reports_auth0_codes_for_each_schema_rule() {
        let table: Vec<(Value, &str, &str)> = vec![
            (json!({}), "OBJECT_REQUIRED", "email"),
            (json!({"email": "nope"}), "FORMAT", "email"),
            (json!({"email": 5}), "INVALID_TYPE", "email"),
            (
                json!({"email": "a@b.c", "email_verified": "yes"}),
                "INVALID_TYPE",
                "email_verified",
            ),
            (
                json!({"email": "a@b.c", "blocked": 1}),
                "INVALID_TYPE",
                "blocked",
            ),
            (
                json!({"email": "a@b.c", "username": ""}),
                "MIN_LENGTH",
                "username",
            ),
            (
                json!({"email": "a@b.c", "given_name": "x".repeat(151)}),
                "MAX_LENGTH",
                "given_name",
            ),
            (
                json!({"email": "a@b.c", "phone_number": "0123"}),
                "PATTERN",
                "phone_number",
            ),
            (
                json!({"email": "a@b.c", "app_metadata": []}),
                "INVALID_TYPE",
                "app_metadata",
            ),
            (
                json!({"email": "a@b.c", "user_metadata": "x"}),
                "INVALID_TYPE",
                "user_metadata",
            ),
            (
                json!({"email": "a@b.c", "app_metadata": {"email": "x"}}),
                "NOT_PASSED",
                "app_metadata.email",
            ),
            (
                json!({"email": "a@b.c", "password_hash": "h", "custom_password_hash": {"algorithm": "md5", "hash": {"value": "x"}}}),
                "NOT_PASSED",
                "custom_password_hash",
            ),
            (
                json!({"email": "a@b.c", "custom_password_hash": {"hash": {"value": "x"}}}),
                "OBJECT_REQUIRED",
                "custom_password_hash",
            ),
            (
                json!({"email": "a@b.c", "custom_password_hash": {"algorithm": "rot13", "hash": {"value": "x"}}}),
                "ENUM_MISMATCH",
                "custom_password_hash.algorithm",
            ),
            (
                json!({"email": "a@b.c", "custom_password_hash": {"algorithm": "md5", "hash": {"value": "x", "encoding": "b32"}}}),
                "ENUM_MISMATCH",
                "custom_password_hash.hash.encoding",
            ),
            (
                json!({"email": "a@b.c", "custom_password_hash": {"algorithm": "scrypt", "hash": {"value": "x"}, "keylen": 0}}),
                "MINIMUM",
                "custom_password_hash.keylen",
            ),
            (
                json!({"email": "a@b.c", "mfa_factors": []}),
                "ARRAY_LENGTH_SHORT",
                "mfa_factors",
            ),
            (
                json!({"email": "a@b.c", "mfa_factors": vec![json!({"email": {"value": "m@x.y"}}); 11]}),
                "ARRAY_LENGTH_LONG",
                "mfa_factors",
            ),
            (
                json!({"email": "a@b.c", "mfa_factors": [{"sms": {}}]}),
                "ANY_OF_MISSING",
                "mfa_factors[0]",
            ),
            (
                json!({"email": "a@b.c", "mfa_factors": [{"totp": {"secret": "lower"}}]}),
                "PATTERN",
                "mfa_factors[0].totp.secret",
            ),
            (
                json!({"email": "a@b.c", "mfa_factors": [{"phone": {}}]}),
                "OBJECT_REQUIRED",
                "mfa_factors[0].phone",
            ),
            (
                json!({"email": "a@b.c", "mfa_factors": [{"email": {"value": "bad"}}]}),
                "FORMAT",
                "mfa_factors[0].email.value",
            ),
        ];
        for (user, code, path) in table {
            let found = codes(user.clone());
            assert!(
                found.contains(&(code, Some(path.to_string()))),
                "{user}: expected {code} at {path}, got {found:?}"
            );
        }
    }

    #[test]
    fn words_messages_like_auth0() {
        let errors = validate_user(&json!({"email": "akshay144@"}));
        assert_eq!(
            errors,
            vec![UserError {
                code: "FORMAT",
                message: "Error in email property - Object didn't pass validation for format email: akshay144@".into(),
                path: Some("email".into()),
            }]
        );
        assert_eq!(
            validate_user(&json!({"name": "x"}))[0].message,
            "Error in email property - Missing required property: email"
        );
        assert_eq!(
            serde_json::to_value(UserError::duplicated_in_tenant()).unwrap(),
            json!({"code": "DUPLICATED_USER", "message": "The user already exist and upsert parameter is false"})
        );
    }

    #[test]
    fn a_non_object_entry_is_an_invalid_type() {
        assert_eq!(codes(json!("a@b.c")), vec![("INVALID_TYPE", None)]);
    }

    #[test]
    fn redacts_secrets() {
        let user = json!({"email": "a@b.c", "password_hash": "$2b$10$abc",
            "custom_password_hash": {"algorithm": "hmac", "hash": {"value": "h", "key": {"value": "k"}}, "salt": {"value": "s"}},
            "mfa_factors": [{"totp": {"secret": "ABC"}}]});
        assert_eq!(
            redact(&user),
            json!({"email": "a@b.c", "password_hash": "*****",
                "custom_password_hash": {"algorithm": "hmac", "hash": {"value": "*****", "key": {"value": "*****"}}, "salt": {"value": "*****"}},
                "mfa_factors": [{"totp": {"secret": "*****"}}]})
        );
    }

    #[test]
    fn email_and_phone_formats() {
        for ok in ["a@b.c", "first.last+tag@example.co.uk", "x@localhost"] {
            assert!(is_email(ok), "{ok}");
        }
        for bad in ["", "a", "@b.c", "a@", "a b@c.d", "a@b..c", "a@.b"] {
            assert!(!is_email(bad), "{bad}");
        }
        assert!(is_e164("+1"));
        assert!(is_e164("+123456789012345"));
        assert!(!is_e164("+1234567890123456"));
        assert!(!is_e164("+"));
        assert!(!is_e164("12"));
    }

    /// A directory of `(connection, user)` pairs.
    #[derive(Default)]
    struct FakeDirectory {
        users: Vec<(String, Map<String, Value>)>,
    }

    impl UserDirectory for FakeDirectory {
        fn find(&self, connection: &str, entry: &Map<String, Value>) -> Option<Existing> {
            let email = lowercase_str(entry, "email");
            self.users
                .iter()
                .filter(|(c, _)| c == connection)
                .find_map(|(_, u)| {
                    let id = u["user_id"].as_str().unwrap_or_default().to_string();
                    if lowercase_str(u, "email") == email {
                        Some(Existing::Email(id))
                    } else if u.get("username").is_some()
                        && u.get("username") == entry.get("username")
                    {
                        Some(Existing::Username(id))
                    } else {
                        None
                    }
                })
        }

        fn insert(
            &mut self,
            connection: &str,
            entry: &Map<String, Value>,
        ) -> Result<(), UserError> {
            let mut user = entry.clone();
            let id = entry.get("user_id").and_then(Value::as_str).map_or_else(
                || format!("auth0|{}", self.users.len()),
                |id| format!("auth0|{id}"),
            );
            user.insert("user_id".into(), Value::String(id));
            self.users.push((connection.to_string(), user));
            Ok(())
        }

        fn update(&mut self, user_id: &str, fields: &Map<String, Value>) {
            for (_, user) in &mut self.users {
                if user["user_id"] == user_id {
                    user.extend(fields.clone());
                }
            }
        }
    }

    fn seeded() -> FakeDirectory {
        let mut dir = FakeDirectory::default();
        dir.insert(
            "DB",
            json!({"email": "old@x.io", "user_id": "old", "username": "olduser", "app_metadata": {"a": 1, "b": 2}})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        dir
    }

    #[test]
    fn imports_valid_users_and_reports_the_others() {
        let mut dir = seeded();
        let file = vec![
            json!({"email": "new@x.io", "user_id": "n1"}),
            json!({"email": "OLD@x.io"}),
            json!({"email": "bad"}),
            json!({"email": "new@X.io"}),
            json!({"email": "other@x.io", "username": "olduser"}),
            json!({"email": "third@x.io", "username": "third"}),
        ];
        let report = import(&file, "DB", false, &mut dir);
        assert_eq!(
            report.summary,
            Summary {
                failed: 4,
                updated: 0,
                inserted: 2,
                total: 6
            }
        );
        let codes: Vec<(String, Vec<&str>)> = report
            .failed
            .iter()
            .map(|f| {
                (
                    f.user["email"].as_str().unwrap().to_string(),
                    f.errors.iter().map(|e| e.code).collect(),
                )
            })
            .collect();
        assert_eq!(
            codes,
            vec![
                ("OLD@x.io".to_string(), vec!["DUPLICATED_USER"]),
                ("bad".to_string(), vec!["FORMAT"]),
                ("new@X.io".to_string(), vec!["DUPLICATED_USER"]),
                ("other@x.io".to_string(), vec!["DUPLICATED_USER"]),
            ]
        );
        assert_eq!(
            report.failed[2].errors[0].message,
            "A user with this email was already provided."
        );
        assert!(dir.users.iter().any(|(_, u)| u["user_id"] == "auth0|n1"));
        // the same email in another connection is no collision
        let report = import(&[json!({"email": "old@x.io"})], "Other", false, &mut dir);
        assert_eq!(report.summary.inserted, 1);
    }

    #[test]
    fn upsert_overwrites_upsertable_fields_of_an_email_match() {
        let mut dir = seeded();
        let file = vec![
            json!({"email": "old@x.io", "app_metadata": {"c": 3}, "username": "renamed", "given_name": "Ola"}),
            json!({"email": "someone@x.io", "username": "olduser"}),
        ];
        let report = import(&file, "DB", true, &mut dir);
        assert_eq!(
            report.summary,
            Summary {
                failed: 1,
                updated: 1,
                inserted: 0,
                total: 2
            }
        );
        assert_eq!(report.failed[0].errors[0].code, "CONFLICT_USERNAME");
        let (_, old) = &dir.users[0];
        assert_eq!(
            old["app_metadata"],
            json!({"c": 3}),
            "upsert replaces metadata"
        );
        assert_eq!(old["given_name"], "Ola");
        assert_eq!(old["username"], "olduser", "username is not upsertable");
        assert_eq!(old["email_verified"], false);
    }

    fn new_job(users: Result<Vec<Value>, String>) -> NewJob {
        NewJob {
            connection_id: "con_AAAAAAAAAAAAAAAA".into(),
            connection: "DB".into(),
            external_id: Some("ext".into()),
            upsert: false,
            send_completion_email: true,
            users,
        }
    }

    fn importer(dir: &mut FakeDirectory) -> impl FnMut(&[Value], &str, bool) -> ImportReport + '_ {
        move |users, connection, upsert| import(users, connection, upsert, dir)
    }

    #[test]
    fn a_job_goes_pending_processing_completed_then_is_forgotten() {
        let store = JobStore::default();
        let settings = JobSettings {
            job_seconds: 10.0,
            retention_seconds: 100.0,
            fail_jobs: false,
        };
        let mut dir = seeded();
        let t0 = Instant::now();
        let created = store
            .create(
                new_job(Ok(vec![
                    json!({"email": "a@x.io"}),
                    json!({"email": "old@x.io"}),
                ])),
                t0,
                &settings,
            )
            .unwrap();
        assert_eq!(created.status, "pending");
        assert!(
            created.id.starts_with("job_") && created.id.len() == 20,
            "{}",
            created.id
        );
        assert!(created.id[4..].chars().all(|c| c.is_ascii_alphanumeric()));
        let body = serde_json::to_string(&created).unwrap();
        assert!(
            body.starts_with(r#"{"type":"users_import","status":"pending","connection_id":"con_AAAAAAAAAAAAAAAA","external_id":"ext","connection":"DB","created_at":""#),
            "{body}"
        );
        let id = created.id;

        store.advance(
            t0 + Duration::from_secs(2),
            &settings,
            &mut importer(&mut dir),
        );
        assert_eq!(
            store.get(&id, t0 + Duration::from_secs(2)).unwrap().status,
            "pending"
        );
        assert_eq!(store.errors(&id), Some(JobErrors::None));

        let at = t0 + Duration::from_secs(7);
        store.advance(at, &settings, &mut importer(&mut dir));
        let processing = store.get(&id, at).unwrap();
        assert_eq!(processing.status, "processing");
        assert_eq!(processing.percentage_done, Some(40));
        assert_eq!(processing.time_left_seconds, Some(3));
        assert_eq!(dir.users.len(), 1, "nothing imported before completion");

        let at = t0 + Duration::from_secs(10);
        store.advance(at, &settings, &mut importer(&mut dir));
        let done = store.get(&id, at).unwrap();
        assert_eq!(done.status, "completed");
        assert_eq!(
            serde_json::to_value(done.summary).unwrap(),
            json!({"failed": 1, "updated": 0, "inserted": 1, "total": 2})
        );
        assert_eq!(dir.users.len(), 2);
        match store.errors(&id) {
            Some(JobErrors::Users(users)) => {
                assert_eq!(
                    serde_json::to_value(&users).unwrap(),
                    json!([{"user": {"email": "old@x.io"}, "errors": [{"code": "DUPLICATED_USER", "message": "The user already exist and upsert parameter is false"}]}])
                );
            }
            other => panic!("{other:?}"),
        }
        // completing twice imports nothing twice
        store.advance(
            t0 + Duration::from_secs(20),
            &settings,
            &mut importer(&mut dir),
        );
        assert_eq!(dir.users.len(), 2);

        store.advance(
            t0 + Duration::from_secs(100),
            &settings,
            &mut importer(&mut dir),
        );
        assert!(
            store.get(&id, t0 + Duration::from_secs(100)).is_none(),
            "forgotten after retention"
        );
        assert!(store.errors(&id).is_none());
    }

    #[test]
    fn at_most_two_jobs_are_active() {
        let store = JobStore::default();
        let settings = JobSettings::default();
        let mut dir = FakeDirectory::default();
        let t0 = Instant::now();
        store.create(new_job(Ok(vec![])), t0, &settings).unwrap();
        store.create(new_job(Ok(vec![])), t0, &settings).unwrap();
        assert_eq!(store.active(), 2);
        assert_eq!(
            store
                .create(new_job(Ok(vec![])), t0, &settings)
                .unwrap_err(),
            CreateJobError::TooManyActive
        );
        let later = t0 + Duration::from_secs(2);
        assert_eq!(store.next_due(), Some(later));
        store.advance(later, &settings, &mut importer(&mut dir));
        assert_eq!(store.active(), 0);
        assert!(store.create(new_job(Ok(vec![])), later, &settings).is_ok());
    }

    #[test]
    fn an_unreadable_file_or_an_injected_fault_fails_the_whole_job() {
        let store = JobStore::default();
        let mut settings = JobSettings {
            job_seconds: 0.0,
            ..JobSettings::default()
        };
        let mut dir = FakeDirectory::default();
        let t0 = Instant::now();
        let id = store
            .create(
                new_job(Err(
                    "Failed to parse users file JSON when importing users.".into()
                )),
                t0,
                &settings,
            )
            .unwrap()
            .id;
        store.advance(t0, &settings, &mut importer(&mut dir));
        let failed = store.get(&id, t0).unwrap();
        assert_eq!(failed.status, "failed");
        assert_eq!(failed.summary, Some(Summary::default()));
        match store.errors(&id) {
            Some(JobErrors::JobFailed(body)) => {
                assert_eq!(body["status"], "failed");
                assert_eq!(
                    body["status_details"],
                    "Failed to parse users file JSON when importing users."
                );
            }
            other => panic!("{other:?}"),
        }

        settings.fail_jobs = true;
        let id = store
            .create(new_job(Ok(vec![json!({"email": "a@x.io"})])), t0, &settings)
            .unwrap()
            .id;
        store.advance(t0, &settings, &mut importer(&mut dir));
        assert_eq!(store.get(&id, t0).unwrap().status, "failed");
        assert!(dir.users.is_empty());
    }

    #[test]
    fn timestamps_have_milliseconds_and_z() {
        let at = time::macros::datetime!(2023-01-25 17:48:16.543 UTC);
        assert_eq!(timestamp(at), "2023-01-25T17:48:16.543Z");
    }
}
