//! A peer on another address: a network namespace joined to this one by a veth pair, so a test can
//! call the daemon from a private address that is not loopback while every packet stays on this
//! machine. Needs root (`ip netns`); without it the test fails and says so. The namespace and the
//! link are removed on drop.

use std::net::Ipv4Addr;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// One namespace and its veth pair: `host_addr` is this namespace's end (the daemon listens on
/// `0.0.0.0` and is reached there), `peer_addr` the namespace's, both in one `/30` of `10.213.0.0/16`.
pub struct PeerNamespace {
    name: String,
    host_link: String,
    pub host_addr: Ipv4Addr,
    pub peer_addr: Ipv4Addr,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|error| format!("`ip` could not be run ({error}): install iproute2"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

impl PeerNamespace {
    /// Makes the namespace; panics with the reason (most often: not root) when it cannot.
    pub fn create() -> Self {
        // 16,384 `/30`s; the pid keeps two test processes apart, the counter two peers of one.
        let index =
            (std::process::id().wrapping_mul(97) + NEXT.fetch_add(1, Ordering::Relaxed)) % 16_384;
        let base = 0x0AD5_0000 | (index << 2); // 10.213.0.0/16
        let peer = Self {
            name: format!("a0c-peer-{index}"),
            host_link: format!("a0h{index}"),
            host_addr: Ipv4Addr::from(base + 1),
            peer_addr: Ipv4Addr::from(base + 2),
        };
        if let Err(error) = peer.set_up() {
            panic!(
                "a peer on another address needs a network namespace, which needs root: {error}"
            );
        }
        peer
    }

    fn set_up(&self) -> Result<(), String> {
        let peer_link = self.host_link.replacen("a0h", "a0p", 1);
        let (host, peer) = (
            format!("{}/30", self.host_addr),
            format!("{}/30", self.peer_addr),
        );
        // A namespace left by a killed run of the same index goes first.
        let _ = ip(&["link", "del", &self.host_link]);
        let _ = ip(&["netns", "del", &self.name]);
        ip(&["netns", "add", &self.name])?;
        ip(&[
            "link",
            "add",
            &self.host_link,
            "type",
            "veth",
            "peer",
            "name",
            &peer_link,
        ])?;
        ip(&["link", "set", &peer_link, "netns", &self.name])?;
        ip(&["addr", "add", &host, "dev", &self.host_link])?;
        ip(&["link", "set", &self.host_link, "up"])?;
        let netns = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &self.name, "ip"];
            all.extend_from_slice(args);
            ip(&all)
        };
        netns(&["addr", "add", &peer, "dev", &peer_link])?;
        netns(&["link", "set", &peer_link, "up"])?;
        netns(&["link", "set", "lo", "up"])
    }

    /// `program` run inside the namespace (`ip netns exec NAME program`).
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    /// `curl -sS` from the peer with `args`; the body is written to stdout, then a last line with the
    /// status code (`-w '\n%{http_code}'`). See [`CurlAnswer`].
    pub fn curl(&self, args: &[&str]) -> CurlAnswer {
        let output = self
            .command("curl")
            .args(["-sS", "--max-time", "20", "-w", "\n%{http_code}"])
            .args(args)
            .output()
            .expect("curl runs inside the namespace");
        CurlAnswer::from_output(output)
    }

    /// `http://HOST_ADDR:port`: how the peer reaches a daemon listening on `0.0.0.0:port`.
    pub fn url(&self, port: u16, path: &str) -> String {
        format!("http://{}:{port}{path}", self.host_addr)
    }
}

impl Drop for PeerNamespace {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.host_link]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// What `curl` printed: the status and the body (`-i` puts the headers in the body too).
#[derive(Debug)]
pub struct CurlAnswer {
    pub status: u16,
    pub body: String,
    pub stderr: String,
}

impl CurlAnswer {
    fn from_output(output: Output) -> Self {
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let (body, status) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
        Self {
            status: status.trim().parse().unwrap_or(0),
            body: body.to_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn json(&self) -> serde_json::Value {
        let start = self.body.find("\r\n\r\n").map_or(0, |at| at + 4);
        serde_json::from_str(&self.body[start..])
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.body))
    }
}

#[test]
fn a_peer_namespace_reaches_this_one_from_its_own_address() {
    use std::io::{Read, Write};
    let peer = PeerNamespace::create();
    let listener = std::net::TcpListener::bind((peer.host_addr, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut stream, from) = listener.accept().unwrap();
        let mut request = [0u8; 1024];
        let _ = stream.read(&mut request).unwrap();
        let body = format!("{{\"from\":\"{}\"}}", from.ip());
        write!(
            stream,
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
    });
    let answer = peer.curl(&[&peer.url(port, "/")]);
    server.join().unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["from"], peer.peer_addr.to_string());
}
