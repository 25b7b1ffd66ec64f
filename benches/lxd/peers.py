#!/usr/bin/env python3
"""Times the peers of lxd-client on the local LXD daemon: pylxd and the `lxc` CLI.

Prints one JSON object: {"pylxd": {op: [seconds...]}, "lxc": {...}}. The instance names come
from the command line; scripts/bench-lxd creates and removes them. Each operation is the same
one the Rust benchmark times (see lxd-client/examples/bench.rs).
"""

import http.client
import json
import socket
import subprocess
import sys
import time

import pylxd


FAILURES = {}


def timed(fn, runs, label="other peer calls"):
    """Median-ready samples of fn; a peer's own failures are retried and counted, not hidden."""
    samples = []
    warmed = False
    while len(samples) < runs:
        start = time.perf_counter()
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - pylxd's ws4py breaks now and then under load
            FAILURES.setdefault(label, []).append(repr(e))
            if len(FAILURES[label]) > runs:
                raise
            continue
        if warmed:
            samples.append(time.perf_counter() - start)
        warmed = True  # the first call warms connections and caches, untimed
    return samples


class UnixHTTPConnection(http.client.HTTPConnection):
    """The floor: one kept-alive HTTP/1.1 connection on the socket, no parsing beyond JSON."""

    def __init__(self, path):
        super().__init__("lxd")
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def floor_get(conn, url):
    conn.request("GET", url)
    json.loads(conn.getresponse().read())


def lxc(*args, stdin=None):
    subprocess.run(["lxc", *args], check=True, stdout=subprocess.DEVNULL, input=stdin)


def main():
    target, payload_path, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    client = pylxd.Client()
    instance = client.instances.get(target)
    with open(payload_path, "rb") as f:
        payload = f.read()

    def pylxd_exec():
        result = instance.execute(["echo", "hi"])
        assert result.exit_code == 0 and result.stdout == "hi\n", result

    raw = UnixHTTPConnection("/var/lib/lxd/unix.socket")
    out = {
        "floor": {
            "server_info": timed(lambda: floor_get(raw, "/1.0"), runs),
            "list_recursion_1": timed(
                lambda: floor_get(raw, "/1.0/instances?recursion=1"), runs
            ),
        },
        "pylxd": {
            "server_info": timed(lambda: client.api.get().json(), runs),
            "list_recursion_1": timed(lambda: client.instances.all(recursion=1), runs),
            "exec_echo_hi": timed(pylxd_exec, runs, "pylxd exec_echo_hi"),
            "push_10mib": timed(
                lambda: instance.files.put("/tmp/bench-pylxd", payload), max(5, runs // 3)
            ),
        },
        "lxc": {
            "server_info": timed(lambda: lxc("query", "/1.0"), runs),
            "list_recursion_1": timed(
                lambda: lxc("query", "/1.0/instances?recursion=1"), runs
            ),
            "exec_echo_hi": timed(lambda: lxc("exec", target, "--", "echo", "hi"), runs),
            "push_10mib": timed(
                lambda: lxc("file", "push", payload_path, f"{target}/tmp/bench-lxc"),
                max(5, runs // 3),
            ),
        },
        "failures": {label: len(errors) for label, errors in FAILURES.items()},
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
