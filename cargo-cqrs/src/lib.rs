//! `cargo cqrs`: the command line of cargo-cqrs. The binary is a thin `main.rs`; every
//! subcommand is a module with its `Args` and `exec`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod add;
pub mod deploy;
pub mod error;
mod kube;
pub mod new;
pub mod output;
pub mod schema;
pub mod strimzi;
mod templates;

pub use error::Error;
pub use output::{Color, Console, MessageFormat, Output};

/// The exit statuses, as `--help` shows them.
pub(crate) const EXIT_STATUS: &str = "\
Exit status:
  0  success
  1  a check found errors (`schema check`)
  2  an error: a bad flag or value, a crate that does not build, a file that cannot be read
     or written (nothing was written)";

/// The `cargo` entry: cargo runs `cargo-cqrs cqrs <args>`.
#[derive(Debug, Parser)]
#[command(
    bin_name = "cargo",
    version,
    about = "Event-sourced CQRS services from annotated Rust types"
)]
pub enum Cargo {
    /// Scaffold, extend and check event-sourced CQRS services.
    Cqrs(CqrsArgs),
}

/// `cargo cqrs ...`
#[derive(Debug, clap::Args)]
#[command(version, about, long_about = None, after_help = EXIT_STATUS)]
pub struct CqrsArgs {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub output: Output,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new service crate: an aggregate with versioned events, a projection, tests, an
    /// HTTP API and configuration from the environment.
    #[command(after_help = EXIT_STATUS)]
    New(new::NewArgs),
    /// Add an aggregate, event, command or projection to this crate, with its wiring and a
    /// test.
    #[command(after_help = EXIT_STATUS)]
    Add(add::AddArgs),
    /// Export the crate's command and event schemas, or check them against the committed
    /// export.
    #[command(subcommand)]
    Schema(schema::SchemaCommand),
    /// Write Strimzi manifests: a `Kafka` cluster (KRaft, with its `KafkaNodePool`) and a
    /// `KafkaTopic` per aggregate and per dead-letter topic, with partitions, replicas and
    /// retention from `[package.metadata.cqrs.topics.<type>]` or the flags.
    #[command(after_help = EXIT_STATUS)]
    Strimzi(strimzi::StrimziArgs),
    /// Write what runs the service on Kubernetes: a Dockerfile (multi-stage, distroless,
    /// non-root) and a Deployment probed on the health endpoints, a Service, a ConfigMap and a
    /// Secret (PostgreSQL) or a volume (SQLite).
    #[command(after_help = EXIT_STATUS)]
    Deploy(deploy::DeployArgs),
}

impl Cargo {
    /// The global flags: how to report.
    pub fn output(&self) -> Output {
        let Cargo::Cqrs(args) = self;
        args.output
    }
}

/// Runs a parsed command line, reporting through `console`.
pub fn exec(cli: Cargo, console: &mut Console<'_>) -> Result<ExitCode, Error> {
    let Cargo::Cqrs(args) = cli;
    match args.command {
        Command::New(args) => new::exec(args, console),
        Command::Add(args) => add::exec(args, console),
        Command::Schema(command) => schema::exec(command, console),
        Command::Strimzi(args) => strimzi::exec(args, console),
        Command::Deploy(args) => deploy::exec(args, console),
    }
}

/// Formats generated Rust files with `rustfmt` (`$RUSTFMT` if set), so that they read like
/// the rest of the crate. Without rustfmt they stay as rendered, which compiles the same.
pub(crate) fn format_rust(files: &[std::path::PathBuf]) {
    let files: Vec<_> = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "rs"))
        .collect();
    if files.is_empty() {
        return;
    }
    let rustfmt = std::env::var_os("RUSTFMT").unwrap_or_else(|| "rustfmt".into());
    let _ = std::process::Command::new(rustfmt)
        .args(["--edition", "2024"])
        .args(files)
        .stderr(std::process::Stdio::null())
        .status();
}
