//! Waivers: documented, time-limited exceptions. A waiver names a rule, a resource (ARN or
//! `*`/`?` pattern), a justification, an approver, a ticket and an expiry date, which is
//! required. Applied to a report, an unexpired waiver turns a matching failure into `waived`;
//! an expired one no longer applies and is reported as such; one that matches no failure is
//! reported as stale. Errors (not evaluated) are never waived: they hide nothing to accept.
//!
//! Expiry is judged on the date the snapshot was collected, so re-evaluating an archived
//! snapshot gives the verdicts it had on that day.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::findings::report::{AppliedWaiver, WaiverOutcome, WaiverReport, WaiverState};
use crate::findings::{Fingerprint, Report, ResultsError, Status, Summary, sha256_hex};
use crate::policy::wildcard::glob_match;

/// Errors loading a waiver file.
#[derive(Debug, thiserror::Error)]
pub enum WaiverError {
    #[error(
        "cannot read waivers {path}: {source}\nhelp: pass --waivers FILE or set `waivers:` in the config to an existing file"
    )]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path}:{line}:{column}: {message}\nhelp: each waiver needs rule, resource, justification, approver, ticket and expires (YYYY-MM-DD); see README.md#waivers"
    )]
    Invalid {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
}

/// A waiver file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct WaiverFileSpec {
    waivers: Vec<Waiver>,
}

/// One accepted exception.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Waiver {
    /// Rule id, e.g. XS-NET-003.
    pub rule: String,
    /// The resource ARN, or a pattern over ARNs with `*` and `?`.
    pub resource: String,
    pub justification: String,
    pub approver: String,
    /// Change or risk ticket reference.
    pub ticket: String,
    /// Last day (UTC) the waiver applies.
    pub expires: NaiveDate,
}

/// Loaded waivers with their origin and hash (reports cite both).
#[derive(Debug, Clone, PartialEq)]
pub struct Waivers {
    pub path: String,
    pub sha256: String,
    pub waivers: Vec<Waiver>,
    /// Line of each waiver in the file (for messages).
    lines: Vec<usize>,
}

impl Waivers {
    /// Parses a waiver file and checks every rule id against `known_rules`.
    pub fn from_yaml(
        path: &str,
        text: &str,
        known_rules: &BTreeSet<String>,
    ) -> Result<Self, WaiverError> {
        let text = crate::input::strip_bom(text);
        let invalid = |line: usize, column: usize, message: String| WaiverError::Invalid {
            path: path.to_string(),
            line,
            column,
            message,
        };
        let spec: WaiverFileSpec = serde_norway::from_str(text).map_err(|e| {
            let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
            invalid(line, column, e.to_string())
        })?;
        let lines = waiver_lines(text, spec.waivers.len());
        for (waiver, &line) in spec.waivers.iter().zip(&lines) {
            if !known_rules.contains(&waiver.rule) {
                let (line, column) = locate_from(text, line, &waiver.rule);
                return Err(invalid(
                    line,
                    column,
                    format!(
                        "waiver for unknown rule `{}` (`xscan rules list` shows the ids)",
                        waiver.rule
                    ),
                ));
            }
            for (field, value) in [
                ("resource", &waiver.resource),
                ("justification", &waiver.justification),
                ("approver", &waiver.approver),
                ("ticket", &waiver.ticket),
            ] {
                if value.trim().is_empty() {
                    let (line, column) = locate_from(text, line, field);
                    return Err(invalid(
                        line,
                        column,
                        format!("`{field}` must not be empty"),
                    ));
                }
            }
            if let Err(why) = check_scope(waiver.resource.trim()) {
                let (line, column) = locate_from(text, line, "resource");
                return Err(invalid(line, column, why));
            }
        }
        Ok(Self {
            path: path.to_string(),
            sha256: sha256_hex(text.as_bytes()),
            waivers: spec.waivers,
            lines,
        })
    }

    /// Reads and parses a waiver file.
    pub fn load(
        path: &std::path::Path,
        known_rules: &BTreeSet<String>,
    ) -> Result<Self, WaiverError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| WaiverError::Read {
            path: origin.clone(),
            source,
        })?;
        Self::from_yaml(&origin, &text, known_rules)
    }

    /// Applies the waivers to `report` as of `as_of`, updating statuses, the summary and
    /// `report.waivers`. The results are read once: each is matched against the waivers in
    /// their order (an unexpired waiver takes the failure; an expired one only notes it).
    pub fn apply(&self, report: &mut Report, as_of: NaiveDate) -> Result<(), ResultsError> {
        let mut matched: Vec<Vec<Fingerprint>> = vec![Vec::new(); self.waivers.len()];
        report.results.update(|finding| {
            for (index, waiver) in self.waivers.iter().enumerate() {
                let applies = finding.rule_id() == &*waiver.rule
                    && matches!(finding.status, Status::Fail | Status::Waived)
                    && finding.waiver.is_none()
                    && glob_match(&waiver.resource, &finding.resource.arn);
                if !applies {
                    continue;
                }
                matched[index].push(finding.fingerprint());
                if as_of <= waiver.expires {
                    finding.status = Status::Waived;
                    finding.waiver = Some(Box::new(AppliedWaiver {
                        index,
                        ticket: waiver.ticket.clone(),
                        approver: waiver.approver.clone(),
                        justification: waiver.justification.clone(),
                        expires: waiver.expires,
                    }));
                }
            }
        })?;
        let mut outcomes = Vec::with_capacity(self.waivers.len());
        for ((index, waiver), matched) in self.waivers.iter().enumerate().zip(matched) {
            let expired = as_of > waiver.expires;
            let state = match (expired, matched.is_empty()) {
                (true, _) => WaiverState::Expired,
                (false, true) => WaiverState::Stale,
                (false, false) => WaiverState::Active,
            };
            outcomes.push(WaiverOutcome {
                index,
                line: self.lines.get(index).copied().unwrap_or(1),
                rule: waiver.rule.clone(),
                resource: waiver.resource.clone(),
                justification: waiver.justification.clone(),
                approver: waiver.approver.clone(),
                ticket: waiver.ticket.clone(),
                expires: waiver.expires,
                state,
                matched,
            });
        }
        report.summary = Summary::of_scan(&report.results, !report.scan.collection_gaps.is_empty());
        report.waivers = Some(WaiverReport {
            path: self.path.clone(),
            sha256: self.sha256.clone(),
            as_of,
            waivers: outcomes,
        });
        Ok(())
    }
}

/// A waiver names one resource exactly, or a pattern within one account: an ARN whose
/// partition, service and account are written out (the region may be `*`). Anything broader
/// (`*`, `**`, `arn:*`, a wildcard account) would waive the rule across the estate.
fn check_scope(resource: &str) -> Result<(), String> {
    let wild = |part: &str| part.contains(['*', '?']);
    if !wild(resource) {
        return Ok(());
    }
    let parts: Vec<&str> = resource.splitn(6, ':').collect();
    let within_account = matches!(
        parts.as_slice(),
        ["arn", partition, service, region, account, _]
            if !wild(partition) && !partition.is_empty()
                && !wild(service) && !service.is_empty()
                && (!wild(region) || *region == "*")
                && crate::input::is_account_id(account)
    );
    if within_account {
        Ok(())
    } else {
        Err(format!(
            "`resource: \"{resource}\"` is a pattern that is not confined to one account and would waive the rule across the estate; name an exact resource, or a pattern inside one account (arn:aws:SERVICE:REGION:ACCOUNT:...)"
        ))
    }
}

/// The line each list item of `waivers:` starts on: the `- ` entries at the list's indentation.
fn waiver_lines(text: &str, count: usize) -> Vec<usize> {
    let mut lines = Vec::with_capacity(count);
    let mut indent: Option<usize> = None;
    let mut in_list = false;
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if line.starts_with("waivers:") {
            in_list = true;
            continue;
        }
        if !in_list || trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let this_indent = line.len() - trimmed.len();
        if trimmed.starts_with("- ") || trimmed == "-" {
            if *indent.get_or_insert(this_indent) == this_indent {
                lines.push(number + 1);
            }
        } else if this_indent == 0 {
            in_list = false;
        }
    }
    lines.resize(count.max(lines.len()), 1);
    lines
}

/// Position of `needle` at or after line `from` (1-based).
fn locate_from(text: &str, from: usize, needle: &str) -> (usize, usize) {
    let offset: usize = text
        .split_inclusive('\n')
        .take(from.saturating_sub(1))
        .map(str::len)
        .sum();
    let (line, column) = crate::input::locate(&text[offset..], needle);
    (line + from - 1, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> BTreeSet<String> {
        ["XS-NET-003".to_string(), "XS-SM-001".to_string()].into()
    }

    const GOOD: &str = "\
# accepted exceptions
waivers:
  - rule: XS-NET-003
    resource: arn:aws:ec2:us-east-1:111111111111:security-group/sg-*
    justification: vendor appliance needs egress until migration
    approver: jane.doe@bank.example
    ticket: RISK-1234
    expires: 2027-03-31
  - rule: XS-SM-001
    resource: arn:aws:sagemaker:us-east-1:111111111111:notebook-instance/ml-notebook-2
    justification: pip mirror outage
    approver: ciso@bank.example
    ticket: CHG-77
    expires: 2026-01-31
";

    #[test]
    fn parses_and_records_lines() {
        let w = Waivers::from_yaml("w.yaml", GOOD, &known()).unwrap();
        assert_eq!(w.waivers.len(), 2);
        assert_eq!(w.lines, vec![3, 9]);
        assert_eq!(
            w.waivers[0].expires,
            NaiveDate::from_ymd_opt(2027, 3, 31).unwrap()
        );
    }

    #[test]
    fn missing_expiry_is_an_error_with_position() {
        let bad = GOOD.replace("    expires: 2026-01-31\n", "");
        let err = Waivers::from_yaml("w.yaml", &bad, &known())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("w.yaml:9:"), "{err}");
        assert!(err.contains("missing field `expires`"), "{err}");
        assert!(err.contains("help:"), "{err}");
    }

    #[test]
    fn bad_dates_are_errors_with_position() {
        let bad = GOOD.replace("2026-01-31", "2026-02-30");
        let err = Waivers::from_yaml("w.yaml", &bad, &known())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("w.yaml:14:"), "{err}");
    }

    #[test]
    fn unknown_rules_and_fields_are_errors_with_position() {
        let bad = GOOD.replace("rule: XS-SM-001", "rule: XS-SM-999");
        let err = Waivers::from_yaml("w.yaml", &bad, &known())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("w.yaml:9:11:"), "{err}");
        assert!(err.contains("XS-SM-999"), "{err}");
        let bad = GOOD.replace("ticket: CHG-77", "ticket: CHG-77\n    owner: me");
        let err = Waivers::from_yaml("w.yaml", &bad, &known())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("w.yaml:14:"), "{err}");
        assert!(err.contains("owner"), "{err}");
    }

    #[test]
    fn a_waiver_for_every_resource_is_refused() {
        let bad = GOOD.replace(
            "resource: arn:aws:ec2:us-east-1:111111111111:security-group/sg-*",
            "resource: \"*\"",
        );
        let err = Waivers::from_yaml("w.yaml", &bad, &known())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("w.yaml:4:"), "{err}");
        for pattern in [
            "\"**\"",
            "\"arn:*\"",
            "\"arn:aws:ec2:us-east-1:*:security-group/*\"",
            "\"arn:aws:*:us-east-1:111111111111:*\"",
            "\"*:111111111111:*\"",
        ] {
            let bad = GOOD.replace(
                "arn:aws:ec2:us-east-1:111111111111:security-group/sg-*",
                pattern,
            );
            let err = Waivers::from_yaml("w.yaml", &bad, &known())
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("not confined to one account"),
                "{pattern}: {err}"
            );
        }
        for pattern in [
            "arn:aws:ec2:*:111111111111:security-group/sg-*",
            "arn:aws:s3:::test-bucket-1",
        ] {
            let good = GOOD.replace(
                "arn:aws:ec2:us-east-1:111111111111:security-group/sg-*",
                pattern,
            );
            assert!(
                Waivers::from_yaml("w.yaml", &good, &known()).is_ok(),
                "{pattern}"
            );
        }
    }
}
