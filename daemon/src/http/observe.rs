//! The middleware around every request: the `x-request-id` (honoured or generated, echoed back),
//! a [`RequestScope`] carrying it so every log line of the request shows it, one access log line
//! (`request answered`, or with `LOG_FORMAT=mia` upstream's `request completed` with its nested
//! `http`/`url`/`host` fields, SPEC §8),
//! the HTTP metrics, and the rules of [`super::edge`] (`HEAD` as `GET`, the body deadline, the
//! JSON shape of actix's own errors). One middleware, so the hot path pays for one layer.

use std::future::{Ready, ready};
use std::rc::Rc;
use std::time::Instant;

use actix_web::Error;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{HeaderName, HeaderValue};
use futures_util::future::LocalBoxFuture;

use super::edge::{self, EdgeLimits};
use super::extract::forwarded::end_user_ip;
use super::metrics::{HTTP_FLUSH_INTERVAL, HttpRecorder};
use crate::config::{LogFormat, Settings};
use crate::telemetry::{self, MAX_LOGGED_PATH_CHARS, RequestScope};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A caller's request id is kept when it is short printable ASCII; anything else is replaced, so
/// a hostile header cannot forge log lines.
fn request_id(req: &ServiceRequest) -> HeaderValue {
    req.headers()
        .get(&REQUEST_ID)
        .filter(|v| {
            let v = v.as_bytes();
            !v.is_empty() && v.len() <= 128 && v.iter().all(|b| b.is_ascii_graphic())
        })
        .cloned()
        .unwrap_or_else(new_request_id)
}

/// A random (v4) UUID from the thread's generator: `Uuid::new_v4` asks the kernel for entropy on
/// every call, a system call per request that showed in the `/userinfo` profile. Formatted on
/// the stack, straight into the header value.
fn new_request_id() -> HeaderValue {
    use rand::RngExt as _;
    let bytes: [u8; 16] = rand::rng().random();
    let mut buffer = uuid::Uuid::encode_buffer();
    let text = uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .encode_lower(&mut buffer);
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// The middleware; each worker builds its own (see [`HttpRecorder`]).
pub struct Observe {
    recorder: Rc<HttpRecorder>,
    limits: EdgeLimits,
}

impl Observe {
    pub fn new(recorder: HttpRecorder, limits: EdgeLimits) -> Self {
        Self {
            recorder: Rc::new(recorder),
            limits,
        }
    }
}

impl<S, B> Transform<S, ServiceRequest> for Observe
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = ObserveService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        // Called once per worker, on the worker: its recorder publishes on the worker's clock.
        let recorder = Rc::downgrade(&self.recorder);
        actix_web::rt::spawn(async move {
            let mut tick = actix_web::rt::time::interval(HTTP_FLUSH_INTERVAL);
            loop {
                tick.tick().await;
                match recorder.upgrade() {
                    Some(recorder) => recorder.flush(),
                    None => break,
                }
            }
        });
        ready(Ok(ObserveService {
            service,
            recorder: self.recorder.clone(),
            limits: self.limits,
        }))
    }
}

pub struct ObserveService<S> {
    service: S,
    recorder: Rc<HttpRecorder>,
    limits: EdgeLimits,
}

impl<S, B> Service<ServiceRequest> for ObserveService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Error>>;

    forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        let started = Instant::now();
        let id = request_id(&req);
        let scope = RequestScope::new(id.clone(), req.method().clone(), req.uri().clone());
        edge::head_as_get(&mut req);
        let timed_out = edge::bound_body(&mut req, self.limits.body_timeout);
        let answer = scope.in_scope(|| self.service.call(req));
        let recorder = self.recorder.clone();
        let limits = self.limits;
        Box::pin(async move {
            let res = scope.wrap(answer).await?;
            let mut res = scope.in_scope(|| edge::finish(res, timed_out.as_ref(), &limits));
            let status = res.status();
            let route = res
                .request()
                .match_pattern()
                .unwrap_or_else(|| "unmatched".to_owned());
            let elapsed = started.elapsed();
            res.headers_mut().insert(REQUEST_ID, id);
            scope.in_scope(|| {
                if telemetry::format() == LogFormat::Mia {
                    log_completed(&res, elapsed);
                } else {
                    telemetry::request_answered(status.as_u16(), &route, elapsed);
                }
            });
            recorder.record(route, status, elapsed);
            Ok(res)
        })
    }
}

/// Upstream's access line (glogger's `request completed`): its fields are dotted names, which
/// the `mia` formatter nests (`http.request.method` → `"http":{"request":{"method":..}}`); they
/// are declared grouped by prefix, as it requires. Everything is borrowed from the request: no
/// allocation here beyond the walk of `X-Forwarded-For` for the end user's address.
fn log_completed<B: MessageBody>(res: &ServiceResponse<B>, elapsed: std::time::Duration) {
    let req = res.request();
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let user_agent = header(actix_web::http::header::USER_AGENT).unwrap_or_default();
    let hostname = header(actix_web::http::header::HOST)
        .map(without_port)
        .unwrap_or_default();
    // The end user, as Auth0 is told (glogger: the forwarded address, else the peer's).
    let ip = req
        .app_data::<actix_web::web::Data<Settings>>()
        .and_then(|settings| end_user_ip(req, settings))
        .or_else(|| req.peer_addr().map(|peer| peer.ip()));
    let bytes = match res.response().body().size() {
        actix_web::body::BodySize::Sized(bytes) => bytes,
        actix_web::body::BodySize::None | actix_web::body::BodySize::Stream => 0,
    };
    tracing::info!(
        http.request.method = req.method().as_str(),
        http.request.userAgent.original = user_agent,
        http.response.statusCode = res.status().as_u16(),
        http.response.body.bytes = bytes,
        url.path = crate::echo::Clipped(req.path(), MAX_LOGGED_PATH_CHARS)
            .as_cow()
            .as_ref(),
        host.hostname = hostname,
        host.ip = ip.map(tracing::field::display),
        responseTime = elapsed.as_secs_f64() * 1000.0,
        "request completed"
    );
}

/// `host[:port]` → `host` (`[v6]:port` → `v6`).
fn without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(ip, _)| ip);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}
