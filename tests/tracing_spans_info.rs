//! Under a subscriber that wants INFO only, flyte makes only its `run` and
//! `fan_out` spans, and a fan-out still hangs under its run (no action or
//! attempt span is there to carry it).

use flyte::prelude::*;
use std::sync::{Arc, Mutex};
use tracing::span::{Attributes, Id};
use tracing::Subscriber;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// (span name, its parent's name) of every span made.
type Made = Arc<Mutex<Vec<(String, Option<String>)>>>;

struct Names(Made);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Names {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let parent = ctx
            .span(id)
            .and_then(|span| span.parent())
            .map(|p| p.name().to_owned());
        let name = attrs.metadata().name().to_owned();
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((name, parent));
    }
}

#[task]
fn double(x: u32) -> u32 {
    x * 2
}

#[task]
async fn double_all(n: u32) -> Result<Vec<u32>, TaskError> {
    flyte::map(double, 0..n).concurrency(4).await
}

#[test]
fn at_info_a_fan_out_hangs_under_its_run() {
    let made = Made::default();
    let subscriber = tracing_subscriber::registry()
        .with(LevelFilter::INFO)
        .with(Names(Arc::clone(&made)));
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");

    let outcome = flyte::Runner::new().persist(false).run(double_all(10));
    assert_eq!(outcome.output().map(Vec::len).ok(), Some(10));

    let made = made.lock().unwrap();
    let names: Vec<&str> = made.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["run", "fan_out"], "only INFO spans are made");
    assert_eq!(made[1].1.as_deref(), Some("run"));
}
