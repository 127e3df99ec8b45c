//! `#[handlers]`: one `HandleCommand<C>` impl per `&self` method and one `ApplyEvent<E>` impl
//! per `&mut self` method of the annotated impl block, which is kept as written.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;

use crate::ast::{Applier, Handler, HandlerExtra, HandlersInput, Mark};

pub fn expand(input: &HandlersInput<'_>) -> TokenStream {
    let krate = &input.crate_path;
    let p = quote!(#krate::__private);
    // A second handler for one type is reported by `valid`; it gets no impl of its own, which
    // would only add a conflicting-impl error.
    let mut seen = std::collections::BTreeSet::new();
    let handlers = input
        .handlers
        .iter()
        .filter(|h| seen.insert(("command", h.command.to_token_stream().to_string())))
        .map(|h| handler(input, h, &p))
        .collect::<Vec<_>>();
    let appliers = input
        .appliers
        .iter()
        .filter(|a| seen.insert(("event", a.event.to_token_stream().to_string())))
        .map(|a| applier(input, a, &p))
        .collect::<Vec<_>>();
    quote!(#(#handlers)* #(#appliers)*)
}

fn handler(input: &HandlersInput<'_>, h: &Handler<'_>, p: &TokenStream) -> TokenStream {
    let item = input.item;
    let (impl_generics, _, where_clause) = item.generics.split_for_impl();
    let self_ty = &item.self_ty;
    let (method, command) = (h.method, h.command);
    let extra = match h.extra {
        None => None,
        Some(HandlerExtra::Context) => Some(quote!(cx)),
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
        let convert = if h.fallible {
            quote_spanned!(output=> #p::outcome::<Self, _, _>)
        } else {
            quote_spanned!(output=> #p::events::<Self, _>)
        };
        if h.is_async {
            let converted = quote_spanned!(output=> #convert(#call.await));
            quote!(async move { #converted })
        } else {
            let converted = quote_spanned!(output=> #convert(#call));
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
                #body
            }
        }
    }
}

fn applier(input: &HandlersInput<'_>, a: &Applier<'_>, p: &TokenStream) -> TokenStream {
    let item = input.item;
    let (impl_generics, _, where_clause) = item.generics.split_for_impl();
    let self_ty = &item.self_ty;
    let (method, event) = (a.method, a.event);
    let envelope = a.with_envelope.then(|| quote!(envelope));
    let call = if a.stub {
        quote!(::core::unreachable!())
    } else {
        quote_spanned!(method.span()=> Self::#method(self, event, #envelope))
    };
    quote! {
        #[automatically_derived]
        impl #impl_generics #p::ApplyEvent<#event> for #self_ty #where_clause {
            #[inline]
            fn apply_event(
                &mut self,
                event: &#event,
                envelope: &#p::EventEnvelope<<Self as #p::Aggregate>::Event>,
            ) {
                let _ = (event, envelope);
                #call
            }
        }
    }
}
