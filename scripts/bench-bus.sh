#!/usr/bin/env bash
# The bus benchmark (issue 9): the outbox relay against a raw producer sending the same 10,000
# messages, on a tansu Kafka broker and a NATS server that the bench starts itself, and the
# commit-to-consumer latency on each (printed, and written to target/criterion/bus-latency-*.json).
# Installs the brokers when missing (scripts/brokers.sh). About 5 minutes on 2 cores once built.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/brokers.sh
cargo bench -p cqrs-benches --bench bus -- --noplot
