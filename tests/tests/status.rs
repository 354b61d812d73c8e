//! The status routes, the OpenAPI document, the metrics and JSON errors for unknown routes.

use crate::testkit::{assert_error_body, base_config, eventually, spawn_app, spawn_app_with};
use serde_json::json;

#[actix_rt::test]
async fn healthz_names_the_service_and_its_version() {
    let app = spawn_app_with(base_config(), &[("SERVICE_VERSION", "9.9.9-test")]).await;
    let (status, body) = app.get_json("/-/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"status": "OK", "name": "auth0-client", "version": "9.9.9-test"})
    );
}

#[actix_rt::test]
async fn ready_reports_each_check_and_turns_503_on_shutdown() {
    let app = spawn_app_with(base_config(), &[("DELAY_SHUTDOWN_SECONDS", "2")]).await;
    let (status, body) = app.get_json("/-/ready").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "OK");
    assert_eq!(body["checks"]["actors"], "OK");

    let shutdown = app.shutdown.clone();
    actix_rt::spawn(async move { shutdown.shutdown().await });
    actix_rt::time::sleep(std::time::Duration::from_millis(300)).await;
    // Still serving during the delay, but no longer ready.
    let (status, body) = app.get_json("/-/ready").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "KO");
    let (status, _) = app.get_json("/-/healthz").await;
    assert_eq!(status, 200);
}

#[actix_rt::test]
async fn check_up_answers_json() {
    let app = spawn_app().await;
    let (status, body) = app.get_json("/-/check-up").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "OK");
}

#[actix_rt::test]
async fn status_routes_ignore_the_service_prefix() {
    let app = spawn_app_with(base_config(), &[("SERVICE_PREFIX", "/auth")]).await;
    assert_eq!(app.get("/-/healthz").await.status(), 200);
    let (status, doc) = app.get_json("/documentation/json").await;
    assert_eq!(status, 200);
    assert!(doc["paths"]["/-/healthz"]["get"].is_object(), "{doc}");
    assert!(doc["paths"]["/auth/userinfo"]["get"].is_object(), "{doc}");
    assert!(doc["paths"]["/userinfo"].is_null(), "{doc}");
    let (status, body) = app.get_json("/auth/-/healthz").await;
    assert_eq!(status, 404);
    assert_error_body(&body, 404, "/auth/-/healthz");
}

#[actix_rt::test]
async fn unknown_routes_are_json_404s() {
    let app = spawn_app().await;
    let response = app.get("/no/such/route?x=1").await;
    assert_eq!(response.status(), 404);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_error_body(&body, 404, "GET \"/no/such/route\"");
    assert_eq!(body["error"], "Not Found");
}

#[actix_rt::test]
async fn openapi_document_lists_the_routes() {
    let app = spawn_app().await;
    let (status, doc) = app.get_json("/documentation/json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    assert_eq!(doc["info"]["title"], "auth0-client");
    for path in ["/-/healthz", "/-/ready", "/-/check-up", "/-/metrics"] {
        assert!(
            doc["paths"][path]["get"].is_object(),
            "{path} missing: {doc}"
        );
    }
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
}

#[actix_rt::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = spawn_app().await;
    app.get("/-/healthz").await;
    app.get("/-/healthz").await;
    app.get("/nowhere").await;
    // Workers publish what they counted every second (HTTP_FLUSH_INTERVAL).
    let published = [
        r#"auth0_client_http_requests_total{route="/-/healthz",status="200"} 2"#,
        r#"auth0_client_http_requests_total{route="unmatched",status="404"} 1"#,
        "auth0_client_http_request_duration_seconds_bucket{route=\"/-/healthz\"",
    ];
    eventually(
        "the workers' counts published",
        std::time::Duration::from_secs(5),
        async || {
            let response = app.get("/-/metrics").await;
            assert_eq!(response.status(), 200);
            assert!(
                response.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/plain")
            );
            let text = response.text().await.unwrap();
            if published.iter().all(|line| text.contains(line)) {
                Ok(())
            } else {
                Err(text)
            }
        },
    )
    .await;
}

#[actix_rt::test]
async fn request_id_is_echoed_or_generated() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/-/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "abc-123");

    let response = app
        .client
        .get(app.url("/-/healthz"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let generated = response.headers()["x-request-id"].to_str().unwrap();
    assert_ne!(generated, "bad id with spaces");
    assert_eq!(generated.len(), 36, "a UUID: {generated}");
}
