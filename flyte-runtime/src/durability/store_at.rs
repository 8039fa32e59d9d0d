//! Where a run's store is ([`StoreAt`]) and how it is opened: the one
//! place the runtime names its stores' crates (`flyte-sqlite` for the
//! default store, `flyte-postgres` for a fleet's).

use flyte_core::backend::RunStore;
use flyte_core::redact::Redacted;
use flyte_core::store::StoreError;
use std::path::PathBuf;
use std::sync::Arc;

/// Where a run's store is.
#[derive(Clone, Default)]
pub(crate) enum StoreAt {
    /// The SQLite store in `FLYTE_HOME` (or `./.flyte`).
    #[default]
    Default,
    /// The SQLite store in this directory.
    Home(PathBuf),
    /// A store the caller opened (`Runner::store`).
    Given(Arc<dyn RunStore>),
    /// The fleet's PostgreSQL database at this URL (`Runner::postgres`).
    Postgres(String),
}

/// Shown without the database's password.
impl std::fmt::Debug for StoreAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreAt::Default => f.write_str("Default"),
            StoreAt::Home(dir) => f.debug_tuple("Home").field(dir).finish(),
            StoreAt::Given(store) => f.debug_tuple("Given").field(store).finish(),
            StoreAt::Postgres(url) => f.debug_tuple("Postgres").field(&Redacted(url)).finish(),
        }
    }
}

impl StoreAt {
    /// Opens the store.
    pub(crate) fn open(&self) -> Result<Arc<dyn RunStore>, StoreError> {
        Ok(match self {
            StoreAt::Default => match std::env::var(POSTGRES_URL_VAR) {
                Ok(url) if !url.is_empty() => open_postgres(&url)?,
                _ => Arc::new(flyte_sqlite::Store::open_default()?),
            },
            StoreAt::Home(home) => Arc::new(flyte_sqlite::Store::open(home)?),
            StoreAt::Given(store) => Arc::clone(store),
            StoreAt::Postgres(url) => open_postgres(url)?,
        })
    }

    /// Whether the caller asked for this store (not just the default).
    pub(crate) fn is_explicit(&self) -> bool {
        !matches!(self, StoreAt::Default)
    }
}

/// The variable that sends every run with the default store to a fleet.
pub(crate) const POSTGRES_URL_VAR: &str = "FLYTE_POSTGRES_URL";

/// Opens the fleet's store in the PostgreSQL database at `url`
/// (`postgres://user:password@host/db`), creating its tables there; the
/// store the command line and tools read a fleet's runs from. The one
/// place the runtime names PostgreSQL.
///
/// # Errors
///
/// When no server answers at `url` or it refuses; without the `postgres`
/// feature, [`StoreError::Unsupported`] saying how to turn it on.
#[cfg(feature = "postgres")]
pub fn open_postgres(url: &str) -> Result<Arc<dyn RunStore>, StoreError> {
    Ok(Arc::new(flyte_postgres::PgStore::open(url)?))
}

/// Opens the fleet's store in the PostgreSQL database at `url`: this
/// build lacks the `postgres` feature, so it says how to turn it on.
///
/// # Errors
///
/// Always [`StoreError::Unsupported`].
#[cfg(not(feature = "postgres"))]
pub fn open_postgres(url: &str) -> Result<Arc<dyn RunStore>, StoreError> {
    let _ = url;
    Err(StoreError::Unsupported {
        operation: "fleet runs: this program was built without flyte's `postgres` feature \
                    (add features = [\"postgres\"] to its flyte dependency, or unset \
                    FLYTE_POSTGRES_URL)",
        store: "PostgreSQL".to_owned(),
    })
}
