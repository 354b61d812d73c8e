//! What every request meets at the edge of the app, whatever its route (run by
//! [`super::observe::Observe`], the one middleware, so the hot path pays for no extra layer):
//!
//! - **The body deadline.** A request with a body gets `server.bodyTimeoutMs` from the end of its
//!   head to deliver it; past it, the body stream fails and the answer is 408 with the JSON error,
//!   and the connection closes. actix's `client_request_timeout` bounds the head only, so without
//!   this a client announcing `Content-Length: 100` and sending one byte held its connection (and
//!   a file descriptor) forever. The deadline wraps the payload itself, so every extractor that
//!   reads a body (`web::Bytes`, `web::Form`, `web::Json`, multipart) is bounded, and it counts
//!   only while the body is awaited: a body already received is never refused.
//! - **One error shape.** An error actix raised itself inside the app (the `web::Bytes` limit,
//!   whose extractor takes no error handler, or any extractor without one) is answered with the
//!   JSON body of SPEC §4 and its status, like ours.
//! - **`HEAD` is `GET` without a body.** A `HEAD` request is routed as a `GET`; the HTTP layer
//!   knows the request was a `HEAD` and sends the headers only.
//! - **405, not 404.** A path the listener serves, asked with a method it does not have, is 405
//!   with `Allow` listing the ones it has ([`MethodTable`], built from the listener's OpenAPI
//!   document, so the two cannot disagree); an unknown path is 404. Both JSON.

use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ResourceDef, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::Method;
use actix_web::http::header::HeaderValue;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, ResponseError as _, web};
use futures_util::Stream;

use super::ApiError;
use super::extract::payload::body_timed_out;
use crate::echo::{Clipped, quoted};

/// The limits [`super::observe::Observe`] applies to every request.
#[derive(Clone, Copy, Debug)]
pub struct EdgeLimits {
    /// `server.bodyTimeoutMs`.
    pub body_timeout: Duration,
    /// `server.bodyLimitBytes`, named in the 413 of a raw body.
    pub body_limit: usize,
}

/// Set when a request's body deadline passed before its body arrived.
pub type TimedOut = Rc<Cell<bool>>;

/// Routes a `HEAD` as a `GET` (the codec, which decoded a `HEAD`, still drops the body).
#[inline]
pub fn head_as_get(req: &mut ServiceRequest) {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
}

/// Puts the body deadline on `req`'s payload; `None` (and nothing allocated) when the request has
/// no body.
#[inline]
pub fn bound_body(req: &mut ServiceRequest, timeout: Duration) -> Option<TimedOut> {
    let (_, payload) = req.parts_mut();
    if matches!(payload, Payload::None) {
        return None;
    }
    let timed_out = TimedOut::default();
    let inner = std::mem::replace(payload, Payload::None);
    *payload = Payload::Stream {
        payload: Box::pin(Deadline {
            inner,
            timer: Box::pin(actix_web::rt::time::sleep(timeout)),
            timed_out: timed_out.clone(),
            done: false,
        }),
    };
    Some(timed_out)
}

/// A body stream that fails once its deadline has passed while it waits for more.
struct Deadline {
    inner: Payload,
    timer: Pin<Box<actix_web::rt::time::Sleep>>,
    timed_out: TimedOut,
    done: bool,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(chunk)) => Poll::Ready(Some(chunk)),
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.done = true;
                    this.timed_out.set(true);
                    Poll::Ready(Some(Err(body_timed_out())))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// The answer as it leaves the app: 408 (connection closed) when the body deadline passed, the
/// JSON error body when actix answered an error itself, else the route's answer untouched.
#[inline]
pub fn finish<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
    timed_out: Option<&TimedOut>,
    limits: &EdgeLimits,
) -> ServiceResponse<EitherBody<B>> {
    let replacement = if timed_out.is_some_and(|t| t.get()) {
        Some(ApiError::RequestTimeout(format!(
            "the request body did not arrive within {} ms (`server.bodyTimeoutMs`)",
            limits.body_timeout.as_millis()
        )))
    } else {
        match res.response().error() {
            Some(err) if err.as_error::<ApiError>().is_none() => {
                Some(ApiError::from_actix(err, limits.body_limit))
            }
            _ => None,
        }
    };
    match replacement {
        None => res.map_into_left_body(),
        Some(err) => {
            let (req, _) = res.into_parts();
            ServiceResponse::new(req, err.error_response()).map_into_right_body()
        }
    }
}

/// The paths a listener serves and the methods of each, for the 405 of the default service.
pub struct MethodTable {
    routes: Vec<(ResourceDef, Vec<Method>, HeaderValue)>,
}

impl MethodTable {
    /// The table of every operation in `api` (the listener's OpenAPI document), plus `extra`
    /// (routes the document does not describe, such as the document itself).
    pub fn new(api: &utoipa::openapi::OpenApi, extra: &[(&str, Method)]) -> Self {
        let mut paths: Vec<(String, Vec<Method>)> = Vec::new();
        let mut add = |path: &str, method: Method| match paths.iter_mut().find(|(p, _)| p == path) {
            Some((_, methods)) => {
                if !methods.contains(&method) {
                    methods.push(method);
                }
            }
            None => paths.push((path.to_owned(), vec![method])),
        };
        for (path, item) in &api.paths.paths {
            let operations = [
                (Method::GET, item.get.is_some()),
                (Method::POST, item.post.is_some()),
                (Method::PUT, item.put.is_some()),
                (Method::PATCH, item.patch.is_some()),
                (Method::DELETE, item.delete.is_some()),
                (Method::OPTIONS, item.options.is_some()),
            ];
            for (method, present) in operations {
                if present {
                    add(path, method);
                }
            }
        }
        for (path, method) in extra {
            add(path, method.clone());
        }
        let routes = paths
            .into_iter()
            .map(|(path, mut methods)| {
                // Every GET route answers HEAD too.
                if methods.contains(&Method::GET) {
                    methods.push(Method::HEAD);
                }
                let allow = methods
                    .iter()
                    .map(Method::as_str)
                    .collect::<Vec<_>>()
                    .join(", ");
                let allow = HeaderValue::from_str(&allow)
                    .unwrap_or_else(|_| HeaderValue::from_static("GET"));
                (ResourceDef::new(path), methods, allow)
            })
            .collect();
        Self { routes }
    }

    /// The methods of the route `path` matches, as an `Allow` value; `None` for an unknown path.
    pub fn allowed(&self, path: &str) -> Option<&HeaderValue> {
        self.routes
            .iter()
            .find(|(def, _, _)| def.is_match(path))
            .map(|(_, _, allow)| allow)
    }
}

/// The default service: 405 with `Allow` for a known path, else 404.
pub async fn unrouted(
    req: HttpRequest,
    table: Option<web::Data<MethodTable>>,
) -> Result<HttpResponse, ApiError> {
    let method = Clipped(req.method().as_str(), 16);
    let path = quoted(req.path());
    match table.as_ref().and_then(|t| t.allowed(req.path())) {
        Some(allow) => Err(ApiError::MethodNotAllowed {
            message: format!(
                "{method} is not allowed on {path}: use {}",
                allow.to_str().unwrap_or("another method")
            ),
            allow: allow.clone(),
        }),
        None => Err(ApiError::NotFound(format!("no route for {method} {path}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_the_methods_of_the_matched_path_and_head_with_get() {
        let api = super::super::openapi("");
        let table = MethodTable::new(&api, &[("/documentation/json", Method::GET)]);
        let allow = |path: &str| table.allowed(path).map(|v| v.to_str().unwrap_or_default());
        assert_eq!(allow("/userinfo"), Some("GET, HEAD"));
        assert_eq!(allow("/oauth/token"), Some("POST"));
        assert_eq!(allow("/-/healthz"), Some("GET, HEAD"));
        assert_eq!(allow("/documentation/json"), Some("GET, HEAD"));
        assert_eq!(allow("/nope"), None);
        assert_eq!(allow("/userinfo/"), None);
    }

    #[test]
    fn the_table_follows_the_prefix() {
        let api = super::super::openapi("/auth");
        let table = MethodTable::new(&api, &[]);
        assert!(table.allowed("/auth/userinfo").is_some());
        assert!(table.allowed("/userinfo").is_none());
        assert!(
            table.allowed("/-/ready").is_some(),
            "status routes stay at the root"
        );
    }
}
