//! One struct per attribute, parsed with `parse_nested_meta`. Parsing never stops at the first
//! mistake: every unknown or duplicate key is recorded in [`Errors`] and parsing goes on, so a
//! user sees all of them in one build.

use std::collections::BTreeMap;

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Attribute, LitInt, LitStr, Path, Token, Type};

use crate::ast::PayloadOptions;
use crate::ctxt::closest;
pub use crate::ctxt::{Errors, Once};

/// Reads the attributes named `name` with `parse_key` for each key; unknown keys are reported
/// by `parse_key` returning `Ok(false)`.
///
/// With `guess`, a misspelled key close to a known one is also read as that key, so that the
/// stub impl emitted beside the error matches what the user meant.
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
                    if !(guess && parse_key(likely, &meta, &mut Errors::default())?) {
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

/// Consumes `= value` or `(...)` after an unknown key, so parsing can go on.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.value()?.parse::<syn::Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        let _content;
        syn::parenthesized!(_content in meta.input);
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
fn parse_payload_option(
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

// ----------------------------------------------------------------------------- #[event(...)]

/// How stored version N becomes version N + 1.
pub enum HopKind {
    /// `vN = Type`: `From<Type> for <type of N + 1>`.
    From,
    /// `vN(ty = Type, with = path)`: `path(Type) -> <type of N + 1>`.
    With(Path),
    /// `vN(json = path)`: `path(Value) -> Result<Value, E>`, over the raw JSON.
    Json(Path),
    /// `vN { fields } => expr` or `vN = Type => expr`: `expr`, a closure or a function path,
    /// called as `FnOnce(<type of N>) -> <type of N + 1>`.
    Fn(syn::Expr),
}

pub struct Hop {
    /// The `vN` key, for error spans.
    pub key: syn::Ident,
    /// The shape of version N, if known as a Rust type.
    pub ty: Option<Type>,
    /// `vN { fields }`: the shape of version N as a field list; the derive writes its struct.
    pub fields: Option<Vec<syn::Field>>,
    pub kind: HopKind,
}

/// `#[event(...)]` on an event variant, or on an event struct.
pub struct EventAttrs {
    pub rename: Option<LitStr>,
    pub aliases: Vec<LitStr>,
    pub version: Option<(u32, LitInt)>,
    pub upcast: BTreeMap<u32, Hop>,
    /// The whole `upcast(...)`, for errors about what it lacks.
    pub upcast_span: Option<Span>,
    /// `upcast(...)` had a syntax error (reported); chain checks would only repeat it.
    pub upcast_broken: bool,
    pub crate_path: Option<Path>,
    /// On an enum: what its generated payload structs also get.
    pub payloads: PayloadOptions,
}

pub const EVENT_KEYS: &str = "`rename`, `alias`, `version`, `upcast`";
pub const EVENT_CONTAINER_KEYS: &str = "`crate`, `rename`, `alias`, `version`, `upcast`";
pub const EVENT_ENUM_KEYS: &str = "`crate`, `derive`, `attr`";

impl EventAttrs {
    /// Parses `#[event(...)]`; `container` allows `crate`, `per_event` allows the rest.
    pub fn parse(
        attrs: &[Attribute],
        errors: &mut Errors,
        container: bool,
        per_event: bool,
    ) -> Self {
        let expected = match (container, per_event) {
            (true, true) => EVENT_CONTAINER_KEYS,
            (true, false) => EVENT_ENUM_KEYS,
            _ => EVENT_KEYS,
        };
        let mut rename = Once::new("rename");
        let mut version = Once::new("version");
        let mut crate_path = Once::new("crate");
        let mut aliases = Vec::new();
        let mut upcast = BTreeMap::new();
        let mut upcast_span = None;
        let mut upcast_broken = false;
        let mut payloads = PayloadOptions::default();
        parse_attrs(
            attrs,
            "event",
            expected,
            false,
            errors,
            |key, meta, errors| {
                match key {
                    "crate" if container => {
                        crate_path.set(errors, &meta.path, parse_crate_path(meta)?)
                    }
                    "rename" if per_event => {
                        rename.set(errors, &meta.path, parse_string(meta, key)?)
                    }
                    "alias" if per_event => aliases.push(parse_string(meta, key)?),
                    "derive" | "attr" if container && !per_event => {
                        parse_payload_option(key, meta, &mut payloads)?;
                    }
                    "version" if per_event => {
                        version.set(errors, &meta.path, parse_positive(meta, "version")?)
                    }
                    "upcast" if per_event => {
                        upcast_span = Some(meta.path.span());
                        let parsed = meta.parse_nested_meta(|hop| {
                            upcast_broken |= !parse_hop(&hop, &mut upcast, errors)?;
                            Ok(())
                        });
                        if let Err(error) = parsed {
                            errors.push(error);
                            upcast_broken = true;
                        }
                    }
                    "rename" | "alias" | "version" | "upcast" => {
                        errors.error(
                        &meta.path,
                        format!(
                            "`{key}` describes one event: put it on the variant, not on the enum"
                        ),
                    );
                        skip_value(meta)?;
                    }
                    _ => return Ok(false),
                }
                Ok(true)
            },
        );
        EventAttrs {
            rename: rename.take(),
            aliases,
            version: version.take(),
            upcast,
            upcast_span,
            upcast_broken,
            crate_path: crate_path.take(),
            payloads,
        }
    }
}

/// One `vN = Type` or `vN(...)` inside `upcast(...)`. Returns `false` for a key that names no
/// version (reported, and its value skipped).
fn parse_hop(
    meta: &ParseNestedMeta<'_>,
    hops: &mut BTreeMap<u32, Hop>,
    errors: &mut Errors,
) -> syn::Result<bool> {
    let name = path_str(&meta.path);
    let version = name
        .strip_prefix('v')
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| *n > 0);
    let (Some(version), Some(key)) = (version, meta.path.get_ident().cloned()) else {
        errors.error(
            &meta.path,
            format!(
                "`{name}` is not a version key; write `v1 {{ field: Type }} => |v1| ...`, `v1 = OldType`, `v2(ty = OldType, with = path::to::fn)` or `v1(json = path::to::fn)`"
            ),
        );
        skip_value(meta)?;
        return Ok(false);
    };
    let hop = if meta.input.peek(syn::token::Brace) {
        let fields: syn::FieldsNamed = meta.input.parse()?;
        Hop {
            key: key.clone(),
            ty: None,
            fields: Some(fields.named.into_iter().collect()),
            kind: parse_arrow(meta)?,
        }
    } else if meta.input.peek(Token![=]) {
        let ty: Type = meta.value()?.parse()?;
        Hop {
            key: key.clone(),
            ty: Some(ty),
            fields: None,
            kind: parse_arrow(meta)?,
        }
    } else {
        let mut ty = Once::new("ty");
        let mut with = Once::new("with");
        let mut json = Once::new("json");
        meta.parse_nested_meta(|inner| {
            let k = path_str(&inner.path);
            match k.as_str() {
                "ty" => ty.set(errors, &inner.path, inner.value()?.parse::<Type>()?),
                "with" => with.set(errors, &inner.path, inner.value()?.parse::<Path>()?),
                "json" => json.set(errors, &inner.path, inner.value()?.parse::<Path>()?),
                _ => {
                    errors.error(
                        &inner.path,
                        format!(
                            "unknown key `{k}` in `{name}(...)`; expected one of: `ty`, `with`, `json`"
                        ),
                    );
                    skip_value(&inner)?;
                }
            }
            Ok(())
        })?;
        let kind = match (with.take(), json.take()) {
            (Some(_), Some(json)) => {
                return Err(syn::Error::new_spanned(
                    json,
                    format!("`{name}` has both `with` and `json`; a hop is one function: keep one"),
                ));
            }
            (Some(with), None) => HopKind::With(with),
            (None, Some(json)) => HopKind::Json(json),
            (None, None) if ty.get().is_some() => HopKind::From,
            (None, None) => {
                return Err(syn::Error::new(
                    key.span(),
                    format!(
                        "`{name}(...)` needs `ty = OldType`, `with = path::to::fn` or `json = path::to::fn`"
                    ),
                ));
            }
        };
        let ty = ty.take();
        if let (HopKind::With(with), None) = (&kind, &ty) {
            return Err(syn::Error::new_spanned(
                with,
                format!(
                    "`with` converts a typed version: add the stored shape, `{name}(ty = OldType, with = ...)`"
                ),
            ));
        }
        Hop {
            key: key.clone(),
            ty,
            fields: None,
            kind,
        }
    };
    if let Some(first) = hops.get(&version) {
        errors.error(
            &key,
            format!("duplicate upcast from version {version}; give `{name}` once"),
        );
        errors.error(&first.key, format!("first `{name}` here"));
    } else {
        hops.insert(version, hop);
    }
    Ok(true)
}

/// `=> expr` after a version's shape: the hop function; without it, a `From` impl.
fn parse_arrow(meta: &ParseNestedMeta<'_>) -> syn::Result<HopKind> {
    if meta.input.peek(Token![=>]) {
        meta.input.parse::<Token![=>]>()?;
        Ok(HopKind::Fn(meta.input.parse()?))
    } else {
        Ok(HopKind::From)
    }
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

use syn::parse::Parse;

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
            false,
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
            let written = path_str(&meta.path);
            // A misspelled key close to a known one is reported, then read as that key, so
            // that the one mistake is the one error.
            let likely = closest(&written, PROJECTION_KEYS);
            let key = match likely {
                _ if PROJECTION_KEYS.contains(&format!("`{written}`")) => written.as_str(),
                Some(likely) => {
                    errors.error(
                        &meta.path,
                        format!("unknown key `{written}` in `#[projection(...)]`; did you mean `{likely}`?"),
                    );
                    likely
                }
                None => {
                    errors.error(
                        &meta.path,
                        format!("unknown key `{written}` in `#[projection(...)]`; expected one of: {PROJECTION_KEYS}"),
                    );
                    return skip_value(&meta);
                }
            };
            let p = &meta.path;
            match key {
                "aggregates" => {
                    let content;
                    syn::parenthesized!(content in meta.input);
                    let types = content.parse_terminated(Type::parse, Token![,])?;
                    aggregates.set(errors, p, (types.into_iter().collect(), p.clone()));
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
