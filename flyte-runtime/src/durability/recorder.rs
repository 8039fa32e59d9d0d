//! The listener that writes a run to its store.

use crate::watch::sink::{ActionEnded, Listener};
use flyte_core::backend::RunStore;
use flyte_core::record::{FanOutRecord, Origin};
use flyte_core::store::{LogLine, RunClosed, RunEnd, RunKey, StoreFuture};
use std::sync::Arc;
use tracing::Span;

/// Records a run in its store: its actions, fan-outs, log lines and end.
#[derive(Debug)]
pub(crate) struct Recorder {
    pub(crate) store: Arc<dyn RunStore>,
    pub(crate) run: RunKey,
}

impl Listener for Recorder {
    fn action(&self, ended: &ActionEnded<'_>) {
        // A replayed action's record from the earlier execution stands; a
        // fleet's action has its row in the queue as its record.
        if ended.end.origin != Origin::Replayed && !ended.by_fleet {
            self.store.run_log().record_action(self.run, &ended.end);
        }
    }

    fn fan_out(&self, fan_out: &FanOutRecord) {
        self.store.run_log().record_fan_out(self.run, fan_out);
    }

    fn log(&self, line: &LogLine) {
        // A store without operations keeps no logs.
        if let Some(operations) = self.store.as_operations() {
            operations.record_log(self.run, line);
        }
    }

    fn run(&self, end: RunEnd, _: Option<&Span>) -> StoreFuture<'_, Option<RunClosed>> {
        Box::pin(async move { Some(self.store.run_log().end_run(self.run, end).await) })
    }
}
