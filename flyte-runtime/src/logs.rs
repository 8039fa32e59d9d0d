//! Logs per action: `tracing` events emitted inside a task, kept with the
//! run in its store, read back with `flyte logs RUN [ACTION]`.
//!
//! Add [`layer`] to your subscriber (`flyte::cli::main()` does it for
//! you); each event inside a recorded run's task is stored with the
//! action it came from. Events outside any run, or in a run that is not
//! recorded, are left to the other layers.
//!
//! ```
//! use tracing_subscriber::prelude::*;
//!
//! tracing_subscriber::registry()
//!     .with(tracing_subscriber::fmt::layer().with_writer(flyte::progress::stderr))
//!     .with(flyte::logs::layer())
//!     .try_init()
//!     .ok();
//! ```

use crate::state::context::Scope;
use flyte_core::store::LogLine;
use std::fmt::Write as _;
use std::time::SystemTime;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

/// The layer that stores task events with their action (see the module docs).
pub fn layer() -> LogCapture {
    LogCapture { _private: () }
}

/// See [`layer`].
#[derive(Debug, Clone)]
pub struct LogCapture {
    _private: (),
}

impl<S: Subscriber> Layer<S> for LogCapture {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let Some(scope) = Scope::current() else {
            return;
        };
        let run = scope.run.shared();
        let sink = &run.sink;
        if !sink.is_heard() {
            return;
        }
        let meta = event.metadata();
        let mut message = Message::default();
        event.record(&mut message);
        let line = LogLine::new(
            Some(scope.action.id),
            SystemTime::now(),
            meta.level().as_str(),
            meta.target(),
            message.text + &message.fields,
        );
        sink.log(&line);
    }
}

/// An event's `message`, then its other fields as `name=value`.
#[derive(Default)]
struct Message {
    text: String,
    fields: String,
}

impl Message {
    fn add(&mut self, field: &Field, value: &dyn std::fmt::Display) {
        if field.name() == "message" {
            let _ = write!(self.text, "{value}");
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
}

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.text.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.add(field, &format_args!("{value:?}"));
    }
}
