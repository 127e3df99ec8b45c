//! `cargo cqrs schema export|check`: the schemas of a crate's commands and events, written to
//! files, and checked against the files committed in the repository.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::error::Error;

mod check;
mod diff;
mod export;
pub(crate) mod host;
pub(crate) mod model;

pub use check::{Finding, Level};

/// Which crate, for every `schema` subcommand.
#[derive(Debug, Args)]
pub struct Package {
    /// The workspace member to read (default: the package in the current directory).
    #[arg(short = 'p', long = "package", value_name = "NAME")]
    pub package: Option<String>,
    /// The `Cargo.toml` of the package or workspace (default: found from the current directory).
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
}

/// The schema subcommands.
#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Write one JSON Schema per command and per stored event version, an index and an
    /// AsyncAPI 3.0 document (one channel per aggregate, keyed by aggregate id).
    ///
    /// The output is byte-identical when nothing changed. Commit it: `schema check` compares
    /// the code with it.
    Export(ExportArgs),
    /// Compare the crate's events and commands with the committed export: a changed stored
    /// version, a removed event type or version, a missing upcast path or a breaking command
    /// change is an error (exit status 1).
    Check(CheckArgs),
}

/// `cargo cqrs schema export`
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The folder to write, inside the package (created if missing).
    #[arg(long, value_name = "DIR", default_value = "schemas")]
    pub out: PathBuf,
    #[command(flatten)]
    pub package: Package,
}

/// `cargo cqrs schema check`
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The folder of the committed export, inside the package.
    #[arg(long, value_name = "DIR", default_value = "schemas")]
    pub dir: PathBuf,
    /// Print the findings as JSON, for tools.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub package: Package,
}

/// Runs a schema subcommand.
pub fn exec(command: SchemaCommand, out: &mut dyn Write) -> Result<ExitCode, Error> {
    match command {
        SchemaCommand::Export(args) => export(args, out),
        SchemaCommand::Check(args) => check(args, out),
    }
}

/// The export folder must stay inside the package, so that it is committed with the code it
/// describes: a relative path without `..` climbing out of it.
fn inside_package(path: &std::path::Path, flag: &str) -> Result<(), Error> {
    use std::path::Component;
    let mut depth = 0i32;
    for component in path.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => depth -= 1,
            Component::RootDir | Component::Prefix(_) => depth = -1,
        }
        if depth < 0 {
            return Err(Error::PathEscapes {
                flag: flag.to_owned(),
                path: path.to_path_buf(),
            });
        }
    }
    Ok(())
}

fn export(args: ExportArgs, out: &mut dyn Write) -> Result<ExitCode, Error> {
    inside_package(&args.out, "--out")?;
    let krate = host::locate(
        args.package.manifest_path.as_deref(),
        args.package.package.as_deref(),
    )?;
    let program = host::read(&krate)?;
    let aggregates = &program.aggregates;
    let dir = krate.dir.join(&args.out);
    let written = export::write(&dir, &krate.package, &program)?;
    let say = |out: &mut dyn Write, line: String| writeln!(out, "{line}").map_err(Error::Output);
    for file in &written.changed {
        say(out, format!("wrote: {}", args.out.join(file).display()))?;
    }
    for file in &written.removed {
        say(out, format!("removed: {}", args.out.join(file).display()))?;
    }
    let events: usize = aggregates.iter().map(|a| a.events.len()).sum();
    let commands: usize = aggregates.iter().map(|a| a.commands.len()).sum();
    say(
        out,
        format!(
            "exported {} aggregate(s), {events} event type(s), {commands} command(s){} of `{}` to {} ({} file(s) changed, {} unchanged)",
            aggregates.len(),
            match program.process_managers.len() {
                0 => String::new(),
                n => format!(", {n} process manager(s)"),
            },
            krate.package,
            args.out.display(),
            written.changed.len(),
            written.unchanged
        ),
    )?;
    Ok(ExitCode::SUCCESS)
}

fn check(args: CheckArgs, out: &mut dyn Write) -> Result<ExitCode, Error> {
    inside_package(&args.dir, "--dir")?;
    let krate = host::locate(
        args.package.manifest_path.as_deref(),
        args.package.package.as_deref(),
    )?;
    let committed = check::read_export(&krate.dir.join(&args.dir))?;
    let current = host::read(&krate)?.aggregates;
    let findings = check::check(&committed, &current);
    let errors = findings.iter().filter(|f| f.level == Level::Error).count();
    if args.json {
        let report = serde_json::json!({
            "package": krate.package,
            "errors": errors,
            "findings": findings,
        });
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        )
        .map_err(Error::Output)?;
    } else {
        for f in &findings {
            let level = match f.level {
                Level::Error => "error",
                Level::Note => "note",
            };
            writeln!(
                out,
                "{level}: {} of `{}`: {}\n  help: {}",
                f.item, f.aggregate, f.change, f.fix
            )
            .map_err(Error::Output)?;
        }
        let notes = findings.len() - errors;
        writeln!(
            out,
            "schema check of `{}` against {}: {errors} error(s), {notes} note(s)",
            krate.package,
            args.dir.display()
        )
        .map_err(Error::Output)?;
    }
    Ok(if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
