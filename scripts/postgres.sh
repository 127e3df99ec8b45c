#!/usr/bin/env bash
# Starts a throwaway PostgreSQL for the tests: `source scripts/postgres.sh` (from bash).
#
# initdb into a temporary directory, pg_ctl start listening only on 127.0.0.1 on a free port,
# a database created, DATABASE_URL exported, and a trap that stops the server and removes the
# directory on exit, even after a failure. The binaries come from Debian's `postgresql`
# package, installed with apt-get when missing. As root, the server runs as an unprivileged
# user (PostgreSQL refuses to run as root).

pg_bin_dir() {
  local dir
  # pg_ctl on PATH may be a lone symlink: use the directory it points into, which has createdb.
  if command -v pg_ctl >/dev/null 2>&1; then
    dir=$(dirname "$(readlink -f "$(command -v pg_ctl)")")
    if [ -x "$dir/initdb" ] && [ -x "$dir/createdb" ]; then
      echo "$dir"
      return
    fi
  fi
  for dir in /usr/lib/postgresql/*/bin; do
    if [ -x "$dir/pg_ctl" ] && [ -x "$dir/initdb" ] && [ -x "$dir/createdb" ]; then
      echo "$dir"
      return
    fi
  done
  return 1
}

if ! PG_BIN=$(pg_bin_dir); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "postgres.sh: PostgreSQL is missing; installing Debian's postgresql package" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    PG_BIN=$(pg_bin_dir) || { echo "postgres.sh: installed postgresql, but found no pg_ctl" >&2; return 1; }
  else
    echo "postgres.sh: PostgreSQL (initdb, pg_ctl) not found; install it, e.g. 'apt-get install postgresql'" >&2
    return 1
  fi
fi

# A free TCP port on 127.0.0.1: nothing answers a connection to it.
pg_free_port() {
  local port
  for _ in $(seq 1 100); do
    port=$(( 20000 + RANDOM % 20000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
  return 1
}

PG_DIR=$(mktemp -d -t cqrs-pg-XXXXXX)
PG_PORT=$(pg_free_port)
PG_RUN=()
if [ "$(id -u)" = 0 ]; then
  PG_USER=cqrs_pg
  id -u "$PG_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER"
  chown "$PG_USER" "$PG_DIR"
  PG_RUN=(runuser -u "$PG_USER" --)
else
  PG_USER=$(id -un)
fi

pg_stop() {
  if [ -f "$PG_DIR/data/postmaster.pid" ]; then
    "${PG_RUN[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" stop -m immediate >/dev/null 2>&1 || true
  fi
  rm -rf "$PG_DIR"
}
trap pg_stop EXIT

"${PG_RUN[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U "$PG_USER" --auth=trust -E UTF8 --no-locale >"$PG_DIR/initdb.log" 2>&1 \
  || { cat "$PG_DIR/initdb.log" >&2; return 1; }
"${PG_RUN[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 start \
  -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c fsync=on -c max_connections=200" >/dev/null \
  || { cat "$PG_DIR/server.log" >&2; return 1; }
"${PG_RUN[@]}" "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" cqrs_test

export DATABASE_URL="postgres://$PG_USER@127.0.0.1:$PG_PORT/cqrs_test"
# How a test restarts or pauses this server (tests/tests/postgres_faults.rs): the pg_ctl command
# for its data directory, run as its user, and that user's name.
export CQRS_PG_CTL="${PG_RUN[*]} $PG_BIN/pg_ctl -D $PG_DIR/data"
export CQRS_PG_USER="$PG_USER"
echo "postgres.sh: PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') at $DATABASE_URL" >&2
