#!/usr/bin/env bash
# GNU Taler's own benchmark client (`taler-exchange-benchmark`, December 2022) against GNU Taler's
# C exchange of the same date, or against cardcash's exchange (its legacy face), on this machine.
#
#   scripts/bench-c-exchange.sh [c|cardcash] [COINS] [CLIENTS]     # defaults: c 200 2
#
# The client: CLIENTS processes, each funds one reserve through a fakebank and then runs COINS
# coin cycles one after another: withdraw one EUR:5 coin (single-coin withdraw), deposit EUR:1 of
# it, melt the rest into four fresh coins (EUR 1, 1, 1, 0.10; kappa = 3), reveal, link. The figure
# is coin cycles per second over the whole run (COINS x CLIENTS / wall time), as the client prints
# it ("operations in ..."), plus its per-command latencies.
#
# Target `c`: the 2022 C exchange (httpd + its three security modules + wirewatch) on its own
# PostgreSQL cluster. Target `cardcash`: `cardcash exchange serve` on PostgreSQL, its legacy face
# (/legacy/) as the exchange base URL, its wirewatch reading the same fakebank.
#
# Why the wrappers: the benchmark's "both" mode resets the exchange database (dropping the keys the
# offline tool signed before, which the client needs) and starts auditor tools we do not run. The
# wrappers put in front on PATH keep the database (dbinit without -r), skip the auditor and the
# obsolete taler-exchange-wire, and for target `cardcash` start our exchange where the client
# starts taler-exchange-httpd (wirewatch is part of our exchange, so that wrapper idles).
#
# Needs $REFSTACK/ex/bin (../shared/refstack/build-exchange.sh); without it this script says so
# and exits 0. Env: REFSTACK ($HOME/refstack), BENCH_DIR (work directory, kept), CARDCASH_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
TARGET=${1:-c}
COINS=${2:-200}
CLIENTS=${3:-2}
case $TARGET in c | cardcash) ;; *) echo "usage: $0 [c|cardcash] [COINS] [CLIENTS]" >&2; exit 2 ;; esac

REFSTACK=${REFSTACK:-$HOME/refstack}
EXBIN=$REFSTACK/ex/bin
t0=$(date +%s)
say() { echo "[bench-c-exchange $(($(date +%s) - t0))s] $*" >&2; }
die() { echo "[bench-c-exchange] FAILED: $*" >&2; exit 1; }

for b in taler-exchange-benchmark taler-exchange-httpd taler-exchange-offline taler-exchange-dbinit \
    taler-exchange-wirewatch taler-exchange-secmod-rsa taler-exchange-secmod-eddsa taler-exchange-secmod-cs; do
    if [ ! -x "$EXBIN/$b" ]; then
        echo "bench-c-exchange: SKIPPED: $EXBIN/$b is not built (../shared/refstack/build-exchange.sh)"
        exit 0
    fi
done
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$PG_BIN/psql" ] || die "needs PostgreSQL's binaries (/usr/lib/postgresql/*/bin)"
export LD_LIBRARY_PATH=$REFSTACK/ex/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

if [ -n "${BENCH_DIR:-}" ]; then WORK=$BENCH_DIR; rm -rf "$WORK"; mkdir -p "$WORK"; else WORK=$(mktemp -d /tmp/cardcash-cbench.XXXXXX); fi
WORK=$(cd "$WORK" && pwd)
LOGS=$WORK/logs; mkdir -p "$LOGS"
RUNDIR=$(mktemp -d /tmp/ccb.XXXXXX) # short: Unix socket paths
chmod 711 "$RUNDIR"
PIDS=()
PG_STARTED=0
cleanup() {
    set +e
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    # the benchmark's children (httpd, wirewatch, our exchange) if it died before stopping them
    pkill -TERM -f "$RUNDIR" 2>/dev/null
    if [ $PG_STARTED = 1 ]; then
        CARDCASH_PG_PORT=$PG_PORT CARDCASH_PG_DIR=$RUNDIR/pg scripts/pg-test-cluster.sh stop >/dev/null 2>&1
    fi
    rm -rf "$RUNDIR"
    echo "[bench-c-exchange] work directory and logs: $WORK" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM
free_port() {
    local p lo _hi
    read -r lo _hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=32768
    [ "$lo" -gt 11000 ] || lo=32768
    for _ in $(seq 200); do
        p=$((10000 + RANDOM % (lo - 10000)))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
    done
    die "no free port found"
}
wait_for() {
    local what=$1; shift
    local deadline=$(($(date +%s) + 120))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || die "timed out waiting for $what"
        sleep 0.3
    done
}

EX_PORT=$(free_port)
# The client's bank path waits for http://localhost:8082/ (hard-coded), so the bank is there.
BANK_PORT=8082
(exec 3<>/dev/tcp/127.0.0.1/$BANK_PORT) 2>/dev/null && die "port $BANK_PORT (the benchmark client's bank) is in use"
PG_PORT=$(free_port)
case $TARGET in
    c) EXCHANGE_URL=http://127.0.0.1:$EX_PORT/ ;;
    cardcash) EXCHANGE_URL=http://127.0.0.1:$EX_PORT/legacy/ ;;
esac

say "PostgreSQL on port $PG_PORT"
PG_STARTED=1
CARDCASH_PG_PORT=$PG_PORT CARDCASH_PG_DIR=$RUNDIR/pg scripts/pg-test-cluster.sh start >"$LOGS/pg.log" 2>&1 ||
    { cat "$LOGS/pg.log"; die "PostgreSQL cluster"; }
"$PG_BIN/psql" -q -h "$RUNDIR/pg" -p "$PG_PORT" -U postgres -c "CREATE DATABASE taler" >>"$LOGS/pg.log"

CONF=$WORK/benchmark.conf
cat >"$CONF" <<EOF
[PATHS]
TALER_HOME = $WORK/home
TALER_DATA_HOME = $WORK/home/data/
TALER_CONFIG_HOME = $WORK/home/config/
TALER_CACHE_HOME = $WORK/home/cache/
TALER_RUNTIME_DIR = $RUNDIR/run/

[taler]
CURRENCY = EUR
CURRENCY_ROUND_UNIT = EUR:0.01

[exchange]
BASE_URL = $EXCHANGE_URL
SERVE = tcp
PORT = $EX_PORT
BIND_TO = 127.0.0.1
DB = postgres
MASTER_PUBLIC_KEY = @MASTER_PUB@
WIREWATCH_IDLE_SLEEP_INTERVAL = 5 ms
SIGNKEY_LEGAL_DURATION = 2 years

[exchangedb-postgres]
CONFIG = postgres:///taler?host=$RUNDIR/pg&port=$PG_PORT&user=postgres

[exchange-offline]
MASTER_PRIV_FILE = \${TALER_DATA_HOME}/offline-keys/master.priv

[auditor]
BASE_URL = http://localhost:$(free_port)/
AUDITOR_PRIV_FILE = \${TALER_DATA_HOME}/auditor/offline-keys/auditor.priv

[taler-exchange-secmod-rsa]
LOOKAHEAD_SIGN = 30 days
[taler-exchange-secmod-cs]
LOOKAHEAD_SIGN = 30 days
[taler-exchange-secmod-eddsa]
LOOKAHEAD_SIGN = 30 days
DURATION = 7 days

[bank]
HTTP_PORT = $BANK_PORT
SERVE = http
DATABASE = unused

[benchmark]
USER_PAYTO_URI = payto://x-taler-bank/localhost/42

[exchange-account-2]
PAYTO_URI = payto://x-taler-bank/localhost/Exchange
ENABLE_DEBIT = YES
ENABLE_CREDIT = YES

[exchange-accountcredentials-2]
WIRE_GATEWAY_URL = http://127.0.0.1:$BANK_PORT/Exchange/
WIRE_GATEWAY_AUTH_METHOD = basic
USERNAME = Exchange
PASSWORD = x
EOF
coin() { # name value fee_withdraw fee_deposit fee_refresh fee_refund
    cat >>"$CONF" <<EOF

[coin_$1]
VALUE = $2
DURATION_WITHDRAW = 7 days
DURATION_SPEND = 2 years
DURATION_LEGAL = 3 years
FEE_WITHDRAW = $3
FEE_DEPOSIT = $4
FEE_REFRESH = $5
FEE_REFUND = $6
CIPHER = RSA
RSA_KEYSIZE = 2048
EOF
}
# the denominations of GNU Taler's benchmark-rsa.conf
coin eur_ct_1 EUR:0.01 EUR:0.00 EUR:0.00 EUR:0.01 EUR:0.01
coin eur_ct_10 EUR:0.10 EUR:0.01 EUR:0.01 EUR:0.03 EUR:0.01
coin eur_1 EUR:1 EUR:0.01 EUR:0.01 EUR:0.03 EUR:0.01
coin eur_5 EUR:5 EUR:0.01 EUR:0.01 EUR:0.03 EUR:0.01
coin eur_10 EUR:10 EUR:0.01 EUR:0.01 EUR:0.03 EUR:0.01

say "offline master key"
MASTER_PUB=$("$EXBIN/taler-exchange-offline" -c "$CONF" setup 2>"$LOGS/offline-setup.log")
[ -n "$MASTER_PUB" ] || die "taler-exchange-offline setup"
sed -i "s/@MASTER_PUB@/$MASTER_PUB/" "$CONF"

# The wrappers (see the header).
WRAP=$WORK/wrap; mkdir -p "$WRAP"
# The exchange runs before the client starts: the client fetches /keys at the same time as it
# funds its first reserves and fails outright when a withdrawal comes before the keys.
printf '#!/bin/sh\ntrap "exit 0" TERM INT\nwhile :; do sleep 1; done\n' >"$WRAP/taler-exchange-httpd"
printf '#!/bin/sh\nexit 0\n' >"$WRAP/taler-exchange-wire"
cp "$WRAP/taler-exchange-wire" "$WRAP/taler-auditor-dbinit"
cp "$WRAP/taler-exchange-wire" "$WRAP/taler-auditor-exchange"
printf '#!/bin/sh\ntrap "exit 0" TERM INT\nwhile :; do sleep 1; done\n' >"$WRAP/taler-auditor-httpd"
# The client's own fakebank (-f) dies at once in this build (it forks a scheduler with nothing
# but a shutdown task), so the client uses its "Python bank" path, which runs this instead.
cat >"$WRAP/taler-bank-manage-testing" <<EOF
#!/bin/sh
exec "$EXBIN/taler-fakebank-run" -c "$CONF" -L WARNING
EOF
cat >"$WRAP/taler-exchange-dbinit" <<EOF
#!/bin/sh
# the benchmark asks for a reset (-r); keep the keys the offline tool signed
exec "$EXBIN/taler-exchange-dbinit" -c "$CONF"
EOF
chmod +x "$WRAP"/*

if [ "$TARGET" = c ]; then
    "$EXBIN/taler-exchange-dbinit" -c "$CONF" >"$LOGS/dbinit.log" 2>&1 || die "taler-exchange-dbinit"
    for s in rsa eddsa cs; do
        "$EXBIN/taler-exchange-secmod-$s" -c "$CONF" -L WARNING >"$LOGS/secmod-$s.log" 2>&1 &
        PIDS+=($!)
    done
    say "C exchange: keys signed with the offline tool"
    "$EXBIN/taler-exchange-httpd" -c "$CONF" -L WARNING >"$LOGS/httpd.log" 2>&1 &
    PIDS+=($!)
    wait_for "the C exchange's /management/keys" curl -sf "${EXCHANGE_URL}management/keys"
    offline() {
        "$EXBIN/taler-exchange-offline" -c "$CONF" -L WARNING \
            download sign \
            enable-account payto://x-taler-bank/localhost/Exchange \
            wire-fee now x-taler-bank EUR:0.01 EUR:0.01 \
            global-fee now EUR:0 EUR:0 EUR:0 4weeks 6years 4 \
            upload >>"$LOGS/offline.log" 2>&1
    }
    # the security modules may still be creating keys at the first download: sign until /keys
    # lists every denomination
    signed() { offline && curl -sf "${EXCHANGE_URL}keys" | jq -e '[.denoms[].value] | unique | length == 5'; }
    wait_for "taler-exchange-offline download sign upload, five denominations in /keys" signed
    # the httpd keeps running; the benchmark's own start of it becomes a no-op (below)
else
    if [ -n "${CARDCASH_BIN:-}" ]; then
        CARDCASH=$CARDCASH_BIN
    else
        say "cargo build --release -p cardcash"
        cargo build -q --release -p cardcash 2>"$LOGS/cargo-build.log" || { tail -30 "$LOGS/cargo-build.log"; die "cargo build"; }
        CARDCASH=$ROOT/target/release/cardcash
    fi
    # Our exchange: its own configuration file with the same denominations and bank account,
    # its own offline key, PostgreSQL on the same cluster (database cardcash).
    "$PG_BIN/psql" -q -h "$RUNDIR/pg" -p "$PG_PORT" -U postgres -c "CREATE DATABASE cardcash" >>"$LOGS/pg.log"
    CCCONF=$WORK/cardcash.conf
    {
        cat <<EOF
[taler]
CURRENCY = EUR

[exchange]
BIND = 127.0.0.1:$EX_PORT
BASE_URL = http://127.0.0.1:$EX_PORT/
DATABASE = postgres://postgres@127.0.0.1:$PG_PORT/cardcash
KEY_DIR = $WORK/cardcash-keys
LOOKAHEAD_SIGN = 30 days

[exchange-offline]
MASTER_PRIV_FILE = $WORK/cardcash-master.priv
EOF
        # the same [coin_*], [exchange-account-2] and [exchange-accountcredentials-2] sections
        awk '/^\[coin_|^\[exchange-account/ { on = 1 } /^\[/ && !/^\[coin_|^\[exchange-account/ { on = 0 } on' "$CONF"
    } >"$CCCONF"
    "$CARDCASH" -c "$CCCONF" exchange offline setup >"$LOGS/cc-offline-setup.log" 2>&1 || die "cardcash exchange offline setup"
    CC_MASTER=$(grep -oE '[0-9A-Z]{52}' "$LOGS/cc-offline-setup.log" | head -n 1)
    [ -n "$CC_MASTER" ] || die "no master public key in $LOGS/cc-offline-setup.log"
    sed -i "/^\[exchange\]/a MASTER_PUBLIC_KEY = $CC_MASTER" "$CCCONF"
    "$CARDCASH" -c "$CCCONF" exchange serve >"$LOGS/cardcash-exchange.log" 2>&1 &
    PIDS+=($!)
    wait_for "cardcash's /config" curl -sf "http://127.0.0.1:$EX_PORT/config"
    say "cardcash exchange: keys signed with its offline key"
    "$CARDCASH" -c "$CCCONF" exchange offline sync >"$LOGS/cc-offline.log" 2>&1 || die "cardcash exchange offline sync"
    for cmd in "enable-account payto://x-taler-bank/localhost/Exchange?receiver-name=Exchange" \
        "wire-fee now x-taler-bank EUR:0.01 EUR:0.01" "global-fee now EUR:0 EUR:0 EUR:0"; do
        # shellcheck disable=SC2086
        "$CARDCASH" -c "$CCCONF" exchange offline $cmd --upload >>"$LOGS/cc-offline.log" 2>&1 || die "cardcash exchange offline $cmd"
    done
    wait_for "five denominations in the legacy /keys" sh -c "curl -sf '${EXCHANGE_URL}keys' | jq -e '[.denoms[].value] | unique | length == 5'"
    # the client checks the exchange's master key against its configuration
    sed -i "s/^MASTER_PUBLIC_KEY = .*/MASTER_PUBLIC_KEY = $CC_MASTER/" "$CONF"
fi

# The client starts taler-exchange-wirewatch (the real one for `c`; ours is built in) from PATH.
[ "$TARGET" = cardcash ] && cp "$WRAP/taler-exchange-httpd" "$WRAP/taler-exchange-wirewatch"
export PATH=$WRAP:$EXBIN:$PATH
say "taler-exchange-benchmark -m both -F -r $COINS -n 1 -p $CLIENTS -R 100 against $EXCHANGE_URL"
# The exchange's CPU time: its processes (the C exchange's httpd and security modules, or our
# one process) and every PostgreSQL process (the postmaster's own and its waited-for children's
# time, plus the live backends'). The C exchange's wirewatch, a child of the client, is not
# counted (it favours the C exchange a little).
TICKS=$(getconf CLK_TCK)
proc_ticks() { awk '{ print $14 + $15 + $16 + $17 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
exchange_ticks() {
    local total=0 pm p
    for p in "${EXCHANGE_PIDS[@]}"; do total=$((total + $(proc_ticks "$p"))); done
    pm=$(head -n 1 "$RUNDIR/pg/data/postmaster.pid" 2>/dev/null || true)
    if [ -n "$pm" ]; then
        total=$((total + $(proc_ticks "$pm")))
        for p in $(pgrep -P "$pm"); do
            total=$((total + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
        done
    fi
    echo "$total"
}
EXCHANGE_PIDS=("${PIDS[@]}")
before=$(exchange_ticks)
set +e
(cd "$WORK" && "$EXBIN/taler-exchange-benchmark" -c "$CONF" -m both -F -r "$COINS" -n 1 -p "$CLIENTS" -R 100 \
    -L "${BENCH_LOG:-WARNING}" >"$LOGS/benchmark.out" 2>"$LOGS/benchmark.log")
rc=$?
set -e
after=$(exchange_ticks)
cat "$LOGS/benchmark.out"
grep -E "took .* in total" "$LOGS/benchmark.log" || true
[ $rc = 0 ] || { tail -30 "$LOGS/benchmark.log"; die "taler-exchange-benchmark exited with $rc"; }
line=$(grep -E "^Executed" "$LOGS/benchmark.out" | tail -n 1)
[ -n "$line" ] || die "no result line"
echo "$line"
cycles=$((COINS * CLIENTS))
wall_us=$(echo "$line" | sed -E 's/.* in ([0-9]+) µs.*/\1/')
awk -v c="$cycles" -v us="$wall_us" -v t=$((after - before)) -v hz="$TICKS" -v target="$TARGET" 'BEGIN {
    printf "%s: %d coin cycles in %.1f s: %.1f cycles/s (%.1f ms per cycle); exchange CPU (with PostgreSQL) %.1f s, %.2f ms per cycle\n",
        target, c, us / 1e6, c / (us / 1e6), us / 1e3 / c, t / hz, t / hz * 1e3 / c }'
