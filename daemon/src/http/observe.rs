//! The middleware around every request: the `x-request-id` (honoured or generated, echoed back),
//! a tracing span carrying it so every log line of the request shows it, one access log line,
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
use tracing::Instrument;

use super::edge::{self, EdgeLimits};
use super::metrics::{HTTP_FLUSH_INTERVAL, HttpRecorder};
use crate::echo::Clipped;

/// The most characters of a request's path its log lines carry.
const MAX_LOGGED_PATH_CHARS: usize = 256;

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
        let span = tracing::info_span!(
            "request",
            request_id = id.to_str().unwrap_or_default(),
            method = %req.method(),
            path = %Clipped(req.path(), MAX_LOGGED_PATH_CHARS),
        );
        edge::head_as_get(&mut req);
        let timed_out = edge::bound_body(&mut req, self.limits.body_timeout);
        let answer = span.in_scope(|| self.service.call(req));
        let recorder = self.recorder.clone();
        let limits = self.limits;
        Box::pin(async move {
            let res = answer.instrument(span.clone()).await?;
            let mut res = span.in_scope(|| edge::finish(res, timed_out.as_ref(), &limits));
            let status = res.status();
            let route = res
                .request()
                .match_pattern()
                .unwrap_or_else(|| "unmatched".to_owned());
            let elapsed = started.elapsed();
            res.headers_mut().insert(REQUEST_ID, id);
            span.in_scope(|| {
                tracing::info!(
                    status = status.as_u16(),
                    route = %route,
                    duration_ms = elapsed.as_secs_f64() * 1000.0,
                    "request answered"
                )
            });
            recorder.record(route, status, elapsed);
            Ok(res)
        })
    }
}
