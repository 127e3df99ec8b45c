//! Prints the comparison table of `scripts/bench-versus.sh` from criterion's results
//! (`target/criterion/<group>/<bench>/new/estimates.json`): medians and the peer-over-ours
//! ratio, measured in the same run. A missing result prints as "not run".

use std::path::PathBuf;

/// One row: what is compared, our benchmark id, the peer's (or the ceiling's) benchmark id.
const ROWS: &[(&str, &str, &str)] = &[
    (
        "memory: open + 1,000 deposits, one account",
        "versus_memory_commands/ours/1agg_1000dep",
        "versus_memory_commands/cqrs_es/1agg_1000dep",
    ),
    (
        "same, with the aggregate cache",
        "versus_memory_commands/ours_cached/1agg_1000dep",
        "versus_memory_commands/cqrs_es/1agg_1000dep",
    ),
    (
        "memory: 1,000 accounts, open + 10 deposits each",
        "versus_memory_commands/ours/1000agg_10dep",
        "versus_memory_commands/cqrs_es/1000agg_10dep",
    ),
    (
        "same, with the aggregate cache",
        "versus_memory_commands/ours_cached/1000agg_10dep",
        "versus_memory_commands/cqrs_es/1000agg_10dep",
    ),
    (
        "PostgreSQL: 1 client, open + 20 deposits",
        "versus_postgres_commands/ours/1",
        "versus_postgres_commands/postgres_es/1",
    ),
    (
        "same, with the aggregate cache",
        "versus_postgres_commands/ours_cached/1",
        "versus_postgres_commands/postgres_es/1",
    ),
    (
        "PostgreSQL: 8 clients",
        "versus_postgres_commands/ours/8",
        "versus_postgres_commands/postgres_es/8",
    ),
    (
        "same, with the aggregate cache",
        "versus_postgres_commands/ours_cached/8",
        "versus_postgres_commands/postgres_es/8",
    ),
    (
        "PostgreSQL: 32 clients",
        "versus_postgres_commands/ours/32",
        "versus_postgres_commands/postgres_es/32",
    ),
    (
        "same, with the aggregate cache",
        "versus_postgres_commands/ours_cached/32",
        "versus_postgres_commands/postgres_es/32",
    ),
    (
        "SQLite (durable): 1 client, open + 20 deposits, vs the raw driver",
        "versus_sqlite_commands/ours/1",
        "versus_sqlite_commands/raw_driver/1",
    ),
    (
        "SQLite: 8 clients, vs the raw driver",
        "versus_sqlite_commands/ours/8",
        "versus_sqlite_commands/raw_driver/8",
    ),
    (
        "SQLite: 32 clients, vs the raw driver",
        "versus_sqlite_commands/ours/32",
        "versus_sqlite_commands/raw_driver/32",
    ),
    (
        "load 1,000 events (memory), replay",
        "versus_memory_load/ours_replay/1000",
        "versus_memory_load/cqrs_es/1000",
    ),
    (
        "load 1,000 events (memory), our snapshot",
        "versus_memory_load/ours_snapshot/1000",
        "versus_memory_load/cqrs_es/1000",
    ),
    (
        "load 10,000 events (memory), replay",
        "versus_memory_load/ours_replay/10000",
        "versus_memory_load/cqrs_es/10000",
    ),
    (
        "load 10,000 events (memory), our snapshot",
        "versus_memory_load/ours_snapshot/10000",
        "versus_memory_load/cqrs_es/10000",
    ),
    (
        "projection catch-up, 100,000 events (PostgreSQL) vs `QueryReplay`",
        "versus_postgres_catchup/ours",
        "versus_postgres_catchup/cqrs_es",
    ),
    (
        "decode, current version vs plain serde_json (the ceiling)",
        "decode/derived_current_version",
        "decode/serde_json_current_type",
    ),
    (
        "decode, v1 through two upcast hops vs plain serde_json of the current type",
        "decode/derived_v1_two_hops",
        "decode/serde_json_current_type",
    ),
];

/// Compile times in milliseconds written by `scripts/bench-versus.sh`.
fn compile_ms(times: &serde_json::Value, key: &str) -> Option<f64> {
    times.get(key)?.as_f64()
}

fn main() {
    let root = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/criterion"));
    println!("| comparison | ours (median) | peer or ceiling (median) | peer / ours |");
    println!("| --- | --- | --- | --- |");
    for (label, ours, peer) in ROWS {
        let (a, b) = (
            cqrs_benches::median_ns(&root, ours),
            cqrs_benches::median_ns(&root, peer),
        );
        let cell =
            |v: Option<f64>| v.map_or_else(|| "not run".to_owned(), cqrs_benches::show_duration);
        let ratio = match (a, b) {
            (Some(a), Some(b)) if a > 0.0 => format!("{:.2}x", b / a),
            _ => "—".to_owned(),
        };
        println!("| {label} | {} | {} | {ratio} |", cell(a), cell(b));
    }
    let times: serde_json::Value = std::fs::read_to_string("target/compile-bench/times.json")
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    for mode in ["check", "build"] {
        let (ours, hand) = (
            compile_ms(&times, &format!("macros/{mode}")),
            compile_ms(&times, &format!("hand/{mode}")),
        );
        let cell = |v: Option<f64>| {
            v.map_or_else(
                || "not run".to_owned(),
                |ms| format!("{:.2} s", ms / 1000.0),
            )
        };
        let ratio = match (ours, hand) {
            (Some(a), Some(b)) if a > 0.0 => format!("{:.2}x", b / a),
            _ => "—".to_owned(),
        };
        println!(
            "| `cargo {mode}` of a 10-aggregate, 50-event domain: macros vs by hand | {} | {} | {ratio} |",
            cell(ours),
            cell(hand)
        );
    }
}
