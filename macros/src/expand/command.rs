//! `#[derive(Command)]`: routing of each command to `HandleCommand<Payload>`, conversions from
//! payload types, and schema metadata.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::ast::CommandInput;
use crate::expand::payload;

pub fn expand(input: &CommandInput<'_>) -> TokenStream {
    let krate = &input.crate_path;
    let p = quote!(#krate::__private);
    let ident = input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let params = input.generics.params.iter();
    let existing = where_clause.map(|w| {
        let preds = &w.predicates;
        quote!(#preds,)
    });
    // A command travels into an async handler: its type parameters must be sendable and owned.
    let param_bounds = input.generics.type_params().map(|t| {
        let ident = &t.ident;
        quote!(#ident: ::core::marker::Send + 'static,)
    });

    let (bounds, body, existence): (Vec<TokenStream>, TokenStream, TokenStream) =
        match input.commands.first() {
            Some(def) if def.variant.is_none() => (
                vec![quote!(__A: #p::HandleCommand<Self>)],
                quote!(<__A as #p::HandleCommand<Self>>::handle_command(state, self, cx)),
                quote!(<__A as #p::HandleCommand<Self>>::EXISTENCE),
            ),
            _ => {
                let bounds = input.commands.iter().map(|d| {
                    let ty = &d.payload;
                    quote!(__A: #p::HandleCommand<#ty>)
                });
                // Each handler's future, in a nest of `Either`s (one position per command): a plain
                // enum future, with no async block (a coroutine) to type-check and compile.
                let last = input.commands.len().saturating_sub(1);
                let arms = input.commands.iter().enumerate().map(|(i, d)| {
                    let ty = &d.payload;
                    let pat = payload::pattern(d.variant, &d.shape);
                    let command = payload::by_value(&d.shape, ty);
                    let mut future = quote! {
                        <__A as #p::HandleCommand<#ty>>::handle_command(state, #command, cx)
                    };
                    if i < last {
                        future = quote!(#p::Either::Left(#future));
                    }
                    for _ in 0..i {
                        future = quote!(#p::Either::Right(#future));
                    }
                    quote!(#pat => #future,)
                });
                let existence = input.commands.iter().map(|d| {
                    let ty = &d.payload;
                    let pat = payload::pattern_any(d.variant, &d.shape);
                    quote!(#pat => <__A as #p::HandleCommand<#ty>>::EXISTENCE,)
                });
                (
                    bounds.collect(),
                    quote!(match self { #(#arms)* }),
                    quote!(match self { #(#existence)* }),
                )
            }
        };

    let conversions = conversions(input);
    // Each command's name as its schema has it, for traces and metrics.
    let names = input.commands.iter().map(|d| {
        let pat = payload::pattern_any(d.variant, &d.shape);
        let name = &d.name;
        quote!(#pat => #name,)
    });

    let schema_bounds = if input.generics.type_params().next().is_some() {
        input
            .commands
            .iter()
            .map(|d| {
                let ty = &d.payload;
                quote!(#ty: #p::JsonSchema,)
            })
            .collect()
    } else {
        TokenStream::new()
    };
    let schemas = input.commands.iter().map(|d| {
        let (name, ty) = (&d.name, &d.payload);
        let shown = match d.variant {
            Some(_) => payload::shown(ty),
            None => ident.to_string(),
        };
        let schema = quote_spanned!(ty.span()=> #p::schema_of::<#ty>());
        quote!(#p::CommandSchema { name: ::std::borrow::ToOwned::to_owned(#name), rust_type: ::std::borrow::ToOwned::to_owned(#shown), schema: #schema })
    });

    quote! {
    #[automatically_derived]
    impl<__A, #(#params),*> #p::CommandDispatch<__A> for #ident #ty_generics
    where
        #existing
        #(#param_bounds)*
        __A: #p::Aggregate,
        Self: ::core::marker::Send + 'static,
        #(#bounds,)*
    {
        fn dispatch(
            self,
            state: &__A,
            cx: &#p::CommandContext<'_, __A>,
        ) -> impl ::core::future::Future<
            Output = ::core::result::Result<
                ::std::vec::Vec<<__A as #p::Aggregate>::Event>,
                <__A as #p::Aggregate>::Error,
            >,
        > + ::core::marker::Send {
            #body
        }

        #[inline]
        fn existence(&self) -> #p::Existence {
            #existence
        }
    }
    #[automatically_derived]
    impl #impl_generics #p::CommandName for #ident #ty_generics #where_clause {
        #[inline]
        fn command_name(&self) -> &'static str {
            match *self { #(#names)* }
        }
    }
    #conversions
    // Only with the runtime's `schema` feature (see `__private::schema_items`).
    #p::schema_items! {
    #[automatically_derived]
        impl #impl_generics #p::DescribeCommands for #ident #ty_generics where #existing #schema_bounds {
            fn describe_commands() -> ::std::vec::Vec<#p::CommandSchema> {
                ::std::vec![#(#schemas),*]
            }
        }
    }
    }
}

/// `From<Payload> for Command` and `CommandOf<Command>` for each payload type only one variant
/// wraps (two are an error, and their impls would only conflict), and `CommandType`; written
/// beside a stub too, so that callers building commands from payloads and the handlers' checks
/// raise no second error.
pub fn conversions(input: &CommandInput<'_>) -> TokenStream {
    let key = |ty: &syn::Type| quote!(#ty).to_string();
    let krate = &input.crate_path;
    let p = quote!(#krate::__private);
    let ident = input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let impls = input.commands.iter().filter_map(|d| {
        let ty = &d.payload;
        let twice = input
            .commands
            .iter()
            .filter(|o| key(&o.payload) == key(ty))
            .count()
            > 1;
        if twice {
            return None;
        }
        // What a handler's check asks of its parameter (`__private::check`).
        let ty = match d.variant {
            Some(_) => quote!(#ty),
            None => quote!(#ident #ty_generics),
        };
        let member = quote! {
            #[automatically_derived]
            impl #impl_generics #p::CommandOf<#ident #ty_generics> for #ty #where_clause {}
        };
        let from = d
            .variant
            .map(|v| payload::from_impl(ident, input.generics, v, &d.shape, &d.payload));
        Some(quote!(#member #from))
    });
    quote! {
        #[automatically_derived]
        impl #impl_generics #p::CommandType for #ident #ty_generics #where_clause {}
        #(#impls)*
    }
}
