//! Waivers: they apply until they expire (inclusive, judged on the snapshot's day), expired and
//! stale ones are reported, waived results stay in JSON/HTML and leave SARIF, and bad waiver
//! files are errors with file:line.

use serde_json::Value;

use crate::common::{
    CONFIG, ESTATE, assert_valid_report, notebook, patched_snapshot, result_of as result,
    scan_json, stderr, stdout, temp_dir, xscan,
};

fn waiver_file(dir: &std::path::Path, rule: &str, resource: &str, expires: &str) -> String {
    let path = dir.join(format!("waivers-{rule}-{expires}.yaml"));
    std::fs::write(
        &path,
        format!(
            "waivers:\n  - rule: {rule}\n    resource: \"{resource}\"\n    justification: accepted for the test\n    approver: tester@bank.example\n    ticket: RISK-1\n    expires: {expires}\n"
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn the_example_waivers_are_active_expired_and_stale() {
    let (report, code) = scan_json(ESTATE, &["--waivers", "examples/waivers.yaml"]);
    assert_valid_report(&report);
    assert_eq!(
        code, 3,
        "the collection gap still makes the scan incomplete"
    );
    let waived = result(&report, "XS-SM-004", "ml-notebook-2");
    assert_eq!(waived["status"], "waived");
    assert_eq!(waived["waiver"]["ticket"], "RISK-2041");
    assert_eq!(waived["waiver"]["expires"], "2027-01-31");
    // The expired waiver covered this one: it fails again.
    assert_eq!(
        result(&report, "XS-SM-001", "ml-notebook-2")["status"],
        "fail"
    );
    let states: Vec<(&str, usize, u64)> = report["waivers"]["waivers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["state"].as_str().unwrap(),
                w["matched"].as_array().unwrap().len(),
                w["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![("active", 1, 6), ("expired", 1, 15), ("stale", 0, 22)]
    );
    assert_eq!(report["waivers"]["as_of"], "2026-11-28");
    assert_eq!(report["summary"]["by_status"]["waived"], 1);

    // SARIF leaves the waived result out; the table and HTML say what happened.
    let sarif = stdout(&xscan(&[
        "scan",
        "--snapshot",
        ESTATE,
        "--config",
        CONFIG,
        "--format",
        "sarif",
        "--waivers",
        "examples/waivers.yaml",
    ]));
    let sarif: Value = serde_json::from_str(&sarif).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert!(!results.iter().any(|r| r["ruleId"] == "XS-SM-004"));
    assert!(results.iter().any(|r| r["ruleId"] == "XS-SM-001"));
    let table = stdout(&xscan(&[
        "scan",
        "--snapshot",
        ESTATE,
        "--config",
        CONFIG,
        "--waivers",
        "examples/waivers.yaml",
    ]));
    assert!(table.contains("1 active, 1 expired, 1 stale"), "{table}");
    assert!(
        table.contains("expired waiver CHG-7730 (examples/waivers.yaml:15"),
        "{table}"
    );
    assert!(table.contains("stale waiver RISK-1999"), "{table}");
    let html = stdout(&xscan(&[
        "scan",
        "--snapshot",
        ESTATE,
        "--config",
        CONFIG,
        "--format",
        "html",
        "--waivers",
        "examples/waivers.yaml",
    ]));
    assert!(html.contains("<h2>Waivers</h2>"));
    assert!(html.contains("Waived by RISK-2041 (approver head-of-ml-platform@bank.example"));
    assert!(html.contains("<tr class=\"waiver-expired\"><td>expired</td>"));
}

#[test]
fn expiry_is_inclusive_and_judged_on_the_snapshot_day() {
    let dir = temp_dir("waiver-expiry");
    let drifted = patched_snapshot(&dir, "drifted.json", |s| {
        notebook(s)["direct_internet_access"] = "Enabled".into();
    });
    let arn = "arn:aws:sagemaker:us-east-1:111111111111:notebook-instance/ml-notebook-1";
    let (report, code) = scan_json(&drifted, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        result(&report, "XS-SM-001", "ml-notebook-1")["status"],
        "fail"
    );

    // The snapshot was collected on 2026-11-28: a waiver expiring that day still applies.
    let last_day = waiver_file(&dir, "XS-SM-001", arn, "2026-11-28");
    let (report, code) = scan_json(&drifted, &["--waivers", &last_day]);
    assert_eq!(code, 0, "every failure is waived");
    assert_eq!(
        result(&report, "XS-SM-001", "ml-notebook-1")["status"],
        "waived"
    );

    let day_before = waiver_file(&dir, "XS-SM-001", arn, "2026-11-27");
    let (report, code) = scan_json(&drifted, &["--waivers", &day_before]);
    assert_eq!(code, 1, "an expired waiver no longer applies");
    assert_eq!(
        result(&report, "XS-SM-001", "ml-notebook-1")["status"],
        "fail"
    );
    assert_eq!(report["waivers"]["waivers"][0]["state"], "expired");

    // A pattern matches; on the compliant estate the same waiver is stale.
    let pattern = waiver_file(
        &dir,
        "XS-SM-001",
        "arn:aws:sagemaker:*:111111111111:*",
        "2027-01-01",
    );
    let (report, code) = scan_json(&drifted, &["--waivers", &pattern]);
    assert_eq!(
        (code, report["waivers"]["waivers"][0]["state"].as_str()),
        (0, Some("active"))
    );
    let (report, _) = scan_json(crate::common::COMPLIANT, &["--waivers", &pattern]);
    assert_eq!(report["waivers"]["waivers"][0]["state"], "stale");
}

#[test]
fn the_config_names_the_waiver_file_relative_to_itself() {
    let dir = temp_dir("waiver-config");
    let drifted = patched_snapshot(&dir, "drifted.json", |s| {
        notebook(s)["direct_internet_access"] = "Enabled".into();
    });
    std::fs::write(
        dir.join("accepted.yaml"),
        "waivers:\n  - rule: XS-SM-001\n    resource: arn:aws:sagemaker:us-east-1:111111111111:notebook-instance/ml-notebook-1\n    justification: x\n    approver: y\n    ticket: z\n    expires: 2030-01-01\n",
    )
    .unwrap();
    let config = std::fs::read_to_string(crate::common::root().join(CONFIG)).unwrap();
    std::fs::write(
        dir.join("xscan.yaml"),
        format!("{config}\nwaivers: accepted.yaml\n"),
    )
    .unwrap();
    let out = xscan(&[
        "scan",
        "--snapshot",
        &drifted,
        "--config",
        dir.join("xscan.yaml").to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        result(&report, "XS-SM-001", "ml-notebook-1")["status"],
        "waived"
    );
}

#[test]
fn invalid_waivers_are_errors_with_file_and_line() {
    let dir = temp_dir("waiver-invalid");
    let good = "waivers:\n  - rule: XS-SM-001\n    resource: arn:aws:sagemaker:us-east-1:111111111111:notebook-instance/x\n    justification: j\n    approver: a\n    ticket: t\n    expires: 2027-01-01\n";
    for (name, text, expected) in [
        (
            "no-expiry",
            good.replace("    expires: 2027-01-01\n", ""),
            ":2:",
        ),
        ("bad-date", good.replace("2027-01-01", "2027-13-01"), ":7:"),
        (
            "unknown-rule",
            good.replace("XS-SM-001", "XS-SM-999"),
            ":2:",
        ),
        (
            "unknown-field",
            good.replace("ticket: t", "ticket: t\n    owner: o"),
            ":7:",
        ),
    ] {
        let path = dir.join(format!("{name}.yaml"));
        std::fs::write(&path, text).unwrap();
        let out = xscan(&[
            "scan",
            "--snapshot",
            ESTATE,
            "--config",
            CONFIG,
            "--waivers",
            path.to_str().unwrap(),
        ]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(
            err.contains(&format!("{name}.yaml{expected}")),
            "{name}: {err}"
        );
        assert!(err.contains("help:"), "{name}: {err}");
        assert!(out.stdout.is_empty(), "{name}: no report on bad input");
    }
}
