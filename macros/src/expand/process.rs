//! `#[process_manager]`: `ProcessManager` for the manager type (`manager = ...`, or the state
//! type itself) with the state type as its `State`, and `Targets` for the state type (the
//! aggregates of `sends(...)`, through which `Effects<Self>::send` finds a command's target).
//! Each event is routed, decoded and handled through the same probe as projections, so a
//! payload no followed aggregate has is one error at its type.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::Type;
use syn::spanned::Spanned;

use crate::ast::{Param, ProcessHandler as EventHandler, ProcessInput, ProcessMethod as Method};
use crate::attr::RouteKey;
use crate::expand::{follow, probe};

pub fn expand(input: &ProcessInput<'_>) -> TokenStream {
    let krate = &input.crate_path;
    let p = quote!(#krate::__private);
    let state = &input.item.self_ty;
    let manager = input.manager_type();
    let name = &input.name;
    let follows = input
        .aggregates
        .iter()
        .map(|a| quote_spanned!(a.span()=> <#a as #p::Aggregate>::TYPE));
    let payloads = payloads(input);
    let readers = payloads
        .iter()
        .enumerate()
        .map(|(k, payload)| reader(k, payload, &p));
    let decoded = (0..payloads.len()).map(|k| {
        let (value, read) = (decoded_name(k), reader_name(k));
        quote!(let #value = #read(__event, true)?.flatten();)
    });
    let routes = route_arms(input, &payloads, &p);
    let evolve = input
        .handlers
        .iter()
        .filter(|h| h.method.mutates)
        .map(|h| event_arm(input, &payloads, h, &p));
    let decide = input
        .handlers
        .iter()
        .filter(|h| !h.method.mutates)
        .map(|h| event_arm(input, &payloads, h, &p));
    let deadlines = input.deadlines.iter().map(|(name, method)| {
        let call = call(input, method, quote!(), &p);
        quote!(#name => #call,)
    });
    let common = common(input, false);
    let registration = registration(input, payloads.len(), &p);
    let refused = input.refused.as_ref().map(|method| {
        let call = call(input, method, quote!(), &p);
        quote! {
            fn on_refused(
                &self,
                __state: &mut #state,
                __refused: &#p::Refused,
                __effects: &mut #p::Effects,
            ) -> ::core::result::Result<(), #p::BoxError> {
                __effects.typed(|__fx: &mut #p::Effects<#state>| #call)
            }
        }
    });
    // Each type of `sends(...)` checked where it is listed (the search for a command's target
    // through the list can only say that none takes it).
    let sends_to = input
        .sends
        .iter()
        .map(|a| quote_spanned!(a.span()=> #p::sends_to::<#a>()));
    // And each type of `contracts(...)`, that it is an event enum.
    let contracts = input
        .contracts
        .iter()
        .map(|c| quote_spanned!(c.span()=> #p::contract::<#c>()));
    quote! {
        #common
        #(#readers)*
        #registration
        const _: fn() = || {
            #(#sends_to;)*
            #(#contracts;)*
        };

        #[automatically_derived]
        impl #p::ProcessManager for #manager {
            const NAME: &'static str = #name;
            const FOLLOWS: &'static [&'static str] = &[#(#follows),*];
            type State = #state;

            fn route(
                &self,
                __event: &#p::StoredEvent,
            ) -> ::core::result::Result<#p::Route, #p::BoxError> {
                #(#routes)*
                ::core::result::Result::Ok(#p::Route::Ignore)
            }

            fn handle(
                &self,
                __state: &mut #state,
                __event: &#p::StoredEvent,
                __effects: &mut #p::Effects,
            ) -> ::core::result::Result<(), #p::BoxError> {
                #(#decoded)*
                __effects.typed(|__fx: &mut #p::Effects<#state>| {
                    let _ = &__fx;
                    #(#evolve)*
                    #(#decide)*
                    ::core::result::Result::Ok(())
                })
            }

            fn on_deadline(
                &self,
                __state: &mut #state,
                __name: &str,
                __effects: &mut #p::Effects,
            ) -> ::core::result::Result<(), #p::BoxError> {
                __effects.typed(|__fx: &mut #p::Effects<#state>| match __name {
                    #(#deadlines)*
                    __other => ::core::result::Result::Err(#p::unknown_deadline(#name, __other)),
                })
            }

            #refused
        }
    }
}

/// The schema registration (only with the runtime's `schema` feature): the event types that
/// reach a handler, asked of the readers with an envelope of each type; the aggregates of
/// `sends(...)` with their commands; the deadlines.
fn registration(input: &ProcessInput<'_>, payloads: usize, p: &TokenStream) -> TokenStream {
    let name = &input.name;
    let state = &input.item.self_ty;
    let readers = (0..payloads).map(reader_name);
    let listed = |a: &Type, call| {
        probe(
            p,
            "process_schema",
            &["Listed", "Unlisted"],
            quote!(#a),
            call,
            a.span(),
        )
    };
    let follows = input.aggregates.iter().map(|a| {
        let readers = readers.clone();
        listed(
            a,
            quote!(followed(|__event| {
                false #(|| #readers(__event, false).is_ok_and(|__found| __found.is_some()))*
            })),
        )
    });
    let sends = input.sends.iter().map(|a| {
        probe(
            p,
            "process_schema",
            &["Described", "Listed", "Unlisted"],
            quote!(#a),
            quote!(sent()),
            a.span(),
        )
    });
    let receives = input.contracts.iter().map(|c| {
        let readers = readers.clone();
        let contract = quote::ToTokens::to_token_stream(c)
            .to_string()
            .replace(' ', "");
        probe(
            p,
            "process_schema",
            &["Contracted", "Uncontracted"],
            quote!(#c),
            quote!(received(#contract, |__event| {
                false #(|| #readers(__event, false).is_ok_and(|__found| __found.is_some()))*
            })),
            c.span(),
        )
    });
    let deadlines = input.deadlines.iter().map(|(name, _)| name);
    quote! {
        #p::schema_items! {
            #p::inventory::submit! {
                #p::ProcessRegistration {
                    describe: || #p::ProcessSchema {
                        name: ::std::borrow::ToOwned::to_owned(#name),
                        rust_type: ::std::borrow::ToOwned::to_owned(::core::concat!(::core::module_path!(), "::", ::core::stringify!(#state))),
                        follows: ::std::vec![#(#follows),*],
                        receives: ::std::vec![#(#receives),*],
                        sends: ::std::vec![#(#sends),*],
                        deadlines: ::std::vec![#(::std::borrow::ToOwned::to_owned(#deadlines)),*],
                    },
                }
            }
        }
    }
}

/// The aggregates as a list `(A1, (A2, ()))`.
pub fn list(types: &[Type]) -> TokenStream {
    types
        .iter()
        .rev()
        .fold(quote!(()), |rest, a| quote!((#a, #rest)))
}

/// The items both the expansion and the fallback write: the followed aggregates as a list and
/// `Targets` for the state type.
pub fn common(input: &ProcessInput<'_>, fallback: bool) -> TokenStream {
    let krate = &input.crate_path;
    let state = &input.item.self_ty;
    let p = quote!(#krate::__private);
    let contracts = input
        .contracts
        .iter()
        .map(|c| -> Type { syn::parse_quote_spanned!(c.span()=> #p::Contract<#c>) });
    let followed: Vec<Type> = input.aggregates.iter().cloned().chain(contracts).collect();
    let aggregates = list(&followed);
    let declared = list(&input.sends);
    let sends = match fallback {
        false => declared.clone(),
        true => quote!(#krate::__private::AnyTarget),
    };
    quote! {
        type __Aggregates = #aggregates;
        // Named even when not searched (beside errors), so that their imports stay used.
        #[allow(dead_code)]
        type __Sends = #declared;

        #[automatically_derived]
        impl #krate::process::Targets for #state {
            type List = #sends;
        }
    }
}

/// The distinct payload types of the event handlers, in the order first written.
fn payloads<'a>(input: &ProcessInput<'a>) -> Vec<&'a Type> {
    let mut payloads: Vec<&Type> = Vec::new();
    for handler in &input.handlers {
        if !payloads.iter().any(|p| same(p, handler.payload)) {
            payloads.push(handler.payload);
        }
    }
    payloads
}

fn same(a: &Type, b: &Type) -> bool {
    quote::ToTokens::to_token_stream(a).to_string()
        == quote::ToTokens::to_token_stream(b).to_string()
}

fn index(payloads: &[&Type], payload: &Type) -> usize {
    payloads
        .iter()
        .position(|p| same(p, payload))
        .unwrap_or_default()
}

fn reader_name(k: usize) -> syn::Ident {
    quote::format_ident!("__read_{k}")
}

fn decoded_name(k: usize) -> syn::Ident {
    quote::format_ident!("__payload_{k}")
}

/// `fn __read_k(event, decode)`: `None` when the event is no `payload`, else the payload if
/// `decode`. Both uses of `follow`'s probe (spanned at the payload, where a type no followed
/// aggregate has is reported) are in this one function, so such a type is one error.
fn reader(k: usize, payload: &Type, p: &TokenStream) -> TokenStream {
    let name = reader_name(k);
    let routes = follow(p, payload, quote!(routes(__event)));
    let decode = follow(p, payload, quote!(decode(__event)));
    quote! {
        #[allow(clippy::option_option)]
        fn #name(
            __event: &#p::StoredEvent,
            __decode: bool,
        ) -> ::core::result::Result<
            ::core::option::Option<::core::option::Option<#payload>>,
            #p::BoxError,
        > {
            if !#routes {
                return ::core::result::Result::Ok(::core::option::Option::None);
            }
            if !__decode {
                return ::core::result::Result::Ok(::core::option::Option::Some(::core::option::Option::None));
            }
            let __payload: #payload = #decode?;
            ::core::result::Result::Ok(::core::option::Option::Some(::core::option::Option::Some(__payload)))
        }
    }
}

/// One arm per payload type: its handlers' marker, or `#[existing]` by aggregate id when none
/// of them has one.
fn route_arms(input: &ProcessInput<'_>, payloads: &[&Type], p: &TokenStream) -> Vec<TokenStream> {
    payloads
        .iter()
        .enumerate()
        .map(|(k, payload)| {
            let read = reader_name(k);
            let route = input
                .handlers
                .iter()
                .filter(|h| same(h.payload, payload))
                .find_map(|h| h.route.as_ref());
            let variant = match route.is_some_and(|r| r.start) {
                true => quote!(Start),
                false => quote!(Existing),
            };
            let (decode, id) = match route.map(|r| &r.key) {
                None | Some(RouteKey::AggregateId) => (false, quote!(__event.aggregate_id.clone())),
                Some(RouteKey::Field(field)) => {
                    let display = quote_spanned!(field.span()=> ::std::string::ToString::to_string(&__payload.#field));
                    (true, display)
                }
                Some(RouteKey::Caused) => {
                    let (name, krate) = (&input.name, &input.crate_path);
                    let id = quote! {
                        match #krate::process::caused_by(#name, __event) {
                            ::core::option::Option::Some(__id) => __id,
                            ::core::option::Option::None => {
                                return ::core::result::Result::Ok(#p::Route::Ignore);
                            }
                        }
                    };
                    (false, id)
                }
            };
            let found = match decode {
                true => quote!(let ::core::option::Option::Some(::core::option::Option::Some(__payload)) = #read(__event, true)?),
                false => quote!(#read(__event, false)?.is_some()),
            };
            quote! {
                if #found {
                    return ::core::result::Result::Ok(#p::Route::#variant(#id));
                }
            }
        })
        .collect()
}

/// `if the event is the handler's payload type { run the handler on it }`.
fn event_arm(
    input: &ProcessInput<'_>,
    payloads: &[&Type],
    h: &EventHandler<'_>,
    p: &TokenStream,
) -> TokenStream {
    let decoded = decoded_name(index(payloads, h.payload));
    let call = call(input, &h.method, quote!(__payload,), p);
    quote! {
        if let ::core::option::Option::Some(__payload) = &#decoded {
            #call?;
        }
    }
}

/// The call of a handler, its result converted: `Ok(())`, or the error boxed.
fn call(
    input: &ProcessInput<'_>,
    method: &Method<'_>,
    first: TokenStream,
    p: &TokenStream,
) -> TokenStream {
    let state = &input.item.self_ty;
    let ident = method.ident;
    let receiver = if method.mutates {
        quote!(__state)
    } else {
        quote!(&*__state)
    };
    let args = method.params.iter().map(|param| match param {
        Param::Envelope => quote!(__event),
        Param::Effects => quote!(__fx),
        Param::Refused => quote!(__refused),
        Param::Manager => quote!(self),
    });
    let call = quote_spanned!(ident.span()=> <#state>::#ident(#receiver, #first #(#args),*));
    let output = method.output.map_or_else(|| ident.span(), |o| o.span());
    quote_spanned!(output=> #p::handled(#call))
}
