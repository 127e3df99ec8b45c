#!/usr/bin/env bash
# cargo-deny's licence, duplicate and source checks of the dependency graph (deny.toml), offline
# (no advisory database). Installs cargo-deny into the tool cache outside the clone when missing
# (`cargo install`, about 4 minutes on 2 cores). Called by scripts/test.sh; runs alone too.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DENY_VERSION=0.20.2
CQRS_TOOLS=${CQRS_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/cqrs-test-tools}
root="$CQRS_TOOLS/cargo-deny-$CARGO_DENY_VERSION"
if [ ! -x "$root/bin/cargo-deny" ]; then
  echo "installing cargo-deny $CARGO_DENY_VERSION into $root" >&2
  cargo install cargo-deny --locked --version "$CARGO_DENY_VERSION" --root "$root"
fi
# cargo-deny reads the whole graph, for every target (Windows-only crates too), from cargo's
# cache: fetch what the builds before did not need.
cargo fetch --quiet
"$root/bin/cargo-deny" --offline check licenses bans sources
