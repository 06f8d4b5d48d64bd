#!/usr/bin/env bash
# GNU Taler's own wallet of December 2022 (wallet-core 0.9, exchange protocol 12, merchant
# protocol 2:0:1) buys the Beethoven Sonatas at OUR storefront and merchant backend, paying
# with coins of OUR exchange's legacy face (<exchange>legacy/, protocol 14:0:2), and picks up
# a refund; all on private ports.
#
#   scripts/interop-merchant-2022.sh          # REFSTACK defaults to $HOME/refstack
#
# The wallet is built by ../shared/refstack/build-wallet.sh into $REFSTACK/bin/taler-wallet-cli.
# Without it this script says so and exits 0 (SKIPPED).
#
# What it does and checks:
#  1. `cardcash demo --serve --legacy-face` (bank, card processor, C2EC, exchange, merchant
#     backend and storefront; SQLite): the merchant trusts the exchange's v23 face and, with
#     --legacy-face, its legacy face too (same master key), so contracts list both.
#  2. The 2022 wallet adds the legacy face (it verifies its keys), accepts its terms and
#     withdraws $MANUAL through a manual withdrawal funded by Alice's bank transfer.
#  3. A browser (curl with a cookie jar) asks the storefront for /sonatas, is redirected to the
#     merchant's payment page and reads its taler+http://pay URI; the wallet takes it
#     (`handle-uri -y`): it claims the order (checks the contract terms with its 2022 codec and
#     the merchant's signature), signs v12 deposit permissions, and pays; the merchant deposits
#     each coin at the legacy face (POST /coins/$PUB/deposit) and verifies the v12
#     confirmations. The balance falls by the price (and fees).
#  4. The browser reloads /sonatas: the page and its PDF are served without a second payment.
#  5. A new browser session (a fresh cookie jar) gets a new order; the wallet, handed its
#     taler+http://pay URI, detects the repurchase (same fulfillment URL) and shows its payment
#     of the first order under the new session (POST /orders/$ID/paid, which the 2022 wallet
#     requires to answer 204); the storefront serves the Sonatas in the new session, the new
#     order is not paid, the balance does not change.
#  6. The shop refunds $REFUND (POST /private/orders/$ID/refund with the admin token); the
#     wallet takes the taler+http://refund URI (`handle-uri -y`), picks the refund up
#     (POST /orders/$ID/refund) and refreshes the refunded coins at the legacy face: its
#     balance rises.
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
MANUAL=CHF:15.04   # coins for the CHF 9.87 Sonatas and their fees
REFUND=CHF:2       # what the shop gives back

NAME=interop-merchant-2022
# shellcheck source=lib/interop-2022.sh
. scripts/lib/interop-2022.sh

# --- cardcash -------------------------------------------------------------------------------
start_demo
EXCHANGE_URL=http://$(ini "$DEMO_CONF" exchange BIND)/
LEGACY=${EXCHANGE_URL}legacy/
MERCHANT=http://$(ini "$DEMO_CONF" merchant BIND)/
MERCHANT_TOKEN=$(ini "$DEMO_CONF" merchant ADMIN_TOKEN)
STOREFRONT=http://$(ini "$DEMO_CONF" storefront BIND)/
BANK=http://$(ini "$DEMO_CONF" bank BIND)/
BANK_TOKEN=$(ini "$DEMO_CONF" bank ADMIN_TOKEN)
say "legacy face $LEGACY, merchant $MERCHANT, storefront $STOREFRONT, bank $BANK"
curl -sf "${MERCHANT}config" >"$WORK/merchant-config.json" || die "GET ${MERCHANT}config"
echo "merchant /config: $(jq -c '{version, currency}' "$WORK/merchant-config.json")"

# --- 2. coins of the legacy face in the 2022 wallet ---------------------------------------------
say "wallet: exchanges add $LEGACY, accept its terms"
wallet add exchanges add "$LEGACY"
wallet_json tos exchanges tos "$LEGACY"
wallet accept-tos exchanges accept-tos "$LEGACY" "$(jq -r .currentEtag "$WORK/tos.json")"
say "wallet: withdraw manual --amount $MANUAL"
wallet manual withdraw manual --exchange "$LEGACY" --amount "$MANUAL"
RESERVE=$(grep -o 'Created reserve [0-9A-Z]*' "$LOGS/wallet-manual.log" | awk '{print $3}')
[ -n "$RESERVE" ] || die "no reserve in the wallet's answer"
EXCHANGE_BANK_ACCOUNT=$(bank GET accounts/exchange | jq -r .payto_uri)
ALICE=$(bank GET accounts/alice | jq -r .payto_uri)
bank POST accounts/admin/transactions "{\"payto_uri\":\"$ALICE&message=pocket+money&amount=CHF:20\"}" >/dev/null ||
    die "admin -> Alice"
sep='&'; case "$EXCHANGE_BANK_ACCOUNT" in *\?*) ;; *) sep='?' ;; esac
bank POST accounts/alice/transactions "{\"payto_uri\":\"$EXCHANGE_BANK_ACCOUNT${sep}message=$RESERVE&amount=$MANUAL\"}" >/dev/null ||
    die "Alice -> the exchange"
wallet run-manual run-until-done
# available_balance: the wallet's available CHF balance as a number.
available_balance() {
    wallet_json "balance-$1" balance
    jq -r '[.balances[] | select(.available | startswith("CHF:"))][0].available | sub("^CHF:"; "") | tonumber' \
        "$WORK/balance-$1.json"
}
B0=$(available_balance withdrawn)
awk -v b="$B0" 'BEGIN { exit !(b > 9.87) }' || die "the wallet withdrew only CHF:$B0"
say "OK: the 2022 wallet holds CHF:$B0 in coins of the legacy face"

# --- 3. the browser asks for the Sonatas; the wallet pays ---------------------------------------
JAR=$WORK/cookies.txt
browser() { # browser NAME URL [curl args]: a GET as a browser (cookies kept), headers and body kept
    local name=$1 url=$2; shift 2
    curl -s -b "$JAR" -c "$JAR" -H 'Accept: text/html' -D "$WORK/$name.headers" -o "$WORK/$name.body" \
        -w '%{http_code} %{url_effective}' "$@" "$url"
}
say "browser: GET ${STOREFRONT}sonatas"
first=$(browser sonatas-1 "${STOREFRONT}sonatas")
location=$(grep -i '^location:' "$WORK/sonatas-1.headers" | tr -d '\r' | sed 's/^[Ll]ocation: *//')
[ -n "$location" ] || die "the storefront answered $first without a redirect to the payment page"
echo "storefront: ${first%% *} -> $location"
page=$(browser payment-page "${STOREFRONT}sonatas" -L)
PAY_URI=$(grep -o "taler[+a-z]*://pay/[^\"'<> ]*" "$WORK/payment-page.body" | head -n 1 | sed 's/&amp;/\&/g')
[ -n "$PAY_URI" ] || die "the payment page ($page) shows no taler://pay URI"
echo "payment page: $page: $PAY_URI"
# taler+http://pay/HOST/ORDER_ID/SESSION_ID?c=TOKEN (the default instance)
ORDER_ID=$(echo "$PAY_URI" | sed -E 's|^taler[+a-z]*://pay/[^/]+/([^/?]+)/.*$|\1|')
say "wallet: handle-uri -y $PAY_URI"
wallet pay handle-uri -y "$PAY_URI"
wallet run-pay run-until-done
curl -sf -H "Authorization: Bearer $MERCHANT_TOKEN" "${MERCHANT}private/orders/$ORDER_ID" >"$WORK/order-paid.json" ||
    die "GET private/orders/$ORDER_ID"
jq -e '.order_status == "paid"' "$WORK/order-paid.json" >/dev/null ||
    die "the merchant does not say order $ORDER_ID is paid: $(jq -c '{order_status}' "$WORK/order-paid.json"); wallet: $(tail -n 20 "$LOGS/wallet-pay.log")"
echo "merchant: order $ORDER_ID $(jq -c '{order_status, deposit_total, refund_amount, exchanges: [.contract_terms.exchanges[].url]}' "$WORK/order-paid.json")"
B1=$(available_balance paid)
awk -v a="$B0" -v b="$B1" 'BEGIN { exit !(a - b >= 9.87) }' || die "the balance fell from CHF:$B0 to CHF:$B1 only"
say "OK: the 2022 wallet claimed and paid order $ORDER_ID (its coins deposited at the legacy face); balance CHF:$B0 -> CHF:$B1"

# --- 4. the browser reloads: the Sonatas ---------------------------------------------------------
reload=$(browser sonatas-2 "${STOREFRONT}sonatas" -L)
[ "${reload%% *}" = 200 ] && grep -q 'sonatas.pdf' "$WORK/sonatas-2.body" ||
    die "the reload answered $reload instead of the Sonatas' page: $(head -c 400 "$WORK/sonatas-2.body")"
pdf=$(browser sonatas-pdf "${STOREFRONT}sonatas/sonatas.pdf" -L)
[ "${pdf%% *}" = 200 ] && [ "$(head -c 4 "$WORK/sonatas-pdf.body")" = "%PDF" ] ||
    die "the PDF answered $pdf"
say "OK: the reload serves the Sonatas' page and the PDF ($(wc -c <"$WORK/sonatas-pdf.body") bytes) without a second payment"

# --- 5. a new browser session: the wallet shows its payment again (/paid) ---------------------------
JAR=$WORK/cookies-2.txt
say "browser (new session): GET ${STOREFRONT}sonatas"
page=$(browser payment-page-2 "${STOREFRONT}sonatas" -L)
PAY_URI_2=$(grep -o "taler[+a-z]*://pay/[^\"'<> ]*" "$WORK/payment-page-2.body" | head -n 1 | sed 's/&amp;/\&/g')
[ -n "$PAY_URI_2" ] || die "the new session's payment page ($page) shows no taler://pay URI"
ORDER_ID_2=$(echo "$PAY_URI_2" | sed -E 's|^taler[+a-z]*://pay/[^/]+/([^/?]+)/.*$|\1|')
[ "$ORDER_ID_2" != "$ORDER_ID" ] || die "the new session got the same order"
say "wallet: handle-uri -y $PAY_URI_2 (a new order for what it bought: repurchase)"
wallet repurchase handle-uri -y "$PAY_URI_2"
grep -q "repurchase detected" "$LOGS/wallet-repurchase.log" || die "the wallet did not detect the repurchase: $(tail -n 15 "$LOGS/wallet-repurchase.log")"
reload=$(browser sonatas-3 "${STOREFRONT}sonatas" -L)
[ "${reload%% *}" = 200 ] && grep -q 'sonatas.pdf' "$WORK/sonatas-3.body" ||
    die "the new session answered $reload instead of the Sonatas' page: $(head -c 400 "$WORK/sonatas-3.body")"
curl -sf -H "Authorization: Bearer $MERCHANT_TOKEN" "${MERCHANT}private/orders/$ORDER_ID_2" >"$WORK/order-2.json" ||
    die "GET private/orders/$ORDER_ID_2"
jq -e '.order_status != "paid"' "$WORK/order-2.json" >/dev/null || die "the new session's order $ORDER_ID_2 was paid again"
B1b=$(available_balance repurchase)
[ "$B1b" = "$B1" ] || die "the balance changed from CHF:$B1 to CHF:$B1b on the repurchase"
say "OK: repurchase detected: the wallet re-bound order $ORDER_ID to the new session (POST /orders/$ORDER_ID/paid, 204), the Sonatas are served, order $ORDER_ID_2 stays $(jq -r .order_status "$WORK/order-2.json"), balance still CHF:$B1"

# --- 6. the shop refunds; the 2022 wallet picks the refund up ------------------------------------
say "shop: refund $REFUND of order $ORDER_ID"
curl -sf -X POST -H "Authorization: Bearer $MERCHANT_TOKEN" -H 'content-type: application/json' \
    -d "{\"refund\":\"$REFUND\",\"reason\":\"a torn page\"}" \
    "${MERCHANT}private/orders/$ORDER_ID/refund" >"$WORK/refund.json" || die "POST private/orders/$ORDER_ID/refund"
REFUND_URI=$(jq -r .taler_refund_uri "$WORK/refund.json")
say "wallet: handle-uri -y $REFUND_URI"
wallet refund handle-uri -y "$REFUND_URI"
wallet run-refund run-until-done
curl -sf -H "Authorization: Bearer $MERCHANT_TOKEN" "${MERCHANT}private/orders/$ORDER_ID" >"$WORK/order-refunded.json" ||
    die "GET private/orders/$ORDER_ID"
echo "merchant: order $ORDER_ID $(jq -c '{order_status, refunded, refund_amount, refund_pending}' "$WORK/order-refunded.json")"
jq -e '.refund_pending == false' "$WORK/order-refunded.json" >/dev/null ||
    die "the merchant says the refund is still pending (the wallet did not pick it up): $(tail -n 20 "$LOGS/wallet-refund.log")"
B2=$(available_balance refunded)
awk -v a="$B1" -v b="$B2" 'BEGIN { exit !(b > a && b <= a + 2) }' || die "the balance went from CHF:$B1 to CHF:$B2 after the refund"
wallet_json transactions transactions
echo "wallet transactions:"; jq -c '.transactions[] | {type, amountRaw, amountEffective, pending}' "$WORK/transactions.json"
say "OK: the refund of $REFUND was picked up; balance CHF:$B1 -> CHF:$B2"

ok=1
say "PASSED: GNU Taler's 2022 wallet bought the Sonatas at our storefront with coins of the legacy face (claim, v12 deposits at /coins/\$PUB/deposit), the reload served them, a new session was recognised as a repurchase (/paid 204), and it picked up a refund of $REFUND (balances CHF:$B0 -> CHF:$B1 -> CHF:$B2)"
