//! The loader end to end: documents and environments in, `Settings` or the error an operator reads
//! out. Rule-level tests live beside each part (env.rs, interpolate.rs, overrides.rs, source.rs,
//! build.rs).

use std::path::{Path, PathBuf};

use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::*;

const SECRETS: [&str; 5] = [
    "web-secret-value",
    "mgmt-secret-value",
    "redis-password-value",
    "api-key-value-1",
    "api-key-value-2",
];

/// A duration setting in the config's unit.
fn ms(value: std::time::Duration) -> u128 {
    value.as_millis()
}

fn web_client() -> Value {
    json!({
        "auth0Url": "https://tenant.eu.auth0.com",
        "clientId": "web-id",
        "clientSecret": "web-secret-value",
        "redirectUrl": "https://app.example.com/web-login/callback",
        "scopes": ["offline_access", "website"],
        "supportedConnections": ["db", "partners"],
        "defaultConnection": "db"
    })
}

fn base() -> Value {
    json!({"clients": {"web": web_client()}, "defaultClient": "web"})
}

fn with(mut doc: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    let target = if parent.is_empty() {
        &mut doc
    } else {
        doc.pointer_mut(parent).expect("parent exists")
    };
    target
        .as_object_mut()
        .expect("object")
        .insert(key.to_owned(), value);
    doc
}

fn env(pairs: &[(&str, &str)]) -> Env {
    Env::from_pairs(pairs.iter().copied())
}

fn load(doc: Value) -> Settings {
    Settings::from_value(doc, &Env::default()).expect("valid config")
}

fn load_env(doc: Value, pairs: &[(&str, &str)]) -> Settings {
    Settings::from_value(doc, &env(pairs)).expect("valid config")
}

fn error(doc: Value) -> ConfigError {
    error_env(doc, &[])
}

fn error_env(doc: Value, pairs: &[(&str, &str)]) -> ConfigError {
    Settings::from_value(doc, &env(pairs)).expect_err("config should be refused")
}

/// Asserts the error is about `key` and its message contains every needle.
fn assert_error(err: &ConfigError, key: &str, needles: &[&str]) {
    let message = err.to_string();
    assert_eq!(err.key(), Some(key), "{message}");
    assert!(message.contains(key), "{message} should name {key}");
    for needle in needles {
        assert!(
            message.contains(needle),
            "{message} should contain {needle:?}"
        );
    }
}

/// Each item as the operator writes it, to compare with the expected text.
fn shown<T: ToString>(items: &[T]) -> Vec<String> {
    items.iter().map(ToString::to_string).collect()
}

fn proxies(s: &Settings) -> Vec<String> {
    shown(&s.server.trusted_proxies)
}

/// Asserts that `base()` with each value set at its pointer is refused, naming the key and
/// containing every needle.
fn assert_refused<const N: usize>(cases: [(&str, Value, &str, &[&str]); N]) {
    for (pointer, value, key, needles) in cases {
        assert_error(&error(with(base(), pointer, value)), key, needles);
    }
}

/// Asserts that each `section.key` set to 0 is refused as not greater than 0.
fn assert_zero_refused(keys: &[&str]) {
    for key in keys {
        let (section, field) = key.split_once('.').expect("section.key");
        let err = error(with(base(), &format!("/{section}"), json!({ field: 0 })));
        assert_error(&err, key, &["greater than 0"]);
    }
}

fn example_env() -> Env {
    env(&[
        ("AUTH0_CLIENT_ID", "cms-id"),
        ("AUTH0_CLIENT_SECRET", "cms-secret"),
        ("AUTH0_FRONTEND_CLIENT_ID", "frontend-id"),
        ("AUTH0_FRONTEND_CLIENT_SECRET", "frontend-secret"),
        ("AUTH0_MANAGEMENT_CLIENT_ID", "mgmt-id"),
        ("AUTH0_MANAGEMENT_CLIENT_SECRET", "mgmt-secret"),
        ("FRONTEND_API_KEY", "frontend-api-key"),
        ("BACKOFFICE_API_KEY", "backoffice-api-key"),
    ])
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../config")
        .join(name)
}

// ---- defaults and the upstream form ----

#[test]
fn minimal_config_gets_every_default() {
    let s = load(json!({"clients": {"web": web_client()}}));
    assert_eq!(s.default_client, None);
    assert!(s.custom_claims_namespaces.is_empty());
    assert!(s.management_client.is_none());
    assert!(s.auth0_tenant_url.is_none());
    assert_eq!(s.server.bind.to_string(), "0.0.0.0");
    assert_eq!(s.server.http_port, 8080);
    assert_eq!(s.server.management_bind, None);
    assert_eq!(
        proxies(&s),
        ["127.0.0.0/8", "::1/128"],
        "loopback only: proxies elsewhere are listed by the operator"
    );
    assert!(s.server.allowed_hosts.is_empty());
    assert!(!s.server.insecure_cookies);
    assert_eq!(s.server.body_limit_bytes, 64 * 1024);
    assert_eq!(s.server.import_body_limit_bytes, 20 * 1024 * 1024);
    assert_eq!(ms(s.server.auth0_timeout), 10_000);
    assert_eq!(ms(s.server.body_timeout), 10_000);
    assert!(s.api_keys.is_empty());
    assert_eq!(s.sessions.store, StoreKind::Sled);
    assert_eq!(s.sessions.path, PathBuf::from("data"));
    assert_eq!(s.sessions.redis.mode, RedisMode::Normal);
    assert!(s.sessions.redis.hosts.is_empty());
    assert_eq!(s.sessions.refresh_grace_seconds, 30);
    assert_eq!(ms(s.sessions.timeout), 2000);
    assert_eq!(s.sessions.state_ttl_seconds, 600);
    assert_eq!(s.sessions.cache_bytes, 64 * 1024 * 1024);
    assert_eq!(s.sessions.sled_cache_bytes, 64 * 1024 * 1024);
    assert_eq!(s.sessions.max_pending_logins, 100_000);
    assert_eq!(s.sessions.max_pending_logins_per_ip, 1_000);
    assert_eq!(ms(s.jobs.poll_interval), 1000);
    assert_eq!(ms(s.jobs.max_poll_interval), 30_000);
    assert_eq!(s.jobs.retention_days, 30);
    assert!(s.plugins.is_empty());
    assert_eq!(
        s.redacted_json()["environment"],
        json!({
            "LOG_LEVEL": "info",
            "HTTP_PORT": 8080,
            "SERVICE_PREFIX": "",
            "SERVICE_VERSION": env!("CARGO_PKG_VERSION"),
            "SESSION_DURATION_SECONDS": 86_400,
            "SESSION_SCOPE": "",
            "ORIGINAL_PROTOCOL_HEADER": null,
            "AUTH0_LOGOUT_CLIENT_ID_ENABLED": false,
            "DELAY_SHUTDOWN_SECONDS": 10
        }),
        "the environment-only values"
    );
    assert!(s.warnings.is_empty());
    assert_eq!(s.config_file, None);

    let web = s.client("web").expect("web");
    assert_eq!(web.supported_signing_algs, ["RS256"]);
    assert_eq!(web.same_site, None);
    assert!(!web.authorize_state_required);
    assert_eq!(web.audience, None);
}

#[test]
fn the_canonical_upstream_example_loads() {
    // reference §3.4, with real URLs; `{{VAR}}` resolved from the environment.
    let doc = json!({
        "clients": {
            "cms": {
                "auth0Url": "https://my-tenant.eu.auth0.com/",
                "clientId": "{{AUTH0_CLIENT_ID}}",
                "clientSecret": "{{AUTH0_CLIENT_SECRET}}",
                "redirectUrl": "https://my-host/web-login/callback",
                "scopes": ["offline_access", "profile", "email", "website"],
                "audience": "https://my-host.test.mia-platform.eu",
                "supportedConnections": [],
                "defaultConnection": ""
            }
        },
        "defaultClient": "",
        "managementClient": {
            "auth0Url": "https://my-tenant.eu.auth0.com/",
            "clientId": "{{AUTH0_MANAGEMENT_CLIENT_ID}}",
            "clientSecret": "{{AUTH0_MANAGEMENT_CLIENT_SECRET}}",
            "supportedConnectionsMap": {"foo": {"connectionId": "bar"}},
            "defaultManagementConnectionName": "foo"
        },
        "customClaimsNamespaces": ["https://mia-platform.eu/app_metadata", "https://mia-platform.eu/user_metadata"]
    });
    let s = Settings::from_value(doc, &example_env()).expect("valid");
    let cms = s.client("cms").expect("cms");
    assert_eq!(cms.client_id, "cms-id");
    assert_eq!(cms.client_secret.expose_secret(), "cms-secret");
    assert_eq!(cms.default_connection, None);
    assert!(cms.is_website());
    assert_eq!(s.default_client, None);
    let m = s.management_client.as_ref().expect("management");
    assert_eq!(m.connection_id("foo"), Some("bar"));
    assert_eq!(m.default_connection(), Some("foo"));
    assert_eq!(s.custom_claims_namespaces.len(), 2);
}

#[test]
fn example_json_file_loads() {
    let s =
        Settings::load(Some(&example("auth0-client.example.json")), &example_env()).expect("valid");
    assert_eq!(s.config_file, Some(example("auth0-client.example.json")));
    assert_eq!(s.clients.len(), 2);
    assert_eq!(s.default_client.as_deref(), Some("frontEnd"));
    assert_eq!(
        s.client("cms").expect("cms").client_secret.expose_secret(),
        "cms-secret"
    );
    let front = s.client("frontEnd").expect("frontEnd");
    assert_eq!(
        front.default_connection.as_deref(),
        Some("Username-Password-Authentication")
    );
    assert_eq!(front.issuer(), "https://my-tenant.eu.auth0.com/");
    let m = s.management_client.as_ref().expect("management");
    assert!(m.supports_import());
    assert_eq!(
        m.supported_connection_names(),
        ["Partners", "Username-Password-Authentication"]
    );
    // The upstream format has no `apiKeys` nor `server.managementBind`.
    assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
    assert!(
        s.warnings[0].contains("management routes"),
        "{:?}",
        s.warnings
    );
}

#[test]
fn example_toml_file_loads_with_its_extension_keys() {
    let s =
        Settings::load(Some(&example("auth0-client.example.toml")), &example_env()).expect("valid");
    let json =
        Settings::load(Some(&example("auth0-client.example.json")), &example_env()).expect("valid");
    // The upstream part is the same as the JSON example's.
    for key in [
        "clients",
        "defaultClient",
        "managementClient",
        "customClaimsNamespaces",
    ] {
        assert_eq!(s.redacted_json()[key], json.redacted_json()[key], "{key}");
    }
    assert_eq!(
        s.server.management_bind,
        Some("127.0.0.1:8081".parse().expect("addr"))
    );
    assert_eq!(
        s.server.trusted_proxies,
        ServerSettings::default().trusted_proxies
    );
    assert_eq!(s.api_keys.len(), 2);
    assert_eq!(s.api_keys[0].key.expose_secret(), "frontend-api-key");
    assert!(s.api_keys[1].management);
    assert_eq!(s.sessions.store, StoreKind::Sled);
    assert_eq!(
        s.sessions.path,
        PathBuf::from("/var/lib/auth0-client/sessions")
    );
    assert_eq!(ms(s.jobs.max_poll_interval), 30_000);
}

// ---- file lookup and formats ----

#[test]
fn file_lookup_uses_service_config_variables() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("config.json"), base().to_string()).expect("write");
    let dir_text = dir.path().display().to_string();
    let e = env(&[
        ("SERVICE_CONFIG_PATH", &dir_text),
        ("SERVICE_CONFIG_FILE_NAME", "config"),
    ]);
    let s = Settings::load(None, &e).expect("found through the variables");
    assert_eq!(s.config_file, Some(dir.path().join("config.json")));

    // --config wins over the variables.
    let other = dir.path().join("other.yaml");
    std::fs::write(&other, "clients: {}\nserver:\n  bind: 127.0.0.1\n").expect("write");
    let s = Settings::load(Some(&other), &e).expect("cli wins");
    assert_eq!(s.server.bind.to_string(), "127.0.0.1");

    let err = Settings::load(None, &env(&[("SERVICE_CONFIG_PATH", &dir_text)])).expect_err("half");
    assert!(
        err.to_string().contains("SERVICE_CONFIG_FILE_NAME"),
        "{err}"
    );

    let e = env(&[
        ("SERVICE_CONFIG_PATH", &dir_text),
        ("SERVICE_CONFIG_FILE_NAME", "absent"),
    ]);
    let message = Settings::load(None, &e).expect_err("missing").to_string();
    assert!(
        message.contains("absent.json") && message.contains("does not exist"),
        "{message}"
    );
}

#[test]
fn every_format_loads_the_same_settings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = [
        ("c.json", base().to_string()),
        (
            "c.toml",
            "defaultClient = \"web\"\n[clients.web]\nauth0Url = \"https://tenant.eu.auth0.com\"\n\
             clientId = \"web-id\"\nclientSecret = \"web-secret-value\"\n\
             redirectUrl = \"https://app.example.com/web-login/callback\"\n\
             scopes = [\"offline_access\", \"website\"]\nsupportedConnections = [\"db\", \"partners\"]\n\
             defaultConnection = \"db\"\n"
                .to_owned(),
        ),
        (
            "c.yml",
            "defaultClient: web\nclients:\n  web:\n    auth0Url: https://tenant.eu.auth0.com\n    \
             clientId: web-id\n    clientSecret: web-secret-value\n    \
             redirectUrl: https://app.example.com/web-login/callback\n    \
             scopes: [offline_access, website]\n    supportedConnections: [db, partners]\n    \
             defaultConnection: db\n"
                .to_owned(),
        ),
    ];
    let mut loaded = Vec::new();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        loaded.push(
            Settings::load(Some(&path), &Env::default())
                .expect(name)
                .redacted_json(),
        );
    }
    assert_eq!(loaded[0], loaded[1]);
    assert_eq!(loaded[0], loaded[2]);
}

#[test]
fn malformed_files_name_the_file_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text, needles) in [
        (
            "bad.json",
            "{\n  \"clients\": {,\n}",
            &["JSON", "line 2 column"][..],
        ),
        (
            "bad.toml",
            "[clients\nx = 1\n",
            &["TOML", "line 1 column"][..],
        ),
        (
            "bad.yaml",
            "clients:\n  web: {a: 1\n",
            &["YAML", "line 3 column"][..],
        ),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        let err = Settings::load(Some(&path), &Env::default()).expect_err(name);
        assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
        let message = err.to_string();
        assert!(message.contains(name), "{message}");
        for needle in needles {
            assert!(
                message.contains(needle),
                "{message} should contain {needle}"
            );
        }
    }
    let path = dir.path().join("c.conf");
    std::fs::write(&path, "{}").expect("write");
    let message = Settings::load(Some(&path), &Env::default())
        .expect_err("format")
        .to_string();
    assert!(message.contains(".json, .toml, .yaml or .yml"), "{message}");
}

#[test]
fn top_level_must_be_an_object() {
    let message = error(json!(["clients"])).to_string();
    assert!(message.contains("found a list"), "{message}");
}

// ---- keys ----

#[test]
fn unknown_keys_are_named_by_their_full_path() {
    assert_refused([
        (
            "/clients/web/audiance",
            json!("x"),
            "clients.web.audiance",
            &["unknown key", "did you mean `audience`"][..],
        ),
        (
            "/server",
            json!({"bnd": "::"}),
            "server.bnd",
            &["did you mean `bind`"],
        ),
        (
            "/apiKeys",
            json!([{"key": "k", "clientType": "web", "admin": true}]),
            "apiKeys.0.admin",
            &[],
        ),
        (
            "/plugins",
            json!([{"path": "p.so", "on_error": "fail-open"}]),
            "plugins.0.on_error",
            &["did you mean `onError`"],
        ),
        ("/mongo", json!({}), "mongo", &[]),
        // An unknown key is reported even when empty: it is not a known key left unset.
        (
            "/sessions",
            json!({"pth": ""}),
            "sessions.pth",
            &["did you mean `path`"],
        ),
    ]);
}

#[test]
fn keys_are_case_sensitive() {
    let err = error(json!({"Clients": {}, "clients": {}}));
    assert_error(
        &err,
        "Clients",
        &["case-sensitive", "did you mean `clients`"],
    );
    let err = error(with(base(), "/clients/web/clientid", json!("x")));
    assert_error(&err, "clients.web.clientid", &["did you mean `clientId`"]);
}

#[test]
fn missing_required_keys_are_named() {
    assert_error(&error(json!({})), "clients", &["missing required key"]);
    let mut client = web_client();
    client.as_object_mut().expect("object").remove("clientId");
    assert_error(
        &error(json!({"clients": {"web": client}})),
        "clients.web.clientId",
        &["missing"],
    );
    // An empty string is unset, so a required key left empty is missing.
    let err = error(with(base(), "/clients/web/clientSecret", json!("")));
    assert_error(&err, "clients.web.clientSecret", &["missing"]);
    let err = error(with(
        base(),
        "/managementClient",
        json!({"auth0Url": "https://t.auth0.com"}),
    ));
    assert_error(&err, "managementClient.clientId", &["missing"]);
}

#[test]
fn wrong_types_are_named() {
    assert_refused([
        (
            "/server",
            json!({"bodyLimitBytes": "64k"}),
            "server.bodyLimitBytes",
            &["expected a whole number", "\"64k\""][..],
        ),
        (
            "/clients/web/scopes",
            json!("openid email"),
            "clients.web.scopes",
            &["expected a list"],
        ),
        (
            "/server",
            json!({"insecureCookies": "yes"}),
            "server.insecureCookies",
            &["true or false"],
        ),
        (
            "/jobs",
            json!({"retentionDays": -1}),
            "jobs.retentionDays",
            &["-1"],
        ),
    ]);
}

#[test]
fn empty_strings_and_nulls_mean_unset() {
    let doc = json!({
        "clients": {"web": with(with(web_client(), "/defaultConnection", json!("")), "/audience", json!(""))},
        "defaultClient": "",
        "auth0TenantUrl": "",
        "server": {"bind": "", "managementBind": null, "allowedHosts": [""]},
        "sessions": {"path": "", "store": ""},
        "managementClient": null
    });
    let s = load(doc);
    let web = s.client("web").expect("web");
    assert_eq!(web.default_connection, None);
    assert_eq!(web.audience, None);
    assert_eq!(s.default_client, None);
    assert_eq!(s.auth0_tenant_url, None);
    assert_eq!(s.server.bind.to_string(), "0.0.0.0");
    assert!(s.server.allowed_hosts.is_empty());
    assert_eq!(s.sessions.path, PathBuf::from("data"));
    assert!(s.management_client.is_none());
}

// ---- managementClient shapes ----

fn management(extra: Value) -> Value {
    let mut m = json!({
        "auth0Url": "https://tenant.eu.auth0.com/",
        "clientId": "mgmt-id",
        "clientSecret": "mgmt-secret-value"
    });
    for (k, v) in extra.as_object().expect("object") {
        m.as_object_mut()
            .expect("object")
            .insert(k.clone(), v.clone());
    }
    with(base(), "/managementClient", m)
}

#[test]
fn management_client_deprecated_shape() {
    let s = load(management(json!({
        "supportedConnections": ["db", "partners"],
        "defaultCreateUserConnection": "db"
    })));
    let m = s.management_client.expect("management");
    assert_eq!(
        m.connections,
        ManagementConnections::Deprecated {
            supported_connections: vec!["db".into(), "partners".into()],
            default_create_user_connection: Some("db".into()),
        }
    );
    assert!(!m.supports_import());
}

#[test]
fn management_client_map_shape() {
    let s = load(management(json!({
        "supportedConnectionsMap": {"db": {"connectionId": "con_1"}, "partners": {"connectionId": "con_2"}},
        "defaultManagementConnectionName": "partners"
    })));
    let m = s.management_client.expect("management");
    assert!(m.supports_import());
    assert_eq!(m.default_connection(), Some("partners"));
    assert_eq!(m.connection_id("db"), Some("con_1"));
}

#[test]
fn management_client_without_connections() {
    let s = load(management(json!({})));
    let m = s.management_client.expect("management");
    assert_eq!(m.connections, ManagementConnections::Unset);
    assert_eq!(m.client_secret.expose_secret(), "mgmt-secret-value");
}

#[test]
fn management_client_shapes_cannot_be_mixed() {
    for extra in [
        json!({"supportedConnections": ["db"], "supportedConnectionsMap": {"db": {"connectionId": "c"}}}),
        json!({"defaultCreateUserConnection": "db", "defaultManagementConnectionName": "db"}),
        json!({"supportedConnections": [], "defaultManagementConnectionName": "db"}),
    ] {
        let err = error(management(extra));
        assert_error(
            &err,
            "managementClient",
            &["mixes the deprecated", "supportedConnectionsMap"],
        );
    }
}

#[test]
fn management_client_defaults_must_be_supported() {
    let err = error(management(json!({
        "supportedConnections": ["db"],
        "defaultCreateUserConnection": "other"
    })));
    assert_error(
        &err,
        "managementClient.defaultCreateUserConnection",
        &["`other`", "db"],
    );
    let err = error(management(json!({"defaultCreateUserConnection": "other"})));
    assert_error(
        &err,
        "managementClient.defaultCreateUserConnection",
        &["empty"],
    );
    let err = error(management(json!({
        "supportedConnectionsMap": {"db": {"connectionId": "con_1"}},
        "defaultManagementConnectionName": "other"
    })));
    assert_error(
        &err,
        "managementClient.defaultManagementConnectionName",
        &["`other`", "db"],
    );
    let err = error(management(json!({"supportedConnectionsMap": {"db": {}}})));
    assert_error(
        &err,
        "managementClient.supportedConnectionsMap.db.connectionId",
        &["missing"],
    );
}

#[test]
fn authorize_state_required_in_management_client_is_ignored_with_a_warning() {
    let s = load(management(json!({"authorizeStateRequired": true})));
    assert!(s.management_client.is_some());
    assert_eq!(
        s.warnings
            .iter()
            .filter(|w| w.contains("managementClient.authorizeStateRequired"))
            .count(),
        1,
        "{:?}",
        s.warnings
    );
}

#[test]
fn insecure_cookies_and_open_management_routes_warn_at_start() {
    let warned = |s: &Settings, needle: &str| s.warnings.iter().any(|w| w.contains(needle));
    let s = load(with(base(), "/server", json!({"insecureCookies": true})));
    assert!(
        warned(&s, "`server.insecureCookies` is true"),
        "{:?}",
        s.warnings
    );
    assert!(!warned(&load(base()), "insecureCookies"));

    // Management routes need a `managementClient` to answer at all.
    assert!(!warned(&load(base()), "management routes"));
    let open = load(management(json!({})));
    assert!(warned(&open, "management routes"), "{:?}", open.warnings);
    let behind_bind = with(
        management(json!({})),
        "/server",
        json!({"managementBind": "127.0.0.1:9090"}),
    );
    assert!(!warned(&load(behind_bind), "management routes"));
    let with_keys = with(
        management(json!({})),
        "/apiKeys",
        json!([{"key": "k-1", "clientType": "web", "management": true}]),
    );
    assert!(!warned(&load(with_keys), "management routes"));
}

#[test]
fn management_api_base_prefers_the_tenant_url() {
    let s = load(management(json!({})));
    assert_eq!(
        s.management_api_base().as_deref(),
        Some("https://tenant.eu.auth0.com/api/v2/")
    );
    let s = load(with(
        management(json!({})),
        "/auth0TenantUrl",
        json!("https://login.example.com"),
    ));
    assert_eq!(
        s.auth0_tenant_url.as_ref().map(Url::as_str),
        Some("https://login.example.com/")
    );
    assert_eq!(
        s.management_api_base().as_deref(),
        Some("https://login.example.com/api/v2/")
    );
    assert_eq!(load(base()).management_api_base(), None);
}

// ---- semantic checks ----

#[test]
fn default_client_must_name_a_client() {
    let err = error(with(base(), "/defaultClient", json!("mobile")));
    assert_error(&err, "defaultClient", &["`mobile`", "configured: web"]);
}

#[test]
fn default_connection_must_be_supported_when_the_list_is_not_empty() {
    let err = error(with(
        base(),
        "/clients/web/defaultConnection",
        json!("google"),
    ));
    assert_error(
        &err,
        "clients.web.defaultConnection",
        &["`google`", "db, partners"],
    );
    let doc = with(base(), "/clients/web/supportedConnections", json!([]));
    let s = load(with(doc, "/clients/web/defaultConnection", json!("google")));
    assert_eq!(
        s.client("web").expect("web").default_connection.as_deref(),
        Some("google")
    );
}

#[test]
fn urls_must_parse() {
    let err = error(with(base(), "/clients/web/auth0Url", json!("my auth0 url")));
    assert_error(&err, "clients.web.auth0Url", &["not a URL"]);
    let err = error(with(
        base(),
        "/clients/web/redirectUrl",
        json!("/web-login/callback"),
    ));
    assert_error(&err, "clients.web.redirectUrl", &["absolute URL"]);
    let err = error(with(
        base(),
        "/auth0TenantUrl",
        json!("tenant.eu.auth0.com"),
    ));
    assert_error(&err, "auth0TenantUrl", &[]);
    let err = error(management(json!({"auth0Url": "ftp://tenant"})));
    assert_error(&err, "managementClient.auth0Url", &["http or https"]);
}

#[test]
fn auth0_url_trailing_slash_is_optional_and_the_issuer_ends_with_one() {
    for url in [
        "https://tenant.eu.auth0.com",
        "https://tenant.eu.auth0.com/",
    ] {
        let s = load(with(base(), "/clients/web/auth0Url", json!(url)));
        let web = s.client("web").expect("web");
        assert_eq!(web.issuer(), "https://tenant.eu.auth0.com/");
        assert_eq!(
            web.endpoint("oauth/token"),
            "https://tenant.eu.auth0.com/oauth/token"
        );
    }
    // The redirect URL is kept as written: Auth0 compares it character by character.
    let s = load(with(
        base(),
        "/clients/web/redirectUrl",
        json!("https://app.example.com"),
    ));
    assert_eq!(
        s.client("web").expect("web").redirect_url,
        "https://app.example.com"
    );
}

#[test]
fn same_site_values() {
    for (value, expected) in [
        ("Lax", SameSite::Lax),
        ("None", SameSite::None),
        ("Strict", SameSite::Strict),
    ] {
        let s = load(with(base(), "/clients/web/sameSite", json!(value)));
        assert_eq!(s.client("web").expect("web").same_site, Some(expected));
    }
    let err = error(with(base(), "/clients/web/sameSite", json!("lax")));
    assert_error(&err, "clients.web.sameSite", &["Lax, None or Strict"]);
}

#[test]
fn rs256_and_hs256_are_the_accepted_signing_algorithms() {
    for algs in [
        json!(["RS256"]),
        json!(["RS256", "HS256"]),
        json!(["HS256"]),
    ] {
        let s = load(with(
            base(),
            "/clients/web/supportedSigningAlgs",
            algs.clone(),
        ));
        assert_eq!(
            json!(s.client("web").expect("web").supported_signing_algs),
            algs
        );
    }
    let s = load(base());
    let web = s.client("web").expect("web");
    assert!(web.accepts_signing_alg("RS256"));
    assert!(!web.accepts_signing_alg("HS256"));
    let err = error(with(
        base(),
        "/clients/web/supportedSigningAlgs",
        json!(["RS256", "PS256"]),
    ));
    assert_error(
        &err,
        "clients.web.supportedSigningAlgs",
        &["`PS256`", "RS256 and HS256"],
    );
}

#[test]
fn api_keys_must_name_a_client_and_be_unique() {
    let doc = with(
        base(),
        "/apiKeys",
        json!([{"key": "api-key-value-1", "clientType": "web", "management": true},
               {"key": "api-key-value-2", "clientType": "web"}]),
    );
    let s = load(doc);
    assert!(s.api_keys[0].management && !s.api_keys[1].management);
    assert_eq!(s.api_keys[1].client_type, "web");

    let err = error(with(
        base(),
        "/apiKeys",
        json!([{"key": "k", "clientType": "mobile"}]),
    ));
    assert_error(&err, "apiKeys.0.clientType", &["`mobile`"]);
    let err = error(with(
        base(),
        "/apiKeys",
        json!([{"key": "same-key", "clientType": "web"}, {"key": "same-key", "clientType": "web"}]),
    ));
    assert_error(&err, "apiKeys.1.key", &["apiKeys.0.key"]);
    assert!(!err.to_string().contains("same-key"), "{err}");
    let err = error(with(
        base(),
        "/apiKeys",
        json!([{"key": "", "clientType": "web"}]),
    ));
    assert_error(&err, "apiKeys.0.key", &["missing"]);
}

#[test]
fn server_values_are_checked() {
    let s = load(with(
        base(),
        "/server",
        json!({
            "bind": "::1",
            "managementBind": "127.0.0.1:9090",
            "trustedProxies": ["10.1.2.3/8", "192.0.2.7"],
            "allowedHosts": ["App.Example.com", "app.example.com:8443", "[::1]:8080"],
            "insecureCookies": true,
            "bodyLimitBytes": 1024,
            "importBodyLimitBytes": 2048,
            "auth0TimeoutMs": 500,
            "bodyTimeoutMs": 2500
        }),
    ));
    assert_eq!(s.server.bind.to_string(), "::1");
    assert_eq!(
        s.server.management_bind.map(|a| a.to_string()).as_deref(),
        Some("127.0.0.1:9090")
    );
    assert_eq!(proxies(&s), ["10.0.0.0/8", "192.0.2.7/32"]);
    assert_eq!(
        shown(&s.server.allowed_hosts),
        ["app.example.com", "app.example.com:8443", "[::1]:8080"]
    );
    assert!(s.server.insecure_cookies);
    assert_eq!(
        (
            s.server.body_limit_bytes,
            s.server.import_body_limit_bytes,
            ms(s.server.auth0_timeout)
        ),
        (1024, 2048, 500)
    );
    assert_eq!(ms(s.server.body_timeout), 2500);
    assert!(
        load(with(base(), "/server", json!({"trustedProxies": []})))
            .server
            .trusted_proxies
            .is_empty()
    );

    for (server, key, needle) in [
        (json!({"bind": "localhost"}), "server.bind", "IP address"),
        (
            json!({"managementBind": "localhost:9090"}),
            "server.managementBind",
            "127.0.0.1:9090",
        ),
        (
            json!({"managementBind": "127.0.0.1"}),
            "server.managementBind",
            "port",
        ),
        (
            json!({"managementBind": "0.0.0.0:8080"}),
            "server.managementBind",
            "collides",
        ),
        (
            json!({"bind": "127.0.0.1", "managementBind": "127.0.0.1:8080"}),
            "server.managementBind",
            "HTTP_PORT",
        ),
        (
            json!({"trustedProxies": ["10.0.0.0/33"]}),
            "server.trustedProxies.0",
            "CIDR",
        ),
        (
            json!({"allowedHosts": ["ok.example", "https://app.example.com"]}),
            "server.allowedHosts.1",
            "host",
        ),
    ] {
        let err = error(with(base(), "/server", server));
        assert_error(&err, key, &[needle]);
    }
    assert_zero_refused(&[
        "server.bodyLimitBytes",
        "server.importBodyLimitBytes",
        "server.auth0TimeoutMs",
        "server.bodyTimeoutMs",
    ]);
    // Port 0 (tests) never collides; another port on the same address is fine.
    load_env(
        with(
            base(),
            "/server",
            json!({"bind": "127.0.0.1", "managementBind": "127.0.0.1:0"}),
        ),
        &[("HTTP_PORT", "0")],
    );
    load(with(
        base(),
        "/server",
        json!({"managementBind": "127.0.0.1:8081"}),
    ));
}

#[test]
fn sessions_jobs_and_plugins_are_checked() {
    let s = load(with(
        with(
            base(),
            "/sessions",
            json!({"store": "sled", "path": "/tmp/s", "refreshGraceSeconds": 0, "timeoutMs": 10, "stateTtlSeconds": 5, "cacheBytes": 3145728, "sledCacheBytes": 2097152, "maxPendingLogins": 50, "maxPendingLoginsPerIp": 5}),
        ),
        "/jobs",
        json!({"pollIntervalMs": 50, "maxPollIntervalMs": 50, "retentionDays": 1}),
    ));
    assert_eq!(s.sessions.path, PathBuf::from("/tmp/s"));
    assert_eq!(s.sessions.cache_bytes, 3 * 1024 * 1024);
    assert_eq!(s.sessions.sled_cache_bytes, 2 * 1024 * 1024);
    assert_eq!(
        (
            s.sessions.max_pending_logins,
            s.sessions.max_pending_logins_per_ip
        ),
        (50, 5)
    );
    assert_eq!(
        (
            s.sessions.refresh_grace_seconds,
            ms(s.sessions.timeout),
            s.sessions.state_ttl_seconds
        ),
        (0, 10, 5)
    );
    assert_eq!(
        (
            ms(s.jobs.poll_interval),
            ms(s.jobs.max_poll_interval),
            s.jobs.retention_days
        ),
        (50, 50, 1)
    );
    // 0 turns the read cache off.
    let s = load(with(base(), "/sessions", json!({"cacheBytes": 0})));
    assert_eq!(s.sessions.cache_bytes, 0);
    // A poll interval above the default maximum raises the maximum with it.
    let s = load(with(base(), "/jobs", json!({"pollIntervalMs": 60000})));
    assert_eq!(ms(s.jobs.max_poll_interval), 60_000);

    let hash = "AB".repeat(32);
    let s = load(with(
        base(),
        "/plugins",
        json!([
            {"path": "libone.so"},
            {"path": "libtwo.so", "sha256": hash, "config": {"domains": {"partner.example": "Partners"}},
             "timeoutMs": 250, "onError": "fail-closed"}
        ]),
    ));
    assert_eq!(s.plugins[0].config, json!({}));
    assert_eq!(ms(s.plugins[0].timeout), 100);
    assert_eq!(s.plugins[0].on_error, OnError::FailOpen);
    assert_eq!(s.plugins[0].sha256, None);
    assert_eq!(
        s.plugins[1].sha256.as_deref(),
        Some("ab".repeat(32).as_str())
    );
    assert_eq!(
        s.plugins[1].config["domains"]["partner.example"],
        "Partners"
    );
    assert_eq!(s.plugins[1].on_error, OnError::FailClosed);

    for (pointer, value, key, needle) in [
        (
            "/sessions",
            json!({"store": "memory"}),
            "sessions.store",
            "`sled` or `redis`",
        ),
        (
            "/sessions",
            json!({"cacheBytes": 1048575}),
            "sessions.cacheBytes",
            "0 (off) or between 1048576 (1 MiB)",
        ),
        (
            "/sessions",
            json!({"sledCacheBytes": 65536}),
            "sessions.sledCacheBytes",
            "between 1048576 (1 MiB)",
        ),
        (
            "/jobs",
            json!({"pollIntervalMs": 500, "maxPollIntervalMs": 100}),
            "jobs.maxPollIntervalMs",
            "below",
        ),
        (
            "/plugins",
            json!([{"path": "p.so", "sha256": "abc"}]),
            "plugins.0.sha256",
            "64 hexadecimal",
        ),
        (
            "/plugins",
            json!([{"path": "p.so", "onError": "ignore"}]),
            "plugins.0.onError",
            "fail-closed",
        ),
        (
            "/plugins",
            json!([{"path": "p.so", "timeoutMs": 0}]),
            "plugins.0.timeoutMs",
            "greater than 0",
        ),
        (
            "/plugins",
            json!([{"sha256": "ab"}]),
            "plugins.0.path",
            "missing",
        ),
    ] {
        let err = error(with(base(), pointer, value));
        assert_error(&err, key, &[needle]);
    }
    assert_zero_refused(&[
        "sessions.timeoutMs",
        "sessions.stateTtlSeconds",
        "sessions.maxPendingLogins",
        "sessions.maxPendingLoginsPerIp",
        "jobs.pollIntervalMs",
        "jobs.retentionDays",
    ]);
}

// ---- interpolation ----

#[test]
fn interpolation_reads_the_environment() {
    let doc = with(
        with(base(), "/clients/web/clientSecret", json!("${WEB_SECRET}")),
        "/clients/web/auth0Url",
        json!("https://{{TENANT}}.eu.auth0.com"),
    );
    let doc = with(
        doc,
        "/plugins",
        json!([{"path": "${PLUGIN_DIR}/libx.so", "config": {"t": "{{{{raw}}"}}]),
    );
    let s = load_env(
        doc,
        &[
            ("WEB_SECRET", "from-env"),
            ("TENANT", "acme"),
            ("PLUGIN_DIR", "/opt/p"),
        ],
    );
    let web = s.client("web").expect("web");
    assert_eq!(web.client_secret.expose_secret(), "from-env");
    assert_eq!(web.issuer(), "https://acme.eu.auth0.com/");
    assert_eq!(s.plugins[0].path, PathBuf::from("/opt/p/libx.so"));
    assert_eq!(s.plugins[0].config["t"], "{{raw}}");
}

#[test]
fn interpolation_escapes_are_literal() {
    let s = load(with(
        base(),
        "/clients/web/audience",
        json!("$${NOT_A_VAR} and {{{{NOR_THIS}}"),
    ));
    assert_eq!(
        s.client("web").expect("web").audience.as_deref(),
        Some("${NOT_A_VAR} and {{NOR_THIS}}")
    );
}

#[test]
fn an_unset_variable_is_named() {
    let err = error(with(
        base(),
        "/clients/web/clientSecret",
        json!("{{AUTH0_CLIENT_SECRET}}"),
    ));
    assert_error(
        &err,
        "clients.web.clientSecret",
        &["AUTH0_CLIENT_SECRET", "not set"],
    );
    assert!(
        matches!(err, ConfigError::UnsetVariable { ref var, .. } if var == "AUTH0_CLIENT_SECRET")
    );
    let err = error(with(base(), "/clients/web/audience", json!("${oops")));
    assert_error(&err, "clients.web.audience", &["no closing"]);
}

#[test]
fn a_variable_set_empty_leaves_the_key_unset() {
    let doc = with(
        base(),
        "/clients/web/defaultConnection",
        json!("${DEFAULT_CONNECTION}"),
    );
    let s = load_env(doc, &[("DEFAULT_CONNECTION", "")]);
    assert_eq!(s.client("web").expect("web").default_connection, None);
}

// ---- environment ----

#[test]
fn environment_only_values_are_read() {
    // Each variable, the value set, and the value in force as `check-config` shows it.
    let cases = [
        ("LOG_LEVEL", "debug", json!("debug")),
        ("HTTP_PORT", "3000", json!(3000)),
        ("SERVICE_PREFIX", "/auth/", json!("/auth")),
        ("SERVICE_VERSION", "3.8.0-compat", json!("3.8.0-compat")),
        ("SESSION_DURATION_SECONDS", "7200", json!(7200)),
        ("SESSION_SCOPE", "shop", json!("shop")),
        (
            "ORIGINAL_PROTOCOL_HEADER",
            "X-Original-Proto",
            json!("x-original-proto"),
        ),
        ("AUTH0_LOGOUT_CLIENT_ID_ENABLED", "true", json!(true)),
        ("DELAY_SHUTDOWN_SECONDS", "3", json!(3)),
    ];
    let pairs: Vec<(&str, &str)> = cases.iter().map(|(var, value, _)| (*var, *value)).collect();
    let s = load_env(base(), &pairs);
    assert_eq!(s.server.http_port, 3000);
    let environment = &s.redacted_json()["environment"];
    for (var, _, expected) in &cases {
        assert_eq!(environment[var], *expected, "{var}");
    }
}

#[test]
fn bad_environment_values_name_the_variable() {
    for (var, value) in [
        ("HTTP_PORT", "abc"),
        ("LOG_LEVEL", "chatty"),
        ("SERVICE_PREFIX", "/a b"),
        ("SESSION_DURATION_SECONDS", "-1"),
        ("ORIGINAL_PROTOCOL_HEADER", "x:proto"),
        ("AUTH0_LOGOUT_CLIENT_ID_ENABLED", "sometimes"),
        ("DELAY_SHUTDOWN_SECONDS", "ten"),
        ("REDIS_TLS", "on?"),
    ] {
        let err = error_env(base(), &[(var, value)]);
        assert_error(&err, var, &["environment variable"]);
    }
    let message = error_env(base(), &[("HTTP_PORT", "abc")]).to_string();
    assert!(
        message.contains("HTTP_PORT") && message.contains("\"abc\""),
        "{message}"
    );
}

#[test]
fn mongo_sync_variables_are_refused_pointing_to_on_tokens() {
    let err = error_env(
        base(),
        &[
            ("MONGO_DB_URL", "mongodb://db:27017"),
            ("USERS_PROPERTIES_TO_SAVE", "email"),
        ],
    );
    let message = err.to_string();
    assert!(
        message.contains("MONGO_DB_URL, USERS_PROPERTIES_TO_SAVE"),
        "{message}"
    );
    assert!(message.contains("`on_tokens`"), "{message}");
    // Left empty (as the upstream manifests do), they are unset.
    load_env(base(), &[("MONGO_DB_URL", ""), ("USERS_DATABASE_NAME", "")]);
}

// ---- Redis ----

#[test]
fn redis_hosts_selects_redis() {
    let s = load_env(
        base(),
        &[
            ("REDIS_HOSTS", "redis-a, redis-b:6380,[::1]"),
            ("REDIS_USERNAME", "daemon"),
            ("REDIS_PASSWORD", "redis-password-value"),
            ("REDIS_TLS", "true"),
        ],
    );
    assert_eq!(s.sessions.store, StoreKind::Redis);
    assert_eq!(
        s.sessions.redis.hosts,
        ["redis-a:6379", "redis-b:6380", "[::1]:6379"]
    );
    assert_eq!(s.sessions.redis.username.as_deref(), Some("daemon"));
    assert_eq!(
        s.sessions
            .redis
            .password
            .as_ref()
            .map(|p| p.expose_secret()),
        Some("redis-password-value")
    );
    assert!(s.sessions.redis.tls);
    assert_eq!(s.sessions.redis.mode, RedisMode::Normal);

    // Empty REDIS_HOSTS is unset.
    assert_eq!(
        load_env(base(), &[("REDIS_HOSTS", "")]).sessions.store,
        StoreKind::Sled
    );
    // Hosts in the file select Redis too.
    let s = load(with(
        base(),
        "/sessions",
        json!({"redis": {"hosts": ["cache:7000"]}}),
    ));
    assert_eq!(s.sessions.store, StoreKind::Redis);
}

#[test]
fn an_explicit_store_wins_over_redis_hosts() {
    let doc = with(base(), "/sessions", json!({"store": "sled"}));
    let s = load_env(doc, &[("REDIS_HOSTS", "redis:6379")]);
    assert_eq!(s.sessions.store, StoreKind::Sled);
    assert!(
        s.warnings.iter().any(|w| w.contains("REDIS_HOSTS")),
        "{:?}",
        s.warnings
    );
    let s = load_env(
        base(),
        &[
            ("REDIS_HOSTS", "redis:6379"),
            ("AUTH0_CLIENT__SESSIONS__STORE", "sled"),
        ],
    );
    assert_eq!(s.sessions.store, StoreKind::Sled);
}

#[test]
fn redis_variables_win_over_the_file() {
    let doc = with(
        base(),
        "/sessions",
        json!({"redis": {"hosts": ["file-host"], "mode": "normal", "username": "file-user"}}),
    );
    let s = load_env(
        doc,
        &[("REDIS_HOSTS", "env-host"), ("REDIS_USERNAME", "env-user")],
    );
    assert_eq!(s.sessions.redis.hosts, ["env-host:6379"]);
    assert_eq!(s.sessions.redis.username.as_deref(), Some("env-user"));
}

#[test]
fn redis_checks_name_the_variables() {
    for (pairs, key, needles) in [
        (
            &[("REDIS_HOSTS", "r"), ("REDIS_MODE", "cluster")][..],
            "sessions.redis.mode",
            &["set by REDIS_MODE", "`normal` or `sentinel`"][..],
        ),
        (
            &[
                ("REDIS_HOSTS", "s1:26379,s2:26379"),
                ("REDIS_MODE", "sentinel"),
            ],
            "sessions.redis.masterName",
            &["REDIS_MASTER_NAME"],
        ),
        (
            &[("REDIS_HOSTS", "redis://cache:6379")],
            "sessions.redis.hosts.0",
            &["set by REDIS_HOSTS", "is a URL"],
        ),
        (
            &[
                ("REDIS_HOSTS", "r"),
                ("REDIS_TLS", "true"),
                ("REDIS_TLS_CACERT", "/nonexistent/ca.pem"),
            ],
            "sessions.redis.tlsCaCert",
            &["set by REDIS_TLS_CACERT", "does not exist"],
        ),
    ] {
        assert_error(&error_env(base(), pairs), key, needles);
    }
    let err = error(with(base(), "/sessions", json!({"store": "redis"})));
    assert_error(&err, "sessions.redis.hosts", &["REDIS_HOSTS"]);
    let s = load_env(
        base(),
        &[
            ("REDIS_HOSTS", "s1:26379"),
            ("REDIS_MODE", "sentinel"),
            ("REDIS_MASTER_NAME", "mymaster"),
        ],
    );
    assert_eq!(s.sessions.redis.mode, RedisMode::Sentinel);
    assert_eq!(s.sessions.redis.master_name.as_deref(), Some("mymaster"));
    let s = load_env(
        base(),
        &[
            ("REDIS_HOSTS", "r"),
            ("REDIS_TLS_CACERT", "/nonexistent/ca.pem"),
        ],
    );
    assert!(
        s.warnings.iter().any(|w| w.contains("REDIS_TLS=true")),
        "{:?}",
        s.warnings
    );
}

// ---- AUTH0_CLIENT__ overrides ----

#[test]
fn generic_overrides_reach_every_level() {
    let s = load_env(
        base(),
        &[
            ("AUTH0_CLIENT__SERVER__MANAGEMENTBIND", "127.0.0.1:9999"),
            (
                "AUTH0_CLIENT__SESSIONS__PATH",
                "/var/lib/auth0-client/sessions",
            ),
            ("AUTH0_CLIENT__JOBS__POLLINTERVALMS", "250"),
            ("AUTH0_CLIENT__CLIENTS__WEB__CLIENTSECRET", "0123456789"),
            ("AUTH0_CLIENT__clients__web__scopes", "openid,email"),
            ("AUTH0_CLIENT__DefaultClient", "web"),
            ("AUTH0_CLIENT__SERVER__TRUSTED_PROXIES", "[\"10.0.0.0/8\"]"),
            ("AUTH0_CLIENT__SERVER__BODYTIMEOUTMS", "1500"),
        ],
    );
    assert_eq!(s.server.management_bind.map(|a| a.port()), Some(9999));
    assert_eq!(ms(s.server.body_timeout), 1500);
    assert_eq!(
        s.sessions.path,
        PathBuf::from("/var/lib/auth0-client/sessions")
    );
    assert_eq!(ms(s.jobs.poll_interval), 250);
    let web = s.client("web").expect("web");
    assert_eq!(web.client_secret.expose_secret(), "0123456789");
    assert_eq!(web.scopes, ["openid", "email"]);
    assert_eq!(s.server.trusted_proxies.len(), 1);
}

/// The forms the systemd unit's sample and the README show for a real proxy and a pod range.
#[test]
fn trusted_proxies_override_as_the_samples_write_it() {
    for text in [
        "10.0.3.7,10.244.0.0/16",
        " 10.0.3.7 , 10.244.0.0/16 ",
        "[\"10.0.3.7\", \"10.244.0.0/16\"]",
    ] {
        let s = load_env(base(), &[("AUTH0_CLIENT__SERVER__TRUSTEDPROXIES", text)]);
        assert_eq!(proxies(&s), ["10.0.3.7/32", "10.244.0.0/16"], "{text:?}");
    }
    let s = load_env(base(), &[("AUTH0_CLIENT__SERVER__TRUSTEDPROXIES", "[]")]);
    assert!(s.server.trusted_proxies.is_empty());
}

#[test]
fn overrides_win_over_the_file_and_redis_variables() {
    let doc = with(base(), "/sessions", json!({"path": "from-file"}));
    let s = load_env(
        doc,
        &[
            ("AUTH0_CLIENT__SESSIONS__PATH", "from-env"),
            ("REDIS_HOSTS", "a"),
            ("AUTH0_CLIENT__SESSIONS__REDIS__HOSTS", "b:1"),
        ],
    );
    assert_eq!(s.sessions.path, PathBuf::from("from-env"));
    assert_eq!(s.sessions.redis.hosts, ["b:1"]);
}

#[test]
fn the_pending_login_caps_can_be_overridden() {
    let s = load_env(
        base(),
        &[
            ("AUTH0_CLIENT__SESSIONS__MAXPENDINGLOGINS", "2000"),
            ("AUTH0_CLIENT__SESSIONS__MAXPENDINGLOGINSPERIP", "20"),
        ],
    );
    assert_eq!(s.sessions.max_pending_logins, 2000);
    assert_eq!(s.sessions.max_pending_logins_per_ip, 20);
    let err = error_env(
        base(),
        &[("AUTH0_CLIENT__SESSIONS__MAXPENDINGLOGINSPERIP", "0")],
    );
    assert_error(
        &err,
        "sessions.maxPendingLoginsPerIp",
        &[
            "greater than 0",
            "set by AUTH0_CLIENT__SESSIONS__MAXPENDINGLOGINSPERIP",
        ],
    );
}

#[test]
fn override_errors_name_the_variable() {
    let err = error_env(base(), &[("AUTH0_CLIENT__SERVER__PORT", "1")]);
    assert_error(
        &err,
        "AUTH0_CLIENT__SERVER__PORT",
        &["`PORT` is not a key of `server`"],
    );
    let err = error_env(base(), &[("AUTH0_CLIENT__JOBS__RETENTIONDAYS", "forever")]);
    assert_error(
        &err,
        "jobs.retentionDays",
        &["set by AUTH0_CLIENT__JOBS__RETENTIONDAYS"],
    );
    let err = error_env(base(), &[("AUTH0_CLIENT__CLIENTS__MOBILE__CLIENTID", "m")]);
    assert_error(
        &err,
        "clients.MOBILE.auth0Url",
        &["missing", "set by AUTH0_CLIENT__CLIENTS__MOBILE__CLIENTID"],
    );
    let err = error_env(base(), &[("AUTH0_CLIENT__SERVER", "{\"bnid\": \"::\"}")]);
    assert_error(&err, "server.bnid", &["set by AUTH0_CLIENT__SERVER"]);
}

#[test]
fn errors_from_a_file_name_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.json");
    std::fs::write(
        &path,
        with(base(), "/defaultClient", json!("nope")).to_string(),
    )
    .expect("write");
    let message = Settings::load(Some(&path), &Env::default())
        .expect_err("bad")
        .to_string();
    assert!(
        message.contains(&format!("in {}", path.display())),
        "{message}"
    );
}

// ---- secrets ----

fn everything_secret() -> (Value, Env) {
    let doc = with(
        with(
            management(json!({})),
            "/apiKeys",
            json!([{"key": "api-key-value-1", "clientType": "web"}, {"key": "api-key-value-2", "clientType": "web", "management": true}]),
        ),
        "/plugins",
        json!([{"path": "libx.so"}]),
    );
    let env = env(&[
        ("REDIS_HOSTS", "cache"),
        ("REDIS_PASSWORD", "redis-password-value"),
    ]);
    (doc, env)
}

#[test]
fn secrets_never_appear_in_redacted_json_or_debug() {
    let (doc, env) = everything_secret();
    let s = Settings::from_value(doc, &env).expect("valid");
    let redacted = serde_json::to_string(&s.redacted_json()).expect("json");
    let debug = format!("{s:?}");
    for secret in SECRETS {
        assert!(!redacted.contains(secret), "{secret} leaked in {redacted}");
        assert!(!debug.contains(secret), "{secret} leaked in {debug}");
    }
    let json = s.redacted_json();
    assert_eq!(json["clients"]["web"]["clientSecret"], REDACTED);
    assert_eq!(json["managementClient"]["clientSecret"], REDACTED);
    assert_eq!(json["sessions"]["redis"]["password"], REDACTED);
    assert_eq!(json["apiKeys"][0]["key"], REDACTED);
    assert_eq!(json["apiKeys"][1]["key"], REDACTED);
    // The secrets are still there for the code that needs them.
    assert_eq!(s.api_keys[1].key.expose_secret(), "api-key-value-2");
}

#[test]
fn redacted_json_shows_the_effective_config_with_the_environment() {
    let (doc, _) = everything_secret();
    let s = Settings::from_value(doc, &env(&[("HTTP_PORT", "9000"), ("SERVICE_PREFIX", "x")]))
        .expect("valid");
    let json = s.redacted_json();
    assert_eq!(json["environment"]["HTTP_PORT"], 9000);
    assert_eq!(json["environment"]["SERVICE_PREFIX"], "/x");
    assert_eq!(json["environment"]["LOG_LEVEL"], "info");
    assert_eq!(json["environment"]["SESSION_DURATION_SECONDS"], 86_400);
    assert_eq!(json["environment"]["ORIGINAL_PROTOCOL_HEADER"], Value::Null);
    assert_eq!(json["server"]["bind"], "0.0.0.0");
    assert_eq!(json["server"]["trustedProxies"][0], "127.0.0.0/8");
    assert_eq!(json["sessions"]["store"], "sled");
    assert_eq!(json["sessions"]["path"], "data");
    assert_eq!(json["jobs"]["retentionDays"], 30);
    assert_eq!(json["plugins"][0]["onError"], "fail-open");
    assert_eq!(
        json["clients"]["web"]["auth0Url"],
        "https://tenant.eu.auth0.com/"
    );
    assert_eq!(
        json["clients"]["web"]["supportedSigningAlgs"],
        json!(["RS256"])
    );
    assert_eq!(json["auth0TenantUrl"], Value::Null);
    assert!(json["server"].get("httpPort").is_none());
}

#[test]
fn redacted_json_is_itself_a_valid_config() {
    // Without the environment block, the output loads back into the same settings (secrets aside):
    // the printed keys are exactly the accepted ones.
    let doc = with(
        with(
            management(
                json!({"supportedConnectionsMap": {"db": {"connectionId": "c"}}, "defaultManagementConnectionName": "db"}),
            ),
            "/apiKeys",
            json!([{"key": "api-key-value-1", "clientType": "web"}]),
        ),
        "/plugins",
        json!([{"path": "libx.so", "sha256": "ab".repeat(32), "config": {"a": 1}}]),
    );
    let e = env(&[
        ("REDIS_HOSTS", "cache"),
        ("REDIS_PASSWORD", "redis-password-value"),
    ]);
    let first = Settings::from_value(doc, &e)
        .expect("valid")
        .redacted_json();
    let mut reloaded_doc = first.clone();
    let members = reloaded_doc.as_object_mut().expect("object");
    members.remove("environment");
    members.remove("sources");
    let mut second = Settings::from_value(reloaded_doc, &Env::default())
        .expect("reloads")
        .redacted_json();
    // The list in force is now written in the file: the same list, set rather than defaulted.
    assert_eq!(
        second["sources"]["server.trustedProxies"],
        "server.trustedProxies is set"
    );
    let mut first = first;
    for doc in [&mut first, &mut second] {
        let members = doc.as_object_mut().expect("object");
        members.remove("sources");
    }
    assert_eq!(first, second);
}

#[test]
fn map_keys_are_taken_verbatim() {
    // Client types and connection names are the operator's names: dots and case are kept.
    let doc = json!({"clients": {"my.App": web_client()}, "defaultClient": "my.App"});
    let s = load(doc);
    assert!(s.client("my.App").is_some());
    let err = error(json!({"clients": {"my.App": with(web_client(), "/sameSite", json!("lax"))}}));
    assert_error(&err, "clients.my.App.sameSite", &[]);
}

#[test]
fn env_from_process_snapshots_the_environment() {
    let snapshot = Env::from_process();
    if let Ok(path) = std::env::var("PATH") {
        assert_eq!(snapshot.get_raw("PATH"), Some(path.as_str()));
    }
    let pairs = Env::from_pairs(vec![
        ("A".to_owned(), "1".to_owned()),
        ("A".to_owned(), "2".to_owned()),
    ]);
    assert_eq!(pairs.get("A"), Some("2"));
}

/// The trusted-proxy default is a function of the environment (SPEC §3): loopback alone, or
/// loopback plus the private ranges when `ORIGINAL_PROTOCOL_HEADER` says a gateway fronts the
/// daemon; a set key always wins.
#[test]
fn the_trusted_proxies_default_follows_original_protocol_header() {
    const GATEWAY: &[(&str, &str)] = &[("ORIGINAL_PROTOCOL_HEADER", "x-forwarded-proto")];
    let gateway_warning = |s: &Settings| {
        s.warnings
            .iter()
            .any(|w| w.contains("ORIGINAL_PROTOCOL_HEADER") && w.contains("server.allowedHosts"))
    };

    let s = load(base());
    assert_eq!(proxies(&s), ["127.0.0.0/8", "::1/128"]);
    assert_eq!(
        s.server.trusted_proxies_source,
        TrustedProxiesSource::Loopback
    );
    assert!(!gateway_warning(&s), "{:?}", s.warnings);

    let s = load_env(base(), GATEWAY);
    assert_eq!(
        proxies(&s),
        [
            "127.0.0.0/8",
            "::1/128",
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "fc00::/7"
        ]
    );
    assert_eq!(
        s.server.trusted_proxies_source,
        TrustedProxiesSource::Gateway
    );
    // A pod in those ranges could choose a logout's returnTo host: said at start.
    assert!(gateway_warning(&s), "{:?}", s.warnings);
    let json = s.redacted_json();
    assert_eq!(json["server"]["trustedProxies"][2], "10.0.0.0/8");
    let reason = json["sources"]["server.trustedProxies"]
        .as_str()
        .expect("reason");
    assert!(
        reason.contains("ORIGINAL_PROTOCOL_HEADER is set"),
        "{reason}"
    );

    // With the public hosts listed, the forged-host risk is closed: no warning.
    let s = load_env(
        with(
            base(),
            "/server",
            json!({"allowedHosts": ["app.example.com"]}),
        ),
        GATEWAY,
    );
    assert_eq!(s.server.trusted_proxies.len(), 6);
    assert!(!gateway_warning(&s), "{:?}", s.warnings);

    // A set key wins, in the file or by an override, even an empty one.
    for (doc, pairs, want) in [
        (
            with(base(), "/server", json!({"trustedProxies": ["10.1.2.3"]})),
            GATEWAY.to_vec(),
            vec!["10.1.2.3/32"],
        ),
        (
            with(base(), "/server", json!({"trustedProxies": []})),
            GATEWAY.to_vec(),
            vec![],
        ),
        (
            base(),
            [
                GATEWAY,
                &[("AUTH0_CLIENT__SERVER__TRUSTEDPROXIES", "10.9.0.0/16")],
            ]
            .concat(),
            vec!["10.9.0.0/16"],
        ),
    ] {
        let s = load_env(doc, &pairs);
        assert_eq!(proxies(&s), want, "{pairs:?}");
        assert_eq!(
            s.server.trusted_proxies_source,
            TrustedProxiesSource::Configured
        );
        assert!(!gateway_warning(&s), "{:?}", s.warnings);
        assert_eq!(
            s.redacted_json()["sources"]["server.trustedProxies"],
            "server.trustedProxies is set"
        );
    }
}

#[test]
fn log_format_from_the_file_or_log_format() {
    assert_eq!(load(base()).server.log_format, LogFormat::Json);
    let mia = with(base(), "/server", json!({"logFormat": "mia"}));
    assert_eq!(load(mia.clone()).server.log_format, LogFormat::Mia);
    assert_eq!(
        load_env(base(), &[("LOG_FORMAT", "mia")]).server.log_format,
        LogFormat::Mia
    );
    // The variable wins over the file.
    assert_eq!(
        load_env(mia, &[("LOG_FORMAT", "json")]).server.log_format,
        LogFormat::Json
    );
    assert_error(
        &error(with(base(), "/server", json!({"logFormat": "logfmt"}))),
        "server.logFormat",
        &["`logfmt`", "mia"],
    );
    let err = error_env(base(), &[("LOG_FORMAT", "text")]);
    assert!(err.to_string().contains("LOG_FORMAT"), "{err}");
    // Before the config is loaded, logging reads the variables alone.
    assert_eq!(
        env(&[("LOG_FORMAT", "MIA"), ("LOG_LEVEL", "WARN")]).logging(),
        ("warn".to_owned(), LogFormat::Mia)
    );
    assert_eq!(
        env(&[("LOG_FORMAT", "text")]).logging(),
        ("info".to_owned(), LogFormat::Json)
    );
}

#[test]
fn session_encryption_keys_come_from_the_file_or_the_environment_checked_and_redacted() {
    const ONE: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    const TWO: &str = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";
    assert!(load(base()).sessions.encryption_keys.is_empty());
    let s = load(with(base(), "/sessions", json!({"encryptionKeys": [ONE]})));
    assert_eq!(s.sessions.encryption_keys.len(), 1);
    // The environment wins, comma-separated, the first one sealing.
    let s = load_env(
        with(base(), "/sessions", json!({"encryptionKeys": [ONE]})),
        &[("SESSION_ENCRYPTION_KEYS", &format!("{TWO}, {ONE}"))],
    );
    let keys: Vec<&str> = s
        .sessions
        .encryption_keys
        .iter()
        .map(|k| k.expose_secret())
        .collect();
    assert_eq!(keys, [TWO, ONE]);
    let shown = serde_json::to_string(&s.redacted_json()).expect("json");
    assert!(!shown.contains(ONE) && !shown.contains(TWO), "{shown}");
    assert_eq!(
        s.redacted_json()["sessions"]["encryptionKeys"],
        json!([REDACTED, REDACTED])
    );
    assert!(!format!("{s:?}").contains(ONE));
    // Not 32 bytes: refused, by position, without the value.
    let err = error_env(base(), &[("SESSION_ENCRYPTION_KEYS", "c2hvcnQ=")]);
    assert_error(&err, "sessions.encryptionKeys", &["entry 1", "32 bytes"]);
    assert!(!err.to_string().contains("c2hvcnQ="));
}

/// The packaged template (/etc/auth0-client/auth0-client.toml) refuses to load, naming every key
/// left to fill at once; filled, it loads with nothing else to change.
#[test]
fn packaged_template_names_every_key_to_fill_then_loads_once_filled() {
    let template = example("auth0-client.template.toml");
    let err = Settings::load(Some(&template), &env(&[])).expect_err("a template");
    let ConfigError::Placeholders { keys } = &err else {
        panic!("not a placeholder error: {err}");
    };
    let mut keys = keys.clone();
    keys.sort();
    assert_eq!(
        keys,
        [
            "clients.web.auth0Url",
            "clients.web.clientId",
            "clients.web.clientSecret",
            "clients.web.redirectUrl",
        ]
    );
    let message = err.to_string();
    for key in &keys {
        assert!(message.contains(key.as_str()), "{message}");
    }

    let text = std::fs::read_to_string(&template).expect("template");
    let filled = text
        .replace(
            "\"FILL-ME: https://<tenant>.<region>.auth0.com/\"",
            "\"https://tenant.eu.auth0.com/\"",
        )
        .replace("\"FILL-ME: client id\"", "\"web-id\"")
        .replace("\"FILL-ME: client secret\"", "\"${WEB_CLIENT_SECRET}\"")
        .replace(
            "\"FILL-ME: https://<this host>/web-login/callback\"",
            "\"https://app.example.com/web-login/callback\"",
        );
    assert!(!filled.contains("= \"FILL-ME"), "{filled}");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("auth0-client.toml");
    std::fs::write(&path, filled).expect("write");
    let s = Settings::load(
        Some(&path),
        &env(&[("WEB_CLIENT_SECRET", "web-secret-value")]),
    )
    .expect("filled template loads");
    let web = s.client("web").expect("web");
    assert_eq!(web.client_secret.expose_secret(), "web-secret-value");
    assert_eq!(s.default_client.as_deref(), Some("web"));
}

#[test]
fn a_placeholder_anywhere_is_named_even_inside_lists() {
    let doc = with(
        base(),
        "/clients/web/scopes",
        json!(["openid", "FILL-ME scope"]),
    );
    let err = Settings::from_value(doc, &env(&[])).expect_err("placeholder");
    assert_eq!(err.key(), Some("clients.web.scopes.1"), "{err}");
}
