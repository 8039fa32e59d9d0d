//! The command line's shape (clap derive). Every command's help says what
//! it prints; data goes to stdout, everything for people to stderr.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// See and operate flyte runs.
///
/// Runs are read from the store in FLYTE_HOME (default ./.flyte). A RUN is a
/// full run id, a unique prefix of one (4 characters or more), a run name,
/// `last`, or `last-failed`.
///
/// Exit codes: 0 ok, 1 the run failed, 2 usage, 3 store error, 4 not found.
#[derive(Debug, Parser)]
#[command(
    name = "flyte",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// The command and the options all commands share.
    #[command(flatten)]
    pub command: Command,
}

/// The flyte commands with their shared options: nest it in your own clap
/// app (`#[command(subcommand)] Flyte(flyte::cli::Command)`) and call
/// [`Command::run`](crate::Command::run).
#[derive(Args)]
pub struct Command {
    /// The store's directory [default: ./.flyte]
    #[arg(long, env = "FLYTE_HOME", global = true, value_name = "DIR")]
    pub(crate) home: Option<PathBuf>,
    /// A fleet's PostgreSQL database instead (`postgres://user:password@host/db`):
    /// its runs are read there, and runs started here queue their calls for
    /// its workers (needs the `postgres` feature)
    // The variable's value is not shown by `--help`: it holds a password.
    #[arg(
        long,
        env = "FLYTE_POSTGRES_URL",
        hide_env_values = true,
        global = true,
        value_name = "URL"
    )]
    pub(crate) postgres: Option<String>,
    #[command(subcommand)]
    pub(crate) action: Action,
}

/// Shown without the database's password.
impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Command")
            .field("home", &self.home)
            .field(
                "postgres",
                &self.postgres.as_deref().map(flyte_core::redact::Redacted),
            )
            .field("action", &self.action)
            .finish()
    }
}

/// How lists and records are printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// Aligned columns, for people.
    #[default]
    Table,
    /// One JSON document.
    Json,
    /// One JSON object per line.
    Jsonl,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Action {
    /// List runs, newest first.
    Runs(RunsArgs),
    /// Show a run: its header, error, tree (a map is one line with its
    /// counts) and failures grouped by cause.
    Show(ShowArgs),
    /// Print what a run's tasks logged (`tracing` events), by action.
    Logs(LogsArgs),
    /// Follow a run going on in another process: its live progress, until it ends.
    Watch(RunRefArgs),
    /// Run a task by name, with JSON input; prints its output as JSON.
    Run(RunArgs),
    /// Execute a recorded run again: what succeeded is replayed, the rest runs.
    Resume(RunRefArgs),
    /// Start a new run with the same task and inputs as a recorded one.
    Rerun(RunRefArgs),
    /// Ask the process running a run to cancel it (it sees the request within 100 ms).
    Abort(AbortArgs),
    /// List or clear the task cache.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// List the tasks this program can run.
    Tasks(FormatArgs),
    /// Write a run's report: one HTML file with a timeline, that works offline.
    Report(ReportArgs),
    /// Export a run's actions: Trace Event JSON (Perfetto, chrome://tracing) or JSON lines.
    Export(ExportArgs),
    /// Delete old ended runs from the store.
    Gc(GcArgs),
    /// Serve the web UI and the HTTP API on the store: runs live in a
    /// browser, started, aborted and resumed from it or with curl.
    Ui(UiArgs),
    /// Serve as a worker of the fleet (`--postgres` / FLYTE_POSTGRES_URL):
    /// claim queued actions of this program's tasks and run them, until
    /// Ctrl-C or SIGTERM.
    Worker(WorkerArgs),
}

#[derive(Debug, Args)]
pub(crate) struct WorkerArgs {
    /// How many actions to run at once.
    #[arg(long, short = 'c', default_value_t = 16)]
    pub(crate) concurrency: usize,
}

#[derive(Debug, Args)]
pub(crate) struct FormatArgs {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub(crate) format: Format,
}

#[derive(Debug, Args)]
pub(crate) struct RunsArgs {
    /// Only runs with this status (running, succeeded, failed, cancelled, killed).
    #[arg(long)]
    pub(crate) status: Option<String>,
    /// Only runs of this root task (`env.fn`).
    #[arg(long)]
    pub(crate) task: Option<String>,
    /// Only the run with this name.
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Only runs started since: a duration back (`2h`, `3d`) or a time (`2026-12-01T09:00:00Z`).
    #[arg(long)]
    pub(crate) since: Option<String>,
    /// How many runs at most.
    #[arg(long, default_value_t = 20)]
    pub(crate) limit: usize,
    #[command(flatten)]
    pub(crate) format: FormatArgs,
}

#[derive(Debug, Args)]
pub(crate) struct RunRefArgs {
    /// The run: an id, a unique id prefix, a name, `last` or `last-failed`.
    pub(crate) run: String,
}

#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    pub(crate) run: RunRefArgs,
    /// Only the failing actions (the leaves of the failure), with their errors.
    #[arg(long)]
    pub(crate) failed: bool,
    /// One action: its id or a unique prefix of it (4 characters or more).
    #[arg(long, value_name = "ACTION")]
    pub(crate) action: Option<String>,
    /// With the run's inputs and the output, as JSON (needs the binary that links the tasks).
    #[arg(long)]
    pub(crate) io: bool,
    #[command(flatten)]
    pub(crate) format: FormatArgs,
}

#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    #[command(flatten)]
    pub(crate) run: RunRefArgs,
    /// Only this action's lines: its id or a unique prefix (4 characters or more).
    pub(crate) action: Option<String>,
    /// Keep printing new lines until the run ends.
    #[arg(long, short = 'f')]
    pub(crate) follow: bool,
    #[command(flatten)]
    pub(crate) format: FormatArgs,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The task, `env.fn` (see `tasks`).
    pub(crate) task: String,
    /// The input: a JSON object keyed by parameter name, `@file` to read it
    /// from a file, or `-` to read it from stdin.
    #[arg(long, short = 'i', value_name = "JSON|@FILE|-")]
    pub(crate) input: Option<String>,
    /// One parameter: `key=text` for a string, `key:=json` for any JSON value.
    #[arg(short = 'a', long = "arg", value_name = "KEY=VALUE")]
    pub(crate) args: Vec<String>,
    /// Names the run; a name already in the store resumes that run.
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Starts one run for this key, across processes and machines sharing
    /// the store: a second start with it finds that run and replays what
    /// succeeded (another call under a used key is refused).
    #[arg(long, value_name = "KEY")]
    pub(crate) idempotency_key: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct AbortArgs {
    #[command(flatten)]
    pub(crate) run: RunRefArgs,
    /// Return once the request is filed, without waiting for the run to stop.
    #[arg(long)]
    pub(crate) no_wait: bool,
    /// How long to wait for the run to stop.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub(crate) timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub(crate) struct UiArgs {
    /// The port to listen on (0: any free one).
    #[arg(long, default_value_t = flyte_ui::DEFAULT_PORT)]
    pub(crate) port: u16,
    /// The address to listen on; anything but loopback needs --token.
    #[arg(long, default_value = "127.0.0.1")]
    pub(crate) bind: std::net::IpAddr,
    /// A secret every request must carry (16 characters or more):
    /// `Authorization: Bearer TOKEN`, or `/?token=TOKEN` once in a browser.
    #[arg(long, env = "FLYTE_UI_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CacheCommand {
    /// List cache entries, oldest first.
    Ls(CacheArgs),
    /// Remove cache entries: all of them, or those the filters select.
    Clear(CacheClearArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CacheFilterArgs {
    /// Only this task's entries (`env.fn`).
    #[arg(long)]
    pub(crate) task: Option<String>,
    /// Only entries filed under another version than the task's current
    /// one (needs the binary that links the tasks).
    #[arg(long)]
    pub(crate) stale: bool,
    /// Only entries older than this (`7d`, `12h`).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub(crate) older_than: Option<std::time::Duration>,
}

#[derive(Debug, Args)]
pub(crate) struct CacheArgs {
    #[command(flatten)]
    pub(crate) filter: CacheFilterArgs,
    #[command(flatten)]
    pub(crate) format: FormatArgs,
}

#[derive(Debug, Args)]
pub(crate) struct CacheClearArgs {
    #[command(flatten)]
    pub(crate) filter: CacheFilterArgs,
    /// Say what would be removed, and remove nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    #[command(flatten)]
    pub(crate) run: RunRefArgs,
    /// The file to write [default: flyte-report-<run id>.html]
    #[arg(short = 'o', long = "output", value_name = "FILE.html")]
    pub(crate) output: Option<PathBuf>,
    /// Open it in the browser once written.
    #[arg(long)]
    pub(crate) open: bool,
}

/// Formats of `export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ExportFormat {
    /// Trace Event JSON: open it in https://ui.perfetto.dev or chrome://tracing.
    ChromeTrace,
    /// One JSON object per line: the run, each fan-out, each action.
    Jsonl,
    /// OpenTelemetry spans, sent to a collector over OTLP/HTTP (--endpoint;
    /// needs flyte's `otel` feature).
    Otlp,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    pub(crate) run: RunRefArgs,
    /// What to write.
    #[arg(long, value_enum)]
    pub(crate) format: ExportFormat,
    /// The file to write [default: stdout]
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// With `--format otlp`: the collector's OTLP/HTTP endpoint
    /// (`/v1/traces` is added unless given). Headers come from
    /// OTEL_EXPORTER_OTLP_HEADERS.
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_ENDPOINT",
        default_value = "http://localhost:4318",
        value_name = "URL"
    )]
    pub(crate) endpoint: String,
}

#[derive(Debug, Args)]
pub(crate) struct GcArgs {
    /// Delete ended runs that started longer ago than this.
    #[arg(long, default_value = "30d", value_parser = humantime::parse_duration)]
    pub(crate) older_than: std::time::Duration,
    /// Keep this many of the newest runs whatever their age.
    #[arg(long, default_value_t = 0)]
    pub(crate) keep: usize,
    /// Say what would be deleted, and delete nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Give the freed space back to the system (rewrites the database file).
    #[arg(long)]
    pub(crate) vacuum: bool,
}
