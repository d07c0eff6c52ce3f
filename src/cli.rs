//! The command line: clap definitions and the glue from arguments to the library. Output is
//! written here and only here; exit codes are chosen in `main.rs` from [`CliError`] and the
//! report outcome.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::collect::{CollectError, CollectOptions};
use crate::config::{Config, ConfigError};
use crate::drift::history::{History, HistoryError};
use crate::drift::waivers::Waivers;
use crate::findings::{Severity, sha256_hex};
use crate::model::{ModelError, Snapshot};
use crate::policy::{self, Policy, PolicyError, PolicyKind, PolicySet, Request, RequestPrincipal};
use crate::report::{self, Format};
use crate::rules::testing::{self, TestSetupError};
use crate::rules::{RuleErrors, RulePack};
use crate::scan;
use crate::scan::pipeline::{envelope_path, file_name, run_facts};

/// Compliance drift scanner for cross-account AWS data access (SageMaker notebooks reading a
/// dataset through S3 access points). `xscan` alone scans with ./xscan.yaml.
#[derive(Debug, Parser)]
#[command(name = "xscan", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub scan: ScanArgs,
    /// Log to stderr: -v for progress of each account, -vv for every API call.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Collect the accounts (or read --snapshot), evaluate the rule pack and report.
    Scan(ScanArgs),
    /// Collect the live configuration of every account into a snapshot (read-only).
    Collect(CollectArgs),
    /// Print the IAM policy xscan needs: exactly the read-only actions the collector calls.
    Permissions {
        /// Print instead the policy of the starting identity (sts:AssumeRole on the audit roles
        /// of --config).
        #[arg(long, conflicts_with = "organization")]
        starting_identity: bool,
        /// Print instead the policy of the identity that reads the organization (a role in the
        /// management account or a delegated administrator: `organization.assume_role`).
        #[arg(long)]
        organization: bool,
        #[arg(long, value_name = "FILE", env = "XSCAN_CONFIG")]
        config: Option<PathBuf>,
    },
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
    /// Combine the snapshots of a sharded collection into one (same config and rule pack).
    Merge {
        /// The shard snapshots (`xscan collect --shard I/N`), every shard once.
        #[arg(required = true)]
        snapshots: Vec<PathBuf>,
        /// Where to write the merged snapshot [default: standard output].
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Every perimeter path of the consumer notebooks, hop by hop: can each read the dataset
    /// through the access point, and can anything leave the perimeter?
    Paths {
        /// A saved snapshot [default: collect live with the configuration].
        #[arg(long, value_name = "FILE")]
        snapshot: Option<PathBuf>,
        /// Configuration file [default: $XSCAN_CONFIG, else ./xscan.yaml].
        #[arg(long, value_name = "FILE", env = "XSCAN_CONFIG")]
        config: Option<PathBuf>,
        /// Only this notebook.
        #[arg(long, value_name = "NAME")]
        notebook: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: EvalFormat,
        /// Send AWS calls to this endpoint when collecting live.
        #[arg(long, value_name = "URL")]
        endpoint_url: Option<String>,
    },
    /// Create an Ed25519 key pair for --sign: PREFIX.key (private, mode 0600) and PREFIX.pub.
    Keygen {
        /// Where to write the keys (PREFIX.key and PREFIX.pub).
        #[arg(long, short, value_name = "PREFIX")]
        output: PathBuf,
    },
    /// Verify signed runs offline: signatures, the files beside each envelope, and the chain
    /// of a history directory (exit 0 all hold, 1 something does not, 2 unusable input).
    Verify {
        /// The signer's public key (PREFIX.pub from `xscan keygen`).
        #[arg(long, value_name = "PUBFILE")]
        key: PathBuf,
        /// Envelopes (`*.dsse.json`) to verify.
        #[arg(required_unless_present = "history")]
        envelopes: Vec<PathBuf>,
        /// Verify every run of a `scan --history` directory and the chain between them.
        #[arg(long, value_name = "DIR")]
        history: Option<PathBuf>,
    },
    /// Show how the configuration changed between two snapshots (exit 1 when it did).
    Diff {
        /// The earlier snapshot.
        old: PathBuf,
        /// The later snapshot.
        new: PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        format: EvalFormat,
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
    /// Send AWS calls to this endpoint (an emulator or private endpoint); AWS_ENDPOINT_URL works too.
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Compare with an earlier scan: a JSON report or a snapshot (evaluated with the same rules).
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Accepted exceptions (YAML, see README.md#waivers) [default: `waivers:` of the config].
    #[arg(long, value_name = "FILE")]
    pub waivers: Option<PathBuf>,
    /// Which failures set exit code 1: any, only new or changed since the baseline, or none.
    #[arg(long, value_enum, default_value = "any")]
    pub fail_on: crate::drift::FailOn,
    /// Templates for --format html (report.html.hbs, style.css.hbs) instead of the built-in ones.
    #[arg(long, value_name = "DIR")]
    pub template_dir: Option<PathBuf>,
    /// Also write the collected snapshot here (evidence to keep and re-evaluate offline).
    #[arg(long, value_name = "FILE")]
    pub save_snapshot: Option<PathBuf>,
    /// Keep each run (snapshot and reports) in DIR/TIMESTAMP/, compare with the previous run
    /// (the baseline unless --baseline is given), and refuse to overlap another run (exit 4).
    #[arg(long, value_name = "DIR")]
    pub history: Option<PathBuf>,
    /// With --history: keep only the last N runs [default: keep all].
    #[arg(long, value_name = "N", requires = "history", value_parser = clap::value_parser!(u32).range(1..))]
    pub keep: Option<u32>,
    /// Sign the run: a DSSE envelope `<output>.dsse.json` (and `run.dsse.json` in a --history
    /// run) attesting every file written. KEY is a file from `xscan keygen` or env:VARIABLE.
    #[arg(long, value_name = "KEY")]
    pub sign: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct CollectArgs {
    /// Configuration file [default: $XSCAN_CONFIG, else ./xscan.yaml].
    #[arg(long, value_name = "FILE", env = "XSCAN_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where to write the snapshot [default: standard output].
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Send AWS calls to this endpoint (an emulator or private endpoint); AWS_ENDPOINT_URL works too.
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Concurrent API calls, 1 to 1024 (overrides collection.concurrency).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub concurrency: Option<u16>,
    /// Collect only shard I of N (0-based): every N-th account in id order. Merge the shards
    /// with `xscan merge`.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<crate::model::Shard>,
    /// The rule pack the snapshot is for (recorded, so that merged shards agree).
    #[arg(long, value_name = "DIR")]
    pub rules: Option<PathBuf>,
    /// Sign the snapshot: a DSSE envelope `<output>.dsse.json` (needs --output). KEY is a
    /// file from `xscan keygen` or env:VARIABLE.
    #[arg(long, value_name = "KEY", requires = "output")]
    pub sign: Option<String>,
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
    /// Write the rules' documentation (one Markdown page per rule and a catalogue).
    Docs {
        #[arg(long, value_name = "DIR")]
        rules: Option<PathBuf>,
        /// Where to write the pages.
        #[arg(long, short, value_name = "DIR", default_value = "docs/rules")]
        output: PathBuf,
    },
    /// Run the rules' test cases.
    Test {
        /// Rule directory [default: the built-in pack].
        dir: Option<PathBuf>,
        /// Also mutate each rule's check one point at a time and run its cases against every
        /// mutant: a mutant no case tells apart survives (exit 1).
        #[arg(long)]
        mutants: bool,
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
    /// Service control policies on the principal's account, one file per level of the
    /// organization, root first (repeat; a file may hold a JSON array: that level's SCPs).
    #[arg(long = "scp", value_name = "FILE")]
    pub scps: Vec<PathBuf>,
    /// Resource control policies on the resource's account, one file per level, root first.
    #[arg(long = "rcp", value_name = "FILE")]
    pub rcps: Vec<PathBuf>,
    /// The organization's management account: SCPs and RCPs do not apply to it.
    #[arg(long, value_name = "ACCOUNT")]
    pub management_account: Option<String>,
    /// Take the SCPs above the principal's account, the RCPs above the resource's account, the
    /// management account and the `aws:*OrgID`/`aws:*OrgPaths` keys from the organization of
    /// this snapshot (`xscan collect` with `organization:`).
    #[arg(long, value_name = "SNAPSHOT", conflicts_with_all = ["scps", "rcps", "management_account"])]
    pub organization: Option<PathBuf>,
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
    #[error(
        "{survived} mutant(s) survived\nhelp: add test cases to the rules named above that tell each mutant apart from the rule"
    )]
    MutantsSurvived { survived: usize },
    #[error(transparent)]
    Collect(#[from] CollectError),
    #[error(transparent)]
    Html(#[from] report::html::HtmlError),
    #[error(transparent)]
    Waivers(#[from] crate::drift::waivers::WaiverError),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error(transparent)]
    Pipeline(#[from] scan::pipeline::PipelineError),
    #[error(transparent)]
    Merge(#[from] crate::model::merge::MergeError),
    #[error(transparent)]
    Attest(#[from] crate::attest::AttestError),
    #[error("{0}")]
    VerificationFailed(String),
    #[error(transparent)]
    Results(#[from] crate::findings::ResultsError),
}

impl CliError {
    /// The documented exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::RuleTestsFailed { .. }
            | CliError::MutantsSurvived { .. }
            | CliError::VerificationFailed(_) => 1,
            CliError::History(HistoryError::Busy { .. }) => 4,
            _ => 2,
        }
    }
}

/// Writes to the output file, or standard output.
///
/// A file is written whole or not at all: into a temporary file beside it, synced, then
/// renamed over the target, so a run killed midway leaves the previous report (a cron job's
/// `--output latest.html`) rather than a cut one. On standard output a closed pipe (`| head`)
/// is not worth a message, but any other write error is: the report was not delivered.
fn emit(output: Option<&Path>, text: &str) -> Result<(), CliError> {
    match output {
        Some(path) => write_atomically(path, text.as_bytes()).map_err(|source| CliError::Write {
            path: path.display().to_string(),
            source,
        }),
        None => {
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Write {
                    path: "standard output".into(),
                    source: e,
                }),
                _ => Ok(()),
            }
        }
    }
}

/// The JSON report, serialized straight into the output (the same bytes as
/// `report::json::render`), atomically for a file.
fn write_json(output: Option<&Path>, report: &crate::findings::Report) -> Result<(), CliError> {
    let write = |out: &mut dyn Write| -> std::io::Result<()> {
        let mut buffered = std::io::BufWriter::with_capacity(1 << 20, out);
        serde_json::to_writer_pretty(&mut buffered, report).map_err(std::io::Error::other)?;
        buffered.write_all(b"\n")?;
        buffered.flush()
    };
    match output {
        Some(path) => {
            write_atomically_with(path, |file| write(file)).map_err(|source| CliError::Write {
                path: path.display().to_string(),
                source,
            })
        }
        None => match write(&mut std::io::stdout().lock()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Write {
                path: "standard output".into(),
                source: e,
            }),
            _ => Ok(()),
        },
    }
}

/// Replaces `path` with `contents` by writing a temporary file in the same directory and
/// renaming it (atomic on POSIX file systems).
fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    write_atomically_with(path, |file| file.write_all(contents))
}

/// Replaces `path` with what `write` writes, through a temporary file renamed into place.
fn write_atomically_with(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?;
    let tmp = dir.join(format!(
        ".{}.xscan-tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = std::fs::File::create(&tmp).and_then(|mut file| {
        write(&mut file)?;
        file.sync_all()
    });
    let renamed = written.and_then(|()| std::fs::rename(&tmp, path));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    renamed
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

impl Cli {
    /// Parses the process's arguments. `xscan [SCAN OPTIONS]` scans; scan options before a
    /// subcommand (`xscan --format sarif diff ...`) are refused rather than ignored, while the
    /// global `-v` may stand on either side of it.
    pub fn parse_args() -> Self {
        use clap::{CommandFactory, FromArgMatches};
        let matches = Self::command().get_matches();
        if matches.subcommand_name().is_some()
            && let Some(id) = matches.ids().find(|id| {
                id.as_str() != "verbose"
                    && matches.value_source(id.as_str())
                        == Some(clap::parser::ValueSource::CommandLine)
            })
        {
            Self::command()
                .error(
                    clap::error::ErrorKind::ArgumentConflict,
                    format!(
                        "--{} belongs to the scan and cannot come before a subcommand; put it after the subcommand",
                        id.as_str().replace('_', "-")
                    ),
                )
                .exit();
        }
        Self::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }
}

/// Runs the parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32, CliError> {
    let verbose = cli.verbose;
    match cli.command {
        None => scan_command(&cli.scan, verbose),
        Some(Command::Scan(args)) => scan_command(&args, verbose),
        Some(Command::Collect(args)) => collect_command(&args, verbose),
        Some(Command::Permissions {
            starting_identity,
            organization,
            config,
        }) => permissions_command(starting_identity, organization, config.as_deref()),
        Some(Command::Rules { command }) => rules_command(command),
        Some(Command::Policy {
            command: PolicyCommand::Eval(args),
        }) => policy_eval(&args),
        Some(Command::Diff { old, new, format }) => diff_command(&old, &new, format),
        Some(Command::Merge { snapshots, output }) => merge_command(&snapshots, output.as_deref()),
        Some(Command::Keygen { output }) => keygen_command(&output),
        Some(Command::Paths {
            snapshot,
            config,
            notebook,
            format,
            endpoint_url,
        }) => paths_command(
            snapshot.as_deref(),
            config.as_deref(),
            notebook.as_deref(),
            format,
            endpoint_url,
            verbose,
        ),
        Some(Command::Verify {
            key,
            envelopes,
            history,
        }) => verify_command(&key, &envelopes, history.as_deref()),
    }
}

/// Reads the config (given or ./xscan.yaml) with its sha256; relative `waivers:` and
/// `account_list.file` paths are resolved against the config file's directory.
fn read_config(given: Option<&Path>) -> Result<Option<(Config, String)>, CliError> {
    let Some(path) = config_path(given) else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let mut config = Config::from_yaml(&path.display().to_string(), &text)?;
    // The account list is part of the configuration's identity.
    let identity = match config.resolve(path.parent().unwrap_or(Path::new(".")))? {
        Some(list) => format!("{text}\0{list}"),
        None => text,
    };
    Ok(Some((config, sha256_hex(identity.as_bytes()))))
}

/// Collects live, with a progress spinner on a terminal.
fn collect_live(
    config: &Config,
    endpoint_url: Option<String>,
    concurrency: Option<usize>,
    shard: Option<crate::model::Shard>,
    verbose: u8,
) -> Result<Snapshot, CliError> {
    let progress = (verbose == 0 && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar.set_message(format!("collecting {} account(s)", config.accounts.len()));
        bar
    });
    let on_call = progress
        .clone()
        .map(|bar| -> std::sync::Arc<dyn Fn(u64) + Send + Sync> {
            std::sync::Arc::new(move |n| bar.set_message(format!("collecting: {n} API calls")))
        });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CollectError::Runtime(e.to_string()))?;
    let options = CollectOptions {
        endpoint_url,
        concurrency,
        on_call,
        shard,
    };
    let result = runtime.block_on(crate::collect::collect(config, &options));
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    Ok(result?)
}

fn collect_command(args: &CollectArgs, verbose: u8) -> Result<i32, CliError> {
    let signer = args
        .sign
        .as_deref()
        .map(crate::attest::SigningIdentity::load)
        .transpose()?;
    let Some((config, config_sha256)) = read_config(args.config.as_deref())? else {
        return Err(CliError::Usage(
            "collection needs a configuration\nhelp: pass --config FILE, set XSCAN_CONFIG, or create ./xscan.yaml (see examples/xscan.yaml)".into(),
        ));
    };
    let pack = load_pack(args.rules.as_deref())?;
    // Discovered accounts are sharded after discovery, inside the collector.
    let mut snapshot = collect_live(
        &config,
        args.endpoint_url.clone(),
        args.concurrency.map(usize::from),
        args.shard,
        verbose,
    )?;
    snapshot.metadata.provenance = Some(crate::model::Provenance {
        config_sha256: Some(config_sha256),
        rule_pack_sha256: pack.digest(),
        shard: args.shard,
    });
    let mut text = snapshot.to_json();
    text.push('\n');
    match (&signer, &args.output) {
        (Some(signer), Some(output)) => {
            let artifacts = [crate::attest::Artifact {
                name: file_name(output),
                contents: text.as_bytes(),
            }];
            let predicate = crate::attest::collect_predicate(&snapshot, &run_facts(None));
            let envelope = signer.envelope(&crate::attest::statement(&artifacts, predicate));
            emit_signed(output, &text, &envelope)?;
        }
        _ => emit(args.output.as_deref(), &text)?,
    }
    // A snapshot with gaps is still written; the exit code says it is incomplete.
    Ok(if snapshot.metadata.collection_gaps.is_empty() {
        0
    } else {
        3
    })
}

fn permissions_command(
    starting_identity: bool,
    organization: bool,
    config: Option<&Path>,
) -> Result<i32, CliError> {
    let policy = if organization {
        crate::collect::permissions::organization_reader_policy()
    } else if starting_identity {
        let roles: Vec<String> = match read_config(config)? {
            Some((c, _)) => {
                let settings = c.organization.as_ref();
                c.accounts
                    .iter()
                    .filter_map(|a| a.assume_role.clone())
                    // The organization's reader, and every discovered account's audit role.
                    .chain(settings.and_then(|o| o.assume_role.clone()))
                    .chain(
                        settings
                            .and_then(|o| o.discover.as_ref())
                            .map(|d| d.assume_role.replace("{account}", "*")),
                    )
                    .collect()
            }
            None => Vec::new(),
        };
        crate::collect::permissions::starting_identity_policy(&roles)
    } else {
        crate::collect::permissions::audit_role_policy()
    };
    emit(
        None,
        &format!(
            "{}\n",
            serde_json::to_string_pretty(&policy).unwrap_or_default()
        ),
    )?;
    Ok(0)
}

fn scan_command(args: &ScanArgs, verbose: u8) -> Result<i32, CliError> {
    // A key that cannot sign stops the run before anything is collected or written.
    let signer = args
        .sign
        .as_deref()
        .map(crate::attest::SigningIdentity::load)
        .transpose()?;
    if signer.is_some() && args.output.is_none() && args.history.is_none() {
        return Err(CliError::Usage(
            "--sign needs --output FILE or --history DIR: the envelope is written beside the files it attests\nhelp: e.g. xscan scan --format html -o report.html --sign xscan.key".into(),
        ));
    }
    // The lock comes first: an overlapping run must not even start collecting.
    let history = args.history.as_deref().map(History::open).transpose()?;
    let pack = load_pack(args.rules.as_deref())?;
    let (config, config_sha256) = match read_config(args.config.as_deref())? {
        Some((c, sha)) => (Some(c), Some(sha)),
        None => (None, None),
    };
    let waivers = match args
        .waivers
        .clone()
        .or_else(|| config.as_ref().and_then(|c| c.waivers.clone()))
    {
        Some(path) => {
            let known = pack.rules.iter().map(|r| r.spec.id.clone()).collect();
            Some(Waivers::load(&path, &known)?)
        }
        None => None,
    };
    // The text is kept only where it is written again (history) or attested (--sign): a large
    // estate's snapshot is otherwise read without holding its text at all.
    let keeps_text = history.is_some() || signer.is_some();
    let (snapshot, snapshot_text, snapshot_sha256) = match (&args.snapshot, &config) {
        (Some(path), _) if !keeps_text => {
            let (snapshot, sha256) = Snapshot::read_file(path)?;
            (snapshot, None, sha256)
        }
        (Some(path), _) => {
            let text = read_snapshot_text(path)?;
            let sha256 = sha256_hex(text.as_bytes());
            (
                Snapshot::from_json(&path.display().to_string(), &text)?,
                Some(text),
                sha256,
            )
        }
        (None, Some(config)) => {
            let mut snapshot =
                collect_live(config, args.endpoint_url.clone(), None, None, verbose)?;
            snapshot.metadata.provenance = Some(crate::model::Provenance {
                config_sha256: config_sha256.clone(),
                rule_pack_sha256: pack.digest(),
                shard: None,
            });
            let mut text = snapshot.to_json();
            text.push('\n');
            if let Some(path) = &args.save_snapshot {
                emit(Some(path), &text)?;
            }
            let sha256 = sha256_hex(text.as_bytes());
            (snapshot, keeps_text.then_some(text), sha256)
        }
        (None, None) => {
            return Err(CliError::Usage(
                "nothing to scan: no --snapshot and no configuration to collect with\nhelp: pass --config FILE (or create ./xscan.yaml) to collect live, or --snapshot FILE (try examples/estate.snapshot.json)".into(),
            ));
        }
    };
    let evaluation = scan::pipeline::Evaluation {
        pack: &pack,
        config: config.as_ref(),
        config_sha256: config_sha256.clone(),
        min_severity: args.min_severity,
        waivers: waivers.as_ref(),
        spill_at: spill_at()?,
    };
    let mut report = evaluation.report(&snapshot, snapshot_sha256)?;
    let baseline = match (&args.baseline, &history) {
        (Some(path), _) => Some(evaluation.baseline(path)?),
        (None, Some(history)) => evaluation.previous_run(history)?,
        (None, None) => None,
    };
    if let Some(baseline) = &baseline {
        baseline.compare(&mut report, &snapshot)?;
    }
    let signing = signer.as_ref().map(|signer| {
        (
            signer.key_id.clone(),
            scan::pipeline::envelope_name(args.output.as_deref()),
        )
    });
    if args.format == Format::Json && signer.is_none() && history.is_none() {
        // Written as it is serialized: a report of a large estate is not built as one string.
        write_json(args.output.as_deref(), &report)?;
        return Ok(if args.exit_zero {
            0
        } else {
            crate::drift::exit_code(&report, args.fail_on)
        });
    }
    let rendered = render_signed(
        &report,
        args.format,
        args,
        args.output.is_none(),
        signing.clone(),
    )?;
    match (&signer, &args.output) {
        (Some(signer), Some(output)) => {
            let envelope = scan::pipeline::SignedReport {
                output,
                rendered: &rendered,
                snapshot_file: args.snapshot.as_deref().or(args.save_snapshot.as_deref()),
                snapshot_text: snapshot_text.as_deref().unwrap_or_default(),
            }
            .envelope(signer, &report, &run_facts(None));
            emit_signed(output, &rendered, &envelope)?;
        }
        _ => emit(args.output.as_deref(), &rendered)?,
    }
    if let Some(history) = &history {
        // The requested format as kept: a table uncoloured.
        let kept = match args.format {
            Format::Table => std::borrow::Cow::Owned(render(&report, Format::Table, args, false)?),
            _ => std::borrow::Cow::Borrowed(rendered.as_str()),
        };
        let run = scan::pipeline::keep_run(
            history,
            &scan::pipeline::HistoryRun {
                report: &report,
                snapshot_text: snapshot_text.as_deref().unwrap_or_default(),
                format: args.format,
                rendered: &kept,
                signer: signer.as_ref(),
                facts: &run_facts,
            },
        )?;
        tracing::info!(run = %run.display(), "history run written");
        if let Some(keep) = args.keep {
            for removed in history.prune(keep as usize)? {
                tracing::info!(run = %removed, "history run removed (--keep)");
            }
        }
    }
    Ok(if args.exit_zero {
        0
    } else {
        crate::drift::exit_code(&report, args.fail_on)
    })
}

/// Renders the report; colour only for a terminal that wants it.
fn render(
    report: &crate::findings::Report,
    format: Format,
    args: &ScanArgs,
    to_terminal: bool,
) -> Result<String, CliError> {
    render_signed(report, format, args, to_terminal, None)
}

/// [`render`], with the signing key id and envelope name the HTML report shows.
fn render_signed(
    report: &crate::findings::Report,
    format: Format,
    args: &ScanArgs,
    to_terminal: bool,
    signing: Option<(String, String)>,
) -> Result<String, CliError> {
    let rendered = match format {
        Format::Table => {
            let color = to_terminal
                && std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none();
            report::table::render(report, color)
        }
        Format::Json => report::json::render(report),
        Format::Sarif => report::sarif::render(report),
        Format::Ocsf => report::ocsf::render(report),
        Format::Asff => report::asff::render(report),
        Format::Junit => report::junit::render(report),
        Format::Svg => report::svg::render(report),
        Format::Html => {
            let mut options = html_options(report, args.template_dir.clone());
            if let Some((key_id, envelope)) = signing {
                options.signing_key_id = Some(key_id);
                options.envelope_name = Some(envelope);
            }
            report::html::render(report, &options)?
        }
    };
    // A spilled result that could not be read back would be missing from what was rendered.
    report.results.check()?;
    Ok(rendered)
}

/// Results held in memory before a scan spills them to a temporary file: `XSCAN_SPILL_AT`,
/// else [`crate::findings::results::SPILL_AT`].
fn spill_at() -> Result<usize, CliError> {
    match std::env::var("XSCAN_SPILL_AT") {
        Err(std::env::VarError::NotPresent) => Ok(crate::findings::results::SPILL_AT),
        Ok(text) => text.trim().parse().map_err(|_| {
            CliError::Usage(format!(
                "XSCAN_SPILL_AT is `{text}`, not a number of results\nhelp: give a whole number from 0 (every result spilled) up, or unset it for {}",
                crate::findings::results::SPILL_AT
            ))
        }),
        Err(std::env::VarError::NotUnicode(_)) => Err(CliError::Usage(
            "XSCAN_SPILL_AT is not text\nhelp: give a whole number of results, or unset it".into(),
        )),
    }
}

fn read_snapshot_text(path: &Path) -> Result<String, CliError> {
    Ok(
        std::fs::read_to_string(path).map_err(|source| ModelError::Read {
            path: path.display().to_string(),
            source,
        })?,
    )
}

/// `xscan merge`: one snapshot from the shards of one sharded collection.
fn merge_command(paths: &[PathBuf], output: Option<&Path>) -> Result<i32, CliError> {
    let shards = paths
        .iter()
        .map(|path| {
            let origin = path.display().to_string();
            let (snapshot, _) = Snapshot::read_file(path)?;
            Ok((origin, snapshot))
        })
        .collect::<Result<Vec<_>, CliError>>()?;
    let merged = crate::model::merge::merge(shards)?;
    let mut text = merged.to_json();
    text.push('\n');
    emit(output, &text)?;
    Ok(if merged.metadata.collection_gaps.is_empty() {
        0
    } else {
        3
    })
}

/// `xscan diff OLD NEW`: exit 0 when the configuration is the same, 1 when it changed.
fn diff_command(old: &Path, new: &Path, format: EvalFormat) -> Result<i32, CliError> {
    // Neither file's text is held: two large estates are already twice the memory of one.
    let load = |path: &Path| -> Result<Snapshot, CliError> { Ok(Snapshot::read_file(path)?.0) };
    let changes = crate::drift::diff::diff_snapshots(&load(old)?, &load(new)?);
    let text = match format {
        EvalFormat::Text => crate::drift::diff::render_text(&changes),
        EvalFormat::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&changes).unwrap_or_default()
        ),
    };
    emit(None, &text)?;
    Ok(i32::from(!changes.is_empty()))
}

/// The facts the HTML report shows besides the report: deterministic for the same inputs
/// (generated_at is the scan's finish time unless SOURCE_DATE_EPOCH is set).
fn html_options(
    report: &crate::findings::Report,
    template_dir: Option<PathBuf>,
) -> report::html::HtmlOptions {
    let generated_at = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        .unwrap_or(report.scan.finished_at);
    let facts = run_facts(None);
    report::html::HtmlOptions {
        generated_at,
        host: facts.host,
        command_line: facts.command,
        template_dir,
        signing_key_id: None,
        envelope_name: None,
    }
}

/// Who ran this and how: the command line (xscan takes no secrets as arguments) and the host.
/// Writes `text` to `output` and the envelope beside it; if the envelope cannot be written,
/// the output is removed again: no unsigned output is left behind.
fn emit_signed(output: &Path, text: &str, envelope: &serde_json::Value) -> Result<(), CliError> {
    emit(Some(output), text)?;
    let envelope_text = format!(
        "{}\n",
        serde_json::to_string_pretty(envelope).unwrap_or_default()
    );
    if let Err(e) = emit(Some(&envelope_path(output)), &envelope_text) {
        let _ = std::fs::remove_file(output);
        return Err(e);
    }
    Ok(())
}

/// `xscan paths`: exit 0 when every intended path is allowed and no egress path is open, 1
/// when one is broken or open, 3 when a path could not be evaluated.
fn paths_command(
    snapshot: Option<&Path>,
    config: Option<&Path>,
    notebook: Option<&str>,
    format: EvalFormat,
    endpoint_url: Option<String>,
    verbose: u8,
) -> Result<i32, CliError> {
    let Some((config, _)) = read_config(config)? else {
        return Err(CliError::Usage(
            "paths need a configuration (the perimeter's access points and account roles)\nhelp: pass --config FILE, set XSCAN_CONFIG, or create ./xscan.yaml".into(),
        ));
    };
    let snapshot = match snapshot {
        Some(path) => Snapshot::read_file(path)?.0,
        None => collect_live(&config, endpoint_url, None, None, verbose)?,
    };
    let results = crate::paths::analyze(&snapshot, &config, notebook);
    emit(
        None,
        &report::paths::render(&results, matches!(format, EvalFormat::Json)),
    )?;
    use crate::paths::Answer;
    let broken = results.iter().any(|r| {
        (r.kind == "intended" && r.answer == Answer::Refused)
            || (r.kind == "egress" && r.answer == Answer::Allowed)
    });
    let unknown = results.iter().any(|r| r.answer == Answer::NotEvaluated);
    Ok(if unknown {
        3
    } else if broken {
        1
    } else {
        0
    })
}

fn keygen_command(prefix: &Path) -> Result<i32, CliError> {
    let (key, public, id) = crate::attest::keygen(prefix)?;
    emit(
        None,
        &format!(
            "private key: {} (mode 0600; keep it secret, e.g. as a CI secret for --sign env:NAME)\npublic key:  {} (give it to whoever verifies)\nkey id:      {id}\n",
            key.display(),
            public.display()
        ),
    )?;
    Ok(0)
}

fn verify_command(
    key: &Path,
    envelopes: &[PathBuf],
    history: Option<&Path>,
) -> Result<i32, CliError> {
    let public = crate::attest::load_public(key)?;
    let id = crate::attest::key_id(&public);
    let mut out = String::new();
    let mut problems = Vec::new();
    for envelope in envelopes {
        let checked = crate::attest::verify(envelope, &public)?;
        if checked.problems.is_empty() {
            out.push_str(&format!(
                "OK {}: signed by {id}; {} file(s) match\n",
                envelope.display(),
                checked.subjects.len()
            ));
        }
        problems.extend(checked.problems);
    }
    if let Some(dir) = history {
        let (runs, found) = crate::attest::verify_history(dir, &public)?;
        if found.is_empty() {
            out.push_str(&format!(
                "OK {}: {runs} run(s), every one signed by {id}, files intact, chain unbroken\n",
                dir.display()
            ));
        }
        problems.extend(found);
    }
    for problem in &problems {
        out.push_str(&format!("FAILED {}\n", crate::text::visible(problem)));
    }
    emit(None, &out)?;
    if problems.is_empty() {
        Ok(0)
    } else {
        Err(CliError::VerificationFailed(format!(
            "{} problem(s) found\nhelp: the files above do not match what was signed with this key",
            problems.len()
        )))
    }
}

fn rules_command(command: RulesCommand) -> Result<i32, CliError> {
    match command {
        RulesCommand::List { rules, format } => {
            let pack = load_pack(rules.as_deref())?;
            let text = match format {
                ListFormat::Json => report::rules::list_json(&pack),
                ListFormat::Table => report::rules::list_table(&pack),
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
            emit(None, &report::rules::explain(rule))?;
            Ok(0)
        }
        RulesCommand::Docs { rules, output } => {
            let pack = load_pack(rules.as_deref())?;
            std::fs::create_dir_all(&output).map_err(|source| CliError::Write {
                path: output.display().to_string(),
                source,
            })?;
            let files = crate::rules::docs::generate(&pack);
            for (name, text) in &files {
                emit(Some(&output.join(name)), text)?;
            }
            emit(
                None,
                &format!("{} page(s) written to {}\n", files.len(), output.display()),
            )?;
            Ok(0)
        }
        RulesCommand::Test { dir, mutants: true } => {
            let pack = load_pack(dir.as_deref())?;
            let report = testing::run_mutants(&pack)?;
            let out = report::rules::mutants(&pack, &report);
            emit(None, &out)?;
            if !report.broken_rules.is_empty() {
                Err(CliError::RuleTestsFailed {
                    failed: report.broken_rules.len(),
                })
            } else if report.survivors.is_empty() {
                Ok(0)
            } else {
                Err(CliError::MutantsSurvived {
                    survived: report.survivors.len(),
                })
            }
        }
        RulesCommand::Test { dir, .. } => {
            let pack = load_pack(dir.as_deref())?;
            let outcomes = testing::run_pack(&pack)?;
            let failed = outcomes.iter().filter(|o| !o.passed()).count();
            let out = report::rules::test_outcomes(&pack, &outcomes);
            emit(None, &out)?;
            if failed == 0 {
                Ok(0)
            } else {
                Err(CliError::RuleTestsFailed { failed })
            }
        }
    }
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

/// One level of SCPs or RCPs: a policy document, or a JSON array of them.
fn read_policy_level(path: &Path) -> Result<Vec<Policy>, CliError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::Usage(format!(
            "cannot read policy {name}: {e}\nhelp: pass a JSON policy document file (or a JSON array of them for one level)"
        ))
    })?;
    let text = crate::input::strip_bom(&text);
    if text.trim_start().starts_with('[') {
        let documents = crate::input::parse_json(text)
            .map_err(|e| PolicyError::new(&name, None, format!("not valid JSON: {e}")))?;
        documents
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(i, d)| Ok(Policy::from_value(&format!("{name}[{i}]"), d)?))
            .collect()
    } else {
        Ok(vec![Policy::parse_text(&name, text)?])
    }
}

/// The organization's layers of a request, from the snapshot at `path`.
fn organization_layers(
    path: &Path,
    request: &mut Request,
    args: &PolicyEvalArgs,
) -> Result<(crate::model::RequestLayers, Option<String>), CliError> {
    let snapshot = Snapshot::load(path)?;
    let Some(org) = snapshot.organization else {
        return Err(CliError::Usage(format!(
            "{} holds no organization\nhelp: collect it with `organization:` in xscan.yaml (README.md#accounts-from-aws-organizations)",
            path.display()
        )));
    };
    let resource_account = args
        .bucket_account
        .clone()
        .filter(|_| args.bucket_policy.is_some())
        .or_else(|| request.resource_owner());
    let layers = org
        .request_layers(request, resource_account.as_deref())
        .map_err(|reason| {
            CliError::Usage(format!(
                "the organization in {}: {reason}\nhelp: collect it again with the permissions of `xscan permissions --organization`",
                path.display()
            ))
        })?;
    Ok((layers, org.management_account_id))
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
    let check = |policy: &Policy, kind: PolicyKind| -> Result<(), CliError> {
        match policy.statement_without_principal(kind) {
            Some(statement) => Err(CliError::Policy(PolicyError::new(
                &policy.name,
                Some(statement.index),
                "a resource-based or VPC endpoint policy statement must have a Principal (AWS refuses the document without one)",
            ))),
            None => Ok(()),
        }
    };
    if let Some(policy) = &resource {
        check(policy, kind)?;
    }
    for policy in &endpoint {
        check(policy, PolicyKind::Endpoint)?;
    }
    let set = PolicySet {
        identity: identity.iter().collect(),
        resource: resource.as_ref().map(|p| (p, kind)),
        endpoint: endpoint.iter().collect(),
    };
    let scps = args
        .scps
        .iter()
        .map(|p| read_policy_level(p))
        .collect::<Result<Vec<_>, _>>()?;
    let rcps = args
        .rcps
        .iter()
        .map(|p| read_policy_level(p))
        .collect::<Result<Vec<_>, _>>()?;
    for level in &rcps {
        for policy in level {
            check(policy, PolicyKind::Resource)?;
        }
    }
    // From a snapshot's organization: the levels above the two accounts, parsed.
    let collected = match &args.organization {
        Some(path) => Some(organization_layers(path, &mut request, args)?),
        None => None,
    };
    let organization = match &collected {
        Some((layers, management_account)) => policy::Organization {
            scp_levels: layers
                .scps
                .iter()
                .map(|l| l.iter().map(|p| &**p).collect())
                .collect(),
            rcp_levels: layers
                .rcps
                .iter()
                .map(|l| l.iter().map(|p| &**p).collect())
                .collect(),
            management_account: management_account.clone(),
        },
        None => policy::Organization {
            scp_levels: scps.iter().map(|level| level.iter().collect()).collect(),
            rcp_levels: rcps.iter().map(|level| level.iter().collect()).collect(),
            management_account: args.management_account.clone(),
        },
    };
    let bucket_policy = args.bucket_policy.as_deref().map(read_policy).transpose()?;
    if let Some(policy) = &bucket_policy {
        check(policy, PolicyKind::Resource)?;
    }
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
            policy::evaluate_via_access_point_in(
                &request,
                &policy::AccessPointLayers {
                    identity: set.identity.clone(),
                    endpoint: set.endpoint.clone(),
                    access_point: resource.as_ref(),
                    bucket_policy: Some(bucket_policy),
                    bucket: bucket.clone(),
                    bucket_account: args.bucket_account.clone().unwrap_or(ap_account),
                },
                &organization,
            )
        }
        _ => policy::evaluate_in(&request, &set, &organization),
    };
    let mut evaluation = evaluation;
    if let Some((layers, _)) = &collected {
        evaluation.warnings.extend(layers.warnings.iter().cloned());
    }
    let text = match args.format {
        EvalFormat::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&evaluation).unwrap_or_default()
        ),
        EvalFormat::Text => report::evaluation::text(&evaluation),
    };
    emit(None, &text)?;
    Ok(0)
}
