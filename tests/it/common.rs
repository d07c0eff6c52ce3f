//! Helpers: run the built binary with a cleared environment, from the repository root.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The bundled example estate (two accounts, a few drifts, one collection gap).
pub const ESTATE: &str = "examples/estate.snapshot.json";
/// The compliant fixture estate the rule tests patch.
pub const COMPLIANT: &str = "rules/fixtures/compliant.snapshot.json";
pub const CONFIG: &str = "examples/xscan.yaml";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `xscan args...` in `dir` with only PATH and HOME set (no AWS_*, no XSCAN_CONFIG).
pub fn xscan_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xscan"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .output()
        .expect("run xscan")
}

/// Runs `xscan args...` in `dir` with test AWS credentials and nothing else of the
/// environment (no profile, no instance metadata), plus `env`: for an emulator or a loopback
/// AWS given with `--endpoint-url`.
pub fn xscan_with_aws(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xscan"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().copied())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", dir.join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            dir.join("no-aws-credentials"),
        )
        .output()
        .expect("run xscan")
}

pub fn xscan(args: &[&str]) -> Output {
    xscan_in(&root(), args)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh empty directory under the system temp dir.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xscan-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `xscan scan --snapshot SNAPSHOT --config examples/xscan.yaml --format json EXTRA...`: the
/// report and the exit code.
pub fn scan_json(snapshot: &str, extra: &[&str]) -> (Value, i32) {
    let mut args = vec![
        "scan",
        "--snapshot",
        snapshot,
        "--config",
        CONFIG,
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    let out = xscan(&args);
    let report =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
    (report, out.status.code().unwrap())
}

/// The example estate's report, typed (a template for synthetic reports).
pub fn example_report() -> xscan::findings::Report {
    serde_json::from_value(scan_json(ESTATE, &[]).0).unwrap()
}

/// Asserts that a JSON report validates against `schemas/report-v1.schema.json` (formats on).
pub fn assert_valid_report(report: &Value) {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("schemas/report-v1.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    let errors: Vec<String> = validator
        .iter_errors(report)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

/// The compliant fixture with `change` applied, written to `dir/name`; returns the path.
pub fn patched_snapshot(dir: &Path, name: &str, change: impl FnOnce(&mut Value)) -> String {
    let mut snapshot: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join(COMPLIANT)).unwrap()).unwrap();
    change(&mut snapshot);
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(&snapshot).unwrap()).unwrap();
    path.to_str().unwrap().to_string()
}

/// The compliant fixture's notebook ml-notebook-1.
pub fn notebook(snapshot: &mut Value) -> &mut Value {
    &mut snapshot["accounts"]["111111111111"]["regions"]["us-east-1"]["sagemaker_notebooks"]["ml-notebook-1"]
}

/// The compliant fixture's access point test-ap-1.
pub fn access_point(snapshot: &mut Value) -> &mut Value {
    &mut snapshot["accounts"]["222222222222"]["regions"]["us-east-1"]["s3_access_points"]["test-ap-1"]
}

/// The result of `rule` on the resource with `id`.
pub fn result_of<'a>(report: &'a Value, rule: &str, id: &str) -> &'a Value {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule_id"] == rule && r["resource"]["id"] == id)
        .unwrap_or_else(|| panic!("no result {rule} {id}"))
}

/// The example estate without its collection gap (the gap's rule is medium): for tests of the
/// exit code of failures alone (`--min-severity high`), since any gap makes a scan incomplete.
pub fn estate_without_gaps() -> String {
    let dir = temp_dir("estate-without-gaps");
    let mut snapshot: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join(ESTATE)).unwrap()).unwrap();
    snapshot["metadata"]["collection_gaps"] = serde_json::json!([]);
    let path = dir.join("estate.json");
    std::fs::write(&path, snapshot.to_string()).unwrap();
    path.to_str().unwrap().to_string()
}
