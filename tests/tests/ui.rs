//! Compile tests. Compile-fail: one mistake per file under `tests/ui/<category>/`, each with the
//! exact compiler output it must produce; refresh with `TRYBUILD=overwrite` and read every diff.
//! Pass: one domain shape per file under `tests/pass/`, which must compile as a user writes it.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*/*.rs");
    t.pass("tests/pass/*.rs");
}
