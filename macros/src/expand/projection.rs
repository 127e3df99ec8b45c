//! `#[projection]`: `Projection` (name, version, aggregates) and `ProjectionHandlers<C>`,
//! which decodes each stored event its handlers take and calls the handler. The impl block is
//! kept as written, without its `#[reset]` markers.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::ast::{EventHandler, Extra, ProjectionInput};
use crate::expand::follow;

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
    // Without batch handlers, `handle` runs every handler in the order written. With them,
    // `handle_batch` runs the per-event ones for each event, then each batch handler once, and
    // `handle` is `handle_batch` over one event (so each handler's checks are written once).
    let per_event: Vec<TokenStream> = input
        .handlers
        .iter()
        .filter(|h| !h.batch)
        .map(|h| arm(h, &p))
        .collect();
    let batch_arms: Vec<TokenStream> = input
        .handlers
        .iter()
        .filter(|h| h.batch)
        .map(|h| batch_arm(h, &p))
        .collect();
    let batched = !batch_arms.is_empty();
    let handle_body = if batched {
        quote! {
            <Self as #p::ProjectionHandlers<#connection>>::handle_batch(
                self,
                ::core::slice::from_ref(__event),
                __conn,
            )
            .await
        }
    } else {
        quote! {
            let _ = &__conn;
            #(#per_event)*
            ::core::result::Result::Ok(())
        }
    };
    let handle_batch = batched.then(|| {
        let per_event = (!per_event.is_empty()).then(|| {
            quote! {
                for __event in __events {
                    #(#per_event)*
                }
            }
        });
        quote! {
            const BATCHED: bool = true;

            fn handle_batch<'__a>(
                &'__a mut self,
                __events: &'__a [#p::StoredEvent],
                __conn: &'__a mut #connection,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<(), #p::BoxError>,
            > + ::core::marker::Send + '__a {
                async move {
                    let _ = &__conn;
                    #per_event
                    #(#batch_arms)*
                    ::core::result::Result::Ok(())
                }
            }
        }
    });
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
                    #handle_body
                }
            }

            #handle_batch

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
    let follow = |call| follow(p, payload, call);
    let routes = follow(quote!(routes(__event)));
    let decode = follow(quote!(decode(__event)));
    quote! {
        if #routes {
            let __payload: #payload = #decode?;
            #outcome?;
        }
    }
}

/// A batch handler's call over `__events` (the batch): the events of its payload type decoded
/// into `(payload, &envelope)` pairs, or every followed event.
fn batch_arm(h: &EventHandler<'_>, p: &TokenStream) -> TokenStream {
    let method = h.method;
    let conn = h
        .extras
        .contains(&Extra::Connection)
        .then(|| quote!(&mut *__conn));
    let output = h.output.map_or_else(|| method.span(), |o| o.span());
    let call = |batch: TokenStream| {
        let call = quote_spanned!(method.span()=> Self::#method(self, #batch, #conn));
        let awaited = if h.is_async {
            quote!(#call.await)
        } else {
            call
        };
        quote_spanned!(output=> #p::handled(#awaited))
    };
    let followed =
        quote!(<Self as #p::Projection>::AGGREGATES.contains(&__event.aggregate_type.as_str()));
    let Some(payload) = h.payload else {
        let all = call(quote!(__events));
        let some = call(quote!(&__followed));
        // The runner reads only followed events; other callers may pass others.
        return quote! {
            if __events.iter().all(|__event| #followed) {
                if !__events.is_empty() {
                    #all?;
                }
            } else {
                let __followed: ::std::vec::Vec<#p::StoredEvent> = __events
                    .iter()
                    .filter(|__event| #followed)
                    .cloned()
                    .collect();
                if !__followed.is_empty() {
                    #some?;
                }
            }
        };
    };
    let follow = |call| follow(p, payload, call);
    let routes = follow(quote!(routes(__event)));
    let decode = follow(quote!(decode(__event)));
    let outcome = call(quote!(&__batch));
    quote! {
        let mut __batch: ::std::vec::Vec<(#payload, &#p::StoredEvent)> = ::std::vec::Vec::new();
        for __event in __events {
            if #routes {
                __batch.push((#decode?, __event));
            }
        }
        if !__batch.is_empty() {
            #outcome?;
        }
    }
}
