#!/usr/bin/env bash
# The long mode of the model-checked histories (issue 21): `tests/histories.rs` on every store
# (memory, SQLite, two processes on one SQLite file, a throwaway PostgreSQL) with many more
# writers and operations than the test command's bounded default, for several seeds. Each
# history is checked against the sequential model as in the test command; a failure prints
# its seed, and `HISTORY_SEED=<seed> HISTORY_OPS=<n> HISTORY_WRITERS=<n>` replays it.
# Writes a table of seeds, sizes and wall times into BENCHMARKS.md between its
# `histories-table` markers.
#
# Sizes: HISTORY_WRITERS (default 32), HISTORY_OPS (operations per writer, default 1000),
# ROUNDS (seeds, default 3).
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/postgres.sh
export HISTORY_WRITERS="${HISTORY_WRITERS:-32}" HISTORY_OPS="${HISTORY_OPS:-1000}"
rounds="${ROUNDS:-3}"
cargo test --release -p cqrs-tests --all-features --test histories --no-run

table=target/histories-table.md
{
    cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
    echo "Measured $(date -u +%Y-%m-%d) by \`bash scripts/histories-long.sh\` at \`$(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo +changes)\`:"
    echo "$(nproc) cores ($cpu), release build. Every history matched the model."
    echo
    echo "| seed | store | writers | operations | calls checked | wall time |"
    echo "|---|---|---|---|---|---|"
} > "$table"
for _ in $(seq "$rounds"); do
    seed=$(date +%s%N | cut -c1-15)
    for store in memory sqlite "sqlite, two processes" postgres; do
        case $store in
            memory) test=histories_on_the_memory_store_match_the_model ;;
            sqlite) test=histories_on_sqlite_match_the_model ;;
            postgres) test=histories_on_postgres_match_the_model ;;
            *) test=histories_of_two_processes_on_one_sqlite_file_match_the_model ;;
        esac
        start=$(date +%s%N)
        HISTORY_SEED=$seed cargo test --quiet --release -p cqrs-tests --all-features \
            --test histories -- --exact "$test" > target/histories-run.log 2>&1 \
            || { cat target/histories-run.log; exit 1; }
        grep -q "1 passed" target/histories-run.log || { cat target/histories-run.log; exit 1; }
        seconds=$(awk -v ns=$(( $(date +%s%N) - start )) 'BEGIN { printf "%.1f", ns / 1e9 }')
        calls=$((HISTORY_WRITERS * HISTORY_OPS))
        [ "$test" = histories_of_two_processes_on_one_sqlite_file_match_the_model ] \
            && calls=$((calls * 2))
        echo "| $seed | $store | $HISTORY_WRITERS | $HISTORY_OPS | $calls | $seconds s |" >> "$table"
        echo "seed $seed, $store: passed in ${seconds} s"
    done
done

awk -v table="$table" '
    /<!-- histories-table:begin -->/ { print; while ((getline line < table) > 0) print line; skip = 1; next }
    /<!-- histories-table:end -->/ { skip = 0 }
    !skip { print }
' BENCHMARKS.md > BENCHMARKS.md.new
mv BENCHMARKS.md.new BENCHMARKS.md
echo "BENCHMARKS.md: table written (also in $table)"
