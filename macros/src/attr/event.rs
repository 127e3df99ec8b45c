//! `#[event(...)]`: on an event variant (or a standalone event struct) the stored name,
//! aliases, version and upcast chain; on the enum, the crate path and what the payload structs
//! it writes also get.

use std::collections::BTreeMap;

use proc_macro2::Span;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Attribute, LitInt, LitStr, Path, Token, Type};

use super::{
    Errors, Once, parse_attrs, parse_crate_path, parse_payload_option, parse_positive,
    parse_string, path_str, skip_value,
};
use crate::ast::PayloadOptions;

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
            true,
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
        errors.twice(
            first.key.span(),
            key.span(),
            format!(
                "duplicate upcast from version {version} (both are marked); give `{name}` once"
            ),
        );
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
