//! `cargo cqrs`: parse, run, exit with the command's status (1 for a failed check, 2 for an
//! error).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cargo_cqrs::Cargo::parse();
    match cargo_cqrs::exec(cli, &mut std::io::stdout()) {
        Ok(code) => code,
        Err(error) => {
            cargo_cqrs::report(&error, &mut std::io::stderr());
            ExitCode::from(2)
        }
    }
}
