# Shared by the interop scripts that run GNU Taler's 2022 wallet against our services
# (scripts/interop-wallet-2022.sh, scripts/interop-merchant-2022.sh). Sourced, not run.
#
# The caller sets NAME (its log prefix), REFSTACK, WALLET and TIMEOUT, and `set -euo pipefail`.
# This file: say/die; the SKIPPED exit when the 2022 wallet is not built; the work directory
# ($WORK, $LOGS; INTEROP_DIR keeps it); process bookkeeping (spawn, cleanup on exit: every PID
# stopped, the work directory removed after a success unless kept); wait_for; ini (a value of
# the demo's configuration); wallet/wallet_json (the 2022 wallet on $W1); bank (the bank's core
# API as its admin: set BANK and BANK_TOKEN first). The caller sets ok=1 when it passed.

t0=$(date +%s)
say() { echo "[$NAME $(($(date +%s) - t0))s] $*"; }
exec 9>&2
die() { echo "[$NAME] FAILED: $*" >&9; exit 1; }

if [ ! -x "$WALLET" ]; then
    echo "$NAME: SKIPPED: GNU Taler's 2022 wallet is not built: $WALLET is missing"
    echo "  build it with ../shared/refstack/build-wallet.sh (REFSTACK=$REFSTACK)"
    exit 0
fi
for tool in curl jq; do
    command -v "$tool" >/dev/null || die "needs $tool"
done

if [ -n "${INTEROP_DIR:-}" ]; then
    WORK=$INTEROP_DIR; KEEP_WORK=1
    rm -rf "$WORK"; mkdir -p "$WORK"
else
    WORK=$(mktemp -d "/tmp/cardcash-$NAME.XXXXXX"); KEEP_WORK=0
fi
WORK=$(cd "$WORK" && pwd)
LOGS=$WORK/logs; mkdir -p "$LOGS"

PIDS=()
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
    if [ $ok = 1 ] && [ $KEEP_WORK = 0 ]; then
        rm -rf "$WORK"
    else
        echo "[$NAME] work directory and logs kept: $WORK"
    fi
}
show_tail() { echo "--- $1 (last lines)"; tail -n "${2:-20}" "$1" 2>/dev/null || true; }
on_failure() {
    [ $ok = 1 ] && return
    for f in "$LOGS"/*.log; do show_tail "$f" 8; done >&9
}
trap 'on_failure; cleanup' EXIT
trap 'exit 130' INT TERM

spawn() {
    local name=$1; shift
    "$@" >"$LOGS/$name.log" 2>&1 &
    PIDS+=($!)
    eval "PID_${name//-/_}=$!"
}
wait_for() {
    local what=$1; shift
    local deadline=$(($(date +%s) + TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || die "timed out after ${TIMEOUT}s waiting for $what"
        sleep 0.5
    done
}
ini() {
    awk -v s="$(echo "$2" | tr '[:upper:]' '[:lower:]')" -v k="$(echo "$3" | tr '[:lower:]' '[:upper:]')" '
        /^\[/ { sec = tolower($0); gsub(/[][ \t]/, "", sec); next }
        sec == s && index($0, "=") {
            key = toupper(substr($0, 1, index($0, "=") - 1)); gsub(/[ \t]/, "", key)
            if (key == k) { v = substr($0, index($0, "=") + 1); sub(/^[ \t]+/, "", v); sub(/[ \t]+$/, "", v); print v; exit }
        }' "$1"
}
# start_demo: $CARDCASH (CARDCASH_BIN, else `cargo build -p cardcash`), then
# `cardcash demo --serve --legacy-face` in $DEMO_DIR, waited for until its services keep running.
start_demo() {
    if [ -n "${CARDCASH_BIN:-}" ]; then
        CARDCASH=$CARDCASH_BIN
    else
        say "cargo build -p cardcash"
        CARDCASH=$(cargo build -q -p cardcash --message-format=json 2>"$LOGS/cargo-build.log" |
            jq -r 'select(.reason == "compiler-artifact" and .target.name == "cardcash" and .executable != null) | .executable' |
            tail -n 1)
        [ -x "$CARDCASH" ] || { show_tail "$LOGS/cargo-build.log" 30; die "cargo build -p cardcash"; }
    fi
    say "peer: taler-wallet-cli $("$WALLET" --version)"
    say "cardcash demo --serve --legacy-face"
    DEMO_DIR=$WORK/demo
    DEMO_CONF=$DEMO_DIR/cardcash.conf
    spawn demo "$CARDCASH" demo --serve --plain --data-dir "$DEMO_DIR" --legacy-face
    wait_for "the demo's services" demo_ready
}
demo_ready() {
    kill -0 "$PID_demo" || die "the demo stopped: $(tail -n 5 "$LOGS/demo.log")"
    grep -q "Services keep running" "$LOGS/demo.log"
}
# wallet NAME ARGS...: the 2022 wallet on its database, output in $LOGS/wallet-NAME.log.
W1=$WORK/wallet.json
wallet() {
    local name=$1; shift
    timeout "$TIMEOUT" "$WALLET" --wallet-db "$W1" --skip-defaults -L INFO "$@" >"$LOGS/wallet-$name.log" 2>&1 ||
        die "taler-wallet-cli $*: $(tail -n 15 "$LOGS/wallet-$name.log")"
}
# wallet_json NAME ARGS...: as wallet, the JSON document of stdout (from its first line that
# opens an object; some commands print a title line before it) into $WORK/NAME.json.
wallet_json() {
    local name=$1; shift
    timeout "$TIMEOUT" "$WALLET" --wallet-db "$W1" --skip-defaults "$@" >"$WORK/$name.out" 2>"$LOGS/wallet-$name.log" ||
        die "taler-wallet-cli $*: $(tail -n 15 "$LOGS/wallet-$name.log")"
    sed -n '/^{/,$p' "$WORK/$name.out" >"$WORK/$name.json"
}
bank() { # bank METHOD PATH [JSON]: the bank's core API as its admin
    if [ $# -ge 3 ]; then
        curl -sf -X "$1" -H "Authorization: Bearer $BANK_TOKEN" -H 'content-type: application/json' -d "$3" "${BANK}$2"
    else
        curl -sf -X "$1" -H "Authorization: Bearer $BANK_TOKEN" "${BANK}$2"
    fi
}
