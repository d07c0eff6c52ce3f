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

use crate::common::{COMPLIANT, CONFIG, ESTATE, root};

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
