//! `--history DIR`: runs kept with timestamped names and a `latest` pointer, the previous run
//! as the baseline, `--keep N`, a lock against overlapping runs (exit 4), and no damage from a
//! run killed midway.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{
    COMPLIANT, CONFIG, access_point, patched_snapshot, root, stderr, temp_dir, xscan,
};

fn history_scan(history: &Path, snapshot: &str, extra: &[&str]) -> (Value, i32) {
    let mut args = vec![
        "scan",
        "--snapshot",
        snapshot,
        "--config",
        CONFIG,
        "--format",
        "json",
        "--history",
        history.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = xscan(&args);
    let report =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
    (report, out.status.code().unwrap())
}

fn runs(history: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(history)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("20"))
        .collect();
    names.sort();
    names
}

fn latest(history: &Path) -> String {
    std::fs::read_to_string(history.join("latest"))
        .unwrap()
        .trim()
        .to_string()
}

fn state<'a>(report: &'a Value, rule: &str, id: &str) -> &'a Value {
    &crate::common::result_of(report, rule, id)["baseline_state"]
}

#[test]
fn runs_compare_with_the_previous_run_and_are_pruned() {
    let dir = temp_dir("history-runs");
    let history = dir.join("history");
    let drifted = patched_snapshot(&dir, "drifted.json", |s| {
        let statement = &mut access_point(s)["policy"]["document"]["Statement"][0];
        statement["Action"] = serde_json::json!(["s3:GetObject", "s3:PutObject"]);
    });

    let (first, code) = history_scan(&history, COMPLIANT, &["--fail-on", "new"]);
    assert_eq!(code, 0);
    assert!(first.get("drift").is_none(), "no baseline on the first run");
    let first_run = latest(&history);
    for file in ["snapshot.json", "report.json"] {
        assert!(history.join(&first_run).join(file).is_file(), "{file}");
    }

    // A drift: the access point now allows writes. --fail-on new alerts.
    let (second, code) = history_scan(&history, &drifted, &["--fail-on", "new"]);
    assert_eq!(code, 1);
    assert_eq!(state(&second, "XS-S3AP-003", "test-ap-1"), "changed");
    assert_eq!(state(&second, "XS-SM-001", "ml-notebook-1"), "unchanged");
    let change = &second["drift"]["config_changes"][0];
    assert_eq!(change["resource_type"], "s3_access_point");
    assert_eq!(change["change"], "modified");
    let diff = change["fields"][0]["policy_diff"].as_str().unwrap();
    assert!(
        diff.contains("+") && diff.contains("s3:PutObject"),
        "{diff}"
    );
    assert_ne!(latest(&history), first_run);

    // The same failure the next night: not new, so --fail-on new is quiet; any still fails.
    let (third, code) = history_scan(&history, &drifted, &["--fail-on", "new"]);
    assert_eq!(code, 0);
    assert_eq!(state(&third, "XS-S3AP-003", "test-ap-1"), "unchanged");
    assert!(third["drift"].get("config_changes").is_none());
    let (_, code) = history_scan(&history, &drifted, &["--fail-on", "any"]);
    assert_eq!(code, 1);
    let (_, code) = history_scan(&history, &drifted, &["--fail-on", "none"]);
    assert_eq!(code, 0);
    assert_eq!(runs(&history).len(), 5);

    // Fixed: resolved against the previous run; keep the last 2 runs.
    let (fixed, code) = history_scan(&history, COMPLIANT, &["--keep", "2"]);
    assert_eq!(code, 0);
    assert_eq!(state(&fixed, "XS-S3AP-003", "test-ap-1"), "resolved");
    let kept = runs(&history);
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert_eq!(kept.last().unwrap(), &latest(&history));
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(history.join(latest(&history)).join("report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report, fixed, "the kept report is the one printed");
}

/// A TCP server that accepts connections and never answers: a scan against it hangs in
/// collection while holding the history lock.
fn black_hole() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

#[test]
fn overlapping_runs_are_refused_and_a_killed_run_leaves_no_trace() {
    let dir = temp_dir("history-lock");
    let history = dir.join("history");
    let (_, code) = history_scan(&history, COMPLIANT, &[]);
    assert_eq!(code, 0);
    let complete = latest(&history);

    let (listener, url) = black_hole();
    let accept = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(8).flatten() {
            held.push(stream);
        }
        held
    });
    let config = dir.join("live.yaml");
    std::fs::write(
        &config,
        "regions: [us-east-1]\naccounts:\n  - {id: \"111111111111\", role: consumer}\nperimeter:\n  data_account: \"222222222222\"\n  dataset_buckets: [b]\n  access_points: [\"arn:aws:s3:us-east-1:222222222222:accesspoint/a\"]\ncollection: {call_timeout_seconds: 120, max_attempts: 1}\n",
    )
    .unwrap();
    let mut hanging = Command::new(env!("CARGO_BIN_EXE_xscan"))
        .args([
            "scan",
            "--config",
            config.to_str().unwrap(),
            "--endpoint-url",
            &url,
        ])
        .args(["--history", history.to_str().unwrap()])
        .current_dir(root())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &dir)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until it holds the lock (it writes its pid into the lock file).
    let pid = hanging.id().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(history.join(".lock"))
        .unwrap_or_default()
        .trim()
        != pid
    {
        assert!(
            Instant::now() < deadline,
            "the first run never took the lock"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let out = xscan(&[
        "scan",
        "--snapshot",
        COMPLIANT,
        "--config",
        CONFIG,
        "--history",
        history.to_str().unwrap(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("another xscan run holds the lock"), "{err}");
    assert!(err.contains(&format!("pid {pid}")), "{err}");
    assert!(out.stdout.is_empty(), "a refused run prints no report");

    // Kill the first run midway (SIGKILL: no clean-up of its own), and leave behind what a
    // run killed while writing would: a temporary run directory.
    hanging.kill().unwrap();
    hanging.wait().unwrap();
    drop(accept);
    let half_written = history.join(".tmp-20261128T000000Z-99999");
    std::fs::create_dir_all(&half_written).unwrap();
    std::fs::write(half_written.join("report.json"), "{\"trunc").unwrap();
    assert_eq!(
        latest(&history),
        complete,
        "latest still names a complete run"
    );

    // The next run takes over: the kernel released the lock with the killed process.
    let (report, code) = history_scan(&history, COMPLIANT, &["--fail-on", "new"]);
    assert_eq!(code, 0);
    assert!(report["drift"]["baseline_report_id"].is_string());
    assert!(
        !half_written.exists(),
        "leftovers of the killed run are removed"
    );
    assert_eq!(runs(&history).len(), 2);
}
