//! `cargo cqrs schema export`: one JSON Schema file per command and per stored event version,
//! an index that ties them to their aggregates, and an AsyncAPI 3.0 document. Byte-identical
//! output when nothing changed: keys sorted, pretty-printed, one trailing newline.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use heck::ToKebabCase;
use serde_json::{Value, json};

use super::host::write_if_changed;
use super::model::{Aggregate, EventVersion, ProcessManager, Program};
use crate::error::Error;

/// The index file's name in the export folder.
pub const INDEX: &str = "index.json";
/// The AsyncAPI document's name in the export folder.
pub const ASYNCAPI: &str = "asyncapi.json";

/// What an export wrote.
#[derive(Debug, Default)]
pub struct Written {
    /// Files whose content changed (or are new), relative to the folder.
    pub changed: Vec<PathBuf>,
    /// Files left as they were.
    pub unchanged: usize,
    /// Stale files removed (events, versions or commands that are gone).
    pub removed: Vec<PathBuf>,
}

/// The topic (channel) of an aggregate type: kebab-case.
pub fn topic(aggregate_type: &str) -> String {
    aggregate_type.to_kebab_case()
}

/// A file name part from a stored name: anything but letters, digits, `_`, `-` and `.`
/// becomes `_`.
fn file_part(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Where a command's schema goes, relative to the folder.
pub fn command_file(aggregate: &str, command: &str) -> String {
    format!(
        "{}/commands/{}.json",
        file_part(aggregate),
        file_part(command)
    )
}

/// Where an event version's schema goes, relative to the folder.
pub fn event_file(aggregate: &str, event: &str, version: u32) -> String {
    format!(
        "{}/events/{}.v{version}.json",
        file_part(aggregate),
        file_part(event)
    )
}

/// Pretty JSON with a trailing newline.
pub fn render(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// Writes the export of `aggregates` into `dir` (created if missing), for package `package`.
pub fn write(dir: &Path, package: &str, program: &Program) -> Result<Written, Error> {
    let aggregates = &program.aggregates;
    let mut files: Vec<(String, Value)> = Vec::new();
    for aggregate in aggregates {
        let name = &aggregate.aggregate_type;
        for command in &aggregate.commands {
            files.push((command_file(name, &command.name), command.schema.clone()));
        }
        for event in &aggregate.events {
            for version in &event.versions {
                if let Some(schema) = &version.schema {
                    files.push((
                        event_file(name, &event.event_type, version.version),
                        schema.clone(),
                    ));
                }
            }
        }
    }
    files.push((
        INDEX.to_owned(),
        index(aggregates, &program.process_managers),
    ));
    files.push((ASYNCAPI.to_owned(), asyncapi(package, aggregates)));

    let mut written = Written::default();
    let mut kept = BTreeSet::new();
    for (file, value) in &files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        if write_if_changed(&path, &render(value))? {
            written.changed.push(PathBuf::from(file));
        } else {
            written.unchanged += 1;
        }
        kept.insert(path);
    }
    written.removed = remove_stale(dir, &kept)?;
    Ok(written)
}

/// Removes schema files under `<dir>/*/commands` and `<dir>/*/events` that this export did not
/// write: the event, version or command is gone from the code.
fn remove_stale(dir: &Path, kept: &BTreeSet<PathBuf>) -> Result<Vec<PathBuf>, Error> {
    let mut removed = Vec::new();
    let Ok(aggregates) = std::fs::read_dir(dir) else {
        return Ok(removed);
    };
    for aggregate in aggregates.flatten().filter(|e| e.path().is_dir()) {
        for kind in ["commands", "events"] {
            let Ok(entries) = std::fs::read_dir(aggregate.path().join(kind)) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "json") && !kept.contains(&path) {
                    std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                    removed.push(path.strip_prefix(dir).unwrap_or(&path).to_path_buf());
                }
            }
        }
    }
    removed.sort();
    Ok(removed)
}

/// The index: every aggregate with its topic, commands and events, each schema by file name.
fn index(aggregates: &[Aggregate], process_managers: &[ProcessManager]) -> Value {
    let aggregates: Vec<Value> = aggregates
        .iter()
        .map(|a| {
            let name = &a.aggregate_type;
            json!({
                "aggregate_type": name,
                "rust_type": a.rust_type,
                "topic": topic(name),
                "commands": a.commands.iter().map(|c| json!({
                    "name": c.name,
                    "rust_type": c.rust_type,
                    "schema": command_file(name, &c.name),
                })).collect::<Vec<_>>(),
                "events": a.events.iter().map(|e| json!({
                    "event_type": e.event_type,
                    "aliases": e.aliases,
                    "version": e.version,
                    "versions": e.versions.iter().map(|v| version_entry(name, &e.event_type, v)).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut index = json!({
        "format": "cargo-cqrs schema export 1",
        "aggregates": aggregates,
    });
    // What each process manager consumes (event types by aggregate) and may send (commands by
    // aggregate), with its deadlines. Absent when there is none, so exports of crates without
    // process managers are unchanged.
    if !process_managers.is_empty() {
        index["process_managers"] = json!(process_managers);
    }
    index
}

fn version_entry(aggregate: &str, event: &str, v: &EventVersion) -> Value {
    json!({
        "version": v.version,
        "rust_type": v.rust_type,
        "upcast": v.upcast,
        "schema": v.schema.as_ref().map(|_| event_file(aggregate, event, v.version)),
    })
}

/// An AsyncAPI 3.0 document: one channel per aggregate (its topic, keyed by aggregate id), one
/// message per event type with its current version's schema (by reference to its file), and
/// one `send` operation per channel.
fn asyncapi(package: &str, aggregates: &[Aggregate]) -> Value {
    let mut channels = serde_json::Map::new();
    let mut operations = serde_json::Map::new();
    let mut messages = serde_json::Map::new();
    for aggregate in aggregates {
        let name = &aggregate.aggregate_type;
        let channel = topic(name);
        let mut channel_messages = serde_json::Map::new();
        let mut refs = Vec::new();
        for event in &aggregate.events {
            let key = format!("{channel}.{}", file_part(&event.event_type));
            let current = event.versions.iter().find(|v| v.version == event.version);
            let payload = match current.and_then(|v| v.schema.as_ref()) {
                Some(_) => json!({
                    "schemaFormat": "application/schema+json;version=draft-2020-12",
                    "schema": { "$ref": format!("./{}", event_file(name, &event.event_type, event.version)) },
                }),
                None => json!({ "type": "object" }),
            };
            messages.insert(
                key.clone(),
                json!({
                    "name": event.event_type,
                    "title": format!("{} v{}", event.event_type, event.version),
                    "contentType": "application/json",
                    "headers": headers(&event.event_type, event.version),
                    "payload": payload,
                    "bindings": {
                        "kafka": {
                            "key": { "type": "string", "description": format!("the `{name}` aggregate id: events of one aggregate share a partition, in order") },
                            "bindingVersion": "0.5.0",
                        }
                    },
                }),
            );
            channel_messages.insert(
                file_part(&event.event_type),
                json!({ "$ref": format!("#/components/messages/{key}") }),
            );
            refs.push(json!({
                "$ref": format!("#/channels/{channel}/messages/{}", file_part(&event.event_type))
            }));
        }
        channels.insert(
            channel.clone(),
            json!({
                "address": channel,
                "title": format!("Events of `{name}`"),
                "description": format!("Every event of the `{name}` aggregate, keyed by aggregate id; ordered per aggregate."),
                "messages": channel_messages,
            }),
        );
        operations.insert(
            format!("publish-{channel}"),
            json!({
                "action": "send",
                "channel": { "$ref": format!("#/channels/{channel}") },
                "messages": refs,
            }),
        );
    }
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": format!("{package} events"),
            "version": "1.0.0",
            "description": format!("The domain events of `{package}`, exported by `cargo cqrs schema export`."),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": { "messages": messages },
    })
}

fn headers(event_type: &str, version: u32) -> Value {
    json!({
        "type": "object",
        "properties": {
            "event_id": { "type": "string", "format": "uuid" },
            "event_type": { "const": event_type },
            "event_version": { "const": version },
            "aggregate_id": { "type": "string" },
            "correlation_id": { "type": "string", "format": "uuid" },
            "causation_id": { "type": "string", "format": "uuid" },
        },
        "required": ["event_id", "event_type", "event_version", "aggregate_id"],
    })
}
