//! The "parallelize" pattern on a realistic job: an async stream of
//! documents (as from a paginated API or a queue) is enriched 100 at a
//! time; results are handled as they complete, failures are reported per
//! item, and memory stays bounded however long the stream is.
//!
//! This is the README's main job: `cargo run --release --example parallelize`.

use flyte::prelude::*;
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

static ENV: TaskEnvironment = TaskEnvironment::new("parallelize")
    .retries(1)
    .timeout(Duration::from_secs(5));

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Document {
    id: u64,
    body: String,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Enriched {
    id: u64,
    words: usize,
    language: String,
}

#[derive(Debug, thiserror::Error)]
#[error("document {0} is empty")]
struct EmptyDocument(u64);

/// Stands in for a call to a language-detection service.
#[task(env = ENV)]
async fn enrich(doc: Document) -> Result<Enriched, EmptyDocument> {
    tokio::time::sleep(Duration::from_millis(2 + doc.id % 5)).await;
    if doc.body.is_empty() {
        return Err(EmptyDocument(doc.id));
    }
    let language = if doc.body.contains(" der ") {
        "de"
    } else {
        "en"
    };
    Ok(Enriched {
        id: doc.id,
        words: doc.body.split_whitespace().count(),
        language: language.to_owned(),
    })
}

/// Pages of documents arriving over time.
fn documents(count: u64) -> impl futures_util::Stream<Item = Document> + Send + 'static {
    tokio_stream::iter(0..count).then(|id| async move {
        if id % 500 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await; // next page
        }
        let body = match id % 97 {
            0 => String::new(),
            n if n % 3 == 0 => format!("der Text der Nummer {id}"),
            _ => format!("the text of document number {id}"),
        };
        Document { id, body }
    })
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Report {
    enriched: u64,
    failed: Vec<u64>,
    words_by_language: BTreeMap<String, usize>,
}

#[task(env = ENV)]
async fn enrich_all(count: u64) -> Report {
    let mut report = Report::default();
    let mut results = flyte::map_stream(enrich, documents(count))
        .concurrency(100)
        .as_completed();
    while let Some((index, result)) = results.next().await {
        match result {
            Ok(doc) => {
                report.enriched += 1;
                *report.words_by_language.entry(doc.language).or_default() += doc.words;
            }
            Err(e) => {
                eprintln!("item {index}: {e}");
                report.failed.push(index as u64);
            }
        }
    }
    report.failed.sort_unstable();
    report
}

fn main() -> Result<(), TaskError> {
    let count = 5_000;
    let started = Instant::now();
    let outcome = flyte::Runner::new().run(enrich_all(count));
    let elapsed = started.elapsed();
    let map = &outcome.actions().fan_outs[0];
    println!(
        "run {}: {} started, {} succeeded, {} failed",
        outcome.run_id(),
        map.started,
        map.succeeded,
        map.failed
    );
    let report = outcome.into_output()?;
    println!(
        "enriched {} of {count} documents in {elapsed:?} ({} failed: {:?}...)",
        report.enriched,
        report.failed.len(),
        &report.failed[..report.failed.len().min(5)]
    );
    println!("words by language: {:?}", report.words_by_language);
    assert_eq!(report.enriched + report.failed.len() as u64, count);
    Ok(())
}
