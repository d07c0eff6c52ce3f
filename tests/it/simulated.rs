//! Collection against the simulated AWS (tests/awssim): what goes over the wire, throttling at
//! AWS's error shapes, and faults the emulator cannot make (slow answers, AccessDenied on one
//! call). It replays the committed recording, so these run in plain `cargo test`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::awssim::{self, Fault, Limit, Settings, Simulator};
use crate::common::{root, stderr, temp_dir, xscan_with_aws};

fn recording() -> String {
    std::fs::read_to_string(root().join(awssim::RECORDING)).unwrap()
}

/// Writes the estate's config (with `collection` in place of the default) into `dir`.
fn write_config(dir: &Path, consumers: usize, collection: &str) {
    let (config, _) = awssim::estate_configs(consumers, 64);
    let config = config.replace("collection: {concurrency: 64}", collection);
    std::fs::write(dir.join("xscan.yaml"), config).unwrap();
}

/// `xscan scan` against the simulator: the JSON report, the snapshot and the exit code.
fn scan(dir: &Path, simulator: &Simulator) -> (Value, Value, i32) {
    let (report, snapshot, code, _) = scan_with_stderr(dir, simulator);
    (report, snapshot, code)
}

/// As [`scan`], with what xscan wrote on stderr; the report and snapshot are `Null` when a run
/// that exits 2 wrote none.
fn scan_with_stderr(dir: &Path, simulator: &Simulator) -> (Value, Value, i32, String) {
    let url = simulator.url();
    // No report of an earlier run may stand in for this one's.
    for file in ["report.json", "snapshot.json"] {
        let _ = std::fs::remove_file(dir.join(file));
    }
    let out = xscan_with_aws(
        dir,
        &[
            "scan",
            "--config",
            "xscan.yaml",
            "--endpoint-url",
            &url,
            "--format",
            "json",
            "--output",
            "report.json",
            "--save-snapshot",
            "snapshot.json",
        ],
        &[],
    );
    let code = out.status.code().unwrap_or(-1);
    let read = |file: &str| -> Value {
        match std::fs::read_to_string(dir.join(file)) {
            Ok(text) => serde_json::from_str(&text).unwrap(),
            Err(_) if code == 2 => Value::Null,
            Err(e) => panic!("{file}: {e}; exit {code}; stderr: {}", stderr(&out)),
        }
    };
    (
        read("report.json"),
        read("snapshot.json"),
        code,
        stderr(&out),
    )
}

fn with_status(report: &Value, status: &str) -> Vec<String> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == status)
        .map(|r| format!("{} {} {}", r["rule_id"], r["resource"]["arn"], r["message"]))
        .collect()
}

fn gaps(snapshot: &Value) -> Vec<Value> {
    snapshot["metadata"]["collection_gaps"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn ids_are_substituted_per_account_and_back() {
    // Each account gets its own EC2 ids, and a request naming them maps back to the template.
    let simulator = Simulator::start(Settings::new(12), &recording(), 0).unwrap();
    let dir = temp_dir("sim-ids");
    write_config(&dir, 12, "collection: {concurrency: 16}");
    let (report, snapshot, _) = scan(&dir, &simulator);
    assert!(gaps(&snapshot).is_empty(), "{:#?}", gaps(&snapshot));
    let per_account: Vec<usize> = snapshot["accounts"]
        .as_object()
        .unwrap()
        .values()
        .filter(|a| a["role"] == "consumer")
        .map(|a| a["regions"]["us-east-1"]["vpcs"].as_object().unwrap().len())
        .collect();
    let vpcs: BTreeSet<String> = snapshot["accounts"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|a| {
            a["regions"]["us-east-1"]["vpcs"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect::<Vec<_>>()
        })
        .collect();
    // Every consumer has the template's VPCs, under ids of its own: none shared.
    assert_eq!(per_account.len(), 12);
    assert!(per_account.iter().all(|n| *n == per_account[0] && *n > 0));
    let data_vpcs: usize = snapshot["accounts"]
        .as_object()
        .unwrap()
        .values()
        .filter(|a| a["role"] == "data")
        .map(|a| a["regions"]["us-east-1"]["vpcs"].as_object().unwrap().len())
        .sum();
    assert_eq!(vpcs.len(), 12 * per_account[0] + data_vpcs, "{vpcs:?}");
    // The network rules found each notebook's own subnet, route table and endpoint.
    assert!(with_status(&report, "error").is_empty());
}

/// The read-only proof on the wire: a full scan asks the (simulated) AWS for exactly
/// the actions `xscan permissions` prints, plus the AssumeRole the starting identity makes,
/// and every one is a read.
#[test]
fn a_full_scan_asks_on_the_wire_for_exactly_the_permission_list() {
    let simulator = Simulator::start(Settings::new(3), &recording(), 0).unwrap();
    let dir = temp_dir("sim-wire");
    write_config(&dir, 3, "collection: {concurrency: 16}");
    let (report, snapshot, code) = scan(&dir, &simulator);
    assert!(gaps(&snapshot).is_empty(), "{:#?}", gaps(&snapshot));
    assert!(with_status(&report, "error").is_empty(), "exit {code}");
    let stats = simulator.stats();
    assert_eq!(stats["unrecorded"], serde_json::json!({}));
    let asked: BTreeSet<String> = stats["actions"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|a| *a != "sts:AssumeRole")
        .cloned()
        .collect();
    let printed = crate::common::xscan(&["permissions"]);
    let policy: Value = serde_json::from_slice(&printed.stdout).unwrap();
    let listed: BTreeSet<String> = policy["Statement"][0]["Action"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert_eq!(asked, listed, "asked on the wire vs `xscan permissions`");
    for (action, methods) in stats["methods"].as_object().unwrap() {
        let verb = action.split(':').nth(1).unwrap();
        assert!(
            ["Get", "List", "Describe", "AssumeRole"]
                .iter()
                .any(|p| verb.starts_with(p)),
            "{action} is not a read"
        );
        // Query and JSON protocols POST; a REST read is a GET.
        let methods: Vec<&str> = methods
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap())
            .collect();
        if action.starts_with("s3:") {
            assert_eq!(methods, ["GET"], "{action}");
        } else {
            assert_eq!(methods, ["POST"], "{action}");
        }
    }
}

/// Throttled everywhere, in AWS's error shapes (EC2 RequestLimitExceeded, IAM and STS
/// Throttling, SageMaker ThrottlingException, S3 503 SlowDown), with AssumeRole throttled in the
/// starting account: the scan still reads everything, gives the unthrottled verdicts, records
/// the throttling, and backs off instead of hammering.
#[test]
fn a_throttled_scan_gives_the_unthrottled_verdicts_with_no_gaps() {
    let consumers = 6;
    let dir = temp_dir("sim-throttled");
    write_config(&dir, consumers, "collection: {concurrency: 64}");
    let clean = Simulator::start(Settings::new(consumers), &recording(), 0).unwrap();
    let (expected, _, expected_code) = scan(&dir, &clean);
    drop(clean);

    let mut settings = Settings::new(consumers);
    let limit = |burst: f64, refill: f64| Limit { burst, refill };
    settings.limits = [
        ("ec2", limit(4.0, 4.0)),
        ("sagemaker", limit(4.0, 4.0)),
        ("iam", limit(3.0, 3.0)),
        ("s3control", limit(3.0, 3.0)),
        ("s3", limit(5.0, 5.0)),
        ("sts", limit(3.0, 3.0)),
    ]
    .into_iter()
    .map(|(s, l)| (s.to_string(), l))
    .collect();
    let simulator = Simulator::start(settings, &recording(), 0).unwrap();
    let started = Instant::now();
    let (report, snapshot, code) = scan(&dir, &simulator);
    let stats = simulator.stats();
    assert!(gaps(&snapshot).is_empty(), "{:#?}", gaps(&snapshot));
    assert_eq!(code, expected_code);
    let (_, errors, violations) = crate::faults::compare(&expected, &report);
    assert!(violations.is_empty() && errors == 0, "{violations:#?}");
    let throttled: BTreeMap<String, u64> =
        serde_json::from_value(stats["throttled"].clone()).unwrap();
    for service in ["ec2", "sagemaker", "iam", "sts"] {
        assert!(
            throttled.get(service).copied().unwrap_or(0) > 0,
            "{throttled:?}"
        );
    }
    // Recorded per account in the snapshot.
    let recorded: u64 = snapshot["metadata"]["retries"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["throttled"].as_u64().unwrap())
        .sum();
    assert!(recorded > 0);
    // Backing off: most requests were admitted, not refused.
    let refused: u64 = throttled.values().sum();
    let requests = stats["requests"].as_u64().unwrap();
    assert!(
        refused * 2 < requests,
        "{refused} of {requests} requests throttled"
    );
    eprintln!(
        "throttled scan: {:.1} s, {requests} requests, {refused} throttled {throttled:?}",
        started.elapsed().as_secs_f64()
    );
}

/// Faults the emulator cannot make: answers slower than the call timeout, bodies cut short
/// with a matching length, connections reset, 500 and 503, and AccessDenied on one call. Every
/// result is the fault-free one or `error`, the exit code is 3 when any is `error`, and each
/// gap names its call.
#[test]
fn under_simulated_faults_every_result_is_the_fault_free_one_or_error() {
    let consumers = 4;
    let dir = temp_dir("sim-faults");
    write_config(
        &dir,
        consumers,
        "collection: {concurrency: 32, call_timeout_seconds: 1, max_attempts: 3, account_deadline_seconds: 60}",
    );
    let clean = Simulator::start(Settings::new(consumers), &recording(), 0).unwrap();
    let (expected, _, clean_code) = scan(&dir, &clean);
    drop(clean);
    let mut faults_seen: BTreeMap<String, u64> = BTreeMap::new();
    let (mut equal, mut error) = (0, 0);
    // CI's two seeds; XSCAN_SIM_FAULT_SEEDS=N runs seeds 1..=N (the long form).
    let seeds: Vec<u64> = std::env::var("XSCAN_SIM_FAULT_SEEDS")
        .ok()
        .and_then(|n| n.parse::<u64>().ok())
        .map_or_else(|| vec![3, 11], |n| (1..=n).collect());
    let (mut runs, mut requests, mut refusals, mut stopped) = (0, 0, 0, 0);
    for seed in seeds {
        let mut settings = Settings::new(consumers);
        settings.seed = seed;
        settings.fault_one_in = 4;
        settings.faults = Fault::ALL.to_vec();
        settings.slow = Duration::from_millis(2_500);
        settings.deny = ["s3:GetBucketPolicy".to_string()].into();
        let simulator = Simulator::start(settings, &recording(), 0).unwrap();
        let started = Instant::now();
        let (report, snapshot, code, errors) = scan_with_stderr(&dir, &simulator);
        assert!(started.elapsed() < Duration::from_secs(120));
        if code == 2 {
            // The starting identity's first call failed more times than `max_attempts` (here
            // 3, at one fault in four: one run in 64): the run stops before any account, says
            // why, and leaves no report behind.
            assert!(
                errors.contains("the starting AWS identity is not usable") && report.is_null(),
                "seed {seed}: exit 2: {errors}"
            );
            stopped += 1;
            continue;
        }
        let (e, r, violations) = crate::faults::compare(&expected, &report);
        assert!(violations.is_empty(), "seed {seed}: {violations:#?}");
        // 3 whenever a result is `error`, and whenever the collection has gaps (README).
        assert_eq!(
            code,
            if r > 0 || !gaps(&snapshot).is_empty() {
                3
            } else {
                clean_code
            },
            "seed {seed}: exit code"
        );
        for gap in gaps(&snapshot) {
            assert!(
                !gap["api_call"].as_str().unwrap().is_empty()
                    && !gap["error"].as_str().unwrap().is_empty(),
                "{gap}"
            );
        }
        // When the call was made (an earlier fault may have stopped the bucket's reads), its
        // refusal is a gap that says so.
        let denied = simulator.stats()["denied"].as_u64().unwrap();
        refusals += denied;
        assert!(
            denied == 0
                || gaps(&snapshot)
                    .iter()
                    .any(|g| g["api_call"] == "GetBucketPolicy"
                        && g["error"].as_str().unwrap().contains("AccessDenied")),
            "{:#?}",
            gaps(&snapshot)
        );
        runs += 1;
        requests += simulator.stats()["requests"].as_u64().unwrap();
        for (kind, n) in simulator.stats()["faults"].as_object().unwrap() {
            *faults_seen.entry(kind.clone()).or_default() += n.as_u64().unwrap();
        }
        equal += e;
        error += r;
    }
    eprintln!(
        "simulated faults: {runs} runs ({stopped} more stopped at the starting identity), {requests} requests, faults {faults_seen:?}; results equal {equal}, error {error}, violations 0"
    );
    assert!(faults_seen.len() >= 4, "{faults_seen:?}");
    assert!(refusals > 0, "GetBucketPolicy was never asked for");
}

/// AssumeRole is made for every account by the starting identity, in its one account, and STS
/// throttles it there: past the SDK's own attempts, xscan tries again after a pause instead of
/// giving the account up (each try is counted in `metadata.api_calls`). The first seven
/// AssumeRole requests are throttled: more than the three accounts' SDK attempts (2 each) can
/// absorb, so without xscan's own retry at least one account is lost.
#[test]
fn a_throttled_assume_role_is_tried_again_until_it_passes() {
    let consumers = 2;
    let accounts = consumers + awssim::data_accounts(consumers);
    let dir = temp_dir("sim-assume");
    write_config(
        &dir,
        consumers,
        "collection: {concurrency: 16, max_attempts: 2}",
    );
    let mut settings = Settings::new(consumers);
    settings.throttle_first = [("sts:AssumeRole".to_string(), 2 * accounts as u64 + 1)].into();
    let simulator = Simulator::start(settings, &recording(), 0).unwrap();
    let (report, snapshot, _) = scan(&dir, &simulator);
    assert!(gaps(&snapshot).is_empty(), "{:#?}", gaps(&snapshot));
    assert!(with_status(&report, "error").is_empty());
    let tries = snapshot["metadata"]["api_calls"]["sts:AssumeRole"]
        .as_u64()
        .unwrap();
    assert!(
        tries > accounts as u64,
        "{tries} AssumeRole tries for {accounts} accounts: none was tried again"
    );
    assert_eq!(
        simulator.stats()["throttled"]["sts"].as_u64().unwrap(),
        2 * accounts as u64 + 1
    );
}

/// A body cut short with a Content-Length that matches the cut parses as far as the SDK cares;
/// xscan refuses it (never data) and tries the call again, so a scan whose answers are often
/// cut still reads everything. One call at a time, so the seeded faults fall on the same calls
/// every run.
#[test]
fn an_answer_cut_short_is_tried_again_not_taken_or_given_up() {
    let consumers = 2;
    let dir = temp_dir("sim-cut");
    write_config(
        &dir,
        consumers,
        "collection: {concurrency: 1, max_attempts: 5}",
    );
    let clean = Simulator::start(Settings::new(consumers), &recording(), 0).unwrap();
    let (expected, _, expected_code) = scan(&dir, &clean);
    drop(clean);
    let mut settings = Settings::new(consumers);
    settings.seed = 5;
    settings.fault_one_in = 3;
    settings.faults = vec![Fault::TruncatedMatching];
    let simulator = Simulator::start(settings, &recording(), 0).unwrap();
    let (report, snapshot, code) = scan(&dir, &simulator);
    let cut = simulator.stats()["faults"]["truncated"].as_u64().unwrap();
    assert!(cut >= 5, "{cut} answers cut");
    assert!(gaps(&snapshot).is_empty(), "{:#?}", gaps(&snapshot));
    assert_eq!(code, expected_code);
    let (_, errors, violations) = crate::faults::compare(&expected, &report);
    assert!(violations.is_empty() && errors == 0, "{violations:#?}");
}
