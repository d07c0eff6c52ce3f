//! Live collection through the real AWS SDK over HTTP, against a moto server started by
//! `scripts/test.sh` (XSCAN_TEST_ENDPOINT, XSCAN_TEST_PYTHON). Each test seeds the seed
//! architecture into its own pair of moto accounts (consumer + data, reached by assuming
//! roles), applies at most one drift, runs `xscan scan`, and checks exactly which rules fail on
//! which resources.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::common::{root, stderr, stdout, temp_dir};

/// The emulator endpoint and the Python with boto3. These tests are `#[ignore]`d, so a plain
/// `cargo test` lists them as ignored instead of counting them as passed; `scripts/test.sh`
/// starts moto and runs them with `--include-ignored`. Run without an emulator, they fail.
fn emulator() -> (String, String) {
    match (
        std::env::var("XSCAN_TEST_ENDPOINT"),
        std::env::var("XSCAN_TEST_PYTHON"),
    ) {
        (Ok(endpoint), Ok(python)) => (endpoint, python),
        _ => panic!(
            "no emulator: XSCAN_TEST_ENDPOINT and XSCAN_TEST_PYTHON are not set (run ./scripts/test.sh, which starts moto)"
        ),
    }
}

/// A test's own accounts and bucket, so tests run in parallel on one server.
pub(crate) struct Estate {
    pub(crate) consumer: String,
    pub(crate) data: String,
    pub(crate) bucket: String,
    pub(crate) dir: PathBuf,
    pub(crate) endpoint: String,
}

/// Runs seed.py against `endpoint` for [consumer, data, bucket], with `extra` arguments.
fn run_seed(python: &str, endpoint: &str, [consumer, data, bucket]: [&str; 3], extra: &[&str]) {
    let out = Command::new(python)
        .arg(root().join("tests/emulator/seed.py"))
        .args([
            "--endpoint",
            endpoint,
            "--consumer",
            consumer,
            "--data",
            data,
        ])
        .args(["--bucket", bucket])
        .args(extra)
        .output()
        .expect("run seed.py");
    assert!(out.status.success(), "seeding failed: {}", stderr(&out));
}

pub(crate) fn seed(case: u64, drift: Option<&str>) -> Estate {
    let (endpoint, python) = emulator();
    // Unique per process run and per case: a reused server keeps earlier state.
    let run = std::process::id() as u64 % 100_000;
    let consumer = format!("{:012}", 300_000_000_000 + run * 1000 + case * 2);
    let data = format!("{:012}", 300_000_000_000 + run * 1000 + case * 2 + 1);
    let bucket = format!("xscan-it-{run}-{case}");
    let drift: Vec<&str> = drift.map(|d| vec!["--drift", d]).unwrap_or_default();
    run_seed(&python, &endpoint, [&consumer, &data, &bucket], &drift);
    let dir = temp_dir(&format!("emulator-{case}"));
    let config = format!(
        r#"scope: emulator-{case}
regions: [us-east-1]
accounts:
  - {{id: "{consumer}", name: consumer, role: consumer, assume_role: "arn:aws:iam::{consumer}:role/xscan-audit"}}
  - {{id: "{data}", name: data, role: data, assume_role: "arn:aws:iam::{data}:role/xscan-audit", external_id: test}}
perimeter:
  data_account: "{data}"
  dataset_buckets: [{bucket}]
  access_points: ["arn:aws:s3:us-east-1:{data}:accesspoint/test-ap-1"]
  execution_roles: ["arn:aws:iam::{consumer}:role/xscan-sagemaker-exec"]
collection:
  concurrency: 8
  call_timeout_seconds: 20
  max_attempts: 3
"#
    );
    std::fs::write(dir.join("xscan.yaml"), config).unwrap();
    Estate {
        consumer,
        data,
        bucket,
        dir,
        endpoint,
    }
}

/// Runs xscan with test credentials (landing in moto's default account) and the endpoint.
fn xscan_aws(estate: &Estate, args: &[&str]) -> std::process::Output {
    xscan_aws_env(estate, args, &[])
}

fn xscan_aws_env(estate: &Estate, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    crate::common::xscan_with_aws(&estate.dir, args, env)
}

fn scan(estate: &Estate) -> (Value, i32) {
    scan_at(estate, &estate.endpoint)
}

/// `xscan scan` of the estate through `endpoint` (the emulator, or a proxy before it).
pub(crate) fn scan_at(estate: &Estate, endpoint: &str) -> (Value, i32) {
    let out = xscan_aws(
        estate,
        &[
            "scan",
            "--config",
            "xscan.yaml",
            "--endpoint-url",
            endpoint,
            "--format",
            "json",
            "--save-snapshot",
            "snapshot.json",
        ],
    );
    let report: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
    (report, out.status.code().unwrap())
}

/// (rule, resource id) of every result with `status`.
fn with_status(report: &Value, status: &str) -> BTreeSet<(String, String)> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == status)
        .map(|r| {
            (
                r["rule_id"].as_str().unwrap().to_string(),
                r["resource"]["id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn set(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
#[ignore = "needs the moto emulator: run ./scripts/test.sh"]
fn compliant_estate_has_no_failures_and_every_rule_passes_somewhere() {
    let estate = seed(1, None);
    let (report, code) = scan(&estate);
    let failing: BTreeSet<_> = with_status(&report, "fail")
        .union(&with_status(&report, "error"))
        .cloned()
        .collect();
    assert!(
        failing.is_empty(),
        "{failing:#?}\n{}",
        serde_json::to_string_pretty(&report["scan"]["collection_gaps"]).unwrap()
    );
    assert_eq!(code, 0);
    let passing: BTreeSet<String> = with_status(&report, "pass")
        .into_iter()
        .map(|(rule, _)| rule)
        .collect();
    let all_rules: BTreeSet<String> = report["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    // The organization's rules need an organization (see
    // organization_discovery_scans_the_accounts_under_an_ou): here they say it is not in scope.
    let (organization_rules, all_rules): (BTreeSet<String>, BTreeSet<String>) = all_rules
        .into_iter()
        .partition(|r| r.starts_with("XS-ORG-"));
    assert_eq!(
        passing, all_rules,
        "every rule is evaluated and passes on the compliant estate"
    );
    let skipped: BTreeSet<String> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["status"] == "skipped"
                && r["message"]
                    .as_str()
                    .unwrap()
                    .contains("the organization is not in scope")
        })
        .map(|r| r["rule_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(skipped, organization_rules);
    // Caller identities recorded per account, in the right account.
    for account in [&estate.consumer, &estate.data] {
        let caller = report["scan"]["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == account.as_str())
            .unwrap();
        assert!(
            caller["caller_arn"]
                .as_str()
                .unwrap()
                .contains(account.as_str()),
            "{caller}"
        );
    }
    // The saved snapshot records which API calls were made: all of them in the permission list.
    let snapshot: Value =
        serde_json::from_str(&std::fs::read_to_string(estate.dir.join("snapshot.json")).unwrap())
            .unwrap();
    let calls = snapshot["metadata"]["api_calls"].as_object().unwrap();
    assert!(calls.len() >= 20, "{calls:?}");
    for action in calls.keys().filter(|a| *a != "sts:AssumeRole") {
        assert!(
            xscan::collect::permissions::ACTIONS.contains(&action.as_str()),
            "{action} not in `xscan permissions`"
        );
    }
}

/// Each drift fails exactly the rules that should fail, on the right resource.
fn drift_case(case: u64, drift: &str, expected: &[(&str, &str)]) {
    let estate = seed(case, Some(drift));
    let (report, code) = scan(&estate);
    let errors = with_status(&report, "error");
    assert!(errors.is_empty(), "{drift}: {errors:#?}");
    let failing = with_status(&report, "fail");
    // Resource ids that depend on moto (security group, endpoint) are matched by prefix.
    let normalize = |set: BTreeSet<(String, String)>| -> BTreeSet<(String, String)> {
        set.into_iter()
            .map(|(rule, id)| {
                let id = ["sg-", "vpce-", "rtb-", "subnet-"]
                    .iter()
                    .find(|p| id.starts_with(*p))
                    .map_or(id.clone(), |p| format!("{p}*"));
                (rule, id)
            })
            .collect()
    };
    let expected: BTreeSet<(String, String)> = set(expected)
        .into_iter()
        .map(|(r, id)| (r, id.replace("{bucket}", &estate.bucket)))
        .collect();
    assert_eq!(normalize(failing), expected, "drift {drift}");
    assert_eq!(code, 1, "drift {drift}");
}

#[test]
#[ignore = "needs the moto emulator: run ./scripts/test.sh"]
fn drift_direct_internet() {
    drift_case(2, "direct-internet", &[("XS-SM-001", "ml-notebook-1")]);
}

#[test]
#[ignore = "needs the moto emulator: run ./scripts/test.sh"]
fn drift_root_access() {
    drift_case(3, "root-access", &[("XS-SM-003", "ml-notebook-1")]);
}

#[test]
#[ignore = "needs the moto emulator: run ./scripts/test.sh"]
fn drift_egress_open() {
    // Open egress leaves the route table alone against a way out: defence in depth lost.
    drift_case(
        4,
        "egress-open",
        &[("XS-NET-001", "sg-*"), ("XS-PATH-004", "ml-notebook-1")],
    );
}

#[test]
#[ignore = "needs the moto emulator: run ./scripts/test.sh"]
fn drift_endpoint_policy_opened() {
    drift_case(
        5,
        "endpoint-open",
        // The role's policies alone now keep other accounts' S3 out.
        &[
            ("XS-NET-006", "vpce-*"),
            ("XS-NET-007", "vpce-*"),
            ("XS-PATH-004", "ml-notebook-1"),
        ],
    );
}

#[test]
#[ignore = "needs the moto emulator: run ./scripts/test.sh"]
fn drift_access_point_granted_to_everyone() {
    drift_case(
        6,
        "ap-public",
        // The pattern breaks too: with RestrictPublicBuckets on, a public access point policy
        // lets no other account in (S3 User Guide, "Blocking public access").
        &[
            ("XS-S3AP-002", "test-ap-1"),
            ("XS-S3AP-005", "test-ap-1"),
            ("XS-PATH-001", "ml-notebook-1"),
        ],
    );
}

#[test]
#[ignore = "needs the moto emulator: run ./scripts/test.sh"]
fn drift_access_point_allows_writes() {
    drift_case(7, "ap-write", &[("XS-S3AP-003", "test-ap-1")]);
}

#[test]
#[ignore = "needs the moto emulator: run ./scripts/test.sh"]
fn drift_bucket_policy_without_delegation_condition() {
    drift_case(
        8,
        "bucket-no-delegation",
        // The public bucket policy, with the bucket's RestrictPublicBuckets on, lets no other
        // account in: the consumer's path to the dataset breaks too.
        &[
            ("XS-S3-003", "{bucket}"),
            ("XS-S3-007", "{bucket}"),
            ("XS-PATH-001", "ml-notebook-1"),
            ("XS-PATH-004", "ml-notebook-1"),
        ],
    );
}

#[test]
#[ignore = "needs the moto emulator: run ./scripts/test.sh"]
fn drift_bucket_policy_without_tls_deny() {
    drift_case(9, "bucket-no-tls", &[("XS-S3-004", "{bucket}")]);
}

#[test]
#[ignore = "needs the moto emulator: run ./scripts/test.sh"]
fn drift_trust_policy_widened() {
    drift_case(
        10,
        "trust-widened",
        &[("XS-IAM-001", "xscan-sagemaker-exec")],
    );
}

#[test]
#[ignore = "needs the moto emulator: run ./scripts/test.sh"]
fn drift_role_reads_the_bucket_directly() {
    drift_case(
        11,
        "role-direct-bucket",
        // The bucket policy alone now keeps the role from reading the bucket directly.
        &[
            ("XS-IAM-002", "xscan-sagemaker-exec"),
            ("XS-PATH-004", "ml-notebook-1"),
        ],
    );
}

#[test]
#[ignore = "needs the moto emulator: run ./scripts/test.sh"]
fn unreachable_account_is_an_error_not_a_pass() {
    let estate = seed(12, None);
    // A third consumer reached without a role: the starting identity lands in moto's default
    // account, not in the configured one.
    let config = std::fs::read_to_string(estate.dir.join("xscan.yaml"))
        .unwrap()
        .replace(
            "perimeter:",
            "  - {id: \"399999999998\", name: wrong, role: consumer}\nperimeter:",
        );
    std::fs::write(estate.dir.join("xscan.yaml"), config).unwrap();
    let (report, code) = scan(&estate);
    assert_eq!(code, 3, "incomplete scan");
    let errors = with_status(&report, "error");
    // Refused as the wrong account, never scanned; its rules are `error`, the others evaluated.
    let gaps = report["scan"]["collection_gaps"].as_array().unwrap();
    assert!(
        gaps.iter().any(|g| g["account"] == "399999999998"
            && g["error"]
                .as_str()
                .unwrap()
                .contains("refusing to scan the wrong account")),
        "{gaps:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|(rule, id)| rule == "XS-SM-001" && id == "*"),
        "{errors:#?}"
    );
    assert!(with_status(&report, "fail").is_empty());
    assert!(
        with_status(&report, "pass")
            .iter()
            .any(|(rule, id)| rule == "XS-SM-001" && id == "ml-notebook-1")
    );
}

#[test]
#[ignore = "needs the moto emulator: run ./scripts/test.sh"]
fn collect_writes_a_snapshot_that_scans_offline_to_the_same_report() {
    let estate = seed(13, Some("direct-internet"));
    let keys = xscan_aws(&estate, &["keygen", "--output", "signer"]);
    assert_eq!(keys.status.code(), Some(0), "{}", stderr(&keys));
    let out = xscan_aws(
        &estate,
        &[
            "collect",
            "--config",
            "xscan.yaml",
            "--endpoint-url",
            &estate.endpoint,
            "--output",
            "snap.json",
            "--sign",
            "signer.key",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The collection is signed: the envelope attests the snapshot and the identities used.
    let verified = xscan_aws(
        &estate,
        &["verify", "--key", "signer.pub", "snap.json.dsse.json"],
    );
    assert_eq!(verified.status.code(), Some(0), "{}", stdout(&verified));
    let envelope: Value = serde_json::from_str(
        &std::fs::read_to_string(estate.dir.join("snap.json.dsse.json")).unwrap(),
    )
    .unwrap();
    use base64::Engine;
    let statement: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(envelope["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(statement["subject"][0]["name"], "snap.json");
    assert_eq!(statement["predicate"]["kind"], "collect");
    assert!(
        statement["predicate"]["collection_identities"][&estate.consumer]
            .as_str()
            .unwrap()
            .contains(&estate.consumer)
    );
    let offline = xscan_aws(
        &estate,
        &[
            "scan",
            "--snapshot",
            "snap.json",
            "--config",
            "xscan.yaml",
            "--format",
            "json",
        ],
    );
    let report: Value = serde_json::from_slice(&offline.stdout).unwrap();
    assert_eq!(offline.status.code(), Some(1));
    assert_eq!(
        with_status(&report, "fail"),
        set(&[("XS-SM-001", "ml-notebook-1")])
    );
    // The evidence report of the collected estate names the identities used in each account.
    let html = xscan_aws(
        &estate,
        &[
            "scan",
            "--snapshot",
            "snap.json",
            "--config",
            "xscan.yaml",
            "--format",
            "html",
        ],
    );
    let html = String::from_utf8_lossy(&html.stdout);
    for account in [&estate.consumer, &estate.data] {
        assert!(
            html.contains(&format!(
                "arn:aws:sts::{account}:assumed-role/xscan-audit/xscan"
            )),
            "{account}"
        );
    }
    assert!(html.contains("id=\"rule-XS-SM-001\""));
}

/// CI writes exactly `xscan --format sarif`: ./xscan.yaml, endpoint from AWS_ENDPOINT_URL.
#[test]
#[ignore = "needs the moto emulator: run ./scripts/test.sh"]
fn bare_xscan_format_sarif_against_the_emulator() {
    let estate = seed(14, Some("egress-open"));
    let out = xscan_aws_env(
        &estate,
        &["--format", "sarif"],
        &[("AWS_ENDPOINT_URL", &estate.endpoint)],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let sarif = crate::sarif::check_sarif(&String::from_utf8_lossy(&out.stdout));
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    // The security group's egress, and the defence in depth it took away (XS-PATH-004).
    assert_eq!(results.len(), 2, "{results:#?}");
    assert_eq!(results[0]["ruleId"], "XS-NET-001");
    assert_eq!(results[1]["ruleId"], "XS-PATH-004");
    assert!(
        results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .unwrap()
            .starts_with(&format!(
                "aws/{}/us-east-1/ec2/security_group/sg-",
                estate.consumer
            ))
    );
}

#[test]
#[ignore = "needs the moto emulator: run ./scripts/test.sh"]
fn invalid_starting_credentials_fail_fast() {
    let (endpoint, _) = emulator();
    let dir = temp_dir("bad-endpoint");
    std::fs::copy(root().join("examples/xscan.yaml"), dir.join("xscan.yaml")).unwrap();
    let estate = Estate {
        consumer: String::new(),
        data: String::new(),
        bucket: String::new(),
        dir,
        endpoint,
    };
    // Nothing listens on port 9: the starting identity cannot be checked.
    let start = std::time::Instant::now();
    let out = xscan_aws(
        &estate,
        &[
            "scan",
            "--endpoint-url",
            "http://127.0.0.1:9",
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("starting AWS identity") && stderr(&out).contains("help:"),
        "{}",
        stderr(&out)
    );
    assert!(start.elapsed().as_secs() < 60);
}

/// A moto server of the test's own (IAM enforcement is server-wide), stopped on drop.
struct OwnServer {
    child: std::process::Child,
    endpoint: String,
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn own_server(python: &str) -> OwnServer {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(python)
        .arg(root().join("tests/emulator/moto_server.py"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start moto");
    let endpoint = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    OwnServer { child, endpoint }
}

/// With IAM enforced and the audit role lacking s3:GetBucketPolicy, the rules that read the
/// bucket policy are `error`, everything else is evaluated, and the exit code is 3.
#[test]
#[ignore = "needs the moto emulator: run ./scripts/test.sh"]
fn missing_permission_makes_exactly_the_dependent_rules_error() {
    let (_, python) = emulator();
    let server = own_server(&python);
    let estate = {
        let endpoint = server.endpoint.clone();
        let run = std::process::id() as u64 % 100_000;
        let consumer = format!("{:012}", 500_000_000_000 + run * 10);
        let data = format!("{:012}", 500_000_000_000 + run * 10 + 1);
        let bucket = format!("xscan-enforced-{run}");
        run_seed(&python, &endpoint, [&consumer, &data, &bucket], &[]);
        Estate {
            consumer,
            data,
            bucket,
            dir: temp_dir("enforced"),
            endpoint,
        }
    };
    // The audit policy is what `xscan permissions` prints, minus one action.
    let permissions = Command::new(env!("CARGO_BIN_EXE_xscan"))
        .arg("permissions")
        .output()
        .unwrap();
    let mut policy: Value = serde_json::from_slice(&permissions.stdout).unwrap();
    let actions = policy["Statement"][0]["Action"].as_array_mut().unwrap();
    actions.retain(|a| a != "s3:GetBucketPolicy");
    std::fs::write(estate.dir.join("policy.json"), policy.to_string()).unwrap();
    // The scanner identity lives in a third (security tooling) account, as in practice.
    let scanner = format!("{:012}", estate.data.parse::<u64>().unwrap() + 1);
    let out = Command::new(&python)
        .current_dir(root().join("tests/emulator"))
        .arg("enforce.py")
        .args([
            "--endpoint",
            &estate.endpoint,
            "--scanner",
            &scanner,
            "--policy",
        ])
        .arg(estate.dir.join("policy.json"))
        .args([&estate.consumer, &estate.data])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let key: Value = serde_json::from_slice(&out.stdout).unwrap();
    std::fs::write(
        estate.dir.join("xscan.yaml"),
        format!(
            r#"scope: enforced
regions: [us-east-1]
accounts:
  - {{id: "{c}", role: consumer, assume_role: "arn:aws:iam::{c}:role/xscan-audit"}}
  - {{id: "{d}", role: data, assume_role: "arn:aws:iam::{d}:role/xscan-audit"}}
perimeter:
  data_account: "{d}"
  dataset_buckets: [{b}]
  access_points: ["arn:aws:s3:us-east-1:{d}:accesspoint/test-ap-1"]
  execution_roles: ["arn:aws:iam::{c}:role/xscan-sagemaker-exec"]
collection: {{max_attempts: 2}}
"#,
            c = estate.consumer,
            d = estate.data,
            b = estate.bucket
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_xscan"))
        .args([
            "scan",
            "--config",
            "xscan.yaml",
            "--endpoint-url",
            &estate.endpoint,
            "--format",
            "json",
        ])
        .current_dir(&estate.dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &estate.dir)
        .env("AWS_ACCESS_KEY_ID", key["AccessKeyId"].as_str().unwrap())
        .env(
            "AWS_SECRET_ACCESS_KEY",
            key["SecretAccessKey"].as_str().unwrap(),
        )
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    let report: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
    let gaps = &report["scan"]["collection_gaps"];
    let errors = with_status(&report, "error");
    let bucket = estate.bucket.clone();
    assert_eq!(
        errors,
        set(&[
            ("XS-S3-003", bucket.as_str()),
            ("XS-S3-004", bucket.as_str()),
            ("XS-S3-007", bucket.as_str()),
            // The notebook's path to the dataset crosses the bucket policy.
            ("XS-PATH-001", "ml-notebook-1"),
        ]),
        "{gaps:#}"
    );
    assert!(
        with_status(&report, "fail").is_empty(),
        "{:#?}",
        with_status(&report, "fail")
    );
    assert!(with_status(&report, "pass").len() >= 20);
    assert_eq!(out.status.code(), Some(3));
    let gap = gaps
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["api_call"] == "GetBucketPolicy")
        .expect("a gap for GetBucketPolicy");
    assert!(
        gap["error"].as_str().unwrap().starts_with("AccessDenied"),
        "{gap}"
    );
}

/// Nightly scans with --history against the emulator: a drift made in the account between two
/// runs is a change of the previous run, shows as a configuration change, and alerts under
/// --fail-on new only once.
#[test]
#[ignore = "needs the moto emulator: run ./scripts/test.sh"]
fn history_scans_see_a_drift_made_between_two_runs() {
    let estate = seed(20, None);
    let run = |fail_on: &str| {
        let out = xscan_aws(
            &estate,
            &[
                "scan",
                "--config",
                "xscan.yaml",
                "--endpoint-url",
                &estate.endpoint,
                "--format",
                "json",
                "--history",
                "history",
                "--fail-on",
                fail_on,
            ],
        );
        let report: Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
        (report, out.status.code().unwrap())
    };
    let (first, code) = run("new");
    assert_eq!(code, 0, "{:#?}", with_status(&first, "fail"));

    // Someone widens the access point policy to allow writes.
    let (_, python) = emulator();
    run_seed(
        &python,
        &estate.endpoint,
        [&estate.consumer, &estate.data, &estate.bucket],
        &["--drift", "ap-write", "--existing"],
    );

    let (second, code) = run("new");
    assert_eq!(code, 1);
    assert_eq!(
        with_status(&second, "fail"),
        set(&[("XS-S3AP-003", "test-ap-1")])
    );
    let changed: Vec<&Value> = second["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["baseline_state"] != "unchanged")
        .collect();
    // Every rule on the access point sees new evidence (its policy); one of them now fails.
    assert!(
        changed
            .iter()
            .all(|r| r["resource"]["id"] == "test-ap-1" && r["baseline_state"] == "changed"),
        "{changed:#?}"
    );
    assert_eq!(changed.iter().filter(|r| r["status"] == "fail").count(), 1);
    let config_changes = second["drift"]["config_changes"].as_array().unwrap();
    assert_eq!(config_changes.len(), 1, "{config_changes:#?}");
    assert_eq!(config_changes[0]["id"], "test-ap-1");
    assert!(
        config_changes[0]["fields"][0]["policy_diff"]
            .as_str()
            .unwrap()
            .contains("s3:PutObject")
    );

    // The next night nothing changed: quiet under --fail-on new, still failing under any.
    let (third, code) = run("new");
    assert_eq!(code, 0);
    assert_eq!(third["drift"]["counts"]["changed"], Value::Null);
    let (_, code) = run("any");
    assert_eq!(code, 1);
}

/// Accounts from a CSV file with a role template and name/tag selectors; three shards
/// collected separately and merged give the same report as one collection.
#[test]
#[ignore = "needs the moto emulator: run ./scripts/test.sh"]
fn sharded_collection_merged_equals_a_single_run() {
    let estate = seed(21, None);
    std::fs::write(
        estate.dir.join("accounts.csv"),
        format!(
            "id,name,tags\n{},ml-consumer,xscan-role=consumer;team=ml\n{},dataset,\n999999999999,sandbox,team=other\n",
            estate.consumer, estate.data
        ),
    )
    .unwrap();
    let config = format!(
        r#"scope: emulator-sharded
regions: [us-east-1]
account_list:
  file: accounts.csv
  assume_role: "arn:aws:iam::{{account}}:role/xscan-audit"
  roles:
    - {{role: data, name: dataset}}
    - {{role: consumer, tag: xscan-role=consumer}}
perimeter:
  data_account: "{data}"
  dataset_buckets: [{bucket}]
  access_points: ["arn:aws:s3:us-east-1:{data}:accesspoint/test-ap-1"]
  execution_roles: ["arn:aws:iam::{consumer}:role/xscan-sagemaker-exec"]
collection: {{concurrency: 8, per_account_concurrency: 4, per_service_concurrency: 2}}
"#,
        data = estate.data,
        bucket = estate.bucket,
        consumer = estate.consumer
    );
    std::fs::write(estate.dir.join("org.yaml"), config).unwrap();
    let endpoint = estate.endpoint.clone();
    let collect = |extra: &[&str]| {
        let mut args = vec![
            "collect",
            "--config",
            "org.yaml",
            "--endpoint-url",
            &endpoint,
        ];
        args.extend_from_slice(extra);
        let out = xscan_aws(&estate, &args);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    };
    collect(&["-o", "single.json"]);
    for i in 0..3 {
        collect(&[
            "--shard",
            &format!("{i}/3"),
            "-o",
            &format!("shard-{i}.json"),
        ]);
    }
    let shard_accounts: Vec<usize> = (0..3)
        .map(|i| {
            let s: Value = serde_json::from_str(
                &std::fs::read_to_string(estate.dir.join(format!("shard-{i}.json"))).unwrap(),
            )
            .unwrap();
            assert_eq!(s["metadata"]["provenance"]["shard"]["count"], 3);
            s["accounts"].as_object().unwrap().len()
        })
        .collect();
    assert_eq!(
        shard_accounts,
        vec![1, 1, 0],
        "two accounts over three shards"
    );

    let out = xscan_aws(
        &estate,
        &[
            "merge",
            "shard-2.json",
            "shard-0.json",
            "shard-1.json",
            "-o",
            "merged.json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let scan = |snapshot: &str| {
        let out = xscan_aws(
            &estate,
            &[
                "scan",
                "--snapshot",
                snapshot,
                "--config",
                "org.yaml",
                "--format",
                "json",
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let (single, merged) = (scan("single.json"), scan("merged.json"));
    assert_eq!(single["results"], merged["results"]);
    assert_eq!(single["summary"], merged["summary"]);
    assert_eq!(single["scan"]["accounts"], merged["scan"]["accounts"]);
    assert!(single["summary"]["by_status"]["pass"].as_u64().unwrap() > 20);
    let roles: Vec<(&str, &str)> = single["scan"]["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap(), a["role"].as_str().unwrap()))
        .collect();
    assert!(roles.contains(&("ml-consumer", "consumer")) && roles.contains(&("dataset", "data")));
    assert_eq!(
        roles.len(),
        2,
        "the sandbox matches no selector: out of scope"
    );

    // An incomplete shard set is refused.
    let out = xscan_aws(&estate, &["merge", "shard-0.json", "shard-1.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("shard(s) 2 of 3 missing"),
        "{}",
        stderr(&out)
    );
}

/// A loopback proxy in front of the emulator that counts the HTTP requests passing through
/// (request lines in the client's bytes); it stops with the test process.
fn counting_proxy(upstream: &str) -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let upstream = upstream.trim_start_matches("http://").to_string();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicU64::new(0));
    let counter = count.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let (mut client_read, mut server_write) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut server_read, mut client_write) = (server, client);
            let counter = counter.clone();
            std::thread::spawn(move || {
                let mut buffer = [0u8; 65536];
                // Carry the last bytes over, so a request line split across reads counts.
                let mut tail: Vec<u8> = Vec::new();
                while let Ok(n) = client_read.read(&mut buffer) {
                    if n == 0 || server_write.write_all(&buffer[..n]).is_err() {
                        break;
                    }
                    let mut seen = std::mem::take(&mut tail);
                    seen.extend_from_slice(&buffer[..n]);
                    let marker = b" HTTP/1.1\r\n";
                    let found = seen.windows(marker.len()).filter(|w| *w == marker).count();
                    counter.fetch_add(found as u64, Ordering::SeqCst);
                    let keep = seen.len().min(marker.len() - 1);
                    tail = seen[seen.len() - keep..].to_vec();
                }
                let _ = server_write.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut server_read, &mut client_write);
                let _ = client_write.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (address, count)
}

/// `metadata.api_calls` counts the requests that went over the wire: the role assumptions,
/// each page actually fetched (not the paginator's final, request-less poll) and each retry.
#[test]
#[ignore = "needs the moto emulator: run ./scripts/test.sh"]
fn api_call_counts_match_the_requests_on_the_wire() {
    let estate = seed(23, None);
    let (proxy, sent) = counting_proxy(&estate.endpoint);
    let out = xscan_aws(
        &estate,
        &[
            "collect",
            "--config",
            "xscan.yaml",
            "--endpoint-url",
            &proxy,
            "-o",
            "snapshot.json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let snapshot: Value =
        serde_json::from_str(&std::fs::read_to_string(estate.dir.join("snapshot.json")).unwrap())
            .unwrap();
    let calls = snapshot["metadata"]["api_calls"].as_object().unwrap();
    let counted: u64 = calls.values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(
        calls["sts:AssumeRole"], 2,
        "one assumption per account: {calls:?}"
    );
    assert_eq!(
        counted,
        sent.load(std::sync::atomic::Ordering::SeqCst),
        "{calls:#?}"
    );
}

/// Organization discovery (#14): a config without an account list finds the accounts of an
/// emulated organization under the ML OU (nested OUs included), leaves out the excluded one
/// and the one outside the OU, takes roles from a tag and an OU path, reads the SCPs and RCPs,
/// and shows each account's OU path; `collect --shard` splits the discovered accounts.
#[test]
#[ignore = "needs the moto emulator: run ./scripts/test.sh"]
fn organization_discovery_scans_the_accounts_under_an_ou() {
    let (endpoint, python) = emulator();
    let run = std::process::id() as u64 % 100_000;
    let management = format!("{:012}", 700_000_000_000 + run);
    let out = Command::new(&python)
        .arg(root().join("tests/emulator/seed_org.py"))
        .args(["--endpoint", &endpoint, "--management", &management])
        .output()
        .expect("run seed_org.py");
    assert!(
        out.status.success(),
        "seeding the organization: {}",
        stderr(&out)
    );
    let ids: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = |key: &str| ids[key].as_str().unwrap().to_string();
    let (consumer, data, excluded) = (id("consumer"), id("data"), id("excluded"));
    let bucket = format!("xscan-it-{run}-org");
    run_seed(&python, &endpoint, [&consumer, &data, &bucket], &[]);
    let dir = temp_dir("emulator-org");
    let config = format!(
        r#"scope: emulator-org
regions: [us-east-1]
organization:
  assume_role: "arn:aws:iam::{management}:role/xscan-org-reader"
  discover:
    ous: ["{ml}"]
    exclude: ["{excluded}"]
    assume_role: "arn:aws:iam::{{account}}:role/xscan-audit"
    roles:
      - {{role: data, tag: "xscan-role=data"}}
      - {{role: consumer, ou: "Root/ML/Consumers"}}
perimeter:
  data_account: "{data}"
  dataset_buckets: [{bucket}]
  access_points: ["arn:aws:s3:us-east-1:{data}:accesspoint/test-ap-1"]
  execution_roles: ["arn:aws:iam::{consumer}:role/xscan-sagemaker-exec"]
collection:
  concurrency: 8
  call_timeout_seconds: 20
  max_attempts: 3
"#,
        ml = id("ml"),
    );
    std::fs::write(dir.join("xscan.yaml"), config).unwrap();
    let estate = Estate {
        consumer: consumer.clone(),
        data: data.clone(),
        bucket,
        dir,
        endpoint,
    };
    let (report, code) = scan(&estate);
    let accounts: BTreeSet<(String, String)> = report["scan"]["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_string(),
                a["ou_path"].as_str().unwrap_or("(none)").to_string(),
            )
        })
        .collect();
    assert_eq!(
        accounts,
        [
            (consumer.clone(), "Root/ML/Consumers".to_string()),
            (data.clone(), "Root/ML/Data".to_string()),
        ]
        .into_iter()
        .collect(),
        "only the ML accounts, without the excluded one"
    );
    let failing: BTreeSet<_> = with_status(&report, "fail")
        .union(&with_status(&report, "error"))
        .cloned()
        .collect();
    assert!(
        failing.is_empty(),
        "{failing:#?}\n{}",
        serde_json::to_string_pretty(&report["scan"]["collection_gaps"]).unwrap()
    );
    assert_eq!(code, 0);
    // The organization's rules were evaluated on the discovered accounts, from moto's SCPs and
    // RCPs: the guardrails on Consumers, the identity perimeter on Data.
    let passing = with_status(&report, "pass");
    for (rule, account) in [
        ("XS-ORG-001", &consumer),
        ("XS-ORG-002", &consumer),
        ("XS-ORG-003", &consumer),
        ("XS-ORG-004", &data),
    ] {
        assert!(
            passing.contains(&(rule.to_string(), account.clone())),
            "{rule} on {account}: {passing:#?}"
        );
    }
    // The organization was read with the organization actions only, all in the permission list.
    let snapshot: Value =
        serde_json::from_str(&std::fs::read_to_string(estate.dir.join("snapshot.json")).unwrap())
            .unwrap();
    assert_eq!(snapshot["organization"]["id"], ids["organization"]);
    for action in snapshot["metadata"]["api_calls"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|a| a.starts_with("organizations:"))
    {
        assert!(
            xscan::collect::permissions::ORGANIZATION_ACTIONS.contains(&action.as_str()),
            "{action}"
        );
    }
    // The table and the HTML report show the OU paths.
    for format in ["table", "html"] {
        let out = xscan_aws(
            &estate,
            &[
                "scan",
                "--snapshot",
                "snapshot.json",
                "--config",
                "xscan.yaml",
            ]
            .into_iter()
            .chain(["--format", format])
            .collect::<Vec<_>>(),
        );
        assert!(
            stdout(&out).contains("Root/ML/Consumers"),
            "{format}: {}",
            stderr(&out)
        );
    }
    // Sharding splits the discovered accounts: each shard collects one of the two.
    let mut collected = BTreeSet::new();
    for shard in ["0/2", "1/2"] {
        let file = format!("shard-{}.json", &shard[..1]);
        let out = xscan_aws(
            &estate,
            &[
                "collect",
                "--config",
                "xscan.yaml",
                "--endpoint-url",
                &estate.endpoint,
                "--shard",
                shard,
                "--output",
                &file,
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{shard}: {}", stderr(&out));
        let part: Value =
            serde_json::from_str(&std::fs::read_to_string(estate.dir.join(&file)).unwrap())
                .unwrap();
        let ids: Vec<String> = part["accounts"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(ids.len(), 1, "{shard}: {ids:?}");
        collected.extend(ids);
    }
    assert_eq!(collected, [consumer, data].into_iter().collect());
}

/// An organization that cannot be read (here: the reader's account is in none, so
/// DescribeOrganization answers AWSOrganizationsNotInUseException) makes the organization's
/// rules `error` on every account in scope and the scan incomplete (exit 3), never a pass.
#[test]
#[ignore = "needs the moto emulator: run ./scripts/test.sh"]
fn an_unreadable_organization_is_an_error_not_a_pass() {
    let estate = seed(31, None);
    let config = std::fs::read_to_string(estate.dir.join("xscan.yaml")).unwrap();
    let reader = format!(
        "{:012}",
        710_000_000_000 + std::process::id() as u64 % 100_000
    );
    std::fs::write(
        estate.dir.join("xscan.yaml"),
        config.replace(
            "perimeter:",
            &format!("organization:\n  assume_role: \"arn:aws:iam::{reader}:role/xscan-org-reader\"\nperimeter:"),
        ),
    )
    .unwrap();
    let (report, code) = scan(&estate);
    assert_eq!(code, 3);
    let errors = with_status(&report, "error");
    for (rule, account) in [
        ("XS-ORG-001", &estate.consumer),
        ("XS-ORG-003", &estate.consumer),
        ("XS-ORG-004", &estate.data),
    ] {
        assert!(
            errors.contains(&(rule.to_string(), account.clone())),
            "{rule} on {account}: {errors:#?}"
        );
    }
    let gaps = report["scan"]["collection_gaps"].as_array().unwrap();
    assert!(
        gaps.iter().any(|g| g["service"] == "organizations"
            && g["api_call"] == "DescribeOrganization"
            && g["error"]
                .as_str()
                .unwrap()
                .contains("AWSOrganizationsNotInUse")),
        "{gaps:#?}"
    );
}

/// Discovery that cannot read the organization cannot know the scope: the scan says so in a
/// gap of its own and exits 3 (incomplete), never 0 with nothing checked.
#[test]
#[ignore = "needs the moto emulator: run ./scripts/test.sh"]
fn discovery_without_an_organization_is_an_incomplete_scan() {
    let (endpoint, _) = emulator();
    let reader = format!(
        "{:012}",
        720_000_000_000 + std::process::id() as u64 % 100_000
    );
    let dir = temp_dir("emulator-no-org");
    std::fs::write(
        dir.join("xscan.yaml"),
        format!(
            r#"regions: [us-east-1]
organization:
  assume_role: "arn:aws:iam::{reader}:role/xscan-org-reader"
  discover:
    assume_role: "arn:aws:iam::{{account}}:role/xscan-audit"
    roles: [{{role: consumer}}]
perimeter:
  data_account: "222222222222"
  dataset_buckets: [b]
  access_points: ["arn:aws:s3:us-east-1:222222222222:accesspoint/ap"]
"#
        ),
    )
    .unwrap();
    let estate = Estate {
        consumer: String::new(),
        data: String::new(),
        bucket: String::new(),
        dir,
        endpoint,
    };
    let (report, code) = scan(&estate);
    assert_eq!(code, 3);
    let gaps = report["scan"]["collection_gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 2, "{gaps:#?}");
    assert!(
        gaps.iter().any(|g| g["api_call"] == "discovery"
            && g["error"]
                .as_str()
                .unwrap()
                .contains("could not be discovered")),
        "{gaps:#?}"
    );
}
