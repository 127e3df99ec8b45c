//! The model of a `#[projection]` impl block: its handlers (one per event payload type), its
//! optional `#[reset]` method, and the connection type they write through.

use heck::ToKebabCase;
use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{Ident, Path, Type};

use super::{is_named, strip_ref, type_ident};
use crate::attr::{Errors, ProjectionAttrs};

/// What an extra parameter of a handler receives.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Extra {
    /// `&StoredEvent`: the event's envelope (ids, sequence, position, time, metadata).
    Envelope,
    /// `&mut C`: the target's connection, inside the batch's transaction.
    Connection,
}

/// `fn name(&mut self, event: &Payload [, envelope: &StoredEvent] [, conn: &mut C]) [-> R]`,
/// or `fn name(&mut self, envelope: &StoredEvent [, conn: &mut C])` for every event; or a
/// batch handler, `fn name(&mut self, events: &[(Payload, &StoredEvent)] [, conn: &mut C])`
/// or `fn name(&mut self, events: &[StoredEvent] [, conn: &mut C])`.
pub struct EventHandler<'a> {
    pub method: &'a Ident,
    /// The decoded type: a payload type, or an aggregate's whole event enum (every event of that
    /// aggregate). `None`: every event of every followed aggregate, undecoded.
    pub payload: Option<&'a Type>,
    /// The first parameter, for spans.
    pub first: &'a Type,
    pub extras: Vec<Extra>,
    pub is_async: bool,
    pub output: Option<&'a Type>,
    /// Takes a slice of events: all of its type in a batch (or the whole batch).
    pub batch: bool,
}

/// `#[reset] fn name(&mut self [, conn: &mut C]) [-> R]`
pub struct Reset<'a> {
    pub method: &'a Ident,
    pub with_connection: bool,
    pub is_async: bool,
    pub output: Option<&'a Type>,
}

pub struct ProjectionInput<'a> {
    /// The impl block as written, for spans.
    pub item: &'a syn::ItemImpl,
    pub crate_path: Path,
    pub name: String,
    pub version: u32,
    pub aggregates: Vec<Type>,
    pub handlers: Vec<EventHandler<'a>>,
    pub reset: Option<Reset<'a>>,
    /// Each `&mut C` parameter's `C`, in order, for the one-connection-type rule.
    pub connections: Vec<&'a Type>,
}

impl<'a> ProjectionInput<'a> {
    pub fn from_syn(args: TokenStream, item: &'a syn::ItemImpl, errors: &mut Errors) -> Self {
        let attrs = ProjectionAttrs::parse(args.clone(), errors);
        if let Some((path, _)) = &item.trait_ {
            errors.error(
                path,
                "`#[projection]` goes on an inherent impl block (`impl AccountSummaries { ... }`), not on a trait impl",
            );
        }
        if let Some(param) = item.generics.params.first() {
            errors.error(
                param,
                "a projection type cannot be generic: its name, version and handlers are fixed; write the impl for a concrete type",
            );
        }
        let aggregates = super::followed_aggregates(
            attrs.aggregates,
            &args,
            item,
            (
                "`aggregates(...)` is empty; name the aggregates whose events this projection reads, e.g. `aggregates(BankAccount)`",
                "`#[projection]` needs the aggregates whose events it reads: `#[projection(aggregates(BankAccount))]`",
            ),
            errors,
        );
        let name = match (&attrs.name, type_ident(&item.self_ty)) {
            (Some(lit), _) => lit.value(),
            (None, Some(ident)) => ident.to_string().to_kebab_case(),
            (None, None) => {
                errors.error(
                    &item.self_ty,
                    "cannot name this projection after its type; give it a name: `#[projection(name = \"account-summaries\", ...)]`",
                );
                String::new()
            }
        };
        if let Some(lit) = &attrs.name
            && lit.value().trim().is_empty()
        {
            errors.error(
                lit,
                "the projection name is empty; give a stable name such as `\"account-summaries\"`",
            );
        }
        let mut input = ProjectionInput {
            item,
            crate_path: attrs
                .crate_path
                .unwrap_or_else(crate::attr::default_crate_path),
            name,
            version: attrs.version.map_or(1, |(v, _)| v),
            aggregates,
            handlers: Vec::new(),
            reset: None,
            connections: Vec::new(),
        };
        // A trait impl's methods are the trait's, not handlers: the one error is the above.
        if item.trait_.is_some() {
            return input;
        }
        for method in item.items.iter().filter_map(|i| match i {
            syn::ImplItem::Fn(f) => Some(f),
            _ => None,
        }) {
            input.method(method, errors);
        }
        input
    }

    fn method(&mut self, method: &'a syn::ImplItemFn, errors: &mut Errors) {
        let sig = &method.sig;
        let name = &sig.ident;
        let reset_attrs: Vec<&syn::Attribute> = method
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("reset"))
            .collect();
        if let [first, second, ..] = reset_attrs[..] {
            errors.error(second, "duplicate `#[reset]`; give it once");
            errors.error(first, "first `#[reset]` here");
        }
        if sig.receiver().and_then(super::borrowed_receiver).is_none() {
            errors.error(
                sig,
                format!("`{name}` is not a projection handler: handlers take `&mut self` (or `&self`) and the event, `fn {name}(&mut self, event: &AccountOpened)`; move other functions to an impl block without `#[projection]`"),
            );
            return;
        }
        if !sig.generics.params.is_empty() {
            errors.error(
                &sig.generics,
                format!("projection handler `{name}` cannot be generic: each handler is for one event payload type"),
            );
            return;
        }
        let params: Vec<&'a Type> = sig
            .inputs
            .iter()
            .filter_map(|arg| match arg {
                syn::FnArg::Typed(t) => Some(&*t.ty),
                syn::FnArg::Receiver(_) => None,
            })
            .collect();
        let output = match &sig.output {
            syn::ReturnType::Type(_, ty) => Some(&**ty),
            syn::ReturnType::Default => None,
        };
        if !reset_attrs.is_empty() {
            self.reset_method(sig, &params, output, errors);
            return;
        }
        let Some((payload, extras)) = params.split_first() else {
            errors.error(
                sig,
                format!("projection handler `{name}` takes the event it handles: `fn {name}(&mut self, event: &AccountOpened)`; a method that empties the read model is marked `#[reset]`"),
            );
            return;
        };
        let first = *payload;
        if let Type::Reference(r) = first
            && let (Type::Slice(slice), None) = (&*r.elem, r.mutability)
        {
            return self.batch(sig, first, &slice.elem, extras, output, errors);
        }
        let payload = match payload {
            Type::Reference(r) if r.mutability.is_none() && is_named(&r.elem, "StoredEvent") => {
                return self.every_event(sig, first, extras, output, errors);
            }
            Type::Reference(r) if r.mutability.is_none() => &*r.elem,
            other => {
                errors.error(
                    other,
                    format!(
                        "projection handler `{name}` borrows its event: write `event: &{}`",
                        strip_ref(other).to_token_stream()
                    ),
                );
                return;
            }
        };
        let mut kinds = Vec::new();
        for extra in extras {
            let kind = match extra {
                Type::Reference(r) if r.mutability.is_some() => {
                    self.connections.push(&r.elem);
                    Extra::Connection
                }
                Type::Reference(_) => Extra::Envelope,
                other => {
                    errors.error(
                        other,
                        format!("after the event, projection handler `{name}` takes the envelope `&StoredEvent` and/or the connection `&mut Connection`, by reference"),
                    );
                    return;
                }
            };
            if kinds.contains(&kind) {
                errors.error(
                    extra,
                    format!("projection handler `{name}` takes at most one envelope (`&StoredEvent`) and one connection (`&mut Connection`)"),
                );
                return;
            }
            kinds.push(kind);
        }
        self.handlers.push(EventHandler {
            method: name,
            payload: Some(payload),
            first,
            extras: kinds,
            is_async: sig.asyncness.is_some(),
            output,
            batch: false,
        });
    }

    /// `fn name(&mut self, events: &[(Payload, &StoredEvent)] [, conn: &mut C])`, or
    /// `&[StoredEvent]` for the whole batch.
    fn batch(
        &mut self,
        sig: &'a syn::Signature,
        first: &'a Type,
        element: &'a Type,
        extras: &[&'a Type],
        output: Option<&'a Type>,
        errors: &mut Errors,
    ) {
        let name = &sig.ident;
        let payload = match element {
            ty if is_named(ty, "StoredEvent") => None,
            Type::Tuple(pair) if pair.elems.len() == 2 => {
                let (payload, envelope) = (&pair.elems[0], &pair.elems[1]);
                let envelope_ok = matches!(envelope, Type::Reference(r) if r.mutability.is_none() && is_named(&r.elem, "StoredEvent"));
                if !envelope_ok {
                    errors.error(
                        envelope,
                        format!("a batch handler's events pair each payload with its envelope: `events: &[({}, &StoredEvent)]`", strip_ref(payload).to_token_stream()),
                    );
                    return;
                }
                if let Type::Reference(r) = payload {
                    errors.error(
                        payload,
                        format!("a batch handler owns the decoded payloads: write `events: &[({}, &StoredEvent)]`", r.elem.to_token_stream()),
                    );
                    return;
                }
                Some(payload)
            }
            other => {
                errors.error(
                    other,
                    format!("a batch handler takes every event of one payload type in the batch, `fn {name}(&mut self, events: &[(Deposited, &StoredEvent)])`, or the whole batch, `fn {name}(&mut self, events: &[StoredEvent])`"),
                );
                return;
            }
        };
        let extras = match extras {
            [] => Vec::new(),
            [Type::Reference(r)] if r.mutability.is_some() => {
                self.connections.push(&r.elem);
                vec![Extra::Connection]
            }
            [other, ..] => {
                errors.error(
                    other,
                    format!("after its events, batch handler `{name}` takes only the connection `&mut Connection` (each event's envelope is in the slice)"),
                );
                return;
            }
        };
        self.handlers.push(EventHandler {
            method: name,
            payload,
            first,
            extras,
            is_async: sig.asyncness.is_some(),
            output,
            batch: true,
        });
    }

    /// `fn name(&mut self, envelope: &StoredEvent [, conn: &mut C])`: every event, undecoded.
    fn every_event(
        &mut self,
        sig: &'a syn::Signature,
        first: &'a Type,
        extras: &[&'a Type],
        output: Option<&'a Type>,
        errors: &mut Errors,
    ) {
        let name = &sig.ident;
        let extras = match extras {
            [] => Vec::new(),
            [Type::Reference(r)] if r.mutability.is_some() => {
                self.connections.push(&r.elem);
                vec![Extra::Connection]
            }
            [other, ..] => {
                errors.error(
                    other,
                    format!("`{name}` handles every event through its envelope; after it, it takes only the connection `&mut Connection`: `fn {name}(&mut self, envelope: &StoredEvent, conn: &mut Connection)`"),
                );
                return;
            }
        };
        self.handlers.push(EventHandler {
            method: name,
            payload: None,
            first,
            extras,
            is_async: sig.asyncness.is_some(),
            output,
            batch: false,
        });
    }

    fn reset_method(
        &mut self,
        sig: &'a syn::Signature,
        params: &[&'a Type],
        output: Option<&'a Type>,
        errors: &mut Errors,
    ) {
        let name = &sig.ident;
        let with_connection = match params {
            [] => false,
            [Type::Reference(r)] if r.mutability.is_some() => {
                self.connections.push(&r.elem);
                true
            }
            _ => {
                errors.error(
                    &sig.inputs,
                    format!("the `#[reset]` method `{name}` takes only the connection, if any: `fn {name}(&mut self)` or `fn {name}(&mut self, conn: &mut Connection)`"),
                );
                return;
            }
        };
        if let Some(first) = &self.reset {
            errors.error(
                name,
                format!("a second `#[reset]` method, `{name}`; a projection has one"),
            );
            errors.error(first.method, "first `#[reset]` method here");
            return;
        }
        self.reset = Some(Reset {
            method: name,
            with_connection,
            is_async: sig.asyncness.is_some(),
            output,
        });
    }

    /// The impl block as it is emitted: as written, without the `#[reset]` markers.
    pub fn cleaned_item(&self) -> syn::ItemImpl {
        let mut item = self.item.clone();
        for impl_item in &mut item.items {
            if let syn::ImplItem::Fn(f) = impl_item {
                f.attrs.retain(|a| !a.path().is_ident("reset"));
            }
        }
        item
    }
}
