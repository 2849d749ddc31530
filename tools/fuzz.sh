#!/usr/bin/env bash
# Fuzzes what parses bytes from peers: SRTP/SRTCP (relay/fuzz: `unprotect`, `unprotect_rtcp`)
# and the ng protocol, SDP, SIP and STUN (control/fuzz: `ng_parse`, `sdp_parse`, `sip_parse`,
# `stun_parse`)
# for a bounded time per target: tools/fuzz.sh [SECONDS]  (default 30).
# Installs cargo-fuzz only when it is missing. Exits non-zero when a target crashes (or
# fails to build); the crashing input is kept under <crate>/artifacts/<target>/.
#
# cargo-fuzz needs nightly-only rustc flags (-Zsanitizer=address, ...). The toolchain
# here is stable, so RUSTC_BOOTSTRAP=1 unlocks them; libFuzzer itself is built from
# source by the libfuzzer-sys crate and needs a C++ compiler.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-30}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [SECONDS]  (a positive whole number of seconds per target)" >&2
  exit 2
fi
# crate directory:target
targets=(relay/fuzz:unprotect relay/fuzz:unprotect_rtcp control/fuzz:ng_parse control/fuzz:sdp_parse control/fuzz:sip_parse control/fuzz:stun_parse)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi
if ! command -v c++ >/dev/null 2>&1; then
  echo "fuzz.sh: no C++ compiler (c++) found; libFuzzer needs one (apt-get install g++)" >&2
  exit 1
fi

export RUSTC_BOOTSTRAP=1
top=$(pwd)

# Build first, so that the time limits below bound fuzzing only.
for t in "${targets[@]}"; do
  (cd "${t%%:*}" && cargo fuzz build "${t##*:}")
done

status=0
for t in "${targets[@]}"; do
  dir=${t%%:*} name=${t##*:}
  cd "$top/$dir"
  mkdir -p "corpus/$name" "artifacts/$name"
  if [[ $name == sdp_parse ]]; then
    cp "$top"/control/tests/sdp_fixtures/*.sdp "corpus/$name/" 2>/dev/null || true
  fi
  echo "==> fuzzing $dir $name for ${seconds}s"
  # -max_total_time bounds libFuzzer; the outer timeout is a guard against a hang.
  if ! timeout "$((seconds + 120))" cargo fuzz run "$name" "corpus/$name" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="artifacts/$name/" -print_final_stats=1 2>"artifacts/$name/log.txt"; then
    echo "fuzz.sh: $name FAILED; last lines of $dir/artifacts/$name/log.txt:" >&2
    tail -n 40 "artifacts/$name/log.txt" >&2
    status=1
  else
    grep -E '^stat::number_of_executed_units|^Done' "artifacts/$name/log.txt" || true
  fi
done
exit "$status"
