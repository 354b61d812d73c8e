//! A hand-written sweep of bad input over every route (issue 12): malformed, oversized and deeply
//! nested bodies, wrong content types, invalid UTF-8 and NUL bytes, huge headers and cookie lists,
//! forged and expired credentials, repeated parameters. What the daemon answers is a 4xx with the
//! JSON error body of SPEC §4; what actix-http refuses before any route (a NUL in a header, a head
//! too large) is a bare 4xx (README, Routes). Never a 5xx, and after each batch the daemon still
//! answers `/-/healthz` and, at the end, a real login.
//!
//! schemathesis (`tests/schemathesis/run.sh`) generates inputs from the OpenAPI document; this
//! sweep covers what a generator rarely reaches.

use std::time::Duration;

use auth0_emulator::seed::demo;
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::testkit::{TestApp, spawn_app, spawn_app_configured};

/// The routes that read a body.
const BODY_ROUTES: &[&str] = &["/oauth/token", "/refreshtoken", "/oauth/refreshtoken"];
/// The routes a session credential (Bearer or `sid`) opens.
const SESSION_ROUTES: &[(Method, &str)] = &[
    (Method::GET, "/userinfo"),
    (Method::GET, "/users/me"),
    (Method::POST, "/refreshtoken"),
    (Method::POST, "/oauth/refreshtoken"),
];
/// The routes a browser navigates to.
const BROWSER_ROUTES: &[&str] = &["/authorize", "/oauth/callback", "/logout"];
/// The routes that take no input at all.
const STATUS_ROUTES: &[&str] = &[
    "/-/healthz",
    "/-/ready",
    "/-/check-up",
    "/-/metrics",
    "/documentation/json",
];
/// Every route, with its method.
const EVERY_ROUTE: &[(Method, &str)] = &[
    (Method::POST, "/oauth/token"),
    (Method::POST, "/refreshtoken"),
    (Method::POST, "/oauth/refreshtoken"),
    (Method::GET, "/userinfo"),
    (Method::GET, "/users/me"),
    (Method::GET, "/authorize"),
    (Method::GET, "/oauth/callback"),
    (Method::GET, "/logout"),
    (Method::GET, "/users/active"),
    (Method::GET, "/-/healthz"),
    (Method::GET, "/-/ready"),
    (Method::GET, "/-/check-up"),
    (Method::GET, "/-/metrics"),
    (Method::GET, "/documentation/json"),
];

/// One answer, read whole.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body)
            .chars()
            .take(400)
            .collect()
    }
}

/// A request to the daemon: method, path (with its query, already encoded), headers and body.
struct Probe<'a> {
    label: String,
    method: Method,
    path: &'a str,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Option<(Option<&'a str>, Vec<u8>)>,
}

impl<'a> Probe<'a> {
    fn new(label: impl Into<String>, method: Method, path: &'a str) -> Self {
        Self {
            label: label.into(),
            method,
            path,
            headers: Vec::new(),
            body: None,
        }
    }

    fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers.push((
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value.as_ref()).unwrap(),
        ));
        self
    }

    /// A body with `content_type` (`None`: no `Content-Type` header).
    fn body(mut self, content_type: Option<&'a str>, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some((content_type, body.into()));
        self
    }

    async fn send(self, app: &TestApp) -> (String, Answer) {
        let mut request = app
            .client
            .request(self.method.clone(), app.url(self.path))
            .timeout(Duration::from_secs(20));
        for (name, value) in self.headers {
            request = request.header(name, value);
        }
        if let Some((content_type, body)) = self.body {
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            request = request.body(body);
        }
        let label = format!("{} {} ({})", self.method, self.path, self.label);
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{label}: no answer: {e}"));
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("{label}: the body did not arrive: {e}"))
            .to_vec();
        (
            label,
            Answer {
                status,
                content_type,
                body,
            },
        )
    }

    /// Sends the probe and asserts a 4xx with SPEC §4's JSON error body, of one of `statuses`
    /// when that is not empty. Returns the body.
    async fn expect(self, app: &TestApp, statuses: &[u16]) -> Value {
        let (label, answer) = self.send(app).await;
        json_error(&label, &answer, statuses)
    }
}

/// Asserts `answer` is a 4xx (one of `statuses`, when given) with the JSON error body.
fn json_error(label: &str, answer: &Answer, statuses: &[u16]) -> Value {
    assert!(
        (400..500).contains(&answer.status),
        "{label}: expected a 4xx, got {}: {}",
        answer.status,
        answer.text()
    );
    assert!(
        statuses.is_empty() || statuses.contains(&answer.status),
        "{label}: expected one of {statuses:?}, got {}: {}",
        answer.status,
        answer.text()
    );
    assert!(
        answer.content_type.starts_with("application/json"),
        "{label}: a {} without the JSON error body (content-type {:?}): {}",
        answer.status,
        answer.content_type,
        answer.text()
    );
    let body: Value = serde_json::from_slice(&answer.body).unwrap_or_else(|e| {
        panic!(
            "{label}: the error body is not JSON ({e}): {}",
            answer.text()
        )
    });
    assert_eq!(body["statusCode"], answer.status, "{label}: {body}");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{label}: {body}"
    );
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{label}: {body}"
    );
    assert!(
        body.as_object()
            .unwrap()
            .keys()
            .all(|k| matches!(k.as_str(), "statusCode" | "error" | "message" | "errorCode")),
        "{label}: fields beyond SPEC §4's: {body}"
    );
    body
}

/// The daemon still answers after `batch`.
async fn still_serving(app: &TestApp, batch: &str) {
    let response = app
        .client
        .get(app.url("/-/healthz"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap_or_else(|e| panic!("after {batch}: /-/healthz did not answer: {e}"));
    assert_eq!(response.status(), 200, "after {batch}: /-/healthz");
}

/// base64url without padding (JWT segments).
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// `n` levels of nested JSON arrays.
fn nested_arrays(n: usize) -> String {
    format!("{}{}", "[".repeat(n), "]".repeat(n))
}

/// `n` levels of nested JSON objects, `{"a":{"a":…}}`.
fn nested_objects(n: usize) -> String {
    format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n))
}

#[actix_rt::test]
async fn malformed_oversized_and_nested_bodies_are_json_4xx_on_every_body_route() {
    let app = spawn_app().await;
    // A real session, so the refresh routes get as far as reading the body.
    let tokens = app.login_tokens().await;
    let bearer = format!("Bearer {}", tokens["accessToken"].as_str().unwrap());
    let limit = 65_536; // server.bodyLimitBytes' default
    let json_bodies: Vec<(&str, Vec<u8>)> = vec![
        ("an unterminated object", b"{\"grant_type\": \"password\",".to_vec()),
        ("a truncated literal", b"nul".to_vec()),
        ("an array", b"[1, 2, 3]".to_vec()),
        ("a string", b"\"refresh\"".to_vec()),
        ("a number", b"42".to_vec()),
        ("null", b"null".to_vec()),
        ("trailing garbage", b"{} {}".to_vec()),
        ("a field of the wrong type", br#"{"grant_type": ["password"], "refresh_token": {"a": 1}, "username": 1, "password": true}"#.to_vec()),
        ("arrays nested 20,000 deep", nested_arrays(20_000).into_bytes()),
        ("objects nested 10,000 deep", nested_objects(10_000).into_bytes()),
        ("the field nested 200 deep", format!("{{\"refresh_token\": {}, \"grant_type\": {}}}", nested_arrays(200), nested_objects(200)).into_bytes()),
        ("invalid UTF-8", b"{\"grant_type\": \"pass\xff\xfeword\", \"refresh_token\": \"\xc3\x28\"}".to_vec()),
        ("a lone surrogate escape", br#"{"grant_type": "\ud800", "refresh_token": "\udfff"}"#.to_vec()),
        ("a UTF-8 BOM", b"\xef\xbb\xbf{\"grant_type\": \"password\"}".to_vec()),
        ("a NUL byte outside strings", b"{\"grant_type\":\x00 \"password\"}".to_vec()),
        ("5,000 keys", {
            let mut body = String::from("{");
            for i in 0..5_000 {
                body.push_str(&format!("\"k{i}\":{i},"));
            }
            body.push_str("\"grant_type\":\"x\"}");
            body.into_bytes()
        }),
    ];
    for route in BODY_ROUTES {
        for credential in [None, Some(bearer.as_str())] {
            for (label, body) in &json_bodies {
                let mut probe = Probe::new(*label, Method::POST, route)
                    .body(Some("application/json"), body.clone());
                if let Some(credential) = credential {
                    probe = probe.header("authorization", credential);
                }
                probe.expect(&app, &[]).await;
            }
        }
    }
    still_serving(&app, "malformed JSON bodies").await;

    // Over server.bodyLimitBytes, declared or chunked: 413 in JSON, whatever the content type.
    let big_json = format!("{{\"username\": \"{}\"}}", "a".repeat(limit));
    let big_form = format!("username={}", "a".repeat(4 * limit));
    for route in BODY_ROUTES {
        for (label, content_type, body) in [
            (
                "JSON over the limit",
                Some("application/json"),
                big_json.clone(),
            ),
            (
                "a form 4 times the limit",
                Some("application/x-www-form-urlencoded"),
                big_form.clone(),
            ),
            ("text over the limit", Some("text/plain"), big_json.clone()),
            ("no content type, over the limit", None, big_json.clone()),
        ] {
            Probe::new(label, Method::POST, route)
                .header("authorization", &bearer)
                .body(content_type, body)
                .expect(&app, &[413])
                .await;
        }
        // The same, chunked (no Content-Length to refuse it by).
        let chunk = format!("{:x}\r\n{}\r\n", limit / 8, "a".repeat(limit / 8));
        let request = format!(
            "POST {route} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{}0\r\n\r\n",
            chunk.repeat(16)
        );
        let (status, answer) = raw(&app, request.as_bytes()).await;
        let body: Value = serde_json::from_slice(raw_body(&answer)).unwrap_or_else(|e| {
            panic!(
                "POST {route} (chunked over the limit): not the JSON error ({e}): {}",
                String::from_utf8_lossy(&answer[..answer.len().min(300)])
            )
        });
        assert_eq!(status, 413, "POST {route} (chunked over the limit): {body}");
        assert_eq!(body["statusCode"], 413);
    }
    still_serving(&app, "oversized bodies").await;

    // Forms: bad percent-encoding, invalid UTF-8, NUL bytes, repeated and many fields.
    let repeated_grant = "grant_type=x&".repeat(4_000);
    let forms: Vec<(&str, Vec<u8>)> = vec![
        (
            "bad percent-encoding",
            b"grant_type=password&username=%ZZ&password=%".to_vec(),
        ),
        (
            "raw invalid UTF-8",
            b"grant_type=password&username=\xff\xfe&password=\xc3\x28".to_vec(),
        ),
        (
            "percent-encoded invalid UTF-8",
            b"grant_type=password&username=%FF%FE&password=%C3%28".to_vec(),
        ),
        (
            "percent-encoded NUL bytes",
            b"grant_type=password&username=demo%00@example.com&password=%00".to_vec(),
        ),
        (
            "raw NUL bytes",
            b"grant_type=password&username=a\x00b&password=\x00".to_vec(),
        ),
        (
            "grant_type repeated",
            b"grant_type=password&grant_type=authorization_code&grant_type=refresh_token".to_vec(),
        ),
        ("4,000 grant_types", repeated_grant.into_bytes()),
        ("no value", b"grant_type&username&password".to_vec()),
        ("only separators", b"&&&===&&&".to_vec()),
        (
            "an unknown grant_type",
            b"grant_type=client_credentials&client_id=x&client_secret=y".to_vec(),
        ),
        (
            "a refresh_token grant",
            b"grant_type=refresh_token&refresh_token=x".to_vec(),
        ),
    ];
    for (label, body) in &forms {
        Probe::new(*label, Method::POST, "/oauth/token")
            .body(Some("application/x-www-form-urlencoded"), body.clone())
            .expect(&app, &[400, 403])
            .await;
    }
    still_serving(&app, "malformed forms").await;

    // Content types the route does not read.
    for route in BODY_ROUTES {
        for (content_type, body) in [
            ("text/plain", "grant_type=password"),
            ("application/xml", "<grant_type>password</grant_type>"),
            (
                "multipart/form-data; boundary=x",
                "--x\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\npassword\r\n--x--\r\n",
            ),
            (
                "application/x-www-form-urlencoded",
                "{\"grant_type\": \"password\"}",
            ),
            ("application/json", "grant_type=password&username=a"),
            (
                "application/json; charset=latin1",
                "{\"grant_type\": \"pass\u{e9}\"}",
            ),
            ("application/octet-stream", "\u{0}\u{1}\u{2}"),
            ("", "grant_type=password"),
            ("not a media type", "grant_type=password"),
        ] {
            let content_type = (!content_type.is_empty()).then_some(content_type);
            Probe::new(
                format!("content type {content_type:?}"),
                Method::POST,
                route,
            )
            .body(content_type, body)
            .expect(&app, &[])
            .await;
        }
    }
    still_serving(&app, "wrong content types").await;

    // The session survived all of it.
    assert_eq!(
        app.userinfo_bearer(tokens["accessToken"].as_str().unwrap())
            .await
            .status(),
        200
    );
}

#[actix_rt::test]
async fn forged_expired_and_malformed_credentials_are_json_401s_on_every_session_route() {
    let app = spawn_app_configured(|_| {}, &[("SESSION_DURATION_SECONDS", "60")]).await;
    let engine = base64url;
    // A JWT anyone can write: the demo user's `sub`, `alg: none`, and one signed by another key.
    let claims = engine(
        json!({"sub": demo::USER_ID, "aud": demo::API, "exp": 4_102_444_800u64, "iss": app.emulator.base_url()})
            .to_string()
            .as_bytes(),
    );
    let alg_none = format!("{}.{claims}.", engine(br#"{"alg":"none","typ":"JWT"}"#));
    let forged_rs256 = format!(
        "{}.{claims}.{}",
        engine(br#"{"alg":"RS256","typ":"JWT","kid":"forged"}"#),
        engine(&[7u8; 256])
    );
    // An access token whose session was logged out, and one whose session expired.
    let ended = app.login_tokens().await;
    let ended_access = ended["accessToken"].as_str().unwrap().to_owned();
    let ended_sid = app.login_cookie().await;
    for (header, value) in [
        ("authorization", format!("Bearer {ended_access}")),
        ("cookie", format!("sid={ended_sid}")),
    ] {
        let response = app
            .client
            .get(app.url("/logout"))
            .header(header, value)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 302);
    }
    let expired = app.login_tokens().await;
    let expired_access = expired["accessToken"].as_str().unwrap().to_owned();
    let expired_sid = app.login_cookie().await;
    app.clock.advance(Duration::from_secs(61));
    let live = app.login_tokens().await;
    let live_access = live["accessToken"].as_str().unwrap().to_owned();
    let live_sid = app.login_cookie().await;

    let long_token = "A".repeat(8_000);
    let many_cookies: String = (0..300)
        .map(|i| format!("c{i}=v{i}"))
        .collect::<Vec<_>>()
        .join("; ");
    let bearers: Vec<(&str, Vec<u8>)> = vec![
        (
            "a random token",
            b"Bearer hJ3kZbq0b5yQeY2lH6wU1dO9nC4mV8xR7tS2aP0fG1k".to_vec(),
        ),
        ("an alg:none JWT", format!("Bearer {alg_none}").into_bytes()),
        (
            "a JWT signed by another key",
            format!("Bearer {forged_rs256}").into_bytes(),
        ),
        (
            "a logged-out session's token",
            format!("Bearer {ended_access}").into_bytes(),
        ),
        (
            "an expired session's token",
            format!("Bearer {expired_access}").into_bytes(),
        ),
        ("an 8 KB token", format!("Bearer {long_token}").into_bytes()),
        ("Bearer and nothing", b"Bearer".to_vec()),
        ("Bearer and spaces", b"Bearer    ".to_vec()),
        ("three words", b"Bearer a b".to_vec()),
        ("Basic", b"Basic ZGVtbzpkZW1v".to_vec()),
        ("another scheme", b"Token abc".to_vec()),
        ("non-ASCII bytes", b"Bearer \xff\xfe\xfd".to_vec()),
        ("a tab", b"Bearer\tabc".to_vec()),
    ];
    let cookies: Vec<(&str, Vec<u8>)> = vec![
        (
            "a random sid",
            b"sid=hJ3kZbq0b5yQeY2lH6wU1dO9nC4mV8xR7tS2aP0fG1k".to_vec(),
        ),
        ("a logged-out sid", format!("sid={ended_sid}").into_bytes()),
        ("an expired sid", format!("sid={expired_sid}").into_bytes()),
        ("an empty sid", b"sid=".to_vec()),
        ("an 8 KB sid", format!("sid={long_token}").into_bytes()),
        ("a quoted sid", b"sid=\"abc".to_vec()),
        ("sid without a value", b"sid".to_vec()),
        ("only separators", b";;;==;".to_vec()),
        ("non-ASCII bytes", b"sid=\xff\xfe".to_vec()),
        ("300 cookies and no sid", many_cookies.clone().into_bytes()),
        (
            "a forged sid among 300 cookies",
            format!("{many_cookies}; sid=forged").into_bytes(),
        ),
    ];
    for (method, route) in SESSION_ROUTES {
        for (label, value) in &bearers {
            Probe::new(format!("Authorization: {label}"), method.clone(), route)
                .header("authorization", value)
                .expect(&app, &[400, 401])
                .await;
        }
        for (label, value) in &cookies {
            Probe::new(format!("Cookie: {label}"), method.clone(), route)
                .header("cookie", value)
                .expect(&app, &[400, 401])
                .await;
        }
        // Two different sid cookies (one shadowing the other): 400, never a guess.
        Probe::new("two sid cookies", method.clone(), route)
            .header("cookie", format!("sid={live_sid}; sid={ended_sid}"))
            .expect(&app, &[400])
            .await;
        Probe::new("two Cookie headers with a sid each", method.clone(), route)
            .header("cookie", format!("sid={live_sid}"))
            .header("cookie", format!("sid={ended_sid}"))
            .expect(&app, &[400])
            .await;
        // Another client than the session's: 401 (a refresh with the session's own refresh
        // token, so only the client is wrong).
        let refresh_body = json!({"refresh_token": live["refreshToken"]}).to_string();
        let mut probe = Probe::new("the session of another client", method.clone(), route)
            .header("authorization", format!("Bearer {live_access}"))
            .header("client-type", "plain");
        if *method == Method::POST {
            probe = probe.body(Some("application/json"), refresh_body.clone());
        }
        probe.expect(&app, &[401]).await;
        Probe::new("an unknown client-type", method.clone(), route)
            .header("authorization", format!("Bearer {live_access}"))
            .header("client-type", "nope")
            .expect(&app, &[400, 401])
            .await;
    }
    still_serving(&app, "forged and expired credentials").await;

    // `/logout` needs no session: a forged credential ends nothing and still redirects.
    for (label, value) in bearers.iter().take(5) {
        let (label, answer) = Probe::new(*label, Method::GET, "/logout")
            .header("authorization", value)
            .send(&app)
            .await;
        assert_eq!(answer.status, 302, "{label}: {}", answer.text());
    }
    // The live session saw none of it.
    let response = app
        .client
        .get(app.url("/userinfo"))
        .header("cookie", format!("{many_cookies}; sid={live_sid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "a sid among 300 cookies");
    assert_eq!(app.userinfo_bearer(&live_access).await.status(), 200);
    still_serving(&app, "logouts with forged credentials").await;
}

#[actix_rt::test]
async fn browser_routes_answer_bad_queries_with_json_400s() {
    let app = spawn_app().await;
    let long = "a".repeat(10_000);
    let long_redirect = format!("redirect=/{long}");
    let long_state = format!("code=x&state={long}");
    let long_code = format!("code={long}&state=x");
    let cases: Vec<(&str, &str, String)> = vec![
        (
            "/authorize",
            "redirect repeated",
            "redirect=/a&redirect=/b".into(),
        ),
        (
            "/authorize",
            "redirect and redirectUri differ",
            "redirect=/a&redirectUri=/b".into(),
        ),
        (
            "/authorize",
            "connection repeated",
            "connection=a&connection=b".into(),
        ),
        ("/authorize", "invalid UTF-8", "redirect=%FF%FE".into()),
        ("/authorize", "a NUL byte", "redirect=/a%00b".into()),
        (
            "/authorize",
            "CR LF",
            "redirect=/a%0d%0aSet-Cookie:%20x=1".into(),
        ),
        (
            "/authorize",
            "another site",
            "redirect=//evil.example".into(),
        ),
        (
            "/authorize",
            "a backslash",
            "redirect=/%5Cevil.example".into(),
        ),
        (
            "/authorize",
            "an absolute URL",
            "redirect=https://evil.example/".into(),
        ),
        (
            "/authorize",
            "an encoded slash",
            "redirect=/%2F%2Fevil.example".into(),
        ),
        (
            "/authorize",
            "double encoding",
            "redirect=%252F%252Fevil.example".into(),
        ),
        ("/authorize", "10 KB", long_redirect.clone()),
        (
            "/authorize",
            "an unknown connection",
            "connection=%00nope".into(),
        ),
        ("/oauth/callback", "no state", "code=x".into()),
        (
            "/oauth/callback",
            "a forged state",
            "code=x&state=forged".into(),
        ),
        (
            "/oauth/callback",
            "state repeated",
            "code=x&state=a&state=b".into(),
        ),
        (
            "/oauth/callback",
            "code repeated",
            "code=x&code=y&state=a".into(),
        ),
        (
            "/oauth/callback",
            "invalid UTF-8",
            "code=%80&state=%C3%28".into(),
        ),
        ("/oauth/callback", "a NUL byte", "code=%00&state=%00".into()),
        (
            "/oauth/callback",
            "an error for a forged state",
            "error=access_denied&error_description=%FF&state=forged".into(),
        ),
        ("/oauth/callback", "a 10 KB state", long_state),
        ("/oauth/callback", "a 10 KB code", long_code),
        (
            "/logout",
            "redirect repeated",
            "redirect=/a&redirect=/b".into(),
        ),
        ("/logout", "invalid UTF-8", "redirect=%FF".into()),
        ("/logout", "a NUL byte", "redirect=/%00".into()),
        ("/logout", "another site", "redirect=//evil.example".into()),
        (
            "/logout",
            "an encoded backslash",
            "redirect=/%5C%5Cevil.example".into(),
        ),
        (
            "/logout",
            "CR LF",
            "redirect=/%0d%0aLocation:%20https://evil.example".into(),
        ),
        ("/logout", "10 KB", long_redirect),
    ];
    for (route, label, query) in &cases {
        let path = format!("{route}?{query}");
        Probe::new(*label, Method::GET, &path)
            .expect(&app, &[400])
            .await;
    }
    still_serving(&app, "bad queries").await;

    // A relative path is a relative path, whatever its bytes: percent-encoded bytes that are not
    // UTF-8 (a legacy Latin-1 link) or a `%` that encodes nothing stay on the site, so the login
    // starts.
    for (label, path) in [
        (
            "invalid UTF-8 after a slash",
            "/authorize?redirect=/caf%E9%C3%28",
        ),
        ("a % that encodes nothing", "/authorize?redirect=/100%zz"),
    ] {
        let (label, answer) = Probe::new(label, Method::GET, path).send(&app).await;
        assert_eq!(answer.status, 302, "{label}: {}", answer.text());
    }

    // A Host that cannot build a URL, an unknown client, bytes that are not ASCII.
    for route in BROWSER_ROUTES {
        let path = format!("{route}?redirect=/ok&code=x&state=x");
        Probe::new("an unknown client-type", Method::GET, &path)
            .header("client-type", "nope")
            .expect(&app, &[400, 401])
            .await;
    }
    for (label, host) in [
        ("a Host with a path", "evil.example/x".as_bytes()),
        ("a Host with a user", b"user@evil.example"),
        ("a Host of non-ASCII bytes", b"\xff\xfe.example"),
        ("a Host with a bad port", b"example.com:99999"),
    ] {
        Probe::new(label, Method::GET, "/logout?redirect=/")
            .header("host", host)
            .expect(&app, &[400])
            .await;
    }
    still_serving(&app, "bad clients and hosts").await;
}

/// A `client-type` whose bytes are not ASCII names a client no config can have: 401 like any
/// unknown client (SPEC §4), never a silent fall back to `defaultClient` or the session's client.
#[actix_rt::test]
async fn a_client_type_that_is_not_ascii_is_an_unknown_client() {
    let app = spawn_app().await;
    let tokens = app.login_tokens().await;
    let bearer = format!("Bearer {}", tokens["accessToken"].as_str().unwrap());
    let mut accepted = Vec::new();
    for (method, route) in EVERY_ROUTE {
        // The callback takes its client from the login's state record.
        if route.starts_with("/-/")
            || *route == "/documentation/json"
            || *route == "/oauth/callback"
        {
            continue;
        }
        for value in [&b"\xe9nope"[..], b"api\xff", b"\xff\xfe"] {
            let mut probe = Probe::new(
                format!("client-type {:?}", String::from_utf8_lossy(value)),
                method.clone(),
                route,
            )
            .header("client-type", value);
            if *route != "/oauth/token" {
                probe = probe.header("authorization", &bearer);
                if *method == Method::POST {
                    probe = probe.body(
                        Some("application/json"),
                        json!({"refresh_token": tokens["refreshToken"]}).to_string(),
                    );
                }
            } else {
                probe = probe.body(
                    Some("application/x-www-form-urlencoded"),
                    format!(
                        "grant_type=password&username={}&password={}",
                        demo::USER_EMAIL,
                        demo::USER_PASSWORD
                    ),
                );
            }
            let (label, answer) = probe.send(&app).await;
            if answer.status == 401 {
                json_error(&label, &answer, &[401]);
            } else {
                accepted.push(format!("{label}: {}", answer.status));
            }
        }
    }
    assert!(
        accepted.is_empty(),
        "a client-type that is not ASCII was served as if absent:\n{}",
        accepted.join("\n")
    );
    still_serving(&app, "non-ASCII client-type headers").await;
}

#[actix_rt::test]
async fn management_routes_refuse_forged_keys_in_json() {
    let app = spawn_app_configured(
        |config| {
            config["apiKeys"] = json!([
                {"key": "web-key", "clientType": "web"},
                {"key": "admin-key", "clientType": "api", "management": true}
            ]);
        },
        &[],
    )
    .await;
    let long = "k".repeat(8_000);
    for (label, header, value) in [
        ("no key", "client-type", "api".as_bytes()),
        ("a forged key", "secret", b"admin-key2"),
        ("a prefix of the key", "secret", b"admin-"),
        ("an 8 KB key", "secret", long.as_bytes()),
        ("non-ASCII bytes", "secret", b"admin-key\xff"),
        ("a forged client-key", "client-key", b"nope"),
        ("a forged cookie key", "cookie", b"mia_client_key=nope"),
    ] {
        Probe::new(label, Method::GET, "/users/active")
            .header(header, value)
            .expect(&app, &[401])
            .await;
    }
    Probe::new("a key without management", Method::GET, "/users/active")
        .header("secret", "web-key")
        .expect(&app, &[403])
        .await;
    // Every route that needs a key refuses a forged one (the status routes need none, nor do
    // the routes a browser navigates to, SPEC §4).
    for (method, route) in EVERY_ROUTE {
        if route.starts_with("/-/")
            || *route == "/documentation/json"
            || BROWSER_ROUTES.contains(route)
        {
            continue;
        }
        Probe::new("a forged key", method.clone(), route)
            .header("secret", "forged")
            .expect(&app, &[401])
            .await;
    }
    let response = app
        .client
        .get(app.url("/users/active"))
        .header("secret", "admin-key")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    still_serving(&app, "forged API keys").await;
}

/// Sends `request` on a fresh connection and reads the answer until the server closes or
/// `wait` passes; returns the status (0 when nothing came) and the raw answer.
async fn raw(app: &TestApp, request: &[u8]) -> (u16, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    // The server may answer and close before reading everything: that is fine.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let mut chunk = [0u8; 8192];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
            }
            if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if answer.len() >= end + 4 + length {
                    break;
                }
            }
        }
    })
    .await;
    let status = String::from_utf8_lossy(&answer)
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

/// The body of a raw answer (after the head).
fn raw_body(answer: &[u8]) -> &[u8] {
    answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(&[][..], |end| &answer[end + 4..])
}

#[actix_rt::test]
async fn raw_bytes_actix_refuses_get_a_bare_4xx_and_the_rest_json_on_every_route() {
    let app = spawn_app().await;
    // actix-http reads a request head into at most 128 KiB (`MAX_BUFFER_SIZE`) and 96 headers.
    let huge = "h".repeat(200_000);
    for (method, route) in EVERY_ROUTE {
        let method = method.as_str();
        // Refused by actix-http while parsing, before any route: a bare 4xx, no body.
        for (label, request) in [
            (
                "a NUL byte in a header",
                format!("{method} {route} HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\nContent-Length: 0\r\n\r\n").into_bytes(),
            ),
            (
                "a NUL byte in the path",
                format!("{method} {route}\0 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").into_bytes(),
            ),
            (
                "raw invalid UTF-8 in the query",
                [format!("{method} {route}?redirect=/").as_bytes(), b"\xff\xfe", b" HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"].concat(),
            ),
            (
                "a 200 KB header",
                format!("{method} {route} HTTP/1.1\r\nHost: x\r\nX-A: {huge}\r\nContent-Length: 0\r\n\r\n").into_bytes(),
            ),
            (
                "a 200 KB cookie list",
                format!("{method} {route} HTTP/1.1\r\nHost: x\r\nCookie: {}\r\nContent-Length: 0\r\n\r\n", "c=v; ".repeat(40_000)).into_bytes(),
            ),
            (
                "200 headers",
                format!("{method} {route} HTTP/1.1\r\nHost: x\r\n{}Content-Length: 0\r\n\r\n", (0..200).map(|i| format!("X-{i}: v\r\n")).collect::<String>()).into_bytes(),
            ),
            (
                "no Host",
                format!("{method} {route} HTTP/1.1\r\nContent-Length: 0\r\n\r\n").into_bytes(),
            ),
            (
                "a Content-Length that is not a number",
                format!("{method} {route} HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n").into_bytes(),
            ),
            (
                "two Content-Lengths",
                format!("{method} {route} HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab").into_bytes(),
            ),
        ] {
            let (status, answer) = raw(&app, &request).await;
            assert!(
                matches!(status, 400 | 413 | 414 | 431),
                "{method} {route} ({label}): got {status}: {}",
                String::from_utf8_lossy(&answer[..answer.len().min(300)])
            );
            let body = raw_body(&answer);
            if !body.is_empty() {
                let json: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
                    panic!(
                        "{method} {route} ({label}): a body that is not the JSON error ({e}): {}",
                        String::from_utf8_lossy(body)
                    )
                });
                assert_eq!(json["statusCode"], status, "{method} {route} ({label})");
            }
        }
        // Under actix's limits the daemon reads the request: a 100 KB cookie list and 90
        // headers change nothing (the status routes and `/authorize` need no credential, the
        // rest refuse in JSON).
        for (label, request) in [
            (
                "a 100 KB cookie list",
                format!("{method} {route} HTTP/1.1\r\nHost: x\r\nCookie: {}sid=forged\r\nContent-Length: 0\r\n\r\n", "c=v; ".repeat(20_000)).into_bytes(),
            ),
            (
                "90 headers",
                format!("{method} {route} HTTP/1.1\r\nHost: x\r\n{}Content-Length: 0\r\n\r\n", (0..90).map(|i| format!("X-{i}: v\r\n")).collect::<String>()).into_bytes(),
            ),
        ] {
            let (status, answer) = raw(&app, &request).await;
            let label = format!("{method} {route} ({label})");
            assert!(
                (200..500).contains(&status),
                "{label}: got {status}: {}",
                String::from_utf8_lossy(&answer[..answer.len().min(300)])
            );
            if status >= 400 {
                let body: Value = serde_json::from_slice(raw_body(&answer)).unwrap_or_else(|e| {
                    panic!("{label}: not the JSON error ({e}): {}", String::from_utf8_lossy(&answer))
                });
                assert_eq!(body["statusCode"], status, "{label}");
            }
        }
        still_serving(&app, &format!("raw bytes on {method} {route}")).await;
    }

    // What actix lets through reaches the daemon, which answers in JSON: a malformed chunked
    // body on every body route.
    for route in BODY_ROUTES {
        let (status, answer) = raw(
            &app,
            format!("POST {route} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n").as_bytes(),
        )
        .await;
        assert!(
            (400..500).contains(&status),
            "POST {route} (bad chunk): {status}"
        );
        let body = raw_body(&answer);
        let json: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
            panic!(
                "POST {route} (bad chunk): not the JSON error ({e}): {}",
                String::from_utf8_lossy(&answer)
            )
        });
        assert_eq!(json["statusCode"], status);
    }
    still_serving(&app, "malformed chunked bodies").await;
}

#[actix_rt::test]
async fn status_routes_ignore_junk_and_the_daemon_still_logs_users_in() {
    let app = spawn_app().await;
    let many_cookies: String = (0..300)
        .map(|i| format!("c{i}=v{i}"))
        .collect::<Vec<_>>()
        .join("; ");
    for route in STATUS_ROUTES {
        let path = format!("{route}?a=1&a=2&%FF=%00&redirect=//evil");
        let response = app
            .client
            .get(app.url(&path))
            .header("authorization", "Bearer forged")
            .header("cookie", many_cookies.as_str())
            .header("secret", "forged")
            .header("client-type", "nope")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
    }
    still_serving(&app, "junk on status routes").await;
    // After everything, a real login and its session work.
    let tokens = app.login_tokens().await;
    let access = tokens["accessToken"].as_str().unwrap();
    let response = app.userinfo_bearer(access).await;
    assert_eq!(response.status(), 200);
    let claims: Value = response.json().await.unwrap();
    assert_eq!(claims["sub"], demo::USER_ID);
}
