//! Abort requests: `flyte abort RUN` (another process) marks the run in the
//! store; the process running it polls the mark and stops the run as Ctrl-C
//! would, so every action still going records itself cancelled.

use crate::policies::signals::{Stop, StopHandle};
use flyte_core::backend::RunStore;
use flyte_core::store::RunKey;
use std::sync::Arc;
use std::time::Duration;

/// How often the store is asked: the command line promises a run sees an
/// abort within 100 ms.
pub(crate) const POLL: Duration = Duration::from_millis(50);

/// Polls `store` for an abort request on run `run` until there is one (and
/// stops the run) or the future is dropped. A store that cannot be read
/// is asked again at the next tick: the run goes on meanwhile. A store
/// without operations takes no abort requests: nothing to watch.
pub(crate) async fn watch(store: Arc<dyn RunStore>, run: RunKey, stop: Arc<StopHandle>) {
    if store.as_operations().is_none() {
        return;
    }
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if stop.cancel.is_cancelled() {
            return;
        }
        // On a blocking thread: a store across the network (the fleet's)
        // would hold this runtime's thread for a round trip, or for as
        // long as its server is away. Twenty a second cost nothing.
        let asked = Arc::clone(&store);
        let requested = tokio::task::spawn_blocking(move || match asked.as_operations() {
            Some(operations) => operations.abort_requested(run),
            None => Ok(false),
        })
        .await;
        if let Ok(Ok(true)) = requested {
            stop.stop(Stop::Abort);
            return;
        }
    }
}
