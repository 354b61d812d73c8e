//! The actix actors that own the daemon's long-lived state (DESIGN.md, "Actors and flows").
//! Handlers talk to them by message; each answers [`Alive`], which `/-/ready` asks of all.

pub mod sessions;
pub mod tokens;

use std::time::Duration;

use actix::prelude::*;

use crate::health::{FnProbe, ProbeFuture};
pub use sessions::{SessionRepo, Sessions};
pub use tokens::Tokens;

/// Asks an actor whether its mailbox is served: an actor stuck in a handler stops answering.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Alive;

macro_rules! actor {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Default)]
        pub struct $name;

        impl Actor for $name {
            type Context = Context<Self>;
        }

        impl Handler<Alive> for $name {
            type Result = ();
            fn handle(&mut self, _: Alive, _: &mut Context<Self>) {}
        }
    };
}

actor!(
    /// Owns the management token cache, the rate-limit pause and the retry policy.
    Management
);
actor!(
    /// Owns job records, their poll timers and the import queue.
    Jobs
);

/// The addresses of every actor, cloned into each HTTP worker.
#[derive(Clone)]
pub struct Actors {
    /// The store, read directly by handlers (see [`sessions`]).
    pub repo: SessionRepo,
    pub sessions: Addr<Sessions>,
    pub tokens: Addr<Tokens>,
    pub management: Addr<Management>,
    pub jobs: Addr<Jobs>,
}

const ALIVE_TIMEOUT: Duration = Duration::from_secs(2);

impl Actors {
    /// Starts every actor on the current actix system.
    pub fn start(repo: SessionRepo, sessions: Sessions, tokens: Tokens) -> Self {
        Self {
            repo,
            sessions: sessions.start(),
            tokens: tokens.start(),
            management: Management.start(),
            jobs: Jobs.start(),
        }
    }

    /// The readiness probe: every actor answers [`Alive`] in time.
    pub fn probe(&self) -> FnProbe<impl Fn() -> ProbeFuture + Send + Sync + use<>> {
        let actors = self.clone();
        FnProbe::new("actors", move || {
            let actors = actors.clone();
            Box::pin(async move {
                let answers = [
                    (
                        "Sessions",
                        actors.sessions.send(Alive).timeout(ALIVE_TIMEOUT).await,
                    ),
                    (
                        "Tokens",
                        actors.tokens.send(Alive).timeout(ALIVE_TIMEOUT).await,
                    ),
                    (
                        "Management",
                        actors.management.send(Alive).timeout(ALIVE_TIMEOUT).await,
                    ),
                    ("Jobs", actors.jobs.send(Alive).timeout(ALIVE_TIMEOUT).await),
                ];
                for (name, answer) in answers {
                    answer.map_err(|e| format!("actor {name} does not answer: {e}"))?;
                }
                Ok(())
            }) as ProbeFuture
        })
    }
}
