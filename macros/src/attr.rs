//! One struct per attribute, parsed with `parse_nested_meta`. Parsing never stops at the first
//! mistake: every unknown or duplicate key is recorded in [`Errors`] and parsing goes on, so a
//! user sees all of them in one build.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::parse::Parse;
use syn::{Attribute, LitInt, LitStr, Path, Token, Type};

use crate::ast::PayloadOptions;
use crate::ctxt::closest;
pub use crate::ctxt::{Errors, Once};

mod event;
pub mod process;

pub use event::{EventAttrs, Hop, HopKind};
pub use process::{ProcessAttrs, RouteAttr, RouteKey};

/// Reads the attributes named `name` with `parse_key` for each key; unknown keys are reported
/// by `parse_key` returning `Ok(false)`.
///
/// With `guess`, a misspelled key close to a known one is also read as that key, so that what
/// is emitted beside the error matches what the user meant and raises no second error (an
/// `upcasts(...)` read as `upcast(...)` leaves no version without its upcast).
pub fn parse_attrs(
    attrs: &[Attribute],
    name: &str,
    expected: &str,
    guess: bool,
    errors: &mut Errors,
    mut parse_key: impl FnMut(&str, &ParseNestedMeta<'_>, &mut Errors) -> syn::Result<bool>,
) {
    for attr in attrs.iter().filter(|a| a.path().is_ident(name)) {
        let result = attr.parse_nested_meta(|meta| {
            let key = path_str(&meta.path);
            if parse_key(&key, &meta, errors)? {
                return Ok(());
            }
            match closest(&key, expected) {
                Some(likely) => {
                    errors.error(
                        &meta.path,
                        format!(
                            "unknown key `{key}` in `#[{name}(...)]`; did you mean `{likely}`?"
                        ),
                    );
                    // Read as the likely key, so that its value takes effect; a value that
                    // does not fit that key either is passed over: the key is the mistake.
                    let read = guess
                        && parse_key(likely, &meta, &mut Errors::default()).unwrap_or_else(|_| {
                            skip_rest(&meta);
                            true
                        });
                    if !read {
                        skip_value(&meta)?;
                    }
                }
                None => {
                    errors.error(
                        &meta.path,
                        format!(
                            "unknown key `{key}` in `#[{name}(...)]`; expected one of: {expected}"
                        ),
                    );
                    skip_value(&meta)?;
                }
            }
            Ok(())
        });
        errors.ok(result);
    }
}

/// Passes over what is left of one `key = value` or `key(...)` entry, up to its comma.
fn skip_rest(meta: &syn::meta::ParseNestedMeta<'_>) {
    while !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
        if meta.input.parse::<proc_macro2::TokenTree>().is_err() {
            break;
        }
    }
}

/// Consumes `= value` or `(...)` after an unknown key, so parsing can go on.
pub(crate) fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.value()?.parse::<syn::Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in meta.input);
        content.parse::<proc_macro2::TokenStream>()?;
    }
    Ok(())
}

pub fn path_str(path: &Path) -> String {
    path.to_token_stream().to_string().replace(' ', "")
}

/// `crate = "path"`: where the runtime is, for a renamed dependency.
pub fn parse_crate_path(meta: &ParseNestedMeta<'_>) -> syn::Result<Path> {
    let lit: LitStr = meta.value()?.parse()?;
    lit.parse::<Path>().map_err(|_| {
        syn::Error::new(
            lit.span(),
            format!(
                "`crate = \"{}\"` is not a path; write the name the runtime is imported as, e.g. `crate = \"my_runtime\"`",
                lit.value()
            ),
        )
    })
}

pub fn default_crate_path() -> Path {
    syn::parse_quote!(::cqrs_runtime)
}

/// A string value, with an error that shows the quoted form.
pub fn parse_string(meta: &ParseNestedMeta<'_>, key: &str) -> syn::Result<LitStr> {
    let value = meta.value()?;
    if value.peek(LitStr) {
        return value.parse();
    }
    let given: syn::Expr = value.parse()?;
    let text = given.to_token_stream().to_string();
    Err(syn::Error::new_spanned(
        given,
        format!("`{key}` takes a string: write `{key} = \"{text}\"`"),
    ))
}

/// A positive integer such as a version or a snapshot interval.
pub fn parse_positive(meta: &ParseNestedMeta<'_>, key: &str) -> syn::Result<(u32, LitInt)> {
    let lit: LitInt = meta.value()?.parse()?;
    match lit.base10_parse::<u32>() {
        Ok(0) | Err(_) => Err(syn::Error::new(
            lit.span(),
            format!("`{key}` must be a whole number from 1, e.g. `{key} = 2`"),
        )),
        Ok(n) => Ok((n, lit)),
    }
}

/// `derive(A, B)` or `attr(meta)` on an enum: what every payload struct it generates also gets.
pub(crate) fn parse_payload_option(
    key: &str,
    meta: &ParseNestedMeta<'_>,
    options: &mut PayloadOptions,
) -> syn::Result<()> {
    let content;
    syn::parenthesized!(content in meta.input);
    if key == "derive" {
        let paths = content.parse_terminated(Path::parse_mod_style, Token![,])?;
        options.derives.extend(paths);
    } else {
        let metas = content.parse_terminated(syn::Meta::parse, Token![,])?;
        options.attrs.extend(metas);
    }
    Ok(())
}

// ------------------------------------------------------------------------- #[aggregate(...)]

/// `#[aggregate(...)]` on the state type.
pub struct AggregateAttrs {
    pub rename: Option<LitStr>,
    pub id: Option<Type>,
    pub event: Option<Type>,
    pub command: Option<Type>,
    pub error: Option<Type>,
    pub services: Option<Type>,
    pub snapshot_every: Option<(u32, LitInt)>,
    pub snapshot_version: Option<(u32, LitInt)>,
    pub ignore: Vec<Type>,
    pub crate_path: Option<Path>,
    /// The error of a handler that needs an existing aggregate, when there is none.
    pub missing: Option<syn::Expr>,
    /// The error of a `#[create]` handler, when the aggregate exists.
    pub exists: Option<syn::Expr>,
}

pub const AGGREGATE_KEYS: &str = "`rename`, `id`, `event`, `command`, `error`, `services`, `missing`, `exists`, `snapshot_every`, `snapshot_version`, `ignore`, `crate`";

impl AggregateAttrs {
    pub fn parse(attrs: &[Attribute], errors: &mut Errors) -> Self {
        let mut rename = Once::new("rename");
        let mut id = Once::new("id");
        let mut event = Once::new("event");
        let mut command = Once::new("command");
        let mut error = Once::new("error");
        let mut services = Once::new("services");
        let mut snapshot_every = Once::new("snapshot_every");
        let mut snapshot_version = Once::new("snapshot_version");
        let mut crate_path = Once::new("crate");
        let mut missing = Once::new("missing");
        let mut exists = Once::new("exists");
        let mut ignore = Vec::new();
        parse_attrs(
            attrs,
            "aggregate",
            AGGREGATE_KEYS,
            true,
            errors,
            |key, meta, errors| {
                let p = &meta.path;
                match key {
                    "rename" => rename.set(errors, p, parse_string(meta, key)?),
                    "id" => id.set(errors, p, meta.value()?.parse()?),
                    "event" => event.set(errors, p, meta.value()?.parse()?),
                    "command" => command.set(errors, p, meta.value()?.parse()?),
                    "error" => error.set(errors, p, meta.value()?.parse()?),
                    "services" => services.set(errors, p, meta.value()?.parse()?),
                    "missing" => missing.set(errors, p, meta.value()?.parse()?),
                    "exists" => exists.set(errors, p, meta.value()?.parse()?),
                    "snapshot_every" => {
                        snapshot_every.set(errors, p, parse_positive(meta, "snapshot_every")?)
                    }
                    "snapshot_version" => {
                        snapshot_version.set(errors, p, parse_positive(meta, "snapshot_version")?)
                    }
                    "crate" => crate_path.set(errors, p, parse_crate_path(meta)?),
                    "ignore" => {
                        let content;
                        syn::parenthesized!(content in meta.input);
                        let types = content.parse_terminated(Type::parse, Token![,])?;
                        ignore.extend(types);
                    }
                    _ => return Ok(false),
                }
                Ok(true)
            },
        );
        AggregateAttrs {
            rename: rename.take(),
            id: id.take(),
            event: event.take(),
            command: command.take(),
            error: error.take(),
            services: services.take(),
            snapshot_every: snapshot_every.take(),
            snapshot_version: snapshot_version.take(),
            ignore,
            crate_path: crate_path.take(),
            missing: missing.take(),
            exists: exists.take(),
        }
    }
}

// --------------------------------------------------------------------------- #[command(...)]

/// `#[command(...)]` on a command enum or struct, or on a variant.
pub struct CommandAttrs {
    pub rename: Option<LitStr>,
    pub crate_path: Option<Path>,
    /// On an enum: what its generated payload structs also get.
    pub payloads: PayloadOptions,
}

impl CommandAttrs {
    pub fn parse(attrs: &[Attribute], errors: &mut Errors, container: bool, named: bool) -> Self {
        let expected = match (container, named) {
            (true, true) => "`crate`, `rename`",
            (true, false) => "`crate`, `derive`, `attr`",
            _ => "`rename`",
        };
        let mut rename = Once::new("rename");
        let mut crate_path = Once::new("crate");
        let mut payloads = PayloadOptions::default();
        parse_attrs(
            attrs,
            "command",
            expected,
            true,
            errors,
            |key, meta, errors| {
                match key {
                    "crate" if container => {
                        crate_path.set(errors, &meta.path, parse_crate_path(meta)?)
                    }
                    "rename" if named => rename.set(errors, &meta.path, parse_string(meta, key)?),
                    "derive" | "attr" if container && !named => {
                        parse_payload_option(key, meta, &mut payloads)?;
                    }
                    _ => return Ok(false),
                }
                Ok(true)
            },
        );
        CommandAttrs {
            rename: rename.take(),
            crate_path: crate_path.take(),
            payloads,
        }
    }
}

/// `key(A, B)`: a list of types, with the path of its key. `key = A` is reported and read as
/// the list it meant.
pub fn parse_type_list(
    meta: &ParseNestedMeta<'_>,
    errors: &mut Errors,
) -> syn::Result<(Vec<Type>, Path)> {
    let key = path_str(&meta.path);
    if meta.input.peek(Token![=]) {
        let ty: Type = meta.value()?.parse()?;
        errors.error(
            &ty,
            format!(
                "`{key}` takes a list: write `{key}({})`",
                ty.to_token_stream()
            ),
        );
        return Ok((vec![ty], meta.path.clone()));
    }
    let content;
    syn::parenthesized!(content in meta.input);
    let types = content.parse_terminated(Type::parse, Token![,])?;
    Ok((types.into_iter().collect(), meta.path.clone()))
}

/// The known key of `keys` that `meta` names in `#[attr(...)]`. A misspelled key close to a
/// known one is reported, then read as that key, so that the one mistake is the one error;
/// `None` (reported) for a key like no known one, whose value the caller skips.
pub fn read_key(
    meta: &ParseNestedMeta<'_>,
    attr: &str,
    keys: &'static str,
    errors: &mut Errors,
) -> Option<&'static str> {
    let written = path_str(&meta.path);
    let exact = keys
        .split(", ")
        .map(|k| k.trim_matches('`'))
        .find(|k| *k == written);
    if exact.is_some() {
        return exact;
    }
    let likely = closest(&written, keys);
    let hint = match likely {
        Some(likely) => format!("did you mean `{likely}`?"),
        None => format!("expected one of: {keys}"),
    };
    errors.error(
        &meta.path,
        format!("unknown key `{written}` in `#[{attr}(...)]`; {hint}"),
    );
    likely
}

// ------------------------------------------------------------------------ #[projection(...)]

/// The arguments of `#[projection(...)]` on an impl block.
pub struct ProjectionAttrs {
    pub aggregates: Option<(Vec<Type>, Path)>,
    pub name: Option<LitStr>,
    pub version: Option<(u32, LitInt)>,
    pub crate_path: Option<Path>,
}

pub const PROJECTION_KEYS: &str = "`aggregates`, `name`, `version`, `crate`";

impl ProjectionAttrs {
    pub fn parse(args: TokenStream, errors: &mut Errors) -> Self {
        let mut aggregates = Once::new("aggregates");
        let mut name = Once::new("name");
        let mut version = Once::new("version");
        let mut crate_path = Once::new("crate");
        let parser = syn::meta::parser(|meta| {
            let Some(key) = read_key(&meta, "projection", PROJECTION_KEYS, errors) else {
                return skip_value(&meta);
            };
            let p = &meta.path;
            match key {
                "aggregates" => {
                    let list = parse_type_list(&meta, errors)?;
                    aggregates.set(errors, p, list);
                }
                "name" => name.set(errors, p, parse_string(&meta, "name")?),
                "version" => version.set(errors, p, parse_positive(&meta, "version")?),
                _ => crate_path.set(errors, p, parse_crate_path(&meta)?),
            }
            Ok(())
        });
        let result = syn::parse::Parser::parse2(parser, args);
        errors.ok(result);
        ProjectionAttrs {
            aggregates: aggregates.take(),
            name: name.take(),
            version: version.take(),
            crate_path: crate_path.take(),
        }
    }
}
