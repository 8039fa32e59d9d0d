//! `cargo flyte ...`: the flyte commands that need only the store (list,
//! show, report, export, abort, cache, gc), without building your project.
//! Install it with `cargo install --path flyte-cli`.

fn main() -> std::process::ExitCode {
    flyte_cli::cargo_main()
}
