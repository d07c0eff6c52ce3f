#!/usr/bin/env python3
"""Collection benchmark: xscan and Cloud Custodian (c7n-org) over the same emulated estate, in
the same run, against the emulator as it is and behind a fixed per-call latency.

Called by bench/collect.sh, which installs moto and c7n, builds xscan and starts the emulator
and the latency proxy. Prints a Markdown report on stdout.

Lower bound of a collection (what no client could beat):
  - the emulator's own work: moto is one Python process, so the CPU time it spends serving the
    run's calls (read from /proc before and after) cannot be overlapped;
  - the critical path: calls that need an earlier call's answer form chains (assume role ->
    caller identity -> list -> describe ...); the longest chain, times the per-call latency
    (proxy latency + moto's mean service time), cannot be shortened by any concurrency.
  bound = max(emulator CPU time, depth x per-call latency).
The depth is read off xscan's collector (src/collect/mod.rs): per account, 2 STS calls, then the
longest of three chains: sagemaker list pages + describe, then the IAM role chain (GetRole,
inline list pages, GetRolePolicy, attached list pages [+ GetPolicy, GetPolicyVersion]); the
slowest EC2 pagination; s3control list pages + per-access-point calls, then the S3 bucket chain
(GetBucketLocation, then the configuration calls).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REQUEST_LINE = re.compile(r'"(GET|POST|PUT|HEAD|DELETE) [^"]*" \d{3}')
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """CPU time (user + system) a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def moto_requests(log):
    return sum(1 for line in Path(log).read_text(errors="replace").splitlines()
               if REQUEST_LINE.search(line))


def measured(fn, moto_pid, moto_log):
    """Runs fn(); returns (result, wall seconds, emulator requests, emulator CPU seconds)."""
    requests, cpu = moto_requests(moto_log), cpu_seconds(moto_pid)
    start = time.monotonic()
    result = fn()
    wall = time.monotonic() - start
    time.sleep(0.2)  # let the emulator flush its request log
    return result, wall, moto_requests(moto_log) - requests, cpu_seconds(moto_pid) - cpu


def critical_path_depth(snapshot):
    """Longest chain of dependent calls for one account (see the module docs)."""
    calls = snapshot["metadata"]["api_calls"]
    accounts = snapshot["accounts"]
    data = [a for a in accounts.values() if a.get("role") == "data"]
    n = len(accounts)

    def pages(op, over):
        return -(-calls.get(op, 0) // max(over, 1))  # ceiling: pages per account

    role_chain = 1 + pages("iam:ListRolePolicies", n) + 1 + pages("iam:ListAttachedRolePolicies", n)
    if calls.get("iam:GetPolicy"):
        role_chain += 2
    chains = [
        # notebooks (list pages, describe), then the roles they use
        pages("sagemaker:ListNotebookInstances", n) + 1 + role_chain,
        # each EC2 listing's pages
        max(pages(f"ec2:{op}", n) for op in ("DescribeVpcs", "DescribeSubnets",
                                            "DescribeRouteTables", "DescribeSecurityGroups",
                                            "DescribeVpcEndpoints", "DescribeManagedPrefixLists")),
    ]
    if data:
        # access points (list pages, details), then their buckets (location, configuration)
        chains.append(pages("s3:ListAccessPoints", len(data)) + 1 + 2)
    # AssumeRole and GetCallerIdentity come first
    return 2 + max(chains)


def run_xscan(args, endpoint, out):
    subprocess.run([args.xscan, "scan", "--config", f"{args.work}/xscan.yaml", "--endpoint-url",
                    endpoint, "--format", "json", "--output", f"{out}.report.json",
                    "--save-snapshot", f"{out}.snapshot.json", "--exit-zero"],
                   check=True, env=args.env, stdout=subprocess.DEVNULL)
    return json.load(open(f"{out}.snapshot.json")), json.load(open(f"{out}.report.json"))


def run_c7n(args, endpoint, out):
    env = dict(args.env, AWS_ENDPOINT_URL=endpoint,
               PYTHONPATH=str(Path(__file__).resolve().parent / "c7n-site"),
               AWS_CONFIG_FILE=f"{args.work}/aws-config")
    subprocess.run([args.c7n_org, "run", "-c", f"{args.work}/c7n-accounts.yml", "-u",
                    f"{args.work}/c7n-policies.yml", "-s", out, "--cache-period", "0"],
                   check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    found = {}
    for resources in Path(out).glob("*/*/*/resources.json"):
        policy = resources.parent.name
        found[policy] = found.get(policy, 0) + len(json.load(open(resources)))
    return found


# Each c7n policy and the xscan rules that check the same thing.
EQUIVALENT = {
    "notebook-direct-internet": ["XS-SM-001"],
    "access-point-public": ["XS-S3AP-001", "XS-S3AP-005"],
    "endpoint-policy-not-restricted": ["XS-NET-007"],
    "notebook-sg-open-egress": ["XS-NET-001"],
}


def flagged_by_xscan(report, rules):
    """Resources with a failing (or unevaluated) result on any of `rules`."""
    return len({r["resource"]["arn"] for r in report["results"]
                if r["rule_id"] in rules and r["status"] in ("fail", "error")})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--xscan", required=True)
    parser.add_argument("--c7n-org", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--emulator", required=True)
    parser.add_argument("--proxy", required=True)
    parser.add_argument("--latency-ms", type=float, required=True)
    parser.add_argument("--moto-pid", type=int, required=True)
    parser.add_argument("--moto-log", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    args.env = {"PATH": os.environ["PATH"], "HOME": args.work, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}

    rows = []
    detections = {}
    for label, endpoint, latency in (("emulator as it is", args.emulator, 0.0),
                                     (f"+{args.latency_ms:.0f} ms per call", args.proxy,
                                      args.latency_ms / 1000)):
        for attempt in range(args.repeat):
            out = f"{args.work}/run-{len(rows)}"
            (snapshot, report), x_wall, x_req, x_cpu = measured(
                lambda: run_xscan(args, endpoint, out), args.moto_pid, args.moto_log)
            found, c_wall, c_req, c_cpu = measured(
                lambda: run_c7n(args, endpoint, out + "-c7n"), args.moto_pid, args.moto_log)
            depth = critical_path_depth(snapshot)
            service = x_cpu / max(x_req, 1)
            bound = max(x_cpu, depth * (latency + service))
            regions = [r for a in snapshot["accounts"].values() for r in a["regions"].values()]
            count = lambda key: sum(len(r.get(key, {})) for r in regions)
            rows.append({
                "setting": label, "run": attempt + 1, "accounts": len(snapshot["accounts"]),
                "notebooks": count("sagemaker_notebooks"), "sgs": count("security_groups"),
                "endpoints": count("vpc_endpoints"), "aps": count("s3_access_points"),
                "gaps": len(snapshot["metadata"]["collection_gaps"]),
                "x_wall": x_wall, "x_req": x_req, "x_cpu": x_cpu, "depth": depth,
                "bound": bound, "c_wall": c_wall, "c_req": c_req,
            })
            detections = {policy: (found.get(policy, 0), flagged_by_xscan(report, rules))
                          for policy, rules in EQUIVALENT.items()}

    r0 = rows[0]
    print(f"Estate: {r0['accounts']} accounts, {r0['notebooks']} notebooks, {r0['sgs']} security "
          f"groups, {r0['endpoints']} VPC endpoints, {r0['aps']} access points (moto).\n")
    print("| setting | run | xscan wall | xscan calls | lower bound (depth x latency / emulator CPU) "
          "| xscan / bound | c7n-org wall | c7n calls | c7n / xscan |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['setting']} | {r['run']} | {r['x_wall']:.2f} s | {r['x_req']} | "
              f"{r['bound']:.2f} s ({r['depth']} x, {r['x_cpu']:.2f} s CPU) | "
              f"{r['x_wall'] / r['bound']:.2f}x | {r['c_wall']:.2f} s | {r['c_req']} | "
              f"**{r['c_wall'] / r['x_wall']:.1f}x** |" + (f" ({r['gaps']} gaps)" if r["gaps"] else ""))
    print("\nResources each tool flagged in the last run, per check (the estate carries one drift "
          "per account pair; 13 endpoints share the open policy):\n")
    print("| check (c7n policy) | xscan rules | c7n-org | xscan |")
    print("|---|---|---:|---:|")
    for policy, (c7n, xscan) in detections.items():
        print(f"| {policy} | {', '.join(EQUIVALENT[policy])} | {c7n} | {xscan} |")


if __name__ == "__main__":
    sys.exit(main())
