//! [`Link`]: the store's connection to Redis, which finds the server (ordered failover over
//! several hosts, or the master a sentinel names), bounds every call in time, and reconnects by
//! itself after an outage.
//!
//! | what | how |
//! |---|---|
//! | the connection | one multiplexed connection (`redis::aio::MultiplexedConnection`, many calls in flight on one socket), driven by a one-thread runtime the store owns, so its I/O never waits on a busy HTTP worker and does not die with one: it finds the master, takes every write, and is the one `/-/ready` asks |
//! | reads | through a connection of the calling thread's own (each HTTP worker and actor thread runs a current-thread runtime) to the server the link reached, made in the background on the thread's first read and replaced when the link reconnects: a cached `/userinfo`'s revision check is written and answered on its worker, without a hop to the link's runtime and back (about a third of the daemon's CPU per request). Until it is made, and when it breaks (the server closed it idle, a `CLIENT KILL`), reads use the link's connection, whose own failures alone count as the server's |
//! | a call | bounded by the response timeout (`sessions.timeoutMs`); a late answer is matched to its call and dropped, so a timeout never shifts answers |
//! | connecting | one attempt at a time, each host bounded by the connection timeout (`sessions.timeoutMs`); callers arriving while an attempt runs during an outage fail at once instead of queueing |
//! | standalone, several hosts | tried in the order given; a host is used only when `ROLE` says `master` (a replica, or an old master a failover demoted, is skipped); the link stays on the host it reached until that host fails or stops being master, then tries them all from the first again |
//! | `ROLE` refused by the ACL | a write probe (`SET <scope>probe … PX`) decides instead: `READONLY` means a replica; one warning says so |
//! | sentinel | each sentinel in order is asked for the master (`SENTINEL get-master-addr-by-name`), which must answer `ROLE` as master; sentinels are asked without credentials, then with them if they require auth |
//! | when to reconnect | the socket dropped or was refused, the server refused a write as a replica (`READONLY`, a failover), [`TIMEOUTS_BEFORE_RECONNECT`] calls in a row timed out (a frozen or black-holed server), or the re-check every [`RECHECK_EVERY`] found the host demoted (standalone: its `ROLE`; sentinel: the sentinel names another master) |
//! | after a failed attempt | calls fail at once for [`RETRY_PAUSE`], then the next call (or the re-check) tries again: a daemon started during an outage recovers by itself |
//! | writable | [`Link::writable`]: calls not failing, and the connection's host says master when asked (`ROLE` or the write probe): what `/-/ready` reports (never a bare `PING`, which a replica answers too) |
//!
//! Calls that only read are retried once on a fresh connection when the connection turned out to
//! be broken (a Redis restart between two requests); writes are retried once only when the server
//! refused them as a replica (`READONLY`: nothing was applied), never after a broken connection,
//! since one may have been applied before it broke: the caller answers 503 and its client retries.

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use futures_util::future::{BoxFuture, Shared};
use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, Client, ConnectionAddr, ErrorKind, IntoConnectionInfo as _,
    RedisConnectionInfo, RedisError, ServerErrorKind, TlsCertificates, Value,
};
use secrecy::{ExposeSecret as _, SecretString};

use crate::store::StoreError;

/// Consecutive timed-out calls after which the connection is dropped and made again.
pub(super) const TIMEOUTS_BEFORE_RECONNECT: u32 = 3;
/// How long calls fail at once after a connection attempt failed, before the next one tries.
pub(super) const RETRY_PAUSE: Duration = Duration::from_millis(250);
/// How often the link asks whether its host is still the master (and reconnects when it has none).
pub(super) const RECHECK_EVERY: Duration = Duration::from_millis(500);

/// Where Redis is and how to talk to it (from `sessions.redis`).
#[derive(Clone)]
pub(super) struct LinkOptions {
    /// `(host, port)` each: the servers in failover order, or the sentinels.
    pub endpoints: Vec<(String, u16)>,
    /// The master's name in sentinel mode; `None` in standalone mode.
    pub master_name: Option<String>,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    /// `Some` with TLS: the CA certificates (PEM) to trust, or `None` for the system's roots.
    pub tls: Option<Option<Vec<u8>>>,
    /// Bound on connecting to one host and on every call (`sessions.timeoutMs`).
    pub timeout: Duration,
    /// The key of the write probe that stands in for `ROLE` when the ACL refuses it (inside the
    /// store's scope, so the ACL of the README allows it).
    pub probe_key: String,
}

/// A connection that worked, with the generation that tells a stale handle from the current one.
#[derive(Clone)]
struct Live {
    generation: u64,
    connection: MultiplexedConnection,
    /// The server it reached (the near connections go to the same one).
    at: Server,
}

/// A server's address; `host:port` in messages.
#[derive(Clone, PartialEq, Eq)]
struct Server {
    host: String,
    port: u16,
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

type Attempt = Shared<BoxFuture<'static, Result<Live, String>>>;

#[derive(Default)]
struct State {
    current: Option<Live>,
    generation: u64,
    /// The running connection attempt, which every caller that needs a connection awaits.
    attempt: Option<Attempt>,
    /// The last failed attempt: when, and why.
    failed: Option<(Instant, String)>,
    /// Calls in a row on the current connection that timed out.
    timeouts: u32,
    /// Since when calls have been failing (timed out, connection lost or refused) with no answer
    /// in between, for [`Link::stalled`].
    failing_since: Option<Instant>,
}

/// What connection attempts and callers share.
struct Core {
    options: LinkOptions,
    state: Mutex<State>,
    /// Whether the warning about `ROLE` refused by the ACL was logged.
    role_refused_warned: AtomicBool,
}

/// The connection to Redis. Dropping it stops its runtime and closes the connection.
pub(super) struct Link {
    core: Arc<Core>,
    io: tokio::runtime::Handle,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Link {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Does not block, so a store may be dropped inside async code.
            runtime.shutdown_background();
        }
    }
}

/// One call: a command or a script invocation.
pub(super) enum Call<'a> {
    Cmd(&'a redis::Cmd),
    Script(&'a redis::ScriptInvocation<'a>),
}

/// Whether a call may be sent again after the connection broke under it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Retry {
    /// A read: sent again once on a fresh connection.
    Read,
    /// A write: never sent twice.
    Write,
}

impl Link {
    /// Starts the link's runtime; connects on the first call (or [`Link::warm_up`]).
    pub(super) fn start(options: LinkOptions) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("redis-io")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Unavailable(format!("cannot start the Redis runtime: {e}")))?;
        let core = Arc::new(Core {
            options,
            state: Mutex::new(State::default()),
            role_refused_warned: AtomicBool::new(false),
        });
        let io = runtime.handle().clone();
        io.spawn(recheck(Arc::downgrade(&core), io.clone()));
        Ok(Self {
            core,
            io,
            runtime: Some(runtime),
        })
    }

    /// Whether the store accepts writes now (`/-/ready`): calls are not failing, and the host of
    /// the connection (made at once when there is none) says it is the master, asked now (`ROLE`,
    /// or the write probe), so a replica's `PONG` never counts.
    pub(super) async fn writable(&self) -> Result<(), StoreError> {
        if let Some(why) = self.stalled() {
            return Err(StoreError::Unavailable(why));
        }
        let live = self.connection().await?;
        let mut connection = live.connection.clone();
        let role = tokio::time::timeout(
            self.core.options.timeout,
            self.core.role(&mut connection, &live.at),
        )
        .await;
        match role {
            Ok(Ok(true)) => {
                self.core.answered(live.generation);
                Ok(())
            }
            Ok(Ok(false)) => {
                let why = format!("Redis at {} is a replica now, not the master", live.at);
                self.core.demoted(&live, &why);
                Err(StoreError::Unavailable(why))
            }
            Ok(Err(why)) => {
                self.core.demoted(&live, &why);
                Err(StoreError::Unavailable(why))
            }
            Err(_) => Err(StoreError::Timeout(self.core.options.timeout)),
        }
    }

    /// Connects in the background and logs the outcome, without waiting for it.
    pub(super) fn warm_up(&self) {
        let attempt = self.core.attempt(&self.io);
        self.io.spawn(async move {
            let _ = attempt.await;
        });
    }

    /// Runs `call` within the response timeout and decodes its answer.
    pub(super) async fn run<T: redis::FromRedisValue>(
        &self,
        what: &'static str,
        retry: Retry,
        call: Call<'_>,
    ) -> Result<T, StoreError> {
        // A read goes through this thread's own connection while that one works.
        let mut near_ok = retry == Retry::Read;
        let mut failures = 0;
        loop {
            let live = self.connection().await?;
            let near = near_ok.then(|| self.core.near(&live)).flatten();
            let on_near = near.is_some();
            let mut connection = near.unwrap_or_else(|| live.connection.clone());
            let answer = match call {
                Call::Cmd(cmd) => cmd.query_async::<Value>(&mut connection).await,
                Call::Script(script) => script.invoke_async::<Value>(&mut connection).await,
            };
            let error = match answer {
                Ok(value) => {
                    self.core.answered(live.generation);
                    return redis::from_redis_value(value).map_err(|e| {
                        StoreError::Corrupt(format!("Redis answered {what} unexpectedly: {e}"))
                    });
                }
                Err(error) => error,
            };
            if on_near && breaks_connection(&error) {
                // This thread's connection broke (the server closed it idle, or the runtime that
                // drove it ended): the read goes to the link's own connection, whose answer
                // tells whether the server is gone.
                self.core.forget_near(live.generation);
                near_ok = false;
                continue;
            }
            failures += 1;
            let broken = self.core.failed(&live, &error);
            let again = match retry {
                Retry::Read => broken && !error.is_timeout(),
                // Refused as a replica: nothing was applied, so the master may take it.
                Retry::Write => refused_as_replica(&error),
            };
            if !again || failures == 2 {
                return Err(self.core.error(what, &live.at, &error));
            }
        }
    }

    /// Why the store looks stuck: calls have been failing, with no answer in between, for longer
    /// than the timeout. An idle link is never stalled.
    pub(super) fn stalled(&self) -> Option<String> {
        let state = self.core.lock();
        let failing = state.failing_since?.elapsed();
        (failing > self.core.options.timeout).then(|| {
            let why = match &state.failed {
                Some((_, why)) => format!(": {why}"),
                None => String::new(),
            };
            format!("Redis has not answered for {} ms{why}", failing.as_millis())
        })
    }

    /// The current connection, or a new one.
    async fn connection(&self) -> Result<Live, StoreError> {
        let attempt = {
            let state = self.core.lock();
            if let Some(live) = &state.current {
                return Ok(live.clone());
            }
            match (&state.attempt, &state.failed) {
                // An outage: do not queue behind an attempt that will probably fail too.
                (Some(_), Some((_, why))) => return Err(StoreError::Unavailable(why.clone())),
                (None, Some((at, why))) if at.elapsed() < RETRY_PAUSE => {
                    return Err(StoreError::Unavailable(why.clone()));
                }
                _ => {}
            }
            drop(state);
            self.core.attempt(&self.io)
        };
        attempt.await.map_err(StoreError::Unavailable)
    }
}

thread_local! {
    /// This thread's own connections, one per link (see [`Core::near`]).
    static NEAR: RefCell<Vec<Near>> = const { RefCell::new(Vec::new()) };
}

/// A link's connection made on the thread that uses it, to the server of one generation.
struct Near {
    core: Weak<Core>,
    generation: u64,
    /// `None` while it is being made, or after that failed.
    connection: Option<MultiplexedConnection>,
    /// When it was asked for, or failed: asked for again after the timeout and [`RETRY_PAUSE`].
    since: Instant,
}

impl Near {
    fn of_link(&self, core: &Arc<Core>) -> bool {
        std::ptr::eq(self.core.as_ptr(), Arc::as_ptr(core))
    }

    fn of(&self, core: &Arc<Core>, generation: u64) -> bool {
        self.generation == generation && self.of_link(core)
    }
}

impl Core {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain bookkeeping behind: keep using it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The running attempt, or a new one spawned on `io`; it stores its outcome itself, so a
    /// caller that gives up waiting does not lose a connection that was made.
    fn attempt(self: &Arc<Self>, io: &tokio::runtime::Handle) -> Attempt {
        let mut state = self.lock();
        if let Some(live) = &state.current {
            let live = live.clone();
            return async move { Ok(live) }.boxed().shared();
        }
        if let Some(attempt) = &state.attempt {
            return attempt.clone();
        }
        let core = Arc::clone(self);
        let task = io.spawn(async move {
            let outcome = connect(&core).await;
            core.settle(outcome)
        });
        // A task that panicked or was cancelled never settled: settle it here, so the next call
        // starts a new attempt instead of awaiting this one forever.
        let core = Arc::clone(self);
        let attempt = async move {
            match task.await {
                Ok(outcome) => outcome,
                Err(e) => core.settle(Err(format!("the Redis connection attempt failed: {e}"))),
            }
        }
        .boxed()
        .shared();
        state.attempt = Some(attempt.clone());
        attempt
    }

    /// This thread's own connection to the server of `live`, when the thread runs a
    /// current-thread runtime (each HTTP worker and actor thread does): a read sent on it is
    /// written and answered on this thread, without a hop to the link's runtime and back. The
    /// first call of a generation asks for one in the background and answers `None`, so the
    /// caller uses `live`'s connection meanwhile; a newer generation (a reconnect, a failover)
    /// replaces it.
    fn near(self: &Arc<Self>, live: &Live) -> Option<MultiplexedConnection> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        if runtime.runtime_flavor() != tokio::runtime::RuntimeFlavor::CurrentThread {
            return None;
        }
        NEAR.with_borrow_mut(|near| {
            near.retain(|n| n.core.strong_count() > 0);
            if let Some(i) = near.iter().position(|n| n.of_link(self)) {
                let mine = &near[i];
                let wait = self.options.timeout + RETRY_PAUSE;
                if mine.generation == live.generation
                    && (mine.connection.is_some() || mine.since.elapsed() < wait)
                {
                    return mine.connection.clone();
                }
                near.swap_remove(i);
            }
            near.push(Near {
                core: Arc::downgrade(self),
                generation: live.generation,
                connection: None,
                since: Instant::now(),
            });
            let (core, generation, at) = (Arc::clone(self), live.generation, live.at.clone());
            runtime.spawn(async move {
                let opened = open(&core.options, &at.host, at.port, true).await;
                NEAR.with_borrow_mut(|near| {
                    if let Some(mine) = near.iter_mut().find(|n| n.of(&core, generation)) {
                        match opened {
                            Ok((connection, _)) => mine.connection = Some(connection),
                            Err(_) => mine.since = Instant::now(),
                        }
                    }
                });
            });
            None
        })
    }

    /// Drops this thread's connection of `generation`; the next read asks for a new one.
    fn forget_near(self: &Arc<Self>, generation: u64) {
        NEAR.with_borrow_mut(|near| near.retain(|n| !n.of(self, generation)));
    }

    /// Records the outcome of a connection attempt.
    fn settle(
        &self,
        outcome: Result<(MultiplexedConnection, Server), String>,
    ) -> Result<Live, String> {
        let mut state = self.lock();
        state.attempt = None;
        match outcome {
            Ok((connection, at)) => {
                state.generation += 1;
                let live = Live {
                    generation: state.generation,
                    connection,
                    at,
                };
                if state.failed.take().is_some() {
                    tracing::warn!(redis = %live.at, "connected to Redis again");
                } else {
                    tracing::info!(redis = %live.at, "connected to Redis");
                }
                state.current = Some(live.clone());
                state.timeouts = 0;
                state.failing_since = None;
                Ok(live)
            }
            Err(why) => {
                let first = state.failed.is_none();
                state.failed = Some((Instant::now(), why.clone()));
                state.failing_since.get_or_insert_with(Instant::now);
                if first {
                    tracing::error!(error = %why, "cannot connect to Redis; calls answer 503 until it answers");
                }
                Err(why)
            }
        }
    }

    fn answered(&self, generation: u64) {
        let mut state = self.lock();
        if state
            .current
            .as_ref()
            .is_some_and(|l| l.generation == generation)
        {
            state.timeouts = 0;
            state.failing_since = None;
        }
    }

    /// Counts a failed call against its connection; drops the connection when it is broken.
    /// Returns whether it was.
    fn failed(&self, live: &Live, error: &RedisError) -> bool {
        let mut state = self.lock();
        let current = state
            .current
            .as_ref()
            .is_some_and(|l| l.generation == live.generation);
        if error.is_timeout() || breaks_connection(error) {
            state.failing_since.get_or_insert_with(Instant::now);
        }
        let broken = if error.is_timeout() {
            if current {
                state.timeouts += 1;
            }
            state.timeouts >= TIMEOUTS_BEFORE_RECONNECT
        } else {
            breaks_connection(error)
        };
        if broken && current {
            tracing::warn!(redis = %live.at, error = %error, "dropping the Redis connection");
            state.current = None;
            state.timeouts = 0;
        }
        broken
    }

    /// Whether the host of `live` is still the one to write to: standalone, its `ROLE` (or the
    /// write probe); sentinel, the sentinels still name it and it says master.
    async fn still_master(&self, live: &Live) -> Result<(), String> {
        let mut connection = live.connection.clone();
        match &self.options.master_name {
            None => match self.role(&mut connection, &live.at).await? {
                true => Ok(()),
                false => Err(format!("{} is a replica now", live.at)),
            },
            Some(name) => {
                for (host, port) in &self.options.endpoints {
                    match ask_sentinel(&self.options, host, *port, name).await {
                        Ok((master_host, master_port)) => {
                            let named = Server {
                                host: master_host,
                                port: master_port,
                            };
                            if named != live.at {
                                return Err(format!("the sentinel names {named} as master now"));
                            }
                            return match self.role(&mut connection, &live.at).await? {
                                true => Ok(()),
                                false => Err(format!("{} is a replica now", live.at)),
                            };
                        }
                        Err(_) => continue,
                    }
                }
                // No sentinel answered: keep the connection while its host says master.
                match self.role(&mut connection, &live.at).await? {
                    true => Ok(()),
                    false => Err(format!("{} is a replica now", live.at)),
                }
            }
        }
    }

    /// Drops `live` (when still current) because its host is no longer the master.
    fn demoted(&self, live: &Live, why: &str) {
        let mut state = self.lock();
        if state
            .current
            .as_ref()
            .is_some_and(|l| l.generation == live.generation)
        {
            tracing::warn!(redis = %live.at, reason = %why, "leaving the Redis host: it is no longer the master; looking for the one that is");
            state.current = None;
            state.timeouts = 0;
        }
    }

    /// Whether the server is a master: `ROLE`, or when the ACL refuses `ROLE`, a write probe
    /// (`READONLY` means a replica), with one warning.
    async fn role(
        &self,
        connection: &mut MultiplexedConnection,
        at: &Server,
    ) -> Result<bool, String> {
        match redis::cmd("ROLE")
            .query_async::<Vec<Value>>(connection)
            .await
        {
            Ok(role) => Ok(matches!(role.first(), Some(Value::BulkString(r)) if r == b"master")),
            Err(e) if refused_by_acl(&e) => {
                if !self.role_refused_warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(redis = %at, "the Redis ACL refuses ROLE to this user: a write probe and READONLY answers tell the master from a replica instead (allow +role to spare the probe writes)");
                }
                let probe = redis::cmd("SET")
                    .arg(&self.options.probe_key)
                    .arg("1")
                    .arg("PX")
                    .arg("1000")
                    .query_async::<Value>(connection)
                    .await;
                match probe {
                    Ok(_) => Ok(true),
                    Err(e) if refused_as_replica(&e) => Ok(false),
                    // The ACL refuses the probe's key too (a scope outside its keys): nothing
                    // tells a replica apart; the writes themselves will say what is wrong.
                    Err(e) if refused_by_acl(&e) => Ok(true),
                    Err(e) => Err(format!("{at}: the write probe failed: {e}")),
                }
            }
            Err(e) => Err(format!("{at}: ROLE failed: {e}")),
        }
    }

    fn error(&self, what: &str, at: &Server, error: &RedisError) -> StoreError {
        if error.is_timeout() {
            return StoreError::Timeout(self.options.timeout);
        }
        if unavailable(error) {
            StoreError::Unavailable(format!("Redis at {at} ({what}): {error}"))
        } else {
            StoreError::Corrupt(format!("Redis at {at} refused {what}: {error}"))
        }
    }
}

/// Every [`RECHECK_EVERY`]: asks whether the current host is still the master and drops the
/// connection when it is not (a failover demoted it); with no connection, tries to make one, so
/// `/-/ready` recovers without traffic. Ends when the link is dropped.
async fn recheck(core: Weak<Core>, io: tokio::runtime::Handle) {
    let mut ticks = tokio::time::interval(RECHECK_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(core) = core.upgrade() else { return };
        let (current, attempting) = {
            let state = core.lock();
            (state.current.clone(), state.attempt.is_some())
        };
        match current {
            Some(live) => {
                let still = tokio::time::timeout(core.options.timeout, core.still_master(&live))
                    .await
                    .unwrap_or_else(|_| Err("no answer to the role check".into()));
                if let Err(why) = still {
                    core.demoted(&live, &why);
                    drop(core.attempt(&io));
                }
            }
            None if !attempting => drop(core.attempt(&io)),
            None => {}
        }
    }
}

/// Errors after which the connection is not used again.
fn breaks_connection(error: &RedisError) -> bool {
    error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_unrecoverable_error()
        || (error.is_io_error() && !error.is_timeout())
        || matches!(
            error.kind(),
            ErrorKind::Server(ServerErrorKind::ReadOnly | ServerErrorKind::MasterDown)
        )
}

/// Errors that are an outage (503) rather than a defect (500).
fn unavailable(error: &RedisError) -> bool {
    breaks_connection(error)
        || error.is_timeout()
        || matches!(
            error.kind(),
            ErrorKind::AuthenticationFailed
                | ErrorKind::Server(
                    ServerErrorKind::BusyLoading
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::NoPerm
                        | ServerErrorKind::ClusterDown
                )
        )
        // BUSY: a script runs past its time limit; OOM: maxmemory reached with noeviction.
        || matches!(
            error.code(),
            Some("NOAUTH" | "WRONGPASS" | "MASTERDOWN" | "BUSY" | "OOM")
        )
        || refused_by_acl(error)
}

/// The server's ACL refused a key or command, also from inside a script (where Redis reports it
/// as a script error): an operator's fix, not a broken record, so an outage rather than a defect.
fn refused_by_acl(error: &RedisError) -> bool {
    let text = error.to_string();
    text.contains("NOPERM") || text.contains("can't access") || text.contains("no permissions")
}

/// Connects to the first host that answers as master (standalone) or to the master a sentinel
/// names; the error names every host tried and why it failed.
async fn connect(core: &Core) -> Result<(MultiplexedConnection, Server), String> {
    let options = &core.options;
    let mut failures = Vec::new();
    for (host, port) in &options.endpoints {
        let at = format!("{host}:{port}");
        let outcome = match &options.master_name {
            None => match open(options, host, *port, true).await {
                Ok((mut connection, at)) => {
                    let role =
                        tokio::time::timeout(options.timeout, core.role(&mut connection, &at))
                            .await
                            .unwrap_or_else(|_| Err("no answer to ROLE".into()));
                    match role {
                        Ok(true) => Ok((connection, at)),
                        Ok(false) => Err("a replica, not the master".to_owned()),
                        Err(why) => Err(why),
                    }
                }
                Err(why) => Err(why),
            },
            Some(name) => via_sentinel(options, host, *port, name).await,
        };
        match outcome {
            Ok(found) => return Ok(found),
            Err(why) => failures.push(format!("{at}: {why}")),
        }
    }
    let what = if options.master_name.is_some() {
        "no sentinel named a reachable master"
    } else {
        "no Redis host answered as master"
    };
    Err(format!("{what} ({})", failures.join("; ")))
}

/// Asks the sentinel at `host:port` for the master, then connects to it.
async fn via_sentinel(
    options: &LinkOptions,
    host: &str,
    port: u16,
    name: &str,
) -> Result<(MultiplexedConnection, Server), String> {
    let (master_host, master_port) = ask_sentinel(options, host, port, name).await?;
    let (mut master, at) = open(options, &master_host, master_port, true)
        .await
        .map_err(|why| format!("the master it names, {master_host}:{master_port}: {why}"))?;
    let role: Vec<Value> = redis::cmd("ROLE")
        .query_async(&mut master)
        .await
        .map_err(|e| format!("the master it names, {at}: {e}"))?;
    match role.first() {
        Some(Value::BulkString(role)) if role == b"master" => Ok((master, at)),
        _ => Err(format!(
            "the master it names, {at}, is not a master (a failover is under way)"
        )),
    }
}

/// The address of the master the sentinel at `host:port` names.
async fn ask_sentinel(
    options: &LinkOptions,
    host: &str,
    port: u16,
    name: &str,
) -> Result<(String, u16), String> {
    let ask = |mut sentinel: MultiplexedConnection| async move {
        redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(name)
            .query_async::<Option<(String, u16)>>(&mut sentinel)
            .await
    };
    let (sentinel, _) = open(options, host, port, false).await?;
    let answer = match ask(sentinel).await {
        // A sentinel that requires auth: ask again with the credentials.
        Err(e) if matches!(e.code(), Some("NOAUTH")) => {
            let (sentinel, _) = open(options, host, port, true).await?;
            ask(sentinel).await
        }
        other => other,
    };
    answer
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("the sentinel knows no master named {name:?}"))
}

/// The server refused a write because it is a replica.
fn refused_as_replica(error: &RedisError) -> bool {
    matches!(error.kind(), ErrorKind::Server(ServerErrorKind::ReadOnly))
        || matches!(error.code(), Some("READONLY"))
}

/// Connects to one server within the connection timeout; `auth` sends the credentials.
async fn open(
    options: &LinkOptions,
    host: &str,
    port: u16,
    auth: bool,
) -> Result<(MultiplexedConnection, Server), String> {
    let at = Server {
        host: host.to_owned(),
        port,
    };
    let client = client(options, host, port, auth).map_err(|e| e.to_string())?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(options.timeout))
        .set_response_timeout(Some(options.timeout));
    match tokio::time::timeout(
        options.timeout,
        client.get_multiplexed_async_connection_with_config(&config),
    )
    .await
    {
        Ok(Ok(connection)) => Ok((connection, at)),
        Ok(Err(e)) => Err(describe(&e)),
        Err(_) => Err(format!(
            "no answer within {} ms",
            options.timeout.as_millis()
        )),
    }
}

/// A connection error in words an operator can act on.
fn describe(error: &RedisError) -> String {
    match (error.kind(), error.code()) {
        (ErrorKind::AuthenticationFailed, _) | (_, Some("WRONGPASS" | "NOAUTH")) => {
            format!("refused the credentials (check REDIS_USERNAME and REDIS_PASSWORD): {error}")
        }
        _ if error.is_connection_refusal() => format!("connection refused: {error}"),
        _ => error.to_string(),
    }
}

fn client(options: &LinkOptions, host: &str, port: u16, auth: bool) -> redis::RedisResult<Client> {
    let host = host.to_owned();
    let addr = match &options.tls {
        Some(_) => ConnectionAddr::TcpTls {
            host,
            port,
            insecure: false,
            tls_params: None,
        },
        None => ConnectionAddr::Tcp(host, port),
    };
    let mut redis = RedisConnectionInfo::default();
    if auth {
        if let Some(username) = &options.username {
            redis = redis.set_username(username);
        }
        if let Some(password) = &options.password {
            redis = redis.set_password(password.expose_secret());
        }
    }
    let info = addr.into_connection_info()?.set_redis_settings(redis);
    match &options.tls {
        Some(Some(ca)) => Client::build_with_tls(
            info,
            TlsCertificates {
                client_tls: None,
                root_cert: Some(ca.clone()),
            },
        ),
        _ => Client::open(info),
    }
}
