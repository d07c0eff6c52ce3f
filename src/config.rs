//! `xscan.yaml`: the accounts in scope, the regions, and the intended perimeter the rules
//! check against. Unknown keys are errors, reported with file:line:column.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::model::{AccountRole, Snapshot};

/// Errors loading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "cannot read config {path}: {source}\nhelp: pass --config FILE, set XSCAN_CONFIG, or create ./xscan.yaml (see examples/xscan.yaml)"
    )]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path}:{line}:{column}: {message}\nhelp: the configuration keys are documented in README.md#configuration"
    )]
    Invalid {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
}

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Name of this scope (e.g. `ml-platform-prod`); keeps SARIF categories apart.
    #[serde(default = "default_scope")]
    pub scope: String,
    pub regions: Vec<String>,
    /// Accounts listed one by one (these win over `account_list` entries with the same id).
    #[serde(default)]
    pub accounts: Vec<AccountConfig>,
    /// Accounts from a file, for organizations with hundreds of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_list: Option<AccountList>,
    /// The AWS Organization: its SCPs, RCPs and OU tree are read for every verdict, and with
    /// `discover` its accounts are the scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<OrganizationConfig>,
    pub perimeter: Perimeter,
    #[serde(default)]
    pub collection: CollectionConfig,
    /// Waiver file (relative to this file's directory); `--waivers` overrides it.
    #[serde(default)]
    pub waivers: Option<std::path::PathBuf>,
}

fn default_scope() -> String {
    "default".to_string()
}

/// One account in scope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// 12-digit account id (quote it in YAML).
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub role: AccountRole,
    /// Role to assume in the account (from the starting identity).
    #[serde(default)]
    pub assume_role: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub session_name: Option<String>,
    /// Named profile to use instead of assuming a role.
    #[serde(default)]
    pub profile: Option<String>,
}

/// Accounts read from a CSV file (`id,name,tags`, tags as `key=value;key=value`), each reached
/// through a role named by a template, its role in the pattern picked by name or tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountList {
    /// The CSV file, relative to the config file.
    pub file: std::path::PathBuf,
    /// Role to assume, `{account}` replaced by the account id
    /// (`arn:aws:iam::{account}:role/xscan-audit`).
    #[serde(default)]
    pub assume_role: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub session_name: Option<String>,
    /// The first selector an account matches gives its role; accounts matching none are left
    /// out of scope (and logged).
    pub roles: Vec<RoleSelector>,
}

/// Where the organization is read, and which of its accounts are in scope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganizationConfig {
    /// Role to assume in the management account or a delegated administrator to read the
    /// organization; without it, the starting identity reads it.
    #[serde(default)]
    pub assume_role: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub session_name: Option<String>,
    /// Accounts in scope come from the organization (added to any listed ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discover: Option<Discovery>,
}

/// Which accounts of the organization are in scope, and how each is reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Discovery {
    /// OU ids (`ou-...`) or the root id whose accounts are in scope, nested OUs included;
    /// empty: the whole organization. Only ACTIVE accounts are scanned.
    #[serde(default)]
    pub ous: Vec<String>,
    /// Account ids left out.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Role to assume in each account, `{account}` replaced by its id.
    pub assume_role: String,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub session_name: Option<String>,
    /// The first selector an account matches gives its role (by name, tag, or OU path such as
    /// `Root/ML/*`); accounts matching none are out of scope (and logged).
    pub roles: Vec<RoleSelector>,
}

impl Discovery {
    /// The accounts of `organization` this discovery puts in scope, with their roles, in id
    /// order. Accounts the tree does not place (an unread tree) are left out: the collector
    /// records that gap.
    pub fn select(
        &self,
        organization: &crate::model::OrganizationSnapshot,
    ) -> Vec<(String, AccountRole)> {
        let mut selected = Vec::new();
        for (id, account) in &organization.accounts {
            if account.status != "ACTIVE" || self.exclude.contains(id) {
                continue;
            }
            let Ok(levels) = organization.levels(id) else {
                continue;
            };
            if !self.ous.is_empty() && !self.ous.iter().any(|ou| levels.contains(ou)) {
                continue;
            }
            let ou_path = organization.ou_path(id).unwrap_or_default();
            let Some(selector) = self
                .roles
                .iter()
                .find(|s| s.matches(&account.name, &account.tags) && s.matches_ou(&ou_path))
            else {
                tracing::info!(account = %id, "no role selector matches: out of scope");
                continue;
            };
            selected.push((id.clone(), selector.role));
        }
        selected
    }

    /// How to reach a discovered account.
    pub fn account(&self, id: &str, name: &str, role: AccountRole) -> AccountConfig {
        AccountConfig {
            id: id.to_string(),
            name: (!name.is_empty()).then(|| name.to_string()),
            role,
            assume_role: Some(self.assume_role.replace("{account}", id)),
            external_id: self.external_id.clone(),
            session_name: self.session_name.clone(),
            profile: None,
        }
    }
}

/// Picks accounts by name pattern (`*`, `?`) and/or tag (`key=value`); with neither, every
/// account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSelector {
    pub role: AccountRole,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub tag: Option<String>,
    /// OU path pattern (`Root/ML/*`), for accounts discovered from the organization.
    #[serde(default)]
    pub ou: Option<String>,
}

impl RoleSelector {
    fn matches_ou(&self, ou_path: &str) -> bool {
        self.ou
            .as_deref()
            .is_none_or(|p| crate::policy::wildcard::glob_match(p, ou_path))
    }

    fn matches(&self, name: &str, tags: &BTreeMap<String, String>) -> bool {
        let name_ok = self
            .name
            .as_deref()
            .is_none_or(|p| crate::policy::wildcard::glob_match(p, name));
        let tag_ok = self.tag.as_deref().is_none_or(|t| {
            let (key, value) = t.split_once('=').unwrap_or((t, "*"));
            tags.get(key.trim())
                .is_some_and(|v| crate::policy::wildcard::glob_match(value.trim(), v))
        });
        name_ok && tag_ok
    }
}

/// The intended perimeter: what the rules compare the live configuration with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Perimeter {
    /// The account holding the dataset.
    pub data_account: String,
    /// Buckets of the data account that hold the dataset.
    pub dataset_buckets: Vec<String>,
    /// Access point ARNs consumers must go through.
    pub access_points: Vec<String>,
    /// Expected SageMaker execution role ARNs; when empty, the roles of the consumer accounts'
    /// notebooks are taken.
    #[serde(default)]
    pub execution_roles: Vec<String>,
    /// Subnets notebooks may run in (empty: any subnet of the consumer account).
    #[serde(default)]
    pub notebook_subnets: Vec<String>,
    /// Actions the access point may grant.
    #[serde(default = "default_allowed_actions")]
    pub allowed_actions: Vec<String>,
    /// S3 resources outside the data account that endpoint policies may allow (e.g. AWS-owned
    /// buckets such as `arn:aws:s3:::jumpstart-cache-prod-us-east-1/*`).
    #[serde(default)]
    pub endpoint_exceptions: Vec<String>,
    /// Service principal the execution role must trust.
    #[serde(default = "default_trusted_service")]
    pub trusted_service: String,
}

fn default_allowed_actions() -> Vec<String> {
    vec!["s3:GetObject".into(), "s3:ListBucket".into()]
}

fn default_trusted_service() -> String {
    "sagemaker.amazonaws.com".into()
}

/// Reads `id,name,tags` lines; `#` comments, blank lines and a header line are skipped.
fn parse_account_list(
    origin: &str,
    text: &str,
    list: &AccountList,
) -> Result<Vec<AccountConfig>, ConfigError> {
    let invalid = |line: usize, message: String| ConfigError::Invalid {
        path: origin.to_string(),
        line,
        column: 1,
        message,
    };
    let mut accounts = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut first = true;
    for (number, line) in crate::input::strip_bom(text).lines().enumerate() {
        let line_no = number + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.splitn(3, ',').map(str::trim);
        let id = fields.next().unwrap_or_default().trim_matches('"');
        if std::mem::take(&mut first) && !id.chars().all(|c| c.is_ascii_digit()) {
            continue; // a header
        }
        if !crate::input::is_account_id(id) {
            return Err(invalid(
                line_no,
                format!("`{id}` is not a 12-digit account id (lines are id,name,tags)"),
            ));
        }
        if !seen.insert(id.to_string()) {
            return Err(invalid(line_no, format!("account {id} is listed twice")));
        }
        let name = fields
            .next()
            .unwrap_or_default()
            .trim_matches('"')
            .to_string();
        let mut tags = BTreeMap::new();
        for tag in fields
            .next()
            .unwrap_or_default()
            .trim_matches('"')
            .split(';')
            .filter(|t| !t.trim().is_empty())
        {
            let Some((key, value)) = tag.split_once('=') else {
                return Err(invalid(
                    line_no,
                    format!("tag `{tag}` is not key=value (tags are key=value;key=value)"),
                ));
            };
            tags.insert(key.trim().to_string(), value.trim().to_string());
        }
        let Some(selector) = list.roles.iter().find(|s| s.matches(&name, &tags)) else {
            tracing::info!(account = id, name, "no role selector matches: out of scope");
            continue;
        };
        accounts.push(AccountConfig {
            id: id.to_string(),
            name: (!name.is_empty()).then_some(name),
            role: selector.role,
            assume_role: list
                .assume_role
                .as_ref()
                .map(|template| template.replace("{account}", id)),
            external_id: list.external_id.clone(),
            session_name: list.session_name.clone(),
            profile: None,
        });
    }
    Ok(accounts)
}

/// The ranges the collection limits must fall in (documented in README.md#configuration):
/// beyond them a value is a typo, and would exhaust the runtime (a semaphore of 2^64
/// permits), overflow the SDK's timers or retry for days.
pub struct Limits {
    pub concurrency: std::ops::RangeInclusive<u64>,
    pub call_timeout_seconds: std::ops::RangeInclusive<u64>,
    pub max_attempts: std::ops::RangeInclusive<u64>,
    pub account_deadline_seconds: std::ops::RangeInclusive<u64>,
}

/// See [`Limits`].
pub const LIMITS: Limits = Limits {
    concurrency: 1..=1024,
    call_timeout_seconds: 1..=3600,
    max_attempts: 1..=20,
    account_deadline_seconds: 1..=86_400,
};

/// Collection limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionConfig {
    /// Concurrent API calls in all; also the number of accounts collected at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Seconds before one API call is abandoned.
    #[serde(default = "default_timeout")]
    pub call_timeout_seconds: u64,
    /// Attempts per call (with backoff) on throttling and transient errors.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Concurrent API calls to one account.
    #[serde(default = "default_per_account")]
    pub per_account_concurrency: usize,
    /// Concurrent API calls to one service of one account (AWS throttles per account and API).
    #[serde(default = "default_per_service")]
    pub per_service_concurrency: usize,
    /// Seconds one account's collection may take in all, counted from its start (at most
    /// `concurrency` accounts are in progress at once); past it the account is a gap, so one
    /// slow account cannot hold the run.
    #[serde(default = "default_account_deadline")]
    pub account_deadline_seconds: u64,
}

fn default_concurrency() -> usize {
    16
}
fn default_timeout() -> u64 {
    30
}
fn default_attempts() -> u32 {
    5
}
fn default_per_account() -> usize {
    8
}
fn default_per_service() -> usize {
    4
}
fn default_account_deadline() -> u64 {
    900
}

impl Default for CollectionConfig {
    fn default() -> Self {
        Self {
            concurrency: default_concurrency(),
            call_timeout_seconds: default_timeout(),
            max_attempts: default_attempts(),
            per_account_concurrency: default_per_account(),
            per_service_concurrency: default_per_service(),
            account_deadline_seconds: default_account_deadline(),
        }
    }
}

impl Config {
    /// Parses YAML; `origin` names the file in errors.
    pub fn from_yaml(origin: &str, text: &str) -> Result<Self, ConfigError> {
        let text = crate::input::strip_bom(text);
        let config: Config = serde_norway::from_str(text).map_err(|e| {
            let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
            ConfigError::Invalid {
                path: origin.to_string(),
                line,
                column,
                message: e.to_string(),
            }
        })?;
        config.validate(origin, text)?;
        Ok(config)
    }

    /// Reads a config file, with its account list and waiver paths resolved against its
    /// directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut config = Self::from_yaml(&path.display().to_string(), &text)?;
        config.resolve(path.parent().unwrap_or(Path::new(".")))?;
        Ok(config)
    }

    /// Resolves relative paths against `base` (the config file's directory) and reads the
    /// account list into `accounts`. Returns the account list's text (part of the config's
    /// identity in reports).
    pub fn resolve(&mut self, base: &Path) -> Result<Option<String>, ConfigError> {
        if let Some(waivers) = &self.waivers
            && waivers.is_relative()
        {
            self.waivers = Some(base.join(waivers));
        }
        let Some(list) = &self.account_list else {
            return Ok(None);
        };
        let path = if list.file.is_relative() {
            base.join(&list.file)
        } else {
            list.file.clone()
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let listed = parse_account_list(&path.display().to_string(), &text, list)?;
        let explicit: std::collections::BTreeSet<String> =
            self.accounts.iter().map(|a| a.id.clone()).collect();
        self.accounts
            .extend(listed.into_iter().filter(|a| !explicit.contains(&a.id)));
        Ok(Some(text))
    }

    /// Keeps only shard `index` of `count` (0-based): every `count`-th account in id order,
    /// the same split for the same account list on every machine.
    pub fn shard(&mut self, index: usize, count: usize) {
        self.accounts.sort_by(|a, b| a.id.cmp(&b.id));
        let accounts = std::mem::take(&mut self.accounts);
        self.accounts = accounts
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % count.max(1) == index)
            .map(|(_, a)| a)
            .collect();
    }

    fn validate(&self, origin: &str, text: &str) -> Result<(), ConfigError> {
        let invalid = |needle: &str, message: String| {
            let (line, column) = crate::input::locate(text, needle);
            ConfigError::Invalid {
                path: origin.to_string(),
                line,
                column,
                message,
            }
        };
        for account in &self.accounts {
            if !crate::input::is_account_id(&account.id) {
                return Err(invalid(
                    &account.id,
                    format!(
                        "account id `{}` is not 12 digits (quote ids in YAML)",
                        account.id
                    ),
                ));
            }
        }
        if !crate::input::is_account_id(&self.perimeter.data_account) {
            return Err(invalid(
                "data_account",
                "perimeter.data_account must be a 12-digit account id".into(),
            ));
        }
        let discovers = self
            .organization
            .as_ref()
            .is_some_and(|o| o.discover.is_some());
        if self.accounts.is_empty() && self.account_list.is_none() && !discovers {
            return Err(invalid(
                "perimeter",
                "no accounts: list them under `accounts:`, name a file under `account_list:`, or discover them with `organization: {discover: ...}`"
                    .into(),
            ));
        }
        if let Some(discovery) = self.organization.as_ref().and_then(|o| o.discover.as_ref()) {
            if !discovery.assume_role.contains("{account}") {
                return Err(invalid(
                    &discovery.assume_role,
                    "organization.discover.assume_role must contain `{account}` (e.g. arn:aws:iam::{account}:role/xscan-audit)".into(),
                ));
            }
            if let Some(selector) = discovery
                .roles
                .iter()
                .find(|s| s.ou.as_deref().is_some_and(|p| !p.starts_with("Root")))
            {
                let pattern = selector.ou.clone().unwrap_or_default();
                return Err(invalid(
                    &pattern,
                    format!(
                        "organization.discover.roles: ou `{pattern}` is an OU path from the root, e.g. `Root/ML/*` (names, not ids)"
                    ),
                ));
            }
            if let Some(id) = discovery
                .ous
                .iter()
                .find(|id| !(id.starts_with("ou-") || id.starts_with("r-")))
            {
                return Err(invalid(
                    id,
                    format!(
                        "organization.discover.ous: `{id}` is not an OU id (ou-...) or a root id (r-...)"
                    ),
                ));
            }
        }
        if let Some(list) = &self.account_list
            && let Some(selector) = list.roles.iter().find(|s| s.ou.is_some())
        {
            return Err(invalid(
                selector.ou.as_deref().unwrap_or("ou"),
                "account_list.roles: `ou` selects accounts discovered from the organization; an account list has no OUs (use `name` or `tag`)".into(),
            ));
        }
        if let Some(list) = &self.account_list
            && let Some(template) = &list.assume_role
            && !template.contains("{account}")
        {
            return Err(invalid(
                template,
                "account_list.assume_role must contain `{account}` (e.g. arn:aws:iam::{account}:role/xscan-audit)".into(),
            ));
        }
        if self.regions.is_empty() {
            return Err(invalid("regions", "at least one region is required".into()));
        }
        let c = &self.collection;
        for (key, value, range) in [
            ("concurrency", c.concurrency as u64, LIMITS.concurrency),
            (
                "per_account_concurrency",
                c.per_account_concurrency as u64,
                LIMITS.concurrency,
            ),
            (
                "per_service_concurrency",
                c.per_service_concurrency as u64,
                LIMITS.concurrency,
            ),
            (
                "call_timeout_seconds",
                c.call_timeout_seconds,
                LIMITS.call_timeout_seconds,
            ),
            (
                "max_attempts",
                u64::from(c.max_attempts),
                LIMITS.max_attempts,
            ),
            (
                "account_deadline_seconds",
                c.account_deadline_seconds,
                LIMITS.account_deadline_seconds,
            ),
        ] {
            if !range.contains(&value) {
                return Err(invalid(
                    &format!("{key}:"),
                    format!(
                        "collection.{key} is {value}; it must be between {} and {}",
                        range.start(),
                        range.end()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// This configuration with the accounts discovery put in scope when `snapshot` was
    /// collected (recorded in its organization part), so that a saved snapshot is evaluated
    /// over the same accounts as the live scan was.
    pub fn with_discovered(&self, snapshot: &Snapshot) -> std::borrow::Cow<'_, Config> {
        let (Some(discovery), Some(organization)) = (
            self.organization.as_ref().and_then(|o| o.discover.as_ref()),
            snapshot.organization.as_ref(),
        ) else {
            return std::borrow::Cow::Borrowed(self);
        };
        let mut config = self.clone();
        for (id, account) in &organization.accounts {
            if let Some(role) = account.scope
                && self.account_role(id).is_none()
            {
                config
                    .accounts
                    .push(discovery.account(id, &account.name, role));
            }
        }
        std::borrow::Cow::Owned(config)
    }

    /// Every configured account with its role, as the evaluator takes them.
    pub fn account_roles(&self) -> Vec<(String, AccountRole)> {
        self.accounts
            .iter()
            .map(|a| (a.id.clone(), a.role))
            .collect()
    }

    /// The role of an account in the pattern, if it is in scope.
    pub fn account_role(&self, account: &str) -> Option<AccountRole> {
        self.accounts
            .iter()
            .find(|a| a.id == account)
            .map(|a| a.role)
    }

    /// Parameters derived from collected data that was not all collected, with why. Today:
    /// `perimeter.execution_roles` when not configured, since it is then the roles of the
    /// consumer notebooks, and a notebook that could not be listed or described may use a role
    /// the list misses.
    pub fn parameter_gaps(&self, snapshot: &Snapshot) -> BTreeMap<String, String> {
        use crate::model::ResourceType;
        let mut gaps = BTreeMap::new();
        if !self.perimeter.execution_roles.is_empty() {
            return gaps;
        }
        let consumer = |account: &str| {
            snapshot
                .accounts
                .get(account)
                .and_then(|a| a.role)
                .or(self.account_role(account))
                == Some(AccountRole::Consumer)
        };
        let mut reasons: Vec<String> = snapshot
            .metadata
            .collection_gaps
            .iter()
            .filter(|g| consumer(&g.account))
            .filter(|g| {
                g.resource_types.contains(&ResourceType::SagemakerNotebook)
                    || (g.service == "sagemaker" && g.resource_id.is_some())
            })
            .map(|g| {
                format!(
                    "{}{} in {} ({})",
                    g.api_call,
                    g.resource_id
                        .as_ref()
                        .map(|id| format!(" of {id}"))
                        .unwrap_or_default(),
                    g.account,
                    g.error
                )
            })
            .collect();
        for (id, account) in &snapshot.accounts {
            if !consumer(id) {
                continue;
            }
            for region in account.regions.values() {
                for notebook in region.sagemaker_notebooks.values() {
                    if let Some(error) = notebook.collection_errors.get("role_arn") {
                        reasons.push(format!("the role of notebook {} ({error})", notebook.name));
                    }
                }
            }
        }
        reasons.sort();
        reasons.dedup();
        if !reasons.is_empty() {
            gaps.insert(
                "perimeter.execution_roles".into(),
                format!(
                    "is taken from the consumer notebooks' roles (none are configured), and not every notebook was read: {}",
                    reasons.join("; ")
                ),
            );
        }
        gaps
    }

    /// Parameters rules read as `${perimeter.*}`. Execution roles default to those of the
    /// consumer accounts' notebooks in the snapshot.
    pub fn parameters(&self, snapshot: &Snapshot) -> BTreeMap<String, Value> {
        let p = &self.perimeter;
        let execution_roles: Vec<String> = if p.execution_roles.is_empty() {
            let mut roles: Vec<&str> = snapshot
                .accounts
                .iter()
                .filter(|(id, a)| a.role.or(self.account_role(id)) == Some(AccountRole::Consumer))
                .flat_map(|(_, a)| a.regions.values())
                .flat_map(|r| r.sagemaker_notebooks.values())
                .filter_map(|n| n.role_arn.as_deref())
                .collect();
            roles.sort();
            roles.dedup();
            roles.into_iter().map(str::to_string).collect()
        } else {
            p.execution_roles.clone()
        };
        let mut parameters = BTreeMap::from([
            ("perimeter.data_account".into(), json!(p.data_account)),
            ("perimeter.dataset_buckets".into(), json!(p.dataset_buckets)),
            ("perimeter.access_points".into(), json!(p.access_points)),
            ("perimeter.execution_roles".into(), json!(execution_roles)),
            (
                "perimeter.notebook_subnets".into(),
                json!(p.notebook_subnets),
            ),
            ("perimeter.allowed_actions".into(), json!(p.allowed_actions)),
            (
                "perimeter.endpoint_exceptions".into(),
                json!(p.endpoint_exceptions),
            ),
            ("perimeter.trusted_service".into(), json!(p.trusted_service)),
        ]);
        // The roles as written in the configuration, absent when not written: a check that
        // notebooks use the expected roles must not compare them with the defaults taken from
        // the notebooks themselves (it could never fail).
        if !p.execution_roles.is_empty() {
            parameters.insert(
                "perimeter.configured_execution_roles".into(),
                json!(p.execution_roles),
            );
        }
        parameters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
scope: test
regions: [us-east-1]
accounts:
  - {id: "111111111111", role: consumer}
  - {id: "222222222222", role: data}
perimeter:
  data_account: "222222222222"
  dataset_buckets: [test-bucket-1]
  access_points: ["arn:aws:s3:us-east-1:222222222222:accesspoint/test-ap-1"]
"#;

    const DISCOVERING: &str = r#"
scope: test
regions: [us-east-1]
organization:
  discover:
    ous: [ou-ml]
    exclude: ["333333333333"]
    assume_role: "arn:aws:iam::{account}:role/xscan-audit"
    roles:
      - {role: data, tag: "xscan-role=data"}
      - {role: consumer, ou: "Root/ML/Consumers*"}
perimeter:
  data_account: "222222222222"
  dataset_buckets: [test-bucket-1]
  access_points: ["arn:aws:s3:us-east-1:222222222222:accesspoint/test-ap-1"]
"#;

    /// Root > ML > Consumers (111, 333 excluded, 444 suspended), ML > Data (222),
    /// Root > Sandbox (555, tagged data but outside ML), 666 in ML matching no selector.
    fn organization() -> crate::model::OrganizationSnapshot {
        use crate::model::{OrganizationAccount, OrganizationalUnit};
        let unit = |name: &str, parent: &str| OrganizationalUnit {
            name: name.into(),
            parent_id: parent.into(),
        };
        let account = |parent: &str, status: &str, tag: Option<&str>| OrganizationAccount {
            name: String::new(),
            status: status.into(),
            parent_id: parent.into(),
            tags: tag
                .map(|t| BTreeMap::from([("xscan-role".to_string(), t.to_string())]))
                .unwrap_or_default(),
            scope: None,
        };
        crate::model::OrganizationSnapshot {
            id: Some("o-abcdefghij".into()),
            root_id: Some("r-root".into()),
            units: BTreeMap::from([
                ("ou-ml".into(), unit("ML", "r-root")),
                ("ou-consumers".into(), unit("Consumers", "ou-ml")),
                ("ou-data".into(), unit("Data", "ou-ml")),
                ("ou-sandbox".into(), unit("Sandbox", "r-root")),
            ]),
            accounts: BTreeMap::from([
                (
                    "111111111111".into(),
                    account("ou-consumers", "ACTIVE", None),
                ),
                (
                    "222222222222".into(),
                    account("ou-data", "ACTIVE", Some("data")),
                ),
                (
                    "333333333333".into(),
                    account("ou-consumers", "ACTIVE", None),
                ),
                (
                    "444444444444".into(),
                    account("ou-consumers", "SUSPENDED", None),
                ),
                (
                    "555555555555".into(),
                    account("ou-sandbox", "ACTIVE", Some("data")),
                ),
                ("666666666666".into(), account("ou-ml", "ACTIVE", None)),
            ]),
            ..Default::default()
        }
    }

    #[test]
    fn discovery_selects_active_accounts_under_the_ous_by_tag_and_ou_path() {
        let config = Config::from_yaml("x.yaml", DISCOVERING).unwrap();
        let discovery = config
            .organization
            .as_ref()
            .unwrap()
            .discover
            .as_ref()
            .unwrap();
        let selected = discovery.select(&organization());
        assert_eq!(
            selected,
            [
                ("111111111111".to_string(), AccountRole::Consumer),
                ("222222222222".to_string(), AccountRole::Data),
            ]
        );
        let reached = discovery.account("111111111111", "", AccountRole::Consumer);
        assert_eq!(
            reached.assume_role.as_deref(),
            Some("arn:aws:iam::111111111111:role/xscan-audit")
        );
        // Without `ous`, the whole organization: the sandbox's data-tagged account too.
        let mut everywhere = discovery.clone();
        everywhere.ous.clear();
        let ids: Vec<String> = everywhere
            .select(&organization())
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(ids, ["111111111111", "222222222222", "555555555555"]);
        // An unread tree places no account (the collector records that gap).
        let mut unread = organization();
        unread.collection_errors.insert(
            crate::model::PART_TREE.into(),
            "AccessDeniedException".into(),
        );
        assert!(discovery.select(&unread).is_empty());
    }

    #[test]
    fn discovery_settings_are_checked_with_a_location() {
        for (from, to, message) in [
            (
                "arn:aws:iam::{account}:role/xscan-audit",
                "arn:aws:iam::111111111111:role/xscan-audit",
                "must contain `{account}`",
            ),
            (
                "Root/ML/Consumers*",
                "ML/Consumers",
                "OU path from the root",
            ),
            ("ous: [ou-ml]", "ous: [ML]", "is not an OU id"),
        ] {
            let yaml = DISCOVERING.replace(from, to);
            let err = Config::from_yaml("x.yaml", &yaml).unwrap_err().to_string();
            assert!(err.contains(message), "{to}: {err}");
            assert!(err.starts_with("x.yaml:"), "{err}");
        }
        // No account list at all, and no discovery: refused.
        let nothing = DISCOVERING.replace("  discover:", "  discovered:");
        assert!(Config::from_yaml("x.yaml", &nothing).is_err());
    }

    #[test]
    fn parses_with_defaults() {
        let c = Config::from_yaml("x.yaml", GOOD).unwrap();
        assert_eq!(c.perimeter.trusted_service, "sagemaker.amazonaws.com");
        assert_eq!(c.collection.concurrency, 16);
    }

    #[test]
    fn unknown_keys_are_errors_with_position() {
        let bad = GOOD.replace("scope: test", "scope: test\nregoins: [eu-west-1]");
        let err = Config::from_yaml("x.yaml", &bad).unwrap_err().to_string();
        assert!(err.starts_with("x.yaml:3:"), "{err}");
        assert!(err.contains("regoins"), "{err}");
        assert!(err.contains("help:"), "{err}");
    }

    #[test]
    fn collection_limits_are_bounded_with_a_location() {
        for (line, key) in [
            ("concurrency: 18446744073709551615", "concurrency"),
            ("per_service_concurrency: 0", "per_service_concurrency"),
            ("per_account_concurrency: 100000", "per_account_concurrency"),
            (
                "call_timeout_seconds: 10000000000000000000",
                "call_timeout_seconds",
            ),
            ("max_attempts: 4294967295", "max_attempts"),
            ("account_deadline_seconds: 0", "account_deadline_seconds"),
        ] {
            let yaml = format!("{GOOD}collection:\n  {line}\n");
            let err = Config::from_yaml("x.yaml", &yaml).unwrap_err().to_string();
            assert!(err.starts_with("x.yaml:12:3:"), "{line}: {err}");
            assert!(err.contains(&format!("collection.{key}")), "{err}");
            assert!(err.contains("help:"), "{err}");
        }
        let fine = format!("{GOOD}collection:\n  concurrency: 1024\n  max_attempts: 20\n");
        assert!(Config::from_yaml("x.yaml", &fine).is_ok());
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let doubled = GOOD.replace("scope: test", "scope: test\nscope: other");
        let err = Config::from_yaml("x.yaml", &doubled)
            .unwrap_err()
            .to_string();
        assert!(err.contains("duplicate field `scope`"), "{err}");
    }

    #[test]
    fn byte_order_mark_is_accepted() {
        assert!(Config::from_yaml("x.yaml", &format!("\u{feff}{GOOD}")).is_ok());
    }

    #[test]
    fn unquoted_or_short_account_ids_are_errors() {
        let bad = GOOD.replace("\"111111111111\"", "\"1111\"");
        let err = Config::from_yaml("x.yaml", &bad).unwrap_err().to_string();
        assert!(err.contains("12 digits"), "{err}");
    }

    #[test]
    fn account_lists_expand_with_template_and_selectors() {
        let dir = std::env::temp_dir().join(format!("xscan-config-list-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let yaml = GOOD.replace(
            "accounts:\n  - {id: \"111111111111\", role: consumer}\n  - {id: \"222222222222\", role: data}\n",
            "accounts:\n  - {id: \"222222222222\", role: data, profile: dataset}\naccount_list:\n  file: accounts.csv\n  assume_role: \"arn:aws:iam::{account}:role/xscan-audit\"\n  roles:\n    - {role: data, name: \"*-data\"}\n    - {role: consumer, tag: \"team=ml*\"}\n",
        );
        std::fs::write(
            dir.join("accounts.csv"),
            "# from organizations\nid,name,tags\n111111111111,ml-a,team=ml-platform\n222222222222,shared-data,\n333333333333,lake-data,\n444444444444,sandbox,team=web\n",
        )
        .unwrap();
        let mut config = Config::from_yaml("x.yaml", &yaml).unwrap();
        assert!(config.resolve(&dir).unwrap().is_some());
        let summary: Vec<(&str, AccountRole, Option<&str>)> = config
            .accounts
            .iter()
            .map(|a| (a.id.as_str(), a.role, a.assume_role.as_deref()))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("222222222222", AccountRole::Data, None),
                (
                    "111111111111",
                    AccountRole::Consumer,
                    Some("arn:aws:iam::111111111111:role/xscan-audit")
                ),
                (
                    "333333333333",
                    AccountRole::Data,
                    Some("arn:aws:iam::333333333333:role/xscan-audit")
                ),
            ],
            "explicit entries win; the sandbox matches no selector"
        );
        config.shard(1, 2);
        assert_eq!(config.accounts.len(), 1);
        assert_eq!(config.accounts[0].id, "222222222222");

        std::fs::write(dir.join("accounts.csv"), "111111111111,a\n12345,b\n").unwrap();
        let mut config = Config::from_yaml("x.yaml", &yaml).unwrap();
        let err = config.resolve(&dir).unwrap_err().to_string();
        assert!(err.contains("accounts.csv:2:1:"), "{err}");
        assert!(err.contains("12-digit"), "{err}");
        let bad = yaml.replace("{account}", "ACCOUNT");
        let err = Config::from_yaml("x.yaml", &bad).unwrap_err().to_string();
        assert!(err.contains("must contain `{account}`"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
