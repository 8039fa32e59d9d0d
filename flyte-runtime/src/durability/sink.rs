//! The sink: where every action, fan-out and run emits one value as it
//! ends, and where the lines its tasks log go. The live tree is updated by
//! a direct call before it (it is on the hot path, and the run's own result
//! is read from it); the sink then hands the value to its listeners: the
//! run's store (through [`Recorder`]), and whatever else watches the run.
//! A run with no listener pays one check per action. (The progress display
//! still registers fan-outs as they start through the run's
//! `FanOutObserver`, and tracing spans wrap the futures themselves: see
//! ARCHITECTURE.md.)

use flyte_core::backend::RunStore;
use flyte_core::record::{FanOutRecord, Origin};
use flyte_core::store::{ActionEnd, LogLine, RunClosed, RunEnd, RunKey, StoreFuture};
use std::fmt;
use std::sync::Arc;

/// What watches a run: told of every action, fan-out and run that ends.
/// Called on the thread that ended it, so it must not block for long.
pub(crate) trait Listener: fmt::Debug + Send + Sync {
    /// An action ended.
    fn action(&self, end: &ActionEnd<'_>);

    /// A `map` or `gather` ended (its last item ended, or it was dropped).
    fn fan_out(&self, fan_out: &FanOutRecord);

    /// A task of the run logged a line (through `flyte::logs::layer`).
    fn log(&self, line: &LogLine) {
        let _ = line;
    }

    /// The run ended, after every action and fan-out. A store answers what
    /// of the run it could not write; others answer `None`.
    fn run(&self, end: RunEnd) -> StoreFuture<'_, Option<RunClosed>>;
}

/// The listeners of one run.
#[derive(Debug, Default)]
pub(crate) struct Sink {
    listeners: Vec<Arc<dyn Listener>>,
}

impl Sink {
    /// A sink that hands every value to `listeners`.
    pub(crate) fn new(listeners: Vec<Arc<dyn Listener>>) -> Sink {
        Sink { listeners }
    }

    /// Whether anyone listens: when not, the values are not even made.
    pub(crate) fn is_heard(&self) -> bool {
        !self.listeners.is_empty()
    }

    pub(crate) fn action(&self, end: &ActionEnd<'_>) {
        for listener in &self.listeners {
            listener.action(end);
        }
    }

    pub(crate) fn fan_out(&self, fan_out: &FanOutRecord) {
        for listener in &self.listeners {
            listener.fan_out(fan_out);
        }
    }

    pub(crate) fn log(&self, line: &LogLine) {
        for listener in &self.listeners {
            listener.log(line);
        }
    }

    /// Tells every listener the run ended; returns what its store could not
    /// write, when a store listens.
    pub(crate) async fn run(&self, end: RunEnd) -> Option<RunClosed> {
        let mut closed = None;
        for listener in &self.listeners {
            if let Some(c) = listener.run(end.clone()).await {
                closed = Some(c);
            }
        }
        closed
    }
}

/// The listener that records a run in its store.
#[derive(Debug)]
pub(crate) struct Recorder {
    pub(crate) store: Arc<dyn RunStore>,
    pub(crate) run: RunKey,
}

impl Listener for Recorder {
    fn action(&self, end: &ActionEnd<'_>) {
        // A replayed action's record from the earlier execution stands.
        if end.origin != Origin::Replayed {
            self.store.run_log().record_action(self.run, end);
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

    fn run(&self, end: RunEnd) -> StoreFuture<'_, Option<RunClosed>> {
        Box::pin(async move { Some(self.store.run_log().end_run(self.run, end).await) })
    }
}
