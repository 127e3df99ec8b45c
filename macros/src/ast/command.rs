//! The model of a `#[derive(Command)]` input: its command types.

use proc_macro2::Span;
use syn::{Data, DeriveInput, Generics, Ident, Path, Type};

use super::{
    PayloadOptions, Payloads, Shape, check_generated_generics, check_item, payload_module,
    variant_payload,
};
use crate::attr::{self, CommandAttrs, Errors};

pub struct CommandDef<'a> {
    pub variant: Option<&'a Ident>,
    pub payload: Type,
    pub shape: Shape,
    pub name: String,
    pub name_span: Span,
}

pub struct CommandInput<'a> {
    pub ident: &'a Ident,
    pub generics: &'a Generics,
    pub crate_path: Path,
    pub commands: Vec<CommandDef<'a>>,

    /// The payload structs written for named-field variants.
    pub payloads: Payloads<'a>,
}

impl<'a> CommandInput<'a> {
    pub fn from_syn(input: &'a DeriveInput, errors: &mut Errors) -> Option<Self> {
        check_item(input, "Command", errors);
        let module = payload_module(&input.ident);
        let mut generated = Vec::new();
        let mut options = PayloadOptions::default();
        let (crate_path, commands) = match &input.data {
            Data::Enum(data) => {
                let container = CommandAttrs::parse(&input.attrs, errors, true, false);
                if data.variants.is_empty() {
                    errors.error(
                        &input.ident,
                        "a command enum needs at least one variant, e.g. `Deposit(Deposit)`",
                    );
                }
                let commands = data
                    .variants
                    .iter()
                    .filter_map(|v| {
                        let attrs = CommandAttrs::parse(&v.attrs, errors, false, true);
                        let (payload, shape, written) =
                            variant_payload(v, &module, "command", errors)?;
                        generated.extend(written);
                        let (name, name_span) = match attrs.rename {
                            Some(lit) => (lit.value(), lit.span()),
                            None => (v.ident.to_string(), v.ident.span()),
                        };
                        Some(CommandDef {
                            variant: Some(&v.ident),
                            payload,
                            shape,
                            name,
                            name_span,
                        })
                    })
                    .collect();
                check_generated_generics(&input.generics, &generated, errors);
                options = container.payloads;
                (container.crate_path, commands)
            }
            Data::Struct(_) => {
                let attrs = CommandAttrs::parse(&input.attrs, errors, true, true);
                let (name, name_span) = match attrs.rename {
                    Some(lit) => (lit.value(), lit.span()),
                    None => (input.ident.to_string(), input.ident.span()),
                };
                let def = CommandDef {
                    variant: None,
                    payload: syn::parse_quote!(Self),
                    shape: Shape::Newtype,
                    name,
                    name_span,
                };
                (attrs.crate_path, vec![def])
            }
            Data::Union(_) => return None,
        };
        let crate_path = crate_path.unwrap_or_else(attr::default_crate_path);
        Some(CommandInput {
            ident: &input.ident,
            generics: &input.generics,
            crate_path: crate_path.clone(),
            commands,
            payloads: Payloads::of(input, crate_path, generated, options),
        })
    }
}
