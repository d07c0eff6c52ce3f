//! The scan pipeline after collection, as a library: evaluate a snapshot (rules, then
//! waivers), read a baseline (a JSON report or a snapshot, told apart by its
//! `schema_version`) and compare with it, and keep a history run (its files, signed as a
//! chain). The command line parses arguments, calls these and maps errors to exit codes.

use std::path::{Path, PathBuf};

use crate::attest::{Artifact, RunFacts, SigningIdentity};
use crate::config::Config;
use crate::drift::history::{self, History, HistoryError, RunFile};
use crate::drift::waivers::Waivers;
use crate::findings::{Report, ResultsError, Severity, sha256_hex};
use crate::model::{ModelError, Snapshot};
use crate::report::Format;
use crate::rules::RulePack;

use super::ScanInputs;

/// Errors of the pipeline's inputs.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(
        "baseline {origin}{problem}\nhelp: pass a file written by `xscan scan --format json` or `xscan collect`"
    )]
    Baseline { origin: String, problem: String },
    #[error(
        "the previous run {run} cannot be read as this run's baseline: {problem}\nhelp: move that run out of the history directory (or delete its `latest` file) and run again; the next run then starts without a baseline. --baseline FILE compares with another file instead"
    )]
    PreviousRun { run: String, problem: String },
    #[error(transparent)]
    Snapshot(#[from] ModelError),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error(transparent)]
    Results(#[from] ResultsError),
}

/// How every snapshot of a run is evaluated: the scan's and a snapshot baseline's alike (the
/// same pack, configuration, threshold and waivers; waivers judged on the day each snapshot
/// was collected).
pub struct Evaluation<'a> {
    pub pack: &'a RulePack,
    pub config: Option<&'a Config>,
    pub config_sha256: Option<String>,
    pub min_severity: Severity,
    pub waivers: Option<&'a Waivers>,
    /// Results beyond which they are spilled ([`crate::findings::results::SPILL_AT`], or
    /// `XSCAN_SPILL_AT`).
    pub spill_at: usize,
}

impl Evaluation<'_> {
    /// The report of `snapshot` (whose bytes hash to `snapshot_sha256`), waivers applied.
    pub fn report(
        &self,
        snapshot: &Snapshot,
        snapshot_sha256: String,
    ) -> Result<Report, ResultsError> {
        let mut report = super::run(&ScanInputs {
            snapshot,
            snapshot_sha256,
            pack: self.pack,
            config: self.config,
            config_sha256: self.config_sha256.clone(),
            min_severity: self.min_severity,
            spill_at: self.spill_at,
        })?;
        if let Some(waivers) = self.waivers {
            waivers.apply(&mut report, snapshot.metadata.finished_at.date_naive())?;
        }
        Ok(report)
    }

    /// Reads a baseline: a JSON report as is, or a snapshot evaluated as this run is.
    pub fn baseline(&self, path: &Path) -> Result<Baseline, PipelineError> {
        let origin = path.display().to_string();
        let invalid = |problem: String| PipelineError::Baseline {
            origin: origin.clone(),
            problem,
        };
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Read {
            path: origin.clone(),
            source,
        })?;
        let text = crate::input::strip_bom(&text);
        // A baseline is JSON from another run: a repeated key is refused as in every input.
        crate::input::check_json(text).map_err(|p| invalid(format!(":{p}")))?;
        let version = serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|v| v.get("schema_version")?.as_str().map(str::to_string));
        let sha256 = sha256_hex(text.as_bytes());
        match version.as_deref() {
            Some(crate::findings::report::REPORT_SCHEMA_VERSION) => Ok(Baseline {
                report: serde_json::from_str(text)
                    .map_err(|e| invalid(format!(" is not a valid xscan report: {e}")))?,
                sha256,
                snapshot: None,
            }),
            Some(crate::model::SNAPSHOT_SCHEMA_VERSION) => {
                let snapshot = Snapshot::from_json(&origin, text)?;
                Ok(Baseline {
                    report: self.report(&snapshot, sha256.clone())?,
                    sha256,
                    snapshot: Some(snapshot),
                })
            }
            _ => Err(invalid(
                " is neither an xscan report nor a snapshot".to_string(),
            )),
        }
    }

    /// The previous run of `history` as a baseline (its snapshot, else its report), if any; a
    /// run that cannot be read names itself and how to get past it.
    pub fn previous_run(&self, history: &History) -> Result<Option<Baseline>, PipelineError> {
        let Some(run) = history.latest()? else {
            return Ok(None);
        };
        let snapshot = run.join(history::SNAPSHOT_FILE);
        let path = if snapshot.exists() {
            snapshot
        } else {
            run.join(history::REPORT_FILE)
        };
        self.baseline(&path)
            .map(Some)
            .map_err(|e| PipelineError::PreviousRun {
                run: run.display().to_string(),
                problem: e
                    .to_string()
                    .split("\nhelp:")
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            })
    }
}

/// A baseline as read: its report, the sha256 of the file, and the snapshot when the file was
/// one (configuration changes can then be shown).
#[derive(Debug)]
pub struct Baseline {
    pub report: Report,
    pub sha256: String,
    pub snapshot: Option<Snapshot>,
}

impl Baseline {
    /// Marks each result of `report` new, unchanged, changed or resolved against this
    /// baseline, and adds the configuration changes when both sides are snapshots.
    pub fn compare(&self, report: &mut Report, snapshot: &Snapshot) -> Result<(), ResultsError> {
        let mut drift = crate::drift::compare(&self.report, &self.sha256, report)?;
        if let Some(old) = &self.snapshot {
            drift.config_changes = crate::drift::diff::diff_snapshots(old, snapshot);
        }
        report.drift = Some(drift);
        Ok(())
    }
}

/// The file a history run keeps of the requested format, besides the JSON report: its name.
pub fn kept_file_name(format: Format) -> Option<&'static str> {
    match format {
        Format::Json => None,
        Format::Table => Some("report.txt"),
        Format::Sarif => Some("report.sarif"),
        Format::Html => Some("report.html"),
        Format::Ocsf => Some("report.ocsf.json"),
        Format::Asff => Some("report.asff.json"),
        Format::Junit => Some("report.junit.xml"),
        Format::Svg => Some("perimeter.svg"),
    }
}

/// What a history run holds.
pub struct HistoryRun<'a> {
    pub report: &'a Report,
    /// The snapshot evaluated, as read or written.
    pub snapshot_text: &'a str,
    pub format: Format,
    /// The requested format as kept (a table uncoloured); the JSON report when it is JSON.
    pub rendered: &'a str,
    /// Signs the run's files and names the previous run's envelope: the chain.
    pub signer: Option<&'a SigningIdentity>,
    /// Who ran it, given the previous envelope's digest.
    pub facts: &'a dyn Fn(Option<String>) -> RunFacts,
}

/// Writes `run` as the newest run of `history`; returns its directory.
pub fn keep_run(history: &History, run: &HistoryRun<'_>) -> Result<PathBuf, PipelineError> {
    let json = match run.format {
        Format::Json => run.rendered.to_string(),
        _ => crate::report::json::render(run.report),
    };
    run.report.results.check()?;
    let mut files = vec![
        RunFile {
            name: history::SNAPSHOT_FILE,
            contents: run.snapshot_text.as_bytes(),
        },
        RunFile {
            name: history::REPORT_FILE,
            contents: json.as_bytes(),
        },
    ];
    if let Some(name) = kept_file_name(run.format) {
        files.push(RunFile {
            name,
            contents: run.rendered.as_bytes(),
        });
    }
    let envelope_text = match run.signer {
        Some(signer) => {
            let previous = history
                .latest()?
                .and_then(|dir| std::fs::read(dir.join(crate::attest::RUN_ENVELOPE)).ok())
                .map(|bytes| format!("sha256:{}", sha256_hex(&bytes)));
            let artifacts: Vec<Artifact> = files
                .iter()
                .map(|f| Artifact {
                    name: f.name.to_string(),
                    contents: f.contents,
                })
                .collect();
            let predicate = crate::attest::scan_predicate(run.report, &(run.facts)(previous));
            let envelope = signer.envelope(&crate::attest::statement(&artifacts, predicate));
            Some(format!(
                "{}\n",
                serde_json::to_string_pretty(&envelope).unwrap_or_default()
            ))
        }
        None => None,
    };
    if let Some(text) = &envelope_text {
        files.push(RunFile {
            name: crate::attest::RUN_ENVELOPE,
            contents: text.as_bytes(),
        });
    }
    Ok(history.commit(chrono::Utc::now(), &files)?)
}

/// What `scan --sign --output FILE` attests: the report as written and, when the snapshot
/// evaluated (given, or saved from this collection) lies in the same directory, that snapshot.
pub struct SignedReport<'a> {
    pub output: &'a Path,
    pub rendered: &'a str,
    pub snapshot_file: Option<&'a Path>,
    pub snapshot_text: &'a str,
}

impl SignedReport<'_> {
    /// The envelope to write beside the report.
    pub fn envelope(
        &self,
        signer: &SigningIdentity,
        report: &Report,
        facts: &RunFacts,
    ) -> serde_json::Value {
        let mut artifacts = vec![Artifact {
            name: file_name(self.output),
            contents: self.rendered.as_bytes(),
        }];
        let dir_of = |p: &Path| {
            std::fs::canonicalize(p)
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
        };
        let output_dir = self.output.parent().and_then(|d| {
            std::fs::canonicalize(if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            })
            .ok()
        });
        if let Some(file) = self.snapshot_file
            && let Some(dir) = dir_of(file)
            && Some(dir) == output_dir
        {
            artifacts.push(Artifact {
                name: file_name(file),
                contents: self.snapshot_text.as_bytes(),
            });
        }
        let predicate = crate::attest::scan_predicate(report, facts);
        signer.envelope(&crate::attest::statement(&artifacts, predicate))
    }
}

/// Who ran this process and how (for the attestation's predicate), given the previous
/// envelope's digest in a history chain.
pub fn run_facts(previous_envelope: Option<String>) -> RunFacts {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let args: Vec<String> = std::env::args().skip(1).collect();
    RunFacts {
        command: format!("xscan {}", args.join(" ")),
        host,
        previous_envelope,
    }
}

/// `FILE.dsse.json` beside `output`.
pub fn envelope_path(output: &Path) -> PathBuf {
    let mut name = output.as_os_str().to_owned();
    name.push(".dsse.json");
    PathBuf::from(name)
}

/// The name of the envelope that signs `output` (a history run's when there is none), as the
/// HTML report shows it.
pub fn envelope_name(output: Option<&Path>) -> String {
    match output {
        Some(output) => file_name(&envelope_path(output)),
        None => crate::attest::RUN_ENVELOPE.to_string(),
    }
}

/// The last component of `path`.
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack() -> RulePack {
        RulePack::embedded().unwrap()
    }

    fn evaluation(pack: &RulePack) -> Evaluation<'_> {
        Evaluation {
            pack,
            config: None,
            config_sha256: None,
            min_severity: Severity::Info,
            waivers: None,
            spill_at: crate::findings::results::SPILL_AT,
        }
    }

    /// The pipeline works without the command line: a snapshot baseline is evaluated like
    /// the scan, a report baseline read as is, anything else refused with a help line.
    #[test]
    fn baselines_are_told_apart_and_compared() {
        let pack = pack();
        let evaluation = evaluation(&pack);
        let dir = std::env::temp_dir().join(format!("xscan-pipeline-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text = pack.fixture_snapshot.clone().unwrap();
        let snapshot = Snapshot::from_json("fixture", &text).unwrap();
        let snapshot_file = dir.join("old.json");
        std::fs::write(&snapshot_file, &text).unwrap();
        let baseline = evaluation.baseline(&snapshot_file).unwrap();
        assert!(baseline.snapshot.is_some());
        let mut report = evaluation
            .report(&snapshot, sha256_hex(text.as_bytes()))
            .unwrap();
        baseline.compare(&mut report, &snapshot).unwrap();
        let drift = report.drift.as_ref().unwrap();
        assert!(drift.config_changes.is_empty());
        let report_file = dir.join("old-report.json");
        std::fs::write(&report_file, crate::report::json::render(&report)).unwrap();
        let from_report = evaluation.baseline(&report_file).unwrap();
        assert!(from_report.snapshot.is_none());
        assert_eq!(from_report.report.results.len(), report.results.len());
        let other = dir.join("other.json");
        std::fs::write(&other, r#"{"schema_version": "something/v9"}"#).unwrap();
        let error = evaluation.baseline(&other).unwrap_err().to_string();
        assert!(
            error.contains("neither an xscan report nor a snapshot"),
            "{error}"
        );
        assert!(error.contains("help:"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
