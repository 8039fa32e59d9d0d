//! `cache = "auto"` follows the code: a small crate using flyte is built in
//! a temporary directory, run, edited and built again. Reformatting and
//! comments keep its cached value; a change to the code misses.

use std::path::Path;
use std::process::Command;
use tempfile::TempDir;

const MAIN: &str = r#"
use flyte::prelude::*;

#[task(cache = "auto")]
fn scale(x: i64) -> i64 { BODY }

fn main() {
    let outcome = flyte::Runner::new().run(scale(21));
    println!("{} {:?}", outcome.output().expect("the task succeeds"), outcome.actions().origin);
}
"#;

/// Writes `body` into the crate, builds and runs it; returns what it printed.
fn build_and_run(krate: &Path, home: &Path, body: &str) -> String {
    std::fs::write(krate.join("src/main.rs"), MAIN.replace("BODY", body)).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--offline"])
        .current_dir(krate)
        // Its own target directory: the one `cargo test` holds is locked.
        .env("CARGO_TARGET_DIR", root.join("target/code-change-test"))
        .env("FLYTE_HOME", home)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the test crate failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[test]
fn a_code_change_misses_and_formatting_does_not() {
    let krate = TempDir::new().unwrap();
    let home = TempDir::new().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = format!(
        "[package]\nname = \"code-change\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
         publish = false\n\n[dependencies]\nflyte = {{ path = {:?} }}\n\n[workspace]\n",
        root
    );
    std::fs::create_dir_all(krate.path().join("src")).unwrap();
    std::fs::write(krate.path().join("Cargo.toml"), manifest).unwrap();
    // The same dependency versions as the workspace, without the network.
    std::fs::copy(root.join("Cargo.lock"), krate.path().join("Cargo.lock")).unwrap();

    let (k, h) = (krate.path(), home.path());
    assert_eq!(build_and_run(k, h, "x * 2"), "42 Executed");
    assert_eq!(build_and_run(k, h, "x * 2"), "42 Cached");
    assert_eq!(
        build_and_run(k, h, "\n    // doubled\n    x  *  2\n"),
        "42 Cached",
        "formatting and comments keep the version"
    );
    assert_eq!(
        build_and_run(k, h, "x * 3"),
        "63 Executed",
        "new code misses"
    );
    assert_eq!(
        build_and_run(k, h, "x * 2"),
        "42 Cached",
        "the old code's value is still there"
    );
}
