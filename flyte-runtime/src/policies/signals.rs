//! Ctrl-C (SIGINT) and SIGTERM for runs started with the blocking
//! `flyte::run` / `Runner::run`.
//!
//! The first signal cancels every such run still going: each records its
//! actions as cancelled and returns a `Cancelled` error promptly. A signal
//! when no run is left to cancel (a second Ctrl-C, or one after the runs
//! ended) exits the process at once, as the default handler would have.

use crate::policies::cancel::CancelSignal;
use flyte_core::sync::lock;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

/// Which signal stopped a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    Interrupt,
    Terminate,
    /// Someone asked the store to cancel the run (`flyte abort`).
    Abort,
}

impl Stop {
    /// The exit status a shell reports for a process killed by the signal.
    fn exit_code(self) -> i32 {
        match self {
            Stop::Interrupt | Stop::Abort => 130,
            Stop::Terminate => 143,
        }
    }
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stop::Interrupt => "SIGINT (Ctrl-C)",
            Stop::Terminate => "SIGTERM",
            Stop::Abort => "an abort request (flyte abort)",
        })
    }
}

/// What a signal stops: one run's cancel signal, and which signal it was.
/// Signals hold this handle, not the run.
#[derive(Debug, Default)]
pub(crate) struct StopHandle {
    /// Set to stop the whole run.
    pub(crate) cancel: CancelSignal,
    stopped_by: Mutex<Option<Stop>>,
}

impl StopHandle {
    /// Stops the run because of `signal`.
    pub(crate) fn stop(&self, signal: Stop) {
        *lock(&self.stopped_by) = Some(signal);
        self.cancel.cancel();
    }

    /// The signal that stopped the run, if one did.
    pub(crate) fn stopped_by(&self) -> Option<Stop> {
        *lock(&self.stopped_by)
    }
}

static ACTIVE: Mutex<Vec<Weak<StopHandle>>> = Mutex::new(Vec::new());

fn active() -> MutexGuard<'static, Vec<Weak<StopHandle>>> {
    lock(&ACTIVE)
}

/// Listens for signals on behalf of the run `run` stops until the guard is
/// dropped. Call inside the runtime that should host the listener.
pub(crate) fn watch(run: &Arc<StopHandle>) -> Watched {
    static LISTENER: OnceLock<()> = OnceLock::new();
    LISTENER.get_or_init(|| match Listener::new() {
        Ok(listener) => {
            tokio::spawn(listener.serve());
        }
        // Without a listener the default handlers stay: Ctrl-C still ends
        // the process, only without recording the run.
        Err(e) => eprintln!(
            "flyte: cannot listen for Ctrl-C/SIGTERM ({e}); runs will not be stopped cleanly"
        ),
    });
    let mut runs = active();
    runs.retain(|r| r.strong_count() > 0);
    runs.push(Arc::downgrade(run));
    Watched(Arc::downgrade(run))
}

/// Keeps a run among those a signal cancels.
pub(crate) struct Watched(Weak<StopHandle>);

impl Drop for Watched {
    fn drop(&mut self) {
        active().retain(|r| !r.ptr_eq(&self.0) && r.strong_count() > 0);
    }
}

struct Listener {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Listener {
    /// Registers the handlers now (not on first poll), so no signal falls
    /// between the run's start and the listener's.
    fn new() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Listener {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Listener {})
        }
    }

    async fn next(&mut self) -> Stop {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => Stop::Interrupt,
                _ = self.terminate.recv() => Stop::Terminate,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Stop::Interrupt
        }
    }

    async fn serve(mut self) {
        loop {
            let stop = self.next().await;
            let runs: Vec<Arc<StopHandle>> = active()
                .iter()
                .filter_map(Weak::upgrade)
                .filter(|run| !run.cancel.is_cancelled())
                .collect();
            if runs.is_empty() {
                std::process::exit(stop.exit_code());
            }
            eprintln!(
                "flyte: {stop}: cancelling {} run(s); send it again to exit at once",
                runs.len()
            );
            for run in runs {
                run.stop(stop);
            }
        }
    }
}
