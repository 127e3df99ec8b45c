//! `cargo cqrs deploy` on services from `cargo cqrs new` (each store, with and without a bus)
//! and several flag combinations: every manifest deserializes into its `k8s-openapi` type and
//! serializes back to the same JSON, so no field is one Kubernetes' API does not have; the
//! Deployment carries the probes, grace period, replicas, configuration and security the
//! service needs. Bad flags are refused with a message naming the flag, and nothing is written.

use std::path::Path;
use std::process::{Command, Output};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use serde_json::{Map, Value};
use yaml_rust2::{Yaml, YamlLoader};

const BIN: &str = env!("CARGO_BIN_EXE_cargo-cqrs");

fn cqrs(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("cqrs")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn json(yaml: &Yaml) -> Value {
    match yaml {
        Yaml::Hash(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.as_str().expect("string keys").to_owned(), json(v)))
                .collect::<Map<_, _>>(),
        ),
        Yaml::Array(items) => Value::Array(items.iter().map(json).collect()),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Integer(n) => Value::from(*n),
        Yaml::Real(r) => Value::from(r.parse::<f64>().unwrap()),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Null => Value::Null,
        other => panic!("unexpected YAML: {other:?}"),
    }
}

/// `value` read as a `T` and written back: equal when every field is one of `T`'s.
fn checked<T: serde::de::DeserializeOwned + serde::Serialize>(value: &Value) -> Result<T, String> {
    let typed: T = serde_json::from_value(value.clone())
        .map_err(|e| format!("not a {}: {e}\n{value:#}", std::any::type_name::<T>()))?;
    let back = serde_json::to_value(&typed).unwrap();
    if &back != value {
        return Err(format!(
            "fields the Kubernetes API does not have, or lost values:\n{value:#}\nread back as\n{back:#}"
        ));
    }
    Ok(typed)
}

fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(value: &Value) -> T {
    checked(value).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_check_finds_unknown_and_misplaced_fields() {
    let good = serde_json::json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "a" }, "data": { "K": "v" } });
    assert!(checked::<ConfigMap>(&good).is_ok());
    let unknown = serde_json::json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "a" }, "datas": { "K": "v" } });
    assert!(checked::<ConfigMap>(&unknown).is_err());
    let misplaced = serde_json::json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "a", "replicas": 2 } });
    assert!(checked::<ConfigMap>(&misplaced).is_err());
}

/// The manifests of `dir/deploy/kubernetes.yaml`, each checked; the Deployment.
fn manifests(dir: &Path) -> (Vec<String>, Deployment) {
    let text = std::fs::read_to_string(dir.join("deploy/kubernetes.yaml")).unwrap();
    let mut kinds = Vec::new();
    let mut deployment = None;
    for doc in YamlLoader::load_from_str(&text).unwrap() {
        let value = json(&doc);
        let kind = value["kind"].as_str().unwrap().to_owned();
        match kind.as_str() {
            "ConfigMap" => drop(round_trip::<ConfigMap>(&value)),
            "Secret" => drop(round_trip::<Secret>(&value)),
            "PersistentVolumeClaim" => drop(round_trip::<PersistentVolumeClaim>(&value)),
            "Service" => drop(round_trip::<Service>(&value)),
            "Deployment" => deployment = Some(round_trip::<Deployment>(&value)),
            other => panic!("unexpected kind {other}"),
        }
        kinds.push(kind);
    }
    (kinds, deployment.expect("a Deployment"))
}

#[test]
fn manifests_are_valid_kubernetes_for_every_store_bus_and_flags() {
    let parent = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str], &[&str]); 5] = [
        ("sqlite", &[], &[]),
        (
            "postgres",
            &["--bus", "kafka"],
            &[
                "--namespace",
                "shop",
                "--replicas",
                "3",
                "--image",
                "ghcr.io/acme/orders:1.2",
                "--database-url",
                "postgres://app:s3cret@db:5432/orders",
            ],
        ),
        (
            "postgres",
            &[],
            &[
                "--grace-period",
                "60",
                "--cpu",
                "1",
                "--memory",
                "1Gi",
                "--port",
                "9000",
            ],
        ),
        (
            "memory",
            &["--bus", "nats"],
            &["--store", "memory", "--brokers", "nats://queue:4222"],
        ),
        (
            "sqlite",
            &["--bus", "kafka"],
            &["--storage", "50Gi", "--out", "k8s"],
        ),
    ];
    for (i, (store, new_flags, flags)) in cases.into_iter().enumerate() {
        let name = format!("svc-{i}");
        let mut args = vec!["new", &name, "--store", store];
        args.extend(new_flags);
        ok(cqrs(parent.path(), &args));
        let dir = parent.path().join(&name);
        let mut args = vec!["deploy"];
        args.extend(flags);
        let said = ok(cqrs(&dir, &args));
        let out = if flags.contains(&"k8s") {
            "k8s"
        } else {
            "deploy"
        };
        assert!(
            said.contains(&format!("wrote: {out}/kubernetes.yaml")),
            "{said}"
        );
        assert!(said.contains(&format!("wrote: {out}/Dockerfile")), "{said}");
        if out != "deploy" {
            std::fs::rename(dir.join(out), dir.join("deploy")).unwrap();
        }
        let (kinds, deployment) = manifests(&dir);
        let expected: &[&str] = match store {
            "sqlite" => &[
                "ConfigMap",
                "PersistentVolumeClaim",
                "Deployment",
                "Service",
            ],
            "postgres" => &["ConfigMap", "Secret", "Deployment", "Service"],
            _ => &["ConfigMap", "Deployment", "Service"],
        };
        assert_eq!(kinds, expected, "{name}");

        let spec = deployment.spec.unwrap();
        let replicas = flags
            .iter()
            .position(|f| *f == "--replicas")
            .map_or(if store == "postgres" { 2 } else { 1 }, |at| {
                flags[at + 1].parse().unwrap()
            });
        assert_eq!(spec.replicas, Some(replicas));
        let pod = spec.template.spec.unwrap();
        let grace = if flags.contains(&"60") { 60 } else { 30 };
        assert_eq!(pod.termination_grace_period_seconds, Some(grace));
        assert_eq!(pod.security_context.unwrap().run_as_non_root, Some(true));
        let container = &pod.containers[0];
        let probe_path = |probe: &Option<k8s_openapi::api::core::v1::Probe>| {
            probe
                .as_ref()
                .unwrap()
                .http_get
                .as_ref()
                .unwrap()
                .path
                .clone()
                .unwrap()
        };
        assert_eq!(probe_path(&container.readiness_probe), "/health/ready");
        assert_eq!(probe_path(&container.liveness_probe), "/health/live");
        let port = if flags.contains(&"9000") { 9000 } else { 8080 };
        assert_eq!(container.ports.as_ref().unwrap()[0].container_port, port);
        let security = container.security_context.as_ref().unwrap();
        assert_eq!(security.read_only_root_filesystem, Some(true));
        assert_eq!(security.allow_privilege_escalation, Some(false));
        let sources = container.env_from.as_ref().unwrap();
        assert_eq!(
            sources.len(),
            if store == "postgres" { 2 } else { 1 },
            "{name}"
        );
        if flags.contains(&"ghcr.io/acme/orders:1.2") {
            assert_eq!(container.image.as_deref(), Some("ghcr.io/acme/orders:1.2"));
            assert_eq!(deployment.metadata.namespace.as_deref(), Some("shop"));
        } else {
            assert_eq!(
                container.image.as_deref(),
                Some(format!("{name}:latest").as_str())
            );
        }
        let config = std::fs::read_to_string(dir.join("deploy/kubernetes.yaml")).unwrap();
        match new_flags.get(1) {
            Some(&"kafka") => assert!(
                config.contains("KAFKA_BROKERS: \"events-kafka-bootstrap:9092\""),
                "{config}"
            ),
            Some(&"nats") => assert!(
                config.contains("NATS_URL: \"nats://queue:4222\""),
                "{config}"
            ),
            _ => assert!(!config.contains("BROKERS") && !config.contains("NATS_URL")),
        }
        let dockerfile = std::fs::read_to_string(dir.join("deploy/Dockerfile")).unwrap();
        assert!(
            dockerfile.contains(&format!("cargo build --release --locked --bin {name}")),
            "{dockerfile}"
        );
        assert!(
            dockerfile.contains("FROM gcr.io/distroless/cc-debian12:nonroot"),
            "{dockerfile}"
        );
        assert!(dockerfile.contains("USER 65532:65532"), "{dockerfile}");
    }
}

#[test]
fn bad_flags_are_refused_by_name_and_nothing_is_written() {
    let parent = tempfile::tempdir().unwrap();
    ok(cqrs(parent.path(), &["new", "svc-sqlite"]));
    ok(cqrs(
        parent.path(),
        &["new", "svc-pg", "--store", "postgres"],
    ));
    let cases: [(&str, &[&str], &str); 11] = [
        (
            "svc-sqlite",
            &["--replicas", "2"],
            "invalid value for --replicas: 2 instances cannot share an SQLite file",
        ),
        (
            "svc-pg",
            &["--replicas", "0"],
            "invalid value for --replicas: 0 runs nothing",
        ),
        (
            "svc-pg",
            &["--namespace", "Shop"],
            "invalid value for --namespace: `Shop` is not a Kubernetes name",
        ),
        (
            "svc-pg",
            &["--image", "my image"],
            "invalid value for --image: `my image` is not an image reference",
        ),
        (
            "svc-pg",
            &["--memory", "1GB"],
            "invalid value for --memory: `1GB` is not a Kubernetes quantity",
        ),
        (
            "svc-pg",
            &["--cpu", "fast"],
            "invalid value for --cpu: `fast` is not a CPU quantity",
        ),
        (
            "svc-pg",
            &["--grace-period", "5"],
            "invalid value for --grace-period: 5 s leaves no time",
        ),
        (
            "svc-pg",
            &["--port", "0"],
            "invalid value for --port: 0 is not a port",
        ),
        (
            "svc-pg",
            &["--database-url", "mysql://x"],
            "invalid value for --database-url: expected postgres://",
        ),
        (
            "svc-sqlite",
            &["--brokers", "kafka:9092"],
            "invalid value for --brokers: this service has no event bus",
        ),
        (
            "svc-sqlite",
            &["--out", "../elsewhere"],
            "invalid value for --out: `../elsewhere` leaves the package folder",
        ),
    ];
    for (service, flags, message) in cases {
        let dir = parent.path().join(service);
        let mut args = vec!["deploy"];
        args.extend(flags);
        let refused = cqrs(&dir, &args);
        assert_eq!(refused.status.code(), Some(2), "{flags:?}");
        let said = String::from_utf8_lossy(&refused.stderr);
        assert!(
            said.starts_with(&format!("error: {message}")),
            "{flags:?}: {said}"
        );
        assert!(said.contains("help: nothing was written"), "{said}");
        assert!(!dir.join("deploy").exists(), "{flags:?} wrote files");
    }
}
