//! A model of each macro's input, built from the syn tree, keeping references to the syn nodes
//! so that every error can point at the user's own token.

use proc_macro2::TokenStream;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, Ident, Type};

use crate::attr::Errors;

mod aggregate;
mod command;
mod event;
mod handlers;
mod process;
mod projection;

pub use aggregate::AggregateInput;
pub use command::CommandInput;
pub use event::{EventDef, EventInput};

/// Rejects named-field variants in a generic enum: the payload struct written for them would
/// need the enum's parameters, which its fields may not all use.
pub(crate) fn check_generated_generics(
    generics: &syn::Generics,
    generated: &[Generated],
    errors: &mut Errors,
) {
    // Lifetimes are reported on their own (`check_item`).
    if generics.type_params().next().is_none() && generics.const_params().next().is_none() {
        return;
    }
    for g in generated {
        errors.error(
            &g.ident,
            format!(
                "variant `{0}` of a generic enum must wrap its payload type, `{0}({0})`: payload structs are generated only for enums without type parameters",
                g.ident
            ),
        );
    }
}
pub use handlers::{Applier, Handler, HandlerExtra, HandlersInput, Mark};
pub use process::{EventHandler as ProcessHandler, Method as ProcessMethod, Param, ProcessInput};
pub use projection::{EventHandler, Extra, ProjectionInput};

/// Rejects input kinds and generics the derives cannot support.
pub(crate) fn check_item(input: &DeriveInput, derive: &str, errors: &mut Errors) {
    if let Data::Union(u) = &input.data {
        errors.error(
            u.union_token,
            format!("`#[derive({derive})]` does not support unions; use an enum or a struct"),
        );
    }
    if let Some(lt) = input.generics.lifetimes().next() {
        errors.error(
            lt,
            format!(
                "`#[derive({derive})]` does not support lifetime parameters: stored and loaded values own their data; use `String` or `Vec` instead of borrowed fields"
            ),
        );
    }
    check_field_attributes(input, derive, errors);
    // An aggregate's attribute goes on the type; on a variant of an aggregate enum it would be
    // ignored (events' and commands' variants take theirs).
    if let (Data::Enum(data), "Aggregate") = (&input.data, derive) {
        for variant in &data.variants {
            for attr in variant
                .attrs
                .iter()
                .filter(|a| a.path().is_ident("aggregate"))
            {
                errors.beside(
                    attr,
                    format!(
                        "`#[aggregate(...)]` goes on the aggregate type `{}`, not on its variant `{}`, where nothing reads it: move it above the enum",
                        input.ident, variant.ident
                    ),
                );
            }
        }
    }
}

// The derive's own attribute is accepted by the compiler anywhere in the item, fields included,
// where the derive would never read it: `Opened(#[event(version = 2)] Opened)` would store the
// event as version 1. Rejected at the attribute, beside the full expansion.
fn check_field_attributes(input: &DeriveInput, derive: &str, errors: &mut Errors) {
    let helper = derive.to_lowercase();
    let fields: Vec<(&Fields, Option<&Ident>)> = match &input.data {
        Data::Struct(data) => vec![(&data.fields, None)],
        Data::Enum(data) => data
            .variants
            .iter()
            .map(|v| (&v.fields, Some(&v.ident)))
            .collect(),
        Data::Union(_) => Vec::new(),
    };
    for (fields, variant) in fields {
        for attr in fields.iter().flat_map(|f| &f.attrs) {
            if !attr.path().is_ident(&helper) {
                continue;
            }
            let fix = match variant {
                Some(variant) => format!(
                    "put it on the variant, before `{variant}`: `#[{helper}(...)] {variant}(...)`"
                ),
                None => format!(
                    "put it on the struct `{}`, beside `#[derive({derive})]`",
                    input.ident
                ),
            };
            errors.beside(
                attr,
                format!("`#[{helper}(...)]` on a field is ignored by `#[derive({derive})]`; {fix}"),
            );
        }
    }
}

/// How a variant carries its payload.
pub enum Shape {
    /// `Variant(Payload)`: the user's own payload type.
    Newtype,
    /// `Variant { a: A, b: B }` or a unit `Variant`: the macro writes `struct Variant { a, b }`,
    /// and the variant's fields move into and out of it.
    Named(Vec<Ident>),
}

/// A payload struct a derive writes from a field list: a named-field variant's, or an older
/// version's in `upcast(v1 { ... })`.
pub struct Generated {
    /// Its name, spanned at the variant (or the `vN` key) that declares it.
    pub ident: Ident,
    /// The variant's doc comments (or a generated one), shown by rustdoc and the JSON Schema.
    pub docs: Vec<TokenStream>,
    pub fields: Vec<syn::Field>,
}

/// The payload structs a derive writes for an enum, with what writing them needs.
pub struct Payloads<'a> {
    pub item: &'a Ident,
    pub generics: &'a syn::Generics,
    pub vis: &'a syn::Visibility,
    pub crate_path: syn::Path,
    pub generated: Vec<Generated>,
    pub options: PayloadOptions,
}

impl<'a> Payloads<'a> {
    pub fn of(
        input: &'a DeriveInput,
        crate_path: syn::Path,
        generated: Vec<Generated>,
        options: PayloadOptions,
    ) -> Self {
        Payloads {
            item: &input.ident,
            generics: &input.generics,
            vis: &input.vis,
            crate_path,
            generated,
            options,
        }
    }
}

/// What the user lists once on the enum for every payload struct it generates:
/// `#[event(derive(PartialEq), attr(serde(deny_unknown_fields)))]`.
#[derive(Default)]
pub struct PayloadOptions {
    pub derives: Vec<syn::Path>,
    pub attrs: Vec<syn::Meta>,
}

/// The payload of one variant: its type, how the variant holds it, and the struct to generate
/// for a named-field or unit variant.
/// The module the payload structs of an enum are written in, `__cqrs_<Enum>`: the derives'
/// impls name them through it, so that an item of the same name elsewhere in the user's module
/// is one clear error, not a cascade (see `expand/payload.rs`).
pub(crate) fn payload_module(item: &Ident) -> Ident {
    quote::format_ident!("__cqrs_{}", item)
}

pub(crate) fn variant_payload(
    variant: &syn::Variant,
    module: &Ident,
    what: &str,
    errors: &mut Errors,
) -> Option<(Type, Shape, Option<Generated>)> {
    let ident = &variant.ident;
    let named: Vec<syn::Field> = match &variant.fields {
        Fields::Unnamed(f) if f.unnamed.len() == 1 => {
            return Some((f.unnamed[0].ty.clone(), Shape::Newtype, None));
        }
        Fields::Named(f) => f.named.iter().cloned().collect(),
        Fields::Unit => Vec::new(),
        Fields::Unnamed(f) => {
            let kind = if what == "event" {
                "aggregates apply events by payload type"
            } else {
                "commands are routed to handlers by payload type"
            };
            errors.push(syn::Error::new(
                f.span(),
                format!(
                    "{what} variant `{ident}` has {} unnamed fields; name them, `{ident} {{ field: Type, ... }}`, or wrap one payload type, `{ident}({ident})`: {kind}",
                    f.unnamed.len()
                ),
            ));
            return None;
        }
    };
    let docs = variant
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .map(quote::ToTokens::to_token_stream)
        .collect();
    let shape = Shape::Named(named.iter().filter_map(|f| f.ident.clone()).collect());
    let ty: Type = syn::parse_quote!(#module::#ident);
    let generated = Generated {
        ident: ident.clone(),
        docs,
        fields: named,
    };
    Some((ty, shape, Some(generated)))
}

/// The type arguments of a path type's last segment: `T` and `E` of `Result<T, E>`, `A` of
/// `CommandContext<'_, A>`; none for any other type.
pub(crate) fn type_args(ty: &Type) -> Vec<&Type> {
    let Type::Path(p) = ty else {
        return Vec::new();
    };
    let Some(syn::PathArguments::AngleBracketed(args)) =
        p.path.segments.last().map(|s| &s.arguments)
    else {
        return Vec::new();
    };
    args.args
        .iter()
        .filter_map(|a| match a {
            syn::GenericArgument::Type(t) => Some(t),
            _ => None,
        })
        .collect()
}

/// The aggregates an impl block's attribute follows, `aggregates(...)`: reported when empty
/// (`empty`) or missing (`missing`, at the attribute's arguments or the `impl` token).
pub(crate) fn followed_aggregates(
    list: Option<(Vec<Type>, syn::Path)>,
    args: &TokenStream,
    item: &syn::ItemImpl,
    (empty, missing): (&str, &str),
    errors: &mut Errors,
) -> Vec<Type> {
    match list {
        Some((types, path)) => {
            if types.is_empty() {
                errors.error(&path, empty);
            }
            types
        }
        None => {
            let at = if args.is_empty() {
                item.impl_token.span
            } else {
                args.span()
            };
            errors.push(syn::Error::new(at, missing));
            Vec::new()
        }
    }
}

/// The last identifier of a type's path: what a type is named after.
pub(crate) fn type_ident(ty: &Type) -> Option<&Ident> {
    match ty {
        Type::Path(p) => p.path.segments.last().map(|s| &s.ident),
        _ => None,
    }
}

/// Whether a type's path ends in `name` (`StoredEvent`, `cqrs_runtime::StoredEvent`).
pub(crate) fn is_named(ty: &Type, name: &str) -> bool {
    matches!(ty, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == name))
}

/// A type without its reference, if it is one.
pub(crate) fn strip_ref(ty: &Type) -> &Type {
    match ty {
        Type::Reference(r) => &r.elem,
        other => other,
    }
}

/// For a `&self` or `&mut self` receiver, whether it is `&mut`; `None` for `self`, `mut self`
/// or `self: Type`.
pub(crate) fn borrowed_receiver(receiver: &syn::Receiver) -> Option<bool> {
    match &receiver.kind {
        syn::ReceiverKind::Reference(_, _, mutability) => Some(mutability.is_some()),
        _ => None,
    }
}

/// The impl block an attribute macro goes on. Anything else is one error at the item's first
/// token, naming where the attribute goes; the item is kept as written, so that its own uses
/// raise no second error.
pub(crate) fn impl_block(
    input: TokenStream,
    name: &str,
    place: &str,
) -> Result<syn::ItemImpl, TokenStream> {
    let item: syn::Item = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(error) => return Err(error.to_compile_error()),
    };
    match item {
        syn::Item::Impl(item) => Ok(item),
        other => {
            let error = syn::Error::new_spanned(
                item_keyword(&other),
                format!("`#[{name}]` goes on an impl block, not on this item; put it on {place}"),
            );
            let error = error.to_compile_error();
            Err(quote::quote!(#error #input))
        }
    }
}

/// The keyword that names an item's kind (`struct`, `enum`, `fn`, ...), where its error goes.
fn item_keyword(item: &syn::Item) -> TokenStream {
    use quote::ToTokens;
    match item {
        syn::Item::Struct(i) => i.struct_token.to_token_stream(),
        syn::Item::Enum(i) => i.enum_token.to_token_stream(),
        syn::Item::Fn(i) => i.sig.fn_token.to_token_stream(),
        syn::Item::Trait(i) => i.trait_token.to_token_stream(),
        syn::Item::Mod(i) => i.mod_token.to_token_stream(),
        other => other.to_token_stream(),
    }
}
