//! The command line: clap's own consistency check, and every case under `tests/cmd/` (the
//! `--help` texts and error cases) as snapshots. Refresh with `TRYCMD=overwrite`.

#[test]
fn clap_definition_is_consistent() {
    use clap::CommandFactory;
    cargo_cqrs::Cargo::command().debug_assert();
}

#[test]
fn cli_cases() {
    trycmd::TestCases::new()
        .register_bin("cargo-cqrs", trycmd::cargo::cargo_bin!("cargo-cqrs"))
        .case("tests/cmd/*.toml");
}
