#!/usr/bin/env bash
# The runs behind docs/BENCHMARKS.md, "Cluster, actions and jii": every process started
# here (Redis servers of their own on free-looking ports, never 6379), measured with
# comet-bench, and stopped at the end.
#
#   bench/run-cluster.sh [actions|cluster|jii|all]      (default: all)
#
#   actions  action round trips through Redis: an edge process (--listen-actions false)
#            takes the calls, one and then two hub servers (--role hub) run them
#   cluster  fan-out from a publisher on process A to subscribers on A and B through
#            Redis, beside the same run on one in-memory process
#   jii      fan-out on the original jii 1.0.18 (Node, Redis hub) beside comet (in-memory,
#            and on Redis), in the same run: server CPU per delivery, and the ratio
#
# Needs redis-server (>= 6.2); `jii` also needs Node >= 20 and npm (it runs `npm ci` in
# bench/jii). Environment: BASE_PORT (default 7300; ports BASE_PORT..BASE_PORT+20 are
# used), CALLS (default 100000), BENCH_ARGS (extra comet-bench arguments for every run),
# COMETD (another cometd binary to measure, e.g. one built from an older commit).
# Logs and the JSON lines go to target/bench-cluster/.
set -euo pipefail
cd "$(dirname "$0")/.."

what="${1:-all}"
base="${BASE_PORT:-7300}"
calls="${CALLS:-100000}"
read -r -a extra <<< "${BENCH_ARGS:-}"
logs=target/bench-cluster
bin=target/release
mkdir -p "$logs"

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

step() { printf '\n==> %s\n' "$*"; }

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

# cometd named $1 with the remaining arguments and the demo actions (site/test, which the
# actions run calls; through the environment, which older builds in $COMETD ignore: they
# registered the demo actions always); waits until ready; sets $cometd_pid. The
# per-connection publish and action rate limits are off (COMET_PUBLISH_RATE=0,
# COMET_ACTION_RATE=0, also through the environment): the generator calls and publishes
# from few connections far faster than the defaults (200 publishes/s, 100 actions/s) let
# a client.
start_cometd() {
    local name="$1"
    shift
    RUST_LOG=warn COMET_DEMO=true COMET_PUBLISH_RATE=0 COMET_ACTION_RATE=0 \
        "${COMETD:-$bin/cometd}" "$@" > "$logs/$name.out" 2> "$logs/$name.log" &
    cometd_pid=$!
    pids+=("$cometd_pid")
    for _ in $(seq 300); do
        grep -q '^cometd ready' "$logs/$name.out" && return
        sleep 0.05
    done
    echo "cometd $name did not get ready (see $logs/$name.log)" >&2
    exit 1
}

# comet-bench with the given arguments; the table to stdout, the JSON line to $logs/$1.json.
bench() {
    local label="$1"
    shift
    echo "\$ comet-bench $*"
    "$bin/comet-bench" "$@" "${extra[@]}" | tee "$logs/$label.txt"
    grep '^{' "$logs/$label.txt" | tail -n 1 > "$logs/$label.json"
}

actions() {
    step "actions through Redis (machine: $(nproc) cores; $(uptime | sed 's/.*load/load/'))"
    local port=$((base + 1))
    start_redis "$base"
    local redis="$redis_pid"
    local url="redis://127.0.0.1:$base/"
    start_cometd edge --redis "$url" --listen-actions false --bind "127.0.0.1:$port"
    local edge="$cometd_pid"
    start_cometd hub1 --redis "$url" --role hub
    local hub1="$cometd_pid"
    local ws="ws://127.0.0.1:$port/comet/websocket"
    local measure=(--redis-pid "$redis" --redis "127.0.0.1:$base" --calls "$calls")
    bench actions-1hub actions --url "$ws" --pid "$edge" --pid "$hub1" "${measure[@]}"
    start_cometd hub2 --redis "$url" --role hub
    local hub2="$cometd_pid"
    bench actions-2hubs actions --url "$ws" --pid "$edge" --pid "$hub1" --pid "$hub2" \
        "${measure[@]}"
    bench actions-2hubs-200 actions --url "$ws" --pid "$edge" --pid "$hub1" --pid "$hub2" \
        "${measure[@]}" --in-flight 4
}

cluster() {
    step "cluster fan-out through Redis (machine: $(nproc) cores; $(uptime | sed 's/.*load/load/'))"
    local redis_port=$((base + 5))
    start_redis "$redis_port"
    local url="redis://127.0.0.1:$redis_port/"
    start_cometd a --redis "$url" --listen-actions false --bind "127.0.0.1:$((base + 6))"
    local a="$cometd_pid"
    start_cometd b --redis "$url" --listen-actions false --bind "127.0.0.1:$((base + 7))"
    local b="$cometd_pid"
    start_cometd single --bind "127.0.0.1:$((base + 8))"
    local single="$cometd_pid"
    bench cluster cluster \
        --url "ws://127.0.0.1:$((base + 6))/comet/websocket" \
        --url "ws://127.0.0.1:$((base + 7))/comet/websocket" \
        --pid "$a" --pid "$b" \
        --reference-url "ws://127.0.0.1:$((base + 8))/comet/websocket" \
        --reference-pid "$single"
}

jii() {
    step "comet beside jii 1.0.18 (machine: $(nproc) cores; $(uptime | sed 's/.*load/load/'))"
    if ! command -v node > /dev/null || ! command -v npm > /dev/null; then
        echo "error: the jii run needs Node >= 20 and npm" >&2
        exit 1
    fi
    (cd bench/jii && npm ci --no-audit --no-fund --loglevel=error)
    local jii_redis=$((base + 10)) comet_redis=$((base + 11))
    start_redis "$jii_redis"
    start_redis "$comet_redis"
    JII_PORT=$((base + 12)) JII_REDIS_PORT="$jii_redis" node bench/jii/server.js \
        > "$logs/jii.out" 2> "$logs/jii.log" &
    local jii="$!"
    pids+=("$jii")
    for _ in $(seq 200); do
        grep -q 'jii comet listening' "$logs/jii.out" && break
        sleep 0.05
    done
    grep -q 'jii comet listening' "$logs/jii.out" || {
        echo "jii did not start (see $logs/jii.log)" >&2
        exit 1
    }
    start_cometd comet-memory --bind "127.0.0.1:$((base + 13))"
    local memory="$cometd_pid"
    start_cometd comet-redis --redis "redis://127.0.0.1:$comet_redis/" \
        --bind "127.0.0.1:$((base + 14))"
    local redis="$cometd_pid"
    bench fanout-jii fanout --url "ws://127.0.0.1:$((base + 12))/comet/websocket" --pid "$jii" \
        --subscribe-ack false --no-baseline --label jii
    bench fanout-comet-memory fanout --url "ws://127.0.0.1:$((base + 13))/comet/websocket" \
        --pid "$memory" --no-baseline --label comet-memory
    bench fanout-comet-redis fanout --url "ws://127.0.0.1:$((base + 14))/comet/websocket" \
        --pid "$redis" --no-baseline --label comet-redis
    node - "$logs" <<'EOF'
const fs = require('fs');
const dir = process.argv[2];
const run = (name) => JSON.parse(fs.readFileSync(`${dir}/${name}.json`, 'utf8')).runs[0];
const jii = run('fanout-jii');
console.log('\nserver CPU per delivery (1,000 subscribers, 1,000-message burst):');
console.log(`  jii 1.0.18 (Redis hub)   ${jii.cpu_us_per_delivery.toFixed(3)} µs, ${Math.round(jii.deliveries_per_s)} deliveries/s`);
for (const [label, name] of [['comet, in-memory', 'fanout-comet-memory'], ['comet, Redis hub', 'fanout-comet-redis']]) {
  const comet = run(name);
  const ratio = comet.cpu_us_per_delivery / jii.cpu_us_per_delivery;
  console.log(`  ${label.padEnd(24)} ${comet.cpu_us_per_delivery.toFixed(3)} µs, ${Math.round(comet.deliveries_per_s)} deliveries/s: ${ratio.toFixed(3)} of jii's CPU (1/${(1 / ratio).toFixed(1)})`);
}
EOF
}

cargo build --release -p comet -p comet-bench --bin cometd --bin comet-bench
case "$what" in
    actions) actions ;;
    cluster) cluster ;;
    jii) jii ;;
    all)
        actions
        cleanup
        pids=()
        cluster
        cleanup
        pids=()
        jii
        ;;
    *)
        echo "usage: $0 [actions|cluster|jii|all]" >&2
        exit 2
        ;;
esac
