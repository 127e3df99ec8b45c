//! A model of each macro's input, built from the syn tree, keeping references to the syn nodes
//! so that every error can point at the user's own token.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, Ident, Type};

use crate::attr::Errors;

mod aggregate;
mod command;
mod event;
mod handlers;
mod projection;

pub use aggregate::AggregateInput;
pub use command::CommandInput;
pub use event::{EventDef, EventInput};
pub use handlers::{Applier, Handler, HandlerExtra, HandlersInput};
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
}

/// The one field of `Variant(Payload)`.
pub(crate) fn single_field(
    fields: &Fields,
    ident: &Ident,
    what: &str,
    errors: &mut Errors,
) -> Option<Type> {
    match fields {
        Fields::Unnamed(f) if f.unnamed.len() == 1 => Some(f.unnamed[0].ty.clone()),
        _ => {
            let kind = if what == "event" {
                "aggregates apply events by payload type"
            } else {
                "commands are routed to handlers by payload type"
            };
            errors.push(syn::Error::new(
                fields_span(fields, ident),
                format!(
                    "{what} variant `{ident}` must wrap exactly one payload type, e.g. `{ident}({ident})`: {kind}"
                ),
            ));
            None
        }
    }
}

pub(crate) fn fields_span(fields: &Fields, ident: &Ident) -> Span {
    match fields {
        Fields::Unit => ident.span(),
        other => other.span(),
    }
}
