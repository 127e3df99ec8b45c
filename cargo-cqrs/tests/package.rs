//! What the three published crates carry, read from cargo itself: each package's file list
//! (`cargo package --list`: the licences, its README, and for `cargo-cqrs` every template it
//! embeds) and each manifest's crates.io metadata (`cargo metadata`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const PUBLISHED: [&str; 3] = ["cqrs-macros", "cqrs-runtime", "cargo-cqrs"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_owned()
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(workspace());
    command
}

/// The files `cargo package` would put in `package`.
fn packaged(package: &str) -> BTreeSet<String> {
    let output = cargo()
        .args([
            "package",
            "--list",
            "--allow-dirty",
            "--offline",
            "-p",
            package,
        ])
        .output()
        .expect("run cargo package --list");
    assert!(
        output.status.success(),
        "cargo package --list -p {package}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("UTF-8 file names")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn files_under(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("a readable directory") {
        let entry = entry.expect("an entry");
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        if entry.path().is_dir() {
            files_under(&entry.path(), &format!("{name}/"), out);
        } else {
            out.push(name);
        }
    }
}

#[test]
fn every_package_carries_its_licences_and_readme() {
    for package in PUBLISHED {
        let files = packaged(package);
        for required in ["LICENSE-MIT", "LICENSE-APACHE", "README.md", "Cargo.toml"] {
            assert!(
                files.contains(required),
                "the package of {package} lacks {required}: {files:?}"
            );
        }
    }
}

#[test]
fn cargo_cqrs_carries_every_template_it_embeds() {
    let files = packaged("cargo-cqrs");
    let mut templates = Vec::new();
    files_under(&workspace().join("templates"), "templates/", &mut templates);
    assert!(templates.len() > 10, "templates found: {templates:?}");
    let missing: Vec<&String> = templates.iter().filter(|t| !files.contains(*t)).collect();
    assert!(
        missing.is_empty(),
        "templates missing from the cargo-cqrs package: {missing:?}"
    );
}

#[test]
fn every_manifest_has_the_metadata_crates_io_shows() {
    let metadata = cargo_metadata::MetadataCommand::new()
        .current_dir(workspace())
        .no_deps()
        .exec()
        .expect("cargo metadata");
    for name in PUBLISHED {
        let package = metadata
            .packages
            .iter()
            .find(|p| p.name.as_str() == name)
            .unwrap_or_else(|| panic!("no package {name}"));
        let field = |what: &str, ok: bool| assert!(ok, "{name} has no {what}");
        field(
            "description",
            package.description.as_ref().is_some_and(|d| d.len() > 20),
        );
        assert_eq!(package.license.as_deref(), Some("MIT OR Apache-2.0"));
        field(
            "readme",
            package
                .readme
                .as_ref()
                .is_some_and(|r| r.as_str().ends_with("README.md")),
        );
        field("documentation", package.documentation.is_some());
        field(
            "keywords (1 to 5)",
            (1..=5).contains(&package.keywords.len()),
        );
        field("categories", !package.categories.is_empty());
        field("rust-version", package.rust_version.is_some());
        assert!(
            package
                .repository
                .as_ref()
                .is_none_or(|r| !r.contains("example.invalid")),
            "{name} names a placeholder repository"
        );
    }
}
