//! The payload structs written from field lists: one per named-field or unit variant (named
//! after it) and one per older version given as `upcast(vN { ... })` (named `<Payload>VN`).
//!
//! Each gets what storing, routing and the schema export need (`Debug`, `Clone`, serde's
//! `Serialize` and `Deserialize`, `JsonSchema`), reached through the runtime so that users need
//! not depend on serde or schemars, plus the derives and attributes listed once on the enum.
//! The fields keep their attributes (`#[serde(default)]`, docs), so the stored JSON is the one
//! a hand-written struct with the same fields would have.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Ident, Path, Type, Visibility};

use crate::ast::{Generated, PayloadOptions, Shape};

pub fn structs(
    generated: &[Generated],
    options: &PayloadOptions,
    vis: &Visibility,
    krate: &Path,
) -> TokenStream {
    let p = quote!(#krate::__private);
    let serde_crate = format!("{}::__private::serde", quote!(#krate)).replace(' ', "");
    let schemars_crate = format!("{}::__private::schemars", quote!(#krate)).replace(' ', "");
    let derives = &options.derives;
    let attrs = &options.attrs;
    let items = generated.iter().map(|g| {
        let ident = &g.ident;
        let docs = &g.docs;
        let fields = g.fields.iter().map(|f| {
            let (attrs, name, ty) = (&f.attrs, &f.ident, &f.ty);
            quote!(#(#attrs)* #vis #name: #ty)
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
            #vis struct #ident {
                #(#fields,)*
            }
        }
    });
    quote!(#(#items)*)
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
