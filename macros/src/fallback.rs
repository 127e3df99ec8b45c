//! What a derive emits beside its `compile_error!`s: a stub impl of the trait, so that one bad
//! attribute is reported once instead of again at every use of the type. Stub bodies never run:
//! the crate does not compile while the errors stand.

use proc_macro2::TokenStream;
use quote::quote;
use syn::DeriveInput;

use crate::ast::{AggregateInput, CommandInput, EventInput};
use crate::{attr, expand};

/// A stub cannot be written for borrowed types (reported as unsupported): it would only add
/// lifetime errors.
fn has_lifetimes(generics: &syn::Generics) -> bool {
    generics.lifetimes().next().is_some()
}

/// The stub `DomainEvent`, `EventDispatch` and `DescribeEvents`, and, when the input parsed,
/// the payload conversions and routing as the full expansion writes them.
pub fn event(input: &DeriveInput, model: Option<&EventInput<'_>>) -> TokenStream {
    if has_lifetimes(&input.generics) {
        return TokenStream::new();
    }
    let krate = &model.map_or_else(attr::default_crate_path, |m| m.crate_path.clone());
    let kept = model.map(expand::event::fallback_impls);
    // `fallback_impls` writes it for an input that parsed (and is not generic).
    let type_marker = (kept.as_ref().is_none_or(TokenStream::is_empty)).then(|| {
        let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
        let ident = &input.ident;
        quote!(impl #impl_generics #krate::__private::EventType for #ident #ty_generics #where_clause {})
    });
    let p = quote!(#krate::__private);
    let ident = &input.ident;
    // The bounds `DomainEvent` puts on the type's parameters, so the stub raises no error of
    // its own.
    let mut generics = input.generics.clone();
    for param in generics.type_params_mut() {
        param.bounds.push(syn::parse_quote!(::core::marker::Send));
        param.bounds.push(syn::parse_quote!(::core::marker::Sync));
        param.bounds.push(syn::parse_quote!('static));
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let params = generics.params.iter();
    quote! {
        impl #impl_generics #p::DomainEvent for #ident #ty_generics #where_clause {
            const EVENT_TYPES: &'static [&'static str] = &[];
            fn event_type(&self) -> &'static str { ::core::unreachable!() }
            fn event_version(&self) -> u32 { ::core::unreachable!() }
            fn encode(&self) -> ::core::result::Result<::std::string::String, #p::serde_json::Error> {
                ::core::unreachable!()
            }
            fn decode(_: &str, _: u32, _: &str) -> ::core::result::Result<Self, #p::DecodeError> {
                ::core::unreachable!()
            }
        }
        impl<#(#params,)* __A: #p::Aggregate<Event = Self>> #p::EventDispatch<__A> for #ident #ty_generics #where_clause {
            fn dispatch(_: &mut __A, _: &#p::EventEnvelope<Self>) { ::core::unreachable!() }
        }
        impl #impl_generics #p::DescribeEvents for #ident #ty_generics #where_clause {
            fn describe_events() -> ::std::vec::Vec<#p::EventSchema> { ::core::unreachable!() }
        }
        #type_marker
        #kept
    }
}

/// The stub `CommandDispatch` and `DescribeCommands`, and, when the input parsed, the payload
/// conversions.
pub fn command(input: &DeriveInput, model: Option<&CommandInput<'_>>) -> TokenStream {
    let krate = &model.map_or_else(attr::default_crate_path, |m| m.crate_path.clone());
    let kept = model.map(expand::command::conversions);
    // `conversions` writes it when the input parsed.
    let type_marker = kept.is_none().then(|| {
        let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
        let ident = &input.ident;
        quote!(impl #impl_generics #krate::__private::CommandType for #ident #ty_generics #where_clause {})
    });
    let p = quote!(#krate::__private);
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let params = input.generics.params.iter();
    quote! {
        impl<#(#params,)* __A: #p::Aggregate> #p::CommandDispatch<__A> for #ident #ty_generics #where_clause {
            fn dispatch(
                self,
                _: &__A,
                _: &#p::CommandContext<'_, __A>,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<
                    ::std::vec::Vec<<__A as #p::Aggregate>::Event>,
                    <__A as #p::Aggregate>::Error,
                >,
            > + ::core::marker::Send {
                async { ::core::unreachable!() }
            }
            fn existence(&self) -> #p::Existence { ::core::unreachable!() }
        }
        impl #impl_generics #p::DescribeCommands for #ident #ty_generics #where_clause {
            fn describe_commands() -> ::std::vec::Vec<#p::CommandSchema> { ::core::unreachable!() }
        }
        #type_marker
        #kept
    }
}

/// A command type `#[aggregate(...)]` does not name is `__private::Unknown`, which satisfies
/// every bound put on a command type, and an event type `__private::UnknownEvent`, which
/// generated code checks nothing against, so that the handlers raise no second error.
pub fn aggregate(input: &AggregateInput<'_>) -> TokenStream {
    let krate = &input.crate_path;
    let p = quote!(#krate::__private);
    let event = input
        .attrs
        .event
        .as_ref()
        .map_or(quote!(#p::UnknownEvent), |t| quote!(#t));
    let command = input
        .attrs
        .command
        .as_ref()
        .map_or(quote!(#p::Unknown), |t| quote!(#t));
    if has_lifetimes(input.generics) {
        return TokenStream::new();
    }
    let ident = input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let refuses = crate::expand::aggregate::refuses_existing(input, &p);
    let id = input
        .attrs
        .id
        .as_ref()
        .map_or(quote!(::std::string::String), |t| quote!(#t));
    // Without the attribute at all, the error type is a placeholder too, so that handlers'
    // refusals raise nothing more; a missing `error = ...` beside the others means `Infallible`.
    let error = match (&input.attrs.error, &input.attrs.event, &input.attrs.command) {
        (Some(t), _, _) => quote!(#t),
        (None, None, None) => quote!(#p::UnknownError),
        (None, _, _) => quote!(::core::convert::Infallible),
    };
    let services = input
        .attrs
        .services
        .as_ref()
        .map_or(quote!(()), |t| quote!(#t));
    quote! {
        impl #impl_generics #p::Aggregate for #ident #ty_generics #where_clause {
            const TYPE: &'static str = "";
            type Id = #id;
            type Command = #command;
            type Event = #event;
            type Error = #error;
            type Services = #services;
            fn initial() -> Self { ::core::unreachable!() }
            fn handle(
                &self,
                _: Self::Command,
                _: &#p::CommandContext<'_, Self>,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<::std::vec::Vec<Self::Event>, Self::Error>,
            > + ::core::marker::Send {
                async { ::core::unreachable!() }
            }
            fn apply(&mut self, _: &#p::EventEnvelope<Self::Event>) { ::core::unreachable!() }
        }
        #refuses
    }
}

/// A projection with a mistake still names its aggregates and gets stub impls, so that its
/// runner and the imports of its aggregates raise no second error.
pub fn projection(input: &crate::ast::ProjectionInput<'_>) -> TokenStream {
    if !input.item.generics.params.is_empty() || input.item.trait_.is_some() {
        return TokenStream::new();
    }
    let krate = &input.crate_path;
    let p = quote!(#krate::__private);
    let self_ty = &input.item.self_ty;
    let aggregates = &input.aggregates;
    quote! {
        impl #p::Projection for #self_ty {
            const NAME: &'static str = "";
            const VERSION: u32 = 1;
            const AGGREGATES: &'static [&'static str] = &[#(<#aggregates as #p::Aggregate>::TYPE),*];
        }
        impl<__C: ::core::marker::Send> #p::ProjectionHandlers<__C> for #self_ty {
            const CAN_RESET: bool = false;
            fn handle<'__a>(
                &'__a mut self,
                _: &'__a #p::StoredEvent,
                _: &'__a mut __C,
            ) -> impl ::core::future::Future<Output = ::core::result::Result<(), #p::BoxError>>
                   + ::core::marker::Send + '__a {
                async { ::core::unreachable!() }
            }
            fn reset<'__a>(
                &'__a mut self,
                _: &'__a mut __C,
            ) -> impl ::core::future::Future<Output = ::core::result::Result<(), #p::BoxError>>
                   + ::core::marker::Send + '__a {
                async { ::core::unreachable!() }
            }
        }
    }
}

/// A `#[process_manager]` with errors: `Targets` (so that `effects.send` raises nothing more)
/// and a `ProcessManager` that ignores every event (so that its runner raises nothing more).
pub fn process(input: &crate::ast::ProcessInput<'_>) -> TokenStream {
    if !input.item.generics.params.is_empty() || input.item.trait_.is_some() {
        return TokenStream::new();
    }
    let krate = &input.crate_path;
    let p = quote!(#krate::__private);
    let state = &input.item.self_ty;
    let manager = input.manager_type();
    let common = crate::expand::process::common(input, true);
    quote! {
        #common
        impl #p::ProcessManager for #manager {
            const NAME: &'static str = "";
            const FOLLOWS: &'static [&'static str] = &[];
            type State = #state;
            fn route(&self, _: &#p::StoredEvent) -> ::core::result::Result<#p::Route, #p::BoxError> {
                ::core::result::Result::Ok(#p::Route::Ignore)
            }
            fn handle(
                &self,
                _: &mut #state,
                _: &#p::StoredEvent,
                _: &mut #p::Effects,
            ) -> ::core::result::Result<(), #p::BoxError> {
                ::core::unreachable!()
            }
            fn on_deadline(
                &self,
                _: &mut #state,
                _: &str,
                _: &mut #p::Effects,
            ) -> ::core::result::Result<(), #p::BoxError> {
                ::core::unreachable!()
            }
        }
    }
}
