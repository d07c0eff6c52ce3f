#!/usr/bin/env python3
"""A loopback HTTP proxy that holds every request for a fixed time before passing it on, so that
a client talking to the emulator sees a per-call latency like AWS's APIs instead of loopback's.

Usage: latency_proxy.py --listen PORT --upstream http://127.0.0.1:PORT --latency-ms 50
           [--stats FILE] [--record FILE]

Keeps connections alive both ways (one upstream connection per client connection), forwards
method, path, headers (Host included: S3 and the signatures depend on it) and body, and counts
requests; on SIGTERM it writes `{"requests": N}` to --stats. Standard library only.

--record FILE appends every exchange to FILE as one JSON line (the request's method, path,
routing headers and body; the response's status, headers and body) with the account it was made
in, for the simulated AWS (tests/awssim) to replay: the account is known from the role each
access key was issued for (AssumeRole's RoleArn and AccessKeyId), "caller" for any other key.
"""

import argparse
import http.client
import http.server
import json
import re
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
    parser.add_argument("--record")
    args = parser.parse_args()
    recording = open(args.record, "a", encoding="utf-8") if args.record else None
    account_of_key = {}
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
            if recording is not None:
                record(self, body, response, data)
            self.send_response_only(response.status, response.reason)
            for key, value in response.getheaders():
                if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = forward

    def record(handler, body, response, data):
        text = (body or b"").decode("utf-8", "replace")
        auth = handler.headers.get("Authorization", "")
        key = re.search(r"Credential=([^/]+)/", auth)
        key = key.group(1) if key else ""
        role = re.search(r"RoleArn=arn%3Aaws%3Aiam%3A%3A(\d{12})%3A", text)
        issued = re.search(r"<AccessKeyId>([^<]+)</AccessKeyId>", data.decode("utf-8", "replace"))
        with lock:
            if "Action=AssumeRole" in text and role and issued:
                account_of_key[issued.group(1)] = role.group(1)
            line = {
                "account": account_of_key.get(key, "caller"),
                "method": handler.command,
                "path": handler.path,
                # The signature is left out: only the credential scope (service) is read.
                "headers": {k.lower(): (re.sub(r"Signature=\w+", "", v) if k.lower() == "authorization" else v)
                            for k, v in handler.headers.items()
                            if k.lower() in ("authorization", "content-type", "x-amz-target", "x-amz-account-id")},
                "body": text,
                "status": response.status,
                "response_headers": {k.lower(): v for k, v in response.getheaders()
                                     if k.lower() not in HOP_BY_HOP
                                     and k.lower() not in ("content-length", "date", "server")},
                "response_body": data.decode("utf-8", "replace"),
            }
            recording.write(json.dumps(line) + "\n")
            recording.flush()

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
