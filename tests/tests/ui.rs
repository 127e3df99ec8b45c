//! Compile tests, each file a library crate, as users write domains.
//!
//! - Compile-fail: one mistake per file under `tests/ui/<category>/`, beside the exact compiler
//!   output it must produce (`<mistake>.stderr`). Refresh with `UI=overwrite` and read every diff.
//! - Pass: one domain shape per file under `tests/pass/`, which must compile without an error or
//!   a warning.
//!
//! Every case becomes a member of one throwaway workspace under the target directory, with the
//! case file as its `lib.rs`, and one `cargo check --keep-going --message-format json` checks
//! them all; each crate's diagnostics are then normalized (paths, the toolchain's and registry's
//! sources, line numbers outside the case) and compared. trybuild does the same for binaries
//! only: a `fn main` changes what rustc reports (dead code, and how some errors are grouped).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The dependencies a case may use, with the versions the workspace's lock file pins.
const DEPENDENCIES: &str = r#"
bank = { package = "cqrs-example-bank", path = "{repo}/examples/bank" }
chrono = { version = "0.4", default-features = false, features = ["clock", "serde", "std"] }
cqrs-runtime = { path = "{repo}/runtime", features = ["schema", "testing"] }
futures = "0.3"
schemars = "1"
serde = { version = "1", features = ["derive"] }
serde_json = "1"
sqlx = { version = "0.8", default-features = false, features = ["runtime-tokio", "sqlite", "postgres"] }
thiserror = "2"
tokio = { version = "1", features = ["rt", "macros", "sync", "time"] }
tracing = { version = "0.1", default-features = false, features = ["std"] }
uuid = { version = "1", features = ["v7", "serde"] }
"#;

struct Case {
    /// `<category>/<mistake>` or `pass/<shape>`.
    name: String,
    path: PathBuf,
    /// The crate's library name in cargo's messages.
    lib: String,
    pass: bool,
}

#[test]
fn ui() {
    let tests = &manifest_dir();
    let repo = tests.parent().unwrap();
    let mut cases = Vec::new();
    for category in sorted_dir(&tests.join("tests/ui")) {
        let category_name = file_name(&category);
        for file in sorted_dir(&category) {
            if file.extension().is_some_and(|e| e == "rs") {
                cases.push(case(&category_name, file, false));
            }
        }
    }
    for file in sorted_dir(&tests.join("tests/pass")) {
        cases.push(case("pass", file, true));
    }
    assert!(
        cases.len() > 100,
        "the suite is under tests/ui and tests/pass"
    );

    let project = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui");
    write_project(&project, repo, &cases);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "check",
            "--workspace",
            "--keep-going",
            "--message-format=json",
        ])
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", project.join("target"))
        // The cases' own diagnostics are the subject; the environment must not add any.
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo runs");
    let mut reports = diagnostics(&String::from_utf8_lossy(&output.stdout));
    let normalize = Normalizer::new(repo);
    let overwrite = std::env::var("UI").is_ok_and(|v| v == "overwrite");

    let mut failures = Vec::new();
    for case in &cases {
        let messages = reports.remove(&case.lib);
        if case.pass {
            if let Some(messages) = messages {
                let text = normalize.all(&messages);
                failures.push(format!(
                    "{}: a pass case must compile without diagnostics:\n{text}",
                    case.name
                ));
            }
            continue;
        }
        let Some(messages) = messages else {
            failures.push(format!("{}: compiled without an error", case.name));
            continue;
        };
        let actual = normalize.all(&messages);
        let expected_path = case.path.with_extension("stderr");
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if actual == expected {
            continue;
        }
        if overwrite {
            std::fs::write(&expected_path, &actual).unwrap();
            println!("wrote {}", expected_path.display());
        } else {
            failures.push(format!(
                "{}: the compiler's output differs from {}\n--- expected\n{expected}\n--- actual\n{actual}",
                case.name,
                expected_path.display()
            ));
        }
    }
    if !reports.is_empty() && !output.status.success() {
        // A crate that is not a case failed: the project itself (a dependency) is broken.
        let stderr = String::from_utf8_lossy(&output.stderr);
        failures.push(format!(
            "diagnostics outside the cases ({:?}):\n{stderr}",
            reports.keys().collect::<Vec<_>>()
        ));
    }
    assert!(
        failures.is_empty(),
        "{} of {} UI cases failed (refresh expectations with UI=overwrite):\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

fn case(category: &str, path: PathBuf, pass: bool) -> Case {
    let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
    Case {
        name: format!("{category}/{stem}"),
        lib: format!("ui_{category}_{stem}").replace('-', "_"),
        path,
        pass,
    }
}

fn sorted_dir(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    entries
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// One workspace, one library crate per case, the repository's lock file.
fn write_project(project: &Path, repo: &Path, cases: &[Case]) {
    let members = project.join("cases");
    // Cases removed since the last run must not linger as members.
    let _ = std::fs::remove_dir_all(&members);
    std::fs::create_dir_all(&members).unwrap();
    std::fs::write(
        project.join("Cargo.toml"),
        "[workspace]\nresolver = \"3\"\nmembers = [\"cases/*\"]\n\n[profile.dev]\ndebug = false\n",
    )
    .unwrap();
    std::fs::copy(repo.join("Cargo.lock"), project.join("Cargo.lock")).unwrap();
    let dependencies = DEPENDENCIES.replace("{repo}", &repo.display().to_string());
    for case in cases {
        let dir = members.join(case.lib.replace('_', "-"));
        std::fs::create_dir_all(&dir).unwrap();
        let manifest = format!(
            "[package]\nname = \"{}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n[lib]\nname = \"{}\"\npath = \"{}\"\ndoctest = false\n\n[dependencies]{dependencies}",
            case.lib.replace('_', "-"),
            case.lib,
            case.path.display(),
        );
        std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    }
}

/// Each library's rendered diagnostics, in the order rustc gave them, without the closing
/// summaries ("aborting due to ...", "N warnings emitted", "For more information ...").
fn diagnostics(stdout: &str) -> BTreeMap<String, Vec<String>> {
    let mut reports: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in stdout.lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-message" {
            continue;
        }
        let diagnostic = &message["message"];
        let text = diagnostic["message"].as_str().unwrap_or_default();
        let level = diagnostic["level"].as_str().unwrap_or_default();
        if level == "failure-note"
            || text.starts_with("aborting due to")
            || (text.ends_with("emitted") && text.contains("warning"))
        {
            continue;
        }
        let lib = message["target"]["name"].as_str().unwrap_or_default();
        let rendered = diagnostic["rendered"].as_str().unwrap_or_default();
        reports
            .entry(lib.to_owned())
            .or_default()
            .push(rendered.to_owned());
    }
    reports
}

/// Makes the output independent of where the repository, the toolchain and the registry are,
/// and of line numbers outside the case (which change with every edit of the runtime).
struct Normalizer {
    replacements: Vec<(String, String)>,
}

impl Normalizer {
    fn new(repo: &Path) -> Self {
        let repo = repo.display().to_string();
        let mut replacements = vec![
            (format!("{repo}/tests/tests/"), "tests/".to_owned()),
            (format!("{repo}/"), "$WORKSPACE/".to_owned()),
        ];
        let cargo_home = std::env::var("CARGO_HOME")
            .unwrap_or_else(|_| format!("{}/.cargo", std::env::var("HOME").unwrap_or_default()));
        let registry = Path::new(&cargo_home).join("registry/src");
        if let Ok(indexes) = std::fs::read_dir(&registry) {
            for index in indexes.flatten() {
                replacements.push((format!("{}/", index.path().display()), "$CARGO/".into()));
            }
        }
        if let Ok(out) = Command::new("rustc").args(["--print", "sysroot"]).output() {
            let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            replacements.push((
                format!("{sysroot}/lib/rustlib/src/rust/library/"),
                "$RUST/".into(),
            ));
        }
        Normalizer { replacements }
    }

    fn all(&self, messages: &[String]) -> String {
        let mut text = String::new();
        for message in messages {
            let message = self.one(message);
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(message.trim_end());
            text.push('\n');
        }
        text
    }

    fn one(&self, message: &str) -> String {
        let mut message = message.to_owned();
        for (from, to) in &self.replacements {
            message = message.replace(from, to);
        }
        let mut out = String::new();
        // Inside a snippet of a file other than the case's: its line numbers are dropped.
        let mut foreign = false;
        for line in message.lines() {
            // Where rustc writes a long type name depends on the run (a hashed file name), and
            // whether it does on how the output is read.
            if line.contains("the full name for the type has been written to")
                || line.contains("consider using `--verbose` to print the full type name")
            {
                continue;
            }
            let line = &rustc_source(line);
            let trimmed = line.trim_start();
            if let Some(location) = trimmed.strip_prefix("--> ") {
                foreign = !location.starts_with("tests/");
                if foreign {
                    let indent = &line[..line.len() - trimmed.len()];
                    let path = location.split(':').next().unwrap_or(location);
                    let _ = writeln!(out, "{indent}--> {path}");
                    continue;
                }
            } else if foreign && !is_gutter(line) {
                foreign = false;
            }
            if foreign {
                let _ = writeln!(out, "{}", strip_line_number(line));
            } else {
                let _ = writeln!(out, "{}", and_n_others(line));
            }
        }
        out
    }
}

/// `/rustc/<commit>/library/` (the standard library's remapped sources) as `$RUST/`.
fn rustc_source(line: &str) -> String {
    match line.find("/rustc/") {
        Some(start) => {
            let rest = &line[start + "/rustc/".len()..];
            match rest.find("/library/") {
                Some(end) if rest[..end].chars().all(|c| c.is_ascii_hexdigit()) => format!(
                    "{}$RUST/{}",
                    &line[..start],
                    &rest[end + "/library/".len()..]
                ),
                _ => line.to_owned(),
            }
        }
        None => line.to_owned(),
    }
}

/// A snippet line: `NN | code`, `   | label`, or `...`.
fn is_gutter(line: &str) -> bool {
    let trimmed = line.trim_start();
    trimmed == "..."
        || trimmed.starts_with('|')
        || trimmed
            .split_once(" |")
            .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        || trimmed.split_once(" |").is_none()
            && trimmed.chars().all(|c| c.is_ascii_digit())
            && !trimmed.is_empty()
}

fn strip_line_number(line: &str) -> String {
    match line.split_once(" |") {
        Some((number, rest)) if number.trim().chars().all(|c| c.is_ascii_digit()) => {
            format!("{} |{rest}", " ".repeat(number.len()))
        }
        _ => line.to_owned(),
    }
}

/// rustc's "and 12 others" depends on what else the toolchain implements.
fn and_n_others(line: &str) -> String {
    let trimmed = line.trim_start();
    match trimmed
        .strip_prefix("and ")
        .and_then(|rest| rest.split_once(" others"))
    {
        Some((n, rest)) if n.chars().all(|c| c.is_ascii_digit()) => {
            format!("{}and $N others{rest}", &line[..line.len() - trimmed.len()])
        }
        _ => line.to_owned(),
    }
}

/// This package's folder, read where cargo runs the test (a binary reused from another
/// checkout that shares the target directory would otherwise read that checkout's files).
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), Into::into)
}
