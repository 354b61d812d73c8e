//! `/-/healthz`, `/-/ready`, `/-/check-up`, `/-/metrics` (SPEC §8): never under `SERVICE_PREFIX`,
//! served on every listener, no client needed.

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa_actix_web::service_config::ServiceConfig;

use super::metrics::Metrics;
use crate::health::{Health, ProbeReport};

/// Registers the routes, which the app mounts under the `/-` scope: one prefix check for all
/// four on every other request.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(healthz)
        .service(ready)
        .service(check_up)
        .service(metrics);
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Alive {
    /// Always `OK` while the process answers.
    status: &'static str,
    name: &'static str,
    version: String,
}

/// What `/-/healthz` reports as the version: `SERVICE_VERSION` when set, else the build's.
pub struct ServiceVersion(pub String);

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "status", responses((status = 200, body = Alive)))]
#[get("/healthz")]
async fn healthz(version: web::Data<ServiceVersion>) -> HttpResponse {
    HttpResponse::Ok().json(Alive {
        status: "OK",
        name: "auth0-client",
        version: version.0.clone(),
    })
}

fn report(report: ProbeReport) -> HttpResponse {
    if report.status == "OK" {
        HttpResponse::Ok().json(report)
    } else {
        HttpResponse::ServiceUnavailable().json(report)
    }
}

/// Ready to take traffic: the store answers, plugins are loaded, actors answer; 503 from SIGTERM on.
#[utoipa::path(get, path = "/ready", tag = "status", responses(
    (status = 200, body = ProbeReport), (status = 503, body = ProbeReport)))]
#[get("/ready")]
async fn ready(health: web::Data<Health>) -> HttpResponse {
    report(health.ready().await)
}

/// The daemon's dependencies answer: each tenant's JWKS.
#[utoipa::path(get, path = "/check-up", tag = "status", responses(
    (status = 200, body = ProbeReport), (status = 503, body = ProbeReport)))]
#[get("/check-up")]
async fn check_up(health: web::Data<Health>) -> HttpResponse {
    report(health.checkup().await)
}

/// Prometheus metrics, names `auth0_client_*`.
#[utoipa::path(get, path = "/metrics", tag = "status", responses(
    (status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
#[get("/metrics")]
async fn metrics(metrics: web::Data<Metrics>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render())
}
