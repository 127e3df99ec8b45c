//! `cargo cqrs schema check`: the crate's events and commands against the export committed in
//! the repository. Stored events are never rewritten, so every event type and version the
//! export recorded must still be readable, each with the shape it was stored in, and every
//! older version must have an upcast path to the current one.

use std::path::Path;

use miette::{Diagnostic, LabeledSpan, NamedSource, Severity, SourceCode, SourceSpan};
use serde::Serialize;
use serde_json::Value;

use super::diff::diff;
use super::export::{INDEX, command_file, event_file};
use super::model::{Aggregate, Command, Event, EventVersion, Upcast};
use crate::error::Error;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Stored data or clients may break: the check fails.
    Error,
    /// Compatible, but the export is out of date.
    Note,
}

/// One finding, naming the item, the change and the fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub level: Level,
    /// The aggregate type.
    pub aggregate: String,
    /// "event `MoneyDeposited` v2", "command `Deposit`", ...
    pub item: String,
    /// What changed.
    pub change: String,
    /// How to fix it.
    pub fix: String,
    /// Where the committed item is written in the export's index: JSON snippets found one
    /// after the other, the last one marked (empty for an item the export does not hold yet).
    #[serde(skip)]
    pub at: Vec<String>,
}

/// The snippets that find an aggregate in the index.
fn at_aggregate(aggregate: &str) -> Vec<String> {
    vec![format!("\"aggregate_type\": {}", quoted(aggregate))]
}

/// The snippets that find an event type in the index.
fn at_event(aggregate: &str, event: &str) -> Vec<String> {
    let mut at = at_aggregate(aggregate);
    at.push(format!("\"event_type\": {}", quoted(event)));
    at
}

/// The snippet of an item that has a schema file of its own.
fn at_file(file: &str) -> Vec<String> {
    vec![format!("\"schema\": {}", quoted(file))]
}

fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

/// The committed index, read again to point the findings at their lines.
#[derive(Debug)]
pub struct Index {
    /// The index's path as the user gave the folder.
    name: String,
    /// Its text, if it could be read.
    text: Option<String>,
}

impl Index {
    /// The index in `dir`, shown under `shown` (the folder as given on the command line).
    pub fn read(dir: &Path, shown: &Path) -> Self {
        Index {
            name: shown.join(INDEX).display().to_string(),
            text: std::fs::read_to_string(dir.join(INDEX)).ok(),
        }
    }

    /// The finding as a diagnostic, pointing at its committed item when there is one.
    pub fn locate<'a>(&self, finding: &'a Finding) -> Report<'a> {
        let mut span = None;
        if let (Some(text), false) = (&self.text, finding.at.is_empty()) {
            let mut from = 0;
            for snippet in &finding.at {
                match text[from..].find(snippet.as_str()) {
                    Some(i) => {
                        span = Some(SourceSpan::from((from + i, snippet.len())));
                        from += i + snippet.len();
                    }
                    None => {
                        span = None;
                        break;
                    }
                }
            }
        }
        Report {
            finding,
            source: span
                .and(self.text.as_ref())
                .map(|text| NamedSource::new(&self.name, text.clone()).with_language("json")),
            span,
        }
    }
}

/// A finding as miette renders it: its item, change and fix, and the committed item's lines.
#[derive(Debug)]
pub struct Report<'a> {
    finding: &'a Finding,
    source: Option<NamedSource<String>>,
    span: Option<SourceSpan>,
}

impl std::fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Finding {
            aggregate,
            item,
            change,
            ..
        } = self.finding;
        write!(f, "{item} of `{aggregate}`: {change}")
    }
}

impl std::error::Error for Report<'_> {}

impl Diagnostic for Report<'_> {
    fn severity(&self) -> Option<Severity> {
        Some(match self.finding.level {
            Level::Error => Severity::Error,
            Level::Note => Severity::Advice,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
        Some(Box::new(&self.finding.fix))
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|s| s as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.span?;
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            Some("as the export records it".into()),
            span,
        ))))
    }
}

/// Reads the export in `dir` back into the model.
pub fn read_export(dir: &Path) -> Result<Vec<Aggregate>, Error> {
    let index_path = dir.join(INDEX);
    let text = std::fs::read_to_string(&index_path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::NoExport {
                dir: dir.to_path_buf(),
            }
        } else {
            Error::io(&index_path, e)
        }
    })?;
    let index: Value =
        serde_json::from_str(&text).map_err(|e| Error::not_json(&index_path, &text, &e))?;
    let bad = |why: &str| Error::BadExport {
        file: index_path.clone(),
        why: why.to_owned(),
        src: None,
        at: None,
    };
    let load = |file: &str| -> Result<Value, Error> {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::not_json(&path, &text, &e))
    };
    let str_of = |v: &Value, key: &str| -> Result<String, Error> {
        v.get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| bad(&format!("an entry has no `{key}`")))
    };
    let mut aggregates = Vec::new();
    for a in index["aggregates"]
        .as_array()
        .ok_or_else(|| bad("no `aggregates` list"))?
    {
        let mut commands = Vec::new();
        for c in a["commands"].as_array().into_iter().flatten() {
            commands.push(Command {
                name: str_of(c, "name")?,
                rust_type: str_of(c, "rust_type")?,
                schema: load(&str_of(c, "schema")?)?,
            });
        }
        let mut events = Vec::new();
        for e in a["events"].as_array().into_iter().flatten() {
            let mut versions = Vec::new();
            for v in e["versions"].as_array().into_iter().flatten() {
                let schema = match v.get("schema").and_then(Value::as_str) {
                    Some(file) => Some(load(file)?),
                    None => None,
                };
                versions.push(EventVersion {
                    version: v["version"]
                        .as_u64()
                        .ok_or_else(|| bad("a version has no number"))?
                        as u32,
                    rust_type: v
                        .get("rust_type")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    schema,
                    upcast: serde_json::from_value(v["upcast"].clone())
                        .map_err(|e| bad(&e.to_string()))?,
                });
            }
            events.push(Event {
                event_type: str_of(e, "event_type")?,
                aliases: serde_json::from_value(e["aliases"].clone()).unwrap_or_default(),
                version: e["version"]
                    .as_u64()
                    .ok_or_else(|| bad("an event has no version"))? as u32,
                versions,
            });
        }
        aggregates.push(Aggregate {
            aggregate_type: str_of(a, "aggregate_type")?,
            rust_type: str_of(a, "rust_type")?,
            commands,
            events,
        });
    }
    Ok(aggregates)
}

/// Every finding, errors first, in a stable order.
pub fn check(committed: &[Aggregate], current: &[Aggregate]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for old in committed {
        let name = &old.aggregate_type;
        let Some(new) = current.iter().find(|a| &a.aggregate_type == name) else {
            findings.push(Finding {
                level: Level::Error,
                aggregate: name.clone(),
                item: format!("aggregate `{name}`"),
                change: "removed, but its stored events must stay readable".into(),
                at: at_aggregate(name),
                fix: format!(
                    "keep the aggregate type name (a renamed Rust type keeps it with `#[aggregate(rename = \"{name}\")]`); if its events were deleted from every store, run `cargo cqrs schema export` to record that"
                ),
            });
            continue;
        };
        for event in &old.events {
            check_event(name, event, &new.events, &mut findings);
        }
        for command in &old.commands {
            check_command(name, command, &new.commands, &mut findings);
        }
        notes_for_new(old, new, &mut findings);
    }
    for new in current {
        if !committed
            .iter()
            .any(|a| a.aggregate_type == new.aggregate_type)
        {
            findings.push(note(
                &new.aggregate_type,
                format!("aggregate `{}`", new.aggregate_type),
                "new",
                Vec::new(),
            ));
        }
    }
    findings
        .sort_by(|a, b| (a.level, &a.aggregate, &a.item).cmp(&(b.level, &b.aggregate, &b.item)));
    findings
}

fn note(aggregate: &str, item: String, change: &str, at: Vec<String>) -> Finding {
    Finding {
        level: Level::Note,
        aggregate: aggregate.to_owned(),
        item,
        change: change.to_owned(),
        fix: "run `cargo cqrs schema export` and commit the result".into(),
        at,
    }
}

/// The breaking changes' descriptions, and the compatible ones'.
fn split(changes: Vec<super::diff::Change>) -> (Vec<String>, Vec<String>) {
    let (breaking, compatible): (Vec<_>, Vec<_>) = changes.into_iter().partition(|c| c.breaking);
    let what = |list: Vec<super::diff::Change>| list.into_iter().map(|c| c.what).collect();
    (what(breaking), what(compatible))
}

fn check_event(aggregate: &str, old: &Event, current: &[Event], out: &mut Vec<Finding>) {
    let stored = &old.event_type;
    let Some(new) = current
        .iter()
        .find(|e| &e.event_type == stored || e.aliases.contains(stored))
    else {
        out.push(Finding {
            level: Level::Error,
            aggregate: aggregate.to_owned(),
            item: format!("event `{stored}`"),
            change: "removed, but stored events may still hold it".into(),
            fix: format!(
                "keep the variant (events are never rewritten); to rename it, write `#[event(rename = \"NewName\", alias = \"{stored}\")]`"
            ),
            at: at_event(aggregate, stored),
        });
        return;
    };
    let next = new.version + 1;
    for version in &old.versions {
        let v = version.version;
        let item = format!("event `{stored}` v{v}");
        let at = match version.schema {
            Some(_) => at_file(&event_file(aggregate, stored, v)),
            None => at_event(aggregate, stored),
        };
        let Some(now) = new.versions.iter().find(|n| n.version == v) else {
            out.push(Finding {
                level: Level::Error,
                aggregate: aggregate.to_owned(),
                item,
                change: format!("version {v} is gone (the current version is {}), but stored events may hold it", new.version),
                fix: format!("versions only grow: go back to version {} or later, and upcast every older version", old.version),
                at,
            });
            continue;
        };
        if let (Some(before), Some(after)) = (&version.schema, &now.schema) {
            let (breaking, compatible) = split(diff(before, after));
            if !breaking.is_empty() {
                out.push(Finding {
                    level: Level::Error,
                    aggregate: aggregate.to_owned(),
                    item: item.clone(),
                    change: format!("stored shape changed: {}", breaking.join("; ")),
                    fix: format!(
                        "keep version {v}'s old shape as its own type, bump the event to `version = {next}` and add an upcaster from v{v}: `#[event(version = {next}, upcast(v{v} = OldShape, ...))]`"
                    ),
                    at: at.clone(),
                });
            } else if !compatible.is_empty() {
                out.push(note(
                    aggregate,
                    item.clone(),
                    &format!("compatible change: {}", compatible.join("; ")),
                    at.clone(),
                ));
            }
        }
        if v < new.version && now.upcast == Upcast::Current {
            out.push(Finding {
                level: Level::Error,
                aggregate: aggregate.to_owned(),
                item,
                change: format!("no upcast path from v{v} to v{}", new.version),
                fix: format!("add an upcaster for v{v}: `#[event(version = {}, upcast(v{v} = OldShape, ...))]`", new.version),
                at,
            });
        }
    }
}

fn check_command(aggregate: &str, old: &Command, current: &[Command], out: &mut Vec<Finding>) {
    let item = format!("command `{}`", old.name);
    let at = at_file(&command_file(aggregate, &old.name));
    let Some(new) = current.iter().find(|c| c.name == old.name) else {
        out.push(Finding {
            level: Level::Error,
            aggregate: aggregate.to_owned(),
            item,
            change: "removed, but clients may still send it".into(),
            fix: "keep accepting it (reject it with a domain error if it must stop), or version your API and re-export".into(),
            at,
        });
        return;
    };
    let (breaking, compatible) = split(diff(&old.schema, &new.schema));
    if !breaking.is_empty() {
        out.push(Finding {
            level: Level::Error,
            aggregate: aggregate.to_owned(),
            item,
            change: format!("breaking change for clients: {}", breaking.join("; ")),
            fix: "add new fields as optional (`Option<T>` or `#[serde(default)]`) and keep the old ones, or add a new command".into(),
            at,
        });
    } else if !compatible.is_empty() {
        out.push(note(
            aggregate,
            item,
            &format!("compatible change: {}", compatible.join("; ")),
            at,
        ));
    }
}

/// Events, versions and commands the export does not record yet.
fn notes_for_new(old: &Aggregate, new: &Aggregate, out: &mut Vec<Finding>) {
    let name = &new.aggregate_type;
    for event in &new.events {
        match old
            .events
            .iter()
            .find(|e| e.event_type == event.event_type || event.aliases.contains(&e.event_type))
        {
            None => out.push(note(
                name,
                format!("event `{}`", event.event_type),
                "new",
                Vec::new(),
            )),
            Some(before) if before.version < event.version => out.push(note(
                name,
                format!("event `{}` v{}", event.event_type, event.version),
                "new version",
                at_event(name, &before.event_type),
            )),
            Some(_) => {}
        }
    }
    for command in &new.commands {
        if !old.commands.iter().any(|c| c.name == command.name) {
            out.push(note(
                name,
                format!("command `{}`", command.name),
                "new",
                Vec::new(),
            ));
        }
    }
}
