//! `#[derive(Event)]`: names, versions, encoding, every decode path and its typed errors.

use cqrs_runtime::schema::{DescribeEvents, Upcast};
use cqrs_runtime::{DecodeError, DomainEvent, Event};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Named {
    pub first: String,
    pub last: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NamedV1 {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NamedV2 {
    pub full_name: String,
}

/// v1 -> v2 over the raw JSON: the field `name` became `full_name`.
fn rename_field(
    mut json: serde_json::Value,
) -> Result<serde_json::Value, Box<dyn std::error::Error + Send + Sync>> {
    let name = json
        .get_mut("name")
        .map(serde_json::Value::take)
        .ok_or("no `name` field")?;
    Ok(serde_json::json!({ "full_name": name }))
}

/// v2 -> v3 by a named function.
fn split(v2: NamedV2) -> Named {
    let (first, last) = v2.full_name.split_once(' ').unwrap_or((&v2.full_name, ""));
    Named {
        first: first.to_owned(),
        last: last.to_owned(),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Tagged {
    pub tag: u32,
}

#[derive(Debug, Clone, PartialEq, Event)]
pub enum PersonEvent {
    /// json hop from an untyped-by-schema v1 (typed here for the schema), then a function hop.
    #[event(version = 3, upcast(v1(ty = NamedV1, json = rename_field), v2(ty = NamedV2, with = split)))]
    Named(Named),
    #[event(rename = "PersonTagged", alias = "Tagged", alias = "Labelled")]
    Tagged(Tagged),
}

#[test]
fn names_and_versions() {
    assert_eq!(PersonEvent::EVENT_TYPES, ["Named", "PersonTagged"]);
    let named = PersonEvent::Named(Named {
        first: "Ada".into(),
        last: "Lovelace".into(),
    });
    assert_eq!(named.event_type(), "Named");
    assert_eq!(named.event_version(), 3);
    let tagged = PersonEvent::from(Tagged { tag: 1 });
    assert_eq!(tagged.event_type(), "PersonTagged");
    assert_eq!(tagged.event_version(), 1);
}

#[test]
fn encode_writes_the_payload_only() {
    let tagged = PersonEvent::Tagged(Tagged { tag: 7 });
    assert_eq!(tagged.encode().unwrap(), r#"{"tag":7}"#);
}

#[test]
fn every_stored_version_reaches_the_current_shape() {
    let want = PersonEvent::Named(Named {
        first: "Ada".into(),
        last: "Lovelace".into(),
    });
    let from_v1 = PersonEvent::decode("Named", 1, r#"{"name":"Ada Lovelace"}"#).unwrap();
    let from_v2 = PersonEvent::decode("Named", 2, r#"{"full_name":"Ada Lovelace"}"#).unwrap();
    let from_v3 = PersonEvent::decode("Named", 3, r#"{"first":"Ada","last":"Lovelace"}"#).unwrap();
    assert_eq!(from_v1, want);
    assert_eq!(from_v2, want);
    assert_eq!(from_v3, want);
}

#[test]
fn aliases_read_old_names() {
    for name in ["PersonTagged", "Tagged", "Labelled"] {
        let event = PersonEvent::decode(name, 1, r#"{"tag":3}"#).unwrap();
        assert_eq!(event, PersonEvent::Tagged(Tagged { tag: 3 }), "{name}");
    }
}

#[test]
fn an_unknown_type_is_a_typed_error_listing_the_known_ones() {
    let error = PersonEvent::decode("Deleted", 1, "{}").unwrap_err();
    assert!(
        matches!(&error, DecodeError::UnknownType { event_type, .. } if event_type == "Deleted")
    );
    assert_eq!(
        error.to_string(),
        "unknown event type `Deleted`; this code knows `Named`, `PersonTagged`"
    );
}

#[test]
fn a_version_newer_than_the_code_is_a_typed_error() {
    let error = PersonEvent::decode("Named", 4, "{}").unwrap_err();
    assert!(matches!(
        error,
        DecodeError::FutureVersion {
            version: 4,
            current: 3,
            ..
        }
    ));
    assert!(error.to_string().contains("deploy the newer code"));
    assert!(matches!(
        PersonEvent::decode("Named", 0, "{}").unwrap_err(),
        DecodeError::ZeroVersion { .. }
    ));
}

#[test]
fn a_payload_of_the_wrong_shape_names_the_version_it_was_read_as() {
    let error = PersonEvent::decode("Named", 2, r#"{"full_name":42}"#).unwrap_err();
    assert!(
        matches!(error, DecodeError::Payload { version: 2, .. }),
        "{error:?}"
    );
    let error = PersonEvent::decode("Named", 3, "not json").unwrap_err();
    assert!(
        matches!(error, DecodeError::Payload { version: 3, .. }),
        "{error:?}"
    );
}

#[test]
fn a_failing_json_upcaster_is_a_typed_error() {
    let error = PersonEvent::decode("Named", 1, r#"{"nom":"Ada"}"#).unwrap_err();
    assert!(
        matches!(
            error,
            DecodeError::Upcast {
                from_version: 1,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("no `name` field"), "{error}");
}

#[test]
fn schema_metadata_lists_every_version() {
    let events = PersonEvent::describe_events();
    assert_eq!(events.len(), 2);
    let named = &events[0];
    assert_eq!((named.event_type.as_str(), named.version), ("Named", 3));
    let kinds: Vec<Upcast> = named.versions.iter().map(|v| v.upcast).collect();
    assert_eq!(kinds, [Upcast::Json, Upcast::Function, Upcast::Current]);
    let types: Vec<Option<&str>> = named
        .versions
        .iter()
        .map(|v| v.rust_type.as_deref())
        .collect();
    assert_eq!(types, [Some("NamedV1"), Some("NamedV2"), Some("Named")]);
    let v2_schema = named.versions[1].schema.as_ref().unwrap();
    assert!(
        v2_schema["properties"]["full_name"].is_object(),
        "{v2_schema}"
    );
    let tagged = &events[1];
    assert_eq!(tagged.aliases, ["Tagged", "Labelled"]);
}

// ------------------------------------------------------------------ a standalone struct event

/// One event type on its own, renamed, at version 2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Event)]
#[event(rename = "Pinged", alias = "Ping", version = 2, upcast(v1 = PingV1))]
pub struct PingEvent {
    pub at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PingV1 {
    pub at_s: u64,
}

impl From<PingV1> for PingEvent {
    fn from(v1: PingV1) -> Self {
        PingEvent {
            at_ms: v1.at_s * 1000,
        }
    }
}

#[test]
fn a_struct_event_stands_alone() {
    let ping = PingEvent { at_ms: 5 };
    assert_eq!((ping.event_type(), ping.event_version()), ("Pinged", 2));
    assert_eq!(ping.encode().unwrap(), r#"{"at_ms":5}"#);
    assert_eq!(
        PingEvent::decode("Ping", 1, r#"{"at_s":2}"#).unwrap(),
        PingEvent { at_ms: 2000 }
    );
    let described = PingEvent::describe_events();
    assert_eq!(
        described[0].versions[1].rust_type.as_deref(),
        Some("PingEvent")
    );
}

// ------------------------------------------------------------------------------- generics

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Set<T> {
    pub value: T,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Cleared {}

/// An event enum generic over the value it carries.
#[derive(Debug, Clone, PartialEq, Event)]
pub enum RegisterEvent<T> {
    Set(Set<T>),
    Cleared(Cleared),
}

#[test]
fn generic_event_enums_work_for_each_instantiation() {
    let set = RegisterEvent::Set(Set { value: 7u32 });
    assert_eq!(set.encode().unwrap(), r#"{"value":7}"#);
    let back = RegisterEvent::<u32>::decode("Set", 1, r#"{"value":7}"#).unwrap();
    assert_eq!(back, set);
    let text = RegisterEvent::<String>::decode("Set", 1, r#"{"value":"x"}"#).unwrap();
    assert_eq!(text, RegisterEvent::Set(Set { value: "x".into() }));
    assert_eq!(RegisterEvent::<u8>::describe_events().len(), 2);
}

// ------------------------------------------------------------------------------- hygiene

/// Upcasters named like the generated code's locals still resolve to the user's functions.
mod hygiene {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct Measured {
        pub millimetres: u64,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct MeasuredV1 {
        pub centimetres: u64,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct MeasuredV2 {
        pub metres: f64,
    }

    pub fn value(v1: MeasuredV1) -> MeasuredV2 {
        MeasuredV2 {
            metres: v1.centimetres as f64 / 100.0,
        }
    }

    pub fn payload(v2: MeasuredV2) -> Measured {
        Measured {
            millimetres: (v2.metres * 1000.0).round() as u64,
        }
    }

    #[derive(Debug, Clone, PartialEq, Event)]
    pub enum ShelfEvent {
        #[event(version = 3, upcast(
            v1(ty = MeasuredV1, with = value),
            v2(ty = MeasuredV2, with = payload),
        ))]
        Measured(Measured),
    }

    #[test]
    fn upcasters_named_value_or_payload_are_the_users() {
        let event = ShelfEvent::decode("Measured", 1, r#"{"centimetres":12}"#).unwrap();
        assert_eq!(event, ShelfEvent::Measured(Measured { millimetres: 120 }));
    }
}
