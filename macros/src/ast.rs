//! A model of each macro's input, built from the syn tree, keeping references to the syn nodes
//! so that every error can point at the user's own token.

use std::collections::BTreeMap;

use heck::ToSnakeCase;
use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, Generics, Ident, LitInt, LitStr, Path, Type};

use crate::attr::{self, AggregateAttrs, CommandAttrs, Errors, EventAttrs, Hop};

mod projection;

pub use projection::{EventHandler, Extra, ProjectionInput};

/// Rejects input kinds and generics the derives cannot support.
fn check_item(input: &DeriveInput, derive: &str, errors: &mut Errors) {
    if let Data::Union(u) = &input.data {
        errors.error(
            u.union_token,
            format!("`#[derive({derive})]` does not support unions; use an enum or a struct"),
        );
    }
    if let Some(lt) = input.generics.lifetimes().next() {
        errors.error(
            lt,
            format!(
                "`#[derive({derive})]` does not support lifetime parameters: stored and loaded values own their data; use `String` or `Vec` instead of borrowed fields"
            ),
        );
    }
}

// ------------------------------------------------------------------------------------ events

/// One stored event type: a variant of an event enum, or a standalone event struct.
pub struct EventDef<'a> {
    /// The variant, or `None` for a standalone struct.
    pub variant: Option<&'a Ident>,
    /// The payload type: the variant's field, or `Self`.
    pub payload: Type,
    /// The stored type name.
    pub name: String,
    /// Where the name comes from (the `rename` literal or the variant ident).
    pub name_span: Span,
    pub aliases: Vec<LitStr>,
    pub version: u32,
    pub version_lit: Option<LitInt>,
    pub hops: BTreeMap<u32, Hop>,
    pub upcast_span: Option<Span>,
    pub upcast_broken: bool,
}

pub struct EventInput<'a> {
    pub ident: &'a Ident,
    pub generics: &'a Generics,
    pub crate_path: Path,
    pub events: Vec<EventDef<'a>>,
    /// True for `#[derive(Event)]` on an enum.
    pub is_enum: bool,
}

impl<'a> EventInput<'a> {
    pub fn from_syn(input: &'a DeriveInput, errors: &mut Errors) -> Option<Self> {
        check_item(input, "Event", errors);
        let (crate_path, events, is_enum) = match &input.data {
            Data::Enum(data) => {
                let container = EventAttrs::parse(&input.attrs, errors, true, false);
                if data.variants.is_empty() {
                    errors.error(
                        &input.ident,
                        "an event enum needs at least one variant, e.g. `Opened(AccountOpened)`",
                    );
                }
                let events = data
                    .variants
                    .iter()
                    .filter_map(|v| {
                        let attrs = EventAttrs::parse(&v.attrs, errors, false, true);
                        let payload = single_field(&v.fields, &v.ident, "event", errors)?;
                        Some(EventDef::new(Some(&v.ident), payload, attrs))
                    })
                    .collect();
                (container.crate_path, events, true)
            }
            Data::Struct(_) => {
                let attrs = EventAttrs::parse(&input.attrs, errors, true, true);
                let crate_path = attrs.crate_path.clone();
                let def = EventDef::new(None, syn::parse_quote!(Self), attrs);
                let def = EventDef {
                    name: def.name_or(&input.ident),
                    name_span: def.name_span_or(&input.ident),
                    ..def
                };
                (crate_path, vec![def], false)
            }
            Data::Union(_) => return None,
        };
        Some(EventInput {
            ident: &input.ident,
            generics: &input.generics,
            crate_path: crate_path.unwrap_or_else(attr::default_crate_path),
            events,
            is_enum,
        })
    }
}

impl<'a> EventDef<'a> {
    fn new(variant: Option<&'a Ident>, payload: Type, attrs: EventAttrs) -> Self {
        let (name, name_span) = match (&attrs.rename, variant) {
            (Some(lit), _) => (lit.value(), lit.span()),
            (None, Some(v)) => (v.to_string(), v.span()),
            (None, None) => (String::new(), Span::call_site()),
        };
        let (version, version_lit) = match attrs.version {
            Some((n, lit)) => (n, Some(lit)),
            None => (1, None),
        };
        EventDef {
            variant,
            payload,
            name,
            name_span,
            aliases: attrs.aliases,
            version,
            version_lit,
            hops: attrs.upcast,
            upcast_span: attrs.upcast_span,
            upcast_broken: attrs.upcast_broken,
        }
    }

    fn name_or(&self, ident: &Ident) -> String {
        if self.name.is_empty() {
            ident.to_string()
        } else {
            self.name.clone()
        }
    }

    fn name_span_or(&self, ident: &Ident) -> Span {
        if self.name.is_empty() {
            ident.span()
        } else {
            self.name_span
        }
    }

    /// The Rust type of stored version `version`, if it has one.
    pub fn type_of(&self, version: u32) -> Option<&Type> {
        if version == self.version {
            Some(&self.payload)
        } else {
            self.hops.get(&version).and_then(|h| h.ty.as_ref())
        }
    }

    /// Where to point an error about this event's version.
    pub fn version_span(&self) -> TokenStream {
        match &self.version_lit {
            Some(lit) => lit.to_token_stream(),
            None => {
                let span = self.name_span;
                quote::quote_spanned!(span=> version)
            }
        }
    }
}

/// The one field of `Variant(Payload)`.
fn single_field(fields: &Fields, ident: &Ident, what: &str, errors: &mut Errors) -> Option<Type> {
    match fields {
        Fields::Unnamed(f) if f.unnamed.len() == 1 => Some(f.unnamed[0].ty.clone()),
        _ => {
            let kind = if what == "event" {
                "aggregates apply events by payload type"
            } else {
                "commands are routed to handlers by payload type"
            };
            errors.push(syn::Error::new(
                fields_span(fields, ident),
                format!(
                    "{what} variant `{ident}` must wrap exactly one payload type, e.g. `{ident}({ident})`: {kind}"
                ),
            ));
            None
        }
    }
}

fn fields_span(fields: &Fields, ident: &Ident) -> Span {
    match fields {
        Fields::Unit => ident.span(),
        other => other.span(),
    }
}

// -------------------------------------------------------------------------------- aggregates

pub struct AggregateInput<'a> {
    pub ident: &'a Ident,
    pub generics: &'a Generics,
    pub crate_path: Path,
    pub name: String,
    pub attrs: AggregateAttrs,
    /// A hash of the state type's definition, for snapshot fingerprints.
    pub shape_hash: u64,
}

impl<'a> AggregateInput<'a> {
    pub fn from_syn(input: &'a DeriveInput, errors: &mut Errors) -> Option<Self> {
        check_item(input, "Aggregate", errors);
        if matches!(input.data, Data::Union(_)) {
            return None;
        }
        let attrs = AggregateAttrs::parse(&input.attrs, errors);
        let name = match &attrs.rename {
            Some(lit) => lit.value(),
            None => input.ident.to_string().to_snake_case(),
        };
        Some(AggregateInput {
            ident: &input.ident,
            generics: &input.generics,
            crate_path: attrs
                .crate_path
                .clone()
                .unwrap_or_else(attr::default_crate_path),
            name,
            shape_hash: shape_hash(input),
            attrs,
        })
    }
}

/// FNV-1a over the tokens of the type's fields (doc comments left out), so that a snapshot is
/// only trusted by a state type of the same shape.
fn shape_hash(input: &DeriveInput) -> u64 {
    let mut shape = input.clone();
    shape.attrs.clear();
    let strip = |attrs: &mut Vec<syn::Attribute>| attrs.retain(|a| !a.path().is_ident("doc"));
    match &mut shape.data {
        Data::Struct(s) => s.fields.iter_mut().for_each(|f| strip(&mut f.attrs)),
        Data::Enum(e) => e.variants.iter_mut().for_each(|v| {
            strip(&mut v.attrs);
            v.fields.iter_mut().for_each(|f| strip(&mut f.attrs));
        }),
        Data::Union(_) => {}
    }
    let text = quote!(#shape).to_string();
    text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

// ---------------------------------------------------------------------------------- commands

pub struct CommandDef<'a> {
    pub variant: Option<&'a Ident>,
    pub payload: Type,
    pub name: String,
    pub name_span: Span,
}

pub struct CommandInput<'a> {
    pub ident: &'a Ident,
    pub generics: &'a Generics,
    pub crate_path: Path,
    pub commands: Vec<CommandDef<'a>>,
}

impl<'a> CommandInput<'a> {
    pub fn from_syn(input: &'a DeriveInput, errors: &mut Errors) -> Option<Self> {
        check_item(input, "Command", errors);
        let (crate_path, commands) = match &input.data {
            Data::Enum(data) => {
                let container = CommandAttrs::parse(&input.attrs, errors, true, false);
                if data.variants.is_empty() {
                    errors.error(
                        &input.ident,
                        "a command enum needs at least one variant, e.g. `Deposit(Deposit)`",
                    );
                }
                let commands = data
                    .variants
                    .iter()
                    .filter_map(|v| {
                        let attrs = CommandAttrs::parse(&v.attrs, errors, false, true);
                        let payload = single_field(&v.fields, &v.ident, "command", errors)?;
                        let (name, name_span) = match attrs.rename {
                            Some(lit) => (lit.value(), lit.span()),
                            None => (v.ident.to_string(), v.ident.span()),
                        };
                        Some(CommandDef {
                            variant: Some(&v.ident),
                            payload,
                            name,
                            name_span,
                        })
                    })
                    .collect();
                (container.crate_path, commands)
            }
            Data::Struct(_) => {
                let attrs = CommandAttrs::parse(&input.attrs, errors, true, true);
                let (name, name_span) = match attrs.rename {
                    Some(lit) => (lit.value(), lit.span()),
                    None => (input.ident.to_string(), input.ident.span()),
                };
                let def = CommandDef {
                    variant: None,
                    payload: syn::parse_quote!(Self),
                    name,
                    name_span,
                };
                (attrs.crate_path, vec![def])
            }
            Data::Union(_) => return None,
        };
        Some(CommandInput {
            ident: &input.ident,
            generics: &input.generics,
            crate_path: crate_path.unwrap_or_else(attr::default_crate_path),
            commands,
        })
    }
}

// ---------------------------------------------------------------------------------- handlers

/// What the optional last parameter of a command handler receives.
pub enum HandlerExtra<'a> {
    /// `&CommandContext<Self>`: id, version, existence, services, metadata.
    Context,
    /// Any other `&T`: the aggregate's services (the parameter's type, for error spans).
    Services(&'a Type),
}

/// `fn name(&self, command: C [, extra]) -> R`
pub struct Handler<'a> {
    pub method: &'a Ident,
    pub command: &'a Type,
    pub extra: Option<HandlerExtra<'a>>,
    pub is_async: bool,
    /// The return type, for spans of conversion errors.
    pub output: Option<&'a Type>,
    /// The signature is wrong (reported); the impl is a stub so the command is not also
    /// reported as unhandled.
    pub stub: bool,
}

/// `fn name(&mut self, event: &E [, envelope: &EventEnvelope<..>])`
pub struct Applier<'a> {
    pub method: &'a Ident,
    pub event: &'a Type,
    pub with_envelope: bool,
    /// As [`Handler::stub`].
    pub stub: bool,
}

pub struct HandlersInput<'a> {
    pub item: &'a syn::ItemImpl,
    pub crate_path: Path,
    pub handlers: Vec<Handler<'a>>,
    pub appliers: Vec<Applier<'a>>,
}

impl<'a> HandlersInput<'a> {
    pub fn from_syn(item: &'a syn::ItemImpl, crate_path: Path, errors: &mut Errors) -> Self {
        if let Some((_, path, _)) = &item.trait_ {
            errors.error(
                path,
                "`#[handlers]` goes on an inherent impl block (`impl Account { ... }`), not on a trait impl",
            );
            return HandlersInput {
                item,
                crate_path,
                handlers: Vec::new(),
                appliers: Vec::new(),
            };
        }
        let mut handlers = Vec::new();
        let mut appliers = Vec::new();
        for method in item.items.iter().filter_map(|i| match i {
            syn::ImplItem::Fn(f) => Some(f),
            _ => None,
        }) {
            match classify(&method.sig, errors) {
                Some(Method::Handler(h)) => handlers.push(h),
                Some(Method::Applier(a)) => appliers.push(a),
                None => {}
            }
        }
        HandlersInput {
            item,
            crate_path,
            handlers,
            appliers,
        }
    }
}

enum Method<'a> {
    Handler(Handler<'a>),
    Applier(Applier<'a>),
}

fn classify<'a>(sig: &'a syn::Signature, errors: &mut Errors) -> Option<Method<'a>> {
    let name = &sig.ident;
    let params: Vec<&Type> = sig
        .inputs
        .iter()
        .filter_map(|arg| match arg {
            syn::FnArg::Typed(t) => Some(&*t.ty),
            syn::FnArg::Receiver(_) => None,
        })
        .collect();
    let receiver = sig.receiver();
    let mut stub = false;
    if receiver.is_none_or(|r| r.reference.is_none()) {
        errors.error(
            sig,
            format!(
                "`{name}` is neither a command handler (`&self`) nor an event applier (`&mut self`); move other functions to an impl block without `#[handlers]`"
            ),
        );
        if params.is_empty() {
            return None;
        }
        stub = true;
    }
    if !sig.generics.params.is_empty() {
        errors.error(
            &sig.generics,
            format!("handler `{name}` cannot be generic: each handler is for one concrete command or event type"),
        );
        stub = true;
    }
    // Without a usable receiver, a first parameter taken by reference looks like an event.
    let is_applier = match receiver {
        Some(r) if r.reference.is_some() => r.mutability.is_some(),
        _ => matches!(params.first(), Some(Type::Reference(_))),
    };
    if is_applier {
        classify_applier(sig, &params, stub, errors).map(Method::Applier)
    } else {
        classify_handler(sig, &params, stub, errors).map(Method::Handler)
    }
}

fn classify_handler<'a>(
    sig: &'a syn::Signature,
    params: &[&'a Type],
    mut stub: bool,
    errors: &mut Errors,
) -> Option<Handler<'a>> {
    let name = &sig.ident;
    let (command, extra) = match params {
        [] => {
            errors.error(
                &sig.inputs,
                format!(
                    "command handler `{name}` takes the command: `fn {name}(&self, command: Cmd)`"
                ),
            );
            return None;
        }
        [command] => (*command, None),
        [command, extra] => (*command, Some(*extra)),
        [command, ..] => {
            errors.error(
                &sig.inputs,
                format!(
                    "command handler `{name}` takes the command, and optionally services or the context: `fn {name}(&self, command: Cmd)`, `fn {name}(&self, command: Cmd, services: &Services)` or `fn {name}(&self, command: Cmd, cx: &CommandContext<Self>)`"
                ),
            );
            (*command, None)
        }
    };
    let command = match command {
        Type::Reference(r) => {
            errors.error(
                r,
                format!(
                    "command handler `{name}` takes its command by value: write `command: {}`",
                    r.elem.to_token_stream()
                ),
            );
            stub = true;
            &*r.elem
        }
        other => other,
    };
    let extra = match extra {
        None => None,
        Some(Type::Reference(r)) if r.mutability.is_none() => Some(if is_context(&r.elem) {
            HandlerExtra::Context
        } else {
            HandlerExtra::Services(&r.elem)
        }),
        Some(other) => {
            errors.error(
                other,
                format!("the second parameter of `{name}` borrows the services or the context: write `&{}`", other.to_token_stream()),
            );
            stub = true;
            None
        }
    };
    let output = match &sig.output {
        syn::ReturnType::Type(_, ty) => Some(&**ty),
        syn::ReturnType::Default => {
            errors.error(
                &sig.ident,
                format!("command handler `{name}` must return its decision: add `-> Result<Event, Error>` (or `Result<Vec<Event>, Error>`)"),
            );
            stub = true;
            None
        }
    };
    stub |= params.len() > 2;
    Some(Handler {
        method: name,
        command,
        extra,
        is_async: sig.asyncness.is_some(),
        output,
        stub,
    })
}

fn is_context(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "CommandContext"))
}

fn classify_applier<'a>(
    sig: &'a syn::Signature,
    params: &[&'a Type],
    mut stub: bool,
    errors: &mut Errors,
) -> Option<Applier<'a>> {
    let name = &sig.ident;
    if let Some(token) = sig.asyncness {
        errors.error(
            token,
            format!("event applier `{name}` cannot be async: applying an event only changes state"),
        );
        stub = true;
    }
    if let syn::ReturnType::Type(_, ty) = &sig.output {
        if !matches!(&**ty, Type::Tuple(t) if t.elems.is_empty()) {
            errors.error(
                ty,
                format!("event applier `{name}` cannot return a value or fail: the event already happened; remove the return type"),
            );
            stub = true;
        }
    }
    let (event, with_envelope) = match params {
        [event] => (*event, false),
        [event, _envelope] => (*event, true),
        _ => {
            errors.error(
                &sig.inputs,
                format!("event applier `{name}` takes the event by reference, and optionally the envelope: `fn {name}(&mut self, event: &Event)` or `fn {name}(&mut self, event: &Event, envelope: &EventEnvelope<AccountEvent>)`"),
            );
            return None;
        }
    };
    let event = match event {
        Type::Reference(r) if r.mutability.is_none() => &*r.elem,
        Type::Reference(r) => {
            errors.error(
                r,
                format!(
                    "event applier `{name}` only reads its event: write `event: &{}`",
                    r.elem.to_token_stream()
                ),
            );
            stub = true;
            &*r.elem
        }
        other => {
            errors.error(
                other,
                format!(
                    "event applier `{name}` borrows its event: write `event: &{}`",
                    other.to_token_stream()
                ),
            );
            stub = true;
            other
        }
    };
    Some(Applier {
        method: name,
        event,
        with_envelope,
        stub,
    })
}
