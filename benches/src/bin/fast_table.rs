//! Prints the table of `scripts/bench-fast.sh` (issue 17's goals) from criterion's results
//! (`target/criterion/<group>/<bench>/new/estimates.json`): each row's median, its baseline's
//! median measured in the same run, the ratio, the goal and whether this run met it. A missing
//! result prints as "not run".

use std::path::PathBuf;

/// What a row's goal is about.
enum Goal {
    /// Baseline time over ours (ours is that many times as fast) at least this.
    Ratio(f64),
    /// Events per second of ours at least this; the row's events per iteration given.
    Rate { events: f64, at_least: f64 },
    /// Ours at most this many milliseconds.
    AtMostMs(f64),
    /// Shown for the picture only.
    None,
}

struct Row {
    label: &'static str,
    ours: &'static str,
    base: &'static str,
    goal: Goal,
}

const fn row(label: &'static str, ours: &'static str, base: &'static str, goal: Goal) -> Row {
    Row {
        label,
        ours,
        base,
        goal,
    }
}

const ROWS: &[Row] = &[
    row(
        "SQLite append, 1 writer, relaxed, 1 event, vs the rusqlite limit",
        "sqlite_append/store/relaxed_1ev_1w",
        "sqlite_append/limit/relaxed_1ev_1w",
        Goal::Ratio(0.8),
    ),
    row(
        "same, 10 events per append",
        "sqlite_append/store/relaxed_10ev_1w",
        "sqlite_append/limit/relaxed_10ev_1w",
        Goal::Ratio(0.8),
    ),
    row(
        "SQLite append, 1 writer, durable, 1 event, vs the rusqlite limit",
        "sqlite_append/store/durable_1ev_1w",
        "sqlite_append/limit/durable_1ev_1w",
        Goal::Ratio(0.9),
    ),
    row(
        "same, 10 events per append",
        "sqlite_append/store/durable_10ev_1w",
        "sqlite_append/limit/durable_10ev_1w",
        Goal::Ratio(0.9),
    ),
    row(
        "SQLite append, 16 writers, relaxed, 1 event (events/s; limit: 16 streams per transaction)",
        "sqlite_append/store/relaxed_1ev_16w",
        "sqlite_append/limit/relaxed_1ev_16w",
        Goal::Rate {
            events: 1.0,
            at_least: 100_000.0,
        },
    ),
    row(
        "same, 10 events per append",
        "sqlite_append/store/relaxed_10ev_16w",
        "sqlite_append/limit/relaxed_10ev_16w",
        Goal::Rate {
            events: 10.0,
            at_least: 100_000.0,
        },
    ),
    row(
        "SQLite append, 16 writers, durable, 1 event",
        "sqlite_append/store/durable_1ev_16w",
        "sqlite_append/limit/durable_1ev_16w",
        Goal::None,
    ),
    row(
        "SQLite append, 16 writers, durable, 10 events",
        "sqlite_append/store/durable_10ev_16w",
        "sqlite_append/limit/durable_10ev_16w",
        Goal::None,
    ),
    row(
        "SQLite: load 10,000 events uncached, vs the rusqlite limit",
        "sqlite_load_10000_events/replay",
        "sqlite_load_10000_events/limit",
        Goal::AtMostMs(5.0),
    ),
    row(
        "SQLite: load 10,000 events from a snapshot",
        "sqlite_load_10000_events/snapshot",
        "sqlite_load_10000_events/limit",
        Goal::None,
    ),
    row(
        "memory, the default (cache on): 1 account, open + 1,000 deposits, vs cqrs-es",
        "versus_memory_commands/ours_cached/1agg_1000dep",
        "versus_memory_commands/cqrs_es/1agg_1000dep",
        Goal::Ratio(3.0),
    ),
    row(
        "same: 10 accounts, open + 100 deposits each",
        "versus_memory_commands/ours_cached/10agg_100dep",
        "versus_memory_commands/cqrs_es/10agg_100dep",
        Goal::Ratio(3.0),
    ),
    row(
        "same: 1,000 accounts, open + 10 deposits each",
        "versus_memory_commands/ours_cached/1000agg_10dep",
        "versus_memory_commands/cqrs_es/1000agg_10dep",
        Goal::None,
    ),
    row(
        "memory, `no_cache()`: 1 account, open + 1,000 deposits",
        "versus_memory_commands/ours/1agg_1000dep",
        "versus_memory_commands/cqrs_es/1agg_1000dep",
        Goal::None,
    ),
    row(
        "memory, `no_cache()`: 10 accounts, open + 100 deposits each",
        "versus_memory_commands/ours/10agg_100dep",
        "versus_memory_commands/cqrs_es/10agg_100dep",
        Goal::None,
    ),
    row(
        "memory: replay 1,000 events uncached, vs the limit (a `Vec` of the same JSON, decoded and applied)",
        "versus_memory_load/ours_replay/1000",
        "versus_memory_load/raw_vec/1000",
        Goal::None,
    ),
    row(
        "same, 10,000 events",
        "versus_memory_load/ours_replay/10000",
        "versus_memory_load/raw_vec/10000",
        Goal::None,
    ),
    row(
        "memory: replay 1,000 events uncached, vs cqrs-es MemStore",
        "versus_memory_load/ours_replay/1000",
        "versus_memory_load/cqrs_es/1000",
        Goal::Ratio(1.0),
    ),
    row(
        "memory: replay 10,000 events uncached",
        "versus_memory_load/ours_replay/10000",
        "versus_memory_load/cqrs_es/10000",
        Goal::Ratio(1.0),
    ),
    row(
        "PostgreSQL append, 1 writer, 1 event, vs the limit (a raw sqlx insert of the same rows)",
        "postgres_append/store/1ev_1w",
        "postgres_append/raw/1ev_1w",
        Goal::None,
    ),
    row(
        "same, 32 writers",
        "postgres_append/store/1ev_32w",
        "postgres_append/raw/1ev_32w",
        Goal::None,
    ),
    row(
        "PostgreSQL: load 10,000 events uncached, vs the limit (a raw streaming read of its rows)",
        "postgres_load_10000_events/replay",
        "postgres_load_10000_events/limit",
        Goal::None,
    ),
    row(
        "PostgreSQL, the default (cache on), 1 client, vs postgres-es",
        "versus_postgres_commands/ours_cached/1",
        "versus_postgres_commands/postgres_es/1",
        Goal::Ratio(3.0),
    ),
    row(
        "same, 8 clients",
        "versus_postgres_commands/ours_cached/8",
        "versus_postgres_commands/postgres_es/8",
        Goal::Ratio(3.0),
    ),
    row(
        "same, 32 clients",
        "versus_postgres_commands/ours_cached/32",
        "versus_postgres_commands/postgres_es/32",
        Goal::Ratio(3.0),
    ),
    row(
        "PostgreSQL, `no_cache()`, 1 client, vs postgres-es",
        "versus_postgres_commands/ours/1",
        "versus_postgres_commands/postgres_es/1",
        Goal::Ratio(1.2),
    ),
    row(
        "same, 8 clients",
        "versus_postgres_commands/ours/8",
        "versus_postgres_commands/postgres_es/8",
        Goal::Ratio(1.2),
    ),
    row(
        "same, 32 clients",
        "versus_postgres_commands/ours/32",
        "versus_postgres_commands/postgres_es/32",
        Goal::Ratio(1.2),
    ),
    row(
        "SQLite commands (durable), 1 client, vs the sqlx raw driver",
        "versus_sqlite_commands/ours/1",
        "versus_sqlite_commands/raw_driver/1",
        Goal::None,
    ),
    row(
        "same, 8 clients",
        "versus_sqlite_commands/ours/8",
        "versus_sqlite_commands/raw_driver/8",
        Goal::None,
    ),
    row(
        "same, 32 clients",
        "versus_sqlite_commands/ours/32",
        "versus_sqlite_commands/raw_driver/32",
        Goal::None,
    ),
    row(
        "SQLite log reader, 1,000,000 events, vs a raw rusqlite read",
        "catchup_sqlite/store_read",
        "catchup_sqlite/raw_read",
        Goal::None,
    ),
    row(
        "PostgreSQL log reader, 1,000,000 events, vs a raw streaming read",
        "catchup_postgres/store_read",
        "catchup_postgres/raw_read",
        Goal::Ratio(0.8),
    ),
    row(
        "catch-up into an SQLite table with a batch handler (events/s, vs the store's log reader)",
        "catchup_sqlite/table_batched",
        "catchup_sqlite/store_read",
        Goal::Rate {
            events: 1_000_000.0,
            at_least: 200_000.0,
        },
    ),
    row(
        "catch-up into a PostgreSQL table with a batch handler, 1,000,000 events",
        "catchup_postgres/table_batched",
        "catchup_postgres/store_read",
        Goal::Rate {
            events: 1_000_000.0,
            at_least: 100_000.0,
        },
    ),
    row(
        "log of 1 aggregate type in 10, 10,000 events, vs reading all and filtering",
        "sqlite_log_of_1_type_in_10/read_all_of/10000",
        "sqlite_log_of_1_type_in_10/all_then_filter/10000",
        Goal::Ratio(5.0),
    ),
    row(
        "same, 100,000 events",
        "sqlite_log_of_1_type_in_10/read_all_of/100000",
        "sqlite_log_of_1_type_in_10/all_then_filter/100000",
        Goal::Ratio(5.0),
    ),
    row(
        "same, 1,000,000 events",
        "sqlite_log_of_1_type_in_10/read_all_of/1000000",
        "sqlite_log_of_1_type_in_10/all_then_filter/1000000",
        Goal::Ratio(5.0),
    ),
];

fn main() {
    let root = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/criterion"));
    println!("| row | ours (median) | baseline (median) | baseline / ours | goal | met |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for row in ROWS {
        let (ours, base) = (
            cqrs_benches::median_ns(&root, row.ours),
            cqrs_benches::median_ns(&root, row.base),
        );
        let cell =
            |v: Option<f64>| v.map_or_else(|| "not run".to_owned(), cqrs_benches::show_duration);
        let ratio = match (ours, base) {
            (Some(a), Some(b)) if a > 0.0 => format!("{:.2}x", b / a),
            _ => "—".to_owned(),
        };
        let (goal, met) = match (&row.goal, ours, base) {
            (Goal::Ratio(at_least), Some(a), Some(b)) if a > 0.0 => {
                (format!("≥ {at_least}x"), b / a >= *at_least)
            }
            (Goal::Rate { events, at_least }, Some(a), _) if a > 0.0 => {
                let rate = events / (a / 1e9);
                (
                    format!("≥ {at_least:.0} events/s (ours: {rate:.0})"),
                    rate >= *at_least,
                )
            }
            (Goal::AtMostMs(ms), Some(a), _) => (format!("≤ {ms} ms"), a / 1e6 <= *ms),
            (Goal::None, _, _) => ("—".to_owned(), true),
            _ => ("not run".to_owned(), false),
        };
        let met = match row.goal {
            Goal::None => "",
            _ if met => "yes",
            _ => "**no**",
        };
        println!(
            "| {} | {} | {} | {ratio} | {goal} | {met} |",
            row.label,
            cell(ours),
            cell(base)
        );
    }
}
