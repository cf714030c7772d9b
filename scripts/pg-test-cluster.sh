#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on 127.0.0.1 for the fleet tests (docs/fleet-database.md).
#
#   scripts/pg-test-cluster.sh start [DIR]   initdb into DIR (default: a new temporary directory)
#                                            if it holds no cluster yet, start it on a free port
#                                            (the same port again on a restart), and print
#                                            `export SUNDIAL_TEST_PG_URL=... SUNDIAL_TEST_PG_DIR=...`
#   scripts/pg-test-cluster.sh stop DIR      stop it (fast shutdown); DIR is kept
#   scripts/pg-test-cluster.sh destroy DIR   stop it and delete DIR
#
# Used by .ci/run and by the fleet tests that stop and restart a server of their own. initdb
# refuses to run as root, so as root every server command runs as the `postgres` user. The
# cluster requires a password (scram-sha-256) so that the tests exercise the password path; the
# password is in DIR/password (mode 0600), and in the printed URL.
set -euo pipefail

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
[ -n "$bindir" ] && [ -x "$bindir/initdb" ] || { echo "pg-test-cluster: no PostgreSQL server (apt-get install postgresql)" >&2; exit 1; }

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

cmd=${1:-}
dir=${2:-}
case "$cmd" in
  start)
    if [ -z "$dir" ]; then dir=$(mktemp -d /tmp/sundial-pg.XXXXXX); fi
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
    chmod 0700 "$dir"
    if ! [ -f "$dir/data/PG_VERSION" ]; then
      pw=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 20)
      printf '%s\n' "$pw" >"$dir/password"
      chmod 0600 "$dir/password"
      if [ "$(id -u)" = 0 ]; then chown postgres: "$dir/password"; fi
      as_pg "$bindir/initdb" -D "$dir/data" -U sundial --pwfile="$dir/password" --auth=scram-sha-256 \
        -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
      free_port >"$dir/port"
    fi
    port=$(cat "$dir/port")
    # Already running (a second `start`): just print the URL again.
    if ! as_pg "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    # Sockets only in DIR (not /var/run/postgresql, which may not exist), TCP on loopback only.
    as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" start </dev/null >"$dir/pg_ctl.log" 2>&1 \
      || { cat "$dir/pg_ctl.log" >&2; tail -n 20 "$dir/server.log" >&2; exit 1; }
    fi
    pw=$(cat "$dir/password")
    echo "export SUNDIAL_TEST_PG_URL=postgresql://sundial:$pw@127.0.0.1:$port/postgres SUNDIAL_TEST_PG_DIR=$dir"
    ;;
  stop|destroy)
    [ -n "$dir" ] || { echo "usage: $0 $cmd DIR" >&2; exit 2; }
    if [ -f "$dir/data/postmaster.pid" ]; then
      as_pg "$bindir/pg_ctl" -D "$dir/data" -w -t 60 -m fast stop </dev/null >/dev/null
    fi
    if [ "$cmd" = destroy ]; then rm -rf -- "$dir"; fi
    ;;
  *)
    echo "usage: $0 start [DIR] | stop DIR | destroy DIR" >&2
    exit 2
    ;;
esac
