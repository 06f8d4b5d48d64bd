#!/bin/sh
# A throwaway PostgreSQL cluster for the test suites (cardcash-store's dual-engine harness).
#
#   eval "$(scripts/pg-test-cluster.sh start)"   # prints: export CARDCASH_TEST_PG_URL=postgres://…
#   cargo test …
#   scripts/pg-test-cluster.sh stop              # stops it and deletes all its files
#   scripts/pg-test-cluster.sh status | url
#
# Why it looks like this: initdb refuses to run as root, so as root the cluster belongs to the
# `postgres` user (runuser/su); as any other user it runs as that user. It listens on a private
# port (CARDCASH_PG_PORT, default 54329) on 127.0.0.1 and in a private socket directory, never
# touching a system cluster. Authentication is `trust`: local test use only. fsync stays on,
# because durable commits are what the benchmarks measure.
#
# Environment: CARDCASH_PG_PORT (54329), CARDCASH_PG_DIR (/tmp/cardcash-pg-test-$PORT),
# PG_BINDIR (default: newest /usr/lib/postgresql/*/bin, else `pg_config --bindir`).
# `start` also writes the export line to $CARDCASH_PG_DIR/env. Both commands are idempotent.
set -eu

PORT="${CARDCASH_PG_PORT:-54329}"
DIR="${CARDCASH_PG_DIR:-/tmp/cardcash-pg-test-$PORT}"
DATA="$DIR/data"
LOG="$DIR/postgres.log"
URL="postgres://postgres@127.0.0.1:$PORT/postgres"

die() { echo "pg-test-cluster: $*" >&2; exit 1; }
say() { echo "pg-test-cluster: $*" >&2; }

# Debian's packaged binaries first (/usr/local/bin may hold other versions or wrappers), the
# highest major version if several are installed; else whatever pg_config reports.
find_bindir() {
    if [ -n "${PG_BINDIR:-}" ]; then
        echo "$PG_BINDIR"; return
    fi
    best="" best_v=0
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] || continue
        v="$(basename "$(dirname "$d")")"
        case "$v" in ''|*[!0-9]*) continue ;; esac
        if [ "$v" -gt "$best_v" ]; then best="$d" best_v="$v"; fi
    done
    if [ -z "$best" ] && command -v pg_config >/dev/null 2>&1; then
        best="$(pg_config --bindir)"
    fi
    echo "$best"
}

BINDIR="$(find_bindir)"

check_bins() {
    for b in initdb pg_ctl pg_isready; do
        [ -n "$BINDIR" ] && [ -x "$BINDIR/$b" ] || die "PostgreSQL binaries not found (looked for $b in '${BINDIR:-/usr/lib/postgresql/*/bin}'). Install them, e.g. 'apt-get install postgresql', or set PG_BINDIR."
    done
}

# Run a command as the cluster's owner: postgres when we are root, ourselves otherwise.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' user to own the cluster"
        if command -v runuser >/dev/null 2>&1; then
            runuser -u postgres -- "$@"
        else
            # su needs one command string; our arguments contain no single quotes.
            cmd=""
            for a in "$@"; do cmd="$cmd '$a'"; done
            su postgres -s /bin/sh -c "$cmd"
        fi
    else
        "$@"
    fi
}

is_running() {
    [ -f "$DATA/PG_VERSION" ] && as_owner "$BINDIR/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

start() {
    check_bins
    if ! [ -f "$DATA/PG_VERSION" ]; then
        rm -rf "$DIR"
        mkdir -p "$DIR"
        [ "$(id -u)" -eq 0 ] && chown postgres: "$DIR"
        chmod 700 "$DIR"
        say "initdb in $DATA ($BINDIR)"
        as_owner "$BINDIR/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C \
            >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log" >&2; die "initdb failed"; }
    fi
    if is_running; then
        say "already running on port $PORT"
    else
        say "starting on 127.0.0.1:$PORT, socket directory $DIR"
        as_owner "$BINDIR/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
            -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c max_connections=400" \
            start >/dev/null || { tail -n 30 "$LOG" >&2 2>/dev/null; die "pg_ctl start failed (log: $LOG)"; }
    fi
    i=0
    until "$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$PORT" -U postgres; do
        i=$((i + 1))
        [ "$i" -le 100 ] || die "server did not become ready (log: $LOG)"
        sleep 0.1
    done
    echo "export CARDCASH_TEST_PG_URL=$URL" >"$DIR/env"
    echo "export CARDCASH_TEST_PG_URL=$URL"
}

stop() {
    if [ -n "$BINDIR" ] && [ -x "$BINDIR/pg_ctl" ] && is_running; then
        say "stopping the cluster on port $PORT"
        as_owner "$BINDIR/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
    fi
    rm -rf "$DIR"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status)
        if [ -n "$BINDIR" ] && is_running; then echo "running: $URL"; else echo "not running"; exit 3; fi ;;
    url) echo "$URL" ;;
    *) echo "usage: $0 start|stop|status|url" >&2; exit 2 ;;
esac
