//! End to end: `cargo cqrs schema export` then `schema check` on a real crate (the `shop`
//! fixture, built against this checkout's runtime), an incompatible edit that the check
//! refuses with the expected message, and the fix (a version bump with an upcaster) it accepts.
//!
//! The fixture builds in `target/e2e`, shared with the other end-to-end tests and kept between
//! runs.

mod work;

use work::WorkDir;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_cargo-cqrs");

fn repo() -> PathBuf {
    manifest_dir().parent().unwrap().to_path_buf()
}

/// A copy of the fixture in the work folder `name`, with the runtime path filled in.
fn shop(name: &str) -> WorkDir {
    let dir = WorkDir::new(name);
    let fixture = manifest_dir().join("tests/fixtures/shop");
    let manifest = std::fs::read_to_string(fixture.join("Cargo.toml.in"))
        .unwrap()
        .replace("@RUNTIME@", repo().join("runtime").to_str().unwrap());
    std::fs::write(dir.path().join("Cargo.toml"), manifest).unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::copy(fixture.join("src/lib.rs"), dir.path().join("src/lib.rs")).unwrap();
    // The workspace's lock file pins the same dependency versions, so builds are shared.
    std::fs::copy(repo().join("Cargo.lock"), dir.path().join("Cargo.lock")).unwrap();
    dir
}

fn cqrs(dir: &Path, args: &[&str]) -> Output {
    let output = Command::new(BIN)
        .arg("cqrs")
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", repo().join("target/e2e"))
        // Line tables only, as the workspace builds: full debug info of every generated
        // service would take gigabytes of `target/e2e`.
        .env("CARGO_PROFILE_DEV_DEBUG", "line-tables-only")
        .output()
        .unwrap();
    println!(
        "$ cargo cqrs {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Replaces the fixture's event definitions (between its markers) with `events`.
fn edit_events(dir: &Path, events: &str) {
    let path = dir.join("src/lib.rs");
    let source = std::fs::read_to_string(&path).unwrap();
    let start = source.find("// @EVENTS@").unwrap();
    let end = source.find("// @END@").unwrap();
    let edited = format!(
        "{}// @EVENTS@\n{events}\n{}",
        &source[..start],
        &source[end..]
    );
    std::fs::write(path, edited).unwrap();
}

fn files(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut all = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                all.push((path.clone(), std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    all.sort();
    all
}

const PLACED_V1_ONLY_ITEM: &str = r#"
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderPlaced {
    pub item: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderCancelled {}

#[derive(Debug, Clone, PartialEq, Event)]
pub enum OrderEvent {
    Placed(OrderPlaced),
    Cancelled(OrderCancelled),
}

impl OrderPlaced {
    fn from_command(cmd: Place) -> Self {
        let _ = cmd.quantity;
        OrderPlaced { item: cmd.item }
    }
}
"#;

const PLACED_V2_WITH_UPCAST: &str = r#"
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderPlaced {
    pub item: String,
}

/// Version 1, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderPlacedV1 {
    pub item: String,
    pub quantity: u32,
}

impl From<OrderPlacedV1> for OrderPlaced {
    fn from(v1: OrderPlacedV1) -> Self {
        OrderPlaced { item: v1.item }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderCancelled {}

#[derive(Debug, Clone, PartialEq, Event)]
pub enum OrderEvent {
    #[event(version = 2, upcast(v1 = OrderPlacedV1))]
    Placed(OrderPlaced),
    Cancelled(OrderCancelled),
}

impl OrderPlaced {
    fn from_command(cmd: Place) -> Self {
        let _ = cmd.quantity;
        OrderPlaced { item: cmd.item }
    }
}
"#;

const CANCELLED_REMOVED: &str = r#"
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderPlaced {
    pub item: String,
    pub quantity: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderCancelled {}

#[derive(Debug, Clone, PartialEq, Event)]
pub enum OrderEvent {
    Placed(OrderPlaced),
}
"#;

#[test]
fn export_check_refuse_then_accept() {
    let shop = shop("export-check-refuse-then-accept");
    let dir = shop.path();

    let export = cqrs(dir, &["schema", "export"]);
    assert!(export.status.success());
    let out = stdout(&export);
    assert!(
        out.contains("wrote: schemas/order/events/Placed.v1.json"),
        "{out}"
    );
    assert!(
        out.contains("exported 1 aggregate(s), 2 event type(s), 2 command(s) of `shop`"),
        "{out}"
    );
    let first = files(&dir.join("schemas"));
    let names: Vec<String> = first
        .iter()
        .map(|(p, _)| p.strip_prefix(dir).unwrap().display().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "schemas/asyncapi.json",
            "schemas/index.json",
            "schemas/order/commands/Cancel.json",
            "schemas/order/commands/Place.json",
            "schemas/order/events/Cancelled.v1.json",
            "schemas/order/events/Placed.v1.json",
        ]
    );
    let asyncapi: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("schemas/asyncapi.json")).unwrap())
            .unwrap();
    assert_eq!(asyncapi["asyncapi"], "3.0.0");
    assert_eq!(asyncapi["channels"]["order"]["address"], "order");
    assert_eq!(
        asyncapi["components"]["messages"]["order.Placed"]["payload"]["schema"]["$ref"],
        "./order/events/Placed.v1.json"
    );

    // Deterministic: a second export changes nothing, byte for byte.
    let again = cqrs(dir, &["schema", "export"]);
    assert!(stdout(&again).contains("(0 file(s) changed, 6 unchanged)"));
    assert_eq!(files(&dir.join("schemas")), first);

    let check = cqrs(dir, &["schema", "check"]);
    assert_eq!(check.status.code(), Some(0));
    assert!(stdout(&check).contains("0 error(s), 0 note(s)"));

    // A field removed from a stored version: refused, with the fix.
    edit_events(dir, PLACED_V1_ONLY_ITEM);
    std::fs::write(
        dir.join("src/lib.rs"),
        std::fs::read_to_string(dir.join("src/lib.rs"))
            .unwrap()
            .replace(
                "Ok(OrderPlaced {\n            item: cmd.item,\n            quantity: cmd.quantity,\n        })",
                "Ok(OrderPlaced::from_command(cmd))",
            ),
    )
    .unwrap();
    let refused = cqrs(dir, &["schema", "check"]);
    assert_eq!(refused.status.code(), Some(1));
    let out = stdout(&refused);
    assert!(
        out.contains(
            "error: event `Placed` v1 of `order`: stored shape changed: field `quantity` removed"
        ),
        "{out}"
    );
    assert!(
        out.contains("bump the event to `version = 2` and add an upcaster from v1"),
        "{out}"
    );
    // It points at the stored version in the committed index.
    assert!(out.contains("╭─[schemas/index.json:"), "{out}");
    assert!(
        out.contains(r#""schema": "order/events/Placed.v1.json","#),
        "{out}"
    );
    assert!(out.contains("as the export records it"), "{out}");

    let json = cqrs(dir, &["schema", "check", "--message-format", "json"]);
    assert_eq!(json.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["errors"], 1);
    assert_eq!(report["findings"][0]["level"], "error");
    assert_eq!(report["findings"][0]["item"], "event `Placed` v1");

    // The fix: version 2 with an upcaster from the stored shape.
    edit_events(dir, PLACED_V2_WITH_UPCAST);
    let accepted = cqrs(dir, &["schema", "check"]);
    assert_eq!(accepted.status.code(), Some(0));
    let out = stdout(&accepted);
    assert!(
        out.contains("note: event `Placed` v2 of `order`: new version"),
        "{out}"
    );
    assert!(out.contains("0 error(s), 1 note(s)"), "{out}");
}

#[test]
fn a_removed_event_type_is_refused() {
    let shop = shop("a-removed-event-type-is-refused");
    let dir = shop.path();
    assert!(cqrs(dir, &["schema", "export"]).status.success());
    edit_events(dir, CANCELLED_REMOVED);
    std::fs::write(
        dir.join("src/lib.rs"),
        std::fs::read_to_string(dir.join("src/lib.rs"))
            .unwrap()
            .replace("    fn cancelled(&mut self, _: &OrderCancelled) {}\n", "")
            .replace(
                "fn cancel(&self, _: Cancel) -> Result<OrderCancelled, Refused> {\n        Ok(OrderCancelled {})",
                "fn cancel(&self, _: Cancel) -> Result<(), Refused> {\n        Ok(())",
            ),
    )
    .unwrap();
    let refused = cqrs(dir, &["schema", "check"]);
    assert_eq!(refused.status.code(), Some(1));
    let out = stdout(&refused);
    assert!(
        out.contains(
            "error: event `Cancelled` of `order`: removed, but stored events may still hold it"
        ),
        "{out}"
    );
    assert!(out.contains("alias = \"Cancelled\""), "{out}");
}

#[test]
fn helpful_errors_outside_a_crate_with_aggregates() {
    let empty = tempfile::tempdir().unwrap();
    let output = cqrs(empty.path(), &["schema", "export"]);
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("error: cannot read the package's metadata"),
        "{err}"
    );
    assert!(err.contains("help: run it inside a Cargo package"), "{err}");

    let shop = shop("helpful-errors");
    let output = cqrs(shop.path(), &["schema", "check"]);
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("error: there is no schema export in"), "{err}");
    assert!(
        err.contains("help: run `cargo cqrs schema export` first"),
        "{err}"
    );

    let output = cqrs(repo().as_path(), &["schema", "export", "-p", "nope"]);
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("error: no package `nope` in this workspace"),
        "{err}"
    );
    assert!(err.contains("cqrs-example-bank"), "{err}");
}

/// The README's example: the bank's committed export matches its code.
#[test]
fn the_bank_example_matches_its_committed_schemas() {
    let output = cqrs(
        repo().as_path(),
        &["schema", "check", "-p", "cqrs-example-bank"],
    );
    assert_eq!(output.status.code(), Some(0));
    assert!(
        stdout(&output)
            .contains("schema check of `cqrs-example-bank` against schemas: 0 error(s), 0 note(s)")
    );
}

/// `cargo cqrs strimzi` on the bank: its aggregate's topic with the settings of
/// `[package.metadata.cqrs.topics.bank_account]`, and the dead-letter topic beside it.
#[test]
fn strimzi_manifests_of_the_bank_use_its_topic_settings() {
    let output = cqrs(
        repo().as_path(),
        &["strimzi", "-p", "cqrs-example-bank", "--namespace", "bank"],
    );
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let yaml = stdout(&output);
    assert!(
        yaml.contains("apiVersion: kafka.strimzi.io/v1\nkind: Kafka\n"),
        "{yaml}"
    );
    assert!(yaml.contains("kind: KafkaNodePool\n"), "{yaml}");
    let topic = yaml
        .split("\n---\n")
        .find(|doc| doc.contains("  name: bank-account\n"))
        .expect("the bank-account KafkaTopic");
    assert!(topic.contains("kind: KafkaTopic\n"), "{topic}");
    assert!(topic.contains("  partitions: 12\n"), "{topic}");
    assert!(
        topic.contains("    retention.ms: \"2592000000\"\n"),
        "{topic}"
    );
    assert!(topic.contains("  namespace: bank\n"), "{topic}");
    assert!(
        yaml.contains("  name: bank-account-dead-letter\n"),
        "{yaml}"
    );
}

/// This package's folder, read where cargo runs the test (a binary reused from another
/// checkout that shares the target directory would otherwise read that checkout's files).
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), Into::into)
}

/// `--features` and `--all-features` reach the schema reader's build; a feature the package
/// does not have is refused with the list of those it has.
#[test]
fn features_choose_what_is_exported() {
    let shop = shop("features-choose-what-is-exported");
    let dir = shop.path();
    let plain = cqrs(dir, &["schema", "export"]);
    assert!(
        stdout(&plain).contains("exported 1 aggregate(s), 2 event type(s), 2 command(s)"),
        "{}",
        stdout(&plain)
    );
    assert!(!dir.join("schemas/gift_card").exists());

    for flags in [&["--features", "gift-cards"][..], &["--all-features"]] {
        let args: Vec<&str> = ["schema", "export"].iter().chain(flags).copied().collect();
        let export = cqrs(dir, &args);
        assert!(export.status.success(), "{flags:?}");
        assert!(
            stdout(&export).contains("exported 2 aggregate(s), 3 event type(s), 3 command(s)"),
            "{flags:?}: {}",
            stdout(&export)
        );
    }
    assert!(
        dir.join("schemas/gift_card/events/Issued.v1.json")
            .is_file()
    );
    // Checked without the feature, the gift card aggregate is gone: refused.
    let check = cqrs(dir, &["schema", "check"]);
    assert_eq!(check.status.code(), Some(1));
    assert!(
        stdout(&check).contains("error: aggregate `gift_card` of `gift_card`: removed"),
        "{}",
        stdout(&check)
    );
    let check = cqrs(dir, &["schema", "check", "-F", "gift-cards"]);
    assert_eq!(check.status.code(), Some(0));

    let unknown = cqrs(
        dir,
        &["schema", "check", "--features", "gift-cards,loyalty"],
    );
    assert_eq!(unknown.status.code(), Some(2));
    let err = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        err.starts_with("error: package `shop` has no feature `loyalty`\n"),
        "{err}"
    );
    assert!(err.contains("help: its features are: gift-cards"), "{err}");
}

/// `--locked` and `--frozen`: the schema reader resolves every package the crate's
/// `Cargo.lock` pins to that version, or the command fails naming the package.
#[test]
fn locked_reads_keep_the_lock_file() {
    let shop = shop("locked-reads-keep-the-lock-file");
    let dir = shop.path();
    // The fixture's lock file is the workspace's; bring it to the shop's own resolution, as
    // a build of the shop would.
    let update = Command::new(env!("CARGO"))
        .args(["update", "--workspace", "--offline"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(update.status.success(), "{update:?}");
    assert!(
        cqrs(dir, &["schema", "export", "--locked"])
            .status
            .success()
    );
    let frozen = cqrs(dir, &["schema", "check", "--frozen"]);
    assert_eq!(frozen.status.code(), Some(0));

    // A lock file that pins a version the crate's requirements exclude (as after a
    // requirement was raised in Cargo.toml without a build).
    let lock = std::fs::read_to_string(dir.join("Cargo.lock")).unwrap();
    let start = lock.find("name = \"itoa\"\nversion = \"").unwrap();
    let end = start + lock[start..].find("\nsource").unwrap();
    let stale = format!(
        "{}name = \"itoa\"\nversion = \"0.4.8\"{}",
        &lock[..start],
        &lock[end..]
    );
    std::fs::write(dir.join("Cargo.lock"), stale).unwrap();
    let refused = cqrs(dir, &["schema", "check", "--locked", "--offline"]);
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.starts_with(
            "error: `--locked` was given, but Cargo.lock is not up to date (itoa: pinned 0.4.8, resolved 1."
        ),
        "{err}"
    );
    assert!(err.contains("help: run `cargo build`"), "{err}");
    // Without `--locked`, the reader resolves what it needs.
    assert_eq!(
        cqrs(dir, &["schema", "check", "--offline"]).status.code(),
        Some(0)
    );
}
