//! `cargo cqrs deploy`: what runs a service on Kubernetes: a Dockerfile (a multi-stage build
//! into a small distroless image, as a non-root user) and the manifests: a `Deployment` whose
//! probes are the service's health endpoints, with a termination grace period and a hardened
//! security context, a `Service`, a `ConfigMap` and, for PostgreSQL, a `Secret` with the
//! database URL; for SQLite, a `PersistentVolumeClaim` for the file and one replica.
//!
//! The store and the bus are read from the crate's `cqrs-runtime` features (`postgres`,
//! `kafka`, `nats`); `--store` says otherwise (the memory store cannot be told from them). The
//! tests deserialize every manifest into the `k8s-openapi` types and refuse unknown fields.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use heck::ToKebabCase;
use serde::Serialize;

use crate::error::Error;
use crate::kube;
use crate::output::Console;
use crate::schema::{Package, host};
use crate::templates::{Render, Template};

/// `cargo cqrs deploy`
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The image the Deployment runs (default: `<package>:latest`, as the Dockerfile's
    /// `docker build -t` would tag it).
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// The namespace of every resource (default: none, so `kubectl -n` decides).
    #[arg(long, value_name = "NAME")]
    pub namespace: Option<String>,
    /// Instances (PostgreSQL only: an SQLite file or an in-memory store has one).
    #[arg(long, value_name = "N")]
    pub replicas: Option<u32>,
    /// The event store, when the crate's features do not tell (`memory`).
    #[arg(long, value_name = "STORE", value_enum)]
    pub store: Option<StoreKind>,
    /// The port the container listens on.
    #[arg(long, value_name = "PORT", default_value_t = 8080)]
    pub port: u16,
    /// Seconds Kubernetes waits after SIGTERM before killing the pod: the time to answer the
    /// requests in flight and stop the runners (more than the 5 s pre-stop pause).
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub grace_period: u32,
    /// CPU requested.
    #[arg(long, value_name = "CPU", default_value = "100m")]
    pub cpu: String,
    /// Memory requested, and the limit.
    #[arg(long, value_name = "SIZE", default_value = "256Mi")]
    pub memory: String,
    /// The SQLite volume's size.
    #[arg(long, value_name = "SIZE", default_value = "10Gi")]
    pub storage: String,
    /// The PostgreSQL URL put in the Secret (default: a placeholder to replace).
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// The Kafka bootstrap servers or the NATS URL (default: the bootstrap service of the
    /// `events` cluster of `cargo cqrs strimzi`, or `nats://nats:4222`).
    #[arg(long, value_name = "ADDRESS")]
    pub brokers: Option<String>,
    /// The folder to write `Dockerfile` and `kubernetes.yaml` to, inside the package.
    #[arg(long, value_name = "DIR", default_value = "deploy")]
    pub out: PathBuf,
    #[command(flatten)]
    pub package: Package,
}

/// The event store a service runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    // SQLite, the runtime's default feature.
    Sqlite,
    // PostgreSQL (feature `postgres`).
    Postgres,
    // In memory.
    Memory,
}

/// What the templates are filled with; every user-given string is checked or JSON-quoted
/// (a JSON string is a YAML double-quoted scalar).
#[derive(Debug, Serialize)]
struct Context {
    package: String,
    name: String,
    binary: String,
    image: String,
    namespace: Option<String>,
    replicas: u32,
    store: StoreKind,
    bus: Option<&'static str>,
    brokers: String,
    port: u16,
    grace_period: u32,
    cpu: String,
    memory: String,
    storage: String,
    database_url: String,
    placeholder: bool,
    out_dir: String,
}

impl Render for Context {
    const TEMPLATE: Template = Template::Kubernetes;
}

/// The Dockerfile's context: the same.
#[derive(Serialize)]
#[serde(transparent)]
struct Dockerfile<'a>(&'a Context);

impl Render for Dockerfile<'_> {
    const TEMPLATE: Template = Template::Dockerfile;
}

const PLACEHOLDER_URL: &str = "postgres://USER:PASSWORD@HOST:5432/DATABASE";

/// Writes the Dockerfile and the manifests.
pub fn exec(args: DeployArgs, console: &mut Console<'_>) -> Result<ExitCode, Error> {
    let krate = host::locate(&args.package)?;
    let context = context(&args, &krate)?;
    let dir = out_dir(&krate.dir, &args.out)?;
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let files = [
        (dir.join("Dockerfile"), Dockerfile(&context).render()?),
        (dir.join("kubernetes.yaml"), context.render()?),
    ];
    let mut wrote = Vec::new();
    for (path, text) in &files {
        let text = format!("{}\n", text.trim_end());
        std::fs::write(path, text).map_err(|e| Error::io(path, e))?;
        wrote.push(path.strip_prefix(&krate.dir).unwrap_or(path).to_path_buf());
    }
    let ignore = krate.dir.join(".dockerignore");
    if !ignore.exists() {
        std::fs::write(&ignore, "target/\n.git/\n*.db\n*.db-*\n")
            .map_err(|e| Error::io(&ignore, e))?;
        wrote.push(".dockerignore".into());
    }
    let mut notes = Vec::new();
    if let Some(runtime) = krate.runtime_path().filter(|p| !p.starts_with(&krate.dir)) {
        notes.push(format!(
            "`cqrs-runtime` is a path dependency ({}), outside the Docker build context; \
             depend on a published version (`cqrs-runtime = \"{}\"`) before building the image",
            runtime.display(),
            env!("CARGO_PKG_VERSION")
        ));
    }
    if context.placeholder {
        notes.push(format!(
            "the Secret `{}-secrets` holds a placeholder DATABASE_URL; give `--database-url`, or create the Secret with kubectl",
            context.name
        ));
    }
    for path in &wrote {
        console.line(format_args!("wrote: {}", path.display()))?;
    }
    for note in &notes {
        console.line(format_args!("note: {note}"))?;
    }
    console.document(&serde_json::json!({
        "package": krate.package,
        "wrote": wrote,
        "notes": notes,
    }))?;
    Ok(ExitCode::SUCCESS)
}

/// The flags and the crate, checked: each bad value is an error naming its flag.
fn context(args: &DeployArgs, krate: &host::Crate) -> Result<Context, Error> {
    let bad = |flag: &str, why: String| Error::BadFlag {
        flag: flag.to_owned(),
        why,
    };
    let has = |feature: &str| krate.runtime_features.iter().any(|f| f == feature);
    let store = match args.store {
        Some(store) => store,
        None if has("postgres") => StoreKind::Postgres,
        None => StoreKind::Sqlite,
    };
    let bus = match (has("kafka"), has("nats")) {
        (true, _) => Some("kafka"),
        (false, true) => Some("nats"),
        (false, false) => None,
    };
    let name = krate.package.to_kebab_case();
    kube::check_label(&name).map_err(|why| bad("the package name", why))?;
    let binary = match krate.binaries.as_slice() {
        [] => {
            return Err(Error::NoBinary {
                package: krate.package.clone(),
            });
        }
        [one] => one.clone(),
        several => several
            .iter()
            .find(|b| **b == krate.package)
            .cloned()
            .ok_or_else(|| Error::NoBinary {
                package: krate.package.clone(),
            })?,
    };
    let image = args
        .image
        .clone()
        .unwrap_or_else(|| format!("{name}:latest"));
    kube::check_image(&image).map_err(|why| bad("--image", why))?;
    if let Some(namespace) = &args.namespace {
        kube::check_label(namespace).map_err(|why| bad("--namespace", why))?;
    }
    let replicas = args
        .replicas
        .unwrap_or(if store == StoreKind::Postgres { 2 } else { 1 });
    if replicas == 0 {
        return Err(bad("--replicas", "0 runs nothing; give 1 or more".into()));
    }
    if replicas > 1 && store != StoreKind::Postgres {
        return Err(bad(
            "--replicas",
            format!(
                "{replicas} instances cannot share {}: run one, or move to PostgreSQL (`cargo cqrs new --store postgres`) to run many",
                if store == StoreKind::Sqlite {
                    "an SQLite file"
                } else {
                    "an in-memory store"
                }
            ),
        ));
    }
    if args.port == 0 {
        return Err(bad(
            "--port",
            "0 is not a port; give 1 to 65535, such as 8080".into(),
        ));
    }
    if args.grace_period <= 5 {
        return Err(bad(
            "--grace-period",
            format!(
                "{} s leaves no time after the 5 s pre-stop pause; give more than 5, such as 30",
                args.grace_period
            ),
        ));
    }
    kube::check_cpu(&args.cpu).map_err(|why| bad("--cpu", why))?;
    kube::check_quantity(&args.memory).map_err(|why| bad("--memory", why))?;
    kube::check_quantity(&args.storage).map_err(|why| bad("--storage", why))?;
    if args.database_url.is_some() && store != StoreKind::Postgres {
        return Err(bad(
            "--database-url",
            "this service does not use PostgreSQL".into(),
        ));
    }
    if let Some(url) = &args.database_url
        && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
    {
        return Err(bad(
            "--database-url",
            "expected postgres://user:password@host:5432/database".into(),
        ));
    }
    if args.brokers.is_some() && bus.is_none() {
        return Err(bad(
            "--brokers",
            "this service has no event bus (no `kafka` or `nats` feature)".into(),
        ));
    }
    let brokers = args.brokers.clone().unwrap_or_else(|| match bus {
        Some("kafka") => "events-kafka-bootstrap:9092".to_owned(),
        _ => "nats://nats:4222".to_owned(),
    });
    if brokers.is_empty() || brokers.chars().any(char::is_whitespace) {
        return Err(bad(
            "--brokers",
            format!("`{brokers}` is not an address: use host:port (Kafka) or nats://host:4222"),
        ));
    }
    let quoted = |s: &str| serde_json::to_string(s).unwrap_or_default();
    Ok(Context {
        package: krate.package.clone(),
        name,
        binary,
        image: quoted(&image),
        namespace: args.namespace.clone(),
        replicas,
        store,
        bus,
        brokers: quoted(&brokers),
        port: args.port,
        grace_period: args.grace_period,
        cpu: quoted(&args.cpu),
        memory: quoted(&args.memory),
        storage: quoted(&args.storage),
        database_url: quoted(args.database_url.as_deref().unwrap_or(PLACEHOLDER_URL)),
        placeholder: args.database_url.is_none(),
        out_dir: args.out.display().to_string(),
    })
}

/// `--out` under the package folder; a path that leaves it is refused.
fn out_dir(package: &Path, out: &Path) -> Result<PathBuf, Error> {
    let leaves = out.is_absolute()
        || out
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir));
    if leaves {
        return Err(Error::BadFlag {
            flag: "--out".to_owned(),
            why: format!(
                "`{}` leaves the package folder; give a folder inside it, such as `deploy` (the default)",
                out.display()
            ),
        });
    }
    Ok(package.join(out))
}
