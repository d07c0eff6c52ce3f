//! Fuzzing every parser xscan owns — snapshots, configurations, rules, waivers, policy
//! documents, merge shards — with arbitrary bytes and with structure-aware mutations of real
//! inputs: nothing may panic, and whatever parses must scan and render. And a property over
//! arbitrary Unicode in every AWS-controlled field: no terminal output carries a control
//! character xscan did not put there itself.
//!
//! `cargo test` runs a bounded number of cases; the long run is
//! `PROPTEST_CASES=20000 cargo test --release --test it fuzz::` (README, "Development").

use std::collections::BTreeSet;
use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::Value;

use xscan::config::Config;
use xscan::drift::waivers::Waivers;
use xscan::findings::Severity;
use xscan::model::Snapshot;
use xscan::policy::{Policy, PolicySet, Request, RequestPrincipal};
use xscan::rules::RulePack;

use crate::common::{COMPLIANT, CONFIG, root};

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap()
}

fn pack() -> &'static RulePack {
    static PACK: OnceLock<RulePack> = OnceLock::new();
    PACK.get_or_init(|| RulePack::embedded().unwrap())
}

fn config() -> &'static Config {
    static CONFIG_: OnceLock<Config> = OnceLock::new();
    CONFIG_.get_or_init(|| Config::from_yaml("xscan.yaml", &read(CONFIG)).unwrap())
}

/// The embedded pack over `snapshot` with the example configuration.
fn scan(snapshot: &Snapshot) -> xscan::findings::Report {
    xscan::scan::run(&xscan::scan::ScanInputs {
        snapshot,
        snapshot_sha256: String::new(),
        pack: pack(),
        config: Some(config()),
        config_sha256: None,
        min_severity: Severity::Info,
        spill_at: xscan::findings::results::SPILL_AT,
    })
    .unwrap()
}

const RULE: &str = "rules/sagemaker/XS-SM-001-notebook-direct-internet-disabled.yaml";
const WAIVERS: &str = "\
waivers:
  - rule: XS-SM-001
    resource: arn:aws:sagemaker:us-east-1:111111111111:notebook-instance/ml-notebook-2
    justification: pip mirror outage
    approver: ciso@bank.example
    ticket: CHG-77
    expires: 2027-01-31
";
const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Read","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:role/x"},"Action":["s3:GetObject"],"Resource":"arn:aws:s3:::b/*","Condition":{"StringEquals":{"aws:SourceVpce":["vpce-1"]},"Bool":{"aws:SecureTransport":false}}}]}"#;

/// Tokens that break parsers when dropped in the middle of a document.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ":",
    ",",
    "null",
    "-",
    "1e999",
    "18446744073709551616",
    "\\u0000",
    "\u{feff}",
    "\u{1b}[2J",
    "\n",
    "  - ",
    ": [",
    "&a",
    "*a",
    "!!binary",
    "~",
    "'",
    "#",
    "%",
    "\"*\"",
    "[[[[[[[[",
    "{\"a\":1,\"a\":2}",
];

/// One edit of a text: cut a range, repeat a range, or drop a token in.
#[derive(Debug, Clone)]
enum Edit {
    Cut(usize, usize),
    Repeat(usize, usize),
    Insert(usize, usize),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec(
        prop_oneof![
            (any::<usize>(), 0usize..64).prop_map(|(at, n)| Edit::Cut(at, n)),
            (any::<usize>(), 0usize..64).prop_map(|(at, n)| Edit::Repeat(at, n)),
            (any::<usize>(), any::<usize>()).prop_map(|(at, t)| Edit::Insert(at, t)),
        ],
        1..6,
    )
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for edit in edits {
        let len = bytes.len().max(1);
        match *edit {
            Edit::Cut(at, n) => {
                let start = at % len;
                let end = (start + n).min(bytes.len());
                bytes.drain(start.min(bytes.len())..end);
            }
            Edit::Repeat(at, n) => {
                let start = (at % len).min(bytes.len());
                let end = (start + n).min(bytes.len());
                let copy = bytes[start..end].to_vec();
                bytes.splice(end..end, copy);
            }
            Edit::Insert(at, token) => {
                let at = (at % len).min(bytes.len());
                let token = TOKENS[token % TOKENS.len()].as_bytes();
                bytes.splice(at..at, token.iter().copied());
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Every parser on `text`; what parses goes further (a snapshot is scanned and rendered).
fn exercise(text: &str) {
    if let Ok(snapshot) = Snapshot::from_json("fuzz.json", text) {
        let report = scan(&snapshot);
        let _ = xscan::report::table::render(&report, true);
        let _ = xscan::report::json::render(&report);
        let _ = xscan::report::sarif::render(&report);
        let _ = xscan::drift::diff::diff_snapshots(&snapshot, &snapshot);
        let _ = xscan::model::merge::merge(vec![("a".into(), snapshot)]);
    }
    let _ = Config::from_yaml("fuzz.yaml", text);
    let _ = RulePack::from_files("fuzz", vec![("rules/x/FUZZ.yaml".into(), text.to_string())]);
    let known: BTreeSet<String> = ["XS-SM-001".to_string()].into();
    let _ = Waivers::from_yaml("fuzz.yaml", text, &known);
    if let Ok(policy) = Policy::parse_text("fuzz", text) {
        let mut request = Request::new(
            RequestPrincipal::parse("arn:aws:iam::111111111111:role/x").unwrap(),
            "s3:GetObject",
            "arn:aws:s3:::b/k",
        );
        request.resource_account = Some("222222222222".into());
        let set = PolicySet {
            identity: vec![&policy],
            resource: Some((&policy, xscan::policy::PolicyKind::Resource)),
            endpoint: vec![&policy],
        };
        let _ = xscan::policy::evaluate(&request, &set);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        exercise(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn mutated_snapshots_never_panic(edits in edits()) {
        static TEXT: OnceLock<String> = OnceLock::new();
        exercise(&apply(TEXT.get_or_init(|| read(COMPLIANT)), &edits));
    }

    #[test]
    fn mutated_configs_rules_waivers_and_policies_never_panic(edits in edits(), which in 0usize..4) {
        static TEXTS: OnceLock<Vec<String>> = OnceLock::new();
        let texts = TEXTS.get_or_init(|| vec![read(CONFIG), read(RULE), WAIVERS.to_string(), POLICY.to_string()]);
        exercise(&apply(&texts[which], &edits));
    }
}

/// Arbitrary Unicode, and strings made mostly of what terminals act on (escape sequences,
/// C1 controls, bidi overrides, invisible characters), so that every case is a real attempt.
fn hostile_text() -> impl Strategy<Value = String> {
    let alphabet = vec![
        '\u{1b}', '\u{7}', '\n', '\r', '\t', '\u{8}', '\u{7f}', '\u{9b}', '\u{85}', '\u{202e}',
        '\u{2066}', '\u{200b}', '\u{200f}', '\u{feff}', '\u{2028}', 'a', '[', '2', 'J', ']', ';',
        '8', '\\',
    ];
    prop_oneof![
        any::<String>(),
        prop::collection::vec(prop::sample::select(alphabet), 1..24)
            .prop_map(|chars| chars.into_iter().collect()),
    ]
}

/// Where each AWS-controlled string goes in the compliant fixture (JSON pointers).
const AWS_FIELDS: &[&str] = &[
    "/accounts/111111111111/regions/us-east-1/sagemaker_notebooks/ml-notebook-1/arn",
    "/accounts/111111111111/regions/us-east-1/sagemaker_notebooks/ml-notebook-1/direct_internet_access",
    "/accounts/111111111111/regions/us-east-1/sagemaker_notebooks/ml-notebook-1/subnet_id",
    "/accounts/111111111111/regions/us-east-1/sagemaker_notebooks/ml-notebook-1/role_arn",
    "/accounts/111111111111/name",
];

/// `text` without the colour sequences xscan writes itself (`ESC [ digits ; m`).
fn without_own_colours(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("\u{1b}[") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let end = after.find(|c: char| !(c.is_ascii_digit() || c == ';'));
        match end {
            Some(end) if after[end..].starts_with('m') => rest = &after[end + 1..],
            _ => {
                out.push_str("\u{1b}[");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn assert_clean(what: &str, output: &str, hostile: &str) {
    let cleaned = without_own_colours(output);
    for c in cleaned.chars() {
        assert!(
            c == '\n' || !xscan::text::is_hazard(c),
            "{what}: raw U+{:04X} from {hostile:?} in:\n{output}",
            c as u32
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn terminal_outputs_show_hostile_strings_as_data(hostile in hostile_text(), field in 0usize..5) {
        static BASE: OnceLock<Value> = OnceLock::new();
        let base = BASE.get_or_init(|| serde_json::from_str(&read(COMPLIANT)).unwrap());
        let mut value = base.clone();
        *value.pointer_mut(AWS_FIELDS[field]).unwrap() = Value::String(format!("x{hostile}"));
        value["metadata"]["collection_gaps"] = serde_json::json!([{
            "account": "111111111111", "service": "iam", "api_call": format!("GetRole{hostile}"),
            "resource_id": hostile.clone(), "error": format!("AccessDenied: {hostile}")
        }]);
        let snapshot: Snapshot = serde_json::from_value(value).unwrap();
        let before: Snapshot = serde_json::from_value(base.clone()).unwrap();
        let report = scan(&snapshot);
        assert_clean("table", &xscan::report::table::render(&report, false), &hostile);
        assert_clean("coloured table", &xscan::report::table::render(&report, true), &hostile);
        let changes = xscan::drift::diff::diff_snapshots(&before, &snapshot);
        assert_clean("diff", &xscan::drift::diff::render_text(&changes), &hostile);
        assert_clean("error message", &xscan::text::visible_lines(&format!("error: {hostile}\nhelp: x")), &hostile);
    }
}
