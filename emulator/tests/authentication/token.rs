//! `/oauth/token`: every grant, both body encodings, Basic auth, rotation and reuse detection.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{API, DB, NS, PARTNERS, Tenant, claims, header, keys_of};

#[tokio::test]
async fn password_realm_issues_auth0_shaped_tokens() {
    let tenant = Tenant::start();
    let body = tenant.login("alice@example.com", "alice-pw").await;
    assert_eq!(
        keys_of(&body),
        [
            "access_token",
            "expires_in",
            "id_token",
            "refresh_token",
            "scope",
            "token_type"
        ]
    );
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 86400);
    assert_eq!(body["scope"], "openid profile email offline_access");
    assert!(body["refresh_token"].as_str().unwrap().starts_with("v1."));

    let issuer = tenant.emulator.issuer();
    let id_token = body["id_token"].as_str().unwrap();
    let id = Value::Object(tenant.emulator.tenant().verify(id_token).unwrap());
    assert_eq!(header(id_token)["kid"], tenant.emulator.current_kid());
    assert_eq!(header(id_token)["alg"], "RS256");
    assert_eq!(id["iss"], issuer.as_str());
    assert!(issuer.ends_with('/'));
    assert_eq!(id["aud"], "web");
    assert_eq!(id["sub"], "auth0|alice");
    assert_eq!(id["email"], "alice@example.com");
    assert_eq!(id["email_verified"], true);
    assert_eq!(id["nickname"], "ally");
    assert_eq!(id["name"], "alice@example.com");
    assert_eq!(
        id[format!("{NS}app_metadata")],
        json!({"groups": ["admin"]})
    );
    assert_eq!(id[format!("{NS}user_metadata")], json!({"theme": "dark"}));
    assert_eq!(
        id["exp"].as_i64().unwrap() - id["iat"].as_i64().unwrap(),
        36000
    );
    assert!(id.get("nonce").is_none());

    let access = Value::Object(
        tenant
            .emulator
            .tenant()
            .verify(body["access_token"].as_str().unwrap())
            .unwrap(),
    );
    assert_eq!(
        access["aud"],
        json!([API, format!("{}/userinfo", tenant.emulator.base_url())])
    );
    assert_eq!(access["azp"], "web");
    assert_eq!(access["gty"], "password");
    assert_eq!(access["scope"], "openid profile email offline_access");
    assert_eq!(
        access["exp"].as_i64().unwrap() - access["iat"].as_i64().unwrap(),
        86400
    );
}

#[tokio::test]
async fn form_body_and_basic_auth_are_accepted() {
    let tenant = Tenant::start();
    let response = tenant
        .http
        .post(tenant.url("/oauth/token"))
        .basic_auth("web", Some("web-secret"))
        .form(&[
            (
                "grant_type",
                "http://auth0.com/oauth/grant-type/password-realm",
            ),
            ("username", "alice"),
            ("password", "alice-pw"),
            ("realm", DB),
            ("scope", "openid"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert!(
        body.get("refresh_token").is_none(),
        "no offline_access, no refresh token"
    );
    // No audience: an opaque access token, good at /userinfo only.
    assert_eq!(body["access_token"].as_str().unwrap().split('.').count(), 1);

    let wrong = tenant
        .http
        .post(tenant.url("/oauth/token"))
        .basic_auth("web", Some("nope"))
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "alice-pw"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn null_and_empty_fields_are_absent_like_auth0_python_sends_them() {
    let tenant = Tenant::start();
    // auth0-python 4.x login(): realm, scope and audience sent as null (wire reference §1.1).
    let (status, body) = tenant
        .token(json!({"client_id": "web", "username": "alice@example.com", "password": "alice-pw", "realm": null,
            "scope": null, "audience": null, "grant_type": "password", "client_secret": "web-secret"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "openid profile email address phone");
    let (status, body) = tenant
        .token(json!({"client_id": "web", "username": "alice@example.com", "password": "alice-pw", "realm": "",
            "scope": "", "audience": "", "grant_type": "password", "client_secret": "web-secret"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn password_uses_the_default_directory_and_realm_picks_the_connection() {
    let tenant = Tenant::start();
    let password = |user: &str, pw: &str| {
        json!({"grant_type": "password", "client_id": "web", "client_secret": "web-secret", "username": user,
               "password": pw})
    };
    // Omitted defaultDirectory: the first connection (DB), where bob is not.
    let (status, body) = tenant.token(password("bob@partner.test", "bob-pw")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("invalid_grant"))
    );
    let (status, _) = tenant
        .token(json!({"grant_type": "http://auth0.com/oauth/grant-type/password-realm", "client_id": "web",
            "client_secret": "web-secret", "username": "bob@partner.test", "password": "bob-pw", "realm": PARTNERS}))
        .await;
    assert_eq!(status, StatusCode::OK);
    // Emails match case-insensitively; usernames work too.
    let (status, _) = tenant
        .token(password("ALICE@example.com", "alice-pw"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = tenant.token(password("alice", "alice-pw")).await;
    assert_eq!(status, StatusCode::OK);
    // The login is recorded on the user.
    let user = tenant.emulator.user("alice").unwrap();
    assert_eq!(user["logins_count"], 2);
    assert!(user["last_login"].is_string());
}

#[tokio::test]
async fn rotation_issues_a_new_token_and_reuse_revokes_the_family() {
    let tenant = Tenant::start();
    let first = tenant.login("alice@example.com", "alice-pw").await["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = tenant.refresh("web", Some("web-secret"), &first).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        keys_of(&body),
        [
            "access_token",
            "expires_in",
            "id_token",
            "refresh_token",
            "scope",
            "token_type"
        ]
    );
    let second = body["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(first, second);
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["gty"],
        "refresh_token"
    );

    // The rotated token again: reuse. Refused, and the whole family with it, the newest token included.
    let (status, body) = tenant.refresh("web", Some("web-secret"), &first).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        json!({"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."})
    );
    let (status, _) = tenant.refresh("web", Some("web-secret"), &second).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let families: Value = tenant
        .http
        .get(tenant.url("/__emulator/refresh-tokens"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(families[0]["ended"], "reuse detected");
    assert_eq!(families[0]["tokens"], 2);
}

#[tokio::test]
async fn rotation_overlap_lets_the_previous_token_be_used_again() {
    let tenant = Tenant::start();
    tenant
        .emulator
        .update_settings(|s| s.refresh_token_leeway_seconds = 30);
    let first = tenant.login("alice@example.com", "alice-pw").await["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, body) = tenant.refresh("web", Some("web-secret"), &first).await;
    let second = body["refresh_token"].as_str().unwrap().to_string();
    let (status, body) = tenant.refresh("web", Some("web-secret"), &first).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["refresh_token"].is_string());
    assert_ne!(body["refresh_token"].as_str().unwrap(), second);
}

#[tokio::test]
async fn a_non_rotating_client_keeps_its_refresh_token() {
    let tenant = Tenant::start();
    let (status, body) = tenant
        .token(json!({"grant_type": "password", "client_id": "plain", "client_secret": "plain-secret",
            "username": "alice@example.com", "password": "alice-pw", "scope": "openid offline_access"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let token = body["refresh_token"].as_str().unwrap().to_string();
    for _ in 0..2 {
        let (status, body) = tenant.refresh("plain", Some("plain-secret"), &token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // The documented non-rotating answer (wire reference §1.4): no refresh_token.
        assert_eq!(
            keys_of(&body),
            [
                "access_token",
                "expires_in",
                "id_token",
                "scope",
                "token_type"
            ]
        );
    }
    // auth0-python's refresh_token() sends scope "" by default: the original scope is kept.
    let (status, body) = tenant
        .token(json!({"grant_type": "refresh_token", "client_id": "plain", "client_secret": "plain-secret",
            "refresh_token": token, "scope": ""}))
        .await;
    assert_eq!(
        (status, body["scope"].as_str()),
        (StatusCode::OK, Some("openid offline_access"))
    );
    // Narrowing works, widening does not.
    let (status, body) = tenant
        .token(json!({"grant_type": "refresh_token", "client_id": "plain", "client_secret": "plain-secret",
            "refresh_token": token, "scope": "offline_access"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.get("id_token").is_none());
    let (status, body) = tenant
        .token(json!({"grant_type": "refresh_token", "client_id": "plain", "client_secret": "plain-secret",
            "refresh_token": token, "scope": "openid email"}))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("invalid_scope"))
    );
    // Another client cannot use it.
    let (status, _) = tenant.refresh("web", Some("web-secret"), &token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn blocking_or_deleting_the_user_stops_refreshes() {
    let tenant = Tenant::start();
    let token = tenant.login("alice@example.com", "alice-pw").await["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(tenant.emulator.set_blocked("alice@example.com", true));
    let (status, body) = tenant.refresh("web", Some("web-secret"), &token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        json!({"error": "invalid_grant", "error_description": "user is blocked"})
    );
    assert!(tenant.emulator.set_blocked("alice@example.com", false));
    let (status, body) = tenant.refresh("web", Some("web-secret"), &token).await;
    assert_eq!(status, StatusCode::OK);
    let token = body["refresh_token"].as_str().unwrap().to_string();
    tenant.emulator.tenant().data().remove_user("auth0|alice");
    let (status, body) = tenant.refresh("web", Some("web-secret"), &token).await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (
            StatusCode::FORBIDDEN,
            Some("Unknown or invalid refresh token.")
        )
    );
}

#[tokio::test]
async fn refresh_token_lifetime_is_absolute() {
    let tenant = Tenant::start();
    tenant
        .emulator
        .update_settings(|s| s.refresh_token_seconds = 1);
    let token = tenant.login("alice@example.com", "alice-pw").await["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, _) = tenant.refresh("web", Some("web-secret"), &token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn client_credentials_issue_management_and_api_tokens() {
    let tenant = Tenant::start();
    let audience = tenant.emulator.management_audience();
    assert_eq!(audience, format!("{}/api/v2/", tenant.emulator.base_url()));
    let (status, body) = tenant
        .token_form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "m2m"),
            ("client_secret", "m2m-secret"),
            ("audience", &audience),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        keys_of(&body),
        ["access_token", "expires_in", "scope", "token_type"]
    );
    let token = body["access_token"].as_str().unwrap();
    let token_claims = claims(token);
    assert_eq!(token_claims["sub"], "m2m@clients");
    assert_eq!(token_claims["aud"], audience.as_str());
    assert_eq!(token_claims["gty"], "client-credentials");
    assert_eq!(token_claims["azp"], "m2m");
    assert!(
        body["scope"]
            .as_str()
            .unwrap()
            .split(' ')
            .any(|s| s == "read:users")
    );
    let info = tenant
        .emulator
        .tenant()
        .check_management_token(Some(&format!("Bearer {token}")))
        .unwrap();
    assert_eq!(info.client_id, "m2m");

    // A narrower scope may be asked for.
    let (_, body) = tenant
        .token(json!({"grant_type": "client_credentials", "client_id": "m2m", "client_secret": "m2m-secret",
            "audience": audience, "scope": "read:users"}))
        .await;
    assert_eq!(body["scope"], "read:users");
    // A seed API.
    let (status, body) = tenant
        .token(json!({"grant_type": "client_credentials", "client_id": "m2m", "client_secret": "m2m-secret",
            "audience": API}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(claims(body["access_token"].as_str().unwrap())["aud"], API);
    // Management token lifetime is its own setting.
    tenant
        .emulator
        .update_settings(|s| s.management_token_seconds = 5);
    let (_, body) = tenant
        .token(json!({"grant_type": "client_credentials", "client_id": "m2m", "client_secret": "m2m-secret",
            "audience": audience}))
        .await;
    assert_eq!(body["expires_in"], 5);
    // A public client cannot use the grant.
    let (status, body) = tenant
        .token(
            json!({"grant_type": "client_credentials", "client_id": "spa", "audience": audience}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("unauthorized_client"))
    );
}

#[tokio::test]
async fn requests_can_come_from_any_runtime() {
    // The handle's server runs on its own thread: a plain thread with no runtime can start and use it.
    let tenant = std::thread::spawn(Tenant::start).join().unwrap();
    let (status, _) = tenant.token(json!({"grant_type": "password"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn works_from_an_actix_test_too() {
    let tenant = Tenant::start();
    let body = tenant.login("alice@example.com", "alice-pw").await;
    assert!(body["access_token"].is_string());
}

/// A client seeded with `idTokenAlg: HS256` gets ID tokens signed with its own secret (Auth0's
/// "JSON Web Token Signature Algorithm: HS256"); the access token stays RS256 with the tenant's key.
#[tokio::test]
async fn an_hs256_client_gets_id_tokens_signed_with_its_secret() {
    let mut seed = crate::common::seed();
    let web = seed
        .clients
        .iter_mut()
        .find(|c| c.client_id == "web")
        .unwrap();
    web.id_token_alg = Some("HS256".into());
    let tenant = Tenant::with_seed(seed);
    for body in [
        tenant.login("alice@example.com", "alice-pw").await,
        tenant
            .refresh(
                "web",
                Some("web-secret"),
                tenant.login("alice@example.com", "alice-pw").await["refresh_token"]
                    .as_str()
                    .unwrap(),
            )
            .await
            .1,
    ] {
        let id_token = body["id_token"].as_str().unwrap();
        assert_eq!(header(id_token), json!({"alg": "HS256", "typ": "JWT"}));
        let (signed, signature) = id_token.rsplit_once('.').unwrap();
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, b"web-secret");
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        assert!(aws_lc_rs::hmac::verify(&key, signed.as_bytes(), &signature).is_ok());
        assert_eq!(claims(id_token)["sub"], "auth0|alice");
        assert_eq!(
            header(body["access_token"].as_str().unwrap())["alg"],
            "RS256"
        );
    }
    // Another client of the tenant keeps RS256.
    let (status, body) = tenant
        .token(
            json!({"grant_type": "password", "client_id": "plain", "client_secret": "plain-secret",
            "username": "alice@example.com", "password": "alice-pw", "scope": "openid"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(header(body["id_token"].as_str().unwrap())["alg"], "RS256");
}

#[test]
fn an_hs256_client_needs_a_secret_and_no_other_alg_is_seeded() {
    let mut seed = crate::common::seed();
    seed.clients[0].id_token_alg = Some("PS256".into());
    assert!(seed.validate().unwrap_err().to_string().contains("PS256"));
    let public = seed
        .clients
        .iter_mut()
        .find(|c| c.client_id == "spa")
        .unwrap();
    public.id_token_alg = Some("HS256".into());
    seed.clients[0].id_token_alg = None;
    assert!(
        seed.validate()
            .unwrap_err()
            .to_string()
            .contains("clientSecret")
    );
}
