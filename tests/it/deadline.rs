//! Faults over real HTTP: a small loopback server answers STS (the starting identity, each
//! account's AssumeRole and GetCallerIdentity) and holds every other call open without
//! answering — accounts whose APIs hang — and can fail the first calls of the starting
//! identity. The scan must end at the accounts' deadline with each account a gap (exit 3), not
//! wait for the calls; and a transient fault of the first call is retried, not the end of the
//! run.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{stderr, stdout, temp_dir};
use crate::loopback::{read_message, respond};

/// A fault the server puts on a GetCallerIdentity of the starting identity.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// `503 Service Unavailable` with an AWS error body.
    Unavailable,
    /// The connection closed before any response.
    Reset,
}

/// Serves forever on a thread; the first starting-identity calls meet `faults` in order.
/// Returns the endpoint URL and the number of GetCallerIdentity requests seen.
fn hanging_aws(faults: Vec<Fault>) -> (String, Arc<Mutex<usize>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let faults = Arc::new(Mutex::new(faults));
    let identities = Arc::new(Mutex::new(0));
    let seen = identities.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (faults, seen) = (faults.clone(), seen.clone());
            std::thread::spawn(move || serve(stream, &faults, &seen));
        }
    });
    (url, identities)
}

fn serve(mut stream: std::net::TcpStream, faults: &Mutex<Vec<Fault>>, identities: &Mutex<usize>) {
    while let Some((head, body)) = read_message(&mut stream) {
        let body = String::from_utf8_lossy(&body).to_string();
        let credential_account = head
            .split("Credential=")
            .nth(1)
            .and_then(|c| c.strip_prefix("AKIA"))
            .map(|c| c.chars().take(12).collect::<String>())
            .unwrap_or_else(|| "123456789012".into());
        if body.contains("Action=GetCallerIdentity") {
            *identities.lock().unwrap() += 1;
            let fault = {
                let mut faults = faults.lock().unwrap();
                (!faults.is_empty()).then(|| faults.remove(0))
            };
            match fault {
                Some(Fault::Reset) => return,
                Some(Fault::Unavailable) => {
                    let xml = r#"<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code><Message>try again</Message></Error><RequestId>0</RequestId></ErrorResponse>"#;
                    if !respond(
                        &mut stream,
                        "503 Service Unavailable",
                        "text/xml",
                        xml.as_bytes(),
                    ) {
                        return;
                    }
                    continue;
                }
                None => {}
            }
        }
        let xml = if body.contains("Action=GetCallerIdentity") {
            format!(
                r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>arn:aws:sts::{credential_account}:assumed-role/xscan-audit/xscan</Arn><UserId>AROA:xscan</UserId><Account>{credential_account}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></GetCallerIdentityResponse>"#
            )
        } else if body.contains("Action=AssumeRole") {
            let account = body
                .split("arn%3Aaws%3Aiam%3A%3A")
                .nth(1)
                .map(|r| r.chars().take(12).collect::<String>())
                .unwrap_or_default();
            format!(
                r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials><AccessKeyId>AKIA{account}</AccessKeyId><SecretAccessKey>secret</SecretAccessKey><SessionToken>token</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>AROA:xscan</AssumedRoleId><Arn>arn:aws:sts::{account}:assumed-role/xscan-audit/xscan</Arn></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>2</RequestId></ResponseMetadata></AssumeRoleResponse>"#
            )
        } else {
            // Any other API of the accounts: never answered.
            std::thread::sleep(Duration::from_secs(600));
            return;
        };
        if !respond(&mut stream, "200 OK", "text/xml", xml.as_bytes()) {
            return;
        }
    }
}

/// Runs `xscan scan` against `endpoint` with the directory's xscan.yaml; (exit code, report,
/// elapsed).
fn scan(dir: &std::path::Path, endpoint: &str) -> (Option<i32>, Value, Duration) {
    let (code, out, elapsed) = run(dir, endpoint);
    let report =
        serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
    (code, report, elapsed)
}

fn run(dir: &std::path::Path, endpoint: &str) -> (Option<i32>, std::process::Output, Duration) {
    run_with(dir, endpoint, &[])
}

fn run_with(
    dir: &std::path::Path,
    endpoint: &str,
    extra: &[&str],
) -> (Option<i32>, std::process::Output, Duration) {
    let started = Instant::now();
    let args: Vec<&str> = extra
        .iter()
        .copied()
        .chain(["scan", "--config", "xscan.yaml", "--endpoint-url", endpoint])
        .chain(["--format", "json"])
        .collect();
    let out = crate::common::xscan_with_aws(dir, &args, &[]);
    let elapsed = started.elapsed();
    (out.status.code(), out, elapsed)
}

/// A 503 and a reset connection on the starting identity's first calls are retried like any
/// transient fault (the SDK's adaptive mode): the run goes on and writes its report.
#[test]
fn a_transient_fault_on_the_first_call_is_retried() {
    let (endpoint, identities) = hanging_aws(vec![Fault::Unavailable, Fault::Reset]);
    let dir = temp_dir("first-call-fault");
    std::fs::write(
        dir.join("xscan.yaml"),
        r#"regions: [us-east-1]
accounts:
  - {id: "111111111111", role: consumer, assume_role: "arn:aws:iam::111111111111:role/xscan-audit"}
perimeter:
  data_account: "222222222222"
  dataset_buckets: [test-bucket-1]
  access_points: ["arn:aws:s3:us-east-1:222222222222:accesspoint/test-ap-1"]
collection:
  max_attempts: 3
  account_deadline_seconds: 1
"#,
    )
    .unwrap();
    let (code, report, _) = scan(&dir, &endpoint);
    // Incomplete (the account's APIs hang), not "the starting identity is not usable" (2).
    assert_eq!(code, Some(3), "{report:#}");
    // With -v the retries are in the log.
    let (endpoint, _) = hanging_aws(vec![Fault::Unavailable]);
    let (_, out, _) = run_with(&dir, &endpoint, &["-v"]);
    assert!(
        stderr(&out).contains("retried with back-off"),
        "{}",
        stderr(&out)
    );
    assert!(
        *identities.lock().unwrap() >= 3,
        "the faulted calls were retried"
    );
    // More faults than attempts: the starting identity is not usable, exit 2 with the reason.
    let (endpoint, _) = hanging_aws(vec![Fault::Unavailable; 3]);
    let (code, out, _) = run(&dir, &endpoint);
    assert_eq!(code, Some(2));
    assert!(
        stderr(&out).contains("starting AWS identity"),
        "{}",
        stderr(&out)
    );
    // The run went on to the account (which then hangs until its deadline).
    assert!(
        report["scan"]["collection_gaps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["account"] == "111111111111" && g["api_call"] == "AccountDeadline"),
        "{report:#}"
    );
}

#[test]
fn hanging_accounts_end_at_their_deadline_as_gaps() {
    let (endpoint, _) = hanging_aws(Vec::new());
    let dir = temp_dir("deadline");
    std::fs::write(
        dir.join("xscan.yaml"),
        r#"regions: [us-east-1]
accounts:
  - {id: "111111111111", role: consumer, assume_role: "arn:aws:iam::111111111111:role/xscan-audit"}
  - {id: "222222222222", role: data, assume_role: "arn:aws:iam::222222222222:role/xscan-audit"}
perimeter:
  data_account: "222222222222"
  dataset_buckets: [test-bucket-1]
  access_points: ["arn:aws:s3:us-east-1:222222222222:accesspoint/test-ap-1"]
collection:
  call_timeout_seconds: 600
  max_attempts: 1
  account_deadline_seconds: 2
"#,
    )
    .unwrap();
    let (code, report, elapsed) = scan(&dir, &endpoint);
    assert_eq!(code, Some(3), "{report:#}");
    assert!(
        elapsed < Duration::from_secs(30),
        "the run waited {elapsed:?} for calls that never return"
    );
    let gaps = report["scan"]["collection_gaps"].as_array().unwrap();
    for account in ["111111111111", "222222222222"] {
        assert!(
            gaps.iter()
                .any(|g| g["account"] == account && g["api_call"] == "AccountDeadline"),
            "{account}: {gaps:#?}"
        );
    }
    // Nothing of those accounts passes: what the rules needed was not collected.
    let results = report["results"].as_array().unwrap();
    assert!(!results.is_empty());
    assert!(
        results.iter().all(|r| r["status"] != "pass"),
        "{results:#?}"
    );
}
