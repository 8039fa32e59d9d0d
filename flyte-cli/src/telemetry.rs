//! Live export of runs' spans to an OpenTelemetry collector (feature
//! `otel`): when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, the command line's
//! subscriber gets a `tracing-opentelemetry` layer that sends the spans
//! the runtime makes (a run, its fan-outs and its actions, with their
//! status, attempts and errors) over OTLP/HTTP, in batches from a thread
//! of their own; the standard `OTEL_*` variables (headers, service name,
//! timeouts) apply. What is still batched when the command ends is sent
//! before it exits.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use std::sync::OnceLock;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::Layer;

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Whether the environment names a collector.
fn wanted() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|v| std::env::var(v).is_ok_and(|v| !v.is_empty()))
}

/// The layer that exports flyte's spans (runs, fan-outs, actions), when a
/// collector is named; `None` otherwise, or when the exporter cannot be
/// made (said once on stderr, with the endpoint's password masked).
pub(crate) fn layer<S>() -> Option<impl Layer<S>>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    if !wanted() {
        return None;
    }
    let exporter = match SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .build()
    {
        Ok(exporter) => exporter,
        Err(e) => {
            eprintln!(
                "warning: spans are not exported: {}",
                flyte_core::redact::url(&e.to_string())
            );
            return None;
        }
    };
    let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "flyte".into());
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service).build())
        .build();
    let tracer = provider.tracer("flyte");
    let _ = PROVIDER.set(provider);
    // Runs, fan-outs and actions (debug); attempts (trace) are left out:
    // an action's span already spans its attempts.
    let spans = Targets::new().with_target("flyte", LevelFilter::DEBUG);
    Some(
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(spans),
    )
}

/// Sends what is still batched, and stops the exporter.
pub(crate) fn shutdown() {
    if let Some(provider) = PROVIDER.get() {
        if let Err(e) = provider.shutdown() {
            eprintln!(
                "warning: some spans may not have reached the collector: {}",
                flyte_core::redact::url(&e.to_string())
            );
        }
    }
}
