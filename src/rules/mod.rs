//! The YAML rule pack: loading with positions (every error at once, as file:line:column),
//! validation, pure evaluation ([`eval`]) and the rule test cases ([`testing`]).

pub mod docs;
pub mod eval;
pub mod index;
pub mod spec;
pub mod testing;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::findings::sha256_hex;
use crate::input::locate;
use crate::model::ResourceType;

pub use eval::Evaluator;
pub use spec::{Condition, Rule};

use crate::embedded;

/// One problem in a rule file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct RuleError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Every problem found in a rule pack.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RuleErrors(pub Vec<RuleError>);

impl std::fmt::Display for RuleErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for e in &self.0 {
            writeln!(f, "{e}")?;
        }
        write!(
            f,
            "{} error(s) in the rule pack\nhelp: the rule format is documented in README.md#writing-rules; `xscan rules explain ID` shows a working rule",
            self.0.len()
        )
    }
}

/// A rule with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedRule {
    pub spec: Rule,
    /// Path relative to the pack (`rules/sagemaker/XS-SM-001.yaml`).
    pub path: String,
    /// sha256 of the file's bytes (the method section of evidence reports).
    pub sha256: String,
}

/// A loaded, validated rule pack with the fixtures its test cases patch.
#[derive(Debug, Clone)]
pub struct RulePack {
    pub rules: Vec<LoadedRule>,
    /// `embedded` or the directory.
    pub source: String,
    /// `fixtures/compliant.snapshot.json`, when the pack has it.
    pub fixture_snapshot: Option<String>,
    /// `fixtures/xscan.yaml`, when the pack has it.
    pub fixture_config: Option<String>,
}

impl RulePack {
    /// The pack compiled into the binary.
    pub fn embedded() -> Result<Self, RuleErrors> {
        let files: Vec<(String, String)> = embedded::RULE_FILES
            .iter()
            .map(|(p, c)| (p.to_string(), c.to_string()))
            .collect();
        Self::from_files("embedded", files)
    }

    /// Loads every `*.yaml` under `dir` (fixtures aside).
    pub fn load_dir(dir: &Path) -> Result<Self, RuleErrors> {
        let mut paths = Vec::new();
        walk(dir, &mut paths).map_err(|e| {
            RuleErrors(vec![RuleError {
                file: dir.display().to_string(),
                line: 1,
                column: 1,
                message: format!("cannot read the rule directory: {e}"),
            }])
        })?;
        let mut files = Vec::new();
        let mut errors = Vec::new();
        for path in paths {
            let display = path.display().to_string();
            match std::fs::read_to_string(&path) {
                Ok(text) => files.push((display, text)),
                Err(e) => errors.push(RuleError {
                    file: display,
                    line: 1,
                    column: 1,
                    message: format!("cannot read: {e}"),
                }),
            }
        }
        if !errors.is_empty() {
            return Err(RuleErrors(errors));
        }
        let pack = Self::from_files(&dir.display().to_string(), files)?;
        if pack.rules.is_empty() {
            // A scan with no rules would be green while checking nothing.
            return Err(RuleErrors(vec![RuleError {
                file: dir.display().to_string(),
                line: 1,
                column: 1,
                message: "the directory holds no rule (no *.yaml file outside fixtures/)".into(),
            }]));
        }
        Ok(pack)
    }

    /// Builds a pack from (path, text) pairs: fixtures are kept, YAML rules parsed and
    /// validated; all errors are returned together.
    pub fn from_files(source: &str, files: Vec<(String, String)>) -> Result<Self, RuleErrors> {
        let mut rules = Vec::new();
        let mut errors = Vec::new();
        let mut fixture_snapshot = None;
        let mut fixture_config = None;
        let mut id_positions: HashMap<String, (usize, usize)> = HashMap::new();
        let mut mitigation_positions: HashMap<(String, String), (usize, usize)> = HashMap::new();
        for (path, text) in files {
            let normalized = path.replace('\\', "/");
            if normalized.contains("/fixtures/") || normalized.starts_with("fixtures/") {
                if normalized.ends_with("compliant.snapshot.json") {
                    fixture_snapshot = Some(crate::input::strip_bom(&text).to_string());
                } else if normalized.ends_with("xscan.yaml") {
                    fixture_config = Some(crate::input::strip_bom(&text).to_string());
                }
                continue;
            }
            if !(normalized.ends_with(".yaml") || normalized.ends_with(".yml")) {
                continue;
            }
            let text = crate::input::strip_bom(&text).to_string();
            match serde_norway::from_str::<Rule>(&text) {
                Ok(spec) => {
                    let before = errors.len();
                    validate(&spec, &path, &text, &mut errors);
                    id_positions.insert(path.clone(), locate(&text, "id:"));
                    for mitigation in &spec.mitigated_by {
                        mitigation_positions.insert(
                            (path.clone(), mitigation.rule.clone()),
                            locate(&text, &mitigation.rule),
                        );
                    }
                    if errors.len() == before {
                        rules.push(LoadedRule {
                            spec,
                            sha256: sha256_hex(text.as_bytes()),
                            path,
                        });
                    }
                }
                Err(e) => {
                    let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
                    errors.push(RuleError {
                        file: path,
                        line,
                        column,
                        message: e.to_string(),
                    });
                }
            }
        }
        // Duplicate ids: the later file is the error, pointing at the first.
        let mut seen: HashMap<String, String> = HashMap::new();
        for rule in &rules {
            if let Some(first) = seen.get(&rule.spec.id) {
                let (line, column) = id_positions.get(&rule.path).copied().unwrap_or((1, 1));
                errors.push(RuleError {
                    file: rule.path.clone(),
                    line,
                    column,
                    message: format!(
                        "duplicate rule id `{}` (already defined in {first})",
                        rule.spec.id
                    ),
                });
            } else {
                seen.insert(rule.spec.id.clone(), rule.path.clone());
            }
        }
        // A mitigation names a rule of the pack about accounts (its pass is per account).
        for rule in &rules {
            for mitigation in &rule.spec.mitigated_by {
                let target = rules.iter().find(|r| r.spec.id == mitigation.rule);
                if target.is_some_and(|t| t.spec.resource_type == ResourceType::Account) {
                    continue;
                }
                let (line, column) = mitigation_positions
                    .get(&(rule.path.clone(), mitigation.rule.clone()))
                    .copied()
                    .unwrap_or((1, 1));
                errors.push(RuleError {
                    file: rule.path.clone(),
                    line,
                    column,
                    message: format!(
                        "mitigated_by: rule `{}` {}",
                        mitigation.rule,
                        if target.is_some() {
                            "is not a rule about accounts (resource_type: account)"
                        } else {
                            "is not in the pack"
                        }
                    ),
                });
            }
        }
        if !errors.is_empty() {
            errors.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
            return Err(RuleErrors(errors));
        }
        rules.sort_by(|a, b| a.spec.id.cmp(&b.spec.id));
        Ok(Self {
            rules,
            source: source.to_string(),
            fixture_snapshot,
            fixture_config,
        })
    }

    /// A rule by id (case-insensitive).
    pub fn get(&self, id: &str) -> Option<&LoadedRule> {
        self.rules
            .iter()
            .find(|r| r.spec.id.eq_ignore_ascii_case(id))
    }

    /// sha256 over the sorted (path, sha256) list: one number for the whole pack.
    pub fn digest(&self) -> String {
        let mut lines: Vec<String> = self
            .rules
            .iter()
            .map(|r| format!("{} {}", r.sha256, r.path))
            .collect();
        lines.sort();
        sha256_hex(lines.join("\n").as_bytes())
    }
}

/// Collects the files under `dir`. Symbolic links are followed (a pack may link shared rules),
/// but each directory is entered once: a link back up the tree (`ln -s . loop`) would
/// otherwise make the walk endless.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut visited = std::collections::HashSet::new();
    walk_once(dir, out, &mut visited)
}

fn walk_once(
    dir: &Path,
    out: &mut Vec<PathBuf>,
    visited: &mut std::collections::HashSet<PathBuf>,
) -> std::io::Result<()> {
    if !visited.insert(std::fs::canonicalize(dir)?) {
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk_once(&path, out, visited)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// Semantic checks serde cannot make; positions are found by locating the offending text.
fn validate(rule: &Rule, path: &str, text: &str, errors: &mut Vec<RuleError>) {
    let mut error = |needle: &str, message: String| {
        let (line, column) = locate(text, needle);
        errors.push(RuleError {
            file: path.to_string(),
            line,
            column,
            message,
        });
    };
    let id_ok = rule.id.starts_with("XS-")
        && rule.id.len() <= 32
        && rule
            .id
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-');
    if !id_ok {
        error(
            "id:",
            format!(
                "rule id `{}` must look like XS-AREA-NNN (upper case, digits, dashes)",
                rule.id
            ),
        );
    }
    for (name, value) in [
        ("title", &rule.title),
        ("description", &rule.description),
        ("rationale", &rule.rationale),
        ("remediation", &rule.remediation),
    ] {
        if value.trim().is_empty() {
            error(&format!("{name}:"), format!("`{name}` must not be empty"));
        }
    }
    for reference in &rule.references {
        if !reference.starts_with("https://") {
            error(
                reference,
                format!("reference `{reference}` must be an https:// URL"),
            );
        }
    }
    if let Some(applies) = &rule.applies_to
        && let Some(when) = &applies.when
    {
        validate_condition(when, rule.resource_type, false, &mut error);
    }
    validate_condition(&rule.check, rule.resource_type, false, &mut error);
    if rule.tests.is_empty() {
        error(
            "id:",
            format!("rule {} has no test cases (add `tests:`)", rule.id),
        );
    }
}

fn validate_condition(
    condition: &Condition,
    resource_type: ResourceType,
    in_list: bool,
    error: &mut dyn FnMut(&str, String),
) {
    use spec::Condition as C;
    let check_path = |path: &str, error: &mut dyn FnMut(&str, String)| {
        let first = path.split('.').next().unwrap_or(path);
        let common = ["account", "region", "account_role"];
        let parameter = path.starts_with("${perimeter.") && path.ends_with('}');
        if !in_list
            && !parameter
            && !resource_type.fields().contains(&first)
            && !common.contains(&first)
        {
            error(
                &format!("path: {path}"),
                format!(
                    "unknown field `{first}` for resource type {resource_type} (fields: {})",
                    resource_type.fields().join(", ")
                ),
            );
        }
    };
    match condition {
        C::All(items) | C::Any(items) => {
            if items.is_empty() {
                error("[]", "`all`/`any` need at least one condition".into());
            }
            for c in items {
                validate_condition(c, resource_type, in_list, error);
            }
        }
        C::Not(inner) => validate_condition(inner, resource_type, in_list, error),
        C::Forced(_) => {}
        C::Path(_) => {
            if resource_type != crate::model::ResourceType::SagemakerNotebook {
                error(
                    "path:",
                    format!("a `path` check applies to sagemaker_notebook, not {resource_type}"),
                );
            }
        }
        C::Field(test) => {
            check_path(&test.path, error);
            if test.operator_count() != 1 {
                error(
                    &format!("path: {}", test.path),
                    format!(
                        "field test on `{}` needs exactly one operator (equals, not_equals, one_of, not_one_of, matches, present, empty, contains); found {}",
                        test.path,
                        test.operator_count()
                    ),
                );
            }
        }
        C::Each(test) => {
            check_path(&test.path, error);
            validate_condition(&test.check, resource_type, true, error);
        }
        C::Related(test) => match test.relation.target(resource_type) {
            Some(target) => {
                if let Some(check) = &test.check {
                    validate_condition(check, target, false, error);
                }
            }
            None => error(
                &format!("relation: {}", test.relation.as_str()),
                format!(
                    "relation `{}` does not apply to resource type {resource_type}",
                    test.relation.as_str()
                ),
            ),
        },
        C::Analysis(call) => {
            check_path(&call.policy, error);
            let spec = call.name.spec();
            for arg in call.given_args() {
                if !spec.required.contains(&arg) && !spec.optional.contains(&arg) {
                    error(
                        &format!("{arg}:"),
                        format!(
                            "analysis `{}` takes no argument `{arg}` ({})",
                            call.name.as_str(),
                            match spec
                                .required
                                .iter()
                                .chain(spec.optional)
                                .map(|a| format!("`{a}`"))
                                .collect::<Vec<_>>()
                            {
                                none if none.is_empty() => "it takes none".to_string(),
                                some => format!("it takes {}", some.join(", ")),
                            }
                        ),
                    );
                }
            }
            for arg in spec.required {
                if !call.has_arg(arg) {
                    error(
                        &format!("name: {}", call.name.as_str()),
                        format!(
                            "analysis `{}` needs the argument `{arg}`",
                            call.name.as_str()
                        ),
                    );
                }
            }
            match call.name.organization_field() {
                Some(field) if resource_type != ResourceType::Account || call.policy != field => {
                    error(
                        &format!("name: {}", call.name.as_str()),
                        format!(
                            "analysis `{}` reads the organization: it runs on `account` resources with `policy: {field}`",
                            call.name.as_str()
                        ),
                    )
                }
                // An SCP has no Principal and is neither an identity nor a resource policy: the
                // analyses would judge it as one. Its fields can be tested.
                None if resource_type == ResourceType::OrganizationPolicy => error(
                    &format!("name: {}", call.name.as_str()),
                    format!(
                        "analysis `{}` does not apply to `organization_policy` resources (their fields, `policy.document` included, can be tested; scps_deny on `account` asks what they deny)",
                        call.name.as_str()
                    ),
                ),
                None if resource_type == ResourceType::Account => error(
                    &format!("name: {}", call.name.as_str()),
                    format!(
                        "analysis `{}` does not apply to `account` resources (scps_deny and denies_outside_principals do)",
                        call.name.as_str()
                    ),
                ),
                _ => {}
            }
            if let Some(context) = &call.context {
                let maps: Vec<&serde_json::Value> = match context {
                    serde_json::Value::Array(items) => items.iter().collect(),
                    other => vec![other],
                };
                if !maps.iter().all(|m| {
                    m.as_object()
                        .is_some_and(|m| m.values().all(serde_json::Value::is_string))
                }) {
                    error(
                        "context:",
                        "analysis `context` is a map of condition keys to strings, or a list of such maps".into(),
                    );
                }
            }
        }
    }
}
