//! The `Plugins` actors (SPEC §9): the loaded plugins' calls run on a `SyncArbiter` pool, off
//! the HTTP workers, and [`Plugins`] is the cloned handle the login rules, `/userinfo`, the
//! `Tokens` actor and the `Jobs` actor call through.
//!
//! | rule | how |
//! |---|---|
//! | every call bounded by `timeoutMs` | the caller stops waiting; the call's thread finishes it (a thread cannot be interrupted) |
//! | concurrent calls per plugin bounded | at most [`MAX_CALLS_PER_PLUGIN`] admitted (queued or running) per plugin, events at most one fewer (one admission stays free for the request hooks); past it a call is refused at once (`busy`; an event is dropped) |
//! | the pool never exhausted | it has [`MAX_CALLS_PER_PLUGIN`] threads per plugin, so an admitted call always finds a thread, and a stuck plugin holds only its own |
//! | a plugin that keeps timing out is skipped | after [`TIMEOUTS_BEFORE_COOL_DOWN`] timeouts in a row, its calls are refused (`skipped`, an error) for [`COOL_DOWN`] on the daemon's clock; the first call after it is tried again |
//! | `onError` | applies to `map_connection` and `custom_claims`: `fail-open` ignores the plugin's failure, `fail-closed` fails the request (502) |
//! | events | `on_tokens`, `on_job_finished`: spawned and not awaited by the request, always fail-open |
//!
//! Every call is counted in `auth0_client_plugin_calls_total{plugin,hook,outcome}` with outcome
//! `ok`, `error` (the plugin returned one), `panic` (caught at the boundary), `timeout`,
//! `invalid` (an answer that is not the hook's JSON, a connection outside the client's
//! `supportedConnections`, a changed `sub`), `busy` or `skipped`; every failure is logged as a
//! warning naming the plugin, the hook and the reason, every success at debug level.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use actix::prelude::*;
use auth0_client_plugin_api::host::{CallError, Hook, Instance};
use auth0_client_plugin_api::{
    Claims, CustomClaimsInput, CustomClaimsOutput, JobFinishedEvent, MapConnectionInput,
    MapConnectionOutput, TokensEvent, TokensKind,
};
use prometheus::{IntCounterVec, Opts};
use serde::Serialize;

use super::jobs::JobFinished;
use crate::clock::Clock;
use crate::config::OnError;
use crate::plugin_host::LoadedPlugin;
use crate::store::Session;

/// Calls one plugin may have admitted at once (queued or running).
pub const MAX_CALLS_PER_PLUGIN: usize = 4;
/// Timeouts in a row after which a plugin is skipped for [`COOL_DOWN`].
pub const TIMEOUTS_BEFORE_COOL_DOWN: u32 = 3;
/// How long a plugin that keeps timing out is skipped.
pub const COOL_DOWN: Duration = Duration::from_secs(30);

/// The `/userinfo` claims a plugin's `custom_claims` may never remove (SPEC §9).
const PROTECTED_CLAIMS: [&str; 2] = ["sub", "groups"];

/// A `map_connection` or `custom_claims` failure of a `fail-closed` plugin: the request fails
/// with 502.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("plugin `{plugin}` failed in `{hook}` ({outcome})")]
pub struct PluginFailure {
    pub plugin: String,
    pub hook: &'static str,
    pub outcome: &'static str,
}

/// How a call ended (the metric's `outcome` label).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Ok(Vec<u8>),
    Error(String),
    Panic(String),
    Timeout,
    Invalid(String),
    Busy,
    Skipped,
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Outcome::Ok(_) => "ok",
            Outcome::Error(_) => "error",
            Outcome::Panic(_) => "panic",
            Outcome::Timeout => "timeout",
            Outcome::Invalid(_) => "invalid",
            Outcome::Busy => "busy",
            Outcome::Skipped => "skipped",
        }
    }

    fn reason(&self) -> String {
        match self {
            Outcome::Ok(_) => String::new(),
            Outcome::Error(m) => format!("the plugin failed: {m}"),
            Outcome::Panic(m) => format!("the plugin panicked (caught): {m}"),
            Outcome::Timeout => "no answer within timeoutMs".into(),
            Outcome::Invalid(m) => format!("invalid answer: {m}"),
            Outcome::Busy => {
                format!("{MAX_CALLS_PER_PLUGIN} calls already in progress; call refused")
            }
            Outcome::Skipped => "skipped: its calls keep timing out (cooling down)".into(),
        }
    }
}

/// One loaded plugin and its call bookkeeping.
struct Slot {
    label: String,
    instance: Instance,
    timeout: Duration,
    on_error: OnError,
    in_flight: AtomicUsize,
    timeouts_in_a_row: AtomicU32,
    /// The daemon clock's milliseconds until which the plugin is skipped (0: not cooling down).
    cool_until_ms: AtomicI64,
}

/// Releases a slot's admission when the call's thread is done with it (not when its caller
/// stopped waiting).
struct Admission(Arc<Slot>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One call, run on the pool.
struct Call {
    hook: Hook,
    input: Arc<[u8]>,
    admission: Admission,
}

impl Message for Call {
    type Result = Result<Vec<u8>, CallError>;
}

/// A thread of the pool.
struct PluginThread;

impl Actor for PluginThread {
    type Context = SyncContext<Self>;
}

impl Handler<Call> for PluginThread {
    type Result = Result<Vec<u8>, CallError>;

    fn handle(&mut self, call: Call, _: &mut SyncContext<Self>) -> Self::Result {
        let instance = call.admission.0.instance;
        instance.call_raw(call.hook, &call.input)
    }
}

struct Inner {
    slots: Vec<Arc<Slot>>,
    /// The union of the slots' hook bits (`has` is on the `/userinfo` hot path).
    hooks: u32,
    pool: Option<Addr<PluginThread>>,
    calls: IntCounterVec,
    clock: Clock,
}

/// The handle to the loaded plugins; cheap to clone. With no plugins every hook is a no-op.
#[derive(Clone)]
pub struct Plugins {
    inner: Arc<Inner>,
}

/// A plugin as `check-config`, `/-/ready` and the logs describe it.
#[derive(Clone, Debug, Serialize)]
pub struct PluginSummary {
    pub name: String,
    pub version: String,
    pub hooks: Vec<&'static str>,
}

fn calls_metric() -> Result<IntCounterVec, prometheus::Error> {
    IntCounterVec::new(
        Opts::new(
            "auth0_client_plugin_calls_total",
            "Plugin calls, by plugin, hook and outcome (ok, error, panic, timeout, invalid, busy, skipped).",
        ),
        &["plugin", "hook", "outcome"],
    )
}

impl Plugins {
    /// Starts the pool for `loaded` (none when the list is empty); must run inside an actix
    /// system.
    pub fn start(loaded: Vec<LoadedPlugin>, clock: Clock) -> Result<Self, prometheus::Error> {
        let slots: Vec<Arc<Slot>> = loaded
            .into_iter()
            .map(|p| {
                Arc::new(Slot {
                    label: p.label,
                    instance: p.instance,
                    timeout: p.settings.timeout,
                    on_error: p.settings.on_error,
                    in_flight: AtomicUsize::new(0),
                    timeouts_in_a_row: AtomicU32::new(0),
                    cool_until_ms: AtomicI64::new(0),
                })
            })
            .collect();
        let hooks = slots
            .iter()
            .flat_map(|s| s.instance.entry().hooks())
            .fold(0, |bits, hook| bits | hook.bit());
        let pool = (!slots.is_empty())
            .then(|| SyncArbiter::start(slots.len() * MAX_CALLS_PER_PLUGIN, || PluginThread));
        Ok(Self {
            inner: Arc::new(Inner {
                slots,
                hooks,
                pool,
                calls: calls_metric()?,
                clock,
            }),
        })
    }

    /// `auth0_client_plugin_calls_total`, for the registry.
    pub fn calls_metric(&self) -> IntCounterVec {
        self.inner.calls.clone()
    }

    /// Whether any plugin implements `hook` (the callers skip the work of a call otherwise).
    pub fn has(&self, hook: Hook) -> bool {
        self.inner.hooks & hook.bit() != 0
    }

    /// The loaded plugins, in config order.
    pub fn summaries(&self) -> Vec<PluginSummary> {
        self.inner
            .slots
            .iter()
            .map(|s| PluginSummary {
                name: s.label.clone(),
                version: s.instance.entry().version(),
                hooks: s
                    .instance
                    .entry()
                    .hooks()
                    .iter()
                    .map(|h| h.name())
                    .collect(),
            })
            .collect()
    }

    /// The readiness check: `Err` while a `fail-closed` plugin is skipped (every request it
    /// guards fails, so a load balancer should prefer another daemon).
    pub fn readiness(&self) -> Result<(), String> {
        let now = self.inner.clock.now().as_millis();
        let cooling: Vec<&str> = self
            .inner
            .slots
            .iter()
            .filter(|s| {
                s.on_error == OnError::FailClosed && s.cool_until_ms.load(Ordering::Acquire) > now
            })
            .map(|s| s.label.as_str())
            .collect();
        if cooling.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "fail-closed plugin(s) {} skipped: their calls keep timing out",
                cooling.join(", ")
            ))
        }
    }

    fn slots_with(&self, hook: Hook) -> impl Iterator<Item = &Arc<Slot>> {
        self.inner
            .slots
            .iter()
            .filter(move |s| s.instance.entry().implements(hook))
    }

    /// Admits a call to `slot` or says why not.
    fn admit(&self, slot: &Arc<Slot>, hook: Hook) -> Result<Admission, Outcome> {
        let cool_until = slot.cool_until_ms.load(Ordering::Acquire);
        if cool_until > 0 {
            if self.inner.clock.now().as_millis() < cool_until {
                return Err(Outcome::Skipped);
            }
            // Cooled down: this call is the trial.
            slot.cool_until_ms.store(0, Ordering::Release);
        }
        // Events leave one admission to the request hooks, so a burst of logins cannot make a
        // plugin's `custom_claims` busy on its own.
        let limit = match hook {
            Hook::OnTokens | Hook::OnJobFinished => MAX_CALLS_PER_PLUGIN - 1,
            Hook::MapConnection | Hook::CustomClaims => MAX_CALLS_PER_PLUGIN,
        };
        if slot.in_flight.fetch_add(1, Ordering::AcqRel) >= limit {
            slot.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(Outcome::Busy);
        }
        Ok(Admission(slot.clone()))
    }

    /// Runs one call of `hook` on `slot` with its timeout.
    async fn call(&self, slot: &Arc<Slot>, hook: Hook, input: Arc<[u8]>) -> Outcome {
        let admission = match self.admit(slot, hook) {
            Ok(admission) => admission,
            Err(outcome) => return outcome,
        };
        let Some(pool) = &self.inner.pool else {
            return Outcome::Skipped;
        };
        let sent = pool
            .send(Call {
                hook,
                input,
                admission,
            })
            .timeout(slot.timeout)
            .await;
        match sent {
            Ok(Ok(answer)) => {
                slot.timeouts_in_a_row.store(0, Ordering::Release);
                Outcome::Ok(answer)
            }
            Ok(Err(CallError::Panic(m))) => Outcome::Panic(m),
            Ok(Err(CallError::Error(m))) => Outcome::Error(m),
            Ok(Err(CallError::BadAnswer(m))) => Outcome::Invalid(m),
            Err(MailboxError::Timeout) => {
                let row = slot.timeouts_in_a_row.fetch_add(1, Ordering::AcqRel) + 1;
                if row >= TIMEOUTS_BEFORE_COOL_DOWN {
                    let until = self.inner.clock.now().saturating_add(COOL_DOWN);
                    slot.cool_until_ms
                        .store(until.as_millis().max(1), Ordering::Release);
                    tracing::warn!(
                        plugin = %slot.label,
                        timeouts = row,
                        cool_down_seconds = COOL_DOWN.as_secs(),
                        "plugin keeps timing out: skipping it for a cool-down"
                    );
                }
                Outcome::Timeout
            }
            Err(MailboxError::Closed) => Outcome::Error("the plugin pool is stopped".into()),
        }
    }

    /// Counts and logs how a call ended.
    fn record(&self, slot: &Slot, hook: Hook, outcome: &Outcome) {
        let label = outcome.label();
        self.inner
            .calls
            .with_label_values(&[slot.label.as_str(), hook.name(), label])
            .inc();
        if let Outcome::Ok(_) = outcome {
            tracing::debug!(plugin = %slot.label, hook = hook.name(), "plugin call");
        } else {
            tracing::warn!(
                plugin = %slot.label,
                hook = hook.name(),
                outcome = label,
                reason = %outcome.reason(),
                "plugin call failed"
            );
        }
    }

    /// Applies `onError` to a failed call of a request's hook.
    fn on_failure(slot: &Slot, hook: Hook, outcome: &Outcome) -> Result<(), PluginFailure> {
        match slot.on_error {
            OnError::FailOpen => Ok(()),
            OnError::FailClosed => Err(PluginFailure {
                plugin: slot.label.clone(),
                hook: hook.name(),
                outcome: outcome.label(),
            }),
        }
    }

    /// `map_connection` (SPEC §9): the plugins with the hook in config order; the first
    /// non-null answer wins. An answer outside a non-empty `supportedConnections` is an
    /// `invalid` failure. `Ok(None)`: no plugin answered (or every failure was fail-open).
    pub async fn map_connection(
        &self,
        input: &MapConnectionInput,
    ) -> Result<Option<String>, PluginFailure> {
        let hook = Hook::MapConnection;
        if !self.has(hook) {
            return Ok(None);
        }
        let bytes: Arc<[u8]> = serde_json::to_vec(input).unwrap_or_default().into();
        for slot in self.slots_with(hook) {
            let outcome = match self.call(slot, hook, bytes.clone()).await {
                Outcome::Ok(answer) => match serde_json::from_slice::<MapConnectionOutput>(&answer)
                {
                    Ok(MapConnectionOutput { connection: None }) => Outcome::Ok(answer),
                    Ok(MapConnectionOutput {
                        connection: Some(connection),
                    }) if input.supported_connections.is_empty()
                        || input.supported_connections.contains(&connection) =>
                    {
                        self.record(slot, hook, &Outcome::Ok(Vec::new()));
                        return Ok(Some(connection));
                    }
                    Ok(MapConnectionOutput {
                        connection: Some(connection),
                    }) => Outcome::Invalid(format!(
                        "connection {} is not in the client's supportedConnections",
                        crate::echo::Quoted(&connection)
                    )),
                    Err(e) => Outcome::Invalid(e.to_string()),
                },
                other => other,
            };
            self.record(slot, hook, &outcome);
            if !matches!(outcome, Outcome::Ok(_)) {
                Self::on_failure(slot, hook, &outcome)?;
            }
        }
        Ok(None)
    }

    /// `custom_claims` (SPEC §9): each plugin with the hook, in config order, sees the body so
    /// far and its answer is merged in (a claim replaced by name, removed by `null`; `sub` may
    /// not change, and a `null` for `sub` or `groups` is ignored: both are always present;
    /// `groups` may only be replaced by an array). `Ok(true)`: every plugin answered, the body may be cached; `Ok(false)`: a
    /// fail-open plugin failed, the body lacks its claims and must not be cached.
    pub async fn custom_claims(
        &self,
        client: &str,
        sub: &str,
        claims: &mut Claims,
    ) -> Result<bool, PluginFailure> {
        let hook = Hook::CustomClaims;
        let mut complete = true;
        for slot in self.slots_with(hook) {
            let input = CustomClaimsInput {
                client: client.to_owned(),
                sub: sub.to_owned(),
                claims: claims.clone(),
            };
            let bytes: Arc<[u8]> = serde_json::to_vec(&input).unwrap_or_default().into();
            let outcome = match self.call(slot, hook, bytes).await {
                Outcome::Ok(answer) => {
                    match serde_json::from_slice::<CustomClaimsOutput>(&answer) {
                        Ok(out)
                            if out
                                .claims
                                .get("sub")
                                .is_some_and(|s| !s.is_null() && s.as_str() != Some(sub)) =>
                        {
                            Outcome::Invalid("it changed `sub`".into())
                        }
                        Ok(out)
                            if out
                                .claims
                                .get("groups")
                                .is_some_and(|g| !g.is_null() && !g.is_array()) =>
                        {
                            Outcome::Invalid("its `groups` is not an array".into())
                        }
                        Ok(out) => {
                            for (name, value) in out.claims {
                                if value.is_null() {
                                    // `sub` and `groups` are always present (SPEC §9).
                                    if !PROTECTED_CLAIMS.contains(&name.as_str()) {
                                        claims.remove(&name);
                                    }
                                } else {
                                    claims.insert(name, value);
                                }
                            }
                            Outcome::Ok(Vec::new())
                        }
                        Err(e) => Outcome::Invalid(e.to_string()),
                    }
                }
                other => other,
            };
            self.record(slot, hook, &outcome);
            if !matches!(outcome, Outcome::Ok(_)) {
                Self::on_failure(slot, hook, &outcome)?;
                complete = false;
            }
        }
        Ok(complete)
    }

    /// `on_tokens`: fire and forget (never delays or fails the login or refresh).
    pub fn on_tokens(&self, event: &TokensEvent) {
        self.fire(Hook::OnTokens, event);
    }

    /// `on_tokens` for a session just opened or refreshed (its ID claims; no token).
    pub fn session_tokens(&self, session: &Session, kind: TokensKind) {
        if self.has(Hook::OnTokens) {
            self.on_tokens(&TokensEvent {
                client: session.client.clone(),
                sub: session.sub.clone(),
                claims: session.claims.clone(),
                kind,
            });
        }
    }

    /// `on_job_finished`: fire and forget.
    pub fn on_job_finished(&self, event: &JobFinishedEvent) {
        self.fire(Hook::OnJobFinished, event);
    }

    /// The `Jobs` actor's `on_job_finished` hook point (it hands the event off, never blocks).
    pub fn job_finished_hook(&self) -> Box<dyn Fn(JobFinished) + Send + Sync> {
        let plugins = self.clone();
        Box::new(move |job: JobFinished| {
            let status = serde_json::to_value(job.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            plugins.on_job_finished(&JobFinishedEvent {
                job_id: job.job_id,
                status,
                summary: job.summary.unwrap_or_default(),
                connection: Some(job.connection),
            });
        })
    }

    fn fire<E: Serialize>(&self, hook: Hook, event: &E) {
        if !self.has(hook) {
            return;
        }
        let bytes: Arc<[u8]> = serde_json::to_vec(event).unwrap_or_default().into();
        let plugins = self.clone();
        actix_rt::spawn(async move {
            for slot in plugins.slots_with(hook) {
                let outcome = plugins.call(slot, hook, bytes.clone()).await;
                plugins.record(slot, hook, &outcome);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_have_the_metric_labels_of_the_readme() {
        let labels: Vec<&str> = [
            Outcome::Ok(Vec::new()),
            Outcome::Error(String::new()),
            Outcome::Panic(String::new()),
            Outcome::Timeout,
            Outcome::Invalid(String::new()),
            Outcome::Busy,
            Outcome::Skipped,
        ]
        .iter()
        .map(Outcome::label)
        .collect();
        assert_eq!(
            labels,
            [
                "ok", "error", "panic", "timeout", "invalid", "busy", "skipped"
            ]
        );
    }
}
