//! `--format junit`: JUnit XML for CI systems that show test reports — one test suite per
//! rule, one test case per (rule, resource); failures as `<failure>`, not-evaluated results as
//! `<error>`, skipped and waived results as `<skipped>`.

use crate::findings::{Report, Status};

/// XML 1.0 text: markup escaped, characters XML cannot carry (most controls) shown as `\u{..}`.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' => out.push(c),
            c if crate::text::is_hazard(c) || c == '\u{fffe}' || c == '\u{ffff}' => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// Renders the report.
pub fn render(report: &Report) -> String {
    let s = &report.summary;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"xscan {}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" timestamp=\"{}\">\n",
        xml(&report.scan.scope),
        s.total,
        s.count(Status::Fail),
        s.count(Status::Error),
        s.count(Status::Skipped) + s.count(Status::Waived),
        report.scan.finished_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    ));
    for rule in &report.rules {
        let results: Vec<_> = report
            .results
            .iter()
            .filter(|f| f.rule_id() == &*rule.id)
            .collect();
        let count = |status| results.iter().filter(|f| f.status == status).count();
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">\n",
            xml(&format!("{} {}", rule.id, rule.title)),
            results.len(),
            count(Status::Fail),
            count(Status::Error),
            count(Status::Skipped) + count(Status::Waived),
        ));
        for f in results {
            out.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{}\">",
                xml(f.rule_id()),
                xml(&f.resource.arn)
            ));
            let message = xml(&f.message);
            match f.status {
                Status::Pass => {}
                Status::Fail => out.push_str(&format!(
                    "\n      <failure message=\"{message}\" type=\"{}\">{}</failure>\n    ",
                    f.severity().as_str(),
                    xml(&rule.remediation)
                )),
                Status::Error => out.push_str(&format!(
                    "\n      <error message=\"{message}\" type=\"not-evaluated\"/>\n    "
                )),
                Status::Skipped | Status::Waived => out.push_str(&format!(
                    "\n      <skipped message=\"{}: {message}\"/>\n    ",
                    f.status.as_str()
                )),
            }
            // The account's place in the organization, for readers of the CI report.
            if let Some(ou_path) = report.ou_path(&f.resource.account) {
                if f.status == Status::Pass {
                    out.push_str("\n    ");
                }
                out.push_str(&format!(
                    "  <system-out>ou_path: {}</system-out>\n    ",
                    xml(ou_path)
                ));
            }
            out.push_str("</testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
