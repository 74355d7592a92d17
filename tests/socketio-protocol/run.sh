#!/usr/bin/env bash
# Runs the official Engine.IO and Socket.IO protocol suites against
# examples/socketio-testsrv (the binary is $1), started here on a free port. $2 is a
# folder holding the suites' `test-suite/` folders as `engine.io-protocol/` and
# `socket.io-protocol/` (see README.md beside this script: they are not kept here).
set -euo pipefail
testsrv="$(realpath "$1")"
suites="$(realpath "${2:?usage: run.sh TESTSRV SUITES_DIR}")"
cd "$suites"

log="$(mktemp)"
"$testsrv" --bind 127.0.0.1:0 >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -f "$log"' EXIT
url=""
for _ in $(seq 1 300); do
    url="$(grep -o 'listening on http://[0-9.:]*' "$log" | head -n1 | sed 's/listening on //')" || true
    [ -n "$url" ] && break
    kill -0 "$server" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.1
done
[ -n "$url" ] || { echo "socketio-testsrv did not start" >&2; cat "$log" >&2; exit 1; }

for suite in engine.io-protocol socket.io-protocol; do
    printf '\n--- %s suite against %s\n' "$suite" "$url"
    (
        cd "$suite"
        npm ci --no-audit --no-fund --loglevel=error
        sed "s#http://localhost:3000#$url#" test-suite.js >.run-test-suite.js
        npx mocha --reporter dot .run-test-suite.js
    )
done
