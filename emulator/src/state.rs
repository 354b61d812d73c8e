//! The tenant: everything one emulator instance knows, shared by every worker.
//!
//! # For the Management API and jobs modules
//!
//! Handlers get the tenant with `tenant: web::Data<Tenant>` (registered on the `App` before
//! `crate::management::configure` runs). What they can use:
//! - [`Tenant::data`]: a guard over [`TenantData`] (users, connections, clients, settings). It is a
//!   `std::sync::Mutex`: take it, do the work, drop it; never hold it across an `.await`.
//!   [`TenantData::insert_user`], [`TenantData::remove_user`], [`TenantData::user`], [`TenantData::user_mut`],
//!   [`TenantData::users`], [`TenantData::connection_by_name`], [`TenantData::connection_by_id`] and
//!   [`TenantData::find_user`] cover the usual needs; the maps are public for the rest.
//! - [`Tenant::check_management_token`] on the `Authorization` header value, then
//!   [`TokenInfo::require_any_scope`]; both errors render Auth0's bodies with [`ManagementError::response`].
//! - [`User`]: [`User::new`] (Auth0's defaults for `name`, `nickname`, `picture`, a fresh `auth0|<24 hex>` id),
//!   [`User::to_json`] (Auth0's user object), [`User::identities`]. Setting `blocked` or deleting a user is
//!   all the Authentication API needs to refuse logins and refreshes: it reads users at each request.
//! - [`Settings::job_seconds`] (`data().settings.job_seconds`): how long an import job takes; the control API
//!   changes it at run time.
//! - [`Tenant::extension`]: a per-tenant slot for state the management modules own (say a `JobStore` with its
//!   own mutex inside), created on first use with `Default` and dropped when the tenant is re-seeded.
//! - [`new_id`], [`timestamp`], [`now`]: ids and Auth0-style timestamps.
//!
//! Rate limiting, faults and the request log are applied by the middleware in `crate::observe` to every
//! route, including `/api/v2/*`: handlers need do nothing for them. The middleware adds the
//! `X-RateLimit-Limit`, `-Remaining` and `-Reset` headers to every response that does not already carry them.

use std::{
    any::{Any, TypeId},
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard},
};

use actix_web::{HttpResponse, http::StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use time::{OffsetDateTime, format_description::BorrowedFormatItem, macros::format_description};

use crate::{
    jwt,
    keys::{KeyRing, SigningKey},
    observe::Observer,
    seed::{Seed, SeedError, SeedUser},
};

/// Scopes of a Management API token when the client asks for none: every scope the emulated routes check.
pub const MANAGEMENT_SCOPES: &[&str] = &[
    "read:users",
    "update:users",
    "delete:users",
    "delete:sessions",
    "create:users",
    "read:users_app_metadata",
    "update:users_app_metadata",
    "delete:users_app_metadata",
    "create:users_app_metadata",
    "read:user_idp_tokens",
    "read:connections",
    "read:clients",
];

/// Lifetimes and speeds the control API can change at run time (`PATCH /__emulator/settings`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// Access tokens issued to users (Auth0 default 86400, wire reference §1.3).
    pub access_token_seconds: u64,
    /// ID tokens (Auth0 default 36000, §1.8).
    pub id_token_seconds: u64,
    /// Management API tokens (Auth0 default 86400, §2.1).
    pub management_token_seconds: u64,
    /// Absolute lifetime of a refresh-token family: it does not extend on rotation (default 2592000, §1.4).
    pub refresh_token_seconds: u64,
    /// Rotation overlap period: the previous rotated token may be reused this long (default 0 = disabled, §1.4).
    pub refresh_token_leeway_seconds: u64,
    /// Authorization codes (not documented by Auth0; 600 s here, [INF]).
    pub authorization_code_seconds: u64,
    /// How long an import job takes from creation to completion (seed `jobSeconds`, default 2).
    pub job_seconds: f64,
    /// How long after its creation a job is forgotten (then 404), as Auth0 forgets jobs after 24 h
    /// (default 86400, wire reference §3.2).
    pub job_retention_seconds: f64,
    /// Import jobs that finish while this is on fail as a whole, importing nobody (an emulator fault).
    pub fail_jobs: bool,
    /// Seed `uniqueAccessTokens`: a random `jti` in every JWT access token.
    pub unique_access_tokens: bool,
    /// `X-RateLimit-Limit` announced on every response outside the 429 mode.
    pub rate_limit_limit: u64,
    /// Entries kept in the request log (oldest dropped first).
    pub request_log_capacity: usize,
    /// Consecutive failed logins of one user from one IP before brute-force protection answers 429
    /// `too_many_attempts` (Auth0's default 10; 0 disables). `DELETE /__emulator/brute-force` unblocks.
    pub brute_force_threshold: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            access_token_seconds: 86_400,
            id_token_seconds: 36_000,
            management_token_seconds: 86_400,
            refresh_token_seconds: 2_592_000,
            refresh_token_leeway_seconds: 0,
            authorization_code_seconds: 600,
            job_seconds: 2.0,
            job_retention_seconds: 86_400.0,
            fail_jobs: false,
            unique_access_tokens: false,
            rate_limit_limit: 50,
            request_log_capacity: 10_000,
            brute_force_threshold: 10,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    pub client_id: String,
    /// `None`: a public client (no client authentication).
    pub client_secret: Option<String>,
    /// `None`: every grant.
    pub grants: Option<Vec<String>>,
    pub refresh_token_rotation: bool,
    pub callbacks: Vec<String>,
    pub logout_urls: Vec<String>,
    /// `Some(secret)`: ID tokens are HS256 with this secret (the seed's `idTokenAlg: HS256`);
    /// `None`: RS256 with the tenant's key.
    pub id_token_hs256_secret: Option<String>,
    /// Where logout tokens go when an Auth0 session the client took part in ends (`crate::backchannel`).
    pub backchannel_logout_urls: Vec<String>,
}

impl Client {
    /// Whether the client may use `grant` (an Auth0 grant type name). Listing `password` also allows the
    /// `password-realm` extension grant: the Dashboard's single "Password" switch governs both ([INF]).
    pub fn allows_grant(&self, grant: &str) -> bool {
        match &self.grants {
            None => true,
            Some(grants) => grants.iter().any(|allowed| {
                allowed == grant
                    || (allowed == "password"
                        && grant == crate::authentication::PASSWORD_REALM_GRANT)
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub name: String,
    /// `con_` + 16 alphanumerics on a real tenant; whatever the seed says here.
    pub id: String,
}

/// A user of a database connection.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// `auth0|<id>`: the `sub` of the user's tokens.
    pub user_id: String,
    /// Connection name.
    pub connection: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub username: Option<String>,
    pub name: Option<String>,
    pub nickname: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub picture: Option<String>,
    pub phone_number: Option<String>,
    pub phone_verified: Option<bool>,
    /// Clear-text password; `None` when the user cannot log in with a password (an import with a hash).
    pub password: Option<String>,
    pub blocked: bool,
    pub app_metadata: Map<String, Value>,
    pub user_metadata: Map<String, Value>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub last_password_reset: Option<OffsetDateTime>,
    pub last_login: Option<OffsetDateTime>,
    pub last_ip: Option<String>,
    pub logins_count: u64,
    /// Other root attributes (an import's `password_hash`, say) kept verbatim; never rendered by `to_json`
    /// unless the owner puts them in `rendered_extra`.
    pub extra: Map<String, Value>,
    /// Extra root attributes rendered in the user object as they are.
    pub rendered_extra: Map<String, Value>,
}

impl User {
    /// A new user with a fresh `auth0|<24 hex>` id and Auth0's defaults: `name` = email, `nickname` = the
    /// email's local part, `picture` = a Gravatar URL, timestamps now.
    pub fn new(connection: &str, email: Option<String>) -> Self {
        let now = now();
        let mut user = Self {
            user_id: format!("auth0|{}", hex_id()),
            connection: connection.to_string(),
            email,
            email_verified: false,
            username: None,
            name: None,
            nickname: None,
            given_name: None,
            family_name: None,
            picture: None,
            phone_number: None,
            phone_verified: None,
            password: None,
            blocked: false,
            app_metadata: Map::new(),
            user_metadata: Map::new(),
            created_at: now,
            updated_at: now,
            last_password_reset: None,
            last_login: None,
            last_ip: None,
            logins_count: 0,
            extra: Map::new(),
            rendered_extra: Map::new(),
        };
        user.fill_defaults();
        user
    }

    fn from_seed(seed: &SeedUser) -> Self {
        let mut user = Self::new(&seed.connection, Some(seed.email.clone()));
        if let Some(id) = seed.user_id.as_deref().filter(|id| !id.is_empty()) {
            user.user_id = if id.contains('|') {
                id.to_string()
            } else {
                format!("auth0|{id}")
            };
        }
        user.password = Some(seed.password.clone());
        user.username = seed.username.clone();
        if let Some(nickname) = &seed.nickname {
            user.nickname = Some(nickname.clone());
        }
        user.blocked = seed.blocked.unwrap_or(false);
        user.app_metadata = seed.app_metadata.clone().unwrap_or_default();
        user.user_metadata = seed.user_metadata.clone().unwrap_or_default();
        // Seeded users are the tenant's existing, verified users.
        user.email_verified = true;
        user
    }

    /// Fills `name`, `nickname` and `picture` from the email when they are unset (wire reference §2.5 [OBS]).
    pub fn fill_defaults(&mut self) {
        let Some(email) = self.email.clone() else {
            return;
        };
        if self.name.is_none() {
            self.name = Some(email.clone());
        }
        if self.nickname.is_none() {
            self.nickname = Some(email.split('@').next().unwrap_or_default().to_string());
        }
        if self.picture.is_none() {
            self.picture = Some(gravatar(&email));
        }
    }

    /// The id inside the connection: `user_id` without its `auth0|` prefix.
    pub fn local_id(&self) -> &str {
        self.user_id
            .split_once('|')
            .map_or(self.user_id.as_str(), |(_, id)| id)
    }

    /// `[{"connection", "user_id", "provider": "auth0", "isSocial": false}]`.
    pub fn identities(&self) -> Value {
        json!([{"connection": self.connection, "user_id": self.local_id(), "provider": "auth0", "isSocial": false}])
    }

    /// Auth0's user object (wire reference §2.5): keys sorted like the recordings, no password, absent
    /// values left out, `app_metadata`/`user_metadata` only when non-empty.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        let mut put = |key: &str, value: Value| {
            object.insert(key.to_string(), value);
        };
        put("blocked", Value::Bool(self.blocked));
        put("created_at", Value::String(timestamp(self.created_at)));
        put("updated_at", Value::String(timestamp(self.updated_at)));
        put("user_id", Value::String(self.user_id.clone()));
        put("identities", self.identities());
        put("email_verified", Value::Bool(self.email_verified));
        let optional = [
            ("email", &self.email),
            ("username", &self.username),
            ("name", &self.name),
            ("nickname", &self.nickname),
            ("given_name", &self.given_name),
            ("family_name", &self.family_name),
            ("picture", &self.picture),
            ("phone_number", &self.phone_number),
            ("last_ip", &self.last_ip),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                put(key, Value::String(value.clone()));
            }
        }
        if let Some(verified) = self.phone_verified {
            put("phone_verified", Value::Bool(verified));
        }
        if let Some(at) = self.last_password_reset {
            put("last_password_reset", Value::String(timestamp(at)));
        }
        if let Some(at) = self.last_login {
            put("last_login", Value::String(timestamp(at)));
            put("logins_count", Value::from(self.logins_count));
        }
        if !self.app_metadata.is_empty() {
            put("app_metadata", Value::Object(self.app_metadata.clone()));
        }
        if !self.user_metadata.is_empty() {
            put("user_metadata", Value::Object(self.user_metadata.clone()));
        }
        for (key, value) in &self.rendered_extra {
            put(key, value.clone());
        }
        Value::Object(object)
    }
}

/// Auth0 uses the MD5 Gravatar hash; Gravatar also accepts SHA-256, which this crate already has ([INF]).
fn gravatar(email: &str) -> String {
    let digest = Sha256::digest(email.trim().to_lowercase().as_bytes());
    let hash: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    let initials: String = email
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(2)
        .collect::<String>()
        .to_lowercase();
    format!(
        "https://s.gravatar.com/avatar/{hash}?s=480&r=pg&d=https%3A%2F%2Fcdn.auth0.com%2Favatars%2F{initials}.png"
    )
}

/// A password-reset email the tenant "sent" (`POST /dbconnections/change_password` for an existing user).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SentEmail {
    pub kind: String,
    pub email: String,
    pub connection: String,
    pub client_id: String,
    pub user_id: String,
    pub sent_at: String,
}

/// The tenant's configuration and users (behind [`Tenant::data`]).
#[derive(Debug)]
pub struct TenantData {
    pub clients: Vec<Client>,
    /// API identifiers from the seed (the Management API's is implicit: [`Tenant::management_audience`]).
    pub apis: Vec<String>,
    pub connections: Vec<Connection>,
    /// Connection name used by the plain `password` grant.
    pub default_directory: Option<String>,
    /// Users by `user_id`.
    pub users: BTreeMap<String, User>,
    pub custom_claims_namespace: Option<String>,
    pub settings: Settings,
    pub emails: Vec<SentEmail>,
}

impl TenantData {
    fn from_seed(seed: &Seed, settings: Settings) -> Self {
        let connections: Vec<Connection> = seed
            .connections
            .iter()
            .map(|c| Connection {
                name: c.name.clone(),
                id: c.id.clone(),
            })
            .collect();
        let default_directory = seed
            .default_directory
            .clone()
            .filter(|d| !d.is_empty())
            .or_else(|| connections.first().map(|c| c.name.clone()));
        let mut settings = settings;
        if let Some(seconds) = seed.job_seconds {
            settings.job_seconds = seconds;
        }
        settings.unique_access_tokens |= seed.unique_access_tokens;
        let mut data = Self {
            clients: seed
                .clients
                .iter()
                .map(|c| Client {
                    client_id: c.client_id.clone(),
                    client_secret: c.client_secret.clone().filter(|s| !s.is_empty()),
                    grants: c.grants.clone(),
                    refresh_token_rotation: c.refresh_token_rotation.unwrap_or(false),
                    callbacks: c.callbacks.clone(),
                    logout_urls: c.logout_urls.clone(),
                    id_token_hs256_secret: (c.id_token_alg.as_deref() == Some("HS256"))
                        .then(|| c.client_secret.clone())
                        .flatten(),
                    backchannel_logout_urls: c.backchannel_logout_urls.clone(),
                })
                .collect(),
            apis: seed.apis.iter().map(|a| a.identifier.clone()).collect(),
            connections,
            default_directory,
            users: BTreeMap::new(),
            custom_claims_namespace: seed
                .custom_claims_namespace
                .clone()
                .filter(|ns| !ns.is_empty()),
            settings,
            emails: Vec::new(),
        };
        for user in &seed.users {
            data.insert_user(User::from_seed(user));
        }
        data
    }

    pub fn client(&self, client_id: &str) -> Option<&Client> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }

    pub fn connection_by_name(&self, name: &str) -> Option<&Connection> {
        self.connections.iter().find(|c| c.name == name)
    }

    pub fn connection_by_id(&self, id: &str) -> Option<&Connection> {
        self.connections.iter().find(|c| c.id == id)
    }

    pub fn user(&self, user_id: &str) -> Option<&User> {
        self.users.get(user_id)
    }

    pub fn user_mut(&mut self, user_id: &str) -> Option<&mut User> {
        self.users.get_mut(user_id)
    }

    /// Inserts or replaces the user with this `user_id`.
    pub fn insert_user(&mut self, user: User) {
        self.users.insert(user.user_id.clone(), user);
    }

    pub fn remove_user(&mut self, user_id: &str) -> Option<User> {
        self.users.remove(user_id)
    }

    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }

    /// The user of `connection` whose email (case-insensitive) or username (case-insensitive) is `login`.
    pub fn find_user(&self, connection: &str, login: &str) -> Option<&User> {
        let login = login.trim();
        self.users.values().find(|user| {
            user.connection == connection
                && (user
                    .email
                    .as_deref()
                    .is_some_and(|email| email.eq_ignore_ascii_case(login))
                    || user
                        .username
                        .as_deref()
                        .is_some_and(|name| name.eq_ignore_ascii_case(login)))
        })
    }

    /// A user of any connection, by `user_id`, the id without its `auth0|` prefix, email or username (for
    /// the control API and tests).
    pub fn find_user_anywhere(&self, key: &str) -> Option<&User> {
        self.users.get(key).or_else(|| {
            self.users.values().find(|u| {
                u.local_id() == key
                    || u.email
                        .as_deref()
                        .is_some_and(|e| e.eq_ignore_ascii_case(key))
                    || u.username
                        .as_deref()
                        .is_some_and(|n| n.eq_ignore_ascii_case(key))
            })
        })
    }
}

/// A verified Management API access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// `azp`: the client the token was issued to.
    pub client_id: String,
    /// `sub`: `<client_id>@clients`.
    pub subject: String,
    pub scopes: Vec<String>,
    /// `exp` (epoch seconds).
    pub expires_at: i64,
}

impl TokenInfo {
    /// `Ok` when the token carries any of `expected`; else Auth0's 403 `insufficient_scope` (wire reference §2.2).
    pub fn require_any_scope(&self, expected: &[&str]) -> Result<(), ManagementError> {
        if expected
            .iter()
            .any(|scope| self.scopes.iter().any(|s| s == scope))
        {
            Ok(())
        } else {
            Err(ManagementError::InsufficientScope(
                expected.iter().map(|s| s.to_string()).collect(),
            ))
        }
    }
}

/// Why a Management API request is refused before its handler runs; [`ManagementError::response`] renders
/// Auth0's body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManagementError {
    /// No `Authorization: Bearer` header. Body `Missing authentication` is [INF] (wire reference §2.2).
    #[error("Missing authentication")]
    MissingAuthentication,
    /// Not a token of this tenant for the Management API audience ([OBS] §2.2).
    #[error("Invalid token")]
    InvalidToken,
    /// Past its `exp` ([OBS] message, [INF] shape, §2.2).
    #[error("Expired token received for JSON Web Token validation")]
    ExpiredToken,
    /// None of the expected scopes ([OBS] §2.2).
    #[error("Insufficient scope, expected any of: {}", .0.join(","))]
    InsufficientScope(Vec<String>),
}

impl ManagementError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InsufficientScope(_) => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// Auth0's JSON body for this refusal.
    pub fn body(&self) -> Value {
        let message = self.to_string();
        match self {
            Self::MissingAuthentication => {
                json!({"statusCode": 401, "error": "Unauthorized", "message": message})
            }
            Self::InvalidToken | Self::ExpiredToken => json!({
                "statusCode": 401, "error": "Unauthorized", "message": message, "attributes": {"error": message}
            }),
            Self::InsufficientScope(_) => json!({
                "statusCode": 403, "error": "Forbidden", "message": message, "errorCode": "insufficient_scope"
            }),
        }
    }

    pub fn response(&self) -> HttpResponse {
        HttpResponse::build(self.status())
            .content_type("application/json; charset=utf-8")
            .body(self.body().to_string())
    }
}

/// What an opaque access token (issued without an `audience`) stands for.
#[derive(Debug, Clone)]
pub(crate) struct OpaqueToken {
    pub user_id: String,
    pub scope: String,
    pub expires_at: i64,
}

/// An authorization code waiting to be exchanged.
#[derive(Debug, Clone)]
pub(crate) struct AuthorizationCode {
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: Option<String>,
    pub scope: String,
    pub audience: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<(String, String)>,
    pub session_id: String,
    pub expires_at: i64,
}

/// A chain of refresh tokens from one login; rotation replaces `current`, reuse of a rotated one revokes all.
#[derive(Debug, Clone)]
pub(crate) struct RefreshFamily {
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
    pub audience: Option<String>,
    pub session_id: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub current: String,
    /// The token `current` replaced and when, for the rotation overlap period.
    pub previous: Option<(String, i64)>,
    pub tokens: Vec<String>,
    /// `None` while usable; else why it ended (`revoked`, `reuse detected`, `user deleted`...).
    pub ended: Option<String>,
}

/// The login form's pending `/authorize` request.
#[derive(Debug, Clone)]
pub(crate) struct LoginTransaction {
    pub request: crate::authentication::authorize::AuthorizeRequest,
    pub expires_at: i64,
}

/// Short-lived grants: codes, refresh tokens, opaque access tokens, SSO sessions, login transactions.
#[derive(Debug, Default)]
pub(crate) struct Grants {
    pub codes: HashMap<String, AuthorizationCode>,
    /// refresh token → family id.
    pub refresh_tokens: HashMap<String, String>,
    pub families: HashMap<String, RefreshFamily>,
    pub opaque: HashMap<String, OpaqueToken>,
    /// SSO cookie value → (user id, `sid` claim).
    pub sessions: HashMap<String, (String, String)>,
    pub transactions: HashMap<String, LoginTransaction>,
    /// Failed logins by (user id, IP), for brute-force protection.
    pub failures: HashMap<(String, String), u32>,
    /// Users whose next correct password is answered with a challenge (`mfa_required`, `password_leaked`).
    pub login_challenges: HashMap<String, String>,
    inserts: u64,
}

impl Grants {
    /// Drops expired entries every so often, so a long benchmark does not grow memory without bound.
    pub fn maybe_sweep(&mut self, now: i64) {
        self.inserts += 1;
        if !self.inserts.is_multiple_of(1024) {
            return;
        }
        self.codes.retain(|_, code| code.expires_at > now);
        self.opaque.retain(|_, token| token.expires_at > now);
        self.transactions.retain(|_, txn| txn.expires_at > now);
        let ended: Vec<String> = self
            .families
            .iter()
            .filter(|(_, family)| family.expires_at <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ended {
            if let Some(family) = self.families.remove(&id) {
                for token in family.tokens {
                    self.refresh_tokens.remove(&token);
                }
            }
        }
    }

    /// Ends a family: none of its tokens works any more.
    pub fn end_family(&mut self, family_id: &str, why: &str) {
        if let Some(family) = self.families.get_mut(family_id)
            && family.ended.is_none()
        {
            family.ended = Some(why.to_string());
        }
    }
}

/// The epoch second and the tokens signed in it, by (kid, serialized claims).
type SignCache = (i64, HashMap<(String, String), String>);

/// Bound on the tokens one second's cache holds.
const SIGN_CACHE_ENTRIES: usize = 4096;

/// One emulator instance's state.
pub struct Tenant {
    base_url: String,
    keys: RwLock<KeyRing>,
    data: Mutex<TenantData>,
    pub(crate) grants: Mutex<Grants>,
    pub(crate) observer: Observer,
    /// Tokens signed during the current second, by (kid, claims): see [`Tenant::sign`].
    sign_cache: Mutex<SignCache>,
    extensions: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl std::fmt::Debug for Tenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenant")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Tenant {
    /// A tenant at `base_url` (`http://127.0.0.1:PORT`, no trailing slash) with one signing key.
    pub fn new(base_url: &str, seed: &Seed) -> Result<Self, SeedError> {
        seed.validate()?;
        let settings = Settings::default();
        let capacity = settings.request_log_capacity;
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_string(),
            keys: RwLock::new(KeyRing::new()),
            data: Mutex::new(TenantData::from_seed(seed, settings)),
            grants: Mutex::new(Grants::default()),
            observer: Observer::new(capacity),
            sign_cache: Mutex::new((0, HashMap::new())),
            extensions: Mutex::new(HashMap::new()),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `<base>/`: the `iss` of every token (the trailing slash matters, wire reference §5).
    pub fn issuer(&self) -> String {
        format!("{}/", self.base_url)
    }

    /// `<base>/api/v2/`: the Management API identifier, which always exists.
    pub fn management_audience(&self) -> String {
        format!("{}/api/v2/", self.base_url)
    }

    /// `<base>/userinfo`: the second audience of access tokens issued with `openid`.
    pub fn userinfo_audience(&self) -> String {
        format!("{}/userinfo", self.base_url)
    }

    /// The tenant's configuration and users. Never hold the guard across an `.await`.
    pub fn data(&self) -> MutexGuard<'_, TenantData> {
        self.data.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn grants(&self) -> MutexGuard<'_, Grants> {
        self.grants.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn keys(&self) -> RwLockReadGuard<'_, KeyRing> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn keys_mut(&self) -> RwLockWriteGuard<'_, KeyRing> {
        self.keys.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The key signing new tokens.
    pub fn signing_key(&self) -> Arc<SigningKey> {
        self.keys().current()
    }

    /// The published JWKS document.
    pub fn jwks(&self) -> Value {
        json!({"keys": self.keys().published().iter().map(|k| k.jwk().clone()).collect::<Vec<_>>()})
    }

    /// Makes a new key current and returns its kid (see [`KeyRing::rotate`]).
    pub fn rotate_signing_key(&self, keep_previous: bool) -> String {
        self.keys_mut().rotate(keep_previous).kid().to_string()
    }

    /// Signs claims with the current key.
    ///
    /// RS256 (PKCS#1 v1.5) is deterministic: the same claims and key always give the same token. Claims carry
    /// `iat` in seconds, so a benchmark logging one user in many times a second asks for the same token over
    /// and over; those are answered from a cache of the current second's tokens instead of signing again
    /// (a 2048-bit signature costs about a millisecond), which changes no answer.
    pub fn sign(&self, claims: &Value) -> String {
        let key = self.signing_key();
        let payload = claims.to_string();
        let second = epoch();
        {
            let mut cache = self
                .sign_cache
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if cache.0 != second {
                *cache = (second, HashMap::new());
            }
            if let Some(token) = cache.1.get(&(key.kid().to_string(), payload.clone())) {
                return token.clone();
            }
        }
        let token = jwt::sign_payload(&key, &payload);
        let mut cache = self
            .sign_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if cache.0 == second && cache.1.len() < SIGN_CACHE_ENTRIES {
            cache
                .1
                .insert((key.kid().to_string(), payload), token.clone());
        }
        token
    }

    /// Verifies a token this tenant signed (any published key) and returns its claims, without time checks.
    pub fn verify(&self, token: &str) -> Result<Map<String, Value>, jwt::JwtError> {
        jwt::verify(&self.keys(), token)
    }

    /// Checks an `Authorization` header value (or a bare token) for the Management API: an RS256 token of this
    /// tenant, audience [`Tenant::management_audience`], unexpired. Scopes are checked by the caller with
    /// [`TokenInfo::require_any_scope`].
    pub fn check_management_token(
        &self,
        authorization: Option<&str>,
    ) -> Result<TokenInfo, ManagementError> {
        let header = authorization.map(str::trim).filter(|h| !h.is_empty());
        let header = header.ok_or(ManagementError::MissingAuthentication)?;
        let token = match header.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            Some(_) => return Err(ManagementError::MissingAuthentication),
            None => header,
        };
        let claims = self
            .verify(token)
            .map_err(|_| ManagementError::InvalidToken)?;
        let audience = self.management_audience();
        let audience_matches = match claims.get("aud") {
            Some(Value::String(aud)) => *aud == audience,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(audience.as_str())),
            _ => false,
        };
        if !audience_matches
            || claims.get("iss").and_then(Value::as_str) != Some(self.issuer().as_str())
        {
            return Err(ManagementError::InvalidToken);
        }
        let expires_at = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or(ManagementError::InvalidToken)?;
        if expires_at <= epoch() {
            return Err(ManagementError::ExpiredToken);
        }
        let text = |key: &str| {
            claims
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Ok(TokenInfo {
            client_id: text("azp"),
            subject: text("sub"),
            scopes: text("scope")
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            expires_at,
        })
    }

    /// A Management API token for `client_id` (the same token `client_credentials` issues), for tests.
    pub fn issue_management_token(&self, client_id: &str, scopes: &[&str]) -> String {
        let seconds = self.data().settings.management_token_seconds;
        let now = epoch();
        self.sign(&json!({
            "iss": self.issuer(),
            "sub": format!("{client_id}@clients"),
            "aud": self.management_audience(),
            "iat": now,
            "exp": now + seconds as i64,
            "scope": scopes.join(" "),
            "gty": "client-credentials",
            "azp": client_id,
        }))
    }

    /// Per-tenant state owned by another module, created with `Default` on first use.
    pub fn extension<T: Any + Send + Sync + Default>(&self) -> Arc<T> {
        let mut extensions = self
            .extensions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = extensions
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(T::default()));
        match Arc::clone(entry).downcast::<T>() {
            Ok(value) => value,
            // The map is keyed by the type id, so the downcast cannot fail; recover anyway.
            Err(_) => {
                let value = Arc::new(T::default());
                *entry = Arc::clone(&value) as Arc<dyn Any + Send + Sync>;
                value
            }
        }
    }

    /// Replaces clients, APIs, connections and users with `seed`'s, ending every grant and extension state;
    /// keys, settings (but `jobSeconds` when the seed sets it), faults and the request log are kept.
    pub fn reseed(&self, seed: &Seed) -> Result<(), SeedError> {
        seed.validate()?;
        let settings = self.data().settings.clone();
        *self.data() = TenantData::from_seed(seed, settings);
        *self.grants() = Grants::default();
        self.extensions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        Ok(())
    }

    /// Adds (or replaces, by `user_id`) a user given in the seed format; returns its `user_id`.
    pub fn add_seed_user(&self, user: &SeedUser) -> Result<String, SeedError> {
        let mut data = self.data();
        if data.connection_by_name(&user.connection).is_none() {
            return Err(SeedError::Invalid(format!(
                "connection {} does not exist",
                user.connection
            )));
        }
        let user = User::from_seed(user);
        let id = user.user_id.clone();
        data.insert_user(user);
        Ok(id)
    }

    /// Ends every refresh-token family of a user (after a delete, say).
    pub fn revoke_user_grants(&self, user_id: &str, why: &str) {
        let mut grants = self.grants();
        let ids: Vec<String> = grants
            .families
            .iter()
            .filter(|(_, f)| f.user_id == user_id)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            grants.end_family(&id, why);
        }
    }

    /// Gives the keys back to the process pool (called when the server has stopped).
    pub(crate) fn release_keys(&self) {
        let ring = std::mem::replace(&mut *self.keys_mut(), KeyRing::empty());
        crate::keys::give_back(ring.into_all());
    }
}

static TIMESTAMP: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// Auth0's timestamp format: ISO-8601 UTC with milliseconds, `2023-01-25T17:48:19.103Z`.
pub fn timestamp(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(TIMESTAMP)
        .unwrap_or_default()
}

/// The current time (UTC).
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// The current time in epoch seconds.
pub fn epoch() -> i64 {
    now().unix_timestamp()
}

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `prefix` + `len` random alphanumerics: `new_id("job_", 16)` gives Auth0's job id shape.
pub fn new_id(prefix: &str, len: usize) -> String {
    let mut id = String::with_capacity(prefix.len() + len);
    id.push_str(prefix);
    for _ in 0..len {
        let index = usize::from(rand::random::<u8>()) % ALPHANUMERIC.len();
        id.push(char::from(ALPHANUMERIC[index]));
    }
    id
}

/// 24 lowercase hex characters, like the Mongo ObjectId inside Auth0 database user ids.
pub fn hex_id() -> String {
    rand::random::<[u8; 12]>()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A random url-safe token of `bytes` random bytes.
pub fn random_token(bytes: usize) -> String {
    use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
    let mut buffer = vec![0u8; bytes];
    rand::fill(&mut buffer[..]);
    URL_SAFE_NO_PAD.encode(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> Tenant {
        Tenant::new("http://127.0.0.1:1", &Seed::demo()).expect("demo seed")
    }

    #[test]
    fn management_token_checks() {
        let tenant = tenant();
        let token = tenant.issue_management_token("m2m", &["read:users"]);
        let info = tenant
            .check_management_token(Some(&format!("Bearer {token}")))
            .expect("valid");
        assert_eq!(info.client_id, "m2m");
        assert_eq!(info.subject, "m2m@clients");
        assert!(
            info.require_any_scope(&["read:users", "read:user_idp_tokens"])
                .is_ok()
        );
        let refused = info
            .require_any_scope(&["create:users"])
            .expect_err("scope missing");
        assert_eq!(
            refused.body()["message"],
            "Insufficient scope, expected any of: create:users"
        );
        assert_eq!(
            tenant.check_management_token(None),
            Err(ManagementError::MissingAuthentication)
        );
        assert_eq!(
            tenant.check_management_token(Some("Bearer nope")),
            Err(ManagementError::InvalidToken)
        );
        let user_token = tenant
            .sign(&json!({"iss": tenant.issuer(), "aud": "https://other/", "exp": epoch() + 60}));
        assert_eq!(
            tenant.check_management_token(Some(&user_token)),
            Err(ManagementError::InvalidToken)
        );
        tenant.data().settings.management_token_seconds = 0;
        let expired = tenant.issue_management_token("m2m", &["read:users"]);
        assert_eq!(
            tenant.check_management_token(Some(&expired)),
            Err(ManagementError::ExpiredToken)
        );
        tenant.release_keys();
    }

    #[test]
    fn user_object_shape() {
        let tenant = tenant();
        let data = tenant.data();
        let user = data
            .find_user(crate::seed::demo::CONNECTION, "DEMO@example.com")
            .expect("seeded");
        let json = user.to_json();
        assert_eq!(json["user_id"], crate::seed::demo::USER_ID);
        assert_eq!(json["identities"][0]["user_id"], "64b0c0ffee0000000000d001");
        assert_eq!(json["nickname"], "demo");
        assert!(json.get("password").is_none());
        assert_eq!(json["created_at"].as_str().map(str::len), Some(24));
        drop(data);
        tenant.release_keys();
    }

    #[test]
    fn signing_the_same_claims_twice_gives_the_same_verifiable_token() {
        let tenant = tenant();
        let claims = json!({"iss": tenant.issuer(), "sub": "auth0|1", "iat": epoch()});
        let first = tenant.sign(&claims);
        assert_eq!(tenant.sign(&claims), first);
        assert_eq!(
            jwt::sign(&tenant.signing_key(), &claims),
            first,
            "the cache answers what signing would"
        );
        assert!(tenant.verify(&first).is_ok());
        tenant.rotate_signing_key(true);
        assert_ne!(tenant.sign(&claims), first, "a new key signs anew");
        tenant.release_keys();
    }

    #[test]
    fn ids() {
        assert_eq!(new_id("job_", 16).len(), 20);
        assert_eq!(hex_id().len(), 24);
        assert!(random_token(32).len() >= 42);
    }

    #[derive(Default)]
    struct Counter(std::sync::atomic::AtomicU32);

    #[test]
    fn extensions_are_per_tenant_and_cleared_by_reseed() {
        let tenant = tenant();
        tenant
            .extension::<Counter>()
            .0
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(
            tenant
                .extension::<Counter>()
                .0
                .load(std::sync::atomic::Ordering::SeqCst),
            1
        );
        tenant.reseed(&Seed::demo()).expect("reseed");
        assert_eq!(
            tenant
                .extension::<Counter>()
                .0
                .load(std::sync::atomic::Ordering::SeqCst),
            0
        );
        tenant.release_keys();
    }
}
