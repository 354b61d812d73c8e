//! The request a log line is written in. Every line written while a request is being handled
//! carries it: under `span` in the `json` shape (`{"request_id":..,"method":..,"path":..,
//! "name":"request"}`, as tracing's span gave it), as `reqId` in the `mia` shape.
//!
//! Choices:
//! - Not a tracing span: creating, entering and closing one per request cost about 5,000
//!   instructions (the registry's slab, the fmt layer's field string, the filter's scope),
//!   an eighth of `/userinfo`. A scope holds the request's id, method and URI (reference-counted
//!   clones, no copy), formatted only when a line is written; entering it sets a thread-local
//!   for the duration of a poll.
//! - Entered only while the request's own code runs (each poll of its future, the middleware's
//!   own steps): a line written by another task between two polls is not tagged with it. Actors
//!   on other threads do not see it, as they did not see the span.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_web::http::header::HeaderValue;
use actix_web::http::{Method, Uri};

use super::write_json_str;

/// The most characters of a request's path its log lines carry.
pub const MAX_LOGGED_PATH_CHARS: usize = 256;

/// One request, as its lines show it.
pub struct RequestScope {
    request_id: HeaderValue,
    method: Method,
    uri: Uri,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<RequestScope>>> = const { RefCell::new(None) };
}

impl RequestScope {
    /// A scope for a request: its id (printable ASCII, see `http::observe`), method and URI.
    pub fn new(request_id: HeaderValue, method: Method, uri: Uri) -> Rc<Self> {
        Rc::new(Self {
            request_id,
            method,
            uri,
        })
    }

    /// Runs `f` in this scope.
    pub fn in_scope<R>(self: &Rc<Self>, f: impl FnOnce() -> R) -> R {
        let _entered = Entered::new(self);
        f()
    }

    /// `future`, each of its polls in this scope.
    pub fn wrap<F: Future>(self: &Rc<Self>, future: F) -> InScope<F> {
        InScope {
            scope: self.clone(),
            future,
        }
    }

    /// `"request_id":"…","method":"…","path":"…"`, the path cut to [`MAX_LOGGED_PATH_CHARS`].
    pub(super) fn write_members(&self, writer: &mut impl std::fmt::Write) -> std::fmt::Result {
        writer.write_str("\"request_id\":")?;
        write_json_str(writer, self.request_id())?;
        writer.write_str(",\"method\":")?;
        write_json_str(writer, self.method.as_str())?;
        writer.write_str(",\"path\":")?;
        write_json_str(
            writer,
            &crate::echo::Clipped(self.uri.path(), MAX_LOGGED_PATH_CHARS).as_cow(),
        )
    }

    pub(super) fn request_id(&self) -> &str {
        self.request_id.to_str().unwrap_or_default()
    }
}

/// Calls `f` with the scope entered on this thread, if any.
pub(super) fn with_current<R>(f: impl FnOnce(Option<&RequestScope>) -> R) -> R {
    CURRENT.with(|current| f(current.borrow().as_deref()))
}

/// While alive, `scope` is the thread's current one; the previous one comes back on drop.
struct Entered {
    previous: Option<Rc<RequestScope>>,
}

impl Entered {
    fn new(scope: &Rc<RequestScope>) -> Self {
        let previous = CURRENT.with(|current| current.replace(Some(scope.clone())));
        Self { previous }
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|current| *current.borrow_mut() = previous);
    }
}

pin_project_lite::pin_project! {
    /// A future whose polls run in a request's scope ([`RequestScope::wrap`]).
    pub struct InScope<F> {
        scope: Rc<RequestScope>,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for InScope<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _entered = Entered::new(this.scope);
        this.future.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current_id() -> Option<String> {
        with_current(|scope| scope.map(|s| s.request_id().to_owned()))
    }

    fn scope(id: &'static str, method: Method, uri: &'static str) -> Rc<RequestScope> {
        RequestScope::new(HeaderValue::from_static(id), method, Uri::from_static(uri))
    }

    #[test]
    fn a_scope_is_current_inside_and_the_previous_one_after() {
        let outer = scope("outer", Method::GET, "/a");
        let long = format!("/{}", "é".repeat(300));
        let inner = RequestScope::new(
            HeaderValue::from_static("in\"ner"),
            Method::POST,
            Uri::try_from(format!("{}?q=1", percent(&long))).expect("uri"),
        );
        assert_eq!(current_id(), None);
        outer.in_scope(|| {
            assert_eq!(current_id().as_deref(), Some("outer"));
            inner.in_scope(|| assert_eq!(current_id().as_deref(), Some("in\"ner")));
            assert_eq!(current_id().as_deref(), Some("outer"));
        });
        assert_eq!(current_id(), None);
        let mut members = String::from("{");
        inner.write_members(&mut members).expect("write");
        members.push('}');
        let members: serde_json::Value = serde_json::from_str(&members).expect("JSON members");
        assert_eq!(members["request_id"], "in\"ner");
        assert_eq!(members["method"], "POST");
        let path = members["path"].as_str().expect("a path");
        assert_eq!(
            path.chars().count(),
            MAX_LOGGED_PATH_CHARS + 1,
            "cut, with …"
        );
        assert!(path.ends_with('…') && !path.contains('?'), "{path}");
    }

    /// `text` percent-encoded beyond ASCII, as a URI path carries it.
    fn percent(text: &str) -> String {
        text.bytes()
            .map(|b| {
                if b.is_ascii() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

    #[test]
    fn a_wrapped_future_is_in_scope_only_while_polled() {
        let scope = scope("polled", Method::GET, "/");
        let mut seen = Vec::new();
        let mut step = 0;
        let future = std::future::poll_fn(|cx| {
            seen.push(current_id());
            step += 1;
            if step < 2 {
                cx.waker().wake_by_ref();
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        });
        {
            let mut wrapped = std::pin::pin!(scope.wrap(future));
            let mut cx = Context::from_waker(std::task::Waker::noop());
            assert!(wrapped.as_mut().poll(&mut cx).is_pending());
            assert_eq!(current_id(), None, "not between two polls");
            assert!(wrapped.as_mut().poll(&mut cx).is_ready());
        }
        assert_eq!(
            seen,
            vec![Some("polled".to_owned()), Some("polled".to_owned())]
        );
    }
}
