//! `cargo cqrs new`: a new service crate from the embedded templates: one aggregate with
//! versioned events, commands and handlers, a projection, given/when/then tests, an HTTP API
//! and configuration from the environment.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use heck::ToSnakeCase;
use serde::Serialize;

use crate::error::Error;
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
    runtime: String,
}

/// Creates the crate.
pub fn exec(args: NewArgs, out: &mut dyn Write) -> Result<ExitCode, Error> {
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
        runtime: runtime_dependency(&args)?,
    };
    let bus_templates = if args.bus.is_some() {
        &Template::BUS[..]
    } else {
        &[]
    };
    let mut files = Vec::new();
    for template in Template::NEW.iter().chain(bus_templates).copied() {
        files.push((template.target(), template.render(&context)?));
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
        writeln!(out, "added: {}", path.display()).map_err(Error::Output)?;
    }
    writeln!(
        out,
        "created `{}` ({} event store): cd {} && cargo run",
        args.name,
        context.store_title,
        dir.display()
    )
    .map_err(Error::Output)?;
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

/// The `cqrs-runtime` dependency line's inside: a path or a version, and the store's feature.
fn runtime_dependency(args: &NewArgs) -> Result<String, Error> {
    let source = match (&args.runtime_path, &args.runtime_version) {
        (_, Some(version)) => format!("version = {}", toml_string(version)),
        (Some(path), None) => {
            let path = path.canonicalize().map_err(|e| Error::io(path, e))?;
            if !path.join("Cargo.toml").is_file() {
                return Err(Error::NoRuntimeAt { path });
            }
            format!("path = {}", toml_string(&path.to_string_lossy()))
        }
        (None, None) => {
            // While the crates are unpublished, the runtime of the checkout this binary was
            // built from.
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime");
            match path.canonicalize() {
                Ok(path) if path.join("Cargo.toml").is_file() => {
                    format!("path = {}", toml_string(&path.to_string_lossy()))
                }
                _ => format!("version = {}", toml_string(env!("CARGO_PKG_VERSION"))),
            }
        }
    };
    // `schema`: the commands' JSON Schemas, for the OpenAPI document.
    let mut features = vec!["\"schema\""];
    if args.store == Store::Postgres {
        features.push("\"postgres\"");
    }
    match args.bus {
        Some(Bus::Kafka) => features.push("\"kafka\""),
        Some(Bus::Nats) => features.push("\"nats\""),
        None => {}
    }
    Ok(format!("{source}, features = [{}]", features.join(", ")))
}

fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
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
                runtime: "path = \"/r\"".into(),
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
