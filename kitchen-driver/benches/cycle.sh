#!/usr/bin/env bash
# Benchmark: the 4-instance test cycle of ../shared/reference/peers-measured.md, on Docker with
# kitchen/debian-12: for each instance create, run a converge script, verify a file, destroy.
# Times `kitchen-driver test` sequentially and with `-c 4`, and the floor: a plain script of
# `docker` CLI calls doing the same work. test-kitchen + kitchen-docker and Molecule cannot be
# installed here (no RubyGems; Molecule's docker driver needs collections from Galaxy), so their
# figures are cited from peers-measured.md, not measured in this run.
#
# Usage: kitchen-driver/benches/cycle.sh [RUNS]   (default 5; builds the release binary first)
set -euo pipefail
runs=${1:-5}
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cargo build --release -q -p kitchen-driver --manifest-path "$repo/Cargo.toml" >&2
bin="$repo/target/release/kitchen-driver"
DOCKER=/usr/bin/docker

work="$(mktemp -d "${TMPDIR:-/tmp}/kdtest-$$-0-cycle-XXXXXX")"
cleanup() {
  "$DOCKER" ps -aq --filter "label=io.kitchen-driver.project=$work/project" | xargs -r "$DOCKER" rm -f >/dev/null
  "$DOCKER" ps -aq --filter "name=kdbench-$$-" | xargs -r "$DOCKER" rm -f >/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/project/test/integration/default" "$work/home"
cat >"$work/project/kitchen.yml" <<'YML'
driver:
  name: docker
  image: kitchen/debian-12:latest
provisioner:
  name: shell
  sudo: false
verifier:
  name: shell
  remote_exec: true
  command: test -f /etc/converged
platforms:
  - name: p1
  - name: p2
  - name: p3
  - name: p4
suites:
  - name: default
YML
printf '#!/bin/sh\nset -e\necho converged > /etc/converged\n' >"$work/project/test/integration/default/bootstrap.sh"

# The floor: what the work costs through the docker CLI with nothing around it.
cat >"$work/floor.sh" <<FLOOR
#!/bin/sh
set -e
one() {
  c=kdbench-$$-\$1
  $DOCKER run -d --name "\$c" --network none kitchen/debian-12:latest sh -c 'trap exit TERM; while :; do sleep 3600 & wait; done' >/dev/null
  $DOCKER cp "$work/project/test/integration/default/bootstrap.sh" "\$c:/tmp/bootstrap.sh"
  $DOCKER exec "\$c" sh /tmp/bootstrap.sh >/dev/null
  $DOCKER exec "\$c" test -f /etc/converged
  $DOCKER rm -f "\$c" >/dev/null
}
if [ "\${PARALLEL:-0}" = 1 ]; then
  for i in 1 2 3 4; do one \$i & done; wait
else
  for i in 1 2 3 4; do one \$i; done
fi
FLOOR
chmod +x "$work/floor.sh"

cd "$work/project"
export HOME="$work/home"
hyperfine --warmup 1 --runs "$runs" --export-markdown "$work/results.md" \
  -n "kitchen-driver test (sequential)" "$bin test" \
  -n "kitchen-driver test -c 4" "$bin test -c 4" \
  -n "docker CLI script (floor, sequential)" "$work/floor.sh" \
  -n "docker CLI script (floor, 4 in parallel)" "PARALLEL=1 $work/floor.sh" >&2
cat "$work/results.md"
