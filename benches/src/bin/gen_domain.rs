//! Writes the compile-time comparison of `scripts/bench-versus.sh` and `scripts/bench-compile.sh`:
//! one domain of 10 aggregates with 5 events and 5 commands each (50 events), three times:
//! `domain-macros` with the derives and `#[handlers]` over payload structs written by hand
//! (newtype variants), `domain-named` with the derives over named-field variants (the macros
//! write the payload structs), `domain-named-schema` (the same with the runtime's `schema`
//! feature, as `cargo cqrs schema` builds it), and `domain-hand` implementing the same traits
//! by hand (as `tests/tests/bank_by_hand.rs` does). `gen_domain <DIR> <RUNTIME_PATH>`.

use std::fmt::Write as _;
use std::path::Path;

const AGGREGATES: usize = 10;
const EVENTS: usize = 5;

fn manifest(name: &str, runtime: &str, schemars: bool) -> String {
    manifest_with(name, runtime, schemars, "")
}

/// `features`: runtime features beyond the defaults, e.g. `, features = ["schema"]`.
fn manifest_with(name: &str, runtime: &str, schemars: bool, features: &str) -> String {
    let schemars = if schemars { "schemars = \"1\"\n" } else { "" };
    format!(
        "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n[dependencies]\ncqrs-runtime = {{ path = {runtime:?}{features} }}\n{schemars}serde = {{ version = \"1\", features = [\"derive\"] }}\nserde_json = \"1\"\n\n[workspace]\n"
    )
}

fn payloads(out: &mut String, a: usize, schema: bool) {
    let derive = if schema {
        "#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]"
    } else {
        "#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]"
    };
    for e in 0..EVENTS {
        let _ = writeln!(
            out,
            "{derive}\npub struct Cmd{a}x{e} {{ pub value: i64, pub note: String }}"
        );
        let _ = writeln!(
            out,
            "{derive}\npub struct Ev{a}x{e} {{ pub value: i64, pub note: String }}"
        );
    }
    refused(out, a);
}

fn with_macros(a: usize) -> String {
    let mut out = String::new();
    payloads(&mut out, a, true);
    let variants = |prefix: &str| {
        (0..EVENTS)
            .map(|e| format!("    V{e}({prefix}{a}x{e}),\n"))
            .collect::<String>()
    };
    let _ = writeln!(
        out,
        "#[derive(Debug, Clone, cqrs_runtime::Command)]\npub enum Command{a} {{\n{}}}",
        variants("Cmd")
    );
    let _ = writeln!(
        out,
        "#[derive(Debug, Clone, PartialEq, cqrs_runtime::Event)]\npub enum Event{a} {{\n{}}}",
        variants("Ev")
    );
    aggregate_with_handlers(&mut out, a);
    out
}

/// The same aggregate with named-field variants: no payload structs of its own.
fn with_named_variants(a: usize) -> String {
    let mut out = String::new();
    refused(&mut out, a);
    let variants = |prefix: &str| {
        (0..EVENTS)
            .map(|e| format!("    {prefix}{a}x{e} {{ value: i64, note: String }},\n"))
            .collect::<String>()
    };
    let _ = writeln!(
        out,
        "#[derive(Debug, Clone, cqrs_runtime::Command)]\npub enum Command{a} {{\n{}}}",
        variants("Cmd")
    );
    let _ = writeln!(
        out,
        "#[derive(Debug, Clone, PartialEq, cqrs_runtime::Event)]\npub enum Event{a} {{\n{}}}",
        variants("Ev")
    );
    aggregate_with_handlers(&mut out, a);
    out
}

/// The error type of aggregate `a`, shared by every version of the domain.
fn refused(out: &mut String, a: usize) {
    let _ = writeln!(
        out,
        "#[derive(Debug, Clone, PartialEq, Eq)]\npub struct Refused{a};"
    );
    let _ = writeln!(
        out,
        "impl std::fmt::Display for Refused{a} {{ fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {{ f.write_str(\"refused\") }} }}"
    );
    let _ = writeln!(out, "impl std::error::Error for Refused{a} {{}}");
}

/// The derived aggregate `a` and its `#[handlers]`, the same over either kind of variant.
fn aggregate_with_handlers(out: &mut String, a: usize) {
    let _ = writeln!(
        out,
        "#[derive(Debug, Default, cqrs_runtime::Aggregate)]\n#[aggregate(command = Command{a}, event = Event{a}, error = Refused{a})]\npub struct Aggregate{a} {{ pub total: i64 }}"
    );
    let _ = writeln!(out, "#[cqrs_runtime::handlers]\nimpl Aggregate{a} {{");
    for e in 0..EVENTS {
        let _ = writeln!(
            out,
            "    fn c{e}(&self, cmd: Cmd{a}x{e}) -> Result<Ev{a}x{e}, Refused{a}> {{ if cmd.value < 0 {{ return Err(Refused{a}); }} Ok(Ev{a}x{e} {{ value: cmd.value, note: cmd.note }}) }}"
        );
        let _ = writeln!(
            out,
            "    fn e{e}(&mut self, event: &Ev{a}x{e}) {{ self.total += event.value; }}"
        );
    }
    out.push_str("}\n");
}

fn by_hand(a: usize) -> String {
    let mut out = String::new();
    payloads(&mut out, a, false);
    let variants = |prefix: &str| {
        (0..EVENTS)
            .map(|e| format!("    V{e}({prefix}{a}x{e}),\n"))
            .collect::<String>()
    };
    let _ = writeln!(
        out,
        "#[derive(Debug, Clone)]\npub enum Command{a} {{\n{}}}",
        variants("Cmd")
    );
    let _ = writeln!(
        out,
        "#[derive(Debug, Clone, PartialEq)]\npub enum Event{a} {{\n{}}}",
        variants("Ev")
    );
    let names: Vec<String> = (0..EVENTS).map(|e| format!("\"V{e}\"")).collect();
    let _ = writeln!(out, "impl cqrs_runtime::DomainEvent for Event{a} {{");
    let _ = writeln!(
        out,
        "    const EVENT_TYPES: &'static [&'static str] = &[{}];",
        names.join(", ")
    );
    let arms = |f: &dyn Fn(usize) -> String| (0..EVENTS).map(f).collect::<String>();
    let _ = writeln!(
        out,
        "    fn event_type(&self) -> &'static str {{ match self {{ {} }} }}",
        arms(&|e| format!("Self::V{e}(_) => \"V{e}\", "))
    );
    let _ = writeln!(out, "    fn event_version(&self) -> u32 {{ 1 }}");
    let _ = writeln!(
        out,
        "    fn encode(&self) -> Result<String, serde_json::Error> {{ match self {{ {} }} }}",
        arms(&|e| format!("Self::V{e}(p) => serde_json::to_string(p), "))
    );
    let _ = writeln!(
        out,
        "    fn decode(event_type: &str, version: u32, payload: &str) -> Result<Self, cqrs_runtime::DecodeError> {{"
    );
    let _ = writeln!(
        out,
        "        cqrs_runtime::DecodeError::check_version(event_type, version, 1)?;"
    );
    let _ = writeln!(
        out,
        "        let bad = |e| cqrs_runtime::DecodeError::payload(event_type, version, e);"
    );
    let _ = writeln!(
        out,
        "        match event_type {{ {} other => Err(cqrs_runtime::DecodeError::unknown_type(other, Self::EVENT_TYPES)) }}",
        arms(&|e| format!(
            "\"V{e}\" => serde_json::from_str(payload).map(Self::V{e}).map_err(bad), "
        ))
    );
    let _ = writeln!(out, "    }}\n}}");
    let _ = writeln!(
        out,
        "#[derive(Debug, Default)]\npub struct Aggregate{a} {{ pub total: i64 }}"
    );
    let _ = writeln!(out, "impl cqrs_runtime::Aggregate for Aggregate{a} {{");
    let _ = writeln!(
        out,
        "    const TYPE: &'static str = \"aggregate{a}\";\n    type Id = String;\n    type Command = Command{a};\n    type Event = Event{a};\n    type Error = Refused{a};\n    type Services = ();\n    fn initial() -> Self {{ Self::default() }}"
    );
    let _ = writeln!(
        out,
        "    fn handle(&self, command: Command{a}, _cx: &cqrs_runtime::CommandContext<'_, Self>) -> impl std::future::Future<Output = Result<Vec<Event{a}>, Refused{a}>> + Send {{"
    );
    let _ = writeln!(
        out,
        "        std::future::ready(match command {{ {} }})",
        arms(&|e| format!(
            "Command{a}::V{e}(cmd) => if cmd.value < 0 {{ Err(Refused{a}) }} else {{ Ok(vec![Event{a}::V{e}(Ev{a}x{e} {{ value: cmd.value, note: cmd.note }})]) }}, "
        ))
    );
    let _ = writeln!(out, "    }}");
    let _ = writeln!(
        out,
        "    fn apply(&mut self, envelope: &cqrs_runtime::EventEnvelope<Event{a}>) {{ match &envelope.event {{ {} }} }}",
        arms(&|e| format!("Event{a}::V{e}(event) => self.total += event.value, "))
    );
    out.push_str("}\n");
    out
}

fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create the folder");
    }
    std::fs::write(path, text).expect("write the file");
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(runtime)) = (args.next(), args.next()) else {
        eprintln!("usage: gen_domain <DIR> <RUNTIME_PATH>");
        std::process::exit(2);
    };
    let dir = Path::new(&dir);
    let mut macros =
        String::from("//! Generated by gen_domain: 10 aggregates, 50 events, with the macros.\n");
    let mut named = String::from(
        "//! Generated by gen_domain: 10 aggregates, 50 events, with the macros and named variants.\n",
    );
    let mut hand = String::from("//! Generated by gen_domain: the same domain written by hand.\n");
    for a in 0..AGGREGATES {
        let _ = writeln!(macros, "pub mod agg{a} {{\n{}}}", with_macros(a));
        let _ = writeln!(named, "pub mod agg{a} {{\n{}}}", with_named_variants(a));
        let _ = writeln!(hand, "pub mod agg{a} {{\n{}}}", by_hand(a));
    }
    write(
        &dir.join("macros/Cargo.toml"),
        &manifest("domain-macros", &runtime, true),
    );
    write(&dir.join("macros/src/lib.rs"), &macros);
    write(
        &dir.join("named/Cargo.toml"),
        &manifest("domain-named", &runtime, false),
    );
    write(&dir.join("named/src/lib.rs"), &named);
    // The same, with the schema metadata `cargo cqrs schema` builds.
    write(
        &dir.join("named-schema/Cargo.toml"),
        &manifest_with(
            "domain-named-schema",
            &runtime,
            false,
            ", features = [\"schema\"]",
        ),
    );
    write(&dir.join("named-schema/src/lib.rs"), &named);
    write(
        &dir.join("hand/Cargo.toml"),
        &manifest("domain-hand", &runtime, false),
    );
    write(&dir.join("hand/src/lib.rs"), &hand);
    println!("wrote {0}/macros, {0}/named and {0}/hand", dir.display());
}
