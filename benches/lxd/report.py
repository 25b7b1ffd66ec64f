#!/usr/bin/env python3
"""Turns the benchmark's raw samples into the markdown table PERFORMANCE.md quotes."""

import json
import platform
import statistics
import subprocess
import sys
import time

peers = json.load(open(sys.argv[1]))
ours = json.load(open(sys.argv[2]))
rss_push_kib, rss_exec_kib = int(sys.argv[3]), int(sys.argv[4])
concurrent = open(sys.argv[5]).read().strip()
runs = sys.argv[6]

# Targets from issue 3, as ratios of lxd-client's median to a peer's median in this run.
TARGETS = {
    "server_info": [("pylxd", 0.3)],
    "list_recursion_1": [("pylxd", 0.3)],
    "exec_echo_hi": [("pylxd", 0.4), ("lxc", 0.8)],
    "push_10mib": [("fastest", 1.0)],
}


def ms(samples):
    return statistics.median(samples) * 1000


lxd_version = subprocess.run(
    ["lxc", "query", "/1.0"], capture_output=True, text=True
).stdout
server = json.loads(lxd_version)["environment"]["server_version"]
# The pool the instances' root disks are on: the default profile's.
pool = subprocess.run(
    ["lxc", "profile", "device", "get", "default", "root", "pool"], capture_output=True, text=True
).stdout.strip() or "?"
driver = subprocess.run(
    ["lxc", "query", f"/1.0/storage-pools/{pool}"], capture_output=True, text=True
).stdout
driver = json.loads(driver).get("driver", "?") if driver.strip() else "?"
print(f"## lxd-client benchmark ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n")
print(
    f"Machine: {platform.node()}, {platform.machine()}, {subprocess.getoutput('nproc')} cores, "
    f"kernel {platform.release()}; LXD {server}, pool `{pool}` ({driver}), busybox image; {runs} runs per "
    "operation (push: a third of that, at least 5); medians.\n"
)
print("| operation | lxd-client | pylxd 2.4.2 | lxc CLI | raw socket floor | target | met |")
print("|---|---|---|---|---|---|---|")
all_met = True
for op, targets in TARGETS.items():
    o, p, c = ms(ours["lxd-client"][op]), ms(peers["pylxd"][op]), ms(peers["lxc"][op])
    verdicts = []
    for peer, ratio in targets:
        ref = min(p, c) if peer == "fastest" else {"pylxd": p, "lxc": c}[peer]
        ok = o <= ratio * ref
        all_met &= ok
        verdicts.append(f"{o / ref:.2f}x {peer} (<= {ratio}x): {'yes' if ok else 'NO'}")
    floor = peers["floor"].get(op)
    f = f"{ms(floor):.2f} ms" if floor else "-"
    print(f"| {op} | {o:.2f} ms | {p:.2f} ms | {c:.2f} ms | {f} | {'; '.join(verdicts)} | "
          f"{'yes' if all(v.endswith('yes') for v in verdicts) else 'NO'} |")
print()
for label, kib in (("push 1 GiB file", rss_push_kib), ("stream 100 MiB of exec output", rss_exec_kib)):
    ok = kib < 32 * 1024
    all_met &= ok
    print(f"- peak RSS, {label}: {kib / 1024:.1f} MiB (target < 32 MiB): {'yes' if ok else 'NO'}")
print(f"- 50 concurrent execs on one container: {concurrent}")
for label, count in peers.get("failures", {}).items():
    print(f"- {label}: {count} failed call(s), retried and left out of the timings")
print(f"\nAll targets met: {'yes' if all_met else 'NO'}")
