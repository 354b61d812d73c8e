//! Login rules: what a login decides before Auth0 is called, shared by the password grant
//! (`POST /oauth/token`) and the browser login (`GET /authorize`), so that neither route file
//! holds a rule the other needs; [`state`] holds the login states of the code flow. Nothing here
//! knows HTTP: a refusal is a [`LoginError`], which `http/error.rs` turns into the answer of
//! SPEC §4.

pub mod state;

pub use auth0_client_plugin_api::LoginFlow;
use auth0_client_plugin_api::MapConnectionInput;
use auth0_client_plugin_api::host::Hook;

use crate::actors::plugins::{PluginFailure, Plugins};
use crate::config::ClientSettings;

/// Why a login is refused before Auth0 is asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// The request named a connection outside the client's non-empty `supportedConnections`
    /// (quoted and cut in the message: it is the caller's value).
    #[error("connection {} is not supported by this client", crate::echo::Quoted(.0))]
    UnsupportedConnection(String),
    /// A `fail-closed` plugin's `map_connection` failed (502).
    #[error(transparent)]
    Plugin(#[from] PluginFailure),
}

/// The connection of a login with the plugins' `map_connection` (SPEC §9) in its place: asked
/// only when the request names no connection, in config order, the first non-null answer wins
/// (one outside a non-empty `supportedConnections` is that plugin's failure, see
/// [`Plugins::map_connection`]); without an answer, [`resolve_connection`]'s default rules.
/// `username` is `None` on `/authorize`, where the user types it at Auth0.
pub async fn choose_connection(
    plugins: &Plugins,
    client_name: &str,
    client: &ClientSettings,
    requested: Option<&str>,
    flow: LoginFlow,
    username: Option<&str>,
) -> Result<Option<String>, LoginError> {
    if requested.is_none() && plugins.has(Hook::MapConnection) {
        let input = MapConnectionInput {
            client: client_name.to_owned(),
            flow,
            username: username.map(str::to_owned),
            supported_connections: client.supported_connections.clone(),
            default_connection: client.default_connection.clone(),
        };
        if let Some(connection) = plugins.map_connection(&input).await? {
            return Ok(Some(connection));
        }
    }
    resolve_connection(client, requested)
}

/// The connection of a login (SPEC §5), for the password grant and `/authorize` alike: the
/// request's (which must be in `supportedConnections` when that list is non-empty), else the
/// client's `defaultConnection`, else its single supported connection, else none.
///
/// The plugins' `map_connection` hook (SPEC §9) comes before this, in [`choose_connection`]:
/// asked only when the request names no connection, between the request's connection and
/// `defaultConnection`; its answer must be in a non-empty `supportedConnections` like a
/// request's.
pub fn resolve_connection(
    client: &ClientSettings,
    requested: Option<&str>,
) -> Result<Option<String>, LoginError> {
    if let Some(connection) = requested {
        if !client.supported_connections.is_empty()
            && !client.supported_connections.iter().any(|c| c == connection)
        {
            return Err(LoginError::UnsupportedConnection(connection.to_owned()));
        }
        return Ok(Some(connection.to_owned()));
    }
    if let Some(default) = &client.default_connection {
        return Ok(Some(default.clone()));
    }
    match client.supported_connections.as_slice() {
        [only] => Ok(Some(only.clone())),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn client(supported: &[&str], default: Option<&str>) -> ClientSettings {
        ClientSettings {
            supported_connections: supported.iter().map(|&c| c.to_owned()).collect(),
            default_connection: default.map(str::to_owned),
            ..ClientSettings::for_tests(
                "https://tenant.example/",
                "client",
                "secret",
                &["offline_access"],
            )
        }
    }

    #[test]
    fn the_requests_connection_wins_when_supported() {
        let client = client(&["A", "B"], Some("B"));
        assert_eq!(resolve_connection(&client, Some("A")), Ok(Some("A".into())));
    }

    #[test]
    fn an_unsupported_connection_is_refused() {
        let client = client(&["A", "B"], Some("B"));
        assert_eq!(
            resolve_connection(&client, Some("C")),
            Err(LoginError::UnsupportedConnection("C".into()))
        );
        assert_eq!(
            LoginError::UnsupportedConnection("C".into()).to_string(),
            "connection \"C\" is not supported by this client"
        );
    }

    #[test]
    fn any_connection_goes_when_none_is_listed() {
        let client = client(&[], None);
        assert_eq!(
            resolve_connection(&client, Some("Anything")),
            Ok(Some("Anything".into()))
        );
    }

    #[test]
    fn without_one_the_default_then_the_single_supported_then_none() {
        assert_eq!(
            resolve_connection(&client(&["A", "B"], Some("B")), None),
            Ok(Some("B".into()))
        );
        assert_eq!(
            resolve_connection(&client(&[], Some("D")), None),
            Ok(Some("D".into()))
        );
        assert_eq!(
            resolve_connection(&client(&["A"], None), None),
            Ok(Some("A".into()))
        );
        assert_eq!(
            resolve_connection(&client(&["A", "B"], None), None),
            Ok(None)
        );
        assert_eq!(resolve_connection(&client(&[], None), None), Ok(None));
    }
}
