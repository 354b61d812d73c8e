//! The shape of the config document (every known key), and what is done with it before the document
//! is deserialised: empty values dropped, `REDIS_*` written in, `AUTH0_CLIENT__<path>` overrides
//! applied, and the origin of each overridden value remembered for error messages.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::env::{self, Env};
use super::error::ConfigError;

/// The prefix of the generic overrides.
pub(crate) const OVERRIDE_PREFIX: &str = "AUTH0_CLIENT__";

/// What a key holds. Leaf kinds say how an override's text becomes a value.
#[derive(Debug)]
pub(crate) enum Shape {
    /// A string: the override's text as is (a JSON string literal is unquoted, `null` unsets).
    Str,
    /// A list of strings: a JSON array, else comma-separated text.
    StrList,
    /// A number or a boolean: JSON when the text parses as JSON, else the text as a string.
    Scalar,
    /// Free-form JSON owned by someone else (a plugin's `config`): left as written.
    Free,
    /// An object with these known keys.
    Object(&'static [(&'static str, Shape)]),
    /// An object whose keys are names chosen by the operator (client types, connections).
    Map(&'static Shape),
    /// A list of entries.
    List(&'static Shape),
}

use Shape::{Free, List, Map as MapOf, Object, Scalar, Str, StrList};

const CLIENT: Shape = Object(&[
    ("auth0Url", Str),
    ("clientId", Str),
    ("clientSecret", Str),
    ("redirectUrl", Str),
    ("scopes", StrList),
    ("audience", Str),
    ("supportedSigningAlgs", StrList),
    ("supportedConnections", StrList),
    ("defaultConnection", Str),
    ("sameSite", Str),
    ("authorizeStateRequired", Scalar),
]);

const CONNECTION_REF: Shape = Object(&[("connectionId", Str)]);

const MANAGEMENT_CLIENT: Shape = Object(&[
    ("auth0Url", Str),
    ("clientId", Str),
    ("clientSecret", Str),
    ("supportedConnections", StrList),
    ("defaultCreateUserConnection", Str),
    ("supportedConnectionsMap", MapOf(&CONNECTION_REF)),
    ("defaultManagementConnectionName", Str),
]);

const SERVER: Shape = Object(&[
    ("bind", Str),
    ("managementBind", Str),
    ("trustedProxies", StrList),
    ("allowedHosts", StrList),
    ("insecureCookies", Scalar),
    ("bodyLimitBytes", Scalar),
    ("importBodyLimitBytes", Scalar),
    ("auth0TimeoutMs", Scalar),
    ("bodyTimeoutMs", Scalar),
    ("logFormat", Str),
]);

const API_KEY: Shape = Object(&[("key", Str), ("clientType", Str), ("management", Scalar)]);

const REDIS: Shape = Object(&[
    ("hosts", StrList),
    ("mode", Str),
    ("masterName", Str),
    ("username", Str),
    ("password", Str),
    ("tls", Scalar),
    ("tlsCaCert", Str),
]);

const SESSIONS: Shape = Object(&[
    ("store", Str),
    ("path", Str),
    ("redis", REDIS),
    ("refreshGraceSeconds", Scalar),
    ("timeoutMs", Scalar),
    ("stateTtlSeconds", Scalar),
    ("cacheBytes", Scalar),
    ("sledCacheBytes", Scalar),
    ("encryptionKeys", StrList),
    ("maxPendingLogins", Scalar),
    ("maxPendingLoginsPerIp", Scalar),
]);

const JOBS: Shape = Object(&[
    ("pollIntervalMs", Scalar),
    ("maxPollIntervalMs", Scalar),
    ("retentionDays", Scalar),
]);

const PLUGIN: Shape = Object(&[
    ("path", Str),
    ("sha256", Str),
    ("config", Free),
    ("timeoutMs", Scalar),
    ("onError", Str),
]);

/// Every key the config file may hold (SPEC §3).
pub(crate) const ROOT: Shape = Object(&[
    ("clients", MapOf(&CLIENT)),
    ("defaultClient", Str),
    ("customClaimsNamespaces", StrList),
    ("managementClient", MANAGEMENT_CLIENT),
    ("auth0TenantUrl", Str),
    ("server", SERVER),
    ("apiKeys", List(&API_KEY)),
    ("sessions", SESSIONS),
    ("jobs", JOBS),
    ("plugins", List(&PLUGIN)),
]);

/// Which environment variable set which key (dotted path), so errors can name it.
#[derive(Debug, Default)]
pub(crate) struct Provenance {
    by_key: BTreeMap<String, String>,
    /// Set when the document came from a file: "in <path>".
    file: Option<String>,
}

impl Provenance {
    pub(crate) fn new(file: Option<String>) -> Self {
        Self {
            by_key: BTreeMap::new(),
            file,
        }
    }

    fn record(&mut self, key: String, var: String) {
        self.by_key.insert(key, var);
    }

    /// Where the value at `key` came from: the variable that set it or one of its parents, else the
    /// file.
    pub(crate) fn origin(&self, key: &str) -> Option<String> {
        let mut candidate = key;
        loop {
            if let Some(var) = self.by_key.get(candidate) {
                return Some(format!("set by {var}"));
            }
            match candidate.rfind('.') {
                Some(dot) => candidate = &candidate[..dot],
                None => break,
            }
        }
        self.file.as_ref().map(|f| format!("in {f}"))
    }

    /// An `Invalid` error for `key`, with its origin.
    pub(crate) fn invalid(&self, key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        let key = key.into();
        ConfigError::Invalid {
            origin: self.origin(&key),
            key,
            reason: reason.into(),
        }
    }
}

/// Whether a value means "unset": `null` or the empty string (SPEC §3).
fn is_unset(value: &Value) -> bool {
    matches!(value, Value::Null) || matches!(value, Value::String(s) if s.is_empty())
}

/// Drops the known keys whose value is empty or `null`, at every level, so that they take their
/// default (or are reported missing). Unknown keys are kept, to be reported as unknown; list
/// entries are kept (their index is their name) except empty strings in lists of strings; free-form
/// values (a plugin's `config`) are left as written.
pub(crate) fn prune(value: &mut Value, shape: &Shape) {
    match (shape, value) {
        (Object(fields), Value::Object(members)) => {
            for (name, field_shape) in fields.iter() {
                if let Some(member) = members.get_mut(*name) {
                    if is_unset(member) {
                        members.remove(*name);
                    } else {
                        prune(member, field_shape);
                    }
                }
            }
        }
        (MapOf(inner), Value::Object(members)) => {
            members.retain(|_, member| !is_unset(member));
            for member in members.values_mut() {
                prune(member, inner);
            }
        }
        (List(inner), Value::Array(items)) => {
            for item in items.iter_mut() {
                prune(item, inner);
            }
        }
        (StrList, Value::Array(items)) => items.retain(|item| !is_unset(item)),
        _ => {}
    }
}

/// Writes the `REDIS_*` variables over `sessions.redis`, and `SESSION_ENCRYPTION_KEYS` over
/// `sessions.encryptionKeys` (the environment wins over the file).
pub(crate) fn apply_redis_env(
    doc: &mut Map<String, Value>,
    env: &Env,
    provenance: &mut Provenance,
) -> Result<(), ConfigError> {
    if let Some(keys) = env.get_list(env::SESSION_ENCRYPTION_KEYS) {
        object_entry(doc, "sessions").insert("encryptionKeys".to_owned(), keys);
        provenance.record(
            "sessions.encryptionKeys".to_owned(),
            env::SESSION_ENCRYPTION_KEYS.to_owned(),
        );
    }
    let values = env::redis_values(env)?;
    if values.is_empty() {
        return Ok(());
    }
    let sessions = object_entry(doc, "sessions");
    let redis = object_entry(sessions, "redis");
    for (field, var, value) in values {
        redis.insert(field.to_owned(), value);
        provenance.record(format!("sessions.redis.{field}"), var.to_owned());
    }
    Ok(())
}

/// The object at `key` in `members`, created (or replacing a non-object) when needed.
fn object_entry<'a>(members: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = members
        .entry(key.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(map) => map,
        _ => unreachable!("just made an object"),
    }
}

/// Applies every `AUTH0_CLIENT__<path>` variable, parents before children (so that
/// `AUTH0_CLIENT__SERVER__BIND` wins over a whole `AUTH0_CLIENT__SERVER` object), then by name.
///
/// Each `__`-separated segment is matched without regard to case (and to `_`, so
/// `MANAGEMENT_BIND` is `managementBind`) against the known keys at that level; in maps (clients,
/// `supportedConnectionsMap`, a plugin's `config`) against the existing keys without regard to
/// case, a segment matching none adding a key spelled as written; in lists (`apiKeys`, `plugins`)
/// it is the index of an existing entry. The value replaces what was there.
pub(crate) fn apply_overrides(
    doc: &mut Value,
    env: &Env,
    provenance: &mut Provenance,
) -> Result<(), ConfigError> {
    let mut overrides: Vec<(&str, Vec<&str>, &str)> = env
        .with_prefix(OVERRIDE_PREFIX)
        .map(|(var, value)| {
            (
                var,
                var[OVERRIDE_PREFIX.len()..].split("__").collect(),
                value,
            )
        })
        .collect();
    overrides.sort_by_key(|(var, segments, _)| (segments.len(), *var));
    for (var, segments, text) in overrides {
        apply_override(doc, var, &segments, text, provenance)?;
    }
    Ok(())
}

fn apply_override(
    doc: &mut Value,
    var: &str,
    segments: &[&str],
    text: &str,
    provenance: &mut Provenance,
) -> Result<(), ConfigError> {
    let fail = |reason: String| ConfigError::Override {
        var: var.to_owned(),
        reason,
    };
    if segments.iter().any(|s| s.is_empty()) {
        return Err(fail(format!(
            "its name must be {OVERRIDE_PREFIX}<key>[__<key>...] with non-empty keys, such as \
             AUTH0_CLIENT__SERVER__MANAGEMENTBIND"
        )));
    }
    let mut shape = &ROOT;
    let mut node = doc;
    let mut path: Vec<String> = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        let here = if path.is_empty() {
            "the top level".to_owned()
        } else {
            format!("`{}`", path.join("."))
        };
        let (key, child_shape): (String, &Shape) = match shape {
            Object(fields) => {
                let wanted = segment.replace('_', "");
                match fields
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(&wanted))
                {
                    Some((name, field_shape)) => ((*name).to_owned(), field_shape),
                    None => {
                        let known: Vec<&str> = fields.iter().map(|(name, _)| *name).collect();
                        return Err(fail(format!(
                            "`{segment}` is not a key of {here} (known keys: {})",
                            known.join(", ")
                        )));
                    }
                }
            }
            MapOf(inner) => {
                let key = map_key(node, segment).map_err(&fail)?;
                if node.as_object().is_none_or(|m| !m.contains_key(&key)) {
                    // A new entry: errors about its other (missing) keys name this variable.
                    let mut entry = path.clone();
                    entry.push(key.clone());
                    provenance.record(entry.join("."), var.to_owned());
                }
                (key, inner)
            }
            Free => (map_key(node, segment).map_err(&fail)?, &Free),
            List(inner) => {
                let len = node.as_array().map_or(0, Vec::len);
                match segment.parse::<usize>() {
                    Ok(index) if index < len => (index.to_string(), inner),
                    _ => {
                        return Err(fail(format!(
                            "`{segment}` is not an entry of {here}, which has {len}; an override can change \
                             an existing entry by its index (from 0) or replace the whole list with a JSON \
                             array ({OVERRIDE_PREFIX}{}='[...]')",
                            segments[..i].join("__")
                        )));
                    }
                }
            }
            Str | StrList | Scalar => {
                return Err(fail(format!("{here} holds a value, not keys")));
            }
        };
        path.push(key.clone());
        let last = i + 1 == segments.len();
        if let List(_) = shape {
            let items = node
                .as_array_mut()
                .ok_or_else(|| fail(format!("{here} is not a list")))?;
            let index: usize = key
                .parse()
                .map_err(|_| fail(format!("bad index `{key}`")))?;
            let item = items
                .get_mut(index)
                .ok_or_else(|| fail(format!("no entry {index} in {here}")))?;
            if last {
                set_value(item, text, child_shape);
                break;
            }
            node = item;
        } else {
            if !node.is_object() {
                *node = Value::Object(Map::new());
            }
            let Value::Object(members) = node else {
                unreachable!("just made an object");
            };
            if last {
                let mut value = Value::Null;
                set_value(&mut value, text, child_shape);
                if is_unset(&value) {
                    members.remove(&key);
                } else {
                    members.insert(key, value);
                }
                break;
            }
            node = members.entry(key).or_insert(Value::Null);
        }
        shape = child_shape;
    }
    provenance.record(path.join("."), var.to_owned());
    Ok(())
}

/// The existing key of the object `node` that `segment` names regardless of case (an exact match
/// first), else `segment` as written.
fn map_key(node: &Value, segment: &str) -> Result<String, String> {
    let Some(members) = node.as_object() else {
        return Ok(segment.to_owned());
    };
    if members.contains_key(segment) {
        return Ok(segment.to_owned());
    }
    let matches: Vec<&String> = members
        .keys()
        .filter(|k| k.eq_ignore_ascii_case(segment))
        .collect();
    match matches.as_slice() {
        [] => Ok(segment.to_owned()),
        [one] => Ok((*one).clone()),
        many => Err(format!(
            "`{segment}` matches several keys that differ only by case ({}); rename them in the file",
            many.iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Turns an override's text into a value of `shape` and stores it in `slot`.
fn set_value(slot: &mut Value, text: &str, shape: &Shape) {
    let mut value = match shape {
        Str => match serde_json::from_str::<Value>(text) {
            Ok(unquoted @ Value::String(_)) => unquoted,
            Ok(Value::Null) => Value::Null,
            _ => Value::String(text.to_owned()),
        },
        StrList => match serde_json::from_str::<Value>(text) {
            Ok(array @ Value::Array(_)) => array,
            _ => Value::Array(
                text.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::String(s.to_owned()))
                    .collect(),
            ),
        },
        _ => serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned())),
    };
    prune(&mut value, shape);
    *slot = value;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn overridden(doc: Value, pairs: &[(&str, &str)]) -> Result<(Value, Provenance), ConfigError> {
        let mut doc = doc;
        let mut provenance = Provenance::new(None);
        apply_overrides(
            &mut doc,
            &Env::from_pairs(pairs.iter().copied()),
            &mut provenance,
        )?;
        Ok((doc, provenance))
    }

    #[test]
    fn prune_drops_empty_known_keys_only() {
        let mut doc = json!({
            "defaultClient": "",
            "auth0TenantUrl": null,
            "clients": {"web": {"defaultConnection": "", "scopes": ["", "email"], "audiance": ""},
                        "gone": null},
            "plugins": [{"path": "p.so", "sha256": "", "config": {"keep": "", "n": null}}],
            "mystery": ""
        });
        prune(&mut doc, &ROOT);
        assert_eq!(
            doc,
            json!({
                "clients": {"web": {"scopes": ["email"], "audiance": ""}},
                "plugins": [{"path": "p.so", "config": {"keep": "", "n": null}}],
                "mystery": ""
            })
        );
    }

    #[test]
    fn segments_match_known_keys_regardless_of_case() {
        let (doc, provenance) = overridden(
            json!({"clients": {"web": {"clientSecret": "file"}}}),
            &[
                ("AUTH0_CLIENT__SERVER__MANAGEMENTBIND", "127.0.0.1:9090"),
                ("AUTH0_CLIENT__sessions__Path", "/var/lib/auth0-client"),
                ("AUTH0_CLIENT__JOBS__POLL_INTERVAL_MS", "500"),
                ("AUTH0_CLIENT__CLIENTS__WEB__CLIENTSECRET", "12345"),
                ("AUTH0_CLIENT__SERVER__INSECURECOOKIES", "true"),
            ],
        )
        .expect("applied");
        assert_eq!(doc["server"]["managementBind"], "127.0.0.1:9090");
        assert_eq!(doc["sessions"]["path"], "/var/lib/auth0-client");
        assert_eq!(doc["jobs"]["pollIntervalMs"], 500);
        // A string key stays a string even when it looks like a number.
        assert_eq!(doc["clients"]["web"]["clientSecret"], "12345");
        assert_eq!(doc["server"]["insecureCookies"], true);
        assert_eq!(
            provenance.origin("clients.web.clientSecret").as_deref(),
            Some("set by AUTH0_CLIENT__CLIENTS__WEB__CLIENTSECRET")
        );
    }

    #[test]
    fn map_keys_match_existing_ones_or_are_added() {
        let (doc, _) = overridden(
            json!({"clients": {"Web": {}}, "managementClient": {"supportedConnectionsMap": {"db": {}}}}),
            &[
                ("AUTH0_CLIENT__CLIENTS__WEB__SCOPES", "openid, email"),
                ("AUTH0_CLIENT__CLIENTS__mobile__CLIENTID", "m"),
                (
                    "AUTH0_CLIENT__MANAGEMENTCLIENT__SUPPORTEDCONNECTIONSMAP__DB__CONNECTIONID",
                    "con_1",
                ),
            ],
        )
        .expect("applied");
        assert_eq!(doc["clients"]["Web"]["scopes"], json!(["openid", "email"]));
        assert_eq!(doc["clients"]["mobile"]["clientId"], "m");
        assert_eq!(
            doc["managementClient"]["supportedConnectionsMap"]["db"]["connectionId"],
            "con_1"
        );
    }

    #[test]
    fn values_are_json_when_they_parse() {
        let (doc, _) = overridden(
            json!({}),
            &[
                ("AUTH0_CLIENT__SERVER", r#"{"bind": "::1"}"#),
                ("AUTH0_CLIENT__SERVER__TRUSTEDPROXIES", r#"["10.0.0.0/8"]"#),
                (
                    "AUTH0_CLIENT__CUSTOMCLAIMSNAMESPACES",
                    "https://a/app_metadata",
                ),
                ("AUTH0_CLIENT__DEFAULTCLIENT", "\"web\""),
                ("AUTH0_CLIENT__SESSIONS__STORE", "redis"),
            ],
        )
        .expect("applied");
        assert_eq!(
            doc,
            json!({
                "server": {"bind": "::1", "trustedProxies": ["10.0.0.0/8"]},
                "customClaimsNamespaces": ["https://a/app_metadata"],
                "defaultClient": "web",
                "sessions": {"store": "redis"}
            })
        );
    }

    #[test]
    fn list_entries_by_index() {
        let (doc, _) = overridden(
            json!({"plugins": [{"path": "a.so", "config": {"Domains": {}}}]}),
            &[
                ("AUTH0_CLIENT__PLUGINS__0__TIMEOUTMS", "250"),
                (
                    "AUTH0_CLIENT__PLUGINS__0__CONFIG__DOMAINS",
                    r#"{"x.example": "X"}"#,
                ),
            ],
        )
        .expect("applied");
        assert_eq!(doc["plugins"][0]["timeoutMs"], 250);
        assert_eq!(
            doc["plugins"][0]["config"]["Domains"],
            json!({"x.example": "X"})
        );

        let err = overridden(
            json!({"plugins": []}),
            &[("AUTH0_CLIENT__PLUGINS__0__PATH", "x")],
        )
        .expect_err("no entry");
        assert!(
            err.to_string().contains("AUTH0_CLIENT__PLUGINS__0__PATH"),
            "{err}"
        );
    }

    #[test]
    fn empty_json_values_unset_the_key() {
        let (doc, _) = overridden(
            json!({"defaultClient": "web", "server": {"bind": "::"}}),
            &[
                ("AUTH0_CLIENT__DEFAULTCLIENT", "\"\""),
                ("AUTH0_CLIENT__SERVER__BIND", "null"),
            ],
        )
        .expect("applied");
        assert_eq!(doc, json!({"server": {}}));
    }

    #[test]
    fn unknown_segments_are_errors_naming_the_variable() {
        for (var, needle) in [
            (
                "AUTH0_CLIENT__SERVER__BNID",
                "`BNID` is not a key of `server`",
            ),
            ("AUTH0_CLIENT__NOPE", "not a key of the top level"),
            ("AUTH0_CLIENT__SERVER__BIND__X", "holds a value"),
            ("AUTH0_CLIENT__", "non-empty keys"),
            ("AUTH0_CLIENT__SERVER____BIND", "non-empty keys"),
        ] {
            let err = overridden(json!({}), &[(var, "1")])
                .expect_err(var)
                .to_string();
            assert!(err.contains(var) && err.contains(needle), "{err}");
        }
        let err = overridden(
            json!({"clients": {"web": {}, "WEB": {}}}),
            &[("AUTH0_CLIENT__CLIENTS__Web__CLIENTID", "x")],
        )
        .expect_err("ambiguous")
        .to_string();
        assert!(err.contains("differ only by case"), "{err}");
    }

    #[test]
    fn parents_apply_before_children() {
        let (doc, _) = overridden(
            json!({}),
            &[
                ("AUTH0_CLIENT__JOBS__RETENTIONDAYS", "7"),
                (
                    "AUTH0_CLIENT__JOBS",
                    r#"{"retentionDays": 1, "pollIntervalMs": 10}"#,
                ),
            ],
        )
        .expect("applied");
        assert_eq!(
            doc["jobs"],
            json!({"retentionDays": 7, "pollIntervalMs": 10})
        );
    }

    #[test]
    fn redis_env_is_written_with_its_origin() {
        let mut doc = Map::new();
        let mut provenance = Provenance::new(Some("x.json".into()));
        apply_redis_env(
            &mut doc,
            &Env::from_pairs([("REDIS_HOSTS", "r1,r2:7000"), ("REDIS_MODE", "normal")]),
            &mut provenance,
        )
        .expect("applied");
        assert_eq!(
            Value::Object(doc),
            json!({"sessions": {"redis": {"hosts": ["r1", "r2:7000"], "mode": "normal"}}})
        );
        assert_eq!(
            provenance.origin("sessions.redis.hosts.1").as_deref(),
            Some("set by REDIS_HOSTS")
        );
        assert_eq!(
            provenance.origin("sessions.path").as_deref(),
            Some("in x.json")
        );
    }
}
