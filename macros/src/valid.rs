//! Rules that span several attributes or items. Each `check_*` states its rule first.

use std::collections::BTreeMap;

use proc_macro2::Span;
use quote::ToTokens;

use crate::ast::{
    AggregateInput, CommandInput, EventDef, EventInput, HandlersInput, ProcessInput,
    ProjectionInput,
};
use crate::attr::{Errors, HopKind};

pub fn check_event(input: &EventInput<'_>, errors: &mut Errors) {
    for def in input.events.iter().filter(|d| !d.upcast_broken) {
        check_upcast_keys(def, errors);
        check_upcast_complete(def, errors);
        check_hop_targets(def, errors);
    }
    check_stored_names(input, errors);
    check_distinct_payloads(
        input
            .events
            .iter()
            .filter_map(|d| d.variant.map(|v| (v, &d.payload))),
        "event",
        errors,
    );
}

// Rule: only versions older than the current one are upcast.
fn check_upcast_keys(def: &EventDef<'_>, errors: &mut Errors) {
    for (&from, hop) in &def.hops {
        if from >= def.version {
            errors.error(
                &hop.key,
                format!(
                    "`v{from}` upcasts from version {from}, but `{}` is at version {}; upcasts go from older versions (v1 to v{}) to the next one; raise `version` if you added a version",
                    def.name,
                    def.version,
                    def.version.saturating_sub(1).max(1),
                ),
            );
        }
    }
}

// Rule: every version from 1 to the current one minus 1 has exactly one hop: the chain from any
// stored version to the current one has no gap.
fn check_upcast_complete(def: &EventDef<'_>, errors: &mut Errors) {
    let missing: Vec<String> = (1..def.version)
        .filter(|v| !def.hops.contains_key(v))
        .map(|v| format!("`v{v}`"))
        .collect();
    if missing.is_empty() {
        return;
    }
    let older = match def.version {
        2 => "version 1".to_owned(),
        v => format!("versions 1 to {}", v - 1),
    };
    let message = if def.hops.is_empty() {
        format!(
            "`{}` is at version {}, so stored data may hold {older}: add `upcast({})` naming each older shape, with a `From` impl from each to the next",
            def.name,
            def.version,
            (1..def.version)
                .map(|v| format!("v{v} = {}V{v}", def.name))
                .collect::<Vec<_>>()
                .join(", "),
        )
    } else {
        format!(
            "gap in the upcast chain of `{}`: no hop from {}; every version from 1 to {} needs one, e.g. `v{} = OldShape`",
            def.name,
            missing.join(", "),
            def.version - 1,
            (1..def.version)
                .find(|v| !def.hops.contains_key(v))
                .unwrap_or(1),
        )
    };
    match def.upcast_span {
        Some(span) if !def.hops.is_empty() => errors.push(syn::Error::new(span, message)),
        _ => errors.push(syn::Error::new_spanned(def.version_span(), message)),
    }
}

// Rule: a typed hop (`From` or `with`) needs a Rust type for the version it produces. (A
// version with no hop at all is a gap, reported by `check_upcast_complete`.)
fn check_hop_targets(def: &EventDef<'_>, errors: &mut Errors) {
    for (&from, hop) in &def.hops {
        let next_missing = from + 1 < def.version && !def.hops.contains_key(&(from + 1));
        if from >= def.version || next_missing || matches!(hop.kind, HopKind::Json(_)) {
            continue;
        }
        if def.type_of(from + 1).is_none() {
            errors.error(
                &hop.key,
                format!(
                    "`v{from}` converts into version {}, which is known only as JSON; give it a type with `v{}(ty = Shape, json = ...)`, or make this hop `v{from}(json = path::to::fn)`",
                    from + 1,
                    from + 1,
                ),
            );
        }
    }
}

// Rule: stored names and aliases are unique across an enum, so reading a stored name finds
// exactly one event.
fn check_stored_names(input: &EventInput<'_>, errors: &mut Errors) {
    let mut seen: BTreeMap<String, Span> = BTreeMap::new();
    for def in &input.events {
        if def.name.is_empty() {
            errors.push(syn::Error::new(
                def.name_span,
                "an event name cannot be empty",
            ));
        }
        let names = std::iter::once((def.name.clone(), def.name_span))
            .chain(def.aliases.iter().map(|a| (a.value(), a.span())));
        for (name, span) in names {
            if let Some(&first) = seen.get(&name) {
                errors.twice(
                    first,
                    span,
                    format!(
                        "event name `{name}` is used twice (both are marked); stored events of that name could not be told apart: rename one of them"
                    ),
                );
            } else {
                seen.insert(name, span);
            }
        }
    }
}

// Rule: each variant wraps its own payload type, because aggregates apply and handle by type.
fn check_distinct_payloads<'a>(
    variants: impl Iterator<Item = (&'a syn::Ident, &'a syn::Type)>,
    what: &str,
    errors: &mut Errors,
) {
    let mut seen: BTreeMap<String, &syn::Ident> = BTreeMap::new();
    for (variant, ty) in variants {
        let key = ty.to_token_stream().to_string();
        if let Some(first) = seen.get(&key) {
            errors.error(
                ty,
                format!(
                    "`{key}` is wrapped by both `{first}` and `{variant}`; each {what} variant needs its own payload type, because handlers are chosen by type"
                ),
            );
        } else {
            seen.insert(key, variant);
        }
    }
}

pub fn check_command(input: &CommandInput<'_>, errors: &mut Errors) {
    check_distinct_payloads(
        input
            .commands
            .iter()
            .filter_map(|d| d.variant.map(|v| (v, &d.payload))),
        "command",
        errors,
    );
    // Rule: command names are unique, so a schema or an HTTP route names one command.
    let mut seen: BTreeMap<&str, Span> = BTreeMap::new();
    for def in &input.commands {
        if let Some(&first) = seen.get(def.name.as_str()) {
            errors.twice(
                first,
                def.name_span,
                format!(
                    "command name `{}` is used twice (both are marked): rename one of them",
                    def.name
                ),
            );
        } else {
            seen.insert(&def.name, def.name_span);
        }
    }
}

pub fn check_aggregate(input: &AggregateInput<'_>, errors: &mut Errors) {
    // Rule: an aggregate names its event and command types; the rest have defaults.
    if input.attrs.event.is_none() && input.attrs.command.is_none() {
        errors.error(
            input.ident,
            "missing `#[aggregate(command = ..., event = ...)]`; name the aggregate's command and event types, e.g. `#[aggregate(command = AccountCommand, event = AccountEvent, error = AccountError)]`",
        );
        return;
    }
    for (key, value, example) in [
        ("event", &input.attrs.event, "event = AccountEvent"),
        ("command", &input.attrs.command, "command = AccountCommand"),
    ] {
        if value.is_none() {
            errors.error(
                input.ident,
                format!("missing `{key}` in `#[aggregate(...)]`; name the aggregate's {key} type, e.g. `#[aggregate({example})]`"),
            );
        }
    }
    // Rule: `snapshot_version` only salts the fingerprint of snapshots that are taken.
    if let (Some((_, lit)), None) = (&input.attrs.snapshot_version, &input.attrs.snapshot_every) {
        errors.error(
            lit,
            "`snapshot_version` has no effect without `snapshot_every`; add `snapshot_every = N` or remove it",
        );
    }
    if input.name.is_empty() {
        match &input.attrs.rename {
            Some(lit) => errors.error(lit, "the aggregate type name cannot be empty"),
            None => errors.error(input.ident, "the aggregate type name cannot be empty"),
        }
    }
}

pub fn check_handlers(input: &HandlersInput<'_>, errors: &mut Errors) {
    // Rule: one handler per command type and one applier per event type, or the routing would
    // be ambiguous.
    let mut commands: BTreeMap<String, &syn::Ident> = BTreeMap::new();
    for h in &input.handlers {
        let key = h.command.to_token_stream().to_string();
        if let Some(first) = commands.get(&key) {
            errors.error(
                h.method,
                format!("`{key}` already has a handler, `{first}`; keep one"),
            );
        } else {
            commands.insert(key, h.method);
        }
    }
    let mut events: BTreeMap<String, &syn::Ident> = BTreeMap::new();
    for a in &input.appliers {
        let key = a.event.to_token_stream().to_string();
        if let Some(first) = events.get(&key) {
            errors.error(
                a.method,
                format!("`{key}` is already applied by `{first}`; keep one"),
            );
        } else {
            events.insert(key, a.method);
        }
    }
}

pub fn check_projection(input: &ProjectionInput<'_>, errors: &mut Errors) {
    check_one_handler_per_payload(input, errors);
    check_one_connection_type(input, errors);
}

// Rule: one handler per event payload type; a second one would never run.
fn check_one_handler_per_payload(input: &ProjectionInput<'_>, errors: &mut Errors) {
    let mut seen = BTreeMap::new();
    for handler in &input.handlers {
        let key = match handler.payload {
            Some(payload) => payload.to_token_stream().to_string(),
            None => "StoredEvent".to_owned(),
        };
        if let Some(first) = seen.insert(key.clone(), handler.method) {
            errors.error(
                handler.payload.unwrap_or(handler.first),
                format!(
                    "a second handler for `{}`, `{}`; merge it into `{first}`",
                    key.replace(' ', ""),
                    handler.method
                ),
            );
            seen.insert(key, first);
        }
    }
}

// Rule: every handler writes through the same connection type: the runner opens one kind of
// transaction for the projection.
fn check_one_connection_type(input: &ProjectionInput<'_>, errors: &mut Errors) {
    let Some((first, rest)) = input.connections.split_first() else {
        return;
    };
    let expected = first.to_token_stream().to_string();
    for other in rest {
        if other.to_token_stream().to_string() != expected {
            errors.error(
                other,
                format!(
                    "the handlers of one projection write through one connection type: `{}` here, `{}` before",
                    other.to_token_stream().to_string().replace(' ', ""),
                    expected.replace(' ', "")
                ),
            );
        }
    }
}

pub fn check_process(input: &ProcessInput<'_>, errors: &mut Errors) {
    check_one_handler_per_role(input, errors);
    check_one_route_per_payload(input, errors);
    check_something_starts(input, errors);
    check_distinct_deadlines(input, errors);
    check_sends_declared(input, errors);
}

// Rule: a manager that sends commands names the aggregates it sends to.
fn check_sends_declared(input: &ProcessInput<'_>, errors: &mut Errors) {
    if let (true, Some(send)) = (input.sends.is_empty(), input.send_calls.first()) {
        errors.error(
            send,
            "this process manager sends commands but lists no aggregate to send them to: add the aggregates whose commands it sends to `#[process_manager(...)]`, e.g. `sends(Account)`",
        );
    }
}

// Rule: per event payload type, one `&mut self` handler (evolves) and one `&self` handler
// (decides); a second one of either would be a second answer to the same event.
fn check_one_handler_per_role(input: &ProcessInput<'_>, errors: &mut Errors) {
    let mut seen = BTreeMap::new();
    for handler in &input.handlers {
        let payload = handler
            .payload
            .to_token_stream()
            .to_string()
            .replace(' ', "");
        let role = if handler.method.mutates {
            "`&mut self`"
        } else {
            "`&self`"
        };
        if let Some(first) = seen.insert((payload.clone(), role), handler.method.ident) {
            errors.error(
                handler.payload,
                format!(
                    "a second {role} handler for `{payload}`, `{}`; merge it into `{first}` (an event has one handler that evolves the state, `&mut self`, and one that decides effects, `&self`)",
                    handler.method.ident
                ),
            );
            seen.insert((payload, role), first);
        }
    }
}

// Rule: an event finds its instance one way: one `#[start]` or `#[existing]` per payload type.
fn check_one_route_per_payload(input: &ProcessInput<'_>, errors: &mut Errors) {
    let mut seen = BTreeMap::new();
    for handler in &input.handlers {
        let Some(route) = &handler.route else {
            continue;
        };
        let payload = handler
            .payload
            .to_token_stream()
            .to_string()
            .replace(' ', "");
        if let Some(first) = seen.insert(payload.clone(), handler.method.ident) {
            errors.error(
                route.attr,
                format!("`{payload}` already finds its instance through `{first}`'s marker; mark one handler of an event"),
            );
        }
    }
}

// Rule: some event starts an instance, or no instance ever runs.
fn check_something_starts(input: &ProcessInput<'_>, errors: &mut Errors) {
    let starts = input
        .handlers
        .iter()
        .any(|h| h.route.as_ref().is_some_and(|r| r.start));
    if !starts && input.item.trait_.is_none() && !input.aggregates.is_empty() {
        errors.error(
            &input.item.self_ty,
            "no event starts an instance of this process manager, so none would ever run: mark the handler of the event that begins a workflow `#[start]` (or `#[start(field = <payload field>)]`)",
        );
    }
}

// Rule: one handler per deadline name.
fn check_distinct_deadlines(input: &ProcessInput<'_>, errors: &mut Errors) {
    let mut seen = BTreeMap::new();
    for (name, method) in &input.deadlines {
        if let Some(first) = seen.insert(name.value(), method.ident) {
            errors.error(
                name,
                format!(
                    "a second handler for deadline \"{}\", `{}`; merge it into `{first}`",
                    name.value(),
                    method.ident
                ),
            );
        }
    }
}
