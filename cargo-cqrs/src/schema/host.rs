//! Reading a crate's schema metadata. Aggregates register themselves at link time, so the
//! metadata exists only inside a program linked with the crate: the host, a two-line binary
//! generated under the crate's target directory, which prints
//! `cqrs_runtime::schema::program_json()`. It shares the crate's target directory and lock
//! file, so it reuses what the crate's own build compiled.

use std::path::{Path, PathBuf};
use std::process::Command;

use cargo_metadata::{MetadataCommand, Package, TargetKind};
use serde::Serialize;

use super::model::Program;
use crate::error::Error;
use crate::templates::{NoContext, Render, Template};

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
}

#[derive(Debug)]
enum RuntimeSource {
    Path(PathBuf),
    Version(String),
}

/// Finds the package: `package` if given, else the one at `manifest_path` (or the current
/// directory).
pub fn locate(manifest_path: Option<&Path>, package: Option<&str>) -> Result<Crate, Error> {
    let mut command = MetadataCommand::new();
    command.no_deps();
    if let Some(path) = manifest_path {
        command.manifest_path(path);
    }
    let metadata = command.exec().map_err(|e| Error::Metadata(e.to_string()))?;
    let chosen: &Package = match package {
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

/// Builds and runs the host, and reads what it prints: the aggregates (at least one) and the
/// process managers.
pub fn read(krate: &Crate) -> Result<Program, Error> {
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
    write_if_changed(&host.join("Cargo.toml"), &manifest(krate, &name)?)?;
    write_if_changed(
        &host.join("src/main.rs"),
        &Template::HostMain.render(&NoContext {})?,
    )?;
    if let Some(lock) = &krate.lock_file {
        let target = host.join("Cargo.lock");
        if !target.exists() {
            std::fs::copy(lock, &target).map_err(|e| Error::io(&target, e))?;
        }
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
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

/// The host's `Cargo.toml`: the values as TOML strings.
#[derive(Serialize)]
struct Manifest {
    /// The host's own package name.
    name: String,
    package: String,
    path: String,
    /// `path = "..."` or `version = "..."`.
    runtime: String,
}

impl Render for Manifest {
    const TEMPLATE: Template = Template::HostManifest;
}

fn manifest(krate: &Crate, name: &str) -> Result<String, Error> {
    let runtime = match &krate.runtime {
        RuntimeSource::Path(path) => format!("path = {}", toml_string(&path.to_string_lossy())),
        RuntimeSource::Version(req) => format!("version = {}", toml_string(req)),
    };
    Manifest {
        name: toml_string(&format!("cqrs-schema-host-{name}")),
        package: toml_string(&krate.package),
        path: toml_string(&krate.dir.to_string_lossy()),
        runtime,
    }
    .render()
}

/// FNV-1a: a stable hash for folder names (std's hasher may change between releases).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A TOML basic string (JSON string escapes are valid TOML ones).
fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// Writes only when the content differs, so that cargo does not rebuild the host needlessly.
pub fn write_if_changed(path: &Path, content: &str) -> Result<bool, Error> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == content) {
        return Ok(false);
    }
    std::fs::write(path, content).map_err(|e| Error::io(path, e))?;
    Ok(true)
}
