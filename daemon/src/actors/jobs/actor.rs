//! [`Jobs`]: the actor that runs the polling rounds on a timer, on a submit's wake-up, or when a
//! test asks ([`PollOnce`]). Its handlers only spawn rounds: a round's Auth0 and store calls
//! never hold the mailbox, and the actor beats a [`Heartbeat`] that `/-/ready` reads instead of
//! asking it anything.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::model::JobFinished;
use super::round::{LoopState, PollReport, Runner, Settings};
use super::service::JobService;
use super::{Heartbeat, JobsHandle};
use crate::config::JobSettings;

/// How often the actor beats its heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// Polls every unfinished job whose time has come, sends queued batch parts, and sweeps
/// retention, once; answers what it did. The loop sends itself one on a timer; tests send it
/// instead of sleeping.
#[derive(Message)]
#[rtype(result = "PollReport")]
pub struct PollOnce;

/// Makes every unfinished job due now and runs a round (after a submit, or a status request that
/// found a job Auth0 forgot).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Wake;

/// The timer's round, which schedules the next one when it ends.
#[derive(Message)]
#[rtype(result = "()")]
struct Tick;

/// The poll loop (see the module doc of [`super`]). Build with [`Jobs::new`], optionally
/// [`Jobs::with_finished_hook`], then start it with [`Jobs::start_in_own_arbiter`].
pub struct Jobs {
    runner: Runner,
    heartbeat: Heartbeat,
    /// The timer's next round.
    tick: Option<SpawnHandle>,
    /// Whether a woken round is waiting for the running one (wake-ups are coalesced).
    woken: Arc<std::sync::atomic::AtomicBool>,
}

impl Jobs {
    /// `shared`: whether other daemons use the store (Redis); `auth0_timeout`:
    /// `server.auth0TimeoutMs`; `gauge`: `auth0_client_jobs{status}` ([`Jobs::gauge`]).
    pub fn new(
        service: JobService,
        settings: &JobSettings,
        auth0_timeout: Duration,
        shared: bool,
        gauge: prometheus::IntGaugeVec,
    ) -> Self {
        let max_interval = settings.max_poll_interval;
        Self {
            runner: Runner {
                service,
                settings: Settings {
                    holder: if shared {
                        format!("jobs-{}", uuid::Uuid::new_v4())
                    } else {
                        "jobs-local".to_owned()
                    },
                    poll_interval: settings.poll_interval,
                    max_interval,
                    lease_ttl: max_interval.saturating_add(auth0_timeout.saturating_mul(3)),
                    retention: Duration::from_secs(settings.retention_days.saturating_mul(86_400)),
                },
                state: Arc::new(tokio::sync::Mutex::new(LoopState::default())),
                gauge,
                hook: None,
            },
            heartbeat: Heartbeat::new(),
            tick: None,
            woken: Arc::default(),
        }
    }

    /// `auth0_client_jobs{status}`, to register with the metrics and hand to [`Jobs::new`].
    pub fn gauge() -> Result<prometheus::IntGaugeVec, prometheus::Error> {
        prometheus::IntGaugeVec::new(
            prometheus::Opts::new(
                "auth0_client_jobs",
                "Import jobs and batches by status: pending and processing are the unfinished \
                 records in the store at the last poll round; completed, failed and expired count \
                 the records this daemon saw finish since it started.",
            ),
            &["status"],
        )
    }

    /// The `on_job_finished` hook point: `hook` is called once per job or batch that finishes
    /// (see [`JobFinished`]). The plugins wire their event here.
    pub fn with_finished_hook(mut self, hook: Box<dyn Fn(JobFinished) + Send + Sync>) -> Self {
        self.runner.hook = Some(Arc::from(hook));
        self
    }

    /// Starts the loop on an arbiter of its own.
    pub fn start_in_own_arbiter(self) -> JobsHandle {
        let service = self.runner.service.clone();
        let heartbeat = self.heartbeat.clone();
        let arbiter = Arbiter::new();
        let actor = Self::start_in_arbiter(&arbiter.handle(), move |_| self);
        JobsHandle {
            service,
            actor,
            heartbeat,
        }
    }

    /// Spawns a round (never awaited by a handler); `then` runs on the actor with its answer.
    fn spawn_round(
        &mut self,
        ctx: &mut Context<Self>,
        wake: bool,
        then: impl FnOnce(&mut Self, &mut Context<Self>, Duration) + 'static,
    ) {
        let runner = self.runner.clone();
        ctx.spawn(
            async move { runner.run(wake).await }
                .into_actor(self)
                .map(move |(_, next), actor, ctx| then(actor, ctx, next)),
        );
    }

    /// (Re)sets the timer to `after`.
    fn schedule_tick(&mut self, ctx: &mut Context<Self>, after: Duration) {
        if let Some(tick) = self.tick.take() {
            ctx.cancel_future(tick);
        }
        self.tick = Some(ctx.run_later(after, |_, ctx| ctx.notify(Tick)));
    }
}

impl Actor for Jobs {
    type Context = Context<Self>;

    /// Beats the heartbeat, and resumes the unfinished work at once (in the background: the
    /// daemon is ready meanwhile), then polls on a timer.
    fn started(&mut self, ctx: &mut Context<Self>) {
        self.heartbeat.beat();
        ctx.run_interval(HEARTBEAT_EVERY, |actor, _| actor.heartbeat.beat());
        ctx.notify(Tick);
    }
}

impl Handler<PollOnce> for Jobs {
    type Result = ResponseFuture<PollReport>;

    fn handle(&mut self, _: PollOnce, _: &mut Context<Self>) -> Self::Result {
        let runner = self.runner.clone();
        Box::pin(async move { runner.run(false).await.0 })
    }
}

impl Handler<Tick> for Jobs {
    type Result = ();

    fn handle(&mut self, _: Tick, ctx: &mut Context<Self>) {
        self.tick = None;
        self.spawn_round(ctx, false, |actor, ctx, next| {
            // A wake-up may have set a nearer timer meanwhile: keep it.
            if actor.tick.is_none() {
                actor.schedule_tick(ctx, next);
            }
        });
    }
}

impl Handler<Wake> for Jobs {
    type Result = ();

    fn handle(&mut self, _: Wake, ctx: &mut Context<Self>) {
        use std::sync::atomic::Ordering;
        // One woken round waiting is enough: it will see every record due.
        if self.woken.swap(true, Ordering::SeqCst) {
            return;
        }
        let woken = self.woken.clone();
        let runner = self.runner.clone();
        ctx.spawn(
            async move {
                // Taken once this round owns the loop's state, so a wake-up after it starts
                // queues another.
                let state = runner.state.clone();
                let guard = state.lock().await;
                woken.store(false, Ordering::SeqCst);
                drop(guard);
                runner.run(true).await
            }
            .into_actor(self)
            .map(|(_, next), actor, ctx| actor.schedule_tick(ctx, next)),
        );
    }
}
