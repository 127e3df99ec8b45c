//! `#[handlers]`: one `HandleCommand<C>` impl per `&self` method and one `ApplyEvent<E>` impl
//! per `&mut self` method of the annotated impl block, which is kept as written.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;

use crate::ast::{Applier, Handler, HandlerExtra, HandlersInput, Mark, type_args};
use crate::expand::probe;

/// The levels of the check that a handler's type is one of its aggregate's commands
/// (`__private::check`).
const COMMAND_CHECKS: [&str; 4] = [
    "IsOneCommand",
    "IsWholeCommand",
    "IsNoCommand",
    "UnderivedCommand",
];
/// The same for an applier's type and the events.
pub const EVENT_CHECKS: [&str; 4] = ["IsOneEvent", "IsWholeEvent", "IsNoEvent", "UnderivedEvent"];

pub fn expand(input: &HandlersInput<'_>) -> TokenStream {
    let krate = &input.crate_path;
    let p = quote!(#krate::__private);
    let generics = &generics(input);
    // A second handler for one type is reported by `valid`; it gets no impl of its own, which
    // would only add a conflicting-impl error.
    let mut seen = std::collections::BTreeSet::new();
    let handlers = input
        .handlers
        .iter()
        .filter(|h| seen.insert(("command", h.command.to_token_stream().to_string())))
        .map(|h| handler(input, generics, h, &p))
        .collect::<Vec<_>>();
    let appliers = input
        .appliers
        .iter()
        .filter(|a| seen.insert(("event", a.event.to_token_stream().to_string())))
        .map(|a| applier(input, generics, a, &p))
        .collect::<Vec<_>>();
    quote!(#(#handlers)* #(#appliers)*)
}

/// The impl block's generics; a generic block's impls also hold only where its type can be
/// an aggregate at all, as the derived `Aggregate` impl of a generic type does (see
/// `expand::aggregate::bounded`), so that a type parameter without bounds is not reported at
/// every handler. (`Self: Aggregate` itself would hide the aggregate's associated types.)
fn generics(input: &HandlersInput<'_>) -> syn::Generics {
    let mut generics = input.item.generics.clone();
    if generics.type_params().next().is_some() || generics.const_params().next().is_some() {
        let krate = &input.crate_path;
        generics
            .make_where_clause()
            .predicates
            .push(syn::parse_quote!(Self: #krate::__private::AggregateState));
    }
    generics
}

fn handler(
    input: &HandlersInput<'_>,
    generics: &syn::Generics,
    h: &Handler<'_>,
    p: &TokenStream,
) -> TokenStream {
    let item = input.item;
    let (impl_generics, _, where_clause) = generics.split_for_impl();
    let self_ty = &item.self_ty;
    let (method, command) = (h.method, h.command);
    let extra = match h.extra {
        None => None,
        Some(HandlerExtra::Context(None)) => Some(quote!(cx)),
        // Through `__private::context`: the aggregate's own context, or one error at `A` if it
        // names another aggregate.
        Some(HandlerExtra::Context(Some(aggregate))) => Some(probe(
            p,
            "context",
            &["OwnContext", "OtherContext", "NoContext"],
            quote!((Self, #aggregate)),
            quote!(context(cx)),
            aggregate.span(),
        )),
        // Spanned at the parameter, where a services type mismatch is reported.
        Some(HandlerExtra::Services(ty)) => Some(quote_spanned!(ty.span()=> cx.services())),
    };
    let call = quote_spanned!(method.span()=> Self::#method(self, command, #extra));
    let output = h.output.map_or_else(|| method.span(), |o| o.span());
    // The conversion is spanned at the return type, where a wrong one is reported.
    let body = if h.stub {
        // The signature was reported as wrong; this impl only keeps the command from also
        // being reported as unhandled. It never runs: the crate does not compile.
        quote!(async { ::core::unreachable!() })
    } else {
        let returned = if h.is_async {
            quote!(#call.await)
        } else {
            call
        };
        let converted = converted(h, output, returned, p);
        if h.is_async {
            quote!(async move { #converted })
        } else {
            quote!(::core::future::ready(#converted))
        }
    };
    let existence = h.mark.map(|(mark, attr)| {
        let span = attr.path().span();
        match mark {
            Mark::Create => quote_spanned! {span=>
                const EXISTENCE: #p::Existence = {
                    #p::refuses_existing::<Self>();
                    #p::Existence::Create
                };
            },
            Mark::Upsert => quote!(const EXISTENCE: #p::Existence = #p::Existence::Any;),
        }
    });
    // That the aggregate's command type has this command, reported at the parameter.
    let check = probe(
        p,
        "check",
        &COMMAND_CHECKS,
        quote!((<Self as #p::Aggregate>::Command, #command)),
        quote!(command()),
        command.span(),
    );
    quote! {
        #[automatically_derived]
        impl #impl_generics #p::HandleCommand<#command> for #self_ty #where_clause {
            #existence

            #[inline]
            fn handle_command(
                &self,
                command: #command,
                cx: &#p::CommandContext<'_, Self>,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<
                    ::std::vec::Vec<<Self as #p::Aggregate>::Event>,
                    <Self as #p::Aggregate>::Error,
                >,
            > + ::core::marker::Send {
                #check;
                #body
            }
        }
    }
}

fn applier(
    input: &HandlersInput<'_>,
    generics: &syn::Generics,
    a: &Applier<'_>,
    p: &TokenStream,
) -> TokenStream {
    let item = input.item;
    let (impl_generics, _, where_clause) = generics.split_for_impl();
    let self_ty = &item.self_ty;
    let (method, event) = (a.method, a.event);
    let envelope = a.with_envelope.then(|| quote!(envelope));
    let call = if a.stub {
        quote!(::core::unreachable!())
    } else {
        quote_spanned!(method.span()=> Self::#method(self, event, #envelope))
    };
    // That the aggregate's event type has this event, reported at the parameter.
    let check = probe(
        p,
        "check",
        &EVENT_CHECKS,
        quote!((<Self as #p::Aggregate>::Event, #event)),
        quote!(event()),
        event.span(),
    );
    quote! {
        #[automatically_derived]
        impl #impl_generics #p::ApplyEvent<#event> for #self_ty #where_clause {
            #[inline]
            fn apply_event(
                &mut self,
                event: &#event,
                envelope: &#p::EventEnvelope<<Self as #p::Aggregate>::Event>,
            ) {
                #check;
                let _ = (event, envelope);
                #call
            }
        }
    }
}

/// What a handler returned (`returned`), as the `Result` of the aggregate's events and error.
/// Each conversion is spanned at its type inside `Result<T, E>`, where a wrong one is reported:
/// the events at `T`, the refusal at `E`.
fn converted(
    h: &Handler<'_>,
    output: proc_macro2::Span,
    returned: TokenStream,
    p: &TokenStream,
) -> TokenStream {
    if h.fallible {
        let (ok, err) = result_spans(h.output, output);
        // The values too: rustc puts the caret on the argument whose type is wrong.
        let events = as_events(ok, quote_spanned!(ok=> __events), p);
        let refusal_value = quote_spanned!(err=> __refusal);
        // Through `__private::refusal` when the error type is written out (the probe
        // needs it known); a `Result<T>` alias's goes through `Into`.
        let refusal = match error_type(h.output) {
            Some(error) => probe(
                p,
                "refusal",
                &[
                    "SameError",
                    "NoErrorDeclared",
                    "UnknownRefusal",
                    "IntoRefusal",
                ],
                quote!((Self, <Self as #p::Aggregate>::Error, #error)),
                quote!(refusal(#refusal_value)),
                err,
            ),
            None => quote_spanned!(err=> #p::refusal::<Self, _>(#refusal_value)),
        };
        quote! {
            match #returned {
                ::core::result::Result::Ok(__events) => ::core::result::Result::Ok(#events),
                // `Result<_, Infallible>` makes this arm unreachable.
                #[allow(unreachable_code)]
                ::core::result::Result::Err(__refusal) => ::core::result::Result::Err(#refusal),
            }
        }
    } else {
        let events = as_events(output, quote_spanned!(output=> __events), p);
        quote! {{
            let __events = #returned;
            ::core::result::Result::Ok(#events)
        }}
    }
}

/// The `E` of a handler's `Result<T, E>`, when written out.
fn error_type(output: Option<&syn::Type>) -> Option<&syn::Type> {
    match output.map(type_args).as_deref() {
        Some([_, error]) => Some(error),
        _ => None,
    }
}

/// The spans of `T` and `E` in a handler's `Result<T, E>` (or `Result<T>`, an alias that fixes
/// the error), falling back to the whole return type.
fn result_spans(
    output: Option<&syn::Type>,
    whole: proc_macro2::Span,
) -> (proc_macro2::Span, proc_macro2::Span) {
    match output.map(type_args).as_deref() {
        Some([ok, err]) => (ok.span(), err.span()),
        Some([ok]) => (ok.span(), whole),
        _ => (whole, whole),
    }
}

/// What a handler returned (`returned`), as the aggregate's events, spanned at its type (see
/// `__private::route::Returned`).
fn as_events(span: proc_macro2::Span, returned: TokenStream, p: &TokenStream) -> TokenStream {
    probe(
        p,
        "route",
        &["UnknownEvents", "AsEvents", "NoEventsOf"],
        quote!((<Self as #p::Aggregate>::Event, _)),
        quote!(events(#returned)),
        span,
    )
}
