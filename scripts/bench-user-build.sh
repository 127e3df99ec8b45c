#!/usr/bin/env bash
# Clean-build time of a minimal user crate: the README tour's domain on cqrs-runtime, serde,
# thiserror and tokio, against the runtime of a given checkout (a `git worktree` of another
# commit, to compare). Prints the seconds of one `cargo build` from an empty target directory
# (dependencies already downloaded) and the syn versions built.
#
#   bash scripts/bench-user-build.sh TREE [default|memory]
#
# `default`: the runtime's default features (the SQLite store); `memory`: `default-features =
# false, features = ["derive"]` (the in-memory store only). Used for BENCHMARKS.md's syn 2 / syn 3
# comparison; run the two trees alternately.
set -euo pipefail
tree=$(cd "$1" && pwd)
mode=${2:-default}
case $mode in
    default) runtime="{ path = \"$tree/runtime\" }" ;;
    memory) runtime="{ path = \"$tree/runtime\", default-features = false, features = [\"derive\"] }" ;;
    *) echo "mode: default or memory" >&2; exit 2 ;;
esac
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/src"
cat > "$dir/Cargo.toml" <<TOML
[package]
name = "user-crate"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
cqrs-runtime = $runtime
serde = { version = "1", features = ["derive"] }
thiserror = "2"
tokio = { version = "1", features = ["macros", "rt-multi-thread"] }

[workspace]
TOML
sed -n '/^\/\/ --- tour: begin/,/^\/\/ --- tour: end/p' "$tree/runtime/src/kits/tour.rs" | grep -v '^// ---' > "$dir/src/lib.rs"
cp "$tree/Cargo.lock" "$dir/Cargo.lock"
cd "$dir"
start=$(date +%s%3N)
CARGO_TARGET_DIR="$dir/target" cargo build --quiet --offline
echo "$mode $tree: $(( $(date +%s%3N) - start )) ms; $(cargo tree --offline -e normal,build 2>/dev/null | grep -oE 'syn v[0-9.]+' | sort -u | tr '\n' ' ')"
