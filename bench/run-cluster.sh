#!/usr/bin/env bash
# The runs behind docs/BENCHMARKS.md, "Cluster, actions and jii": every process started
# here (Redis servers of their own on free-looking ports, never 6379), measured with
# comet-bench, and stopped at the end.
#
#   bench/run-cluster.sh [actions|cluster|jii|redis-cluster|all]      (default: all)
#
#   actions  action round trips through Redis: an edge process (--listen-actions false)
#            takes the calls, one and then two hub servers (--role hub) run them
#   cluster  fan-out from a publisher on process A to subscribers on A and B through
#            Redis, beside the same run on one in-memory process
#   jii      fan-out on the original jii 1.0.18 (Node, Redis hub) beside comet (in-memory,
#            and on Redis), in the same run: server CPU per delivery, and the ratio
#   redis-cluster  one edge process (--listen-actions false, holds the clients) and two
#            hub processes (--role hub), first on one Redis (--redis), then on a Redis
#            Cluster of three masters (--redis-cluster), in the same run: fan-out over
#            CHANNELS channels (a burst, then paced), the paced one on one hot channel,
#            actions over ROUTES routes, one hot route; Redis CPU and commands per node;
#            a table of both side by side
#
# Needs redis-server (>= 6.2; >= 7.0, redis-cli and jq for `redis-cluster`); `jii` also needs
# Node >= 20 and npm (it runs `npm ci` in bench/jii). Environment: BASE_PORT (default
# 7300; ports BASE_PORT..BASE_PORT+30 are used), CALLS (default 100000), BENCH_ARGS (extra
# comet-bench arguments for every run), COMETD (another cometd binary to measure, e.g.
# one built from an older commit); for `redis-cluster` also CHANNELS (default 1000),
# SUBSCRIBERS (default 2000, spread over the channels), MESSAGES (default 50000, each to
# one channel), RATE (default 20000 messages/s, the paced and hot-channel runs), ROUTES
# (default 30).
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

# A Redis of its own on port $1, no persistence, with any further redis-server arguments;
# sets $redis_pid.
start_redis() {
    redis-server --port "$1" --bind 127.0.0.1 --save '' --appendonly no --loglevel warning \
        "${@:2}" > "$logs/redis-$1.log" 2>&1 &
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

# A Redis Cluster of three masters, no replicas, on ports $1 $2 $3 (cluster bus on $4 $5
# $6), each with a fresh nodes.conf (a reused one makes the create fail); waits until
# every node says cluster_state:ok.
start_redis_cluster() {
    local ports=("$1" "$2" "$3") buses=("$4" "$5" "$6") i
    for i in 0 1 2; do
        local dir="$PWD/$logs/cluster-${ports[i]}"
        rm -rf "$dir"
        mkdir -p "$dir"
        start_redis "${ports[i]}" --cluster-enabled yes --cluster-port "${buses[i]}" \
            --cluster-config-file "$dir/nodes.conf" --cluster-node-timeout 2000 \
            --cluster-require-full-coverage no --dir "$dir"
    done
    redis-cli --cluster create "127.0.0.1:$1" "127.0.0.1:$2" "127.0.0.1:$3" \
        --cluster-replicas 0 --cluster-yes > "$logs/cluster-create.log" 2>&1 || {
        echo "redis-cli --cluster create failed (see $logs/cluster-create.log)" >&2
        exit 1
    }
    for port in "${ports[@]}"; do
        for _ in $(seq 200); do
            redis-cli -p "$port" cluster info 2> /dev/null | grep -q '^cluster_state:ok' && break
            sleep 0.05
        done
        redis-cli -p "$port" cluster info | grep -q '^cluster_state:ok' || {
            echo "the Redis Cluster node on port $port is not ok" >&2
            exit 1
        }
    done
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

# The redis-cluster runs on one setup: an edge and two hubs on the Redis (or cluster)
# given as cometd arguments ($2…, up to `--`), every Redis node after `--` measured.
# $1 names the setup in the labels and files.
redis_cluster_runs() {
    local setup="$1"
    shift
    local hub=()
    while [ "$1" != -- ]; do
        hub+=("$1")
        shift
    done
    shift
    local nodes=() node
    for node in "$@"; do nodes+=(--redis-node "$node"); done
    local port=$((base + 22))
    local routes="${ROUTES:-30}"
    COMET_BENCH_ROUTES="$routes" start_cometd "$setup-edge" "${hub[@]}" --listen-actions false \
        --bind "127.0.0.1:$port"
    local edge="$cometd_pid"
    COMET_BENCH_ROUTES="$routes" start_cometd "$setup-hub1" "${hub[@]}" --role hub
    local hub1="$cometd_pid"
    COMET_BENCH_ROUTES="$routes" start_cometd "$setup-hub2" "${hub[@]}" --role hub
    local hub2="$cometd_pid"
    local ws="ws://127.0.0.1:$port/comet/websocket"
    bench "rc-$setup-fanout" cluster --label "$setup" --url "$ws" --pid "$edge" "${nodes[@]}" \
        --channels "${CHANNELS:-1000}" --subscribers "${SUBSCRIBERS:-2000}" \
        --messages "${MESSAGES:-50000}"
    # The same messages and deliveries at a fixed rate (RATE messages/s): spread, then on
    # one channel (as many subscribers as one of the CHANNELS had), which is one
    # partition, so one master publishes them all. (A burst on one channel would outrun
    # its few readers and close them as slow consumers.)
    local rate="${RATE:-20000}"
    bench "rc-$setup-paced" cluster --label "$setup paced" --url "$ws" --pid "$edge" \
        "${nodes[@]}" --channels "${CHANNELS:-1000}" --subscribers "${SUBSCRIBERS:-2000}" \
        --messages "${MESSAGES:-50000}" --rate "$rate"
    local per_channel=$((${SUBSCRIBERS:-2000} / ${CHANNELS:-1000}))
    bench "rc-$setup-hot-channel" cluster --label "$setup hot" --url "$ws" --pid "$edge" \
        "${nodes[@]}" --channels 1 --subscribers "$((per_channel > 0 ? per_channel : 1))" \
        --messages "${MESSAGES:-50000}" --rate "$rate"
    # Actions on a cluster need the queue on a Redis Cluster; a failure here is reported
    # and the run goes on.
    local pids_args=(--pid "$edge" --pid "$hub1" --pid "$hub2")
    bench "rc-$setup-actions" actions --url "$ws" "${pids_args[@]}" "${nodes[@]}" \
        --route bench/echo --routes "$routes" --calls "$calls" ||
        echo "error: actions over $routes routes failed on $setup" >&2
    bench "rc-$setup-hot-route" actions --url "$ws" "${pids_args[@]}" "${nodes[@]}" \
        --route bench/echo0 --calls "$calls" ||
        echo "error: actions on one route failed on $setup" >&2
}

# One Redis and a three-master Redis Cluster, the same workloads one after the other,
# then both side by side.
redis_cluster() {
    step "one Redis beside a Redis Cluster (machine: $(nproc) cores; $(uptime | sed 's/.*load/load/'))"
    local single=$((base + 21))
    start_redis "$single"
    redis_cluster_runs one-redis --redis "redis://127.0.0.1:$single/" -- "127.0.0.1:$single"
    cleanup
    pids=()
    local p1=$((base + 23)) p2=$((base + 24)) p3=$((base + 25))
    start_redis_cluster "$p1" "$p2" "$p3" $((base + 26)) $((base + 27)) $((base + 28))
    redis_cluster_runs cluster \
        --redis-cluster "redis://127.0.0.1:$p1/,redis://127.0.0.1:$p2/,redis://127.0.0.1:$p3/" \
        -- "127.0.0.1:$p1" "127.0.0.1:$p2" "127.0.0.1:$p3"
    cleanup
    pids=()
    step "one Redis beside a Redis Cluster ($(uptime | sed 's/.*load/load/'))"
    redis_cluster_summary
}

# The table of the redis-cluster runs, from their JSON lines: one Redis | cluster.
redis_cluster_summary() {
    local kind setup file
    printf '%-34s %16s %16s\n' "" "one Redis" "3-master cluster"
    row() { # label, jq expression on a run, kind
        local values=()
        for setup in one-redis cluster; do
            file="$logs/rc-$setup-$3.json"
            if [ -s "$file" ]; then
                values+=("$(jq -r "$2" "$file")")
            else
                values+=("-")
            fi
        done
        printf '%-34s %16s %16s\n' "$1" "${values[@]}"
    }
    local fan='.runs[-1]' act='.result'
    local ms='/ 1000 | . * 100 | round / 100'
    for kind in fanout paced hot-channel; do
        echo "fan-out ($kind):"
        row "  deliveries/s" "$fan.deliveries_per_s | round" "$kind"
        row "  p50 / p99 ms" "\"\($fan.p50_us $ms) / \($fan.p99_us $ms)\"" "$kind"
        row "  lost / dup" "\"\($fan.lost) / \($fan.duplicated)\"" "$kind"
        row "  edge cpu µs/delivery" "$fan.cpu_us_per_delivery * 1000 | round / 1000" "$kind"
        row "  redis cpu µs/msg: max node" "$fan.redis_nodes.cpu_us_max * 100 | round / 100" "$kind"
        row "  redis cpu µs/msg: sum" "$fan.redis_nodes.cpu_us_sum * 100 | round / 100" "$kind"
        row "  redis cpu µs/msg by node" "[$fan.redis_nodes.nodes[][1].cpu_us * 10 | round / 10] | join(\"/\")" "$kind"
        row "  redis commands/msg (sum)" "$fan.redis_nodes.commands_sum * 100 | round / 100" "$kind"
        row "  redis commands/msg by node" "[$fan.redis_nodes.nodes[][1].commands * 100 | round / 100] | join(\"/\")" "$kind"
    done
    for kind in actions hot-route; do
        echo "actions ($kind):"
        row "  calls/s (errors)" "\"\($act.calls_per_s | round) (\($act.errors))\"" "$kind"
        row "  p50 / p99 ms" "\"\($act.p50_us $ms) / \($act.p99_us $ms)\"" "$kind"
        row "  comet cpu µs/call" "$act.cpu_us_per_call * 100 | round / 100" "$kind"
        row "  redis cpu µs/call: max node" "$act.redis_nodes.cpu_us_max * 100 | round / 100" "$kind"
        row "  redis cpu µs/call: sum" "$act.redis_nodes.cpu_us_sum * 100 | round / 100" "$kind"
        row "  redis cpu µs/call by node" "[$act.redis_nodes.nodes[][1].cpu_us * 10 | round / 10] | join(\"/\")" "$kind"
        row "  redis commands/call (sum)" "$act.redis_nodes.commands_sum * 100 | round / 100" "$kind"
        row "  redis commands/call by node" "[$act.redis_nodes.nodes[][1].commands * 100 | round / 100] | join(\"/\")" "$kind"
        row "  redis script calls/call (sum)" "$act.redis_nodes.scripts_sum * 1000 | round / 1000" "$kind"
    done
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
    redis-cluster) redis_cluster ;;
    all)
        actions
        cleanup
        pids=()
        cluster
        cleanup
        pids=()
        jii
        cleanup
        pids=()
        redis_cluster
        ;;
    *)
        echo "usage: $0 [actions|cluster|jii|redis-cluster|all]" >&2
        exit 2
        ;;
esac
