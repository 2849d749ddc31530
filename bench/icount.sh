#!/usr/bin/env bash
# Instruction counts per SRTP protect and unprotect (172-byte packets), measured with
# callgrind. Counts repeat exactly for the same binary, so a regression shows up as a number
# and not as noise. Compares against bench/icount-baseline.txt and fails when a count grows
# by more than ICOUNT_TOLERANCE percent (default 10).
#   bench/icount.sh            check against the baseline
#   bench/icount.sh --update   rewrite the baseline with the current counts
set -euo pipefail
cd "$(dirname "$0")/.."
tolerance=${ICOUNT_TOLERANCE:-10}
packets=2000
baseline=bench/icount-baseline.txt
cargo build --release -q -p srtpgate-bench --bin srtp-icount
bin=target/release/srtp-icount
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

count() { # suite function -> instructions per packet
  local out="$tmp/cg.$1.$2"
  valgrind --tool=callgrind --callgrind-out-file="$out" --collect-atstart=no \
    --toggle-collect="*$2*" "$bin" "$1" "$packets" >/dev/null 2>"$tmp/log" || {
    cat "$tmp/log" >&2
    exit 1
  }
  awk -v n="$packets" '/^summary:/ { printf "%d\n", $2 / n }' "$out"
}

status=0
new=()
printf '%-26s %-10s %10s %10s\n' suite op instr/pkt baseline
for suite in AES_CM_128_HMAC_SHA1_80 AEAD_AES_128_GCM; do
  for op in icount_protect icount_unprotect; do
    n=$(count "$suite" "$op")
    key="$suite ${op#icount_}"
    new+=("$key $n")
    base=$(awk -v k="$key" '$1" "$2 == k { print $3 }' "$baseline" 2>/dev/null || true)
    printf '%-26s %-10s %10s %10s\n' "$suite" "${op#icount_}" "$n" "${base:--}"
    if [[ -n "$base" && "${1:-}" != --update ]] && (( n * 100 > base * (100 + tolerance) )); then
      echo "REGRESSION: $key costs $n instructions per packet, baseline $base (+${tolerance}% allowed)" >&2
      status=1
    fi
  done
done
if [[ "${1:-}" == --update || ! -f "$baseline" ]]; then
  printf '%s\n' "# suite op instructions-per-172-byte-packet (bench/icount.sh --update)" "${new[@]}" >"$baseline"
  echo "wrote $baseline"
fi
exit $status
