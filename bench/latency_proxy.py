#!/usr/bin/env python3
"""A loopback HTTP proxy that holds every request for a fixed time before passing it on, so that
a client talking to the emulator sees a per-call latency like AWS's APIs instead of loopback's.

Usage: latency_proxy.py --listen PORT --upstream http://127.0.0.1:PORT --latency-ms 50
           [--stats FILE]

Keeps connections alive both ways (one upstream connection per client connection), forwards
method, path, headers (Host included: S3 and the signatures depend on it) and body, and counts
requests; on SIGTERM it writes `{"requests": N}` to --stats. Standard library only.
"""

import argparse
import http.client
import http.server
import json
import signal
import sys
import threading
import time
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate"}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--stats")
    args = parser.parse_args()
    upstream = urlsplit(args.upstream)
    latency = args.latency_ms / 1000.0
    counter = {"requests": 0}
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def forward(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            with lock:
                counter["requests"] += 1
            time.sleep(latency)
            if not hasattr(self, "upstream"):
                self.upstream = http.client.HTTPConnection(upstream.hostname, upstream.port,
                                                           timeout=120)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            for attempt in range(2):
                try:
                    self.upstream.request(self.command, self.path, body=body, headers=headers)
                    response = self.upstream.getresponse()
                    data = response.read()
                    break
                except (http.client.HTTPException, OSError):
                    # The upstream closed a kept-alive connection: reconnect once.
                    self.upstream.close()
                    if attempt:
                        raise
            self.send_response_only(response.status, response.reason)
            for key, value in response.getheaders():
                if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = forward

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.listen), Handler)
    server.daemon_threads = True

    def stop(*_):
        if args.stats:
            with open(args.stats, "w") as f:
                json.dump(counter, f)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    server.serve_forever()


if __name__ == "__main__":
    main()
