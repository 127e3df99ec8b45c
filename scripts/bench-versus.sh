#!/usr/bin/env bash
# The comparison against cqrs-es and postgres-es (issue 8), in one run on this machine: starts a
# throwaway PostgreSQL, runs `benches/versus.rs` and `benches/decode.rs`, and writes the table of
# medians and ratios into BENCHMARKS.md between its `versus-table` markers, with the machine,
# the versions and the command. About 8 minutes on 2 cores once built.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/postgres.sh
cargo bench -p cqrs-benches --bench versus -- --noplot
cargo bench -p cqrs-benches --bench decode -- --noplot

# Compile time: the generated 10-aggregate domain with the macros and by hand. Dependencies are
# built first; each measurement cleans only the domain crate, three times, median kept.
gen=target/compile-bench
cargo run --quiet --release -p cqrs-benches --bin gen_domain -- "$gen/src" "$PWD/runtime"
ms() { date +%s%3N; }
median() { sort -n | sed -n 2p; }
{
    echo "{"
    first=1
    for crate in macros hand; do
        cp Cargo.lock "$gen/src/$crate/"
        (cd "$gen/src/$crate" && CARGO_TARGET_DIR="$PWD/../../target" cargo build --quiet)
        for mode in check build; do
            runs=$(for _ in 1 2 3; do
                (cd "$gen/src/$crate" && CARGO_TARGET_DIR="$PWD/../../target" cargo clean --quiet -p "domain-$crate")
                start=$(ms)
                (cd "$gen/src/$crate" && CARGO_TARGET_DIR="$PWD/../../target" cargo "$mode" --quiet)
                echo $(( $(ms) - start ))
            done | median)
            [ $first = 1 ] || echo ","
            first=0
            echo "\"$crate/$mode\": $runs"
        done
    done
    echo "}"
} > "$gen/times.json"

# (No trap here: postgres.sh's trap stops the server on exit.)
table=target/versus-table.md
{
    cqrs_es=$(cargo tree -p cqrs-benches -e dev --prefix none | grep -m1 '^cqrs-es ' | cut -d' ' -f2)
    postgres_es=$(cargo tree -p cqrs-benches -e dev --prefix none | grep -m1 '^postgres-es ' | cut -d' ' -f2)
    cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
    echo "Measured $(date -u +%Y-%m-%d) by \`bash scripts/bench-versus.sh\`: $(nproc) cores ($cpu),"
    echo "$(rustc --version | cut -d' ' -f1-2), cqrs-es $cqrs_es, postgres-es $postgres_es, PostgreSQL"
    echo "$("$PG_BIN/postgres" --version | awk '{print $3}'). \"peer / ours\" above 1 means ours is faster."
    echo
    cargo run --quiet --release -p cqrs-benches --bin bench_table
} > "$table"

awk -v table="$table" '
    /<!-- versus-table:begin -->/ { print; while ((getline line < table) > 0) print line; skip = 1; next }
    /<!-- versus-table:end -->/ { skip = 0 }
    !skip { print }
' BENCHMARKS.md > BENCHMARKS.md.new
mv BENCHMARKS.md.new BENCHMARKS.md
echo "BENCHMARKS.md: table written (also in $table)"
