//! Test tenant and request helpers shared by the Authentication and control API tests.

use std::collections::HashMap;

use auth0_emulator::{
    Emulator, EmulatorHandle, Seed, SeedApi, SeedClient, SeedConnection, SeedUser,
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::{Client, Response, StatusCode, redirect::Policy};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

pub const DB: &str = "Username-Password-Authentication";
pub const PARTNERS: &str = "Partners";
pub const API: &str = "https://api.test/";
pub const NS: &str = "https://ns.test/";
pub const CALLBACK: &str = "http://app.test/callback";
pub const LOGOUT: &str = "http://app.test/";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// `web` (confidential, rotation, callbacks and logout URLs), `spa` (public, rotation), `plain` (no rotation,
/// no callbacks), `m2m` (client credentials only), `ropg` (password grant only); users alice (DB), bob
/// (Partners), carol (DB, blocked).
pub fn seed() -> Seed {
    let client = |id: &str, secret: Option<&str>| SeedClient {
        client_id: id.into(),
        client_secret: secret.map(str::to_string),
        ..SeedClient::default()
    };
    let user = |email: &str, connection: &str, id: &str| SeedUser {
        email: email.into(),
        password: format!("{}-pw", email.split('@').next().unwrap_or_default()),
        connection: connection.into(),
        user_id: Some(id.into()),
        ..SeedUser::default()
    };
    Seed {
        clients: vec![
            SeedClient {
                refresh_token_rotation: Some(true),
                callbacks: vec![CALLBACK.into()],
                logout_urls: vec![LOGOUT.into(), "http://*.app.test/bye".into()],
                ..client("web", Some("web-secret"))
            },
            SeedClient {
                refresh_token_rotation: Some(true),
                ..client("spa", None)
            },
            client("plain", Some("plain-secret")),
            SeedClient {
                grants: Some(vec!["client_credentials".into()]),
                ..client("m2m", Some("m2m-secret"))
            },
            SeedClient {
                grants: Some(vec!["password".into()]),
                ..client("ropg", Some("ropg-secret"))
            },
        ],
        apis: vec![SeedApi {
            identifier: API.into(),
        }],
        connections: vec![
            SeedConnection {
                name: DB.into(),
                id: "con_TestDatabase0001".into(),
            },
            SeedConnection {
                name: PARTNERS.into(),
                id: "con_TestPartners0001".into(),
            },
        ],
        default_directory: None,
        users: vec![
            SeedUser {
                username: Some("alice".into()),
                nickname: Some("ally".into()),
                app_metadata: Some(Map::from_iter([("groups".to_string(), json!(["admin"]))])),
                user_metadata: Some(Map::from_iter([("theme".to_string(), json!("dark"))])),
                ..user("alice@example.com", DB, "alice")
            },
            user("bob@partner.test", PARTNERS, "auth0|bob"),
            SeedUser {
                blocked: Some(true),
                ..user("carol@example.com", DB, "carol")
            },
        ],
        custom_claims_namespace: Some(NS.into()),
        job_seconds: None,
        unique_access_tokens: false,
    }
}

pub struct Tenant {
    pub emulator: EmulatorHandle,
    pub http: Client,
}

impl Tenant {
    pub fn start() -> Self {
        Self::with_seed(seed())
    }

    pub fn with_seed(seed: Seed) -> Self {
        let emulator = Emulator::start(seed).unwrap();
        let http = Client::builder().redirect(Policy::none()).build().unwrap();
        Self { emulator, http }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.emulator.base_url())
    }

    /// GET `path`, its body as JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `POST /oauth/token` with a JSON body.
    pub async fn token(&self, body: Value) -> (StatusCode, Value) {
        json_of(
            self.http
                .post(self.url("/oauth/token"))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// `POST /oauth/token` with a form body.
    pub async fn token_form(&self, fields: &[(&str, &str)]) -> (StatusCode, Value) {
        json_of(
            self.http
                .post(self.url("/oauth/token"))
                .form(fields)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// A password-realm login of `web` with `openid profile email offline_access` and the API audience.
    pub async fn login(&self, username: &str, password: &str) -> Value {
        let (status, body) = self
            .token(json!({"grant_type": "http://auth0.com/oauth/grant-type/password-realm", "client_id": "web",
                "client_secret": "web-secret", "username": username, "password": password, "realm": DB,
                "scope": "openid profile email offline_access", "audience": API}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    pub async fn refresh(
        &self,
        client: &str,
        secret: Option<&str>,
        token: &str,
    ) -> (StatusCode, Value) {
        self.token(
            json!({"grant_type": "refresh_token", "client_id": client, "client_secret": secret,
            "refresh_token": token}),
        )
        .await
    }

    /// `GET /authorize` with `params`; returns the response (redirects are not followed).
    pub async fn authorize(&self, params: &[(&str, &str)]) -> Response {
        self.http
            .get(self.url("/authorize"))
            .query(params)
            .send()
            .await
            .unwrap()
    }

    /// The code flow's first leg with the shortcut: the `code` and `state` of the redirect.
    pub async fn code_for(&self, extra: &[(&str, &str)]) -> HashMap<String, String> {
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", CALLBACK),
            ("scope", "openid profile email offline_access"),
            ("state", "xyz"),
            ("login_hint", "alice@example.com"),
            ("password", "alice-pw"),
        ];
        params.extend_from_slice(extra);
        let response = self.authorize(&params).await;
        assert_eq!(
            response.status(),
            StatusCode::FOUND,
            "{}",
            response.text().await.unwrap()
        );
        redirect_params(&response, CALLBACK)
    }
}

pub async fn json_of(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// The query parameters of a redirect to `target`.
pub fn redirect_params(response: &Response, target: &str) -> HashMap<String, String> {
    let location = response.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with(target),
        "{location} does not go to {target}"
    );
    let url = url::Url::parse(location).unwrap();
    url.query_pairs().into_owned().collect()
}

pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The unverified claims of a JWT.
pub fn claims(token: &str) -> Value {
    Value::Object(auth0_emulator::jwt::decode_unverified(token).unwrap())
}

/// The unverified header of a JWT.
pub fn header(token: &str) -> Value {
    let part = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

pub fn keys_of(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}
