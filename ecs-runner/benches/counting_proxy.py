"""A counting HTTP proxy on loopback, in front of moto: forwards every request unchanged and
writes one line per AWS API call (time, action, number of tasks named, the SDK's attempt number
from `amz-sdk-request`, the HTTP status moto answered, and for DescribeTasks the task IDs named,
comma-separated) to a TSV file.

Usage: python3 counting_proxy.py LISTEN_PORT UPSTREAM_URL LOG_TSV
Used by calls.sh; standard library only.
"""
import http.client
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

listen_port, upstream, log_path = int(sys.argv[1]), urlsplit(sys.argv[2]), sys.argv[3]
log = open(log_path, "a", buffering=1)
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def _forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        # JSON protocols name the action in X-Amz-Target; the EC2 Query protocol in the body.
        target = self.headers.get("X-Amz-Target", "")
        action = target.rsplit(".", 1)[-1] if target else ""
        tasks, named = "", ""
        if not action and body:
            action = parse_qs(body.decode(errors="replace")).get("Action", [self.path])[0]
        if action == "DescribeTasks":
            try:
                arns = json.loads(body).get("tasks", [])
                tasks = str(len(arns))
                named = ",".join(a.rsplit("/", 1)[-1] for a in arns)
            except ValueError:
                tasks = "?"
        # `attempt=2; max=8` on the SDK's retries of one call.
        attempt = self.headers.get("amz-sdk-request", "attempt=1").split(";")[0].split("=")[-1]
        arrived = time.monotonic()
        conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=300)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
        headers["Host"] = upstream.netloc
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        with lock:
            log.write(f"{arrived:.3f}\t{action or self.path}\t{tasks}\t{attempt}\t{resp.status}\t{named}\n")
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        conn.close()

    do_POST = do_GET = do_PUT = do_DELETE = _forward


ThreadingHTTPServer(("127.0.0.1", listen_port), Handler).serve_forever()
