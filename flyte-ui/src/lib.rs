//! The flyte web UI and HTTP API: the runs of a store, live, in a browser
//! or from `curl`, served by the user's own binary (`flyte ui`).
//!
//! Everything is read from the store (SQLite or a fleet's PostgreSQL), so
//! the UI shows runs of any process that records there, and operates them
//! the way the command line does: an abort is a request in the store that
//! the run's own process answers; a start, resume or rerun runs in the
//! server's process, which links the tasks (`flyte::cli::main()`), or is
//! refused where it does not (`cargo flyte ui`).
//!
//! The pages, their script and their style are compiled into the binary:
//! nothing is fetched at run time, and no JavaScript toolchain is needed to
//! build.
//!
//! | path | what |
//! | --- | --- |
//! | `/` | the runs, newest first: filters, search, paging; a form to start a run |
//! | `/runs/{run}` | one run, live: header, fan-outs, timeline, failures, tree, logs, actions |
//! | `/api/v1/...` | the HTTP API (JSON; see [`api`] and the README) |
//!
//! # Security
//!
//! The server binds to loopback by default and then checks that requests
//! name a loopback host (a page elsewhere cannot reach it through DNS
//! rebinding). Binding to any other address needs a token
//! ([`Ui::token`], `--token` or `FLYTE_UI_TOKEN`), which every request then
//! carries: `Authorization: Bearer TOKEN` from scripts, or once as
//! `?token=TOKEN` in the browser (kept in a same-site, HTTP-only cookie).
//! Requests that change something are `POST`s with a JSON body from the
//! same origin. Pages build every piece of store text (task names, errors,
//! logs, outputs) as text, never as markup, under a content security
//! policy that runs no inline script.
//!
//! # Examples
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(flyte_sqlite::Store::open(".flyte")?);
//! let ui = flyte_ui::Ui::new(store).port(8233).spawn()?;
//! println!("open http://{}", ui.addr());
//! # Ok(())
//! # }
//! ```

pub mod api;
mod digests;
mod pages;
mod security;
mod sites;
mod timeline;

pub use security::Token;

use flyte_core::backend::RunStore;
use flyte_runtime::Runner;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// The port `flyte ui` listens on by default.
pub const DEFAULT_PORT: u16 = 8233;

/// A web UI on a store, to be served.
#[derive(Clone)]
#[must_use]
pub struct Ui {
    store: Arc<dyn RunStore>,
    bind: IpAddr,
    port: u16,
    token: Option<Token>,
    runner: Option<Runner>,
}

impl std::fmt::Debug for Ui {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ui")
            .field("store", &self.store.location())
            .field("bind", &self.bind)
            .field("port", &self.port)
            .field("token", &self.token)
            .field("starts_runs", &self.runner.is_some())
            .finish()
    }
}

/// What keeps a UI from serving.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// Bound beyond loopback without a token.
    #[error(
        "refusing to serve the UI on {0} without a token: anyone who reaches that address \
         could read every run and start or abort runs (give --token or FLYTE_UI_TOKEN, \
         at least 16 characters, e.g. from `openssl rand -hex 16`; or keep the default \
         --bind 127.0.0.1)"
    )]
    OpenWithoutToken(IpAddr),
    /// A token too short to guess at.
    #[error(
        "the UI token is {0} characters long: use 16 or more (e.g. from `openssl rand -hex 16`)"
    )]
    ShortToken(usize),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source} (pick another --port, or stop what uses it)")]
    Bind {
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server's threads could not start.
    #[error("cannot start the UI's runtime: {0}")]
    Runtime(std::io::Error),
}

impl Ui {
    /// A UI on `store`, on `127.0.0.1:8233`, that reads and aborts runs but
    /// starts none (see [`Ui::runner`]).
    pub fn new(store: Arc<dyn RunStore>) -> Self {
        Ui {
            store,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: DEFAULT_PORT,
            token: None,
            runner: None,
        }
    }

    /// The address to listen on (default `127.0.0.1`; any other than
    /// loopback needs a [`Ui::token`]).
    pub fn bind(mut self, addr: IpAddr) -> Self {
        self.bind = addr;
        self
    }

    /// The port (default 8233; 0 picks a free one).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The token every request must carry.
    pub fn token(mut self, token: Option<Token>) -> Self {
        self.token = token;
        self
    }

    /// Starts, resumes and reruns runs with `runner` (a binary that links
    /// the tasks); without it those requests are refused, naming why.
    pub fn runner(mut self, runner: Runner) -> Self {
        self.runner = Some(runner);
        self
    }

    fn check(&self) -> Result<(), UiError> {
        if let Some(token) = &self.token {
            if token.len() < security::MIN_TOKEN_LEN {
                return Err(UiError::ShortToken(token.len()));
            }
        } else if !self.bind.is_loopback() {
            return Err(UiError::OpenWithoutToken(self.bind));
        }
        Ok(())
    }

    /// Serves on a thread of its own until the handle is stopped or
    /// dropped; returns once it listens.
    ///
    /// # Errors
    ///
    /// When the address is open without a token, or cannot be bound.
    pub fn spawn(self) -> Result<UiHandle, UiError> {
        self.check()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("flyte-ui")
            .enable_all()
            .build()
            .map_err(UiError::Runtime)?;
        let addr = SocketAddr::new(self.bind, self.port);
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(addr))
            .map_err(|source| UiError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| UiError::Bind { addr, source })?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (app, state) = api::app(self, addr);
        let thread = std::thread::Builder::new()
            .name("flyte-ui".into())
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::spawn(api::keep_warm(state));
                    let served = axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = stopped.await;
                        })
                        .await;
                    if let Err(e) = served {
                        tracing::warn!("the UI stopped serving: {e}");
                    }
                });
                // Streams of live runs hold the runtime's threads; let go.
                runtime.shutdown_timeout(std::time::Duration::from_millis(100));
            })
            .map_err(UiError::Runtime)?;
        Ok(UiHandle {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// A UI being served; stops when dropped.
#[derive(Debug)]
pub struct UiHandle {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl UiHandle {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its address as a URL, `http://127.0.0.1:8233`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving and waits for the server's thread.
    pub fn stop(mut self) {
        self.shut();
    }

    /// Blocks until the server stops (it stops when its process is told to).
    pub fn wait(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Serves until the process gets Ctrl-C (SIGINT) or SIGTERM, then
    /// stops.
    pub fn serve_until_interrupted(mut self) {
        if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            runtime.block_on(interrupted());
        } else if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.shut();
    }

    fn shut(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for UiHandle {
    fn drop(&mut self) {
        self.shut();
    }
}

/// Ctrl-C, or SIGTERM where there is one.
async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
