//! The SQLite store keeps the contract every store keeps
//! (`flyte_core::contract`), also when opened a second time.

use flyte_sqlite::Store;

#[test]
fn the_sqlite_store_keeps_the_store_contract() {
    let home = tempfile_dir();
    let store = Store::open(&home).unwrap();
    flyte_core::contract::check(&store, "sqlite");
    drop(store);
    // What it wrote reads back in another opening of the same files.
    let again = Store::open(&home).unwrap();
    flyte_core::contract::check(&again, "sqlite-again");
    std::fs::remove_dir_all(&home).ok();
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("flyte-sqlite-contract-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
