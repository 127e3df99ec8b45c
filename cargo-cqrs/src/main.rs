//! `cargo cqrs`: the project's command-line entry point.
//!
//! The subcommands (`new`, `add`, `schema export|check`) are not built yet; until they are, the
//! binary says so instead of pretending to work.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "cargo-cqrs {}: the `new`, `add` and `schema` subcommands are not available in this version yet",
        env!("CARGO_PKG_VERSION")
    );
    ExitCode::from(2)
}
