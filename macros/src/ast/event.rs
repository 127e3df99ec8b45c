//! The model of a `#[derive(Event)]` input: its stored event types and their versions.

use std::collections::BTreeMap;

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::{Data, DeriveInput, Generics, Ident, LitInt, LitStr, Path, Type};

use super::{
    Generated, PayloadOptions, Payloads, Shape, check_generated_generics, check_item,
    payload_module, variant_payload,
};
use crate::attr::{self, Errors, EventAttrs, Hop};

/// One stored event type: a variant of an event enum, or a standalone event struct.
pub struct EventDef<'a> {
    /// The variant, or `None` for a standalone struct.
    pub variant: Option<&'a Ident>,
    /// The payload type: the variant's field, the struct generated for it, or `Self`.
    pub payload: Type,
    pub shape: Shape,
    /// The stored type name.
    pub name: String,
    /// Where the name comes from (the `rename` literal or the variant ident).
    pub name_span: Span,
    pub aliases: Vec<LitStr>,
    pub version: u32,
    pub version_lit: Option<LitInt>,
    pub hops: BTreeMap<u32, Hop>,
    pub upcast_span: Option<Span>,
    pub upcast_broken: bool,
}

pub struct EventInput<'a> {
    pub ident: &'a Ident,
    pub generics: &'a Generics,
    pub crate_path: Path,
    pub events: Vec<EventDef<'a>>,
    /// True for `#[derive(Event)]` on an enum.
    pub is_enum: bool,

    /// The payload structs written for named-field variants and `upcast(vN { ... })` shapes.
    pub payloads: Payloads<'a>,
}

impl<'a> EventInput<'a> {
    pub fn from_syn(input: &'a DeriveInput, errors: &mut Errors) -> Option<Self> {
        check_item(input, "Event", errors);
        let module = payload_module(&input.ident);
        let mut generated = Vec::new();
        let mut options = PayloadOptions::default();
        let (crate_path, mut events, is_enum) = match &input.data {
            Data::Enum(data) => {
                let container = EventAttrs::parse(&input.attrs, errors, true, false);
                if data.variants.is_empty() {
                    errors.error(
                        &input.ident,
                        "an event enum needs at least one variant, e.g. `Opened(AccountOpened)`",
                    );
                }
                let events = data
                    .variants
                    .iter()
                    .filter_map(|v| {
                        let attrs = EventAttrs::parse(&v.attrs, errors, false, true);
                        let (payload, shape, written) =
                            variant_payload(v, &module, "event", errors)?;
                        generated.extend(written);
                        Some(EventDef::new(Some(&v.ident), payload, shape, attrs))
                    })
                    .collect();
                options = container.payloads;
                (container.crate_path, events, true)
            }
            Data::Struct(_) => {
                let attrs = EventAttrs::parse(&input.attrs, errors, true, true);
                let crate_path = attrs.crate_path.clone();
                let def = EventDef::new(None, syn::parse_quote!(Self), Shape::Newtype, attrs);
                let def = EventDef {
                    name: def.name_or(&input.ident),
                    name_span: def.name_span_or(&input.ident),
                    ..def
                };
                (crate_path, vec![def], false)
            }
            Data::Union(_) => return None,
        };
        for def in &mut events {
            generated.extend(def.older_shapes(&input.ident, &module));
        }
        check_generated_generics(&input.generics, &generated, errors);
        let crate_path = crate_path.unwrap_or_else(attr::default_crate_path);
        Some(EventInput {
            ident: &input.ident,
            generics: &input.generics,
            crate_path: crate_path.clone(),
            events,
            is_enum,
            payloads: Payloads::of(input, crate_path, generated, options),
        })
    }
}

impl<'a> EventDef<'a> {
    fn new(variant: Option<&'a Ident>, payload: Type, shape: Shape, attrs: EventAttrs) -> Self {
        let (name, name_span) = match (&attrs.rename, variant) {
            (Some(lit), _) => (lit.value(), lit.span()),
            (None, Some(v)) => (v.to_string(), v.span()),
            (None, None) => (String::new(), Span::call_site()),
        };
        let (version, version_lit) = match attrs.version {
            Some((n, lit)) => (n, Some(lit)),
            None => (1, None),
        };
        EventDef {
            variant,
            payload,
            shape,
            name,
            name_span,
            aliases: attrs.aliases,
            version,
            version_lit,
            hops: attrs.upcast,
            upcast_span: attrs.upcast_span,
            upcast_broken: attrs.upcast_broken,
        }
    }

    /// The structs of the older versions written as field lists, `upcast(v1 { ... })`, named
    /// `<Payload>V1`; each hop's type becomes its struct.
    fn older_shapes(&mut self, item: &Ident, module: &Ident) -> Vec<Generated> {
        let base = match &self.payload {
            Type::Path(p) if p.path.is_ident("Self") => item.clone(),
            Type::Path(p) => p
                .path
                .segments
                .last()
                .map_or_else(|| item.clone(), |s| s.ident.clone()),
            _ => item.clone(),
        };
        let mut written = Vec::new();
        for (version, hop) in &mut self.hops {
            let Some(fields) = hop.fields.take() else {
                continue;
            };
            let ident = quote::format_ident!("{}V{}", base, version, span = hop.key.span());
            let doc = format!(
                " Version {version} of `{}`, as stored; read through the upcast chain.",
                self.name
            );
            hop.ty = Some(syn::parse_quote!(#module::#ident));
            written.push(Generated {
                ident,
                docs: vec![quote::quote!(#[doc = #doc])],
                fields,
            });
        }
        written
    }

    fn name_or(&self, ident: &Ident) -> String {
        if self.name.is_empty() {
            ident.to_string()
        } else {
            self.name.clone()
        }
    }

    fn name_span_or(&self, ident: &Ident) -> Span {
        if self.name.is_empty() {
            ident.span()
        } else {
            self.name_span
        }
    }

    /// The Rust type of stored version `version`, if it has one.
    pub fn type_of(&self, version: u32) -> Option<&Type> {
        if version == self.version {
            Some(&self.payload)
        } else {
            self.hops.get(&version).and_then(|h| h.ty.as_ref())
        }
    }

    /// Where to point an error about this event's version.
    pub fn version_span(&self) -> TokenStream {
        match &self.version_lit {
            Some(lit) => lit.to_token_stream(),
            None => {
                let span = self.name_span;
                quote::quote_spanned!(span=> version)
            }
        }
    }
}
