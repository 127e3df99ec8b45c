//! `cargo cqrs`: parse, run, exit with the command's status (1 for a failed check, 2 for an
//! error, rendered by miette or as JSON).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cargo_cqrs::Cargo::parse();
    let output = cli.output();
    let mut stdout = std::io::stdout();
    let mut console = cargo_cqrs::Console::stdout(&mut stdout, output);
    match cargo_cqrs::exec(cli, &mut console) {
        Ok(code) => code,
        Err(error) => {
            let mut stderr = std::io::stderr();
            let terminal = stderr.is_terminal();
            cargo_cqrs::output::report(&error, output, &mut stderr, terminal);
            ExitCode::from(2)
        }
    }
}
