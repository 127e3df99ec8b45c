#!/usr/bin/env bash
# Issue 17's rows ("Fast by default"), in one run on this machine: starts a throwaway
# PostgreSQL, runs the SQLite store benchmark (appends against the rusqlite limit, loads, the
# log of one aggregate type), PostgreSQL appends and loads against raw sqlx, the catch-up rows
# (the log readers against raw reads, batched table projections) and the peer comparison
# (cqrs-es in memory, postgres-es), then writes the table of medians, ratios and goals into
# BENCHMARKS.md between its `fast-table` markers, with the machine. About 15 minutes on 2 cores once built (the first run also writes the event
# files the catch-up rows read, kept in the temporary directory).
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/postgres.sh
cargo bench -p cqrs-benches --bench sqlite -- --noplot \
    'sqlite_append/(store|limit)/|sqlite_load_10000_events|sqlite_log_of_1_type_in_10'
cargo bench -p cqrs-benches --bench postgres -- --noplot \
    'postgres_append/(store|raw)/1ev/(1|32)w$|postgres_load_10000_events'
cargo bench -p cqrs-benches --bench projection -- --noplot \
    'catchup_sqlite/(raw_read|store_read|table_batched)$|catchup_postgres/(raw_read|store_read|table_batched)$'
cargo bench -p cqrs-benches --bench versus -- --noplot \
    'versus_memory|versus_postgres_commands|versus_sqlite_commands'

table=target/fast-table.md
{
    cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
    echo "Measured $(date -u +%Y-%m-%d) by \`bash scripts/bench-fast.sh\` at \`$(git rev-parse --short HEAD)\`:"
    echo "$(nproc) cores ($cpu), $(free -g | awk '/Mem:/ {print $2}') GiB, $(rustc --version | cut -d' ' -f1-2),"
    echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}'). Criterion medians; each ratio is two rows of this run."
    echo
    cargo run --quiet --release -p cqrs-benches --bin fast_table
} > "$table"

awk -v table="$table" '
    /<!-- fast-table:begin -->/ { print; while ((getline line < table) > 0) print line; skip = 1; next }
    /<!-- fast-table:end -->/ { skip = 0 }
    !skip { print }
' BENCHMARKS.md > BENCHMARKS.md.new
mv BENCHMARKS.md.new BENCHMARKS.md
echo "BENCHMARKS.md: table written (also in $table)"
