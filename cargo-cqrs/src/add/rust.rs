//! The Rust side of `add`: field specs, the generated items, and injecting into an aggregate's
//! module, located with syn (line positions from `proc-macro2`'s span locations) so that the
//! user's formatting and comments stay as they are.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use heck::{ToKebabCase, ToSnakeCase};
use miette::NamedSource;
use quote::ToTokens;
use serde::Serialize;
use syn::spanned::Spanned;

use crate::error::Error;
use crate::templates::{Render, Template};

/// The field types `add` accepts, inside `Vec<...>` and `Option<...>` too.
const SCALARS: &[&str] = &[
    "String", "bool", "i8", "i16", "i32", "i64", "i128", "u8", "u16", "u32", "u64", "u128", "f32",
    "f64",
];

/// A field of a generated type: `name:type`.
#[derive(Debug, Clone, Serialize)]
pub struct Field {
    pub name: String,
    pub ty: String,
    /// A value of the type, for generated tests.
    pub sample: String,
    /// Whether the type is `Copy` (no `.clone()` needed).
    pub copy: bool,
}

impl Field {
    /// Parses `name:type`.
    pub fn parse(spec: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::BadField {
            spec: spec.to_owned(),
            why: why.to_owned(),
        };
        let (name, ty) = spec
            .split_once(':')
            .ok_or_else(|| bad("it has no `:`; write `name:type`, e.g. `title:String`"))?;
        let (name, ty) = (name.trim(), ty.trim());
        if !is_module_name(name) {
            return Err(bad(
                "the name must be a snake_case identifier that is not a Rust keyword",
            ));
        }
        let sample = sample(ty).ok_or_else(|| {
            bad(&format!(
                "unknown type `{ty}`; use one of {}, or `Vec<T>` / `Option<T>` of those",
                SCALARS.join(", ")
            ))
        })?;
        let copy = !ty.contains("String") && !ty.starts_with("Vec<");
        Ok(Field {
            name: name.to_owned(),
            ty: ty.to_owned(),
            sample,
            copy,
        })
    }
}

fn sample(ty: &str) -> Option<String> {
    if let Some(inner) = ty.strip_prefix("Vec<").and_then(|t| t.strip_suffix('>')) {
        return sample(inner).map(|_| "Vec::new()".to_owned());
    }
    if let Some(inner) = ty.strip_prefix("Option<").and_then(|t| t.strip_suffix('>')) {
        return sample(inner).map(|_| "None".to_owned());
    }
    Some(match ty {
        "String" => "\"x\".to_owned()".to_owned(),
        "bool" => "true".to_owned(),
        "f32" | "f64" => "1.5".to_owned(),
        t if SCALARS.contains(&t) => "1".to_owned(),
        _ => return None,
    })
}

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use",
    "where", "while", "abstract", "become", "box", "do", "final", "gen", "macro", "override",
    "priv", "try", "typeof", "unsized", "virtual", "yield", "lib", "main",
];

/// A snake_case identifier that can name a module or a field.
pub fn is_module_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !KEYWORDS.contains(&name)
}

/// An UpperCamelCase identifier that can name a type.
pub fn is_type_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric())
        && name != "Self"
}

/// `add/aggregate.rs.j2`: a new aggregate's module.
#[derive(Serialize)]
struct AggregateModule<'a> {
    name: &'a str,
    /// The name in words, for docs ("shopping cart").
    snake: String,
    fields: &'a [Field],
}

impl Render for AggregateModule<'_> {
    const TEMPLATE: Template = Template::AddAggregate;
}

/// `add/aggregate_test.rs.j2`: a new aggregate's test file.
#[derive(Serialize)]
struct AggregateTests<'a> {
    crate_name: &'a str,
    module: &'a str,
    name: &'a str,
    fields: &'a [Field],
}

impl Render for AggregateTests<'_> {
    const TEMPLATE: Template = Template::AddAggregateTest;
}

/// The module of a new aggregate.
pub fn aggregate_module(name: &str, fields: &[Field]) -> Result<String, Error> {
    AggregateModule {
        name,
        snake: name.to_snake_case().replace('_', " "),
        fields,
    }
    .render()
}

/// The test file of a new aggregate.
pub fn aggregate_test(
    crate_name: &str,
    module: &str,
    name: &str,
    fields: &[Field],
) -> Result<String, Error> {
    AggregateTests {
        crate_name,
        module,
        name,
        fields,
    }
    .render()
}

/// A payload type of an event enum, and the method a projection handles it with.
#[derive(Debug, Clone, Serialize)]
pub struct Payload {
    pub ty: String,
    pub method: String,
}

/// `add/projection.rs.j2`: a new projection's module.
#[derive(Serialize)]
struct ProjectionModule<'a> {
    module: &'a str,
    aggregate: &'a str,
    name: &'a str,
    payloads: &'a [Payload],
}

impl Render for ProjectionModule<'_> {
    const TEMPLATE: Template = Template::AddProjection;
}

/// `add/projection_test.rs.j2`: a new projection's test file.
#[derive(Serialize)]
struct ProjectionTests<'a> {
    crate_name: &'a str,
    module: &'a str,
    name: &'a str,
    kebab: String,
}

impl Render for ProjectionTests<'_> {
    const TEMPLATE: Template = Template::AddProjectionTest;
}

/// The module of a new projection.
pub fn projection_module(
    module: &str,
    aggregate: &str,
    name: &str,
    payloads: &[Payload],
) -> Result<String, Error> {
    ProjectionModule {
        module,
        aggregate,
        name,
        payloads,
    }
    .render()
}

/// The test file of a new projection.
pub fn projection_test(crate_name: &str, module: &str, name: &str) -> Result<String, Error> {
    ProjectionTests {
        crate_name,
        module,
        name,
        kebab: name.to_kebab_case(),
    }
    .render()
}

/// `add/process_manager.rs.j2`: a new process manager's module.
#[derive(Serialize)]
struct ProcessModule<'a> {
    module: &'a str,
    aggregate: &'a str,
    name: &'a str,
    payloads: &'a [Payload],
}

impl Render for ProcessModule<'_> {
    const TEMPLATE: Template = Template::AddProcessManager;
}

/// `add/process_manager_test.rs.j2`: a new process manager's test file.
#[derive(Serialize)]
struct ProcessTests<'a> {
    crate_name: &'a str,
    module: &'a str,
    own: &'a str,
    aggregate: &'a str,
    name: &'a str,
    kebab: String,
}

impl Render for ProcessTests<'_> {
    const TEMPLATE: Template = Template::AddProcessManagerTest;
}

/// The module of a new process manager following `aggregate` (of `module`).
pub fn process_module(
    module: &str,
    aggregate: &str,
    name: &str,
    payloads: &[Payload],
) -> Result<String, Error> {
    ProcessModule {
        module,
        aggregate,
        name,
        payloads,
    }
    .render()
}

/// The test file of a new process manager.
pub fn process_test(
    crate_name: &str,
    module: &str,
    own: &str,
    aggregate: &str,
    name: &str,
) -> Result<String, Error> {
    ProcessTests {
        crate_name,
        module,
        own,
        aggregate,
        name,
        kebab: name.to_kebab_case(),
    }
    .render()
}

/// `add/snippets/payload.rs.j2`: a payload struct, inserted before its enum.
#[derive(Serialize)]
struct PayloadStruct<'a> {
    doc: String,
    name: &'a str,
    fields: &'a [Field],
}

impl Render for PayloadStruct<'_> {
    const TEMPLATE: Template = Template::Payload;
}

/// How `add event|command` declares the new item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `Variant { field: Type }`: the macros write the payload struct.
    Named,
    /// `struct Payload { ... }` before the enum and `Variant(Payload)`.
    Newtype,
}

/// `add/snippets/variant.rs.j2`: an enum variant with named fields, or wrapping a payload.
#[derive(Serialize)]
struct Variant<'a> {
    doc: String,
    variant: &'a str,
    name: &'a str,
    newtype: bool,
    fields: &'a [Field],
}

impl Render for Variant<'_> {
    const TEMPLATE: Template = Template::Variant;
}

/// `add/snippets/applier.rs.j2`: an event applier in the `#[handlers]` block.
#[derive(Serialize)]
struct Applier<'a> {
    method: &'a str,
    name: &'a str,
}

impl Render for Applier<'_> {
    const TEMPLATE: Template = Template::Applier;
}

/// `add/snippets/handler.rs.j2`: a command handler in the `#[handlers]` block.
#[derive(Serialize)]
struct Handler<'a> {
    method: &'a str,
    name: &'a str,
    event: &'a str,
    error: &'a str,
}

impl Render for Handler<'_> {
    const TEMPLATE: Template = Template::Handler;
}

/// `add/snippets/event_test.rs.j2`: a round-trip test of a new event.
#[derive(Serialize)]
struct EventTest<'a> {
    newtype: bool,
    method: &'a str,
    crate_name: &'a str,
    module: &'a str,
    event_enum: &'a str,
    variant: &'a str,
    name: &'a str,
    /// The payload's fields with sample values: `a: 1, b: "x".to_owned()`.
    values: String,
}

impl Render for EventTest<'_> {
    const TEMPLATE: Template = Template::EventTest;
}

/// `add/snippets/command_test.rs.j2`: a given/when/then test of a new command.
#[derive(Serialize)]
struct CommandTest<'a> {
    /// The aggregate's `missing = ...` refusal: the new command is refused on a new aggregate.
    missing: Option<String>,
    method: &'a str,
    crate_name: &'a str,
    module: &'a str,
    state: &'a str,
    name: &'a str,
    values: String,
}

impl Render for CommandTest<'_> {
    const TEMPLATE: Template = Template::CommandTest;
}

/// A payload's fields with sample values, for a generated test.
fn sample_values(fields: &[Field]) -> String {
    let values: Vec<String> = fields
        .iter()
        .map(|f| format!("{}: {}", f.name, f.sample))
        .collect();
    values.join(", ")
}

/// An aggregate's module, parsed.
pub struct SourceFile {
    path: PathBuf,
    text: String,
    file: syn::File,
}

/// The module's new text, and a test to append to its test file.
pub struct Edited {
    pub source: String,
    pub test: String,
}

/// What `#[aggregate(...)]` names.
struct AggregateItem<'a> {
    state: &'a syn::ItemStruct,
    event: Option<String>,
    command: Option<String>,
    error: Option<String>,
    /// `missing = ...`: what a command on an aggregate never created is refused with.
    missing: Option<String>,
}

impl SourceFile {
    /// Parses a module; a syntax error names the file.
    pub fn parse(path: &Path, text: String) -> Result<Self, Error> {
        let file = syn::parse_file(&text).map_err(|e| {
            let (start, end) = (e.span().start(), e.span().end());
            let from = crate::output::offset(&text, start.line, start.column);
            let to = crate::output::offset(&text, end.line, end.column).max(from);
            Error::Unparsable {
                file: path.to_path_buf(),
                line: start.line,
                why: e.to_string(),
                src: Arc::new(NamedSource::new(path.display().to_string(), text.clone())),
                at: (from, to - from).into(),
            }
        })?;
        Ok(SourceFile {
            path: path.to_path_buf(),
            text,
            file,
        })
    }

    fn not_found(&self, what: &str) -> Error {
        Error::NotAnAggregateModule {
            file: self.path.clone(),
            missing: what.to_owned(),
        }
    }

    fn aggregate(&self) -> Result<AggregateItem<'_>, Error> {
        for item in &self.file.items {
            let syn::Item::Struct(s) = item else { continue };
            if !derives(&s.attrs, "Aggregate") {
                continue;
            }
            let mut found = AggregateItem {
                state: s,
                event: None,
                command: None,
                error: None,
                missing: None,
            };
            for attr in s.attrs.iter().filter(|a| a.path().is_ident("aggregate")) {
                let _ = attr.parse_nested_meta(|meta| {
                    let key = meta.path.get_ident().map(ToString::to_string);
                    if key.as_deref() == Some("missing") {
                        let value: syn::Expr = meta.value()?.parse()?;
                        found.missing = Some(value.to_token_stream().to_string().replace(' ', ""));
                    } else if meta.input.peek(syn::Token![=]) {
                        let value: syn::Type = meta.value()?.parse()?;
                        let value = Some(value.to_token_stream().to_string().replace(' ', ""));
                        match key.as_deref() {
                            Some("event") => found.event = value,
                            Some("command") => found.command = value,
                            Some("error") => found.error = value,
                            _ => {}
                        }
                    } else if meta.input.peek(syn::token::Paren) {
                        let _content;
                        syn::parenthesized!(_content in meta.input);
                    }
                    Ok(())
                });
            }
            return Ok(found);
        }
        Err(self.not_found("a struct with `#[derive(Aggregate)]`"))
    }

    /// The state type's name.
    pub fn aggregate_name(&self) -> Result<String, Error> {
        Ok(self.aggregate()?.state.ident.to_string())
    }

    fn find_enum(&self, name: Option<&str>, derive: &str) -> Result<&syn::ItemEnum, Error> {
        self.file
            .items
            .iter()
            .filter_map(|i| match i {
                syn::Item::Enum(e) => Some(e),
                _ => None,
            })
            .find(|e| match name {
                Some(name) => e.ident == name,
                None => derives(&e.attrs, derive),
            })
            .ok_or_else(|| self.not_found(&format!("the enum with `#[derive({derive})]`")))
    }

    fn handlers_impl(&self, state: &syn::Ident) -> Result<&syn::ItemImpl, Error> {
        self.file
            .items
            .iter()
            .filter_map(|i| match i {
                syn::Item::Impl(imp) => Some(imp),
                _ => None,
            })
            .find(|imp| {
                imp.attrs.iter().any(|a| a.path().is_ident("handlers"))
                    && matches!(&*imp.self_ty, syn::Type::Path(p) if p.path.is_ident(state))
            })
            .ok_or_else(|| self.not_found(&format!("the `#[handlers] impl {state}` block")))
    }

    /// The payload types of the event enum, with the method names a projection uses.
    pub fn event_payloads(&self) -> Result<Vec<Payload>, Error> {
        let aggregate = self.aggregate()?;
        let events = self.find_enum(aggregate.event.as_deref(), "Event")?;
        Ok(events
            .variants
            .iter()
            .filter_map(|v| {
                let ty = match &v.fields {
                    syn::Fields::Unnamed(f) => f
                        .unnamed
                        .first()?
                        .ty
                        .to_token_stream()
                        .to_string()
                        .replace(' ', ""),
                    // A variant with named fields (or none) gets a struct named after it.
                    _ => v.ident.to_string(),
                };
                Some(Payload {
                    method: v.ident.to_string().to_snake_case(),
                    ty,
                })
            })
            .collect())
    }

    fn type_exists(&self, name: &str) -> bool {
        self.file.items.iter().any(|i| match i {
            syn::Item::Struct(s) => s.ident == name,
            syn::Item::Enum(e) => e.ident == name,
            syn::Item::Type(t) => t.ident == name,
            _ => false,
        })
    }

    /// Adds an event: its payload struct before the event enum, the variant, and an applier.
    pub fn add_event(
        &self,
        crate_name: &str,
        module: &str,
        name: &str,
        fields: &[Field],
        shape: Shape,
    ) -> Result<Edited, Error> {
        let aggregate = self.aggregate()?;
        let state = &aggregate.state.ident;
        let events = self.find_enum(aggregate.event.as_deref(), "Event")?;
        let handlers = self.handlers_impl(state)?;
        let variant = name
            .strip_prefix(&state.to_string())
            .filter(|rest| rest.chars().next().is_some_and(|c| c.is_ascii_uppercase()))
            .unwrap_or(name)
            .to_owned();
        let method = variant.to_snake_case();
        let newtype = shape == Shape::Newtype;
        // A variant with named fields gets a struct named after it.
        let name = if newtype { name } else { variant.as_str() };
        self.refuse_duplicates(events, &variant, name, handlers, &method)?;
        let doc = format!("{variant}: what happened to a {state}.");
        let event_enum = events.ident.to_string();
        let mut inserts = vec![
            (
                closing_line(events.brace_token.span.close()),
                Variant {
                    doc: doc.clone(),
                    variant: &variant,
                    name,
                    newtype,
                    fields,
                }
                .render()?,
                true,
            ),
            (
                closing_line(handlers.brace_token.span.close()),
                Applier {
                    method: &method,
                    name,
                }
                .render()?,
                true,
            ),
        ];
        if newtype {
            let payload = PayloadStruct { doc, name, fields };
            inserts.push((item_start(events), payload.render()?, false));
        }
        let source = self.insert(inserts)?;
        let test = EventTest {
            newtype,
            method: &method,
            crate_name,
            module,
            event_enum: &event_enum,
            variant: &variant,
            name,
            values: sample_values(fields),
        }
        .render()?;
        Ok(Edited { source, test })
    }

    /// Adds a command: its payload struct before the command enum, the variant, and a handler
    /// that decides nothing yet (it records no event).
    pub fn add_command(
        &self,
        crate_name: &str,
        module: &str,
        name: &str,
        fields: &[Field],
        shape: Shape,
    ) -> Result<Edited, Error> {
        let aggregate = self.aggregate()?;
        let state = &aggregate.state.ident;
        let commands = self.find_enum(aggregate.command.as_deref(), "Command")?;
        let handlers = self.handlers_impl(state)?;
        let method = name.to_snake_case();
        self.refuse_duplicates(commands, name, name, handlers, &method)?;
        let event = aggregate
            .event
            .clone()
            .unwrap_or_else(|| "<Self as cqrs_runtime::Aggregate>::Event".to_owned());
        let error = aggregate
            .error
            .clone()
            .unwrap_or_else(|| "<Self as cqrs_runtime::Aggregate>::Error".to_owned());
        let newtype = shape == Shape::Newtype;
        let doc = format!("{name} a {state}.");
        let mut inserts = vec![
            (
                closing_line(commands.brace_token.span.close()),
                Variant {
                    doc: doc.clone(),
                    variant: name,
                    name,
                    newtype,
                    fields,
                }
                .render()?,
                true,
            ),
            (
                closing_line(handlers.brace_token.span.close()),
                Handler {
                    method: &method,
                    name,
                    event: &event,
                    error: &error,
                }
                .render()?,
                true,
            ),
        ];
        if newtype {
            let payload = PayloadStruct { doc, name, fields };
            inserts.push((item_start(commands), payload.render()?, false));
        }
        let source = self.insert(inserts)?;
        let test = CommandTest {
            missing: aggregate.missing.clone(),
            method: &method,
            crate_name,
            module,
            state: &state.to_string(),
            name,
            values: sample_values(fields),
        }
        .render()?;
        Ok(Edited { source, test })
    }

    fn refuse_duplicates(
        &self,
        enumeration: &syn::ItemEnum,
        variant: &str,
        payload: &str,
        handlers: &syn::ItemImpl,
        method: &str,
    ) -> Result<(), Error> {
        let there = |what: String| Error::AlreadyThere {
            what,
            file: self.path.clone(),
        };
        if enumeration.variants.iter().any(|v| v.ident == variant) {
            return Err(there(format!("variant `{}::{variant}`", enumeration.ident)));
        }
        if self.type_exists(payload) {
            return Err(there(format!("type `{payload}`")));
        }
        let has_method = handlers
            .items
            .iter()
            .any(|i| matches!(i, syn::ImplItem::Fn(f) if f.sig.ident == method));
        if has_method {
            return Err(there(format!("method `{method}`")));
        }
        Ok(())
    }

    /// Inserts text before 1-based lines, bottom up so earlier positions stay valid. A closing
    /// brace an insert goes before must be alone on its line (as rustfmt writes it).
    fn insert(&self, mut inserts: Vec<(usize, String, bool)>) -> Result<String, Error> {
        let mut lines: Vec<String> = self.text.lines().map(str::to_owned).collect();
        inserts.sort_by_key(|(line, _, _)| std::cmp::Reverse(*line));
        for (line, text, brace) in inserts {
            let index = line.saturating_sub(1).min(lines.len());
            if brace && lines.get(index).is_none_or(|l| l.trim() != "}") {
                let start = crate::output::offset(&self.text, line, 0);
                let length = lines.get(index).map_or(0, String::len);
                return Err(Error::NotFormatted {
                    file: self.path.clone(),
                    line,
                    src: Arc::new(NamedSource::new(
                        self.path.display().to_string(),
                        self.text.clone(),
                    )),
                    at: (start, length).into(),
                });
            }
            let new_lines: Vec<String> = text
                .trim_end_matches('\n')
                .lines()
                .map(str::to_owned)
                .collect();
            lines.splice(index..index, new_lines);
        }
        Ok(lines.join("\n") + "\n")
    }
}

/// The line a closing brace is on.
fn closing_line(span: proc_macro2::Span) -> usize {
    span.start().line
}

/// The first line of an item, its attributes and doc comments included.
fn item_start(item: &syn::ItemEnum) -> usize {
    item.attrs
        .first()
        .map(|a| a.span().start().line)
        .unwrap_or_else(|| item.enum_token.span.start().line)
}

fn derives(attrs: &[syn::Attribute], name: &str) -> bool {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("derive"))
        .any(|a| {
            a.to_token_stream()
                .to_string()
                .split(|c: char| !c.is_alphanumeric())
                .any(|word| word == name)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Vec<Field> {
        [
            "name:String",
            "budget:i64",
            "tags:Vec<String>",
            "lead:Option<u32>",
        ]
        .iter()
        .map(|f| Field::parse(f).unwrap())
        .collect()
    }

    /// Every template of `add` renders to Rust that parses, with and without fields.
    #[test]
    fn every_add_template_renders_to_rust() {
        for fields in [fields(), Vec::new()] {
            let rendered = [
                aggregate_module("Project", &fields).unwrap(),
                aggregate_test("shop", "project", "Project", &fields).unwrap(),
            ];
            for text in rendered {
                assert!(!text.contains("{{") && !text.contains("{%"), "{text}");
                syn::parse_file(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
            }
        }
        let payloads = vec![Payload {
            ty: "TaskCreated".into(),
            method: "created".into(),
        }];
        for text in [
            projection_module("task", "Task", "OpenTasks", &payloads).unwrap(),
            projection_test("shop", "open_tasks", "OpenTasks").unwrap(),
        ] {
            assert!(!text.contains("{{") && !text.contains("{%"), "{text}");
            syn::parse_file(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
        }
    }

    /// The snippets `add event|command` inject, exactly as the lines around them expect.
    #[test]
    fn snippets_render_as_injected_lines() {
        let fields = fields();
        let cases = [
            (
                PayloadStruct {
                    doc: "Archived: what happened to a Task.".into(),
                    name: "TaskArchived",
                    fields: &fields[..2],
                }
                .render(),
                "/// Archived: what happened to a Task.\n#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]\npub struct TaskArchived {\n    pub name: String,\n    pub budget: i64,\n}\n\n",
            ),
            (
                Variant {
                    doc: "Archived: what happened to a Task.".into(),
                    variant: "Archived",
                    name: "TaskArchived",
                    newtype: true,
                    fields: &fields[..2],
                }
                .render(),
                "    /// Archived: what happened to a Task.\n    Archived(TaskArchived),\n",
            ),
            (
                Variant {
                    doc: "Archived: what happened to a Task.".into(),
                    variant: "Archived",
                    name: "Archived",
                    newtype: false,
                    fields: &fields[..2],
                }
                .render(),
                "    /// Archived: what happened to a Task.\n    Archived {\n        name: String,\n        budget: i64,\n    },\n",
            ),
            (
                Applier {
                    method: "archived",
                    name: "TaskArchived",
                }
                .render(),
                "\n    fn archived(&mut self, event: &TaskArchived) {\n        // Apply the event to the state.\n        let _ = event;\n    }\n",
            ),
            (
                EventTest {
                    newtype: true,
                    method: "archived",
                    crate_name: "shop",
                    module: "task",
                    event_enum: "TaskEvent",
                    variant: "Archived",
                    name: "TaskArchived",
                    values: sample_values(&fields[..2]),
                }
                .render(),
                "#[test]\nfn archived_round_trips() {\n    use cqrs_runtime::DomainEvent;\n    use shop::task::{TaskEvent, TaskArchived};\n    let event = TaskEvent::Archived(TaskArchived { name: \"x\".to_owned(), budget: 1 });\n    let stored = event.encode().unwrap();\n    let back = TaskEvent::decode(event.event_type(), event.event_version(), &stored).unwrap();\n    assert_eq!(back.event_type(), \"Archived\");\n}\n",
            ),
            (
                EventTest {
                    newtype: false,
                    method: "archived",
                    crate_name: "shop",
                    module: "task",
                    event_enum: "TaskEvent",
                    variant: "Archived",
                    name: "Archived",
                    values: sample_values(&fields[..2]),
                }
                .render(),
                "#[test]\nfn archived_round_trips() {\n    use cqrs_runtime::DomainEvent;\n    use shop::task::TaskEvent;\n    let event = TaskEvent::Archived { name: \"x\".to_owned(), budget: 1 };\n    let stored = event.encode().unwrap();\n    let back = TaskEvent::decode(event.event_type(), event.event_version(), &stored).unwrap();\n    assert_eq!(back.event_type(), \"Archived\");\n}\n",
            ),
            (
                CommandTest {
                    missing: None,
                    method: "archive",
                    crate_name: "shop",
                    module: "task",
                    state: "Task",
                    name: "Archive",
                    values: String::new(),
                }
                .render(),
                "#[test]\nfn archive_is_decided() {\n    use shop::task::{Task, Archive};\n    // Replace with the events `Archive` must record, given the events before it.\n    cqrs_runtime::AggregateTest::<Task>::new()\n        .when(Archive {  })\n        .then_expect_no_events();\n}\n",
            ),
        ];
        for (rendered, expected) in cases {
            assert_eq!(rendered.unwrap(), expected);
        }
        let handler = Handler {
            method: "archive",
            name: "Archive",
            event: "TaskEvent",
            error: "TaskError",
        };
        let text = handler.render().unwrap();
        assert!(
            text.starts_with(
                "\n    fn archive(&self, cmd: Archive) -> Result<Vec<TaskEvent>, TaskError> {\n"
            ),
            "{text}"
        );
        assert!(text.ends_with("        Ok(Vec::new())\n    }\n"), "{text}");
    }

    #[test]
    fn fields_are_checked() {
        let field = Field::parse("tags:Vec<String>").unwrap();
        assert_eq!((field.sample.as_str(), field.copy), ("Vec::new()", false));
        assert!(Field::parse("budget:i64").unwrap().copy);
        for (bad, why) in [
            ("budget", "has no `:`"),
            ("Budget:i64", "snake_case identifier"),
            ("type:i64", "snake_case identifier"),
            ("budget:Money", "unknown type `Money`"),
            ("tags:Vec<Money>", "unknown type `Vec<Money>`"),
        ] {
            let error = Field::parse(bad).unwrap_err().to_string();
            assert!(error.contains(why), "{bad}: {error}");
        }
    }
}
