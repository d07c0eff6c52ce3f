//! Live collection: the only code that uses the AWS SDK. It reads (never writes) the
//! configuration of every account in scope, concurrently with bounded parallelism, and
//! produces a [`Snapshot`]. Failures never abort the scan: an AccessDenied, a timeout or an
//! unreachable account becomes a [`CollectionGap`] (or a resource's `collection_errors`), which
//! evaluation reports as `error`.

mod ec2;
mod iam;
mod organizations;
pub mod permissions;
mod s3;
mod s3control;
mod sagemaker;
mod session;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sts::error::{DisplayErrorContext, ProvideErrorMetadata};
use chrono::Utc;
use tokio::sync::Semaphore;

use crate::config::{AccountConfig, Config};
use crate::model::{
    AccountRole, AccountSnapshot, CallerIdentity, CollectionGap, PART_ORGANIZATION, PART_TREE,
    RegionSnapshot, ResourceType, Snapshot,
};

pub use session::Session;

/// How to collect.
#[derive(Clone, Default)]
pub struct CollectOptions {
    /// Send every call here (an emulator or a private endpoint); `AWS_ENDPOINT_URL` works too.
    pub endpoint_url: Option<String>,
    /// Overrides `collection.concurrency`.
    pub concurrency: Option<usize>,
    /// Called after every API call with the running total (progress display).
    pub on_call: Option<Arc<dyn Fn(u64) + Send + Sync>>,
    /// Collect only this shard of the accounts in scope (listed and discovered).
    pub shard: Option<crate::model::Shard>,
}

/// Errors that stop collection before it starts.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error(
        "the starting AWS identity is not usable: {0}\nhelp: check AWS_PROFILE / AWS_ACCESS_KEY_ID / SSO login (`aws sts get-caller-identity` must work), or pass --endpoint-url for an emulator"
    )]
    Credentials(String),
    #[error(
        "cannot start the async runtime: {0}\nhelp: this is a bug or a resource limit of the machine"
    )]
    Runtime(String),
}

tokio::task_local! {
    /// Requests the call being run has put on the wire so far (each retry is one more).
    static SENT: std::cell::Cell<u64>;
    /// Attempts of that call AWS answered with throttling.
    static THROTTLED: std::cell::Cell<u64>;
}

/// Every service client's config from the account's `SdkConfig`, with what xscan adds to each:
/// counting the attempts sent ([`CountSent`]), refusing answers that are not whole
/// ([`WholeResponse`]) and retrying them ([`RetryIncomplete`]), and the account's own retry
/// partition for the service ([`Calls::retry_partition`]). One place, so no client misses one.
macro_rules! client_config {
    ($sdk_crate:ident, $sdk:expr, $calls:expr, $service:literal) => {
        $sdk_crate::config::Builder::from($sdk)
            .interceptor($crate::collect::CountSent)
            .interceptor($crate::collect::WholeResponse)
            .retry_classifier($crate::collect::RetryIncomplete)
            .retry_partition($calls.retry_partition($service))
    };
}
pub(crate) use client_config;

/// The error codes AWS throttles with, per protocol (EC2 `RequestLimitExceeded`, IAM and STS
/// `Throttling`, SageMaker `ThrottlingException`, S3 `SlowDown`, Organizations
/// `TooManyRequestsException`).
pub(crate) const THROTTLING_CODES: &[&str] = &[
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "SlowDown",
    "TooManyRequestsException",
];

/// Whether an HTTP answer is AWS throttling the caller: 429, or a throttling code in the body.
fn is_throttling(status: u16, body: Option<&[u8]>) -> bool {
    if status == 429 {
        return true;
    }
    if status < 400 {
        return false;
    }
    let text = body.map(String::from_utf8_lossy).unwrap_or_default();
    THROTTLING_CODES.iter().any(|code| {
        text.contains(&format!("<Code>{code}</Code>"))
            || text.contains(&format!("\"__type\":\"{code}\""))
            || text.contains(&format!("#{code}\""))
    })
}

/// Counts every attempt a client sends into the call [`Calls::run`] is running: the SDK calls
/// `read_before_transmit` once per attempt, just before the request goes out, so a paginator's
/// final poll (no request) counts nothing and a retried call counts each try.
#[derive(Debug)]
pub(crate) struct CountSent;

impl aws_sdk_sts::config::Intercept for CountSent {
    fn name(&self) -> &'static str {
        "xscan::CountSent"
    }

    fn read_before_transmit(
        &self,
        _context: &aws_sdk_sts::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_sts::config::RuntimeComponents,
        _cfg: &mut aws_sdk_sts::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let _ = SENT.try_with(|sent| sent.set(sent.get() + 1));
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &aws_sdk_sts::config::interceptors::FinalizerInterceptorContextRef<'_>,
        _components: &aws_sdk_sts::config::RuntimeComponents,
        _cfg: &mut aws_sdk_sts::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if let Some(response) = context.response()
            && is_throttling(response.status().as_u16(), response.body().bytes())
        {
            let _ = THROTTLED.try_with(|n| n.set(n.get() + 1));
        }
        Ok(())
    }
}

/// Refuses a successful answer cut short. The SDK's decoders accept a body that ends early
/// when its length says so (an XML element left open at the end of the text, an empty body
/// read as an empty answer): a list missing its last items, a value cut in the middle. Every
/// read xscan makes answers a whole document — XML closing its root element, a JSON object —
/// so anything else is an `IncompleteResponse` error of the call (a gap), never data.
#[derive(Debug)]
pub(crate) struct WholeResponse;

impl aws_sdk_sts::config::Intercept for WholeResponse {
    fn name(&self) -> &'static str {
        "xscan::WholeResponse"
    }

    fn read_after_deserialization(
        &self,
        context: &aws_sdk_sts::config::interceptors::AfterDeserializationInterceptorContextRef<'_>,
        _components: &aws_sdk_sts::config::RuntimeComponents,
        _cfg: &mut aws_sdk_sts::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let response = context.response();
        if !response.status().is_success() {
            return Ok(());
        }
        match response.body().bytes() {
            Some(body) => match cut_short(body) {
                Some(problem) => Err(Box::new(Incomplete(incomplete(&problem)))),
                None => Ok(()),
            },
            None => Ok(()),
        }
    }
}

/// A response [`WholeResponse`] refused: its own type, so [`RetryIncomplete`] can tell it from
/// other interceptor errors.
#[derive(Debug)]
struct Incomplete(String);

impl std::fmt::Display for Incomplete {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Incomplete {}

/// Retries a call whose answer [`WholeResponse`] refused, as a transient error: a body cut
/// short on the way is a transport fault, and the next attempt usually arrives whole. Without
/// it a truncated answer to the starting identity's first call ended the run (exit 2), and
/// elsewhere made a gap that a retry avoids.
#[derive(Debug)]
pub(crate) struct RetryIncomplete;

impl aws_sdk_sts::config::retry::ClassifyRetry for RetryIncomplete {
    fn classify_retry(
        &self,
        context: &aws_sdk_sts::config::interceptors::InterceptorContext,
    ) -> aws_sdk_sts::config::retry::RetryAction {
        use aws_sdk_sts::config::retry::RetryAction;
        let Some(Err(error)) = context.output_or_error() else {
            return RetryAction::NoActionIndicated;
        };
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(cause) = source {
            if cause.is::<Incomplete>() {
                return RetryAction::transient_error();
            }
            source = cause.source();
        }
        RetryAction::NoActionIndicated
    }

    fn name(&self) -> &'static str {
        "xscan::RetryIncomplete"
    }
}

/// Why `body` is not a whole XML or JSON document, if it is not.
fn cut_short(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return Some("the answer is empty".into());
    }
    if text.starts_with('{') || text.starts_with('[') {
        return serde_json::from_str::<serde::de::IgnoredAny>(text)
            .err()
            .map(|e| format!("the JSON answer is not whole ({e})"));
    }
    if !text.starts_with('<') {
        return None;
    }
    let not_whole = |what: &str| Some(format!("the XML answer {what}"));
    // The root element: after an XML declaration, the first element's name.
    let rest = match text.strip_prefix("<?") {
        Some(declared) => match declared.split_once("?>") {
            Some((_, rest)) => rest.trim_start(),
            None => return not_whole("ends in its declaration"),
        },
        None => text,
    };
    let name: String = rest
        .strip_prefix('<')
        .unwrap_or_default()
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/')
        .collect();
    if name.is_empty() {
        return not_whole("has no root element");
    }
    let self_closed = rest.ends_with("/>") && rest.matches('<').count() == 1;
    if self_closed || rest.ends_with(&format!("</{name}>")) {
        None
    } else {
        not_whole(&format!("does not close its root element <{name}>"))
    }
}

/// What every account's calls share: the global limit and the counts.
struct CallBudget {
    global: Semaphore,
    per_account: usize,
    per_service: usize,
    counts: Mutex<BTreeMap<String, u64>>,
    /// Throttled and retried attempts, by account (`*`: calls of no account).
    retries: Mutex<BTreeMap<String, crate::model::RetryCounts>>,
    total: std::sync::atomic::AtomicU64,
    on_call: Option<Arc<dyn Fn(u64) + Send + Sync>>,
}

/// Bounded, counted API calls of one account: at most `per_service` calls in flight to one
/// service of the account (AWS throttles per account and API), `per_account` to the account,
/// and `concurrency` in all.
pub(crate) struct Calls {
    budget: Arc<CallBudget>,
    /// The account these calls are made in (`*` for the starting identity and the organization).
    account_id: String,
    account: Semaphore,
    /// One limit per service prefix (`ec2`, `s3`, ...), created on first use.
    services: Mutex<BTreeMap<&'static str, Arc<Semaphore>>>,
}

impl Calls {
    fn new(
        limits: &crate::config::CollectionConfig,
        concurrency: usize,
        on_call: Option<Arc<dyn Fn(u64) + Send + Sync>>,
    ) -> Self {
        let budget = Arc::new(CallBudget {
            global: Semaphore::new(concurrency.max(1)),
            per_account: limits.per_account_concurrency.max(1),
            per_service: limits.per_service_concurrency.max(1),
            counts: Mutex::new(BTreeMap::new()),
            retries: Mutex::new(BTreeMap::new()),
            total: std::sync::atomic::AtomicU64::new(0),
            on_call,
        });
        Self::with_budget(budget, "*")
    }

    fn with_budget(budget: Arc<CallBudget>, account_id: &str) -> Self {
        Self {
            account_id: account_id.to_string(),
            account: Semaphore::new(budget.per_account),
            services: Mutex::new(BTreeMap::new()),
            budget,
        }
    }

    /// The SDK's retry partition for this account's calls to `service`. The adaptive retry
    /// mode's client-side rate limiter and retry quota live in a partition, and the default one
    /// is per service for the whole process: one throttled account would slow every account's
    /// calls to that service and spend their retries. AWS throttles per account and API, and so
    /// does this.
    pub(crate) fn retry_partition(
        &self,
        service: &str,
    ) -> aws_sdk_sts::config::retry::RetryPartition {
        aws_sdk_sts::config::retry::RetryPartition::new(format!(
            "xscan:{}:{service}",
            self.account_id
        ))
    }

    /// A handle for another account: its own account and service limits, the same budget.
    fn for_account(&self, account_id: &str) -> Self {
        Self::with_budget(self.budget.clone(), account_id)
    }

    /// Runs one API call (one page) under the limits and counts it by IAM action.
    pub(crate) async fn run<T, F: std::future::Future<Output = T>>(
        &self,
        action: &'static str,
        call: F,
    ) -> T {
        debug_assert!(
            permissions::ACTIONS.contains(&action)
                || permissions::ORGANIZATION_ACTIONS.contains(&action),
            "{action} is not in the permission list"
        );
        let service_prefix = action.split(':').next().unwrap_or(action);
        let service = self.services.lock().ok().map(|mut services| {
            services
                .entry(service_prefix)
                .or_insert_with(|| Arc::new(Semaphore::new(self.budget.per_service)))
                .clone()
        });
        // Narrowest limit first, so a call waiting on its account holds no global permit.
        let _service_permit = match &service {
            Some(semaphore) => Some(semaphore.acquire().await),
            None => None,
        };
        let _account_permit = self.account.acquire().await;
        let _permit = self.budget.global.acquire().await;
        let (result, sent, throttled) = SENT
            .scope(
                std::cell::Cell::new(0),
                THROTTLED.scope(std::cell::Cell::new(0), async {
                    let result = call.await;
                    (
                        result,
                        SENT.with(std::cell::Cell::get),
                        THROTTLED.with(std::cell::Cell::get),
                    )
                }),
            )
            .await;
        self.count(action, sent);
        self.count_retries(action, sent, throttled);
        tracing::debug!(action, sent, "call done");
        result
    }

    /// Records `sent` requests of `action` (none: nothing is recorded).
    fn count(&self, action: &str, sent: u64) {
        if sent == 0 {
            return;
        }
        if let Ok(mut counts) = self.budget.counts.lock() {
            *counts.entry(action.to_string()).or_default() += sent;
        }
        let total = self
            .budget
            .total
            .fetch_add(sent, std::sync::atomic::Ordering::Relaxed)
            + sent;
        if let Some(callback) = &self.budget.on_call {
            callback(total);
        }
    }

    /// Records the attempts of one call beyond its first, and those AWS throttled; says so in
    /// the log (`-v`), since they are what slows a large scan down.
    fn count_retries(&self, action: &str, sent: u64, throttled: u64) {
        let retried = sent.saturating_sub(1);
        if retried == 0 && throttled == 0 {
            return;
        }
        tracing::info!(
            account = %self.account_id,
            action,
            attempts = sent,
            throttled,
            "retried with back-off"
        );
        if let Ok(mut retries) = self.budget.retries.lock() {
            let counts = retries.entry(self.account_id.clone()).or_default();
            counts.retried += retried;
            counts.throttled += throttled;
        }
    }

    /// Records the role assumption of an account: made by the credentials provider's own STS
    /// client, which xscan cannot instrument, so one request is counted (more if it retried).
    pub(crate) fn count_assume_role(&self) {
        self.count("sts:AssumeRole", 1);
    }

    fn retries(&self) -> BTreeMap<String, crate::model::RetryCounts> {
        self.budget
            .retries
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    fn counts(&self) -> BTreeMap<String, u64> {
        self.budget
            .counts
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default()
    }
}

/// `Code: message` of an SDK error. When the SDK could not parse the error (an unexpected
/// content type), the code and message are read from the response body; transport errors and
/// timeouts keep their context, shortened.
pub(crate) fn error_text<E: ProvideErrorMetadata + std::error::Error>(error: &E) -> String {
    match (error.code(), error.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => summarize(&DisplayErrorContext(error).to_string()),
    }
}

/// `Code: Message` found in an error's text (an XML error body), else the text cut to 400
/// characters.
pub(crate) fn summarize(text: &str) -> String {
    let between = |open: &str, close: &str| {
        let start = text.find(open)? + open.len();
        let end = text[start..].find(close)? + start;
        Some(text[start..end].to_string())
    };
    match (
        between("<Code>", "</Code>"),
        between("<Message>", "</Message>"),
    ) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code,
        _ if text.chars().count() > 400 => {
            format!("{}…", text.chars().take(400).collect::<String>())
        }
        _ => text.to_string(),
    }
}

/// The error code, when the service sent one.
pub(crate) fn error_code<E: ProvideErrorMetadata>(error: &E) -> Option<String> {
    error.code().map(str::to_string)
}

/// Block Public Access flags as AWS returns them: all four, always. A flag missing from a
/// response that parsed is an answer cut short (the SDK's XML decoder accepts a truncated body
/// whose length matches), not `false`: it becomes a gap.
pub(crate) fn complete_flags(
    flags: [(&str, Option<bool>); 4],
) -> Result<crate::model::PublicAccessBlock, String> {
    let missing: Vec<&str> = flags
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(name, _)| *name)
        .collect();
    if !missing.is_empty() {
        return Err(incomplete(&format!(
            "the public access block lacks {}",
            missing.join(", ")
        )));
    }
    let [a, b, c, d] = flags.map(|(_, v)| v.unwrap_or_default());
    Ok(crate::model::PublicAccessBlock {
        block_public_acls: a,
        ignore_public_acls: b,
        block_public_policy: c,
        restrict_public_buckets: d,
    })
}

/// The error text of a response that parsed but lacks what AWS always sends.
pub(crate) fn incomplete(what: &str) -> String {
    format!(
        "IncompleteResponse: {what}, which AWS always sends (the answer was cut short or altered on the way)"
    )
}

/// What one account's collection produced.
struct AccountResult {
    id: String,
    snapshot: Option<AccountSnapshot>,
    identity: Option<CallerIdentity>,
    gaps: Vec<CollectionGap>,
}

/// Collects every account of `config`. Fails only when the starting identity is unusable.
pub async fn collect(config: &Config, options: &CollectOptions) -> Result<Snapshot, CollectError> {
    let started = Utc::now();
    let concurrency = options.concurrency.unwrap_or(config.collection.concurrency);
    let calls = Arc::new(Calls::new(
        &config.collection,
        concurrency,
        options.on_call.clone(),
    ));
    let session = Arc::new(Session::new(config, options.endpoint_url.clone()).await);
    let start = session.check_starting_identity(&calls).await?;

    let mut config = config.clone();
    let mut organization_gaps = Vec::new();
    let organization = match &config.organization {
        Some(settings) => {
            let reader = organization_reader(settings, &start);
            let (mut organization, gaps) =
                collect_organization(&session, &calls, settings, &reader).await;
            organization_gaps = gaps;
            if let Some(discovery) = &settings.discover {
                // Discovery without the tree cannot know the scope: say so in its own gap.
                if let Some(error) = [PART_ORGANIZATION, PART_TREE]
                    .iter()
                    .find_map(|part| organization.collection_errors.get(*part))
                {
                    organization_gaps.push(CollectionGap {
                        account: reader.clone(),
                        region: None,
                        service: "organizations".into(),
                        api_call: "discovery".into(),
                        resource_types: Vec::new(),
                        resource_id: None,
                        error: format!(
                            "the accounts in scope could not be discovered, only the listed ones were scanned ({error})"
                        ),
                    });
                }
                for (id, role) in discovery.select(&organization) {
                    if let Some(account) = organization.accounts.get_mut(&id) {
                        account.scope = Some(role);
                        if config.account_role(&id).is_none() {
                            config
                                .accounts
                                .push(discovery.account(&id, &account.name, role));
                        }
                    }
                }
                tracing::info!(
                    accounts = config.accounts.len(),
                    "accounts in scope after discovery"
                );
            }
            Some(organization)
        }
        None => None,
    };
    if let Some(shard) = options.shard {
        config.shard(shard.index, shard.count);
        tracing::info!(
            shard = %format!("{}/{}", shard.index, shard.count),
            accounts = config.accounts.len(),
            "collecting one shard"
        );
    }
    // One copy shared by the account tasks: a copy each is quadratic in the accounts (the
    // config lists them all), 270 MB at a thousand.
    let config = Arc::new(config);

    let mut tasks = tokio::task::JoinSet::new();
    let accounts_at_once = Arc::new(Semaphore::new(accounts_in_progress(&config.collection)));
    for account in &config.accounts {
        let (session, calls, account, config, accounts_at_once) = (
            session.clone(),
            calls.for_account(&account.id),
            account.clone(),
            config.clone(),
            accounts_at_once.clone(),
        );
        let deadline = Duration::from_secs(config.collection.account_deadline_seconds);
        tasks.spawn(async move {
            // The deadline runs from the account's start, not from the queue.
            let _slot = accounts_at_once.acquire_owned().await;
            within_deadline(
                &account.id,
                deadline,
                collect_account(&session, &calls, &account, &config),
            )
            .await
        });
    }
    let mut snapshot = Snapshot::new(config.regions.clone());
    snapshot.metadata.started_at = started;
    snapshot.metadata.scope = Some(config.scope.clone());
    snapshot.organization = organization;
    snapshot.metadata.collection_gaps.extend(organization_gaps);
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(result) => {
                if let Some(identity) = result.identity {
                    snapshot
                        .metadata
                        .caller_identities
                        .insert(result.id.clone(), identity);
                }
                snapshot.metadata.collection_gaps.extend(result.gaps);
                if let Some(account) = result.snapshot {
                    snapshot.accounts.insert(result.id, account);
                }
            }
            Err(e) => tracing::error!("an account task failed: {e}"),
        }
    }
    snapshot.metadata.sort_gaps();
    snapshot.metadata.api_calls = calls.counts();
    snapshot.metadata.retries = calls.retries();
    snapshot.metadata.finished_at = Utc::now();
    Ok(snapshot)
}

/// How many accounts are collected at once: as many as calls may be in flight (`concurrency`),
/// so every call slot can be used, and no more: past that the accounts' calls only queue, each
/// holding its pending requests in memory, and a burst of every account's AssumeRole at once
/// is throttled by STS in the starting account. Measured over the simulated AWS at 1,000
/// accounts and 50 ms latency: all accounts at once 19.7 s and 447 MB; `concurrency` (256) at
/// once 4.7 s and 202 MB (bench/RESULTS.md).
fn accounts_in_progress(limits: &crate::config::CollectionConfig) -> usize {
    limits.concurrency.max(1)
}

/// An account's collection bounded by `deadline`, so that one slow account cannot hold the
/// run: past it, whatever the account's calls have not returned is abandoned and the account is
/// one gap (every type unknown), as an unreachable account is.
async fn within_deadline(
    id: &str,
    deadline: Duration,
    collection: impl std::future::Future<Output = AccountResult>,
) -> AccountResult {
    match tokio::time::timeout(deadline, collection).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!(account = id, "account deadline passed");
            AccountResult {
                id: id.to_string(),
                snapshot: None,
                identity: None,
                gaps: vec![CollectionGap {
                    account: id.to_string(),
                    region: None,
                    service: "xscan".into(),
                    api_call: "AccountDeadline".into(),
                    resource_types: all_types(),
                    resource_id: None,
                    error: format!(
                        "the account's collection did not finish within collection.account_deadline_seconds ({} s); what it read is discarded",
                        deadline.as_secs()
                    ),
                }],
            }
        }
    }
}

/// The account that reads the organization: the one of `organization.assume_role`, else the
/// starting identity's.
fn organization_reader(
    settings: &crate::config::OrganizationConfig,
    start: &CallerIdentity,
) -> String {
    settings
        .assume_role
        .as_deref()
        .unwrap_or(&start.arn)
        .split(':')
        .nth(4)
        .unwrap_or_default()
        .to_string()
}

/// Reads the organization as `reader` (a role in the management account or a delegated
/// administrator named by `settings`, else the starting identity).
async fn collect_organization(
    session: &Session,
    calls: &Calls,
    settings: &crate::config::OrganizationConfig,
    reader: &str,
) -> (crate::model::OrganizationSnapshot, Vec<CollectionGap>) {
    let identity = AccountConfig {
        id: reader.to_string(),
        name: None,
        role: AccountRole::Consumer,
        assume_role: settings.assume_role.clone(),
        external_id: settings.external_id.clone(),
        session_name: settings.session_name.clone(),
        profile: None,
    };
    match session.account_config(&identity, calls).await {
        Ok(sdk) => organizations::collect(&sdk, calls, reader).await,
        Err(error) => {
            let mut organization = crate::model::OrganizationSnapshot::default();
            for part in crate::model::ORGANIZATION_PARTS {
                organization
                    .collection_errors
                    .insert(part.to_string(), error.clone());
            }
            let gap = CollectionGap {
                account: reader.to_string(),
                region: None,
                service: "sts".into(),
                api_call: "AssumeRole".into(),
                resource_types: Vec::new(),
                resource_id: Some("organization".into()),
                error,
            };
            (organization, vec![gap])
        }
    }
}

/// Every resource type read in the account: one that cannot be reached leaves all of them
/// unknown (the types derived from the organization are read elsewhere).
fn all_types() -> Vec<ResourceType> {
    ResourceType::ALL
        .iter()
        .copied()
        .filter(|t| !t.is_derived())
        .collect()
}

async fn collect_account(
    session: &Session,
    calls: &Calls,
    account: &AccountConfig,
    config: &Config,
) -> AccountResult {
    let id = account.id.clone();
    let unreachable = |api_call: &str, service: &str, error: String| AccountResult {
        id: id.clone(),
        snapshot: None,
        identity: None,
        gaps: vec![CollectionGap {
            account: id.clone(),
            region: None,
            service: service.into(),
            api_call: api_call.into(),
            resource_types: all_types(),
            resource_id: None,
            error,
        }],
    };
    let sdk = match session.account_config(account, calls).await {
        Ok(sdk) => sdk,
        Err(e) => return unreachable("AssumeRole", "sts", e),
    };
    // Never scan the wrong account: the identity must be in the configured one.
    let identity = match session::caller_identity(&sdk, calls).await {
        Ok(identity) => identity,
        Err(e) => return unreachable("GetCallerIdentity", "sts", e),
    };
    let identity_account = identity
        .arn
        .split(':')
        .nth(4)
        .unwrap_or_default()
        .to_string();
    if identity_account != id {
        return unreachable(
            "GetCallerIdentity",
            "sts",
            format!(
                "the credentials for account {id} belong to account {identity_account} ({}): refusing to scan the wrong account",
                identity.arn
            ),
        );
    }
    tracing::info!(account = %id, arn = %identity.arn, "collecting");
    let mut gaps = Vec::new();
    let mut snapshot = AccountSnapshot {
        name: account.name.clone(),
        role: Some(account.role),
        ..Default::default()
    };

    // Four chains side by side, each dependent read starting as soon as its own inputs are in
    // (not when all of the account's listings are): the notebooks of every region, then the
    // roles they use; the network; the access points, then their buckets; the S3 settings.
    let home_region = config
        .regions
        .first()
        .cloned()
        .unwrap_or_else(|| "us-east-1".into());
    let home = session.regional(&sdk, &home_region);
    let is_data = account.role == AccountRole::Data;
    let notebooks_then_roles = async {
        let notebooks = futures::future::join_all(config.regions.iter().map(|region| {
            let sdk = session.regional(&sdk, region);
            let id = &id;
            async move { sagemaker::collect(&sdk, calls, id, region).await }
        }))
        .await;
        // The roles the notebooks use (in this account), and configured ones.
        let mut role_names: BTreeSet<String> = BTreeSet::new();
        for arn in notebooks
            .iter()
            .flat_map(|(n, _)| n.values())
            .filter_map(|n| n.role_arn.as_deref())
            .chain(config.perimeter.execution_roles.iter().map(String::as_str))
        {
            if arn.split(':').nth(4) == Some(id.as_str()) {
                role_names.insert(role_name(arn));
            }
        }
        let roles = iam::roles(&home, calls, &id, &role_names).await;
        (notebooks, roles)
    };
    let networks = futures::future::join_all(config.regions.iter().map(|region| {
        let sdk = session.regional(&sdk, region);
        let id = &id;
        async move { ec2::collect(&sdk, calls, id, region).await }
    }));
    let access_points_then_buckets = async {
        if !is_data {
            return None;
        }
        let access_points = futures::future::join_all(config.regions.iter().map(|region| {
            let sdk = session.regional(&sdk, region);
            let id = &id;
            async move { s3control::access_points(&sdk, session, calls, id, region).await }
        }))
        .await;
        let mut names: BTreeSet<String> =
            config.perimeter.dataset_buckets.iter().cloned().collect();
        for ap in access_points.iter().flat_map(|(aps, _)| aps.values()) {
            if ap.bucket_account.as_deref().unwrap_or(&id) == id {
                names.insert(ap.bucket.clone());
            }
        }
        let buckets = s3::buckets(&home, session, calls, &id, &names).await;
        Some((access_points, buckets))
    };
    let account_settings = async {
        if is_data {
            Some(s3control::account_settings(&home, session, calls, &id).await)
        } else {
            None
        }
    };
    let ((notebooks, roles), networks, access_points_and_buckets, account_settings) = tokio::join!(
        notebooks_then_roles,
        networks,
        access_points_then_buckets,
        account_settings
    );

    let (access_points, buckets) = access_points_and_buckets.unzip();
    let mut access_points = access_points.map(Vec::into_iter);
    for ((region, (n, notebook_gaps)), network) in
        config.regions.iter().zip(notebooks).zip(networks)
    {
        let mut region_snapshot = RegionSnapshot {
            sagemaker_notebooks: n,
            ..Default::default()
        };
        gaps.extend(notebook_gaps);
        gaps.extend(network.apply(&mut region_snapshot));
        if let Some((aps, ap_gaps)) = access_points.as_mut().and_then(Iterator::next) {
            region_snapshot.s3_access_points = aps;
            gaps.extend(ap_gaps);
        }
        snapshot.regions.insert(region.clone(), region_snapshot);
    }
    let (roles, role_gaps) = roles;
    snapshot.iam_roles = roles;
    gaps.extend(role_gaps);
    if let Some((buckets, bucket_gaps)) = buckets {
        snapshot.s3_buckets = buckets;
        gaps.extend(bucket_gaps);
    }
    if let Some((settings, settings_gaps)) = account_settings {
        snapshot.s3_account_settings = settings;
        gaps.extend(settings_gaps);
    }
    AccountResult {
        id: id.clone(),
        snapshot: Some(snapshot),
        identity: Some(identity),
        gaps,
    }
}

/// The role name of a role ARN (the last path segment).
fn role_name(arn: &str) -> String {
    arn.rsplit('/').next().unwrap_or(arn).to_string()
}

/// A gap for a listing that failed.
pub(crate) fn listing_gap(
    account: &str,
    region: Option<&str>,
    service: &str,
    api_call: &str,
    types: &[ResourceType],
    error: String,
) -> CollectionGap {
    tracing::warn!(account, region, service, api_call, %error, "listing failed");
    CollectionGap {
        account: account.into(),
        region: region.map(str::to_string),
        service: service.into(),
        api_call: api_call.into(),
        resource_types: types.to_vec(),
        resource_id: None,
        error,
    }
}

/// A gap for one resource's detail read (the resource carries `collection_errors`).
pub(crate) fn detail_gap(
    account: &str,
    region: Option<&str>,
    service: &str,
    api_call: &str,
    resource_id: &str,
    error: String,
) -> CollectionGap {
    tracing::warn!(account, region, service, api_call, resource_id, %error, "read failed");
    CollectionGap {
        account: account.into(),
        region: region.map(str::to_string),
        service: service.into(),
        api_call: api_call.into(),
        resource_types: Vec::new(),
        resource_id: Some(resource_id.into()),
        error,
    }
}

/// Default per-call timeout when the config gives none.
pub(crate) fn call_timeout(config: &Config) -> Duration {
    Duration::from_secs(config.collection.call_timeout_seconds.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Peak number of calls in flight, per label.
    #[derive(Default)]
    struct Peak {
        now: AtomicUsize,
        max: AtomicUsize,
    }

    impl Peak {
        async fn call(&self) {
            let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.max.fetch_max(n, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(5)).await;
            self.now.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn an_answer_cut_short_is_recognised() {
        for whole in [
            r#"<?xml version="1.0" encoding="UTF-8"?><OwnershipControls><Rule><ObjectOwnership>BucketOwnerEnforced</ObjectOwnership></Rule></OwnershipControls>"#,
            "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"/>",
            r#"{"NotebookInstances": []}"#,
        ] {
            assert_eq!(cut_short(whole.as_bytes()), None, "{whole}");
            // Cut anywhere before its end, it is not whole.
            for cut in 0..whole.len() - 1 {
                if whole.is_char_boundary(cut) {
                    assert!(
                        cut_short(&whole.as_bytes()[..cut]).is_some(),
                        "{:?}",
                        &whole[..cut]
                    );
                }
            }
        }
    }

    /// One slow account ends as a gap at its deadline; the others are not held.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_account_is_cut_at_its_deadline() {
        let finished = |id: &str| AccountResult {
            id: id.into(),
            snapshot: Some(AccountSnapshot::default()),
            identity: None,
            gaps: Vec::new(),
        };
        let started = std::time::Instant::now();
        let (slow, quick) = tokio::join!(
            within_deadline("111111111111", Duration::from_millis(100), async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                finished("111111111111")
            }),
            within_deadline("222222222222", Duration::from_millis(100), async {
                finished("222222222222")
            }),
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(slow.snapshot.is_none());
        assert_eq!(slow.gaps.len(), 1);
        assert_eq!(slow.gaps[0].api_call, "AccountDeadline");
        assert!(
            slow.gaps[0]
                .resource_types
                .contains(&ResourceType::SagemakerNotebook)
        );
        assert!(quick.snapshot.is_some() && quick.gaps.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn limits_hold_per_service_per_account_and_in_all() {
        let limits = crate::config::CollectionConfig {
            per_account_concurrency: 3,
            per_service_concurrency: 2,
            ..Default::default()
        };
        let root = Calls::new(&limits, 5, None);
        let accounts: Vec<Arc<Calls>> = (0..4)
            .map(|i| Arc::new(root.for_account(&format!("{i:012}"))))
            .collect();
        let (all, ec2_of_first, first) = (
            Arc::new(Peak::default()),
            Arc::new(Peak::default()),
            Arc::new(Peak::default()),
        );
        let mut tasks = tokio::task::JoinSet::new();
        for (i, calls) in accounts.iter().enumerate() {
            for j in 0..12 {
                let (calls, all, ec2, first) = (
                    calls.clone(),
                    all.clone(),
                    ec2_of_first.clone(),
                    first.clone(),
                );
                tasks.spawn(async move {
                    let action = if j % 2 == 0 {
                        "ec2:DescribeVpcs"
                    } else {
                        "s3:GetBucketPolicy"
                    };
                    calls
                        .run(action, async {
                            // What the SDK's interceptor does when a request goes out.
                            SENT.with(|sent| sent.set(sent.get() + 1));
                            let ec2_call =
                                (i == 0 && action.starts_with("ec2")).then(|| ec2.call());
                            let first_call = (i == 0).then(|| first.call());
                            tokio::join!(
                                all.call(),
                                async {
                                    if let Some(c) = ec2_call {
                                        c.await
                                    }
                                },
                                async {
                                    if let Some(c) = first_call {
                                        c.await
                                    }
                                }
                            );
                        })
                        .await
                });
            }
        }
        while tasks.join_next().await.is_some() {}
        assert_eq!(all.max.load(Ordering::SeqCst), 5, "global limit");
        // Never above the narrower limits (whether they are reached depends on scheduling).
        assert!(first.max.load(Ordering::SeqCst) <= 3, "per-account limit");
        assert!(
            ec2_of_first.max.load(Ordering::SeqCst) <= 2,
            "per-service limit"
        );
        assert_eq!(root.counts().values().sum::<u64>(), 48);
    }
}
