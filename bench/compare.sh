#!/usr/bin/env bash
# srtpgate against Sipwise rtpengine (userspace, --table=-1): the same worker thread count
# pinned to the same cores, the identical load from srtpgate-bench pinned to the other
# cores, one relay after the other for each load, then one table of ratios
# srtpgate/rtpengine. Also runs engine-bench (the engine's plain UDP forwarder floor).
#
#   bench/compare.sh                  defaults below; ~3 minutes on 2 cores
#   ROUNDS=3 CALLS=400 bench/compare.sh
#
# Loads, each against both relays, alternating relays:
#   equal  SRTP->SRTP at EQUAL_RATE pkt/s (CALLS calls): CPU per packet, latency
#   rtp    plain RTP at EQUAL_RATE: the relay's UDP forwarding floor
#   max    SRTP->SRTP at --rate max: what the relay delivers when flooded
# A offers AES_CM_128_HMAC_SHA1_80 and B accepts _80 or _32, never the offerer's own key:
# rtpengine copies A's _80 line (key included) into its offer to B, so B takes rtpengine's
# own _32 line there and rtpengine re-encrypts (same AES-128-CM and HMAC-SHA1 work, a
# 4-byte instead of a 10-byte tag toward B); srtpgate offers _80 with its own key.
# Needs: rtpengine (Debian rtpengine-daemon), taskset (util-linux). Traffic stays on
# 127.0.0.1. Results: $OUT (JSON per run, PNG plots, table.md, machine.txt).
set -euo pipefail
cd "$(dirname "$0")/.."

WORKERS=${WORKERS:-1}
RELAY_CPUS=${RELAY_CPUS:-0}
BENCH_CPUS=${BENCH_CPUS:-1}
CALLS=${CALLS:-200}
EQUAL_RATE=${EQUAL_RATE:-20000}
EQUAL_SECS=${EQUAL_SECS:-10s}
MAX_SECS=${MAX_SECS:-6s}
ROUNDS=${ROUNDS:-2}
SENDERS=${SENDERS:-1}
RECEIVERS=${RECEIVERS:-1}
OUT=${OUT:-target/compare}
# Relays and bench run at this nice level (negative: ahead of other work on a shared box).
NICE=${NICE:--10}
SG_NG=${SG_NG:-22331}
RE_NG=${RE_NG:-22332}
SG_PORTS=${SG_PORTS:-44000-51999}
RE_PORTS=${RE_PORTS:-52000-59999}

command -v rtpengine >/dev/null || { echo "compare.sh: rtpengine not installed (apt-get install rtpengine-daemon)" >&2; exit 2; }
command -v taskset >/dev/null || { echo "compare.sh: taskset not installed (util-linux)" >&2; exit 2; }

cargo build --release -q -p srtpgate-control --bin srtpgate
cargo build --release -q -p srtpgate-bench --bins
bin=${CARGO_TARGET_DIR:-target}/release
rm -rf "$OUT"
mkdir -p "$OUT"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

nice -n "$NICE" taskset -c "$RELAY_CPUS" "$bin/srtpgate" --ng-listen "127.0.0.1:$SG_NG" --interface 127.0.0.1 \
  --port-min "${SG_PORTS%-*}" --port-max "${SG_PORTS#*-}" --workers "$WORKERS" \
  --metrics-listen off --log warn >"$OUT/srtpgate.log" 2>&1 &
pids+=($!)
sg_pid=$!
nice -n "$NICE" taskset -c "$RELAY_CPUS" rtpengine --config-file=none --table=-1 --no-redis-required --foreground \
  --interface=127.0.0.1 --listen-ng="127.0.0.1:$RE_NG" \
  --port-min="${RE_PORTS%-*}" --port-max="${RE_PORTS#*-}" --num-threads="$WORKERS" --delete-delay=0 \
  --log-stderr --log-level=4 >"$OUT/rtpengine.log" 2>&1 &
pids+=($!)
re_pid=$!
"$bin/srtpgate-bench" ping --ng "127.0.0.1:$SG_NG" --wait 10s
"$bin/srtpgate-bench" ping --ng "127.0.0.1:$RE_NG" --wait 10s

{
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
  lscpu | grep -E '^(Model name|CPU\(s\)|Thread\(s\) per core|Hypervisor vendor|Flags):' | sed 's/  */ /g'
  echo "kernel: $(uname -r)"
  echo "rtpengine: $(rtpengine --version 2>&1 | head -1)"
  echo "relays: $WORKERS worker thread(s) pinned to cpu $RELAY_CPUS; bench pinned to cpu $BENCH_CPUS; nice $NICE"
  echo "load: $CALLS calls, $EQUAL_RATE pkt/s for $EQUAL_SECS (equal, rtp), --rate max for $MAX_SECS; $ROUNDS round(s)"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/machine.txt"

common=(--calls "$CALLS" --senders "$SENDERS" --receivers "$RECEIVERS" --quiet
  --suite AES_CM_128_HMAC_SHA1_80 --answer-suite AES_CM_128_HMAC_SHA1_80,AES_CM_128_HMAC_SHA1_32)

run() { # relay ng-port pid kind round extra-args...
  local relay=$1 port=$2 pid=$3 kind=$4 round=$5
  shift 5
  echo "== $relay $kind (round $round)"
  nice -n "$NICE" taskset -c "$BENCH_CPUS" "$bin/srtpgate-bench" run --ng "127.0.0.1:$port" --pid "$pid" "${common[@]}" \
    --json "$OUT/$relay-$kind-$round.json" "$@" | sed -n '/offered  /,/relay per core/p'
}

for round in $(seq 1 "$ROUNDS"); do
  for relay in srtpgate rtpengine; do
    if [ "$relay" = srtpgate ]; then port=$SG_NG pid=$sg_pid; else port=$RE_NG pid=$re_pid; fi
    run "$relay" "$port" "$pid" equal "$round" --rate "$EQUAL_RATE" --duration "$EQUAL_SECS" \
      --plot "$OUT/$relay-equal-$round.png"
    run "$relay" "$port" "$pid" rtp "$round" --media rtp --rate "$EQUAL_RATE" --duration "$EQUAL_SECS"
    run "$relay" "$port" "$pid" max "$round" --rate max --duration "$MAX_SECS" || true
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"

cleanup
pids=()
echo "== engine-bench: the engine in-process, plain UDP forwarder floor vs SRTP (1 worker)"
"$bin/engine-bench" --seconds 3 | tee "$OUT/engine-bench.txt"

echo
cat "$OUT/machine.txt"
echo
"$bin/srtpgate-bench" compare "$OUT" --a srtpgate --b rtpengine | tee "$OUT/table.md"
