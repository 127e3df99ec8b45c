//! Reading a crate's schema metadata. Aggregates register themselves at link time, so the
//! metadata exists only inside a program linked with the crate: the host, a two-line binary
//! generated under the crate's target directory, which prints
//! `cqrs_runtime::schema::program_json()`. It shares the crate's target directory and lock
//! file, so it reuses what the crate's own build compiled. Its manifest is written with
//! `toml_edit`; `--locked` means the host resolves to the workspace's `Cargo.lock` exactly.

use std::path::{Path, PathBuf};
use std::process::Command;

use cargo_metadata::{MetadataCommand, TargetKind};
use toml_edit::{Array, DocumentMut, InlineTable, Item, Table, value};

use super::model::Program;
use super::{Features, Package};
use crate::error::Error;
use crate::output::Color;
use crate::templates::{NoContext, Template};

/// The crate whose schemas are read, as `cargo metadata` describes it.
#[derive(Debug)]
pub struct Crate {
    /// The package name.
    pub package: String,
    /// The package's folder.
    pub dir: PathBuf,
    /// Where its runtime comes from: a path or a version requirement.
    runtime: RuntimeSource,
    /// The workspace's target directory.
    target_dir: PathBuf,
    /// The workspace's lock file, if any.
    lock_file: Option<PathBuf>,
    /// `[package.metadata.cqrs]` of its manifest (`null` when absent).
    pub settings: serde_json::Value,
    /// The features it turns on in `cqrs-runtime` (`default` among them unless it turned the
    /// default features off).
    pub runtime_features: Vec<String>,
    /// Its binaries' names.
    pub binaries: Vec<String>,
    /// Its features (for `--all-features` and to check `--features`).
    features: Vec<String>,
    /// The flags for the cargo that reads it (`--locked`, `--offline`, `--frozen`).
    cargo_flags: Vec<&'static str>,
    /// Whether `--locked` or `--frozen` was given.
    locked: bool,
    /// Whether `--offline` or `--frozen` was given.
    offline: bool,
}

#[derive(Debug)]
enum RuntimeSource {
    Path(PathBuf),
    Version(String),
}

/// Finds the package: `-p` if given, else the one at `--manifest-path` (or the current
/// directory).
pub fn locate(args: &Package) -> Result<Crate, Error> {
    let manifest_path = args.manifest_path.as_deref();
    let mut command = MetadataCommand::new();
    command.no_deps();
    command.other_options(
        args.cargo_flags()
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>(),
    );
    if let Some(path) = manifest_path {
        command.manifest_path(path);
    }
    let metadata = command.exec().map_err(|e| Error::Metadata(e.to_string()))?;
    let chosen: &cargo_metadata::Package = match args.package.as_deref() {
        Some(name) => metadata
            .workspace_packages()
            .into_iter()
            .find(|p| p.name.as_str() == name)
            .ok_or_else(|| Error::NoSuchPackage {
                name: name.to_owned(),
                members: member_names(&metadata),
            })?,
        None => {
            // The package whose folder holds the manifest path or the current directory.
            let here = match manifest_path {
                Some(path) => path.parent().map(Path::to_path_buf).unwrap_or_default(),
                None => std::env::current_dir().map_err(|e| Error::io(Path::new("."), e))?,
            };
            let here = here.canonicalize().unwrap_or(here);
            metadata
                .workspace_packages()
                .into_iter()
                .filter(|p| {
                    p.manifest_path
                        .parent()
                        .is_some_and(|dir| here.starts_with(dir.as_std_path()))
                })
                .max_by_key(|p| p.manifest_path.as_str().len())
                .or_else(|| metadata.root_package())
                .ok_or_else(|| Error::ChoosePackage {
                    members: member_names(&metadata),
                })?
        }
    };
    if !chosen.targets.iter().any(|t| {
        t.kind
            .iter()
            .any(|k| matches!(k, TargetKind::Lib | TargetKind::RLib))
    }) {
        return Err(Error::NoLibrary {
            package: chosen.name.to_string(),
        });
    }
    let runtime = chosen
        .dependencies
        .iter()
        .find(|d| d.name == "cqrs-runtime")
        .ok_or_else(|| Error::NoRuntime {
            package: chosen.name.to_string(),
        })?;
    let mut runtime_features = runtime.features.clone();
    if runtime.uses_default_features {
        runtime_features.push("default".to_owned());
    }
    let runtime = match &runtime.path {
        Some(path) => RuntimeSource::Path(path.clone().into_std_path_buf()),
        None => RuntimeSource::Version(runtime.req.to_string()),
    };
    let binaries = chosen
        .targets
        .iter()
        .filter(|t| t.kind.contains(&TargetKind::Bin))
        .map(|t| t.name.clone())
        .collect();
    let lock_file = metadata
        .workspace_root
        .join("Cargo.lock")
        .into_std_path_buf();
    Ok(Crate {
        package: chosen.name.to_string(),
        dir: chosen
            .manifest_path
            .parent()
            .map(|p| p.to_path_buf().into_std_path_buf())
            .unwrap_or_default(),
        runtime,
        target_dir: metadata.target_directory.clone().into_std_path_buf(),
        lock_file: lock_file.is_file().then_some(lock_file),
        settings: chosen.metadata.get("cqrs").cloned().unwrap_or_default(),
        runtime_features,
        binaries,
        features: chosen.features.keys().cloned().collect(),
        cargo_flags: args.cargo_flags(),
        locked: args.locked(),
        offline: args.offline(),
    })
}

impl Crate {
    /// The folder of `cqrs-runtime` when the crate depends on it by path.
    pub fn runtime_path(&self) -> Option<&Path> {
        match &self.runtime {
            RuntimeSource::Path(path) => Some(path),
            RuntimeSource::Version(_) => None,
        }
    }
}

fn member_names(metadata: &cargo_metadata::Metadata) -> Vec<String> {
    let mut names: Vec<String> = metadata
        .workspace_packages()
        .iter()
        .map(|p| p.name.to_string())
        .collect();
    names.sort();
    names
}

/// Builds and runs the host with the package's `features`, and reads what it prints: the
/// aggregates (at least one) and the process managers.
pub fn read(krate: &Crate, features: &Features, color: Color) -> Result<Program, Error> {
    let named = features.named();
    if let Some(unknown) = named.iter().find(|f| !krate.features.contains(f)) {
        return Err(Error::NoSuchFeature {
            package: krate.package.clone(),
            feature: unknown.clone(),
            features: krate.features.clone(),
        });
    }
    // One host per package folder: two checkouts sharing a target directory keep apart. The
    // host's package (so its binary in the shared target directory) is named after the folder
    // too: two hosts built and run at once must not run each other's binary.
    let name = format!(
        "{}-{:016x}",
        krate.package,
        fnv1a(&krate.dir.to_string_lossy())
    );
    let host = krate.target_dir.join("cqrs-schema-host").join(&name);
    std::fs::create_dir_all(host.join("src")).map_err(|e| Error::io(&host, e))?;
    write_if_changed(&host.join("Cargo.toml"), &manifest(krate, &name, features))?;
    write_if_changed(
        &host.join("src/main.rs"),
        &Template::HostMain.render(&NoContext {})?,
    )?;
    lock(krate, &host, color)?;
    let output = cargo(color)
        .args(&krate.cargo_flags)
        .arg("run")
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(host.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&krate.target_dir)
        .output()
        .map_err(|e| Error::io(&host, e))?;
    if !output.status.success() {
        return Err(Error::HostFailed {
            package: krate.package.clone(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    let program: Program =
        serde_json::from_slice(&output.stdout).map_err(|e| Error::HostOutput(e.to_string()))?;
    if program.aggregates.is_empty() {
        return Err(Error::NoAggregates {
            package: krate.package.clone(),
        });
    }
    Ok(program)
}

/// The cargo that `cargo cqrs` runs (`$CARGO` when cargo started it), coloured as asked.
fn cargo(color: Color) -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.args(["--color", color.as_str()]);
    command
}

/// The host's `Cargo.lock`: the workspace's, which cargo completes with the host's own entry
/// (and, when the crate does not turn on the runtime's `schema` feature, with what that feature
/// needs). Under `--locked` no package the workspace's file pins may move: the host must
/// resolve each one to the version and source it pins.
fn lock(krate: &Crate, host: &Path, color: Color) -> Result<(), Error> {
    let target = host.join("Cargo.lock");
    let Some(lock) = &krate.lock_file else {
        if krate.locked {
            return Err(Error::Unlocked {
                package: krate.package.clone(),
                why: "the workspace has no Cargo.lock".to_owned(),
            });
        }
        return Ok(());
    };
    let workspace = std::fs::read_to_string(lock).map_err(|e| Error::io(lock, e))?;
    if !krate.locked {
        // Start again from the workspace's file whenever it changed since the host last took
        // it (a copy is kept beside), so that the host resolves as the crate's own build does;
        // else keep the host's, so cargo does not write it again.
        let taken = host.join("Cargo.lock.workspace");
        if std::fs::read_to_string(&taken).ok().as_deref() != Some(workspace.as_str()) {
            std::fs::write(&target, &workspace).map_err(|e| Error::io(&target, e))?;
            std::fs::write(&taken, &workspace).map_err(|e| Error::io(&taken, e))?;
        }
        return Ok(());
    }
    let pinned = Pins::read(&workspace).unwrap_or_default();
    std::fs::write(&target, &workspace).map_err(|e| Error::io(&target, e))?;
    // cargo adds what the host needs (`--workspace`: it updates nothing else unless it must),
    // from the index alone; then compare.
    let mut update = cargo(color);
    if krate.offline {
        update.arg("--offline");
    }
    let output = update
        .args(["update", "--workspace", "--manifest-path"])
        .arg(host.join("Cargo.toml"))
        .output()
        .map_err(|e| Error::io(host, e))?;
    if !output.status.success() {
        return Err(Error::HostFailed {
            package: krate.package.clone(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    let resolved = std::fs::read_to_string(&target).map_err(|e| Error::io(&target, e))?;
    let why = match Pins::read(&resolved).map(|host| pinned.moved_in(&host)) {
        Some(moved) if moved.is_empty() => return Ok(()),
        Some(moved) => format!("Cargo.lock is not up to date ({})", moved.join("; ")),
        None => "cargo wrote a Cargo.lock that does not parse".to_owned(),
    };
    Err(Error::Unlocked {
        package: krate.package.clone(),
        why,
    })
}

/// What a `Cargo.lock` pins: per package name, its versions and sources.
#[derive(Debug, Default)]
struct Pins(std::collections::BTreeMap<String, Vec<(String, String)>>);

impl Pins {
    fn read(text: &str) -> Option<Self> {
        let document: DocumentMut = text.parse().ok()?;
        let mut pins = Pins::default();
        for package in document.get("package")?.as_array_of_tables()? {
            let field = |key: &str| package.get(key).and_then(Item::as_str).unwrap_or("");
            pins.0
                .entry(field("name").to_owned())
                .or_default()
                .push((field("version").to_owned(), field("source").to_owned()));
        }
        Some(pins)
    }

    /// The packages these pins hold that `other` resolves elsewhere, as
    /// `name: pinned 1.0.1, resolved 1.0.2`.
    fn moved_in(&self, other: &Pins) -> Vec<String> {
        let mut moved = Vec::new();
        for (name, resolved) in &other.0 {
            let Some(pinned) = self.0.get(name) else {
                continue;
            };
            for (version, source) in resolved {
                if !pinned.iter().any(|(v, s)| v == version && s == source) {
                    let pinned: Vec<&str> = pinned.iter().map(|(v, _)| v.as_str()).collect();
                    moved.push(format!(
                        "{name}: pinned {}, resolved {version}",
                        pinned.join(" and ")
                    ));
                }
            }
        }
        moved
    }
}

/// The host's `Cargo.toml`: a package depending on the crate (with the features asked for)
/// and on its `cqrs-runtime` with the `schema` feature, in a workspace of its own.
fn manifest(krate: &Crate, name: &str, features: &Features) -> String {
    let mut document = DocumentMut::new();
    let mut package = Table::new();
    package.insert("name", value(format!("cqrs-schema-host-{name}")));
    package.insert("version", value("0.0.0"));
    package.insert("edition", value("2021"));
    package.insert("publish", value(false));
    package
        .decor_mut()
        .set_prefix("# Generated by `cargo cqrs schema`.\n");
    document.insert("package", Item::Table(package));

    let mut user = InlineTable::new();
    user.insert("package", krate.package.as_str().into());
    user.insert("path", krate.dir.to_string_lossy().as_ref().into());
    let enabled: Vec<String> = if features.all_features {
        krate.features.clone()
    } else {
        features.named()
    };
    if !enabled.is_empty() {
        user.insert("features", Array::from_iter(enabled).into());
    }
    if features.no_default_features {
        user.insert("default-features", false.into());
    }
    let mut runtime = InlineTable::new();
    match &krate.runtime {
        RuntimeSource::Path(path) => runtime.insert("path", path.to_string_lossy().as_ref().into()),
        RuntimeSource::Version(req) => runtime.insert("version", req.as_str().into()),
    };
    runtime.insert("features", Array::from_iter(["schema"]).into());
    let mut dependencies = Table::new();
    dependencies.insert("user", value(user));
    dependencies.insert("cqrs-runtime", value(runtime));
    document.insert("dependencies", Item::Table(dependencies));
    document.insert("workspace", Item::Table(Table::new()));
    document.to_string()
}

/// FNV-1a: a stable hash for folder names (std's hasher may change between releases).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Writes only when the content differs, so that cargo does not rebuild the host needlessly.
pub fn write_if_changed(path: &Path, content: &str) -> Result<bool, Error> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == content) {
        return Ok(false);
    }
    std::fs::write(path, content).map_err(|e| Error::io(path, e))?;
    Ok(true)
}
