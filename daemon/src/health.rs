//! Readiness and check-up: a list of named probes each part of the daemon adds to at start
//! (`/-/ready`: store reachable, plugins loaded, actors answering; `/-/check-up`: Auth0 reachable,
//! and the `proxies` check: untrusted peers that sent forwarding headers), and the shutting-down
//! flag SIGTERM raises.
//!
//! The `proxies` check is a warning, not a failure (SPEC §8): an unlisted forwarder degrades what
//! Auth0 and the logout see but the daemon works, and a check-up turning 503 until the next
//! restart would page someone for a peer that sent one header. It is reported as
//! `checks.proxies: "warning: ..."` and named in `warnings`, with `status` still `OK`.

use std::collections::BTreeSet;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

pub type ProbeFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// One dependency check. `check` returns `Err` with a sentence naming what is wrong.
pub trait Probe: Send + Sync {
    fn name(&self) -> &str;
    fn check(&self) -> ProbeFuture;
}

/// A probe from a name and a closure, for checks that need no type of their own.
pub struct FnProbe<F> {
    name: String,
    check: F,
}

impl<F> FnProbe<F>
where
    F: Fn() -> ProbeFuture + Send + Sync,
{
    pub fn new(name: impl Into<String>, check: F) -> Self {
        Self {
            name: name.into(),
            check,
        }
    }
}

impl<F> Probe for FnProbe<F>
where
    F: Fn() -> ProbeFuture + Send + Sync,
{
    fn name(&self) -> &str {
        &self.name
    }
    fn check(&self) -> ProbeFuture {
        (self.check)()
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProbeReport {
    /// `OK` when every check passed, else `KO`.
    pub status: &'static str,
    /// Each check by name: `OK` or what is wrong.
    pub checks: std::collections::BTreeMap<String, String>,
    /// The checks that report a warning: something to fix that does not make the status `KO`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A probe that takes longer than this is reported as failed, so a hung dependency cannot hang
/// the orchestrator's probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Default)]
pub struct Health {
    shutting_down: AtomicBool,
    readiness: Vec<Arc<dyn Probe>>,
    checkup: Vec<Arc<dyn Probe>>,
    untrusted_forwarders: UntrustedForwarders,
}

impl Health {
    pub fn add_readiness(&mut self, probe: impl Probe + 'static) {
        self.readiness.push(Arc::new(probe));
    }

    pub fn add_checkup(&mut self, probe: impl Probe + 'static) {
        self.checkup.push(Arc::new(probe));
    }

    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    pub async fn ready(&self) -> ProbeReport {
        let mut report = run(&self.readiness).await;
        if self.is_shutting_down() {
            report.status = "KO";
            report
                .checks
                .insert("shutdown".into(), "the daemon is shutting down".into());
        }
        report
    }

    pub async fn checkup(&self) -> ProbeReport {
        let mut report = run(&self.checkup).await;
        let proxies = self.untrusted_forwarders.report();
        if proxies != "OK" {
            report.warnings.push(PROXIES_CHECK.into());
            report
                .checks
                .insert(PROXIES_CHECK.into(), format!("warning: {proxies}"));
        } else {
            report.checks.insert(PROXIES_CHECK.into(), proxies);
        }
        report
    }

    /// The peers outside `server.trustedProxies` that sent forwarding headers.
    pub fn untrusted_forwarders(&self) -> &UntrustedForwarders {
        &self.untrusted_forwarders
    }
}

/// The name of the check-up entry that reports [`UntrustedForwarders`].
pub const PROXIES_CHECK: &str = "proxies";

/// Peers outside `server.trustedProxies` whose requests carried forwarding headers (which were
/// ignored). Such a peer is most likely a proxy nobody listed: every user behind it then looks
/// like one address to Auth0's brute-force protection, which blocks them all at once. Kept for
/// `/-/check-up` and warned about once per address; at most [`Self::MAX_PEERS`] addresses are
/// remembered, later ones only counted.
#[derive(Debug, Default)]
pub struct UntrustedForwarders {
    peers: Mutex<BTreeSet<IpAddr>>,
    /// Whether a peer arrived once the cap was reached (and so was not remembered).
    overflowed: AtomicBool,
}

impl UntrustedForwarders {
    /// Peers remembered, so a client sending headers from many addresses cannot grow memory.
    pub const MAX_PEERS: usize = 1_000;

    /// How many addresses the check-up names; the rest are counted.
    const SHOWN: usize = 10;

    /// Records `peer`; true the first time it is seen (the caller then logs a warning). A peer
    /// past the cap is never "first": nothing more is logged once the cap is reached.
    pub fn note(&self, peer: IpAddr) -> bool {
        let mut peers = self
            .peers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if peers.contains(&peer) {
            return false;
        }
        if peers.len() >= Self::MAX_PEERS {
            self.overflowed.store(true, Ordering::Relaxed);
            return false;
        }
        peers.insert(peer)
    }

    /// The remembered peers, in address order.
    pub fn peers(&self) -> Vec<IpAddr> {
        self.peers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .copied()
            .collect()
    }

    /// `OK`, or a sentence naming the peers and the setting to change.
    pub fn report(&self) -> String {
        let peers = self.peers();
        if peers.is_empty() {
            return "OK".into();
        }
        let mut shown: Vec<String> = peers
            .iter()
            .take(Self::SHOWN)
            .map(ToString::to_string)
            .collect();
        let more = peers.len() - shown.len();
        if self.overflowed.load(Ordering::Relaxed) {
            shown.push(format!(
                "and {more} more, and others past the first {}",
                Self::MAX_PEERS
            ));
        } else if more > 0 {
            shown.push(format!("and {more} more"));
        }
        format!(
            "X-Forwarded-For from peers outside server.trustedProxies was ignored: {}; if these \
             are your proxies, list them (or their network) in server.trustedProxies, else every \
             user behind them looks like one address to Auth0",
            shown.join(", ")
        )
    }
}

async fn run(probes: &[Arc<dyn Probe>]) -> ProbeReport {
    let results = futures_util::future::join_all(probes.iter().map(|probe| async move {
        let outcome = match tokio::time::timeout(PROBE_TIMEOUT, probe.check()).await {
            Ok(Ok(())) => "OK".to_owned(),
            Ok(Err(reason)) => reason,
            Err(_) => format!("no answer within {} s", PROBE_TIMEOUT.as_secs()),
        };
        (probe.name().to_owned(), outcome)
    }))
    .await;
    let ok = results.iter().all(|(_, outcome)| outcome == "OK");
    ProbeReport {
        status: if ok { "OK" } else { "KO" },
        checks: results.into_iter().collect(),
        warnings: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_forwarders_are_noted_once_and_bounded() {
        let seen = UntrustedForwarders::default();
        assert_eq!(seen.report(), "OK");
        let peer: IpAddr = "10.0.0.7".parse().expect("ip");
        assert!(seen.note(peer));
        assert!(!seen.note(peer));
        let report = seen.report();
        assert!(report.contains("10.0.0.7"), "{report}");
        assert!(report.contains("server.trustedProxies"), "{report}");

        for i in 0..(UntrustedForwarders::MAX_PEERS as u32 + 50) {
            seen.note(IpAddr::from(std::net::Ipv4Addr::from(0x0b00_0000 + i)));
        }
        assert_eq!(seen.peers().len(), UntrustedForwarders::MAX_PEERS);
        let report = seen.report();
        assert!(
            report.contains("and 990 more, and others past the first 1000"),
            "{report}"
        );
    }

    #[actix_rt::test]
    async fn the_checkup_reports_untrusted_forwarders() {
        let health = Health::default();
        let report = health.checkup().await;
        assert_eq!(report.status, "OK");
        assert_eq!(report.checks[PROXIES_CHECK], "OK");
        health
            .untrusted_forwarders()
            .note("192.168.1.4".parse().expect("ip"));
        let report = health.checkup().await;
        assert_eq!(report.status, "OK", "a warning, not a failure");
        assert_eq!(report.warnings, [PROXIES_CHECK]);
        let proxies = &report.checks[PROXIES_CHECK];
        assert!(proxies.starts_with("warning: "), "{proxies}");
        assert!(proxies.contains("192.168.1.4"), "{proxies}");
    }
}
