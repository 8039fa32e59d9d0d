//! `cache = "auto"` follows the code: a small crate using flyte is built in
//! a temporary directory, run, edited and built again. Reformatting and
//! comments keep its cached value; a change to the code misses; so does a
//! change to the output type that the task's own code does not show.

use std::path::Path;
use std::process::Command;
use tempfile::TempDir;

const MAIN: &str = r#"
use flyte::prelude::*;

#[task(cache = "auto")]
fn scale(x: i64) -> i64 { BODY }

mod report {
    #[derive(serde::Serialize, serde::Deserialize)]
    pub struct Report { REPORT_FIELDS }
    impl Report {
        pub fn new(x: i64) -> Self { REPORT_NEW }
        pub fn show(&self) -> String { REPORT_SHOW }
    }
}

/// Its tokens stay the same while `Report` changes.
#[task(cache = "auto")]
fn summarize(x: i64) -> report::Report { report::Report::new(x) }

fn main() {
    let outcome = flyte::Runner::new().run(scale(21));
    println!("{} {:?}", outcome.output().expect("the task succeeds"), outcome.actions().origin);
    let outcome = flyte::Runner::new().run(summarize(5));
    println!("{} {:?}", outcome.output().expect("the task succeeds").show(), outcome.actions().origin);
}
"#;

const REPORT_V1: [&str; 3] = [
    "pub total: i64",
    "Report { total: x }",
    "format!(\"{}\", self.total)",
];
const REPORT_V2: [&str; 3] = [
    "pub total: i64, pub label: String",
    "Report { total: x, label: \"five\".into() }",
    "format!(\"{} {}\", self.total, self.label)",
];

/// Writes `body` and `report` into the crate, builds and runs it; returns
/// the two lines it printed.
fn build_and_run(krate: &Path, home: &Path, body: &str, report: [&str; 3]) -> (String, String) {
    let main = MAIN
        .replace("BODY", body)
        .replace("REPORT_FIELDS", report[0])
        .replace("REPORT_NEW", report[1])
        .replace("REPORT_SHOW", report[2]);
    std::fs::write(krate.join("src/main.rs"), main).unwrap();
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
    let stdout = String::from_utf8(output.stdout).unwrap();
    let mut lines = stdout.lines().map(str::to_owned);
    (lines.next().unwrap(), lines.next().unwrap())
}

#[test]
fn a_code_change_misses_and_formatting_does_not() {
    let krate = TempDir::new().unwrap();
    let home = TempDir::new().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = format!(
        "[package]\nname = \"code-change\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
         publish = false\n\n[dependencies]\nflyte = {{ path = {:?} }}\n\
         serde = {{ version = \"1\", features = [\"derive\"] }}\n\n[workspace]\n",
        root
    );
    std::fs::create_dir_all(krate.path().join("src")).unwrap();
    std::fs::write(krate.path().join("Cargo.toml"), manifest).unwrap();
    // The same dependency versions as the workspace, without the network.
    std::fs::copy(root.join("Cargo.lock"), krate.path().join("Cargo.lock")).unwrap();

    let (k, h) = (krate.path(), home.path());
    let run = |body: &str, report: [&str; 3]| build_and_run(k, h, body, report);
    assert_eq!(
        run("x * 2", REPORT_V1),
        ("42 Executed".into(), "5 Executed".into())
    );
    assert_eq!(
        run("x * 2", REPORT_V1),
        ("42 Cached".into(), "5 Cached".into())
    );
    assert_eq!(
        run("\n    // doubled\n    x  *  2\n", REPORT_V1).0,
        "42 Cached",
        "formatting and comments keep the version"
    );
    assert_eq!(run("x * 3", REPORT_V1).0, "63 Executed", "new code misses");
    assert_eq!(
        run("x * 2", REPORT_V1).0,
        "42 Cached",
        "the old code's value is still there"
    );
    // `summarize` has the same tokens, but its stored output no longer
    // decodes as the new `Report`: a miss, never a wrong value.
    assert_eq!(
        run("x * 2", REPORT_V2).1,
        "5 five Executed",
        "a changed type misses"
    );
    assert_eq!(run("x * 2", REPORT_V2).1, "5 five Cached");
}
