//! Readiness and check-up: a list of named probes each part of the daemon adds to at start
//! (`/-/ready`: store reachable, plugins loaded, actors answering; `/-/check-up`: Auth0 reachable),
//! and the shutting-down flag SIGTERM raises.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
}

/// A probe that takes longer than this is reported as failed, so a hung dependency cannot hang
/// the orchestrator's probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Default)]
pub struct Health {
    shutting_down: AtomicBool,
    readiness: Vec<Arc<dyn Probe>>,
    checkup: Vec<Arc<dyn Probe>>,
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
        run(&self.checkup).await
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
    }
}
