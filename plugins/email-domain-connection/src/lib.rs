//! Example plugin `email-domain-connection` (SPEC §9): picks the login's connection from the
//! username's e-mail domain, so partners log in against their own connection without the login
//! page naming it.
//!
//! Config: `{"domains": {"partner.example": "Partners"}}` (domains compared without regard to
//! case). Asked only on the password grant's logins that name no connection; on `/authorize`
//! (no username yet) and for other domains it answers `null`, and the client's
//! `defaultConnection` applies.

use std::collections::HashMap;

use auth0_client_plugin_api::{MapConnectionInput, MapConnectionOutput, Plugin, PluginError};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// E-mail domain → connection name.
    domains: HashMap<String, String>,
}

pub struct EmailDomainConnection {
    domains: HashMap<String, String>,
}

impl Plugin for EmailDomainConnection {
    type Config = Config;

    fn new(config: Config) -> Result<Self, PluginError> {
        let mut domains = HashMap::new();
        for (domain, connection) in config.domains {
            if connection.is_empty() {
                return Err(format!("domains.{domain}: the connection name is empty").into());
            }
            domains.insert(domain.trim().to_ascii_lowercase(), connection);
        }
        Ok(Self { domains })
    }

    fn map_connection(
        &self,
        input: MapConnectionInput,
    ) -> Result<MapConnectionOutput, PluginError> {
        let connection = input
            .username
            .as_deref()
            .and_then(|username| username.rsplit_once('@'))
            .and_then(|(_, domain)| self.domains.get(&domain.trim().to_ascii_lowercase()))
            .cloned();
        Ok(MapConnectionOutput { connection })
    }
}

auth0_client_plugin_api::export_plugin!(EmailDomainConnection, hooks: [map_connection]);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use auth0_client_plugin_api::LoginFlow;
    use auth0_client_plugin_api::testing::InProcess;
    use serde_json::json;

    use super::*;

    fn ask(username: Option<&str>) -> MapConnectionInput {
        MapConnectionInput {
            client: "web".into(),
            flow: LoginFlow::Password,
            username: username.map(str::to_owned),
            supported_connections: vec![],
            default_connection: None,
        }
    }

    fn plugin() -> InProcess {
        InProcess::new(
            &AUTH0_CLIENT_PLUGIN,
            json!({"domains": {"Partner.example": "Partners"}}),
        )
        .unwrap()
    }

    #[test]
    fn a_listed_domain_picks_its_connection() {
        let answer = plugin()
            .map_connection(&ask(Some("Ann@PARTNER.example")))
            .unwrap();
        assert_eq!(answer.connection.as_deref(), Some("Partners"));
    }

    #[test]
    fn other_domains_and_authorize_leave_it_to_the_default() {
        let plugin = plugin();
        assert_eq!(
            plugin
                .map_connection(&ask(Some("bob@else.example")))
                .unwrap()
                .connection,
            None
        );
        assert_eq!(
            plugin
                .map_connection(&ask(Some("no-at-sign")))
                .unwrap()
                .connection,
            None
        );
        assert_eq!(plugin.map_connection(&ask(None)).unwrap().connection, None);
    }

    #[test]
    fn a_config_without_domains_is_refused() {
        let err = InProcess::new(&AUTH0_CLIENT_PLUGIN, json!({})).unwrap_err();
        assert!(err.to_string().contains("missing field `domains`"), "{err}");
    }
}
