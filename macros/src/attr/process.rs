//! `#[process_manager(...)]` on an impl block, and the markers of its methods: `#[start]` and
//! `#[existing]` (how an event finds its instance), `#[deadline("name")]` and `#[refused]`.

use proc_macro2::TokenStream;
use syn::{Attribute, Ident, LitStr, Path, Type};

use super::{
    Errors, Once, closest, parse_crate_path, parse_string, parse_type_list, path_str, read_key,
    skip_value,
};

/// The arguments of `#[process_manager(...)]`.
pub struct ProcessAttrs {
    pub aggregates: Option<(Vec<Type>, Path)>,
    pub contracts: Option<(Vec<Type>, Path)>,
    pub sends: Option<(Vec<Type>, Path)>,
    pub manager: Option<Type>,
    pub name: Option<LitStr>,
    pub crate_path: Option<Path>,
}

pub const PROCESS_KEYS: &str = "`aggregates`, `contracts`, `sends`, `manager`, `name`, `crate`";

impl ProcessAttrs {
    pub fn parse(args: TokenStream, errors: &mut Errors) -> Self {
        let mut aggregates = Once::new("aggregates");
        let mut contracts = Once::new("contracts");
        let mut sends = Once::new("sends");
        let mut manager = Once::new("manager");
        let mut name = Once::new("name");
        let mut crate_path = Once::new("crate");
        let parser = syn::meta::parser(|meta| {
            let Some(key) = read_key(&meta, "process_manager", PROCESS_KEYS, errors) else {
                return skip_value(&meta);
            };
            let p = &meta.path;
            match key {
                "aggregates" => {
                    let list = parse_type_list(&meta, errors)?;
                    aggregates.set(errors, p, list);
                }
                "contracts" => {
                    let list = parse_type_list(&meta, errors)?;
                    contracts.set(errors, p, list);
                }
                "sends" => {
                    let list = parse_type_list(&meta, errors)?;
                    sends.set(errors, p, list);
                }
                "manager" => manager.set(errors, p, meta.value()?.parse::<Type>()?),
                "name" => name.set(errors, p, parse_string(&meta, "name")?),
                _ => crate_path.set(errors, p, parse_crate_path(&meta)?),
            }
            Ok(())
        });
        let result = syn::parse::Parser::parse2(parser, args);
        errors.ok(result);
        ProcessAttrs {
            aggregates: aggregates.take(),
            contracts: contracts.take(),
            sends: sends.take(),
            manager: manager.take(),
            name: name.take(),
            crate_path: crate_path.take(),
        }
    }
}

/// Where an event's instance id comes from.
pub enum RouteKey {
    /// The id of the aggregate that recorded it (the default).
    AggregateId,
    /// A field of its payload, displayed.
    Field(Ident),
    /// The instance of this manager whose command recorded it, from the command's idempotency
    /// key.
    Caused,
}

/// `#[start]` / `#[existing]` on an event handler, with its key.
pub struct RouteAttr<'a> {
    pub attr: &'a Attribute,
    pub start: bool,
    pub key: RouteKey,
}

const ROUTE_KEYS: &str = "`field`, `caused`";

impl<'a> RouteAttr<'a> {
    /// Reads `#[start]`, `#[start(field = transfer_id)]`, `#[existing]`,
    /// `#[existing(field = transfer_id)]` or `#[existing(caused)]`.
    pub fn parse(attr: &'a Attribute, errors: &mut Errors) -> Option<Self> {
        let start = attr.path().is_ident("start");
        let marker = if start { "start" } else { "existing" };
        let mut key = RouteKey::AggregateId;
        if matches!(attr.meta, syn::Meta::List(_)) {
            let mut keys = 0;
            let result = attr.parse_nested_meta(|meta| {
                keys += 1;
                let written = path_str(&meta.path);
                match written.as_str() {
                    "field" => {
                        let field: Ident = meta.value()?.parse()?;
                        key = RouteKey::Field(field);
                    }
                    "caused" if start => {
                        errors.error(
                            &meta.path,
                            "`caused` finds an instance that exists (the one whose command recorded the event), so it cannot start one: write `#[existing(caused)]`",
                        );
                    }
                    "caused" => key = RouteKey::Caused,
                    other => {
                        let hint = match closest(other, ROUTE_KEYS) {
                            Some(likely) => format!("did you mean `{likely}`?"),
                            None => "expected `field = <payload field>` or, on `#[existing]`, `caused`; without either, the event's aggregate id is the instance id".to_owned(),
                        };
                        errors.error(
                            &meta.path,
                            format!("unknown key `{other}` in `#[{marker}(...)]`; {hint}"),
                        );
                        skip_value(&meta)?;
                    }
                }
                Ok(())
            });
            errors.ok(result)?;
            if keys > 1 {
                errors.error(
                    attr,
                    format!(
                        "`#[{marker}(...)]` takes one key: the instance id comes from one place"
                    ),
                );
                return None;
            }
        } else if let syn::Meta::NameValue(nv) = &attr.meta {
            errors.error(
                nv,
                format!("write `#[{marker}]` or `#[{marker}(field = <payload field>)]`"),
            );
            return None;
        }
        Some(RouteAttr { attr, start, key })
    }
}

/// `#[deadline("name")]`: the deadline's name.
pub fn parse_deadline(attr: &Attribute, errors: &mut Errors) -> Option<LitStr> {
    let parsed = attr.parse_args::<LitStr>().map_err(|_| {
        syn::Error::new_spanned(
            attr,
            "`#[deadline]` names the deadline this method handles: `#[deadline(\"credit\")]`, as scheduled by `effects.schedule(\"credit\", after)`",
        )
    });
    let name = errors.ok(parsed)?;
    if name.value().is_empty() {
        errors.error(&name, "the deadline's name is empty; name it as you schedule it, e.g. `#[deadline(\"credit\")]`");
        return None;
    }
    Some(name)
}

/// `#[refused]` takes no arguments.
pub fn parse_refused(attr: &Attribute, errors: &mut Errors) -> bool {
    if let syn::Meta::Path(_) = attr.meta {
        return true;
    }
    errors.error(
        attr,
        "`#[refused]` takes no arguments: it marks the one method told of every refused command, `fn name(&mut self, refused: &Refused, effects: &mut Effects<Self>)`",
    );
    false
}

/// The marker attributes of a process manager's methods.
pub const MARKERS: [&str; 4] = ["start", "existing", "deadline", "refused"];

/// Whether `attr` is one of [`MARKERS`].
pub fn is_marker(attr: &Attribute) -> bool {
    MARKERS.iter().any(|m| attr.path().is_ident(m))
}
