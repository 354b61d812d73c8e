//! The Management API's view of the emulated tenant ([`crate::state`]): the one place where the
//! routes meet the shared users, connections, settings and tokens, and where import jobs (a
//! [`JobStore`] kept as a tenant extension) import into the tenant's users.

use super::Authorized;
use super::error::MgmtError;
use super::users::apply_patch;
use crate::jobs::{self, Existing, JobSettings, JobStore, UserDirectory, UserError};
use crate::state::{self, ManagementError, TenantData, User};
use actix_web::{HttpRequest, web};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Instant;

/// The shared state, as the app registers it.
pub type Tenant = web::Data<state::Tenant>;

pub fn tenant(req: &HttpRequest) -> Option<Tenant> {
    req.app_data::<Tenant>().cloned()
}

impl From<ManagementError> for MgmtError {
    fn from(error: ManagementError) -> Self {
        match error {
            ManagementError::MissingAuthentication => MgmtError::missing_authentication(),
            ManagementError::InvalidToken => MgmtError::invalid_token(),
            ManagementError::ExpiredToken => MgmtError::expired_token(),
            ManagementError::InsufficientScope(scopes) => {
                let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
                MgmtError::insufficient_scope(&scopes)
            }
        }
    }
}

/// Checks the `Authorization` header for a Management API token of this tenant (§2.1).
pub fn authorize(tenant: &Tenant, header: Option<&str>) -> Result<Authorized, MgmtError> {
    let info = tenant.check_management_token(header)?;
    Ok(Authorized {
        scopes: info.scopes,
    })
}

/// The tenant's import jobs.
pub fn jobs(tenant: &Tenant) -> Arc<JobStore> {
    tenant.extension::<JobStore>()
}

/// The job knobs of the tenant's settings.
pub fn job_settings(tenant: &Tenant) -> JobSettings {
    let data = tenant.data();
    JobSettings {
        job_seconds: data.settings.job_seconds,
        retention_seconds: data.settings.job_retention_seconds,
        fail_jobs: data.settings.fail_jobs,
    }
}

/// Every user, Management API form, ordered by `user_id`.
pub fn users(tenant: &Tenant) -> Vec<Value> {
    tenant.data().users().map(User::to_json).collect()
}

pub fn user(tenant: &Tenant, id: &str) -> Option<Value> {
    tenant.data().user(id).map(User::to_json)
}

fn text(profile: &Map<String, Value>, key: &str) -> Option<String> {
    profile.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Writes the root attributes of a Management API user object back into the typed user: the
/// attributes a create, a patch or an upsert can set.
fn write_profile(user: &mut User, profile: &Map<String, Value>) {
    user.email = text(profile, "email");
    user.username = text(profile, "username");
    user.name = text(profile, "name");
    user.nickname = text(profile, "nickname");
    user.given_name = text(profile, "given_name");
    user.family_name = text(profile, "family_name");
    user.picture = text(profile, "picture");
    user.phone_number = text(profile, "phone_number");
    user.phone_verified = profile.get("phone_verified").and_then(Value::as_bool);
    user.email_verified = profile
        .get("email_verified")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    user.blocked = profile
        .get("blocked")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let metadata = |key: &str| match profile.get(key) {
        Some(Value::Object(map)) => map.clone(),
        _ => Map::new(),
    };
    user.app_metadata = metadata("app_metadata");
    user.user_metadata = metadata("user_metadata");
}

/// A new database user from a create body or an import entry (already validated): `auth0|` +
/// the given `user_id`, or a fresh one, and Auth0's defaults for what is missing.
fn new_user(connection: &str, profile: &Map<String, Value>) -> User {
    let mut user = User::new(connection, text(profile, "email"));
    if let Some(id) = text(profile, "user_id").filter(|id| !id.is_empty()) {
        user.user_id = format!("auth0|{id}");
    }
    let mut json = match user.to_json() {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    for (key, value) in profile {
        if !value.is_null() {
            json.insert(key.clone(), value.clone());
        }
    }
    write_profile(&mut user, &json);
    user.fill_defaults();
    if user.email.is_none() {
        // A username-only user: Auth0 derives the nickname from the username [INF].
        user.nickname = user.nickname.take().or_else(|| user.username.clone());
    }
    user
}

fn same_email(user: &User, email: Option<&str>) -> bool {
    match (user.email.as_deref(), email) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => false,
    }
}

fn same_text(value: Option<&str>, other: Option<&str>) -> bool {
    matches!((value, other), (Some(a), Some(b)) if a == b)
}

/// `POST /api/v2/users` on a validated body (§2.5).
pub fn create_user(tenant: &Tenant, profile: &Map<String, Value>) -> Result<Value, MgmtError> {
    let connection = profile
        .get("connection")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut data = tenant.data();
    if data.connection_by_name(connection).is_none() {
        // [DOC] message; `inexistent_connection` [INF].
        return Err(MgmtError::bad_request(
            "inexistent_connection",
            "Connection does not exist.",
        ));
    }
    // A database user needs an email and a password; Auth0's validator reports them as missing
    // properties [INF].
    let email = profile.get("email").and_then(Value::as_str);
    if email.is_none() {
        return Err(MgmtError::invalid_body("Missing required property: email"));
    }
    let Some(password) = profile.get("password").and_then(Value::as_str) else {
        return Err(MgmtError::invalid_body(
            "Missing required property: password",
        ));
    };
    let mut user = new_user(connection, profile);
    user.password = Some(password.to_string());
    let username = user.username.as_deref();
    if data.user(&user.user_id).is_some()
        || data.users().any(|u| {
            u.connection == connection
                && (same_email(u, email) || same_text(u.username.as_deref(), username))
        })
    {
        return Err(MgmtError::user_exists());
    }
    let json = user.to_json();
    data.insert_user(user);
    Ok(json)
}

/// `PATCH /api/v2/users/{id}` on a validated patch (§2.7).
pub fn update_user(
    tenant: &Tenant,
    id: &str,
    patch: &Map<String, Value>,
) -> Result<Value, MgmtError> {
    let mut data = tenant.data();
    let user = data.user(id).ok_or_else(MgmtError::inexistent_user)?;
    let connection = user.connection.clone();
    let new_email = patch.get("email").and_then(Value::as_str);
    let email_changed = new_email.is_some_and(|e| !same_email(user, Some(e)));
    if let Some(email) = new_email
        && email_changed
        && data
            .users()
            .any(|u| u.user_id != id && u.connection == connection && same_email(u, Some(email)))
    {
        // Text seen in Auth0 clients' code [OBS]; status and code [INF].
        return Err(MgmtError::bad_request(
            "invalid_body",
            "The specified new email already exists",
        ));
    }
    let new_username = patch.get("username").and_then(Value::as_str);
    if let Some(username) = new_username
        && data.users().any(|u| {
            u.user_id != id
                && u.connection == connection
                && same_text(u.username.as_deref(), Some(username))
        })
    {
        // [INF]: the username is taken in this connection.
        return Err(MgmtError::bad_request(
            "invalid_body",
            "The specified new username already exists",
        ));
    }
    let user = data.user_mut(id).ok_or_else(MgmtError::inexistent_user)?;
    let mut json = match user.to_json() {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    apply_patch(&mut json, patch);
    if email_changed && !patch.contains_key("email_verified") {
        // A changed email is unverified unless the patch says otherwise [INF].
        json.insert("email_verified".into(), Value::Bool(false));
    }
    write_profile(user, &json);
    let now = state::now();
    if let Some(password) = patch.get("password").and_then(Value::as_str) {
        user.password = Some(password.to_string());
        user.last_password_reset = Some(now);
    }
    user.updated_at = now;
    Ok(user.to_json())
}

/// Deletes the user, if any, and ends its refresh-token families.
pub fn delete_user(tenant: &Tenant, id: &str) {
    let removed = tenant.data().remove_user(id);
    if removed.is_some() {
        tenant.revoke_user_grants(id, "the user was deleted");
    }
}

/// The name of the connection `id`, if the tenant has it.
pub fn connection_name(tenant: &Tenant, id: &str) -> Option<String> {
    tenant.data().connection_by_id(id).map(|c| c.name.clone())
}

/// Finishes due import jobs against the tenant's users (lock order: the job store, then the
/// tenant's data).
pub fn run_due_jobs(tenant: &Tenant, now: Instant) {
    let settings = job_settings(tenant);
    jobs(tenant).advance(now, &settings, &mut |users, connection, upsert| {
        let mut data = tenant.data();
        jobs::import(users, connection, upsert, &mut Directory(&mut data))
    });
}

/// Finishes the next due job at its time even when nobody asks, so imported users reach logins and
/// searches on time.
pub fn wake_when_due(tenant: &Tenant) {
    let Some(due) = jobs(tenant).next_due() else {
        return;
    };
    let tenant = tenant.clone();
    actix_web::rt::spawn(async move {
        actix_web::rt::time::sleep_until(due.into()).await;
        run_due_jobs(&tenant, Instant::now());
        wake_when_due(&tenant);
    });
}

/// The tenant's users as an import sees them.
struct Directory<'a>(&'a mut TenantData);

impl UserDirectory for Directory<'_> {
    fn find(&self, connection: &str, entry: &Map<String, Value>) -> Option<Existing> {
        let in_connection = || self.0.users().filter(|u| u.connection == connection);
        let email = entry.get("email").and_then(Value::as_str);
        if let Some(u) = in_connection().find(|u| same_email(u, email)) {
            return Some(Existing::Email(u.user_id.clone()));
        }
        let username = entry.get("username").and_then(Value::as_str);
        if let Some(u) = in_connection().find(|u| same_text(u.username.as_deref(), username)) {
            return Some(Existing::Username(u.user_id.clone()));
        }
        let phone = entry.get("phone_number").and_then(Value::as_str);
        if let Some(u) = in_connection().find(|u| same_text(u.phone_number.as_deref(), phone)) {
            return Some(Existing::Phone(u.user_id.clone()));
        }
        let id = text(entry, "user_id").map(|id| format!("auth0|{id}"));
        id.and_then(|id| self.0.user(&id))
            .map(|u| Existing::UserId(u.user_id.clone()))
    }

    fn insert(&mut self, connection: &str, entry: &Map<String, Value>) -> Result<(), UserError> {
        let mut user = new_user(connection, entry);
        // Hashes and MFA factors are kept, not rendered; the emulator cannot check a hash, so an
        // imported user logs in with a password only once one is set [INF].
        for key in ["password_hash", "custom_password_hash", "mfa_factors"] {
            if let Some(value) = entry.get(key) {
                user.extra.insert(key.to_string(), value.clone());
            }
        }
        self.0.insert_user(user);
        Ok(())
    }

    fn update(&mut self, user_id: &str, fields: &Map<String, Value>) {
        let Some(user) = self.0.user_mut(user_id) else {
            return;
        };
        let mut json = match user.to_json() {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        for (key, value) in fields {
            if key == "custom_password_hash" {
                user.extra.insert(key.clone(), value.clone());
            } else {
                json.insert(key.clone(), value.clone());
            }
        }
        write_profile(user, &json);
        user.updated_at = state::now();
    }
}
