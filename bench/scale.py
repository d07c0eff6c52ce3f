#!/usr/bin/env python3
"""One size of the scale benchmark (issue #16): xscan and Cloud Custodian (c7n-org) over the
simulated AWS (tests/awssim, served by `benches/awssim.rs`), with latency and AWS's throttling.
Called by bench/scale.sh, which builds the binaries and installs c7n.

Prints the details, then one line:
  accounts=N xscan_s=S bound_s=B c7n_s=C gaps=G

The bound is what no client could beat over this simulator:
  - the critical path: the longest chain of dependent calls of one account (as in
    bench/collect_compare.py: AssumeRole, GetCallerIdentity, then the longest of the notebook ->
    role chain, the EC2 listings and the access point -> bucket chain) x the mean latency;
  - the throttle: per account and service, the calls beyond the bucket's burst at its refill
    rate (the slowest account and service);
  - the concurrency: all calls x the mean latency / the calls xscan keeps in flight
    (`collection.concurrency`).
  bound = max of the three.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from collect_compare import cpu_seconds, critical_path_depth  # noqa: E402


def sim_stats(url):
    with urllib.request.urlopen(f"{url}/__sim/stats") as r:
        return json.load(r)


def collection_seconds(snapshot):
    meta = snapshot["metadata"]
    started, finished = (datetime.fromisoformat(meta[k].replace("Z", "+00:00"))
                         for k in ("started_at", "finished_at"))
    return (finished - started).total_seconds()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, required=True)
    parser.add_argument("--jitter-ms", type=float, default=0)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--throttle", default="aws",
                        help="the simulator's limits: aws, off or SERVICE=BURST/REFILL,...")
    parser.add_argument("--xscan", required=True)
    parser.add_argument("--awssim", required=True)
    parser.add_argument("--c7n-org")
    parser.add_argument("--work", required=True)
    args = parser.parse_args()
    work = Path(args.work)
    n = args.accounts
    subprocess.run([args.awssim, "estate", "--accounts", str(n), "--concurrency",
                    str(args.concurrency), "--xscan", work / "xscan.yaml", "--c7n",
                    work / "c7n-accounts.yml"], check=True)
    port_file = work / "port"
    sim = subprocess.Popen([args.awssim, "serve", "--accounts", str(n), "--latency-ms",
                            str(int(args.latency_ms)), "--jitter-ms", str(int(args.jitter_ms)),
                            "--throttle", args.throttle, "--port-file", port_file],
                           stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if port_file.exists() and port_file.read_text():
                break
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port_file.read_text()}"
        env = {"PATH": os.environ["PATH"], "HOME": str(work), "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}

        before, cpu = sim_stats(url), cpu_seconds(sim.pid)
        start = time.monotonic()
        subprocess.run([args.xscan, "scan", "--config", work / "xscan.yaml", "--endpoint-url",
                        url, "--format", "json", "--output", work / "report.json",
                        "--save-snapshot", work / "snapshot.json", "--exit-zero"],
                       check=True, env=env, stdout=subprocess.DEVNULL)
        xscan_s = time.monotonic() - start
        xscan_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        after, sim_cpu = sim_stats(url), cpu_seconds(sim.pid) - cpu
        calls = after["requests"] - before["requests"]
        snapshot = json.load(open(work / "snapshot.json"))
        gaps = len(snapshot["metadata"].get("collection_gaps", []))
        report = json.load(open(work / "report.json"))
        errors = sum(1 for r in report["results"] if r["status"] == "error")
        throttled = {k: v - before["throttled"].get(k, 0) for k, v in after["throttled"].items()}

        accounts = len(snapshot["accounts"])
        latency = (args.latency_ms + args.jitter_ms / 2) / 1000
        depth = critical_path_depth(snapshot)
        # The throttle: the busiest account's calls to a service beyond the bucket's burst, at
        # its refill rate (AssumeRole counts in the starting account, where it is made).
        throttle_s = max((max(0, after["busiest_account_calls"].get(service, 0) - burst) / refill
                          for service, (burst, refill) in after["limits"].items()), default=0)
        concurrency_s = calls * latency / args.concurrency
        path_s = depth * latency
        bound = max(path_s, throttle_s, concurrency_s)
        consumers, data = n, accounts - n
        collect_s = collection_seconds(snapshot)
        print(f"simulated estate: {consumers} consumer + {data} data accounts; "
              f"latency {args.latency_ms:.0f} ms (+0..{args.jitter_ms:.0f} jitter), "
              f"throttling {args.throttle}")
        print(f"xscan scan: {xscan_s:.2f} s (collection {collect_s:.2f} s), {calls} calls ({calls / xscan_s:.0f}/s), "
              f"throttled {sum(throttled.values())} {throttled}, gaps {gaps}, "
              f"error results {errors}, peak RSS {xscan_rss:.0f} MiB, "
              f"snapshot {os.path.getsize(work / 'snapshot.json') / 1e6:.1f} MB")
        print(f"simulator: {sim_cpu:.2f} CPU s for {calls} calls = "
              f"{calls / max(sim_cpu, 1e-9):.0f} calls per CPU second; "
              f"max in flight {after['max_in_flight']}; unrecorded {after['unrecorded']}")
        print(f"bound: {bound:.2f} s = max(critical path {depth} x {latency * 1000:.0f} ms = "
              f"{path_s:.2f} s, throttle {throttle_s:.2f} s, "
              f"{calls} calls x latency / {args.concurrency} in flight = {concurrency_s:.2f} s); "
              f"xscan's collection at {collect_s / bound:.2f}x, the whole scan at "
              f"{xscan_s / bound:.2f}x")

        c7n_s = "-"
        if args.c7n_org:
            consumers_list = ", ".join(f'"71{i:010d}"' for i in range(n))
            policies = (Path(__file__).parent / "c7n-policies.yml").read_text()
            (work / "c7n-policies.yml").write_text(policies.replace("CONSUMERS", consumers_list))
            (work / "aws-config").write_text(
                "[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n")
            c7n_env = dict(env, AWS_ENDPOINT_URL=url, AWS_CONFIG_FILE=str(work / "aws-config"),
                           PYTHONPATH=str(Path(__file__).parent / "c7n-site"))
            before = sim_stats(url)
            start = time.monotonic()
            subprocess.run([args.c7n_org, "run", "-c", work / "c7n-accounts.yml", "-u",
                            work / "c7n-policies.yml", "-s", work / "c7n-out",
                            "--cache-period", "0"], check=True, env=c7n_env,
                           stdout=subprocess.DEVNULL, stderr=open(work / "c7n.log", "w"))
            c7n_wall = time.monotonic() - start
            after = sim_stats(url)
            c7n_calls = after["requests"] - before["requests"]
            c7n_throttled = sum(after["throttled"].values()) - sum(before["throttled"].values())
            print(f"c7n-org: {c7n_wall:.2f} s, {c7n_calls} calls, throttled {c7n_throttled}, "
                  f"unrecorded {after['unrecorded']}; xscan {c7n_wall / xscan_s:.1f}x faster")
            c7n_s = f"{c7n_wall:.2f}"
        print(f"accounts={n} xscan_s={xscan_s:.2f} bound_s={bound:.2f} c7n_s={c7n_s} gaps={gaps}")
    finally:
        try:
            urllib.request.urlopen(urllib.request.Request(f"{url}/__sim/shutdown", method="POST"))
        except Exception:
            pass
        sim.terminate()
        sim.wait()


if __name__ == "__main__":
    main()
