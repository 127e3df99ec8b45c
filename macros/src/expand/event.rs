//! `#[derive(Event)]`: stored names and versions, encoding, the decode + upcast chain, routing
//! to `ApplyEvent`, conversions from payload types, and schema metadata.

use proc_macro2::TokenStream;
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{LitStr, Path, Type};

use crate::ast::{EventDef, EventInput};
use crate::attr::HopKind;
use crate::expand::{payload, probe};

pub fn expand(input: &EventInput<'_>) -> TokenStream {
    let krate = &input.crate_path;
    let p = quote!(#krate::__private);
    let ident = input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let serde_bounds = generic_bounds(
        input,
        quote!(#p::Serialize + #p::DeserializeOwned + ::core::marker::Send + ::core::marker::Sync + 'static),
    );
    let where_serde = merge_where(where_clause, &serde_bounds);

    let names: Vec<&str> = input.events.iter().map(|d| d.name.as_str()).collect();
    let type_arms = input.events.iter().map(|d| {
        let (pat, name) = (payload::pattern_any(d.variant, &d.shape), &d.name);
        quote!(#pat => #name,)
    });
    let version_arms = input.events.iter().map(|d| {
        let (pat, version) = (payload::pattern_any(d.variant, &d.shape), d.version);
        quote!(#pat => #version,)
    });
    let generic = input.generics.type_params().next().is_some();
    let encode_arms = input.events.iter().map(|d| {
        let pat = payload::pattern(d.variant, &d.shape);
        let value = payload::by_ref(&d.shape, &d.payload);
        let ty = &d.payload;
        let encode = stored(generic, ty, Use::Encode(value), &p);
        quote!(#pat => #encode,)
    });
    let decode_arms = input.events.iter().map(|d| decode_arm(d, generic, &p));
    // Each current payload type is storable: checked once, at the type. (A generic enum's
    // `where` clause bounds its payloads instead.)
    let storable = unique_payloads(input).filter(|_| !generic).map(|d| {
        let ty = &d.payload;
        quote_spanned!(ty.span()=> #p::event_payload::<#ty>();)
    });

    let dispatch = dispatch(input, &p);
    let conversions = conversions(input, &p);
    let variants = variants(input, &p, &where_serde);
    let describe = describe(input, &p, where_clause);

    quote! {
        #[automatically_derived]
        impl #impl_generics #p::DomainEvent for #ident #ty_generics #where_serde {
            const EVENT_TYPES: &'static [&'static str] = &[#(#names),*];

            fn event_type(&self) -> &'static str {
                match self { #(#type_arms)* }
            }

            fn event_version(&self) -> u32 {
                match self { #(#version_arms)* }
            }

            fn encode(&self) -> ::core::result::Result<::std::string::String, #p::serde_json::Error> {
                #(#storable)*
                match self { #(#encode_arms)* }
            }

            fn decode(
                __event_type: &str,
                __version: u32,
                __payload: &str,
            ) -> ::core::result::Result<Self, #p::DecodeError> {
                match __event_type {
                    #(#decode_arms)*
                    _ => ::core::result::Result::Err(
                        #p::DecodeError::unknown_type(__event_type, Self::EVENT_TYPES),
                    ),
                }
            }
        }
        #dispatch
        #conversions
        #variants
        #describe
    }
}

/// `EventVariant<Payload>` per payload type: the stored names of each, and taking it out of a
/// decoded event, for routing to projection handlers.
fn variants(input: &EventInput<'_>, p: &TokenStream, where_serde: &TokenStream) -> TokenStream {
    let ident = input.ident;
    // Every stored name, once (beside a stub, two events may share one).
    let stored: std::collections::BTreeSet<String> = input
        .events
        .iter()
        .flat_map(|d| std::iter::once(d.name.clone()).chain(d.aliases.iter().map(LitStr::value)))
        .collect();
    let stored = stored.iter();
    let (impl_generics, ty_generics, _) = input.generics.split_for_impl();
    let impls = unique_payloads(input).map(|d| {
        let (ty, name, aliases) = (&d.payload, &d.name, d.aliases.iter());
        let take = match d.variant {
            Some(_) => {
                let pat = payload::pattern(d.variant, &d.shape);
                let value = payload::by_value(&d.shape, ty);
                quote! {
                    #[allow(unreachable_patterns)]
                    match self {
                        #pat => ::core::option::Option::Some(#value),
                        _ => ::core::option::Option::None,
                    }
                }
            }
            None => quote!(::core::option::Option::Some(self)),
        };
        quote! {
            #[automatically_derived]
            impl #impl_generics #p::EventVariant<#ty> for #ident #ty_generics #where_serde {
                #[inline]
                fn is_stored_as(event_type: &str) -> bool {
                    ::core::matches!(event_type, #name #(| #aliases)*)
                }
                #[inline]
                fn into_variant(self) -> ::core::option::Option<#ty> {
                    #take
                }
            }
        }
    });
    // The enum itself, for a projection handler of every event of its aggregate.
    let every = input.is_enum.then(|| {
        quote! {
            #[automatically_derived]
            impl #impl_generics #p::EventVariant<#ident #ty_generics> for #ident #ty_generics #where_serde {
                #[inline]
                fn is_stored_as(event_type: &str) -> bool {
                    [#(#stored),*].contains(&event_type)
                }
                #[inline]
                fn into_variant(self) -> ::core::option::Option<Self> {
                    ::core::option::Option::Some(self)
                }
            }
        }
    });
    quote!(#(#impls)* #every)
}

/// `T: bounds` for every type parameter and every payload and version type, when the event type
/// is generic; nothing otherwise (a false bound on a concrete type would be an error of its own).
fn generic_bounds(input: &EventInput<'_>, bounds: TokenStream) -> Vec<TokenStream> {
    if input.generics.type_params().next().is_none() {
        return Vec::new();
    }
    let params = input.generics.type_params().map(|t| {
        let ident = &t.ident;
        quote!(#ident: ::core::marker::Send + ::core::marker::Sync + 'static)
    });
    let types = input
        .events
        .iter()
        .flat_map(|d| (1..=d.version).filter_map(move |v| d.type_of(v)))
        .map(|ty| quote!(#ty: #bounds));
    params.chain(types).collect()
}

fn merge_where(where_clause: Option<&syn::WhereClause>, extra: &[TokenStream]) -> TokenStream {
    let existing = where_clause.map(|w| {
        let preds = &w.predicates;
        quote!(#preds,)
    });
    if existing.is_none() && extra.is_empty() {
        return TokenStream::new();
    }
    quote!(where #existing #(#extra,)*)
}

/// `"Name" | "Alias" => { check version; decode from the stored version }`
fn decode_arm(def: &EventDef<'_>, generic: bool, p: &TokenStream) -> TokenStream {
    let name = &def.name;
    let aliases = def.aliases.iter();
    let current = def.version;
    let wrap = match def.variant {
        Some(v) => payload::construct(v, &def.shape),
        None => quote!(__payload),
    };
    let older = (1..current).map(|from| {
        let chain = chain_from(def, from, p);
        quote!(#from => { #chain })
    });
    let payload_ty = &def.payload;
    let direct = stored(generic, payload_ty, Use::Decode, p);
    quote! {
        #name #(| #aliases)* => {
            #p::DecodeError::check_version(__event_type, __version, #current)?;
            let __payload = match __version {
                #(#older,)*
                _ => #direct?,
            };
            ::core::result::Result::Ok(#wrap)
        }
    }
}

/// The upcast chain from stored version `from` to the current type. The value is either typed
/// (a version's Rust type) or raw JSON between hops; conversions are inserted where they meet.
fn chain_from(def: &EventDef<'_>, from: u32, p: &TokenStream) -> TokenStream {
    let mut steps = Vec::new();
    let starts_json = matches!(def.hops[&from].kind, HopKind::Json(_));
    let mut is_json = starts_json;
    if starts_json {
        steps.push(
            quote!(let __value: #p::serde_json::Value = #p::from_str(__event_type, #from, __payload)?;),
        );
    } else {
        let ty = def.type_of(from);
        steps.push(
            quote_spanned!(ty.span()=> let __value: #ty = #p::from_str(__event_type, #from, __payload)?;),
        );
    }
    for version in from..def.version {
        let hop = &def.hops[&version];
        let next = version + 1;
        let value = format_ident!("__value");
        match &hop.kind {
            HopKind::From | HopKind::With(_) | HopKind::Fn(_) => {
                let ty = def.type_of(version);
                let next_ty = def.type_of(next);
                if is_json {
                    steps.push(
                        quote!(let #value: #ty = #p::from_value(__event_type, #version, #value)?;),
                    );
                }
                steps.push(match &hop.kind {
                    HopKind::With(with) => with_hop(with, next_ty),
                    HopKind::Fn(f) => fn_hop(f, ty, next_ty, p),
                    _ => from_hop(ty, next_ty),
                });
                is_json = false;
            }
            HopKind::Json(json) => {
                if !is_json {
                    steps.push(quote!(let #value = #p::to_value(__event_type, #version, #value)?;));
                }
                steps.push(quote_spanned! {json.span()=>
                    let #value = #p::json_hop(__event_type, #version, #value, #json)?;
                });
                is_json = true;
            }
        }
    }
    let payload_ty = &def.payload;
    let current = def.version;
    if is_json {
        steps.push(
            quote!(let __value: #payload_ty = #p::from_value(__event_type, #current, __value)?;),
        );
    }
    quote!(#(#steps)* __value)
}

fn from_hop(ty: Option<&Type>, next: Option<&Type>) -> TokenStream {
    // Both types spanned at the user's `vN = Type`, so a missing `From` impl is reported there
    // and not at the variant.
    let span = ty.span();
    let next = respan(next.to_token_stream(), span);
    quote_spanned! {span=>
        let __value: #next = <#next as ::core::convert::From<#ty>>::from(__value);
    }
}

fn respan(tokens: TokenStream, span: proc_macro2::Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let proc_macro2::TokenTree::Group(g) = &token {
                let mut group = proc_macro2::Group::new(g.delimiter(), respan(g.stream(), span));
                group.set_span(span);
                token = group.into();
            } else {
                token.set_span(span);
            }
            token
        })
        .collect()
}

/// `=> |v1| ...`: called with its parameter and result types given, so that a closure's
/// parameter needs no annotation and a wrong body is reported inside it.
fn fn_hop(f: &syn::Expr, ty: Option<&Type>, next: Option<&Type>, p: &TokenStream) -> TokenStream {
    quote_spanned! {f.span()=>
        let __value: #next = #p::upcast_with::<#ty, #next>(#f, __value);
    }
}

fn with_hop(with: &Path, next: Option<&Type>) -> TokenStream {
    quote_spanned! {with.span()=>
        let __value: #next = #with(__value);
    }
}

/// Routes each variant to `ApplyEvent<Payload>` of any aggregate that applies all of them.
fn dispatch(input: &EventInput<'_>, p: &TokenStream) -> TokenStream {
    let ident = input.ident;
    let (_, ty_generics, where_clause) = input.generics.split_for_impl();
    let params = input.generics.params.iter();
    let bounds: Vec<TokenStream> = if input.is_enum {
        input
            .events
            .iter()
            .map(|d| {
                let ty = &d.payload;
                quote!(__A: #p::ApplyEvent<#ty>)
            })
            .collect()
    } else {
        vec![quote!(__A: #p::ApplyEvent<Self>)]
    };
    let arms = input.events.iter().map(|d| {
        let ty = &d.payload;
        match d.variant {
            Some(_) => {
                let pat = payload::pattern(d.variant, &d.shape);
                let event = payload::by_ref(&d.shape, ty);
                quote! {
                    #pat => <__A as #p::ApplyEvent<#ty>>::apply_event(state, #event, envelope),
                }
            }
            None => quote! {
                event => <__A as #p::ApplyEvent<Self>>::apply_event(state, event, envelope),
            },
        }
    });
    let mut extra = vec![quote!(__A: #p::Aggregate<Event = Self>)];
    extra.extend(bounds);
    let where_all = merge_where(where_clause, &extra);
    quote! {
        #[automatically_derived]
        impl<__A, #(#params),*> #p::EventDispatch<__A> for #ident #ty_generics #where_all {
            #[inline]
            fn dispatch(state: &mut __A, envelope: &#p::EventEnvelope<Self>) {
                match &envelope.event { #(#arms)* }
            }
        }
    }
}

/// What a derive with errors still writes beside its stub (see `fallback.rs`): the conversions
/// and payload routing of every variant, so that handlers returning a payload and projections
/// taking one raise no second error.
pub fn fallback_impls(input: &EventInput<'_>) -> TokenStream {
    // A generic enum may wrap a bare type parameter, whose impls would overlap the others';
    // and without a stub `DomainEvent` (lifetimes) nothing can be routed.
    if !input.generics.params.is_empty() {
        return TokenStream::new();
    }
    let krate = &input.crate_path;
    let p = quote!(#krate::__private);
    let (_, _, where_clause) = input.generics.split_for_impl();
    let serde_bounds = generic_bounds(
        input,
        quote!(#p::Serialize + #p::DeserializeOwned + ::core::marker::Send + ::core::marker::Sync + 'static),
    );
    let where_serde = merge_where(where_clause, &serde_bounds);
    let conversions = conversions(input, &p);
    let variants = variants(input, &p, &where_serde);
    quote!(#conversions #variants)
}

/// The events whose payload type no other variant wraps: two variants of one payload type are
/// an error (`valid::check_distinct_payloads`), and their impls would only conflict.
fn unique_payloads<'a, 'b>(input: &'b EventInput<'a>) -> impl Iterator<Item = &'b EventDef<'a>> {
    let key = |d: &EventDef<'_>| d.payload.to_token_stream().to_string();
    input
        .events
        .iter()
        .filter(move |d| input.events.iter().filter(|o| key(o) == key(d)).count() == 1)
}

/// `From<Payload> for Event` and `IntoEvents<Event> for Payload`, so handlers can return a
/// payload and callers can build events from payloads; `EventOf<Event>` for each payload type
/// (a struct event's is itself), which appliers check their parameter against.
fn conversions(input: &EventInput<'_>, p: &TokenStream) -> TokenStream {
    let ident = input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    // What an applier's check asks of its parameter (`__private::check`).
    let members = unique_payloads(input).map(|d| {
        let ty = match d.variant {
            Some(_) => d.payload.to_token_stream(),
            None => quote!(#ident #ty_generics),
        };
        quote! {
            #[automatically_derived]
            impl #impl_generics #p::EventOf<#ident #ty_generics> for #ty #where_clause {}
        }
    });
    let members = quote! {
        #[automatically_derived]
        impl #impl_generics #p::EventType for #ident #ty_generics #where_clause {}
        #(#members)*
    };
    if !input.is_enum {
        return members;
    }
    let impls = unique_payloads(input).filter_map(|d| {
        let (v, ty) = (d.variant?, &d.payload);
        let from = payload::from_impl(ident, input.generics, v, &d.shape, ty);
        Some(quote! {
            #from
            #[automatically_derived]
            impl #impl_generics #p::IntoEvents<#ident #ty_generics> for #ty #where_clause {
                #[inline]
                fn into_events(self) -> ::std::vec::Vec<#ident #ty_generics> {
                    ::std::vec![::core::convert::From::from(self)]
                }
            }
        })
    });
    quote!(#members #(#impls)*)
}

/// `DescribeEvents`: every event with every version's JSON Schema.
fn describe(
    input: &EventInput<'_>,
    p: &TokenStream,
    where_clause: Option<&syn::WhereClause>,
) -> TokenStream {
    let ident = input.ident;
    let (impl_generics, ty_generics, _) = input.generics.split_for_impl();
    let schema_bounds = generic_bounds(input, quote!(#p::JsonSchema));
    let generic = input.generics.type_params().next().is_some();
    let where_all = merge_where(where_clause, &schema_bounds);
    let events = input.events.iter().map(|d| {
        let name = &d.name;
        let aliases = d.aliases.iter();
        let current = d.version;
        let versions = (1..=d.version).map(|v| {
            let upcast = match d.hops.get(&v).map(|h| &h.kind) {
                None => quote!(#p::Upcast::Current),
                Some(HopKind::From) => quote!(#p::Upcast::From),
                Some(HopKind::With(_) | HopKind::Fn(_)) => quote!(#p::Upcast::Function),
                Some(HopKind::Json(_)) => quote!(#p::Upcast::Json),
            };
            let (rust_type, schema) = match d.type_of(v) {
                Some(ty) => {
                    let shown = if d.variant.is_none() && v == d.version {
                        ident.to_string()
                    } else {
                        payload::shown(ty)
                    };
                    (
                        quote!(::core::option::Option::Some(::std::borrow::ToOwned::to_owned(#shown))),
                        if v == d.version {
                            let schema = stored(generic, ty, Use::Schema, p);
                            quote!(::core::option::Option::Some(#schema))
                        } else {
                            quote_spanned!(ty.span()=> ::core::option::Option::Some(#p::schema_of::<#ty>()))
                        },
                    )
                }
                None => (quote!(::core::option::Option::None), quote!(::core::option::Option::None)),
            };
            quote! {
                #p::EventVersionSchema { version: #v, rust_type: #rust_type, schema: #schema, upcast: #upcast }
            }
        });
        quote! {
            #p::EventSchema {
                event_type: ::std::borrow::ToOwned::to_owned(#name),
                aliases: ::std::vec![#(::std::borrow::ToOwned::to_owned(#aliases)),*],
                version: #current,
                versions: ::std::vec![#(#versions),*],
            }
        }
    });
    // Only with the runtime's `schema` feature (see `__private::schema_items`).
    quote! {
        #p::schema_items! {
            #[automatically_derived]
            impl #impl_generics #p::DescribeEvents for #ident #ty_generics #where_all {
                fn describe_events() -> ::std::vec::Vec<#p::EventSchema> {
                    ::std::vec![#(#events),*]
                }
            }
        }
    }
}

/// What the derive does with a current payload type.
enum Use {
    /// `encode(value)`, the value a reference to the payload.
    Encode(TokenStream),
    /// Decode `__payload` (stored as `__event_type`, `__version`).
    Decode,
    /// Its JSON Schema.
    Schema,
}

/// A use of a current payload type: through `__private::stored`, which says nothing more about
/// a type `event_payload` has reported; for a generic enum, whose `where` clause bounds its
/// payloads, directly.
fn stored(generic: bool, ty: &Type, wanted: Use, p: &TokenStream) -> TokenStream {
    if generic {
        return match wanted {
            Use::Encode(value) => quote!(#p::encode(#value)),
            Use::Decode => quote!(#p::from_str::<#ty>(__event_type, __version, __payload)),
            Use::Schema => quote_spanned!(ty.span()=> #p::schema_of::<#ty>()),
        };
    }
    let call = match wanted {
        Use::Encode(value) => quote!(encode(#value)),
        Use::Decode => quote!(decode(__event_type, __version, __payload)),
        Use::Schema => quote!(schema()),
    };
    probe(
        p,
        "stored",
        &["Stored", "Unstorable"],
        quote!(#ty),
        call,
        proc_macro2::Span::call_site(),
    )
}
