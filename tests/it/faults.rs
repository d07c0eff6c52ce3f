//! The invariant under faults (#16): a loopback proxy in front of the emulator answers a seeded
//! share of the requests itself — `503 SlowDown`, `500 InternalError`, a connection closed
//! before any response, `403 AccessDenied`, or moto's own response with its body cut short —
//! and every result of the faulted scan must be the fault-free scan's or `error`; a resource
//! the faulted scan does not show must be covered by an `error` of the same rule in its
//! account; the exit code is 3 whenever a result is `error`; nothing panics.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::loopback::{header, read_message, respond};

/// What the proxy did, by kind.
type Tally = Arc<Mutex<BTreeMap<&'static str, u64>>>;

/// A small seeded generator (xorshift64*): the same seed, the same fault sequence.
struct Dice(AtomicU64);

impl Dice {
    fn roll(&self) -> u64 {
        let mut x = self.0.load(Ordering::SeqCst);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0.store(x, Ordering::SeqCst);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// A proxy to `upstream` that faults one request in `one_in` (the starting identity's first
/// call excepted: without it there is no run to judge).
fn faulting_proxy(upstream: &str, seed: u64, one_in: u64) -> (String, Tally) {
    let upstream = upstream.trim_start_matches("http://").to_string();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let tally: Tally = Arc::new(Mutex::new(BTreeMap::new()));
    let dice = Arc::new(Dice(AtomicU64::new(seed.max(1))));
    let first = Arc::new(AtomicU64::new(0));
    let counts = tally.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let (upstream, counts, dice, first) = (
                upstream.clone(),
                counts.clone(),
                dice.clone(),
                first.clone(),
            );
            std::thread::spawn(move || {
                let mut client = client;
                while let Some((head, body)) = read_message(&mut client) {
                    let count = |kind: &'static str| {
                        *counts.lock().unwrap().entry(kind).or_default() += 1;
                    };
                    count("requests");
                    let is_first = first.fetch_add(1, Ordering::SeqCst) == 0;
                    let roll = dice.roll();
                    let fault = if is_first || roll % one_in != 0 {
                        None
                    } else {
                        Some((roll / one_in) % 5)
                    };
                    let xml = "text/xml";
                    match fault {
                        Some(0) => {
                            count("503 SlowDown");
                            let body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
                            if !respond(&mut client, "503 Slow Down", xml, body) {
                                return;
                            }
                            continue;
                        }
                        Some(1) => {
                            count("500 InternalError");
                            let body = b"<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>";
                            if !respond(&mut client, "500 Internal Server Error", xml, body) {
                                return;
                            }
                            continue;
                        }
                        Some(2) => {
                            count("connection reset");
                            return;
                        }
                        Some(3) => {
                            count("403 AccessDenied");
                            let body = b"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not authorized</Message></Error><RequestId>0</RequestId></ErrorResponse>";
                            if !respond(&mut client, "403 Forbidden", xml, body) {
                                return;
                            }
                            continue;
                        }
                        _ => {}
                    }
                    // Through to the emulator, one connection per request.
                    let Ok(mut server) = TcpStream::connect(&upstream) else {
                        return;
                    };
                    if server.write_all(head.as_bytes()).is_err()
                        || server.write_all(&body).is_err()
                    {
                        return;
                    }
                    let Some((response_head, mut response_body)) = read_message(&mut server) else {
                        return;
                    };
                    if fault == Some(4) && response_body.len() > 8 {
                        // The body cut short, the length saying so: what a decoder sees whole.
                        count("truncated body");
                        let keep = (roll as usize / 7) % response_body.len();
                        response_body.truncate(keep);
                    }
                    let status = response_head
                        .lines()
                        .next()
                        .and_then(|l| l.split_once(' ').map(|(_, s)| s.to_string()))
                        .unwrap_or_else(|| "200 OK".into());
                    let content_type = header(&response_head, "content-type").unwrap_or("text/xml");
                    if !respond(&mut client, &status, content_type, &response_body) {
                        return;
                    }
                }
            });
        }
    });
    (address, tally)
}

/// (rule, resource ARN) -> (status, account) of every result.
pub(crate) fn results(report: &Value) -> BTreeMap<(String, String), (String, String)> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                (
                    r["rule_id"].as_str().unwrap().to_string(),
                    r["resource"]["arn"].as_str().unwrap().to_string(),
                ),
                (
                    r["status"].as_str().unwrap().to_string(),
                    r["resource"]["account"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

/// Compares a faulted scan with the fault-free one: (equal, error, violations).
pub(crate) fn compare(clean: &Value, faulted: &Value) -> (usize, usize, Vec<String>) {
    let (clean, faulted) = (results(clean), results(faulted));
    let (mut equal, mut error, mut violations) = (0, 0, Vec::new());
    for (key, (status, _)) in &faulted {
        match clean.get(key) {
            _ if status == "error" => error += 1,
            Some((expected, _)) if expected == status => equal += 1,
            Some((expected, _)) => violations.push(format!("{key:?}: {expected} -> {status}")),
            None => violations.push(format!("{key:?}: {status}, absent without faults")),
        }
    }
    for (key, (status, account)) in &clean {
        let covered = faulted.contains_key(key)
            || faulted
                .iter()
                .any(|((rule, _), (s, a))| rule == &key.0 && a == account && s == "error");
        if !covered {
            violations.push(format!("{key:?} ({status}) vanished without an error"));
        }
    }
    (equal, error, violations)
}

/// CI's small seeded mix: three runs on the compliant estate and three on one with a drift (so
/// that failures, too, must survive the faults), one request in four faulted.
#[test]
#[ignore = "needs the moto emulator: run ./scripts/test.sh"]
fn under_faults_every_result_is_the_fault_free_one_or_error() {
    let seeds: Vec<u64> = std::env::var("XSCAN_FAULT_SEEDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map_or_else(|| vec![7, 19, 101], |n| (1..=n).collect());
    let mut totals: BTreeMap<&'static str, u64> = BTreeMap::new();
    let (mut runs, mut equal, mut error, mut recorded_throttled) = (0, 0, 0, 0);
    for (case, drift, clean_exit) in [(41, None, 0), (42, Some("endpoint-open"), 1)] {
        let estate = crate::emulator::seed(case, drift);
        let (clean, clean_code) = crate::emulator::scan_at(&estate, &estate.endpoint);
        assert_eq!(clean_code, clean_exit, "{drift:?}: the fault-free scan");
        for seed in &seeds {
            let (proxy, tally) = faulting_proxy(&estate.endpoint, *seed, 4);
            let started = std::time::Instant::now();
            let (faulted, code) = crate::emulator::scan_at(&estate, &proxy);
            assert!(
                started.elapsed() < std::time::Duration::from_secs(240),
                "seed {seed}: the run took {:?}",
                started.elapsed()
            );
            let (e, r, violations) = compare(&clean, &faulted);
            assert!(
                violations.is_empty(),
                "{drift:?} seed {seed}: {violations:#?}"
            );
            let snapshot: Value = serde_json::from_str(
                &std::fs::read_to_string(estate.dir.join("snapshot.json")).unwrap(),
            )
            .unwrap();
            // 3 whenever a result is `error`, and (README, exit codes) whenever the collection
            // has gaps, even ones no result reads.
            let gaps = snapshot["metadata"]["collection_gaps"]
                .as_array()
                .is_some_and(|g| !g.is_empty());
            assert_eq!(
                code,
                if r > 0 || gaps { 3 } else { clean_exit },
                "{drift:?} seed {seed}: exit code"
            );
            // Throttling the proxy answered is in the snapshot, by account.
            if let Some(retries) = snapshot["metadata"]["retries"].as_object() {
                for counts in retries.values() {
                    recorded_throttled += counts["throttled"].as_u64().unwrap();
                }
            }
            runs += 1;
            equal += e;
            error += r;
            for (kind, n) in tally.lock().unwrap().iter() {
                *totals.entry(kind).or_default() += n;
            }
        }
    }
    // The counts the issue asks for, in the test's output.
    eprintln!(
        "fault runs: {runs}, requests and faults: {totals:?}, results equal: {equal}, results error: {error}, violations: 0, throttled attempts recorded: {recorded_throttled}"
    );
    assert!(totals.len() > 2, "faults were injected: {totals:?}");
    // Every throttled attempt recorded was one the proxy made (AssumeRole, made by the
    // credentials provider's own client, is not counted), and some were.
    let slowed = totals.get("503 SlowDown").copied().unwrap_or(0);
    assert!(
        recorded_throttled > 0 && recorded_throttled <= slowed,
        "{recorded_throttled} throttled attempts recorded, {slowed} answered"
    );
}
