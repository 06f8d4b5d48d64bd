#!/usr/bin/env bash
# C2EC with GNU Taler's own exchange and wallet (December 2022), end to end, on private ports.
#
#   scripts/interop-refstack.sh            # REFSTACK defaults to $HOME/refstack
#
# The peers are built by ../shared/refstack/build-wallet.sh and build-exchange.sh into $REFSTACK
# (bin/taler-wallet-cli, ex/bin/taler-exchange-*). Without them this script says so and exits 0.
#
# What it does and checks:
#  1. `cardcash demo --serve` (bank, card processor, C2EC on free ports; SQLite) with
#     `--exchange-url` naming the exchange below, so C2EC suggests it to wallets.
#  2. The 2022 C exchange on its own PostgreSQL cluster (scripts/pg-test-cluster.sh on a free
#     port): offline master key, CHF denominations, two accounts at C2EC's Wire Gateway (the
#     exchange's x-taler-bank credit account, enabled with `enable-account`, and a debit-only
#     payto://card-transaction/... account that closes card-funded reserves back to the card),
#     wire fees for both methods, wirewatch with Basic credentials, closer and transfer.
#  3. Withdrawal: `cardcash terminal withdraw --amount CHF:5`; the wallet takes its
#     taler://withdraw URI (`handle-uri -y`), the card is charged, wirewatch imports the
#     reserve from C2EC, `run-until-done` withdraws, `balance` must show CHF:5 available.
#     Then a terminal withdrawal with a suggested amount (`--suggested --amount CHF:3`), which
#     the 2022 wallet cannot choose: it must withdraw the suggestion (balance CHF:8).
#  4. Reserve closing: a second wallet registers a second withdrawal and never withdraws; a
#     wirewatch with IDLE_RESERVE_EXPIRATION_TIME = 15 s imports it; the closer closes it, the
#     transfer tool sends it to C2EC's /transfer (credit account payto://card-transaction/HOST/TX),
#     C2EC reports the transfer `success`, and the card processor's transaction shows the refund
#     (CHF:5 minus the CHF:0.10 closing fee).
# Every process it starts is stopped at the end (by its PID) and the PostgreSQL cluster is removed.
#
# Env: REFSTACK ($HOME/refstack); INTEROP_DIR (work directory, kept; default a fresh temporary one,
# removed after a success); CARDCASH_BIN (default: `cargo build -p cardcash`); INTEROP_TIMEOUT
# (seconds per wait, default 180).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

REFSTACK=${REFSTACK:-$HOME/refstack}
WALLET=$REFSTACK/bin/taler-wallet-cli
EXBIN=$REFSTACK/ex/bin
TIMEOUT=${INTEROP_TIMEOUT:-180}
AMOUNT=CHF:5
SUGGESTED=CHF:3
TOTAL=CHF:8 # AMOUNT + SUGGESTED: the first wallet's balance at the end
CLOSING_FEE=CHF:0.10
EXPECTED_REFUND=4.90 # AMOUNT - CLOSING_FEE, as the card processor writes it

t0=$(date +%s)
say() { echo "[interop $(($(date +%s) - t0))s] $*"; }
# die also reports from inside wait_for's conditions, whose output goes to /dev/null (fd 9).
exec 9>&2
die() { echo "[interop] FAILED: $*" >&9; exit 1; }

missing=()
[ -x "$WALLET" ] || missing+=("$WALLET")
for b in httpd offline dbinit wirewatch closer transfer secmod-rsa secmod-eddsa secmod-cs; do
    [ -x "$EXBIN/taler-exchange-$b" ] || missing+=("$EXBIN/taler-exchange-$b")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "interop-refstack: SKIPPED: GNU Taler's reference wallet/exchange are not built in $REFSTACK"
    printf '  missing: %s\n' "${missing[@]}"
    echo "  build them with ../shared/refstack/build-wallet.sh and build-exchange.sh (REFSTACK=$REFSTACK)"
    exit 0
fi
for tool in curl jq openssl base64 od awk; do
    command -v "$tool" >/dev/null || die "needs $tool"
done
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$PG_BIN/psql" ] || die "needs PostgreSQL's binaries (/usr/lib/postgresql/*/bin)"

if [ -n "${INTEROP_DIR:-}" ]; then
    WORK=$INTEROP_DIR; KEEP_WORK=1
    rm -rf "$WORK"; mkdir -p "$WORK"
else
    WORK=$(mktemp -d /tmp/cardcash-interop.XXXXXX); KEEP_WORK=0
fi
WORK=$(cd "$WORK" && pwd)
LOGS=$WORK/logs; mkdir -p "$LOGS"
# Unix socket paths must stay short (108 bytes): the secmods' and PostgreSQL's go here.
RUNDIR=$(mktemp -d /tmp/ccx.XXXXXX)
chmod 711 "$RUNDIR" # the cluster's owner (postgres, when we are root) must reach its directory

PIDS=()
PG_STARTED=0
ok=0
cleanup() {
    set +e
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill -TERM "${PIDS[$i]}" 2>/dev/null; done
    for _ in $(seq 50); do
        alive=0
        for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.2
    done
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    if [ $PG_STARTED = 1 ]; then
        CARDCASH_PG_PORT=$PG_PORT CARDCASH_PG_DIR=$RUNDIR/pg scripts/pg-test-cluster.sh stop >/dev/null 2>&1
    fi
    rm -rf "$RUNDIR"
    if [ $ok = 1 ] && [ $KEEP_WORK = 0 ]; then
        rm -rf "$WORK"
    else
        echo "[interop] work directory and logs kept: $WORK"
    fi
}
show_tail() { echo "--- $1 (last lines)"; tail -n "${2:-20}" "$1" 2>/dev/null || true; }
on_failure() {
    [ $ok = 1 ] && return
    for f in "$LOGS"/*.log; do show_tail "$f" 8; done >&9
}
trap 'on_failure; cleanup' EXIT
trap 'exit 130' INT TERM

# Starts a command in the background with its output in $LOGS/NAME.log and remembers its PID.
spawn() {
    local name=$1; shift
    "$@" >"$LOGS/$name.log" 2>&1 &
    PIDS+=($!)
    eval "PID_${name//-/_}=$!"
}
stop_pid() {
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
# wait_for DESCRIPTION COMMAND...: polls COMMAND until it succeeds, at most $TIMEOUT seconds.
wait_for() {
    local what=$1; shift
    local deadline=$(($(date +%s) + TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || die "timed out after ${TIMEOUT}s waiting for $what"
        sleep 0.5
    done
}
# A port nothing listens on, below the kernel's ephemeral range (an outgoing connection may hold
# any port of that range, and binding it then fails).
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
# ini FILE SECTION OPTION: one value of an INI file as cardcash writes it.
ini() {
    awk -v s="$(echo "$2" | tr '[:upper:]' '[:lower:]')" -v k="$(echo "$3" | tr '[:lower:]' '[:upper:]')" '
        /^\[/ { sec = tolower($0); gsub(/[][ \t]/, "", sec); next }
        sec == s && index($0, "=") {
            key = toupper(substr($0, 1, index($0, "=") - 1)); gsub(/[ \t]/, "", key)
            if (key == k) { v = substr($0, index($0, "=") + 1); sub(/^[ \t]+/, "", v); sub(/[ \t]+$/, "", v); print v; exit }
        }' "$1"
}
# cardproc_get PATH_AND_QUERY: GET on the card processor's API with the reader's Wallee MAC.
cardproc_get() {
    local ts key mac
    ts=$(date +%s)
    key=$(printf %s "$CP_SECRET" | base64 -d | od -An -v -tx1 | tr -d ' \n')
    mac=$(printf %s "1|$CP_USER|$ts|GET|$1" | openssl dgst -sha512 -mac HMAC -macopt "hexkey:$key" -binary | base64 -w0)
    curl -sf -H "x-mac-version: 1" -H "x-mac-userid: $CP_USER" -H "x-mac-timestamp: $ts" \
        -H "x-mac-value: $mac" "${CARDPROC%/}$1"
}
http_ok() { curl -sf -o /dev/null --max-time 5 "$1"; }

# --- cardcash -------------------------------------------------------------------------------
if [ -n "${CARDCASH_BIN:-}" ]; then
    CARDCASH=$CARDCASH_BIN
else
    say "cargo build -p cardcash"
    CARDCASH=$(cargo build -q -p cardcash --message-format=json 2>"$LOGS/cargo-build.log" |
        jq -r 'select(.reason == "compiler-artifact" and .target.name == "cardcash" and .executable != null) | .executable' |
        tail -n 1)
    [ -x "$CARDCASH" ] || { show_tail "$LOGS/cargo-build.log" 30; die "cargo build -p cardcash"; }
fi
"$WALLET" --version >/dev/null
say "peers: taler-wallet-cli $("$WALLET" --version), $("$EXBIN/taler-exchange-httpd" -v 2>&1 | head -n 1)"

EX_PORT=$(free_port)
EXCHANGE_URL=http://127.0.0.1:$EX_PORT/

say "cardcash demo --serve --exchange-url $EXCHANGE_URL"
DEMO_DIR=$WORK/demo
DEMO_CONF=$DEMO_DIR/cardcash.conf
spawn demo "$CARDCASH" demo --serve --plain --data-dir "$DEMO_DIR" --exchange-url "$EXCHANGE_URL"
demo_ready() {
    kill -0 "$PID_demo" || die "the demo stopped: $(tail -n 5 "$LOGS/demo.log")"
    grep -q "Services keep running" "$LOGS/demo.log"
}
wait_for "the demo's services" demo_ready
grep -q "^Done in" "$LOGS/demo.log" || die "the demo's own story failed: $(grep -A2 'story stopped' "$LOGS/demo.log")"
TERMINAL_URL=$(ini "$DEMO_CONF" terminal C2EC_TERMINAL_URL)
C2EC=${TERMINAL_URL%terminal/}
WG_URL=${C2EC}taler-wire-gateway/
WG_USER=$(ini "$DEMO_CONF" c2ec WIRE_GATEWAY_USERNAME)
WG_PASS=$(ini "$DEMO_CONF" c2ec WIRE_GATEWAY_PASSWORD)
EXCHANGE_ACCOUNT=$(ini "$DEMO_CONF" c2ec EXCHANGE_ACCOUNT)
CARDPROC=$(ini "$DEMO_CONF" c2ec-provider-cardproc BASE_URL)
CP_USER=$(ini "$DEMO_CONF" c2ec-provider-cardproc USER_ID)
CP_SECRET=$(ini "$DEMO_CONF" c2ec-provider-cardproc SECRET)
CP_SPACE=$(ini "$DEMO_CONF" c2ec-provider-cardproc SPACE_ID)
say "C2EC $C2EC (Wire Gateway $WG_URL, user $WG_USER), card processor $CARDPROC"
say "exchange account at C2EC: $EXCHANGE_ACCOUNT"

# --- the 2022 exchange ----------------------------------------------------------------------
PG_PORT=$(free_port)
say "PostgreSQL for the exchange on port $PG_PORT"
PG_STARTED=1
CARDCASH_PG_PORT=$PG_PORT CARDCASH_PG_DIR=$RUNDIR/pg scripts/pg-test-cluster.sh start >"$LOGS/pg.log" 2>&1 ||
    { cat "$LOGS/pg.log"; die "PostgreSQL cluster"; }
"$PG_BIN/psql" -q -h "$RUNDIR/pg" -p "$PG_PORT" -U postgres -c "CREATE DATABASE taler" >>"$LOGS/pg.log"

EXD=$WORK/exchange
mkdir -p "$EXD"
EXCONF=$EXD/exchange.conf
{
    cat <<EOF
[PATHS]
TALER_HOME = $EXD/home
TALER_DATA_HOME = $EXD/home/data/
TALER_CONFIG_HOME = $EXD/home/config/
TALER_CACHE_HOME = $EXD/home/cache/
TALER_RUNTIME_DIR = $RUNDIR/run/

[taler]
CURRENCY = CHF
CURRENCY_ROUND_UNIT = CHF:0.01

[exchange]
BASE_URL = $EXCHANGE_URL
SERVE = tcp
PORT = $EX_PORT
BIND_TO = 127.0.0.1
DB = postgres
MASTER_PUBLIC_KEY = @MASTER_PUB@
WIREWATCH_IDLE_SLEEP_INTERVAL = 1 s
CLOSER_IDLE_SLEEP_INTERVAL = 1 s
TRANSFER_IDLE_SLEEP_INTERVAL = 1 s

[exchangedb-postgres]
CONFIG = postgres:///taler?host=$RUNDIR/pg&port=$PG_PORT&user=postgres

[exchangedb]
# The withdrawal test's reserves: the default closing delay. The closing test runs wirewatch
# with exchange-close.conf, which shortens it (a reserve's expiry is set when it is imported).
IDLE_RESERVE_EXPIRATION_TIME = 4 weeks

[taler-exchange-secmod-rsa]
LOOKAHEAD_SIGN = 30 days
[taler-exchange-secmod-cs]
LOOKAHEAD_SIGN = 30 days
[taler-exchange-secmod-eddsa]
LOOKAHEAD_SIGN = 30 days
DURATION = 7 days

# The exchange's account at C2EC: confirmed card withdrawals are its incoming transfers.
[exchange-account-c2ec]
PAYTO_URI = $EXCHANGE_ACCOUNT
ENABLE_CREDIT = YES

[exchange-accountcredentials-c2ec]
WIRE_GATEWAY_URL = $WG_URL
WIRE_GATEWAY_AUTH_METHOD = basic
USERNAME = $WG_USER
PASSWORD = $WG_PASS

# Debit only: a card-funded reserve's origin is payto://card-transaction/..., so its closing
# needs an account of that wire method; C2EC's /transfer turns it into a card refund.
[exchange-account-card]
PAYTO_URI = payto://card-transaction/c2ec.localhost/exchange
ENABLE_DEBIT = YES

[exchange-accountcredentials-card]
WIRE_GATEWAY_URL = $WG_URL
WIRE_GATEWAY_AUTH_METHOD = basic
USERNAME = $WG_USER
PASSWORD = $WG_PASS
EOF
    for v in 0.01 0.10 1 5 10; do
        cat <<EOF

[coin_chf_${v//./_}]
VALUE = CHF:$v
DURATION_WITHDRAW = 7 days
DURATION_SPEND = 2 years
DURATION_LEGAL = 3 years
FEE_WITHDRAW = CHF:0
FEE_DEPOSIT = CHF:0
FEE_REFRESH = CHF:0
FEE_REFUND = CHF:0
CIPHER = RSA
RSA_KEYSIZE = 2048
EOF
    done
} >"$EXCONF"
printf '@INLINE@ exchange.conf\n\n[exchangedb]\nIDLE_RESERVE_EXPIRATION_TIME = 15 s\n' >"$EXD/exchange-close.conf"

say "exchange: offline master key, database, security modules, httpd on $EXCHANGE_URL"
MASTER_PUB=$("$EXBIN/taler-exchange-offline" -c "$EXCONF" setup 2>"$LOGS/offline-setup.log")
[ -n "$MASTER_PUB" ] || die "taler-exchange-offline setup"
sed -i "s|@MASTER_PUB@|$MASTER_PUB|" "$EXCONF"
"$EXBIN/taler-exchange-dbinit" -c "$EXCONF" >"$LOGS/dbinit.log" 2>&1 || die "taler-exchange-dbinit"
for s in rsa eddsa cs; do
    spawn "secmod-$s" "$EXBIN/taler-exchange-secmod-$s" -c "$EXCONF" -L INFO
done
spawn httpd "$EXBIN/taler-exchange-httpd" -c "$EXCONF" -L INFO
# exchange_up URL: the exchange answers URL with 2xx (and its processes still run).
exchange_up() {
    local name pid
    for name in httpd secmod-rsa secmod-eddsa secmod-cs; do
        pid="PID_${name//-/_}"
        kill -0 "${!pid}" || die "taler-exchange-$name stopped: $(grep -E 'ERROR|WARNING' "$LOGS/$name.log" | tail -n 3)"
    done
    http_ok "$1"
}
wait_for "the exchange's /management/keys" exchange_up "${EXCHANGE_URL}management/keys"
year=$(date +%Y)
offline_setup() {
    "$EXBIN/taler-exchange-offline" -c "$EXCONF" -L INFO \
        download sign \
        enable-account "$EXCHANGE_ACCOUNT" \
        wire-fee "$year" x-taler-bank CHF:0 CHF:0 \
        wire-fee $((year + 1)) x-taler-bank CHF:0 CHF:0 \
        wire-fee "$year" card-transaction CHF:0 "$CLOSING_FEE" \
        wire-fee $((year + 1)) card-transaction CHF:0 "$CLOSING_FEE" \
        global-fee "$year" CHF:0 CHF:0 CHF:0 1h 1year 5 \
        global-fee $((year + 1)) CHF:0 CHF:0 CHF:0 1h 1year 5 \
        upload >>"$LOGS/offline.log" 2>&1
}
# The security modules may still be creating keys when the first download comes.
wait_for "taler-exchange-offline download sign enable-account wire-fee global-fee upload" offline_setup
keys_ready() { curl -sf "${EXCHANGE_URL}keys" | jq -e '.denoms | length > 0'; }
wait_for "the exchange's /keys with denominations" keys_ready
curl -sf "${EXCHANGE_URL}wire" | jq -e --arg a "$EXCHANGE_ACCOUNT" '.accounts[0].payto_uri == $a' >/dev/null ||
    die "the exchange's /wire does not list $EXCHANGE_ACCOUNT"
spawn wirewatch "$EXBIN/taler-exchange-wirewatch" -c "$EXCONF" -L INFO
spawn closer "$EXBIN/taler-exchange-closer" -c "$EXCONF" -L INFO
spawn transfer "$EXBIN/taler-exchange-transfer" -c "$EXCONF" -L INFO
say "exchange $MASTER_PUB: keys signed, account enabled, wirewatch, closer and transfer running"

# --- a withdrawal with the 2022 wallet ------------------------------------------------------
# terminal_uri NAME PID: the terminal printed its taler://withdraw URI (and still runs).
terminal_uri() {
    kill -0 "$2" || die "the terminal stopped: $(tail -n 5 "$LOGS/$1.log")"
    grep -q 'taler[+a-z]*://withdraw/' "$LOGS/$1.log"
}
# terminal_withdraw NAME AMOUNT [OPTION...]: a terminal withdrawal in the background; sets URI.
terminal_withdraw() {
    spawn "$1" "$CARDCASH" -c "$DEMO_CONF" terminal withdraw --amount "$2" --plain "${@:3}"
    local pid_var="PID_${1//-/_}"
    wait_for "the terminal's taler://withdraw URI" terminal_uri "$1" "${!pid_var}"
    URI=$(grep -o 'taler[+a-z]*://withdraw/[^ ]*' "$LOGS/$1.log" | head -n 1)
}
# terminal_done NAME: waits for the terminal to end and requires a confirmed withdrawal.
terminal_done() {
    local pid_var="PID_${1//-/_}" rc=0
    wait "${!pid_var}" || rc=$?
    [ $rc = 0 ] && grep -q "Result *CONFIRMED" "$LOGS/$1.log" ||
        die "the terminal's withdrawal was not confirmed (exit $rc): $(tail -n 8 "$LOGS/$1.log")"
}

say "withdrawal: terminal withdraw --amount $AMOUNT"
terminal_withdraw terminal-1 "$AMOUNT"
say "wallet: handle-uri -y $URI"
W1=$WORK/wallet-1.json
"$WALLET" --wallet-db "$W1" --skip-defaults -L INFO handle-uri -y "$URI" >"$LOGS/wallet-1-handle-uri.log" 2>&1 ||
    die "wallet handle-uri: $(tail -n 15 "$LOGS/wallet-1-handle-uri.log")"
terminal_done terminal-1
say "wallet: run-until-done"
timeout "$TIMEOUT" "$WALLET" --wallet-db "$W1" --skip-defaults -L INFO run-until-done >"$LOGS/wallet-1-run.log" 2>&1 ||
    die "wallet run-until-done: $(tail -n 15 "$LOGS/wallet-1-run.log")"
# check_balance AVAILABLE: the first wallet's balance shows exactly AVAILABLE.
check_balance() {
    "$WALLET" --wallet-db "$W1" --skip-defaults balance >"$WORK/wallet-1-balance.json" 2>"$LOGS/wallet-1-balance.log"
    echo "wallet balance:"; cat "$WORK/wallet-1-balance.json"
    jq -e --arg a "$1" '[.balances[] | select(.available == $a)] | length == 1' "$WORK/wallet-1-balance.json" >/dev/null ||
        die "the wallet's balance does not show $1 available"
}
check_balance "$AMOUNT"
grep -q "Imported transaction" "$LOGS/wirewatch.log" || die "wirewatch imported nothing"
say "OK: the wallet registered at C2EC, wirewatch imported the reserve, the wallet withdrew $AMOUNT"

# A terminal that lets the wallet choose the amount (suggested_amount): the 2022 wallet (bank
# integration v0) cannot choose, so it must be served the suggestion as the amount and withdraw it.
say "withdrawal with a suggested amount: terminal withdraw --suggested --amount $SUGGESTED"
terminal_withdraw terminal-suggested "$SUGGESTED" --suggested
"$WALLET" --wallet-db "$W1" --skip-defaults -L INFO handle-uri -y "$URI" >"$LOGS/wallet-1-handle-uri-suggested.log" 2>&1 ||
    die "wallet handle-uri: $(tail -n 15 "$LOGS/wallet-1-handle-uri-suggested.log")"
terminal_done terminal-suggested
timeout "$TIMEOUT" "$WALLET" --wallet-db "$W1" --skip-defaults -L INFO run-until-done >"$LOGS/wallet-1-run-suggested.log" 2>&1 ||
    die "wallet run-until-done: $(tail -n 15 "$LOGS/wallet-1-run-suggested.log")"
check_balance "$TOTAL"
say "OK: the wallet withdrew the suggested $SUGGESTED too"

# --- a reserve left unwithdrawn goes back to the card ---------------------------------------
# Wirewatch stops first, so the second wallet cannot withdraw while it registers; the new
# wirewatch gives the reserve a 15 s closing delay.
stop_pid "$PID_wirewatch"
say "closing: terminal withdraw --amount $AMOUNT, a second wallet registers and never withdraws"
terminal_withdraw terminal-2 "$AMOUNT"
W2=$WORK/wallet-2.json
"$WALLET" --wallet-db "$W2" --skip-defaults -L INFO handle-uri -y "$URI" >"$LOGS/wallet-2-handle-uri.log" 2>&1 ||
    die "wallet handle-uri: $(tail -n 15 "$LOGS/wallet-2-handle-uri.log")"
terminal_done terminal-2
RESERVE=$(grep -o "reservePub: '[0-9A-Z]*'" "$LOGS/wallet-2-handle-uri.log" | head -n 1 | cut -d"'" -f2)
[ -n "$RESERVE" ] || die "no reserve public key in the wallet's answer"
CARD_TX=$(awk '/^Card tx/ { print $3 }' "$LOGS/terminal-2.log")
say "reserve $RESERVE, card transaction $CARD_TX; wirewatch with a 15 s closing delay"
spawn wirewatch-close "$EXBIN/taler-exchange-wirewatch" -c "$EXD/exchange-close.conf" -L INFO
# the transfer C2EC accepted for this reserve (the closer uses the reserve key as wtid)
transfer_done() {
    local id
    for id in $(curl -sf -u "$WG_USER:$WG_PASS" "${WG_URL}transfers" | jq -r '.transfers[].row_id'); do
        curl -sf -u "$WG_USER:$WG_PASS" "${WG_URL}transfers/$id" >"$WORK/transfer.json"
        if jq -e --arg r "$RESERVE" '.wtid == $r and .status == "success"' "$WORK/transfer.json"; then
            return 0
        fi
    done
    return 1
}
wait_for "the closed reserve's transfer to succeed at C2EC" transfer_done
echo "C2EC transfer:"; jq . "$WORK/transfer.json"
grep -q "Closing reserve" "$LOGS/closer.log" || die "the closer did not log the closing"
jq -e --arg c "$CARD_TX" '.credit_account | endswith("/" + $c)' "$WORK/transfer.json" >/dev/null ||
    die "the transfer went to $(jq -r .credit_account "$WORK/transfer.json"), not card transaction $CARD_TX"
cardproc_get "/api/transaction/read?spaceId=$CP_SPACE&id=$CARD_TX" >"$WORK/card-transaction.json" ||
    die "reading card transaction $CARD_TX at the card processor"
echo "card processor transaction $CARD_TX:"; jq -c '{id, state, completedAmount, refundedAmount}' "$WORK/card-transaction.json"
jq -e --arg r "$EXPECTED_REFUND" '.refundedAmount == $r' "$WORK/card-transaction.json" >/dev/null ||
    die "card transaction $CARD_TX shows refundedAmount $(jq -r .refundedAmount "$WORK/card-transaction.json"), expected $EXPECTED_REFUND"
say "OK: the unwithdrawn reserve was closed to payto://card-transaction/…/$CARD_TX and $EXPECTED_REFUND refunded to the card"

errors=$(grep -h " ERROR " "$LOGS"/secmod-*.log "$LOGS"/httpd.log "$LOGS"/wirewatch*.log "$LOGS"/closer.log "$LOGS"/transfer.log 2>/dev/null || true)
if [ -n "$errors" ]; then
    echo "exchange log lines at ERROR level:"; echo "$errors" | head -n 20
fi
ok=1
say "PASSED: GNU Taler's 2022 exchange and wallet work with C2EC (withdrawal and reserve closing)"
