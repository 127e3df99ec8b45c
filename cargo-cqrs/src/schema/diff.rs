//! What changed between two JSON Schemas (as schemars writes them: draft 2020-12, objects with
//! `properties` and `required`, named types under `$defs`), and whether data valid against the
//! old one may fail to read as the new one.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// One difference, at a field path such as `amount.currency`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// What happened, in words: "field `amount` removed".
    pub what: String,
    /// Whether old data may no longer read.
    pub breaking: bool,
}

/// The changes from `old` to `new`, breaking ones first.
pub fn diff(old: &Value, new: &Value) -> Vec<Change> {
    let mut changes = Vec::new();
    compare(old, new, old, new, "", &mut changes, 0);
    changes.sort_by_key(|c| !c.breaking);
    changes
}

fn field(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// Follows `{"$ref": "#/$defs/Name"}` within its root document.
fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    let mut current = schema;
    for _ in 0..16 {
        let Some(reference) = current.get("$ref").and_then(Value::as_str) else {
            return current;
        };
        let Some(name) = reference.strip_prefix("#/$defs/") else {
            return current;
        };
        match root.get("$defs").and_then(|d| d.get(name)) {
            Some(next) => current = next,
            None => return current,
        }
    }
    current
}

/// The schema without what does not constrain data (docs, titles, examples), refs resolved one
/// level, for comparing the rest.
fn essence(root: &Value, schema: &Value) -> Value {
    let schema = resolve(root, schema);
    match schema {
        Value::Object(map) => {
            let kept: Map<String, Value> = map
                .iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "description" | "title" | "examples" | "$schema" | "$defs" | "default"
                    )
                })
                .map(|(k, v)| (k.clone(), essence(root, v)))
                .collect();
            Value::Object(kept)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| essence(root, v)).collect()),
        other => other.clone(),
    }
}

fn type_name(schema: &Value) -> String {
    match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" or "),
        _ if schema.get("enum").is_some() || schema.get("oneOf").is_some() => "enum".to_owned(),
        _ if schema.get("anyOf").is_some() => "union".to_owned(),
        _ => "any".to_owned(),
    }
}

fn required(schema: &Value) -> BTreeSet<String> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn compare(
    old_root: &Value,
    new_root: &Value,
    old: &Value,
    new: &Value,
    path: &str,
    out: &mut Vec<Change>,
    depth: usize,
) {
    if depth > 32 {
        return;
    }
    let (old, new) = (resolve(old_root, old), resolve(new_root, new));
    let old_props = old.get("properties").and_then(Value::as_object);
    let new_props = new.get("properties").and_then(Value::as_object);
    if let (Some(old_props), Some(new_props)) = (old_props, new_props) {
        let (old_required, new_required) = (required(old), required(new));
        for (name, old_field) in old_props {
            let at = field(path, name);
            match new_props.get(name) {
                None => out.push(Change {
                    what: format!("field `{at}` removed"),
                    breaking: true,
                }),
                Some(new_field) => {
                    if new_required.contains(name) && !old_required.contains(name) {
                        out.push(Change {
                            what: format!("field `{at}` became required (older data may lack it)"),
                            breaking: true,
                        });
                    }
                    compare(
                        old_root,
                        new_root,
                        old_field,
                        new_field,
                        &at,
                        out,
                        depth + 1,
                    );
                }
            }
        }
        for name in new_props.keys().filter(|n| !old_props.contains_key(*n)) {
            let at = field(path, name);
            out.push(if new_required.contains(name) {
                Change {
                    what: format!("required field `{at}` added without a default"),
                    breaking: true,
                }
            } else {
                Change {
                    what: format!("optional field `{at}` added"),
                    breaking: false,
                }
            });
        }
        return;
    }
    let (old_type, new_type) = (type_name(old), type_name(new));
    let at = if path.is_empty() { "the payload" } else { path };
    if old_type != new_type {
        out.push(Change {
            what: format!("`{at}` changed type from {old_type} to {new_type}"),
            breaking: true,
        });
    } else if essence(old_root, old) != essence(new_root, new) {
        out.push(Change {
            what: format!("`{at}` changed its allowed values ({old_type})"),
            breaking: true,
        });
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(props: Value, required: &[&str]) -> Value {
        json!({ "type": "object", "properties": props, "required": required })
    }

    #[test]
    fn removed_and_retyped_fields_break() {
        let old = object(
            json!({ "a": { "type": "integer" }, "b": { "type": "string" } }),
            &["a", "b"],
        );
        let new = object(json!({ "a": { "type": "string" } }), &["a"]);
        let changes = diff(&old, &new);
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert!(changes.iter().all(|c| c.breaking));
        assert!(changes.iter().any(|c| c.what == "field `b` removed"));
        assert!(
            changes
                .iter()
                .any(|c| c.what == "`a` changed type from integer to string")
        );
    }

    #[test]
    fn added_fields_break_only_when_required() {
        let old = object(json!({ "a": { "type": "integer" } }), &["a"]);
        let new = object(
            json!({ "a": { "type": "integer" }, "b": { "type": "string" }, "c": { "type": ["string", "null"] } }),
            &["a", "b"],
        );
        let changes = diff(&old, &new);
        assert_eq!(changes.len(), 2);
        assert_eq!(
            changes[0].what,
            "required field `b` added without a default"
        );
        assert!(changes[0].breaking);
        assert_eq!(changes[1].what, "optional field `c` added");
        assert!(!changes[1].breaking);
    }

    #[test]
    fn nested_types_are_followed_through_defs() {
        let old = json!({
            "type": "object",
            "properties": { "amount": { "$ref": "#/$defs/Money" } },
            "required": ["amount"],
            "$defs": { "Money": object(json!({ "cents": { "type": "integer" }, "currency": { "type": "string" } }), &["cents", "currency"]) }
        });
        let mut new = old.clone();
        new["$defs"]["Money"] = object(json!({ "cents": { "type": "integer" } }), &["cents"]);
        let changes = diff(&old, &new);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].what, "field `amount.currency` removed");
    }

    #[test]
    fn docs_do_not_count() {
        let old = object(
            json!({ "a": { "type": "integer", "description": "old" } }),
            &["a"],
        );
        let new = object(
            json!({ "a": { "type": "integer", "description": "new" } }),
            &["a"],
        );
        assert!(diff(&old, &new).is_empty());
    }
}
