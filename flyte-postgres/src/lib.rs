//! The fleet store of flyte: runs, actions, fan-outs, the task cache and
//! the work queue of many worker processes, in PostgreSQL.
//!
//! [`PgStore`] implements the store interface
//! ([`RunStore`](flyte_core::backend::RunStore)), so the command line and the
//! report read it as they read the embedded store, and the work queue
//! ([`WorkQueue`](flyte_core::queue::WorkQueue)): the action rows are the
//! queue. Users reach it through the `flyte` facade
//! (`Runner::new().postgres(url)`, `flyte::fleet::Worker`).
//!
//! # How it talks to PostgreSQL
//!
//! The store runs its own small tokio runtime (one thread) that owns every
//! connection: the store's blocking methods hand their query to it and
//! wait, from any thread or runtime; what a run reports is queued and
//! written there in batches (`writer.rs`); one connection listens for
//! `NOTIFY` wake-ups (`listen.rs`), with polling behind it. Connections
//! come from a `deadpool-postgres` pool: a dropped one is replaced on the
//! next use, and a batch that failed is tried again.

mod bridge;
mod listen;
mod process;
mod rows;
mod run_store;
mod schema;
mod submit;
mod tls;
mod work;
mod writer;

use bridge::Bridge;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use flyte_core::redact::Redacted;
use flyte_core::store::StoreError;
use listen::Hints;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The environment variable naming the fleet's database, a libpq URL such
/// as `postgres://user:password@host/db`.
pub const URL_VAR: &str = "FLYTE_POSTGRES_URL";

/// Session settings of flyte's own connections. JIT off: flyte's
/// statements touch a few hundred rows at most and never gain from
/// compiling a plan, which took 25-70 ms per statement whenever the
/// planner misjudged a table's size.
const SESSION: &str = "SET jit = off";

/// How long connecting may take before the server counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a write that must not be lost (submissions, records) is tried
/// again while the database is away (a restart, a failover).
pub(crate) const GIVE_UP_AFTER: Duration = Duration::from_secs(120);

/// A flyte store in a PostgreSQL database, shared by every driver and
/// worker that opens the same database.
///
/// # Examples
///
/// ```no_run
/// use flyte_postgres::PgStore;
///
/// let store = PgStore::open("postgres://flyte:flyte@localhost/flyte")?;
/// println!("{}", flyte_core::backend::RunStore::location(&store));
/// # Ok::<(), flyte_core::store::StoreError>(())
/// ```
#[derive(Clone)]
pub struct PgStore {
    shared: Arc<Shared>,
}

/// What every part of the store shares.
pub(crate) struct Shared {
    /// The URL without its password, for people.
    pub(crate) location: String,
    pub(crate) pool: Pool,
    pub(crate) bridge: Bridge,
    pub(crate) hints: Arc<Hints>,
    pub(crate) writer: writer::WriterHandle,
    pub(crate) submitter: submit::Submitter,
    pub(crate) process: process::Process,
    /// By worker, the token of its claim whose answer was lost (see
    /// `work::claim_again`).
    pub(crate) lost_claims: std::sync::Mutex<HashMap<i64, i64>>,
    /// The tasks (`name@version`) of the workers registered here, by key:
    /// a claim need not read them back.
    pub(crate) worker_tasks: std::sync::Mutex<HashMap<i64, Arc<Vec<String>>>>,
    /// The id and name of runs whose actions were claimed here, by key.
    pub(crate) run_names: std::sync::Mutex<HashMap<i64, RunName>>,
    /// Actions this process submitted (see `submit::analyze_on_growth`).
    pub(crate) submitted: std::sync::atomic::AtomicU64,
}

/// A run's id and name.
pub(crate) type RunName = (String, Option<String>);

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("location", &self.shared.location)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to the database at `url` (a libpq URL or key=value string),
    /// creating or migrating flyte's tables there.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unreachable`] when no server answers there, with what
    /// to do; [`StoreError::NewerSchema`] when a newer flyte made the tables;
    /// [`StoreError::Backend`] when the server refuses (a wrong password, a
    /// missing database).
    pub fn open(url: &str) -> Result<PgStore, StoreError> {
        let refused = |why: String| {
            StoreError::backend(
                "postgres",
                std::io::Error::other(format!("{}: {why}", Redacted(url))),
            )
        };
        let (driver_url, tls) = tls::split(url).map_err(refused)?;
        let mut config: tokio_postgres::Config = driver_url.parse().map_err(|e: tokio_postgres::Error| {
            StoreError::backend(
                "postgres",
                std::io::Error::other(format!(
                    "{:?} is not a PostgreSQL URL ({}): write postgres://user:password@host/database",
                    Redacted(url),
                    flyte_core::redact::url(&e.to_string()),
                )),
            )
        })?;
        config.connect_timeout(CONNECT_TIMEOUT);
        if config.get_application_name().is_none() {
            config.application_name("flyte");
        }
        tls.apply(&mut config);
        let connector = tls.connector().map_err(refused)?;
        let location = describe(&config);
        let bridge = Bridge::start()?;
        let manager = Manager::from_config(
            config.clone(),
            connector.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .post_create(deadpool_postgres::Hook::async_fn(|client, _| {
                Box::pin(async move {
                    client
                        .batch_execute(SESSION)
                        .await
                        .map_err(deadpool_postgres::HookError::Backend)
                })
            }))
            .max_size(8)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .create_timeout(Some(CONNECT_TIMEOUT))
            .wait_timeout(Some(Duration::from_secs(30)))
            .build()
            .map_err(|e| StoreError::backend("postgres", e))?;
        {
            let pool = pool.clone();
            let location = location.clone();
            bridge.block(async move { schema::migrate(&pool, &location).await })??;
        }
        let hints = Arc::new(Hints::default());
        bridge.spawn(listen::run(config, connector, Arc::clone(&hints)));
        let writer = writer::WriterHandle::start(&bridge, pool.clone(), location.clone());
        let shared = Arc::new_cyclic(|weak| Shared {
            location,
            submitter: submit::Submitter::new(weak.clone()),
            process: process::Process::new(weak.clone()),
            lost_claims: std::sync::Mutex::default(),
            worker_tasks: std::sync::Mutex::default(),
            run_names: std::sync::Mutex::default(),
            submitted: std::sync::atomic::AtomicU64::new(0),
            pool,
            bridge,
            hints,
            writer,
        });
        Ok(PgStore { shared })
    }

    /// [`PgStore::open`] on the URL in `FLYTE_POSTGRES_URL`.
    ///
    /// # Errors
    ///
    /// As [`PgStore::open`]; [`StoreError::Backend`] when the variable is
    /// not set.
    pub fn open_from_env() -> Result<PgStore, StoreError> {
        match std::env::var(URL_VAR) {
            Ok(url) if !url.is_empty() => PgStore::open(&url),
            _ => Err(StoreError::backend(
                "postgres",
                std::io::Error::other(format!(
                    "{URL_VAR} is not set: set it to the fleet's database, e.g. \
                     postgres://user:password@localhost/flyte"
                )),
            )),
        }
    }
}

/// `attempt()` until it succeeds, fails for good (a statement the server
/// refuses fails the same way again), or the database at `location` has
/// been away for [`GIVE_UP_AFTER`]; `what` names it in the warnings.
pub(crate) async fn retry_while_away<F, Fut>(
    location: &str,
    what: &str,
    mut attempt: F,
) -> Result<(), StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), PgFailure>>,
{
    let start = Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        let failure = match attempt().await {
            Ok(()) => return Ok(()),
            Err(failure) => failure,
        };
        let transient = failure.is_transient();
        let e = pg_error(location, failure);
        if !transient || start.elapsed() > GIVE_UP_AFTER {
            return Err(e);
        }
        tracing::warn!("flyte: cannot write {what} yet ({e}); trying again");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

impl Shared {
    /// A failure of this store, named with its location.
    pub(crate) fn error(&self, e: PgFailure) -> StoreError {
        pg_error(&self.location, e)
    }
}

/// `url` for people: user, host, port and database, never the password.
fn describe(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        #[cfg(unix)]
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("");
    let db = config.get_dbname().unwrap_or(user);
    let at = if user.is_empty() {
        String::new()
    } else {
        format!("{user}@")
    };
    format!("postgres://{at}{host}:{port}/{db}")
}

/// A PostgreSQL error as a store error, naming the store and what to do.
pub(crate) fn pg_error(location: &str, e: impl Into<PgFailure>) -> StoreError {
    let failure = e.into();
    if let Some(why) = failure.tls_failure(location) {
        return StoreError::backend("postgres", std::io::Error::other(why));
    }
    match failure {
        PgFailure::Pool(deadpool_postgres::PoolError::Backend(e)) | PgFailure::Query(e)
            if !is_unreachable(&e) =>
        {
            // The server's own words ("database \"x\" does not exist"), not
            // just "db error".
            match e.as_db_error() {
                Some(db) => StoreError::backend(
                    "postgres",
                    std::io::Error::other(format!("{db} (at {location})")),
                ),
                None => StoreError::backend("postgres", e),
            }
        }
        PgFailure::Pool(deadpool_postgres::PoolError::Backend(e)) | PgFailure::Query(e) => {
            StoreError::Unreachable {
                location: location.to_owned(),
                reason: e.to_string(),
            }
        }
        PgFailure::Store(e) => e,
        PgFailure::Pool(e) => StoreError::Unreachable {
            location: location.to_owned(),
            reason: e.to_string(),
        },
    }
}

/// What a query can fail with: the pool (no connection) or the query.
pub(crate) enum PgFailure {
    Pool(deadpool_postgres::PoolError),
    Query(tokio_postgres::Error),
    /// Already a store error (from a step of the store's own).
    Store(StoreError),
}

impl From<deadpool_postgres::PoolError> for PgFailure {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        PgFailure::Pool(e)
    }
}

impl PgFailure {
    /// What went wrong with TLS, for people (at `location`), when that is
    /// why it failed.
    fn tls_failure(&self, location: &str) -> Option<String> {
        match self {
            PgFailure::Pool(deadpool_postgres::PoolError::Backend(e)) | PgFailure::Query(e) => {
                tls::explain(e, location)
            }
            _ => None,
        }
    }

    /// Whether trying again may succeed: the server was away or busy, or
    /// the transaction lost a race. A statement it refused is not, nor a
    /// certificate it showed.
    pub(crate) fn is_transient(&self) -> bool {
        if self.tls_failure("").is_some() {
            return false;
        }
        let e = match self {
            PgFailure::Pool(deadpool_postgres::PoolError::Backend(e)) | PgFailure::Query(e) => e,
            PgFailure::Pool(_) => return true,
            PgFailure::Store(e) => return matches!(e, StoreError::Unreachable { .. }),
        };
        match e.as_db_error() {
            None => true,
            // 08 connection, 40 serialization or deadlock, 53 resources,
            // 57 the server shutting down or starting.
            Some(db) => ["08", "40", "53", "57"]
                .iter()
                .any(|class| db.code().code().starts_with(class)),
        }
    }
}

impl From<StoreError> for PgFailure {
    fn from(e: StoreError) -> Self {
        PgFailure::Store(e)
    }
}

impl From<tokio_postgres::Error> for PgFailure {
    fn from(e: tokio_postgres::Error) -> Self {
        PgFailure::Query(e)
    }
}

/// Whether `e` means the server could not be reached (or went away), as
/// opposed to a query it refused.
fn is_unreachable(e: &tokio_postgres::Error) -> bool {
    e.is_closed()
        || e.as_db_error().is_none()
            && std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_never_shows_the_password() {
        let config: tokio_postgres::Config = "postgres://flyte:secret@db.example:5433/fleet"
            .parse()
            .unwrap();
        let shown = describe(&config);
        assert_eq!(shown, "postgres://flyte@db.example:5433/fleet");
        assert!(!shown.contains("secret"));
    }

    #[test]
    fn a_url_that_does_not_parse_is_shown_without_its_password() {
        for url in [
            "postgress://u:PLANTED-s3cret@localhost/db",
            "postgres://u:PLANTED-s3cret@localhost:notaport/db",
            "postgres://u:PLANTED-s3cret@localhost/db?sslmode=sometimes",
            "host=localhost port=x password=PLANTED-s3cret",
            "host=localhost password='PLANTED s3cret' port=x",
        ] {
            let e = PgStore::open(url).unwrap_err();
            for shown in [e.to_string(), format!("{e:?}")] {
                assert!(!shown.contains("s3cret"), "{url:?} shown as {shown}");
            }
        }
    }

    #[test]
    fn a_bad_url_says_what_to_write() {
        let e = PgStore::open("mysql://nope").unwrap_err().to_string();
        assert!(e.contains("postgres://user:password@host/database"), "{e}");
    }
}
