//! The model of a `#[derive(Aggregate)]` input, and the fingerprint of its state type.

use heck::ToSnakeCase;
use quote::quote;
use syn::{Data, DeriveInput, Generics, Ident, Path};

use super::check_item;
use crate::attr::{self, AggregateAttrs, Errors};

pub struct AggregateInput<'a> {
    pub ident: &'a Ident,
    pub generics: &'a Generics,
    pub crate_path: Path,
    pub name: String,
    pub attrs: AggregateAttrs,
    /// A hash of the state type's definition, for snapshot fingerprints.
    pub shape_hash: u64,
}

impl<'a> AggregateInput<'a> {
    pub fn from_syn(input: &'a DeriveInput, errors: &mut Errors) -> Option<Self> {
        check_item(input, "Aggregate", errors);
        if matches!(input.data, Data::Union(_)) {
            return None;
        }
        let attrs = AggregateAttrs::parse(&input.attrs, errors);
        let name = match &attrs.rename {
            Some(lit) => lit.value(),
            None => input.ident.to_string().to_snake_case(),
        };
        Some(AggregateInput {
            ident: &input.ident,
            generics: &input.generics,
            crate_path: attrs
                .crate_path
                .clone()
                .unwrap_or_else(attr::default_crate_path),
            name,
            shape_hash: shape_hash(input),
            attrs,
        })
    }
}

/// FNV-1a over the tokens of the type's fields (doc comments left out), so that a snapshot is
/// only trusted by a state type of the same shape.
fn shape_hash(input: &DeriveInput) -> u64 {
    let mut shape = input.clone();
    shape.attrs.clear();
    let strip = |attrs: &mut Vec<syn::Attribute>| attrs.retain(|a| !a.path().is_ident("doc"));
    match &mut shape.data {
        Data::Struct(s) => s.fields.iter_mut().for_each(|f| strip(&mut f.attrs)),
        Data::Enum(e) => e.variants.iter_mut().for_each(|v| {
            strip(&mut v.attrs);
            v.fields.iter_mut().for_each(|f| strip(&mut f.attrs));
        }),
        Data::Union(_) => {}
    }
    let text = quote!(#shape).to_string();
    text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
