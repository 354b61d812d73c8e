//! Throw-away `redis-server` processes for tests (the unit tests here and the e2e tests, through
//! the `test-hooks` feature): the one place tests start Redis.
//!
//! Each server listens on 127.0.0.1 and a free port, keeps nothing on disk (`--save ''
//! --appendonly no`, its folder a temporary one), runs in the foreground as a child of the test,
//! and is killed when its handle is dropped.
//!
//! ```ignore
//! use auth0_client::store::redis::testing::{RedisServer, RedisSentinel};
//! let redis = RedisServer::start();                   // plain
//! let hosts = redis.host_port();                      // "127.0.0.1:PORT", for REDIS_HOSTS
//! redis.pause();                                      // SIGSTOP: connections stay, nothing answers
//! redis.resume();                                     // SIGCONT
//! let secured = RedisServer::builder().password("pw").start();          // requirepass
//! let acl = RedisServer::builder().user("daemon", "pw").start();        // an ACL user
//! let tls = RedisServer::builder().tls().start();     // TLS only, throw-away CA: tls.ca_cert()
//! let sentinel = RedisSentinel::start("mymaster");    // a master and one sentinel
//! let ha = RedisSentinel::start_with_replica("mymaster"); // + a replica it fails over to
//! ```
//!
//! A missing `redis-server` panics with "redis-server not found: install it (apt-get install
//! redis-server)": a test that needs Redis never passes without it. TLS needs `openssl` on PATH
//! and a `redis-server` built with TLS: [`RedisServer::tls_supported`] says whether both hold, and
//! why not.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NOT_FOUND: &str = "redis-server not found: install it (apt-get install redis-server)";
/// How long a server may take to answer after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `redis-server`, killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    password: Option<String>,
    user: Option<(String, String)>,
    tls: bool,
    dir: tempfile::TempDir,
}

/// How to start a [`RedisServer`]: [`RedisServer::builder`].
#[derive(Clone, Debug, Default)]
pub struct RedisServerBuilder {
    password: Option<String>,
    user: Option<(String, String)>,
    tls: bool,
    port: Option<u16>,
    replica_of: Option<(u16, Option<String>)>,
    /// The ACL rules of `user`; every permission when empty.
    rules: Vec<String>,
}

impl RedisServerBuilder {
    /// A replica of `master` (`--replicaof`, with `masterauth` when the master has a password).
    pub fn replica_of(mut self, master: &RedisServer) -> Self {
        self.replica_of = Some((master.port, master.password.clone()));
        self
    }

    /// `requirepass`: the default user's password (AUTH with a password only).
    pub fn password(mut self, password: &str) -> Self {
        self.password = Some(password.to_owned());
        self
    }

    /// An ACL user with every permission, and the default user disabled (AUTH user password).
    pub fn user(mut self, name: &str, password: &str) -> Self {
        self.user = Some((name.to_owned(), password.to_owned()));
        self
    }

    /// An ACL user with only `rules` (`~pattern`, `+@category`, ...), the default user disabled.
    pub fn user_with_rules(mut self, name: &str, password: &str, rules: &[&str]) -> Self {
        self.user = Some((name.to_owned(), password.to_owned()));
        self.rules = rules.iter().map(|r| (*r).to_owned()).collect();
        self
    }

    /// TLS only (no plain port), with a throw-away CA: see [`RedisServer::ca_cert`]. Panics when
    /// TLS is not available here; check [`RedisServer::tls_supported`] first.
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Listens on `port` instead of a free one (to restart a server where it was).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Starts the server and waits until it answers. A free port another process took in the
    /// meantime is replaced by another one.
    pub fn start(self) -> RedisServer {
        let mut why = String::new();
        for _ in 0..5 {
            let port = self.port.unwrap_or_else(free_port);
            match self.try_start(port) {
                Ok(server) => return server,
                Err(failure) if self.port.is_none() && failure.contains("already in use") => {
                    why = failure;
                }
                Err(failure) => panic!("{failure}"),
            }
        }
        panic!("redis-server found no free port: {why}");
    }

    fn try_start(&self, port: u16) -> Result<RedisServer, String> {
        let dir = tempfile::tempdir().expect("a temporary folder for redis-server");
        let mut args: Vec<String> = vec![
            "--bind".into(),
            "127.0.0.1".into(),
            "--save".into(),
            String::new(),
            "--appendonly".into(),
            "no".into(),
            "--dir".into(),
            dir.path().display().to_string(),
            "--logfile".into(),
            dir.path().join("redis.log").display().to_string(),
            "--daemonize".into(),
            "no".into(),
            // A replica syncs at once instead of after the default 5 s.
            "--repl-diskless-sync-delay".into(),
            "0".into(),
        ];
        if self.tls {
            let files = throwaway_tls(dir.path());
            args.extend([
                "--port".into(),
                "0".into(),
                "--tls-port".into(),
                port.to_string(),
                "--tls-cert-file".into(),
                files.cert.display().to_string(),
                "--tls-key-file".into(),
                files.key.display().to_string(),
                "--tls-ca-cert-file".into(),
                files.ca.display().to_string(),
                "--tls-auth-clients".into(),
                "no".into(),
            ]);
        } else {
            args.extend(["--port".into(), port.to_string()]);
        }
        if let Some(password) = &self.password {
            args.extend(["--requirepass".into(), password.clone()]);
        }
        if let Some((master, auth)) = &self.replica_of {
            args.extend(["--replicaof".into(), "127.0.0.1".into(), master.to_string()]);
            if let Some(auth) = auth {
                args.extend(["--masterauth".into(), auth.clone()]);
            }
        }
        if let Some((name, password)) = &self.user {
            args.extend([
                "--user".into(),
                name.clone(),
                "on".into(),
                format!(">{password}"),
            ]);
            if self.rules.is_empty() {
                args.extend(["~*".into(), "&*".into(), "+@all".into()]);
            } else {
                args.extend(self.rules.iter().cloned());
            }
            args.extend(["--user".into(), "default".into(), "off".into()]);
        }
        let child = spawn("redis-server", &args);
        let mut server = RedisServer {
            child: Some(child),
            port,
            password: self.password.clone(),
            user: self.user.clone(),
            tls: self.tls,
            dir,
        };
        server.wait_until_ours()?;
        Ok(server)
    }
}

impl RedisServer {
    /// A plain server: no password, no TLS.
    pub fn start() -> Self {
        Self::builder().start()
    }

    pub fn builder() -> RedisServerBuilder {
        RedisServerBuilder::default()
    }

    /// Whether this machine can run a TLS server (`openssl` on PATH and a `redis-server` built
    /// with TLS); `Err` says why not.
    pub fn tls_supported() -> Result<(), String> {
        if Command::new("openssl")
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_or(true, |s| !s.success())
        {
            return Err("openssl is not on PATH".into());
        }
        // With nowhere to listen the server exits at once; a build without TLS first refuses
        // `tls-port` as a bad directive.
        let output = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", "0", "--save", ""])
            .output();
        let output = match output {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!("{NOT_FOUND}"),
            Err(e) => return Err(format!("redis-server does not run: {e}")),
            Ok(output) => output,
        };
        let said = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        if said.contains("Bad directive") || !said.contains("not listen anywhere") {
            return Err(format!(
                "redis-server was built without TLS: {}",
                said.trim()
            ));
        }
        Ok(())
    }

    /// `127.0.0.1:PORT`: a `REDIS_HOSTS` entry.
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://[user:password@]127.0.0.1:PORT` (`rediss://` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        let auth = match (&self.user, &self.password) {
            (Some((user, password)), _) => format!("{user}:{password}@"),
            (None, Some(password)) => format!(":{password}@"),
            (None, None) => String::new(),
        };
        format!("{scheme}://{auth}127.0.0.1:{}", self.port)
    }

    /// The process id (for signals).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The throw-away CA's certificate (PEM) of a TLS server: `REDIS_TLS_CACERT`.
    pub fn ca_cert(&self) -> Option<PathBuf> {
        self.tls.then(|| self.dir.path().join("ca.crt"))
    }

    /// SIGSTOP: the server keeps its connections and answers nothing until [`Self::resume`].
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// SIGCONT after [`Self::pause`].
    pub fn resume(&self) {
        self.signal("CONT");
    }

    /// Kills the server now (SIGKILL), as a crash would; the handle stays valid (its port is then
    /// free for [`RedisServerBuilder::port`]).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs a command over a plain connection (with the server's credentials) and returns the
    /// reply as text: `+OK`, `:1`, bulk strings as their text, arrays one element a line.
    /// Not for TLS servers.
    pub fn command(&self, args: &[&str]) -> String {
        let mut stream = connect(self.port).expect("redis-server answers");
        self.authenticate(&mut stream).expect("AUTH");
        request(&mut stream, args).expect("redis-server answers the command")
    }

    /// Every key (`KEYS *`), for tests that inspect the layout.
    pub fn keys(&self) -> Vec<String> {
        self.command(&["KEYS", "*"])
            .lines()
            .map(str::to_owned)
            .filter(|k| !k.is_empty())
            .collect()
    }

    fn signal(&self, signal: &str) {
        let pid = self.pid();
        assert!(pid > 0, "the redis-server was killed");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {pid} failed");
    }

    fn authenticate(&self, stream: &mut TcpStream) -> std::io::Result<()> {
        match (&self.user, &self.password) {
            (Some((user, password)), _) => request(stream, &["AUTH", user, password]).map(drop),
            (None, Some(password)) => request(stream, &["AUTH", password]).map(drop),
            (None, None) => Ok(()),
        }
    }

    /// Waits until this server (not another process that took the port) answers.
    fn wait_until_ours(&mut self) -> Result<(), String> {
        let started = Instant::now();
        let pid = self.pid().to_string();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                self.child = None;
                return Err(format!(
                    "redis-server exited ({status}) instead of listening on {}: {stderr} {}",
                    self.port,
                    self.log()
                ));
            }
            if self.tls {
                // No plain-text question to ask: listening and still alive after a moment.
                if connect(self.port).is_ok() {
                    std::thread::sleep(Duration::from_millis(100));
                    if let Some(child) = self.child.as_mut()
                        && let Ok(None) = child.try_wait()
                    {
                        return Ok(());
                    }
                }
            } else {
                let answer = connect(self.port).and_then(|mut stream| {
                    self.authenticate(&mut stream)?;
                    request(&mut stream, &["INFO", "server"])
                });
                match answer {
                    Ok(info)
                        if info
                            .lines()
                            .any(|l| l.trim_end() == format!("process_id:{pid}")) =>
                    {
                        return Ok(());
                    }
                    // A user without INFO (a confined ACL): answering, and still alive.
                    Err(e) if e.to_string().contains("NOPERM") => {
                        std::thread::sleep(Duration::from_millis(100));
                        if let Some(child) = self.child.as_mut()
                            && let Ok(None) = child.try_wait()
                        {
                            return Ok(());
                        }
                    }
                    _ => {}
                }
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(format!(
                    "redis-server did not answer on {} within {START_TIMEOUT:?}: {}",
                    self.port,
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A master [`RedisServer`] and one sentinel watching it under a name; both killed on drop.
pub struct RedisSentinel {
    master: RedisServer,
    replica: Option<RedisServer>,
    sentinel: Option<Child>,
    port: u16,
    _dir: tempfile::TempDir,
}

impl RedisSentinel {
    /// Starts a plain master and a sentinel monitoring it as `master_name`, and waits until the
    /// sentinel names the master.
    pub fn start(master_name: &str) -> Self {
        Self::start_with(RedisServer::start(), master_name)
    }

    /// A sentinel for an already started master (say, one with a password: the sentinel is told
    /// it with `auth-pass`).
    pub fn start_with(master: RedisServer, master_name: &str) -> Self {
        Self::start_watching(master, None, master_name)
    }

    /// A master, a replica in sync with it, and a sentinel that fails over to the replica about
    /// a second after the master stops answering (kill it with `master_mut().kill()`).
    pub fn start_with_replica(master_name: &str) -> Self {
        let master = RedisServer::start();
        let replica = RedisServer::builder().replica_of(&master).start();
        let started = Instant::now();
        while !master
            .command(&["INFO", "replication"])
            .contains("state=online")
        {
            assert!(
                started.elapsed() < START_TIMEOUT,
                "the replica did not connect"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self::start_watching(master, Some(replica), master_name)
    }

    fn start_watching(
        master: RedisServer,
        replica: Option<RedisServer>,
        master_name: &str,
    ) -> Self {
        let dir = tempfile::tempdir().expect("a temporary folder for the sentinel");
        let port = free_port();
        let mut conf = format!(
            "port {port}\nbind 127.0.0.1\ndir {}\nlogfile {}\n\
             sentinel monitor {master_name} 127.0.0.1 {} 1\n\
             sentinel down-after-milliseconds {master_name} 500\n\
             sentinel failover-timeout {master_name} 2000\n",
            dir.path().display(),
            dir.path().join("sentinel.log").display(),
            master.port,
        );
        if let Some(password) = &master.password {
            conf.push_str(&format!("sentinel auth-pass {master_name} {password}\n"));
        }
        let path = dir.path().join("sentinel.conf");
        std::fs::write(&path, conf).expect("the sentinel's config is written");
        let child = spawn(
            "redis-server",
            &[path.display().to_string(), "--sentinel".into()],
        );
        let sentinel = Self {
            master,
            replica,
            sentinel: Some(child),
            port,
            _dir: dir,
        };
        let started = Instant::now();
        loop {
            let answer = connect(port).and_then(|mut s| {
                request(
                    &mut s,
                    &["SENTINEL", "get-master-addr-by-name", master_name],
                )
            });
            let knows_replica = || match &sentinel.replica {
                None => true,
                Some(replica) => connect(port)
                    .and_then(|mut s| request(&mut s, &["SENTINEL", "replicas", master_name]))
                    .is_ok_and(|a| a.contains(&replica.port.to_string())),
            };
            if answer
                .as_deref()
                .is_ok_and(|a| a.contains(&sentinel.master.port.to_string()))
                && knows_replica()
            {
                return sentinel;
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "the sentinel on {port} did not name the master: {answer:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `127.0.0.1:PORT` of the sentinel: the `REDIS_HOSTS` entry in sentinel mode.
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn master(&self) -> &RedisServer {
        &self.master
    }

    pub fn master_mut(&mut self) -> &mut RedisServer {
        &mut self.master
    }

    /// The replica of [`Self::start_with_replica`].
    pub fn replica(&self) -> Option<&RedisServer> {
        self.replica.as_ref()
    }

    /// The port of the master the sentinel names now.
    pub fn master_port_now(&self, master_name: &str) -> Option<u16> {
        let answer = connect(self.port)
            .and_then(|mut s| {
                request(
                    &mut s,
                    &["SENTINEL", "get-master-addr-by-name", master_name],
                )
            })
            .ok()?;
        answer.lines().nth(1)?.parse().ok()
    }
}

impl Drop for RedisSentinel {
    fn drop(&mut self) {
        if let Some(mut child) = self.sentinel.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

fn spawn(program: &str, args: &[String]) -> Child {
    match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!("{NOT_FOUND}"),
        Err(e) => panic!("cannot start {program}: {e}"),
    }
}

fn connect(port: u16) -> std::io::Result<TcpStream> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    Ok(stream)
}

/// Sends one command in RESP and reads one reply as text (see [`RedisServer::command`]).
fn request(stream: &mut TcpStream, args: &[&str]) -> std::io::Result<String> {
    let mut out = format!("*{}\r\n", args.len());
    for arg in args {
        out.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(out.as_bytes())?;
    let mut reader = BufReader::new(stream);
    let reply = read_reply(&mut reader)?;
    if let Some(error) = reply.strip_prefix('-') {
        return Err(std::io::Error::other(error.to_owned()));
    }
    Ok(reply)
}

fn read_reply(reader: &mut BufReader<&mut TcpStream>) -> std::io::Result<String> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let line = line.trim_end_matches(['\r', '\n']);
    let (kind, rest) = line.split_at(line.len().min(1));
    match kind {
        "+" => Ok(rest.to_owned()),
        "-" => Ok(line.to_owned()),
        ":" => Ok(rest.to_owned()),
        "$" => {
            let len: i64 = rest.parse().map_err(std::io::Error::other)?;
            if len < 0 {
                return Ok(String::new());
            }
            let len = usize::try_from(len).map_err(std::io::Error::other)?;
            let mut bytes = vec![0; len + 2];
            reader.read_exact(&mut bytes)?;
            bytes.truncate(len);
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        }
        "*" => {
            let count: i64 = rest.parse().map_err(std::io::Error::other)?;
            let mut items = Vec::new();
            for _ in 0..count.max(0) {
                items.push(read_reply(reader)?);
            }
            Ok(items.join("\n"))
        }
        _ => Err(std::io::Error::other(format!("not a RESP reply: {line:?}"))),
    }
}

struct TlsFiles {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// A CA and a server certificate for 127.0.0.1 and localhost, made with the `openssl` CLI.
fn throwaway_tls(dir: &Path) -> TlsFiles {
    if let Err(why) = RedisServer::tls_supported() {
        panic!("a TLS redis-server cannot run here: {why}");
    }
    let run = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(
            output.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=auth0-client test CA",
    ]);
    run(&ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    run(&csr);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("the extensions file is written");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    TlsFiles {
        ca: dir.join("ca.crt"),
        cert: dir.join("server.crt"),
        key: dir.join("server.key"),
    }
}
