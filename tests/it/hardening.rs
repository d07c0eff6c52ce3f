//! Hostile and malformed input on every surface: no panic, no hang, no silent loss. Each test
//! here failed before the fix it guards (issue "Hardening"); hangs are bounded by a deadline.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{
    COMPLIANT, CONFIG, ESTATE, notebook, patched_snapshot, root, stderr, stdout, temp_dir, xscan,
};

/// Runs xscan with a deadline: a hang is a test failure, not a stuck suite.
fn xscan_within(seconds: u64, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_xscan"))
        .args(args)
        .current_dir(root())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("xscan {args:?} did not finish within {seconds} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

#[test]
fn out_of_range_collection_limits_are_located_errors() {
    let dir = temp_dir("limits");
    let base = std::fs::read_to_string(root().join(CONFIG)).unwrap();
    for setting in [
        "concurrency: 18446744073709551615",
        "call_timeout_seconds: 10000000000000000000",
        "max_attempts: 4294967295",
        "per_service_concurrency: 18446744073709551615",
    ] {
        let config = dir.join("xscan.yaml");
        let text = match base.find("collection:") {
            Some(at) => format!("{}collection:\n  {setting}\n", &base[..at]),
            None => format!("{base}\ncollection:\n  {setting}\n"),
        };
        std::fs::write(&config, text).unwrap();
        let out = xscan_within(
            20,
            &[
                "collect",
                "--config",
                config.to_str().unwrap(),
                "--endpoint-url",
                "http://127.0.0.1:9",
            ],
        );
        assert_eq!(code(&out), 2, "{setting}: {}", stderr(&out));
        assert!(stderr(&out).contains("must be between"), "{}", stderr(&out));
        assert!(stderr(&out).contains("xscan.yaml:"), "{}", stderr(&out));
    }
    let out = xscan_within(
        20,
        &[
            "collect",
            "--config",
            CONFIG,
            "--concurrency",
            "18446744073709551615",
        ],
    );
    assert_eq!(code(&out), 2, "{}", stderr(&out));
}

#[test]
fn looping_symlinks_in_a_rule_directory_do_not_hang() {
    let dir = temp_dir("rule-loop");
    let rules = dir.join("rules");
    std::fs::create_dir_all(rules.join("sagemaker")).unwrap();
    std::fs::copy(
        root().join("rules/sagemaker/XS-SM-003-notebook-root-access-disabled.yaml"),
        rules.join("sagemaker/XS-SM-003.yaml"),
    )
    .unwrap();
    std::fs::create_dir_all(rules.join("fixtures")).unwrap();
    for f in ["compliant.snapshot.json", "xscan.yaml"] {
        std::fs::copy(
            root().join("rules/fixtures").join(f),
            rules.join("fixtures").join(f),
        )
        .unwrap();
    }
    std::os::unix::fs::symlink(".", rules.join("a")).unwrap();
    std::os::unix::fs::symlink(".", rules.join("b")).unwrap();
    let out = xscan_within(30, &["rules", "test", rules.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let out = xscan_within(
        30,
        &[
            "scan",
            "--snapshot",
            COMPLIANT,
            "--config",
            CONFIG,
            "--rules",
            rules.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn an_empty_rule_directory_is_an_error_not_a_green_scan() {
    let dir = temp_dir("rules-empty");
    let out = xscan(&[
        "scan",
        "--snapshot",
        ESTATE,
        "--config",
        CONFIG,
        "--rules",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("holds no rule"), "{}", stderr(&out));
}

#[test]
fn a_shard_claiming_a_trillion_shards_is_refused_at_once() {
    let dir = temp_dir("merge-huge");
    let shard = patched_snapshot(&dir, "shard.json", |s| {
        s["metadata"]["provenance"] = serde_json::json!({
            "rule_pack_sha256": "x",
            "shard": {"index": 0, "count": 1_000_000_000_000u64}
        });
    });
    let out = xscan_within(20, &["merge", &shard]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("which is not a shard"),
        "{}",
        stderr(&out)
    );
}

/// The compliant fixture as text with a failing copy of `ml-notebook-1` placed before it
/// under the same key: last-key-wins would hide the failure.
fn snapshot_with_duplicate_notebook(dir: &Path) -> String {
    let mut failing: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join(COMPLIANT)).unwrap()).unwrap();
    notebook(&mut failing)["direct_internet_access"] = "Enabled".into();
    let failing_text = serde_json::to_string(notebook(&mut failing)).unwrap();
    let text = std::fs::read_to_string(root().join(COMPLIANT)).unwrap();
    let needle = "\"ml-notebook-1\": {";
    let at = text.find(needle).expect("the fixture names ml-notebook-1");
    let doubled = format!(
        "{}\"ml-notebook-1\": {failing_text},\n{}",
        &text[..at],
        &text[at..]
    );
    let path = dir.join("duplicate.json");
    std::fs::write(&path, doubled).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn duplicate_keys_are_refused_in_snapshots_and_policies() {
    let dir = temp_dir("duplicate-keys");
    let snapshot = snapshot_with_duplicate_notebook(&dir);
    for args in [
        vec!["scan", "--snapshot", &snapshot, "--config", CONFIG],
        vec!["diff", COMPLIANT, &snapshot],
    ] {
        let out = xscan(&args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("duplicate key `ml-notebook-1`"),
            "{}",
            stderr(&out)
        );
        assert!(stderr(&out).contains("duplicate.json"), "{}", stderr(&out));
    }
    let policy = dir.join("policy.json");
    std::fs::write(
        &policy,
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Effect":"Allow","Action":"*","Resource":"*"}}"#,
    )
    .unwrap();
    let out = xscan(&[
        "policy",
        "eval",
        "--policy",
        policy.to_str().unwrap(),
        "--principal",
        "arn:aws:iam::111111111111:role/r",
        "--action",
        "s3:GetObject",
        "--resource",
        "arn:aws:iam::111111111111:role/x",
    ]);
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    assert!(
        stderr(&out).contains("duplicate key `Effect`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_byte_order_mark_is_accepted_everywhere() {
    let dir = temp_dir("bom");
    let bom = |from: &Path, to: &Path| {
        let text = std::fs::read_to_string(from).unwrap();
        std::fs::write(to, format!("\u{feff}{text}")).unwrap();
    };
    let snapshot = dir.join("snapshot.json");
    bom(&root().join(COMPLIANT), &snapshot);
    let config = dir.join("xscan.yaml");
    bom(&root().join(CONFIG), &config);
    let out = xscan(&[
        "scan",
        "--snapshot",
        snapshot.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    bom(
        &root().join("rules/sagemaker/XS-SM-003-notebook-root-access-disabled.yaml"),
        &rules.join("XS-SM-003.yaml"),
    );
    let out = xscan(&["rules", "list", "--rules", rules.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("XS-SM-003"));

    let policy = dir.join("policy.json");
    std::fs::write(
        &policy,
        "\u{feff}{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:*\",\"Resource\":\"*\"}}",
    )
    .unwrap();
    let out = xscan(&[
        "policy",
        "eval",
        "--policy",
        policy.to_str().unwrap(),
        "--principal",
        "arn:aws:iam::111111111111:role/r",
        "--action",
        "s3:GetObject",
        "--resource",
        "arn:aws:s3:::b/k",
        "--resource-account",
        "111111111111",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Decision: Allowed"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn verbose_flag_works_before_the_subcommand() {
    let out = xscan(&["-v", "scan", "--snapshot", COMPLIANT, "--config", CONFIG]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = xscan(&["scan", "-v", "--snapshot", COMPLIANT, "--config", CONFIG]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // A scan option before a subcommand is refused, not ignored.
    let out = xscan(&["--format", "json", "rules", "list"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("--format"), "{}", stderr(&out));
}

#[test]
fn a_dangling_latest_link_stops_the_run_and_is_kept() {
    let dir = temp_dir("history-dangling");
    let history = dir.join("history");
    std::fs::create_dir_all(&history).unwrap();
    std::os::unix::fs::symlink("20990101T000000Z", history.join("latest")).unwrap();
    let out = xscan(&[
        "scan",
        "--snapshot",
        COMPLIANT,
        "--config",
        CONFIG,
        "--history",
        history.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("a link to a missing file"),
        "{}",
        stderr(&out)
    );
    assert!(
        std::fs::symlink_metadata(history.join("latest"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link is left for a person to look at"
    );
}

#[test]
fn a_corrupt_previous_run_names_the_run_and_the_way_out() {
    let dir = temp_dir("history-corrupt");
    let history = dir.join("history");
    let args = [
        "scan",
        "--snapshot",
        COMPLIANT,
        "--config",
        CONFIG,
        "--history",
        history.to_str().unwrap(),
    ];
    assert_eq!(code(&xscan(&args)), 0);
    let run = std::fs::read_to_string(history.join("latest")).unwrap();
    std::fs::write(history.join(run.trim()).join("snapshot.json"), "{ cut").unwrap();
    let out = xscan(&args);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let message = stderr(&out);
    assert!(message.contains("the previous run"), "{message}");
    assert!(message.contains(run.trim()), "{message}");
    assert!(message.contains("move that run out"), "{message}");
    assert!(
        !message.contains("help: pass a file written by"),
        "{message}"
    );
}

#[test]
fn output_files_are_replaced_whole() {
    let dir = temp_dir("atomic-output");
    let target = dir.join("report.json");
    let other_name = dir.join("previous.json");
    std::fs::write(&target, "previous report").unwrap();
    std::fs::hard_link(&target, &other_name).unwrap();
    let out = xscan(&[
        "scan",
        "--snapshot",
        COMPLIANT,
        "--config",
        CONFIG,
        "--format",
        "json",
        "--output",
        target.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // A rename replaces the name with a new file; an in-place write would change both names.
    assert_eq!(
        std::fs::read_to_string(&other_name).unwrap(),
        "previous report"
    );
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&target).unwrap()).unwrap();
    assert!(report["results"].is_array());
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("xscan-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_failed_write_to_standard_output_exits_2() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        panic!("/dev/full is needed for this test (Linux)");
    };
    let out = Command::new(env!("CARGO_BIN_EXE_xscan"))
        .args(["scan", "--snapshot", COMPLIANT, "--config", CONFIG])
        .current_dir(root())
        .env_clear()
        .stdout(full)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("standard output"), "{}", stderr(&out));
}

#[test]
fn hostile_names_cannot_drive_the_terminal() {
    let dir = temp_dir("terminal-injection");
    let hostile = "nb\u{1b}[2J\u{1b}]0;owned\u{7}\u{1b}]8;;http://x\u{1b}\\\nFORGED ROW\u{202e}";
    let snapshot = patched_snapshot(&dir, "hostile.json", |s| {
        let nb = notebook(s);
        nb["direct_internet_access"] = "Enabled".into();
        nb["arn"] =
            format!("arn:aws:sagemaker:us-east-1:111111111111:notebook-instance/{hostile}").into();
        s["metadata"]["collection_gaps"] = serde_json::json!([{
            "account": "111111111111", "service": "iam", "api_call": "GetRole",
            "resource_id": "x", "error": format!("AccessDenied {hostile}")
        }]);
    });
    let out = xscan(&["scan", "--snapshot", &snapshot, "--config", CONFIG]);
    assert!(code(&out) == 3 || code(&out) == 1, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(!text.contains('\u{1b}'), "raw ESC on the terminal:\n{text}");
    assert!(!text.contains('\u{202e}'), "raw bidi override");
    assert!(!text.contains('\u{7}'), "raw BEL");
    assert!(!text.lines().any(|l| l.starts_with("FORGED")), "forged row");
    assert!(
        text.contains("\\u{1b}[2J"),
        "shown as a visible escape:\n{text}"
    );
}

#[test]
fn a_baseline_with_a_repeated_key_is_refused() {
    let dir = temp_dir("baseline-duplicate");
    let (report, _) = crate::common::scan_json(COMPLIANT, &[]);
    let text = serde_json::to_string_pretty(&report).unwrap();
    // The report id twice: which one a reader keeps is not defined.
    let doubled = text.replacen(
        "\"report_id\"",
        "\"report_id\": \"forged\",\n  \"report_id\"",
        1,
    );
    let path = dir.join("baseline.json");
    std::fs::write(&path, doubled).unwrap();
    let out = xscan(&[
        "scan",
        "--snapshot",
        COMPLIANT,
        "--config",
        CONFIG,
        "--baseline",
        path.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("duplicate key `report_id`"),
        "{}",
        stderr(&out)
    );
}

/// A scan reads its snapshot without holding the text (`Snapshot::read_file`; the history
/// and `--sign` still keep it): the report's digest is still the file's bytes' (a byte order
/// mark included), bytes that are not UTF-8 are refused as reading the whole file refuses
/// them, and a syntax error keeps its line and column.
#[test]
fn a_snapshot_read_as_it_is_parsed_is_checked_and_hashed_as_a_whole_one() {
    let dir = temp_dir("streamed-snapshot");
    let text = format!(
        "\u{feff}{}",
        std::fs::read_to_string(root().join(COMPLIANT)).unwrap()
    );
    let snapshot = dir.join("snapshot.json");
    std::fs::write(&snapshot, &text).unwrap();
    let report = dir.join("report.json");
    let scan = |snapshot: &Path| {
        xscan(&[
            "scan",
            "--snapshot",
            snapshot.to_str().unwrap(),
            "--config",
            root().join(CONFIG).to_str().unwrap(),
            "--format",
            "json",
            "--output",
            report.to_str().unwrap(),
        ])
    };
    let out = scan(&snapshot);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(
        written["method"]["snapshot_sha256"],
        xscan::findings::sha256_hex(text.as_bytes()).as_str()
    );

    let mut bytes = text.clone().into_bytes();
    let at = text.find("ml-notebook-1").unwrap();
    bytes[at] = 0xff;
    std::fs::write(&snapshot, &bytes).unwrap();
    let out = scan(&snapshot);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("valid UTF-8"), "{}", stderr(&out));
    assert!(stderr(&out).contains("snapshot.json"), "{}", stderr(&out));

    std::fs::write(&snapshot, "\u{feff}{\n  \"schema_version\": ,\n}").unwrap();
    let out = scan(&snapshot);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is not valid at line 2 column"),
        "{}",
        stderr(&out)
    );
}
