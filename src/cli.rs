//! The command line: clap definitions and the glue from arguments to the library. Output is
//! written here and only here; exit codes are chosen in `main.rs` from [`CliError`] and the
//! report outcome.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{Config, ConfigError};
use crate::findings::{Severity, sha256_hex};
use crate::model::{ModelError, Snapshot};
use crate::policy::{self, Policy, PolicyError, PolicyKind, PolicySet, Request, RequestPrincipal};
use crate::report::{self, Format};
use crate::rules::testing::{self, TestSetupError};
use crate::rules::{RuleErrors, RulePack};
use crate::scan::{self, ScanInputs};

/// Compliance drift scanner for cross-account AWS data access (SageMaker notebooks reading a
/// dataset through S3 access points). `xscan` alone scans with ./xscan.yaml.
#[derive(Debug, Parser)]
#[command(name = "xscan", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub scan: ScanArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Evaluate the rule pack over a snapshot and report.
    Scan(ScanArgs),
    /// List, explain and test the rules.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// The IAM policy engine as a command.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
}

#[derive(Debug, Clone, Args)]
pub struct ScanArgs {
    /// Evaluate this saved snapshot (from `xscan collect`) instead of collecting.
    #[arg(long, value_name = "FILE")]
    pub snapshot: Option<PathBuf>,
    /// Configuration file [default: $XSCAN_CONFIG, else ./xscan.yaml].
    #[arg(long, value_name = "FILE", env = "XSCAN_CONFIG")]
    pub config: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Write the report here instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Use the rules in this directory instead of the built-in pack.
    #[arg(long, value_name = "DIR")]
    pub rules: Option<PathBuf>,
    /// Ignore rules below this severity (critical, high, medium, low, info).
    #[arg(long, value_name = "SEVERITY", default_value = "info")]
    pub min_severity: Severity,
    /// Exit 0 even when there are failures or errors (the report still shows them).
    #[arg(long)]
    pub exit_zero: bool,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// List the rules.
    List {
        #[arg(long, value_name = "DIR")]
        rules: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Show a rule's documentation and check.
    Explain {
        /// Rule id, e.g. XS-SM-001.
        id: String,
        #[arg(long, value_name = "DIR")]
        rules: Option<PathBuf>,
    },
    /// Run the rules' test cases.
    Test {
        /// Rule directory [default: the built-in pack].
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Evaluate one request against policies, like AWS's policy simulator.
    Eval(PolicyEvalArgs),
}

#[derive(Debug, Args)]
pub struct PolicyEvalArgs {
    /// An identity policy of the principal (repeatable).
    #[arg(long = "policy", value_name = "FILE")]
    pub policies: Vec<PathBuf>,
    /// The resource's policy (bucket, access point, role trust).
    #[arg(long, value_name = "FILE")]
    pub resource_policy: Option<PathBuf>,
    /// Read the resource policy as an access point policy.
    #[arg(long)]
    pub access_point: bool,
    /// For a request through an access point: the policy of the bucket behind it (with
    /// --bucket); the access point policy is --resource-policy.
    #[arg(long, value_name = "FILE", requires = "bucket")]
    pub bucket_policy: Option<PathBuf>,
    /// The bucket behind the access point.
    #[arg(long, value_name = "NAME")]
    pub bucket: Option<String>,
    /// The bucket's owner [default: the access point's account].
    #[arg(long, value_name = "ACCOUNT")]
    pub bucket_account: Option<String>,
    /// A VPC endpoint policy on the request's path (repeatable).
    #[arg(long = "endpoint-policy", value_name = "FILE")]
    pub endpoint_policies: Vec<PathBuf>,
    /// IAM ARN (user, role, assumed-role session, root), account id, service principal, or `anonymous`.
    #[arg(long)]
    pub principal: String,
    /// e.g. s3:GetObject
    #[arg(long)]
    pub action: String,
    /// The resource ARN.
    #[arg(long)]
    pub resource: String,
    /// Owner of a resource whose ARN has no account (S3 buckets and objects).
    #[arg(long, value_name = "ACCOUNT")]
    pub resource_account: Option<String>,
    /// Context key, KEY=VALUE (repeat a key for several values).
    #[arg(long = "context", value_name = "KEY=VALUE")]
    pub context: Vec<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: EvalFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum EvalFormat {
    Text,
    Json,
}

/// Errors that end a command, each with its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Rules(#[from] RuleErrors),
    #[error(transparent)]
    Snapshot(#[from] ModelError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    TestSetup(#[from] TestSetupError),
    #[error("{0}")]
    Usage(String),
    #[error("cannot write {path}: {source}\nhelp: check that the directory exists and is writable")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{failed} rule test case(s) failed")]
    RuleTestsFailed { failed: usize },
}

impl CliError {
    /// The documented exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::RuleTestsFailed { .. } => 1,
            _ => 2,
        }
    }
}

/// Writes to the output file, or standard output.
fn emit(output: Option<&Path>, text: &str) -> Result<(), CliError> {
    match output {
        Some(path) => std::fs::write(path, text).map_err(|source| CliError::Write {
            path: path.display().to_string(),
            source,
        }),
        None => {
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth a message.
            let _ = stdout.write_all(text.as_bytes());
            let _ = stdout.flush();
            Ok(())
        }
    }
}

fn load_pack(dir: Option<&Path>) -> Result<RulePack, CliError> {
    Ok(match dir {
        Some(dir) => RulePack::load_dir(dir)?,
        None => RulePack::embedded()?,
    })
}

/// The config file: given, or ./xscan.yaml when it exists.
fn config_path(given: Option<&Path>) -> Option<PathBuf> {
    given.map(Path::to_path_buf).or_else(|| {
        Path::new("xscan.yaml")
            .exists()
            .then(|| PathBuf::from("xscan.yaml"))
    })
}

/// Runs the parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32, CliError> {
    match cli.command {
        None => scan_command(&cli.scan),
        Some(Command::Scan(args)) => scan_command(&args),
        Some(Command::Rules { command }) => rules_command(command),
        Some(Command::Policy {
            command: PolicyCommand::Eval(args),
        }) => policy_eval(&args),
    }
}

fn scan_command(args: &ScanArgs) -> Result<i32, CliError> {
    let pack = load_pack(args.rules.as_deref())?;
    let config_file = config_path(args.config.as_deref());
    let (config, config_sha256) = match &config_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.display().to_string(),
                source,
            })?;
            (
                Some(Config::from_yaml(&path.display().to_string(), &text)?),
                Some(sha256_hex(text.as_bytes())),
            )
        }
        None => (None, None),
    };
    let Some(snapshot_path) = &args.snapshot else {
        return Err(CliError::Usage(
            "no snapshot given and live collection is not available in this build\nhelp: pass --snapshot FILE (try examples/estate.snapshot.json)".into(),
        ));
    };
    let text = std::fs::read_to_string(snapshot_path).map_err(|source| ModelError::Read {
        path: snapshot_path.display().to_string(),
        source,
    })?;
    let snapshot = Snapshot::from_json(&snapshot_path.display().to_string(), &text)?;
    let report = scan::run(&ScanInputs {
        snapshot: &snapshot,
        snapshot_sha256: sha256_hex(text.as_bytes()),
        pack: &pack,
        config: config.as_ref(),
        config_sha256,
        min_severity: args.min_severity,
    });
    let rendered = match args.format {
        Format::Table => {
            let color = args.output.is_none()
                && std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none();
            report::table::render(&report, color)
        }
        Format::Json => report::json::render(&report),
    };
    emit(args.output.as_deref(), &rendered)?;
    Ok(if args.exit_zero {
        0
    } else {
        report.outcome() as i32
    })
}

fn rules_command(command: RulesCommand) -> Result<i32, CliError> {
    match command {
        RulesCommand::List { rules, format } => {
            let pack = load_pack(rules.as_deref())?;
            let text = match format {
                ListFormat::Json => {
                    let infos: Vec<_> = pack
                        .rules
                        .iter()
                        .map(|r| scan::rule_info(&r.spec))
                        .collect();
                    format!(
                        "{}\n",
                        serde_json::to_string_pretty(&infos).unwrap_or_default()
                    )
                }
                ListFormat::Table => {
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
            };
            emit(None, &text)?;
            Ok(0)
        }
        RulesCommand::Explain { id, rules } => {
            let pack = load_pack(rules.as_deref())?;
            let Some(rule) = pack.get(&id) else {
                return Err(CliError::Usage(format!(
                    "no rule `{id}` in the pack\nhelp: `xscan rules list` shows the ids"
                )));
            };
            emit(None, &explain(rule))?;
            Ok(0)
        }
        RulesCommand::Test { dir } => {
            let pack = load_pack(dir.as_deref())?;
            let outcomes = testing::run_pack(&pack)?;
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
            emit(None, &out)?;
            if failed.is_empty() {
                Ok(0)
            } else {
                Err(CliError::RuleTestsFailed {
                    failed: failed.len(),
                })
            }
        }
    }
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
    #[derive(serde::Serialize)]
    struct CheckOnly<'a> {
        #[serde(with = "serde_norway::with::singleton_map_recursive")]
        check: &'a crate::rules::Condition,
    }
    if let Ok(yaml) = serde_norway::to_string(&CheckOnly { check: &r.check }) {
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

fn read_policy(path: &Path) -> Result<Policy, CliError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::Usage(format!(
            "cannot read policy {name}: {e}\nhelp: pass a JSON policy document file"
        ))
    })?;
    Ok(Policy::parse_text(&name, &text)?)
}

fn policy_eval(args: &PolicyEvalArgs) -> Result<i32, CliError> {
    let identity = args
        .policies
        .iter()
        .map(|p| read_policy(p))
        .collect::<Result<Vec<_>, _>>()?;
    let resource = args
        .resource_policy
        .as_deref()
        .map(read_policy)
        .transpose()?;
    let endpoint = args
        .endpoint_policies
        .iter()
        .map(|p| read_policy(p))
        .collect::<Result<Vec<_>, _>>()?;
    let principal = RequestPrincipal::parse(&args.principal)?;
    if !args.action.contains(':') {
        return Err(CliError::Usage(format!(
            "action `{}` has no service prefix\nhelp: write actions as service:Action, e.g. s3:GetObject",
            args.action
        )));
    }
    let mut request = Request::new(principal, &args.action, &args.resource);
    request.resource_account = args.resource_account.clone();
    for pair in &args.context {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(CliError::Usage(format!(
                "--context `{pair}` is not KEY=VALUE\nhelp: e.g. --context aws:SecureTransport=true"
            )));
        };
        request.context.add(key.trim(), value);
    }
    let kind = if args.access_point {
        PolicyKind::AccessPoint
    } else {
        PolicyKind::Resource
    };
    let set = PolicySet {
        identity: identity.iter().collect(),
        resource: resource.as_ref().map(|p| (p, kind)),
        endpoint: endpoint.iter().collect(),
    };
    let bucket_policy = args.bucket_policy.as_deref().map(read_policy).transpose()?;
    let evaluation = match (&bucket_policy, &args.bucket) {
        (Some(bucket_policy), Some(bucket)) => {
            if !args.resource.contains(":accesspoint/") {
                return Err(CliError::Usage(
                    "--bucket-policy needs --resource to be an access point ARN (or an object under it)\nhelp: e.g. arn:aws:s3:us-east-1:222222222222:accesspoint/test-ap-1/object/key".into(),
                ));
            }
            let ap_account = args
                .resource
                .split(':')
                .nth(4)
                .unwrap_or_default()
                .to_string();
            policy::evaluate_via_access_point(
                &request,
                &policy::AccessPointLayers {
                    identity: set.identity.clone(),
                    endpoint: set.endpoint.clone(),
                    access_point: resource.as_ref(),
                    bucket_policy: Some(bucket_policy),
                    bucket: bucket.clone(),
                    bucket_account: args.bucket_account.clone().unwrap_or(ap_account),
                },
            )
        }
        _ => policy::evaluate(&request, &set),
    };
    let text = match args.format {
        EvalFormat::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&evaluation).unwrap_or_default()
        ),
        EvalFormat::Text => {
            let mut out = format!(
                "Decision: {}\nReason:   {}\n",
                evaluation.decision, evaluation.reason
            );
            if !evaluation.statements.is_empty() {
                out.push_str("Statements:\n");
                for s in &evaluation.statements {
                    let sid = s
                        .sid
                        .as_ref()
                        .map(|x| format!(" (Sid \"{x}\")"))
                        .unwrap_or_default();
                    out.push_str(&format!(
                        "  - {} statement {}{sid}: {:?} {}\n",
                        s.policy, s.index, s.effect, s.outcome
                    ));
                }
            }
            for w in &evaluation.warnings {
                out.push_str(&format!("warning: {w}\n"));
            }
            out
        }
    };
    emit(None, &text)?;
    Ok(0)
}
