//! One file per macro: each turns a validated model of its input into tokens.

pub mod aggregate;
pub mod command;
pub mod event;
pub mod handlers;
pub mod payload;
pub mod process;
pub mod projection;

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};

/// A call through one of the runtime's probes (`__private::Probe`, which picks at compile time
/// what to do with a type): `levels` are the traits of `module` that implement `call`, most
/// specific first, and the call goes on as many references as there are levels, spanned at
/// `span`, where an error of the call is reported.
pub fn probe(
    p: &TokenStream,
    module: &str,
    levels: &[&str],
    ty: TokenStream,
    call: TokenStream,
    span: Span,
) -> TokenStream {
    let module = format_ident!("{module}");
    let traits = levels.iter().map(|t| format_ident!("{t}"));
    let refs = levels.iter().map(|_| quote_spanned!(span=> &));
    // The whole call at `span`, arguments included: rustc reports a call's unmet bound at the
    // method, or at the argument whose type it is about.
    let call = respan(call, span);
    let call = quote_spanned!(span=> (#(#refs)* #p::Probe::<#ty>::new()).#call);
    quote! {{
        #[allow(unused_imports)]
        use #p::#module::{#(#traits as _),*};
        #call
    }}
}

/// A call through `__private::follow` for a handler's `payload` over the followed aggregates
/// (`__Aggregates`), spanned at the payload: a type no followed aggregate has is reported
/// there. Projections and process managers route and decode their events through it.
pub fn follow(p: &TokenStream, payload: &syn::Type, call: TokenStream) -> TokenStream {
    probe(
        p,
        "follow",
        &["Followed", "NotFollowed"],
        quote!((#payload, __Aggregates)),
        call,
        syn::spanned::Spanned::span(payload),
    )
}

/// `tokens` with every span, inside groups too, set to `span`.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|token| match token {
            proc_macro2::TokenTree::Group(group) => {
                let mut inner =
                    proc_macro2::Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                proc_macro2::TokenTree::Group(inner)
            }
            mut other => {
                other.set_span(span);
                other
            }
        })
        .collect()
}
