//! `cargo cqrs new`: a new service crate from the embedded templates: one aggregate with
//! versioned events, commands and handlers, a projection, given/when/then tests, an HTTP API
//! and configuration from the environment.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use heck::ToSnakeCase;
use serde::Serialize;
use toml_edit::{Array, DocumentMut, InlineTable};

use crate::error::Error;
use crate::output::Console;
use crate::templates::Template;

/// The event store the service opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Store {
    /// An SQLite file (embedded; nothing to install).
    Sqlite,
    /// A PostgreSQL database (`DATABASE_URL`), for many instances.
    Postgres,
    /// In memory, gone when the service stops.
    Memory,
}

/// The broker the service publishes its events to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Bus {
    /// Kafka (`KAFKA_BROKERS`), through rdkafka.
    Kafka,
    /// NATS JetStream (`NATS_URL`).
    Nats,
}

/// `cargo cqrs new`
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The crate's name: letters, digits, `-` and `_`, starting with a letter.
    pub name: String,
    /// The event store the service uses.
    #[arg(long, value_enum, default_value = "sqlite")]
    pub store: Store,
    /// Publish the events through a transactional outbox to this broker, and consume them.
    #[arg(long, value_enum, value_name = "BROKER")]
    pub bus: Option<Bus>,
    /// The folder to create (default: `./<NAME>`).
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// Depend on `cqrs-runtime` at this path (default: this cargo-cqrs's own checkout).
    #[arg(long, value_name = "DIR", conflicts_with = "runtime_version")]
    pub runtime_path: Option<PathBuf>,
    /// Depend on this published version of `cqrs-runtime` instead of a path.
    #[arg(long, value_name = "VERSION")]
    pub runtime_version: Option<String>,
    /// Write into an existing non-empty folder, replacing the files the templates write.
    #[arg(long)]
    pub force: bool,
}

#[derive(Serialize)]
struct Context<'a> {
    name: &'a str,
    crate_name: String,
    store: Store,
    store_title: &'static str,
    bus: Option<Bus>,
    bus_title: &'static str,
}

/// Creates the crate.
pub fn exec(args: NewArgs, console: &mut Console<'_>) -> Result<ExitCode, Error> {
    check_name(&args.name)?;
    let dir = args
        .path
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    check_dir(&dir, args.force)?;
    let context = Context {
        name: &args.name,
        crate_name: args.name.to_snake_case(),
        store: args.store,
        store_title: match args.store {
            Store::Sqlite => "SQLite",
            Store::Postgres => "PostgreSQL",
            Store::Memory => "in-memory",
        },
        bus: args.bus,
        bus_title: match args.bus {
            Some(Bus::Kafka) => "Kafka",
            Some(Bus::Nats) => "NATS JetStream",
            None => "",
        },
    };
    let runtime = runtime_dependency(&args)?;
    let bus_templates = if args.bus.is_some() {
        &Template::BUS[..]
    } else {
        &[]
    };
    let mut files = Vec::new();
    for template in Template::NEW.iter().chain(bus_templates).copied() {
        let mut text = template.render(&context)?;
        if template == Template::CargoToml {
            text = with_runtime(&text, runtime.clone())?;
        }
        files.push((template.target(), text));
    }
    let mut written = Vec::new();
    for (target, content) in &files {
        let path = dir.join(target);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        std::fs::write(&path, content).map_err(|e| Error::io(&path, e))?;
        written.push(path);
    }
    crate::format_rust(&written);
    for path in &written {
        console.line(format_args!("added: {}", path.display()))?;
    }
    console.line(format_args!(
        "created `{}` ({} event store): cd {} && cargo run",
        args.name,
        context.store_title,
        dir.display()
    ))?;
    console.document(&serde_json::json!({
        "package": args.name,
        "path": dir,
        "store": args.store,
        "bus": args.bus,
        "added": written,
    }))?;
    Ok(ExitCode::SUCCESS)
}

/// Rust keywords and names that cannot be a crate's.
const RESERVED: &[&str] = &[
    "as",
    "async",
    "await",
    "break",
    "const",
    "continue",
    "crate",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "fn",
    "for",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "match",
    "mod",
    "move",
    "mut",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "type",
    "unsafe",
    "use",
    "where",
    "while",
    "abstract",
    "become",
    "box",
    "do",
    "final",
    "gen",
    "macro",
    "override",
    "priv",
    "try",
    "typeof",
    "unsized",
    "virtual",
    "yield",
    "std",
    "core",
    "alloc",
    "test",
    "proc_macro",
    "cqrs_runtime",
    "cqrs_macros",
    "axum",
    "tokio",
    "serde",
    "schemars",
];

/// A crate name cargo accepts, that does not shadow a keyword or a crate the service uses.
pub fn check_name(name: &str) -> Result<(), Error> {
    let bad = |why: &str| Error::BadName {
        name: name.to_owned(),
        why: why.to_owned(),
    };
    let mut chars = name.chars();
    match chars.next() {
        None => return Err(bad("it is empty")),
        Some(c) if !c.is_ascii_alphabetic() => {
            return Err(bad("it must start with an ASCII letter"));
        }
        _ => {}
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(bad(&format!(
            "`{c}` is not allowed; use ASCII letters, digits, `-` and `_`"
        )));
    }
    if name.len() > 64 {
        return Err(bad("it is longer than 64 characters"));
    }
    if RESERVED.contains(&name.to_snake_case().as_str()) {
        return Err(bad(
            "it is a Rust keyword or the name of a crate the service depends on",
        ));
    }
    Ok(())
}

fn check_dir(dir: &Path, force: bool) -> Result<(), Error> {
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            if entries.count() > 0 && !force {
                Err(Error::NotEmpty {
                    dir: dir.to_path_buf(),
                })
            } else {
                Ok(())
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(dir, e)),
    }
}

/// The `cqrs-runtime` dependency: a path or a version, and the features the service uses.
fn runtime_dependency(args: &NewArgs) -> Result<InlineTable, Error> {
    let mut dependency = InlineTable::new();
    match (&args.runtime_path, &args.runtime_version) {
        (_, Some(version)) => dependency.insert("version", version.as_str().into()),
        (Some(path), None) => {
            let path = path.canonicalize().map_err(|e| Error::io(path, e))?;
            if !path.join("Cargo.toml").is_file() {
                return Err(Error::NoRuntimeAt { path });
            }
            dependency.insert("path", path.to_string_lossy().as_ref().into())
        }
        (None, None) => {
            // Built from this repository's checkout: its runtime, so that a change to the
            // runtime is used at once. Installed from its package: the version it was
            // released with.
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime");
            match path.canonicalize() {
                Ok(path) if path.join("Cargo.toml").is_file() => {
                    dependency.insert("path", path.to_string_lossy().as_ref().into())
                }
                _ => dependency.insert("version", env!("CARGO_PKG_VERSION").into()),
            }
        }
    };
    // `schema`: the commands' JSON Schemas, for the OpenAPI document.
    let mut features = vec!["schema"];
    if args.store == Store::Postgres {
        features.push("postgres");
    }
    match args.bus {
        Some(Bus::Kafka) => features.push("kafka"),
        Some(Bus::Nats) => features.push("nats"),
        None => {}
    }
    dependency.insert("features", Array::from_iter(features).into());
    Ok(dependency)
}

/// The rendered `Cargo.toml` with its `cqrs-runtime` dependency set, in place.
fn with_runtime(manifest: &str, runtime: InlineTable) -> Result<String, Error> {
    let template = || Error::Template {
        template: "new/Cargo.toml.j2".into(),
        why: "it has no `cqrs-runtime` in `[dependencies]`".into(),
    };
    let mut document: DocumentMut =
        manifest
            .parse()
            .map_err(|e: toml_edit::TomlError| Error::Template {
                template: "new/Cargo.toml.j2".into(),
                why: e.to_string(),
            })?;
    let dependency = document
        .get_mut("dependencies")
        .and_then(|d| d.get_mut("cqrs-runtime"))
        .ok_or_else(template)?;
    *dependency = toml_edit::value(runtime);
    Ok(document.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_renders_for_every_store_and_bus() {
        let buses = [None, Some(Bus::Kafka), Some(Bus::Nats)];
        for (store, bus) in [Store::Sqlite, Store::Postgres, Store::Memory]
            .into_iter()
            .flat_map(|s| buses.map(|b| (s, b)))
        {
            let context = Context {
                name: "my-shop",
                crate_name: "my_shop".into(),
                store,
                store_title: "X",
                bus,
                bus_title: "B",
            };
            for template in Template::NEW.iter().chain(&Template::BUS) {
                let text = template.render(&context).unwrap();
                assert!(
                    !text.contains("{{") && !text.contains("{%"),
                    "{template:?} left a tag"
                );
                assert!(!text.is_empty(), "{template:?} is empty");
            }
            let main = Template::Main.render(&context).unwrap();
            let expected = match store {
                Store::Sqlite => "SqliteStore::open",
                Store::Postgres => "PostgresStore::connect",
                Store::Memory => "InMemoryStore::new",
            };
            assert!(main.contains(expected), "{store:?}: {main}");
            assert!(main.contains("use my_shop::api"));
            assert_eq!(
                main.contains("Relay::new"),
                bus.is_some(),
                "{bus:?}: {main}"
            );
            if let Some(bus) = bus {
                let module = Template::Bus.render(&context).unwrap();
                let client = match bus {
                    Bus::Kafka => "KafkaPublisher::new",
                    Bus::Nats => "NatsPublisher::connect",
                };
                assert!(module.contains(client), "{bus:?}: {module}");
            }
        }
    }

    #[test]
    fn the_runtime_dependency_is_written_as_toml() {
        let args = |store, bus, version: Option<&str>| NewArgs {
            name: "shop".into(),
            store,
            bus,
            path: None,
            runtime_path: None,
            runtime_version: version.map(str::to_owned),
            force: false,
        };
        let context = Context {
            name: "shop",
            crate_name: "shop".into(),
            store: Store::Postgres,
            store_title: "X",
            bus: None,
            bus_title: "",
        };
        let rendered = Template::CargoToml.render(&context).unwrap();
        // A version with characters TOML must escape stays one string.
        let cases = [
            (
                Store::Postgres,
                Some(Bus::Kafka),
                "=0.1.0 \"x\"",
                vec!["schema", "postgres", "kafka"],
            ),
            (
                Store::Sqlite,
                Some(Bus::Nats),
                "0.1",
                vec!["schema", "nats"],
            ),
            (Store::Memory, None, "0.1", vec!["schema"]),
        ];
        for (store, bus, version, features) in cases {
            let runtime = runtime_dependency(&args(store, bus, Some(version))).unwrap();
            let manifest = with_runtime(&rendered, runtime).unwrap();
            let document: toml_edit::DocumentMut = manifest.parse().unwrap();
            let dependency = &document["dependencies"]["cqrs-runtime"];
            assert_eq!(dependency["version"].as_str(), Some(version), "{manifest}");
            let written: Vec<&str> = dependency["features"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap())
                .collect();
            assert_eq!(written, features);
            assert_eq!(document["package"]["name"].as_str(), Some("shop"));
            // In place: between `axum` and the next dependency, as the template orders them.
            let axum = manifest.find("axum =").unwrap();
            let runtime = manifest.find("cqrs-runtime =").unwrap();
            let metrics = manifest.find("metrics-exporter-prometheus =").unwrap();
            assert!(axum < runtime && runtime < metrics, "{manifest}");
        }
        // `--runtime-path` at a folder without a crate.
        let mut bad = args(Store::Sqlite, None, None);
        bad.runtime_path = Some(std::env::temp_dir());
        assert!(matches!(
            runtime_dependency(&bad),
            Err(Error::NoRuntimeAt { .. })
        ));
    }

    #[test]
    fn names_are_checked() {
        for good in ["shop", "my-shop", "shop_2"] {
            check_name(good).unwrap();
        }
        for (bad, why) in [
            ("", "empty"),
            ("2shop", "start with an ASCII letter"),
            ("my shop", "` ` is not allowed"),
            ("café", "`é` is not allowed"),
            ("fn", "Rust keyword"),
            ("std", "Rust keyword"),
            ("tokio", "crate the service depends on"),
        ] {
            let error = check_name(bad).unwrap_err().to_string();
            assert!(error.contains(why), "{bad:?}: {error}");
        }
    }
}
