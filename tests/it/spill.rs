//! A large scan's results are spilled to a temporary file and read back one at a time
//! (`findings::results`). Every reader — waivers, drift, the summary, each format — must see
//! the same results in the same order with the same content as when they are held: the same
//! estate scanned both ways renders the same bytes.

use xscan::config::Config;
use xscan::drift::waivers::Waivers;
use xscan::findings::{Report, Severity};
use xscan::model::Snapshot;
use xscan::report;
use xscan::rules::RulePack;

use crate::common::{COMPLIANT, CONFIG, ESTATE, root, stderr, temp_dir};

/// One format's renderer.
type Render = dyn Fn(&Report) -> String;

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap()
}

/// The example estate's report with its waivers, compared with the compliant fixture's,
/// its results spilled beyond `spill_at`.
fn report(spill_at: usize) -> Report {
    let pack = RulePack::embedded().unwrap();
    let config = Config::from_yaml("xscan.yaml", &read(CONFIG)).unwrap();
    let scan = |path: &str| {
        let snapshot = Snapshot::from_json(path, &read(path)).unwrap();
        let report = xscan::scan::run(&xscan::scan::ScanInputs {
            snapshot: &snapshot,
            snapshot_sha256: "0".repeat(64),
            pack: &pack,
            config: Some(&config),
            config_sha256: None,
            min_severity: Severity::Info,
            spill_at,
        })
        .unwrap();
        (snapshot, report)
    };
    let (snapshot, mut current) = scan(ESTATE);
    let known = pack.rules.iter().map(|r| r.spec.id.clone()).collect();
    let waivers = Waivers::load(&root().join("examples/waivers.yaml"), &known).unwrap();
    waivers
        .apply(&mut current, snapshot.metadata.finished_at.date_naive())
        .unwrap();
    let (_, baseline) = scan(COMPLIANT);
    current.drift = Some(xscan::drift::compare(&baseline, "baseline", &mut current).unwrap());
    current
}

/// The same estate, held and spilled: the same results, summary, waivers, drift and exit
/// code, and the same bytes in every format.
#[test]
fn a_spilled_scan_reports_what_a_held_one_does() {
    let held = report(usize::MAX);
    let spilled = report(0);
    assert!(!held.results.is_spilled());
    assert!(
        spilled.results.is_spilled(),
        "spill_at 0 spills every result"
    );
    assert!(held.results.len() > 40, "{}", held.results.len());
    // Waived, failing, passing and drifted results are all there to be compared.
    assert!(held.summary.count(xscan::findings::Status::Waived) > 0);
    assert!(held.summary.count(xscan::findings::Status::Fail) > 0);
    assert!(held.summary.count(xscan::findings::Status::Pass) > 0);
    assert!(
        held.drift.as_ref().unwrap().counts.len() > 1,
        "{:?}",
        held.drift
    );
    assert_eq!(
        spilled.results.to_vec().unwrap(),
        held.results.to_vec().unwrap()
    );
    assert_eq!(spilled, held);
    assert_eq!(spilled.summary, held.summary);
    assert_eq!(spilled.waivers, held.waivers);
    assert_eq!(spilled.drift, held.drift);
    for fail_on in [
        xscan::drift::FailOn::Any,
        xscan::drift::FailOn::New,
        xscan::drift::FailOn::None,
    ] {
        assert_eq!(
            xscan::drift::exit_code(&spilled, fail_on),
            xscan::drift::exit_code(&held, fail_on)
        );
    }
    let html = |report: &Report| {
        let options = report::html::HtmlOptions {
            generated_at: report.scan.finished_at,
            host: "test".into(),
            command_line: "xscan".into(),
            template_dir: None,
            signing_key_id: None,
            envelope_name: None,
        };
        report::html::render(report, &options).unwrap()
    };
    let formats: [(&str, &Render); 9] = [
        ("table", &|r| report::table::render(r, false)),
        ("json", &report::json::render),
        ("canonical json", &report::json::canonical),
        ("sarif", &report::sarif::render),
        ("ocsf", &report::ocsf::render),
        ("asff", &report::asff::render),
        ("junit", &report::junit::render),
        ("svg", &report::svg::render),
        ("html", &html),
    ];
    for (name, render) in formats {
        let (from_held, from_spilled) = (render(&held), render(&spilled));
        assert!(from_held.len() > 100, "{name}: {from_held}");
        assert!(from_held == from_spilled, "{name} differs when spilled");
    }
    assert!(spilled.results.check().is_ok());
}

/// `xscan scan` with `env` and nothing else of the environment but `PATH`.
fn scan_with(env: &[(&str, &str)], output: &std::path::Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_xscan"))
        .args(["scan", "--snapshot", ESTATE, "--config", CONFIG])
        .args([
            "--waivers",
            "examples/waivers.yaml",
            "--format",
            "json",
            "--output",
        ])
        .arg(output)
        .current_dir(root())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// Through the command line: a scan that spills every result (`XSCAN_SPILL_AT=0`) writes the
/// report a held one writes; one whose spill file cannot be made (`TMPDIR` missing) delivers
/// nothing and exits 2 with a help line; a spill threshold that is not a number is refused.
#[test]
fn the_command_line_spills_alike_and_refuses_what_it_cannot_spill() {
    let dir = temp_dir("spill-cli");
    let (held, spilled, refused) = (
        dir.join("held.json"),
        dir.join("spilled.json"),
        dir.join("refused.json"),
    );
    let out = scan_with(&[], &held);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let out = scan_with(&[("XSCAN_SPILL_AT", "0")], &spilled);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let read = |path: &std::path::Path| std::fs::read_to_string(path).unwrap();
    assert!(
        read(&held) == read(&spilled),
        "the spilled scan's report differs"
    );

    let missing = dir.join("no-such-dir");
    let out = scan_with(
        &[
            ("XSCAN_SPILL_AT", "0"),
            ("TMPDIR", missing.to_str().unwrap()),
        ],
        &refused,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("spill file"), "{}", stderr(&out));
    assert!(stderr(&out).contains("\nhelp: "), "{}", stderr(&out));
    assert!(!refused.exists(), "nothing is delivered");
    // Held, the same scan needs no temporary file.
    let out = scan_with(&[("TMPDIR", missing.to_str().unwrap())], &refused);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));

    let out = scan_with(&[("XSCAN_SPILL_AT", "many")], &refused);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("XSCAN_SPILL_AT is `many`"),
        "{}",
        stderr(&out)
    );
}
