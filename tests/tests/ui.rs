//! Compile-fail tests: one mistake per file under `tests/ui/<category>/`, each with the exact
//! compiler output it must produce. Refresh with `TRYBUILD=overwrite` and read every diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*/*.rs");
}
