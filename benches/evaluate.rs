//! Evaluation benchmark: the built-in rule pack over a generated estate.
//!
//! `cargo bench --bench evaluate -- [--shared-vpc] [SIZE...]` where SIZE is the number of
//! notebooks + security groups + VPC endpoints + access points (default 10000), spread over 100
//! accounts (half consumer, half data). Each notebook gets its own copy of the seed pattern (VPC,
//! subnet, route table, S3 gateway endpoint, security group), as the estate repeats it;
//! `--shared-vpc` puts all of an account's copies in one VPC instead, the worst case for the
//! endpoint -> notebooks relation (more gateway endpoints per VPC than AWS's quota allows).
//! Prints wall time of index + evaluation (best and median of 5 runs; both use every core, as
//! `xscan scan` does), time per resource, and peak resident memory (VmHWM) of the process.
//! `XSCAN_BENCH_STAGES=1` also prints each stage's time and resident memory on stderr, and the
//! slowest rules; with `XSCAN_BENCH_RULE=ID` it then evaluates that rule 20 times (to profile).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use xscan::config::Config;
use xscan::findings::Severity;
use xscan::model::{AccountSnapshot, Snapshot};
use xscan::rules::RulePack;
use xscan::scan::{ScanInputs, run};

const ACCOUNTS: usize = 100;

/// The allocator the `xscan` binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Clones the compliant fixture's resources into `ACCOUNTS` accounts so that notebooks, SGs,
/// endpoints and access points add up to `size`.
fn estate(fixture: &str, size: usize, shared_vpc: bool) -> Snapshot {
    let base: Value = serde_json::from_str(fixture).unwrap();
    let consumer = &base["accounts"]["111111111111"];
    let data = &base["accounts"]["222222222222"];
    let region = "us-east-1";
    let per_account = size / 4 / (ACCOUNTS / 2);
    // Each account is converted as soon as it is generated, so the JSON of the whole estate is
    // never held: peak memory is the evaluation's, not the generator's.
    let mut accounts: BTreeMap<String, AccountSnapshot> = BTreeMap::new();
    for a in 0..ACCOUNTS / 2 {
        let id = format!("{:012}", 100_000_000_000u64 + a as u64);
        let mut account = consumer.clone();
        let text = serde_json::to_string(&account)
            .unwrap()
            .replace("111111111111", &id);
        account = serde_json::from_str(&text).unwrap();
        let r = &mut account["regions"][region];
        let nb = r["sagemaker_notebooks"]["ml-notebook-1"].clone();
        let sg = r["security_groups"]["sg-0c0ffee0000000a01"].clone();
        let subnet = r["subnets"]["subnet-0c0ffee0000000a01"].clone();
        let rtb = r["route_tables"]["rtb-0c0ffee0000000a01"].clone();
        let vpce = r["vpc_endpoints"]["vpce-0c0ffee0000000a01"].clone();
        let vpc = r["vpcs"]["vpc-0c0ffee0000000a01"].clone();
        for i in 0..per_account {
            let vpc_id = if shared_vpc {
                "vpc-0c0ffee0000000a01".to_string()
            } else {
                format!("vpc-{i:017x}")
            };
            let mut v = vpc.clone();
            v["id"] = json!(vpc_id);
            r["vpcs"][&vpc_id] = v;
            let (sg_id, subnet_id, rtb_id, vpce_id, name) = (
                format!("sg-{i:017x}"),
                format!("subnet-{i:017x}"),
                format!("rtb-{i:017x}"),
                format!("vpce-{i:017x}"),
                format!("nb-{i}"),
            );
            let mut n = nb.clone();
            n["name"] = json!(name);
            n["arn"] = json!(format!(
                "arn:aws:sagemaker:{region}:{id}:notebook-instance/{name}"
            ));
            n["subnet_id"] = json!(subnet_id);
            n["security_groups"] = json!([sg_id]);
            if i % 10 == 0 {
                n["direct_internet_access"] = json!("Enabled");
            }
            r["sagemaker_notebooks"][&name] = n;
            let mut g = sg.clone();
            g["id"] = json!(sg_id);
            g["vpc_id"] = json!(vpc_id);
            r["security_groups"][&sg_id] = g;
            let mut s = subnet.clone();
            s["id"] = json!(subnet_id);
            s["vpc_id"] = json!(vpc_id);
            r["subnets"][&subnet_id] = s;
            let mut t = rtb.clone();
            t["id"] = json!(rtb_id);
            t["subnet_ids"] = json!([subnet_id]);
            t["vpc_id"] = json!(vpc_id);
            for route in t["routes"].as_array_mut().unwrap() {
                if route["target_type"] == "vpc_endpoint" {
                    route["target"] = json!(vpce_id);
                }
            }
            r["route_tables"][&rtb_id] = t;
            let mut e = vpce.clone();
            e["id"] = json!(vpce_id);
            e["route_table_ids"] = json!([rtb_id]);
            e["vpc_id"] = json!(vpc_id);
            r["vpc_endpoints"][&vpce_id] = e;
        }
        accounts.insert(id, serde_json::from_value(account).unwrap());
    }
    for a in 0..ACCOUNTS / 2 {
        let id = format!("{:012}", 200_000_000_000u64 + a as u64);
        let text = serde_json::to_string(data)
            .unwrap()
            .replace("222222222222", &id);
        let mut account: Value = serde_json::from_str(&text).unwrap();
        let r = &mut account["regions"][region];
        let ap = r["s3_access_points"]["test-ap-1"].clone();
        for i in 0..per_account {
            let name = format!("ap-{i}");
            let mut p = ap.clone();
            p["name"] = json!(name);
            p["arn"] = json!(format!("arn:aws:s3:{region}:{id}:accesspoint/{name}"));
            r["s3_access_points"][&name] = p;
        }
        accounts.insert(id, serde_json::from_value(account).unwrap());
    }
    let mut snapshot = base.clone();
    snapshot["accounts"] = json!({});
    let mut snapshot: Snapshot = serde_json::from_value(snapshot).unwrap();
    snapshot.accounts = accounts;
    snapshot
}

/// A memory line of /proc/self/status (`VmRSS:` now, `VmHWM:` peak) in MiB.
fn rss_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).map(str::to_string))
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Time and resident memory of each stage (index, evaluation), for finding where they go.
fn stages(snapshot: &Snapshot, pack: &RulePack, config: &Config) {
    let accounts = config.account_roles();
    eprintln!("estate built: RSS {:.0} MiB", rss_mib("VmRSS:"));
    let start = Instant::now();
    let evaluator = xscan::rules::Evaluator::new(snapshot, config.parameters(snapshot), accounts);
    eprintln!(
        "index: {:.3} s, RSS {:.0} MiB",
        start.elapsed().as_secs_f64(),
        rss_mib("VmRSS:")
    );
    // As `scan::run` does: paths are found per notebook during the evaluation.
    let evaluator = evaluator.with_perimeter(config);
    let start = Instant::now();
    let results = evaluator.evaluate_all(&pack.rules);
    eprintln!(
        "evaluation: {:.3} s, RSS {:.0} MiB",
        start.elapsed().as_secs_f64(),
        rss_mib("VmRSS:")
    );
    drop(results);
    // The slowest rules, each evaluated alone.
    let mut per_rule: Vec<(f64, &str)> = pack
        .rules
        .iter()
        .map(|rule| {
            let start = Instant::now();
            std::hint::black_box(evaluator.evaluate_rule(rule));
            (start.elapsed().as_secs_f64(), rule.spec.id.as_str())
        })
        .collect();
    per_rule.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (seconds, id) in per_rule.iter().take(8) {
        eprintln!("  {id}: {seconds:.3} s");
    }
    // One rule again and again, for a profiler to see it alone.
    if let Ok(id) = std::env::var("XSCAN_BENCH_RULE")
        && let Some(rule) = pack.rules.iter().find(|r| r.spec.id == id)
    {
        let start = Instant::now();
        for _ in 0..20 {
            std::hint::black_box(evaluator.evaluate_rule(rule));
        }
        eprintln!("  {id} x20: {:.3} s", start.elapsed().as_secs_f64());
    }
}

fn main() {
    let shared_vpc = std::env::args().any(|a| a == "--shared-vpc");
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10_000]
    } else {
        sizes
    };
    let pack = RulePack::embedded().unwrap();
    let mut config = Config::from_yaml("fixture", pack.fixture_config.as_deref().unwrap()).unwrap();
    config.accounts.clear();
    println!("| size | accounts | resources | results | best | median | per resource | peak RSS |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for size in sizes {
        let snapshot = estate(pack.fixture_snapshot.as_deref().unwrap(), size, shared_vpc);
        if std::env::var_os("XSCAN_BENCH_STAGES").is_some() {
            stages(&snapshot, &pack, &config);
        }
        let mut times: Vec<Duration> = Vec::new();
        let mut results = 0;
        let mut resources = 0;
        for _ in 0..5 {
            let start = Instant::now();
            let report = run(&ScanInputs {
                snapshot: &snapshot,
                snapshot_sha256: String::new(),
                pack: &pack,
                config: Some(&config),
                config_sha256: None,
                min_severity: Severity::Info,
                spill_at: xscan::findings::results::SPILL_AT,
            })
            .expect("the results are spilled when there are many");
            times.push(start.elapsed());
            results = report.results.len();
            resources = report.scan.resource_counts.values().sum::<usize>();
            std::hint::black_box(report);
        }
        times.sort();
        let median = times[times.len() / 2];
        println!(
            "| {size} | {ACCOUNTS} | {resources} | {results} | {:.3} s | {:.3} s | {:.1} µs | {:.0} MiB |",
            times[0].as_secs_f64(),
            median.as_secs_f64(),
            median.as_secs_f64() * 1e6 / resources as f64,
            rss_mib("VmHWM:")
        );
    }
}
