//! How much code a domain takes, with the macros and by hand against the traits, counted after
//! rustfmt (code lines only: no blank or comment lines), for the two comparisons the project
//! publishes:
//! - the README's "How much code" section, whose two blocks are counted and whose sentence
//!   between `<!-- lines: begin -->` and `<!-- lines: end -->` must state the counts;
//! - the bank domain (`examples/bank/src/lib.rs` between `// --- domain: begin/end`) against
//!   `tests/tests/bank_by_hand.rs` (between `// --- by hand: begin/end`), stated in
//!   BENCHMARKS.md between `<!-- bank-lines: begin -->` and `<!-- bank-lines: end -->`, with
//!   the goal of at most 0.6x.
//!
//! `UPDATE_LINES=1 cargo test -p cqrs-tests --test lines` writes the sentences.
//! It also checks that the README's tour domain is `runtime/src/kits/tour.rs`, which the later
//! README blocks use.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn root() -> PathBuf {
    manifest_dir().join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The visible code of the first ```rust block after `marker` (rustdoc's hidden `# ` lines
/// left out).
fn block_after(text: &str, marker: &str) -> String {
    let at = text
        .find(marker)
        .unwrap_or_else(|| panic!("no `{marker}` in the README"));
    let mut lines = text[at..].lines().skip_while(|l| !l.starts_with("```rust"));
    lines.next().expect("a ```rust block after the marker");
    lines
        .take_while(|l| !l.starts_with("```"))
        .filter(|l| !(*l == "#" || l.starts_with("# ")))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The text between each `begin` line and the next `end` line.
fn regions(text: &str, begin: &str, end: &str) -> String {
    let mut inside = false;
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with(begin) {
            inside = true;
        } else if line.starts_with(end) {
            inside = false;
        } else if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(!out.is_empty(), "no `{begin}` region");
    out
}

fn rustfmt(code: &str) -> String {
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2024", "--emit", "stdout"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rustfmt (the toolchain's `rustfmt` component) must be installed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(code.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "rustfmt failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Code lines after rustfmt: neither blank nor only a comment.
fn code_lines(code: &str) -> usize {
    rustfmt(code)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .count()
}

/// Checks (or, with `UPDATE_LINES` set, writes) `sentence` between the two markers of `file`.
fn stated(file: &str, begin: &str, end: &str, sentence: &str) {
    let text = read(file);
    let (Some(b), Some(e)) = (text.find(begin), text.find(end)) else {
        panic!("{file} has no `{begin}` ... `{end}`");
    };
    let current = text[b + begin.len()..e].trim();
    if current == sentence {
        return;
    }
    if std::env::var_os("UPDATE_LINES").is_some() {
        let updated = format!("{}{begin}\n{sentence}\n{}", &text[..b], &text[e..]);
        std::fs::write(root().join(file), updated).unwrap();
        return;
    }
    panic!(
        "{file} states other counts than measured; run `UPDATE_LINES=1 cargo test -p cqrs-tests --test lines`\n  stated: {current}\nmeasured: {sentence}"
    );
}

fn ratio(macros: usize, by_hand: usize) -> f64 {
    macros as f64 / by_hand as f64
}

#[test]
fn the_readme_states_the_line_counts_of_its_two_versions() {
    let readme = read("README.md");
    let macros = code_lines(&block_after(&readme, "<!-- lines: macros -->"));
    let by_hand = code_lines(&block_after(&readme, "<!-- lines: by-hand -->"));
    let ratio = ratio(macros, by_hand);
    assert!(ratio <= 0.6, "the macros take {ratio:.2}x the lines");
    let sentence = format!(
        "With the macros: **{macros} lines**; by hand against the traits: **{by_hand} lines** ({ratio:.2}x). Counted after rustfmt, without blank and comment lines, by `tests/tests/lines.rs`."
    );
    stated(
        "README.md",
        "<!-- lines: begin -->",
        "<!-- lines: end -->",
        &sentence,
    );
}

#[test]
fn the_bank_domain_takes_at_most_six_tenths_of_the_hand_written_lines() {
    let macros = code_lines(&regions(
        &read("examples/bank/src/lib.rs"),
        "// --- domain: begin",
        "// --- domain: end",
    ));
    let by_hand = code_lines(&regions(
        &read("tests/tests/bank_by_hand.rs"),
        "// --- by hand: begin",
        "// --- by hand: end",
    ));
    let ratio = ratio(macros, by_hand);
    let sentence = format!(
        "The bank domain (`examples/bank/src/lib.rs`): **{macros} lines** with the macros, **{by_hand} lines** written by hand against the traits (`tests/tests/bank_by_hand.rs`): **{ratio:.2}x** (goal: at most 0.6x). Counted after rustfmt, without blank and comment lines, by `tests/tests/lines.rs`."
    );
    stated(
        "BENCHMARKS.md",
        "<!-- bank-lines: begin -->",
        "<!-- bank-lines: end -->",
        &sentence,
    );
    assert!(ratio <= 0.6, "the macros take {ratio:.2}x the lines");
}

#[test]
fn the_readme_tour_domain_is_the_one_its_later_blocks_use() {
    let readme = read("README.md");
    let shown = block_after(&readme, "### A domain: commands, events");
    let tour = regions(
        &read("runtime/src/kits/tour.rs"),
        "// --- tour: begin",
        "// --- tour: end",
    );
    assert_eq!(
        shown, tour,
        "the README's domain block and runtime/src/kits/tour.rs differ: keep them identical"
    );
}

/// This package's folder, read where cargo runs the test (a binary reused from another
/// checkout that shares the target directory would otherwise read that checkout's files).
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), Into::into)
}
