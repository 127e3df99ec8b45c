//! The model of a `#[process_manager]` impl block, on the instance's state type: per event
//! payload type, a `&mut self` method that evolves the state and a `&self` method that decides
//! the effects (each optional, with how the event finds its instance); deadline handlers; and
//! the handler of refused commands.

use heck::ToKebabCase;
use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{Ident, LitStr, Path, Type};

use super::{is_named, strip_ref, type_ident};
use crate::attr::process::{is_marker, parse_deadline, parse_refused};
use crate::attr::{Errors, ProcessAttrs, RouteAttr};

/// What a parameter after the event (or the receiver) receives.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Param {
    /// `&StoredEvent`: the event's envelope.
    Envelope,
    /// `&mut Effects<Self>`: commands, deadlines, completion.
    Effects,
    /// `&Refused`: the refused command.
    Refused,
    /// `&Manager`: the manager's configuration (`manager = ...`).
    Manager,
}

/// A method with its parameters after the receiver (and the event).
pub struct Method<'a> {
    pub ident: &'a Ident,
    /// `&mut self`.
    pub mutates: bool,
    pub params: Vec<Param>,
    pub output: Option<&'a Type>,
}

/// A handler of one event payload type.
pub struct EventHandler<'a> {
    pub method: Method<'a>,
    pub payload: &'a Type,
    pub route: Option<RouteAttr<'a>>,
}

pub struct ProcessInput<'a> {
    pub item: &'a syn::ItemImpl,
    pub crate_path: Path,
    pub name: String,
    pub manager: Option<Type>,
    pub aggregates: Vec<Type>,
    /// The event enums of other services (`contracts(...)`), received from the bus.
    pub contracts: Vec<Type>,
    pub sends: Vec<Type>,
    pub handlers: Vec<EventHandler<'a>>,
    pub deadlines: Vec<(LitStr, Method<'a>)>,
    pub refused: Option<Method<'a>>,
    /// Each `effects.send` call in the handlers' bodies (the `send` token), where `effects`
    /// is a handler's `&mut Effects<Self>` parameter.
    pub send_calls: Vec<Ident>,
}

impl<'a> ProcessInput<'a> {
    pub fn from_syn(args: TokenStream, item: &'a syn::ItemImpl, errors: &mut Errors) -> Self {
        let attrs = ProcessAttrs::parse(args.clone(), errors);
        if let Some((path, _)) = &item.trait_ {
            errors.error(
                path,
                "`#[process_manager]` goes on the inherent impl block of the instance's state type (`impl TransferState { ... }`), not on a trait impl",
            );
        }
        if let Some(param) = item.generics.params.first() {
            errors.error(
                param,
                "a process manager's state type cannot be generic: its name and handlers are fixed; write the impl for a concrete type",
            );
        }
        let aggregates = super::followed_aggregates(
            attrs.aggregates,
            &args,
            item,
            (
                "`aggregates(...)` is empty; name the aggregates whose events this process manager follows, e.g. `aggregates(Transfer, Account)`",
                "`#[process_manager]` needs the aggregates whose events it follows: `#[process_manager(aggregates(Transfer, Account), sends(Account))]`",
            ),
            errors,
        );
        let contracts = match attrs.contracts {
            Some((types, path)) => {
                if types.is_empty() {
                    errors.error(&path, "`contracts(...)` is empty; name the event enums of other services this process manager receives, e.g. `contracts(AccountPublic)`, or remove it");
                }
                types
            }
            None => Vec::new(),
        };
        let named_after = attrs.manager.as_ref().unwrap_or(&item.self_ty);
        let name = match (&attrs.name, type_ident(named_after)) {
            (Some(lit), _) => lit.value(),
            (None, Some(ident)) => ident.to_string().to_kebab_case(),
            (None, None) => {
                errors.error(
                    named_after,
                    "cannot name this process manager after its type; give it a name: `#[process_manager(name = \"transfers\", ...)]`",
                );
                String::new()
            }
        };
        if let Some(lit) = &attrs.name
            && (lit.value().trim().is_empty() || lit.value().contains('/'))
        {
            errors.error(lit, "a process manager's name is not empty and has no `/` (it begins its commands' idempotency keys); give a stable name such as `\"transfers\"`");
        }
        let mut input = ProcessInput {
            item,
            crate_path: attrs
                .crate_path
                .unwrap_or_else(crate::attr::default_crate_path),
            name,
            manager: attrs.manager,
            aggregates,
            contracts,
            sends: attrs.sends.map(|(types, _)| types).unwrap_or_default(),
            handlers: Vec::new(),
            deadlines: Vec::new(),
            refused: None,
            send_calls: Vec::new(),
        };
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
        let effects: Vec<&Ident> = method
            .sig
            .inputs
            .iter()
            .filter_map(|arg| match arg {
                syn::FnArg::Typed(t) if matches!(&*t.ty, Type::Reference(r) if r.mutability.is_some()) => {
                    match &*t.pat {
                        syn::Pat::Ident(p) => Some(&p.ident),
                        _ => None,
                    }
                }
                _ => None,
            })
            .collect();
        send_calls(
            method.block.to_token_stream(),
            &effects,
            &mut self.send_calls,
        );
        let sig = &method.sig;
        let name = &sig.ident;
        let markers: Vec<&syn::Attribute> = method.attrs.iter().filter(|a| is_marker(a)).collect();
        if let [first, second, ..] = markers[..] {
            errors.twice(
                syn::spanned::Spanned::span(first),
                syn::spanned::Spanned::span(second),
                format!("`{name}` has two markers; a method is one of: an event handler (`#[start]` or `#[existing]`, at most one), a `#[deadline(\"...\")]` or the `#[refused]` handler"),
            );
            return;
        }
        let marker = markers.first().copied();
        let Some(mutates) = sig.receiver().and_then(super::borrowed_receiver) else {
            errors.error(
                sig,
                format!("`{name}` is not a process manager handler: handlers take `&mut self` (to evolve the state) or `&self` (to decide effects), then the event, `fn {name}(&mut self, event: &Requested)`; move other functions to an impl block without `#[process_manager]`"),
            );
            return;
        };
        if !sig.generics.params.is_empty() {
            errors.error(
                &sig.generics,
                format!("process manager handler `{name}` cannot be generic: each handler is for one event payload type"),
            );
            return;
        }
        if let Some(a) = &sig.asyncness {
            errors.error(
                a,
                format!("process manager handler `{name}` cannot be `async`: handlers decide from the state and the event alone; what they do outside is a command (`effects.send`)"),
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
        let route = match marker {
            Some(attr) if attr.path().is_ident("deadline") => {
                let Some(deadline) = parse_deadline(attr, errors) else {
                    return;
                };
                if let Some(m) = self.tail(name, &params, &[Param::Effects, Param::Manager], errors)
                {
                    let method = Method {
                        ident: name,
                        mutates,
                        params: m,
                        output,
                    };
                    self.deadlines.push((deadline, method));
                }
                return;
            }
            Some(attr) if attr.path().is_ident("refused") => {
                if !parse_refused(attr, errors) {
                    return;
                }
                let allowed = [Param::Refused, Param::Effects, Param::Manager];
                let Some(m) = self.tail(name, &params, &allowed, errors) else {
                    return;
                };
                if m.first() != Some(&Param::Refused) {
                    errors.error(
                        sig,
                        format!("the `#[refused]` handler takes the refused command first: `fn {name}(&mut self, refused: &Refused, effects: &mut Effects<Self>)`"),
                    );
                    return;
                }
                if let Some(first) = &self.refused {
                    errors.error(
                        name,
                        format!(
                            "a second `#[refused]` handler, `{name}`; merge it into `{}`",
                            first.ident
                        ),
                    );
                    return;
                }
                self.refused = Some(Method {
                    ident: name,
                    mutates,
                    params: m,
                    output,
                });
                return;
            }
            Some(attr) => match RouteAttr::parse(attr, errors) {
                Some(route) => Some(route),
                None => return,
            },
            None => None,
        };
        let Some((payload, rest)) = params.split_first() else {
            errors.error(
                sig,
                format!("process manager handler `{name}` takes the event it handles: `fn {name}(&mut self, event: &Requested)`; a deadline's handler is marked `#[deadline(\"name\")]`, the handler of refused commands `#[refused]`"),
            );
            return;
        };
        let payload = match payload {
            Type::Reference(r) if r.mutability.is_none() && !is_named(&r.elem, "StoredEvent") => {
                &*r.elem
            }
            other => {
                errors.error(
                    other,
                    format!("process manager handler `{name}` borrows the payload of the event it handles: write `event: &{}`", strip_ref(other).to_token_stream()),
                );
                return;
            }
        };
        let allowed: &[Param] = if mutates {
            &[Param::Envelope]
        } else {
            &[Param::Envelope, Param::Effects, Param::Manager]
        };
        let Some(params) = self.tail(name, rest, allowed, errors) else {
            return;
        };
        self.handlers.push(EventHandler {
            method: Method {
                ident: name,
                mutates,
                params,
                output,
            },
            payload,
            route,
        });
    }

    /// Classifies the parameters after the event (or the receiver), each at most once and each
    /// among `allowed`.
    fn tail(
        &self,
        name: &Ident,
        params: &[&'a Type],
        allowed: &[Param],
        errors: &mut Errors,
    ) -> Option<Vec<Param>> {
        let mut kinds = Vec::new();
        for ty in params {
            let kind = match ty {
                Type::Reference(r) if r.mutability.is_some() => {
                    if !is_typed_effects(&r.elem) {
                        errors.error(
                            &r.elem,
                            format!("`{name}` takes its effects as `&mut Effects<Self>`: the effects of this state type, whose `send` finds each command's aggregate in `sends(...)`"),
                        );
                        return None;
                    }
                    Param::Effects
                }
                Type::Reference(r) if is_named(&r.elem, "StoredEvent") => Param::Envelope,
                Type::Reference(r) if is_named(&r.elem, "Refused") => Param::Refused,
                Type::Reference(_) => Param::Manager,
                other => {
                    errors.error(
                        other,
                        format!("`{name}` takes its parameters by reference: `&StoredEvent`, `&mut Effects<Self>`, `&Refused` or the manager `&{}`", self.manager_name()),
                    );
                    return None;
                }
            };
            if !allowed.contains(&kind) {
                let message = match kind {
                    Param::Effects if allowed.contains(&Param::Envelope) => format!(
                        "`{name}` evolves the state (`&mut self`), so it has no effects: decide commands, deadlines and completion in a `&self` handler of the same event, `fn decide(&self, event: &Payload, effects: &mut Effects<Self>)`"
                    ),
                    Param::Manager if allowed.contains(&Param::Envelope) => format!(
                        "`{name}` evolves the state (`&mut self`) from the event alone; read the manager's configuration in a `&self` handler of the same event"
                    ),
                    Param::Envelope => format!(
                        "only event handlers take the envelope `&StoredEvent`; `{name}` handles no event"
                    ),
                    Param::Refused => format!(
                        "only the `#[refused]` handler takes `&Refused`; mark `{name}` `#[refused]`"
                    ),
                    _ => format!("`{name}` cannot take this parameter"),
                };
                errors.error(ty, message);
                return None;
            }
            if kind == Param::Manager && self.manager.is_none() {
                let ty_name = strip_ref(ty).to_token_stream().to_string().replace(' ', "");
                let takes = if allowed.contains(&Param::Envelope) {
                    "after its event, an event handler takes the envelope `&StoredEvent` and, if it decides, `&mut Effects<Self>`"
                } else {
                    "a deadline or refusal handler takes no event, only `&mut Effects<Self>` (and `&Refused`)"
                };
                errors.error(
                    ty,
                    format!("`{name}` takes `&{ty_name}`: {takes}; if `{ty_name}` is the manager's configuration, declare it with `manager = {ty_name}` in `#[process_manager(...)]`"),
                );
                return None;
            }
            if kinds.contains(&kind) {
                errors.error(ty, format!("`{name}` takes this kind of parameter twice"));
                return None;
            }
            kinds.push(kind);
        }
        Some(kinds)
    }

    fn manager_name(&self) -> String {
        self.manager
            .as_ref()
            .map_or_else(|| "Manager".to_owned(), |m| m.to_token_stream().to_string())
    }

    /// The impl block as it is emitted: as written, without the markers.
    pub fn cleaned_item(&self) -> syn::ItemImpl {
        let mut item = self.item.clone();
        for impl_item in &mut item.items {
            if let syn::ImplItem::Fn(f) = impl_item {
                f.attrs.retain(|a| !is_marker(a));
            }
        }
        item
    }

    /// The type `ProcessManager` is implemented for: `manager = ...`, or the state type.
    pub fn manager_type(&self) -> &Type {
        self.manager.as_ref().unwrap_or(&self.item.self_ty)
    }
}

/// The `send` of each `<effects>.send(...)` in `tokens`, `effects` being one of `names`.
fn send_calls(tokens: TokenStream, names: &[&Ident], found: &mut Vec<Ident>) {
    use proc_macro2::TokenTree;
    if names.is_empty() {
        return;
    }
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    for (i, token) in tokens.iter().enumerate() {
        if let TokenTree::Group(group) = token {
            send_calls(group.stream(), names, found);
        }
        if let [
            TokenTree::Ident(receiver),
            TokenTree::Punct(dot),
            TokenTree::Ident(method),
            TokenTree::Group(args),
            ..,
        ] = &tokens[i..]
        {
            let call = dot.as_char() == '.'
                && method == "send"
                && args.delimiter() == proc_macro2::Delimiter::Parenthesis;
            if call && names.contains(&receiver) {
                found.push(method.clone());
            }
        }
    }
}

/// `Effects<Self>` (or `Effects<T>` for any `T`: a wrong `T` is rustc's to report).
fn is_typed_effects(ty: &Type) -> bool {
    let Type::Path(p) = ty else {
        return false;
    };
    p.path.segments.last().is_some_and(|s| {
        s.ident == "Effects"
            && matches!(&s.arguments, syn::PathArguments::AngleBracketed(a) if a.args.len() == 1)
    })
}
