//! The results of a scan, held in memory or spilled to a temporary file.
//!
//! A large estate's results are most of what a scan holds: at 227,000 notebooks, 2.7 million
//! results and their evidence were 300 MB of a 960 MB run, and the parts they share another
//! 120 MB. The evaluator writes them to a spill file instead, once there are more than
//! [`SPILL_AT`], and every reader (renderers, drift, waivers) goes through [`Results::iter`],
//! which reads them back one at a time, in the same order and with the same content.
//!
//! The spill file is unlinked as soon as it is made, so that nothing is left behind by a run
//! that is killed. A spilled result that cannot be read back is never skipped: iteration
//! stops, the failure is kept, and [`Results::check`] (called before a report is delivered)
//! and the report's serialization return it.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufRead, BufWriter, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use super::report::AppliedWaiver;
use super::{BaselineState, Evidence, Finding, ResourceRef, RuleHead, Status, Summary};

/// Results beyond which a scan spills them: about 30 MB held (at some 115 bytes a result
/// with its share of the evidence), the size of a scan of some 20,000 notebooks.
pub const SPILL_AT: usize = 250_000;

/// A spilled result that could not be written or read back.
#[derive(Debug, thiserror::Error)]
#[error(
    "the scan's results could not be {action} its spill file in {dir}: {reason}\nhelp: the results of a large scan are kept in a temporary file while the report is made; check the free space there, or set TMPDIR to a directory with room"
)]
pub struct ResultsError {
    action: &'static str,
    dir: String,
    reason: String,
}

impl ResultsError {
    /// Results that could not be written to a spill file.
    pub fn written(reason: impl std::fmt::Display) -> Self {
        Self::new("written to", reason)
    }

    /// Results that could not be read back from a spill file.
    pub fn read(reason: impl std::fmt::Display) -> Self {
        Self::new("read back from", reason)
    }

    fn new(action: &'static str, reason: impl std::fmt::Display) -> Self {
        Self {
            action,
            dir: std::env::temp_dir().display().to_string(),
            reason: reason.to_string(),
        }
    }
}

/// The results of a scan, in report order (by rule, then resource).
pub struct Results {
    store: Store,
}

enum Store {
    Held(Vec<Finding>),
    Spilled(Arc<Spilled>),
}

/// Results in a spill file, one compact JSON line each.
struct Spilled {
    file: SpillFile,
    /// The rules the lines name by position.
    rules: Vec<Arc<RuleHead>>,
    len: usize,
    /// The results counted as they were written: the summary does not read them again.
    counted: Summary,
    /// The first failure to read the file back, once there was one.
    failure: Mutex<Option<String>>,
}

impl Results {
    /// Results held in memory.
    pub fn held(findings: Vec<Finding>) -> Self {
        Self {
            store: Store::Held(findings),
        }
    }

    /// How many results there are.
    pub fn len(&self) -> usize {
        match &self.store {
            Store::Held(findings) => findings.len(),
            Store::Spilled(spilled) => spilled.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The summary of spilled results, counted as they were written.
    pub fn counted(&self) -> Option<&Summary> {
        match &self.store {
            Store::Held(_) => None,
            Store::Spilled(spilled) => Some(&spilled.counted),
        }
    }

    /// Whether the results are in a spill file.
    pub fn is_spilled(&self) -> bool {
        matches!(self.store, Store::Spilled(_))
    }

    /// The results in order: borrowed when held, read back one at a time when spilled. A
    /// result that cannot be read back ends the iteration; [`Results::check`] then says why.
    pub fn iter(&self) -> Iter<'_> {
        match &self.store {
            Store::Held(findings) => Iter(Reading::Held(findings.iter())),
            Store::Spilled(spilled) => Iter(Reading::Spilled {
                spilled,
                lines: Box::new(decode(
                    spilled.file.range(0, spilled.file.len),
                    &spilled.rules,
                )),
                left: spilled.len,
            }),
        }
    }

    /// The failure that ended an iteration of spilled results, if one did.
    pub fn check(&self) -> Result<(), ResultsError> {
        match &self.store {
            Store::Held(_) => Ok(()),
            Store::Spilled(spilled) => match spilled
                .failure
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
            {
                Some(reason) => Err(ResultsError::read(reason)),
                None => Ok(()),
            },
        }
    }

    /// Changes every result with `change`, in order: in place when held, by writing a new
    /// spill file when spilled.
    pub fn update(&mut self, mut change: impl FnMut(&mut Finding)) -> Result<(), ResultsError> {
        match &mut self.store {
            Store::Held(findings) => {
                findings.iter_mut().for_each(change);
                Ok(())
            }
            Store::Spilled(spilled) => {
                let mut writer =
                    SpillWriter::new(spilled.rules.clone()).map_err(ResultsError::written)?;
                for finding in self.iter_owned() {
                    let mut finding = finding?;
                    change(&mut finding);
                    writer.push(&finding).map_err(ResultsError::written)?;
                }
                *self = writer.finish()?;
                Ok(())
            }
        }
    }

    /// Each result owned, with a read failure as an item.
    fn iter_owned(&self) -> impl Iterator<Item = Result<Finding, ResultsError>> + '_ {
        let mut results = self.iter();
        let mut failed = false;
        std::iter::from_fn(move || {
            if failed {
                return None;
            }
            match results.next() {
                Some(finding) => Some(Ok(finding.into_owned())),
                None => {
                    failed = true;
                    self.check().err().map(Err)
                }
            }
        })
    }

    /// Every result, held (what a test compares).
    pub fn to_vec(&self) -> Result<Vec<Finding>, ResultsError> {
        self.iter_owned().collect()
    }
}

/// The results of [`Results::iter`].
pub struct Iter<'a>(Reading<'a>);

enum Reading<'a> {
    Held(std::slice::Iter<'a, Finding>),
    Spilled {
        spilled: &'a Spilled,
        lines: Box<dyn Iterator<Item = Result<Finding, String>> + 'a>,
        left: usize,
    },
}

impl<'a> Iterator for Iter<'a> {
    type Item = Cow<'a, Finding>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            Reading::Held(findings) => findings.next().map(Cow::Borrowed),
            Reading::Spilled {
                spilled,
                lines,
                left,
            } => {
                if *left == 0 {
                    return None;
                }
                let read = lines
                    .next()
                    .unwrap_or_else(|| Err(format!("{left} results were missing at its end")));
                match read {
                    Ok(finding) => {
                        *left -= 1;
                        Some(Cow::Owned(finding))
                    }
                    Err(reason) => {
                        *left = 0;
                        spilled
                            .failure
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .get_or_insert(reason);
                        None
                    }
                }
            }
        }
    }
}

impl Clone for Results {
    fn clone(&self) -> Self {
        Self {
            store: match &self.store {
                Store::Held(findings) => Store::Held(findings.clone()),
                // The file is not changed once written: `update` writes another.
                Store::Spilled(spilled) => Store::Spilled(spilled.clone()),
            },
        }
    }
}

impl std::fmt::Debug for Results {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.store {
            Store::Held(findings) => findings.fmt(f),
            Store::Spilled(spilled) => write!(f, "Results(spilled: {})", spilled.len),
        }
    }
}

/// Equal when the same results are in the same order, however they are held.
impl PartialEq for Results {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self.iter().zip(other.iter()).all(|(a, b)| a == b)
            && self.check().is_ok()
            && other.check().is_ok()
    }
}

/// Written as the list of results, read back from the spill file one at a time.
impl Serialize for Results {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut list = serializer.serialize_seq(Some(self.len()))?;
        for finding in self.iter() {
            list.serialize_element(&*finding)?;
        }
        self.check().map_err(serde::ser::Error::custom)?;
        list.end()
    }
}

impl<'de> Deserialize<'de> for Results {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<Finding>::deserialize(deserializer).map(Self::held)
    }
}

/// Writes results, in order, to a new spill file.
pub struct SpillWriter {
    out: BufWriter<SpillFile>,
    rules: Vec<Arc<RuleHead>>,
    len: usize,
    counted: Summary,
    line: Vec<u8>,
}

impl SpillWriter {
    /// A writer whose results are of `rules` (and of any other rule met, added as met).
    pub fn new(rules: Vec<Arc<RuleHead>>) -> io::Result<Self> {
        Ok(Self {
            out: BufWriter::with_capacity(1 << 16, SpillFile::create()?),
            rules,
            len: 0,
            counted: Summary::empty(),
            line: Vec::new(),
        })
    }

    /// Writes `finding` after those written before.
    pub fn push(&mut self, finding: &Finding) -> io::Result<()> {
        self.line.clear();
        encode(finding, &mut self.rules, &mut self.line)?;
        self.out.write_all(&self.line)?;
        self.len += 1;
        self.counted.add(finding);
        Ok(())
    }

    /// Writes a line another spill file holds as it is (`head` read from it), its rule
    /// named by the same place in this writer's rules.
    pub fn push_line(&mut self, line: &[u8], head: &LineHead<'_>) -> io::Result<()> {
        let rule = self.rules.get(head.rule).ok_or_else(|| {
            io::Error::other(format!(
                "a result names rule {}, which it does not hold",
                head.rule
            ))
        })?;
        self.counted.add_parts(&rule.id, rule.severity, head.status);
        self.out.write_all(line)?;
        self.len += 1;
        Ok(())
    }

    /// The results written.
    pub fn finish(self) -> Result<Results, ResultsError> {
        let file = self
            .out
            .into_inner()
            .map_err(|e| ResultsError::written(e.error()))?;
        Ok(Results {
            store: Store::Spilled(Arc::new(Spilled {
                file,
                rules: self.rules,
                len: self.len,
                counted: self.counted,
                failure: Mutex::new(None),
            })),
        })
    }
}

/// Appends `finding` to `out` as one line, its rule named by its place in `rules` (added
/// there when new).
fn encode(finding: &Finding, rules: &mut Vec<Arc<RuleHead>>, out: &mut Vec<u8>) -> io::Result<()> {
    let rule = match rules
        .iter()
        .position(|r| Arc::ptr_eq(r, &finding.rule) || **r == *finding.rule)
    {
        Some(at) => at,
        None => {
            rules.push(finding.rule.clone());
            rules.len() - 1
        }
    };
    encode_line(finding, rule, out)
}

/// Appends `finding` to `out` as one line, naming its rule by `rule`, its place in the list
/// the lines are read back with.
pub fn encode_line(finding: &Finding, rule: usize, out: &mut Vec<u8>) -> io::Result<()> {
    serde_json::to_writer(
        &mut *out,
        &SpilledAsWritten {
            rule,
            status: finding.status,
            resource: &finding.resource,
            message: &finding.message,
            evidence: &finding.evidence,
            baseline_state: finding.baseline_state,
            waiver: finding.waiver.as_deref(),
        },
    )?;
    out.push(b'\n');
    Ok(())
}

/// Reads back the lines `encode` wrote, naming their rules from `rules`. Each line is read
/// whole, then parsed from memory (parsing from the reader itself was most of a spilled
/// scan's time).
pub fn decode<'a, R: Read + 'a>(
    lines: R,
    rules: &'a [Arc<RuleHead>],
) -> impl Iterator<Item = Result<Finding, String>> + 'a {
    let mut lines = Lines::new(lines);
    std::iter::from_fn(move || match lines.next_line() {
        Ok(None) => None,
        Ok(Some(line)) => Some(decode_line(line, rules)),
        Err(e) => Some(Err(e.to_string())),
    })
}

/// The lines of a spill file, read one at a time into one buffer.
pub struct Lines<R> {
    reader: io::BufReader<R>,
    line: Vec<u8>,
}

impl<R: Read> Lines<R> {
    pub fn new(reader: R) -> Self {
        Self {
            reader: io::BufReader::with_capacity(1 << 16, reader),
            line: Vec::new(),
        }
    }

    /// The next line, with its line feed; `None` at the end.
    pub fn next_line(&mut self) -> io::Result<Option<&[u8]>> {
        self.line.clear();
        match self.reader.read_until(b'\n', &mut self.line)? {
            0 => Ok(None),
            _ => Ok(Some(&self.line)),
        }
    }
}

/// One line `encode` wrote, read back whole.
pub fn decode_line(line: &[u8], rules: &[Arc<RuleHead>]) -> Result<Finding, String> {
    serde_json::from_slice::<SpilledFinding>(line)
        .map_err(|e| e.to_string())?
        .into_finding(rules)
}

/// What ordering and counting need of a spilled line, read without its evidence.
#[derive(Deserialize)]
pub struct LineHead<'l> {
    pub rule: usize,
    pub status: Status,
    #[serde(borrow)]
    pub resource: LineResource<'l>,
}

/// A spilled line's resource, as far as its ARN.
#[derive(Deserialize)]
pub struct LineResource<'l> {
    #[serde(borrow)]
    pub arn: Cow<'l, str>,
}

impl<'l> LineHead<'l> {
    pub fn of(line: &'l [u8]) -> Result<Self, String> {
        serde_json::from_slice(line).map_err(|e| e.to_string())
    }
}

/// A result as a spill file line.
#[derive(Serialize)]
struct SpilledAsWritten<'a> {
    rule: usize,
    status: Status,
    resource: &'a ResourceRef,
    message: &'a str,
    evidence: &'a [Evidence],
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline_state: Option<BaselineState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    waiver: Option<&'a AppliedWaiver>,
}

/// A spill file line read back.
#[derive(Deserialize)]
struct SpilledFinding {
    rule: usize,
    status: Status,
    resource: ResourceRef,
    message: Arc<str>,
    evidence: Arc<[Evidence]>,
    #[serde(default)]
    baseline_state: Option<BaselineState>,
    #[serde(default)]
    waiver: Option<Box<AppliedWaiver>>,
}

impl SpilledFinding {
    fn into_finding(self, rules: &[Arc<RuleHead>]) -> Result<Finding, String> {
        let rule = rules
            .get(self.rule)
            .ok_or_else(|| format!("a result names rule {}, which it does not hold", self.rule))?;
        Ok(Finding {
            rule: rule.clone(),
            status: self.status,
            resource: Arc::new(self.resource),
            message: self.message,
            evidence: self.evidence,
            baseline_state: self.baseline_state,
            waiver: self.waiver,
        })
    }
}

/// A temporary file, unlinked once made: read at any offset by any number of readers, and
/// gone with the process however it ends.
pub struct SpillFile {
    file: File,
    len: u64,
}

impl SpillFile {
    /// A new empty spill file in the temporary directory.
    pub fn create() -> io::Result<Self> {
        static MADE: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir();
        let mut attempt = 0;
        loop {
            let path: PathBuf = dir.join(format!(
                "xscan-results-{}-{}.jsonl",
                std::process::id(),
                MADE.fetch_add(1, Ordering::Relaxed)
            ));
            match File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => {
                    // Unlinked at once: the open file stays readable and writable.
                    std::fs::remove_file(&path)?;
                    return Ok(Self { file, len: 0 });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => {
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `bytes`, returning where they start.
    pub fn append(&mut self, bytes: &[u8]) -> io::Result<u64> {
        let at = self.len;
        self.write_all(bytes)?;
        Ok(at)
    }

    /// A reader of the bytes from `start` to `end`, independent of any other.
    pub fn range(&self, start: u64, end: u64) -> SpillRange<'_> {
        SpillRange {
            file: &self.file,
            at: start,
            end,
        }
    }
}

impl Write for SpillFile {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let written = write_at(&self.file, bytes, self.len)?;
        self.len += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Part of a spill file, read from its start.
pub struct SpillRange<'a> {
    file: &'a File,
    at: u64,
    end: u64,
}

impl Read for SpillRange<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = usize::try_from(self.end.saturating_sub(self.at)).unwrap_or(usize::MAX);
        let want = buf.len().min(left);
        if want == 0 {
            return Ok(0);
        }
        let read = read_at(self.file, &mut buf[..want], self.at)?;
        self.at += read as u64;
        Ok(read)
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, at)
}

#[cfg(unix)]
fn write_at(file: &File, buf: &[u8], at: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::write_at(file, buf, at)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, at)
}

#[cfg(windows)]
fn write_at(file: &File, buf: &[u8], at: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_write(file, buf, at)
}

impl<'a> IntoIterator for &'a Results {
    type Item = Cow<'a, Finding>;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl FromIterator<Finding> for Results {
    fn from_iter<I: IntoIterator<Item = Finding>>(findings: I) -> Self {
        Self::held(findings.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::Severity;
    use crate::model::ResourceType;

    fn finding(arn: &str, status: Status) -> Finding {
        Finding::new(
            "XS-T-001",
            "title",
            Severity::High,
            status,
            ResourceRef {
                resource_type: ResourceType::SecurityGroup,
                id: arn.into(),
                arn: arn.into(),
                account: "111111111111".into(),
                region: Some("us-east-1".into()),
            },
            "message",
            vec![Evidence {
                path: "egress".into(),
                value: serde_json::json!([{"cidr": "0.0.0.0/0", "port": 443.5}]).into(),
            }],
        )
    }

    fn spilled(findings: &[Finding]) -> Results {
        let mut writer = SpillWriter::new(Vec::new()).unwrap();
        for f in findings {
            writer.push(f).unwrap();
        }
        writer.finish().unwrap()
    }

    /// Spilled results read back equal, in order, serialize as held ones do, and are changed
    /// by `update` as held ones are.
    #[test]
    fn spilled_results_read_back_and_change_as_held_ones() {
        let findings = vec![
            finding("arn:a", Status::Pass),
            finding("arn:b", Status::Fail),
            finding("arn:c", Status::Error),
        ];
        let mut held = Results::held(findings.clone());
        let mut spill = spilled(&findings);
        assert!(spill.is_spilled() && !held.is_spilled());
        assert_eq!(spill.len(), 3);
        assert_eq!(spill.to_vec().unwrap(), findings);
        assert_eq!(spill, held);
        assert_eq!(
            serde_json::to_string(&spill).unwrap(),
            serde_json::to_string(&held).unwrap()
        );
        let waive = |f: &mut Finding| {
            if f.status == Status::Fail {
                f.status = Status::Waived;
            }
            f.baseline_state = Some(BaselineState::New);
        };
        assert_eq!(Summary::of(&spill), Summary::of(&held));
        held.update(waive).unwrap();
        spill.update(waive).unwrap();
        assert_eq!(spill.to_vec().unwrap(), held.to_vec().unwrap());
        // Counted again as changed, without reading them back.
        assert_eq!(spill.counted().unwrap().count(Status::Waived), 1);
        assert_eq!(Summary::of(&spill), Summary::of(&held));
        assert_eq!(spill.iter().nth(1).unwrap().status, Status::Waived);
        // Two readers at once each read from the start.
        let (mut one, mut two) = (spill.iter(), spill.iter());
        assert_eq!(one.next().unwrap().resource.arn, "arn:a");
        assert_eq!(two.next().unwrap().resource.arn, "arn:a");
        assert_eq!(one.next().unwrap().resource.arn, "arn:b");
        assert!(spill.check().is_ok());
    }

    /// A spill file that cannot be read back whole (a line cut or missing) is an error for
    /// every reader, with a help line, never a shorter list of results.
    #[test]
    fn a_spill_that_cannot_be_read_back_is_an_error() {
        let findings = vec![
            finding("arn:a", Status::Pass),
            finding("arn:b", Status::Fail),
        ];
        let whole = spilled(&findings);
        let Store::Spilled(whole) = &whole.store else {
            panic!("spilled");
        };
        let mut file = SpillFile::create().unwrap();
        let mut bytes = vec![0u8; usize::try_from(whole.file.len()).unwrap()];
        whole
            .file
            .range(0, whole.file.len())
            .read_exact(&mut bytes)
            .unwrap();
        for cut in [
            // The second line cut short.
            &bytes[..bytes.len() - 10],
            // The second line missing.
            &bytes[..bytes.iter().position(|b| *b == b'\n').unwrap() + 1],
        ] {
            file.len = 0;
            file.append(cut).unwrap();
            let broken = Results {
                store: Store::Spilled(Arc::new(Spilled {
                    file: SpillFile {
                        file: file.file.try_clone().unwrap(),
                        len: file.len,
                    },
                    rules: whole.rules.clone(),
                    len: 2,
                    counted: whole.counted.clone(),
                    failure: Mutex::new(None),
                })),
            };
            assert_eq!(broken.iter().count(), 1);
            let error = broken.check().unwrap_err().to_string();
            assert!(error.contains("could not be read back"), "{error}");
            assert!(error.contains("help: "), "{error}");
            assert!(serde_json::to_string(&broken).is_err());
            assert!(broken.to_vec().is_err());
            assert!(broken.clone().update(|_| ()).is_err());
            assert_ne!(broken, Results::held(findings.clone()));
        }
    }
}
