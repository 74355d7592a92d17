#!/usr/bin/env bash
# The runs behind docs/BENCHMARKS.md, "History and recovery" (issue 13). Every process
# started here (a Redis of its own on BASE_PORT, never 6379; the cometd) is stopped at
# the end.
#
#   bench/run-history.sh [fanout|paced|recover|all]      (default: all)
#
#   fanout   one invocation of `comet-bench history-fanout` per size (1,000 and 100
#            subscribers; a 1,000-message burst of 64-byte payloads), six cases and the
#            bare baseline: in memory, then on Redis (the single process's hub), each
#              plain      a cometd without a config file, channel `bench` (history off:
#                         what comet costs without issue 13's settings)
#              history    a cometd with namespace `feed` (history_size 1000,
#                         history_ttl 300, recover), channel `feed:bench`, subscribers
#                         as today (`subscribe feed:bench`: `channel` frames)
#              recover    the same server and channel, subscribers with
#                         `subscribe feed:bench {"recover":true}` (`pub` frames with
#                         offsets, checked consecutive)
#            Server CPU per delivery, and Redis's commands (INFO commandstats), CPU (INFO
#            cpu, and its scheduler's count) and read/write events per publication.
#   paced    the same six cases and the baseline, 1,000 subscribers, at RATE messages/s
#            (default 100), MESSAGES messages (default 500): one history script call per
#            publication on Redis, where the burst's are batched
#   recover  CLIENTS clients (default 1,000) subscribed with recover on `feed:bench` drop
#            their connections (sockets closed), MISSED messages (default 100) are
#            published, and all reconnect at once with their positions; measured from the
#            first reconnect until every client has `subscribed feed:bench
#            {…,"recovered":true}`, each checked to have exactly the missed publications
#            in order; beside it, the same clients reconnecting without recovery (to
#            `bench`) first. In memory, then on Redis, one invocation.
#
# Rate limits: every cometd runs with --publish-rate 0 (the generator publishes a burst
# from one connection) and no per-ip limits (all connections come from 127.0.0.1-4).
#
# Environment: BASE_PORT (default 7600; BASE_PORT..BASE_PORT+4 are used), REPEAT (default
# 3), RATE, MESSAGES, CLIENTS, MISSED, COMETD (another cometd binary). Logs and JSON lines go to
# target/bench-history/; a summary of every run is printed at the end, with the load
# average at each step.
set -euo pipefail
cd "$(dirname "$0")/.."

what="${1:-all}"
base="${BASE_PORT:-7600}"
repeat="${REPEAT:-3}"
clients="${CLIENTS:-1000}"
missed="${MISSED:-100}"
rate="${RATE:-100}"
messages="${MESSAGES:-500}"
logs=target/bench-history
bin=target/release
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

# A Redis of its own on port $1, no persistence; sets $redis_pid.
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

# A fresh cometd on port $1 with the remaining arguments; waits until ready; sets
# $cometd_pid.
start_cometd() {
    local port="$1"
    shift
    RUST_LOG=warn "${COMETD:-$bin/cometd}" --bind "127.0.0.1:$port" --publish-rate 0 \
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
    echo "\$ comet-bench $*"
    "$bin/comet-bench" "$@" | tee "$logs/$label.txt"
    grep '^{' "$logs/$label.txt" | tail -n 1 >> "$logs/$label.jsonl"
}

ws() { echo "ws://127.0.0.1:$1/comet/websocket"; }

# Redis on $base; in memory: plain on +1, history on +2; on Redis: plain on +3, history
# on +4. Sets $redis, $mem_plain, $mem_history, $redis_plain, $redis_history.
start_servers() {
    cat > "$logs/history.toml" <<'EOF'
[namespaces.feed]
history_size = 1000
history_ttl = 300
recover = true
EOF
    start_redis "$base"
    redis=$redis_pid
    local url="redis://127.0.0.1:$base/"
    start_cometd "$((base + 1))"
    mem_plain=$cometd_pid
    start_cometd "$((base + 2))" --config "$logs/history.toml"
    mem_history=$cometd_pid
    start_cometd "$((base + 3))" --redis "$url" --listen-actions false
    redis_plain=$cometd_pid
    start_cometd "$((base + 4))" --redis "$url" --listen-actions false --config "$logs/history.toml"
    redis_history=$cometd_pid
}

# One history-fanout invocation of the six cases and the baseline, named $1.
fanout_run() {
    local label="$1"
    shift
    bench "$label" history-fanout --redis "127.0.0.1:$base" --redis-pid "$redis" \
        --case "memory plain,$(ws "$((base + 1))"),$mem_plain,bench" \
        --case "memory history,$(ws "$((base + 2))"),$mem_history,feed:bench" \
        --case "memory recover,$(ws "$((base + 2))"),$mem_history,feed:bench,recover" \
        --case "redis plain,$(ws "$((base + 3))"),$redis_plain,bench,redis" \
        --case "redis history,$(ws "$((base + 4))"),$redis_history,feed:bench,redis" \
        --case "redis recover,$(ws "$((base + 4))"),$redis_history,feed:bench,recover,redis" \
        "$@"
}

fanout() {
    rm -f "$logs"/fanout-*.jsonl
    for n in $(seq "$repeat"); do
        step "history fan-out $n/$repeat"
        start_servers
        fanout_run fanout-1000 --subscribers 1000
        fanout_run fanout-100 --subscribers 100
        cleanup
    done
}

paced() {
    rm -f "$logs"/paced-*.jsonl
    for n in $(seq "$repeat"); do
        step "history fan-out at $rate messages/s $n/$repeat"
        start_servers
        fanout_run paced-1000 --subscribers 1000 --rate "$rate" --messages "$messages"
        cleanup
    done
}

recover() {
    rm -f "$logs/recover.jsonl"
    for n in $(seq "$repeat"); do
        step "recovery of $clients clients that missed $missed $n/$repeat"
        start_servers
        bench recover recover --clients "$clients" --missed "$missed" --plain-channel bench \
            --redis "127.0.0.1:$base" --redis-pid "$redis" \
            --case "memory,$(ws "$((base + 2))"),$mem_history,feed:bench" \
            --case "redis,$(ws "$((base + 4))"),$redis_history,feed:bench,redis"
        cleanup
    done
}

summary() {
    step "summary"
    for file in "$logs"/fanout-*.jsonl "$logs"/paced-*.jsonl; do
        [ -f "$file" ] || continue
        echo "$(basename "$file" .jsonl): server CPU µs per delivery (scheduler's count; stat ticks in brackets), × the first case's, × the baseline's; Redis per publish: commands, scripts, CPU µs (INFO / scheduler)"
        jq -r '
            (.runs | map(select(.label | startswith("baseline"))) | first) as $b
            | (.runs | first) as $p
            | .runs[]
            | "\(.label)\t\(.deliveries_per_s | floor)/s\tsched \(.sched_us_per_delivery * 1000 | round / 1000) µs (\(.cpu_us_per_delivery * 1000 | round / 1000))\t\(.sched_us_per_delivery / $p.sched_us_per_delivery * 100 | round / 100)× plain\t\(if $b then (.sched_us_per_delivery / $b.sched_us_per_delivery * 100 | round / 100 | tostring) + "× baseline" else "" end)\tlost \(.lost) dup \(.duplicated) disorder \(.out_of_order)\(if .redis_per_publish then "\tredis \(.redis_per_publish.commands * 100 | round / 100) cmd \(.redis_per_publish.scripts * 1000 | round / 1000) scripts cpu \(.redis_per_publish.cpu_us * 100 | round / 100) / \((.redis_sched_us_per_publish // 0) * 100 | round / 100) µs \(.redis_per_publish.by_command | to_entries | map("\(.key) \(.value * 1000 | round / 1000)") | join(" "))" else "" end)"
        ' "$file"
    done
    if [ -f "$logs/recover.jsonl" ]; then
        echo "recover: total ms until the last client recovered, p50/p99 per client, server CPU µs per client (scheduler), Redis commands and CPU µs per client; the reconnect without recovery beside it"
        jq -r '
            .runs[]
            | "\(.label)\tcomplete \(.complete)/\(.clients) (missed \(.missed); \(.publications) publications)\trecover \(.recovery.total_ms | round) ms p50 \(.recovery.p50_ms) p99 \(.recovery.p99_ms) sched \(.recovery.sched_us_per_client | round) µs\(if .recovery.redis_per_client then " redis \(.recovery.redis_per_client.commands * 100 | round / 100) cmd \((.recovery.redis_sched_us_per_client // 0) | round) µs" else "" end)\treconnect \(.reconnect.total_ms | round) ms p50 \(.reconnect.p50_ms) p99 \(.reconnect.p99_ms) sched \(.reconnect.sched_us_per_client | round) µs\(if .first_wrong then "\tWRONG: \(.first_wrong)" else "" end)"
        ' "$logs/recover.jsonl"
    fi
    echo "load average at each step:"
    cat "$logs/load.txt"
}

rm -f "$logs/load.txt"
cargo build --release -p comet -p comet-bench --bin cometd --bin comet-bench
case "$what" in
    fanout) fanout ;;
    paced) paced ;;
    recover) recover ;;
    all)
        fanout
        paced
        recover
        ;;
    *)
        echo "usage: $0 [fanout|paced|recover|all]" >&2
        exit 2
        ;;
esac
summary
