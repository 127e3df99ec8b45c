//! The model of a `#[handlers]` impl block: command handlers (`&self`) and event appliers
//! (`&mut self`).

use quote::ToTokens;
use syn::{Ident, Path, Type};

use crate::attr::Errors;

/// What the optional last parameter of a command handler receives.
pub enum HandlerExtra<'a> {
    /// `&CommandContext<'_, A>`: id, version, existence, services, metadata; `A` as written
    /// (`Self`, the aggregate's name, or a mistake the handler's check reports).
    Context(Option<&'a Type>),
    /// Any other `&T`: the aggregate's services (the parameter's type, for error spans).
    Services(&'a Type),
}

/// `#[create]` or `#[upsert]` on a command handler: when it runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Create,
    Upsert,
}

/// `fn name(&self, command: C [, extra]) -> R`
pub struct Handler<'a> {
    /// `#[create]` or `#[upsert]`, with the attribute for spans.
    pub mark: Option<(Mark, &'a syn::Attribute)>,
    pub method: &'a Ident,
    pub command: &'a Type,
    pub extra: Option<HandlerExtra<'a>>,
    pub is_async: bool,
    /// The return type, for spans of conversion errors.
    pub output: Option<&'a Type>,
    /// It returns a `Result`; otherwise it returns its events directly.
    pub fallible: bool,
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
    /// The impl block as it is emitted: as written, without the `#[create]`/`#[upsert]` marks.
    pub fn cleaned_item(&self) -> syn::ItemImpl {
        let mut item = self.item.clone();
        for impl_item in &mut item.items {
            if let syn::ImplItem::Fn(f) = impl_item {
                f.attrs.retain(|a| !is_marker(a));
            }
        }
        item
    }

    pub fn from_syn(item: &'a syn::ItemImpl, crate_path: Path, errors: &mut Errors) -> Self {
        if let Some((path, _)) = &item.trait_ {
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
            let mark = mark(method, errors);
            match classify(&method.sig, errors) {
                Some(Method::Handler(h)) => handlers.push(Handler { mark, ..h }),
                Some(Method::Applier(a)) => {
                    if let Some((_, attr)) = mark {
                        errors.beside(
                            attr,
                            format!(
                                "`{}` is an event applier (`&mut self`), which runs for events that already happened; `#[create]` and `#[upsert]` mark command handlers (`&self`): remove it",
                                a.method
                            ),
                        );
                    }
                    appliers.push(a);
                }
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

/// Reads `#[create]` or `#[upsert]` from a method: at most one, without arguments.
fn mark<'a>(
    method: &'a syn::ImplItemFn,
    errors: &mut Errors,
) -> Option<(Mark, &'a syn::Attribute)> {
    let mut found: Option<(Mark, &syn::Attribute)> = None;
    for attr in &method.attrs {
        let kind = if attr.path().is_ident("create") {
            Mark::Create
        } else if attr.path().is_ident("upsert") {
            Mark::Upsert
        } else {
            continue;
        };
        if !matches!(attr.meta, syn::Meta::Path(_)) {
            errors.beside(
                &attr.meta,
                format!(
                    "`#[{}]` takes no arguments; the refusals are declared on the aggregate: `#[aggregate(missing = ..., exists = ...)]`",
                    attr.path().to_token_stream()
                ),
            );
        }
        match found {
            Some((first, _)) if first == kind => {
                errors.beside(
                    attr,
                    format!(
                        "duplicate `#[{}]`; give it once",
                        attr.path().to_token_stream()
                    ),
                );
            }
            Some(_) => {
                errors.beside(
                    attr,
                    "`#[create]` runs only on a new aggregate and `#[upsert]` on both: keep one",
                );
            }
            None => found = Some((kind, attr)),
        }
    }
    found
}

/// Whether a method attribute is one `#[handlers]` reads (and removes from the emitted block).
pub fn is_marker(attr: &syn::Attribute) -> bool {
    attr.path().is_ident("create") || attr.path().is_ident("upsert")
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
    let borrowed = receiver.and_then(super::borrowed_receiver);
    if borrowed.is_none() {
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
    let likeness = applier_likeness(sig, &params);
    let mut mixed_up = false;
    let is_applier = match (borrowed, receiver) {
        (Some(mutable), Some(receiver))
            if (mutable && likeness < 0) || (!mutable && likeness > 0) =>
        {
            // The receiver says one kind and the rest of the signature clearly the other: one
            // error at the receiver; the method is taken for what the rest says.
            let message = if mutable {
                format!(
                    "`{name}` takes `&mut self`, which makes it an event applier, but it is {} like a command handler; command handlers take `&self` (they decide, only appliers change state): write `&self`",
                    handler_signs(sig, &params)
                )
            } else {
                format!(
                    "`{name}` takes `&self`, which makes it a command handler, but it borrows its parameter and returns nothing like an event applier; appliers change state: write `&mut self`"
                )
            };
            errors.error(receiver, message);
            mixed_up = true;
            !mutable
        }
        (Some(mutable), _) => mutable,
        (None, _) => matches!(params.first(), Some(Type::Reference(_))),
    };
    // After a mix-up, what else the signature gets wrong for its kind follows from it.
    let mut ignored = Errors::default();
    let errors = if mixed_up { &mut ignored } else { errors };
    stub |= mixed_up;
    if is_applier {
        classify_applier(sig, &params, stub, errors).map(Method::Applier)
    } else {
        classify_handler(sig, &params, stub, errors).map(Method::Handler)
    }
}

/// How much a signature looks like an applier's (borrowed first parameter, nothing returned)
/// rather than a handler's (`async`, the command by value, a return type): positive for an
/// applier, negative for a handler. The receiver decides unless the rest clearly disagrees.
fn applier_likeness(sig: &syn::Signature, params: &[&Type]) -> i32 {
    let returns = returns_something(sig);
    let by_reference = matches!(params.first(), Some(Type::Reference(_)));
    let applier = i32::from(by_reference) + i32::from(!returns);
    let handler = i32::from(sig.asyncness.is_some())
        + i32::from(!by_reference && !params.is_empty())
        + i32::from(returns);
    applier - handler
}

fn returns_something(sig: &syn::Signature) -> bool {
    match &sig.output {
        syn::ReturnType::Default => false,
        syn::ReturnType::Type(_, ty) => !matches!(&**ty, Type::Tuple(t) if t.elems.is_empty()),
    }
}

/// "async, takes `Close` by value and returns a value", for the receiver mix-up message.
fn handler_signs(sig: &syn::Signature, params: &[&Type]) -> String {
    let mut signs = Vec::new();
    if sig.asyncness.is_some() {
        signs.push("async".to_owned());
    }
    if let Some(first) = params.first().filter(|t| !matches!(t, Type::Reference(_))) {
        signs.push(format!("takes `{}` by value", first.to_token_stream()));
    }
    if returns_something(sig) {
        signs.push("returns a value".to_owned());
    }
    match signs.as_slice() {
        [] => "written".to_owned(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
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
            HandlerExtra::Context(super::type_args(&r.elem).last().copied())
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
                format!("command handler `{name}` must return its decision: add `-> Event` (or `-> Vec<Event>`, `-> Option<Event>`), `-> Result<Event, Error>` if it can refuse, or `-> ()` if it records nothing"),
            );
            stub = true;
            None
        }
    };
    stub |= params.len() > 2;
    Some(Handler {
        mark: None,
        fallible: output.is_some_and(is_result),
        method: name,
        command,
        extra,
        is_async: sig.asyncness.is_some(),
        output,
        stub,
    })
}

/// `Result<..>` by its last segment (`std::result::Result`, `Result`): a handler that can refuse.
fn is_result(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Result"))
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
    if let syn::ReturnType::Type(_, ty) = &sig.output
        && !matches!(&**ty, Type::Tuple(t) if t.elems.is_empty())
    {
        errors.error(
                ty,
                format!("event applier `{name}` cannot return a value or fail: the event already happened; remove the return type"),
            );
        stub = true;
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
