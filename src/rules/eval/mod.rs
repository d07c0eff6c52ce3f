//! Pure evaluation: snapshot + rules + parameters -> findings. Never prints, never fails as a
//! whole: every (rule, resource) in scope gets pass, fail, error or skipped, with the evidence
//! it was decided on. Missing inputs become `error`, never `pass`.
//!
//! Here: the scheduler, the results a gap gives, parameters and the condition tree; the
//! conditions themselves are in `conditions`, the policy analyses in `analyses`.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Value, json};

use crate::findings::results::{self, SpillFile, SpillWriter};
use crate::findings::{
    Evidence, EvidenceValue, Finding, PathAnswer, ResourceRef, Results, ResultsError, Status,
};
use crate::model::{AccountRole, ResourceType, Snapshot};
use crate::policy::{Policy, PolicyError};

mod analyses;
mod conditions;

use analyses::{Mitigations, note_mitigations};

use super::LoadedRule;
use super::index::{Entry, SnapshotIndex};
use super::spec::{Condition, Quantifier};

/// The three outcomes of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Pass,
    Fail,
    Error,
}

/// An outcome with its explanation and the values it was decided on.
#[derive(Debug, Clone)]
struct Verdict {
    outcome: Outcome,
    message: String,
    evidence: Vec<Evidence>,
}

impl Verdict {
    fn new(outcome: Outcome, message: String, evidence: Vec<Evidence>) -> Self {
        Self {
            outcome,
            message,
            evidence,
        }
    }
}

/// Where a condition is evaluated: a resource, and the value paths are relative to (the
/// resource itself, or one element of a list inside it).
#[derive(Clone, Copy)]
struct Scope<'v> {
    entry: usize,
    /// The value paths are read in: `None` for the entry's own view (its fields read from the
    /// snapshot as asked for), else a list item inside it.
    value: Option<&'v Value>,
    /// Prefix for evidence paths (`egress[2].`, `subnet subnet-1: `).
    prefix: &'v str,
    /// True at the resource's top level (collection errors apply to its fields).
    top_level: bool,
}

/// A region (None: account-wide) and why its population is unknown.
type RegionGap = (Option<String>, String);

/// Evaluates rules over one snapshot.
pub struct Evaluator<'a> {
    snapshot: &'a Snapshot,
    index: SnapshotIndex<'a>,
    parameters: BTreeMap<String, Value>,
    configured_accounts: Vec<(String, AccountRole)>,
    /// What is kept of each entry while rules read it: parsed policies, shared evidence and a
    /// notebook's paths, by entry. `evaluate_all` forgets an entry once its rules are done.
    caches: Mutex<FastMap<usize, EntryCache>>,
    /// Evidence values by content, so that a document in many resources (a templated policy)
    /// is held once.
    shared_content: Mutex<ContentSet<SameJson>>,
    /// The parts of the notebooks' paths by content: most hops, questions and answers are the
    /// same for every notebook of a fleet, and the path rules' evidence holds them once.
    shared_paths: Mutex<PathParts>,
    /// Whether evidence parts are shared across entries (`shared_content`, `shared_paths`):
    /// not while results are spilled, where nothing would hold them but those tables.
    share_across: AtomicBool,
    /// Parameters whose derivation met a collection gap, with the reason.
    parameter_gaps: BTreeMap<String, String>,
    /// The perimeter the notebooks' paths are found against (`path` checks), when a
    /// configuration gave it.
    perimeter: Option<crate::paths::Perimeter<'a>>,
}

/// What the evaluation keeps of one entry while rules read it.
#[derive(Default)]
struct EntryCache {
    /// Parsed policies by the path they were read at (with its prefix) and record.
    policies: FastMap<(String, usize), ParsedPolicy>,
    /// Shared evidence by the path it was read at, so that a document that is evidence for
    /// several rules is one value.
    evidence: FastMap<(String, EvidenceOf), Arc<Value>>,
    /// A notebook's perimeter paths (as `paths::compact` keeps them), their parts shared.
    paths: Option<Arc<Vec<SharedPath>>>,
    /// Its identity in results, shared by the results on it.
    resource: Option<Arc<ResourceRef>>,
}

/// One path of a notebook as the path rules read it: its question and hops shared with every
/// other notebook's equal ones.
pub(super) struct SharedPath {
    pub(super) kind: &'static str,
    pub(super) question: Arc<str>,
    pub(super) answer: crate::paths::Answer,
    pub(super) hops: Arc<[Arc<crate::paths::Hop>]>,
}

/// The parts of paths made so far, by content (see `Evaluator::shared_paths`).
#[derive(Default)]
struct PathParts {
    hops: ContentSet<Arc<crate::paths::Hop>>,
    questions: ContentSet<Arc<str>>,
    answers: ContentSet<Arc<PathAnswer>>,
}

/// `item` as held in `set`: the equal one already there, else `item` shared and kept for the
/// next (a hop, an answer, a `String` or an `Arc<str>` alike; made shared only when new).
fn intern<T, I>(set: &mut ContentSet<Arc<T>>, item: I) -> Arc<T>
where
    T: ?Sized + Eq + std::hash::Hash,
    I: std::borrow::Borrow<T> + Into<Arc<T>>,
{
    if let Some(known) = set.get(item.borrow()) {
        return known.clone();
    }
    let item = item.into();
    set.insert(item.clone());
    item
}

/// Where a value was read: the entry and the path (with its scope's prefix, which names the
/// list item or related resource it went through). The same place always holds the same value.
type ReadAt = (usize, String);

/// A set of values compared by content. Hashing whole JSON trees with SipHash was 7% of a
/// large scan; foldhash is several times faster and still seeded per process.
type ContentSet<T> = HashSet<T, foldhash::fast::RandomState>;

/// The evaluator's own maps, made and dropped for every entry: hashed as [`ContentSet`] is.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A policy record parsed, or why it could not be.
type ParsedPolicy = Result<Arc<Policy>, PolicyError>;

/// What a rule needs before any resource (see `Evaluator::plan`).
/// How `evaluate_all` shares the work out (see [`Evaluator::schedule`]).
struct Schedule<'i> {
    plans: Vec<RulePlan>,
    /// Each type evaluated, with its rules in pack order.
    by_type: Vec<(ResourceType, Vec<usize>)>,
    /// Each rule's place in `by_type`.
    type_of_rule: Vec<usize>,
    /// Runs of one type's entries (by its place in `by_type`), in ARN order.
    tasks: Vec<(usize, &'i [usize])>,
}

struct RulePlan {
    /// Shared by all the rule's results.
    head: Arc<crate::findings::RuleHead>,
    /// `${perimeter.*}` parameters it reads that the configuration does not give.
    missing: Vec<String>,
    /// Parameters it reads whose derivation met a collection gap, with why.
    gapped: Vec<String>,
    reads_prefix_lists: bool,
}

/// What a shared evidence value holds of the value read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum EvidenceOf {
    /// The value itself.
    Itself,
    /// The `document` of a policy record, or of each record of a list.
    Documents,
}

impl<'a> Evaluator<'a> {
    /// Builds the index. `accounts` are the accounts in scope with their roles (from the
    /// config); one missing from the snapshot makes every rule that applies to it `error`.
    pub fn new(
        snapshot: &'a Snapshot,
        parameters: BTreeMap<String, Value>,
        accounts: Vec<(String, AccountRole)>,
    ) -> Self {
        let roles = accounts.clone();
        let role_of =
            move |account: &str| roles.iter().find(|(id, _)| id == account).map(|(_, r)| *r);
        Self {
            snapshot,
            index: SnapshotIndex::build(snapshot, &role_of),
            parameters,
            configured_accounts: accounts,
            caches: Mutex::new(FastMap::default()),
            shared_content: Mutex::new(ContentSet::default()),
            shared_paths: Mutex::new(PathParts::default()),
            share_across: AtomicBool::new(true),
            parameter_gaps: BTreeMap::new(),
            perimeter: None,
        }
    }

    /// The perimeter the notebooks' paths are found against, for `path` checks: each
    /// notebook's paths are found when a rule first asks ([`crate::paths::Perimeter`]).
    pub fn with_perimeter(mut self, config: &'a crate::config::Config) -> Self {
        self.perimeter = Some(crate::paths::Perimeter::new(self.snapshot, config));
        self
    }

    /// The cache of entry `i`, locked.
    fn cache_of<T>(&self, i: usize, read: impl FnOnce(&mut EntryCache) -> T) -> T {
        let mut caches = self.caches.lock().unwrap_or_else(PoisonError::into_inner);
        read(caches.entry(i).or_default())
    }

    /// Drops what is kept of entry `i` (its rules are done; another entry's rule that reads it
    /// again through a relation makes it again, the same).
    fn forget(&self, i: usize) {
        self.caches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&i);
    }

    /// The perimeter paths of notebook entry `i`, found once while it is kept; `None` without
    /// a perimeter.
    fn paths_of(&self, i: usize) -> Option<Arc<Vec<SharedPath>>> {
        let perimeter = self.perimeter.as_ref()?;
        let entry = &self.index.entries[i];
        if entry.resource_type != ResourceType::SagemakerNotebook {
            return Some(Arc::new(Vec::new()));
        }
        if let Some(known) = self.cache_of(i, |c| c.paths.clone()) {
            return Some(known);
        }
        // Found outside the lock: another worker may find the same paths meanwhile.
        let found = crate::paths::compact(perimeter.paths_of(
            entry.account,
            entry.region.unwrap_or_default(),
            entry.id,
        ));
        let found = Arc::new(self.share_paths(found));
        self.cache_of(i, |c| c.paths = Some(found.clone()));
        Some(found)
    }

    /// `paths` with their questions and hops replaced by the equal ones already held.
    fn share_paths(&self, paths: Vec<crate::paths::PathResult>) -> Vec<SharedPath> {
        let mut own = PathParts::default();
        let mut across = self.shares_across().then(|| {
            self.shared_paths
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        });
        let parts = across.as_deref_mut().unwrap_or(&mut own);
        paths
            .into_iter()
            .map(|path| SharedPath {
                kind: path.kind,
                question: intern(&mut parts.questions, path.question),
                answer: path.answer,
                hops: path
                    .hops
                    .into_iter()
                    .map(|hop| intern(&mut parts.hops, hop))
                    .collect(),
            })
            .collect()
    }

    /// `answer` as held by the path rules' evidence: the equal one already made, else itself.
    fn share_answer(&self, answer: PathAnswer) -> Arc<PathAnswer> {
        if !self.shares_across() {
            return Arc::new(answer);
        }
        let mut parts = self
            .shared_paths
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        intern(&mut parts.answers, answer)
    }

    /// The identity of entry `i` in results: made once while it is kept, so that the results
    /// on it share one.
    fn resource_of(&self, i: usize) -> Arc<ResourceRef> {
        if let Some(known) = self.cache_of(i, |c| c.resource.clone()) {
            return known;
        }
        let made = Arc::new(self.index.entries[i].resource_ref());
        self.cache_of(i, |c| c.resource.get_or_insert(made).clone())
    }

    /// See `share_across`.
    fn shares_across(&self) -> bool {
        self.share_across.load(Ordering::Relaxed)
    }

    /// Parameters derived from data that was not all collected, with why: a rule reading one
    /// is `error` (see [`crate::config::Config::parameter_gaps`]).
    pub fn with_parameter_gaps(mut self, gaps: BTreeMap<String, String>) -> Self {
        self.parameter_gaps = gaps;
        self
    }

    /// Number of indexed resources.
    pub fn resource_count(&self) -> usize {
        self.index.entries.len()
    }

    /// Evaluates every rule; results are ordered by rule, then resource ARN.
    ///
    /// The work goes resource by resource: each worker takes a run of one type's entries and
    /// evaluates every rule of that type on each entry in turn, then forgets what it kept of
    /// the entry (parsed policies, evidence, a notebook's paths). What a scan holds is then
    /// the results, not a cache of the whole estate. The order of the results does not depend
    /// on the number of workers.
    pub fn evaluate_all(&self, rules: &[LoadedRule]) -> Vec<Finding> {
        let Schedule {
            plans,
            by_type,
            type_of_rule,
            tasks,
        } = self.schedule(rules);
        // Each rule's results have their place before any is made: its type's entries run by
        // run (so in ARN order), then the results on populations that could not be listed.
        // Workers write each result in its place, so results are never held twice (a copy
        // per run, then all of them) and never moved.
        let extras: Vec<Vec<Finding>> = rules
            .iter()
            .zip(&plans)
            .map(|(rule, plan)| self.rule_extras(rule, plan))
            .collect();
        let blocks: Vec<usize> = rules
            .iter()
            .zip(&extras)
            .map(|(rule, extra)| self.index.of_type(rule.spec.resource_type).len() + extra.len())
            .collect();
        let mut all = placeholders(blocks.iter().sum());
        // Per task, the places of each of its type's rules; per rule, the places of its extras.
        let mut places_of_task: Vec<Vec<&mut [Finding]>> =
            tasks.iter().map(|_| Vec::new()).collect();
        let mut places_of_extras: Vec<&mut [Finding]> = Vec::with_capacity(rules.len());
        let mut rest: &mut [Finding] = &mut all;
        for (&rule_type, extra) in type_of_rule.iter().zip(&extras) {
            // In its type's slot order: the rules of a type are met in pack order here too.
            for (task, &(t, run)) in tasks.iter().enumerate() {
                if t == rule_type {
                    let (run_places, after) = std::mem::take(&mut rest).split_at_mut(run.len());
                    places_of_task[task].push(run_places);
                    rest = after;
                }
            }
            let (extra_places, after) = std::mem::take(&mut rest).split_at_mut(extra.len());
            places_of_extras.push(extra_places);
            rest = after;
        }
        // A task's places are taken by the one worker that takes the task.
        let places_of_task: Vec<Mutex<Vec<&mut [Finding]>>> =
            places_of_task.into_iter().map(Mutex::new).collect();
        on_workers(
            tasks.len(),
            // Each worker shares alike within each rule (see `Alike`).
            || {
                let mut alike: Vec<Alike> = Vec::new();
                alike.resize_with(rules.len(), Alike::default);
                alike
            },
            |alike, task| {
                let (t, run) = tasks[task];
                let mut slots = std::mem::take(
                    &mut *places_of_task[task]
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner),
                );
                let of_type = &by_type[t].1;
                for (i, &entry) in run.iter().enumerate() {
                    for (slot, &r) in of_type.iter().enumerate() {
                        let finding = self.result_on(&rules[r], &plans[r], entry);
                        slots[slot][i] = alike[r].share(finding);
                    }
                    self.forget(entry);
                }
            },
        );
        // Each rule's extras in their places, then its results sorted by ARN as
        // `evaluate_rule` sorts them.
        for (extra, extra_places) in extras.into_iter().zip(places_of_extras) {
            let mut alike = Alike::default();
            for (place, finding) in extra_places.iter_mut().zip(extra) {
                *place = alike.share(finding);
            }
        }
        let mut start = 0;
        for block in blocks {
            sort_by_arn(&mut all[start..start + block]);
            start += block;
        }
        note_mitigations(rules, &mut all);
        all
    }

    /// The plans of `rules`, their types, and the runs of entries the workers share out.
    fn schedule(&self, rules: &[LoadedRule]) -> Schedule<'_> {
        let plans: Vec<RulePlan> = rules.iter().map(|r| self.plan(r)).collect();
        // The rules of each type, in pack order (a rule's slot in its type's results); and each
        // rule's type there.
        let mut by_type: Vec<(ResourceType, Vec<usize>)> = Vec::new();
        let mut type_of_rule: Vec<usize> = Vec::with_capacity(rules.len());
        for (i, rule) in rules.iter().enumerate() {
            let t = rule.spec.resource_type;
            let at = match by_type.iter().position(|(known, _)| *known == t) {
                Some(at) => at,
                None => {
                    by_type.push((t, Vec::new()));
                    by_type.len() - 1
                }
            };
            type_of_rule.push(at);
            by_type[at].1.push(i);
        }
        // Runs of entries small enough to share out evenly, large enough to cost nothing.
        const RUN: usize = 256;
        let tasks: Vec<(usize, &[usize])> = by_type
            .iter()
            .enumerate()
            .flat_map(|(t, (resource_type, _))| {
                self.index
                    .of_type(*resource_type)
                    .chunks(RUN)
                    .map(move |run| (t, run))
            })
            .collect();
        Schedule {
            plans,
            by_type,
            type_of_rule,
            tasks,
        }
    }

    /// Evaluates every rule as [`Evaluator::evaluate_all`] does, and holds the results when
    /// there are at most `spill_at` of them; beyond that, each is written to a spill file as
    /// it is made (see [`crate::findings::results`]), in the same order with the same content.
    pub fn evaluate_results(
        &self,
        rules: &[LoadedRule],
        spill_at: usize,
    ) -> Result<Results, ResultsError> {
        let count: usize = rules
            .iter()
            .map(|r| self.index.of_type(r.spec.resource_type).len())
            .sum();
        if count <= spill_at {
            return Ok(Results::held(self.evaluate_all(rules)));
        }
        // Parts shared across entries pay for themselves only while the results that hold
        // them are held; spilled, they would only grow.
        self.share_across.store(false, Ordering::Relaxed);
        let spilled = self.evaluate_spilled(rules);
        self.share_across.store(true, Ordering::Relaxed);
        spilled
    }

    /// Each worker writes the results of a run of entries, rule by rule, to a first spill
    /// file as it finishes the run; the runs are then read back in report order, merged with
    /// each rule's extras by ARN, and written to the spill file the results are read from.
    fn evaluate_spilled(&self, rules: &[LoadedRule]) -> Result<Results, ResultsError> {
        let Schedule {
            plans,
            by_type,
            type_of_rule,
            tasks,
        } = self.schedule(rules);
        let heads: Vec<Arc<crate::findings::RuleHead>> =
            plans.iter().map(|p| p.head.clone()).collect();
        let written = |e: std::io::Error| ResultsError::written(e);
        // Per task, where each of its type's rules' results are in the first file.
        let runs: Mutex<RunsFile> = Mutex::new((
            SpillFile::create().map_err(written)?,
            vec![Vec::<(u64, u64)>::new(); tasks.len()],
            None::<std::io::Error>,
        ));
        let holding = Mutex::new(Mitigations::new(rules));
        on_workers(
            tasks.len(),
            || (),
            |(), task| {
                // Once a run could not be written, the rest is not evaluated.
                let failed_before = |runs: &Mutex<RunsFile>| {
                    runs.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .2
                        .is_some()
                };
                if failed_before(&runs) {
                    return;
                }
                let (t, run) = tasks[task];
                let of_type = &by_type[t].1;
                let mut lines: Vec<Vec<u8>> = vec![Vec::new(); of_type.len()];
                let mut failed = None;
                for &entry in run {
                    for (slot, &r) in of_type.iter().enumerate() {
                        let finding = self.result_on(&rules[r], &plans[r], entry);
                        // Only account rules mitigate: the lock is not taken per result.
                        if finding.resource.resource_type == ResourceType::Account {
                            holding
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .note_holding(&finding);
                        }
                        if let Err(e) = results::encode_line(&finding, r, &mut lines[slot]) {
                            failed.get_or_insert(e);
                        }
                    }
                    self.forget(entry);
                }
                let mut runs = runs.lock().unwrap_or_else(PoisonError::into_inner);
                let (file, places, error) = &mut *runs;
                if let Some(e) = failed {
                    error.get_or_insert(e);
                }
                if error.is_some() {
                    return;
                }
                for bytes in &lines {
                    match file.append(bytes) {
                        Ok(start) => places[task].push((start, file.len())),
                        Err(e) => {
                            error.get_or_insert(e);
                            return;
                        }
                    }
                }
            },
        );
        let (file, places, error) = runs.into_inner().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = error {
            return Err(written(e));
        }
        let mitigations = holding.into_inner().unwrap_or_else(PoisonError::into_inner);
        let mut out = SpillWriter::new(heads.clone()).map_err(written)?;
        for (r, rule) in rules.iter().enumerate() {
            let t = type_of_rule[r];
            let slot = by_type[t]
                .1
                .iter()
                .position(|&known| known == r)
                .unwrap_or(0);
            // Its extras in ARN order (a stable sort, as `sort_by_arn` is), each placed after
            // the entries' results with the same ARN.
            let mut extras = self.rule_extras(rule, &plans[r]);
            sort_by_arn(&mut extras);
            let mut extras = extras.into_iter().peekable();
            let out = std::cell::RefCell::new(&mut out);
            let put = |mut finding: Finding| -> Result<(), ResultsError> {
                mitigations.apply(&mut finding);
                out.borrow_mut().push(&finding).map_err(written)
            };
            let raw = |line: &[u8], head: &results::LineHead<'_>| {
                out.borrow_mut().push_line(line, head).map_err(written)
            };
            for (task, _) in tasks.iter().enumerate().filter(|(_, (of, _))| *of == t) {
                let Some(&(start, end)) = places[task].get(slot) else {
                    return Err(ResultsError::read("a run of results was not written"));
                };
                // Each line is copied as it is, unless a mitigation may change it: only its
                // rule, status and ARN are read (the evidence is most of a line).
                let mut lines = results::Lines::new(file.range(start, end));
                while let Some(line) = lines.next_line().map_err(ResultsError::read)? {
                    let head = results::LineHead::of(line).map_err(ResultsError::read)?;
                    while let Some(extra) =
                        extras.next_if(|extra| *extra.resource.arn < *head.resource.arn)
                    {
                        put(extra)?;
                    }
                    let rule_id = heads.get(head.rule).map_or("", |h| &*h.id);
                    if mitigations.may_apply(rule_id, head.status) {
                        put(results::decode_line(line, &heads).map_err(ResultsError::read)?)?;
                    } else {
                        raw(line, &head)?;
                    }
                }
            }
            for extra in extras {
                put(extra)?;
            }
        }
        out.finish()
    }

    /// `value` (read at `path` in `scope`, from a view or the parameters) as shared evidence.
    fn evidence_of(&self, scope: Scope<'_>, path: &str, value: &Value) -> Arc<Value> {
        if !matches!(value, Value::Array(_) | Value::Object(_)) {
            return Arc::new(value.clone());
        }
        self.shared((scope.entry, path.to_string()), EvidenceOf::Itself, || {
            value.clone()
        })
    }

    /// The shared evidence `what` of the value read at `at`, made once while its entry is kept.
    fn shared(&self, at: ReadAt, what: EvidenceOf, make: impl FnOnce() -> Value) -> Arc<Value> {
        let (entry, path) = at;
        let key = (path, what);
        if let Some(known) = self.cache_of(entry, |c| c.evidence.get(&key).cloned()) {
            return known;
        }
        // The same document in many resources (a templated policy) is held once.
        let made = SameJson(Arc::new(make()));
        let value = if !self.shares_across() {
            made.0
        } else {
            let mut by_content = self
                .shared_content
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match by_content.get(&made) {
                Some(known) => known.0.clone(),
                None => {
                    let value = made.0.clone();
                    by_content.insert(made);
                    value
                }
            }
        };
        self.cache_of(entry, |c| c.evidence.entry(key).or_insert(value).clone())
    }

    /// Evaluates one rule over every resource of its type, plus an `error` result for each
    /// account/region whose population of that type is unknown.
    pub fn evaluate_rule(&self, rule: &LoadedRule) -> Vec<Finding> {
        let plan = self.plan(rule);
        let mut alike = Alike::default();
        // Its type's entries (in ARN order), then those of `rule_extras`, all sorted by ARN as
        // `evaluate_all` sorts a rule's block.
        let mut findings: Vec<Finding> = self
            .index
            .of_type(rule.spec.resource_type)
            .iter()
            .map(|&i| self.result_on(rule, &plan, i))
            .chain(self.rule_extras(rule, &plan))
            .map(|f| alike.share(f))
            .collect();
        sort_by_arn(&mut findings);
        findings
    }

    /// What a rule needs before any resource: its identity, shared by all its results, and
    /// the parameters it reads that leave it unevaluated.
    fn plan(&self, rule: &LoadedRule) -> RulePlan {
        let spec = &rule.spec;
        let read = self.read_parameters(rule);
        RulePlan {
            head: Arc::new(crate::findings::RuleHead {
                id: spec.id.as_str().into(),
                title: spec.title.as_str().into(),
                severity: spec.severity,
            }),
            // `${perimeter.*}` parameters the rule reads that the configuration does not
            // provide.
            missing: read
                .iter()
                .filter(|name| {
                    name.starts_with("perimeter.") && !self.parameters.contains_key(*name)
                })
                .cloned()
                .collect(),
            gapped: read
                .iter()
                .filter_map(|name| {
                    self.parameter_gaps
                        .get(name)
                        .map(|why| format!("{name} {why}"))
                })
                .collect(),
            // Read as `parameter` resolves it (trimmed), so `${ region.s3_prefix_lists }`
            // counts too.
            reads_prefix_lists: read.iter().any(|name| name == "region.s3_prefix_lists"),
        }
    }

    /// The result of `rule` on entry `i`.
    fn result_on(&self, rule: &LoadedRule, plan: &RulePlan, i: usize) -> Finding {
        let entry = &self.index.entries[i];
        // A parameter derived from collected data carries that data's gaps: with the prefix
        // lists unknown, "egress only to the S3 prefix list" cannot be judged.
        let prefix_list_gaps: Vec<String> = if plan.reads_prefix_lists {
            self.snapshot
                .population_gaps(ResourceType::PrefixList, entry.account, entry.region)
                .iter()
                .map(|g| format!("{}:{}: {}", g.service, g.api_call, g.error))
                .collect()
        } else {
            Vec::new()
        };
        let (status, message, evidence) = if !plan.gapped.is_empty() {
            (
                Status::Error,
                format!("not evaluated: {}", plan.gapped.join("; ")),
                Vec::new(),
            )
        } else if !prefix_list_gaps.is_empty() {
            (
                Status::Error,
                format!(
                    "not evaluated: the rule compares with the region's S3 managed prefix lists, which could not be listed ({})",
                    prefix_list_gaps.join("; ")
                ),
                vec![Evidence {
                    path: "collection_gap".into(),
                    value: json!(prefix_list_gaps).into(),
                }],
            )
        } else if plan.missing.is_empty() {
            self.evaluate_resource(rule, i)
        } else {
            (
                Status::Error,
                format!(
                    "not evaluated: the rule needs {} from the configuration",
                    plan.missing.join(", ")
                ),
                Vec::new(),
            )
        };
        Finding::of_rule(
            plan.head.clone(),
            status,
            self.resource_of(i),
            message,
            evidence,
        )
    }

    /// The results of `rule` beyond its type's entries: `skipped` per account for a type
    /// derived from an organization that is not in scope, and `error` for each population
    /// that could not be listed and each configured account never collected.
    fn rule_extras(&self, rule: &LoadedRule, plan: &RulePlan) -> Vec<Finding> {
        let spec = &rule.spec;
        let mut findings = Vec::new();
        // Without an organization in scope there is nothing to judge the accounts (or the
        // organization's policies) on: say so for each account, rather than leaving the rule
        // without a result.
        if spec.resource_type.is_derived() && self.snapshot.organization.is_none() {
            for (account, _) in &self.configured_accounts {
                findings.push(Finding::of_rule(
                    plan.head.clone(),
                    Status::Skipped,
                    Arc::new(ResourceRef {
                        resource_type: spec.resource_type,
                        id: account.clone(),
                        arn: format!(
                            "arn:aws:organizations:::{}/{account}",
                            spec.resource_type.as_str()
                        ),
                        account: account.clone(),
                        region: None,
                    }),
                    "not evaluated: the organization is not in scope (no `organization:` in the configuration), so its SCPs and RCPs were not read",
                    Vec::new(),
                ));
            }
        }
        // Populations that could not be listed, and configured accounts never collected.
        for (account, gap_regions) in self.unknown_populations(spec.resource_type) {
            let role = self.role_of(&account);
            if !spec.applies_to.as_ref().is_none_or(|a| {
                a.account_roles.is_empty() || role.is_some_and(|r| a.account_roles.contains(&r))
            }) {
                continue;
            }
            for (region, reason) in gap_regions {
                let resource = ResourceRef {
                    resource_type: spec.resource_type,
                    id: "*".into(),
                    arn: format!(
                        "arn:aws:{}:{}:{account}:{}/*",
                        spec.resource_type.service(),
                        region.as_deref().unwrap_or(""),
                        spec.resource_type.as_str()
                    ),
                    account: account.clone(),
                    region: region.clone(),
                };
                findings.push(Finding::of_rule(
                    plan.head.clone(),
                    Status::Error,
                    Arc::new(resource),
                    format!("not evaluated: the {} resources of this account could not be listed ({reason})", spec.resource_type),
                    vec![Evidence {
                        path: "collection_gap".into(),
                        value: json!(reason).into(),
                    }],
                ));
            }
        }
        findings
    }

    /// `${...}` parameters the rule reads (check and applies_to).
    fn read_parameters(&self, rule: &LoadedRule) -> Vec<String> {
        let text =
            serde_json::to_string(&(&rule.spec.check, &rule.spec.applies_to)).unwrap_or_default();
        let mut names: Vec<String> = text
            .split("${")
            .skip(1)
            .filter_map(|rest| {
                rest.split_once('}')
                    .map(|(name, _)| name.trim().to_string())
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }

    fn role_of(&self, account: &str) -> Option<AccountRole> {
        self.snapshot
            .accounts
            .get(account)
            .and_then(|a| a.role)
            .or_else(|| {
                self.configured_accounts
                    .iter()
                    .find(|(id, _)| id == account)
                    .map(|(_, r)| *r)
            })
    }

    /// (account, [(region, reason)]) whose population of `t` is unknown; one entry per
    /// (account, region), reasons joined.
    fn unknown_populations(&self, t: ResourceType) -> Vec<(String, Vec<RegionGap>)> {
        let mut out: Vec<(String, Vec<RegionGap>)> = Vec::new();
        let mut add = |account: &str, region: Option<String>, reason: String| {
            let index = match out.iter().position(|(a, _)| a == account) {
                Some(i) => i,
                None => {
                    out.push((account.to_string(), Vec::new()));
                    out.len() - 1
                }
            };
            let regions = &mut out[index].1;
            match regions.iter_mut().find(|(r, _)| *r == region) {
                Some((_, existing)) => {
                    existing.push_str("; ");
                    existing.push_str(&reason);
                }
                None => regions.push((region, reason)),
            }
        };
        for gap in &self.snapshot.metadata.collection_gaps {
            if gap.resource_types.contains(&t) {
                add(
                    &gap.account,
                    gap.region.clone(),
                    format!("{}:{} failed: {}", gap.service, gap.api_call, gap.error),
                );
            }
        }
        // What is derived from the organization does not depend on reaching the account; it
        // is unknown when the part of the organization it is listed from could not be read.
        if let Some(org) = &self.snapshot.organization
            && let Some(why) = t.population_error(org)
        {
            add(
                org.management_account_id.as_deref().unwrap_or(""),
                None,
                why,
            );
        }
        let accounts_listed = if t.is_derived() {
            &[][..]
        } else {
            &self.configured_accounts[..]
        };
        for (account, _) in accounts_listed {
            let explained = self
                .snapshot
                .metadata
                .collection_gaps
                .iter()
                .any(|g| &g.account == account && g.resource_types.contains(&t));
            if !self.snapshot.accounts.contains_key(account) && !explained {
                add(account, None, "the account was not collected".into());
            }
        }
        out
    }

    fn evaluate_resource(&self, rule: &LoadedRule, i: usize) -> (Status, String, Vec<Evidence>) {
        let entry = &self.index.entries[i];
        let scope = Scope {
            entry: i,
            value: None,
            prefix: "",
            top_level: true,
        };
        if let Some(applies) = &rule.spec.applies_to {
            if !applies.account_roles.is_empty()
                && !entry
                    .account_role
                    .is_some_and(|r| applies.account_roles.contains(&r))
            {
                let role = entry
                    .account_role
                    .map_or("not in scope", AccountRole::as_str);
                return (
                    Status::Skipped,
                    format!("not applicable: account {} is {role}", entry.account),
                    vec![Evidence {
                        path: "account_role".into(),
                        value: json!(entry.account_role.map(AccountRole::as_str)).into(),
                    }],
                );
            }
            if let Some(when) = &applies.when {
                let v = self.condition(when, scope);
                match v.outcome {
                    Outcome::Fail => {
                        return (
                            Status::Skipped,
                            format!("not applicable: {}", v.message),
                            v.evidence,
                        );
                    }
                    Outcome::Error => {
                        return (
                            Status::Error,
                            format!("not evaluated: {}", v.message),
                            v.evidence,
                        );
                    }
                    Outcome::Pass => {}
                }
            }
        }
        let v = self.condition(&rule.spec.check, scope);
        let status = match v.outcome {
            Outcome::Pass => Status::Pass,
            Outcome::Fail => Status::Fail,
            Outcome::Error => Status::Error,
        };
        let message = if status == Status::Error {
            format!("not evaluated: {}", v.message)
        } else {
            v.message
        };
        (status, message, v.evidence)
    }

    fn condition(&self, condition: &Condition, scope: Scope<'_>) -> Verdict {
        match condition {
            Condition::All(items) => combine_all(items.iter().map(|c| self.condition(c, scope))),
            Condition::Any(items) => combine_any(items.iter().map(|c| self.condition(c, scope))),
            Condition::Not(inner) => {
                let v = self.condition(inner, scope);
                let outcome = match v.outcome {
                    Outcome::Pass => Outcome::Fail,
                    Outcome::Fail => Outcome::Pass,
                    Outcome::Error => Outcome::Error,
                };
                let message = if outcome == Outcome::Fail {
                    format!("must not hold: {}", v.message)
                } else {
                    v.message
                };
                Verdict::new(outcome, message, v.evidence)
            }
            Condition::Field(test) => self.field(test, scope),
            Condition::Each(test) => self.each(test, scope),
            Condition::Related(test) => self.related(test, scope),
            Condition::Analysis(call) => self.analysis(call, scope),
            Condition::Path(test) => self.path(test.question, scope),
            Condition::Forced(holds) => Verdict::new(
                if *holds { Outcome::Pass } else { Outcome::Fail },
                format!("(mutant: forced {})", if *holds { "true" } else { "false" }),
                Vec::new(),
            ),
        }
    }

    fn entry(&self, scope: Scope<'_>) -> &Entry<'a> {
        &self.index.entries[scope.entry]
    }

    /// Reads a dotted path (or a `${perimeter.*}` parameter); `Err` when the field could not
    /// be collected.
    fn read<'v>(&'v self, scope: Scope<'v>, path: &str) -> Result<Cow<'v, Value>, String> {
        static NULL: Value = Value::Null;
        if let Some(name) = path.strip_prefix("${").and_then(|p| p.strip_suffix('}')) {
            return Ok(Cow::Borrowed(
                self.parameters.get(name.trim()).unwrap_or(&NULL),
            ));
        }
        let mut segments = path.split('.');
        let first = segments.next().unwrap_or(path);
        if let Some(error) = self.uncollected(scope, first) {
            return Err(error);
        }
        let Some(within) = scope.value else {
            // The entry's own view: read the first field from the snapshot, then walk into it.
            let Some(mut value) = self.entry(scope).field(first) else {
                return Ok(Cow::Borrowed(&NULL));
            };
            for segment in segments {
                value = match value {
                    Cow::Borrowed(Value::Object(map)) => {
                        Cow::Borrowed(map.get(segment).unwrap_or(&NULL))
                    }
                    Cow::Owned(Value::Object(mut map)) => {
                        Cow::Owned(map.remove(segment).unwrap_or(Value::Null))
                    }
                    _ => Cow::Borrowed(&NULL),
                };
            }
            return Ok(value);
        };
        let mut value = within;
        for segment in path.split('.') {
            value = match value {
                Value::Object(map) => map.get(segment).unwrap_or(&NULL),
                _ => &NULL,
            };
        }
        Ok(Cow::Borrowed(value))
    }

    /// Why the top-level field `first` of the scope's entry could not be collected, if it
    /// could not.
    fn uncollected(&self, scope: Scope<'_>, first: &str) -> Option<String> {
        let error = self
            .entry(scope)
            .collection_errors
            .as_deref()
            .and_then(|e| e.get(first))
            .filter(|_| scope.top_level)?;
        Some(format!(
            "{}{first} could not be collected: {error}",
            scope.prefix
        ))
    }

    /// Substitutes `${...}` parameters in a rule value.
    fn resolve(&self, value: &Value, scope: Scope<'_>) -> Value {
        match value {
            Value::String(s) => self.resolve_str(s, scope),
            Value::Array(items) => {
                // A parameter that is a list is spliced into the surrounding list.
                let mut out = Vec::new();
                for item in items {
                    match self.resolve(item, scope) {
                        Value::Array(inner) if matches!(item, Value::String(s) if s.starts_with("${")) => {
                            out.extend(inner)
                        }
                        other => out.push(other),
                    }
                }
                Value::Array(out)
            }
            other => other.clone(),
        }
    }

    fn parameter(&self, name: &str, scope: Scope<'_>) -> Value {
        let entry = self.entry(scope);
        match name {
            "resource.account" => json!(entry.account),
            "resource.region" => json!(entry.region),
            "resource.id" => json!(entry.id),
            "resource.arn" => json!(entry.arn()),
            // The collected organization's id (null without one).
            "organization.id" => json!(
                self.snapshot
                    .organization
                    .as_ref()
                    .and_then(|o| o.id.as_deref())
            ),
            "region.s3_prefix_lists" => json!(
                self.index
                    .s3_prefix_lists(entry.account, entry.region.unwrap_or(""))
            ),
            other => self.parameters.get(other).cloned().unwrap_or(Value::Null),
        }
    }

    fn resolve_str(&self, s: &str, scope: Scope<'_>) -> Value {
        if let Some(name) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}'))
            && !name.contains("${")
        {
            return self.parameter(name.trim(), scope);
        }
        let mut out = String::new();
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            let Some(len) = rest[start..].find('}') else {
                break;
            };
            out.push_str(&rest[..start]);
            match self.parameter(rest[start + 2..start + len].trim(), scope) {
                Value::String(v) => out.push_str(&v),
                other => out.push_str(&other.to_string()),
            }
            rest = &rest[start + len + 1..];
        }
        out.push_str(rest);
        Value::String(out)
    }

    fn strings(&self, value: Option<&Value>, scope: Scope<'_>) -> Vec<String> {
        match value.map(|v| self.resolve(v, scope)) {
            Some(Value::String(s)) => vec![s],
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn string(&self, value: Option<&Value>, scope: Scope<'_>) -> String {
        self.strings(value, scope)
            .into_iter()
            .next()
            .unwrap_or_default()
    }
}

/// The first spill file of `evaluate_spilled`, where each task's runs start and end in it,
/// and the first failure to write it.
type RunsFile = (SpillFile, Vec<Vec<(u64, u64)>>, Option<std::io::Error>);

/// Shares `tasks` tasks out among the machine's workers: each task is done once, by one
/// worker, with that worker's own `state` (made once per worker). A worker that panics makes
/// the scope re-raise the panic.
fn on_workers<S>(tasks: usize, state: impl Fn() -> S + Sync, work: impl Fn(&mut S, usize) + Sync) {
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, tasks.max(1));
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let mut own = state();
                loop {
                    let task = next.fetch_add(1, Ordering::Relaxed);
                    if task >= tasks {
                        break;
                    }
                    work(&mut own, task);
                }
            });
        }
    });
}

/// Sorts a rule's results by their resource's ARN, ties in their order.
fn sort_by_arn(findings: &mut [Finding]) {
    findings.sort_by(|a, b| a.resource.arn.cmp(&b.resource.arn));
}

/// `count` results to be overwritten: each a copy of one result that shares all it holds, so
/// that they cost their own room and nothing more.
fn placeholders(count: usize) -> Vec<Finding> {
    let nothing = Finding::new(
        "",
        "",
        crate::findings::Severity::Info,
        Status::Skipped,
        ResourceRef {
            resource_type: ResourceType::Account,
            id: String::new(),
            arn: String::new(),
            account: String::new(),
            region: None,
        },
        "",
        Vec::new(),
    );
    vec![nothing; count]
}

/// Makes the results of one rule that say the same thing (a message, an evidence path, an
/// evidence value, a whole evidence list) share it: across a fleet most of them do (the same
/// template, the same policy), and the results are most of a scan's memory. Each result is
/// shared as it is made, so that its copies are freed at once rather than held until the rule
/// is done.
#[derive(Default)]
struct Alike {
    texts: ContentSet<Arc<str>>,
    values: ContentSet<SameJson>,
    /// Evidence lists by the parts they hold once their parts are shared: the same parts
    /// (the same `Arc`s, kept alive here, so their addresses stay theirs) make one list.
    lists: FastMap<Vec<(usize, usize)>, Arc<[Evidence]>>,
}

impl Alike {
    fn text(&mut self, text: &Arc<str>) -> Arc<str> {
        intern(&mut self.texts, text.clone())
    }

    fn share(&mut self, mut finding: Finding) -> Finding {
        finding.message = self.text(&finding.message);
        // A result just made holds its evidence alone.
        if let Some(evidence) = Arc::get_mut(&mut finding.evidence) {
            self.share_parts(evidence);
        }
        // A path rule's evidence is its notebook's own: no other result has the same list.
        let Some(parts) = finding.evidence.iter().map(Self::address).collect() else {
            return finding;
        };
        let list = self
            .lists
            .entry(parts)
            .or_insert_with(|| finding.evidence.clone())
            .clone();
        finding.evidence = list;
        finding
    }

    /// Where a piece of evidence's path and JSON value are held.
    fn address(evidence: &Evidence) -> Option<(usize, usize)> {
        let value = evidence.value.as_json()?;
        Some((
            Arc::as_ptr(&evidence.path).addr(),
            Arc::as_ptr(value).addr(),
        ))
    }

    fn share_parts(&mut self, evidence: &mut [Evidence]) {
        for evidence in evidence {
            evidence.path = self.text(&evidence.path);
            // A value the evaluator shares (a policy document) was already shared by content,
            // and a path rule's evidence is made of shared hops.
            let EvidenceValue::Json(json) = &evidence.value else {
                continue;
            };
            if Arc::strong_count(json) > 1 {
                continue;
            }
            let value = SameJson(json.clone());
            match self.values.get(&value) {
                Some(known) => evidence.value = EvidenceValue::Json(known.0.clone()),
                None => {
                    self.values.insert(value);
                }
            }
        }
    }
}

/// A JSON value compared as it would be written: keys in their order, so that sharing one
/// never changes a report's bytes (`Value`'s own equality ignores the order of keys).
struct SameJson(Arc<Value>);

impl std::hash::Hash for SameJson {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Equal as written implies equal as `Value`, so `Value`'s hash agrees with `eq` below.
        self.0.hash(state);
    }
}

impl PartialEq for SameJson {
    fn eq(&self, other: &Self) -> bool {
        fn same(a: &Value, b: &Value) -> bool {
            match (a, b) {
                (Value::Object(a), Value::Object(b)) => {
                    a.len() == b.len()
                        && a.iter()
                            .zip(b)
                            .all(|((ka, va), (kb, vb))| ka == kb && same(va, vb))
                }
                (Value::Array(a), Value::Array(b)) => {
                    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same(a, b))
                }
                (a, b) => a == b,
            }
        }
        Arc::ptr_eq(&self.0, &other.0) || same(&self.0, &other.0)
    }
}

impl Eq for SameJson {}

/// Compact rendering of a value for messages.
fn render(value: &Value) -> String {
    match value {
        Value::Null => "unset".into(),
        other => other.to_string(),
    }
}

fn combine_all(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
    let mut evidence = Vec::new();
    let mut failing = Vec::new();
    let mut errors = Vec::new();
    let mut passing = Vec::new();
    for v in verdicts {
        evidence.extend(v.evidence);
        match v.outcome {
            Outcome::Fail => failing.push(v.message),
            Outcome::Error => errors.push(v.message),
            Outcome::Pass => passing.push(v.message),
        }
    }
    // A definite failure stands even if another part could not be evaluated.
    if !failing.is_empty() {
        Verdict::new(Outcome::Fail, failing.join("; "), evidence)
    } else if !errors.is_empty() {
        Verdict::new(Outcome::Error, errors.join("; "), evidence)
    } else {
        Verdict::new(Outcome::Pass, passing.join("; "), evidence)
    }
}

/// Stops at the first verdict that passes: the rest are not evaluated.
fn combine_any(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
    let mut evidence = Vec::new();
    let mut messages = Vec::new();
    let mut error = false;
    for v in verdicts {
        evidence.extend(v.evidence);
        match v.outcome {
            Outcome::Pass => return Verdict::new(Outcome::Pass, v.message, evidence),
            Outcome::Error => error = true,
            Outcome::Fail => {}
        }
        messages.push(v.message);
    }
    let message = format!("none holds: {}", messages.join("; "));
    Verdict::new(
        if error { Outcome::Error } else { Outcome::Fail },
        message,
        evidence,
    )
}

fn quantify(
    quantifier: Quantifier,
    non_empty: bool,
    verdicts: impl Iterator<Item = Verdict>,
    label: &str,
) -> Verdict {
    let mut verdicts = verdicts.peekable();
    if verdicts.peek().is_none() {
        return match (quantifier, non_empty) {
            (Quantifier::Any, _) | (_, true) => {
                Verdict::new(Outcome::Fail, format!("{label}: none found"), Vec::new())
            }
            _ => Verdict::new(Outcome::Pass, format!("{label}: none"), Vec::new()),
        };
    }
    match quantifier {
        Quantifier::All => combine_all(verdicts),
        Quantifier::Any => combine_any(verdicts),
        Quantifier::None => {
            let flipped = verdicts.map(|v| match v.outcome {
                Outcome::Pass => Verdict::new(
                    Outcome::Fail,
                    format!("must not hold: {}", v.message),
                    v.evidence,
                ),
                Outcome::Fail => Verdict::new(Outcome::Pass, v.message, v.evidence),
                Outcome::Error => v,
            });
            combine_all(flipped)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::{PathsEvidence, Severity};

    fn result(message: &str, value: Value) -> Finding {
        let resource = ResourceRef {
            resource_type: ResourceType::VpcEndpoint,
            id: "vpce-1".into(),
            arn: "arn:aws:ec2:us-east-1:111111111111:vpc-endpoint/vpce-1".into(),
            account: "111111111111".into(),
            region: Some("us-east-1".into()),
        };
        let evidence = vec![Evidence {
            path: "policy".into(),
            value: value.into(),
        }];
        Finding::new(
            "XS",
            "t",
            Severity::High,
            Status::Pass,
            resource,
            message.to_string(),
            evidence,
        )
    }

    /// A policy document is not copied into evidence: every rule that cites a resource's
    /// document cites the snapshot's own, however many resources carry the same one (a
    /// templated endpoint policy).
    #[test]
    fn evidence_of_a_policy_document_is_the_snapshots_own() {
        let pack = crate::rules::RulePack::embedded().expect("embedded pack");
        let (mut snapshot, config) = crate::rules::testing::fixtures(&pack).expect("fixtures");
        let endpoints =
            &mut snapshot["accounts"]["111111111111"]["regions"]["us-east-1"]["vpc_endpoints"];
        let mut copy = endpoints["vpce-0c0ffee0000000a01"].clone();
        copy["id"] = json!("vpce-0c0ffee0000000a02");
        endpoints["vpce-0c0ffee0000000a02"] = copy;
        let snapshot = Snapshot::from_json("two endpoints", &snapshot.to_string()).unwrap();
        let accounts = config.account_roles();
        let evaluator = Evaluator::new(&snapshot, config.parameters(&snapshot), accounts);
        let rules: Vec<LoadedRule> = ["XS-NET-006", "XS-NET-007"]
            .iter()
            .map(|id| pack.get(id).expect("rule").clone())
            .collect();
        let results = evaluator.evaluate_all(&rules);
        assert_eq!(results.len(), 4, "two rules on two endpoints");
        // Both rules cite each endpoint's document, and each citation is the snapshot's.
        let region = &snapshot.accounts["111111111111"].regions["us-east-1"];
        let mut citations = 0;
        for finding in &results {
            let endpoint = &region.vpc_endpoints[&finding.resource.id];
            let held = endpoint.policy.as_ref().and_then(|p| p.document.as_ref());
            let held = held.expect("the fixture's endpoint has a policy document");
            for evidence in finding.evidence.iter().filter(|e| &*e.path == "policy") {
                assert!(
                    Arc::ptr_eq(held, evidence.value.as_json().expect("JSON")),
                    "{finding:#?}"
                );
                citations += 1;
            }
        }
        assert_eq!(citations, 4, "{results:#?}");
        assert!(
            evaluator.caches.lock().unwrap().is_empty(),
            "every entry is forgotten once its rules are done"
        );
    }

    /// Two notebooks in one subnet, behind one endpoint, reading one access point: their path
    /// evidence holds the hops they share once (the route table, the endpoint, the role, ...)
    /// and each its own notebook hop; the answers they share are one value.
    #[test]
    fn notebooks_share_the_hops_of_their_paths() {
        let pack = crate::rules::RulePack::embedded().expect("embedded pack");
        let (mut snapshot, config) = crate::rules::testing::fixtures(&pack).expect("fixtures");
        let notebooks = &mut snapshot["accounts"]["111111111111"]["regions"]["us-east-1"]["sagemaker_notebooks"];
        let mut copy = notebooks["ml-notebook-1"].clone();
        copy["name"] = json!("ml-notebook-2");
        copy["arn"] =
            json!("arn:aws:sagemaker:us-east-1:111111111111:notebook-instance/ml-notebook-2");
        notebooks["ml-notebook-2"] = copy;
        let snapshot = Snapshot::from_json("two notebooks", &snapshot.to_string()).unwrap();
        let evaluator = Evaluator::new(
            &snapshot,
            config.parameters(&snapshot),
            config.account_roles(),
        )
        .with_perimeter(&config);
        let results = evaluator.evaluate_rule(pack.get("XS-PATH-001").expect("rule"));
        let paths: Vec<&PathsEvidence> = results
            .iter()
            .map(|r| match &r.evidence[0].value {
                EvidenceValue::Paths(paths) => &**paths,
                other => panic!("path evidence held as JSON: {other}"),
            })
            .collect();
        assert_eq!(paths.len(), 2, "{results:#?}");
        let (one, two) = (paths[0], paths[1]);
        let (chain_one, chain_two) = (one.chain.as_ref().unwrap(), two.chain.as_ref().unwrap());
        assert_eq!(chain_one.len(), chain_two.len());
        assert!(chain_one.len() > 2, "{chain_one:?}");
        for (a, b) in chain_one.iter().zip(chain_two.iter()) {
            if a.layer == "notebook" {
                assert_ne!(a.resource, b.resource);
            } else {
                assert!(Arc::ptr_eq(a, b), "{a:?} is held twice");
            }
        }
        assert_eq!(one.answers.len(), 2, "{one:?}");
        for (a, b) in one.answers.iter().zip(&two.answers) {
            assert!(Arc::ptr_eq(a, b), "{a:?} is held twice");
        }
    }

    #[test]
    fn results_that_say_the_same_share_it_and_keys_keep_their_order() {
        let results = vec![
            result("m", json!({"a": 1, "b": [1, {"c": 2}]})),
            result("m", json!({"a": 1, "b": [1, {"c": 2}]})),
            // Equal as `Value`, not as written: it must keep its own order.
            result("m", json!({"b": [1, {"c": 2}], "a": 1})),
            result("n", json!({"a": 1, "b": [1, {"c": 3}]})),
        ];
        let mut alike = Alike::default();
        let results: Vec<Finding> = results.into_iter().map(|r| alike.share(r)).collect();
        let value = |i: usize| results[i].evidence[0].value.as_json().expect("JSON");
        assert!(Arc::ptr_eq(value(0), value(1)));
        // The same parts make one list.
        assert!(Arc::ptr_eq(&results[0].evidence, &results[1].evidence));
        assert!(!Arc::ptr_eq(&results[0].evidence, &results[2].evidence));
        assert!(!Arc::ptr_eq(&results[0].evidence, &results[3].evidence));
        assert!(!Arc::ptr_eq(value(0), value(2)));
        assert_eq!(value(2).to_string(), r#"{"b":[1,{"c":2}],"a":1}"#);
        assert!(!Arc::ptr_eq(value(0), value(3)));
        assert!(Arc::ptr_eq(&results[0].message, &results[2].message));
        assert!(!Arc::ptr_eq(&results[0].message, &results[3].message));
        assert!(Arc::ptr_eq(
            &results[0].evidence[0].path,
            &results[3].evidence[0].path
        ));
    }
}
