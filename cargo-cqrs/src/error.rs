//! Everything `cargo cqrs` can refuse, each with what is wrong, where, and how to fix it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{NamedSource, SourceSpan};

/// An error of a `cargo cqrs` command.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Error {
    /// A `[package.metadata.cqrs.topics]` setting or a `strimzi` flag that cannot be used.
    #[error("invalid topic setting `{key}`: {why}")]
    #[diagnostic(help(
        "per aggregate type, `[package.metadata.cqrs.topics.<type>]` in Cargo.toml takes partitions, replicas, retention (e.g. \"30d\") and topic"
    ))]
    BadTopicSetting { key: String, why: String },
    /// `cargo metadata` failed.
    #[error("cannot read the package's metadata: {0}")]
    #[diagnostic(help(
        "run it inside a Cargo package, or give `--manifest-path path/to/Cargo.toml`"
    ))]
    Metadata(String),
    /// `-p` named no member.
    #[error("no package `{name}` in this workspace")]
    #[diagnostic(help("the members are: {}", members.join(", ")))]
    NoSuchPackage { name: String, members: Vec<String> },
    /// A virtual workspace without `-p`.
    #[error("this is a workspace with several packages; which one?")]
    #[diagnostic(help("choose one with `-p NAME`; the members are: {}", members.join(", ")))]
    ChoosePackage { members: Vec<String> },
    /// A binary-only package.
    #[error(
        "package `{package}` has no library target: `cargo cqrs` reads and writes the domain types in the library"
    )]
    #[diagnostic(help(
        "move the domain types into `src/lib.rs` (the generated services do) and keep `src/main.rs` thin"
    ))]
    NoLibrary { package: String },
    /// A package that does not use the runtime.
    #[error("package `{package}` does not depend on `cqrs-runtime`, so it has no aggregates")]
    #[diagnostic(help("choose the package that defines the aggregates with `-p NAME`"))]
    NoRuntime { package: String },
    /// A package without any derived aggregate.
    #[error("package `{package}` defines no aggregate (no `#[derive(Aggregate)]` was linked)")]
    #[diagnostic(help(
        "derive `Aggregate` on a state type in the library, or choose another package with `-p`"
    ))]
    NoAggregates { package: String },
    /// The schema reader did not build or run.
    #[error(
        "cannot read the schemas of `{package}`: building or running the schema reader failed:\n{stderr}"
    )]
    #[diagnostic(help(
        "the package must build: run `cargo build -p {package}` and fix what it reports"
    ))]
    HostFailed { package: String, stderr: String },
    /// The schema reader printed something else than schemas.
    #[error("the schema reader printed something unexpected: {0}")]
    #[diagnostic(help(
        "the package's `cqrs-runtime` may be older than this `cargo cqrs`; use matching versions"
    ))]
    HostOutput(String),
    /// No export to check against.
    #[error("there is no schema export in {}", dir.display())]
    #[diagnostic(help(
        "run `cargo cqrs schema export` first and commit the folder (or point `--dir` at it)"
    ))]
    NoExport { dir: PathBuf },
    /// An export file is not what `schema export` writes.
    #[error("{} is not a valid schema export: {why}", file.display())]
    #[diagnostic(help(
        "write it again with `cargo cqrs schema export` (from the commit whose schemas it should hold)"
    ))]
    BadExport {
        file: PathBuf,
        why: String,
        /// The file, when the error has a place in it.
        #[source_code]
        src: Option<Arc<NamedSource<String>>>,
        #[label("here")]
        at: Option<SourceSpan>,
    },
    /// `--features` names a feature the package does not have.
    #[error("package `{package}` has no feature `{feature}`")]
    #[diagnostic(help("its features are: {}", if features.is_empty() { "none".to_owned() } else { features.join(", ") }))]
    NoSuchFeature {
        package: String,
        feature: String,
        features: Vec<String>,
    },
    /// `--locked` or `--frozen`, and the schema reader would not resolve as `Cargo.lock` says.
    #[error("`--locked` was given, but {why}, so the schema reader of `{package}` would change it")]
    #[diagnostic(help(
        "run `cargo build` (or `cargo update -p NAME`) to bring Cargo.lock up to date and commit it, or drop `--locked`"
    ))]
    Unlocked { package: String, why: String },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An invalid crate name for `new`.
    #[error("`{name}` cannot be a crate name: {why}")]
    #[diagnostic(help(
        "choose a name such as `order-service`: ASCII letters, digits, `-` and `_`, starting with a letter"
    ))]
    BadName { name: String, why: String },
    /// `new` into a folder with files.
    #[error("{} exists and is not empty", dir.display())]
    #[diagnostic(help(
        "choose another `--path`, or pass `--force` to write the service's files into it"
    ))]
    NotEmpty { dir: PathBuf },
    /// `--runtime-path` without a crate.
    #[error("there is no `cqrs-runtime` crate at {}", path.display())]
    #[diagnostic(help(
        "point `--runtime-path` at the `runtime/` folder of a cargo-cqrs checkout, or use `--runtime-version`"
    ))]
    NoRuntimeAt { path: PathBuf },
    /// A template did not render (a bug of cargo-cqrs).
    #[error("template {template} did not render: {why}")]
    #[diagnostic(help("this is a bug in cargo-cqrs; please report it with the command you ran"))]
    Template { template: String, why: String },
    /// `--out` or `--dir` outside the package.
    #[error("`{flag} {}` leaves the package folder", path.display())]
    #[diagnostic(help(
        "give a folder inside the package, such as `schemas` (the default): the export is committed with the code it describes"
    ))]
    PathEscapes { flag: String, path: PathBuf },
    /// A `cargo cqrs deploy` flag with a value Kubernetes or the service cannot take.
    #[error("invalid value for {flag}: {why}")]
    #[diagnostic(help(
        "nothing was written; `cargo cqrs deploy --help` says what each flag takes"
    ))]
    BadFlag { flag: String, why: String },
    /// `deploy` of a package without a binary.
    #[error("package `{package}` has no binary to put in an image")]
    #[diagnostic(help(
        "a service from `cargo cqrs new` has one (`src/main.rs`); with several, name one after the package"
    ))]
    NoBinary { package: String },
    /// A type name `add` cannot use.
    #[error("`{name}` cannot name a Rust type here")]
    #[diagnostic(help(
        "use UpperCamelCase ASCII letters and digits, e.g. `Project` or `TaskArchived`"
    ))]
    BadItemName { name: String },
    /// A bad `name:type` field spec.
    #[error("field `{spec}` is not valid: {why}")]
    #[diagnostic(help(
        "write fields as `name:type`, e.g. `title:String budget:i64 tags:Vec<String>`"
    ))]
    BadField { spec: String, why: String },
    /// Fields given to `add projection`.
    #[error("`add projection` takes no fields: a projection handles the aggregate's events")]
    #[diagnostic(help("drop the fields, then shape the read model in the generated module"))]
    FieldsNotTaken,
    /// `--newtype` on `add aggregate` or `add projection`.
    #[error("`--newtype` shapes an event or a command, not an aggregate or a projection")]
    #[diagnostic(help("drop `--newtype`, or use it with `add event` or `add command`"))]
    NewtypeNotTaken,
    /// `add event|command|projection` without `--to`.
    #[error("which aggregate? events, commands and projections belong to an aggregate's module")]
    #[diagnostic(help("add `--to MODULE`; modules with an aggregate here: {}", if modules.is_empty() { "none (add one with `cargo cqrs add aggregate Name`)".to_owned() } else { modules.join(", ") }))]
    WhichAggregate { modules: Vec<String> },
    /// `--to` names no aggregate module.
    #[error("there is no module `src/{module}.rs` here")]
    #[diagnostic(help("modules with an aggregate here: {}", if modules.is_empty() { "none".to_owned() } else { modules.join(", ") }))]
    NoSuchModule {
        module: String,
        modules: Vec<String>,
    },
    /// The module lacks what `add` injects into.
    #[error("{} has no {missing}", file.display())]
    #[diagnostic(help(
        "`add` injects into a module laid out like the ones `cargo cqrs new` and `add aggregate` write"
    ))]
    NotAnAggregateModule { file: PathBuf, missing: String },
    /// A module that does not parse.
    #[error("{} line {line} does not parse as Rust: {why}", file.display())]
    #[diagnostic(help(
        "fix the syntax error first (`cargo check` shows it), then run `add` again"
    ))]
    Unparsable {
        file: PathBuf,
        line: usize,
        why: String,
        #[source_code]
        src: Arc<NamedSource<String>>,
        #[label("{why}")]
        at: SourceSpan,
    },
    /// A closing brace shared with code.
    #[error("{} line {line}: the closing brace shares its line with code, so `add` cannot insert before it", file.display())]
    #[diagnostic(help("run `cargo fmt`, then `add` again"))]
    NotFormatted {
        file: PathBuf,
        line: usize,
        #[source_code]
        src: Arc<NamedSource<String>>,
        #[label("`add` inserts before this brace")]
        at: SourceSpan,
    },
    /// The item exists already.
    #[error("{what} already exists in {}", file.display())]
    #[diagnostic(help("nothing was written; choose another name"))]
    AlreadyThere { what: String, file: PathBuf },
    /// Writing to the terminal failed.
    #[error("cannot write the output: {0}")]
    Output(#[source] std::io::Error),
}

impl Error {
    /// A [`BadExport`](Error::BadExport) for a file that is no JSON: it points at the place
    /// serde_json names.
    pub fn not_json(file: &Path, text: &str, error: &serde_json::Error) -> Self {
        let at = crate::output::offset(text, error.line(), error.column().saturating_sub(1));
        Error::BadExport {
            file: file.to_path_buf(),
            why: error.to_string(),
            src: Some(Arc::new(NamedSource::new(
                file.display().to_string(),
                text.to_owned(),
            ))),
            at: Some(at.into()),
        }
    }

    /// An I/O error at `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
