//! `#[projection]`: `Projection` (name, version, aggregates) and `ProjectionHandlers<C>`,
//! which decodes each stored event its handlers take and calls the handler. The impl block is
//! kept as written, without its `#[reset]` markers.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::ast::{EventHandler, Extra, ProjectionInput};
use crate::expand::probe;

pub fn expand(input: &ProjectionInput<'_>) -> TokenStream {
    let krate = &input.crate_path;
    let p = quote!(#krate::__private);
    let self_ty = &input.item.self_ty;
    let (name, version) = (&input.name, input.version);
    let type_names = input
        .aggregates
        .iter()
        .map(|a| quote_spanned!(a.span()=> <#a as #p::Aggregate>::TYPE));
    // The aggregates as a list `(A1, (A2, ()))`, searched for each handler's payload type.
    let list = input
        .aggregates
        .iter()
        .rev()
        .fold(quote!(()), |rest, a| quote!((#a, #rest)));
    let (impl_params, connection) = match input.connections.first() {
        Some(ty) => (TokenStream::new(), quote!(#ty)),
        None => (quote!(<__C: ::core::marker::Send>), quote!(__C)),
    };
    let arms = input.handlers.iter().map(|h| arm(h, &p));
    let can_reset = input.reset.is_some();
    let reset = match &input.reset {
        Some(reset) => {
            let method = reset.method;
            let conn = reset.with_connection.then(|| quote!(&mut *__conn));
            let call = quote_spanned!(method.span()=> Self::#method(self, #conn));
            let awaited = if reset.is_async {
                quote!(#call.await)
            } else {
                call
            };
            let output = reset.output.map_or_else(|| method.span(), |o| o.span());
            quote_spanned!(output=> #p::handled(#awaited))
        }
        None => quote!(::core::result::Result::Ok(())),
    };
    quote! {
        type __Aggregates = #list;

        #[automatically_derived]
        impl #p::Projection for #self_ty {
            const NAME: &'static str = #name;
            const VERSION: u32 = #version;
            const AGGREGATES: &'static [&'static str] = &[#(#type_names),*];
        }

        #[automatically_derived]
        impl #impl_params #p::ProjectionHandlers<#connection> for #self_ty {
            const CAN_RESET: bool = #can_reset;

            fn handle<'__a>(
                &'__a mut self,
                __event: &'__a #p::StoredEvent,
                __conn: &'__a mut #connection,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<(), #p::BoxError>,
            > + ::core::marker::Send + '__a {
                async move {
                    let _ = &__conn;
                    #(#arms)*
                    ::core::result::Result::Ok(())
                }
            }

            fn reset<'__a>(
                &'__a mut self,
                __conn: &'__a mut #connection,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<(), #p::BoxError>,
            > + ::core::marker::Send + '__a {
                async move {
                    let _ = &__conn;
                    #reset
                }
            }
        }
    }
}

/// `if the event is a Payload { decode it; run the handler }`. Every handler whose type
/// matches runs, in the order written: a handler of every event runs beside the one of its type.
fn arm(h: &EventHandler<'_>, p: &TokenStream) -> TokenStream {
    let method = h.method;
    let extras = h.extras.iter().map(|e| match e {
        Extra::Envelope => quote!(__event),
        Extra::Connection => quote!(&mut *__conn),
    });
    let output = h.output.map_or_else(|| method.span(), |o| o.span());
    let Some(payload) = h.payload else {
        let call = quote_spanned!(method.span()=> Self::#method(self, __event, #(#extras),*));
        let awaited = if h.is_async {
            quote!(#call.await)
        } else {
            call
        };
        let outcome = quote_spanned!(output=> #p::handled(#awaited));
        return quote! {
            if <Self as #p::Projection>::AGGREGATES.contains(&__event.aggregate_type.as_str()) {
                #outcome?;
            }
        };
    };
    let call = quote_spanned!(method.span()=> Self::#method(self, &__payload, #(#extras),*));
    let awaited = if h.is_async {
        quote!(#call.await)
    } else {
        call
    };
    let outcome = quote_spanned!(output=> #p::handled(#awaited));
    // Spanned at the payload type: a type no listed aggregate has is reported there.
    // Through `__private::follow`, silent when `aggregates(...)` names a type that is no
    // aggregate (reported there).
    let follow = |call| {
        probe(
            p,
            "follow",
            &["Followed", "NotFollowed"],
            quote!((#payload, __Aggregates)),
            call,
            payload.span(),
        )
    };
    let routes = follow(quote!(routes(__event)));
    let decode = follow(quote!(decode(__event)));
    quote! {
        if #routes {
            let __payload: #payload = #decode?;
            #outcome?;
        }
    }
}
