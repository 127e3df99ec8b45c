//! The payload structs written from field lists: one per named-field or unit variant (named
//! after it) and one per older version given as `upcast(vN { ... })` (named `<Payload>VN`).
//!
//! Each gets what storing, routing and the schema export need (`Debug`, `Clone`, serde's
//! `Serialize` and `Deserialize`, `JsonSchema`), reached through the runtime so that users need
//! not depend on serde or schemars, plus the derives and attributes listed once on the enum.
//! The fields keep their attributes (`#[serde(default)]`, docs), so the stored JSON is the one
//! a hand-written struct with the same fields would have.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::visit_mut::{self, VisitMut};
use syn::{Ident, Type};

use crate::ast::{Payloads, Shape, payload_module};

pub fn structs(payloads: &Payloads<'_>) -> TokenStream {
    let Payloads {
        item,
        generics,
        vis,
        crate_path: krate,
        generated,
        options,
    } = payloads;
    if generated.is_empty() {
        return TokenStream::new();
    }
    // A generic enum's named variants are reported (`check_generated_generics`); their structs
    // are still written, so that uses of them raise no second error, but not tied to the enum.
    let tied = generics.params.is_empty();
    let p = quote!(#krate::__private);
    let module = payload_module(item);
    let serde_crate = format!("{}::__private::serde", quote!(#krate)).replace(' ', "");
    let schemars_crate = format!("{}::__private::schemars", quote!(#krate)).replace(' ', "");
    let derives = &options.derives;
    let attrs = &options.attrs;
    let items = generated.iter().map(|g| {
        let ident = &g.ident;
        let docs = &g.docs;
        // A unit variant's struct is braced, so that it is stored as `{}` like any other
        // payload, and a constant of the same name makes it a value too: `Closed`, as a unit
        // struct would be written.
        let value = g.fields.is_empty().then(|| {
            quote! {
                #[doc(hidden)]
                #[allow(non_upper_case_globals, dead_code)]
                pub const #ident: #ident = #ident {};
            }
        });
        let fields = g.fields.iter().map(|f| {
            // The derives' own attributes on a field are reported (`check_field_attributes`)
            // and not carried over, where the struct has no such attribute.
            let attrs = f
                .attrs
                .iter()
                .filter(|a| !a.path().is_ident("event") && !a.path().is_ident("command"));
            let name = &f.ident;
            let ty = without_lifetimes(one_level_deeper(f.ty.clone()), generics);
            quote!(#(#attrs)* pub #name: #ty)
        });
        quote! {
            #(#docs)*
            #[derive(
                ::core::fmt::Debug,
                ::core::clone::Clone,
                #p::Serialize,
                #p::Deserialize,
                #p::JsonSchema,
                #(#derives),*
            )]
            #[serde(crate = #serde_crate)]
            #[schemars(crate = #schemars_crate)]
            #(#[#attrs])*
            pub struct #ident {
                #(#fields,)*
            }

            #value
        }
    });
    let ties = generated.iter().filter(|_| tied).map(|g| {
        let ident = &g.ident;
        quote! {
            #[automatically_derived]
            impl #p::GeneratedPayload<#item> for #module::#ident {}
        }
    });
    // Each name, as the user's module resolves it, must be the struct written here: an item
    // of the same name shadows the glob re-export, and this is then the one error, at the
    // variant.
    let checks = generated.iter().filter(|_| tied).map(|g| {
        let ident = &g.ident;
        quote_spanned!(ident.span()=> #p::generated_payload::<#ident, #item>();)
    });
    quote! {
        #[doc(hidden)]
        #[allow(non_snake_case)]
        mod #module {
            #[allow(unused_imports)]
            use super::*;
            #(#items)*
        }
        #[allow(unused_imports)]
        #vis use #module::*;
        const _: () = {
            #(#ties)*
            #(#checks)*
        };
    }
}

/// A payload type as the schema export shows it: as written, or a generated struct by its
/// name (the module it is written in is not part of it).
pub fn shown(ty: &Type) -> String {
    match ty {
        Type::Path(p)
            if p.path.segments.len() == 2
                && p.path.segments[0].ident.to_string().starts_with("__cqrs_") =>
        {
            p.path.segments[1].ident.to_string()
        }
        other => quote!(#other).to_string().replace(' ', ""),
    }
}

/// A field type as seen from inside the payload module: `super::X` and `self::X` name the
/// same item one level up.
fn one_level_deeper(mut ty: Type) -> Type {
    struct Deeper;
    impl VisitMut for Deeper {
        fn visit_path_mut(&mut self, path: &mut syn::Path) {
            if path.leading_colon.is_none()
                && let Some(first) = path.segments.first_mut()
            {
                if first.ident == "self" {
                    first.ident = Ident::new("super", first.ident.span());
                } else if first.ident == "super" {
                    let span = first.ident.span();
                    path.segments.insert(0, Ident::new("super", span).into());
                }
            }
            visit_mut::visit_path_mut(self, path);
        }
    }
    Deeper.visit_type_mut(&mut ty);
    ty
}

/// A field type with the enum's lifetimes (reported as unsupported) made `'static`, so that the
/// struct written beside that error raises none of its own.
fn without_lifetimes(mut ty: Type, generics: &syn::Generics) -> Type {
    struct Static<'a>(&'a syn::Generics);
    impl VisitMut for Static<'_> {
        fn visit_lifetime_mut(&mut self, lifetime: &mut syn::Lifetime) {
            if self.0.lifetimes().any(|l| l.lifetime == *lifetime) {
                *lifetime = syn::Lifetime::new("'static", lifetime.span());
            }
        }
    }
    Static(generics).visit_type_mut(&mut ty);
    ty
}

/// Matches the variant that holds a payload, binding it: `Self::V(__payload)`, or each field
/// as `__f_<name>` for a generated payload (a standalone struct binds itself, `__payload`).
pub fn pattern(variant: Option<&Ident>, shape: &Shape) -> TokenStream {
    match (variant, shape) {
        (None, _) => quote!(__payload),
        (Some(v), Shape::Newtype) => quote!(Self::#v(__payload)),
        (Some(v), Shape::Named(fields)) => {
            let bound = fields.iter().map(field_binding);
            quote!(Self::#v { #(#fields: #bound),* })
        }
    }
}

/// Matches the variant without binding anything.
pub fn pattern_any(variant: Option<&Ident>, shape: &Shape) -> TokenStream {
    match (variant, shape) {
        (None, _) => quote!(_),
        (Some(v), Shape::Newtype) => quote!(Self::#v(_)),
        (Some(v), Shape::Named(_)) => quote!(Self::#v { .. }),
    }
}

/// The payload, by reference, from what [`pattern`] bound in a match on `&self`. A generated
/// payload is rebuilt from clones of the variant's fields.
pub fn by_ref(shape: &Shape, ty: &Type) -> TokenStream {
    match shape {
        Shape::Newtype => quote!(__payload),
        Shape::Named(fields) => {
            let bound = fields.iter().map(field_binding);
            quote!(&#ty { #(#fields: ::core::clone::Clone::clone(#bound)),* })
        }
    }
}

/// The payload, by value, from what [`pattern`] bound in a match on `self`.
pub fn by_value(shape: &Shape, ty: &Type) -> TokenStream {
    match shape {
        Shape::Newtype => quote!(__payload),
        Shape::Named(fields) => {
            let bound = fields.iter().map(field_binding);
            quote!(#ty { #(#fields: #bound),* })
        }
    }
}

/// `From<Payload> for Enum`, for the variant that holds `ty`.
pub fn from_impl(
    item: &Ident,
    generics: &syn::Generics,
    variant: &Ident,
    shape: &Shape,
    ty: &Type,
) -> TokenStream {
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let construct = construct(variant, shape);
    quote! {
        #[automatically_derived]
        impl #impl_generics ::core::convert::From<#ty> for #item #ty_generics #where_clause {
            #[inline]
            fn from(__payload: #ty) -> Self {
                #construct
            }
        }
    }
}

/// The enum value holding the payload value `__payload`.
pub fn construct(variant: &Ident, shape: &Shape) -> TokenStream {
    match shape {
        Shape::Newtype => quote!(Self::#variant(__payload)),
        Shape::Named(fields) => quote!(Self::#variant { #(#fields: __payload.#fields),* }),
    }
}

fn field_binding(field: &Ident) -> Ident {
    format_ident!("__f_{}", field)
}
