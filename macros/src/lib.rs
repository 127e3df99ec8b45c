//! Derive macros of cargo-cqrs. Use them through `cqrs-runtime`, which re-exports them and
//! documents every attribute; this crate is pinned to the runtime's exact version.
//!
//! Each macro goes parse (`ast`, `attr`) -> validate (`valid`) -> expand (`expand`);
//! errors are collected and reported together, beside a `fallback` impl.

mod ast;
mod attr;
mod ctxt;
mod expand;
mod fallback;
mod valid;

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

use crate::ctxt::Errors;

/// Derives `DomainEvent` for an event enum or struct. See `cqrs_runtime::Event`.
#[proc_macro_derive(Event, attributes(event, serde, schemars))]
pub fn derive_event(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    derive::event(&input).into()
}

/// Derives `Aggregate` for a state type. See `cqrs_runtime::Aggregate`.
#[proc_macro_derive(Aggregate, attributes(aggregate))]
pub fn derive_aggregate(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    derive::aggregate(&input).into()
}

/// Derives command routing for a command enum or struct. See `cqrs_runtime::Command`.
#[proc_macro_derive(Command, attributes(command, serde, schemars))]
pub fn derive_command(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    derive::command(&input).into()
}

/// Writes nothing: the derive generated payload structs get instead of `JsonSchema` when the
/// runtime's `schema` feature is off, so that their `#[schemars(...)]` attributes still compile.
#[doc(hidden)]
#[proc_macro_derive(NoJsonSchema, attributes(schemars))]
pub fn derive_no_json_schema(_: TokenStream) -> TokenStream {
    TokenStream::new()
}

/// Turns an impl block's methods into command handlers and event appliers.
/// See `cqrs_runtime::handlers`.
#[proc_macro_attribute]
pub fn handlers(args: TokenStream, input: TokenStream) -> TokenStream {
    let place = "the aggregate's inherent impl block, e.g. `#[handlers] impl Account { ... }`";
    let item = ast::impl_block(input.into(), "handlers", place);
    item.map_or_else(Into::into, |item| {
        derive::handlers(args.into(), &item).into()
    })
}

/// Turns an impl block's methods into the event handlers of a projection (a read model).
/// See `cqrs_runtime::projection`.
#[proc_macro_attribute]
pub fn projection(args: TokenStream, input: TokenStream) -> TokenStream {
    let place = "the read model's impl block, e.g. `#[projection(aggregates(Account))] impl Summaries { ... }`";
    let item = ast::impl_block(input.into(), "projection", place);
    item.map_or_else(Into::into, |item| {
        derive::projection(args.into(), &item).into()
    })
}

/// Turns the impl block of a process manager's state type into its event, deadline and
/// refusal handlers. See `cqrs_runtime::process_manager`.
#[proc_macro_attribute]
pub fn process_manager(args: TokenStream, input: TokenStream) -> TokenStream {
    let place = "the instance state's impl block, e.g. `#[process_manager(aggregates(Transfer, Account), sends(Account))] impl TransferState { ... }`";
    let item = ast::impl_block(input.into(), "process_manager", place);
    item.map_or_else(Into::into, |item| {
        derive::process_manager(args.into(), &item).into()
    })
}

/// Glue between the entry points and the pipeline: each function runs parse, validate and
/// expand, and falls back to a stub impl when there are errors.
mod derive {
    use proc_macro2::TokenStream;
    use quote::quote;
    use syn::DeriveInput;

    use super::Errors;
    use crate::ast::{
        AggregateInput, CommandInput, EventInput, HandlersInput, ProcessInput, ProjectionInput,
    };
    use crate::{attr, expand, fallback, valid};

    fn wrap(tokens: TokenStream) -> TokenStream {
        quote! {
            #[allow(non_upper_case_globals, unused_qualifications, clippy::all)]
            const _: () = { #tokens };
        }
    }

    /// One derive's pipeline: parse into a model, validate it, and expand it; with errors,
    /// the errors beside the stub impls `fallback` writes (from the model, when parsing got
    /// that far), so that one mistake does not cascade into errors elsewhere.
    fn derive<'a, M>(
        input: &'a DeriveInput,
        parse: fn(&'a DeriveInput, &mut Errors) -> Option<M>,
        check: fn(&M, &mut Errors),
        expand: fn(&M) -> TokenStream,
        fallback: fn(&'a DeriveInput, Option<M>) -> Option<TokenStream>,
        types: fn(&M) -> TokenStream,
    ) -> TokenStream {
        let mut errors = Errors::default();
        let model = parse(input, &mut errors);
        // The payload structs are written even beside errors: code that names them must not
        // raise a second error.
        let types = model.as_ref().map(types);
        // What the attributes say is only checked as a whole once they parse: a misspelt key,
        // read as the key it resembles or not at all, must not add an error of its own
        // (`verison = 2` is not also "version 2 without an upcast").
        if let Some(model) = model.as_ref().filter(|_| errors.is_empty()) {
            check(model, &mut errors);
        }
        let generated = match model {
            Some(model) if errors.is_empty() => Some(wrap(expand(&model))),
            model => fallback(input, model).map(wrap),
        };
        let errors = errors.into_compile_errors();
        quote!(#errors #types #generated)
    }

    pub fn event(input: &DeriveInput) -> TokenStream {
        derive(
            input,
            EventInput::from_syn,
            valid::check_event,
            expand::event::expand,
            |input, model| Some(fallback::event(input, model.as_ref())),
            |m| expand::payload::structs(&m.payloads),
        )
    }

    pub fn aggregate(input: &DeriveInput) -> TokenStream {
        derive(
            input,
            AggregateInput::from_syn,
            valid::check_aggregate,
            expand::aggregate::expand,
            |_, model| model.map(|m| fallback::aggregate(&m)),
            |_| TokenStream::new(),
        )
    }

    pub fn command(input: &DeriveInput) -> TokenStream {
        derive(
            input,
            CommandInput::from_syn,
            valid::check_command,
            expand::command::expand,
            |input, model| Some(fallback::command(input, model.as_ref())),
            |m| expand::payload::structs(&m.payloads),
        )
    }

    pub fn handlers(args: TokenStream, item: &syn::ItemImpl) -> TokenStream {
        let mut errors = Errors::default();
        let mut crate_path = attr::default_crate_path();
        let parser = syn::meta::parser(|meta| {
            if meta.path.is_ident("crate") {
                crate_path = attr::parse_crate_path(&meta)?;
                Ok(())
            } else {
                Err(meta.error(format!(
                    "unknown key `{}` in `#[handlers(...)]`; expected: `crate`",
                    attr::path_str(&meta.path)
                )))
            }
        });
        errors.ok(syn::parse::Parser::parse2(parser, args));
        let model = HandlersInput::from_syn(item, crate_path, &mut errors);
        valid::check_handlers(&model, &mut errors);
        // The impl block is kept as written, and the valid handlers still get their impls, so
        // that one bad method does not make every command look unhandled.
        let generated = wrap(expand::handlers::expand(&model));
        let cleaned = model.cleaned_item();
        let errors = errors.into_compile_errors();
        quote!(#cleaned #generated #errors)
    }

    pub fn projection(args: TokenStream, item: &syn::ItemImpl) -> TokenStream {
        let mut errors = Errors::default();
        let model = ProjectionInput::from_syn(args, item, &mut errors);
        valid::check_projection(&model, &mut errors);
        let cleaned = model.cleaned_item();
        // With errors, the impl block is still emitted (so its methods do not turn into
        // "unused" or "not found" errors), beside stub impls.
        let generated = if errors.is_empty() {
            wrap(expand::projection::expand(&model))
        } else {
            wrap(fallback::projection(&model))
        };
        let errors = errors.into_compile_errors();
        quote!(#cleaned #generated #errors)
    }

    pub fn process_manager(args: TokenStream, item: &syn::ItemImpl) -> TokenStream {
        let mut errors = Errors::default();
        let model = ProcessInput::from_syn(args, item, &mut errors);
        if errors.is_empty() {
            valid::check_process(&model, &mut errors);
        }
        let cleaned = model.cleaned_item();
        let generated = if errors.is_empty() {
            wrap(expand::process::expand(&model))
        } else {
            wrap(fallback::process(&model))
        };
        let errors = errors.into_compile_errors();
        quote!(#cleaned #generated #errors)
    }
}
