//! What Strimzi's published CRDs allow in the fields the manifests write, as a small structural
//! schema, and a checker that walks a parsed YAML document against it (tests only).
//!
//! The shapes follow the `openAPIV3Schema` of `packaging/install/cluster-operator/`
//! `040-Crd-kafka.yaml`, `04A-Crd-kafkanodepool.yaml` and `043-Crd-kafkatopic.yaml`; their `v1`
//! and `v1beta2` versions agree on every field listed here. Objects are closed, and a field the
//! CRD has but the manifests never write is left out, which makes the check stricter, never
//! looser: an unknown or misspelt key is reported, as `kubectl apply --validate=strict` would.

use yaml_rust2::Yaml;

/// The schema of one value.
pub enum Shape {
    /// A mapping with these keys (no others), of which some are required.
    Object(Vec<(&'static str, Shape)>, &'static [&'static str]),
    /// `x-kubernetes-preserve-unknown-fields`: any mapping (Kafka and topic configuration).
    Open,
    /// A mapping of strings to strings (labels, annotations).
    Strings,
    /// A sequence with at least this many items of one shape.
    Array(Box<Shape>, usize),
    /// An integer in this range.
    Int(i64, i64),
    Bool,
    Str,
    Enum(&'static [&'static str]),
    /// A string that `check` accepts; `rule` says what it must be.
    Text {
        check: fn(&str) -> bool,
        rule: &'static str,
    },
}

use Shape::*;

fn object(fields: Vec<(&'static str, Shape)>, required: &'static [&'static str]) -> Shape {
    Object(fields, required)
}

fn array(items: Shape, min: usize) -> Shape {
    Array(Box::new(items), min)
}

/// The whole resource of `kind`, or `None` for a kind the manifests never write.
pub fn resource(kind: &str) -> Option<Shape> {
    let spec = match kind {
        "Kafka" => kafka(),
        "KafkaNodePool" => node_pool(),
        "KafkaTopic" => topic(),
        _ => return None,
    };
    let metadata = object(
        vec![
            ("name", resource_name()),
            ("namespace", resource_name()),
            ("labels", Strings),
            ("annotations", Strings),
        ],
        &["name"],
    );
    Some(object(
        vec![
            (
                "apiVersion",
                Enum(&["kafka.strimzi.io/v1", "kafka.strimzi.io/v1beta2"]),
            ),
            ("kind", Enum(&["Kafka", "KafkaNodePool", "KafkaTopic"])),
            ("metadata", metadata),
            ("spec", spec),
        ],
        &["apiVersion", "kind", "metadata", "spec"],
    ))
}

fn kafka() -> Shape {
    let listener = object(
        vec![
            (
                "name",
                Text {
                    check: |s| {
                        (1..=11).contains(&s.len())
                            && s.chars()
                                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                    },
                    rule: "^[a-z0-9]{1,11}$",
                },
            ),
            ("port", Int(9092, 65535)),
            (
                "type",
                Enum(&[
                    "internal",
                    "route",
                    "loadbalancer",
                    "nodeport",
                    "ingress",
                    "cluster-ip",
                ]),
            ),
            ("tls", Bool),
        ],
        &["name", "port", "type", "tls"],
    );
    object(
        vec![
            (
                "kafka",
                object(
                    vec![("listeners", array(listener, 1)), ("config", Open)],
                    &["listeners"],
                ),
            ),
            (
                "entityOperator",
                object(
                    vec![
                        ("topicOperator", object(vec![], &[])),
                        ("userOperator", object(vec![], &[])),
                    ],
                    &[],
                ),
            ),
        ],
        &["kafka"],
    )
}

fn node_pool() -> Shape {
    let volume = object(
        vec![
            ("id", Int(0, i64::from(i32::MAX))),
            ("type", Enum(&["ephemeral", "persistent-claim"])),
            (
                "size",
                Text {
                    check: |s| super::check_quantity("", s).is_ok(),
                    rule: "a Kubernetes quantity such as 100Gi",
                },
            ),
            ("deleteClaim", Bool),
            ("kraftMetadata", Enum(&["shared"])),
        ],
        &["type"],
    );
    object(
        vec![
            ("replicas", Int(0, i64::from(i32::MAX))),
            ("roles", array(Enum(&["controller", "broker"]), 1)),
            (
                "storage",
                object(
                    vec![
                        ("type", Enum(&["ephemeral", "persistent-claim", "jbod"])),
                        ("volumes", array(volume, 1)),
                    ],
                    &["type"],
                ),
            ),
        ],
        // The CRD leaves them optional; the operator refuses a pool without them.
        &["replicas", "roles", "storage"],
    )
}

fn topic() -> Shape {
    object(
        vec![
            ("topicName", Str),
            ("partitions", Int(1, i64::from(i32::MAX))),
            ("replicas", Int(1, 32767)),
            ("config", Open),
        ],
        &[],
    )
}

fn resource_name() -> Shape {
    Text {
        check: |s| super::check_name("", s).is_ok(),
        rule: "a Kubernetes resource name",
    }
}

/// Every way `value` departs from `shape`, each naming its path (`spec.kafka.listeners[0].port`).
pub fn check(value: &Yaml, shape: &Shape, path: &str) -> Vec<String> {
    let at = |what: String| {
        vec![format!(
            "{}: {what}",
            if path.is_empty() { "." } else { path }
        )]
    };
    match (shape, value) {
        (Object(fields, required), Yaml::Hash(map)) => {
            let mut problems = Vec::new();
            for (key, item) in map {
                let Some(key) = key.as_str() else {
                    problems.extend(at(format!("a key that is not a string: {key:?}")));
                    continue;
                };
                let inner = if path.is_empty() {
                    key.to_owned()
                } else {
                    format!("{path}.{key}")
                };
                match fields.iter().find(|(name, _)| *name == key) {
                    Some((_, shape)) => problems.extend(check(item, shape, &inner)),
                    None => problems.push(format!("{inner}: not a field of the CRD")),
                }
            }
            for name in *required {
                if !map.contains_key(&Yaml::String((*name).to_owned())) {
                    problems.extend(at(format!("`{name}` is required")));
                }
            }
            problems
        }
        (Open, Yaml::Hash(_)) => Vec::new(),
        (Strings, Yaml::Hash(map)) => map
            .iter()
            .filter(|(k, v)| k.as_str().is_none() || v.as_str().is_none())
            .flat_map(|(k, _)| at(format!("{k:?} must map a string to a string")))
            .collect(),
        (Array(items, min), Yaml::Array(values)) => {
            let mut problems = Vec::new();
            if values.len() < *min {
                problems.extend(at(format!("at least {min} item(s)")));
            }
            for (i, item) in values.iter().enumerate() {
                problems.extend(check(item, items, &format!("{path}[{i}]")));
            }
            problems
        }
        (Int(min, max), Yaml::Integer(n)) if (min..=max).contains(&n) => Vec::new(),
        (Int(min, max), _) => at(format!(
            "expected an integer from {min} to {max}, found {value:?}"
        )),
        (Bool, Yaml::Boolean(_)) | (Str, Yaml::String(_)) => Vec::new(),
        (Enum(allowed), Yaml::String(s)) if allowed.contains(&s.as_str()) => Vec::new(),
        (Enum(allowed), _) => at(format!("expected one of {allowed:?}, found {value:?}")),
        (Text { check, rule }, Yaml::String(s)) if check(s) => Vec::new(),
        (Text { rule, .. }, _) => at(format!("expected {rule}, found {value:?}")),
        (_, _) => at(format!("wrong type: {value:?}")),
    }
}
