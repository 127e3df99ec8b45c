#!/usr/bin/env bash
# The feature matrix of cqrs-runtime: no feature, each feature alone, and the combinations a
# service uses, each through clippy with warnings denied (which compiles it). Called by
# scripts/test.sh; runs alone too.
set -euo pipefail
cd "$(dirname "$0")/.."

matrix=(
  ""
  derive
  sqlite
  postgres
  kafka
  nats
  otel
  testing
  schema
  "derive,sqlite"
  "derive,postgres"
  "derive,postgres,kafka"
  "derive,sqlite,nats"
)
for features in "${matrix[@]}"; do
  printf -- '--> cqrs-runtime --no-default-features --features "%s"\n' "$features"
  cargo clippy -p cqrs-runtime --no-default-features --features "$features" --lib -- -D warnings
done
