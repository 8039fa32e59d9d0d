//! The flyte command line: see and operate runs.
//!
//! Your own binary becomes the full command line, able to run and resume
//! your tasks and to show their inputs and outputs as JSON, with one line
//! (through the facade's `cli` feature):
//!
//! ```no_run
//! // src/bin/flyte.rs of your pipeline crate; `use my_tasks as _;` links
//! // the tasks when they live in another crate.
//! fn main() -> std::process::ExitCode {
//!     flyte_cli::main()
//! }
//! ```
//!
//! `cargo flyte ...` (the `cargo-flyte` binary of this crate) runs the
//! commands that only need the store, from any directory, on any copy of a
//! store, without building your project.
//!
//! | command | does |
//! | --- | --- |
//! | `runs [--status S] [--task T] [--name N] [--since 2h] [--limit 20]` | lists runs, newest first |
//! | `show RUN [--failed] [--action ID] [--io]` | header, error, tree, failures grouped by cause |
//! | `logs RUN [ACTION] [--follow]` | what the run's tasks logged, by action |
//! | `watch RUN` | the live progress of a run of another process |
//! | `run TASK [-i JSON\|@file\|-] [-a key=text] [-a key:=json] [--name N] [--idempotency-key K]` | runs a task, prints its output |
//! | `resume RUN` / `rerun RUN` | executes a run again (replaying what succeeded) / anew |
//! | `abort RUN [--no-wait]` | cancels a run going on in another process |
//! | `cache ls\|clear [--task T] [--stale] [--older-than 7d] [--dry-run]` | the task cache |
//! | `tasks` | the tasks your binary links |
//! | `report RUN [-o FILE.html] [--open]` | one offline HTML file with a timeline |
//! | `export RUN --format chrome-trace\|jsonl\|otlp [-o FILE] [--endpoint URL]` | for Perfetto, for scripts, or to an OpenTelemetry collector |
//! | `gc [--older-than 30d] [--keep N] [--dry-run] [--vacuum]` | deletes old runs |
//! | `ui [--port 8233] [--bind 127.0.0.1] [--token T]` | the web UI and HTTP API, live, on the store |
//!
//! A RUN is a full id, a unique prefix of one (4 characters or more), a run
//! name, `last` or `last-failed`. Lists print as a table, or with
//! `-o json` / `-o jsonl` as JSON whose fields are stable (times in RFC
//! 3339 UTC, durations in milliseconds). The store is `--home`, else
//! `FLYTE_HOME`, else `./.flyte`. `NO_COLOR` turns colour off.
//!
//! Exit codes: 0 ok, 1 the run failed, 2 usage, 3 store error, 4 not found.

mod args;
mod commands;
mod error;
#[cfg(feature = "otel")]
mod otlp;
mod output;
mod refs;
#[cfg(feature = "otel")]
mod telemetry;

pub use args::{Cli, Command, Format};
pub use error::{CliError, Exit};

use clap::Parser;
use flyte_core::backend::RunStore;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// What the running binary can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A user's binary that links the tasks: every command.
    Tasks,
    /// `cargo flyte`: only what needs the store alone.
    StoreOnly,
}

/// The command line of a binary that links the tasks: parses the process's
/// arguments, runs the command, and returns its exit code.
///
/// It installs a `tracing` subscriber (unless the program has one): events
/// at `FLYTE_LOG` (default `info`) and above go to stderr, above the
/// progress display, and those inside a recorded run's tasks are kept in
/// the store for `flyte logs`.
///
/// With flyte's `otel` feature and `OTEL_EXPORTER_OTLP_ENDPOINT` set, the
/// spans of runs (a run, its fan-outs, its actions) are also sent to that
/// OpenTelemetry collector as they end, over OTLP/HTTP.
pub fn main() -> ExitCode {
    install_tracing();
    let code = main_from(std::env::args_os(), Mode::Tasks);
    #[cfg(feature = "otel")]
    telemetry::shutdown();
    code
}

/// The command line's subscriber: stderr above the progress bar, and the
/// store for `flyte logs`, both at `FLYTE_LOG` (default `info`).
fn install_tracing() {
    use tracing_subscriber::field::MakeExt;
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::prelude::*;
    let level = std::env::var("FLYTE_LOG")
        .ok()
        .and_then(|l| l.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    // Events' fields as text a terminal may be given (a task logs what
    // it likes): control characters shown as escapes.
    let fields = tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
        let text = format!("{value:?}");
        let text = output::printable(&text);
        match field.name() {
            "message" => write!(writer, "{text}"),
            name => write!(writer, "{name}={text}"),
        }
    })
    .delimited(" ");
    let stderr = tracing_subscriber::fmt::layer()
        .fmt_fields(fields)
        .with_writer(flyte_runtime::progress::stderr)
        .with_ansi(output::color_stderr())
        .with_filter(level);
    let registry = tracing_subscriber::registry()
        .with(stderr)
        .with(flyte_runtime::logs::layer().with_filter(level));
    #[cfg(feature = "otel")]
    let registry = registry.with(telemetry::layer());
    let _ = registry.try_init();
}

/// The command line of `cargo flyte`: the commands that need only the
/// store. Cargo runs `cargo-flyte flyte ARGS` for `cargo flyte ARGS`; the
/// `flyte` is dropped.
pub fn cargo_main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "flyte") {
        args.remove(1);
    }
    main_from(args, Mode::StoreOnly)
}

/// [`main`] with given arguments (the first is the program's name).
pub fn main_from(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    mode: Mode,
) -> ExitCode {
    match Cli::try_parse_from(args) {
        Ok(cli) => cli.command.run_in(mode),
        Err(e) => {
            let _ = e.print();
            // clap's own code: 0 for --help and --version, 2 for a usage error.
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
        }
    }
}

impl Command {
    /// Runs the command in a binary that links the tasks; prints its error
    /// (with the next step) on stderr and returns the exit code.
    pub fn run(self) -> ExitCode {
        self.run_in(Mode::Tasks)
    }

    /// Runs the command as `mode` allows.
    pub fn run_in(self, mode: Mode) -> ExitCode {
        let ctx = Ctx {
            home: self.home.unwrap_or_else(flyte_sqlite::default_home),
            postgres: self.postgres.filter(|url| !url.is_empty()),
            mode,
        };
        match commands::dispatch(&ctx, self.action) {
            Ok(exit) => exit.into(),
            Err(e) => {
                eprintln!("{e}");
                e.exit.into()
            }
        }
    }
}

/// What every command is given.
pub(crate) struct Ctx {
    pub(crate) home: PathBuf,
    /// A fleet's database, which replaces the store in `home`.
    pub(crate) postgres: Option<String>,
    pub(crate) mode: Mode,
}

impl Ctx {
    /// The store, for reading: opened for writing where it can be (which
    /// marks runs whose process died as killed), read-only otherwise (a
    /// store on read-only media, or written by an older flyte).
    pub(crate) fn store(&self) -> Result<Arc<dyn RunStore>, CliError> {
        if let Some(url) = &self.postgres {
            return Ok(flyte_runtime::store::open_postgres(url)?);
        }
        let db = self.home.join("flyte.db");
        match std::fs::metadata(&db) {
            Ok(meta) if meta.is_file() => {}
            // A directory that may not be read is not an empty one.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(CliError::new(
                    Exit::Store,
                    format!("cannot read the flyte store in {}: {e}", self.home.display()),
                )
                .hint("run as a user who may read that directory and flyte.db in it, or point --home / FLYTE_HOME at a copy"));
            }
            _ => {
                return Err(CliError::new(
                    Exit::Store,
                    format!("there is no flyte store in {}", self.home.display()),
                )
                .hint("run a workflow first, or point --home / FLYTE_HOME at the directory that holds flyte.db"));
            }
        }
        match flyte_sqlite::Store::open(&self.home) {
            Ok(store) => Ok(Arc::new(store)),
            Err(_) => Ok(Arc::new(flyte_sqlite::Store::open_read_only(&self.home)?)),
        }
    }

    /// A runner on this command's store.
    pub(crate) fn runner(&self) -> flyte_runtime::Runner {
        match &self.postgres {
            Some(url) => flyte_runtime::Runner::new().postgres(url),
            None => flyte_runtime::Runner::new().home(&self.home),
        }
    }

    /// The store, to write to.
    pub(crate) fn writable_store(&self) -> Result<Arc<dyn RunStore>, CliError> {
        if self.postgres.is_some() {
            return self.store();
        }
        self.store()?;
        Ok(Arc::new(flyte_sqlite::Store::open(&self.home)?))
    }

    /// Checks the binary links tasks, for a command that needs them.
    pub(crate) fn needs_tasks(&self, what: &str) -> Result<(), CliError> {
        match self.mode {
            Mode::StoreOnly => Err(CliError::usage(format!(
                "{what} needs the tasks, and `cargo flyte` does not link them"
            ))
            .hint(
                "run it with your own binary: `fn main() -> std::process::ExitCode { flyte::cli::main() }` \
                 (feature `cli` of flyte), e.g. `cargo run --bin flyte -- ...`",
            )),
            Mode::Tasks if flyte_runtime::registry().is_empty() => Err(CliError::usage(format!(
                "{what} needs the tasks, and no task is registered in this binary"
            ))
            .hint(
                "link the crate that defines them: add `use my_tasks as _;` to the binary's main.rs",
            )),
            Mode::Tasks => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Parser, Subcommand};

    /// A user's own app with the flyte commands under `flyte`.
    #[derive(Debug, Parser)]
    struct App {
        #[command(subcommand)]
        command: AppCommand,
    }

    #[derive(Debug, Subcommand)]
    enum AppCommand {
        /// The app's own command.
        Serve,
        /// The flyte commands.
        Flyte(Command),
    }

    #[test]
    fn the_commands_nest_in_another_clap_app() {
        let app = App::try_parse_from(["app", "flyte", "--home", "/tmp/x", "runs", "--limit", "3"])
            .unwrap();
        let AppCommand::Flyte(command) = app.command else {
            panic!("not the flyte command")
        };
        assert_eq!(
            command.home.as_deref(),
            Some(std::path::Path::new("/tmp/x"))
        );
        assert!(matches!(command.action, args::Action::Runs(ref runs) if runs.limit == 3));
        assert!(App::try_parse_from(["app", "serve"]).is_ok());
        let err = App::try_parse_from(["app", "flyte", "show"]).unwrap_err();
        assert_eq!(err.exit_code(), 2, "a usage error: {err}");
    }
}
