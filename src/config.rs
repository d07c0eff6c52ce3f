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
    pub accounts: Vec<AccountConfig>,
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

/// Collection limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionConfig {
    /// Concurrent API calls in all.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Seconds before one API call is abandoned.
    #[serde(default = "default_timeout")]
    pub call_timeout_seconds: u64,
    /// Attempts per call (with backoff) on throttling and transient errors.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
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

impl Default for CollectionConfig {
    fn default() -> Self {
        Self {
            concurrency: default_concurrency(),
            call_timeout_seconds: default_timeout(),
            max_attempts: default_attempts(),
        }
    }
}

impl Config {
    /// Parses YAML; `origin` names the file in errors.
    pub fn from_yaml(origin: &str, text: &str) -> Result<Self, ConfigError> {
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

    /// Reads a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml(&path.display().to_string(), &text)
    }

    fn validate(&self, origin: &str, text: &str) -> Result<(), ConfigError> {
        let invalid = |needle: &str, message: String| {
            let (line, column) = crate::rules::locate(text, needle);
            ConfigError::Invalid {
                path: origin.to_string(),
                line,
                column,
                message,
            }
        };
        for account in &self.accounts {
            if !crate::policy::principal::is_account_id(&account.id) {
                return Err(invalid(
                    &account.id,
                    format!(
                        "account id `{}` is not 12 digits (quote ids in YAML)",
                        account.id
                    ),
                ));
            }
        }
        if !crate::policy::principal::is_account_id(&self.perimeter.data_account) {
            return Err(invalid(
                "data_account",
                "perimeter.data_account must be a 12-digit account id".into(),
            ));
        }
        if self.regions.is_empty() {
            return Err(invalid("regions", "at least one region is required".into()));
        }
        Ok(())
    }

    /// The role of an account in the pattern, if it is in scope.
    pub fn account_role(&self, account: &str) -> Option<AccountRole> {
        self.accounts
            .iter()
            .find(|a| a.id == account)
            .map(|a| a.role)
    }

    /// Parameters rules read as `${perimeter.*}`. Execution roles default to those of the
    /// consumer accounts' notebooks in the snapshot.
    pub fn parameters(&self, snapshot: &Snapshot) -> BTreeMap<String, Value> {
        let p = &self.perimeter;
        let execution_roles: Vec<String> = if p.execution_roles.is_empty() {
            let mut roles: Vec<String> = snapshot
                .accounts
                .iter()
                .filter(|(id, a)| a.role.or(self.account_role(id)) == Some(AccountRole::Consumer))
                .flat_map(|(_, a)| a.regions.values())
                .flat_map(|r| r.sagemaker_notebooks.values())
                .filter_map(|n| n.role_arn.clone())
                .collect();
            roles.sort();
            roles.dedup();
            roles
        } else {
            p.execution_roles.clone()
        };
        BTreeMap::from([
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
        ])
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
    fn unquoted_or_short_account_ids_are_errors() {
        let bad = GOOD.replace("\"111111111111\"", "\"1111\"");
        let err = Config::from_yaml("x.yaml", &bad).unwrap_err().to_string();
        assert!(err.contains("12 digits"), "{err}");
    }
}
