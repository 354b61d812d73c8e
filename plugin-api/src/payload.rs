//! The hook payloads: what the host sends (`…Input`, `…Event`) and what a plugin answers
//! (`…Output`), as JSON. Every type ignores fields it does not know, so a host may add fields
//! within one ABI version without breaking plugins built before; an enum value a plugin does not
//! know arrives as its `Other` variant.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A JSON object: the claims of `custom_claims` and `on_tokens`.
pub type Claims = Map<String, Value>;

/// Which login asks `map_connection`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoginFlow {
    /// `POST /oauth/token` with `grant_type=password`: the username is known.
    Password,
    /// `GET /authorize`: the user types the username at Auth0, so it is `null`.
    Authorize,
    /// A flow added by a later host.
    #[serde(other)]
    Other,
}

/// `map_connection`'s input: asked only when the request names no connection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MapConnectionInput {
    /// The client type (the key of `clients` in the config).
    pub client: String,
    pub flow: LoginFlow,
    /// The login's username; `null` on `/authorize`.
    #[serde(default)]
    pub username: Option<String>,
    /// The client's `supportedConnections` (empty: any connection).
    #[serde(default)]
    pub supported_connections: Vec<String>,
    /// The client's `defaultConnection`, used when no plugin answers.
    #[serde(default)]
    pub default_connection: Option<String>,
}

/// `map_connection`'s answer: `null` lets the next plugin (then the client's default) decide.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MapConnectionOutput {
    #[serde(default)]
    pub connection: Option<String>,
}

/// `custom_claims`' input: the `/userinfo` body so far (the earlier plugins' claims included).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomClaimsInput {
    pub client: String,
    pub sub: String,
    #[serde(default)]
    pub claims: Claims,
}

/// `custom_claims`' answer: claims merged into the `/userinfo` body, each replacing the claim of
/// its name; a `null` value removes the claim. `sub` may be repeated but not changed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomClaimsOutput {
    #[serde(default)]
    pub claims: Claims,
}

/// Why `on_tokens` fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokensKind {
    /// A login (password grant or code exchange) opened a session.
    Login,
    /// Auth0 issued new tokens for a session.
    Refresh,
    #[serde(other)]
    Other,
}

/// `on_tokens`: an event, after the session is stored. It carries no token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokensEvent {
    pub client: String,
    pub sub: String,
    /// The verified ID-token claims.
    #[serde(default)]
    pub claims: Claims,
    pub kind: TokensKind,
}

/// `on_job_finished`: an event, when a bulk import job reaches a final status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobFinishedEvent {
    pub job_id: String,
    /// `completed` or `failed`.
    pub status: String,
    /// Auth0's summary (`{"inserted": n, "updated": n, "failed": n, "total": n}`), `null` if none.
    #[serde(default)]
    pub summary: Value,
    #[serde(default)]
    pub connection: Option<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn unknown_fields_and_values_are_tolerated() {
        let input: MapConnectionInput = serde_json::from_value(json!({
            "client": "web", "flow": "passwordless", "username": null, "extra": 1
        }))
        .unwrap();
        assert_eq!(input.flow, LoginFlow::Other);
        assert!(input.supported_connections.is_empty());
        let event: TokensEvent = serde_json::from_value(json!({
            "client": "web", "sub": "s", "kind": "login", "claims": {}, "ip": "x"
        }))
        .unwrap();
        assert_eq!(event.kind, TokensKind::Login);
        let out: MapConnectionOutput = serde_json::from_value(json!({})).unwrap();
        assert_eq!(out.connection, None);
    }

    #[test]
    fn the_wire_names_are_camel_case() {
        let input = MapConnectionInput {
            client: "web".into(),
            flow: LoginFlow::Authorize,
            username: None,
            supported_connections: vec!["A".into()],
            default_connection: Some("A".into()),
        };
        assert_eq!(
            serde_json::to_value(&input).unwrap(),
            json!({"client": "web", "flow": "authorize", "username": null,
                   "supportedConnections": ["A"], "defaultConnection": "A"})
        );
        let job = JobFinishedEvent {
            job_id: "job_1".into(),
            status: "completed".into(),
            summary: json!({"inserted": 1}),
            connection: None,
        };
        assert_eq!(serde_json::to_value(&job).unwrap()["jobId"], "job_1");
    }
}
