//! The history directory of scheduled scans (`--history DIR`): one sub-directory per run with
//! a timestamped name, a `latest` file naming the last complete run (the next run's baseline),
//! and the last N runs kept.
//!
//! Safe under overlap and kills: a run holds an exclusive lock on `DIR/.lock` (released by the
//! kernel when the process dies, so a killed run leaves no stale lock); a run is written into a
//! `.tmp-*` directory and renamed into place, and `latest` is replaced by rename, so no reader
//! ever sees a half-written run or pointer. Leftover `.tmp-*` directories of killed runs are
//! removed by the next run.

use std::fs::{self, File, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

/// The name of the pointer file.
pub const LATEST: &str = "latest";
/// The snapshot of a run.
pub const SNAPSHOT_FILE: &str = "snapshot.json";
/// The JSON report of a run.
pub const REPORT_FILE: &str = "report.json";
const LOCK_FILE: &str = ".lock";
const TMP_PREFIX: &str = ".tmp-";

/// Errors of the history directory.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(
        "another xscan run holds the lock on {path} (pid {holder})\nhelp: runs of one history directory cannot overlap; this one stops without writing anything. If scans take longer than their schedule, space them further apart"
    )]
    Busy { path: String, holder: String },
    #[error(
        "{action} {path}: {source}\nhelp: check that the history directory is writable and on a local file system"
    )]
    Io {
        action: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path} names run `{run}`, which is not a run of this history directory\nhelp: delete {path}; the next run starts without a baseline"
    )]
    BadPointer { path: String, run: String },
}

/// Where a symbolic link points, for messages.
fn link_target(path: &Path) -> String {
    fs::read_link(path).map_or_else(|_| "?".into(), |t| t.display().to_string())
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> HistoryError {
    let path = path.display().to_string();
    move |source| HistoryError::Io {
        action,
        path,
        source,
    }
}

/// An open history directory, locked for this run until dropped.
#[derive(Debug)]
pub struct History {
    dir: PathBuf,
    /// Holding the file holds the lock.
    _lock: File,
}

/// One file of a run.
pub struct RunFile<'a> {
    pub name: &'a str,
    pub contents: &'a [u8],
}

impl History {
    /// Opens (creating) `dir` and takes its lock without waiting.
    pub fn open(dir: &Path) -> Result<Self, HistoryError> {
        fs::create_dir_all(dir).map_err(io("cannot create", dir))?;
        let lock_path = dir.join(LOCK_FILE);
        let mut lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&lock_path)
            .map_err(io("cannot open", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = fs::read_to_string(&lock_path)
                    .ok()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "unknown".into());
                return Err(HistoryError::Busy {
                    path: lock_path.display().to_string(),
                    holder,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io("cannot lock", &lock_path)(e)),
        }
        // Who holds it, for the message a second run prints.
        let _ = lock.set_len(0);
        let _ = writeln!(lock, "{}", std::process::id());
        let history = Self {
            dir: dir.to_path_buf(),
            _lock: lock,
        };
        history.remove_leftovers();
        Ok(history)
    }

    /// Removes `.tmp-*` directories of runs that were killed before they completed.
    fn remove_leftovers(&self) {
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                    let _ = fs::remove_dir_all(entry.path());
                }
            }
        }
    }

    /// The directory of the last complete run, if any.
    pub fn latest(&self) -> Result<Option<PathBuf>, HistoryError> {
        let pointer = self.dir.join(LATEST);
        let run = match fs::read_to_string(&pointer) {
            Ok(text) => text.trim().to_string(),
            // A `latest` that is a link to nothing is a broken pointer, not a first run:
            // treating it as none would drop the drift comparison and overwrite the link.
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && fs::symlink_metadata(&pointer).is_err() =>
            {
                return Ok(None);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(HistoryError::BadPointer {
                    path: pointer.display().to_string(),
                    run: format!("{} (a link to a missing file)", link_target(&pointer)),
                });
            }
            Err(e) => return Err(io("cannot read", &pointer)(e)),
        };
        let path = self.dir.join(&run);
        if !is_run_name(&run) || !path.is_dir() {
            return Err(HistoryError::BadPointer {
                path: pointer.display().to_string(),
                run,
            });
        }
        Ok(Some(path))
    }

    /// Writes a complete run: files into a temporary directory, renamed to its timestamped
    /// name, then `latest` replaced. Returns the run's directory.
    pub fn commit(
        &self,
        started_at: DateTime<Utc>,
        files: &[RunFile<'_>],
    ) -> Result<PathBuf, HistoryError> {
        let base = started_at.format("%Y%m%dT%H%M%SZ").to_string();
        let mut name = base.clone();
        let mut n = 1;
        while self.dir.join(&name).exists() {
            n += 1;
            name = format!("{base}-{n}");
        }
        let tmp = self
            .dir
            .join(format!("{TMP_PREFIX}{name}-{}", std::process::id()));
        fs::create_dir(&tmp).map_err(io("cannot create", &tmp))?;
        for file in files {
            let path = tmp.join(file.name);
            let mut f = File::create(&path).map_err(io("cannot write", &path))?;
            f.write_all(file.contents)
                .and_then(|()| f.sync_all())
                .map_err(io("cannot write", &path))?;
        }
        let run = self.dir.join(&name);
        fs::rename(&tmp, &run).map_err(io("cannot rename into", &run))?;
        let pointer_tmp = self.dir.join(format!("{TMP_PREFIX}{LATEST}"));
        let mut f = File::create(&pointer_tmp).map_err(io("cannot write", &pointer_tmp))?;
        writeln!(f, "{name}")
            .and_then(|()| f.sync_all())
            .map_err(io("cannot write", &pointer_tmp))?;
        let pointer = self.dir.join(LATEST);
        fs::rename(&pointer_tmp, &pointer).map_err(io("cannot rename into", &pointer))?;
        Ok(run)
    }

    /// Deletes the oldest runs beyond `keep` (the latest run is always kept). Returns the
    /// removed run names.
    pub fn prune(&self, keep: usize) -> Result<Vec<String>, HistoryError> {
        let mut runs = self.runs()?;
        let latest = self
            .latest()?
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
        let excess = runs.len().saturating_sub(keep.max(1));
        let mut removed = Vec::new();
        for name in runs.drain(..excess) {
            if Some(&name) == latest.as_ref() {
                continue;
            }
            let path = self.dir.join(&name);
            fs::remove_dir_all(&path).map_err(io("cannot remove", &path))?;
            removed.push(name);
        }
        Ok(removed)
    }

    /// The complete runs, oldest first.
    pub fn runs(&self) -> Result<Vec<String>, HistoryError> {
        let mut runs: Vec<String> = fs::read_dir(&self.dir)
            .map_err(io("cannot list", &self.dir))?
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| is_run_name(n))
            .collect();
        // Names are timestamps with an optional `-N` suffix: order by (timestamp, N).
        runs.sort_by_key(|n| {
            let (stamp, suffix) = n.split_once('-').unwrap_or((n, "1"));
            (stamp.to_string(), suffix.parse::<u32>().unwrap_or(1))
        });
        Ok(runs)
    }
}

/// `20261128T194758Z` or `20261128T194758Z-2`.
fn is_run_name(name: &str) -> bool {
    let (stamp, suffix) = name.split_once('-').unwrap_or((name, "1"));
    stamp.len() == 16
        && chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ").is_ok()
        && suffix.parse::<u32>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "xscan-history-{}-{}",
            std::process::id(),
            Utc::now().timestamp_nanos_opt().unwrap_or(0)
        ));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn runs_latest_and_pruning() {
        let dir = temp();
        let h = History::open(&dir).unwrap();
        assert!(h.latest().unwrap().is_none());
        let file = [RunFile {
            name: "report.json",
            contents: b"{}",
        }];
        let first = h.commit(at("2026-11-28T01:00:00Z"), &file).unwrap();
        let second = h.commit(at("2026-11-28T01:00:00Z"), &file).unwrap();
        assert!(second.ends_with("20261128T010000Z-2"), "{second:?}");
        assert_eq!(h.latest().unwrap().unwrap(), second);
        h.commit(at("2026-11-29T01:00:00Z"), &file).unwrap();
        assert_eq!(h.runs().unwrap().len(), 3);
        assert_eq!(h.prune(2).unwrap(), vec!["20261128T010000Z".to_string()]);
        assert!(!first.exists());
        assert_eq!(h.runs().unwrap().len(), 2);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_second_open_is_refused_until_the_first_is_dropped() {
        let dir = temp();
        let first = History::open(&dir).unwrap();
        let err = History::open(&dir).unwrap_err();
        assert!(matches!(err, HistoryError::Busy { .. }), "{err}");
        assert!(err.to_string().contains("help:"));
        drop(first);
        fs::create_dir(dir.join(".tmp-20261128T010000Z-99")).unwrap();
        let _again = History::open(&dir).unwrap();
        assert!(!dir.join(".tmp-20261128T010000Z-99").exists());
        fs::remove_dir_all(dir).unwrap();
    }
}
