#!/usr/bin/env bash
# GNU Taler's own wallet of December 2022 (wallet-core 0.9, exchange protocol 12) against OUR
# exchange's legacy face (<exchange>legacy/, protocol 14:0:2), end to end, on private ports.
#
#   scripts/interop-wallet-2022.sh            # REFSTACK defaults to $HOME/refstack
#
# The wallet is built by ../shared/refstack/build-wallet.sh into $REFSTACK/bin/taler-wallet-cli.
# Without it this script says so and exits 0.
#
# What it does and checks:
#  1. `cardcash demo --serve --legacy-face` (bank, card processor, C2EC and our exchange on free
#     ports; SQLite): C2EC suggests the exchange's legacy face to wallets.
#  2. The legacy /keys and /wire answer (version 14:0:2, the `expiry` header wallet-core reads).
#     A copy of them with one account signature flipped is served from a directory: the wallet
#     refuses to add that "exchange" (it verifies the v12 account signatures); with a global
#     fee's signature flipped likewise. (Skipped without python3.)
#  3. `exchanges add` of the legacy face: the wallet verifies the accounts (1030, v12 layout),
#     the wire fees (1028) and the global fees (1022); `exchanges tos` + `accept-tos`.
#  4. Manual withdrawal: `withdraw manual --amount CHF:5.01` creates a reserve; Alice's bank
#     account (funded by the bank's admin) transfers CHF:5.01 to the exchange's bank account with
#     the reserve public key as subject; wirewatch imports it; `run-until-done` withdraws (the
#     wallet checks every denomination's 1025 first): balance CHF:5.
#  5. C2EC: `cardcash terminal withdraw --amount CHF:3.02`; the wallet takes the taler://withdraw
#     URI (`handle-uri -y`, the legacy face is the suggested exchange), the card is charged,
#     `run-until-done`: balance CHF:8 (a 2 and a 1 coin more).
#  6. A deposit to Alice's own bank account (`deposit create CHF:1 payto://…/alice`): the coin is
#     deposited with POST /coins/$PUB/deposit (v12 signatures); when the legacy face serves
#     refresh (POST /coins/$PUB/melt), the wallet refreshes the rest of the coin through melt and
#     reveal and the balance stays at CHF:8 minus the CHF:1, the fees and the change too small
#     for a coin; the exchange wires the deposit to Alice's account.
# Every process it starts is stopped at the end (by its PID).
#
# Env: REFSTACK ($HOME/refstack); INTEROP_DIR (work directory, kept; default a fresh temporary
# one, removed after a success); CARDCASH_BIN (default: `cargo build -p cardcash`);
# INTEROP_TIMEOUT (seconds per wait, default 180).
set -euo pipefail
cd "$(dirname "$0")/.."

REFSTACK=${REFSTACK:-$HOME/refstack}
WALLET=$REFSTACK/bin/taler-wallet-cli
TIMEOUT=${INTEROP_TIMEOUT:-180}
MANUAL=CHF:5.01    # a 5 coin and its withdraw fee
MANUAL_COINS=CHF:5
CARD=CHF:3.02      # a 2 and a 1 coin and their fees
TOTAL=CHF:8
DEPOSIT=CHF:1

NAME=interop-2022
# shellcheck source=lib/interop-2022.sh
. scripts/lib/interop-2022.sh
check_balance() {
    wallet_json balance balance
    echo "wallet balance:"; jq -c '.balances' "$WORK/balance.json"
    jq -e --arg a "$1" '[.balances[] | select(.available == $a)] | length == 1' "$WORK/balance.json" >/dev/null ||
        die "the wallet's balance does not show $1 available"
}

# --- cardcash -------------------------------------------------------------------------------
start_demo
grep -q "^Done in" "$LOGS/demo.log" || die "the demo's own story failed: $(grep -A2 'story stopped' "$LOGS/demo.log")"
EXCHANGE_URL=http://$(ini "$DEMO_CONF" exchange BIND)/
LEGACY=${EXCHANGE_URL}legacy/
[ "$(ini "$DEMO_CONF" c2ec EXCHANGE_BASE_URL)" = "$LEGACY" ] ||
    die "C2EC suggests $(ini "$DEMO_CONF" c2ec EXCHANGE_BASE_URL), not the legacy face $LEGACY"
BANK=http://$(ini "$DEMO_CONF" bank BIND)/
BANK_TOKEN=$(ini "$DEMO_CONF" bank ADMIN_TOKEN)
say "exchange $EXCHANGE_URL, legacy face $LEGACY (C2EC suggests it), bank $BANK"

# --- 2. the legacy face answers -----------------------------------------------------------------
curl -sf -D "$WORK/keys.headers" "${LEGACY}keys" >"$WORK/keys.json" || die "GET ${LEGACY}keys"
curl -sf "${LEGACY}wire" >"$WORK/wire.json" || die "GET ${LEGACY}wire"
echo "legacy /keys: version $(jq -r .version "$WORK/keys.json"), $(jq '.denoms | length' "$WORK/keys.json") denoms, currency $(jq -r .currency "$WORK/keys.json"); header $(grep -i '^expiry:' "$WORK/keys.headers" | tr -d '\r')"
echo "legacy /wire: $(jq -c '[.accounts[].payto_uri]' "$WORK/wire.json"), fees for $(jq -c '.fees | keys' "$WORK/wire.json")"
jq -e '.version == "14:0:2" and (.denoms | length > 0) and all(.denoms[]; .denom_pub.age_mask == 0 and .denom_pub.cipher == "RSA")' "$WORK/keys.json" >/dev/null ||
    die "the legacy /keys is not what wallet-core 0.9 takes"
grep -qi '^expiry:' "$WORK/keys.headers" || die "no expiry header"

# The wallet verifies signatures: a copy with one flipped signature is refused.
# tampered NAME KEYS_FILTER WIRE_FILTER: serves the legacy /keys and /wire through jq filters from
# a directory and tries to add that exchange; the wallet must refuse it.
tampered() {
    local dir=$WORK/tampered-$1 port pid db=$WORK/wallet-tampered-$1.json
    mkdir -p "$dir"
    jq "$2" "$WORK/keys.json" >"$dir/keys"
    jq "$3" "$WORK/wire.json" >"$dir/wire"
    echo "not configured" >"$dir/terms"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    python3 -m http.server --bind 127.0.0.1 --directory "$dir" "$port" >"$LOGS/tampered-$1-http.log" 2>&1 &
    pid=$!
    PIDS+=($pid)
    wait_for "the tampered copy's server" curl -sf -o /dev/null "http://127.0.0.1:$port/keys"
    if timeout "$TIMEOUT" "$WALLET" --wallet-db "$db" --skip-defaults exchanges add "http://127.0.0.1:$port/" \
        >"$LOGS/wallet-tampered-$1.log" 2>&1 &&
        timeout "$TIMEOUT" "$WALLET" --wallet-db "$db" --skip-defaults exchanges list 2>/dev/null |
        sed -n '/^{/,$p' | jq -e '.exchanges[0].exchangeStatus == "ok"' >/dev/null; then
        die "the wallet accepted an exchange whose $1 signature is wrong"
    fi
    echo "  tampered $1: the wallet refuses: $(grep -o 'signature invalid[^"]*' "$LOGS/wallet-tampered-$1.log" | head -n 1)"
    grep -q "signature invalid" "$LOGS/wallet-tampered-$1.log" ||
        die "the wallet refused the tampered $1 copy, but not for its signature: $(tail -n 5 "$LOGS/wallet-tampered-$1.log")"
    kill "$pid" 2>/dev/null || true
}
if command -v python3 >/dev/null; then
    say "the wallet verifies: copies of /keys and /wire with one flipped signature"
    tampered account . "$(printf '.accounts[0].master_sig |= (.[0:10] + (if .[10:11] == "A" then "B" else "A" end) + .[11:])')"
    tampered global-fee "$(printf '.global_fees[0].master_sig |= (.[0:10] + (if .[10:11] == "A" then "B" else "A" end) + .[11:])')" .
    tampered wire-fee . "$(printf '.fees[] |= map(.sig |= (.[0:10] + (if .[10:11] == "A" then "B" else "A" end) + .[11:]))')"
else
    say "python3 missing: the tampered copies are skipped"
fi

# --- 3. the wallet adds the legacy face -------------------------------------------------------
say "wallet: exchanges add $LEGACY"
wallet add exchanges add "$LEGACY"
wallet_json exchanges exchanges list
jq -e --arg u "$LEGACY" '.exchanges[] | select(.exchangeBaseUrl == $u) | .exchangeStatus == "ok" and .currency == "CHF"' \
    "$WORK/exchanges.json" >/dev/null || die "the wallet does not list $LEGACY as ok: $(cat "$WORK/exchanges.json")"
echo "wallet: $(jq -c '.exchanges[0] | {exchangeBaseUrl, currency, tosStatus, exchangeStatus, paytoUris}' "$WORK/exchanges.json")"
wallet_json tos exchanges tos "$LEGACY"
ETAG=$(jq -r .currentEtag "$WORK/tos.json")
wallet accept-tos exchanges accept-tos "$LEGACY" "$ETAG"
wallet_json exchanges-after exchanges list
jq -e '.exchanges[0].tosStatus == "accepted"' "$WORK/exchanges-after.json" >/dev/null ||
    die "the terms of service are not accepted: $(jq -c '.exchanges[0]' "$WORK/exchanges-after.json")"
say "OK: the wallet verified and added the legacy face, terms of service (version $ETAG) accepted"

# --- 4. manual withdrawal funded through the bank ---------------------------------------------
say "wallet: withdraw manual --amount $MANUAL"
wallet manual withdraw manual --exchange "$LEGACY" --amount "$MANUAL"
RESERVE=$(grep -o 'Created reserve [0-9A-Z]*' "$LOGS/wallet-manual.log" | awk '{print $3}')
[ -n "$RESERVE" ] || die "no reserve in the wallet's answer"
EXCHANGE_BANK_ACCOUNT=$(bank GET accounts/exchange | jq -r .payto_uri)
ALICE=$(bank GET accounts/alice | jq -r .payto_uri)
jq -e --arg a "$EXCHANGE_BANK_ACCOUNT" '[.accounts[].payto_uri] | index($a) != null' "$WORK/wire.json" >/dev/null ||
    die "the legacy /wire does not list the exchange's bank account $EXCHANGE_BANK_ACCOUNT"
say "reserve $RESERVE; the bank's admin pays Alice CHF:20, Alice transfers $MANUAL to $EXCHANGE_BANK_ACCOUNT"
bank POST accounts/admin/transactions "{\"payto_uri\":\"$ALICE&message=pocket+money&amount=CHF:20\"}" >/dev/null ||
    die "admin -> Alice"
sep='&'; case "$EXCHANGE_BANK_ACCOUNT" in *\?*) ;; *) sep='?' ;; esac
bank POST accounts/alice/transactions "{\"payto_uri\":\"$EXCHANGE_BANK_ACCOUNT${sep}message=$RESERVE&amount=$MANUAL\"}" >/dev/null ||
    die "Alice -> the exchange"
wallet run-manual run-until-done
check_balance "$MANUAL_COINS"
say "OK: bank transfer -> wirewatch -> reserve; the wallet withdrew $MANUAL_COINS on the legacy face"

# --- 5. C2EC --------------------------------------------------------------------------------
say "C2EC: terminal withdraw --amount $CARD"
spawn terminal "$CARDCASH" -c "$DEMO_CONF" terminal withdraw --amount "$CARD" --plain
terminal_uri() {
    kill -0 "$PID_terminal" || die "the terminal stopped: $(tail -n 5 "$LOGS/terminal.log")"
    grep -q 'taler[+a-z]*://withdraw/' "$LOGS/terminal.log"
}
wait_for "the terminal's taler://withdraw URI" terminal_uri
URI=$(grep -o 'taler[+a-z]*://withdraw/[^ ]*' "$LOGS/terminal.log" | head -n 1)
say "wallet: handle-uri -y $URI"
wallet handle-uri handle-uri -y "$URI"
grep -q "$LEGACY" "$LOGS/wallet-handle-uri.log" || die "the wallet did not take the suggested legacy face"
rc=0; wait "$PID_terminal" || rc=$?
[ $rc = 0 ] && grep -q "Result *CONFIRMED" "$LOGS/terminal.log" ||
    die "the terminal's withdrawal was not confirmed (exit $rc): $(tail -n 8 "$LOGS/terminal.log")"
wallet run-card run-until-done
check_balance "$TOTAL"
say "OK: card payment at the terminal -> C2EC -> wirewatch; the wallet withdrew on the legacy face ($TOTAL in all)"

# --- 6. a deposit to Alice's own account, and the refresh of the change --------------------------
melt=$(curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' -d '{}' \
    "${LEGACY}coins/$RESERVE/melt")
if [ "$melt" = 404 ]; then
    say "the legacy face serves no melt yet (POST /coins/\$PUB/melt answers 404): the deposit is skipped"
else
    alice_before=$(bank GET accounts/alice | jq -r .balance.amount)
    say "wallet: deposit create $DEPOSIT $ALICE (Alice has $alice_before)"
    wallet deposit deposit create "$DEPOSIT" "$ALICE"
    wallet run-deposit run-until-done
    wallet_json transactions transactions
    echo "wallet transactions:"; jq -c '.transactions[] | {type, amountRaw, amountEffective, pending}' "$WORK/transactions.json"
    jq -e '[.transactions[] | select(.type == "deposit" and (.pending | not))] | length == 1' "$WORK/transactions.json" >/dev/null ||
        die "no finished deposit in the wallet"
    # wallet-core 0.9 lists no refresh transaction; its notifications say what happened.
    grep -q '"refresh-melted"' "$LOGS/wallet-deposit.log" "$LOGS/wallet-run-deposit.log" &&
        grep -q '"refresh-revealed"' "$LOGS/wallet-deposit.log" "$LOGS/wallet-run-deposit.log" ||
        die "the wallet did not refresh the change (no refresh-melted/refresh-revealed notification)"
    echo "wallet notifications: $(cat "$LOGS/wallet-deposit.log" "$LOGS/wallet-run-deposit.log" | grep -o '"type": "refresh-[a-z]*"' | sort | uniq -c | tr -s ' ' | tr '\n' ';')"
    spent=$(jq -r '.transactions[] | select(.type == "deposit") | .amountEffective' "$WORK/transactions.json")
    expected=$(echo "${TOTAL#CHF:} ${spent#CHF:}" | awk '{ v = $1 - $2; s = sprintf("%.2f", v); sub(/0+$/, "", s); sub(/\.$/, "", s); print "CHF:" s }')
    check_balance "$expected"
    say "OK: the balance is $TOTAL minus the $spent the deposit took (the coin's contribution, the fees and the change too small for a coin); the rest of the coin came back as fresh coins"
    alice_paid() {
        [ "$(bank GET accounts/alice | jq -r .balance.amount)" != "$alice_before" ]
    }
    wait_for "the exchange to wire the deposit to Alice" alice_paid
    say "OK: deposited $DEPOSIT through /coins/\$PUB/deposit, the change refreshed (melt, reveal); Alice has $(bank GET accounts/alice | jq -r .balance.amount)"
fi

ok=1
say "PASSED: GNU Taler's 2022 wallet works with our exchange's legacy face (keys verified, manual and C2EC withdrawals$([ "$melt" = 404 ] || echo ', deposit and refresh'))"
