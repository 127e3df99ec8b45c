//! What the SQL stores share: validated table names, statements addressed by type, the checks
//! that turn a row's columns into a [`StoredEvent`] without trusting them, and (in the
//! submodules) the one projection target, snapshot and migration code both databases run
//! through their [`Dialect`](dialect::Dialect).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::contract::error::StoreError;
use crate::contract::event::{LogPosition, Metadata, StoredEvent, StoredEventRef};

pub(crate) mod dialect;
pub(crate) mod store;
pub(crate) mod target;

/// The store's tables, named from a validated prefix (SQLite's; PostgreSQL names a schema).
#[cfg(feature = "sqlite")]
#[derive(Debug, Clone)]
pub(crate) struct Tables {
    pub events: String,
    pub snapshots: String,
    pub migrations: String,
    pub checkpoints: String,
    pub dead_letters: String,
    pub projection_versions: String,
    pub leases: String,
    pub inbox: String,
    pub commands: String,
    pub process_instances: String,
    pub process_deadlines: String,
    pub process_archive: String,
    pub process_refusals: String,
}

/// Accepts only ASCII letters (lowercase ones if `lowercase`), digits and underscores, starting
/// with a letter or an underscore, at most `max` bytes (`empty_ok` for a prefix). Configuration
/// goes into SQL as identifiers, so anything else is refused rather than quoted.
pub(crate) fn check_identifier(
    value: &str,
    what: &str,
    lowercase: bool,
    empty_ok: bool,
    max: usize,
) -> Result<(), StoreError> {
    let letter = |c: char| {
        c == '_'
            || if lowercase {
                c.is_ascii_lowercase()
            } else {
                c.is_ascii_alphabetic()
            }
    };
    let valid = (empty_ok || !value.is_empty())
        && value.len() <= max
        && value.chars().next().is_none_or(letter)
        && value.chars().all(|c| letter(c) || c.is_ascii_digit());
    if valid {
        return Ok(());
    }
    let letters = if lowercase {
        "lowercase ASCII letters"
    } else {
        "ASCII letters"
    };
    Err(StoreError::Config(format!(
        "{what} {value:?} is not allowed; use up to {max} {letters}, digits and underscores, starting with a letter or an underscore, e.g. \"cqrs_\""
    )))
}

#[cfg(feature = "sqlite")]
impl Tables {
    /// Table names from a prefix of ASCII letters, digits and underscores, starting with a letter
    /// or an underscore. Anything else could change the meaning of the SQL; an empty prefix would
    /// name the tables `events`, `snapshots`..., which the application's own tables may be.
    pub fn with_prefix(prefix: &str) -> Result<Self, StoreError> {
        check_identifier(prefix, "table prefix", false, false, 40)?;
        Ok(Tables {
            events: format!("{prefix}events"),
            snapshots: format!("{prefix}snapshots"),
            migrations: format!("{prefix}schema_migrations"),
            checkpoints: format!("{prefix}projection_checkpoints"),
            dead_letters: format!("{prefix}projection_dead_letters"),
            projection_versions: format!("{prefix}projection_versions"),
            leases: format!("{prefix}projection_leases"),
            inbox: format!("{prefix}bus_inbox"),
            commands: format!("{prefix}commands"),
            process_instances: format!("{prefix}process_instances"),
            process_deadlines: format!("{prefix}process_deadlines"),
            process_archive: format!("{prefix}process_archive"),
            process_refusals: format!("{prefix}process_refusals"),
        })
    }

    /// Fills the table placeholders (`{events}`, `{snapshots}`, `{checkpoints}`, ...) of an SQL
    /// template.
    pub fn render(&self, template: &str) -> String {
        template
            .replace("{events}", &self.events)
            .replace("{snapshots}", &self.snapshots)
            .replace("{migrations}", &self.migrations)
            .replace("{checkpoints}", &self.checkpoints)
            .replace("{dead_letters}", &self.dead_letters)
            .replace("{projection_versions}", &self.projection_versions)
            .replace("{leases}", &self.leases)
            .replace("{inbox}", &self.inbox)
            .replace("{commands}", &self.commands)
            .replace("{process_instances}", &self.process_instances)
            .replace(
                "{process_deadlines_due}",
                &format!("{}_due", self.process_deadlines),
            )
            .replace("{process_deadlines}", &self.process_deadlines)
            .replace("{process_archive}", &self.process_archive)
            .replace(
                "{process_refusals_by_instance}",
                &format!("{}_by_instance", self.process_refusals),
            )
            .replace("{process_refusals}", &self.process_refusals)
    }
}

/// A set of statements kept in a file of named queries, addressed by variant: a statement
/// that is not in the file is caught by the test every set has, never by a wrong query at run
/// time. Written with [`named_statements!`].
pub(crate) trait NamedStatement: Copy + 'static {
    /// Every statement of the set, in declaration order.
    const ALL: &'static [Self];
    /// Its `-- name: ` in the file.
    fn name(self) -> &'static str;
    /// Its place in [`ALL`](Self::ALL).
    fn index(self) -> usize;
}

/// Declares an enum of named statements: `Variant = "name_in_the_file"`.
macro_rules! named_statements {
    ($(#[$meta:meta])* $vis:vis enum $set:ident { $($variant:ident = $name:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $set {
            $($variant),*
        }

        impl $crate::stores::sql::NamedStatement for $set {
            const ALL: &'static [Self] = &[$($set::$variant),*];

            fn name(self) -> &'static str {
                match self {
                    $($set::$variant => $name),*
                }
            }

            fn index(self) -> usize {
                self as usize
            }
        }
    };
}
pub(crate) use named_statements;

/// The statements of one set, rendered once with the store's table names.
#[derive(Debug)]
pub(crate) struct Statements<S> {
    /// sqlx's shared strings: a query clones one without copying the text.
    sql: Box<[sqlx::SqlStr]>,
    set: std::marker::PhantomData<S>,
}

impl<S: NamedStatement> Statements<S> {
    /// Takes the set's statements from a file of named queries: each starts at a
    /// `-- name: <name>` line and runs to the next one; other comment lines are dropped.
    pub(crate) fn new(file: &str, render: impl Fn(&str) -> String) -> Self {
        let found = parse_named(file);
        let sql = S::ALL
            .iter()
            .map(|s| {
                let sql = render(found.get(s.name()).map_or("", |sql| sql.trim()));
                // Our own statements, with identifiers the store's configuration checked.
                sqlx::SqlSafeStr::into_sql_str(sqlx::AssertSqlSafe(sql))
            })
            .collect();
        Statements {
            sql,
            set: std::marker::PhantomData,
        }
    }

    pub(crate) fn get(&self, statement: S) -> &str {
        self.sql[statement.index()].as_str()
    }

    /// The statement, for `sqlx::query`.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn query(&self, statement: S) -> sqlx::SqlStr {
        self.sql[statement.index()].clone()
    }

    /// The statements of the set that `file` lacks, and those whose rendering left a
    /// placeholder: for each set's test.
    #[cfg(test)]
    pub(crate) fn check(file: &str, render: impl Fn(&str) -> String) -> Vec<String> {
        let statements = Statements::<S>::new(file, render);
        S::ALL
            .iter()
            .filter_map(|&s| {
                let sql = statements.get(s);
                if sql.is_empty() {
                    Some(format!("no statement named {}", s.name()))
                } else if sql.contains('{') {
                    Some(format!("{} has an unrendered placeholder: {sql}", s.name()))
                } else {
                    None
                }
            })
            .collect()
    }
}

fn parse_named(file: &str) -> std::collections::HashMap<&str, String> {
    let mut found = std::collections::HashMap::new();
    let mut current: Option<(&str, String)> = None;
    for line in file.lines() {
        if let Some(name) = line.strip_prefix("-- name: ") {
            found.extend(current.take());
            current = Some((name.trim(), String::new()));
        } else if let Some((_, sql)) = &mut current
            && !line.trim_start().starts_with("--")
        {
            sql.push_str(line);
            sql.push('\n');
        }
    }
    found.extend(current);
    found
}

/// A row of the events table as the database returned it, before any check, borrowed from
/// the row.
pub(crate) struct EventRow<'a> {
    /// The transaction that wrote the row, where the store records one (PostgreSQL).
    pub transaction: Option<i64>,
    pub position: i64,
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    pub sequence: i64,
    pub event_id: Uuid,
    pub event_type: &'a str,
    pub event_version: i64,
    pub payload: &'a str,
    pub metadata: &'a str,
    pub recorded_at: DateTime<Utc>,
}

impl<'a> EventRow<'a> {
    /// Checks every column; a bad one is a [`StoreError::Corrupt`] naming the row.
    pub fn lend(self) -> Result<StoredEventRef<'a>, StoreError> {
        let corrupt = |what: String| {
            StoreError::Corrupt(format!(
                "{} `{}` sequence {} (position {}): {what}",
                self.aggregate_type, self.aggregate_id, self.sequence, self.position
            ))
        };
        let event = u64::try_from(self.position)
            .map_err(|_| corrupt(format!("negative position {}", self.position)))?;
        let position = match self.transaction {
            None => LogPosition::serial(event),
            Some(t) => LogPosition {
                transaction: u64::try_from(t)
                    .map_err(|_| corrupt(format!("negative transaction id {t}")))?,
                event,
            },
        };
        let sequence = u64::try_from(self.sequence)
            .ok()
            .filter(|s| *s > 0)
            .ok_or_else(|| corrupt("sequence below 1".into()))?;
        let event_version = u32::try_from(self.event_version)
            .map_err(|_| corrupt(format!("event version {} out of range", self.event_version)))?;
        let metadata = decode_metadata(self.metadata)
            .map_err(|e| corrupt(format!("metadata is not valid: {e}")))?;
        Ok(StoredEventRef {
            aggregate_type: self.aggregate_type,
            aggregate_id: self.aggregate_id,
            sequence,
            position,
            event_id: self.event_id,
            event_type: self.event_type,
            event_version,
            recorded_at: self.recorded_at,
            metadata,
            event: self.payload,
        })
    }

    /// Checks every column and copies the row into an owned event.
    pub fn into_stored(self) -> Result<StoredEvent, StoreError> {
        self.lend().map(|event| event.to_stored())
    }
}

/// The tokio runtime the store's background task runs on; outside one, a clear error instead
/// of tokio's panic.
pub(crate) fn tokio_handle(store: &str) -> Result<tokio::runtime::Handle, StoreError> {
    tokio::runtime::Handle::try_current().map_err(|_| {
        StoreError::Config(format!(
            "the {store} store runs a background task and must be opened inside a tokio runtime, e.g. from `#[tokio::main]`"
        ))
    })
}

/// What most events carry, lent to readers.
static NO_METADATA: Metadata = Metadata::EMPTY;

/// Metadata read back; most events carry none, and skip the parser.
pub(crate) fn decode_metadata(
    text: &str,
) -> Result<std::borrow::Cow<'static, Metadata>, serde_json::Error> {
    if text == "{}" {
        Ok(std::borrow::Cow::Borrowed(&NO_METADATA))
    } else {
        serde_json::from_str(text).map(std::borrow::Cow::Owned)
    }
}

/// Metadata as stored: a JSON object, `{}` when empty.
pub(crate) fn encode_metadata(metadata: &Metadata) -> String {
    // Serializing plain strings and UUIDs into a String cannot fail.
    serde_json::to_string(metadata).unwrap_or_else(|_| "{}".to_owned())
}

/// A `u64` held in a signed 64-bit column, bit for bit.
pub(crate) fn u64_to_i64(n: u64) -> i64 {
    i64::from_ne_bytes(n.to_ne_bytes())
}

/// The inverse of [`u64_to_i64`].
pub(crate) fn i64_to_u64(n: i64) -> u64 {
    u64::from_ne_bytes(n.to_ne_bytes())
}

/// A count or version that must fit a signed 64-bit column.
pub(crate) fn to_i64(n: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(n)
        .map_err(|_| StoreError::Config(format!("{what} {n} does not fit a 64-bit SQL integer")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_identifiers_only() {
        assert!(Tables::with_prefix("cqrs_").is_ok());
        assert!(Tables::with_prefix("_x1").is_ok());
        for bad in [
            "",
            "1x",
            "a-b",
            "x; DROP TABLE y",
            "x\"",
            "é",
            "a b",
            &"x".repeat(41),
        ] {
            let error = Tables::with_prefix(bad).unwrap_err();
            assert!(error.to_string().contains("table prefix"), "{bad}: {error}");
        }
    }

    #[test]
    fn fingerprints_survive_the_signed_column() {
        for n in [0, 1, u64::MAX, u64::MAX - 7, 1 << 63] {
            assert_eq!(i64_to_u64(u64_to_i64(n)), n);
        }
    }
}
