//! The layer rule of `runtime/src`, checked: lower layers never import higher ones, and
//! siblings of one layer never import each other.
//!
//! | layer | folders |
//! | --- | --- |
//! | 0 | `contract` (aggregate, command, event, error, store, schema), `observe` (metrics, health) |
//! | 1 | `repository`, `projection` |
//! | 2 | `stores`, `bus` |
//! | 3 | `process` (process managers: they follow the log and the bus) |
//! | 4 | `kits` (test kits), `private.rs` (macro support), the root's re-exports |
//!
//! A file may name its own folder and any folder of a lower layer. The check reads every
//! `crate::` path outside comments (in `use` lines and in code alike) and names each
//! offending line.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The layer of a top-level module of `src`; `None` for a name that is not a module (an
/// item the root re-exports).
fn layer_of_module(name: &str) -> Option<u8> {
    Some(match name {
        "contract" | "observe" => 0,
        "repository" | "projection" => 1,
        "stores" | "bus" => 2,
        "process" => 3,
        "kits" | "__private" => 4,
        _ => return None,
    })
}

/// The root's re-exports are the public face, above everything but the top layer.
const ROOT_ITEMS: u8 = 4;

/// The folder (top-level module) a source file belongs to.
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next().unwrap().as_os_str();
    let first = first.to_string_lossy();
    match first.strip_suffix(".rs") {
        Some("private") => "__private".to_owned(),
        Some(module) => module.to_owned(),
        None => first.into_owned(),
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The first segment of every `crate::` path in `code`, with its line number; a group
/// `crate::{a::x, b}` gives each of its members.
fn crate_paths(code: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut rest = code;
    let mut offset = 0;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        let line = code[..offset + at].matches('\n').count() + 1;
        if let Some(group) = after.strip_prefix('{') {
            let mut depth = 1;
            let mut member_start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' | ',' if depth == 1 => {
                        let member = ident(&group[member_start..i]);
                        if !member.is_empty() {
                            found.push((line, member));
                        }
                        member_start = i + 1;
                        if c == '}' {
                            break;
                        }
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
        } else {
            found.push((line, ident(after)));
        }
        offset += at + "crate::".len();
        rest = &code[offset..];
    }
    found
}

/// The file without its `//` comments (doc links may point anywhere).
fn without_comments(text: &str) -> String {
    text.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn lower_layers_never_import_higher_ones() {
    // Where cargo runs the test from, read at run time: a binary reused from another checkout
    // that shares the target directory would otherwise read that checkout's files.
    let manifest = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned());
    let src = Path::new(&manifest).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(files.len() > 20, "read only {} files", files.len());

    let mut checked = BTreeMap::new();
    let mut violations = Vec::new();
    for file in &files {
        if file.ends_with("lib.rs") {
            continue;
        }
        let module = module_of(&src, file);
        let own = layer_of_module(&module).unwrap_or_else(|| {
            panic!(
                "{} is in no layer; add `{module}` to the table",
                file.display()
            )
        });
        let code = without_comments(&fs::read_to_string(file).unwrap());
        for (line, target) in crate_paths(&code) {
            *checked.entry(module.clone()).or_insert(0) += 1;
            if target == module || target == "self" {
                continue;
            }
            let allowed = match layer_of_module(&target) {
                Some(layer) => layer < own,
                None => ROOT_ITEMS <= own,
            };
            if !allowed {
                violations.push(format!(
                    "{}:{line}: `{module}` (layer {own}) uses `crate::{target}`",
                    file.strip_prefix(&src).unwrap().display()
                ));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports against the layer rule (see ARCHITECTURE.md):\n{}",
        violations.join("\n")
    );
    // The check saw the imports it is about.
    for module in ["projection", "stores", "bus", "kits"] {
        assert!(
            checked.get(module).copied().unwrap_or(0) > 0,
            "no import read in `{module}`"
        );
    }
}

#[test]
fn the_scanner_reads_groups_and_paths() {
    let code = "use crate::contract::event::X;\nuse crate::{bus::Y, stores::{sql, memory}};\nlet x = $crate::projection::Z;";
    let found: Vec<String> = crate_paths(code).into_iter().map(|(_, m)| m).collect();
    assert_eq!(found, ["contract", "bus", "stores", "projection"]);
    assert_eq!(
        crate_paths(&without_comments("// crate::bus::X\nfoo();")),
        []
    );
}
