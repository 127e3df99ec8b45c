//! `#[derive(Aggregate)]`: the `Aggregate` impl that routes commands and events through the
//! command and event types' dispatch, the snapshot policy, ignored events, and the schema
//! registration.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::Type;
use syn::spanned::Spanned;

use crate::ast::AggregateInput;

pub fn expand(input: &AggregateInput<'_>) -> TokenStream {
    let krate = &input.crate_path;
    let p = quote!(#krate::__private);
    let ident = input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let attrs = &input.attrs;
    let (Some(event), Some(command)) = (&attrs.event, &attrs.command) else {
        return TokenStream::new();
    };
    let name = &input.name;
    let id = type_or(&attrs.id, quote!(::std::string::String));
    let error = type_or(&attrs.error, quote!(::core::convert::Infallible));
    let services = type_or(&attrs.services, quote!(()));

    // Spanned at `event = ...` / `command = ...`: a missing applier or handler is reported there.
    let apply = quote_spanned! {event.span()=>
        <#event as #p::EventDispatch<Self>>::dispatch(self, envelope)
    };
    // Awaited inside a block of our own, spanned at `command = ...`, so that only the call
    // needs the dispatch impl (the return type does not) and a missing handler is reported once.
    let handle = quote_spanned! {command.span()=>
        <#command as #p::CommandDispatch<Self>>::dispatch(command, self, cx).await
    };
    let refusal = existence_check(input, command, &p).map(|refusal| {
        quote! {
            if let ::core::option::Option::Some(error) = #refusal {
                return ::core::result::Result::Err(error);
            }
        }
    });
    let refuses = refuses_existing(input, &p);
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
    // Spanned at the type in `ignore(...)`, where a conflict with an applier is reported.
    let ignored = attrs.ignore.iter().map(|ty| {
        quote_spanned! {ty.span()=>
            #[automatically_derived]
            impl #impl_generics #p::ApplyEvent<#ty> for #ident #ty_generics #where_clause {
                #[inline]
                fn apply_event(&mut self, _: &#ty, _: &#p::EventEnvelope<#event>) {}
            }
        }
    });
    // A generic aggregate has no single schema to register; its instantiations are listed by
    // whoever names them.
    let registration = input.generics.params.is_empty().then(|| {
        // Only with the runtime's `schema` feature (see `__private::schema_items`).
        quote! {
            #p::schema_items! {
                #p::inventory::submit! {
                    #p::Registration {
                        describe: || #p::AggregateSchema {
                            aggregate_type: ::std::borrow::ToOwned::to_owned(#name),
                            rust_type: ::std::borrow::ToOwned::to_owned(::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident))),
                            commands: <#command as #p::DescribeCommands>::describe_commands(),
                            events: <#event as #p::DescribeEvents>::describe_events(),
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
    Some(quote! {
        match (<#command as #p::CommandDispatch<Self>>::existence(&command), cx.exists()) {
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
