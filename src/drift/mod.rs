//! Drift between two scans: each result of the current report is classified against a
//! baseline report by its fingerprint (sha256 of rule id + resource identity, the one SARIF
//! uses): `new`, `unchanged`, `changed` (same rule and resource, other status or evidence) or
//! `resolved` (failing in the baseline, not failing now — or gone).

pub mod diff;
pub mod history;
pub mod waivers;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

pub use crate::findings::BaselineState;
pub use crate::findings::report::{Drift, ResolvedResult};
use crate::findings::{Finding, Fingerprint, Report, ResourceRef, ResultsError, Status};

/// An open problem: failing, not evaluated, or accepted by a waiver (fail -> waived is a
/// change, not a resolution).
fn is_failing(status: Status) -> bool {
    matches!(status, Status::Fail | Status::Error | Status::Waived)
}

/// Classifies one current result against its baseline counterpart.
fn classify(current: &Finding, previous: Option<&Finding>) -> BaselineState {
    match previous {
        None => BaselineState::New,
        Some(p) if is_failing(p.status) && !is_failing(current.status) => BaselineState::Resolved,
        Some(p)
            if p.status == current.status
                && p.evidence == current.evidence
                && p.waiver == current.waiver =>
        {
            BaselineState::Unchanged
        }
        Some(_) => BaselineState::Changed,
    }
}

/// Compares `current` with `baseline`, setting `baseline_state` on every current result and
/// returning the summary.
pub fn compare(
    baseline: &Report,
    baseline_sha256: &str,
    current: &mut Report,
) -> Result<Drift, ResultsError> {
    // Each result's fingerprint is derived (a sha256), so once here for each side.
    let baseline_results: Vec<(Fingerprint, Cow<'_, Finding>)> = baseline
        .results
        .iter()
        .map(|f| (f.fingerprint(), f))
        .collect();
    baseline.results.check()?;
    let previous: HashMap<Fingerprint, &Finding> = baseline_results
        .iter()
        .map(|(fingerprint, f)| (*fingerprint, &**f))
        .collect();
    let mut counts: BTreeMap<BaselineState, usize> = BTreeMap::new();
    let mut resolved = Vec::new();
    let mut current_fingerprints = std::collections::HashSet::new();
    current.results.update(|finding| {
        let fingerprint = finding.fingerprint();
        current_fingerprints.insert(fingerprint);
        let before = previous.get(&fingerprint).copied();
        let state = classify(finding, before);
        *counts.entry(state).or_default() += 1;
        if let (BaselineState::Resolved, Some(before)) = (state, before) {
            resolved.push(ResolvedResult {
                rule_id: finding.rule_id().to_string(),
                resource: ResourceRef::clone(&finding.resource),
                fingerprint,
                previous_status: before.status,
                current_status: Some(finding.status),
            });
        }
        finding.baseline_state = Some(state);
    })?;
    for (fingerprint, gone) in baseline_results.iter().filter(|(fingerprint, f)| {
        is_failing(f.status) && !current_fingerprints.contains(fingerprint)
    }) {
        *counts.entry(BaselineState::Resolved).or_default() += 1;
        resolved.push(ResolvedResult {
            rule_id: gone.rule_id().to_string(),
            resource: ResourceRef::clone(&gone.resource),
            fingerprint: *fingerprint,
            previous_status: gone.status,
            current_status: None,
        });
    }
    Ok(Drift {
        baseline_report_id: baseline.report_id.clone(),
        baseline_finished_at: baseline.scan.finished_at,
        baseline_sha256: baseline_sha256.to_string(),
        counts,
        resolved,
        config_changes: Vec::new(),
    })
}

/// Which failures make the exit code 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FailOn {
    /// Any failing result (the default).
    #[default]
    Any,
    /// Only failing results that are new or changed since the baseline.
    New,
    /// Never (errors still make the exit code 3).
    None,
}

/// The exit code for `report` under `fail_on`, as the README documents: 0 clean, 1 failures,
/// 3 incomplete (errors prevented evaluating part of the scope; this wins over 1, because the
/// result set is not complete).
pub fn exit_code(report: &Report, fail_on: FailOn) -> i32 {
    if report.summary.incomplete {
        return 3;
    }
    let fails = match fail_on {
        // The summary counts every result (a spilled report's results are not read again).
        FailOn::Any => report.summary.count(Status::Fail) > 0,
        FailOn::New => {
            report
                .results
                .iter()
                .filter(|f| f.status == Status::Fail)
                .filter(|f| {
                    matches!(
                        f.baseline_state,
                        None | Some(BaselineState::New) | Some(BaselineState::Changed)
                    )
                })
                .count()
                > 0
        }
        FailOn::None => false,
    };
    i32::from(fails)
}
