//! Example plugin `groups-to-permissions` (SPEC §9): adds a `permissions` claim to `/userinfo`,
//! the union of the permissions of the user's `groups`, sorted and deduplicated (an empty list
//! when no group grants any), so a gateway checks permissions rather than group names.
//!
//! Config: `{"permissions": {"admin": ["users:read", "users:write"]}}`.

use std::collections::{BTreeSet, HashMap};

use auth0_client_plugin_api::{Claims, CustomClaimsInput, CustomClaimsOutput, Plugin, PluginError};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Group → the permissions it grants.
    permissions: HashMap<String, Vec<String>>,
}

pub struct GroupsToPermissions {
    permissions: HashMap<String, Vec<String>>,
}

impl Plugin for GroupsToPermissions {
    type Config = Config;

    fn new(config: Config) -> Result<Self, PluginError> {
        Ok(Self {
            permissions: config.permissions,
        })
    }

    fn custom_claims(&self, input: CustomClaimsInput) -> Result<CustomClaimsOutput, PluginError> {
        let granted: BTreeSet<&str> = input
            .claims
            .get("groups")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter_map(|group| self.permissions.get(group))
            .flatten()
            .map(String::as_str)
            .collect();
        let mut claims = Claims::new();
        claims.insert(
            "permissions".into(),
            Value::from(granted.into_iter().collect::<Vec<_>>()),
        );
        Ok(CustomClaimsOutput { claims })
    }
}

auth0_client_plugin_api::export_plugin!(GroupsToPermissions, hooks: [custom_claims]);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use auth0_client_plugin_api::testing::InProcess;
    use serde_json::json;

    use super::*;

    fn permissions(groups: Value) -> Value {
        let plugin = InProcess::new(
            &AUTH0_CLIENT_PLUGIN,
            json!({"permissions": {
                "admin": ["users:write", "users:read"],
                "support": ["users:read", "tickets:read"]
            }}),
        )
        .unwrap();
        let out = plugin
            .custom_claims(&CustomClaimsInput {
                client: "web".into(),
                sub: "auth0|1".into(),
                claims: json!({"sub": "auth0|1", "groups": groups})
                    .as_object()
                    .unwrap()
                    .clone(),
            })
            .unwrap();
        Value::Object(out.claims)
    }

    #[test]
    fn the_union_over_the_groups_sorted_and_deduplicated() {
        assert_eq!(
            permissions(json!(["support", "admin", "nobody"])),
            json!({"permissions": ["tickets:read", "users:read", "users:write"]})
        );
    }

    #[test]
    fn no_granting_group_is_an_empty_list() {
        assert_eq!(permissions(json!([])), json!({"permissions": []}));
        assert_eq!(permissions(json!("admin")), json!({"permissions": []}));
    }
}
