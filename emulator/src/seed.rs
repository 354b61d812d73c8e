//! The seed: the tenant's initial clients, APIs, connections and users, in SPEC §10's JSON format.
//!
//! ```json
//! {"clients": [{"clientId", "clientSecret", "grants"?: [...], "refreshTokenRotation"?: true,
//!               "callbacks"?: [...], "logoutUrls"?: [...], "idTokenAlg"?: "RS256"|"HS256",
//!               "backchannelLogoutUrls"?: [...]}],
//!  "apis"?: [{"identifier"}], "connections": [{"name", "id"}], "defaultDirectory"?: "<connection name>",
//!  "users": [{"email", "password", "connection", "user_id"?, "username"?, "nickname"?, "blocked"?,
//!             "app_metadata"?, "user_metadata"?}],
//!  "customClaimsNamespace"?: "https://...", "jobSeconds"?: 2}
//! ```
//!
//! Choices where SPEC §10 is silent (documented in the README):
//! - Unknown keys are an error, so a typo in a test seed does not pass silently.
//! - An empty or absent `clientSecret` makes a public client (no client authentication).
//! - `idTokenAlg` (the application's "JSON Web Token Signature Algorithm") defaults to `RS256`, the
//!   tenant's key; `HS256` signs the client's ID tokens with its `clientSecret` (so it needs one).
//! - `refreshTokenRotation` defaults to `false` (Auth0's default for a new regular web application).
//! - A seed `user_id` without a `|` gets the `auth0|` prefix, as Auth0 does for database users.
//! - `defaultDirectory: null` (or `""`) with connections present still means "the first connection"; a seed
//!   with no connection has no default directory, so the plain `password` grant answers Auth0's 500.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Seed {
    #[serde(default)]
    pub clients: Vec<SeedClient>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apis: Vec<SeedApi>,
    #[serde(default)]
    pub connections: Vec<SeedConnection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_directory: Option<String>,
    #[serde(default)]
    pub users: Vec<SeedUser>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_claims_namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_seconds: Option<f64>,
    /// Every JWT access token gets a random `jti`, so two issued within one second differ (Auth0's
    /// carry none, and RS256 is deterministic): for tests that count one alias per refresh.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unique_access_tokens: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedClient {
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// Auth0 grant type names (`authorization_code`, `password`, `http://auth0.com/oauth/grant-type/password-realm`,
    /// `refresh_token`, `client_credentials`, ...); absent means all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grants: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_rotation: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub callbacks: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logout_urls: Vec<String>,
    /// `RS256` (default) or `HS256`: how this client's ID tokens are signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_alg: Option<String>,
    /// Where a logout token is POSTed when an Auth0 session this client took part in ends
    /// (`crate::backchannel`; Auth0's "Back-Channel Logout URI").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backchannel_logout_urls: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedApi {
    pub identifier: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedConnection {
    pub name: String,
    pub id: String,
}

/// A seed user (snake_case keys, like Auth0's user object).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedUser {
    pub email: String,
    pub password: String,
    pub connection: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_metadata: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_metadata: Option<Map<String, Value>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("cannot read the seed file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the seed file {path} is not a valid seed: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("invalid seed: {0}")]
    Invalid(String),
}

impl From<SeedError> for std::io::Error {
    fn from(error: SeedError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidData, error.to_string())
    }
}

/// Demo tenant values, also used by `auth0-client demo` and the README's examples.
pub mod demo {
    pub const LOGIN_CLIENT_ID: &str = "demo-login-client";
    pub const LOGIN_CLIENT_SECRET: &str = "demo-login-secret";
    pub const MANAGEMENT_CLIENT_ID: &str = "demo-management-client";
    pub const MANAGEMENT_CLIENT_SECRET: &str = "demo-management-secret";
    pub const CONNECTION: &str = "Username-Password-Authentication";
    pub const CONNECTION_ID: &str = "con_DemoConnection01";
    pub const API: &str = "https://api.demo.example/";
    pub const NAMESPACE: &str = "https://demo.example/";
    pub const USER_EMAIL: &str = "demo@example.com";
    pub const USER_PASSWORD: &str = "demo-password";
    pub const USER_ID: &str = "auth0|64b0c0ffee0000000000d001";
    pub const ADMIN_EMAIL: &str = "admin@example.com";
    pub const ADMIN_PASSWORD: &str = "admin-password";
    pub const ADMIN_ID: &str = "auth0|64b0c0ffee0000000000ad01";
}

impl Seed {
    /// The tenant used when no seed is given: a login client (every grant, rotation on), a management client
    /// (client credentials only), one database connection, an API, a user and an admin in group `admin`.
    pub fn demo() -> Self {
        let metadata = |groups: &[&str]| {
            let mut map = Map::new();
            map.insert("groups".into(), Value::from(groups.to_vec()));
            map
        };
        Self {
            clients: vec![
                SeedClient {
                    client_id: demo::LOGIN_CLIENT_ID.into(),
                    client_secret: Some(demo::LOGIN_CLIENT_SECRET.into()),
                    grants: None,
                    refresh_token_rotation: Some(true),
                    callbacks: Vec::new(),
                    logout_urls: Vec::new(),
                    id_token_alg: None,
                    backchannel_logout_urls: Vec::new(),
                },
                SeedClient {
                    client_id: demo::MANAGEMENT_CLIENT_ID.into(),
                    client_secret: Some(demo::MANAGEMENT_CLIENT_SECRET.into()),
                    grants: Some(vec!["client_credentials".into()]),
                    ..SeedClient::default()
                },
            ],
            apis: vec![SeedApi {
                identifier: demo::API.into(),
            }],
            connections: vec![SeedConnection {
                name: demo::CONNECTION.into(),
                id: demo::CONNECTION_ID.into(),
            }],
            default_directory: Some(demo::CONNECTION.into()),
            users: vec![
                SeedUser {
                    email: demo::USER_EMAIL.into(),
                    password: demo::USER_PASSWORD.into(),
                    connection: demo::CONNECTION.into(),
                    user_id: Some(demo::USER_ID.into()),
                    username: Some("demo".into()),
                    nickname: Some("demo".into()),
                    blocked: None,
                    app_metadata: Some(metadata(&["users"])),
                    user_metadata: None,
                },
                SeedUser {
                    email: demo::ADMIN_EMAIL.into(),
                    password: demo::ADMIN_PASSWORD.into(),
                    connection: demo::CONNECTION.into(),
                    user_id: Some(demo::ADMIN_ID.into()),
                    username: Some("admin".into()),
                    nickname: Some("admin".into()),
                    blocked: None,
                    app_metadata: Some(metadata(&["admin"])),
                    user_metadata: None,
                },
            ],
            custom_claims_namespace: Some(demo::NAMESPACE.into()),
            job_seconds: None,
            unique_access_tokens: false,
        }
    }

    /// Reads and checks a seed file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, SeedError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| SeedError::Read {
            path: shown.clone(),
            source,
        })?;
        let seed: Self = serde_json::from_str(&text).map_err(|source| SeedError::Parse {
            path: shown,
            source,
        })?;
        seed.validate()?;
        Ok(seed)
    }

    /// Parses and checks a seed from JSON text.
    pub fn from_json(text: &str) -> Result<Self, SeedError> {
        let seed: Self = serde_json::from_str(text).map_err(|source| SeedError::Parse {
            path: "<inline>".into(),
            source,
        })?;
        seed.validate()?;
        Ok(seed)
    }

    /// Checks the references inside the seed: connection names, unique ids, the default directory.
    pub fn validate(&self) -> Result<(), SeedError> {
        let mut client_ids = std::collections::HashSet::new();
        for client in &self.clients {
            if client.client_id.is_empty() {
                return Err(SeedError::Invalid("a client has an empty clientId".into()));
            }
            if !client_ids.insert(client.client_id.as_str()) {
                return Err(SeedError::Invalid(format!(
                    "clientId {} appears twice",
                    client.client_id
                )));
            }
            match client.id_token_alg.as_deref() {
                None | Some("RS256") => {}
                Some("HS256")
                    if client
                        .client_secret
                        .as_deref()
                        .is_some_and(|s| !s.is_empty()) => {}
                Some("HS256") => {
                    return Err(SeedError::Invalid(format!(
                        "client {} has idTokenAlg HS256 but no clientSecret to sign with",
                        client.client_id
                    )));
                }
                Some(other) => {
                    return Err(SeedError::Invalid(format!(
                        "client {} has idTokenAlg {other}; expected RS256 or HS256",
                        client.client_id
                    )));
                }
            }
        }
        let mut names = std::collections::HashSet::new();
        for connection in &self.connections {
            if connection.name.is_empty() || connection.id.is_empty() {
                return Err(SeedError::Invalid(
                    "a connection needs a name and an id".into(),
                ));
            }
            if !names.insert(connection.name.as_str()) {
                return Err(SeedError::Invalid(format!(
                    "connection {} appears twice",
                    connection.name
                )));
            }
        }
        if let Some(directory) = self.default_directory.as_deref().filter(|d| !d.is_empty())
            && !names.contains(directory)
        {
            return Err(SeedError::Invalid(format!(
                "defaultDirectory {directory} is not a connection"
            )));
        }
        if let Some(seconds) = self.job_seconds
            && !(seconds.is_finite() && seconds >= 0.0)
        {
            return Err(SeedError::Invalid(
                "jobSeconds must be a non-negative number".into(),
            ));
        }
        for user in &self.users {
            if !names.contains(user.connection.as_str()) {
                return Err(SeedError::Invalid(format!(
                    "user {} names connection {}, which the seed does not list",
                    user.email, user.connection
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_is_valid_and_round_trips() {
        let seed = Seed::demo();
        seed.validate().expect("demo seed is valid");
        let text = serde_json::to_string(&seed).expect("serializes");
        assert_eq!(Seed::from_json(&text).expect("parses"), seed);
    }

    #[test]
    fn spec_example_parses() {
        let seed = Seed::from_json(
            r#"{"clients": [{"clientId": "c", "clientSecret": "s", "grants": ["password"],
                "refreshTokenRotation": true, "callbacks": ["http://app/cb"], "logoutUrls": ["http://app/"]}],
                "apis": [{"identifier": "https://api/"}], "connections": [{"name": "db", "id": "con_0123456789abcdef"}],
                "defaultDirectory": "db",
                "users": [{"email": "a@b.c", "password": "p", "connection": "db", "user_id": "u1", "username": "a",
                           "nickname": "n", "blocked": false, "app_metadata": {"groups": ["g"]}, "user_metadata": {}}],
                "customClaimsNamespace": "https://ns/", "jobSeconds": 0.5}"#,
        )
        .expect("parses");
        assert_eq!(seed.clients[0].callbacks, ["http://app/cb"]);
        assert_eq!(seed.job_seconds, Some(0.5));
    }

    #[test]
    fn typos_and_dangling_references_are_errors() {
        assert!(Seed::from_json(r#"{"client": []}"#).is_err());
        assert!(Seed::from_json(r#"{"connections": [], "users": [{"email": "a", "password": "p", "connection": "x"}]}"#).is_err());
        assert!(
            Seed::from_json(
                r#"{"connections": [{"name": "a", "id": "b"}], "defaultDirectory": "z"}"#
            )
            .is_err()
        );
    }
}
