//! The rule pack for the terminal: `xscan rules list`, `rules explain`, and the outcomes of
//! `rules test` and `rules test --mutants`. Formatting only; the rules are run elsewhere.

use crate::rules::RulePack;
use crate::rules::testing::{CaseOutcome, MutationReport};

/// `rules list --format json`: the rules' documentation as the reports carry it.
pub fn list_json(pack: &RulePack) -> String {
    let infos: Vec<_> = pack
        .rules
        .iter()
        .map(|r| crate::scan::rule_info(&r.spec))
        .collect();
    format!(
        "{}\n",
        serde_json::to_string_pretty(&infos).unwrap_or_default()
    )
}

/// `rules list`: one line per rule.
pub fn list_table(pack: &RulePack) -> String {
    let mut out = String::new();
    for r in &pack.rules {
        out.push_str(&format!(
            "{:<12} {:<9} {:<20} {}\n",
            r.spec.id,
            r.spec.severity.as_str(),
            r.spec.resource_type.as_str(),
            r.spec.title
        ));
    }
    out.push_str(&format!("{} rules ({})\n", pack.rules.len(), pack.source));
    out
}

/// `rules test`: the failing cases with their problems, then the counts.
pub fn test_outcomes(pack: &RulePack, outcomes: &[CaseOutcome]) -> String {
    let mut out = String::new();
    let failed: Vec<_> = outcomes.iter().filter(|o| !o.passed()).collect();
    for o in &failed {
        out.push_str(&format!("FAIL {} / {}\n", o.rule_id, o.case));
        for p in &o.problems {
            out.push_str(&format!("     {p}\n"));
        }
    }
    out.push_str(&format!(
        "rule tests: {} passed, {} failed ({} rules, {})\n",
        outcomes.len() - failed.len(),
        failed.len(),
        pack.rules.len(),
        pack.source
    ));
    out
}

/// `rules test --mutants`: rules that could not be mutated, survivors, then the counts.
pub fn mutants(pack: &RulePack, report: &MutationReport) -> String {
    let mut out = String::new();
    for id in &report.broken_rules {
        out.push_str(&format!(
            "NOT MUTATED {id}: its own test cases fail (`xscan rules test`)\n"
        ));
    }
    for s in &report.survivors {
        out.push_str(&format!(
            "SURVIVED {} {}: {}\n",
            s.rule_id, s.path, s.mutation
        ));
    }
    out.push_str(&format!(
        "mutants: {} killed: {} survived: {} ({} rules, {})\n",
        report.mutants,
        report.killed,
        report.survivors.len(),
        pack.rules.len(),
        pack.source
    ));
    out
}

/// A rule's documentation for the terminal.
pub fn explain(rule: &crate::rules::LoadedRule) -> String {
    let r = &rule.spec;
    let mut out = format!("{} — {}\n\n", r.id, r.title);
    out.push_str(&format!(
        "Severity:      {}\nResource type: {}\n",
        r.severity, r.resource_type
    ));
    if let Some(applies) = &r.applies_to
        && !applies.account_roles.is_empty()
    {
        let roles: Vec<&str> = applies.account_roles.iter().map(|r| r.as_str()).collect();
        out.push_str(&format!("Applies to:    {} accounts\n", roles.join(", ")));
    }
    let tags = r.frameworks.tags();
    if !tags.is_empty() {
        out.push_str(&format!("Frameworks:    {}\n", tags.join(", ")));
    }
    out.push_str(&format!(
        "Source:        {} (sha256 {})\n",
        rule.path,
        &rule.sha256[..16]
    ));
    for (heading, text) in [
        ("What it checks", &r.description),
        ("Why it matters", &r.rationale),
        ("Remediation", &r.remediation),
    ] {
        out.push_str(&format!(
            "\n{heading}\n  {}\n",
            text.trim().replace('\n', "\n  ")
        ));
    }
    if !r.references.is_empty() {
        out.push_str("\nReferences\n");
        for reference in &r.references {
            out.push_str(&format!("  {reference}\n"));
        }
    }
    if !r.mitigated_by.is_empty() {
        out.push_str("\nMitigated by (a failure stays a finding and says so)\n");
        for m in &r.mitigated_by {
            out.push_str(&format!("  {}: {}\n", m.rule, m.because.trim()));
        }
    }
    for name in r.check.analyses() {
        out.push_str(&format!(
            "\nAnalysis {}\n  {}\n",
            name.as_str(),
            name.spec().summary
        ));
    }
    let yaml = crate::rules::docs::condition_yaml(&r.check);
    if !yaml.is_empty() {
        out.push_str(&format!(
            "\nCheck\n  {}\n",
            yaml.trim_end().replace('\n', "\n  ")
        ));
    }
    out.push_str(&format!(
        "\n{} test case(s): `xscan rules test`\n",
        r.tests.len()
    ));
    out
}
