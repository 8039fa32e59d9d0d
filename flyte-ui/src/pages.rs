//! The pages, their scripts and their style, compiled into the binary.
//!
//! The pages are static: every piece of a run reaches them as JSON from
//! the API and is put in as text (`textContent`), so a task name, an error
//! or a log line made of markup shows as the characters it is.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

const INDEX: &str = include_str!("../assets/index.html");
const RUN: &str = include_str!("../assets/run.html");
const COMMON_JS: &str = include_str!("../assets/common.js");
const INDEX_JS: &str = include_str!("../assets/index.js");
const RUN_JS: &str = include_str!("../assets/run.js");
const STYLE: &str = include_str!("../assets/style.css");

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, content_type)], body)
}

pub(crate) fn routes() -> Router {
    let html = "text/html; charset=utf-8";
    let js = "text/javascript; charset=utf-8";
    Router::new()
        .route("/", get(move || async move { asset(html, INDEX) }))
        .route("/runs/{run}", get(move || async move { asset(html, RUN) }))
        .route(
            "/assets/common.js",
            get(move || async move { asset(js, COMMON_JS) }),
        )
        .route(
            "/assets/index.js",
            get(move || async move { asset(js, INDEX_JS) }),
        )
        .route(
            "/assets/run.js",
            get(move || async move { asset(js, RUN_JS) }),
        )
        .route(
            "/assets/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route(
            "/favicon.ico",
            get(|| async { axum::http::StatusCode::NO_CONTENT }),
        )
}
