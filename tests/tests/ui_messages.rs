//! What the compile-fail suite's expectations may say: each mistake gives one error, and no
//! message names the runtime's hidden `__private` module. Cases that do not meet this yet are
//! listed below, each with the reason; the list only shrinks. (The expectations themselves are
//! checked by `ui.rs`; this reads the `.stderr` files it compares against.)

/// Cases with more than one error, and why.
const SEVERAL_ERRORS: &[(&str, &str)] = &[
    (
        "aggregate/id-without-display",
        "`Display` and `FromStr` are two bounds of `Aggregate::Id`, and rustc checks an associated type's bounds one by one where it is set",
    ),
    (
        "aggregate/services-not-send",
        "`Send` and `Sync` are two bounds of `Aggregate::Services`, checked one by one where it is set; the handlers' future, which holds the context, is then not `Send` either",
    ),
    (
        "handlers/handler-takes-an-event-payload",
        "the handler's type is no command (reported at it), so the command it was meant for is also reported as unhandled: which one it was meant for is not in the code",
    ),
    (
        "handlers/forgotten-handlers-attribute",
        "without `#[handlers]` no method is a handler, and each command and event the aggregate routes is reported unhandled, at `command = ...` and `event = ...`: which of them have no handler is a fact per type",
    ),
    (
        "handlers/misspelled-handlers-attribute",
        "rustc's own error for the unknown attribute, then each command and event reported unhandled, as without `#[handlers]`",
    ),
    (
        "handlers/applier-without-event",
        "an applier without its event parameter names no type, so the event it was meant for is also reported as not applied",
    ),
    (
        "event/unit-variant-payload-clashes-with-a-command",
        "a command and an event variant of one name: the two derives' glob re-exports make the name ambiguous at every use, which rustc reports each time; neither derive sees the other enum",
    ),
    (
        "process/sends-to-not-an-aggregate",
        "a type in `sends(...)` that is no aggregate is reported where it is listed, and each `effects.send` then finds no aggregate to send to: the list is searched by trait resolution, which cannot skip an entry that is no aggregate",
    ),
];

/// Cases whose output names `__private`, and why.
const NAMES_PRIVATE: &[(&str, &str)] = &[];

fn cases() -> Vec<(String, String)> {
    let root = manifest_dir().join("tests/ui");
    let mut cases = Vec::new();
    for category in std::fs::read_dir(&root).unwrap() {
        let category = category.unwrap().path();
        for file in std::fs::read_dir(&category).unwrap() {
            let file = file.unwrap().path();
            if file.extension().is_some_and(|e| e == "stderr") {
                let name = format!(
                    "{}/{}",
                    category.file_name().unwrap().to_string_lossy(),
                    file.file_stem().unwrap().to_string_lossy()
                );
                cases.push((name, std::fs::read_to_string(&file).unwrap()));
            }
        }
    }
    cases.sort();
    assert!(cases.len() > 50, "the suite is under tests/ui");
    cases
}

#[test]
fn every_listed_case_exists() {
    let cases = cases();
    for (case, _) in SEVERAL_ERRORS.iter().chain(NAMES_PRIVATE) {
        assert!(
            cases.iter().any(|(name, _)| name == case),
            "`{case}` is listed but has no .stderr"
        );
    }
}

fn errors(stderr: &str) -> usize {
    stderr
        .lines()
        .filter(|l| l.starts_with("error:") || l.starts_with("error["))
        .count()
}

fn listed(list: &[(&str, &str)], name: &str) -> bool {
    list.iter().any(|(case, _)| *case == name)
}

#[test]
fn every_mistake_gives_one_error() {
    let cases = cases();
    let several: Vec<String> = cases
        .iter()
        .filter(|(name, stderr)| errors(stderr) > 1 && !listed(SEVERAL_ERRORS, name))
        .map(|(name, stderr)| format!("{name}: {} errors", errors(stderr)))
        .collect();
    assert!(
        several.is_empty(),
        "cases with more than one error: {several:#?}"
    );
    let none: Vec<&String> = cases
        .iter()
        .filter(|(_, stderr)| errors(stderr) == 0)
        .map(|(name, _)| name)
        .collect();
    assert!(
        none.is_empty(),
        "compile-fail cases without an error: {none:?}"
    );
    // The list only shrinks: a listed case that now gives one error leaves it.
    let stale: Vec<&str> = SEVERAL_ERRORS
        .iter()
        .map(|(case, _)| *case)
        .filter(|case| cases.iter().any(|(n, s)| n == case && errors(s) <= 1))
        .collect();
    assert!(
        stale.is_empty(),
        "now one error, remove from SEVERAL_ERRORS: {stale:?}"
    );
}

#[test]
fn no_message_names_the_private_module() {
    let cases = cases();
    let private: Vec<&String> = cases
        .iter()
        .filter(|(name, stderr)| stderr.contains("__private") && !listed(NAMES_PRIVATE, name))
        .map(|(name, _)| name)
        .collect();
    assert!(private.is_empty(), "cases naming `__private`: {private:?}");
    let stale: Vec<&str> = NAMES_PRIVATE
        .iter()
        .map(|(case, _)| *case)
        .filter(|case| {
            cases
                .iter()
                .any(|(n, s)| n == case && !s.contains("__private"))
        })
        .collect();
    assert!(
        stale.is_empty(),
        "no longer names `__private`, remove from NAMES_PRIVATE: {stale:?}"
    );
}

/// The README's section on compiler messages quotes real ones: each ```` ```text ```` block
/// after a `<!-- ui: <case> -->` line is that case's expectation, character for character.
#[test]
fn the_readme_quotes_the_suite() {
    let readme = std::fs::read_to_string(manifest_dir().join("../README.md")).unwrap();
    let cases = cases();
    let mut quoted = 0;
    for (at, _) in readme.match_indices("<!-- ui: ") {
        let rest = &readme[at + "<!-- ui: ".len()..];
        let case = rest.split(" -->").next().unwrap();
        let block = rest
            .split_once("```text\n")
            .and_then(|(_, b)| b.split_once("```"))
            .map(|(b, _)| b)
            .unwrap_or_else(|| panic!("no ```text block after the quote of `{case}`"));
        let (_, stderr) = cases
            .iter()
            .find(|(name, _)| name == case)
            .unwrap_or_else(|| panic!("the README quotes `{case}`, which is not in the suite"));
        assert_eq!(
            block, stderr,
            "the README's quote of `{case}` is not its expectation"
        );
        quoted += 1;
    }
    assert!(quoted >= 2, "the README quotes {quoted} messages");
}

/// This package's folder, read where cargo runs the test (a binary reused from another
/// checkout that shares the target directory would otherwise read that checkout's files).
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), Into::into)
}
