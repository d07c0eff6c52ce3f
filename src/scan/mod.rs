//! One scan, offline: snapshot + rule pack + config -> [`Report`]. Pure; the CLI and the
//! collector call it. [`pipeline`] carries a run on from there: waivers, baselines, history.

pub mod pipeline;

use std::collections::BTreeMap;

use crate::config::Config;
use crate::findings::report::{AccountInfo, MethodInfo, RuleFile, RuleInfo, ScanInfo, ToolInfo};
use crate::findings::{Report, ResultsError, Severity, Summary, sha256_hex};
use crate::model::{AccountRole, Snapshot};
use crate::rules::{Evaluator, RulePack};

/// Where xscan documents itself.
pub const INFORMATION_URI: &str = "https://github.com/xscan/xscan";

/// The inputs of a scan with their digests.
pub struct ScanInputs<'a> {
    pub snapshot: &'a Snapshot,
    /// sha256 of the snapshot as read (or as written, for a live scan).
    pub snapshot_sha256: String,
    pub pack: &'a RulePack,
    pub config: Option<&'a Config>,
    pub config_sha256: Option<String>,
    pub min_severity: Severity,
    /// Results beyond which they are spilled to a temporary file rather than held
    /// ([`crate::findings::results::SPILL_AT`] unless a test says otherwise).
    pub spill_at: usize,
}

/// Evaluates and assembles the report. `generated_at` is not part of the report so that the
/// same inputs render the same bytes.
pub fn run(inputs: &ScanInputs<'_>) -> Result<Report, ResultsError> {
    let snapshot = inputs.snapshot;
    // Accounts discovery put in scope when the snapshot was collected count as configured.
    let config = inputs.config.map(|c| c.with_discovered(snapshot));
    let config = config.as_deref();
    let accounts: Vec<(String, AccountRole)> = match config {
        Some(c) => c.account_roles(),
        None => snapshot
            .accounts
            .iter()
            .filter_map(|(id, a)| a.role.map(|r| (id.clone(), r)))
            .collect(),
    };
    let parameters = match config {
        Some(c) => c.parameters(snapshot),
        None => BTreeMap::new(),
    };
    let rules: Vec<_> = inputs
        .pack
        .rules
        .iter()
        .filter(|r| r.spec.severity >= inputs.min_severity)
        .cloned()
        .collect();
    let parameter_gaps = config
        .map(|c| c.parameter_gaps(snapshot))
        .unwrap_or_default();
    let mut evaluator =
        Evaluator::new(snapshot, parameters, accounts.clone()).with_parameter_gaps(parameter_gaps);
    // For a pack with path rules, each notebook's paths are found when a path rule first
    // reads them, and dropped with the notebook's other kept values once its rules are done.
    let reads_paths = rules.iter().any(|r| r.spec.check.tests_paths());
    if let Some(config) = config.filter(|_| reads_paths) {
        evaluator = evaluator.with_perimeter(config);
    }
    let results = evaluator.evaluate_results(&rules, inputs.spill_at)?;
    // Its index and caches are not needed for the report.
    drop(evaluator);

    // Every collected type is counted, none found included.
    let mut resource_counts: BTreeMap<String, usize> = crate::model::ResourceType::ALL
        .iter()
        .filter(|t| !t.is_derived())
        .map(|t| (t.as_str().to_string(), 0))
        .collect();
    for item in snapshot.resources() {
        *resource_counts
            .entry(item.resource_type().as_str().to_string())
            .or_default() += 1;
    }
    if let Some(org) = &snapshot.organization {
        resource_counts.insert("account".into(), org.accounts.len());
        resource_counts.insert(
            crate::model::ResourceType::OrganizationPolicy
                .as_str()
                .into(),
            org.policies.len(),
        );
    }
    let mut account_ids: Vec<String> = accounts.iter().map(|(id, _)| id.clone()).collect();
    account_ids.extend(snapshot.accounts.keys().cloned());
    account_ids.sort();
    account_ids.dedup();
    let account_infos = account_ids
        .iter()
        .map(|id| {
            let collected = snapshot.accounts.get(id);
            let configured = config.and_then(|c| c.accounts.iter().find(|a| &a.id == id));
            let member = snapshot
                .organization
                .as_ref()
                .and_then(|o| o.accounts.get(id).map(|m| (o, m)));
            AccountInfo {
                id: id.clone(),
                name: collected
                    .and_then(|a| a.name.clone())
                    .or_else(|| configured.and_then(|a| a.name.clone())),
                role: collected
                    .and_then(|a| a.role)
                    .or(configured.map(|a| a.role))
                    .map(|r| r.as_str().to_string()),
                caller_arn: snapshot
                    .metadata
                    .caller_identities
                    .get(id)
                    .map(|c| c.arn.clone()),
                collected: collected.is_some(),
                ou_path: member.and_then(|(o, _)| o.ou_path(id)),
                tags: member.map(|(_, m)| m.tags.clone()).unwrap_or_default(),
            }
        })
        .collect();
    let scope = inputs
        .config
        .map(|c| c.scope.clone())
        .or_else(|| snapshot.metadata.scope.clone())
        .unwrap_or_else(|| "default".into());
    let digest_input = format!(
        "{}\n{}\n{}\n{}",
        inputs.snapshot_sha256,
        inputs.pack.digest(),
        inputs.config_sha256.as_deref().unwrap_or(""),
        inputs.min_severity
    );
    Ok(Report {
        schema_version: crate::findings::report::REPORT_SCHEMA_VERSION.into(),
        report_id: sha256_hex(digest_input.as_bytes())[..16].to_string(),
        tool: ToolInfo {
            name: "xscan".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            information_uri: INFORMATION_URI.into(),
        },
        scan: ScanInfo {
            scope,
            started_at: snapshot.metadata.started_at,
            finished_at: snapshot.metadata.finished_at,
            regions: snapshot.metadata.regions.clone(),
            accounts: account_infos,
            resource_counts,
            collection_gaps: snapshot.metadata.collection_gaps.clone(),
        },
        method: MethodInfo {
            rule_pack_source: inputs.pack.source.clone(),
            rule_pack_sha256: inputs.pack.digest(),
            rule_files: rules
                .iter()
                .map(|r| RuleFile {
                    rule_id: r.spec.id.clone(),
                    path: r.path.clone(),
                    sha256: r.sha256.clone(),
                })
                .collect(),
            config_sha256: inputs.config_sha256.clone(),
            snapshot_sha256: inputs.snapshot_sha256.clone(),
            min_severity: inputs.min_severity,
        },
        rules: rules.iter().map(|r| rule_info(&r.spec)).collect(),
        summary: Summary::of_scan(&results, !snapshot.metadata.collection_gaps.is_empty()),
        drift: None,
        waivers: None,
        results,
    })
}

/// A rule's documentation for reports.
pub fn rule_info(rule: &crate::rules::Rule) -> RuleInfo {
    RuleInfo {
        id: rule.id.clone(),
        title: rule.title.clone(),
        severity: rule.severity,
        resource_type: rule.resource_type.as_str().into(),
        description: rule.description.trim().to_string(),
        rationale: rule.rationale.trim().to_string(),
        remediation: rule.remediation.trim().to_string(),
        references: rule.references.clone(),
        frameworks: rule.frameworks.tags(),
    }
}
