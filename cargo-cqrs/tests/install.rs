//! Installed from the packages, as a user would: the three crates are packed (`cargo package`),
//! unpacked, and served to cargo in place of crates.io (`[patch.crates-io]`, offline); then
//! `cargo-cqrs` is installed from its package, `cargo cqrs new` writes a service that depends on
//! `cqrs-runtime` by version (no path), and the service is built and tested against the
//! packaged crates. A file missing from a package fails here, not after a release.

mod work;

use work::WorkDir;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PUBLISHED: [&str; 3] = ["cqrs-macros", "cqrs-runtime", "cargo-cqrs"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_owned()
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn ok(what: &str, output: Output) -> String {
    println!(
        "$ {what}\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_service_from_the_installed_packages_builds_and_passes_its_tests() {
    let work = WorkDir::new("install");
    let version = env!("CARGO_PKG_VERSION");

    // Pack the three crates (the test command's publish dry-run verifies each one builds).
    let packages = work.path().join("package-target");
    let mut pack = cargo();
    pack.current_dir(repo())
        .args(["package", "--no-verify", "--allow-dirty", "--offline"])
        .arg("--target-dir")
        .arg(&packages);
    for crate_name in PUBLISHED {
        pack.args(["-p", crate_name]);
    }
    ok("cargo package", pack.output().unwrap());

    // Unpack them where the patch points.
    let crates = work.path().join("crates");
    std::fs::create_dir_all(&crates).unwrap();
    for crate_name in PUBLISHED {
        let file = packages.join(format!("package/{crate_name}-{version}.crate"));
        let mut tar = Command::new("tar");
        tar.arg("xzf").arg(&file).arg("-C").arg(&crates);
        ok(
            &format!("tar xzf {}", file.display()),
            tar.output().unwrap(),
        );
    }
    let unpacked = |name: &str| crates.join(format!("{name}-{version}"));
    let patch = work.path().join("packages.toml");
    let path = |name: &str| serde_json::to_string(&unpacked(name).to_string_lossy()).unwrap();
    std::fs::write(
        &patch,
        format!(
            "[patch.crates-io]\ncqrs-runtime = {{ path = {} }}\ncqrs-macros = {{ path = {} }}\n",
            path("cqrs-runtime"),
            path("cqrs-macros")
        ),
    )
    .unwrap();

    // Install cargo-cqrs from its package.
    let root = work.path().join("root");
    let mut install = cargo();
    install
        .arg("--config")
        .arg(&patch)
        .args(["install", "--offline", "--path"])
        .arg(unpacked("cargo-cqrs"))
        .arg("--root")
        .arg(&root)
        .env("CARGO_TARGET_DIR", repo().join("target/e2e-install"));
    ok("cargo install cargo-cqrs", install.output().unwrap());

    // A new service, as a user outside this repository gets it: a version dependency.
    let mut new = Command::new(root.join("bin/cargo-cqrs"));
    new.current_dir(work.path()).args(["cqrs", "new", "ledger"]);
    ok("cargo cqrs new ledger", new.output().unwrap());
    let service = work.path().join("ledger");
    let manifest = std::fs::read_to_string(service.join("Cargo.toml")).unwrap();
    let dependency = manifest
        .lines()
        .find(|line| line.starts_with("cqrs-runtime"))
        .unwrap_or_else(|| panic!("no cqrs-runtime dependency:\n{manifest}"));
    assert!(
        dependency.contains(&format!("version = \"{version}\"")) && !dependency.contains("path"),
        "the installed cargo-cqrs wrote {dependency}"
    );

    // Built and tested against the packaged crates.
    std::fs::copy(repo().join("Cargo.lock"), service.join("Cargo.lock")).unwrap();
    let mut test = cargo();
    test.current_dir(&service)
        .arg("--config")
        .arg(&patch)
        .args(["test", "--offline"])
        .env("CARGO_TARGET_DIR", repo().join("target/e2e"))
        .env("CARGO_PROFILE_DEV_DEBUG", "line-tables-only");
    ok("cargo test (the service)", test.output().unwrap());
    // The service resolves `cqrs-runtime` to the unpacked package, not to this checkout (its
    // build may be the last run's: the folders keep their paths).
    let mut pkgid = cargo();
    pkgid
        .current_dir(&service)
        .arg("--config")
        .arg(&patch)
        .args(["pkgid", "--offline", "cqrs-runtime"]);
    let resolved = ok("cargo pkgid cqrs-runtime", pkgid.output().unwrap());
    assert!(
        resolved.contains(&*unpacked("cqrs-runtime").to_string_lossy()),
        "the service's cqrs-runtime is {resolved}"
    );
}
