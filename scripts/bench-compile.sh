#!/usr/bin/env bash
# Compile time of a domain with the macros against the same domain by hand (issue 15), in one
# run: `gen_domain` writes 10 aggregates with 5 commands and 5 events each as `domain-hand`
# (the traits implemented by hand), `domain-macros` (the derives over payload structs written
# by hand), `domain-named` (the derives over named-field variants, the structs generated) and
# `domain-named-schema` (the same with the runtime's `schema` feature, which `cargo cqrs schema`
# turns on).
# Dependencies are built first; then, round after round, each crate alone is cleaned and
# checked, then cleaned and built, the crates interleaved so that machine drift hits them
# alike. Medians of 5 rounds go into BENCHMARKS.md between the `compile-v2` markers. About 5
# minutes on 2 cores once the dependencies are built.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${ROUNDS:-5}
gen=target/compile-bench
cargo run --quiet --release -p cqrs-benches --bin gen_domain -- "$gen/src" "$PWD/runtime"
export CARGO_TARGET_DIR="$PWD/$gen/target"
crates=(${CRATES:-hand macros named named-schema})
for crate in "${crates[@]}"; do
    cp Cargo.lock "$gen/src/$crate/"
    (cd "$gen/src/$crate" && cargo build --quiet --offline)
done

ms() { date +%s%3N; }
declare -A samples
for _ in $(seq "$rounds"); do
    for crate in "${crates[@]}"; do
        for mode in check build; do
            (cd "$gen/src/$crate" && cargo clean --quiet -p "domain-$crate")
            start=$(ms)
            (cd "$gen/src/$crate" && cargo "$mode" --quiet --offline)
            samples[$crate/$mode]+="$(( $(ms) - start )) "
        done
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
declare -A med
for key in "${!samples[@]}"; do
    med[$key]=$(echo "${samples[$key]}" | median)
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

table=target/compile-table.md
{
    cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
    syn=$(cargo tree -p cqrs-macros -e normal --prefix none | grep -m1 '^syn ' | cut -d' ' -f2)
    echo "Measured $(date -u +%Y-%m-%d) by \`bash scripts/bench-compile.sh\`: $(nproc) cores ($cpu),"
    echo "$(rustc --version | cut -d' ' -f1-2), the macros on syn $syn. The domain crate alone, its dependencies built;"
    echo "medians of $rounds rounds, the crates interleaved within each round."
    echo
    echo "| domain (10 aggregates, 50 commands, 50 events) | \`cargo check\` | \`cargo build\` | check / by hand | build / by hand |"
    echo "| --- | --- | --- | --- | --- |"
    for crate in "${crates[@]}"; do
        case $crate in
            hand) label="by hand against the traits" ;;
            macros) label="macros, payload structs written by hand (newtype variants)" ;;
            named) label="macros, named-field variants (structs generated)" ;;
            named-schema) label="the same, with the runtime's \`schema\` feature (as \`cargo cqrs schema\` builds it)" ;;
        esac
        check=${med[$crate/check]}
        build=${med[$crate/build]}
        echo "| $label | $check ms | $build ms | $(ratio "$check" "${med[hand/check]}") | $(ratio "$build" "${med[hand/build]}") |"
    done
    echo
    echo "Samples (ms, in run order):"
    echo
    for crate in "${crates[@]}"; do
        for mode in check build; do
            echo "- \`$crate/$mode\`: ${samples[$crate/$mode]}"
        done
    done
} > "$table"

awk -v table="$table" '
    /<!-- compile-v2:begin -->/ { print; while ((getline line < table) > 0) print line; skip = 1; next }
    /<!-- compile-v2:end -->/ { skip = 0 }
    !skip { print }
' BENCHMARKS.md > BENCHMARKS.md.new
mv BENCHMARKS.md.new BENCHMARKS.md
echo "BENCHMARKS.md: compile table written (also in $table)"
