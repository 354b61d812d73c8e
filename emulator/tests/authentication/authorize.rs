//! `/authorize`, the login form, PKCE, the code exchange, `/userinfo` and `/v2/logout`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{API, CALLBACK, LOGOUT, NS, Tenant, VERIFIER, claims, redirect_params, s256};

fn exchange(code: &str, verifier: Option<&str>, redirect_uri: Option<&str>) -> Value {
    json!({"grant_type": "authorization_code", "client_id": "web", "client_secret": "web-secret", "code": code,
           "code_verifier": verifier, "redirect_uri": redirect_uri})
}

#[tokio::test]
async fn code_flow_with_pkce_nonce_and_state() {
    let tenant = Tenant::start();
    let challenge = s256(VERIFIER);
    let params = tenant
        .code_for(&[
            ("nonce", "n-123"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("audience", API),
        ])
        .await;
    assert_eq!(params["state"], "xyz");
    let code = &params["code"];
    let (status, body) = tenant
        .token(exchange(code, Some(VERIFIER), Some(CALLBACK)))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = claims(body["id_token"].as_str().unwrap());
    assert_eq!(id["nonce"], "n-123");
    assert_eq!(id["aud"], "web");
    assert!(id["sid"].is_string());
    assert_eq!(id[format!("{NS}app_metadata")]["groups"], json!(["admin"]));
    let access = claims(body["access_token"].as_str().unwrap());
    assert!(access.get("gty").is_none());
    assert!(body["refresh_token"].is_string());

    // Single use.
    let (status, body) = tenant
        .token(exchange(code, Some(VERIFIER), Some(CALLBACK)))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        json!({"error": "invalid_grant", "error_description": "Invalid authorization code"})
    );
}

#[tokio::test]
async fn pkce_failures() {
    let tenant = Tenant::start();
    let challenge = s256(VERIFIER);
    let refused =
        json!({"error": "invalid_grant", "error_description": "Failed to verify code verifier"});
    let with_pkce = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];

    let code = tenant.code_for(&with_pkce).await["code"].clone();
    let wrong = "x".repeat(43);
    assert_eq!(
        tenant
            .token(exchange(&code, Some(&wrong), Some(CALLBACK)))
            .await,
        (StatusCode::FORBIDDEN, refused.clone())
    );

    let code = tenant.code_for(&with_pkce).await["code"].clone();
    assert_eq!(
        tenant.token(exchange(&code, None, Some(CALLBACK))).await,
        (StatusCode::FORBIDDEN, refused.clone())
    );

    // The challenge itself sent as the verifier (a `plain` confusion) fails S256.
    let code = tenant.code_for(&with_pkce).await["code"].clone();
    assert_eq!(
        tenant
            .token(exchange(&code, Some(&challenge), Some(CALLBACK)))
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    // `plain`.
    let code = tenant
        .code_for(&[
            ("code_challenge", VERIFIER),
            ("code_challenge_method", "plain"),
        ])
        .await["code"]
        .clone();
    assert_eq!(
        tenant
            .token(exchange(&code, Some(VERIFIER), Some(CALLBACK)))
            .await
            .0,
        StatusCode::OK
    );

    // An unsupported method is an error redirect.
    let response = tenant
        .authorize(&[
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", CALLBACK),
            ("code_challenge", "abc"),
            ("code_challenge_method", "S512"),
            ("state", "s"),
        ])
        .await;
    assert_eq!(
        redirect_params(&response, CALLBACK)["error"],
        "invalid_request"
    );
}

#[tokio::test]
async fn redirect_uri_must_match_the_authorize_request() {
    let tenant = Tenant::start();
    let code = tenant.code_for(&[]).await["code"].clone();
    let (status, body) = tenant.token(exchange(&code, None, None)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["error_description"],
        "redirect_uri is required if it was included in the authorization request."
    );
    let code = tenant.code_for(&[]).await["code"].clone();
    let (status, body) = tenant
        .token(exchange(&code, None, Some("http://app.test/other")))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("invalid_grant"))
    );
    // A code of one client is useless to another.
    let code = tenant.code_for(&[]).await["code"].clone();
    let (status, _) = tenant
        .token(json!({"grant_type": "authorization_code", "client_id": "plain", "client_secret": "plain-secret",
            "code": code, "redirect_uri": CALLBACK}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn callbacks_are_checked_when_listed() {
    let tenant = Tenant::start();
    let response = tenant
        .authorize(&[
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", "http://evil.test/cb"),
        ])
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let page = response.text().await.unwrap();
    assert!(page.contains("Callback URL mismatch."), "{page}");
    assert!(
        page.contains("The provided redirect_uri is not in the list of allowed callback URLs.")
    );

    // `plain` lists none: any redirect_uri goes.
    let response = tenant
        .authorize(&[
            ("response_type", "code"),
            ("client_id", "plain"),
            ("redirect_uri", "http://any.test/cb"),
            ("login_hint", "alice"),
            ("password", "alice-pw"),
        ])
        .await;
    assert!(redirect_params(&response, "http://any.test/cb").contains_key("code"));

    // Without redirect_uri: the first callback.
    let response = tenant
        .authorize(&[
            ("response_type", "code"),
            ("client_id", "web"),
            ("login_hint", "alice"),
            ("password", "alice-pw"),
        ])
        .await;
    assert!(redirect_params(&response, CALLBACK).contains_key("code"));

    let response = tenant
        .authorize(&[("response_type", "code"), ("client_id", "nobody")])
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn login_form_round_trip() {
    let tenant = Tenant::start();
    let response = tenant
        .authorize(&[
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", CALLBACK),
            ("state", "s1"),
            ("scope", "openid"),
        ])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("<form method=\"post\" action=\"/u/login\">"),
        "{page}"
    );
    let txn = page
        .split("name=\"state\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();

    let wrong = tenant
        .http
        .post(tenant.url("/u/login"))
        .form(&[
            ("state", txn.as_str()),
            ("username", "alice@example.com"),
            ("password", "nope"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::OK);
    assert!(
        wrong
            .text()
            .await
            .unwrap()
            .contains("Wrong email or password.")
    );

    let right = tenant
        .http
        .post(tenant.url("/u/login"))
        .form(&[
            ("state", txn.as_str()),
            ("username", "alice@example.com"),
            ("password", "alice-pw"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), StatusCode::FOUND);
    assert!(
        right.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("auth0=")
    );
    let params = redirect_params(&right, CALLBACK);
    assert_eq!(params["state"], "s1");
    let (status, _) = tenant
        .token(exchange(&params["code"], None, Some(CALLBACK)))
        .await;
    assert_eq!(status, StatusCode::OK);

    // The transaction is used up.
    let again = tenant
        .http
        .post(tenant.url("/u/login"))
        .form(&[
            ("state", txn.as_str()),
            ("username", "alice@example.com"),
            ("password", "alice-pw"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn documented_authorize_errors_redirect() {
    let tenant = Tenant::start();
    let base = [
        ("response_type", "code"),
        ("client_id", "web"),
        ("redirect_uri", CALLBACK),
        ("state", "st"),
    ];
    let error_of = |extra: &'static [(&'static str, &'static str)]| {
        let mut params = base.to_vec();
        params.extend_from_slice(extra);
        params
    };

    let response = tenant
        .authorize(&error_of(&[
            ("login_hint", "carol@example.com"),
            ("password", "carol-pw"),
        ]))
        .await;
    let params = redirect_params(&response, CALLBACK);
    assert_eq!(
        (
            params["error"].as_str(),
            params["error_description"].as_str()
        ),
        ("unauthorized", "user is blocked")
    );
    assert_eq!(params["state"], "st");
    assert!(
        response.headers()["location"]
            .to_str()
            .unwrap()
            .contains("error_description=user+is+blocked")
            || response.headers()["location"]
                .to_str()
                .unwrap()
                .contains("error_description=user%20is%20blocked")
    );

    let response = tenant.authorize(&error_of(&[("prompt", "none")])).await;
    let params = redirect_params(&response, CALLBACK);
    assert_eq!(params["error"], "login_required");

    let response = tenant
        .authorize(&error_of(&[("audience", "https://nope.test/")]))
        .await;
    let params = redirect_params(&response, CALLBACK);
    assert_eq!(params["error"], "access_denied");
    assert_eq!(
        params["error_description"],
        "Service not found: https://nope.test/"
    );

    let response = tenant.authorize(&error_of(&[("connection", "nope")])).await;
    assert_eq!(
        redirect_params(&response, CALLBACK)["error"],
        "invalid_request"
    );

    let response = tenant
        .authorize(&[
            ("response_type", "token"),
            ("client_id", "web"),
            ("redirect_uri", CALLBACK),
        ])
        .await;
    assert_eq!(
        redirect_params(&response, CALLBACK)["error"],
        "unsupported_response_type"
    );
}

#[tokio::test]
async fn sso_cookie_enables_prompt_none_and_logout_ends_it() {
    let tenant = Tenant::start();
    let first = tenant
        .authorize(&[
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", CALLBACK),
            ("login_hint", "alice"),
            ("password", "alice-pw"),
        ])
        .await;
    let cookie = first.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let silent = tenant
        .http
        .get(tenant.url("/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", CALLBACK),
            ("prompt", "none"),
            ("nonce", "n2"),
        ])
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let params = redirect_params(&silent, CALLBACK);
    let (_, body) = tenant
        .token(exchange(&params["code"], None, Some(CALLBACK)))
        .await;
    assert_eq!(claims(body["id_token"].as_str().unwrap())["nonce"], "n2");

    let logout = tenant
        .http
        .get(tenant.url("/v2/logout"))
        .query(&[("client_id", "web"), ("returnTo", LOGOUT)])
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::FOUND);
    assert_eq!(logout.headers()["location"], LOGOUT);
    assert!(
        logout.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("auth0=;")
    );

    let silent = tenant
        .http
        .get(tenant.url("/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", CALLBACK),
            ("prompt", "none"),
        ])
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        redirect_params(&silent, CALLBACK)["error"],
        "login_required"
    );
}

#[tokio::test]
async fn logout_checks_return_to_against_logout_urls() {
    let tenant = Tenant::start();
    let logout = |query: Vec<(&'static str, &'static str)>| {
        let request = tenant.http.get(tenant.url("/v2/logout")).query(&query);
        async move { request.send().await.unwrap() }
    };
    let response = logout(vec![
        ("client_id", "web"),
        ("returnTo", "http://evil.test/"),
    ])
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("is not defined as a valid URL in &quot;Allowed Logout URLs&quot;"),
        "{page}"
    );

    let response = logout(vec![
        ("client_id", "web"),
        ("returnTo", "http://app.test/?redirect=%2Fhome"),
    ])
    .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let response = logout(vec![
        ("client_id", "web"),
        ("returnTo", "http://eu.app.test/bye"),
    ])
    .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    // client_id without returnTo: the first logout URL.
    let response = logout(vec![("client_id", "web")]).await;
    assert_eq!(response.headers()["location"], LOGOUT);
    // A client without logout URLs accepts any returnTo.
    let response = logout(vec![
        ("client_id", "plain"),
        ("returnTo", "http://anywhere.test/"),
    ])
    .await;
    assert_eq!(response.headers()["location"], "http://anywhere.test/");
    // Without client_id the clients' lists stand for the tenant's.
    let response = logout(vec![("returnTo", "http://evil.test/")]).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = logout(vec![]).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn userinfo_answers_by_scope_and_refuses_bad_tokens() {
    let tenant = Tenant::start();
    let body = tenant.login("alice@example.com", "alice-pw").await;
    let userinfo = |token: String| {
        let request = tenant.http.get(tenant.url("/userinfo")).bearer_auth(token);
        async move { request.send().await.unwrap() }
    };
    let response = userinfo(body["access_token"].as_str().unwrap().to_string()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    assert!(response.headers().contains_key("x-ratelimit-limit"));
    let info: Value = response.json().await.unwrap();
    assert_eq!(info["sub"], "auth0|alice");
    assert_eq!(info["email"], "alice@example.com");
    assert_eq!(info["nickname"], "ally");
    assert_eq!(
        info[format!("{NS}app_metadata")]["groups"],
        json!(["admin"])
    );

    // Opaque token, narrower scope: only what `openid email` allows.
    let (_, body) = tenant
        .token(
            json!({"grant_type": "password", "client_id": "web", "client_secret": "web-secret",
            "username": "alice", "password": "alice-pw", "scope": "openid email"}),
        )
        .await;
    let info: Value = userinfo(body["access_token"].as_str().unwrap().to_string())
        .await
        .json()
        .await
        .unwrap();
    assert!(info.get("nickname").is_none());
    assert_eq!(info["email_verified"], true);

    // An API token without openid is not a /userinfo token.
    let (_, body) = tenant
        .token(
            json!({"grant_type": "password", "client_id": "web", "client_secret": "web-secret",
            "username": "alice", "password": "alice-pw", "scope": "email", "audience": API}),
        )
        .await;
    let response = userinfo(body["access_token"].as_str().unwrap().to_string()).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.text().await.unwrap(), "Unauthorized");

    let response = tenant
        .http
        .get(tenant.url("/userinfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = userinfo("garbage".into()).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_access_token_can_be_made_to_expire_in_a_second() {
    let tenant = Tenant::start();
    tenant
        .emulator
        .update_settings(|s| s.access_token_seconds = 1);
    let body = tenant.login("alice@example.com", "alice-pw").await;
    assert_eq!(body["expires_in"], 1);
    let token = body["access_token"].as_str().unwrap().to_string();
    let (_, opaque) = tenant
        .token(
            json!({"grant_type": "password", "client_id": "web", "client_secret": "web-secret",
            "username": "alice", "password": "alice-pw", "scope": "openid"}),
        )
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    for token in [token, opaque["access_token"].as_str().unwrap().to_string()] {
        let response = tenant
            .http
            .get(tenant.url("/userinfo"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()["www-authenticate"],
            r#"Bearer realm="Users", error="invalid_token", error_description="The token has expired""#
        );
    }
}

#[tokio::test]
async fn discovery_and_jwks_describe_the_tenant() {
    let tenant = Tenant::start();
    let discovery: Value = tenant
        .http
        .get(tenant.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let base = tenant.emulator.base_url();
    assert_eq!(discovery["issuer"], format!("{base}/"));
    assert_eq!(
        discovery["jwks_uri"],
        format!("{base}/.well-known/jwks.json")
    );
    assert_eq!(discovery["token_endpoint"], format!("{base}/oauth/token"));
    assert_eq!(
        discovery["revocation_endpoint"],
        format!("{base}/oauth/revoke")
    );
    let jwks: Value = tenant
        .http
        .get(tenant.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["kid"], tenant.emulator.current_kid());
    assert_eq!(
        (
            key["kty"].as_str(),
            key["use"].as_str(),
            key["alg"].as_str(),
            key["e"].as_str()
        ),
        (Some("RSA"), Some("sig"), Some("RS256"), Some("AQAB"))
    );
    assert!(key["n"].as_str().unwrap().len() > 300);
}
