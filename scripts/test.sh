#!/usr/bin/env bash
# The test command of the README: the whole workspace, on SQLite and (when PostgreSQL is installed)
# on a throwaway PostgreSQL cluster that is started here and stopped on exit.
# Set CARDCASH_REQUIRE_PG=1 to fail instead of skipping PostgreSQL (CI does).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${CARDCASH_TEST_PG_URL:-}" ]; then
    if pg_env=$(scripts/pg-test-cluster.sh start); then
        eval "$pg_env"
        export CARDCASH_TEST_PG_URL
        trap 'scripts/pg-test-cluster.sh stop >/dev/null 2>&1 || true' EXIT
        echo "test: PostgreSQL cluster at $CARDCASH_TEST_PG_URL"
    elif [ "${CARDCASH_REQUIRE_PG:-0}" = 1 ]; then
        echo "test: PostgreSQL is required (CARDCASH_REQUIRE_PG=1) but could not be started" >&2
        exit 1
    else
        echo "test: SKIPPING PostgreSQL (no cluster could be started); SQLite only" >&2
    fi
fi

cargo test --workspace "$@"
