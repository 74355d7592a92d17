#!/usr/bin/env bash
# The single-process runs behind docs/BENCHMARKS.md, "The run": each comet figure measured
# in the same invocation of comet-bench as the bare baseline (the generator starts the
# baseline server itself), raw WebSocket and SockJS's WebSocket alike, repeated so the
# spread shows. Every cometd started here is stopped at the end.
#
#   bench/run-core.sh [fanout|paced|idle|metrics|all]      (default: all)
#
#   fanout  1,000 subscribers, a 1,000-message burst of 64-byte payloads: raw, then SockJS,
#           each beside the baseline (server CPU per delivery is the figure to compare)
#   paced   the same at RATE messages/s (default 100), MESSAGES messages (default 500)
#   metrics the fanout burst on two cometds side by side in one invocation: metrics off,
#           and metrics served (--metrics-bind, so every fan-out is counted) as the
#           `metrics-on` reference; the server CPU per delivery of both is the figure
#   idle    10,000 subscribed connections over 100 channels, a fresh cometd each time:
#           server RSS per connection, raw (beside the bare baseline) and SockJS
#
# Environment: BASE_PORT (default 7400; BASE_PORT..BASE_PORT+2 are used), REPEAT (default
# 3), RATE, MESSAGES, COMETD (another cometd binary to measure). Logs and JSON lines go to
# target/bench-core/; a summary of every run is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

what="${1:-all}"
base="${BASE_PORT:-7400}"
repeat="${REPEAT:-3}"
rate="${RATE:-100}"
messages="${MESSAGES:-500}"
logs=target/bench-core
bin=target/release
mkdir -p "$logs"

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    pids=()
}
trap cleanup EXIT

step() { printf '\n==> %s (%s)\n' "$*" "$(uptime | sed 's/.*load/load/')"; }

# A fresh in-memory cometd on port $1; waits until ready; sets $cometd_pid. The
# per-connection publish rate limit is off (COMET_PUBLISH_RATE=0, through the environment,
# which older builds in $COMETD ignore): the publisher sends its burst from one connection,
# faster than the default 200/s with bursts of 1,000 lets a client.
start_cometd() {
    local port="$1"
    shift
    RUST_LOG=warn COMET_PUBLISH_RATE=0 "${COMETD:-$bin/cometd}" --bind "127.0.0.1:$port" "$@" \
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

fanout() {
    local ws="ws://127.0.0.1:$base/comet/websocket"
    for n in $(seq "$repeat"); do
        step "fan-out burst $n/$repeat"
        start_cometd "$base"
        bench fanout-raw fanout --url "$ws" --pid "$cometd_pid"
        bench fanout-sockjs fanout --transport sockjs --url "$ws" --pid "$cometd_pid"
        cleanup
    done
}

paced() {
    local ws="ws://127.0.0.1:$base/comet/websocket"
    for n in $(seq "$repeat"); do
        step "fan-out at $rate messages/s $n/$repeat"
        start_cometd "$base"
        bench paced-raw fanout --url "$ws" --pid "$cometd_pid" --rate "$rate" \
            --messages "$messages"
        bench paced-sockjs fanout --transport sockjs --url "$ws" --pid "$cometd_pid" \
            --rate "$rate" --messages "$messages"
        cleanup
    done
}

metrics() {
    for n in $(seq "$repeat"); do
        step "fan-out burst, metrics off and on $n/$repeat"
        start_cometd "$base"
        local off="$cometd_pid"
        start_cometd "$((base + 1))" --metrics-bind "127.0.0.1:$((base + 2))"
        local on="$cometd_pid"
        bench fanout-metrics fanout --url "ws://127.0.0.1:$base/comet/websocket" --pid "$off" \
            --label metrics-off \
            --reference-url "ws://127.0.0.1:$((base + 1))/comet/websocket" \
            --reference-pid "$on" --reference-label metrics-on
        curl -s "http://127.0.0.1:$((base + 2))/metrics" | grep '^comet_messages_delivered_total'
        cleanup
    done
}

idle() {
    for n in $(seq "$repeat"); do
        step "idle $n/$repeat"
        start_cometd "$((base + 1))"
        bench idle-raw idle --url "ws://127.0.0.1:$((base + 1))/comet/websocket" \
            --pid "$cometd_pid" --baseline
        cleanup
        start_cometd "$((base + 2))"
        bench idle-sockjs idle --transport sockjs \
            --url "ws://127.0.0.1:$((base + 2))/comet/websocket" --pid "$cometd_pid"
        cleanup
    done
}

# One line per run: label, deliveries/s, p50/p99 ms, CPU µs per delivery and its ratio
# to the baseline of the same invocation, then the same for user-space CPU only.
summary() {
    step "summary"
    for file in "$logs"/fanout-*.jsonl "$logs"/paced-*.jsonl; do
        [ -f "$file" ] || continue
        jq -r '
            (.runs | map(select(.label | startswith("baseline"))) | first) as $b
            | .runs[]
            | "\(.label)\t\(.deliveries_per_s | floor)/s\tp50 \(.p50_us / 1000) ms\tp99 \(.p99_us / 1000) ms\t\(.cpu_us_per_delivery * 1000 | round / 1000) µs/delivery\t\(if $b then (.cpu_us_per_delivery / $b.cpu_us_per_delivery * 100 | round / 100 | tostring) + "× baseline" else "" end)\tuser \((.user_us_per_delivery // 0) * 1000 | round / 1000) µs\t\(if $b and $b.user_us_per_delivery then ((.user_us_per_delivery // 0) / $b.user_us_per_delivery * 100 | round / 100 | tostring) + "×" else "" end)\tlost \(.lost) dup \(.duplicated)"
        ' "$file"
    done
    for file in "$logs"/idle-*.jsonl; do
        [ -f "$file" ] || continue
        jq -r '.runs[] | "idle \(if .channels == 0 then "baseline" else input_filename end)\t\(.kib_per_connection * 100 | round / 100) KiB per connection"' "$file"
    done
}

rm -f "$logs"/*.jsonl
cargo build --release -p comet -p comet-bench --bin cometd --bin comet-bench
case "$what" in
    fanout) fanout ;;
    paced) paced ;;
    idle) idle ;;
    metrics) metrics ;;
    all)
        fanout
        paced
        metrics
        idle
        ;;
    *)
        echo "usage: $0 [fanout|paced|idle|metrics|all]" >&2
        exit 2
        ;;
esac
summary
