//! Tracing spans, target `flyte`: a run (INFO) holds its root action
//! (DEBUG), whose attempt (TRACE) holds the fan-outs (INFO) its body runs,
//! which hold their items; retries and cache hits are DEBUG
//! events; how each ended is recorded on its span; inputs and outputs never
//! appear.

use flyte::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

#[derive(Debug, Clone)]
struct Seen {
    name: String,
    level: Level,
    target: String,
    parent: Option<u64>,
    fields: HashMap<String, String>,
}

#[derive(Default)]
struct Captured {
    spans: HashMap<u64, Seen>,
    events: Vec<Seen>,
}

struct Capture(Arc<Mutex<Captured>>);

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = HashMap::new();
        attrs.record(&mut Fields(&mut fields));
        let parent = ctx
            .span(id)
            .and_then(|span| span.parent())
            .map(|p| p.id().into_u64());
        let meta = attrs.metadata();
        let seen = Seen {
            name: meta.name().to_owned(),
            level: *meta.level(),
            target: meta.target().to_owned(),
            parent,
            fields,
        };
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .spans
            .insert(id.into_u64(), seen);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut captured = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(seen) = captured.spans.get_mut(&id.into_u64()) {
            values.record(&mut Fields(&mut seen.fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = HashMap::new();
        event.record(&mut Fields(&mut fields));
        let meta = event.metadata();
        let seen = Seen {
            name: meta.name().to_owned(),
            level: *meta.level(),
            target: meta.target().to_owned(),
            parent: ctx.current_span().id().map(Id::into_u64),
            fields,
        };
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .events
            .push(seen);
    }
}

/// Every span and event of this process (a global subscriber: the tasks
/// run on the runtime's worker threads).
fn captured() -> &'static Arc<Mutex<Captured>> {
    static CAPTURED: OnceLock<Arc<Mutex<Captured>>> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let captured = Arc::new(Mutex::new(Captured::default()));
        let subscriber = tracing_subscriber::registry().with(Capture(Arc::clone(&captured)));
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        captured
    })
}

static ENV: TaskEnvironment = TaskEnvironment::new("traced");
static FLAKY: AtomicUsize = AtomicUsize::new(0);

#[task(env = ENV, retries = 1, backoff = Backoff::none())]
fn check(secret: String, i: u32) -> Result<usize, TaskError> {
    if i == 1 {
        return Err(TaskError::new(ErrorKind::User, "item one fails"));
    }
    if i == 2 && FLAKY.fetch_add(1, Ordering::SeqCst) == 0 {
        return Err(TaskError::new(ErrorKind::User, "flaky once"));
    }
    Ok(secret.len() + i as usize)
}

#[task(env = ENV)]
async fn check_all(secret: String) -> Result<usize, TaskError> {
    let calls = (0..3).map(move |i| (secret.clone(), i));
    let results = flyte::map(|(s, i)| check(s, i), calls)
        .concurrency(2)
        .collect_errors()
        .await;
    Ok(results.iter().filter(|r| r.is_ok()).count())
}

#[task(env = ENV, cache = "auto")]
fn cached_len(text: String) -> usize {
    text.len()
}

#[test]
fn runs_fan_outs_actions_and_attempts_are_nested_spans() {
    let captured = captured();
    let outcome = flyte::Runner::new()
        .persist(false)
        .run(check_all("hunter2-secret".into()));
    assert_eq!(outcome.output().ok(), Some(&2));

    let seen = captured.lock().unwrap_or_else(|e| e.into_inner());
    let spans = &seen.spans;
    let (run_id, run) = spans
        .iter()
        .find(|(_, s)| {
            s.name == "run"
                && s.fields.get("flyte.run_id").map(String::as_str) == Some(outcome.run_id())
        })
        .expect("a run span with the run's id");
    assert_eq!((run.level, run.target.as_str()), (Level::INFO, "flyte"));
    assert_eq!(run.fields["flyte.task"], "traced.check_all");
    assert_eq!(run.fields["flyte.status"], "succeeded");
    assert_eq!(run.fields["otel.status_code"], "OK");

    let root = spans
        .iter()
        .find(|(_, s)| s.name == "action" && s.parent == Some(*run_id))
        .expect("the root action under the run");
    assert_eq!(root.1.level, Level::DEBUG);
    assert_eq!(root.1.fields["otel.name"], "traced.check_all");
    assert_eq!(root.1.fields["flyte.status"], "succeeded");

    // The map runs inside the root's attempt.
    let (root_attempt, _) = spans
        .iter()
        .find(|(_, s)| s.name == "attempt" && s.parent == Some(*root.0))
        .expect("the root's attempt");
    let (map_id, map) = spans
        .iter()
        .find(|(_, s)| s.name == "fan_out" && s.parent == Some(*root_attempt))
        .expect("the map under the root's attempt");
    assert_eq!(map.level, Level::INFO);
    assert_eq!(map.fields["flyte.kind"], "map");
    assert_eq!(map.fields["flyte.concurrency"], "2");
    assert_eq!(map.fields["flyte.task"], "traced.check");
    assert_eq!(
        (
            map.fields["flyte.started"].as_str(),
            map.fields["flyte.failed"].as_str()
        ),
        ("3", "1")
    );
    assert_eq!(map.fields["otel.status_code"], "ERROR");

    let items: Vec<_> = spans
        .iter()
        .filter(|(_, s)| s.name == "action" && s.parent == Some(*map_id))
        .collect();
    assert_eq!(items.len(), 3, "each item under its map");
    let failed = items
        .iter()
        .find(|(_, s)| s.fields.get("flyte.index").map(String::as_str) == Some("1"))
        .unwrap();
    assert_eq!(failed.1.fields["flyte.status"], "failed");
    assert_eq!(failed.1.fields["flyte.attempts"], "2");
    assert_eq!(failed.1.fields["otel.status_code"], "ERROR");
    assert!(failed.1.fields["flyte.error"].contains("item one fails"));
    let attempts = spans
        .values()
        .filter(|s| s.name == "attempt" && s.parent == Some(*failed.0))
        .count();
    assert_eq!(attempts, 2, "two attempts, TRACE spans under their action");
    assert!(spans
        .values()
        .filter(|s| s.name == "attempt")
        .all(|s| s.level == Level::TRACE));

    let retries: Vec<_> = seen
        .events
        .iter()
        .filter(|e| e.fields.get("message").map(String::as_str) == Some("retrying"))
        .collect();
    assert!(retries.len() >= 2, "item 1 and item 2 each retried once");
    assert!(retries
        .iter()
        .all(|e| e.level == Level::DEBUG && e.target == "flyte"));

    // Inputs and outputs never appear.
    let everything = spans.values().chain(seen.events.iter());
    for s in everything {
        for value in s.fields.values() {
            assert!(
                !value.contains("hunter2"),
                "an input leaked into {}: {value}",
                s.name
            );
        }
    }
}

#[test]
fn a_cache_hit_is_an_event() {
    let captured = captured();
    let home = tempfile::TempDir::new().unwrap();
    let runner = flyte::Runner::new().home(home.path());
    runner.run(cached_len("abc".into()));
    let second = runner.run(cached_len("abc".into()));
    assert_eq!(second.actions().origin, flyte::Origin::Cached);
    let seen = captured.lock().unwrap_or_else(|e| e.into_inner());
    let hits = seen
        .events
        .iter()
        .filter(|e| e.fields.get("message").map(String::as_str) == Some("cache hit"))
        .filter(|e| e.fields.get("flyte.task").map(String::as_str) == Some("traced.cached_len"))
        .count();
    assert_eq!(hits, 1);
}
