//! Compile errors of `#[task]`: one case per rule, each checked against its
//! `.stderr` (regenerate with `TRYBUILD=overwrite cargo test --test ui`).

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
