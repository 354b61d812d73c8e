//! The conformance suite on Redis (each test on its own `redis-server`, under a scope of its own),
//! and what only the Redis store has: scopes, failover, sentinel, auth, TLS, no token in a key.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use super::testing::{RedisSentinel, RedisServer, free_port};
use super::*;
use crate::store::conformance::{Fixture, conformance_suite, rotate};

/// Calls in these tests are bounded like the daemon's (`sessions.timeoutMs`), shorter.
const TIMEOUT: Duration = Duration::from_millis(1_000);

fn options(hosts: Vec<String>, scope: &str, clock: &Clock) -> RedisOptions {
    RedisOptions {
        redis: RedisSettings {
            hosts,
            ..RedisSettings::default()
        },
        scope: scope.to_owned(),
        timeout: TIMEOUT,
        clock: clock.clone(),
    }
}

/// A server of its own and a scope with a separator in it; `open` reopens the same scope.
struct RedisFixture {
    server: RedisServer,
    scope: String,
    clock: Clock,
}

fn fixture() -> RedisFixture {
    RedisFixture {
        server: RedisServer::start(),
        scope: format!("conformance:{}", SessionId::generate().as_str()),
        clock: Clock::manual(),
    }
}

impl Fixture for RedisFixture {
    fn open(&self) -> StoreFuture<'_, Arc<dyn Store>> {
        Box::pin(async move {
            let store = RedisStore::open(options(
                vec![self.server.host_port()],
                &self.scope,
                &self.clock,
            ))?;
            Ok(Arc::new(store) as Arc<dyn Store>)
        })
    }

    fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Leases expire by Redis's own clock (`PX`): wait for real, besides moving the store's.
    fn pass_lease_time(
        &self,
        duration: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        self.clock.advance(duration);
        Box::pin(tokio::time::sleep(duration))
    }
}

conformance_suite!(fixture());

fn session(sub: &str, access_token: &str) -> Session {
    super::super::conformance::session(sub, access_token, Duration::from_secs(86_400))
}

/// Waits (a bounded number of times) until the store answers: it connects in the background.
async fn answering(store: &RedisStore) {
    for _ in 0..50 {
        if store.writable().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the store never answered: {:?}",
        store.writable().await.err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_scopes_on_one_server_never_see_each_others_records() {
    let server = RedisServer::start();
    let clock = Clock::manual();
    // `a` and `a:s` would share keys under a naive `scope:` prefix (`a:s:…`).
    let a = RedisStore::open(options(vec![server.host_port()], "a", &clock)).expect("opens");
    let b = RedisStore::open(options(vec![server.host_port()], "a:s", &clock)).expect("opens");
    let shared = session("auth0|both", "shared-token");
    a.create_session(&shared).await.expect("create");
    let state = StateRecord {
        state: "one-state".into(),
        client: "web".into(),
        redirect: None,
        pkce_verifier: "v".into(),
        nonce: "n".into(),
        binding: "b".into(),
        expires_at: Timestamp::now().saturating_add(Duration::from_secs(600)),
    };
    assert!(a.put_state(&state).await.expect("put"));
    assert!(
        a.try_lease(LeaseClaim::new("job:1", "a"), TIMEOUT)
            .await
            .expect("lease")
    );

    assert_eq!(b.get_session(&shared.id).await.expect("get"), None);
    assert!(
        b.sessions_by_token(&TokenHash::of("shared-token"))
            .await
            .expect("by token")
            .is_empty()
    );
    assert!(b.sessions_of("auth0|both").await.expect("of").is_empty());
    assert!(b.active_subs().await.expect("active").is_empty());
    assert_eq!(b.count_live_sessions().await.expect("count"), 0);
    assert_eq!(b.get_state("one-state").await.expect("get"), None);
    assert!(
        b.put_state(&state).await.expect("put"),
        "the same state in another scope is another record"
    );
    assert!(
        b.try_lease(LeaseClaim::new("job:1", "b"), TIMEOUT)
            .await
            .expect("lease"),
        "a lease in another scope is another lease"
    );
    assert!(
        b.delete_sessions_of("auth0|both")
            .await
            .expect("delete")
            .is_empty()
    );
    assert_eq!(
        a.get_session(&shared.id).await.expect("get"),
        Some(shared),
        "nothing in the other scope touched it"
    );
    for key in server.keys() {
        assert!(
            key.starts_with("auth0-client:1:a:") || key.starts_with("auth0-client:3:a:s:"),
            "{key} is outside both scopes"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_holds_a_token() {
    let server = RedisServer::start();
    let clock = Clock::manual();
    let store = RedisStore::open(options(vec![server.host_port()], "", &clock)).expect("opens");
    // A login, a rotation, a second login sharing the first access token, a state, a lease.
    let mut first = session("auth0|keys", "eyJ.access-one");
    let second = session("auth0|keys", "eyJ.access-one");
    store.create_session(&first).await.expect("create");
    store.create_session(&second).await.expect("create");
    let now = clock.now();
    rotate(&mut first, "eyJ.access-two", "v1.refresh-two", now);
    let CasOutcome::Written(_) = store.replace_session(&first).await.expect("replace") else {
        panic!("the rotation was not written");
    };
    assert!(
        store
            .try_lease(LeaseClaim::new("refresh", "daemon-a"), TIMEOUT)
            .await
            .expect("lease")
    );
    let keys = server.keys();
    assert!(keys.len() >= 6, "the layout wrote its keys: {keys:?}");
    for token in [
        "eyJ.access-one",
        "eyJ.access-two",
        "refresh-eyJ.access-one",
        "v1.refresh-two",
        "id-eyJ.access-one",
    ] {
        for key in &keys {
            assert!(!key.contains(token), "{key} holds the token {token}");
        }
        assert!(
            keys.iter()
                .any(|k| k.contains(TokenHash::of(token).as_str()))
                || !token.starts_with("eyJ"),
            "an access token is indexed by its hash"
        );
    }
    // The record's own TTL is a margin past its expiry, not forever.
    let ttl: i64 = server
        .command(&["PTTL", &format!("auth0-client:0::s:{}", first.id.as_str())])
        .parse()
        .expect("a number");
    let expected =
        i64::try_from((Duration::from_secs(86_400) + GC_MARGIN).as_millis()).expect("small");
    assert!(
        ttl > expected - 60_000 && ttl <= expected,
        "the session's own TTL is its expiry plus the margin: {ttl}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_over_to_the_next_host_and_back_to_work() {
    let first = RedisServer::start();
    let second = RedisServer::start();
    let dead = format!("127.0.0.1:{}", free_port());
    let clock = Clock::manual();
    // The first host is down at start: the second answers.
    let store = RedisStore::open(options(
        vec![dead.clone(), second.host_port()],
        "failover",
        &clock,
    ))
    .expect("opens");
    answering(&store).await;
    let kept = session("auth0|failover", "failover-1");
    store.create_session(&kept).await.expect("create");
    assert_eq!(
        second.command(&["ZCARD", "auth0-client:8:failover:expiry"]),
        "1"
    );

    // Now a store on [first, second]: it uses the first; when the first dies it moves on.
    let mut first = first;
    let store = RedisStore::open(options(
        vec![first.host_port(), second.host_port()],
        "failover",
        &clock,
    ))
    .expect("opens");
    answering(&store).await;
    assert_eq!(
        store.get_session(&kept.id).await.expect("get"),
        None,
        "the first host has its own data"
    );
    first.kill();
    // A read after the crash is retried once on the next host.
    let mut found = None;
    for _ in 0..20 {
        match store.get_session(&kept.id).await {
            Ok(session) => {
                found = session;
                break;
            }
            Err(error) => {
                assert!(error.is_unavailable(), "{error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert_eq!(found, Some(kept), "the store moved to the second host");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_unavailable_and_the_store_reconnects_by_itself() {
    let mut server = RedisServer::start();
    let port = server.port();
    let clock = Clock::manual();
    let store =
        RedisStore::open(options(vec![server.host_port()], "outage", &clock)).expect("opens");
    answering(&store).await;
    assert_eq!(store.stalled(), None);
    let kept = session("auth0|outage", "outage-1");
    store.create_session(&kept).await.expect("create");

    // Frozen: every call is bounded and unavailable, none hangs.
    server.pause();
    for _ in 0..4 {
        let started = std::time::Instant::now();
        let error = store
            .get_session(&kept.id)
            .await
            .expect_err("a frozen Redis does not answer");
        assert!(error.is_unavailable(), "{error}");
        assert!(started.elapsed() < TIMEOUT * 3, "{:?}", started.elapsed());
    }
    let stalled = store
        .stalled()
        .expect("calls failed for longer than the bound: stalled");
    assert!(stalled.contains("has not answered"), "{stalled}");
    server.resume();
    let mut back = None;
    for _ in 0..50 {
        if let Ok(session) = store.get_session(&kept.id).await {
            back = session;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        back.as_ref(),
        Some(&kept),
        "the same store answers after SIGCONT"
    );
    assert_eq!(store.stalled(), None, "an answer ends the stall");

    // Dead, then a new server on the same port: the store reconnects (the data is gone with it).
    server.kill();
    let error = store.writable().await.expect_err("nobody listens");
    assert!(error.is_unavailable(), "{error}");
    let _restarted = RedisServer::builder().port(port).start();
    answering(&store).await;
    assert_eq!(store.get_session(&kept.id).await.expect("get"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_mode_finds_the_master() {
    let sentinel = RedisSentinel::start("mymaster");
    let clock = Clock::manual();
    let mut settings = options(vec![sentinel.host_port()], "sentinel", &clock);
    settings.redis.mode = RedisMode::Sentinel;
    settings.redis.master_name = Some("mymaster".into());
    let store = RedisStore::open(settings.clone()).expect("opens");
    answering(&store).await;
    let created = session("auth0|sentinel", "sentinel-1");
    store.create_session(&created).await.expect("create");
    assert_eq!(
        sentinel
            .master()
            .command(&["ZCARD", "auth0-client:8:sentinel:expiry"]),
        "1",
        "the session is on the master the sentinel named"
    );

    settings.redis.master_name = Some("unknown".into());
    let store = RedisStore::open(settings).expect("opens");
    let error = store.writable().await.expect_err("no such master");
    assert!(
        error.is_unavailable() && error.to_string().contains("no master named"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_mode_with_a_password_on_the_master_only() {
    let master = RedisServer::builder().password("master-pass").start();
    let sentinel = RedisSentinel::start_with(master, "secured");
    let clock = Clock::manual();
    let mut settings = options(vec![sentinel.host_port()], "secured", &clock);
    settings.redis.mode = RedisMode::Sentinel;
    settings.redis.master_name = Some("secured".into());
    settings.redis.password = Some(SecretString::from("master-pass"));
    let store = RedisStore::open(settings).expect("opens");
    answering(&store).await;
    let created = session("auth0|secured", "secured-1");
    store.create_session(&created).await.expect("create");
    assert_eq!(
        store.get_session(&created.id).await.expect("get"),
        Some(created)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_mode_follows_a_failover_to_the_promoted_replica() {
    let mut sentinel = RedisSentinel::start_with_replica("ha");
    let replica_port = sentinel.replica().expect("a replica").port();
    let clock = Clock::manual();
    let mut settings = options(vec![sentinel.host_port()], "ha", &clock);
    settings.redis.mode = RedisMode::Sentinel;
    settings.redis.master_name = Some("ha".into());
    let store = RedisStore::open(settings).expect("opens");
    answering(&store).await;
    let before = session("auth0|ha", "ha-1");
    store.create_session(&before).await.expect("create");
    // Replicated before the master dies. Not `WAIT` on a connection of its own: it waits for that
    // connection's writes only, none, and answered at once (the flaky failure: on a loaded machine
    // the master died before the replica had the session, and the promoted replica rightly lacked it).
    replicated(
        sentinel.replica().expect("a replica"),
        "auth0-client:2:ha:expiry",
        "1",
    )
    .await;

    let old_master = sentinel.master().port();
    sentinel.master_mut().kill();
    // Keep the dead master's port: tests run in parallel, and another test's `redis-server` started
    // on it (a free port again) would answer `ROLE` as master while the sentinel still names it.
    let _held = std::net::TcpListener::bind(("127.0.0.1", old_master));
    let after = session("auth0|ha", "ha-2");
    let mut written = false;
    for _ in 0..150 {
        match store.create_session(&after).await {
            Ok(()) => {
                written = true;
                break;
            }
            Err(error) => assert!(error.is_unavailable(), "{error}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        written,
        "the store writes again once the sentinel promoted the replica"
    );
    assert_eq!(sentinel.master_port_now("ha"), Some(replica_port));
    assert_eq!(
        store.get_session(&before.id).await.expect("get"),
        Some(before),
        "what was replicated is still there (port held: {}; keys on the promoted replica: {:?})",
        _held.is_ok(),
        sentinel.replica().map(RedisServer::keys)
    );
    assert_eq!(
        sentinel
            .replica()
            .expect("a replica")
            .command(&["ZCARD", "auth0-client:2:ha:expiry"]),
        "2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_and_acl_user_authenticate_and_a_wrong_one_is_a_clear_error() {
    let clock = Clock::manual();
    let server = RedisServer::builder().password("s3cret-pass").start();
    let mut settings = options(vec![server.host_port()], "auth", &clock);
    settings.redis.password = Some(SecretString::from("s3cret-pass"));
    let store = RedisStore::open(settings.clone()).expect("opens");
    answering(&store).await;
    store
        .create_session(&session("auth0|auth", "auth-1"))
        .await
        .expect("create");

    settings.redis.password = Some(SecretString::from("wrong-pass"));
    let store = RedisStore::open(settings).expect("opens: a wrong password is not a config error");
    let error = store.writable().await.expect_err("refused");
    let message = error.to_string();
    assert!(error.is_unavailable(), "{message}");
    assert!(message.contains("REDIS_PASSWORD"), "{message}");
    assert!(
        !message.contains("wrong-pass"),
        "the password is in {message}"
    );

    let acl = RedisServer::builder().user("daemon", "acl-pass").start();
    let mut settings = options(vec![acl.host_port()], "acl", &clock);
    settings.redis.username = Some("daemon".into());
    settings.redis.password = Some(SecretString::from("acl-pass"));
    let store = RedisStore::open(settings.clone()).expect("opens");
    answering(&store).await;
    settings.redis.username = None;
    let store = RedisStore::open(settings).expect("opens");
    assert!(store.writable().await.is_err(), "the default user is off");
}

/// The ACL of the README ("Running several daemons"): the daemon needs nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_acl_confines_a_daemon_to_its_scope_and_suffices() {
    let acl = RedisServer::builder()
        .user_with_rules(
            "auth0-client",
            "acl-pass",
            &[
                "~auth0-client:4:shop:*",
                "+@read",
                "+@write",
                "+@scripting",
                "+ping",
            ],
        )
        .start();
    let clock = Clock::manual();
    let mut settings = options(vec![acl.host_port()], "shop", &clock);
    settings.redis.username = Some("auth0-client".into());
    settings.redis.password = Some(SecretString::from("acl-pass"));
    let store = RedisStore::open(settings.clone()).expect("opens");
    answering(&store).await;
    let mut created = session("auth0|acl", "acl-1");
    store.create_session(&created).await.expect("create");
    created.expires_at = created.expires_at.saturating_add(Duration::from_secs(60));
    assert!(matches!(
        store.replace_session(&created).await.expect("replace"),
        CasOutcome::Written(_)
    ));
    assert_eq!(
        store
            .sessions_by_token(&TokenHash::of("acl-1"))
            .await
            .expect("by token")
            .len(),
        1
    );
    assert!(
        store
            .try_lease(LeaseClaim::new("job:1", "a"), TIMEOUT)
            .await
            .expect("lease")
    );
    assert_eq!(store.active_subs().await.expect("active"), ["auth0|acl"]);
    store.sweep().await.expect("sweep");
    store.delete_session(&created.id).await.expect("delete");

    // Another scope is out of its reach: refused, as an outage the operator must fix.
    settings.scope = "other".into();
    let store = RedisStore::open(settings).expect("opens");
    answering(&store).await;
    let error = store
        .create_session(&session("auth0|acl", "acl-2"))
        .await
        .expect_err("outside the ACL's keys");
    assert!(error.is_unavailable(), "{error}");
    assert!(error.to_string().contains("access"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_private_ca() {
    if let Err(why) = RedisServer::tls_supported() {
        // Said loudly: this test proves nothing here (README, "Running several daemons").
        eprintln!("SKIPPED: TLS cannot be tested on this machine: {why}");
        return;
    }
    let server = RedisServer::builder().tls().start();
    let clock = Clock::manual();
    let mut settings = options(vec![server.host_port()], "tls", &clock);
    settings.redis.tls = true;
    settings.redis.tls_ca_cert = server.ca_cert();
    let store = RedisStore::open(settings.clone()).expect("opens");
    answering(&store).await;
    let created = session("auth0|tls", "tls-1");
    store.create_session(&created).await.expect("create");
    assert_eq!(
        store.get_session(&created.id).await.expect("get"),
        Some(created)
    );

    // Without the private CA the server's certificate is not trusted.
    settings.redis.tls_ca_cert = None;
    let store = RedisStore::open(settings.clone()).expect("opens");
    assert!(store.writable().await.is_err(), "an unknown CA is refused");
    // Plain text to a TLS port does not work either.
    settings.redis.tls = false;
    let store = RedisStore::open(settings).expect("opens");
    assert!(store.writable().await.is_err());
}

#[test]
fn settings_that_cannot_work_are_refused_at_open() {
    let clock = Clock::manual();
    let refused = |settings: RedisOptions| match RedisStore::open(settings) {
        Err(StoreError::Invalid(message)) => message,
        Err(other) => panic!("not an invalid-settings error: {other}"),
        Ok(_) => panic!("opened"),
    };
    assert!(refused(options(vec![], "", &clock)).contains("REDIS_HOSTS"));
    assert!(refused(options(vec!["no-port".into()], "", &clock)).contains("host:port"));
    let mut sentinel = options(vec!["127.0.0.1:26379".into()], "", &clock);
    sentinel.redis.mode = RedisMode::Sentinel;
    assert!(refused(sentinel).contains("REDIS_MASTER_NAME"));
    let mut tls = options(vec!["127.0.0.1:6379".into()], "", &clock);
    tls.redis.tls = true;
    tls.redis.tls_ca_cert = Some("/nonexistent/ca.pem".into());
    assert!(refused(tls).contains("REDIS_TLS_CACERT"));
}

#[test]
fn hosts_and_times_encode_as_the_layout_says() {
    assert_eq!(
        parse_host("[::1]:6380").ok(),
        Some(("::1".to_owned(), 6380))
    );
    assert_eq!(
        parse_host("redis-a:6379").ok(),
        Some(("redis-a".to_owned(), 6379))
    );
    assert_eq!(scope_prefix(""), "auth0-client:0::");
    assert_eq!(scope_prefix("shop"), "auth0-client:4:shop:");
    let early = time_hex(Timestamp::from_millis(-5));
    let late = time_hex(Timestamp::from_millis(1_700_000_000_000));
    assert_eq!(early.len(), 16);
    assert!(early < late);
    assert_eq!(score(Timestamp::from_millis(i64::MAX)), MAX_SCORE);
}

/// Waits until `check` passes, up to `limit`; returns how long it took.
async fn within(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> Option<Duration> {
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        if check().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// SPEC §7: with several standalone hosts, only the one `ROLE` calls master is used; after a
/// failover (the replica promoted, the old master made its replica) writes land on the new master
/// within seconds, and what was replicated before is still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_hosts_use_only_the_master_and_follow_a_failover() {
    let master = RedisServer::start();
    let replica = RedisServer::builder().replica_of(&master).start();
    let clock = Clock::manual();
    // The replica first: a store that took the first host that answers would write to it.
    let store = RedisStore::open(options(
        vec![replica.host_port(), master.host_port()],
        "role",
        &clock,
    ))
    .expect("opens");
    answering(&store).await;
    let before = session("auth0|role", "role-1");
    store
        .create_session(&before)
        .await
        .expect("a write to the master");
    assert_eq!(
        master.command(&["ZCARD", "auth0-client:4:role:expiry"]),
        "1"
    );
    replicated(&replica, "auth0-client:4:role:expiry", "1").await;

    // A manual failover.
    replica.command(&["REPLICAOF", "NO", "ONE"]);
    master.command(&["REPLICAOF", "127.0.0.1", &replica.port().to_string()]);
    let after = session("auth0|role", "role-2");
    let took = within(Duration::from_secs(10), async || {
        store.create_session(&after).await.is_ok()
    })
    .await
    .expect("writes work again within 10 s of the failover");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(
        replica.command(&["ZCARD", "auth0-client:4:role:expiry"]),
        "2",
        "both sessions on the promoted replica (before {:?}, after {:?}; its role: {:?}; keys: {:?})",
        before.id.as_str(),
        after.id.as_str(),
        replica.command(&["ROLE"]),
        replica.keys()
    );
    assert_eq!(
        store.get_session(&before.id).await.expect("get"),
        Some(before),
        "the session replicated before the failover is served by the new master"
    );
    store.writable().await.expect("writable again");
}

/// `/-/ready` means writable: a store whose only host is a replica is not ready, whatever
/// `PING` says, and becomes ready once it is promoted (the link re-checks by itself).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_alone_is_not_writable_until_promoted() {
    let master = RedisServer::start();
    let replica = RedisServer::builder().replica_of(&master).start();
    let clock = Clock::manual();
    let store =
        RedisStore::open(options(vec![replica.host_port()], "replica", &clock)).expect("opens");
    assert_eq!(replica.command(&["PING"]), "PONG");
    let error = store
        .writable()
        .await
        .expect_err("a replica does not accept writes");
    assert!(error.is_unavailable(), "{error}");
    assert!(error.to_string().contains("replica"), "{error}");
    replica.command(&["REPLICAOF", "NO", "ONE"]);
    within(Duration::from_secs(5), async || {
        store.writable().await.is_ok()
    })
    .await
    .expect("ready once the replica is promoted");
}

/// The ACL refuses `ROLE` (the README's ACL): a write probe tells the master from a replica
/// (the replica here cannot sync, without credentials for the master, but answers `READONLY`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_refused_by_the_acl_falls_back_to_a_write_probe() {
    let rules = [
        "~auth0-client:5:probe:*",
        "+@read",
        "+@write",
        "+@scripting",
        "+ping",
        "-role",
    ];
    let master = RedisServer::builder()
        .user_with_rules("auth0-client", "acl-pass", &rules)
        .start();
    let replica = RedisServer::builder()
        .user_with_rules("auth0-client", "acl-pass", &rules)
        .replica_of(&master)
        .start();
    let clock = Clock::manual();
    let mut settings = options(
        vec![replica.host_port(), master.host_port()],
        "probe",
        &clock,
    );
    settings.redis.username = Some("auth0-client".into());
    settings.redis.password = Some(SecretString::from("acl-pass"));
    let store = RedisStore::open(settings).expect("opens");
    answering(&store).await;
    let created = session("auth0|probe", "probe-1");
    store.create_session(&created).await.expect("create");
    assert_eq!(
        master.command(&["ZCARD", "auth0-client:5:probe:expiry"]),
        "1"
    );
}

/// SPEC §7: a lease's expiry is Redis's, never a daemon's clock: a daemon whose clock runs an hour
/// ahead cannot take a live lease, and two daemons never both hold one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemons_with_skewed_clocks_never_both_hold_a_lease() {
    let server = RedisServer::start();
    let on_time = Clock::manual();
    let ahead = Clock::manual();
    ahead.advance(Duration::from_secs(3_600));
    let a = RedisStore::open(options(vec![server.host_port()], "skew", &on_time)).expect("opens");
    let b = RedisStore::open(options(vec![server.host_port()], "skew", &ahead)).expect("opens");
    answering(&a).await;
    answering(&b).await;
    let ttl = Duration::from_millis(700);
    assert!(
        a.try_lease(LeaseClaim::new("refresh:s", "daemon-a"), ttl)
            .await
            .expect("lease")
    );
    assert!(
        !b.try_lease(LeaseClaim::new("refresh:s", "daemon-b"), ttl)
            .await
            .expect("lease"),
        "a clock an hour ahead does not make a live lease expired"
    );
    assert!(
        !b.release_lease(LeaseClaim::new("refresh:s", "daemon-b"))
            .await
            .expect("release")
    );
    // Moving a daemon's clock changes nothing either; Redis's time does.
    on_time.advance(Duration::from_secs(7_200));
    assert!(
        !b.try_lease(LeaseClaim::new("refresh:s", "daemon-b"), ttl)
            .await
            .expect("lease")
    );
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(
        b.try_lease(LeaseClaim::new("refresh:s", "daemon-b"), ttl)
            .await
            .expect("lease"),
        "free once Redis expired it"
    );
    assert!(
        !a.try_lease(LeaseClaim::new("refresh:s", "daemon-a"), ttl)
            .await
            .expect("lease")
    );
    assert!(
        !a.release_lease(LeaseClaim::new("refresh:s", "daemon-a"))
            .await
            .expect("release")
    );
}

/// Waits until `key` answers `ZCARD` `count` on `replica`: what was written is replicated.
async fn replicated(replica: &RedisServer, key: &str, count: &str) {
    within(Duration::from_secs(10), async || {
        replica.command(&["ZCARD", key]) == count
    })
    .await
    .expect("the replica has the writes within 10 s");
}

/// The ids of the server's client connections other than the one asking.
fn client_ids(server: &RedisServer) -> Vec<u64> {
    server
        .command(&["CLIENT", "LIST"])
        .lines()
        .filter(|line| !line.contains("cmd=client|list"))
        .filter_map(|line| line.strip_prefix("id=")?.split(' ').next()?.parse().ok())
        .collect()
}

/// On a current-thread runtime (each HTTP worker's) a read goes through the thread's own
/// connection once it is made; when the server closes that one (an idle `timeout`, a `CLIENT
/// KILL`), the next read is answered on the link's connection, which stays, and the thread gets
/// a new one.
#[tokio::test(flavor = "current_thread")]
async fn reads_use_the_threads_own_connection_and_survive_losing_it() {
    let server = RedisServer::start();
    let clock = Clock::manual();
    let store = RedisStore::open(options(vec![server.host_port()], "near", &clock)).expect("opens");
    answering(&store).await;
    let stored = session("auth0|near", "near-token");
    store.create_session(&stored).await.expect("stored");
    let link = client_ids(&server);
    assert_eq!(link.len(), 1, "the link's one connection: {link:?}");

    let read = || async {
        store
            .get_session(&stored.id)
            .await
            .expect("read")
            .expect("live")
            .sub
    };
    let mut ids = link.clone();
    for _ in 0..100 {
        assert_eq!(read().await, "auth0|near");
        ids = client_ids(&server);
        if ids.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        ids.len(),
        2,
        "the thread's own connection was never made: {ids:?}"
    );
    let near = *ids.iter().find(|id| !link.contains(id)).expect("a new id");

    server.command(&["CLIENT", "KILL", "ID", &near.to_string()]);
    assert_eq!(
        read().await,
        "auth0|near",
        "a read right after the loss is answered"
    );
    for _ in 0..100 {
        ids = client_ids(&server);
        if ids.len() == 2 {
            break;
        }
        assert_eq!(read().await, "auth0|near");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        ids.contains(&link[0]),
        "the link's connection stays: {ids:?}"
    );
    assert!(
        !ids.contains(&near),
        "the lost one is not used again: {ids:?}"
    );
    assert_eq!(ids.len(), 2, "the thread got a new connection: {ids:?}");
}
