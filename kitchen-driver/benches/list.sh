#!/usr/bin/env bash
# Benchmark: `kitchen-driver list` on a kitchen.yml whose 1,721 instances are built by ERB loops
# (benches/kitchen-1721.yml, evaluated by Ruby's ERB once, as test-kitchen does), and on the same
# file pre-rendered (no ERB: the loader alone). Uses hyperfine when installed (Debian package
# `hyperfine`), else a plain timing loop. When test-kitchen is installed (`kitchen` on PATH or
# KITCHEN_BIN=/path/to/kitchen), it is measured in the same run on the same file.
#
# Usage: kitchen-driver/benches/list.sh   (from anywhere; builds the release binary first)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cargo build --release -p kitchen-driver --manifest-path "$repo/Cargo.toml" >&2
bin="$repo/target/release/kitchen-driver"

work="$(mktemp -d "${TMPDIR:-/tmp}/kdtest-$$-0-bench-XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/erb" "$work/plain" "$work/home"
cp "$here/kitchen-1721.yml" "$work/erb/kitchen.yml"
# The same config after ERB (what Ruby renders), to time the loader without the Ruby process.
(cd "$work/erb" && ruby -rerb -e 'print ERB.new(File.read("kitchen.yml")).result') \
  > "$work/plain/kitchen.yml"
n="$(cd "$work/erb" && HOME="$work/home" "$bin" list --bare | wc -l)"
echo "instances: $n" >&2

kitchen="${KITCHEN_BIN:-$(command -v kitchen || true)}"
export HOME="$work/home"

if command -v hyperfine > /dev/null; then
  # --shell=none: no shell start-up in the numbers; run from the ERB project's directory.
  cd "$work/erb"
  cmds=(
    -n "kitchen-driver list (ERB via ruby)" "$bin list"
    -n "kitchen-driver list (pre-rendered)" "env KITCHEN_YAML=$work/plain/kitchen.yml $bin list"
    -n "ruby -rerb alone (with RubyGems, as in test-kitchen)" "ruby -rerb -e ERB.new(File.read(%q(kitchen.yml))).result"
  )
  if [ -n "$kitchen" ]; then
    cmds+=(-n "test-kitchen kitchen list" "$kitchen list")
  fi
  hyperfine --shell=none --warmup 3 --min-runs 30 --export-markdown "$work/results.md" "${cmds[@]}" >&2
  cat "$work/results.md"
  if command -v perf > /dev/null; then
    # CPU time is less disturbed than wall time by other work on a shared machine.
    perf stat -e task-clock -r 20 "$bin" list 2>&1 > /dev/null | grep -E "task-clock|elapsed" >&2 || true
  fi
else
  for dir in erb plain; do
    start=$(date +%s%N)
    for _ in $(seq 20); do (cd "$work/$dir" && "$bin" list > /dev/null); done
    end=$(date +%s%N)
    echo "kitchen-driver list ($dir): $(( (end - start) / 20000000 )) ms mean of 20"
  done
fi
if [ -z "$kitchen" ]; then
  echo "test-kitchen is not installed here: compare with the 2.9 s measured for" \
       "\`kitchen list\` on 1,721 ERB-generated instances (../shared/reference/peers-measured.md)." >&2
fi
