//! The command line: clap's own consistency check, every case under `tests/cmd/` (the
//! `--help` texts and error cases) as snapshots (refresh with `TRYCMD=overwrite`), and the
//! README's `cargo cqrs add` on the service `cargo cqrs new` writes.

use std::path::Path;
use std::process::{Command, Output};

#[test]
fn clap_definition_is_consistent() {
    use clap::CommandFactory;
    cargo_cqrs::Cargo::command().debug_assert();
}

#[test]
fn cli_cases() {
    trycmd::TestCases::new()
        .register_bin("cargo-cqrs", trycmd::cargo::cargo_bin!("cargo-cqrs"))
        .case("tests/cmd/*.toml");
}

fn cargo_cqrs(cwd: &Path, args: &[&str], code: i32) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_cargo-cqrs"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(code),
        "cargo-cqrs {args:?}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The README's `cargo cqrs add command` on a service as `cargo cqrs new` writes it: the input
/// comes from the templates themselves (no copy to drift), and what `add` prints and writes is
/// compared with `tests/readme-add/`: the whole aggregate module, and the test `add` appends
/// to the service's test file. Then two refused `add`s on the same service, each with its
/// message and nothing written.
#[test]
fn readme_add_on_a_new_service() {
    let dir = tempfile::tempdir().unwrap();
    let new = ["cqrs", "new", "order-service", "--runtime-version", "0.1.0"];
    cargo_cqrs(dir.path(), &new, 0);
    let service = dir.path().join("order-service");
    let tests_before = read(&service.join("tests/task.rs"));
    let add = [
        "cqrs",
        "add",
        "command",
        "Archive",
        "--to",
        "task",
        "reason:String",
    ];
    let output = cargo_cqrs(&service, &add, 0);
    let expected = Path::new("tests/readme-add");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        read(&expected.join("expected.stdout"))
    );
    assert_eq!(
        read(&service.join("src/task.rs")),
        read(&expected.join("expected/src/task.rs")),
        "src/task.rs after `add` differs from tests/readme-add/expected/src/task.rs"
    );
    let tests_after = read(&service.join("tests/task.rs"));
    assert_eq!(
        tests_after.strip_prefix(&tests_before),
        Some(read(&expected.join("expected/tests/task.appended.rs")).as_str()),
        "`add` must append the test of tests/readme-add/expected/tests/task.appended.rs"
    );

    for (case, args) in [
        ("add-twice", &["cqrs", "add", "aggregate", "Task"][..]),
        (
            "add-bad-field",
            &["cqrs", "add", "aggregate", "Project", "budget:money"][..],
        ),
    ] {
        let output = cargo_cqrs(&service, args, 2);
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            read(&expected.join(format!("{case}.stderr"))),
            "{case}"
        );
        assert_eq!(
            read(&service.join("tests/task.rs")),
            tests_after,
            "{case} wrote"
        );
    }

    // A module that does not parse: the error shows the line, marked where syn stopped.
    let module = read(&service.join("src/task.rs"));
    let broken = module.replacen("impl Task {", "impl Task {\n    fn broken( {", 1);
    std::fs::write(service.join("src/task.rs"), &broken).unwrap();
    let output = cargo_cqrs(
        &service,
        &["cqrs", "add", "event", "Closed", "--to", "task"],
        2,
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        read(&expected.join("add-unparsable.stderr")),
    );
    assert_eq!(
        read(&service.join("src/task.rs")),
        broken,
        "nothing written"
    );
    std::fs::write(service.join("src/task.rs"), &module).unwrap();

    // From outside the package, with `--manifest-path`, reported as JSON.
    let add_closed = ["cqrs", "add", "event", "Closed", "--to", "task"];
    let json = ["--message-format", "json"];
    let from_outside = ["--manifest-path", "order-service/Cargo.toml"];
    let output = cargo_cqrs(
        dir.path(),
        &[&add_closed[..], &from_outside, &json].concat(),
        0,
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["package"], "order-service");
    assert_eq!(report["added"], serde_json::json!([]));
    assert_eq!(
        report["injected"],
        serde_json::json!(["src/task.rs", "tests/task.rs"])
    );
    assert!(read(&service.join("src/task.rs")).contains("Closed"));

    // Errors as JSON on the standard error.
    let output = cargo_cqrs(&service, &[&add_closed[..], &json].concat(), 2);
    assert!(output.stdout.is_empty());
    let error: serde_json::Value = serde_json::from_slice(&output.stderr).unwrap();
    assert_eq!(error["severity"], "error");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("`TaskEvent::Closed` already exists"),
        "{error}"
    );
    assert!(
        error["help"]
            .as_str()
            .unwrap()
            .starts_with("nothing was written")
    );
}
