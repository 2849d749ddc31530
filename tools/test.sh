#!/usr/bin/env bash
# Runs every srtpgate test from a fresh machine: installs what the tests need (only what is
# missing), then the checks, the workspace tests, the cross-implementation tests, the
# instruction-count benchmark and a bounded fuzzing run. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

step "system packages"
# kamailio ships the rtpengine module; baresip-core has every baresip module the tests use;
# rtpengine-daemon is the reference relay the end-to-end tests also run against.
debs=(libsrtp2-dev libssl-dev tshark pkg-config valgrind python3-pip g++ kamailio baresip-core rtpengine-daemon sox)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "all present: ${debs[*]}"
fi

step "python packages"
pips=(pylibsrtp aiortc)
for p in "${pips[@]}"; do
  if python3 -c "import $p" 2>/dev/null; then
    echo "present: $p"
  else
    python3 -m pip install -q --disable-pip-version-check "$p" 2>&1 | grep -v "Running pip as the 'root' user" || true
    python3 -c "import $p"
  fi
done

step "rust components"
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt clippy

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -q -- -D warnings

step "workspace tests (unit, RFC vectors, properties, libsrtp interop, tools, end-to-end)"
# The end-to-end tests (the tests crate) start real phones, proxies and relays; run them one
# at a time so that a loaded CI machine does not starve them. Everything else runs in parallel.
mkdir -p target
cargo test --workspace --exclude srtpgate-tests --quiet 2>&1 | tee target/test-output.txt
cargo test -p srtpgate-tests --quiet -- --test-threads=1 2>&1 | tee -a target/test-output.txt
grep -q "test result" target/test-output.txt

step "instruction counts (callgrind)"
bench/icount.sh

if [[ -x tools/fuzz.sh ]]; then
  step "fuzzing (bounded)"
  tools/fuzz.sh "${FUZZ_SECONDS:-20}"
fi

step "all tests passed"
