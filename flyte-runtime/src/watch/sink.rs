//! The sink: the one seam through which anything watches a run. Runs,
//! fan-outs, actions and attempts tell it when they start and end, tasks
//! tell it the lines they log, and it hands each event to the run's
//! listeners: the store (`durability::recorder`), the progress board
//! (`progress::board`), the tracing spans ([`super::spans::Spans`]), and
//! next the web UI and OpenTelemetry export.
//!
//! The live tree is updated by a direct call before the sink (it is on the
//! hot path, and the run's own result is read from it). A run with no
//! listener pays one check per action: [`Sink::is_heard`].

use flyte_core::record::{FanOutKind, FanOutRecord};
use flyte_core::store::{ActionEnd, LogLine, RunClosed, RunEnd, StoreFuture};
use flyte_core::{ActionId, TaskError};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tracing::span::Id;
use tracing::Span;

/// What watches a run. Every method has a default that ignores the event. Called on the thread where the event happened,
/// so a listener must not block for long.
///
/// The `*_started` methods may answer the tracing span the work runs in:
/// one listener ([`super::spans::Spans`]) makes spans, and the work runs
/// inside the first span answered; the ends hand that span back.
pub(crate) trait Listener: fmt::Debug + Send + Sync {
    /// Whether it listens to the starts of fan-outs, actions and attempts
    /// (when no listener does, they are not even told).
    fn hears_starts(&self) -> bool {
        false
    }

    /// The run began.
    fn run_started(&self, run: &RunStart<'_>) -> Option<Span> {
        let _ = run;
        None
    }

    /// A `map` or `gather` started its first item.
    fn fan_out_started(&self, fan_out: &FanOutStart<'_>) -> Option<Span> {
        let _ = fan_out;
        None
    }

    /// An action starts (before its cache, replay or attempts).
    fn action_started(&self, action: &ActionStart<'_>) -> Option<Span> {
        let _ = action;
        None
    }

    /// An attempt of an action begins (it has its concurrency slot).
    fn attempt_started(&self, task: &'static str, number: u32) -> Option<Span> {
        let _ = (task, number);
        None
    }

    /// An attempt failed and the action runs again after a wait.
    fn retrying(&self, retry: &Retry<'_>) {
        let _ = retry;
    }

    /// An action ended.
    fn action(&self, ended: &ActionEnded<'_>) {
        let _ = ended;
    }

    /// A `map` or `gather` was dropped by its caller (items may still be
    /// ending: its record comes with [`Listener::fan_out`]).
    fn fan_out_closed(&self, closed: &FanOutClosed<'_>) {
        let _ = closed;
    }

    /// A `map` or `gather` ended: its last item ended after it was dropped.
    fn fan_out(&self, fan_out: &FanOutRecord) {
        let _ = fan_out;
    }

    /// A task of the run logged a line (through `flyte::logs::layer`).
    fn log(&self, line: &LogLine) {
        let _ = line;
    }

    /// The run ended, after every action and fan-out. A store answers what
    /// of the run it could not write; others answer `None`.
    fn run(&self, end: RunEnd, span: Option<&Span>) -> StoreFuture<'_, Option<RunClosed>> {
        let _ = (end, span);
        Box::pin(std::future::ready(None))
    }
}

/// A run that began.
#[derive(Debug)]
pub(crate) struct RunStart<'a> {
    pub(crate) id: &'a str,
    pub(crate) name: Option<&'a str>,
    /// Its root's task.
    pub(crate) task: &'a str,
}

/// A fan-out that started.
#[derive(Debug)]
pub(crate) struct FanOutStart<'a> {
    pub(crate) id: ActionId,
    pub(crate) kind: FanOutKind,
    /// Its bound (`None`: unbounded).
    pub(crate) concurrency: Option<u32>,
    /// The task of the action that runs it.
    pub(crate) parent_task: &'static str,
    /// How many items its input holds, when it says so up front.
    pub(crate) expected: Option<u64>,
    /// Its counters as they go.
    pub(crate) live: &'a Arc<dyn LiveFanOut>,
    /// The run's span, when the run has one.
    pub(crate) run_span: Option<Id>,
}

/// An action that starts.
#[derive(Debug)]
pub(crate) struct ActionStart<'a> {
    pub(crate) id: ActionId,
    pub(crate) task: &'a str,
    /// Its input index, when it is a fan-out's item.
    pub(crate) index: Option<usize>,
    /// The span it hangs under, when not the current one: its fan-out's
    /// for an item, the run's for the root.
    pub(crate) parent_span: Option<Id>,
}

/// An attempt that failed and is tried again.
#[derive(Debug)]
pub(crate) struct Retry<'a> {
    pub(crate) task: &'static str,
    /// The attempt that failed.
    pub(crate) attempt: u32,
    /// The wait before the next one.
    pub(crate) wait: Duration,
    pub(crate) error: &'a TaskError,
}

/// An action that ended.
#[derive(Debug)]
pub(crate) struct ActionEnded<'a> {
    pub(crate) end: ActionEnd<'a>,
    /// Set when a fleet keeps its record: its row in the work queue is it
    /// (a call this process queued, or an action it claimed).
    pub(crate) by_fleet: bool,
    /// The span it ran in, when one was made.
    pub(crate) span: Option<&'a Span>,
}

/// A fan-out its caller dropped.
#[derive(Debug)]
pub(crate) struct FanOutClosed<'a> {
    /// The task its items ran (`None`: several, or none).
    pub(crate) task: Option<&'a str>,
    /// Items started, succeeded, failed and cancelled by then.
    pub(crate) counts: [u64; 4],
    /// Its span, when one was made.
    pub(crate) span: Option<&'a Span>,
}

/// A fan-out's counters, read while it runs (by the progress display).
pub(crate) trait LiveFanOut: fmt::Debug + Send + Sync {
    /// Someone reads it from now on: keep what only a reader needs
    /// (retries, the last failure); `expected` as in [`FanOutStart`].
    fn watch(&self, expected: Option<u64>);

    /// Its counters now.
    fn live(&self) -> LiveCounts;
}

/// A fan-out's counters at one moment (see [`LiveFanOut::live`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct LiveCounts {
    pub(crate) task: Option<&'static str>,
    pub(crate) expected: Option<u64>,
    pub(crate) started: u64,
    pub(crate) succeeded: u64,
    pub(crate) failed: u64,
    pub(crate) cancelled: u64,
    pub(crate) cached: u64,
    pub(crate) replayed: u64,
    pub(crate) retried: u64,
    /// Items whose body executes now (the rest in flight wait); `None`
    /// when its items run on a fleet's workers, out of this process's sight.
    pub(crate) executing: Option<u64>,
    /// The first line of the latest failure's error.
    pub(crate) last_failure: Option<String>,
    /// Dropped, with every item ended: its counts are final.
    pub(crate) done: bool,
}

/// The listeners of one run.
#[derive(Debug, Default)]
pub(crate) struct Sink {
    listeners: Vec<Arc<dyn Listener>>,
    /// Whether any of them listens to starts.
    hears_starts: bool,
}

impl Sink {
    /// A sink that hands every event to `listeners`.
    pub(crate) fn new(listeners: Vec<Arc<dyn Listener>>) -> Sink {
        let hears_starts = listeners.iter().any(|l| l.hears_starts());
        Sink {
            listeners,
            hears_starts,
        }
    }

    /// Whether anyone listens: when not, the events are not even made.
    #[inline]
    pub(crate) fn is_heard(&self) -> bool {
        !self.listeners.is_empty()
    }

    /// Whether anyone listens to starts (see [`Listener::hears_starts`]):
    /// when not, they are not even made.
    #[inline]
    pub(crate) fn hears_starts(&self) -> bool {
        self.hears_starts
    }

    /// Tells every listener; the first span answered.
    fn started(&self, mut tell: impl FnMut(&dyn Listener) -> Option<Span>) -> Option<Span> {
        let mut span = None;
        for listener in &self.listeners {
            let answer = tell(&**listener);
            span = span.or(answer);
        }
        span
    }

    pub(crate) fn run_started(&self, run: &RunStart<'_>) -> Option<Span> {
        self.started(|l| l.run_started(run))
    }

    pub(crate) fn fan_out_started(&self, fan_out: &FanOutStart<'_>) -> Option<Span> {
        self.started(|l| l.fan_out_started(fan_out))
    }

    pub(crate) fn action_started(&self, action: &ActionStart<'_>) -> Option<Span> {
        self.started(|l| l.action_started(action))
    }

    pub(crate) fn attempt_started(&self, task: &'static str, number: u32) -> Option<Span> {
        self.started(|l| l.attempt_started(task, number))
    }

    pub(crate) fn retrying(&self, retry: &Retry<'_>) {
        for listener in &self.listeners {
            listener.retrying(retry);
        }
    }

    pub(crate) fn action(&self, ended: &ActionEnded<'_>) {
        for listener in &self.listeners {
            listener.action(ended);
        }
    }

    pub(crate) fn fan_out_closed(&self, closed: &FanOutClosed<'_>) {
        for listener in &self.listeners {
            listener.fan_out_closed(closed);
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
    pub(crate) async fn run(&self, end: RunEnd, span: Option<&Span>) -> Option<RunClosed> {
        let mut closed = None;
        for listener in &self.listeners {
            if let Some(c) = listener.run(end.clone(), span).await {
                closed = Some(c);
            }
        }
        closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Counts the starts it hears; answers a span when `spans` is set.
    #[derive(Debug, Default)]
    struct Counting {
        starts: AtomicU32,
        spans: bool,
    }

    impl Listener for Counting {
        fn hears_starts(&self) -> bool {
            true
        }

        fn attempt_started(&self, _: &'static str, _: u32) -> Option<Span> {
            self.starts.fetch_add(1, Ordering::Relaxed);
            self.spans.then(Span::none)
        }
    }

    #[test]
    fn every_listener_hears_a_start_whoever_answers_its_span() {
        let first = Arc::new(Counting {
            spans: true,
            ..Counting::default()
        });
        let second = Arc::new(Counting::default());
        let sink = Sink::new(vec![first.clone(), second.clone()]);
        assert!(sink.is_heard() && sink.hears_starts());
        assert!(sink.attempt_started("t", 1).is_some());
        assert_eq!(first.starts.load(Ordering::Relaxed), 1);
        assert_eq!(second.starts.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn starts_are_heard_only_when_a_listener_asks_for_them() {
        #[derive(Debug)]
        struct EndsOnly;
        impl Listener for EndsOnly {}
        let sink = Sink::new(vec![Arc::new(EndsOnly)]);
        assert!(sink.is_heard());
        assert!(!sink.hears_starts());
        assert!(!Sink::default().is_heard());
    }
}
