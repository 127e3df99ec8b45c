//! `cargo cqrs add aggregate|event|command|projection|process-manager <Name> [field:type ...]`:
//! writes the new
//! item and its wiring (the `mod` line, the enum variant, the handler or applier, a test), and
//! prints each file as `added:` or `injected:`. Everything is checked before anything is
//! written: run twice, it refuses instead of duplicating.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use heck::ToSnakeCase;

use crate::error::Error;
use crate::output::Console;
use crate::schema::{Package, host};

mod rust;

use rust::{Field, SourceFile};

/// What to add.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// A new aggregate in its own module, with a create command and event, and a test file.
    Aggregate,
    /// An event of an aggregate: the variant with its fields, an applier and a test.
    Event,
    /// A command of an aggregate: the variant with its fields, a handler and a test.
    Command,
    /// A projection of an aggregate's events in its own module, with a test file.
    Projection,
    /// A process manager following an aggregate's events (and sending it commands) in its own
    /// module, with a deadline, a test file and its runner.
    ProcessManager,
}

/// `cargo cqrs add`
#[derive(Debug, Args)]
pub struct AddArgs {
    /// What to add.
    #[arg(value_enum)]
    pub kind: Kind,
    /// Its name in UpperCamelCase, e.g. `Project`, `TaskArchived`, `Archive`, `OpenTasks`.
    pub name: String,
    /// Fields of the new type, as `name:type`; types: String, bool, i8 to i128, u8 to u128,
    /// f32, f64, and `Vec<T>` or `Option<T>` of those.
    #[arg(value_name = "FIELD:TYPE")]
    pub fields: Vec<String>,
    /// The aggregate's module (`src/<MODULE>.rs`) an event, command, projection or process
    /// manager belongs to (follows).
    #[arg(long, value_name = "MODULE")]
    pub to: Option<String>,
    /// For an event or a command: write a payload struct of its own and a `Variant(Struct)`
    /// instead of a variant with named fields.
    #[arg(long)]
    pub newtype: bool,
    #[command(flatten)]
    pub package: Package,
}

/// A file to write: new, or an existing one with text injected.
struct Change {
    path: PathBuf,
    content: String,
    new: bool,
}

/// Runs `add`.
pub fn exec(args: AddArgs, console: &mut Console<'_>) -> Result<ExitCode, Error> {
    let krate = CrateDir::open(&args.package)?;
    let name = args.name.as_str();
    if !rust::is_type_name(name) {
        return Err(Error::BadItemName {
            name: name.to_owned(),
        });
    }
    if args.newtype && !matches!(args.kind, Kind::Event | Kind::Command) {
        return Err(Error::NewtypeNotTaken);
    }
    let shape = if args.newtype {
        rust::Shape::Newtype
    } else {
        rust::Shape::Named
    };
    let fields = args
        .fields
        .iter()
        .map(|f| Field::parse(f))
        .collect::<Result<Vec<_>, _>>()?;
    let mut note = None;
    let changes = match args.kind {
        Kind::Aggregate => add_aggregate(&krate, name, &fields)?,
        Kind::Event => {
            let module = module(&krate, args.to.as_deref())?;
            inject(&krate, &module, |file| {
                file.add_event(&krate.ident, &module, name, &fields, shape)
            })?
        }
        Kind::Command => {
            let module = module(&krate, args.to.as_deref())?;
            inject(&krate, &module, |file| {
                file.add_command(&krate.ident, &module, name, &fields, shape)
            })?
        }
        Kind::Projection => {
            if !fields.is_empty() {
                return Err(Error::FieldsNotTaken);
            }
            let (changes, wiring) =
                add_projection(&krate, &module(&krate, args.to.as_deref())?, name)?;
            note = wiring;
            changes
        }
        Kind::ProcessManager => {
            if !fields.is_empty() {
                return Err(Error::FieldsNotTaken);
            }
            let (changes, wiring) =
                add_process_manager(&krate, &module(&krate, args.to.as_deref())?, name)?;
            note = wiring;
            changes
        }
    };
    for change in &changes {
        if let Some(parent) = change.path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        std::fs::write(&change.path, &change.content).map_err(|e| Error::io(&change.path, e))?;
    }
    crate::format_rust(&changes.iter().map(|c| c.path.clone()).collect::<Vec<_>>());
    let relative = |change: &Change| {
        change
            .path
            .strip_prefix(&krate.root)
            .unwrap_or(&change.path)
            .to_path_buf()
    };
    for change in &changes {
        let verb = if change.new { "added" } else { "injected" };
        console.line(format_args!("{verb}: {}", relative(change).display()))?;
    }
    if let Some(note) = &note {
        console.text(note)?;
    }
    let files = |new: bool| -> Vec<PathBuf> {
        changes
            .iter()
            .filter(|c| c.new == new)
            .map(relative)
            .collect()
    };
    console.document(&serde_json::json!({
        "package": krate.package,
        "added": files(true),
        "injected": files(false),
        "note": note,
    }))?;
    Ok(ExitCode::SUCCESS)
}

/// The crate being extended.
struct CrateDir {
    root: PathBuf,
    /// The package's name.
    package: String,
    /// The crate's name as Rust code writes it.
    ident: String,
}

impl CrateDir {
    /// The package `-p` or `--manifest-path` names, or the one in the current directory.
    fn open(package: &Package) -> Result<Self, Error> {
        let krate = host::locate(package)?;
        // Shown relative to the current directory when it is inside the package.
        let here = std::env::current_dir().and_then(|d| d.canonicalize());
        let root = match here.map(|here| krate.dir.strip_prefix(here).map(Path::to_path_buf)) {
            Ok(Ok(relative)) => relative,
            _ => krate.dir,
        };
        Ok(CrateDir {
            ident: krate.package.to_snake_case(),
            package: krate.package,
            root,
        })
    }

    fn src(&self, module: &str) -> PathBuf {
        self.root.join("src").join(format!("{module}.rs"))
    }

    fn test(&self, module: &str) -> PathBuf {
        self.root.join("tests").join(format!("{module}.rs"))
    }

    fn read(&self, path: &Path) -> Result<String, Error> {
        std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
    }

    /// `src/lib.rs` with `pub mod <module>;` added; refused if the module exists.
    fn with_module(&self, module: &str) -> Result<Change, Error> {
        let path = self.root.join("src/lib.rs");
        let text = self.read(&path)?;
        let declared = text.lines().any(|l| {
            let l = l.trim();
            l == format!("mod {module};") || l == format!("pub mod {module};")
        });
        if declared || self.src(module).exists() {
            return Err(Error::AlreadyThere {
                what: format!("module `{module}`"),
                file: self.src(module),
            });
        }
        let lines: Vec<&str> = text.lines().collect();
        let after = lines
            .iter()
            .rposition(|l| l.starts_with("pub mod ") || l.starts_with("mod "));
        let mut result: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
        let line = format!("pub mod {module};");
        match after {
            Some(i) => result.insert(i + 1, line),
            None => {
                result.push(String::new());
                result.push(line);
            }
        }
        Ok(Change {
            path,
            content: result.join("\n") + "\n",
            new: false,
        })
    }

    fn new_file(&self, path: PathBuf, content: String) -> Result<Change, Error> {
        if path.exists() {
            return Err(Error::AlreadyThere {
                what: format!("file {}", path.display()),
                file: path,
            });
        }
        Ok(Change {
            path,
            content,
            new: true,
        })
    }
}

/// The module `--to` names, which must be an aggregate's file.
fn module(krate: &CrateDir, to: Option<&str>) -> Result<String, Error> {
    let candidates = || -> Vec<String> {
        let mut found: Vec<String> = std::fs::read_dir(krate.root.join("src"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let path = e.path();
                let text = std::fs::read_to_string(&path).ok()?;
                (text.contains("Aggregate)]") || text.contains("Aggregate,"))
                    .then(|| path.file_stem()?.to_str().map(str::to_owned))?
            })
            .collect();
        found.sort();
        found
    };
    let Some(to) = to else {
        return Err(Error::WhichAggregate {
            modules: candidates(),
        });
    };
    if !rust::is_module_name(to) || !krate.src(to).is_file() {
        return Err(Error::NoSuchModule {
            module: to.to_owned(),
            modules: candidates(),
        });
    }
    Ok(to.to_owned())
}

fn add_aggregate(krate: &CrateDir, name: &str, fields: &[Field]) -> Result<Vec<Change>, Error> {
    let module = name.to_snake_case();
    let lib = krate.with_module(&module)?;
    let source = rust::aggregate_module(name, fields)?;
    let test = rust::aggregate_test(&krate.ident, &module, name, fields)?;
    Ok(vec![
        krate.new_file(krate.src(&module), source)?,
        krate.new_file(krate.test(&module), test)?,
        lib,
    ])
}

/// Edits an aggregate's module with `edit`, and appends the test it writes.
fn inject(
    krate: &CrateDir,
    module: &str,
    edit: impl FnOnce(&SourceFile) -> Result<rust::Edited, Error>,
) -> Result<Vec<Change>, Error> {
    let path = krate.src(module);
    let file = SourceFile::parse(&path, krate.read(&path)?)?;
    let edited = edit(&file)?;
    let mut changes = vec![Change {
        path,
        content: edited.source,
        new: false,
    }];
    changes.extend(append_test(krate, module, &edited.test)?);
    Ok(changes)
}

/// The projection's module and test, its `mod` line, and its runner in `src/main.rs` where the
/// generated marker line is; else (a `main.rs` of the user's own) the lines to add, as a note.
fn add_projection(
    krate: &CrateDir,
    module: &str,
    name: &str,
) -> Result<(Vec<Change>, Option<String>), Error> {
    let own = name.to_snake_case();
    let (mut changes, _) = krate.follower_module(module, name, |aggregate, payloads| {
        let source = rust::projection_module(module, aggregate, name, payloads)?;
        Ok((source, rust::projection_test(&krate.ident, &own, name)?))
    })?;
    let runner = |_: &str| {
        format!(
            "    // The `{name}` read model: hand `{own}` to the handlers that answer from it.\n    \
             let {own} = {krate}::{own}::{name}::default();\n    \
             runners.projection(&store, {own}.clone(), &health);\n",
            krate = krate.ident
        )
    };
    let note = krate.inject_runner(&mut changes, runner, "projection");
    Ok((changes, note))
}

/// The process manager's module and test, its `mod` line, and its runner in `src/main.rs`
/// (or, without the marker line, the lines to add, as a note).
fn add_process_manager(
    krate: &CrateDir,
    module: &str,
    name: &str,
) -> Result<(Vec<Change>, Option<String>), Error> {
    let own = name.to_snake_case();
    let (mut changes, aggregate) = krate.follower_module(module, name, |followed, payloads| {
        let source = rust::process_module(module, followed, name, payloads)?;
        let test = rust::process_test(&krate.ident, module, &own, followed, name)?;
        Ok((source, test))
    })?;
    let runner = |main: &str| {
        // Instances and deadlines must outlive the process: beside the events, in the store's
        // database; a service on the in-memory store keeps them in memory too.
        let target = match main.contains("InMemoryStore::new()") {
            true => "cqrs_runtime::projection::MemoryTarget::new()",
            false => "store.projection_target()",
        };
        format!(
            "    // The `{name}` process manager: its instances and deadlines live beside the events.\n    \
             let dispatcher = cqrs_runtime::process::Dispatcher::new()\n        \
             .route(cqrs_runtime::Repository::<{krate}::{module}::{aggregate}, _>::new(store.clone()));\n    \
             let manager = {krate}::{own}::{name}::default();\n    \
             let mut {own} = cqrs_runtime::process::ProcessRunner::new(store.clone(), {target}, manager, dispatcher)\n        \
             .health(&health);\n    \
             runners.spawn(\"process manager `{own}`\", move |shutdown| async move {{ {own}.run(shutdown).await }});\n",
            krate = krate.ident
        )
    };
    let note = krate.inject_runner(&mut changes, runner, "process manager");
    Ok((changes, note))
}

impl CrateDir {
    /// A new module `name` that follows the aggregate of `module`: its `mod` line, and its
    /// source and test, which `render` writes from the aggregate's name and event payloads;
    /// with the aggregate's name.
    fn follower_module(
        &self,
        module: &str,
        name: &str,
        render: impl FnOnce(&str, &[rust::Payload]) -> Result<(String, String), Error>,
    ) -> Result<(Vec<Change>, String), Error> {
        let path = self.src(module);
        let file = SourceFile::parse(&path, self.read(&path)?)?;
        let payloads = file.event_payloads()?;
        let aggregate = file.aggregate_name()?;
        let own = name.to_snake_case();
        let lib = self.with_module(&own)?;
        let (source, test) = render(&aggregate, &payloads)?;
        let changes = vec![
            self.new_file(self.src(&own), source)?,
            self.new_file(self.test(&own), test)?,
            lib,
        ];
        Ok((changes, aggregate))
    }

    /// Adds the runner `runner` writes (given `src/main.rs`) before the generated marker line,
    /// indented as it is; without the marker (a `main.rs` of the user's own), the note that
    /// says what to add.
    fn inject_runner(
        &self,
        changes: &mut Vec<Change>,
        runner: impl FnOnce(&str) -> String,
        what: &str,
    ) -> Option<String> {
        let main = self.root.join("src/main.rs");
        let text = std::fs::read_to_string(&main).unwrap_or_default();
        let runner = runner(&text);
        let Some(at) = text.find(RUNNERS_MARKER) else {
            return Some(format!(
                "note: src/main.rs has no line `{RUNNERS_MARKER}`; to run the {what}, add beside \
                 the other runners:\n{runner}"
            ));
        };
        let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
        let mut content = text;
        content.insert_str(line_start, &runner);
        changes.push(Change {
            path: main,
            content,
            new: false,
        });
        None
    }
}

/// The line of a generated `src/main.rs` above which new projections' runners go.
const RUNNERS_MARKER: &str = "// New read models start here";

/// A test appended to `tests/<module>.rs` (created if missing).
fn append_test(krate: &CrateDir, module: &str, test: &str) -> Result<Option<Change>, Error> {
    let path = krate.test(module);
    let (mut content, new) = match std::fs::read_to_string(&path) {
        Ok(text) => (text, false),
        Err(_) => (String::new(), true),
    };
    if !content.is_empty() && !content.ends_with('\n') {
        content.push('\n');
    }
    if !content.is_empty() {
        content.push('\n');
    }
    content.push_str(test);
    Ok(Some(Change { path, content, new }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_package_is_read_by_cargo() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/lib.rs"), "").unwrap();
        let manifest = "# name = \"not-this\"\n[package] # the package\nname = 'order-service' # single quotes\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[dependencies]\ncqrs-runtime = \"0.1\"\n";
        std::fs::write(dir.path().join("Cargo.toml"), manifest).unwrap();
        let package = Package {
            manifest_path: Some(dir.path().join("Cargo.toml")),
            ..Package::default()
        };
        let krate = CrateDir::open(&package).unwrap();
        assert_eq!(krate.ident, "order_service");
        assert_eq!(
            krate.root,
            dir.path().canonicalize().unwrap(),
            "outside the current directory: the full path"
        );

        std::fs::write(dir.path().join("Cargo.toml"), "[package\nname = 1").unwrap();
        let Err(error) = CrateDir::open(&package) else {
            panic!("a manifest that is no TOML was read");
        };
        let error = error.to_string();
        assert!(
            error.contains("cannot read the package's metadata"),
            "{error}"
        );
        assert!(error.contains("Cargo.toml"), "{error}");
    }
}
