#!/usr/bin/env bash
# The runs behind docs/BENCHMARKS.md, "Presence" (issue 14). Every process started here
# (a Redis of its own on BASE_PORT, never 6379; two cometd) is stopped at the end.
#
#   bench/run-presence.sh
#
# One `comet-bench presence` invocation per repetition: MEMBERS (default 10,000)
# connections subscribed to one channel, LISTENERS (default 1,000) of them, the last to
# subscribe, with {"joinLeave":true}; 200 churners subscribe and unsubscribe, RATE
# (default 100) joins and RATE leaves per second, for CHURN_SECONDS (default 10). Cases, in
# memory (a cometd on BASE_PORT+1) and on Redis (a cometd on BASE_PORT+2 whose hub is the
# Redis), all in one invocation:
#   plain      channel `bench`, no presence: what the churn costs without it (the bare
#              baseline of this workload)
#   presence   channel `room:…` of a namespace with presence and join_leave; nobody listens
#   listen     the same namespace, the last LISTENERS members listen
#   limited    namespace `big` (join_leave_max_clients = 1000): above it no events go out
# Measured: server CPU per second, Redis CPU and commands per second, and per listener
# per second frames, bytes and join/leave entries received.
#
# Environment: BASE_PORT (default 7700), REPEAT (default 3), MEMBERS, LISTENERS, RATE,
# CHURN_SECONDS, COMETD (another cometd binary). Logs and JSON lines go to target/bench-presence/.
set -euo pipefail
cd "$(dirname "$0")/.."

base="${BASE_PORT:-7700}"
repeat="${REPEAT:-3}"
members="${MEMBERS:-10000}"
listeners="${LISTENERS:-1000}"
rate="${RATE:-100}"
seconds="${CHURN_SECONDS:-10}"
logs=target/bench-presence
bin=target/release
mkdir -p "$logs"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

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

start_redis() {
    redis-server --port "$1" --bind 127.0.0.1 --save '' --appendonly no --loglevel warning \
        > "$logs/redis-$1.log" 2>&1 &
    redis_pid=$!
    pids+=("$redis_pid")
    for _ in $(seq 100); do
        redis-cli -p "$1" ping > /dev/null 2>&1 && return
        sleep 0.05
    done
    echo "redis-server on port $1 did not start (see $logs/redis-$1.log)" >&2
    exit 1
}

start_cometd() {
    local port="$1"
    shift
    RUST_LOG=warn "${COMETD:-$bin/cometd}" --bind "127.0.0.1:$port" --publish-rate 0 \
        --subscribe-rate 0 --max-connections-per-ip 0 --connect-rate-per-ip 0 \
        --config "$logs/presence.toml" "$@" \
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

ws() { echo "ws://127.0.0.1:$1/comet/websocket"; }

cat > "$logs/presence.toml" <<'EOF'
[namespaces.room]
presence = true
join_leave = true

[namespaces.big]
presence = true
join_leave = true
join_leave_max_clients = 1000
EOF

rm -f "$logs/presence.jsonl"
for n in $(seq "$repeat"); do
    step "presence: $members members, $listeners listeners, $rate joins and leaves/s, $n/$repeat"
    start_redis "$base"
    redis=$redis_pid
    start_cometd "$((base + 1))"
    memory=$cometd_pid
    start_cometd "$((base + 2))" --redis "redis://127.0.0.1:$base/" --listen-actions false
    on_redis=$cometd_pid
    m="$(ws "$((base + 1))")"
    r="$(ws "$((base + 2))")"
    "$bin/comet-bench" presence --members "$members" --listeners "$listeners" \
        --rate "$rate" --seconds "$seconds" --redis "127.0.0.1:$base" \
        --case "memory plain,$m,$memory,bench" \
        --case "memory presence,$m,$memory,room:a" \
        --case "memory listen,$m,$memory,room:b,listen" \
        --case "memory limited,$m,$memory,big:c,listen" \
        --case "redis plain,$r,$on_redis,bench,redis" \
        --case "redis presence,$r,$on_redis,room:d,redis" \
        --case "redis listen,$r,$on_redis,room:e,listen,redis" \
        --case "redis limited,$r,$on_redis,big:f,listen,redis" \
        | tee "$logs/presence-$n.txt"
    grep '^{' "$logs/presence-$n.txt" | tail -n 1 >> "$logs/presence.jsonl"
    cleanup
done
step "done: target/bench-presence/presence-*.txt"
