//! `cargo cqrs strimzi`: Kubernetes manifests for the Strimzi operator: a `Kafka` cluster (in
//! KRaft mode, with its `KafkaNodePool`) and one `KafkaTopic` per aggregate of the crate, named
//! as the runtime's relay publishes (`cqrs_runtime::bus::default_topic`) with its dead-letter
//! topic beside it.
//!
//! Per aggregate, `[package.metadata.cqrs.topics.<aggregate type>]` in the crate's Cargo.toml
//! sets `topic`, `partitions`, `replicas` and `retention`; flags set the defaults.
//!
//! The API is `kafka.strimzi.io/v1`, which Strimzi serves from 0.49 and alone from 0.52 / 1.0;
//! `--api-version v1beta2` is for older operators. The tests check every document against the
//! fields of Strimzi's CRDs (`crd.rs`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use heck::ToKebabCase;
use serde::Serialize;

use crate::error::Error;
use crate::kube;
use crate::output::Console;
use crate::schema::{Features, Package, host};
use crate::templates::{Render, Template};

/// `cargo cqrs strimzi`
#[derive(Debug, Args)]
pub struct StrimziArgs {
    /// The `Kafka` resource's name, which every `KafkaTopic` names in its
    /// `strimzi.io/cluster` label.
    #[arg(long, value_name = "NAME", default_value = "events")]
    pub cluster: String,
    /// The namespace of every resource (default: none, so `kubectl -n` decides).
    #[arg(long, value_name = "NAME")]
    pub namespace: Option<String>,
    /// Brokers (nodes of the pool, each controller and broker).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub brokers: u32,
    /// Storage per node, a Kubernetes quantity.
    #[arg(long, value_name = "SIZE", default_value = "100Gi")]
    pub storage: String,
    /// Partitions of a topic without its own setting.
    #[arg(long, value_name = "N", default_value_t = 6)]
    pub partitions: u32,
    /// Replicas of a topic without its own setting (at most `--brokers`).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub replicas: u32,
    /// How long a topic without its own setting keeps messages: `<n>d`, `<n>h`, `<n>m`,
    /// `<n>s`, `<n>ms`, or `forever`.
    #[arg(long, value_name = "AGE", default_value = "7d")]
    pub retention: String,
    /// Only the `KafkaTopic` resources (for a cluster managed elsewhere).
    #[arg(long)]
    pub topics_only: bool,
    /// The Strimzi API: `v1` for Strimzi 0.49 and later (the only one from 0.52 / 1.0 on);
    /// `v1beta2` for older operators, with the `strimzi.io/kraft` and
    /// `strimzi.io/node-pools` annotations they need on the `Kafka`.
    #[arg(long, value_name = "VERSION", value_enum, default_value_t = ApiVersion::V1)]
    pub api_version: ApiVersion,
    /// Write to this file instead of the standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub package: Package,
    #[command(flatten)]
    pub features: Features,
}

/// The `kafka.strimzi.io` API version of the manifests. (The variants have no doc comments:
/// clap would turn them into a long help.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ApiVersion {
    // `kafka.strimzi.io/v1`: Strimzi 0.49 and later.
    V1,
    // `kafka.strimzi.io/v1beta2`: before Strimzi 0.52.
    V1beta2,
}

impl ApiVersion {
    fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V1 => "kafka.strimzi.io/v1",
            ApiVersion::V1beta2 => "kafka.strimzi.io/v1beta2",
        }
    }
}

/// One topic's settings, after the crate's metadata and the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Topic {
    /// The aggregate type it carries.
    pub aggregate_type: String,
    /// The Kafka topic name (also the resource name).
    pub name: String,
    /// Partitions.
    pub partitions: u32,
    /// Replicas.
    pub replicas: u32,
    /// `retention.ms` (-1: forever).
    pub retention_ms: i64,
}

/// Writes the manifests of the crate's aggregates.
pub fn exec(args: StrimziArgs, console: &mut Console<'_>) -> Result<ExitCode, Error> {
    let krate = host::locate(&args.package)?;
    let aggregates = host::read(&krate, &args.features, console.output().color)?.aggregates;
    let types: Vec<&str> = aggregates
        .iter()
        .map(|a| a.aggregate_type.as_str())
        .collect();
    let topics = topics(&types, &krate.settings, &args)?;
    let yaml = manifests(&args, &topics)?;
    match &args.out {
        Some(path) => {
            std::fs::write(path, &yaml).map_err(|e| Error::io(path, e))?;
            console.line(format_args!(
                "wrote: {} ({} topic(s) for `{}`)",
                path.display(),
                topics.len(),
                krate.package
            ))?;
        }
        None => console.text(&yaml)?,
    }
    console.document(&serde_json::json!({
        "package": krate.package,
        "topics": topics,
        "out": args.out,
        "manifests": args.out.is_none().then_some(&yaml),
    }))?;
    Ok(ExitCode::SUCCESS)
}

/// The topics of `aggregate_types`: per type, the settings of `[package.metadata.cqrs.topics]`
/// over the defaults of `args`. A setting for an unknown aggregate type, an unknown key or a
/// bad value is an error naming it.
pub fn topics(
    aggregate_types: &[&str],
    settings: &serde_json::Value,
    args: &StrimziArgs,
) -> Result<Vec<Topic>, Error> {
    let bad = |key: String, why: String| Error::BadTopicSetting { key, why };
    let configured = match settings.get("topics") {
        None | Some(serde_json::Value::Null) => serde_json::Map::new(),
        Some(serde_json::Value::Object(map)) => map.clone(),
        Some(_) => {
            return Err(bad(
                "topics".into(),
                "it must be a table of tables, one per aggregate type".into(),
            ));
        }
    };
    for name in configured.keys() {
        if !aggregate_types.contains(&name.as_str()) {
            return Err(bad(
                format!("topics.{name}"),
                format!(
                    "the crate has no aggregate type `{name}`; its aggregate types are: {}",
                    aggregate_types.join(", ")
                ),
            ));
        }
    }
    let default_retention =
        parse_retention(&args.retention).map_err(|why| bad("--retention".into(), why))?;
    check_count("--partitions", args.partitions, 1, u32::MAX)?;
    check_count("--replicas", args.replicas, 1, args.brokers.max(1))?;
    check_name("--cluster", &args.cluster)?;
    let mut topics = Vec::new();
    for aggregate_type in aggregate_types {
        let mut topic = Topic {
            aggregate_type: (*aggregate_type).to_owned(),
            name: aggregate_type.to_kebab_case(),
            partitions: args.partitions,
            replicas: args.replicas,
            retention_ms: default_retention,
        };
        if let Some(own) = configured.get(*aggregate_type) {
            let Some(own) = own.as_object() else {
                return Err(bad(
                    format!("topics.{aggregate_type}"),
                    "it must be a table: partitions, replicas, retention, topic".into(),
                ));
            };
            for (key, value) in own {
                let at = format!("topics.{aggregate_type}.{key}");
                let count = || {
                    value
                        .as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| bad(at.clone(), "expected a positive integer".into()))
                };
                match key.as_str() {
                    "partitions" => topic.partitions = count()?,
                    "replicas" => topic.replicas = count()?,
                    "retention" => {
                        let text = value.as_str().ok_or_else(|| {
                            bad(at.clone(), "expected a string such as \"30d\"".into())
                        })?;
                        topic.retention_ms =
                            parse_retention(text).map_err(|why| bad(at.clone(), why))?;
                    }
                    "topic" => {
                        topic.name = value
                            .as_str()
                            .ok_or_else(|| bad(at.clone(), "expected a string".into()))?
                            .to_owned();
                    }
                    other => {
                        return Err(bad(
                            at.clone(),
                            format!(
                                "unknown setting `{other}`; use partitions, replicas, retention or topic"
                            ),
                        ));
                    }
                }
            }
            check_count(
                &format!("topics.{aggregate_type}.partitions"),
                topic.partitions,
                1,
                u32::MAX,
            )?;
            check_count(
                &format!("topics.{aggregate_type}.replicas"),
                topic.replicas,
                1,
                args.brokers.max(1),
            )?;
        }
        check_name(&format!("the topic of `{aggregate_type}`"), &topic.name)?;
        topics.push(topic);
    }
    Ok(topics)
}

fn check_count(key: &str, value: u32, min: u32, max: u32) -> Result<(), Error> {
    if (min..=max).contains(&value) {
        return Ok(());
    }
    let hint = if key.ends_with("replicas") {
        " (replicas cannot exceed the brokers)"
    } else {
        ""
    };
    Err(Error::BadTopicSetting {
        key: key.to_owned(),
        why: format!("{value} is out of range: it must be from {min} to {max}{hint}"),
    })
}

/// A Kubernetes quantity ([`kube::check_quantity`]) as a topic setting.
fn check_quantity(what: &str, size: &str) -> Result<(), Error> {
    kube::check_quantity(size).map_err(|why| Error::BadTopicSetting {
        key: what.to_owned(),
        why,
    })
}

/// A Kubernetes resource name ([`kube::check_name`]): topic names are used as resource names,
/// so they must be one too.
fn check_name(what: &str, name: &str) -> Result<(), Error> {
    kube::check_name(name).map_err(|why| Error::BadTopicSetting {
        key: what.to_owned(),
        why,
    })
}

/// A duration as humantime reads it (`7d`, `12h`, `1h 30m`, `500ms`), or `forever`, as
/// milliseconds (`forever`: -1).
pub fn parse_retention(text: &str) -> Result<i64, String> {
    if text == "forever" {
        return Ok(-1);
    }
    let duration = humantime::parse_duration(text).map_err(|e| {
        format!("`{text}` is not a duration ({e}): write e.g. `7d`, `12h`, `1h 30m` or `500ms`, or `forever`")
    })?;
    i64::try_from(duration.as_millis())
        .ok()
        .filter(|ms| *ms > 0)
        .ok_or_else(|| format!("`{text}` is not a positive duration that fits in milliseconds"))
}

#[derive(Serialize)]
struct Context<'a> {
    api_version: &'static str,
    /// The operator predates the `v1` API, when KRaft and node pools were opt-in.
    opt_in_annotations: bool,
    cluster: &'a str,
    namespace: Option<&'a str>,
    brokers: u32,
    storage: &'a str,
    min_insync: u32,
    topics_only: bool,
    topics: &'a [Topic],
}

impl Render for Context<'_> {
    const TEMPLATE: Template = Template::Strimzi;
}

/// The YAML documents.
pub fn manifests(args: &StrimziArgs, topics: &[Topic]) -> Result<String, Error> {
    if let Some(namespace) = &args.namespace {
        check_name("--namespace", namespace)?;
    }
    if !args.topics_only {
        check_count("--brokers", args.brokers, 1, u32::MAX)?;
        check_quantity("--storage", &args.storage)?;
    }
    let context = Context {
        api_version: args.api_version.as_str(),
        opt_in_annotations: args.api_version == ApiVersion::V1beta2,
        cluster: &args.cluster,
        namespace: args.namespace.as_deref(),
        brokers: args.brokers,
        storage: &args.storage,
        // Writes with acks=all survive one broker down when there are 3 or more.
        min_insync: if args.brokers >= 3 { 2 } else { 1 },
        topics_only: args.topics_only,
        topics,
    };
    let yaml = context.render()?;
    Ok(format!("{}\n", yaml.trim()))
}

#[cfg(test)]
mod crd;

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: StrimziArgs,
    }

    fn args(extra: &[&str]) -> StrimziArgs {
        let mut argv = vec!["strimzi"];
        argv.extend(extra);
        Cli::parse_from(argv).args
    }

    #[test]
    fn retention_parses_units_and_refuses_the_rest() {
        assert_eq!(parse_retention("7d"), Ok(604_800_000));
        assert_eq!(parse_retention("12h"), Ok(43_200_000));
        assert_eq!(parse_retention("500ms"), Ok(500));
        assert_eq!(parse_retention("forever"), Ok(-1));
        assert_eq!(parse_retention("1h 30m"), Ok(5_400_000));
        assert!(parse_retention("7").unwrap_err().contains("not a duration"));
        assert!(parse_retention("0d").unwrap_err().contains("positive"));
        assert!(parse_retention("week").is_err());
    }

    #[test]
    fn per_aggregate_settings_override_the_defaults() {
        let settings = serde_json::json!({
            "topics": { "bank_account": { "partitions": 12, "retention": "30d", "replicas": 2 } }
        });
        let topics = topics(&["bank_account", "order"], &settings, &args(&[])).unwrap();
        assert_eq!(
            topics,
            vec![
                Topic {
                    aggregate_type: "bank_account".into(),
                    name: "bank-account".into(),
                    partitions: 12,
                    replicas: 2,
                    retention_ms: 2_592_000_000,
                },
                Topic {
                    aggregate_type: "order".into(),
                    name: "order".into(),
                    partitions: 6,
                    replicas: 3,
                    retention_ms: 604_800_000,
                },
            ]
        );
    }

    #[test]
    fn bad_settings_are_named() {
        let cases = [
            (
                serde_json::json!({ "topics": { "acount": { "partitions": 3 } } }),
                "topics.acount",
                "no aggregate type `acount`",
            ),
            (
                serde_json::json!({ "topics": { "order": { "partitons": 3 } } }),
                "topics.order.partitons",
                "unknown setting",
            ),
            (
                serde_json::json!({ "topics": { "order": { "replicas": 5 } } }),
                "topics.order.replicas",
                "out of range",
            ),
            (
                serde_json::json!({ "topics": { "order": { "topic": "Orders_V1" } } }),
                "the topic of `order`",
                "not a Kubernetes resource name",
            ),
        ];
        for (settings, key, why) in cases {
            let error = topics(&["order"], &settings, &args(&[])).unwrap_err();
            let text = error.to_string();
            assert!(text.contains(key) && text.contains(why), "{text}");
        }
    }

    /// The documents of `yaml`, parsed, each checked against its kind's CRD shape.
    fn parse_and_check(yaml: &str) -> Vec<yaml_rust2::Yaml> {
        let documents = yaml_rust2::YamlLoader::load_from_str(yaml)
            .unwrap_or_else(|e| panic!("not YAML: {e}\n{yaml}"));
        for document in &documents {
            let kind = document["kind"].as_str().expect("a kind");
            let shape = crd::resource(kind).unwrap_or_else(|| panic!("unexpected kind {kind}"));
            let problems = crd::check(document, &shape, "");
            assert!(problems.is_empty(), "{kind}: {problems:#?}\n{yaml}");
        }
        documents
    }

    /// Every document, for every shape of the command line, parses as YAML and fits the fields
    /// of Strimzi's CRDs (`crd.rs`); the topics and the pool name their cluster.
    #[test]
    fn manifests_fit_the_crds() {
        let command_lines: [&[&str]; 5] = [
            &[],
            &["--namespace", "bank", "--cluster", "payments"],
            &["--brokers", "1", "--replicas", "1", "--storage", "20Gi"],
            &["--api-version", "v1beta2"],
            &["--topics-only"],
        ];
        for extra in command_lines {
            let args = args(extra);
            let topics =
                topics(&["bank_account", "order"], &serde_json::Value::Null, &args).unwrap();
            let yaml = manifests(&args, &topics).unwrap();
            let documents = parse_and_check(&yaml);
            let kinds: Vec<&str> = documents
                .iter()
                .map(|d| d["kind"].as_str().unwrap())
                .collect();
            let topics_expected = ["KafkaTopic"; 4];
            if args.topics_only {
                assert_eq!(kinds, topics_expected, "{extra:?}");
            } else {
                assert_eq!(kinds[..2], ["Kafka", "KafkaNodePool"], "{extra:?}");
                assert_eq!(kinds[2..], topics_expected, "{extra:?}");
            }
            let version = match args.api_version {
                ApiVersion::V1 => "kafka.strimzi.io/v1",
                ApiVersion::V1beta2 => "kafka.strimzi.io/v1beta2",
            };
            for document in &documents {
                assert_eq!(document["apiVersion"].as_str(), Some(version), "{extra:?}");
                let labels = &document["metadata"]["labels"];
                if document["kind"].as_str() != Some("Kafka") {
                    assert_eq!(
                        labels["strimzi.io/cluster"].as_str(),
                        Some(args.cluster.as_str())
                    );
                }
            }
            let names: Vec<&str> = documents[documents.len() - 4..]
                .iter()
                .map(|d| d["spec"]["topicName"].as_str().unwrap())
                .collect();
            assert_eq!(
                names,
                [
                    "bank-account",
                    "bank-account-dead-letter",
                    "order",
                    "order-dead-letter"
                ]
            );
        }
    }

    #[test]
    fn only_the_older_api_carries_the_opt_in_annotations() {
        let topics = topics(&["order"], &serde_json::Value::Null, &args(&[])).unwrap();
        let v1 = manifests(&args(&[]), &topics).unwrap();
        let kafka = &parse_and_check(&v1)[0];
        assert!(kafka["metadata"]["annotations"].is_badvalue(), "{v1}");
        let older = manifests(&args(&["--api-version", "v1beta2"]), &topics).unwrap();
        let kafka = &parse_and_check(&older)[0];
        let annotations = &kafka["metadata"]["annotations"];
        assert_eq!(annotations["strimzi.io/kraft"].as_str(), Some("enabled"));
        assert_eq!(
            annotations["strimzi.io/node-pools"].as_str(),
            Some("enabled")
        );
    }

    /// The check is not a formality: misspelt keys, values out of the CRD's ranges and missing
    /// required fields are each reported at their path.
    #[test]
    fn the_crd_check_names_what_does_not_fit() {
        let yaml = "\
apiVersion: kafka.strimzi.io/v1
kind: KafkaTopic
metadata:
  name: Orders
spec:
  partition: 3
  replicas: 0
---
apiVersion: kafka.strimzi.io/v1
kind: Kafka
metadata:
  name: events
spec:
  kafka:
    listeners:
      - name: plaintext-listener
        port: 80
        type: internal
";
        let documents = yaml_rust2::YamlLoader::load_from_str(yaml).unwrap();
        let problems: Vec<String> = documents
            .iter()
            .flat_map(|d| crd::check(d, &crd::resource(d["kind"].as_str().unwrap()).unwrap(), ""))
            .collect();
        let expected = [
            "metadata.name: expected a Kubernetes resource name",
            "spec.partition: not a field of the CRD",
            "spec.replicas: expected an integer from 1 to 32767",
            "spec.kafka.listeners[0].name: expected ^[a-z0-9]{1,11}$",
            "spec.kafka.listeners[0].port: expected an integer from 9092 to 65535",
            "spec.kafka.listeners[0]: `tls` is required",
        ];
        assert_eq!(problems.len(), expected.len(), "{problems:#?}");
        for (problem, start) in problems.iter().zip(expected) {
            assert!(problem.starts_with(start), "{problem} (expected {start})");
        }
    }

    #[test]
    fn bad_cluster_settings_are_named() {
        let topics = topics(&["order"], &serde_json::Value::Null, &args(&[])).unwrap();
        for (extra, key, why) in [
            (
                &["--storage", "100GB"][..],
                "--storage",
                "not a Kubernetes quantity",
            ),
            (
                &["--storage", "0Gi"][..],
                "--storage",
                "not a Kubernetes quantity",
            ),
            (&["--brokers", "0"][..], "--brokers", "out of range"),
        ] {
            let error = manifests(&args(extra), &topics).unwrap_err().to_string();
            assert!(error.contains(key) && error.contains(why), "{error}");
        }
        assert!(manifests(&args(&["--storage", "1.5Ti"]), &topics).is_ok());
    }

    #[test]
    fn topics_only_leaves_the_cluster_out() {
        let topics = topics(&["order"], &serde_json::Value::Null, &args(&[])).unwrap();
        let yaml = manifests(&args(&["--topics-only"]), &topics).unwrap();
        assert!(!yaml.contains("kind: Kafka\n"));
        assert_eq!(yaml.matches("kind: KafkaTopic").count(), 2);
    }
}
