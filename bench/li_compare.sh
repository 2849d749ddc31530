#!/usr/bin/env bash
# Undetectability of lawful interception as a benchmark: the same srtpgate, the same load,
# with no task matching the calls ("untapped") and with an active X1 task matching every
# call ("tapped": plaintext taps on every flow, X3 delivery to li-receiver). Every call is
# offered with the same ng `metadata` in both cases, so the only difference is the task.
# Prints `srtpgate-bench compare` of the two (tapped / untapped ratios).
# Env: ROUNDS (2), CALLS (200), RATE (20000), SECS (10s), MAX_SECS (6s), OUT (mktemp),
#      RELAY_CPUS (0), BENCH_CPUS (1), NICE (-10).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-2} CALLS=${CALLS:-200} RATE=${RATE:-20000} SECS=${SECS:-10s} MAX_SECS=${MAX_SECS:-6s}
RELAY_CPUS=${RELAY_CPUS:-0} BENCH_CPUS=${BENCH_CPUS:-1} NICE=${NICE:--10}
OUT=${OUT:-$(mktemp -d /tmp/li-bench.XXXXXX)}
mkdir -p "$OUT"
cargo build --release -q -p srtpgate-bench --bins
cargo build --release -q -p srtpgate-control --bin srtpgate
cargo build --release -q -p srtpgate-tools --bin li-receiver
bin=target/release
NG=${NG:-23223} ADMIN=${ADMIN:-23224} AGENCY=${AGENCY:-23225}
TOKEN=li-bench-token-0123456789abcdef
TARGET=sip:bench-target@example.com
XID=2b36a78b-b628-416d-bd22-65e63a4b4c2f
DID=8f2f4c4e-1b43-4f7e-9d0a-0a1b2c3d4e5f
cat >"$OUT/srtpgate.toml" <<CFG
[ng]
listen = "127.0.0.1:$NG"
[media]
port-min = 24000
port-max = 25999
workers = 1
pin = false
interfaces = [{ name = "default", bind = "127.0.0.1" }]
[li]
admin-listen = "127.0.0.1:$ADMIN"
admin-token = "$TOKEN"
store = "$OUT/li.json"
CFG
rm -f "$OUT/li.json"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
"$bin/li-receiver" --out "$OUT/agency" --listen "127.0.0.1:$AGENCY" >"$OUT/li-receiver.log" 2>&1 &
pids+=($!)
nice -n "$NICE" taskset -c "$RELAY_CPUS" "$bin/srtpgate" --config "$OUT/srtpgate.toml" --metrics-listen off --log warn \
  >"$OUT/srtpgate.log" 2>&1 &
pids+=($!)
sg_pid=$!
"$bin/srtpgate-bench" ping --ng "127.0.0.1:$NG" --wait 10s
x1() {
  curl -sS -o "$OUT/x1-reply.json" -w '%{http_code}\n' -H "Authorization: Bearer $TOKEN" \
    --data-binary "$1" "http://127.0.0.1:$ADMIN/x1"
}
x1 "{\"operation\":\"CreateDestination\",\"destinationDetails\":{\"dId\":\"$DID\",\"deliveryType\":\"X3Only\",\"deliveryAddress\":{\"ipAddressPort\":{\"address\":\"127.0.0.1\",\"port\":{\"TCPPort\":$AGENCY}}}}}"
common=(--ng "127.0.0.1:$NG" --pid "$sg_pid" --calls "$CALLS" --quiet --metadata "$TARGET"
  --suite AES_CM_128_HMAC_SHA1_80 --answer-suite AES_CM_128_HMAC_SHA1_80,AES_CM_128_HMAC_SHA1_32)
run() { # name kind round extra...
  local name=$1 kind=$2 round=$3
  shift 3
  echo "== $name $kind (round $round)"
  nice -n "$NICE" taskset -c "$BENCH_CPUS" "$bin/srtpgate-bench" run "${common[@]}" \
    --json "$OUT/$name-$kind-$round.json" "$@" | sed -n '/offered  /,/relay per core/p'
}
for round in $(seq 1 "$ROUNDS"); do
  run untapped equal "$round" --rate "$RATE" --duration "$SECS"
  run untapped max "$round" --rate max --duration "$MAX_SECS"
  x1 "{\"operation\":\"ActivateTask\",\"taskDetails\":{\"xId\":\"$XID\",\"targetIdentifiers\":[{\"sipUri\":\"$TARGET\"}],\"deliveryType\":\"X3Only\",\"listOfDIDs\":[\"$DID\"]}}"
  run tapped equal "$round" --rate "$RATE" --duration "$SECS"
  run tapped max "$round" --rate max --duration "$MAX_SECS"
  x1 "{\"operation\":\"DeactivateTask\",\"xId\":\"$XID\"}"
done
kill -TERM "${pids[0]}"; wait "${pids[0]}" || true
tail -5 "$OUT/li-receiver.log" | cut -c1-200
"$bin/srtpgate-bench" compare "$OUT" --a tapped --b untapped | tee "$OUT/table.md"
echo "reports in $OUT"
