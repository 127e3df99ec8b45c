//! `cargo cqrs schema export|check`: the schemas of a crate's commands and events, written to
//! files, and checked against the files committed in the repository.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::error::Error;
use crate::output::Console;

mod check;
mod diff;
mod export;
pub(crate) mod host;
pub(crate) mod model;

pub use check::{Finding, Level};

/// Which package, and how cargo may read it: the flags of every subcommand that works on a
/// package, passed on to the cargo that `cargo cqrs` runs.
#[derive(Debug, Default, Args)]
pub struct Package {
    /// The workspace member (default: the package in the current directory).
    #[arg(
        short = 'p',
        long = "package",
        value_name = "NAME",
        help_heading = "Package Selection"
    )]
    pub package: Option<String>,
    /// The `Cargo.toml` of the package or workspace (default: found from the current directory).
    #[arg(long, value_name = "PATH", help_heading = "Manifest Options")]
    pub manifest_path: Option<PathBuf>,
    /// Fail if `Cargo.lock` would change, as `cargo build --locked`.
    #[arg(long, help_heading = "Manifest Options")]
    pub locked: bool,
    /// Do not use the network, as `cargo build --offline`.
    #[arg(long, help_heading = "Manifest Options")]
    pub offline: bool,
    /// `--locked` and `--offline` together, as `cargo build --frozen`.
    #[arg(long, help_heading = "Manifest Options")]
    pub frozen: bool,
}

impl Package {
    /// Whether `Cargo.lock` must stay as it is.
    pub fn locked(&self) -> bool {
        self.locked || self.frozen
    }

    /// Whether cargo must not use the network.
    pub fn offline(&self) -> bool {
        self.offline || self.frozen
    }

    /// The flags for the cargo that `cargo cqrs` runs.
    pub fn cargo_flags(&self) -> Vec<&'static str> {
        let mut flags = Vec::new();
        if self.frozen {
            flags.push("--frozen");
        } else {
            if self.locked {
                flags.push("--locked");
            }
            if self.offline {
                flags.push("--offline");
            }
        }
        flags
    }
}

/// The package's features the schema reader links it with, as cargo takes them: features
/// that add aggregates or events must be on to be exported and checked.
#[derive(Debug, Default, Args)]
pub struct Features {
    /// Features of the package to turn on (space- or comma-separated; the flag may repeat).
    #[arg(
        short = 'F',
        long,
        value_name = "FEATURES",
        help_heading = "Feature Selection"
    )]
    pub features: Vec<String>,
    /// Turn on every feature of the package.
    #[arg(long, help_heading = "Feature Selection")]
    pub all_features: bool,
    /// Turn off the package's default features.
    #[arg(long, help_heading = "Feature Selection")]
    pub no_default_features: bool,
}

impl Features {
    /// The features named, split at spaces and commas.
    pub fn named(&self) -> Vec<String> {
        self.features
            .iter()
            .flat_map(|f| f.split([' ', ',']))
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// The schema subcommands.
#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Write one JSON Schema per command and per stored event version, an index and an
    /// AsyncAPI 3.0 document (one channel per aggregate, keyed by aggregate id).
    ///
    /// The output is byte-identical when nothing changed. Commit it: `schema check` compares
    /// the code with it.
    #[command(after_help = crate::EXIT_STATUS)]
    Export(ExportArgs),
    /// Compare the crate's events and commands with the committed export: a changed stored
    /// version, a removed event type or version, a missing upcast path or a breaking command
    /// change is an error (exit status 1).
    #[command(after_help = crate::EXIT_STATUS)]
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
    #[command(flatten)]
    pub features: Features,
}

/// `cargo cqrs schema check`
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The folder of the committed export, inside the package.
    #[arg(long, value_name = "DIR", default_value = "schemas")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub package: Package,
    #[command(flatten)]
    pub features: Features,
}

/// Runs a schema subcommand.
pub fn exec(command: SchemaCommand, console: &mut Console<'_>) -> Result<ExitCode, Error> {
    match command {
        SchemaCommand::Export(args) => export(args, console),
        SchemaCommand::Check(args) => check(args, console),
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

fn export(args: ExportArgs, console: &mut Console<'_>) -> Result<ExitCode, Error> {
    inside_package(&args.out, "--out")?;
    let krate = host::locate(&args.package)?;
    let program = host::read(&krate, &args.features, console.output().color)?;
    let aggregates = &program.aggregates;
    let dir = krate.dir.join(&args.out);
    let written = export::write(&dir, &krate.package, &program)?;
    for file in &written.changed {
        console.line(format_args!("wrote: {}", args.out.join(file).display()))?;
    }
    for file in &written.removed {
        console.line(format_args!("removed: {}", args.out.join(file).display()))?;
    }
    let events: usize = aggregates.iter().map(|a| a.events.len()).sum();
    let commands: usize = aggregates.iter().map(|a| a.commands.len()).sum();
    console.line(format_args!(
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
    ))?;
    let path = |file: &PathBuf| args.out.join(file);
    console.document(&serde_json::json!({
        "package": krate.package,
        "out": args.out,
        "aggregates": aggregates.len(),
        "event_types": events,
        "commands": commands,
        "process_managers": program.process_managers.len(),
        "changed": written.changed.iter().map(path).collect::<Vec<_>>(),
        "removed": written.removed.iter().map(path).collect::<Vec<_>>(),
        "unchanged": written.unchanged,
    }))?;
    Ok(ExitCode::SUCCESS)
}

fn check(args: CheckArgs, console: &mut Console<'_>) -> Result<ExitCode, Error> {
    inside_package(&args.dir, "--dir")?;
    let krate = host::locate(&args.package)?;
    let dir = krate.dir.join(&args.dir);
    let committed = check::read_export(&dir)?;
    let current = host::read(&krate, &args.features, console.output().color)?.aggregates;
    let findings = check::check(&committed, &current);
    let errors = findings.iter().filter(|f| f.level == Level::Error).count();
    let index = check::Index::read(&dir, &args.dir);
    for finding in &findings {
        console.diagnostic(&index.locate(finding))?;
    }
    console.line(format_args!(
        "schema check of `{}` against {}: {errors} error(s), {} note(s)",
        krate.package,
        args.dir.display(),
        findings.len() - errors
    ))?;
    console.document(&serde_json::json!({
        "package": krate.package,
        "errors": errors,
        "findings": findings,
    }))?;
    Ok(if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
