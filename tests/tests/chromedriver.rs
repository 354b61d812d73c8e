//! A real headless Chromium for the browser tests, driven over WebDriver (`fantoccini`).
//!
//! One `chromedriver --port=P` per test process, on a free loopback port, started by the first
//! test that asks for a browser. It runs in a process group of its own, and a small watchdog
//! (`sh`) kills that group, Chromium included, and removes the driver's log once this test process
//! has gone, however it ended.
//! Each test gets its own browser session with a fresh profile (`--user-data-dir` in a temporary
//! folder), so no cookie crosses from one test to another; the session is ended when the
//! [`Browser`] is dropped, even when the test panics.
//!
//! Chromium runs with the flags known to work on a machine whose only network is loopback
//! (`/work/.library/env/machines/rust.md`): without the background-networking ones it keeps
//! trying Google's hosts.

use std::future::Future;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator, cookies::Cookie};
use serde_json::{Value, json};

use crate::testkit::eventually;

/// How long any one browser step (a navigation, a click, a lookup) may take.
pub const STEP: Duration = Duration::from_secs(20);

const INSTALL: &str = "install Debian's browser and its driver: `apt-get install chromium chromium-driver` \
     (set CHROMEDRIVER and CHROMIUM to use other paths)";

/// The flags every Chromium of the tests runs with (the profile folder is added per session).
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless=new",
    // CI runs as root, where Chromium's sandbox cannot start.
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--password-store=basic",
    "--window-size=1024,768",
];

/// The shared `chromedriver` of this test process.
struct Chromedriver {
    port: u16,
    chromium: PathBuf,
}

/// A program from an environment variable, else the first of `candidates` that exists, else the
/// name looked up in `PATH`.
fn find_program(variable: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(variable) {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let names: Vec<PathBuf> = candidates.iter().map(PathBuf::from).collect();
    if let Some(found) = names.iter().find(|p| p.is_absolute() && p.is_file()) {
        return Some(found.clone());
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .flat_map(|dir| {
            names
                .iter()
                .filter_map(|n| n.file_name())
                .map(move |n| dir.join(n))
        })
        .find(|p| p.is_file())
}

/// A port nobody listens on right now (the OS picks it; a race with another process is possible
/// but harmless here: the driver then fails to start and says so).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot bind a loopback port")
}

/// A plain HTTP/1.1 request to `127.0.0.1:port`, for the driver's `/status` and for ending a
/// session from `Drop` (no async runtime there). Returns the answer read until its
/// `Content-Length` is complete (chromedriver keeps the connection open), or `None`.
fn raw_http(port: u16, method: &str, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    )
    .ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
        }
        let text = String::from_utf8_lossy(&answer);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .filter_map(|line| line.split_once(':'))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, value)| value.trim().parse::<usize>().ok());
            if length.is_some_and(|length| body.len() >= length) {
                break;
            }
        }
    }
    (!answer.is_empty()).then(|| String::from_utf8_lossy(&answer).into_owned())
}

fn start_chromedriver() -> Result<Chromedriver, String> {
    let driver = find_program("CHROMEDRIVER", &["/usr/bin/chromedriver", "chromedriver"])
        .ok_or_else(|| format!("no chromedriver found: {INSTALL}"))?;
    let chromium = find_program("CHROMIUM", &["/usr/bin/chromium", "chromium"])
        .ok_or_else(|| format!("no chromium found: {INSTALL}"))?;
    let port = free_port();
    let log = std::env::temp_dir().join(format!("e2e-chromedriver-{}.log", std::process::id()));
    // Its own process group, so the watchdog ends the driver and every browser it started.
    let mut command = Command::new(&driver);
    command
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .arg(format!("--log-path={}", log.display()))
        .arg("--log-level=WARNING")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}; {INSTALL}", driver.display()))?;
    let group = child.id();
    assert!(group > 1, "chromedriver has pid {group}");
    // The watchdog outlives this process by at most a second: the test harness never runs the
    // destructors of statics, so nothing else would stop the driver at exit. It signals the group
    // with `kill -s SIG -- -PGID`, the one portable spelling: procps' `kill -KILL -PGID` reads the
    // negative number as options and can end up signalling every process (`kill(-1)`).
    Command::new("sh")
        .arg("-c")
        .arg(
            r#"while kill -0 "$1" 2>/dev/null; do sleep 1; done; kill -s TERM -- "-$2" 2>/dev/null; sleep 2; kill -s KILL -- "-$2" 2>/dev/null; rm -f "$3"; exit 0"#,
        )
        .arg("chromedriver-watchdog")
        .arg(std::process::id().to_string())
        .arg(group.to_string())
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the chromedriver watchdog (sh): {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(answer) = raw_http(port, "GET", "/status")
            && answer.contains("\"ready\":true")
        {
            return Ok(Chromedriver { port, chromium });
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{} did not answer on port {port} within 15 s (its log: {})",
                driver.display(),
                log.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The driver, started once per test process. A machine without it FAILS the test, naming the
/// packages to install: a browser test never passes by not running.
fn chromedriver() -> &'static Chromedriver {
    static DRIVER: OnceLock<Result<Chromedriver, String>> = OnceLock::new();
    match DRIVER.get_or_init(start_chromedriver) {
        Ok(driver) => driver,
        Err(reason) => panic!("browser tests need chromedriver and chromium: {reason}"),
    }
}

/// `step` awaited at most [`STEP`]; a WebDriver error or a timeout fails the test, naming `what`.
pub async fn within<T, E: std::fmt::Debug>(
    what: &str,
    step: impl Future<Output = Result<T, E>>,
) -> T {
    match tokio::time::timeout(STEP, step).await {
        Ok(Ok(value)) => value,
        Ok(Err(error)) => panic!("browser step `{what}` failed: {error:?}"),
        Err(_) => panic!("browser step `{what}` took more than {STEP:?}"),
    }
}

/// One browser session: a fresh headless Chromium with an empty profile.
pub struct Browser {
    pub client: Client,
    session: String,
    driver_port: u16,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn start() -> Self {
        let driver = chromedriver();
        let profile = tempfile::tempdir().unwrap();
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| (*f).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let capabilities = json!({
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": {"pageLoad": 15_000, "script": 10_000, "implicit": 0},
            "goog:chromeOptions": {
                "binary": driver.chromium,
                "args": args,
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let client = within(
            "start a Chromium session",
            ClientBuilder::new(connector)
                .capabilities(capabilities)
                .connect(&format!("http://127.0.0.1:{}", driver.port)),
        )
        .await;
        let session = within("read the session id", client.session_id())
            .await
            .expect("chromedriver gave no session id");
        Self {
            client,
            session,
            driver_port: driver.port,
            _profile: profile,
        }
    }

    /// Navigates to `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        within(&format!("go to {url}"), self.client.goto(url)).await;
    }

    pub async fn url(&self) -> String {
        within("read the URL", self.client.current_url())
            .await
            .to_string()
    }

    /// Waits until the page's URL satisfies `done` (navigations after a click or a redirect
    /// chain), at most [`STEP`]; fails naming `what` and the last URL seen.
    pub async fn wait_for_url(&self, what: &str, done: impl Fn(&reqwest::Url) -> bool) -> String {
        let url = eventually(&format!("the browser to reach {what}"), STEP, async || {
            let url = within("read the URL", self.client.current_url()).await;
            let url = reqwest::Url::parse(url.as_str()).unwrap();
            if done(&url) {
                Ok(url)
            } else {
                Err(format!("it is at {url}"))
            }
        })
        .await;
        // The navigation has committed; let its load finish before reading the page.
        self.wait_loaded().await;
        url.to_string()
    }

    /// Waits for `document.readyState == "complete"`.
    pub async fn wait_loaded(&self) {
        eventually("the page to finish loading", STEP, async || {
            let state = within(
                "read document.readyState",
                self.client.execute("return document.readyState", vec![]),
            )
            .await;
            state == "complete"
        })
        .await;
    }

    /// Waits for the element `css` to appear and returns it.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        within(
            &format!("find `{css}`"),
            self.client
                .wait()
                .at_most(STEP)
                .every(Duration::from_millis(100))
                .for_element(Locator::Css(css)),
        )
        .await
    }

    /// Types `text` into the input `css`.
    pub async fn fill(&self, css: &str, text: &str) {
        let input = self.find(css).await;
        within(&format!("type into `{css}`"), input.send_keys(text)).await;
    }

    /// Clicks the element `css` (a submit button: the browser then navigates).
    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        within(&format!("click `{css}`"), element.click()).await;
    }

    /// The text of the page's body, as a user reads it (a JSON answer shows as its text).
    pub async fn text(&self) -> String {
        let body = self.find("body").await;
        within("read the page text", body.text()).await
    }

    /// The page's text parsed as JSON; fails with the text when it is not.
    pub async fn json(&self) -> Value {
        let text = self.text().await;
        match serde_json::from_str(&text) {
            Ok(json) => json,
            Err(e) => panic!("the page at {} is not JSON ({e}): {text}", self.url().await),
        }
    }

    /// Every cookie the browser would send to the current page (WebDriver shows `HttpOnly` ones).
    pub async fn cookies(&self) -> Vec<Cookie<'static>> {
        within("read the cookies", self.client.get_all_cookies()).await
    }

    /// The cookie `name` the browser would send to the current page, if any.
    pub async fn cookie(&self, name: &str) -> Option<Cookie<'static>> {
        self.cookies().await.into_iter().find(|c| c.name() == name)
    }

    /// Ends the session now (also done by `Drop`).
    pub async fn close(self) {
        let client = self.client.clone();
        within("end the browser session", client.close()).await;
    }
}

impl Drop for Browser {
    /// Ends the session (closing Chromium) synchronously: a test that panicked has no runtime
    /// left to run fantoccini's own shutdown. Deleting a session that is already gone is harmless.
    fn drop(&mut self) {
        let _ = raw_http(
            self.driver_port,
            "DELETE",
            &format!("/session/{}", self.session),
        );
    }
}
