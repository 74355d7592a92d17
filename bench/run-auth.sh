#!/usr/bin/env bash
# The runs behind docs/BENCHMARKS.md, "Authentication and permissions" (issue 12): what
# verifying a token costs a new connection, and what permissions cost a fan-out, each
# measured in one invocation of comet-bench beside what it is compared with. Every cometd
# started here is stopped at the end.
#
#   bench/run-auth.sh [tokens|connect|fanout|paced|all]      (default: all)
#
#   tokens   what signing and verifying one token costs (HS256, RS256, ES256; 2,000 each,
#            one thread of comet-bench, with comet's TokenSigner and TokenVerifier): the
#            token's share of a connection's cost, without the machine's noise around it
#   connect  CONNECTIONS connections (default 10,000; PARALLEL, default 32, at once, from
#            127.0.0.1-8, after as many unmeasured ones per server) to each
#            of four fresh cometd: no authentication; HS256; RS256; ES256 (--anonymous
#            false, tokens from tests/keys/), each token once as `?token=` and once as an
#            `auth` first frame; then the bare baseline (handshake only). A connection is
#            done at `subscribed bench`. Server CPU per connection, and its ratio to the
#            unauthenticated server's.
#
# Server CPU is read twice: from /proc/<pid>/stat (utime + stime, 10 ms ticks, as every
# other figure in docs/BENCHMARKS.md) and from the scheduler's per-thread counts
# (/proc/<pid>/task/*/schedstat, ns): a 1,000-message burst to 100 subscribers costs the
# server a few ticks, too few to compare; the summary's ratios use the scheduler's.
#   fanout   a 1,000-message burst of 64-byte payloads to 1,000 and to 100 subscribers on
#            `room:bench`: cometd without authentication or namespaces ("comet plain"),
#            then cometd with HS256 tokens required and namespace `room` declared
#            (subscribe = authenticated, publish = subscribers, user_channels = true;
#            every connection authenticated with an `auth` frame, the publisher subscribed
#            as the rule needs), then the bare baseline: server CPU per delivery of each.
#   paced    the same, 1,000 subscribers, at RATE messages/s (default 100), MESSAGES
#            messages (default 500).
#
# Rate limits: both fan-out servers run with --publish-rate 0 (the publisher sends its
# burst from one connection; the default 200/s with bursts of 1,000 is meant for clients,
# not for a load generator); the other per-connection limits keep their defaults (one
# subscribe per connection is far below them), the per-ip limits are off (the default,
# given explicitly: every connection comes from 127.0.0.1-8).
#
# Environment: BASE_PORT (default 7500; BASE_PORT..BASE_PORT+5 are used), REPEAT
# (default 3), CONNECTIONS, PARALLEL, RATE, MESSAGES, COMETD (another cometd binary).
# Logs and JSON lines go to target/bench-auth/; a summary of every run is printed at the
# end, with the load average at each step.
set -euo pipefail
cd "$(dirname "$0")/.."

what="${1:-all}"
base="${BASE_PORT:-7500}"
repeat="${REPEAT:-3}"
connections="${CONNECTIONS:-10000}"
parallel="${PARALLEL:-32}"
rate="${RATE:-100}"
messages="${MESSAGES:-500}"
logs=target/bench-auth
bin=target/release
keys=tests/keys
secret="comet-bench HS256 secret, at least 32 bytes long"
mkdir -p "$logs"

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    pids=()
}
trap cleanup EXIT

step() {
    local load
    load="$(uptime | sed 's/.*load/load/')"
    printf '\n==> %s (%s)\n' "$*" "$load"
    printf '%s\t%s\n' "$*" "$load" >> "$logs/load.txt"
}

# A fresh in-memory cometd on port $1 with the remaining arguments; waits until ready;
# sets $cometd_pid.
start_cometd() {
    local port="$1"
    shift
    RUST_LOG=warn "${COMETD:-$bin/cometd}" --bind "127.0.0.1:$port" \
        --max-connections-per-ip 0 --connect-rate-per-ip 0 "$@" \
        > "$logs/cometd-$port.out" 2> "$logs/cometd-$port.log" &
    cometd_pid=$!
    pids+=("$cometd_pid")
    for _ in $(seq 300); do
        grep -q '^cometd ready' "$logs/cometd-$port.out" && return
        sleep 0.05
    done
    echo "cometd on $port did not get ready (see $logs/cometd-$port.log)" >&2
    exit 1
}

# comet-bench with the given arguments; the table to stdout, the JSON line appended to
# $logs/$1.jsonl.
bench() {
    local label="$1"
    shift
    echo "\$ comet-bench $*" | sed "s/$secret/SECRET/g"
    "$bin/comet-bench" "$@" | tee "$logs/$label.txt"
    grep '^{' "$logs/$label.txt" | tail -n 1 >> "$logs/$label.jsonl"
}

ws() { echo "ws://127.0.0.1:$1/comet/websocket"; }

tokens() {
    for n in $(seq "$repeat"); do
        step "tokens $n/$repeat"
        bench tokens tokens \
            --label hs256 --sign "hmac:$secret" --verify "hmac:$secret" \
            --label rs256 --sign "key:$keys/rsa-private.pem" --verify "key:$keys/rsa-public.pem" \
            --label es256 --sign "key:$keys/ec-private.pem" --verify "key:$keys/ec-public.pem"
    done
}

connect() {
    for n in $(seq "$repeat"); do
        step "connect $n/$repeat"
        start_cometd "$base"
        local none=$cometd_pid
        start_cometd "$((base + 1))" --token-hmac-secret "$secret" --anonymous false
        local hs=$cometd_pid
        start_cometd "$((base + 2))" --token-public-key "$keys/rsa-public.pem" --anonymous false
        local rs=$cometd_pid
        start_cometd "$((base + 3))" --token-public-key "$keys/ec-public.pem" --anonymous false
        local es=$cometd_pid
        bench connect connect --connections "$connections" --parallel "$parallel" --sources 8 \
            --baseline \
            --case "none,$(ws "$base"),$none" \
            --case "hs256,$(ws "$((base + 1))"),$hs,hmac:$secret" \
            --case "rs256,$(ws "$((base + 2))"),$rs,key:$keys/rsa-private.pem" \
            --case "es256,$(ws "$((base + 3))"),$es,key:$keys/ec-private.pem"
        cleanup
    done
}

# The two fan-out servers: $plain_pid (no authentication, no namespaces) and $perm_pid
# (HS256 required, namespace `room` with rules).
start_fanout_servers() {
    cat > "$logs/permissions.toml" <<'EOF'
[namespaces.room]
subscribe = "authenticated"
publish = "subscribers"
user_channels = true
EOF
    start_cometd "$((base + 4))" --publish-rate 0
    plain_pid=$cometd_pid
    start_cometd "$((base + 5))" --publish-rate 0 --token-hmac-secret "$secret" \
        --anonymous false --config "$logs/permissions.toml"
    perm_pid=$cometd_pid
}

# One fan-out invocation: comet plain, comet with permissions, the bare baseline.
fanout_run() {
    local label="$1"
    shift
    bench "$label" fanout --channel room:bench --publisher-subscribes true \
        --reference-url "$(ws "$((base + 4))")" --reference-pid "$plain_pid" \
        --reference-label "comet plain" \
        --url "$(ws "$((base + 5))")" --pid "$perm_pid" --label "comet permissions" \
        --sign "hmac:$secret" --token-in frame "$@"
}

fanout() {
    for n in $(seq "$repeat"); do
        step "fan-out burst $n/$repeat"
        start_fanout_servers
        fanout_run fanout-1000 --subscribers 1000
        fanout_run fanout-100 --subscribers 100
        cleanup
    done
}

paced() {
    for n in $(seq "$repeat"); do
        step "fan-out at $rate messages/s $n/$repeat"
        start_fanout_servers
        fanout_run paced-1000 --subscribers 1000 --rate "$rate" --messages "$messages"
        cleanup
    done
}

summary() {
    step "summary"
    if [ -f "$logs/tokens.jsonl" ]; then
        echo "tokens: µs to sign, µs to verify, per token"
        jq -r '.runs[] | "\(.label)\t\(.algorithm)\tsign \(.sign_us * 100 | round / 100) µs\tverify \(.verify_us * 100 | round / 100) µs"' "$logs/tokens.jsonl"
    fi
    if [ -f "$logs/connect.jsonl" ]; then
        echo "connect: connections/s, p50, server CPU µs per connection from /proc/<pid>/stat (user) and from the scheduler (schedstat), × the first case's (schedstat)"
        jq -r '
            (.runs | first) as $f
            | .runs[]
            | "\(.label)\t\(.connections_per_s | floor)/s\tp50 \(.p50_us / 1000) ms\tcpu \(.cpu_us_per_connection * 10 | round / 10) µs (user \(.user_us_per_connection * 10 | round / 10))\tsched \(.sched_us_per_connection * 10 | round / 10) µs\t\(.sched_us_per_connection / $f.sched_us_per_connection * 100 | round / 100)×\tfailed \(.failed)"
        ' "$logs/connect.jsonl"
    fi
    for file in "$logs"/fanout-*.jsonl "$logs"/paced-*.jsonl; do
        [ -f "$file" ] || continue
        echo "$(basename "$file" .jsonl): deliveries/s, p50/p99, server CPU µs per delivery from /proc/<pid>/stat (user) and from the scheduler (schedstat), schedstat × comet plain's, × the baseline's"
        jq -r '
            (.runs | map(select(.label | startswith("baseline"))) | first) as $b
            | (.runs | map(select(.label | startswith("comet plain"))) | first) as $p
            | .runs[]
            | "\(.label)\t\(.deliveries_per_s | floor)/s\tp50 \(.p50_us / 1000) ms\tp99 \(.p99_us / 1000) ms\t\(.cpu_us_per_delivery * 1000 | round / 1000) µs (user \((.user_us_per_delivery // 0) * 1000 | round / 1000))\tsched \(.sched_us_per_delivery * 1000 | round / 1000) µs\t\(if $p then (.sched_us_per_delivery / $p.sched_us_per_delivery * 100 | round / 100 | tostring) + "× plain" else "" end)\t\(if $b then (.sched_us_per_delivery / $b.sched_us_per_delivery * 100 | round / 100 | tostring) + "× baseline" else "" end)\tlost \(.lost) dup \(.duplicated)"
        ' "$file"
    done
    echo "load average at each step:"
    cat "$logs/load.txt"
}

rm -f "$logs"/*.jsonl "$logs/load.txt"
cargo build --release -p comet -p comet-bench --bin cometd --bin comet-bench
case "$what" in
    tokens) tokens ;;
    connect) connect ;;
    fanout) fanout ;;
    paced) paced ;;
    all)
        tokens
        connect
        fanout
        paced
        ;;
    *)
        echo "usage: $0 [tokens|connect|fanout|paced|all]" >&2
        exit 2
        ;;
esac
summary
