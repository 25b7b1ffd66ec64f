#!/usr/bin/env bash
# Benchmark: kitchen-driver's peak RSS (GNU time %M, the whole process) for a shell-provisioner
# converge whose sandbox (`data_path`) holds a tree of random, incompressible data, on Docker
# and on LXD (kitchen/busybox), for a small tree (1 MiB) and a large one (321 MiB by default).
# The instance is created first, outside the measurement; only `converge` (upload + a
# `sha256sum -c` of the tree in the instance) is measured.
#
# Usage: kitchen-driver/benches/upload-memory.sh [BIN ...]   (root, from anywhere)
#   With no BIN, builds and measures the workspace's debug kitchen-driver. Give several
#   binaries (e.g. one built from an older commit) to compare them on the same trees.
#   BIG_MIB=N sets the large tree's size (default 321: 5 x 64 MiB + 1 MiB).
#
# Everything lives in a temporary project (kitchen-driver's containers carry its path) and is
# destroyed at exit.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
if [ "$#" -eq 0 ]; then
  CARGO_INCREMENTAL=0 cargo build -p kitchen-driver --bin kitchen-driver \
    --manifest-path "$repo/Cargo.toml" >&2
  set -- "$repo/target/debug/kitchen-driver"
fi
big_mib="${BIG_MIB:-321}"

work="$(mktemp -d "${TMPDIR:-/tmp}/kdtest-$$-0-upload-bench-XXXXXX")"
projects=()
cleanup() {
  for p in "${projects[@]}"; do
    (cd "$p" && HOME="$work/home" "$1" destroy > /dev/null 2>&1) || true
  done
  rm -rf "$work"
}
trap 'cleanup "$1"' EXIT
mkdir -p "$work/home"

# One tree per size, shared by every run: N files of up to 64 MiB from /dev/urandom.
make_tree() { # dir mib
  local dir="$1" left="$2" i=0
  mkdir -p "$dir/nested"
  while [ "$left" -gt 0 ]; do
    local n=$((left > 64 ? 64 : left))
    head -c "$((n * 1024 * 1024))" /dev/urandom > "$dir/nested/blob$i.bin"
    left=$((left - n))
    i=$((i + 1))
  done
  (cd "$dir" && find . -type f ! -name SUMS | sort | xargs sha256sum > SUMS)
}
make_tree "$work/tree-small" 1
make_tree "$work/tree-big" "$big_mib"

echo "| binary | runtime | tree | peak RSS (MiB) | converge (s) |"
echo "|---|---|---:|---:|---:|"
for bin in "$@"; do
  for runtime in docker lxd; do
    case "$runtime" in
      docker) image=kitchen/busybox:latest ;;
      lxd) image=kitchen/busybox ;;
    esac
    for size in small big; do
      p="$work/project-$runtime-$size-${#projects[@]}"
      projects+=("$p")
      mkdir -p "$p/test/integration/default"
      ln -s "$work/tree-$size" "$p/test/integration/default/data"
      printf '#!/bin/sh\nset -eu\ncd /tmp/kitchen/data\nsha256sum -c SUMS > /dev/null\n' \
        > "$p/test/integration/default/bootstrap.sh"
      printf 'driver:\n  name: %s\nprovisioner:\n  name: shell\n  sudo: false\nplatforms:\n  - name: busybox\n    driver:\n      image: %s\nsuites:\n  - name: default\n' \
        "$runtime" "$image" > "$p/kitchen.yml"
      (cd "$p" && HOME="$work/home" "$bin" create > "$work/create.log" 2>&1) \
        || { cat "$work/create.log" >&2; exit 1; }
      start=$(date +%s%N)
      (cd "$p" && HOME="$work/home" /usr/bin/time -f %M -o "$work/rss" "$bin" converge \
        > "$work/converge.log" 2>&1) || { cat "$work/converge.log" >&2; exit 1; }
      end=$(date +%s%N)
      (cd "$p" && HOME="$work/home" "$bin" destroy > /dev/null 2>&1)
      mib=$(awk '{printf "%.1f", $1 / 1024}' "$work/rss")
      secs=$(awk -v ns="$((end - start))" 'BEGIN {printf "%.1f", ns / 1e9}')
      tree_mib=$([ "$size" = small ] && echo 1 || echo "$big_mib")
      echo "| $(basename "$bin") | $runtime | $tree_mib MiB | $mib | $secs |"
    done
  done
done
