//! `#[derive(Aggregate)]`: the `Aggregate` impl that routes commands and events through the
//! command and event types' dispatch, the snapshot policy, ignored events, and the schema
//! registration.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::Type;
use syn::spanned::Spanned;

use crate::ast::AggregateInput;
use crate::expand::handlers::EVENT_CHECKS;
use crate::expand::probe;

/// The levels a command takes to its handler (`__private::route`).
const COMMAND_ROUTES: [&str; 3] = ["ToHandler", "ThroughDispatch", "Undispatched"];

pub fn expand(input: &AggregateInput<'_>) -> TokenStream {
    let krate = &input.crate_path;
    let p = quote!(#krate::__private);
    let ident = input.ident;
    let attrs = &input.attrs;
    let (Some(event), Some(command)) = (&attrs.event, &attrs.command) else {
        return TokenStream::new();
    };
    let generics = bounded(input, event, command, &p);
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let name = &input.name;
    let id = type_or(&attrs.id, quote!(::std::string::String));
    let error = type_or(&attrs.error, quote!(::core::convert::Infallible));
    let services = type_or(&attrs.services, quote!(()));

    // Spanned at `event = ...` / `command = ...`: a missing applier or handler is reported
    // there. Through `__private::route`: the types' routing, or a handler of the whole type.
    let apply = probe(
        &p,
        "route",
        &[
            "ToApplier",
            "ThroughEventDispatch",
            "UnroutedEvent",
            "NoEventType",
        ],
        quote!((Self, #event)),
        quote!(apply(self, envelope)),
        event.span(),
    );
    // Awaited inside a block of our own, spanned at `command = ...`, so that only the call
    // needs the dispatch impl (the return type does not) and a missing handler is reported once.
    let handle = probe(
        &p,
        "route",
        &COMMAND_ROUTES,
        quote!((Self, #command)),
        quote!(handle(self, command, cx).await),
        command.span(),
    );
    let refusal = existence_check(input, command, &p).map(|refusal| {
        quote! {
            if let ::core::option::Option::Some(error) = #refusal {
                return ::core::result::Result::Err(error);
            }
        }
    });
    let refuses = refuses_existing(input, &p);
    // At the aggregate's name: a missing `Default` is reported there, once.
    let initial = quote_spanned!(ident.span()=> #p::initial::<Self>());
    let snapshots = attrs.snapshot_every.as_ref().map(|(every, _)| {
        let salt = attrs
            .snapshot_version
            .as_ref()
            .map_or(0, |(v, _)| u64::from(*v));
        let fingerprint = input.shape_hash ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let every = u64::from(*every);
        let lit = &attrs.snapshot_every.as_ref().map(|(_, lit)| lit);
        let json = quote_spanned!(lit.span()=> #p::snapshots_json::<Self>);
        quote! {
            fn snapshots() -> ::core::option::Option<#p::Snapshots<Self>> {
                ::core::option::Option::Some(#json(#every, #fingerprint))
            }
        }
    });
    // Cached when the state is `Clone`; a generic aggregate, whose `Clone` depends on its
    // parameters, is not.
    let caching = probe(
        &p,
        "cached",
        &["Cloned", "Uncached"],
        quote!(Self),
        quote!(caching()),
        Span::call_site(),
    );
    let command_name = probe(
        &p,
        "named",
        &["Named", "Unnamed"],
        quote!(#command),
        quote!(name(command)),
        Span::call_site(),
    );
    // Spanned at the type in `ignore(...)`, where a conflict with an applier is reported.
    let ignored = attrs.ignore.iter().map(|ty| {
        let check = probe(
            &p,
            "check",
            &EVENT_CHECKS,
            quote!((#event, #ty)),
            quote!(event()),
            ty.span(),
        );
        quote_spanned! {ty.span()=>
            #[automatically_derived]
            impl #impl_generics #p::ApplyEvent<#ty> for #ident #ty_generics #where_clause {
                #[inline]
                fn apply_event(&mut self, _: &#ty, _: &#p::EventEnvelope<#event>) {
                    // That the ignored type is one of the events, reported at it.
                    #check;
                }
            }
        }
    });
    // A generic aggregate has no single schema to register; its instantiations are listed by
    // whoever names them.
    let registration = input.generics.params.is_empty().then(|| {
        let span = Span::call_site();
        let commands = probe(&p, "route", &["DescribedCommands", "Undescribed"], quote!(#command), quote!(commands()), span);
        let events = probe(&p, "route", &["DescribedEvents", "Undescribed"], quote!(#event), quote!(events()), span);
        // Only with the runtime's `schema` feature (see `__private::schema_items`).
        quote! {
            #p::schema_items! {
                #p::inventory::submit! {
                    #p::Registration {
                        describe: || #p::AggregateSchema {
                            aggregate_type: ::std::borrow::ToOwned::to_owned(#name),
                            rust_type: ::std::borrow::ToOwned::to_owned(::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident))),
                            commands: #commands,
                            events: #events,
                        },
                    }
                }
            }
        }
    });

    quote! {
        #[automatically_derived]
        impl #impl_generics #p::Aggregate for #ident #ty_generics #where_clause {
            const TYPE: &'static str = #name;
            type Id = #id;
            type Command = #command;
            type Event = #event;
            type Error = #error;
            type Services = #services;

            #[inline]
            fn initial() -> Self {
                #initial
            }

            #[inline]
            fn caching() -> ::core::option::Option<#p::Caching<Self>> {
                #caching
            }

            #[inline]
            fn command_name(command: &Self::Command) -> &'static str {
                #command_name
            }

            #[inline]
            fn handle(
                &self,
                command: Self::Command,
                cx: &#p::CommandContext<'_, Self>,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<::std::vec::Vec<Self::Event>, Self::Error>,
            > + ::core::marker::Send {
                async move {
                    #refusal
                    #handle
                }
            }

            #[inline]
            fn apply(&mut self, envelope: &#p::EventEnvelope<Self::Event>) {
                #apply
            }

            #snapshots
        }
        #(#ignored)*
        #refuses
        #registration
    }
}

/// A generic aggregate is an aggregate for the type arguments that meet what `Aggregate` asks
/// of it, its commands and its events: the impl says so in its `where` clause, so that a
/// missing bound is reported where an unsuitable type is used, once, not at every generated
/// item. A concrete aggregate is checked as written.
fn bounded(
    input: &AggregateInput<'_>,
    event: &Type,
    command: &Type,
    p: &TokenStream,
) -> syn::Generics {
    let mut generics = input.generics.clone();
    if generics.type_params().next().is_none() && generics.const_params().next().is_none() {
        return generics;
    }
    let id = type_or(&input.attrs.id, quote!(::std::string::String));
    let error = type_or(&input.attrs.error, quote!(::core::convert::Infallible));
    let services = type_or(&input.attrs.services, quote!(()));
    let predicates: [syn::WherePredicate; 6] = [
        syn::parse_quote!(Self: #p::AggregateState),
        syn::parse_quote!(#command: ::core::marker::Send + 'static),
        syn::parse_quote!(#event: #p::DomainEvent),
        syn::parse_quote!(#id: #p::AggregateId),
        syn::parse_quote!(#error: ::std::error::Error + ::core::marker::Send + ::core::marker::Sync + 'static),
        syn::parse_quote!(#services: ::core::marker::Send + ::core::marker::Sync + 'static),
    ];
    generics.make_where_clause().predicates.extend(predicates);
    generics
}

/// The refusals `missing = ...` and `exists = ...`, checked before the handler runs, from the
/// handler's `#[create]` or `#[upsert]` mark: an `Option` of the error.
fn existence_check(
    input: &AggregateInput<'_>,
    command: &Type,
    p: &TokenStream,
) -> Option<TokenStream> {
    let (missing, exists) = (&input.attrs.missing, &input.attrs.exists);
    if missing.is_none() && exists.is_none() {
        return None;
    }
    let refuse = |pattern: TokenStream, e: &syn::Expr| {
        quote_spanned! {e.span()=>
            #pattern => ::core::option::Option::Some(::core::convert::Into::into(#e)),
        }
    };
    let missing = missing
        .as_ref()
        .map(|e| refuse(quote!((#p::Existence::Existing, false)), e));
    let exists = exists
        .as_ref()
        .map(|e| refuse(quote!((#p::Existence::Create, true)), e));
    // At `command = ...`, as the dispatch: a missing handler is one error there.
    let existence = probe(
        p,
        "route",
        &COMMAND_ROUTES,
        quote!((Self, #command)),
        quote!(existence(&command)),
        command.span(),
    );
    Some(quote! {
        match (#existence, cx.exists()) {
            #missing
            #exists
            _ => ::core::option::Option::None,
        }
    })
}

/// `RefusesExisting`, which a `#[create]` handler requires, when `exists = ...` is given.
pub fn refuses_existing(input: &AggregateInput<'_>, p: &TokenStream) -> TokenStream {
    if input.attrs.exists.is_none() {
        return TokenStream::new();
    }
    let ident = input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    quote! {
        #[automatically_derived]
        impl #impl_generics #p::RefusesExisting for #ident #ty_generics #where_clause {}
    }
}

fn type_or(ty: &Option<Type>, default: TokenStream) -> TokenStream {
    match ty {
        Some(ty) => quote!(#ty),
        None => default,
    }
}
